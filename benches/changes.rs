//! Benchmark: `promptgate changes` against `git diff --name-status` on the same refs, on a
//! generated repository of 5,000 artifacts where 50 change. Prints figures; asserts
//! nothing about time.
//!
//! Run: `cargo bench --bench changes` (optionally `-- --artifacts N --changed M --runs R`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Options {
    artifacts: usize,
    changed: usize,
    runs: usize,
    /// Generate the repository here and keep it, for profiling.
    keep: Option<std::path::PathBuf>,
}

fn options() -> Options {
    let mut o = Options {
        artifacts: 5_000,
        changed: 50,
        runs: 25,
        keep: None,
    };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        if pair[0] == "--keep" {
            o.keep = Some(pair[1].clone().into());
        }
        let n = pair[1].parse().ok();
        match (pair[0].as_str(), n) {
            ("--artifacts", Some(n)) => o.artifacts = n,
            ("--changed", Some(n)) => o.changed = n,
            ("--runs", Some(n)) => o.runs = n,
            _ => {}
        }
    }
    o
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

fn write(dir: &Path, path: &str, content: &str) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
    std::fs::write(full, content).expect("write");
}

fn artifact(i: usize, team: usize, temperature: &str, extra: &str) -> String {
    format!(
        "id: team{team:02}.prompt{i:05}\nversion: 1\ndescription: Generated artifact {i}\n\
         model: {{provider: openai, name: gpt-4o-mini, temperature: {temperature}, max_tokens: 300}}\n\
         messages:\n  - role: system\n    content: |\n      You are assistant number {i} of team {team}.\n      Answer briefly.{extra}\n\
         \x20 - {{role: user, content: \"{{{{ question }}}}\"}}\n\
         tools: {{schema_version: \"2025-01\", definitions: ../../tools/team{team:02}.tools.json}}\n\
         evals: [../../evals/team{team:02}.eval.yaml]\n"
    )
}

/// A repository with `main` and a `pr` branch that edits `changed` artifacts, plus a
/// `tools` branch that edits one team's tool definitions (a reference-only change).
fn generate(dir: &Path, o: &Options) {
    git(dir, &["init", "-q", "-b", "main"]);
    let teams = 50;
    for team in 0..teams {
        write(
            dir,
            &format!("tools/team{team:02}.tools.json"),
            &format!(
                "[{{\"type\": \"function\", \"function\": {{\"name\": \"lookup_{team}\", \"parameters\": {{\"type\": \"object\"}}}}}}]\n"
            ),
        );
        write(
            dir,
            &format!("evals/team{team:02}.eval.yaml"),
            "defaults: {vars: {question: hi}}\ncases:\n  - {id: c1, assert: [{type: max-words, value: 50}]}\n",
        );
    }
    for i in 0..o.artifacts {
        let team = i % teams;
        write(
            dir,
            &format!("prompts/team{team:02}/p{i:05}.prompt.yaml"),
            &artifact(i, team, "0.2", ""),
        );
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "base"]);
    git(dir, &["checkout", "-q", "-b", "pr"]);
    let step = (o.artifacts / o.changed.max(1)).max(1);
    for i in (0..o.artifacts).step_by(step).take(o.changed) {
        let team = i % teams;
        write(
            dir,
            &format!("prompts/team{team:02}/p{i:05}.prompt.yaml"),
            &artifact(i, team, "0.7", "\n      Be friendly."),
        );
    }
    git(dir, &["commit", "-q", "-am", "edit prompts"]);
    git(dir, &["checkout", "-q", "-b", "tools", "main"]);
    write(
        dir,
        "tools/team07.tools.json",
        "[{\"type\": \"function\", \"function\": {\"name\": \"lookup_7\", \"parameters\": {\"type\": \"object\", \"required\": [\"id\"]}}}]\n",
    );
    git(dir, &["commit", "-q", "-am", "edit tools"]);
    // A clone (what CI checks out) is packed; freshly written loose objects are not.
    git(dir, &["gc", "-q"]);
}

/// Median wall times of `runs` runs of `a` and of `b`, after one warm-up each. The two
/// alternate, so a machine that gets busier or quieter during the benchmark weighs on
/// both alike.
fn time_pair(runs: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (Duration, Duration) {
    a();
    b();
    let timed = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    let (mut ta, mut tb): (Vec<Duration>, Vec<Duration>) =
        (0..runs).map(|_| (timed(&mut a), timed(&mut b))).unzip();
    ta.sort();
    tb.sort();
    (ta[runs / 2], tb[runs / 2])
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn main() {
    let o = options();
    let bin = env!("CARGO_BIN_EXE_promptgate");
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = match &o.keep {
        Some(keep) => {
            std::fs::create_dir_all(keep).expect("mkdir");
            keep.as_path()
        }
        None => tmp.path(),
    };
    let start = Instant::now();
    generate(dir, &o);
    println!(
        "repository: {} artifacts, {} changed on `pr`; one tools file changed on `tools` (generated in {:.1?})",
        o.artifacts,
        o.changed,
        start.elapsed()
    );
    println!("median of {} runs each\n", o.runs);
    println!(
        "{:<34} {:>10} {:>10} {:>7}",
        "scenario", "git diff", "changes", "ratio"
    );
    for head in ["pr", "tools"] {
        let listed = run_ok(Command::new(bin).arg("-C").arg(dir).args([
            "changes", "--base", "main", "--head", head, "--format", "json",
        ]));
        let v: serde_json::Value = serde_json::from_str(&listed).expect("json");
        let found = v["artifacts"].as_array().map_or(0, Vec::len);
        let (git_time, ours) = time_pair(
            o.runs,
            || {
                run_ok(Command::new("git").arg("-C").arg(dir).args([
                    "diff",
                    "--name-status",
                    "main",
                    head,
                    "--",
                ]));
            },
            || {
                run_ok(
                    Command::new(bin)
                        .arg("-C")
                        .arg(dir)
                        .args(["changes", "--base", "main", "--head", head]),
                );
            },
        );
        let label = format!("{head} ({found} artifacts listed)");
        println!(
            "{label:<34} {:>8.1}ms {:>8.1}ms {:>6.2}x",
            git_time.as_secs_f64() * 1e3,
            ours.as_secs_f64() * 1e3,
            ours.as_secs_f64() / git_time.as_secs_f64()
        );
    }
}
