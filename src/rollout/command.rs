//! `promptgate rollout …` and `promptgate rollback`: the runtime config read and changed
//! through [`crate::store`] (locked, atomic, previous file kept, audited).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::metrics::{self, Decision};
use super::{FORMAT, Pinned, Runtime};
use crate::artifact::native::Version;
use crate::diag::Diagnostics;
use crate::store::{self, Actor, Change};

/// Read the runtime config; a missing file is an empty one.
pub fn load(path: &Path) -> Result<Runtime> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Runtime::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Parse a runtime config; problems name the file, line and column.
pub fn parse(path: &Path, text: &str) -> Result<Runtime> {
    let name = path.display().to_string();
    let node = crate::format::parse_yaml(&name, text)?;
    let runtime: Runtime = crate::format::typed_file(&name, &node, crate::schemas::RUNTIME.get())?;
    if runtime.format != FORMAT {
        let mut d = Diagnostics::default();
        d.push(
            &name,
            crate::diag::Pos::START,
            format!(
                "format `{}` is not one this promptgate reads (`{FORMAT}`)",
                runtime.format
            ),
        );
        return Err(d.into());
    }
    Ok(runtime)
}

/// The file as written: a header, then the config.
pub fn render(runtime: &Runtime) -> Result<String> {
    Ok(format!(
        "# Which prompt version serves which traffic; read by the applications, written by\n\
         # `promptgate rollout` and `promptgate rollback` (see docs/release.md).\n{}",
        serde_yaml::to_string(runtime).context("cannot write the runtime config")?
    ))
}

/// Change the runtime config under its lock; returns what changed.
pub fn change(
    path: &Path,
    actor: &Actor,
    apply: impl FnOnce(&mut Runtime) -> Result<String>,
) -> Result<String> {
    let what = store::update(path, &store::audit_path(path), actor, |current| {
        let mut runtime = match current {
            Some(text) => parse(path, text)?,
            None => Runtime::default(),
        };
        let what = apply(&mut runtime)?;
        Ok(Some(Change {
            content: render(&runtime)?,
            what,
        }))
    })?;
    Ok(what.unwrap_or_default())
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
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the gate evidence {}", path.display()))?;
    let e: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a promptgate evidence bundle", path.display()))?;
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
    }
}

/// Read metrics from a file; problems are printed and returned as a count.
pub fn read_metrics(path: &Path) -> Result<(metrics::Table, Diagnostics)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the metrics {}", path.display()))?;
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
    out
}

/// Print a decision as text.
pub fn say(out: &mut impl Write, artifact: &str, d: &Decision) -> std::io::Result<()> {
    match d {
        Decision::Healthy { counts } => writeln!(
            out,
            "{artifact}: healthy: {} canary requests within every threshold; it may advance",
            counts.requests
        ),
        Decision::Hold { counts, needed } => writeln!(
            out,
            "{artifact}: hold: {} of the {needed} canary requests this stage needs; within the thresholds so far",
            counts.requests
        ),
        Decision::Breach { reasons, .. } => {
            writeln!(out, "{artifact}: BREACH: {}", reasons.join("; "))
        }
    }
}

/// `promptgate rollout …`.
pub fn rollout(
    path: &Path,
    env: &crate::env::Env,
    command: &crate::cli::RolloutCommand,
    reason: Option<&str>,
) -> Result<crate::exit::Exit> {
    use crate::cli::{RolloutCommand, StatusFormat};
    use crate::exit::Exit;
    let now = jiff::Timestamp::now().to_string();
    let mut out = std::io::stdout().lock();
    match command {
        RolloutCommand::Start {
            artifact,
            version: v,
            stable,
            evidence,
        } => {
            let fingerprint = match evidence {
                Some(e) => check_evidence(e, artifact, v)?,
                None => None,
            };
            let why = reason.map_or_else(
                || format!("rollout start {artifact} --version {v}"),
                str::to_string,
            );
            let what = change(path, &Actor::new(env, &why), |rt| {
                Ok(super::start(
                    rt,
                    artifact,
                    pinned(v, fingerprint),
                    stable.as_deref().map(|s| pinned(s, None)),
                    &now,
                )?)
            })?;
            writeln!(out, "{what}")?;
            Ok(Exit::Ok)
        }
        RolloutCommand::Advance { artifact, metrics } => {
            let why = reason.map_or_else(|| format!("rollout advance {artifact}"), str::to_string);
            if let Some(m) = metrics {
                let (_, decision, problems) = decide(path, artifact, m)?;
                say(&mut out, artifact, &decision)?;
                match decision {
                    Decision::Breach { reasons, .. } => {
                        return freeze(path, env, artifact, &reasons.join("; "), &mut out);
                    }
                    // A corrupt metrics file is no reason to move on.
                    _ if !problems.is_empty() => return Ok(Exit::Invalid),
                    Decision::Hold { .. } => return Ok(Exit::Ok),
                    Decision::Healthy { .. } => {}
                }
            }
            let what = change(path, &Actor::new(env, &why), |rt| {
                Ok(super::advance(rt, artifact, &now)?)
            })?;
            writeln!(out, "{what}")?;
            Ok(Exit::Ok)
        }
        RolloutCommand::Status { artifact, format } => {
            let runtime = load(path)?;
            if let Some(a) = artifact
                && !runtime.artifacts.contains_key(a)
            {
                return Err(super::Refused::Unknown(a.clone()).into());
            }
            match format {
                StatusFormat::Table => {
                    write!(out, "{}", status_table(&runtime, artifact.as_deref()))?
                }
                StatusFormat::Json => {
                    let mut runtime = runtime;
                    if let Some(a) = artifact {
                        runtime.artifacts.retain(|id, _| id == a);
                    }
                    writeln!(out, "{}", serde_json::to_string_pretty(&runtime)?)?;
                }
            }
            Ok(Exit::Ok)
        }
        RolloutCommand::Check {
            artifact,
            metrics: m,
            format,
        } => {
            let (release, decision, problems) = decide(path, artifact, m)?;
            match format {
                StatusFormat::Table => say(&mut out, artifact, &decision)?,
                StatusFormat::Json => {
                    writeln!(out, "{}", serde_json::to_string_pretty(&decision)?)?
                }
            }
            match decision {
                Decision::Breach { reasons, .. } if !release.frozen => {
                    freeze(path, env, artifact, &reasons.join("; "), &mut out)
                }
                Decision::Breach { .. } => Ok(Exit::Frozen),
                _ if !problems.is_empty() => Ok(Exit::Invalid),
                _ => Ok(Exit::Ok),
            }
        }
    }
}

/// The artifact's release, the check of its canary against the metrics file, and the
/// file's bad lines (already printed).
fn decide(
    path: &Path,
    artifact: &str,
    metrics_file: &Path,
) -> Result<(super::Release, Decision, Diagnostics)> {
    let release = load(path)?
        .artifacts
        .remove(artifact)
        .ok_or_else(|| super::Refused::Unknown(artifact.to_string()))?;
    let (table, problems) = read_metrics(metrics_file)?;
    if !problems.is_empty() {
        eprintln!("{problems}");
    }
    let decision = metrics::check(&release, &table)
        .ok_or_else(|| super::Refused::NoCanary(artifact.to_string()))?;
    Ok((release, decision, problems))
}

/// Freeze after a breach: everyone back on stable, in one write.
fn freeze(
    path: &Path,
    env: &crate::env::Env,
    artifact: &str,
    why: &str,
    out: &mut impl Write,
) -> Result<crate::exit::Exit> {
    let what = change(
        path,
        &Actor::new(env, &format!("canary breach: {why}")),
        |rt| Ok(super::freeze(rt, artifact, why)?),
    )?;
    writeln!(out, "{what}")?;
    Ok(crate::exit::Exit::Frozen)
}

/// `promptgate rollback ARTIFACT`.
pub fn rollback(
    path: &Path,
    env: &crate::env::Env,
    artifact: &str,
    reason: Option<&str>,
) -> Result<crate::exit::Exit> {
    let why = reason.map_or_else(|| format!("rollback {artifact}"), str::to_string);
    let what = change(path, &Actor::new(env, &why), |rt| {
        Ok(super::rollback(rt, artifact)?)
    })?;
    println!("{what}");
    Ok(crate::exit::Exit::Ok)
}
