//! What is sent to a model, provider-neutral: an artifact's messages rendered with a
//! case's variables, its parameters, response format and tools, and the conversation
//! the tool loop grows. Providers translate it into their wire format.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::artifact::fingerprint::canonical_digest;
use crate::artifact::suite::Case;
use crate::artifact::template::{Compiled, MAX_PROMPT_BYTES, TemplateError};
use crate::artifact::{Artifact, ArtifactFormat, ResponseFormat, Role, github_models};

/// Sampling parameters, as the artifact sets them (unset ones are not sent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Params {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
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

/// The answer format asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Format {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        strict: Option<bool>,
        schema: Value,
    },
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Function {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

/// A call the model made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// The provider's id for the call, echoed with its result.
    pub id: String,
    pub name: String,
    /// The arguments object; a string when the model wrote something that is not JSON.
    pub arguments: Value,
}

impl Call {
    /// Length of the call as text, for estimating its tokens.
    pub fn text_len(&self) -> usize {
        self.name.len() + self.arguments.to_string().len()
    }
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Turn {
    System {
        content: String,
    },
    User {
        content: String,
    },
    Assistant {
        content: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        calls: Vec<Call>,
    },
    /// A tool's answer to `call_id`; `is_error` for a failed tool.
    Tool {
        call_id: String,
        name: String,
        content: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

/// A chat request, ready for any provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub params: Params,
    pub format: Format,
    pub messages: Vec<Turn>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Function>,
}

/// Bumped whenever the key's inputs change meaning, so old entries are never reused.
const KEY_VERSION: &str = "promptgate-request/1";

impl ChatRequest {
    /// The artifact's message templates, compiled once for all its cases. A GitHub
    /// Models artifact has none: its messages are filled in as GitHub fills them.
    pub fn templates(artifact: &Artifact) -> Result<Compiled, String> {
        let sources: Vec<&str> = match artifact.format {
            ArtifactFormat::GithubModels => Vec::new(),
            ArtifactFormat::Native => artifact
                .messages
                .iter()
                .map(|m| m.content.as_str())
                .collect(),
        };
        Compiled::new(&sources).map_err(|(i, e)| template_error(artifact, i, &e))
    }

    /// How long the messages for `case` render, measured without making them; an error
    /// when they are over [`MAX_PROMPT_BYTES`] together.
    pub fn prompt_len(
        artifact: &Artifact,
        templates: &Compiled,
        case: &Case,
    ) -> Result<usize, String> {
        let mut total = 0;
        for (i, m) in artifact.messages.iter().enumerate() {
            let left = MAX_PROMPT_BYTES - total;
            total += match artifact.format {
                // Filled in as GitHub fills it, which its own cap bounds; no template.
                ArtifactFormat::GithubModels => github_models::substitute(&m.content, &case.vars)
                    .map_err(|e| format!("message {} of {}: {e}", i + 1, artifact.path))?
                    .len(),
                ArtifactFormat::Native => templates
                    .rendered_len(i, &case.vars, left)
                    .map_err(|e| template_error(artifact, i, &e))?,
            };
            if total > MAX_PROMPT_BYTES {
                return Err(prompt_too_long(artifact));
            }
        }
        Ok(total)
    }

    /// The first request for `case`: the artifact's messages (compiled as `templates`,
    /// see [`ChatRequest::templates`]) rendered with the case's variables.
    pub fn for_case(
        artifact: &Artifact,
        templates: &Compiled,
        case: &Case,
    ) -> Result<ChatRequest, String> {
        let messages = artifact
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let content = match artifact.format {
                    ArtifactFormat::GithubModels => {
                        github_models::substitute(&m.content, &case.vars)
                            .map_err(|e| format!("message {} of {}: {e}", i + 1, artifact.path))?
                    }
                    ArtifactFormat::Native => templates
                        .render(i, &case.vars)
                        .map_err(|e| template_error(artifact, i, &e))?,
                };
                Ok(match m.role {
                    Role::System => Turn::System { content },
                    Role::User => Turn::User { content },
                    Role::Assistant => Turn::Assistant {
                        content,
                        calls: Vec::new(),
                    },
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let model = &artifact.model;
        Ok(ChatRequest {
            model: model.name.clone(),
            params: Params {
                temperature: model.temperature,
                max_tokens: model.max_tokens,
                max_completion_tokens: model.max_completion_tokens,
                top_p: model.top_p,
                seed: model.seed,
                stop: model.stop.clone(),
                presence_penalty: model.presence_penalty,
                frequency_penalty: model.frequency_penalty,
            },
            format: match &artifact.response_format {
                ResponseFormat::Text => Format::Text,
                ResponseFormat::JsonObject => Format::JsonObject,
                ResponseFormat::JsonSchema {
                    name,
                    strict,
                    schema,
                    ..
                } => Format::JsonSchema {
                    name: name.clone().unwrap_or_else(|| "answer".into()),
                    strict: *strict,
                    schema: schema.clone(),
                },
            },
            messages,
            tools: artifact
                .tools
                .iter()
                .flat_map(|t| &t.definitions)
                .filter_map(function_of)
                .collect(),
        })
    }

    /// Identifies the answer to this request as sample `sample`: the same for the same
    /// model, parameters, format, conversation and tools, however they were written.
    pub fn key(&self, sample: u32) -> String {
        canonical_digest(&json!({
            "version": KEY_VERSION,
            "request": self,
            "sample": sample,
        }))
    }

    /// Text of every message and tool, for estimating tokens when a provider does not
    /// report usage.
    pub fn text_len(&self) -> usize {
        let turns: usize = self
            .messages
            .iter()
            .map(|t| match t {
                Turn::System { content } | Turn::User { content } => content.len(),
                Turn::Assistant { content, calls } => {
                    content.len() + calls.iter().map(Call::text_len).sum::<usize>()
                }
                Turn::Tool { content, .. } => content.len(),
            })
            .sum();
        let tools: usize = self
            .tools
            .iter()
            .map(|f| f.name.len() + f.parameters.to_string().len())
            .sum();
        turns + tools
    }
}

/// Where message `index` of `artifact` failed as a template, and why.
/// The messages of a case render to more than one prompt may hold.
fn prompt_too_long(artifact: &Artifact) -> String {
    format!(
        "the messages of {} render to more than {} MiB for this case, the most one prompt may hold",
        artifact.path,
        MAX_PROMPT_BYTES >> 20
    )
}

fn template_error(artifact: &Artifact, index: usize, e: &TemplateError) -> String {
    format!(
        "message {} of {}, template line {}: {}",
        index + 1,
        artifact.path,
        e.line,
        e.message
    )
}

/// A function definition in OpenAI's tool format (`{type: function, function: {…}}`) or
/// bare (`{name, description, parameters}`).
fn function_of(definition: &Value) -> Option<Function> {
    let f = definition.get("function").unwrap_or(definition);
    Some(Function {
        name: f.get("name")?.as_str()?.to_string(),
        description: f
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
        parameters: f
            .get("parameters")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    })
}

/// Tokens in `bytes` of text, estimated (about four bytes a token in English).
pub fn estimate_tokens(bytes: usize) -> u64 {
    bytes.div_ceil(4) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            params: Params {
                temperature: Some(0.2),
                ..Params::default()
            },
            format: Format::Text,
            messages: vec![Turn::User {
                content: "hi".into(),
            }],
            tools: vec![],
        }
    }

    #[test]
    fn key_depends_on_everything_that_determines_the_answer() {
        let base = request();
        assert_eq!(base.key(0), request().key(0));
        assert_ne!(base.key(0), base.key(1));
        let mut other = request();
        other.params.temperature = Some(0.3);
        assert_ne!(base.key(0), other.key(0));
        let mut other = request();
        other.model = "n".into();
        assert_ne!(base.key(0), other.key(0));
        let mut other = request();
        other.format = Format::JsonObject;
        assert_ne!(base.key(0), other.key(0));
        let mut other = request();
        other.messages.push(Turn::Tool {
            call_id: "c".into(),
            name: "t".into(),
            content: "{}".into(),
            is_error: false,
        });
        assert_ne!(base.key(0), other.key(0));
    }

    #[test]
    fn reads_both_tool_definition_shapes() {
        let wrapped = json!({"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}});
        let bare = json!({"name": "b", "description": "d"});
        assert_eq!(function_of(&wrapped).map(|f| f.name), Some("a".into()));
        let bare = function_of(&bare);
        assert_eq!(bare.as_ref().map(|f| f.name.as_str()), Some("b"));
        assert_eq!(
            bare.map(|f| f.parameters),
            Some(json!({"type": "object", "properties": {}}))
        );
    }
}
