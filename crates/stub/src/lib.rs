//! A stub OpenAI- and Anthropic-compatible HTTP server for promptgate's tests,
//! fault-injection tests and benchmarks.
//!
//! [`Stub::start`] binds `127.0.0.1:0` and serves until the [`Stub`] is dropped:
//!
//! - `POST /v1/chat/completions`: OpenAI Chat Completions,
//! - `POST /v1/messages`: Anthropic Messages,
//! - `GET /v1/models` and `GET /health`, for readiness checks.
//!
//! What it answers is set by a [`StubConfig`] (rules, default reply, usage,
//! latency, API key) and by [`Fault`]s, queued with [`Stub::push_faults`] or
//! attached to a [`Rule`]. Every request is recorded ([`Stub::requests`]).

mod anthropic;
mod conversation;
mod openai;
mod server;

use std::time::{Duration, Instant};

pub use server::Stub;

/// One request as the stub received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// When the request's head arrived.
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// Header names are lower case; repeated headers appear once per value.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON; `Null` if it is empty or not JSON.
    pub body: serde_json::Value,
}

/// How the stub answers.
#[derive(Clone, Debug, Default)]
pub struct StubConfig {
    /// Sleep before answering every completion request (faulted ones too).
    pub latency: Duration,
    /// The first rule whose [`Match`] fits the request decides the reply.
    pub rules: Vec<Rule>,
    /// The reply when no rule matches.
    pub default_reply: Reply,
    pub usage: UsageMode,
    /// When set, completion and model requests must carry it (OpenAI:
    /// `Authorization: Bearer K`; Anthropic: `x-api-key: K`) or get 401.
    pub api_key: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub when: Match,
    pub reply: Reply,
    /// When set, every matching request gets this fault instead of `reply`:
    /// a case that always fails.
    pub fault: Option<Fault>,
}

/// What a request must look like for a [`Rule`] to apply; `None` fields match
/// anything.
#[derive(Clone, Debug, Default)]
pub struct Match {
    /// A substring of some message's text content, the system prompt and tool
    /// results included.
    pub contains: Option<String>,
    /// `Some(true)`: the conversation's last message is a tool result (OpenAI
    /// role `tool`; Anthropic a user message with `tool_result` blocks).
    /// `Some(false)`: it is not.
    pub after_tool_result: Option<bool>,
}

#[derive(Clone, Debug, Default)]
pub enum Reply {
    /// The text of the last user message (tool results are not user messages).
    #[default]
    Echo,
    Text(String),
    /// Tool calls as (name, arguments object). A request without `tools` gets
    /// the [`Reply::Echo`] text instead.
    ToolCalls(Vec<(String, serde_json::Value)>),
    /// One of these texts, drawn afresh for every request, as a model sampling at a
    /// temperature would answer: a text's chance is its share of the list.
    OneOf(Vec<String>),
    /// A 200 with no text and no tool call: OpenAI `content: null`, Anthropic
    /// `content: []`.
    Nothing,
    /// A refusal in the API's own field: OpenAI `message.refusal` with this text
    /// (the empty string for `None`) and `content: null`; Anthropic
    /// `stop_reason: "refusal"`, no content, and this text as
    /// `stop_details.explanation` (no `stop_details` for `None`).
    Refusal(Option<String>),
    /// The API key the request carried, repeated in the answer where [`KeyEcho`]
    /// says, as a model or a proxy might: to test that a client keeps it out of
    /// everything it writes. A request without a key gets the echo text.
    EchoKey(KeyEcho),
}

/// Where [`Reply::EchoKey`] puts the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyEcho {
    /// In the text: `Your key is KEY.`
    Text,
    /// In the text, cut in two: two text blocks (Anthropic) or content parts
    /// (OpenAI), each holding half of it.
    Split,
    /// In the text, each of its characters `\u`-escaped in the JSON on the wire:
    /// the same string to a JSON parser, not the same bytes.
    Escaped,
    /// In the arguments of a tool call, `echo_key` with `{"api_key": KEY}`; the
    /// echo text when the request has no `tools`.
    ToolArguments,
}

#[derive(Clone, Debug, Default)]
pub enum UsageMode {
    /// Input: whitespace-separated words over every message's text plus the
    /// `tools` array's JSON. Output: words of the reply (tool names and
    /// arguments' JSON for tool calls), at least 1.
    #[default]
    Counted,
    Fixed {
        input: u64,
        output: u64,
    },
    /// No usage field at all.
    Omitted,
}

/// A failure to inject. Errors are shaped as the endpoint's provider shapes
/// them (OpenAI or Anthropic).
#[derive(Clone, Debug)]
pub enum Fault {
    /// 429, with `Retry-After` set to the value as given (seconds or an HTTP
    /// date) when `Some`.
    TooManyRequests { retry_after: Option<String> },
    /// This status with an error body, e.g. 500, 502, 503, 529.
    Status(u16),
    /// Accept the request and never answer.
    Hang,
    /// 200 with a body that is not JSON.
    MalformedJson,
    /// The normal answer's status and `Content-Length`, but only the first
    /// half of its body, then the connection is closed.
    TruncatedJson,
    /// Close the connection without any response.
    DropConnection,
    /// The normal answer, its body sent in small chunks with this delay
    /// between them.
    SlowBody { chunk_delay: Duration },
    /// 401 whose error body echoes the API key the request carried, to test
    /// that clients redact it.
    EchoKey401,
}
