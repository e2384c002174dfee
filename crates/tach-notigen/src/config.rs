//! What a run looks like: seed, operation rate, simulated start, limits and output envelope;
//! plus the `2d`, `36h`, `1d12h` duration syntax of the command line.

use chrono::{DateTime, Duration, TimeZone, Utc};

/// Operations (create, delete, resize, ...) started per simulated hour when not told otherwise.
///
/// 600/h (one every six seconds) is a busy but ordinary region: about 7 200 instances living
/// some ten days each, operations emitting six notifications on average, so a simulated day is
/// roughly 95 000 notifications, 8 000 of them the midnight `compute.instance.exists`.
pub const DEFAULT_OPERATIONS_PER_HOUR: f64 = 600.0;

/// Seed used when none is given.
pub const DEFAULT_SEED: u64 = 42;

/// Settings of one generator run.
#[derive(Debug, Clone, PartialEq)]
pub struct NotigenConfig {
    /// Seed of the generator's own PRNG; same seed and settings give byte-identical output.
    pub seed: u64,
    /// Mean rate of operations started per simulated hour (Poisson arrivals); see
    /// [`DEFAULT_OPERATIONS_PER_HOUR`]. The run starts with 12 instances per unit of rate
    /// (at least 20, at most 100 000). Zero, negative or NaN starts no operations, so only the
    /// midnight `compute.instance.exists` audits of 20 initial instances are emitted.
    pub operations_per_hour: f64,
    /// Simulated time of the first operation (default 2026-01-01T00:00:00Z).
    pub start: DateTime<Utc>,
    /// Simulated time span; with neither this nor `count` set, one day.
    pub duration: Option<Duration>,
    /// Stop after this many notifications.
    pub count: Option<u64>,
    /// How each notification is wrapped when written.
    pub envelope: Envelope,
}

impl Default for NotigenConfig {
    fn default() -> NotigenConfig {
        NotigenConfig {
            seed: DEFAULT_SEED,
            operations_per_hour: DEFAULT_OPERATIONS_PER_HOUR,
            start: default_start(),
            duration: None,
            count: None,
            envelope: Envelope::Bare,
        }
    }
}

/// 2026-01-01T00:00:00Z, the default simulated start.
fn default_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// How a notification is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Envelope {
    /// The notification object itself, as Nova's `messagingv1` driver sent it.
    #[default]
    Bare,
    /// oslo.messaging's v2 envelope:
    /// `{"oslo.version": "2.0", "oslo.message": "<the notification as a JSON string>"}`.
    Oslo,
}

/// Parses a duration such as `2d`, `36h`, `90m`, `3600s` or `1d12h` (parts may be separated
/// by spaces).
///
/// # Errors
///
/// Returns a message naming the offending part when the text is empty, a part lacks its number
/// or unit, the unit is not one of `d`, `h`, `m`, `s`, the total overflows, or it is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("empty duration: expected something like 2d, 36h, 90m, 1d12h or 3600s".into());
    }
    let bytes = text.as_bytes();
    let mut total: i64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b' ' {
            i += 1;
            continue;
        }
        let part_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &text[part_start..i];
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &text[unit_start..i];
        let part = &text[part_start..i];
        if digits.is_empty() && unit.is_empty() {
            let bad = text[i..].chars().next().unwrap_or(' ');
            return Err(format!("invalid duration {text:?}: unexpected {bad:?}"));
        }
        if digits.is_empty() {
            return Err(format!(
                "invalid duration {text:?}: {part:?} has no number before its unit"
            ));
        }
        if unit.is_empty() {
            if let Some(bad) = text[i..].chars().next().filter(|c| *c != ' ') {
                return Err(format!("invalid duration {text:?}: unexpected {bad:?}"));
            }
            return Err(format!(
                "invalid duration {text:?}: {part:?} has no unit (use d, h, m or s)"
            ));
        }
        let seconds_per_unit: i64 = match unit {
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            "s" => 1,
            _ => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {unit:?} in {part:?} (use d, h, m or s)"
                ));
            }
        };
        let seconds = digits
            .parse::<i64>()
            .ok()
            .and_then(|n| n.checked_mul(seconds_per_unit))
            .and_then(|n| total.checked_add(n))
            .filter(|n| *n <= Duration::MAX.num_seconds());
        match seconds {
            Some(n) => total = n,
            None => return Err(format!("invalid duration {text:?}: {part:?} is too large")),
        }
    }
    if total == 0 {
        return Err(format!(
            "invalid duration {text:?}: must be longer than zero"
        ));
    }
    Ok(Duration::seconds(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("2d"), Ok(Duration::days(2)));
        assert_eq!(parse_duration("36h"), Ok(Duration::hours(36)));
        assert_eq!(parse_duration("90m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("3600s"), Ok(Duration::hours(1)));
        assert_eq!(parse_duration("1d12h"), Ok(Duration::hours(36)));
        assert_eq!(
            parse_duration(" 1d 6h 30m 5s "),
            Ok(Duration::seconds(109_805))
        );
        assert_eq!(parse_duration("0d1s"), Ok(Duration::seconds(1)));
    }

    #[test]
    fn duration_errors_name_the_bad_part() {
        assert_eq!(
            parse_duration(""),
            Err("empty duration: expected something like 2d, 36h, 90m, 1d12h or 3600s".into())
        );
        assert_eq!(
            parse_duration("1d12x"),
            Err(r#"invalid duration "1d12x": unknown unit "x" in "12x" (use d, h, m or s)"#.into())
        );
        assert_eq!(
            parse_duration("2days"),
            Err(
                r#"invalid duration "2days": unknown unit "days" in "2days" (use d, h, m or s)"#
                    .into()
            )
        );
        assert_eq!(
            parse_duration("90"),
            Err(r#"invalid duration "90": "90" has no unit (use d, h, m or s)"#.into())
        );
        assert_eq!(
            parse_duration("1d h"),
            Err(r#"invalid duration "1d h": "h" has no number before its unit"#.into())
        );
        assert_eq!(
            parse_duration("1.5h"),
            Err(r#"invalid duration "1.5h": unexpected '.'"#.into())
        );
        assert_eq!(
            parse_duration("-2d"),
            Err(r#"invalid duration "-2d": unexpected '-'"#.into())
        );
        assert_eq!(
            parse_duration("0s"),
            Err(r#"invalid duration "0s": must be longer than zero"#.into())
        );
        assert_eq!(
            parse_duration("99999999999999999999d"),
            Err(
                r#"invalid duration "99999999999999999999d": "99999999999999999999d" is too large"#
                    .into()
            )
        );
    }

    #[test]
    fn defaults() {
        let cfg = NotigenConfig::default();
        assert_eq!(cfg.start.to_rfc3339(), "2026-01-01T00:00:00+00:00");
        assert_eq!(cfg.operations_per_hour, 600.0);
        assert_eq!(cfg.envelope, Envelope::Bare);
        assert_eq!((cfg.duration, cfg.count), (None, None));
    }
}
