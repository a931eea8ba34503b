//! YAML read into a tree that remembers where each value stands in the file.
//!
//! serde alone stops at the first error and forgets positions; the shape checker needs
//! every node's line and column to report all problems of a file at once. Scalars are
//! resolved by the YAML 1.2 core schema (`yes` is a string, `0x1f` an integer).

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::diag::Pos;

/// Nodes one document may hold after alias expansion: a guard against alias bombs.
pub const MAX_NODES: usize = 1_000_000;
/// Nesting depth one document may reach.
pub const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

/// A YAML syntax problem, or a document over the size limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
    /// The text is valid YAML, but over one of the limits.
    pub limit: bool,
}

impl SyntaxError {
    fn syntax(pos: Pos, message: impl Into<String>) -> Self {
        SyntaxError {
            pos,
            message: message.into(),
            limit: false,
        }
    }

    fn limit(pos: Pos, message: impl Into<String>) -> Self {
        SyntaxError {
            pos,
            message: message.into(),
            limit: true,
        }
    }
}

/// A cap on the items of one list at the top of a document (a suite's `cases`): the
/// parser stops at the first item over it, before reading the rest of the file.
#[derive(Debug, Clone, Copy)]
pub struct ListCap<'a> {
    /// The top-level key holding the list.
    pub key: &'a str,
    pub max: usize,
    /// The problem to report at the first item over `max`.
    pub message: &'a str,
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }

    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// Where the value at `keys` below this node is written, or the deepest one of them
    /// that exists.
    pub fn pos_at(&self, keys: &[&str]) -> Pos {
        let mut current = self;
        for key in keys {
            match current.get(key) {
                Some(next) => current = next,
                None => break,
            }
        }
        current.pos
    }

    /// Where item `index` of the list at `keys` is written.
    pub fn item_pos_at(&self, keys: &[&str], index: usize) -> Pos {
        let mut current = self;
        for key in keys {
            match current.get(key) {
                Some(next) => current = next,
                None => return current.pos,
            }
        }
        current
            .as_seq()
            .and_then(|items| items.get(index))
            .map_or(current.pos, |item| item.pos)
    }

    /// What a user would call this value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    pub fn to_json(&self) -> Value {
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::Number((*i).into()),
            Kind::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect::<Map<_, _>>(),
            ),
        }
    }
}

fn pos_of(mark: &Marker) -> Pos {
    Pos::new(mark.line(), mark.col() + 1)
}

/// Parse one YAML document. An empty document is `null`.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    parse_capped(text, None)
}

/// Parse one YAML document, stopping at the first item of the list `cap` names that is
/// over its limit.
pub fn parse_capped(text: &str, cap: Option<ListCap<'_>>) -> Result<Node, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder {
        cap,
        ..Builder::default()
    };
    // The scanner marks the end of input on a line after the last one when the text
    // does not end in a newline; a position never points past the text.
    let end = end_of(text);
    let within = |pos: Pos| pos.min(end);
    let mut documents = 0;
    let result = loop {
        let (event, mark) = match parser.next_token() {
            Ok(next) => next,
            Err(e) => {
                let pos = within(pos_of(e.marker()));
                break Err(SyntaxError::syntax(pos, builder.hint(text, e.info())));
            }
        };
        let pos = within(pos_of(&mark));
        match event {
            Event::StreamEnd => break Ok(()),
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    break Err(SyntaxError::syntax(
                        pos,
                        "expected a single YAML document, found another `---`",
                    ));
                }
            }
            other => {
                if let Err(e) = builder.event(other, pos) {
                    break Err(e);
                }
            }
        }
    };
    result?;
    Ok(builder.root.unwrap_or(Node {
        kind: Kind::Null,
        pos: Pos::START,
    }))
}

/// Where the text ends: after its last character, or at the start of the line after
/// its last newline.
fn end_of(text: &str) -> Pos {
    let line = 1 + memchr::memchr_iter(b'\n', text.as_bytes()).count();
    let last = text.rfind('\n').map_or(text, |i| &text[i + 1..]);
    Pos::new(line, last.chars().count() + 1)
}

/// The character at `pos` in `text`, if there is one.
fn char_at(text: &str, pos: Pos) -> Option<char> {
    text.split('\n')
        .nth(pos.line.checked_sub(1)?)?
        .chars()
        .nth(pos.col.checked_sub(1)?)
}

enum Open {
    Seq {
        node: Node,
        anchor: usize,
    },
    Map {
        node: Node,
        anchor: usize,
        key: Option<(String, Pos)>,
        /// The line of each key, once the mapping is too large to search by scanning.
        index: Option<HashMap<String, usize>>,
    },
}

/// Keys a mapping may hold before duplicates are looked up by index rather than by a
/// scan, which would make a mapping of many keys quadratic to read.
const SCANNED_KEYS: usize = 16;

#[derive(Default)]
struct Builder<'c> {
    stack: Vec<Open>,
    /// Anchored values, and how many values each holds.
    anchors: HashMap<usize, (Node, usize)>,
    root: Option<Node>,
    nodes: usize,
    cap: Option<ListCap<'c>>,
}

impl Builder<'_> {
    fn event(&mut self, event: Event, pos: Pos) -> Result<(), SyntaxError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.count(pos, 1)?;
                // An empty value is marked at the next token, often on a later line; the
                // key it belongs to is where a reader looks.
                let pos = match self.stack.last() {
                    Some(Open::Map {
                        key: Some((_, key_pos)),
                        ..
                    }) if text.is_empty() && style == TScalarStyle::Plain => *key_pos,
                    _ => pos,
                };
                let node = Node {
                    kind: resolve_scalar(text, style, tag.as_ref()),
                    pos,
                };
                self.remember(anchor, &node)?;
                self.attach(node)
            }
            Event::Alias(id) => {
                let unknown = || SyntaxError::syntax(pos, "alias refers to an unknown anchor");
                // Counted before it is copied: refused copies are never made.
                let size = self.anchors.get(&id).map(|(_, size)| *size);
                self.count(pos, size.ok_or_else(unknown)?)?;
                let mut node = match self.anchors.get(&id) {
                    Some((target, _)) => target.clone(),
                    None => return Err(unknown()),
                };
                node.pos = pos;
                self.attach(node)
            }
            Event::SequenceStart(anchor, _) => self.open(
                Open::Seq {
                    node: Node {
                        kind: Kind::Seq(Vec::new()),
                        pos,
                    },
                    anchor,
                },
                pos,
            ),
            Event::MappingStart(anchor, _) => self.open(
                Open::Map {
                    node: Node {
                        kind: Kind::Map(Vec::new()),
                        pos,
                    },
                    anchor,
                    key: None,
                    index: None,
                },
                pos,
            ),
            Event::SequenceEnd | Event::MappingEnd => {
                let (mut node, anchor) = match self.stack.pop() {
                    Some(Open::Seq { node, anchor } | Open::Map { node, anchor, .. }) => {
                        (node, anchor)
                    }
                    None => return Ok(()),
                };
                // A block mapping's start event is marked after its first key; the key
                // is where a reader sees the mapping begin.
                if let Kind::Map(entries) = &node.kind
                    && let Some(first) = entries.first()
                    && first.key_pos < node.pos
                {
                    node.pos = first.key_pos;
                }
                self.remember(anchor, &node)?;
                self.attach(node)
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => Ok(()),
        }
    }

    fn count(&mut self, pos: Pos, n: usize) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(SyntaxError::limit(
                pos,
                format!(
                    "document too large: more than {MAX_NODES} values, anchors and aliases \
                     counted as copies; split the file or use fewer anchors and aliases"
                ),
            ));
        }
        Ok(())
    }

    fn open(&mut self, open: Open, pos: Pos) -> Result<(), SyntaxError> {
        self.count(pos, 1)?;
        if self.stack.len() >= MAX_DEPTH {
            return Err(SyntaxError::limit(
                pos,
                format!("nested deeper than {MAX_DEPTH} levels; flatten the structure"),
            ));
        }
        self.stack.push(open);
        Ok(())
    }

    /// Keep an anchored value for its aliases. The copy counts against the limit like
    /// any value: anchors nested in anchors would otherwise copy the same values once
    /// per level, far more memory than the document's own values.
    fn remember(&mut self, anchor: usize, node: &Node) -> Result<(), SyntaxError> {
        if anchor > 0 {
            let size = count_nodes(node);
            self.count(node.pos, size)?;
            self.anchors.insert(anchor, (node.clone(), size));
        }
        Ok(())
    }

    /// The scanner's message, with where to look: it stops where the text stopped making
    /// sense, often lines after the bracket left open.
    fn hint(&self, text: &str, message: &str) -> String {
        if message.starts_with("while parsing a block") {
            return format!("{message} (check the indentation)");
        }
        let open = match self.stack.last() {
            Some(Open::Map { node, .. } | Open::Seq { node, .. }) => Some(node.pos),
            None => None,
        };
        match open.and_then(|pos| Some((char_at(text, pos)?, pos))) {
            Some((bracket @ ('[' | '{'), pos)) => format!(
                "{message} (inside the `{bracket}` opened at line {}, column {})",
                pos.line, pos.col
            ),
            _ => message.to_string(),
        }
    }

    /// Whether the list open on top of the stack is the one [`ListCap`] caps.
    fn capped(&self) -> Option<ListCap<'_>> {
        let cap = self.cap?;
        match self.stack.as_slice() {
            [
                Open::Map {
                    key: Some((key, _)),
                    ..
                },
                Open::Seq { .. },
            ] if key == cap.key => Some(cap),
            _ => None,
        }
    }

    fn attach(&mut self, node: Node) -> Result<(), SyntaxError> {
        let cap = self.capped().map(|c| (c.max, c.message.to_string()));
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Open::Seq { node: seq, .. }) => {
                if let Kind::Seq(items) = &mut seq.kind {
                    if let Some((max, message)) = cap
                        && items.len() >= max
                    {
                        return Err(SyntaxError::limit(node.pos, message));
                    }
                    items.push(node);
                }
                Ok(())
            }
            Some(Open::Map {
                node: map,
                key,
                index,
                ..
            }) => match key.take() {
                None => {
                    let is_str = matches!(node.kind, Kind::Str(_));
                    let name = match node.kind {
                        Kind::Str(s) => s,
                        Kind::Int(i) => i.to_string(),
                        Kind::Bool(b) => b.to_string(),
                        Kind::Float(f) => f.to_string(),
                        Kind::Null => "null".to_string(),
                        Kind::Seq(_) | Kind::Map(_) => {
                            return Err(SyntaxError::syntax(
                                node.pos,
                                "a mapping key must be a plain value, not a list or mapping",
                            ));
                        }
                    };
                    if name == "<<" && is_str {
                        return Err(SyntaxError::syntax(
                            node.pos,
                            "YAML merge keys (`<<`) are not supported; write the keys out",
                        ));
                    }
                    let first = match (index.as_ref(), &map.kind) {
                        (Some(index), _) => index.get(&name).copied(),
                        (None, Kind::Map(entries)) => entries
                            .iter()
                            .find(|e| e.key == name)
                            .map(|e| e.key_pos.line),
                        (None, _) => None,
                    };
                    if let Some(line) = first {
                        return Err(SyntaxError::syntax(
                            node.pos,
                            format!("duplicate key `{name}` (first defined at line {line})"),
                        ));
                    }
                    *key = Some((name, node.pos));
                    Ok(())
                }
                Some((name, key_pos)) => {
                    if let Kind::Map(entries) = &mut map.kind {
                        match index {
                            Some(index) => {
                                index.insert(name.clone(), key_pos.line);
                            }
                            None if entries.len() >= SCANNED_KEYS => {
                                let mut all: HashMap<String, usize> = entries
                                    .iter()
                                    .map(|e| (e.key.clone(), e.key_pos.line))
                                    .collect();
                                all.insert(name.clone(), key_pos.line);
                                *index = Some(all);
                            }
                            None => {}
                        }
                        entries.push(Entry {
                            key: name,
                            key_pos,
                            value: node,
                        });
                    }
                    Ok(())
                }
            },
        }
    }
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.kind {
        Kind::Seq(items) => items.iter().map(count_nodes).sum(),
        Kind::Map(entries) => entries.iter().map(|e| count_nodes(&e.value)).sum(),
        _ => 0,
    }
}

fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Kind {
    if let Some(tag) = tag
        && (tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:")
    {
        match tag.suffix.as_str() {
            "str" => return Kind::Str(text),
            "null" => return Kind::Null,
            _ => {}
        }
    }
    if style != TScalarStyle::Plain {
        return Kind::Str(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Kind::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Kind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Kind::Float(f64::NAN),
        _ => {}
    }
    if let Some(i) = parse_int(&text) {
        return Kind::Int(i);
    }
    if is_float(&text)
        && let Ok(f) = text.parse::<f64>()
    {
        return Kind::Float(f);
    }
    Kind::Str(text)
}

fn parse_int(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok();
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    None
}

fn is_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next();
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => digits(whole) && digits(f) && !(whole.is_empty() && f.is_empty()),
        None => !whole.is_empty() && digits(whole),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Kind {
        parse(text).expect("parses").kind
    }

    #[test]
    fn resolves_scalars_by_yaml_1_2_core_schema() {
        assert_eq!(kind("yes"), Kind::Str("yes".into()));
        assert_eq!(kind("true"), Kind::Bool(true));
        assert_eq!(kind("~"), Kind::Null);
        assert_eq!(kind("42"), Kind::Int(42));
        assert_eq!(kind("-7"), Kind::Int(-7));
        assert_eq!(kind("0x1f"), Kind::Int(31));
        assert_eq!(kind("0.25"), Kind::Float(0.25));
        assert_eq!(kind("1e3"), Kind::Float(1000.0));
        assert_eq!(kind("'42'"), Kind::Str("42".into()));
        assert_eq!(kind("!!str 42"), Kind::Str("42".into()));
        assert_eq!(kind("1.2.3"), Kind::Str("1.2.3".into()));
        assert_eq!(kind(""), Kind::Null);
    }

    #[test]
    fn remembers_positions_of_keys_and_values() {
        let node = parse("a: 1\nmodel:\n  temperature: hot\n").expect("parses");
        let model = node.get("model").expect("model");
        let entry = &model.entries().expect("map")[0];
        assert_eq!(entry.key, "temperature");
        assert_eq!(entry.key_pos, Pos::new(3, 3));
        assert_eq!(entry.value.pos, Pos::new(3, 16));
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let err = parse("a: [1, 2\nb: 3\n").expect_err("unclosed list");
        assert_eq!(
            err,
            SyntaxError::syntax(
                Pos::new(2, 2),
                "illegal placement of ':' indicator (inside the `[` opened at line 1, column 4)"
            )
        );
        let err = parse("a: {b: 1\nc: 3\n").expect_err("unclosed mapping");
        assert!(
            err.message
                .ends_with(" (inside the `{` opened at line 1, column 4)"),
            "{err:?}"
        );
        // Inside a block collection, no bracket to point at.
        let err = parse("a: [1]\nb: c: d\n").expect_err("nested mapping");
        assert!(!err.message.contains("inside"), "{err:?}");
        let err = parse("a:\n  - b\n c: 1\n").expect_err("indentation");
        assert!(err.message.ends_with(" (check the indentation)"), "{err:?}");
    }

    #[test]
    fn rejects_duplicate_keys() {
        let err = parse("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert_eq!(err.pos, Pos::new(3, 1));
        assert_eq!(err.message, "duplicate key `a` (first defined at line 1)");
    }

    #[test]
    fn stops_alias_bombs() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse(&doc).expect_err("bomb");
        assert!(err.message.starts_with("document too large"), "{err:?}");
        assert!(err.limit);
    }

    /// Anchors nested in anchors: each level used to keep its own copy of everything
    /// below it, 120 copies of 100,000 values from a 2 KB file.
    #[test]
    fn anchor_copies_count_against_the_limit() {
        let mut doc = String::from("b0: &b0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..5 {
            let p = i - 1;
            doc.push_str(&format!(
                "b{i}: &b{i} [{}]\n",
                vec![format!("*b{p}"); 10].join(", ")
            ));
        }
        doc.push_str("x: ");
        for i in 0..120 {
            doc.push_str(&format!("&n{i} ["));
        }
        doc.push_str("*b4");
        doc.push_str(&"]".repeat(120));
        let err = parse(&doc).expect_err("copies");
        assert!(err.message.starts_with("document too large"), "{err:?}");
        // Without the nesting, the same values are fine.
        let flat = doc.split("x: ").next().unwrap_or_default().to_string() + "x: [*b4]\n";
        assert!(parse(&flat).is_ok());
    }

    #[test]
    fn stops_deep_nesting() {
        let doc = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        let err = parse(&doc).expect_err("deep");
        assert_eq!(
            err,
            SyntaxError {
                pos: Pos::new(1, 129),
                message: "nested deeper than 128 levels; flatten the structure".into(),
                limit: true,
            }
        );
    }

    #[test]
    fn a_capped_list_stops_at_its_limit() {
        let cap = ListCap {
            key: "cases",
            max: 2,
            message: "too many",
        };
        let doc = "other: [1, 2, 3]\ncases:\n  - a\n  - [b, c, d]\n  - c\n  - d\n";
        let err = parse_capped(doc, Some(cap)).expect_err("capped");
        assert_eq!(err, SyntaxError::limit(Pos::new(5, 5), "too many"));
        // Only that list: the same items elsewhere are fine.
        let doc = "other: [1, 2, 3]\ncases: [[1, 2, 3]]\n";
        assert!(parse_capped(doc, Some(cap)).is_ok());
    }

    #[test]
    fn many_keys_are_read_in_linear_time_and_duplicates_still_found() {
        let mut doc: String = (0..50_000).map(|i| format!("k{i}: {i}\n")).collect();
        let node = parse(&doc).expect("parses");
        assert_eq!(node.entries().map(<[Entry]>::len), Some(50_000));
        doc.push_str("k3: again\n");
        let err = parse(&doc).expect_err("duplicate");
        assert_eq!(
            err,
            SyntaxError::syntax(
                Pos::new(50_001, 1),
                "duplicate key `k3` (first defined at line 4)"
            )
        );
    }

    #[test]
    fn places_empty_values_at_their_key() {
        let node = parse("cases:\n  - id: c1\n    vars:\n    assert: []\n").expect("parses");
        let case = &node.get("cases").and_then(Node::as_seq).expect("cases")[0];
        assert_eq!(case.get("vars").map(|n| n.pos), Some(Pos::new(3, 5)));
    }

    /// Where a position may point in `text`: a line of it, and a column up to one past
    /// its end (an error at the end of input).
    fn inside(text: &str, pos: Pos) -> bool {
        let lines: Vec<&str> = text.split('\n').collect();
        pos.line >= 1
            && pos.col >= 1
            && lines
                .get(pos.line - 1)
                .is_some_and(|l| pos.col <= l.chars().count() + 1)
    }

    /// Every position in a tree.
    fn positions(node: &Node, out: &mut Vec<Pos>) {
        out.push(node.pos);
        match &node.kind {
            Kind::Seq(items) => items.iter().for_each(|n| positions(n, out)),
            Kind::Map(entries) => entries.iter().for_each(|e| {
                out.push(e.key_pos);
                positions(&e.value, out);
            }),
            _ => {}
        }
    }

    /// Parsing `text` gives a tree positioned inside it, or an error located inside it.
    fn parses_inside(text: &str) -> Result<(), String> {
        match parse(text) {
            Ok(node) => {
                let mut all = Vec::new();
                positions(&node, &mut all);
                match all.into_iter().find(|p| !inside(text, *p)) {
                    Some(p) => Err(format!("{p:?} is outside {text:?}")),
                    None => Ok(()),
                }
            }
            Err(e) if e.message.is_empty() => Err(format!("no message: {e:?}")),
            Err(e) if !inside(text, e.pos) => Err(format!("{e:?} is outside {text:?}")),
            Err(_) => Ok(()),
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Any text: a tree positioned inside it, or an error located inside it.
            #[test]
            fn any_text(text in "(\\PC|[ \n:\\-\\[\\]{},&*!|>'\"#?%@`]){0,200}") {
                prop_assert_eq!(parses_inside(&text), Ok(()));
            }

            /// YAML-looking lines put together at random, anchors and aliases included.
            #[test]
            fn yaml_fragments(lines in prop::collection::vec(prop_oneof![
                Just("a: 1".to_string()),
                Just("- x".to_string()),
                Just("  - &a [1, *a]".to_string()),
                Just("b: &b {c: *b}".to_string()),
                Just("c: *nope".to_string()),
                Just("<<: *b".to_string()),
                Just("? [k]\n: v".to_string()),
                Just("d: |\n  text".to_string()),
                Just("---".to_string()),
                Just("e: \"\\u00e9\\x\"".to_string()),
                "[a-z]{1,3}: [\\[\\]{}a-z0-9&*, ]{0,12}",
                " {0,4}[a-z]{1,3}:",
            ], 0..12)) {
                prop_assert_eq!(parses_inside(&lines.join("\n")), Ok(()));
            }

            /// Keys and plain scalars come back as written.
            #[test]
            fn a_mapping_of_scalars_round_trips(entries in prop::collection::btree_map(
                "[a-z][a-z0-9_]{0,8}",
                prop_oneof![
                    any::<i64>().prop_map(Kind::Int),
                    any::<bool>().prop_map(Kind::Bool),
                    "[ -~]{0,20}".prop_map(Kind::Str),
                ],
                1..10,
            )) {
                let text: String = entries
                    .iter()
                    .map(|(k, v)| match v {
                        Kind::Int(i) => format!("{k}: {i}\n"),
                        Kind::Bool(b) => format!("{k}: {b}\n"),
                        // In single quotes only `'` needs escaping, as `''`.
                        Kind::Str(s) => format!("{k}: '{}'\n", s.replace('\'', "''")),
                        _ => String::new(),
                    })
                    .collect();
                let node = parse(&text).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                let got: Vec<(String, Kind)> = node
                    .entries()
                    .unwrap_or_default()
                    .iter()
                    .map(|e| (e.key.clone(), e.value.kind.clone()))
                    .collect();
                prop_assert_eq!(got, entries.into_iter().collect::<Vec<_>>());
            }
        }
    }

    /// The first collection event of `text`, and how many characters the scanner had
    /// read when it handed that event out.
    fn first_collection(text: &str) -> Option<(Event, usize)> {
        let read = std::cell::Cell::new(0);
        let chars = text.chars().inspect(|_| read.set(read.get() + 1));
        let mut parser = Parser::new(chars);
        loop {
            match parser.next_token().ok()? {
                (e @ (Event::SequenceStart(..) | Event::MappingStart(..)), _) => {
                    return Some((e, read.get()));
                }
                (Event::StreamEnd, _) => return None,
                _ => {}
            }
        }
    }

    /// A `[` or `{` where a key may stand could be a key until the scanner knows what
    /// follows it; yaml-rust2 held every token up to the closing bracket, ~90 bytes per
    /// byte of a document written as one flow collection (crates/yaml-rust2/PATCHED.md).
    #[test]
    fn the_scanner_reads_a_flow_collection_as_it_goes() {
        let items = "  {a: [1, 2]},\n".repeat(20_000);
        for text in [
            format!("[\n{items}]\n"),
            format!("- {{\n  k: [\n{items}]}}\n"),
            format!("[[{}]]\n", "1, ".repeat(20_000)),
        ] {
            let read = first_collection(&text).map(|(_, read)| read);
            assert!(
                read < Some(4096),
                "read {read:?} of {} characters",
                text.len()
            );
            assert!(parse(&text).is_ok());
        }
        // A key is still a key: on one line in the block context, over lines inside a
        // flow mapping.
        let first = first_collection("[a, b]: c\n").map(|(event, _)| event);
        assert!(matches!(first, Some(Event::MappingStart(..))), "{first:?}");
        assert!(parse("x: {\"k\"\n  : v}\n").is_ok_and(|n| n.pos_at(&["x", "k"]).line == 2));
        // A key in the block context is one line (YAML 1.2, 7.4.2 and 8.2.2).
        assert!(parse("[a,\n b]: c\n").is_err());
    }

    #[test]
    fn expands_aliases() {
        let node = parse("base: &b {x: 1}\nother: *b\n").expect("parses");
        assert_eq!(
            node.get("other").map(Node::to_json),
            Some(serde_json::json!({"x": 1}))
        );
    }
}
