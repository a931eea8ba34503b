//! The sticky comment: one per pull request, found by its marker *and* its author,
//! updated in place. It carries, hidden, what the evaluation of a head commit decided,
//! so a label change re-runs only the approval step. That record is trusted only from a
//! comment the action itself wrote: anyone can paste the marker into a comment of their
//! own, nobody else can write as the action. Text in the report cannot contain `<!--`
//! (the report escapes every value), so the markers below only ever come from us.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::ApprovalsConfig;
use crate::evidence::Evidence;
use crate::github::Comment;
use crate::policy::Verdict;
use crate::report::{APPROVALS_END, APPROVALS_START};

/// First line of every comment the action writes.
pub const MARKER: &str = "<!-- promptgate:report -->";
const DATA_OPEN: &str = "<!-- promptgate:data ";
const DATA_CLOSE: &str = " -->";
const SCHEMA: &str = "promptgate.comment/v1";
/// Items kept per verdict list in the record.
const KEPT: usize = 10;

/// What an evaluation of one head commit decided, kept in the comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub schema: String,
    pub head_sha: String,
    /// When the head commit arrived, for `dismiss_on_push`.
    pub head_arrived_at: Timestamp,
    pub verdict: Verdict,
    pub regressions: usize,
    /// The policy's approval rules, as evaluated.
    pub approval_rules: ApprovalsConfig,
}

impl Record {
    pub fn new(
        head_sha: &str,
        head_arrived_at: Timestamp,
        evidence: &Evidence,
        regressions: usize,
    ) -> Record {
        let mut verdict = evidence.verdict.clone();
        // The status needs the state and the first reasons; the report has the rest.
        verdict.notes.clear();
        for list in [
            &mut verdict.reasons,
            &mut verdict.errors,
            &mut verdict.tradeoffs,
        ] {
            list.truncate(KEPT);
            for r in list.iter_mut() {
                r.message = crate::approval::truncate(&r.message, 300);
            }
        }
        Record {
            schema: SCHEMA.into(),
            head_sha: head_sha.into(),
            head_arrived_at,
            verdict,
            regressions,
            approval_rules: evidence.approval_rules.clone(),
        }
    }
}

/// The comment body: marker, report, hidden record.
pub fn compose(report: &str, record: &Record) -> String {
    let json = serde_json::to_string(record).unwrap_or_default();
    // `<` and `>` only occur inside JSON strings: escaping them keeps the record valid
    // JSON and makes `-->` impossible inside the HTML comment.
    let json = json.replace('<', "\\u003c").replace('>', "\\u003e");
    format!("{MARKER}\n{report}\n{DATA_OPEN}{json}{DATA_CLOSE}\n")
}

/// The action's own comment: it carries the marker and `author` wrote it. The oldest
/// wins if there are several.
pub fn find_ours<'c>(comments: &'c [Comment], author: &str) -> Option<&'c Comment> {
    comments.iter().find(|c| {
        c.body
            .as_deref()
            .is_some_and(|b| b.trim_start().starts_with(MARKER))
            && c.user
                .as_ref()
                .is_some_and(|u| u.login.eq_ignore_ascii_case(author))
    })
}

/// The record in a body we wrote, if it is there and readable.
pub fn record(body: &str) -> Option<Record> {
    let start = body.rfind(DATA_OPEN)? + DATA_OPEN.len();
    let end = start + body[start..].find(DATA_CLOSE)?;
    let record: Record = serde_json::from_str(&body[start..end]).ok()?;
    (record.schema == SCHEMA).then_some(record)
}

/// Around the notice a failed run puts at the top of the comment.
const FAILED_START: &str = "<!-- promptgate:failed -->";
const FAILED_END: &str = "<!-- /promptgate:failed -->";

/// `body` after a run that failed with `why`: a notice under the marker says so (once,
/// however many runs failed), and the approvals section, if there is one, no longer
/// shows approvals this run could not check. The report below is left as it was: it
/// says what the last evaluation found, and the notice says it may be stale.
pub fn mark_failed(body: &str, why: &str, run_url: Option<&str>) -> String {
    let body = clear_failed(body);
    let log = match run_url {
        Some(url) => format!("[the workflow run]({url})"),
        None => "the workflow run".to_string(),
    };
    let notice = format!(
        "{FAILED_START}\n> [!CAUTION]\n> **This run failed**, and the status is `error`: {}. The log is in {log}; what follows is from the last evaluation and may be stale.\n{FAILED_END}\n",
        crate::markup::markdown::text(why.trim_end_matches('.'))
    );
    let section = format!(
        "{APPROVALS_START}\n\n⚠️ Approvals not checked: this run failed.\n\n{APPROVALS_END}"
    );
    let body = replace_approvals(&body, &section).unwrap_or(body);
    match body.strip_prefix(MARKER) {
        Some(rest) => format!("{MARKER}\n{notice}{}", rest.trim_start_matches('\n')),
        None => format!("{notice}{body}"),
    }
}

/// `body` without the notice of a failed run ([`mark_failed`]).
pub fn clear_failed(body: &str) -> String {
    let Some(start) = body.find(FAILED_START) else {
        return body.to_string();
    };
    let Some(len) = body[start..].find(FAILED_END) else {
        return body.to_string();
    };
    let end = start + len + FAILED_END.len();
    let end = end + usize::from(body[end..].starts_with('\n'));
    format!("{}{}", &body[..start], &body[end..])
}

/// `body` with its approvals section replaced by `section` (markers included), or
/// `None` if the body has no such section (a custom template without it).
pub fn replace_approvals(body: &str, section: &str) -> Option<String> {
    let start = body.find(APPROVALS_START)?;
    let end = start + body[start..].find(APPROVALS_END)? + APPROVALS_END.len();
    let section = section.trim_end_matches('\n');
    Some(format!("{}{section}{}", &body[..start], &body[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::User;

    fn record() -> Record {
        Record::new(
            "abc123",
            "2026-01-06T10:00:00Z".parse().expect("ts"),
            &Evidence::empty(),
            0,
        )
    }

    fn comment(id: u64, login: &str, body: &str) -> Comment {
        Comment {
            id,
            body: Some(body.into()),
            user: Some(User {
                login: login.into(),
                kind: "Bot".into(),
            }),
        }
    }

    #[test]
    fn the_record_round_trips_and_cannot_close_the_html_comment() {
        let mut r = record();
        r.verdict.reasons.push(crate::policy::Reason {
            artifact: None,
            rule: "gate.critical_segments".into(),
            message: "model said --> <!-- promptgate:data {} -->".into(),
        });
        r.head_sha = "<!-- --> sha".into();
        let body = compose("## report", &r);
        assert_eq!(body.matches("-->").count(), 2, "{body}");
        assert_eq!(super::record(&body), Some(r));
    }

    #[test]
    fn the_record_keeps_what_the_status_needs() {
        let mut e = Evidence::empty();
        e.verdict.notes.push("a note".into());
        for i in 0..30 {
            e.verdict.reasons.push(crate::policy::Reason {
                artifact: None,
                rule: "gate.max_segment_drop".into(),
                message: format!("reason {i} {}", "x".repeat(500)),
            });
        }
        let r = Record::new("abc", "2026-01-06T10:00:00Z".parse().expect("ts"), &e, 3);
        assert!(r.verdict.notes.is_empty());
        assert_eq!(r.verdict.reasons.len(), KEPT);
        // Small next to the report: the comment's room goes to the evidence.
        assert!(compose("", &r).len() < 8 * 1024);
    }

    #[test]
    fn only_our_marked_comment_counts() {
        let ours = compose("report", &record());
        let comments = [
            comment(1, "mallory", &ours),
            comment(2, "github-actions[bot]", "unrelated"),
            comment(3, "github-actions[bot]", &ours),
            comment(4, "github-actions[bot]", &ours),
        ];
        assert_eq!(
            find_ours(&comments, "GitHub-Actions[bot]").map(|c| c.id),
            Some(3)
        );
        assert!(find_ours(&comments[..2], "github-actions[bot]").is_none());
    }

    #[test]
    fn approvals_are_replaced_in_place() {
        let body = format!("head\n{APPROVALS_START}\nold\n{APPROVALS_END}\ntail\n");
        assert_eq!(
            replace_approvals(&body, &format!("{APPROVALS_START}\nnew\n{APPROVALS_END}\n"))
                .as_deref(),
            Some(format!("head\n{APPROVALS_START}\nnew\n{APPROVALS_END}\ntail\n").as_str())
        );
        assert_eq!(replace_approvals("no section", "x"), None);
    }

    #[test]
    fn a_failed_run_says_so_once_and_drops_the_approvals_it_did_not_check() {
        let body = compose(
            &format!("## report\n{APPROVALS_START}\n| product | ✅ @alice |\n{APPROVALS_END}\n"),
            &record(),
        );
        let failed = mark_failed(&body, "promptgate failed: GitHub 502: <b>@bob</b>", None);
        assert!(failed.starts_with(MARKER), "{failed}");
        assert!(failed.contains("**This run failed**"), "{failed}");
        assert!(!failed.contains("✅ @"), "{failed}");
        assert!(
            !failed.contains("<b>") && !failed.contains("@bob"),
            "{failed}"
        );
        assert_eq!(super::record(&failed), Some(record()));
        // Failing again keeps one notice; clearing it gives the body back.
        let twice = mark_failed(&failed, "again", Some("https://github.example/run"));
        assert_eq!(twice.matches(FAILED_START).count(), 1, "{twice}");
        assert!(twice.contains("(https://github.example/run)"));
        let cleared = clear_failed(&twice);
        assert!(!cleared.contains("This run failed"), "{cleared}");
        assert!(
            cleared.starts_with(&format!("{MARKER}\n## report")),
            "{cleared}"
        );
        assert_eq!(clear_failed(&body), body);
    }
}
