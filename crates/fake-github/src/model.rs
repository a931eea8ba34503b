//! The fake's world: identities, tokens, repositories with their pull
//! requests, comments, labels and statuses, teams, and the fake clock.
//!
//! Logins, repository names, organizations and team slugs are keyed in lower
//! case (GitHub matches them case-insensitively) and shown as first given.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::time;

/// The fake clock's time until [`Model::set_now`]: `2026-01-06T12:00:00Z`.
const DEFAULT_NOW: i64 = 1_767_700_800;

/// The color GitHub gives a label created by adding it to an issue.
const NEW_LABEL_COLOR: &str = "ededed";

/// Absolute URL bases, built from the server's own address.
pub(crate) struct Urls {
    /// The API base, prefix included: `http://127.0.0.1:PORT/api/v3`.
    pub(crate) api: String,
    /// The web base: `http://127.0.0.1:PORT`.
    pub(crate) web: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    User,
    Bot,
}

pub(crate) struct User {
    pub(crate) id: u64,
    pub(crate) login: String,
    pub(crate) kind: Kind,
}

/// Who a token acts as.
#[derive(Clone, Debug)]
pub(crate) enum Token {
    /// A personal token: `GET /user` answers its user.
    Personal(String),
    /// An installation token (`GITHUB_TOKEN`, app tokens): acts as its bot,
    /// but `GET /user` is forbidden.
    Installation(String),
}

impl Token {
    /// The login the token acts as.
    pub(crate) fn login(&self) -> &str {
        match self {
            Token::Personal(login) | Token::Installation(login) => login,
        }
    }
}

/// A repository role, as `role_name` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Admin,
    Maintain,
    Write,
    Triage,
    Read,
    None,
}

impl Role {
    fn parse(name: &str) -> Option<Role> {
        Some(match name {
            "admin" => Role::Admin,
            "maintain" => Role::Maintain,
            "write" => Role::Write,
            "triage" => Role::Triage,
            "read" => Role::Read,
            "none" => Role::None,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Maintain => "maintain",
            Role::Write => "write",
            Role::Triage => "triage",
            Role::Read => "read",
            Role::None => "none",
        }
    }

    /// The legacy `permission` value: admin, write, read or none.
    pub(crate) fn legacy(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Maintain | Role::Write => "write",
            Role::Triage | Role::Read => "read",
            Role::None => "none",
        }
    }
}

pub(crate) struct Repo {
    pub(crate) id: u64,
    /// Of the owner object, which is an organization unless the owner was a
    /// known user when the repository was added.
    pub(crate) owner_id: u64,
    pub(crate) owner: String,
    pub(crate) name: String,
    pub(crate) permissions: HashMap<String, Role>,
    pub(crate) pulls: BTreeMap<u64, Pull>,
    /// In creation order, so ascending id.
    pub(crate) comments: Vec<Comment>,
    /// In creation order, all commits together.
    pub(crate) statuses: Vec<Status>,
    pub(crate) labels: HashMap<String, Label>,
    /// Every head and base SHA pull requests have had: what statuses may be
    /// posted to.
    pub(crate) commits: HashSet<String>,
}

impl Repo {
    pub(crate) fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The repository's label named `name` (any case).
    pub(crate) fn label(&self, name: &str) -> Option<&Label> {
        self.labels.get(&key(name))
    }
}

pub(crate) struct Pull {
    pub(crate) id: u64,
    pub(crate) number: u64,
    pub(crate) author: String,
    pub(crate) head_sha: String,
    pub(crate) head_ref: String,
    pub(crate) base_sha: String,
    pub(crate) base_ref: String,
    pub(crate) fork: bool,
    /// Of the fork, when `fork`.
    pub(crate) fork_repo_id: u64,
    pub(crate) draft: bool,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    /// Label names as first given, sorted case-insensitively.
    pub(crate) labels: Vec<String>,
    /// Oldest first.
    pub(crate) events: Vec<Event>,
}

pub(crate) struct Event {
    pub(crate) id: u64,
    pub(crate) actor: String,
    /// `true` for `labeled`, `false` for `unlabeled`.
    pub(crate) labeled: bool,
    pub(crate) label: String,
    pub(crate) created_at: i64,
}

pub(crate) struct Comment {
    pub(crate) id: u64,
    pub(crate) number: u64,
    pub(crate) author: String,
    pub(crate) body: String,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

pub(crate) struct Status {
    pub(crate) id: u64,
    pub(crate) sha: String,
    pub(crate) state: String,
    pub(crate) context: String,
    pub(crate) description: Option<String>,
    pub(crate) target_url: Option<String>,
    pub(crate) creator: String,
    pub(crate) created_at: i64,
}

pub(crate) struct Label {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) color: String,
}

pub(crate) struct Team {
    pub(crate) id: u64,
    /// Login key to (login, `active` or `pending`).
    pub(crate) members: HashMap<String, (String, String)>,
}

/// The whole fake world.
pub(crate) struct Model {
    pub(crate) urls: Urls,
    /// The fake clock, Unix seconds: the time the next write gets.
    now: i64,
    next_id: u64,
    users: HashMap<String, User>,
    tokens: HashMap<String, Token>,
    repos: HashMap<String, Repo>,
    teams: HashMap<(String, String), Team>,
    hidden_orgs: HashSet<String>,
}

/// The lookup key of a login, repository, organization or team name.
pub(crate) fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl Model {
    pub(crate) fn new(urls: Urls) -> Model {
        Model {
            urls,
            now: DEFAULT_NOW,
            next_id: 1,
            users: HashMap::new(),
            tokens: HashMap::new(),
            repos: HashMap::new(),
            teams: HashMap::new(),
            hidden_orgs: HashSet::new(),
        }
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    // The clock.

    pub(crate) fn set_now(&mut self, at: &str) {
        self.now = parse_time(at);
    }

    /// The time for a write: the clock's, which then moves on a second.
    pub(crate) fn stamp(&mut self) -> i64 {
        let at = self.now;
        self.now += 1;
        at
    }

    /// Something happened at `at`: later writes come after it.
    fn observe(&mut self, at: i64) {
        self.now = self.now.max(at + 1);
    }

    // Identities.

    /// Adds `login` as `kind`, or changes the kind of a known login.
    pub(crate) fn add_identity(&mut self, login: &str, kind: Kind) {
        match self.users.get_mut(&key(login)) {
            Some(user) => user.kind = kind,
            None => {
                let id = self.new_id();
                let login = login.to_owned();
                self.users.insert(key(&login), User { id, login, kind });
            }
        }
    }

    /// Adds `login` if new: as a bot when it ends in `[bot]`. Returns the
    /// login as first given.
    fn ensure_identity(&mut self, login: &str) -> String {
        if !self.users.contains_key(&key(login)) {
            let kind = if login.ends_with("[bot]") {
                Kind::Bot
            } else {
                Kind::User
            };
            self.add_identity(login, kind);
        }
        self.user(login)
            .map_or_else(|| login.to_owned(), |u| u.login.clone())
    }

    pub(crate) fn user(&self, login: &str) -> Option<&User> {
        self.users.get(&key(login))
    }

    pub(crate) fn add_token(&mut self, token: &str, login: &str, personal: bool) {
        let login = self.ensure_identity(login);
        let token_kind = if personal {
            Token::Personal(login)
        } else {
            Token::Installation(login)
        };
        self.tokens.insert(token.to_owned(), token_kind);
    }

    pub(crate) fn token(&self, token: &str) -> Option<&Token> {
        self.tokens.get(token)
    }

    // Repositories and people.

    /// Adds `owner/name`; a no-op for a known repository.
    pub(crate) fn add_repo(&mut self, full_name: &str) {
        let Some((owner, name)) = full_name
            .split_once('/')
            .filter(|(owner, name)| !owner.is_empty() && !name.is_empty() && !name.contains('/'))
        else {
            panic!("fake-github: repository {full_name:?} is not owner/name");
        };
        if self.repos.contains_key(&key(full_name)) {
            return;
        }
        let id = self.new_id();
        let owner_id = match self.user(owner) {
            Some(user) => user.id,
            None => self.new_id(),
        };
        let repo = Repo {
            id,
            owner_id,
            owner: owner.to_owned(),
            name: name.to_owned(),
            permissions: HashMap::new(),
            pulls: BTreeMap::new(),
            comments: Vec::new(),
            statuses: Vec::new(),
            labels: HashMap::new(),
            commits: HashSet::new(),
        };
        self.repos.insert(key(full_name), repo);
    }

    pub(crate) fn repo(&self, full_name: &str) -> Option<&Repo> {
        self.repos.get(&key(full_name))
    }

    fn repo_mut(&mut self, full_name: &str) -> Option<&mut Repo> {
        self.repos.get_mut(&key(full_name))
    }

    /// The repository, or a panic telling the test to add it.
    fn known_repo(&mut self, full_name: &str) -> &mut Repo {
        self.repo_mut(full_name).unwrap_or_else(|| {
            panic!("fake-github: unknown repository {full_name}: add_repo it first")
        })
    }

    /// The pull request, or a panic telling the test to open it.
    fn known_pull(&mut self, full_name: &str, number: u64) -> &mut Pull {
        self.known_repo(full_name)
            .pulls
            .get_mut(&number)
            .unwrap_or_else(|| {
                panic!("fake-github: no pull request {full_name}#{number}: open_pr it first")
            })
    }

    pub(crate) fn set_permission(&mut self, repo: &str, login: &str, role_name: &str) {
        let role = Role::parse(role_name).unwrap_or_else(|| {
            panic!(
                "fake-github: role {role_name:?} is not admin, maintain, write, triage, read or none"
            )
        });
        self.ensure_identity(login);
        self.known_repo(repo).permissions.insert(key(login), role);
    }

    /// The role of a known identity on `repo`: `None` (the role) when none
    /// was set. `Option::None` for an unknown login.
    pub(crate) fn role(&self, repo: &Repo, login: &str) -> Option<Role> {
        self.user(login)?;
        Some(
            repo.permissions
                .get(&key(login))
                .copied()
                .unwrap_or(Role::None),
        )
    }

    pub(crate) fn add_team_member(&mut self, org: &str, team_slug: &str, login: &str, state: &str) {
        assert!(
            matches!(state, "active" | "pending"),
            "fake-github: team membership state {state:?} is not active or pending"
        );
        let login = self.ensure_identity(login);
        let team_key = (key(org), key(team_slug));
        if !self.teams.contains_key(&team_key) {
            let id = self.new_id();
            let team = Team {
                id,
                members: HashMap::new(),
            };
            self.teams.insert(team_key.clone(), team);
        }
        if let Some(team) = self.teams.get_mut(&team_key) {
            team.members.insert(key(&login), (login, state.to_owned()));
        }
    }

    pub(crate) fn team(&self, org: &str, team_slug: &str) -> Option<&Team> {
        self.teams.get(&(key(org), key(team_slug)))
    }

    pub(crate) fn hide_org_members(&mut self, org: &str) {
        self.hidden_orgs.insert(key(org));
    }

    pub(crate) fn org_hidden(&self, org: &str) -> bool {
        self.hidden_orgs.contains(&key(org))
    }

    /// A comment or pull request author's `author_association` on `repo`.
    pub(crate) fn association(&self, repo: &Repo, login: &str) -> &'static str {
        let login_key = key(login);
        let owner_key = key(&repo.owner);
        if login_key == owner_key {
            return "OWNER";
        }
        let org_member = self.teams.iter().any(|((org, _), team)| {
            *org == owner_key
                && team
                    .members
                    .get(&login_key)
                    .is_some_and(|(_, state)| state == "active")
        });
        if org_member {
            return "MEMBER";
        }
        match repo.permissions.get(&login_key) {
            Some(role) if *role != Role::None => "COLLABORATOR",
            _ => "NONE",
        }
    }

    // Pull requests.

    pub(crate) fn open_pr(&mut self, repo: &str, spec: crate::PrSpec) {
        let author = self.ensure_identity(&spec.author);
        let (id, fork_repo_id) = (self.new_id(), self.new_id());
        let at = self.stamp();
        let pulls = &self.known_repo(repo).pulls;
        assert!(
            !pulls.contains_key(&spec.number),
            "fake-github: {repo}#{} is already open",
            spec.number
        );
        let repo = self.known_repo(repo);
        repo.commits.insert(spec.head_sha.clone());
        repo.commits.insert(spec.base_sha.clone());
        let pull = Pull {
            id,
            number: spec.number,
            author,
            head_sha: spec.head_sha,
            head_ref: spec.head_ref,
            base_sha: spec.base_sha,
            base_ref: spec.base_ref,
            fork: spec.fork,
            fork_repo_id,
            draft: spec.draft,
            created_at: at,
            updated_at: at,
            labels: Vec::new(),
            events: Vec::new(),
        };
        repo.pulls.insert(spec.number, pull);
    }

    pub(crate) fn push(&mut self, repo: &str, number: u64, head_sha: &str, at: &str) {
        let at = parse_time(at);
        self.known_repo(repo).commits.insert(head_sha.to_owned());
        let pull = self.known_pull(repo, number);
        pull.head_sha = head_sha.to_owned();
        pull.updated_at = pull.updated_at.max(at);
        self.observe(at);
    }

    /// Adds or removes a label, recording the event; a no-op (no event) when
    /// the label is already there or already gone, as on GitHub.
    pub(crate) fn relabel(
        &mut self,
        repo: &str,
        number: u64,
        label: &str,
        actor: &str,
        at: &str,
        add: bool,
    ) {
        let at = parse_time(at);
        let present = self
            .known_pull(repo, number)
            .labels
            .iter()
            .position(|name| key(name) == key(label));
        let actor = self.ensure_identity(actor);
        self.observe(at);
        if add == present.is_some() {
            return;
        }
        if self.known_repo(repo).label(label).is_none() {
            let id = self.new_id();
            let new_label = Label {
                id,
                name: label.to_owned(),
                color: NEW_LABEL_COLOR.to_owned(),
            };
            self.known_repo(repo).labels.insert(key(label), new_label);
        }
        let event_id = self.new_id();
        let name = self
            .known_repo(repo)
            .label(label)
            .map_or_else(|| label.to_owned(), |known| known.name.clone());
        let pull = self.known_pull(repo, number);
        match present {
            Some(index) => {
                pull.labels.remove(index);
            }
            None => {
                pull.labels.push(name.clone());
                pull.labels.sort_by_key(|name| key(name));
            }
        }
        pull.events.push(Event {
            id: event_id,
            actor,
            labeled: add,
            label: name,
            created_at: at,
        });
        pull.updated_at = pull.updated_at.max(at);
    }

    // Comments.

    /// Adds a comment by `author` at the clock's time; `None` when there is
    /// no such repository or pull request.
    pub(crate) fn create_comment(
        &mut self,
        repo: &str,
        number: u64,
        author: &str,
        body: &str,
    ) -> Option<u64> {
        self.repo(repo)?.pulls.get(&number)?;
        let author = self.ensure_identity(author);
        let id = self.new_id();
        let at = self.stamp();
        let repo = self.repo_mut(repo)?;
        repo.comments.push(Comment {
            id,
            number,
            author,
            body: body.to_owned(),
            created_at: at,
            updated_at: at,
        });
        let pull = repo.pulls.get_mut(&number)?;
        pull.updated_at = pull.updated_at.max(at);
        Some(id)
    }

    /// Replaces a comment's body; `false` when there is no such comment.
    pub(crate) fn update_comment(&mut self, repo: &str, id: u64, body: &str) -> bool {
        if self.repo(repo).and_then(|r| r.comment(id)).is_none() {
            return false;
        }
        let at = self.stamp();
        let Some(repo) = self.repo_mut(repo) else {
            return false;
        };
        let Some(comment) = repo.comments.iter_mut().find(|c| c.id == id) else {
            return false;
        };
        comment.body = body.to_owned();
        comment.updated_at = at;
        let number = comment.number;
        if let Some(pull) = repo.pulls.get_mut(&number) {
            pull.updated_at = pull.updated_at.max(at);
        }
        true
    }

    /// Deletes a comment; `false` when there is no such comment.
    pub(crate) fn delete_comment(&mut self, repo: &str, id: u64) -> bool {
        let Some(repo) = self.repo_mut(repo) else {
            return false;
        };
        let before = repo.comments.len();
        repo.comments.retain(|c| c.id != id);
        repo.comments.len() < before
    }

    pub(crate) fn add_comment(&mut self, repo: &str, number: u64, author: &str, body: &str) -> u64 {
        self.known_pull(repo, number);
        self.create_comment(repo, number, author, body)
            .expect("the pull request was just found")
    }

    // Statuses.

    /// Records a status (already validated) at the clock's time, setting its
    /// `id` and `created_at`; returns the id, or `None` when there is no such
    /// repository.
    pub(crate) fn create_status(&mut self, repo: &str, mut status: Status) -> Option<u64> {
        self.repo(repo)?;
        status.id = self.new_id();
        status.created_at = self.stamp();
        let id = status.id;
        self.repo_mut(repo)?.statuses.push(status);
        Some(id)
    }

    /// A known repository, for the inspection methods.
    pub(crate) fn inspect(&self, full_name: &str) -> &Repo {
        self.repo(full_name).unwrap_or_else(|| {
            panic!("fake-github: unknown repository {full_name}: add_repo it first")
        })
    }
}

impl Repo {
    pub(crate) fn comment(&self, id: u64) -> Option<&Comment> {
        self.comments.iter().find(|c| c.id == id)
    }

    /// Statuses of `sha`, oldest first.
    pub(crate) fn statuses_of<'a>(
        &'a self,
        sha: &'a str,
    ) -> impl DoubleEndedIterator<Item = &'a Status> {
        self.statuses.iter().filter(move |s| s.sha == sha)
    }
}

/// A test-given timestamp, or a panic saying what is wrong with it.
fn parse_time(at: &str) -> i64 {
    time::parse(at).unwrap_or_else(|| {
        panic!("fake-github: timestamp {at:?} is not RFC 3339 UTC like 2026-01-06T10:00:00Z")
    })
}
