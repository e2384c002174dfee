//! The read side for the REST API: events and streams by filter, counts, single rows, and
//! id-based paging (`mark`) in both directions, as quincy/winchester do it.
//!
//! Trait filters take the value as text, as the API receives it, and match a trait whose text
//! equals it, or whose int, float or datetime equals it parsed (so `"5"` matches int 5 and float
//! 5.0); a distinguishing time range matches a datetime it contains. A distinguishing trait
//! alternative is its own indexed lookup on `(name, typed column)`. An event trait is looked up
//! in `trait_index` (and on SQLite `trait_index_recent`, see [`crate::recent`]) by the keys of
//! its readings when the trait is indexed, and otherwise found by a substring search of the
//! event's trait document (see [`crate::doc`]); listed events are checked against their decoded
//! traits, which removes index-key collisions.

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::Row;

use crate::dialect::{Backend, Dialect, is_glob};
use crate::doc::{self, IndexedTraits};
use crate::error::{Context, Result};
use crate::framed::{self, Field, Frames};
use crate::rows::load_stream_events;
use crate::rows::{EVENT_COLS, STREAM_COLS, decode_events, decode_stream, load_dist_traits};
use crate::sql::{AnyQuery, SqlBuf, micros, query};
use crate::store::Store;
use crate::types::{Event, StreamRow, StreamState, type_code};

/// Paging direction; the mark is an id boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Newest first: ids below the mark (the API's plain hex mark).
    #[default]
    Desc,
    /// Oldest first: ids above the mark (the API's `+` mark).
    Asc,
}

/// Which events [`Store::list_events`] and [`Store::count_events`] select.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// Only events generated after this time (exclusive, as winchester).
    pub from: Option<DateTime<Utc>>,
    /// Only events generated at or before this time.
    pub to: Option<DateTime<Utc>>,
    /// Event types, any of which must match: exact names or globs with `*` and `?`.
    pub event_types: Vec<String>,
    /// `(name, value)` pairs that must all match (see the module docs).
    pub traits: Vec<(String, String)>,
    /// Order, and which side of `mark` to read.
    pub direction: Direction,
    /// Id boundary (exclusive) for paging; `None` starts at the newest or oldest.
    pub mark: Option<i64>,
    /// At most this many rows (`None`: all; ignored by counts).
    pub limit: Option<u32>,
}

/// Which streams [`Store::list_streams`] and [`Store::count_streams`] select.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamFilter {
    /// Only streams whose first event is before this time.
    pub older_than: Option<DateTime<Utc>>,
    /// Only streams whose last event is after this time.
    pub younger_than: Option<DateTime<Utc>>,
    /// Only streams in this state.
    pub state: Option<StreamState>,
    /// Only streams of this trigger.
    pub trigger_name: Option<String>,
    /// `(name, value)` distinguishing traits that must all match (see the module docs).
    pub distinguishing_traits: Vec<(String, String)>,
    /// Order, and which side of `mark` to read.
    pub direction: Direction,
    /// Id boundary (exclusive) for paging.
    pub mark: Option<i64>,
    /// At most this many rows (`None`: all; ignored by counts).
    pub limit: Option<u32>,
    /// Also load each stream's events.
    pub details: bool,
    /// With `details`, at most this many events per stream, the oldest (`None`: all).
    pub max_events: Option<u32>,
}

/// An event with its row id (the API's `_mark`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Row id.
    pub id: i64,
    /// The event.
    pub event: Event,
}

/// An event with its row id and its trait document unparsed (see [`crate::doc`]), for callers
/// that write the traits out again ([`doc::scan`]) rather than use them.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDoc {
    /// Row id.
    pub id: i64,
    /// The notification's `message_id`.
    pub message_id: String,
    /// The event type.
    pub event_type: String,
    /// When the notification was generated.
    pub timestamp: DateTime<Utc>,
    /// The trait document.
    pub traits: String,
}

impl EventDoc {
    /// The event, its document decoded.
    ///
    /// # Errors
    /// [`crate::Error::InvalidData`] for a document that does not parse.
    pub fn decode(self) -> Result<StoredEvent> {
        Ok(StoredEvent {
            id: self.id,
            event: Event {
                traits: doc::decode(self.id, Some(&self.traits))?,
                message_id: self.message_id,
                event_type: self.event_type,
                timestamp: self.timestamp,
            },
        })
    }
}

/// A value bound to a dynamically built query.
enum Bind {
    Int(i64),
    Small(i16),
    Float(f64),
    Text(String),
}

/// A WHERE clause under construction, with its bind values in parameter marker order.
struct Where {
    sql: SqlBuf,
    binds: Vec<Bind>,
    dialect: Dialect,
    empty: bool,
}

impl Where {
    fn new(dialect: Dialect, head: &str) -> Where {
        let mut sql = SqlBuf::new(dialect);
        sql.push(head);
        Where {
            sql,
            binds: Vec::new(),
            dialect,
            empty: true,
        }
    }

    fn and(&mut self) -> &mut SqlBuf {
        self.sql.push(if self.empty { " WHERE " } else { " AND " });
        self.empty = false;
        &mut self.sql
    }

    fn cmp(&mut self, col_op: &str, value: Bind) {
        self.and().push(col_op).push(" ").param();
        self.binds.push(value);
    }

    fn mark(&mut self, mark: Option<i64>, direction: Direction) {
        if let Some(mark) = mark {
            let op = match direction {
                Direction::Desc => "id <",
                Direction::Asc => "id >",
            };
            self.cmp(op, Bind::Int(mark));
        }
    }

    fn text_eq(&mut self, col: &str, value: &str) {
        self.sql.text_eq(col);
        for _ in 0..self.dialect.text_eq_binds() {
            self.binds.push(Bind::Text(value.to_owned()));
        }
    }

    /// `id_col IN (SELECT owner FROM table WHERE name = ? AND <typed match> UNION ...)`.
    fn typed_match(&mut self, id_col: &str, owner: &str, table: &str, name: &str, value: &str) {
        let arm = format!("SELECT {owner} FROM {table} WHERE name = ");
        self.and()
            .push(id_col)
            .push(" IN (")
            .push(&arm)
            .param()
            .push(" AND ");
        self.binds.push(Bind::Text(name.to_owned()));
        self.text_eq("t_string", value);
        let typed = |w: &mut Where, cond: &str, binds: Vec<Bind>| {
            w.sql.push(" UNION ").push(&arm).param();
            w.binds.push(Bind::Text(name.to_owned()));
            let mut parts = cond.split('?');
            if let Some(first) = parts.next() {
                w.sql.push(" AND ").push(first);
            }
            for part in parts {
                w.sql.param().push(part);
            }
            w.binds.extend(binds);
        };
        if let Ok(i) = value.trim().parse::<i64>() {
            typed(self, "t_int = ?", vec![Bind::Int(i)]);
        }
        if let Ok(f) = value.trim().parse::<f64>()
            && f.is_finite()
        {
            typed(self, "t_float = ?", vec![Bind::Float(f)]);
        }
        if let Some(t) = parse_datetime(value) {
            let us = micros(t);
            typed(self, "t_datetime = ?", vec![Bind::Int(us)]);
            if table == "dist_traits" {
                typed(
                    self,
                    "type = ? AND t_datetime <= ? AND t_end > ?",
                    vec![
                        Bind::Small(type_code::TIMERANGE),
                        Bind::Int(us),
                        Bind::Int(us),
                    ],
                );
            }
        }
        self.sql.push(")");
    }

    fn finish(self, tail: &str) -> (String, Vec<Bind>) {
        let mut sql = self.sql;
        sql.push(tail);
        (sql.finish(), self.binds)
    }
}

fn bind_all(mut q: AnyQuery, binds: Vec<Bind>) -> AnyQuery {
    for b in binds {
        q = match b {
            Bind::Int(v) => q.bind(v),
            Bind::Small(v) => q.bind(v),
            Bind::Float(v) => q.bind(v),
            Bind::Text(v) => q.bind(v),
        };
    }
    q
}

/// Reads [`EVENT_COLS`] rows as documents.
fn decode_event_docs(rows: &[sqlx::any::AnyRow]) -> Result<Vec<EventDoc>> {
    const WHAT: &str = "reading an event";
    rows.iter()
        .map(|row| {
            let traits: Option<String> = row.try_get(4).ctx(WHAT)?;
            Ok(EventDoc {
                id: row.try_get(0).ctx(WHAT)?,
                message_id: row.try_get(1).ctx(WHAT)?,
                event_type: row.try_get(2).ctx(WHAT)?,
                timestamp: crate::sql::from_micros(row.try_get(3).ctx(WHAT)?)?,
                traits: traits.unwrap_or_else(|| "[]".to_owned()),
            })
        })
        .collect()
}

/// Parses an API datetime: RFC 3339, or ISO 8601 with `T` or a space and no offset (UTC).
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    None
}

fn order_limit(direction: Direction, limit: Option<u32>) -> String {
    let mut tail = String::from(match direction {
        Direction::Desc => " ORDER BY id DESC",
        Direction::Asc => " ORDER BY id ASC",
    });
    if let Some(limit) = limit {
        tail.push_str(" LIMIT ");
        // A number, not a parameter: the same text for every page keeps one prepared statement.
        tail.push_str(&limit.to_string());
    }
    tail
}

impl Store {
    fn event_where(&self, head: &str, f: &EventFilter, indexed: &IndexedTraits) -> Where {
        let mut w = Where::new(self.dialect(), head);
        w.mark(f.mark, f.direction);
        if let Some(from) = f.from {
            w.cmp("generated >", Bind::Int(micros(from)));
        }
        if let Some(to) = f.to {
            w.cmp("generated <=", Bind::Int(micros(to)));
        }
        if !f.event_types.is_empty() {
            let sql = w.and();
            sql.push("(");
            for (i, t) in f.event_types.iter().enumerate() {
                if i > 0 {
                    w.sql.push(" OR ");
                }
                if is_glob(t) {
                    w.sql.glob("event_type");
                    w.binds.push(Bind::Text(w.dialect.glob_pattern(t)));
                } else {
                    w.sql.push("event_type = ").param();
                    w.binds.push(Bind::Text(t.clone()));
                }
            }
            w.sql.push(")");
        }
        for (name, value) in &f.traits {
            let readings = doc::readings(value, parse_datetime);
            if indexed.contains(name) {
                let keys: Vec<i64> = readings.iter().map(|r| doc::index_key(name, r)).collect();
                let tables = self.index_tables();
                let sql = w.and();
                sql.push("id IN (");
                for (i, table) in tables.iter().enumerate() {
                    if i > 0 {
                        sql.push(" UNION ALL ");
                    }
                    sql.push("SELECT event_id FROM ")
                        .push(table)
                        .push(" WHERE k IN (")
                        .params(keys.len())
                        .push(")");
                }
                sql.push(")");
                for _ in tables {
                    w.binds.extend(keys.iter().map(|&k| Bind::Int(k)));
                }
            } else {
                let backend = w.dialect.backend();
                let sql = w.and();
                sql.push("(");
                for i in 0..readings.len() {
                    if i > 0 {
                        sql.push(" OR ");
                    }
                    match backend {
                        Backend::Sqlite => sql.push("instr(traits, ").param().push(") > 0"),
                        Backend::Postgres => sql.push("strpos(traits, ").param().push(") > 0"),
                        Backend::MySql => sql.push("LOCATE(").param().push(", traits) > 0"),
                    };
                }
                sql.push(")");
                w.binds.extend(
                    doc::search_elements(name, &readings)
                        .into_iter()
                        .map(Bind::Text),
                );
            }
        }
        w
    }

    /// Events matching `filter`, with their traits, in the filter's order.
    ///
    /// # Errors
    /// [`crate::Error::Database`].
    pub async fn list_events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>> {
        self.list_event_docs(filter)
            .await?
            .into_iter()
            .map(EventDoc::decode)
            .collect()
    }

    /// [`Store::list_events`] with the trait documents unparsed.
    ///
    /// # Errors
    /// [`crate::Error::Database`].
    pub async fn list_event_docs(&self, filter: &EventFilter) -> Result<Vec<EventDoc>> {
        let indexed = self.indexed_traits().await?;
        let head = format!("SELECT {EVENT_COLS} FROM events");
        let w = self.event_where(&head, filter, &indexed);
        let tail = order_limit(filter.direction, filter.limit);
        let (sql, binds) = w.finish(&tail);
        let events = if self.dialect().backend() == Backend::Sqlite {
            self.list_events_framed(sql, binds, filter.direction)
                .await?
        } else {
            let rows = bind_all(query(sql), binds)
                .fetch_all(self.pool_ref())
                .await
                .ctx("listing events")?;
            decode_event_docs(&rows)?
        };
        // Every trait filter must match: the document holds one of its elements. This confirms
        // `trait_index` hits, whose keys may collide. The elements are built once per query.
        let wanted: Vec<Vec<String>> = filter
            .traits
            .iter()
            .map(|(name, value)| doc::search_elements(name, &doc::readings(value, parse_datetime)))
            .collect();
        Ok(events
            .into_iter()
            .filter(|e| {
                wanted
                    .iter()
                    .all(|alts| alts.iter().any(|el| e.traits.contains(el.as_str())))
            })
            .collect())
    }

    /// SQLite: the page of `inner` (selecting [`EVENT_COLS`]) in one row ([`crate::framed`]):
    /// sqlx hands every SQLite row from its database thread to the caller separately, and a
    /// page of 64 events cost 64 hand-offs; see BENCHMARKS.md.
    async fn list_events_framed(
        &self,
        inner: String,
        binds: Vec<Bind>,
        direction: Direction,
    ) -> Result<Vec<EventDoc>> {
        const WHAT: &str = "listing events";
        let order = match direction {
            Direction::Desc => "id DESC",
            Direction::Asc => "id ASC",
        };
        let mut sql = framed::head(
            &[
                Field::Int("id"),
                Field::Int("generated"),
                Field::Text("message_id"),
                Field::Text("event_type"),
                Field::Text("coalesce(traits, '[]')"),
            ],
            order,
        );
        sql.push_str(&inner);
        sql.push(')');
        let row = bind_all(query(sql), binds)
            .fetch_one(self.pool_ref())
            .await
            .ctx(WHAT)?;
        let text: Option<&str> = row.try_get(0).ctx(WHAT)?;
        let mut frames = Frames::new(text.unwrap_or_default());
        let mut out = Vec::new();
        while !frames.is_empty() {
            let id = frames.int("an id")?;
            let generated = frames.int("a timestamp")?;
            out.push(EventDoc {
                id,
                timestamp: crate::sql::from_micros(generated)?,
                message_id: frames.text("a message id")?.to_owned(),
                event_type: frames.text("an event type")?.to_owned(),
                traits: frames.text("a trait document")?.to_owned(),
            });
        }
        Ok(out)
    }

    /// How many events match `filter` (its limit is ignored).
    ///
    /// # Errors
    /// [`crate::Error::Database`].
    pub async fn count_events(&self, filter: &EventFilter) -> Result<i64> {
        let indexed = self.indexed_traits().await?;
        let (sql, binds) = self
            .event_where("SELECT COUNT(*) FROM events", filter, &indexed)
            .finish("");
        bind_all(query(sql), binds)
            .fetch_one(self.pool_ref())
            .await
            .and_then(|row| row.try_get(0))
            .ctx("counting events")
    }

    /// The event with `message_id`, if stored.
    ///
    /// # Errors
    /// [`crate::Error::Database`].
    pub async fn get_event(&self, message_id: &str) -> Result<Option<StoredEvent>> {
        let rows = query(crate::sql::sql(
            self.dialect(),
            "SELECT id, message_id, event_type, generated, traits FROM events \
             WHERE message_id = ?",
        ))
        .bind(message_id)
        .fetch_all(self.pool_ref())
        .await
        .ctx("reading an event")?;
        Ok(decode_events(&rows, 0)?
            .into_iter()
            .next()
            .map(|(id, event)| StoredEvent { id, event }))
    }

    fn stream_where(&self, head: &str, f: &StreamFilter) -> Where {
        let mut w = Where::new(self.dialect(), head);
        w.mark(f.mark, f.direction);
        if let Some(t) = f.older_than {
            w.cmp("first_event <", Bind::Int(micros(t)));
        }
        if let Some(t) = f.younger_than {
            w.cmp("last_event >", Bind::Int(micros(t)));
        }
        if let Some(state) = f.state {
            w.cmp("state =", Bind::Small(state.code()));
        }
        if let Some(name) = &f.trigger_name {
            w.cmp("trigger_name =", Bind::Text(name.clone()));
        }
        for (name, value) in &f.distinguishing_traits {
            w.typed_match("id", "stream_id", "dist_traits", name, value);
        }
        w
    }

    /// Streams matching `filter` with their distinguishing traits (and events when
    /// `filter.details`), in the filter's order.
    ///
    /// # Errors
    /// [`crate::Error::Database`].
    pub async fn list_streams(&self, filter: &StreamFilter) -> Result<Vec<StreamRow>> {
        let head = format!("SELECT {STREAM_COLS} FROM streams");
        let w = self.stream_where(&head, filter);
        let tail = order_limit(filter.direction, filter.limit);
        let (sql, binds) = w.finish(&tail);
        let mut conn = self.conn().await?;
        let rows = bind_all(query(sql), binds)
            .fetch_all(&mut *conn)
            .await
            .ctx("listing streams")?;
        let mut streams = rows.iter().map(decode_stream).collect::<Result<Vec<_>>>()?;
        load_dist_traits(&mut conn, self.dialect(), &mut streams).await?;
        if filter.details {
            for s in &mut streams {
                s.events =
                    Some(stream_events(&mut conn, self.dialect(), s.id, filter.max_events).await?);
            }
        }
        Ok(streams)
    }

    /// The events of stream `id` sorted by timestamp (then id), at most `max` of them (the
    /// oldest; `None`: all).
    ///
    /// # Errors
    /// [`crate::Error::Database`].
    pub async fn first_stream_events(&self, id: i64, max: Option<u32>) -> Result<Vec<Event>> {
        let mut conn = self.conn().await?;
        stream_events(&mut conn, self.dialect(), id, max).await
    }

    /// How many streams match `filter` (its limit is ignored).
    ///
    /// # Errors
    /// [`crate::Error::Database`].
    pub async fn count_streams(&self, filter: &StreamFilter) -> Result<i64> {
        let (sql, binds) = self
            .stream_where("SELECT COUNT(*) FROM streams", filter)
            .finish("");
        bind_all(query(sql), binds)
            .fetch_one(self.pool_ref())
            .await
            .and_then(|row| row.try_get(0))
            .ctx("counting streams")
    }
}

/// The events of stream `stream_id` with their traits, sorted by timestamp (then id), at most
/// `max` (the oldest).
async fn stream_events(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    stream_id: i64,
    max: Option<u32>,
) -> Result<Vec<Event>> {
    let Some(max) = max else {
        return load_stream_events(conn, dialect, stream_id).await;
    };
    // The limit is a number, not a parameter, as in `order_limit`.
    let sql = format!(
        "SELECT e.id, e.message_id, e.event_type, e.generated, e.traits FROM stream_events se \
         JOIN events e ON e.id = se.event_id WHERE se.stream_id = ? ORDER BY e.generated, e.id \
         LIMIT {max}"
    );
    let rows = query(crate::store::sql_owned(dialect, &sql))
        .bind(stream_id)
        .fetch_all(&mut *conn)
        .await
        .ctx("loading stream events")?;
    Ok(decode_events(&rows, 0)?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_datetimes_parse_in_every_accepted_form() {
        let want = DateTime::parse_from_rfc3339("2014-07-01T12:34:56.123456Z").unwrap();
        for s in [
            "2014-07-01 12:34:56.123456",
            "2014-07-01T12:34:56.123456",
            "2014-07-01T14:34:56.123456+02:00",
        ] {
            assert_eq!(parse_datetime(s), Some(want.with_timezone(&Utc)), "{s}");
        }
        assert_eq!(parse_datetime("yesterday"), None);
    }
}
