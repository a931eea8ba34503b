//! Which fields of an artifact changed between two versions, and the instruction diff.

use serde::Serialize;
use serde_json::Value;
use similar::TextDiff;

use crate::artifact::{Artifact, Message, ResponseFormat, Role};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// Dotted field name: `model.temperature`, `tools.definitions`, `messages`.
    pub field: String,
    /// `None` where the field is unset on that side or a change is only described
    /// (`tools.definitions`); serialized as `null`, never left out, as the report
    /// template reads it.
    pub before: Option<String>,
    pub after: Option<String>,
    /// Whether the field is part of the behaviour fingerprint.
    pub behavioural: bool,
}

fn show<T: Serialize>(value: &T) -> Option<String> {
    match serde_json::to_value(value).ok()? {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

struct Collector(Vec<FieldChange>);

impl Collector {
    fn field<T: Serialize + PartialEq>(&mut self, name: &str, a: &T, b: &T, behavioural: bool) {
        if a != b {
            self.0.push(FieldChange {
                field: name.to_string(),
                before: show(a),
                after: show(b),
                behavioural,
            });
        }
    }

    fn described(&mut self, name: &str, before: Option<String>, after: Option<String>) {
        self.0.push(FieldChange {
            field: name.to_string(),
            before,
            after,
            behavioural: true,
        });
    }
}

/// Every field that differs, in a fixed order: identity, model, format, tools, retrieval,
/// messages, then the fields that do not change behaviour.
pub fn diff(base: &Artifact, head: &Artifact) -> Vec<FieldChange> {
    let mut c = Collector(Vec::new());
    c.field("id", &base.id, &head.id, false);
    c.field("version", &base.version, &head.version, false);
    let (m0, m1) = (&base.model, &head.model);
    c.field("model.provider", &m0.provider, &m1.provider, true);
    c.field("model.name", &m0.name, &m1.name, true);
    c.field("model.family", &m0.family, &m1.family, true);
    c.field("model.temperature", &m0.temperature, &m1.temperature, true);
    c.field("model.max_tokens", &m0.max_tokens, &m1.max_tokens, true);
    c.field(
        "model.max_completion_tokens",
        &m0.max_completion_tokens,
        &m1.max_completion_tokens,
        true,
    );
    c.field("model.top_p", &m0.top_p, &m1.top_p, true);
    c.field("model.seed", &m0.seed, &m1.seed, true);
    c.field("model.stop", &m0.stop, &m1.stop, true);
    c.field(
        "model.presence_penalty",
        &m0.presence_penalty,
        &m1.presence_penalty,
        true,
    );
    c.field(
        "model.frequency_penalty",
        &m0.frequency_penalty,
        &m1.frequency_penalty,
        true,
    );

    let format_name = |f: &ResponseFormat| match f {
        ResponseFormat::Text => "text",
        ResponseFormat::JsonObject => "json_object",
        ResponseFormat::JsonSchema { .. } => "json_schema",
    };
    let (f0, f1) = (&base.response_format, &head.response_format);
    if format_name(f0) != format_name(f1) {
        c.described(
            "response_format",
            Some(format_name(f0).into()),
            Some(format_name(f1).into()),
        );
    } else if let (
        ResponseFormat::JsonSchema {
            schema: s0,
            name: n0,
            source: src0,
            strict: t0,
        },
        ResponseFormat::JsonSchema {
            schema: s1,
            name: n1,
            source: src1,
            strict: t1,
        },
    ) = (f0, f1)
    {
        c.field("response_format.name", n0, n1, true);
        c.field("response_format.strict", t0, t1, true);
        if s0 != s1 {
            let where_ = src1
                .as_ref()
                .or(src0.as_ref())
                .map_or("inline", String::as_str);
            c.described(
                "response_format.schema",
                None,
                Some(format!("schema content changed ({where_})")),
            );
        }
    }

    let empty = Vec::new();
    let (t0, t1) = (base.tools.as_ref(), head.tools.as_ref());
    c.field(
        "tools.schema_version",
        &t0.and_then(|t| t.schema_version.clone()),
        &t1.and_then(|t| t.schema_version.clone()),
        true,
    );
    let defs0 = t0.map_or(&empty, |t| &t.definitions);
    let defs1 = t1.map_or(&empty, |t| &t.definitions);
    if defs0 != defs1 {
        c.described("tools.definitions", None, Some(tool_summary(defs0, defs1)));
    }

    match (&base.retrieval, &head.retrieval) {
        (Some(r0), Some(r1)) => {
            c.field("retrieval.index", &r0.index, &r1.index, true);
            c.field("retrieval.top_k", &r0.top_k, &r1.top_k, true);
            c.field("retrieval.min_score", &r0.min_score, &r1.min_score, true);
            c.field("retrieval.filters", &r0.filters, &r1.filters, true);
        }
        (r0, r1) => c.field("retrieval", r0, r1, true),
    }

    if base.messages != head.messages {
        c.described(
            "messages",
            Some(format!("{} messages", base.messages.len())),
            Some(format!(
                "{} messages: {} (see the diff)",
                head.messages.len(),
                message_edits(&base.messages, &head.messages)
            )),
        );
    }
    c.field(
        "known_limitations",
        &base.known_limitations,
        &head.known_limitations,
        false,
    );
    c.field("description", &base.description, &head.description, false);
    c.field("owner", &base.owner, &head.owner, false);
    c.field("evals", &base.evals, &head.evals, false);
    c.0
}

/// "added `escalate`; removed `refund`; changed `lookup_order`".
fn tool_summary(before: &[Value], after: &[Value]) -> String {
    let name = |d: &Value| {
        d.pointer("/function/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    };
    // By name, the first of each (as a scan would find it): thousands of tools are
    // compared in linear time.
    fn by_name(
        list: &[Value],
        name: impl Fn(&Value) -> String,
    ) -> std::collections::HashMap<String, &Value> {
        list.iter().rev().map(|d| (name(d), d)).collect()
    }
    let (old, new) = (by_name(before, name), by_name(after, name));
    let mut parts = Vec::new();
    let added: Vec<String> = after
        .iter()
        .map(name)
        .filter(|n| !old.contains_key(n))
        .collect();
    let removed: Vec<String> = before
        .iter()
        .map(name)
        .filter(|n| !new.contains_key(n))
        .collect();
    let changed: Vec<String> = after
        .iter()
        .filter(|d| old.get(&name(d)).is_some_and(|o| *o != *d))
        .map(name)
        .collect();
    /// Names listed per kind of change; a file of thousands of tools says how many more.
    const NAMED: usize = 10;
    for (label, names) in [("added", added), ("removed", removed), ("changed", changed)] {
        if !names.is_empty() {
            let list: Vec<String> = names.iter().take(NAMED).map(|n| format!("`{n}`")).collect();
            let more = match names.len().saturating_sub(NAMED) {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            parts.push(format!("{label} {}{more}", list.join(", ")));
        }
    }
    if parts.is_empty() {
        "reordered".to_string()
    } else {
        parts.join("; ")
    }
}

fn messages_text(artifact: &Artifact) -> String {
    let mut out = String::new();
    for m in &artifact.messages {
        let role = match m.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        out.push_str(&format!("[{role}]\n{}\n", m.content));
    }
    out
}

/// A unified diff of the message text, `None` when the messages are equal.
pub fn message_diff(base: &Artifact, head: &Artifact) -> Option<String> {
    if base.messages == head.messages {
        return None;
    }
    let (old, new) = (messages_text(base), messages_text(head));
    let diff = TextDiff::from_lines(&old, &new);
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header(
                &format!("base/{}", base.path),
                &format!("head/{}", head.path),
            )
            .to_string(),
    )
}

/// How one message list became the other, by message: "1 changed, 20 removed".
fn message_edits(base: &[Message], head: &[Message]) -> String {
    let (mut changed, mut added, mut removed) = (0, 0, 0);
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, base, head) {
        let (tag, old, new) = op.as_tag_tuple();
        match tag {
            similar::DiffTag::Equal => {}
            similar::DiffTag::Delete => removed += old.len(),
            similar::DiffTag::Insert => added += new.len(),
            similar::DiffTag::Replace => {
                let both = old.len().min(new.len());
                changed += both;
                removed += old.len() - both;
                added += new.len() - both;
            }
        }
    }
    [(changed, "changed"), (added, "added"), (removed, "removed")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::load;
    use crate::config::Config;
    use crate::source::mem::MemTree;

    const BASE: &str = r#"
version: 3
model: {provider: openai, name: gpt-4o-mini, family: gpt-4o, temperature: 0.2}
messages:
  - role: system
    content: |
      You help customers of Acme.
      Keep answers short.
  - {role: user, content: "{{ question }}"}
tools:
  schema_version: "2025-01"
  definitions:
    - {type: function, function: {name: lookup_order, parameters: {type: object}}}
    - {type: function, function: {name: issue_refund, parameters: {type: object}}}
"#;

    fn artifact(text: &str) -> Artifact {
        let tree = MemTree::new().with("prompts/a.prompt.yaml", text);
        match load(&tree, "prompts/a.prompt.yaml", &Config::default()) {
            Ok(a) => a,
            Err(d) => panic!("{d}"),
        }
    }

    #[test]
    fn lists_changed_fields_with_before_and_after() {
        let head = BASE
            .replace("version: 3", "version: 4")
            .replace("temperature: 0.2", "temperature: 0.7")
            .replace("2025-01", "2025-06")
            .replace("Keep answers short.", "Keep answers under 50 words.")
            .replace(
                "name: issue_refund, parameters: {type: object}",
                "name: issue_refund, parameters: {type: object, required: [order_id]}",
            );
        let changes = diff(&artifact(BASE), &artifact(&head));
        let summary: Vec<String> = changes
            .iter()
            .map(|c| {
                format!(
                    "{}: {} -> {}",
                    c.field,
                    c.before.as_deref().unwrap_or("-"),
                    c.after.as_deref().unwrap_or("-")
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                "version: 3 -> 4",
                "model.temperature: 0.2 -> 0.7",
                "tools.schema_version: 2025-01 -> 2025-06",
                "tools.definitions: - -> changed `issue_refund`",
                "messages: 2 messages -> 2 messages: 1 changed (see the diff)",
            ]
        );
    }

    /// Thousands of tools: compared by name in linear time, and named at most ten a kind.
    #[test]
    fn many_tools_are_summarized_in_linear_time() {
        let tools = |n: usize, description: &str| -> Vec<Value> {
            (0..n)
                .map(|i| serde_json::json!({"type": "function", "function": {"name": format!("t{i}"), "description": description}}))
                .collect()
        };
        let (before, mut after) = (tools(200_000, "a"), tools(200_000, "b"));
        after.truncate(199_990);
        after.push(serde_json::json!({"type": "function", "function": {"name": "new"}}));
        assert_eq!(
            tool_summary(&before, &after),
            "added `new`; removed `t199990`, `t199991`, `t199992`, `t199993`, `t199994`, \
             `t199995`, `t199996`, `t199997`, `t199998`, `t199999`; changed `t0`, `t1`, `t2`, \
             `t3`, `t4`, `t5`, `t6`, `t7`, `t8`, `t9` and 199980 more"
        );
    }

    #[test]
    fn counts_message_edits_by_message() {
        let m = |role, content: &str| Message {
            role,
            content: content.into(),
        };
        let base = [
            m(Role::System, "Be strict."),
            m(Role::User, "Write a poem."),
            m(Role::Assistant, "Sorry."),
            m(Role::User, "{{ question }}"),
        ];
        let head = [
            m(Role::System, "Be friendly."),
            m(Role::User, "{{ question }}"),
        ];
        assert_eq!(message_edits(&base, &head), "1 changed, 2 removed");
        assert_eq!(message_edits(&head, &base), "1 changed, 2 added");
        assert_eq!(message_edits(&base, &base[..1]), "3 removed");
    }

    #[test]
    fn diffs_the_instruction_text() {
        let head = BASE.replace("Keep answers short.", "Keep answers under 50 words.");
        let diff = message_diff(&artifact(BASE), &artifact(&head)).expect("differs");
        assert!(
            diff.contains("-Keep answers short.\n+Keep answers under 50 words.\n"),
            "{diff}"
        );
        assert!(
            diff.starts_with("--- base/prompts/a.prompt.yaml\n+++ head/prompts/a.prompt.yaml\n")
        );
        assert_eq!(message_diff(&artifact(BASE), &artifact(BASE)), None);
    }
}
