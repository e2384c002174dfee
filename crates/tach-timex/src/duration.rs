//! Durations (`1d 6h`, `30m`) and the calendar arithmetic they drive: adding and subtracting
//! (month and year steps keep the day of month, clamped to the month's last day) and replacing
//! fields (`@ 6h`). Also the range units of `hour`, `day`, `month`, `year`. Parsing durations
//! is the parser's job; choosing a unit for a bare number is the evaluator's.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};

/// A unit a duration can be counted in, largest first (so `Year < Month` in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Unit {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Microsecond,
}

impl Unit {
    /// Every unit, largest first.
    pub(crate) const ALL: [Unit; 7] = [
        Unit::Year,
        Unit::Month,
        Unit::Day,
        Unit::Hour,
        Unit::Minute,
        Unit::Second,
        Unit::Microsecond,
    ];

    /// Looks a unit up by any of its spellings: the original lexer's short ones (`y`, `yr`,
    /// `mo`, `d`, `h`, `hr`, `m`, `min`, `s`, `sec`, `us`) plus plurals and long forms.
    pub(crate) fn from_name(name: &str) -> Option<Unit> {
        Some(match name {
            "y" | "yr" | "yrs" | "year" | "years" => Unit::Year,
            "mo" | "month" | "months" => Unit::Month,
            "d" | "day" | "days" => Unit::Day,
            "h" | "hr" | "hrs" | "hour" | "hours" => Unit::Hour,
            "m" | "min" | "mins" | "minute" | "minutes" => Unit::Minute,
            "s" | "sec" | "secs" | "second" | "seconds" => Unit::Second,
            "us" | "usec" | "usecs" | "microsecond" | "microseconds" => Unit::Microsecond,
            _ => return None,
        })
    }

    /// The canonical short spelling, as used when a duration is displayed.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Unit::Year => "y",
            Unit::Month => "mo",
            Unit::Day => "d",
            Unit::Hour => "h",
            Unit::Minute => "m",
            Unit::Second => "s",
            Unit::Microsecond => "us",
        }
    }

    /// The datetime field this unit replaces with `@`.
    fn field_name(self) -> &'static str {
        match self {
            Unit::Year => "year",
            Unit::Month => "month",
            Unit::Day => "day",
            Unit::Hour => "hour",
            Unit::Minute => "minute",
            Unit::Second => "second",
            Unit::Microsecond => "microsecond",
        }
    }

    /// The values `@` accepts for this field. Years stay within 1..=9999 like the original's
    /// Python datetimes; a day above the month's length is clamped to its last day.
    fn replace_bounds(self) -> (i64, i64) {
        match self {
            Unit::Year => (1, 9999),
            Unit::Month => (1, 12),
            Unit::Day => (1, 31),
            Unit::Hour => (0, 23),
            Unit::Minute | Unit::Second => (0, 59),
            Unit::Microsecond => (0, 999_999),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The unit of a range function: `hour`, `day`, `month` or `year`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RangeUnit {
    Hour,
    Day,
    Month,
    Year,
}

impl RangeUnit {
    /// Looks a range function up by name.
    pub(crate) fn from_name(name: &str) -> Option<RangeUnit> {
        Some(match name {
            "hour" => RangeUnit::Hour,
            "day" => RangeUnit::Day,
            "month" => RangeUnit::Month,
            "year" => RangeUnit::Year,
            _ => return None,
        })
    }

    /// The function's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            RangeUnit::Hour => "hour",
            RangeUnit::Day => "day",
            RangeUnit::Month => "month",
            RangeUnit::Year => "year",
        }
    }

    /// The duration unit of the same size.
    pub(crate) fn unit(self) -> Unit {
        match self {
            RangeUnit::Hour => Unit::Hour,
            RangeUnit::Day => Unit::Day,
            RangeUnit::Month => Unit::Month,
            RangeUnit::Year => Unit::Year,
        }
    }

    /// The unit a bare number counts in when applied to a range of this unit; the same unit
    /// the original's length rule picks for ranges of these lengths.
    pub(crate) fn bare_number_unit(self) -> Unit {
        match self {
            RangeUnit::Hour => Unit::Minute,
            RangeUnit::Day => Unit::Hour,
            RangeUnit::Month => Unit::Day,
            RangeUnit::Year => Unit::Month,
        }
    }

    /// The start of the unit containing `dt` (e.g. midnight for `day`).
    pub(crate) fn start(self, dt: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let date = match self {
            RangeUnit::Hour => {
                return dt
                    .date_naive()
                    .and_hms_opt(dt.hour(), 0, 0)
                    .map(|n| n.and_utc());
            }
            RangeUnit::Day => dt.date_naive(),
            RangeUnit::Month => NaiveDate::from_ymd_opt(dt.year(), dt.month(), 1)?,
            RangeUnit::Year => NaiveDate::from_ymd_opt(dt.year(), 1, 1)?,
        };
        date.and_hms_opt(0, 0, 0).map(|n| n.and_utc())
    }

    /// `dt` moved by `count` whole units (month and year steps clamp the day of month).
    pub(crate) fn step(self, dt: DateTime<Utc>, count: i64) -> Option<DateTime<Utc>> {
        match self {
            RangeUnit::Hour => dt.checked_add_signed(TimeDelta::try_hours(count)?),
            RangeUnit::Day => dt.checked_add_signed(TimeDelta::try_days(count)?),
            RangeUnit::Month => add_months(dt, count),
            RangeUnit::Year => add_months(dt, count.checked_mul(12)?),
        }
    }
}

/// What `+`, `-` and `@` do with their duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Operator {
    Plus,
    Minus,
    Replace,
}

impl Operator {
    /// The operator as written.
    pub(crate) fn symbol(self) -> char {
        match self {
            Operator::Plus => '+',
            Operator::Minus => '-',
            Operator::Replace => '@',
        }
    }

    /// Applies the operator with `duration` to one datetime.
    pub(crate) fn apply(
        self,
        dt: DateTime<Utc>,
        duration: &Duration,
    ) -> Result<DateTime<Utc>, DateError> {
        match self {
            Operator::Plus => duration.shift(dt, false).ok_or(DateError::OutOfRange),
            Operator::Minus => duration.shift(dt, true).ok_or(DateError::OutOfRange),
            Operator::Replace => duration.replace(dt),
        }
    }
}

/// Why date arithmetic failed; the evaluator adds the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateError {
    /// The result is not a representable datetime.
    OutOfRange,
    /// `@` asked for an impossible field value.
    Field(FieldError),
}

/// `@` asked for an impossible field value, e.g. hour 25.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub(crate) unit: Unit,
    pub(crate) value: i64,
}

impl FieldError {
    /// The field's name, e.g. `hour`.
    pub(crate) fn field(&self) -> &'static str {
        self.unit.field_name()
    }

    /// The allowed values, inclusive.
    pub(crate) fn bounds(&self) -> (i64, i64) {
        self.unit.replace_bounds()
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (min, max) = self.bounds();
        write!(
            f,
            "cannot set the {} to {} (allowed: {min} to {max})",
            self.field(),
            self.value
        )
    }
}

/// An amount per unit, e.g. `1d 6h`. Ganged parts of the same unit add up (`1h 2h` is 3
/// hours), as in the original. A part written with 0 is kept (it matters to `@`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Duration {
    amounts: [Option<i64>; 7],
}

impl Duration {
    /// The amount written for `unit`, if any.
    pub(crate) fn get(&self, unit: Unit) -> Option<i64> {
        self.amounts[unit.index()]
    }

    /// This duration with `amount` more of `unit`; `None` on overflow.
    pub(crate) fn plus(mut self, unit: Unit, amount: i64) -> Option<Duration> {
        let slot = &mut self.amounts[unit.index()];
        *slot = Some(slot.unwrap_or(0).checked_add(amount)?);
        Some(self)
    }

    /// Whether no unit is written at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.amounts.iter().all(Option::is_none)
    }

    /// Whether a pinned range of `unit` wraps around its pin after this duration: true when
    /// the duration has no non-zero amount in `unit` or any larger unit (the original compared
    /// durations by their largest unit, so `hour + 90m` wraps while `day + 1d` shifts).
    pub(crate) fn is_shorter_than(&self, unit: RangeUnit) -> bool {
        Unit::ALL
            .iter()
            .take_while(|u| **u <= unit.unit())
            .all(|u| self.get(*u).unwrap_or(0) == 0)
    }

    /// Checks every written field against the values `@` accepts.
    pub(crate) fn check_replace(&self) -> Result<(), FieldError> {
        for unit in Unit::ALL {
            if let Some(value) = self.get(unit) {
                let (min, max) = unit.replace_bounds();
                if !(min..=max).contains(&value) {
                    return Err(FieldError { unit, value });
                }
            }
        }
        Ok(())
    }

    /// Checks that `+` and `-` with this duration can be computed at all.
    pub(crate) fn check_shift(&self) -> bool {
        self.delta().is_some() && self.months().is_some()
    }

    /// The calendar part: years and months, in months.
    fn months(&self) -> Option<i64> {
        let years = self.get(Unit::Year).unwrap_or(0);
        years
            .checked_mul(12)?
            .checked_add(self.get(Unit::Month).unwrap_or(0))
    }

    /// The fixed-length part: days and smaller.
    fn delta(&self) -> Option<TimeDelta> {
        let parts = [
            TimeDelta::try_days(self.get(Unit::Day).unwrap_or(0))?,
            TimeDelta::try_hours(self.get(Unit::Hour).unwrap_or(0))?,
            TimeDelta::try_minutes(self.get(Unit::Minute).unwrap_or(0))?,
            TimeDelta::try_seconds(self.get(Unit::Second).unwrap_or(0))?,
            TimeDelta::microseconds(self.get(Unit::Microsecond).unwrap_or(0)),
        ];
        parts
            .iter()
            .try_fold(TimeDelta::zero(), |sum, part| sum.checked_add(part))
    }

    /// Adds (or subtracts) the duration as the original did: first the fixed-length part,
    /// then the months and years, keeping the day of month clamped to the month's last day.
    fn shift(&self, dt: DateTime<Utc>, backwards: bool) -> Option<DateTime<Utc>> {
        let (delta, months) = (self.delta()?, self.months()?);
        let (dt, months) = if backwards {
            (dt.checked_sub_signed(delta)?, months.checked_neg()?)
        } else {
            (dt.checked_add_signed(delta)?, months)
        };
        if months == 0 {
            Some(dt)
        } else {
            add_months(dt, months)
        }
    }

    /// Sets every written field at once (`@ 12mo 31d` works from any date); a day past the
    /// end of the resulting month is clamped to its last day.
    fn replace(&self, dt: DateTime<Utc>) -> Result<DateTime<Utc>, DateError> {
        self.check_replace().map_err(DateError::Field)?;
        // The checks above bound every value, so the narrowing conversions below cannot fail;
        // they still report `OutOfRange` rather than panic.
        let field = |unit: Unit, current: u32| -> Result<u32, DateError> {
            self.get(unit).map_or(Ok(current), |v| {
                u32::try_from(v).map_err(|_| DateError::OutOfRange)
            })
        };
        let year = match self.get(Unit::Year) {
            Some(v) => i32::try_from(v).map_err(|_| DateError::OutOfRange)?,
            None => dt.year(),
        };
        let month = field(Unit::Month, dt.month())?;
        let day = field(Unit::Day, dt.day())?.min(days_in_month(year, month));
        let hour = field(Unit::Hour, dt.hour())?;
        let minute = field(Unit::Minute, dt.minute())?;
        let second = field(Unit::Second, dt.second())?;
        // A leap second's extra nanoseconds cannot survive a change of second; drop them.
        let nanos = match self.get(Unit::Microsecond) {
            Some(_) => field(Unit::Microsecond, 0)? * 1000,
            None => dt.nanosecond() % 1_000_000_000,
        };
        NaiveDate::from_ymd_opt(year, month, day)
            .and_then(|date| date.and_hms_nano_opt(hour, minute, second, nanos))
            .map(|naive| naive.and_utc())
            .ok_or(DateError::OutOfRange)
    }
}

impl fmt::Display for Duration {
    /// Canonical form: parts largest first, separated by spaces, e.g. `1d 6h`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for unit in Unit::ALL {
            if let Some(amount) = self.get(unit) {
                if !first {
                    f.write_str(" ")?;
                }
                first = false;
                write!(f, "{amount}{}", unit.symbol())?;
            }
        }
        Ok(())
    }
}

/// `dt` moved by `months` calendar months, keeping the time of day and the day of month,
/// clamped to the target month's last day (`Jan 31 + 1mo` is Feb 28 or 29).
pub(crate) fn add_months(dt: DateTime<Utc>, months: i64) -> Option<DateTime<Utc>> {
    let current = i64::from(dt.year()) * 12 + i64::from(dt.month0());
    let target = current.checked_add(months)?;
    let year = i32::try_from(target.div_euclid(12)).ok()?;
    let month = u32::try_from(target.rem_euclid(12)).ok()? + 1;
    let day = dt.day().min(days_in_month(year, month));
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    Some(date.and_time(dt.time()).and_utc())
}

/// Number of days in `month` (1-based) of `year` (proleptic Gregorian).
pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DateTime<Utc> {
        crate::parse_datetime(s).expect("test datetime")
    }

    fn duration(parts: &[(Unit, i64)]) -> Duration {
        parts.iter().fold(Duration::default(), |d, (u, a)| {
            d.plus(*u, *a).expect("small")
        })
    }

    #[test]
    fn every_spelling_names_its_unit() {
        let cases: [(&[&str], Unit); 7] = [
            (&["y", "yr", "yrs", "year", "years"], Unit::Year),
            (&["mo", "month", "months"], Unit::Month),
            (&["d", "day", "days"], Unit::Day),
            (&["h", "hr", "hrs", "hour", "hours"], Unit::Hour),
            (&["m", "min", "mins", "minute", "minutes"], Unit::Minute),
            (&["s", "sec", "secs", "second", "seconds"], Unit::Second),
            (
                &["us", "usec", "usecs", "microsecond", "microseconds"],
                Unit::Microsecond,
            ),
        ];
        for (names, unit) in cases {
            for name in names {
                assert_eq!(Unit::from_name(name), Some(unit), "{name}");
            }
        }
        for name in ["", "M", "H", "ms", "w", "week", "to", "hour_", "h30m"] {
            assert_eq!(Unit::from_name(name), None, "{name}");
        }
    }

    #[test]
    fn ganged_parts_of_one_unit_add_up() {
        let d = duration(&[(Unit::Hour, 1), (Unit::Hour, 2), (Unit::Day, 1)]);
        assert_eq!(d.get(Unit::Hour), Some(3));
        assert_eq!(d.to_string(), "1d 3h");
        assert_eq!(
            Duration::default()
                .plus(Unit::Day, i64::MAX)
                .and_then(|d| d.plus(Unit::Day, 1)),
            None
        );
    }

    #[test]
    fn shorter_than_compares_by_largest_unit() {
        assert!(duration(&[(Unit::Hour, 23)]).is_shorter_than(RangeUnit::Day));
        assert!(duration(&[(Unit::Hour, 1000)]).is_shorter_than(RangeUnit::Day));
        assert!(duration(&[(Unit::Day, 0), (Unit::Hour, 5)]).is_shorter_than(RangeUnit::Day));
        assert!(duration(&[(Unit::Year, 0), (Unit::Hour, 5)]).is_shorter_than(RangeUnit::Day));
        assert!(!duration(&[(Unit::Day, 1)]).is_shorter_than(RangeUnit::Day));
        assert!(!duration(&[(Unit::Month, 1)]).is_shorter_than(RangeUnit::Day));
        assert!(duration(&[(Unit::Month, 11)]).is_shorter_than(RangeUnit::Year));
        assert!(!duration(&[(Unit::Minute, 1), (Unit::Hour, 1)]).is_shorter_than(RangeUnit::Hour));
    }

    #[test]
    fn months_clamp_to_the_last_day() {
        let one_month = duration(&[(Unit::Month, 1)]);
        let plus = |s: &str, d: &Duration| Operator::Plus.apply(dt(s), d).expect("in range");
        let minus = |s: &str, d: &Duration| Operator::Minus.apply(dt(s), d).expect("in range");
        assert_eq!(
            plus("2015-01-31T10:00:00Z", &one_month),
            dt("2015-02-28T10:00:00Z")
        );
        assert_eq!(
            plus("2016-01-31T10:00:00Z", &one_month),
            dt("2016-02-29T10:00:00Z")
        );
        assert_eq!(
            minus("2015-03-31T10:00:00Z", &one_month),
            dt("2015-02-28T10:00:00Z")
        );
        assert_eq!(
            plus("2014-12-15T00:00:00Z", &one_month),
            dt("2015-01-15T00:00:00Z")
        );
        assert_eq!(
            minus("2015-01-15T00:00:00Z", &one_month),
            dt("2014-12-15T00:00:00Z")
        );
        let one_year = duration(&[(Unit::Year, 1)]);
        assert_eq!(
            plus("2016-02-29T00:00:00Z", &one_year),
            dt("2017-02-28T00:00:00Z")
        );
        // Thirteen months in one step: no intermediate clamp to Feb 28 2015.
        let y1mo1 = duration(&[(Unit::Year, 1), (Unit::Month, 1)]);
        assert_eq!(
            plus("2015-01-31T00:00:00Z", &y1mo1),
            dt("2016-02-29T00:00:00Z")
        );
        // The fixed part goes first, as in the original: Jan 30 + 1d = Jan 31, + 1mo = Feb 28.
        let mo1d1 = duration(&[(Unit::Month, 1), (Unit::Day, 1)]);
        assert_eq!(
            plus("2015-01-30T00:00:00Z", &mo1d1),
            dt("2015-02-28T00:00:00Z")
        );
    }

    #[test]
    fn replace_sets_fields_at_once_and_clamps_the_day() {
        let d = duration(&[(Unit::Month, 12), (Unit::Day, 31), (Unit::Hour, 12)]);
        let got = Operator::Replace.apply(dt("2014-02-10T01:02:03.000004Z"), &d);
        assert_eq!(got, Ok(dt("2014-12-31T12:02:03.000004Z")));
        let d = duration(&[(Unit::Day, 31)]);
        let got = Operator::Replace.apply(dt("2014-02-10T00:00:00Z"), &d);
        assert_eq!(got, Ok(dt("2014-02-28T00:00:00Z")));
        let d = duration(&[(Unit::Hour, 24)]);
        let got = Operator::Replace.apply(dt("2014-02-10T00:00:00Z"), &d);
        assert_eq!(
            got,
            Err(DateError::Field(FieldError {
                unit: Unit::Hour,
                value: 24
            }))
        );
        let d = duration(&[(Unit::Day, 0)]);
        let err = Operator::Replace
            .apply(dt("2014-02-10T00:00:00Z"), &d)
            .unwrap_err();
        match err {
            DateError::Field(e) => {
                assert_eq!(e.to_string(), "cannot set the day to 0 (allowed: 1 to 31)")
            }
            DateError::OutOfRange => panic!("expected a field error"),
        }
    }

    #[test]
    fn huge_durations_are_out_of_range_not_panics() {
        let d = duration(&[(Unit::Year, 1_000_000)]);
        assert_eq!(
            Operator::Plus.apply(dt("2014-01-01"), &d),
            Err(DateError::OutOfRange)
        );
        let d = duration(&[(Unit::Day, i64::MAX)]);
        assert!(!d.check_shift());
        assert_eq!(
            Operator::Minus.apply(dt("2014-01-01"), &d),
            Err(DateError::OutOfRange)
        );
    }

    #[test]
    fn range_units_start_and_step() {
        let t = dt("2016-02-29T13:45:10.5Z");
        let starts = [
            (RangeUnit::Hour, "2016-02-29T13:00:00Z"),
            (RangeUnit::Day, "2016-02-29T00:00:00Z"),
            (RangeUnit::Month, "2016-02-01T00:00:00Z"),
            (RangeUnit::Year, "2016-01-01T00:00:00Z"),
        ];
        for (unit, start) in starts {
            assert_eq!(unit.start(t), Some(dt(start)), "{}", unit.name());
        }
        assert_eq!(
            RangeUnit::Year.step(t, 1),
            Some(dt("2017-02-28T13:45:10.5Z"))
        );
        assert_eq!(
            RangeUnit::Month.step(t, -1),
            Some(dt("2016-01-29T13:45:10.5Z"))
        );
        assert_eq!(
            RangeUnit::Day.step(t, 2),
            Some(dt("2016-03-02T13:45:10.5Z"))
        );
        assert_eq!(
            RangeUnit::Hour.step(t, -14),
            Some(dt("2016-02-28T23:45:10.5Z"))
        );
    }
}
