//! `triggers.yaml`: trigger definitions, their validation, and the per-event decisions —
//! does an event match, which stream does it belong to, when does a stream expire or fire.
//!
//! Loading is strict about what would make a trigger meaningless (no name, no expiration, no
//! match criteria, no pipeline, unparsable expressions, unknown criterion types) and lenient
//! about the rest: unknown keys are warnings that suggest the nearest known key, since
//! StackTach silently ignored them (its example misspells `map_distingushed_by`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use tach_distiller::Event;
use tach_timex::{TimexValue, Variables};

use super::criteria::{Criteria, Expression};
use super::debug::{MismatchReason, TriggerDebug};
use super::distinguish::{self, DistinguishedBy, DistinguishingValues};
use super::stream::FireState;
use crate::error::{Error, Result};
use crate::keys;

/// Keys a trigger definition may have.
const TRIGGER_KEYS: &[&str] = &[
    "name",
    "debug_level",
    "distinguished_by",
    "expiration",
    "fire_pipeline",
    "expire_pipeline",
    "fire_delay",
    "match_criteria",
    "fire_criteria",
    "load_criteria",
];

/// A trigger: which events it collects into streams, how they are split, and when a stream
/// fires or expires.
#[derive(Debug, Clone)]
pub struct TriggerDefinition {
    /// `name`: unique; streams carry it.
    pub name: String,
    /// `distinguished_by`: the traits that split events into streams.
    pub distinguished_by: Vec<DistinguishedBy>,
    /// `expiration`: when a stream expires, with `$first` and `$last` (first and last event
    /// times of the stream).
    pub expiration: Expression,
    /// `fire_pipeline`: run when the stream fires.
    pub fire_pipeline: Option<String>,
    /// `expire_pipeline`: run when the stream expires without firing.
    pub expire_pipeline: Option<String>,
    /// `fire_delay`: how long after the fire criteria are met the stream fires (default 0).
    pub fire_delay: Duration,
    /// `match_criteria`: an event joins a stream when one of these accepts it.
    pub match_criteria: Vec<Criteria>,
    /// `fire_criteria`: a stream is ready to fire when each is met by `number` of its events.
    pub fire_criteria: Vec<Criteria>,
    /// `debug_level`: 0 no debug statistics, 1 counters, 2 and up counters and reasons.
    pub debug_level: u8,
}

/// A loaded `triggers.yaml`.
#[derive(Debug, Clone)]
pub struct TriggerFile {
    /// The file.
    pub path: PathBuf,
    /// The triggers, in file order.
    pub triggers: Vec<TriggerDefinition>,
    /// What was odd but accepted (unknown keys, keys without effect).
    pub warnings: Vec<String>,
}

/// Loads a `triggers.yaml`; warnings are logged and returned.
///
/// # Errors
/// When the file cannot be read or parsed, or a definition is invalid: the message names the
/// file, the trigger and the reason.
pub fn load_triggers(path: &Path) -> Result<TriggerFile> {
    let value = keys::load_yaml(path)?;
    let file = triggers_from_value(&value, path)?;
    for warning in &file.warnings {
        tracing::warn!(file = %path.display(), %warning, "Configuration warning.");
    }
    Ok(file)
}

/// Parses the text of a `triggers.yaml`; `path` only names it in messages.
///
/// # Errors
/// As [`load_triggers`], except reading.
pub fn parse_triggers(text: &str, path: &Path) -> Result<TriggerFile> {
    let value = keys::parse_yaml(text, path)?;
    triggers_from_value(&value, path)
}

/// Reads trigger definitions from a parsed file.
fn triggers_from_value(value: &Value, path: &Path) -> Result<TriggerFile> {
    let file = path.display().to_string();
    let mut warnings = Vec::new();
    let items = match value {
        Value::Array(items) => items.as_slice(),
        Value::Null => {
            warnings.push(format!("{file}: no trigger definitions"));
            &[]
        }
        other => {
            return Err(Error::Invalid {
                file,
                what: "the file".to_string(),
                reason: format!(
                    "expected a list of trigger definitions, found {}",
                    keys::kind(other)
                ),
            });
        }
    };
    let mut triggers: Vec<TriggerDefinition> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let trigger = TriggerDefinition::from_value(item, &file, index + 1, &mut warnings)?;
        if let Some(first) = triggers.iter().position(|t| t.name == trigger.name) {
            return Err(Error::Invalid {
                file,
                what: format!("trigger `{}`", trigger.name),
                reason: format!("defined twice (trigger #{} and #{})", first + 1, index + 1),
            });
        }
        triggers.push(trigger);
    }
    Ok(TriggerFile {
        path: path.to_path_buf(),
        triggers,
        warnings,
    })
}

/// `$first` and `$last` for the expiration; `$timestamp` is `$last`.
struct FirstLast {
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

impl Variables for FirstLast {
    fn get(&self, name: &str) -> Option<DateTime<Utc>> {
        match name {
            "first" => Some(self.first),
            "last" | "timestamp" => Some(self.last),
            _ => None,
        }
    }
}

impl TriggerDefinition {
    /// Reads one definition; `index` (from 1) names it when it has no name.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the file, the trigger and the reason.
    pub fn from_value(
        value: &Value,
        file: &str,
        index: usize,
        warnings: &mut Vec<String>,
    ) -> Result<Self> {
        let fail = |what: String, reason: String| Error::Invalid {
            file: file.to_string(),
            what,
            reason,
        };
        let Value::Object(map) = value else {
            return Err(fail(
                format!("trigger #{index}"),
                format!("expected a mapping, found {}", keys::kind(value)),
            ));
        };
        let name = match map.get("name") {
            Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
            Some(Value::String(_)) => {
                return Err(fail(format!("trigger #{index}"), "`name` is empty".into()));
            }
            Some(other) => {
                return Err(fail(
                    format!("trigger #{index}"),
                    format!("`name` must be a string, found {}", keys::kind(other)),
                ));
            }
            None => {
                return Err(fail(
                    format!("trigger #{index}"),
                    "missing required key `name`".into(),
                ));
            }
        };
        let what = format!("trigger `{name}`");
        let context = format!("{file}: {what}");
        let invalid = |reason: String| fail(what.clone(), reason);

        for key in map.keys() {
            match key.as_str() {
                "load_criteria" => warnings.push(format!(
                    "{context}: `load_criteria` is not used by tach; ignored"
                )),
                k if TRIGGER_KEYS.contains(&k) => {}
                k => warnings.push(keys::unknown_key(&context, k, TRIGGER_KEYS)),
            }
        }

        let debug_level = match map.get("debug_level") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .ok_or_else(|| {
                    invalid(format!("`debug_level`: expected 0, 1 or 2, found `{v}`"))
                })?,
        };
        let distinguished_by = distinguish::parse_distinguished_by(
            map.get("distinguished_by").unwrap_or(&Value::Null),
        )
        .map_err(&invalid)?;

        let expiration = match map.get("expiration") {
            Some(Value::String(text)) => Expression::parse(text)
                .map_err(|e| invalid(format!("`expiration` `{text}`: {e}")))?,
            Some(other) => {
                return Err(invalid(format!(
                    "`expiration`: expected a time expression such as \"$last + 1h\", found {}",
                    keys::kind(other)
                )));
            }
            None => return Err(invalid("missing required key `expiration`".into())),
        };
        // Only $first, $last (and $timestamp) exist for expirations: catch others at load.
        let probe = FirstLast {
            first: DateTime::UNIX_EPOCH,
            last: DateTime::UNIX_EPOCH,
        };
        if let Err(e) = expiration.evaluate(&probe, DateTime::UNIX_EPOCH) {
            return Err(invalid(format!(
                "`expiration` `{}`: {e} (only $first and $last are available)",
                expiration.text()
            )));
        }

        let pipeline = |key: &str| -> Result<Option<String>> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(p)) if p.trim().is_empty() => Ok(None),
                Some(Value::String(p)) => Ok(Some(p.clone())),
                Some(other) => Err(invalid(format!(
                    "`{key}`: expected a pipeline name, found {}",
                    keys::kind(other)
                ))),
            }
        };
        let fire_pipeline = pipeline("fire_pipeline")?;
        let expire_pipeline = pipeline("expire_pipeline")?;
        if fire_pipeline.is_none() && expire_pipeline.is_none() {
            return Err(invalid(
                "at least one of `fire_pipeline` or `expire_pipeline` is required".into(),
            ));
        }

        let fire_delay = match map.get("fire_delay") {
            None | Some(Value::Null) => Duration::ZERO,
            Some(v) => keys::seconds(v).map_err(|e| invalid(format!("`fire_delay`: {e}")))?,
        };
        TimeDelta::from_std(fire_delay)
            .map_err(|_| invalid(format!("`fire_delay`: {fire_delay:?} is too long")))?;

        let match_criteria = criteria_list(
            map.get("match_criteria"),
            "match_criteria",
            &context,
            warnings,
        )
        .map_err(&invalid)?
        .ok_or_else(|| invalid("missing required key `match_criteria`".into()))?;
        if match_criteria.is_empty() {
            return Err(invalid(
                "`match_criteria` is empty: the trigger would match no event".into(),
            ));
        }
        let fire_criteria = criteria_list(
            map.get("fire_criteria"),
            "fire_criteria",
            &context,
            warnings,
        )
        .map_err(&invalid)?
        .ok_or_else(|| invalid("missing required key `fire_criteria`".into()))?;

        for (i, criteria) in match_criteria.iter().enumerate() {
            if criteria.number != 1 {
                warnings.push(format!(
                    "{context}: match_criteria[{i}]: `number` only applies to fire criteria; ignored"
                ));
            }
            for (dist, _) in &criteria.map_distinguished_by {
                if !distinguished_by.iter().any(|d| &d.name == dist) {
                    warnings.push(format!(
                        "{context}: match_criteria[{i}]: map_distinguished_by maps `{dist}`, \
                         which is not in distinguished_by; ignored"
                    ));
                }
            }
        }
        for (i, criteria) in fire_criteria.iter().enumerate() {
            if !criteria.map_distinguished_by.is_empty() {
                warnings.push(format!(
                    "{context}: fire_criteria[{i}]: `map_distinguished_by` only applies to match \
                     criteria; ignored"
                ));
            }
        }

        Ok(Self {
            name,
            distinguished_by,
            expiration,
            fire_pipeline,
            expire_pipeline,
            fire_delay,
            match_criteria,
            fire_criteria,
            debug_level,
        })
    }

    /// The index of the first match criterion that accepts the event.
    pub fn matches(&self, event: &Event) -> Option<usize> {
        self.match_criteria.iter().position(|c| c.matches(event))
    }

    /// As [`Self::matches`], counting the check and each criterion's failure reason.
    pub fn matches_counted(&self, event: &Event, debug: &mut TriggerDebug) -> Option<usize> {
        debug.match_checks += 1;
        for (index, criteria) in self.match_criteria.iter().enumerate() {
            match criteria.check(event) {
                Ok(()) => return Some(index),
                Err(reason) => debug.match_failures.bump(reason),
            }
        }
        debug
            .match_failures
            .bump(MismatchReason::NoMatchingCriteria);
        None
    }

    /// The event's distinguishing values, the sources mapped by match criterion `criterion`;
    /// `None` when a source trait is missing (or unusable for its expression).
    pub fn distinguishing_values(
        &self,
        event: &Event,
        criterion: usize,
    ) -> Option<DistinguishingValues> {
        let criteria = self.match_criteria.get(criterion)?;
        distinguish::compute(&self.distinguished_by, criteria, event)
    }

    /// Matches the event and computes its distinguishing values: `Some` when it belongs to a
    /// stream of this trigger. Counts into `debug` when given.
    pub fn match_event(
        &self,
        event: &Event,
        debug: Option<&mut TriggerDebug>,
    ) -> Option<DistinguishingValues> {
        match debug {
            None => {
                let criterion = self.matches(event)?;
                self.distinguishing_values(event, criterion)
            }
            Some(debug) => {
                let criterion = self.matches_counted(event, debug)?;
                let values = self.distinguishing_values(event, criterion);
                match values {
                    Some(_) => debug.match_passed += 1,
                    None => debug
                        .match_failures
                        .bump(MismatchReason::DistinguishingTraitMissing),
                }
                values
            }
        }
    }

    /// When a stream with these first and last event times expires (`$timestamp` is `$last`;
    /// a range gives its beginning, as winchester).
    ///
    /// # Errors
    /// [`Error::Evaluate`] if the expression cannot be evaluated (loading already rejects
    /// expressions that name other variables).
    pub fn expire_timestamp(
        &self,
        first: DateTime<Utc>,
        last: DateTime<Utc>,
    ) -> Result<DateTime<Utc>> {
        let vars = FirstLast { first, last };
        match self.expiration.evaluate(&vars, last) {
            Ok(TimexValue::Timestamp(t)) => Ok(t),
            Ok(TimexValue::Range(r)) => Ok(r.begin),
            Err(reason) => Err(Error::Evaluate {
                trigger: self.name.clone(),
                what: "expiration",
                expression: self.expiration.text().to_string(),
                reason,
            }),
        }
    }

    /// When a stream whose fire criteria were met at `now` fires: `now + fire_delay`.
    pub fn fire_timestamp(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        // Loading checked that fire_delay fits a TimeDelta.
        let delay = TimeDelta::from_std(self.fire_delay).unwrap_or(TimeDelta::MAX);
        now.checked_add_signed(delay)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Fresh fire-criteria counters for a new stream of this trigger.
    pub fn fire_state(&self) -> FireState {
        FireState::new(self)
    }
}

/// Reads a list of criteria; `Ok(None)` when the key is absent.
fn criteria_list(
    value: Option<&Value>,
    key: &str,
    context: &str,
    warnings: &mut Vec<String>,
) -> std::result::Result<Option<Vec<Criteria>>, String> {
    let items = match value {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(Vec::new())),
        Some(Value::Array(items)) => items.as_slice(),
        Some(single @ Value::Object(_)) => std::slice::from_ref(single),
        Some(other) => {
            return Err(format!(
                "`{key}`: expected a list of criteria, found {}",
                keys::kind(other)
            ));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            Criteria::from_value(item, &format!("{context}: {key}[{i}]"), warnings)
                .map_err(|e| format!("{key}[{i}]: {e}"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map(Some)
}
