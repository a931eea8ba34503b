//! The tool-call loop of one sample: ask, answer the tools the model called from the
//! case's `tool_results`, ask again, until the model answers without calling a tool or
//! [`MAX_TOOL_STEPS`] run out; with the tokens, latency, requests and retries it took.

use serde_json::json;
use tokio::sync::Semaphore;

use super::assertions::{Answer, ToolCall};
use super::provider::json_string;
use super::request::{Call, ChatRequest, Turn, estimate_tokens};
use super::result::{Sample, Source, cost};
use super::runner::{Engine, Prepared};
use crate::artifact::suite::{Case, ToolResult};
use crate::artifact::template::MAX_PROMPT_BYTES;

/// Steps of the tool loop before a conversation is cut off (and the case fails).
pub const MAX_TOOL_STEPS: usize = 8;

/// Bytes of rendered prompts held at once by the whole process, every lane and sample
/// together: a sample measures its prompt, waits for that many, and makes it only then,
/// so many large prompts in flight never hold more than this (several times over:
/// request, wire body, cache key). One prompt of the largest size runs alone.
static PROMPTS_IN_FLIGHT: Semaphore = Semaphore::const_new(MAX_PROMPT_BYTES);

/// A conversation that ran to its end, or was cut off.
pub(super) struct Conversation {
    pub(super) answer: Answer,
    /// Still calling tools after [`MAX_TOOL_STEPS`].
    pub(super) looped: bool,
    pub(super) input_tokens: u64,
    /// Some usage was estimated: the provider did not report it.
    pub(super) tokens_estimated: bool,
    pub(super) requests: u32,
    pub(super) retries: u32,
    pub(super) source: Source,
}

impl Engine {
    /// Run `case`'s conversation for sample number `sample`; a request that could not
    /// be built or answered is that sample's error.
    pub(super) async fn converse(
        &self,
        prep: &Prepared,
        case: &Case,
        sample: u32,
    ) -> Result<Conversation, Sample> {
        let templates = prep
            .templates
            .as_ref()
            .map_err(|e| Sample::error(e.clone()))?;
        let size =
            ChatRequest::prompt_len(&prep.artifact, templates, case).map_err(Sample::error)?;
        // At most MAX_PROMPT_BYTES, which fits a u32; the semaphore is never closed.
        let _held = PROMPTS_IN_FLIGHT
            .acquire_many(u32::try_from(size).unwrap_or(u32::MAX))
            .await
            .map_err(|e| Sample::error(format!("internal error: {e}")))?;
        let mut request =
            ChatRequest::for_case(&prep.artifact, templates, case).map_err(Sample::error)?;
        let mut calls = Vec::new();
        let (mut latency, mut input, mut output) = (0.0, 0u64, 0u64);
        let (mut estimated, mut requests, mut retries) = (false, 0u32, 0u32);
        let mut source = Source::Live;
        let mut finished = None;
        for _ in 0..MAX_TOOL_STEPS {
            let got = match self.call(&prep.lane, &request, sample).await {
                Ok(got) => got,
                // The failed request was sent too, every retry of it.
                Err(e) => {
                    return Err(Sample {
                        retries: retries + e.1,
                        requests: requests + 1 + e.1,
                        ..Sample::error(format!("provider `{}`: {}", prep.lane.name, e.0))
                    });
                }
            };
            requests += 1 + got.retries;
            retries += got.retries;
            latency += got.latency_ms;
            source = got.source;
            match got.completion.usage {
                Some(u) => {
                    input += u.input;
                    output += u.output;
                }
                None => {
                    estimated = true;
                    input += estimate_tokens(request.text_len());
                    output += estimate_tokens(
                        got.completion.text.len()
                            + got
                                .completion
                                .calls
                                .iter()
                                .map(Call::text_len)
                                .sum::<usize>(),
                    );
                }
            }
            let completion = got.completion;
            if completion.calls.is_empty() {
                finished = Some((completion.text, completion.refusal));
                break;
            }
            let mut made = Vec::new();
            let mut answered = Vec::new();
            for (i, call) in completion.calls.into_iter().enumerate() {
                let id = if call.id.is_empty() {
                    format!("call_{}_{i}", calls.len())
                } else {
                    call.id.clone()
                };
                calls.push(ToolCall {
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                });
                let (content, is_error) = match case.tool_results.get(&call.name) {
                    Some(ToolResult::Content(v)) => (json_string(v), false),
                    Some(ToolResult::Error(e)) => (json!({"error": e}).to_string(), true),
                    None => (
                        json!({"error": format!("tool `{}` is not available", call.name)})
                            .to_string(),
                        true,
                    ),
                };
                answered.push(Turn::Tool {
                    call_id: id.clone(),
                    name: call.name.clone(),
                    content,
                    is_error,
                });
                made.push(Call { id, ..call });
            }
            request.messages.push(Turn::Assistant {
                content: completion.text,
                calls: made,
            });
            request.messages.extend(answered);
        }
        let looped = finished.is_none();
        let (text, refusal) = finished.unwrap_or_default();
        Ok(Conversation {
            answer: Answer {
                text,
                refusal,
                tool_calls: calls,
                latency_ms: latency,
                output_tokens: output,
                cost_usd: prep.price.as_ref().map(|p| cost(p, input, output)),
            },
            looped,
            input_tokens: input,
            tokens_estimated: estimated,
            requests,
            retries,
            source,
        })
    }
}
