//! Printing answers: readable tables (klugman's layout), plain JSON and JSON lines.

use std::io::Write;

use serde_json::{Map, Value};

/// How klug prints answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Readable tables.
    Table,
    /// One JSON document, datetimes as plain ISO strings.
    Json,
    /// One JSON object per line.
    Jsonl,
}

/// `v` with quincy's `__type__` objects replaced: datetimes by their ISO string, time ranges
/// by `{"begin": .., "end": ..}`.
pub fn plain(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(plain).collect()),
        Value::Object(map) => match map.get("__type__").and_then(Value::as_str) {
            Some("datetime") => map.get("datetime").cloned().unwrap_or(Value::Null),
            Some("timex.Timestamp") => map.get("timestamp").cloned().unwrap_or(Value::Null),
            Some("timex.TimeRange") => {
                let mut out = Map::new();
                for key in ["begin", "end"] {
                    out.insert(key.to_owned(), map.get(key).cloned().unwrap_or(Value::Null));
                }
                Value::Object(out)
            }
            _ => Value::Object(map.iter().map(|(k, v)| (k.clone(), plain(v))).collect()),
        },
        other => other.clone(),
    }
}

/// A table cell: strings bare, datetimes with a space, ranges as `begin .. end`.
fn cell(v: &Value) -> String {
    let human = |s: &str| s.replacen('T', " ", 1);
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Object(map) => match map.get("__type__").and_then(Value::as_str) {
            Some("datetime") => map
                .get("datetime")
                .and_then(Value::as_str)
                .map_or_else(|| v.to_string(), human),
            Some("timex.TimeRange") => {
                let get = |k| {
                    map.get(k)
                        .and_then(Value::as_str)
                        .map_or_else(String::new, human)
                };
                format!("{} .. {}", get("begin"), get("end"))
            }
            _ => v.to_string(),
        },
        other => other.to_string(),
    }
}

/// A text table with a header row, drawn like Python's prettytable.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let rule: String = widths.iter().fold(String::from("+"), |mut s, w| {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
            s
        });
        let line = |out: &mut dyn Write, cells: &[String]| -> std::io::Result<()> {
            let mut s = String::from("|");
            for (c, w) in cells.iter().zip(&widths) {
                let pad = w - c.chars().count();
                s.push(' ');
                s.push_str(c);
                s.push_str(&" ".repeat(pad + 1));
                s.push('|');
            }
            writeln!(out, "{s}")
        };
        writeln!(out, "{rule}")?;
        line(out, &self.header)?;
        writeln!(out, "{rule}")?;
        for row in &self.rows {
            line(out, row)?;
        }
        writeln!(out, "{rule}")
    }
}

/// One Property/Value table for an event, properties sorted.
fn event_table(event: &Value, out: &mut dyn Write) -> std::io::Result<()> {
    let mut t = Table::new(&["Property", "Value"]);
    if let Some(map) = event.as_object() {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for k in keys {
            t.row(vec![k.clone(), cell(&map[k])]);
        }
    }
    t.write(out)
}

/// Stream fields shown in the Section/Property/Value table, in order.
const STREAM_KEYS: [&str; 9] = [
    "id",
    "state",
    "name",
    "first_event",
    "last_event",
    "fire_timestamp",
    "expire_timestamp",
    "event_count",
    "error",
];

/// A stream as klugman showed it: Stream and D.Trait rows, then one table per event.
fn stream_table(stream: &Value, out: &mut dyn Write) -> std::io::Result<()> {
    let mut t = Table::new(&["Section", "Property", "Value"]);
    for key in STREAM_KEYS {
        if let Some(v) = stream.get(key) {
            t.row(vec!["Stream".into(), key.into(), cell(v)]);
        }
    }
    if let Some(traits) = stream
        .get("distinguishing_traits")
        .and_then(Value::as_object)
    {
        for (k, v) in traits {
            t.row(vec!["D.Trait".into(), k.clone(), cell(v)]);
        }
    }
    t.write(out)?;
    if let Some(events) = stream.get("events").and_then(Value::as_array) {
        writeln!(out, "Events:")?;
        for e in events {
            event_table(e, out)?;
        }
    }
    Ok(())
}

/// What a list holds, which decides its table layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Events: one Property/Value table each.
    Events,
    /// Streams: one Section/Property/Value table each.
    Streams,
}

/// Prints rows as tables or JSON lines (JSON documents are printed by the caller at the end).
pub fn rows(
    rows: &[Value],
    kind: Kind,
    output: Output,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for row in rows {
        match output {
            Output::Table => match kind {
                Kind::Events => event_table(row, out)?,
                Kind::Streams => stream_table(row, out)?,
            },
            Output::Jsonl => writeln!(out, "{}", plain(row))?,
            Output::Json => {}
        }
    }
    Ok(())
}

/// Prints a whole JSON document (pretty).
pub fn document(v: &Value, out: &mut dyn Write) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(&plain(v)).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")
}

/// Prints a count.
pub fn count(n: i64, output: Output, out: &mut dyn Write) -> std::io::Result<()> {
    match output {
        Output::Table => {
            let mut t = Table::new(&["Count"]);
            t.row(vec![n.to_string()]);
            t.write(out)
        }
        Output::Json => writeln!(out, "{{\n  \"count\": {n}\n}}"),
        Output::Jsonl => writeln!(out, "{{\"count\":{n}}}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_json_unwraps_typed_values() {
        let v = json!([{
            "t": {"__type__": "datetime", "datetime": "2014-07-01T12:00:00"},
            "r": {"__type__": "timex.TimeRange", "begin": "2014-07-01T00:00:00",
                  "end": "2014-07-02T00:00:00"},
            "n": 5
        }]);
        assert_eq!(
            plain(&v),
            json!([{
                "t": "2014-07-01T12:00:00",
                "r": {"begin": "2014-07-01T00:00:00", "end": "2014-07-02T00:00:00"},
                "n": 5
            }])
        );
    }

    #[test]
    fn tables_line_up() {
        let mut out = Vec::new();
        event_table(
            &json!({"message_id": "m1", "when": {"__type__": "datetime",
                    "datetime": "2014-07-01T12:00:00"}, "n": null}),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "+------------+---------------------+\n\
             | Property   | Value               |\n\
             +------------+---------------------+\n\
             | message_id | m1                  |\n\
             | n          | -                   |\n\
             | when       | 2014-07-01 12:00:00 |\n\
             +------------+---------------------+\n"
        );
    }
}
