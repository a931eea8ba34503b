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
/// flushed so the rename survives a crash. The temporary file is removed on failure. An
/// existing file keeps its permissions (a file kept at mode 600 stays 600).
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, bytes, Durability::Synced)
}

fn write_with(path: &Path, bytes: &[u8], durability: Durability) -> io::Result<()> {
    let tmp = temporary(path);
    let synced = durability == Durability::Synced;
    let result = (|| {
        let mut file = File::create(&tmp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
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
    path.with_file_name(format!(
        ".{}.{}.{:016x}.tmp",
        file_name(path),
        std::process::id(),
        fastrand::u64(..)
    ))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Remove the temporary files a killed writer of `path` left beside it ([`write`]'s
/// `.NAME.PID.RANDOM.tmp`). Only for a caller that holds the lock every writer of `path`
/// takes: then no temporary file of `path` belongs to a live writer. Best effort.
pub fn remove_leftovers(path: &Path) {
    let Some(dir) = path.parent() else { return };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.", file_name(path));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        // PID.RANDOM.tmp: digits, a dot, 16 hex digits, `.tmp` — never another file's
        // name that merely starts like this one.
        let mut parts = rest.split('.');
        let ours = matches!(
            (parts.next(), parts.next(), parts.next(), parts.next()),
            (Some(pid), Some(random), Some("tmp"), None)
                if !pid.is_empty()
                    && pid.bytes().all(|b| b.is_ascii_digit())
                    && random.len() == 16
                    && random.bytes().all(|b| b.is_ascii_hexdigit())
        );
        if ours {
            let _ = std::fs::remove_file(entry.path());
        }
    }
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

    #[cfg(unix)]
    #[test]
    fn keeps_the_mode_of_the_file_it_replaces() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.yaml");
        write(&path, b"one").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        write(&path, b"two").expect("write");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn removes_only_the_temporary_files_of_its_own_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.yaml");
        let left = dir.path().join(".f.yaml.4242.00000000deadbeef.tmp");
        let other = dir.path().join(".f.yaml.prev.4242.00000000deadbeef.tmp");
        let lookalike = dir.path().join(".f.yaml.notes.tmp");
        for p in [&left, &other, &lookalike] {
            std::fs::write(p, b"x").expect("write");
        }
        remove_leftovers(&path);
        assert!(!left.exists());
        assert!(other.exists() && lookalike.exists());
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
