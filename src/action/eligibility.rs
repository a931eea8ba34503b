//! Who may approve: the lookups on GitHub (team membership, repository permission)
//! behind [`crate::approval`]'s pure decision.

use crate::approval::{Eligibility, Role};
use crate::config::{ApprovalsConfig, Permission};
use crate::github::GitHub;

/// Whether `login` may approve `role`: listed by login, an active member of a listed
/// team, or at least the role's `min_permission` on the repository. Anyone who may
/// approve either role may accept a trade-off. Lookups that fail make the answer
/// unknown, which never counts.
pub async fn eligibility(
    gh: &GitHub,
    rules: &ApprovalsConfig,
    role: Role,
    login: &str,
) -> Eligibility {
    let roles = match role {
        Role::Product => vec![&rules.product],
        Role::Technical => vec![&rules.technical],
        Role::Tradeoff => vec![&rules.product, &rules.technical],
    };
    let mut unknown = None;
    for r in roles {
        for reviewer in &r.reviewers {
            match reviewer.strip_prefix('@').and_then(|t| t.split_once('/')) {
                Some((org, team)) => match gh.team_member(org, team, login).await {
                    Ok(true) => return Eligibility::Yes,
                    Ok(false) => {}
                    Err(e) => unknown = Some(format!("{e:#}")),
                },
                None if reviewer.trim_start_matches('@').eq_ignore_ascii_case(login) => {
                    return Eligibility::Yes;
                }
                None => {}
            }
        }
        if let Some(min) = r.min_permission {
            match gh.permission(login).await {
                Ok(p) if rank(&p) >= permission_rank(min) => {
                    return Eligibility::Yes;
                }
                Ok(_) => {}
                Err(e) => unknown = Some(format!("{e:#}")),
            }
        }
    }
    unknown.map_or(Eligibility::No, Eligibility::Unknown)
}

fn rank(role_name: &str) -> u8 {
    match role_name {
        "admin" => 5,
        "maintain" => 4,
        "write" => 3,
        "triage" => 2,
        "read" => 1,
        _ => 0,
    }
}

fn permission_rank(p: Permission) -> u8 {
    match p {
        Permission::Admin => 5,
        Permission::Maintain => 4,
        Permission::Write => 3,
        Permission::Triage => 2,
        Permission::Read => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_rank_as_github_orders_them() {
        let order = [
            (Permission::Read, "read"),
            (Permission::Triage, "triage"),
            (Permission::Write, "write"),
            (Permission::Maintain, "maintain"),
            (Permission::Admin, "admin"),
        ];
        for pair in order.windows(2) {
            assert!(permission_rank(pair[0].0) < permission_rank(pair[1].0));
            assert!(rank(pair[0].1) < rank(pair[1].1));
        }
        for (p, name) in order {
            assert_eq!(rank(name), permission_rank(p), "{name}");
        }
        assert_eq!(rank("none"), 0, "no access ranks below read");
    }
}
