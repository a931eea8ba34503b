//! `promptgate learn`: production failures become regression cases.
//!
//! An incidents file (JSON Lines, one failure a line; the format is in `docs/learn.md`)
//! is read into [`Incident`]s. Each becomes the case whose assertion catches its kind,
//! in segment `regression/<kind>`, with an id derived from a hash of what defines it
//! (kind, variables, tool results, expectation), so the same failure reported twice is
//! one case. New cases are appended to a cases file through [`store::update`]; a case
//! whose id the file already holds is skipped.
//!
//! [`run`] reads and writes the files; everything else here is pure.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::Context;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::artifact::assertion::AssertionSpec;
use crate::artifact::fingerprint::canonical_digest;
use crate::artifact::suite::{self, CaseSpec, ToolResultSpec};
use crate::diag::{Diagnostic, Diagnostics, Pos, Severity};
use crate::env::Env;
use crate::format;
use crate::repo::Snapshot;
use crate::source::fs::WorkTree;
use crate::source::mem::Overlay;
use crate::store;
use crate::validate;

/// Hex digits of the content hash in a learned case's id.
const ID_HEX: usize = 10;

/// Characters of the model's answer quoted in a case's description.
const OUTPUT_EXCERPT: usize = 200;

/// What went wrong in production, as written in an incident's `kind`.
// No doc comments on the variants: schemars would then describe the field as a `oneOf`
// of constants, and a typo would lose its "did you mean".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    // The model refused a request it should have answered.
    UnexpectedRefusal,
    // The model called the wrong tools, or the right ones in the wrong order.
    WrongToolSequence,
    // The model's JSON answer had a key it must not have.
    HallucinatedField,
    // The model's answer was too long.
    ExcessiveVerbosity,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::UnexpectedRefusal => "unexpected-refusal",
            Kind::WrongToolSequence => "wrong-tool-sequence",
            Kind::HallucinatedField => "hallucinated-field",
            Kind::ExcessiveVerbosity => "excessive-verbosity",
        }
    }

    /// The segment its cases go to.
    pub fn segment(self) -> String {
        format!("regression/{}", self.as_str())
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of an incidents file, as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentSpec {
    /// What went wrong.
    pub kind: Kind,
    /// The template variables of the request that failed.
    pub vars: BTreeMap<String, Value>,
    /// Canned answers for the tools the request called, as a case's `tool_results`.
    #[serde(default)]
    pub tool_results: BTreeMap<String, ToolResultSpec>,
    /// `wrong-tool-sequence`: the tools the answer should have called, in order.
    pub expected_tools: Option<Vec<String>>,
    /// `hallucinated-field`: the keys the JSON answer may have.
    pub allowed_keys: Option<Vec<String>>,
    /// `excessive-verbosity`: the most words the answer should have had.
    pub max_words: Option<u64>,
    /// Id of the artifact that failed, for the description.
    pub artifact: Option<String>,
    /// What the model answered, for the description.
    pub output: Option<String>,
    /// The incident's id where it was recorded (not the case id), for the description.
    pub id: Option<String>,
    /// The support or bug ticket, for the description.
    pub ticket: Option<String>,
    /// What happened, in words, for the description.
    pub note: Option<String>,
}

fn incident_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(format::schema_of::<IncidentSpec>)
}

/// What the answer should have done: the assertion that catches the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// `not-refusal`.
    NotRefusal,
    /// `tool-sequence` with these tools, in order.
    ToolSequence(Vec<String>),
    /// `json-keys` with these keys, sorted, each once.
    JsonKeys(Vec<String>),
    /// `max-words` with this limit.
    MaxWords(u64),
}

impl Expect {
    pub fn kind(&self) -> Kind {
        match self {
            Expect::NotRefusal => Kind::UnexpectedRefusal,
            Expect::ToolSequence(_) => Kind::WrongToolSequence,
            Expect::JsonKeys(_) => Kind::HallucinatedField,
            Expect::MaxWords(_) => Kind::ExcessiveVerbosity,
        }
    }

    /// The assertion's `type` and `value` as a case writes them.
    fn type_and_value(&self) -> (&'static str, Option<Value>) {
        match self {
            Expect::NotRefusal => ("not-refusal", None),
            Expect::ToolSequence(tools) => ("tool-sequence", Some(json!(tools))),
            Expect::JsonKeys(keys) => ("json-keys", Some(json!(keys))),
            Expect::MaxWords(limit) => ("max-words", Some(json!(limit))),
        }
    }

    pub fn assertion(&self) -> AssertionSpec {
        let (kind, value) = self.type_and_value();
        AssertionSpec {
            kind: kind.to_string(),
            value,
            path: None,
            tool: None,
            weight: None,
        }
    }
}

/// An incident that passed its checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Line of the incidents file it was read from.
    pub line: usize,
    pub expect: Expect,
    pub vars: BTreeMap<String, Value>,
    pub tool_results: BTreeMap<String, ToolResultSpec>,
    pub artifact: Option<String>,
    pub output: Option<String>,
    pub incident_id: Option<String>,
    pub ticket: Option<String>,
    pub note: Option<String>,
}

impl Incident {
    /// Check what the kind needs; every problem is one line for the user.
    pub fn check(spec: IncidentSpec, line: usize) -> Result<Incident, Vec<String>> {
        let kind = spec.kind;
        let mut problems = Vec::new();
        let fields = [
            (
                "expected_tools",
                Kind::WrongToolSequence,
                spec.expected_tools.is_some(),
            ),
            (
                "allowed_keys",
                Kind::HallucinatedField,
                spec.allowed_keys.is_some(),
            ),
            (
                "max_words",
                Kind::ExcessiveVerbosity,
                spec.max_words.is_some(),
            ),
        ];
        for (field, owner, given) in fields {
            if given && owner != kind {
                problems.push(format!("`{field}` is only for `{owner}`, not `{kind}`"));
            }
        }
        let missing = |field: &str, what: &str| format!("`{kind}` needs `{field}`, {what}");
        let expect = match kind {
            Kind::UnexpectedRefusal => Some(Expect::NotRefusal),
            Kind::WrongToolSequence => match spec.expected_tools {
                Some(tools) => Some(Expect::ToolSequence(tools)),
                None => {
                    problems.push(missing(
                        "expected_tools",
                        "the tools the answer should have called, in order",
                    ));
                    None
                }
            },
            Kind::HallucinatedField => match spec.allowed_keys {
                Some(mut keys) => {
                    keys.sort();
                    keys.dedup();
                    Some(Expect::JsonKeys(keys))
                }
                None => {
                    problems.push(missing("allowed_keys", "the keys the JSON answer may have"));
                    None
                }
            },
            Kind::ExcessiveVerbosity => match spec.max_words {
                Some(0) => {
                    problems.push("`max_words` must be at least 1, found 0".into());
                    None
                }
                Some(limit) => Some(Expect::MaxWords(limit)),
                None => {
                    problems.push(missing(
                        "max_words",
                        "the most words the answer should have had",
                    ));
                    None
                }
            },
        };
        for (tool, result) in &spec.tool_results {
            if result.content.is_some() == result.error.is_some() {
                problems.push(format!(
                    "tool result `{tool}` needs exactly one of `content` or `error`"
                ));
            }
        }
        match expect {
            Some(expect) if problems.is_empty() => Ok(Incident {
                line,
                expect,
                vars: spec.vars,
                tool_results: spec.tool_results,
                artifact: spec.artifact,
                output: spec.output,
                incident_id: spec.id,
                ticket: spec.ticket,
                note: spec.note,
            }),
            _ => Err(problems),
        }
    }

    pub fn kind(&self) -> Kind {
        self.expect.kind()
    }

    /// Hex SHA-256 over the canonical JSON (keys sorted at every level) of what defines
    /// the case: `{"kind", "vars", "tool_results", "assert": {"type", "value"}}`. Where
    /// it was reported, the answer and the notes are not part of it.
    pub fn digest(&self) -> String {
        let (kind, value) = self.expect.type_and_value();
        let tool_results: serde_json::Map<String, Value> = self
            .tool_results
            .iter()
            .map(|(tool, result)| {
                let answer = match (&result.content, &result.error) {
                    (Some(content), _) => json!({"content": content}),
                    (None, error) => json!({"error": error}),
                };
                (tool.clone(), answer)
            })
            .collect();
        canonical_digest(&json!({
            "kind": self.kind().as_str(),
            "vars": self.vars,
            "tool_results": tool_results,
            "assert": {"type": kind, "value": value},
        }))
    }

    /// `regression-<kind>-<first 10 hex digits of the digest>`.
    pub fn case_id(&self) -> String {
        let digest = self.digest();
        format!("regression-{}-{}", self.kind(), &digest[..ID_HEX])
    }

    /// One line saying where the case comes from, for people reading the report.
    pub fn description(&self) -> String {
        let mut text = format!("{} in production", self.kind());
        if let Some(artifact) = &self.artifact {
            text.push_str(&format!(" on {artifact}"));
        }
        let refs: Vec<String> = [
            self.incident_id.clone(),
            self.ticket.as_ref().map(|t| format!("ticket {t}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !refs.is_empty() {
            text.push_str(&format!(" ({})", refs.join(", ")));
        }
        if let Some(note) = &self.note {
            text.push_str(&format!(": {}", one_line(note)));
        }
        if let Some(output) = &self.output {
            let output = one_line(output);
            let mut excerpt: String = output.chars().take(OUTPUT_EXCERPT).collect();
            if excerpt.len() < output.len() {
                excerpt.push('…');
            }
            text.push_str(&format!("; answered: \"{excerpt}\""));
        }
        text
    }

    /// The regression case, in the model cases files are read with.
    pub fn case(&self) -> CaseSpec {
        CaseSpec {
            id: self.case_id(),
            description: Some(self.description()),
            segments: vec![self.kind().segment()],
            vars: self.vars.clone(),
            tool_results: self.tool_results.clone(),
            assert: vec![self.expect.assertion()],
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Read an incidents file: one incident a line, blank lines skipped. Bad lines are
/// reported as `path:line:col: message`; good lines are kept.
pub fn parse_incidents(path: &str, text: &str) -> (Vec<Incident>, Diagnostics) {
    let mut problems = Diagnostics::default();
    let mut incidents = Vec::new();
    for (line_no, node) in suite::json_lines(text, "one incident") {
        let pos = Pos::new(line_no, 1);
        let node = match node {
            Ok(node) => node,
            Err((pos, message)) => {
                problems.push(path, pos, message);
                continue;
            }
        };
        let spec = match format::typed::<IncidentSpec>(path, &node, incident_schema()) {
            Ok(spec) => spec,
            Err(d) => {
                problems.extend(d);
                continue;
            }
        };
        match Incident::check(spec, line_no) {
            Ok(incident) => incidents.push(incident),
            Err(messages) => {
                for message in messages {
                    problems.push(path, pos, message);
                }
            }
        }
    }
    (incidents, problems)
}

/// Where the case an incident would add already is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// In the cases file, at this line.
    CasesFile(usize),
    /// Made from an earlier incident of the same file, at this line.
    Incident(usize),
}

/// A case an incident added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// Line of the incident.
    pub line: usize,
    pub id: String,
}

/// An incident whose case was there already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Line of the incident.
    pub line: usize,
    pub id: String,
    pub first: Origin,
}

/// The cases file with the incidents' new cases appended.
#[derive(Debug, Clone, PartialEq)]
pub struct Merge {
    pub added: Vec<Added>,
    pub skipped: Vec<Skipped>,
    /// The new content of the cases file; `None` when no case is new.
    pub content: Option<String>,
    /// Problems of the lines the cases file already had.
    pub problems: Diagnostics,
}

/// Append the cases of `incidents` that `current` (the cases file at `path`, if it
/// exists) does not hold yet, each once. The result is checked as a cases file: a
/// problem in an appended line is an error here (nothing may be written), problems in
/// the lines already there are returned.
pub fn merge(path: &str, current: Option<&str>, incidents: &[Incident]) -> anyhow::Result<Merge> {
    let current = current.unwrap_or("");
    let mut seen: HashMap<String, Origin> = existing_ids(current)
        .into_iter()
        .map(|(id, line)| (id, Origin::CasesFile(line)))
        .collect();
    let mut added = Vec::new();
    let mut skipped = Vec::new();
    let mut lines = Vec::new();
    for incident in incidents {
        let case = incident.case();
        if let Some(&first) = seen.get(&case.id) {
            skipped.push(Skipped {
                line: incident.line,
                id: case.id,
                first,
            });
            continue;
        }
        seen.insert(case.id.clone(), Origin::Incident(incident.line));
        lines.push(serde_json::to_string(&case).context("cannot write a case as JSON")?);
        added.push(Added {
            line: incident.line,
            id: case.id,
        });
    }
    let mut content = current.to_string();
    if !content.is_empty() && !content.ends_with('\n') {
        content.push('\n');
    }
    let first_new = content.lines().count() + 1;
    for line in &lines {
        content.push_str(line);
        content.push('\n');
    }
    let (_, all) = suite::parse_jsonl(path, &content);
    let (problems, ours): (Vec<_>, Vec<_>) = all.0.into_iter().partition(|d| d.line < first_new);
    if !ours.is_empty() {
        anyhow::bail!(
            "the cases made from the incidents would not read back as cases:\n{}",
            Diagnostics(ours)
        );
    }
    Ok(Merge {
        content: (!added.is_empty()).then_some(content),
        added,
        skipped,
        problems: Diagnostics(problems),
    })
}

/// The case ids in a cases file, with the line of each one's first appearance. Read
/// leniently: a line that is JSON with an `id` counts even when it is otherwise wrong.
fn existing_ids(text: &str) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(id) = value.get("id").and_then(Value::as_str) {
            ids.entry(id.to_string()).or_insert(i + 1);
        }
    }
    ids
}

/// What the audit log says was changed.
pub fn audit_what(from: &str, merge: &Merge) -> String {
    let ids: Vec<&str> = merge.added.iter().map(|a| a.id.as_str()).collect();
    format!(
        "added {} regression case(s) from {from}: {}",
        ids.len(),
        ids.join(", ")
    )
}

/// The report on stdout: one line per incident read, then the totals.
pub fn summary(from: &str, into: &str, merge: &Merge, bad_lines: usize) -> String {
    let mut rows: Vec<(usize, String)> = merge
        .added
        .iter()
        .map(|a| (a.line, format!("added   {} ({from}:{})", a.id, a.line)))
        .collect();
    rows.extend(merge.skipped.iter().map(|s| {
        let first = match s.first {
            Origin::CasesFile(line) => format!("already in {into}:{line}"),
            Origin::Incident(line) => format!("duplicate of {from}:{line}"),
        };
        (
            s.line,
            format!("skipped {} ({from}:{}): {first}", s.id, s.line),
        )
    }));
    rows.sort_by_key(|(line, _)| *line);
    let mut out = String::new();
    for (_, row) in rows {
        out.push_str(&row);
        out.push('\n');
    }
    out.push_str(&format!(
        "{into}: {} case(s) added, {} duplicate(s) skipped, {} bad line(s) in {from}\n",
        merge.added.len(),
        merge.skipped.len(),
        bad_lines
    ));
    out
}

/// `promptgate learn --from FROM --into INTO [--reason WHY]`: read the incidents, append
/// their new cases to INTO under its lock (the old file kept as `INTO.prev`, one line in
/// the audit log), and report. Bad incident lines are reported and the good ones still
/// taken, and the problems come back with the summary. An incidents file that cannot be
/// read as text is an error, located, and nothing is written.
pub fn run(
    repo: &Repository,
    from: &Path,
    into: &Path,
    reason: Option<&str>,
    env: &Env,
) -> anyhow::Result<Learned> {
    let from_name = from.display().to_string();
    let into_name = into.display().to_string();
    let text = format::file_text(from, crate::read::MAX_FILE_BYTES)?;
    let (incidents, mut problems) = parse_incidents(&from_name, &text);
    let bad_lines = {
        let mut lines: Vec<usize> = problems.0.iter().map(|d| d.line).collect();
        lines.dedup();
        lines.len()
    };
    let why = reason.map_or_else(
        || format!("promptgate learn --from {from_name}"),
        str::to_string,
    );
    let actor = store::Actor::new(env, &why);
    let mut outcome = None;
    store::update(into, &store::audit_path(into), &actor, |current| {
        let mut merged = merge(&into_name, current, &incidents)?;
        if let Some(content) = &merged.content {
            let brought = problems_brought(repo, into, content)?;
            if !brought.is_empty() {
                return Err(brought.into());
            }
        }
        let change = merged.content.take().map(|content| store::Change {
            content,
            what: audit_what(&from_name, &merged),
        });
        outcome = Some(merged);
        Ok(change)
    })
    .with_context(|| format!("cannot update {into_name}"))?;
    let merged = outcome.context("the cases file was not read")?;
    problems.extend(merged.problems.clone());
    Ok(Learned {
        summary: summary(&from_name, &into_name, &merged, bad_lines),
        problems,
    })
}

/// The repository `learn` writes into, to check the cases against before writing.
#[derive(Debug, Clone, Copy)]
pub struct Repository<'a> {
    pub root: &'a Path,
    /// `--config`, else `.promptgate.yaml`.
    pub config: Option<&'a str>,
}

/// The problems the cases file `into` holding `content` would bring into the
/// repository: the errors `promptgate validate` would find then and does not find now
/// (a variable the prompt needs and the case lacks, a tool the artifact does not
/// define, …), and no suite of an artifact reading the file. Each names its file and
/// place; a last line says nothing was written.
pub fn problems_brought(
    repo: &Repository,
    into: &Path,
    content: &str,
) -> anyhow::Result<Diagnostics> {
    let into_name = into.display().to_string();
    let mut brought = Diagnostics::default();
    let tree = WorkTree::new(repo.root)?;
    let errors = |snapshot: &Snapshot| -> anyhow::Result<Vec<Diagnostic>> {
        Ok(validate::validate(snapshot)?
            .problems
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect())
    };
    match repo_path(repo.root, into) {
        None => brought.push(
            &into_name,
            Pos::START,
            format!(
                "is not in the repository ({}): no suite reads it, so its cases would never run",
                repo.root.display()
            ),
        ),
        Some(path) => {
            let after_tree = Overlay::new(&tree, &path, content);
            let after = Snapshot::open(&after_tree, repo.config);
            let now = errors(&after)?;
            if !now.is_empty() {
                let before = errors(&Snapshot::open(&tree, repo.config))?;
                brought
                    .0
                    .extend(now.into_iter().filter(|d| !before.contains(d)));
            }
            let read = after.artifact_paths()?.iter().any(|p| {
                after
                    .load_artifact(p)
                    .is_ok_and(|a| after.eval_set(&a).0.files.contains(&path))
            });
            if !read {
                brought.push(
                    &path,
                    Pos::START,
                    "no suite of an artifact reads this file (as its `cases_file`), so its cases would never run: learn into the cases file of the suite the artifact names in `evals`",
                );
            }
        }
    }
    if !brought.is_empty() {
        brought.push(
            &into_name,
            Pos::START,
            "nothing written: the cases learned would bring the problems above into the repository (see `promptgate validate`)",
        );
    }
    Ok(brought)
}

/// `file` as a path of the repository at `root` (`/`-separated), if it is in it. The
/// file itself need not exist yet; its directory must.
fn repo_path(root: &Path, file: &Path) -> Option<String> {
    let root = root.canonicalize().ok()?;
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.canonicalize().ok()?,
        _ => std::env::current_dir().ok()?.canonicalize().ok()?,
    };
    let full = dir.join(file.file_name()?);
    let rel = full.strip_prefix(&root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_str().map(str::to_string))
        .collect::<Option<_>>()?;
    Some(parts.join("/"))
}

/// What `learn` did: the report for the user (one line per incident read, then the
/// totals) and the problems in the incidents or the cases file.
#[derive(Debug)]
pub struct Learned {
    pub summary: String,
    pub problems: Diagnostics,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Incident {
        let (mut incidents, problems) = parse_incidents("incidents.jsonl", line);
        assert!(problems.is_empty(), "{problems}");
        assert_eq!(incidents.len(), 1);
        incidents.remove(0)
    }

    /// The case written as JSON, as it lands in the cases file.
    fn case_json(line: &str) -> Value {
        serde_json::to_value(one(line).case()).expect("json")
    }

    #[test]
    fn each_kind_becomes_the_assertion_that_catches_it() {
        let cases = [
            (
                r#"{"kind": "unexpected-refusal", "vars": {"q": "refund?"}}"#,
                json!([{"type": "not-refusal"}]),
            ),
            (
                r#"{"kind": "wrong-tool-sequence", "vars": {"q": "late"}, "expected_tools": ["lookup_order", "issue_refund"]}"#,
                json!([{"type": "tool-sequence", "value": ["lookup_order", "issue_refund"]}]),
            ),
            (
                r#"{"kind": "hallucinated-field", "vars": {"q": "json"}, "allowed_keys": ["reason", "decision", "reason"]}"#,
                json!([{"type": "json-keys", "value": ["decision", "reason"]}]),
            ),
            (
                r#"{"kind": "excessive-verbosity", "vars": {"q": "long"}, "max_words": 80}"#,
                json!([{"type": "max-words", "value": 80}]),
            ),
        ];
        for (line, assert) in cases {
            let case = case_json(line);
            let kind = one(line).kind();
            assert_eq!(case["assert"], assert, "{line}");
            assert_eq!(case["segments"], json!([format!("regression/{kind}")]));
            let id = case["id"].as_str().expect("id");
            let hex = id
                .strip_prefix(&format!("regression-{kind}-"))
                .expect("prefix");
            assert!(
                hex.len() == 10 && hex.chars().all(|c| c.is_ascii_hexdigit()),
                "{id}"
            );
            // The assertion is one the suite loader accepts.
            let spec: AssertionSpec =
                serde_json::from_value(assert[0].clone()).expect("assertion spec");
            spec.build(Pos::START, &mut |_: &str| Err("no schemas".into()))
                .expect("assertion builds");
        }
    }

    #[test]
    fn the_id_is_a_stable_hash_of_what_defines_the_case() {
        let base = one(
            r#"{"kind": "excessive-verbosity", "vars": {"q": "hi", "ctx": {"a": 1, "b": [1, 2]}}, "max_words": 80}"#,
        );
        // Fixed, so ids already in cases files keep matching: the SHA-256 of
        // {"assert":{"type":"max-words","value":80},"kind":"excessive-verbosity",
        //  "tool_results":{},"vars":{"ctx":{"a":1,"b":[1,2]},"q":"hi"}}
        // (no spaces), as docs/learn.md says.
        assert_eq!(base.case_id(), "regression-excessive-verbosity-83e3aeb1d1");
        // Key order at any depth, and the fields that only describe it, do not matter.
        let same = one(
            r#"{"note": "rambled", "max_words": 80, "ticket": "SUP-1", "id": "INC-9", "output": "Well...", "artifact": "support.refund", "vars": {"ctx": {"b": [1, 2], "a": 1}, "q": "hi"}, "kind": "excessive-verbosity"}"#,
        );
        assert_eq!(same.case_id(), base.case_id());
        // What defines the case does.
        for other in [
            r#"{"kind": "excessive-verbosity", "vars": {"q": "hi!", "ctx": {"a": 1, "b": [1, 2]}}, "max_words": 80}"#,
            r#"{"kind": "excessive-verbosity", "vars": {"q": "hi", "ctx": {"a": 1, "b": [2, 1]}}, "max_words": 80}"#,
            r#"{"kind": "excessive-verbosity", "vars": {"q": "hi", "ctx": {"a": 1, "b": [1, 2]}}, "max_words": 60}"#,
            r#"{"kind": "excessive-verbosity", "vars": {"q": "hi", "ctx": {"a": 1, "b": [1, 2]}}, "max_words": 80, "tool_results": {"t": {"error": "down"}}}"#,
        ] {
            assert_ne!(one(other).case_id(), base.case_id(), "{other}");
        }
        // Allowed keys are a set.
        assert_eq!(
            one(r#"{"kind": "hallucinated-field", "vars": {}, "allowed_keys": ["b", "a"]}"#)
                .case_id(),
            one(r#"{"kind": "hallucinated-field", "vars": {}, "allowed_keys": ["a", "b", "a"]}"#)
                .case_id(),
        );
        // The expected tool order is part of it.
        assert_ne!(
            one(r#"{"kind": "wrong-tool-sequence", "vars": {}, "expected_tools": ["a", "b"]}"#)
                .case_id(),
            one(r#"{"kind": "wrong-tool-sequence", "vars": {}, "expected_tools": ["b", "a"]}"#)
                .case_id(),
        );
    }

    #[test]
    fn the_description_says_where_the_case_comes_from() {
        let incident = one(
            r#"{"kind": "unexpected-refusal", "artifact": "support.refund", "id": "INC-1042", "ticket": "SUP-88", "note": "refused a\nplain refund question", "output": "I'm sorry, but I can't help with that.", "vars": {"q": "refund?"}}"#,
        );
        assert_eq!(
            incident.description(),
            "unexpected-refusal in production on support.refund (INC-1042, ticket SUP-88): \
             refused a plain refund question; answered: \"I'm sorry, but I can't help with that.\""
        );
        let long = one(&format!(
            r#"{{"kind": "unexpected-refusal", "vars": {{}}, "output": "{}"}}"#,
            "ab ".repeat(100)
        ));
        let quoted = long.description();
        let quoted = quoted
            .split_once("answered: \"")
            .map(|(_, q)| q)
            .expect("quoted");
        assert_eq!(quoted.chars().count(), OUTPUT_EXCERPT + 2, "{quoted}");
        assert!(quoted.ends_with(" ab…\""), "{quoted}");
    }

    #[test]
    fn bad_lines_are_reported_with_their_line_and_good_lines_kept() {
        let text = [
            r#"{"kind": "unexpected-refusal", "vars": {"q": "one"}}"#,
            r#"{"kind": "unexpected-refusal", "vars": {"q": "#,
            r#"{"kind": "unexpected-refusl", "vars": {}}"#,
            r#"{"kind": "wrong-tool-sequence", "vars": {}}"#,
            "",
            r#"{"kind": "excessive-verbosity", "vars": {}, "max_words": "80"}"#,
            r#"{"kind": "unexpected-refusal", "vars": {}, "max_words": 80, "tikcet": "x"}"#,
            r#"["kind"]"#,
            r#"{"kind": "excessive-verbosity", "vars": {}, "max_words": 0}"#,
            r#"{"kind": "unexpected-refusal", "vars": {}, "tool_results": {"t": {}}}"#,
            r#"{"kind": "hallucinated-field", "allowed_keys": ["a"]}"#,
            r#"{"kind": "excessive-verbosity", "vars": {"q": "two"}, "max_words": 50}"#,
        ]
        .join("\n");
        let (incidents, problems) = parse_incidents("incidents.jsonl", &text);
        assert_eq!(
            incidents.iter().map(|i| i.line).collect::<Vec<_>>(),
            [1, 12]
        );
        assert_eq!(
            problems.to_string(),
            [
                "incidents.jsonl:2:45: invalid JSON: EOF while parsing a value",
                "incidents.jsonl:3:1: `kind` must be one of `unexpected-refusal`, `wrong-tool-sequence`, `hallucinated-field`, `excessive-verbosity`, found `unexpected-refusl`, did you mean `unexpected-refusal`?",
                "incidents.jsonl:4:1: `wrong-tool-sequence` needs `expected_tools`, the tools the answer should have called, in order",
                "incidents.jsonl:6:1: `max_words` must be an integer, found `80`",
                "incidents.jsonl:7:1: unknown field `tikcet`, did you mean `ticket`?",
                "incidents.jsonl:8:1: each line must be one incident, a JSON object; found a list",
                "incidents.jsonl:9:1: `max_words` must be at least 1, found 0",
                "incidents.jsonl:10:1: tool result `t` needs exactly one of `content` or `error`",
                "incidents.jsonl:11:1: missing field `vars`",
            ]
            .join("\n")
        );
        // A field of another kind is refused, not ignored.
        let (_, problems) = parse_incidents(
            "i.jsonl",
            r#"{"kind": "unexpected-refusal", "vars": {}, "max_words": 80}"#,
        );
        assert_eq!(
            problems.to_string(),
            "i.jsonl:1:1: `max_words` is only for `excessive-verbosity`, not `unexpected-refusal`"
        );
    }

    fn incidents(text: &str) -> Vec<Incident> {
        let (incidents, problems) = parse_incidents("incidents.jsonl", text);
        assert!(problems.is_empty(), "{problems}");
        incidents
    }

    #[test]
    fn appends_new_cases_once_and_nothing_the_second_time() {
        let text = [
            r#"{"kind": "unexpected-refusal", "vars": {"q": "one"}, "ticket": "A"}"#,
            r#"{"kind": "excessive-verbosity", "vars": {"q": "two"}, "max_words": 50}"#,
            r#"{"kind": "unexpected-refusal", "vars": {"q": "one"}, "ticket": "B"}"#,
        ]
        .join("\n");
        let incidents = incidents(&text);
        // An existing file without a final newline gets one before the new lines.
        let existing = r#"{"id": "hand-written", "vars": {"q": "x"}}"#;
        let first = merge("c.jsonl", Some(existing), &incidents).expect("merge");
        assert_eq!(
            first.added.iter().map(|a| a.line).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(
            first.skipped,
            [Skipped {
                line: 3,
                id: first.added[0].id.clone(),
                first: Origin::Incident(1)
            }]
        );
        let content = first.content.clone().expect("something added");
        let lines: Vec<&str> = content.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], existing);
        assert!(content.ends_with('\n'));
        // The appended lines are cases the suite loader reads back, descriptions and all.
        let (cases, problems) = suite::parse_jsonl("c.jsonl", &content);
        assert!(problems.is_empty(), "{problems}");
        assert_eq!(cases[1].0, incidents[0].case());
        assert_eq!(cases[2].0, incidents[1].case());
        assert!(
            lines[1].starts_with(r#"{"id":"regression-unexpected-refusal-"#),
            "{}",
            lines[1]
        );

        let again = merge("c.jsonl", Some(&content), &incidents).expect("merge");
        assert_eq!(again.content, None);
        assert!(again.added.is_empty());
        assert_eq!(
            again.skipped.iter().map(|s| s.first).collect::<Vec<_>>(),
            [
                Origin::CasesFile(2),
                Origin::CasesFile(3),
                Origin::CasesFile(2)
            ]
        );
        assert_eq!(
            summary("incidents.jsonl", "c.jsonl", &again, 0),
            format!(
                "skipped {a} (incidents.jsonl:1): already in c.jsonl:2\n\
                 skipped {b} (incidents.jsonl:2): already in c.jsonl:3\n\
                 skipped {a} (incidents.jsonl:3): already in c.jsonl:2\n\
                 c.jsonl: 0 case(s) added, 3 duplicate(s) skipped, 0 bad line(s) in incidents.jsonl\n",
                a = first.added[0].id,
                b = first.added[1].id
            )
        );
    }

    #[test]
    fn a_missing_or_empty_cases_file_starts_at_line_one() {
        let incidents =
            incidents(r#"{"kind": "excessive-verbosity", "vars": {"q": "x"}, "max_words": 5}"#);
        for current in [None, Some("")] {
            let merged = merge("c.jsonl", current, &incidents).expect("merge");
            let content = merged.content.expect("added");
            assert_eq!(content.lines().count(), 1);
            assert!(content.ends_with("}\n"));
        }
    }

    #[test]
    fn problems_already_in_the_cases_file_are_returned_not_fatal() {
        let incidents =
            incidents(r#"{"kind": "excessive-verbosity", "vars": {"q": "x"}, "max_words": 5}"#);
        let merged = merge("c.jsonl", Some("not json\n"), &incidents).expect("merge");
        assert_eq!(
            merged.problems.to_string(),
            "c.jsonl:1:2: invalid JSON: expected ident"
        );
        assert_eq!(merged.added.len(), 1);
    }
}
