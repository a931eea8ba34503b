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
