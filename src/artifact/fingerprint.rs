//! The behaviour fingerprint: a hash of everything that changes what the model is asked
//! — messages, model and parameters, response format (with the schema's content), tools
//! (with the definitions' content), retrieval — and nothing else (not id, version,
//! description, owner, limitations or evals).
//!
//! It is computed over canonical JSON (keys sorted, numbers as parsed), so YAML layout,
//! key order, quoting and JSON formatting of referenced files do not move it.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Artifact, ResponseFormat};

/// Bumped whenever what goes into the hash changes, so old and new never compare equal.
const ALGORITHM: &str = "promptgate-fingerprint/1";

/// `sha256:` and 64 hex digits.
pub fn fingerprint(artifact: &Artifact) -> String {
    let response_format = match &artifact.response_format {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
            ..
        } => {
            json!({"type": "json_schema", "name": name, "schema": schema, "strict": strict})
        }
    };
    let tools = artifact
        .tools
        .as_ref()
        .map(|t| json!({"schema_version": t.schema_version, "definitions": t.definitions}));
    let doc = json!({
        "algorithm": ALGORITHM,
        "model": artifact.model,
        "response_format": response_format,
        "messages": artifact.messages,
        "tools": tools,
        "retrieval": artifact.retrieval,
    });
    let mut canonical = Vec::with_capacity(1024);
    write_canonical(&doc, &mut canonical);
    let digest = Sha256::digest(&canonical);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The first 12 hex digits, for people.
pub fn short(fingerprint: &str) -> &str {
    let hex = fingerprint.strip_prefix("sha256:").unwrap_or(fingerprint);
    &hex[..hex.len().min(12)]
}

/// Write JSON with object keys sorted at every level, whatever map type serde_json was
/// built with; it is hashed as a whole.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(key.as_str(), out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &(impl serde::Serialize + ?Sized), out: &mut Vec<u8>) {
    // Writing a scalar to memory cannot fail.
    let _ = serde_json::to_writer(out, value);
}

#[cfg(test)]
mod tests {
    use crate::artifact::load;
    use crate::config::Config;
    use crate::source::mem::MemTree;

    const BASE: &str = r#"
id: support.refund
version: 4
description: Refund triage
model: {provider: openai, name: gpt-4o-mini, temperature: 0.2, max_tokens: 400}
response_format: {json_schema: ../schemas/refund.json}
messages:
  - {role: system, content: "You are the refund assistant for {{ company }}."}
  - {role: user, content: "{{ question }}"}
tools: {schema_version: "2025-01", definitions: ../tools/refund.json}
known_limitations: [Partial refunds are escalated]
"#;

    fn tree(artifact: &str, tools: &str, schema: &str) -> MemTree {
        MemTree::new()
            .with("prompts/refund.prompt.yaml", artifact)
            .with("tools/refund.json", tools)
            .with("schemas/refund.json", schema)
    }

    const TOOLS: &str = r#"[{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}]"#;
    const SCHEMA: &str = r#"{"type": "object", "properties": {"decision": {"type": "string"}}}"#;

    fn fp(t: &MemTree) -> String {
        match load(t, "prompts/refund.prompt.yaml", &Config::default()) {
            Ok(a) => a.fingerprint,
            Err(d) => panic!("{d}"),
        }
    }

    #[test]
    fn ignores_layout_order_and_metadata() {
        let base = fp(&tree(BASE, TOOLS, SCHEMA));
        let reformatted = r#"
known_limitations:
  - Something else entirely
tools:
  definitions: ../tools/refund.json
  schema_version: '2025-01'
messages:
  - role: system
    content: |
      You are the refund assistant for {{ company }}.
  - content: "{{ question }}"
    role: user
model:
  max_tokens: 400
  temperature: 0.20
  name: gpt-4o-mini
  provider: openai
response_format:
  json_schema: ../schemas/refund.json
version: 5
description: Another description
owner: "@acme/other"
"#;
        let pretty_tools = "[\n  {\n    \"function\": {\"parameters\": {\"type\": \"object\"}, \"name\": \"lookup_order\"},\n    \"type\": \"function\"\n  }\n]\n";
        assert_eq!(base, fp(&tree(reformatted, pretty_tools, SCHEMA)));
        assert!(base.starts_with("sha256:") && base.len() == 71);
    }

    #[test]
    fn moves_with_every_behaviour_change() {
        let base = fp(&tree(BASE, TOOLS, SCHEMA));
        let edits = [
            BASE.replace("refund assistant", "refunds assistant"),
            BASE.replace("temperature: 0.2", "temperature: 0.3"),
            BASE.replace("gpt-4o-mini", "gpt-4o"),
            BASE.replace("\"2025-01\"", "\"2025-02\""),
            BASE.replace("max_tokens: 400", "max_tokens: 400, seed: 1"),
            BASE.replace("{role: user", "{role: assistant"),
            BASE.replace(
                "known_limitations",
                "retrieval: {index: kb}\nknown_limitations",
            ),
        ];
        for edit in edits {
            assert_ne!(base, fp(&tree(&edit, TOOLS, SCHEMA)), "{edit}");
        }
        assert_ne!(
            base,
            fp(&tree(
                BASE,
                &TOOLS.replace("lookup_order", "find_order"),
                SCHEMA
            ))
        );
        assert_ne!(
            base,
            fp(&tree(BASE, TOOLS, &SCHEMA.replace("string", "integer")))
        );
    }
}
