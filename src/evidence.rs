//! The evidence bundle: everything the gate found, as one versioned JSON document
//! (`promptgate.evidence/v1`, documented in `docs/evidence.md`). It sits above the
//! policy: the per-artifact evidence ([`ArtifactEvidence`], from [`crate::compare`]) is
//! what the policy judges, and the bundle adds the policy's verdict. The report is
//! derived from it; tools can read it instead of the markdown.

use serde::Serialize;

use crate::config::{ApprovalsConfig, GateConfig};
use crate::policy::Verdict;

pub use crate::compare::artifact::{ArtifactEvidence, Status};

/// Identifies the evidence JSON.
pub const SCHEMA: &str = "promptgate.evidence/v1";

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
