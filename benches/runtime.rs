//! The runtime layer with 1,000 artifacts: time per resolution in-process (goal under
//! 2 µs), time to write the flagd export (goal under 20 ms), and the time from a
//! `promptgate rollback --flagd` to flagd's evaluator (the Python OpenFeature SDK with
//! the flagd provider, reading the file; scripts/flagd.sh installs it) serving the old
//! version. Prints figures; asserts nothing.
//!
//! Run: `cargo bench --bench runtime` (options: `-- --artifacts N --requests N
//! --rollbacks N --poll-ms MS`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use promptgate::rollout::command::{parse, render};
use promptgate::rollout::{Resolver, Runtime, flagd};

/// The allocator of the `promptgate` binary, so the figures are the command's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Options {
    artifacts: usize,
    requests: usize,
    rollbacks: usize,
    poll_ms: u64,
}

fn options() -> Options {
    let mut o = Options {
        artifacts: 1_000,
        requests: 1_000_000,
        rollbacks: 5,
        poll_ms: 200,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = || args.get(i + 1).and_then(|v| v.parse().ok());
        match args[i].as_str() {
            "--artifacts" => o.artifacts = value().expect("--artifacts N"),
            "--requests" => o.requests = value().expect("--requests N"),
            "--rollbacks" => o.rollbacks = value().expect("--rollbacks N"),
            "--poll-ms" => o.poll_ms = value().expect("--poll-ms MS") as u64,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// A runtime config of `n` artifacts, each with a canary at one of the stages and
/// stages of literal, prefix, suffix and brace globs.
fn runtime_text(n: usize) -> String {
    let stages = ["internal", "low-risk", "cohort", "all"];
    let mut text = String::from("format: promptgate.runtime/v1\nartifacts:\n");
    for i in 0..n {
        let stage = stages[i % stages.len()];
        let (segments, percent) = match stage {
            "internal" => (r#"[internal, "staff/*"]"#, 100),
            "low-risk" => (r#"["intent/order-*", "*/delivery"]"#, 10),
            "cohort" => (r#"["geo/{eu,uk}"]"#, 50),
            _ => (r#"["*"]"#, 100),
        };
        text.push_str(&format!(
            "  app{i}.prompt:\n    stable: {{version: {v}}}\n    history: [{{version: {h}}}]\n    canary: {{version: {c}, stage: {stage}, segments: {segments}, percent: {percent}, since: \"2026-01-07T09:00:00Z\"}}\n    stages:\n      internal: {{segments: [internal, \"staff/*\"], percent: 100}}\n      low-risk: {{segments: [\"intent/order-*\", \"*/delivery\"], percent: 10}}\n      cohort: {{segments: [\"geo/{{eu,uk}}\"], percent: 50}}\n      all: {{segments: [\"*\"], percent: 100}}\n",
            v = 10 + i % 7,
            h = 9 + i % 7,
            c = 11 + i % 7,
        ));
    }
    text
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let o = options();
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime_path = dir.path().join("prompts.runtime.yaml");
    let text = runtime_text(o.artifacts);
    std::fs::write(&runtime_path, &text).expect("write");
    let runtime = parse(&runtime_path, &text).expect("valid");
    println!(
        "runtime config: {} artifacts, {} KB",
        o.artifacts,
        text.len() / 1024
    );

    // Resolution, in-process: keys and segments made up front.
    let segments = [
        "internal",
        "intent/order-status",
        "home/delivery",
        "geo/eu",
        "geo/us",
        "intent/refund",
    ];
    let requests: Vec<(String, String, usize)> = (0..o.requests.min(200_000))
        .map(|i| {
            (
                format!("app{}.prompt", (i * 7919) % o.artifacts),
                format!("user-{i}"),
                i % segments.len(),
            )
        })
        .collect();
    let start = Instant::now();
    let resolver = Resolver::new(&runtime);
    let compile = start.elapsed();
    let start = Instant::now();
    for i in 0..o.requests {
        let (artifact, key, s) = &requests[i % requests.len()];
        std::hint::black_box(resolver.resolve(artifact, &[segments[*s]], key));
    }
    let per = start.elapsed() / o.requests as u32;
    println!(
        "resolve: {:.2} µs per resolution over {} requests (goal < 2 µs); compiling the {} artifacts' globs once: {:.1} ms",
        per.as_secs_f64() * 1e6,
        o.requests,
        o.artifacts,
        compile.as_secs_f64() * 1e3,
    );

    // The flagd export: made and written atomically, as `--flagd` does.
    let out = dir.path().join("flags.json");
    let (mut times, mut made) = (Vec::new(), Vec::new());
    let mut size = 0;
    for _ in 0..21 {
        let start = Instant::now();
        let json = flagd::export_text(&runtime_path, &runtime).expect("exports");
        made.push(start.elapsed());
        promptgate::store::write_durably(&out, &json).expect("writes");
        times.push(start.elapsed());
        size = json.len();
    }
    println!(
        "flagd export: {:.1} ms median of 21 to make and write {} KB, of which making it {:.1} ms (goal < 20 ms)",
        median(times).as_secs_f64() * 1e3,
        size / 1024,
        median(made).as_secs_f64() * 1e3,
    );

    rollback_to_served(&o, dir.path(), &runtime);
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// From `promptgate rollback --flagd` starting to flagd's evaluator answering the old
/// version, with the evaluator polling the file every `poll_ms`.
fn rollback_to_served(o: &Options, dir: &Path, runtime: &Runtime) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let installed = Command::new("bash")
        .arg(root.join("scripts/flagd.sh"))
        .output()
        .expect("bash");
    if !installed.status.success() {
        println!(
            "rollback → flagd: skipped ({})",
            String::from_utf8_lossy(&installed.stderr).trim()
        );
        return;
    }
    let pythonpath = String::from_utf8_lossy(&installed.stdout)
        .trim()
        .to_string();
    let runtime_path = dir.join("prompts.runtime.yaml");
    let flags = dir.join("flags.json");
    let artifact = "app3.prompt"; // canary at `all`, 100%: every key gets it
    let watcher = format!(
        "import sys, time\nsys.path.insert(0, {examples:?})\nimport serve\nf = serve.client({flags:?}, {poll})\nlast = None\nwhile True:\n    v = serve.version(f, {artifact:?}, 'user-1', [])\n    if v != last:\n        print(v, time.time(), flush=True)\n        last = v\n    time.sleep(0.001)\n",
        examples = root.join("docs/examples/python").display().to_string(),
        flags = flags.display().to_string(),
        poll = o.poll_ms,
    );
    let mut child = Command::new("python3")
        .args(["-c", &watcher])
        .env("PYTHONPATH", &pythonpath)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = || -> (String, f64) {
        let line = lines.next().expect("a line").expect("read");
        let (v, at) = line.split_once(' ').expect("version and time");
        (v.to_string(), at.parse().expect("time"))
    };
    let pg = root.join("target/release/promptgate");
    let pg = if pg.exists() {
        pg
    } else {
        root.join("target/debug/promptgate")
    };
    let stable = runtime.artifacts[artifact].stable.version.text();
    let canary = runtime.artifacts[artifact]
        .canary
        .as_ref()
        .expect("a canary")
        .version
        .text();
    let mut waits = Vec::new();
    for round in 0..=o.rollbacks {
        // The canary back in place, exported, and seen by the evaluator.
        std::fs::write(&runtime_path, render(runtime).expect("renders")).expect("write");
        flagd::mirror(&runtime_path, &flags).expect("export");
        loop {
            let (v, _) = next();
            if v == canary {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        let started = now();
        let status = Command::new(&pg)
            .arg("rollback")
            .arg(artifact)
            .args(["--from", &canary, "--runtime"])
            .arg(&runtime_path)
            .arg("--flagd")
            .arg(&flags)
            .stdout(Stdio::null())
            .status()
            .expect("promptgate");
        assert!(status.success());
        let (v, at) = next();
        assert_eq!(v, stable);
        if round > 0 {
            waits.push(Duration::from_secs_f64(at - started));
        }
    }
    child.kill().ok();
    child.wait().ok();
    let mut ms: Vec<f64> = waits.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    println!(
        "rollback → flagd serving stable: median {:.0} ms, max {:.0} ms over {} rollbacks (evaluator polling every {} ms; {})",
        ms[ms.len() / 2],
        ms[ms.len() - 1],
        ms.len(),
        o.poll_ms,
        pg.display()
    );
}
