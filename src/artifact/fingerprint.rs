//! The behaviour fingerprint: a hash of everything that changes what the model is asked
//! — messages, model and parameters, response format (with the schema's content), tools
//! (with the definitions' content), retrieval — and nothing else (not id, version,
//! description, owner, limitations or evals).
//!
//! It is computed over canonical JSON (keys sorted, numbers as parsed), so YAML layout,
//! key order, quoting and JSON formatting of referenced files do not move it.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Artifact, ResponseFormat};

/// Bumped whenever what goes into the hash changes, so old and new never compare equal.
const ALGORITHM: &str = "promptgate-fingerprint/1";

/// `sha256:` and 64 hex digits.
pub fn fingerprint(artifact: &Artifact) -> String {
    format!("sha256:{}", hex_digest(&canonical(artifact)))
}

/// Hex SHA-256 of `value` as canonical JSON (keys sorted at every level): equal for
/// equal values however they were written.
pub fn canonical_digest(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    hex_digest(&out)
}

fn hex_digest(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(64);
    for b in Sha256::digest(bytes) {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The canonical JSON of what the fingerprint covers:
///
/// `{"algorithm", "messages", "model", "response_format", "retrieval", "tools"}`
///
/// written key by key in sorted order, so that the tool definitions and schemas (already
/// JSON) are written from the artifact rather than copied into a document first.
fn canonical(artifact: &Artifact) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(br#"{"algorithm":"#);
    write_scalar(ALGORITHM, &mut out);
    out.extend_from_slice(br#","messages":["#);
    for (i, message) in artifact.messages.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_serialized(message, &mut out);
    }
    out.extend_from_slice(br#"],"model":"#);
    write_serialized(&artifact.model, &mut out);
    out.extend_from_slice(br#","response_format":"#);
    match &artifact.response_format {
        ResponseFormat::Text => out.extend_from_slice(br#"{"type":"text"}"#),
        ResponseFormat::JsonObject => out.extend_from_slice(br#"{"type":"json_object"}"#),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
            ..
        } => {
            out.extend_from_slice(br#"{"name":"#);
            write_serialized(name, &mut out);
            out.extend_from_slice(br#","schema":"#);
            write_canonical(schema, &mut out);
            out.extend_from_slice(br#","strict":"#);
            write_serialized(strict, &mut out);
            out.extend_from_slice(br#","type":"json_schema"}"#);
        }
    }
    out.extend_from_slice(br#","retrieval":"#);
    write_serialized(&artifact.retrieval, &mut out);
    out.extend_from_slice(br#","tools":"#);
    match &artifact.tools {
        None => out.extend_from_slice(b"null"),
        Some(tools) => {
            out.extend_from_slice(br#"{"definitions":["#);
            for (i, definition) in tools.definitions.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(definition, &mut out);
            }
            out.extend_from_slice(br#"],"schema_version":"#);
            write_serialized(&tools.schema_version, &mut out);
            out.push(b'}');
        }
    }
    out.push(b'}');
    out
}

/// A serializable value's canonical JSON, through its JSON value (which orders keys).
fn write_serialized(value: &impl serde::Serialize, out: &mut Vec<u8>) {
    match serde_json::to_value(value) {
        Ok(value) => write_canonical(&value, out),
        // The models serialize to JSON without fail; should one not, it hashes as null.
        Err(_) => out.extend_from_slice(b"null"),
    }
}

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

    /// What the fingerprint hashed before it was written key by key: a JSON document
    /// built with `json!`, written with keys sorted.
    fn reference(artifact: &crate::artifact::Artifact) -> Vec<u8> {
        use crate::artifact::ResponseFormat;
        use serde_json::json;
        let response_format = match &artifact.response_format {
            ResponseFormat::Text => json!({"type": "text"}),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
                ..
            } => json!({"type": "json_schema", "name": name, "schema": schema, "strict": strict}),
        };
        let tools = artifact
            .tools
            .as_ref()
            .map(|t| json!({"schema_version": t.schema_version, "definitions": t.definitions}));
        let doc = json!({
            "algorithm": super::ALGORITHM,
            "model": artifact.model,
            "response_format": response_format,
            "messages": artifact.messages,
            "tools": tools,
            "retrieval": artifact.retrieval,
        });
        let mut out = Vec::new();
        super::write_canonical(&doc, &mut out);
        out
    }

    #[test]
    fn hashes_the_same_document_as_the_json_value_would() {
        let variants = [
            BASE.to_string(),
            BASE.replace("response_format: {json_schema: ../schemas/refund.json}\n", ""),
            BASE.replace(
                "{json_schema: ../schemas/refund.json}",
                "{json_schema: ../schemas/refund.json, name: r, strict: true}",
            ),
            BASE.replace("{json_schema: ../schemas/refund.json}", "json_object"),
            BASE.replace("tools: {schema_version: \"2025-01\", definitions: ../tools/refund.json}\n", ""),
            BASE.replace("schema_version: \"2025-01\", ", ""),
            BASE.replace(
                "known_limitations",
                "retrieval: {index: kb, top_k: 3, filters: {b: [1, \"é\\n\"], a: {z: null, y: 0.5}}}\nknown_limitations",
            ),
            BASE.replace("max_tokens: 400}", "max_tokens: 400, seed: -3, stop: [x, \"\\\"\"], top_p: 1.0}"),
        ];
        for (i, text) in variants.into_iter().enumerate() {
            assert!(i == 0 || text != BASE, "variant {i} edits nothing");
            let t = tree(&text, TOOLS, SCHEMA);
            let artifact = match load(&t, "prompts/refund.prompt.yaml", &Config::default()) {
                Ok(a) => a,
                Err(d) => panic!("{d}\n{text}"),
            };
            assert_eq!(
                String::from_utf8_lossy(&super::canonical(&artifact)),
                String::from_utf8_lossy(&reference(&artifact)),
                "{text}"
            );
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
