//! Routing requests to handlers, and what the handlers share: authentication,
//! error bodies, pagination and the JSON shapes of users, repositories and
//! labels.

mod issues;
mod people;
mod pulls;
mod statuses;

use serde_json::{Map, Value, json};

use crate::model::{Kind, Label, Model, Repo, Token};
use crate::paging::Page;
use crate::uri;

pub(crate) const DOCS: &str = "https://docs.github.com/rest";

/// A request, as the routes see it.
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    /// The path as received: prefix and percent-encoding included.
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) authorization: Option<&'a str>,
    pub(crate) body: &'a [u8],
}

/// A response before the server adds its common headers.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// `None` for an empty body (204).
    pub(crate) body: Option<Value>,
    /// The `Link` header of a paginated list.
    pub(crate) link: Option<String>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            link: None,
        }
    }

    fn no_content() -> Reply {
        Reply {
            status: 204,
            body: None,
            link: None,
        }
    }

    /// GitHub's plain error body.
    pub(crate) fn message(status: u16, message: &str, documentation_url: &str) -> Reply {
        Reply::json(
            status,
            json!({"message": message, "documentation_url": documentation_url}),
        )
    }

    fn not_found() -> Reply {
        Reply::message(404, "Not Found", DOCS)
    }

    /// 422 `Validation Failed` with one error.
    pub(crate) fn validation_failed(error: Value, documentation_url: &str) -> Reply {
        Reply::json(
            422,
            json!({
                "message": "Validation Failed",
                "errors": [error],
                "documentation_url": documentation_url,
            }),
        )
    }

    /// 422 for a body that does not fit the endpoint's schema.
    fn invalid_request(detail: &str, documentation_url: &str) -> Reply {
        Reply::message(
            422,
            &format!("Invalid request.\n\n{detail}"),
            documentation_url,
        )
    }

    /// 200 with the asked-for page of `items` and its `Link` header.
    fn paged(call: &Call, items: &[Value]) -> Reply {
        let page = Page::from_query(&call.query);
        Reply {
            status: 200,
            body: Some(Value::Array(page.slice(items).to_vec())),
            link: page.link(&call.url, call.request.query, items.len()),
        }
    }
}

/// What a handler knows of the request besides its route.
struct Call<'a> {
    request: &'a Request<'a>,
    token: Token,
    /// The decoded query parameters.
    query: Vec<(String, String)>,
    /// The request's absolute URL without its query, for `Link` headers.
    url: String,
}

impl Call<'_> {
    /// The login the token acts as.
    fn actor(&self) -> &str {
        self.token.login()
    }

    /// The body as a JSON object; 400 when it is not one.
    fn object(&self) -> Result<Map<String, Value>, Reply> {
        match serde_json::from_slice(self.request.body) {
            Ok(Value::Object(object)) => Ok(object),
            _ => Err(Reply::message(400, "Problems parsing JSON", DOCS)),
        }
    }
}

/// Answers `request`; the API lives under `prefix` (empty, or like
/// `/api/v3`).
pub(crate) fn route(model: &mut Model, prefix: &str, request: &Request) -> Reply {
    let Some(rest) = request
        .path
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return Reply::not_found();
    };
    let Some(token) = authenticate(model, request.authorization) else {
        return Reply::message(401, "Bad credentials", DOCS);
    };
    let call = Call {
        request,
        token,
        query: uri::query_pairs(request.query.unwrap_or_default()),
        url: format!("{}{}", model.urls.web, request.path),
    };
    let segments: Vec<String> = rest.split('/').map(uri::decode).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let repo = |owner: &str, name: &str| format!("{owner}/{name}");
    match (request.method, segments.as_slice()) {
        ("GET", ["user"]) => people::authenticated(model, &call),
        ("GET", ["orgs", org, "teams", team, "memberships", login]) => {
            people::team_membership(model, org, team, login)
        }
        ("GET", ["repos", owner, name, "collaborators", login, "permission"]) => {
            people::permission(model, &repo(owner, name), login)
        }
        ("GET", ["repos", owner, name, "pulls", number]) => {
            with_number(number, |n| pulls::get(model, &repo(owner, name), n))
        }
        ("GET", ["repos", owner, name, "issues", number, "comments"]) => with_number(number, |n| {
            issues::list_comments(model, &call, &repo(owner, name), n)
        }),
        ("POST", ["repos", owner, name, "issues", number, "comments"]) => {
            with_number(number, |n| {
                issues::create_comment(model, &call, &repo(owner, name), n)
            })
        }
        ("GET", ["repos", owner, name, "issues", "comments", id]) => {
            with_number(id, |id| issues::get_comment(model, &repo(owner, name), id))
        }
        ("PATCH", ["repos", owner, name, "issues", "comments", id]) => with_number(id, |id| {
            issues::update_comment(model, &call, &repo(owner, name), id)
        }),
        ("DELETE", ["repos", owner, name, "issues", "comments", id]) => with_number(id, |id| {
            issues::delete_comment(model, &repo(owner, name), id)
        }),
        ("GET", ["repos", owner, name, "issues", number, "labels"]) => with_number(number, |n| {
            issues::labels(model, &call, &repo(owner, name), n)
        }),
        ("GET", ["repos", owner, name, "issues", number, "events"]) => with_number(number, |n| {
            issues::events(model, &call, &repo(owner, name), n)
        }),
        ("POST", ["repos", owner, name, "statuses", sha]) => {
            statuses::create(model, &call, &repo(owner, name), sha)
        }
        ("GET", ["repos", owner, name, "commits", sha, "statuses"]) => {
            statuses::list(model, &call, &repo(owner, name), sha)
        }
        ("GET", ["repos", owner, name, "commits", sha, "status"]) => {
            statuses::combined(model, &repo(owner, name), sha)
        }
        _ => Reply::not_found(),
    }
}

/// The token of an `Authorization: Bearer T` or `token T` header, if known.
fn authenticate(model: &Model, authorization: Option<&str>) -> Option<Token> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("token") {
        return None;
    }
    model.token(token.trim()).cloned()
}

/// Runs `handler` on a path segment that must be a number; 404 otherwise.
fn with_number(segment: &str, handler: impl FnOnce(u64) -> Reply) -> Reply {
    match segment.parse() {
        Ok(number) => handler(number),
        Err(_) => Reply::not_found(),
    }
}

/// A user object, as embedded in comments, statuses, events and pulls.
fn user_json(model: &Model, login: &str) -> Value {
    let (id, login, kind) = match model.user(login) {
        Some(user) => (user.id, user.login.as_str(), user.kind),
        None => (0, login, Kind::User),
    };
    let urls = &model.urls;
    let (node_prefix, kind_name) = match kind {
        Kind::User => ("U", "User"),
        Kind::Bot => ("BOT", "Bot"),
    };
    let html_url = match login.strip_suffix("[bot]") {
        Some(app) if kind == Kind::Bot => format!("{}/apps/{app}", urls.web),
        _ => format!("{}/{login}", urls.web),
    };
    json!({
        "login": login,
        "id": id,
        "node_id": node_id(node_prefix, id),
        "avatar_url": avatar_url(model, id),
        "gravatar_id": "",
        "url": format!("{}/users/{}", urls.api, uri::encode(login)),
        "html_url": html_url,
        "type": kind_name,
        "site_admin": false,
    })
}

fn avatar_url(model: &Model, user_id: u64) -> String {
    format!("{}/avatars/u/{user_id}?v=4", model.urls.web)
}

/// An opaque GraphQL node id in GitHub's style (`IC_…` for an issue
/// comment).
fn node_id(prefix: &str, id: u64) -> String {
    format!("{prefix}_kwDOfake{id}")
}

/// The API URL of a repository.
fn repo_url(model: &Model, repo: &Repo) -> String {
    format!("{}/repos/{}", model.urls.api, repo.full_name())
}

/// A repository object (the base repository of a pull request, say).
fn repo_json(model: &Model, repo: &Repo) -> Value {
    let owner = match model.user(&repo.owner) {
        Some(_) => user_json(model, &repo.owner),
        None => org_json(model, &repo.owner, repo.owner_id),
    };
    repository(model, repo.id, &repo.full_name(), &repo.name, owner, false)
}

fn repository(
    model: &Model,
    id: u64,
    full_name: &str,
    name: &str,
    owner: Value,
    fork: bool,
) -> Value {
    json!({
        "id": id,
        "node_id": node_id("R", id),
        "name": name,
        "full_name": full_name,
        "private": false,
        "owner": owner,
        "html_url": format!("{}/{full_name}", model.urls.web),
        "url": format!("{}/repos/{full_name}", model.urls.api),
        "fork": fork,
    })
}

/// An organization as a repository owner.
fn org_json(model: &Model, login: &str, id: u64) -> Value {
    json!({
        "login": login,
        "id": id,
        "node_id": node_id("O", id),
        "avatar_url": avatar_url(model, id),
        "gravatar_id": "",
        "url": format!("{}/users/{}", model.urls.api, uri::encode(login)),
        "html_url": format!("{}/{login}", model.urls.web),
        "type": "Organization",
        "site_admin": false,
    })
}

/// A label object, as the labels list and pull requests carry it.
fn label_json(model: &Model, repo: &Repo, label: &Label) -> Value {
    json!({
        "id": label.id,
        "node_id": node_id("LA", label.id),
        "url": format!("{}/labels/{}", repo_url(model, repo), uri::encode(&label.name)),
        "name": label.name,
        "color": label.color,
        "default": false,
        "description": null,
    })
}

/// The label objects of the labels named `names`.
fn labels_json(model: &Model, repo: &Repo, names: &[String]) -> Vec<Value> {
    names
        .iter()
        .filter_map(|name| repo.label(name))
        .map(|label| label_json(model, repo, label))
        .collect()
}
