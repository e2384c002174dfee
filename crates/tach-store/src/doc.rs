//! Trait documents: an event's traits stored as one JSON text on its `events` row, and the
//! narrow `trait_index` that finds events by the value of an indexed trait.
//!
//! A document is a JSON array of `[name, type, value]` elements sorted by name: text as a JSON
//! string, int as a JSON number, float as a JSON string holding Rust's shortest round-trip form
//! (so it reads back bit for bit, which JSON number parsing does not promise), datetime as µs
//! since the epoch. Each element's text depends only on its name and value, so a trait search
//! on a trait that is not indexed is a substring search for the element in the document
//! ([`element`]); a match is then confirmed on the decoded traits ([`matches`]).
//!
//! `trait_index` holds `(k, event_id)` for every trait of every event whose name is one of the
//! database's indexed traits (table `indexed_traits`; `*` indexes all), where `k` is a 64-bit
//! FNV-1a hash of the trait's name, type and value ([`index_key`]). A query looks up the keys of
//! every typed reading of its value ([`readings`]); hash collisions are removed by [`matches`].
//! On SQLite new rows reach `trait_index` through `trait_index_recent` ([`crate::recent`]).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use tach_distiller::write_json_str;

use crate::error::{Error, Result};
use crate::sql::{from_micros, micros};
use crate::types::{Trait, TraitValue, type_code};

/// The trait names indexed when nothing else is configured: the ones operators look events up
/// by (`klug events --trait instance_id:...`).
pub const DEFAULT_INDEXED_TRAITS: [&str; 5] =
    ["instance_id", "request_id", "tenant_id", "user_id", "host"];

/// Which traits `trait_index` covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexedTraits {
    /// Every trait.
    All,
    /// The traits with these names.
    Names(BTreeSet<String>),
}

impl IndexedTraits {
    /// From the rows of `indexed_traits` or a configuration list: `*` anywhere means all.
    pub fn from_names<I, S>(names: I) -> IndexedTraits
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = BTreeSet::new();
        for name in names {
            let name = name.as_ref().trim();
            if name == "*" {
                return IndexedTraits::All;
            }
            if !name.is_empty() {
                set.insert(name.to_owned());
            }
        }
        IndexedTraits::Names(set)
    }

    /// The default set ([`DEFAULT_INDEXED_TRAITS`]).
    pub fn default_set() -> IndexedTraits {
        IndexedTraits::from_names(DEFAULT_INDEXED_TRAITS)
    }

    /// True when trait `name` is indexed.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            IndexedTraits::All => true,
            IndexedTraits::Names(set) => set.contains(name),
        }
    }

    /// The rows of `indexed_traits` for this set.
    pub fn rows(&self) -> Vec<String> {
        match self {
            IndexedTraits::All => vec!["*".to_owned()],
            IndexedTraits::Names(set) => set.iter().cloned().collect(),
        }
    }
}

impl std::fmt::Display for IndexedTraits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexedTraits::All => f.write_str("*"),
            IndexedTraits::Names(set) => {
                let names: Vec<&str> = set.iter().map(String::as_str).collect();
                f.write_str(&names.join(", "))
            }
        }
    }
}

fn code(value: &TraitValue) -> i16 {
    match value {
        TraitValue::Text(_) => type_code::TEXT,
        TraitValue::Int(_) => type_code::INT,
        TraitValue::Float(_) => type_code::FLOAT,
        TraitValue::Datetime(_) => type_code::DATETIME,
    }
}

/// Appends the element `[name, type, value]` of one trait.
fn push_element(out: &mut String, name: &str, value: &TraitValue) {
    out.push('[');
    write_json_str(out, name);
    let _ = write!(out, ",{},", code(value));
    match value {
        TraitValue::Text(s) => write_json_str(out, s),
        TraitValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        TraitValue::Float(f) => {
            let _ = write!(out, "\"{f:?}\"");
        }
        TraitValue::Datetime(t) => {
            let _ = write!(out, "{}", micros(*t));
        }
    }
    out.push(']');
}

/// The document of `traits` (sorted by name here, whatever their order).
pub fn encode(traits: &[Trait]) -> String {
    let mut order: Vec<&Trait> = traits.iter().collect();
    if !order.is_sorted_by(|a, b| a.name <= b.name) {
        order.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let mut out = String::with_capacity(2 + traits.len() * 48);
    out.push('[');
    for (i, t) in order.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_element(&mut out, &t.name, &t.value);
    }
    out.push(']');
    out
}

/// The text of one element of a document, as [`encode`] writes it.
pub fn element(name: &str, value: &TraitValue) -> String {
    let mut out = String::new();
    push_element(&mut out, name, value);
    out
}

/// One decoded element.
struct Element(Trait);

impl<'de> serde::Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Element, D::Error> {
        d.deserialize_seq(ElementVisitor)
    }
}

struct ElementVisitor;

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = Element;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a [name, type, value] trait element")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Element, A::Error> {
        let missing = |what| de::Error::custom(format!("trait element without {what}"));
        let name: String = seq.next_element()?.ok_or_else(|| missing("a name"))?;
        let code: i16 = seq.next_element()?.ok_or_else(|| missing("a type"))?;
        let value = match code {
            type_code::TEXT => {
                TraitValue::Text(seq.next_element()?.ok_or_else(|| missing("a value"))?)
            }
            type_code::INT => {
                TraitValue::Int(seq.next_element()?.ok_or_else(|| missing("a value"))?)
            }
            type_code::FLOAT => {
                let text: String = seq.next_element()?.ok_or_else(|| missing("a value"))?;
                TraitValue::Float(text.parse().map_err(|_| {
                    de::Error::custom(format!("float trait {name:?} holds {text:?}"))
                })?)
            }
            type_code::DATETIME => {
                let us: i64 = seq.next_element()?.ok_or_else(|| missing("a value"))?;
                TraitValue::Datetime(from_micros(us).map_err(|e| de::Error::custom(e.to_string()))?)
            }
            other => {
                return Err(de::Error::custom(format!(
                    "trait {name:?} has unknown type code {other}"
                )));
            }
        };
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(format!(
                "trait {name:?} has more than three parts"
            )));
        }
        Ok(Element(Trait { name, value }))
    }
}

/// The traits in the document `json` of event `event_id` (`None`: no traits), in its order.
///
/// # Errors
/// [`Error::InvalidData`] naming the event when the document is not one [`encode`] writes.
pub fn decode(event_id: i64, json: Option<&str>) -> Result<Vec<Trait>> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let elements: Vec<Element> = serde_json::from_str(json).map_err(|e| Error::InvalidData {
        what: format!("the traits of event {event_id} do not parse: {e}"),
    })?;
    Ok(elements.into_iter().map(|e| e.0).collect())
}

/// One trait of a document as it is written there (see [`scan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawValue<'a> {
    /// A text value: its JSON string literal, quotes included.
    Text(&'a str),
    /// An int value: its JSON number.
    Int(&'a str),
    /// A float value: Rust's shortest round-trip form (`{:?}`), a valid JSON number.
    Float(&'a str),
    /// A datetime value: µs since the epoch.
    Datetime(i64),
}

/// Calls `f(name, value)` for each trait of the document `json` of event `event_id`, in order,
/// without decoding: `name` is the JSON string literal of the name (quotes included), so a
/// caller writing JSON copies both as they are.
///
/// # Errors
/// [`Error::InvalidData`] naming the event when the document is not one [`encode`] writes.
pub fn scan<'a>(
    event_id: i64,
    json: &'a str,
    mut f: impl FnMut(&'a str, RawValue<'a>),
) -> Result<()> {
    let bad = || Error::InvalidData {
        what: format!("the traits of event {event_id} are not a trait document"),
    };
    let b = json.as_bytes();
    let expect = |i: usize, c: u8| (b.get(i) == Some(&c)).then_some(i + 1).ok_or_else(bad);
    // The end (exclusive) of the string literal starting at `i`.
    let literal = |i: usize| -> Result<usize> {
        let mut j = expect(i, b'"')?;
        loop {
            match b.get(j) {
                Some(b'"') => return Ok(j + 1),
                Some(b'\\') => j += 2,
                Some(_) => j += 1,
                None => return Err(bad()),
            }
        }
    };
    // The end (exclusive) of the token starting at `i` (up to `,` or `]`).
    let token = |i: usize| -> usize {
        b[i..]
            .iter()
            .position(|&c| c == b',' || c == b']')
            .map_or(b.len(), |p| i + p)
    };
    let mut i = expect(0, b'[')?;
    if b.get(i) == Some(&b']') {
        return if i + 1 == b.len() { Ok(()) } else { Err(bad()) };
    }
    loop {
        i = expect(i, b'[')?;
        let name_end = literal(i)?;
        let name = &json[i..name_end];
        i = expect(name_end, b',')?;
        let code_end = token(i);
        let code: i16 = json[i..code_end].parse().map_err(|_| bad())?;
        i = expect(code_end, b',')?;
        let (value, end) = match code {
            type_code::TEXT => {
                let end = literal(i)?;
                (RawValue::Text(&json[i..end]), end)
            }
            type_code::FLOAT => {
                let end = literal(i)?;
                (RawValue::Float(&json[i + 1..end - 1]), end)
            }
            type_code::INT => {
                let end = token(i);
                let text = &json[i..end];
                text.parse::<i64>().map_err(|_| bad())?;
                (RawValue::Int(text), end)
            }
            type_code::DATETIME => {
                let end = token(i);
                (
                    RawValue::Datetime(json[i..end].parse().map_err(|_| bad())?),
                    end,
                )
            }
            _ => return Err(bad()),
        };
        f(name, value);
        i = expect(end, b']')?;
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b']') if i + 1 == b.len() => return Ok(()),
            _ => return Err(bad()),
        }
    }
}

/// The elements a document holds when it has trait `name` equal to one of `readings`: the
/// document has such a trait exactly when it contains one of them (an element is written the
/// same way in every document, see [`element`], and no element text occurs inside a string).
pub fn search_elements(name: &str, readings: &[TraitValue]) -> Vec<String> {
    readings.iter().map(|r| element(name, r)).collect()
}

const FNV64_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV64_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a_64(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV64_PRIME);
    }
    hash
}

/// The `trait_index` key of a trait: FNV-1a 64 of its name's length, name, type code and value
/// (text bytes, int and datetime as little-endian i64, float as its bits with -0 as +0).
pub fn index_key(name: &str, value: &TraitValue) -> i64 {
    let mut h = fnv1a_64(FNV64_OFFSET_BASIS, &(name.len() as u64).to_le_bytes());
    h = fnv1a_64(h, name.as_bytes());
    h = fnv1a_64(h, &code(value).to_le_bytes());
    h = match value {
        TraitValue::Text(s) => fnv1a_64(h, s.as_bytes()),
        TraitValue::Int(i) => fnv1a_64(h, &i.to_le_bytes()),
        TraitValue::Float(f) => {
            let f = if *f == 0.0 { 0.0f64 } else { *f };
            fnv1a_64(h, &f.to_bits().to_le_bytes())
        }
        TraitValue::Datetime(t) => fnv1a_64(h, &micros(*t).to_le_bytes()),
    };
    // The bits as a signed BIGINT.
    h as i64
}

/// The `dead_letters.digest` of a poison message: FNV-1a 64 (as [`index_key`]) of its source's
/// length, source and raw bytes, as a signed BIGINT.
pub fn dead_letter_digest(source: &str, raw: &[u8]) -> i64 {
    let mut h = fnv1a_64(FNV64_OFFSET_BASIS, &(source.len() as u64).to_le_bytes());
    h = fnv1a_64(h, source.as_bytes());
    fnv1a_64(h, raw) as i64
}

/// The `trait_index` rows `(k, event_id)` of the traits among `traits` that `set` indexes.
pub(crate) fn index_rows<'a>(
    event_id: i64,
    traits: &'a [Trait],
    set: &'a IndexedTraits,
) -> impl Iterator<Item = (i64, i64)> + 'a {
    traits
        .iter()
        .filter(|t| set.contains(&t.name))
        .map(move |t| (index_key(&t.name, &t.value), event_id))
}

/// Every typed value a search string stands for: itself as text, and an int, a finite float
/// and a datetime when it reads as one.
pub fn readings(
    value: &str,
    parse_datetime: impl Fn(&str) -> Option<DateTime<Utc>>,
) -> Vec<TraitValue> {
    let mut out = vec![TraitValue::Text(value.to_owned())];
    if let Ok(i) = value.trim().parse::<i64>() {
        out.push(TraitValue::Int(i));
    }
    if let Ok(f) = value.trim().parse::<f64>()
        && f.is_finite()
    {
        out.push(TraitValue::Float(f));
    }
    if let Some(t) = parse_datetime(value) {
        out.push(TraitValue::Datetime(t));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// True when document `json` has trait `name` equal to one of `readings`.
    fn has(json: &str, name: &str, readings: &[TraitValue]) -> bool {
        search_elements(name, readings)
            .iter()
            .any(|e| json.contains(e.as_str()))
    }

    fn t(name: &str, value: TraitValue) -> Trait {
        Trait {
            name: name.to_owned(),
            value,
        }
    }

    #[test]
    fn documents_round_trip_every_type_exactly() {
        let when = from_micros(1_700_000_000_123_456).unwrap();
        let traits = vec![
            t("a\"quoted\\name", TraitValue::Text("x\ny\u{2603}".into())),
            t("b", TraitValue::Int(i64::MIN)),
            t("c", TraitValue::Float(0.1 + 0.2)),
            t("d", TraitValue::Float(1e300)),
            t("e", TraitValue::Datetime(when)),
        ];
        let json = encode(&traits);
        assert_eq!(decode(7, Some(&json)).unwrap(), traits);
        assert_eq!(decode(7, None).unwrap(), Vec::new());
        assert_eq!(encode(&[]), "[]");
    }

    #[test]
    fn documents_are_sorted_by_name_and_hold_their_elements_verbatim() {
        let traits = vec![
            t("zeta", TraitValue::Int(3)),
            t("alpha", TraitValue::Text("v".into())),
        ];
        let json = encode(&traits);
        assert_eq!(json, r#"[["alpha",1,"v"],["zeta",2,3]]"#);
        assert!(json.contains(&element("zeta", &TraitValue::Int(3))));
        assert!(!json.contains(&element("zeta", &TraitValue::Int(33))));
    }

    #[test]
    fn scanning_yields_each_trait_as_written() {
        let when = from_micros(1_700_000_000_123_456).unwrap();
        let traits = vec![
            t("a\"b", TraitValue::Text("x\"]],[\\".into())),
            t("f", TraitValue::Float(0.1)),
            t("i", TraitValue::Int(-42)),
            t("t", TraitValue::Datetime(when)),
        ];
        let json = encode(&traits);
        let mut seen = Vec::new();
        scan(1, &json, |name, value| seen.push((name, value))).unwrap();
        assert_eq!(
            seen,
            [
                (r#""a\"b""#, RawValue::Text(r#""x\"]],[\\""#)),
                (r#""f""#, RawValue::Float("0.1")),
                (r#""i""#, RawValue::Int("-42")),
                (r#""t""#, RawValue::Datetime(1_700_000_000_123_456)),
            ]
        );
        scan(1, "[]", |_, _| panic!("no traits")).unwrap();
        for bad in [
            "",
            "[",
            "[[\"a\",2,x]]",
            "[[\"a\",9,1]]",
            "[[\"a\",1,\"x\"]",
            "[]x",
        ] {
            let err = scan(3, bad, |_, _| {}).unwrap_err().to_string();
            assert!(err.contains("event 3"), "{bad}: {err}");
        }
        assert!(has(&json, "i", &[TraitValue::Int(-42)]));
        assert!(!has(&json, "i", &[TraitValue::Int(42)]));
    }

    #[test]
    fn bad_documents_name_the_event() {
        for bad in [
            "{",
            "[[\"a\",9,1]]",
            "[[\"a\",2]]",
            "[[\"a\",3,\"x\"]]",
            "[[\"a\",2,1,2]]",
        ] {
            let err = decode(42, Some(bad)).unwrap_err().to_string();
            assert!(err.contains("event 42"), "{bad}: {err}");
        }
    }

    #[test]
    fn index_keys_separate_names_types_and_values() {
        let k = index_key("instance_id", &TraitValue::Text("abc".into()));
        assert_eq!(k, index_key("instance_id", &TraitValue::Text("abc".into())));
        assert_ne!(k, index_key("instance_id", &TraitValue::Text("abd".into())));
        assert_ne!(k, index_key("instance_i", &TraitValue::Text("dabc".into())));
        assert_ne!(
            index_key("n", &TraitValue::Int(1)),
            index_key("n", &TraitValue::Datetime(from_micros(1).unwrap()))
        );
        assert_eq!(
            index_key("f", &TraitValue::Float(0.0)),
            index_key("f", &TraitValue::Float(-0.0))
        );
        // Pinned (computed independently from the FNV-1a 64 definition): keys are stored, so
        // they must never change.
        assert_eq!(
            index_key("instance_id", &TraitValue::Text("abc".into())),
            3_731_676_878_907_514_570
        );
        assert_eq!(
            index_key("", &TraitValue::Int(0)),
            -6_254_734_928_100_530_241
        );
        assert_eq!(fnv1a_64(FNV64_OFFSET_BASIS, b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn dead_letter_digests_separate_sources_and_bytes() {
        let d = dead_letter_digest("amqp:q", b"not json");
        assert_eq!(d, dead_letter_digest("amqp:q", b"not json"));
        assert_ne!(d, dead_letter_digest("amqp:q", b"not jsoN"));
        assert_ne!(d, dead_letter_digest("amqp:r", b"not json"));
        // The source's length is hashed first: moving bytes between source and raw changes it.
        assert_ne!(d, dead_letter_digest("amqp:qn", b"ot json"));
        // Pinned (computed independently from the FNV-1a 64 definition): digests are stored
        // under a unique index, so they must never change.
        assert_eq!(d, 3_319_587_691_341_663_120);
        assert_eq!(dead_letter_digest("", b""), -6_284_781_860_667_377_211);
    }

    #[test]
    fn search_strings_read_as_every_type_they_can_be() {
        let parse = |s: &str| (s == "now").then(|| from_micros(5).unwrap());
        let r = readings("12", parse);
        assert_eq!(
            r,
            [
                TraitValue::Text("12".into()),
                TraitValue::Int(12),
                TraitValue::Float(12.0)
            ]
        );
        assert_eq!(readings("now", parse).len(), 2);
        let json = encode(&[t("memory_mb", TraitValue::Int(12))]);
        assert!(has(&json, "memory_mb", &r));
        assert!(!has(&json, "disk_gb", &r));
        assert!(!has(&json, "memory_mb", &readings("13", parse)));
    }

    #[test]
    fn indexed_sets_read_star_as_all() {
        assert_eq!(IndexedTraits::from_names(["a", "*"]), IndexedTraits::All);
        let set = IndexedTraits::from_names([" host ", "", "host"]);
        assert!(set.contains("host") && !set.contains("hos"));
        assert_eq!(set.rows(), ["host"]);
        assert_eq!(IndexedTraits::All.rows(), ["*"]);
        assert!(IndexedTraits::default_set().contains("instance_id"));
    }
}
