//! Eval suites (`*.eval.yaml`, plus a `cases_file` of JSON lines): the cases an artifact
//! is judged on, each in one or more segments.

use std::collections::{BTreeMap, HashMap};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::assertion::{Assertion, AssertionSpec};
use crate::diag::{Diagnostics, Pos};
use crate::format;
use crate::format::yaml::{Kind, Node};
use crate::source::{Tree, resolve_ref};

/// Cases one eval set may hold.
pub const MAX_CASES: usize = 100_000;

/// Most cases the suites read in one run may hold together (one side of a pull request):
/// what keeps memory within its ceiling however many suites a pull request commits.
pub const MAX_CASES_HELD: usize = 100_000;

/// Segment of cases that name none.
pub const DEFAULT_SEGMENT: &str = "all";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    /// Segments with their settings; cases may also name segments not listed here.
    #[serde(default)]
    pub segments: BTreeMap<String, SegmentSpec>,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub cases: Vec<CaseSpec>,
    /// More cases, one JSON object a line, relative to this file.
    pub cases_file: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentSpec {
    /// Any new failure in a critical segment blocks the gate.
    #[serde(default)]
    pub critical: bool,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Template variables every case gets unless it sets its own.
    #[serde(default)]
    pub vars: BTreeMap<String, Value>,
    /// Assertions every case gets, before its own.
    #[serde(default)]
    pub assert: Vec<AssertionSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    // Written out only when set (`promptgate learn` writes cases); the schema still
    // shows the default, which `skip_serializing_if` would hide from schemars.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("default" = []))]
    pub segments: Vec<String>,
    #[serde(default)]
    pub vars: BTreeMap<String, Value>,
    /// Canned answers for the tool-call loop, by tool name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("default" = {}))]
    pub tool_results: BTreeMap<String, ToolResultSpec>,
    #[serde(default)]
    pub assert: Vec<AssertionSpec>,
}

/// A tool's canned answer: `content` on success, `error` for a failing tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolResultSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolResult {
    Content(Value),
    Error(String),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub critical: bool,
    pub description: Option<String>,
}

/// A case ready to run: defaults merged in, assertions checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Case {
    pub id: String,
    pub description: Option<String>,
    pub segments: Vec<String>,
    pub vars: BTreeMap<String, Value>,
    pub tool_results: BTreeMap<String, ToolResult>,
    pub assertions: Vec<Assertion>,
    /// Where the case is written.
    pub file: String,
    pub pos: Pos,
}

/// What an artifact is judged on: the cases of all its suites.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EvalSet {
    pub segments: BTreeMap<String, Segment>,
    pub cases: Vec<Case>,
    /// Every file the set was read from (suites, cases files, schemas).
    pub files: Vec<String>,
}

impl EvalSet {
    /// Add a suite's cases; a case id seen before is reported, not added.
    pub fn absorb(&mut self, suite: EvalSet, problems: &mut Diagnostics) {
        for (name, segment) in suite.segments {
            let entry = self.segments.entry(name).or_default();
            entry.critical |= segment.critical;
            if entry.description.is_none() {
                entry.description = segment.description;
            }
        }
        let mut ids: HashMap<String, usize> = self
            .cases
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        for case in suite.cases {
            if let Some(first) = ids.get(&case.id).map(|&i| &self.cases[i]) {
                problems.push(
                    &case.file,
                    case.pos,
                    format!(
                        "duplicate case id `{}` (first at {}:{})",
                        case.id, first.file, first.pos.line
                    ),
                );
                continue;
            }
            ids.insert(case.id.clone(), self.cases.len());
            self.cases.push(case);
        }
        for file in suite.files {
            if !self.files.contains(&file) {
                self.files.push(file);
            }
        }
    }
}

/// Load one suite file and its cases file. Problems are collected, and every case that
/// is fine is still returned.
pub fn load(tree: &dyn Tree, path: &str) -> (EvalSet, Diagnostics) {
    let mut problems = Diagnostics::default();
    let mut set = EvalSet {
        files: vec![path.to_string()],
        ..EvalSet::default()
    };
    let too_many = too_many_cases();
    let cap = crate::format::yaml::ListCap {
        key: "cases",
        max: MAX_CASES,
        message: &too_many,
    };
    let parsed =
        format::read_text(tree, path).and_then(|t| format::parse_yaml_capped(path, &t, Some(cap)));
    let mut node = match parsed {
        Ok(node) => node,
        Err(d) => return (set, d),
    };
    // Each case is checked on its own, so one bad case does not hide the others.
    let case_nodes = take_cases(&mut node);
    let file = match format::typed_file::<SuiteFile>(path, &node, crate::schemas::SUITE.get()) {
        Ok(file) => Some(file),
        Err(d) => {
            problems.extend(d);
            None
        }
    };
    let mut specs: Vec<(CaseSpec, String, Pos, Option<Node>)> = Vec::new();
    // The assertions of cases that do not fit their shape, checked all the same.
    let mut orphans: Vec<(AssertionSpec, String, Pos)> = Vec::new();
    for case in case_nodes {
        if case.entries().is_none() {
            problems.push(
                path,
                case.pos,
                format!("each case must be a mapping, found {}", case.type_name()),
            );
            continue;
        }
        match format::typed::<CaseSpec>(path, &case, crate::schemas::CASE.get()) {
            Ok(spec) => specs.push((spec, path.to_string(), case.pos, Some(placing(case)))),
            Err(d) => {
                problems.extend(d);
                orphans.extend(
                    assertions_of_broken_case(&case).map(|(a, at)| (a, path.to_string(), at)),
                );
            }
        }
    }
    // Read also when the rest of the suite is broken: its problems are reported in the
    // same run.
    let cases_file = match &file {
        Some(file) => file.cases_file.clone(),
        None => node
            .get("cases_file")
            .and_then(Node::as_str)
            .map(str::to_string),
    };
    if let Some(cases_file) = &cases_file {
        let at = node.pos_at(&["cases_file"]);
        match resolve_ref(path, cases_file) {
            Err(e) => problems.push(path, at, format!("`cases_file`: {e}")),
            Ok(target) => match tree.read(&target) {
                Err(e) => problems.push(
                    path,
                    at,
                    format!(
                        "`cases_file` `{cases_file}`: {}",
                        format::read_error_message(&e)
                    ),
                ),
                Ok(bytes) => {
                    set.files.push(target.clone());
                    match format::text_of(&target, bytes) {
                        Err(d) => problems.extend(d),
                        Ok(text) => {
                            let mut broken = Vec::new();
                            let (lines, p) = read_jsonl(&target, &text, &mut broken);
                            problems.extend(p);
                            orphans
                                .extend(broken.into_iter().map(|(a, at)| (a, target.clone(), at)));
                            specs.extend(
                                lines
                                    .into_iter()
                                    .map(|(c, pos)| (c, target.clone(), pos, None)),
                            );
                        }
                    }
                }
            },
        }
    }

    for (a, file_path, at) in orphans {
        let mut load_schema = |r: &str| format::read_json(tree, &file_path, "json-schema", r);
        if let Err(message) = a.build(at, &mut load_schema) {
            problems.push(&file_path, at, message);
        }
    }

    let Some(file) = file else {
        return (set, problems);
    };
    set.segments = file
        .segments
        .iter()
        .map(|(name, s)| {
            (
                name.clone(),
                Segment {
                    critical: s.critical,
                    description: s.description.clone(),
                },
            )
        })
        .collect();

    let mut files: Vec<String> = Vec::new();
    let mut load_schema = |from: &str, reference: &str| {
        let (target, schema) = format::read_json(tree, from, "json-schema", reference)?;
        if !files.contains(&target) {
            files.push(target.clone());
        }
        Ok((target, schema))
    };
    let mut default_asserts = Vec::new();
    for (i, a) in file.defaults.assert.iter().enumerate() {
        let at = node.item_pos_at(&["defaults", "assert"], i);
        match a.build(at, &mut |r: &str| load_schema(path, r)) {
            Ok(built) => default_asserts.push(built),
            Err(message) => problems.push(path, at, message),
        }
    }

    // Each part is capped on its own; together they may still be too many.
    if specs.len() > MAX_CASES {
        problems.push(
            path,
            node.pos_at(&["cases_file"]),
            format!(
                "{} cases with those of `cases_file`, over the limit of {MAX_CASES} per suite: \
                 evaluate a sample of them",
                specs.len()
            ),
        );
        return (set, problems);
    }

    let mut seen: HashMap<String, (String, Pos)> = HashMap::new();
    for (spec, file_path, pos, case_node) in specs {
        if let Some((first_file, first_pos)) = seen.get(&spec.id) {
            problems.push(
                &file_path,
                pos,
                format!(
                    "duplicate case id `{}` (first at {first_file}:{})",
                    spec.id, first_pos.line
                ),
            );
            continue;
        }
        seen.insert(spec.id.clone(), (file_path.clone(), pos));
        let mut assertions = default_asserts.clone();
        let mut ok = true;
        for (i, a) in spec.assert.iter().enumerate() {
            let at = case_node
                .as_ref()
                .map_or(pos, |n| n.item_pos_at(&["assert"], i));
            // A reference in a case is relative to the file the case is written in.
            match a.build(at, &mut |r: &str| load_schema(&file_path, r)) {
                Ok(built) => assertions.push(built),
                Err(message) => {
                    ok = false;
                    problems.push(&file_path, at, message);
                }
            }
        }
        let mut tool_results = BTreeMap::new();
        for (tool, result) in &spec.tool_results {
            let at = case_node
                .as_ref()
                .map_or(pos, |n| n.pos_at(&["tool_results", tool]));
            match (&result.content, &result.error) {
                (Some(content), None) => {
                    tool_results.insert(tool.clone(), ToolResult::Content(content.clone()));
                }
                (None, Some(error)) => {
                    tool_results.insert(tool.clone(), ToolResult::Error(error.clone()));
                }
                _ => {
                    ok = false;
                    problems.push(
                        &file_path,
                        at,
                        format!("tool result `{tool}` needs exactly one of `content` or `error`"),
                    );
                }
            }
        }
        if !ok {
            continue;
        }
        let mut vars = file.defaults.vars.clone();
        vars.extend(spec.vars);
        let segments = if spec.segments.is_empty() {
            vec![DEFAULT_SEGMENT.to_string()]
        } else {
            spec.segments
        };
        set.cases.push(Case {
            id: spec.id,
            description: spec.description,
            segments,
            vars,
            tool_results,
            assertions,
            file: file_path,
            pos,
        });
    }
    for f in files {
        if !set.files.contains(&f) {
            set.files.push(f);
        }
    }
    (set, problems)
}

/// What of a case's tree is kept, beside its typed form, to place its problems: where
/// its assertions and tool results are written. Its variables, most of it, go now
/// rather than after every case is read (60 MB of a 100,000-case suite).
fn placing(mut case: Node) -> Node {
    if let Kind::Map(entries) = &mut case.kind {
        entries.retain(|e| e.key == "assert" || e.key == "tool_results");
        entries.shrink_to_fit();
    }
    case
}

/// Take the items of a `cases:` list out of the suite's tree (leaving it empty), so the
/// file and each case are checked separately.
fn take_cases(node: &mut Node) -> Vec<Node> {
    let Kind::Map(entries) = &mut node.kind else {
        return Vec::new();
    };
    match entries.iter_mut().find(|e| e.key == "cases") {
        Some(entry) => match &mut entry.value.kind {
            Kind::Seq(items) => std::mem::take(items),
            _ => Vec::new(),
        },
        None => Vec::new(),
    }
}

/// Parse a JSON-lines cases file: one case object a line, blank lines skipped. Bad lines
/// are reported by line number; good lines are kept.
pub fn parse_jsonl(path: &str, text: &str) -> (Vec<(CaseSpec, Pos)>, Diagnostics) {
    read_jsonl(path, text, &mut Vec::new())
}

/// [`parse_jsonl`], and the well-formed assertions of the lines that are not a case
/// into `broken`, so that their problems can be reported in the same run.
fn read_jsonl(
    path: &str,
    text: &str,
    broken: &mut Vec<(AssertionSpec, Pos)>,
) -> (Vec<(CaseSpec, Pos)>, Diagnostics) {
    let mut problems = Diagnostics::default();
    let mut cases = Vec::new();
    // Lines, not good cases, are counted: a file of bad lines stops as soon.
    for (read, (line_no, node)) in json_lines(text, "one case").enumerate() {
        if read >= MAX_CASES {
            problems.push(path, Pos::new(line_no, 1), too_many_cases());
            break;
        }
        let node = match node {
            Ok(node) => node,
            Err((pos, message)) => {
                problems.push(path, pos, message);
                continue;
            }
        };
        match format::typed::<CaseSpec>(path, &node, crate::schemas::CASE.get()) {
            Ok(case) => cases.push((case, node.pos)),
            Err(d) => {
                problems.extend(d);
                broken.extend(assertions_of_broken_case(&node));
            }
        }
    }
    (cases, problems)
}

/// The assertions of a case that does not fit its shape (an unknown field, say) which
/// do fit theirs, with their places. The case is dropped; these are still built, so
/// that a wrong assertion type or value in it is reported in the same run. An item that
/// does not fit its shape was reported with the case.
fn assertions_of_broken_case(case: &Node) -> impl Iterator<Item = (AssertionSpec, Pos)> + '_ {
    let items = case
        .get("assert")
        .and_then(Node::as_seq)
        .unwrap_or_default();
    items.iter().enumerate().filter_map(|(i, item)| {
        let spec = format::de::from_node::<AssertionSpec>(item).ok()?;
        Some((spec, case.item_pos_at(&["assert"], i)))
    })
}

/// The non-blank lines of a JSON-lines file with their line numbers, each read as one
/// JSON object into a tree placed at its line; a line that is not JSON, or not an object,
/// comes back as the problem to report there. `each` says what a line holds ("one
/// case").
pub fn json_lines<'t>(
    text: &'t str,
    each: &'t str,
) -> impl Iterator<Item = (usize, Result<Node, (Pos, String)>)> + 't {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(move |(i, line)| {
            let line_no = i + 1;
            let node =
                json_line(line_no, line, each).map(|v| node_from_json(&v, Pos::new(line_no, 1)));
            (line_no, node)
        })
}

/// Line `line_no` of a JSON-lines file as one JSON object, or the problem to report
/// there: where the JSON broke, or what the line holds instead of `each`.
pub fn json_line(line_no: usize, line: &str, each: &str) -> Result<Value, (Pos, String)> {
    let value: Value = serde_json::from_str(line).map_err(|e| {
        // serde_json counts bytes; columns here count characters, as in YAML.
        let before = e.column().saturating_sub(1);
        let col = line.char_indices().take_while(|(i, _)| *i < before).count() + 1;
        let message = format!("invalid JSON: {}", format::json_error_text(&e));
        (Pos::new(line_no, col), message)
    })?;
    if !value.is_object() {
        let found = super::assertion::json_type(&value);
        let message = format!("each line must be {each}, a JSON object; found {found}");
        return Err((Pos::new(line_no, 1), message));
    }
    Ok(value)
}

/// The problem at the first case over [`MAX_CASES`].
fn too_many_cases() -> String {
    format!(
        "more than {MAX_CASES} cases in one suite; the rest of the file is not read: \
         evaluate a sample of them"
    )
}

/// A JSON value as a tree whose every node sits at `pos` (JSON lines have one line each).
pub fn node_from_json(value: &Value, pos: Pos) -> Node {
    let kind = match value {
        Value::Null => Kind::Null,
        Value::Bool(b) => Kind::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Kind::Int(i),
            None => Kind::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Kind::Str(s.clone()),
        Value::Array(items) => Kind::Seq(items.iter().map(|v| node_from_json(v, pos)).collect()),
        Value::Object(map) => Kind::Map(
            map.iter()
                .map(|(k, v)| crate::format::yaml::Entry {
                    key: k.clone(),
                    key_pos: pos,
                    value: node_from_json(v, pos),
                })
                .collect(),
        ),
    };
    Node { kind, pos }
}
