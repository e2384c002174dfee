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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, AnyPool, Row};

use crate::chore::OneAtATime;
use crate::error::{Context, Result};

/// The least time between the starts of two background checkpoints.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// Whether, and when next, this process checkpoints in the background (shared by clones).
#[derive(Debug, Default)]
pub(crate) struct Checkpointer {
    /// A SQLite file database (with a pool of two connections or more).
    enabled: bool,
    /// One checkpoint at a time.
    running: OneAtATime,
    /// When the last one started.
    last: Mutex<Option<Instant>>,
    /// Checkpoints that succeeded.
    succeeded: AtomicU64,
    /// Frames of the log in the database after the last one that succeeded.
    frames: AtomicU64,
    /// When a failure was last logged at WARN (failures repeat every interval).
    last_warning: Mutex<Option<Instant>>,
}

/// The least time between two WARN lines about failed checkpoints.
const WARN_EVERY: Duration = Duration::from_secs(60);

impl Checkpointer {
    /// A checkpointer that runs checkpoints only when `enabled`.
    pub(crate) fn new(enabled: bool) -> Checkpointer {
        Checkpointer {
            enabled,
            ..Checkpointer::default()
        }
    }

    /// Whether this process checkpoints in the background.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Checkpoints that succeeded, and the frames of the log in the database after the last.
    pub(crate) fn succeeded(&self) -> (u64, u64) {
        (
            self.succeeded.load(Ordering::Acquire),
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
        if last.is_some_and(|at| at.elapsed() < INTERVAL) || !self.running.claim() {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Runs the claimed checkpoint on a connection of `pool`. A failure is logged (at WARN at
    /// most every minute), not returned: the writer's own autocheckpoint remains.
    pub(crate) async fn run(&self, pool: &AnyPool) {
        let _release = self.running.release_on_drop();
        if pool.is_closed() {
            return;
        }
        let outcome = match pool.acquire().await.ctx("acquiring a connection") {
            Ok(mut conn) => checkpoint(&mut conn).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(frames) => {
                self.frames.store(frames, Ordering::Release);
                self.succeeded.fetch_add(1, Ordering::AcqRel);
            }
            Err(_) if pool.is_closed() => {}
            Err(e) => {
                let warn = self.last_warning.lock().is_ok_and(|mut last| {
                    let due = last.is_none_or(|at| at.elapsed() >= WARN_EVERY);
                    if due {
                        *last = Some(Instant::now());
                    }
                    due
                });
                if warn {
                    tracing::warn!(error = %e,
                        "A background WAL checkpoint failed; the writer still checkpoints itself.");
                } else {
                    tracing::debug!(error = %e, "A background WAL checkpoint failed.");
                }
            }
        }
    }
}

/// Runs a passive checkpoint; returns how many frames of the log are now in the database.
async fn checkpoint(conn: &mut AnyConnection) -> Result<u64> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *conn)
        .await
        .ctx("checkpointing the WAL")?;
    // (busy, frames in the log, frames checkpointed); -1 when not in WAL mode.
    let done: i64 = row.try_get(2).ctx("reading the checkpoint's result")?;
    Ok(u64::try_from(done).unwrap_or(0))
}
