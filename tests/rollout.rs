//! `promptgate rollout` and `promptgate rollback` on a runtime config in a temporary
//! directory: every transition, breach and hold, evidence checks, crash safety and
//! concurrent writers.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

const START: [&str; 7] = [
    "rollout",
    "start",
    "support",
    "--version",
    "4",
    "--stable",
    "3",
];

/// A native artifact `id` at `version`, as a file of the repository.
fn artifact(id: &str, version: &str) -> String {
    format!(
        "id: {id}\nversion: {version}\nmodel: {{provider: openai, name: gpt-4o-mini}}\nmessages: [{{role: user, content: hi}}]\n"
    )
}

/// A git repository whose artifact `support` was version 3, then 4 (HEAD); the runtime
/// config goes in its `deploy/`.
struct Dir {
    repo: common::Repo,
}

impl Dir {
    fn new() -> Dir {
        let mut repo = common::Repo::new();
        for v in ["3", "4"] {
            repo.write("prompts/support.prompt.yaml", &artifact("support", v));
            repo.commit(&format!("support {v}"));
        }
        Dir { repo }
    }

    fn root(&self) -> &Path {
        self.repo.path()
    }

    fn runtime(&self) -> PathBuf {
        self.root().join("deploy/prompts.runtime.yaml")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root().join(name)
    }

    /// Run promptgate with `--runtime` pointing here; (exit code, stdout, stderr). A run
    /// that waits for ever (on a named pipe, say) is killed, and its code is -1.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = common::promptgate()
            .current_dir(self.root())
            .env("PROMPTGATE_ACTOR", "oncall-dana")
            .args(args)
            .arg("--runtime")
            .arg(self.runtime())
            .timeout(Duration::from_secs(60))
            .output()
            .expect("runs");
        common::outcome(out)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "{args:?}\n{out}\n{err}");
        out
    }

    /// Version 4 of `support` starts rolling out; 3 is stable.
    fn start(&self) -> String {
        self.ok(&START)
    }

    /// `START` with the gate evidence in `file`.
    fn start_with_evidence(&self, file: &std::path::Path) -> (i32, String, String) {
        let mut args = START.to_vec();
        args.extend(["--evidence", file.to_str().expect("utf8")]);
        self.run(&args)
    }

    fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["rollout", "status", "--format", "json"])).expect("json")
    }

    fn release(&self, artifact: &str) -> Value {
        self.status()["artifacts"][artifact].clone()
    }

    /// The canary's stage began `minutes` ago, as if the runtime config had said so
    /// since: how tests move time on without waiting.
    fn began(&self, minutes: i64) {
        let text = std::fs::read_to_string(self.runtime()).expect("runtime");
        let since = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(minutes);
        let edited: String = text
            .lines()
            .map(|l| match l.split_once("since: ") {
                Some((indent, _)) => format!("{indent}since: \"{since}\"\n"),
                None => format!("{l}\n"),
            })
            .collect();
        assert_ne!(edited, text, "a canary with `since`");
        std::fs::write(self.runtime(), edited).expect("write");
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write");
        p
    }
}

/// `rollout advance support` without metrics: an override.
const FORCED_ADVANCE: [&str; 8] = [
    "rollout", "advance", "support", "--from", "internal", "--force", "--why", "test",
];

fn forced_advance(from: &str) -> Vec<&str> {
    let mut args = FORCED_ADVANCE.to_vec();
    args[4] = from;
    args
}

/// Now, as metrics rows write it: rows written after a stage began count in it.
fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn metrics_lines(version: &str, segment: &str, requests: usize, fallbacks: usize) -> String {
    let at = now();
    (0..requests)
        .map(|i| {
            format!(
                "{}\n",
                json!({"at": at, "version": version, "segment": segment, "fallback": i < fallbacks})
            )
        })
        .collect()
}

#[test]
fn every_transition_from_first_rollout_to_rollback() {
    let d = Dir::new();
    let out = d.start();
    assert!(out.contains("started at stage internal"), "{out}");
    let canary = |d: &Dir| d.release("support")["canary"].clone();
    assert_eq!(canary(&d)["stage"], "internal");
    for (from, stage) in [
        ("internal", "low-risk"),
        ("low-risk", "cohort"),
        ("cohort", "all"),
    ] {
        d.ok(&forced_advance(from));
        assert_eq!(canary(&d)["stage"], stage);
    }
    let out = d.ok(&forced_advance("all"));
    assert!(
        out.contains("version 4 advanced from stage all and is now stable"),
        "{out}"
    );
    let r = d.release("support");
    assert_eq!(r["stable"]["version"], 4);
    assert_eq!(r["history"][0]["version"], 3);
    assert!(r["canary"].is_null());
    let table = d.ok(&["rollout", "status"]);
    assert!(table.contains("support\t4\t-\t-\t-\tstable"), "{table}");

    // Rollback: the previous stable version, one write, audited with who and why.
    let out = d.ok(&[
        "rollback",
        "support",
        "--from",
        "4",
        "--reason",
        "refund complaints",
    ]);
    assert!(
        out.contains("rolled back from version 4 to version 3"),
        "{out}"
    );
    assert_eq!(d.release("support")["stable"]["version"], 3);
    let audit = std::fs::read_to_string(d.path("deploy/promptgate.audit.jsonl")).expect("audit");
    let last: Value = serde_json::from_str(audit.lines().last().expect("line")).expect("json");
    assert_eq!(last["who"], "oncall-dana");
    assert_eq!(last["why"], "refund complaints");
    assert_eq!(audit.lines().count(), 6);
    // The file before the last write is kept.
    let previous =
        std::fs::read_to_string(d.path("deploy/prompts.runtime.yaml.prev")).expect("prev");
    assert!(previous.contains("version: 4"), "{previous}");

    // Nothing further back: refused, nothing written.
    let (code, _, err) = d.run(&["rollback", "support", "--from", "3"]);
    assert_eq!(code, 1);
    assert!(err.contains("no earlier stable version"), "{err}");
}

#[test]
fn a_breach_freezes_and_everyone_goes_back_to_stable() {
    let d = Dir::new();
    d.start();
    d.ok(&forced_advance("internal")); // low-risk: 5% of all segments
    let m = d.write(
        "metrics.jsonl",
        &(metrics_lines("4", "intent/refund", 100, 12)
            + &metrics_lines("3", "intent/refund", 1000, 0)),
    );
    let check = [
        "rollout",
        "check",
        "support",
        "--metrics",
        m.to_str().expect("utf8"),
    ];
    // One breaching check is counted; the second in a row freezes (failure_limit 1).
    let (code, out, _) = d.run(&check);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("breach 1 in a row"), "{out}");
    assert_eq!(d.release("support")["canary"]["breaches"], 1);
    let (code, out, _) = d.run(&check);
    assert_eq!(code, 6, "{out}");
    assert!(
        out.contains("BREACH: fallback rate 12.0% (12 of 100) over 5.0% (p = 0.004), stable 0.0% (0 of 1000) (p = 0.000)"),
        "{out}"
    );
    let r = d.release("support");
    assert_eq!(r["frozen"], true);
    // A frozen rollout cannot advance; rollback ends it.
    let (code, _, err) = d.run(&forced_advance("low-risk"));
    assert_eq!(code, 1);
    assert!(err.contains("frozen"), "{err}");
    d.ok(&["rollback", "support", "--from", "4"]);
    let r = d.release("support");
    assert_eq!(r["frozen"], false);
    assert!(r["canary"].is_null());
}

#[test]
fn too_few_samples_hold_and_advance_waits() {
    let d = Dir::new();
    d.start();
    let at = now();
    let m = d.write(
        "few.csv",
        &format!("at,version,segment,fallback,escalated,corrected\n{at},4,internal,false,false,false\n{at},4,internal,false,false,false\n"),
    );
    let m = m.to_str().expect("utf8");
    let out = d.ok(&["rollout", "check", "support", "--metrics", m]);
    assert!(out.contains("hold: 2 of the 50 canary requests"), "{out}");
    let out = d.ok(&[
        "rollout",
        "advance",
        "support",
        "--from",
        "internal",
        "--metrics",
        m,
    ]);
    assert!(out.contains("hold"), "{out}");
    assert_eq!(d.release("support")["canary"]["stage"], "internal");

    // Enough healthy samples (as counts) in a stage that has baked: it advances.
    d.began(61);
    let counts = d.write(
        "counts.jsonl",
        &format!(
            "{}\n",
            json!({"at": now(), "version": "4", "segment": "internal", "requests": 80, "fallbacks": 1, "escalations": 2, "corrections": 0})
        ),
    );
    d.ok(&[
        "rollout",
        "advance",
        "support",
        "--from",
        "internal",
        "--metrics",
        counts.to_str().expect("utf8"),
    ]);
    assert_eq!(d.release("support")["canary"]["stage"], "low-risk");
}

#[test]
fn malformed_metrics_are_reported_by_line_and_never_advance() {
    let d = Dir::new();
    d.start();
    let m = d.write(
        "m.jsonl",
        &(metrics_lines("4", "internal", 60, 0) + "{\"version\": \"4\"}\nnot json\n"),
    );
    let (code, _, err) = d.run(&[
        "rollout",
        "advance",
        "support",
        "--from",
        "internal",
        "--metrics",
        m.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("m.jsonl:61:1: missing `segment`"), "{err}");
    assert!(
        err.contains("m.jsonl:62:2: invalid JSON: expected ident"),
        "{err}"
    );
    assert_eq!(d.release("support")["canary"]["stage"], "internal");
}

#[test]
fn start_checks_the_gate_evidence_when_given() {
    let d = Dir::new();
    let evidence = |state: &str, version: &str| {
        json!({"schema": "promptgate.evidence/v1", "verdict": {"state": state},
               "artifacts": [{"id": "support", "head": {"version": version, "fingerprint": "abc123"}}]})
        .to_string()
    };
    let blocked = d.write("blocked.json", &evidence("blocked", "4"));
    let (code, _, err) = d.start_with_evidence(&blocked);
    assert_eq!(code, 1);
    assert!(err.contains("the gate's verdict is `blocked`"), "{err}");
    let other = d.write("other.json", &evidence("pass", "5"));
    let (code, _, err) = d.start_with_evidence(&other);
    assert_eq!(code, 1);
    assert!(err.contains("no result for `support` version 4"), "{err}");
    assert!(!d.runtime().exists(), "refusals write nothing");
    let passed = d.write("pass.json", &evidence("pass", "4"));
    assert_eq!(d.start_with_evidence(&passed).0, 0);
    assert_eq!(d.release("support")["canary"]["fingerprint"], "abc123");
}

#[test]
fn a_crash_before_the_rename_leaves_the_old_file_valid() {
    let d = Dir::new();
    d.start();
    let before = std::fs::read_to_string(d.runtime()).expect("runtime");
    // What a writer killed between writing its temporary file and renaming it leaves.
    let tmp = d.path("deploy/prompts.runtime.yaml.tmp-99999");
    std::fs::write(&tmp, &before[..before.len() / 2]).expect("half a file");
    assert_eq!(
        std::fs::read_to_string(d.runtime()).expect("runtime"),
        before
    );
    assert_eq!(d.release("support")["canary"]["stage"], "internal");
    // The next write goes through as usual.
    d.ok(&forced_advance("internal"));
    assert_eq!(d.release("support")["canary"]["stage"], "low-risk");
}

#[test]
fn a_broken_runtime_file_is_refused_with_its_place() {
    let d = Dir::new();
    std::fs::create_dir_all(d.path("deploy")).expect("mkdir");
    std::fs::write(
        d.runtime(),
        "format: promptgate.runtime/v1\nartifacts:\n  support:\n    stable: {version: 3}\n    frozn: true\n",
    )
    .expect("write");
    let (code, _, err) = d.run(&["rollback", "support", "--from", "3"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("prompts.runtime.yaml:5:5: unknown field `frozn`, did you mean `frozen`?"),
        "{err}"
    );
}

/// What a runtime config can be instead of a YAML file: anything but a file, or
/// Latin-1.
#[cfg(unix)]
fn unreadable_files() -> Vec<common::Unreadable> {
    let mut files = common::unreadable_files();
    files.push((
        "Latin-1 text",
        |p| std::fs::write(p, b"format: promptgate.runtime/v1\n# caf\xe9\n").expect("write"),
        "2:6: file is not valid UTF-8 (byte 0xE9); save it as UTF-8",
    ));
    files
}

/// Whatever the runtime config is instead of a YAML file, every release command says so
/// at the file, exits 3 (bad input, as documented), does not wait and changes nothing.
#[cfg(unix)]
#[test]
fn every_release_command_refuses_an_unreadable_runtime_config_as_bad_input() {
    let commands: [&[&str]; 7] = [
        &["rollout", "status"],
        &["rollout", "status", "support", "--format", "json"],
        &START,
        &FORCED_ADVANCE,
        &[
            "rollout",
            "advance",
            "support",
            "--from",
            "internal",
            "--metrics",
            "m.jsonl",
        ],
        &["rollout", "check", "support", "--metrics", "m.jsonl"],
        &["rollback", "support", "--from", "4"],
    ];
    let mut files = unreadable_files();
    files.push((
        "33 MiB (sparse)",
        |p| {
            let file = std::fs::File::create(p).expect("create");
            file.set_len(33 << 20).expect("set_len");
        },
        "1:1: cannot read: is 34603008 bytes, over the limit of 33554432 bytes (32 MiB): make it smaller or split it",
    ));
    for (what, make, problem) in files {
        let d = Dir::new();
        std::fs::create_dir_all(d.path("deploy")).expect("mkdir");
        make(&d.runtime());
        d.write("m.jsonl", &metrics_lines("4", "internal", 60, 0));
        let before = listing(d.root());
        for args in commands {
            let (code, out, err) = d.run(args);
            assert_eq!(code, 3, "{what}: {args:?}\n{out}{err}");
            assert_eq!(
                err,
                format!("{}:{problem}\n", d.runtime().display()),
                "{what}: {args:?}"
            );
            assert_eq!(out, "", "{what}: {args:?}");
        }
        assert_eq!(listing(d.root()), before, "{what}: nothing written");
    }
}

/// Whatever a metrics file is instead of a text file, `check` and `advance` say so at
/// the file, exit 3 and move nothing on; a missing one is the same.
#[cfg(unix)]
#[test]
fn an_unreadable_metrics_file_is_bad_input_and_moves_nothing() {
    let mut files = unreadable_files();
    files.push(("missing", |_| {}, "1:1: file not found"));
    for (what, make, problem) in files {
        let d = Dir::new();
        d.start();
        let m = d.path("m.jsonl");
        make(&m);
        let before = std::fs::read_to_string(d.runtime()).expect("runtime");
        let commands: [&[&str]; 2] = [
            &["rollout", "check", "support", "--metrics", "m.jsonl"],
            &[
                "rollout",
                "advance",
                "support",
                "--from",
                "internal",
                "--metrics",
                "m.jsonl",
            ],
        ];
        for command in commands {
            let (code, out, err) = d.run(command);
            assert_eq!(code, 3, "{what}: {command:?}\n{out}{err}");
            assert_eq!(err, format!("m.jsonl:{problem}\n"), "{what}: {command:?}");
        }
        let after = std::fs::read_to_string(d.runtime()).expect("runtime");
        assert_eq!(after, before, "{what}: the rollout did not move");
    }
}

/// The same for the gate evidence of `rollout start --evidence`; evidence that is not
/// JSON is said where it breaks.
#[cfg(unix)]
#[test]
fn unreadable_or_malformed_gate_evidence_is_bad_input() {
    let mut files = unreadable_files();
    files.push((
        "JSON with a trailing comma",
        |p| {
            std::fs::write(
                p,
                "{\"schema\": \"promptgate.evidence/v1\",\n  \"verdict\": {},}\n",
            )
            .expect("write")
        },
        "2:17: not a promptgate evidence bundle: trailing comma",
    ));
    for (what, make, problem) in files {
        let d = Dir::new();
        make(&d.path("evidence.json"));
        let (code, out, err) = d.start_with_evidence(Path::new("evidence.json"));
        assert_eq!(code, 3, "{what}\n{out}{err}");
        assert_eq!(err, format!("evidence.json:{problem}\n"), "{what}");
        assert!(!d.runtime().exists(), "{what}: nothing written");
    }
}

/// Every file under `dir` with its kind and content, to tell that nothing was written;
/// the empty lock file a writer takes aside.
fn listing(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "lock") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).expect("meta");
            let what = if meta.is_dir() {
                todo.push(path.clone());
                "dir".to_string()
            } else if meta.is_file() {
                std::fs::read_to_string(&path).unwrap_or_else(|_| "bytes".into())
            } else {
                format!("{:?}", meta.file_type())
            };
            out.push((path, what));
        }
    }
    out.sort();
    out
}

#[test]
fn concurrent_writers_never_lose_an_update() {
    let mut d = Dir::new();
    for v in ["1", "2"] {
        for i in 0..12 {
            let id = format!("artifact-{i}");
            d.repo
                .write(&format!("prompts/{id}.prompt.yaml"), &artifact(&id, v));
        }
        d.repo.commit(&format!("artifacts {v}"));
    }
    let children: Vec<_> = (0..12)
        .map(|i| {
            let artifact = format!("artifact-{i}");
            std::process::Command::new(env!("CARGO_BIN_EXE_promptgate"))
                .current_dir(d.root())
                .args([
                    "rollout",
                    "start",
                    &artifact,
                    "--version",
                    "2",
                    "--stable",
                    "1",
                    "--runtime",
                ])
                .arg(d.runtime())
                .spawn()
                .expect("spawns")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().expect("waits").success());
    }
    let artifacts = d.status()["artifacts"]
        .as_object()
        .expect("artifacts")
        .len();
    assert_eq!(artifacts, 12, "every writer landed");
    let audit = std::fs::read_to_string(d.path("deploy/promptgate.audit.jsonl")).expect("audit");
    assert_eq!(audit.lines().count(), 12);
}

/// Writers killed at arbitrary moments (SIGKILL: no cleanup runs) never leave a broken
/// runtime config: it is always the old file or the new one.
#[test]
fn writers_killed_midway_never_leave_a_broken_file() {
    let d = Dir::new();
    d.start();
    for i in 0..40u64 {
        let args: &[&str] = if i % 2 == 0 {
            &["rollback", "support", "--from", "4"]
        } else {
            &["rollout", "start", "support", "--version", "4"]
        };
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_promptgate"))
            .current_dir(d.root())
            .args(args)
            .arg("--runtime")
            .arg(d.runtime())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawns");
        // Somewhere between not started and done (a write takes a few milliseconds).
        std::thread::sleep(std::time::Duration::from_micros((i * 337) % 6000));
        let _ = child.kill();
        let _ = child.wait();
        let status = d.status();
        assert_eq!(
            status["artifacts"]["support"]["stable"]["version"], 3,
            "{status}"
        );
    }
}

/// The evidence `promptgate gate --evidence` really writes: the demo pull request is
/// blocked, so its version is not rolled out.
#[test]
fn the_demo_gate_evidence_refuses_the_blocked_version() {
    let d = Dir::new();
    let demo = d.path("demo");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo-repo.sh");
    let made = std::process::Command::new("bash")
        .arg(script)
        .arg(&demo)
        .output()
        .expect("bash");
    assert!(made.status.success());
    let evidence = d.path("evidence.json");
    let gate = common::promptgate()
        .arg("-C")
        .arg(&demo)
        .args([
            "gate",
            "--base",
            "main",
            "--head",
            "prompt-update",
            "--provider",
            "recorded",
            "--no-cache",
            "--evidence",
        ])
        .arg(&evidence)
        .output()
        .expect("runs");
    assert_eq!(gate.status.code(), Some(4));
    let (code, _, err) = d.run(&[
        "rollout",
        "start",
        "support.assistant",
        "--version",
        "4",
        "--stable",
        "3",
        "--evidence",
        evidence.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the gate's verdict is `blocked`"), "{err}");
}

/// A runtime config whose text would drive a terminal or reorder what it shows: a
/// clear-screen sequence, an OSC 8 link, a bell, and right-to-left overrides.
const RUNTIME_WITH_ESCAPES: &str = r#"format: promptgate.runtime/v1
artifacts:
  support:
    stable: {version: "3\e[2J"}
    history: [{version: "2\u202e1"}]
    frozen: true
    frozen_because: "breach \e]8;;https://example.invalid\aclick\e]8;;\a \u2067gnp.exe\u2069"
    canary: {version: "4\a", stage: internal, segments: ["internal\u202e"], percent: 5, since: "2026-01-01T00:00:00Z"}
"#;

/// Control and bidirectional characters, as the quoting writes them: none of them may
/// reach the terminal as itself.
const UNSAFE: [char; 5] = ['\u{1b}', '\u{7}', '\u{202e}', '\u{2067}', '\u{2069}'];

#[test]
fn text_from_the_runtime_config_is_quoted_not_sent_to_the_terminal() {
    let d = Dir::new();
    std::fs::create_dir_all(d.path("deploy")).expect("mkdir");
    std::fs::write(d.runtime(), RUNTIME_WITH_ESCAPES).expect("write");
    let sent = |what: &str, text: &str| {
        assert!(!text.contains(UNSAFE), "{what} sends {text:?}");
    };

    let table = d.ok(&["rollout", "status"]);
    sent("rollout status", &table);
    assert!(
        table.contains(r"support	3\u{1b}[2J	4\u{7}	internal	5% of internal\u{202e}	FROZEN: breach \u{1b}]8;;https://example.invalid\u{7}click"),
        "{table}"
    );
    assert!(table.contains(r"\u{2067}gnp.exe\u{2069}"), "{table}");

    // Errors quote too: advancing a frozen rollout names why it froze.
    let (code, out, err) = d.run(&forced_advance("internal"));
    assert_eq!(code, 1, "{err}");
    sent("rollout advance's error", &err);
    sent("rollout advance", &out);
    assert!(
        err.contains(r"breach \u{1b}]8;;https://example.invalid\u{7}click"),
        "{err}"
    );

    // Rollback ends the rollout and says which versions serve now.
    let out = d.ok(&["rollback", "support", "--from", "4\u{7}"]);
    sent("rollback", &out);
    assert!(
        out.contains(
            r"rolled back from version 4\u{7}: its rollout ended, stable version 3\u{1b}[2J"
        ),
        "{out}"
    );
    let out = d.ok(&["rollback", "support", "--from", "3\u{1b}[2J"]);
    sent("rollback", &out);
    assert!(out.contains(r"to version 2\u{202e}1"), "{out}");
    // And its error, for an artifact name given on the command line.
    let (code, _, err) = d.run(&[
        "rollback",
        "gone\u{1b}]8;;https://example.invalid\u{7}\u{202e}",
        "--from",
        "1",
    ]);
    assert_eq!(code, 1, "{err}");
    sent("rollback's error", &err);
    assert!(
        err.contains(
            r"`gone\u{1b}]8;;https://example.invalid\u{7}\u{202e}` is not in the runtime config"
        ),
        "{err}"
    );
}

/// `support` at stable 12, with 1–11 before it, and a rollout of 13 when `canary`.
fn twelve_versions(d: &Dir, canary: bool) {
    let history: Vec<String> = (1..12).map(|v| format!("{{version: {v}}}")).collect();
    let canary = if canary {
        "    canary: {version: 13, stage: internal, segments: [internal], percent: 100, since: '2026-01-01T00:00:00Z'}\n"
    } else {
        ""
    };
    std::fs::create_dir_all(d.path("deploy")).expect("mkdir");
    std::fs::write(
        d.runtime(),
        format!(
            "format: promptgate.runtime/v1\nartifacts:\n  support:\n    stable: {{version: 12}}\n    history: [{}]\n{canary}",
            history.join(", ")
        ),
    )
    .expect("write");
}

/// Run every command in `commands` at once, each its own process; their outputs.
fn all_at_once(d: &Dir, commands: &[Vec<&str>]) -> Vec<(i32, String, String)> {
    let children: Vec<_> = commands
        .iter()
        .map(|args| {
            std::process::Command::new(env!("CARGO_BIN_EXE_promptgate"))
                .current_dir(d.root())
                .args(args)
                .arg("--runtime")
                .arg(d.runtime())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawns")
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("waits");
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect()
}

fn audit_lines(d: &Dir) -> usize {
    std::fs::read_to_string(d.path("deploy/promptgate.audit.jsonl"))
        .map(|a| a.lines().count())
        .unwrap_or(0)
}

/// Twelve people (or queued workflow runs) press rollback at once: one goes back one
/// version, the others are told it is done already. Before, stable went 12 → 1.
#[test]
fn twelve_concurrent_rollbacks_go_back_one_version() {
    let d = Dir::new();
    twelve_versions(&d, false);
    let rollback = vec!["rollback", "support", "--from", "12"];
    let outs = all_at_once(&d, &vec![rollback; 12]);
    for (code, _, err) in &outs {
        assert_eq!(*code, 0, "{err}");
    }
    let moved = outs
        .iter()
        .filter(|(_, out, _)| out.contains("rolled back from version 12 to version 11"))
        .count();
    let told = outs
        .iter()
        .filter(|(_, out, _)| out.contains("nothing to roll back from version 12"))
        .count();
    assert_eq!((moved, told), (1, 11), "{outs:?}");
    let r = d.release("support");
    assert_eq!(r["stable"]["version"], 11);
    assert_eq!(r["history"].as_array().expect("history").len(), 10);
    assert_eq!(audit_lines(&d), 1, "no-ops are not audited");
}

/// Six advances and six rollbacks at once: the canary moves at most one stage and
/// ends; stable and its history are untouched.
#[test]
fn concurrent_advances_and_rollbacks_never_move_more_than_one_step() {
    let d = Dir::new();
    twelve_versions(&d, true);
    let mut commands = vec![forced_advance("internal"); 6];
    commands.extend(vec![vec!["rollback", "support", "--from", "13"]; 6]);
    let outs = all_at_once(&d, &commands);
    let advanced = outs
        .iter()
        .filter(|(_, out, _)| out.contains("advanced from stage internal"))
        .count();
    let ended = outs
        .iter()
        .filter(|(_, out, _)| out.contains("its rollout ended"))
        .count();
    assert!(advanced <= 1 && ended == 1, "{outs:?}");
    let r = d.release("support");
    assert_eq!(r["stable"]["version"], 12);
    assert_eq!(r["history"].as_array().expect("history").len(), 11);
    assert!(r["canary"].is_null());
    assert_eq!(audit_lines(&d), advanced + ended);
}

#[test]
fn an_unwritable_audit_log_changes_nothing() {
    let d = Dir::new();
    d.start();
    let before = std::fs::read_to_string(d.runtime()).expect("runtime");
    let audit = d.path("deploy/promptgate.audit.jsonl");
    std::fs::remove_file(&audit).expect("rm");
    // A directory where the log goes: it cannot be appended to, even by root.
    std::fs::create_dir(&audit).expect("mkdir");
    let (code, _, err) = d.run(&["rollback", "support", "--from", "4"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot open the audit log"), "{err}");
    assert_eq!(
        std::fs::read_to_string(d.runtime()).expect("runtime"),
        before
    );
}

#[cfg(unix)]
#[test]
fn a_write_keeps_the_file_mode_and_clears_a_killed_writers_temporary_files() {
    use std::os::unix::fs::PermissionsExt;
    let d = Dir::new();
    d.start();
    std::fs::set_permissions(d.runtime(), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    // What a writer killed before its rename leaves.
    let left = d.path("deploy/.prompts.runtime.yaml.99999.0123456789abcdef.tmp");
    std::fs::write(&left, "half").expect("write");
    d.ok(&["rollback", "support", "--from", "4"]);
    let mode = std::fs::metadata(d.runtime())
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!left.exists(), "the leftover is removed under the lock");
}

#[test]
fn advance_names_the_stage_and_needs_metrics_or_an_audited_override() {
    let d = Dir::new();
    d.start();
    // No metrics, no override: a usage error, nothing changed.
    let (code, _, err) = d.run(&["rollout", "advance", "support", "--from", "internal"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--metrics"), "{err}");
    assert_eq!(d.release("support")["canary"]["stage"], "internal");
    // The override lands, in the audit as one.
    d.ok(&forced_advance("internal"));
    let audit = std::fs::read_to_string(d.path("deploy/promptgate.audit.jsonl")).expect("audit");
    let last: Value = serde_json::from_str(audit.lines().last().expect("line")).expect("json");
    assert_eq!(
        last["why"],
        "OVERRIDE without metrics or bake time (--force): test"
    );
    assert!(
        last["what"]
            .as_str()
            .is_some_and(|w| w.contains("from stage internal to stage low-risk")),
        "{last}"
    );
    // The same advance again: the canary is elsewhere by now.
    let (code, _, err) = d.run(&forced_advance("internal"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("at stage low-risk, not internal"), "{err}");
    assert_eq!(d.release("support")["canary"]["stage"], "low-risk");
}

/// The docs say a frozen rollout cannot advance; with metrics that now look healthy it
/// printed "hold … within the thresholds" and exited 0.
#[test]
fn advance_with_metrics_on_a_frozen_rollout_is_refused() {
    let d = Dir::new();
    d.start();
    let bad = d.write("bad.jsonl", &metrics_lines("4", "internal", 60, 30));
    let check = [
        "rollout",
        "check",
        "support",
        "--metrics",
        bad.to_str().expect("utf8"),
    ];
    d.run(&check);
    let (code, _, _) = d.run(&check);
    assert_eq!(code, 6);
    let few = d.write("few.jsonl", &metrics_lines("4", "internal", 2, 0));
    let (code, out, err) = d.run(&[
        "rollout",
        "advance",
        "support",
        "--from",
        "internal",
        "--metrics",
        few.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("is frozen"), "{err}");
}

/// Hand edits the schema cannot catch: each is said at its place, and no command
/// writes on such a file. Before, every one was accepted (`max_fallback_rate: 5` judged
/// 90% fallbacks healthy; `geo/[eu` silently never matched).
#[test]
fn invalid_thresholds_and_stages_are_refused_at_their_place() {
    let d = Dir::new();
    std::fs::create_dir_all(d.path("deploy")).expect("mkdir");
    let text = "format: promptgate.runtime/v1
artifacts:
  support:
    stable: {version: 3}
    thresholds:
      max_fallback_rate: 5
      max_escalation_rate: -0.1
      max_manual_correction_rate: 1.5
      min_samples: {internal: 0, low-risk: 200, cohort: 500, all: 1000}
    stages:
      internal: {segments: [], percent: 100}
      low-risk: {segments: ['*'], percent: 50}
      cohort: {segments: ['geo/[eu'], percent: 10}
      all: {segments: ['*'], percent: 150}
";
    std::fs::write(d.runtime(), text).expect("write");
    let (code, _, err) = d.run(&START[..5]);
    assert_eq!(code, 3, "{err}");
    for expected in [
        "prompts.runtime.yaml:6:26: `support`: `max_fallback_rate` is a fraction between 0 and 1, found 5 (did you mean 0.05?)",
        "prompts.runtime.yaml:7:28: `support`: `max_escalation_rate` is a fraction between 0 and 1, found -0.1",
        "prompts.runtime.yaml:8:35: `support`: `max_manual_correction_rate` is a fraction between 0 and 1, found 1.5 (did you mean 0.015?)",
        "prompts.runtime.yaml:9:31: `support`: `min_samples.internal` must be at least 1",
        "prompts.runtime.yaml:11:28: `support`: stage internal: `segments` is empty",
        "prompts.runtime.yaml:13:26: `support`: stage cohort: segment `geo/[eu` is not a valid glob",
        "prompts.runtime.yaml:13:48: `support`: stage cohort: `percent` 10 must be more than stage low-risk's 50",
        "prompts.runtime.yaml:14:39: `support`: stage all: `percent` must be more than 0 and at most 100, found 150",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
    assert_eq!(std::fs::read_to_string(d.runtime()).expect("read"), text);
}

/// 1 fallback in 1 request was `BREACH 100%` and froze the rollout.
#[test]
fn one_fallback_in_one_request_holds() {
    let d = Dir::new();
    d.start();
    let m = d.write("one.jsonl", &metrics_lines("4", "internal", 1, 1));
    let m = m.to_str().expect("utf8");
    for _ in 0..3 {
        let (code, out, err) = d.run(&["rollout", "check", "support", "--metrics", m]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("hold: fallback rate 100.0% (1 of 1) over 5.0%, not yet evidence"),
            "{out}"
        );
    }
    assert_eq!(d.release("support")["frozen"], false);
}

/// `advance --metrics` moved a healthy canary on minutes into its stage; now it waits
/// for the stage's `min_bake`, says how long it has baked, and changes nothing.
#[test]
fn a_healthy_canary_advances_only_after_its_stage_has_baked() {
    let d = Dir::new();
    d.start();
    d.began(12);
    let m = d.write("healthy.jsonl", &metrics_lines("4", "internal", 60, 0));
    let m = m.to_str().expect("utf8");
    let advance = [
        "rollout",
        "advance",
        "support",
        "--from",
        "internal",
        "--metrics",
        m,
    ];
    let before = std::fs::read_to_string(d.runtime()).expect("runtime");
    let (code, out, err) = d.run(&advance);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("support: hold: stage internal has baked 12m of 1h (`thresholds.min_bake`)"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(d.runtime()).expect("runtime"),
        before
    );
    assert_eq!(audit_lines(&d), 1, "a hold is not audited");
    let out = d.ok(&["rollout", "check", "support", "--metrics", m]);
    assert!(out.contains("has baked 12m of 1h"), "{out}");
    // Baked: it advances, and the next stage bakes from its own start.
    d.began(60);
    let out = d.ok(&advance);
    assert!(
        out.contains("advanced from stage internal to stage low-risk"),
        "{out}"
    );
    let m = d.write(
        "low-risk.jsonl",
        &metrics_lines("4", "intent/refund", 250, 0),
    );
    let out = d.ok(&[
        "rollout",
        "advance",
        "support",
        "--from",
        "low-risk",
        "--metrics",
        m.to_str().expect("utf8"),
    ]);
    assert!(out.contains("stage low-risk has baked 0s of 4h"), "{out}");
    // An override does not wait.
    d.ok(&forced_advance("low-risk"));
    assert_eq!(d.release("support")["canary"]["stage"], "cohort");
}

/// A `min_bake` that is not a duration is said at its place; nothing is written.
#[test]
fn a_min_bake_that_is_not_a_duration_is_refused_at_its_place() {
    let d = Dir::new();
    std::fs::create_dir_all(d.path("deploy")).expect("mkdir");
    let text = "format: promptgate.runtime/v1
artifacts:
  support:
    stable: {version: 3}
    thresholds:
      min_bake: {internal: 1h, low-risk: 4 hours later, cohort: -1h, all: 0s}
";
    std::fs::write(d.runtime(), text).expect("write");
    let (code, _, err) = d.run(&START[..5]);
    assert_eq!(code, 3, "{err}");
    for expected in [
        "prompts.runtime.yaml:6:42: `support`: `min_bake.low-risk`: `4 hours later` is not a duration (",
        "prompts.runtime.yaml:6:65: `support`: `min_bake.cohort`: `-1h` is negative: a stage bakes `0s` or more",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
    assert_eq!(std::fs::read_to_string(d.runtime()).expect("read"), text);
}

/// `rollout start` took any artifact and version it was given: a typo (`suport`,
/// version 44) or a version only on an unmerged branch started a rollout that
/// applications could not serve. Now each is refused, naming what there is, and
/// nothing is written.
#[test]
fn start_refuses_an_artifact_or_version_the_repository_does_not_have() {
    let d = Dir::new();
    d.repo.branch("experiment");
    d.repo
        .write("prompts/support.prompt.yaml", &artifact("support", "5"));
    let mut repo = d.repo;
    repo.commit("support 5, not merged");
    repo.checkout("main");
    let d = Dir { repo };
    let refused = |args: &[&str], expected: &str| {
        let (code, out, err) = d.run(args);
        assert_eq!(code, 1, "{args:?}\n{out}{err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!d.runtime().exists(), "{args:?}: nothing written");
    };
    refused(
        &[
            "rollout",
            "start",
            "suport",
            "--version",
            "4",
            "--stable",
            "3",
        ],
        "there is no artifact `suport` in the repository at HEAD (commit ",
    );
    refused(
        &[
            "rollout",
            "start",
            "suport",
            "--version",
            "4",
            "--stable",
            "3",
        ],
        "did you mean `support`?",
    );
    let no = |v: &str| {
        format!(
            "`support` has no version {v} in the history of prompts/support.prompt.yaml (first parents of HEAD); its versions there: 4, 3 (newest first)"
        )
    };
    refused(
        &[
            "rollout",
            "start",
            "support",
            "--version",
            "44",
            "--stable",
            "3",
        ],
        &no("44"),
    );
    refused(
        &[
            "rollout",
            "start",
            "support",
            "--version",
            "5",
            "--stable",
            "3",
        ],
        &no("5"),
    );
    refused(
        &[
            "rollout",
            "start",
            "support",
            "--version",
            "4",
            "--stable",
            "2",
        ],
        &no("2"),
    );
    // Outside a git repository there is no history to check against.
    let plain = tempfile::tempdir().expect("tmp");
    let out = common::promptgate()
        .current_dir(plain.path())
        .args(START)
        .arg("--runtime")
        .arg(plain.path().join("r.yaml"))
        .output()
        .expect("runs");
    let (code, _, err) = common::outcome(out);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("checks the version against the repository's git history"),
        "{err}"
    );
    assert!(!plain.path().join("r.yaml").exists());
}

/// The runtime config records the commit that introduced each version: the first
/// commit of the newest run of commits with that version on the first-parent line,
/// not a later edit that kept the version.
#[test]
fn start_records_the_commit_that_introduced_each_version() {
    let mut repo = common::Repo::new();
    repo.write("prompts/support.prompt.yaml", &artifact("support", "3"));
    let three = repo.commit("support 3");
    repo.write("README.md", "unrelated\n");
    repo.commit("unrelated");
    repo.write("prompts/support.prompt.yaml", &artifact("support", "4"));
    let four = repo.commit("support 4");
    repo.write(
        "prompts/support.prompt.yaml",
        &(artifact("support", "4") + "description: reworded, still version 4\n"),
    );
    repo.commit("reword");
    let d = Dir { repo };
    let out = d.start();
    assert!(
        out.contains(&format!(
            "support: rollout of version 4, from commit {} started at stage internal",
            &four[..12]
        )),
        "{out}"
    );
    let r = d.release("support");
    assert_eq!(r["canary"]["commit"], four.as_str());
    assert_eq!(r["stable"]["commit"], three.as_str());
    let text = std::fs::read_to_string(d.runtime()).expect("runtime");
    assert!(text.contains(&four), "{text}");
}

/// In a shallow clone (CI's default checkout) the history ends where it was cut: a
/// version before it is refused with the way to fetch it, not an unreadable-object
/// error.
#[test]
fn start_in_a_shallow_clone_says_how_to_fetch_the_history() {
    let d = Dir::new();
    let tmp = tempfile::tempdir().expect("tmp");
    let clone = tmp.path().join("clone");
    let made = std::process::Command::new("git")
        .args(["clone", "-q", "--depth", "1"])
        .arg(format!("file://{}", d.root().display()))
        .arg(&clone)
        .output()
        .expect("git");
    assert!(made.status.success(), "{made:?}");
    let out = common::promptgate()
        .arg("-C")
        .arg(&clone)
        .args(START)
        .arg("--runtime")
        .arg(tmp.path().join("r.yaml"))
        .output()
        .expect("runs");
    let (code, _, err) = common::outcome(out);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("has no version 3 in the history of prompts/support.prompt.yaml (first parents of HEAD); its versions there: 4 (newest first); this clone is shallow: fetch the history (actions/checkout with `fetch-depth: 0`)"),
        "{err}"
    );
}
