//! Converting matched values to trait types (`text`, `int`, `float`, `datetime`).
//!
//! Rules, after stackdistiller: null gives no trait; for every type but `text`, an empty
//! string gives no trait (Nova writes `""` for unset dates). `int` takes integers, floats
//! (truncated, as Python's `int()`), booleans (0/1) and integer strings (surrounding
//! whitespace and `_` between digits allowed); `float` takes numbers, booleans and numeric
//! strings but not NaN or infinities; `datetime` takes the strings `tach_timex` parses and
//! normalises them to UTC microseconds; `text` takes strings as they are and anything else
//! as its JSON text (stackdistiller used Python's `str()`, so `True` became `"True"`; tach
//! writes `true`). Anything else is a conversion failure, which the caller counts and logs.

use std::borrow::Cow;

use sonic_rs::{JsonValueTrait, Value};

use crate::event::TraitValue;
use crate::plugin::PluginValue;

/// The type of a trait, as named by `type:` in a definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TraitType {
    /// `text` (the default).
    Text,
    /// `int`: a 64-bit signed integer.
    Int,
    /// `float`: a 64-bit float.
    Float,
    /// `datetime`: a UTC timestamp with microseconds.
    Datetime,
}

impl TraitType {
    /// The type named `name` in a definition file.
    pub(crate) fn from_name(name: &str) -> Option<TraitType> {
        match name {
            "text" => Some(TraitType::Text),
            "int" => Some(TraitType::Int),
            "float" => Some(TraitType::Float),
            "datetime" => Some(TraitType::Datetime),
            _ => None,
        }
    }

    /// The name used in definition files.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TraitType::Text => "text",
            TraitType::Int => "int",
            TraitType::Float => "float",
            TraitType::Datetime => "datetime",
        }
    }
}

/// A value that could not be converted; it carries the value's text for the log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConversionFailure {
    pub value: String,
}

/// `Ok(None)`: no trait (null or empty); `Err`: the value does not fit the type.
pub(crate) type Converted = Result<Option<TraitValue>, ConversionFailure>;

/// The text of a JSON value: strings as they are, anything else as JSON.
pub(crate) fn text_of(value: &Value) -> Cow<'_, str> {
    match value.as_str() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(sonic_rs::to_string(value).unwrap_or_default()),
    }
}

/// Converts a matched JSON value.
pub(crate) fn convert_json(ty: TraitType, value: &Value) -> Converted {
    if value.is_null() {
        return Ok(None);
    }
    if let Some(s) = value.as_str() {
        return convert_str(ty, s);
    }
    let failed = || ConversionFailure {
        value: text_of(value).into_owned(),
    };
    match ty {
        TraitType::Text => Ok(Some(TraitValue::Text(text_of(value).into_owned()))),
        TraitType::Int => {
            if let Some(b) = value.as_bool() {
                Ok(Some(TraitValue::Int(i64::from(b))))
            } else if let Some(i) = value.as_i64() {
                Ok(Some(TraitValue::Int(i)))
            } else if value.is_u64() {
                Err(failed())
            } else if let Some(f) = value.as_f64() {
                float_to_int(f)
                    .map(|i| Some(TraitValue::Int(i)))
                    .ok_or_else(failed)
            } else {
                Err(failed())
            }
        }
        TraitType::Float => {
            if let Some(b) = value.as_bool() {
                Ok(Some(TraitValue::Float(f64::from(u8::from(b)))))
            } else if let Some(f) = value.as_f64() {
                Ok(Some(TraitValue::Float(f)))
            } else {
                Err(failed())
            }
        }
        TraitType::Datetime => Err(failed()),
    }
}

/// Converts a string (matched, or produced by a plugin).
pub(crate) fn convert_str(ty: TraitType, s: &str) -> Converted {
    if ty != TraitType::Text && s.is_empty() {
        return Ok(None);
    }
    let parsed = match ty {
        TraitType::Text => return Ok(Some(TraitValue::Text(s.to_owned()))),
        TraitType::Int => parse_int(s).map(TraitValue::Int),
        TraitType::Float => parse_float(s).map(TraitValue::Float),
        TraitType::Datetime => tach_timex::parse_datetime(s).map(TraitValue::Datetime),
    };
    match parsed {
        Some(v) => Ok(Some(v)),
        None => Err(ConversionFailure {
            value: s.to_owned(),
        }),
    }
}

/// Converts what a plugin produced.
pub(crate) fn convert_plugin(ty: TraitType, value: PluginValue<'_>) -> Converted {
    let failed = |text: String| Err(ConversionFailure { value: text });
    match value {
        PluginValue::Json(v) => convert_json(ty, v),
        PluginValue::Text(s) => convert_str(ty, &s),
        PluginValue::Int(i) => match ty {
            TraitType::Text => Ok(Some(TraitValue::Text(i.to_string()))),
            TraitType::Int => Ok(Some(TraitValue::Int(i))),
            TraitType::Float => Ok(Some(TraitValue::Float(i as f64))),
            TraitType::Datetime => failed(i.to_string()),
        },
        PluginValue::Float(f) => match ty {
            TraitType::Text => Ok(Some(TraitValue::Text(float_text(f)))),
            TraitType::Int => match float_to_int(f) {
                Some(i) => Ok(Some(TraitValue::Int(i))),
                None => failed(float_text(f)),
            },
            TraitType::Float if f.is_finite() => Ok(Some(TraitValue::Float(f))),
            TraitType::Float | TraitType::Datetime => failed(float_text(f)),
        },
        PluginValue::Bool(b) => match ty {
            TraitType::Text => Ok(Some(TraitValue::Text(b.to_string()))),
            TraitType::Int => Ok(Some(TraitValue::Int(i64::from(b)))),
            TraitType::Float => Ok(Some(TraitValue::Float(f64::from(u8::from(b))))),
            TraitType::Datetime => failed(b.to_string()),
        },
    }
}

/// Python's `int(float)`: truncation toward zero; `None` outside the i64 range or non-finite.
fn float_to_int(f: f64) -> Option<i64> {
    // 2^63 is exact as f64; every float in [-2^63, 2^63) truncates to a valid i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (f.is_finite() && (-LIMIT..LIMIT).contains(&f)).then(|| f.trunc() as i64)
}

/// The JSON text of a float: shortest round-trip digits, always with a `.` or exponent
/// (`Event::write_json` writes floats the same way).
pub(crate) fn float_text(f: f64) -> String {
    format!("{f:?}")
}

/// Python's `int(str)` for base 10: optional sign, digits with single `_` between them,
/// surrounding whitespace ignored.
fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (negative, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let bytes = digits.as_bytes();
    if bytes.is_empty() || bytes[0] == b'_' || bytes[bytes.len() - 1] == b'_' {
        return None;
    }
    let mut n: i128 = 0;
    let mut previous_underscore = false;
    for &c in bytes {
        match c {
            b'0'..=b'9' => {
                n = n.checked_mul(10)?.checked_add(i128::from(c - b'0'))?;
                if n > i128::from(i64::MAX) + 1 {
                    return None;
                }
                previous_underscore = false;
            }
            b'_' if !previous_underscore => previous_underscore = true,
            _ => return None,
        }
    }
    i64::try_from(if negative { -n } else { n }).ok()
}

/// Python's `float(str)` for finite values.
fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let f: f64 = if t.contains('_') {
        parse_float_underscored(t)?
    } else {
        t.parse().ok()?
    };
    f.is_finite().then_some(f)
}

/// Underscores are allowed only between digits, as in Python.
fn parse_float_underscored(t: &str) -> Option<f64> {
    let b = t.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            let before = i.checked_sub(1).map(|j| b[j]);
            let after = b.get(i + 1).copied();
            if !(before.is_some_and(|x| x.is_ascii_digit())
                && after.is_some_and(|x| x.is_ascii_digit()))
            {
                return None;
            }
        }
    }
    t.replace('_', "").parse().ok()
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};

    use super::*;

    fn json(text: &str) -> Value {
        sonic_rs::from_str(text).unwrap()
    }

    fn conv(ty: TraitType, text: &str) -> Converted {
        convert_json(ty, &json(text))
    }

    fn ok(v: TraitValue) -> Converted {
        Ok(Some(v))
    }

    fn fail(text: &str) -> Converted {
        Err(ConversionFailure {
            value: text.to_owned(),
        })
    }

    #[test]
    fn null_is_never_a_trait() {
        for ty in [
            TraitType::Text,
            TraitType::Int,
            TraitType::Float,
            TraitType::Datetime,
        ] {
            assert_eq!(conv(ty, "null"), Ok(None));
        }
    }

    #[test]
    fn empty_strings_are_traits_only_for_text() {
        assert_eq!(
            conv(TraitType::Text, "\"\""),
            ok(TraitValue::Text(String::new()))
        );
        assert_eq!(conv(TraitType::Int, "\"\""), Ok(None));
        assert_eq!(conv(TraitType::Float, "\"\""), Ok(None));
        assert_eq!(conv(TraitType::Datetime, "\"\""), Ok(None));
    }

    #[test]
    fn text_of_other_values_is_their_json() {
        assert_eq!(
            conv(TraitType::Text, "\"abc\""),
            ok(TraitValue::Text("abc".into()))
        );
        assert_eq!(
            conv(TraitType::Text, "42"),
            ok(TraitValue::Text("42".into()))
        );
        assert_eq!(
            conv(TraitType::Text, "-7"),
            ok(TraitValue::Text("-7".into()))
        );
        assert_eq!(
            conv(TraitType::Text, "2.5"),
            ok(TraitValue::Text("2.5".into()))
        );
        assert_eq!(
            conv(TraitType::Text, "true"),
            ok(TraitValue::Text("true".into()))
        );
        assert_eq!(
            conv(TraitType::Text, "[1,\"a\"]"),
            ok(TraitValue::Text("[1,\"a\"]".into()))
        );
        assert_eq!(
            conv(TraitType::Text, "{\"a\": {}}"),
            ok(TraitValue::Text("{\"a\":{}}".into()))
        );
    }

    #[test]
    fn ints() {
        assert_eq!(conv(TraitType::Int, "512"), ok(TraitValue::Int(512)));
        assert_eq!(conv(TraitType::Int, "-3"), ok(TraitValue::Int(-3)));
        assert_eq!(conv(TraitType::Int, "\"20\""), ok(TraitValue::Int(20)));
        assert_eq!(conv(TraitType::Int, "\" -20 \""), ok(TraitValue::Int(-20)));
        assert_eq!(conv(TraitType::Int, "\"+7\""), ok(TraitValue::Int(7)));
        assert_eq!(conv(TraitType::Int, "\"1_000\""), ok(TraitValue::Int(1000)));
        assert_eq!(conv(TraitType::Int, "3.9"), ok(TraitValue::Int(3)));
        assert_eq!(conv(TraitType::Int, "-3.9"), ok(TraitValue::Int(-3)));
        assert_eq!(conv(TraitType::Int, "true"), ok(TraitValue::Int(1)));
        assert_eq!(
            conv(TraitType::Int, "9223372036854775807"),
            ok(TraitValue::Int(i64::MAX))
        );
        assert_eq!(
            conv(TraitType::Int, "\"-9223372036854775808\""),
            ok(TraitValue::Int(i64::MIN))
        );
        assert_eq!(conv(TraitType::Int, "\"2.5\""), fail("2.5"));
        assert_eq!(conv(TraitType::Int, "\"abc\""), fail("abc"));
        assert_eq!(conv(TraitType::Int, "\"1__0\""), fail("1__0"));
        assert_eq!(conv(TraitType::Int, "\"_1\""), fail("_1"));
        assert_eq!(conv(TraitType::Int, "\" \""), fail(" "));
        assert_eq!(
            conv(TraitType::Int, "\"9223372036854775808\""),
            fail("9223372036854775808")
        );
        assert_eq!(
            conv(TraitType::Int, "18446744073709551615"),
            fail("18446744073709551615")
        );
        assert_eq!(conv(TraitType::Int, "1e300"), fail("1e+300"));
        assert_eq!(conv(TraitType::Int, "[1]"), fail("[1]"));
    }

    #[test]
    fn floats() {
        assert_eq!(conv(TraitType::Float, "1.5"), ok(TraitValue::Float(1.5)));
        assert_eq!(conv(TraitType::Float, "2"), ok(TraitValue::Float(2.0)));
        assert_eq!(
            conv(TraitType::Float, "\"2.25\""),
            ok(TraitValue::Float(2.25))
        );
        assert_eq!(
            conv(TraitType::Float, "\" 1e3 \""),
            ok(TraitValue::Float(1000.0))
        );
        assert_eq!(conv(TraitType::Float, "\".5\""), ok(TraitValue::Float(0.5)));
        assert_eq!(
            conv(TraitType::Float, "\"1_0.5\""),
            ok(TraitValue::Float(10.5))
        );
        assert_eq!(conv(TraitType::Float, "false"), ok(TraitValue::Float(0.0)));
        assert_eq!(conv(TraitType::Float, "\"nan\""), fail("nan"));
        assert_eq!(conv(TraitType::Float, "\"inf\""), fail("inf"));
        assert_eq!(conv(TraitType::Float, "\"1_\""), fail("1_"));
        assert_eq!(conv(TraitType::Float, "\"x1\""), fail("x1"));
        assert_eq!(conv(TraitType::Float, "{}"), fail("{}"));
    }

    #[test]
    fn datetimes() {
        let at = Utc.from_utc_datetime(
            &NaiveDate::from_ymd_opt(2016, 3, 1)
                .unwrap()
                .and_hms_micro_opt(1, 9, 53, 188_000)
                .unwrap(),
        );
        assert_eq!(
            conv(TraitType::Datetime, "\"2016-03-01 01:09:53.188000\""),
            ok(TraitValue::Datetime(at))
        );
        assert_eq!(
            conv(TraitType::Datetime, "\"2016-03-01T01:09:53.188Z\""),
            ok(TraitValue::Datetime(at))
        );
        assert_eq!(
            conv(TraitType::Datetime, "\"2016-03-01T03:09:53.188+02:00\""),
            ok(TraitValue::Datetime(at))
        );
        assert_eq!(
            conv(TraitType::Datetime, "\"yesterday\""),
            fail("yesterday")
        );
        assert_eq!(conv(TraitType::Datetime, "1456794593"), fail("1456794593"));
    }

    #[test]
    fn plugin_values() {
        let p = |ty, v| convert_plugin(ty, v);
        assert_eq!(
            p(TraitType::Int, PluginValue::Int(5)),
            ok(TraitValue::Int(5))
        );
        assert_eq!(
            p(TraitType::Text, PluginValue::Int(5)),
            ok(TraitValue::Text("5".into()))
        );
        assert_eq!(
            p(TraitType::Float, PluginValue::Int(5)),
            ok(TraitValue::Float(5.0))
        );
        assert_eq!(p(TraitType::Datetime, PluginValue::Int(5)), fail("5"));
        assert_eq!(
            p(TraitType::Text, PluginValue::Float(5.0)),
            ok(TraitValue::Text("5.0".into()))
        );
        assert_eq!(
            p(TraitType::Int, PluginValue::Float(5.7)),
            ok(TraitValue::Int(5))
        );
        assert_eq!(
            p(TraitType::Float, PluginValue::Float(f64::NAN)),
            fail("NaN")
        );
        assert_eq!(
            p(TraitType::Text, PluginValue::Bool(true)),
            ok(TraitValue::Text("true".into()))
        );
        assert_eq!(
            p(TraitType::Int, PluginValue::Text("12".into())),
            ok(TraitValue::Int(12))
        );
        assert_eq!(p(TraitType::Int, PluginValue::Text("".into())), Ok(None));
        let v = json("\"x\"");
        assert_eq!(
            p(TraitType::Text, PluginValue::Json(&v)),
            ok(TraitValue::Text("x".into()))
        );
    }

    #[test]
    fn type_names() {
        for ty in [
            TraitType::Text,
            TraitType::Int,
            TraitType::Float,
            TraitType::Datetime,
        ] {
            assert_eq!(TraitType::from_name(ty.name()), Some(ty));
        }
        assert_eq!(TraitType::from_name("integer"), None);
    }
}
