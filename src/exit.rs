//! The process exit codes, documented in the README.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done, nothing wrong.
    Ok = 0,
    /// promptgate itself could not do its job (git missing, unreadable repository…).
    ToolError = 1,
    /// The command line was wrong (clap exits with this code too).
    Usage = 2,
    /// The repository's artifacts, suites or config are invalid.
    Invalid = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}
