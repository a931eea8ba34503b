//! Assertions: what a case's answer must satisfy, as written in suites and as typed checks.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::diag::{Pos, did_you_mean};

/// One assertion as written in a suite: `{type: contains, value: refund}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertionSpec {
    /// The assertion type, e.g. `contains`, `not-refusal`, `tool-sequence`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What to compare with; its shape depends on the type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Path into the JSON answer (`json-path`), e.g. `$.decision`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Tool whose arguments are checked (`tool-args`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Weight in the case's score; a case passes only when all its assertions pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
}

/// A checked assertion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assertion {
    /// The type as written, for reports (`not-contains`).
    pub name: String,
    pub check: Check,
    pub negate: bool,
    pub weight: f64,
    #[serde(skip)]
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "check", rename_all = "kebab-case")]
pub enum Check {
    Equals {
        value: String,
    },
    Contains {
        value: String,
    },
    Icontains {
        value: String,
    },
    ContainsAny {
        values: Vec<String>,
    },
    ContainsAll {
        values: Vec<String>,
    },
    StartsWith {
        value: String,
    },
    EndsWith {
        value: String,
    },
    Regex {
        pattern: Pattern,
    },
    IsJson,
    /// `source` is the repository path of the schema file, when it came from one.
    JsonSchema {
        source: Option<String>,
        schema: Schema,
    },
    JsonPath {
        path: String,
        expected: Option<Value>,
    },
    JsonKeys {
        allowed: Vec<String>,
    },
    Refusal,
    MaxWords {
        limit: u64,
    },
    MinWords {
        limit: u64,
    },
    MaxChars {
        limit: u64,
    },
    ToolCalled {
        tool: String,
    },
    ToolSequence {
        tools: Vec<String>,
    },
    ToolArgs {
        tool: String,
        args: Map<String, Value>,
    },
    NoToolCall,
    LatencyMs {
        limit: f64,
    },
    CostUsd {
        limit: f64,
    },
    MaxTokens {
        limit: u64,
    },
    LlmRubric {
        rubric: String,
    },
    /// A GitHub Models `string` evaluator, judged as `gh models eval` judges it: on the
    /// answer with its surrounding whitespace trimmed, `equals` exactly, the others
    /// ignoring case.
    GithubString {
        op: StringOp,
        value: String,
    },
    /// A GitHub Models model-graded evaluator (`llm:`, or a built-in `uses: github/…`):
    /// the judge picks one of the choices, and its score above 0 passes.
    ModelGraded(std::sync::Arc<ModelGraded>),
}

/// Which test of a GitHub Models `string` evaluator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StringOp {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
}

/// What a model-graded evaluator asks the judge, and how its answer is scored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelGraded {
    /// The evaluator's `modelId`, mapped through `judge.models` when it is asked; `None`
    /// asks the judge's own `model`.
    pub model_id: Option<String>,
    pub system_prompt: Option<String>,
    /// The judge's prompt, its `{{completion}}` and the row's `{{variables}}` filled in
    /// when it is asked.
    pub prompt: String,
    /// In order: the first whose text the judge's answer contains (any case) is its pick.
    pub choices: Vec<Choice>,
    /// `github/similarity`… for a built-in evaluator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub builtin: Option<String>,
}

/// One answer the judge may give, and what it scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    pub choice: String,
    pub score: f64,
}

/// Every assertion type, as written.
pub const TYPES: [&str; 26] = [
    "equals",
    "contains",
    "icontains",
    "contains-any",
    "contains-all",
    "starts-with",
    "ends-with",
    "regex",
    "is-json",
    "json-schema",
    "json-path",
    "json-keys",
    "refusal",
    "max-words",
    "min-words",
    "max-chars",
    "tool-called",
    "tool-sequence",
    "tool-args",
    "no-tool-call",
    "latency-ms",
    "cost-usd",
    "max-tokens",
    "llm-rubric",
    // Listed so suggestions find the negated forms users write most.
    "not-refusal",
    "not-contains",
];

/// Types that take a `not-` prefix.
const NEGATABLE: [&str; 11] = [
    "equals",
    "contains",
    "icontains",
    "contains-any",
    "contains-all",
    "starts-with",
    "ends-with",
    "regex",
    "is-json",
    "refusal",
    "tool-called",
];

/// Loads the schema a `json-schema` assertion names: `(repository path, schema)`.
pub type SchemaLoader<'a> = dyn FnMut(&str) -> Result<(String, Value), String> + 'a;

impl AssertionSpec {
    /// Check the spec and build the typed assertion; the error is one line for the user.
    pub fn build(&self, pos: Pos, load_schema: &mut SchemaLoader<'_>) -> Result<Assertion, String> {
        let (negate, base) = match self.kind.strip_prefix("not-") {
            Some(rest) if NEGATABLE.contains(&rest) => (true, rest),
            _ => (false, self.kind.as_str()),
        };
        let check = self.check(base, load_schema)?;
        let weight = self.weight.unwrap_or(1.0);
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(format!("`weight` must be a number ≥ 0, found {weight}"));
        }
        if self.path.is_some() && base != "json-path" {
            return Err(format!(
                "`path` is only for `json-path`, not `{}`",
                self.kind
            ));
        }
        if self.tool.is_some() && base != "tool-args" {
            return Err(format!(
                "`tool` is only for `tool-args`, not `{}`",
                self.kind
            ));
        }
        Ok(Assertion {
            name: self.kind.clone(),
            check,
            negate,
            weight,
            pos,
        })
    }

    fn check(&self, base: &str, load_schema: &mut SchemaLoader<'_>) -> Result<Check, String> {
        let kind = &self.kind;
        let value = self.value.as_ref();
        let text = || -> Result<String, String> {
            match value {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Number(n)) => Ok(n.to_string()),
                Some(Value::Bool(b)) => Ok(b.to_string()),
                Some(other) => Err(format!(
                    "`{kind}` needs a text `value`, found {}",
                    json_type(other)
                )),
                None => Err(format!("`{kind}` needs a `value`")),
            }
        };
        let list = || -> Result<Vec<String>, String> {
            let items = value
                .and_then(Value::as_array)
                .ok_or_else(|| format!("`{kind}` needs a list of strings as `value`"))?;
            items
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_string).ok_or_else(|| {
                        format!("`{kind}` needs a list of strings, found {}", json_type(i))
                    })
                })
                .collect()
        };
        let count = || -> Result<u64, String> {
            value
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("`{kind}` needs a whole number ≥ 0 as `value`"))
        };
        let number = || -> Result<f64, String> {
            value
                .and_then(Value::as_f64)
                .filter(|n| *n >= 0.0)
                .ok_or_else(|| format!("`{kind}` needs a number ≥ 0 as `value`"))
        };
        let none = |check: Check| -> Result<Check, String> {
            match value {
                None => Ok(check),
                Some(_) => Err(format!("`{kind}` takes no `value`")),
            }
        };
        let valid_schema = |schema: Value| -> Result<Schema, String> {
            Schema::new(schema).map_err(|e| format!("`{kind}`: not a valid JSON Schema: {e}"))
        };
        Ok(match base {
            "equals" => Check::Equals { value: text()? },
            "contains" => Check::Contains { value: text()? },
            "icontains" => Check::Icontains { value: text()? },
            "contains-any" => Check::ContainsAny { values: list()? },
            "contains-all" => Check::ContainsAll { values: list()? },
            "starts-with" => Check::StartsWith { value: text()? },
            "ends-with" => Check::EndsWith { value: text()? },
            "regex" => {
                let pattern = Pattern::new(&text()?).map_err(|e| {
                    format!("`{kind}`: invalid regular expression: {}", regex_error(&e))
                })?;
                Check::Regex { pattern }
            }
            "is-json" => none(Check::IsJson)?,
            "json-schema" => match value {
                Some(Value::String(path)) => {
                    let (source, schema) = load_schema(path)?;
                    Check::JsonSchema {
                        source: Some(source),
                        schema: valid_schema(schema)?,
                    }
                }
                Some(schema @ Value::Object(_)) => Check::JsonSchema {
                    source: None,
                    schema: valid_schema(schema.clone())?,
                },
                _ => {
                    return Err(format!(
                        "`{kind}` needs a schema file path or an inline schema as `value`"
                    ));
                }
            },
            "json-path" => {
                let path = self
                    .path
                    .clone()
                    .ok_or_else(|| format!("`{kind}` needs a `path`, e.g. `$.decision`"))?;
                if !path.starts_with('$') {
                    return Err(format!(
                        "`{kind}`: `path` must start with `$`, found `{path}`"
                    ));
                }
                Check::JsonPath {
                    path,
                    expected: value.cloned(),
                }
            }
            "json-keys" => Check::JsonKeys { allowed: list()? },
            "refusal" => none(Check::Refusal)?,
            "max-words" => Check::MaxWords { limit: count()? },
            "min-words" => Check::MinWords { limit: count()? },
            "max-chars" => Check::MaxChars { limit: count()? },
            "tool-called" => Check::ToolCalled { tool: text()? },
            "tool-sequence" => Check::ToolSequence { tools: list()? },
            "tool-args" => {
                let tool = self
                    .tool
                    .clone()
                    .ok_or_else(|| format!("`{kind}` needs a `tool`"))?;
                let args = value
                    .and_then(Value::as_object)
                    .cloned()
                    .ok_or_else(|| format!("`{kind}` needs a mapping of expected arguments"))?;
                Check::ToolArgs { tool, args }
            }
            "no-tool-call" => none(Check::NoToolCall)?,
            "latency-ms" => Check::LatencyMs { limit: number()? },
            "cost-usd" => Check::CostUsd { limit: number()? },
            "max-tokens" => Check::MaxTokens { limit: count()? },
            "llm-rubric" => Check::LlmRubric { rubric: text()? },
            _ => {
                let hint = did_you_mean(kind, TYPES);
                return Err(if hint.is_empty() {
                    format!(
                        "unknown assertion type `{kind}`; known types: {}",
                        TYPES[..24].join(", ")
                    )
                } else {
                    format!("unknown assertion type `{kind}`{hint}")
                });
            }
        })
    }
}

/// What a JSON value is, for messages: "a string", "a list"…
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The value made from `key` by `make`, or the one made before for the same key if a
/// loaded assertion still holds it: what a suite's cases share is made once.
fn shared<T, E>(
    made: &std::sync::Mutex<std::collections::HashMap<String, std::sync::Weak<T>>>,
    key: &str,
    make: impl FnOnce() -> Result<T, E>,
) -> Result<std::sync::Arc<T>, E> {
    let held = |m: &std::collections::HashMap<String, std::sync::Weak<T>>| m.get(key)?.upgrade();
    if let Some(value) = made.lock().ok().and_then(|m| held(&m)) {
        return Ok(value);
    }
    let value = std::sync::Arc::new(make()?);
    if let Ok(mut m) = made.lock() {
        if m.len() >= 1024 {
            m.retain(|_, v| v.strong_count() > 0);
        }
        m.insert(key.to_string(), std::sync::Arc::downgrade(&value));
    }
    Ok(value)
}

/// A `regex` assertion's pattern, compiled once for every assertion that writes it: a
/// suite's cases often share one, and compiling it again for each case, and again for
/// each answer, took more time than judging. Compared and serialized as its text.
#[derive(Debug, Clone)]
pub struct Pattern(std::sync::Arc<regex::Regex>);

impl Pattern {
    /// `pattern` compiled, or the one compiled before for the same text if it is still
    /// held by a loaded assertion.
    pub fn new(pattern: &str) -> Result<Pattern, regex::Error> {
        use std::sync::{LazyLock, Mutex};
        static COMPILED: LazyLock<
            Mutex<std::collections::HashMap<String, std::sync::Weak<regex::Regex>>>,
        > = LazyLock::new(Mutex::default);
        shared(&COMPILED, pattern, || regex::Regex::new(pattern)).map(Pattern)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

/// A `json-schema` assertion's schema with its validator, built once for every
/// assertion that writes the same schema (cases share a schema file): building the
/// validator costs more than validating an answer, and was done for each answer.
/// Compared and serialized as the schema.
#[derive(Clone)]
pub struct Schema(std::sync::Arc<(Value, jsonschema::Validator)>);

impl Schema {
    /// The validator of `schema`, or an error saying why it is not a valid JSON Schema.
    pub fn new(schema: Value) -> Result<Schema, String> {
        use std::sync::{LazyLock, Mutex};
        type Built = (Value, jsonschema::Validator);
        static BUILT: LazyLock<Mutex<std::collections::HashMap<String, std::sync::Weak<Built>>>> =
            LazyLock::new(Mutex::default);
        // Objects serialize with their keys sorted: the same schema, the same text.
        let key = schema.to_string();
        shared(&BUILT, &key, || {
            let validator = jsonschema::validator_for(&schema).map_err(|e| e.to_string())?;
            Ok((schema, validator))
        })
        .map(Schema)
    }

    pub fn value(&self) -> &Value {
        &self.0.0
    }

    pub fn validator(&self) -> &jsonschema::Validator {
        &self.0.1
    }
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value().fmt(f)
    }
}

impl PartialEq for Schema {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

impl Serialize for Schema {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The regex crate's error on one line: a syntax error is drawn over several lines
/// (the pattern, a caret, the reason), and a message is one line of `validate`.
fn regex_error(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => text
            .lines()
            .filter_map(|l| l.strip_prefix("error: "))
            .next_back()
            .unwrap_or(text)
            .to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn build(spec: Value) -> Result<Assertion, String> {
        let spec: AssertionSpec = serde_json::from_value(spec).map_err(|e| e.to_string())?;
        spec.build(Pos::START, &mut |p: &str| {
            Ok((format!("schemas/{p}"), json!({"type": "object"})))
        })
    }

    /// Every case of a suite may write the same `regex`: it is compiled once, and the
    /// answers are judged with that compiled pattern.
    #[test]
    fn a_pattern_is_compiled_once_for_every_assertion_that_writes_it() -> Result<(), String> {
        let compiled = |spec| match build(spec).map(|a| a.check) {
            Ok(Check::Regex { pattern }) => Ok(pattern),
            other => Err(format!("{other:?}")),
        };
        let a = compiled(json!({"type": "regex", "value": "^once \\d+$"}))?;
        let b = compiled(json!({"type": "not-regex", "value": "^once \\d+$"}))?;
        let c = compiled(json!({"type": "regex", "value": "^twice \\d+$"}))?;
        assert!(std::sync::Arc::ptr_eq(&a.0, &b.0));
        assert!(!std::sync::Arc::ptr_eq(&a.0, &c.0));
        assert!(a.is_match("once 12") && !c.is_match("once 12"));
        assert_eq!(serde_json::to_value(&a).ok(), Some(json!("^once \\d+$")));
        Ok(())
    }

    /// A validator was built for every answer; now once for every assertion that writes
    /// the same schema, the same written in another key order too.
    #[test]
    fn a_schema_is_built_once_for_every_assertion_that_writes_it() -> Result<(), String> {
        let built = |spec| match build(spec).map(|a| a.check) {
            Ok(Check::JsonSchema { schema, .. }) => Ok(schema),
            other => Err(format!("{other:?}")),
        };
        let schema = json!({"type": "object", "required": ["decision"]});
        let reordered = json!({"required": ["decision"], "type": "object"});
        let a = built(json!({"type": "json-schema", "value": schema}))?;
        let b = built(json!({"type": "json-schema", "value": reordered}))?;
        let c = built(json!({"type": "json-schema", "value": {"type": "array"}}))?;
        assert!(std::sync::Arc::ptr_eq(&a.0, &b.0));
        assert!(!std::sync::Arc::ptr_eq(&a.0, &c.0));
        assert!(a.validator().is_valid(&json!({"decision": "refund"})));
        assert!(!a.validator().is_valid(&json!({})));
        assert_eq!(serde_json::to_value(&a).ok(), Some(schema));
        assert!(build(json!({"type": "json-schema", "value": {"type": 12}})).is_err());
        Ok(())
    }

    #[test]
    fn builds_typed_checks() -> Result<(), String> {
        let a = build(json!({"type": "not-contains", "value": "sorry"}))?;
        assert!(a.negate);
        assert_eq!(
            a.check,
            Check::Contains {
                value: "sorry".into()
            }
        );
        let a = build(json!({"type": "not-refusal"}))?;
        assert_eq!((a.check, a.negate), (Check::Refusal, true));
        let a = build(json!({"type": "json-schema", "value": "x.json"}))?;
        assert_eq!(
            a.check,
            Check::JsonSchema {
                source: Some("schemas/x.json".into()),
                schema: Schema::new(json!({"type": "object"}))?
            }
        );
        let a = build(json!({"type": "tool-sequence", "value": ["a", "b"]}))?;
        assert_eq!(
            a.check,
            Check::ToolSequence {
                tools: vec!["a".into(), "b".into()]
            }
        );
        Ok(())
    }

    #[test]
    fn explains_bad_assertions() {
        assert_eq!(
            build(json!({"type": "contians", "value": "x"})),
            Err("unknown assertion type `contians`, did you mean `contains`?".into())
        );
        assert_eq!(
            build(json!({"type": "max-words", "value": "ten"})),
            Err("`max-words` needs a whole number ≥ 0 as `value`".into())
        );
        assert!(
            build(json!({"type": "json-schema", "value": {"type": "nonsense"}}))
                .is_err_and(|e| e.starts_with("`json-schema`: not a valid JSON Schema"))
        );
        assert_eq!(
            build(json!({"type": "is-json", "value": true})),
            Err("`is-json` takes no `value`".into())
        );
        assert_eq!(
            build(json!({"type": "not-max-words", "value": 3})),
            Err("unknown assertion type `not-max-words`, did you mean `max-words`?".into())
        );
        assert_eq!(
            build(json!({"type": "regex", "value": "(unclosed"})),
            Err("`regex`: invalid regular expression: unclosed group".into())
        );
    }
}
