//! The repository's workflows, its action and the workflow snippets in its docs hold to
//! the rules docs/SECURITY.md lists ("The repository's own workflows"): they parse, take
//! third-party actions and images pinned by digest, keep the checkout's credentials out
//! of `.git/config`, expand no `${{ }}` inside `run:`, grant nothing at the workflow
//! level beyond reading, and never run on `pull_request_target`. `bash .ci/run` also
//! runs zizmor over the YAML files; this test needs no Python and covers the markdown.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

/// The placeholder the docs use for this action, whose release users pin themselves.
const OWN_ACTION: &str = "acme/promptgate@<full commit SHA of a release>";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    files
}

/// Every ```yaml block of the markdown file that has steps or jobs, with the line it
/// starts on.
fn snippets(path: &Path) -> Vec<(usize, String)> {
    let text = read(path);
    let mut out = Vec::new();
    let mut block: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut block {
            None if line.trim_start().starts_with("```yaml") => {
                block = Some((i + 2, String::new()));
            }
            None => {}
            Some(_) if line.trim_start().starts_with("```") => {
                if let Some((at, body)) = block.take()
                    && (body.contains("steps:") || body.contains("jobs:"))
                {
                    out.push((at, body));
                }
            }
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    out
}

/// What is wrong with one workflow (or action) document; `name` says where it is.
fn problems(name: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let doc: Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => return vec![format!("{name}: not YAML: {e}")],
    };
    if let Some(on) = doc.get("on") {
        if serde_yaml::to_string(on)
            .unwrap_or_default()
            .contains("pull_request_target")
        {
            out.push(format!(
                "{name}: runs on pull_request_target, with secrets, on code a pull request controls"
            ));
        }
        match doc.get("permissions") {
            None => out.push(format!(
                "{name}: no workflow-level `permissions:` (the default token may write)"
            )),
            Some(Value::Mapping(m)) => {
                for (k, v) in m {
                    if v.as_str() != Some("read") && v.as_str() != Some("none") {
                        out.push(format!(
                            "{name}: workflow-level `{}: {}`: grant it to the job that needs it",
                            k.as_str().unwrap_or("?"),
                            v.as_str().unwrap_or("?")
                        ));
                    }
                }
            }
            Some(other) => out.push(format!(
                "{name}: workflow-level `permissions: {}`",
                serde_yaml::to_string(other).unwrap_or_default().trim()
            )),
        }
    }
    let mut steps = Vec::new();
    collect_steps(&doc, &mut steps);
    for step in steps {
        if let Some(uses) = step.get("uses").and_then(Value::as_str) {
            if let Some(problem) = unpinned(uses, text) {
                out.push(format!("{name}: `{uses}`: {problem}"));
            }
            if uses.starts_with("actions/checkout@")
                && step
                    .get("with")
                    .and_then(|w| w.get("persist-credentials"))
                    .and_then(Value::as_bool)
                    != Some(false)
            {
                out.push(format!(
                    "{name}: actions/checkout without `persist-credentials: false`"
                ));
            }
        }
        if let Some(run) = step.get("run").and_then(Value::as_str)
            && run.contains("${{")
        {
            out.push(format!(
                "{name}: `${{{{ }}}}` expanded inside `run:` (pass it through `env:`): {}",
                run.lines().find(|l| l.contains("${{")).unwrap_or("").trim()
            ));
        }
    }
    out
}

/// Every mapping in a `steps:` list, at any depth (jobs, composite actions).
fn collect_steps<'v>(v: &'v Value, out: &mut Vec<&'v Value>) {
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                if k.as_str() == Some("steps")
                    && let Value::Sequence(steps) = child
                {
                    out.extend(steps.iter().filter(|s| s.is_mapping()));
                }
                collect_steps(child, out);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|i| collect_steps(i, out)),
        _ => {}
    }
}

/// Why a `uses:` is not pinned, if it is not: local actions are this commit's; images
/// need a digest; actions a full commit SHA with the release in a `# v…` comment.
fn unpinned(uses: &str, text: &str) -> Option<&'static str> {
    if uses.starts_with("./") {
        return None;
    }
    if let Some(image) = uses.strip_prefix("docker://") {
        return (!image.contains("@sha256:")).then_some("an image not pinned by digest");
    }
    if uses == OWN_ACTION {
        return None;
    }
    let Some((_, reference)) = uses.split_once('@') else {
        return Some("no version at all");
    };
    if reference.len() != 40 || !reference.chars().all(|c| c.is_ascii_hexdigit()) {
        return Some("not pinned by full commit SHA");
    }
    let commented = text
        .lines()
        .filter(|l| l.contains(uses))
        .all(|l| l.split_once(" # ").is_some_and(|(_, c)| c.starts_with('v')));
    (!commented).then_some("no `# vX.Y.Z` comment saying which release the SHA is")
}

#[test]
fn workflows_actions_and_snippets_follow_the_rules() {
    let mut all = Vec::new();
    let mut checked = 0;
    let mut files = yaml_files(".github/workflows");
    files.extend(yaml_files("docs/examples"));
    files.push(root().join("action.yml"));
    let relative = |path: &Path| {
        let path = path.strip_prefix(root()).unwrap_or(path);
        path.display().to_string()
    };
    for path in &files {
        all.extend(problems(&relative(path), &read(path)));
        checked += 1;
    }
    let mut docs = vec![root().join("README.md")];
    docs.extend(
        std::fs::read_dir(root().join("docs"))
            .expect("docs")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "md")),
    );
    for path in &docs {
        let file = relative(path);
        for (line, text) in snippets(path) {
            all.extend(problems(&format!("{file}:{line}"), &text));
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} documents found");
    assert!(all.is_empty(), "{}", all.join("\n"));
}

#[test]
fn the_action_runs_the_container_and_its_images_are_pinned() {
    let action: Value = serde_yaml::from_str(&read(&root().join("action.yml"))).expect("YAML");
    assert_eq!(action["runs"]["using"].as_str(), Some("docker"));
    assert_eq!(action["runs"]["image"].as_str(), Some("Dockerfile"));
    assert!(
        action["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    let dockerfile = read(&root().join("Dockerfile"));
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.trim_start().starts_with("FROM "))
        // `scratch` is no image, only the empty start of one.
        .filter(|l| !l.trim_start().starts_with("FROM scratch "))
        .collect();
    assert!(!froms.is_empty());
    for from in froms {
        assert!(from.contains("@sha256:"), "not pinned by digest: {from}");
    }
}

/// The one image reference three files must agree on: `main`'s action.yml builds the
/// Dockerfile (what `uses: ./` runs, as the demo workflow does); the release workflow
/// builds and pushes that same Dockerfile for both platforms, attests the image it
/// pushed, and pins action.yml to that image's digest with `scripts/pin-action-image.sh`,
/// whose output is an action.yml whose only change is `runs.image`.
#[test]
fn the_action_the_release_and_the_demo_agree_on_the_image() {
    let action_text = read(&root().join("action.yml"));
    let action: Value = serde_yaml::from_str(&action_text).expect("YAML");
    let dockerfile = action["runs"]["image"].as_str().expect("runs.image");
    assert!(root().join(dockerfile).is_file(), "{dockerfile}");

    let demo: Value =
        serde_yaml::from_str(&read(&root().join(".github/workflows/promptgate-demo.yml")))
            .expect("YAML");
    let mut steps = Vec::new();
    collect_steps(&demo, &mut steps);
    assert!(
        steps.iter().any(|s| s["uses"].as_str() == Some("./")),
        "the demo workflow runs this commit's action"
    );

    let release_text = read(&root().join(".github/workflows/release.yml"));
    let release: Value = serde_yaml::from_str(&release_text).expect("YAML");
    let mut steps = Vec::new();
    collect_steps(&release, &mut steps);
    let uses = |s: &&Value, action: &str| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with(&format!("{action}@")))
    };
    let builds: Vec<&Value> = steps
        .iter()
        .filter(|s| uses(s, "docker/build-push-action"))
        .copied()
        .collect();
    assert_eq!(builds.len(), 2, "the image, then the binaries");
    for build in &builds {
        assert_eq!(build["with"]["file"].as_str(), Some(dockerfile));
        assert_eq!(
            build["with"]["platforms"].as_str(),
            Some("linux/amd64,linux/arm64")
        );
    }
    let image = builds[0];
    assert_eq!(image["with"]["push"].as_bool(), Some(true));
    let pushed = image["with"]["tags"].as_str().expect("tags");
    let name = "${{ steps.name.outputs.image }}";
    assert!(pushed.starts_with(&format!("{name}:")), "{pushed}");
    let id = image["id"].as_str().expect("the image step's id");
    let digest = format!("${{{{ steps.{id}.outputs.digest }}}}");
    let attested = steps
        .iter()
        .find(|s| {
            uses(s, "actions/attest-build-provenance") && !s["with"]["subject-name"].is_null()
        })
        .expect("the image's attestation");
    assert_eq!(attested["with"]["subject-name"].as_str(), Some(name));
    assert_eq!(
        attested["with"]["subject-digest"].as_str(),
        Some(digest.as_str())
    );
    let pin = steps
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("scripts/pin-action-image.sh \"$IMAGE\" \"$DIGEST\""))
        })
        .expect("the step that pins action.yml");
    assert_eq!(pin["env"]["IMAGE"].as_str(), Some(name));
    assert_eq!(pin["env"]["DIGEST"].as_str(), Some(digest.as_str()));
    let binaries = builds[1];
    assert_eq!(binaries["with"]["target"].as_str(), Some("binary"));
    assert!(
        read(&root().join(dockerfile)).contains("AS binary\n"),
        "the Dockerfile has the stage the release exports binaries from"
    );

    // What the pin step leaves: the same action, running the image by digest.
    let dir = std::env::temp_dir().join(format!("promptgate-pin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let copy = dir.join("action.yml");
    std::fs::write(&copy, &action_text).expect("copy");
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    let run = |file: &Path| {
        std::process::Command::new("bash")
            .arg(root().join("scripts/pin-action-image.sh"))
            .args(["ghcr.io/acme/promptgate", &digest])
            .arg(file)
            .output()
            .expect("bash")
    };
    assert!(run(&copy).status.success());
    let pinned: Value = serde_yaml::from_str(&read(&copy)).expect("YAML");
    let reference = format!("docker://ghcr.io/acme/promptgate@{digest}");
    assert_eq!(pinned["runs"]["image"].as_str(), Some(reference.as_str()));
    assert_eq!(unpinned(&reference, &reference), None);
    let mut unchanged = pinned.clone();
    unchanged["runs"]["image"] = Value::from(dockerfile);
    assert_eq!(unchanged, action);
    // Pinning twice is refused, and leaves the file as it was.
    let again = run(&copy);
    assert!(!again.status.success());
    assert_eq!(read(&copy).matches("image: docker://").count(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_rules_catch_what_they_are_for() {
    let bad = r#"
on: pull_request_target
permissions: {contents: write}
jobs:
  j:
    steps:
      - uses: actions/checkout@v4
      - uses: someone/action@0123456789abcdef0123456789abcdef01234567
      - uses: docker://alpine:3
      - run: echo "${{ github.event.pull_request.title }}"
"#;
    let found = problems("bad.yml", bad).join("\n");
    for expected in [
        "pull_request_target",
        "workflow-level `contents: write`",
        "not pinned by full commit SHA",
        "without `persist-credentials: false`",
        "no `# vX.Y.Z` comment",
        "an image not pinned by digest",
        "inside `run:`",
    ] {
        assert!(found.contains(expected), "missed {expected}:\n{found}");
    }
    // The YAML error that made action.yml unreadable: `: ` in a plain scalar.
    assert!(problems("a.yml", "description: Gate prompts: evaluate\n")[0].contains("not YAML"));
    let good = r#"
on: pull_request
permissions: {}
jobs:
  j:
    permissions: {contents: read}
    steps:
      - uses: actions/checkout@1af3b93b6815bc44a9784bd300feb67ff0d1eeb3 # v6.0.0
        with: {persist-credentials: false}
      - run: echo "$TITLE"
        env: {TITLE: "${{ github.event.pull_request.title }}"}
"#;
    assert_eq!(problems("good.yml", good), Vec::<String>::new());
}

/// The README's `.promptgate.yaml` says "a missing file means the defaults shown": the
/// approvals it shows are the ones a repository without the section gets.
#[test]
fn the_readme_shows_the_real_approval_defaults() {
    let readme = read(&root().join("README.md"));
    let start = readme
        .find("### `.promptgate.yaml`")
        .and_then(|at| readme[at..].find("```yaml\n").map(|i| at + i + 8))
        .expect("the config block");
    let end = start + readme[start..].find("```").expect("its end");
    let shown: Value = serde_yaml::from_str(&readme[start..end]).expect("YAML");
    let defaults =
        serde_yaml::to_value(promptgate::config::ApprovalsConfig::default()).expect("serializes");
    assert_eq!(shown["approvals"], defaults);
}
