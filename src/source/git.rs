//! Git repositories, read in-process with gitoxide: refs, merge-base, the tree diff of a
//! pull request, and the files of a commit.
//!
//! Running the git program for each of these costs a process start apiece, several
//! times the work itself on a pull request of a few files; reading the object database
//! directly keeps `changes` within a small factor of `git diff --name-status`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gix::ObjectId;
use thiserror::Error;

use super::packs::{Found, Packs};
use super::{MAX_FILE_BYTES, ReadError, Tree, resolve_ref};

#[derive(Debug, Error)]
pub enum GitError {
    #[error("{dir} is not a git repository (or cannot be opened): {message}")]
    Open { dir: PathBuf, message: String },
    #[error("`{rev}` is not a commit in this repository")]
    UnknownRev { rev: String },
    #[error(
        "`{base}` and `{head}` have no common ancestor; if this is a shallow clone, fetch the \
         history (actions/checkout with `fetch-depth: 0`)"
    )]
    NoMergeBase { base: String, head: String },
    #[error("reading the git repository failed: {0}")]
    Read(String),
}

fn read_error(e: impl std::fmt::Display) -> GitError {
    GitError::Read(e.to_string())
}

/// One changed path between two commits.
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

/// Files with at least this share of equal lines count as renamed (git's default).
const RENAME_SIMILARITY: f32 = 0.5;
/// Content comparison for renames stops at this many added × deleted files; exact renames
/// (same content) are always found.
const RENAME_PAIRS_LIMIT: usize = 10_000;

/// A git repository.
#[derive(Clone)]
pub struct Git {
    shared: Arc<Shared>,
}

/// One open repository, and handles on it for the threads reading it: each handle has
/// its own object and pack caches, so threads decompress blobs side by side instead of
/// queueing for one handle.
struct Shared {
    sync: gix::ThreadSafeRepository,
    idle: Mutex<Vec<gix::Repository>>,
    /// Opened on the first file read.
    packs: std::sync::OnceLock<Packs>,
}

/// A handle borrowed from [`Shared::idle`], given back when dropped.
struct Handle<'g> {
    repo: Option<gix::Repository>,
    shared: &'g Shared,
}

impl std::ops::Deref for Handle<'_> {
    type Target = gix::Repository;
    fn deref(&self) -> &gix::Repository {
        // Only `drop` takes the repository out.
        self.repo.as_ref().expect("handle holds a repository")
    }
}

impl Drop for Handle<'_> {
    fn drop(&mut self) {
        if let (Some(repo), Ok(mut idle)) = (self.repo.take(), self.shared.idle.lock()) {
            idle.push(repo);
        }
    }
}

fn with_caches(mut repo: gix::Repository) -> gix::Repository {
    repo.object_cache_size_if_unset(4 * 1024 * 1024);
    repo
}

impl Git {
    pub fn open(dir: &Path) -> Result<Self, GitError> {
        let repo = gix::open(dir).map_err(|e| GitError::Open {
            dir: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let repo = with_caches(repo);
        Ok(Git {
            shared: Arc::new(Shared {
                sync: repo.clone().into_sync(),
                idle: Mutex::new(vec![repo]),
                packs: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The pack reader, opened on first use.
    fn packs(&self, repo: &gix::Repository) -> &Packs {
        self.shared
            .packs
            .get_or_init(|| Packs::open(repo.objects.store_ref().path(), repo.object_hash()))
    }

    /// A repository handle for this thread's use.
    fn repo(&self) -> Result<Handle<'_>, GitError> {
        let idle = self
            .shared
            .idle
            .lock()
            .map_err(|_| GitError::Read("repository lock poisoned".into()))?
            .pop();
        let repo = idle.unwrap_or_else(|| with_caches(self.shared.sync.to_thread_local()));
        Ok(Handle {
            repo: Some(repo),
            shared: &self.shared,
        })
    }

    /// The commits a pull request compares: the head commit and the merge-base of `base`
    /// and `head` (what GitHub compares a PR to).
    pub fn pull_request(&self, base: &str, head: &str) -> Result<(ObjectId, ObjectId), GitError> {
        let repo = self.repo()?;
        let head_id = commit_id(&repo, head)?;
        let base_id = commit_id(&repo, base)?;
        let no_merge_base = || GitError::NoMergeBase {
            base: base.into(),
            head: head.into(),
        };
        let merge_base = repo
            .merge_base(base_id, head_id)
            .map_err(|_| no_merge_base())?
            .ok_or_else(no_merge_base)?
            .detach();
        Ok((head_id, merge_base))
    }

    /// The files that differ between two commits.
    pub fn diff(&self, from: ObjectId, to: ObjectId) -> Result<Vec<DiffEntry>, GitError> {
        diff_commits(&*self.repo()?, from, to)
    }

    /// The files of one commit, read on demand.
    pub fn tree(&self, commit: ObjectId) -> Result<GitTree, GitError> {
        let tree = tree_of(&*self.repo()?, commit)?;
        Ok(GitTree {
            git: self.clone(),
            tree,
            cache: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            resolved: Mutex::new(HashMap::new()),
        })
    }
}

impl Git {
    /// The commit `HEAD` points to.
    pub fn head(&self) -> Result<ObjectId, GitError> {
        commit_id(&*self.repo()?, "HEAD")
    }

    /// Whether this is a shallow clone, its history cut short.
    pub fn is_shallow(&self) -> bool {
        self.repo().is_ok_and(|r| r.is_shallow().unwrap_or(false))
    }

    /// The first-parent history of the file at `path`, from commit `from` back, newest
    /// first: `visit` gets each commit and the blob `path` holds there (`None` where it
    /// is no regular file), and returns whether to go on. A shallow clone's history
    /// ends where it was cut.
    ///
    /// Objects come through the pack reader (a root tree is usually a delta of the one
    /// before, whose base it keeps inflated), and a subtree seen before is not read
    /// again: consecutive commits share most of them.
    pub fn file_history(
        &self,
        from: ObjectId,
        path: &str,
        mut visit: impl FnMut(ObjectId, Option<ObjectId>) -> bool,
    ) -> Result<(), GitError> {
        let repo = self.repo()?;
        let hash = repo.object_hash();
        let shallow = repo.is_shallow().unwrap_or(false);
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        // Per depth, what `parts[depth]` is in each tree looked in so far.
        let mut seen: Vec<HashMap<ObjectId, Option<Target>>> = vec![HashMap::new(); parts.len()];
        let mut next = Some(from);
        while let Some(id) = next {
            let data = match self.raw(&repo, id) {
                Ok((gix::object::Kind::Commit, data)) => data,
                Ok(_) => return Err(read_error(format!("{id} is not a commit"))),
                // The parent of a shallow clone's oldest commit is not there.
                Err(_) if shallow && id != from => break,
                Err(e) => return Err(e),
            };
            let tree = gix::objs::CommitRefIter::from_bytes(&data, hash)
                .tree_id()
                .map_err(read_error)?;
            let mut at = Some((tree, Kind::Dir));
            for (depth, part) in parts.iter().enumerate() {
                at = match at {
                    Some((tree, Kind::Dir)) => match seen[depth].get(&tree) {
                        Some(hit) => *hit,
                        None => {
                            let found = self.entry(&repo, tree, part)?;
                            seen[depth].insert(tree, found);
                            found
                        }
                    },
                    _ => None,
                };
            }
            let blob = at.filter(|(_, kind)| *kind == Kind::File).map(|(id, _)| id);
            if !visit(id, blob) {
                break;
            }
            next = gix::objs::CommitRefIter::from_bytes(&data, hash)
                .parent_ids()
                .next();
        }
        Ok(())
    }

    /// An object's kind and bytes, from the pack reader, else gitoxide.
    fn raw(
        &self,
        repo: &gix::Repository,
        id: ObjectId,
    ) -> Result<(gix::object::Kind, Arc<[u8]>), GitError> {
        if let Some(Found::Object(kind, data)) = self.packs(repo).find(&id, MAX_FILE_BYTES) {
            return Ok((kind, data));
        }
        let object = repo.find_object(id).map_err(read_error)?;
        Ok((object.kind, Arc::from(object.data.as_slice())))
    }

    /// The entry `name` of tree `tree`, if it has one (submodules are none).
    fn entry(
        &self,
        repo: &gix::Repository,
        tree: ObjectId,
        name: &str,
    ) -> Result<Option<Target>, GitError> {
        let (_, data) = self.raw(repo, tree)?;
        for entry in gix::objs::TreeRefIter::from_bytes(&data, repo.object_hash()) {
            let entry = entry.map_err(read_error)?;
            if entry.filename == name.as_bytes() {
                return Ok(
                    (!entry.mode.is_commit()).then(|| (entry.oid.to_owned(), kind_of(entry.mode)))
                );
            }
        }
        Ok(None)
    }

    /// A blob's bytes, when it is at most [`MAX_FILE_BYTES`].
    pub fn blob(&self, id: ObjectId) -> Result<Vec<u8>, ReadError> {
        let repo = self.repo().map_err(|e| ReadError::Io(e.to_string()))?;
        blob_bytes(self, &repo, id)
    }
}

/// The bytes of blob `id`, from the pack reader when it has them; a blob over
/// [`MAX_FILE_BYTES`] is refused from its header, before it is inflated.
fn blob_bytes(git: &Git, repo: &gix::Repository, id: ObjectId) -> Result<Vec<u8>, ReadError> {
    let io = |e: GitError| ReadError::Io(e.to_string());
    let too_large = |size| ReadError::TooLarge {
        size,
        limit: MAX_FILE_BYTES,
    };
    match git.packs(repo).find(&id, MAX_FILE_BYTES) {
        Some(Found::Object(gix::object::Kind::Blob, data)) => return Ok(data.to_vec()),
        Some(Found::TooLarge(size)) => return Err(too_large(size)),
        _ => {}
    }
    let size = repo.find_header(id).map_err(|e| io(read_error(e)))?.size();
    if size > MAX_FILE_BYTES {
        return Err(too_large(size));
    }
    let mut blob = repo.find_blob(id).map_err(|e| io(read_error(e)))?;
    Ok(blob.take_data())
}

fn commit_id(repo: &gix::Repository, rev: &str) -> Result<ObjectId, GitError> {
    let unknown = || GitError::UnknownRev { rev: rev.into() };
    let id = repo.rev_parse_single(rev).map_err(|_| unknown())?;
    let commit = id
        .object()
        .map_err(read_error)?
        .peel_to_commit()
        .map_err(|_| unknown())?;
    Ok(commit.id)
}

fn tree_of(repo: &gix::Repository, commit: ObjectId) -> Result<ObjectId, GitError> {
    let commit = repo
        .find_object(commit)
        .map_err(read_error)?
        .peel_to_commit()
        .map_err(read_error)?;
    commit.tree_id().map(|id| id.detach()).map_err(read_error)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Link,
}

/// What a tree entry points to.
type Target = (ObjectId, Kind);
/// A tree entry: name, id, kind.
type Entry<'t> = (&'t [u8], ObjectId, Kind);

/// A tree's entries (submodules left out), sorted by name. Names
/// stay borrowed from the tree: a diff only needs to own the few that differ.
fn decoded<'t>(tree: Option<&'t gix::Tree<'_>>) -> Result<Vec<Entry<'t>>, GitError> {
    let Some(tree) = tree else {
        return Ok(Vec::new());
    };
    let mut entries: Vec<_> = tree
        .decode()
        .map_err(read_error)?
        .entries
        .iter()
        .filter(|e| !e.mode.is_commit())
        .map(|e| -> (&[u8], _, _) { (e.filename, e.oid.to_owned(), kind_of(e.mode)) })
        .collect();
    // Git orders a directory as if its name ended in `/`; by the bare name, a file
    // and a directory of one name line up across the two sides.
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    Ok(entries)
}

fn find_tree(
    repo: &gix::Repository,
    id: Option<ObjectId>,
) -> Result<Option<gix::Tree<'_>>, GitError> {
    id.map(|id| repo.find_tree(id).map_err(read_error))
        .transpose()
}

fn name(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A tree's entries by name (submodules left out).
fn entries(repo: &gix::Repository, tree: ObjectId) -> Result<Vec<(String, Target)>, GitError> {
    let tree = find_tree(repo, Some(tree))?;
    Ok(decoded(tree.as_ref())?
        .into_iter()
        .map(|(n, id, kind)| (name(n), (id, kind)))
        .collect())
}

fn kind_of(mode: gix::object::tree::EntryMode) -> Kind {
    if mode.is_tree() {
        Kind::Dir
    } else if mode.is_link() {
        Kind::Link
    } else {
        Kind::File
    }
}

/// Files (blobs and symlinks) that differ between two trees, walking only the
/// subtrees whose ids differ.
fn diff_trees(
    repo: &gix::Repository,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    prefix: &str,
    out: &mut Changes,
) -> Result<(), GitError> {
    if old == new {
        return Ok(());
    }
    let (old_tree, new_tree) = (find_tree(repo, old)?, find_tree(repo, new)?);
    let (a, b) = (decoded(old_tree.as_ref())?, decoded(new_tree.as_ref())?);
    // Both sides are sorted by name: walk them side by side.
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(x), Some(y)) => x.0.cmp(y.0),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
        };
        let before = if order.is_le() { a.next() } else { None };
        let after = if order.is_ge() { b.next() } else { None };
        let Some(&(bytes, ..)) = before.or(after) else {
            break;
        };
        let side = |e: Option<&Entry>| e.map(|&(_, id, kind)| (id, kind));
        let (before, after) = (side(before), side(after));
        if before == after {
            continue;
        }
        let path = format!("{prefix}{}", name(bytes));
        let dir = |side: Option<Target>| side.filter(|(_, k)| *k == Kind::Dir).map(|(id, _)| id);
        let file = |side: Option<Target>| side.filter(|(_, k)| *k != Kind::Dir).map(|(id, _)| id);
        let (old_dir, new_dir) = (dir(before), dir(after));
        if old_dir.is_some() || new_dir.is_some() {
            diff_trees(repo, old_dir, new_dir, &format!("{path}/"), out)?;
        }
        match (file(before), file(after)) {
            (Some(_), Some(_)) => out.modified.push(path),
            (Some(id), None) => out.deleted.push((path, id)),
            (None, Some(id)) => out.added.push((path, id)),
            (None, None) => {}
        }
    }
    Ok(())
}

#[derive(Default)]
struct Changes {
    added: Vec<(String, ObjectId)>,
    deleted: Vec<(String, ObjectId)>,
    modified: Vec<String>,
}

fn diff_commits(
    repo: &gix::Repository,
    from: ObjectId,
    to: ObjectId,
) -> Result<Vec<DiffEntry>, GitError> {
    let mut changes = Changes::default();
    diff_trees(
        repo,
        Some(tree_of(repo, from)?),
        Some(tree_of(repo, to)?),
        "",
        &mut changes,
    )?;
    let renames = pair_renames(repo, &changes.deleted, &changes.added)?;
    let renamed_from: std::collections::HashSet<&str> =
        renames.iter().map(|(f, _)| f.as_str()).collect();
    let renamed_to: std::collections::HashSet<&str> =
        renames.iter().map(|(_, t)| t.as_str()).collect();
    let mut entries: Vec<DiffEntry> = changes
        .modified
        .iter()
        .map(|p| DiffEntry::Modified(p.clone()))
        .chain(
            changes
                .deleted
                .iter()
                .filter(|(p, _)| !renamed_from.contains(p.as_str()))
                .map(|(p, _)| DiffEntry::Deleted(p.clone())),
        )
        .chain(
            changes
                .added
                .iter()
                .filter(|(p, _)| !renamed_to.contains(p.as_str()))
                .map(|(p, _)| DiffEntry::Added(p.clone())),
        )
        .chain(renames.iter().map(|(from, to)| DiffEntry::Renamed {
            from: from.clone(),
            to: to.clone(),
        }))
        .collect();
    entries.sort_by(|a, b| a.paths().last().cmp(&b.paths().last()));
    Ok(entries)
}

/// Deleted and added files that are the same file moved: first identical content, then,
/// while the number of pairs stays reasonable, content that is at least half the same.
fn pair_renames(
    repo: &gix::Repository,
    deleted: &[(String, ObjectId)],
    added: &[(String, ObjectId)],
) -> Result<Vec<(String, String)>, GitError> {
    let mut pairs = Vec::new();
    let mut taken_old = vec![false; deleted.len()];
    let mut taken_new = vec![false; added.len()];
    for (j, (_, new_id)) in added.iter().enumerate() {
        if let Some(i) = (0..deleted.len()).find(|&i| !taken_old[i] && deleted[i].1 == *new_id) {
            taken_old[i] = true;
            taken_new[j] = true;
            pairs.push((deleted[i].0.clone(), added[j].0.clone()));
        }
    }
    let olds: Vec<usize> = (0..deleted.len()).filter(|&i| !taken_old[i]).collect();
    let news: Vec<usize> = (0..added.len()).filter(|&j| !taken_new[j]).collect();
    if olds.is_empty() || news.is_empty() || olds.len() * news.len() > RENAME_PAIRS_LIMIT {
        return Ok(pairs);
    }
    let text = |id: ObjectId| -> Result<Option<String>, GitError> {
        if repo.find_header(id).map_err(read_error)?.size() > MAX_FILE_BYTES {
            return Ok(None);
        }
        let mut blob = repo.find_blob(id).map_err(read_error)?;
        Ok(String::from_utf8(blob.take_data()).ok())
    };
    let old_texts: Vec<Option<String>> = olds
        .iter()
        .map(|&i| text(deleted[i].1))
        .collect::<Result<_, _>>()?;
    let new_texts: Vec<Option<String>> = news
        .iter()
        .map(|&j| text(added[j].1))
        .collect::<Result<_, _>>()?;
    let mut scored = Vec::new();
    for (oi, old) in old_texts.iter().enumerate() {
        for (ni, new) in new_texts.iter().enumerate() {
            if let (Some(a), Some(b)) = (old, new) {
                let ratio = similar::TextDiff::from_lines(a.as_str(), b.as_str()).ratio();
                if ratio >= RENAME_SIMILARITY {
                    scored.push((ratio, oi, ni));
                }
            }
        }
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut used_old, mut used_new) = (vec![false; olds.len()], vec![false; news.len()]);
    for (_, oi, ni) in scored {
        if !used_old[oi] && !used_new[ni] {
            used_old[oi] = true;
            used_new[ni] = true;
            pairs.push((deleted[olds[oi]].0.clone(), added[news[ni]].0.clone()));
        }
    }
    Ok(pairs)
}

/// Symlinks followed in one read before giving up (a loop).
const MAX_LINK_HOPS: usize = 16;

/// The files of one commit. Every read is remembered: artifacts share tool definitions
/// and suites, and each is read once.
pub struct GitTree {
    git: Git,
    tree: ObjectId,
    cache: Mutex<HashMap<String, Result<Vec<u8>, ReadError>>>,
    /// Listings of the directories walked so far, by tree id.
    dirs: Mutex<HashMap<ObjectId, Arc<Listing>>>,
    /// Where paths lead once symlinks are followed.
    resolved: Mutex<HashMap<String, Option<String>>>,
}

type Listing = HashMap<String, Target>;

impl GitTree {
    /// Where `path` leads once symlinks inside the tree are followed: the final path and
    /// the file's blob (`None` for a directory).
    fn locate(
        &self,
        repo: &gix::Repository,
        path: &str,
        hops: usize,
    ) -> Result<(String, Option<ObjectId>), ReadError> {
        let io = |e: GitError| ReadError::Io(e.to_string());
        if hops > MAX_LINK_HOPS {
            return Err(ReadError::Io(format!(
                "too many symlinks resolving `{path}`"
            )));
        }
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut tree = self.tree;
        for (i, part) in parts.iter().enumerate() {
            let Some((id, kind)) = self.listing(repo, tree).map_err(io)?.get(*part).copied() else {
                return Err(ReadError::Missing);
            };
            let last = i + 1 == parts.len();
            match kind {
                Kind::Dir if last => return Ok((parts.join("/"), None)),
                Kind::Dir => tree = id,
                Kind::Link => {
                    let blob = repo.find_blob(id).map_err(|e| io(read_error(e)))?;
                    let target = String::from_utf8_lossy(&blob.data).into_owned();
                    let here = parts[..=i].join("/");
                    let resolved =
                        resolve_ref(&here, &target).map_err(|_| ReadError::Escapes { target })?;
                    let rest = parts[i + 1..].join("/");
                    let next = if rest.is_empty() {
                        resolved
                    } else {
                        format!("{resolved}/{rest}")
                    };
                    return self.locate(repo, &next, hops + 1);
                }
                Kind::File if last => return Ok((parts.join("/"), Some(id))),
                Kind::File => return Err(ReadError::Missing),
            }
        }
        Ok((String::new(), None))
    }

    fn read_blob(&self, repo: &gix::Repository, path: &str) -> Result<Vec<u8>, ReadError> {
        let Some(id) = self.locate(repo, path, 0)?.1 else {
            return Err(ReadError::NotAFile(super::Special::Directory));
        };
        blob_bytes(&self.git, repo, id)
    }

    fn listing(&self, repo: &gix::Repository, tree: ObjectId) -> Result<Arc<Listing>, GitError> {
        if let Ok(dirs) = self.dirs.lock()
            && let Some(hit) = dirs.get(&tree)
        {
            return Ok(hit.clone());
        }
        let listing: Arc<Listing> = Arc::new(entries(repo, tree)?.into_iter().collect());
        if let Ok(mut dirs) = self.dirs.lock() {
            dirs.insert(tree, listing.clone());
        }
        Ok(listing)
    }

    fn list_into(
        repo: &gix::Repository,
        tree: ObjectId,
        prefix: &str,
        out: &mut Vec<String>,
    ) -> Result<(), GitError> {
        for (name, (id, kind)) in entries(repo, tree)? {
            let path = format!("{prefix}{name}");
            if kind == Kind::Dir {
                Self::list_into(repo, id, &format!("{path}/"), out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
}

impl Tree for GitTree {
    fn read(&self, path: &str) -> Result<Vec<u8>, ReadError> {
        if let Ok(cache) = self.cache.lock()
            && let Some(hit) = cache.get(path)
        {
            return hit.clone();
        }
        let result = {
            let repo = self.git.repo().map_err(|e| ReadError::Io(e.to_string()))?;
            self.read_blob(&repo, path)
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(path.to_string(), result.clone());
        }
        result
    }

    fn resolve(&self, path: &str) -> Option<String> {
        if let Ok(resolved) = self.resolved.lock()
            && let Some(hit) = resolved.get(path)
        {
            return hit.clone();
        }
        let target = {
            let repo = self.git.repo().ok()?;
            self.locate(&repo, path, 0).ok().map(|(p, _)| p)
        };
        if let Ok(mut resolved) = self.resolved.lock() {
            resolved.insert(path.to_string(), target.clone());
        }
        target
    }

    fn list(&self) -> anyhow::Result<Vec<String>> {
        let repo = self.git.repo()?;
        let mut out = Vec::new();
        Self::list_into(&repo, self.tree, "", &mut out)?;
        Ok(out)
    }
}
