//! The runtime config as an OpenFeature flag definition for flagd
//! (<https://flagd.dev/reference/flag-definitions/>): one flag per artifact, its variants
//! the versions, its targeting the rollout's stages. Applications then resolve the
//! version through an OpenFeature SDK with the flagd provider, and get what
//! [`super::Runtime::resolve`] answers: the bucketing is flagd's `fractional`, and every
//! segment glob is written as targeting that matches the same segments.

use std::collections::BTreeMap;
use std::io::Cursor;

use serde_json::{Value, json};

use super::{Release, Runtime, Stage};

/// Buckets per key: a stage's `percent` × 100, so shares down to 0.01% are exact.
pub const BUCKETS: u32 = 10_000;

/// The bucket of a request, 0–9999, as flagd's `fractional` draws it with the flag key
/// `artifact` and targeting key `request_key`: MurmurHash3 (x86, 32 bits, seed 0) of the
/// canonical CBOR of `[artifact, request_key]`, scaled to the total weight (10,000)
/// as `(hash × total) >> 32`.
pub fn bucket(artifact: &str, request_key: &str) -> u32 {
    let bytes = cbor_text_pair(artifact, request_key);
    let hash =
        murmur3::murmur3_32(&mut Cursor::new(bytes), 0).expect("reading from memory cannot fail");
    ((u64::from(hash) * u64::from(BUCKETS)) >> 32) as u32
}

/// The canonical CBOR (RFC 8949 §4.2) of an array of two text strings: the array's
/// head, then each string's head with its length in the shortest form, then its
/// UTF-8. Written out rather than through a CBOR crate: these two shapes are all
/// promptgate encodes, and the bytes must be exactly these.
fn cbor_text_pair(a: &str, b: &str) -> Vec<u8> {
    fn head(out: &mut Vec<u8>, major: u8, len: usize) {
        let major = major << 5;
        let len = len as u64;
        match len {
            0..=23 => out.push(major | len as u8),
            24..=0xff => out.extend([major | 24, len as u8]),
            0x100..=0xffff => {
                out.push(major | 25);
                out.extend((len as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(major | 26);
                out.extend((len as u32).to_be_bytes());
            }
            _ => {
                out.push(major | 27);
                out.extend(len.to_be_bytes());
            }
        }
    }
    let mut out = Vec::with_capacity(a.len() + b.len() + 10);
    head(&mut out, 4, 2);
    for s in [a, b] {
        head(&mut out, 3, s.len());
        out.extend(s.as_bytes());
    }
    out
}

/// The buckets a stage's `percent` covers: a request is in when its bucket is below.
/// `percent` has at most two decimals ([`Release::problems`]).
pub fn weight(percent: f64) -> u32 {
    (percent * 100.0).round().clamp(0.0, f64::from(BUCKETS)) as u32
}

/// The flagd flag definition of `runtime`, as a file's text: a flag per artifact, keyed
/// by its id, one flag a line (a change to one artifact is a one-line diff), with a
/// final newline. An artifact whose stage segments flagd targeting cannot express is
/// an error naming it. Written out piece by piece rather than built as one
/// `serde_json::Value`: a flag is small, but a thousand of them as a tree cost more to
/// make than to write.
pub fn export(runtime: &Runtime) -> Result<String, String> {
    let mut text = format!(
        "{{\n  \"$schema\": \"https://flagd.dev/schema/v0/flags.json\",\n  \"metadata\": {},\n  \"flags\": {{",
        json!({"generatedBy": "promptgate", "format": super::FORMAT})
    );
    // Artifacts mostly share their stages' segment lists: each is written out once.
    let mut conditions = Conditions::new();
    for (i, (id, release)) in runtime.artifacts.iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        text.push_str(&format!("{comma}\n    {}: ", Value::from(id.as_str())));
        flag(&mut text, id, release, &mut conditions)?;
    }
    text.push_str("\n  }\n}\n");
    Ok(text)
}

/// The targeting condition (JSON text) of each segment list met so far.
type Conditions<'r> = std::collections::HashMap<&'r [String], String>;

/// Append artifact `id`'s flag to `out`.
fn flag<'r>(
    out: &mut String,
    id: &str,
    release: &'r Release,
    conditions: &mut Conditions<'r>,
) -> Result<(), String> {
    let text = |s: &str| Value::from(s).to_string();
    let stable = text(&release.stable.version.text());
    let mut variants = BTreeMap::new();
    let named = release.history.iter().chain([&release.stable]);
    for v in named
        .map(|p| &p.version)
        .chain(release.canary.as_ref().map(|c| &c.version))
    {
        variants.insert(v.text(), v.text());
    }
    let canary = release.canary.as_ref().filter(|_| !release.frozen);
    let mut metadata = json!({"stable": release.stable.version.text(), "frozen": release.frozen});
    let mut targeting = String::new();
    if let Some(c) = canary {
        metadata["canary"] = json!(c.version.text());
        metadata["stage"] = json!(c.stage.word());
        let canary = text(&c.version.text());
        // The widest share first: a request served by several stages gets the largest
        // one, which is what "some stage serves it" means with a bucket fixed per key.
        let mut served: Vec<(Stage, &[String], u32)> = release
            .served_stages()
            .map(|(stage, segments, percent)| (stage, segments, weight(percent)))
            .collect();
        served.sort_by_key(|s| std::cmp::Reverse(s.2));
        let mut branches = Vec::new();
        for (stage, segments, w) in served {
            if !conditions.contains_key(segments) {
                let condition = segments_condition(segments).map_err(|e| {
                    format!(
                        "artifact `{id}`, stage {}: {e}; flagd targeting matches segments by \
                         equality, prefix (`geo/*`), suffix (`*/eu`), infix (`*eu*`), \
                         prefix and suffix (`geo/*/eu`), `{{a,b}}` and small `[abc]` sets, \
                         of characters in Unicode's Basic Multilingual Plane",
                        stage.word()
                    )
                })?;
                conditions.insert(segments, condition.to_string());
            }
            let condition = &conditions[segments];
            // A `fractional` even at 100%: a request without a targeting key then gets
            // stable, as `resolve` answers, rather than the canary.
            let serve = format!(
                "{{\"fractional\":[[{canary},{w}],[{stable},{}]]}}",
                BUCKETS - w
            );
            if condition == "true" {
                branches.push(serve);
                break;
            }
            branches.push(condition.clone());
            branches.push(serve);
        }
        if branches.len() % 2 == 0 {
            branches.push(stable.clone());
        }
        targeting = match branches.as_slice() {
            [serve] => format!(",\"targeting\":{serve}"),
            _ => format!(",\"targeting\":{{\"if\":[{}]}}", branches.join(",")),
        };
    }
    out.push_str(&format!(
        "{{\"state\":\"ENABLED\",\"defaultVariant\":{stable},\"variants\":{},\"metadata\":{metadata}{targeting}}}",
        json!(variants)
    ));
    Ok(())
}

/// [`export`] of the runtime config at `path`; what cannot be exported is a problem
/// located at the file.
pub fn export_text(path: &std::path::Path, runtime: &Runtime) -> anyhow::Result<String> {
    export(runtime).map_err(|e| {
        let mut d = crate::diag::Diagnostics::default();
        let name = path.display().to_string();
        d.push(
            &name,
            crate::diag::Pos::START,
            format!("cannot export to flagd: {e}"),
        );
        anyhow::Error::from(d)
    })
}

/// Write the flagd export of the runtime config at `runtime_path` to `flagd_path`
/// atomically, under the runtime config's lock: flagd's file watcher sees the old
/// definition or the new one, and the one written last is of the latest config.
pub fn mirror(runtime_path: &std::path::Path, flagd_path: &std::path::Path) -> anyhow::Result<()> {
    crate::store::read_locked(runtime_path, |text| {
        let runtime = match text {
            Some(text) => super::command::parse(runtime_path, text)?,
            None => Runtime::default(),
        };
        crate::store::write_durably(flagd_path, &export_text(runtime_path, &runtime)?)
    })
}

/// The context attribute an application passes a request's segments in, a list.
pub const SEGMENTS_ATTRIBUTE: &str = "segments";

/// Targeting that is true when some segment of the request matches some glob of
/// `patterns`; `*` alone matches every request, one with no segment too.
fn segments_condition(patterns: &[String]) -> Result<Value, String> {
    if patterns.iter().any(|p| p == "*") {
        return Ok(Value::Bool(true));
    }
    let mut any = Vec::new();
    for p in patterns {
        for alternative in expand(p)? {
            any.push(shape(&alternative).ok_or_else(|| format!("segment glob `{p}`"))?);
        }
    }
    let test = if any.len() == 1 {
        any.remove(0)
    } else {
        json!({"or": any})
    };
    Ok(json!({"some": [{"var": SEGMENTS_ATTRIBUTE}, test]}))
}

/// One piece of a glob without alternatives.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Char(char),
    Star,
    /// `?` or a set too large or negated to list.
    Other,
}

/// Most alternatives one glob may expand to, so that a `[a-z]{…}` cannot write a
/// flag file of millions of branches.
const MAX_ALTERNATIVES: usize = 64;

/// The alternatives of a glob of the dialect of [`super::segment_glob`] (which has
/// already accepted it), `{a,b}` and small `[…]` sets written out.
fn expand(glob: &str) -> Result<Vec<Vec<Piece>>, String> {
    let mut out: Vec<Vec<Piece>> = vec![Vec::new()];
    let append = |out: &mut Vec<Vec<Piece>>, choices: Vec<Vec<Piece>>| {
        let mut next = Vec::new();
        for done in out.iter() {
            for c in &choices {
                let mut v = done.clone();
                v.extend(c.iter().cloned());
                next.push(v);
            }
        }
        if next.len() > MAX_ALTERNATIVES {
            return Err(format!(
                "segment glob `{glob}` stands for more than {MAX_ALTERNATIVES} alternatives"
            ));
        }
        *out = next;
        Ok(())
    };
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                append(&mut out, vec![vec![Piece::Char(chars[i + 1])]])?;
                i += 2;
            }
            '*' => {
                append(&mut out, vec![vec![Piece::Star]])?;
                i += 1;
            }
            '?' => {
                append(&mut out, vec![vec![Piece::Other]])?;
                i += 1;
            }
            '[' => {
                let (set, end) = class(&chars, i);
                append(&mut out, set)?;
                i = end;
            }
            '{' => {
                let end = (i..chars.len())
                    .find(|&j| chars[j] == '}')
                    .unwrap_or(chars.len());
                let inner: String = chars[i + 1..end].iter().collect();
                let mut choices = Vec::new();
                for alternative in split_alternatives(&inner) {
                    choices.extend(expand(&alternative)?);
                }
                append(&mut out, choices)?;
                i = end + 1;
            }
            c => {
                append(&mut out, vec![vec![Piece::Char(c)]])?;
                i += 1;
            }
        }
    }
    Ok(out)
}

/// `a,b\,c` → `a`, `b\,c` (an escaped comma stays in its alternative).
fn split_alternatives(inner: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let last = out.last_mut().expect("one at least");
                last.push(c);
                if let Some(n) = chars.next() {
                    last.push(n);
                }
            }
            ',' => out.push(String::new()),
            c => out.last_mut().expect("one at least").push(c),
        }
    }
    out
}

/// The set `[…]` starting at `chars[start]`: its characters as one-piece alternatives
/// when it is positive and small, else one [`Piece::Other`]; and where it ends.
fn class(chars: &[char], start: usize) -> (Vec<Vec<Piece>>, usize) {
    let mut i = start + 1;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut members = Vec::new();
    let mut first = true;
    while i < chars.len() && (first || chars[i] != ']') {
        first = false;
        let c = chars[i];
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|e| *e != ']') {
            let end = chars[i + 2];
            members.extend((c..=end).take(MAX_ALTERNATIVES + 1));
            i += 3;
        } else {
            members.push(c);
            i += 1;
        }
    }
    let end = i + 1;
    if negated || members.len() > 16 {
        return (vec![vec![Piece::Other]], end);
    }
    members.sort_unstable();
    members.dedup();
    (
        members.into_iter().map(|c| vec![Piece::Char(c)]).collect(),
        end,
    )
}

/// The test for one alternative on the list element (`{"var": ""}`), if flagd's
/// evaluators can say it exactly. Only standard JSON Logic (`==`, `substr`, `in`,
/// `and`): flagd's own `starts_with`/`ends_with` fail inside `some` in the TypeScript
/// evaluator. `substr` counts UTF-16 units there and characters in Python, the same
/// for characters of the Basic Multilingual Plane, so a pattern outside it is refused.
fn shape(pieces: &[Piece]) -> Option<Value> {
    let mut parts: Vec<Option<String>> = Vec::new(); // None = a star
    for p in pieces {
        match p {
            Piece::Other => return None,
            Piece::Char(c) if u32::from(*c) > 0xffff => return None,
            Piece::Star => {
                if parts.last() != Some(&None) {
                    parts.push(None);
                }
            }
            Piece::Char(c) => match parts.last_mut() {
                Some(Some(text)) => text.push(*c),
                _ => parts.push(Some(c.to_string())),
            },
        }
    }
    let element = json!({"var": ""});
    let len = |s: &str| s.chars().count();
    let prefix = |p: &str| json!({"==": [{"substr": [element, 0, len(p)]}, p]});
    // The last `len(s)` characters; a shorter string is returned whole, and differs.
    let suffix = |of: Value, s: &str| json!({"==": [{"substr": [of, -(len(s) as i64)]}, s]});
    Some(match parts.as_slice() {
        [] => json!({"==": [element, ""]}),
        [Some(lit)] => json!({"==": [element, lit]}),
        [None] => Value::Bool(true),
        [Some(p), None] => prefix(p),
        [None, Some(s)] => suffix(element.clone(), s),
        [None, Some(infix), None] => json!({"in": [infix, element]}),
        // The suffix must follow the prefix, not overlap it: look for it in what is left
        // after the prefix.
        [Some(p), None, Some(s)] => json!({"and": [
            prefix(p),
            suffix(json!({"substr": [element, len(p)]}), s),
        ]}),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbor_heads_take_the_shortest_form() {
        assert_eq!(cbor_text_pair("a", "b"), [0x82, 0x61, b'a', 0x61, b'b']);
        let long = "x".repeat(24);
        let bytes = cbor_text_pair("", &long);
        assert_eq!(&bytes[..4], &[0x82, 0x60, 0x78, 24]);
        let longer = "x".repeat(300);
        let bytes = cbor_text_pair(&longer, "");
        assert_eq!(&bytes[..4], &[0x82, 0x79, 0x01, 0x2c]);
    }

    #[test]
    fn weights_are_basis_points() {
        assert_eq!(weight(5.0), 500);
        assert_eq!(weight(0.07), 7);
        assert_eq!(weight(100.0), BUCKETS);
        assert_eq!(weight(12.34), 1234);
    }

    #[test]
    fn globs_become_the_operators_that_match_the_same_segments() {
        let one = |g: &str| {
            let alts = expand(g).expect("valid");
            assert_eq!(alts.len(), 1, "{g}");
            shape(&alts[0])
        };
        assert_eq!(
            one("geo/*"),
            Some(json!({"==": [{"substr": [{"var": ""}, 0, 4]}, "geo/"]}))
        );
        assert_eq!(
            one("*/eu"),
            Some(json!({"==": [{"substr": [{"var": ""}, -3]}, "/eu"]}))
        );
        assert_eq!(one("*eu*"), Some(json!({"in": ["eu", {"var": ""}]})));
        assert_eq!(one(r"a\*b"), Some(json!({"==": [{"var": ""}, "a*b"]})));
        assert_eq!(one("a**b").expect("a shape")["and"][0]["=="][1], "a");
        assert_eq!(one("🙂*"), None);
        assert_eq!(one("geo/?u"), None);
        assert_eq!(one("[!a]x"), None);
        assert_eq!(one("a*b*c"), None);
        assert_eq!(expand("geo/{eu,us}").expect("valid").len(), 2);
        assert_eq!(expand("[a-c]x").expect("valid").len(), 3);
        assert!(expand("{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}").is_err());
    }
}
