//! Mutation fuzzing of every format promptgate reads, a bounded number of inputs per
//! family in the normal test suite. Each input starts from a real file of its family and
//! is mutated the way broken and hostile files are: bytes flipped, lines cut, dropped or
//! repeated, template, YAML and JSON syntax spliced in, invalid UTF-8, a BOM, deep
//! nesting, chunks repeated until they are large. For each, reading it must
//!
//! - not panic;
//! - finish within [`DEADLINE`] (a hang fails the test instead of stalling it);
//! - take at most [`ceiling`] more memory at its peak (the process's resident size, as
//!   Linux counts it, measured one read at a time);
//! - either succeed or give problems located inside the file, by line and column.
//!
//! `tests/properties.rs` checks the loaders on generated text; this file starts from
//! real files, so that mutations reach past the syntax into each format's checks.
//! `PROPTEST_CASES=2560` runs ten times as many, for a longer run.

use std::sync::{Mutex, mpsc};
use std::time::Duration;

use std::path::Path;
use std::process::Command;

use promptgate::diag::{Diagnostic, Diagnostics, Pos};
use promptgate::eval::result::{self, EvalReport};
use promptgate::repo::Snapshot;
use promptgate::source::mem::MemTree;
use promptgate::validate;
use promptgate::{learn, rollout};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};

/// Reads are measured one at a time: the peak is the whole process's.
static MEASURED: Mutex<()> = Mutex::new(());

/// A figure of this process from `/proc/self/status`, in bytes.
fn status(field: &str) -> usize {
    let text = std::fs::read_to_string("/proc/self/status").expect("Linux's /proc");
    let kib = text
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    kib * 1024
}

/// Resets the process's peak resident size (`VmHWM`) to what it holds now.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak through /proc");
}

/// Longest one read may take, on a loaded 2-core machine, before it counts as a hang.
const DEADLINE: Duration = Duration::from_secs(20);

/// Most bytes one read of `input_len` bytes may hold at its peak: 64 MiB plus 64 times
/// the input, well under the documented ceiling for the largest input.
fn ceiling(input_len: usize) -> usize {
    (64 << 20) + 64 * input_len
}

/// What reading an input gave: its problems, as `(file, line, col, message)`.
type Read = Vec<Diagnostic>;

/// Runs `read` on its own thread and checks it ended, without a panic, within the
/// deadline and the memory ceiling.
fn guarded(
    input_len: usize,
    read: impl FnOnce() -> Read + Send + 'static,
) -> Result<Read, TestCaseError> {
    let _one_at_a_time = MEASURED.lock().unwrap_or_else(|e| e.into_inner());
    let before = status("VmRSS");
    reset_peak();
    let (send, receive) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = send.send(read());
    });
    match receive.recv_timeout(DEADLINE) {
        Ok(problems) => {
            let _ = thread.join();
            let peak = status("VmHWM").saturating_sub(before);
            prop_assert!(
                peak <= ceiling(input_len),
                "{peak} bytes more at the peak for a {input_len}-byte input"
            );
            Ok(problems)
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let panic = thread.join().err().map(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            });
            Err(TestCaseError::fail(format!("panicked: {panic:?}")))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => Err(TestCaseError::fail(format!(
            "still reading after {DEADLINE:?}"
        ))),
    }
}

/// Whether `line:col` points into `bytes` read as text: one of its lines, and a column
/// up to one past that line's end. Lines end at `\n` (as JSON counts them) or, as YAML
/// and editors count them, also at a lone `\r`.
fn inside(bytes: &[u8], line: usize, col: usize) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let fits = |lines: Vec<&str>| {
        line >= 1
            && col >= 1
            && lines
                .get(line - 1)
                .is_some_and(|l| col <= l.chars().count() + 1)
    };
    fits(text.split('\n').collect())
        || fits(
            text.split("\r\n")
                .flat_map(|l| l.split(['\r', '\n']))
                .collect(),
        )
}

/// Every problem names one of `files`, a place inside it, and says something.
fn located(files: &[(&str, &[u8])], problems: &[Diagnostic]) -> Result<(), TestCaseError> {
    for d in problems {
        let Some((_, bytes)) = files.iter().find(|(path, _)| *path == d.file) else {
            return Err(TestCaseError::fail(format!("names another file: {d}")));
        };
        prop_assert!(!d.message.trim().is_empty(), "no message: {d:?}");
        prop_assert!(inside(bytes, d.line, d.col), "{d} is outside the file");
    }
    Ok(())
}

/// One change to a file.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the byte at a point with another.
    Flip(prop::sample::Index, u8),
    /// Insert a fragment at a point.
    Splice(prop::sample::Index, &'static str),
    /// Cut the file at a point.
    Truncate(prop::sample::Index),
    /// Remove a line.
    DropLine(prop::sample::Index),
    /// Repeat a line this many times.
    RepeatLine(prop::sample::Index, usize),
    /// Repeat the stretch from one point to another until it is this many bytes long.
    Grow(prop::sample::Index, prop::sample::Index, usize),
    /// Wrap a stretch in this many brackets.
    Nest(prop::sample::Index, usize, bool),
}

/// Fragments that reach each syntax's corners.
const FRAGMENTS: &[&str] = &[
    "{{ x }}",
    "{{",
    "}}",
    "{% for i in range(100000000) %}",
    "{% endfor %}",
    "${{ secrets.TOKEN }}",
    "&a [*a, *a, *a, *a]",
    "*a",
    "&b",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "- ",
    "\n- ",
    "\n  ",
    "\t",
    "? ",
    "!!binary ",
    "!!python/object ",
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    "#",
    "\"",
    "'",
    "\\u0000",
    "\\ud800",
    "\u{feff}",
    "\u{202e}",
    "\u{1b}[2J",
    "\r\n",
    "\0",
    "null",
    "true",
    "-1",
    "1e999",
    "18446744073709551616",
    "0x10",
    ".nan",
    "../../../etc/passwd",
    "/dev/zero",
    "🙂",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let index = any::<prop::sample::Index>;
    prop_oneof![
        4 => (index(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        6 => (index(), prop::sample::select(FRAGMENTS)).prop_map(|(i, f)| Mutation::Splice(i, f)),
        1 => index().prop_map(Mutation::Truncate),
        2 => index().prop_map(Mutation::DropLine),
        2 => (index(), 2usize..500).prop_map(|(i, n)| Mutation::RepeatLine(i, n)),
        1 => (index(), index(), 1usize..(256 << 10)).prop_map(|(a, b, n)| Mutation::Grow(a, b, n)),
        1 => (index(), 1usize..300, any::<bool>()).prop_map(|(i, n, flow)| Mutation::Nest(i, n, flow)),
    ]
}

/// Line boundaries of `bytes`: the start of every line, and the end.
fn line_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1),
    );
    starts.push(bytes.len());
    starts
}

fn apply(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let point = |i: &prop::sample::Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
    match m {
        Mutation::Flip(i, b) if !bytes.is_empty() => {
            let at = i.index(bytes.len());
            bytes[at] = *b;
        }
        Mutation::Flip(..) => {}
        Mutation::Splice(i, fragment) => {
            let at = point(i, bytes.len());
            bytes.splice(at..at, fragment.bytes());
        }
        Mutation::Truncate(i) => bytes.truncate(point(i, bytes.len())),
        Mutation::DropLine(i) | Mutation::RepeatLine(i, _) => {
            let starts = line_starts(&bytes);
            let line = i.index(starts.len() - 1);
            let (from, to) = (starts[line], starts[line + 1]);
            let text = bytes[from..to].to_vec();
            if let Mutation::RepeatLine(_, n) = m {
                let copies: Vec<u8> = text.iter().copied().cycle().take(text.len() * n).collect();
                bytes.splice(from..to, copies);
            } else {
                bytes.drain(from..to);
            }
        }
        Mutation::Grow(a, b, n) => {
            let (x, y) = (point(a, bytes.len()), point(b, bytes.len()));
            let (from, to) = (x.min(y), x.max(y));
            if from < to {
                let grown: Vec<u8> = bytes[from..to].iter().copied().cycle().take(*n).collect();
                bytes.splice(from..to, grown);
            }
        }
        Mutation::Nest(i, depth, flow) => {
            let at = point(i, bytes.len());
            let (open, close) = if *flow { ("[", "]") } else { ("{\"a\":", "}") };
            bytes.splice(at..at, close.repeat(*depth).bytes());
            bytes.splice(at..at, open.repeat(*depth).bytes());
        }
    }
    bytes
}

/// A fuzzed file, shown as text when a case fails.
#[derive(Clone)]
struct Input(Vec<u8>);

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(&self.0);
        let shown: String = text.chars().take(4000).collect();
        write!(f, "{} bytes: {shown:?}", self.0.len())
    }
}

/// Inputs of a family: one of `seeds`, with up to eight mutations, and now and then as
/// Latin-1 or with a BOM.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Input> {
    (
        prop::sample::select(seeds),
        prop::collection::vec(mutation(), 0..8),
        0u8..10,
    )
        .prop_map(|(seed, mutations, encoding)| {
            let mut bytes = mutations.iter().fold(seed, apply);
            match encoding {
                0 => bytes.insert(0, 0xE9),
                1 => bytes.splice(0..0, "\u{feff}".bytes()).for_each(drop),
                _ => {}
            }
            Input(bytes)
        })
}

/// Runs `check` on `cases` inputs of a family. A failure is shown with its input
/// shrunk, and not saved: an integration test has no source file to save it beside.
fn fuzz(seeds: Vec<Vec<u8>>, cases: u32, check: impl Fn(Vec<u8>) -> Result<(), TestCaseError>) {
    // proptest's default count is 256, or `PROPTEST_CASES`: scale each family's with it.
    let defaults = RunnerConfig::default();
    let config = RunnerConfig {
        cases: cases * defaults.cases / 256,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..defaults
    };
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&mutated(seeds), |Input(bytes)| check(bytes)) {
        panic!("{e}");
    }
}

/// The demo's base repository, as `(path, bytes)`.
fn demo_repository() -> Vec<(String, Vec<u8>)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/base");
    let mut files = Vec::new();
    for entry in ignore::WalkBuilder::new(&root).hidden(false).build() {
        let entry = entry.expect("walk the demo");
        if entry.file_type().is_some_and(|t| t.is_file()) {
            let path = entry.path().strip_prefix(&root).expect("inside the demo");
            let bytes = std::fs::read(entry.path()).expect("read the demo");
            files.push((path.to_string_lossy().replace('\\', "/"), bytes));
        }
    }
    files
}

/// `validate` on the demo repository with `path` replaced by each input: every problem
/// located in a file of the repository.
fn fuzz_repository_file(path: &str, cases: u32) {
    let files = demo_repository();
    let seed = files
        .iter()
        .find(|(p, _)| p == path)
        .map(|(_, b)| b.clone())
        .unwrap_or_else(|| panic!("the demo has no {path}"));
    fuzz(vec![seed], cases, |bytes| {
        let mut files = files.clone();
        for (p, b) in &mut files {
            if p == path {
                *b = bytes.clone();
            }
        }
        let len = bytes.len();
        let in_tree = files.clone();
        let problems = guarded(len, move || {
            let mut tree = MemTree::new();
            for (p, b) in in_tree {
                tree.insert(&p, b);
            }
            let snapshot = Snapshot::open(&tree, None);
            validate::validate(&snapshot)
                .expect("the tree lists its files")
                .problems
        })?;
        let named: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_slice()))
            .collect();
        located(&named, &problems)
    });
}

#[test]
fn the_config_reads_or_says_where() {
    fuzz_repository_file(".promptgate.yaml", 64);
}

#[test]
fn artifacts_read_or_say_where() {
    fuzz_repository_file("prompts/support/assistant.prompt.yaml", 64);
}

#[test]
fn github_models_files_read_or_say_where() {
    fuzz_repository_file("prompts/classify/intent.prompt.yml", 64);
}

#[test]
fn suites_read_or_say_where() {
    fuzz_repository_file("evals/support.eval.yaml", 64);
}

#[test]
fn cases_files_read_or_say_where() {
    fuzz_repository_file("evals/support.cases.jsonl", 64);
}

#[test]
fn json_references_read_or_say_where() {
    fuzz_repository_file("tools/support.tools.json", 32);
    fuzz_repository_file("schemas/invoice.json", 32);
}

/// `bytes` as text, as every reader takes it: UTF-8, or a problem at the first bad byte.
fn text(path: &str, bytes: Vec<u8>) -> Result<String, Read> {
    promptgate::format::text_of(path, bytes).map_err(|d| d.0)
}

/// The problems an `anyhow` error holds, or one unlocated problem that fails
/// [`located`].
fn problems_of(e: &anyhow::Error) -> Read {
    match e.downcast_ref::<Diagnostics>() {
        Some(d) => d.0.clone(),
        None => vec![Diagnostic::new(
            "",
            Pos::START,
            format!("not located: {e:#}"),
        )],
    }
}

/// A runtime config as `rollout` writes it, with a canary and every optional field.
const RUNTIME: &str = r#"format: promptgate.runtime/v1
artifacts:
  support.assistant:
    stable: {version: 3, fingerprint: 2467cbcd0c89}
    history: [{version: 2}, {version: "two"}]
    frozen: false
    frozen_because: null
    canary:
      version: 4
      fingerprint: cee7c90b72de
      stage: low-risk
      segments: ["intent/order-status", "intent/*"]
      percent: 10
      since: 2026-01-07T09:00:00Z
    thresholds:
      max_fallback_rate: 0.05
      max_escalation_rate: 0.05
      max_manual_correction_rate: 0.05
      min_samples: {internal: 50, low-risk: 200, cohort: 500, all: 1000}
    stages:
      internal: {segments: [internal], percent: 100}
      low-risk: {segments: ["intent/order-status", "intent/delivery"], percent: 10}
      cohort: {segments: ["geo/eu"], percent: 50}
      all: {segments: ["*"], percent: 100}
"#;

#[test]
fn runtime_configs_read_or_say_where() {
    let path = "deploy/prompts.runtime.yaml";
    let parse = |text: &str| rollout::command::parse(Path::new(path), text);
    parse(RUNTIME).expect("the seed is a valid runtime config");
    fuzz(vec![RUNTIME.into()], 64, |bytes| {
        let input = bytes.clone();
        let problems = guarded(bytes.len(), move || match text(path, input) {
            Ok(text) => parse(&text)
                .err()
                .map(|e| problems_of(&e))
                .unwrap_or_default(),
            Err(problems) => problems,
        })?;
        located(&[(path, &bytes)], &problems)
    });
}

#[test]
fn metrics_files_read_or_say_where() {
    let jsonl = "{\"at\": \"2026-01-07T09:00:00Z\", \"version\": 4, \"segment\": \"internal\", \"fallback\": false}\n\
                 {\"at\": \"2026-01-07T09:00:00Z\", \"version\": \"4\", \"segment\": \"intent/delivery\", \"requests\": 80, \"fallbacks\": 1, \"escalations\": 2, \"corrections\": 0}\n";
    let csv = "at,version,segment,fallback,escalated,corrected\n2026-01-07T09:00:00Z,4,internal,false,false,true\n\
               2026-01-07T09:00:00Z,4,\"geo/eu, north\",true,false,false\n";
    for (path, seed) in [("canary.jsonl", jsonl), ("canary.csv", csv)] {
        let (_, problems) = rollout::metrics::parse(path, seed);
        assert!(
            problems.0.is_empty(),
            "the seed {path} is valid: {problems}"
        );
        fuzz(vec![seed.into()], 48, |bytes| {
            let input = bytes.clone();
            let problems = guarded(bytes.len(), move || match text(path, input) {
                Ok(text) => rollout::metrics::parse(path, &text).1.0,
                Err(problems) => problems,
            })?;
            located(&[(path, &bytes)], &problems)
        });
    }
}

#[test]
fn incidents_files_read_or_say_where() {
    let path = "incidents.jsonl";
    let seed = r#"{"kind": "unexpected-refusal", "artifact": "support.refund", "ticket": "SUP-88", "vars": {"question": "Can I get a refund for order 1042?"}, "output": "I'm sorry, but I can't help with that."}
{"kind": "wrong-tool-sequence", "vars": {"question": "My parcel came 3 weeks late"}, "tool_results": {"lookup_order": {"content": {"status": "delivered", "days_late": 21}}}, "expected_tools": ["lookup_order", "issue_refund"]}
{"kind": "hallucinated-field", "vars": {"question": "Refund status?"}, "allowed_keys": ["decision", "reason"], "output": "{\"decision\": \"approve\", \"iban\": \"DE00\"}"}
{"kind": "excessive-verbosity", "vars": {"question": "Thanks!"}, "max_words": 40, "note": "a 300-word goodbye"}
"#;
    let (_, problems) = learn::parse_incidents(path, seed);
    assert!(problems.0.is_empty(), "the seed is valid: {problems}");
    fuzz(vec![seed.into()], 64, |bytes| {
        let input = bytes.clone();
        let problems = guarded(bytes.len(), move || match text(path, input) {
            Ok(text) => learn::parse_incidents(path, &text).1.0,
            Err(problems) => problems,
        })?;
        located(&[(path, &bytes)], &problems)
    });
}

/// Gate evidence and the results `eval` writes for `merge`, as the demo's pull request
/// gives them (replayed, offline).
fn demo_outputs() -> (Vec<u8>, Vec<u8>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo-repo.sh");
    let made = Command::new("bash")
        .arg(script)
        .arg(&dir)
        .output()
        .expect("bash runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let evidence = dir.join("evidence.json");
    let promptgate = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_promptgate"));
        c.arg("-C").arg(&dir).env("HOME", tmp.path());
        c
    };
    promptgate()
        .args(["gate", "--base", "main", "--head", "prompt-update"])
        .args(["--provider", "recorded", "--no-cache", "--evidence"])
        .arg(&evidence)
        .output()
        .expect("gate runs");
    let results = promptgate()
        .args([
            "eval",
            "--provider",
            "recorded",
            "--no-cache",
            "--format",
            "json",
        ])
        .output()
        .expect("eval runs");
    (
        std::fs::read(&evidence).expect("the gate wrote its evidence"),
        results.stdout,
    )
}

#[test]
fn evidence_and_result_files_read_or_say_where() {
    let (evidence, results) = demo_outputs();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("evidence.json");
    let name = file.display().to_string();
    fuzz(vec![evidence], 32, |bytes| {
        std::fs::write(&file, &bytes).expect("write");
        let at = file.clone();
        let problems = guarded(bytes.len(), move || {
            match rollout::command::check_evidence(&at, "support.assistant", "4") {
                // Refusals of a well-formed bundle (a blocked verdict, another version)
                // are about its content, not where it is broken.
                Err(e) if e.downcast_ref::<Diagnostics>().is_none() => Vec::new(),
                Err(e) => problems_of(&e),
                Ok(_) => Vec::new(),
            }
        })?;
        located(&[(&name, &bytes)], &problems)
    });
    let path = "shard.json";
    serde_json::from_slice::<EvalReport>(&results).expect("the seed is `eval`'s JSON");
    fuzz(vec![results], 32, |bytes| {
        let input = bytes.clone();
        let problems = guarded(bytes.len(), move || match text(path, input) {
            Ok(text) => match serde_json::from_str::<EvalReport>(&text) {
                Ok(report) => {
                    let _ = result::merge(vec![report.clone(), report]);
                    Vec::new()
                }
                Err(e) => promptgate::format::json_problem(path, "not eval's JSON", &e).0,
            },
            Err(problems) => problems,
        })?;
        located(&[(path, &bytes)], &problems)
    });
}
