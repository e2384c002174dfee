//! A located YAML tree for event definition files.
//!
//! serde-saphyr parses the text, resolves anchors and applies `<<` merge keys (explicit
//! keys beat merged ones); this module keeps the result as an untyped tree whose every
//! node remembers its line, so that `definition.rs` can validate by hand and name the
//! exact line of a mistake. Nothing here knows what an event definition is.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A YAML node with the line it was defined on (1-based; 0 when unknown).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub line: u64,
}

/// The untyped value of a YAML node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order, merge keys already applied.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The string, if this node is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The entries, if this node is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value of the entry whose key is the string `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// A short description of the node's kind for error messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl fmt::Display for Node {
    /// Renders scalars as written (roughly) and collections in flow style.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
            Value::Seq(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// A YAML syntax or structure error with its position.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub message: String,
    pub line: u64,
    pub column: u64,
}

/// Parses one YAML document into a located tree (`None` for an empty document).
pub(crate) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let parsed: Option<Spanned<Value>> = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        let message = e.without_snippet().to_string();
        let message = message.lines().next().unwrap_or("").trim();
        // The rendered message ends with its own position; ours is added by the caller.
        let suffix = format!(" at line {line}, column {column}");
        SyntaxError {
            message: message.strip_suffix(&suffix).unwrap_or(message).to_owned(),
            line,
            column,
        }
    })?;
    Ok(parsed.map(node_from))
}

fn node_from(spanned: Spanned<Value>) -> Node {
    Node {
        value: spanned.value,
        line: spanned.defined.line(),
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(node_from(item));
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<(Node, Node)> = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Value>>()? {
            let value = map.next_value::<Spanned<Value>>()?;
            let key = node_from(key);
            let value = node_from(value);
            // A repeated key keeps its first position and takes the last value, as in
            // PyYAML; merged entries arrive already deduplicated by serde-saphyr.
            match entries.iter_mut().find(|(k, _)| k.value == key.value) {
                Some(slot) => slot.1 = value,
                None => entries.push((key, value)),
            }
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_keys(node: &Node) -> Vec<String> {
        node.as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.to_string())
            .collect()
    }

    #[test]
    fn merge_keys_apply_with_explicit_keys_winning() {
        let text = "\
- base: &b
    a: 1
    b: 2
- other:
    <<: *b
    b: 3
    c: 4
";
        let doc = parse(text).unwrap().unwrap();
        let Value::Seq(items) = &doc.value else {
            panic!("not a list: {doc:?}")
        };
        let other = items[1].get("other").unwrap();
        let mut keys = map_keys(other);
        keys.sort();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(other.get("a").unwrap().value, Value::Int(1));
        assert_eq!(other.get("b").unwrap().value, Value::Int(3));
        assert_eq!(other.get("c").unwrap().value, Value::Int(4));
    }

    #[test]
    fn nodes_know_their_lines() {
        let text = "---\n- event_type: x\n  traits:\n    foo:\n      type: integer\n";
        let doc = parse(text).unwrap().unwrap();
        let Value::Seq(items) = &doc.value else {
            panic!("not a list")
        };
        assert_eq!(items[0].line, 2);
        let ty = items[0]
            .get("traits")
            .and_then(|t| t.get("foo"))
            .and_then(|f| f.get("type"))
            .unwrap();
        assert_eq!(ty.as_str(), Some("integer"));
        assert_eq!(ty.line, 5);
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err = parse("x: *nope\n").unwrap_err();
        assert_eq!(err.message, "alias references unknown anchor");
        assert_eq!((err.line, err.column), (1, 4));
    }

    #[test]
    fn empty_document_is_none() {
        assert!(parse("").unwrap().is_none());
        assert!(parse("# just a comment\n").unwrap().is_none());
    }
}
