//! Secrets (API keys, tokens): a newtype that never shows its value in `Debug` or
//! `Display`, and a scrubber for text that may repeat one (provider error bodies, the
//! answers of models).

use std::borrow::Cow;
use std::fmt;

use aho_corasick::AhoCorasick;
use serde_json::Value;

/// What a secret, or a piece of one, is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Runs of this many bytes of a secret are taken for the secret wherever they appear,
/// so that a key cut short (by an answer's token limit, an excerpt) or split in two is
/// scrubbed too. Ten characters of a random key do not turn up by chance.
pub const PIECE: usize = 10;

/// A credential. Only [`Secret::expose`] gives the value, for the one header that
/// carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with the secret scrubbed, as [`Scrubber::scrub`] does. Keys shorter than
    /// 8 characters are scrubbed too: better an odd error message than a leak.
    pub fn scrub(&self, text: &str) -> String {
        Scrubber::new([self]).scrub(text).into_owned()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Scrubs a set of secrets from text: every occurrence of one, and every run of
/// [`PIECE`] bytes or more of one, becomes [`REDACTED`].
#[derive(Clone)]
pub struct Scrubber(Finder);

#[derive(Clone)]
enum Finder {
    Nothing,
    /// Every piece of [`PIECE`] bytes of every secret (a shorter secret whole).
    Pieces(AhoCorasick),
    /// The finder could not be built, which no set of real keys can cause: every
    /// text is withheld whole rather than let through.
    Withhold,
}

impl Scrubber {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Scrubber {
        let mut patterns: Vec<&[u8]> = Vec::new();
        for secret in secrets {
            let bytes = secret.0.as_bytes();
            match bytes.len() {
                0 => {}
                n if n <= PIECE => patterns.push(bytes),
                _ => patterns.extend(bytes.windows(PIECE)),
            }
        }
        patterns.sort_unstable();
        patterns.dedup();
        if patterns.is_empty() {
            return Scrubber(Finder::Nothing);
        }
        Scrubber(match AhoCorasick::new(patterns) {
            Ok(finder) => Finder::Pieces(finder),
            Err(_) => Finder::Withhold,
        })
    }

    /// `text` with every secret, and every piece of one, replaced by [`REDACTED`]
    /// (one for each run of pieces that touch or overlap).
    pub fn scrub<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let finder = match &self.0 {
            Finder::Nothing => return Cow::Borrowed(text),
            Finder::Withhold => return Cow::Borrowed(REDACTED),
            Finder::Pieces(finder) => finder,
        };
        let mut spans: Vec<(usize, usize)> = finder
            .find_overlapping_iter(text)
            .map(|m| {
                // A secret that is not ASCII may match from inside a character: widen
                // to whole characters.
                let (mut start, mut end) = (m.start(), m.end());
                while !text.is_char_boundary(start) {
                    start -= 1;
                }
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                (start, end)
            })
            .collect();
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        let mut spans = spans.into_iter().peekable();
        while let Some((start, mut end)) = spans.next() {
            while let Some(&(next, next_end)) = spans.peek()
                && next <= end
            {
                end = end.max(next_end);
                spans.next();
            }
            out.push_str(&text[at..start]);
            out.push_str(REDACTED);
            at = end;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }

    /// Every string in `value`, object keys included, scrubbed.
    pub fn scrub_json(&self, value: &mut Value) {
        if matches!(self.0, Finder::Nothing) {
            return;
        }
        match value {
            Value::String(s) => {
                if let Cow::Owned(scrubbed) = self.scrub(s) {
                    *s = scrubbed;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_json(v)),
            Value::Object(map) => {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(k, mut v)| {
                        self.scrub_json(&mut v);
                        (self.scrub(&k).into_owned(), v)
                    })
                    .collect();
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn never_shows_its_value() {
        let key = Secret::new("sk-test-0123456789");
        assert_eq!(format!("{key}"), "[redacted]");
        assert_eq!(format!("{key:?}"), "Secret([redacted])");
        assert_eq!(format!("{:?}", Some(&key)), "Some(Secret([redacted]))");
        assert_eq!(key.expose(), "sk-test-0123456789");
    }

    #[test]
    fn scrubs_echoed_values() {
        let key = Secret::new("sk-test-0123456789");
        assert_eq!(
            key.scrub(r#"{"error":"invalid key sk-test-0123456789"}"#),
            r#"{"error":"invalid key [redacted]"}"#
        );
        assert_eq!(Secret::new("").scrub("text"), "text");
        assert_eq!(Secret::new("pw").scrub("a pw b"), "a [redacted] b");
    }

    #[test]
    fn scrubs_every_key_whole_cut_or_split() {
        let (a, b) = (
            Secret::new("sk-first-4f8a1c9e2b7d5063"),
            Secret::new("sk-ant-second-93b1e07c2d"),
        );
        let scrubber = Scrubber::new([&a, &b]);
        let cases = [
            ("whole: sk-first-4f8a1c9e2b7d5063.", "whole: [redacted]."),
            (
                "both sk-first-4f8a1c9e2b7d5063sk-ant-second-93b1e07c2d",
                "both [redacted]",
            ),
            // Cut by a token limit, and split in two with a line between.
            ("cut: sk-ant-second-9", "cut: [redacted]"),
            (
                "split sk-first-4f8a\n1c9e2b7d5063 end",
                "split [redacted]\n[redacted] end",
            ),
            // Fewer than PIECE bytes of a key are left: they identify nothing.
            ("prefix sk-first- only", "prefix sk-first- only"),
            ("nothing here", "nothing here"),
        ];
        for (text, want) in cases {
            assert_eq!(scrubber.scrub(text), want, "{text}");
        }
        // Around characters of several bytes, cut on character boundaries.
        let wide = Secret::new("clé-ü-0123456789");
        assert_eq!(
            Scrubber::new([&wide]).scrub("« clé-ü-0123456789 »"),
            "« [redacted] »"
        );
        assert!(matches!(
            Scrubber::new(&[]).scrub("anything"),
            Cow::Borrowed("anything")
        ));
    }

    #[test]
    fn scrubs_every_string_of_a_json_value() {
        let key = Secret::new("sk-json-0f1e2d3c4b5a");
        let mut value = json!({
            "text": "key sk-json-0f1e2d3c4b5a",
            "calls": [{"name": "sk-json-0f1e2d3c4b5a", "arguments": {"sk-json-0f1e2d3c4b5a": [1, "sk-json-0f1e2d3c4b5a"]}}],
            "usage": {"input": 3},
            "refusal": null,
        });
        Scrubber::new([&key]).scrub_json(&mut value);
        assert_eq!(
            value,
            json!({
                "text": "key [redacted]",
                "calls": [{"name": "[redacted]", "arguments": {"[redacted]": [1, "[redacted]"]}}],
                "usage": {"input": 3},
                "refusal": null,
            })
        );
    }
}
