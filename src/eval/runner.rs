//! Running eval sets: every case × sample as a task on tokio, each request through its
//! provider's lane (bounded concurrency, pacing to the requests-per-minute limit,
//! retries with backoff that honour `Retry-After`), the cache, and the recorder; the
//! tool-call loop; judging. A sample that could not be evaluated is an error, never a
//! pass or a fail.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;

use super::assertions::{self, Answer, ToolCall, Verdict, parse_json, short};
use super::cache::Cache;
use super::progress::Progress;
use super::provider::{self, Completion, Provider, ProviderError, Settings, json_string};
use super::request::{Call, ChatRequest, Format, Params, Turn, estimate_tokens};
use super::result::{
    ArtifactRun, CaseResult, Judged, Outcome, RunInfo, Sample, Shard, Source, cost,
};
use crate::artifact::Artifact;
use crate::artifact::assertion::Check;
use crate::artifact::suite::{Case, EvalSet, ToolResult};
use crate::artifact::template::Compiled;
use crate::config::{Config, Price};
use crate::env::Secrets;

/// Steps of the tool loop before a conversation is cut off (and the case fails).
pub const MAX_TOOL_STEPS: usize = 8;
/// Longest `Retry-After` honoured; a provider asking for more fails the request.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// Waits between attempts: exponential from `base`, capped, with jitter.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (0-based): the provider's `Retry-After` when
    /// it gave one (plus up to 10% so clients told the same time do not return at
    /// once), else half of base·2ⁿ plus a random part of the other half.
    pub fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after + after.mul_f64(fastrand::f64() * 0.1);
        }
        let full = self
            .base
            .saturating_mul(1u32 << retry.min(16))
            .min(self.cap);
        full / 2 + full.mul_f64(fastrand::f64() / 2.0)
    }
}

/// Spaces requests to stay under a requests-per-minute limit.
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(per_minute: u32) -> Self {
        Pacer {
            interval: Duration::from_secs(60) / per_minute,
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

/// A provider with its limits.
struct Lane {
    name: String,
    provider: Box<dyn Provider>,
    permits: Semaphore,
    pacer: Option<Pacer>,
    max_retries: u32,
}

/// An answer, where it came from, and what it took.
struct Got {
    completion: Completion,
    latency_ms: f64,
    source: Source,
    retries: u32,
}

/// What the engine is asked to do besides answering.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Answer every artifact (and the judge) with this provider instead of its own.
    pub provider: Option<String>,
    pub cache: Option<PathBuf>,
    /// Write every live answer into this directory as a recording for `replay`.
    pub record: Option<PathBuf>,
    pub backoff: Backoff,
    /// Show progress on stderr (a bar on a terminal, else a line every 10%).
    pub progress: Option<super::progress::Style>,
}

/// One artifact version to run on a set of cases.
pub struct Plan {
    pub artifact: Artifact,
    pub eval: EvalSet,
    pub repeats: u32,
    pub shard: Option<Shard>,
}

struct Prepared {
    artifact: Artifact,
    templates: Result<Compiled, String>,
    cases: Vec<Case>,
    lane: Arc<Lane>,
    price: Option<Price>,
}

/// Runs plans against providers.
pub struct Engine {
    lanes: HashMap<String, Arc<Lane>>,
    judge: Option<(Arc<Lane>, String)>,
    cache: Option<Cache>,
    record: Option<PathBuf>,
    pricing: std::collections::BTreeMap<String, Price>,
    backoff: Backoff,
    progress: Option<super::progress::Style>,
    override_provider: Option<String>,
}

impl Engine {
    /// An engine for `plans`: their providers (or the override), and the judge when a
    /// case asks for it.
    pub fn new(
        config: &Config,
        secrets: &Secrets,
        root: &std::path::Path,
        plans: &[Plan],
        options: Options,
    ) -> anyhow::Result<Engine> {
        let mut lanes: HashMap<String, Arc<Lane>> = HashMap::new();
        let mut lane = |name: &str| -> anyhow::Result<Arc<Lane>> {
            if let Some(l) = lanes.get(name) {
                return Ok(l.clone());
            }
            let settings = Settings::resolve(name, config.providers.get(name), secrets)?;
            let l = Arc::new(Lane {
                name: name.to_string(),
                provider: provider::build(&settings, root)?,
                permits: Semaphore::new(settings.concurrency),
                pacer: settings.requests_per_minute.map(Pacer::new),
                max_retries: settings.max_retries,
            });
            lanes.insert(name.to_string(), l.clone());
            Ok(l)
        };
        for plan in plans {
            lane(
                options
                    .provider
                    .as_deref()
                    .unwrap_or(&plan.artifact.model.provider),
            )?;
        }
        let needs_judge = plans.iter().any(|p| {
            p.eval.cases.iter().any(|c| {
                c.assertions
                    .iter()
                    .any(|a| matches!(a.check, Check::LlmRubric { .. }))
            })
        });
        // An offline override (a replay provider) answers the judge too, so an offline
        // run stays offline; a live override leaves the judge on its own provider, which
        // knows its model.
        let offline = options.provider.as_deref().is_some_and(|name| {
            Settings::resolve(name, config.providers.get(name), secrets)
                .is_ok_and(|s| s.kind == crate::config::ProviderKind::Replay)
        });
        let judge = match (&config.judge, needs_judge) {
            (Some(j), true) => {
                let name = match (&options.provider, offline) {
                    (Some(o), true) => o.as_str(),
                    _ => j.provider.as_str(),
                };
                Some((lane(name)?, j.model.clone()))
            }
            _ => None,
        };
        Ok(Engine {
            lanes,
            judge,
            cache: options.cache.map(Cache::new),
            record: options.record,
            pricing: config.pricing.clone(),
            backoff: options.backoff,
            progress: options.progress,
            override_provider: options.provider,
        })
    }

    /// Run every plan; results in plan order, cases in eval-set order.
    pub async fn run(self: &Arc<Self>, plans: Vec<Plan>) -> anyhow::Result<Vec<ArtifactRun>> {
        let mut prepared = Vec::new();
        let mut jobs = Vec::new();
        for (p, plan) in plans.into_iter().enumerate() {
            let name = self
                .override_provider
                .as_deref()
                .unwrap_or(&plan.artifact.model.provider);
            let lane = self
                .lanes
                .get(name)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("provider `{name}` was not set up"))?;
            let cases_digest = crate::artifact::fingerprint::canonical_digest(&json!(
                plan.eval.cases.iter().map(|c| &c.id).collect::<Vec<_>>()
            ));
            let cases: Vec<Case> = plan
                .eval
                .cases
                .into_iter()
                .enumerate()
                .filter(|(i, _)| plan.shard.is_none_or(|s| s.holds(*i)))
                .map(|(_, c)| c)
                .collect();
            let repeats = plan.repeats.max(1);
            for c in 0..cases.len() {
                for s in 0..repeats {
                    jobs.push((p, c, s));
                }
            }
            prepared.push((
                Arc::new(Prepared {
                    templates: ChatRequest::templates(&plan.artifact),
                    price: self.pricing.get(&plan.artifact.model.name).cloned(),
                    artifact: plan.artifact,
                    cases,
                    lane,
                }),
                plan.eval.segments,
                plan.shard,
                repeats,
                cases_digest,
            ));
        }
        let progress = Arc::new(Progress::new(jobs.len(), self.progress));
        let mut samples: Vec<Vec<Vec<Option<Sample>>>> = prepared
            .iter()
            .map(|(p, _, _, repeats, _)| vec![vec![None; *repeats as usize]; p.cases.len()])
            .collect();
        // Enough tasks in flight to keep every lane busy; the lanes' semaphores bound
        // the requests themselves.
        let in_flight: usize = self
            .lanes
            .values()
            .map(|l| l.permits.available_permits())
            .sum::<usize>()
            * 2
            + 8;
        let mut tasks = JoinSet::new();
        let mut running = HashMap::new();
        let mut queue = jobs.into_iter();
        loop {
            while tasks.len() < in_flight {
                let Some((p, c, s)) = queue.next() else { break };
                let (engine, prep, progress) =
                    (self.clone(), prepared[p].0.clone(), progress.clone());
                let task = tasks.spawn(async move {
                    let sample = engine.sample(&prep, c, s).await;
                    progress.tick();
                    sample
                });
                running.insert(task.id(), (p, c, s));
            }
            let Some(joined) = tasks.join_next_with_id().await else {
                break;
            };
            // A task that panicked is that sample's error; the others stand.
            let (id, sample) = match joined {
                Ok((id, sample)) => (id, sample),
                Err(e) => (e.id(), Sample::error(format!("internal error: {e}"))),
            };
            if let Some((p, c, s)) = running.remove(&id) {
                samples[p][c][s as usize] = Some(sample);
            }
        }
        progress.finish();
        Ok(prepared
            .into_iter()
            .zip(samples)
            .map(
                |((prep, segments, shard, repeats, cases_digest), samples)| {
                    let a = &prep.artifact;
                    ArtifactRun {
                        artifact: RunInfo {
                            id: a.id.clone(),
                            path: a.path.clone(),
                            version: a.version.clone(),
                            fingerprint: a.fingerprint.clone(),
                            provider: prep.lane.name.clone(),
                            model: a.model.name.clone(),
                            repeats,
                            cases_digest,
                        },
                        segments,
                        shard,
                        cases: prep
                            .cases
                            .iter()
                            .zip(samples)
                            .map(|(case, samples)| {
                                CaseResult::new(
                                    case.id.clone(),
                                    case.segments.clone(),
                                    case.file.clone(),
                                    case.pos.line,
                                    samples.into_iter().flatten().collect(),
                                )
                            })
                            .collect(),
                    }
                },
            )
            .collect())
    }

    /// One sample of one case: the tool loop, then the judging.
    async fn sample(&self, prep: &Prepared, case: usize, sample: u32) -> Sample {
        let case = &prep.cases[case];
        let request = match &prep.templates {
            Ok(templates) => ChatRequest::for_case(&prep.artifact, templates, case),
            Err(e) => Err(e.clone()),
        };
        let mut request = match request {
            Ok(r) => r,
            Err(e) => return Sample::error(e.to_string()),
        };
        let mut calls = Vec::new();
        let (mut latency, mut input, mut output) = (0.0, 0u64, 0u64);
        let (mut estimated, mut requests, mut retries) = (false, 0u32, 0u32);
        let mut source = Source::Live;
        let mut finished = None;
        for _ in 0..MAX_TOOL_STEPS {
            let got = match self.call(&prep.lane, &request, sample).await {
                Ok(got) => got,
                Err(e) => {
                    return Sample {
                        retries: retries + e.1,
                        requests,
                        ..Sample::error(format!("provider `{}`: {}", prep.lane.name, e.0))
                    };
                }
            };
            requests += 1;
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
                finished = Some(completion.text);
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
        let cost_usd = prep.price.as_ref().map(|p| cost(p, input, output));
        let looped = finished.is_none();
        let answer = Answer {
            text: finished.unwrap_or_default(),
            tool_calls: calls,
            latency_ms: latency,
            output_tokens: output,
            cost_usd,
        };
        let mut judged = Vec::new();
        for a in &case.assertions {
            let verdict = match &a.check {
                Check::LlmRubric { rubric } => match self.grade(rubric, &answer.text).await {
                    Ok(v) => v,
                    Err(e) => {
                        return Sample {
                            requests,
                            retries,
                            ..Sample::error(format!("judging `{}`: {e}", a.name))
                        };
                    }
                },
                _ => assertions::judge(a, &answer),
            };
            judged.push(Judged {
                name: a.name.clone(),
                weight: a.weight,
                verdict,
            });
        }
        if looped {
            judged.push(Judged {
                name: "tool-loop".into(),
                weight: 1.0,
                verdict: Verdict::Fail {
                    reason: format!("tool-loop: still calling tools after {MAX_TOOL_STEPS} steps"),
                },
            });
        }
        // A definite fail fails the case; otherwise an assertion that could not be
        // judged leaves it undecided: an error, never a pass.
        let failed = judged
            .iter()
            .any(|j| matches!(j.verdict, Verdict::Fail { .. }));
        let unjudged: Vec<&str> = judged
            .iter()
            .filter_map(|j| match &j.verdict {
                Verdict::Unjudged { reason } => Some(reason.as_str()),
                _ => None,
            })
            .collect();
        let (outcome, error) = match (failed, unjudged.is_empty()) {
            (true, _) => (Outcome::Fail, None),
            (false, true) => (Outcome::Pass, None),
            (false, false) => (
                Outcome::Error,
                Some(format!("could not judge: {}", unjudged.join("; "))),
            ),
        };
        Sample {
            outcome,
            error,
            text: answer.text,
            tool_calls: answer.tool_calls,
            assertions: judged,
            latency_ms: Some(latency),
            input_tokens: input,
            output_tokens: output,
            tokens_estimated: estimated,
            cost_usd,
            requests,
            retries,
            source,
        }
    }

    /// Grade `text` against `rubric` with the judge; unjudged when none is configured.
    async fn grade(&self, rubric: &str, text: &str) -> Result<Verdict, String> {
        let Some((lane, model)) = &self.judge else {
            return Ok(Verdict::Unjudged {
                reason: "llm-rubric: no judge configured (`judge:` in the config)".into(),
            });
        };
        let request = ChatRequest {
            model: model.clone(),
            params: Params {
                temperature: Some(0.0),
                ..Params::default()
            },
            format: Format::JsonObject,
            messages: vec![
                Turn::System {
                    content: JUDGE_INSTRUCTIONS.into(),
                },
                Turn::User {
                    content: format!("Rubric:\n{rubric}\n\nAnswer:\n<<<\n{text}\n>>>"),
                },
            ],
            tools: Vec::new(),
        };
        let got = self
            .call(lane, &request, 0)
            .await
            .map_err(|e| format!("provider `{}`: {}", lane.name, e.0))?;
        let grade = parse_json(&got.completion.text);
        let pass = grade.as_ref().and_then(|g| g.get("pass")?.as_bool());
        let why = grade
            .as_ref()
            .and_then(|g| g.get("reason")?.as_str().map(str::to_string))
            .unwrap_or_default();
        Ok(match pass {
            Some(true) => Verdict::Pass,
            Some(false) => Verdict::Fail {
                reason: format!("llm-rubric: {}", short(&why, 120)),
            },
            None => Verdict::Unjudged {
                reason: format!(
                    "llm-rubric: the judge did not answer {{\"pass\": …}}: `{}`",
                    short(&got.completion.text, 80)
                ),
            },
        })
    }

    /// One request through `lane`: from the cache, or from the provider with retries.
    /// The error carries the retries made.
    async fn call(
        &self,
        lane: &Lane,
        request: &ChatRequest,
        sample: u32,
    ) -> Result<Got, (ProviderError, u32)> {
        let identity = lane.provider.identity();
        let live = lane.provider.live();
        if let (true, Some(cache)) = (live, &self.cache)
            && let Some(completion) = cache.get(&identity, request, sample).await
        {
            self.record(request, sample, &completion)
                .await
                .map_err(|e| (e, 0))?;
            return Ok(Got {
                latency_ms: completion.latency_ms.unwrap_or(0.0),
                completion,
                source: Source::Cache,
                retries: 0,
            });
        }
        let mut retry = 0;
        loop {
            let attempt = {
                let _permit = lane
                    .permits
                    .acquire()
                    .await
                    .map_err(|_| (ProviderError::Unavailable("engine closed".into()), retry))?;
                if let Some(pacer) = &lane.pacer {
                    pacer.wait().await;
                }
                let start = Instant::now();
                let result = lane.provider.complete(request, sample).await;
                (result, start.elapsed())
            };
            match attempt {
                (Ok(mut completion), elapsed) => {
                    let latency_ms = completion
                        .latency_ms
                        .unwrap_or(elapsed.as_secs_f64() * 1000.0);
                    if live {
                        completion.latency_ms = Some(latency_ms);
                        if let Some(cache) = &self.cache
                            && let Err(e) = cache.put(&identity, request, sample, &completion).await
                        {
                            tracing::warn!("cannot write to the answer cache: {e}");
                        }
                        self.record(request, sample, &completion)
                            .await
                            .map_err(|e| (e, retry))?;
                    }
                    return Ok(Got {
                        completion,
                        latency_ms,
                        source: if live { Source::Live } else { Source::Replay },
                        retries: retry,
                    });
                }
                (Err(e), _) if e.retryable() && retry < lane.max_retries => {
                    if e.retry_after().is_some_and(|d| d > MAX_RETRY_AFTER) {
                        return Err((e, retry));
                    }
                    let wait = self.backoff.wait(retry, e.retry_after());
                    tracing::debug!(
                        "provider `{}`: {e}; retry {} in {wait:.1?}",
                        lane.name,
                        retry + 1
                    );
                    retry += 1;
                    tokio::time::sleep(wait).await;
                }
                (Err(e), _) => return Err((e, retry)),
            }
        }
    }
}

impl Engine {
    /// Write the answer as a recording, when recording.
    async fn record(
        &self,
        request: &ChatRequest,
        sample: u32,
        completion: &Completion,
    ) -> Result<(), ProviderError> {
        let Some(dir) = &self.record else {
            return Ok(());
        };
        super::provider::replay::record(dir, request, sample, completion)
            .await
            .map_err(|e| {
                ProviderError::Unavailable(format!(
                    "cannot write the recording in {}: {e}",
                    dir.display()
                ))
            })
    }
}

/// What the judge is told; it must answer JSON so the verdict is read, not guessed.
const JUDGE_INSTRUCTIONS: &str = "You grade an AI assistant's answer against a rubric. \
Judge only what the rubric asks. Reply with JSON only: \
{\"pass\": true or false, \"reason\": \"one short sentence\"}.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        for retry in 0..3 {
            let full = Duration::from_millis(100 * (1 << retry));
            let w = b.wait(retry, None);
            assert!(w >= full / 2 && w <= full, "retry {retry}: {w:?}");
        }
        assert!(b.wait(10, None) <= Duration::from_secs(1));
        let w = b.wait(0, Some(Duration::from_secs(2)));
        assert!(w >= Duration::from_secs(2) && w <= Duration::from_millis(2200));
    }
}
