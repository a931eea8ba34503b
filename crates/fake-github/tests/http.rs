//! The fake over real HTTP, driven by reqwest as a GitHub client would.

use std::time::Duration;

use promptgate_fake_github::{CommentSnapshot, FakeGitHub, Fault, PrSpec, StatusSnapshot};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const REPO: &str = "acme/widgets";
const BOT: &str = "github-actions[bot]";
/// An installation token acting as [`BOT`].
const INSTALL: &str = "ghs_installation";
/// A personal token acting as `alice`.
const ALICE: &str = "ghp_alice";
const HEAD: &str = "1111111111111111111111111111111111111111";
const BASE: &str = "2222222222222222222222222222222222222222";

/// GitHub's 404 body.
fn not_found() -> Value {
    json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
}

/// A fake with [`REPO`], its pull request #7 by `mallory` from a branch of
/// the repository, and the two tokens.
fn world(fake: FakeGitHub) -> FakeGitHub {
    fake.add_bot(BOT);
    fake.add_installation_token(INSTALL, BOT);
    fake.add_user("alice");
    fake.add_token(ALICE, "alice");
    fake.add_repo(REPO);
    fake.open_pr(REPO, pr(7, false));
    fake
}

fn pr(number: u64, fork: bool) -> PrSpec {
    PrSpec {
        number,
        author: "mallory".into(),
        head_sha: HEAD.into(),
        head_ref: "prompt-tweak".into(),
        base_sha: BASE.into(),
        base_ref: "main".into(),
        fork,
        draft: false,
    }
}

/// A response, its body parsed (`Null` when empty).
struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
    json: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

async fn call(method: Method, url: &str, token: Option<&str>, body: Option<Value>) -> Answer {
    let mut request = client().request(method, url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("a response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

async fn get(fake: &FakeGitHub, path: &str, token: &str) -> Answer {
    call(
        Method::GET,
        &format!("{}{path}", fake.url()),
        Some(token),
        None,
    )
    .await
}

async fn post(fake: &FakeGitHub, path: &str, token: &str, body: Value) -> Answer {
    let url = format!("{}{path}", fake.url());
    call(Method::POST, &url, Some(token), Some(body)).await
}

/// A plain reqwest client. In a workspace build reqwest comes with rustls but no crypto
/// provider (the root crate installs its own), so install one first.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

#[tokio::test]
async fn comments_paginate_with_absolute_links_under_the_prefix() {
    let fake = world(FakeGitHub::start_with_prefix("/api/v3"));
    let ids: Vec<u64> = (0..250)
        .map(|n| fake.add_comment(REPO, 7, "bob", &format!("comment {n}")))
        .collect();
    let base = format!("{}/repos/{REPO}/issues/7/comments", fake.url());
    assert!(base.contains("/api/v3/repos/"), "{base}");
    let page = |n: u32| format!("<{base}?per_page=100&page={n}>");

    let first = get(
        &fake,
        "/repos/acme/widgets/issues/7/comments?per_page=100",
        ALICE,
    )
    .await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("link"),
        Some(format!("{}; rel=\"next\", {}; rel=\"last\"", page(2), page(3)).as_str())
    );

    // Follow the `next` links as a client would.
    let next = |answer: &Answer| {
        let link = answer.header("link").unwrap_or_default().to_owned();
        link.split(", ")
            .find(|part| part.ends_with("rel=\"next\""))
            .map(|part| part[1..part.find('>').expect("a URL")].to_owned())
    };
    let second_url = next(&first).expect("a next page");
    let second = call(Method::GET, &second_url, Some(ALICE), None).await;
    assert_eq!(
        second.header("link"),
        Some(
            format!(
                "{}; rel=\"prev\", {}; rel=\"next\", {}; rel=\"last\", {}; rel=\"first\"",
                page(1),
                page(3),
                page(3),
                page(1)
            )
            .as_str()
        )
    );
    let third = call(
        Method::GET,
        &next(&second).expect("a third page"),
        Some(ALICE),
        None,
    )
    .await;
    assert_eq!(
        third.header("link"),
        Some(format!("{}; rel=\"prev\", {}; rel=\"first\"", page(2), page(1)).as_str())
    );
    assert_eq!(next(&third), None);

    let bodies: Vec<&Value> = [&first, &second, &third]
        .iter()
        .flat_map(|answer| answer.json.as_array().expect("an array"))
        .collect();
    assert_eq!(
        [&first, &second, &third].map(|a| a.json.as_array().map_or(0, Vec::len)),
        [100, 100, 50]
    );
    let seen: Vec<u64> = bodies.iter().filter_map(|c| c["id"].as_u64()).collect();
    assert_eq!(seen, ids);
    assert_eq!(bodies[249]["body"], "comment 249");

    // The default page size is 30; everything on one page means no Link.
    let default = get(&fake, "/repos/acme/widgets/issues/7/comments", ALICE).await;
    assert_eq!(default.json.as_array().map(Vec::len), Some(30));
    assert!(
        default
            .header("link")
            .is_some_and(|link| link.ends_with(&format!("<{base}?page=9>; rel=\"last\"")))
    );
    let labels = get(&fake, "/repos/acme/widgets/issues/7/labels", ALICE).await;
    assert_eq!(labels.json, json!([]));
    assert_eq!(labels.header("link"), None);
}

#[tokio::test]
async fn comment_round_trip_acts_as_the_token() {
    let fake = world(FakeGitHub::start());
    fake.set_now("2026-01-06T15:00:00Z");
    let path = "/repos/acme/widgets/issues/7/comments";

    let created = post(&fake, path, INSTALL, json!({"body": "first"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let comment = &created.json;
    let id = comment["id"].as_u64().expect("an id");
    assert_eq!(comment["body"], "first");
    assert_eq!(comment["user"]["login"], BOT);
    assert_eq!(comment["user"]["type"], "Bot");
    assert_eq!(
        comment["user"]["html_url"],
        format!("{}/apps/github-actions", fake.url())
    );
    assert_eq!(
        comment["user"]["url"],
        format!("{}/users/github-actions%5Bbot%5D", fake.url())
    );
    assert_eq!(comment["author_association"], "NONE");
    assert_eq!(comment["created_at"], "2026-01-06T15:00:00Z");
    assert_eq!(
        comment["url"],
        format!("{}/repos/acme/widgets/issues/comments/{id}", fake.url())
    );
    assert_eq!(
        comment["html_url"],
        format!("{}/acme/widgets/pull/7#issuecomment-{id}", fake.url())
    );
    for field in ["node_id", "issue_url", "updated_at"] {
        assert!(comment[field].is_string(), "{field}");
    }

    let by_alice = post(&fake, path, ALICE, json!({"body": "second"})).await;
    assert_eq!(by_alice.json["user"]["login"], "alice");
    assert_eq!(by_alice.json["user"]["type"], "User");

    let comment_path = format!("/repos/acme/widgets/issues/comments/{id}");
    let url = format!("{}{comment_path}", fake.url());
    let edited = call(
        Method::PATCH,
        &url,
        Some(INSTALL),
        Some(json!({"body": "edited"})),
    )
    .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.json["body"], "edited");
    assert_eq!(edited.json["created_at"], "2026-01-06T15:00:00Z");
    assert_eq!(edited.json["updated_at"], "2026-01-06T15:00:02Z");
    assert_eq!(
        get(&fake, &comment_path, ALICE).await.json["body"],
        "edited"
    );

    let listed = get(&fake, path, ALICE).await;
    let bodies: Vec<&str> = listed
        .json
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|c| c["body"].as_str())
        .collect();
    assert_eq!(bodies, ["edited", "second"]);
    assert_eq!(
        fake.comments(REPO, 7)[0],
        CommentSnapshot {
            id,
            author: BOT.into(),
            body: "edited".into(),
            created_at: "2026-01-06T15:00:00Z".into(),
            updated_at: "2026-01-06T15:00:02Z".into(),
        }
    );

    let deleted = call(Method::DELETE, &url, Some(INSTALL), None).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.text, "");
    assert_eq!(fake.comments(REPO, 7).len(), 1);
    let gone = call(
        Method::PATCH,
        &url,
        Some(INSTALL),
        Some(json!({"body": "x"})),
    )
    .await;
    assert_eq!((gone.status, &gone.json), (404, &not_found()));

    let no_pull = post(
        &fake,
        "/repos/acme/widgets/issues/8/comments",
        ALICE,
        json!({"body": "x"}),
    );
    assert_eq!(no_pull.await.status, 404);
    let no_body = post(&fake, path, ALICE, json!({"text": "x"})).await;
    assert_eq!(no_body.status, 422);
}

#[tokio::test]
async fn comment_bodies_over_65536_characters_are_refused() {
    let fake = world(FakeGitHub::start());
    let path = "/repos/acme/widgets/issues/7/comments";
    // Characters count, not bytes: 65,536 two-byte characters fit.
    let fits = post(&fake, path, INSTALL, json!({"body": "é".repeat(65_536)})).await;
    assert_eq!(fits.status, 201);

    let too_long = post(&fake, path, INSTALL, json!({"body": "x".repeat(65_537)})).await;
    assert_eq!(too_long.status, 422);
    assert_eq!(
        too_long.json,
        json!({
            "message": "Validation Failed",
            "errors": [{
                "resource": "IssueComment",
                "code": "unprocessable",
                "field": "data",
                "message": "Body is too long (maximum is 65536 characters)",
            }],
            "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
        })
    );
    let id = fits.json["id"].as_u64().expect("an id");
    let url = format!("{}/repos/acme/widgets/issues/comments/{id}", fake.url());
    let edit = json!({"body": "x".repeat(65_537)});
    let edited = call(Method::PATCH, &url, Some(INSTALL), Some(edit)).await;
    assert_eq!(edited.status, 422);
    assert_eq!(fake.comments(REPO, 7).len(), 1);
}

#[tokio::test]
async fn requests_need_a_known_token() {
    let fake = world(FakeGitHub::start());
    let url = format!("{}/repos/acme/widgets/pulls/7", fake.url());
    let bad =
        json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"});

    let without = call(Method::GET, &url, None, None).await;
    assert_eq!((without.status, &without.json), (401, &bad));
    let unknown = call(Method::GET, &url, Some("ghp_nobody"), None).await;
    assert_eq!((unknown.status, &unknown.json), (401, &bad));
    // Unknown routes check credentials first, as GitHub does.
    let nowhere = format!("{}/nowhere", fake.url());
    assert_eq!(call(Method::GET, &nowhere, None, None).await.status, 401);

    let legacy_scheme = client()
        .get(&url)
        .header("authorization", format!("token {ALICE}"))
        .send()
        .await
        .expect("a response");
    assert_eq!(legacy_scheme.status().as_u16(), 200);
    assert_eq!(
        get(&fake, "/repos/acme/widgets/pulls/7", INSTALL)
            .await
            .status,
        200
    );

    let logged: Vec<(u16, Option<String>)> = fake
        .requests()
        .into_iter()
        .map(|r| (r.status, r.authorization))
        .collect();
    assert_eq!(
        logged,
        [
            (401, None),
            (401, Some("Bearer ghp_nobody".into())),
            (401, None),
            (200, Some(format!("token {ALICE}"))),
            (200, Some(format!("Bearer {INSTALL}"))),
        ]
    );
}

#[tokio::test]
async fn get_user_answers_personal_tokens_only() {
    let fake = world(FakeGitHub::start());
    let personal = get(&fake, "/user", ALICE).await;
    assert_eq!(personal.status, 200);
    assert_eq!(personal.json["login"], "alice");
    assert_eq!(personal.json["type"], "User");
    assert_eq!(personal.json["gravatar_id"], "");
    assert_eq!(personal.json["site_admin"], false);
    assert!(personal.json["id"].is_u64() && personal.json["avatar_url"].is_string());

    let installation = get(&fake, "/user", INSTALL).await;
    assert_eq!(installation.status, 403);
    assert_eq!(
        installation.json["message"],
        "Resource not accessible by integration"
    );
}

#[tokio::test]
async fn labels_and_their_events_follow_label_and_unlabel() {
    let fake = world(FakeGitHub::start());
    fake.label(REPO, 7, "prompt-approved", "alice", "2026-01-06T10:00:00Z");
    fake.label(REPO, 7, "needs-eval", "bob", "2026-01-06T10:05:00Z");
    // Already on: no event, as on GitHub.
    fake.label(REPO, 7, "prompt-approved", "bob", "2026-01-06T10:06:00Z");
    fake.unlabel(REPO, 7, "prompt-approved", "carol", "2026-01-06T10:10:00Z");
    fake.label(
        REPO,
        7,
        "Prompt-Approved",
        "mallory",
        "2026-01-06T10:20:00Z",
    );
    assert_eq!(fake.labels(REPO, 7), ["needs-eval", "prompt-approved"]);

    let events = get(&fake, "/repos/acme/widgets/issues/7/events", ALICE).await;
    assert_eq!(events.status, 200);
    let events = events.json.as_array().expect("an array").clone();
    let summary: Vec<(String, String, String, String)> = events
        .iter()
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (
                text(&e["event"]),
                text(&e["actor"]["login"]),
                text(&e["label"]["name"]),
                text(&e["created_at"]),
            )
        })
        .collect();
    let row = |event: &str, actor: &str, label: &str, at: &str| {
        (event.into(), actor.into(), label.into(), at.into())
    };
    assert_eq!(
        summary,
        [
            row(
                "labeled",
                "alice",
                "prompt-approved",
                "2026-01-06T10:00:00Z"
            ),
            row("labeled", "bob", "needs-eval", "2026-01-06T10:05:00Z"),
            row(
                "unlabeled",
                "carol",
                "prompt-approved",
                "2026-01-06T10:10:00Z"
            ),
            // The repository's label keeps its name whatever case is used.
            row(
                "labeled",
                "mallory",
                "prompt-approved",
                "2026-01-06T10:20:00Z"
            ),
        ]
    );
    let first = &events[0];
    assert_eq!(first["commit_id"], Value::Null);
    assert_eq!(first["commit_url"], Value::Null);
    assert_eq!(first["performed_via_github_app"], Value::Null);
    assert_eq!(first["label"]["color"], "ededed");
    assert_eq!(first["actor"]["type"], "User");
    assert!(first["id"].is_u64() && first["node_id"].is_string() && first["url"].is_string());

    let labels = get(&fake, "/repos/acme/widgets/issues/7/labels", ALICE).await;
    let names: Vec<&str> = labels
        .json
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(names, ["needs-eval", "prompt-approved"]);
    let pull = get(&fake, "/repos/acme/widgets/pulls/7", ALICE).await;
    assert_eq!(pull.json["labels"], labels.json);
    assert_eq!(pull.json["updated_at"], "2026-01-06T12:00:00Z");
}

#[tokio::test]
async fn statuses_validate_and_combine_newest_per_context() {
    let fake = world(FakeGitHub::start());
    let path = format!("/repos/acme/widgets/statuses/{HEAD}");
    let docs = "https://docs.github.com/rest/commits/statuses#create-a-commit-status";

    let bad_state = post(&fake, &path, INSTALL, json!({"state": "passed"})).await;
    assert_eq!(bad_state.status, 422);
    assert_eq!(
        bad_state.json,
        json!({
            "message": "Validation Failed",
            "errors": [{
                "resource": "Status",
                "code": "custom",
                "field": "state",
                "message": "state is not included in the list",
            }],
            "documentation_url": docs,
        })
    );
    let long = json!({"state": "success", "description": "d".repeat(141)});
    let too_long = post(&fake, &path, INSTALL, long).await;
    assert_eq!(too_long.status, 422);
    assert_eq!(too_long.json["errors"][0]["field"], "description");
    let elsewhere = format!("/repos/acme/widgets/statuses/{}", "9".repeat(40));
    let unknown_sha = post(&fake, &elsewhere, INSTALL, json!({"state": "success"})).await;
    assert_eq!(unknown_sha.status, 422);
    assert!(fake.statuses(REPO, HEAD).is_empty());

    let post_status = |state: &str, context: Option<&str>, description: String| {
        let mut body = json!({"state": state, "description": description});
        if let Some(context) = context {
            body["context"] = json!(context);
            body["target_url"] = json!(format!("https://ci.example/{context}"));
        }
        post(&fake, &path, INSTALL, body)
    };
    let created = post_status("pending", Some("promptgate"), "d".repeat(140)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["creator"]["login"], BOT);
    assert_eq!(created.json["context"], "promptgate");
    assert_eq!(created.json["description"], "d".repeat(140));
    for field in ["url", "avatar_url", "node_id", "created_at", "updated_at"] {
        assert!(created.json[field].is_string(), "{field}");
    }
    post_status("failure", Some("lint"), "lint broke".into()).await;
    post_status("success", Some("promptgate"), "gate passed".into()).await;
    let defaulted = post_status("success", None, "no context".into()).await;
    assert_eq!(defaulted.json["context"], "default");
    assert_eq!(defaulted.json["target_url"], Value::Null);

    let combined = get(
        &fake,
        &format!("/repos/acme/widgets/commits/{HEAD}/status"),
        ALICE,
    )
    .await;
    assert_eq!(combined.status, 200);
    assert_eq!(combined.json["state"], "failure");
    assert_eq!(combined.json["sha"], HEAD);
    assert_eq!(combined.json["total_count"], 3);
    let latest: Vec<(&str, &str)> = combined.json["statuses"]
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|s| Some((s["context"].as_str()?, s["state"].as_str()?)))
        .collect();
    assert_eq!(
        latest,
        [
            ("default", "success"),
            ("promptgate", "success"),
            ("lint", "failure")
        ]
    );

    let listed = get(
        &fake,
        &format!("/repos/acme/widgets/commits/{HEAD}/statuses"),
        ALICE,
    )
    .await;
    let states: Vec<&str> = listed
        .json
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|s| s["state"].as_str())
        .collect();
    assert_eq!(states, ["success", "success", "failure", "pending"]);

    let snapshots = fake.statuses(REPO, HEAD);
    assert_eq!(snapshots.len(), 4);
    assert_eq!(
        snapshots[2],
        StatusSnapshot {
            state: "success".into(),
            context: "promptgate".into(),
            description: Some("gate passed".into()),
            target_url: Some("https://ci.example/promptgate".into()),
            creator: BOT.into(),
        }
    );

    let base = get(
        &fake,
        &format!("/repos/acme/widgets/commits/{BASE}/status"),
        ALICE,
    )
    .await;
    assert_eq!(
        (&base.json["state"], &base.json["total_count"]),
        (&json!("pending"), &json!(0))
    );
}

#[tokio::test]
async fn team_memberships_active_pending_missing_and_hidden() {
    let fake = world(FakeGitHub::start());
    fake.add_team_member("acme", "prompt-owners", "alice", "active");
    fake.add_team_member("acme", "prompt-owners", "bob", "pending");
    fake.add_team_member("secretive", "owners", "alice", "active");
    fake.hide_org_members("secretive");

    let path = |org: &str, team: &str, login: &str| {
        format!("/orgs/{org}/teams/{team}/memberships/{login}")
    };
    let active = get(&fake, &path("acme", "prompt-owners", "alice"), INSTALL).await;
    assert_eq!(active.status, 200);
    assert_eq!(active.json["state"], "active");
    assert_eq!(active.json["role"], "member");
    assert!(
        active.json["url"]
            .as_str()
            .is_some_and(|url| url.starts_with(&format!("{}/teams/", fake.url())))
    );
    let pending = get(&fake, &path("acme", "prompt-owners", "bob"), INSTALL).await;
    assert_eq!(pending.json["state"], "pending");
    // Case-insensitive, as GitHub is.
    let shouting = get(&fake, &path("ACME", "Prompt-Owners", "Alice"), INSTALL).await;
    assert_eq!(shouting.status, 200);

    let stranger = get(&fake, &path("acme", "prompt-owners", "mallory"), INSTALL).await;
    assert_eq!((stranger.status, &stranger.json), (404, &not_found()));
    assert_eq!(
        get(&fake, &path("acme", "nobody", "alice"), INSTALL)
            .await
            .status,
        404
    );

    let hidden = get(&fake, &path("secretive", "owners", "alice"), INSTALL).await;
    assert_eq!(hidden.status, 403);
    assert_eq!(
        hidden.json["message"],
        "Resource not accessible by integration"
    );
}

#[tokio::test]
async fn collaborator_permissions_map_roles_to_legacy_values() {
    let fake = world(FakeGitHub::start());
    let roles = [
        ("admin", "admin"),
        ("maintain", "write"),
        ("write", "write"),
        ("triage", "read"),
        ("read", "read"),
        ("none", "none"),
    ];
    for (role, _) in roles {
        fake.set_permission(REPO, &format!("user-{role}"), role);
    }
    for (role, legacy) in roles {
        let answer = get(
            &fake,
            &format!("/repos/acme/widgets/collaborators/user-{role}/permission"),
            INSTALL,
        )
        .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json["permission"], legacy, "{role}");
        assert_eq!(answer.json["role_name"], role);
        assert_eq!(answer.json["user"]["login"], format!("user-{role}"));
        assert_eq!(answer.json["user"]["role_name"], role);
    }
    let maintain = get(
        &fake,
        "/repos/acme/widgets/collaborators/user-maintain/permission",
        INSTALL,
    )
    .await;
    assert_eq!(
        maintain.json["user"]["permissions"],
        json!({"admin": false, "maintain": true, "push": true, "triage": true, "pull": true})
    );

    // Logins arrive percent-encoded; a known login without a role has none.
    fake.set_permission(REPO, "dependabot[bot]", "write");
    let bot = get(
        &fake,
        "/repos/acme/widgets/collaborators/dependabot%5Bbot%5D/permission",
        INSTALL,
    )
    .await;
    assert_eq!(bot.json["permission"], "write");
    assert_eq!(bot.json["user"]["type"], "Bot");
    let roleless = get(
        &fake,
        "/repos/acme/widgets/collaborators/alice/permission",
        INSTALL,
    );
    assert_eq!(roleless.await.json["permission"], "none");

    let unknown = get(
        &fake,
        "/repos/acme/widgets/collaborators/ghost/permission",
        INSTALL,
    )
    .await;
    assert_eq!((unknown.status, &unknown.json), (404, &not_found()));
}

#[tokio::test]
async fn each_fault_fires_its_times_then_the_route_answers() {
    let fake = world(FakeGitHub::start());
    let pull = format!("{}/repos/acme/widgets/pulls/7", fake.url());
    let comments = "/repos/acme/widgets/issues/7/comments";

    fake.fail_next("GET", "/pulls/7", 2, Fault::Status(502));
    // Another method's request does not take it.
    assert_eq!(
        post(&fake, comments, INSTALL, json!({"body": "x"}))
            .await
            .status,
        201
    );
    for _ in 0..2 {
        let failed = call(Method::GET, &pull, Some(INSTALL), None).await;
        assert_eq!(failed.status, 502);
        assert_eq!(failed.json["message"], "Bad Gateway");
    }
    assert_eq!(
        call(Method::GET, &pull, Some(INSTALL), None).await.status,
        200
    );

    fake.fail_next("get", "/pulls/", 1, Fault::Status(500));
    let server_error = call(Method::GET, &pull, Some(INSTALL), None).await;
    assert_eq!(
        (server_error.status, &server_error.json),
        (500, &json!({"message": "Server Error"}))
    );

    fake.fail_next(
        "POST",
        comments,
        1,
        Fault::SecondaryRateLimit { retry_after_s: 7 },
    );
    let limited = post(&fake, comments, INSTALL, json!({"body": "x"})).await;
    assert_eq!(limited.status, 403);
    assert_eq!(limited.header("retry-after"), Some("7"));
    let message = limited.json["message"].as_str().expect("a message");
    assert!(message.starts_with("You have exceeded a secondary rate limit."));
    let request_id = limited.header("x-github-request-id").expect("a request id");
    assert!(message.contains(request_id), "{message}");
    assert_eq!(
        limited.json["documentation_url"],
        "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
    );
    assert_eq!(
        post(&fake, comments, INSTALL, json!({"body": "y"}))
            .await
            .status,
        201
    );

    fake.fail_next(
        "GET",
        "/pulls/7",
        1,
        Fault::PrimaryRateLimit { reset_in_s: 60 },
    );
    let exhausted = call(Method::GET, &pull, Some(INSTALL), None).await;
    assert_eq!(exhausted.status, 403);
    assert_eq!(
        exhausted.json["message"],
        "API rate limit exceeded for installation ID 1."
    );
    assert_eq!(exhausted.header("x-ratelimit-remaining"), Some("0"));
    let reset: u64 = exhausted
        .header("x-ratelimit-reset")
        .and_then(|reset| reset.parse().ok())
        .expect("a reset time");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    assert!((now + 55..=now + 65).contains(&reset), "{reset} vs {now}");
    assert_eq!(
        call(Method::GET, &pull, Some(INSTALL), None).await.status,
        200
    );

    fake.fail_next("GET", "/pulls/7", 1, Fault::Reset);
    let reset = client().get(&pull).bearer_auth(INSTALL).send().await;
    assert!(reset.is_err(), "{reset:?}");
    assert_eq!(
        call(Method::GET, &pull, Some(INSTALL), None).await.status,
        200
    );

    let logged: Vec<(String, u16)> = fake
        .requests()
        .into_iter()
        .map(|r| (r.method, r.status))
        .collect();
    let expected: Vec<(String, u16)> = [
        ("POST", 201),
        ("GET", 502),
        ("GET", 502),
        ("GET", 200),
        ("GET", 500),
        ("POST", 403),
        ("POST", 201),
        ("GET", 403),
        ("GET", 200),
        ("GET", 0),
        ("GET", 200),
    ]
    .into_iter()
    .map(|(method, status)| (method.to_owned(), status))
    .collect();
    assert_eq!(logged, expected);
}

#[tokio::test]
async fn a_prefix_serves_under_it_only() {
    let fake = world(FakeGitHub::start_with_prefix("/api/v3"));
    let url = fake.url();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/api/v3"),
        "{url}"
    );
    assert_eq!(get(&fake, "/user", ALICE).await.status, 200);

    let origin = url.trim_end_matches("/api/v3");
    for outside in ["/user", "/api/v3x/user", "/api/user", "/api/v3"] {
        let answer = call(
            Method::GET,
            &format!("{origin}{outside}"),
            Some(ALICE),
            None,
        )
        .await;
        assert_eq!(answer.status, 404, "{outside}");
    }
    let pull = get(&fake, "/repos/acme/widgets/pulls/7", ALICE).await;
    assert_eq!(
        pull.json["url"],
        format!("{url}/repos/acme/widgets/pulls/7")
    );
    assert_eq!(
        pull.json["html_url"],
        format!("{origin}/acme/widgets/pull/7")
    );
    assert_eq!(fake.requests()[0].path, "/api/v3/user");
}

#[tokio::test]
async fn pull_requests_show_heads_forks_and_pushes() {
    let fake = world(FakeGitHub::start());
    fake.open_pr(
        REPO,
        PrSpec {
            draft: true,
            ..pr(8, true)
        },
    );
    let same_repo = get(&fake, "/repos/acme/widgets/pulls/7", ALICE).await;
    let pull = &same_repo.json;
    assert_eq!(pull["number"], 7);
    assert_eq!(pull["state"], "open");
    assert_eq!(pull["draft"], false);
    assert_eq!(pull["user"]["login"], "mallory");
    assert_eq!(pull["head"]["sha"], HEAD);
    assert_eq!(pull["head"]["ref"], "prompt-tweak");
    assert_eq!(pull["head"]["label"], "acme:prompt-tweak");
    assert_eq!(pull["head"]["repo"]["full_name"], REPO);
    assert_eq!(pull["head"]["repo"]["fork"], false);
    assert_eq!(pull["base"]["sha"], BASE);
    assert_eq!(pull["base"]["ref"], "main");
    assert_eq!(pull["base"]["repo"]["full_name"], REPO);
    assert_eq!(pull["base"]["repo"]["owner"]["type"], "Organization");
    assert_eq!(pull["created_at"], "2026-01-06T12:00:00Z");
    assert_eq!(pull["labels"], json!([]));
    assert!(pull["id"].is_u64() && pull["node_id"].is_string());

    let fork = get(&fake, "/repos/acme/widgets/pulls/8", ALICE).await;
    assert_eq!(fork.json["draft"], true);
    assert_eq!(fork.json["head"]["repo"]["full_name"], "mallory/widgets");
    assert_eq!(fork.json["head"]["repo"]["fork"], true);
    assert_eq!(fork.json["head"]["label"], "mallory:prompt-tweak");
    assert_eq!(fork.json["base"]["repo"]["full_name"], REPO);
    assert_eq!(fork.json["base"]["repo"]["fork"], false);

    let new_head = "3333333333333333333333333333333333333333";
    fake.push(REPO, 7, new_head, "2026-01-06T13:30:00Z");
    let pushed = get(&fake, "/repos/acme/widgets/pulls/7", ALICE).await;
    assert_eq!(pushed.json["head"]["sha"], new_head);
    assert_eq!(pushed.json["updated_at"], "2026-01-06T13:30:00Z");
    // Statuses may go to the new head; the clock has moved past the push.
    let status = post(
        &fake,
        &format!("/repos/acme/widgets/statuses/{new_head}"),
        INSTALL,
        json!({"state": "success"}),
    )
    .await;
    assert_eq!(status.json["created_at"], "2026-01-06T13:30:01Z");

    assert_eq!(
        get(&fake, "/repos/acme/widgets/pulls/9", ALICE)
            .await
            .status,
        404
    );
    assert_eq!(
        get(&fake, "/repos/acme/gadgets/pulls/7", ALICE)
            .await
            .status,
        404
    );
    assert_eq!(
        get(&fake, "/repos/acme/widgets/pulls/x", ALICE)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn every_response_carries_githubs_headers() {
    let fake = world(FakeGitHub::start());
    let found = get(&fake, "/repos/acme/widgets/pulls/7", ALICE).await;
    let missing = get(&fake, "/repos/acme/widgets/teleport", ALICE).await;
    assert_eq!((missing.status, &missing.json), (404, &not_found()));
    let wrong_method = call(
        Method::PUT,
        &format!("{}/repos/acme/widgets/pulls/7", fake.url()),
        Some(ALICE),
        None,
    )
    .await;
    assert_eq!(wrong_method.status, 404);

    for answer in [&found, &missing, &wrong_method] {
        assert_eq!(
            answer.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(answer.header("x-ratelimit-limit"), Some("5000"));
        assert_eq!(answer.header("x-ratelimit-resource"), Some("core"));
        for name in [
            "x-github-request-id",
            "x-ratelimit-reset",
            "x-ratelimit-used",
        ] {
            assert!(answer.header(name).is_some(), "{name}");
        }
    }
    assert_eq!(found.header("x-ratelimit-remaining"), Some("4999"));
    assert_eq!(missing.header("x-ratelimit-remaining"), Some("4998"));
    assert_ne!(
        found.header("x-github-request-id"),
        missing.header("x-github-request-id")
    );
}

#[tokio::test]
async fn dropping_the_fake_stops_it() {
    let fake = world(FakeGitHub::start());
    let url = format!("{}/user", fake.url());
    drop(fake);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(client().get(url).send().await.is_err());
}

#[tokio::test]
async fn validation_slow_body_and_echo_faults() {
    let fake = world(FakeGitHub::start());
    let path = "/repos/acme/widgets/issues/7/comments";

    // A 422 in GitHub's wire shape, whatever the body's length.
    fake.fail_next("POST", "/issues/7/comments", 1, Fault::body_too_long());
    let refused = post(&fake, path, INSTALL, json!({"body": "short"})).await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.json["message"], "Validation Failed");
    assert_eq!(
        refused.json["errors"][0],
        json!({"resource": "IssueComment", "code": "unprocessable", "field": "data",
               "message": "Body is too long (maximum is 65536 characters)"})
    );
    assert!(fake.comments(REPO, 7).is_empty());

    // A slow body: the status and headers at once, the request carried out, the
    // body a byte at a time, so a client's timeout runs out first.
    fake.fail_next(
        "POST",
        "/issues/7/comments",
        1,
        Fault::SlowBody { byte_every_ms: 200 },
    );
    let url = format!("{}{path}", fake.url());
    let response = client()
        .post(&url)
        .bearer_auth(INSTALL)
        .json(&json!({"body": "slow"}))
        .send()
        .await
        .expect("headers arrive");
    assert_eq!(response.status().as_u16(), 201);
    let body = tokio::time::timeout(Duration::from_millis(600), response.bytes()).await;
    assert!(
        body.is_err(),
        "the body cannot be in after 600 ms: {body:?}"
    );
    assert_eq!(fake.comments(REPO, 7).len(), 1, "the POST took effect");
    // The next request answers at once again.
    let answer = get(&fake, path, INSTALL).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json.as_array().map(Vec::len), Some(1));

    // A proxy that repeats the credentials back.
    fake.fail_next("GET", "/pulls/7", 1, Fault::EchoAuthorization(401));
    let echoed = get(&fake, "/repos/acme/widgets/pulls/7", INSTALL).await;
    assert_eq!(echoed.status, 401);
    assert!(
        echoed.text.contains(&format!("Bearer {INSTALL}")),
        "{}",
        echoed.text
    );
}
