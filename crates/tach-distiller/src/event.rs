//! The distilled event and its flat JSON form.
//!
//! The flat form is one JSON object: `message_id`, `event_type`, `timestamp`, then every
//! trait by name (datetimes as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, floats always with a `.` or an
//! exponent so that they read back as floats). It is written straight into a `String`
//! without building a JSON tree, and read back by [`Event::from_flat_json`].

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use crate::error::NotificationError;

/// A distilled event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The notification's `message_id`, unique per notification.
    pub message_id: String,
    /// The notification's `event_type`, e.g. `compute.instance.create.end`.
    pub event_type: String,
    /// When the notification was generated (UTC, microseconds).
    pub timestamp: DateTime<Utc>,
    /// The traits, sorted by name, names unique.
    pub traits: Vec<Trait>,
}

/// One named, typed value of an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Trait {
    /// The trait's name, e.g. `instance_id`.
    pub name: String,
    /// The trait's value.
    pub value: TraitValue,
}

/// A typed trait value.
#[derive(Debug, Clone, PartialEq)]
pub enum TraitValue {
    /// `text`.
    Text(String),
    /// `int`.
    Int(i64),
    /// `float` (always finite).
    Float(f64),
    /// `datetime`, UTC with microseconds.
    Datetime(DateTime<Utc>),
}

impl TraitValue {
    /// Appends the value as JSON (floats always with a `.` or an exponent, datetimes as
    /// `"YYYY-MM-DDTHH:MM:SS.ffffffZ"`).
    pub fn write_json(&self, out: &mut String) {
        match self {
            TraitValue::Text(s) => write_json_str(out, s),
            TraitValue::Int(i) => {
                let _ = write!(out, "{i}");
            }
            TraitValue::Float(f) => {
                let _ = write!(out, "{f:?}");
            }
            TraitValue::Datetime(dt) => {
                out.push('"');
                // Writing into a String cannot fail.
                let _ = tach_timex::write_datetime(out, *dt);
                out.push('"');
            }
        }
    }
}

impl Event {
    /// The value of the trait `name`, if the event has it.
    pub fn trait_value(&self, name: &str) -> Option<&TraitValue> {
        self.traits
            .iter()
            .find(|t| t.name == name)
            .map(|t| &t.value)
    }

    /// Appends the flat JSON object: `message_id`, `event_type`, `timestamp`, then the
    /// traits (datetimes as `tach_timex::format_datetime` writes them).
    pub fn write_json(&self, out: &mut String) {
        out.reserve(64 + self.traits.len() * 40);
        out.push_str("{\"message_id\":");
        write_json_str(out, &self.message_id);
        out.push_str(",\"event_type\":");
        write_json_str(out, &self.event_type);
        out.push_str(",\"timestamp\":");
        TraitValue::Datetime(self.timestamp).write_json(out);
        for t in &self.traits {
            out.push(',');
            write_json_str(out, &t.name);
            out.push(':');
            t.value.write_json(out);
        }
        out.push('}');
    }

    /// The flat JSON object as a new string.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    /// Parses the flat form back: strings in the exact `YYYY-MM-DDTHH:MM:SS.ffffffZ` form
    /// become datetimes, other strings text, integers ints, other numbers floats.
    ///
    /// # Errors
    ///
    /// Not JSON, not an object, `message_id`, `event_type` or `timestamp` missing or not
    /// strings, a timestamp that is not a datetime, a trait that is neither a string nor a
    /// number.
    pub fn from_flat_json(line: &str) -> Result<Event, NotificationError> {
        let doc: Value = sonic_rs::from_str(line)
            .map_err(|e| NotificationError::InvalidJson(crate::distiller::json_error(&e)))?;
        let object = doc.as_object().ok_or(NotificationError::NotAnObject)?;
        let message_id = match doc.get("message_id") {
            None => return Err(NotificationError::NoMessageId),
            Some(v) => v.as_str().ok_or(NotificationError::MessageIdNotString)?,
        };
        let event_type = match doc.get("event_type") {
            None => return Err(NotificationError::NoEventType),
            Some(v) => v.as_str().ok_or(NotificationError::EventTypeNotString)?,
        };
        let timestamp = match doc.get("timestamp") {
            None => return Err(NotificationError::NoTimestamp),
            Some(v) => v
                .as_str()
                .and_then(tach_timex::parse_datetime)
                .ok_or_else(|| {
                    NotificationError::BadTimestamp(crate::convert::text_of(v).into_owned())
                })?,
        };
        let mut traits = Vec::with_capacity(object.len().saturating_sub(3));
        for (name, v) in object.iter() {
            if matches!(name, "message_id" | "event_type" | "timestamp") {
                continue;
            }
            let value = if let Some(s) = v.as_str() {
                match parse_flat_datetime(s) {
                    Some(dt) => TraitValue::Datetime(dt),
                    None => TraitValue::Text(s.to_owned()),
                }
            } else if let Some(i) = v.as_i64() {
                TraitValue::Int(i)
            } else if let Some(f) = v.as_f64() {
                TraitValue::Float(f)
            } else {
                return Err(NotificationError::BadTraitValue(name.to_owned()));
            };
            traits.push(Trait {
                name: name.to_owned(),
                value,
            });
        }
        traits.sort_by(|a, b| a.name.cmp(&b.name));
        traits.dedup_by(|later, earlier| later.name == earlier.name);
        Ok(Event {
            message_id: message_id.to_owned(),
            event_type: event_type.to_owned(),
            timestamp,
            traits,
        })
    }
}

/// Parses exactly `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn parse_flat_datetime(s: &str) -> Option<DateTime<Utc>> {
    const SHAPE: &[u8; 27] = b"0000-00-00T00:00:00.000000Z";
    let b = s.as_bytes();
    if b.len() != SHAPE.len() {
        return None;
    }
    let same_shape = b.iter().zip(SHAPE).all(|(c, want)| {
        if *want == b'0' {
            c.is_ascii_digit()
        } else {
            c == want
        }
    });
    if !same_shape {
        return None;
    }
    tach_timex::parse_datetime(s)
}

/// Appends `s` as a JSON string literal (the escapes serde_json writes: `\b`, `\f`, `\n`,
/// `\r`, `\t`, `\"`, `\\`, other control characters as lowercase `\u00xx`).
pub fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;

    fn at(us: u32) -> DateTime<Utc> {
        Utc.from_utc_datetime(
            &NaiveDate::from_ymd_opt(2016, 3, 1)
                .unwrap()
                .and_hms_micro_opt(1, 9, 53, us)
                .unwrap(),
        )
    }

    fn event() -> Event {
        Event {
            message_id: "m-1".into(),
            event_type: "compute.instance.exists".into(),
            timestamp: at(188_000),
            traits: vec![
                Trait {
                    name: "audit_period_beginning".into(),
                    value: TraitValue::Datetime(at(5)),
                },
                Trait {
                    name: "memory_mb".into(),
                    value: TraitValue::Int(512),
                },
                Trait {
                    name: "ratio".into(),
                    value: TraitValue::Float(2.0),
                },
                Trait {
                    name: "state".into(),
                    value: TraitValue::Text("say \"hi\"\n\u{1}é".into()),
                },
            ],
        }
    }

    #[test]
    fn flat_json_is_ordered_and_typed() {
        assert_eq!(
            event().to_json(),
            r#"{"message_id":"m-1","event_type":"compute.instance.exists","timestamp":"2016-03-01T01:09:53.188000Z","audit_period_beginning":"2016-03-01T01:09:53.000005Z","memory_mb":512,"ratio":2.0,"state":"say \"hi\"\n\u0001é"}"#
        );
    }

    #[test]
    fn flat_json_round_trips() {
        let e = event();
        assert_eq!(Event::from_flat_json(&e.to_json()), Ok(e));
    }

    #[test]
    fn flat_json_is_valid_json() {
        let parsed: serde_json::Value = serde_json::from_str(&event().to_json()).unwrap();
        assert_eq!(parsed["state"], "say \"hi\"\n\u{1}é");
        assert_eq!(parsed["ratio"], 2.0);
    }

    #[test]
    fn flat_json_typing_rules() {
        let e = Event::from_flat_json(
            r#"{"timestamp":"2016-03-01 01:09:53.188","event_type":"x","message_id":"m","b":"2016-03-01T01:09:53.000005Z","a":"2016-03-01 01:09:53","c":1e3,"d":-4}"#,
        )
        .unwrap();
        assert_eq!(e.timestamp, at(188_000));
        assert_eq!(
            e.trait_value("a"),
            Some(&TraitValue::Text("2016-03-01 01:09:53".into()))
        );
        assert_eq!(e.trait_value("b"), Some(&TraitValue::Datetime(at(5))));
        assert_eq!(e.trait_value("c"), Some(&TraitValue::Float(1000.0)));
        assert_eq!(e.trait_value("d"), Some(&TraitValue::Int(-4)));
        let names: Vec<&str> = e.traits.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!(e.trait_value("zz"), None);
    }

    #[test]
    fn flat_json_errors() {
        let err = |s: &str| Event::from_flat_json(s).unwrap_err().to_string();
        assert_eq!(err("[]"), "not a JSON object");
        assert_eq!(
            err(r#"{"event_type":"x","timestamp":"2016-03-01"}"#),
            "no message_id"
        );
        assert_eq!(
            err(r#"{"message_id":"m","timestamp":"2016-03-01"}"#),
            "no event_type"
        );
        assert_eq!(
            err(r#"{"message_id":"m","event_type":"x"}"#),
            "no timestamp"
        );
        assert_eq!(
            err(r#"{"message_id":"m","event_type":"x","timestamp":"soon"}"#),
            "timestamp soon is not a datetime"
        );
        assert_eq!(
            err(r#"{"message_id":"m","event_type":"x","timestamp":"2016-03-01","ok":true}"#),
            "trait `ok` is neither a string nor a number"
        );
        assert!(err("{").starts_with("not valid JSON: "), "{}", err("{"));
    }

    #[test]
    fn json_strings_escape_what_json_requires() {
        let mut out = String::new();
        write_json_str(&mut out, "a\"b\\c\td\u{7f}\u{1f}");
        assert_eq!(out, "\"a\\\"b\\\\c\\td\u{7f}\\u001f\"");
    }
}
