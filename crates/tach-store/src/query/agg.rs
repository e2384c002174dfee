//! Loading the traits of many events with one row per event: the database aggregates each
//! event's traits into a JSON array (SQLite `json_group_array`, PostgreSQL `json_agg`), which is
//! parsed here.
//!
//! The row-per-trait form costs one driver row (several owned values, a channel message on
//! SQLite) per trait, which dominated the REST API's event lookups (about 1,500 rows per
//! request on a 1M-event database). The id list is one bound text parameter, so every request
//! uses the same prepared statement whatever its number of events.
//!
//! Each element is `[name, type, t_string, t_int, t_datetime]`; float values are left out
//! because SQLite's JSON functions print doubles with 15 significant digits only: the floats of
//! the few events that have float traits are read exactly in a second, row-per-trait statement.
//! MySQL/MariaDB keep the row-per-trait form ([`supported`] is false): their `JSON_ARRAYAGG`
//! is silently cut at `group_concat_max_len`.

use std::collections::HashMap;
use std::fmt::Write as _;

use sqlx::AnyConnection;
use sqlx::Row;

use crate::dialect::{Backend, Dialect};
use crate::error::{Context, Error, Result};
use crate::sql::{from_micros, query};
use crate::types::{Event, Trait, TraitValue, type_code};

/// One aggregated trait: `[name, type, t_string, t_int, t_datetime]`.
type RawTrait = (String, i16, Option<String>, Option<i64>, Option<i64>);

/// True when `dialect`'s backend aggregates traits here (SQLite, PostgreSQL).
pub(crate) fn supported(dialect: Dialect) -> bool {
    matches!(dialect.backend(), Backend::Sqlite | Backend::Postgres)
}

/// `event_id, <JSON array of the event's traits sorted by name>` for the ids in the one text
/// parameter (comma-separated on PostgreSQL, a JSON array on SQLite).
fn traits_sql(backend: Backend) -> String {
    let by_id = match backend {
        Backend::Postgres => "event_id = ANY(string_to_array($1::text, ',')::bigint[])",
        // SQLite (MySQL never gets here: see `supported`).
        Backend::Sqlite | Backend::MySql => "event_id IN (SELECT value FROM json_each(?))",
    };
    format!(
        "SELECT event_id, {} FROM traits WHERE {by_id} GROUP BY event_id",
        aggregate(backend)
    )
}

/// The aggregate of the traits of one event: a JSON array sorted by name (NULL or `[]` when it
/// has none).
fn aggregate(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => {
            "json_agg(json_build_array(name, type, t_string, t_int, t_datetime) ORDER BY name)::text"
        }
        // No ORDER BY (it costs SQLite a sorter per event): the primary key (event_id, name)
        // yields each event's traits in BINARY (byte) order already, and `decode` checks it.
        Backend::Sqlite | Backend::MySql => {
            "json_group_array(json_array(name, type, t_string, t_int, t_datetime))"
        }
    }
}

/// A scalar subquery: the aggregated traits (as [`aggregate`]) of the event whose id is the
/// column `id_col` of the enclosing query.
pub(crate) fn traits_column(backend: Backend, id_col: &str) -> String {
    format!(
        "(SELECT {} FROM traits WHERE traits.event_id = {id_col})",
        aggregate(backend)
    )
}

/// `event_id, name, t_float` of the float traits of the ids in the one text parameter.
fn floats_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => {
            "SELECT event_id, name, t_float FROM traits \
             WHERE event_id = ANY(string_to_array($1::text, ',')::bigint[]) AND type = 3"
        }
        // SQLite (MySQL never gets here: see `supported`).
        Backend::Sqlite | Backend::MySql => {
            "SELECT event_id, name, t_float FROM traits \
             WHERE event_id IN (SELECT value FROM json_each(?)) AND type = 3"
        }
    }
}

/// The id list parameter: `1,2,3` on PostgreSQL, `[1,2,3]` on SQLite.
fn id_list(backend: Backend, ids: impl Iterator<Item = i64>) -> String {
    let sqlite = backend == Backend::Sqlite;
    let mut s = String::with_capacity(256);
    if sqlite {
        s.push('[');
    }
    for (i, id) in ids.enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{id}");
    }
    if sqlite {
        s.push(']');
    }
    s
}

fn invalid(what: String) -> Error {
    Error::InvalidData { what }
}

/// Converts an aggregated trait; a float comes back as NaN for [`load_traits`] to fill in.
fn to_trait(raw: RawTrait, has_float: &mut bool) -> Result<Trait> {
    let (name, code, text, int, datetime) = raw;
    let value = match code {
        type_code::TEXT => TraitValue::Text(text.unwrap_or_default()),
        type_code::INT => {
            TraitValue::Int(int.ok_or_else(|| invalid(format!("int trait {name:?} has no value")))?)
        }
        type_code::FLOAT => {
            *has_float = true;
            TraitValue::Float(f64::NAN)
        }
        type_code::DATETIME => TraitValue::Datetime(from_micros(
            datetime.ok_or_else(|| invalid(format!("datetime trait {name:?} has no value")))?,
        )?),
        other => {
            return Err(invalid(format!(
                "trait {name:?} has unknown type code {other}"
            )));
        }
    };
    Ok(Trait { name, value })
}

/// Appends the traits in `json` (an [`aggregate`], NULL for none) of event `event_id` to
/// `traits`, sorted by name; true when some are floats, which [`load_floats`] reads.
pub(crate) fn decode(
    backend: Backend,
    event_id: i64,
    json: Option<&str>,
    traits: &mut Vec<Trait>,
) -> Result<bool> {
    let Some(json) = json else {
        return Ok(false);
    };
    let raw: Vec<RawTrait> = serde_json::from_str(json)
        .map_err(|e| invalid(format!("the traits of event {event_id} do not parse: {e}")))?;
    let mut has_float = false;
    traits.reserve(raw.len());
    for r in raw {
        traits.push(to_trait(r, &mut has_float)?);
    }
    // SQLite's order is BINARY, the byte order `String` sorts in (PostgreSQL's aggregate sorts
    // by the database's collation, as the row-per-trait query did).
    if backend == Backend::Sqlite && !traits.is_sorted_by(|a, b| a.name <= b.name) {
        traits.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(has_float)
}

/// Loads the traits of `events` (by id), sorted by name within each event, with one row per
/// event. Only for backends where [`supported`] is true.
pub(crate) async fn load_traits(
    conn: &mut AnyConnection,
    dialect: Dialect,
    events: &mut [(i64, Event)],
) -> Result<()> {
    const WHAT: &str = "loading traits";
    if events.is_empty() {
        return Ok(());
    }
    let backend = dialect.backend();
    let ids = id_list(backend, events.iter().map(|(id, _)| *id));
    let index: HashMap<i64, usize> = events
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let rows = query(traits_sql(backend))
        .bind(ids)
        .fetch_all(&mut *conn)
        .await
        .ctx(WHAT)?;
    let mut float_events = Vec::new();
    for row in &rows {
        let event_id: i64 = row.try_get(0).ctx(WHAT)?;
        let Some(&i) = index.get(&event_id) else {
            continue;
        };
        let json: Option<&str> = row.try_get(1).ctx(WHAT)?;
        if decode(backend, event_id, json, &mut events[i].1.traits)? {
            float_events.push(event_id);
        }
    }
    for (event_id, name, value) in load_floats(conn, backend, &float_events).await? {
        if let Some(&i) = index.get(&event_id) {
            set_float(&mut events[i].1.traits, &name, value);
        }
    }
    Ok(())
}

/// `(event id, name, value)` of the float traits of the events `float_events`.
pub(crate) async fn load_floats(
    conn: &mut AnyConnection,
    backend: Backend,
    float_events: &[i64],
) -> Result<Vec<(i64, String, f64)>> {
    const WHAT: &str = "loading float traits";
    if float_events.is_empty() {
        return Ok(Vec::new());
    }
    let rows = query(floats_sql(backend))
        .bind(id_list(backend, float_events.iter().copied()))
        .fetch_all(&mut *conn)
        .await
        .ctx(WHAT)?;
    rows.iter()
        .map(|row| {
            let name: String = row.try_get(1).ctx(WHAT)?;
            let value: Option<f64> = row.try_get(2).ctx(WHAT)?;
            let value =
                value.ok_or_else(|| invalid(format!("float trait {name:?} has no value")))?;
            Ok((row.try_get(0).ctx(WHAT)?, name, value))
        })
        .collect()
}

/// Sets the float trait `name` of `traits` (decoded by [`decode`]) to `value`.
pub(crate) fn set_float(traits: &mut [Trait], name: &str, value: f64) {
    if let Some(t) = traits.iter_mut().find(|t| t.name == name) {
        t.value = TraitValue::Float(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lists_suit_each_backend() {
        assert_eq!(id_list(Backend::Sqlite, [3, 1, 2].into_iter()), "[3,1,2]");
        assert_eq!(id_list(Backend::Postgres, [3, 1, 2].into_iter()), "3,1,2");
        assert_eq!(id_list(Backend::Postgres, std::iter::empty()), "");
    }

    #[test]
    fn aggregated_traits_convert_by_type_code() {
        let mut has_float = false;
        let t = to_trait(("a".into(), 1, None, None, None), &mut has_float).unwrap();
        assert_eq!(t.value, TraitValue::Text(String::new()));
        let t = to_trait(("b".into(), 2, None, Some(-7), None), &mut has_float).unwrap();
        assert_eq!(t.value, TraitValue::Int(-7));
        assert!(!has_float);
        to_trait(("c".into(), 3, None, None, None), &mut has_float).unwrap();
        assert!(has_float);
        let t = to_trait(("d".into(), 4, None, None, Some(1_500_000)), &mut has_float).unwrap();
        assert_eq!(
            t.value,
            TraitValue::Datetime(from_micros(1_500_000).unwrap())
        );
        assert!(to_trait(("e".into(), 2, None, None, None), &mut has_float).is_err());
        assert!(to_trait(("f".into(), 9, None, None, None), &mut has_float).is_err());
    }
}
