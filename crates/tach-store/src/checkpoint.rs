//! WAL checkpoints of SQLite file databases, in the background.
//!
//! A SQLite writer in WAL mode copies the log back into the database itself, inside the commit
//! that crosses `wal_autocheckpoint`, and fsyncs the database file there, while nothing else of
//! the batch can run. [`Checkpointer`] runs `PRAGMA wal_checkpoint(PASSIVE)` on another pooled
//! connection instead, at most every [`INTERVAL`], started from [`crate::Store::begin`]: a
//! passive checkpoint takes no lock the writer waits for, so it copies the log on the other core
//! while the writer goes on. The writer's own autocheckpoint stays as the backstop (it also
//! restarts the log); it then finds most of the log already copied.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, AnyPool, Row};

use crate::error::{Context, Result};

/// The least time between the starts of two background checkpoints.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// Whether, and when next, this process checkpoints in the background (shared by clones).
#[derive(Debug, Default)]
pub(crate) struct Checkpointer {
    /// A SQLite file database.
    enabled: AtomicBool,
    /// One checkpoint at a time.
    running: AtomicBool,
    /// When the last one started.
    last: Mutex<Option<Instant>>,
    /// Checkpoints finished.
    finished: AtomicU64,
    /// WAL frames the finished checkpoints copied into the database.
    frames: AtomicU64,
}

impl Checkpointer {
    /// Turns background checkpoints on.
    pub(crate) fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Whether this process checkpoints in the background.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Checkpoints finished, and the WAL frames they copied.
    pub(crate) fn finished(&self) -> (u64, u64) {
        (
            self.finished.load(Ordering::Acquire),
            self.frames.load(Ordering::Acquire),
        )
    }

    /// Claims the next checkpoint when [`INTERVAL`] has passed and none is running.
    pub(crate) fn claim(&self) -> bool {
        if !self.enabled() {
            return false;
        }
        let Ok(mut last) = self.last.lock() else {
            return false;
        };
        if last.is_some_and(|at| at.elapsed() < INTERVAL)
            || self
                .running
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Runs the claimed checkpoint on a connection of `pool`. A failure is logged, not
    /// returned: the writer's own autocheckpoint remains.
    pub(crate) async fn run(&self, pool: &AnyPool) {
        let outcome = match pool.acquire().await.ctx("acquiring a connection") {
            Ok(mut conn) => checkpoint(&mut conn).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(frames) => {
                self.frames.fetch_add(frames, Ordering::AcqRel);
            }
            Err(e) => tracing::debug!(error = %e, "A background WAL checkpoint failed."),
        }
        self.running.store(false, Ordering::Release);
        self.finished.fetch_add(1, Ordering::Release);
    }
}

/// Runs a passive checkpoint; returns the frames it copied into the database.
async fn checkpoint(conn: &mut AnyConnection) -> Result<u64> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *conn)
        .await
        .ctx("checkpointing the WAL")?;
    // (busy, frames in the log, frames checkpointed); -1 when not in WAL mode.
    let done: i64 = row.try_get(2).ctx("reading the checkpoint's result")?;
    Ok(u64::try_from(done).unwrap_or(0))
}
