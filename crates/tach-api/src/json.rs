//! The wire format of quincy v1, written straight into a byte buffer: datetimes as
//! `{"__type__": "datetime", "datetime": "<iso>"}`, time ranges as
//! `{"__type__": "timex.TimeRange", "begin": "<iso>", "end": "<iso>"}`, a `_mark` on every row.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Timelike, Utc};
use tach_store::doc::{self, RawValue};
use tach_store::{Direction, DistValue, Event, EventDoc, StoredEvent, StreamRow, TraitValue};

/// A JSON document under construction.
pub(crate) struct Out(pub(crate) String);

/// Fixed event fields; a trait with one of these names is left out so keys stay unique.
const EVENT_FIELDS: [&str; 4] = ["message_id", "event_type", "timestamp", "_mark"];

impl Out {
    pub(crate) fn with_capacity(n: usize) -> Out {
        Out(String::with_capacity(n))
    }

    fn raw(&mut self, s: &str) -> &mut Out {
        self.0.push_str(s);
        self
    }

    /// A JSON string literal (escaped as the trait documents are, so that an event list
    /// written from documents and one written from decoded events are the same bytes).
    pub(crate) fn str(&mut self, s: &str) -> &mut Out {
        tach_store::write_json_str(&mut self.0, s);
        self
    }

    fn key(&mut self, first: &mut bool, k: &str) -> &mut Out {
        if !*first {
            self.0.push_str(", ");
        }
        *first = false;
        self.str(k).raw(": ")
    }

    /// Python's `datetime.isoformat()` of a naive UTC datetime, as winchester stores them.
    fn iso(&mut self, t: DateTime<Utc>) -> &mut Out {
        let (year, nanos) = (t.year(), t.nanosecond());
        if (0..=9999).contains(&year) && nanos < 1_000_000_000 {
            // Written by hand: chrono's `format` parses the format string on every call, which
            // showed in the profile of event lists (several datetimes per event).
            let two = |v: u32| [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8];
            let y = year as u32;
            let mut buf = [0u8; 28];
            buf[0] = b'"';
            buf[1..3].copy_from_slice(&two(y / 100));
            buf[3..5].copy_from_slice(&two(y % 100));
            buf[5] = b'-';
            buf[6..8].copy_from_slice(&two(t.month()));
            buf[8] = b'-';
            buf[9..11].copy_from_slice(&two(t.day()));
            buf[11] = b'T';
            buf[12..14].copy_from_slice(&two(t.hour()));
            buf[14] = b':';
            buf[15..17].copy_from_slice(&two(t.minute()));
            buf[17] = b':';
            buf[18..20].copy_from_slice(&two(t.second()));
            let mut end = 20;
            if nanos != 0 {
                let micros = nanos / 1000;
                buf[20] = b'.';
                buf[21..23].copy_from_slice(&two(micros / 10_000));
                buf[23..25].copy_from_slice(&two(micros / 100 % 100));
                buf[25..27].copy_from_slice(&two(micros % 100));
                end = 27;
            }
            buf[end] = b'"';
            // Only ASCII digits and punctuation were written.
            if let Ok(s) = std::str::from_utf8(&buf[..=end]) {
                self.0.push_str(s);
                return self;
            }
        }
        let fmt = if t.nanosecond() == 0 {
            "\"%Y-%m-%dT%H:%M:%S\""
        } else {
            "\"%Y-%m-%dT%H:%M:%S%.6f\""
        };
        let _ = write!(self.0, "{}", t.format(fmt));
        self
    }

    fn datetime(&mut self, t: DateTime<Utc>) -> &mut Out {
        self.raw("{\"__type__\": \"datetime\", \"datetime\": ")
            .iso(t)
            .raw("}")
    }

    fn opt_datetime(&mut self, t: Option<DateTime<Utc>>) -> &mut Out {
        match t {
            Some(t) => self.datetime(t),
            None => self.raw("null"),
        }
    }

    fn float(&mut self, f: f64) -> &mut Out {
        if f.is_finite() {
            let _ = write!(self.0, "{f:?}");
        } else {
            self.0.push_str("null");
        }
        self
    }

    fn int(&mut self, i: i64) -> &mut Out {
        let _ = write!(self.0, "{i}");
        self
    }

    fn mark(&mut self, id: i64, direction: Direction) -> &mut Out {
        let sign = match direction {
            Direction::Desc => "",
            Direction::Asc => "+",
        };
        let _ = write!(self.0, "\"{sign}{id:x}\"");
        self
    }

    fn trait_value(&mut self, v: &TraitValue) -> &mut Out {
        match v {
            TraitValue::Text(s) => self.str(s),
            TraitValue::Int(i) => self.int(*i),
            TraitValue::Float(f) => self.float(*f),
            TraitValue::Datetime(t) => self.datetime(*t),
        }
    }

    fn dist_value(&mut self, v: &DistValue) -> &mut Out {
        match v {
            DistValue::Text(s) => self.str(s),
            DistValue::Int(i) => self.int(*i),
            DistValue::Float(f) => self.float(*f),
            DistValue::Datetime(t) => self.datetime(*t),
            DistValue::Range { begin, end } => self
                .raw("{\"__type__\": \"timex.TimeRange\", \"begin\": ")
                .iso(*begin)
                .raw(", \"end\": ")
                .iso(*end)
                .raw("}"),
        }
    }

    /// One event: its traits, then `message_id`, `event_type`, `timestamp` and `_mark` (when
    /// the row id is known).
    pub(crate) fn event(&mut self, e: &Event, mark: Option<(i64, Direction)>) -> &mut Out {
        self.raw("{");
        let mut first = true;
        for t in &e.traits {
            if EVENT_FIELDS.contains(&t.name.as_str()) {
                continue;
            }
            self.key(&mut first, &t.name).trait_value(&t.value);
        }
        self.key(&mut first, "message_id").str(&e.message_id);
        self.key(&mut first, "event_type").str(&e.event_type);
        self.key(&mut first, "timestamp").datetime(e.timestamp);
        if let Some((id, direction)) = mark {
            self.key(&mut first, "_mark").mark(id, direction);
        }
        self.raw("}")
    }

    /// A list of stored events.
    pub(crate) fn events(&mut self, events: &[StoredEvent], direction: Direction) -> &mut Out {
        self.raw("[");
        for (i, e) in events.iter().enumerate() {
            if i > 0 {
                self.raw(", ");
            }
            self.event(&e.event, Some((e.id, direction)));
        }
        self.raw("]")
    }

    /// A list of events, their traits written from their documents as [`Out::event`] writes
    /// them (string literals copied as stored, floats and ints as written there).
    ///
    /// # Errors
    /// [`tach_store::Error::InvalidData`] for a document that does not parse.
    pub(crate) fn event_docs(
        &mut self,
        events: &[EventDoc],
        direction: Direction,
    ) -> Result<&mut Out, tach_store::Error> {
        self.raw("[");
        for (i, e) in events.iter().enumerate() {
            if i > 0 {
                self.raw(", ");
            }
            self.raw("{");
            let mut first = true;
            let mut bad_time = None;
            doc::scan(e.id, &e.traits, |name, value| {
                // A name without escapes is its literal without the quotes.
                let plain = name.get(1..name.len() - 1).filter(|n| !n.contains('\\'));
                if plain.is_some_and(|n| EVENT_FIELDS.contains(&n)) {
                    return;
                }
                if !first {
                    self.0.push_str(", ");
                }
                first = false;
                self.raw(name).raw(": ");
                match value {
                    RawValue::Text(literal) => self.raw(literal),
                    RawValue::Int(text) | RawValue::Float(text) => self.raw(text),
                    RawValue::Datetime(us) => match DateTime::from_timestamp_micros(us) {
                        Some(t) => self.datetime(t),
                        None => {
                            bad_time = Some(us);
                            self.raw("null")
                        }
                    },
                };
            })?;
            if let Some(us) = bad_time {
                return Err(tach_store::Error::InvalidData {
                    what: format!(
                        "event {} has a datetime trait of {us} µs, out of range",
                        e.id
                    ),
                });
            }
            self.key(&mut first, "message_id").str(&e.message_id);
            self.key(&mut first, "event_type").str(&e.event_type);
            self.key(&mut first, "timestamp").datetime(e.timestamp);
            self.key(&mut first, "_mark").mark(e.id, direction);
            self.raw("}");
        }
        Ok(self.raw("]"))
    }

    /// One stream, winchester's fields plus `event_count` and `error`; `events` and
    /// `events_truncated` (true when `events` is cut to the server's maximum) when loaded.
    pub(crate) fn stream(
        &mut self,
        s: &StreamRow,
        truncated: bool,
        direction: Direction,
    ) -> &mut Out {
        let mut first = true;
        self.raw("{");
        self.key(&mut first, "id").int(s.id);
        self.key(&mut first, "_mark").mark(s.id, direction);
        self.key(&mut first, "name").str(&s.trigger_name);
        self.key(&mut first, "state").str(s.state.as_str());
        self.key(&mut first, "first_event").datetime(s.first_event);
        self.key(&mut first, "last_event").datetime(s.last_event);
        self.key(&mut first, "expire_timestamp")
            .datetime(s.expire_timestamp);
        self.key(&mut first, "fire_timestamp")
            .opt_datetime(s.fire_timestamp);
        self.key(&mut first, "distinguishing_traits").raw("{");
        let mut inner = true;
        for (name, value) in &s.distinguishing_traits {
            self.key(&mut inner, name).dist_value(value);
        }
        self.raw("}");
        self.key(&mut first, "event_count").int(s.event_count);
        self.key(&mut first, "error");
        match &s.error {
            Some(e) => self.str(e),
            None => self.raw("null"),
        };
        if let Some(events) = &s.events {
            self.key(&mut first, "events").raw("[");
            for (i, e) in events.iter().enumerate() {
                if i > 0 {
                    self.raw(", ");
                }
                self.event(e, None);
            }
            self.raw("]");
            self.key(&mut first, "events_truncated")
                .raw(if truncated { "true" } else { "false" });
        }
        self.raw("}")
    }

    /// A list of streams; `truncated[i]` (false when missing) says stream `i`'s events are cut.
    pub(crate) fn streams(
        &mut self,
        streams: &[StreamRow],
        truncated: &[bool],
        direction: Direction,
    ) -> &mut Out {
        self.raw("[");
        for (i, s) in streams.iter().enumerate() {
            if i > 0 {
                self.raw(", ");
            }
            self.stream(s, truncated.get(i).copied().unwrap_or(false), direction);
        }
        self.raw("]")
    }

    /// `[{"count": n}]`.
    pub(crate) fn count(&mut self, n: i64) -> &mut Out {
        self.raw("[{\"count\": ").int(n).raw("}]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn documents_are_written_exactly_as_decoded_events() {
        use tach_store::Trait;
        let t = Utc.with_ymd_and_hms(2014, 7, 1, 12, 0, 0).unwrap();
        let trait_ = |name: &str, value| Trait {
            name: name.to_owned(),
            value,
        };
        let event = Event {
            message_id: "m\"1".into(),
            event_type: "compute.instance.exists".into(),
            timestamp: t,
            traits: vec![
                trait_("_mark", TraitValue::Text("hidden".into())),
                trait_("a\"q\u{8}", TraitValue::Text("x\n\u{1}\u{c}é\\".into())),
                trait_(
                    "audit",
                    TraitValue::Datetime(t + chrono::Duration::microseconds(7)),
                ),
                trait_("message_id", TraitValue::Text("hidden too".into())),
                trait_("ratio", TraitValue::Float(0.1 + 0.2)),
                trait_("size", TraitValue::Float(5.0)),
                trait_("vcpus", TraitValue::Int(-3)),
            ],
        };
        let stored = StoredEvent { id: 42, event };
        let doc = EventDoc {
            id: 42,
            message_id: stored.event.message_id.clone(),
            event_type: stored.event.event_type.clone(),
            timestamp: t,
            traits: tach_store::doc::encode(&stored.event.traits),
        };
        for direction in [Direction::Desc, Direction::Asc] {
            let mut decoded = Out::with_capacity(0);
            decoded.events(std::slice::from_ref(&stored), direction);
            let mut raw = Out::with_capacity(0);
            raw.event_docs(std::slice::from_ref(&doc), direction)
                .unwrap();
            assert_eq!(raw.0, decoded.0);
            let parsed: serde_json::Value = serde_json::from_str(&raw.0).unwrap();
            assert_eq!(parsed[0]["ratio"], serde_json::json!(0.30000000000000004));
            assert!(parsed[0].get("_mark").is_some_and(|m| m != "hidden"));
        }
        let broken = EventDoc {
            traits: "[[\"a\",2,".into(),
            ..doc
        };
        let err = Out::with_capacity(0)
            .event_docs(&[broken], Direction::Desc)
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains("event 42"), "{err}");
    }

    #[test]
    fn strings_escape_and_datetimes_match_python_isoformat() {
        let mut o = Out::with_capacity(0);
        o.str("a\"b\\c\n\u{1}é");
        assert_eq!(o.0, r#""a\"b\\c\n\u0001é""#);
        let t = Utc.with_ymd_and_hms(2014, 7, 1, 12, 0, 0).unwrap();
        let mut o = Out::with_capacity(0);
        o.datetime(t)
            .datetime(t + chrono::Duration::microseconds(1500));
        assert_eq!(
            o.0,
            r#"{"__type__": "datetime", "datetime": "2014-07-01T12:00:00"}{"__type__": "datetime", "datetime": "2014-07-01T12:00:00.001500"}"#
        );
        let mut o = Out::with_capacity(0);
        o.dist_value(&DistValue::Range {
            begin: t,
            end: t + chrono::Duration::days(1),
        });
        assert_eq!(
            o.0,
            r#"{"__type__": "timex.TimeRange", "begin": "2014-07-01T12:00:00", "end": "2014-07-02T12:00:00"}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&o.0).unwrap();
        assert_eq!(parsed["__type__"], "timex.TimeRange");
    }

    #[test]
    fn handwritten_datetimes_match_chrono_formatting() {
        let chrono_iso = |t: DateTime<Utc>| {
            let fmt = if t.nanosecond() == 0 {
                "\"%Y-%m-%dT%H:%M:%S\""
            } else {
                "\"%Y-%m-%dT%H:%M:%S%.6f\""
            };
            t.format(fmt).to_string()
        };
        let base = Utc.with_ymd_and_hms(2014, 7, 1, 12, 0, 0).unwrap();
        let mut times = vec![
            base,
            Utc.with_ymd_and_hms(9, 1, 2, 3, 4, 5).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap(),
        ];
        for us in [1, 9, 10, 999, 1000, 123_456, 999_999, 86_399_999_999] {
            times.push(base + chrono::Duration::microseconds(us));
        }
        for t in times {
            let mut o = Out::with_capacity(0);
            o.iso(t);
            assert_eq!(o.0, chrono_iso(t), "{t:?}");
        }
    }
}
