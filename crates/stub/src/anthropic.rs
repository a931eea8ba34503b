//! Anthropic Messages: request validation and the shapes of responses and
//! errors.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::conversation::{Answer, Conversation, Invalid, Usage, content_text};

pub(crate) fn parse(body: &Value) -> Result<Conversation, Invalid> {
    if !body.is_object() {
        return Err(Invalid::new(
            "There was an issue with your request body: not valid JSON",
        ));
    }
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return Err(Invalid::new("model: Field required"));
    };
    if body.get("max_tokens").and_then(Value::as_u64).is_none() {
        return Err(Invalid::new("max_tokens: Field required"));
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Err(Invalid::new("messages: Field required"));
    };

    let mut conversation = Conversation {
        model: model.to_owned(),
        ..Conversation::default()
    };
    if let Some(system) = body.get("system") {
        conversation.texts.push(content_text(Some(system)));
    }
    let mut tool_use_ids = HashSet::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if role != "user" && role != "assistant" {
            return Err(Invalid::new(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            )));
        }
        let content = message.get("content");
        let blocks = content
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let mut has_tool_result = false;
        for (j, block) in blocks.iter().enumerate() {
            match block.get("type").and_then(Value::as_str) {
                Some("tool_use") => {
                    tool_use_ids.extend(block.get("id").and_then(Value::as_str));
                }
                Some("tool_result") => {
                    let id = block
                        .get("tool_use_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if !tool_use_ids.contains(id) {
                        return Err(Invalid::new(format!(
                            "messages.{i}.content.{j}: unexpected `tool_use_id` found in \
                             `tool_result` blocks: {id}. Each `tool_result` block must have a \
                             corresponding `tool_use` block in the previous message."
                        )));
                    }
                    has_tool_result = true;
                    conversation.texts.push(content_text(block.get("content")));
                }
                _ => {}
            }
        }
        let text = content_text(content);
        let says_something = content.is_some_and(Value::is_string)
            || blocks
                .iter()
                .any(|b| b.get("type").and_then(Value::as_str) == Some("text"));
        if role == "user" && says_something {
            conversation.last_user_text.clone_from(&text);
        }
        conversation.texts.push(text);
        conversation.ends_with_tool_result = role == "user" && has_tool_result;
    }

    if let Some(tools) = body.get("tools").and_then(Value::as_array) {
        for (i, tool) in tools.iter().enumerate() {
            if tool.get("name").and_then(Value::as_str).is_none() {
                return Err(Invalid::new(format!("tools.{i}.name: Field required")));
            }
        }
        if !tools.is_empty() {
            conversation.tools = Some(Value::Array(tools.clone()));
        }
    }
    Ok(conversation)
}

pub(crate) fn response(seq: u64, model: &str, answer: &Answer, usage: Option<&Usage>) -> Value {
    let (content, stop_reason) = match answer {
        Answer::Text(text) => (vec![json!({"type": "text", "text": text})], "end_turn"),
        Answer::Nothing => (Vec::new(), "end_turn"),
        Answer::Refusal(_) => (Vec::new(), "refusal"),
        Answer::Parts(parts) => (
            parts
                .iter()
                .map(|text| json!({"type": "text", "text": text}))
                .collect(),
            "end_turn",
        ),
        Answer::ToolCalls(calls) => {
            let blocks = calls
                .iter()
                .enumerate()
                .map(|(i, (name, input))| {
                    json!({"type": "tool_use", "id": format!("toolu_stub_{seq}_{i}"), "name": name, "input": input})
                })
                .collect();
            (blocks, "tool_use")
        }
    };
    let mut response = json!({
        "id": format!("msg_stub_{seq}"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
    });
    if let Answer::Refusal(Some(explanation)) = answer {
        response["stop_details"] =
            json!({"type": "refusal", "category": null, "explanation": explanation});
    }
    if let Some(usage) = usage {
        response["usage"] = json!({"input_tokens": usage.input, "output_tokens": usage.output});
    }
    response
}

/// The error body Anthropic sends with `status`.
pub(crate) fn error(status: u16, message: &str) -> Value {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_tool_round_trip() {
        let body = json!({
            "model": "claude-x",
            "max_tokens": 100,
            "system": [{"type": "text", "text": "be brief"}],
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "checking"},
                    {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny", "is_error": false},
                ]},
            ],
            "tools": [{"name": "w", "description": "Weather", "input_schema": {"type": "object"}}],
        });
        let conversation = parse(&body).expect("valid");
        assert_eq!(
            conversation.texts,
            ["be brief", "weather?", "checking", "sunny", ""]
        );
        assert_eq!(conversation.last_user_text, "weather?");
        assert!(conversation.ends_with_tool_result);
        assert!(conversation.tools.is_some());
    }

    #[test]
    fn rejects_what_anthropic_rejects() {
        let user = json!([{"role": "user", "content": "hi"}]);
        let no_max_tokens = json!({"model": "m", "messages": user});
        assert_eq!(
            parse(&no_max_tokens).map(|_| ()),
            Err(Invalid::new("max_tokens: Field required"))
        );

        let orphan = json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]},
        ]});
        assert!(parse(&orphan).is_err());
    }

    #[test]
    fn nothing_and_refusals_as_anthropic_sends_them() {
        let nothing = response(1, "m", &Answer::Nothing, None);
        assert_eq!(
            (&nothing["content"], &nothing["stop_reason"]),
            (&json!([]), &json!("end_turn"))
        );
        let refused = response(2, "m", &Answer::Refusal(Some("Declined.".into())), None);
        assert_eq!(refused["stop_reason"], "refusal");
        assert_eq!(refused["stop_details"]["explanation"], "Declined.");
        let bare = response(3, "m", &Answer::Refusal(None), None);
        assert_eq!(bare["stop_reason"], "refusal");
        assert!(bare.get("stop_details").is_none());
    }
}
