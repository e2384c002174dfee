//! Property tests: pinned ranges keep their pin, `+ d - d` is the identity for fixed-length
//! units, month steps clamp, and parsing is insensitive to layout while `Display` round-trips.

use chrono::{Datelike, Months, TimeDelta, Timelike};
use proptest::prelude::*;
use proptest::{option, sample};
use tach_timex::{DateTime, TimeExpression, TimexValue, Utc};

/// Canonical unit symbols, largest first.
const SYMBOLS: [&str; 7] = ["y", "mo", "d", "h", "m", "s", "us"];
/// The range functions and the index of their unit in `SYMBOLS`.
const FUNCTIONS: [(&str, usize); 4] = [("year", 0), ("month", 1), ("day", 2), ("hour", 3)];

/// Any instant between 1900 and 2200, to the microsecond.
fn datetime() -> impl Strategy<Value = DateTime<Utc>> {
    (-2_208_988_800_000_000_i64..7_258_118_400_000_000_i64)
        .prop_map(|us| DateTime::from_timestamp_micros(us).expect("within chrono's range"))
}

/// An amount `+` or `-` can take in unit `SYMBOLS[unit]`: large, but within a few years.
fn shift_amount(unit: usize) -> BoxedStrategy<i64> {
    let max: i64 = [3, 30, 400, 10_000, 500_000, 30_000_000, 1_000_000_000_000][unit];
    (0..=max).boxed()
}

/// A value `@` accepts for unit `SYMBOLS[unit]`.
fn replace_value(unit: usize) -> BoxedStrategy<i64> {
    let (min, max): (i64, i64) = [
        (1, 9999),
        (1, 12),
        (1, 31),
        (0, 23),
        (0, 59),
        (0, 59),
        (0, 999_999),
    ][unit];
    (min..=max).boxed()
}

/// A duration written with units from `SYMBOLS[first..]` (at least one part), optionally
/// followed by a bare number.
fn duration(first: usize, replace: bool, bare: bool) -> impl Strategy<Value = String> {
    let parts: Vec<_> = (first..7)
        .map(|unit| {
            let amount = if replace {
                replace_value(unit)
            } else {
                shift_amount(unit)
            };
            option::of(amount.prop_map(move |a| format!("{a}{}", SYMBOLS[unit])))
        })
        .collect();
    let bare = if bare {
        option::of(0..500_i64).boxed()
    } else {
        Just(None).boxed()
    };
    (parts, bare).prop_map(move |(parts, bare)| {
        let mut written: Vec<String> = parts.into_iter().flatten().collect();
        if written.is_empty() {
            written.push(format!("1{}", SYMBOLS[first.min(6)]));
        }
        written.extend(bare.map(|b| b.to_string()));
        written.join(" ")
    })
}

/// `+ d`, `- d` or `@ d` where `d` is shorter than the range unit `SYMBOLS[unit]`: only smaller
/// units, sometimes a zero of the unit itself (`@ 0h` is the only such zero `@` accepts).
fn shorter_operation(unit: usize) -> impl Strategy<Value = String> {
    let zero = if unit == 3 {
        "0h".to_owned()
    } else {
        format!("0{}", SYMBOLS[unit])
    };
    let zero_replace = if unit == 3 {
        zero.clone()
    } else {
        String::new()
    };
    prop_oneof![
        (duration(unit + 1, false, true), any::<bool>()).prop_map({
            let zero = zero.clone();
            move |(d, z)| {
                if z {
                    format!("+ {zero} {d}")
                } else {
                    format!("+ {d}")
                }
            }
        }),
        (duration(unit + 1, false, true), any::<bool>()).prop_map(move |(d, z)| if z {
            format!("- {zero} {d}")
        } else {
            format!("- {d}")
        }),
        (duration(unit + 1, true, false), any::<bool>()).prop_map(move |(d, z)| {
            if z && !zero_replace.is_empty() {
                format!("@ {zero_replace} {d}")
            } else {
                format!("@ {d}")
            }
        }),
    ]
}

/// A pinned range function with one to three operations shorter than its unit.
fn pinned_expression() -> impl Strategy<Value = String> {
    sample::select(FUNCTIONS.to_vec()).prop_flat_map(|(name, unit)| {
        proptest::collection::vec(shorter_operation(unit), 1..=3)
            .prop_map(move |ops| format!("{name}($pin) {}", ops.join(" ")))
    })
}

fn eval(src: &str, vars: &[(&str, DateTime<Utc>)]) -> TimexValue {
    let expr = TimeExpression::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let now = DateTime::from_timestamp(0, 0).expect("epoch");
    expr.evaluate_at(vars, now)
        .unwrap_or_else(|e| panic!("{src}: {e}"))
}

// ---- layout-insensitive parsing and Display ----

/// Whitespace between tokens: at least one character (words and numbers need it).
fn gap() -> impl Strategy<Value = &'static str> {
    sample::select(vec![" ", "  ", "\t", " \n "])
}

/// Optional whitespace, where no token boundary depends on it.
fn pad() -> impl Strategy<Value = &'static str> {
    sample::select(vec!["", " ", "\t"])
}

/// `(op, duration)` valid after a timestamp (`bare` false) or a range.
fn operation(bare: bool) -> impl Strategy<Value = (char, String)> {
    prop_oneof![
        duration(0, false, bare).prop_map(|d| ('+', d)),
        duration(0, false, bare).prop_map(|d| ('-', d)),
        // Bare numbers stay out of `@` so a resolved value cannot leave its field's bounds.
        duration(0, true, false).prop_map(|d| ('@', d)),
    ]
}

/// A timestamp expression as `(canonical, decorated)`: the same tree, written plainly and with
/// extra whitespace and redundant parentheses.
fn timestamp_expression() -> impl Strategy<Value = (String, String)> {
    let leaf = (
        sample::select(vec!["a", "timestamp", "start_1", "_x", "d"]),
        pad(),
    )
        .prop_map(|(name, pad)| (format!("${name}"), format!("${pad}{name}")));
    leaf.prop_recursive(3, 12, 1, |inner| {
        prop_oneof![
            (inner.clone(), operation(false), pad(), pad()).prop_map(
                |((c, d), (op, dur), p1, p2)| {
                    (format!("{c} {op} {dur}"), format!("{d}{p1}{op}{p2}{dur}"))
                }
            ),
            (inner, pad(), pad()).prop_map(|((c, d), p1, p2)| (c, format!("({p1}{d}{p2})"))),
        ]
    })
}

/// A range expression as `(canonical, decorated)`.
fn range_expression() -> impl Strategy<Value = (String, String)> {
    let function = sample::select(FUNCTIONS.iter().map(|(name, _)| *name).collect::<Vec<_>>());
    let leaf = prop_oneof![
        (timestamp_expression(), gap(), timestamp_expression(), gap()).prop_map(
            |((c1, d1), g1, (c2, d2), g2)| (format!("{c1} to {c2}"), format!("{d1}{g1}to{g2}{d2}"))
        ),
        function
            .clone()
            .prop_map(|name| (name.to_owned(), name.to_owned())),
        (function, timestamp_expression(), pad(), pad()).prop_map(|(name, (c, d), p1, p2)| {
            (format!("{name}({c})"), format!("{name}{p1}({d}{p2})"))
        }),
    ];
    leaf.prop_recursive(3, 12, 1, |inner| {
        (inner, operation(true), pad(), pad()).prop_map(|((c, d), (op, dur), p1, p2)| {
            (
                format!("({c}) {op} {dur}"),
                format!("({p1}{d}){p2}{op} {dur}"),
            )
        })
    })
}

proptest! {
    /// A pinned range still contains its pin after `+`, `-` or `@` of durations shorter than
    /// its unit, chained or not.
    #[test]
    fn pinned_ranges_keep_their_pin(pin in datetime(), src in pinned_expression()) {
        let value = eval(&src, &[("pin", pin)]);
        prop_assert!(value.is_range());
        prop_assert!(value.contains(pin), "{src} at {pin} gave {value}");
    }

    /// `+ d - d` is the identity for fixed-length units, on ranges, pinned ranges and timestamps.
    #[test]
    fn plus_then_minus_is_identity(
        a in datetime(),
        length in 0_i64..100_000_000_000,
        d in duration(2, false, false),
        bare in option::of(0_i64..1000),
        function in sample::select(FUNCTIONS.to_vec()),
    ) {
        let b = a + TimeDelta::microseconds(length);
        let vars = [("a", a), ("b", b)];
        let with_bare = match bare {
            Some(n) => format!("{d} {n}"),
            None => d.clone(),
        };
        let plain = eval(&format!("($a to $b) + {with_bare} - {with_bare}"), &vars);
        prop_assert_eq!(plain, eval("$a to $b", &vars));
        // On a pinned year a bare number counts months, which this property leaves out.
        let (name, pinned_d) = match function.0 {
            "year" => ("year", &d),
            name => (name, &with_bare),
        };
        let pinned = eval(&format!("{name}($a) + {pinned_d} - {pinned_d}"), &vars);
        prop_assert_eq!(pinned, eval(&format!("{name}($a)"), &vars));
        prop_assert_eq!(eval(&format!("$a + {d} - {d}"), &vars), TimexValue::Timestamp(a));
    }

    /// `+ 1mo` keeps the time and the day of month, clamped to the next month's last day.
    #[test]
    fn month_steps_clamp_to_the_last_day(a in datetime()) {
        let got = eval("$a + 1mo", &[("a", a)]).timestamp();
        let first_of_next = a.with_day(1).and_then(|d| d.checked_add_months(Months::new(1)));
        let first_of_next = first_of_next.expect("in range");
        let last_day = (first_of_next + Months::new(1) - TimeDelta::days(1)).day();
        prop_assert_eq!((got.year(), got.month()), (first_of_next.year(), first_of_next.month()));
        prop_assert_eq!(got.day(), a.day().min(last_day));
        prop_assert_eq!(got.time(), a.time());
        prop_assert_eq!(got.nanosecond() % 1000, 0);
    }

    /// Parsing ignores layout and redundant parentheses, and `parse(display(e)) == e`.
    #[test]
    fn display_round_trips(
        (canonical, decorated) in prop_oneof![timestamp_expression(), range_expression()],
    ) {
        let expr = TimeExpression::parse(&decorated)
            .unwrap_or_else(|e| panic!("{decorated:?}: {e}"));
        prop_assert_eq!(expr.to_string(), decorated.clone());
        let again = TimeExpression::parse(&expr.to_string()).expect("display parses");
        prop_assert_eq!(&again, &expr);
        let plain = TimeExpression::parse(&canonical)
            .unwrap_or_else(|e| panic!("{canonical:?}: {e}"));
        prop_assert_eq!(&plain, &expr, "{} vs {}", canonical, decorated);
    }
}
