//! Benchmark: the eval engine against the stub provider at a fixed latency, next to the
//! physical limit ceil(N/C)·latency (no engine can finish sooner with C requests in
//! flight). Prints figures; asserts nothing about time.
//!
//! Run: `cargo bench --bench eval` (options: `-- --cases N --concurrency C --latency-ms L
//! --binary PATH`, the last to run another build of promptgate).
//! With `--cache-runs R` it instead runs `eval --no-cache` and `eval` with an empty
//! answer cache (a cold cache: every answer is written to it) R times each, in turns,
//! and prints the median wall and CPU time of each and their ratio; then `eval` again
//! on each filled cache (a warm cache: every answer a hit, no request served). With
//! `--oha PATH` it instead runs `eval --no-cache` and oha (an HTTP load generator)
//! sending as many requests, as many at once, to the same stub, three times each in
//! turns, and prints the median wall time of each and their ratio.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};
use promptgate_stub::{Reply, Stub, StubConfig};

struct Options {
    cases: usize,
    concurrency: usize,
    latency_ms: u64,
    cache_runs: usize,
    /// The promptgate binary to run instead of the one built with the benchmark (an
    /// earlier build, to compare).
    binary: Option<String>,
    /// An `oha` binary: time `eval` against oha sending as many requests, as many at
    /// once, to the same stub.
    oha: Option<String>,
}

fn options() -> Options {
    let mut o = Options {
        cases: 10_000,
        concurrency: 64,
        latency_ms: 50,
        cache_runs: 0,
        binary: None,
        oha: None,
    };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        let n = pair[1].parse().ok();
        match (pair[0].as_str(), n) {
            ("--cases", Some(n)) => o.cases = n,
            ("--concurrency", Some(n)) => o.concurrency = n,
            ("--latency-ms", Some(n)) => o.latency_ms = n as u64,
            ("--cache-runs", Some(n)) => o.cache_runs = n,
            ("--binary", _) => o.binary = Some(pair[1].clone()),
            ("--oha", _) => o.oha = Some(pair[1].clone()),
            _ => {}
        }
    }
    o
}

fn write(dir: &Path, path: &str, content: &str) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
    std::fs::write(full, content).expect("write");
}

/// A repository with one artifact whose suite has `o.cases` cases, answered by the stub.
fn generate(dir: &Path, base_url: &str, o: &Options) {
    write(
        dir,
        ".promptgate.yaml",
        &format!(
            "providers:\n  stub: {{kind: openai, base_url: \"{base_url}\", concurrency: {}, timeout_s: 30, max_retries: 2}}\n\
             pricing:\n  stub-model: {{input: 0.15, output: 0.60}}\n",
            o.concurrency
        ),
    );
    write(
        dir,
        "prompts/bench.prompt.yaml",
        "id: bench\nversion: 1\nmodel: {provider: stub, name: stub-model, temperature: 0}\n\
         messages:\n  - {role: system, content: \"Answer in one word.\"}\n  - {role: user, content: \"{{ question }}\"}\n\
         evals: [../evals/bench.eval.yaml]\n",
    );
    write(
        dir,
        "evals/bench.eval.yaml",
        "segments: {a: {}, b: {}}\ndefaults: {assert: [{type: max-words, value: 20}, {type: not-refusal}]}\ncases_file: bench.cases.jsonl\n",
    );
    let mut lines = String::new();
    for i in 0..o.cases {
        let segment = if i % 2 == 0 { "a" } else { "b" };
        lines.push_str(&format!(
            "{{\"id\": \"case-{i:06}\", \"segments\": [\"{segment}\"], \"vars\": {{\"question\": \"question number {i}\"}}, \"assert\": [{{\"type\": \"contains\", \"value\": \"ok\"}}]}}\n"
        ));
    }
    write(dir, "evals/bench.cases.jsonl", &lines);
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else of libtest applies.
    let o = options();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let stub = runtime
        .block_on(Stub::start(StubConfig {
            latency: Duration::from_millis(o.latency_ms),
            default_reply: Reply::Text("ok".into()),
            ..StubConfig::default()
        }))
        .expect("stub starts");
    let dir = tempfile::tempdir().expect("tempdir");
    generate(dir.path(), &stub.base_url(), &o);
    let binary = o
        .binary
        .as_deref()
        .unwrap_or(env!("CARGO_BIN_EXE_promptgate"));
    if o.cache_runs > 0 {
        return compare_cache(binary, dir.path(), &o, &stub);
    }
    if let Some(oha) = &o.oha {
        return compare_oha(binary, oha, dir.path(), &o, &stub);
    }

    let started = Instant::now();
    let output = Command::new(binary)
        .args(["-C"])
        .arg(dir.path())
        .args(["eval", "--no-cache", "--format", "json", "--output"])
        .arg(dir.path().join("result.json"))
        .env("CI", "true")
        .output()
        .expect("promptgate runs");
    let wall = started.elapsed();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    assert!(
        output.status.success(),
        "eval failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("result.json")).expect("result"))
            .expect("json");
    let passed = result["runs"][0]["summary"]["passed"].as_u64().unwrap_or(0);
    let requests = stub.requests().len();

    let limit = Duration::from_millis(o.latency_ms * o.cases.div_ceil(o.concurrency) as u64);
    let cpu = usage.user_time() + usage.system_time();
    let cpu =
        Duration::from_secs(cpu.tv_sec() as u64) + Duration::from_micros(cpu.tv_usec() as u64);
    println!(
        "eval: {} cases, concurrency {}, stub latency {} ms ({} requests served, {} cases passed)",
        o.cases, o.concurrency, o.latency_ms, requests, passed
    );
    println!("  wall time            {:>10.3} s", wall.as_secs_f64());
    println!(
        "  physical limit       {:>10.3} s   (ceil(N/C) x latency)",
        limit.as_secs_f64()
    );
    println!(
        "  wall / limit         {:>10.3}",
        wall.as_secs_f64() / limit.as_secs_f64()
    );
    println!(
        "  peak RSS             {:>10.1} MB",
        usage.max_rss() as f64 / 1024.0
    );
    println!(
        "  CPU time per case    {:>10.1} µs   (user + system, promptgate process)",
        cpu.as_secs_f64() * 1e6 / o.cases as f64
    );
}

/// `eval --no-cache` and oha, in turns, three times each: oha sends `o.cases` requests
/// like the ones `eval` sends, `o.concurrency` at a time, to the same stub. Everything
/// `eval` takes beyond oha's time is promptgate's own: start-up, loading the cases,
/// judging, writing the result.
fn compare_oha(binary: &str, oha: &str, dir: &Path, o: &Options, stub: &Stub) {
    let body = serde_json::json!({
        "model": "stub-model",
        "messages": [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "question number 1"},
        ],
        "temperature": 0,
    });
    let latency = Duration::from_millis(o.latency_ms);
    // Wall time, then from the start to the first request, and from the last answer
    // to the end.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut start_up, mut tail) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let served = stub.requests().len();
        let started = Instant::now();
        let wall = timed_eval(binary, dir, None).0;
        ours.push(wall);
        let asked = stub.requests();
        let first = asked[served..].iter().map(|r| r.at).min().expect("asked");
        let last = asked[served..].iter().map(|r| r.at).max().expect("asked");
        start_up.push(first - started);
        tail.push((started + wall).saturating_duration_since(last + latency));
        let served = stub.requests().len();
        let started = Instant::now();
        let output = Command::new(oha)
            .args([
                "--no-tui",
                "-m",
                "POST",
                "-H",
                "content-type: application/json",
            ])
            .args(["-n", &o.cases.to_string(), "-c", &o.concurrency.to_string()])
            .args(["-d", &body.to_string()])
            .arg(format!("{}/chat/completions", stub.base_url()))
            .output()
            .expect("oha runs");
        theirs.push(started.elapsed());
        assert!(output.status.success(), "oha failed");
        assert_eq!(
            stub.requests().len() - served,
            o.cases,
            "oha sent every request"
        );
    }
    let (ours, theirs) = (median(ours), median(theirs));
    let (start_up, tail) = (median(start_up), median(tail));
    println!(
        "eval --no-cache against oha: {} requests, {} at once, stub latency {} ms, median of 3 each",
        o.cases, o.concurrency, o.latency_ms
    );
    println!(
        "  eval           wall {:>7.3} s   (start to first request {:.3} s, last answer to end {:.3} s)",
        ours.as_secs_f64(),
        start_up.as_secs_f64(),
        tail.as_secs_f64()
    );
    println!("  oha            wall {:>7.3} s", theirs.as_secs_f64());
    println!(
        "  ratio          wall {:>7.3}",
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
}

/// CPU time (user + system) of the children waited for so far.
fn children_cpu() -> Duration {
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let t = usage.user_time() + usage.system_time();
    Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
}

/// One `eval` run, with the cache in `cache` (an empty directory) or none; its wall
/// and CPU time.
fn timed_eval(binary: &str, dir: &Path, cache: Option<&Path>) -> (Duration, Duration) {
    let mut cmd = Command::new(binary);
    cmd.args(["-C"]).arg(dir).arg("eval");
    match cache {
        Some(c) => cmd.env("PROMPTGATE_CACHE_DIR", c),
        None => cmd.arg("--no-cache"),
    };
    cmd.args(["--format", "json", "--output"])
        .arg(dir.join("result.json"))
        .env("CI", "true");
    let cpu_before = children_cpu();
    let started = Instant::now();
    let output = cmd.output().expect("promptgate runs");
    let wall = started.elapsed();
    assert!(
        output.status.success(),
        "eval failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (wall, children_cpu() - cpu_before)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn compare_cache(binary: &str, dir: &Path, o: &Options, stub: &Stub) {
    let (mut off, mut cold, mut warm) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..o.cache_runs {
        off.push(timed_eval(binary, dir, None));
        let cache = tempfile::tempdir_in(dir).expect("cache dir");
        cold.push(timed_eval(binary, dir, Some(cache.path())));
        let served = stub.requests().len();
        warm.push(timed_eval(binary, dir, Some(cache.path())));
        assert_eq!(
            stub.requests().len(),
            served,
            "a warm run answers every case from the cache"
        );
    }
    let wall = |v: &[(Duration, Duration)]| median(v.iter().map(|r| r.0).collect());
    let cpu = |v: &[(Duration, Duration)]| median(v.iter().map(|r| r.1).collect());
    println!(
        "eval, cold cache vs --no-cache: {} cases, concurrency {}, stub latency {} ms, median of {} runs each",
        o.cases, o.concurrency, o.latency_ms, o.cache_runs
    );
    println!(
        "  --no-cache     wall {:>7.3} s   CPU {:>7.3} s",
        wall(&off).as_secs_f64(),
        cpu(&off).as_secs_f64()
    );
    println!(
        "  cold cache     wall {:>7.3} s   CPU {:>7.3} s",
        wall(&cold).as_secs_f64(),
        cpu(&cold).as_secs_f64()
    );
    println!(
        "  ratio          wall {:>7.3}     CPU {:>7.3}",
        wall(&cold).as_secs_f64() / wall(&off).as_secs_f64(),
        cpu(&cold).as_secs_f64() / cpu(&off).as_secs_f64()
    );
    println!(
        "  warm cache     wall {:>7.3} s   CPU {:>7.3} s   (every answer a hit)",
        wall(&warm).as_secs_f64(),
        cpu(&warm).as_secs_f64()
    );
}
