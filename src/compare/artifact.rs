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
            super::compare(&super::RunPair {
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
