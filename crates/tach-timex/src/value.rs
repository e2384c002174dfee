//! What an evaluated time expression is: one instant ([`TimexValue::Timestamp`]) or a
//! half-open range ([`TimeRange`]), and which datetimes each contains.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::datetime::write_datetime;

/// A half-open range of time `[begin, end)`: it contains `begin` but not `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeRange {
    /// First instant in the range.
    pub begin: DateTime<Utc>,
    /// First instant after the range.
    pub end: DateTime<Utc>,
}

impl TimeRange {
    /// Builds the range `[begin, end)`.
    pub fn new(begin: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        TimeRange { begin, end }
    }

    /// Whether `begin <= t < end`.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.begin <= t && t < self.end
    }
}

impl fmt::Display for TimeRange {
    /// `2014-08-01T00:00:00.000000Z to 2014-08-02T00:00:00.000000Z`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_datetime(f, self.begin)?;
        f.write_str(" to ")?;
        write_datetime(f, self.end)
    }
}

/// The result of evaluating a time expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimexValue {
    /// A single instant, e.g. from `$last + 1h`.
    Timestamp(DateTime<Utc>),
    /// A range, e.g. from `day` or `$a to $b`.
    Range(TimeRange),
}

impl TimexValue {
    /// Whether `t` is in this value: a range contains `begin <= t < end`, a timestamp only itself.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        match self {
            TimexValue::Timestamp(ts) => *ts == t,
            TimexValue::Range(range) => range.contains(t),
        }
    }

    /// Whether this is a range.
    pub fn is_range(&self) -> bool {
        matches!(self, TimexValue::Range(_))
    }

    /// The instant this value stands for: the timestamp itself, or a range's beginning (as the
    /// original's `.timestamp`).
    pub fn timestamp(&self) -> DateTime<Utc> {
        self.begin()
    }

    /// The first instant: the timestamp itself, or the range's `begin`.
    pub fn begin(&self) -> DateTime<Utc> {
        match self {
            TimexValue::Timestamp(ts) => *ts,
            TimexValue::Range(range) => range.begin,
        }
    }

    /// The last bound: the timestamp itself, or the range's (excluded) `end`.
    pub fn end(&self) -> DateTime<Utc> {
        match self {
            TimexValue::Timestamp(ts) => *ts,
            TimexValue::Range(range) => range.end,
        }
    }

    /// The range, if this is one.
    pub fn as_range(&self) -> Option<TimeRange> {
        match self {
            TimexValue::Timestamp(_) => None,
            TimexValue::Range(range) => Some(*range),
        }
    }
}

impl From<TimeRange> for TimexValue {
    fn from(range: TimeRange) -> Self {
        TimexValue::Range(range)
    }
}

impl From<DateTime<Utc>> for TimexValue {
    fn from(ts: DateTime<Utc>) -> Self {
        TimexValue::Timestamp(ts)
    }
}

impl fmt::Display for TimexValue {
    /// A timestamp as `2014-08-01T02:10:23.000550Z`; a range as `<begin> to <end>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimexValue::Timestamp(ts) => write_datetime(f, *ts),
            TimexValue::Range(range) => range.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::parse_datetime;

    fn dt(s: &str) -> DateTime<Utc> {
        parse_datetime(s).expect("test datetime")
    }

    #[test]
    fn ranges_are_half_open() {
        let range = TimeRange::new(dt("2014-08-01"), dt("2014-08-02"));
        let one_us = TimeDelta::microseconds(1);
        assert!(range.contains(range.begin));
        assert!(range.contains(dt("2014-08-01T17:30:10.000025")));
        assert!(range.contains(range.end - one_us));
        assert!(!range.contains(range.end));
        assert!(!range.contains(range.begin - one_us));
        let value = TimexValue::from(range);
        assert!(value.contains(range.begin));
        assert!(!value.contains(range.end));
        assert!(value.is_range());
        assert_eq!(value.timestamp(), range.begin);
        assert_eq!(value.end(), range.end);
    }

    #[test]
    fn reversed_and_empty_ranges_contain_nothing() {
        let t = dt("2014-08-01");
        assert!(!TimeRange::new(t, t).contains(t));
        assert!(!TimeRange::new(dt("2014-08-02"), t).contains(dt("2014-08-01T12:00:00")));
    }

    #[test]
    fn a_timestamp_contains_only_itself() {
        let t = dt("2014-08-01T02:10:23.000550");
        let value = TimexValue::Timestamp(t);
        assert!(value.contains(t));
        assert!(!value.contains(t + TimeDelta::microseconds(1)));
        assert!(!value.contains(t - TimeDelta::microseconds(1)));
        assert!(!value.is_range());
        assert_eq!(value.as_range(), None);
        assert_eq!((value.begin(), value.end(), value.timestamp()), (t, t, t));
    }

    #[test]
    fn display_uses_the_shared_datetime_format() {
        let range = TimeRange::new(dt("2014-08-01"), dt("2014-08-02T00:00:00.5"));
        assert_eq!(
            TimexValue::Range(range).to_string(),
            "2014-08-01T00:00:00.000000Z to 2014-08-02T00:00:00.500000Z"
        );
        assert_eq!(
            TimexValue::Timestamp(dt("2014-08-01T02:10:23.00055")).to_string(),
            "2014-08-01T02:10:23.000550Z"
        );
    }
}
