//! GitHub Models prompt files (`*.prompt.yml`, and `*.prompt.yaml` in their format), read
//! artifacts, with `testData` as their eval set and `evaluators` as its assertions,
//! judged as `gh models eval` judges them.
//!
//! The fields read are those of gh-models' `pkg/prompt/prompt.go` (`File`,
//! `ModelParameters`, `Evaluator`, `StringEvaluator`, `LLMEvaluator`, `Choice`, and
//! `JsonSchema` as a JSON string or, in an earlier version, a mapping) and of
//! actions/ai-inference (`README.md`, "Prompt.yml with model parameters", and
//! `src/inference.ts`: `maxCompletionTokens` beside the deprecated `maxTokens`). Neither
//! reads any other field (`stop`, `max_tokens`, a top-level `config:`…), so neither does
//! promptgate: each is a warning, never an error.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::assertion::{Assertion, Check, Choice, ModelGraded, StringOp};
use super::suite::{Case, DEFAULT_SEGMENT, EvalSet};
use super::{
    Artifact, ArtifactFormat, Message, ModelSpec, ResponseFormat, Role, normalize_content,
};
use crate::diag::{Diagnostics, Pos, did_you_mean};
use crate::format;
use crate::format::yaml::{Kind, Node};

/// Provider that GitHub Models files run on; declaring a provider of this name in
/// `.promptgate.yaml` points them at another endpoint.
pub const PROVIDER: &str = "github-models";

/// A GitHub Models prompt file. Fields it does not list are ignored with a warning, as
/// GitHub ignores them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GithubModelsFile {
    pub name: Option<String>,
    pub description: Option<String>,
    /// `publisher/model`, e.g. `openai/gpt-4o-mini`.
    pub model: String,
    #[serde(default)]
    pub model_parameters: ModelParameters,
    pub response_format: Option<GithubResponseFormat>,
    /// `{"name": …, "schema": {…}, "strict": …}`, as a JSON string or as a mapping.
    pub json_schema: Option<JsonSchemaSpec>,
    #[schemars(length(min = 1))]
    pub messages: Vec<GithubMessage>,
    /// One case a row; the row's keys are its variables. `segment` or `segments` puts
    /// it in segments (default `all`); `id` names it.
    #[serde(default)]
    pub test_data: Vec<BTreeMap<String, Value>>,
    #[serde(default)]
    pub evaluators: Vec<Evaluator>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelParameters {
    /// Sent as `max_tokens` (deprecated by actions/ai-inference).
    pub max_tokens: Option<u32>,
    /// Sent as `max_completion_tokens`, as actions/ai-inference sends it.
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GithubResponseFormat {
    Text,
    JsonObject,
    JsonSchema,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum JsonSchemaSpec {
    /// The JSON text, as gh-models and actions/ai-inference read it.
    Text(String),
    Object(JsonSchemaObject),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JsonSchemaObject {
    pub name: Option<String>,
    pub description: Option<String>,
    pub strict: Option<bool>,
    pub schema: Option<BTreeMap<String, Value>>,
}

/// A message; `role` is `system`, `user` or `assistant` in any case, as gh-models reads
/// it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GithubMessage {
    pub role: String,
    /// `{{name}}` is replaced by the row's `name`; nothing else is a template.
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Evaluator {
    /// Shown in failures and reports; default `evaluator N`.
    pub name: Option<Text>,
    pub string: Option<StringEvaluator>,
    pub llm: Option<LlmEvaluator>,
    /// `github/similarity`, `github/coherence`, `github/fluency`, `github/relevance` or
    /// `github/groundedness`.
    pub uses: Option<String>,
}

/// One test on the answer; gh models eval checks the first one set, in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StringEvaluator {
    pub equals: Option<Text>,
    pub contains: Option<Text>,
    pub starts_with: Option<Text>,
    pub ends_with: Option<Text>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LlmEvaluator {
    /// The judge model, mapped through `judge.models`; default the judge's `model`.
    pub model_id: Option<String>,
    /// `{{completion}}` is the answer; `{{name}}` the row's `name`.
    pub prompt: String,
    /// The answers the judge may give and their scores; a score above 0 passes.
    #[schemars(length(min = 1))]
    pub choices: Vec<ChoiceSpec>,
    pub system_prompt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChoiceSpec {
    pub choice: Text,
    pub score: f64,
}

/// Text written where YAML may read a number or a boolean (`choice: 1`): its text, as
/// gh-models' YAML decoder reads it into a string (a float in its shortest form: `1.50`
/// reads `1.5`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Text {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Text {
    fn text(&self) -> String {
        match self {
            Text::Str(s) => s.clone(),
            Text::Int(i) => i.to_string(),
            Text::Float(f) => f.to_string(),
            Text::Bool(b) => b.to_string(),
        }
    }
}

/// An evaluator, checked, ready to become each row's assertion.
struct Compiled {
    name: String,
    pos: Pos,
    kind: Runs,
}

/// What an evaluator runs: a test on the answer, or the judge.
enum Runs {
    String { op: StringOp, value: String },
    Graded(Arc<ModelGraded>),
}

pub fn convert(path: &str, node: Node) -> Result<Artifact, Diagnostics> {
    let file: GithubModelsFile =
        format::typed_file(path, &node, crate::schemas::GITHUB_MODELS_PROMPT.get())?;
    let mut problems = Diagnostics::default();
    let schema = crate::schemas::GITHUB_MODELS_PROMPT.get();
    unknown_fields(path, schema, schema, &node, &mut problems);

    let response_format = response_format(path, &node, &file, &mut problems);
    let mut messages = Vec::new();
    let message_nodes = node
        .get("messages")
        .and_then(Node::as_seq)
        .unwrap_or_default();
    for (i, m) in file.messages.iter().enumerate() {
        let role = match m.role.to_lowercase().as_str() {
            "system" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            _ => {
                let pos = message_nodes
                    .get(i)
                    .map_or(node.pos, |n| n.pos_at(&["role"]));
                problems.push(
                    path,
                    pos,
                    format!(
                        "unknown message role `{}`{}; expected `system`, `user` or `assistant`",
                        m.role,
                        did_you_mean(&m.role.to_lowercase(), ["system", "user", "assistant"])
                    ),
                );
                continue;
            }
        };
        messages.push(Message {
            role,
            content: normalize_content(&m.content),
        });
    }

    let evaluators = compile_evaluators(path, &node, &file.evaluators, &mut problems);
    if !file.test_data.is_empty() && file.evaluators.is_empty() {
        problems.warn(
            path,
            node.pos_at(&["testData"]),
            "`testData` without `evaluators`: gh models eval passes every row whatever the answer; \
             the gate counts them unjudged (`gate.max_unjudged_rate`)",
        );
    }
    let evals = eval_set(path, &node, &file.test_data, &evaluators, &mut problems);
    placeholder_warnings(path, &node, &file, &mut problems);
    if problems.has_errors() {
        return Err(problems);
    }
    let params = file.model_parameters;
    Ok(Artifact {
        id: super::default_id(path),
        path: path.to_string(),
        format: ArtifactFormat::GithubModels,
        version: None,
        description: file.description.or(file.name),
        owner: None,
        model: ModelSpec {
            provider: PROVIDER.to_string(),
            name: file.model,
            family: None,
            temperature: params.temperature,
            max_tokens: params.max_tokens,
            max_completion_tokens: params.max_completion_tokens,
            top_p: params.top_p,
            seed: None,
            stop: None,
            presence_penalty: None,
            frequency_penalty: None,
        },
        response_format,
        messages,
        tools: None,
        retrieval: None,
        known_limitations: Vec::new(),
        evals: Vec::new(),
        inline_evals: Some(evals),
        references: Vec::new(),
        fingerprint: String::new(),
        problems,
        node,
    })
}

/// `responseFormat` and `jsonSchema`, as gh-models checks them: `json_schema` needs a
/// `jsonSchema` with `name` and `schema`; a `jsonSchema` string must be JSON whatever
/// the format.
fn response_format(
    path: &str,
    node: &Node,
    file: &GithubModelsFile,
    problems: &mut Diagnostics,
) -> ResponseFormat {
    let at = node.pos_at(&["jsonSchema"]);
    let schema = match &file.json_schema {
        None => None,
        Some(JsonSchemaSpec::Object(o)) => Some(serde_json::to_value(o).unwrap_or(Value::Null)),
        Some(JsonSchemaSpec::Text(text)) => match serde_json::from_str::<Value>(text) {
            Ok(doc @ Value::Object(_)) => Some(doc),
            Ok(other) => {
                problems.push(
                    path,
                    at,
                    format!(
                        "`jsonSchema` must be a JSON object, found {}",
                        super::assertion::json_type(&other)
                    ),
                );
                None
            }
            Err(e) => {
                problems.push(
                    path,
                    at,
                    format!(
                        "`jsonSchema` is not valid JSON: {} (line {} of the JSON)",
                        format::json_error_text(&e),
                        e.line()
                    ),
                );
                None
            }
        },
    };
    match file.response_format {
        None | Some(GithubResponseFormat::Text) => ResponseFormat::Text,
        Some(GithubResponseFormat::JsonObject) => ResponseFormat::JsonObject,
        Some(GithubResponseFormat::JsonSchema) => {
            let parts = schema.as_ref().map(|doc| {
                (
                    doc.get("name").and_then(Value::as_str),
                    doc.get("schema").filter(|s| s.is_object()),
                )
            });
            match parts {
                Some((Some(name), Some(schema_value))) => ResponseFormat::JsonSchema {
                    name: Some(name.to_string()),
                    strict: schema
                        .as_ref()
                        .and_then(|d| d.get("strict"))
                        .and_then(Value::as_bool),
                    source: None,
                    schema: schema_value.clone(),
                },
                Some(_) => {
                    problems.push(path, at, "`jsonSchema` must contain `name` and `schema`");
                    ResponseFormat::Text
                }
                None if file.json_schema.is_none() => {
                    problems.push(
                        path,
                        node.pos_at(&["responseFormat"]),
                        "`responseFormat: json_schema` needs `jsonSchema`",
                    );
                    ResponseFormat::Text
                }
                // Its problem is said above.
                None => ResponseFormat::Text,
            }
        }
    }
}

/// Each evaluator checked: exactly what gh models eval runs of it, the rest said.
fn compile_evaluators(
    path: &str,
    node: &Node,
    evaluators: &[Evaluator],
    problems: &mut Diagnostics,
) -> Vec<Compiled> {
    let nodes = node
        .get("evaluators")
        .and_then(Node::as_seq)
        .unwrap_or_default();
    let mut compiled = Vec::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    for (i, e) in evaluators.iter().enumerate() {
        let pos = nodes.get(i).map_or(node.pos, |n| n.pos);
        let name = e
            .name
            .as_ref()
            .map(Text::text)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("evaluator {}", i + 1));
        if !names.insert(name.clone()) {
            problems.warn(
                path,
                pos,
                format!("two evaluators are named `{name}`: failures will not say which"),
            );
        }
        // gh models eval runs the first of these that is set.
        let kinds: Vec<&str> = [
            e.string.as_ref().map(|_| "string"),
            e.llm.as_ref().map(|_| "llm"),
            e.uses.as_ref().filter(|u| !u.is_empty()).map(|_| "uses"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if kinds.len() > 1 {
            problems.warn(
                path,
                pos,
                format!(
                    "evaluator `{name}` has {}: only `{}` is run, as gh models eval runs only the first",
                    kinds
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(" and "),
                    kinds[0]
                ),
            );
        }
        let kind = if let Some(s) = &e.string {
            let set: Vec<(StringOp, &str, String)> = [
                (StringOp::Equals, "equals", &s.equals),
                (StringOp::Contains, "contains", &s.contains),
                (StringOp::StartsWith, "startsWith", &s.starts_with),
                (StringOp::EndsWith, "endsWith", &s.ends_with),
            ]
            .into_iter()
            .filter_map(|(op, key, v)| {
                v.as_ref()
                    .map(Text::text)
                    .filter(|v| !v.is_empty())
                    .map(|v| (op, key, v))
            })
            .collect();
            match set.as_slice() {
                [] => {
                    problems.push(
                        path,
                        pos,
                        format!(
                            "evaluator `{name}`: `string` needs one of `equals`, `contains`, `startsWith`, `endsWith` (not empty)"
                        ),
                    );
                    continue;
                }
                [(op, _, value), rest @ ..] => {
                    if !rest.is_empty() {
                        let ignored: Vec<String> =
                            rest.iter().map(|(_, k, _)| format!("`{k}`")).collect();
                        problems.warn(
                            path,
                            pos,
                            format!(
                                "evaluator `{name}`: only `{}` is checked, as gh models eval checks only the first set; {} ignored (make each its own evaluator)",
                                set[0].1,
                                ignored.join(", ")
                            ),
                        );
                    }
                    Runs::String {
                        op: *op,
                        value: value.clone(),
                    }
                }
            }
        } else if let Some(llm) = &e.llm {
            if llm.prompt.trim().is_empty() {
                problems.push(
                    path,
                    pos,
                    format!("evaluator `{name}`: `llm.prompt` is empty"),
                );
                continue;
            }
            Runs::Graded(Arc::new(ModelGraded {
                model_id: llm.model_id.clone().filter(|m| !m.is_empty()),
                system_prompt: llm.system_prompt.clone().filter(|s| !s.is_empty()),
                prompt: llm.prompt.clone(),
                choices: llm
                    .choices
                    .iter()
                    .map(|c| Choice {
                        choice: c.choice.text(),
                        score: c.score,
                    })
                    .collect(),
                builtin: None,
            }))
        } else if let Some(uses) = e.uses.as_ref().filter(|u| !u.is_empty()) {
            match super::github_builtins::builtin(uses) {
                Some(b) => Runs::Graded(Arc::new(b)),
                None => {
                    let hint = did_you_mean(uses, super::github_builtins::NAMES);
                    problems.push(
                        path,
                        nodes.get(i).map_or(pos, |n| n.pos_at(&["uses"])),
                        format!(
                            "evaluator `{name}`: no built-in evaluator `{uses}`{}",
                            if hint.is_empty() {
                                format!(
                                    "; GitHub's are {}",
                                    super::github_builtins::NAMES.join(", ")
                                )
                            } else {
                                hint
                            }
                        ),
                    );
                    continue;
                }
            }
        } else {
            problems.push(
                path,
                pos,
                format!("evaluator `{name}` needs one of `string`, `llm` or `uses`"),
            );
            continue;
        };
        compiled.push(Compiled { name, pos, kind });
    }
    compiled
}

/// One case per `testData` row, in the segments the row names (`segment` or
/// `segments`; default `all`), with every evaluator as an assertion, its text filled in
/// from the row as gh models eval fills it.
fn eval_set(
    path: &str,
    node: &Node,
    rows: &[BTreeMap<String, Value>],
    evaluators: &[Compiled],
    problems: &mut Diagnostics,
) -> EvalSet {
    let row_nodes = node
        .get("testData")
        .and_then(Node::as_seq)
        .unwrap_or_default();
    let pos_in = |i: usize| row_nodes.get(i).map_or(node.pos, |n| n.pos);

    let mut set = EvalSet {
        files: vec![path.to_string()],
        ..EvalSet::default()
    };
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    let mut filled_bytes = 0usize;
    for (i, row) in rows.iter().enumerate() {
        let pos = pos_in(i);
        let Some(segments) = row_segments(path, row_nodes.get(i), row, problems) else {
            continue;
        };
        let id = row_id(i, row);
        if let Some(first) = ids.get(&id) {
            problems.push(
                path,
                pos,
                format!(
                    "duplicate test data id `{id}` (row {}; first in row {first})",
                    i + 1
                ),
            );
            continue;
        }
        ids.insert(id.clone(), i + 1);
        let mut assertions = Vec::with_capacity(evaluators.len());
        for e in evaluators {
            let check = match &e.kind {
                Runs::String { op, value } => {
                    let filled = substitute(value, row).and_then(|v| {
                        filled_bytes += v.len();
                        if filled_bytes > MAX_FILLED_BYTES {
                            Err(format!(
                                "the evaluators' values filled in for rows 1 to {} are over {} MB together",
                                i + 1,
                                MAX_FILLED_BYTES / 1_000_000
                            ))
                        } else {
                            Ok(v)
                        }
                    });
                    match filled {
                        Ok(value) => Check::GithubString { op: *op, value },
                        Err(why) => {
                            problems.push(
                                path,
                                e.pos,
                                format!("evaluator `{}`, test data row {}: {why}", e.name, i + 1),
                            );
                            return set;
                        }
                    }
                }
                Runs::Graded(g) => Check::ModelGraded(g.clone()),
            };
            assertions.push(Assertion {
                name: e.name.clone(),
                check,
                negate: false,
                weight: 1.0,
                pos: e.pos,
            });
        }
        for s in &segments {
            set.segments.entry(s.clone()).or_default();
        }
        set.cases.push(Case {
            id,
            description: None,
            segments,
            vars: row.clone(),
            tool_results: BTreeMap::new(),
            assertions,
            file: path.to_string(),
            pos,
        });
    }
    set
}

/// The segments a row names: `segment: NAME`, or `segments:` a name or a list of names;
/// `all` when it names none. `None` (the problem said) when they are not names.
fn row_segments(
    path: &str,
    row_node: Option<&Node>,
    row: &BTreeMap<String, Value>,
    problems: &mut Diagnostics,
) -> Option<Vec<String>> {
    let mut segments: Vec<String> = Vec::new();
    for key in ["segment", "segments"] {
        let Some(value) = row.get(key) else { continue };
        let names: Option<Vec<&str>> = match value {
            Value::String(s) => Some(vec![s.as_str()]),
            Value::Array(items) => items.iter().map(Value::as_str).collect(),
            _ => None,
        };
        match names {
            Some(names) if names.iter().all(|n| !n.trim().is_empty()) => {
                for n in names {
                    if !segments.iter().any(|s| s == n) {
                        segments.push(n.to_string());
                    }
                }
            }
            _ => {
                let pos = row_node.map_or(Pos::START, |n| n.pos_at(&[key]));
                problems.push(
                    path,
                    pos,
                    format!(
                        "`{key}` must be a segment name or a list of them, found {}",
                        super::assertion::json_type(value)
                    ),
                );
                return None;
            }
        }
    }
    if segments.is_empty() {
        segments.push(DEFAULT_SEGMENT.to_string());
    }
    Some(segments)
}

/// A row's id: its `id` (a string or a number) if it has one, else `row-N-HASH`, its
/// 1-based row number and a short hash of its content: readable, and an edited row is
/// a new case.
fn row_id(index: usize, row: &BTreeMap<String, Value>) -> String {
    match row.get("id") {
        Some(Value::String(id)) if !id.is_empty() => return id.clone(),
        Some(Value::Number(n)) => return n.to_string(),
        _ => {}
    }
    let bytes = serde_json::to_vec(row).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    let hex: String = digest[..3].iter().map(|b| format!("{b:02x}")).collect();
    format!("row-{}-{hex}", index + 1)
}

/// Warnings for placeholders gh models eval leaves as written: `{{name}}` that a row
/// does not have, and `{{ name }}` (spaces) that it does.
fn placeholder_warnings(
    path: &str,
    node: &Node,
    file: &GithubModelsFile,
    problems: &mut Diagnostics,
) {
    if file.test_data.is_empty() {
        return;
    }
    let mut texts: Vec<(String, Pos, &str, bool)> = Vec::new();
    let message_nodes = node
        .get("messages")
        .and_then(Node::as_seq)
        .unwrap_or_default();
    for (i, m) in file.messages.iter().enumerate() {
        let pos = message_nodes
            .get(i)
            .map_or(node.pos, |n| n.pos_at(&["content"]));
        texts.push((format!("messages[{i}].content"), pos, &m.content, false));
    }
    let evaluator_nodes = node
        .get("evaluators")
        .and_then(Node::as_seq)
        .unwrap_or_default();
    for (i, e) in file.evaluators.iter().enumerate() {
        let pos = evaluator_nodes.get(i).map_or(node.pos, |n| n.pos);
        if let Some(llm) = &e.llm {
            texts.push((
                format!("evaluators[{i}].llm.prompt"),
                pos,
                &llm.prompt,
                true,
            ));
        }
        if let Some(Text::Str(s)) = e.string.as_ref().and_then(|s| {
            [&s.equals, &s.contains, &s.starts_with, &s.ends_with]
                .into_iter()
                .flatten()
                .next()
        }) {
            texts.push((format!("evaluators[{i}].string"), pos, s, false));
        }
    }
    for (field, pos, text, graded) in texts {
        for inner in placeholders(text) {
            let has = |row: &BTreeMap<String, Value>, key: &str| {
                row.contains_key(key) || (graded && key == "completion")
            };
            let trimmed = inner.trim();
            if trimmed != inner && file.test_data.iter().any(|r| has(r, trimmed)) {
                problems.warn(
                    path,
                    pos,
                    format!(
                        "`{{{{{inner}}}}}` in `{field}` is sent as written: GitHub Models fills in only `{{{{{trimmed}}}}}`, without spaces"
                    ),
                );
                continue;
            }
            let name_like = !inner.is_empty()
                && inner
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !name_like {
                continue;
            }
            let missing: Vec<String> = file
                .test_data
                .iter()
                .enumerate()
                .filter(|(_, r)| !has(r, inner))
                .map(|(i, _)| (i + 1).to_string())
                .collect();
            if missing.is_empty() {
                continue;
            }
            let rows = if missing.len() > 5 {
                format!("{} and {} more", missing[..5].join(", "), missing.len() - 5)
            } else {
                missing.join(", ")
            };
            problems.warn(
                path,
                pos,
                format!(
                    "`{{{{{inner}}}}}` in `{field}` is sent as written for test data row(s) {rows}, which have no `{inner}`, as gh models eval does"
                ),
            );
        }
    }
}

/// The text between `{{` and `}}` of each placeholder-shaped part of `text`, once each.
fn placeholders(text: &str) -> BTreeSet<&str> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let inner = &after[..end];
        match inner.rfind("{{") {
            // `{{ a {{b}}`: the last opening is the placeholder.
            Some(k) => found.insert(&inner[k + 2..]),
            None => found.insert(inner.trim_start_matches('{')),
        };
        rest = &after[end + 2..];
    }
    found
}

/// Text a message, judge prompt or evaluator value may grow to once its `{{name}}`s are
/// filled in, and all of a file's evaluator values together: a placeholder repeated a
/// thousand times over a long value would otherwise fill the memory.
pub const MAX_FILLED_BYTES: usize = 64_000_000;

/// `text` with every `{{name}}` whose `name` is a key of `vars` replaced by the value,
/// and everything else as written: gh-models' `TemplateString` (`pkg/prompt/prompt.go`),
/// which replaces `{{` + key + `}}` for each key of the row and nothing more. A missing
/// variable stays as written; `{{ name }}` with spaces is not `{{name}}`. Values are
/// written as Go's `%v` writes them. One difference: a value that itself holds a
/// `{{placeholder}}` is not filled in again here (gh-models may or may not, by the
/// order it happens to visit the keys in). Text that would grow over
/// [`MAX_FILLED_BYTES`] is an error.
pub fn substitute(text: &str, vars: &BTreeMap<String, Value>) -> Result<String, String> {
    if !text.contains("{{") {
        return Ok(text.to_string());
    }
    let too_large = || {
        format!(
            "filled in with the test data it would be over {} MB; use fewer placeholders or shorter values",
            MAX_FILLED_BYTES / 1_000_000
        )
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let value = after
            .find("}}")
            .and_then(|end| vars.get(&after[..end]).map(|v| (end, v)));
        match value {
            Some((end, v)) => {
                out.push_str(&rest[..start]);
                let v = match v {
                    Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
                    other => std::borrow::Cow::Owned(go_text(other)),
                };
                if out.len() + v.len() > MAX_FILLED_BYTES {
                    return Err(too_large());
                }
                out.push_str(&v);
                rest = &after[end + 2..];
            }
            None => {
                // Keep one brace and look again from the next: `{{{name}}}` is `{` and
                // `{{name}}` and `}`.
                out.push_str(&rest[..=start]);
                rest = &rest[start + 1..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A value as Go's `fmt.Sprintf("%v", v)` writes what yaml.v3 decodes it to: text as
/// is, numbers as Go writes them (`1e+06`), `<nil>`, `[a b]`, `map[k:v]` (keys sorted).
pub fn go_text(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => go_float(f),
            _ => n.to_string(),
        },
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_text).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_text(&map[k])))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

/// A float as Go's `%v` writes it (`strconv.FormatFloat(f, 'g', -1, 64)`): the shortest
/// digits that read back the same, in exponent form when the exponent is below -4 or at
/// least 6 (`1e+06`, `1.2e-05`).
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` is the shortest round-trip digits: `1.5e6`, `-2.5e-7`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let point = exp + 1; // digits before the decimal point
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    if negative { format!("-{body}") } else { body }
}

/// Lower case as Go's `strings.ToLower` makes it: each character on its own, by its
/// simple mapping (`İ` to `i`, a final `Σ` to `σ`).
pub fn go_lower(text: &str) -> String {
    text.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

/// Whether `answer` passes a `string` evaluator, as gh models eval's
/// `runStringEvaluator` (`cmd/eval/eval.go`) decides: on the answer with surrounding
/// whitespace trimmed (`strings.TrimSpace`), `equals` exactly, `contains`, `startsWith`
/// and `endsWith` with both sides lower-cased.
pub fn string_holds(op: StringOp, answer: &str, value: &str) -> bool {
    let answer = answer.trim();
    match op {
        StringOp::Equals => answer == value,
        StringOp::Contains => go_lower(answer).contains(&go_lower(value)),
        StringOp::StartsWith => go_lower(answer).starts_with(&go_lower(value)),
        StringOp::EndsWith => go_lower(answer).ends_with(&go_lower(value)),
    }
}

/// The judge's pick among `choices`, as gh models eval's `runLLMEvaluator` makes it:
/// the first choice, in order, whose text the answer (trimmed, lower-cased) contains.
pub fn pick<'c>(choices: &'c [Choice], judge_answer: &str) -> Option<&'c Choice> {
    let answer = go_lower(judge_answer.trim());
    choices
        .iter()
        .find(|c| answer.contains(&go_lower(&c.choice)))
}

/// Warn about every field of `node` that `schema` (the file's, resolved from `root`)
/// does not know, at the field's name.
fn unknown_fields(path: &str, root: &Value, schema: &Value, node: &Node, out: &mut Diagnostics) {
    let schema = resolve(root, schema);
    if let Some(alts) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        let wanted = match node.kind {
            Kind::Map(_) => "object",
            Kind::Seq(_) => "array",
            _ => return,
        };
        // The alternative for this kind of value, or one that is alternatives itself.
        if let Some(alt) = alts.iter().map(|a| resolve(root, a)).find(|a| {
            type_names(a).contains(&wanted) || a.get("anyOf").or_else(|| a.get("oneOf")).is_some()
        }) {
            unknown_fields(path, root, alt, node, out);
        }
        return;
    }
    match &node.kind {
        Kind::Map(entries) => {
            // A map with keys of its own choosing (test data rows) has no `properties`.
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            for e in entries {
                match props.get(&e.key) {
                    Some(sub) => unknown_fields(path, root, sub, &e.value, out),
                    None => out.warn(
                        path,
                        e.key_pos,
                        format!(
                            "unknown field `{}` is ignored, as GitHub Models ignores it{}",
                            e.key,
                            did_you_mean(&e.key, props.keys().map(String::as_str))
                        ),
                    ),
                }
            }
        }
        Kind::Seq(items) => {
            if let Some(item) = schema.get("items") {
                for i in items {
                    unknown_fields(path, root, item, i, out);
                }
            }
        }
        _ => {}
    }
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut current = schema;
    for _ in 0..16 {
        match current
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .and_then(|name| root.get("$defs")?.get(name))
        {
            Some(target) => current = target,
            None => break,
        }
    }
    current
}

fn type_names(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).expect("a mapping")
    }

    /// Conformance with gh-models' `TemplateString` (`pkg/prompt/prompt.go`), which
    /// `gh models eval` applies to messages, string evaluator values and judge prompts:
    /// `strings.ReplaceAll(text, "{{"+key+"}}", value)` for each key of the row, values
    /// written with `fmt.Sprintf("%v", …)`; nothing else is touched.
    #[test]
    fn templates_fill_only_row_keys_like_gh_models() {
        let row = vars(json!({
            "input": "hi", "n": 3, "ratio": 0.5, "big": 1500000.0, "tiny": 0.00001,
            "whole": 2.0, "flag": true, "none": null, "list": ["a", 1, false],
            "map": {"b": 2, "a": "x"}, "secrets.TOKEN": "leaked?"
        }));
        let cases = [
            ("Say {{input}}", "Say hi"),
            ("{{input}}{{input}}", "hihi"),
            (
                "n={{n}} r={{ratio}} b={{big}} t={{tiny}} w={{whole}}",
                "n=3 r=0.5 b=1.5e+06 t=1e-05 w=2",
            ),
            (
                "{{flag}} {{none}} {{list}} {{map}}",
                "true <nil> [a 1 false] map[a:x b:2]",
            ),
            // A missing variable stays as written.
            ("Hello {{name}}", "Hello {{name}}"),
            // Spaces make another key: not filled in.
            ("{{ input }}", "{{ input }}"),
            // GitHub Actions expressions and other braces are text.
            ("token: ${{ secrets.TOKEN }}", "token: ${{ secrets.TOKEN }}"),
            (
                "json: {\"a\": {\"b\": 1}} {% raw %} {#x#}",
                "json: {\"a\": {\"b\": 1}} {% raw %} {#x#}",
            ),
            ("{{{input}}}", "{hi}"),
            ("{{x {{input}}", "{{x hi"),
            ("{{secrets.TOKEN}}", "leaked?"),
            ("unclosed {{input", "unclosed {{input"),
        ];
        for (text, want) in cases {
            assert_eq!(substitute(text, &row).as_deref(), Ok(want), "{text}");
        }
        // Filled in once: a value holding a placeholder is not filled in again.
        let row = vars(json!({"a": "{{b}}", "b": "B"}));
        assert_eq!(substitute("{{a}}", &row).as_deref(), Ok("{{b}}"));
    }

    /// A placeholder repeated over a long value stops at the limit, not at the memory.
    #[test]
    fn filling_in_stops_at_the_limit() {
        let row = vars(json!({"v": "x".repeat(100_000)}));
        let text = "{{v}}".repeat(1_000);
        let err = substitute(&text, &row).expect_err("over the limit");
        assert!(err.contains("over 64 MB"), "{err}");
        assert_eq!(
            substitute(&"{{v}}".repeat(600), &row).map(|t| t.len()),
            Ok(60_000_000)
        );
    }

    #[test]
    fn floats_read_as_go_writes_them() {
        let cases = [
            (1.0, "1"),
            (0.1, "0.1"),
            (100000.0, "100000"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1e21, "1e+21"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (0.000012, "1.2e-05"),
            (-2.5, "-2.5"),
            (1e100, "1e+100"),
            (2.71, "2.71"),
        ];
        for (f, want) in cases {
            assert_eq!(go_float(f), want, "{f}");
        }
    }

    /// Conformance with gh models eval's `runStringEvaluator` (`cmd/eval/eval.go`): the
    /// answer is `strings.TrimSpace`d (in `callModelWithRetry`); `equals` compares it
    /// exactly with the value as written; `contains`, `startsWith` and `endsWith`
    /// compare `strings.ToLower` of both.
    #[test]
    fn string_evaluators_judge_like_gh_models() {
        use StringOp::*;
        let cases = [
            (Contains, "hello WORLD", "HELLO", true),
            (Contains, "hello WORLD", "world", true),
            (Contains, "hello", "bye", false),
            (StartsWith, "  Summary - fine", "summary -", true),
            (StartsWith, "The summary", "summary", false),
            (EndsWith, "All DONE.\n", "done.", true),
            (EndsWith, "All done. ", "done", false),
            (Equals, "  refund\n", "refund", true),
            (Equals, "Refund", "refund", false),
            // The value is not trimmed: only the answer is.
            (Equals, "refund", " refund", false),
            // Go lower-cases character by character, by the simple mapping.
            (Contains, "İSTANBUL", "istanbul", true),
            (Contains, "ΟΔΟΣ", "οδοσ", true),
        ];
        for (op, answer, value, want) in cases {
            assert_eq!(
                string_holds(op, answer, value),
                want,
                "{op:?} {answer:?} {value:?}"
            );
        }
    }

    /// Conformance with `runLLMEvaluator` (`cmd/eval/eval.go`): the judge's answer is
    /// trimmed and lower-cased, and the first choice in the evaluator's order that it
    /// contains is the pick; none is a score of 0.
    #[test]
    fn the_judges_pick_is_the_first_choice_it_contains() {
        let choices: Vec<Choice> = [("Good", 1.0), ("Bad", 0.0), ("1", 0.0), ("5", 1.0)]
            .into_iter()
            .map(|(c, s)| Choice {
                choice: c.into(),
                score: s,
            })
            .collect();
        let picked = |a: &str| pick(&choices, a).map(|c| c.choice.as_str());
        assert_eq!(picked("  GOOD\n"), Some("Good"));
        assert_eq!(picked("not good, bad"), Some("Good"));
        assert_eq!(picked("bad"), Some("Bad"));
        assert_eq!(picked("5"), Some("5"));
        assert_eq!(picked("15"), Some("1"));
        assert_eq!(picked("maybe"), None);
    }

    #[test]
    fn ids_are_row_number_and_hash_unless_a_row_names_its_own() {
        let row = vars(json!({"input": "a"}));
        let id = row_id(2, &row);
        assert!(
            id.starts_with("row-3-") && id.len() == "row-3-".len() + 6,
            "{id}"
        );
        assert_eq!(id, row_id(2, &row));
        assert_ne!(id, row_id(2, &vars(json!({"input": "b"}))));
        assert_eq!(
            row_id(0, &vars(json!({"id": "greeting", "input": "a"}))),
            "greeting"
        );
        assert_eq!(row_id(0, &vars(json!({"id": 7}))), "7");
    }

    #[test]
    fn placeholders_are_found_once_each() {
        let found: Vec<&str> =
            placeholders("{{a}} {{ b }} ${{ secrets.X }} {{a}} {{x {{c}} {{{d}}}")
                .into_iter()
                .collect();
        assert_eq!(found, vec![" b ", " secrets.X ", "a", "c", "d"]);
    }
}
