//! The test's side of the fake: setting the world up, injecting faults, and
//! inspecting what requests did.

use crate::model::{Kind, Pull, Repo};
use crate::server::QueuedFault;
use crate::{CommentSnapshot, FakeGitHub, Fault, PrSpec, RequestLog, StatusSnapshot, time};

impl FakeGitHub {
    // The clock.

    /// Sets the fake clock (default `2026-01-06T12:00:00Z`), which times
    /// pull requests opened and the comments and statuses created, through
    /// requests or [`FakeGitHub::add_comment`]. Each such write takes the
    /// clock's time and moves it on a second; [`FakeGitHub::push`],
    /// [`FakeGitHub::label`] and [`FakeGitHub::unlabel`] move it past their
    /// `at` if it is behind.
    ///
    /// # Panics
    ///
    /// When `at` is not RFC 3339 UTC like `2026-01-06T10:00:00Z`.
    pub fn set_now(&self, at: &str) {
        self.shared.lock().model.set_now(at);
    }

    // Identities.

    /// Adds a user (`type: "User"`).
    pub fn add_user(&self, login: &str) {
        self.shared.lock().model.add_identity(login, Kind::User);
    }

    /// Adds a bot (`type: "Bot"`), e.g. `github-actions[bot]`.
    pub fn add_bot(&self, login: &str) {
        self.shared.lock().model.add_identity(login, Kind::Bot);
    }

    /// Adds a personal token acting as `login`: `GET /user` answers that user.
    pub fn add_token(&self, token: &str, login: &str) {
        self.shared.lock().model.add_token(token, login, true);
    }

    /// Adds an installation token (like `GITHUB_TOKEN` or a GitHub App's):
    /// it acts as `bot_login`, but `GET /user` answers 403 `Resource not
    /// accessible by integration`.
    pub fn add_installation_token(&self, token: &str, bot_login: &str) {
        self.shared.lock().model.add_token(token, bot_login, false);
    }

    // Repositories and people.

    /// Adds the repository `owner/name`. Its owner object is the user
    /// `owner` if that login is known by then, an organization otherwise.
    ///
    /// # Panics
    ///
    /// When `full_name` is not `owner/name`.
    pub fn add_repo(&self, full_name: &str) {
        self.shared.lock().model.add_repo(full_name);
    }

    /// Gives `login` a role on `repo`: `admin`, `maintain`, `write`,
    /// `triage`, `read` or `none`. A known login without one has `none`.
    ///
    /// # Panics
    ///
    /// On an unknown repository or role.
    pub fn set_permission(&self, repo: &str, login: &str, role_name: &str) {
        self.shared
            .lock()
            .model
            .set_permission(repo, login, role_name);
    }

    /// Makes `login` a member of `org`'s team `team_slug` (created if new),
    /// in `state` `active` or `pending`. Active members of the team's
    /// organization comment as `MEMBER` on its repositories.
    ///
    /// # Panics
    ///
    /// When `state` is neither `active` nor `pending`.
    pub fn add_team_member(&self, org: &str, team_slug: &str, login: &str, state: &str) {
        self.shared
            .lock()
            .model
            .add_team_member(org, team_slug, login, state);
    }

    /// Makes team membership lookups in `org` answer 403 `Resource not
    /// accessible by integration`, as for a token that cannot read the
    /// organization's members.
    pub fn hide_org_members(&self, org: &str) {
        self.shared.lock().model.hide_org_members(org);
    }

    // Pull requests.

    /// Opens a pull request at the fake clock's time.
    ///
    /// # Panics
    ///
    /// On an unknown repository, or a number already open.
    pub fn open_pr(&self, repo: &str, pr: PrSpec) {
        self.shared.lock().model.open_pr(repo, pr);
    }

    /// Pushes a new head commit: `head.sha` becomes `head_sha`, and
    /// `updated_at` moves to `at` (RFC 3339 UTC) unless already later.
    ///
    /// # Panics
    ///
    /// On an unknown pull request or a malformed `at`.
    pub fn push(&self, repo: &str, number: u64, head_sha: &str, at: &str) {
        self.shared.lock().model.push(repo, number, head_sha, at);
    }

    /// `actor` adds `label` at `at`: the label (created with color `ededed`
    /// if the repository has none of that name) and a `labeled` event. A
    /// no-op when the label is already on, as on GitHub.
    ///
    /// # Panics
    ///
    /// On an unknown pull request or a malformed `at`.
    pub fn label(&self, repo: &str, number: u64, label: &str, actor: &str, at: &str) {
        let mut state = self.shared.lock();
        state.model.relabel(repo, number, label, actor, at, true);
    }

    /// `actor` removes `label` at `at`, recording an `unlabeled` event. A
    /// no-op when the label is not on.
    ///
    /// # Panics
    ///
    /// On an unknown pull request or a malformed `at`.
    pub fn unlabel(&self, repo: &str, number: u64, label: &str, actor: &str, at: &str) {
        let mut state = self.shared.lock();
        state.model.relabel(repo, number, label, actor, at, false);
    }

    /// Adds a comment by `author` at the fake clock's time, as if posted
    /// through the API (a forged comment by someone else, say); returns its
    /// id.
    ///
    /// # Panics
    ///
    /// On an unknown pull request.
    pub fn add_comment(&self, repo: &str, number: u64, author: &str, body: &str) -> u64 {
        self.shared
            .lock()
            .model
            .add_comment(repo, number, author, body)
    }

    // Inspection.

    /// The pull request's comments, ascending id.
    ///
    /// # Panics
    ///
    /// On an unknown pull request.
    pub fn comments(&self, repo: &str, number: u64) -> Vec<CommentSnapshot> {
        let state = self.shared.lock();
        let (repo, _) = inspect_pull(state.model.inspect(repo), number);
        repo.comments
            .iter()
            .filter(|comment| comment.number == number)
            .map(|comment| CommentSnapshot {
                id: comment.id,
                author: comment.author.clone(),
                body: comment.body.clone(),
                created_at: time::format(comment.created_at),
                updated_at: time::format(comment.updated_at),
            })
            .collect()
    }

    /// The statuses posted to `sha`, oldest first.
    ///
    /// # Panics
    ///
    /// On an unknown repository.
    pub fn statuses(&self, repo: &str, sha: &str) -> Vec<StatusSnapshot> {
        let state = self.shared.lock();
        state
            .model
            .inspect(repo)
            .statuses_of(sha)
            .map(|status| StatusSnapshot {
                state: status.state.clone(),
                context: status.context.clone(),
                description: status.description.clone(),
                target_url: status.target_url.clone(),
                creator: status.creator.clone(),
            })
            .collect()
    }

    /// The pull request's label names, sorted case-insensitively as GitHub
    /// lists them.
    ///
    /// # Panics
    ///
    /// On an unknown pull request.
    pub fn labels(&self, repo: &str, number: u64) -> Vec<String> {
        let state = self.shared.lock();
        let (_, pull) = inspect_pull(state.model.inspect(repo), number);
        pull.labels.clone()
    }

    /// Every request answered so far, faulted ones included, in the order
    /// their answers were decided.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.shared.lock().log.clone()
    }

    // Faults.

    /// Makes the next `times` requests whose method is `method` (any case)
    /// and whose target (path and query as sent, prefix included) contains
    /// `path_contains` get `fault` instead of their answer. Queued faults are
    /// tried in the order queued, before routing and authentication; once
    /// used up, the route answers normally again.
    pub fn fail_next(&self, method: &str, path_contains: &str, times: usize, fault: Fault) {
        if times == 0 {
            return;
        }
        self.shared.lock().faults.push(QueuedFault {
            method: method.to_ascii_uppercase(),
            path_contains: path_contains.to_owned(),
            remaining: times,
            fault,
        });
    }
}

/// The repository's pull request `number`, or a panic telling the test to
/// open it.
fn inspect_pull(repo: &Repo, number: u64) -> (&Repo, &Pull) {
    match repo.pulls.get(&number) {
        Some(pull) => (repo, pull),
        None => panic!(
            "fake-github: no pull request {}#{number}: open_pr it first",
            repo.full_name()
        ),
    }
}
