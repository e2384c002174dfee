//! `pipelines.yaml`: `name: [handler, {name: handler, params: {...}}, ...]`, checked against the
//! handler names `winchester.yaml`'s `pipeline_handlers` declares (each mapped to the tach
//! handler that runs it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::keys;
use crate::trigger::TriggerDefinition;

/// Keys a handler entry may have.
const HANDLER_KEYS: &[&str] = &["name", "params"];

/// One handler of a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerConfig {
    /// The name as written in pipelines.yaml (a key of `pipeline_handlers`).
    pub name: String,
    /// The tach handler that runs it (the registry name, e.g. `usage`).
    pub handler: String,
    /// `params`, a mapping (empty when absent).
    pub params: Value,
}

/// One pipeline: its handlers in order.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineDefinition {
    /// The pipeline's name (what triggers' `fire_pipeline` / `expire_pipeline` name).
    pub name: String,
    /// The handlers, run in order.
    pub handlers: Vec<HandlerConfig>,
}

/// A loaded `pipelines.yaml`.
#[derive(Debug, Clone, Default)]
pub struct PipelineConfig {
    /// The file.
    pub path: PathBuf,
    /// The pipelines by name.
    pub pipelines: BTreeMap<String, PipelineDefinition>,
    /// What was odd but accepted (unknown keys).
    pub warnings: Vec<String>,
}

impl PipelineConfig {
    /// Loads a `pipelines.yaml`; `handlers` is `pipeline_handlers` (name → tach handler).
    /// Warnings are logged and kept in [`Self::warnings`].
    ///
    /// # Errors
    /// When the file cannot be read or parsed, or a pipeline is malformed or names a handler
    /// `handlers` does not declare (the message names the pipeline and the handler).
    pub fn load(path: &Path, handlers: &BTreeMap<String, String>) -> Result<Self> {
        let value = keys::load_yaml(path)?;
        let config = Self::from_value(&value, path, handlers)?;
        for warning in &config.warnings {
            tracing::warn!(file = %path.display(), %warning, "Configuration warning.");
        }
        Ok(config)
    }

    /// Parses the text of a `pipelines.yaml`; `path` only names it in messages.
    ///
    /// # Errors
    /// As [`Self::load`], except reading.
    pub fn parse(text: &str, path: &Path, handlers: &BTreeMap<String, String>) -> Result<Self> {
        let value = keys::parse_yaml(text, path)?;
        Self::from_value(&value, path, handlers)
    }

    /// Reads pipelines from a parsed file.
    ///
    /// # Errors
    /// As [`Self::load`], except reading and parsing.
    pub fn from_value(
        value: &Value,
        path: &Path,
        handlers: &BTreeMap<String, String>,
    ) -> Result<Self> {
        let file = path.display().to_string();
        let mut config = Self {
            path: path.to_path_buf(),
            ..Self::default()
        };
        let map = match value {
            Value::Object(map) => map,
            Value::Null => {
                config
                    .warnings
                    .push(format!("{file}: no pipelines defined"));
                return Ok(config);
            }
            other => {
                return Err(Error::Invalid {
                    file,
                    what: "the file".to_string(),
                    reason: format!(
                        "expected a mapping of pipeline name to handler list, found {}",
                        keys::kind(other)
                    ),
                });
            }
        };
        for (name, list) in map {
            let what = format!("pipeline `{name}`");
            let invalid = |reason: String| Error::Invalid {
                file: file.clone(),
                what: what.clone(),
                reason,
            };
            let items = match list {
                Value::Array(items) => items.as_slice(),
                Value::Null => &[],
                other => {
                    return Err(invalid(format!(
                        "expected a list of handlers, found {}",
                        keys::kind(other)
                    )));
                }
            };
            let mut pipeline = PipelineDefinition {
                name: name.clone(),
                handlers: Vec::with_capacity(items.len()),
            };
            for (i, item) in items.iter().enumerate() {
                let context = format!("{file}: {what}: handler #{}", i + 1);
                let (handler_name, params) =
                    handler_entry(item, &context, &mut config.warnings).map_err(&invalid)?;
                let Some(handler) = handlers.get(&handler_name) else {
                    let declared: Vec<&str> = handlers.keys().map(String::as_str).collect();
                    let hint = match keys::nearest(&handler_name, &declared) {
                        Some(near) => format!("did you mean `{near}`? "),
                        None => String::new(),
                    };
                    return Err(invalid(format!(
                        "unknown handler `{handler_name}` ({hint}winchester.yaml's \
                         pipeline_handlers declares: {})",
                        if declared.is_empty() {
                            "none".to_string()
                        } else {
                            declared.join(", ")
                        }
                    )));
                };
                pipeline.handlers.push(HandlerConfig {
                    name: handler_name,
                    handler: handler.clone(),
                    params,
                });
            }
            config.pipelines.insert(name.clone(), pipeline);
        }
        Ok(config)
    }

    /// The pipeline named `name`.
    pub fn get(&self, name: &str) -> Option<&PipelineDefinition> {
        self.pipelines.get(name)
    }

    /// Checks that every pipeline the triggers name exists.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the trigger and the missing pipeline.
    pub fn check_triggers(&self, triggers: &[TriggerDefinition]) -> Result<()> {
        for trigger in triggers {
            let named = [
                ("fire_pipeline", &trigger.fire_pipeline),
                ("expire_pipeline", &trigger.expire_pipeline),
            ];
            for (key, pipeline) in named {
                let Some(pipeline) = pipeline else { continue };
                if self.pipelines.contains_key(pipeline) {
                    continue;
                }
                let known: Vec<&str> = self.pipelines.keys().map(String::as_str).collect();
                return Err(Error::Invalid {
                    file: self.path.display().to_string(),
                    what: format!("trigger `{}`", trigger.name),
                    reason: format!(
                        "`{key}` names pipeline `{pipeline}`, which is not defined ({})",
                        keys::suggestion(pipeline, &known)
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Reads one handler entry: `name` or `{name: .., params: {..}}`.
fn handler_entry(
    item: &Value,
    context: &str,
    warnings: &mut Vec<String>,
) -> std::result::Result<(String, Value), String> {
    match item {
        Value::String(name) => Ok((name.clone(), Value::Object(serde_json::Map::new()))),
        Value::Object(map) => {
            for key in map.keys().filter(|k| !HANDLER_KEYS.contains(&k.as_str())) {
                warnings.push(keys::unknown_key(context, key, HANDLER_KEYS));
            }
            let name = match map.get("name") {
                Some(Value::String(name)) => name.clone(),
                Some(other) => {
                    return Err(format!(
                        "a handler's `name` must be a string, found {}",
                        keys::kind(other)
                    ));
                }
                None => return Err(format!("a handler entry has no `name` ({item})")),
            };
            let params = match map.get("params") {
                None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
                Some(params @ Value::Object(_)) => params.clone(),
                Some(other) => {
                    return Err(format!(
                        "handler `{name}`: `params` must be a mapping, found {}",
                        keys::kind(other)
                    ));
                }
            };
            Ok((name, params))
        }
        other => Err(format!(
            "expected a handler name or {{name: .., params: ..}}, found {}",
            keys::kind(other)
        )),
    }
}
