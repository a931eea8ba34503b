//! What the report template sees: the evidence with lists cut to the current
//! [`Limits`] ("and N more"), excerpts shortened and figures formatted.

use serde::Serialize;

use crate::changes::ChangeKind;
use crate::changes::fields::FieldChange;
use crate::compare::{CaseNote, Comparison, Figures, Flip, SegmentRow, SequenceChange, relative};
use crate::eval::result::Outcome;
use crate::evidence::{ArtifactEvidence, Evidence, RoleState, Status};
use crate::policy::{Reason, State};

/// How much the report shows; the ladder goes from everything useful to the bare minimum.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Entries per list (regressions, improvements, cases, fields…).
    pub list: usize,
    /// Characters per output excerpt.
    pub excerpt: usize,
    /// Lines of instruction diff.
    pub diff_lines: usize,
    /// Segment rows per artifact.
    pub segments: usize,
    /// Artifacts shown in detail.
    pub artifacts: usize,
}

impl Limits {
    pub const LADDER: [Limits; 6] = [
        Limits {
            list: 25,
            excerpt: 600,
            diff_lines: 300,
            segments: 60,
            artifacts: 40,
        },
        Limits {
            list: 15,
            excerpt: 300,
            diff_lines: 120,
            segments: 40,
            artifacts: 25,
        },
        Limits {
            list: 8,
            excerpt: 160,
            diff_lines: 60,
            segments: 25,
            artifacts: 15,
        },
        Limits {
            list: 5,
            excerpt: 100,
            diff_lines: 30,
            segments: 15,
            artifacts: 10,
        },
        Limits {
            list: 3,
            excerpt: 60,
            diff_lines: 10,
            segments: 10,
            artifacts: 5,
        },
        Limits {
            list: 1,
            excerpt: 40,
            diff_lines: 0,
            segments: 5,
            artifacts: 2,
        },
    ];
}

/// A list cut to a limit, with how many were left out.
#[derive(Debug, Clone, Serialize)]
pub struct Cut<T> {
    pub items: Vec<T>,
    pub more: usize,
    pub total: usize,
}

impl<T> Cut<T> {
    /// The first `limit` of `items`, made by `f` (only those are made).
    fn map<S>(items: impl IntoIterator<Item = S>, limit: usize, mut f: impl FnMut(S) -> T) -> Self {
        let mut cut = Cut {
            items: Vec::new(),
            more: 0,
            total: 0,
        };
        for item in items {
            cut.total += 1;
            if cut.items.len() < limit {
                cut.items.push(f(item));
            } else {
                cut.more += 1;
            }
        }
        cut
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FlipView {
    pub id: String,
    pub segments: Vec<String>,
    pub file: String,
    pub line: usize,
    pub critical: bool,
    pub new: bool,
    /// `passed/samples`, e.g. `2/3`.
    pub base: Option<String>,
    pub head: String,
    pub failed: Cut<String>,
    pub base_excerpt: Option<String>,
    pub head_excerpt: String,
    /// The answer shown is a refusal the API marked as one.
    pub base_refusal: bool,
    pub head_refusal: bool,
}

/// Cases that could not be evaluated for one reason.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorGroup {
    pub message: String,
    pub cases: Cut<String>,
}

fn error_groups(notes: &[CaseNote], limits: Limits) -> Cut<ErrorGroup> {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for n in notes {
        let message = n.error.as_deref().unwrap_or("not evaluated");
        match groups.iter_mut().find(|(m, _)| m == message) {
            Some((_, ids)) => ids.push(&n.id),
            None => groups.push((message.to_string(), vec![&n.id])),
        }
    }
    groups.sort_by_key(|(_, ids)| std::cmp::Reverse(ids.len()));
    Cut::map(groups, limits.list, |(message, ids)| ErrorGroup {
        message: excerpt(&message, limits.excerpt.clamp(80, 300)),
        cases: Cut::map(ids, limits.list * 2, str::to_string),
    })
}

/// One line of a base-vs-head table.
#[derive(Debug, Clone, Serialize)]
pub struct FigureRow {
    pub label: &'static str,
    pub base: String,
    pub head: String,
    pub change: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComparisonView {
    pub has_base: bool,
    pub repeats: u32,
    pub overall: SegmentRow,
    pub segments: Cut<SegmentRow>,
    pub regressions: Cut<FlipView>,
    pub improvements: Cut<FlipView>,
    pub unstable: Cut<FlipView>,
    pub failures: Cut<FlipView>,
    pub new_cases: Cut<CaseNote>,
    pub deleted_cases: Cut<CaseNote>,
    /// Deleted cases that failed on base.
    pub deleted_failing: usize,
    /// Cases that could not be evaluated, grouped by why.
    pub errored: Cut<ErrorGroup>,
    pub errored_cases: usize,
    pub error_rate: f64,
    pub cost: Vec<FigureRow>,
    pub behaviour: Vec<FigureRow>,
    pub tool_sequence_changes: Cut<SequenceChange>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactView {
    pub id: String,
    pub path: String,
    pub kind: &'static str,
    pub status: Status,
    pub base_version: Option<String>,
    pub head_version: Option<String>,
    pub base_fingerprint: Option<String>,
    pub head_fingerprint: Option<String>,
    pub behaviour_changed: bool,
    pub missing_version_bump: bool,
    pub changed_references: Cut<String>,
    pub fields: Cut<FieldChange>,
    pub diff: Option<String>,
    pub diff_more_lines: usize,
    pub problems: Cut<String>,
    pub known_limitations: Vec<String>,
    pub comparison: Option<ComparisonView>,
}

/// One line of the overview table.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryRow {
    pub id: String,
    pub kind: &'static str,
    pub status: Status,
    pub base_version: Option<String>,
    pub head_version: Option<String>,
    pub missing_version_bump: bool,
    pub base_rate: Option<f64>,
    pub head_rate: Option<f64>,
    pub regressions: usize,
    pub cost_change: String,
    /// The cost a month at production traffic, when the config gives it.
    pub monthly: Option<String>,
    pub p95_change: String,
}

fn summary_row(a: &ArtifactEvidence) -> SummaryRow {
    let c = a.comparison.as_ref();
    SummaryRow {
        id: a.change.id.clone(),
        kind: a.change.kind.word(),
        status: a.status,
        base_version: a.change.base.as_ref().and_then(|s| s.version.clone()),
        head_version: a.change.head.as_ref().and_then(|s| s.version.clone()),
        missing_version_bump: a.change.missing_version_bump,
        base_rate: c.and_then(|c| c.overall.base_rate),
        head_rate: c.and_then(|c| c.overall.head_rate),
        regressions: c.map_or(0, |c| {
            if c.has_base {
                c.regressions.len()
            } else {
                c.failures.len()
            }
        }),
        monthly: a
            .monthly
            .as_ref()
            .map(crate::compare::artifact::Monthly::words),
        // A new artifact has nothing to change from: its own figures.
        cost_change: c.map_or("–".into(), |c| match c.has_base {
            true => change(
                c.base.spend.cost_per_1k_requests_usd,
                c.head.spend.cost_per_1k_requests_usd,
            ),
            false => opt(c.head.spend.cost_per_1k_requests_usd, |v| {
                format!("${v:.4}")
            }),
        }),
        p95_change: c.map_or("–".into(), |c| match c.has_base {
            true => change(c.base.spend.latency_p95_ms, c.head.spend.latency_p95_ms),
            false => opt(c.head.spend.latency_p95_ms, |v| format!("{v:.0} ms")),
        }),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub state: State,
    /// The verdict in a few words, with an emoji.
    pub title: String,
    pub headline: String,
    /// Why it blocks, then why it could not decide.
    pub reasons: Cut<Reason>,
    /// Budgets over that the trade-off label accepts.
    pub tradeoffs: Cut<Reason>,
    pub notes: Cut<String>,
    pub base: String,
    pub head: String,
    pub merge_base: String,
    pub head_commit: String,
    pub files_changed: usize,
    pub policy_from_head: bool,
    pub config_changed: bool,
    /// `gate.max_segment_drop`, for the footnote.
    pub allowed_drop: f64,
    pub tradeoff_label: String,
    /// Artifacts shown in detail (those that were evaluated or are invalid).
    pub artifacts: Cut<ArtifactView>,
    /// Every changed artifact but the untouched ones, one line each.
    pub summary: Cut<SummaryRow>,
    /// Artifacts touched without behaviour change.
    pub unchanged: Cut<String>,
    pub approvals: Vec<RoleState>,
    pub reproduce: String,
}

fn excerpt(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}… ({} more characters)", count - max)
    }
}

fn flip_view(f: &Flip, limits: Limits) -> FlipView {
    let passes = |p: crate::compare::Passes| format!("{}/{}", p.passed, p.samples);
    FlipView {
        id: f.id.clone(),
        segments: f.segments.clone(),
        file: f.file.clone(),
        line: f.line,
        critical: f.critical,
        new: f.new,
        base: f.base.map(passes),
        head: passes(f.head),
        failed: Cut::map(&f.failed, limits.list.max(3), |r| excerpt(r, 200)),
        base_excerpt: f.base_text.as_deref().map(|t| excerpt(t, limits.excerpt)),
        head_excerpt: excerpt(&f.head_text, limits.excerpt),
        base_refusal: f.base_refusal,
        head_refusal: f.head_refusal,
    }
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "–".to_string(), f)
}

fn change(base: Option<f64>, head: Option<f64>) -> String {
    opt(relative(base, head), |r| {
        if r.abs() < 0.0005 {
            "±0%".into()
        } else {
            format!("{:+.1}%", r * 100.0)
        }
    })
}

fn count_change(base: u64, head: u64) -> String {
    change(Some(base as f64), Some(head as f64))
}

fn usd(v: f64) -> String {
    if v >= 1.0 {
        format!("${v:.2}")
    } else {
        format!("${v:.4}")
    }
}

fn rate_points(base: Option<f64>, head: Option<f64>) -> String {
    opt(base.zip(head), |(b, h)| {
        format!("{:+.1} points", (h - b) * 100.0)
    })
}

fn cost_rows(b: &Figures, h: &Figures, has_base: bool) -> Vec<FigureRow> {
    let side = |present: bool, s: String| if present { s } else { "–".into() };
    let est = |f: &Figures| {
        if f.spend.tokens_estimated {
            " (estimated)"
        } else {
            ""
        }
    };
    let row = |label, base: String, head: String, change: String| FigureRow {
        label,
        base: side(has_base, base),
        head,
        change: side(has_base, change),
    };
    vec![
        row(
            "Tokens in",
            format!("{}{}", b.spend.input_tokens, est(b)),
            format!("{}{}", h.spend.input_tokens, est(h)),
            count_change(b.spend.input_tokens, h.spend.input_tokens),
        ),
        row(
            "Tokens out",
            format!("{}{}", b.spend.output_tokens, est(b)),
            format!("{}{}", h.spend.output_tokens, est(h)),
            count_change(b.spend.output_tokens, h.spend.output_tokens),
        ),
        row(
            "Cost per 1,000 requests",
            opt(b.spend.cost_per_1k_requests_usd, usd),
            opt(h.spend.cost_per_1k_requests_usd, usd),
            change(
                b.spend.cost_per_1k_requests_usd,
                h.spend.cost_per_1k_requests_usd,
            ),
        ),
        row(
            "Latency p50",
            opt(b.spend.latency_p50_ms, |v| format!("{v:.0} ms")),
            opt(h.spend.latency_p50_ms, |v| format!("{v:.0} ms")),
            change(b.spend.latency_p50_ms, h.spend.latency_p50_ms),
        ),
        row(
            "Latency p95",
            opt(b.spend.latency_p95_ms, |v| format!("{v:.0} ms")),
            opt(h.spend.latency_p95_ms, |v| format!("{v:.0} ms")),
            change(b.spend.latency_p95_ms, h.spend.latency_p95_ms),
        ),
    ]
}

fn behaviour_rows(b: &Figures, h: &Figures, has_base: bool) -> Vec<FigureRow> {
    let p = |v: Option<f64>| opt(v, |x| format!("{:.1}%", x * 100.0));
    let mut rows = vec![
        FigureRow {
            label: "Refusal rate",
            base: p(b.refusal_rate),
            head: p(h.refusal_rate),
            change: rate_points(b.refusal_rate, h.refusal_rate),
        },
        FigureRow {
            label: "Mean words per answer",
            base: opt(b.mean_words, |v| format!("{v:.1}")),
            head: opt(h.mean_words, |v| format!("{v:.1}")),
            change: change(b.mean_words, h.mean_words),
        },
    ];
    if b.json_valid_rate.unwrap_or(0.0) > 0.0 || h.json_valid_rate.unwrap_or(0.0) > 0.0 {
        rows.push(FigureRow {
            label: "Valid JSON answers",
            base: p(b.json_valid_rate),
            head: p(h.json_valid_rate),
            change: rate_points(b.json_valid_rate, h.json_valid_rate),
        });
    }
    if !has_base {
        for r in &mut rows {
            r.base = "–".into();
            r.change = "–".into();
        }
    }
    rows
}

fn comparison_view(c: &Comparison, limits: Limits) -> ComparisonView {
    let flips = |list: &[Flip]| Cut::map(list, limits.list, |f| flip_view(f, limits));
    ComparisonView {
        has_base: c.has_base,
        repeats: c.repeats,
        overall: c.overall.clone(),
        segments: Cut::map(&c.segments, limits.segments, Clone::clone),
        regressions: flips(&c.regressions),
        improvements: flips(&c.improvements),
        unstable: flips(&c.unstable),
        failures: flips(&c.failures),
        new_cases: Cut::map(&c.new_cases, limits.list, Clone::clone),
        deleted_failing: c
            .deleted_cases
            .iter()
            .filter(|d| d.base == Some(Outcome::Fail))
            .count(),
        deleted_cases: Cut::map(&c.deleted_cases, limits.list, Clone::clone),
        errored: error_groups(&c.errored, limits),
        errored_cases: c.errored.len(),
        error_rate: c.error_rate,
        cost: cost_rows(&c.base, &c.head, c.has_base),
        behaviour: behaviour_rows(&c.base, &c.head, c.has_base),
        tool_sequence_changes: Cut::map(&c.tool_sequence_changes, limits.list, Clone::clone),
    }
}

fn artifact_view(a: &ArtifactEvidence, limits: Limits) -> ArtifactView {
    let ch = &a.change;
    let short = |f: &Option<String>| {
        f.as_deref()
            .map(|f| crate::artifact::fingerprint::short(f).to_string())
    };
    let (diff, diff_more_lines) = match &ch.message_diff {
        Some(d) if limits.diff_lines > 0 => {
            let lines: Vec<&str> = d.lines().collect();
            let shown = lines.len().min(limits.diff_lines);
            (Some(lines[..shown].join("\n")), lines.len() - shown)
        }
        Some(d) => (None, d.lines().count()),
        None => (None, 0),
    };
    ArtifactView {
        id: ch.id.clone(),
        path: match (&ch.base, &ch.head, ch.kind) {
            (Some(b), Some(h), ChangeKind::Renamed) => format!("{} → {}", b.path, h.path),
            _ => ch.path().to_string(),
        },
        kind: ch.kind.word(),
        status: a.status,
        base_version: ch.base.as_ref().and_then(|s| s.version.clone()),
        head_version: ch.head.as_ref().and_then(|s| s.version.clone()),
        base_fingerprint: ch.base.as_ref().and_then(|s| short(&s.fingerprint)),
        head_fingerprint: ch.head.as_ref().and_then(|s| short(&s.fingerprint)),
        behaviour_changed: ch.behaviour_changed,
        missing_version_bump: ch.missing_version_bump,
        changed_references: Cut::map(&ch.changed_references, limits.list, Clone::clone),
        fields: Cut::map(&ch.fields, limits.list.max(10), |f| FieldChange {
            before: f.before.as_ref().map(|b| excerpt(b, 120)),
            after: f.after.as_ref().map(|a| excerpt(a, 120)),
            ..f.clone()
        }),
        diff,
        diff_more_lines,
        problems: Cut::map(&ch.problems, limits.list, ToString::to_string),
        known_limitations: a.known_limitations.clone(),
        comparison: a.comparison.as_ref().map(|c| comparison_view(c, limits)),
    }
}

impl View {
    pub fn new(e: &Evidence, limits: Limits) -> View {
        let inconclusive = e.verdict.inconclusive;
        let title = match e.verdict.state {
            State::Pass if inconclusive > 0 => {
                format!("✅ Passed by policy; {inconclusive} segment(s) inconclusive")
            }
            State::Pass => "✅ Evaluation passed".to_string(),
            State::NeedsTradeoff if inconclusive > 0 => format!(
                "❔ Inconclusive: {inconclusive} segment(s) need a reviewer's trade-off approval"
            ),
            State::NeedsTradeoff => {
                "⚖️ Quality held; cost or latency needs a trade-off approval".to_string()
            }
            State::Blocked => "❌ Blocked".to_string(),
            State::Error => "⚠️ Could not evaluate".to_string(),
        };
        let detailed = e.artifacts.iter().filter(|a| {
            matches!(
                a.status,
                Status::Compared | Status::HeadOnly | Status::Invalid
            )
        });
        let listed = e.artifacts.iter().filter(|a| a.status != Status::Unchanged);
        View {
            state: e.verdict.state,
            title,
            allowed_drop: e.policy.max_segment_drop,
            headline: e.verdict.headline(),
            reasons: Cut::map(
                e.verdict.reasons.iter().chain(&e.verdict.errors),
                limits.list * 2,
                Clone::clone,
            ),
            tradeoffs: Cut::map(&e.verdict.tradeoffs, limits.list * 2, Clone::clone),
            notes: Cut::map(&e.verdict.notes, limits.list * 2, Clone::clone),
            base: e.base.clone(),
            head: e.head.clone(),
            merge_base: e.merge_base.clone(),
            head_commit: e.head_commit.clone(),
            files_changed: e.files_changed,
            policy_from_head: e.policy_source == crate::evidence::PolicySource::Head,
            config_changed: e.config_changed,
            tradeoff_label: e.tradeoff_label.clone(),
            artifacts: Cut::map(detailed, limits.artifacts, |a| artifact_view(a, limits)),
            summary: Cut::map(listed, limits.artifacts * 4, summary_row),
            unchanged: Cut::map(
                e.artifacts.iter().filter(|a| a.status == Status::Unchanged),
                limits.list * 2,
                |a| a.change.id.clone(),
            ),
            approvals: e.approvals.clone(),
            reproduce: e.reproduce.clone(),
        }
    }
}
