//! `promptgate eval` and `merge` against the stub provider over real HTTP: request
//! bodies, the tool loop, retries and backoff, timeouts, the cache, repeats, recording
//! and replay, sharding, and keys kept out of every output.

mod common;

use std::time::Duration;

use common::{Server, promptgate};
use promptgate_stub::{Fault, Match, Reply, Rule, StubConfig, UsageMode};
use serde_json::{Value, json};

/// A working tree with one artifact answered by provider `stub` at `base_url`.
struct Project {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
}

/// The API key the projects' provider reads from `STUB_KEY`.
const KEY: &str = "sk-stub-secret-0123456789";

const ARTIFACT: &str = r#"id: support.refund
version: 3
model: {provider: stub, name: stub-model, temperature: 0.2, max_tokens: 200, seed: 7}
messages:
  - {role: system, content: "You are the refund assistant of {{ company }}."}
  - {role: user, content: "{{ question }}"}
tools:
  schema_version: "2025-01"
  definitions:
    - {type: function, function: {name: lookup_order, description: Find an order, parameters: {type: object, properties: {id: {type: string}}}}}
    - {type: function, function: {name: issue_refund, parameters: {type: object}}}
evals: [../evals/refund.eval.yaml]
"#;

const SUITE: &str = r#"segments:
  intent/refund: {}
  hard-negative/tool-failure: {critical: true}
defaults: {vars: {company: Acme}}
cases:
  - id: greets
    segments: [intent/refund]
    vars: {question: "say hello"}
    assert: [{type: icontains, value: hello}]
  - id: says-goodbye
    segments: [intent/refund]
    vars: {question: "say goodbye"}
    assert: [{type: contains, value: goodbye}]
  - id: refund-with-tools
    segments: [hard-negative/tool-failure]
    vars: {question: "refund order 42"}
    tool_results:
      lookup_order: {content: {status: delivered}}
      issue_refund: {error: upstream timeout}
    assert:
      - {type: tool-sequence, value: [lookup_order, issue_refund]}
      - {type: tool-args, tool: lookup_order, value: {id: "42"}}
      - {type: contains, value: escalated}
"#;

impl Project {
    fn new(base_url: &str, provider: &str) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |path: &str, text: &str| {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
            std::fs::write(full, text).expect("write");
        };
        write(
            ".promptgate.yaml",
            &format!(
                "providers:\n  stub: {{{provider}, base_url: \"{base_url}\", api_key_env: STUB_KEY, \
                 concurrency: 4, timeout_s: 2, max_retries: 3}}\n  \
                 recorded: {{kind: replay, dir: recordings}}\n\
                 pricing:\n  stub-model: {{input: 1.0, output: 2.0}}\n"
            ),
        );
        write("prompts/refund.prompt.yaml", ARTIFACT);
        write("evals/refund.eval.yaml", SUITE);
        Project {
            dir,
            cache: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn openai(server: &Server) -> Project {
        Project::new(&server.stub.base_url(), "kind: openai")
    }

    fn write(&self, path: &str, text: &str) {
        std::fs::write(self.dir.path().join(path), text).expect("write");
    }

    /// A config with only the OpenAI-compatible provider `stub` at `server`, with
    /// `options` (YAML flow-mapping entries) on top of the defaults, and `rest` after.
    fn stub_provider(&self, server: &Server, options: &str, rest: &str) {
        let options = if options.is_empty() {
            String::new()
        } else {
            format!(", {options}")
        };
        self.write(
            ".promptgate.yaml",
            &format!(
                "providers:\n  stub: {{kind: openai, base_url: \"{}\"{options}}}\n{rest}",
                server.stub.base_url()
            ),
        );
    }

    /// promptgate in this tree, with the provider's key and a cache of its own.
    fn command(&self) -> assert_cmd::Command {
        let mut cmd = promptgate();
        cmd.arg("-C")
            .arg(self.dir.path())
            .env("STUB_KEY", KEY)
            .env("PROMPTGATE_CACHE_DIR", self.cache.path());
        cmd
    }

    /// Run `promptgate eval ARGS --format json`: exit code, the JSON, stderr.
    fn eval(&self, args: &[&str]) -> (i32, Value, String) {
        let out = self
            .command()
            .arg("eval")
            .args(args)
            .args(["--format", "json"])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{stderr}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        (out.status.code().unwrap_or(-1), json, stderr)
    }
}

/// The answers of the refund flow: tools first, then an escalation.
fn refund_rules() -> Vec<Rule> {
    vec![
        Rule {
            when: Match {
                contains: Some("refund order 42".into()),
                after_tool_result: Some(false),
            },
            reply: Reply::ToolCalls(vec![
                ("lookup_order".into(), json!({"id": "42"})),
                ("issue_refund".into(), json!({"id": "42"})),
            ]),
            fault: None,
        },
        Rule {
            when: Match {
                contains: None,
                after_tool_result: Some(true),
            },
            reply: Reply::Text("The refund failed, so I escalated it.".into()),
            fault: None,
        },
        Rule {
            when: Match {
                contains: Some("say hello".into()),
                after_tool_result: None,
            },
            reply: Reply::Text("Hello there!".into()),
            fault: None,
        },
    ]
}

fn case<'a>(result: &'a Value, id: &str) -> &'a Value {
    result["runs"][0]["cases"]
        .as_array()
        .and_then(|cases| cases.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no case {id} in {result:#}"))
}

#[test]
fn runs_cases_through_the_tool_loop_and_reports_figures() {
    let server = Server::start(StubConfig {
        rules: refund_rules(),
        default_reply: Reply::Text("I cannot say that.".into()),
        latency: Duration::from_millis(20),
        ..StubConfig::default()
    });
    let project = Project::openai(&server);
    let (code, result, stderr) = project.eval(&[]);
    assert_eq!(code, 4, "a case failed: {stderr}");
    assert_eq!(case(&result, "greets")["outcome"], "pass");
    let goodbye = case(&result, "says-goodbye");
    assert_eq!(goodbye["outcome"], "fail");
    assert_eq!(
        goodbye["samples"][0]["assertions"][0]["reason"],
        "contains: expected text containing `goodbye`, got `I cannot say that.`"
    );
    let refund = &case(&result, "refund-with-tools")["samples"][0];
    assert_eq!(refund["outcome"], "pass", "{refund:#}");
    assert_eq!(refund["requests"], 2);
    assert_eq!(
        refund["tool_calls"][0],
        json!({"name": "lookup_order", "arguments": {"id": "42"}})
    );
    let latency = refund["latency_ms"].as_f64().unwrap_or(0.0);
    assert!(latency >= 40.0, "two requests of 20 ms took {latency} ms");

    // Figures: tokens from the API's usage, cost from the pricing table.
    let greets = &case(&result, "greets")["samples"][0];
    assert_eq!(greets["tokens_estimated"], false);
    let (input, output) = (
        greets["input_tokens"].as_u64(),
        greets["output_tokens"].as_u64(),
    );
    assert_eq!(output, Some(2), "`Hello there!` is two words for the stub");
    let expected_cost = (input.unwrap_or(0) as f64 * 1.0 + 2.0 * 2.0) / 1e6;
    assert_eq!(greets["cost_usd"].as_f64(), Some(expected_cost));
    let summary = &result["runs"][0]["summary"];
    assert_eq!(
        summary["by_segment"]["hard-negative/tool-failure"]["passed"],
        1
    );
    assert_eq!(summary["requests"], 4);

    // The request as the Chat Completions API takes it, field by field.
    let bodies = server.bodies();
    let first = bodies
        .iter()
        .find(|b| b.to_string().contains("say hello"))
        .expect("hello request");
    assert_eq!(first["model"], "stub-model");
    assert_eq!(first["temperature"], 0.2);
    assert_eq!(first["max_tokens"], 200);
    assert_eq!(first["seed"], 7);
    assert_eq!(
        first["messages"],
        json!([
            {"role": "system", "content": "You are the refund assistant of Acme."},
            {"role": "user", "content": "say hello"}
        ])
    );
    assert_eq!(first["tools"][0]["type"], "function");
    assert_eq!(first["tools"][0]["function"]["name"], "lookup_order");
    // The follow-up carries the calls and the canned results, the failing tool as an error.
    let follow_up = bodies
        .iter()
        .find(|b| b["messages"].as_array().is_some_and(|m| m.len() == 5))
        .expect("tool follow-up");
    let m = &follow_up["messages"];
    assert_eq!(m[2]["role"], "assistant");
    assert_eq!(m[2]["tool_calls"][1]["function"]["name"], "issue_refund");
    assert_eq!(m[3]["role"], "tool");
    assert_eq!(m[3]["tool_call_id"], m[2]["tool_calls"][0]["id"]);
    assert_eq!(m[3]["content"], r#"{"status":"delivered"}"#);
    assert_eq!(m[4]["content"], r#"{"error":"upstream timeout"}"#);
}

#[test]
fn retries_honour_retry_after_and_count() {
    let server = Server::start(StubConfig {
        rules: refund_rules(),
        ..StubConfig::default()
    });
    let project = Project::openai(&server);
    server.stub.push_faults([
        Fault::TooManyRequests {
            retry_after: Some("1".into()),
        },
        Fault::Status(503),
    ]);
    let (_, result, stderr) = project.eval(&["--segment", "intent/*", "--no-cache"]);
    let requests = server.stub.requests();
    assert_eq!(requests.len(), 4, "2 cases + 2 retries: {stderr}");
    // Each case was asked twice: the rate-limited one no sooner than Retry-After said,
    // the other after the exponential backoff (250–500 ms for a first retry).
    let mut gaps: Vec<Duration> = requests
        .iter()
        .enumerate()
        .filter_map(|(i, first)| {
            let again = requests[i + 1..].iter().find(|r| r.body == first.body)?;
            Some(again.at.duration_since(first.at))
        })
        .collect();
    gaps.sort();
    assert_eq!(gaps.len(), 2, "{gaps:?}");
    assert!(
        gaps[0] >= Duration::from_millis(250) && gaps[0] < Duration::from_secs(1),
        "{gaps:?}"
    );
    assert!(gaps[1] >= Duration::from_secs(1), "{gaps:?}");
    assert_eq!(result["runs"][0]["summary"]["retries"], 2);
    assert_eq!(result["runs"][0]["summary"]["errors"], 0);
    // Every request sent counts, retries included.
    assert_eq!(result["runs"][0]["summary"]["requests"], 4);
}

/// The refund stub, with every request asking to "say goodbye" answered with `fault`.
fn goodbye_always(fault: Fault) -> Server {
    let mut rules = refund_rules();
    rules.insert(
        0,
        Rule {
            when: Match {
                contains: Some("say goodbye".into()),
                after_tool_result: None,
            },
            reply: Reply::Echo,
            fault: Some(fault),
        },
    );
    Server::start(StubConfig {
        rules,
        ..StubConfig::default()
    })
}

#[test]
fn a_provider_that_keeps_failing_is_an_error_not_a_fail() {
    let server = goodbye_always(Fault::Status(500));
    let project = Project::openai(&server);
    project.stub_provider(&server, "max_retries: 1", "");
    let (code, result, _) = project.eval(&["--segment", "intent/*"]);
    assert_eq!(code, 5, "could not evaluate");
    let goodbye = case(&result, "says-goodbye");
    assert_eq!(goodbye["outcome"], "error");
    let error = goodbye["samples"][0]["error"].as_str().unwrap_or("");
    assert!(error.contains("server error (HTTP 500)"), "{error}");
    assert_eq!(goodbye["samples"][0]["retries"], 1);
    let tries = server
        .bodies()
        .iter()
        .filter(|b| b.to_string().contains("say goodbye"))
        .count();
    assert_eq!(tries, 2, "one try and one retry");
    assert_eq!(case(&result, "greets")["outcome"], "pass");

    // Errors are not cached: the next run asks again.
    project.eval(&["--segment", "intent/*"]);
    let tries = server
        .bodies()
        .iter()
        .filter(|b| b.to_string().contains("say goodbye"))
        .count();
    assert_eq!(tries, 4);
}

#[test]
fn a_hanging_provider_times_out() {
    let server = Server::start(StubConfig::default());
    let project = Project::openai(&server);
    project.stub_provider(&server, "timeout_s: 0.3, max_retries: 0", "");
    server.stub.push_faults([Fault::Hang, Fault::Hang]);
    let (code, result, _) = project.eval(&["--segment", "intent/*"]);
    assert_eq!(code, 5);
    assert_eq!(result["runs"][0]["summary"]["errors"], 2);
    let error = case(&result, "greets")["samples"][0]["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(error.contains("no answer within 300ms"), "{error}");
}

#[test]
fn a_body_slower_than_timeout_s_is_retried_and_then_an_error_never_a_pass() {
    // Headers at once, then 16 bytes a second: the answer (a few hundred bytes) needs
    // far longer than timeout_s, however loaded the machine is.
    let slow = Fault::SlowBody {
        chunk_delay: Duration::from_secs(1),
    };
    let server = goodbye_always(slow.clone());
    let project = Project::openai(&server);
    project.stub_provider(&server, "timeout_s: 2, max_retries: 1", "");
    // Always slow: retried once, then an error, and the run says it could not decide.
    let (code, result, stderr) = project.eval(&["--segment", "intent/*"]);
    assert_eq!(code, 5, "{stderr}");
    let goodbye = case(&result, "says-goodbye");
    assert_eq!(goodbye["outcome"], "error");
    assert_eq!(goodbye["samples"][0]["retries"], 1);
    let error = goodbye["samples"][0]["error"].as_str().unwrap_or("");
    assert!(error.contains("no answer within 2s"), "{error}");
    assert_eq!(case(&result, "greets")["outcome"], "pass");

    // Slow once: the retry answers, and the case is judged on that answer.
    let server = Server::start(StubConfig {
        rules: refund_rules(),
        ..StubConfig::default()
    });
    let project = Project::openai(&server);
    project.stub_provider(&server, "timeout_s: 2, max_retries: 1", "");
    server.stub.push_faults([slow]);
    let (code, result, stderr) = project.eval(&["--segment", "intent/*"]);
    assert_eq!(result["runs"][0]["summary"]["retries"], 1, "{stderr}");
    assert_eq!(result["runs"][0]["summary"]["errors"], 0, "{stderr}");
    assert_eq!(code, 0, "both echoed questions pass once answered");
}

#[test]
fn the_cache_answers_an_unchanged_rerun() {
    let server = Server::start(StubConfig {
        rules: refund_rules(),
        ..StubConfig::default()
    });
    let project = Project::openai(&server);
    let (_, first, _) = project.eval(&[]);
    let asked = server.stub.requests().len();
    let (_, second, _) = project.eval(&[]);
    assert_eq!(server.stub.requests().len(), asked, "no new requests");
    assert_eq!(case(&second, "greets")["samples"][0]["source"], "cache");
    let strip = |v: &Value| {
        let mut v = v.clone();
        for c in v["runs"][0]["cases"].as_array_mut().into_iter().flatten() {
            for s in c["samples"].as_array_mut().into_iter().flatten() {
                s["source"] = json!(null);
            }
        }
        v
    };
    assert_eq!(strip(&first), strip(&second), "same results from the cache");
    // A changed parameter is a different request; --no-cache asks again.
    project.eval(&["--no-cache", "--segment", "intent/*"]);
    assert_eq!(server.stub.requests().len(), asked + 2);
}

#[test]
fn repeats_sample_each_case() {
    let server = Server::start(StubConfig {
        rules: refund_rules(),
        ..StubConfig::default()
    });
    let project = Project::openai(&server);
    let (_, result, _) = project.eval(&["--repeats", "3", "--segment", "intent/*"]);
    assert_eq!(server.stub.requests().len(), 6);
    let greets = case(&result, "greets");
    assert_eq!(greets["passes"], 3);
    assert_eq!(greets["samples"].as_array().map(Vec::len), Some(3));
    assert_eq!(result["runs"][0]["artifact"]["repeats"], 3);
}

#[test]
fn recordings_replay_offline_and_a_missing_one_names_the_case() {
    let server = Server::start(StubConfig {
        rules: refund_rules(),
        latency: Duration::from_millis(30),
        ..StubConfig::default()
    });
    let project = Project::openai(&server);
    let (_, live, _) = project.eval(&["--record", "recordings", "--no-cache"]);
    let asked = server.stub.requests().len();
    let (_, replayed, _) = project.eval(&["--provider", "recorded"]);
    assert_eq!(server.stub.requests().len(), asked, "replay asks no server");
    for id in ["greets", "says-goodbye", "refund-with-tools"] {
        let (l, r) = (
            &case(&live, id)["samples"][0],
            &case(&replayed, id)["samples"][0],
        );
        assert_eq!(l["outcome"], r["outcome"], "{id}");
        assert_eq!(l["text"], r["text"], "{id}");
        assert_eq!(l["latency_ms"], r["latency_ms"], "{id}: recorded latency");
        assert_eq!(r["source"], "replay");
    }
    // A case added since the recording has none.
    let suite = format!(
        "{SUITE}  - id: brand-new\n    vars: {{question: \"never asked\"}}\n    assert: [{{type: contains, value: x}}]\n"
    );
    project.write("evals/refund.eval.yaml", &suite);
    let (code, result, _) = project.eval(&["--provider", "recorded"]);
    assert_eq!(code, 5);
    let error = case(&result, "brand-new")["samples"][0]["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        error.starts_with("provider `recorded`: no recording"),
        "{error}"
    );
}

#[test]
fn keys_stay_out_of_outputs_and_logs() {
    let key = KEY;
    let server = Server::start(StubConfig {
        api_key: Some(key.into()),
        ..StubConfig::default()
    });
    let project = Project::openai(&server);
    server.stub.push_faults([Fault::EchoKey401]);
    let out = project
        .command()
        .args(["-vvv", "eval", "--segment", "intent/*", "--format", "json"])
        .output()
        .expect("runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains("[redacted]"),
        "the echoed key is scrubbed: {stdout}"
    );
    assert!(!stdout.contains(key) && !stderr.contains(key));
    // The key did go to the provider, in the header it belongs in.
    let sent = server.stub.requests();
    assert!(sent.iter().any(|r| {
        r.headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == &format!("Bearer {key}"))
    }));
    // A missing key is reported by variable name, before any request.
    let out = project
        .command()
        .args(["eval"])
        .env_remove("STUB_KEY")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("needs an API key in the environment variable STUB_KEY, which is not set")
    );
}

#[test]
fn anthropic_messages_round_trip() {
    let server = Server::start(StubConfig {
        rules: refund_rules(),
        usage: UsageMode::Fixed {
            input: 100,
            output: 10,
        },
        ..StubConfig::default()
    });
    let project = Project::new(&server.stub.base_url(), "kind: anthropic");
    let (_, result, stderr) = project.eval(&[]);
    let refund = &case(&result, "refund-with-tools")["samples"][0];
    assert_eq!(refund["outcome"], "pass", "{refund:#} {stderr}");
    assert_eq!(refund["input_tokens"], 200);
    let sent = server.stub.requests();
    let hello = sent
        .iter()
        .find(|r| r.body.to_string().contains("say hello"))
        .expect("hello request");
    assert_eq!(hello.path, "/v1/messages");
    assert!(
        hello
            .headers
            .iter()
            .any(|(k, v)| k == "anthropic-version" && v == "2023-06-01")
    );
    assert!(hello.headers.iter().any(|(k, _)| k == "x-api-key"));
    assert_eq!(
        hello.body["system"],
        "You are the refund assistant of Acme."
    );
    assert_eq!(hello.body["max_tokens"], 200);
    assert_eq!(
        hello.body["messages"],
        json!([{"role": "user", "content": "say hello"}])
    );
    assert_eq!(hello.body["tools"][0]["name"], "lookup_order");
    assert_eq!(hello.body["tools"][0]["input_schema"]["type"], "object");
    assert!(
        hello.body.get("seed").is_none(),
        "the Messages API has no seed"
    );
}

#[test]
fn tokens_are_estimated_and_marked_when_usage_is_absent() {
    let server = Server::start(StubConfig {
        usage: UsageMode::Omitted,
        ..StubConfig::default()
    });
    let project = Project::openai(&server);
    let (_, result, _) = project.eval(&["--segment", "intent/*"]);
    let greets = &case(&result, "greets")["samples"][0];
    assert_eq!(greets["tokens_estimated"], true);
    assert!(greets["input_tokens"].as_u64().unwrap_or(0) > 0);
    assert_eq!(result["runs"][0]["summary"]["tokens_estimated"], true);
}

#[test]
fn shards_merge_into_the_whole_run() {
    let server = Server::start(StubConfig {
        rules: refund_rules(),
        ..StubConfig::default()
    });
    let project = Project::openai(&server);
    let (_, whole, _) = project.eval(&[]);
    let mut files = Vec::new();
    for k in 1..=2 {
        let (_, shard, _) = project.eval(&["--shard", &format!("{k}/2")]);
        assert_eq!(shard["runs"][0]["shard"], json!({"index": k, "count": 2}));
        let path = project.dir.path().join(format!("shard-{k}.json"));
        std::fs::write(&path, shard.to_string()).expect("write");
        files.push(path);
    }
    let out = promptgate()
        .arg("merge")
        .args(&files)
        .args(["--format", "json"])
        .output()
        .expect("runs");
    let merged: Value = serde_json::from_slice(&out.stdout).expect("json");
    let ids = |v: &Value| {
        let mut ids: Vec<String> = v["runs"][0]["cases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&merged), ids(&whole));
    assert_eq!(merged["runs"][0]["summary"], whole["runs"][0]["summary"]);
    // One shard alone is refused.
    let out = promptgate()
        .arg("merge")
        .arg(&files[0])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shard(s) 2/2 missing"));
}

#[test]
fn junit_and_table_formats() {
    let server = Server::start(StubConfig {
        rules: refund_rules(),
        default_reply: Reply::Text("<b>no</b> & \u{1b}[31m".into()),
        ..StubConfig::default()
    });
    let project = Project::openai(&server);
    let run = |format: &str| {
        let out = project
            .command()
            .args(["eval", "--format", format])
            .output()
            .expect("runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let junit = run("junit");
    assert!(
        junit.contains(r#"<testsuite name="support.refund" tests="3" failures="1" errors="0">"#),
        "{junit}"
    );
    assert!(
        junit.contains("got `&lt;b&gt;no&lt;/b&gt; &amp; \u{FFFD}[31m`"),
        "{junit}"
    );
    let table = run("table");
    assert!(table.contains("support.refund v3"), "{table}");
    assert!(
        table.contains("says-goodbye (evals/refund.eval.yaml:10): contains: expected"),
        "{table}"
    );
}

#[test]
fn the_table_quotes_control_characters_from_the_suite() {
    let server = Server::start(StubConfig {
        rules: refund_rules(),
        default_reply: Reply::Text("no".into()),
        ..StubConfig::default()
    });
    let project = Project::openai(&server);
    project.write(
        "evals/refund.eval.yaml",
        &SUITE.replace("id: says-goodbye", r#"id: "says-goodbye\e[2J""#),
    );
    let out = project
        .command()
        .args(["eval", "--format", "table"])
        .output()
        .expect("runs");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(!table.contains('\u{1b}'), "{table:?}");
    assert!(
        table.contains(r"says-goodbye\u{1b}[2J (evals/refund.eval.yaml:10)"),
        "{table}"
    );
}

#[test]
fn mangled_answers_and_broken_connections_are_retried() {
    let server = Server::start(StubConfig::default());
    let project = Project::openai(&server);
    server.stub.push_faults([
        Fault::MalformedJson,
        Fault::TruncatedJson,
        Fault::DropConnection,
    ]);
    let (code, result, stderr) = project.eval(&["--segment", "intent/*"]);
    assert_eq!(result["runs"][0]["summary"]["errors"], 0, "{stderr}");
    assert_eq!(result["runs"][0]["summary"]["retries"], 3);
    assert_eq!(server.stub.requests().len(), 5);
    assert_eq!(code, 0, "the echoed questions pass once answered");
}

#[test]
fn concurrency_per_provider_is_bounded() {
    let server = Server::start(StubConfig {
        latency: Duration::from_millis(150),
        ..StubConfig::default()
    });
    let project = Project::openai(&server);
    project.stub_provider(&server, "concurrency: 2", "");
    project.eval(&["--segment", "intent/*", "--repeats", "4"]);
    let arrivals: Vec<_> = server.stub.requests().iter().map(|r| r.at).collect();
    assert_eq!(arrivals.len(), 8);
    // With two requests in flight and 150 ms each, no three arrive within 100 ms.
    for window in arrivals.windows(3) {
        let spread = window[2].duration_since(window[0]);
        assert!(spread >= Duration::from_millis(100), "{spread:?}");
    }
}

/// Rendered prompts held at once are bounded in bytes for the whole process (16 MiB),
/// whatever the concurrency: a sample measures its prompt and makes it only when there
/// is room, so two 9 MB prompts never go out together, and one over 16 MiB is an error
/// before it is made.
#[test]
fn large_prompts_go_out_one_at_a_time() {
    let server = Server::start(StubConfig {
        latency: Duration::from_millis(1000),
        default_reply: Reply::Text("ok".into()),
        ..StubConfig::default()
    });
    let project = Project::openai(&server);
    project.stub_provider(&server, "concurrency: 8", "");
    project.write(
        "prompts/refund.prompt.yaml",
        "id: support.refund\nversion: 1\nmodel: {provider: stub, name: stub-model}\nmessages:\n  \
         - {role: user, content: \"{{ text * times }}\"}\nevals: [../evals/refund.eval.yaml]\n",
    );
    let line = |id: &str, times: u32| {
        format!(
            "  - {{id: {id}, vars: {{text: '{id}123456789', times: {times}}}, \
             assert: [{{type: equals, value: ok}}]}}\n"
        )
    };
    let suite = ["a", "b", "c"].map(|id| line(id, 900_000)).concat() + &line("huge", 1_700_000);
    project.write("evals/refund.eval.yaml", &format!("cases:\n{suite}"));
    let (code, result, stderr) = project.eval(&[]);
    assert_eq!(code, 5, "{stderr}");
    assert_eq!(result["runs"][0]["summary"]["passed"], 3, "{stderr}");
    assert!(
        case(&result, "huge")["samples"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("render to more than 16 MiB")),
        "{stderr}"
    );
    let arrivals: Vec<_> = server.stub.requests().iter().map(|r| r.at).collect();
    assert_eq!(arrivals.len(), 3);
    for pair in arrivals.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(gap >= Duration::from_millis(950), "{gap:?}");
    }
}

#[test]
fn requests_per_minute_spaces_requests() {
    let server = Server::start(StubConfig::default());
    let project = Project::openai(&server);
    project.stub_provider(&server, "concurrency: 8, requests_per_minute: 300", "");
    project.eval(&["--segment", "intent/*", "--repeats", "2"]);
    let arrivals: Vec<_> = server.stub.requests().iter().map(|r| r.at).collect();
    assert_eq!(arrivals.len(), 4);
    // 300 a minute is one every 200 ms. Requests are spaced when sent; on a loaded
    // machine one can reach the stub late and shorten the gap after it, never the
    // span of all of them.
    for pair in arrivals.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(gap >= Duration::from_millis(120), "{gap:?}");
    }
    let span = arrivals[3].duration_since(arrivals[0]);
    assert!(span >= Duration::from_millis(540), "{span:?}");
}

#[test]
fn llm_rubric_is_graded_by_the_judge_and_unjudged_is_an_error() {
    let server = Server::start(StubConfig {
        rules: vec![Rule {
            when: Match {
                contains: Some("Rubric:".into()),
                after_tool_result: None,
            },
            reply: Reply::Text(r#"{"pass": false, "reason": "the answer is rude"}"#.into()),
            fault: None,
        }],
        ..StubConfig::default()
    });
    let project = Project::openai(&server);
    project.write(
        "evals/refund.eval.yaml",
        "cases:\n  - id: polite\n    vars: {company: Acme, question: hi}\n    assert: [{type: llm-rubric, value: Is the answer polite?}]\n",
    );
    // Without a judge the rubric cannot be judged: an error, not a pass.
    let (code, result, _) = project.eval(&[]);
    assert_eq!(code, 5);
    let polite = case(&result, "polite");
    assert_eq!(polite["outcome"], "error");
    assert!(
        polite["samples"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no judge configured")),
        "{polite:#}"
    );
    // With one, its verdict counts.
    project.stub_provider(&server, "", "judge: {provider: stub, model: judge-model}\n");
    let (code, result, _) = project.eval(&[]);
    assert_eq!(code, 4);
    assert_eq!(
        case(&result, "polite")["samples"][0]["assertions"][0]["reason"],
        "llm-rubric: the answer is rude"
    );
    let judged = server
        .bodies()
        .into_iter()
        .find(|b| b["model"] == "judge-model")
        .expect("the judge was asked");
    assert_eq!(judged["temperature"], 0.0);
    assert_eq!(judged["response_format"], json!({"type": "json_object"}));
}

#[test]
fn selections_that_match_nothing_are_refused() {
    let server = Server::start(StubConfig::default());
    let project = Project::openai(&server);
    let out = project
        .command()
        .args(["eval", "--segment", "intnet/*"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no case is in a segment matching `intnet/*`")
    );
    // A broken artifact named as ./path reports its problems.
    project.write("prompts/refund.prompt.yaml", "id: broken\nmessages: []\n");
    let out = project
        .command()
        .args(["eval", "./prompts/refund.prompt.yaml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("prompts/refund.prompt.yaml:"));
    assert_eq!(server.stub.requests().len(), 0);
}

// Answers with nothing in them, and refusals the API marks as such.

const SILENCE_SUITE: &str = r#"segments:
  intent/refund: {}
defaults: {vars: {company: Acme}}
cases:
  - id: says-nothing
    segments: [intent/refund]
    vars: {question: "say nothing"}
    assert: [{type: not-contains, value: password}, {type: max-words, value: 50}]
  - id: refuses
    segments: [intent/refund]
    vars: {question: "refuse with a reason"}
    assert: [{type: refusal}]
  - id: refuses-silently
    segments: [intent/refund]
    vars: {question: "refuse silently"}
    assert: [{type: not-refusal}]
"#;

fn silence_server() -> Server {
    Server::start(StubConfig {
        rules: vec![
            common::rule("say nothing", Reply::Nothing),
            // Worded so that no refusal phrase gives it away: the API's mark does.
            common::rule(
                "refuse with a reason",
                Reply::Refusal(Some("This request was declined.".into())),
            ),
            common::rule("refuse silently", Reply::Refusal(None)),
        ],
        ..StubConfig::default()
    })
}

/// `eval` with retries that do not wait long.
fn eval_quickly(project: &Project, args: &[&str]) -> (i32, Value, String) {
    let out = project
        .command()
        .env("PROMPTGATE_RETRY_BASE_MS", "5")
        .arg("eval")
        .args(args)
        .args(["--format", "json"])
        .output()
        .expect("runs");
    let (code, stdout, stderr) = common::outcome(out);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (code, json, stderr)
}

#[test]
fn an_answer_with_nothing_in_it_is_an_error_and_a_marked_refusal_an_answer() {
    for (kind, stop) in [("openai", "stop"), ("anthropic", "end_turn")] {
        let server = silence_server();
        let project = Project::new(&server.stub.base_url(), &format!("kind: {kind}"));
        project.write("evals/refund.eval.yaml", SILENCE_SUITE);
        let asked = |question: &str| {
            server
                .bodies()
                .iter()
                .filter(|b| b.to_string().contains(question))
                .count()
        };
        let (code, result, stderr) = eval_quickly(&project, &["--record", "recordings"]);
        assert_eq!(code, 5, "{kind}: could not evaluate\n{result:#}\n{stderr}");

        // Nothing: retried (3 retries configured), then an error, never judged.
        let nothing = &case(&result, "says-nothing")["samples"][0];
        assert_eq!(nothing["outcome"], "error", "{kind}: {nothing:#}");
        assert_eq!(
            nothing["error"],
            format!(
                "provider `stub`: answer unreadable: no text and no tool call in the answer (finish reason `{stop}`)"
            ),
            "{kind}"
        );
        assert!(nothing.get("assertions").is_none(), "{kind}: {nothing:#}");
        assert_eq!(asked("say nothing"), 4, "{kind}: one try and three retries");

        // A refusal in the API's field is the answer, and a refusal whatever its words.
        let refuses = &case(&result, "refuses")["samples"][0];
        assert_eq!(
            (&refuses["outcome"], &refuses["text"], &refuses["refusal"]),
            (
                &json!("pass"),
                &json!("This request was declined."),
                &json!(true)
            ),
            "{kind}: {refuses:#}"
        );
        let silent = &case(&result, "refuses-silently")["samples"][0];
        assert_eq!(silent["outcome"], "fail", "{kind}: {silent:#}");
        assert_eq!(
            silent["assertions"][0]["reason"],
            "not-refusal: expected not a refusal, got a refusal: `(the model refused, without saying why)`",
            "{kind}"
        );
        assert_eq!(
            asked("refuse silently"),
            1,
            "{kind}: a refusal is not retried"
        );

        // Refusals are cached and recorded with their mark; nothing is neither.
        let recordings: Vec<String> = std::fs::read_dir(project.dir.path().join("recordings"))
            .expect("recordings written")
            .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("read"))
            .collect();
        assert_eq!(recordings.len(), 2, "{kind}: {recordings:#?}");
        assert!(
            recordings.iter().all(|r| r.contains(r#""refusal": true"#)),
            "{kind}: {recordings:#?}"
        );
        let (code, again, _) = eval_quickly(&project, &[]);
        assert_eq!(code, 5, "{kind}");
        assert_eq!(asked("say nothing"), 8, "{kind}: asked again, not cached");
        assert_eq!(asked("refuse silently"), 1, "{kind}: from the cache");
        assert_eq!(case(&again, "refuses")["samples"][0]["refusal"], true);
        assert_eq!(case(&again, "refuses")["samples"][0]["source"], "cache");

        // Replayed: the refusals as recorded; nothing has no recording.
        let (code, replayed, _) = eval_quickly(&project, &["--provider", "recorded"]);
        assert_eq!(code, 5, "{kind}");
        assert_eq!(case(&replayed, "refuses")["outcome"], "pass", "{kind}");
        assert_eq!(case(&replayed, "refuses-silently")["outcome"], "fail");
        let error = case(&replayed, "says-nothing")["samples"][0]["error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            error.starts_with("provider `recorded`: no recording"),
            "{error}"
        );
    }
}

#[test]
fn an_errored_case_counts_every_request_it_sent() {
    let server = goodbye_always(Fault::Status(500));
    let project = Project::openai(&server);
    project.stub_provider(&server, "max_retries: 7", "");
    let (code, result, stderr) = eval_quickly(&project, &["--segment", "intent/*"]);
    assert_eq!(code, 5, "{stderr}");
    let sent = |question: &str| {
        server
            .bodies()
            .iter()
            .filter(|b| b.to_string().contains(question))
            .count()
    };
    assert_eq!(sent("say goodbye"), 8, "one try and seven retries");
    let goodbye = &case(&result, "says-goodbye")["samples"][0];
    assert_eq!(goodbye["outcome"], "error");
    assert_eq!(
        (&goodbye["requests"], &goodbye["retries"]),
        (&json!(8), &json!(7)),
        "{goodbye:#}"
    );
    // The totals are what the provider saw.
    let summary = &result["runs"][0]["summary"];
    assert_eq!(
        summary["requests"],
        json!(server.bodies().len()),
        "{summary:#}"
    );
    assert_eq!(summary["requests"], 9, "{summary:#}");
    let (_, table, _) = common::outcome(
        project
            .command()
            .env("PROMPTGATE_RETRY_BASE_MS", "5")
            .args(["eval", "--segment", "intent/*", "--format", "table"])
            .output()
            .expect("runs"),
    );
    assert!(table.contains("9 request(s), 7 retried"), "{table}");
}

/// A GitHub Models file whose every evaluator kind is run against the stub, the judge
/// included: `{{completion}}` is the answer, `{{name}}` the row's.
const GITHUB_MODELS_FILE: &str = r#"name: Echo
model: openai/gpt-4o-mini
modelParameters: {maxCompletionTokens: 50, temperature: 0}
messages:
  - role: system
    content: "Token ${{ secrets.TOKEN }} stays; {{ spaced }} too."
  - role: user
    content: "{{input}}"
testData:
  - input: "  hello WORLD  "
    expected: world
  - input: goodbye
    expected: world
evaluators:
  - name: says hello
    string: {contains: HELLO}
  - name: ends with expected
    string: {endsWith: "{{expected}}"}
  - name: graded
    llm:
      modelId: openai/gpt-4o
      systemPrompt: You grade.
      prompt: "Q: {{input}} A: {{completion}} E: {{expected}} -- JUDGE"
      choices: [{choice: great, score: 1}, {choice: poor, score: 0}]
  - name: fluent
    uses: github/fluency
"#;

impl Project {
    /// The project with only [`GITHUB_MODELS_FILE`], its provider `github-models` the
    /// stub, and `judge` after.
    fn github_models(server: &Server, judge: &str) -> Project {
        let project = Project::openai(server);
        std::fs::remove_file(project.dir.path().join("prompts/refund.prompt.yaml")).expect("rm");
        std::fs::create_dir_all(project.dir.path().join(".github/prompts")).expect("mkdir");
        project.write(".github/prompts/echo.prompt.yml", GITHUB_MODELS_FILE);
        project.write(
            ".promptgate.yaml",
            &format!(
                "providers:\n  github-models: {{kind: openai, base_url: \"{}\", api_key_env: STUB_KEY}}\n{judge}",
                server.stub.base_url()
            ),
        );
        project
    }
}

fn row(result: &Value, n: usize) -> &Value {
    let prefix = format!("row-{n}-");
    result["runs"][0]["cases"]
        .as_array()
        .and_then(|cases| {
            cases
                .iter()
                .find(|c| c["id"].as_str().is_some_and(|id| id.starts_with(&prefix)))
        })
        .unwrap_or_else(|| panic!("no row {n} in {result:#}"))
}

/// Conformance with gh models eval (github/gh-models `cmd/eval/eval.go`,
/// `pkg/prompt/prompt.go`): messages filled in by `TemplateString` (only `{{name}}` of
/// the row; `${{ … }}` and `{{ spaced }}` as written), the answer trimmed, `contains`
/// and `endsWith` ignoring case, and `llm` and built-in evaluators sent to the judge
/// with `{{completion}}` filled in, the first choice its answer contains scoring it.
#[test]
fn github_models_files_are_judged_as_gh_models_eval_judges_them() {
    let server = Server::start(StubConfig {
        rules: vec![
            common::rule("A: hello WORLD E: world", Reply::Text("Great.".into())),
            common::rule("-- JUDGE", Reply::Text("poor".into())),
            common::rule("ANSWER: hello WORLD", Reply::Text("4".into())),
            common::rule("Rating (1-5)", Reply::Text("1".into())),
        ],
        ..StubConfig::default()
    });
    let project = Project::github_models(
        &server,
        "judge: {provider: github-models, model: judge-default, models: {openai/gpt-4o: stub-judge}}\n",
    );
    let (code, result, stderr) = project.eval(&[]);
    assert_eq!(code, 4, "{stderr}");

    // The prompt, as GitHub sends it.
    let bodies = server.bodies();
    let first = bodies
        .iter()
        .find(|b| {
            b["model"] == "openai/gpt-4o-mini" && b["messages"][1]["content"] == "  hello WORLD  "
        })
        .expect("row 1 was asked");
    assert_eq!(
        first["messages"][0]["content"],
        "Token ${{ secrets.TOKEN }} stays; {{ spaced }} too."
    );
    assert_eq!(first["max_completion_tokens"], 50);
    assert_eq!(first["temperature"], 0.0);
    assert!(first.get("max_tokens").is_none(), "{first}");

    // The judge, field by field: the mapped model, the system prompt, the prompt with
    // the row's variables and the trimmed answer, no response format.
    let judged = bodies
        .iter()
        .find(|b| {
            b["model"] == "stub-judge"
                && b["messages"][0]["content"] == "You grade."
                && b["messages"][1]["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("hello"))
        })
        .expect("the judge was asked");
    assert_eq!(
        judged["messages"],
        json!([
            {"role": "system", "content": "You grade."},
            {"role": "user", "content": "Q:   hello WORLD   A: hello WORLD E: world -- JUDGE"}
        ])
    );
    assert_eq!(judged["temperature"], 0.0);
    assert!(judged.get("response_format").is_none(), "{judged}");
    let fluency = bodies
        .iter()
        .find(|b| {
            b["model"] == "stub-judge"
                && b["messages"][1]["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("ANSWER: hello WORLD\n"))
        })
        .expect("the built-in was asked");
    assert!(
        fluency["messages"][0]["content"]
            .as_str()
            .is_some_and(|c| c.contains("single digit from 1 to 5")),
        "{fluency}"
    );

    // Row 1 passes everything; its judge picks score 1 and 0.75.
    let one = row(&result, 1);
    assert_eq!(one["outcome"], "pass", "{one:#}");
    assert_eq!(one["line"], 10);
    let scores: Vec<&Value> = one["samples"][0]["assertions"]
        .as_array()
        .expect("assertions")
        .iter()
        .map(|a| &a["score"])
        .collect();
    assert_eq!(
        scores,
        [&Value::Null, &Value::Null, &json!(1.0), &json!(0.75)]
    );
    // Row 2 fails each, each failure named after its evaluator.
    let two = row(&result, 2);
    assert_eq!(two["outcome"], "fail");
    assert_eq!(two["line"], 12);
    let reasons: Vec<&str> = two["samples"][0]["assertions"]
        .as_array()
        .expect("assertions")
        .iter()
        .filter_map(|a| a["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        [
            "says hello: expected text containing `HELLO` (any case), got `goodbye`",
            "ends with expected: expected text ending with `world` (any case), got `goodbye`",
            "graded: the judge chose `poor`, score 0 (above 0 passes)",
            "fluent: the judge chose `1`, score 0 (above 0 passes)",
        ]
    );
}

/// Without a judge, a model-graded evaluator is unjudged: a case that passes every
/// `string` evaluator is an error, never a pass; one that fails one is a fail.
#[test]
fn github_models_graded_evaluators_without_a_judge_are_never_a_pass() {
    let server = Server::start(StubConfig::default());
    let project = Project::github_models(&server, "");
    let (code, result, _) = project.eval(&[]);
    assert_eq!(code, 5);
    let one = row(&result, 1);
    assert_eq!(one["outcome"], "error");
    assert!(
        one["samples"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("graded: model-graded, and no judge is configured")),
        "{one:#}"
    );
    assert_eq!(row(&result, 2)["outcome"], "fail");
    // Only the prompt was asked: nothing graded without a judge.
    assert!(
        server
            .bodies()
            .iter()
            .all(|b| b["model"] == "openai/gpt-4o-mini")
    );
}

/// One invalid artifact among several: the valid ones are still evaluated and written,
/// the invalid one is reported, and the exit code says the run was not complete.
#[test]
fn an_invalid_artifact_is_reported_and_the_valid_ones_still_run() {
    let server = Server::start(StubConfig {
        rules: refund_rules(),
        ..StubConfig::default()
    });
    let project = Project::openai(&server);
    std::fs::create_dir_all(project.dir.path().join(".github/prompts")).expect("mkdir");
    project.write(
        ".github/prompts/broken.prompt.yml",
        "model: openai/gpt-4o-mini\nmessages: []\n",
    );
    let (code, result, stderr) = project.eval(&[]);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(
        stderr.lines().next(),
        Some(".github/prompts/broken.prompt.yml:2:11: `messages` needs at least 1 item(s)")
    );
    let runs = result["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["artifact"]["id"], "support.refund", "{result:#}");
    assert_eq!(case(&result, "greets")["outcome"], "pass");
}
