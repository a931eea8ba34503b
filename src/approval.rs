//! Two-role approval by label, and the commit status it leads to (pure; SPEC "Status
//! and approvals").
//!
//! A role is approved by the latest `labeled` event of its label with no later
//! `unlabeled`, when that event's actor is a human, is not the pull request's author
//! (unless `allow_author`), applied it after the head commit arrived (with
//! `dismiss_on_push`), and is one of the role's reviewers. Whether someone is a
//! reviewer needs GitHub (team membership, repository permission), so the caller looks
//! that up for the few people [`to_check`] names and passes the answers in. One person
//! cannot fill both roles. The trade-off label follows the same rules; anyone who may
//! approve either role may accept a trade-off.

use jiff::Timestamp;

use crate::config::ApprovalsConfig;
use crate::evidence::RoleState;
use crate::policy::{State, Verdict};
use crate::status::StatusState;

/// GitHub's limit on a commit status description.
pub const DESCRIPTION_LIMIT: usize = 140;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Role {
    Product,
    Technical,
    /// Accepts cost or latency over budget.
    Tradeoff,
}

impl Role {
    pub fn word(self) -> &'static str {
        match self {
            Role::Product => "product",
            Role::Technical => "technical",
            Role::Tradeoff => "trade-off",
        }
    }
}

/// A label applied to or removed from the pull request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelEvent {
    /// `true` for `labeled`, `false` for `unlabeled`.
    pub applied: bool,
    pub label: String,
    pub actor: String,
    pub bot: bool,
    pub at: Timestamp,
}

/// Whether a person may approve for a role, as GitHub answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Eligibility {
    Yes,
    No,
    /// GitHub could not say (a token that may not read team members); never counted.
    Unknown(String),
}

/// What the approval step knows about the pull request.
#[derive(Clone, Debug)]
pub struct Submission<'a> {
    pub author: &'a str,
    /// When the head commit arrived; labels applied before it are stale with
    /// `dismiss_on_push`.
    pub head_arrived_at: Timestamp,
}

/// One role's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleOutcome {
    pub role: Role,
    pub label: String,
    /// Who approved, and when.
    pub by: Option<(String, Timestamp)>,
    /// Why it is not approved (empty when it is).
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approvals {
    pub product: RoleOutcome,
    pub technical: RoleOutcome,
    pub tradeoff: RoleOutcome,
}

impl Approvals {
    /// The two roles, as the report shows them.
    pub fn role_states(&self) -> Vec<RoleState> {
        [&self.product, &self.technical]
            .into_iter()
            .map(|o| RoleState {
                role: o.role.word().to_string(),
                label: o.label.clone(),
                approved_by: o.by.as_ref().map(|(who, _)| format!("@{who}")),
                approved_at: o.by.as_ref().map(|(_, at)| at.to_string()),
                note: o.note.clone(),
            })
            .collect()
    }
}

fn label_of(config: &ApprovalsConfig, role: Role) -> &str {
    match role {
        Role::Product => &config.product.label,
        Role::Technical => &config.technical.label,
        Role::Tradeoff => &config.tradeoff_label,
    }
}

const ROLES: [Role; 3] = [Role::Product, Role::Technical, Role::Tradeoff];

/// The event that currently applies `label`: the latest `labeled` with no later
/// `unlabeled`. Events are in the order GitHub lists them (oldest first); equal
/// timestamps keep that order. Names compare as GitHub compares them, ignoring case:
/// `Prompt-Approved/Product` is the label `prompt-approved/product`.
pub fn current<'e>(events: &'e [LabelEvent], label: &str) -> Option<&'e LabelEvent> {
    let last = events
        .iter()
        .rev()
        .find(|e| e.label.to_lowercase() == label.to_lowercase())?;
    last.applied.then_some(last)
}

/// The people whose eligibility [`decide`] needs, per role: the humans who applied a
/// role's label currently in force and could count if they are reviewers.
pub fn to_check(
    events: &[LabelEvent],
    pr: &Submission,
    config: &ApprovalsConfig,
) -> Vec<(Role, String)> {
    ROLES
        .iter()
        .filter_map(|&role| {
            let e = current(events, label_of(config, role))?;
            (disqualified(e, pr, config).is_none()).then(|| (role, e.actor.clone()))
        })
        .collect()
}

/// Why a label event cannot approve, before asking who its actor is.
fn disqualified(e: &LabelEvent, pr: &Submission, config: &ApprovalsConfig) -> Option<String> {
    if e.bot {
        return Some(format!(
            "applied by the bot @{}, which cannot approve",
            e.actor
        ));
    }
    if !config.allow_author && e.actor.eq_ignore_ascii_case(pr.author) {
        return Some(format!(
            "applied by @{}, the pull request's author, who cannot approve their own change",
            e.actor
        ));
    }
    if config.dismiss_on_push && e.at < pr.head_arrived_at {
        return Some(format!(
            "applied by @{} at {}, before the latest push at {}: apply it again",
            e.actor, e.at, pr.head_arrived_at
        ));
    }
    None
}

/// Each role's outcome. `eligible(role, login)` answers for the pairs [`to_check`]
/// named (any other pair may answer [`Eligibility::No`]).
pub fn decide(
    events: &[LabelEvent],
    pr: &Submission,
    config: &ApprovalsConfig,
    eligible: impl Fn(Role, &str) -> Eligibility,
) -> Approvals {
    let outcome = |role: Role| {
        let label = label_of(config, role).to_string();
        let pending = |note: String| RoleOutcome {
            role,
            label: label.clone(),
            by: None,
            note,
        };
        let Some(e) = current(events, &label) else {
            return pending(format!("waiting for the `{label}` label"));
        };
        if let Some(why) = disqualified(e, pr, config) {
            return pending(why);
        }
        match eligible(role, &e.actor) {
            Eligibility::Yes => RoleOutcome {
                role,
                label: label.clone(),
                by: Some((e.actor.clone(), e.at)),
                note: String::new(),
            },
            Eligibility::No => pending(format!(
                "applied by @{}, who is not a {} reviewer",
                e.actor,
                role.word()
            )),
            Eligibility::Unknown(why) => pending(format!(
                "applied by @{}, who could not be checked: {why}",
                e.actor
            )),
        }
    };
    let product = outcome(Role::Product);
    let mut technical = outcome(Role::Technical);
    if let (Some((p, _)), Some((t, _))) = (&product.by, &technical.by)
        && p.eq_ignore_ascii_case(t)
    {
        technical.note = format!(
            "applied by @{t}, who already approved as product: a second person must approve"
        );
        technical.by = None;
    }
    Approvals {
        product,
        technical,
        tradeoff: outcome(Role::Tradeoff),
    }
}

/// The required status: state and a description of at most [`DESCRIPTION_LIMIT`]
/// characters. Never success on a failure to evaluate.
pub fn status(verdict: &Verdict, approvals: &Approvals) -> (StatusState, String) {
    let (state, text) = match verdict.state {
        State::Error => (StatusState::Error, verdict.headline()),
        State::Blocked => (StatusState::Failure, verdict.headline()),
        State::Pass if verdict.nothing_changed => (StatusState::Success, verdict.headline()),
        State::Pass | State::NeedsTradeoff => {
            let mut missing: Vec<&str> = [&approvals.product, &approvals.technical]
                .into_iter()
                .filter(|o| o.by.is_none())
                .map(|o| o.role.word())
                .collect();
            if verdict.state == State::NeedsTradeoff && approvals.tradeoff.by.is_none() {
                missing.push("trade-off");
            }
            let held = match verdict.state {
                State::NeedsTradeoff if verdict.inconclusive > 0 => {
                    "evidence inconclusive for some segments"
                }
                State::NeedsTradeoff => "quality held, cost or latency over budget",
                _ if verdict.inconclusive > 0 => "passed by policy, some segments inconclusive",
                _ => "evaluation passed",
            };
            if missing.is_empty() {
                (StatusState::Success, format!("{held}; approved"))
            } else {
                (
                    StatusState::Pending,
                    format!("{held}; waiting for {} approval", list(&missing)),
                )
            }
        }
    };
    (state, truncate(&text, DESCRIPTION_LIMIT))
}

/// `a`, `a and b`, `a, b and c`.
fn list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// At most `max` characters, ending in `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GateConfig;

    fn at(s: &str) -> Timestamp {
        format!("2026-01-06T{s}:00Z").parse().expect("timestamp")
    }

    fn ev(applied: bool, label: &str, actor: &str, time: &str) -> LabelEvent {
        LabelEvent {
            applied,
            label: label.into(),
            actor: actor.into(),
            bot: actor.ends_with("[bot]"),
            at: at(time),
        }
    }

    const PRODUCT: &str = "prompt-approved/product";
    const TECHNICAL: &str = "prompt-approved/technical";
    const TRADEOFF: &str = "prompt-tradeoff-accepted";

    fn pr() -> Submission<'static> {
        Submission {
            author: "dana",
            head_arrived_at: at("10:00"),
        }
    }

    /// alice and bob are reviewers of both roles; carol is nobody's; erin's team
    /// cannot be read.
    fn directory(_role: Role, login: &str) -> Eligibility {
        match login {
            "alice" | "bob" | "dana" => Eligibility::Yes,
            "erin" => Eligibility::Unknown("the token cannot read @acme/ml".into()),
            _ => Eligibility::No,
        }
    }

    fn run(events: &[LabelEvent]) -> Approvals {
        decide(events, &pr(), &ApprovalsConfig::default(), directory)
    }

    #[test]
    fn both_roles_approve() {
        let a = run(&[
            ev(true, PRODUCT, "alice", "11:00"),
            ev(true, TECHNICAL, "bob", "11:05"),
        ]);
        assert_eq!(a.product.by, Some(("alice".into(), at("11:00"))));
        assert_eq!(a.technical.by, Some(("bob".into(), at("11:05"))));
        assert_eq!(a.tradeoff.by, None);
    }

    #[test]
    fn one_role_missing() {
        let a = run(&[ev(true, PRODUCT, "alice", "11:00")]);
        assert!(a.product.by.is_some());
        assert_eq!(
            a.technical.note,
            format!("waiting for the `{TECHNICAL}` label")
        );
    }

    #[test]
    fn the_author_cannot_approve_unless_allowed() {
        let events = [ev(true, PRODUCT, "dana", "11:00")];
        let a = run(&events);
        assert_eq!(a.product.by, None);
        assert!(a.product.note.contains("author"), "{}", a.product.note);
        let allowed = ApprovalsConfig {
            allow_author: true,
            ..ApprovalsConfig::default()
        };
        assert!(
            decide(&events, &pr(), &allowed, directory)
                .product
                .by
                .is_some()
        );
    }

    #[test]
    fn bots_and_non_reviewers_do_not_count() {
        let a = run(&[
            ev(true, PRODUCT, "github-actions[bot]", "11:00"),
            ev(true, TECHNICAL, "carol", "11:00"),
        ]);
        assert!(a.product.note.contains("bot"), "{}", a.product.note);
        assert_eq!(
            a.technical.note,
            "applied by @carol, who is not a technical reviewer"
        );
    }

    #[test]
    fn unreadable_membership_never_counts() {
        let a = run(&[ev(true, PRODUCT, "erin", "11:00")]);
        assert_eq!(a.product.by, None);
        assert!(a.product.note.contains("cannot read"), "{}", a.product.note);
    }

    #[test]
    fn removed_and_re_added() {
        let removed = run(&[
            ev(true, PRODUCT, "alice", "11:00"),
            ev(false, PRODUCT, "alice", "11:10"),
        ]);
        assert_eq!(removed.product.by, None);
        let again = run(&[
            ev(true, PRODUCT, "alice", "11:00"),
            ev(false, PRODUCT, "carol", "11:10"),
            ev(true, PRODUCT, "bob", "11:20"),
        ]);
        assert_eq!(again.product.by, Some(("bob".into(), at("11:20"))));
    }

    #[test]
    fn the_latest_application_decides() {
        // alice approved; carol (no reviewer) removed and re-applied it: the label is
        // now carol's, and it does not count.
        let a = run(&[
            ev(true, PRODUCT, "alice", "11:00"),
            ev(false, PRODUCT, "carol", "11:10"),
            ev(true, PRODUCT, "carol", "11:11"),
        ]);
        assert_eq!(a.product.by, None);
    }

    #[test]
    fn labels_before_the_latest_push_are_stale() {
        let events = [ev(true, PRODUCT, "alice", "09:59")];
        let a = run(&events);
        assert_eq!(a.product.by, None);
        assert!(
            a.product.note.contains("before the latest push"),
            "{}",
            a.product.note
        );
        let kept = ApprovalsConfig {
            dismiss_on_push: false,
            ..ApprovalsConfig::default()
        };
        assert!(
            decide(&events, &pr(), &kept, directory)
                .product
                .by
                .is_some()
        );
    }

    #[test]
    fn one_person_cannot_fill_both_roles() {
        let a = run(&[
            ev(true, PRODUCT, "alice", "11:00"),
            ev(true, TECHNICAL, "alice", "11:01"),
        ]);
        assert!(a.product.by.is_some());
        assert_eq!(a.technical.by, None);
        assert!(
            a.technical.note.contains("second person"),
            "{}",
            a.technical.note
        );
    }

    #[test]
    fn only_qualifying_actors_are_looked_up() {
        let events = [
            ev(true, PRODUCT, "alice", "11:00"),
            ev(true, TECHNICAL, "dana", "11:00"),
            ev(true, TRADEOFF, "bob", "09:00"),
        ];
        assert_eq!(
            to_check(&events, &pr(), &ApprovalsConfig::default()),
            vec![(Role::Product, "alice".to_string())]
        );
    }

    fn verdict(state: State) -> Verdict {
        let mut v = crate::policy::decide(&GateConfig::default(), &[], &[]);
        v.state = state;
        v.nothing_changed = false;
        v
    }

    #[test]
    fn status_follows_verdict_and_approvals() {
        let none = run(&[]);
        let both = run(&[
            ev(true, PRODUCT, "alice", "11:00"),
            ev(true, TECHNICAL, "bob", "11:05"),
        ]);
        let with_tradeoff = run(&[
            ev(true, PRODUCT, "alice", "11:00"),
            ev(true, TECHNICAL, "bob", "11:05"),
            ev(true, TRADEOFF, "bob", "11:06"),
        ]);
        assert_eq!(
            status(&verdict(State::Pass), &none),
            (
                StatusState::Pending,
                "evaluation passed; waiting for product and technical approval".into()
            )
        );
        assert_eq!(status(&verdict(State::Pass), &both).0, StatusState::Success);
        assert_eq!(
            status(&verdict(State::NeedsTradeoff), &both),
            (
                StatusState::Pending,
                "quality held, cost or latency over budget; waiting for trade-off approval".into()
            )
        );
        assert_eq!(
            status(&verdict(State::NeedsTradeoff), &with_tradeoff).0,
            StatusState::Success
        );
        // Approvals never turn a failure into success.
        assert_eq!(
            status(&verdict(State::Blocked), &with_tradeoff).0,
            StatusState::Failure
        );
        assert_eq!(
            status(&verdict(State::Error), &with_tradeoff).0,
            StatusState::Error
        );
        let mut nothing = verdict(State::Pass);
        nothing.nothing_changed = true;
        assert_eq!(status(&nothing, &none).0, StatusState::Success);
    }

    #[test]
    fn descriptions_fit_github() {
        let mut v = verdict(State::Blocked);
        v.reasons.push(crate::policy::Reason {
            artifact: Some("support.assistant".into()),
            rule: "gate.critical_segments".into(),
            message: "x".repeat(300),
        });
        let (_, d) = status(&v, &run(&[]));
        assert_eq!(d.chars().count(), DESCRIPTION_LIMIT);
        assert!(d.ends_with('…'));
    }
}
