//! Judging one answer against one assertion: pure, deterministic, one line of reason
//! when it fails.

use serde::Serialize;
use serde_json::Value;

use crate::artifact::assertion::{Assertion, Check, StringOp};
use crate::artifact::github_models;

/// A tool call the model made, with its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ToolCall {
    pub name: String,
    pub arguments: Value,
}

/// What a case's run produced, as far as assertions look at it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Answer {
    pub text: String,
    /// A refusal the API marked as one ([`crate::eval::provider::Completion::refusal`]):
    /// a refusal whatever its wording.
    pub refusal: bool,
    /// Every call, in order, across the steps of the tool loop.
    pub tool_calls: Vec<ToolCall>,
    pub latency_ms: f64,
    pub output_tokens: u64,
    /// `None` when the model has no price: a cost assertion cannot be judged then.
    pub cost_usd: Option<f64>,
}

/// The verdict on one assertion.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Judgement {
    Pass,
    /// Why, in one line: expected vs got, shortened.
    Fail {
        reason: String,
    },
    /// Not decidable here: a model-graded rubric (needs the judge), a cost without a
    /// price. Never counted as a pass or a fail.
    Unjudged {
        reason: String,
    },
}

/// Answers that open like this are refusals.
const REFUSALS: [&str; 16] = [
    "i can't",
    "i cannot",
    "i can not",
    "i won't",
    "i will not",
    "i'm unable",
    "i am unable",
    "i'm not able",
    "i am not able",
    "i'm sorry, but",
    "i am sorry, but",
    "sorry, i can only",
    "sorry, but i",
    "i can only help with",
    "as an ai",
    "i must decline",
];

/// Whether `text` refuses: one of the usual refusal phrases within its first sentences.
pub fn is_refusal(text: &str) -> bool {
    let head: String = text
        .chars()
        .take(240)
        .collect::<String>()
        .to_lowercase()
        .replace('’', "'");
    REFUSALS.iter().any(|p| head.contains(p))
}

/// Words by Unicode word boundaries (UAX #29): punctuation is no word, and a language
/// written without spaces still has words (each CJK ideograph is one). Counting runs of
/// non-space made a 420-character Chinese answer one word.
pub fn word_count(text: &str) -> usize {
    use unicode_segmentation::UnicodeSegmentation;
    text.unicode_words().count()
}

/// The answer as JSON: the whole text, or the single fenced block it consists of.
pub fn parse_json(text: &str) -> Option<Value> {
    let trimmed = text.trim();
    if let Ok(v) = serde_json::from_str(trimmed) {
        return Some(v);
    }
    let inner = trimmed.strip_prefix("```")?.strip_suffix("```")?;
    let inner = inner.strip_prefix("json").unwrap_or(inner);
    serde_json::from_str(inner.trim()).ok()
}

/// `$`, `.key`, `['key']`, `["key"]` and `[n]` steps.
pub fn json_path<'v>(value: &'v Value, path: &str) -> Result<Option<&'v Value>, String> {
    let mut rest = path
        .strip_prefix('$')
        .ok_or_else(|| format!("path `{path}` must start with `$`"))?;
    let mut current = value;
    while !rest.is_empty() {
        let next = if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let (key, tail) = r.split_at(end);
            rest = tail;
            current.get(key)
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| format!("path `{path}`: unclosed `[`"))?;
            let (inside, tail) = r.split_at(end);
            rest = &tail[1..];
            let quoted = inside
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inside.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
            match quoted {
                Some(key) => current.get(key),
                None => {
                    let index: usize = inside
                        .parse()
                        .map_err(|_| format!("path `{path}`: `[{inside}]` is not an index"))?;
                    current.get(index)
                }
            }
        } else {
            return Err(format!("path `{path}`: expected `.` or `[` at `{rest}`"));
        };
        match next {
            Some(v) => current = v,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// JSON equality where numbers compare by value (`1800` equals `1800.0`).
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// `text` cut to `max` characters with an ellipsis, on one line, control characters
/// (terminal escapes) and bidirectional ones shown as U+FFFD.
pub fn short(text: &str, max: usize) -> String {
    let hidden = |c: char| c.is_control() || crate::markup::is_bidi_control(c);
    let flat: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .map(|c| if hidden(c) { '\u{FFFD}' } else { c })
        .collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max).collect();
    format!("{cut}…")
}

fn names(calls: &[ToolCall]) -> Vec<&str> {
    calls.iter().map(|c| c.name.as_str()).collect()
}

/// Judge `answer` against `assertion`.
pub fn judge(assertion: &Assertion, answer: &Answer) -> Judgement {
    let text = answer.text.as_str();
    let calls = names(&answer.tool_calls);
    // (held, what was expected, what was seen instead: default the answer's text), for
    // the assertion without its `not-`.
    let (held, expected, seen): (bool, String, Option<String>) = match &assertion.check {
        Check::Equals { value } => (
            text.trim() == value.trim(),
            format!("`{}`", short(value, 60)),
            None,
        ),
        Check::Contains { value } => (
            text.contains(value.as_str()),
            format!("text containing `{value}`"),
            None,
        ),
        Check::Icontains { value } => (
            text.to_lowercase().contains(&value.to_lowercase()),
            format!("text containing `{value}` (any case)"),
            None,
        ),
        Check::ContainsAny { values } => (
            values.iter().any(|v| text.contains(v.as_str())),
            format!("text containing one of {values:?}"),
            None,
        ),
        Check::ContainsAll { values } => (
            values.iter().all(|v| text.contains(v.as_str())),
            format!("text containing all of {values:?}"),
            None,
        ),
        Check::StartsWith { value } => (
            text.trim_start().starts_with(value.as_str()),
            format!("text starting with `{value}`"),
            None,
        ),
        Check::EndsWith { value } => (
            text.trim_end().ends_with(value.as_str()),
            format!("text ending with `{value}`"),
            None,
        ),
        Check::Regex { pattern } => (
            pattern.is_match(text),
            format!("text matching `{pattern}`"),
            None,
        ),
        Check::IsJson => (parse_json(text).is_some(), "valid JSON".into(), None),
        Check::JsonSchema { schema, .. } => {
            let expected = "JSON valid against the schema".to_string();
            match parse_json(text) {
                None => (false, expected, None),
                Some(value) => match schema.validator().validate(&value) {
                    Ok(()) => (true, expected, None),
                    Err(e) => (
                        false,
                        expected,
                        Some(format!(
                            "`{}`: {}",
                            e.instance_path(),
                            short(&e.to_string(), 80)
                        )),
                    ),
                },
            }
        }
        Check::JsonPath { path, expected } => {
            let want = match expected {
                Some(v) => format!("`{path}` = {v}"),
                None => format!("a value at `{path}`"),
            };
            match parse_json(text).map(|v| json_path(&v, path).map(|f| f.cloned())) {
                None => (false, format!("JSON with {want}"), None),
                Some(Err(e)) => return unjudged(e),
                Some(Ok(None)) => (false, want, Some(format!("no value at `{path}`"))),
                Some(Ok(Some(found))) => (
                    expected.as_ref().is_none_or(|v| same_json(&found, v)),
                    want,
                    Some(format!("`{}`", short(&found.to_string(), 60))),
                ),
            }
        }
        Check::JsonKeys { allowed } => match parse_json(text) {
            Some(Value::Object(map)) => {
                let extra: Vec<&String> = map.keys().filter(|k| !allowed.contains(k)).collect();
                (
                    extra.is_empty(),
                    format!("no keys beyond {allowed:?}"),
                    Some(format!("extra {extra:?}")),
                )
            }
            _ => (
                false,
                format!("a JSON object with keys from {allowed:?}"),
                None,
            ),
        },
        Check::Refusal => (answer.refusal || is_refusal(text), "a refusal".into(), None),
        Check::MaxWords { limit } => {
            let n = word_count(text);
            (
                n as u64 <= *limit,
                format!("at most {limit} words"),
                Some(n.to_string()),
            )
        }
        Check::MinWords { limit } => {
            let n = word_count(text);
            (
                n as u64 >= *limit,
                format!("at least {limit} words"),
                Some(n.to_string()),
            )
        }
        Check::MaxChars { limit } => {
            let n = text.chars().count();
            (
                n as u64 <= *limit,
                format!("at most {limit} characters"),
                Some(n.to_string()),
            )
        }
        Check::ToolCalled { tool } => (
            calls.contains(&tool.as_str()),
            format!("a call to `{tool}`"),
            Some(format!("{calls:?}")),
        ),
        Check::ToolSequence { tools } => (
            calls == tools.iter().map(String::as_str).collect::<Vec<_>>(),
            format!("calls {tools:?}"),
            Some(format!("{calls:?}")),
        ),
        Check::ToolArgs { tool, args } => {
            let to_tool: Vec<&ToolCall> = answer
                .tool_calls
                .iter()
                .filter(|c| c.name == *tool)
                .collect();
            let held = to_tool.iter().any(|c| {
                args.iter()
                    .all(|(k, v)| c.arguments.get(k).is_some_and(|a| same_json(a, v)))
            });
            let seen: Vec<String> = to_tool
                .iter()
                .map(|c| short(&c.arguments.to_string(), 60))
                .collect();
            (
                held,
                format!("`{tool}` called with {}", Value::Object(args.clone())),
                Some(format!("{seen:?}")),
            )
        }
        Check::NoToolCall => (
            calls.is_empty(),
            "no tool call".into(),
            Some(format!("{calls:?}")),
        ),
        Check::LatencyMs { limit } => (
            answer.latency_ms <= *limit,
            format!("at most {limit} ms"),
            Some(format!("{:.0} ms", answer.latency_ms)),
        ),
        Check::CostUsd { limit } => match answer.cost_usd {
            Some(cost) => (
                cost <= *limit,
                format!("at most ${limit}"),
                Some(format!("${cost:.6}")),
            ),
            None => return unjudged("cost unknown: no price for this model in `pricing`".into()),
        },
        Check::MaxTokens { limit } => (
            answer.output_tokens <= *limit,
            format!("at most {limit} output tokens"),
            Some(answer.output_tokens.to_string()),
        ),
        Check::GithubString { op, value } => {
            let shown = short(value, 60);
            let expected = match op {
                StringOp::Equals => format!("exactly `{shown}`"),
                StringOp::Contains => format!("text containing `{shown}` (any case)"),
                StringOp::StartsWith => format!("text starting with `{shown}` (any case)"),
                StringOp::EndsWith => format!("text ending with `{shown}` (any case)"),
            };
            (
                github_models::string_holds(*op, text, value),
                expected,
                None,
            )
        }
        Check::LlmRubric { .. } | Check::ModelGraded(_) => {
            return unjudged("graded by the judge provider".into());
        }
    };
    if held != assertion.negate {
        return Judgement::Pass;
    }
    let seen = seen.unwrap_or_else(|| match answer.refusal {
        true => format!("a refusal: `{}`", short(text, 80)),
        false => format!("`{}`", short(text, 80)),
    });
    let reason = if assertion.negate {
        format!("{}: expected not {expected}, got {seen}", assertion.name)
    } else {
        format!("{}: expected {expected}, got {seen}", assertion.name)
    };
    Judgement::Fail { reason }
}

fn unjudged(reason: String) -> Judgement {
    Judgement::Unjudged { reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::assertion::AssertionSpec;
    use crate::diag::Pos;
    use serde_json::json;

    fn assertion(spec: Value) -> Assertion {
        let spec: AssertionSpec = serde_json::from_value(spec).expect("spec");
        spec.build(Pos::START, &mut |_: &str| Err("no files".to_string()))
            .expect("builds")
    }

    fn answer(text: &str) -> Answer {
        Answer {
            text: text.into(),
            ..Answer::default()
        }
    }

    fn verdict(spec: Value, a: &Answer) -> Judgement {
        judge(&assertion(spec), a)
    }

    fn passes(spec: Value, a: &Answer) {
        assert_eq!(verdict(spec.clone(), a), Judgement::Pass, "{spec}");
    }

    fn fails(spec: Value, a: &Answer) -> String {
        match verdict(spec.clone(), a) {
            Judgement::Fail { reason } => reason,
            other => panic!("{spec} should fail, got {other:?}"),
        }
    }

    #[test]
    fn excerpts_are_one_line_without_controls_or_bidi_overrides() {
        assert_eq!(
            short("a\n\u{1b}[2J b\u{202e}c\u{2066}", 80),
            "a \u{FFFD}[2J b\u{FFFD}c\u{FFFD}"
        );
        assert_eq!(short("abcdef", 3), "abc…");
    }

    /// Chinese is written without spaces: 420 characters were one word, and passed any
    /// `max-words`.
    #[test]
    fn words_are_counted_by_unicode_word_boundaries() {
        let chinese =
            answer(&"您的退款申请已经批准，款项将在三个工作日内退回支付账户。".repeat(15));
        assert_eq!(chinese.text.chars().count(), 420);
        assert_eq!(
            fails(json!({"type": "max-words", "value": 15}), &chinese),
            "max-words: expected at most 15 words, got 390"
        );
        assert_eq!(word_count("Refund approved — in 3–5 days, João."), 7);
        assert_eq!(word_count("払い戻し OK"), 5);
    }

    #[test]
    fn text_assertions_pass_and_fail() {
        let a = answer("Your refund of $59.99 is approved.");
        passes(json!({"type": "contains", "value": "refund"}), &a);
        passes(json!({"type": "icontains", "value": "REFUND"}), &a);
        passes(json!({"type": "not-contains", "value": "sorry"}), &a);
        passes(
            json!({"type": "contains-any", "value": ["nope", "approved"]}),
            &a,
        );
        passes(
            json!({"type": "contains-all", "value": ["refund", "approved"]}),
            &a,
        );
        passes(json!({"type": "starts-with", "value": "Your"}), &a);
        passes(json!({"type": "ends-with", "value": "approved."}), &a);
        passes(json!({"type": "regex", "value": "\\$\\d+\\.\\d{2}"}), &a);
        passes(
            json!({"type": "equals", "value": "Your refund of $59.99 is approved."}),
            &a,
        );
        passes(json!({"type": "max-words", "value": 6}), &a);
        passes(json!({"type": "min-words", "value": 6}), &a);
        passes(json!({"type": "max-chars", "value": 40}), &a);
        assert_eq!(
            fails(json!({"type": "contains", "value": "denied"}), &a),
            "contains: expected text containing `denied`, got `Your refund of $59.99 is approved.`"
        );
        assert_eq!(
            fails(json!({"type": "not-contains", "value": "refund"}), &a),
            "not-contains: expected not text containing `refund`, got `Your refund of $59.99 is approved.`"
        );
        assert_eq!(
            fails(json!({"type": "max-words", "value": 3}), &a),
            "max-words: expected at most 3 words, got 6"
        );
        fails(
            json!({"type": "contains-all", "value": ["refund", "denied"]}),
            &a,
        );
        fails(json!({"type": "starts-with", "value": "Sorry"}), &a);
        fails(json!({"type": "regex", "value": "^\\d+$"}), &a);
        fails(json!({"type": "min-words", "value": 7}), &a);
        fails(json!({"type": "max-chars", "value": 10}), &a);
    }

    #[test]
    fn refusals() {
        passes(
            json!({"type": "refusal"}),
            &answer("Sorry, I can only help with Acme orders."),
        );
        passes(
            json!({"type": "refusal"}),
            &answer("I’m unable to share other customers' data."),
        );
        passes(
            json!({"type": "not-refusal"}),
            &answer("Sure, your order shipped today."),
        );
        assert_eq!(
            fails(json!({"type": "not-refusal"}), &answer("I cannot do that.")),
            "not-refusal: expected not a refusal, got `I cannot do that.`"
        );
        // Marked by the API: a refusal whatever the wording.
        let marked = Answer {
            refusal: true,
            ..answer("Let me stop here.")
        };
        passes(json!({"type": "refusal"}), &marked);
        assert_eq!(
            fails(json!({"type": "not-refusal"}), &marked),
            "not-refusal: expected not a refusal, got a refusal: `Let me stop here.`"
        );
    }

    #[test]
    fn json_assertions() {
        let a = answer(
            "```json\n{\"vendor\": \"Acme\", \"total\": 1800, \"lines\": [{\"sku\": \"A-1\"}]}\n```",
        );
        passes(json!({"type": "is-json"}), &a);
        passes(
            json!({"type": "json-path", "path": "$.total", "value": 1800.0}),
            &a,
        );
        passes(
            json!({"type": "json-path", "path": "$.lines[0]['sku']", "value": "A-1"}),
            &a,
        );
        passes(
            json!({"type": "json-keys", "value": ["vendor", "total", "lines"]}),
            &a,
        );
        passes(
            json!({"type": "json-schema", "value": {"type": "object", "required": ["vendor"]}}),
            &a,
        );
        assert_eq!(
            fails(
                json!({"type": "json-keys", "value": ["vendor", "total"]}),
                &a
            ),
            "json-keys: expected no keys beyond [\"vendor\", \"total\"], got extra [\"lines\"]"
        );
        assert_eq!(
            fails(json!({"type": "json-path", "path": "$.currency"}), &a),
            "json-path: expected a value at `$.currency`, got no value at `$.currency`"
        );
        let reason = fails(
            json!({"type": "json-schema", "value": {"type": "object", "properties": {"total": {"type": "string"}}}}),
            &a,
        );
        assert!(
            reason.starts_with("json-schema: expected JSON valid against the schema, got `/total`"),
            "{reason}"
        );
        fails(json!({"type": "is-json"}), &answer("not json"));
    }

    #[test]
    fn tool_assertions() {
        let a = Answer {
            tool_calls: vec![
                ToolCall {
                    name: "lookup_order".into(),
                    arguments: json!({"order_id": "AC-1"}),
                },
                ToolCall {
                    name: "issue_refund".into(),
                    arguments: json!({"order_id": "AC-1", "amount": 12.5}),
                },
            ],
            ..Answer::default()
        };
        passes(json!({"type": "tool-called", "value": "issue_refund"}), &a);
        passes(
            json!({"type": "tool-sequence", "value": ["lookup_order", "issue_refund"]}),
            &a,
        );
        passes(
            json!({"type": "tool-args", "tool": "issue_refund", "value": {"amount": 12.50}}),
            &a,
        );
        passes(json!({"type": "no-tool-call"}), &Answer::default());
        assert_eq!(
            fails(
                json!({"type": "tool-sequence", "value": ["issue_refund"]}),
                &a
            ),
            "tool-sequence: expected calls [\"issue_refund\"], got [\"lookup_order\", \"issue_refund\"]"
        );
        fails(
            json!({"type": "tool-args", "tool": "issue_refund", "value": {"amount": 99}}),
            &a,
        );
        fails(json!({"type": "no-tool-call"}), &a);
        fails(
            json!({"type": "not-tool-called", "value": "lookup_order"}),
            &a,
        );
    }

    #[test]
    fn metrics_and_unjudged() {
        let a = Answer {
            latency_ms: 420.0,
            output_tokens: 80,
            cost_usd: Some(0.0001),
            ..Answer::default()
        };
        passes(json!({"type": "latency-ms", "value": 500}), &a);
        passes(json!({"type": "max-tokens", "value": 80}), &a);
        passes(json!({"type": "cost-usd", "value": 0.001}), &a);
        fails(json!({"type": "latency-ms", "value": 100}), &a);
        fails(json!({"type": "max-tokens", "value": 10}), &a);
        let unpriced = Answer {
            cost_usd: None,
            ..a
        };
        assert!(matches!(
            verdict(json!({"type": "cost-usd", "value": 1}), &unpriced),
            Judgement::Unjudged { .. }
        ));
        assert!(matches!(
            verdict(
                json!({"type": "llm-rubric", "value": "is polite"}),
                &unpriced
            ),
            Judgement::Unjudged { .. }
        ));
    }
}
