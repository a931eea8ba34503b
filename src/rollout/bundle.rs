//! `promptgate bundle`: what an application needs to serve every version the runtime
//! config names (stable, canary, history) — messages, model and parameters, response
//! format, tools, fingerprint — read from the repository's history at the commit that
//! introduced each version, as one JSON document (`promptgate.bundle/v1`, schema in
//! `schemas/bundle.schema.json`). With the flagd export an application resolves a
//! version and serves its content without reading the repository (docs/runtime.md).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Pinned, Runtime, origin};
use crate::artifact::{Message, ModelSpec};
use crate::repo::Snapshot;
use crate::source::git::Git;

/// The `format` of a bundle this version writes.
pub const FORMAT: &str = "promptgate.bundle/v1";

/// Every version the runtime config names, with its content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// `promptgate.bundle/v1`.
    pub format: String,
    /// The repository's `HEAD` when the bundle was made.
    pub commit: String,
    /// By artifact id, as in the runtime config.
    pub artifacts: BTreeMap<String, BundledArtifact>,
}

/// One artifact: which version is stable and which is rolling out, and the content of
/// each version named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BundledArtifact {
    pub stable: String,
    /// The version being rolled out, if any (also while frozen).
    pub canary: Option<String>,
    pub frozen: bool,
    /// Stable first, then the canary, then earlier stable versions, newest first.
    pub versions: Vec<BundledVersion>,
}

/// A version's content as the artifact file had it where the version was introduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BundledVersion {
    pub version: String,
    /// The commit that introduced the version.
    pub commit: String,
    /// The artifact's file, repository-relative, at that commit.
    pub path: String,
    /// promptgate's fingerprint of everything that changes the model's behaviour.
    pub fingerprint: String,
    pub model: ModelSpec,
    /// `{"type": "text"}`, `{"type": "json_object"}` or `{"type": "json_schema", …}`.
    pub response_format: Value,
    /// Templates (minijinja) as written: the application fills in its variables.
    pub messages: Vec<Message>,
    /// Tool definitions in OpenAI's function-tool format.
    pub tools: Vec<Value>,
}

/// The bundle of every version `runtime` names, from the repository at `root` (its
/// config at `config_path`). A version the history does not have, or whose content
/// there is not what the runtime config pins (its fingerprint), is an error naming it.
pub fn make(root: &Path, config_path: Option<&str>, runtime: &Runtime) -> Result<Bundle> {
    let git = Git::open(root)
        .context("`promptgate bundle` reads the repository's history: run it in the repository")?;
    let head = git.head()?;
    let mut artifacts = BTreeMap::new();
    for (id, release) in &runtime.artifacts {
        let mut named: Vec<&Pinned> = vec![&release.stable];
        let canary = release.canary.as_ref().map(|c| Pinned {
            version: c.version.clone(),
            fingerprint: c.fingerprint.clone(),
            commit: c.commit.clone(),
        });
        named.extend(canary.as_ref());
        named.extend(release.history.iter().rev());
        let texts: Vec<String> = named.iter().map(|p| p.version.text()).collect();
        let asked: Vec<&str> = texts.iter().map(String::as_str).collect();
        let origins = origin::check(root, config_path, id, &asked)
            .with_context(|| format!("bundling `{id}`"))?;
        let mut versions = Vec::new();
        for (pinned, found) in named.iter().zip(&origins) {
            // The commit recorded when the rollout started, else the one history says.
            let commit = pinned.commit.as_deref().unwrap_or(&found.commit);
            versions.push(version_at(
                &git,
                config_path,
                id,
                pinned,
                commit,
                &found.path,
            )?);
        }
        artifacts.insert(
            id.clone(),
            BundledArtifact {
                stable: release.stable.version.text(),
                canary: release.canary.as_ref().map(|c| c.version.text()),
                frozen: release.frozen,
                versions,
            },
        );
    }
    Ok(Bundle {
        format: FORMAT.into(),
        commit: head.to_string(),
        artifacts,
    })
}

/// Version `pinned` of artifact `id` as the file at `path` has it at `commit`.
fn version_at(
    git: &Git,
    config_path: Option<&str>,
    id: &str,
    pinned: &Pinned,
    commit: &str,
    path: &str,
) -> Result<BundledVersion> {
    let v = pinned.version.text();
    let oid = gix::ObjectId::from_hex(commit.as_bytes())
        .with_context(|| format!("`{id}` version {v}: `{commit}` is not a commit id"))?;
    let tree = git
        .tree(oid)
        .with_context(|| format!("`{id}` version {v}: commit {commit} is not in the repository"))?;
    let snapshot = Snapshot::open(&tree, config_path);
    let artifact = snapshot.load_artifact(path).map_err(|d| {
        anyhow::anyhow!("`{id}` version {v}: {path} at commit {commit} does not load:\n{d}")
    })?;
    if artifact.id != id || artifact.version.as_deref() != Some(v.as_str()) {
        bail!(
            "`{id}` version {v}: {path} at commit {commit} is `{}` version {}",
            artifact.id,
            artifact.version.as_deref().unwrap_or("(none)")
        );
    }
    if let Some(expected) = &pinned.fingerprint
        && *expected != artifact.fingerprint
    {
        bail!(
            "`{id}` version {v}: its content at commit {commit} (fingerprint {}) is not what the runtime config pins (fingerprint {expected}): the file changed without a new version; bundle from a repository whose history has the pinned content",
            artifact.fingerprint
        );
    }
    Ok(BundledVersion {
        version: v,
        commit: commit.to_string(),
        path: path.to_string(),
        fingerprint: artifact.fingerprint,
        model: artifact.model,
        response_format: serde_json::to_value(&artifact.response_format)?,
        messages: artifact.messages,
        tools: artifact.tools.map(|t| t.definitions).unwrap_or_default(),
    })
}
