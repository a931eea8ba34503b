//! What a run produced, case by case, and the figures derived from it: pure values,
//! serialized as the `promptgate.eval/v1` JSON that `eval --format json` writes and
//! `merge` reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::assertions::{Judgement, ToolCall};
use crate::artifact::suite::Segment;
use crate::config::Price;

/// Identifies the JSON document `eval --format json` writes.
pub const SCHEMA: &str = "promptgate.eval/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    /// Could not be evaluated (provider failure, missing recording, template error…):
    /// neither a pass nor a fail.
    Error,
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Live,
    Cache,
    Replay,
}

/// One assertion's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    pub name: String,
    pub weight: f64,
    #[serde(flatten)]
    pub verdict: Judgement,
    /// A model-graded evaluator's score: that of the choice the judge picked, 0 for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

#[cfg(test)]
impl Judged {
    /// A `contains` assertion that passed or failed as `outcome` says, for tests that
    /// build results by hand.
    pub(crate) fn decided(outcome: Outcome) -> Judged {
        Judged {
            name: "contains".into(),
            weight: 1.0,
            score: None,
            verdict: if outcome == Outcome::Pass {
                Judgement::Pass
            } else {
                Judgement::Fail {
                    reason: "contains: expected \"refund\"".into(),
                }
            },
        }
    }
}

/// One sample of one case: the conversation's end result and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub outcome: Outcome,
    /// Why it could not be evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The final answer's text.
    pub text: String,
    /// The answer is a refusal the API marked as one (OpenAI `message.refusal`,
    /// Anthropic `stop_reason: "refusal"`); `text` is its text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refusal: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assertions: Vec<Judged>,
    /// Time the model took, summed over the tool loop's requests (waits for retries
    /// not included). For cached and replayed answers, the time measured originally.
    pub latency_ms: Option<f64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The provider did not report usage: the token counts are estimated from length.
    #[serde(default)]
    pub tokens_estimated: bool,
    /// `None`: the model has no price in the pricing table.
    pub cost_usd: Option<f64>,
    /// Requests sent, retries included: one per step of the tool loop (an answer from
    /// the cache or a recording counts one) and one per retry, whether the sample was
    /// evaluated or is an error.
    pub requests: u32,
    /// Attempts that failed and were retried.
    #[serde(default)]
    pub retries: u32,
    pub source: Source,
}

impl Sample {
    /// A sample that could not be evaluated.
    pub fn error(message: String) -> Sample {
        Sample {
            outcome: Outcome::Error,
            error: Some(message),
            text: String::new(),
            refusal: false,
            tool_calls: Vec::new(),
            assertions: Vec::new(),
            latency_ms: None,
            input_tokens: 0,
            output_tokens: 0,
            tokens_estimated: false,
            cost_usd: None,
            requests: 0,
            retries: 0,
            source: Source::Live,
        }
    }

    /// Weighted share of the judged assertions that held (1 when none was judged).
    pub fn score(&self) -> f64 {
        let (held, total) = self
            .assertions
            .iter()
            .fold((0.0, 0.0), |(h, t), a| match a.verdict {
                Judgement::Pass => (h + a.weight, t + a.weight),
                Judgement::Fail { .. } => (h, t + a.weight),
                Judgement::Unjudged { .. } => (h, t),
            });
        if total > 0.0 { held / total } else { 1.0 }
    }
}

/// One case, over all its samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    pub id: String,
    pub segments: Vec<String>,
    /// Where the case is written.
    pub file: String,
    pub line: usize,
    /// Pass when every sample passed, error when any could not be evaluated, else fail.
    pub outcome: Outcome,
    /// Samples that passed.
    pub passes: u32,
    pub samples: Vec<Sample>,
    /// Fresh samples taken to confirm a flip between base and head (the gate answers a
    /// flipped case again on both sides, so that one lucky or unlucky answer does not
    /// decide); not counted in `outcome` and `passes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confirmations: Vec<Sample>,
}

impl CaseResult {
    pub fn new(
        id: String,
        segments: Vec<String>,
        file: String,
        line: usize,
        samples: Vec<Sample>,
    ) -> Self {
        let outcome = if samples.iter().any(|s| s.outcome == Outcome::Error) {
            Outcome::Error
        } else if samples.iter().all(|s| s.outcome == Outcome::Pass) {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        CaseResult {
            passes: samples
                .iter()
                .filter(|s| s.outcome == Outcome::Pass)
                .count() as u32,
            id,
            segments,
            file,
            line,
            outcome,
            samples,
            confirmations: Vec::new(),
        }
    }
}

/// Which artifact version ran, on what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub id: String,
    pub path: String,
    pub version: Option<String>,
    pub fingerprint: String,
    /// The provider that answered (after any `--provider` override).
    pub provider: String,
    pub model: String,
    pub repeats: u32,
    /// Digest of the case ids run (before sharding), so `merge` joins only shards of
    /// the same eval set.
    pub cases_digest: String,
}

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected K/N, e.g. 2/4"))?;
        let index: u32 = k
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: `{k}` is not a number"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: `{n}` is not a number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(format!("`{s}`: K must be between 1 and N"));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether the case at `position` of an eval set belongs to this shard: positions
    /// are dealt round-robin, so the shards partition the set and differ in size by at
    /// most one.
    pub fn holds(&self, position: usize) -> bool {
        position % self.count as usize == (self.index - 1) as usize
    }
}

/// One artifact version's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRun {
    pub artifact: RunInfo,
    pub segments: BTreeMap<String, Segment>,
    /// Set when only one shard of the cases ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    pub cases: Vec<CaseResult>,
}

/// Counts of case outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub cases: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        self.cases += 1;
        match outcome {
            Outcome::Pass => self.passed += 1,
            Outcome::Fail => self.failed += 1,
            Outcome::Error => self.errors += 1,
        }
    }

    /// Passed over evaluated cases; `None` when none was evaluated.
    pub fn pass_rate(&self) -> Option<f64> {
        let judged = self.passed + self.failed;
        (judged > 0).then(|| self.passed as f64 / judged as f64)
    }
}

/// The figures of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(flatten)]
    pub tally: Tally,
    pub pass_rate: Option<f64>,
    pub samples: usize,
    pub requests: u64,
    pub retries: u64,
    #[serde(flatten)]
    pub spend: Spend,
    /// Assertions that could not be judged (no judge configured, no price).
    pub unjudged: usize,
    pub by_segment: BTreeMap<String, Tally>,
}

impl ArtifactRun {
    pub fn summary(&self) -> Summary {
        let mut tally = Tally::default();
        let mut by_segment: BTreeMap<String, Tally> = self
            .segments
            .keys()
            .map(|s| (s.clone(), Tally::default()))
            .collect();
        for case in &self.cases {
            tally.add(case.outcome);
            for segment in &case.segments {
                by_segment
                    .entry(segment.clone())
                    .or_default()
                    .add(case.outcome);
            }
        }
        let samples: Vec<&Sample> = self
            .cases
            .iter()
            .flat_map(|c| &c.samples)
            .filter(|s| s.outcome != Outcome::Error)
            .collect();
        let all = self.cases.iter().flat_map(|c| &c.samples);
        Summary {
            tally,
            pass_rate: tally.pass_rate(),
            samples: all.clone().count(),
            requests: all.clone().map(|s| u64::from(s.requests)).sum(),
            retries: all.clone().map(|s| u64::from(s.retries)).sum(),
            spend: Spend::of(&samples),
            unjudged: all
                .flat_map(|s| &s.assertions)
                .filter(|a| matches!(a.verdict, Judgement::Unjudged { .. }))
                .count(),
            by_segment,
        }
    }
}

/// Tokens, cost and latency of the conversations that were evaluated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Some token counts were estimated.
    pub tokens_estimated: bool,
    /// `None` when some sample has no price.
    pub cost_usd: Option<f64>,
    pub cost_per_1k_requests_usd: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
}

impl Spend {
    /// Over `samples`, which the caller has stripped of the ones that errored.
    pub fn of(samples: &[&Sample]) -> Spend {
        let cost_usd = samples
            .iter()
            .map(|s| s.cost_usd)
            .sum::<Option<f64>>()
            .filter(|_| !samples.is_empty());
        let mut latencies: Vec<f64> = samples.iter().filter_map(|s| s.latency_ms).collect();
        latencies.sort_by(f64::total_cmp);
        Spend {
            input_tokens: samples.iter().map(|s| s.input_tokens).sum(),
            output_tokens: samples.iter().map(|s| s.output_tokens).sum(),
            tokens_estimated: samples.iter().any(|s| s.tokens_estimated),
            cost_per_1k_requests_usd: cost_usd.map(|c| c / samples.len() as f64 * 1000.0),
            cost_usd,
            latency_p50_ms: percentile(&latencies, 0.50),
            latency_p95_ms: percentile(&latencies, 0.95),
        }
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Cost in USD of the tokens at `price` (USD per million tokens).
pub fn cost(price: &Price, input: u64, output: u64) -> f64 {
    (input as f64 * price.input + output as f64 * price.output) / 1_000_000.0
}

/// A run with its figures, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    #[serde(flatten)]
    pub run: ArtifactRun,
    pub summary: Summary,
}

/// The document `eval --format json` writes and `merge` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub schema: String,
    pub runs: Vec<RunReport>,
}

impl EvalReport {
    pub fn new(runs: Vec<ArtifactRun>) -> Self {
        EvalReport {
            schema: SCHEMA.into(),
            runs: runs
                .into_iter()
                .map(|run| RunReport {
                    summary: run.summary(),
                    run,
                })
                .collect(),
        }
    }
}

/// Join shard results into one run per artifact version: cases in shard order, every
/// shard of a run present exactly once.
pub fn merge(reports: Vec<EvalReport>) -> Result<EvalReport, String> {
    struct Joined {
        run: ArtifactRun,
        seen: Vec<u32>,
        /// Cases with their position in the unsharded eval set.
        cases: Vec<(usize, CaseResult)>,
    }
    let mut joined: Vec<Joined> = Vec::new();
    for report in reports {
        if report.schema != SCHEMA {
            return Err(format!("schema `{}`, expected `{SCHEMA}`", report.schema));
        }
        for RunReport { mut run, .. } in report.runs {
            let shard = run.shard.unwrap_or(Shard { index: 1, count: 1 });
            // Shards deal positions round-robin: the i-th case of shard k of n was at
            // position i·n + k − 1.
            let cases: Vec<(usize, CaseResult)> = std::mem::take(&mut run.cases)
                .into_iter()
                .enumerate()
                .map(|(i, c)| (i * shard.count as usize + shard.index as usize - 1, c))
                .collect();
            let same = joined.iter_mut().find(|j| {
                let a = &j.run.artifact;
                a.id == run.artifact.id
                    && a.fingerprint == run.artifact.fingerprint
                    && a.provider == run.artifact.provider
            });
            let Some(into) = same else {
                joined.push(Joined {
                    run,
                    seen: vec![shard.index],
                    cases,
                });
                continue;
            };
            let id = &run.artifact.id;
            if into.run.artifact.cases_digest != run.artifact.cases_digest
                || into.run.artifact.repeats != run.artifact.repeats
            {
                return Err(format!(
                    "`{id}`: shards ran different cases or repeats (not from the same commit and options?)"
                ));
            }
            let count = into.run.shard.map_or(1, |s| s.count);
            if count != shard.count {
                return Err(format!(
                    "`{id}`: shards of different splits ({count} and {})",
                    shard.count
                ));
            }
            if into.seen.contains(&shard.index) {
                return Err(format!(
                    "`{id}`: shard {}/{} given twice",
                    shard.index, shard.count
                ));
            }
            into.seen.push(shard.index);
            for (name, segment) in run.segments {
                into.run.segments.entry(name).or_insert(segment);
            }
            into.cases.extend(cases);
        }
    }
    let mut runs = Vec::new();
    for Joined {
        mut run,
        mut seen,
        mut cases,
    } in joined
    {
        let count = run.shard.map_or(1, |s| s.count);
        seen.sort_unstable();
        let missing: Vec<String> = (1..=count)
            .filter(|i| !seen.contains(i))
            .map(|i| format!("{i}/{count}"))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "`{}`: shard(s) {} missing",
                run.artifact.id,
                missing.join(", ")
            ));
        }
        cases.sort_by_key(|(position, _)| *position);
        run.cases = cases.into_iter().map(|(_, c)| c).collect();
        run.shard = None;
        runs.push(run);
    }
    Ok(EvalReport::new(runs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn shards_partition_the_cases_exactly(cases in 0usize..500, count in 1u32..17) {
            let mut seen = vec![0u32; cases];
            let mut sizes = Vec::new();
            for index in 1..=count {
                let shard = Shard { index, count };
                let held: Vec<usize> = (0..cases).filter(|&p| shard.holds(p)).collect();
                sizes.push(held.len());
                for p in held {
                    seen[p] += 1;
                }
            }
            prop_assert!(seen.iter().all(|&n| n == 1));
            let (min, max) = (sizes.iter().min(), sizes.iter().max());
            prop_assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1));
        }
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        assert!("0/4".parse::<Shard>().is_err());
        assert!("5/4".parse::<Shard>().is_err());
        assert!("2".parse::<Shard>().is_err());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(10.0));
        assert_eq!(percentile(&v, 0.95), Some(19.0));
        assert_eq!(percentile(&[7.0], 0.95), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    fn sample(outcome: Outcome, cost: Option<f64>, latency: f64) -> Sample {
        Sample {
            outcome,
            cost_usd: cost,
            latency_ms: Some(latency),
            input_tokens: 10,
            output_tokens: 5,
            requests: 1,
            source: Source::Live,
            ..Sample::error(String::new())
        }
    }

    fn run(cases: Vec<CaseResult>, shard: Option<Shard>) -> ArtifactRun {
        ArtifactRun {
            artifact: RunInfo {
                id: "a".into(),
                path: "a.prompt.yaml".into(),
                version: None,
                fingerprint: "sha256:x".into(),
                provider: "p".into(),
                model: "m".into(),
                repeats: 1,
                cases_digest: "d".into(),
            },
            segments: BTreeMap::new(),
            shard,
            cases,
        }
    }

    fn case(id: &str, samples: Vec<Sample>) -> CaseResult {
        CaseResult::new(id.into(), vec!["s".into()], "f".into(), 1, samples)
    }

    #[test]
    fn outcomes_and_figures() {
        let r = run(
            vec![
                case("a", vec![sample(Outcome::Pass, Some(0.01), 100.0)]),
                case(
                    "b",
                    vec![
                        sample(Outcome::Pass, Some(0.01), 300.0),
                        sample(Outcome::Fail, Some(0.01), 200.0),
                    ],
                ),
                case("c", vec![Sample::error("down".into())]),
            ],
            None,
        );
        assert_eq!(r.cases[1].outcome, Outcome::Fail);
        assert_eq!(r.cases[1].passes, 1);
        let s = r.summary();
        assert_eq!((s.tally.passed, s.tally.failed, s.tally.errors), (1, 1, 1));
        assert_eq!(s.pass_rate, Some(0.5));
        assert_eq!(s.spend.input_tokens, 30);
        assert_eq!(s.spend.latency_p50_ms, Some(200.0));
        assert!(s.spend.cost_usd.is_some_and(|c| (c - 0.03).abs() < 1e-12));
        assert!(
            s.spend
                .cost_per_1k_requests_usd
                .is_some_and(|c| (c - 10.0).abs() < 1e-9)
        );
        assert_eq!(s.by_segment["s"].cases, 3);
        let unpriced = run(
            vec![case("a", vec![sample(Outcome::Pass, None, 1.0)])],
            None,
        );
        assert_eq!(unpriced.summary().spend.cost_usd, None);
    }

    #[test]
    fn merge_joins_every_shard_once() {
        let shard = |index, ids: &[&str]| EvalReport {
            schema: SCHEMA.into(),
            runs: vec![RunReport {
                summary: run(vec![], None).summary(),
                run: run(
                    ids.iter()
                        .map(|id| case(id, vec![sample(Outcome::Pass, None, 1.0)]))
                        .collect(),
                    Some(Shard { index, count: 2 }),
                ),
            }],
        };
        let merged = merge(vec![shard(2, &["b"]), shard(1, &["a", "c"])]).expect("merges");
        assert_eq!(merged.runs.len(), 1);
        let ids: Vec<&str> = merged.runs[0]
            .run
            .cases
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b", "c"], "back in eval-set order");
        assert_eq!(merged.runs[0].run.shard, None);
        assert_eq!(merged.runs[0].summary.tally.cases, 3);
        assert_eq!(
            merge(vec![shard(1, &["a"])]).err().as_deref(),
            Some("`a`: shard(s) 2/2 missing")
        );
        assert_eq!(
            merge(vec![shard(1, &["a"]), shard(1, &["a"])])
                .err()
                .as_deref(),
            Some("`a`: shard 1/2 given twice")
        );
    }
}
