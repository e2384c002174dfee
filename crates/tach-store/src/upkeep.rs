//! Table statistics on PostgreSQL servers whose autovacuum is off.
//!
//! PostgreSQL plans joins from the statistics that autovacuum's `ANALYZE` keeps current. With
//! autovacuum off, a database that grew from empty has none, and the planner joins whole tables
//! for queries that touch a few rows: reading the events of 200 streams for a pipeline pass took
//! 300–570 ms at 400,000 events instead of about 1 ms, and a replay of 1,000,000 notifications
//! fell from 3,300/s to under 600/s. [`StatsUpkeep`] then analyzes tach's tables itself, in the
//! background, as they grow: once this process has written half as many events as the table
//! held at the last `ANALYZE` (at least [`MIN_EVENTS`]). Statistics only need to keep their
//! shape: the planner scales them to the tables' current sizes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sqlx::{AnyConnection, AnyPool, Executor, Row};

use crate::chore::OneAtATime;
use crate::error::{Context, Result};

/// Events written before the first `ANALYZE`, and the least between two.
pub const MIN_EVENTS: u64 = 10_000;

/// The tables whose statistics tach's queries depend on, analyzed one statement each.
const TABLES: [&str; 5] = [
    "ANALYZE events",
    "ANALYZE trait_index",
    "ANALYZE streams",
    "ANALYZE stream_events",
    "ANALYZE dist_traits",
];

/// Whether, and when next, this process analyzes the tables (shared by a store's clones).
#[derive(Debug, Default)]
pub(crate) struct StatsUpkeep {
    /// PostgreSQL with autovacuum off.
    enabled: AtomicBool,
    /// Events this process has committed.
    written: AtomicU64,
    /// The value of `written` at which the next `ANALYZE` is due.
    next: AtomicU64,
    /// One `ANALYZE` at a time.
    running: OneAtATime,
    /// `ANALYZE` passes started.
    started: AtomicU64,
    /// `ANALYZE` passes finished (with or without success).
    finished: AtomicU64,
}

impl StatsUpkeep {
    /// Turns the upkeep on (the server's autovacuum is off).
    pub(crate) fn enable(&self) {
        self.next.store(MIN_EVENTS, Ordering::Relaxed);
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Whether this process analyzes the tables.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// `ANALYZE` passes this process has started.
    pub(crate) fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// `ANALYZE` passes this process has finished.
    pub(crate) fn finished(&self) -> u64 {
        self.finished.load(Ordering::Acquire)
    }

    /// Counts `events` newly committed.
    pub(crate) fn written(&self, events: u64) {
        if events > 0 && self.enabled() {
            self.written.fetch_add(events, Ordering::Relaxed);
        }
    }

    /// Claims the next `ANALYZE` when it is due and no other task is running one.
    pub(crate) fn claim(&self) -> bool {
        let claimed = self.enabled()
            && self.written.load(Ordering::Relaxed) >= self.next.load(Ordering::Relaxed)
            && self.running.claim();
        if claimed {
            self.started.fetch_add(1, Ordering::Relaxed);
        }
        claimed
    }

    /// Runs the claimed `ANALYZE` on a connection of `pool` and schedules the next one. A
    /// failure is logged, not returned: stale statistics make queries slower, never wrong.
    pub(crate) async fn run(&self, pool: &AnyPool) {
        let release = self.running.release_on_drop();
        let started = std::time::Instant::now();
        // Events written after this point count towards the next pass.
        let written = self.written.load(Ordering::Relaxed);
        let outcome = match pool.acquire().await.ctx("acquiring a connection") {
            Ok(mut conn) => analyze(&mut conn).await,
            Err(e) => Err(e),
        };
        let events = match outcome {
            Ok(events) => {
                tracing::debug!(
                    events,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "Analyzed tach's tables (PostgreSQL autovacuum is off)."
                );
                events
            }
            Err(e) => {
                tracing::warn!(error = %e, "Analyzing tach's tables failed; retried later.");
                0
            }
        };
        self.next
            .store(written + MIN_EVENTS.max(events / 2), Ordering::Relaxed);
        drop(release);
        self.finished.fetch_add(1, Ordering::Release);
    }
}

/// Runs `ANALYZE`; returns the events table's estimated row count afterwards.
async fn analyze(conn: &mut AnyConnection) -> Result<u64> {
    for statement in TABLES {
        conn.execute(statement).await.ctx("analyzing tables")?;
    }
    let row = sqlx::query(
        "SELECT CAST(reltuples AS BIGINT) FROM pg_class WHERE oid = 'events'::regclass",
    )
    .fetch_one(&mut *conn)
    .await
    .ctx("reading the events table's size")?;
    let tuples: i64 = row.try_get(0).ctx("reading the events table's size")?;
    Ok(u64::try_from(tuples).unwrap_or(0))
}

/// Whether the PostgreSQL server behind `conn` runs autovacuum.
pub(crate) async fn autovacuum_on(conn: &mut AnyConnection) -> Result<bool> {
    let row = sqlx::query("SELECT current_setting('autovacuum')")
        .fetch_one(&mut *conn)
        .await
        .ctx("reading the autovacuum setting")?;
    let setting: String = row.try_get(0).ctx("reading the autovacuum setting")?;
    Ok(setting != "off")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_analyze_is_due_after_min_events_and_only_when_enabled() {
        let upkeep = StatsUpkeep::default();
        upkeep.written(MIN_EVENTS * 2);
        assert!(!upkeep.claim(), "disabled: never due");
        upkeep.enable();
        upkeep.written(MIN_EVENTS - 1);
        assert!(!upkeep.claim());
        upkeep.written(1);
        assert!(upkeep.claim());
        assert!(!upkeep.claim(), "one ANALYZE at a time");
    }
}
