//! A repository at one point in time: its files, its config, its artifacts and suites.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::artifact::suite::{self, EvalSet};
use crate::artifact::{self, Artifact};
use crate::config::{CONFIG_FILE, Config};
use crate::diag::{Diagnostics, Pos};
use crate::format;
use crate::format::yaml::{Entry, Kind, Node};
use crate::source::git::{DiffEntry, Git, GitError, GitTree};
use crate::source::{ReadError, Tree};

/// A pull request as git holds it: the head commit, the merge-base it is compared to
/// (what GitHub shows for a pull request), and the trees of both.
pub struct PullRequest {
    git: Git,
    pub head_commit: gix::ObjectId,
    pub merge_base: gix::ObjectId,
    pub base_tree: GitTree,
    pub head_tree: GitTree,
}

/// The files a pull request changed and its two sides, configs read.
pub struct Sides<'t> {
    pub entries: Vec<DiffEntry>,
    pub base: Snapshot<'t>,
    pub head: Snapshot<'t>,
}

impl PullRequest {
    pub fn open(root: &std::path::Path, base: &str, head: &str) -> Result<Self, GitError> {
        let git = Git::open(root)?;
        let (head_commit, merge_base) = git.pull_request(base, head)?;
        Ok(PullRequest {
            base_tree: git.tree(merge_base)?,
            head_tree: git.tree(head_commit)?,
            git,
            head_commit,
            merge_base,
        })
    }

    /// What changed, and both sides with their configs.
    pub fn sides(&self, config_path: Option<&str>) -> Result<Sides<'_>, GitError> {
        Ok(Sides {
            entries: self.git.diff(self.merge_base, self.head_commit)?,
            base: Snapshot::open(&self.base_tree, config_path),
            head: Snapshot::open(&self.head_tree, config_path),
        })
    }
}

type SuiteCell = Arc<OnceLock<Arc<(EvalSet, Diagnostics)>>>;

/// One tree with its config read. Suites are loaded once however many artifacts use them.
pub struct Snapshot<'t> {
    pub tree: &'t dyn Tree,
    pub config: Config,
    pub config_path: String,
    /// Problems with the config; when there are any, defaults stand in for it.
    pub config_problems: Diagnostics,
    globs: GlobSet,
    github_globs: GlobSet,
    /// Whether each file `github_globs` matched reads as a GitHub Models file.
    sniffed: Mutex<BTreeMap<String, bool>>,
    suites: Mutex<BTreeMap<String, SuiteCell>>,
    /// Cases of the suites held, against [`suite::MAX_CASES_HELD`].
    cases_held: AtomicUsize,
}

impl<'t> Snapshot<'t> {
    /// Read the config at `config_path` (default `.promptgate.yaml`). A missing file
    /// means defaults; a broken one is reported and defaults stand in.
    pub fn open(tree: &'t dyn Tree, config_path: Option<&str>) -> Self {
        let path = config_path.unwrap_or(CONFIG_FILE).to_string();
        let mut problems = Diagnostics::default();
        let config = match tree.read(&path) {
            Err(ReadError::Missing) if config_path.is_none() => Config::default(),
            Err(e) => {
                problems.push(&path, Pos::START, format::read_error_message(&e));
                Config::default()
            }
            Ok(bytes) => match format::text_of(&path, bytes)
                .and_then(|text| format::parse_yaml(&path, &text))
            {
                Err(d) => {
                    problems.extend(d);
                    Config::default()
                }
                Ok(node) if matches!(node.kind, Kind::Null) => Config::default(),
                Ok(node) => {
                    let mut config =
                        match format::typed::<Config>(&path, &node, crate::schemas::CONFIG.get()) {
                            Ok(config) => config,
                            Err(d) => {
                                problems.extend(d);
                                salvage(&path, &node)
                            }
                        };
                    check_config(&path, &node, &mut config, &mut problems);
                    config
                }
            },
        };
        let globs = cached_globs(&config.artifacts);
        let github_globs = cached_globs(&config.github_models_artifacts);
        Snapshot {
            tree,
            config,
            config_path: path,
            config_problems: problems,
            globs,
            github_globs,
            sniffed: Mutex::new(BTreeMap::new()),
            suites: Mutex::new(BTreeMap::new()),
            cases_held: AtomicUsize::new(0),
        }
    }

    /// Whether `path` is an artifact file: by the config's `artifacts` globs, or by its
    /// `github_models_artifacts` globs and its content.
    pub fn is_artifact(&self, path: &str) -> bool {
        self.globs.is_match(path)
            || (self.github_globs.is_match(path) && self.reads_as_github_models(path))
    }

    /// Whether `path` holds a GitHub Models prompt file: a mapping whose `model` is a
    /// string and which has `messages`. A file that cannot be read or parsed is not one.
    fn reads_as_github_models(&self, path: &str) -> bool {
        if let Ok(sniffed) = self.sniffed.lock()
            && let Some(&known) = sniffed.get(path)
        {
            return known;
        }
        let is = format::read_text(self.tree, path)
            .and_then(|text| format::parse_yaml(path, &text))
            .is_ok_and(|node| {
                node.get("model").and_then(Node::as_str).is_some() && node.get("messages").is_some()
            });
        if let Ok(mut sniffed) = self.sniffed.lock() {
            sniffed.insert(path.to_string(), is);
        }
        is
    }

    /// Every artifact file in the tree.
    pub fn artifact_paths(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .tree
            .list()?
            .into_iter()
            .filter(|p| self.is_artifact(p))
            .collect())
    }

    pub fn load_artifact(&self, path: &str) -> Result<Artifact, Diagnostics> {
        artifact::load(self.tree, path, &self.config)
    }

    /// One suite file's cases and problems, loaded once: threads asking for a suite
    /// another thread is loading wait for it rather than load it again.
    pub fn suite(&self, path: &str) -> Arc<(EvalSet, Diagnostics)> {
        let cell = match self.suites.lock() {
            Ok(mut cache) => cache.entry(path.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        cell.get_or_init(|| Arc::new(self.held(path, suite::load(self.tree, path))))
            .clone()
    }

    /// `loaded`, unless its cases would take the suites held past
    /// [`suite::MAX_CASES_HELD`]: then a problem of the suite, and none of its cases. The
    /// limit per suite bounds one file; this bounds a pull request committing many.
    fn held(&self, path: &str, loaded: (EvalSet, Diagnostics)) -> (EvalSet, Diagnostics) {
        let (mut set, mut problems) = loaded;
        let count = set.cases.len();
        let before = self.cases_held.fetch_add(count, Ordering::Relaxed);
        if before + count > suite::MAX_CASES_HELD {
            self.cases_held.fetch_sub(count, Ordering::Relaxed);
            set.cases = Vec::new();
            problems.push(
                path,
                Pos::START,
                format!(
                    "its {count} cases would take the suites read in one run over {} cases \
                     together ({before} before it); none of them is read: evaluate a sample",
                    suite::MAX_CASES_HELD
                ),
            );
        }
        (set, problems)
    }

    /// Let go of the suites loaded so far: a later [`Snapshot::suite`] reads its file
    /// again. For a caller done with them that goes on to hold other things (a gate
    /// running its plans, which carry their own cases).
    pub fn forget_suites(&self) {
        if let Ok(mut cache) = self.suites.lock() {
            cache.clear();
            self.cases_held.store(0, Ordering::Relaxed);
        }
    }

    /// The artifact's eval set: its inline test data and all its suites, merged. The
    /// problems are those of the merge (duplicate case ids across suites); each suite's
    /// own problems come from [`Snapshot::suite`].
    pub fn eval_set(&self, artifact: &Artifact) -> (EvalSet, Diagnostics) {
        let mut set = artifact.inline_evals.clone().unwrap_or_default();
        let mut problems = Diagnostics::default();
        for path in &artifact.evals {
            set.absorb(self.suite(path).0.clone(), &mut problems);
        }
        (set, problems)
    }
}

/// The sections of a broken config that are fine on their own, over defaults: a typo in
/// `gate:` must not make every provider unknown. In `providers:`, each provider counts
/// on its own, and the names of those with a problem are kept as such.
fn salvage(path: &str, node: &Node) -> Config {
    let Some(entries) = node.entries() else {
        return Config::default();
    };
    let map = |entries: Vec<Entry>| Node {
        kind: Kind::Map(entries),
        pos: node.pos,
    };
    let fits = |entry: &Entry| {
        format::typed::<Config>(
            path,
            &map(vec![entry.clone()]),
            crate::schemas::CONFIG.get(),
        )
        .is_ok()
    };
    let mut broken_providers = Vec::new();
    let mut kept: Vec<Entry> = Vec::new();
    for entry in entries {
        if fits(entry) {
            kept.push(entry.clone());
            continue;
        }
        if entry.key != "providers" {
            continue;
        }
        let Some(providers) = entry.value.entries() else {
            continue;
        };
        let (good, bad): (Vec<&Entry>, Vec<&Entry>) = providers.iter().partition(|p| {
            fits(&Entry {
                value: map(vec![(*p).clone()]),
                ..entry.clone()
            })
        });
        broken_providers.extend(bad.into_iter().map(|p| p.key.clone()));
        kept.push(Entry {
            value: Node {
                kind: Kind::Map(good.into_iter().cloned().collect()),
                pos: entry.value.pos,
            },
            ..entry.clone()
        });
    }
    let mut config: Config =
        format::typed(path, &map(kept), crate::schemas::CONFIG.get()).unwrap_or_default();
    config.broken_providers = broken_providers;
    config
}

/// The compiled artifact globs, built once for the patterns both sides of a pull
/// request usually share (the last few lists are kept).
fn cached_globs(patterns: &[String]) -> GlobSet {
    const KEPT: usize = 4;
    static LAST: Mutex<Vec<(Vec<String>, GlobSet)>> = Mutex::new(Vec::new());
    if let Ok(last) = LAST.lock()
        && let Some((_, set)) = last.iter().find(|(p, _)| p == patterns)
    {
        return set.clone();
    }
    let set = build_globs(patterns).unwrap_or_else(|_| GlobSet::empty());
    if let Ok(mut last) = LAST.lock() {
        if last.len() == KEPT {
            last.remove(0);
        }
        last.push((patterns.to_vec(), set.clone()));
    }
    set
}

/// Repository-relative globs: `*` stays within a directory, `**` crosses them.
pub fn build_globs(patterns: &[String]) -> Result<GlobSet, (usize, globset::Error)> {
    let mut builder = GlobSetBuilder::new();
    for (i, pattern) in patterns.iter().enumerate() {
        builder.add(glob(pattern).map_err(|e| (i, e))?);
    }
    builder.build().map_err(|e| (0, e))
}

fn glob(pattern: &str) -> Result<globset::Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).build()
}

/// The first of `patterns` that is not a glob, with its index. Parsing is all it
/// takes; compiling a set into its matcher costs far more and is done once, where the
/// set is used.
fn invalid_glob(patterns: &[String]) -> Option<(usize, globset::Error)> {
    patterns
        .iter()
        .enumerate()
        .find_map(|(i, p)| glob(p).err().map(|e| (i, e)))
}

/// Checks the shape cannot express; a bad `artifacts` glob falls back to the defaults.
fn check_config(path: &str, node: &Node, config: &mut Config, problems: &mut Diagnostics) {
    if let Some((i, e)) = invalid_glob(&config.artifacts) {
        config.artifacts = Config::default().artifacts;
        let pos = node
            .get("artifacts")
            .and_then(|n| n.as_seq())
            .and_then(|items| items.get(i))
            .map_or(node.pos, |n| n.pos);
        problems.push(
            path,
            pos,
            format!("invalid glob in `artifacts`: {}", e.kind()),
        );
    }
    if let Some((i, e)) = invalid_glob(&config.github_models_artifacts) {
        config.github_models_artifacts = Config::default().github_models_artifacts;
        problems.push(
            path,
            node.item_pos_at(&["github_models_artifacts"], i),
            format!("invalid glob in `github_models_artifacts`: {}", e.kind()),
        );
    }
    if let Some((i, e)) = invalid_glob(&config.gate.critical_segments) {
        let pos = node.pos_at(&["gate", "critical_segments"]);
        problems.push(
            path,
            pos,
            format!(
                "invalid glob in `gate.critical_segments[{i}]`: {}",
                e.kind()
            ),
        );
    }
    for (pattern, floor) in &config.gate.min_segment_pass_rate {
        let pos = node.pos_at(&["gate", "min_segment_pass_rate", pattern]);
        if let Err(e) = glob(pattern) {
            problems.push(
                path,
                pos,
                format!(
                    "invalid glob `{pattern}` in `gate.min_segment_pass_rate`: {}",
                    e.kind()
                ),
            );
        }
        if !(0.0..=1.0).contains(floor) {
            problems.push(
                path,
                pos,
                format!(
                    "`gate.min_segment_pass_rate` `{pattern}`: {floor} is not a pass rate (0 to 1; 0.9 is 90%)"
                ),
            );
        }
    }
    if config.artifacts.is_empty() {
        problems.warn(
            path,
            node.pos_at(&["artifacts"]),
            "`artifacts` is empty: no file is an artifact",
        );
    }
    for (name, provider) in &config.providers {
        let pos = node.pos_at(&["providers", name]);
        if let Some(dir) = &provider.dir
            && let Err(e) = crate::source::resolve_ref(path, dir)
        {
            problems.push(path, pos, format!("provider `{name}`: `dir`: {e}"));
        }
        if provider.kind == crate::config::ProviderKind::Replay && provider.dir.is_none() {
            problems.push(path, pos, format!("provider `{name}` (replay) needs `dir`"));
        }
        if provider.kind != crate::config::ProviderKind::Replay && provider.dir.is_some() {
            problems.push(
                path,
                pos,
                format!("provider `{name}`: `dir` is only for `replay`"),
            );
        }
    }
    if let Some(judge) = &config.judge
        && !config.has_provider(&judge.provider)
    {
        problems.push(
            path,
            node.pos_at(&["judge", "provider"]),
            format!(
                "unknown judge provider `{}`{}",
                judge.provider,
                crate::diag::did_you_mean(&judge.provider, config.provider_names())
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::mem::MemTree;

    /// A pull request that commits many suites, each within the limit of one, cannot
    /// make a run hold more than [`suite::MAX_CASES_HELD`] cases: the suite that would
    /// cross it is a problem and holds none.
    #[test]
    fn the_suites_of_a_run_hold_a_bounded_number_of_cases() {
        let cases = |prefix: &str, n: usize| -> String {
            (0..n)
                .map(|i| format!("{{\"id\": \"{prefix}{i}\"}}\n"))
                .collect()
        };
        let half = suite::MAX_CASES_HELD / 2 + 1;
        let tree = MemTree::new()
            .with("evals/a.eval.yaml", "cases_file: a.cases.jsonl\n")
            .with("evals/a.cases.jsonl", cases("a", half))
            .with("evals/b.eval.yaml", "cases_file: b.cases.jsonl\n")
            .with("evals/b.cases.jsonl", cases("b", half))
            .with("evals/c.eval.yaml", "cases: [{id: c}]\n");
        let snap = Snapshot::open(&tree, None);
        assert_eq!(snap.suite("evals/a.eval.yaml").0.cases.len(), half);
        let crossing = snap.suite("evals/b.eval.yaml");
        assert!(crossing.0.cases.is_empty());
        assert_eq!(
            crossing.1.0[0].to_string(),
            format!(
                "evals/b.eval.yaml:1:1: its {half} cases would take the suites read in one run \
                 over {} cases together ({half} before it); none of them is read: evaluate a \
                 sample",
                suite::MAX_CASES_HELD
            )
        );
        // What is left under the limit is still read; forgetting the suites frees it.
        assert_eq!(snap.suite("evals/c.eval.yaml").0.cases.len(), 1);
        snap.forget_suites();
        assert_eq!(snap.suite("evals/b.eval.yaml").0.cases.len(), half);
    }

    #[test]
    fn default_globs_match_like_the_spec_says() {
        let tree = MemTree::new();
        let snap = Snapshot::open(&tree, None);
        assert!(snap.is_artifact("prompts/support/refund.prompt.yaml"));
        assert!(snap.is_artifact("prompts/refund.prompt.yaml"));
        assert!(snap.is_artifact("summarize.prompt.yml"));
        assert!(snap.is_artifact(".github/prompts/a.prompt.yml"));
        assert!(!snap.is_artifact("other/refund.prompt.yaml"));
        assert!(!snap.is_artifact("prompts/refund.eval.yaml"));
    }

    /// A `.prompt.yaml` outside `prompts/` is an artifact when it is a GitHub Models
    /// file, and left alone when it is another tool's (or a native one there).
    #[test]
    fn github_models_files_are_found_anywhere_and_nothing_else_is() {
        let tree = MemTree::new()
            .with(
                ".github/prompts/summarize.prompt.yaml",
                "model: openai/gpt-4o-mini\nmessages: [{role: user, content: hi}]\n",
            )
            .with(
                "sk/plugins/story.prompt.yaml",
                "name: story\ntemplate: Tell a story about {{$topic}}\n",
            )
            .with(
                "other/refund.prompt.yaml",
                "version: 1\nmodel: {provider: openai, name: m}\nmessages: []\n",
            )
            .with("bad/broken.prompt.yaml", "model: [unclosed\n");
        let snap = Snapshot::open(&tree, None);
        assert!(snap.is_artifact(".github/prompts/summarize.prompt.yaml"));
        assert!(!snap.is_artifact("sk/plugins/story.prompt.yaml"));
        assert!(!snap.is_artifact("other/refund.prompt.yaml"));
        assert!(!snap.is_artifact("bad/broken.prompt.yaml"));
        assert_eq!(
            snap.artifact_paths().ok(),
            Some(vec![".github/prompts/summarize.prompt.yaml".to_string()])
        );
    }

    #[test]
    fn reports_config_problems_and_falls_back_to_defaults() {
        let tree = MemTree::new().with(
            ".promptgate.yaml",
            "artifacts: ['prompts/[a']\ngate:\n  max_segment_drp: 0.1\n",
        );
        let snap = Snapshot::open(&tree, None);
        assert_eq!(
            snap.config_problems.to_string(),
            ".promptgate.yaml:3:3: unknown field `max_segment_drp`, did you mean `max_segment_drop`?\n\
             .promptgate.yaml:1:13: invalid glob in `artifacts`: unclosed character class; missing ']'"
        );
        assert_eq!(snap.config, Config::default());

        let tree = MemTree::new().with(
            ".promptgate.yaml",
            "providers:\n  local: {kind: openai}\ngate: {repeats: many}\n",
        );
        let snap = Snapshot::open(&tree, None);
        assert!(snap.config.has_provider("local"));
        assert_eq!(snap.config.gate, crate::config::GateConfig::default());

        // One broken provider leaves the others usable, and its name known.
        let tree = MemTree::new().with(
            ".promptgate.yaml",
            "providers:\n  local: {kind: openai}\n  typo: {kind: openai, api_key: k}\n  bad: 3\n",
        );
        let snap = Snapshot::open(&tree, None);
        assert_eq!(
            snap.config.providers.keys().collect::<Vec<_>>(),
            vec!["local"]
        );
        assert_eq!(snap.config.broken_providers, vec!["typo", "bad"]);
        assert!(snap.config.has_provider("typo") && snap.config.has_provider("bad"));
        assert!(!snap.config.has_provider("other"));
    }
}
