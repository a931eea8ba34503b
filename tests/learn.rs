//! `promptgate learn`: incidents become regression cases in a suite's cases file, once,
//! through the locked, audited store; bad lines are reported and the good ones kept.

mod common;

use std::time::Duration;

use common::{Repo, Server, seed_support};
use promptgate_stub::{Reply, StubConfig};
use serde_json::Value;

const CASES: &str = "evals/refund.cases.jsonl";

/// One incident of each kind, and the first again (reported twice, other ticket).
const INCIDENTS: &str = r#"{"kind": "unexpected-refusal", "artifact": "support.refund", "ticket": "SUP-88", "vars": {"question": "Can I get a refund for order 1042?"}, "output": "I'm sorry, but I can't help with that."}
{"kind": "wrong-tool-sequence", "vars": {"question": "My parcel came 3 weeks late"}, "tool_results": {"lookup_order": {"content": {"status": "delivered", "days_late": 21}}}, "expected_tools": ["lookup_order", "issue_refund"]}
{"kind": "hallucinated-field", "vars": {"question": "Refund status?"}, "allowed_keys": ["decision", "reason"], "output": "{\"decision\": \"approve\", \"iban\": \"DE00\"}"}
{"kind": "excessive-verbosity", "vars": {"question": "Thanks!"}, "max_words": 40, "note": "a 300-word goodbye"}
{"kind": "unexpected-refusal", "ticket": "SUP-91", "vars": {"question": "Can I get a refund for order 1042?"}}
"#;

/// Run promptgate inside the repository, so paths are as a user types them. A run that
/// waits for ever (on a named pipe, say) is killed, and its code is -1.
fn learn(repo: &Repo, args: &[&str]) -> (i32, String, String) {
    let out = common::promptgate()
        .current_dir(repo.path())
        .env("PROMPTGATE_ACTOR", "oncall-alice")
        .arg("learn")
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("promptgate runs");
    common::outcome(out)
}

fn audit_lines(repo: &Repo) -> Vec<Value> {
    let path = repo.path().join("evals/promptgate.audit.jsonl");
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn cases(repo: &Repo) -> Vec<Value> {
    repo.read(CASES)
        .lines()
        .map(|l| serde_json::from_str(l).expect("case line is JSON"))
        .collect()
}

#[test]
fn learns_each_incident_once_and_a_second_run_adds_nothing() {
    let repo = Repo::new();
    seed_support(&repo);
    let before = repo.read(CASES);
    repo.write("incidents.jsonl", INCIDENTS);

    let args = [
        "--from",
        "incidents.jsonl",
        "--into",
        CASES,
        "--reason",
        "postmortem INC-7",
    ];
    let (code, out, err) = learn(&repo, &args);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(err, "");
    let cases = cases(&repo);
    assert_eq!(cases.len(), 5, "the seeded case and four learned ones");
    let learned = &cases[1..];
    let ids: Vec<&str> = learned
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        out,
        format!(
            "added   {} (incidents.jsonl:1)\n\
             added   {} (incidents.jsonl:2)\n\
             added   {} (incidents.jsonl:3)\n\
             added   {} (incidents.jsonl:4)\n\
             skipped {} (incidents.jsonl:5): duplicate of incidents.jsonl:1\n\
             {CASES}: 4 case(s) added, 1 duplicate(s) skipped, 0 bad line(s) in incidents.jsonl\n",
            ids[0], ids[1], ids[2], ids[3], ids[0]
        )
    );
    let kinds = [
        "unexpected-refusal",
        "wrong-tool-sequence",
        "hallucinated-field",
        "excessive-verbosity",
    ];
    for (case, kind) in learned.iter().zip(kinds) {
        assert!(
            case["id"]
                .as_str()
                .is_some_and(|id| id.starts_with(&format!("regression-{kind}-"))),
            "{case}"
        );
        assert_eq!(
            case["segments"],
            serde_json::json!([format!("regression/{kind}")])
        );
    }
    assert_eq!(
        learned[1]["assert"],
        serde_json::json!([{"type": "tool-sequence", "value": ["lookup_order", "issue_refund"]}])
    );
    assert_eq!(
        learned[1]["tool_results"]["lookup_order"]["content"]["days_late"],
        21
    );
    assert_eq!(
        learned[0]["description"],
        "unexpected-refusal in production on support.refund (ticket SUP-88); \
         answered: \"I'm sorry, but I can't help with that.\""
    );

    // The previous content is kept, and the audit log says who, what and why.
    assert_eq!(repo.read("evals/refund.cases.jsonl.prev"), before);
    let audit = audit_lines(&repo);
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["who"], "oncall-alice");
    assert_eq!(audit[0]["why"], "postmortem INC-7");
    assert_eq!(audit[0]["file"], CASES);
    assert_eq!(
        audit[0]["what"],
        format!(
            "added 4 regression case(s) from incidents.jsonl: {}",
            ids.join(", ")
        )
    );
    assert!(audit[0]["at"].as_str().is_some_and(|at| !at.is_empty()));

    // Again: nothing new, nothing written, nothing audited.
    let after_first = repo.read(CASES);
    let (code, out, err) = learn(&repo, &args[..4]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.ends_with(&format!(
            "{CASES}: 0 case(s) added, 5 duplicate(s) skipped, 0 bad line(s) in incidents.jsonl\n"
        )),
        "{out}"
    );
    assert!(out.contains(&format!(
        "skipped {} (incidents.jsonl:1): already in {CASES}:2\n",
        ids[0]
    )));
    assert_eq!(repo.read(CASES), after_first);
    assert_eq!(repo.read("evals/refund.cases.jsonl.prev"), before);
    assert_eq!(audit_lines(&repo).len(), 1);

    // The suite still loads, with the learned cases: tools, variables and assertions
    // all check out.
    let (code, out, err) = repo.run(&["validate"]);
    assert_eq!(
        out,
        "prompts/support/refund.prompt.yaml:17:8: warning: 6 segment(s) too small to rule out a 5-point drop (`gate.max_segment_drop`), so changes read inconclusive there: `hard-negative/adversarial` (1 case(s): only 95+ points), `intent/refund` (1 case(s): only 95+ points), `regression/excessive-verbosity` (1 case(s): only 95+ points), `regression/hallucinated-field` (1 case(s): only 95+ points), `regression/unexpected-refusal` (1 case(s): only 95+ points) and 1 more; 59 cases a segment would rule it out\n\
              checked 1 artifact(s), 1 suite(s), 6 case(s): 0 error(s), 1 warning(s)\n",
        "{err}"
    );
    assert_eq!(code, 0);
}

#[test]
fn a_malformed_line_is_reported_and_the_good_lines_still_appended() {
    let repo = Repo::new();
    seed_support(&repo);
    // No final newline in the cases file: the appended cases still start on a line of
    // their own.
    let seeded = repo.read(CASES);
    repo.write(CASES, seeded.trim_end());
    repo.write(
        "incidents.jsonl",
        r#"{"kind": "unexpected-refusal", "vars": {"question": "Refund for 7?"}}
{"kind": "excessive-verbosity", "vars": {"question": "Hi"}, "max_words": 30}
{"kind": "wrong-tool-sequence", "vars": {"question": "Late"}}
not json
{"kind": "hallucinated-feild", "vars": {"question": "x"}, "allowed_keys": ["decision"]}
"#,
    );
    let (code, out, err) = learn(&repo, &["--from", "incidents.jsonl", "--into", CASES]);
    assert_eq!(code, 3, "bad lines fail the run: {out}{err}");
    assert_eq!(
        err,
        "incidents.jsonl:3:1: `wrong-tool-sequence` needs `expected_tools`, the tools the answer should have called, in order\n\
         incidents.jsonl:4:2: invalid JSON: expected ident\n\
         incidents.jsonl:5:1: `kind` must be one of `unexpected-refusal`, `wrong-tool-sequence`, `hallucinated-field`, `excessive-verbosity`, found `hallucinated-feild`, did you mean `hallucinated-field`?\n"
    );
    assert!(
        out.ends_with(&format!(
            "{CASES}: 2 case(s) added, 0 duplicate(s) skipped, 3 bad line(s) in incidents.jsonl\n"
        )),
        "{out}"
    );
    let cases = cases(&repo);
    assert_eq!(cases.len(), 3);
    assert_eq!(cases[0]["id"], "inject-1");
    assert_eq!(cases[1]["assert"][0]["type"], "not-refusal");
    assert_eq!(cases[2]["assert"][0]["type"], "max-words");
    assert_eq!(audit_lines(&repo).len(), 1);
    assert_eq!(
        audit_lines(&repo)[0]["why"],
        "promptgate learn --from incidents.jsonl"
    );

    let (code, out, err) = repo.run(&["validate"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_new_cases_file_is_created_without_a_previous_copy() {
    let repo = Repo::new();
    // A suite that names a cases file not written yet.
    repo.write(
        "prompts/a.prompt.yaml",
        "id: a\nversion: 1\nmodel: {provider: openai, name: m}\nmessages: [{role: user, content: '{{ q }}'}]\nevals: [../evals/new.eval.yaml]\n",
    )
    .write("evals/new.eval.yaml", "cases_file: new.cases.jsonl\n");
    repo.write(
        "incidents.jsonl",
        "{\"kind\": \"unexpected-refusal\", \"vars\": {\"q\": \"a\"}}\n",
    );
    let (code, out, err) = learn(
        &repo,
        &[
            "--from",
            "incidents.jsonl",
            "--into",
            "evals/new.cases.jsonl",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(repo.read("evals/new.cases.jsonl").lines().count(), 1);
    assert!(!repo.path().join("evals/new.cases.jsonl.prev").exists());
    assert_eq!(audit_lines(&repo).len(), 1);
}

/// An incidents file that is missing, or anything but a text file, is bad input like a
/// bad line (exit 3), said at the file, without waiting on it; nothing is written.
#[cfg(unix)]
#[test]
fn an_unreadable_incidents_file_is_bad_input() {
    let mut files = common::unreadable_files();
    files.push(("missing", |_| {}, "1:1: file not found"));
    files.push((
        "Latin-1 text",
        |p| {
            std::fs::write(
                p,
                b"{\"kind\": \"unexpected-refusal\", \"vars\": {\"q\": \"caf\xe9\"}}\n",
            )
            .expect("write")
        },
        "1:50: file is not valid UTF-8 (byte 0xE9); save it as UTF-8",
    ));
    for (what, make, problem) in files {
        let repo = Repo::new();
        make(&repo.path().join("incidents.jsonl"));
        let (code, out, err) = learn(&repo, &["--from", "incidents.jsonl", "--into", CASES]);
        assert_eq!(code, 3, "{what}: {out}{err}");
        assert_eq!(err, format!("incidents.jsonl:{problem}\n"), "{what}");
        assert_eq!(out, "", "{what}");
        assert!(!repo.path().join(CASES).exists(), "{what}");
    }
}

/// A cases file that is not UTF-8 is said at its first bad byte, and left as it is.
#[test]
fn a_cases_file_that_is_not_utf8_is_located_and_kept() {
    let repo = Repo::new();
    repo.write("incidents.jsonl", INCIDENTS);
    let latin1 = b"{\"id\": \"caf\xe9\"}\n";
    std::fs::create_dir_all(repo.path().join("evals")).expect("mkdir");
    std::fs::write(repo.path().join(CASES), latin1).expect("write");
    let (code, out, err) = learn(&repo, &["--from", "incidents.jsonl", "--into", CASES]);
    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(
        err,
        format!("{CASES}:1:12: file is not valid UTF-8 (byte 0xE9); save it as UTF-8\n")
    );
    assert_eq!(
        std::fs::read(repo.path().join(CASES)).expect("read"),
        latin1
    );
    assert!(audit_lines(&repo).is_empty());
}

/// The point of it all: the learned cases fail on the behaviour they were learned from.
#[test]
fn learned_cases_catch_the_failures_they_came_from() {
    let server = Server::start(StubConfig {
        rules: vec![common::rule(
            "order 1042",
            Reply::Text("I'm sorry, but I can't help with that.".into()),
        )],
        default_reply: Reply::Text("word ".repeat(60)),
        latency: Duration::from_millis(1),
        ..StubConfig::default()
    });
    let repo = Repo::new();
    repo.write(
        ".promptgate.yaml",
        &format!(
            "providers:\n  stub: {{kind: openai, base_url: \"{}\", api_key_env: STUB_KEY, timeout_s: 2, max_retries: 0}}\n",
            server.stub.base_url()
        ),
    )
    .write(
        "prompts/refund.prompt.yaml",
        "id: support.refund\nversion: 1\nmodel: {provider: stub, name: stub-model}\n\
         messages:\n  - {role: user, content: \"{{ question }}\"}\nevals: [../evals/refund.eval.yaml]\n",
    )
    .write(
        "evals/refund.eval.yaml",
        "cases_file: refund.cases.jsonl\n",
    )
    .write(
        "incidents.jsonl",
        r#"{"kind": "unexpected-refusal", "vars": {"question": "Refund for order 1042?"}}
{"kind": "excessive-verbosity", "vars": {"question": "Thanks!"}, "max_words": 40}
"#,
    );
    let (code, out, err) = learn(&repo, &["--from", "incidents.jsonl", "--into", CASES]);
    assert_eq!(code, 0, "{out}{err}");

    let out = common::promptgate()
        .arg("-C")
        .arg(repo.path())
        .env("STUB_KEY", "sk-test")
        .args(["eval", "--no-cache", "--segment", "regression/*"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert!(
        stdout.contains("not-refusal")
            && stdout.contains("max-words: expected at most 40 words, got 60"),
        "{stdout}"
    );
}

/// `learn` appended whatever the incidents said: a case without the variable the
/// prompt needs, or naming a tool the artifact does not define, broke `validate` (and
/// the gate) for everyone after; a cases file no suite reads took cases that never
/// ran. Each is now refused with the problem at its place, exit 3, nothing written.
#[test]
fn cases_that_would_break_the_suite_are_refused_and_nothing_is_written() {
    let repo = Repo::new();
    seed_support(&repo);
    let refused = [
        (
            r#"{"kind": "unexpected-refusal", "vars": {"questoin": "Refund?"}}"#,
            CASES,
            "prompts/support/refund.prompt.yaml:12:27: template variable `question` in `messages[1].content` is provided neither by the suite defaults nor by case `regression-unexpected-refusal-",
        ),
        (
            r#"{"kind": "wrong-tool-sequence", "vars": {"question": "late"}, "expected_tools": ["lookup_order", "refund_now"]}"#,
            CASES,
            "evals/refund.cases.jsonl:2:1: case `regression-wrong-tool-sequence-",
        ),
        (
            r#"{"kind": "unexpected-refusal", "vars": {"question": "Refund?"}}"#,
            "evals/orphan.cases.jsonl",
            "evals/orphan.cases.jsonl:1:1: no suite of an artifact reads this file",
        ),
    ];
    for (incident, into, expected) in refused {
        repo.write("incidents.jsonl", &format!("{incident}\n"));
        let before = std::fs::read(repo.path().join(into)).ok();
        let (code, out, err) = learn(&repo, &["--from", "incidents.jsonl", "--into", into]);
        assert_eq!(code, 3, "{incident}\n{out}{err}");
        assert!(err.contains(expected), "{incident}\n{err}");
        assert!(
            err.contains(&format!(
                "{into}:1:1: nothing written: the cases learned would bring the problems above"
            )),
            "{err}"
        );
        assert_eq!(
            std::fs::read(repo.path().join(into)).ok(),
            before,
            "{incident}"
        );
        assert!(audit_lines(&repo).is_empty(), "{incident}");
    }
    assert!(!repo.path().join("evals/orphan.cases.jsonl").exists());
}
