//! `promptgate gate`: the pull-request job without GitHub. Reads both commits (the
//! edges), runs the base and head versions of every changed artifact on the head's eval
//! set, and assembles the [`Evidence`]; comparison, policy and report are pure steps
//! over it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use anyhow::Context;
use globset::GlobSet;

use crate::artifact::Artifact;
use crate::artifact::suite::{Case, EvalSet, Segment};
use crate::changes::{self, ArtifactChange, ChangeKind, Refs};
use crate::diag::{Diagnostic, Severity};
use crate::env::Secrets;
use crate::eval::RunOptions;
use crate::eval::result::{ArtifactRun, CaseResult, Sample};
use crate::eval::runner::Plan;
use crate::evidence::{self, ArtifactEvidence, Evidence, PolicySource, RoleState, Status};
use crate::policy;
use crate::repo::{PullRequest, Sides, Snapshot};
use crate::source::git::GitTree;
use crate::source::{ReadError, Tree};

/// What `gate` is asked to compare.
pub struct Request<'a> {
    pub base: &'a str,
    pub head: &'a str,
    pub config_path: Option<&'a str>,
    pub run: &'a RunOptions,
    /// Take providers from the policy's (base) config, not the head's.
    pub providers_from_base: bool,
}

/// What one changed artifact needs run.
struct Planned {
    status: Status,
    /// Index of the base and head plans in the plan list.
    base_plan: Option<usize>,
    head_plan: Option<usize>,
    /// The base version is the head version (only the eval set changed): the head's
    /// answers stand for the base on the shared cases.
    same_behaviour: bool,
    base_case_ids: Vec<String>,
    known_limitations: Vec<String>,
}

fn errors_of(d: &crate::diag::Diagnostics) -> impl Iterator<Item = &Diagnostic> {
    d.0.iter().filter(|p| p.severity == Severity::Error)
}

/// The head version's eval set, with every error in its suites.
fn eval_set(snapshot: &Snapshot, artifact: &Artifact) -> (EvalSet, Vec<Diagnostic>) {
    let (set, dup) = snapshot.eval_set(artifact);
    let mut problems: Vec<Diagnostic> = errors_of(&dup).cloned().collect();
    for file in &artifact.evals {
        problems.extend(errors_of(&snapshot.suite(file).1).cloned());
    }
    (set, problems)
}

/// The policy is the base branch's: a pull request cannot loosen its own gate. Only a
/// pull request that adds promptgate (no config on the base) brings its own.
fn policy_of<'s, 't>(
    base_tree: &GitTree,
    base_snap: &'s Snapshot<'t>,
    head_snap: &'s Snapshot<'t>,
) -> (&'s Snapshot<'t>, PolicySource) {
    match base_tree.read(&base_snap.config_path) {
        Err(ReadError::Missing) => (head_snap, PolicySource::Head),
        _ => (base_snap, PolicySource::Base),
    }
}

/// The config whose policy (`gate:`, `approvals:`, `status_context`) governs a pull
/// request from `base` to `head`, without evaluating anything.
pub fn policy_config(
    root: &Path,
    base: &str,
    head: &str,
    config_path: Option<&str>,
) -> anyhow::Result<crate::config::Config> {
    let pr = PullRequest::open(root, base, head)?;
    let base_snap = Snapshot::open(&pr.base_tree, config_path);
    let head_snap = Snapshot::open(&pr.head_tree, config_path);
    Ok(policy_of(&pr.base_tree, &base_snap, &head_snap)
        .0
        .config
        .clone())
}

/// Run the gate: changes, evals on both sides, comparison, verdict.
pub fn run(root: &Path, secrets: &Secrets, req: &Request) -> anyhow::Result<Evidence> {
    let pr = PullRequest::open(root, req.base, req.head)?;
    let Sides {
        entries,
        base: base_snap,
        head: head_snap,
    } = pr.sides(req.config_path)?;
    let (merge_base, head_commit) = (pr.merge_base.to_string(), pr.head_commit.to_string());
    let set = changes::detect(
        &base_snap,
        &head_snap,
        &entries,
        Refs {
            base: req.base.to_string(),
            head: req.head.to_string(),
            merge_base: merge_base.clone(),
            head_commit: head_commit.clone(),
        },
    )?;

    let (policy_snap, policy_source) = policy_of(&pr.base_tree, &base_snap, &head_snap);
    let policy = policy_snap.config.clone();
    let config_changed = entries
        .iter()
        .any(|e| e.paths().contains(&head_snap.config_path.as_str()));
    // Providers come from the head (it may add the one a new artifact needs) unless the
    // head is not trusted with credentials: a fork's pull request could point a provider
    // at its own server with our key. Prices from the policy, so both sides are costed
    // alike and a PR cannot zero a price.
    let mut engine_config = head_snap.config.clone();
    if req.providers_from_base {
        // Without a base config there are no trusted providers: artifacts then fail to
        // run, and the gate says it could not evaluate.
        engine_config.providers = match policy_source {
            PolicySource::Base => policy.providers.clone(),
            PolicySource::Head => Default::default(),
        };
    }
    engine_config.pricing.extend(policy.pricing.clone());
    let critical = crate::repo::build_globs(&policy.gate.critical_segments)
        .unwrap_or_else(|_| GlobSet::empty());
    let repeats = req.run.repeats.unwrap_or(policy.gate.repeats).max(1);

    let mut plans: Vec<Plan> = Vec::new();
    let mut jobs = Vec::new();
    let mut artifacts: Vec<ArtifactChange> = set.artifacts;
    for change in &mut artifacts {
        let job = plan_change(change, &base_snap, &head_snap, repeats, &mut plans);
        jobs.push(job);
    }
    // The plans carry their cases: the suites both sides loaded would be a second and
    // third copy of them while they run (380 MB with 100,000 cases on each side).
    base_snap.forget_suites();
    head_snap.forget_suites();

    // What a confirmation round needs of each plan, kept before the plans are run: its
    // artifact; with the round off, nothing. The cases to confirm are read again from
    // the head's suites, and only when some flipped: a copy of every case of both sides,
    // kept for the few that flip, was 150 MB for 100,000 cases.
    let confirm = policy.gate.confirm_samples;
    let versions: Vec<Artifact> = match confirm {
        0 => Vec::new(),
        _ => plans.iter().map(|p| p.artifact.clone()).collect(),
    };
    let mut runs = if plans.is_empty() {
        Vec::new()
    } else {
        crate::eval::run(&engine_config, secrets, root, req.run, plans)?
    };
    let pairs: Vec<(usize, usize)> = jobs
        .iter()
        .filter(|j| !j.same_behaviour)
        .filter_map(|j| j.base_plan.zip(j.head_plan))
        .collect();
    let head_cases = |head: &Artifact| head_snap.eval_set(head).0;
    let second = confirmation_plans(&runs, &versions, &head_cases, &pairs, repeats, confirm);
    if !second.is_empty() {
        let Confirmation { plans, targets } = second;
        let fresh = crate::eval::run(&engine_config, secrets, root, req.run, plans)?;
        attach_confirmations(&mut runs, &targets, fresh);
    }
    let mut runs: Vec<Option<ArtifactRun>> = runs.into_iter().map(Some).collect();

    let mut evidence_artifacts = Vec::new();
    for (change, job) in artifacts.into_iter().zip(jobs) {
        let head_run = job.head_plan.and_then(|i| runs[i].take());
        let mut base_run = job.base_plan.and_then(|i| runs[i].take());
        if job.same_behaviour
            && let (Some(base), Some(head)) = (&mut base_run, &head_run)
        {
            // The base ran only the deleted cases; the shared ones are the head's.
            let mut cases = head.cases.clone();
            cases.append(&mut base.cases);
            base.cases = cases;
        }
        let requests = policy.traffic.as_ref().and_then(|t| t.of(&change.id));
        evidence_artifacts.push(
            ArtifactEvidence::new(
                change,
                job.status,
                job.known_limitations,
                (base_run, head_run),
                &job.base_case_ids,
                &critical,
                policy.gate.max_segment_drop,
            )
            .with_traffic(requests),
        );
    }

    let config_problems: Vec<Diagnostic> =
        errors_of(&policy_snap.config_problems).cloned().collect();
    let verdict = policy::decide(&policy.gate, &evidence_artifacts, &config_problems);
    let approvals = &policy.approvals;
    let role = |name: &str, label: &str| RoleState {
        role: name.to_string(),
        label: label.to_string(),
        approved_by: None,
        approved_at: None,
        note: "decided on the pull request, by label".to_string(),
    };
    let mut reproduce = format!(
        "promptgate gate --base {} --head {}",
        shell_word(req.base),
        &head_commit
    );
    if let Some(p) = &req.run.provider {
        reproduce.push_str(&format!(" --provider {}", shell_word(p)));
    }
    if let Some(r) = req.run.repeats {
        reproduce.push_str(&format!(" --repeats {r}"));
    }
    Ok(Evidence {
        schema: evidence::SCHEMA,
        promptgate_version: env!("CARGO_PKG_VERSION"),
        base: req.base.to_string(),
        head: req.head.to_string(),
        merge_base,
        head_commit,
        files_changed: set.files_changed,
        policy: policy.gate.clone(),
        policy_source,
        config_changed,
        verdict,
        tradeoff_label: approvals.tradeoff_label.clone(),
        approval_rules: approvals.clone(),
        artifacts: evidence_artifacts,
        approvals: vec![
            role("product", &approvals.product.label),
            role("technical", &approvals.technical.label),
        ],
        reproduce,
    })
}

/// The second round: every case whose share of passing samples differs between base and
/// head ([`crate::compare::needs_confirmation`]), answered
/// `confirm` more times on each side, numbered after the first round's samples (so each
/// is a fresh answer, cached on its own).
struct Confirmation {
    plans: Vec<Plan>,
    /// For each plan of the round, the first round's run it confirms.
    targets: Vec<usize>,
}

impl Confirmation {
    fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }
}

/// Put a confirmation round's fresh answers beside the first round's, case by case.
fn attach_confirmations(runs: &mut [ArtifactRun], targets: &[usize], fresh: Vec<ArtifactRun>) {
    for (&target, fresh) in targets.iter().zip(fresh) {
        let mut fresh: HashMap<String, Vec<Sample>> =
            fresh.cases.into_iter().map(|c| (c.id, c.samples)).collect();
        for case in &mut runs[target].cases {
            if let Some(samples) = fresh.remove(&case.id) {
                case.confirmations = samples;
            }
        }
    }
}

/// The plans that confirm the flips of each (base run, head run) pair in `pairs`, run
/// by the artifacts `versions` (by plan), on cases of the head's eval set (`head_cases`
/// of the head artifact): both sides ran the head's cases, and a case only the base
/// has cannot flip.
fn confirmation_plans(
    runs: &[ArtifactRun],
    versions: &[Artifact],
    head_cases: &dyn Fn(&Artifact) -> EvalSet,
    pairs: &[(usize, usize)],
    repeats: u32,
    confirm: u32,
) -> Confirmation {
    let mut round = Confirmation {
        plans: Vec::new(),
        targets: Vec::new(),
    };
    if confirm == 0 {
        return round;
    }
    for &(b, h) in pairs {
        let base: HashMap<&str, &CaseResult> =
            runs[b].cases.iter().map(|c| (c.id.as_str(), c)).collect();
        let flipped: HashSet<&str> = runs[h]
            .cases
            .iter()
            .filter(|head| {
                base.get(head.id.as_str())
                    .is_some_and(|base| crate::compare::needs_confirmation(base, head))
            })
            .map(|c| c.id.as_str())
            .collect();
        if flipped.is_empty() {
            continue;
        }
        let head = head_cases(&versions[h]);
        for side in [b, h] {
            let eval = EvalSet {
                segments: head.segments.clone(),
                cases: head
                    .cases
                    .iter()
                    .filter(|c| flipped.contains(c.id.as_str()))
                    .cloned()
                    .collect(),
                files: Vec::new(),
            };
            round.plans.push(Plan {
                artifact: versions[side].clone(),
                eval,
                repeats: confirm,
                shard: None,
                first_sample: repeats,
            });
            round.targets.push(side);
        }
    }
    round
}

/// What the gate needs of the base version's eval set: the id of every case, the cases
/// the head no longer has, and the segments; read from the base's suites as they are
/// loaded, so that the cases both sides share are not copied once more (100 MB with
/// 100,000 cases). Merged as [`Snapshot::eval_set`] merges: the first case of an id
/// counts, a segment is critical if any suite says so.
fn base_cases(
    snapshot: &Snapshot,
    base: &Artifact,
    head_ids: &HashSet<&str>,
) -> (Vec<String>, Vec<Case>, BTreeMap<String, Segment>) {
    let suites: Vec<_> = base.evals.iter().map(|p| snapshot.suite(p)).collect();
    let (mut ids, mut deleted) = (Vec::new(), Vec::new());
    let mut segments: BTreeMap<String, Segment> = BTreeMap::new();
    let mut seen = HashSet::new();
    for set in base.inline_evals.iter().chain(suites.iter().map(|s| &s.0)) {
        for (name, segment) in &set.segments {
            let entry = segments.entry(name.clone()).or_default();
            entry.critical |= segment.critical;
            if entry.description.is_none() {
                entry.description.clone_from(&segment.description);
            }
        }
        for case in &set.cases {
            if !seen.insert(case.id.as_str()) {
                continue;
            }
            ids.push(case.id.clone());
            if !head_ids.contains(case.id.as_str()) {
                deleted.push(case.clone());
            }
        }
    }
    (ids, deleted, segments)
}

/// Decide what to run for one change, and add its plans.
fn plan_change(
    change: &mut ArtifactChange,
    base_snap: &Snapshot,
    head_snap: &Snapshot,
    repeats: u32,
    plans: &mut Vec<Plan>,
) -> Planned {
    let mut job = Planned {
        status: Status::Unchanged,
        base_plan: None,
        head_plan: None,
        same_behaviour: false,
        base_case_ids: Vec::new(),
        known_limitations: Vec::new(),
    };
    if change.kind == ChangeKind::Deleted {
        job.status = Status::Deleted;
        return job;
    }
    if !change.behaviour_changed && !change.evals_changed && change.problems.is_empty() {
        return job;
    }
    let head_path = change
        .head
        .as_ref()
        .map(|s| s.path.clone())
        .unwrap_or_default();
    let head = match head_snap.load_artifact(&head_path) {
        Ok(a) if !change.problems.is_empty() => {
            job.known_limitations = a.known_limitations;
            job.status = Status::Invalid;
            return job;
        }
        Ok(a) => a,
        Err(_) => {
            job.status = Status::Invalid;
            return job;
        }
    };
    job.known_limitations = head.known_limitations.clone();
    let (head_set, problems) = eval_set(head_snap, &head);
    if !problems.is_empty() {
        change.problems.extend(problems);
        job.status = Status::Invalid;
        return job;
    }
    let base = change
        .base
        .as_ref()
        .and_then(|s| base_snap.load_artifact(&s.path).ok());
    let head_ids: HashSet<&str> = head_set.cases.iter().map(|c| c.id.as_str()).collect();
    let mut base_plan = None;
    if let Some(base) = base {
        let (base_ids, deleted, base_segments) = base_cases(base_snap, &base, &head_ids);
        job.base_case_ids = base_ids;
        job.same_behaviour = !change.behaviour_changed;
        let mut cases = if job.same_behaviour {
            Vec::new()
        } else {
            head_set.cases.clone()
        };
        cases.extend(deleted);
        let mut segments = head_set.segments.clone();
        for (name, s) in base_segments {
            segments.entry(name).or_insert(s);
        }
        base_plan = Some(Plan {
            artifact: base,
            eval: EvalSet {
                segments,
                cases,
                files: Vec::new(),
            },
            repeats,
            shard: None,
            first_sample: 0,
        });
        job.status = Status::Compared;
    } else {
        job.status = Status::HeadOnly;
    }
    job.head_plan = Some(plans.len());
    plans.push(Plan {
        artifact: head,
        eval: head_set,
        repeats,
        shard: None,
        first_sample: 0,
    });
    if let Some(p) = base_plan {
        job.base_plan = Some(plans.len());
        plans.push(p);
    }
    job
}

/// `word` quoted for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@^~=+".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Write `text` to `path`, naming the file on failure.
pub fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
