//! The time-expression language through the public API: every grammar element, unit spelling,
//! range function, pinned wrap-around, month-end clamping, and the exact parse and evaluation
//! errors.

use std::collections::{BTreeMap, HashMap};

use chrono::TimeDelta;
use tach_timex::{
    DateTime, EvalError, ParseError, TimeExpression, TimeRange, TimexValue, Utc, parse_datetime,
};

fn t(s: &str) -> DateTime<Utc> {
    parse_datetime(s).unwrap_or_else(|| panic!("bad test datetime {s}"))
}

/// A fixed `now`, far from the test dates.
fn now() -> DateTime<Utc> {
    t("1999-01-01T00:00:00Z")
}

fn eval(src: &str, vars: &[(&str, &str)]) -> TimexValue {
    let vars: Vec<(&str, DateTime<Utc>)> = vars.iter().map(|(k, v)| (*k, t(v))).collect();
    let expr = TimeExpression::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    expr.evaluate_at(&vars, now())
        .unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn timestamp(src: &str, vars: &[(&str, &str)]) -> DateTime<Utc> {
    match eval(src, vars) {
        TimexValue::Timestamp(ts) => ts,
        TimexValue::Range(r) => panic!("{src}: expected a timestamp, got {r}"),
    }
}

fn range(src: &str, vars: &[(&str, &str)]) -> TimeRange {
    match eval(src, vars) {
        TimexValue::Range(r) => r,
        TimexValue::Timestamp(ts) => panic!("{src}: expected a range, got {ts}"),
    }
}

fn r(begin: &str, end: &str) -> TimeRange {
    TimeRange::new(t(begin), t(end))
}

fn parse_error(src: &str) -> ParseError {
    match TimeExpression::parse(src) {
        Ok(_) => panic!("{src:?} parsed but should not"),
        Err(e) => e,
    }
}

fn eval_error(src: &str, vars: &[(&str, &str)]) -> EvalError {
    let vars: Vec<(&str, DateTime<Utc>)> = vars.iter().map(|(k, v)| (*k, t(v))).collect();
    let expr = TimeExpression::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    match expr.evaluate_at(&vars, now()) {
        Ok(value) => panic!("{src} evaluated to {value} but should fail"),
        Err(e) => e,
    }
}

const T: &[(&str, &str)] = &[("t", "2014-08-01T02:10:23.000550Z")];

// ---- grammar ----

#[test]
fn variables_evaluate_to_their_value() {
    assert_eq!(timestamp("$t", T), t("2014-08-01T02:10:23.000550Z"));
    assert_eq!(timestamp("  $t\t", T), t("2014-08-01T02:10:23.000550Z"));
    // The original lexer let whitespace separate `$` from the name.
    assert_eq!(timestamp("$ t", T), t("2014-08-01T02:10:23.000550Z"));
    // Names that are units, keywords or functions elsewhere are fine after `$`.
    let vars = [
        ("d", "2014-01-01"),
        ("to", "2014-01-02"),
        ("day", "2014-01-03"),
    ];
    assert_eq!(range("$d to $to", &vars), r("2014-01-01", "2014-01-02"));
    assert_eq!(range("day($day)", &vars), r("2014-01-03", "2014-01-04"));
}

#[test]
fn plus_minus_and_replace_on_timestamps() {
    assert_eq!(timestamp("$t + 1d", T), t("2014-08-02T02:10:23.000550Z"));
    assert_eq!(timestamp("$t - 1d", T), t("2014-07-31T02:10:23.000550Z"));
    assert_eq!(timestamp("$t @ 6h", T), t("2014-08-01T06:10:23.000550Z"));
    assert_eq!(timestamp("$t @ 0h 0m", T), t("2014-08-01T00:00:23.000550Z"));
    assert_eq!(timestamp("$t @ 0us", T), t("2014-08-01T02:10:23Z"));
    assert_eq!(
        timestamp("$t @ 2015y 2mo 3d", T),
        t("2015-02-03T02:10:23.000550Z")
    );
    assert_eq!(timestamp("$t + 0s", T), t("2014-08-01T02:10:23.000550Z"));
}

#[test]
fn operators_apply_left_to_right() {
    assert_eq!(
        timestamp("$t + 1h @ 0m", T),
        t("2014-08-01T03:00:23.000550Z")
    );
    assert_eq!(
        timestamp("$t @ 0m + 1h", T),
        t("2014-08-01T03:00:23.000550Z")
    );
    assert_eq!(
        timestamp("$t - 1h - 1h", T),
        t("2014-08-01T00:10:23.000550Z")
    );
    assert_eq!(
        timestamp("$t @ 23h + 2h @ 0s", T),
        t("2014-08-02T01:10:00.000550Z")
    );
}

#[test]
fn to_binds_loosest() {
    let vars = [("a", "2014-08-01T10:00:00Z"), ("b", "2014-08-02T10:00:00Z")];
    assert_eq!(
        range("$a to $b + 1h", &vars),
        r("2014-08-01T10:00:00Z", "2014-08-02T11:00:00Z")
    );
    assert_eq!(
        range("$a + 1h to $b", &vars),
        r("2014-08-01T11:00:00Z", "2014-08-02T10:00:00Z")
    );
    assert_eq!(
        range("$a - 30m to $b + 1h @ 0m", &vars),
        r("2014-08-01T09:30:00Z", "2014-08-02T11:00:00Z")
    );
    assert_eq!(
        range("($a to $b) + 1h", &vars),
        r("2014-08-01T11:00:00Z", "2014-08-02T11:00:00Z")
    );
    assert_eq!(
        range("($a to $b) @ 6h + 1d", &vars),
        r("2014-08-02T06:00:00Z", "2014-08-03T06:00:00Z")
    );
    // A reversed range is kept as written; it contains nothing.
    let reversed = eval("$b to $a", &vars);
    assert_eq!(
        reversed,
        TimexValue::Range(r("2014-08-02T10:00:00Z", "2014-08-01T10:00:00Z"))
    );
    assert!(!reversed.contains(t("2014-08-01T12:00:00Z")));
}

#[test]
fn parentheses_group() {
    assert_eq!(timestamp("(($t))", T), t("2014-08-01T02:10:23.000550Z"));
    assert_eq!(
        timestamp("($t + 1d) @ 0h", T),
        t("2014-08-02T00:10:23.000550Z")
    );
    assert_eq!(range("day(($t + 1d))", T), r("2014-08-02", "2014-08-03"));
    // A pinned range stays pinned through parentheses.
    let vars = [("timestamp", "2014-08-01T02:10:23Z")];
    assert_eq!(range("(day) + 6h", &vars), range("day + 6h", &vars));
}

// ---- units ----

#[test]
fn every_unit_spelling() {
    let spellings: [(&[&str], &str); 7] = [
        (
            &["us", "usec", "usecs", "microsecond", "microseconds"],
            "2014-08-01T02:10:23.000552Z",
        ),
        (
            &["s", "sec", "secs", "second", "seconds"],
            "2014-08-01T02:10:25.000550Z",
        ),
        (
            &["m", "min", "mins", "minute", "minutes"],
            "2014-08-01T02:12:23.000550Z",
        ),
        (
            &["h", "hr", "hrs", "hour", "hours"],
            "2014-08-01T04:10:23.000550Z",
        ),
        (&["d", "day", "days"], "2014-08-03T02:10:23.000550Z"),
        (&["mo", "month", "months"], "2014-10-01T02:10:23.000550Z"),
        (
            &["y", "yr", "yrs", "year", "years"],
            "2016-08-01T02:10:23.000550Z",
        ),
    ];
    for (names, expected) in spellings {
        for name in names {
            assert_eq!(
                timestamp(&format!("$t + 2{name}"), T),
                t(expected),
                "2{name}"
            );
            assert_eq!(
                timestamp(&format!("$t + 2 {name}"), T),
                t(expected),
                "2 {name}"
            );
        }
    }
}

#[test]
fn ganged_durations() {
    assert_eq!(timestamp("$t + 1d 6h", T), t("2014-08-02T08:10:23.000550Z"));
    assert_eq!(
        timestamp("$t + 1 d 6 h", T),
        t("2014-08-02T08:10:23.000550Z")
    );
    assert_eq!(
        timestamp("$t + 1 day 6 hours", T),
        t("2014-08-02T08:10:23.000550Z")
    );
    // Parts of one unit add up, as in the original.
    assert_eq!(timestamp("$t + 1h 1h", T), t("2014-08-01T04:10:23.000550Z"));
    assert_eq!(
        timestamp("$t + 1y 2mo 3d 4h 5m 6s 7us", T),
        t("2015-10-04T06:15:29.000557Z")
    );
    assert_eq!(
        timestamp("$t - 1y 2mo 3d 4h 5m 6s 7us", T),
        t("2013-05-28T22:05:17.000543Z")
    );
    // On a one-day range a bare number counts hours, and adds to written hours.
    let vars = [("a", "2014-08-01"), ("b", "2014-08-02")];
    assert_eq!(
        range("($a to $b) + 1h 2", &vars),
        r("2014-08-01T03:00:00Z", "2014-08-02T03:00:00Z")
    );
    assert_eq!(
        range("($a to $b) + 1 2", &vars),
        r("2014-08-01T03:00:00Z", "2014-08-02T03:00:00Z")
    );
}

#[test]
fn bare_numbers_take_their_unit_from_the_range_length() {
    let cases = [
        (
            "2014-01-01",
            "2015-01-01",
            "2014-03-01",
            "months (a year or longer)",
        ),
        (
            "2014-01-01",
            "2014-01-29",
            "2014-01-03",
            "days (28 days or longer)",
        ),
        (
            "2014-01-01",
            "2014-01-02",
            "2014-01-01T02:00:00Z",
            "hours (a day or longer)",
        ),
        (
            "2014-01-01",
            "2014-01-01T01:00:00Z",
            "2014-01-01T00:02:00Z",
            "minutes (an hour)",
        ),
        (
            "2014-01-01",
            "2014-01-01T00:01:00Z",
            "2014-01-01T00:00:02Z",
            "seconds (a minute)",
        ),
        (
            "2014-01-01",
            "2014-01-01T00:00:59.9Z",
            "2014-01-01T00:00:00.000002Z",
            "microseconds",
        ),
        (
            "2014-01-01",
            "2014-01-01",
            "2014-01-01T00:00:00.000002Z",
            "microseconds (empty)",
        ),
        (
            "2014-01-29",
            "2014-01-01",
            "2014-01-31",
            "days (length of a reversed range)",
        ),
    ];
    for (a, b, begin, why) in cases {
        let got = range("($a to $b) + 2", &[("a", a), ("b", b)]);
        assert_eq!(got.begin, t(begin), "{why}");
    }
}

#[test]
fn bare_numbers_on_pinned_ranges_count_one_unit_smaller() {
    let vars = [("timestamp", "2014-03-10T10:20:30Z")];
    assert_eq!(
        range("hour @ 15", &vars),
        r("2014-03-10T10:15:00Z", "2014-03-10T11:15:00Z")
    );
    assert_eq!(
        range("hour @ 25", &vars),
        r("2014-03-10T09:25:00Z", "2014-03-10T10:25:00Z")
    );
    assert_eq!(
        range("day @ 2", &vars),
        r("2014-03-10T02:00:00Z", "2014-03-11T02:00:00Z")
    );
    assert_eq!(range("month + 2", &vars), r("2014-03-03", "2014-04-03"));
    assert_eq!(range("year @ 7", &vars), r("2013-07-01", "2014-07-01"));
    // The same text means the same expression after resolution.
    assert_eq!(
        TimeExpression::parse("day @ 2").ok(),
        TimeExpression::parse("day @ 2h").ok()
    );
}

// ---- range functions ----

#[test]
fn range_functions_with_and_without_argument() {
    let vars = [
        ("timestamp", "2016-02-29T13:45:10.5Z"),
        ("x", "2014-08-01T02:10:23Z"),
    ];
    let cases = [
        ("hour", r("2016-02-29T13:00:00Z", "2016-02-29T14:00:00Z")),
        ("day", r("2016-02-29", "2016-03-01")),
        ("month", r("2016-02-01", "2016-03-01")),
        ("year", r("2016-01-01", "2017-01-01")),
        (
            "hour($x)",
            r("2014-08-01T02:00:00Z", "2014-08-01T03:00:00Z"),
        ),
        ("day($x)", r("2014-08-01", "2014-08-02")),
        ("month($x)", r("2014-08-01", "2014-09-01")),
        ("year($x)", r("2014-01-01", "2015-01-01")),
        ("month($x - 1mo)", r("2014-07-01", "2014-08-01")),
        ("day ( $x )", r("2014-08-01", "2014-08-02")),
        ("day($timestamp)", r("2016-02-29", "2016-03-01")),
    ];
    for (src, expected) in cases {
        assert_eq!(range(src, &vars), expected, "{src}");
    }
}

#[test]
fn pinned_ranges_wrap_forward() {
    let at = |ts: &'static str| [("timestamp", ts)];
    assert_eq!(
        range("hour + 30m", &at("2014-03-10T10:20:00Z")),
        r("2014-03-10T09:30:00Z", "2014-03-10T10:30:00Z")
    );
    assert_eq!(
        range("day + 6h", &at("2014-08-01T02:10:23Z")),
        r("2014-07-31T06:00:00Z", "2014-08-01T06:00:00Z")
    );
    assert_eq!(
        range("month + 15d", &at("2014-03-10")),
        r("2014-02-16", "2014-03-16")
    );
    assert_eq!(
        range("year + 6mo", &at("2014-03-10")),
        r("2013-07-01", "2014-07-01")
    );
    // No wrap needed: the shifted unit still holds the pin.
    assert_eq!(
        range("day + 6h", &at("2014-08-01T12:00:00Z")),
        r("2014-08-01T06:00:00Z", "2014-08-02T06:00:00Z")
    );
}

#[test]
fn pinned_ranges_wrap_backward() {
    let at = |ts: &'static str| [("timestamp", ts)];
    assert_eq!(
        range("hour - 30m", &at("2014-03-10T10:50:00Z")),
        r("2014-03-10T10:30:00Z", "2014-03-10T11:30:00Z")
    );
    assert_eq!(
        range("day - 6h", &at("2014-08-01T19:45:30Z")),
        r("2014-08-01T18:00:00Z", "2014-08-02T18:00:00Z")
    );
    assert_eq!(
        range("month - 5d", &at("2014-03-29")),
        r("2014-03-27", "2014-04-26")
    );
    assert_eq!(
        range("year - 1mo", &at("2014-12-15")),
        r("2014-12-01", "2015-12-01")
    );
}

#[test]
fn pinned_ranges_wrap_on_replace() {
    let at = |ts: &'static str| [("timestamp", ts)];
    assert_eq!(
        range("hour @ 45m", &at("2014-03-10T10:20:00Z")),
        r("2014-03-10T09:45:00Z", "2014-03-10T10:45:00Z")
    );
    assert_eq!(
        range("day @ 6h", &at("2014-08-01T02:10:23Z")),
        r("2014-07-31T06:00:00Z", "2014-08-01T06:00:00Z")
    );
    assert_eq!(
        range("day @ 6h", &at("2014-08-01T07:00:00Z")),
        r("2014-08-01T06:00:00Z", "2014-08-02T06:00:00Z")
    );
    assert_eq!(
        range("month @ 20d", &at("2014-03-10")),
        r("2014-02-20", "2014-03-20")
    );
    assert_eq!(
        range("year @ 4mo", &at("2014-03-10")),
        r("2013-04-01", "2014-04-01")
    );
    assert_eq!(
        range("year @ 4mo 15d 12h", &at("2014-04-15T13:00:00Z")),
        r("2014-04-15T12:00:00Z", "2015-04-15T12:00:00Z")
    );
}

#[test]
fn pinned_ranges_wrap_by_largest_unit_and_far() {
    let at = [("timestamp", "2014-03-10T10:20:00Z")];
    // Like the original, only the largest unit decides: 90m has no hours, so `hour` wraps.
    assert_eq!(
        range("hour + 90m", &at),
        r("2014-03-10T09:30:00Z", "2014-03-10T10:30:00Z")
    );
    // Far shifts in smaller units still come back around the pin.
    assert_eq!(
        range("day + 1000h", &at),
        r("2014-03-09T16:00:00Z", "2014-03-10T16:00:00Z")
    );
    assert_eq!(
        range("day - 86399999999us", &at),
        r("2014-03-10T00:00:00.000001Z", "2014-03-11T00:00:00.000001Z")
    );
    // Chains keep wrapping: `day + 6h + 6h` is noon to noon.
    assert_eq!(
        range("day + 6h + 6h", &at),
        r("2014-03-09T12:00:00Z", "2014-03-10T12:00:00Z")
    );
    assert_eq!(range("day + 6h - 6h", &at), range("day", &at));
    // Months of different lengths: the member holding the pin is still found.
    let feb = [("timestamp", "2015-02-28T12:00:00Z")];
    let got = range("month + 30d", &feb);
    assert!(got.contains(t("2015-02-28T12:00:00Z")), "{got}");
    assert_eq!(got, r("2015-01-31", "2015-03-03"));
}

#[test]
fn pinned_ranges_shift_by_a_unit_or_more() {
    let at = [("timestamp", "2014-08-01T02:10:23Z")];
    assert_eq!(range("day + 1d", &at), r("2014-08-02", "2014-08-03"));
    assert!(!eval("day + 1d", &at).contains(t("2014-08-01T02:10:23Z")));
    assert_eq!(
        range("day - 1d 6h", &at),
        r("2014-07-30T18:00:00Z", "2014-07-31T18:00:00Z")
    );
    assert_eq!(
        range("hour + 1h", &at),
        r("2014-08-01T03:00:00Z", "2014-08-01T04:00:00Z")
    );
    assert_eq!(
        range("hour - 2h 30m", &at),
        r("2014-07-31T23:30:00Z", "2014-08-01T00:30:00Z")
    );
    assert_eq!(
        range("month + 1mo", &[("timestamp", "2015-01-31")]),
        r("2015-02-01", "2015-03-01")
    );
    assert_eq!(range("year - 1y", &at), r("2013-01-01", "2014-01-01"));
    assert_eq!(range("day + 1mo", &at), r("2014-09-01", "2014-09-02"));
    // After such a shift the range is no longer pinned: a later `+ 6h` just moves it.
    assert_eq!(
        range("day + 1d + 6h", &at),
        r("2014-08-02T06:00:00Z", "2014-08-03T06:00:00Z")
    );
    // Wrapping first, then the whole-day shift.
    assert_eq!(
        range("day + 6h + 1d", &at),
        r("2014-08-01T06:00:00Z", "2014-08-02T06:00:00Z")
    );
}

// ---- month-end clamping ----

#[test]
fn month_and_year_arithmetic_clamps_to_the_last_day() {
    let at = |ts: &'static str| [("t", ts)];
    assert_eq!(
        timestamp("$t + 1mo", &at("2015-01-31T10:00:00Z")),
        t("2015-02-28T10:00:00Z")
    );
    assert_eq!(
        timestamp("$t + 1mo", &at("2016-01-31T10:00:00Z")),
        t("2016-02-29T10:00:00Z")
    );
    assert_eq!(
        timestamp("$t - 1mo", &at("2015-03-31T10:00:00Z")),
        t("2015-02-28T10:00:00Z")
    );
    assert_eq!(
        timestamp("$t - 1mo", &at("2016-03-31T10:00:00Z")),
        t("2016-02-29T10:00:00Z")
    );
    assert_eq!(
        timestamp("$t + 1y", &at("2016-02-29T10:00:00Z")),
        t("2017-02-28T10:00:00Z")
    );
    assert_eq!(
        timestamp("$t - 4y", &at("2016-02-29T10:00:00Z")),
        t("2012-02-29T10:00:00Z")
    );
    assert_eq!(timestamp("$t + 1mo", &at("2015-03-31")), t("2015-04-30"));
    assert_eq!(timestamp("$t + 1mo", &at("2014-12-31")), t("2015-01-31"));
    assert_eq!(timestamp("$t - 13mo", &at("2015-03-31")), t("2014-02-28"));
    let ends = [("a", "2015-01-31"), ("b", "2015-03-31")];
    assert_eq!(
        range("($a to $b) + 1mo", &ends),
        r("2015-02-28", "2015-04-30")
    );
    // Replacing the month or year clamps the same way; so does an explicit day.
    assert_eq!(timestamp("$t @ 2mo", &at("2015-01-31")), t("2015-02-28"));
    assert_eq!(timestamp("$t @ 2015y", &at("2016-02-29")), t("2015-02-28"));
    assert_eq!(timestamp("$t @ 31d", &at("2014-04-10")), t("2014-04-30"));
}

// ---- membership ----

#[test]
fn ranges_are_half_open() {
    let value = eval("day", &[("timestamp", "2014-08-01T02:10:23Z")]);
    assert!(value.contains(t("2014-08-01")));
    assert!(value.contains(t("2014-08-01T23:59:59.999999Z")));
    assert!(!value.contains(t("2014-08-02")));
    assert!(!value.contains(t("2014-07-31T23:59:59.999999Z")));
}

#[test]
fn a_timestamp_contains_only_itself() {
    let value = eval("$t + 1h", T);
    assert!(value.contains(t("2014-08-01T03:10:23.000550Z")));
    assert!(!value.contains(t("2014-08-01T03:10:23.000551Z")));
    assert!(!value.contains(t("2014-08-01T03:10:23.000549Z")));
}

// ---- variables ----

#[test]
fn timestamp_defaults_to_now() {
    let now = now();
    let day = TimeExpression::parse("day").expect("valid");
    assert_eq!(
        day.evaluate_at(&(), now),
        Ok(TimexValue::Range(r("1999-01-01", "1999-01-02")))
    );
    let ts = TimeExpression::parse("$timestamp + 1h").expect("valid");
    assert_eq!(
        ts.evaluate_at(&(), now),
        Ok(TimexValue::Timestamp(now + TimeDelta::hours(1)))
    );
    // A defined `timestamp` wins over now.
    let given = [("timestamp", t("2014-08-01T02:00:00Z"))];
    assert_eq!(
        ts.evaluate_at(&given, now),
        Ok(TimexValue::Timestamp(t("2014-08-01T03:00:00Z")))
    );
    // `evaluate` uses the clock, truncated to microseconds.
    let before = Utc::now() - TimeDelta::microseconds(1);
    let value = TimeExpression::parse("$timestamp")
        .expect("valid")
        .evaluate(&())
        .expect("defined");
    let after = Utc::now();
    assert!(before <= value.timestamp() && value.timestamp() <= after);
    assert_eq!(value.timestamp().timestamp_subsec_nanos() % 1000, 0);
}

#[test]
fn a_missing_variable_is_named() {
    let err = eval_error("$start + 1h to $end", &[("start", "2014-08-01")]);
    assert_eq!(
        err,
        EvalError::MissingVariable {
            name: "end".to_owned()
        }
    );
    assert_eq!(err.to_string(), "variable `$end` is not defined");
    let err = eval_error("day($audit_period_beginning)", &[]);
    assert_eq!(
        err.to_string(),
        "variable `$audit_period_beginning` is not defined"
    );
}

#[test]
fn any_variable_container_works() {
    let expr = TimeExpression::parse("$a to $b").expect("valid");
    let (a, b) = (t("2014-08-01"), t("2014-08-02"));
    let expected = Ok(TimexValue::Range(TimeRange::new(a, b)));
    let hash: HashMap<String, DateTime<Utc>> = [("a".to_owned(), a), ("b".to_owned(), b)].into();
    let btree: BTreeMap<String, DateTime<Utc>> = [("a".to_owned(), a), ("b".to_owned(), b)].into();
    let pairs: Vec<(&str, DateTime<Utc>)> = vec![("a", a), ("b", b)];
    let closure = |name: &str| match name {
        "a" => Some(a),
        "b" => Some(b),
        _ => None,
    };
    assert_eq!(expr.evaluate_at(&hash, now()), expected);
    assert_eq!(expr.evaluate_at(&btree, now()), expected);
    assert_eq!(expr.evaluate_at(&pairs, now()), expected);
    assert_eq!(expr.evaluate_at(pairs.as_slice(), now()), expected);
    assert_eq!(expr.evaluate_at(&[("a", a), ("b", b)], now()), expected);
    assert_eq!(expr.evaluate_at(&closure, now()), expected);
    assert_eq!(expr.evaluate(&closure), expected);
}

#[test]
fn variables_lists_names_in_first_use_order() {
    let names = |src: &str| -> Vec<String> {
        let expr = TimeExpression::parse(src).expect("valid");
        expr.variables().into_iter().map(str::to_owned).collect()
    };
    assert_eq!(names("$last + 1h"), ["last"]);
    assert_eq!(names("$b - 1h to $a + 1h"), ["b", "a"]);
    assert_eq!(names("($a to $a) + 2"), ["a"]);
    assert_eq!(names("day"), ["timestamp"]);
    assert_eq!(names("day @ 6h"), ["timestamp"]);
    assert_eq!(names("day($x) + 1d"), ["x"]);
}

#[test]
fn is_range_is_known_from_the_syntax() {
    for (src, is_range) in [
        ("$a", false),
        ("$a + 1d", false),
        ("day", true),
        ("$a to $b", true),
        ("(day + 1d)", true),
    ] {
        assert_eq!(
            TimeExpression::parse(src).expect("valid").is_range(),
            is_range,
            "{src}"
        );
    }
}

// ---- display ----

#[test]
fn display_reproduces_the_source_and_round_trips() {
    for src in [
        "$last + 1h",
        "  ( $a+1h )to$b  ",
        "day @ 2",
        "month($x - 1mo 2d) - 6h",
        "hour",
    ] {
        let expr = TimeExpression::parse(src).expect("valid");
        assert_eq!(expr.to_string(), src);
        assert_eq!(expr.as_str(), src);
        assert_eq!(expr.to_string().parse::<TimeExpression>(), Ok(expr.clone()));
    }
    // Equality ignores layout and redundant parentheses, not meaning.
    let parse = |s: &str| TimeExpression::parse(s).expect("valid");
    assert_eq!(parse("$a+1h to($b)"), parse("$a + 1h to $b"));
    assert_ne!(parse("$a + 1h"), parse("$a + 60m"));
    assert_ne!(parse("day"), parse("day($timestamp)"));
}

// ---- parse errors ----

#[test]
fn parse_errors_name_column_and_problem() {
    const OPERAND: &str =
        "expected `$variable`, `(` or a range function (`hour`, `day`, `month`, `year`)";
    let end_operand = format!("unexpected end of expression; {OPERAND}");
    let to_operand = format!("unexpected `to`; {OPERAND}");
    let paren_operand = format!("unexpected `)`; {OPERAND}");
    let cases = [
        ("", 1, end_operand.as_str()),
        ("$a + 1h # 2", 9, "unexpected character `#`"),
        ("$a – 1h", 4, "unexpected character `–`"),
        (
            "$a +",
            5,
            "unexpected end of expression; expected a duration such as `1h` or `30m`",
        ),
        (
            "$a + h",
            6,
            "unexpected `h`; expected a duration such as `1h` or `30m`",
        ),
        (
            "$a + 1 fortnight",
            8,
            "unknown unit `fortnight`; expected `y`, `mo`, `d`, `h`, `m`, `s` or `us`",
        ),
        (
            "$a + 2h30m",
            7,
            "unknown unit `h30m`; separate ganged durations with spaces, e.g. `2h 30m`",
        ),
        (
            "$a + 5",
            6,
            "number `5` has no unit; only a range picks a unit for a bare number",
        ),
        (
            "$a - 1h 5",
            9,
            "number `5` has no unit; only a range picks a unit for a bare number",
        ),
        (
            "week",
            1,
            "unknown range function `week`; expected `hour`, `day`, `month` or `year`",
        ),
        (
            "Day",
            1,
            "unknown range function `Day`; expected `hour`, `day`, `month` or `year`",
        ),
        ("to $a", 1, to_operand.as_str()),
        (
            "day to $b",
            1,
            "`to` needs a timestamp on its left, not a range",
        ),
        (
            "$a to day",
            7,
            "`to` needs a timestamp on its right, not a range",
        ),
        (
            "$a to $b to $c",
            1,
            "`to` needs a timestamp on its left, not a range",
        ),
        ("$a to", 6, end_operand.as_str()),
        (
            "day($a to $b)",
            5,
            "the argument of `day` must be a timestamp, not a range",
        ),
        (
            "year(day)",
            6,
            "the argument of `year` must be a timestamp, not a range",
        ),
        ("day(", 5, end_operand.as_str()),
        (
            "day($a",
            7,
            "unexpected end of expression; expected `+`, `-`, `@`, `to` or `)`",
        ),
        (
            "($a + 1h",
            9,
            "unexpected end of expression; expected `+`, `-`, `@`, `to` or `)`",
        ),
        ("()", 2, paren_operand.as_str()),
        (
            "$a)",
            3,
            "unexpected `)`; expected `+`, `-`, `@`, `to` or the end of the expression",
        ),
        (
            "$a $b",
            4,
            "unexpected `$`; expected `+`, `-`, `@`, `to` or the end of the expression",
        ),
        (
            "$a + 1h 7",
            9,
            "number `7` has no unit; only a range picks a unit for a bare number",
        ),
        (
            "$ + 1h",
            3,
            "unexpected `+`; expected a variable name after `$`",
        ),
        (
            "$",
            2,
            "unexpected end of expression; expected a variable name after `$`",
        ),
        (
            "$1",
            2,
            "unexpected number `1`; expected a variable name after `$`",
        ),
        (
            "$a @ 25h",
            6,
            "cannot set the hour to 25 (allowed: 0 to 23)",
        ),
        (
            "$a @ 20h 5h",
            6,
            "cannot set the hour to 25 (allowed: 0 to 23)",
        ),
        (
            "$a @ 0mo",
            6,
            "cannot set the month to 0 (allowed: 1 to 12)",
        ),
        (
            "$a @ 10000y",
            6,
            "cannot set the year to 10000 (allowed: 1 to 9999)",
        ),
        (
            "$a @ 60s",
            6,
            "cannot set the second to 60 (allowed: 0 to 59)",
        ),
        (
            "day @ 30",
            7,
            "cannot set the hour to 30 (allowed: 0 to 23)",
        ),
        (
            "($a to $b) @ 32d",
            14,
            "cannot set the day to 32 (allowed: 1 to 31)",
        ),
        (
            "$a + 99999999999999999999d",
            6,
            "number `99999999999999999999` is too large",
        ),
        (
            "$a + 9223372036854775807d",
            6,
            "duration `9223372036854775807d` is too large",
        ),
        ("$a + 9223372036854775807h 1h", 6, "duration is too large"),
    ];
    for (src, column, message) in cases {
        let err = parse_error(src);
        assert_eq!(
            (err.column, err.message.as_str()),
            (column, message),
            "{src:?}"
        );
        assert_eq!(err.to_string(), format!("column {column}: {message}"));
    }
}

// ---- evaluation errors ----

#[test]
fn impossible_replacements_fail_when_evaluated() {
    // A bare number's unit is only known from the range's length, so its check waits.
    let err = eval_error(
        "($a to $b) @ 30",
        &[("a", "2014-08-01"), ("b", "2014-08-02")],
    );
    assert_eq!(
        err,
        EvalError::InvalidReplace {
            field: "hour",
            value: 30,
            min: 0,
            max: 23
        }
    );
    assert_eq!(
        err.to_string(),
        "cannot set the hour to 30 (allowed: 0 to 23)"
    );
}

#[test]
fn arithmetic_beyond_the_calendar_fails() {
    let err = eval_error("$t + 300000y", &[("t", "2014-08-01")]);
    assert_eq!(
        err.to_string(),
        "`2014-08-01T00:00:00.000000Z + 300000y` is outside the supported date range"
    );
    assert!(matches!(err, EvalError::OutOfRange { .. }));
    let err = eval_error("year($t + 262000y) + 6mo", &[("t", "2014-08-01")]);
    assert!(matches!(err, EvalError::OutOfRange { .. }), "{err}");
}
