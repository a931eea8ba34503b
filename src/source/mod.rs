//! Where repository files come from: the working tree, a git commit, or memory (tests).
//!
//! Every loader reads through [`Tree`], so validating the working tree and reading the
//! base side of a pull request from its commit are the same code.

pub mod fs;
pub mod git;
pub mod mem;
mod packs;

use thiserror::Error;

pub use crate::read::{MAX_FILE_BYTES, ReadError, Special};

/// A snapshot of a repository's files, addressed by repository-relative `/` paths.
pub trait Tree: Send + Sync {
    /// The bytes of a file, following symlinks that stay inside the repository.
    fn read(&self, path: &str) -> Result<Vec<u8>, ReadError>;
    /// Every file path in the tree (symlinks included). The working tree lists what is
    /// not a file as well (a directory, a named pipe), so that one named like an artifact
    /// is reported rather than passed over.
    fn list(&self) -> anyhow::Result<Vec<String>>;
    /// The path `path` leads to once symlinks are followed, if it leads anywhere.
    fn resolve(&self, path: &str) -> Option<String> {
        Some(path.to_string())
    }
}

/// A reference from one file to another that cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RefError {
    #[error("`{0}` is an absolute path; references must be relative to the file")]
    Absolute(String),
    #[error("`{0}` leads outside the repository")]
    Escapes(String),
    #[error("reference is empty")]
    Empty,
}

/// Resolve `reference`, written in the file at `from`, to a repository-relative path.
/// A reference is relative to the directory of the file that contains it and must stay
/// inside the repository.
pub fn resolve_ref(from: &str, reference: &str) -> Result<String, RefError> {
    if reference.trim().is_empty() {
        return Err(RefError::Empty);
    }
    let bytes = reference.as_bytes();
    let windows_drive = bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic();
    if reference.starts_with('/') || reference.starts_with('\\') || windows_drive {
        return Err(RefError::Absolute(reference.to_string()));
    }
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for part in reference.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(RefError::Escapes(reference.to_string()));
                }
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Err(RefError::Escapes(reference.to_string()));
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_to_the_containing_file() {
        assert_eq!(
            resolve_ref(
                "prompts/support/refund.prompt.yaml",
                "../../tools/refund.json"
            ),
            Ok("tools/refund.json".into())
        );
        assert_eq!(
            resolve_ref("evals/refund.eval.yaml", "./refund.cases.jsonl"),
            Ok("evals/refund.cases.jsonl".into())
        );
        assert_eq!(resolve_ref("a.yaml", "b/c.json"), Ok("b/c.json".into()));
    }

    #[test]
    fn refuses_references_that_leave_the_repository() {
        assert_eq!(
            resolve_ref("prompts/a.yaml", "../../etc/passwd"),
            Err(RefError::Escapes("../../etc/passwd".into()))
        );
        assert_eq!(
            resolve_ref("prompts/a.yaml", "/etc/passwd"),
            Err(RefError::Absolute("/etc/passwd".into()))
        );
        assert_eq!(
            resolve_ref("a.yaml", "C:\\x.json"),
            Err(RefError::Absolute("C:\\x.json".into()))
        );
        assert_eq!(
            resolve_ref("prompts/a.yaml", ".."),
            Err(RefError::Escapes("..".into()))
        );
    }
}
