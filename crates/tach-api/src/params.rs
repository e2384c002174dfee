//! Query-string parameters, parsed as quincy accepts them; every failure names its parameter.

use chrono::{DateTime, Utc};
use tach_store::query::parse_datetime;
use tach_store::{Direction, EventFilter, StreamFilter, StreamState};

use crate::config::DEFAULT_LIMIT;
use crate::error::{ApiError, Result};

/// The decoded query string, in order; an empty value counts as absent.
pub(crate) struct Params(pub(crate) Vec<(String, String)>);

impl Params {
    /// The last non-empty value of `name`.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of `name`, in order.
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn datetime(&self, name: &'static str) -> Result<Option<DateTime<Utc>>> {
        self.get(name)
            .map(|v| {
                parse_datetime(v).ok_or_else(|| {
                    ApiError::bad(
                        name,
                        format!(
                            "{v:?} is not a datetime (expected ISO 8601, e.g. \
                             2014-07-01T12:34:56.123456 or 2014-07-01 12:34:56+00:00)"
                        ),
                    )
                })
            })
            .transpose()
    }

    /// `limit`: a positive integer, default 200, lowered to `max`.
    fn limit(&self, max: u32) -> Result<u32> {
        match self.get("limit") {
            None => Ok(DEFAULT_LIMIT.min(max)),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(u32::try_from(n).unwrap_or(u32::MAX).min(max)),
                _ => Err(ApiError::bad(
                    "limit",
                    format!("{v:?} is not a positive integer"),
                )),
            },
        }
    }

    /// `mark`: a hex row id, `+` first for ascending order. A `+` decoded from an unescaped
    /// query string arrives as a space, which is read the same way.
    fn mark(&self) -> Result<(Option<i64>, Direction)> {
        let Some(v) = self.get("mark") else {
            return Ok((None, Direction::Desc));
        };
        let (direction, hex) = match v.strip_prefix(['+', ' ']) {
            Some(rest) => (Direction::Asc, rest),
            None => (Direction::Desc, v),
        };
        if hex.is_empty() {
            return Ok((None, direction));
        }
        match i64::from_str_radix(hex, 16) {
            Ok(id) if id >= 0 && !hex.starts_with(['+', '-']) => Ok((Some(id), direction)),
            _ => Err(ApiError::bad(
                "mark",
                format!("{v:?} is not a hex row id (optionally prefixed with + for ascending)"),
            )),
        }
    }

    /// A trait list `name:value` separated by `;` or `,`.
    fn traits(&self, name: &'static str) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for v in self.all(name) {
            for item in v.split([';', ',']) {
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                match item.split_once(':') {
                    Some((k, val)) if !k.trim().is_empty() => {
                        out.push((k.trim().to_owned(), val.trim().to_owned()));
                    }
                    _ => {
                        return Err(ApiError::bad(
                            name,
                            format!(
                                "{item:?} is not name:value (expected name:value pairs \
                                 separated by ; or ,)"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    /// `details`: true/false (also 1/0, yes/no, on/off); absent is false.
    pub(crate) fn details(&self) -> Result<bool> {
        match self.get("details").map(str::to_ascii_lowercase).as_deref() {
            None | Some("false" | "0" | "no" | "off") => Ok(false),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some(_) => Err(ApiError::bad(
                "details",
                "expected true or false".to_owned(),
            )),
        }
    }

    /// The filter of `GET /v1/events` (and its count).
    pub(crate) fn event_filter(&self, max_limit: u32) -> Result<EventFilter> {
        let (mark, direction) = self.mark()?;
        Ok(EventFilter {
            from: self.datetime("from_datetime")?,
            to: self.datetime("to_datetime")?,
            event_types: self
                .all("event_name")
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect(),
            traits: self.traits("traits")?,
            direction,
            mark,
            limit: Some(self.limit(max_limit)?),
        })
    }

    /// The filter of `GET /v1/streams` (and its count).
    pub(crate) fn stream_filter(&self, max_limit: u32) -> Result<StreamFilter> {
        let (mark, direction) = self.mark()?;
        let state = self
            .get("state")
            .map(|v| {
                v.trim()
                    .to_ascii_lowercase()
                    .parse::<StreamState>()
                    .map_err(|e| ApiError::bad("state", e.to_string()))
            })
            .transpose()?;
        Ok(StreamFilter {
            older_than: self.datetime("older_than")?,
            younger_than: self.datetime("younger_than")?,
            state,
            trigger_name: self
                .get("trigger_name")
                .or_else(|| self.get("name"))
                .map(str::to_owned),
            distinguishing_traits: self.traits("distinguishing_traits")?,
            direction,
            mark,
            limit: Some(self.limit(max_limit)?),
            details: self.details()?,
            max_events: None,
        })
    }
}

/// A stream id from the path.
pub(crate) fn stream_id(v: &str) -> Result<i64> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| ApiError::bad("id", format!("{v:?} is not an integer stream id")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn marks_read_both_directions() {
        assert_eq!(p(&[]).mark().unwrap(), (None, Direction::Desc));
        assert_eq!(
            p(&[("mark", "1f")]).mark().unwrap(),
            (Some(31), Direction::Desc)
        );
        assert_eq!(
            p(&[("mark", "+1f")]).mark().unwrap(),
            (Some(31), Direction::Asc)
        );
        assert_eq!(
            p(&[("mark", " 1f")]).mark().unwrap(),
            (Some(31), Direction::Asc)
        );
        assert_eq!(p(&[("mark", "+")]).mark().unwrap(), (None, Direction::Asc));
        for bad in ["xyz", "+-1", "++1", "-1"] {
            let err = p(&[("mark", bad)]).mark().unwrap_err();
            assert!(
                matches!(err, ApiError::BadParam { param: "mark", .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn limits_default_cap_and_reject() {
        assert_eq!(p(&[]).limit(1000).unwrap(), 200);
        assert_eq!(p(&[]).limit(50).unwrap(), 50);
        assert_eq!(p(&[("limit", "5000")]).limit(1000).unwrap(), 1000);
        assert_eq!(p(&[("limit", "99999999999")]).limit(1000).unwrap(), 1000);
        assert_eq!(p(&[("limit", "7")]).limit(1000).unwrap(), 7);
        for bad in ["0", "-3", "ten", "1.5"] {
            let err = p(&[("limit", bad)]).limit(1000).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid parameter limit: {bad:?} is not a positive integer")
            );
        }
    }

    #[test]
    fn trait_lists_split_on_semicolons_and_commas() {
        let got = p(&[("traits", "a:1;b:2014-07-01T00:00:00, c : x")])
            .traits("traits")
            .unwrap();
        assert_eq!(
            got,
            [
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "2014-07-01T00:00:00".to_owned()),
                ("c".to_owned(), "x".to_owned()),
            ]
        );
        let err = p(&[("traits", "a:1;oops")]).traits("traits").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid parameter traits: \"oops\" is not name:value (expected name:value pairs \
             separated by ; or ,)"
        );
    }
}
