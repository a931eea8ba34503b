//! Release safety after merge: the runtime config applications read to pick a prompt
//! version per request, staged canary rollouts by traffic segment, automatic freeze on
//! a threshold breach, and rollback. The model and its transitions are pure; the CLI
//! writes the file through [`crate::store`] (locked, atomic, audited).

pub mod bundle;
pub mod command;
pub mod flagd;
pub mod metrics;
pub mod origin;
pub mod prometheus;
pub mod watch;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::artifact::native::Version;

/// The `format` of a runtime config this version reads and writes.
pub const FORMAT: &str = "promptgate.runtime/v1";
/// Where the runtime config lives unless `--runtime` says otherwise.
pub const DEFAULT_PATH: &str = "deploy/prompts.runtime.yaml";

/// The runtime config: per artifact, which version serves which traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// `promptgate.runtime/v1`.
    pub format: String,
    #[serde(default)]
    pub artifacts: BTreeMap<String, Release>,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            format: FORMAT.into(),
            artifacts: BTreeMap::new(),
        }
    }
}

/// One artifact's release state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// The version everyone gets unless a canary serves them.
    pub stable: Pinned,
    /// Earlier stable versions, oldest first: what `rollback` returns to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Pinned>,
    /// Frozen: stable for everyone, and the canary cannot advance.
    #[serde(default)]
    pub frozen: bool,
    /// Why it froze (the breach), for on-call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen_because: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// Declared before the rollout starts; `rollout check` holds the canary to them.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Which traffic each stage serves.
    #[serde(default)]
    pub stages: Stages,
    /// The PromQL queries `rollout check --prometheus` asks (docs/release.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<prometheus::Queries>,
}

/// A version, with the fingerprint of what it sends the model and the commit that
/// introduced it, when known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pinned {
    pub version: Version,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The commit that introduced the version to the artifact's file (first-parent
    /// history of `HEAD` when the rollout started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// A version being rolled out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    pub version: Version,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The commit that introduced the version ([`Pinned::commit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub stage: Stage,
    /// Segments it serves at this stage (globs; `*` is all traffic).
    pub segments: Vec<String>,
    /// Share of those segments' requests it serves, 0–100.
    pub percent: f64,
    /// When this stage started (RFC 3339); only metrics since then count.
    pub since: String,
    /// Consecutive checks that found a breach; reset by a check that does not. The
    /// rollout freezes when it passes `thresholds.failure_limit`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub breaches: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Rollout stages, in order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Internal users only.
    Internal,
    /// Low-risk intents.
    LowRisk,
    /// One geography or tenant cohort.
    Cohort,
    /// All traffic.
    All,
}

impl Stage {
    pub const ORDER: [Stage; 4] = [Stage::Internal, Stage::LowRisk, Stage::Cohort, Stage::All];

    pub fn next(self) -> Option<Stage> {
        let i = Stage::ORDER.iter().position(|s| *s == self)?;
        Stage::ORDER.get(i + 1).copied()
    }

    /// The stage a word names (`internal`, `low-risk`, `cohort`, `all`).
    pub fn from_word(word: &str) -> Option<Stage> {
        Stage::ORDER.into_iter().find(|s| s.word() == word)
    }

    pub fn word(self) -> &'static str {
        match self {
            Stage::Internal => "internal",
            Stage::LowRisk => "low-risk",
            Stage::Cohort => "cohort",
            Stage::All => "all",
        }
    }
}

/// Canary limits, declared in advance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Share of the canary's requests that fell back to a default answer.
    pub max_fallback_rate: f64,
    /// Share escalated to a human.
    pub max_escalation_rate: f64,
    /// Share whose answer a human corrected by hand.
    pub max_manual_correction_rate: f64,
    /// Canary requests needed at each stage before it may advance.
    pub min_samples: PerStage<u64>,
    /// Canary requests (and stable's, to compare) needed before a rate over its
    /// threshold can be a breach; fewer hold.
    pub min_breach_samples: u64,
    /// Breaching checks tolerated in a row: the next one freezes (Argo Rollouts'
    /// `failureLimit`). 0 freezes on the first.
    pub failure_limit: u32,
    /// How long each stage must have lasted (since `canary.since`) before `advance
    /// --metrics` moves the canary on: `30m`, `4h`, `1h 30m`, `PT4H` ([`bake_time`]).
    /// Slow harm (a complaint a day later, a weekly job) shows only with time.
    pub min_bake: PerStage<String>,
    /// `rollout watch` advances a healthy, baked canary on its own, as with
    /// `--auto-advance`: the policy, declared with the thresholds, rather than a flag
    /// of whoever starts the watch.
    pub auto_advance: bool,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_fallback_rate: 0.05,
            max_escalation_rate: 0.05,
            max_manual_correction_rate: 0.05,
            min_samples: PerStage {
                internal: 50,
                low_risk: 200,
                cohort: 500,
                all: 1000,
            },
            min_breach_samples: 20,
            failure_limit: 1,
            min_bake: PerStage {
                internal: "1h".into(),
                low_risk: "4h".into(),
                cohort: "24h".into(),
                all: "0s".into(),
            },
            auto_advance: false,
        }
    }
}

/// One value per stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PerStage<T> {
    pub internal: T,
    pub low_risk: T,
    pub cohort: T,
    pub all: T,
}

impl<T> PerStage<T> {
    pub fn get(&self, stage: Stage) -> &T {
        match stage {
            Stage::Internal => &self.internal,
            Stage::LowRisk => &self.low_risk,
            Stage::Cohort => &self.cohort,
            Stage::All => &self.all,
        }
    }
}

/// The traffic one stage serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StagePlan {
    pub segments: Vec<String>,
    pub percent: f64,
}

pub type Stages = PerStage<StagePlan>;

impl Default for Stages {
    fn default() -> Self {
        let plan = |segments: &[&str], percent| StagePlan {
            segments: segments.iter().map(|s| s.to_string()).collect(),
            percent,
        };
        PerStage {
            internal: plan(&["internal"], 100.0),
            low_risk: plan(&["*"], 5.0),
            cohort: plan(&["*"], 25.0),
            all: plan(&["*"], 100.0),
        }
    }
}

/// The bucket of a request, 0–9999: the same artifact and key always land in the same
/// one, keys spread evenly, and it is the bucket flagd's `fractional` draws
/// ([`flagd::bucket`]).
pub fn bucket(artifact: &str, request_key: &str) -> u64 {
    u64::from(flagd::bucket(artifact, request_key))
}

/// The one glob dialect of stage segments (docs/release.md, "Segment globs"): `*` any
/// run of characters (`/` too), `?` one character, `[abc]`, `[a-z]`, `[!a]`/`[^a]`,
/// `{a,b}` alternatives, `\\` escapes the next character; case-sensitive, whole segment.
pub fn segment_glob(pattern: &str) -> Result<globset::GlobMatcher, String> {
    segment_glob_builder(pattern)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| e.kind().to_string())
}

fn segment_glob_builder(pattern: &str) -> globset::GlobBuilder<'_> {
    let mut builder = globset::GlobBuilder::new(pattern);
    builder
        .literal_separator(false)
        .backslash_escape(true)
        .case_insensitive(false)
        .empty_alternates(false);
    builder
}

/// A `min_bake` duration, in jiff's friendly form (`30m`, `4h`, `1h 30m`) or ISO 8601
/// (`PT4H`); not negative.
pub fn bake_time(text: &str) -> Result<jiff::SignedDuration, String> {
    let bad = |why: String| {
        format!("`{text}` is not a duration ({why}); write one as `30m`, `4h`, `1h 30m` or `0s`")
    };
    let duration: jiff::SignedDuration = text.trim().parse().map_err(|e| bad(format!("{e}")))?;
    if duration.is_negative() {
        return Err(format!("`{text}` is negative: a stage bakes `0s` or more"));
    }
    Ok(duration)
}

/// A duration as people read it, to the minute (to the second under one): `12m`, `1h 5m`.
fn spoken(d: jiff::SignedDuration) -> String {
    let secs = d.as_secs().max(0);
    let secs = if secs >= 60 { secs / 60 * 60 } else { secs };
    format!("{:#}", jiff::SignedDuration::from_secs(secs))
}

/// A problem in a release, at the keys (below the artifact) where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub at: Vec<&'static str>,
    pub message: String,
}

impl Release {
    /// What a hand edit can get wrong that the schema cannot say: rates that are not
    /// fractions, sample minimums of zero, stages that do not widen, empty or invalid
    /// segment lists.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut push = |at: Vec<&'static str>, message: String| out.push(Problem { at, message });
        let t = &self.thresholds;
        for (key, value) in [
            ("max_fallback_rate", t.max_fallback_rate),
            ("max_escalation_rate", t.max_escalation_rate),
            ("max_manual_correction_rate", t.max_manual_correction_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                let hint = if value > 1.0 && value <= 100.0 {
                    format!(" (did you mean {}?)", value / 100.0)
                } else {
                    String::new()
                };
                push(
                    vec!["thresholds", key],
                    format!("`{key}` is a fraction between 0 and 1, found {value}{hint}"),
                );
            }
        }
        for stage in Stage::ORDER {
            if *t.min_samples.get(stage) == 0 {
                push(
                    vec!["thresholds", "min_samples", stage.word()],
                    format!(
                        "`min_samples.{}` must be at least 1: a stage never advances on no data",
                        stage.word()
                    ),
                );
            }
        }
        for stage in Stage::ORDER {
            if let Err(e) = bake_time(t.min_bake.get(stage)) {
                push(
                    vec!["thresholds", "min_bake", stage.word()],
                    format!("`min_bake.{}`: {e}", stage.word()),
                );
            }
        }
        if t.min_breach_samples == 0 {
            push(
                vec!["thresholds", "min_breach_samples"],
                "`min_breach_samples` must be at least 1".into(),
            );
        }
        if let Some(c) = &self.canary
            && c.since.parse::<jiff::Timestamp>().is_err()
        {
            push(
                vec!["canary", "since"],
                format!("`since` is not an RFC 3339 time: `{}`", c.since),
            );
        }
        let mut previous: Option<(Stage, f64)> = None;
        for stage in Stage::ORDER {
            let plan = self.stages.get(stage);
            let word = stage.word();
            if !(plan.percent > 0.0 && plan.percent <= 100.0) {
                push(
                    vec!["stages", word, "percent"],
                    format!(
                        "stage {word}: `percent` must be more than 0 and at most 100, found {}",
                        plan.percent
                    ),
                );
            }
            if plan.percent > 0.0
                && (plan.percent * 100.0 - (plan.percent * 100.0).round()).abs() > 1e-6
            {
                push(
                    vec!["stages", word, "percent"],
                    format!(
                        "stage {word}: `percent` has at most two decimals (shares are drawn in 0.01% buckets), found {}",
                        plan.percent
                    ),
                );
            }
            if plan.segments.is_empty() {
                push(
                    vec!["stages", word, "segments"],
                    format!("stage {word}: `segments` is empty, so the stage serves nobody"),
                );
            }
            for p in &plan.segments {
                if let Err(e) = segment_glob(p) {
                    push(
                        vec!["stages", word, "segments"],
                        format!("stage {word}: segment `{p}` is not a valid glob: {e}"),
                    );
                }
            }
            // Internal users are a population of their own; from low-risk on, each stage
            // serves a larger share than the one before.
            if stage != Stage::Internal {
                if let Some((before, percent)) = previous
                    && plan.percent <= percent
                {
                    push(
                        vec!["stages", word, "percent"],
                        format!(
                            "stage {word}: `percent` {} must be more than stage {}'s {percent}: stages only widen",
                            plan.percent,
                            before.word()
                        ),
                    );
                }
                previous = Some((stage, plan.percent));
            }
        }
        out
    }
}

impl Release {
    /// Whether the canary's stage has yet to last its `min_bake` at `now`: the words of
    /// the hold (`stage internal has baked 12m of 1h`), or `None` when it has baked
    /// (or there is no canary). A `since` in the future has baked nothing.
    pub fn still_baking(&self, now: jiff::Timestamp) -> Option<String> {
        let canary = self.canary.as_ref()?;
        let text = self.thresholds.min_bake.get(canary.stage);
        // Reading the file refuses a bad duration or time ([`Release::problems`]).
        let needed = bake_time(text).ok()?;
        let since = canary.since.parse::<jiff::Timestamp>().ok()?;
        let baked = now.duration_since(since).max(jiff::SignedDuration::ZERO);
        (baked < needed).then(|| {
            format!(
                "stage {} has baked {} of {} (`thresholds.min_bake`)",
                canary.stage.word(),
                spoken(baked),
                spoken(needed)
            )
        })
    }

    /// The stage, segments and percent the canary serves at its stage: its own stage's,
    /// and, stages being cumulative, every earlier stage's. Empty without a canary.
    pub fn served_stages(&self) -> impl Iterator<Item = (Stage, &[String], f64)> {
        let canary = self.canary.as_ref();
        let earlier = Stage::ORDER
            .into_iter()
            .take_while(move |s| canary.is_some_and(|c| *s < c.stage))
            .map(|s| {
                let plan = self.stages.get(s);
                (s, plan.segments.as_slice(), plan.percent)
            });
        earlier.chain(canary.map(|c| (c.stage, c.segments.as_slice(), c.percent)))
    }

    /// The segments any of whose requests the canary serves (for its metrics), compiled
    /// once: frozen or not, every stage up to the canary's.
    pub fn canary_segments(&self) -> SegmentSet {
        let patterns: Vec<String> = self
            .served_stages()
            .flat_map(|(_, segments, _)| segments.iter().cloned())
            .collect();
        SegmentSet::new(&patterns)
    }
}

/// A stage's segment globs, compiled once ([`segment_glob`]'s dialect). A glob that
/// does not compile matches nothing; reading the runtime config refuses one.
#[derive(Debug, Clone)]
pub struct SegmentSet {
    /// `*` alone: every request, one in no segment too.
    all: bool,
    set: globset::GlobSet,
}

impl SegmentSet {
    pub fn new(patterns: &[String]) -> SegmentSet {
        let mut set = globset::GlobSetBuilder::new();
        for p in patterns {
            if let Ok(glob) = segment_glob_builder(p).build() {
                set.add(glob);
            }
        }
        SegmentSet {
            all: patterns.iter().any(|p| p == "*"),
            set: set.build().unwrap_or_else(|_| globset::GlobSet::empty()),
        }
    }

    /// Whether a request in `segments` is one of these.
    pub fn serves(&self, segments: &[globset::Candidate]) -> bool {
        self.all || segments.iter().any(|s| self.set.is_match_candidate(s))
    }

    /// Whether `segment` is one of these.
    pub fn matches(&self, segment: &str) -> bool {
        self.all || self.set.is_match(segment)
    }
}

/// What a release serves, compiled for answering many requests: stable, and the
/// canary with each stage's segments and share up to its own ([`Release::served`]).
#[derive(Debug, Clone)]
pub struct Serving {
    stable: String,
    canary: Option<(String, Vec<(SegmentSet, u32)>)>,
}

impl Serving {
    pub fn new(release: &Release) -> Serving {
        let canary = release.canary.as_ref().filter(|_| !release.frozen);
        Serving {
            stable: release.stable.version.text(),
            canary: canary.map(|c| {
                let shares = release
                    .served_stages()
                    .map(|(_, segments, percent)| {
                        (SegmentSet::new(segments), flagd::weight(percent))
                    })
                    .collect();
                (c.version.text(), shares)
            }),
        }
    }

    /// Whether the canary serves a request in `segments` whose key is in `bucket`: some
    /// stage up to the canary's serves one of them (`*` serves a request in none too)
    /// with a share above the bucket. Stages are cumulative: a key in the canary stays in
    /// it as stages widen. Never while frozen.
    pub fn canary_serves(&self, segments: &[&str], bucket: u64) -> bool {
        self.canary.as_ref().is_some_and(|(_, shares)| {
            // Prepared once for every stage's set.
            let segments: Vec<globset::Candidate> =
                segments.iter().map(globset::Candidate::new).collect();
            shares
                .iter()
                .any(|(set, weight)| bucket < u64::from(*weight) && set.serves(&segments))
        })
    }

    /// The version a request gets; `artifact` is the flag key its bucket is drawn with.
    /// No key, no bucket: flagd's `fractional` serves the default, stable.
    pub fn version(&self, artifact: &str, segments: &[&str], request_key: &str) -> &str {
        match &self.canary {
            Some((canary, _))
                if !request_key.is_empty()
                    && self.canary_serves(segments, bucket(artifact, request_key)) =>
            {
                canary
            }
            _ => &self.stable,
        }
    }
}

/// Every artifact's [`Serving`]: resolve many requests without compiling a glob again.
#[derive(Debug, Clone)]
pub struct Resolver {
    artifacts: std::collections::HashMap<String, Serving>,
}

impl Resolver {
    pub fn new(runtime: &Runtime) -> Resolver {
        Resolver {
            artifacts: runtime
                .artifacts
                .iter()
                .map(|(id, release)| (id.clone(), Serving::new(release)))
                .collect(),
        }
    }

    /// [`Runtime::resolve_request`], answered from the compiled form.
    pub fn resolve(&self, artifact: &str, segments: &[&str], request_key: &str) -> Option<&str> {
        Some(
            self.artifacts
                .get(artifact)?
                .version(artifact, segments, request_key),
        )
    }

    /// What `artifact` serves, compiled.
    pub fn serving(&self, artifact: &str) -> Option<&Serving> {
        self.artifacts.get(artifact)
    }
}

impl Runtime {
    /// The version `artifact` serves a request: the canary if [`Serving::canary_serves`]
    /// the request's segment and bucket ([`bucket`]), else stable. A frozen release serves stable to everyone. `None` for an artifact the
    /// file does not name.
    pub fn resolve(&self, artifact: &str, segment: &str, request_key: &str) -> Option<String> {
        self.resolve_request(artifact, &[segment], request_key)
    }

    /// [`Runtime::resolve`] for a request in any number of segments: what
    /// `promptgate resolve` answers, and flagd with the [`flagd::export`] of this file.
    pub fn resolve_request(
        &self,
        artifact: &str,
        segments: &[&str],
        request_key: &str,
    ) -> Option<String> {
        let serving = Serving::new(self.artifacts.get(artifact)?);
        Some(serving.version(artifact, segments, request_key).to_string())
    }
}

/// Why a transition is refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Refused {
    #[error("`{0}` is not in the runtime config; start its first rollout with `--stable VERSION`")]
    Unknown(String),
    #[error(
        "`{artifact}` is already rolling out version {version}: advance it, or roll it back first"
    )]
    Busy { artifact: String, version: String },
    #[error("`{0}` has no rollout in progress")]
    NoCanary(String),
    #[error("`{artifact}` is frozen ({why}): roll back, then start again")]
    Frozen { artifact: String, why: String },
    #[error("`{artifact}` already serves version {version} as stable")]
    AlreadyStable { artifact: String, version: String },
    #[error("`{0}` has no earlier stable version to roll back to")]
    NoHistory(String),
    #[error(
        "`{artifact}` is at stage {now}, not {from}: someone else moved it; nothing changed (see `promptgate rollout status`)"
    )]
    Moved {
        artifact: String,
        from: &'static str,
        now: &'static str,
    },
}

/// What a transition did: changed the release (the words for the audit log), or found
/// it already in the state asked for (the words for the user; nothing is written).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Changed(String),
    Unchanged(String),
}

/// Start rolling out `version` of `artifact` at the first stage.
pub fn start(
    rt: &mut Runtime,
    artifact: &str,
    version: Pinned,
    stable_if_new: Option<Pinned>,
    now: &str,
) -> Result<String, Refused> {
    if !rt.artifacts.contains_key(artifact) {
        let stable = stable_if_new.ok_or_else(|| Refused::Unknown(artifact.into()))?;
        rt.artifacts.insert(
            artifact.to_string(),
            Release {
                stable,
                history: Vec::new(),
                frozen: false,
                frozen_because: None,
                canary: None,
                thresholds: Thresholds::default(),
                stages: Stages::default(),
                prometheus: None,
            },
        );
    }
    let release = rt
        .artifacts
        .get_mut(artifact)
        .ok_or_else(|| Refused::Unknown(artifact.into()))?;
    if let Some(c) = &release.canary {
        return Err(Refused::Busy {
            artifact: artifact.into(),
            version: c.version.text(),
        });
    }
    if release.stable.version.text() == version.version.text() {
        return Err(Refused::AlreadyStable {
            artifact: artifact.into(),
            version: version.version.text(),
        });
    }
    let plan = release.stages.get(Stage::Internal).clone();
    let from = version
        .commit
        .as_deref()
        .map(|c| format!(", from commit {}", c.get(..12).unwrap_or(c)))
        .unwrap_or_default();
    release.frozen = false;
    release.frozen_because = None;
    release.canary = Some(Canary {
        version: version.version.clone(),
        fingerprint: version.fingerprint,
        commit: version.commit,
        stage: Stage::Internal,
        segments: plan.segments.clone(),
        percent: plan.percent,
        since: now.to_string(),
        breaches: 0,
    });
    Ok(format!(
        "{artifact}: rollout of version {}{from} started at stage internal ({}% of {})",
        version.version.text(),
        plan.percent,
        plan.segments.join(", ")
    ))
}

/// Move the canary from stage `from` to the next one, or, from the last, make it
/// stable. Compare-and-set: a canary no longer at `from` (someone advanced or rolled it
/// back meanwhile) is refused, so two advances never move two steps.
pub fn advance(
    rt: &mut Runtime,
    artifact: &str,
    from: Stage,
    now: &str,
) -> Result<String, Refused> {
    let release = rt
        .artifacts
        .get_mut(artifact)
        .ok_or_else(|| Refused::Unknown(artifact.into()))?;
    if release.frozen {
        return Err(Refused::Frozen {
            artifact: artifact.into(),
            why: release
                .frozen_because
                .clone()
                .unwrap_or_else(|| "frozen by hand".into()),
        });
    }
    let canary = release
        .canary
        .as_mut()
        .ok_or_else(|| Refused::NoCanary(artifact.into()))?;
    if canary.stage != from {
        return Err(Refused::Moved {
            artifact: artifact.into(),
            from: from.word(),
            now: canary.stage.word(),
        });
    }
    match canary.stage.next() {
        Some(stage) => {
            let plan = release.stages.get(stage).clone();
            canary.stage = stage;
            canary.segments = plan.segments.clone();
            canary.percent = plan.percent;
            canary.since = now.to_string();
            canary.breaches = 0;
            Ok(format!(
                "{artifact}: version {} advanced from stage {} to stage {} ({}% of {})",
                canary.version.text(),
                from.word(),
                stage.word(),
                plan.percent,
                plan.segments.join(", ")
            ))
        }
        None => {
            let promoted = Pinned {
                version: canary.version.clone(),
                fingerprint: canary.fingerprint.clone(),
                commit: canary.commit.clone(),
            };
            let old = std::mem::replace(&mut release.stable, promoted);
            release.history.push(old);
            release.canary = None;
            Ok(format!(
                "{artifact}: version {} advanced from stage all and is now stable for everyone",
                release.stable.version.text()
            ))
        }
    }
}

/// A check of the canary of `version` at `stage` found a breach: one more in a row; past
/// `failure_limit` the rollout freezes (returned `true`). A canary that moved meanwhile
/// is left alone.
pub fn breached(
    rt: &mut Runtime,
    artifact: &str,
    version: &str,
    stage: Stage,
    why: &str,
) -> Result<(Step, bool), Refused> {
    let release = rt
        .artifacts
        .get_mut(artifact)
        .ok_or_else(|| Refused::Unknown(artifact.into()))?;
    let limit = release.thresholds.failure_limit;
    let Some(canary) = release
        .canary
        .as_mut()
        .filter(|c| c.version.text() == version && c.stage == stage && !release.frozen)
    else {
        return Ok((
            Step::Unchanged(format!(
                "{artifact}: the canary moved or froze meanwhile; nothing changed"
            )),
            false,
        ));
    };
    canary.breaches += 1;
    if canary.breaches > limit {
        let n = canary.breaches;
        let words = freeze(rt, artifact, why)?;
        return Ok((
            Step::Changed(format!("{words} after {n} breaching checks in a row")),
            true,
        ));
    }
    Ok((
        Step::Changed(format!(
            "{artifact}: breach {} in a row ({why}); it freezes after {} in a row",
            canary.breaches,
            limit + 1
        )),
        false,
    ))
}

/// A check of the canary found no breach: the count of breaches in a row starts again.
pub fn not_breached(rt: &mut Runtime, artifact: &str) -> Step {
    match rt
        .artifacts
        .get_mut(artifact)
        .and_then(|r| r.canary.as_mut())
        .filter(|c| c.breaches > 0)
    {
        Some(c) => {
            c.breaches = 0;
            Step::Changed(format!(
                "{artifact}: a check without a breach; breaches in a row back to 0"
            ))
        }
        None => Step::Unchanged(String::new()),
    }
}

/// Freeze: stable for everyone at once, the canary kept for the record.
pub fn freeze(rt: &mut Runtime, artifact: &str, why: &str) -> Result<String, Refused> {
    let release = rt
        .artifacts
        .get_mut(artifact)
        .ok_or_else(|| Refused::Unknown(artifact.into()))?;
    release.frozen = true;
    release.frozen_because = Some(why.to_string());
    Ok(format!(
        "{artifact}: frozen, all traffic back on stable version {} ({why})",
        release.stable.version.text()
    ))
}

/// Roll back from version `from`: a rollout of `from` in progress (frozen or not) ends
/// and everyone gets stable; with none in progress and `from` stable, the previous
/// stable version becomes stable again. Compare-and-set: when `from` is neither the
/// canary nor stable (a second identical rollback, or one racing it), nothing changes
/// and the step says so — two rollbacks never go two versions back.
pub fn rollback(rt: &mut Runtime, artifact: &str, from: &Version) -> Result<Step, Refused> {
    let release = rt
        .artifacts
        .get_mut(artifact)
        .ok_or_else(|| Refused::Unknown(artifact.into()))?;
    let from = from.text();
    if release
        .canary
        .as_ref()
        .is_some_and(|c| c.version.text() == from)
    {
        release.frozen = false;
        release.frozen_because = None;
        release.canary = None;
        return Ok(Step::Changed(format!(
            "{artifact}: rolled back from version {from}: its rollout ended, stable version {} for everyone",
            release.stable.version.text()
        )));
    }
    if release.canary.is_some() || release.stable.version.text() != from {
        let now = match &release.canary {
            Some(c) => format!(
                "stable version {}, rolling out version {}",
                release.stable.version.text(),
                c.version.text()
            ),
            None => format!("stable version {}", release.stable.version.text()),
        };
        return Ok(Step::Unchanged(format!(
            "{artifact}: nothing to roll back from version {from}: it serves {now}; nothing changed"
        )));
    }
    let previous = release
        .history
        .pop()
        .ok_or_else(|| Refused::NoHistory(artifact.into()))?;
    let old = std::mem::replace(&mut release.stable, previous);
    Ok(Step::Changed(format!(
        "{artifact}: rolled back from version {} to version {}",
        old.version.text(),
        release.stable.version.text()
    )))
}

/// For tests: artifact `a` rolling out version 4 over stable 3, started at
/// 2026-01-07T09:00:00Z with the default thresholds and stages.
#[cfg(test)]
pub(crate) fn started() -> Runtime {
    let mut rt = Runtime::default();
    let v = |s: &str| Pinned {
        version: Version::Text(s.into()),
        fingerprint: None,
        commit: None,
    };
    start(&mut rt, "a", v("4"), Some(v("3")), "2026-01-07T09:00:00Z").expect("starts");
    rt
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pinned(v: &str) -> Pinned {
        Pinned {
            version: Version::Text(v.into()),
            fingerprint: None,
            commit: None,
        }
    }

    fn runtime() -> Runtime {
        let mut rt = Runtime::default();
        start(&mut rt, "support", pinned("4"), Some(pinned("3")), "t0").expect("starts");
        rt
    }

    #[test]
    fn walks_the_stages_then_promotes() {
        let mut rt = runtime();
        let stage = |rt: &Runtime| rt.artifacts["support"].canary.as_ref().map(|c| c.stage);
        assert_eq!(stage(&rt), Some(Stage::Internal));
        for expected in [Stage::LowRisk, Stage::Cohort, Stage::All] {
            let from = stage(&rt).expect("rolling out");
            advance(&mut rt, "support", from, "t1").expect("advances");
            assert_eq!(stage(&rt), Some(expected));
        }
        advance(&mut rt, "support", Stage::All, "t2").expect("promotes");
        let r = &rt.artifacts["support"];
        assert_eq!(r.stable.version.text(), "4");
        assert_eq!(r.history, vec![pinned("3")]);
        assert!(r.canary.is_none());
        // And back.
        let four = Version::Number(4);
        let three = Version::Number(3);
        assert!(matches!(
            rollback(&mut rt, "support", &four),
            Ok(Step::Changed(_))
        ));
        assert_eq!(rt.artifacts["support"].stable.version.text(), "3");
        assert_eq!(
            rollback(&mut rt, "support", &three),
            Err(Refused::NoHistory("support".into()))
        );
    }

    /// `advance --metrics` moved a canary on as soon as it had its samples, minutes
    /// into a stage: slow harm had no time to show.
    #[test]
    fn a_stage_bakes_its_min_bake_before_it_may_advance() {
        let mut rt = runtime();
        let at = |t: &str| t.parse::<jiff::Timestamp>().expect("time");
        if let Some(c) = rt
            .artifacts
            .get_mut("support")
            .and_then(|r| r.canary.as_mut())
        {
            c.since = "2026-01-07T09:00:00Z".into();
        }
        let r = &rt.artifacts["support"];
        assert_eq!(
            r.still_baking(at("2026-01-07T09:12:30Z")).as_deref(),
            Some("stage internal has baked 12m of 1h (`thresholds.min_bake`)")
        );
        assert_eq!(
            r.still_baking(at("2026-01-07T08:00:00Z")).as_deref(),
            Some("stage internal has baked 0s of 1h (`thresholds.min_bake`)")
        );
        assert_eq!(r.still_baking(at("2026-01-07T10:00:00Z")), None);
        for (text, ok) in [
            ("4h", true),
            ("1h 30m", true),
            ("PT4H", true),
            ("0s", true),
            ("-1h", false),
            ("4 hours later", false),
            ("", false),
        ] {
            assert_eq!(bake_time(text).is_ok(), ok, "{text:?}");
        }
    }

    #[test]
    fn refusals() {
        let mut rt = runtime();
        assert!(matches!(
            start(&mut rt, "support", pinned("5"), None, "t"),
            Err(Refused::Busy { .. })
        ));
        assert_eq!(
            start(&mut rt, "other", pinned("1"), None, "t"),
            Err(Refused::Unknown("other".into()))
        );
        freeze(&mut rt, "support", "fallback rate 9% > 5%").expect("freezes");
        assert!(matches!(
            advance(&mut rt, "support", Stage::Internal, "t"),
            Err(Refused::Frozen { .. })
        ));
        rollback(&mut rt, "support", &Version::Text("4".into())).expect("ends the rollout");
        assert_eq!(
            advance(&mut rt, "support", Stage::Internal, "t"),
            Err(Refused::NoCanary("support".into()))
        );
        assert!(matches!(
            start(&mut rt, "support", pinned("3"), None, "t"),
            Err(Refused::AlreadyStable { .. })
        ));
    }

    #[test]
    fn frozen_serves_stable_to_everyone() {
        let mut rt = runtime();
        // Internal stage: every internal request gets the canary, nobody else.
        assert_eq!(
            rt.resolve("support", "internal", "u1").as_deref(),
            Some("4")
        );
        assert_eq!(
            rt.resolve("support", "intent/refund", "u1").as_deref(),
            Some("3")
        );
        freeze(&mut rt, "support", "breach").expect("freezes");
        assert_eq!(
            rt.resolve("support", "internal", "u1").as_deref(),
            Some("3")
        );
        assert_eq!(rt.resolve("unknown", "internal", "u1"), None);
    }

    #[test]
    fn advance_and_rollback_act_only_on_the_state_they_name() {
        let mut rt = runtime();
        advance(&mut rt, "support", Stage::Internal, "t").expect("advances");
        // A second advance from the same stage: someone already moved it.
        assert!(matches!(
            advance(&mut rt, "support", Stage::Internal, "t"),
            Err(Refused::Moved { .. })
        ));
        assert_eq!(
            rt.artifacts["support"].canary.as_ref().map(|c| c.stage),
            Some(Stage::LowRisk)
        );
        let before = {
            rollback(&mut rt, "support", &Version::Number(4)).expect("ends it");
            rt.clone()
        };
        // The same rollback again: nothing to do, and nothing done.
        assert!(matches!(
            rollback(&mut rt, "support", &Version::Number(4)),
            Ok(Step::Unchanged(_))
        ));
        assert_eq!(rt, before);
    }

    proptest! {
        #[test]
        fn the_same_key_always_gets_the_same_version(key in ".{0,40}", segment in "[a-z/]{1,20}") {
            let mut rt = runtime();
            for from in [Stage::Internal, Stage::LowRisk] {
                advance(&mut rt, "support", from, "t").expect("advances");
            }
            let first = rt.resolve("support", &segment, &key);
            prop_assert_eq!(first, rt.resolve("support", &segment, &key));
        }

    }

    /// The buckets of 100,000 request keys, computed once.
    static BUCKETS: std::sync::LazyLock<Vec<u64>> = std::sync::LazyLock::new(|| {
        (0..100_000)
            .map(|i| bucket("support", &format!("user-{i}")))
            .collect()
    });

    proptest! {
        #[test]
        fn the_canary_share_is_its_percentage(percent in 0.0f64..=100.0) {
            // What `resolve` does with a bucket, over 100,000 keys.
            let canary = BUCKETS.iter().filter(|b| (**b as f64) < percent * 100.0).count();
            let share = canary as f64 * 100.0 / BUCKETS.len() as f64;
            prop_assert!((share - percent).abs() < 1.0, "{share} vs {percent}");
        }
    }

    /// Every user in the internal canary went back to stable when the rollout widened
    /// to low-risk intents. Now a key in the canary at one stage is in it at every
    /// later one, for 100,000 keys in every kind of segment.
    #[test]
    fn stages_are_cumulative() {
        let mut rt = runtime();
        if let Some(r) = rt.artifacts.get_mut("support") {
            let plan = |segments: &[&str], percent| StagePlan {
                segments: segments.iter().map(|s| s.to_string()).collect(),
                percent,
            };
            r.stages = PerStage {
                internal: plan(&["internal"], 100.0),
                low_risk: plan(&["intent/order-status", "intent/delivery"], 10.0),
                cohort: plan(&["geo/eu"], 50.0),
                all: plan(&["*"], 100.0),
            };
        }
        let segments = ["internal", "intent/delivery", "geo/eu", "intent/refund"];
        let mut in_canary: Vec<bool> = vec![false; 100_000 * segments.len()];
        for from in [Stage::Internal, Stage::LowRisk, Stage::Cohort, Stage::All] {
            let serving = Serving::new(&rt.artifacts["support"]);
            for (i, was) in in_canary.iter_mut().enumerate() {
                let key = i / segments.len();
                let segment = segments[i % segments.len()];
                // What `resolve` decides for `user-{key}`, its bucket computed once.
                let now = serving.canary_serves(&[segment], BUCKETS[key]);
                assert!(
                    now || !*was,
                    "user-{key} in {segment} left the canary at {from:?}"
                );
                *was = now;
            }
            if from != Stage::All {
                advance(&mut rt, "support", from, "t").expect("advances");
            }
        }
        // At the last stage, everyone.
        assert!(in_canary.iter().all(|c| *c));
    }

    /// The test vectors of the segment glob dialect (docs/release.md, "Segment globs"):
    /// (pattern, segment, matches).
    pub const GLOB_VECTORS: [(&str, &str, bool); 16] = [
        ("*", "", true),
        ("*", "geo/eu/paris", true),
        ("intent/*", "intent/refund", true),
        ("intent/*", "intent/refund/eu", true),
        ("intent/*", "Intent/refund", false),
        ("geo/?u", "geo/eu", true),
        ("geo/?u", "geo/euu", false),
        ("geo/[ef]u", "geo/fu", true),
        ("geo/[!e]u", "geo/eu", false),
        ("geo/[^e]u", "geo/fu", true),
        ("geo/[a-c]", "geo/b", true),
        ("{internal,staff}", "staff", true),
        ("{internal,staff}", "{internal,staff}", false),
        ("tier\\*", "tier*", true),
        ("tier\\*", "tier1", false),
        ("geo/eu", "geo/eu/paris", false),
    ];

    #[test]
    fn the_glob_dialect_follows_its_test_vectors() {
        for (pattern, segment, expected) in GLOB_VECTORS {
            assert_eq!(
                SegmentSet::new(&[pattern.to_string()]).matches(segment),
                expected,
                "{pattern:?} against {segment:?}"
            );
        }
        for bad in ["geo/[eu", "{a,b", "a\\"] {
            assert!(segment_glob(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resolve_uses_the_bucket() {
        let mut rt = runtime();
        if let Some(c) = rt
            .artifacts
            .get_mut("support")
            .and_then(|r| r.canary.as_mut())
        {
            c.segments = vec!["intent/*".into()];
            c.percent = 30.0;
        }
        for i in 0..2_000 {
            let key = format!("user-{i}");
            let expected = if bucket("support", &key) < 3_000 {
                "4"
            } else {
                "3"
            };
            assert_eq!(
                rt.resolve("support", "intent/refund", &key).as_deref(),
                Some(expected)
            );
            assert_eq!(rt.resolve("support", "billing", &key).as_deref(), Some("3"));
        }
    }
}
