//! `promptgate validate`: every problem of the config, artifacts and suites, in one run.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::artifact::assertion::Check;
use crate::artifact::suite::EvalSet;
use crate::artifact::{Artifact, ArtifactFormat, template};
use crate::config::JudgeConfig;
use crate::diag::{Diagnostic, Diagnostics, Severity};
use crate::repo::Snapshot;

/// What was checked and what was found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub artifacts: usize,
    pub suites: usize,
    pub cases: usize,
    /// Sorted by file, line and column; each problem once.
    pub problems: Vec<Diagnostic>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.problems
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.problems.len() - self.errors()
    }
}

/// How many cases to name in one message before saying "and N more".
const NAMED: usize = 5;

pub fn validate(snapshot: &Snapshot) -> anyhow::Result<Report> {
    let mut problems = snapshot.config_problems.clone();
    let mut loaded: Vec<Artifact> = Vec::new();
    let paths = snapshot.artifact_paths()?;
    for path in &paths {
        match snapshot.load_artifact(path) {
            Ok(a) => {
                problems.extend(a.problems.clone());
                loaded.push(a);
            }
            Err(d) => problems.extend(d),
        }
    }

    let mut ids: BTreeMap<&str, &Artifact> = BTreeMap::new();
    for a in &loaded {
        match ids.get(a.id.as_str()) {
            Some(first) => problems.push(
                &a.path,
                a.pos_of(&["id"]),
                format!(
                    "duplicate artifact id `{}` (also used by {})",
                    a.id, first.path
                ),
            ),
            None => {
                ids.insert(&a.id, a);
            }
        }
    }

    // Every suite file is checked, also those of artifacts that did not load.
    let mut suites: BTreeSet<String> = snapshot
        .tree
        .list()?
        .into_iter()
        .filter(|p| p.ends_with(".eval.yaml") || p.ends_with(".eval.yml"))
        .collect();
    suites.extend(loaded.iter().flat_map(|a| a.evals.iter().cloned()));
    for suite in &suites {
        problems.extend(snapshot.suite(suite).1.clone());
    }
    let mut cases = 0;
    for a in &loaded {
        let (set, merge_problems) = snapshot.eval_set(a);
        problems.extend(merge_problems);
        cases += set.cases.len();
        if set.cases.is_empty() && a.evals.is_empty() {
            problems.warn(
                &a.path,
                a.pos_of(&[]),
                "no eval cases: the gate cannot tell whether a change to this artifact regresses",
            );
        }
        check_variables(a, &set, &mut problems);
        check_tools(a, &set, &mut problems);
        check_judge(&set, snapshot.config.judge.as_ref(), &mut problems);
        check_segment_sizes(
            a,
            &set,
            snapshot.config.gate.max_segment_drop,
            &mut problems,
        );
    }

    let mut problems = problems.0;
    problems.sort();
    problems.dedup();
    Ok(Report {
        artifacts: paths.len(),
        suites: suites.len(),
        cases,
        problems,
    })
}

/// Segments with fewer cases than it takes to rule out the allowed drop can never be
/// judged held: every change to the artifact reads inconclusive there. Said once per
/// artifact, at its eval set reference, smallest segments first.
pub fn check_segment_sizes(
    artifact: &Artifact,
    set: &EvalSet,
    allowed_drop: f64,
    problems: &mut Diagnostics,
) {
    use crate::compare::stats::{cases_to_rule_out, format_points, rate_upper_bound};
    let needed = cases_to_rule_out(allowed_drop, crate::compare::HELD_ALPHA);
    let mut sizes: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &set.cases {
        for s in &case.segments {
            *sizes.entry(s.as_str()).or_default() += 1;
        }
    }
    let mut small: Vec<(usize, &str)> = sizes
        .into_iter()
        .filter(|&(_, n)| (n as u64) < needed)
        .map(|(s, n)| (n, s))
        .collect();
    if small.is_empty() {
        return;
    }
    small.sort();
    let listed: Vec<String> = small
        .iter()
        .take(NAMED)
        .map(|&(n, s)| {
            let reach = rate_upper_bound(0, n as u64, crate::compare::HELD_ALPHA);
            format!("`{s}` ({n} case(s): only {}+ points)", format_points(reach))
        })
        .collect();
    let more = match small.len().saturating_sub(NAMED) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    problems.warn(
        &artifact.path,
        artifact.pos_of(&["evals"]),
        format!(
            "{} segment(s) too small to rule out a {}-point drop (`gate.max_segment_drop`), so changes read inconclusive there: {}{more}; {needed} cases a segment would rule it out",
            small.len(),
            format_points(allowed_drop),
            listed.join(", ")
        ),
    );
}

/// Every variable a message template reads must come from each case or its defaults,
/// and the template must render with them (an unknown filter only shows then), to no
/// more than [`template::MAX_PROMPT_BYTES`] for all messages of a case together. The
/// renderings are measured, not made.
pub fn check_variables(artifact: &Artifact, set: &EvalSet, problems: &mut Diagnostics) {
    if artifact.format == ArtifactFormat::GithubModels {
        return;
    }
    // What each case's messages rendered to so far.
    let mut prompt = vec![0usize; set.cases.len()];
    // The first message where a case went over, and how many cases did.
    let mut over: Option<(usize, usize)> = None;
    let mut too_long = 0;
    for (i, message) in artifact.messages.iter().enumerate() {
        let (Ok(needed), Ok(compiled)) = (
            template::variables(&message.content),
            template::Compiled::new(&[message.content.as_str()]),
        ) else {
            continue;
        };
        let mut failures = Vec::new();
        for (c, case) in set.cases.iter().enumerate() {
            if !needed.iter().all(|v| case.vars.contains_key(v))
                || prompt[c] > template::MAX_PROMPT_BYTES
            {
                continue;
            }
            let left = template::MAX_PROMPT_BYTES - prompt[c];
            match compiled.rendered_len(0, &case.vars, left) {
                Ok(len) => {
                    prompt[c] += len;
                    if prompt[c] > template::MAX_PROMPT_BYTES {
                        too_long += 1;
                        over = over.or(Some((c, i)));
                    }
                }
                Err(e) => failures.push((case, e)),
            }
        }
        if let Some((case, error)) = failures.first() {
            let more = more_cases(failures.len());
            problems.push(
                &artifact.path,
                artifact.message_pos(i),
                format!(
                    "`messages[{i}].content` does not render for case `{}` ({}:{}){more}: {} (template line {})",
                    case.id, case.file, case.pos.line, error.message, error.line
                ),
            );
        }
        for var in needed {
            let missing: Vec<String> = set
                .cases
                .iter()
                .filter(|c| !c.vars.contains_key(&var))
                .map(|c| format!("`{}` ({}:{})", c.id, c.file, c.pos.line))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let count = missing.len();
            let mut named = missing
                .into_iter()
                .take(NAMED)
                .collect::<Vec<_>>()
                .join(", ");
            if count > NAMED {
                named.push_str(&format!(" and {} more", count - NAMED));
            }
            let who = if count == 1 { "case" } else { "cases" };
            problems.push(
                &artifact.path,
                artifact.message_pos(i),
                format!(
                    "template variable `{var}` in `messages[{i}].content` is provided neither by the suite defaults nor by {who} {named}"
                ),
            );
        }
    }
    if let Some((c, i)) = over {
        let case = &set.cases[c];
        let more = more_cases(too_long);
        problems.push(
            &artifact.path,
            artifact.message_pos(i),
            format!(
                "the messages render to more than {} MiB for case `{}` ({}:{}){more}, the most one prompt may hold; make the variables or the templates smaller",
                template::MAX_PROMPT_BYTES >> 20,
                case.id,
                case.file,
                case.pos.line
            ),
        );
    }
}

/// A GitHub Models model-graded evaluator needs the judge: without one its cases
/// cannot be judged (errors, never passes). A judge other than the `github-models`
/// provider may not know a `modelId` as GitHub names it: `judge.models` maps it.
fn check_judge(set: &EvalSet, judge: Option<&JudgeConfig>, problems: &mut Diagnostics) {
    let mut seen = BTreeSet::new();
    for case in &set.cases {
        for a in &case.assertions {
            let Check::ModelGraded(g) = &a.check else {
                continue;
            };
            if !seen.insert((case.file.as_str(), a.pos)) {
                continue;
            }
            match (judge, &g.model_id) {
                (None, _) => problems.warn(
                    &case.file,
                    a.pos,
                    format!(
                        "evaluator `{}` is model-graded and no `judge:` is configured: its cases cannot be judged (errors, never passes)",
                        a.name
                    ),
                ),
                (Some(j), Some(id))
                    if j.provider != crate::artifact::github_models::PROVIDER
                        && !j.models.contains_key(id) =>
                {
                    problems.warn(
                        &case.file,
                        a.pos,
                        format!(
                            "evaluator `{}`: `modelId` `{id}` is not in `judge.models`, so judge provider `{}` is asked for `{id}` as written",
                            a.name, j.provider
                        ),
                    );
                }
                _ => {}
            }
        }
    }
}

/// Tool assertions and canned results must name tools the artifact defines.
fn check_tools(artifact: &Artifact, set: &EvalSet, problems: &mut Diagnostics) {
    let names: Vec<&str> = artifact
        .tools
        .as_ref()
        .map(|t| t.names())
        .unwrap_or_default();
    let defined: std::collections::HashSet<&str> = names.iter().copied().collect();
    for case in &set.cases {
        let mut named: Vec<&str> = case.tool_results.keys().map(String::as_str).collect();
        for a in &case.assertions {
            match &a.check {
                Check::ToolCalled { tool } | Check::ToolArgs { tool, .. } => named.push(tool),
                Check::ToolSequence { tools } => named.extend(tools.iter().map(String::as_str)),
                _ => {}
            }
        }
        named.sort_unstable();
        named.dedup();
        for tool in named {
            if !defined.contains(&tool) {
                problems.push(
                    &case.file,
                    case.pos,
                    format!(
                        "case `{}` names tool `{tool}`, which {} does not define{}",
                        case.id,
                        artifact.path,
                        crate::diag::did_you_mean(tool, names.iter().copied())
                    ),
                );
            }
        }
    }
}

/// ` (and N more cases)` after the one case a problem names, of `n` that have it.
fn more_cases(n: usize) -> String {
    match n {
        0 | 1 => String::new(),
        n => format!(" (and {} more cases)", n - 1),
    }
}
