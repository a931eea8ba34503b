//! The evidence bundle: everything the gate found, as one versioned JSON document
//! (`promptgate.evidence/v1`, documented in `docs/evidence.md`). The report and the
//! verdict are derived from it; tools can read it instead of the markdown.

use serde::Serialize;

use crate::changes::ArtifactChange;
use crate::compare::Comparison;
use crate::config::{ApprovalsConfig, GateConfig};
use crate::eval::result::ArtifactRun;
use crate::policy::Verdict;

/// Identifies the evidence JSON.
pub const SCHEMA: &str = "promptgate.evidence/v1";

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
}

impl ArtifactEvidence {
    /// The evidence of one artifact: its runs compared case by case. `base_case_ids`
    /// are the ids in the base's eval set (to tell new cases), `critical` the
    /// `gate.critical_segments` globs.
    pub fn new(
        change: ArtifactChange,
        status: Status,
        known_limitations: Vec<String>,
        runs: (Option<ArtifactRun>, Option<ArtifactRun>),
        base_case_ids: &[String],
        critical: &globset::GlobSet,
    ) -> ArtifactEvidence {
        let (base_run, head_run) = runs;
        let comparison = head_run.as_ref().map(|head| {
            crate::compare::compare(&crate::compare::Sides {
                base: base_run.as_ref(),
                head,
                base_case_ids,
                critical,
            })
        });
        ArtifactEvidence {
            change,
            status,
            known_limitations,
            comparison,
            base_run,
            head_run,
        }
    }
}

/// Where the policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicySource {
    /// The base branch's config: a pull request cannot loosen its own gate.
    Base,
    /// The base has no config (the pull request adds promptgate): the head's applies.
    Head,
}

/// One approval role's state, for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleState {
    /// `product` or `technical`.
    pub role: String,
    pub label: String,
    /// Who approved, when.
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    /// What is missing, or why it does not count.
    pub note: String,
}

/// The whole bundle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub schema: &'static str,
    pub promptgate_version: &'static str,
    /// The refs as given, the merge-base the diff was taken from, and the head commit.
    pub base: String,
    pub head: String,
    pub merge_base: String,
    pub head_commit: String,
    pub files_changed: usize,
    pub policy: GateConfig,
    pub policy_source: PolicySource,
    /// The pull request changes the config file.
    pub config_changed: bool,
    pub verdict: Verdict,
    /// The label that accepts cost or latency over budget.
    pub tradeoff_label: String,
    /// The approval rules of the policy's config.
    pub approval_rules: ApprovalsConfig,
    pub artifacts: Vec<ArtifactEvidence>,
    pub approvals: Vec<RoleState>,
    /// The command that reproduces this run locally.
    pub reproduce: String,
}

impl Evidence {
    /// A pull request that changes nothing, to check templates against.
    pub fn empty() -> Evidence {
        let gate = GateConfig::default();
        Evidence {
            schema: SCHEMA,
            promptgate_version: env!("CARGO_PKG_VERSION"),
            base: "main".into(),
            head: "HEAD".into(),
            merge_base: String::new(),
            head_commit: String::new(),
            files_changed: 0,
            verdict: crate::policy::decide(&gate, &[], &[]),
            policy: gate,
            policy_source: PolicySource::Base,
            config_changed: false,
            tradeoff_label: String::new(),
            approval_rules: ApprovalsConfig::default(),
            artifacts: Vec::new(),
            approvals: Vec::new(),
            reproduce: String::new(),
        }
    }
}
