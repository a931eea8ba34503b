//! Calibration benchmark: how often the gate's verdict is right, on simulated pull
//! requests run through the real `compare::compare` (via `ArtifactEvidence::new`) and
//! `policy::decide`. Prints figures and a PASS/FAIL line per target; asserts nothing
//! and exits 0 either way.
//!
//! Run: `cargo bench --bench verdict` (optionally `-- --prs N --seed S --confirm N`).
//!
//! One simulated pull request is one artifact with one segment, `intent/sim`, of `n`
//! cases. Each case `i` gets a base pass probability `p_i` from a mixture shaped like
//! real eval suites, where most cases almost always pass or almost always fail:
//!
//! - 70%: solid, `p` uniform in 0.97–1.00;
//! - 10%: broken, `p` uniform in 0.00–0.03;
//! - 20%: flaky, `p` uniform in 0.50–0.90.
//!
//! The head's probabilities `q_i` equal `p_i`, except for a true drop of `D` points:
//! cases are taken in random order and their `q` set to 0 (the last one only lowered,
//! by the fraction still missing) until `mean(p − q) = D`. When the suite cannot lose
//! `D` points (`D` = 100 with a mean `p` of about 0.83), every `q` is 0 and the true
//! drop is `mean(p)`: the `true` column shows the mean drop actually simulated.
//!
//! Each side answers every case `repeats` times (Bernoulli `p_i` / `q_i`); a case whose
//! share of passing samples differs between the sides (`compare::needs_confirmation`) is answered
//! `confirm` more times on each side into `CaseResult::confirmations`, as the gate's
//! confirmation round does. Policy: `GateConfig::default()` with `repeats` and
//! `confirm_samples` set for the cell; answers cost and take the same on both sides, so
//! only the quality rules can fire.
//!
//! Per cell (`n` × `repeats` × `D`, `--prs` pull requests each): the share blocked (a
//! false block at `D` = 0, a detection above), the share of the segment judged held,
//! regressed and inconclusive, and the mean fresh samples (provider calls, both sides)
//! the confirmation round spent.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use promptgate::changes::{ArtifactChange, ChangeKind, Side};
use promptgate::compare::{SegmentOutcome, needs_confirmation};
use promptgate::config::GateConfig;
use promptgate::eval::result::{ArtifactRun, CaseResult, Outcome, RunInfo, Sample, Source};
use promptgate::evidence::{ArtifactEvidence, Status};
use promptgate::policy::{self, State};

const SEGMENT: &str = "intent/sim";
const SIZES: [usize; 5] = [5, 10, 20, 50, 200];
const REPEATS: [u32; 2] = [1, 3];
const DROPS: [u32; 6] = [0, 5, 10, 20, 50, 100];

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

/// One answer; every answer costs and takes the same, so budgets never fire.
fn sample(pass: bool) -> Sample {
    let mut s = Sample::error(String::new());
    s.error = None;
    s.outcome = if pass { Outcome::Pass } else { Outcome::Fail };
    s.latency_ms = Some(500.0);
    s.input_tokens = 300;
    s.output_tokens = 60;
    s.cost_usd = Some(0.0001);
    s.requests = 1;
    s.source = Source::Replay;
    s
}

fn draw(rng: &mut fastrand::Rng, p: f64, count: u32) -> Vec<Sample> {
    (0..count).map(|_| sample(rng.f64() < p)).collect()
}

/// A base pass probability from the mixture in the module comment.
fn base_probability(rng: &mut fastrand::Rng) -> f64 {
    let u = rng.f64();
    if u < 0.7 {
        0.97 + 0.03 * rng.f64()
    } else if u < 0.8 {
        0.03 * rng.f64()
    } else {
        0.5 + 0.4 * rng.f64()
    }
}

/// Head probabilities: `p` lowered on random cases until the mean drop is `drop` (or
/// every case is at 0). Returns them with the mean drop reached.
fn head_probabilities(rng: &mut fastrand::Rng, p: &[f64], drop: f64) -> (Vec<f64>, f64) {
    let mut q = p.to_vec();
    let mut missing = drop * p.len() as f64;
    let mut order: Vec<usize> = (0..p.len()).collect();
    rng.shuffle(&mut order);
    for i in order {
        if missing <= 1e-12 {
            break;
        }
        let lower = q[i].min(missing);
        q[i] -= lower;
        missing -= lower;
    }
    let reached = p.iter().zip(&q).map(|(a, b)| a - b).sum::<f64>() / p.len() as f64;
    (q, reached)
}

fn run(version: &str, cases: Vec<CaseResult>, repeats: u32) -> ArtifactRun {
    ArtifactRun {
        artifact: RunInfo {
            id: "support.sim".into(),
            path: "prompts/support/sim.prompt.yaml".into(),
            version: Some(version.into()),
            fingerprint: format!("sha256:{}", version.repeat(64)),
            provider: "recorded".into(),
            model: "m".into(),
            repeats,
            cases_digest: String::new(),
        },
        segments: BTreeMap::new(),
        shard: None,
        cases,
    }
}

fn change() -> ArtifactChange {
    let side = |v: &str| Side {
        path: "prompts/support/sim.prompt.yaml".into(),
        version: Some(v.into()),
        fingerprint: Some(format!("sha256:{}", v.repeat(64))),
    };
    ArtifactChange {
        id: "support.sim".into(),
        kind: ChangeKind::Modified,
        base: Some(side("1")),
        head: Some(side("2")),
        behaviour_changed: true,
        evals_changed: false,
        missing_version_bump: false,
        fields: Vec::new(),
        message_diff: Some("-a\n+b\n".into()),
        changed_references: Vec::new(),
        problems: Vec::new(),
    }
}

#[derive(Default)]
struct Tally {
    prs: u64,
    blocked: u64,
    /// Blocked by a rule other than `gate.max_segment_drop` (should stay 0).
    other_blocks: u64,
    held: u64,
    regressed: u64,
    inconclusive: u64,
    extra_calls: u64,
    true_drop: f64,
    retested: u64,
}

impl Tally {
    fn rate(&self, count: u64) -> f64 {
        100.0 * count as f64 / self.prs.max(1) as f64
    }
}

struct Cell {
    n: usize,
    repeats: u32,
    drop: u32,
    tally: Tally,
}

/// One simulated pull request, tallied.
fn simulate(
    rng: &mut fastrand::Rng,
    policy: &GateConfig,
    ids: &[String],
    critical: &globset::GlobSet,
    drop: f64,
    tally: &mut Tally,
) {
    let n = ids.len();
    let (repeats, confirm) = (policy.repeats, policy.confirm_samples);
    let p: Vec<f64> = (0..n).map(|_| base_probability(rng)).collect();
    let (q, reached) = head_probabilities(rng, &p, drop);
    let case = |i: usize, samples: Vec<Sample>| {
        CaseResult::new(
            ids[i].clone(),
            vec![SEGMENT.into()],
            "evals/sim.cases.jsonl".into(),
            i + 1,
            samples,
        )
    };
    let mut base = Vec::with_capacity(n);
    let mut head = Vec::with_capacity(n);
    for i in 0..n {
        base.push(case(i, draw(rng, p[i], repeats)));
        head.push(case(i, draw(rng, q[i], repeats)));
    }
    if confirm > 0 {
        for i in 0..n {
            if needs_confirmation(&base[i], &head[i]) {
                base[i].confirmations = draw(rng, p[i], confirm);
                head[i].confirmations = draw(rng, q[i], confirm);
                tally.extra_calls += 2 * u64::from(confirm);
            }
        }
    }
    let evidence = ArtifactEvidence::new(
        change(),
        Status::Compared,
        Vec::new(),
        (Some(run("1", base, repeats)), Some(run("2", head, repeats))),
        ids,
        critical,
        policy.max_segment_drop,
    );
    let verdict = policy::decide(policy, std::slice::from_ref(&evidence), &[]);
    tally.prs += 1;
    tally.true_drop += reached;
    if verdict.state == State::Blocked {
        tally.blocked += 1;
        if verdict
            .reasons
            .iter()
            .any(|r| r.rule != "gate.max_segment_drop")
        {
            tally.other_blocks += 1;
        }
    }
    let row = evidence
        .comparison
        .as_ref()
        .and_then(|c| c.segments.iter().find(|r| r.name == SEGMENT));
    if let Some(row) = row {
        tally.retested += row.retested as u64;
        match row.outcome {
            SegmentOutcome::Held => tally.held += 1,
            SegmentOutcome::Regressed => tally.regressed += 1,
            SegmentOutcome::Inconclusive => tally.inconclusive += 1,
        }
    }
}

fn main() {
    let prs = arg("--prs", 1000).max(1);
    let seed = arg("--seed", 20_240_601);
    let confirm = arg(
        "--confirm",
        u64::from(GateConfig::default().confirm_samples),
    ) as u32;
    let defaults = GateConfig::default();
    let critical = promptgate::repo::build_globs(&defaults.critical_segments)
        .unwrap_or_else(|_| globset::GlobSet::empty());
    let start = std::time::Instant::now();

    // Every cell its own random stream, so a cell's figures depend neither on the
    // others nor on which thread ran it; the cells are shared out over the cores.
    let mut specs = Vec::new();
    for (si, &n) in SIZES.iter().enumerate() {
        for (ri, &repeats) in REPEATS.iter().enumerate() {
            for (di, &drop) in DROPS.iter().enumerate() {
                let cell_seed = seed
                    .wrapping_mul(1_000_003)
                    .wrapping_add((si * 100 + ri * 10 + di) as u64);
                specs.push((n, repeats, drop, cell_seed));
            }
        }
    }
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let mut done: Vec<(usize, Cell)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(n, repeats, drop, cell_seed)) = specs.get(i) else {
                            break out;
                        };
                        let ids: Vec<String> = (0..n).map(|i| format!("case-{i:04}")).collect();
                        let policy = GateConfig {
                            repeats,
                            confirm_samples: confirm,
                            ..defaults.clone()
                        };
                        let mut rng = fastrand::Rng::with_seed(cell_seed);
                        let mut tally = Tally::default();
                        for _ in 0..prs {
                            let d = f64::from(drop) / 100.0;
                            simulate(&mut rng, &policy, &ids, &critical, d, &mut tally);
                        }
                        let cell = Cell {
                            n,
                            repeats,
                            drop,
                            tally,
                        };
                        out.push((i, cell));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    let cells: Vec<Cell> = done.into_iter().map(|(_, c)| c).collect();

    println!(
        "verdict calibration: {prs} simulated PRs per cell, seed {seed}, confirm_samples {confirm}, \
         max_segment_drop {:.0} points",
        defaults.max_segment_drop * 100.0
    );
    println!("blocked = false-block rate at D = 0, detection rate at D > 0 (all figures in %)");
    println!();
    println!(
        "{:>4} {:>3} {:>4} {:>6} | {:>7} {:>6} {:>6} {:>6} | {:>8} {:>8}",
        "n", "rep", "D", "true", "blocked", "held", "regr", "inconc", "retested", "extra"
    );
    let mut last = (0, 0);
    for c in &cells {
        if (c.n, c.repeats) != last && last != (0, 0) {
            println!();
        }
        last = (c.n, c.repeats);
        let t = &c.tally;
        let prs = t.prs.max(1) as f64;
        println!(
            "{:>4} {:>3} {:>4} {:>6.1} | {:>7.1} {:>6.1} {:>6.1} {:>6.1} | {:>8.2} {:>8.1}",
            c.n,
            c.repeats,
            c.drop,
            100.0 * t.true_drop / prs,
            t.rate(t.blocked),
            t.rate(t.held),
            t.rate(t.regressed),
            t.rate(t.inconclusive),
            t.retested as f64 / prs,
            t.extra_calls as f64 / prs,
        );
    }
    println!();
    println!("true = mean drop simulated (points); retested = mean flipped cases answered again;");
    println!("extra = mean fresh samples per PR, both sides (provider calls spent confirming)");
    println!();

    let other: u64 = cells.iter().map(|c| c.tally.other_blocks).sum();
    if other > 0 {
        println!("note: {other} PR(s) blocked by a rule other than gate.max_segment_drop");
    }
    let target = |name: &str,
                  applies: &dyn Fn(&Cell) -> bool,
                  ok: &dyn Fn(&Cell) -> bool,
                  show: &dyn Fn(&Cell) -> String| {
        let misses: Vec<String> = cells
            .iter()
            .filter(|c| applies(c) && !ok(c))
            .map(|c| format!("n={} rep={} D={}: {}", c.n, c.repeats, c.drop, show(c)))
            .collect();
        let count = cells.iter().filter(|c| applies(c)).count();
        if misses.is_empty() {
            println!("PASS  {name} ({count} cells)");
        } else {
            println!(
                "FAIL  {name}: {} of {count} cells miss: {}",
                misses.len(),
                misses.join("; ")
            );
        }
    };
    target(
        "D = 0: false blocks <= 1% in every cell",
        &|c| c.drop == 0,
        &|c| c.tally.rate(c.tally.blocked) <= 1.0,
        &|c| format!("{:.1}% blocked", c.tally.rate(c.tally.blocked)),
    );
    target(
        "D >= 20, n >= 20: detected >= 95%",
        &|c| c.drop >= 20 && c.n >= 20,
        &|c| c.tally.rate(c.tally.blocked) >= 95.0,
        &|c| format!("{:.1}% detected", c.tally.rate(c.tally.blocked)),
    );
    target(
        "D >= 50: never held",
        &|c| c.drop >= 50,
        &|c| c.tally.held == 0,
        &|c| format!("{:.1}% held", c.tally.rate(c.tally.held)),
    );
    println!();
    println!(
        "{} cells x {prs} PRs in {:.1} s on {threads} thread(s)",
        cells.len(),
        start.elapsed().as_secs_f64()
    );
}
