//! `promptgate rollout …` and `promptgate rollback`: the runtime config read and changed
//! through [`crate::store`] (locked, atomic, previous file kept, audited).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::metrics::{self, Decision};
use super::prometheus;
use super::{FORMAT, Pinned, Runtime, Stage, Step};
use crate::artifact::native::Version;
use crate::diag::{Diagnostics, Pos};
use crate::format;
use crate::read::{MAX_DATA_BYTES, MAX_FILE_BYTES, ReadError};
use crate::store::{self, Actor, Change};

/// The runtime config's path: `given` (`--runtime`), or [`super::DEFAULT_PATH`] in the
/// repository at `root`. That one is the repository's own file, which a pull request
/// can commit as a symlink: it must not lead outside the repository.
pub fn runtime_path(root: &Path, given: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let path = root.join(super::DEFAULT_PATH);
    let canonical_root = root
        .canonicalize()
        .with_context(|| format!("cannot open repository directory {}", root.display()))?;
    match crate::read::inside(root, &canonical_root, &path) {
        Ok(_) | Err(ReadError::Missing) => Ok(path),
        Err(e) => {
            let mut d = Diagnostics::default();
            d.push(
                &path.display().to_string(),
                Pos::START,
                format::read_error_message(&e),
            );
            Err(d.into())
        }
    }
}

/// Read the runtime config; a missing file is an empty one.
pub fn load(path: &Path) -> Result<Runtime> {
    match format::file_text_if_any(path, MAX_FILE_BYTES)? {
        Some(text) => parse(path, &text),
        None => Ok(Runtime::default()),
    }
}

/// Parse a runtime config; problems name the file, line and column.
pub fn parse(path: &Path, text: &str) -> Result<Runtime> {
    let name = path.display().to_string();
    let node = format::parse_yaml(&name, text)?;
    let runtime: Runtime = format::typed_file(&name, &node, crate::schemas::RUNTIME.get())?;
    if runtime.format != FORMAT {
        let mut d = Diagnostics::default();
        d.push(
            &name,
            Pos::START,
            format!(
                "format `{}` is not one this promptgate reads (`{FORMAT}`)",
                runtime.format
            ),
        );
        return Err(d.into());
    }
    let mut d = Diagnostics::default();
    for (id, release) in &runtime.artifacts {
        for problem in release.problems() {
            let mut keys = vec!["artifacts", id.as_str()];
            keys.extend(&problem.at);
            d.push(
                &name,
                node.pos_at(&keys),
                format!("`{id}`: {}", problem.message),
            );
        }
        for (at, message) in release.prometheus.iter().flat_map(prometheus::problems) {
            let mut keys = vec!["artifacts", id.as_str()];
            keys.extend(at.iter().map(String::as_str));
            d.push(&name, node.pos_at(&keys), format!("`{id}`: {message}"));
        }
    }
    if !d.is_empty() {
        return Err(d.into());
    }
    Ok(runtime)
}

/// The file as written: a header, then the config, in block YAML that every reader
/// reads the same ([`yaml_text`]). Written here, not by serde_yaml, because serde_yaml
/// quotes for YAML 1.2 only and leaves `on`, `yes` and `010` plain, which YAML 1.1
/// readers (PyYAML) read as a boolean or a number.
pub fn render(runtime: &Runtime) -> Result<String> {
    let value = serde_json::to_value(runtime).context("cannot write the runtime config")?;
    let mut out = String::from(
        "# Which prompt version serves which traffic; read by the applications, written by\n\
         # `promptgate rollout` and `promptgate rollback` (see docs/release.md).\n",
    );
    yaml_block(&value, 0, &mut out);
    Ok(out)
}

/// Whether `s` may be written as a plain YAML scalar and read back as the same string
/// by a YAML 1.1 reader (PyYAML) and a 1.2 one: a letter or `_` first, then letters,
/// digits and `_ . / -`, and not one of 1.1's booleans or null (`on`, `yes`, `n`, …).
/// Everything else (`010`, `1e3`, `2026-01-07`, `*`, `~`, `on`) is quoted.
pub fn plain_ok(s: &str) -> bool {
    const SPECIAL: [&str; 10] = [
        "y", "yes", "n", "no", "on", "off", "true", "false", "null", "nan",
    ];
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
        && !SPECIAL.contains(&s.to_ascii_lowercase().as_str())
}

/// A string as a YAML scalar: plain when [`plain_ok`], else double-quoted (JSON's
/// escapes are YAML's).
fn yaml_text(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

fn yaml_scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(yaml_text(s)),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(o) if o.is_empty() => Some("{}".into()),
        Value::Array(_) | Value::Object(_) => None,
        Value::Number(n) if n.is_f64() => Some(yaml_float(&n.to_string())),
        other => Some(other.to_string()),
    }
}

/// A float as JSON writes it, made a float to YAML 1.1 too: its float needs a `.` in
/// the mantissa, so a plain `1e-05` would read back as a string.
fn yaml_float(json: &str) -> String {
    match json.split_once(['e', 'E']) {
        Some((mantissa, exponent)) if !mantissa.contains('.') => {
            format!("{mantissa}.0e{exponent}")
        }
        _ => json.to_string(),
    }
}

/// `v` (a mapping or a list) as block YAML at `indent` spaces.
fn yaml_block(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (key, value) in map {
                out.push_str(&format!("{pad}{}:", yaml_text(key)));
                match yaml_scalar(value) {
                    Some(text) => out.push_str(&format!(" {text}\n")),
                    None => {
                        out.push('\n');
                        yaml_block(value, indent + 2, out);
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match yaml_scalar(item) {
                    Some(text) => out.push_str(&format!("{pad}- {text}\n")),
                    None => {
                        // The item's block at indent + 2, its first line's indent
                        // replaced by the dash.
                        let mut inner = String::new();
                        yaml_block(item, indent + 2, &mut inner);
                        out.push_str(&pad);
                        out.push_str("- ");
                        out.push_str(&inner[indent + 2..]);
                    }
                }
            }
        }
        other => {
            if let Some(text) = yaml_scalar(other) {
                out.push_str(&format!("{pad}{text}\n"));
            }
        }
    }
}

/// Change the runtime config under its lock; returns what changed.
pub fn change(
    path: &Path,
    actor: &Actor,
    apply: impl FnOnce(&mut Runtime) -> Result<String>,
) -> Result<String> {
    change_if(path, actor, |rt| Ok(Step::Changed(apply(rt)?)))
}

/// [`change`] for a transition that may find nothing to do: then nothing is written or
/// audited, and the words say so.
pub fn change_if(
    path: &Path,
    actor: &Actor,
    apply: impl FnOnce(&mut Runtime) -> Result<Step>,
) -> Result<String> {
    let mut unchanged = None;
    let what = store::update(path, &store::audit_path(path), actor, |current| {
        let mut runtime = match current {
            Some(text) => parse(path, text)?,
            None => Runtime::default(),
        };
        Ok(match apply(&mut runtime)? {
            Step::Changed(what) => Some(Change {
                content: render(&runtime)?,
                what,
            }),
            Step::Unchanged(words) => {
                unchanged = Some(words);
                None
            }
        })
    })?;
    Ok(what.or(unchanged).unwrap_or_default())
}

/// A version from the command line: `4` is a number, anything else text.
pub fn version(text: &str) -> Version {
    text.parse::<u64>()
        .map_or_else(|_| Version::Text(text.to_string()), Version::Number)
}

/// Check `version` of `artifact` against gate evidence (`promptgate gate --evidence`):
/// the evidence must cover that version and must not be blocked or undecided. Returns
/// the head fingerprint it records.
pub fn check_evidence(path: &Path, artifact: &str, version: &str) -> Result<Option<String>> {
    let text = format::file_text(path, MAX_DATA_BYTES)?;
    let e: Value = serde_json::from_str(&text).map_err(|e| {
        format::json_problem(
            &path.display().to_string(),
            "not a promptgate evidence bundle",
            &e,
        )
    })?;
    if e["schema"] != "promptgate.evidence/v1" {
        bail!(
            "{}: not a promptgate evidence bundle (schema `promptgate.evidence/v1`)",
            path.display()
        );
    }
    let state = e["verdict"]["state"].as_str().unwrap_or("");
    if state != "pass" && state != "needs-tradeoff" {
        bail!(
            "{}: the gate's verdict is `{state}`; a version that did not pass its gate is not rolled out",
            path.display()
        );
    }
    let side = e["artifacts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["id"] == artifact && a["head"]["version"].as_str() == Some(version))
        .with_context(|| {
            format!(
                "{}: the gate evidence has no result for `{artifact}` version {version}",
                path.display()
            )
        })?;
    Ok(side["head"]["fingerprint"].as_str().map(str::to_string))
}

pub fn pinned(version_text: &str, fingerprint: Option<String>) -> Pinned {
    Pinned {
        version: version(version_text),
        fingerprint,
        commit: None,
    }
}

/// Read metrics from a file, with the problems in its lines.
pub fn read_metrics(path: &Path) -> Result<(metrics::Table, Diagnostics)> {
    let text = format::file_text(path, MAX_DATA_BYTES)?;
    Ok(metrics::parse(&path.display().to_string(), &text))
}

/// The status table.
pub fn status_table(runtime: &Runtime, only: Option<&str>) -> String {
    let mut out = String::from("ARTIFACT\tSTABLE\tCANARY\tSTAGE\tSERVES\tSTATE\n");
    for (id, r) in &runtime.artifacts {
        if only.is_some_and(|o| o != id) {
            continue;
        }
        let (canary, stage, serves) = match &r.canary {
            Some(c) => (
                c.version.text(),
                c.stage.word().to_string(),
                format!("{}% of {}", c.percent, c.segments.join(",")),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let state = if r.frozen {
            format!(
                "FROZEN: {}",
                r.frozen_because.as_deref().unwrap_or("by hand")
            )
        } else if r.canary.is_some() {
            "rolling out".into()
        } else {
            "stable".into()
        };
        out.push_str(&format!(
            "{id}\t{}\t{canary}\t{stage}\t{serves}\t{state}\n",
            r.stable.version.text()
        ));
    }
    crate::diag::terminal_text(out)
}

/// A decision as a line of text.
pub fn say(artifact: &str, d: &Decision) -> String {
    let line = match d {
        Decision::Healthy { counts, .. } => format!(
            "{artifact}: healthy: {} canary requests within every threshold; it may advance\n",
            counts.requests
        ),
        Decision::Hold {
            counts,
            needed,
            watching,
            ..
        } if watching.is_empty() => format!(
            "{artifact}: hold: {} of the {needed} canary requests this stage needs; within the thresholds so far\n",
            counts.requests
        ),
        Decision::Hold { watching, .. } => {
            format!("{artifact}: hold: {}\n", watching.join("; "))
        }
        Decision::Breach { reasons, .. } => {
            format!("{artifact}: BREACH: {}\n", reasons.join("; "))
        }
    };
    crate::diag::terminal_text(line)
}

/// What a change did, as a line of text.
fn line(what: &str) -> String {
    crate::diag::terminal_text(format!("{what}\n"))
}

/// Where a check reads the canary's metrics.
#[derive(Debug, Clone, Copy)]
pub enum Metrics<'a> {
    /// A metrics file (JSON Lines or CSV).
    File(&'a Path),
    /// The artifact's `prometheus` queries, asked of this server.
    Prometheus(&'a prometheus::Source),
}

/// How `status` and `check` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Table,
    Json,
}

/// A `promptgate rollout …` or `promptgate rollback` request, as plain values.
#[derive(Debug, Clone)]
pub enum ReleaseRequest<'a> {
    /// Start rolling out `version` at the first stage.
    Start {
        /// The repository the artifact and its versions must be in, and its config.
        repo: &'a Path,
        config: Option<&'a str>,
        artifact: &'a str,
        version: &'a str,
        /// The stable version, for an artifact's first rollout.
        stable: Option<&'a str>,
        /// Gate evidence that must cover the version and not have blocked.
        evidence: Option<&'a Path>,
    },
    /// Move the canary from stage `from` to the next; with metrics, only if it is
    /// healthy; without, only as an override (`force`, the reason required).
    Advance {
        artifact: &'a str,
        from: Stage,
        metrics: Option<Metrics<'a>>,
        /// Advance without metrics, and why: audited as an override.
        force: Option<&'a str>,
    },
    /// Every artifact's (or one's) stable version, canary, stage and state.
    Status {
        artifact: Option<&'a str>,
        format: Listing,
    },
    /// Hold the canary's metrics to its thresholds; a breach freezes the rollout.
    Check {
        artifact: &'a str,
        metrics: Metrics<'a>,
        format: Listing,
    },
    /// End the rollout of version `from`, or, `from` being stable, restore the previous
    /// stable version.
    Rollback { artifact: &'a str, from: &'a str },
}

/// How a request ended, besides what it printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Done,
    /// A canary broke a threshold: the rollout is frozen, all traffic on stable.
    Frozen,
    /// The metrics file had bad lines, so nothing moved on.
    BadMetrics,
    /// The metrics could not be read from Prometheus: the rollout holds, nothing
    /// changed.
    Unavailable,
}

/// What a request did: the text for the user (quoted for a terminal, but JSON, which
/// is for programs), the problems found in its inputs, and how it ended.
#[derive(Debug)]
pub struct Done {
    pub output: String,
    pub problems: Diagnostics,
    pub end: End,
}

/// Carry out `request` on the runtime config at `path`; `reason` goes to the audit log.
pub fn run(
    path: &Path,
    env: &crate::env::Env,
    request: &ReleaseRequest,
    reason: Option<&str>,
) -> Result<Done> {
    let clock = jiff::Timestamp::now();
    let now = clock.to_string();
    let mut output = String::new();
    let mut problems = Diagnostics::default();
    let end = match *request {
        ReleaseRequest::Start {
            repo,
            config,
            artifact,
            version: v,
            stable,
            evidence,
        } => {
            let fingerprint = match evidence {
                Some(e) => check_evidence(e, artifact, v)?,
                None => None,
            };
            let asked: Vec<&str> = std::iter::once(v).chain(stable).collect();
            let origins = super::origin::check(repo, config, artifact, &asked)?;
            let commit = |i: usize| origins.get(i).map(|o| o.commit.clone());
            let why = reason.map_or_else(
                || format!("rollout start {artifact} --version {v}"),
                str::to_string,
            );
            let what = change(path, &Actor::new(env, &why), |rt| {
                let canary = Pinned {
                    commit: commit(0),
                    ..pinned(v, fingerprint)
                };
                let stable = stable.map(|s| Pinned {
                    commit: commit(1),
                    ..pinned(s, None)
                });
                Ok(super::start(rt, artifact, canary, stable, &now)?)
            })?;
            output.push_str(&line(&what));
            End::Done
        }
        ReleaseRequest::Advance {
            artifact,
            from,
            metrics,
            force,
        } => {
            let mut why = reason.map_or_else(
                || format!("rollout advance {artifact} --from {}", from.word()),
                str::to_string,
            );
            let mut end = None;
            match (metrics, force) {
                (Some(m), _) => {
                    let (release, decided) = decide(path, artifact, m)?;
                    // A frozen rollout does not advance, whatever its metrics say now.
                    if release.frozen {
                        return Err(super::Refused::Frozen {
                            artifact: artifact.into(),
                            why: release
                                .frozen_because
                                .unwrap_or_else(|| "frozen by hand".into()),
                        }
                        .into());
                    }
                    let (decision, bad) = match decided {
                        Ok(decided) => decided,
                        Err(why) => {
                            output.push_str(&say_unavailable(artifact, &why));
                            return Ok(Done {
                                output,
                                problems,
                                end: End::Unavailable,
                            });
                        }
                    };
                    output.push_str(&say(artifact, &decision));
                    let bad_metrics = !bad.is_empty();
                    problems = bad;
                    let (words, froze) = judge(path, env, artifact, &release, &decision)?;
                    output.push_str(&words);
                    match decision {
                        _ if froze => end = Some(End::Frozen),
                        // Never advance on a breach, counted or not yet freezing.
                        Decision::Breach { .. } => end = Some(End::Done),
                        // A corrupt metrics file is no reason to move on.
                        _ if bad_metrics => end = Some(End::BadMetrics),
                        Decision::Hold { .. } => end = Some(End::Done),
                        Decision::Healthy { .. } => {}
                    }
                }
                (None, Some(override_why)) => {
                    why =
                        format!("OVERRIDE without metrics or bake time (--force): {override_why}");
                }
                (None, None) => bail!(
                    "`rollout advance` needs `--metrics FILE`, or `--force --why TEXT` to advance without evidence (audited as an override)"
                ),
            }
            match end {
                Some(end) => end,
                None => {
                    // Healthy metrics advance a stage that has baked its `min_bake`, as
                    // the file says under the lock; an override does not wait.
                    let bake = metrics.is_some();
                    let what = change_if(path, &Actor::new(env, &why), |rt| {
                        if bake
                            && let Some(words) = rt
                                .artifacts
                                .get(artifact)
                                .filter(|r| r.canary.as_ref().is_some_and(|c| c.stage == from))
                                .and_then(|r| r.still_baking(clock))
                        {
                            return Ok(Step::Unchanged(format!("{artifact}: hold: {words}")));
                        }
                        Ok(Step::Changed(super::advance(rt, artifact, from, &now)?))
                    })?;
                    output.push_str(&line(&what));
                    End::Done
                }
            }
        }
        ReleaseRequest::Status { artifact, format } => {
            let mut runtime = load(path)?;
            if let Some(a) = artifact
                && !runtime.artifacts.contains_key(a)
            {
                return Err(super::Refused::Unknown(a.to_string()).into());
            }
            match format {
                Listing::Table => output.push_str(&status_table(&runtime, artifact)),
                Listing::Json => {
                    if let Some(a) = artifact {
                        runtime.artifacts.retain(|id, _| id == a);
                    }
                    output.push_str(&format!("{}\n", serde_json::to_string_pretty(&runtime)?));
                }
            }
            End::Done
        }
        ReleaseRequest::Check {
            artifact,
            metrics: m,
            format,
        } => {
            let (release, decided) = decide(path, artifact, m)?;
            let (decision, bad) = match decided {
                Ok(decided) => decided,
                Err(why) => {
                    match format {
                        Listing::Table => output.push_str(&say_unavailable(artifact, &why)),
                        Listing::Json => output.push_str(&format!(
                            "{}\n",
                            serde_json::to_string_pretty(
                                &serde_json::json!({"decision": "hold", "unavailable": why.0})
                            )?
                        )),
                    }
                    return Ok(Done {
                        output,
                        problems,
                        end: End::Unavailable,
                    });
                }
            };
            match format {
                Listing::Table => {
                    output.push_str(&say(artifact, &decision));
                    if let (Decision::Healthy { .. }, Some(words)) =
                        (&decision, release.still_baking(clock))
                    {
                        output.push_str(&line(&format!("{artifact}: hold: {words}")));
                    }
                }
                Listing::Json => {
                    output.push_str(&format!("{}\n", serde_json::to_string_pretty(&decision)?))
                }
            }
            let bad_metrics = !bad.is_empty();
            problems = bad;
            if release.frozen {
                End::Frozen
            } else {
                let (words, froze) = judge(path, env, artifact, &release, &decision)?;
                if format == Listing::Table {
                    output.push_str(&words);
                }
                match decision {
                    _ if froze => End::Frozen,
                    _ if bad_metrics => End::BadMetrics,
                    _ => End::Done,
                }
            }
        }
        ReleaseRequest::Rollback { artifact, from } => {
            let why = reason.map_or_else(
                || format!("rollback {artifact} --from {from}"),
                str::to_string,
            );
            let what = change_if(path, &Actor::new(env, &why), |rt| {
                Ok(super::rollback(rt, artifact, &version(from))?)
            })?;
            output.push_str(&line(&what));
            End::Done
        }
    };
    Ok(Done {
        output,
        problems,
        end,
    })
}

/// The artifact's release, and the check of its canary against the metrics with the
/// metrics file's bad lines, or why Prometheus could not say.
#[allow(clippy::type_complexity)]
fn decide(
    path: &Path,
    artifact: &str,
    source: Metrics,
) -> Result<(
    super::Release,
    Result<(Decision, Diagnostics), prometheus::Unavailable>,
)> {
    let release = load(path)?
        .artifacts
        .remove(artifact)
        .ok_or_else(|| super::Refused::Unknown(artifact.to_string()))?;
    if release.canary.is_none() {
        return Err(super::Refused::NoCanary(artifact.to_string()).into());
    }
    let (table, extra, mut problems, name) = match source {
        Metrics::File(file) => {
            let (table, problems) = read_metrics(file)?;
            (table, Vec::new(), problems, file.display().to_string())
        }
        Metrics::Prometheus(server) => {
            let Some(queries) = &release.prometheus else {
                bail!(
                    "{}: `{artifact}` has no `prometheus` queries to ask (docs/release.md, \"Metrics from Prometheus\")",
                    path.display()
                );
            };
            let fetched = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the HTTP client's runtime")?
                .block_on(prometheus::fetch(
                    server,
                    artifact,
                    &release,
                    queries,
                    jiff::Timestamp::now(),
                ));
            match fetched {
                Ok((table, extra)) => (table, extra, Diagnostics::default(), server.shown()),
                Err(why) => return Ok((release, Err(why))),
            }
        }
    };
    let checked = metrics::check_with(&release, &table, &extra)
        .ok_or_else(|| super::Refused::NoCanary(artifact.to_string()))?;
    for (line, message) in checked.problems {
        problems.push(&name, Pos::new(line, 1), message);
    }
    Ok((release, Ok((checked.decision, problems))))
}

/// Metrics Prometheus could not give, as a line of text.
pub fn say_unavailable(artifact: &str, why: &prometheus::Unavailable) -> String {
    crate::diag::terminal_text(format!(
        "{artifact}: hold: cannot judge the canary: {why}; nothing changed\n"
    ))
}

/// What a check's decision does to the rollout: a breach counts one more in a row and,
/// past `failure_limit`, freezes; anything else starts the count again. Returns the
/// words, and whether it froze.
fn judge(
    path: &Path,
    env: &crate::env::Env,
    artifact: &str,
    release: &super::Release,
    decision: &Decision,
) -> Result<(String, bool)> {
    let Some(canary) = &release.canary else {
        return Ok((String::new(), false));
    };
    match decision {
        Decision::Breach { reasons, .. } => {
            let why = reasons.join("; ");
            let mut froze = false;
            let what = change_if(
                path,
                &Actor::new(env, &format!("canary breach: {why}")),
                |rt| {
                    let (step, f) =
                        super::breached(rt, artifact, &canary.version.text(), canary.stage, &why)?;
                    froze = f;
                    Ok(step)
                },
            )?;
            Ok((line(&what), froze))
        }
        _ if canary.breaches > 0 => {
            let what = change_if(
                path,
                &Actor::new(env, "canary check without a breach"),
                |rt| Ok(super::not_breached(rt, artifact)),
            )?;
            Ok((line(&what), false))
        }
        _ => Ok((String::new(), false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::start;

    /// Versions were written as plain `on`, `yes`, `010`, which PyYAML (YAML 1.1) reads
    /// as true, true and 10.
    #[test]
    fn strings_a_yaml_1_1_reader_would_read_otherwise_are_quoted() {
        let mut rt = Runtime::default();
        let tricky = [
            "on",
            "yes",
            "Off",
            "n",
            "~",
            "010",
            "0o10",
            "1e3",
            "1_000",
            "0x1F",
            ".5",
            "+1",
            "1:20",
            "2026-01-07",
            "null",
            "",
            " 4",
            "*",
        ];
        for (i, v) in tricky.iter().enumerate() {
            let id = if i == 0 {
                "on".to_string()
            } else {
                format!("a{i}")
            };
            let text = Pinned {
                version: Version::Text(v.to_string()),
                fingerprint: None,
                commit: None,
            };
            start(
                &mut rt,
                &id,
                text,
                Some(pinned("3", None)),
                "2026-01-07T09:00:00Z",
            )
            .expect("starts");
        }
        let text = render(&rt).expect("renders");
        for v in tricky {
            let quoted = serde_json::to_string(v).expect("json");
            assert!(
                text.contains(&format!("version: {quoted}\n")),
                "{v:?} is not quoted:\n{text}"
            );
        }
        assert!(text.contains("\n  \"on\":\n"), "{text}");
        // Plain where nothing else can be read: numbers, and names.
        assert!(text.contains("version: 3\n") && text.contains("stage: internal\n"));
        // And it reads back as it was.
        assert_eq!(parse(Path::new("r.yaml"), &text).expect("parses"), rt);
    }

    /// YAML 1.1 reads a float only with a `.` before its exponent.
    #[test]
    fn small_floats_are_floats_to_a_yaml_1_1_reader() {
        assert_eq!(serde_json::json!(1e-7).to_string(), "1e-7");
        assert_eq!(
            yaml_scalar(&serde_json::json!(1e-7)).as_deref(),
            Some("1.0e-7")
        );
        assert_eq!(
            yaml_scalar(&serde_json::json!(0.05)).as_deref(),
            Some("0.05")
        );
        assert_eq!(
            yaml_scalar(&serde_json::json!(2.5e-7)).as_deref(),
            Some("2.5e-7")
        );
        assert_eq!(yaml_scalar(&serde_json::json!(3)).as_deref(), Some("3"));
        assert_eq!(
            serde_yaml::from_str::<f64>("1.0e-7").expect("a float"),
            1e-7
        );
    }
}
