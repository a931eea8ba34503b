//! `changes` output: text for terminals, JSON for machines, markdown for PR comments.

use std::fmt::Write;

use super::{ArtifactChange, ChangeKind, ChangeSet};
use crate::artifact::fingerprint::short;
use crate::markup::markdown::{block, code};

fn short_sha(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

fn version_text(change: &ArtifactChange) -> Option<String> {
    let v0 = change.base.as_ref().and_then(|s| s.version.clone());
    let v1 = change.head.as_ref().and_then(|s| s.version.clone());
    match (v0, v1) {
        (Some(a), Some(b)) if a == b => Some(format!("v{a}")),
        (Some(a), Some(b)) => Some(format!("v{a} → v{b}")),
        (None, Some(b)) => Some(format!("v{b}")),
        (Some(a), None) => Some(format!("v{a}")),
        (None, None) => None,
    }
}

fn fingerprint_text(change: &ArtifactChange) -> Option<String> {
    let f0 = change.base.as_ref().and_then(|s| s.fingerprint.as_deref());
    let f1 = change.head.as_ref().and_then(|s| s.fingerprint.as_deref());
    match (f0, f1) {
        (Some(a), Some(b)) if a == b => Some(short(a).to_string()),
        (Some(a), Some(b)) => Some(format!("{} → {}", short(a), short(b))),
        (None, Some(b)) => Some(short(b).to_string()),
        (Some(a), None) => Some(short(a).to_string()),
        (None, None) => None,
    }
}

fn location(change: &ArtifactChange) -> String {
    match (&change.base, &change.head, change.kind) {
        (Some(b), Some(h), ChangeKind::Renamed) => format!("{} → {}", b.path, h.path),
        _ => change.path().to_string(),
    }
}

fn summary(set: &ChangeSet) -> String {
    let behaviour = set.behaviour_changes().count();
    let evals = set.evals_only().count();
    let touched = set.touched_only().count();
    if set.artifacts.is_empty() {
        return format!(
            "{} file(s) changed; no prompt artifact changed",
            set.files_changed
        );
    }
    format!(
        "{} file(s) changed; {behaviour} artifact(s) changed behaviour, {evals} changed only their eval set, {touched} touched without behaviour change",
        set.files_changed
    )
}

/// Plain text for a terminal; control characters quoted from the pull request are
/// written as escapes.
pub fn text(set: &ChangeSet) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({}) against {}, from their merge-base {}",
        set.head,
        short_sha(&set.head_commit),
        set.base,
        short_sha(&set.merge_base)
    );
    let _ = writeln!(out, "{}", summary(set));
    let sections: [(&str, Vec<&ArtifactChange>); 3] = [
        ("Behaviour changes", set.behaviour_changes().collect()),
        (
            "Eval set changed, behaviour unchanged",
            set.evals_only().collect(),
        ),
        (
            "Touched without behaviour change (fingerprint unchanged)",
            set.touched_only().collect(),
        ),
    ];
    for (title, changes) in sections {
        if changes.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title}:");
        for c in changes {
            let mut line = format!("  {:<8} {}  {}", c.kind.word(), c.id, location(c));
            if let Some(v) = version_text(c) {
                line.push_str(&format!("  {v}"));
            }
            if let Some(f) = fingerprint_text(c) {
                line.push_str(&format!("  fingerprint {f}"));
            }
            let _ = writeln!(out, "{line}");
            if c.missing_version_bump {
                let _ = writeln!(
                    out,
                    "      ! behaviour changed but `version` was not bumped"
                );
            }
            for p in &c.problems {
                let _ = writeln!(out, "      ! {p}");
            }
            for r in &c.changed_references {
                let _ = writeln!(out, "      changed file: {r}");
            }
            let width = c.fields.iter().map(|f| f.field.len()).max().unwrap_or(0);
            for f in &c.fields {
                let value = match (&f.before, &f.after) {
                    (Some(b), Some(a)) => format!("{b} → {a}"),
                    (None, Some(a)) => a.clone(),
                    (Some(b), None) => format!("{b} → (unset)"),
                    (None, None) => String::new(),
                };
                let _ = writeln!(out, "      {:<width$}  {value}", f.field);
            }
            if let Some(diff) = &c.message_diff {
                for l in diff.lines() {
                    let _ = writeln!(out, "      {l}");
                }
            }
        }
    }
    crate::diag::terminal_text(out)
}

/// Pretty JSON (schema `promptgate.changes/v1`).
pub fn json(set: &ChangeSet) -> String {
    serde_json::to_string_pretty(set).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Markdown for a pull-request comment.
pub fn markdown(set: &ChangeSet) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### Prompt artifact changes\n");
    let _ = writeln!(
        out,
        "{} at `{}` against {}, from their merge-base `{}`: {}.\n",
        code(&set.head),
        short_sha(&set.head_commit),
        code(&set.base),
        short_sha(&set.merge_base),
        summary(set)
    );
    if set.artifacts.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "| | Artifact | Path | Version | Fingerprint | Behaviour |\n|---|---|---|---|---|---|"
    );
    for c in &set.artifacts {
        let behaviour = if c.behaviour_changed {
            if c.missing_version_bump {
                "changed, **version not bumped**"
            } else {
                "changed"
            }
        } else if c.evals_changed {
            "unchanged (eval set changed)"
        } else {
            "unchanged"
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {behaviour} |",
            c.kind.word(),
            code(&c.id),
            code(&location(c)),
            version_text(c).unwrap_or_default(),
            fingerprint_text(c).map(|f| code(&f)).unwrap_or_default(),
        );
    }
    for c in set
        .artifacts
        .iter()
        .filter(|c| !c.fields.is_empty() || c.message_diff.is_some() || !c.problems.is_empty())
    {
        // Markdown does not render inside <summary>; HTML does.
        let _ = writeln!(
            out,
            "\n<details><summary><code>{}</code></summary>\n",
            html_escape(&c.id)
        );
        for p in &c.problems {
            let _ = writeln!(out, "- ⚠️ {}", code(&p.to_string()));
        }
        for r in &c.changed_references {
            let _ = writeln!(out, "- changed file {}", code(r));
        }
        for f in &c.fields {
            let value = match (&f.before, &f.after) {
                (Some(b), Some(a)) => format!("{} → {}", code(b), code(a)),
                (None, Some(a)) => code(a),
                (Some(b), None) => format!("{} → unset", code(b)),
                (None, None) => String::new(),
            };
            let _ = writeln!(out, "- {} {value}", code(&f.field));
        }
        if let Some(diff) = &c.message_diff {
            let _ = writeln!(out, "\n{}", block(diff, "diff"));
        }
        let _ = writeln!(out, "\n</details>");
    }
    out
}
