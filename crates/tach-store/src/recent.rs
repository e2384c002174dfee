//! The recent part of the trait index, on SQLite.
//!
//! `trait_index` keys are hashes, so its inserts land all over the B-tree: once the tree has
//! more leaves than a batch has rows, nearly every insert dirties a page of its own, which the
//! commit writes to the WAL and the checkpoint copies into the file. On a file of a million
//! events that halved ingest (BENCHMARKS.md). SQLite therefore writes new index rows to the small
//! `trait_index_recent` (same columns and key), whose pages stay few and cached, and moves them
//! into `trait_index` in bulk, in key order, once a process has written [`MERGE_ROWS`] of them:
//! the big tree's pages are then rewritten once per merge instead of once per batch. Lookups
//! read both tables; deletes delete from both.
//!
//! A merge runs inside the writer's transaction, which holds SQLite's write lock, so every
//! reader sees each row in exactly one of the two tables. The count of rows written is per
//! process: with several writing processes the recent table holds at most their thresholds'
//! sum, and any of them may merge what the others wrote.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::AnyConnection;

use crate::dialect::Backend;
use crate::error::{Context, Result};
use crate::sql::query;

/// Rows written to `trait_index_recent` by one process between two merges (50,000 events of
/// five indexed traits).
pub const MERGE_ROWS: u64 = 250_000;

/// Whether `backend` writes new index rows to `trait_index_recent` (SQLite only: a server's
/// commit does not write every page it dirtied).
pub(crate) fn stages(backend: Backend) -> bool {
    backend == Backend::Sqlite
}

/// The tables a trait lookup, trim or rebuild on `backend` covers.
pub(crate) fn index_tables(backend: Backend) -> &'static [&'static str] {
    if stages(backend) {
        &["trait_index", "trait_index_recent"]
    } else {
        &["trait_index"]
    }
}

/// This process's rows written to `trait_index_recent` since it last merged (shared by clones).
#[derive(Debug)]
pub(crate) struct RecentIndex {
    written: AtomicU64,
    merge_rows: AtomicU64,
}

impl Default for RecentIndex {
    fn default() -> RecentIndex {
        RecentIndex {
            written: AtomicU64::new(0),
            merge_rows: AtomicU64::new(MERGE_ROWS),
        }
    }
}

impl RecentIndex {
    /// Counts `rows` written; true when a merge is due (the count then starts again).
    pub fn wrote(&self, rows: usize) -> bool {
        let rows = rows as u64;
        let written = self.written.fetch_add(rows, Ordering::Relaxed) + rows;
        if written >= self.merge_rows.load(Ordering::Relaxed) {
            self.written.store(0, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Merges after `rows` written from now on (tests).
    #[cfg(any(test, feature = "testing"))]
    pub fn set_merge_rows(&self, rows: u64) {
        self.merge_rows.store(rows.max(1), Ordering::Relaxed);
    }
}

/// Moves every row of `trait_index_recent` into `trait_index`, inside the caller's transaction.
pub(crate) async fn merge(conn: &mut AnyConnection) -> Result<()> {
    const WHAT: &str = "merging the recent trait index";
    let started = std::time::Instant::now();
    let moved = query(
        "INSERT OR IGNORE INTO trait_index (k, event_id) \
         SELECT k, event_id FROM trait_index_recent ORDER BY k, event_id",
    )
    .execute(&mut *conn)
    .await
    .ctx(WHAT)?
    .rows_affected();
    query("DELETE FROM trait_index_recent")
        .execute(&mut *conn)
        .await
        .ctx(WHAT)?;
    tracing::debug!(rows = moved, elapsed = ?started.elapsed(), "Merged the recent trait index.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_is_due_each_time_the_threshold_is_reached() {
        let recent = RecentIndex::default();
        recent.set_merge_rows(10);
        assert!(!recent.wrote(4));
        assert!(!recent.wrote(5));
        assert!(recent.wrote(1));
        assert!(!recent.wrote(9));
        assert!(recent.wrote(25));
        assert!(!recent.wrote(0));
    }
}
