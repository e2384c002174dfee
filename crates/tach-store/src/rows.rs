//! Binding typed values and decoding rows: traits, distinguishing traits, events, streams and
//! dead letters.

use std::collections::HashMap;

use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::dialect::{Backend, Dialect};
use crate::error::{Context, Error, Result};
use crate::framed::{self, Field, Frames};
use crate::sql::{AnyQuery, from_micros, micros, query, with_ids};
use crate::store::DeadLetter;
use crate::types::{DistValue, Event, StreamRow, StreamState, Trait, TraitValue, type_code};

/// Columns of `streams` read by [`decode_stream`], in order.
pub(crate) const STREAM_COLS: &str = "id, trigger_name, state, first_event, last_event, \
     expire_timestamp, fire_timestamp, distinguishing_key, active_key, fire_state, error, \
     event_count";

/// Columns of `dead_letters` read by [`decode_dead_letter`], in order.
pub(crate) const DEAD_LETTER_COLS: &str =
    "id, received_at, source, reason, raw, occurrences, last_received_at";

/// Decodes a dead letter read as [`DEAD_LETTER_COLS`].
pub(crate) fn decode_dead_letter(row: &AnyRow) -> Result<DeadLetter> {
    const WHAT: &str = "reading dead letters";
    let occurrences: i64 = get(row, 5, WHAT)?;
    Ok(DeadLetter {
        id: get(row, 0, WHAT)?,
        received_at: from_micros(get(row, 1, WHAT)?)?,
        source: get(row, 2, WHAT)?,
        reason: get(row, 3, WHAT)?,
        raw: get(row, 4, WHAT)?,
        occurrences: u64::try_from(occurrences).unwrap_or(0),
        last_received_at: from_micros(get(row, 6, WHAT)?)?,
    })
}

/// Rows per `IN (...)` list when loading children of many parents.
pub(crate) const IN_CHUNK: usize = 500;

/// Binds `type, t_string, t_int, t_float, t_datetime` (one typed column set, the rest NULL).
fn bind_typed(
    q: AnyQuery,
    code: i16,
    text: Option<&str>,
    int: Option<i64>,
    float: Option<f64>,
    datetime: Option<i64>,
) -> AnyQuery {
    q.bind(code).bind(text).bind(int).bind(float).bind(datetime)
}

/// Binds `type, t_string, t_int, t_float, t_datetime, t_end` of a distinguishing value.
pub(crate) fn bind_dist_value(q: AnyQuery, value: &DistValue) -> AnyQuery {
    let none = None::<i64>;
    match value {
        DistValue::Text(s) => bind_typed(q, type_code::TEXT, Some(s), None, None, None).bind(none),
        DistValue::Int(i) => bind_typed(q, type_code::INT, None, Some(*i), None, None).bind(none),
        DistValue::Float(f) => {
            bind_typed(q, type_code::FLOAT, None, None, Some(*f), None).bind(none)
        }
        DistValue::Datetime(t) => {
            bind_typed(q, type_code::DATETIME, None, None, None, Some(micros(*t))).bind(none)
        }
        DistValue::Range { begin, end } => bind_typed(
            q,
            type_code::TIMERANGE,
            None,
            None,
            None,
            Some(micros(*begin)),
        )
        .bind(micros(*end)),
    }
}

fn get<'r, T>(row: &'r AnyRow, idx: usize, what: &'static str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get::<T, _>(idx).ctx(what)
}

fn missing(kind: &str, name: &str) -> Error {
    Error::InvalidData {
        what: format!("{kind} {name:?} has no value in its typed column"),
    }
}

/// Decodes `type, t_string, t_int, t_float, t_datetime[, t_end]` starting at column `at`.
fn decode_typed(row: &AnyRow, at: usize, name: &str, with_end: bool) -> Result<DistValue> {
    const WHAT: &str = "reading a trait value";
    let code: i16 = get(row, at, WHAT)?;
    Ok(match code {
        type_code::TEXT => {
            DistValue::Text(get::<Option<String>>(row, at + 1, WHAT)?.unwrap_or_default())
        }
        type_code::INT => DistValue::Int(
            get::<Option<i64>>(row, at + 2, WHAT)?.ok_or_else(|| missing("int trait", name))?,
        ),
        type_code::FLOAT => DistValue::Float(
            get::<Option<f64>>(row, at + 3, WHAT)?.ok_or_else(|| missing("float trait", name))?,
        ),
        type_code::DATETIME => DistValue::Datetime(from_micros(
            get::<Option<i64>>(row, at + 4, WHAT)?
                .ok_or_else(|| missing("datetime trait", name))?,
        )?),
        type_code::TIMERANGE if with_end => {
            let begin: Option<i64> = get(row, at + 4, WHAT)?;
            let end: Option<i64> = get(row, at + 5, WHAT)?;
            match (begin, end) {
                (Some(b), Some(e)) => DistValue::Range {
                    begin: from_micros(b)?,
                    end: from_micros(e)?,
                },
                _ => return Err(missing("timerange trait", name)),
            }
        }
        other => {
            return Err(Error::InvalidData {
                what: format!("trait {name:?} has unknown type code {other}"),
            });
        }
    })
}

fn to_trait_value(v: DistValue) -> Option<TraitValue> {
    match v {
        DistValue::Text(s) => Some(TraitValue::Text(s)),
        DistValue::Int(i) => Some(TraitValue::Int(i)),
        DistValue::Float(f) => Some(TraitValue::Float(f)),
        DistValue::Datetime(t) => Some(TraitValue::Datetime(t)),
        DistValue::Range { .. } => None,
    }
}

/// Decodes a `streams` row selected with [`STREAM_COLS`] (no traits, no events).
pub(crate) fn decode_stream(row: &AnyRow) -> Result<StreamRow> {
    const WHAT: &str = "reading a stream";
    let state_code: i16 = get(row, 2, WHAT)?;
    let state = StreamState::from_code(state_code).ok_or_else(|| Error::InvalidData {
        what: format!("unknown stream state code {state_code}"),
    })?;
    Ok(StreamRow {
        id: get(row, 0, WHAT)?,
        trigger_name: get(row, 1, WHAT)?,
        state,
        first_event: from_micros(get(row, 3, WHAT)?)?,
        last_event: from_micros(get(row, 4, WHAT)?)?,
        expire_timestamp: from_micros(get(row, 5, WHAT)?)?,
        fire_timestamp: get::<Option<i64>>(row, 6, WHAT)?
            .map(from_micros)
            .transpose()?,
        distinguishing_key: get(row, 7, WHAT)?,
        distinguishing_traits: Vec::new(),
        attached: get::<Option<String>>(row, 8, WHAT)?.is_some(),
        fire_state: get(row, 9, WHAT)?,
        error: get(row, 10, WHAT)?,
        event_count: get(row, 11, WHAT)?,
        events: None,
    })
}

/// [`STREAM_COLS`] framed ([`crate::framed`]), read by [`decode_stream_frames`].
const STREAM_FIELDS: [Field<'static>; 12] = [
    Field::Int("id"),
    Field::Text("trigger_name"),
    Field::Int("state"),
    Field::Int("first_event"),
    Field::Int("last_event"),
    Field::Int("expire_timestamp"),
    Field::OptInt("fire_timestamp"),
    Field::Text("distinguishing_key"),
    Field::OptText("active_key"),
    Field::Text("fire_state"),
    Field::OptText("error"),
    Field::Int("event_count"),
];

/// The streams of `select` (a SELECT of [`STREAM_COLS`] with its parameters bound by `bind`)
/// with their active keys, decoded as [`decode_stream`] does. On SQLite the rows come framed
/// in one ([`crate::framed`]), concatenated in `order` (an ORDER BY list of [`STREAM_COLS`]).
pub(crate) async fn fetch_streams(
    conn: &mut AnyConnection,
    dialect: Dialect,
    select: &str,
    order: &str,
    bind: impl FnOnce(AnyQuery) -> AnyQuery,
    what: &'static str,
) -> Result<Vec<(StreamRow, Option<String>)>> {
    if dialect.backend() != Backend::Sqlite {
        let rows = bind(query(select.to_owned()))
            .fetch_all(&mut *conn)
            .await
            .ctx(what)?;
        return rows
            .iter()
            .map(|row| Ok((decode_stream(row)?, get(row, 8, what)?)))
            .collect();
    }
    let mut sql = framed::head(&STREAM_FIELDS, order);
    sql.push_str(select);
    sql.push(')');
    let row = bind(query(sql)).fetch_one(&mut *conn).await.ctx(what)?;
    let text: Option<&str> = get(&row, 0, what)?;
    let mut frames = Frames::new(text.unwrap_or_default());
    let mut out = Vec::new();
    while !frames.is_empty() {
        out.push(decode_stream_frames(&mut frames)?);
    }
    Ok(out)
}

/// One stream of [`fetch_streams`]'s framed text, with its active key.
fn decode_stream_frames(f: &mut Frames) -> Result<(StreamRow, Option<String>)> {
    let id = f.int("a stream id")?;
    let trigger_name = f.text("a trigger name")?.to_owned();
    let state_code = f.int("a stream state")?;
    let state = i16::try_from(state_code)
        .ok()
        .and_then(StreamState::from_code)
        .ok_or_else(|| Error::InvalidData {
            what: format!("unknown stream state code {state_code}"),
        })?;
    let first_event = from_micros(f.int("a first event time")?)?;
    let last_event = from_micros(f.int("a last event time")?)?;
    let expire_timestamp = from_micros(f.int("an expire time")?)?;
    let fire_timestamp = f.opt_int("a fire time")?.map(from_micros).transpose()?;
    let distinguishing_key = f.text("a distinguishing key")?.to_owned();
    let active_key = f.opt_text("an active key")?.map(str::to_owned);
    let fire_state = f.text("a fire state")?.to_owned();
    let error = f.opt_text("an error")?.map(str::to_owned);
    let event_count = f.int("an event count")?;
    let stream = StreamRow {
        id,
        trigger_name,
        state,
        first_event,
        last_event,
        expire_timestamp,
        fire_timestamp,
        distinguishing_key,
        distinguishing_traits: Vec::new(),
        attached: active_key.is_some(),
        fire_state,
        error,
        event_count,
        events: None,
    };
    Ok((stream, active_key))
}

/// Columns of `events` read by [`decode_events`], in order (prefix them with an alias where
/// the query joins).
pub(crate) const EVENT_COLS: &str = "id, message_id, event_type, generated, traits";

/// Decodes [`EVENT_COLS`] rows (from column `at` on) into `(id, event)` with its traits.
pub(crate) fn decode_events(rows: &[AnyRow], at: usize) -> Result<Vec<(i64, Event)>> {
    const WHAT: &str = "reading an event";
    rows.iter()
        .map(|row| {
            let id: i64 = get(row, at, WHAT)?;
            let json: Option<&str> = get(row, at + 4, WHAT)?;
            Ok((
                id,
                Event {
                    message_id: get(row, at + 1, WHAT)?,
                    event_type: get(row, at + 2, WHAT)?,
                    timestamp: from_micros(get(row, at + 3, WHAT)?)?,
                    traits: crate::doc::decode(id, json)?,
                },
            ))
        })
        .collect()
}

/// The traits of `events` (by id) from the row-per-trait `traits` table of schema versions
/// 1 to 3: only for the migration that turns them into documents.
pub(crate) async fn load_legacy_traits(
    conn: &mut AnyConnection,
    dialect: Dialect,
    events: &mut [(i64, Vec<Trait>)],
) -> Result<()> {
    const WHAT: &str = "reading a trait";
    let index: HashMap<i64, usize> = events
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let ids: Vec<i64> = events.iter().map(|(id, _)| *id).collect();
    for chunk in ids.chunks(IN_CHUNK) {
        let q = with_ids(
            dialect,
            "SELECT event_id, name, type, t_string, t_int, t_float, t_datetime FROM traits \
             WHERE event_id IN (",
            chunk,
            ") ORDER BY event_id, name",
        );
        let rows = q.fetch_all(&mut *conn).await.ctx("loading traits")?;
        for row in &rows {
            let event_id: i64 = get(row, 0, WHAT)?;
            let Some(&i) = index.get(&event_id) else {
                continue;
            };
            let name: String = get(row, 1, WHAT)?;
            let value = decode_typed(row, 2, &name, false)?;
            let value = to_trait_value(value).ok_or_else(|| missing("trait", &name))?;
            events[i].1.push(Trait { name, value });
        }
    }
    Ok(())
}

/// Loads the distinguishing traits of `streams`, sorted by name.
pub(crate) async fn load_dist_traits(
    conn: &mut AnyConnection,
    dialect: Dialect,
    streams: &mut [StreamRow],
) -> Result<()> {
    const WHAT: &str = "reading a distinguishing trait";
    let index: HashMap<i64, usize> = streams.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    let ids: Vec<i64> = streams.iter().map(|s| s.id).collect();
    for chunk in ids.chunks(IN_CHUNK) {
        let q = with_ids(
            dialect,
            "SELECT stream_id, name, type, t_string, t_int, t_float, t_datetime, t_end \
             FROM dist_traits WHERE stream_id IN (",
            chunk,
            ") ORDER BY stream_id, name",
        );
        let rows = q
            .fetch_all(&mut *conn)
            .await
            .ctx("loading distinguishing traits")?;
        for row in &rows {
            let stream_id: i64 = get(row, 0, WHAT)?;
            let Some(&i) = index.get(&stream_id) else {
                continue;
            };
            let name: String = get(row, 1, WHAT)?;
            let value = decode_typed(row, 2, &name, true)?;
            streams[i].distinguishing_traits.push((name, value));
        }
    }
    Ok(())
}

/// The events of stream `stream_id` with their traits, sorted by timestamp (then id).
pub(crate) async fn load_stream_events(
    conn: &mut AnyConnection,
    dialect: Dialect,
    stream_id: i64,
) -> Result<Vec<Event>> {
    let rows = query(crate::sql::sql(
        dialect,
        "SELECT e.id, e.message_id, e.event_type, e.generated, e.traits FROM stream_events se \
         JOIN events e ON e.id = se.event_id WHERE se.stream_id = ? ORDER BY e.generated, e.id",
    ))
    .bind(stream_id)
    .fetch_all(&mut *conn)
    .await
    .ctx("loading stream events")?;
    Ok(decode_events(&rows, 0)?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}

/// The events of each of `stream_ids` (in that order), with their traits when `traits` (else
/// each event's are empty), each list sorted by timestamp (then id), in one statement per chunk
/// of streams.
pub(crate) async fn load_streams_events(
    conn: &mut AnyConnection,
    dialect: Dialect,
    stream_ids: &[i64],
    traits: bool,
) -> Result<Vec<Vec<Event>>> {
    const WHAT: &str = "loading stream events";
    // Without traits the document column is NULL: decoded as no traits, and not read.
    let head = format!(
        "SELECT se.stream_id, e.id, e.message_id, e.event_type, e.generated, {} \
         FROM stream_events se JOIN events e ON e.id = se.event_id WHERE se.stream_id IN (",
        if traits { "e.traits" } else { "NULL" }
    );
    let mut out: Vec<Vec<Event>> = (0..stream_ids.len()).map(|_| Vec::new()).collect();
    let position: HashMap<i64, usize> = stream_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    if dialect.backend() == Backend::Sqlite {
        let framed_head = framed_streams_events_head(traits, &head);
        let counts = stream_event_counts(conn, dialect, stream_ids).await?;
        for chunk in framed_chunks(stream_ids, &counts) {
            if chunk.len() == 1 && counts.get(&chunk[0]).copied().unwrap_or(0) > FRAMED_EVENTS {
                // Too many events for one text: row by row.
                push_rows(conn, dialect, &head, chunk, &position, &mut out).await?;
            } else {
                let q = with_ids(dialect, &framed_head, chunk, "))");
                let row = q.fetch_one(&mut *conn).await.ctx(WHAT)?;
                let text: Option<&str> = get(&row, 0, WHAT)?;
                push_frames(text.unwrap_or_default(), traits, &position, &mut out)?;
            }
        }
        return Ok(out);
    }
    for chunk in stream_ids.chunks(IN_CHUNK) {
        push_rows(conn, dialect, &head, chunk, &position, &mut out).await?;
    }
    Ok(out)
}

/// [`load_streams_events`] for a framed row's `text` (events with their trait documents when
/// `traits`).
fn push_frames(
    text: &str,
    traits: bool,
    position: &HashMap<i64, usize>,
    out: &mut [Vec<Event>],
) -> Result<()> {
    let mut frames = Frames::new(text);
    while !frames.is_empty() {
        let stream_id = frames.int("a stream id")?;
        let id = frames.int("an event id")?;
        let generated = frames.int("a timestamp")?;
        let message_id = frames.text("a message id")?.to_owned();
        let event_type = frames.text("an event type")?.to_owned();
        let doc = if traits {
            Some(frames.text("a trait document")?)
        } else {
            None
        };
        let event = Event {
            message_id,
            event_type,
            timestamp: from_micros(generated)?,
            traits: crate::doc::decode(id, doc)?,
        };
        if let Some(&s) = position.get(&stream_id) {
            out[s].push(event);
        }
    }
    Ok(())
}

/// [`load_streams_events`] for the streams of `chunk`, a row per event.
async fn push_rows(
    conn: &mut AnyConnection,
    dialect: Dialect,
    head: &str,
    chunk: &[i64],
    position: &HashMap<i64, usize>,
    out: &mut [Vec<Event>],
) -> Result<()> {
    const WHAT: &str = "loading stream events";
    let q = with_ids(
        dialect,
        head,
        chunk,
        ") ORDER BY se.stream_id, e.generated, e.id",
    );
    let rows = q.fetch_all(&mut *conn).await.ctx(WHAT)?;
    let events = decode_events(&rows, 1)?;
    for (row, (_, event)) in rows.iter().zip(events) {
        let stream_id: i64 = get(row, 0, WHAT)?;
        if let Some(&s) = position.get(&stream_id) {
            out[s].push(event);
        }
    }
    Ok(())
}

/// Streams whose events [`load_streams_events`] reads in one framed row on SQLite, at most:
/// the row holds their trait documents (about 1 KB an event), copied by SQLite, sqlx and the
/// caller.
const FRAMED_STREAMS_CHUNK: usize = 100;
/// Events (by the streams' `event_count`) in one framed row, at most, unless one stream alone
/// has more; a stream with more than this is read a row per event.
const FRAMED_EVENTS: i64 = 2000;

/// SQLite: the `event_count` of each of `stream_ids`, in one framed row per chunk.
async fn stream_event_counts(
    conn: &mut AnyConnection,
    dialect: Dialect,
    stream_ids: &[i64],
) -> Result<HashMap<i64, i64>> {
    const WHAT: &str = "counting stream events";
    let head = framed::head(&[Field::Int("id"), Field::Int("event_count")], "id")
        + "SELECT id, event_count FROM streams WHERE id IN (";
    let mut counts = HashMap::with_capacity(stream_ids.len());
    for chunk in stream_ids.chunks(IN_CHUNK) {
        let row = with_ids(dialect, &head, chunk, "))")
            .fetch_one(&mut *conn)
            .await
            .ctx(WHAT)?;
        let text: Option<&str> = get(&row, 0, WHAT)?;
        let mut frames = Frames::new(text.unwrap_or_default());
        while !frames.is_empty() {
            let id = frames.int("a stream id")?;
            counts.insert(id, frames.int("an event count")?);
        }
    }
    Ok(counts)
}

/// `stream_ids` in runs of at most [`FRAMED_STREAMS_CHUNK`] streams and [`FRAMED_EVENTS`]
/// events by `counts` (a stream with more events is a run of its own).
fn framed_chunks<'a>(stream_ids: &'a [i64], counts: &HashMap<i64, i64>) -> Vec<&'a [i64]> {
    let mut chunks = Vec::new();
    let (mut start, mut events) = (0, 0i64);
    for (i, id) in stream_ids.iter().enumerate() {
        let n = counts.get(id).copied().unwrap_or(0).max(0);
        if i > start && (events + n > FRAMED_EVENTS || i - start >= FRAMED_STREAMS_CHUNK) {
            chunks.push(&stream_ids[start..i]);
            (start, events) = (i, 0);
        }
        events += n;
    }
    if start < stream_ids.len() {
        chunks.push(&stream_ids[start..]);
    }
    chunks
}

/// SQLite: `inner` (the start of [`load_streams_events`]'s statement) with its rows framed
/// into one ([`crate::framed`]); the stream ids and `))` follow.
fn framed_streams_events_head(traits: bool, inner: &str) -> String {
    let mut fields = vec![
        Field::Int("stream_id"),
        Field::Int("id"),
        Field::Int("generated"),
        Field::Text("message_id"),
        Field::Text("event_type"),
    ];
    if traits {
        fields.push(Field::Text("coalesce(traits, '[]')"));
    }
    let mut sql = framed::head(&fields, "stream_id, generated, id");
    sql.push_str(inner);
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_stream_fields_are_the_stream_columns_in_order() {
        let names: Vec<&str> = STREAM_FIELDS.iter().map(|f| f.expr()).collect();
        let cols: Vec<&str> = STREAM_COLS.split(',').map(str::trim).collect();
        assert_eq!(names, cols);
    }

    #[test]
    fn framed_chunks_hold_at_most_100_streams_and_2000_events_unless_one_stream_has_more() {
        let ids: Vec<i64> = (1..=250).collect();
        let mut counts: HashMap<i64, i64> = ids.iter().map(|&id| (id, 1)).collect();
        let sizes = |counts: &HashMap<i64, i64>| -> Vec<usize> {
            framed_chunks(&ids, counts)
                .iter()
                .map(|c| c.len())
                .collect()
        };
        assert_eq!(sizes(&counts), [100, 100, 50]);
        // Stream 5 alone is over the budget: a run of its own; 1,500 + 600 do not fit together.
        counts.insert(5, 5000);
        counts.insert(120, 1500);
        counts.insert(121, 600);
        assert_eq!(sizes(&counts), [4, 1, 100, 15, 100, 30]);
        let chunks = framed_chunks(&ids, &counts);
        assert_eq!(chunks[1], [5]);
        assert_eq!(chunks.concat(), ids, "every stream once, in order");
        assert!(framed_chunks(&[], &counts).is_empty());
    }
}
