//! Small, allocation-free writers for the JSON text notigen emits: integers, OpenStack
//! timestamps, UUIDs, string escaping, and the [`Sink`] that renders a notification either bare
//! or already escaped for the inside of oslo.messaging's `"oslo.message"` string.
//!
//! Escaping a rendered notification afterwards costs several times more than rendering it (a
//! quote every few bytes), so every JSON literal carries a twin escaped at compile time
//! ([`lit!`]) and every fragment rendered at run time escapes itself once, lazily
//! ([`Fragment`]); dynamic values (ids, numbers, times, names) never need escaping.
//!
//! Times are kept as `i64` microseconds since the Unix epoch everywhere in this crate; formatting
//! them here (Hinnant's civil-from-days) is several times faster than going through chrono's
//! formatter, which matters at hundreds of thousands of notifications per second.

use std::sync::OnceLock;

use uuid::Uuid;

/// Microseconds in one second.
pub(crate) const SECOND: i64 = 1_000_000;
/// Microseconds in one day.
pub(crate) const DAY: i64 = 86_400 * SECOND;

/// Appends the decimal form of `n`.
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // The buffer holds ASCII digits only.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

/// Appends `n` as exactly `width` zero-padded digits (`n` must fit).
fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut buf = [b'0'; 6];
    let mut v = n;
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.push_str(std::str::from_utf8(&buf[..width]).unwrap_or_default());
}

/// Converts days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097) as u64; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe as i64 + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends `YYYY-MM-DD HH:MM:SS.ffffff` (OpenStack's format: UTC, no offset) for `micros`.
pub(crate) fn push_time(out: &mut String, micros: i64) {
    let days = micros.div_euclid(DAY);
    let in_day = micros.rem_euclid(DAY) as u64;
    let (year, month, day) = civil_from_days(days);
    if year < 0 {
        out.push('-');
    }
    let year = year.unsigned_abs();
    if year >= 10_000 {
        push_u64(out, year);
    } else {
        push_padded(out, year, 4);
    }
    out.push('-');
    push_padded(out, u64::from(month), 2);
    out.push('-');
    push_padded(out, u64::from(day), 2);
    out.push(' ');
    let secs = in_day / 1_000_000;
    push_padded(out, secs / 3600, 2);
    out.push(':');
    push_padded(out, secs / 60 % 60, 2);
    out.push(':');
    push_padded(out, secs % 60, 2);
    out.push('.');
    push_padded(out, in_day % 1_000_000, 6);
}

/// Appends a quoted timestamp.
pub(crate) fn push_time_quoted(out: &mut String, micros: i64) {
    out.push('"');
    push_time(out, micros);
    out.push('"');
}

/// Appends the hyphenated lower-case form of `id`.
pub(crate) fn push_uuid(out: &mut String, id: &Uuid) {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.push_str(id.hyphenated().encode_lower(&mut buf));
}

/// Appends 32 lower-case hex digits for `bits` (`_unique_id`, auth tokens).
pub(crate) fn push_hex128(out: &mut String, bits: u128) {
    let mut buf = [0u8; uuid::fmt::Simple::LENGTH];
    out.push_str(Uuid::from_u128(bits).simple().encode_lower(&mut buf));
}

/// Appends `s` as the inside of a JSON string (without the quotes), escaping as RFC 8259 asks.
pub(crate) fn push_escaped(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// A JSON literal in its bare form and escaped as the inside of a JSON string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lit {
    pub bare: &'static str,
    pub escaped: &'static str,
}

/// Length of `s` once `"` and `\` are escaped (compile-time helper of `lit!`).
pub(crate) const fn escaped_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n = 0;
    while i < b.len() {
        assert!(b[i] >= 0x20, "control character in a JSON literal");
        n += if b[i] == b'"' || b[i] == b'\\' { 2 } else { 1 };
        i += 1;
    }
    n
}

/// `s` with `"` and `\` escaped, as an array of `N` bytes (compile-time helper of
/// `lit!`).
pub(crate) const fn escape_const<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    let mut j = 0;
    while i < b.len() {
        if b[i] == b'"' || b[i] == b'\\' {
            out[j] = b'\\';
            j += 1;
        }
        out[j] = b[i];
        j += 1;
        i += 1;
    }
    out
}

/// Builds a [`Lit`] from a string literal (or `concat!`), escaping it at compile time.
macro_rules! lit {
    ($s:expr) => {{
        const BARE: &str = $s;
        const ESCAPED: &str = {
            const N: usize = $crate::json::escaped_len(BARE);
            const BYTES: [u8; N] = $crate::json::escape_const::<N>(BARE);
            match ::std::str::from_utf8(&BYTES) {
                Ok(s) => s,
                Err(_) => panic!("escaped literal is not UTF-8"),
            }
        };
        $crate::json::Lit {
            bare: BARE,
            escaped: ESCAPED,
        }
    }};
}

pub(crate) use lit;

/// Writes a JSON literal to a [`Sink`].
macro_rules! w {
    ($out:expr, $s:expr) => {
        $crate::json::Sink::lit($out, $crate::json::lit!($s))
    };
}
pub(crate) use w;

/// JSON rendered once at run time (a request context, an instance's addresses, a request
/// spec), with its escaped form computed on first use.
#[derive(Debug)]
pub(crate) struct Fragment {
    bare: String,
    escaped: OnceLock<String>,
}

impl Fragment {
    pub(crate) fn new(bare: String) -> Fragment {
        Fragment {
            bare,
            escaped: OnceLock::new(),
        }
    }

    pub(crate) fn bare(&self) -> &str {
        &self.bare
    }

    pub(crate) fn escaped(&self) -> &str {
        self.escaped.get_or_init(|| {
            let mut s = String::with_capacity(self.bare.len() + self.bare.len() / 4);
            push_escaped(&mut s, &self.bare);
            s
        })
    }
}

/// Where rendered JSON goes: bare ([`Bare`]) or escaped for a JSON string ([`Escaped`]).
pub(crate) trait Sink {
    /// Appends a literal in this sink's form.
    fn lit(&mut self, l: Lit);
    /// Appends a run-time fragment in this sink's form.
    fn frag(&mut self, f: &Fragment);
    /// The buffer, for text identical in both forms (digits, ids, times, generated names).
    fn buf(&mut self) -> &mut String;
}

/// Renders JSON as is.
pub(crate) struct Bare<'a>(pub &'a mut String);

/// Renders JSON escaped as the contents of a JSON string.
pub(crate) struct Escaped<'a>(pub &'a mut String);

impl Sink for Bare<'_> {
    fn lit(&mut self, l: Lit) {
        self.0.push_str(l.bare);
    }
    fn frag(&mut self, f: &Fragment) {
        self.0.push_str(f.bare());
    }
    fn buf(&mut self) -> &mut String {
        self.0
    }
}

impl Sink for Escaped<'_> {
    fn lit(&mut self, l: Lit) {
        self.0.push_str(l.escaped);
    }
    fn frag(&mut self, f: &Fragment) {
        self.0.push_str(f.escaped());
    }
    fn buf(&mut self) -> &mut String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    #[test]
    fn integers() {
        let mut s = String::new();
        for n in [0, 7, 10, 512, 15360, u64::MAX] {
            s.clear();
            push_u64(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn timestamps_match_chrono_for_many_instants() {
        let mut x: u64 = 0x1234_5678;
        let mut s = String::new();
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // Instants between 1900 and 2200.
            let micros = (x % (300 * 365 * DAY as u64)) as i64 - 70 * 365 * DAY;
            s.clear();
            push_time(&mut s, micros);
            let dt = DateTime::<Utc>::from_timestamp_micros(micros).unwrap();
            assert_eq!(s, dt.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
        }
        s.clear();
        push_time(&mut s, 0);
        assert_eq!(s, "1970-01-01 00:00:00.000000");
    }

    #[test]
    fn escaping_follows_json() {
        let mut s = String::new();
        push_escaped(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, "a\\\"b\\\\c\\nd\\u0001é");
        let back: String = serde_json::from_str(&format!("\"{s}\"")).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn literals_and_fragments_escape_like_the_runtime_escaper() {
        let l = crate::json::lit!("{\"a\":\"b\\c\"}");
        assert_eq!(l.bare, "{\"a\":\"b\\c\"}");
        let mut runtime = String::new();
        push_escaped(&mut runtime, l.bare);
        assert_eq!(l.escaped, runtime);
        let f = Fragment::new("[\"x\",1]".to_string());
        assert_eq!((f.bare(), f.escaped()), ("[\"x\",1]", "[\\\"x\\\",1]"));
        let (mut bare, mut escaped) = (String::new(), String::new());
        crate::json::w!(&mut Bare(&mut bare), "\"k\":");
        crate::json::w!(&mut Escaped(&mut escaped), "\"k\":");
        assert_eq!((bare.as_str(), escaped.as_str()), ("\"k\":", "\\\"k\\\":"));
    }

    #[test]
    fn ids() {
        let mut s = String::new();
        push_uuid(
            &mut s,
            &Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
        );
        assert_eq!(s, "01234567-89ab-cdef-0123-456789abcdef");
        s.clear();
        push_hex128(&mut s, 0xff);
        assert_eq!(s, "000000000000000000000000000000ff");
    }
}
