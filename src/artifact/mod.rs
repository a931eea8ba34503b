//! Prompt artifacts: versioned, structured prompts read from either format into one model.
//!
//! - `*.prompt.yaml`: promptgate's own format ([`native`]).
//! - `*.prompt.yml` (GitHub Models): `name`, `model`, `modelParameters`, `messages`,
//!   `testData`, `evaluators` ([`github_models`]); their test data is their eval set.

pub mod assertion;
pub mod fingerprint;
pub mod github_builtins;
pub mod github_models;
pub mod native;
pub mod suite;
pub mod template;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Config;
use crate::diag::{Diagnostics, Pos, did_you_mean};
use crate::format::{self, yaml::Node};
use crate::source::Tree;
use suite::EvalSet;

/// Which file format an artifact was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactFormat {
    Native,
    GithubModels,
}

/// The model and its sampling parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Provider name from `.promptgate.yaml` (`openai`, `anthropic`, or one you declare).
    pub provider: String,
    /// Model name as the provider knows it.
    pub name: String,
    /// Model family, e.g. `gpt-4o`; a family change is called out in reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sent as `max_completion_tokens`, which newer OpenAI models take instead of
    /// `max_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub role: Role,
    /// A minijinja template; variables come from the eval case.
    pub content: String,
}

/// The answer format requested from the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Whether the provider must follow the schema exactly (OpenAI's `strict`).
        #[serde(skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
        /// Repository path of the schema file, when it came from one.
        #[serde(skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        schema: Value,
    },
}

/// Tools the model may call, in OpenAI's function-tool format.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tools {
    pub schema_version: Option<String>,
    /// Repository path of the definitions file, when they came from one.
    pub source: Option<String>,
    pub definitions: Vec<Value>,
}

impl Tools {
    /// Names of the defined functions.
    pub fn names(&self) -> Vec<&str> {
        self.definitions
            .iter()
            .filter_map(|d| {
                d.pointer("/function/name")
                    .or_else(|| d.get("name"))
                    .and_then(Value::as_str)
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retrieval {
    pub index: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f64>,
    /// Metadata filters passed to the retriever.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub filters: BTreeMap<String, Value>,
}

/// A prompt artifact, whatever file it came from, with its references resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Artifact {
    pub id: String,
    pub path: String,
    pub format: ArtifactFormat,
    /// `None` for formats without versions (GitHub Models).
    pub version: Option<String>,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub model: ModelSpec,
    pub response_format: ResponseFormat,
    pub messages: Vec<Message>,
    pub tools: Option<Tools>,
    pub retrieval: Option<Retrieval>,
    pub known_limitations: Vec<String>,
    /// Suite files, repository-relative.
    pub evals: Vec<String>,
    /// The eval set written inside the artifact (GitHub Models `testData`).
    #[serde(skip)]
    pub inline_evals: Option<EvalSet>,
    /// Files the artifact's behaviour depends on (tool definitions, schemas).
    pub references: Vec<String>,
    /// Hash of everything that changes behaviour; see [`fingerprint`].
    pub fingerprint: String,
    /// Problems that leave the artifact readable: unknown provider, template errors,
    /// warnings. Structural problems make [`load`] fail instead.
    #[serde(skip)]
    pub problems: Diagnostics,
    /// The parsed file, for locating fields in messages.
    #[serde(skip)]
    pub node: Node,
}

impl Artifact {
    /// Where field `keys` is written in the artifact's file.
    pub fn pos_of(&self, keys: &[&str]) -> Pos {
        self.node.pos_at(keys)
    }

    /// The position of message `index`'s content.
    pub fn message_pos(&self, index: usize) -> Pos {
        self.node
            .get("messages")
            .and_then(Node::as_seq)
            .and_then(|m| m.get(index))
            .map_or(self.node.pos, |m| m.pos_at(&["content"]))
    }
}

/// Whether `path` is in GitHub Models format: `.prompt.yml`, or any other file without
/// what marks a native artifact, a `version` or a `model` mapping (GitHub Models allows
/// `.prompt.yaml` too, and a native artifact requires both).
fn is_github_models(path: &str, node: &Node) -> bool {
    let native = node.get("version").is_some()
        || node
            .get("model")
            .is_some_and(|m| matches!(m.kind, format::yaml::Kind::Map(_)));
    path.ends_with(".prompt.yml") || !native
}

/// The artifact id a file gets when it sets none: its path without the extension.
pub fn default_id(path: &str) -> String {
    for ext in [".prompt.yaml", ".prompt.yml", ".yaml", ".yml"] {
        if let Some(stem) = path.strip_suffix(ext) {
            return stem.to_string();
        }
    }
    path.to_string()
}

/// Read and check one artifact file from `tree`. Problems that make it unreadable are
/// the error; the rest travel in [`Artifact::problems`].
pub fn load(tree: &dyn Tree, path: &str, config: &Config) -> Result<Artifact, Diagnostics> {
    let text = format::read_text(tree, path)?;
    let node = format::parse_yaml(path, &text)?;
    let github = is_github_models(path, &node);
    // These read the raw tree, so they are reported even when the file has other problems.
    let semantic = semantic_checks(path, &node, config, github);
    let converted = if github {
        github_models::convert(path, node)
    } else {
        native::convert(tree, path, node)
    };
    match converted {
        Err(mut problems) => {
            problems.extend(semantic);
            if !github && let Ok(node) = format::parse_yaml(path, &text) {
                problems.extend(native::raw_reference_problems(tree, path, &node));
            }
            problems.0.sort();
            problems.0.dedup();
            Err(problems)
        }
        Ok(mut artifact) => {
            artifact.problems.extend(semantic);
            artifact.fingerprint = fingerprint::fingerprint(&artifact);
            Ok(artifact)
        }
    }
}

/// Problems that leave the file readable: a provider that does not exist, a message
/// template that does not compile. A GitHub Models message is no template: only its
/// `{{name}}` parts are filled in ([`github_models::substitute`]).
fn semantic_checks(path: &str, node: &Node, config: &Config, github: bool) -> Diagnostics {
    let mut problems = Diagnostics::default();
    if github {
        return problems;
    }
    let provider = node.get("model").and_then(|m| m.get("provider"));
    if let Some(provider_node) = provider
        && let Some(name) = provider_node.as_str()
        && !config.has_provider(name)
    {
        let names = config.provider_names();
        problems.push(
            path,
            provider_node.pos,
            format!(
                "unknown provider `{name}`{}",
                did_you_mean(name, names.iter().copied())
            ),
        );
    }
    let messages = node
        .get("messages")
        .and_then(Node::as_seq)
        .unwrap_or_default();
    for (i, message) in messages.iter().enumerate() {
        let Some(content) = message.get("content") else {
            continue;
        };
        if let Some(text) = content.as_str()
            && let Err(e) = template::check(text)
        {
            problems.push(
                path,
                content.pos,
                format!(
                    "template error in `messages[{i}].content` (template line {}): {}",
                    e.line, e.message
                ),
            );
        }
    }
    problems
}

/// Build what loading artifacts needs once per process: the schemas of artifacts,
/// suites and cases, and the template checker. Loading does it on first use anyway.
pub fn prepare() {
    crate::schemas::PROMPT.get();
    crate::schemas::GITHUB_MODELS_PROMPT.get();
    crate::schemas::SUITE.get();
    crate::schemas::CASE.get();
    template::prepare();
}

/// Read a JSON file an artifact refers to, the problem located at the reference.
pub(crate) fn read_json_ref(
    tree: &dyn Tree,
    from: &str,
    field: &str,
    reference: &str,
    pos: Pos,
) -> Result<(String, Value), Diagnostics> {
    format::read_json(tree, from, field, reference).map_err(|message| {
        let mut d = Diagnostics::default();
        d.push(from, pos, message);
        d
    })
}

/// Trailing whitespace of a message is not sent and not fingerprinted: `|` and `|-`
/// blocks mean the same prompt.
pub(crate) fn normalize_content(content: &str) -> String {
    content.trim_end().to_string()
}
