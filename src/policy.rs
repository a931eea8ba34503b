//! The verdict: the `gate:` rules applied to the evidence. Pure: values in, one
//! [`Verdict`] out, every reason written for a reader.

use serde::{Deserialize, Serialize};

use crate::compare::artifact::{ArtifactEvidence, Monthly, Status};
use crate::compare::stats::format_p;
use crate::compare::{ALL, Comparison, Figures, SegmentRow, relative};
use crate::compare::{SegmentOutcome, stats};
use crate::config::{GateConfig, Inconclusive};
use crate::diag::Diagnostic;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Quality held and the budgets were kept (approvals still decide on a PR).
    Pass,
    /// Quality held, but cost or latency grew past budget: needs the trade-off label.
    NeedsTradeoff,
    /// A blocking regression, an invalid artifact or a missing version bump.
    Blocked,
    /// The gate could not decide: too many cases could not be evaluated, bad config.
    Error,
}

/// One rule that fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// The artifact it is about, if any.
    pub artifact: Option<String>,
    /// The config key behind it: `gate.max_segment_drop`, `gate.critical_segments`…
    pub rule: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub state: State,
    /// Why it blocks.
    pub reasons: Vec<Reason>,
    /// Why it could not decide.
    pub errors: Vec<Reason>,
    /// Budgets exceeded that the trade-off label can accept.
    pub tradeoffs: Vec<Reason>,
    /// Worth knowing, not blocking: drops within noise, unknown prices…
    pub notes: Vec<String>,
    /// The pull request changes no prompt artifact.
    pub nothing_changed: bool,
    /// Segments whose evidence neither shows a drop over the allowed one nor rules it
    /// out (`gate.inconclusive` decided what they do).
    #[serde(default)]
    pub inconclusive: usize,
}

impl Verdict {
    /// One line for a status description or a terminal.
    pub fn headline(&self) -> String {
        let first = |list: &[Reason]| {
            let more = list.len().saturating_sub(1);
            let text = list
                .first()
                .map_or_else(String::new, |r| match &r.artifact {
                    Some(a) => format!("{a}: {}", r.message),
                    None => r.message.clone(),
                });
            if more > 0 {
                format!("{text} (+{more} more)")
            } else {
                text
            }
        };
        match self.state {
            State::Pass if self.nothing_changed => NOTHING_CHANGED.to_string(),
            State::Pass => "evaluation passed".to_string(),
            State::NeedsTradeoff if self.inconclusive > 0 => format!(
                "inconclusive, needs trade-off approval: {}",
                first(&self.tradeoffs)
            ),
            State::NeedsTradeoff => format!("needs trade-off approval: {}", first(&self.tradeoffs)),
            State::Blocked => format!("blocked: {}", first(&self.reasons)),
            State::Error => format!("could not evaluate: {}", first(&self.errors)),
        }
    }
}

/// The note a pull request without artifact changes gets.
pub const NOTHING_CHANGED: &str = "no prompt artifact changed";

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

struct Collect<'a> {
    policy: &'a GateConfig,
    artifact: String,
    reasons: Vec<Reason>,
    errors: Vec<Reason>,
    tradeoffs: Vec<Reason>,
    notes: Vec<String>,
    /// The current artifact's inconclusive segments, in words.
    inconclusive: Vec<String>,
    inconclusive_total: usize,
}

/// Points for a reader: `83 points`, `4.5 points`.
fn plain_points(x: f64) -> String {
    format!("{} points", stats::format_points(x))
}

/// Why a segment is inconclusive, and what would settle it.
fn inconclusive_words(row: &SegmentRow, allowed: f64) -> String {
    let name = if row.name == ALL {
        "all cases together".to_string()
    } else {
        row.name.clone()
    };
    let n = row.paired;
    let more = if row.cases_needed > n as u64 {
        format!(
            "; {} cases would rule out {}",
            row.cases_needed,
            plain_points(allowed)
        )
    } else {
        String::new()
    };
    match row.drop {
        Some(drop) if drop > 0.005 => {
            let unconfirmed = if row.retested > 0 {
                format!(
                    "; answered again, {} of its {} flipped case(s) confirmed the drop",
                    row.confirmed, row.retested
                )
            } else {
                String::new()
            };
            format!(
                "{name} dropped {} on {n} case(s); that many cases cannot tell this from noise{unconfirmed}{more}",
                plain_points(drop)
            )
        }
        _ => format!(
            "{name}: no drop seen, but {n} case(s) can rule out only drops of {} or more{more}",
            plain_points(row.resolution)
        ),
    }
}

impl Collect<'_> {
    fn reason(&self, rule: &str, message: String) -> Reason {
        Reason {
            artifact: Some(self.artifact.clone()),
            rule: rule.to_string(),
            message,
        }
    }

    fn block(&mut self, rule: &str, message: String) {
        let r = self.reason(rule, message);
        self.reasons.push(r);
    }

    fn error(&mut self, rule: &str, message: String) {
        let r = self.reason(rule, message);
        self.errors.push(r);
    }

    fn tradeoff(&mut self, rule: &str, message: String) {
        let r = self.reason(rule, message);
        self.tradeoffs.push(r);
    }

    fn segment(&mut self, row: &SegmentRow, has_base: bool, failing: &[&str]) {
        let p = self.policy;
        let blocked_as_critical = row.critical && !failing.is_empty();
        match row.outcome {
            _ if !has_base => {}
            SegmentOutcome::Held => {}
            // Its newly failing cases block it below, by name: said once.
            SegmentOutcome::Regressed if blocked_as_critical => {}
            SegmentOutcome::Regressed => {
                let scope = if row.name == ALL {
                    ALL.to_string()
                } else {
                    format!("segment {}", row.name)
                };
                let rates = match (row.base_rate, row.head_rate) {
                    (Some(b), Some(h)) => format!("pass rate {} → {}, ", pct(b), pct(h)),
                    _ => String::new(),
                };
                let evidence = if row.retested > 0 {
                    format!(
                        "{} of {} flipped case(s) failed again when answered afresh",
                        row.confirmed, row.retested
                    )
                } else {
                    format!(
                        "{} of {} cases newly failing, beyond noise (sign test p {})",
                        row.pass_to_fail,
                        row.paired,
                        format_p(stats::sign_test_worse(
                            row.pass_to_fail as u64,
                            row.fail_to_pass as u64
                        ))
                    )
                };
                self.block(
                    "gate.max_segment_drop",
                    format!(
                        "{scope}: {rates}a drop of {} ({evidence}), over the {} allowed",
                        plain_points(row.drop.unwrap_or_default()),
                        plain_points(p.max_segment_drop)
                    ),
                );
            }
            // A critical segment blocked by its failing cases says so below.
            SegmentOutcome::Inconclusive if blocked_as_critical => {}
            SegmentOutcome::Inconclusive => self
                .inconclusive
                .push(inconclusive_words(row, p.max_segment_drop)),
        }
        if row.critical && !failing.is_empty() {
            let mut cases = failing
                .iter()
                .take(5)
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            if failing.len() > 5 {
                cases.push_str(&format!(" and {} more", failing.len() - 5));
            }
            let message = if has_base {
                format!(
                    "critical segment {}: {} case(s) newly failing ({cases}); any new failure here blocks",
                    row.name,
                    failing.len()
                )
            } else {
                format!(
                    "critical segment {} of a new artifact: {} case(s) failing ({cases})",
                    row.name,
                    failing.len()
                )
            };
            self.block("gate.critical_segments", message);
        }
    }

    /// The absolute floors: `min_pass_rate` for an artifact with no base version,
    /// `min_segment_pass_rate` for every head.
    fn floors(&mut self, c: &Comparison) {
        let p = self.policy;
        if !c.has_base
            && let Some(rate) = c.overall.head_rate
            && rate + 1e-12 < p.min_pass_rate
        {
            self.block(
                "gate.min_pass_rate",
                format!(
                    "a new artifact with no base version to compare with: pass rate {} on {} case(s), under the {} floor",
                    pct(rate),
                    c.overall.cases - c.overall.errors,
                    pct(p.min_pass_rate)
                ),
            );
        }
        for (pattern, floor) in &p.min_segment_pass_rate {
            // A pattern that does not parse is the config's problem, reported there.
            let Ok(globs) = crate::repo::build_globs(std::slice::from_ref(pattern)) else {
                continue;
            };
            for row in c.segments.iter().filter(|r| globs.is_match(&r.name)) {
                if let Some(rate) = row.head_rate
                    && rate + 1e-12 < *floor
                {
                    self.block(
                        "gate.min_segment_pass_rate",
                        format!(
                            "segment {}: pass rate {} on the head, under the {} floor set for `{pattern}`",
                            row.name,
                            pct(rate),
                            pct(*floor)
                        ),
                    );
                }
            }
        }
    }

    /// The artifact's inconclusive segments, as `gate.inconclusive` says.
    fn settle_inconclusive(&mut self) {
        if self.inconclusive.is_empty() {
            return;
        }
        let list = std::mem::take(&mut self.inconclusive);
        self.inconclusive_total += list.len();
        let message = format!(
            "{} segment(s) inconclusive: {}",
            list.len(),
            list.join("; ")
        );
        match self.policy.inconclusive {
            Inconclusive::Block => self.block("gate.inconclusive", message),
            Inconclusive::Review => self.tradeoff("gate.inconclusive", message),
            Inconclusive::Pass => {
                let note = format!("{}: {message}", self.artifact);
                self.notes.push(note);
            }
        }
    }

    fn budgets(&mut self, c: &Comparison, monthly: Option<&Monthly>) {
        let p = self.policy;
        let (base, head) = (&c.base, &c.head);
        let cost = relative(
            base.spend.cost_per_1k_requests_usd,
            head.spend.cost_per_1k_requests_usd,
        );
        let (measure, change) = match cost {
            Some(change) => ("cost per 1,000 requests", Some(change)),
            None => {
                if base.conversations > 0 && base.spend.cost_usd.is_none() {
                    self.notes.push(format!(
                        "{}: the model has no price in `pricing`: tokens per conversation stand in for cost",
                        self.artifact
                    ));
                }
                (
                    "tokens per conversation",
                    relative(
                        base.tokens_per_conversation(),
                        head.tokens_per_conversation(),
                    ),
                )
            }
        };
        if let Some(change) = change
            && change > p.max_cost_increase + 1e-12
        {
            self.tradeoff(
                "gate.max_cost_increase",
                format!(
                    "{measure} {:+.1}% (budget +{:.0}%){}",
                    change * 100.0,
                    p.max_cost_increase * 100.0,
                    monthly.map_or_else(String::new, |m| format!(": {}", m.words()))
                ),
            );
        }
        if let Some(change) = relative(base.spend.latency_p95_ms, head.spend.latency_p95_ms)
            && change > p.max_latency_p95_increase + 1e-12
        {
            self.tradeoff(
                "gate.max_latency_p95_increase",
                format!(
                    "latency p95 {} → {} ({:+.1}%, budget +{:.0}%)",
                    ms(base),
                    ms(head),
                    change * 100.0,
                    p.max_latency_p95_increase * 100.0
                ),
            );
        }
    }
}

fn ms(f: &Figures) -> String {
    f.spend
        .latency_p95_ms
        .map_or("–".into(), |v| format!("{v:.0} ms"))
}

/// Apply `policy` to the evidence. `config_problems` are problems with the config the
/// policy came from: the gate cannot decide on a broken policy.
pub fn decide(
    policy: &GateConfig,
    artifacts: &[ArtifactEvidence],
    config_problems: &[Diagnostic],
) -> Verdict {
    let mut all = Collect {
        policy,
        artifact: String::new(),
        reasons: Vec::new(),
        errors: Vec::new(),
        tradeoffs: Vec::new(),
        notes: Vec::new(),
        inconclusive: Vec::new(),
        inconclusive_total: 0,
    };
    if let Some(first) = config_problems.first() {
        all.errors.push(Reason {
            artifact: None,
            rule: "config".into(),
            message: format!(
                "the config has {} problem(s), first: {first}",
                config_problems.len()
            ),
        });
    }
    for a in artifacts {
        all.artifact = a.change.id.clone();
        match a.status {
            Status::Deleted => {
                all.notes
                    .push(format!("{}: deleted; not evaluated", a.change.id));
                continue;
            }
            Status::Unchanged => continue,
            Status::Invalid => {
                let first = a
                    .change
                    .problems
                    .first()
                    .map_or_else(|| "it does not load".to_string(), ToString::to_string);
                all.block("invalid", format!("the artifact is invalid: {first}"));
                continue;
            }
            Status::Compared | Status::HeadOnly => {}
        }
        if policy.require_version_bump && a.change.missing_version_bump {
            let version = a
                .change
                .head
                .as_ref()
                .and_then(|h| h.version.clone())
                .unwrap_or_default();
            all.block(
                "gate.require_version_bump",
                format!("behaviour changed but version is still {version}: bump it"),
            );
        }
        let Some(c) = &a.comparison else {
            all.error("evaluation", "the artifact was not evaluated".into());
            continue;
        };
        if c.error_rate > policy.max_error_rate + 1e-12 {
            all.error(
                "gate.max_error_rate",
                format!(
                    "{} of {} case(s) could not be evaluated ({}, budget {})",
                    c.errored.len(),
                    c.overall.cases,
                    pct(c.error_rate),
                    pct(policy.max_error_rate)
                ),
            );
        }
        if c.unjudged_rate > policy.max_unjudged_rate + 1e-12 {
            let ids: Vec<&str> = c.unjudged.iter().take(5).map(|n| n.id.as_str()).collect();
            let more = c.unjudged.len().saturating_sub(ids.len());
            all.error(
                "gate.max_unjudged_rate",
                format!(
                    "{} case(s) have no assertion promptgate could judge ({}{}), {} against the {} allowed: an unjudged case is not a pass",
                    c.unjudged.len(),
                    ids.join(", "),
                    if more > 0 { format!(" and {more} more") } else { String::new() },
                    pct(c.unjudged_rate),
                    pct(policy.max_unjudged_rate)
                ),
            );
        }
        let flips = if c.has_base {
            &c.regressions
        } else {
            &c.failures
        };
        // With one segment, "all cases" is that segment again: judged once.
        let overall_repeats = matches!(&c.segments[..], [only] if only.cases == c.overall.cases);
        let rows = std::iter::once(&c.overall).filter(|_| !overall_repeats);
        for row in rows.chain(&c.segments) {
            let failing: Vec<&str> = flips
                .iter()
                .filter(|f| f.segments.contains(&row.name))
                .map(|f| f.id.as_str())
                .collect();
            all.segment(row, c.has_base, &failing);
        }
        all.settle_inconclusive();
        all.floors(c);
        if c.has_base {
            all.budgets(c, a.monthly.as_ref());
        }
        if !c.deleted_cases.is_empty() {
            use crate::eval::result::Outcome;
            let count = |o: Outcome| c.deleted_cases.iter().filter(|d| d.base == Some(o)).count();
            let (failing, errored) = (count(Outcome::Fail), count(Outcome::Error));
            let mut note = format!(
                "{}: the pull request deletes {} case(s), {failing} of them failing on base",
                a.change.id,
                c.deleted_cases.len()
            );
            if errored > 0 {
                note.push_str(&format!(" and {errored} not evaluated there"));
            }
            all.notes.push(note);
        }
    }
    let state = if !all.reasons.is_empty() {
        State::Blocked
    } else if !all.errors.is_empty() {
        State::Error
    } else if !all.tradeoffs.is_empty() {
        State::NeedsTradeoff
    } else {
        State::Pass
    };
    Verdict {
        state,
        reasons: all.reasons,
        errors: all.errors,
        tradeoffs: all.tradeoffs,
        notes: all.notes,
        nothing_changed: artifacts.is_empty(),
        inconclusive: all.inconclusive_total,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use globset::{Glob, GlobSet, GlobSetBuilder};

    use super::*;
    use crate::changes::{ArtifactChange, ChangeKind, Side};
    use crate::diag::Pos;
    use crate::eval::result::{ArtifactRun, CaseResult, Outcome, RunInfo, Sample, Source};

    const P: Outcome = Outcome::Pass;
    const F: Outcome = Outcome::Fail;
    const E: Outcome = Outcome::Error;

    /// What every sample of one side costs.
    #[derive(Clone, Copy)]
    struct Usage {
        cost_usd: Option<f64>,
        latency_ms: f64,
        output_tokens: u64,
    }

    const USUAL: Usage = Usage {
        cost_usd: Some(0.001),
        latency_ms: 400.0,
        output_tokens: 20,
    };

    /// A case: id, segment, base outcome, head outcome.
    type Row = (String, String, Outcome, Outcome);

    /// `n` cases of `segment` for each `(n, base, head)`, ids `segment-i`.
    fn rows(segment: &str, groups: &[(usize, Outcome, Outcome)]) -> Vec<Row> {
        let mut out = Vec::new();
        for &(n, b, h) in groups {
            for _ in 0..n {
                let id = format!("{segment}-{}", out.len());
                out.push((id, segment.to_string(), b, h));
            }
        }
        out
    }

    fn sample(outcome: Outcome, u: Usage) -> Sample {
        if outcome == E {
            return Sample::error("provider down".into());
        }
        Sample {
            outcome,
            error: None,
            text: "Your refund is on its way.".into(),
            latency_ms: Some(u.latency_ms),
            input_tokens: 100,
            output_tokens: u.output_tokens,
            cost_usd: u.cost_usd,
            requests: 1,
            source: Source::Replay,
            assertions: vec![crate::eval::result::Judged::decided(outcome)],
            ..Sample::error(String::new())
        }
    }

    fn run(version: &str, cases: Vec<(String, String, Outcome)>, u: Usage) -> ArtifactRun {
        ArtifactRun {
            artifact: RunInfo {
                id: "support.assistant".into(),
                path: "prompts/support.prompt.yaml".into(),
                version: Some(version.into()),
                fingerprint: format!("sha256:{version}"),
                provider: "recorded".into(),
                model: "m".into(),
                repeats: 1,
                cases_digest: String::new(),
            },
            segments: BTreeMap::new(),
            shard: None,
            cases: cases
                .into_iter()
                .enumerate()
                .map(|(i, (id, segment, o))| {
                    let file = "evals/support.cases.jsonl".to_string();
                    CaseResult::new(id, vec![segment], file, i + 1, vec![sample(o, u)])
                })
                .collect(),
        }
    }

    fn change(kind: ChangeKind) -> ArtifactChange {
        let side = |v: &str| Side {
            path: "prompts/support.prompt.yaml".into(),
            version: Some(v.into()),
            fingerprint: Some(format!("sha256:{v}")),
        };
        ArtifactChange {
            id: "support.assistant".into(),
            kind,
            base: (kind != ChangeKind::Added).then(|| side("3")),
            head: (kind != ChangeKind::Deleted).then(|| side("4")),
            behaviour_changed: true,
            evals_changed: false,
            missing_version_bump: false,
            fields: Vec::new(),
            message_diff: None,
            changed_references: Vec::new(),
            problems: Vec::new(),
        }
    }

    fn critical() -> GlobSet {
        let mut b = GlobSetBuilder::new();
        for g in GateConfig::default().critical_segments {
            b.add(Glob::new(&g).expect("a valid glob"));
        }
        b.build().expect("globs build")
    }

    /// Evidence of `status` from the given runs; the base's cases are its eval set.
    fn evidence(
        status: Status,
        base: Option<ArtifactRun>,
        head: Option<ArtifactRun>,
    ) -> ArtifactEvidence {
        let kind = match status {
            Status::HeadOnly => ChangeKind::Added,
            Status::Deleted => ChangeKind::Deleted,
            _ => ChangeKind::Modified,
        };
        let base_ids: Vec<String> = base
            .iter()
            .flat_map(|r| r.cases.iter().map(|c| c.id.clone()))
            .collect();
        ArtifactEvidence::new(
            change(kind),
            status,
            Vec::new(),
            (base, head),
            &base_ids,
            &critical(),
            0.05,
        )
    }

    fn priced(cases: &[Row], base: Usage, head: Usage) -> ArtifactEvidence {
        let side = |head_side: bool| {
            cases
                .iter()
                .map(|(id, s, b, h)| (id.clone(), s.clone(), if head_side { *h } else { *b }))
                .collect::<Vec<_>>()
        };
        evidence(
            Status::Compared,
            Some(run("3", side(false), base)),
            Some(run("4", side(true), head)),
        )
    }

    fn compared(cases: &[Row]) -> ArtifactEvidence {
        priced(cases, USUAL, USUAL)
    }

    /// Enough unchanged cases for a segment to rule out the default 5-point drop.
    const HELD: usize = 100;

    /// Evidence where every flipped case was answered `fresh` more times on each side:
    /// `reproduced` repeats each side's first outcome, otherwise both sides pass.
    fn retested(cases: &[Row], fresh: usize, reproduced: bool) -> ArtifactEvidence {
        let side = |head_side: bool| {
            let mut r = run(
                if head_side { "4" } else { "3" },
                cases
                    .iter()
                    .map(|(id, s, b, h)| (id.clone(), s.clone(), if head_side { *h } else { *b }))
                    .collect(),
                USUAL,
            );
            for (case, (_, _, b, h)) in r.cases.iter_mut().zip(cases) {
                if b != h {
                    let o = match (reproduced, head_side) {
                        (false, _) => P,
                        (true, true) => *h,
                        (true, false) => *b,
                    };
                    case.confirmations = (0..fresh).map(|_| sample(o, USUAL)).collect();
                }
            }
            r
        };
        evidence(Status::Compared, Some(side(false)), Some(side(true)))
    }

    fn decide_default(artifacts: &[ArtifactEvidence]) -> Verdict {
        decide(&GateConfig::default(), artifacts, &[])
    }

    fn rules(list: &[Reason]) -> Vec<&str> {
        list.iter().map(|r| r.rule.as_str()).collect()
    }

    #[test]
    fn nothing_changed_passes_and_says_so() {
        let v = decide_default(&[]);
        assert_eq!(v.state, State::Pass);
        assert!(v.nothing_changed);
        assert_eq!(v.headline(), NOTHING_CHANGED);
    }

    #[test]
    fn an_unchanged_artifact_passes_but_is_not_nothing_changed() {
        let v = decide_default(&[evidence(Status::Unchanged, None, None)]);
        assert_eq!(v.state, State::Pass);
        assert!(!v.nothing_changed);
        assert!(v.reasons.is_empty() && v.errors.is_empty() && v.notes.is_empty());
    }

    #[test]
    fn a_clean_comparison_passes() {
        let v = decide_default(&[compared(&rows("billing", &[(HELD, P, P)]))]);
        assert_eq!(v.state, State::Pass, "{v:?}");
        assert!(!v.nothing_changed);
        assert_eq!(v.headline(), "evaluation passed");
    }

    #[test]
    fn an_invalid_artifact_blocks_with_its_first_problem() {
        let mut e = evidence(Status::Invalid, None, None);
        e.change.problems = vec![
            Diagnostic::new(
                "prompts/support.prompt.yaml",
                Pos::new(2, 1),
                "unknown field",
            ),
            Diagnostic::new("prompts/support.prompt.yaml", Pos::new(9, 1), "second"),
        ];
        let v = decide_default(&[e]);
        assert_eq!(v.state, State::Blocked);
        assert_eq!(rules(&v.reasons), ["invalid"]);
        assert_eq!(v.reasons[0].artifact.as_deref(), Some("support.assistant"));
        assert!(v.reasons[0].message.contains("2:1: unknown field"), "{v:?}");
        assert!(!v.reasons[0].message.contains("second"));

        let v = decide_default(&[evidence(Status::Invalid, None, None)]);
        assert_eq!(rules(&v.reasons), ["invalid"]);
        assert!(v.reasons[0].message.contains("it does not load"));
    }

    #[test]
    fn a_missing_version_bump_blocks_only_when_required() {
        let mut e = compared(&rows("billing", &[(HELD, P, P)]));
        e.change.missing_version_bump = true;
        let v = decide_default(std::slice::from_ref(&e));
        assert_eq!(v.state, State::Blocked);
        assert_eq!(rules(&v.reasons), ["gate.require_version_bump"]);
        assert!(v.reasons[0].message.contains("version is still 4"));

        let lenient = GateConfig {
            require_version_bump: false,
            ..GateConfig::default()
        };
        assert_eq!(decide(&lenient, &[e], &[]).state, State::Pass);
    }

    #[test]
    fn a_deleted_artifact_is_a_note_not_a_block() {
        let mut e = evidence(Status::Deleted, None, None);
        e.change.missing_version_bump = true;
        let v = decide_default(&[e]);
        assert_eq!(v.state, State::Pass);
        assert!(v.reasons.is_empty() && v.errors.is_empty());
        assert_eq!(v.notes, ["support.assistant: deleted; not evaluated"]);
    }

    #[test]
    fn config_problems_make_it_an_error() {
        let problems = [
            Diagnostic::new(".promptgate.yaml", Pos::new(3, 5), "bad drop"),
            Diagnostic::new(".promptgate.yaml", Pos::new(4, 5), "bad rate"),
        ];
        let v = decide(&GateConfig::default(), &[], &problems);
        assert_eq!(v.state, State::Error);
        assert_eq!(rules(&v.errors), ["config"]);
        assert_eq!(v.errors[0].artifact, None);
        assert!(v.errors[0].message.contains("2 problem(s)"));
        assert!(v.errors[0].message.contains("bad drop"));
        assert!(v.headline().starts_with("could not evaluate: "));
    }

    #[test]
    fn an_artifact_that_was_not_evaluated_is_an_error() {
        let v = decide_default(&[evidence(Status::Compared, None, None)]);
        assert_eq!(v.state, State::Error);
        assert_eq!(rules(&v.errors), ["evaluation"]);
    }

    #[test]
    fn a_critical_case_that_flips_blocks() {
        // One flip: within noise everywhere, but any new failure in a critical segment
        // blocks.
        let mut cases = rows("billing", &[(9, P, P)]);
        cases.extend(rows("hard-negative/jailbreak", &[(1, P, F)]));
        let v = decide_default(&[compared(&cases)]);
        assert_eq!(v.state, State::Blocked, "{v:?}");
        assert_eq!(rules(&v.reasons), ["gate.critical_segments"]);
        let message = &v.reasons[0].message;
        assert!(message.contains("critical segment hard-negative/jailbreak"));
        assert!(message.contains("hard-negative/jailbreak-0"), "{message}");
        // The critical segment is not also called inconclusive; the small billing
        // segment and all cases together are.
        assert_eq!(rules(&v.tradeoffs), ["gate.inconclusive"]);
        let inconclusive = &v.tradeoffs[0].message;
        assert!(
            inconclusive.starts_with("2 segment(s) inconclusive"),
            "{inconclusive}"
        );
        assert!(!inconclusive.contains("jailbreak"), "{inconclusive}");
    }

    #[test]
    fn a_failing_critical_case_of_a_new_artifact_blocks() {
        let mut cases = rows("billing", &[(9, P, P)]);
        cases.extend(rows("hard-negative/jailbreak", &[(1, P, F)]));
        let head = cases
            .iter()
            .map(|(id, s, _, h)| (id.clone(), s.clone(), *h))
            .collect();
        let v = decide_default(&[evidence(
            Status::HeadOnly,
            None,
            Some(run("1", head, USUAL)),
        )]);
        assert_eq!(v.state, State::Blocked);
        assert_eq!(rules(&v.reasons), ["gate.critical_segments"]);
        assert!(v.reasons[0].message.contains("of a new artifact"));
    }

    #[test]
    fn a_new_artifact_is_held_to_the_floor() {
        let head = |failing: usize| {
            rows("billing", &[(10 - failing, P, P), (failing, P, F)])
                .into_iter()
                .map(|(id, s, _, h)| (id, s, h))
                .collect()
        };
        let added =
            |failing| evidence(Status::HeadOnly, None, Some(run("1", head(failing), USUAL)));
        // 5 of 10 failing: 50% against the 80% floor.
        let v = decide_default(&[added(5)]);
        assert_eq!(v.state, State::Blocked, "{v:?}");
        assert_eq!(rules(&v.reasons), ["gate.min_pass_rate"]);
        assert!(
            v.reasons[0]
                .message
                .contains("pass rate 50.0% on 10 case(s), under the 80.0% floor"),
            "{}",
            v.reasons[0].message
        );
        // Every case failing: the collapse of a new prompt never passes.
        assert_eq!(decide_default(&[added(10)]).state, State::Blocked);
        // 1 of 10: 90%, over the floor; no base, so nothing inconclusive either.
        let v = decide_default(&[added(1)]);
        assert_eq!(v.state, State::Pass, "{v:?}");
    }

    #[test]
    fn a_case_no_assertion_could_judge_is_never_a_pass() {
        let mut e = compared(&rows("billing", &[(HELD, P, P)]));
        // Its only assertion needs a judge that is not configured: no verdict on it.
        let head = e.head_run.as_mut().expect("a head run");
        head.cases[0].samples[0].assertions[0].verdict =
            crate::eval::assertions::Judgement::Unjudged {
                reason: "llm-rubric: no judge configured".into(),
            };
        let e = evidence(Status::Compared, e.base_run.clone(), e.head_run.clone());
        let v = decide_default(std::slice::from_ref(&e));
        assert_eq!(v.state, State::Error, "{v:?}");
        assert_eq!(rules(&v.errors), ["gate.max_unjudged_rate"]);
        assert!(
            v.errors[0]
                .message
                .starts_with("1 case(s) have no assertion promptgate could judge (billing-0)"),
            "{}",
            v.errors[0].message
        );
        let tolerant = GateConfig {
            max_unjudged_rate: 0.05,
            ..GateConfig::default()
        };
        assert_eq!(decide(&tolerant, &[e], &[]).state, State::Pass);
    }

    #[test]
    fn a_segment_floor_holds_every_head() {
        let floors = GateConfig {
            min_segment_pass_rate: [("intent/*".to_string(), 0.95)].into(),
            ..GateConfig::default()
        };
        // The base failed the same case: no regression, but under the floor.
        let mut cases = rows("intent/refund", &[(HELD - 10, P, P), (10, F, F)]);
        cases.extend(rows("billing", &[(HELD, F, F)]));
        let v = decide(&floors, &[compared(&cases)], &[]);
        assert_eq!(v.state, State::Blocked, "{v:?}");
        assert_eq!(rules(&v.reasons), ["gate.min_segment_pass_rate"]);
        assert!(
            v.reasons[0]
                .message
                .starts_with("segment intent/refund: pass rate 90.0%")
        );
    }

    #[test]
    fn a_confirmed_drop_over_max_segment_drop_blocks() {
        // 6 of 10 billing cases fail on head, and fail again when answered afresh.
        let mut cases = rows("billing", &[(6, P, F), (4, P, P)]);
        cases.extend(rows("shipping", &[(HELD, P, P)]));
        let v = decide_default(&[retested(&cases, 5, true)]);
        assert_eq!(v.state, State::Blocked, "{v:?}");
        let billing = v
            .reasons
            .iter()
            .find(|r| r.message.starts_with("segment billing"))
            .expect("a reason for billing");
        assert_eq!(billing.rule, "gate.max_segment_drop");
        assert_eq!(
            billing.message,
            "segment billing: pass rate 100.0% → 40.0%, a drop of 60 points (6 of 6 flipped case(s) failed again when answered afresh), over the 5 points allowed"
        );
        assert!(!v.reasons.iter().any(|r| r.message.contains("shipping")));
    }

    #[test]
    fn a_five_case_collapse_blocks_once_confirmed_and_is_never_held() {
        let cases = rows("intent/delivery", &[(5, P, F)]);
        let v = decide_default(&[retested(&cases, 5, true)]);
        assert_eq!(v.state, State::Blocked, "{v:?}");
        assert!(rules(&v.reasons).contains(&"gate.max_segment_drop"));
        // Without fresh answers the five flips alone cannot be told from noise at the
        // share of the alpha each row gets: inconclusive, which needs a reviewer.
        let v = decide_default(&[compared(&cases)]);
        assert_eq!(v.state, State::NeedsTradeoff, "{v:?}");
        // One segment: "all cases" is the same cases, judged once.
        assert_eq!(v.inconclusive, 1);
        assert!(
            v.tradeoffs[0]
                .message
                .contains("intent/delivery dropped 100 points on 5 case(s); that many cases cannot tell this from noise"),
            "{}",
            v.tradeoffs[0].message
        );
        assert!(
            v.headline()
                .starts_with("inconclusive, needs trade-off approval: ")
        );
    }

    #[test]
    fn flips_that_do_not_reproduce_are_not_a_drop() {
        // 3 flips among 100 cases, and both sides pass every fresh answer.
        let cases = rows("billing", &[(3, P, F), (HELD - 3, P, P)]);
        let v = decide_default(&[retested(&cases, 5, false)]);
        assert_eq!(v.state, State::Pass, "{v:?}");
        assert_eq!(v.inconclusive, 0);
    }

    #[test]
    fn without_fresh_answers_many_flips_one_way_are_beyond_noise() {
        let cases = rows("billing", &[(20, P, F), (HELD - 20, P, P)]);
        let v = decide_default(&[compared(&cases)]);
        assert_eq!(v.state, State::Blocked, "{v:?}");
        assert!(
            v.reasons[0]
                .message
                .contains("20 of 100 cases newly failing, beyond noise (sign test p <0.001)"),
            "{}",
            v.reasons[0].message
        );
    }

    #[test]
    fn a_segment_too_small_to_rule_out_the_allowed_drop_is_inconclusive() {
        let cases = rows("billing", &[(10, P, P)]);
        let v = decide_default(&[compared(&cases)]);
        assert_eq!(v.state, State::NeedsTradeoff, "{v:?}");
        assert_eq!(rules(&v.tradeoffs), ["gate.inconclusive"]);
        assert!(
            v.tradeoffs[0].message.contains(
                "billing: no drop seen, but 10 case(s) can rule out only drops of 26 points or more; 59 cases would rule out 5 points"
            ),
            "{}",
            v.tradeoffs[0].message
        );
        // The policy decides what inconclusive does.
        let with = |inconclusive| GateConfig {
            inconclusive,
            ..GateConfig::default()
        };
        let v = decide(&with(Inconclusive::Block), &[compared(&cases)], &[]);
        assert_eq!(v.state, State::Blocked);
        assert_eq!(rules(&v.reasons), ["gate.inconclusive"]);
        let v = decide(&with(Inconclusive::Pass), &[compared(&cases)], &[]);
        assert_eq!(v.state, State::Pass);
        assert_eq!(v.inconclusive, 1);
        assert!(
            v.notes[0].contains("1 segment(s) inconclusive"),
            "{:?}",
            v.notes
        );
    }

    #[test]
    fn a_drop_within_max_segment_drop_holds_when_the_bound_is_within_it_too() {
        // 1 of 100 newly failing, confirmed: at most 4.7 points at 95%, within 5.
        let one = rows("billing", &[(1, P, F), (HELD - 1, P, P)]);
        let v = decide_default(&[retested(&one, 5, true)]);
        assert_eq!(v.state, State::Pass, "{v:?}");
        // 3 of 100: 3 points seen, but up to 7.6 possible: inconclusive.
        let three = rows("billing", &[(3, P, F), (HELD - 3, P, P)]);
        let v = decide_default(&[retested(&three, 5, true)]);
        assert_eq!(v.state, State::NeedsTradeoff, "{v:?}");
        assert!(
            v.tradeoffs[0]
                .message
                .contains("billing dropped 3 points on 100 case(s)")
        );
    }

    #[test]
    fn an_error_rate_over_the_limit_is_an_error() {
        // 1 of 10 cases errored on head: 10% against the 2% default.
        let cases = rows("billing", &[(1, P, E), (9, P, P)]);
        let v = decide_default(&[compared(&cases)]);
        assert_eq!(v.state, State::Error, "{v:?}");
        assert_eq!(rules(&v.errors), ["gate.max_error_rate"]);
        assert!(v.errors[0].message.starts_with("1 of 10 case(s)"));
        assert!(v.errors[0].message.contains("(10.0%, budget 2.0%)"));

        let tolerant = GateConfig {
            max_error_rate: 0.1,
            inconclusive: Inconclusive::Pass,
            ..GateConfig::default()
        };
        assert_eq!(
            decide(&tolerant, &[compared(&cases)], &[]).state,
            State::Pass
        );
    }

    #[test]
    fn cost_over_budget_needs_a_tradeoff() {
        let cases = rows("billing", &[(HELD, P, P)]);
        let dearer = |cost| Usage {
            cost_usd: Some(cost),
            ..USUAL
        };
        // +20% against the 15% budget.
        let v = decide_default(&[priced(&cases, USUAL, dearer(0.0012))]);
        assert_eq!(v.state, State::NeedsTradeoff, "{v:?}");
        assert_eq!(rules(&v.tradeoffs), ["gate.max_cost_increase"]);
        assert!(
            v.tradeoffs[0]
                .message
                .starts_with("cost per 1,000 requests +20.0%")
        );
        assert!(v.headline().starts_with("needs trade-off approval: "));
        // +10%: within budget.
        let v = decide_default(&[priced(&cases, USUAL, dearer(0.0011))]);
        assert_eq!(v.state, State::Pass, "{v:?}");
    }

    #[test]
    fn latency_p95_over_budget_needs_a_tradeoff() {
        let cases = rows("billing", &[(HELD, P, P)]);
        let slower = |latency_ms| Usage {
            latency_ms,
            ..USUAL
        };
        // +30% against the 25% budget.
        let v = decide_default(&[priced(&cases, USUAL, slower(520.0))]);
        assert_eq!(v.state, State::NeedsTradeoff, "{v:?}");
        assert_eq!(rules(&v.tradeoffs), ["gate.max_latency_p95_increase"]);
        assert!(v.tradeoffs[0].message.contains("400 ms → 520 ms"));
        let v = decide_default(&[priced(&cases, USUAL, slower(480.0))]);
        assert_eq!(v.state, State::Pass, "{v:?}");
    }

    #[test]
    fn without_prices_tokens_per_conversation_stand_in_for_cost() {
        let cases = rows("billing", &[(HELD, P, P)]);
        let unpriced = Usage {
            cost_usd: None,
            ..USUAL
        };
        let v = decide_default(&[priced(&cases, unpriced, unpriced)]);
        assert_eq!(v.state, State::Pass);
        assert!(v.notes.iter().any(|n| n.contains("has no price")), "{v:?}");
        // 120 → 160 tokens per conversation: +33%.
        let wordier = Usage {
            output_tokens: 60,
            ..unpriced
        };
        let v = decide_default(&[priced(&cases, unpriced, wordier)]);
        assert_eq!(v.state, State::NeedsTradeoff, "{v:?}");
        assert!(
            v.tradeoffs[0]
                .message
                .starts_with("tokens per conversation +33.3%")
        );
    }

    #[test]
    fn deleted_cases_are_noted_with_how_base_did() {
        let e = compared(&rows("billing", &[(HELD, P, P)]));
        let mut base = e.base_run.clone().expect("a base run");
        let head = e.head_run.clone();
        let extra = run(
            "3",
            vec![
                ("gone-0".into(), "billing".into(), F),
                ("gone-1".into(), "billing".into(), E),
                ("gone-2".into(), "billing".into(), P),
            ],
            USUAL,
        );
        base.cases.extend(extra.cases);
        let v = decide_default(&[evidence(Status::Compared, Some(base), head)]);
        assert_eq!(v.state, State::Pass, "{v:?}");
        assert_eq!(
            v.notes,
            [
                "support.assistant: the pull request deletes 3 case(s), 1 of them failing on base and 1 not evaluated there"
            ]
        );
    }

    #[test]
    fn a_block_outranks_an_error_and_an_error_outranks_a_tradeoff() {
        let cases = rows("billing", &[(HELD, P, P)]);
        let dearer = Usage {
            cost_usd: Some(0.01),
            ..USUAL
        };
        let tradeoff = priced(&cases, USUAL, dearer);
        let problem = [Diagnostic::new(".promptgate.yaml", Pos::START, "bad")];
        let gate = GateConfig::default();

        let v = decide(&gate, std::slice::from_ref(&tradeoff), &problem);
        assert_eq!(v.state, State::Error);
        assert_eq!(v.tradeoffs.len(), 1, "the trade-off is still listed");

        let invalid = evidence(Status::Invalid, None, None);
        let v = decide(&gate, &[tradeoff, invalid], &problem);
        assert_eq!(v.state, State::Blocked);
        assert_eq!((v.errors.len(), v.tradeoffs.len()), (1, 1));
    }
}
