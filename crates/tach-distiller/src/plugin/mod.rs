//! Trait plugins: code that computes a trait's value from everything its `fields` matched.
//!
//! A trait with `plugin: name` (or `plugin: {name, parameters}`) hands all its non-null
//! matches, in order and with their full paths, to the plugin, even when nothing matched.
//! The plugin's answer is then converted to the trait's type like a matched value would be.
//! Plugins are built once per trait at load time by a factory looked up by name in a
//! [`PluginRegistry`]; `split` and `bitfield` are built in, users register their own.

mod bitfield;
mod split;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

pub use bitfield::BitfieldPlugin;
pub use split::SplitPlugin;

/// One non-null value matched by a trait's `fields`, with its full path.
///
/// Paths are spelled as stackdistiller spelled them: field names joined by `.`, list
/// positions as `[i]` (`payload.image_meta.org.openstack__1__architecture`,
/// `payload.fixed_ips.[0].address`).
#[derive(Debug, Clone, Copy)]
pub struct FieldMatch<'a> {
    /// The full path of the matched value.
    pub path: &'a str,
    /// The matched value (never null).
    pub value: &'a Value,
}

/// A value produced by a plugin, converted afterwards to the trait's type.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginValue<'a> {
    /// A value taken from the notification as is.
    Json(&'a Value),
    /// A string.
    Text(Cow<'a, str>),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

/// Computes a trait's value from the trait's matches.
pub trait TraitPlugin: Send + Sync {
    /// Returns the trait's value from `matches` (in order; empty when nothing matched),
    /// or `None` to leave the trait out of the event.
    fn trait_value<'a>(&self, matches: &[FieldMatch<'a>]) -> Option<PluginValue<'a>>;
}

/// A plugin parameter as written in the YAML file.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// `null`, `~` or nothing.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Text(String),
    /// A list.
    List(Vec<ParamValue>),
    /// A mapping, entries in file order (non-string keys as their YAML text).
    Map(Vec<(String, ParamValue)>),
}

impl ParamValue {
    /// A short description of the value's kind for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ParamValue::Null => "null",
            ParamValue::Bool(_) => "a boolean",
            ParamValue::Int(_) => "an integer",
            ParamValue::Float(_) => "a number",
            ParamValue::Text(_) => "a string",
            ParamValue::List(_) => "a list",
            ParamValue::Map(_) => "a mapping",
        }
    }

    /// Python equality (`==`) between this parameter and a JSON value: numbers compare by
    /// value across integer, float and boolean, collections element by element.
    pub fn equals_json(&self, json: &Value) -> bool {
        if let (Some(a), Some(b)) = (self.as_number(), json_number(json)) {
            return a == b;
        }
        match self {
            ParamValue::Null => json.is_null(),
            ParamValue::Text(s) => json.as_str() == Some(s.as_str()),
            ParamValue::List(items) => json.as_array().is_some_and(|array| {
                array.len() == items.len()
                    && items
                        .iter()
                        .zip(array.iter())
                        .all(|(p, j)| p.equals_json(j))
            }),
            ParamValue::Map(entries) => json.as_object().is_some_and(|object| {
                object.len() == entries.len()
                    && entries
                        .iter()
                        .all(|(k, p)| object.get(k).is_some_and(|j| p.equals_json(j)))
            }),
            ParamValue::Bool(_) | ParamValue::Int(_) | ParamValue::Float(_) => false,
        }
    }

    fn as_number(&self) -> Option<Number> {
        match *self {
            ParamValue::Bool(b) => Some(Number::Int(i64::from(b).into())),
            ParamValue::Int(i) => Some(Number::Int(i.into())),
            ParamValue::Float(f) => Some(Number::Float(f)),
            _ => None,
        }
    }
}

/// A number for Python-style comparisons.
#[derive(Clone, Copy)]
enum Number {
    Int(i128),
    Float(f64),
}

impl PartialEq for Number {
    fn eq(&self, other: &Number) -> bool {
        match (*self, *other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            (Number::Int(a), Number::Float(b)) | (Number::Float(b), Number::Int(a)) => {
                a as f64 == b
            }
            (Number::Float(a), Number::Float(b)) => a == b,
        }
    }
}

fn json_number(json: &Value) -> Option<Number> {
    if let Some(b) = json.as_bool() {
        Some(Number::Int(i64::from(b).into()))
    } else if let Some(i) = json.as_i64() {
        Some(Number::Int(i.into()))
    } else if let Some(u) = json.as_u64() {
        Some(Number::Int(u.into()))
    } else {
        json.as_f64().map(Number::Float)
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Null => f.write_str("null"),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Text(s) => f.write_str(s),
            ParamValue::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            ParamValue::Map(entries) => {
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

/// The `parameters` mapping of a plugin, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginParams {
    entries: Vec<(String, ParamValue)>,
}

impl PluginParams {
    /// Parameters from `(name, value)` pairs.
    pub fn new(entries: Vec<(String, ParamValue)>) -> PluginParams {
        PluginParams { entries }
    }

    /// The value of parameter `name`, if given.
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.entries.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// All parameters in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether no parameter was given.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Fails on the first parameter whose name is not in `known`.
    ///
    /// # Errors
    ///
    /// `unknown parameter `x` (expected a, b)`.
    pub fn check_known(&self, known: &[&str]) -> Result<(), String> {
        check_known_keys(self.entries.iter().map(|(k, _)| k.as_str()), known)
    }

    /// The integer parameter `name`: `default` when absent.
    ///
    /// # Errors
    ///
    /// When present but not an integer.
    pub fn int_or(&self, name: &str, default: i64) -> Result<i64, String> {
        match self.get(name) {
            None => Ok(default),
            Some(ParamValue::Int(i)) => Ok(*i),
            Some(other) => Err(format!("`{name}` must be an integer, not {}", other.kind())),
        }
    }
}

pub(crate) fn check_known_keys<'k>(
    keys: impl Iterator<Item = &'k str>,
    known: &[&str],
) -> Result<(), String> {
    for key in keys {
        if !known.contains(&key) {
            let expected = known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(format!("unknown parameter `{key}` (expected {expected})"));
        }
    }
    Ok(())
}

/// Builds a plugin instance from its parameters; the error says what is wrong with them.
pub type PluginFactory =
    dyn Fn(&PluginParams) -> Result<Box<dyn TraitPlugin>, String> + Send + Sync;

/// The plugins a definition file may name, by name.
pub struct PluginRegistry {
    factories: HashMap<String, Box<PluginFactory>>,
}

impl PluginRegistry {
    /// A registry without any plugin.
    pub fn empty() -> PluginRegistry {
        PluginRegistry {
            factories: HashMap::new(),
        }
    }

    /// A registry with the built-in `split` and `bitfield` plugins.
    pub fn with_builtins() -> PluginRegistry {
        let mut registry = PluginRegistry::empty();
        registry.register("split", |params| {
            Ok(Box::new(SplitPlugin::from_params(params)?) as Box<dyn TraitPlugin>)
        });
        registry.register("bitfield", |params| {
            Ok(Box::new(BitfieldPlugin::from_params(params)?) as Box<dyn TraitPlugin>)
        });
        registry
    }

    /// Adds (or replaces) the plugin `name`.
    pub fn register<F>(&mut self, name: impl Into<String>, factory: F)
    where
        F: Fn(&PluginParams) -> Result<Box<dyn TraitPlugin>, String> + Send + Sync + 'static,
    {
        self.factories.insert(name.into(), Box::new(factory));
    }

    /// The registered plugin names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.factories.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The factory registered as `name`.
    pub(crate) fn factory(&self, name: &str) -> Option<&PluginFactory> {
        self.factories.get(name).map(|f| &**f)
    }
}

impl Default for PluginRegistry {
    fn default() -> PluginRegistry {
        PluginRegistry::with_builtins()
    }
}

impl fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginRegistry")
            .field("plugins", &self.names())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Value {
        sonic_rs::from_str(text).unwrap()
    }

    #[test]
    fn python_equality_between_params_and_json() {
        assert!(ParamValue::Int(1).equals_json(&json("1")));
        assert!(ParamValue::Int(1).equals_json(&json("1.0")));
        assert!(ParamValue::Float(2.5).equals_json(&json("2.5")));
        assert!(ParamValue::Bool(true).equals_json(&json("1")));
        assert!(ParamValue::Bool(true).equals_json(&json("true")));
        assert!(!ParamValue::Bool(false).equals_json(&json("true")));
        assert!(ParamValue::Text("a".into()).equals_json(&json("\"a\"")));
        assert!(!ParamValue::Text("1".into()).equals_json(&json("1")));
        assert!(!ParamValue::Int(1).equals_json(&json("\"1\"")));
        assert!(ParamValue::Null.equals_json(&json("null")));
        let list = ParamValue::List(vec![ParamValue::Int(1), ParamValue::Text("x".into())]);
        assert!(list.equals_json(&json("[1, \"x\"]")));
        assert!(!list.equals_json(&json("[1]")));
        let map = ParamValue::Map(vec![
            ("b".into(), ParamValue::Int(2)),
            ("a".into(), ParamValue::Int(1)),
        ]);
        assert!(map.equals_json(&json("{\"a\": 1, \"b\": 2}")));
        assert!(!map.equals_json(&json("{\"a\": 1, \"b\": 3}")));
        assert!(!map.equals_json(&json("{\"a\": 1}")));
    }

    #[test]
    fn unknown_parameters_are_named() {
        let params = PluginParams::new(vec![("segmnet".into(), ParamValue::Int(1))]);
        assert_eq!(
            params.check_known(&["separator", "segment"]).unwrap_err(),
            "unknown parameter `segmnet` (expected `separator`, `segment`)"
        );
    }

    #[test]
    fn registry_lists_builtins_and_custom_plugins() {
        struct Constant;
        impl TraitPlugin for Constant {
            fn trait_value<'a>(&self, _: &[FieldMatch<'a>]) -> Option<PluginValue<'a>> {
                Some(PluginValue::Int(7))
            }
        }
        let mut registry = PluginRegistry::with_builtins();
        registry.register("constant", |_| {
            Ok(Box::new(Constant) as Box<dyn TraitPlugin>)
        });
        assert_eq!(registry.names(), ["bitfield", "constant", "split"]);
        let plugin = (registry.factory("constant").unwrap())(&PluginParams::default()).unwrap();
        assert_eq!(plugin.trait_value(&[]), Some(PluginValue::Int(7)));
        assert!(registry.factory("nope").is_none());
        assert!(PluginRegistry::empty().names().is_empty());
    }
}
