//! `GET /repos/{owner}/{repo}/pulls/{number}`.

use serde_json::{Value, json};

use super::{Reply, labels_json, node_id, repo_json, repo_url, repository, user_json};
use crate::model::{Model, Pull, Repo};
use crate::time;

pub(super) fn get(model: &Model, repo: &str, number: u64) -> Reply {
    let Some(repo) = model.repo(repo) else {
        return Reply::not_found();
    };
    let Some(pull) = repo.pulls.get(&number) else {
        return Reply::not_found();
    };
    Reply::json(200, pull_json(model, repo, pull))
}

fn pull_json(model: &Model, repo: &Repo, pull: &Pull) -> Value {
    let repo_url = repo_url(model, repo);
    let base_repo = repo_json(model, repo);
    let (head_owner, head_repo) = if pull.fork {
        let full_name = format!("{}/{}", pull.author, repo.name);
        let owner = user_json(model, &pull.author);
        let fork = repository(
            model,
            pull.fork_repo_id,
            &full_name,
            &repo.name,
            owner.clone(),
            true,
        );
        (owner, fork)
    } else {
        (base_repo["owner"].clone(), base_repo.clone())
    };
    let branch = |sha: &str, branch: &str, owner: &Value, repo: &Value| {
        json!({
            "label": format!("{}:{branch}", owner["login"].as_str().unwrap_or_default()),
            "ref": branch,
            "sha": sha,
            "user": owner,
            "repo": repo,
        })
    };
    json!({
        "url": format!("{repo_url}/pulls/{}", pull.number),
        "id": pull.id,
        "node_id": node_id("PR", pull.id),
        "html_url": format!("{}/{}/pull/{}", model.urls.web, repo.full_name(), pull.number),
        "issue_url": format!("{repo_url}/issues/{}", pull.number),
        "comments_url": format!("{repo_url}/issues/{}/comments", pull.number),
        "statuses_url": format!("{repo_url}/statuses/{}", pull.head_sha),
        "number": pull.number,
        "state": "open",
        "locked": false,
        "title": format!("Pull request #{}", pull.number),
        "user": user_json(model, &pull.author),
        "body": null,
        "labels": labels_json(model, repo, &pull.labels),
        "draft": pull.draft,
        "created_at": time::format(pull.created_at),
        "updated_at": time::format(pull.updated_at),
        "closed_at": null,
        "merged_at": null,
        "merge_commit_sha": null,
        "author_association": model.association(repo, &pull.author),
        "head": branch(&pull.head_sha, &pull.head_ref, &head_owner, &head_repo),
        "base": branch(&pull.base_sha, &pull.base_ref, &base_repo["owner"], &base_repo),
    })
}
