//! [`StoreTx`]: the write transaction ingest uses to store events and assign them to streams in
//! one commit, so a crash never leaves an event stored but in none of its streams.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::AnyConnection;
use sqlx::any::{AnyArguments, AnyQueryResult, AnyRow};
use sqlx::{Any, Row, Transaction};

use crate::active_key::active_key;
use crate::dialect::{Backend, Dialect};
use crate::doc::{self, IndexedTraits};
use crate::error::{Context, Error, Result};
use crate::recent::{self, RecentIndex};
use crate::rows::{IN_CHUNK, STREAM_COLS, bind_dist_value, decode_stream, fetch_streams};
use crate::sql::{AnyQuery, Batch, BatchSql, SqlBuf, micros, query, sql, with_ids};
use crate::store::sql_owned;
use crate::types::{DistValue, Event, NewStream, StreamRow, StreamState, StreamUpdate};
use crate::upkeep::StatsUpkeep;

/// On MySQL, prefixed (inside one call of [`StoreTx::insert_streams_deferred`] only) to the active
/// key of a stream another transaction opened first; a real active key (hex digits) never starts
/// with it.
const LOST_KEY_TAG: &str = "~";

/// An open write transaction. Dropping it without [`StoreTx::commit`] rolls it back.
#[derive(Debug)]
pub struct StoreTx {
    tx: Transaction<'static, Any>,
    dialect: Dialect,
    batch_sql: Arc<BatchSql>,
    /// The traits `trait_index` covers in this database.
    indexed: Arc<IndexedTraits>,
    /// Distinguishing traits of streams created with [`StoreTx::insert_stream_deferred`],
    /// written in multi-row statements before the commit.
    pending_dist_traits: Vec<(i64, String, DistValue)>,
    /// Counts the committed events towards the next `ANALYZE` (PostgreSQL, autovacuum off).
    upkeep: Arc<StatsUpkeep>,
    /// Index rows written to `trait_index_recent` towards the next merge (SQLite).
    recent: Arc<RecentIndex>,
    /// Events this transaction stored.
    inserted: u64,
}

impl StoreTx {
    pub(crate) fn new(
        tx: Transaction<'static, Any>,
        dialect: Dialect,
        batch_sql: Arc<BatchSql>,
        indexed: Arc<IndexedTraits>,
        upkeep: Arc<StatsUpkeep>,
        recent: Arc<RecentIndex>,
    ) -> StoreTx {
        StoreTx {
            tx,
            dialect,
            batch_sql,
            indexed,
            pending_dist_traits: Vec::new(),
            upkeep,
            recent,
            inserted: 0,
        }
    }

    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Commits.
    ///
    /// # Errors
    /// [`Error::Database`]; the transaction is then rolled back.
    pub async fn commit(mut self) -> Result<()> {
        self.flush_dist_traits().await?;
        self.tx.commit().await.ctx("committing")?;
        self.upkeep.written(self.inserted);
        Ok(())
    }

    /// Writes the queued distinguishing traits (see [`StoreTx::insert_stream_deferred`]).
    async fn flush_dist_traits(&mut self) -> Result<()> {
        const PER_ROW: usize = 8;
        let pending = std::mem::take(&mut self.pending_dist_traits);
        let max_rows = (self.dialect.max_params() / PER_ROW).min(512);
        for chunk in pending.chunks(max_rows) {
            let mut b = SqlBuf::new(self.dialect);
            b.push(self.dialect.insert_ignore_start());
            b.push(
                "dist_traits (stream_id, name, type, t_string, t_int, t_float, t_datetime, \
                 t_end) VALUES ",
            );
            for i in 0..chunk.len() {
                b.push(if i == 0 { "(" } else { ", (" })
                    .params(PER_ROW)
                    .push(")");
            }
            b.push(&self.dialect.insert_ignore_end("stream_id, name"));
            let mut q = query(b.finish());
            for (id, name, value) in chunk {
                q = bind_dist_value(q.bind(*id).bind(name.as_str()), value);
            }
            q.execute(&mut *self.tx)
                .await
                .ctx("storing distinguishing traits")?;
        }
        Ok(())
    }

    /// Rolls back.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await.ctx("rolling back")
    }

    /// Stores `events` with their traits (a document per event, plus the `trait_index` rows of
    /// its indexed traits). Returns, per event, its new id, or `None` when its
    /// `message_id` is already stored or appeared earlier in `events` (a duplicate is not an
    /// error and does not abort the transaction).
    ///
    /// Rows go in multi-row statements (sorted by message id, so concurrent transactions lock
    /// in the same order): PostgreSQL needs one statement per chunk of events plus one per chunk
    /// of index rows; SQLite one more per chunk of events, a single-row check of the new ids (see
    /// [`sqlite_created_ids`]).
    ///
    /// # Errors
    /// [`Error::Database`]; on MySQL [`Error::ConcurrentInsert`] (transient) when another
    /// transaction stored one of the same message ids during this call.
    pub async fn insert_events(&mut self, events: &[Event]) -> Result<Vec<Option<i64>>> {
        let mut ids = vec![None; events.len()];
        if events.is_empty() {
            return Ok(ids);
        }
        let mut seen: HashSet<&str> = HashSet::with_capacity(events.len());
        let mut order: Vec<usize> = (0..events.len())
            .filter(|&i| seen.insert(events[i].message_id.as_str()))
            .collect();
        order.sort_unstable_by(|&a, &b| events[a].message_id.cmp(&events[b].message_id));
        match self.dialect.backend() {
            Backend::Sqlite => {
                self.insert_event_rows_sqlite(events, &order, &mut ids)
                    .await?
            }
            Backend::Postgres => {
                self.insert_event_rows_returning(events, &order, &mut ids)
                    .await?
            }
            Backend::MySql => {
                self.insert_event_rows_mysql(events, &order, &mut ids)
                    .await?
            }
        }
        let mut index: Vec<(i64, i64)> = Vec::new();
        for (id, e) in ids.iter().zip(events) {
            if let Some(id) = id {
                index.extend(doc::index_rows(*id, &e.traits, &self.indexed));
            }
        }
        self.insert_index(&mut index).await?;
        self.inserted += ids.iter().flatten().count() as u64;
        Ok(ids)
    }

    /// The multi-row insert of the events at `chunk`, whose length is a [`BatchSql::chunks`]
    /// size.
    fn events_insert<'e>(
        &self,
        events: &'e [Event],
        chunk: &[usize],
    ) -> sqlx::query::Query<'e, Any, AnyArguments> {
        let mut q = query(self.batch_sql.get(Batch::InsertEvents, chunk.len()));
        for &i in chunk {
            let e = &events[i];
            q = q
                .bind(e.message_id.as_str())
                .bind(e.event_type.as_str())
                .bind(micros(e.timestamp))
                .bind(doc::encode(&e.traits));
        }
        q
    }

    /// SQLite: `INSERT ... ON CONFLICT DO NOTHING` without RETURNING (see
    /// [`sqlite_created_ids`]).
    async fn insert_event_rows_sqlite(
        &mut self,
        events: &[Event],
        order: &[usize],
        ids: &mut [Option<i64>],
    ) -> Result<()> {
        const WHAT: &str = "inserting events";
        for chunk in self.batch_sql.chunks(Batch::InsertEvents, order) {
            let done = self
                .events_insert(events, chunk)
                .execute(&mut *self.tx)
                .await
                .ctx(WHAT)?;
            let keys: Vec<&str> = chunk
                .iter()
                .map(|&i| events[i].message_id.as_str())
                .collect();
            let created =
                sqlite_created_ids(self.conn(), &done, "events", "message_id", &keys, WHAT).await?;
            for (&i, id) in chunk.iter().zip(created) {
                ids[i] = id;
            }
        }
        Ok(())
    }

    /// PostgreSQL: `INSERT ... ON CONFLICT DO NOTHING RETURNING id, message_id`.
    async fn insert_event_rows_returning(
        &mut self,
        events: &[Event],
        order: &[usize],
        ids: &mut [Option<i64>],
    ) -> Result<()> {
        for chunk in self.batch_sql.chunks(Batch::InsertEvents, order) {
            let returned = self
                .events_insert(events, chunk)
                .fetch_all(&mut *self.tx)
                .await
                .ctx("inserting events")?;
            record_ids(&returned, events, chunk, ids, "inserting events")?;
        }
        Ok(())
    }

    /// MySQL (no RETURNING): find the stored ones, INSERT IGNORE the rest, read their ids.
    async fn insert_event_rows_mysql(
        &mut self,
        events: &[Event],
        order: &[usize],
        ids: &mut [Option<i64>],
    ) -> Result<()> {
        let existing = self.select_event_ids(events, order).await?;
        let fresh: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| !existing.contains(events[i].message_id.as_str()))
            .collect();
        let mut inserted = 0u64;
        for chunk in self.batch_sql.chunks(Batch::InsertEvents, &fresh) {
            inserted += self
                .events_insert(events, chunk)
                .execute(&mut *self.tx)
                .await
                .ctx("inserting events")?
                .rows_affected();
        }
        if inserted != fresh.len() as u64 {
            return Err(Error::ConcurrentInsert);
        }
        // Every fresh message id is now ours (the unique key admits no other row).
        for chunk in self.batch_sql.chunks(Batch::SelectEventIds, &fresh) {
            let found = self
                .select_event_ids_query(events, chunk)
                .fetch_all(&mut *self.tx)
                .await
                .ctx("reading new event ids")?;
            record_ids(&found, events, chunk, ids, "reading new event ids")?;
        }
        Ok(())
    }

    /// The message ids among `order` that are already stored.
    async fn select_event_ids(
        &mut self,
        events: &[Event],
        order: &[usize],
    ) -> Result<HashSet<String>> {
        let mut existing = HashSet::new();
        for chunk in self.batch_sql.chunks(Batch::SelectEventIds, order) {
            let found = self
                .select_event_ids_query(events, chunk)
                .fetch_all(&mut *self.tx)
                .await
                .ctx("looking for stored events")?;
            for row in &found {
                existing.insert(
                    row.try_get::<String, _>(1)
                        .ctx("looking for stored events")?,
                );
            }
        }
        Ok(existing)
    }

    /// `SELECT id, message_id` of the events at `chunk`, whose length is a
    /// [`BatchSql::chunks`] size.
    fn select_event_ids_query<'e>(
        &self,
        events: &'e [Event],
        chunk: &[usize],
    ) -> sqlx::query::Query<'e, Any, AnyArguments> {
        let mut q = query(self.batch_sql.get(Batch::SelectEventIds, chunk.len()));
        for &i in chunk {
            q = q.bind(events[i].message_id.as_str());
        }
        q
    }

    /// Inserts `(k, event_id)` rows into the trait index, in key order (so each statement walks
    /// the B-tree once, and concurrent transactions lock in the same order): on SQLite into
    /// `trait_index_recent`, merged into `trait_index` when due (see [`crate::recent`]).
    async fn insert_index(&mut self, rows: &mut [(i64, i64)]) -> Result<()> {
        if !recent::stages(self.dialect.backend()) {
            return insert_index_rows(&mut self.tx, &self.batch_sql, rows).await;
        }
        insert_rows(
            &mut self.tx,
            &self.batch_sql,
            Batch::InsertRecentIndex,
            rows,
        )
        .await?;
        if self.recent.wrote(rows.len()) {
            recent::merge(&mut self.tx).await?;
        }
        Ok(())
    }

    /// The open stream of `trigger_name` for `distinguishing_key`, locked for this transaction
    /// (`FOR UPDATE`; on SQLite the transaction already holds the write lock). Distinguishing
    /// traits are not loaded. The caller checks its expiry and detaches it when it has passed.
    ///
    /// # Errors
    /// [`Error::Database`]; [`Error::ActiveKeyCollision`] if the key is held by another
    /// trigger or distinguishing key (a 128-bit hash collision).
    pub async fn lock_active_stream(
        &mut self,
        trigger_name: &str,
        distinguishing_key: &str,
    ) -> Result<Option<StreamRow>> {
        let key = active_key(trigger_name, distinguishing_key);
        let select = format!(
            "SELECT {STREAM_COLS} FROM streams WHERE active_key = ?{}",
            self.dialect.for_update()
        );
        let row = query(sql_owned(self.dialect, &select))
            .bind(key)
            .fetch_optional(&mut *self.tx)
            .await
            .ctx("locking the active stream")?;
        let Some(row) = row else { return Ok(None) };
        let stream = decode_stream(&row)?;
        if stream.trigger_name != trigger_name || stream.distinguishing_key != distinguishing_key {
            return Err(Error::ActiveKeyCollision {
                stream_id: stream.id,
                trigger_name: trigger_name.to_owned(),
            });
        }
        Ok(Some(stream))
    }

    /// [`StoreTx::lock_active_stream`] for many `(trigger_name, distinguishing_key)` pairs in
    /// one statement per chunk (rows locked in active-key order): the open stream of each pair,
    /// in the order of `pairs`.
    ///
    /// # Errors
    /// As [`StoreTx::lock_active_stream`].
    pub async fn lock_active_streams(
        &mut self,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<Option<StreamRow>>> {
        const ACTION: &str = "locking the active streams";
        let keys: Vec<String> = pairs.iter().map(|(t, k)| active_key(t, k)).collect();
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_unstable_by(|&a, &b| keys[a].cmp(&keys[b]));
        order.dedup_by(|a, b| keys[*a] == keys[*b]);
        let mut found: std::collections::HashMap<String, StreamRow> =
            std::collections::HashMap::new();
        for chunk in order.chunks(IN_CHUNK) {
            let mut b = SqlBuf::new(self.dialect);
            b.push("SELECT ")
                .push(STREAM_COLS)
                .push(" FROM streams WHERE active_key IN (")
                .params(chunk.len())
                .push(") ORDER BY active_key")
                .push(self.dialect.for_update());
            let bind = |mut q: AnyQuery| {
                for &i in chunk {
                    q = q.bind(keys[i].as_str());
                }
                q
            };
            let dialect = self.dialect;
            let rows = fetch_streams(
                self.conn(),
                dialect,
                &b.finish(),
                "active_key",
                bind,
                ACTION,
            )
            .await?;
            for (stream, key) in rows {
                if let Some(key) = key {
                    found.insert(key, stream);
                }
            }
        }
        let mut out = Vec::with_capacity(pairs.len());
        for ((trigger_name, distinguishing_key), key) in pairs.iter().zip(&keys) {
            let stream = found.get(key).cloned();
            if let Some(stream) = &stream
                && (stream.trigger_name != *trigger_name
                    || stream.distinguishing_key != *distinguishing_key)
            {
                return Err(Error::ActiveKeyCollision {
                    stream_id: stream.id,
                    trigger_name: (*trigger_name).to_owned(),
                });
            }
            out.push(stream);
        }
        Ok(out)
    }

    /// As [`StoreTx::insert_stream`], but the distinguishing traits are written (in
    /// multi-row statements with those of the other streams) just before the commit.
    ///
    /// # Errors
    /// As [`StoreTx::insert_stream`].
    pub async fn insert_stream_deferred(
        &mut self,
        mut new: NewStream,
    ) -> Result<Option<StreamRow>> {
        let traits = std::mem::take(&mut new.distinguishing_traits);
        let Some(mut row) = self.insert_stream(new).await? else {
            return Ok(None);
        };
        for (name, value) in &traits {
            self.pending_dist_traits
                .push((row.id, name.clone(), value.clone()));
        }
        row.distinguishing_traits = traits;
        Ok(Some(row))
    }

    /// [`StoreTx::insert_stream_deferred`] for many streams (whose active keys must differ): one
    /// multi-row statement per chunk (plus one SELECT of the new ids per chunk: on MySQL, see
    /// [`StoreTx::mysql_created_stream_ids`]; on SQLite a single-row check, see
    /// [`sqlite_created_ids`]). Returns,
    /// in the order of `news`, each created stream, or `None` where another transaction holds
    /// that key.
    ///
    /// # Errors
    /// As [`StoreTx::insert_stream`].
    pub async fn insert_streams_deferred(
        &mut self,
        news: Vec<NewStream>,
    ) -> Result<Vec<Option<StreamRow>>> {
        self.insert_streams_with(news, false).await
    }

    /// Whether [`StoreTx::open_or_lock_streams`] can be used: PostgreSQL.
    pub fn opens_or_locks_streams(&self) -> bool {
        self.dialect.backend() == Backend::Postgres
    }

    /// PostgreSQL: opens the stream of each of `news` whose key has no open stream, and locks
    /// the open stream of each other one, in one pass in active-key order (`INSERT ... ON
    /// CONFLICT (active_key) DO UPDATE ... WHERE false`, which locks the row it meets without
    /// changing it). Returns, in the order of `news`, each created stream, or `None` where the
    /// key's open stream exists (locked now: read it with [`StoreTx::lock_active_streams`]).
    /// No race is lost: a transaction opening the same key meanwhile makes this one wait for
    /// its commit and then lock its stream; and concurrent batches take their locks in the
    /// same order. The distinguishing traits of created streams are written before the commit.
    ///
    /// # Errors
    /// As [`StoreTx::insert_stream`]; [`Error::Unsupported`] on the other backends.
    pub async fn open_or_lock_streams(
        &mut self,
        news: Vec<NewStream>,
    ) -> Result<Vec<Option<StreamRow>>> {
        if !self.opens_or_locks_streams() {
            return Err(Error::Unsupported {
                what: "opening or locking streams in one statement",
                backend: self.dialect.backend(),
            });
        }
        self.insert_streams_with(news, true).await
    }

    /// [`StoreTx::insert_streams_deferred`], or with `lock_existing` (PostgreSQL only)
    /// [`StoreTx::open_or_lock_streams`].
    async fn insert_streams_with(
        &mut self,
        news: Vec<NewStream>,
        lock_existing: bool,
    ) -> Result<Vec<Option<StreamRow>>> {
        const ACTION: &str = "creating streams";
        const PER_ROW: usize = 10;
        let keys: Vec<String> = news
            .iter()
            .map(|n| active_key(&n.trigger_name, &n.distinguishing_key))
            .collect();
        // Rows are inserted or locked in the order of the statement's VALUES.
        let mut order: Vec<usize> = (0..news.len()).collect();
        if lock_existing {
            order.sort_unstable_by(|&a, &b| keys[a].cmp(&keys[b]));
            // One row per key: PostgreSQL refuses to lock a row twice in one statement. Two
            // pairs sharing a key (a hash collision) share its stream, as with DO NOTHING.
            order.dedup_by(|a, b| keys[*a] == keys[*b]);
        }
        let mut ids: HashMap<String, i64> = HashMap::with_capacity(news.len());
        for chunk_order in order.chunks(IN_CHUNK) {
            let chunk_keys: Vec<&str> = chunk_order.iter().map(|&i| keys[i].as_str()).collect();
            let mut b = SqlBuf::new(self.dialect);
            b.push(
                "INSERT INTO streams (trigger_name, state, first_event, last_event, \
                 expire_timestamp, fire_timestamp, distinguishing_key, active_key, fire_state, \
                 event_count) VALUES ",
            );
            for i in 0..chunk_order.len() {
                b.push(if i == 0 { "(" } else { ", (" })
                    .params(PER_ROW)
                    .push(")");
            }
            if self.dialect.backend() == Backend::Sqlite {
                // No RETURNING: see `sqlite_created_ids`.
                b.push(" ON CONFLICT (active_key) DO NOTHING");
            } else if lock_existing {
                // "Only rows for which this expression returns true will be updated, although
                // all rows will be locked when the ON CONFLICT DO UPDATE action is taken"
                // (PostgreSQL's INSERT): the existing row is locked and left unchanged, and
                // RETURNING yields the inserted rows only.
                b.push(
                    " ON CONFLICT (active_key) DO UPDATE SET active_key = EXCLUDED.active_key \
                     WHERE false RETURNING id, active_key",
                );
            } else if self.dialect.has_returning() {
                b.push(" ON CONFLICT (active_key) DO NOTHING RETURNING id, active_key");
            } else {
                // See `mysql_created_stream_ids`: the row of a key another transaction holds is
                // tagged (and untagged there), not left as is.
                b.push(" ON DUPLICATE KEY UPDATE active_key = CONCAT('");
                b.push(LOST_KEY_TAG);
                b.push("', active_key)");
            }
            let mut q = query(b.finish());
            for (&i, key) in chunk_order.iter().zip(&chunk_keys) {
                q = bind_new_stream(q, &news[i], (*key).to_owned());
            }
            if self.dialect.backend() == Backend::Sqlite {
                let done = q.execute(&mut *self.tx).await.ctx(ACTION)?;
                let created = sqlite_created_ids(
                    self.conn(),
                    &done,
                    "streams",
                    "active_key",
                    &chunk_keys,
                    ACTION,
                )
                .await?;
                for (key, id) in chunk_keys.iter().zip(created) {
                    if let Some(id) = id {
                        ids.insert((*key).to_owned(), id);
                    }
                }
            } else if self.dialect.has_returning() {
                for row in q.fetch_all(&mut *self.tx).await.ctx(ACTION)? {
                    let id: i64 = row.try_get(0).ctx(ACTION)?;
                    let key: String = row.try_get(1).ctx(ACTION)?;
                    ids.insert(key, id);
                }
            } else {
                q.execute(&mut *self.tx).await.ctx(ACTION)?;
                self.mysql_created_stream_ids(&chunk_keys, &mut ids).await?;
            }
        }
        let mut out = Vec::with_capacity(news.len());
        for (new, key) in news.into_iter().zip(&keys) {
            let Some(&id) = ids.get(key) else {
                out.push(None);
                continue;
            };
            for (name, value) in &new.distinguishing_traits {
                self.pending_dist_traits
                    .push((id, name.clone(), value.clone()));
            }
            out.push(Some(opened(id, new)));
        }
        Ok(out)
    }

    /// MySQL, after the multi-row `INSERT ... ON DUPLICATE KEY UPDATE` of the streams with
    /// active keys `keys` in [`StoreTx::insert_streams_deferred`]: adds to `ids` the id of each
    /// stream that statement created; a key left out lost the race to another transaction.
    ///
    /// Without RETURNING, nothing the INSERT reports tells which rows it created:
    /// - the affected-row count cannot: sqlx sets `CLIENT_FOUND_ROWS`, under which a duplicate
    ///   whose update changes nothing counts 1, like an inserted row;
    /// - `LAST_INSERT_ID()` is only the id of the first inserted row, and ids cannot tell this
    ///   statement's rows from another's: a duplicate may use up an id (so ours are not
    ///   `first..first + inserted`), and a transaction that reserved its ids during this
    ///   statement (while it waited for a lock) may own a row with a higher id than ours.
    ///
    /// So the duplicate clause, instead of a no-op, tags the row it hits: it prefixes
    /// [`LOST_KEY_TAG`] to that row's active key. It still takes the row's exclusive lock at once
    /// (why it is not INSERT IGNORE: see [`StoreTx::insert_stream`]), and an active key is 32 hex
    /// digits, so a tagged key fits the column and never equals a real one. The SELECT of the
    /// chunk's keys (which sees this transaction's own uncommitted rows) then finds exactly the
    /// rows this statement inserted: the other transaction's row no longer carries the key, and
    /// no third transaction can take the key meanwhile (the old index entry stays locked by this
    /// transaction). Only when a key is missing (a lost race: the caller found it absent, then
    /// another transaction created it first) does one more UPDATE untag those rows, so that on
    /// return they are exactly as their owner committed them, locked by this transaction as
    /// after `insert_stream`'s no-op update. A key is never reported lost for a row this
    /// transaction created, so a caller that redoes its work on a lost race does not loop.
    async fn mysql_created_stream_ids(
        &mut self,
        keys: &[&str],
        ids: &mut HashMap<String, i64>,
    ) -> Result<()> {
        const ACTION: &str = "reading new stream ids";
        let mut b = SqlBuf::new(self.dialect);
        b.push("SELECT id, active_key FROM streams WHERE active_key IN (")
            .params(keys.len())
            .push(")");
        let mut q = query(b.finish());
        for key in keys {
            q = q.bind(*key);
        }
        let mut found = 0;
        for row in q.fetch_all(&mut *self.tx).await.ctx(ACTION)? {
            let id: i64 = row.try_get(0).ctx(ACTION)?;
            let key: String = row.try_get(1).ctx(ACTION)?;
            ids.insert(key, id);
            found += 1;
        }
        if found == keys.len() {
            return Ok(());
        }
        let lost: Vec<String> = keys
            .iter()
            .filter(|key| !ids.contains_key(**key))
            .map(|key| format!("{LOST_KEY_TAG}{key}"))
            .collect();
        let mut b = SqlBuf::new(self.dialect);
        b.push(&format!(
            "UPDATE streams SET active_key = SUBSTRING(active_key, {}) WHERE active_key IN (",
            LOST_KEY_TAG.len() + 1
        ))
        .params(lost.len())
        .push(")");
        let mut q = query(b.finish());
        for key in &lost {
            q = q.bind(key.as_str());
        }
        q.execute(&mut *self.tx)
            .await
            .ctx("restoring the active keys of streams opened elsewhere")?;
        Ok(())
    }

    /// Creates the open stream described by `new`, holding its active key. Returns `None` when
    /// another transaction holds that key (it created the stream first): lock it with
    /// [`StoreTx::lock_active_stream`] instead. On PostgreSQL and MySQL this waits for that
    /// other transaction to finish.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn insert_stream(&mut self, new: NewStream) -> Result<Option<StreamRow>> {
        const ACTION: &str = "creating a stream";
        let key = active_key(&new.trigger_name, &new.distinguishing_key);
        let mut template = String::from(
            "INSERT INTO streams (trigger_name, state, first_event, last_event, \
             expire_timestamp, fire_timestamp, distinguishing_key, active_key, fire_state, error, \
             event_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
        );
        if self.dialect.has_returning() {
            template.push_str(" ON CONFLICT (active_key) DO NOTHING RETURNING id");
        } else {
            // Not INSERT IGNORE: on a duplicate key it leaves a shared lock behind, and two
            // losers of the race then deadlock when each asks for the row exclusively. This
            // no-op update takes the exclusive lock at once, so losers queue behind the winner;
            // a no-op update reports no insert id.
            template.push_str(" ON DUPLICATE KEY UPDATE active_key = active_key");
        }
        let q = bind_new_stream(query(sql_owned(self.dialect, &template)), &new, key);
        let id = if self.dialect.has_returning() {
            match q.fetch_optional(&mut *self.tx).await.ctx(ACTION)? {
                Some(row) => row.try_get::<i64, _>(0).ctx(ACTION)?,
                None => return Ok(None),
            }
        } else {
            let done = q.execute(&mut *self.tx).await.ctx(ACTION)?;
            match done.last_insert_id() {
                Some(id) if id > 0 => id,
                _ => return Ok(None),
            }
        };
        if !new.distinguishing_traits.is_empty() {
            let mut b = SqlBuf::new(self.dialect);
            b.push(self.dialect.insert_ignore_start());
            b.push(
                "dist_traits (stream_id, name, type, t_string, t_int, t_float, t_datetime, \
                 t_end) VALUES ",
            );
            for i in 0..new.distinguishing_traits.len() {
                b.push(if i == 0 { "(" } else { ", (" }).params(8).push(")");
            }
            b.push(&self.dialect.insert_ignore_end("stream_id, name"));
            let mut q = query(b.finish());
            for (name, value) in &new.distinguishing_traits {
                q = bind_dist_value(q.bind(id).bind(name.as_str()), value);
            }
            q.execute(&mut *self.tx)
                .await
                .ctx("storing distinguishing traits")?;
        }
        Ok(Some(opened(id, new)))
    }

    /// Releases the active key of stream `id` (its expiry passed but no worker has expired it
    /// yet), so that a new stream can open for the same trigger and values.
    ///
    /// # Errors
    /// [`Error::StreamNotFound`]; [`Error::Database`].
    pub async fn detach_stream(&mut self, id: i64) -> Result<()> {
        self.detach_streams(&[id]).await
    }

    /// [`StoreTx::detach_stream`] for many streams (`ids` distinct): one statement per chunk.
    ///
    /// # Errors
    /// [`Error::StreamNotFound`] (the first id of a chunk in which some stream was missing, so
    /// the id itself for a single stream); [`Error::Database`].
    pub async fn detach_streams(&mut self, ids: &[i64]) -> Result<()> {
        for chunk in ids.chunks(IN_CHUNK) {
            let sql = "UPDATE streams SET active_key = NULL WHERE id IN (";
            let done = with_ids(self.dialect, sql, chunk, ")")
                .execute(&mut *self.tx)
                .await
                .ctx("detaching streams")?;
            if done.rows_affected() != chunk.len() as u64 {
                return Err(Error::StreamNotFound { id: chunk[0] });
            }
        }
        Ok(())
    }

    /// Links events to streams: `(stream_id, event_id)` pairs; a pair already linked is skipped.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn add_stream_events(&mut self, links: &[(i64, i64)]) -> Result<()> {
        for chunk in self.batch_sql.chunks(Batch::InsertStreamEvents, links) {
            let mut q = query(self.batch_sql.get(Batch::InsertStreamEvents, chunk.len()));
            for (stream_id, event_id) in chunk {
                q = q.bind(*stream_id).bind(*event_id);
            }
            q.execute(&mut *self.tx)
                .await
                .ctx("adding events to streams")?;
        }
        Ok(())
    }

    /// Writes the new bounds, expiry, fire time, fire-criteria state and count of a stream.
    ///
    /// # Errors
    /// [`Error::StreamNotFound`]; [`Error::Database`].
    pub async fn update_stream(&mut self, update: &StreamUpdate) -> Result<()> {
        let done = query(sql(
            self.dialect,
            "UPDATE streams SET first_event = ?, last_event = ?, expire_timestamp = ?, \
             fire_timestamp = ?, fire_state = ?, event_count = ? WHERE id = ?",
        ))
        .bind(micros(update.first_event))
        .bind(micros(update.last_event))
        .bind(micros(update.expire_timestamp))
        .bind(update.fire_timestamp.map(micros))
        .bind(update.fire_state.as_str())
        .bind(update.event_count)
        .bind(update.id)
        .execute(&mut *self.tx)
        .await
        .ctx("updating a stream")?;
        if done.rows_affected() == 0 {
            return Err(Error::StreamNotFound { id: update.id });
        }
        Ok(())
    }

    /// [`StoreTx::update_stream`] for many streams: one statement per chunk of streams
    /// (`UPDATE ... FROM (VALUES ...)` on SQLite and PostgreSQL, a join with a derived table of
    /// the values on MySQL).
    ///
    /// # Errors
    /// [`Error::StreamNotFound`] (naming the first stream of a chunk that missed a row);
    /// [`Error::Database`].
    pub async fn update_streams(&mut self, updates: &[StreamUpdate]) -> Result<()> {
        const PER_ROW: usize = 7;
        for chunk in updates.chunks(IN_CHUNK) {
            if let [update] = chunk {
                self.update_stream(update).await?;
                continue;
            }
            let mut b = SqlBuf::new(self.dialect);
            if self.dialect.backend() == Backend::MySql {
                // No UPDATE ... FROM: a join with a derived table of the new values.
                b.push("UPDATE streams JOIN (");
                for i in 0..chunk.len() {
                    if i == 0 {
                        b.push("SELECT ").param().push(" AS id");
                        for col in [
                            "first_event",
                            "last_event",
                            "expire_timestamp",
                            "fire_timestamp",
                            "fire_state",
                            "event_count",
                        ] {
                            b.push(", ").param().push(" AS ").push(col);
                        }
                    } else {
                        b.push(" UNION ALL SELECT ").params(PER_ROW);
                    }
                }
                b.push(
                    ") AS v ON streams.id = v.id SET streams.first_event = v.first_event, \
                     streams.last_event = v.last_event, \
                     streams.expire_timestamp = v.expire_timestamp, \
                     streams.fire_timestamp = v.fire_timestamp, \
                     streams.fire_state = v.fire_state, streams.event_count = v.event_count",
                );
            } else {
                b.push(
                    "UPDATE streams SET first_event = v.column2, last_event = v.column3, \
                     expire_timestamp = v.column4, fire_timestamp = v.column5, \
                     fire_state = v.column6, event_count = v.column7 FROM (VALUES ",
                );
                for i in 0..chunk.len() {
                    b.push(if i == 0 { "(" } else { ", (" })
                        .params(PER_ROW)
                        .push(")");
                }
                b.push(") AS v WHERE streams.id = v.column1");
            }
            let mut q = query(b.finish());
            for u in chunk {
                q = q
                    .bind(u.id)
                    .bind(micros(u.first_event))
                    .bind(micros(u.last_event))
                    .bind(micros(u.expire_timestamp))
                    .bind(u.fire_timestamp.map(micros))
                    .bind(u.fire_state.as_str())
                    .bind(u.event_count);
            }
            let done = q.execute(&mut *self.tx).await.ctx("updating streams")?;
            if done.rows_affected() != chunk.len() as u64 {
                return Err(Error::StreamNotFound { id: chunk[0].id });
            }
        }
        Ok(())
    }

    /// The backend of this transaction.
    pub fn backend(&self) -> Backend {
        self.dialect.backend()
    }
}

/// Sets `ids` of the events at `chunk` (sorted by message id) from `rows` of
/// `(id, message_id)`.
fn record_ids(
    rows: &[AnyRow],
    events: &[Event],
    chunk: &[usize],
    ids: &mut [Option<i64>],
    what: &'static str,
) -> Result<()> {
    for row in rows {
        let id: i64 = row.try_get(0).ctx(what)?;
        let message_id: &str = row.try_get(1).ctx(what)?;
        if let Ok(pos) = chunk.binary_search_by(|&i| events[i].message_id.as_str().cmp(message_id))
        {
            ids[chunk[pos]] = Some(id);
        }
    }
    Ok(())
}

/// SQLite: the ids of the rows that the multi-row `INSERT ... ON CONFLICT DO NOTHING` into
/// `table` which returned `done` created, aligned with `keys`, the values of the unique column
/// `key_col` in the order of the statement's VALUES (None: a duplicate, not inserted).
///
/// The statement has no RETURNING clause because sqlx hands each returned SQLite row from its
/// database thread over separately (a thread wake-up per row, see BENCHMARKS.md). Rows are
/// inserted in the order of their VALUES, with increasing AUTOINCREMENT ids, and nothing else
/// writes during a statement. So when every row was inserted, and the row `keys.len() - 1` ids
/// before the last insert id holds the first key, the ids are exactly the consecutive ones
/// ending at the last insert id. Otherwise (duplicates) the created rows are those of `keys`
/// with the `inserted` largest ids: ids only grow, so every row stored earlier has a smaller
/// one. Either way a single row or none comes back, except after duplicates.
async fn sqlite_created_ids(
    conn: &mut AnyConnection,
    done: &AnyQueryResult,
    table: &str,
    key_col: &str,
    keys: &[&str],
    what: &'static str,
) -> Result<Vec<Option<i64>>> {
    let n = keys.len();
    let inserted = usize::try_from(done.rows_affected()).unwrap_or(usize::MAX);
    let (Some(last), Some(&first_key)) = (done.last_insert_id(), keys.first()) else {
        return Ok(vec![None; n]);
    };
    if inserted == 0 {
        return Ok(vec![None; n]);
    }
    let Ok(span) = i64::try_from(n) else {
        return Err(Error::InvalidData {
            what: format!("{n} rows in one statement"),
        });
    };
    if inserted == n {
        let first = last - (span - 1);
        let consecutive = n == 1 || {
            let at_first: Option<String> =
                query(format!("SELECT {key_col} FROM {table} WHERE id = ?"))
                    .bind(first)
                    .fetch_optional(&mut *conn)
                    .await
                    .ctx(what)?
                    .map(|row| row.try_get(0))
                    .transpose()
                    .ctx(what)?;
            at_first.as_deref() == Some(first_key)
        };
        if consecutive {
            return Ok((first..).take(n).map(Some).collect());
        }
    }
    let mut b = SqlBuf::new(Dialect::new(Backend::Sqlite));
    b.push(&format!(
        "SELECT id, {key_col} FROM {table} WHERE {key_col} IN ("
    ))
    .params(n)
    .push(")");
    let mut q = query(b.finish());
    for key in keys {
        q = q.bind(*key);
    }
    let mut found: Vec<(i64, String)> = Vec::with_capacity(n);
    for row in q.fetch_all(&mut *conn).await.ctx(what)? {
        found.push((row.try_get(0).ctx(what)?, row.try_get(1).ctx(what)?));
    }
    found.sort_unstable_by_key(|&(id, _)| std::cmp::Reverse(id));
    let created: HashMap<String, i64> = found
        .into_iter()
        .take(inserted)
        .map(|(id, key)| (key, id))
        .collect();
    Ok(keys.iter().map(|k| created.get(*k).copied()).collect())
}

/// Inserts `(k, event_id)` rows into `trait_index` (sorted here by key; duplicates ignored).
pub(crate) async fn insert_index_rows(
    conn: &mut AnyConnection,
    batch_sql: &BatchSql,
    rows: &mut [(i64, i64)],
) -> Result<()> {
    insert_rows(conn, batch_sql, Batch::InsertIndex, rows).await
}

/// Inserts `(k, event_id)` rows with `batch`, [`Batch::InsertIndex`] or
/// [`Batch::InsertRecentIndex`] (sorted here by key; duplicates ignored).
async fn insert_rows(
    conn: &mut AnyConnection,
    batch_sql: &BatchSql,
    batch: Batch,
    rows: &mut [(i64, i64)],
) -> Result<()> {
    rows.sort_unstable();
    for chunk in batch_sql.chunks(batch, rows) {
        let mut q = query(batch_sql.get(batch, chunk.len()));
        for (k, event_id) in chunk {
            q = q.bind(*k).bind(*event_id);
        }
        q.execute(&mut *conn).await.ctx("indexing traits")?;
    }
    Ok(())
}

/// Binds the ten columns of a new open stream, `trigger_name` to `event_count`.
fn bind_new_stream(q: AnyQuery, new: &NewStream, key: String) -> AnyQuery {
    q.bind(new.trigger_name.as_str())
        .bind(StreamState::Active.code())
        .bind(micros(new.first_event))
        .bind(micros(new.last_event))
        .bind(micros(new.expire_timestamp))
        .bind(new.fire_timestamp.map(micros))
        .bind(new.distinguishing_key.as_str())
        .bind(key)
        .bind(new.fire_state.as_str())
        .bind(new.event_count)
}

/// The row of the open stream `new`, created with id `id`.
fn opened(id: i64, new: NewStream) -> StreamRow {
    StreamRow {
        id,
        trigger_name: new.trigger_name,
        state: StreamState::Active,
        first_event: new.first_event,
        last_event: new.last_event,
        expire_timestamp: new.expire_timestamp,
        fire_timestamp: new.fire_timestamp,
        distinguishing_key: new.distinguishing_key,
        distinguishing_traits: new.distinguishing_traits,
        attached: true,
        fire_state: new.fire_state,
        error: None,
        event_count: new.event_count,
        events: None,
    }
}
