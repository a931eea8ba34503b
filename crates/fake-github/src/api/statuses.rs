//! Commit statuses: creating them, listing them, and the combined status.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::{Call, Reply, avatar_url, node_id, repo_json, repo_url, user_json};
use crate::model::{Model, Repo, Status};
use crate::time;

/// GitHub's limit on a status description, in characters.
const MAX_DESCRIPTION_CHARS: usize = 140;

const STATES: [&str; 4] = ["error", "failure", "pending", "success"];

const CREATE_DOCS: &str = "https://docs.github.com/rest/commits/statuses#create-a-commit-status";

pub(super) fn create(model: &mut Model, call: &Call, repo: &str, sha: &str) -> Reply {
    let Some(known) = model.repo(repo) else {
        return Reply::not_found();
    };
    let fields = match call.object().and_then(|object| fields(&object)) {
        Ok(fields) => fields,
        Err(reply) => return reply,
    };
    if !known.commits.contains(sha) {
        return Reply::message(422, &format!("No commit found for SHA: {sha}"), CREATE_DOCS);
    }
    let status = Status {
        id: 0,
        sha: sha.to_owned(),
        state: fields.state,
        context: fields.context.unwrap_or_else(|| "default".to_owned()),
        description: fields.description,
        target_url: fields.target_url,
        creator: call.actor().to_owned(),
        created_at: 0,
    };
    let Some(id) = model.create_status(repo, status) else {
        return Reply::not_found();
    };
    let Some(repo) = model.repo(repo) else {
        return Reply::not_found();
    };
    match repo.statuses.iter().find(|status| status.id == id) {
        Some(status) => Reply::json(201, status_json(model, repo, status, true)),
        None => Reply::not_found(),
    }
}

/// `GET .../commits/{sha}/statuses`: newest first.
pub(super) fn list(model: &Model, call: &Call, repo: &str, sha: &str) -> Reply {
    let Some(repo) = model.repo(repo).filter(|repo| repo.commits.contains(sha)) else {
        return Reply::not_found();
    };
    let statuses: Vec<Value> = repo
        .statuses_of(sha)
        .rev()
        .map(|status| status_json(model, repo, status, true))
        .collect();
    Reply::paged(call, &statuses)
}

/// `GET .../commits/{sha}/status`: the newest status of each context, newest
/// first, and their combined state.
pub(super) fn combined(model: &Model, repo: &str, sha: &str) -> Reply {
    let Some(repo) = model.repo(repo).filter(|repo| repo.commits.contains(sha)) else {
        return Reply::not_found();
    };
    let mut contexts = HashSet::new();
    let latest: Vec<&Status> = repo
        .statuses_of(sha)
        .rev()
        .filter(|status| contexts.insert(status.context.as_str()))
        .collect();
    let any = |state: &str| latest.iter().any(|status| status.state == state);
    let state = if any("error") || any("failure") {
        "failure"
    } else if latest.is_empty() || any("pending") {
        "pending"
    } else {
        "success"
    };
    let commit_url = format!("{}/commits/{sha}", repo_url(model, repo));
    Reply::json(
        200,
        json!({
            "state": state,
            "statuses": latest
                .iter()
                .map(|status| status_json(model, repo, status, false))
                .collect::<Vec<_>>(),
            "sha": sha,
            "total_count": latest.len(),
            "repository": repo_json(model, repo),
            "commit_url": commit_url,
            "url": format!("{commit_url}/status"),
        }),
    )
}

/// The fields of a create request, validated.
struct Fields {
    state: String,
    target_url: Option<String>,
    description: Option<String>,
    context: Option<String>,
}

fn fields(object: &Map<String, Value>) -> Result<Fields, Reply> {
    let optional = |name: &str| match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(Reply::invalid_request(
            &format!("For 'properties/{name}', {other} is not a string or null."),
            CREATE_DOCS,
        )),
    };
    let invalid = |field: &str, message: String| {
        Reply::validation_failed(
            json!({"resource": "Status", "code": "custom", "field": field, "message": message}),
            CREATE_DOCS,
        )
    };
    let state = match object.get("state") {
        None => {
            return Err(Reply::invalid_request(
                "\"state\" wasn't supplied.",
                CREATE_DOCS,
            ));
        }
        Some(Value::String(state)) if STATES.contains(&state.as_str()) => state.clone(),
        Some(_) => {
            return Err(invalid("state", "state is not included in the list".into()));
        }
    };
    let description = optional("description")?;
    if description
        .as_ref()
        .is_some_and(|text| text.chars().count() > MAX_DESCRIPTION_CHARS)
    {
        return Err(invalid(
            "description",
            format!("description is too long (maximum is {MAX_DESCRIPTION_CHARS} characters)"),
        ));
    }
    Ok(Fields {
        state,
        target_url: optional("target_url")?,
        description,
        context: optional("context")?,
    })
}

/// A status object; the combined status's entries carry no `creator`.
fn status_json(model: &Model, repo: &Repo, status: &Status, with_creator: bool) -> Value {
    let creator_id = model.user(&status.creator).map_or(0, |user| user.id);
    let created_at = time::format(status.created_at);
    let mut json = json!({
        "url": format!("{}/statuses/{}", repo_url(model, repo), status.sha),
        "avatar_url": avatar_url(model, creator_id),
        "id": status.id,
        "node_id": node_id("SC", status.id),
        "state": status.state,
        "description": status.description,
        "target_url": status.target_url,
        "context": status.context,
        "created_at": created_at,
        "updated_at": created_at,
    });
    if with_creator {
        json["creator"] = user_json(model, &status.creator);
    }
    json
}
