//! Where a version comes from: `rollout start` rolls out only an artifact the
//! repository has at `HEAD`, in versions some commit of its first-parent history gave
//! it, and records the commit that introduced each. Git is read here, at the edge;
//! [`Walk`] is the pure part.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::diag::did_you_mean;
use crate::format::yaml::Kind;
use crate::repo::Snapshot;
use crate::source::git::Git;

/// Versions seen walking a file's history from the newest commit back, and the commit
/// that introduced each version asked for: the oldest commit of the newest run of
/// commits that has it (a version reverted to and introduced again is the later one).
#[derive(Debug, Clone, PartialEq)]
pub struct Walk<C> {
    wanted: Vec<String>,
    found: Vec<(String, C)>,
    /// Every version seen, newest first, each once.
    seen: Vec<String>,
    /// The version of the commits walked since it last changed, and the oldest of them.
    run: Option<(Option<String>, C)>,
}

impl<C: Clone> Walk<C> {
    pub fn new(wanted: &[&str]) -> Self {
        Walk {
            wanted: wanted.iter().map(|w| w.to_string()).collect(),
            found: Vec::new(),
            seen: Vec::new(),
            run: None,
        }
    }

    /// The next commit back, and the version the file has there (`None`: no file, or no
    /// version). Returns whether a version asked for is still to be found.
    pub fn step(&mut self, commit: C, version: Option<String>) -> bool {
        match &mut self.run {
            Some((v, oldest)) if *v == version => *oldest = commit,
            _ => {
                self.close();
                if let Some(v) = &version
                    && !self.seen.contains(v)
                {
                    self.seen.push(v.clone());
                }
                self.run = Some((version, commit));
            }
        }
        self.pending()
    }

    /// The run walked last is over: its version was introduced by its oldest commit.
    fn close(&mut self) {
        if let Some((Some(v), commit)) = self.run.take()
            && self.wanted.contains(&v)
            && !self.found.iter().any(|(f, _)| *f == v)
        {
            self.found.push((v, commit));
        }
    }

    fn pending(&self) -> bool {
        self.wanted
            .iter()
            .any(|w| !self.found.iter().any(|(f, _)| f == w))
    }

    /// History ended (or the caller stopped): the commit of each version asked for that
    /// was found, and every version seen, newest first.
    pub fn finish(mut self) -> (Vec<(String, C)>, Vec<String>) {
        self.close();
        (self.found, self.seen)
    }
}

/// The `version` a native artifact file states, as text (`4`, `2025-01-rc`).
pub fn version_of(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let node = crate::format::parse_yaml("", text).ok()?;
    match &node.get("version")?.kind {
        Kind::Int(n) if *n >= 0 => Some(n.to_string()),
        Kind::Str(s) => Some(s.clone()),
        _ => None,
    }
}

/// Versions named when one asked for is not there.
const LISTED: usize = 12;

/// A version checked against the repository: the commit that introduced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub version: String,
    pub commit: String,
    /// The artifact's file at `HEAD`, whose history was read.
    pub path: String,
}

/// Check `artifact` against the repository at `root`: an artifact of that id at
/// `HEAD` (by the config at `config_path`), whose file's first-parent history has
/// each of `versions`. Returns, in order, the commit that introduced each. An error
/// says what is missing and what there is.
pub fn check(
    root: &Path,
    config_path: Option<&str>,
    artifact: &str,
    versions: &[&str],
) -> Result<Vec<Origin>> {
    let git = Git::open(root).context(
        "`rollout start` checks the version against the repository's git history: run it in the repository",
    )?;
    let head = git.head()?;
    let tree = git.tree(head)?;
    let snapshot = Snapshot::open(&tree, config_path);
    let mut ids = Vec::new();
    let mut unreadable = 0;
    let mut path = None;
    for p in snapshot.artifact_paths()? {
        match snapshot.load_artifact(&p) {
            Ok(a) if a.id == artifact => {
                path = Some(p);
                break;
            }
            Ok(a) => ids.push(a.id),
            Err(_) => unreadable += 1,
        }
    }
    let short = |id: &gix::ObjectId| id.to_hex_with_len(12).to_string();
    let Some(path) = path else {
        ids.sort();
        let listed = match ids.len() {
            0 => "it has none".to_string(),
            _ => format!("it has {}", ids.join(", ")),
        };
        let unread = match unreadable {
            0 => String::new(),
            n => format!("; {n} artifact file(s) could not be read (see `promptgate validate`)"),
        };
        bail!(
            "there is no artifact `{artifact}` in the repository at HEAD (commit {}){}: {listed}{unread}",
            short(&head),
            did_you_mean(artifact, ids.iter().map(String::as_str)),
        );
    };
    let mut walk = Walk::new(versions);
    let mut read: HashMap<gix::ObjectId, Option<String>> = HashMap::new();
    let mut failed = None;
    git.file_history(head, &path, |commit, blob| {
        let version = blob.and_then(|id| {
            read.entry(id)
                .or_insert_with(|| match git.blob(id) {
                    Ok(bytes) => version_of(&bytes),
                    Err(e) => {
                        failed = Some(e);
                        None
                    }
                })
                .clone()
        });
        walk.step(commit, version) && failed.is_none()
    })?;
    if let Some(e) = failed {
        bail!("cannot read {path} in the repository's history: {e}");
    }
    let (found, seen) = walk.finish();
    let mut out = Vec::new();
    for v in versions {
        match found.iter().find(|(f, _)| f == v) {
            Some((_, commit)) => out.push(Origin {
                version: v.to_string(),
                commit: commit.to_string(),
                path: path.clone(),
            }),
            None => {
                let there = match seen.len() {
                    0 => "none".to_string(),
                    n if n > LISTED => format!(
                        "{} and {} older (newest first)",
                        seen[..LISTED].join(", "),
                        n - LISTED
                    ),
                    _ => format!("{} (newest first)", seen.join(", ")),
                };
                let shallow = if git.is_shallow() {
                    "; this clone is shallow: fetch the history (actions/checkout with `fetch-depth: 0`)"
                } else {
                    ""
                };
                bail!(
                    "`{artifact}` has no version {v} in the history of {path} (first parents of HEAD); its versions there: {there}{shallow}"
                );
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(
        history: &[(u32, Option<&str>)],
        wanted: &[&str],
    ) -> (Vec<(String, u32)>, Vec<String>, usize) {
        let mut w = Walk::new(wanted);
        let mut steps = 0;
        for (commit, version) in history {
            steps += 1;
            if !w.step(*commit, version.map(str::to_string)) {
                break;
            }
        }
        let (found, seen) = w.finish();
        (found, seen, steps)
    }

    #[test]
    fn a_version_comes_from_the_oldest_commit_of_its_newest_run() {
        // Newest first: 9 and 8 have version 4, 7 and 6 version 3, 5 none, 4 has 3 again.
        let history = [
            (9, Some("4")),
            (8, Some("4")),
            (7, Some("3")),
            (6, Some("3")),
            (5, None),
            (4, Some("3")),
            (3, Some("2")),
        ];
        let (found, seen, steps) = walk(&history, &["4"]);
        assert_eq!(found, vec![("4".to_string(), 8)]);
        // It stops at the first commit past the run.
        assert_eq!(steps, 3);
        assert_eq!(seen, vec!["4", "3"]);
        let (found, _, steps) = walk(&history, &["3", "4"]);
        assert_eq!(found, vec![("4".into(), 8), ("3".into(), 6)]);
        assert_eq!(steps, 5);
        // Not there: the whole history is read, and every version seen said.
        let (found, seen, steps) = walk(&history, &["7"]);
        assert!(found.is_empty());
        assert_eq!((seen, steps), (vec!["4".into(), "3".into(), "2".into()], 7));
        // The first commit of history closes its run.
        let (found, _, _) = walk(&history, &["2"]);
        assert_eq!(found, vec![("2".into(), 3)]);
    }

    #[test]
    fn the_version_is_read_from_the_file() {
        assert_eq!(version_of(b"id: a\nversion: 4\n").as_deref(), Some("4"));
        assert_eq!(
            version_of(b"version: \"2025-01\"\n").as_deref(),
            Some("2025-01")
        );
        assert_eq!(version_of(b"version: [1]\n"), None);
        assert_eq!(version_of(b"model: x\n"), None);
        assert_eq!(version_of(b"\xff"), None);
    }
}
