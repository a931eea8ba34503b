//! Running eval sets: scheduling every case × sample as a task on tokio, each request
//! through its provider's lane ([`super::lane`]: bounded concurrency, pacing, retries),
//! the cache and the recorder; then the tool-call loop ([`super::conversation`]) and
//! judging ([`super::judge`]). A sample that could not be evaluated is an error, never
//! a pass or a fail.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use tokio::task::JoinSet;

use super::cache::Cache;
use super::lane::Lane;
use super::progress::Progress;
use super::provider::{self, Completion, ProviderError, Settings};
use super::request::ChatRequest;
use super::result::{ArtifactRun, CaseResult, RunInfo, Sample, Shard, Source};
use crate::artifact::Artifact;
use crate::artifact::assertion::Check;
use crate::artifact::suite::{Case, EvalSet};
use crate::artifact::template::Compiled;
use crate::config::{Config, Price};
use crate::env::Secrets;
use crate::secret::Scrubber;

pub use super::conversation::MAX_TOOL_STEPS;
/// The waits between a provider's attempts; [`Options::backoff`].
pub use crate::retry::Backoff;

/// An answer, where it came from, and what it took.
pub(super) struct Got {
    pub(super) completion: Completion,
    pub(super) latency_ms: f64,
    pub(super) source: Source,
    pub(super) retries: u32,
}

/// What the engine is asked to do besides answering.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Answer every artifact (and the judge) with this provider instead of its own.
    pub provider: Option<String>,
    pub cache: Option<PathBuf>,
    /// Write every live answer into this directory as a recording for `replay`.
    pub record: Option<PathBuf>,
    /// The waits between a provider's attempts, and the clock they are spent on.
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
    /// The number of the first sample: samples are `first_sample..first_sample +
    /// repeats`, each its own answer (and cache entry). 0 but for a confirmation round,
    /// which asks for answers beyond the ones already taken.
    pub first_sample: u32,
}

/// A plan ready to run: its templates compiled, its cases chosen, its lane found.
pub(super) struct Prepared {
    pub(super) artifact: Artifact,
    pub(super) templates: Result<Compiled, String>,
    pub(super) cases: Vec<Case>,
    pub(super) lane: Arc<Lane>,
    pub(super) price: Option<Price>,
    pub(super) first_sample: u32,
}

/// Runs plans against providers.
pub struct Engine {
    lanes: HashMap<String, Arc<Lane>>,
    /// The judge's lane and model.
    pub(super) judge: Option<(Arc<Lane>, String)>,
    /// `judge.models`: GitHub Models `modelId`s to the judge provider's model names.
    pub(super) judge_models: std::collections::BTreeMap<String, String>,
    cache: Option<Cache>,
    record: Option<PathBuf>,
    pricing: std::collections::BTreeMap<String, Price>,
    backoff: Backoff,
    progress: Option<super::progress::Style>,
    override_provider: Option<String>,
    /// Every key the run holds, scrubbed from every answer.
    keys: Scrubber,
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
            let l = Arc::new(Lane::new(
                name,
                &settings,
                provider::build(&settings, root)?,
            ));
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
                    .any(|a| matches!(a.check, Check::LlmRubric { .. } | Check::ModelGraded(_)))
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
            judge_models: config
                .judge
                .as_ref()
                .map(|j| j.models.clone())
                .unwrap_or_default(),
            cache: options.cache.map(Cache::new),
            record: options.record,
            pricing: config.pricing.clone(),
            backoff: options.backoff,
            progress: options.progress,
            override_provider: options.provider,
            keys: provider::keys(config, secrets),
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
                    first_sample: plan.first_sample,
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
        let in_flight: usize = self.lanes.values().map(|l| l.concurrency()).sum::<usize>() * 2 + 8;
        let mut tasks = JoinSet::new();
        let mut running = HashMap::new();
        let mut queue = jobs.into_iter();
        loop {
            while tasks.len() < in_flight {
                let Some((p, c, s)) = queue.next() else { break };
                let (engine, prep, progress) =
                    (self.clone(), prepared[p].0.clone(), progress.clone());
                let task = tasks.spawn(async move {
                    let sample = engine.sample(&prep, c, prep.first_sample + s).await;
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
        match self.converse(prep, case, sample).await {
            Ok(conversation) => self.judge(case, conversation).await,
            Err(error) => error,
        }
    }

    /// One request through `lane`: from the cache, or from the provider with retries.
    /// The error carries the retries made.
    ///
    /// Every answer enters promptgate here, live, replayed or cached, and leaves with
    /// the run's keys scrubbed from it ([`Engine::scrubbed`]): before it is judged
    /// (the judge model included), cached, recorded or reported.
    pub(super) async fn call(
        &self,
        lane: &Lane,
        request: &ChatRequest,
        sample: u32,
    ) -> Result<Got, (ProviderError, u32)> {
        let identity = lane.provider.identity();
        let live = lane.provider.live();
        let cached = match (live, &self.cache) {
            (true, Some(cache)) => cache.get(&identity, request, sample).await,
            _ => None,
        };
        let (completion, latency_ms, source, retries) = match cached {
            Some(completion) => {
                let latency_ms = completion.latency_ms.unwrap_or(0.0);
                (completion, latency_ms, Source::Cache, 0)
            }
            None => {
                let answered = lane
                    .complete(request, sample, &self.backoff)
                    .await
                    .map_err(|(e, retries)| (e.scrubbed(&self.keys), retries))?;
                let latency_ms = answered
                    .completion
                    .latency_ms
                    .unwrap_or(answered.elapsed.as_secs_f64() * 1000.0);
                let source = if live { Source::Live } else { Source::Replay };
                (answered.completion, latency_ms, source, answered.retries)
            }
        };
        let mut completion = self.scrubbed(completion).map_err(|e| (e, retries))?;
        if source == Source::Live {
            completion.latency_ms = Some(latency_ms);
            if let Some(cache) = &self.cache
                && let Err(e) = cache.put(&identity, request, sample, &completion).await
            {
                tracing::warn!("cannot write to the answer cache: {e}");
            }
        }
        if source != Source::Replay {
            self.record(request, sample, &completion)
                .await
                .map_err(|e| (e, retries))?;
        }
        Ok(Got {
            completion,
            latency_ms,
            source,
            retries,
        })
    }

    /// `completion` with the run's keys scrubbed from every string it holds, whatever
    /// the field (text, tool names, ids and arguments, and any field added later): it
    /// goes through its JSON form, so no field can be forgotten here.
    ///
    /// Scrubbed before judging, an assertion sees `[redacted]` where the model wrote a
    /// key. Judging the raw answer would mean keeping it until every output is written,
    /// and sending it to the judge model, which may be another provider's.
    fn scrubbed(&self, completion: Completion) -> Result<Completion, ProviderError> {
        let mut value = serde_json::to_value(completion)
            .map_err(|e| ProviderError::Malformed(format!("cannot scrub the answer: {e}")))?;
        self.keys.scrub_json(&mut value);
        serde_json::from_value(value)
            .map_err(|e| ProviderError::Malformed(format!("cannot scrub the answer: {e}")))
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
