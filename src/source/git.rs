//! Real git, through its command line: the same program users and GitHub run.
//!
//! File contents come from one long-lived `git cat-file --batch` process per repository,
//! so reading a hundred blobs costs one process start, not a hundred.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

use thiserror::Error;

use super::{MAX_FILE_BYTES, ReadError, Tree};

#[derive(Debug, Error)]
pub enum GitError {
    #[error("cannot run git: {0} (is git installed and on PATH?)")]
    Spawn(std::io::Error),
    #[error("`git {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("`{rev}` is not a commit in this repository")]
    UnknownRev { rev: String },
    #[error(
        "`{base}` and `{head}` have no common ancestor; if this is a shallow clone, fetch the \
         history (actions/checkout with `fetch-depth: 0`)"
    )]
    NoMergeBase { base: String, head: String },
    #[error("unexpected output from git {0}")]
    Protocol(String),
}

/// One entry of `git diff --name-status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffEntry {
    Added(String),
    Deleted(String),
    Modified(String),
    Renamed { from: String, to: String },
}

impl DiffEntry {
    /// Every path the entry touches.
    pub fn paths(&self) -> Vec<&str> {
        match self {
            DiffEntry::Added(p) | DiffEntry::Deleted(p) | DiffEntry::Modified(p) => vec![p],
            DiffEntry::Renamed { from, to } => vec![from, to],
        }
    }
}

/// A git repository on disk.
#[derive(Clone)]
pub struct Git {
    dir: PathBuf,
    batch: Arc<Mutex<Option<CatFile>>>,
}

impl Git {
    pub fn new(dir: &Path) -> Self {
        Git {
            dir: dir.to_path_buf(),
            batch: Arc::new(Mutex::new(None)),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(&self.dir)
            .args(["--no-optional-locks", "-c", "core.quotepath=off"])
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        let out = self
            .command()
            .args(args)
            .output()
            .map_err(GitError::Spawn)?;
        if !out.status.success() {
            return Err(GitError::Failed {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(out.stdout)
    }

    /// The full commit id `rev` names.
    pub fn resolve(&self, rev: &str) -> Result<String, GitError> {
        let mut guard = self.batch()?;
        let cat = guard
            .as_mut()
            .ok_or_else(|| GitError::Protocol("cat-file is not running".into()))?;
        match cat.request(&format!("{rev}^{{commit}}"))? {
            Reply::Object { id, kind, .. } if kind == "commit" => Ok(id),
            _ => Err(GitError::UnknownRev { rev: rev.into() }),
        }
    }

    /// The best common ancestor of two commits: what a pull request is compared to.
    pub fn merge_base(&self, base: &str, head: &str) -> Result<String, GitError> {
        match self.run(&["merge-base", base, head]) {
            Ok(out) => Ok(String::from_utf8_lossy(&out).trim().to_string()),
            Err(GitError::Failed { stderr, .. }) if stderr.is_empty() => {
                Err(GitError::NoMergeBase {
                    base: base.into(),
                    head: head.into(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Files that differ between two commits, with renames detected.
    pub fn diff(&self, from: &str, to: &str) -> Result<Vec<DiffEntry>, GitError> {
        let out = self.run(&[
            "diff",
            "--name-status",
            "-z",
            "-M",
            "--no-relative",
            "--no-ext-diff",
            "--no-textconv",
            from,
            to,
            "--",
        ])?;
        parse_name_status(&out)
    }

    /// Every file path in a commit.
    pub fn ls_tree(&self, commit: &str) -> Result<Vec<String>, GitError> {
        let out = self.run(&["ls-tree", "-r", "-z", "--name-only", commit])?;
        Ok(out
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect())
    }

    /// The files of one commit, read on demand.
    pub fn tree(&self, commit: &str) -> GitTree {
        GitTree {
            git: self.clone(),
            commit: commit.to_string(),
        }
    }

    fn batch(&self) -> Result<std::sync::MutexGuard<'_, Option<CatFile>>, GitError> {
        let mut guard = self
            .batch
            .lock()
            .map_err(|_| GitError::Protocol("cat-file lock poisoned".into()))?;
        if guard.is_none() {
            let mut child = self
                .command()
                .args(["cat-file", "--batch", "--follow-symlinks"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(GitError::Spawn)?;
            let stdin = child
                .stdin
                .take()
                .ok_or_else(|| GitError::Protocol("cat-file without stdin".into()))?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| GitError::Protocol("cat-file without stdout".into()))?;
            *guard = Some(CatFile {
                child,
                stdin,
                stdout: BufReader::new(stdout),
            });
        }
        Ok(guard)
    }
}

fn parse_name_status(out: &[u8]) -> Result<Vec<DiffEntry>, GitError> {
    let mut fields = out
        .split(|b| *b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned());
    let mut entries = Vec::new();
    let missing = || GitError::Protocol("diff --name-status: missing path".into());
    while let Some(status) = fields.next() {
        if status.is_empty() {
            continue;
        }
        let entry = match status.as_bytes()[0] {
            b'A' => DiffEntry::Added(fields.next().ok_or_else(missing)?),
            b'D' => DiffEntry::Deleted(fields.next().ok_or_else(missing)?),
            b'M' | b'T' => DiffEntry::Modified(fields.next().ok_or_else(missing)?),
            b'R' => DiffEntry::Renamed {
                from: fields.next().ok_or_else(missing)?,
                to: fields.next().ok_or_else(missing)?,
            },
            b'C' => {
                let _from = fields.next().ok_or_else(missing)?;
                DiffEntry::Added(fields.next().ok_or_else(missing)?)
            }
            _ => {
                return Err(GitError::Protocol(format!(
                    "diff --name-status: unknown status `{status}`"
                )));
            }
        };
        entries.push(entry);
    }
    Ok(entries)
}

struct CatFile {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

enum Reply {
    Object {
        id: String,
        kind: String,
        content: Option<Vec<u8>>,
        size: u64,
    },
    Missing,
    /// A symlink whose target lies outside the tree.
    OutOfTree(String),
}

impl CatFile {
    fn request(&mut self, what: &str) -> Result<Reply, GitError> {
        let io = |e: std::io::Error| GitError::Protocol(format!("cat-file: {e}"));
        writeln!(self.stdin, "{what}").map_err(io)?;
        self.stdin.flush().map_err(io)?;
        let mut header = String::new();
        self.stdout.read_line(&mut header).map_err(io)?;
        let header = header.trim_end_matches('\n');
        if header.ends_with(" missing") || header.ends_with(" ambiguous") {
            return Ok(Reply::Missing);
        }
        let words: Vec<&str> = header.split(' ').collect();
        match words.as_slice() {
            ["symlink", size] | ["dangling", size] | ["loop", size] | ["notdir", size] => {
                let size: usize = size
                    .parse()
                    .map_err(|_| GitError::Protocol(format!("cat-file header `{header}`")))?;
                let mut body = vec![0; size + 1];
                self.stdout.read_exact(&mut body).map_err(io)?;
                body.pop();
                let target = String::from_utf8_lossy(&body).into_owned();
                if words[0] == "symlink" {
                    Ok(Reply::OutOfTree(target))
                } else {
                    Ok(Reply::Missing)
                }
            }
            [id, kind, size] => {
                let size: u64 = size
                    .parse()
                    .map_err(|_| GitError::Protocol(format!("cat-file header `{header}`")))?;
                let keep = *kind == "blob" && size <= MAX_FILE_BYTES;
                let mut content = Vec::new();
                let mut body = (&mut self.stdout).take(size + 1);
                if keep {
                    body.read_to_end(&mut content).map_err(io)?;
                    content.pop();
                } else {
                    std::io::copy(&mut body, &mut std::io::sink()).map_err(io)?;
                }
                Ok(Reply::Object {
                    id: (*id).to_string(),
                    kind: (*kind).to_string(),
                    content: keep.then_some(content),
                    size,
                })
            }
            _ => Err(GitError::Protocol(format!("cat-file header `{header}`"))),
        }
    }
}

impl Drop for CatFile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The files of one commit.
pub struct GitTree {
    git: Git,
    commit: String,
}

impl GitTree {
    pub fn commit(&self) -> &str {
        &self.commit
    }
}

impl Tree for GitTree {
    fn read(&self, path: &str) -> Result<Vec<u8>, ReadError> {
        if path.contains('\n') {
            return Err(ReadError::Missing);
        }
        let mut guard = self.git.batch().map_err(|e| ReadError::Io(e.to_string()))?;
        let cat = guard
            .as_mut()
            .ok_or_else(|| ReadError::Io("cat-file is not running".into()))?;
        match cat
            .request(&format!("{}:{path}", self.commit))
            .map_err(|e| ReadError::Io(e.to_string()))?
        {
            Reply::Object {
                kind,
                content,
                size,
                ..
            } => match (kind.as_str(), content) {
                ("blob", Some(bytes)) => Ok(bytes),
                ("blob", None) => Err(ReadError::TooLarge {
                    size,
                    limit: MAX_FILE_BYTES,
                }),
                _ => Err(ReadError::NotAFile),
            },
            Reply::Missing => Err(ReadError::Missing),
            Reply::OutOfTree(target) => Err(ReadError::Escapes { target }),
        }
    }

    fn list(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.git.ls_tree(&self.commit)?)
    }

    fn describe(&self) -> String {
        format!("commit {}", &self.commit[..self.commit.len().min(7)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_status_with_renames() -> Result<(), GitError> {
        let out = b"M\0a.yaml\0R087\0old.yaml\0new.yaml\0A\0b c.yaml\0D\0gone.yaml\0";
        assert_eq!(
            parse_name_status(out)?,
            vec![
                DiffEntry::Modified("a.yaml".into()),
                DiffEntry::Renamed {
                    from: "old.yaml".into(),
                    to: "new.yaml".into()
                },
                DiffEntry::Added("b c.yaml".into()),
                DiffEntry::Deleted("gone.yaml".into()),
            ]
        );
        Ok(())
    }
}
