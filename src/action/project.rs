//! Pure projections of the evidence for the runner: the regression count, the
//! annotations, the status description of a failed run, and the words the outputs use.

use super::output::{Annotation, Level};
use crate::evidence::Evidence;
use crate::policy::{State, Verdict};
use crate::status::StatusState;

/// The number of regressions, over every artifact.
pub fn regressions(evidence: &Evidence) -> usize {
    evidence
        .artifacts
        .iter()
        .filter_map(|a| a.comparison.as_ref())
        .map(|c| c.regressions.len())
        .sum()
}

/// Blocking reasons on their artifact's file, and regressions on their case's line.
pub fn annotations(evidence: &Evidence) -> Vec<Annotation> {
    let mut out = Vec::new();
    let level = match evidence.verdict.state {
        State::Blocked | State::Error => Level::Error,
        State::NeedsTradeoff | State::Pass => Level::Warning,
    };
    let file_of = |id: &str| {
        evidence
            .artifacts
            .iter()
            .filter(|a| a.change.id == id)
            .find_map(|a| a.change.head.as_ref().or(a.change.base.as_ref()))
            .map(|side| side.path.clone())
    };
    for r in evidence
        .verdict
        .reasons
        .iter()
        .chain(&evidence.verdict.errors)
    {
        out.push(Annotation {
            level,
            file: r.artifact.as_deref().and_then(file_of),
            line: None,
            title: format!("promptgate: {}", r.rule),
            message: match &r.artifact {
                Some(a) => format!("{a}: {}", r.message),
                None => r.message.clone(),
            },
        });
    }
    for a in &evidence.artifacts {
        for r in a.comparison.iter().flat_map(|c| &c.regressions) {
            out.push(Annotation {
                level: if r.critical {
                    Level::Error
                } else {
                    Level::Warning
                },
                file: Some(r.file.clone()),
                line: Some(r.line),
                title: format!("promptgate: {} regressed", r.id),
                message: format!(
                    "{}: passes on base, fails on head: {}",
                    a.change.id,
                    r.failed.join("; ")
                ),
            });
        }
    }
    out
}

/// The status description for a run that failed: the error's chain on one line, with
/// an answer from GitHub said briefly (status and message, not the call), so the cause
/// fits in the 140 characters GitHub keeps.
pub fn failed(e: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in e.chain() {
        if let Some(api) = cause.downcast_ref::<crate::github::ApiError>() {
            parts.push(format!("GitHub {}: {}", api.status, api.message));
            break;
        }
        parts.push(cause.to_string());
    }
    format!("promptgate failed: {}", parts.join(": "))
}

pub fn word(state: StatusState) -> &'static str {
    match state {
        StatusState::Pending => "pending",
        StatusState::Success => "success",
        StatusState::Failure => "failure",
        StatusState::Error => "error",
    }
}

pub fn state_word(state: State) -> &'static str {
    match state {
        State::Pass => "pass",
        State::NeedsTradeoff => "needs-tradeoff",
        State::Blocked => "blocked",
        State::Error => "error",
    }
}

/// The status of a commit evaluated without a pull request: no approvals, so the
/// verdict alone. A verdict that needs a trade-off still succeeds here; the pull
/// request's own status waits for the label.
pub fn commit_status(verdict: &Verdict) -> (StatusState, String) {
    let state = match verdict.state {
        State::Error => StatusState::Error,
        State::Blocked => StatusState::Failure,
        State::Pass | State::NeedsTradeoff => StatusState::Success,
    };
    (state, verdict.headline())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Reason;

    fn blocked() -> Evidence {
        let mut e = Evidence::empty();
        e.verdict.state = State::Blocked;
        e.verdict.reasons.push(Reason {
            artifact: Some("support".into()),
            rule: "gate.max_segment_drop".into(),
            message: "intent/refund dropped 40 points".into(),
        });
        e.verdict.errors.push(Reason {
            artifact: None,
            rule: "config".into(),
            message: "bad config".into(),
        });
        e
    }

    #[test]
    fn reasons_become_annotations_at_the_verdicts_level() {
        let list = annotations(&blocked());
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(|a| a.level == Level::Error));
        assert_eq!(list[0].title, "promptgate: gate.max_segment_drop");
        assert_eq!(list[0].message, "support: intent/refund dropped 40 points");
        // No artifact of that id in the evidence: no file to point at.
        assert_eq!(list[0].file, None);
        assert_eq!(list[1].message, "bad config");
        let mut passed = blocked();
        passed.verdict.state = State::NeedsTradeoff;
        assert!(
            annotations(&passed)
                .iter()
                .all(|a| a.level == Level::Warning)
        );
        assert_eq!(regressions(&passed), 0);
    }

    #[test]
    fn a_failed_run_says_githubs_answer_briefly() {
        let api = crate::github::ApiError {
            status: 403,
            what: "POST /repos/acme/repo/statuses/abc".into(),
            message: "Resource not accessible by integration".into(),
        };
        let e = anyhow::Error::new(api).context("cannot set the status");
        assert_eq!(
            failed(&e),
            "promptgate failed: cannot set the status: GitHub 403: Resource not accessible by integration"
        );
        assert_eq!(
            failed(&anyhow::anyhow!("no git")),
            "promptgate failed: no git"
        );
    }

    #[test]
    fn words_are_the_documented_output_values() {
        let states = [
            (StatusState::Pending, "pending"),
            (StatusState::Success, "success"),
            (StatusState::Failure, "failure"),
            (StatusState::Error, "error"),
        ];
        for (state, text) in states {
            assert_eq!(word(state), text);
            // The same word GitHub's API takes.
            assert_eq!(serde_json::to_value(state).expect("json"), text);
        }
        let verdicts = [
            (State::Pass, "pass"),
            (State::NeedsTradeoff, "needs-tradeoff"),
            (State::Blocked, "blocked"),
            (State::Error, "error"),
        ];
        for (state, text) in verdicts {
            assert_eq!(state_word(state), text);
            assert_eq!(serde_json::to_value(state).expect("json"), text);
        }
    }

    #[test]
    fn a_commit_without_a_pull_request_is_judged_on_the_verdict_alone() {
        let mut v = Evidence::empty().verdict;
        assert_eq!(commit_status(&v).0, StatusState::Success);
        v.state = State::NeedsTradeoff;
        assert_eq!(commit_status(&v).0, StatusState::Success);
        v.state = State::Blocked;
        assert_eq!(commit_status(&v).0, StatusState::Failure);
        v.state = State::Error;
        assert_eq!(commit_status(&v).0, StatusState::Error);
    }
}
