//! A stateful local fake of GitHub's REST API (v3), for promptgate's
//! integration tests of `promptgate action`: the sticky pull request comment,
//! the commit status and label-based approvals.
//!
//! [`FakeGitHub::start`] binds `127.0.0.1:0` and serves, on its own Tokio
//! runtime on a background thread, until the [`FakeGitHub`] is dropped. Point
//! the code under test at [`FakeGitHub::url`] (what `GITHUB_API_URL` would
//! be), set the world up through the handle (users, tokens, repositories,
//! pull requests, labels, teams, permissions), let the code run, then inspect
//! what it did ([`FakeGitHub::comments`], [`FakeGitHub::statuses`],
//! [`FakeGitHub::labels`], [`FakeGitHub::requests`]).
//!
//! Routes, all under the optional prefix (`/api/v3` for a GitHub Enterprise
//! Server lookalike):
//!
//! - `GET /user`
//! - `GET /repos/{owner}/{repo}/pulls/{number}`
//! - `GET|POST /repos/{owner}/{repo}/issues/{number}/comments`
//! - `PATCH|DELETE /repos/{owner}/{repo}/issues/comments/{id}`
//! - `GET /repos/{owner}/{repo}/issues/{number}/labels`
//! - `GET /repos/{owner}/{repo}/issues/{number}/events`
//! - `POST /repos/{owner}/{repo}/statuses/{sha}`
//! - `GET /repos/{owner}/{repo}/commits/{sha}/statuses` and `.../status`
//! - `GET /orgs/{org}/teams/{team_slug}/memberships/{username}`
//! - `GET /repos/{owner}/{repo}/collaborators/{username}/permission`
//!
//! Every request must carry a known token (`Authorization: Bearer T` or
//! `token T`); writes act as the token's identity. Lists paginate as GitHub's
//! do (`per_page`, `page`, a `Link` header). Faults are injected with
//! [`FakeGitHub::fail_next`].
//!
//! Logins and repository names are matched case-insensitively, as GitHub
//! does. A login the set-up methods have not seen before is added on first
//! use: as a bot when it ends in `[bot]`, as a user otherwise. Repositories
//! must be added with [`FakeGitHub::add_repo`] before anything refers to
//! them; misuse of the set-up methods (an unknown repository or pull request,
//! a malformed timestamp) panics with a message saying what is wrong.
//!
//! Times come from a fake clock ([`FakeGitHub::set_now`]): whatever gets a
//! time from it (a pull request opened, a comment or status created, a
//! comment edited) takes the clock's time and moves it on a second, so
//! ordering is visible. A pull request's `updated_at` follows pushes, label
//! changes and comments, as on GitHub.
//!
//! Deliberately left out: writes are not permission-checked (any known token
//! may comment, edit or delete any comment, and post statuses); issue events
//! are only `labeled` and `unlabeled`; statuses can only be posted to and
//! read from SHAs some pull request has had as head or base (others answer
//! 422 or 404, as an unknown commit does on GitHub), named by their full SHA.

mod api;
mod control;
mod model;
mod paging;
mod server;
mod time;
mod uri;

pub use server::FakeGitHub;

/// A pull request to open with [`FakeGitHub::open_pr`]. Its title is
/// `Pull request #{number}`; it is opened at the fake clock's time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrSpec {
    pub number: u64,
    /// The author's login, added as a user if new.
    pub author: String,
    pub head_sha: String,
    /// The head branch name, e.g. `feature/prompt`.
    pub head_ref: String,
    pub base_sha: String,
    pub base_ref: String,
    /// The head lives in the author's fork, `{author}/{repo name}`.
    pub fork: bool,
    pub draft: bool,
}

/// A comment as stored, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentSnapshot {
    pub id: u64,
    /// The author's login.
    pub author: String,
    pub body: String,
    /// RFC 3339 UTC, e.g. `2026-01-06T12:00:00Z`.
    pub created_at: String,
    pub updated_at: String,
}

/// A commit status as stored, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSnapshot {
    /// `error`, `failure`, `pending` or `success`.
    pub state: String,
    pub context: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
    /// The login of the token's identity that posted it.
    pub creator: String,
}

/// One request as the fake answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLog {
    pub method: String,
    /// The request target as received: prefix, percent-encoding and query
    /// string included.
    pub path: String,
    /// The response status; `0` when a [`Fault::Reset`] closed the connection
    /// without one.
    pub status: u16,
    /// The `Authorization` header as sent.
    pub authorization: Option<String>,
}

/// A failure to inject with [`FakeGitHub::fail_next`], answered before any
/// routing or authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// This status with `{"message":"Server Error"}` (`Bad Gateway` for 502,
    /// `Service Unavailable` for 503).
    Status(u16),
    /// 403 with `retry-after: {retry_after_s}` and GitHub's secondary rate
    /// limit message.
    SecondaryRateLimit { retry_after_s: u64 },
    /// 403 with `x-ratelimit-remaining: 0`, `x-ratelimit-reset` at the wall
    /// clock's now plus `reset_in_s` (Unix seconds), and GitHub's primary rate
    /// limit message.
    PrimaryRateLimit { reset_in_s: u64 },
    /// Close the connection without answering.
    Reset,
    /// 422 `Validation Failed` with one error, in GitHub's wire shape:
    /// `{"message": "Validation Failed", "errors": [{"resource", "code":
    /// "unprocessable", "field", "message"}], "documentation_url"}`. See
    /// [`Fault::body_too_long`].
    ValidationFailed {
        resource: String,
        field: String,
        message: String,
    },
    /// The route's own answer (the request takes effect, as a request that
    /// GitHub carried out but answers slowly), its status and headers at once
    /// and its body one byte every `byte_every_ms` milliseconds, so that a
    /// client's timeout runs out while bytes still arrive.
    SlowBody { byte_every_ms: u64 },
    /// This status with GitHub's error body, whose `message` repeats the
    /// request's `Authorization` header back, as a misbehaving proxy in front
    /// of GitHub might: for testing that clients keep their token out of what
    /// they print.
    EchoAuthorization(u16),
}

impl Fault {
    /// What GitHub answers to a comment body over its limit (the fake answers
    /// it to such a body anyway; this is for answering it to any).
    pub fn body_too_long() -> Fault {
        Fault::ValidationFailed {
            resource: "IssueComment".into(),
            field: "data".into(),
            message: "Body is too long (maximum is 65536 characters)".into(),
        }
    }
}
