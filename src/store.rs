//! Safe writes of files that production reads (the runtime config) or that tests are
//! made from (regression cases): read-modify-write under an exclusive lock, the new
//! content written to a temporary file, flushed to disk and renamed over the old one
//! (readers see the old file or the new one, never half of either, also after a crash),
//! the previous content kept beside it, and one line appended to an audit log saying
//! who changed what, when and why.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

/// Who makes a change, and why.
#[derive(Debug, Clone)]
pub struct Actor {
    pub who: String,
    pub why: String,
}

impl Actor {
    /// The person from the environment ([`crate::env::Env::actor`]) and the reason given.
    pub fn new(env: &crate::env::Env, why: &str) -> Actor {
        Actor {
            who: env.actor.clone().unwrap_or_else(|| "unknown".into()),
            why: why.to_string(),
        }
    }
}

/// The audit log of a file: `promptgate.audit.jsonl` in its directory.
pub fn audit_path(path: &Path) -> PathBuf {
    path.with_file_name("promptgate.audit.jsonl")
}

/// One line of the audit log (JSON Lines).
#[derive(Debug, Serialize)]
struct AuditLine<'a> {
    at: String,
    who: &'a str,
    file: String,
    what: &'a str,
    why: &'a str,
}

/// A new content for the file, and what changed, in words, for the audit log.
pub struct Change {
    pub content: String,
    pub what: String,
}

/// Where the previous content of `path` is kept.
pub fn previous_path(path: &Path) -> PathBuf {
    sibling(path, ".prev")
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Change `path` under its lock: `change` gets the current content (`None` if the file
/// does not exist) and returns the new one, or `None` to leave it as it is. Returns
/// what changed. A current file that cannot be read as text ([`crate::read::file`]) is
/// a located problem, and nothing is written. Two processes doing this at once both land, one after the other.
pub fn update(
    path: &Path,
    audit: &Path,
    actor: &Actor,
    change: impl FnOnce(Option<&str>) -> Result<Option<Change>>,
) -> Result<Option<String>> {
    let _lock = lock(path)?;
    // Under the lock no other writer is midway: a temporary file here is a killed
    // writer's.
    crate::atomic::remove_leftovers(path);
    crate::atomic::remove_leftovers(&previous_path(path));
    let current = crate::format::file_text_if_any(path, crate::read::MAX_FILE_BYTES)?;
    let Some(Change { content, what }) = change(current.as_deref())? else {
        return Ok(None);
    };
    // The change and its audit line land together or not at all: an audit log that
    // cannot be opened stops the change before anything is written, and a line that
    // cannot be appended puts the old file back.
    let mut log = open_audit(audit)?;
    if let Some(old) = &current {
        write_durably(&previous_path(path), old)?;
    }
    write_durably(path, &content)?;
    if let Err(e) = append_audit(&mut log, audit, path, actor, &what) {
        let restored = match &current {
            Some(old) => write_durably(path, old),
            None => std::fs::remove_file(path)
                .with_context(|| format!("cannot remove {}", path.display())),
        };
        return Err(match restored {
            Ok(()) => e.context(format!("{} is unchanged", path.display())),
            Err(r) => e.context(format!(
                "{} was changed and could not be put back ({r:#})",
                path.display()
            )),
        });
    }
    // The lock is released when `_lock` is dropped.
    Ok(Some(what))
}

/// Take `path`'s exclusive lock (released when the file is dropped), creating its
/// directory if need be.
fn lock(path: &Path) -> Result<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let lock_path = sibling(path, ".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open the lock file {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    Ok(lock)
}

/// Read `path` under its lock and do `with` what it says, while no writer can change
/// it: what derives a file from it (the flagd export) then always derives it from the
/// latest content, however writers interleave.
pub fn read_locked<T>(path: &Path, with: impl FnOnce(Option<&str>) -> Result<T>) -> Result<T> {
    let _lock = lock(path)?;
    let current = crate::format::file_text_if_any(path, crate::read::MAX_FILE_BYTES)?;
    with(current.as_deref())
}

/// Write `content` to `path` atomically ([`crate::atomic::write`]).
pub fn write_durably(path: &Path, content: &str) -> Result<()> {
    crate::atomic::write(path, content.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn open_audit(audit: &Path) -> Result<std::fs::File> {
    if let Some(dir) = audit.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(audit)
        .with_context(|| format!("cannot open the audit log {}", audit.display()))
}

fn append_audit(
    f: &mut std::fs::File,
    audit: &Path,
    file: &Path,
    actor: &Actor,
    what: &str,
) -> Result<()> {
    let line = serde_json::to_string(&AuditLine {
        at: jiff::Timestamp::now().to_string(),
        who: &actor.who,
        file: file.display().to_string(),
        what,
        why: &actor.why,
    })?;
    f.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot append to the audit log {}", audit.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor() -> Actor {
        Actor {
            who: "oncall".into(),
            why: "test".into(),
        }
    }

    #[test]
    fn keeps_the_previous_content_and_audits() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("deploy/runtime.yaml");
        let audit = dir.path().join("deploy/audit.jsonl");
        let set = |text: &'static str| {
            update(&path, &audit, &actor(), |_| {
                Ok(Some(Change {
                    content: text.into(),
                    what: format!("set {text}"),
                }))
            })
            .expect("update")
        };
        assert_eq!(set("one").as_deref(), Some("set one"));
        set("two");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "two");
        assert_eq!(
            std::fs::read_to_string(previous_path(&path)).expect("read"),
            "one"
        );
        let log = std::fs::read_to_string(&audit).expect("audit");
        assert_eq!(log.lines().count(), 2);
        assert!(log.contains(r#""who":"oncall""#) && log.contains(r#""what":"set two""#));
        // Nothing to change: nothing written, nothing audited.
        assert_eq!(
            update(&path, &audit, &actor(), |_| Ok(None)).expect("update"),
            None
        );
        assert_eq!(
            std::fs::read_to_string(&audit)
                .expect("audit")
                .lines()
                .count(),
            2
        );
    }

    #[test]
    fn a_failed_change_writes_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("runtime.yaml");
        std::fs::write(&path, "old").expect("write");
        let err = update(&path, &dir.path().join("audit"), &actor(), |_| {
            anyhow::bail!("refused")
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old");
        assert!(!dir.path().join("audit").exists());
    }

    #[test]
    fn an_audit_log_that_cannot_be_opened_changes_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("runtime.yaml");
        std::fs::write(&path, "old").expect("write");
        // A directory where the log should be: it cannot be opened to append.
        let audit = dir.path().join("audit.jsonl");
        std::fs::create_dir(&audit).expect("mkdir");
        let err = update(&path, &audit, &actor(), |_| {
            Ok(Some(Change {
                content: "new".into(),
                what: "set new".into(),
            }))
        })
        .expect_err("refused");
        assert!(format!("{err:#}").contains("audit log"), "{err:#}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old");
        assert!(!previous_path(&path).exists());
    }
}
