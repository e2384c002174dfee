//! The store's error type: what failed, with the database error kept as the source.

use crate::dialect::Backend;
use crate::types::StreamState;

/// Errors from connecting to, migrating, reading and writing the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database URL names no backend tach supports.
    #[error(
        "unsupported database URL scheme in {url:?}: expected sqlite://, sqlite::memory:, \
         postgres://, postgresql:// or mysql:// (SQLAlchemy forms such as mysql+pymysql:// \
         are accepted)"
    )]
    UnsupportedUrl {
        /// The URL as given (any password removed).
        url: String,
    },
    /// The operation exists on other backends only.
    #[error("{what} is not available on {backend}")]
    Unsupported {
        /// The operation.
        what: &'static str,
        /// The backend of the store.
        backend: Backend,
    },
    /// Opening the connection pool failed.
    #[error("cannot connect to the {backend} database")]
    Connect {
        /// Which backend the URL named.
        backend: Backend,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// A statement failed.
    #[error("database error while {action}")]
    Database {
        /// What the store was doing, e.g. "inserting events".
        action: &'static str,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// The database has no tach schema at all.
    #[error(
        "the database has no tach schema; run `tach db migrate --config <winchester.yaml>` \
         to create it"
    )]
    SchemaMissing,
    /// The database schema is older than this build of tach expects.
    #[error(
        "the database schema is at version {found} but this tach needs version {expected}; \
         run `tach db migrate --config <winchester.yaml>` to upgrade it"
    )]
    SchemaOutdated {
        /// Version found in the database.
        found: i64,
        /// Version this build expects.
        expected: i64,
    },
    /// The database schema is newer than this build of tach knows.
    #[error(
        "the database schema is at version {found}, newer than version {expected} that this \
         tach knows; upgrade tach"
    )]
    SchemaTooNew {
        /// Version found in the database.
        found: i64,
        /// Newest version this build knows.
        expected: i64,
    },
    /// Applying one migration failed.
    #[error("migration {version} ({name}) failed")]
    Migration {
        /// Version of the failed migration.
        version: i64,
        /// Its name.
        name: &'static str,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// No stream has this id.
    #[error("stream {id} not found")]
    StreamNotFound {
        /// The stream id asked for.
        id: i64,
    },
    /// The stream is in a state that does not allow the operation.
    #[error(
        "stream {id} is in state {state}; only error, expire_error, firing and expiring streams can be reset"
    )]
    Conflict {
        /// The stream id.
        id: i64,
        /// Its current state.
        state: StreamState,
    },
    /// A concurrent transaction stored some of the same message ids while this one was inserting
    /// them (MySQL only, where INSERT has no RETURNING); retrying the transaction resolves it.
    #[error("a concurrent transaction inserted some of the same events; retry the transaction")]
    ConcurrentInsert,
    /// Two different (trigger, distinguishing key) pairs hashed to the same active key.
    #[error(
        "active key collision: stream {stream_id} holds the active key of trigger {trigger_name:?} \
         with a different distinguishing key"
    )]
    ActiveKeyCollision {
        /// The stream holding the key.
        stream_id: i64,
        /// The trigger asked for.
        trigger_name: String,
    },
    /// A row holds a value the store cannot interpret.
    #[error("invalid data in the database: {what}")]
    InvalidData {
        /// What was wrong.
        what: String,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True when retrying the same work later may succeed: the database is unreachable, a
    /// deadlock or serialization failure was detected, a lock wait timed out or SQLite was busy.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { source, .. }
            | Error::Database { source, .. }
            | Error::Migration { source, .. } => is_transient_sqlx(source),
            Error::ConcurrentInsert => true,
            _ => false,
        }
    }

    /// True when the thing asked for does not exist (the API maps it to 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::StreamNotFound { .. })
    }

    /// True when the request conflicts with the current state (the API maps it to 409).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
}

fn is_transient_sqlx(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                // 1205 lock wait timeout, 1213 deadlock, 2006/2013 connection lost.
                return matches!(my.number(), 1205 | 1213 | 2006 | 2013);
            }
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // Primary result codes SQLITE_BUSY (5) and SQLITE_LOCKED (6), extended or not.
                return code
                    .parse::<i32>()
                    .map(|c| matches!(c & 0xff, 5 | 6))
                    .unwrap_or(false);
            }
            // PostgreSQL SQLSTATEs: serialization failure, deadlock, lock not available,
            // connection exceptions (08xxx), admin shutdown / cannot connect now (57P0x).
            matches!(code, "40001" | "40P01" | "55P03")
                || code.starts_with("08")
                || code.starts_with("57P0")
        }
        _ => false,
    }
}

/// Attaches an action description to a sqlx error.
pub(crate) trait Context<T> {
    /// Wraps the error as [`Error::Database`] with `action`.
    fn ctx(self, action: &'static str) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, sqlx::Error> {
    fn ctx(self, action: &'static str) -> Result<T> {
        self.map_err(|source| Error::Database { action, source })
    }
}
