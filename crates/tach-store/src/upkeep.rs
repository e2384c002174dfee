//! Table upkeep on PostgreSQL servers whose autovacuum is off.
//!
//! PostgreSQL plans joins from the statistics that autovacuum's `ANALYZE` keeps current. With
//! autovacuum off, a database that grew from empty has none, and the planner joins whole tables
//! for queries that touch a few rows: reading the events of 200 streams for a pipeline pass took
//! 300–570 ms at 400,000 events instead of about 1 ms, and a replay of 1,000,000 notifications
//! fell from 3,300/s to under 600/s. Nor does anything remove the dead row versions that every
//! stream update leaves: the claims of the pipeline workers then wade through them (a claim
//! scanned 25,000 dead index entries for no live row after 100,000 events). [`StatsUpkeep`]
//! therefore does autovacuum's work on tach's tables itself, in the background: `VACUUM
//! (ANALYZE)` of every table as they grow, once this process has written half as many events as
//! the events table held at the last pass (at least [`MIN_EVENTS`]); and `VACUUM streams`, the
//! table that updates churn, after every [`MIN_EVENTS`] events or a fifth of the streams
//! table's rows, whichever is more (autovacuum's own default threshold). Statistics only need to
//! keep their shape: the planner scales them to the tables' current sizes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sqlx::{AnyConnection, AnyPool, Executor, Row};

use crate::chore::OneAtATime;
use crate::error::{Context, Result};

/// Events written before the first pass, and the least between two.
pub const MIN_EVENTS: u64 = 10_000;

/// The tables whose statistics tach's queries depend on, vacuumed and analyzed one statement
/// each.
const TABLES: [&str; 5] = [
    "VACUUM (ANALYZE) events",
    "VACUUM (ANALYZE) trait_index",
    "VACUUM (ANALYZE) streams",
    "VACUUM (ANALYZE) stream_events",
    "VACUUM (ANALYZE) dist_traits",
];

/// What a claimed pass does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// `VACUUM (ANALYZE)` of every table.
    AllTables,
    /// `VACUUM streams` only.
    Streams,
}

/// Whether, and when next, this process analyzes the tables (shared by a store's clones).
#[derive(Debug, Default)]
pub(crate) struct StatsUpkeep {
    /// PostgreSQL with autovacuum off.
    enabled: AtomicBool,
    /// Events this process has committed.
    written: AtomicU64,
    /// The value of `written` at which the next pass over every table is due.
    next: AtomicU64,
    /// The value of `written` at which the next `VACUUM streams` is due.
    next_streams: AtomicU64,
    /// One pass at a time.
    running: OneAtATime,
    /// Passes over every table started.
    started: AtomicU64,
    /// Passes over every table finished (with or without success).
    finished: AtomicU64,
}

impl StatsUpkeep {
    /// Turns the upkeep on (the server's autovacuum is off).
    pub(crate) fn enable(&self) {
        self.next.store(MIN_EVENTS, Ordering::Relaxed);
        self.next_streams.store(MIN_EVENTS, Ordering::Relaxed);
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Whether this process analyzes the tables.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Passes over every table this process has started.
    pub(crate) fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Passes over every table this process has finished.
    pub(crate) fn finished(&self) -> u64 {
        self.finished.load(Ordering::Acquire)
    }

    /// Counts `events` newly committed.
    pub(crate) fn written(&self, events: u64) {
        if events > 0 && self.enabled() {
            self.written.fetch_add(events, Ordering::Relaxed);
        }
    }

    /// Claims the pass that is due, if any and no other task is running one; the pass over
    /// every table when both are.
    pub(crate) fn claim(&self) -> Option<Pass> {
        if !self.enabled() {
            return None;
        }
        let written = self.written.load(Ordering::Relaxed);
        let pass = if written >= self.next.load(Ordering::Relaxed) {
            Pass::AllTables
        } else if written >= self.next_streams.load(Ordering::Relaxed) {
            Pass::Streams
        } else {
            return None;
        };
        if !self.running.claim() {
            return None;
        }
        if pass == Pass::AllTables {
            self.started.fetch_add(1, Ordering::Relaxed);
        }
        Some(pass)
    }

    /// Runs the claimed `pass` on a connection of `pool` and schedules the next ones. A failure
    /// is logged, not returned: stale statistics and dead rows make queries slower, never wrong.
    pub(crate) async fn run(&self, pool: &AnyPool, pass: Pass) {
        let release = self.running.release_on_drop();
        let started = std::time::Instant::now();
        // Events written after this point count towards the next pass.
        let written = self.written.load(Ordering::Relaxed);
        let outcome = match pool.acquire().await.ctx("acquiring a connection") {
            Ok(mut conn) => upkeep(&mut conn, pass).await,
            Err(e) => Err(e),
        };
        let sizes = match outcome {
            Ok(sizes) => {
                tracing::debug!(
                    ?pass,
                    events = sizes.events,
                    streams = sizes.streams,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "Vacuumed tach's tables (PostgreSQL autovacuum is off)."
                );
                sizes
            }
            Err(e) => {
                tracing::warn!(error = %e, ?pass, "Vacuuming tach's tables failed; retried later.");
                Sizes::default()
            }
        };
        if pass == Pass::AllTables {
            self.next.store(
                written + MIN_EVENTS.max(sizes.events / 2),
                Ordering::Relaxed,
            );
        }
        self.next_streams.store(
            written + MIN_EVENTS.max(sizes.streams / 5),
            Ordering::Relaxed,
        );
        drop(release);
        if pass == Pass::AllTables {
            self.finished.fetch_add(1, Ordering::Release);
        }
    }
}

/// The estimated row counts of the events and streams tables after a pass.
#[derive(Debug, Clone, Copy, Default)]
struct Sizes {
    events: u64,
    streams: u64,
}

/// Runs `pass`; returns the tables' estimated sizes afterwards.
async fn upkeep(conn: &mut AnyConnection, pass: Pass) -> Result<Sizes> {
    let statements: &[&str] = match pass {
        Pass::AllTables => &TABLES,
        Pass::Streams => &["VACUUM streams"],
    };
    for statement in statements {
        conn.execute(*statement).await.ctx("vacuuming tables")?;
    }
    let row = sqlx::query(
        "SELECT CAST(e.reltuples AS BIGINT), CAST(s.reltuples AS BIGINT) FROM pg_class e, \
         pg_class s WHERE e.oid = 'events'::regclass AND s.oid = 'streams'::regclass",
    )
    .fetch_one(&mut *conn)
    .await
    .ctx("reading the tables' sizes")?;
    let size = |i: usize| -> Result<u64> {
        let tuples: i64 = row.try_get(i).ctx("reading the tables' sizes")?;
        // -1: never vacuumed nor analyzed.
        Ok(u64::try_from(tuples).unwrap_or(0))
    };
    Ok(Sizes {
        events: size(0)?,
        streams: size(1)?,
    })
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
    fn passes_are_due_after_min_events_and_only_when_enabled() {
        let upkeep = StatsUpkeep::default();
        upkeep.written(MIN_EVENTS * 2);
        assert_eq!(upkeep.claim(), None, "disabled: never due");
        upkeep.enable();
        upkeep.written(MIN_EVENTS - 1);
        assert_eq!(upkeep.claim(), None);
        upkeep.written(1);
        assert_eq!(upkeep.claim(), Some(Pass::AllTables));
        assert_eq!(upkeep.claim(), None, "one pass at a time");
    }

    #[test]
    fn streams_are_vacuumed_between_passes_over_every_table() {
        let upkeep = StatsUpkeep::default();
        upkeep.enable();
        // After a pass over every table of a 100,000-event, 30,000-stream database: the next
        // such pass after 50,000 more events, the streams after 10,000 (30,000 / 5 is less).
        upkeep.next.store(50_000, Ordering::Relaxed);
        upkeep.next_streams.store(MIN_EVENTS, Ordering::Relaxed);
        upkeep.written(MIN_EVENTS);
        assert_eq!(upkeep.claim(), Some(Pass::Streams));
        assert_eq!(
            upkeep.started(),
            0,
            "only passes over every table count as started"
        );
        drop(upkeep.running.release_on_drop());
        upkeep.written(40_000);
        assert_eq!(
            upkeep.claim(),
            Some(Pass::AllTables),
            "both due: every table"
        );
    }
}
