//! promptgate's own artifact format, `*.prompt.yaml`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Artifact, ArtifactFormat, Message, ModelSpec, ResponseFormat, Retrieval, Tools,
    normalize_content, read_json_ref,
};
use crate::diag::{Diagnostics, Pos};
use crate::format;
use crate::format::yaml::Node;
use crate::source::{Tree, resolve_ref};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NativeFile {
    /// Stable id; default: the path without `.prompt.yaml`.
    pub id: Option<String>,
    /// Bump it whenever behaviour changes.
    pub version: Version,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub model: ModelSpec,
    pub response_format: Option<ResponseFormatSpec>,
    #[schemars(length(min = 1))]
    pub messages: Vec<Message>,
    pub tools: Option<ToolsSpec>,
    pub retrieval: Option<Retrieval>,
    #[serde(default)]
    pub known_limitations: Vec<String>,
    /// Suite files, relative to this file.
    #[serde(default)]
    pub evals: Vec<String>,
}

/// `4` or `"1.2.0"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Version {
    Number(u64),
    Text(String),
}

impl Version {
    pub fn text(&self) -> String {
        match self {
            Version::Number(n) => n.to_string(),
            Version::Text(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ResponseFormatSpec {
    Named(ResponseFormatName),
    Schema(SchemaSpec),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormatName {
    Text,
    JsonObject,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaSpec {
    /// A JSON Schema file relative to this file, or the schema inline.
    pub json_schema: PathOrInline,
    /// Schema name sent to the provider; default: the file name.
    pub name: Option<String>,
    /// Ask the provider to follow the schema exactly.
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PathOrInline {
    Path(String),
    Inline(BTreeMap<String, Value>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolsSpec {
    pub schema_version: Option<String>,
    /// A JSON file of OpenAI function-tool definitions relative to this file, or the list
    /// inline.
    pub definitions: ToolDefinitions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ToolDefinitions {
    Path(String),
    Inline(Vec<Value>),
}

pub fn convert(tree: &dyn Tree, path: &str, node: Node) -> Result<Artifact, Diagnostics> {
    let file: NativeFile = format::typed_file(path, &node, crate::schemas::PROMPT.get())?;
    let mut problems = Diagnostics::default();
    let mut references = Vec::new();
    let at = |keys: &[&str]| node.pos_at(keys);

    let response_format = match &file.response_format {
        None | Some(ResponseFormatSpec::Named(ResponseFormatName::Text)) => ResponseFormat::Text,
        Some(ResponseFormatSpec::Named(ResponseFormatName::JsonObject)) => {
            ResponseFormat::JsonObject
        }
        Some(ResponseFormatSpec::Schema(spec)) => {
            let pos = at(&["response_format", "json_schema"]);
            match &spec.json_schema {
                PathOrInline::Inline(map) => ResponseFormat::JsonSchema {
                    name: spec.name.clone(),
                    strict: spec.strict,
                    source: None,
                    schema: Value::Object(map.clone().into_iter().collect()),
                },
                PathOrInline::Path(reference) => {
                    match read_json_ref(tree, path, "response_format.json_schema", reference, pos) {
                        Ok((target, schema)) => {
                            references.push(target.clone());
                            let name = spec.name.clone().or_else(|| Some(schema_name(&target)));
                            ResponseFormat::JsonSchema {
                                name,
                                strict: spec.strict,
                                source: Some(target),
                                schema,
                            }
                        }
                        Err(d) => {
                            problems.extend(d);
                            ResponseFormat::Text
                        }
                    }
                }
            }
        }
    };

    let tools = match &file.tools {
        None => None,
        Some(spec) => {
            let pos = at(&["tools", "definitions"]);
            let (source, definitions) = match &spec.definitions {
                ToolDefinitions::Inline(list) => (None, list.clone()),
                ToolDefinitions::Path(reference) => {
                    match read_json_ref(tree, path, "tools.definitions", reference, pos) {
                        Ok((target, Value::Array(list))) => {
                            references.push(target.clone());
                            (Some(target), list)
                        }
                        Ok((target, _)) => {
                            problems.push(
                                path,
                                pos,
                                format!("`tools.definitions` `{target}` must hold a JSON list of tool definitions"),
                            );
                            (Some(target), Vec::new())
                        }
                        Err(d) => {
                            problems.extend(d);
                            (None, Vec::new())
                        }
                    }
                }
            };
            check_tools(path, pos, &definitions, &mut problems);
            Some(Tools {
                schema_version: spec.schema_version.clone(),
                source,
                definitions,
            })
        }
    };

    // A suite that cannot be read does not change what the prompt does: the artifact
    // still loads, with the problem attached.
    let (evals, suite_problems) = check_evals(tree, path, &node, &file.evals);

    if problems.has_errors() {
        return Err(problems);
    }
    Ok(Artifact {
        id: file.id.clone().unwrap_or_else(|| super::default_id(path)),
        path: path.to_string(),
        format: ArtifactFormat::Native,
        version: Some(file.version.text()),
        description: file.description,
        owner: file.owner,
        model: file.model,
        response_format,
        messages: file
            .messages
            .into_iter()
            .map(|m| Message {
                role: m.role,
                content: normalize_content(&m.content),
            })
            .collect(),
        tools,
        retrieval: file.retrieval,
        known_limitations: file.known_limitations,
        evals,
        inline_evals: None,
        references,
        fingerprint: String::new(),
        problems: suite_problems,
        node,
    })
}

/// The suite files `evals` names that exist, and the problems with the others.
fn check_evals(
    tree: &dyn Tree,
    path: &str,
    node: &Node,
    references: &[String],
) -> (Vec<String>, Diagnostics) {
    let mut problems = Diagnostics::default();
    let mut evals: Vec<String> = Vec::new();
    let nodes = node.get("evals").and_then(Node::as_seq).unwrap_or_default();
    for (i, reference) in references.iter().enumerate() {
        let pos = nodes.get(i).map_or(node.pos, |n| n.pos);
        match resolve_ref(path, reference) {
            Ok(target) if evals.contains(&target) => {
                problems.push(path, pos, format!("`evals` lists `{reference}` twice"));
            }
            Ok(target) => match tree.read(&target) {
                Ok(_) => evals.push(target),
                Err(e) => problems.push(
                    path,
                    pos,
                    format!("`evals` `{reference}`: {}", format::read_error_message(&e)),
                ),
            },
            Err(e) => problems.push(path, pos, format!("`evals`: {e}")),
        }
    }
    (evals, problems)
}

/// The problems with the files a structurally broken artifact refers to, read from its
/// raw tree, so they are reported in the same run as the structural ones.
pub fn raw_reference_problems(tree: &dyn Tree, path: &str, node: &Node) -> Diagnostics {
    let mut problems = Diagnostics::default();
    let at = |keys: &[&str]| node.pos_at(keys);
    let refs = [
        (["tools", "definitions"], "tools.definitions"),
        (
            ["response_format", "json_schema"],
            "response_format.json_schema",
        ),
    ];
    for (keys, field) in refs {
        let value = keys.iter().try_fold(node, |n, k| n.get(k));
        if let Some(reference) = value.and_then(Node::as_str)
            && let Err(d) = read_json_ref(tree, path, field, reference, at(&keys))
        {
            problems.extend(d);
        }
    }
    let evals: Vec<String> = node
        .get("evals")
        .and_then(Node::as_seq)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    problems.extend(check_evals(tree, path, node, &evals).1);
    problems
}

/// Each definition must be an OpenAI function tool with a name.
fn check_tools(path: &str, pos: Pos, definitions: &[Value], problems: &mut Diagnostics) {
    let mut seen = std::collections::HashSet::new();
    for (i, def) in definitions.iter().enumerate() {
        let name = def.pointer("/function/name").and_then(Value::as_str);
        match name {
            None => problems.push(
                path,
                pos,
                format!(
                    "tool definition {} has no `function.name` (expected OpenAI's function-tool format)",
                    i + 1
                ),
            ),
            Some(n) if !seen.insert(n) => {
                problems.push(path, pos, format!("tool `{n}` is defined twice"));
            }
            Some(_) => {}
        }
    }
}

fn schema_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split('.').next().unwrap_or(file);
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
