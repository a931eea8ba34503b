//! Who is who: the authenticated user, team memberships and repository
//! permissions.

use serde_json::json;

use super::{Call, Reply, user_json};
use crate::model::{Model, Role, Token, key};
use crate::uri;

const FORBIDDEN: &str = "Resource not accessible by integration";
const USER_DOCS: &str = "https://docs.github.com/rest/users/users#get-the-authenticated-user";
const TEAM_DOCS: &str = "https://docs.github.com/rest/teams/members#get-team-membership-for-a-user";

/// `GET /user`: installation tokens have no user to answer.
pub(super) fn authenticated(model: &Model, call: &Call) -> Reply {
    match &call.token {
        Token::Personal(login) => Reply::json(200, user_json(model, login)),
        Token::Installation(_) => Reply::message(403, FORBIDDEN, USER_DOCS),
    }
}

/// `GET /orgs/{org}/teams/{team_slug}/memberships/{username}`.
pub(super) fn team_membership(model: &Model, org: &str, team_slug: &str, login: &str) -> Reply {
    if model.org_hidden(org) {
        return Reply::message(403, FORBIDDEN, TEAM_DOCS);
    }
    let Some(team) = model.team(org, team_slug) else {
        return Reply::not_found();
    };
    let Some((login, state)) = team.members.get(&key(login)) else {
        return Reply::not_found();
    };
    Reply::json(
        200,
        json!({
            "url": format!("{}/teams/{}/memberships/{}", model.urls.api, team.id, uri::encode(login)),
            "role": "member",
            "state": state,
        }),
    )
}

/// `GET /repos/{owner}/{repo}/collaborators/{username}/permission`.
pub(super) fn permission(model: &Model, repo: &str, login: &str) -> Reply {
    let Some(repo) = model.repo(repo) else {
        return Reply::not_found();
    };
    let Some(role) = model.role(repo, login) else {
        return Reply::not_found();
    };
    let at_least = |floor: Role| rank(role) >= rank(floor);
    let mut user = user_json(model, login);
    user["permissions"] = json!({
        "admin": at_least(Role::Admin),
        "maintain": at_least(Role::Maintain),
        "push": at_least(Role::Write),
        "triage": at_least(Role::Triage),
        "pull": at_least(Role::Read),
    });
    user["role_name"] = json!(role.name());
    Reply::json(
        200,
        json!({
            "permission": role.legacy(),
            "role_name": role.name(),
            "user": user,
        }),
    )
}

fn rank(role: Role) -> u8 {
    match role {
        Role::None => 0,
        Role::Read => 1,
        Role::Triage => 2,
        Role::Write => 3,
        Role::Maintain => 4,
        Role::Admin => 5,
    }
}
