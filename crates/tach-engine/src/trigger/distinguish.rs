//! `distinguished_by`: which traits split a trigger's events into streams, and the values one
//! event has for them ([`DistinguishingValues`]), with a stable key for the store.
//!
//! A plain entry takes the trait's value; a `{trait: timex}` entry (`timestamp: "day"`) takes
//! the expression's result with `$timestamp` set to the trait's value (the event's other
//! datetime traits are variables too). The matching criterion's `map_distinguished_by` may name
//! another trait as the source (`timestamp: audit_period_beginning`).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tach_distiller::Event;
use tach_timex::{TimeRange, TimexValue, format_datetime, write_datetime};

use super::criteria::{Criteria, EventVars, Expression, FieldValue, field};
use crate::keys;

/// One entry of `distinguished_by`.
#[derive(Debug, Clone)]
pub struct DistinguishedBy {
    /// The distinguishing trait's name (also the default source trait).
    pub name: String,
    /// The time expression applied to the source's datetime (`timestamp: "day"`), if any.
    pub expression: Option<Expression>,
}

/// Reads `distinguished_by`: a list of trait names and `{trait: timex}` mappings.
pub(crate) fn parse_distinguished_by(value: &Value) -> Result<Vec<DistinguishedBy>, String> {
    let items: Vec<&Value> = match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().collect(),
        Value::String(_) | Value::Object(_) => vec![value],
        other => {
            return Err(format!(
                "`distinguished_by`: expected a list of trait names, found {}",
                keys::kind(other)
            ));
        }
    };
    let mut specs: Vec<DistinguishedBy> = Vec::with_capacity(items.len());
    for item in items {
        let spec = match item {
            Value::String(name) => DistinguishedBy {
                name: name.clone(),
                expression: None,
            },
            Value::Object(map) if map.len() == 1 => {
                let Some((name, expr)) = map.iter().next() else {
                    return Err("`distinguished_by`: empty entry".to_string());
                };
                let Value::String(text) = expr else {
                    return Err(format!(
                        "`distinguished_by`: `{name}` expects a time expression, found {}",
                        keys::kind(expr)
                    ));
                };
                let expression = Expression::parse(text).map_err(|e| {
                    format!("`distinguished_by`: `{name}` expression `{text}`: {e}")
                })?;
                DistinguishedBy {
                    name: name.clone(),
                    expression: Some(expression),
                }
            }
            Value::Object(map) => {
                return Err(format!(
                    "`distinguished_by`: only one trait is allowed per expression entry \
                     (found {})",
                    map.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            other => {
                return Err(format!(
                    "`distinguished_by`: expected a trait name or {{trait: expression}}, found {}",
                    keys::kind(other)
                ));
            }
        };
        if specs.iter().any(|s| s.name == spec.name) {
            return Err(format!(
                "`distinguished_by`: `{}` is listed twice",
                spec.name
            ));
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// The values of an event for the trigger's distinguishing traits; `None` when a source trait
/// is missing, is not a datetime where an expression needs one, or the expression fails.
pub(crate) fn compute(
    specs: &[DistinguishedBy],
    criteria: &Criteria,
    event: &Event,
) -> Option<DistinguishingValues> {
    let mut values = Vec::with_capacity(specs.len());
    for spec in specs {
        let source = criteria.source_of(&spec.name);
        let value = field(event, source)?;
        let value = match &spec.expression {
            None => DistValue::from(value),
            Some(expression) => {
                let FieldValue::Datetime(t) = value else {
                    return None;
                };
                let vars = EventVars {
                    event,
                    timestamp: t,
                };
                match expression.evaluate(&vars, t).ok()? {
                    TimexValue::Range(range) => DistValue::Range(range),
                    TimexValue::Timestamp(t) => DistValue::Datetime(t),
                }
            }
        };
        values.push((spec.name.clone(), value));
    }
    Some(DistinguishingValues(values))
}

/// A distinguishing value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DistValue {
    /// Text.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A datetime (UTC).
    Datetime(DateTime<Utc>),
    /// A time range, `begin <= t < end` (from `{trait: timex}` entries).
    Range(#[serde(with = "range_serde")] TimeRange),
}

impl From<FieldValue<'_>> for DistValue {
    fn from(value: FieldValue<'_>) -> Self {
        match value {
            FieldValue::Text(s) => Self::Text(s.to_string()),
            FieldValue::Int(i) => Self::Int(i),
            FieldValue::Float(f) => Self::Float(f),
            FieldValue::Datetime(d) => Self::Datetime(d),
        }
    }
}

/// Serde for [`TimeRange`] as `{"begin": .., "end": ..}` (RFC 3339).
mod range_serde {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use tach_timex::TimeRange;

    #[derive(Serialize, Deserialize)]
    struct Plain {
        begin: DateTime<Utc>,
        end: DateTime<Utc>,
    }

    pub(super) fn serialize<S: Serializer>(range: &TimeRange, s: S) -> Result<S::Ok, S::Error> {
        Plain {
            begin: range.begin,
            end: range.end,
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TimeRange, D::Error> {
        let plain = Plain::deserialize(d)?;
        Ok(TimeRange {
            begin: plain.begin,
            end: plain.end,
        })
    }
}

/// An event's distinguishing values, in `distinguished_by` order: which stream it belongs to.
///
/// Serde (for persistence) writes a list of `[name, {"text": ..}]` pairs that reloads exactly;
/// [`Self::to_json`] / [`Self::display`] give the readable form
/// `{"instance_id": "...", "timestamp": {"begin": .., "end": ..}}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DistinguishingValues(Vec<(String, DistValue)>);

impl DistinguishingValues {
    /// Values from pairs, in order.
    pub fn new(values: Vec<(String, DistValue)>) -> Self {
        Self(values)
    }

    /// The pairs, in `distinguished_by` order.
    pub fn as_slice(&self) -> &[(String, DistValue)] {
        &self.0
    }

    /// The value of distinguishing trait `name`.
    pub fn get(&self, name: &str) -> Option<&DistValue> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (a trigger without `distinguished_by`: one stream at a time).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stream key: equal values give equal keys in every process and version.
    ///
    /// Format: for each pair in order, `name=` then a type tag and the value — `s:` text,
    /// `i:` decimal integer, `f:` float (shortest round-trip decimal, `-0` written `0`), `d:`
    /// datetime `YYYY-MM-DDTHH:MM:SS.ffffffZ`, `r:` range `begin/end` in the same format —
    /// joined by `;`. In names and text, `\`, `;` and `=` are escaped with `\`.
    pub fn key(&self) -> String {
        let mut key = String::with_capacity(64);
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                key.push(';');
            }
            escape_into(&mut key, name);
            key.push('=');
            match value {
                DistValue::Text(s) => {
                    key.push_str("s:");
                    escape_into(&mut key, s);
                }
                DistValue::Int(n) => {
                    let _ = write!(key, "i:{n}");
                }
                DistValue::Float(f) => {
                    let f = if *f == 0.0 { 0.0 } else { *f };
                    let _ = write!(key, "f:{f}");
                }
                // `write_datetime` writes the format by hand: chrono's format-string interpreter
                // was 1.3 % of ingest's CPU (keys are built per event). The test below holds it
                // to the chrono format keys were first written with.
                DistValue::Datetime(d) => {
                    key.push_str("d:");
                    let _ = write_datetime(&mut key, *d);
                }
                DistValue::Range(r) => {
                    key.push_str("r:");
                    let _ = write_datetime(&mut key, r.begin);
                    key.push('/');
                    let _ = write_datetime(&mut key, r.end);
                }
            }
        }
        key
    }

    /// A 64-bit FNV-1a hash of [`Self::key`], for indexing (not for uniqueness: compare keys).
    pub fn key_hash(&self) -> u64 {
        fnv1a64(self.key().as_bytes())
    }

    /// The readable JSON form (datetimes as `tach_timex::format_datetime`; keys sorted).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.display()).unwrap_or(Value::Null)
    }

    /// A view that serializes as the readable JSON object, keys in `distinguished_by` order.
    pub fn display(&self) -> DisplayValues<'_> {
        DisplayValues(self)
    }
}

/// Serializes [`DistinguishingValues`] as `{"name": value, ...}` in order, readable.
#[derive(Debug, Clone, Copy)]
pub struct DisplayValues<'a>(&'a DistinguishingValues);

impl Serialize for DisplayValues<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0.0 {
            match value {
                DistValue::Text(s) => map.serialize_entry(name, s)?,
                DistValue::Int(n) => map.serialize_entry(name, n)?,
                DistValue::Float(f) => map.serialize_entry(name, f)?,
                DistValue::Datetime(d) => map.serialize_entry(name, &format_datetime(*d))?,
                DistValue::Range(r) => map.serialize_entry(name, &DisplayRange(r))?,
            }
        }
        map.end()
    }
}

/// A range as `{"begin": .., "end": ..}` with `format_datetime`.
struct DisplayRange<'a>(&'a TimeRange);

impl Serialize for DisplayRange<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("begin", &format_datetime(self.0.begin))?;
        map.serialize_entry("end", &format_datetime(self.0.end))?;
        map.end()
    }
}

/// Appends `text` with `\`, `;` and `=` escaped.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        if matches!(c, '\\' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// 64-bit FNV-1a.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;

    /// The chrono format stream keys were first written with; keys stored in databases must
    /// never change.
    const KEY_DATETIME: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

    #[test]
    fn datetime_keys_keep_their_format() {
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
            .map(|t| t.and_utc());
        let times: Vec<DateTime<Utc>> = [
            Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).single(),
            Utc.timestamp_opt(1_796_615_749, 524_247_000).single(),
            Utc.timestamp_opt(1, 999_999_999).single(),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).single(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).single(),
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).single(),
            Utc.with_ymd_and_hms(-44, 3, 15, 12, 0, 0).single(),
            leap,
        ]
        .into_iter()
        .map(|t| t.expect("a valid datetime"))
        .collect();
        for t in times {
            let later = t + chrono::Duration::days(1);
            let values = DistinguishingValues::new(vec![
                ("at".to_owned(), DistValue::Datetime(t)),
                (
                    "day".to_owned(),
                    DistValue::Range(TimeRange {
                        begin: t,
                        end: later,
                    }),
                ),
            ]);
            assert_eq!(
                values.key(),
                format!(
                    "at=d:{};day=r:{}/{}",
                    t.format(KEY_DATETIME),
                    t.format(KEY_DATETIME),
                    later.format(KEY_DATETIME)
                ),
                "{t:?}"
            );
        }
    }
}
