//! The shipped demo repository, materialized by its script into a real git repository.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn demo() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dest = tmp.path().join("demo");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo-repo.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(&dest)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (tmp, dest)
}

fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = common::promptgate()
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn demo_is_valid_on_both_branches() {
    let (_tmp, dir) = demo();
    // Valid; the warnings say which segments are too small for the 5-point policy.
    let (code, out) = run(&dir, &["validate"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.ends_with("checked 3 artifact(s), 2 suite(s), 63 case(s): 0 error(s), 3 warning(s)\n"),
        "{out}"
    );
    assert_eq!(
        out.matches("too small to rule out a 5-point drop").count(),
        3,
        "{out}"
    );
    let status = Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["checkout", "-q", "main"])
        .status()
        .expect("git");
    assert!(status.success());
    let (code, out) = run(&dir, &["validate"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.ends_with("checked 3 artifact(s), 2 suite(s), 62 case(s): 0 error(s), 3 warning(s)\n"),
        "{out}"
    );
}

#[test]
fn demo_changes_as_text_and_markdown() {
    let (_tmp, dir) = demo();
    let (code, text) = run(
        &dir,
        &["changes", "--base", "main", "--head", "prompt-update"],
    );
    assert_eq!(code, 0);
    insta::assert_snapshot!("demo_changes_text", text);
    let (code, markdown) = run(
        &dir,
        &[
            "changes",
            "--base",
            "main",
            "--head",
            "prompt-update",
            "--format",
            "markdown",
        ],
    );
    assert_eq!(code, 0);
    insta::assert_snapshot!("demo_changes_markdown", markdown);
}

#[test]
fn demo_gate_replays_every_request_offline() {
    let (_tmp, dir) = demo();
    let evidence = dir.join("evidence.json");
    let out = common::promptgate()
        .arg("-C")
        .arg(&dir)
        .args(["gate", "--base", "main", "--head", "prompt-update"])
        .args(["--provider", "recorded", "--no-cache", "--evidence"])
        .arg(&evidence)
        .output()
        .expect("runs");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = out.status.code().unwrap_or(-1);
    assert_eq!(code, 4, "the demo pull request is blocked\n{report}");
    let e: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&evidence).expect("evidence")).expect("json");
    // The recordings answer every request the demo makes: nothing errored.
    let a = &e["artifacts"][0];
    assert_eq!(a["id"], "support.assistant");
    assert_eq!(
        a["comparison"]["error_rate"], 0.0,
        "{:#}",
        a["comparison"]["errored"]
    );
    // Every flipped case was answered again from the recordings too.
    let fresh: Vec<&serde_json::Value> = ["base_run", "head_run"]
        .iter()
        .flat_map(|run| a[*run]["cases"].as_array().into_iter().flatten())
        .flat_map(|c| c["confirmations"].as_array().into_iter().flatten())
        .collect();
    assert!(!fresh.is_empty(), "the flips were confirmed");
    assert!(fresh.iter().all(|s| s["outcome"] != "error"), "{fresh:#?}");
    // The example: a small segment collapsing reads regressed, not held.
    let delivery = a["comparison"]["segments"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "intent/delivery"))
        .expect("an intent/delivery row");
    assert_eq!(delivery["outcome"], "regressed", "{delivery:#}");
    // What the demo is for: a real regression in a hard-negative segment blocks...
    let critical = e["verdict"]["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .filter(|r| r["rule"] == "gate.critical_segments")
        .count();
    assert!(critical > 0, "{:#}", e["verdict"]);
    assert!(
        a["comparison"]["regressions"]
            .as_array()
            .expect("regressions")
            .iter()
            .any(|r| r["critical"] == true && r["base_text"] != r["head_text"])
    );
    // ...and the cost changes. Token counts are the server's and the model has a price.
    let cost = |side: &str| {
        a["comparison"][side]["cost_per_1k_requests_usd"]
            .as_f64()
            .expect("a known cost")
    };
    assert!((cost("head") / cost("base") - 1.0).abs() > 0.05);
    assert!(report.contains("#### Pass rate by segment"), "{report}");
    insta::assert_snapshot!("demo_gate_report", report);
}
