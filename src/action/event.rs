//! What a run is about: the event routed to a task, and the pull request it concerns,
//! from the payload or, for a maintainer's `workflow_dispatch`, from GitHub.

use anyhow::{Context, Result, bail};
use jiff::Timestamp;

use super::runner::Runner;
use crate::github::GitHub;

/// The pull request the run is about.
#[derive(Debug, Clone)]
pub struct PrTarget {
    pub number: u64,
    pub head_sha: String,
    pub base_sha: String,
    /// The branches, for people to read (the report's header): `head.ref`, `base.ref`.
    pub head_branch: Option<String>,
    pub base_branch: Option<String>,
    pub author: String,
    /// The head lives in another repository: a fork, without our secrets.
    pub fork: bool,
    /// When GitHub last updated the pull request (for a push event: the push).
    pub updated_at: Option<Timestamp>,
}

pub enum Task {
    /// The gate, then approvals, comment and status.
    Gate(PrTarget),
    /// Approvals, comment and status, from the recorded evaluation.
    Approvals(PrTarget),
    /// A fork's pull request: pending until a maintainer runs the evaluation.
    Fork(PrTarget),
    /// The gate on a commit without a pull request.
    Commit {
        base: String,
        head: String,
    },
    Skip(String),
}

/// What the event asks for.
pub async fn task(runner: &Runner, gh: &GitHub) -> Result<Task> {
    let event = &runner.event;
    let from_payload = || -> Result<PrTarget> {
        pull_request_of(&event["pull_request"], &runner.repository)
            .context("the event payload has no usable `pull_request`")
    };
    if let Some(head) = &runner.inputs.head_ref {
        // An explicit ref to evaluate: not the pull request's job, whatever the event.
        let base = runner
            .inputs
            .base_ref
            .clone()
            .context("input `head-ref` needs `base-ref` too (the ref to compare against)")?;
        return Ok(Task::Commit {
            base,
            head: head.clone(),
        });
    }
    Ok(match runner.event_name.as_str() {
        "pull_request" | "pull_request_target" => {
            let pr = from_payload()?;
            match runner.action() {
                "closed" => Task::Skip("the pull request is closed".into()),
                // Needs no secrets; for a fork it waits for a maintainer's evaluation.
                "labeled" | "unlabeled" => Task::Approvals(pr),
                _ if pr.fork => Task::Fork(pr),
                _ => Task::Gate(pr),
            }
        }
        "pull_request_review" => Task::Approvals(from_payload()?),
        "workflow_dispatch" | "push" => {
            match runner.inputs.pull_request {
                Some(number) => {
                    // A maintainer asked for this pull request, fork or not; for a fork,
                    // `fork` still keeps the head's providers out.
                    let found = gh.pull_request(number).await?;
                    if found.state == "closed" {
                        Task::Skip(format!("pull request #{number} is closed"))
                    } else {
                        Task::Gate(PrTarget {
                            number: found.number,
                            fork: found.head.repo.as_ref().is_none_or(|r| {
                                !r.full_name.eq_ignore_ascii_case(&runner.repository)
                            }),
                            head_sha: found.head.sha,
                            base_sha: found.base.sha,
                            head_branch: found.head.name,
                            base_branch: found.base.name,
                            author: found.user.map(|u| u.login).unwrap_or_default(),
                            updated_at: found.updated_at,
                        })
                    }
                }
                None => {
                    let base = match (&runner.inputs.base_ref, event["before"].as_str()) {
                        (Some(b), _) => b.clone(),
                        (None, Some(before)) if !before.chars().all(|c| c == '0') => before.into(),
                        _ => bail!(
                            "{} event: set the `base-ref` input (the ref to compare against, e.g. `origin/main`)",
                            runner.event_name
                        ),
                    };
                    Task::Commit {
                        base,
                        head: runner.sha.clone(),
                    }
                }
            }
        }
        other => bail!(
            "promptgate does not handle `{other}` events; run it on pull_request, pull_request_review, workflow_dispatch or push"
        ),
    })
}

fn pull_request_of(v: &serde_json::Value, repository: &str) -> Option<PrTarget> {
    let head_repo = v["head"]["repo"]["full_name"].as_str();
    Some(PrTarget {
        number: v["number"].as_u64()?,
        head_sha: v["head"]["sha"].as_str()?.to_string(),
        base_sha: v["base"]["sha"].as_str()?.to_string(),
        head_branch: v["head"]["ref"].as_str().map(str::to_string),
        base_branch: v["base"]["ref"].as_str().map(str::to_string),
        author: v["user"]["login"].as_str().unwrap_or("").to_string(),
        // A deleted fork has no head repository: still not ours.
        fork: head_repo.is_none_or(|r| !r.eq_ignore_ascii_case(repository)),
        updated_at: v["updated_at"].as_str().and_then(|t| t.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pull_request_from_another_repository_is_a_fork() {
        let payload = |head_repo: serde_json::Value| {
            json!({
                "number": 7,
                "head": {"sha": "h", "ref": "feature", "repo": head_repo},
                "base": {"sha": "b", "ref": "main"},
                "user": {"login": "ann"},
                "updated_at": "2026-01-02T03:04:05Z",
            })
        };
        let ours = pull_request_of(&payload(json!({"full_name": "Acme/Repo"})), "acme/repo")
            .expect("a pull request");
        assert!(!ours.fork, "the same repository, whatever the case");
        assert_eq!((ours.number, ours.author.as_str()), (7, "ann"));
        assert_eq!(ours.head_branch.as_deref(), Some("feature"));
        assert_eq!(ours.base_branch.as_deref(), Some("main"));
        assert_eq!(
            ours.updated_at,
            Some("2026-01-02T03:04:05Z".parse().expect("time"))
        );
        let fork = pull_request_of(&payload(json!({"full_name": "eve/repo"})), "acme/repo")
            .expect("a pull request");
        assert!(fork.fork);
        // A deleted fork has no head repository.
        let gone = pull_request_of(&payload(json!(null)), "acme/repo").expect("a pull request");
        assert!(gone.fork);
        assert!(pull_request_of(&json!({"number": 7}), "acme/repo").is_none());
    }
}
