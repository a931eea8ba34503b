//! Property tests for the loaders: whatever a user's file holds, reading it as an
//! artifact, a suite, a cases file or the config never panics, and every problem it
//! gives is located inside the file it names. A suite written from cases reads back as
//! those cases, in YAML and in JSON lines. (The YAML reader's own properties are in
//! `src/format/yaml.rs`, the report escaping's in `src/report/escape.rs`.)

use std::collections::BTreeMap;

use promptgate::artifact;
use promptgate::artifact::suite;
use promptgate::config::Config;
use promptgate::diag::{Diagnostic, Diagnostics};
use promptgate::repo::Snapshot;
use promptgate::source::mem::MemTree;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Whether `line:col` points into `bytes` (read as text): a line of it, and a column up
/// to one past that line's end.
fn inside(bytes: &[u8], line: usize, col: usize) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    line >= 1
        && col >= 1
        && text
            .split('\n')
            .nth(line - 1)
            .is_some_and(|l| col <= l.chars().count() + 1)
}

/// Every problem names one of `files` and a place inside it.
fn located(files: &[(&str, &[u8])], problems: &[Diagnostic]) -> Result<(), TestCaseError> {
    for d in problems {
        let Some((_, bytes)) = files.iter().find(|(path, _)| *path == d.file) else {
            return Err(TestCaseError::fail(format!("names another file: {d}")));
        };
        prop_assert!(!d.message.is_empty(), "no message: {d:?}");
        prop_assert!(
            inside(bytes, d.line, d.col),
            "{d} is outside {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    Ok(())
}

fn all(result: Result<artifact::Artifact, Diagnostics>) -> Vec<Diagnostic> {
    match result {
        Ok(a) => a.problems.0,
        Err(d) => d.0,
    }
}

/// Keys the formats know, so that generated files get past the syntax into the shape
/// checks, with values of any type.
const KEYS: [&str; 24] = [
    "id",
    "version",
    "model",
    "provider",
    "name",
    "temperature",
    "messages",
    "role",
    "content",
    "tools",
    "definitions",
    "evals",
    "response_format",
    "json_schema",
    "cases",
    "cases_file",
    "segments",
    "vars",
    "assert",
    "type",
    "value",
    "defaults",
    "gate",
    "providers",
];

/// A JSON value made of the formats' keys and any scalars; JSON text is YAML too.
fn structured() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        Just(json!("{{ question }}")),
        Just(json!("{% if %}")),
        Just(json!("../../outside.json")),
        Just(json!("contains")),
        Just(json!("openai")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(KEYS.to_vec()).prop_map(String::from),
                    "[a-z]{1,6}"
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Text a user might have written: structured JSON, YAML-looking lines, or any bytes.
fn file_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        structured().prop_map(|v| v.to_string().into_bytes()),
        structured().prop_map(|v| serde_json::to_string_pretty(&v)
            .unwrap_or_default()
            .into_bytes()),
        prop::collection::vec(
            prop_oneof![
                Just("id: a".to_string()),
                Just("version: 1".to_string()),
                Just("model: {provider: openai, name: m}".to_string()),
                Just("messages: [{role: user, content: '{{ q }}'}]".to_string()),
                Just("cases:\n  - {id: c, vars: {q: x}}".to_string()),
                Just("cases_file: c.jsonl".to_string()),
                Just("evals: [a.eval.yaml]".to_string()),
                Just("  - &x [*x]".to_string()),
                "[a-z_]{1,8}: \\PC{0,16}",
            ],
            0..8,
        )
        .prop_map(|lines| lines.join("\n").into_bytes()),
        prop::collection::vec(any::<u8>(), 0..120),
    ]
}

proptest! {
    // Failures are shown, not saved: an integration test has no source file for them.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn artifacts_load_or_say_where(bytes in file_bytes()) {
        for path in ["prompts/a.prompt.yaml", "prompts/a.prompt.yml"] {
            let tree = MemTree::new().with(path, bytes.clone());
            let problems = all(artifact::load(&tree, path, &Config::default()));
            located(&[(path, &bytes)], &problems)?;
        }
    }

    #[test]
    fn suites_load_or_say_where(bytes in file_bytes()) {
        let path = "evals/a.eval.yaml";
        let tree = MemTree::new().with(path, bytes.clone());
        let (_, problems) = suite::load(&tree, path);
        located(&[(path, &bytes)], &problems.0)?;
    }

    #[test]
    fn cases_files_load_or_say_where(
        lines in prop::collection::vec(prop_oneof![
            structured().prop_map(|v| v.to_string().into_bytes()),
            prop::collection::vec(any::<u8>(), 0..40),
        ], 0..6)
    ) {
        let suite_text = b"cases_file: a.cases.jsonl\n".to_vec();
        let cases = lines.join(&b'\n');
        let tree = MemTree::new()
            .with("evals/a.eval.yaml", suite_text.clone())
            .with("evals/a.cases.jsonl", cases.clone());
        let (_, problems) = suite::load(&tree, "evals/a.eval.yaml");
        located(
            &[("evals/a.eval.yaml", &suite_text), ("evals/a.cases.jsonl", &cases)],
            &problems.0,
        )?;
    }

    #[test]
    fn the_config_loads_or_says_where(bytes in file_bytes()) {
        let tree = MemTree::new().with(".promptgate.yaml", bytes.clone());
        let snapshot = Snapshot::open(&tree, None);
        located(&[(".promptgate.yaml", &bytes)], &snapshot.config_problems.0)?;
    }

    /// Cases written out as a YAML suite and as JSON lines read back as themselves.
    #[test]
    fn a_written_suite_reads_back_as_its_cases(cases in prop::collection::btree_map(
        "c-[a-z0-9-]{0,10}",
        (
            prop::collection::vec("s-[a-z]{1,6}(/[a-z-]{1,6})?", 0..3),
            prop::collection::btree_map("[a-z_][a-z0-9_]{0,7}", "\\PC{0,20}", 0..4),
        ),
        1..8,
    )) {
        let mut yaml = String::from("cases:\n");
        let mut jsonl = String::new();
        for (id, (segments, vars)) in &cases {
            yaml.push_str(&format!("  - id: {id}\n"));
            if !segments.is_empty() {
                yaml.push_str(&format!("    segments: [{}]\n", segments.join(", ")));
            }
            if !vars.is_empty() {
                yaml.push_str("    vars:\n");
            }
            for (k, v) in vars {
                // Single quotes keep any text on one line as it is; `'` is written `''`.
                yaml.push_str(&format!("      {k}: '{}'\n", v.replace('\'', "''")));
            }
            jsonl.push_str(&json!({"id": id, "segments": segments, "vars": vars}).to_string());
            jsonl.push('\n');
        }
        let want: Vec<(String, Vec<String>, BTreeMap<String, Value>)> = cases
            .iter()
            .map(|(id, (segments, vars))| {
                let segments = if segments.is_empty() {
                    vec![suite::DEFAULT_SEGMENT.to_string()]
                } else {
                    segments.clone()
                };
                let vars = vars.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                (id.clone(), segments, vars)
            })
            .collect();

        let tree = MemTree::new().with("a.eval.yaml", yaml.clone());
        let (set, problems) = suite::load(&tree, "a.eval.yaml");
        prop_assert!(problems.is_empty(), "{problems}\n{yaml}");
        let got: Vec<_> = set
            .cases
            .iter()
            .map(|c| (c.id.clone(), c.segments.clone(), c.vars.clone()))
            .collect();
        prop_assert_eq!(&got, &want, "{}", yaml);

        let (specs, problems) = suite::parse_jsonl("a.cases.jsonl", &jsonl);
        prop_assert!(problems.is_empty(), "{problems}\n{jsonl}");
        let got: Vec<_> = specs
            .into_iter()
            .map(|(c, _)| (c.id, c.segments, c.vars))
            .collect();
        let want_jsonl: Vec<_> = cases
            .iter()
            .map(|(id, (segments, vars))| {
                let vars = vars.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                (id.clone(), segments.clone(), vars)
            })
            .collect::<Vec<(String, Vec<String>, BTreeMap<String, Value>)>>();
        prop_assert_eq!(got, want_jsonl);
    }
}

#[test]
fn the_location_check_catches_what_it_looks_for() {
    let d = |line, col| Diagnostic::new("a.yaml", promptgate::diag::Pos::new(line, col), "x");
    let text: &[u8] = b"ab\ncd";
    assert!(located(&[("a.yaml", text)], &[d(1, 3), d(2, 1), d(2, 3)]).is_ok());
    for bad in [d(0, 1), d(1, 4), d(3, 1), d(2, 4)] {
        assert!(
            located(&[("a.yaml", text)], std::slice::from_ref(&bad)).is_err(),
            "{bad}"
        );
    }
    let other = Diagnostic::new("b.yaml", promptgate::diag::Pos::START, "x");
    assert!(located(&[("a.yaml", text)], &[other]).is_err());
}
