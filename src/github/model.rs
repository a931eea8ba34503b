//! The parts of GitHub's REST payloads promptgate reads. Unknown fields are ignored.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct User {
    pub login: String,
    /// `User`, `Bot` or `Organization`.
    #[serde(rename = "type", default)]
    pub kind: String,
}

impl User {
    /// A bot account: `type: Bot`, or the `[bot]` suffix GitHub gives app accounts.
    pub fn is_bot(&self) -> bool {
        self.kind == "Bot" || self.login.ends_with("[bot]")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    pub user: Option<User>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub name: String,
}

/// One entry of `GET /repos/{o}/{r}/issues/{n}/events`.
#[derive(Debug, Clone, Deserialize)]
pub struct IssueEvent {
    /// `labeled`, `unlabeled`, `head_ref_force_pushed`, …
    pub event: String,
    /// Missing for events by deleted accounts ("ghost").
    pub actor: Option<User>,
    pub created_at: jiff::Timestamp,
    pub label: Option<Label>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    pub context: String,
    pub created_at: jiff::Timestamp,
    pub creator: Option<User>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pull {
    pub number: u64,
    #[serde(default)]
    pub state: String,
    pub user: Option<User>,
    pub head: Branch,
    pub base: Branch,
    #[serde(default)]
    pub updated_at: Option<jiff::Timestamp>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Branch {
    pub sha: String,
    /// The branch name (`ref`).
    #[serde(rename = "ref")]
    pub name: Option<String>,
    /// Missing when the fork was deleted.
    pub repo: Option<Repository>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    pub full_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct Membership {
    pub state: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct Permission {
    pub permission: String,
    #[serde(default)]
    pub role_name: Option<String>,
}
