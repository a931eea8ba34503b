//! Issue comments, labels and events of pull requests (GitHub serves them
//! under `/issues/`, pull requests being issues).

use serde_json::{Value, json};

use super::{Call, Reply, labels_json, node_id, repo_url, user_json};
use crate::model::{Comment, Model, Pull, Repo};
use crate::time;

/// GitHub's limit on a comment body, in characters.
const MAX_BODY_CHARS: usize = 65_536;

const CREATE_DOCS: &str = "https://docs.github.com/rest/issues/comments#create-an-issue-comment";
const UPDATE_DOCS: &str = "https://docs.github.com/rest/issues/comments#update-an-issue-comment";

pub(super) fn list_comments(model: &Model, call: &Call, repo: &str, number: u64) -> Reply {
    let Some((repo, _)) = pull(model, repo, number) else {
        return Reply::not_found();
    };
    let comments: Vec<Value> = repo
        .comments
        .iter()
        .filter(|comment| comment.number == number)
        .map(|comment| comment_json(model, repo, comment))
        .collect();
    Reply::paged(call, &comments)
}

pub(super) fn get_comment(model: &Model, repo: &str, id: u64) -> Reply {
    comment_reply(model, repo, id, 200)
}

pub(super) fn create_comment(model: &mut Model, call: &Call, repo: &str, number: u64) -> Reply {
    if pull(model, repo, number).is_none() {
        return Reply::not_found();
    }
    let body = match comment_body(call, CREATE_DOCS) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    match model.create_comment(repo, number, call.actor(), &body) {
        Some(id) => comment_reply(model, repo, id, 201),
        None => Reply::not_found(),
    }
}

pub(super) fn update_comment(model: &mut Model, call: &Call, repo: &str, id: u64) -> Reply {
    if model.repo(repo).and_then(|r| r.comment(id)).is_none() {
        return Reply::not_found();
    }
    let body = match comment_body(call, UPDATE_DOCS) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    if !model.update_comment(repo, id, &body) {
        return Reply::not_found();
    }
    comment_reply(model, repo, id, 200)
}

pub(super) fn delete_comment(model: &mut Model, repo: &str, id: u64) -> Reply {
    if model.delete_comment(repo, id) {
        Reply::no_content()
    } else {
        Reply::not_found()
    }
}

pub(super) fn labels(model: &Model, call: &Call, repo: &str, number: u64) -> Reply {
    let Some((repo, pull)) = pull(model, repo, number) else {
        return Reply::not_found();
    };
    Reply::paged(call, &labels_json(model, repo, &pull.labels))
}

pub(super) fn events(model: &Model, call: &Call, repo: &str, number: u64) -> Reply {
    let Some((repo, pull)) = pull(model, repo, number) else {
        return Reply::not_found();
    };
    let color = |name: &str| repo.label(name).map(|label| label.color.clone());
    let events: Vec<Value> = pull
        .events
        .iter()
        .map(|event| {
            let (kind, prefix) = if event.labeled {
                ("labeled", "LE")
            } else {
                ("unlabeled", "UNLE")
            };
            json!({
                "id": event.id,
                "node_id": node_id(prefix, event.id),
                "url": format!("{}/issues/events/{}", repo_url(model, repo), event.id),
                "actor": user_json(model, &event.actor),
                "event": kind,
                "commit_id": null,
                "commit_url": null,
                "created_at": time::format(event.created_at),
                "label": {"name": event.label, "color": color(&event.label)},
                "performed_via_github_app": null,
            })
        })
        .collect();
    Reply::paged(call, &events)
}

/// The repository and its pull request `number`.
fn pull<'a>(model: &'a Model, repo: &str, number: u64) -> Option<(&'a Repo, &'a Pull)> {
    let repo = model.repo(repo)?;
    Some((repo, repo.pulls.get(&number)?))
}

/// The `body` of a create or update request, validated as GitHub does.
fn comment_body(call: &Call, docs: &str) -> Result<String, Reply> {
    let object = call.object()?;
    let Some(Value::String(body)) = object.get("body") else {
        return Err(Reply::invalid_request("\"body\" wasn't supplied.", docs));
    };
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(Reply::validation_failed(
            json!({
                "resource": "IssueComment",
                "code": "unprocessable",
                "field": "data",
                "message": format!("Body is too long (maximum is {MAX_BODY_CHARS} characters)"),
            }),
            docs,
        ));
    }
    Ok(body.clone())
}

fn comment_reply(model: &Model, repo: &str, id: u64, status: u16) -> Reply {
    let Some(repo) = model.repo(repo) else {
        return Reply::not_found();
    };
    match repo.comment(id) {
        Some(comment) => Reply::json(status, comment_json(model, repo, comment)),
        None => Reply::not_found(),
    }
}

fn comment_json(model: &Model, repo: &Repo, comment: &Comment) -> Value {
    let repo_url = repo_url(model, repo);
    json!({
        "url": format!("{repo_url}/issues/comments/{}", comment.id),
        "html_url": format!(
            "{}/{}/pull/{}#issuecomment-{}",
            model.urls.web,
            repo.full_name(),
            comment.number,
            comment.id
        ),
        "issue_url": format!("{repo_url}/issues/{}", comment.number),
        "id": comment.id,
        "node_id": node_id("IC", comment.id),
        "user": user_json(model, &comment.author),
        "created_at": time::format(comment.created_at),
        "updated_at": time::format(comment.updated_at),
        "author_association": model.association(repo, &comment.author),
        "body": comment.body,
        "performed_via_github_app": null,
    })
}
