//! The states of a GitHub commit status: what the approval logic decides and the GitHub
//! client posts. A leaf, so that neither has to import the other.

/// A commit status state.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    Error,
}
