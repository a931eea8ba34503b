//! The one read of a whole file: only a regular file (or a symlink to one), never more
//! than a limit, and never waiting. A directory, a named pipe, a device or a socket is
//! refused, saying what it is, before it is opened; the file is opened without waiting
//! (`O_NONBLOCK`) and checked again once open, so a pipe swapped in between cannot hold
//! the read either. The limit is checked against the size before reading and enforced
//! while reading, since a file can grow and `/proc`-like files say they are empty.
//!
//! The repository's files are read through [`crate::source::Tree`], which adds that
//! symlinks must stay inside the repository ([`inside`]); files named on the command
//! line (metrics, incidents, evidence, results) and the release files are read here
//! directly.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

/// Largest file a person writes that promptgate reads: the config, artifacts, suites,
/// schemas, cases and incidents files, the runtime config, templates, recordings.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// Largest file that grows with traffic or with a run: metrics, the results `merge`
/// joins, gate evidence.
pub const MAX_DATA_BYTES: u64 = 256 * 1024 * 1024;

/// What a path is when it is not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Directory,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Other,
}

impl fmt::Display for Special {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Special::Directory => "a directory",
            Special::Fifo => "a named pipe (FIFO)",
            Special::Socket => "a socket",
            Special::CharDevice => "a character device",
            Special::BlockDevice => "a block device",
            Special::Other => "a special file",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReadError {
    #[error("file not found")]
    Missing,
    #[error("is {0}, not a file")]
    NotAFile(Special),
    #[error("is a symlink that leads outside the repository (to `{target}`)")]
    Escapes { target: String },
    #[error(
        "is {size} bytes, over the limit of {limit} bytes ({} MiB): make it smaller or split it",
        .limit >> 20
    )]
    TooLarge { size: u64, limit: u64 },
    /// Past the limit while being read, though its size said otherwise.
    #[error(
        "is over the limit of {limit} bytes ({} MiB), found while reading it: make it \
         smaller or split it",
        .limit >> 20
    )]
    GrewTooLarge { limit: u64 },
    #[error("is a symlink loop (or a chain of too many symlinks)")]
    SymlinkLoop,
    #[error("{0}")]
    Io(String),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return ReadError::SymlinkLoop;
        }
        match e.kind() {
            std::io::ErrorKind::NotFound => ReadError::Missing,
            _ => ReadError::Io(e.to_string()),
        }
    }
}

/// The bytes of the regular file at `path`, symlinks followed, at most `limit` of them.
pub fn file(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    check(&std::fs::metadata(path)?, limit)?;
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file: File = options.open(path)?;
    let meta = file.metadata()?;
    check(&meta, limit)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::GrewTooLarge { limit });
    }
    Ok(bytes)
}

/// A regular file within the limit, or what it is instead.
fn check(meta: &Metadata, limit: u64) -> Result<(), ReadError> {
    if let Some(special) = special(meta) {
        return Err(ReadError::NotAFile(special));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    Ok(())
}

fn special(meta: &Metadata) -> Option<Special> {
    let kind = meta.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_dir() {
        return Some(Special::Directory);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        for (is, special) in [
            (kind.is_fifo(), Special::Fifo),
            (kind.is_socket(), Special::Socket),
            (kind.is_char_device(), Special::CharDevice),
            (kind.is_block_device(), Special::BlockDevice),
        ] {
            if is {
                return Some(special);
            }
        }
    }
    Some(Special::Other)
}

/// Where `path`, a path under `root`, leads once symlinks are followed, if it stays
/// inside `root` (`canonical_root` is `root` canonicalized): [`ReadError::Escapes`]
/// naming the symlink's target if it leads out, also when that target does not exist.
pub fn inside(root: &Path, canonical_root: &Path, path: &Path) -> Result<PathBuf, ReadError> {
    let canonical = match path.canonicalize() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symlink: say where it points if it leads out.
            if let Ok(target) = std::fs::read_link(path) {
                let resolved = path.parent().map(|p| p.join(&target));
                if target.is_absolute() || resolved.is_some_and(|r| !lexically_inside(&r, root)) {
                    return Err(ReadError::Escapes {
                        target: target.display().to_string(),
                    });
                }
            }
            return Err(ReadError::Missing);
        }
        Err(e) => return Err(e.into()),
    };
    if !canonical.starts_with(canonical_root) {
        let target = std::fs::read_link(path).unwrap_or(canonical);
        return Err(ReadError::Escapes {
            target: target.display().to_string(),
        });
    }
    Ok(canonical)
}

fn lexically_inside(path: &Path, root: &Path) -> bool {
    let mut depth: i64 = 0;
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    for c in rel.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_regular_files_within_the_limit() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.json");
        std::fs::write(&path, "{}")?;
        assert_eq!(file(&path, 2), Ok(b"{}".to_vec()));
        assert_eq!(
            file(&path, 1),
            Err(ReadError::TooLarge { size: 2, limit: 1 })
        );
        assert_eq!(file(&dir.path().join("none"), 9), Err(ReadError::Missing));
        assert_eq!(
            file(dir.path(), 9),
            Err(ReadError::NotAFile(Special::Directory))
        );
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn refuses_special_files_without_waiting_or_reading() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
        assert!(made.success());
        // Nothing writes to the pipe: a read that opened it would wait for ever.
        assert_eq!(file(&fifo, 9), Err(ReadError::NotAFile(Special::Fifo)));
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero)?;
        assert_eq!(
            file(&zero, 9),
            Err(ReadError::NotAFile(Special::CharDevice))
        );
        let looped = dir.path().join("loop");
        std::os::unix::fs::symlink("loop", &looped)?;
        assert_eq!(file(&looped, 9), Err(ReadError::SymlinkLoop));
        Ok(())
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_that_says_it_is_empty_is_still_held_to_the_limit() {
        // `/proc` files report size 0 and hold more.
        let path = Path::new("/proc/self/maps");
        assert!(file(path, 1 << 20).is_ok_and(|b| b.len() > 16));
        assert_eq!(file(path, 16), Err(ReadError::GrewTooLarge { limit: 16 }));
    }
}
