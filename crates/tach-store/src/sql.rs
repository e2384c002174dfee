//! Building SQL text: parameter markers per dialect, cached multi-row statements, time conversion.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use sqlx::any::{Any, AnyArguments};

use crate::dialect::{Backend, Dialect};
use crate::error::{Error, Result};

/// A runtime query over the `Any` driver.
pub(crate) type AnyQuery = sqlx::query::Query<'static, Any, AnyArguments>;

/// Starts a query on SQL built at run time from trusted fragments (never from input: every
/// input value is a bound parameter).
pub(crate) fn query<S>(sql: S) -> AnyQuery
where
    AssertSqlSafe<S>: sqlx::SqlSafeStr,
{
    sqlx::query(AssertSqlSafe(sql))
}

/// A `?`-marker template rewritten for `dialect` (`$1, $2, ...` on PostgreSQL).
///
/// Templates are static SQL whose only `?` characters are parameter markers.
pub(crate) fn sql(dialect: Dialect, template: &'static str) -> Cow<'static, str> {
    if dialect.backend() != Backend::Postgres || !template.contains('?') {
        return Cow::Borrowed(template);
    }
    let mut out = String::with_capacity(template.len() + 16);
    let mut n = 0;
    for c in template.chars() {
        if c == '?' {
            n += 1;
            dialect.push_param_marker(&mut out, n);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The statement `head` + one marker per id + `tail`, with `ids` bound in order: the
/// `... WHERE id IN (` lists of the store. `head` holds no parameter markers; `tail` may hold
/// more `?` markers (numbered after the ids), which the caller binds next.
pub(crate) fn with_ids(dialect: Dialect, head: &str, ids: &[i64], tail: &'static str) -> AnyQuery {
    let sql = ids_sql(dialect, head, ids.len(), tail);
    ids.iter().fold(query(sql), |q, id| q.bind(*id))
}

/// The SQL of [`with_ids`] for `count` ids.
fn ids_sql(dialect: Dialect, head: &str, count: usize, tail: &str) -> String {
    let mut b = SqlBuf::new(dialect);
    b.push(head).params(count);
    for part in tail.split_inclusive('?') {
        match part.strip_suffix('?') {
            Some(text) => b.push(text).param(),
            None => b.push(part),
        };
    }
    b.finish()
}

/// Incrementally built SQL that numbers its parameter markers for the dialect.
pub(crate) struct SqlBuf {
    sql: String,
    params: usize,
    dialect: Dialect,
}

impl SqlBuf {
    /// An empty buffer.
    pub fn new(dialect: Dialect) -> SqlBuf {
        SqlBuf {
            sql: String::with_capacity(256),
            params: 0,
            dialect,
        }
    }

    /// Appends SQL text (no parameter markers in it).
    pub fn push(&mut self, s: &str) -> &mut SqlBuf {
        self.sql.push_str(s);
        self
    }

    /// Appends one parameter marker.
    pub fn param(&mut self) -> &mut SqlBuf {
        self.params += 1;
        self.dialect.push_param_marker(&mut self.sql, self.params);
        self
    }

    /// Appends `count` comma-separated parameter markers.
    pub fn params(&mut self, count: usize) -> &mut SqlBuf {
        for i in 0..count {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.param();
        }
        self
    }

    /// Appends a text equality on `col` that uses its index; bind the value
    /// `dialect.text_eq_binds()` times.
    pub fn text_eq(&mut self, col: &str) -> &mut SqlBuf {
        let s = self.dialect.text_eq(col, self.params + 1);
        self.params += self.dialect.text_eq_binds();
        self.sql.push_str(&s);
        self
    }

    /// Appends a glob match on `col`; bind `dialect.glob_pattern(glob)` once.
    pub fn glob(&mut self, col: &str) -> &mut SqlBuf {
        self.params += 1;
        let s = self.dialect.glob_match(col, self.params);
        self.sql.push_str(&s);
        self
    }

    /// The finished SQL.
    pub fn finish(self) -> String {
        self.sql
    }
}

/// The multi-row statements of the hot paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Batch {
    /// Insert-ignore of events (4 params a row), `RETURNING id, message_id` on PostgreSQL.
    InsertEvents,
    /// Insert-ignore of `trait_index` rows (2 params a row).
    InsertIndex,
    /// Insert-ignore of `trait_index_recent` rows (SQLite; 2 params a row).
    InsertRecentIndex,
    /// Insert-ignore of stream-event links (2 params a row).
    InsertStreamEvents,
    /// `SELECT id, message_id FROM events WHERE message_id IN (...)` (1 param a row).
    SelectEventIds,
}

const BATCH_KINDS: usize = 5;
/// Largest rows per statement is 2^MAX_LEVEL; sizes are powers of two so that each connection's
/// prepared-statement cache holds a handful of statements per kind and keeps hitting.
const MAX_LEVEL: usize = 9;

impl Batch {
    fn index(self) -> usize {
        match self {
            Batch::InsertEvents => 0,
            Batch::InsertIndex => 1,
            Batch::InsertStreamEvents => 2,
            Batch::SelectEventIds => 3,
            Batch::InsertRecentIndex => 4,
        }
    }

    /// Bind parameters per row.
    pub fn params_per_row(self) -> usize {
        match self {
            Batch::InsertEvents => 4,
            Batch::InsertIndex | Batch::InsertRecentIndex => 2,
            Batch::InsertStreamEvents => 2,
            Batch::SelectEventIds => 1,
        }
    }

    fn build(self, dialect: Dialect, rows: usize) -> String {
        let mut b = SqlBuf::new(dialect);
        let per_row = self.params_per_row();
        b.sql.reserve(rows * (per_row * 5 + 4) + 128);
        match self {
            Batch::SelectEventIds => {
                b.push("SELECT id, message_id FROM events WHERE message_id IN (");
                b.params(rows);
                b.push(")");
                return b.finish();
            }
            Batch::InsertEvents => {
                b.push(dialect.insert_ignore_start());
                b.push("events (message_id, event_type, generated, traits) VALUES ");
            }
            Batch::InsertIndex => {
                b.push(dialect.insert_ignore_start());
                b.push("trait_index (k, event_id) VALUES ");
            }
            Batch::InsertRecentIndex => {
                b.push(dialect.insert_ignore_start());
                b.push("trait_index_recent (k, event_id) VALUES ");
            }
            Batch::InsertStreamEvents => {
                b.push(dialect.insert_ignore_start());
                b.push("stream_events (stream_id, event_id) VALUES ");
            }
        }
        for row in 0..rows {
            if row > 0 {
                b.push(", ");
            }
            b.push("(");
            b.params(per_row);
            b.push(")");
        }
        let target = match self {
            Batch::InsertEvents => "message_id",
            Batch::InsertIndex | Batch::InsertRecentIndex => "k, event_id",
            _ => "stream_id, event_id",
        };
        b.push(&dialect.insert_ignore_end(target));
        // Not on SQLite, where sqlx would hand each returned row over separately (see
        // StoreTx::insert_event_rows_sqlite).
        if self == Batch::InsertEvents && dialect.backend() == Backend::Postgres {
            b.push(" RETURNING id, message_id");
        }
        b.finish()
    }
}

/// Cached SQL of the [`Batch`] statements, per power-of-two row count.
#[derive(Debug)]
pub(crate) struct BatchSql {
    dialect: Dialect,
    cache: [[OnceLock<Arc<str>>; MAX_LEVEL + 1]; BATCH_KINDS],
}

impl BatchSql {
    /// An empty cache for `dialect`.
    pub fn new(dialect: Dialect) -> BatchSql {
        BatchSql {
            dialect,
            cache: Default::default(),
        }
    }

    /// Largest rows per statement for `batch`: a power of two within the parameter limit.
    pub fn max_rows(&self, batch: Batch) -> usize {
        let by_params = self.dialect.max_params() / batch.params_per_row();
        let mut rows = 1usize << MAX_LEVEL;
        while rows > by_params {
            rows /= 2;
        }
        rows
    }

    /// `items` in the chunks one statement of `batch` takes each, in order: as many of the
    /// largest power of two that fits as there are, then the largest power of two that fits the
    /// rest, and so on (each size has its cached statement).
    pub fn chunks<'a, T>(
        &self,
        batch: Batch,
        items: &'a [T],
    ) -> impl Iterator<Item = &'a [T]> + use<'a, T> {
        let max = self.max_rows(batch);
        let mut rest = items;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            // The largest power of two <= rest.len() (its highest set bit), at most `max`.
            let n = max.min(1usize << (usize::BITS - 1 - rest.len().leading_zeros()));
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            Some(chunk)
        })
    }

    /// The statement for `rows` rows (`rows` must be a [`BatchSql::chunks`] size).
    pub fn get(&self, batch: Batch, rows: usize) -> Arc<str> {
        let level = rows.trailing_zeros() as usize;
        if rows.is_power_of_two() && level <= MAX_LEVEL {
            self.cache[batch.index()][level]
                .get_or_init(|| Arc::from(batch.build(self.dialect, rows)))
                .clone()
        } else {
            Arc::from(batch.build(self.dialect, rows))
        }
    }
}

/// Microseconds since the Unix epoch, as stored.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The datetime stored as `us` microseconds since the Unix epoch.
pub(crate) fn from_micros(us: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| Error::InvalidData {
        what: format!("timestamp {us} µs is out of range"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_get_numbered_markers_on_postgres() {
        let pg = Dialect::new(Backend::Postgres);
        assert_eq!(sql(pg, "a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(sql(Dialect::new(Backend::MySql), "a = ?"), "a = ?");
    }

    #[test]
    fn id_lists_number_the_markers_of_the_tail_after_the_ids() {
        let (head, tail) = ("SELECT id FROM streams WHERE id IN (", ") AND state = ?");
        assert_eq!(
            ids_sql(Dialect::new(Backend::Postgres), head, 3, tail),
            "SELECT id FROM streams WHERE id IN ($1, $2, $3) AND state = $4"
        );
        assert_eq!(
            ids_sql(Dialect::new(Backend::Sqlite), head, 2, ")"),
            "SELECT id FROM streams WHERE id IN (?, ?)"
        );
    }

    #[test]
    fn batches_split_into_powers_of_two_within_the_limit() {
        let cache = BatchSql::new(Dialect::new(Backend::Sqlite));
        assert_eq!(cache.max_rows(Batch::InsertIndex), 512);
        let items: Vec<u32> = (0..1000).collect();
        let chunks: Vec<&[u32]> = cache.chunks(Batch::InsertIndex, &items).collect();
        let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [512, 256, 128, 64, 32, 8]);
        assert_eq!(chunks.concat(), items, "every item once, in order");
        let many: Vec<u32> = (0..1100).collect();
        let sizes: Vec<usize> = cache
            .chunks(Batch::InsertIndex, &many)
            .map(<[u32]>::len)
            .collect();
        assert_eq!(sizes, [512, 512, 64, 8, 4]);
        assert_eq!(cache.chunks(Batch::InsertIndex, &many[..0]).count(), 0);
    }

    #[test]
    fn event_insert_sql_per_dialect() {
        let pg = BatchSql::new(Dialect::new(Backend::Postgres));
        assert_eq!(
            &*pg.get(Batch::InsertEvents, 2),
            "INSERT INTO events (message_id, event_type, generated, traits) VALUES \
             ($1, $2, $3, $4), ($5, $6, $7, $8) ON CONFLICT (message_id) DO NOTHING \
             RETURNING id, message_id"
        );
        let lite = BatchSql::new(Dialect::new(Backend::Sqlite));
        assert_eq!(
            &*lite.get(Batch::InsertEvents, 1),
            "INSERT INTO events (message_id, event_type, generated, traits) VALUES \
             (?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING"
        );
        let my = BatchSql::new(Dialect::new(Backend::MySql));
        assert_eq!(
            &*my.get(Batch::InsertEvents, 1),
            "INSERT IGNORE INTO events (message_id, event_type, generated, traits) \
             VALUES (?, ?, ?, ?)"
        );
    }
}
