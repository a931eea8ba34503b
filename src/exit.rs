//! The process exit codes, documented in the README. Code 2, a wrong command line, is
//! clap's own exit.

use std::process::ExitCode;

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
    /// Something could not be evaluated (provider errors, missing recordings): neither
    /// a pass nor a fail.
    Undecided = 5,
    /// `rollout check` / `rollout advance --metrics`: a canary broke a threshold; the
    /// rollout is frozen and all traffic is back on stable.
    Frozen = 6,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}
