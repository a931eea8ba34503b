//! The runtime layer: `promptgate resolve` and flagd's own evaluator agree on every request,
//! and `promptgate bundle` holds what applications serve. flagd is
//! the real thing: the OpenFeature Python SDK with flagd's in-process provider reading
//! the file `promptgate export --format flagd` wrote (from PyPI, versions pinned in
//! docs/examples/python/requirements.txt, installed by scripts/flagd.sh), driven by the
//! runnable example docs/examples/python/serve.py. Where it cannot be installed the test
//! says why and is skipped, unless `PROMPTGATE_REQUIRE_FLAGD` names its language (`.ci/run` sets it:
//! then scripts/flagd.sh exits 2 and the test fails).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Repo, outcome, promptgate};
use promptgate::rollout::command::parse;
use promptgate::rollout::{Resolver, Runtime};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the evaluator for `language` is installed (scripts/flagd.sh), or why none is.
fn evaluator(language: &str) -> Option<String> {
    let out = Command::new("bash")
        .arg(root().join("scripts/flagd.sh"))
        .arg(language)
        .output()
        .expect("bash runs");
    if out.status.success() {
        return Some(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
    // The script exits 2 when PROMPTGATE_REQUIRE_FLAGD says it must not be skipped.
    assert_ne!(out.status.code(), Some(2), "{why}");
    eprintln!("skipped: {why}");
    None
}

/// A runtime config with every shape a rollout takes: a canary at each stage, shares
/// with decimals, globs of every kind flagd can express, frozen, rolled back (no
/// canary), and artifact ids and segments outside ASCII.
const RUNTIME: &str = r#"format: promptgate.runtime/v1
artifacts:
  support.internal:
    stable: {version: 3}
    canary: {version: 4, stage: internal, segments: [internal, "staff/*"], percent: 100, since: "2026-01-07T09:00:00Z"}
    stages:
      internal: {segments: [internal, "staff/*"], percent: 100}
      low-risk: {segments: ["intent/order-*"], percent: 10}
      cohort: {segments: ["geo/eu"], percent: 50}
      all: {segments: ["*"], percent: 100}
  support.low-risk:
    stable: {version: "v1.2"}
    history: [{version: "v1.1"}]
    canary: {version: "v1.3", stage: low-risk, segments: ["intent/order-*", "*/delivery", "geo/{eu,uk}"], percent: 12.5, since: "2026-01-07T09:00:00Z"}
    stages:
      internal: {segments: [internal], percent: 100}
      low-risk: {segments: ["intent/order-*", "*/delivery", "geo/{eu,uk}"], percent: 12.5}
      cohort: {segments: ["*eu*"], percent: 33.33}
      all: {segments: ["*"], percent: 100}
  support.cohort:
    stable: {version: 7}
    canary: {version: 8, stage: cohort, segments: ["*eu*", "tenant/[abc]"], percent: 33.33, since: "2026-01-07T09:00:00Z"}
    stages:
      internal: {segments: [internal], percent: 100}
      low-risk: {segments: ["intent/*/x", "a*a"], percent: 5}
      cohort: {segments: ["*eu*", "tenant/[abc]"], percent: 33.33}
      all: {segments: ["*"], percent: 100}
  support.all:
    stable: {version: 1}
    canary: {version: 2, stage: all, segments: ["*"], percent: 99.99, since: "2026-01-07T09:00:00Z"}
    stages:
      internal: {segments: [internal], percent: 100}
      low-risk: {segments: ["intent/*"], percent: 0.01}
      cohort: {segments: ["geo/*"], percent: 50}
      all: {segments: ["*"], percent: 99.99}
  support.frozen:
    stable: {version: 5}
    frozen: true
    frozen_because: "fallback rate 12% over 5%"
    canary: {version: 6, stage: cohort, segments: ["*"], percent: 50, since: "2026-01-07T09:00:00Z"}
    stages:
      internal: {segments: [internal], percent: 100}
      low-risk: {segments: ["*"], percent: 10}
      cohort: {segments: ["*"], percent: 50}
      all: {segments: ["*"], percent: 100}
  support.rolled-back:
    stable: {version: 11}
    history: [{version: 9}, {version: 10}]
  "支持.助手":
    stable: {version: "一"}
    canary: {version: "二", stage: low-risk, segments: ["地区/欧*"], percent: 40, since: "2026-01-07T09:00:00Z"}
    stages:
      internal: {segments: ["内部"], percent: 100}
      low-risk: {segments: ["地区/欧*"], percent: 40}
      cohort: {segments: ["*"], percent: 60}
      all: {segments: ["*"], percent: 100}
"#;

const SEGMENTS: &[&str] = &[
    "internal",
    "staff/alice",
    "staff",
    "intent/order-status",
    "intent/order-",
    "intent/refund",
    "intent/a/x",
    "intent/x",
    "aa",
    "a",
    "aba",
    "home/delivery",
    "delivery",
    "geo/eu",
    "geo/uk",
    "geo/us",
    "geo/eu/paris",
    "neutral",
    "eu",
    "tenant/a",
    "tenant/c",
    "tenant/d",
    "内部",
    "地区/欧洲",
    "地区/亚洲",
    "Geo/EU",
];

const KEY_PARTS: &[&str] = &[
    "user-",
    "sess:",
    "ü",
    "ß",
    "é",
    "日本",
    "👩‍💻",
    "\u{202e}",
    "a\u{301}",
    "0",
    "Z",
    " ",
    "-",
    "🙂",
];

/// Requests from a fixed seed: every artifact, keys ASCII and not, empty now and then,
/// zero to three segments.
fn requests(n: usize, runtime: &Runtime) -> Vec<Request> {
    let artifacts: Vec<&String> = runtime.artifacts.keys().collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            let artifact = artifacts[i % artifacts.len()].clone();
            let key = if next() % 97 == 0 {
                String::new()
            } else {
                let mut key = String::new();
                for _ in 0..(1 + next() % 4) {
                    key.push_str(KEY_PARTS[(next() % KEY_PARTS.len() as u64) as usize]);
                    key.push_str(&(next() % 100_000).to_string());
                }
                key
            };
            let segments = (0..next() % 4)
                .map(|_| SEGMENTS[(next() % SEGMENTS.len() as u64) as usize].to_string())
                .collect();
            (artifact, key, segments)
        })
        .collect()
}

/// The Python example, run by flagd's Python evaluator installed at `pythonpath`.
fn python(pythonpath: &str) -> Command {
    let mut command = Command::new("python3");
    command
        .arg(root().join("docs/examples/python/serve.py"))
        .env("PYTHONPATH", pythonpath);
    command
}

/// The TypeScript example, run where its packages are installed (`dir`): ES modules
/// resolve packages from the script's own directory.
fn typescript(dir: &str) -> Command {
    std::fs::copy(
        root().join("docs/examples/typescript/serve.ts"),
        Path::new(dir).join("serve.ts"),
    )
    .expect("copy serve.ts");
    let mut command = Command::new(Path::new(dir).join("node_modules/.bin/tsx"));
    command.arg(Path::new(dir).join("serve.ts"));
    command
}

/// What an example answers for `requests` with the flag file `flags`, a version each.
fn flagd_answers(mut example: Command, flags: &Path, requests: &[Request]) -> Vec<String> {
    let mut lines = String::new();
    for (artifact, key, segments) in requests {
        let line = serde_json::json!({"artifact": artifact, "key": key, "segments": segments});
        lines.push_str(&format!("{line}\n"));
    }
    let mut child = example
        .arg(flags)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(lines.as_bytes()));
    let out = child.wait_with_output().expect("python3 ends");
    assert!(
        out.status.success(),
        "the example failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    writer.join().expect("writer").expect("stdin written");
    let answers: Vec<String> = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(answers.len(), requests.len());
    answers
}

type Request = (String, String, Vec<String>);

/// A repository with [`RUNTIME`] as its runtime config, that config, and its export.
fn exported() -> (Repo, Runtime, PathBuf) {
    let repo = Repo::new();
    repo.write("deploy/prompts.runtime.yaml", RUNTIME);
    let runtime_path = repo.path().join("deploy/prompts.runtime.yaml");
    let runtime = parse(&runtime_path, RUNTIME).expect("a valid runtime config");
    let flags = repo.path().join("flags.json");
    let out = flags.to_str().expect("UTF-8");
    let (code, _, err) = repo.run(&["export", "--format", "flagd", "-o", out]);
    assert_eq!(code, 0, "{err}");
    (repo, runtime, flags)
}

#[test]
fn flagd_serves_every_request_the_version_resolve_answers() {
    let Some(pythonpath) = evaluator("python") else {
        return;
    };
    let (repo, runtime, flags) = exported();
    let requests = requests(12_000, &runtime);
    let flagd = flagd_answers(python(&pythonpath), &flags, &requests);
    let resolver = Resolver::new(&runtime);

    let mut differ = Vec::new();
    let mut canary = 0;
    for ((artifact, key, segments), from_flagd) in requests.iter().zip(&flagd) {
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let ours = resolver
            .resolve(artifact, &segments, key)
            .expect("a known artifact");
        if ours != runtime.artifacts[artifact].stable.version.text() {
            canary += 1;
        }
        if ours != from_flagd {
            differ.push(format!(
                "{artifact} {key:?} {segments:?}: promptgate {ours}, flagd {from_flagd}"
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} requests differ:\n{}",
        differ.len(),
        requests.len(),
        differ[..differ.len().min(20)].join("\n")
    );
    // The requests reach both sides of every rollout, not only stable.
    assert!(canary > 1_000 && canary < 9_000, "{canary} canary answers");

    // The command line answers the same, for a sample.
    for (i, (artifact, key, segments)) in requests.iter().enumerate().step_by(400) {
        // `--key=…`: a key may start with `-`.
        let mut args = vec![
            "resolve".to_string(),
            artifact.clone(),
            format!("--key={key}"),
        ];
        args.extend(segments.iter().map(|s| format!("--segment={s}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = repo.run(&args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            out.trim_end_matches('\n'),
            flagd[i],
            "{artifact} {key:?} {segments:?}"
        );
    }
}

/// The TypeScript evaluator (`@openfeature/flagd-core` 4.0.1) still draws `fractional`
/// buckets the way flagd did before its CBOR bucketing: MurmurHash3 of flag key and
/// targeting key joined as one string. Everything else agrees exactly — which stage
/// serves a request, frozen, rolled back, no key — and every rollout's canary gets the
/// same share of keys, though not the same keys (docs/runtime.md says so).
#[test]
fn the_typescript_evaluator_agrees_except_on_which_keys_fill_a_share() {
    let Some(dir) = evaluator("typescript") else {
        return;
    };
    let (_repo, runtime, flags) = exported();
    let requests = requests(12_000, &runtime);
    let flagd = flagd_answers(typescript(&dir), &flags, &requests);
    let resolver = Resolver::new(&runtime);
    let mut differ = Vec::new();
    // Per artifact: requests a share decides, and how many of them got the canary on
    // each side.
    let mut shares: std::collections::BTreeMap<&str, (u32, u32, u32)> = Default::default();
    for ((artifact, key, segments), theirs) in requests.iter().zip(&flagd) {
        let release = &runtime.artifacts[artifact];
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let serving = resolver.serving(artifact).expect("known");
        let ours = serving.version(artifact, &segments, key);
        // Whether some stage serves the request at all (a bucket of 0 is in any share).
        let shared = !key.is_empty() && serving.canary_serves(&segments, 0);
        if shared {
            let stable = release.stable.version.text();
            let share = shares.entry(artifact).or_default();
            share.0 += 1;
            share.1 += u32::from(ours != stable);
            share.2 += u32::from(*theirs != stable);
        } else if ours != theirs {
            differ.push(format!(
                "{artifact} {key:?} {segments:?}: promptgate {ours}, flagd {theirs}"
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{}",
        differ[..differ.len().min(20)].join("\n")
    );
    for (artifact, (n, ours, theirs)) in shares {
        let (ours, theirs) = (
            f64::from(ours) / f64::from(n),
            f64::from(theirs) / f64::from(n),
        );
        assert!(
            (ours - theirs).abs() < 0.05,
            "{artifact}: canary share {ours:.3} here, {theirs:.3} in TypeScript over {n} requests"
        );
    }
}

/// A glob flagd targeting cannot say (`?`, a negated set, two inner stars) is refused by
/// the export, naming the artifact, the stage and the glob, and `rollout --flagd` changes
/// nothing rather than leave flagd serving an old file.
#[test]
fn a_glob_flagd_cannot_express_is_refused_and_nothing_changes() {
    let repo = Repo::new();
    let runtime = RUNTIME.replace(r#"["intent/*/x", "a*a"]"#, r#"["intent/?/x"]"#);
    repo.write("deploy/prompts.runtime.yaml", &runtime);
    let (code, out, err) = repo.run(&["export", "--format", "flagd"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains("support.cohort") && err.contains("low-risk") && err.contains("intent/?/x"),
        "{err}"
    );
    let before = repo.read("deploy/prompts.runtime.yaml");
    let out = promptgate()
        .current_dir(repo.path())
        .args(["rollback", "support.cohort", "--from", "8"])
        .args(["--flagd", "flags.json"])
        .output()
        .expect("runs");
    let (code, _, err) = outcome(out);
    assert_eq!(code, 3, "{err}");
    assert_eq!(repo.read("deploy/prompts.runtime.yaml"), before);
    assert!(!repo.path().join("flags.json").exists());
}

/// Every rollout command with `--flagd FILE` leaves FILE the export of what the runtime
/// config now says: a rollback shows at once as stable for everyone.
#[test]
fn rollout_commands_keep_the_flagd_file_in_step() {
    let repo = Repo::new();
    repo.write("deploy/prompts.runtime.yaml", RUNTIME);
    let flags = |repo: &Repo| -> serde_json::Value {
        serde_json::from_str(&repo.read("flags.json")).expect("JSON")
    };
    let flagd = repo.path().join("flags.json");
    let flagd = flagd.to_str().expect("UTF-8");
    let (code, _, err) = repo.run(&["rollout", "status", "--flagd", flagd]);
    assert_eq!(code, 0, "{err}");
    let before = flags(&repo);
    assert!(before["flags"]["support.cohort"]["targeting"].is_object());

    let (code, _, err) = repo.run(&[
        "rollback",
        "support.cohort",
        "--from",
        "8",
        "--flagd",
        flagd,
    ]);
    assert_eq!(code, 0, "{err}");
    let after = flags(&repo);
    let flag = &after["flags"]["support.cohort"];
    assert!(flag.get("targeting").is_none(), "{flag}");
    assert_eq!(flag["defaultVariant"], "7");
    // The other artifacts are as they were.
    assert_eq!(
        after["flags"]["support.all"],
        before["flags"]["support.all"]
    );
}

/// A repository whose `support.refund` went from version 1 to 2 to 3 (its system
/// message says which), with a runtime config: stable 2 (history 1), canary 3 in
/// `intent/refund` at 50%. Returns the commits that introduced each version.
fn released() -> (Repo, Vec<String>) {
    let mut repo = Repo::new();
    common::seed_support(&repo);
    let file = "prompts/support/refund.prompt.yaml";
    let mut commits = vec![repo.commit("support.refund version 1")];
    let first = repo.read(file);
    for v in [2, 3] {
        let text = first
            .replace("version: 1", &format!("version: {v}"))
            .replace(
                "You are the refund assistant",
                &format!("You (v{v}) are the refund assistant"),
            );
        repo.write(file, &text);
        commits.push(repo.commit(&format!("support.refund version {v}")));
        // A later commit that leaves the artifact alone.
        repo.write("README.md", &format!("after version {v}\n"));
        repo.commit("docs");
    }
    repo.write(
        "deploy/prompts.runtime.yaml",
        r#"format: promptgate.runtime/v1
artifacts:
  support.refund:
    stable: {version: 2}
    history: [{version: 1}]
    canary: {version: 3, stage: low-risk, segments: [intent/refund], percent: 50, since: "2026-01-07T09:00:00Z"}
    stages:
      internal: {segments: [internal], percent: 100}
      low-risk: {segments: [intent/refund], percent: 50}
      cohort: {segments: ["geo/*"], percent: 60}
      all: {segments: ["*"], percent: 100}
"#,
    );
    (repo, commits)
}

/// Every version the runtime config names, with its content at the commit that
/// introduced it, valid against the shipped schema.
#[test]
fn the_bundle_has_every_named_version_as_its_commit_had_it() {
    let (repo, commits) = released();
    let out = repo.path().join("bundle.json");
    let (code, _, err) = repo.run(&["bundle", "-o", out.to_str().expect("UTF-8")]);
    assert_eq!(code, 0, "{err}");
    let bundle: serde_json::Value = serde_json::from_str(&repo.read("bundle.json")).expect("JSON");
    let schema: serde_json::Value =
        serde_json::from_str(promptgate::schemas::BUNDLE.get().to_string().as_str())
            .expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let problems: Vec<String> = validator
        .iter_errors(&bundle)
        .map(|e| e.to_string())
        .collect();
    assert!(problems.is_empty(), "{problems:?}");

    let support = &bundle["artifacts"]["support.refund"];
    assert_eq!(support["stable"], "2");
    assert_eq!(support["canary"], "3");
    let versions = support["versions"].as_array().expect("versions");
    let named: Vec<&str> = versions
        .iter()
        .map(|v| v["version"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(named, ["2", "3", "1"]);
    for v in versions {
        let n: usize = v["version"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("a number");
        assert_eq!(v["commit"], commits[n - 1], "version {n}");
        let system = v["messages"][0]["content"]
            .as_str()
            .expect("system message");
        let own = if n == 1 {
            "You are".to_string()
        } else {
            format!("You (v{n}) are")
        };
        assert!(system.starts_with(&own), "version {n}: {system}");
        assert_eq!(v["model"]["name"], "gpt-4o-mini");
        assert_eq!(v["response_format"]["type"], "json_schema");
        assert_eq!(v["tools"].as_array().map(Vec::len), Some(2));
        assert!(
            v["fingerprint"].as_str().is_some_and(|f| f.len() >= 64),
            "{v}"
        );
    }
    assert_ne!(versions[0]["fingerprint"], versions[1]["fingerprint"]);

    // `resolve --format json` says why, for keys on both sides of the 50% share.
    let mut canary = std::collections::BTreeSet::new();
    for key in ["user-1", "user-2", "user-3", "user-4", "user-5", "user-6"] {
        let args = [
            "resolve",
            "support.refund",
            "--key",
            key,
            "--segment",
            "intent/refund",
        ];
        let (_, text, _) = repo.run(&args);
        let (code, out, err) = repo.run(&[&args[..], &["--format", "json"]].concat());
        assert_eq!(code, 0, "{err}");
        let why: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(why["version"], text.trim(), "{why}");
        assert_eq!(why["canary"], why["version"] == "3", "{why}");
        assert_eq!(
            (why["stable"].as_str(), why["stage"].as_str()),
            (Some("2"), Some("low-risk"))
        );
        assert_eq!(why["frozen"], false);
        let bucket = why["bucket"].as_u64().expect("a bucket");
        assert_eq!(bucket < 5_000, why["canary"] == true, "{why}");
        canary.insert(why["canary"].as_bool());
    }
    assert_eq!(canary.len(), 2, "keys on both sides");
}

/// A version the history does not have, or whose content there is not the content the
/// runtime config pins, is an error naming it; nothing is written.
#[test]
fn a_version_the_history_does_not_have_is_an_error_naming_it() {
    let (repo, _) = released();
    let runtime = repo.read("deploy/prompts.runtime.yaml");
    repo.write(
        "deploy/prompts.runtime.yaml",
        &runtime.replace("{version: 1}", "{version: 7}"),
    );
    let out = repo.path().join("bundle.json");
    let (code, _, err) = repo.run(&["bundle", "-o", out.to_str().expect("UTF-8")]);
    assert_ne!(code, 0);
    assert!(
        err.contains("support.refund") && err.contains("no version 7"),
        "{err}"
    );
    assert!(!out.exists());

    let pinned = runtime.replace(
        "{version: 2}",
        &format!("{{version: 2, fingerprint: {}}}", "ab".repeat(32)),
    );
    repo.write("deploy/prompts.runtime.yaml", &pinned);
    let (code, _, err) = repo.run(&["bundle", "-o", out.to_str().expect("UTF-8")]);
    assert_ne!(code, 0);
    assert!(
        err.contains("version 2") && err.contains(&"ab".repeat(32)),
        "{err}"
    );
    assert!(!out.exists());
}

/// The examples of docs/runtime.md, run as a reader would: each resolves the version
/// through OpenFeature and flagd and prints that version's bundled messages — the
/// version `promptgate resolve` answers, for keys on both sides of the share.
#[test]
fn the_examples_serve_the_bundled_version_flagd_resolves() {
    let (repo, _) = released();
    let bundle = repo.path().join("bundle.json");
    let flags = repo.path().join("flags.json");
    let path = |p: &Path| p.to_str().expect("UTF-8").to_string();
    assert_eq!(repo.run(&["bundle", "-o", &path(&bundle)]).0, 0);
    assert_eq!(
        repo.run(&["export", "--format", "flagd", "-o", &path(&flags)])
            .0,
        0
    );
    let mut examples = Vec::new();
    if let Some(p) = evaluator("python") {
        examples.push(("python", python(&p)));
    }
    if let Some(d) = evaluator("typescript") {
        examples.push(("typescript", typescript(&d)));
    }
    for (language, mut example) in examples {
        let mut served = std::collections::BTreeSet::new();
        for key in ["user-1", "user-2", "user-3", "user-4", "user-5", "user-6"] {
            let out = example
                .arg(&flags)
                .arg(&bundle)
                .args(["support.refund", key, "intent/refund"])
                .output()
                .expect("runs");
            // `Command` keeps its arguments: start again from the program.
            example = match language {
                "python" => python(&evaluator("python").expect("installed")),
                _ => typescript(&evaluator("typescript").expect("installed")),
            };
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "{language}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let version = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("version "))
                .and_then(|l| l.split_whitespace().next())
                .expect("a version line")
                .to_string();
            if language == "python" {
                let (_, resolved, _) = repo.run(&[
                    "resolve",
                    "support.refund",
                    "--key",
                    key,
                    "--segment",
                    "intent/refund",
                ]);
                assert_eq!(version, resolved.trim(), "{language} {key}");
            }
            let system = if version == "1" {
                "system: You are".to_string()
            } else {
                format!("system: You (v{version}) are")
            };
            assert!(text.contains(&system), "{language} {key}:\n{text}");
            served.insert(version);
        }
        assert_eq!(
            served.len(),
            2,
            "{language}: both sides of the share: {served:?}"
        );
    }
}
