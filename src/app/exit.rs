//! The process exit codes, documented in the README, and the one place that maps what
//! the core returns to them. Code 2, a wrong command line, is clap's own exit.

use std::process::ExitCode;

use crate::action::Ran;
use crate::eval::result::{EvalReport, Outcome};
use crate::policy::State;
use crate::rollout::command::End;
use crate::status::StatusState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done, nothing wrong.
    Ok = 0,
    /// promptgate itself could not do its job (git missing, unreadable repository…).
    ToolError = 1,
    /// The repository's artifacts, suites or config are invalid.
    Invalid = 3,
    /// The evaluation found failures (`eval`: a case failed; `gate`: blocked).
    Failed = 4,
    /// Something could not be evaluated (provider errors, missing recordings, metrics
    /// Prometheus could not give): neither a pass nor a fail.
    Undecided = 5,
    /// `rollout check` / `rollout advance --metrics`: a canary broke a threshold; the
    /// rollout is frozen and all traffic is back on stable.
    Frozen = 6,
}

impl Exit {
    /// [`Exit::Invalid`] when the input had errors, else [`Exit::Ok`].
    pub fn from_problems(errors: bool) -> Exit {
        if errors { Exit::Invalid } else { Exit::Ok }
    }

    /// `eval` and `merge`: 0 when every case passed, [`Exit::Failed`] when some failed,
    /// [`Exit::Undecided`] when some could not be evaluated.
    pub fn of_eval(report: &EvalReport) -> Exit {
        let cases = || report.runs.iter().flat_map(|r| &r.run.cases);
        if cases().any(|c| c.outcome == Outcome::Error) {
            Exit::Undecided
        } else if cases().any(|c| c.outcome == Outcome::Fail) {
            Exit::Failed
        } else {
            Exit::Ok
        }
    }

    /// `gate`: a verdict that needs a trade-off label is not a failure locally.
    pub fn of_verdict(state: State) -> Exit {
        match state {
            State::Pass | State::NeedsTradeoff => Exit::Ok,
            State::Blocked => Exit::Failed,
            State::Error => Exit::Undecided,
        }
    }

    /// `rollout …` and `rollback`.
    pub fn of_release(end: End) -> Exit {
        match end {
            End::Done => Exit::Ok,
            End::Frozen => Exit::Frozen,
            End::BadMetrics => Exit::Invalid,
            End::Unavailable => Exit::Undecided,
        }
    }

    /// `action`: the status it set. Pending (waiting for approvals) is not a failure;
    /// `error` is 5 whether the gate decided it or a failure after the first status did.
    pub fn of_action(ran: &Ran) -> Exit {
        match ran {
            Ran::Skipped | Ran::Status(StatusState::Success | StatusState::Pending) => Exit::Ok,
            Ran::Status(StatusState::Failure) => Exit::Failed,
            Ran::Status(StatusState::Error) | Ran::Failed(_) => Exit::Undecided,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_are_the_documented_ones() {
        let codes = [
            (Exit::Ok, 0),
            (Exit::ToolError, 1),
            (Exit::Invalid, 3),
            (Exit::Failed, 4),
            (Exit::Undecided, 5),
            (Exit::Frozen, 6),
        ];
        for (exit, code) in codes {
            assert_eq!(exit as u8, code, "{exit:?}");
        }
    }

    #[test]
    fn verdicts_and_statuses_map_alike() {
        assert_eq!(Exit::of_verdict(State::Pass), Exit::Ok);
        assert_eq!(Exit::of_verdict(State::NeedsTradeoff), Exit::Ok);
        assert_eq!(Exit::of_verdict(State::Blocked), Exit::Failed);
        assert_eq!(Exit::of_verdict(State::Error), Exit::Undecided);
        assert_eq!(Exit::of_action(&Ran::Skipped), Exit::Ok);
        assert_eq!(
            Exit::of_action(&Ran::Status(StatusState::Pending)),
            Exit::Ok
        );
        assert_eq!(
            Exit::of_action(&Ran::Status(StatusState::Failure)),
            Exit::Failed
        );
        assert_eq!(
            Exit::of_action(&Ran::Status(StatusState::Error)),
            Exit::Undecided
        );
        assert_eq!(
            Exit::of_action(&Ran::Failed(anyhow::anyhow!("GitHub 502"))),
            Exit::Undecided
        );
        assert_eq!(Exit::of_release(End::Frozen), Exit::Frozen);
        assert_eq!(Exit::of_release(End::BadMetrics), Exit::Invalid);
        assert_eq!(Exit::of_release(End::Unavailable), Exit::Undecided);
    }
}
