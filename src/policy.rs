//! The verdict: the `gate:` rules applied to the evidence. Pure: values in, one
//! [`Verdict`] out, every reason written for a reader.

use serde::{Deserialize, Serialize};

use crate::compare::artifact::{ArtifactEvidence, Status};
use crate::compare::stats::format_p;
use crate::compare::{ALL, Comparison, Figures, SegmentRow, relative};
use crate::config::GateConfig;
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

fn points(x: f64) -> String {
    format!("{:+.1} points", x * 100.0)
}

struct Collect<'a> {
    policy: &'a GateConfig,
    artifact: String,
    reasons: Vec<Reason>,
    errors: Vec<Reason>,
    tradeoffs: Vec<Reason>,
    notes: Vec<String>,
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
        if let (true, Some(delta), Some(b), Some(h)) =
            (has_base, row.delta, row.base_rate, row.head_rate)
            && -delta > p.max_segment_drop + 1e-12
        {
            let scope = if row.name == ALL {
                ALL.to_string()
            } else {
                format!("segment {}", row.name)
            };
            let what = format!(
                "{scope}: pass rate {} → {} ({}, {} of {} cases newly failing)",
                pct(b),
                pct(h),
                points(delta),
                row.pass_to_fail,
                row.paired
            );
            if row.beyond_noise {
                self.block(
                    "gate.max_segment_drop",
                    format!(
                        "{what}: beyond noise (McNemar p {}) and over the {} allowed drop",
                        format_p(row.p_value),
                        points(p.max_segment_drop).trim_start_matches('+')
                    ),
                );
            } else if !row.critical || failing.is_empty() {
                self.notes.push(format!(
                    "{}: {what}: within noise (McNemar p {}), so it does not block",
                    self.artifact,
                    format_p(row.p_value)
                ));
            }
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

    fn budgets(&mut self, c: &Comparison) {
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
                    "{measure} {:+.1}% (budget +{:.0}%)",
                    change * 100.0,
                    p.max_cost_increase * 100.0
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
        let flips = if c.has_base {
            &c.regressions
        } else {
            &c.failures
        };
        for row in std::iter::once(&c.overall).chain(&c.segments) {
            let failing: Vec<&str> = flips
                .iter()
                .filter(|f| f.segments.contains(&row.name))
                .map(|f| f.id.as_str())
                .collect();
            all.segment(row, c.has_base, &failing);
        }
        if c.has_base {
            all.budgets(c);
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
        let v = decide_default(&[compared(&rows("billing", &[(10, P, P)]))]);
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
        let mut e = compared(&rows("billing", &[(10, P, P)]));
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
        // The critical segment's own drop is not also noted as "within noise"; the
        // overall one is.
        assert_eq!(v.notes.len(), 1, "{:?}", v.notes);
        assert!(v.notes[0].contains(ALL));
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
    fn a_failing_case_of_a_new_artifact_outside_critical_segments_passes() {
        let head = rows("billing", &[(5, P, P), (5, P, F)])
            .into_iter()
            .map(|(id, s, _, h)| (id, s, h))
            .collect();
        let v = decide_default(&[evidence(
            Status::HeadOnly,
            None,
            Some(run("1", head, USUAL)),
        )]);
        // No base: no drop, no budgets.
        assert_eq!(v.state, State::Pass, "{v:?}");
    }

    #[test]
    fn a_significant_drop_over_max_segment_drop_blocks() {
        // 6 pass → fail, 0 fail → pass: McNemar p = 0.031.
        let mut cases = rows("billing", &[(6, P, F), (4, P, P)]);
        cases.extend(rows("shipping", &[(30, P, P)]));
        let v = decide_default(&[compared(&cases)]);
        assert_eq!(v.state, State::Blocked, "{v:?}");
        let billing = v
            .reasons
            .iter()
            .find(|r| r.message.starts_with("segment billing"))
            .expect("a reason for billing");
        assert_eq!(billing.rule, "gate.max_segment_drop");
        assert!(
            billing.message.contains("100.0% → 40.0%"),
            "{}",
            billing.message
        );
        assert!(billing.message.contains("beyond noise (McNemar p 0.031)"));
        assert!(billing.message.contains("over the 5.0 points allowed drop"));
        assert!(!v.reasons.iter().any(|r| r.message.contains("shipping")));
    }

    #[test]
    fn a_drop_within_noise_is_a_note() {
        // 3 pass → fail, 1 fail → pass: −20 points, McNemar p = 0.625.
        let cases = rows("billing", &[(3, P, F), (1, F, P), (6, P, P)]);
        let v = decide_default(&[compared(&cases)]);
        assert_eq!(v.state, State::Pass, "{v:?}");
        assert!(
            v.notes
                .iter()
                .any(|n| n.contains("segment billing")
                    && n.contains("within noise (McNemar p 0.625)")),
            "{:?}",
            v.notes
        );
    }

    #[test]
    fn a_drop_of_exactly_max_segment_drop_is_not_over_it() {
        // 1 of 20 newly failing: exactly the 5-point allowance, not over it.
        let v = decide_default(&[compared(&rows("billing", &[(1, P, F), (19, P, P)]))]);
        assert_eq!(v.state, State::Pass);
        assert!(v.notes.is_empty(), "{:?}", v.notes);
    }

    #[test]
    fn a_significant_drop_within_max_segment_drop_passes() {
        let loose = GateConfig {
            max_segment_drop: 0.7,
            ..GateConfig::default()
        };
        let cases = rows("billing", &[(6, P, F), (4, P, P)]);
        let v = decide(&loose, &[compared(&cases)], &[]);
        assert_eq!(v.state, State::Pass, "{v:?}");
        assert!(v.notes.is_empty());
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
            ..GateConfig::default()
        };
        assert_eq!(
            decide(&tolerant, &[compared(&cases)], &[]).state,
            State::Pass
        );
    }

    #[test]
    fn cost_over_budget_needs_a_tradeoff() {
        let cases = rows("billing", &[(10, P, P)]);
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
        let cases = rows("billing", &[(10, P, P)]);
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
        let cases = rows("billing", &[(10, P, P)]);
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
        let e = compared(&rows("billing", &[(10, P, P)]));
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
        let cases = rows("billing", &[(10, P, P)]);
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
