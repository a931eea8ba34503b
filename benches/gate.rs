//! Benchmark: the gate's pure half, comparison + policy + report rendering, on 10,000
//! cases answered by both sides (60 segments, ~3% of cases flipping, answers of a few
//! hundred characters). Goal: under 200 ms. Prints figures; asserts nothing about time.
//!
//! Run: `cargo bench --bench gate` (optionally `-- --cases N --runs R`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use globset::GlobSet;
use promptgate::changes::{ArtifactChange, ChangeKind, Side};
use promptgate::config::GateConfig;
use promptgate::eval::assertions::Judgement;
use promptgate::eval::result::{ArtifactRun, CaseResult, Judged, Outcome, RunInfo, Sample, Source};
use promptgate::evidence::{ArtifactEvidence, Evidence, PolicySource, Status};
use promptgate::report::{COMMENT_LIMIT, Template};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

fn sample(pass: bool, rng: &mut fastrand::Rng) -> Sample {
    let mut s = Sample::error(String::new());
    s.error = None;
    s.outcome = if pass { Outcome::Pass } else { Outcome::Fail };
    s.text = "Thanks for reaching out about your order. ".repeat(rng.usize(2..10));
    s.latency_ms = Some(rng.f64() * 800.0 + 200.0);
    s.input_tokens = rng.u64(200..600);
    s.output_tokens = rng.u64(20..200);
    s.cost_usd = Some((s.input_tokens as f64 * 0.15 + s.output_tokens as f64 * 0.6) / 1e6);
    s.requests = 1;
    s.source = Source::Replay;
    s.assertions = vec![Judged {
        name: "max-words".into(),
        weight: 1.0,
        score: None,
        verdict: if pass {
            Judgement::Pass
        } else {
            Judgement::Fail {
                reason: "max-words: expected at most 60 words, got 61".into(),
            }
        },
    }];
    s
}

fn run(version: &str, outcomes: &[bool], rng: &mut fastrand::Rng) -> ArtifactRun {
    ArtifactRun {
        artifact: RunInfo {
            id: "support.assistant".into(),
            path: "prompts/support/assistant.prompt.yaml".into(),
            version: Some(version.into()),
            fingerprint: format!("sha256:{}", version.repeat(64)),
            provider: "recorded".into(),
            model: "m".into(),
            repeats: 1,
            cases_digest: String::new(),
        },
        segments: BTreeMap::new(),
        shard: None,
        cases: outcomes
            .iter()
            .enumerate()
            .map(|(i, &pass)| {
                let segment = if i % 10 == 0 {
                    format!("hard-negative/s{}", i % 7)
                } else {
                    format!("intent/s{}", i % 53)
                };
                CaseResult::new(
                    format!("case-{i:05}"),
                    vec![segment],
                    "evals/big.cases.jsonl".into(),
                    i + 1,
                    vec![sample(pass, rng)],
                )
            })
            .collect(),
    }
}

fn main() {
    let cases = arg("--cases", 10_000);
    let runs = arg("--runs", 15);
    let mut rng = fastrand::Rng::with_seed(7);
    let base_outcomes: Vec<bool> = (0..cases).map(|_| rng.f64() < 0.9).collect();
    let head_outcomes: Vec<bool> = base_outcomes
        .iter()
        .map(|&b| if rng.f64() < 0.03 { !b } else { b })
        .collect();
    let base = run("3", &base_outcomes, &mut rng);
    let head = run("4", &head_outcomes, &mut rng);
    let ids: Vec<String> = base.cases.iter().map(|c| c.id.clone()).collect();
    let critical = promptgate::repo::build_globs(&["hard-negative/*".to_string()])
        .unwrap_or_else(|_| GlobSet::empty());
    let side = |v: &str| Side {
        path: "prompts/support/assistant.prompt.yaml".into(),
        version: Some(v.into()),
        fingerprint: Some(format!("sha256:{}", v.repeat(64))),
    };
    let change = ArtifactChange {
        id: "support.assistant".into(),
        kind: ChangeKind::Modified,
        base: Some(side("3")),
        head: Some(side("4")),
        behaviour_changed: true,
        evals_changed: false,
        missing_version_bump: false,
        fields: Vec::new(),
        message_diff: Some("-a\n+b\n".into()),
        changed_references: Vec::new(),
        problems: Vec::new(),
    };
    let template = Template::builtin();
    let policy = GateConfig::default();

    let mut compare_times = Vec::new();
    let mut render_times = Vec::new();
    let mut size = 0;
    for _ in 0..runs {
        let (b, h) = (base.clone(), head.clone());
        let start = Instant::now();
        let artifact = ArtifactEvidence::new(
            change.clone(),
            Status::Compared,
            Vec::new(),
            (Some(b), Some(h)),
            &ids,
            &critical,
            0.05,
        );
        let artifacts = vec![artifact];
        let verdict = promptgate::policy::decide(&policy, &artifacts, &[]);
        let compared = start.elapsed();
        let evidence = Evidence {
            verdict,
            artifacts,
            policy: policy.clone(),
            policy_source: PolicySource::Base,
            ..Evidence::empty()
        };
        let start = Instant::now();
        let text = template
            .render(&evidence, COMMENT_LIMIT)
            .unwrap_or_default();
        render_times.push(start.elapsed());
        compare_times.push(compared);
        size = text.len();
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (c, r) = (median(&mut compare_times), median(&mut render_times));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("gate comparison + report, {cases} cases x 2 sides, median of {runs}:");
    println!("  compare + policy   {:8.1} ms", ms(c));
    println!(
        "  render (fitted)    {:8.1} ms   report {size} bytes",
        ms(r)
    );
    println!(
        "  total              {:8.1} ms   = {:.2} of the 200 ms goal",
        ms(c + r),
        ms(c + r) / 200.0
    );
}
