//! The `split` plugin: one piece of the first match split on a separator.
//!
//! Parameters: `separator` (default `.`; `null` splits on runs of whitespace, as Python's
//! `str.split()` does), `segment` (default 0; negative counts from the end), `max_split`
//! (default none: split everywhere; a negative value also means none). Like stackdistiller,
//! `publisher_id: compute.host-1.example.com` with `segment: 1, max_split: 1` gives
//! `host-1.example.com`. A segment out of range leaves the trait out.

use std::borrow::Cow;

use crate::convert::text_of;
use crate::plugin::{FieldMatch, ParamValue, PluginParams, PluginValue, TraitPlugin};

/// Splits the first match's text and keeps one segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitPlugin {
    separator: Option<String>,
    segment: i64,
    max_split: Option<usize>,
}

impl SplitPlugin {
    /// The plugin with stackdistiller's defaults: `.`, segment 0, no split limit.
    pub fn new() -> SplitPlugin {
        SplitPlugin {
            separator: Some(".".to_owned()),
            segment: 0,
            max_split: None,
        }
    }

    /// Reads `separator`, `segment` and `max_split`.
    ///
    /// # Errors
    ///
    /// An unknown parameter, an empty separator, a non-integer segment or split limit.
    pub fn from_params(params: &PluginParams) -> Result<SplitPlugin, String> {
        params.check_known(&["separator", "segment", "max_split"])?;
        let separator = match params.get("separator") {
            None => Some(".".to_owned()),
            Some(ParamValue::Null) => None,
            Some(ParamValue::Text(s)) if s.is_empty() => {
                return Err("`separator` must not be empty".to_owned());
            }
            Some(ParamValue::Text(s)) => Some(s.clone()),
            Some(other) => {
                return Err(format!(
                    "`separator` must be a string, not {}",
                    other.kind()
                ));
            }
        };
        let segment = params.int_or("segment", 0)?;
        let max_split = match params.get("max_split") {
            None | Some(ParamValue::Null) => None,
            Some(ParamValue::Int(n)) => usize::try_from(*n).ok(),
            Some(other) => {
                return Err(format!(
                    "`max_split` must be an integer, not {}",
                    other.kind()
                ));
            }
        };
        Ok(SplitPlugin {
            separator,
            segment,
            max_split,
        })
    }

    /// The chosen segment of `text`, if it exists.
    pub fn segment_of<'t>(&self, text: &'t str) -> Option<&'t str> {
        match (&self.separator, self.max_split) {
            (Some(sep), None) => nth_py(text.split(sep.as_str()), self.segment),
            (Some(sep), Some(max)) => nth_py(
                text.splitn(max.saturating_add(1), sep.as_str()),
                self.segment,
            ),
            (None, max) => nth_py(split_whitespace_py(text, max).into_iter(), self.segment),
        }
    }
}

impl Default for SplitPlugin {
    fn default() -> SplitPlugin {
        SplitPlugin::new()
    }
}

impl TraitPlugin for SplitPlugin {
    fn trait_value<'a>(&self, matches: &[FieldMatch<'a>]) -> Option<PluginValue<'a>> {
        let first = matches.first()?;
        match text_of(first.value) {
            Cow::Borrowed(text) => self
                .segment_of(text)
                .map(|s| PluginValue::Text(Cow::Borrowed(s))),
            Cow::Owned(text) => self
                .segment_of(&text)
                .map(|s| PluginValue::Text(Cow::Owned(s.to_owned()))),
        }
    }
}

/// Python indexing of an iterator: negative indexes count from the end.
fn nth_py<'t>(mut pieces: impl Iterator<Item = &'t str>, index: i64) -> Option<&'t str> {
    if let Ok(i) = usize::try_from(index) {
        return pieces.nth(i);
    }
    let all: Vec<&str> = pieces.collect();
    let from_end = usize::try_from(index.unsigned_abs()).ok()?;
    all.len().checked_sub(from_end).map(|i| all[i])
}

/// Python's `str.split(None, max)`: runs of whitespace separate, ends are trimmed, and
/// after `max` splits the rest (leading whitespace removed) is the last piece.
fn split_whitespace_py(text: &str, max: Option<usize>) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut splits_left = max.unwrap_or(usize::MAX);
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if splits_left == 0 {
            pieces.push(rest);
            break;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        pieces.push(&rest[..end]);
        rest = &rest[end..];
        splits_left -= 1;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(entries: &[(&str, ParamValue)]) -> PluginParams {
        PluginParams::new(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn split(entries: &[(&str, ParamValue)], text: &str) -> Option<String> {
        let plugin = SplitPlugin::from_params(&params(entries)).unwrap();
        plugin.segment_of(text).map(str::to_owned)
    }

    fn run(entries: &[(&str, ParamValue)], json: &str) -> Option<PluginValue<'static>> {
        let plugin = SplitPlugin::from_params(&params(entries)).unwrap();
        let value: sonic_rs::Value = sonic_rs::from_str(json).unwrap();
        let matches = [FieldMatch {
            path: "publisher_id",
            value: &value,
        }];
        plugin.trait_value(&matches).map(|v| match v {
            PluginValue::Text(t) => PluginValue::Text(Cow::Owned(t.into_owned())),
            other => panic!("split returned {other:?}"),
        })
    }

    #[test]
    fn defaults_take_the_first_dotted_segment() {
        assert_eq!(
            split(&[], "compute.host-1.example.com").as_deref(),
            Some("compute")
        );
        assert_eq!(split(&[], "nodots").as_deref(), Some("nodots"));
        assert_eq!(split(&[], "").as_deref(), Some(""));
    }

    #[test]
    fn segment_and_max_split_as_in_the_sandbox_file() {
        let host = [
            ("segment", ParamValue::Int(1)),
            ("max_split", ParamValue::Int(1)),
        ];
        assert_eq!(
            split(&host, "compute.host-1.example.com").as_deref(),
            Some("host-1.example.com")
        );
        assert_eq!(split(&host, "compute").as_deref(), None);
        let second = [("segment", ParamValue::Int(1))];
        assert_eq!(
            split(&second, "compute.host-1.example.com").as_deref(),
            Some("host-1")
        );
        let zero = [
            ("segment", ParamValue::Int(0)),
            ("max_split", ParamValue::Int(0)),
        ];
        assert_eq!(split(&zero, "a.b.c").as_deref(), Some("a.b.c"));
        let unlimited = [
            ("segment", ParamValue::Int(2)),
            ("max_split", ParamValue::Int(-1)),
        ];
        assert_eq!(split(&unlimited, "a.b.c").as_deref(), Some("c"));
    }

    #[test]
    fn negative_segments_count_from_the_end() {
        let last = [("segment", ParamValue::Int(-1))];
        assert_eq!(split(&last, "a.b.c").as_deref(), Some("c"));
        let third_last = [("segment", ParamValue::Int(-3))];
        assert_eq!(split(&third_last, "a.b.c").as_deref(), Some("a"));
        let too_far = [("segment", ParamValue::Int(-4))];
        assert_eq!(split(&too_far, "a.b.c"), None);
        let out = [("segment", ParamValue::Int(3))];
        assert_eq!(split(&out, "a.b.c"), None);
    }

    #[test]
    fn other_separators_and_whitespace() {
        let colon = [
            ("separator", ParamValue::Text("::".into())),
            ("segment", ParamValue::Int(1)),
        ];
        assert_eq!(split(&colon, "a::b::c").as_deref(), Some("b"));
        let ws = [
            ("separator", ParamValue::Null),
            ("segment", ParamValue::Int(1)),
        ];
        assert_eq!(split(&ws, "  a \t b  c ").as_deref(), Some("b"));
        let ws_max = [
            ("separator", ParamValue::Null),
            ("segment", ParamValue::Int(1)),
            ("max_split", ParamValue::Int(1)),
        ];
        assert_eq!(split(&ws_max, "  a   b  c ").as_deref(), Some("b  c "));
        let ws_last = [
            ("separator", ParamValue::Null),
            ("segment", ParamValue::Int(-1)),
        ];
        assert_eq!(split(&ws_last, "a b c  ").as_deref(), Some("c"));
        assert_eq!(split(&ws_last, "   "), None);
    }

    #[test]
    fn uses_the_first_match_and_its_text() {
        assert_eq!(
            run(&[], "\"compute.host\""),
            Some(PluginValue::Text("compute".into()))
        );
        assert_eq!(run(&[], "12.5"), Some(PluginValue::Text("12".into())));
        assert_eq!(run(&[], "true"), Some(PluginValue::Text("true".into())));
        let plugin = SplitPlugin::new();
        assert_eq!(plugin.trait_value(&[]), None);
    }

    #[test]
    fn bad_parameters_are_reported() {
        let err = |entries: &[(&str, ParamValue)]| {
            SplitPlugin::from_params(&params(entries)).unwrap_err()
        };
        assert_eq!(
            err(&[("segment", ParamValue::Text("1".into()))]),
            "`segment` must be an integer, not a string"
        );
        assert_eq!(
            err(&[("separator", ParamValue::Text(String::new()))]),
            "`separator` must not be empty"
        );
        assert_eq!(
            err(&[("separator", ParamValue::Int(1))]),
            "`separator` must be a string, not an integer"
        );
        assert_eq!(
            err(&[("max_split", ParamValue::Float(1.5))]),
            "`max_split` must be an integer, not a number"
        );
        assert_eq!(
            err(&[("maxsplit", ParamValue::Int(1))]),
            "unknown parameter `maxsplit` (expected `separator`, `segment`, `max_split`)"
        );
    }
}
