//! Checks a positioned YAML tree against the JSON Schema that `schemars` derives from the
//! typed models, reporting every mismatch with its position, not just the first.
//!
//! It interprets the subset of JSON Schema that `schemars` emits for serde types:
//! `$ref`/`$defs`, `type`, `properties`, `additionalProperties`, `required`, `items`,
//! `enum`, `const`, `anyOf`/`oneOf`/`allOf` and numeric bounds.

use serde_json::Value;

use super::yaml::{Kind, Node};
use crate::diag::{Diagnostics, Pos, did_you_mean};

/// Check `node` (from `file`) against `schema`, appending problems to `out`.
pub fn check(schema: &Value, node: &Node, file: &str, out: &mut Diagnostics) {
    let checker = Checker { root: schema };
    for (pos, message) in checker.check(schema, node, &Path::Root) {
        out.push(file, pos, message);
    }
}

struct Checker<'a> {
    root: &'a Value,
}

type Problems = Vec<(Pos, String)>;

impl<'a> Checker<'a> {
    fn resolve(&self, schema: &'a Value) -> &'a Value {
        let mut current = schema;
        for _ in 0..32 {
            let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
                break;
            };
            // schemars writes `#/$defs/Name`; look that up without JSON-pointer escaping.
            let target = match reference.strip_prefix("#/$defs/") {
                Some(name) => self.root.get("$defs").and_then(|d| d.get(name)),
                None => reference
                    .strip_prefix('#')
                    .and_then(|pointer| self.root.pointer(pointer)),
            };
            match target {
                Some(target) => current = target,
                None => break,
            }
        }
        current
    }

    fn check(&self, schema: &'a Value, node: &Node, path: &Path<'_>) -> Problems {
        let schema = self.resolve(schema);
        if schema == &Value::Bool(true) {
            return Vec::new();
        }
        let k = Keywords::of(schema);
        if let Some(all) = k.all_of.and_then(Value::as_array) {
            let mut problems = Vec::new();
            for sub in all {
                problems.extend(self.check(sub, node, path));
            }
            return problems;
        }
        if let Some(alts) = k.any_of.or(k.one_of).and_then(Value::as_array) {
            return self.check_alternatives(alts, node, path);
        }
        if let Some(types) = k.types
            && !type_matches(types, node)
        {
            return vec![(
                node.pos,
                format!(
                    "{} must be {}, found {}",
                    describe(path),
                    expected_types(types),
                    found(node)
                ),
            )];
        }
        if let Some(options) = k.options.and_then(Value::as_array) {
            let value = node.to_json();
            if !options.contains(&value) {
                return vec![(node.pos, enum_message(path, options, node))];
            }
        }
        if let Some(constant) = k.constant
            && &node.to_json() != constant
        {
            return vec![(
                node.pos,
                format!(
                    "{} must be {constant}, found {}",
                    describe(path),
                    found(node)
                ),
            )];
        }
        let mut problems = Vec::new();
        match &node.kind {
            Kind::Map(entries) => {
                let props = k.properties.and_then(Value::as_object);
                let extra = k.additional;
                for entry in entries {
                    let child = Path::Key(path, &entry.key);
                    match props.and_then(|p| p.get(&entry.key)) {
                        Some(sub) => problems.extend(self.check(sub, &entry.value, &child)),
                        None => match extra {
                            Some(Value::Bool(false)) => {
                                let known = props
                                    .map(|p| p.keys().map(String::as_str).collect::<Vec<_>>())
                                    .unwrap_or_default();
                                problems.push((entry.key_pos, unknown_field(&entry.key, &known)));
                            }
                            Some(sub) if sub.is_object() => {
                                problems.extend(self.check(sub, &entry.value, &child));
                            }
                            _ => {}
                        },
                    }
                }
                if let Some(required) = k.required.and_then(Value::as_array) {
                    for name in required.iter().filter_map(Value::as_str) {
                        if !entries.iter().any(|e| e.key == name) {
                            let within = match path {
                                Path::Root => String::new(),
                                _ => format!(" in `{path}`"),
                            };
                            problems.push((node.pos, format!("missing field `{name}`{within}")));
                        }
                    }
                }
            }
            Kind::Seq(items) => {
                if let Some(item_schema) = k.items {
                    for (i, item) in items.iter().enumerate() {
                        problems.extend(self.check(item_schema, item, &Path::Index(path, i)));
                    }
                }
                if let Some(min) = k.min_items.and_then(Value::as_u64)
                    && (items.len() as u64) < min
                {
                    problems.push((
                        node.pos,
                        format!("{} needs at least {min} item(s)", describe(path)),
                    ));
                }
            }
            Kind::Float(f) if !f.is_finite() => {
                problems.push((
                    node.pos,
                    format!("{} must be a finite number, found {f}", describe(path)),
                ));
            }
            Kind::Int(_) | Kind::Float(_) => {
                let value = match node.kind {
                    Kind::Int(i) => i as f64,
                    Kind::Float(f) => f,
                    _ => 0.0,
                };
                let (low, high) = format_range(k.format.and_then(Value::as_str));
                let below = value < low && k.minimum.is_none();
                if below || value > high {
                    problems.push((
                        node.pos,
                        format!(
                            "{} must be between {low} and {high}, found {value}",
                            describe(path)
                        ),
                    ));
                }
                if let Some(min) = k.minimum.and_then(Value::as_f64)
                    && value < min
                {
                    problems.push((
                        node.pos,
                        format!("{} must be at least {min}, found {value}", describe(path)),
                    ));
                }
                if let Some(max) = k.maximum.and_then(Value::as_f64)
                    && value > max
                {
                    problems.push((
                        node.pos,
                        format!("{} must be at most {max}, found {value}", describe(path)),
                    ));
                }
            }
            _ => {}
        }
        problems
    }

    fn check_alternatives(&self, alts: &'a [Value], node: &Node, path: &Path<'_>) -> Problems {
        let mut by_type = Vec::new();
        for alt in alts {
            let problems = self.check(alt, node, path);
            if problems.is_empty() {
                return problems;
            }
            let alt = self.resolve(alt);
            if alt.get("type").is_none_or(|t| type_matches(t, node)) {
                by_type.push(problems);
            }
        }
        // Exactly one alternative takes this kind of value: its complaints are the useful ones.
        if by_type.len() == 1 {
            return by_type.remove(0);
        }
        let mut names: Vec<String> = alts
            .iter()
            .map(|a| self.resolve(a))
            .map(|a| match (a.get("type"), a.get("enum"), a.get("const")) {
                (_, Some(Value::Array(opts)), _) => opts
                    .iter()
                    .map(|o| format!("`{}`", plain(o)))
                    .collect::<Vec<_>>()
                    .join(", "),
                (_, _, Some(c)) => format!("`{}`", plain(c)),
                (Some(t), _, _) => expected_types(t),
                _ => "another shape".to_string(),
            })
            .collect();
        names.dedup();
        vec![(
            node.pos,
            format!(
                "{} must be {}, found {}",
                describe(path),
                names.join(" or "),
                found(node)
            ),
        )]
    }
}

/// The keywords of one schema object, found in one pass over its keys rather than a map
/// lookup per keyword for every node checked.
#[derive(Default)]
struct Keywords<'a> {
    all_of: Option<&'a Value>,
    any_of: Option<&'a Value>,
    one_of: Option<&'a Value>,
    types: Option<&'a Value>,
    options: Option<&'a Value>,
    constant: Option<&'a Value>,
    properties: Option<&'a Value>,
    additional: Option<&'a Value>,
    required: Option<&'a Value>,
    items: Option<&'a Value>,
    min_items: Option<&'a Value>,
    format: Option<&'a Value>,
    minimum: Option<&'a Value>,
    maximum: Option<&'a Value>,
}

impl<'a> Keywords<'a> {
    fn of(schema: &'a Value) -> Self {
        let mut k = Keywords::default();
        let Some(map) = schema.as_object() else {
            return k;
        };
        for (key, value) in map {
            let slot = match key.as_str() {
                "allOf" => &mut k.all_of,
                "anyOf" => &mut k.any_of,
                "oneOf" => &mut k.one_of,
                "type" => &mut k.types,
                "enum" => &mut k.options,
                "const" => &mut k.constant,
                "properties" => &mut k.properties,
                "additionalProperties" => &mut k.additional,
                "required" => &mut k.required,
                "items" => &mut k.items,
                "minItems" => &mut k.min_items,
                "format" => &mut k.format,
                "minimum" => &mut k.minimum,
                "maximum" => &mut k.maximum,
                _ => continue,
            };
            *slot = Some(value);
        }
        k
    }
}

/// Where a value sits in the file (`model.temperature`, `cases[3].assert`), built as the
/// checker descends and written out only for a problem.
enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => write!(f, "{key}"),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

fn describe(path: &Path<'_>) -> String {
    match path {
        Path::Root => "the file".to_string(),
        _ => format!("`{path}`"),
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn unknown_field(name: &str, known: &[&str]) -> String {
    let hint = did_you_mean(name, known.iter().copied());
    if !hint.is_empty() || known.is_empty() {
        return format!("unknown field `{name}`{hint}");
    }
    let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    format!(
        "unknown field `{name}`; expected one of {}",
        list.join(", ")
    )
}

fn enum_message(path: &Path<'_>, options: &[Value], node: &Node) -> String {
    let names: Vec<String> = options.iter().map(plain).collect();
    let mut message = format!(
        "{} must be one of {}, found {}",
        describe(path),
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", "),
        found(node)
    );
    if let Some(s) = node.as_str() {
        message.push_str(&did_you_mean(s, names.iter().map(String::as_str)));
    }
    message
}

/// The range an integer `format` allows (schemars writes `uint32`, `int64`…).
fn format_range(format: Option<&str>) -> (f64, f64) {
    match format {
        Some("uint8") => (0.0, f64::from(u8::MAX)),
        Some("uint16") => (0.0, f64::from(u16::MAX)),
        Some("uint32") => (0.0, f64::from(u32::MAX)),
        Some("uint64" | "uint") => (0.0, u64::MAX as f64),
        Some("int8") => (f64::from(i8::MIN), f64::from(i8::MAX)),
        Some("int16") => (f64::from(i16::MIN), f64::from(i16::MAX)),
        Some("int32") => (f64::from(i32::MIN), f64::from(i32::MAX)),
        _ => (f64::NEG_INFINITY, f64::INFINITY),
    }
}

fn found(node: &Node) -> String {
    match &node.kind {
        Kind::Str(s) => {
            let short: String = s.chars().take(40).collect();
            let ellipsis = if s.chars().count() > 40 { "…" } else { "" };
            format!("`{short}{ellipsis}`")
        }
        Kind::Int(i) => format!("{} `{i}`", node.type_name()),
        Kind::Float(f) => format!("{} `{f}`", node.type_name()),
        Kind::Bool(b) => format!("{} `{b}`", node.type_name()),
        _ => node.type_name().to_string(),
    }
}

fn type_matches(types: &Value, node: &Node) -> bool {
    let one = |t: &str| {
        matches!(
            (t, &node.kind),
            ("null", Kind::Null)
                | ("boolean", Kind::Bool(_))
                | ("integer", Kind::Int(_))
                | ("number", Kind::Int(_) | Kind::Float(_))
                | ("string", Kind::Str(_))
                | ("array", Kind::Seq(_))
                | ("object", Kind::Map(_))
        )
    };
    match types {
        Value::String(t) => one(t),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(one),
        _ => true,
    }
}

fn expected_types(types: &Value) -> String {
    let name = |t: &str| match t {
        "null" => "null",
        "boolean" => "true or false",
        "integer" => "an integer",
        "number" => "a number",
        "string" => "a string",
        "array" => "a list",
        "object" => "a mapping",
        _ => "a value",
    };
    match types {
        Value::String(t) => name(t).to_string(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .map(name)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "a value".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::yaml;
    use serde_json::json;

    fn problems(schema: Value, text: &str) -> Vec<String> {
        let node = yaml::parse(text).expect("parses");
        let mut out = Diagnostics::default();
        check(&schema, &node, "f.yaml", &mut out);
        out.0.iter().map(ToString::to_string).collect()
    }

    fn model_schema() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "temperature": {"type": ["number", "null"]},
                "max_tokens": {"type": "integer", "minimum": 0},
                "format": {"anyOf": [
                    {"type": "string", "enum": ["text", "json_object"]},
                    {"type": "object", "additionalProperties": false,
                     "properties": {"json_schema": {"type": "string"}}}
                ]}
            }
        })
    }

    #[test]
    fn reports_every_problem_with_positions() {
        let got = problems(
            model_schema(),
            "temprature: 0.2\nmax_tokens: -1\nformat: json\n",
        );
        assert_eq!(
            got,
            vec![
                "f.yaml:1:1: unknown field `temprature`, did you mean `temperature`?",
                "f.yaml:2:13: `max_tokens` must be at least 0, found -1",
                "f.yaml:3:9: `format` must be one of `text`, `json_object`, found `json`",
                "f.yaml:1:1: missing field `name`",
            ]
        );
    }

    #[test]
    fn explains_wrong_types() {
        let got = problems(model_schema(), "name: x\ntemperature: hot\nformat: [1]\n");
        assert_eq!(
            got,
            vec![
                "f.yaml:2:14: `temperature` must be a number, found `hot`",
                "f.yaml:3:9: `format` must be `text`, `json_object` or a mapping, found a list",
            ]
        );
    }

    #[test]
    fn integers_are_whole_and_in_range() {
        let got = problems(
            model_schema(),
            "name: x\nmax_tokens: 400.0\ntemperature: .nan\n",
        );
        assert_eq!(
            got,
            vec![
                "f.yaml:2:13: `max_tokens` must be an integer, found a number `400`",
                "f.yaml:3:14: `temperature` must be a finite number, found NaN",
            ]
        );
        let schema = json!({"type": "integer", "format": "uint32", "minimum": 0});
        assert_eq!(
            problems(schema, "5000000000"),
            vec!["f.yaml:1:1: the file must be between 0 and 4294967295, found 5000000000"]
        );
    }

    #[test]
    fn lists_fields_when_nothing_is_close() {
        let got = problems(model_schema(), "name: x\ncolour: red\n");
        assert_eq!(
            got,
            vec![
                "f.yaml:2:1: unknown field `colour`; expected one of `format`, `max_tokens`, `name`, `temperature`"
            ]
        );
    }

    #[test]
    fn checks_inside_the_chosen_alternative() {
        let got = problems(model_schema(), "name: x\nformat: {json_shema: a.json}\n");
        assert_eq!(
            got,
            vec!["f.yaml:2:10: unknown field `json_shema`, did you mean `json_schema`?"]
        );
    }
}
