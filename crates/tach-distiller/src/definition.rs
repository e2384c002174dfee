//! Event definitions: validating the YAML tree and compiling it into matchers and traits.
//!
//! The file is a list of `{event_type, traits}`. Every definition starts from the default
//! traits (`service`, `request_id`, `tenant_id`), which its own traits override by name.
//! A trait is `{type?, fields, plugin?}`; paths are compiled here, plugins instantiated here,
//! so a loaded definition never fails on configuration again. Unknown keys are ignored, as
//! stackdistiller ignored them, but each one is reported as a warning with the nearest
//! known key. Evaluating a compiled trait on a notification is also done here.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use sonic_rs::Value;

use crate::convert::{Converted, TraitType, convert_json, convert_plugin};
use crate::error::DefinitionError;
use crate::glob::EventTypeMatcher;
use crate::path::FieldPath;
use crate::plugin::{FieldMatch, ParamValue, PluginParams, PluginRegistry, TraitPlugin};
use crate::resolve::{Resolver, Slots};
use crate::yaml::{self, Node};

/// Keys the flat event form uses for itself; a trait may not take them.
const RESERVED_TRAIT_NAMES: [&str; 3] = ["message_id", "event_type", "timestamp"];

/// One compiled definition.
pub(crate) struct EventDefinition {
    pub matcher: EventTypeMatcher,
    /// Sorted by name, names unique.
    pub traits: Vec<TraitDefinition>,
    /// Finds the values of all the traits' plain paths in one pass.
    pub resolver: Resolver,
}

impl EventDefinition {
    fn new(matcher: EventTypeMatcher, traits: impl IntoIterator<Item = TraitDefinition>) -> Self {
        let mut resolver = Resolver::new();
        let traits: Vec<TraitDefinition> = traits
            .into_iter()
            .map(|mut t| {
                t.fields.bind(&mut resolver);
                t
            })
            .collect();
        resolver.finish();
        EventDefinition {
            matcher,
            traits,
            resolver,
        }
    }
}

/// One compiled trait.
pub(crate) struct TraitDefinition {
    pub name: Box<str>,
    pub ty: TraitType,
    pub fields: FieldPath,
    pub plugin: Option<Box<dyn TraitPlugin>>,
}

impl TraitDefinition {
    /// The trait's value in `doc`: `Ok(None)` when absent, `Err` when not convertible.
    /// `slots` come from the definition's resolver.
    pub fn evaluate<'v>(&self, doc: &'v Value, slots: &Slots<'v>) -> Converted {
        match &self.plugin {
            None => match self.fields.first(doc, slots) {
                Some(value) => convert_json(self.ty, value),
                None => Ok(None),
            },
            Some(plugin) if self.fields.is_plain() && self.fields.alternative_count() <= 8 => {
                // The usual case (`fields: publisher_id`, `plugin: split`): at most one match
                // per alternative, paths known in advance, so no allocation.
                let mut buffer = [FieldMatch {
                    path: "",
                    value: doc,
                }; 8];
                let mut n = 0;
                self.fields.for_each_plain(doc, slots, |path, value| {
                    buffer[n] = FieldMatch { path, value };
                    n += 1;
                });
                match plugin.trait_value(&buffer[..n]) {
                    Some(value) => convert_plugin(self.ty, value),
                    None => Ok(None),
                }
            }
            Some(plugin) => {
                let mut found: Vec<(Cow<'_, str>, &Value)> = Vec::new();
                self.fields.collect(doc, slots, &mut found);
                let matches: Vec<FieldMatch<'_>> = found
                    .iter()
                    .map(|(path, value)| FieldMatch { path, value })
                    .collect();
                match plugin.trait_value(&matches) {
                    Some(value) => convert_plugin(self.ty, value),
                    None => Ok(None),
                }
            }
        }
    }
}

/// A loaded file: definitions in file order, and warnings about ignored keys.
pub(crate) struct Loaded {
    pub definitions: Vec<EventDefinition>,
    pub warnings: Vec<String>,
}

/// The definition `catch_all_notifications` adds: every event type, default traits only.
pub(crate) fn catch_all() -> EventDefinition {
    EventDefinition::new(
        EventTypeMatcher::new(&["*"]),
        default_traits().into_values(),
    )
}

fn default_traits() -> BTreeMap<Box<str>, TraitDefinition> {
    let text = |name: &str, paths: &[&[&str]]| {
        let fields = FieldPath::union(
            paths
                .iter()
                .map(|keys| FieldPath::from_keys(keys))
                .collect(),
        );
        let definition = TraitDefinition {
            name: name.into(),
            ty: TraitType::Text,
            fields,
            plugin: None,
        };
        (Box::from(name), definition)
    };
    BTreeMap::from([
        text("service", &[&["publisher_id"]]),
        text("request_id", &[&["_context_request_id"]]),
        text(
            "tenant_id",
            &[&["payload", "tenant_id"], &["_context_tenant"]],
        ),
    ])
}

/// Parses and compiles a definition file.
pub(crate) fn load(
    text: &str,
    origin: &Path,
    registry: &PluginRegistry,
) -> Result<Loaded, DefinitionError> {
    let doc = yaml::parse(text).map_err(|e| DefinitionError::Syntax {
        origin: origin.to_owned(),
        message: e.message,
        line: e.line,
        column: e.column,
    })?;
    let items = match doc {
        None => Vec::new(),
        Some(Node {
            value: yaml::Value::Seq(items),
            ..
        }) => items,
        Some(other) => {
            return Err(DefinitionError::File {
                origin: origin.to_owned(),
                message: format!(
                    "expected a list of event definitions, found {}",
                    other.kind()
                ),
                line: other.line,
            });
        }
    };
    let mut loaded = Loaded {
        definitions: Vec::with_capacity(items.len()),
        warnings: Vec::new(),
    };
    for (index, item) in items.iter().enumerate() {
        let mut context = Context {
            origin,
            index,
            event_type: None,
            warnings: &mut loaded.warnings,
        };
        let definition = context.definition(item, registry)?;
        loaded.definitions.push(definition);
    }
    Ok(loaded)
}

/// Where in the file we are, for messages.
struct Context<'a> {
    origin: &'a Path,
    index: usize,
    event_type: Option<String>,
    warnings: &'a mut Vec<String>,
}

impl Context<'_> {
    fn definition_error(&self, message: String, line: u64) -> DefinitionError {
        DefinitionError::Definition {
            origin: self.origin.to_owned(),
            index: self.index,
            event_type: self.event_type.clone(),
            message,
            line,
        }
    }

    fn trait_error(&self, name: &str, message: String, line: u64) -> DefinitionError {
        DefinitionError::Trait {
            origin: self.origin.to_owned(),
            index: self.index,
            event_type: self.event_type.clone(),
            trait_name: name.to_owned(),
            message,
            line,
        }
    }

    fn warn_unknown_keys(&mut self, map: &Node, known: &[&str], trait_name: Option<&str>) {
        let Some(entries) = map.as_map() else { return };
        for (key, _) in entries {
            let key_text = key.to_string();
            if known.contains(&key_text.as_str()) {
                continue;
            }
            let mut warning = format!("{}: definition #{}", self.origin.display(), self.index);
            if let Some(event_type) = &self.event_type {
                warning.push_str(&format!(" (event_type {event_type})"));
            }
            if let Some(name) = trait_name {
                warning.push_str(&format!(": trait `{name}`"));
            }
            warning.push_str(&format!(": unknown key `{key_text}` ignored"));
            if let Some(near) = nearest(&key_text, known) {
                warning.push_str(&format!(" (did you mean `{near}`?)"));
            }
            if key.line > 0 {
                warning.push_str(&format!(" (line {})", key.line));
            }
            tracing::warn!(warning = %warning, "Event definition key ignored.");
            self.warnings.push(warning);
        }
    }

    fn definition(
        &mut self,
        item: &Node,
        registry: &PluginRegistry,
    ) -> Result<EventDefinition, DefinitionError> {
        if item.as_map().is_none() {
            let message = format!(
                "expected a mapping with `event_type` and `traits`, found {}",
                item.kind()
            );
            return Err(self.definition_error(message, item.line));
        }
        let event_type = item.get("event_type");
        self.event_type = event_type.and_then(|n| match &n.value {
            yaml::Value::Str(s) => Some(s.clone()),
            yaml::Value::Seq(_) => Some(n.to_string()),
            _ => None,
        });
        let Some(event_type) = event_type else {
            return Err(self.definition_error("missing `event_type`".to_owned(), item.line));
        };
        let patterns = self.event_type_patterns(event_type)?;
        let Some(traits) = item.get("traits") else {
            return Err(self.definition_error("missing `traits`".to_owned(), item.line));
        };
        let Some(entries) = traits.as_map() else {
            let message = format!("`traits` must be a mapping, found {}", traits.kind());
            return Err(self.definition_error(message, traits.line));
        };
        self.warn_unknown_keys(item, &["event_type", "traits"], None);
        let mut compiled = default_traits();
        for (key, spec) in entries {
            let name = key.to_string();
            let definition = self.trait_definition(&name, key.line, spec, registry)?;
            compiled.insert(name.into_boxed_str(), definition);
        }
        Ok(EventDefinition::new(
            EventTypeMatcher::new(&patterns),
            compiled.into_values(),
        ))
    }

    fn event_type_patterns(&self, node: &Node) -> Result<Vec<String>, DefinitionError> {
        match &node.value {
            yaml::Value::Str(s) => Ok(vec![s.clone()]),
            yaml::Value::Seq(items) if items.is_empty() => {
                Err(self.definition_error("`event_type` is an empty list".to_owned(), node.line))
            }
            yaml::Value::Seq(items) => items
                .iter()
                .map(|item| match item.as_str() {
                    Some(s) => Ok(s.to_owned()),
                    None => Err(self.definition_error(
                        format!(
                            "`event_type` entries must be strings, found {}",
                            item.kind()
                        ),
                        item.line,
                    )),
                })
                .collect(),
            _ => Err(self.definition_error(
                format!(
                    "`event_type` must be a glob or a list of globs, found {}",
                    node.kind()
                ),
                node.line,
            )),
        }
    }

    fn trait_definition(
        &mut self,
        name: &str,
        key_line: u64,
        spec: &Node,
        registry: &PluginRegistry,
    ) -> Result<TraitDefinition, DefinitionError> {
        if RESERVED_TRAIT_NAMES.contains(&name) {
            let message = "this name is reserved for the event itself".to_owned();
            return Err(self.trait_error(name, message, key_line));
        }
        if spec.as_map().is_none() {
            let message = format!("expected a mapping with `fields`, found {}", spec.kind());
            return Err(self.trait_error(name, message, spec.line.max(key_line)));
        }
        self.warn_unknown_keys(spec, &["type", "fields", "plugin"], Some(name));
        let ty = match spec.get("type") {
            None => TraitType::Text,
            Some(node) => node
                .as_str()
                .and_then(TraitType::from_name)
                .ok_or_else(|| {
                    self.trait_error(name, format!("unknown type `{node}`"), node.line)
                })?,
        };
        let plugin = match spec.get("plugin") {
            None => None,
            Some(node) => Some(self.plugin(name, node, registry)?),
        };
        let Some(fields) = spec.get("fields") else {
            return Err(self.trait_error(name, "missing `fields`".to_owned(), key_line));
        };
        let fields = self.fields(name, fields)?;
        Ok(TraitDefinition {
            name: name.into(),
            ty,
            fields,
            plugin,
        })
    }

    fn fields(&self, name: &str, node: &Node) -> Result<FieldPath, DefinitionError> {
        let compile = |path_node: &Node| -> Result<FieldPath, DefinitionError> {
            let Some(path) = path_node.as_str() else {
                let message = format!(
                    "paths in `fields` must be strings, found {}",
                    path_node.kind()
                );
                return Err(self.trait_error(name, message, path_node.line));
            };
            FieldPath::compile(path).map_err(|e| {
                self.trait_error(name, format!("bad path `{path}`: {e}"), path_node.line)
            })
        };
        match &node.value {
            yaml::Value::Str(_) => compile(node),
            yaml::Value::Seq(items) if items.is_empty() => {
                Err(self.trait_error(name, "`fields` is an empty list".to_owned(), node.line))
            }
            yaml::Value::Seq(items) => Ok(FieldPath::union(
                items.iter().map(compile).collect::<Result<Vec<_>, _>>()?,
            )),
            _ => Err(self.trait_error(
                name,
                format!(
                    "`fields` must be a path or a list of paths, found {}",
                    node.kind()
                ),
                node.line,
            )),
        }
    }

    fn plugin(
        &mut self,
        name: &str,
        node: &Node,
        registry: &PluginRegistry,
    ) -> Result<Box<dyn TraitPlugin>, DefinitionError> {
        let (plugin_name, name_line, params) = match &node.value {
            yaml::Value::Str(s) => (s.clone(), node.line, PluginParams::default()),
            yaml::Value::Map(_) => {
                self.warn_unknown_keys(node, &["name", "parameters"], Some(name));
                let plugin_name = match node.get("name") {
                    Some(n) => match n.as_str() {
                        Some(s) => (s.to_owned(), n.line),
                        None => {
                            let message =
                                format!("plugin `name` must be a string, found {}", n.kind());
                            return Err(self.trait_error(name, message, n.line));
                        }
                    },
                    None => {
                        let message = "plugin has no `name`".to_owned();
                        return Err(self.trait_error(name, message, node.line));
                    }
                };
                let params = match node.get("parameters") {
                    None => PluginParams::default(),
                    Some(p) => match param_value(p) {
                        ParamValue::Null => PluginParams::default(),
                        ParamValue::Map(entries) => PluginParams::new(entries),
                        other => {
                            let message = format!(
                                "plugin `parameters` must be a mapping, found {}",
                                other.kind()
                            );
                            return Err(self.trait_error(name, message, p.line));
                        }
                    },
                };
                (plugin_name.0, plugin_name.1, params)
            }
            _ => {
                let message = format!(
                    "`plugin` must be a name or a mapping with `name` and `parameters`, found {}",
                    node.kind()
                );
                return Err(self.trait_error(name, message, node.line));
            }
        };
        let Some(factory) = registry.factory(&plugin_name) else {
            let message = format!(
                "unknown plugin `{plugin_name}` (available: {})",
                registry.names().join(", ")
            );
            return Err(self.trait_error(name, message, name_line));
        };
        factory(&params).map_err(|e| {
            let params_line = node.get("parameters").map_or(node.line, |p| p.line);
            self.trait_error(name, format!("plugin `{plugin_name}`: {e}"), params_line)
        })
    }
}

/// A YAML node as a plugin parameter.
fn param_value(node: &Node) -> ParamValue {
    match &node.value {
        yaml::Value::Null => ParamValue::Null,
        yaml::Value::Bool(b) => ParamValue::Bool(*b),
        yaml::Value::Int(i) => ParamValue::Int(*i),
        yaml::Value::Float(f) => ParamValue::Float(*f),
        yaml::Value::Str(s) => ParamValue::Text(s.clone()),
        yaml::Value::Seq(items) => ParamValue::List(items.iter().map(param_value).collect()),
        yaml::Value::Map(entries) => ParamValue::Map(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), param_value(v)))
                .collect(),
        ),
    }
}

/// The known key closest to `key`, if it is a plausible typo (edit distance at most 2).
fn nearest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggestions() {
        assert_eq!(nearest("typ", &["type", "fields", "plugin"]), Some("type"));
        assert_eq!(
            nearest("field", &["type", "fields", "plugin"]),
            Some("fields")
        );
        assert_eq!(nearest("colour", &["type", "fields", "plugin"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
