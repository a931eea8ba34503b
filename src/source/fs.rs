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
        let full = self.root.join(path);
        let canonical = match full.canonicalize() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A dangling symlink: say where it points if it leads out.
                if let Ok(target) = std::fs::read_link(&full) {
                    let resolved = full.parent().map(|p| p.join(&target));
                    if target.is_absolute()
                        || resolved.is_some_and(|r| !lexically_inside(&r, &self.root))
                    {
                        return Err(ReadError::Escapes {
                            target: target.display().to_string(),
                        });
                    }
                }
                return Err(ReadError::Missing);
            }
            Err(e) => return Err(ReadError::Io(e.to_string())),
        };
        if !canonical.starts_with(&self.canonical_root) {
            let target = std::fs::read_link(&full).unwrap_or(canonical);
            return Err(ReadError::Escapes {
                target: target.display().to_string(),
            });
        }
        let meta = std::fs::metadata(&canonical).map_err(|e| ReadError::Io(e.to_string()))?;
        if meta.is_dir() {
            return Err(ReadError::NotAFile);
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(ReadError::TooLarge {
                size: meta.len(),
                limit: MAX_FILE_BYTES,
            });
        }
        std::fs::read(&canonical).map_err(|e| ReadError::Io(e.to_string()))
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
            if !entry
                .file_type()
                .is_some_and(|t| t.is_file() || t.is_symlink())
            {
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

fn lexically_inside(path: &Path, root: &Path) -> bool {
    let mut depth: i64 = 0;
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    for c in rel.components() {
        match c {
            std::path::Component::ParentDir => depth -= 1,
            std::path::Component::Normal(_) => depth += 1,
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
}
