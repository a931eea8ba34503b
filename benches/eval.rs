//! Benchmark: the eval engine against the stub provider at a fixed latency, next to the
//! physical limit ceil(N/C)·latency (no engine can finish sooner with C requests in
//! flight). Prints figures; asserts nothing about time.
//!
//! Run: `cargo bench --bench eval` (options: `-- --cases N --concurrency C --latency-ms L`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};
use promptgate_stub::{Reply, Stub, StubConfig};

struct Options {
    cases: usize,
    concurrency: usize,
    latency_ms: u64,
}

fn options() -> Options {
    let mut o = Options {
        cases: 10_000,
        concurrency: 64,
        latency_ms: 50,
    };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        let n = pair[1].parse().ok();
        match (pair[0].as_str(), n) {
            ("--cases", Some(n)) => o.cases = n,
            ("--concurrency", Some(n)) => o.concurrency = n,
            ("--latency-ms", Some(n)) => o.latency_ms = n as u64,
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
    let binary = env!("CARGO_BIN_EXE_promptgate");

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
