//! Anthropic's Messages API (`/v1/messages`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};

use super::{Completion, Provider, ProviderError, Settings, http, refused};
use crate::eval::request::{Call, ChatRequest, Format, Turn};
use crate::secret::Secret;

/// The API version promptgate speaks.
const API_VERSION: &str = "2023-06-01";
/// `max_tokens` is required by the API; this when the artifact sets none.
const DEFAULT_MAX_TOKENS: u32 = 1024;

pub struct Anthropic {
    client: reqwest::Client,
    url: String,
    base_url: String,
    key: Option<Secret>,
    timeout: Duration,
    warned: AtomicBool,
}

impl Anthropic {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        Ok(Anthropic {
            client: http::client(settings.timeout)?,
            url: format!("{}/messages", settings.base_url),
            base_url: settings.base_url.clone(),
            key: settings.required_key()?,
            timeout: settings.timeout,
            warned: AtomicBool::new(false),
        })
    }
}

impl Provider for Anthropic {
    fn identity(&self) -> String {
        format!("anthropic {}", self.base_url)
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        _sample: u32,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async move {
            let (body, dropped) = body(request);
            if !dropped.is_empty() && !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "the Anthropic Messages API has no {}; not sent",
                    dropped.join(", ")
                );
            }
            let mut headers = HeaderMap::new();
            headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
            if let Some(key) = &self.key {
                let mut value = HeaderValue::from_str(key.expose()).map_err(|_| {
                    ProviderError::Unavailable("the API key is not a valid header".into())
                })?;
                value.set_sensitive(true);
                headers.insert("x-api-key", value);
            }
            let answer = http::post_json(
                &self.client,
                &self.url,
                headers,
                &body,
                self.timeout,
                self.key.as_ref(),
            )
            .await?;
            parse(&answer)
        })
    }
}

/// The request body, and the settings the API has no place for.
pub fn body(request: &ChatRequest) -> (Value, Vec<&'static str>) {
    let mut body = Map::new();
    let mut dropped = Vec::new();
    body.insert("model".into(), json!(request.model));
    let p = &request.params;
    body.insert(
        "max_tokens".into(),
        json!(
            p.max_tokens
                .or(p.max_completion_tokens)
                .unwrap_or(DEFAULT_MAX_TOKENS)
        ),
    );
    let system: Vec<&str> = request
        .messages
        .iter()
        .filter_map(|t| match t {
            Turn::System { content } => Some(content.as_str()),
            _ => None,
        })
        .collect();
    if !system.is_empty() {
        body.insert("system".into(), json!(system.join("\n\n")));
    }
    body.insert("messages".into(), Value::Array(messages(&request.messages)));
    if let Some(t) = p.temperature {
        body.insert("temperature".into(), json!(t));
    }
    // Recent models take one of temperature and top_p, not both.
    match (p.temperature, p.top_p) {
        (Some(_), Some(_)) => dropped.push("top_p together with temperature"),
        (None, Some(t)) => {
            body.insert("top_p".into(), json!(t));
        }
        _ => {}
    }
    if let Some(stop) = &p.stop {
        body.insert("stop_sequences".into(), json!(stop));
    }
    if p.seed.is_some() {
        dropped.push("seed");
    }
    if p.presence_penalty.is_some() || p.frequency_penalty.is_some() {
        dropped.push("presence/frequency penalty");
    }
    if request.format != Format::Text {
        dropped.push("response_format");
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|f| {
                let mut tool = json!({"name": f.name, "input_schema": f.parameters});
                if let Some(d) = &f.description {
                    tool["description"] = json!(d);
                }
                tool
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    (Value::Object(body), dropped)
}

/// User and assistant messages; tool results that follow one another go in one user
/// message, as the API wants roles to alternate.
fn messages(turns: &[Turn]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for turn in turns {
        match turn {
            Turn::System { .. } => {}
            Turn::User { content } => out.push(json!({"role": "user", "content": content})),
            Turn::Assistant { content, calls } if calls.is_empty() => {
                out.push(json!({"role": "assistant", "content": content}));
            }
            Turn::Assistant { content, calls } => {
                let mut blocks = Vec::new();
                if !content.is_empty() {
                    blocks.push(json!({"type": "text", "text": content}));
                }
                for c in calls {
                    let input = match &c.arguments {
                        Value::Object(_) => c.arguments.clone(),
                        other => json!({"value": other}),
                    };
                    blocks.push(
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}),
                    );
                }
                out.push(json!({"role": "assistant", "content": blocks}));
            }
            Turn::Tool {
                call_id,
                content,
                is_error,
                ..
            } => {
                let mut block =
                    json!({"type": "tool_result", "tool_use_id": call_id, "content": content});
                if *is_error {
                    block["is_error"] = json!(true);
                }
                let previous_is_results = out.last().is_some_and(|m| {
                    m["role"] == "user"
                        && m["content"]
                            .as_array()
                            .is_some_and(|b| b.iter().all(|b| b["type"] == "tool_result"))
                });
                match out.last_mut().and_then(|m| m["content"].as_array_mut()) {
                    Some(blocks) if previous_is_results => blocks.push(block),
                    _ => out.push(json!({"role": "user", "content": [block]})),
                }
            }
        }
    }
    out
}

/// The answer, from a Messages API response.
pub fn parse(answer: &Value) -> Result<Completion, ProviderError> {
    let blocks = answer
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::Malformed("no `content` list in the answer".into()))?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => calls.push(Call {
                id: block
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                name: block
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ProviderError::Malformed("tool_use block without name".into()))?
                    .to_string(),
                arguments: block.get("input").cloned().unwrap_or_else(|| json!({})),
            }),
            _ => {}
        }
    }
    let finish_reason = answer
        .get("stop_reason")
        .and_then(Value::as_str)
        .map(str::to_string);
    // A refusal (the API's safety classifiers stopped the answer): the answer is the
    // refusal, with the explanation the API gives in `stop_details`, if any. What was
    // written before it was cut is not the answer, and its tool calls are not made.
    let refusal = finish_reason.as_deref() == Some("refusal");
    if refusal {
        let explanation = answer
            .pointer("/stop_details/explanation")
            .and_then(Value::as_str)
            .unwrap_or_default();
        text = refused(explanation);
        calls.clear();
    }
    Ok(Completion {
        text,
        calls,
        refusal,
        usage: http::usage(answer, "input_tokens", "output_tokens"),
        finish_reason,
        latency_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::provider::Usage;
    use crate::eval::request::{Function, Params};

    #[test]
    fn body_is_what_the_messages_api_takes() {
        let request = ChatRequest {
            model: "claude-3-5-haiku-latest".into(),
            params: Params {
                temperature: Some(0.0),
                seed: Some(1),
                ..Params::default()
            },
            format: Format::Text,
            messages: vec![
                Turn::System {
                    content: "be brief".into(),
                },
                Turn::User {
                    content: "refund?".into(),
                },
                Turn::Assistant {
                    content: "Checking.".into(),
                    calls: vec![
                        Call {
                            id: "tu_1".into(),
                            name: "lookup_order".into(),
                            arguments: json!({"id": 42}),
                        },
                        Call {
                            id: "tu_2".into(),
                            name: "issue_refund".into(),
                            arguments: json!({}),
                        },
                    ],
                },
                Turn::Tool {
                    call_id: "tu_1".into(),
                    name: "lookup_order".into(),
                    content: "{}".into(),
                    is_error: false,
                },
                Turn::Tool {
                    call_id: "tu_2".into(),
                    name: "issue_refund".into(),
                    content: "upstream timeout".into(),
                    is_error: true,
                },
            ],
            tools: vec![Function {
                name: "lookup_order".into(),
                description: None,
                parameters: json!({"type": "object"}),
            }],
        };
        let (body, dropped) = body(&request);
        assert_eq!(
            body,
            json!({
                "model": "claude-3-5-haiku-latest",
                "max_tokens": 1024,
                "system": "be brief",
                "messages": [
                    {"role": "user", "content": "refund?"},
                    {"role": "assistant", "content": [
                        {"type": "text", "text": "Checking."},
                        {"type": "tool_use", "id": "tu_1", "name": "lookup_order", "input": {"id": 42}},
                        {"type": "tool_use", "id": "tu_2", "name": "issue_refund", "input": {}}
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "tu_1", "content": "{}"},
                        {"type": "tool_result", "tool_use_id": "tu_2", "content": "upstream timeout", "is_error": true}
                    ]}
                ],
                "temperature": 0.0,
                "tools": [{"name": "lookup_order", "input_schema": {"type": "object"}}]
            })
        );
        assert_eq!(dropped, vec!["seed"]);
    }

    #[test]
    fn parses_text_tool_use_and_usage() {
        let answer = json!({
            "id": "msg_1", "type": "message", "role": "assistant",
            "content": [{"type": "text", "text": "Let me check."},
                        {"type": "tool_use", "id": "tu_1", "name": "lookup_order", "input": {"id": 42}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 50, "output_tokens": 12}
        });
        let c = parse(&answer).expect("parses");
        assert_eq!(c.text, "Let me check.");
        assert_eq!(c.calls[0].name, "lookup_order");
        assert_eq!(
            c.usage,
            Some(Usage {
                input: 50,
                output: 12
            })
        );
        assert!(parse(&json!({"type": "error"})).is_err());
    }

    #[test]
    fn nothing_is_no_answer_and_a_refusal_is_one() {
        let message = |content: Value, stop: &str| {
            json!({"type": "message", "role": "assistant", "content": content,
                   "stop_reason": stop, "usage": {"input_tokens": 5, "output_tokens": 0}})
        };
        for nothing in [
            json!([]),
            json!([{"type": "text", "text": null}]),
            json!([{"type": "text", "text": ""}]),
        ] {
            let c = parse(&message(nothing.clone(), "end_turn")).expect("parses");
            assert!(!c.is_answer(), "{nothing}");
        }
        // What the docs show: the text written before the classifiers stopped it.
        let mut refused = message(json!([{"type": "text", "text": "Hello.."}]), "refusal");
        let c = parse(&refused).expect("parses");
        assert_eq!(
            (c.text.as_str(), c.refusal, c.is_answer()),
            (crate::eval::provider::REFUSED_WITHOUT_TEXT, true, true)
        );
        refused["stop_details"] = json!({"type": "refusal", "category": "cyber",
            "explanation": "This request was declined because it could enable cyber harm."});
        let c = parse(&refused).expect("parses");
        assert_eq!(
            c.text,
            "This request was declined because it could enable cyber harm."
        );
        assert_eq!(c.finish_reason.as_deref(), Some("refusal"));
    }
}
