//! The one atomic write: readers of a file see its old content or the whole new one,
//! never a part, also after a crash. Used by the release files, the answer cache and the
//! recordings.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Whether a write waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Flushed before it returns: the new content survives a crash.
    Synced,
    /// Left to the system to flush: after a crash the file may be the old one, the new
    /// one, empty or cut short. For a reader that takes a damaged file for a missing
    /// one (the answer cache), with one [`sync_filesystem`] when a run ends.
    Unsynced,
}

/// Write `bytes` to `path`: a uniquely named temporary file beside it (so concurrent
/// writers never share one), flushed to disk, renamed over `path`, and the directory
/// flushed so the rename survives a crash. The temporary file is removed on failure.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, bytes, Durability::Synced)
}

fn write_with(path: &Path, bytes: &[u8], durability: Durability) -> io::Result<()> {
    let tmp = temporary(path);
    let synced = durability == Durability::Synced;
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        if synced {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path
            .parent()
            .filter(|d| synced && !d.as_os_str().is_empty())
        {
            // Directories cannot be opened for syncing on every platform; best effort.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Flush everything written to the filesystem that holds `dir`: one call for all the
/// [`Durability::Unsynced`] writes of a run. Best effort, and a no-op where the system
/// has no `syncfs`.
pub fn sync_filesystem(dir: &Path) {
    #[cfg(target_os = "linux")]
    if let Ok(d) = File::open(dir) {
        let _ = rustix::fs::syncfs(&d);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = dir;
}

/// [`write`] from async code, on tokio's blocking pool, creating the directory first.
pub async fn write_creating_dir(
    path: &Path,
    bytes: Vec<u8>,
    durability: Durability,
) -> io::Result<()> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        write_with(&path, &bytes, durability)
    })
    .await
    .map_err(io::Error::other)?
}

/// `.NAME.PID.RANDOM.tmp` beside `path`.
fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        ".{name}.{}.{:016x}.tmp",
        std::process::id(),
        fastrand::u64(..)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.yaml");
        write(&path, b"one").expect("write");
        write(&path, b"two").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.yaml");
        write(&path, b"old").expect("write");
        // A directory in the way of the rename: the write fails after the temp file.
        let blocked = dir.path().join("d");
        std::fs::create_dir(&blocked).expect("mkdir");
        std::fs::write(blocked.join("x"), b"x").expect("fill");
        assert!(write(&blocked, b"new").is_err());
        assert_eq!(std::fs::read(&path).expect("read"), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 2);
    }

    #[tokio::test]
    async fn from_async_code_it_creates_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/c.json");
        write_creating_dir(&path, b"{}".to_vec(), Durability::Synced)
            .await
            .expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"{}");
        write_creating_dir(&path, b"[]".to_vec(), Durability::Unsynced)
            .await
            .expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"[]");
        assert_eq!(
            std::fs::read_dir(path.parent().expect("dir"))
                .expect("ls")
                .count(),
            1
        );
    }
}
