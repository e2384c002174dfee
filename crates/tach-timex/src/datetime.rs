//! Datetime parsing and formatting shared by the whole project: OpenStack and ISO-8601 text in,
//! `YYYY-MM-DDTHH:MM:SS.ffffffZ` out. Both are hand-written because they run once per datetime
//! trait of every event; chrono's format-string machinery is several times slower.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc};

/// Parses the datetimes OpenStack writes and ISO-8601/RFC 3339 text into UTC, truncated to
/// microseconds (the precision StackTach stores).
///
/// Accepted: `2012-05-08` (midnight), `2012-05-08 20:23:48`, `2012-05-08T20:23:48`, minutes-only
/// `2012-05-08T20:23`, any fraction (`.028195`, `.5`, nanoseconds), and an optional offset `Z`,
/// `+00:00`, `+0000`, `-05`. No offset means UTC. Returns `None` for anything else.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    if b.len() == 10 {
        return Some(date.and_time(NaiveTime::MIN).and_utc());
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    if b[13] != b':' {
        return None;
    }
    let mut i = 16;
    let mut second = 0;
    if b.get(i) == Some(&b':') {
        second = digits(b, 17, 2)?;
        i = 19;
    }
    let mut micros = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 6 {
                micros = micros * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        let written = i - start;
        if written == 0 {
            return None;
        }
        for _ in written..6 {
            micros *= 10;
        }
    }
    let offset_seconds = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') => {
            i += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let hours = digits(b, i + 1, 2)?;
            i += 3;
            let colon = b.get(i) == Some(&b':');
            if colon {
                i += 1;
            }
            let minutes = if colon || i < b.len() {
                let m = digits(b, i, 2)?;
                i += 2;
                m
            } else {
                0
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = i64::from(hours * 3600 + minutes * 60);
            if sign == b'-' { -seconds } else { seconds }
        }
        Some(_) => return None,
    };
    if i != b.len() {
        return None;
    }
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micros)?;
    let local = date.and_time(time);
    let utc = local.checked_sub_signed(TimeDelta::try_seconds(offset_seconds)?)?;
    Some(utc.and_utc())
}

/// Reads `len` ASCII digits at `at` as a number.
fn digits(b: &[u8], at: usize, len: usize) -> Option<u32> {
    let field = b.get(at..at + len)?;
    field.iter().try_fold(0u32, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

/// Formats `dt` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`: always six fractional digits and `Z`.
pub fn format_datetime(dt: DateTime<Utc>) -> String {
    let mut out = String::with_capacity(27);
    // Writing into a String cannot fail.
    let _ = write_datetime(&mut out, dt);
    out
}

/// Writes `dt` as [`format_datetime`] does, without allocating.
///
/// # Errors
/// Only those of `out` itself.
pub fn write_datetime<W: fmt::Write + ?Sized>(out: &mut W, dt: DateTime<Utc>) -> fmt::Result {
    let year = dt.year();
    let mut second = dt.second();
    let mut micros = dt.nanosecond() / 1000;
    if micros >= 1_000_000 {
        // chrono represents a leap second as second 59 with extra nanoseconds; show it as 60.
        micros -= 1_000_000;
        second = 60;
    }
    let Ok(year4) = u32::try_from(year) else {
        return write_wide_year(out, dt, second, micros);
    };
    if year4 > 9999 {
        return write_wide_year(out, dt, second, micros);
    }
    let mut buf = *b"0000-00-00T00:00:00.000000Z";
    put(&mut buf[0..4], year4);
    put(&mut buf[5..7], dt.month());
    put(&mut buf[8..10], dt.day());
    put(&mut buf[11..13], dt.hour());
    put(&mut buf[14..16], dt.minute());
    put(&mut buf[17..19], second);
    put(&mut buf[20..26], micros);
    out.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
}

/// Years before 0 or after 9999 get a sign and as many digits as they need, like chrono's `%Y`.
fn write_wide_year<W: fmt::Write + ?Sized>(
    out: &mut W,
    dt: DateTime<Utc>,
    second: u32,
    micros: u32,
) -> fmt::Result {
    write!(
        out,
        "{:+05}-{:02}-{:02}T{:02}:{:02}:{second:02}.{micros:06}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute()
    )
}

/// Writes `value` as zero-padded decimal digits filling `field`.
fn put(field: &mut [u8], mut value: u32) {
    for slot in field.iter_mut().rev() {
        // `value % 10` is a single digit, so the narrowing is exact.
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|date| date.and_hms_micro_opt(h, mi, s, us))
            .expect("valid test datetime")
            .and_utc()
    }

    #[test]
    fn parses_openstack_and_iso_shapes() {
        let full = utc(2012, 5, 8, 20, 23, 48, 28195);
        let whole = utc(2012, 5, 8, 20, 23, 48, 0);
        let cases = [
            ("2012-05-08 20:23:48.028195", full),
            ("2012-05-08T20:23:48.028195", full),
            ("2012-05-08t20:23:48.028195z", full),
            ("2012-05-08T20:23:48.028195Z", full),
            ("2012-05-08T20:23:48.028195+00:00", full),
            ("2012-05-08 20:23:48.028195+0000", full),
            ("2012-05-08T20:23:48.028195-00", full),
            ("2012-05-08T20:23:48Z", whole),
            ("2012-05-08T20:23:48", whole),
            ("2012-05-08 20:23:48", whole),
            ("2012-05-08T20:23:48+00:00", whole),
            ("2012-05-08T20:23Z", utc(2012, 5, 8, 20, 23, 0, 0)),
            ("2012-05-08", utc(2012, 5, 8, 0, 0, 0, 0)),
            (
                "2012-05-08T20:23:48.5",
                utc(2012, 5, 8, 20, 23, 48, 500_000),
            ),
            (
                "2012-05-08T20:23:48.123456789Z",
                utc(2012, 5, 8, 20, 23, 48, 123_456),
            ),
            ("2012-05-08T22:23:48.028195+02:00", full),
            ("2012-05-08T15:53:48.028195-0430", full),
            ("2012-05-09T01:23:48.028195+05", full),
            ("2016-02-29T00:00:00Z", utc(2016, 2, 29, 0, 0, 0, 0)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_datetime(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        let bad = [
            "",
            "2012",
            "2012-05",
            "2012-5-8",
            "2012/05/08",
            "2012-05-08X20:23:48",
            "2012-05-08 20:23:48.",
            "2012-05-08 20:23:48.12a",
            "2012-05-08 20:23:48 ",
            " 2012-05-08",
            "2012-05-08T20",
            "2012-05-08T20:2",
            "2012-05-08T20-23-48",
            "2012-13-08",
            "2012-02-30",
            "2015-02-29",
            "2012-05-08T24:00:00",
            "2012-05-08T23:60:00",
            "2012-05-08T23:59:60",
            "2012-05-08T20:23:48+24:00",
            "2012-05-08T20:23:48+01:60",
            "2012-05-08T20:23:48+1",
            "2012-05-08T20:23:48+01:0",
            "2012-05-08T20:23:48+01:",
            "2012-05-08T20:23:48ZZ",
            "2012-05-08T20:23:48 UTC",
            "not a date",
            "２０１２-05-08",
        ];
        for text in bad {
            assert_eq!(parse_datetime(text), None, "{text:?}");
        }
    }

    #[test]
    fn formats_with_six_digits_and_z() {
        assert_eq!(
            format_datetime(utc(2012, 5, 8, 20, 23, 48, 28195)),
            "2012-05-08T20:23:48.028195Z"
        );
        assert_eq!(
            format_datetime(utc(2014, 1, 2, 3, 4, 5, 0)),
            "2014-01-02T03:04:05.000000Z"
        );
        assert_eq!(
            format_datetime(utc(1, 1, 1, 0, 0, 0, 1)),
            "0001-01-01T00:00:00.000001Z"
        );
        assert_eq!(
            format_datetime(utc(12345, 6, 7, 8, 9, 10, 11)),
            "+12345-06-07T08:09:10.000011Z"
        );
        assert_eq!(
            format_datetime(utc(-1, 12, 31, 23, 59, 59, 999_999)),
            "-0001-12-31T23:59:59.999999Z"
        );
        let nanos = utc(2014, 1, 2, 3, 4, 5, 0) + TimeDelta::nanoseconds(123_456_789);
        assert_eq!(format_datetime(nanos), "2014-01-02T03:04:05.123456Z");
    }

    #[test]
    fn write_datetime_appends_to_any_writer() {
        let mut out = String::from("at ");
        write_datetime(&mut out, utc(2014, 8, 1, 2, 10, 23, 550)).expect("String never fails");
        assert_eq!(out, "at 2014-08-01T02:10:23.000550Z");
    }

    #[test]
    fn format_then_parse_round_trips() {
        let t = utc(2016, 2, 29, 23, 59, 59, 999_999);
        assert_eq!(parse_datetime(&format_datetime(t)), Some(t));
    }
}
