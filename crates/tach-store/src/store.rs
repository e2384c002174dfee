//! [`Store`]: connecting, migrating, checking the schema, and the pipeline worker's operations
//! on streams (claim, read events, change state, reset, delete) plus trimming and dead letters.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Executor;
use sqlx::Row;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Connection};

use crate::checkpoint::Checkpointer;

use crate::dialect::{Backend, Dialect, parse_url, redact};
use crate::doc::{self, IndexedTraits, index_rows};
use crate::error::{Context, Error, Result};
use crate::migrate::{
    CREATE_SCHEMA_VERSION, LATEST_VERSION, MigrationReport, migrations, statements,
};
use crate::recent::{self, RecentIndex};
use crate::rows::{
    DEAD_LETTER_COLS, IN_CHUNK, STREAM_COLS, decode_dead_letter, decode_stream, fetch_streams,
    load_dist_traits, load_legacy_traits, load_stream_events, load_streams_events,
};
use crate::sql::{AnyQuery, BatchSql, SqlBuf, micros, query, sql, with_ids};
use crate::tx::{StoreTx, insert_index_rows};
use crate::types::{Event, StreamRow, StreamState, Trait};
use crate::upkeep::{self, StatsUpkeep};

/// How long SQLite waits for the write lock before failing with SQLITE_BUSY.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;
/// PostgreSQL advisory lock key serialising concurrent migrations ("tach" in ASCII).
const PG_MIGRATE_LOCK: i64 = 0x7461_6368;

/// Which ready streams [`Store::claim_streams`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimKind {
    /// Streams to fire: `active`/`retry_fire` whose fire time has come; they become `firing`.
    Fire,
    /// Streams to expire: `active`/`retry_expire` whose expiry has come; they become `expiring`.
    Expire,
}

/// A poison message kept with the reason it was rejected: one row per distinct message
/// (source and raw bytes), however often it was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Row id.
    pub id: i64,
    /// When it was first recorded.
    pub received_at: DateTime<Utc>,
    /// Where it came from, e.g. `amqp:notifications.info`.
    pub source: String,
    /// Why it was rejected (the first time it was received).
    pub reason: String,
    /// The message bytes as received.
    pub raw: Vec<u8>,
    /// How many times it was received (at least 1): a redelivery counts here, not as a new row.
    pub occurrences: u64,
    /// When it was last received (`received_at` when it was received once).
    pub last_received_at: DateTime<Utc>,
}

/// Pooled connections to a SQLite file unless more are asked for: a writer, the background
/// checkpoint and one spare. SQLite runs one writer at a time, and each connection keeps up to
/// 16 MiB of pages: a pool that grew to 7 connections (connections return to the pool
/// asynchronously, so a quick next acquire opens another) took a 1M replay to 322 MB of RSS.
pub const SQLITE_DEFAULT_CONNECTIONS: u32 = 3;

/// The page size of a new SQLite database, in bytes.
pub const SQLITE_PAGE_SIZE: u32 = 16384;

/// A pooled SQLite connection idle this long is pinged before it is used again (one used more
/// recently passed the ping sqlx runs when a connection returns to the pool).
const PING_IDLE_CONNECTIONS_AFTER: Duration = Duration::from_secs(1);

/// How [`Store::connect_opts`] connects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Pooled connections at most (default 10, [`SQLITE_DEFAULT_CONNECTIONS`] on a SQLite file;
    /// always 1 for `sqlite::memory:`).
    pub max_connections: Option<u32>,
    /// SQLite: read the database file through a memory map of at most this many bytes
    /// (`PRAGMA mmap_size`), which saves a `pread` per page for read-mostly processes such as
    /// the API. Mapped pages count in the process's RSS, so writers leave it off.
    pub sqlite_mmap_bytes: Option<u64>,
}

/// The event and stream store: a connection pool plus the dialect of its backend.
///
/// Cloning is cheap and shares the pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    checkpoints: Arc<Checkpointer>,
    dialect: Dialect,
    batch_sql: Arc<BatchSql>,
    /// The database's indexed traits, read once (see [`Store::indexed_traits`]).
    indexed: Arc<std::sync::RwLock<Option<Arc<IndexedTraits>>>>,
    /// Table statistics when the PostgreSQL server does not keep them (autovacuum off).
    upkeep: Arc<StatsUpkeep>,
    /// Rows written to SQLite's `trait_index_recent` towards its next merge.
    recent: Arc<RecentIndex>,
}

/// Events per statement when documents and the trait index are rebuilt.
const REINDEX_BATCH: i64 = 1000;
/// Dead letters read at a time when their digests are computed (a raw message may be large).
const DIGEST_BATCH: i64 = 64;
/// `last_received_at` becomes the bound time when that is later (binds it twice).
const LATER_RECEIVED: &str =
    "last_received_at = CASE WHEN last_received_at < ? THEN ? ELSE last_received_at END";

impl Store {
    /// Connects to `url`: `sqlite://path` (created when missing; WAL, synchronous=NORMAL,
    /// busy timeout, foreign keys), `sqlite::memory:` (one connection, so one database),
    /// `postgres://`/`postgresql://`, `mysql://`, and SQLAlchemy forms such as
    /// `mysql+pymysql://` or `postgresql+psycopg2://`.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`] for another scheme, [`Error::Connect`] when the database cannot
    /// be reached.
    pub async fn connect(url: &str) -> Result<Store> {
        Store::connect_with(url, None).await
    }

    /// Like [`Store::connect`] with at most `max_connections` pooled connections (default as in
    /// [`ConnectOptions::max_connections`]).
    ///
    /// # Errors
    /// As [`Store::connect`].
    pub async fn connect_with(url: &str, max_connections: Option<u32>) -> Result<Store> {
        Store::connect_opts(
            url,
            &ConnectOptions {
                max_connections,
                ..ConnectOptions::default()
            },
        )
        .await
    }

    /// Like [`Store::connect`] with `options`.
    ///
    /// # Errors
    /// As [`Store::connect`].
    pub async fn connect_opts(url: &str, options: &ConnectOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let parsed = parse_url(url)?;
        let backend = parsed.backend;
        let mmap = options.sqlite_mmap_bytes;
        let default_max = match backend {
            Backend::Sqlite => SQLITE_DEFAULT_CONNECTIONS,
            Backend::Postgres | Backend::MySql => 10,
        };
        let max_connections = options.max_connections.unwrap_or(default_max).max(1);
        let mut options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move { setup(conn, backend, mmap).await })
            });
        if backend == Backend::Sqlite {
            // sqlx pings a connection when it returns to the pool, and by default again when
            // it is taken out: on SQLite a hand-off to the connection's thread and back before
            // every use, for a connection that has no server to lose. The second ping is kept
            // for connections idle a while. (Server connections keep sqlx's ping on every
            // acquire: a restarted server leaves dead connections in the pool.)
            options = options
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PING_IDLE_CONNECTIONS_AFTER {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                });
        }
        if parsed.in_memory {
            // Every connection to :memory: is a database of its own: keep exactly one, forever.
            options = options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let pool = options
            .connect(&parsed.url)
            .await
            .map_err(|source| Error::Connect { backend, source })?;
        tracing::debug!(backend = %backend, url = %redact(url), "Store connected.");
        let dialect = Dialect::new(backend);
        let upkeep = Arc::new(StatsUpkeep::default());
        if backend == Backend::Postgres {
            let mut conn = pool.acquire().await.ctx("acquiring a connection")?;
            if !upkeep::autovacuum_on(&mut conn).await? {
                upkeep.enable();
                tracing::warn!(
                    "PostgreSQL's autovacuum is off: tach runs VACUUM and ANALYZE on its own \
                     tables as they grow and change, so that its queries keep their plans and \
                     skip no dead rows; turn autovacuum on, or schedule VACUUM ANALYZE for the \
                     database's other tables."
                );
            }
        }
        // With one connection the checkpoint would make the writer wait for it.
        let checkpoints = Arc::new(Checkpointer::new(
            backend == Backend::Sqlite && !parsed.in_memory && max_connections >= 2,
        ));
        Ok(Store {
            pool,
            dialect,
            batch_sql: Arc::new(BatchSql::new(dialect)),
            indexed: Arc::default(),
            upkeep,
            checkpoints,
            recent: Arc::default(),
        })
    }

    /// The tables of the trait index: `trait_index`, and on SQLite `trait_index_recent` (see
    /// [`crate::recent`]).
    pub(crate) fn index_tables(&self) -> &'static [&'static str] {
        recent::index_tables(self.dialect.backend())
    }

    /// Merges SQLite's recent trait index rows after `rows` more are written by this process
    /// (default [`crate::recent::MERGE_ROWS`]; tests only, with the `testing` feature).
    #[cfg(feature = "testing")]
    pub fn set_index_merge_rows(&self, rows: u64) {
        self.recent.set_merge_rows(rows);
    }

    /// Whether this process runs `VACUUM (ANALYZE)` on tach's tables as they grow (PostgreSQL
    /// with autovacuum off; see [`crate::upkeep`]).
    pub fn analyzes_tables(&self) -> bool {
        self.upkeep.enabled()
    }

    /// `VACUUM (ANALYZE)` passes over tach's tables this process has started (each runs in the
    /// background, beside the transaction whose [`Store::begin`] found it due).
    pub fn analyze_runs(&self) -> u64 {
        self.upkeep.started()
    }

    /// Of [`Store::analyze_runs`], the passes that have finished.
    pub fn analyze_runs_finished(&self) -> u64 {
        self.upkeep.finished()
    }

    /// Background WAL checkpoints that succeeded, and how many of the log's frames were in the
    /// database after the last one (SQLite file databases; see [`crate::checkpoint`]).
    pub fn background_checkpoints(&self) -> (u64, u64) {
        self.checkpoints.succeeded()
    }

    /// Whether this store checkpoints the WAL in the background (a SQLite file database with a
    /// pool of at least two connections).
    pub fn checkpoints_in_background(&self) -> bool {
        self.checkpoints.enabled()
    }

    /// The backend this store talks to.
    pub fn backend(&self) -> Backend {
        self.dialect.backend()
    }

    /// The backend's dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes every pooled connection (waits for connections in use to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite).
    ///
    /// # Errors
    /// [`Error::Database`] when no connection or transaction can be had.
    pub async fn begin(&self) -> Result<StoreTx> {
        if self.checkpoints.claim() {
            let (checkpoints, pool) = (self.checkpoints.clone(), self.pool.clone());
            tokio::spawn(async move { checkpoints.run(&pool).await });
        }
        if let Some(pass) = self.upkeep.claim() {
            // VACUUM and ANALYZE take no lock that writes wait for: they run beside this
            // transaction.
            let (upkeep, pool) = (self.upkeep.clone(), self.pool.clone());
            tokio::spawn(async move { upkeep.run(&pool, pass).await });
        }
        let indexed = self.indexed_traits().await?;
        let tx = match self.dialect.begin_write() {
            Some(stmt) => self.pool.begin_with(stmt).await,
            None => self.pool.begin().await,
        }
        .ctx("beginning a transaction")?;
        Ok(StoreTx::new(
            tx,
            self.dialect,
            self.batch_sql.clone(),
            indexed,
            self.upkeep.clone(),
            self.recent.clone(),
        ))
    }

    /// The traits this database indexes for searches (table `indexed_traits`), read on first
    /// use and then cached.
    ///
    /// # Errors
    /// [`Error::Database`] (e.g. a schema older than version 4).
    pub async fn indexed_traits(&self) -> Result<Arc<IndexedTraits>> {
        if let Some(set) = self.indexed.read().ok().and_then(|g| g.clone()) {
            return Ok(set);
        }
        let mut conn = self.conn().await?;
        let set = Arc::new(read_indexed_traits(&mut conn).await?);
        if let Ok(mut cached) = self.indexed.write() {
            *cached = Some(set.clone());
        }
        Ok(set)
    }

    /// Makes `set` the database's indexed traits. When it differs from the current set, the
    /// whole trait index is rebuilt from the events' documents in one transaction (stop the
    /// ingest workers first: a worker keeps the set it read when it started). Returns the
    /// number of events reindexed, or `None` when the set was already `set`.
    ///
    /// # Errors
    /// [`Error::Database`]; [`Error::InvalidData`] for an unreadable document.
    pub async fn set_indexed_traits(&self, set: &IndexedTraits) -> Result<Option<u64>> {
        let mut tx = self.begin().await?;
        let current = read_indexed_traits(tx.conn()).await?;
        if &current == set {
            tx.rollback().await?;
            return Ok(None);
        }
        query("DELETE FROM indexed_traits")
            .execute(tx.conn())
            .await
            .ctx("changing the indexed traits")?;
        for name in set.rows() {
            query(sql(
                self.dialect,
                "INSERT INTO indexed_traits (name) VALUES (?)",
            ))
            .bind(name)
            .execute(tx.conn())
            .await
            .ctx("changing the indexed traits")?;
        }
        for table in self.index_tables() {
            query(format!("DELETE FROM {table}"))
                .execute(tx.conn())
                .await
                .ctx("clearing the trait index")?;
        }
        let mut after = 0i64;
        let mut events = 0u64;
        loop {
            let rows = query(sql(
                self.dialect,
                "SELECT id, traits FROM events WHERE id > ? ORDER BY id LIMIT ?",
            ))
            .bind(after)
            .bind(REINDEX_BATCH)
            .fetch_all(tx.conn())
            .await
            .ctx("reading events to reindex")?;
            let mut index = Vec::new();
            for row in &rows {
                let id: i64 = row.try_get(0).ctx("reading events to reindex")?;
                let json: Option<&str> = row.try_get(1).ctx("reading events to reindex")?;
                index.extend(index_rows(id, &doc::decode(id, json)?, set));
                after = id;
            }
            insert_index_rows(tx.conn(), &self.batch_sql, &mut index).await?;
            events += rows.len() as u64;
            if (rows.len() as i64) < REINDEX_BATCH {
                break;
            }
        }
        tx.commit().await?;
        if let Ok(mut cached) = self.indexed.write() {
            *cached = Some(Arc::new(set.clone()));
        }
        tracing::info!(indexed = %set, events, "Trait index rebuilt.");
        Ok(Some(events))
    }

    /// Schema version 4: writes every event's trait document and index rows from the old
    /// row-per-trait table, then drops that table.
    async fn convert_trait_rows(&self, conn: &mut AnyConnection) -> Result<()> {
        const WHAT: &str = "converting traits to documents";
        let set = read_indexed_traits(conn).await?;
        let mut after = 0i64;
        let mut converted = 0u64;
        loop {
            let rows = query(sql(
                self.dialect,
                "SELECT id FROM events WHERE id > ? ORDER BY id LIMIT ?",
            ))
            .bind(after)
            .bind(REINDEX_BATCH)
            .fetch_all(&mut *conn)
            .await
            .ctx(WHAT)?;
            let mut events = rows
                .iter()
                .map(|r| Ok((r.try_get::<i64, _>(0)?, Vec::new())))
                .collect::<std::result::Result<Vec<(i64, Vec<Trait>)>, sqlx::Error>>()
                .ctx(WHAT)?;
            load_legacy_traits(conn, self.dialect, &mut events).await?;
            let mut index = Vec::new();
            for (id, traits) in &events {
                query(sql(
                    self.dialect,
                    "UPDATE events SET traits = ? WHERE id = ?",
                ))
                .bind(doc::encode(traits))
                .bind(*id)
                .execute(&mut *conn)
                .await
                .ctx(WHAT)?;
                index.extend(index_rows(*id, traits, &set));
                after = *id;
            }
            insert_index_rows(conn, &self.batch_sql, &mut index).await?;
            converted += events.len() as u64;
            if (events.len() as i64) < REINDEX_BATCH {
                break;
            }
        }
        conn.execute("DROP TABLE traits").await.ctx(WHAT)?;
        if converted > 0 {
            tracing::info!(events = converted, "Traits converted to documents.");
        }
        Ok(())
    }

    /// Schema version 5: computes every dead letter's digest, merging the rows that hold the
    /// same message (source and raw bytes: redeliveries recorded before the digest existed)
    /// into the oldest one, whose `occurrences` counts them. A row whose digest collides with a
    /// different message's keeps no digest.
    async fn digest_dead_letters(&self, conn: &mut AnyConnection) -> Result<()> {
        const WHAT: &str = "computing the digests of dead letters";
        // digest -> id of the row that has it.
        let mut kept: HashMap<i64, i64> = HashMap::new();
        let mut after = 0i64;
        let mut merged = 0u64;
        loop {
            let rows = query(sql(
                self.dialect,
                "SELECT id, received_at, source, raw FROM dead_letters \
                 WHERE id > ? ORDER BY id LIMIT ?",
            ))
            .bind(after)
            .bind(DIGEST_BATCH)
            .fetch_all(&mut *conn)
            .await
            .ctx(WHAT)?;
            for row in &rows {
                let id: i64 = row.try_get(0).ctx(WHAT)?;
                let received_at: i64 = row.try_get(1).ctx(WHAT)?;
                let source: String = row.try_get(2).ctx(WHAT)?;
                let raw: Vec<u8> = row.try_get(3).ctx(WHAT)?;
                after = id;
                let digest = doc::dead_letter_digest(&source, &raw);
                match kept.get(&digest) {
                    None => {
                        query(sql(
                            self.dialect,
                            "UPDATE dead_letters SET digest = ? WHERE id = ?",
                        ))
                        .bind(digest)
                        .bind(id)
                        .execute(&mut *conn)
                        .await
                        .ctx(WHAT)?;
                        kept.insert(digest, id);
                    }
                    Some(&first) => {
                        if !holds_message(&mut *conn, self.dialect, first, &source, &raw).await? {
                            // A collision: this row stays apart, with no digest.
                            continue;
                        }
                        let merge = format!(
                            "UPDATE dead_letters SET occurrences = occurrences + 1, \
                             {LATER_RECEIVED} WHERE id = ?"
                        );
                        query(sql_owned(self.dialect, &merge))
                            .bind(received_at)
                            .bind(received_at)
                            .bind(first)
                            .execute(&mut *conn)
                            .await
                            .ctx(WHAT)?;
                        query(sql(self.dialect, "DELETE FROM dead_letters WHERE id = ?"))
                            .bind(id)
                            .execute(&mut *conn)
                            .await
                            .ctx(WHAT)?;
                        merged += 1;
                    }
                }
            }
            if (rows.len() as i64) < DIGEST_BATCH {
                break;
            }
        }
        if merged > 0 {
            tracing::info!(
                merged,
                "Dead letters holding the same message merged into one row each."
            );
        }
        Ok(())
    }

    pub(crate) fn pool_ref(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        self.pool.acquire().await.ctx("acquiring a connection")
    }

    // ----- schema -----

    /// Applies every pending migration.
    ///
    /// # Errors
    /// [`Error::Migration`] naming the migration that failed; [`Error::SchemaTooNew`] when the
    /// database is newer than this build.
    pub async fn migrate(&self) -> Result<MigrationReport> {
        self.migrate_to(LATEST_VERSION).await
    }

    /// Applies pending migrations up to and including version `target`.
    ///
    /// # Errors
    /// As [`Store::migrate`].
    pub async fn migrate_to(&self, target: i64) -> Result<MigrationReport> {
        let backend = self.backend();
        let mut conn = self.conn().await?;
        // Lock first: concurrent CREATE TABLE IF NOT EXISTS races on PostgreSQL.
        match backend {
            Backend::Sqlite => {
                conn.execute("BEGIN IMMEDIATE")
                    .await
                    .ctx("locking for migration")?;
            }
            Backend::Postgres => {
                conn.execute("BEGIN").await.ctx("locking for migration")?;
                query(sql(self.dialect, "SELECT pg_advisory_xact_lock(?)"))
                    .bind(PG_MIGRATE_LOCK)
                    .execute(&mut *conn)
                    .await
                    .ctx("locking for migration")?;
            }
            Backend::MySql => {
                let got: i64 = query("SELECT GET_LOCK('tach_migrate', 300)")
                    .fetch_one(&mut *conn)
                    .await
                    .and_then(|row| row.try_get::<Option<i64>, _>(0))
                    .ctx("locking for migration")?
                    .unwrap_or(0);
                if got != 1 {
                    return Err(Error::Database {
                        action: "locking for migration",
                        source: sqlx::Error::Protocol(
                            "timed out waiting for the tach_migrate lock".into(),
                        ),
                    });
                }
            }
        }
        let result = self.apply_migrations(&mut conn, target).await;
        let end = match (backend, &result) {
            (Backend::MySql, _) => "SELECT RELEASE_LOCK('tach_migrate')",
            (_, Ok(_)) => "COMMIT",
            (_, Err(_)) => "ROLLBACK",
        };
        let ended = conn.execute(end).await.ctx("finishing the migration");
        let report = result?;
        ended?;
        if report.from != report.to {
            tracing::info!(from = report.from, to = report.to, "Schema migrated.");
        }
        Ok(report)
    }

    async fn apply_migrations(
        &self,
        conn: &mut AnyConnection,
        target: i64,
    ) -> Result<MigrationReport> {
        conn.execute(CREATE_SCHEMA_VERSION)
            .await
            .ctx("creating the schema_version table")?;
        let from = schema_version(conn).await?;
        if from > LATEST_VERSION {
            return Err(Error::SchemaTooNew {
                found: from,
                expected: LATEST_VERSION,
            });
        }
        let mut to = from;
        for m in migrations(self.backend()) {
            if m.version <= from || m.version > target {
                continue;
            }
            let fail = |source| Error::Migration {
                version: m.version,
                name: m.name,
                source,
            };
            for stmt in statements(m.sql) {
                conn.execute(query(stmt)).await.map_err(fail)?;
            }
            if m.name == "trait_documents" {
                self.convert_trait_rows(conn).await?;
            }
            if m.name == "dead_letter_digest" {
                self.digest_dead_letters(conn).await?;
            }
            query(sql(
                self.dialect,
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
            ))
            .bind(m.version)
            .bind(m.name)
            .bind(micros(Utc::now()))
            .execute(&mut *conn)
            .await
            .map_err(fail)?;
            to = m.version;
        }
        Ok(MigrationReport { from, to })
    }

    /// The schema version recorded in the database (0 when there is none).
    ///
    /// # Errors
    /// [`Error::Database`] when the database cannot be read.
    pub async fn schema_version(&self) -> Result<i64> {
        let mut conn = self.conn().await?;
        if !self.has_version_table(&mut conn).await? {
            return Ok(0);
        }
        schema_version(&mut conn).await
    }

    /// Checks that the schema is exactly the version this build needs.
    ///
    /// # Errors
    /// [`Error::SchemaMissing`], [`Error::SchemaOutdated`] or [`Error::SchemaTooNew`], whose
    /// messages tell the operator what to run.
    pub async fn check_schema(&self) -> Result<()> {
        match self.schema_version().await? {
            0 => Err(Error::SchemaMissing),
            v if v < LATEST_VERSION => Err(Error::SchemaOutdated {
                found: v,
                expected: LATEST_VERSION,
            }),
            v if v > LATEST_VERSION => Err(Error::SchemaTooNew {
                found: v,
                expected: LATEST_VERSION,
            }),
            _ => Ok(()),
        }
    }

    async fn has_version_table(&self, conn: &mut AnyConnection) -> Result<bool> {
        let q = match self.backend() {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
                 AND name = 'schema_version'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'schema_version'"
            }
            Backend::MySql => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = 'schema_version'"
            }
        };
        let n: i64 = query(q)
            .fetch_one(&mut *conn)
            .await
            .and_then(|row| row.try_get(0))
            .ctx("looking for the schema_version table")?;
        Ok(n > 0)
    }

    // ----- pipeline worker -----

    /// Takes up to `limit` streams ready at `now` for `kind`, each by a compare-and-set of its
    /// state, so that any number of workers on any number of hosts never take a stream twice.
    ///
    /// Fire takes `active`/`retry_fire` streams with `fire_timestamp <= now` into `firing`.
    /// Expire takes `retry_expire` streams, and `active` streams that are not also ready to fire,
    /// with `expire_timestamp <= now` into `expiring`. A taken stream loses its active key, so
    /// ingest opens a new stream for later events. Oldest first. The returned rows carry the
    /// new state, and no distinguishing traits (pipelines do not read them;
    /// [`Store::get_stream`] does).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn claim_streams(
        &self,
        kind: ClaimKind,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StreamRow>> {
        let now_us = micros(now);
        let (select, retry, to) = claim_sql(kind);
        let select = select.replace("{cols}", STREAM_COLS);
        let bind_select = |q: AnyQuery| {
            let mut q = q
                .bind(StreamState::Active.code())
                .bind(retry.code())
                .bind(now_us);
            if kind == ClaimKind::Expire {
                q = q.bind(retry.code()).bind(now_us);
            }
            q.bind(i64::from(limit))
        };
        // A plain read first: most passes find nothing, and then take no write lock.
        let mut conn = self.conn().await?;
        let ready = bind_select(query(sql_owned(self.dialect, &select)))
            .fetch_optional(&mut *conn)
            .await
            .ctx("finding ready streams")?;
        if ready.is_none() {
            return Ok(Vec::new());
        }
        drop(conn);
        // Then, in one transaction, the ready rows locked (skipping rows other workers or
        // ingest hold, so a claim never waits and never deadlocks) and moved in one statement.
        let mut tx = self.begin().await?;
        let locking = format!("{select}{}", self.dialect.for_update_skip_locked());
        let order = match kind {
            ClaimKind::Fire => "fire_timestamp, id",
            ClaimKind::Expire => "expire_timestamp, id",
        };
        let mut claimed: Vec<StreamRow> = fetch_streams(
            tx.conn(),
            self.dialect,
            &sql_owned(self.dialect, &locking),
            order,
            bind_select,
            "finding ready streams",
        )
        .await?
        .into_iter()
        .map(|(stream, _)| stream)
        .collect();
        let mut moved = 0;
        for chunk in claimed.chunks(IN_CHUNK) {
            let mut b = SqlBuf::new(self.dialect);
            b.push("UPDATE streams SET state = ")
                .param()
                .push(", active_key = NULL WHERE id IN (")
                .params(chunk.len())
                .push(") AND state IN (")
                .params(2)
                .push(match kind {
                    ClaimKind::Fire => ") AND fire_timestamp <= ",
                    ClaimKind::Expire => ") AND expire_timestamp <= ",
                })
                .param();
            let mut q = query(b.finish()).bind(to.code());
            for stream in chunk {
                q = q.bind(stream.id);
            }
            moved += q
                .bind(StreamState::Active.code())
                .bind(retry.code())
                .bind(now_us)
                .execute(tx.conn())
                .await
                .ctx("claiming streams")?
                .rows_affected();
        }
        if moved != claimed.len() as u64 {
            // The locked rows all matched, so this cannot happen; should a backend prove
            // otherwise, fall back to one compare-and-set per stream.
            tx.rollback().await?;
            return self.claim_one_by_one(kind, now, limit).await;
        }
        tx.commit().await?;
        for stream in &mut claimed {
            stream.state = to;
            stream.attached = false;
        }
        Ok(claimed)
    }

    /// [`Store::claim_streams`] with one compare-and-set statement per stream.
    async fn claim_one_by_one(
        &self,
        kind: ClaimKind,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StreamRow>> {
        let now_us = micros(now);
        let (select, retry, to) = claim_sql(kind);
        let select = select.replace("{cols}", STREAM_COLS);
        let mut q = query(sql_owned(self.dialect, &select))
            .bind(StreamState::Active.code())
            .bind(retry.code())
            .bind(now_us);
        if kind == ClaimKind::Expire {
            q = q.bind(retry.code()).bind(now_us);
        }
        let mut conn = self.conn().await?;
        let rows = q
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await
            .ctx("finding ready streams")?;
        let cas = match kind {
            ClaimKind::Fire => sql(
                self.dialect,
                "UPDATE streams SET state = ?, active_key = NULL \
                 WHERE id = ? AND state = ? AND fire_timestamp <= ?",
            ),
            ClaimKind::Expire => sql(
                self.dialect,
                "UPDATE streams SET state = ?, active_key = NULL \
                 WHERE id = ? AND state = ? AND expire_timestamp <= ?",
            ),
        };
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut stream = decode_stream(row)?;
            let done = query(cas.clone())
                .bind(to.code())
                .bind(stream.id)
                .bind(stream.state.code())
                .bind(now_us)
                .execute(&mut *conn)
                .await
                .ctx("claiming a stream")?;
            if done.rows_affected() == 1 {
                stream.state = to;
                stream.attached = false;
                claimed.push(stream);
            }
        }
        Ok(claimed)
    }

    /// The events of each of `stream_ids` (in the same order), sorted by timestamp, with their
    /// traits (sorted by name): [`Store::stream_events`] for many streams in a few statements.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn streams_events(&self, stream_ids: &[i64]) -> Result<Vec<Vec<Event>>> {
        let mut conn = self.conn().await?;
        load_streams_events(&mut conn, self.dialect, stream_ids, true).await
    }

    /// As [`Store::streams_events`] without the traits (each event's are empty): for pipelines
    /// whose handlers look only at message ids, types and times.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn streams_events_without_traits(
        &self,
        stream_ids: &[i64],
    ) -> Result<Vec<Vec<Event>>> {
        let mut conn = self.conn().await?;
        load_streams_events(&mut conn, self.dialect, stream_ids, false).await
    }

    /// Moves each of streams `ids` from state `from` to `to` if it is still in `from` (one
    /// compare-and-set statement per chunk of streams), recording `error` (or clearing it). A
    /// stream leaving `active` loses its active key. Returns the ids that did not change.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn set_streams_state(
        &self,
        ids: &[i64],
        from: StreamState,
        to: StreamState,
        error: Option<&str>,
    ) -> Result<Vec<i64>> {
        let mut unchanged = Vec::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let mut b = SqlBuf::new(self.dialect);
            b.push("UPDATE streams SET state = ")
                .param()
                .push(", error = ")
                .param();
            if to != StreamState::Active {
                b.push(", active_key = NULL");
            }
            b.push(" WHERE state = ")
                .param()
                .push(" AND id IN (")
                .params(chunk.len())
                .push(")");
            let mut q = query(b.finish())
                .bind(to.code())
                .bind(error)
                .bind(from.code());
            for id in chunk {
                q = q.bind(*id);
            }
            let done = q
                .execute(&self.pool)
                .await
                .ctx("changing the state of streams")?;
            if done.rows_affected() != chunk.len() as u64 {
                unchanged.extend(self.streams_not_in(chunk, to).await?);
            }
        }
        Ok(unchanged)
    }

    /// Deletes streams `ids` with their event links and distinguishing traits (not their
    /// events). Returns the ids that did not exist.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn delete_streams(&self, ids: &[i64]) -> Result<Vec<i64>> {
        let mut missing = Vec::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let mut tx = self.begin().await?;
            let found = delete_stream_rows(tx.conn(), self.dialect, chunk).await?;
            tx.commit().await?;
            missing.extend(chunk.iter().filter(|id| !found.contains(id)));
        }
        Ok(missing)
    }

    /// Of streams `ids`, those not in `state`.
    async fn streams_not_in(&self, ids: &[i64], state: StreamState) -> Result<Vec<i64>> {
        let rows = with_ids(
            self.dialect,
            "SELECT id FROM streams WHERE id IN (",
            ids,
            ") AND state = ?",
        )
        .bind(state.code())
        .fetch_all(&self.pool)
        .await
        .ctx("reading the state of streams")?;
        let there = id_set(&rows, "reading the state of streams")?;
        Ok(ids
            .iter()
            .copied()
            .filter(|id| !there.contains(id))
            .collect())
    }

    /// The events of stream `stream_id`, sorted by timestamp, with their traits (sorted by name).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn stream_events(&self, stream_id: i64) -> Result<Vec<Event>> {
        let mut conn = self.conn().await?;
        load_stream_events(&mut conn, self.dialect, stream_id).await
    }

    /// Moves stream `id` from state `from` to `to` if it is still in `from` (compare-and-set),
    /// recording `error` (or clearing it). A stream leaving `active` loses its active key.
    /// Returns whether the stream changed.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn set_stream_state(
        &self,
        id: i64,
        from: StreamState,
        to: StreamState,
        error: Option<&str>,
    ) -> Result<bool> {
        let template = if to == StreamState::Active {
            "UPDATE streams SET state = ?, error = ? WHERE id = ? AND state = ?"
        } else {
            "UPDATE streams SET state = ?, error = ?, active_key = NULL WHERE id = ? AND state = ?"
        };
        let done = query(sql(self.dialect, template))
            .bind(to.code())
            .bind(error)
            .bind(id)
            .bind(from.code())
            .execute(&self.pool)
            .await
            .ctx("changing a stream's state")?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes stream `id` with its event links and distinguishing traits (not its events).
    /// Returns whether it existed.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn delete_stream(&self, id: i64) -> Result<bool> {
        Ok(self.delete_streams(&[id]).await?.is_empty())
    }

    /// Resets a failed stream for another try: `error` → `retry_fire`, `expire_error` →
    /// `retry_expire`. A stream left in `firing` or `expiring` by a worker that died (or whose
    /// database went away after the pipeline ran) is reset the same way; reset one only when no
    /// worker is running its pipeline any more, or it runs twice. Returns the stream as it is now.
    ///
    /// # Errors
    /// [`Error::StreamNotFound`]; [`Error::Conflict`] for a stream in any other state (also
    /// when it changed state during the call).
    pub async fn reset_stream(&self, id: i64) -> Result<StreamRow> {
        let stream = self
            .get_stream(id, false)
            .await?
            .ok_or(Error::StreamNotFound { id })?;
        let to = match stream.state {
            StreamState::Error | StreamState::Firing => StreamState::RetryFire,
            StreamState::ExpireError | StreamState::Expiring => StreamState::RetryExpire,
            state => return Err(Error::Conflict { id, state }),
        };
        if !self
            .set_stream_state(id, stream.state, to, stream.error.as_deref())
            .await?
        {
            let now = self
                .get_stream(id, false)
                .await?
                .ok_or(Error::StreamNotFound { id })?;
            return Err(Error::Conflict {
                id,
                state: now.state,
            });
        }
        self.get_stream(id, false)
            .await?
            .ok_or(Error::StreamNotFound { id })
    }

    /// Deletes up to `batch_size` events older than `older_than` that belong to no stream other
    /// than completed ones, with their trait index rows and stream links. Returns how many were deleted;
    /// call again until it returns less than `batch_size`.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn trim_events(&self, older_than: DateTime<Utc>, batch_size: u32) -> Result<u64> {
        let mut tx = self.begin().await?;
        let rows = query(sql(
            self.dialect,
            "SELECT e.id, e.traits FROM events e WHERE e.generated < ? AND NOT EXISTS (\
             SELECT 1 FROM stream_events se JOIN streams s ON s.id = se.stream_id \
             WHERE se.event_id = e.id AND s.state <> ?) ORDER BY e.generated, e.id LIMIT ?",
        ))
        .bind(micros(older_than))
        .bind(StreamState::Completed.code())
        .bind(i64::from(batch_size))
        .fetch_all(tx.conn())
        .await
        .ctx("finding events to trim")?;
        let set = self.indexed_traits().await?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut index = Vec::new();
        for row in &rows {
            let id: i64 = row.try_get(0).ctx("finding events to trim")?;
            let json: Option<&str> = row.try_get(1).ctx("finding events to trim")?;
            index.extend(index_rows(id, &doc::decode(id, json)?, &set));
            ids.push(id);
        }
        for table in self.index_tables() {
            for chunk in index.chunks(500) {
                let mut b = SqlBuf::new(self.dialect);
                b.push("DELETE FROM ")
                    .push(table)
                    .push(" WHERE (k, event_id) IN (");
                for i in 0..chunk.len() {
                    b.push(if i == 0 { "(" } else { ", (" }).params(2).push(")");
                }
                b.push(")");
                let mut q = query(b.finish());
                for (k, id) in chunk {
                    q = q.bind(*k).bind(*id);
                }
                q.execute(tx.conn()).await.ctx("trimming the trait index")?;
            }
        }
        let mut deleted = 0;
        for chunk in ids.chunks(500) {
            // Their links to completed streams first: PostgreSQL and MySQL check no foreign
            // key there (schema version 6).
            with_ids(
                self.dialect,
                "DELETE FROM stream_events WHERE event_id IN (",
                chunk,
                ")",
            )
            .execute(tx.conn())
            .await
            .ctx("trimming stream links")?;
            deleted += with_ids(self.dialect, "DELETE FROM events WHERE id IN (", chunk, ")")
                .execute(tx.conn())
                .await
                .ctx("trimming events")?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Records a poison message; returns its row id. A message already recorded (the same
    /// source and raw bytes, e.g. redelivered because the worker died before acking it) is not
    /// recorded again: its row's `occurrences` goes up by one and `last_received_at` moves to
    /// now, and that row's id is returned.
    ///
    /// Messages are found by their 64-bit digest ([`doc::dead_letter_digest`]) under a unique
    /// index; the bytes are compared too, and a message whose digest collides with a different
    /// message's is recorded with no digest (and found by its bytes among those rows).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn insert_dead_letter(&self, source: &str, reason: &str, raw: &[u8]) -> Result<i64> {
        let now = micros(Utc::now());
        let digest = doc::dead_letter_digest(source, raw);
        if let Some(id) = self
            .upsert_dead_letter(digest, now, source, reason, raw)
            .await?
        {
            return Ok(id);
        }
        self.insert_undigested_dead_letter(now, source, reason, raw)
            .await
    }

    /// Inserts a dead letter with `digest`, or counts a receipt of the same message on the row
    /// that has it. `None` when that row holds a different message (a digest collision).
    async fn upsert_dead_letter(
        &self,
        digest: i64,
        now: i64,
        source: &str,
        reason: &str,
        raw: &[u8],
    ) -> Result<Option<i64>> {
        const WHAT: &str = "recording a dead letter";
        const INSERT: &str = "INSERT INTO dead_letters \
             (received_at, last_received_at, source, reason, raw, digest) VALUES (?, ?, ?, ?, ?, ?)";
        // INSERT's parameters, in order.
        let bound = |template: &str| {
            query(sql_owned(self.dialect, template))
                .bind(now)
                .bind(now)
                .bind(source)
                .bind(reason)
                .bind(raw.to_vec())
                .bind(digest)
        };
        if self.dialect.has_returning() {
            // The WHERE leaves a colliding row alone, and then no row is returned.
            let template = format!(
                "{INSERT} ON CONFLICT (digest) DO UPDATE SET \
                 occurrences = dead_letters.occurrences + 1, \
                 last_received_at = CASE WHEN dead_letters.last_received_at \
                 < excluded.last_received_at THEN excluded.last_received_at \
                 ELSE dead_letters.last_received_at END \
                 WHERE dead_letters.source = excluded.source AND dead_letters.raw = excluded.raw \
                 RETURNING id"
            );
            let row = bound(&template)
                .fetch_optional(&self.pool)
                .await
                .ctx(WHAT)?;
            return row.map(|r| r.try_get(0)).transpose().ctx(WHAT);
        }
        // MySQL: LAST_INSERT_ID(id) reports the existing row's id; a colliding row is left
        // as it is. Assignments run left to right, before `occurrences` changes.
        let template = format!(
            "{INSERT} ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id), \
             last_received_at = IF(source = VALUES(source) AND raw = VALUES(raw) \
             AND last_received_at < VALUES(last_received_at), VALUES(last_received_at), \
             last_received_at), \
             occurrences = IF(source = VALUES(source) AND raw = VALUES(raw), \
             occurrences + 1, occurrences)"
        );
        let done = bound(&template).execute(&self.pool).await.ctx(WHAT)?;
        let id = last_insert_id(done.last_insert_id(), WHAT)?;
        // 2 rows affected: an existing row was counted. Otherwise a row was inserted or a
        // colliding row left alone (both report 1 with CLIENT_FOUND_ROWS): the bytes tell.
        if done.rows_affected() == 2 {
            return Ok(Some(id));
        }
        let mut conn = self.conn().await?;
        Ok(holds_message(&mut conn, self.dialect, id, source, raw)
            .await?
            .then_some(id))
    }

    /// Records a dead letter whose digest belongs to a different message: with no digest, or
    /// counted on the row without a digest that holds the same message.
    async fn insert_undigested_dead_letter(
        &self,
        now: i64,
        source: &str,
        reason: &str,
        raw: &[u8],
    ) -> Result<i64> {
        const WHAT: &str = "recording a dead letter";
        tracing::warn!(
            source,
            "A dead letter's digest is another message's; recording it without one."
        );
        let found = query(sql(
            self.dialect,
            "SELECT id FROM dead_letters WHERE digest IS NULL AND source = ? AND raw = ? \
             ORDER BY id LIMIT 1",
        ))
        .bind(source)
        .bind(raw.to_vec())
        .fetch_optional(&self.pool)
        .await
        .ctx(WHAT)?;
        if let Some(row) = found {
            let id: i64 = row.try_get(0).ctx(WHAT)?;
            let count = format!(
                "UPDATE dead_letters SET occurrences = occurrences + 1, {LATER_RECEIVED} \
                 WHERE id = ?"
            );
            query(sql_owned(self.dialect, &count))
                .bind(now)
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await
                .ctx(WHAT)?;
            return Ok(id);
        }
        let mut template = String::from(
            "INSERT INTO dead_letters (received_at, last_received_at, source, reason, raw) \
             VALUES (?, ?, ?, ?, ?)",
        );
        if self.dialect.has_returning() {
            template.push_str(" RETURNING id");
        }
        let q = query(sql_owned(self.dialect, &template))
            .bind(now)
            .bind(now)
            .bind(source)
            .bind(reason)
            .bind(raw.to_vec());
        if self.dialect.has_returning() {
            q.fetch_one(&self.pool)
                .await
                .and_then(|row| row.try_get(0))
                .ctx(WHAT)
        } else {
            let done = q.execute(&self.pool).await.ctx(WHAT)?;
            last_insert_id(done.last_insert_id(), WHAT)
        }
    }

    /// The newest `limit` dead letters (by first receipt), newest first.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn list_dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>> {
        let select =
            format!("SELECT {DEAD_LETTER_COLS} FROM dead_letters ORDER BY id DESC LIMIT ?");
        let rows = query(sql_owned(self.dialect, &select))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .ctx("reading dead letters")?;
        rows.iter().map(decode_dead_letter).collect()
    }

    /// Stream `id` (with its distinguishing traits, and its events when `details`), if any.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn get_stream(&self, id: i64, details: bool) -> Result<Option<StreamRow>> {
        let mut conn = self.conn().await?;
        let select = format!("SELECT {STREAM_COLS} FROM streams WHERE id = ?");
        let row = query(sql_owned(self.dialect, &select))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .ctx("reading a stream")?;
        let Some(row) = row else { return Ok(None) };
        let mut streams = [decode_stream(&row)?];
        load_dist_traits(&mut conn, self.dialect, &mut streams).await?;
        let [mut stream] = streams;
        if details {
            stream.events = Some(load_stream_events(&mut conn, self.dialect, id).await?);
        }
        Ok(Some(stream))
    }
}

/// A `?` template built at run time, rewritten for the dialect.
pub(crate) fn sql_owned(dialect: Dialect, template: &str) -> String {
    let mut b = SqlBuf::new(dialect);
    let mut parts = template.split('?');
    if let Some(first) = parts.next() {
        b.push(first);
    }
    for part in parts {
        b.param().push(part);
    }
    b.finish()
}

/// The id MySQL reported for an INSERT.
pub(crate) fn last_insert_id(id: Option<i64>, action: &'static str) -> Result<i64> {
    id.ok_or(Error::Database {
        action,
        source: sqlx::Error::Protocol("the database reported no last insert id".into()),
    })
}

/// Whether dead letter `id` holds the message `source`, `raw`.
async fn holds_message(
    conn: &mut AnyConnection,
    dialect: Dialect,
    id: i64,
    source: &str,
    raw: &[u8],
) -> Result<bool> {
    let n: i64 = query(sql(
        dialect,
        "SELECT COUNT(*) FROM dead_letters WHERE id = ? AND source = ? AND raw = ?",
    ))
    .bind(id)
    .bind(source)
    .bind(raw.to_vec())
    .fetch_one(&mut *conn)
    .await
    .and_then(|row| row.try_get(0))
    .ctx("comparing dead letters")?;
    Ok(n > 0)
}

async fn schema_version(conn: &mut AnyConnection) -> Result<i64> {
    query("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get::<i64, _>(0))
        .ctx("reading the schema version")
}

/// Deletes those of streams `ids` (at most [`IN_CHUNK`]) that exist, then their event links and
/// distinguishing traits; returns the ids it found. PostgreSQL and MySQL check no foreign key
/// on those rows (schema version 6), so this is their ON DELETE CASCADE. The streams go first:
/// a transaction adding links to one of them holds its row lock, so the links are deleted
/// after that transaction has committed them.
async fn delete_stream_rows(
    conn: &mut AnyConnection,
    dialect: Dialect,
    ids: &[i64],
) -> Result<HashSet<i64>> {
    const WHAT: &str = "deleting streams";
    // Locked, so that a stream another transaction is deleting meanwhile counts as gone.
    let tail = if dialect.for_update().is_empty() {
        ")"
    } else {
        ") FOR UPDATE"
    };
    let rows = with_ids(dialect, "SELECT id FROM streams WHERE id IN (", ids, tail)
        .fetch_all(&mut *conn)
        .await
        .ctx(WHAT)?;
    let found = id_set(&rows, WHAT)?;
    if found.is_empty() {
        return Ok(found);
    }
    for head in [
        "DELETE FROM streams WHERE id IN (",
        "DELETE FROM stream_events WHERE stream_id IN (",
        "DELETE FROM dist_traits WHERE stream_id IN (",
    ] {
        with_ids(dialect, head, ids, ")")
            .execute(&mut *conn)
            .await
            .ctx(WHAT)?;
    }
    Ok(found)
}

/// The ids in the first column of `rows`.
fn id_set(rows: &[sqlx::any::AnyRow], what: &'static str) -> Result<HashSet<i64>> {
    rows.iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<std::result::Result<_, _>>()
        .ctx(what)
}

/// Per-connection settings.
async fn setup(
    conn: &mut AnyConnection,
    backend: Backend,
    mmap: Option<u64>,
) -> std::result::Result<(), sqlx::Error> {
    match backend {
        Backend::Sqlite => {
            // 16 KiB pages for a new database (an existing one keeps its page size): fewer
            // pages per batch to look up, checksum and write to the log (ingest of 300,000
            // notifications into a new file, alternated: 17.4-18.1k/s with 4 KiB pages,
            // 20.1-21.4k/s with 16 KiB; see BENCHMARKS.md). It must come before anything creates the file's header.
            conn.execute(query(format!("PRAGMA page_size = {SQLITE_PAGE_SIZE}")))
                .await?;
            // journal_mode=WAL is refused (harmlessly) by :memory: databases.
            conn.execute("PRAGMA journal_mode = WAL").await?;
            conn.execute("PRAGMA synchronous = NORMAL").await?;
            conn.execute(query(format!(
                "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
            )))
            .await?;
            conn.execute("PRAGMA foreign_keys = ON").await?;
            // A 16 MiB page cache per connection holds a batch's dirty pages until the commit
            // (64 MiB was no faster on replay and cost 40 MB of RSS at 200k events; reads
            // beyond it come from the OS page cache), and statement journals (multi-row
            // INSERTs inside a transaction) stay in memory.
            conn.execute("PRAGMA cache_size = -16384").await?;
            conn.execute("PRAGMA temp_store = MEMORY").await?;
            if let Some(bytes) = mmap {
                conn.execute(query(format!("PRAGMA mmap_size = {bytes}")))
                    .await?;
            }
            // Checkpoint the WAL into the database every 16,384 pages (64 MiB of 4 KiB pages,
            // 256 MiB of 16 KiB ones) instead of every 1,000: index pages dirtied by many
            // commits are then written back once, and the checkpoint's fsync comes 16 times
            // less often (replay on SQLite: 15.5 s -> 11.3 s for 200k events without triggers;
            // with 16 KiB pages, 64 MiB instead of 256 MiB was 5-10 % slower; BENCHMARKS.md).
            // (Most of the copying is done by the background checkpoints of crate::checkpoint.)
            conn.execute("PRAGMA wal_autocheckpoint = 16384").await?;
        }
        Backend::Postgres => {}
        Backend::MySql => {
            // READ COMMITTED: a locking read of a missing active key takes no gap lock, so
            // racing creators of one stream do not deadlock; each statement sees the latest
            // commits, as on PostgreSQL.
            conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                .await?;
            // Strict: a value that does not fit is an error, never silently truncated.
            conn.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
                .await?;
        }
    }
    Ok(())
}

/// The SELECT of ready streams for `kind` (`{cols}` to fill in; binds active, retry, now[,
/// retry, now], limit), its retry state and the state claimed streams move to.
fn claim_sql(kind: ClaimKind) -> (&'static str, StreamState, StreamState) {
    match kind {
        ClaimKind::Fire => (
            "SELECT {cols} FROM streams WHERE state IN (?, ?) AND fire_timestamp <= ? \
             ORDER BY fire_timestamp, id LIMIT ?",
            StreamState::RetryFire,
            StreamState::Firing,
        ),
        ClaimKind::Expire => (
            "SELECT {cols} FROM streams WHERE state IN (?, ?) AND expire_timestamp <= ? \
             AND (state = ? OR fire_timestamp IS NULL OR fire_timestamp > ?) \
             ORDER BY expire_timestamp, id LIMIT ?",
            StreamState::RetryExpire,
            StreamState::Expiring,
        ),
    }
}

/// Reads table `indexed_traits`.
async fn read_indexed_traits(conn: &mut AnyConnection) -> Result<IndexedTraits> {
    const WHAT: &str = "reading the indexed traits";
    let rows = query("SELECT name FROM indexed_traits")
        .fetch_all(&mut *conn)
        .await
        .ctx(WHAT)?;
    let names = rows
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<std::result::Result<Vec<String>, sqlx::Error>>()
        .ctx(WHAT)?;
    Ok(IndexedTraits::from_names(names))
}
