//! serde reads the typed models straight from the positioned tree, without building a
//! `serde_json::Value` copy of it first.
//!
//! It behaves as `serde_json::from_value(node.to_json())` does, errors included: the
//! same visits for the same values (a non-negative integer is a `u64`, a negative one an
//! `i64`, a non-finite float is `null`), mappings visited in the order a
//! `serde_json::Map` holds them, and errors made by `serde_json::Error`.

use std::sync::OnceLock;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    DeserializeSeed, EnumAccess, Error as _, Expected, MapAccess, SeqAccess, Unexpected,
    VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::Error;

use super::yaml::{Entry, Kind, Node};

/// `serde_json::from_value(node.to_json())`, without the intermediate value.
pub fn from_node<'de, T: serde::Deserialize<'de>>(node: &'de Node) -> Result<T, Error> {
    T::deserialize(node)
}

/// What `to_json` makes of a node, as far as a visitor can tell.
enum Json<'de> {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Str(&'de str),
    Seq(&'de [Node]),
    Map(&'de [Entry]),
}

fn json(node: &Node) -> Json<'_> {
    match &node.kind {
        Kind::Null => Json::Null,
        Kind::Bool(b) => Json::Bool(*b),
        Kind::Int(i) => match u64::try_from(*i) {
            Ok(u) => Json::Unsigned(u),
            Err(_) => Json::Signed(*i),
        },
        Kind::Float(f) if f.is_finite() => Json::Float(*f),
        Kind::Float(_) => Json::Null,
        Kind::Str(s) => Json::Str(s),
        Kind::Seq(items) => Json::Seq(items),
        Kind::Map(entries) => Json::Map(entries),
    }
}

fn unexpected<'a>(node: &'a Node) -> Unexpected<'a> {
    match json(node) {
        Json::Null => Unexpected::Unit,
        Json::Bool(b) => Unexpected::Bool(b),
        Json::Unsigned(u) => Unexpected::Unsigned(u),
        Json::Signed(i) => Unexpected::Signed(i),
        Json::Float(f) => Unexpected::Float(f),
        Json::Str(s) => Unexpected::Str(s),
        Json::Seq(_) => Unexpected::Seq,
        Json::Map(_) => Unexpected::Map,
    }
}

fn invalid_type(node: &Node, exp: &dyn Expected) -> Error {
    Error::invalid_type(unexpected(node), exp)
}

/// Whether a `serde_json::Map` iterates its keys sorted (it does unless serde_json's
/// `preserve_order` feature is on somewhere in the build).
fn maps_sorted() -> bool {
    static SORTED: OnceLock<bool> = OnceLock::new();
    *SORTED.get_or_init(|| {
        let map: serde_json::Map<String, serde_json::Value> = [
            ("b".to_string(), serde_json::Value::Null),
            ("a".to_string(), serde_json::Value::Null),
        ]
        .into_iter()
        .collect();
        map.keys().next().is_some_and(|k| k == "a")
    })
}

fn visit_seq<'de, V: Visitor<'de>>(items: &'de [Node], visitor: V) -> Result<V::Value, Error> {
    let mut access = Items { iter: items.iter() };
    let value = visitor.visit_seq(&mut access)?;
    if access.iter.len() == 0 {
        Ok(value)
    } else {
        Err(Error::invalid_length(
            items.len(),
            &"fewer elements in array",
        ))
    }
}

fn visit_map<'de, V: Visitor<'de>>(entries: &'de [Entry], visitor: V) -> Result<V::Value, Error> {
    let mut ordered: Vec<&'de Entry> = entries.iter().collect();
    if maps_sorted() {
        ordered.sort_by(|a, b| a.key.cmp(&b.key));
    }
    let mut access = Entries {
        iter: ordered.into_iter(),
        value: None,
    };
    let value = visitor.visit_map(&mut access)?;
    if access.iter.len() == 0 {
        Ok(value)
    } else {
        Err(Error::invalid_length(
            entries.len(),
            &"fewer elements in map",
        ))
    }
}

fn visit_number<'de, V: Visitor<'de>>(node: &'de Node, visitor: V) -> Result<V::Value, Error> {
    match json(node) {
        Json::Unsigned(u) => visitor.visit_u64(u),
        Json::Signed(i) => visitor.visit_i64(i),
        Json::Float(f) => visitor.visit_f64(f),
        _ => Err(invalid_type(node, &visitor)),
    }
}

macro_rules! numbers {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                visit_number(self, visitor)
            }
        )*
    };
}

impl<'de> serde::Deserializer<'de> for &'de Node {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match json(self) {
            Json::Null => visitor.visit_unit(),
            Json::Bool(b) => visitor.visit_bool(b),
            Json::Unsigned(u) => visitor.visit_u64(u),
            Json::Signed(i) => visitor.visit_i64(i),
            Json::Float(f) => visitor.visit_f64(f),
            Json::Str(s) => visitor.visit_borrowed_str(s),
            Json::Seq(items) => visit_seq(items, visitor),
            Json::Map(entries) => visit_map(entries, visitor),
        }
    }

    numbers! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match json(self) {
            Json::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match json(self) {
            Json::Map(entries) => {
                let [only] = entries else {
                    return Err(Error::invalid_value(
                        Unexpected::Map,
                        &"map with a single key",
                    ));
                };
                visitor.visit_enum(Variant {
                    name: &only.key,
                    value: Some(&only.value),
                })
            }
            Json::Str(name) => visitor.visit_enum(Variant { name, value: None }),
            _ => Err(Error::invalid_type(unexpected(self), &"string or map")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match json(self) {
            Json::Bool(b) => visitor.visit_bool(b),
            _ => Err(invalid_type(self, &visitor)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match json(self) {
            Json::Str(s) => visitor.visit_borrowed_str(s),
            _ => Err(invalid_type(self, &visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match json(self) {
            Json::Str(s) => visitor.visit_borrowed_str(s),
            Json::Seq(items) => visit_seq(items, visitor),
            _ => Err(invalid_type(self, &visitor)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match json(self) {
            Json::Null => visitor.visit_unit(),
            _ => Err(invalid_type(self, &visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match json(self) {
            Json::Seq(items) => visit_seq(items, visitor),
            _ => Err(invalid_type(self, &visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match json(self) {
            Json::Map(entries) => visit_map(entries, visitor),
            _ => Err(invalid_type(self, &visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match json(self) {
            Json::Seq(items) => visit_seq(items, visitor),
            Json::Map(entries) => visit_map(entries, visitor),
            _ => Err(invalid_type(self, &visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

struct Items<'de> {
    iter: std::slice::Iter<'de, Node>,
}

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.iter.next().map(|n| seed.deserialize(n)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct Entries<'de> {
    iter: std::vec::IntoIter<&'de Entry>,
    value: Option<&'de Node>,
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some(entry) => {
                self.value = Some(&entry.value);
                seed.deserialize(Key(&entry.key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(value),
            None => Err(Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// A mapping key, which JSON only has as a string.
struct Key<'de>(&'de str);

impl<'de> serde::Deserializer<'de> for Key<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // Map keys cannot be null.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        BorrowedStrDeserializer::<Error>::new(self.0).deserialize_enum(name, variants, visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

struct Variant<'de> {
    name: &'de str,
    value: Option<&'de Node>,
}

impl<'de> EnumAccess<'de> for Variant<'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let name = BorrowedStrDeserializer::<Error>::new(self.name);
        seed.deserialize(name).map(|v| (v, self))
    }
}

impl<'de> VariantAccess<'de> for Variant<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            Some(value) => serde::Deserialize::deserialize(value),
            None => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.value {
            Some(value) => seed.deserialize(value),
            None => Err(Error::invalid_type(
                Unexpected::UnitVariant,
                &"newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.value.map(|v| (v, json(v))) {
            Some((_, Json::Seq([]))) => visitor.visit_unit(),
            Some((_, Json::Seq(items))) => visit_seq(items, visitor),
            Some((other, _)) => Err(Error::invalid_type(unexpected(other), &"tuple variant")),
            None => Err(Error::invalid_type(
                Unexpected::UnitVariant,
                &"tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value.map(|v| (v, json(v))) {
            Some((_, Json::Map(entries))) => visit_map(entries, visitor),
            Some((other, _)) => Err(Error::invalid_type(unexpected(other), &"struct variant")),
            None => Err(Error::invalid_type(
                Unexpected::UnitVariant,
                &"struct variant",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::Value;

    use super::*;
    use crate::format::yaml::parse;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Model {
        name: String,
        count: Option<u32>,
        ratio: Option<f64>,
        #[serde(default)]
        tags: Vec<String>,
        extra: Option<BTreeMap<String, Value>>,
        either: Option<Either>,
        shape: Option<Shape>,
        role: Option<Role>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(u64),
        Text(String),
        List(Vec<Value>),
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Shape {
        Circle { radius: f64 },
        Square { side: i64 },
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Role {
        System,
        Tool { name: String },
        Pair(u8, u8),
        Wrapped(String),
    }

    fn both<T: for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(yaml: &str) {
        let node = parse(yaml).expect("parses");
        let direct: Result<T, String> = from_node(&node).map_err(|e| e.to_string());
        let via_json: Result<T, String> =
            serde_json::from_value(node.to_json()).map_err(|e| e.to_string());
        assert_eq!(direct, via_json, "{yaml}");
    }

    #[test]
    fn reads_like_serde_json_from_the_json_value() {
        let docs = [
            "name: a",
            "name: a\ncount: 3\nratio: 1\ntags: [x, y]",
            "name: a\ncount: -3",
            "name: a\ncount: 1.5",
            "name: a\ncount: 99999999999",
            "name: a\nratio: .nan",
            "name: a\nratio: .inf\ncount: 1",
            "name: 5",
            "name: ~",
            "count: 1",
            "name: a\nunknown: 1\nzzz: 2",
            "name: a\nextra: {b: [1, -2, 2.5, x, null, true], a: {c: d}}",
            "name: a\neither: 3",
            "name: a\neither: text",
            "name: a\neither: [1, {x: y}]",
            "name: a\neither: {x: y}",
            "name: a\nshape: {type: circle, radius: 2}",
            "name: a\nshape: {type: square, side: -2}",
            "name: a\nshape: {type: hexagon}",
            "name: a\nshape: {radius: 2}",
            "name: a\nrole: system",
            "name: a\nrole: {system: null}",
            "name: a\nrole: {system: 1}",
            "name: a\nrole: {tool: {name: x}}",
            "name: a\nrole: {tool: 3}",
            "name: a\nrole: tool",
            "name: a\nrole: {pair: [1, 2]}",
            "name: a\nrole: {pair: []}",
            "name: a\nrole: {pair: x}",
            "name: a\nrole: {wrapped: x}",
            "name: a\nrole: wrapped",
            "name: a\nrole: {system: null, tool: {name: x}}",
            "name: a\nrole: {}",
            "name: a\nrole: 3",
            "name: a\nrole: other",
            "[a, 1]",
            "[a, 1, 2, 3, 4, 5, 6, 7, 8, 9]",
            "a string",
            "",
        ];
        for doc in docs {
            both::<Model>(doc);
            both::<Value>(doc);
            both::<Option<Either>>(doc);
        }
        both::<(String, u8)>("[a, 1]");
        both::<(String, u8)>("[a, 1, 2]");
        both::<BTreeMap<String, Vec<i32>>>("{b: [1, 2], a: [-1]}");
        both::<()>("~");
        both::<()>("1");
        both::<bool>("true");
        both::<char>("x");
        both::<f32>("0.1");
        both::<i128>("-4");
    }
}
