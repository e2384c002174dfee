//! The distiller: raw notification bytes in, [`Event`] out.
//!
//! Parsing uses sonic-rs (a SIMD parser; a serde_json DOM alone is slower than the
//! 100k notifications/s target). An oslo.messaging 2.0 envelope is unwrapped. Definitions
//! are tried from the last in the file to the first, the catch-all (if enabled) last of
//! all. A [`Distiller`] is immutable after loading and shared between threads; its counters
//! are atomics updated only on the rare paths (drops and conversion failures).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, SubsecRound, Utc};
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use crate::convert::text_of;
use crate::definition::{self, EventDefinition};
use crate::error::{DefinitionError, NotificationError};
use crate::event::{Event, Trait};
use crate::plugin::PluginRegistry;

/// Turns notifications into events according to an event definitions file.
pub struct Distiller {
    /// In matching order: the file's definitions last to first, then the catch-all.
    definitions: Vec<EventDefinition>,
    warnings: Vec<String>,
    conversion_failures: AtomicU64,
    no_match: AtomicU64,
    events_without_traits: AtomicU64,
}

/// A snapshot of a distiller's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DistillStats {
    /// Trait values (and timestamps) that could not be converted to their type.
    pub conversion_failures: u64,
    /// Notifications dropped because no definition matched their event type.
    pub no_match: u64,
    /// Notifications dropped because none of their traits had a value.
    pub events_without_traits: u64,
}

impl Distiller {
    /// Loads definitions from a file, with the built-in plugins.
    ///
    /// # Errors
    ///
    /// The file cannot be read or its definitions are invalid.
    pub fn from_file(path: &Path, catch_all: bool) -> Result<Distiller, DefinitionError> {
        Distiller::from_file_with_plugins(path, catch_all, &PluginRegistry::with_builtins())
    }

    /// Loads definitions from a file, with the plugins of `registry`.
    ///
    /// # Errors
    ///
    /// The file cannot be read or its definitions are invalid.
    pub fn from_file_with_plugins(
        path: &Path,
        catch_all: bool,
        registry: &PluginRegistry,
    ) -> Result<Distiller, DefinitionError> {
        let text = std::fs::read_to_string(path).map_err(|source| DefinitionError::Read {
            path: path.to_owned(),
            source,
        })?;
        Distiller::from_yaml_with_plugins(&text, path, catch_all, registry)
    }

    /// Loads definitions from YAML text; `origin` names it in error messages.
    ///
    /// # Errors
    ///
    /// Invalid YAML or invalid definitions.
    pub fn from_yaml(
        yaml: &str,
        origin: &Path,
        catch_all: bool,
    ) -> Result<Distiller, DefinitionError> {
        Distiller::from_yaml_with_plugins(yaml, origin, catch_all, &PluginRegistry::with_builtins())
    }

    /// Loads definitions from YAML text with the plugins of `registry`.
    ///
    /// # Errors
    ///
    /// Invalid YAML or invalid definitions.
    pub fn from_yaml_with_plugins(
        yaml: &str,
        origin: &Path,
        catch_all: bool,
        registry: &PluginRegistry,
    ) -> Result<Distiller, DefinitionError> {
        let loaded = definition::load(yaml, origin, registry)?;
        let mut definitions = loaded.definitions;
        definitions.reverse();
        if catch_all && !definitions.iter().any(|d| d.matcher.is_catch_all()) {
            definitions.push(definition::catch_all());
        }
        tracing::debug!(
            origin = %origin.display(),
            definitions = definitions.len(),
            catch_all,
            "Event definitions loaded."
        );
        Ok(Distiller {
            definitions,
            warnings: loaded.warnings,
            conversion_failures: AtomicU64::new(0),
            no_match: AtomicU64::new(0),
            events_without_traits: AtomicU64::new(0),
        })
    }

    /// Warnings from loading (keys that were ignored), in file order.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Parses raw bytes (a bare notification or an oslo.messaging 2.0 envelope) and distils.
    ///
    /// `Ok(None)`: dropped (no definition matched, or no trait had a value; both counted).
    ///
    /// # Errors
    ///
    /// A poison message: not JSON, nested deeper than [`MAX_NESTING`], not an object, no
    /// `event_type` or `message_id` (as a string), or a bad envelope.
    pub fn distill_bytes(&self, raw: &[u8]) -> Result<Option<Event>, NotificationError> {
        check_nesting(raw)?;
        let doc: Value = sonic_rs::from_slice(raw)
            .map_err(|e| NotificationError::InvalidJson(json_error(&e)))?;
        let root = Root::scan(&doc).ok_or(NotificationError::NotAnObject)?;
        if let (Some(version), Some(message)) = (root.oslo_version, root.oslo_message) {
            check_envelope_version(version)?;
            let text = message
                .as_str()
                .ok_or(NotificationError::EnvelopeNotString)?;
            check_nesting(text.as_bytes())?;
            let inner: Value = sonic_rs::from_str(text)
                .map_err(|e| NotificationError::EnvelopeInvalidJson(json_error(&e)))?;
            let inner_root = Root::scan(&inner).ok_or(NotificationError::EnvelopeNotAnObject)?;
            return self.distill_root(&inner, &inner_root);
        }
        self.distill_root(&doc, &root)
    }

    /// Distils an already parsed notification (no envelope unwrapping).
    ///
    /// # Errors
    ///
    /// Not an object, or no `event_type` or `message_id` (as a string).
    pub fn distill_value(&self, doc: &Value) -> Result<Option<Event>, NotificationError> {
        let root = Root::scan(doc).ok_or(NotificationError::NotAnObject)?;
        self.distill_root(doc, &root)
    }

    fn distill_root(
        &self,
        doc: &Value,
        root: &Root<'_>,
    ) -> Result<Option<Event>, NotificationError> {
        let event_type = match root.event_type {
            None => return Err(NotificationError::NoEventType),
            Some(v) => v.as_str().ok_or(NotificationError::EventTypeNotString)?,
        };
        let message_id = match root.message_id {
            None => return Err(NotificationError::NoMessageId),
            Some(v) => v.as_str().ok_or(NotificationError::MessageIdNotString)?,
        };
        let Some(definition) = self
            .definitions
            .iter()
            .find(|d| d.matcher.is_match(event_type))
        else {
            self.no_match.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                event_type,
                message_id,
                "Notification dropped: no definition matched."
            );
            return Ok(None);
        };
        let timestamp = self.timestamp(root, event_type, message_id);
        let mut slots = Vec::with_capacity(definition.resolver.len());
        definition.resolver.resolve(doc, &mut slots);
        let mut traits = Vec::with_capacity(definition.traits.len());
        for t in &definition.traits {
            match t.evaluate(doc, &slots) {
                Ok(Some(value)) => traits.push(Trait {
                    name: t.name.to_string(),
                    value,
                }),
                Ok(None) => {}
                Err(failure) => {
                    self.conversion_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        trait_name = &*t.name,
                        trait_type = t.ty.name(),
                        event_type,
                        message_id,
                        value = %failure.value,
                        "Trait value could not be converted; trait left out."
                    );
                }
            }
        }
        if traits.is_empty() {
            self.events_without_traits.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                event_type,
                message_id,
                "Notification dropped: no trait had a value."
            );
            return Ok(None);
        }
        Ok(Some(Event {
            message_id: message_id.to_owned(),
            event_type: event_type.to_owned(),
            timestamp,
            traits,
        }))
    }

    /// `timestamp`, else `_context_timestamp`, else now. Unparsable values are counted,
    /// logged and skipped.
    fn timestamp(&self, root: &Root<'_>, event_type: &str, message_id: &str) -> DateTime<Utc> {
        let sources = [
            ("timestamp", root.timestamp),
            ("_context_timestamp", root.context_timestamp),
        ];
        for (key, value) in sources {
            let Some(value) = value else { continue };
            if value.is_null() || value.as_str() == Some("") {
                continue;
            }
            if let Some(at) = value.as_str().and_then(tach_timex::parse_datetime) {
                return at;
            }
            self.conversion_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                field = key,
                event_type,
                message_id,
                value = %text_of(value),
                "Notification timestamp is not a datetime; ignored."
            );
        }
        Utc::now().trunc_subsecs(6)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> DistillStats {
        DistillStats {
            conversion_failures: self.conversion_failures.load(Ordering::Relaxed),
            no_match: self.no_match.load(Ordering::Relaxed),
            events_without_traits: self.events_without_traits.load(Ordering::Relaxed),
        }
    }

    /// The number of definitions tried, catch-all included.
    pub fn definition_count(&self) -> usize {
        self.definitions.len()
    }
}

impl std::fmt::Debug for Distiller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distiller")
            .field("definitions", &self.definitions.len())
            .field("stats", &self.stats())
            .finish()
    }
}

/// The top-level keys the distiller itself reads, found in one pass over the object
/// (first occurrence wins, as with sonic-rs lookups).
#[derive(Default)]
struct Root<'v> {
    event_type: Option<&'v Value>,
    message_id: Option<&'v Value>,
    timestamp: Option<&'v Value>,
    context_timestamp: Option<&'v Value>,
    oslo_version: Option<&'v Value>,
    oslo_message: Option<&'v Value>,
}

impl<'v> Root<'v> {
    /// `None` if `doc` is not an object.
    fn scan(doc: &'v Value) -> Option<Root<'v>> {
        let mut root = Root::default();
        for (key, value) in doc.as_object()?.iter() {
            let slot = match key {
                "event_type" => &mut root.event_type,
                "message_id" => &mut root.message_id,
                "timestamp" => &mut root.timestamp,
                "_context_timestamp" => &mut root.context_timestamp,
                "oslo.version" => &mut root.oslo_version,
                "oslo.message" => &mut root.oslo_message,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        Some(root)
    }
}

/// The deepest nesting of arrays and objects accepted (Python's json gave up near 1000).
pub const MAX_NESTING: usize = 1000;

/// Rejects JSON nested deeper than [`MAX_NESTING`]: sonic-rs parses recursively (about 200
/// bytes of stack per level in release builds), and a hostile notification nested some ten
/// thousand levels deep would overflow a 2 MiB worker stack and abort the process.
/// Counting opening brackets is a vectorised pass (≈0.1 µs per notification); the exact scan
/// runs only for the rare documents with more than `MAX_NESTING` of them in all.
fn check_nesting(raw: &[u8]) -> Result<(), NotificationError> {
    if count_opening_brackets(raw) <= MAX_NESTING {
        return Ok(());
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in raw {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(NotificationError::TooDeep(MAX_NESTING));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Counts `[` and `{` bytes (they differ only in bit 0x20). Byte-wide counters over chunks
/// of 255 let the compiler use full-width SIMD lanes; a `usize` count is ten times slower.
fn count_opening_brackets(raw: &[u8]) -> usize {
    raw.chunks(255)
        .map(|chunk| {
            let n = chunk
                .iter()
                .fold(0u8, |n, &b| n + u8::from((b | 0x20) == b'{'));
            usize::from(n)
        })
        .sum()
}

/// The first line of a sonic-rs error ("... at line 1 column 5"), without its snippet.
pub(crate) fn json_error(e: &sonic_rs::Error) -> String {
    let text = e.to_string();
    text.lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_owned()
}

/// oslo.messaging accepts envelopes of version 2.0 (same major, minor not newer).
fn check_envelope_version(version: &Value) -> Result<(), NotificationError> {
    let text = text_of(version);
    let mut parts = text.split('.');
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().map_or(Some(0), |p| p.parse::<u32>().ok());
    if version.is_str() && major == Some(2) && minor == Some(0) {
        Ok(())
    } else {
        Err(NotificationError::EnvelopeVersion(text.into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_are_counted_across_chunks() {
        let mut raw = "x".repeat(1000).into_bytes();
        for i in (0..1000).step_by(3) {
            raw[i] = if i % 2 == 0 { b'[' } else { b'{' };
        }
        let expected = raw.iter().filter(|&&b| b == b'[' || b == b'{').count();
        assert_eq!(count_opening_brackets(&raw), expected);
        assert_eq!(count_opening_brackets(b"[{]}\x7b\x5b;{"), 5);
        assert_eq!(count_opening_brackets(&[b'['; 600]), 600);
        assert_eq!(count_opening_brackets(b""), 0);
    }

    #[test]
    fn envelope_versions() {
        let v = |s: &str| sonic_rs::from_str::<Value>(s).unwrap();
        assert_eq!(check_envelope_version(&v("\"2.0\"")), Ok(()));
        assert_eq!(check_envelope_version(&v("\"2\"")), Ok(()));
        assert_eq!(
            check_envelope_version(&v("\"2.1\"")),
            Err(NotificationError::EnvelopeVersion("2.1".into()))
        );
        assert_eq!(
            check_envelope_version(&v("2.0")),
            Err(NotificationError::EnvelopeVersion("2.0".into()))
        );
    }
}
