//! GitHub Models prompt files (`*.prompt.yml`), read into the same model as native
//! artifacts, with `testData` as their eval set and `evaluators` as its assertions.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::assertion::{Assertion, Check};
use super::suite::{Case, DEFAULT_SEGMENT, EvalSet, Segment};
use super::{Artifact, ArtifactFormat, Message, ModelSpec, ResponseFormat, normalize_content};
use crate::diag::Diagnostics;
use crate::format;
use crate::format::yaml::Node;

/// Provider that GitHub Models files run on; declaring a provider of this name in
/// `.promptgate.yaml` points them at another endpoint.
pub const PROVIDER: &str = "github-models";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GithubModelsFile {
    pub name: Option<String>,
    pub description: Option<String>,
    /// `publisher/model`, e.g. `openai/gpt-4o-mini`.
    pub model: String,
    #[serde(default)]
    pub model_parameters: ModelParameters,
    pub response_format: Option<GithubResponseFormat>,
    /// The JSON schema as a JSON string: `{"name": …, "schema": {…}}`.
    pub json_schema: Option<String>,
    #[schemars(length(min = 1))]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub test_data: Vec<BTreeMap<String, Value>>,
    #[serde(default)]
    pub evaluators: Vec<Evaluator>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelParameters {
    pub max_tokens: Option<u32>,
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
#[serde(deny_unknown_fields)]
pub struct Evaluator {
    pub name: String,
    pub string: Option<StringEvaluator>,
    /// Model-graded evaluators: not run by promptgate (reported as a warning).
    pub llm: Option<Value>,
    /// GitHub's built-in evaluators (`github/similarity`…): not run by promptgate.
    pub uses: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StringEvaluator {
    pub starts_with: Option<String>,
    pub ends_with: Option<String>,
    pub contains: Option<String>,
    pub equals: Option<String>,
}

pub fn convert(path: &str, node: Node) -> Result<Artifact, Diagnostics> {
    let file: GithubModelsFile =
        format::typed_file(path, &node, crate::schemas::GITHUB_MODELS_PROMPT.get())?;
    let mut problems = Diagnostics::default();
    let at = |keys: &[&str]| node.pos_at(keys);

    let response_format = match (file.response_format, &file.json_schema) {
        (None | Some(GithubResponseFormat::Text), _) => ResponseFormat::Text,
        (Some(GithubResponseFormat::JsonObject), _) => ResponseFormat::JsonObject,
        (Some(GithubResponseFormat::JsonSchema), None) => {
            problems.push(
                path,
                at(&["responseFormat"]),
                "`responseFormat: json_schema` needs `jsonSchema`",
            );
            ResponseFormat::Text
        }
        (Some(GithubResponseFormat::JsonSchema), Some(text)) => {
            match serde_json::from_str::<Value>(text) {
                Ok(doc) => match (doc.get("name").and_then(Value::as_str), doc.get("schema")) {
                    (Some(name), Some(schema)) => ResponseFormat::JsonSchema {
                        name: Some(name.to_string()),
                        strict: doc.get("strict").and_then(Value::as_bool),
                        source: None,
                        schema: schema.clone(),
                    },
                    _ => {
                        problems.push(
                            path,
                            at(&["jsonSchema"]),
                            "`jsonSchema` must contain `name` and `schema`",
                        );
                        ResponseFormat::Text
                    }
                },
                Err(e) => {
                    problems.push(
                        path,
                        at(&["jsonSchema"]),
                        format!("`jsonSchema` is not valid JSON: {e}"),
                    );
                    ResponseFormat::Text
                }
            }
        }
    };

    let evals = eval_set(
        path,
        &node,
        &file.test_data,
        &file.evaluators,
        &mut problems,
    );
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
            top_p: params.top_p,
            seed: None,
            stop: None,
            presence_penalty: None,
            frequency_penalty: None,
        },
        response_format,
        messages: file
            .messages
            .into_iter()
            .map(|m| Message {
                role: m.role,
                content: normalize_content(&m.content),
            })
            .collect(),
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

/// One case per `testData` row, in segment `all`; each `string` evaluator becomes an
/// assertion with the row's variables filled in (`{{expected}}`).
fn eval_set(
    path: &str,
    node: &Node,
    rows: &[BTreeMap<String, Value>],
    evaluators: &[Evaluator],
    problems: &mut Diagnostics,
) -> EvalSet {
    let evaluator_nodes = node
        .get("evaluators")
        .and_then(Node::as_seq)
        .unwrap_or_default();
    let row_nodes = node
        .get("testData")
        .and_then(Node::as_seq)
        .unwrap_or_default();
    let pos_in = |nodes: &[Node], i: usize| nodes.get(i).map_or(node.pos, |n| n.pos);

    for (i, e) in evaluators.iter().enumerate() {
        let kinds = [e.string.is_some(), e.llm.is_some(), e.uses.is_some()];
        let pos = pos_in(evaluator_nodes, i);
        match kinds.iter().filter(|k| **k).count() {
            1 => {}
            0 => problems.push(
                path,
                pos,
                format!(
                    "evaluator `{}` needs one of `string`, `llm` or `uses`",
                    e.name
                ),
            ),
            _ => problems.push(
                path,
                pos,
                format!(
                    "evaluator `{}` has more than one of `string`, `llm`, `uses`",
                    e.name
                ),
            ),
        }
        if e.llm.is_some() || e.uses.is_some() {
            problems.warn(
                path,
                pos,
                format!(
                    "evaluator `{}` is model-graded; promptgate does not run it (use an `llm-rubric` assertion in a suite)",
                    e.name
                ),
            );
        }
    }

    let mut set = EvalSet {
        files: vec![path.to_string()],
        ..EvalSet::default()
    };
    set.segments
        .insert(DEFAULT_SEGMENT.to_string(), Segment::default());
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let pos = pos_in(row_nodes, i);
        let mut assertions = Vec::new();
        for e in evaluators {
            let Some(s) = &e.string else { continue };
            let checks = [
                (s.starts_with.as_ref(), "starts-with"),
                (s.ends_with.as_ref(), "ends-with"),
                (s.contains.as_ref(), "contains"),
                (s.equals.as_ref(), "equals"),
            ];
            for (value, name) in checks {
                let Some(value) = value else { continue };
                let value = match super::template::render(value, row) {
                    Ok(v) => v,
                    Err(err) => {
                        problems.push(
                            path,
                            pos,
                            format!(
                                "evaluator `{}` cannot be filled from test data row {}: {}",
                                e.name,
                                i + 1,
                                err.message
                            ),
                        );
                        continue;
                    }
                };
                let check = match name {
                    "starts-with" => Check::StartsWith { value },
                    "ends-with" => Check::EndsWith { value },
                    "contains" => Check::Contains { value },
                    _ => Check::Equals { value },
                };
                assertions.push(Assertion {
                    name: name.to_string(),
                    check,
                    negate: false,
                    weight: 1.0,
                    pos,
                });
            }
        }
        let base = row_id(row);
        let n = ids.entry(base.clone()).or_insert(0);
        *n += 1;
        if *n > 1 && row.contains_key("id") {
            problems.push(
                path,
                pos,
                format!("duplicate test data id `{base}` (row {})", i + 1),
            );
            continue;
        }
        // Identical rows get a suffix no id can collide with.
        let id = if *n == 1 { base } else { format!("{base}#{n}") };
        set.cases.push(Case {
            id,
            description: None,
            segments: vec![DEFAULT_SEGMENT.to_string()],
            vars: row.clone(),
            tool_results: BTreeMap::new(),
            assertions,
            file: path.to_string(),
            pos,
        });
    }
    set
}

/// A row's id: its `id` variable if it has one, else a hash of its content, so ids stay
/// put when rows are reordered.
fn row_id(row: &BTreeMap<String, Value>) -> String {
    if let Some(Value::String(id)) = row.get("id") {
        return id.clone();
    }
    let bytes = serde_json::to_vec(row).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("row-{hex}")
}
