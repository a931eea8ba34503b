//! OpenAI Chat Completions: request validation and the shapes of responses and
//! errors.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::conversation::{Answer, Conversation, Invalid, Usage, content_text};

const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

pub(crate) fn parse(body: &Value) -> Result<Conversation, Invalid> {
    if !body.is_object() {
        return Err(Invalid::new(
            "We could not parse the JSON body of your request.",
        ));
    }
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return Err(Invalid::new("you must provide a model parameter"));
    };
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Err(Invalid::new("Missing required parameter: 'messages'.")
            .param("messages")
            .code("missing_required_parameter"));
    };
    if messages.is_empty() {
        return Err(Invalid::new("[] is too short - 'messages'").param("messages"));
    }

    let mut conversation = Conversation {
        model: model.to_owned(),
        ..Conversation::default()
    };
    let mut call_ids = HashSet::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !ROLES.contains(&role) {
            return Err(Invalid::new(format!(
                "Invalid value: '{role}'. Supported values are: {}.",
                ROLES.map(|r| format!("'{r}'")).join(", ")
            ))
            .param(format!("messages[{i}].role"))
            .code("invalid_value"));
        }
        let text = content_text(message.get("content"));
        match role {
            "user" => conversation.last_user_text.clone_from(&text),
            "assistant" => {
                let calls = message.get("tool_calls").and_then(Value::as_array);
                let ids = calls
                    .into_iter()
                    .flatten()
                    .filter_map(|call| call.get("id")?.as_str());
                call_ids.extend(ids);
            }
            "tool" => {
                let id = message
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !call_ids.contains(id) {
                    return Err(Invalid::new(
                        "Invalid parameter: messages with role 'tool' must be a response to a \
                         preceeding message with 'tool_calls'.",
                    )
                    .param(format!("messages.[{i}].role")));
                }
            }
            _ => {}
        }
        conversation.texts.push(text);
    }
    conversation.ends_with_tool_result = messages
        .last()
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        == Some("tool");

    if let Some(tools) = body.get("tools").and_then(Value::as_array) {
        for (i, tool) in tools.iter().enumerate() {
            if tool
                .pointer("/function/name")
                .and_then(Value::as_str)
                .is_none()
            {
                let param = format!("tools[{i}].function.name");
                return Err(
                    Invalid::new(format!("Missing required parameter: '{param}'."))
                        .param(param)
                        .code("missing_required_parameter"),
                );
            }
        }
        if !tools.is_empty() {
            conversation.tools = Some(Value::Array(tools.clone()));
        }
    }
    Ok(conversation)
}

pub(crate) fn response(
    seq: u64,
    created: u64,
    model: &str,
    answer: &Answer,
    usage: Option<&Usage>,
) -> Value {
    let (message, finish_reason) = match answer {
        Answer::Text(text) => (
            json!({"role": "assistant", "content": text, "refusal": null}),
            "stop",
        ),
        Answer::Nothing => (
            json!({"role": "assistant", "content": null, "refusal": null}),
            "stop",
        ),
        Answer::Refusal(text) => (
            json!({"role": "assistant", "content": null, "refusal": text.as_deref().unwrap_or("")}),
            "stop",
        ),
        Answer::Parts(parts) => {
            let parts: Vec<Value> = parts
                .iter()
                .map(|text| json!({"type": "text", "text": text}))
                .collect();
            (
                json!({"role": "assistant", "content": parts, "refusal": null}),
                "stop",
            )
        }
        Answer::ToolCalls(calls) => {
            let calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(i, (name, arguments))| {
                    json!({
                        "id": format!("call_stub_{seq}_{i}"),
                        "type": "function",
                        "function": {"name": name, "arguments": arguments.to_string()},
                    })
                })
                .collect();
            let message =
                json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": calls});
            (message, "tool_calls")
        }
    };
    let mut response = json!({
        "id": format!("chatcmpl-stub-{seq}"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
    });
    if let Some(usage) = usage {
        response["usage"] = json!({
            "prompt_tokens": usage.input,
            "completion_tokens": usage.output,
            "total_tokens": usage.input + usage.output,
        });
    }
    response
}

pub(crate) fn invalid(invalid: &Invalid) -> Value {
    json!({"error": {
        "message": invalid.message,
        "type": "invalid_request_error",
        "param": invalid.param,
        "code": invalid.code,
    }})
}

/// The error body OpenAI sends with `status`.
pub(crate) fn error(status: u16, message: &str) -> Value {
    let (kind, code) = match status {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        429 => ("requests", Some("rate_limit_exceeded")),
        400..=499 => ("invalid_request_error", None),
        _ => ("server_error", None),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

pub(crate) fn models() -> Value {
    json!({
        "object": "list",
        "data": [{"id": "stub", "object": "model", "created": 0, "owned_by": "promptgate"}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_tool_round_trip() {
        let body = json!({
            "model": "gpt-x",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            ],
            "tools": [{"type": "function", "function": {"name": "w", "parameters": {}}}],
        });
        let conversation = parse(&body).expect("valid");
        assert_eq!(conversation.model, "gpt-x");
        assert_eq!(conversation.texts, ["be brief", "weather?", "", "sunny"]);
        assert_eq!(conversation.last_user_text, "weather?");
        assert!(conversation.ends_with_tool_result);
        assert!(conversation.tools.is_some());
    }

    #[test]
    fn rejects_what_openai_rejects() {
        let missing_model = json!({"messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(
            parse(&missing_model).map(|_| ()),
            Err(Invalid::new("you must provide a model parameter"))
        );

        let missing_messages = parse(&json!({"model": "m"}))
            .map(|_| ())
            .expect_err("invalid");
        assert_eq!(missing_messages.param.as_deref(), Some("messages"));

        let orphan = json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "tool", "tool_call_id": "call_9", "content": "x"},
        ]});
        let orphan = parse(&orphan).map(|_| ()).expect_err("invalid");
        assert_eq!(orphan.param.as_deref(), Some("messages.[1].role"));

        assert!(parse(&Value::Null).is_err());
    }

    #[test]
    fn tool_call_arguments_are_a_json_string() {
        let answer = Answer::ToolCalls(vec![("w".into(), json!({"city": "Paris"}))]);
        let response = response(7, 0, "m", &answer, None);
        let call = &response["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["id"], "call_stub_7_0");
        assert_eq!(call["function"]["arguments"], r#"{"city":"Paris"}"#);
        assert_eq!(response["choices"][0]["finish_reason"], "tool_calls");
        assert!(response.get("usage").is_none());
    }

    #[test]
    fn nothing_and_refusals_as_openai_sends_them() {
        let message =
            |answer: &Answer| response(1, 0, "m", answer, None)["choices"][0]["message"].clone();
        assert_eq!(
            message(&Answer::Nothing),
            json!({"role": "assistant", "content": null, "refusal": null})
        );
        assert_eq!(
            message(&Answer::Refusal(Some("I can't help with that.".into()))),
            json!({"role": "assistant", "content": null, "refusal": "I can't help with that."})
        );
        assert_eq!(message(&Answer::Refusal(None))["refusal"], "");
    }
}
