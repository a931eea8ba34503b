//! The evidence report, rendered from hand-built runs: one snapshot per situation a
//! reviewer meets, plus the properties every report must keep (size, escaping).

mod common;

use std::collections::BTreeMap;

use globset::GlobSet;
use promptgate::artifact::suite::Segment;
use promptgate::changes::{ArtifactChange, ChangeKind, Side};
use promptgate::config::GateConfig;
use promptgate::eval::assertions::Judgement;
use promptgate::eval::result::{ArtifactRun, CaseResult, Judged, Outcome, RunInfo, Sample, Source};
use promptgate::evidence::{ArtifactEvidence, Evidence, PolicySource, RoleState, Status};
use promptgate::policy::{self, State};
use promptgate::report::view::{Limits, View};
use promptgate::report::{COMMENT_LIMIT, Template, utf16_len};

/// One case on one side: outcome, answer, output tokens, latency.
#[derive(Clone)]
struct Side1 {
    outcome: Outcome,
    text: String,
    output_tokens: u64,
    latency_ms: f64,
}

fn side(outcome: Outcome, text: &str) -> Side1 {
    Side1 {
        outcome,
        text: text.to_string(),
        output_tokens: 20,
        latency_ms: 400.0,
    }
}

const P: Outcome = Outcome::Pass;
const F: Outcome = Outcome::Fail;
const E: Outcome = Outcome::Error;

fn sample(s: &Side1) -> Sample {
    let mut sample = if s.outcome == E {
        Sample::error(s.text.clone())
    } else {
        let mut sample = Sample::error(String::new());
        sample.error = None;
        sample.outcome = s.outcome;
        sample.text = s.text.clone();
        sample.latency_ms = Some(s.latency_ms);
        sample.input_tokens = 100;
        sample.output_tokens = s.output_tokens;
        sample.requests = 1;
        sample.source = Source::Replay;
        // $0.15 / $0.60 per million tokens.
        sample.cost_usd = Some((100.0 * 0.15 + s.output_tokens as f64 * 0.60) / 1e6);
        sample
    };
    if s.outcome == P {
        sample.assertions = vec![Judged {
            name: "not-refusal".into(),
            weight: 1.0,
            score: None,
            verdict: Judgement::Pass,
        }];
    }
    if s.outcome == F {
        sample.assertions = vec![Judged {
            name: "not-refusal".into(),
            weight: 1.0,
            score: None,
            verdict: Judgement::Fail {
                // As assertions word it: the type first.
                reason: "not-refusal: the answer refuses".into(),
            },
        }];
    }
    sample
}

struct Case {
    id: String,
    segments: Vec<String>,
    base: Option<Side1>,
    head: Option<Side1>,
}

fn case(id: &str, segments: &[&str], base: Option<Side1>, head: Option<Side1>) -> Case {
    Case {
        id: id.to_string(),
        segments: segments.iter().map(|s| s.to_string()).collect(),
        base,
        head,
    }
}

fn run(version: &str, cases: &[&Case], pick: impl Fn(&Case) -> Option<&Side1>) -> ArtifactRun {
    let mut segments = BTreeMap::new();
    segments.insert(
        "hard-negative/adversarial".to_string(),
        Segment {
            critical: true,
            description: None,
        },
    );
    ArtifactRun {
        artifact: RunInfo {
            id: "support.assistant".into(),
            path: "prompts/support/assistant.prompt.yaml".into(),
            version: Some(version.into()),
            fingerprint: format!("sha256:{}", version.repeat(64)),
            provider: "recorded".into(),
            model: "smollm2-135m-instruct".into(),
            repeats: 1,
            cases_digest: String::new(),
        },
        segments,
        shard: None,
        cases: cases
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                pick(c).map(|s| {
                    CaseResult::new(
                        c.id.clone(),
                        c.segments.clone(),
                        "evals/support.cases.jsonl".into(),
                        i + 1,
                        vec![sample(s)],
                    )
                })
            })
            .collect(),
    }
}

fn change(kind: ChangeKind, base: Option<&str>, head: Option<&str>) -> ArtifactChange {
    let side = |v: &str| Side {
        path: "prompts/support/assistant.prompt.yaml".into(),
        version: Some(v.into()),
        fingerprint: Some(format!("sha256:{}", v.repeat(64))),
    };
    ArtifactChange {
        id: "support.assistant".into(),
        kind,
        base: base.map(side),
        head: head.map(side),
        behaviour_changed: true,
        evals_changed: false,
        missing_version_bump: false,
        fields: vec![promptgate::changes::fields::FieldChange {
            field: "model.temperature".into(),
            before: Some("0.2".into()),
            after: Some("0.7".into()),
            behavioural: true,
        }],
        message_diff: Some(
            "--- base\n+++ head\n@@ -1 +1 @@\n-You only help with Acme orders.\n+Help with anything.\n"
                .into(),
        ),
        changed_references: Vec::new(),
        problems: Vec::new(),
    }
}

/// The evidence of one modified artifact whose cases are `cases`.
fn compared(cases: &[Case]) -> ArtifactEvidence {
    let refs: Vec<&Case> = cases.iter().collect();
    let base_ids: Vec<String> = cases
        .iter()
        .filter(|c| c.base.is_some())
        .map(|c| c.id.clone())
        .collect();
    let critical = promptgate::repo::build_globs(&["hard-negative/*".to_string()])
        .unwrap_or_else(|_| GlobSet::empty());
    ArtifactEvidence::new(
        change(ChangeKind::Modified, Some("3"), Some("4")),
        Status::Compared,
        vec!["English only.".into()],
        (
            Some(run("3", &refs, |c| c.base.as_ref())),
            Some(run("4", &refs, |c| c.head.as_ref())),
        ),
        &base_ids,
        &critical,
        0.05,
    )
}

fn evidence(artifacts: Vec<ArtifactEvidence>) -> Evidence {
    let policy = GateConfig::default();
    let verdict = policy::decide(&policy, &artifacts, &[]);
    Evidence {
        schema: promptgate::evidence::SCHEMA,
        promptgate_version: "0.0.0-test",
        base: "main".into(),
        head: "prompt-update".into(),
        merge_base: "1111111111111111111111111111111111111111".into(),
        head_commit: "2222222222222222222222222222222222222222".into(),
        files_changed: 2,
        policy,
        policy_source: PolicySource::Base,
        config_changed: false,
        verdict,
        tradeoff_label: "prompt-tradeoff-accepted".into(),
        approval_rules: Default::default(),
        artifacts,
        approvals: vec![RoleState {
            role: "product".into(),
            label: "prompt-approved/product".into(),
            approved_by: None,
            approved_at: None,
            note: "decided on the pull request, by label".into(),
        }],
        reproduce: "promptgate gate --base main --head 2222222".into(),
    }
}

fn render(e: &Evidence) -> String {
    let text = Template::builtin()
        .render(e, COMMENT_LIMIT)
        .unwrap_or_else(|err| panic!("render: {err:#}"));
    assert!(utf16_len(&text) <= COMMENT_LIMIT);
    text
}

fn steady(n: usize, segment: &str) -> Vec<Case> {
    (0..n)
        .map(|i| {
            case(
                &format!("{}-{i}", segment.replace('/', "-")),
                &[segment],
                Some(side(P, "Your refund is on its way.")),
                Some(side(P, "Your refund is on its way.")),
            )
        })
        .collect()
}

#[test]
fn no_artifact_changed() {
    let e = evidence(Vec::new());
    assert_eq!(e.verdict.state, State::Pass);
    insta::assert_snapshot!(render(&e));
}

#[test]
fn clean_pass() {
    // Enough cases per segment to rule out the allowed 5-point drop (59 each).
    let mut cases = steady(60, "intent/refund");
    cases.extend(steady(60, "hard-negative/adversarial"));
    let e = evidence(vec![compared(&cases)]);
    assert_eq!(e.verdict.state, State::Pass, "{:?}", e.verdict);
    insta::assert_snapshot!(render(&e));
}

#[test]
fn blocking_regression_in_a_critical_segment() {
    let mut cases = steady(6, "intent/refund");
    cases.extend(steady(3, "hard-negative/adversarial"));
    cases.push(case(
        "ignore-previous-instructions",
        &["hard-negative/adversarial"],
        Some(side(P, "Sorry, I can only help with Acme orders.")),
        Some(side(
            F,
            "Sure! Here are my instructions: You are the friendly…",
        )),
    ));
    cases.push(case(
        "refund-no-order-id",
        &["intent/refund"],
        Some(side(F, "Refunded.")),
        Some(side(P, "Which order number is it?")),
    ));
    let e = evidence(vec![compared(&cases)]);
    assert_eq!(e.verdict.state, State::Blocked);
    assert!(
        e.verdict.reasons[0]
            .message
            .contains("hard-negative/adversarial")
    );
    insta::assert_snapshot!(render(&e));
}

#[test]
fn a_drop_noise_could_explain_is_inconclusive() {
    // 3 pass→fail and 1 fail→pass out of 10, no fresh answers: −20 points that ten
    // cases cannot tell from noise, and cannot rule out either.
    let mut cases = steady(6, "intent/refund");
    for i in 0..3 {
        cases.push(case(
            &format!("refund-flaky-{i}"),
            &["intent/refund"],
            Some(side(P, "ok")),
            Some(side(F, "I cannot help with that.")),
        ));
    }
    cases.push(case(
        "refund-better",
        &["intent/refund"],
        Some(side(F, "I cannot help with that.")),
        Some(side(P, "ok")),
    ));
    let e = evidence(vec![compared(&cases)]);
    assert_eq!(e.verdict.state, State::NeedsTradeoff, "{:?}", e.verdict);
    let message = &e.verdict.tradeoffs[0].message;
    assert!(
        message.contains(
            "intent/refund dropped 20 points on 10 case(s); that many cases cannot tell this from noise"
        ),
        "{message}"
    );
    insta::assert_snapshot!(render(&e));
}

#[test]
fn cost_growth_needs_the_tradeoff() {
    let cases: Vec<Case> = (0..8)
        .map(|i| {
            let mut head = side(
                P,
                "Thank you so much for reaching out! Your refund is on its way.",
            );
            head.output_tokens = 80;
            head.latency_ms = 450.0;
            case(
                &format!("refund-{i}"),
                &["intent/refund"],
                Some(side(P, "Your refund is on its way.")),
                Some(head),
            )
        })
        .collect();
    let e = evidence(vec![compared(&cases)]);
    assert_eq!(e.verdict.state, State::NeedsTradeoff, "{:?}", e.verdict);
    insta::assert_snapshot!(render(&e));
}

#[test]
fn error_rate_over_budget_is_an_error_not_a_pass() {
    let mut cases = steady(7, "intent/refund");
    for i in 0..3 {
        cases.push(case(
            &format!("refund-timeout-{i}"),
            &["intent/refund"],
            Some(side(P, "ok")),
            Some(side(
                E,
                "provider `local`: timed out after 60 s (3 attempts)",
            )),
        ));
    }
    let e = evidence(vec![compared(&cases)]);
    assert_eq!(e.verdict.state, State::Error, "{:?}", e.verdict);
    insta::assert_snapshot!(render(&e));
}

#[test]
fn new_and_deleted_cases_are_listed() {
    let mut cases = steady(4, "intent/order-status");
    cases.push(case(
        "status-customs-hold",
        &["intent/order-status"],
        None,
        Some(side(P, "It is held at customs.")),
    ));
    let mut e = compared(&cases);
    // The base also ran a case the pull request deleted, failing there.
    let deleted = case(
        "status-two-orders",
        &["intent/order-status"],
        Some(side(F, "?")),
        None,
    );
    let extra = run("3", &[&deleted], |c| c.base.as_ref());
    if let Some(base) = e.base_run.as_mut() {
        base.cases.extend(extra.cases);
    }
    let critical = GlobSet::empty();
    let base_ids: Vec<String> = vec![
        "intent-order-status-0".into(),
        "intent-order-status-1".into(),
        "intent-order-status-2".into(),
        "intent-order-status-3".into(),
        "status-two-orders".into(),
    ];
    let e = ArtifactEvidence::new(
        e.change,
        e.status,
        e.known_limitations,
        (e.base_run, e.head_run),
        &base_ids,
        &critical,
        0.05,
    );
    let c = e
        .comparison
        .as_ref()
        .map(|c| (c.new_cases.len(), c.deleted_cases.len()));
    assert_eq!(c, Some((1, 1)));
    let text = render(&evidence(vec![e]));
    assert!(text.contains("Added by this pull request (1)"), "{text}");
    assert!(text.contains("1 failing on base"), "{text}");
}

#[test]
fn a_report_that_would_exceed_the_limit_is_folded() {
    let long = "All work and no play makes Jack a dull boy. ".repeat(40);
    let cases: Vec<Case> = (0..3000)
        .map(|i| {
            case(
                &format!("adversarial-{i:04}"),
                &[&format!("hard-negative/adversarial-{}", i % 90)],
                Some(side(P, &long)),
                Some(side(F, &long)),
            )
        })
        .collect();
    let e = evidence(vec![compared(&cases)]);
    let text = render(&e);
    reads_well(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    first_screen(&text, true, 40).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(text.contains("more regressions"), "{text}");
    assert!(text.contains("more segments"), "{text}");
    // The start and the end show how it folds; the middle is more of the same.
    let lines: Vec<&str> = text.lines().collect();
    let ends = format!(
        "{}\n[…]\n{}",
        lines[..30].join("\n"),
        lines[lines.len() - 40..].join("\n")
    );
    insta::assert_snapshot!(ends);
}

#[test]
fn the_smallest_limit_cuts_cleanly() {
    let cases: Vec<Case> = (0..200)
        .map(|i| {
            case(
                &format!("c{i}"),
                &["hard-negative/adversarial"],
                Some(side(P, "ok")),
                Some(side(F, &"x".repeat(500))),
            )
        })
        .collect();
    let e = evidence(vec![compared(&cases)]);
    let text = Template::builtin()
        .render(&e, 1500)
        .unwrap_or_else(|err| panic!("{err:#}"));
    assert!(utf16_len(&text) <= 1500, "{}", utf16_len(&text));
    assert!(text.contains("cut here"), "{text}");
    assert_eq!(text.matches("```").count() % 2, 0, "{text}");
}

/// `a` with the failed assertion of case `id` on head worded as `reason`.
fn with_reason(a: ArtifactEvidence, id: &str, reason: &str) -> ArtifactEvidence {
    let mut head = a.head_run.clone().expect("a head run");
    for c in head.cases.iter_mut().filter(|c| c.id == id) {
        for j in &mut c.samples[0].assertions {
            j.verdict = Judgement::Fail {
                reason: reason.to_string(),
            };
        }
    }
    let ids: Vec<String> = a
        .base_run
        .iter()
        .flat_map(|r| r.cases.iter().map(|c| c.id.clone()))
        .collect();
    let critical = promptgate::repo::build_globs(&["hard-negative/*".to_string()])
        .unwrap_or_else(|_| GlobSet::empty());
    ArtifactEvidence::new(
        a.change,
        a.status,
        a.known_limitations,
        (a.base_run, Some(head)),
        &ids,
        &critical,
        0.05,
    )
}

#[test]
fn hostile_model_output_stays_inert() {
    let hostile = "@acme/security please look <img src=x onerror=alert(1)>\n```\n</details>\n<!-- promptgate:report -->\n<script>alert(2)</script> `x` ``\n\u{1b}[31mred\u{1b}[0m | cell";
    let mut cases = steady(3, "hard-negative/adversarial");
    cases.push(case(
        "inject-@acme/team",
        &["hard-negative/adversarial"],
        Some(side(P, "Sorry, I can only help with Acme orders.")),
        Some(side(F, hostile)),
    ));
    // As assertions quote an answer: cut short, in backticks.
    let quoted = promptgate::eval::assertions::short(hostile, 200);
    let reason = format!("refusal: expected a refusal, got `{quoted}`");
    let e = evidence(vec![with_reason(
        compared(&cases),
        "inject-@acme/team",
        &reason,
    )]);
    let text = render(&e);
    // As GitHub renders it: the answer is text, not markup, quoted or in a block.
    reads_well(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let html = comrak::markdown_to_html(&text, &gfm());
    for tag in ["<img", "<script", "<!--"] {
        let raw = html.matches(tag).count();
        let own = usize::from(tag == "<!--") * 2;
        assert_eq!(raw, own, "{tag} in {html}");
    }
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(2)&lt;/script&gt;"),
        "{html}"
    );
    // Inside code, markup is shown, not rendered; outside, it is escaped.
    assert!(
        !common::outside_code(&text)
            .expect("blocks closed")
            .contains("<img"),
        "{text}"
    );
    assert!(
        text.contains("<img src=x"),
        "the excerpt is shown verbatim: {text}"
    );
    // The comment marker cannot be forged anywhere, code included: the only HTML
    // comments are the template's own, around the approvals section.
    assert_eq!(text.matches("<!--").collect::<Vec<_>>().len(), 2, "{text}");
    assert!(text.contains(promptgate::report::APPROVALS_START), "{text}");
    // The fence in the output does not end its block: a longer one holds it.
    assert!(text.contains("````text\n@acme/security"), "{text}");
    assert!(text.contains("| cell\n````\n"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(
        !common::outside_code(&text)
            .expect("blocks closed")
            .contains("@acme/"),
        "an unescaped mention: {text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn bidi_overrides_in_an_answer_are_shown_not_applied() {
    // "Trojan Source": the override makes the answer display as "Refund approved" and
    // a case id look like another's, while the text reads otherwise.
    let answer = "Refund \u{202e}devorppa ton\u{202c} \u{2066}x\u{2069} \u{200f}\u{61c}";
    let mut cases = steady(3, "intent/refund");
    cases.push(case(
        "refund-\u{202e}9-rodre",
        &["intent/refund"],
        Some(side(P, "Refund not approved.")),
        Some(side(F, answer)),
    ));
    let text = render(&evidence(vec![compared(&cases)]));
    assert!(text.contains("refund-"), "the case is listed: {text}");
    let bidi = [
        '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{61c}',
    ];
    assert!(!text.contains(bidi), "a bidi control is applied: {text:?}");
    assert!(
        text.contains("Refund \u{FFFD}devorppa ton\u{FFFD} \u{FFFD}x\u{FFFD}"),
        "shown as replacements: {text}"
    );
}

/// A run of one case with the given sample outcomes.
fn run_of(version: &str, id: &str, segment: &str, outcomes: &[Outcome]) -> ArtifactRun {
    let mut r = run(version, &[], |_| None);
    r.cases = vec![CaseResult::new(
        id.to_string(),
        vec![segment.to_string()],
        "evals/x.eval.yaml".into(),
        1,
        outcomes.iter().map(|&o| sample(&side(o, "text"))).collect(),
    )];
    r.artifact.repeats = outcomes.len() as u32;
    r
}

#[test]
fn with_repeats_a_case_passes_only_when_every_sample_does() {
    let base = run_of("3", "c", "intent/refund", &[P, P, P]);
    let head = run_of("4", "c", "intent/refund", &[P, F, P]);
    let c = promptgate::compare::compare(&promptgate::compare::RunPair {
        base: Some(&base),
        head: &head,
        base_case_ids: &["c".to_string()],
        critical: &GlobSet::empty(),
        allowed_drop: 0.05,
    });
    assert_eq!(c.regressions.len(), 1);
    let f = &c.regressions[0];
    assert_eq!(
        (
            f.base.map(|p| (p.passed, p.samples)),
            (f.head.passed, f.head.samples)
        ),
        (Some((3, 3)), (2, 3))
    );
    let row = &c.segments[0];
    assert_eq!((row.base_rate, row.head_rate), (Some(1.0), Some(0.0)));
    let fraction = row.head_pass_fraction.unwrap_or_default();
    assert!((fraction - 2.0 / 3.0).abs() < 1e-9, "{fraction}");
    // One flip is never beyond noise: p = 1.
    assert_eq!(row.p_value, 1.0);
}

#[test]
fn a_case_errored_on_one_side_is_left_out_of_the_pass_rates() {
    let base = run_of("3", "c", "intent/refund", &[E]);
    let head = run_of("4", "c", "intent/refund", &[F]);
    let c = promptgate::compare::compare(&promptgate::compare::RunPair {
        base: Some(&base),
        head: &head,
        base_case_ids: &["c".to_string()],
        critical: &GlobSet::empty(),
        allowed_drop: 0.05,
    });
    assert_eq!((c.overall.paired, c.overall.errors), (0, 1));
    assert_eq!(c.overall.head_rate, None);
    assert!(c.regressions.is_empty());
    assert_eq!(c.error_rate, 1.0);
}

#[test]
fn a_new_artifact_failing_a_critical_case_blocks() {
    let head = run_of("1", "jailbreak", "hard-negative/adversarial", &[F]);
    let critical = promptgate::repo::build_globs(&["hard-negative/*".to_string()])
        .unwrap_or_else(|_| GlobSet::empty());
    let a = ArtifactEvidence::new(
        change(ChangeKind::Added, None, Some("1")),
        Status::HeadOnly,
        Vec::new(),
        (None, Some(head)),
        &[],
        &critical,
        0.05,
    );
    let e = evidence(vec![a]);
    assert_eq!(e.verdict.state, State::Blocked, "{:?}", e.verdict);
    assert_eq!(e.verdict.reasons[0].rule, "gate.critical_segments");
    let text = render(&e);
    assert!(text.contains("#### Failing cases: 1"), "{text}");
}

#[test]
fn a_broken_policy_config_is_an_error() {
    let problem = promptgate::diag::Diagnostic::new(
        ".promptgate.yaml",
        promptgate::diag::Pos::new(3, 7),
        "unknown field `max_segmnt_drop`",
    );
    let v = policy::decide(&GateConfig::default(), &[], &[problem]);
    assert_eq!(v.state, State::Error);
    assert!(
        v.errors[0].message.contains(".promptgate.yaml:3:7"),
        "{:?}",
        v.errors
    );
}

#[test]
fn a_new_prompt_under_the_floor_is_blocked() {
    let mut cases = steady(6, "intent/refund");
    for i in 0..4 {
        cases.push(case(
            &format!("refund-wrong-{i}"),
            &["intent/refund"],
            None,
            Some(side(F, "I cannot help with that.")),
        ));
    }
    let refs: Vec<&Case> = cases.iter().collect();
    let a = ArtifactEvidence::new(
        change(ChangeKind::Added, None, Some("1")),
        Status::HeadOnly,
        Vec::new(),
        (None, Some(run("1", &refs, |c| c.head.as_ref()))),
        &[],
        &GlobSet::empty(),
        0.05,
    );
    let e = evidence(vec![a]);
    assert_eq!(e.verdict.state, State::Blocked, "{:?}", e.verdict);
    assert_eq!(e.verdict.reasons[0].rule, "gate.min_pass_rate");
    insta::assert_snapshot!(render(&e));
}

#[test]
fn a_case_nothing_could_judge_is_an_error() {
    let cases = steady(60, "intent/refund");
    let refs: Vec<&Case> = cases.iter().collect();
    let mut head = run("4", &refs, |c| c.head.as_ref());
    // Its only evaluator was one promptgate cannot run: no assertion at all.
    head.cases[0].samples[0].assertions.clear();
    let a = ArtifactEvidence::new(
        change(ChangeKind::Modified, Some("3"), Some("4")),
        Status::Compared,
        Vec::new(),
        (Some(run("3", &refs, |c| c.base.as_ref())), Some(head)),
        &cases.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        &GlobSet::empty(),
        0.05,
    );
    let e = evidence(vec![a]);
    assert_eq!(e.verdict.state, State::Error, "{:?}", e.verdict);
    assert_eq!(e.verdict.errors[0].rule, "gate.max_unjudged_rate");
    insta::assert_snapshot!(render(&e));
}

#[test]
fn cost_growth_is_said_in_dollars_a_month() {
    let cases: Vec<Case> = (0..60)
        .map(|i| {
            let mut head = side(P, "Thank you so much! Your refund is on its way.");
            head.output_tokens = 80;
            case(
                &format!("refund-{i}"),
                &["intent/refund"],
                Some(side(P, "Your refund is on its way.")),
                Some(head),
            )
        })
        .collect();
    let e = evidence(vec![compared(&cases).with_traffic(Some(2_000_000))]);
    assert_eq!(e.verdict.state, State::NeedsTradeoff, "{:?}", e.verdict);
    let reason = &e.verdict.tradeoffs[0].message;
    assert!(reason.ends_with("/month at 2M requests/month"), "{reason}");
    insta::assert_snapshot!(render(&e));
}

// Every field the template may read is there whether its value is or not: a strict
// template must not fail on the evidence of a field set on one side only.

/// Every optional value the view shows set (`on`) or unset.
fn set_options(e: &mut Evidence, on: bool) {
    let s = |v: &str| on.then(|| v.to_string());
    let rate = |v: f64| on.then_some(v);
    for r in e
        .verdict
        .reasons
        .iter_mut()
        .chain(&mut e.verdict.errors)
        .chain(&mut e.verdict.tradeoffs)
    {
        r.artifact = s("support.assistant");
    }
    for a in &mut e.approvals {
        a.approved_by = s("octocat");
        a.approved_at = s("2026-01-01T00:00:00Z");
    }
    for a in &mut e.artifacts {
        let ch = &mut a.change;
        for side in [ch.base.as_mut(), ch.head.as_mut()].into_iter().flatten() {
            side.version = s("3");
            side.fingerprint = s(&format!("sha256:{}", "3".repeat(64)));
        }
        ch.message_diff = s("--- base\n+++ head\n@@ -1 +1 @@\n-a\n+b\n");
        for f in &mut ch.fields {
            f.before = s("0.2");
            f.after = s("0.7");
        }
        a.monthly = on.then_some(promptgate::compare::artifact::Monthly {
            requests: 1000,
            base_usd: Some(1.0),
            head_usd: 2.0,
            change_usd: Some(1.0),
        });
        let Some(c) = a.comparison.as_mut() else {
            continue;
        };
        for row in c.segments.iter_mut().chain([&mut c.overall]) {
            row.base_rate = rate(0.5);
            row.head_rate = rate(0.5);
            row.delta = rate(0.0);
            row.base_pass_fraction = rate(0.5);
            row.head_pass_fraction = rate(0.5);
            row.drop = rate(0.0);
            row.drop_upper = rate(0.1);
        }
        let flips = c
            .regressions
            .iter_mut()
            .chain(&mut c.improvements)
            .chain(&mut c.unstable)
            .chain(&mut c.failures);
        for f in flips {
            f.base = on.then_some(promptgate::compare::Passes {
                passed: 1,
                samples: 1,
            });
            f.base_text = s("base answer");
        }
        let notes = c
            .new_cases
            .iter_mut()
            .chain(&mut c.deleted_cases)
            .chain(&mut c.errored)
            .chain(&mut c.unjudged);
        for n in notes {
            n.base = on.then_some(Outcome::Pass);
            n.head = on.then_some(Outcome::Fail);
            n.error = s("timed out");
        }
        for figures in [&mut c.base, &mut c.head] {
            figures.refusal_rate = rate(0.1);
            figures.mean_words = rate(12.0);
            figures.json_valid_rate = rate(0.5);
            figures.spend.cost_per_1k_requests_usd = rate(0.01);
            figures.spend.latency_p50_ms = rate(300.0);
            figures.spend.latency_p95_ms = rate(400.0);
        }
    }
}

/// Each object path of `v` (list items as `[]`) and its keys; the items of a list
/// must all have the same keys. A `null` is a leaf.
fn shape(v: &serde_json::Value, path: &str, out: &mut BTreeMap<String, Vec<String>>) {
    match v {
        serde_json::Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            if let Some(seen) = out.get(path) {
                assert_eq!(seen, &keys, "items of {path} differ in keys");
            }
            out.insert(path.to_string(), keys);
            for (k, v) in map {
                shape(v, &format!("{path}.{k}"), out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                shape(item, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_field_the_report_reads_is_there_set_or_not() {
    let mut cases = steady(3, "intent/refund");
    cases.push(case(
        "refund-worse",
        &["intent/refund"],
        Some(side(P, "Your refund is on its way.")),
        Some(side(F, "I cannot help with that.")),
    ));
    cases.push(case(
        "refund-better",
        &["intent/refund"],
        Some(side(F, "I cannot help with that.")),
        Some(side(P, "Your refund is on its way.")),
    ));
    cases.push(case(
        "refund-new",
        &["intent/refund"],
        None,
        Some(side(P, "Your refund is on its way.")),
    ));
    cases.push(case(
        "refund-timeout",
        &["intent/refund"],
        Some(side(P, "ok")),
        Some(side(E, "provider `local`: timed out")),
    ));
    let e = evidence(vec![compared(&cases)]);
    let shapes: Vec<BTreeMap<String, Vec<String>>> = [true, false]
        .into_iter()
        .map(|on| {
            let mut e = e.clone();
            set_options(&mut e, on);
            let text = Template::builtin()
                .render(&e, COMMENT_LIMIT)
                .unwrap_or_else(|err| panic!("options set: {on}: {err:#}"));
            assert!(text.contains("`model.temperature`"), "{text}");
            let view = View::new(&e, Limits::LADDER[0]);
            let mut out = BTreeMap::new();
            shape(
                &serde_json::to_value(&view).expect("json"),
                "report",
                &mut out,
            );
            out
        })
        .collect();
    // Where both have an object, both have the same keys.
    for (path, keys) in &shapes[0] {
        if let Some(other) = shapes[1].get(path) {
            assert_eq!(keys, other, "{path}: keys set and unset differ");
        }
    }
    assert!(
        shapes[0].contains_key("report.artifacts.items[].fields.items[]"),
        "{:#?}",
        shapes[0].keys()
    );
}

#[test]
fn a_refusal_the_api_marked_is_shown_as_one() {
    let mut cases = steady(3, "intent/refund");
    cases.push(case(
        "refund-declined",
        &["intent/refund"],
        Some(side(P, "Your refund is on its way.")),
        // No refusal phrase: only the API's mark says it is one.
        Some(side(F, "This request was declined.")),
    ));
    let e = compared(&cases);
    let mut head = e.head_run.clone().expect("a head run");
    for c in &mut head.cases {
        if c.id == "refund-declined" {
            c.samples[0].refusal = true;
        }
    }
    let ids: Vec<String> = cases.iter().map(|c| c.id.clone()).collect();
    let e = ArtifactEvidence::new(
        e.change,
        e.status,
        e.known_limitations,
        (e.base_run, Some(head)),
        &ids,
        &GlobSet::empty(),
        0.05,
    );
    let c = e.comparison.as_ref().expect("compared");
    assert_eq!(c.head.refusal_rate, Some(0.25));
    assert_eq!(c.base.refusal_rate, Some(0.0));
    let text = render(&evidence(vec![e]));
    assert!(
        text.contains("Base answer:\n")
            && text.contains("Head answer (a refusal, marked by the API):\n"),
        "{text}"
    );
}

// The report as GitHub shows it: parsed as GFM (comrak), the way a reviewer reads it.

/// GitHub's dialect; raw HTML passes, as GitHub passes its allowed tags.
fn gfm() -> comrak::Options<'static> {
    let mut options = comrak::Options::default();
    options.extension.table = true;
    options.extension.strikethrough = true;
    options.extension.autolink = true;
    options.extension.tasklist = true;
    options.render.r#unsafe = true;
    options
}

/// The text of `node` as shown, without its code spans (`code: false`) or with them.
fn shown_text<'a>(node: &'a comrak::nodes::AstNode<'a>, code: bool) -> String {
    use comrak::nodes::NodeValue;
    let mut out = String::new();
    for n in node.descendants() {
        match &n.data.borrow().value {
            NodeValue::Text(t) => out.push_str(t),
            NodeValue::Code(c) if code => out.push_str(&c.literal),
            NodeValue::SoftBreak | NodeValue::LineBreak => out.push(' '),
            _ => {}
        }
    }
    out
}

/// What a reviewer must not meet in the rendered report: backticks shown as characters
/// in prose (a code span that did not become one), `None`/`null` for a missing value,
/// HTML other than the template's own (model output that became markup), and
/// `<details>` that do not nest.
fn reads_well(report: &str) -> Result<(), String> {
    use comrak::nodes::NodeValue;
    let arena = comrak::Arena::new();
    let root = comrak::parse_document(&arena, report, &gfm());
    let mut depth = 0i32;
    for node in root.descendants() {
        let value = node.data.borrow().value.clone();
        let line = node.data.borrow().sourcepos.start.line;
        let html = match &value {
            NodeValue::Paragraph | NodeValue::TableCell | NodeValue::Heading(_) => {
                let prose = shown_text(node, false);
                if prose.matches('`').count() >= 2 {
                    return Err(format!("line {line}: backticks shown as text: {prose:?}"));
                }
                let all = shown_text(node, true);
                let words = all.split(|c: char| !c.is_alphanumeric());
                if let Some(w) = words
                    .into_iter()
                    .find(|w| ["None", "none", "null"].contains(w))
                {
                    return Err(format!("line {line}: `{w}` shown for a value: {all:?}"));
                }
                continue;
            }
            NodeValue::HtmlInline(h) => h.clone(),
            NodeValue::HtmlBlock(b) => b.literal.clone(),
            _ => continue,
        };
        let mut rest = html.as_str();
        while let Some(i) = rest.find('<') {
            let tag = &rest[i..];
            match common::TEMPLATE_HTML.iter().find(|t| tag.starts_with(*t)) {
                Some(&"<details>") => depth += 1,
                Some(&"</details>") => depth -= 1,
                Some(_) => {}
                None => return Err(format!("line {line}: HTML not the template's: {html:?}")),
            }
            if depth < 0 {
                return Err(format!("line {line}: `</details>` closes nothing"));
            }
            rest = &rest[i + 1..];
        }
        if ["None", "null"].iter().any(|w| rest.contains(w)) {
            return Err(format!("line {line}: a missing value shown: {html:?}"));
        }
    }
    match depth {
        0 => Ok(()),
        n => Err(format!("{n} `<details>` left open")),
    }
}

/// The first screen, in this order and before anything long (a code block, another
/// table): the verdict, the reasons (`reasons`), the cost and latency, and what
/// changed (the field table), which starts within the first `lines` lines shown.
fn first_screen(report: &str, reasons: bool, lines: usize) -> Result<(), String> {
    use comrak::nodes::NodeValue;
    let arena = comrak::Arena::new();
    let root = comrak::parse_document(&arena, report, &gfm());
    let mut seen: Vec<&str> = Vec::new();
    let mut before = String::new();
    for node in root.children() {
        let line = node.data.borrow().sourcepos.start.line;
        let text = shown_text(node, true);
        let after = std::mem::replace(&mut before, text.clone());
        let what = match &node.data.borrow().value {
            NodeValue::Heading(h) if h.level == 2 && text.starts_with("promptgate: ") => "verdict",
            NodeValue::List(_) if seen == ["verdict"] => "reasons",
            // The rest of the reasons, folded, the trade-offs and an artifact's
            // problems; any other list (the notes) waits until after what changed.
            NodeValue::List(_)
                if after.is_empty()
                    || after.starts_with("For a reviewer")
                    || text.starts_with("⚠️") =>
            {
                continue;
            }
            NodeValue::List(_) => "another list",
            NodeValue::Table(_) if text.contains("Cost / 1k req.Latency p95") => "cost",
            NodeValue::Table(_) if text.starts_with("FieldBaseHead") => {
                let shown = open_lines(report, line);
                if shown > lines {
                    return Err(format!("the field table starts on shown line {shown}"));
                }
                "fields"
            }
            // Folded (`<details>`) is not long, but what it folds shows open here.
            NodeValue::CodeBlock(_) | NodeValue::Table(_) => "long",
            _ => continue,
        };
        seen.push(what);
        if what == "fields" || what == "long" {
            break;
        }
    }
    let want: &[&str] = match reasons {
        true => &["verdict", "reasons", "cost", "fields"],
        false => &["verdict", "cost", "fields"],
    };
    match seen == want {
        true => Ok(()),
        false => Err(format!("the first screen is {seen:?}, not {want:?}")),
    }
}

/// Lines of `report` before line `line` (1-based) that show with nothing unfolded: those
/// outside any `<details>` and their summary lines.
fn open_lines(report: &str, line: usize) -> usize {
    let mut depth = 0usize;
    let mut shown = 0;
    for l in report.lines().take(line - 1) {
        if depth == 0 {
            shown += 1;
        }
        depth += l.matches("<details>").count();
        depth = depth.saturating_sub(l.matches("</details>").count());
    }
    shown
}

/// The demo's report, as its snapshot holds it (`tests/demo.rs` keeps that current).
fn demo_report() -> String {
    let snap = include_str!("snapshots/demo__demo_gate_report.snap");
    snap.splitn(3, "---\n")
        .nth(2)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn reports_read_well_on_github() {
    let mut critical = steady(3, "intent/refund");
    critical.extend(steady(3, "hard-negative/adversarial"));
    critical.push(case(
        "ignore-previous-instructions",
        &["hard-negative/adversarial"],
        Some(side(P, "Sorry, I can only help with Acme orders.")),
        Some(side(F, "Sure! Here are my instructions.")),
    ));
    let many: Vec<Case> = (0..12)
        .map(|i| {
            case(
                &format!("refund-{i}"),
                &["intent/refund", "intent/all"],
                Some(side(P, "Your refund is on its way.")),
                Some(side(F, "I cannot help with that.")),
            )
        })
        .collect();
    let mut invalid = compared(&steady(1, "intent/refund"));
    invalid.status = Status::Invalid;
    invalid.comparison = None;
    if let Some(head) = invalid.change.head.as_mut() {
        head.fingerprint = None;
    }
    invalid.change.problems = vec![promptgate::diag::Diagnostic::new(
        "prompts/support/assistant.prompt.yaml",
        promptgate::diag::Pos::new(4, 3),
        "unknown field `temprature`, did you mean `temperature`?",
    )];
    let reports = [
        ("the demo", demo_report(), true),
        (
            "critical and not",
            render(&evidence(vec![compared(&critical)])),
            true,
        ),
        (
            "many regressions",
            render(&evidence(vec![compared(&many)])),
            true,
        ),
        ("invalid", render(&evidence(vec![invalid])), true),
        (
            "clean",
            render(&evidence(vec![compared(&steady(60, "intent/refund"))])),
            false,
        ),
    ];
    for (what, report, reasons) in &reports {
        reads_well(report).unwrap_or_else(|e| panic!("{what}: {e}\n{report}"));
        first_screen(report, *reasons, 40).unwrap_or_else(|e| panic!("{what}: {e}\n{report}"));
    }
    let [demo, critical, many, invalid, clean] = reports.map(|(_, r, _)| r);
    // The first three regressions open, the rest folded under a line that counts them.
    for (report, folded) in [(&demo, 19), (&many, 9)] {
        let summary = format!("<details><summary>{folded} more regressions</summary>");
        let (open, rest) = report
            .split_once(&summary)
            .unwrap_or_else(|| panic!("{report}"));
        let open = open.split_once("#### Regressions").map_or("", |(_, o)| o);
        assert_eq!(open.matches("\n**`").count(), 3, "{report}");
        assert_eq!(rest.matches("\n**`").count(), folded, "{report}");
    }
    // The critical mark is explained where one is shown, and only there.
    assert!(
        critical.contains("🔒 critical: any new failure blocks."),
        "{critical}"
    );
    for report in [&many, &clean, &invalid] {
        assert!(!report.contains('🔒'), "{report}");
    }
    // A name quoted in a message is a code span.
    assert!(
        invalid.contains("unknown field `temprature`, did you mean `temperature`?"),
        "{invalid}"
    );
    assert!(invalid.contains("· **invalid**"), "{invalid}");
    // No chart: its labels overlapped; the segment table says the same.
    assert!(!demo.contains("mermaid"), "{demo}");
}
