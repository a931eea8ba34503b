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
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}
