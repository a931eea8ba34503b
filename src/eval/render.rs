//! `eval` output: a table for people and JUnit XML for CI test tabs (JSON, for machines
//! and `merge`, is the result serialized as it is).

use std::fmt::Write;

use super::assertions::Judgement;
use super::result::{CaseResult, EvalReport, Outcome, RunReport, Summary, Tally};
use crate::artifact::fingerprint::short;
use crate::markup::xml::escape as xml;

/// Failing cases listed per run in the table before "and N more".
const LISTED: usize = 20;

pub fn table(report: &EvalReport) -> String {
    let mut out = String::new();
    for (i, r) in report.runs.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        run_table(r, &mut out);
    }
    if report.runs.is_empty() {
        out.push_str("no artifact to evaluate\n");
    }
    crate::diag::terminal_text(out)
}

fn run_table(r: &RunReport, out: &mut String) {
    let a = &r.run.artifact;
    let s = &r.summary;
    let _ = write!(out, "{}", a.id);
    if let Some(v) = &a.version {
        let _ = write!(out, " v{v}");
    }
    let _ = write!(
        out,
        " ({}) · {} · {}",
        short(&a.fingerprint),
        a.provider,
        a.model
    );
    if a.repeats > 1 {
        let _ = write!(out, " · {} samples per case", a.repeats);
    }
    if let Some(shard) = r.run.shard {
        let _ = write!(out, " · shard {}/{}", shard.index, shard.count);
    }
    out.push('\n');
    let width = s
        .by_segment
        .keys()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(0)
        .max(7);
    let _ = writeln!(
        out,
        "  {:<width$}  {:>5}  {:>5}  {:>5}  {:>5}  {:>9}",
        "segment", "cases", "pass", "fail", "error", "pass rate"
    );
    let row = |out: &mut String, name: &str, t: &Tally| {
        let _ = writeln!(
            out,
            "  {name:<width$}  {:>5}  {:>5}  {:>5}  {:>5}  {:>9}",
            t.cases,
            t.passed,
            t.failed,
            t.errors,
            percent(t.pass_rate())
        );
    };
    for (name, t) in &s.by_segment {
        row(out, name, t);
    }
    row(out, "total", &s.tally);
    let _ = writeln!(out, "  {}", figures(s));
    list(out, "failed", &r.run.cases, Outcome::Fail);
    list(out, "could not evaluate", &r.run.cases, Outcome::Error);
}

/// Tokens, cost, latency and requests on one line.
fn figures(s: &Summary) -> String {
    let estimated = if s.spend.tokens_estimated {
        " (estimated)"
    } else {
        ""
    };
    let cost = match s.spend.cost_usd {
        Some(c) => format!("${c:.4}"),
        None => "unknown (no price for the model)".into(),
    };
    let ms = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.0} ms"));
    format!(
        "tokens {} in / {} out{estimated} · cost {cost} · latency p50 {}, p95 {} · {} request(s), {} retried",
        s.spend.input_tokens,
        s.spend.output_tokens,
        ms(s.spend.latency_p50_ms),
        ms(s.spend.latency_p95_ms),
        s.requests,
        s.retries
    )
}

fn list(out: &mut String, title: &str, cases: &[CaseResult], outcome: Outcome) {
    let chosen: Vec<&CaseResult> = cases.iter().filter(|c| c.outcome == outcome).collect();
    if chosen.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {title}:");
    for case in chosen.iter().take(LISTED) {
        let _ = writeln!(
            out,
            "    {} ({}:{}): {}",
            case.id,
            case.file,
            case.line,
            reasons(case).join("; ")
        );
    }
    if chosen.len() > LISTED {
        let _ = writeln!(out, "    and {} more", chosen.len() - LISTED);
    }
}

/// Why a case did not pass: its errors, else its failed assertions (deduplicated
/// across samples).
fn reasons(case: &CaseResult) -> Vec<String> {
    let mut reasons: Vec<String> = Vec::new();
    for sample in &case.samples {
        let mut these: Vec<String> = sample.error.iter().cloned().collect();
        these.extend(sample.assertions.iter().filter_map(|a| match &a.verdict {
            Judgement::Fail { reason } => Some(reason.clone()),
            _ => None,
        }));
        for r in these {
            if !reasons.contains(&r) {
                reasons.push(r);
            }
        }
    }
    if case.samples.len() > 1 {
        reasons.insert(
            0,
            format!("{}/{} samples passed", case.passes, case.samples.len()),
        );
    }
    reasons
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or("–".into(), |r| format!("{:.1}%", r * 100.0))
}

/// JUnit XML: a test suite per artifact version, a test case per case.
pub fn junit(report: &EvalReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    for r in &report.runs {
        tests += r.summary.tally.cases;
        failures += r.summary.tally.failed;
        errors += r.summary.tally.errors;
    }
    let _ = writeln!(
        out,
        "<testsuites name=\"promptgate\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">"
    );
    for r in &report.runs {
        let t = &r.summary.tally;
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\">",
            xml(&r.run.artifact.id),
            t.cases,
            t.failed,
            t.errors
        );
        for case in &r.run.cases {
            let seconds: f64 = case
                .samples
                .iter()
                .filter_map(|s| s.latency_ms)
                .sum::<f64>()
                / 1000.0;
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\" time=\"{seconds:.3}\"",
                xml(&case.id),
                xml(&format!(
                    "{}.{}",
                    r.run.artifact.id,
                    case.segments.first().map_or("all", String::as_str)
                )),
                xml(&case.file),
                case.line
            );
            let tag = match case.outcome {
                Outcome::Pass => {
                    out.push_str("/>\n");
                    continue;
                }
                Outcome::Fail => "failure",
                Outcome::Error => "error",
            };
            let reasons = reasons(case);
            let _ = writeln!(
                out,
                ">\n      <{tag} message=\"{}\">{}</{tag}>\n    </testcase>",
                xml(reasons.first().map_or("", String::as_str)),
                xml(&reasons.join("\n"))
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
