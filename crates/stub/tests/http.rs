//! The stub over real HTTP, driven by reqwest as a provider client would.

use std::time::{Duration, Instant};

use promptgate_stub::{Fault, KeyEcho, Match, Reply, Rule, Stub, StubConfig, UsageMode};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn stub(config: StubConfig) -> Stub {
    Stub::start(config).await.expect("stub starts")
}

fn chat(content: &str) -> Value {
    json!({
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": content},
        ],
        "temperature": 0,
        "max_completion_tokens": 64,
        "seed": 7,
        "response_format": {"type": "text"},
    })
}

fn messages(content: &str) -> Value {
    json!({
        "model": "claude-test",
        "max_tokens": 64,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": content}],
    })
}

async fn post_chat(stub: &Stub, body: &Value) -> reqwest::Response {
    new_client()
        .post(format!("{}/chat/completions", stub.base_url()))
        .json(body)
        .send()
        .await
        .expect("response")
}

async fn post_messages(stub: &Stub, body: &Value) -> reqwest::Response {
    new_client()
        .post(format!("{}/messages", stub.base_url()))
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .expect("response")
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

#[tokio::test]
async fn chat_completion_round_trip() {
    let stub = stub(StubConfig::default()).await;
    let response = post_chat(&stub, &chat("what is two plus two")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = json_of(response).await;

    assert!(body["id"].as_str().expect("id").starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_u64().expect("created") > 1_600_000_000);
    assert_eq!(body["model"], "gpt-test");
    let choices = body["choices"].as_array().expect("choices");
    assert_eq!(choices.len(), 1);
    assert_eq!(choices[0]["index"], 0);
    assert_eq!(choices[0]["finish_reason"], "stop");
    let message = &choices[0]["message"];
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"], "what is two plus two");
    assert!(message.get("tool_calls").is_none());
    // 3 system words + 5 user words in; the 5 echoed words out.
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 8, "completion_tokens": 5, "total_tokens": 13})
    );
}

#[tokio::test]
async fn text_parts_and_rules() {
    let config = StubConfig {
        rules: vec![Rule {
            when: Match {
                contains: Some("capital".into()),
                after_tool_result: None,
            },
            reply: Reply::Text("Paris".into()),
            fault: None,
        }],
        default_reply: Reply::Text("no idea".into()),
        ..StubConfig::default()
    };
    let stub = stub(config).await;
    let parts = json!({"model": "m", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "the capital of France?"}]},
    ]});
    let body = json_of(post_chat(&stub, &parts).await).await;
    assert_eq!(body["choices"][0]["message"]["content"], "Paris");
    let body = json_of(post_chat(&stub, &chat("hello")).await).await;
    assert_eq!(body["choices"][0]["message"]["content"], "no idea");
}

#[tokio::test]
async fn tool_calls_then_tool_result_follow_up() {
    let config = StubConfig {
        rules: vec![
            Rule {
                when: Match {
                    contains: None,
                    after_tool_result: Some(true),
                },
                reply: Reply::Text("It is sunny in Paris.".into()),
                fault: None,
            },
            Rule {
                when: Match {
                    contains: None,
                    after_tool_result: Some(false),
                },
                reply: Reply::ToolCalls(vec![("get_weather".into(), json!({"city": "Paris"}))]),
                fault: None,
            },
        ],
        ..StubConfig::default()
    };
    let stub = stub(config).await;
    let tools = json!([{"type": "function", "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }}]);
    let mut request = chat("weather in Paris?");
    request["tools"] = tools;
    request["tool_choice"] = json!("auto");

    let first = json_of(post_chat(&stub, &request).await).await;
    let choice = &first["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments = call["function"]["arguments"]
        .as_str()
        .expect("arguments are a string");
    assert_eq!(
        serde_json::from_str::<Value>(arguments).expect("JSON"),
        json!({"city": "Paris"})
    );

    let messages = request["messages"].as_array_mut().expect("messages");
    messages.push(choice["message"].clone());
    messages.push(json!({"role": "tool", "tool_call_id": call["id"], "content": "sunny, 24C"}));
    let second = json_of(post_chat(&stub, &request).await).await;
    assert_eq!(second["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        second["choices"][0]["message"]["content"],
        "It is sunny in Paris."
    );

    // Without tools in the request, a tool-call reply falls back to text.
    let plain = json_of(post_chat(&stub, &chat("weather in Paris?")).await).await;
    assert_eq!(
        plain["choices"][0]["message"]["content"],
        "weather in Paris?"
    );
}

#[tokio::test]
async fn chat_rejects_invalid_requests() {
    let stub = stub(StubConfig::default()).await;
    let cases = [
        (
            json!({"messages": [{"role": "user", "content": "hi"}]}),
            Value::Null,
        ),
        (json!({"model": "m"}), json!("messages")),
        (
            json!({"model": "m", "messages": [
                {"role": "user", "content": "hi"},
                {"role": "tool", "tool_call_id": "call_unknown", "content": "x"},
            ]}),
            json!("messages.[1].role"),
        ),
    ];
    for (body, param) in cases {
        let response = post_chat(&stub, &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error = &json_of(response).await["error"];
        assert_eq!(error["type"], "invalid_request_error");
        assert_eq!(error["param"], param);
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(error.get("code").is_some());
    }
}

#[tokio::test]
async fn anthropic_round_trip_with_tool_use() {
    let config = StubConfig {
        rules: vec![
            Rule {
                when: Match {
                    contains: None,
                    after_tool_result: Some(true),
                },
                reply: Reply::Text("Sunny.".into()),
                fault: None,
            },
            Rule {
                when: Match {
                    contains: Some("weather".into()),
                    after_tool_result: None,
                },
                reply: Reply::ToolCalls(vec![("get_weather".into(), json!({"city": "Paris"}))]),
                fault: None,
            },
        ],
        ..StubConfig::default()
    };
    let stub = stub(config).await;

    let plain = post_messages(&stub, &messages("hello there")).await;
    assert_eq!(plain.status(), StatusCode::OK);
    let plain = json_of(plain).await;
    assert!(plain["id"].as_str().expect("id").starts_with("msg_"));
    assert_eq!(plain["type"], "message");
    assert_eq!(plain["role"], "assistant");
    assert_eq!(plain["model"], "claude-test");
    assert_eq!(
        plain["content"],
        json!([{"type": "text", "text": "hello there"}])
    );
    assert_eq!(plain["stop_reason"], "end_turn");
    assert_eq!(
        plain["usage"],
        json!({"input_tokens": 5, "output_tokens": 2})
    );

    let mut request = messages("weather in Paris?");
    request["tools"] = json!([{
        "name": "get_weather",
        "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }]);
    let first = json_of(post_messages(&stub, &request).await).await;
    assert_eq!(first["stop_reason"], "tool_use");
    let tool_use = &first["content"][0];
    assert_eq!(tool_use["type"], "tool_use");
    assert_eq!(tool_use["name"], "get_weather");
    assert_eq!(tool_use["input"], json!({"city": "Paris"}));
    let id = tool_use["id"].as_str().expect("tool_use id");

    let conversation = request["messages"].as_array_mut().expect("messages");
    conversation.push(json!({"role": "assistant", "content": first["content"]}));
    conversation.push(json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": id, "content": [{"type": "text", "text": "sunny"}], "is_error": false},
    ]}));
    let second = json_of(post_messages(&stub, &request).await).await;
    assert_eq!(second["stop_reason"], "end_turn");
    assert_eq!(second["content"][0]["text"], "Sunny.");
}

#[tokio::test]
async fn anthropic_rejects_invalid_requests() {
    let stub = stub(StubConfig::default()).await;
    let no_version = new_client()
        .post(format!("{}/messages", stub.base_url()))
        .json(&messages("hi"))
        .send()
        .await
        .expect("response");
    assert_eq!(no_version.status(), StatusCode::BAD_REQUEST);
    let body = json_of(no_version).await;
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let mut no_max_tokens = messages("hi");
    no_max_tokens
        .as_object_mut()
        .expect("object")
        .remove("max_tokens");
    let response = post_messages(&stub, &no_max_tokens).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json_of(response).await["error"]["message"],
        "max_tokens: Field required"
    );
}

#[tokio::test]
async fn models_and_health() {
    let stub = stub(StubConfig::default()).await;
    let health = reqwest::get(stub.base_url().replace("/v1", "/health"))
        .await
        .expect("response");
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.expect("text"), "ok");
    let models = json_of(
        reqwest::get(format!("{}/models", stub.base_url()))
            .await
            .expect("response"),
    )
    .await;
    assert_eq!(models["data"][0]["id"], "stub");
    let missing = reqwest::get(format!("{}/nothing", stub.base_url()))
        .await
        .expect("response");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let stub = stub(StubConfig::default()).await;
    let date = "Wed, 21 Oct 2015 07:28:00 GMT";
    stub.push_faults([
        Fault::TooManyRequests {
            retry_after: Some("2".into()),
        },
        Fault::TooManyRequests {
            retry_after: Some(date.into()),
        },
        Fault::TooManyRequests { retry_after: None },
    ]);
    let response = post_chat(&stub, &chat("hi")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(
        json_of(response).await["error"]["code"],
        "rate_limit_exceeded"
    );

    let response = post_messages(&stub, &messages("hi")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], date);
    assert_eq!(json_of(response).await["error"]["type"], "rate_limit_error");

    let response = post_chat(&stub, &chat("hi")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn server_errors_in_each_providers_shape() {
    let stub = stub(StubConfig::default()).await;
    stub.push_faults([Fault::Status(503), Fault::Status(529), Fault::Status(500)]);
    let response = post_chat(&stub, &chat("hi")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_of(response).await["error"]["type"], "server_error");
    let response = post_messages(&stub, &messages("hi")).await;
    assert_eq!(response.status().as_u16(), 529);
    assert_eq!(json_of(response).await["error"]["type"], "overloaded_error");
    let response = post_messages(&stub, &messages("hi")).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(json_of(response).await["error"]["type"], "api_error");
}

#[tokio::test]
async fn malformed_json_is_not_json() {
    let stub = stub(StubConfig::default()).await;
    stub.push_faults([Fault::MalformedJson]);
    let response = post_chat(&stub, &chat("hi")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.json::<Value>().await.is_err());
}

#[tokio::test]
async fn truncated_json_fails_while_reading_the_body() {
    let stub = stub(StubConfig::default()).await;
    stub.push_faults([Fault::TruncatedJson]);
    let response = post_chat(&stub, &chat("hi")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let error = response.bytes().await.expect_err("body is cut short");
    assert!(error.is_body() || error.is_decode(), "{error:?}");
}

#[tokio::test]
async fn dropped_connection_is_a_connection_error() {
    let stub = stub(StubConfig::default()).await;
    stub.push_faults([Fault::DropConnection]);
    let error = new_client()
        .post(format!("{}/chat/completions", stub.base_url()))
        .json(&chat("hi"))
        .send()
        .await
        .expect_err("no response");
    assert!(error.is_request(), "{error:?}");
    assert_eq!(
        stub.requests().len(),
        1,
        "the client does not retry by itself"
    );
}

#[tokio::test]
async fn hang_runs_into_the_client_timeout() {
    let stub = stub(StubConfig::default()).await;
    stub.push_faults([Fault::Hang]);
    let error = new_client()
        .post(format!("{}/chat/completions", stub.base_url()))
        .timeout(Duration::from_millis(200))
        .json(&chat("hi"))
        .send()
        .await
        .expect_err("no response");
    assert!(error.is_timeout(), "{error:?}");
    // The stub still serves other requests.
    assert_eq!(post_chat(&stub, &chat("hi")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn slow_body_arrives_whole() {
    let stub = stub(StubConfig::default()).await;
    let delay = Duration::from_millis(5);
    stub.push_faults([Fault::SlowBody { chunk_delay: delay }]);
    let started = Instant::now();
    let response = post_chat(&stub, &chat("slowly please")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.bytes().await.expect("whole body");
    let elapsed = started.elapsed();
    let body: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(body["choices"][0]["message"]["content"], "slowly please");
    // 16-byte chunks with a delay between each pair.
    let pauses = u32::try_from(bytes.len().div_ceil(16) - 1).expect("small");
    assert!(elapsed >= delay * pauses, "{elapsed:?} for {pauses} pauses");
}

#[tokio::test]
async fn echo_key_401_leaks_the_key() {
    let stub = stub(StubConfig::default()).await;
    stub.push_faults([Fault::EchoKey401, Fault::EchoKey401]);
    let response = new_client()
        .post(format!("{}/chat/completions", stub.base_url()))
        .bearer_auth("sk-very-secret-123")
        .json(&chat("hi"))
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response
            .text()
            .await
            .expect("text")
            .contains("sk-very-secret-123")
    );

    let response = new_client()
        .post(format!("{}/messages", stub.base_url()))
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", "sk-ant-secret-456")
        .json(&messages("hi"))
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = json_of(response).await;
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("sk-ant-secret-456")
    );
}

#[tokio::test]
async fn echo_key_puts_the_key_in_the_answer_in_both_apis() {
    const KEY: &str = "sk-echo-secret-789";
    let rule = |marker: &str, how| Rule {
        when: Match {
            contains: Some(marker.into()),
            after_tool_result: None,
        },
        reply: Reply::EchoKey(how),
        fault: None,
    };
    let stub = stub(StubConfig {
        rules: vec![
            rule("TEXT", KeyEcho::Text),
            rule("SPLIT", KeyEcho::Split),
            rule("ESCAPED", KeyEcho::Escaped),
            rule("TOOL", KeyEcho::ToolArguments),
        ],
        ..StubConfig::default()
    })
    .await;
    let client = new_client();
    let tools = json!([{"type": "function", "function": {"name": "echo_key", "parameters": {}}}]);
    // OpenAI: (status, raw body) of a request saying `marker`.
    let openai = |marker: &str, with_tools: bool| {
        let mut body = chat(marker);
        if with_tools {
            body["tools"] = tools.clone();
        }
        client
            .post(format!("{}/chat/completions", stub.base_url()))
            .bearer_auth(KEY)
            .json(&body)
            .send()
    };
    let raw = |r: reqwest::Response| async move { r.text().await.expect("text") };
    let parsed = |text: &str| serde_json::from_str::<Value>(text).expect("JSON");

    let text = raw(openai("TEXT", false).await.expect("response")).await;
    assert_eq!(
        parsed(&text)["choices"][0]["message"]["content"],
        format!("Your key is {KEY}.")
    );
    let text = raw(openai("SPLIT", false).await.expect("response")).await;
    let parts = &parsed(&text)["choices"][0]["message"]["content"];
    assert_eq!(
        parts,
        &json!([{"type": "text", "text": "Your key is sk-echo-s"}, {"type": "text", "text": "ecret-789."}])
    );
    // Escaped: the same JSON string, not the same bytes.
    let text = raw(openai("ESCAPED", false).await.expect("response")).await;
    assert!(
        !text.contains(KEY) && text.contains(r"\u0073\u006b\u002d"),
        "{text}"
    );
    assert_eq!(
        parsed(&text)["choices"][0]["message"]["content"],
        format!("Your key is {KEY}.")
    );
    let text = raw(openai("TOOL", true).await.expect("response")).await;
    let call = &parsed(&text)["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "echo_key");
    assert_eq!(call["arguments"], json!({"api_key": KEY}).to_string());

    // Anthropic: text blocks, and a tool_use block's input.
    let anthropic = |marker: &str, with_tools: bool| {
        let mut body = messages(marker);
        if with_tools {
            body["tools"] = json!([{"name": "echo_key", "input_schema": {"type": "object"}}]);
        }
        client
            .post(format!("{}/messages", stub.base_url()))
            .header("anthropic-version", "2023-06-01")
            .header("x-api-key", KEY)
            .json(&body)
            .send()
    };
    let body = parsed(&raw(anthropic("SPLIT", false).await.expect("response")).await);
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "Your key is sk-echo-s"}, {"type": "text", "text": "ecret-789."}])
    );
    let body = parsed(&raw(anthropic("TOOL", true).await.expect("response")).await);
    assert_eq!(body["content"][0]["input"], json!({"api_key": KEY}));
    // Without tools, or without a key, the echo text.
    let body = parsed(&raw(anthropic("TOOL", false).await.expect("response")).await);
    assert_eq!(body["content"][0]["text"], "TOOL");
    let keyless = client
        .post(format!("{}/chat/completions", stub.base_url()))
        .json(&chat("TEXT"))
        .send()
        .await
        .expect("response");
    assert_eq!(
        json_of(keyless).await["choices"][0]["message"]["content"],
        "TEXT"
    );
}

#[tokio::test]
async fn api_key_is_enforced() {
    let stub = stub(StubConfig {
        api_key: Some("sk-good".into()),
        ..StubConfig::default()
    })
    .await;
    let client = new_client();
    let url = format!("{}/chat/completions", stub.base_url());
    for key in [None, Some("sk-bad")] {
        let mut request = client.post(&url).json(&chat("hi"));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.expect("response");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body = response.text().await.expect("text");
        assert!(
            body.contains("invalid_api_key") && !body.contains("sk-good"),
            "{body}"
        );
    }
    let ok = client
        .post(&url)
        .bearer_auth("sk-good")
        .json(&chat("hi"))
        .send()
        .await
        .expect("response");
    assert_eq!(ok.status(), StatusCode::OK);

    let url = format!("{}/messages", stub.base_url());
    let anthropic = |key: &str| {
        client
            .post(&url)
            .header("anthropic-version", "2023-06-01")
            .header("x-api-key", key)
            .json(&messages("hi"))
            .send()
    };
    assert_eq!(
        anthropic("sk-bad").await.expect("response").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        anthropic("sk-good").await.expect("response").status(),
        StatusCode::OK
    );
    // The OpenAI header does not authenticate an Anthropic request.
    let wrong_header = client
        .post(&url)
        .header("anthropic-version", "2023-06-01")
        .bearer_auth("sk-good")
        .json(&messages("hi"))
        .send()
        .await
        .expect("response");
    assert_eq!(wrong_header.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn usage_modes() {
    let fixed = stub(StubConfig {
        usage: UsageMode::Fixed {
            input: 11,
            output: 22,
        },
        ..StubConfig::default()
    })
    .await;
    let body = json_of(post_chat(&fixed, &chat("hi")).await).await;
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33})
    );
    let body = json_of(post_messages(&fixed, &messages("hi")).await).await;
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 11, "output_tokens": 22})
    );

    let omitted = stub(StubConfig {
        usage: UsageMode::Omitted,
        ..StubConfig::default()
    })
    .await;
    assert!(
        json_of(post_chat(&omitted, &chat("hi")).await)
            .await
            .get("usage")
            .is_none()
    );
    assert!(
        json_of(post_messages(&omitted, &messages("hi")).await)
            .await
            .get("usage")
            .is_none()
    );

    // Counted: reply words, at least one even for an empty reply.
    let counted = stub(StubConfig {
        default_reply: Reply::Text(String::new()),
        ..StubConfig::default()
    })
    .await;
    let body = json_of(post_chat(&counted, &chat("one two three")).await).await;
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 6, "completion_tokens": 1, "total_tokens": 7})
    );
}

#[tokio::test]
async fn queued_faults_come_in_order_then_service_resumes() {
    let stub = stub(StubConfig::default()).await;
    stub.push_faults([
        Fault::Status(500),
        Fault::TooManyRequests {
            retry_after: Some("1".into()),
        },
    ]);
    stub.push_faults([Fault::Status(502)]);
    // A readiness check takes no fault.
    let health = reqwest::get(stub.base_url().replace("/v1", "/health"))
        .await
        .expect("response");
    assert_eq!(health.status(), StatusCode::OK);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(post_chat(&stub, &chat("hi")).await.status().as_u16());
    }
    assert_eq!(statuses, [500, 429, 502, 200, 200]);
}

#[tokio::test]
async fn rule_fault_fails_every_matching_request() {
    let config = StubConfig {
        rules: vec![Rule {
            when: Match {
                contains: Some("doomed".into()),
                after_tool_result: None,
            },
            reply: Reply::Echo,
            fault: Some(Fault::Status(500)),
        }],
        ..StubConfig::default()
    };
    let stub = stub(config).await;
    for _ in 0..3 {
        assert_eq!(
            post_chat(&stub, &chat("doomed case")).await.status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
    assert_eq!(
        post_chat(&stub, &chat("fine case")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn requests_are_logged_in_order_with_timestamps() {
    let stub = stub(StubConfig::default()).await;
    stub.push_faults([Fault::Status(503)]);
    let before = Instant::now();
    post_chat(&stub, &chat("first")).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    post_chat(&stub, &chat("second")).await;
    reqwest::get(format!("{}/models", stub.base_url()))
        .await
        .expect("response");
    post_messages(&stub, &messages("third")).await;
    let after = Instant::now();

    let log = stub.requests();
    let paths: Vec<_> = log
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            ("POST", "/v1/chat/completions"),
            ("POST", "/v1/chat/completions"),
            ("GET", "/v1/models"),
            ("POST", "/v1/messages"),
        ]
    );
    assert_eq!(
        log[0].body["messages"][1]["content"], "first",
        "the faulted request is logged too"
    );
    assert_eq!(log[1].body["messages"][1]["content"], "second");
    assert_eq!(log[2].body, Value::Null);
    assert!(
        log[3]
            .headers
            .contains(&("anthropic-version".into(), "2023-06-01".into()))
    );
    assert!(log.windows(2).all(|pair| pair[0].at <= pair[1].at));
    assert!(log[0].at >= before && log[3].at <= after);
    assert!(log[1].at - log[0].at >= Duration::from_millis(20));
}

#[tokio::test]
async fn latency_delays_completions() {
    let latency = Duration::from_millis(50);
    let stub = stub(StubConfig {
        latency,
        ..StubConfig::default()
    })
    .await;
    let started = Instant::now();
    assert_eq!(post_chat(&stub, &chat("hi")).await.status(), StatusCode::OK);
    assert!(started.elapsed() >= latency);
}

#[tokio::test]
async fn dropping_the_stub_stops_it() {
    let stub = stub(StubConfig::default()).await;
    let url = format!("{}/models", stub.base_url());
    drop(stub);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(reqwest::get(url).await.is_err());
}

/// A plain reqwest client. In a workspace build reqwest comes with rustls but no crypto
/// provider (the root crate installs its own), so install one first.
fn new_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
