//! The GitHub Actions runner's environment and the event that started the run: the one
//! place that reads `GITHUB_*` and `INPUT_*`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::env::Env;
use crate::secret::Secret;

/// The action's inputs (`with:` in the workflow; see action.yml).
#[derive(Debug, Clone)]
pub struct Inputs {
    pub token: Option<Secret>,
    /// Config path relative to the working directory.
    pub config: Option<String>,
    /// Compare against this ref instead of the pull request's base.
    pub base_ref: Option<String>,
    /// `push` and `workflow_dispatch`: evaluate this ref instead of the workflow's commit.
    pub head_ref: Option<String>,
    /// Post and update the sticky comment.
    pub comment: bool,
    pub working_directory: String,
    /// Use this provider for every artifact (e.g. `recorded`).
    pub provider: Option<String>,
    /// `workflow_dispatch` only: the pull request a maintainer evaluates (fork PRs).
    pub pull_request: Option<u64>,
    /// The login the action's comments are written by, when the token cannot say.
    pub comment_author: Option<String>,
    /// The answer cache, relative to the workspace (so `actions/cache` can keep it).
    pub cache_dir: Option<PathBuf>,
    /// The most the cache may hold after a run, in bytes.
    pub cache_max_bytes: u64,
}

/// `cache-max-mb` when the input is not given.
pub const DEFAULT_CACHE_MAX_MB: u64 = 500;

/// `value` of input `name` as a path inside the workspace: relative, with no `..`.
fn workspace_relative(name: &str, value: &str) -> Result<PathBuf> {
    let path = PathBuf::from(value);
    let inside = path.components().all(|c| {
        matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if !inside {
        bail!(
            "input `{name}`: `{value}` is not a path inside the workspace; give one relative to it, such as `.promptgate-cache`"
        );
    }
    Ok(path)
}

/// The runner's variables.
#[derive(Debug, Clone)]
pub struct Runner {
    pub event_name: String,
    pub event: Value,
    /// `owner/name`.
    pub repository: String,
    pub sha: String,
    pub workspace: PathBuf,
    pub api_url: String,
    pub server_url: String,
    pub run_id: Option<String>,
    pub output: Option<PathBuf>,
    pub step_summary: Option<PathBuf>,
    pub temp: PathBuf,
    /// How long one attempt of a GitHub call may take, answer included:
    /// `PROMPTGATE_GITHUB_TIMEOUT_S`, else [`crate::github::DEFAULT_TIMEOUT`].
    pub github_timeout: std::time::Duration,
    /// The first wait between retries, GitHub's and the providers':
    /// `PROMPTGATE_RETRY_BASE_MS`, else each client's default.
    pub retry_base: Option<std::time::Duration>,
    pub inputs: Inputs,
}

impl Runner {
    /// Read the runner's environment and the event payload it points at.
    pub fn read(env: &Env) -> Result<Runner> {
        let var = |name: &str| env.vars.get(name).map(str::to_string);
        let required = |name: &str| {
            var(name).with_context(|| {
                format!("{name} is not set: `promptgate action` runs inside GitHub Actions (locally, use `promptgate gate`)")
            })
        };
        // The runner passes `with:` inputs as INPUT_<NAME> upper-cased, keeping hyphens.
        let input_names = |name: &str| {
            let upper = name.to_uppercase();
            [
                format!("INPUT_{upper}"),
                format!("INPUT_{}", upper.replace('-', "_")),
            ]
        };
        let input = |name: &str| {
            input_names(name)
                .iter()
                .find_map(|n| var(n))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        // The token is the one input that is a credential: read as a secret.
        let token = input_names("github-token")
            .iter()
            .find_map(|n| env.secrets.get(n))
            .map(|s| Secret::new(s.expose().trim()))
            .filter(|s| !s.expose().is_empty());
        let flag = |name: &str, default: bool| -> Result<bool> {
            match input(name).as_deref() {
                None => Ok(default),
                Some("true") => Ok(true),
                Some("false") => Ok(false),
                Some(other) => bail!("input `{name}`: expected `true` or `false`, got `{other}`"),
            }
        };
        let event_name = required("GITHUB_EVENT_NAME")?;
        let event_path = required("GITHUB_EVENT_PATH")?;
        let event_text =
            crate::format::file_text(Path::new(&event_path), crate::read::MAX_FILE_BYTES)
                .map_err(|d| anyhow::anyhow!("cannot read the event payload: {d}"))?;
        let event: Value = serde_json::from_str(&event_text)
            .with_context(|| format!("{event_path}: the event payload is not JSON"))?;
        let pull_request = input("pull-request")
            .map(|n| {
                n.trim_start_matches('#')
                    .parse::<u64>()
                    .with_context(|| format!("input `pull-request`: `{n}` is not a number"))
            })
            .transpose()?;
        let workspace = PathBuf::from(required("GITHUB_WORKSPACE")?);
        let github_timeout = match var("PROMPTGATE_GITHUB_TIMEOUT_S") {
            None => crate::github::DEFAULT_TIMEOUT,
            Some(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| *s > 0.0)
                .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
                .with_context(|| {
                    format!(
                        "PROMPTGATE_GITHUB_TIMEOUT_S: `{v}` is not a positive number of seconds"
                    )
                })?,
        };
        Ok(Runner {
            event_name,
            event,
            repository: required("GITHUB_REPOSITORY")?,
            sha: required("GITHUB_SHA")?,
            api_url: var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
            server_url: var("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into()),
            run_id: var("GITHUB_RUN_ID"),
            output: var("GITHUB_OUTPUT").map(PathBuf::from),
            step_summary: var("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            temp: var("RUNNER_TEMP")
                .map(PathBuf::from)
                .unwrap_or_else(|| env.temp_dir.clone()),
            github_timeout,
            retry_base: env
                .retry_base_ms
                .as_deref()
                .map(crate::retry::base_setting)
                .transpose()
                .map_err(anyhow::Error::msg)?,
            inputs: Inputs {
                token,
                config: input("config"),
                base_ref: input("base-ref"),
                head_ref: input("head-ref"),
                comment: flag("comment", true)?,
                working_directory: input("working-directory").unwrap_or_else(|| ".".into()),
                provider: input("provider"),
                pull_request,
                comment_author: input("comment-author"),
                cache_dir: input("cache-dir")
                    .map(|d| workspace_relative("cache-dir", &d))
                    .transpose()?,
                cache_max_bytes: match input("cache-max-mb") {
                    None => DEFAULT_CACHE_MAX_MB,
                    Some(v) => v.parse::<u64>().ok().filter(|n| *n > 0).with_context(|| {
                        format!("input `cache-max-mb`: `{v}` is not a positive whole number of megabytes")
                    })?,
                } * 1024
                    * 1024,
            },
            workspace,
        })
    }

    /// The link a status points at: this workflow run.
    pub fn run_url(&self) -> Option<String> {
        self.run_id.as_ref().map(|id| {
            format!(
                "{}/{}/actions/runs/{id}",
                self.server_url.trim_end_matches('/'),
                self.repository
            )
        })
    }

    /// `event.action`, for `pull_request` and `pull_request_review` events.
    pub fn action(&self) -> &str {
        self.event["action"].as_str().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_dir_stays_inside_the_workspace() {
        assert_eq!(
            workspace_relative("cache-dir", ".promptgate-cache").expect("inside"),
            PathBuf::from(".promptgate-cache")
        );
        assert!(workspace_relative("cache-dir", "./a/b").is_ok());
        for outside in ["/var/cache", "../cache", "a/../../b"] {
            let e = workspace_relative("cache-dir", outside).expect_err(outside);
            assert!(e.to_string().contains("input `cache-dir`"), "{e}");
        }
    }
}
