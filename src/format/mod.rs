//! Reading user files into typed models with every problem located.
//!
//! The pipeline for one YAML file: bytes → UTF-8 → positioned YAML tree ([`yaml`]) → the
//! shape the model's derived JSON Schema expects ([`shape`]) → the typed model (serde,
//! reading the tree directly: [`de`]).

pub mod de;
pub mod shape;
pub mod yaml;

use std::path::Path;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::diag::{Diagnostics, Pos};
use crate::source::{ReadError, Tree};
use yaml::Node;

/// The JSON Schema of `T`, as `schemars` derives it from the serde model.
pub fn schema_of<T: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Bool(true))
}

/// Text of a file, or the problem reading it, said at `file:1:1`.
pub fn read_text(tree: &dyn Tree, path: &str) -> Result<String, Diagnostics> {
    let bytes = tree.read(path).map_err(|e| {
        let mut d = Diagnostics::default();
        d.push(path, Pos::START, read_error_message(&e));
        d
    })?;
    text_of(path, bytes)
}

/// Text of a file outside the repository tree (the runtime config, a file named on the
/// command line), read by [`crate::read::file`] within `limit` bytes; a problem reading
/// it, a missing file included, is said at `file:1:1`, invalid UTF-8 at its byte.
pub fn file_text(path: &Path, limit: u64) -> Result<String, Diagnostics> {
    file_text_if_any(path, limit)?.ok_or_else(|| file_problem(path, &ReadError::Missing))
}

/// [`file_text`], but a missing file is `None`.
pub fn file_text_if_any(path: &Path, limit: u64) -> Result<Option<String>, Diagnostics> {
    match crate::read::file(path, limit) {
        Ok(bytes) => text_of(&path.display().to_string(), bytes).map(Some),
        Err(ReadError::Missing) => Ok(None),
        Err(e) => Err(file_problem(path, &e)),
    }
}

fn file_problem(path: &Path, e: &ReadError) -> Diagnostics {
    let mut d = Diagnostics::default();
    d.push(
        &path.display().to_string(),
        Pos::START,
        read_error_message(e),
    );
    d
}

/// A JSON document that did not read, said where serde_json stopped: `what` the file
/// was meant to be, then why.
pub fn json_problem(file: &str, what: &str, e: &serde_json::Error) -> Diagnostics {
    let mut d = Diagnostics::default();
    // At the end of input serde_json says column 0.
    let pos = Pos::new(e.line().max(1), e.column().max(1));
    d.push(file, pos, format!("{what}: {}", json_error_text(e)));
    d
}

/// The message for a file that cannot be read, as the file's own diagnostic.
pub fn read_error_message(e: &ReadError) -> String {
    match e {
        ReadError::Missing => "file not found".into(),
        other => format!("cannot read: {other}"),
    }
}

/// Decode UTF-8, locating the first invalid byte. A byte-order mark is dropped.
pub fn text_of(path: &str, bytes: Vec<u8>) -> Result<String, Diagnostics> {
    let bytes = match bytes.strip_prefix("\u{feff}".as_bytes()) {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let col = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        let byte = e.as_bytes()[valid.len()];
        let mut d = Diagnostics::default();
        d.push(
            path,
            Pos::new(line, col),
            format!("file is not valid UTF-8 (byte 0x{byte:02X}); save it as UTF-8"),
        );
        d
    })
}

/// Read the JSON file that `reference`, written in `from` under `field`, points to:
/// `(repository path, value)`, or one line saying what is wrong.
pub fn read_json(
    tree: &dyn Tree,
    from: &str,
    field: &str,
    reference: &str,
) -> Result<(String, serde_json::Value), String> {
    let target =
        crate::source::resolve_ref(from, reference).map_err(|e| format!("`{field}`: {e}"))?;
    let bytes = tree
        .read(&target)
        .map_err(|e| format!("`{field}` `{reference}`: {}", read_error_message(&e)))?;
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
    let value = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "`{field}` `{reference}` is not valid JSON: {} (at {target}:{}:{})",
            json_error_text(&e),
            e.line(),
            // At the end of input serde_json says column 0.
            e.column().max(1)
        )
    })?;
    Ok((target, value))
}

/// serde_json's message without its own "at line 1 column 2" (callers say where), and
/// its recursion limit said as what to fix.
pub fn json_error_text(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => &text,
    };
    if text == "recursion limit exceeded" {
        "nested deeper than 128 levels; flatten the structure".to_string()
    } else {
        text.to_string()
    }
}

/// Parse YAML text into a positioned tree.
pub fn parse_yaml(path: &str, text: &str) -> Result<Node, Diagnostics> {
    parse_yaml_capped(path, text, None)
}

/// Parse YAML text into a positioned tree, stopping at the first item of the list `cap`
/// names that is over its limit.
pub fn parse_yaml_capped(
    path: &str,
    text: &str,
    cap: Option<yaml::ListCap<'_>>,
) -> Result<Node, Diagnostics> {
    yaml::parse_capped(text, cap).map_err(|e| {
        let mut d = Diagnostics::default();
        let message = if e.limit {
            e.message
        } else {
            format!("YAML syntax error: {}", e.message)
        };
        d.push(path, e.pos, message);
        d
    })
}

/// [`typed`] for a whole file, which says so when it is empty.
pub fn typed_file<T: DeserializeOwned>(
    path: &str,
    node: &Node,
    schema: &Value,
) -> Result<T, Diagnostics> {
    if matches!(node.kind, yaml::Kind::Null) {
        let mut problems = Diagnostics::default();
        problems.push(path, node.pos, "the file is empty: it must be a mapping");
        return Err(problems);
    }
    typed(path, node, schema)
}

/// Check a tree against `schema` and turn it into `T`, reporting every shape problem.
pub fn typed<T: DeserializeOwned>(
    path: &str,
    node: &Node,
    schema: &Value,
) -> Result<T, Diagnostics> {
    let mut problems = Diagnostics::default();
    shape::check(schema, node, path, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    de::from_node(node).map_err(|e| {
        let mut d = Diagnostics::default();
        d.push(path, node.pos, e.to_string());
        d
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_invalid_utf8() {
        let err = text_of("a.yaml", b"ok: 1\nbad: \xff\n".to_vec()).expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "a.yaml:2:6: file is not valid UTF-8 (byte 0xFF); save it as UTF-8"
        );
    }
}
