//! The original project's test cases (openstack/stacktach-timex), ported to expressions.
//! Each test names the Python file and test it comes from. Where the original tested a Python
//! class directly (Timestamp, TimeRange, PinnedTimeRange), the same operation is written as an
//! expression over variables.

use chrono::NaiveDate;
use tach_timex::{DateTime, TimeExpression, TimeRange, TimexValue, Utc};

fn dt(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|date| date.and_hms_micro_opt(h, mi, s, us))
        .expect("valid test datetime")
        .and_utc()
}

fn eval(src: &str, vars: &[(&str, DateTime<Utc>)]) -> TimexValue {
    let expr = TimeExpression::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    // A fixed `now` far from every test date, so a forgotten `timestamp` cannot pass by luck.
    expr.evaluate_at(vars, dt(1999, 1, 1, 0, 0, 0, 0))
        .unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn timestamp(src: &str, vars: &[(&str, DateTime<Utc>)]) -> DateTime<Utc> {
    match eval(src, vars) {
        TimexValue::Timestamp(t) => t,
        TimexValue::Range(r) => panic!("{src}: expected a timestamp, got {r}"),
    }
}

fn range(src: &str, vars: &[(&str, DateTime<Utc>)]) -> TimeRange {
    match eval(src, vars) {
        TimexValue::Range(r) => r,
        TimexValue::Timestamp(t) => panic!("{src}: expected a range, got {t}"),
    }
}

/// `dt` and `other_dt` of tests/test_parse.py `TestParse.setUp`.
fn parse_vars() -> [(&'static str, DateTime<Utc>); 2] {
    [
        ("test_thingy", dt(2014, 8, 1, 2, 10, 23, 550)),
        ("other", dt(2014, 8, 7, 3, 20, 0, 0)),
    ]
}

// ---- tests/test_parse.py ----

#[test]
fn test_parse_var() {
    let vars = parse_vars();
    assert_eq!(
        eval("$test_thingy", &vars),
        TimexValue::Timestamp(vars[0].1)
    );
}

#[test]
fn test_parse_timestamp_add_sub_replace() {
    let vars = parse_vars();
    assert_eq!(
        timestamp("$test_thingy + 1d 2h", &vars),
        dt(2014, 8, 2, 4, 10, 23, 550)
    );
    assert_eq!(
        timestamp("$test_thingy - 1d 2h", &vars),
        dt(2014, 7, 31, 0, 10, 23, 550)
    );
    assert_eq!(
        timestamp("$test_thingy @ 7d 6h", &vars),
        dt(2014, 8, 7, 6, 10, 23, 550)
    );
}

#[test]
fn test_parse_timerange() {
    let vars = parse_vars();
    assert_eq!(
        range("$test_thingy to $other", &vars),
        TimeRange::new(vars[0].1, vars[1].1)
    );
}

#[test]
fn test_parse_timerange_add_sub_replace() {
    let vars = parse_vars();
    assert_eq!(
        range("($test_thingy to $other) + 1d 2h", &vars),
        TimeRange::new(dt(2014, 8, 2, 4, 10, 23, 550), dt(2014, 8, 8, 5, 20, 0, 0))
    );
    assert_eq!(
        range("($test_thingy to $other) - 1d 2h", &vars),
        TimeRange::new(dt(2014, 7, 31, 0, 10, 23, 550), dt(2014, 8, 6, 1, 20, 0, 0))
    );
    assert_eq!(
        range("($test_thingy to $other) @ 6h", &vars),
        TimeRange::new(dt(2014, 8, 1, 6, 10, 23, 550), dt(2014, 8, 7, 6, 20, 0, 0))
    );
}

#[test]
fn test_parse_special_range() {
    let vars = parse_vars();
    let expected = TimeRange::new(dt(2014, 8, 1, 0, 0, 0, 0), dt(2014, 8, 2, 0, 0, 0, 0));
    assert_eq!(range("day($test_thingy)", &vars), expected);
    assert_eq!(range("day", &[("timestamp", vars[0].1)]), expected);
}

#[test]
fn test_parse_special_range_wrap_replace_add_sub() {
    let t = [("timestamp", dt(2014, 8, 1, 2, 10, 23, 550))];
    let six_to_six = TimeRange::new(dt(2014, 7, 31, 6, 0, 0, 0), dt(2014, 8, 1, 6, 0, 0, 0));
    assert_eq!(range("day @ 6h", &t), six_to_six);
    assert_eq!(range("day + 6h", &t), six_to_six);
    let t = [("timestamp", dt(2014, 8, 1, 19, 45, 30, 225))];
    assert_eq!(
        range("day - 6h", &t),
        TimeRange::new(dt(2014, 8, 1, 18, 0, 0, 0), dt(2014, 8, 2, 18, 0, 0, 0))
    );
}

#[test]
fn test_parse_timerange_ambig_duration() {
    let t = [("timestamp", dt(2014, 8, 1, 2, 10, 23, 550))];
    assert_eq!(
        range("day @ 2", &t),
        TimeRange::new(dt(2014, 8, 1, 2, 0, 0, 0), dt(2014, 8, 2, 2, 0, 0, 0))
    );
}

// ---- tests/test_expression.py, TestTimestamp (dt = 2014-08-01 02:10:23.000550) ----

fn ts_vars() -> [(&'static str, DateTime<Utc>); 1] {
    [("t", dt(2014, 8, 1, 2, 10, 23, 550))]
}

#[test]
fn test_timestamp_match_and_in() {
    let value = eval("$t", &ts_vars());
    assert!(value.contains(dt(2014, 8, 1, 2, 10, 23, 550)));
    assert!(!value.contains(dt(2014, 8, 7, 2, 0, 0, 0)));
    assert_eq!(
        (value.begin(), value.end()),
        (ts_vars()[0].1, ts_vars()[0].1)
    );
}

#[test]
fn test_timestamp_add() {
    let v = ts_vars();
    assert_eq!(timestamp("$t + 10us", &v), dt(2014, 8, 1, 2, 10, 23, 560));
    assert_eq!(timestamp("$t + 10s", &v), dt(2014, 8, 1, 2, 10, 33, 550));
    assert_eq!(timestamp("$t + 7m", &v), dt(2014, 8, 1, 2, 17, 23, 550));
    assert_eq!(timestamp("$t + 1h", &v), dt(2014, 8, 1, 3, 10, 23, 550));
    assert_eq!(timestamp("$t + 2d", &v), dt(2014, 8, 3, 2, 10, 23, 550));
    assert_eq!(timestamp("$t + 6mo", &v), dt(2015, 2, 1, 2, 10, 23, 550));
    assert_eq!(timestamp("$t + 3y", &v), dt(2017, 8, 1, 2, 10, 23, 550));
}

#[test]
fn test_timestamp_sub() {
    let v = ts_vars();
    assert_eq!(timestamp("$t - 10us", &v), dt(2014, 8, 1, 2, 10, 23, 540));
    assert_eq!(timestamp("$t - 10s", &v), dt(2014, 8, 1, 2, 10, 13, 550));
    assert_eq!(timestamp("$t - 7m", &v), dt(2014, 8, 1, 2, 3, 23, 550));
    assert_eq!(timestamp("$t - 1h", &v), dt(2014, 8, 1, 1, 10, 23, 550));
    assert_eq!(timestamp("$t - 2d", &v), dt(2014, 7, 30, 2, 10, 23, 550));
    assert_eq!(timestamp("$t - 6mo", &v), dt(2014, 2, 1, 2, 10, 23, 550));
    assert_eq!(timestamp("$t - 3y", &v), dt(2011, 8, 1, 2, 10, 23, 550));
}

#[test]
fn test_timestamp_replace() {
    let v = ts_vars();
    assert_eq!(timestamp("$t @ 2d", &v), dt(2014, 8, 2, 2, 10, 23, 550));
    assert_eq!(timestamp("$t @ 6mo", &v), dt(2014, 6, 1, 2, 10, 23, 550));
    assert_eq!(timestamp("$t @ 2017y", &v), dt(2017, 8, 1, 2, 10, 23, 550));
    assert_eq!(
        timestamp("$t @ 0h 0m 0s 0us", &v),
        dt(2014, 8, 1, 0, 0, 0, 0)
    );
}

#[test]
fn test_timestamp_handle_ambig_duration() {
    // The original raised TimexExpressionError; a bare number on a timestamp is rejected when
    // parsing (the original's parser also refused `Operation(timestamp, bare number)`).
    for src in ["$t + 10h 2", "$t - 10h 2", "$t @ 10h 2"] {
        let err = TimeExpression::parse(src).unwrap_err();
        assert_eq!(err.column, 10, "{src}");
    }
}

// ---- tests/test_expression.py, TestTimeRange (2014-08-01 02:10:23.000550 to one day later) ----

fn range_vars() -> [(&'static str, DateTime<Utc>); 2] {
    [
        ("b", dt(2014, 8, 1, 2, 10, 23, 550)),
        ("e", dt(2014, 8, 2, 2, 10, 23, 550)),
    ]
}

/// The TestTimeRange expectations: both ends moved the same way.
fn day_later(begin: DateTime<Utc>) -> TimeRange {
    TimeRange::new(begin, begin + chrono::TimeDelta::days(1))
}

#[test]
fn test_timerange_match_and_in() {
    let value = eval("$b to $e", &range_vars());
    assert!(
        value.contains(dt(2014, 8, 1, 2, 10, 23, 550)),
        "ranges include the beginning"
    );
    assert!(value.contains(dt(2014, 8, 1, 17, 30, 10, 25)));
    assert!(
        !value.contains(dt(2014, 8, 2, 2, 10, 23, 550)),
        "ranges don't include the end"
    );
    assert!(!value.contains(dt(2014, 8, 7, 2, 0, 0, 0)));
    assert_eq!(value.timestamp(), dt(2014, 8, 1, 2, 10, 23, 550));
}

#[test]
fn test_timerange_add() {
    let v = range_vars();
    let cases = [
        ("10us", dt(2014, 8, 1, 2, 10, 23, 560)),
        ("10s", dt(2014, 8, 1, 2, 10, 33, 550)),
        ("7m", dt(2014, 8, 1, 2, 17, 23, 550)),
        ("1h", dt(2014, 8, 1, 3, 10, 23, 550)),
        ("2d", dt(2014, 8, 3, 2, 10, 23, 550)),
        ("6mo", dt(2015, 2, 1, 2, 10, 23, 550)),
        ("3y", dt(2017, 8, 1, 2, 10, 23, 550)),
    ];
    for (duration, begin) in cases {
        assert_eq!(
            range(&format!("($b to $e) + {duration}"), &v),
            day_later(begin),
            "{duration}"
        );
    }
}

#[test]
fn test_timerange_sub() {
    let v = range_vars();
    let cases = [
        ("10us", dt(2014, 8, 1, 2, 10, 23, 540)),
        ("10s", dt(2014, 8, 1, 2, 10, 13, 550)),
        ("7m", dt(2014, 8, 1, 2, 3, 23, 550)),
        ("1h", dt(2014, 8, 1, 1, 10, 23, 550)),
        ("2d", dt(2014, 7, 30, 2, 10, 23, 550)),
        ("6mo", dt(2014, 2, 1, 2, 10, 23, 550)),
        ("3y", dt(2011, 8, 1, 2, 10, 23, 550)),
    ];
    for (duration, begin) in cases {
        assert_eq!(
            range(&format!("($b to $e) - {duration}"), &v),
            day_later(begin),
            "{duration}"
        );
    }
}

#[test]
fn test_timerange_replace() {
    let v = range_vars();
    let cases = [
        ("6h", dt(2014, 8, 1, 6, 10, 23, 550)),
        ("6mo", dt(2014, 6, 1, 2, 10, 23, 550)),
        ("2017y", dt(2017, 8, 1, 2, 10, 23, 550)),
        ("0h 0m 0s 0us", dt(2014, 8, 1, 0, 0, 0, 0)),
    ];
    for (duration, begin) in cases {
        assert_eq!(
            range(&format!("($b to $e) @ {duration}"), &v),
            day_later(begin),
            "{duration}"
        );
    }
}

#[test]
fn test_timerange_handle_ambig_duration() {
    // A one-day range counts a bare number in hours.
    let v = range_vars();
    assert_eq!(
        range("($b to $e) + 1", &v),
        day_later(dt(2014, 8, 1, 3, 10, 23, 550))
    );
    assert_eq!(
        range("($b to $e) - 1", &v),
        day_later(dt(2014, 8, 1, 1, 10, 23, 550))
    );
    assert_eq!(
        range("($b to $e) @ 1", &v),
        day_later(dt(2014, 8, 1, 1, 10, 23, 550))
    );
}

// ---- tests/test_expression.py, TestPinnedTimeRange ----
// The original built PinnedTimeRange(2014-08-01 01:00, 2014-08-02 01:00, pinned to
// 2014-08-01 17:30:10.000025, 'day') directly; `day($p) + 1h` is that same pinned range.

fn pinned_vars() -> [(&'static str, DateTime<Utc>); 1] {
    [("p", dt(2014, 8, 1, 17, 30, 10, 25))]
}

#[test]
fn test_pinned_add() {
    let v = pinned_vars();
    assert_eq!(
        range("day($p) + 1h + 1h", &v),
        TimeRange::new(dt(2014, 8, 1, 2, 0, 0, 0), dt(2014, 8, 2, 2, 0, 0, 0))
    );
    assert_eq!(
        range("day($p) + 1h + 18h", &v),
        TimeRange::new(dt(2014, 7, 31, 19, 0, 0, 0), dt(2014, 8, 1, 19, 0, 0, 0))
    );
}

#[test]
fn test_pinned_sub() {
    let v = pinned_vars();
    assert_eq!(
        range("day($p) + 1h - 1h", &v),
        TimeRange::new(dt(2014, 8, 1, 0, 0, 0, 0), dt(2014, 8, 2, 0, 0, 0, 0))
    );
    assert_eq!(
        range("day($p) + 1h - 8h", &v),
        TimeRange::new(dt(2014, 8, 1, 17, 0, 0, 0), dt(2014, 8, 2, 17, 0, 0, 0))
    );
}

#[test]
fn test_pinned_replace() {
    let v = pinned_vars();
    assert_eq!(
        range("day($p) + 1h @ 2h", &v),
        TimeRange::new(dt(2014, 8, 1, 2, 0, 0, 0), dt(2014, 8, 2, 2, 0, 0, 0))
    );
    assert_eq!(
        range("day($p) + 1h @ 18h", &v),
        TimeRange::new(dt(2014, 7, 31, 18, 0, 0, 0), dt(2014, 8, 1, 18, 0, 0, 0))
    );
}

// ---- README.md examples ----

#[test]
fn readme_employee_hours() {
    let v = [
        ("opening", dt(2014, 8, 1, 9, 0, 0, 0)),
        ("closing", dt(2014, 8, 1, 17, 0, 0, 0)),
    ];
    let hours = eval("$opening - 30m to $closing + 1h", &v);
    assert!(hours.contains(dt(2014, 8, 1, 8, 30, 0, 0)));
    assert!(hours.contains(dt(2014, 8, 1, 17, 59, 59, 999_999)));
    assert!(!hours.contains(dt(2014, 8, 1, 8, 29, 59, 999_999)));
    assert!(!hours.contains(dt(2014, 8, 1, 18, 0, 0, 0)));
}

#[test]
fn readme_expiration_rules() {
    let v = [("timestamp", dt(2014, 8, 1, 2, 10, 23, 550))];
    assert_eq!(
        timestamp("($timestamp + 1d) @ 0h 0m 0s", &v),
        dt(2014, 8, 2, 0, 0, 0, 550)
    );
    assert_eq!(
        timestamp("$timestamp + 3h", &v),
        dt(2014, 8, 1, 5, 10, 23, 550)
    );
    assert_eq!(
        timestamp("$timestamp @ 12mo 31d 12h 0m 0s", &v),
        dt(2014, 12, 31, 12, 0, 0, 550)
    );
}

#[test]
fn readme_pinned_day_example() {
    // README: if $start is 2014-08-01 01:00:00, `day($start) + 6h` still contains $start.
    let v = [("start", dt(2014, 8, 1, 1, 0, 0, 0))];
    assert_eq!(
        range("day($start) + 6h", &v),
        TimeRange::new(dt(2014, 7, 31, 6, 0, 0, 0), dt(2014, 8, 1, 6, 0, 0, 0))
    );
}
