//! The working tree on disk.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{MAX_FILE_BYTES, ReadError, Tree};

pub struct WorkTree {
    root: PathBuf,
    canonical_root: PathBuf,
}

impl WorkTree {
    pub fn new(root: &Path) -> anyhow::Result<Self> {
        let canonical_root = root
            .canonicalize()
            .with_context(|| format!("cannot open repository directory {}", root.display()))?;
        Ok(WorkTree {
            root: root.to_path_buf(),
            canonical_root,
        })
    }
}

/// The repository root containing `start`: the nearest directory upwards holding `.git`,
/// or `start` itself when it is in no repository.
pub fn find_root(start: &Path) -> PathBuf {
    let mut dir = Some(start);
    while let Some(d) = dir {
        if d.join(".git").exists() {
            return d.to_path_buf();
        }
        dir = d.parent();
    }
    start.to_path_buf()
}

impl Tree for WorkTree {
    fn read(&self, path: &str) -> Result<Vec<u8>, ReadError> {
        let file = crate::read::inside(&self.root, &self.canonical_root, &self.root.join(path))?;
        crate::read::file(&file, MAX_FILE_BYTES)
    }

    fn list(&self) -> anyhow::Result<Vec<String>> {
        let mut paths = Vec::new();
        let walker = ignore::WalkBuilder::new(&self.root)
            .hidden(false)
            .require_git(false)
            .filter_entry(|e| e.file_name() != ".git")
            .build();
        for entry in walker {
            let entry = entry.context("cannot list the working tree")?;
            // Directories and special files too: one named like an artifact is reported
            // when it is read, not passed over.
            if entry.depth() == 0 {
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(&self.root)
                .context("walked outside the repository")?;
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            paths.push(parts.join("/"));
        }
        paths.sort();
        Ok(paths)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_symlinks_leading_out() -> anyhow::Result<()> {
        let outside = tempfile::tempdir()?;
        std::fs::write(outside.path().join("secret.json"), "{}")?;
        let repo = tempfile::tempdir()?;
        std::fs::write(repo.path().join("ok.json"), "{}")?;
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(
                outside.path().join("secret.json"),
                repo.path().join("out.json"),
            )?;
            std::os::unix::fs::symlink("ok.json", repo.path().join("in.json"))?;
            std::os::unix::fs::symlink("../nowhere.json", repo.path().join("dangling.json"))?;
        }
        let tree = WorkTree::new(repo.path())?;
        assert_eq!(tree.read("ok.json"), Ok(b"{}".to_vec()));
        assert_eq!(tree.read("missing.json"), Err(ReadError::Missing));
        #[cfg(unix)]
        {
            assert_eq!(tree.read("in.json"), Ok(b"{}".to_vec()));
            assert!(matches!(
                tree.read("out.json"),
                Err(ReadError::Escapes { .. })
            ));
            assert!(matches!(
                tree.read("dangling.json"),
                Err(ReadError::Escapes { .. })
            ));
        }
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_named_pipe_without_waiting_on_it() -> anyhow::Result<()> {
        let repo = tempfile::tempdir()?;
        let fifo = repo.path().join("cases.jsonl");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
        assert!(made.success());
        let tree = WorkTree::new(repo.path())?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(tree.read("cases.jsonl")));
        let Ok(read) = rx.recv_timeout(std::time::Duration::from_secs(10)) else {
            // Let the stuck read go (it gets end of file) before failing.
            drop(std::fs::OpenOptions::new().write(true).open(&fifo));
            panic!("the read waited on the named pipe");
        };
        assert_eq!(read, Err(ReadError::NotAFile(crate::read::Special::Fifo)));
        Ok(())
    }
}
