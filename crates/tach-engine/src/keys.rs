//! Shared helpers for reading YAML configuration as loosely typed values: loading a file,
//! flagging unknown keys with the nearest known one, and reading second counts.
//!
//! The definition files are read into `serde_json::Value` (serde-saphyr applies YAML anchors and
//! `<<:` merge keys on the way) and then walked by hand, so that an unknown key becomes a
//! warning with a suggestion rather than a hard error, as StackTach silently ignored them.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};

/// Reads a YAML file into a loosely typed value; an empty file reads as `null`.
pub(crate) fn load_yaml(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_yaml(&text, path)
}

/// Parses YAML text into a loosely typed value; `path` only names the source in errors.
pub(crate) fn parse_yaml(text: &str, path: &Path) -> Result<Value> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_saphyr::from_str::<Value>(text).map_err(|source| Error::Yaml {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

/// The Levenshtein distance between two words (insertions, deletions, substitutions).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The known word nearest to `word`, if it is close enough to be a plausible misspelling.
pub(crate) fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = 2.max(word.chars().count().div_ceil(3));
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// "did you mean `x`?" when a known word is near, else the list of known words.
pub(crate) fn suggestion(word: &str, known: &[&str]) -> String {
    match nearest(word, known) {
        Some(k) => format!("did you mean `{k}`?"),
        None => format!("known: {}", known.join(", ")),
    }
}

/// The warning for an unknown key: `{context}: unknown key `k` (did you mean `x`?); ignored`.
pub(crate) fn unknown_key(context: &str, key: &str, known: &[&str]) -> String {
    format!(
        "{context}: unknown key `{key}` ({}); ignored",
        suggestion(key, known)
    )
}

/// A short name of a YAML value's kind, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Reads a duration written as a number of seconds (`10`, `0.5`) or with a unit
/// (`500ms`, `30s`, `5m`, `2h`, `1d`); negative durations are refused.
pub(crate) fn seconds(value: &Value) -> std::result::Result<Duration, String> {
    let secs = match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("`{n}` is not a number"))?,
        Value::String(s) => parse_duration_text(s)?,
        other => return Err(format!("expected seconds, found {}", kind(other))),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{value}` is not a non-negative number of seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{value}`: {e}"))
}

/// Parses `30`, `30s`, `500ms`, `5m`, `2h`, `1d` into seconds.
fn parse_duration_text(text: &str) -> std::result::Result<f64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 30, 30s, 5m, 2h)"))?;
    let factor = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" | "hr" => 3600.0,
        "d" => 86400.0,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit (use ms, s, m, h or d)"
            ));
        }
    };
    Ok(number * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(
            edit_distance("map_distingushed_by", "map_distinguished_by"),
            1
        );
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn nearest_suggests_only_plausible_misspellings() {
        let known = ["expiration", "fire_pipeline", "expire_pipeline"];
        assert_eq!(nearest("expiraton", &known), Some("expiration"));
        assert_eq!(nearest("fire_pipline", &known), Some("fire_pipeline"));
        assert_eq!(nearest("colour", &known), None);
        assert_eq!(suggestion("colour", &["a", "b"]), "known: a, b");
    }

    #[test]
    fn seconds_accepts_numbers_and_units() {
        assert_eq!(seconds(&Value::from(10)), Ok(Duration::from_secs(10)));
        assert_eq!(seconds(&Value::from(0.5)), Ok(Duration::from_millis(500)));
        assert_eq!(seconds(&Value::from("5m")), Ok(Duration::from_secs(300)));
        assert_eq!(
            seconds(&Value::from("250ms")),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(seconds(&Value::from("1d")), Ok(Duration::from_secs(86400)));
        assert_eq!(
            seconds(&Value::from(-1)),
            Err("`-1` is not a non-negative number of seconds".to_string())
        );
        assert_eq!(
            seconds(&Value::from("3 weeks")),
            Err("`3 weeks` has an unknown unit (use ms, s, m, h or d)".to_string())
        );
        assert_eq!(
            seconds(&Value::Bool(true)),
            Err("expected seconds, found a boolean".to_string())
        );
    }
}
