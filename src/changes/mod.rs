//! What a pull request changed: artifacts added, deleted, renamed, modified, and modified
//! only because a file they reference changed; with fields, instruction diff and whether
//! behaviour changed without a version bump.
//!
//! [`detect`] works on two [`Snapshot`]s (the merge-base and the head) and the list of
//! changed paths; where those come from is [`crate::source::git`]'s business.

pub mod fields;
pub mod render;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::artifact::suite::EvalSet;
use crate::artifact::{self, Artifact};
use crate::diag::Diagnostic;
use crate::repo::Snapshot;
use crate::source::git::DiffEntry;
use fields::FieldChange;

/// Version of the JSON that `changes --format json` prints.
pub const SCHEMA: &str = "promptgate.changes/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    Added,
    Deleted,
    Renamed,
    /// The artifact file itself changed.
    Modified,
    /// The artifact file is untouched; a file it references changed.
    ReferenceChanged,
}

impl ChangeKind {
    /// The kind in words, for reports.
    pub fn word(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Renamed => "renamed",
            ChangeKind::Modified => "modified",
            ChangeKind::ReferenceChanged => "referenced file changed",
        }
    }
}

/// One side of a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub path: String,
    pub version: Option<String>,
    /// `None` when this side does not load.
    pub fingerprint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArtifactChange {
    pub id: String,
    pub kind: ChangeKind,
    pub base: Option<Side>,
    pub head: Option<Side>,
    /// The fingerprint differs; true as well for added and deleted artifacts, and when
    /// one side cannot be read at all (then its `problems` say why).
    pub behaviour_changed: bool,
    /// A suite or cases file of the artifact changed.
    pub evals_changed: bool,
    /// Behaviour changed and `version` stayed the same.
    pub missing_version_bump: bool,
    pub fields: Vec<FieldChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_diff: Option<String>,
    /// Changed files this artifact references (tools, schemas, suites, cases files).
    pub changed_references: Vec<String>,
    /// Why the head version does not load, if it does not.
    pub problems: Vec<Diagnostic>,
}

impl ArtifactChange {
    pub fn path(&self) -> &str {
        self.head
            .as_ref()
            .or(self.base.as_ref())
            .map_or("", |s| s.path.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeSet {
    pub schema: &'static str,
    pub base: String,
    pub head: String,
    pub merge_base: String,
    pub head_commit: String,
    pub files_changed: usize,
    pub artifacts: Vec<ArtifactChange>,
}

impl ChangeSet {
    pub fn behaviour_changes(&self) -> impl Iterator<Item = &ArtifactChange> {
        self.artifacts.iter().filter(|a| a.behaviour_changed)
    }

    pub fn evals_only(&self) -> impl Iterator<Item = &ArtifactChange> {
        self.artifacts
            .iter()
            .filter(|a| !a.behaviour_changed && a.evals_changed)
    }

    pub fn touched_only(&self) -> impl Iterator<Item = &ArtifactChange> {
        self.artifacts
            .iter()
            .filter(|a| !a.behaviour_changed && !a.evals_changed)
    }
}

/// Where the commits came from, for the report.
pub struct Refs {
    pub base: String,
    pub head: String,
    pub merge_base: String,
    pub head_commit: String,
}

/// Start, on another thread, what [`detect`] needs once per process and does not depend
/// on the repository: the formats' schemas, the template checker, the number of cores.
/// Called before the repository is opened, this is done by the time the first artifact
/// is compared, instead of the first comparison doing it while the other core idles
/// (0.5–1 ms of the 8 a 50-artifact pull request takes, in the benchmark).
pub fn prepare() {
    std::thread::spawn(|| {
        artifact::prepare();
        cores();
    });
}

/// Cores this process may use, read once (the cgroup's quota takes a few file reads).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Classify every artifact the diff touches, directly or through a referenced file.
pub fn detect(
    base: &Snapshot,
    head: &Snapshot,
    entries: &[DiffEntry],
    refs: Refs,
) -> anyhow::Result<ChangeSet> {
    let changed: BTreeSet<&str> = entries.iter().flat_map(DiffEntry::paths).collect();
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut direct: BTreeSet<String> = BTreeSet::new();
    for entry in entries {
        let (b, h) = match entry {
            DiffEntry::Added(p) => (None, Some(p)),
            DiffEntry::Deleted(p) => (Some(p), None),
            DiffEntry::Modified(p) => (Some(p), Some(p)),
            DiffEntry::Renamed { from, to } => (Some(from), Some(to)),
        };
        let b = b.filter(|p| base.is_artifact(p)).cloned();
        let h = h.filter(|p| head.is_artifact(p)).cloned();
        let kind = match (&b, &h, entry) {
            (None, None, _) => continue,
            (None, Some(_), _) => ChangeKind::Added,
            (Some(_), None, _) => ChangeKind::Deleted,
            (Some(_), Some(_), DiffEntry::Renamed { .. }) => ChangeKind::Renamed,
            (Some(_), Some(_), _) => ChangeKind::Modified,
        };
        direct.extend(b.iter().chain(h.iter()).cloned());
        candidates.push((kind, b, h));
    }
    pair_by_id(base, head, &mut candidates);

    // Files that are not artifacts may be what an untouched artifact depends on.
    let others: BTreeSet<&str> = changed
        .iter()
        .copied()
        .filter(|p| !base.is_artifact(p) && !head.is_artifact(p))
        .collect();
    if !others.is_empty() {
        for path in mentioning_artifacts(head, &others)? {
            if direct.contains(&path) {
                continue;
            }
            // At head it may have lost the reference (a suite moved away): ask both sides.
            let uses = |snapshot: &Snapshot| {
                snapshot
                    .load_artifact(&path)
                    .is_ok_and(|a| uses_any(&dependencies(snapshot, &a), &others))
            };
            let touches = uses(head) || uses(base);
            if touches {
                candidates.push((ChangeKind::ReferenceChanged, Some(path.clone()), Some(path)));
            }
        }
    }

    let mut artifacts: Vec<ArtifactChange> = parallel_map(&candidates, |(kind, b, h)| {
        compare(base, head, *kind, b.as_deref(), h.as_deref(), &changed)
    });
    artifacts.sort_by(|a, b| {
        (!a.behaviour_changed, a.kind, a.path()).cmp(&(!b.behaviour_changed, b.kind, b.path()))
    });
    Ok(ChangeSet {
        schema: SCHEMA,
        base: refs.base,
        head: refs.head,
        merge_base: refs.merge_base,
        head_commit: refs.head_commit,
        files_changed: entries.len(),
        artifacts,
    })
}

/// (kind, base path, head path)
type Candidate = (ChangeKind, Option<String>, Option<String>);

/// The `id` a file sets itself, if it loads and sets one.
fn explicit_id(snapshot: &Snapshot, path: &str) -> Option<String> {
    let artifact = snapshot.load_artifact(path).ok()?;
    artifact.node.get("id").map(|_| artifact.id)
}

/// An artifact's id outweighs file similarity: a "rename" between two different ids is a
/// deletion and an addition, and a deletion and an addition of one id is a rename.
fn pair_by_id(base: &Snapshot, head: &Snapshot, candidates: &mut Vec<Candidate>) {
    let mut split = Vec::new();
    for candidate in candidates.iter_mut() {
        if let (ChangeKind::Renamed, Some(b), Some(h)) = candidate
            && let (Some(old), Some(new)) = (explicit_id(base, b), explicit_id(head, h))
            && old != new
        {
            split.push((ChangeKind::Added, None, Some(h.clone())));
            *candidate = (ChangeKind::Deleted, Some(b.clone()), None);
        }
    }
    candidates.extend(split);
    let added: Vec<(usize, String)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.0 == ChangeKind::Added)
        .filter_map(|(i, c)| Some((i, explicit_id(head, c.2.as_deref()?)?)))
        .collect();
    let mut merged = Vec::new();
    for (i, id) in added {
        let deleted = candidates.iter().position(|c| {
            c.0 == ChangeKind::Deleted
                && c.1
                    .as_deref()
                    .and_then(|b| explicit_id(base, b))
                    .is_some_and(|old| old == id)
        });
        if let Some(d) = deleted {
            let from = candidates[d].1.take();
            candidates[i] = (ChangeKind::Renamed, from, candidates[i].2.take());
            merged.push(d);
        }
    }
    let mut index = 0;
    candidates.retain(|_| {
        index += 1;
        !merged.contains(&(index - 1))
    });
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn mentions(text: &[u8], needles: &BTreeSet<String>) -> bool {
    needles
        .iter()
        .any(|n| memchr::memmem::find(text, n.as_bytes()).is_some())
}

/// Files that can name other files: suites, cases files, schemas.
fn may_refer(path: &str) -> bool {
    [".yaml", ".yml", ".json", ".jsonl"]
        .iter()
        .any(|ext| path.ends_with(ext))
}

/// Artifacts that may depend on a changed file. A reference is a relative path, so it
/// ends in the file's name: an artifact depends on a changed file only if its text names
/// the file, or names a file (a suite, a cases file, a symlink) that in turn leads to it.
/// Only these artifacts are parsed; parsing decides.
fn mentioning_artifacts(head: &Snapshot, changed: &BTreeSet<&str>) -> anyhow::Result<Vec<String>> {
    let files = head.tree.list()?;
    let mut needles: BTreeSet<String> = changed.iter().map(|p| base_name(p).to_string()).collect();
    let others: Vec<&String> = files.iter().filter(|p| !head.is_artifact(p)).collect();
    // A symlink to a changed file (or to a directory holding one) stands for it.
    for path in &others {
        if let Some(target) = head.tree.resolve(path)
            && target != **path
            && changed
                .iter()
                .any(|c| *c == target || c.starts_with(&format!("{target}/")))
        {
            needles.insert(base_name(path).to_string());
        }
    }
    // Files naming a needle pass it on, until nothing new is found.
    let mut named: BTreeSet<&str> = BTreeSet::new();
    loop {
        let before = needles.len();
        for path in others.iter().filter(|p| may_refer(p)) {
            if !named.contains(path.as_str())
                && let Ok(text) = head.tree.read(path)
                && mentions(&text, &needles)
            {
                named.insert(path.as_str());
                needles.insert(base_name(path).to_string());
            }
        }
        if needles.len() == before {
            break;
        }
    }
    Ok(files
        .iter()
        .filter(|p| head.is_artifact(p))
        .filter(|p| {
            head.tree
                .read(p)
                .is_ok_and(|text| mentions(&text, &needles))
        })
        .cloned()
        .collect())
}

/// `f` over `items` on every core, results in order. Threads take the next item as
/// they finish one (artifacts differ in size), and the calling thread works too.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = cores().min(items.len() / 4);
    if workers < 2 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, f(item)));
        }
    };
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..workers).map(|_| scope.spawn(work)).collect();
        let mut all = work();
        for helper in helpers {
            all.extend(
                helper
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            );
        }
        all
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The files an artifact's eval set is read from (suites, cases files, schemas), with
/// the files that symlinks among them lead to.
fn eval_files(snapshot: &Snapshot, artifact: &Artifact) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for suite in &artifact.evals {
        files.insert(suite.clone());
        files.extend(snapshot.suite(suite).0.files.iter().cloned());
    }
    with_link_targets(snapshot, files)
}

fn with_link_targets(snapshot: &Snapshot, mut files: BTreeSet<String>) -> BTreeSet<String> {
    let targets: Vec<String> = files
        .iter()
        .filter_map(|f| snapshot.tree.resolve(f))
        .collect();
    files.extend(targets);
    files
}

/// Every file an artifact's behaviour or eval set is read from.
fn dependencies(snapshot: &Snapshot, artifact: &Artifact) -> BTreeSet<String> {
    dependencies_with(snapshot, artifact, eval_files(snapshot, artifact))
}

/// [`dependencies`], given the artifact's [`eval_files`].
fn dependencies_with(
    snapshot: &Snapshot,
    artifact: &Artifact,
    eval_files: BTreeSet<String>,
) -> BTreeSet<String> {
    let mut deps = with_link_targets(snapshot, artifact.references.iter().cloned().collect());
    deps.extend(eval_files);
    deps
}

fn side(path: &str, loaded: &Result<Artifact, crate::diag::Diagnostics>) -> Side {
    Side {
        path: path.to_string(),
        version: loaded.as_ref().ok().and_then(|a| a.version.clone()),
        fingerprint: loaded.as_ref().ok().map(|a| a.fingerprint.clone()),
    }
}

fn compare(
    base: &Snapshot,
    head: &Snapshot,
    kind: ChangeKind,
    base_path: Option<&str>,
    head_path: Option<&str>,
    changed: &BTreeSet<&str>,
) -> ArtifactChange {
    let old = base_path.map(|p| (p, base.load_artifact(p)));
    let new = head_path.map(|p| (p, head.load_artifact(p)));
    let id = new
        .as_ref()
        .and_then(|(_, r)| r.as_ref().ok().map(|a| a.id.clone()))
        .or_else(|| {
            old.as_ref()
                .and_then(|(_, r)| r.as_ref().ok().map(|a| a.id.clone()))
        })
        .unwrap_or_else(|| crate::artifact::default_id(head_path.or(base_path).unwrap_or("")));

    let mut changed_references = BTreeSet::new();
    let mut evals_changed = false;
    for (snapshot, loaded) in [(base, &old), (head, &new)] {
        if let Some((_, Ok(a))) = loaded {
            let suite_files = eval_files(snapshot, a);
            for file in dependencies_with(snapshot, a, suite_files.clone()) {
                if changed.contains(file.as_str()) {
                    evals_changed |= suite_files.contains(&file);
                    changed_references.insert(file);
                }
            }
        }
    }

    let (mut fields, mut message_diff) = (Vec::new(), None);
    let (mut behaviour_changed, mut missing_version_bump) = (true, false);
    if let (Some((_, Ok(a))), Some((_, Ok(b)))) = (&old, &new) {
        fields = fields::diff(a, b);
        message_diff = fields::message_diff(a, b);
        behaviour_changed = a.fingerprint != b.fingerprint;
        missing_version_bump = behaviour_changed && a.version.is_some() && a.version == b.version;
        if a.evals != b.evals {
            evals_changed = true;
        }
        // An inline eval set (GitHub Models test data) changes with the file.
        if !same_cases(a.inline_evals.as_ref(), b.inline_evals.as_ref()) {
            evals_changed = true;
        }
    }
    let problems = match &new {
        Some((_, Err(d))) => d.0.clone(),
        Some((_, Ok(a))) => a
            .problems
            .0
            .iter()
            .filter(|d| d.severity == crate::diag::Severity::Error)
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    ArtifactChange {
        id,
        kind,
        base: old.as_ref().map(|(p, r)| side(p, r)),
        head: new.as_ref().map(|(p, r)| side(p, r)),
        behaviour_changed,
        evals_changed,
        missing_version_bump,
        fields,
        message_diff,
        changed_references: changed_references.into_iter().collect(),
        problems,
    }
}

fn uses_any(deps: &BTreeSet<String>, changed: &BTreeSet<&str>) -> bool {
    deps.iter().any(|d| changed.contains(d.as_str()))
}

type CaseKey<'a> = (
    &'a String,
    &'a Vec<String>,
    &'a std::collections::BTreeMap<String, serde_json::Value>,
    &'a std::collections::BTreeMap<String, crate::artifact::suite::ToolResult>,
    Vec<(&'a crate::artifact::assertion::Check, bool, u64)>,
);

fn case_keys(set: Option<&EvalSet>) -> Option<Vec<CaseKey<'_>>> {
    set.map(|s| {
        s.cases
            .iter()
            .map(|c| {
                let checks = c
                    .assertions
                    .iter()
                    .map(|a| (&a.check, a.negate, a.weight.to_bits()))
                    .collect();
                (&c.id, &c.segments, &c.vars, &c.tool_results, checks)
            })
            .collect()
    })
}

/// Whether two eval sets hold the same cases, wherever in their files they are written.
fn same_cases(a: Option<&EvalSet>, b: Option<&EvalSet>) -> bool {
    case_keys(a) == case_keys(b)
}
