//! Any OpenAI-compatible `/chat/completions` endpoint (OpenAI, GitHub Models, llama.cpp,
//! vLLM, Ollama…).

use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};

use super::{Completion, Provider, ProviderError, Settings, http, json_string, refused};
use crate::eval::request::{Call, ChatRequest, Format, Turn};
use crate::secret::Secret;

pub struct OpenAi {
    client: reqwest::Client,
    url: String,
    base_url: String,
    key: Option<Secret>,
    timeout: Duration,
}

impl OpenAi {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        Ok(OpenAi {
            client: http::client(settings.timeout)?,
            url: format!("{}/chat/completions", settings.base_url),
            base_url: settings.base_url.clone(),
            key: settings.required_key()?,
            timeout: settings.timeout,
        })
    }
}

impl Provider for OpenAi {
    fn identity(&self) -> String {
        format!("openai {}", self.base_url)
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        _sample: u32,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async move {
            let mut headers = HeaderMap::new();
            if let Some(key) = &self.key {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| {
                        ProviderError::Unavailable("the API key is not a valid header".into())
                    })?;
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
            let body = body(request);
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

/// The request body, as the Chat Completions API takes it.
pub fn body(request: &ChatRequest) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert(
        "messages".into(),
        request.messages.iter().map(message).collect(),
    );
    let p = &request.params;
    let params = [
        ("temperature", p.temperature.map(|v| json!(v))),
        ("max_tokens", p.max_tokens.map(|v| json!(v))),
        (
            "max_completion_tokens",
            p.max_completion_tokens.map(|v| json!(v)),
        ),
        ("top_p", p.top_p.map(|v| json!(v))),
        ("seed", p.seed.map(|v| json!(v))),
        ("stop", p.stop.as_ref().map(|v| json!(v))),
        ("presence_penalty", p.presence_penalty.map(|v| json!(v))),
        ("frequency_penalty", p.frequency_penalty.map(|v| json!(v))),
    ];
    for (name, value) in params {
        if let Some(value) = value {
            body.insert(name.into(), value);
        }
    }
    match &request.format {
        Format::Text => {}
        Format::JsonObject => {
            body.insert("response_format".into(), json!({"type": "json_object"}));
        }
        Format::JsonSchema {
            name,
            strict,
            schema,
        } => {
            let mut spec = json!({"name": name, "schema": schema});
            if let Some(strict) = strict {
                spec["strict"] = json!(strict);
            }
            body.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": spec}),
            );
        }
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|f| {
                let mut function = json!({"name": f.name, "parameters": f.parameters});
                if let Some(d) = &f.description {
                    function["description"] = json!(d);
                }
                json!({"type": "function", "function": function})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    Value::Object(body)
}

fn message(turn: &Turn) -> Value {
    match turn {
        Turn::System { content } => json!({"role": "system", "content": content}),
        Turn::User { content } => json!({"role": "user", "content": content}),
        Turn::Assistant { content, calls } if calls.is_empty() => {
            json!({"role": "assistant", "content": content})
        }
        Turn::Assistant { content, calls } => {
            let calls: Vec<Value> = calls
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": json_string(&c.arguments)},
                    })
                })
                .collect();
            let content = if content.is_empty() {
                Value::Null
            } else {
                json!(content)
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
        Turn::Tool {
            call_id, content, ..
        } => json!({"role": "tool", "tool_call_id": call_id, "content": content}),
    }
}

/// The answer, from a Chat Completions response.
pub fn parse(answer: &Value) -> Result<Completion, ProviderError> {
    let choice = answer
        .pointer("/choices/0")
        .ok_or_else(|| ProviderError::Malformed("no `choices[0]` in the answer".into()))?;
    let message = choice
        .get("message")
        .ok_or_else(|| ProviderError::Malformed("no `choices[0].message` in the answer".into()))?;
    let text = match message.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        // Content given as parts: keep the text ones.
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        Some(other) => {
            return Err(ProviderError::Malformed(format!(
                "`message.content` is {other}, not text"
            )));
        }
    };
    // A refusal in its own field is the answer: its text, marked.
    match message.get("refusal") {
        None | Some(Value::Null) => {}
        Some(Value::String(refusal)) => {
            return Ok(Completion {
                text: refused(refusal),
                calls: Vec::new(),
                refusal: true,
                usage: http::usage(answer, "prompt_tokens", "completion_tokens"),
                finish_reason: finish_reason(choice),
                latency_ms: None,
            });
        }
        Some(other) => {
            return Err(ProviderError::Malformed(format!(
                "`message.refusal` is {other}, not text"
            )));
        }
    }
    let calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let name = c
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            ProviderError::Malformed(format!("tool call {i} has no function name"))
                        })?;
                    let arguments = match c.pointer("/function/arguments") {
                        Some(Value::String(raw)) => http::arguments(raw),
                        Some(v) => v.clone(),
                        None => json!({}),
                    };
                    Ok(Call {
                        id: c
                            .get("id")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("call_{i}")),
                        name: name.to_string(),
                        arguments,
                    })
                })
                .collect::<Result<Vec<_>, ProviderError>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(Completion {
        text,
        calls,
        refusal: false,
        usage: http::usage(answer, "prompt_tokens", "completion_tokens"),
        finish_reason: finish_reason(choice),
        latency_ms: None,
    })
}

fn finish_reason(choice: &Value) -> Option<String> {
    choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::provider::Usage;
    use crate::eval::request::{Function, Params};

    fn request() -> ChatRequest {
        ChatRequest {
            model: "gpt-4o-mini".into(),
            params: Params {
                temperature: Some(0.2),
                max_tokens: Some(400),
                seed: Some(7),
                ..Params::default()
            },
            format: Format::JsonSchema {
                name: "refund".into(),
                strict: Some(true),
                schema: json!({"type": "object"}),
            },
            messages: vec![
                Turn::System {
                    content: "be brief".into(),
                },
                Turn::User {
                    content: "refund?".into(),
                },
                Turn::Assistant {
                    content: String::new(),
                    calls: vec![Call {
                        id: "call_1".into(),
                        name: "lookup_order".into(),
                        arguments: json!({"id": 42}),
                    }],
                },
                Turn::Tool {
                    call_id: "call_1".into(),
                    name: "lookup_order".into(),
                    content: r#"{"status":"delivered"}"#.into(),
                    is_error: false,
                },
            ],
            tools: vec![Function {
                name: "lookup_order".into(),
                description: Some("Find an order".into()),
                parameters: json!({"type": "object", "properties": {"id": {"type": "integer"}}}),
            }],
        }
    }

    #[test]
    fn body_is_what_the_chat_completions_api_takes() {
        assert_eq!(
            body(&request()),
            json!({
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "refund?"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function",
                         "function": {"name": "lookup_order", "arguments": "{\"id\":42}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "{\"status\":\"delivered\"}"}
                ],
                "temperature": 0.2,
                "max_tokens": 400,
                "seed": 7,
                "response_format": {"type": "json_schema",
                    "json_schema": {"name": "refund", "schema": {"type": "object"}, "strict": true}},
                "tools": [{"type": "function", "function": {
                    "name": "lookup_order", "description": "Find an order",
                    "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}}}}]
            })
        );
    }

    #[test]
    fn parses_text_tool_calls_and_usage() {
        let answer = json!({
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{"id": "c9", "type": "function",
                    "function": {"name": "lookup_order", "arguments": "{\"id\": 42}"}},
                    {"id": "c10", "type": "function",
                    "function": {"name": "broken", "arguments": "{not json"}}]}}],
            "usage": {"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40}
        });
        let c = parse(&answer).expect("parses");
        assert_eq!(c.text, "");
        assert_eq!(c.calls[0].arguments, json!({"id": 42}));
        assert_eq!(c.calls[1].arguments, json!("{not json"));
        assert_eq!(
            c.usage,
            Some(Usage {
                input: 31,
                output: 9
            })
        );
        assert_eq!(c.finish_reason.as_deref(), Some("tool_calls"));
        let no_usage = json!({"choices": [{"message": {"content": "hi"}}]});
        assert_eq!(parse(&no_usage).map(|c| c.usage), Ok(None));
        assert!(matches!(
            parse(&json!({"choices": []})),
            Err(ProviderError::Malformed(_))
        ));
    }

    #[test]
    fn nothing_is_no_answer_and_a_refusal_is_one() {
        let message = |m: Value| json!({"choices": [{"finish_reason": "stop", "message": m}]});
        for nothing in [
            json!({"role": "assistant", "content": null}),
            json!({"role": "assistant", "content": ""}),
            json!({"role": "assistant", "content": [], "refusal": null}),
        ] {
            let c = parse(&message(nothing.clone())).expect("parses");
            assert!(!c.is_answer(), "{nothing}");
        }
        let c = parse(&message(json!({"role": "assistant", "content": null,
            "refusal": "I can't help with that."})))
        .expect("parses");
        assert_eq!(
            (c.text.as_str(), c.refusal, c.is_answer()),
            ("I can't help with that.", true, true)
        );
        let c = parse(&message(
            json!({"role": "assistant", "content": null, "refusal": ""}),
        ))
        .expect("parses");
        assert_eq!(
            (c.text.as_str(), c.refusal),
            (crate::eval::provider::REFUSED_WITHOUT_TEXT, true)
        );
        assert!(matches!(
            parse(&message(json!({"content": null, "refusal": 7}))),
            Err(ProviderError::Malformed(_))
        ));
    }
}
