//! `rollout check --prometheus` and `rollout watch` against a real Prometheus server
//! (Debian's package, found by `scripts/prometheus.sh`), scraping counters an exporter
//! in this test serves every second. The check is judged on what Prometheus answers,
//! not on a mock of its API. Without the server these tests say so and are skipped,
//! unless `PROMPTGATE_REQUIRE_PROMETHEUS` is set (as `.ci/run` does): then they fail.
//!
//! Waiting here is waiting for a real server to scrape: each wait polls what Prometheus
//! answers, with a deadline.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The counters the exporter serves.
const COUNTERS: [&str; 5] = [
    "app_requests_total",
    "app_fallbacks_total",
    "app_escalations_total",
    "app_corrections_total",
    "app_thumbs_down_total",
];

/// Request handlers of the tiny HTTP servers here: the request's body in, the
/// answer's body out.
type Handler = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Serve HTTP/1.0-style (one request a connection) on a free local port.
fn serve(handler: Handler) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handler = handler.clone();
            std::thread::spawn(move || answer(stream, &*handler));
        }
    });
    port
}

fn answer(stream: TcpStream, handler: &(dyn Fn(&str) -> String + Send + Sync)) {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let text = handler(&String::from_utf8_lossy(&body));
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

/// Counters by (name, labels), in Prometheus's text format.
#[derive(Clone, Default)]
struct Exporter(Arc<Mutex<BTreeMap<(String, String), u64>>>);

impl Exporter {
    fn set(&self, artifact: &str, version: &str, segment: &str, counts: [u64; 5]) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, n) in COUNTERS.iter().zip(counts) {
            let labels =
                format!(r#"prompt_id="{artifact}",prompt_version="{version}",segment="{segment}""#);
            map.insert((name.to_string(), labels), n);
        }
    }

    fn add(&self, artifact: &str, version: &str, segment: &str, requests: u64) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let labels =
            format!(r#"prompt_id="{artifact}",prompt_version="{version}",segment="{segment}""#);
        *map.entry((COUNTERS[0].to_string(), labels)).or_default() += requests;
    }

    fn text(&self) -> String {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        for name in COUNTERS {
            out.push_str(&format!("# TYPE {name} counter\n"));
            for ((n, labels), value) in map.iter() {
                if n == name {
                    out.push_str(&format!("{name}{{{labels}}} {value}\n"));
                }
            }
        }
        out
    }
}

/// A Prometheus server scraping an [`Exporter`] every second; killed when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    exporter: Exporter,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// GET `path` of the local server at `port`: (status, body).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

impl Prometheus {
    /// Started, or `None` (and why, printed) when there is no server to start.
    fn start() -> Option<Prometheus> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let found = Command::new("bash")
            .arg(root.join("scripts/prometheus.sh"))
            .output()
            .expect("bash runs");
        if !found.status.success() {
            let why = String::from_utf8_lossy(&found.stderr).trim().to_string();
            // The harness's own switch, not an environment promptgate reads.
            #[allow(clippy::disallowed_methods)]
            let required = std::env::var_os("PROMPTGATE_REQUIRE_PROMETHEUS").is_some();
            assert!(
                !required,
                "PROMPTGATE_REQUIRE_PROMETHEUS is set, but: {why}"
            );
            eprintln!("skipped: no Prometheus server here ({why})");
            return None;
        }
        let binary = String::from_utf8_lossy(&found.stdout).trim().to_string();
        let exporter = Exporter::default();
        let served = exporter.clone();
        let exporter_port = serve(Arc::new(move |_| served.text()));
        let dir = tempfile::tempdir().expect("tmp");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n"
            ),
        )
        .expect("config");
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        let prometheus = Prometheus {
            child,
            port,
            exporter,
            _dir: dir,
        };
        prometheus.until("ready", || {
            get(port, "/-/ready").is_some_and(|(status, _)| status == 200)
        });
        Some(prometheus)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Poll until `done`, for at most 60 s.
    fn until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "Prometheus never got {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The value Prometheus has now for `promql`, summed over the answer.
    fn value(&self, promql: &str) -> Option<f64> {
        let mut url = reqwest::Url::parse("http://x/api/v1/query").expect("url");
        url.query_pairs_mut().append_pair("query", promql);
        let (_, body) = get(self.port, &format!("/api/v1/query?{}", url.query()?))?;
        let answer: Value = serde_json::from_str(&body).ok()?;
        let result = answer["data"]["result"].as_array()?;
        if result.is_empty() {
            return None;
        }
        Some(
            result
                .iter()
                .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
                .sum(),
        )
    }

    /// Set the counters of each (artifact, version, segment) to zero, wait until
    /// Prometheus has scraped them, then to their counts, and wait again: `increase`
    /// over a window since before then counts them.
    fn serve_counts(&self, counts: &[(&str, &str, &str, [u64; 5])]) {
        for (artifact, version, segment, _) in counts {
            self.exporter.set(artifact, version, segment, [0; 5]);
        }
        let all = counts.len() as f64;
        self.until("the zeros", || {
            self.value("count(app_requests_total == 0)")
                .is_some_and(|n| n >= all)
        });
        for (artifact, version, segment, c) in counts {
            self.exporter.set(artifact, version, segment, *c);
        }
        let total: u64 = counts.iter().map(|c| c.3[0]).sum();
        self.until("the counts", || {
            self.value("sum(app_requests_total)")
                .is_some_and(|n| n >= total as f64)
        });
    }
}

/// The queries of an artifact, `requests` as given.
fn queries(requests: &str) -> Value {
    let q = |m: &str| {
        format!(
            r#"sum by (segment) (increase({m}{{prompt_id="{{artifact}}", prompt_version="{{version}}"}}[{{window}}]))"#
        )
    };
    json!({
        "requests": requests,
        "fallbacks": q("app_fallbacks_total"),
        "escalations": q("app_escalations_total"),
        "corrections": q("app_corrections_total"),
    })
}

const REQUESTS: &str = r#"sum by (segment) (increase(app_requests_total{prompt_id="{artifact}", prompt_version="{version}"}[{window}]))"#;

/// A runtime config in a temporary directory: one artifact rolling out version 4 over
/// stable 3 at stage internal since now, asking `prometheus`.
struct Dir {
    tmp: tempfile::TempDir,
    artifact: String,
}

impl Dir {
    fn new(artifact: &str, prometheus: Value, thresholds: Value) -> Dir {
        let tmp = tempfile::tempdir().expect("tmp");
        let since = jiff::Timestamp::now().to_string();
        // Judged on what Prometheus answers within seconds: no stage waits to bake.
        let mut thresholds = thresholds;
        thresholds["min_bake"] =
            json!({"internal": "0s", "low-risk": "0s", "cohort": "0s", "all": "0s"});
        let config = json!({
            "format": "promptgate.runtime/v1",
            "artifacts": {artifact: {
                "stable": {"version": 3},
                "canary": {"version": 4, "stage": "internal", "segments": ["internal"], "percent": 100, "since": since},
                "thresholds": thresholds,
                "prometheus": prometheus,
            }},
        });
        let dir = Dir {
            tmp,
            artifact: artifact.to_string(),
        };
        std::fs::create_dir_all(dir.runtime().parent().expect("parent")).expect("mkdir");
        std::fs::write(dir.runtime(), config.to_string()).expect("write");
        dir
    }

    fn runtime(&self) -> PathBuf {
        self.tmp.path().join("deploy/prompts.runtime.yaml")
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = common::promptgate()
            .current_dir(self.tmp.path())
            .env("PROMPTGATE_RETRY_BASE_MS", "1")
            .args(args)
            .arg("--runtime")
            .arg(self.runtime())
            .timeout(Duration::from_secs(120))
            .output()
            .expect("runs");
        common::outcome(out)
    }

    fn check(&self, url: &str) -> (i32, String, String) {
        self.run(&["rollout", "check", &self.artifact, "--prometheus", url])
    }

    fn release(&self) -> Value {
        let (code, out, err) = self.run(&["rollout", "status", "--format", "json"]);
        assert_eq!(code, 0, "{err}");
        let status: Value = serde_json::from_str(&out).expect("json");
        status["artifacts"][&self.artifact].clone()
    }
}

#[test]
fn check_judges_the_canary_on_what_prometheus_answers() {
    let Some(prometheus) = Prometheus::start() else {
        return;
    };
    let url = prometheus.url();
    let defaults = json!({});
    let healthy = Dir::new("healthy", queries(REQUESTS), defaults.clone());
    let breach = Dir::new("breach", queries(REQUESTS), defaults.clone());
    let few = Dir::new("few", queries(REQUESTS), defaults.clone());
    let mut custom = queries(REQUESTS);
    custom["custom"] = json!({"thumbs_down": {
        "query": r#"sum by (segment) (increase(app_thumbs_down_total{prompt_id="{artifact}", prompt_version="{version}"}[{window}]))"#,
        "max_rate": 0.05,
    }});
    let thumbs = Dir::new("thumbs", custom, defaults.clone());
    let broken = Dir::new(
        "healthy",
        queries(
            r#"sum by (segment) (increase(app_requests_total{prompt_id="{artifact}", prompt_version="{version}"}[{window}])"#,
        ),
        defaults.clone(),
    );
    let misspelt = Dir::new(
        "healthy",
        queries(
            r#"sum by (segment) (increase(app_requets_total{prompt_id="{artifact}", prompt_version="{version}"}[{window}]))"#,
        ),
        defaults,
    );
    // [requests, fallbacks, escalations, corrections, thumbs down]
    prometheus.serve_counts(&[
        ("healthy", "4", "internal", [400, 4, 2, 1, 0]),
        // A segment the canary does not serve at this stage: not its to answer for.
        ("healthy", "4", "intent/refund", [400, 400, 400, 400, 0]),
        ("healthy", "3", "internal", [4000, 40, 20, 10, 0]),
        ("breach", "4", "internal", [400, 100, 2, 1, 0]),
        ("breach", "3", "internal", [4000, 40, 20, 10, 0]),
        ("few", "4", "internal", [10, 0, 0, 0, 0]),
        ("few", "3", "internal", [4000, 40, 20, 10, 0]),
        ("thumbs", "4", "internal", [400, 0, 0, 0, 100]),
        ("thumbs", "3", "internal", [4000, 40, 20, 10, 40]),
    ]);

    // Healthy: it may advance, and `advance --prometheus` advances it.
    let (code, out, err) = healthy.check(&url);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("healthy: "), "{out}");
    let (code, out, err) = healthy.run(&[
        "rollout",
        "advance",
        "healthy",
        "--from",
        "internal",
        "--prometheus",
        &url,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(healthy.release()["canary"]["stage"], "low-risk", "{out}");

    // Much worse than stable: a breach, counted; Prometheus then down holds and does
    // not reset the count; the next breach freezes.
    let (code, out, err) = breach.check(&url);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("BREACH: fallback rate"), "{out}");
    assert!(out.contains("breach 1 in a row"), "{out}");
    let down = format!("http://127.0.0.1:{}", free_port());
    let before = std::fs::read(breach.runtime()).expect("read");
    let (code, out, err) = breach.check(&down);
    assert_eq!(code, 5, "{out}{err}");
    assert!(
        out.contains("breach: hold: cannot judge the canary: Prometheus at http://127.0.0.1:")
            && out.contains("(after 4 attempts)")
            && out.contains("nothing changed"),
        "{out}"
    );
    assert_eq!(std::fs::read(breach.runtime()).expect("read"), before);
    let (code, out, err) = breach.check(&url);
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        out.contains("frozen, all traffic back on stable version 3"),
        "{out}"
    );
    assert_eq!(breach.release()["frozen"], true);

    // Too few samples: hold, and `advance` does not move it.
    let (code, out, err) = few.check(&url);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("few: hold: "), "{out}");
    let (code, out, err) = few.run(&[
        "rollout",
        "advance",
        "few",
        "--from",
        "internal",
        "--prometheus",
        &url,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(few.release()["canary"]["stage"], "internal", "{out}");

    // A user-defined rate is held to its threshold by the same tests.
    let (code, out, err) = thumbs.check(&url);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("BREACH: thumbs_down rate"), "{out}");

    // Prometheus down, a query it refuses, an empty answer: hold with the reason
    // (exit 5), never an advance.
    for (dir, server, expected) in [
        (&few, down.as_str(), "Connection refused"),
        (&broken, url.as_str(), "bad_data: "),
        (&misspelt, url.as_str(), "answered nothing"),
    ] {
        let (code, out, err) = dir.check(server);
        assert_eq!(code, 5, "{out}{err}");
        assert!(
            out.contains("hold: cannot judge") && out.contains(expected),
            "{out}"
        );
        let (code, out, err) = dir.run(&[
            "rollout",
            "advance",
            &dir.artifact,
            "--from",
            "internal",
            "--prometheus",
            server,
        ]);
        assert_eq!(code, 5, "{out}{err}");
        assert!(!out.contains("advanced"), "{out}");
    }
    assert_eq!(few.release()["canary"]["stage"], "internal");

    // A watch stops cleanly on SIGTERM between two checks.
    let mut watch = Command::new(assert_cmd::cargo::cargo_bin!("promptgate"))
        .args([
            "rollout",
            "watch",
            "few",
            "--prometheus",
            &url,
            "--interval",
            "1h",
            "--runtime",
        ])
        .arg(few.runtime())
        .stdout(Stdio::piped())
        .spawn()
        .expect("watch starts");
    let mut lines = BufReader::new(watch.stdout.take().expect("stdout")).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(first.contains("few: hold: "), "{first}");
    let killed = Command::new("kill")
        .args(["-TERM", &watch.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = watch.wait().expect("exits");
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert!(rest.join("\n").contains("stopped by a signal"), "{rest:?}");
}

/// A webhook receiver: every body posted to it.
fn webhook() -> (u16, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let kept = got.clone();
    let port = serve(Arc::new(move |body: &str| {
        if let Ok(v) = serde_json::from_str(body) {
            kept.lock().unwrap_or_else(PoisonError::into_inner).push(v);
        }
        "ok".into()
    }));
    (port, got)
}

#[test]
fn watch_freezes_a_breaching_canary_and_tells_the_webhook() {
    let Some(prometheus) = Prometheus::start() else {
        return;
    };
    let dir = Dir::new("support", queries(REQUESTS), json!({}));
    prometheus.serve_counts(&[
        ("support", "4", "internal", [400, 100, 2, 1, 0]),
        ("support", "3", "internal", [4000, 40, 20, 10, 0]),
    ]);
    let (hook, got) = webhook();
    let flagd = dir.tmp.path().join("flags.json");
    let (code, out, err) = dir.run(&[
        "rollout",
        "watch",
        "support",
        "--prometheus",
        &prometheus.url(),
        "--interval",
        "1s",
        "--notify-url",
        &format!("http://127.0.0.1:{hook}/services/T0/B0/secret"),
        "--flagd",
        flagd.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(out.contains("breach 1 in a row"), "{out}");
    assert!(out.contains("the watch ends"), "{out}");
    let texts: Vec<String> = got
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|v| v["text"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[0].contains("`support` version 4 breached its thresholds"),
        "{texts:?}"
    );
    assert!(
        texts[1].contains("`support` version 4 FROZEN at stage internal"),
        "{texts:?}"
    );
    // flagd serves what the file says: stable for everyone.
    let (_, exported, _) = dir.run(&["export", "--format", "flagd"]);
    assert_eq!(
        std::fs::read_to_string(&flagd).expect("flagd file"),
        exported
    );
}

#[test]
fn watch_advances_a_healthy_canary_to_stable() {
    let Some(prometheus) = Prometheus::start() else {
        return;
    };
    // Allowed by `--auto-advance`, then by the policy in the runtime config.
    for policy in [false, true] {
        watch_to_stable(&prometheus, policy);
    }
}

fn watch_to_stable(prometheus: &Prometheus, policy: bool) {
    let low = json!({"internal": 10, "low-risk": 10, "cohort": 10, "all": 10});
    let dir = Dir::new(
        "support",
        queries(REQUESTS),
        json!({"min_samples": low, "auto_advance": policy}),
    );
    prometheus.serve_counts(&[
        ("support", "4", "internal", [0, 0, 0, 0, 0]),
        ("support", "3", "internal", [0, 0, 0, 0, 0]),
    ]);
    // Traffic goes on: every stage's window sees requests of its own.
    let exporter = prometheus.exporter.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let traffic = std::thread::spawn(move || {
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            exporter.add("support", "4", "internal", 20);
            exporter.add("support", "3", "internal", 200);
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let (hook, got) = webhook();
    let url = prometheus.url();
    let notify = format!("http://127.0.0.1:{hook}/");
    let mut args = vec!["rollout", "watch", "support", "--prometheus", &url];
    args.extend(["--interval", "1s", "--notify-url", &notify]);
    if !policy {
        args.push("--auto-advance");
    }
    let (code, out, err) = dir.run(&args);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = traffic.join();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("the rollout is complete"), "{out}");
    let release = dir.release();
    assert_eq!(release["stable"]["version"], 4, "{out}");
    assert!(release["canary"].is_null());
    let texts: Vec<String> = got
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|v| v["text"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert!(
        texts[3].contains("version 4 promoted: stable for everyone"),
        "{texts:?}"
    );
}

/// A query that would count canary and stable alike, or put a version where it cannot
/// be escaped, is refused where it is written, before Prometheus is asked.
#[test]
fn a_query_without_its_placeholders_is_refused_at_its_place() {
    let dir = Dir::new("support", queries(REQUESTS), json!({}));
    let q = |m: &str| {
        format!("'sum by (segment) (increase({m}{{prompt_version=\"{{version}}\"}}[{{window}}]))'")
    };
    let yaml = format!(
        "format: promptgate.runtime/v1\nartifacts:\n  support:\n    stable: {{version: 3}}\n    prometheus:\n      requests: 'sum by (segment) (increase(app_requests_total[{{window}}]))'\n      fallbacks: {}\n      escalations: 'sum by (segment) (increase(x{{v={{version}}}}[{{window}}]))'\n      corrections: {}\n",
        q("f"),
        q("c")
    );
    std::fs::write(dir.runtime(), yaml).expect("write");
    let before = std::fs::read(dir.runtime()).expect("read");
    let (code, out, err) = dir.check("http://127.0.0.1:9");
    assert_eq!(code, 3, "{out}{err}");
    let file = dir.runtime().display().to_string();
    assert!(
        err.contains(&format!(
            "{file}:6:17: `support`: `prometheus.requests` has no `{{version}}`: canary and stable would count the same requests"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{file}:8:20: `support`: `prometheus.escalations`: `{{version}}` must stand inside a double-quoted string"
        )),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.runtime()).expect("read"), before);
}
