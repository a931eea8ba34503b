//! One changed artifact's evidence: what changed, whether it was evaluated, and its base
//! and head runs compared. What the policy judges and the evidence bundle lists.

use serde::Serialize;

use super::Comparison;
use crate::changes::ArtifactChange;
use crate::eval::result::ArtifactRun;

/// Whether and how an artifact was evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Base and head version ran on the head's cases.
    Compared,
    /// Added by the pull request: only the head version ran.
    HeadOnly,
    /// Deleted by the pull request: reported, not evaluated.
    Deleted,
    /// Touched without a behaviour or eval-set change (a reformat, a description).
    Unchanged,
    /// The head version does not load: it cannot be evaluated.
    Invalid,
}

/// One changed artifact: what changed, and what its evals showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArtifactEvidence {
    #[serde(flatten)]
    pub change: ArtifactChange,
    pub status: Status,
    pub known_limitations: Vec<String>,
    pub comparison: Option<Comparison>,
    /// The base version's raw results (on the head's cases and the deleted ones).
    pub base_run: Option<ArtifactRun>,
    /// The head version's raw results.
    pub head_run: Option<ArtifactRun>,
    /// What the cost per request means at the artifact's production traffic
    /// (`traffic:` in the config).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly: Option<Monthly>,
}

/// Cost a month at production traffic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Monthly {
    pub requests: u64,
    /// `None` without a base version.
    pub base_usd: Option<f64>,
    pub head_usd: f64,
    /// Head minus base; `None` without a base version.
    pub change_usd: Option<f64>,
}

impl Monthly {
    /// The comparison's cost per 1,000 requests at `requests` a month; `None` without
    /// a head price.
    pub fn of(comparison: &Comparison, requests: u64) -> Option<Monthly> {
        let month = |per_1k: Option<f64>| per_1k.map(|c| c * requests as f64 / 1000.0);
        let head_usd = month(comparison.head.spend.cost_per_1k_requests_usd)?;
        let base_usd = if comparison.has_base {
            month(comparison.base.spend.cost_per_1k_requests_usd)
        } else {
            None
        };
        Some(Monthly {
            requests,
            base_usd,
            head_usd,
            change_usd: base_usd.map(|b| head_usd - b),
        })
    }

    /// `+$1,240/month at 2M requests/month`, or the head's cost without a base.
    pub fn words(&self) -> String {
        match self.change_usd {
            Some(change) => format!(
                "{}{}/month at {} requests/month",
                if change < 0.0 { "-" } else { "+" },
                dollars(change.abs()),
                count(self.requests)
            ),
            None => format!(
                "{}/month at {} requests/month",
                dollars(self.head_usd),
                count(self.requests)
            ),
        }
    }
}

/// `$1,240`, `$0.52`.
fn dollars(v: f64) -> String {
    if v >= 100.0 {
        let whole = v.round() as u64;
        let digits = whole.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        format!("${out}")
    } else {
        format!("${v:.2}")
    }
}

/// `2M`, `350k`, `1,200`.
fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n.is_multiple_of(100_000) => {
            let m = n as f64 / 1e6;
            if n.is_multiple_of(1_000_000) {
                format!("{m:.0}M")
            } else {
                format!("{m:.1}M")
            }
        }
        n if n >= 10_000 && n.is_multiple_of(1_000) => format!("{}k", n / 1000),
        n => n.to_string(),
    }
}

impl ArtifactEvidence {
    /// The evidence of one artifact: its runs compared case by case. `base_case_ids`
    /// are the ids in the base's eval set (to tell new cases), `critical` the
    /// `gate.critical_segments` globs, `allowed_drop` the `gate.max_segment_drop`.
    pub fn new(
        change: ArtifactChange,
        status: Status,
        known_limitations: Vec<String>,
        runs: (Option<ArtifactRun>, Option<ArtifactRun>),
        base_case_ids: &[String],
        critical: &globset::GlobSet,
        allowed_drop: f64,
    ) -> ArtifactEvidence {
        let (base_run, head_run) = runs;
        let comparison = head_run.as_ref().map(|head| {
            super::compare(&super::RunPair {
                base: base_run.as_ref(),
                head,
                base_case_ids,
                critical,
                allowed_drop,
            })
        });
        ArtifactEvidence {
            change,
            status,
            known_limitations,
            comparison,
            base_run,
            head_run,
            monthly: None,
        }
    }

    /// With the production traffic of the artifact, its cost a month.
    pub fn with_traffic(mut self, requests_per_month: Option<u64>) -> ArtifactEvidence {
        self.monthly = requests_per_month
            .zip(self.comparison.as_ref())
            .and_then(|(n, c)| Monthly::of(c, n));
        self
    }
}
