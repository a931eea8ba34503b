//! What to run: the artifacts of a snapshot with their eval sets, narrowed to the ones
//! asked for, the segments asked for and a shard; and running those plans with the
//! options a front end chose.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::progress::Style;
use super::result::{ArtifactRun, Shard};
use super::runner::{self, Engine, Plan};
use crate::config::Config;
use crate::diag::{Diagnostics, Severity};
use crate::env::Secrets;
use crate::repo::Snapshot;

/// Threads for the blocking file work of a run (the answer cache, recordings). tokio
/// would start up to 512 when many cached answers are read at once, and each thread
/// takes an allocator arena of address space (glibc reserves 64 MiB for one): 30
/// threads took a 100,000-case gate from 1 GiB of address space to 3 GiB.
const BLOCKING_THREADS: usize = 4;

/// How evaluations reach the models: what the front ends (the command line, the action)
/// decide, as plain values.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Answer with this provider instead of each artifact's own (e.g. a replay provider
    /// for an offline run); the judge too.
    pub provider: Option<String>,
    /// Samples per case; `None` takes `gate.repeats` from the config.
    pub repeats: Option<u32>,
    /// Write every live answer as a recording into this directory (relative to the
    /// repository root), for a `replay` provider.
    pub record: Option<PathBuf>,
    /// The answer cache's directory; `None` neither reads nor writes a cache.
    pub cache: Option<PathBuf>,
    /// Show progress on stderr.
    pub progress: Option<Style>,
    /// The first wait between a provider's attempts, instead of the default.
    pub retry_base: Option<std::time::Duration>,
}

/// What `promptgate eval` was asked to run.
#[derive(Debug, Clone, Default)]
pub struct Selection<'a> {
    /// Artifacts by path or id; empty for every artifact.
    pub artifacts: &'a [String],
    /// Only cases in a segment matching one of these globs.
    pub segments: &'a [String],
    pub shard: Option<Shard>,
    pub repeats: Option<u32>,
}

/// What [`select`] found to run, and what it could not.
pub struct Selected {
    /// A plan for every selected artifact that is valid, with its suites.
    pub plans: Vec<Plan>,
    /// The errors of the config, and of every selected artifact left out for them (its
    /// file, or one of its suites): never run on part of its cases.
    pub problems: Diagnostics,
}

/// The plans for `selection`: the named artifacts (or all) with their cases, filtered.
/// An artifact with errors of its own or in its suites is left out, its problems
/// returned beside the others' plans; errors in the config leave out every plan.
pub fn select(snapshot: &Snapshot, selection: &Selection) -> anyhow::Result<Selected> {
    let Selection {
        artifacts: wanted,
        segments,
        shard,
        repeats,
    } = *selection;
    let mut problems = snapshot.config_problems.clone();
    let globs = crate::repo::build_globs(segments)
        .map_err(|(i, e)| anyhow::anyhow!("--segment `{}`: {e}", segments[i]))?;
    let wanted: Vec<&str> = wanted.iter().map(|w| w.trim_start_matches("./")).collect();
    let paths = snapshot.artifact_paths()?;
    let mut artifacts = Vec::new();
    for path in &paths {
        match snapshot.load_artifact(path) {
            Ok(a) => artifacts.push(a),
            Err(p) => {
                if wanted.is_empty() || wanted.contains(&path.as_str()) {
                    problems.extend(p);
                }
            }
        }
    }
    let mut chosen = Vec::new();
    for &w in &wanted {
        match artifacts.iter().position(|a| a.path == w || a.id == w) {
            Some(i) => chosen.push(artifacts.swap_remove(i)),
            None if paths.iter().any(|p| p == w) => {}
            None => anyhow::bail!(
                "no artifact `{w}` (give a path or an id; `promptgate validate` lists problems)"
            ),
        }
    }
    if wanted.is_empty() {
        chosen = artifacts;
    }
    let repeats = repeats.unwrap_or(snapshot.config.gate.repeats);
    let errors = |d: &Diagnostics| -> Diagnostics {
        Diagnostics(
            d.0.iter()
                .filter(|p| p.severity == Severity::Error)
                .cloned()
                .collect(),
        )
    };
    let mut plans = Vec::new();
    for artifact in chosen {
        let (mut eval, merged) = snapshot.eval_set(&artifact);
        let mut own = errors(&artifact.problems);
        own.extend(errors(&merged));
        for file in &artifact.evals {
            own.extend(errors(&snapshot.suite(file).1));
        }
        if !own.is_empty() {
            problems.extend(own);
            continue;
        }
        if !segments.is_empty() {
            eval.cases
                .retain(|c| c.segments.iter().any(|s| globs.is_match(s)));
        }
        plans.push(Plan {
            artifact,
            eval,
            repeats,
            shard,
            first_sample: 0,
        });
    }
    problems.0.retain(|d| d.severity == Severity::Error);
    problems.0.sort();
    problems.0.dedup();
    if problems.0.iter().any(|d| d.file == snapshot.config_path) {
        plans.clear();
    }
    // With every artifact invalid, that is what is said, not the segments.
    if !segments.is_empty()
        && (problems.is_empty() || !plans.is_empty())
        && plans.iter().all(|p| p.eval.cases.is_empty())
    {
        anyhow::bail!(
            "no case is in a segment matching {}",
            segments
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        );
    }
    Ok(Selected { plans, problems })
}

/// Run `plans` on a tokio runtime with the engine `options` describe.
pub fn run(
    config: &Config,
    secrets: &Secrets,
    root: &Path,
    options: &RunOptions,
    plans: Vec<Plan>,
) -> anyhow::Result<Vec<ArtifactRun>> {
    let engine_options = runner::Options {
        provider: options.provider.clone(),
        cache: options.cache.clone(),
        record: options.record.as_ref().map(|d| root.join(d)),
        backoff: match options.retry_base {
            Some(base) => crate::retry::Backoff {
                base,
                ..Default::default()
            },
            None => Default::default(),
        },
        progress: options.progress,
    };
    let engine = Arc::new(Engine::new(config, secrets, root, &plans, engine_options)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(engine.run(plans))
}
