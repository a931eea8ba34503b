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
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::default();
    let mut documents = 0;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| SyntaxError {
            pos: pos_of(e.marker()),
            message: e.info().to_string(),
        })?;
        let pos = pos_of(&mark);
        match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError {
                        pos,
                        message: "expected a single YAML document, found another `---`".into(),
                    });
                }
            }
            other => builder.event(other, pos)?,
        }
    }
    Ok(builder.root.unwrap_or(Node {
        kind: Kind::Null,
        pos: Pos::START,
    }))
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
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    nodes: usize,
}

impl Builder {
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
                self.remember(anchor, &node);
                self.attach(node)
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err(SyntaxError {
                        pos,
                        message: "alias refers to an unknown anchor".into(),
                    });
                };
                let mut node = target.clone();
                self.count(pos, count_nodes(&node))?;
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
                self.remember(anchor, &node);
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
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                pos,
                message: format!(
                    "document too large: more than {MAX_NODES} values once aliases are expanded"
                ),
            });
        }
        Ok(())
    }

    fn open(&mut self, open: Open, pos: Pos) -> Result<(), SyntaxError> {
        self.count(pos, 1)?;
        if self.stack.len() >= MAX_DEPTH {
            return Err(SyntaxError {
                pos,
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        self.stack.push(open);
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }

    fn attach(&mut self, node: Node) -> Result<(), SyntaxError> {
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Open::Seq { node: seq, .. }) => {
                if let Kind::Seq(items) = &mut seq.kind {
                    items.push(node);
                }
                Ok(())
            }
            Some(Open::Map { node: map, key, .. }) => match key.take() {
                None => {
                    let is_str = matches!(node.kind, Kind::Str(_));
                    let name = match node.kind {
                        Kind::Str(s) => s,
                        Kind::Int(i) => i.to_string(),
                        Kind::Bool(b) => b.to_string(),
                        Kind::Float(f) => f.to_string(),
                        Kind::Null => "null".to_string(),
                        Kind::Seq(_) | Kind::Map(_) => {
                            return Err(SyntaxError {
                                pos: node.pos,
                                message:
                                    "a mapping key must be a plain value, not a list or mapping"
                                        .into(),
                            });
                        }
                    };
                    if name == "<<" && is_str {
                        return Err(SyntaxError {
                            pos: node.pos,
                            message: "YAML merge keys (`<<`) are not supported; write the keys out"
                                .into(),
                        });
                    }
                    if let Kind::Map(entries) = &map.kind
                        && let Some(first) = entries.iter().find(|e| e.key == name)
                    {
                        return Err(SyntaxError {
                            pos: node.pos,
                            message: format!(
                                "duplicate key `{name}` (first defined at line {})",
                                first.key_pos.line
                            ),
                        });
                    }
                    *key = Some((name, node.pos));
                    Ok(())
                }
                Some((name, key_pos)) => {
                    if let Kind::Map(entries) = &mut map.kind {
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
        assert!(err.pos.line >= 2, "{err:?}");
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
    }

    #[test]
    fn stops_deep_nesting() {
        let doc = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        let err = parse(&doc).expect_err("deep");
        assert!(err.message.starts_with("nesting deeper"), "{err:?}");
    }

    #[test]
    fn places_empty_values_at_their_key() {
        let node = parse("cases:\n  - id: c1\n    vars:\n    assert: []\n").expect("parses");
        let case = &node.get("cases").and_then(Node::as_seq).expect("cases")[0];
        assert_eq!(case.get("vars").map(|n| n.pos), Some(Pos::new(3, 5)));
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
