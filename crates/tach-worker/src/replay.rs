//! Replaying events with an event-time clock.
//!
//! [`Replay`] feeds events to the trigger manager in batches and, after each batch, runs the
//! pipeline manager with the clock at the newest event time seen so far (it never goes
//! backwards), so streams fire and expire when they would have live. [`Replay::finish`] runs the
//! final passes at a chosen time, or at [`far_future`] to drain everything.

use chrono::{DateTime, TimeZone, Utc};
use tach_distiller::Event;

use crate::Result;
use crate::pipeline_manager::{PassReport, PipelineManager};
use crate::trigger_manager::AddReport;

/// A time after every realistic stream's fire and expiry times (9999-01-01T00:00:00Z), used
/// by `--drain`.
pub fn far_future() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Totals of a replay so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayTotals {
    /// What storing the replayed events did.
    pub ingest: AddReport,
    /// What the pipeline passes did (their new events included).
    pub pipelines: PassReport,
    /// Batches written.
    pub batches: u64,
}

/// Batches events into the triggers and runs pipeline passes on an event-time clock.
pub struct Replay {
    manager: PipelineManager,
    batch: Vec<Event>,
    batch_size: usize,
    clock: Option<DateTime<Utc>>,
    totals: ReplayTotals,
}

impl Replay {
    /// A replay through `manager`, writing `batch_size` events per transaction (at least 1).
    pub fn new(manager: PipelineManager, batch_size: usize) -> Replay {
        let batch_size = batch_size.max(1);
        Replay {
            manager,
            batch: Vec::with_capacity(batch_size),
            batch_size,
            clock: None,
            totals: ReplayTotals::default(),
        }
    }

    /// The clock: the newest event time written (`None` before the first batch).
    pub fn clock(&self) -> Option<DateTime<Utc>> {
        self.clock
    }

    /// The totals so far.
    pub fn totals(&self) -> &ReplayTotals {
        &self.totals
    }

    /// The pipeline manager (and through it the trigger manager and its counters).
    pub fn manager(&mut self) -> &mut PipelineManager {
        &mut self.manager
    }

    /// Queues an event; writes the batch when it is full.
    ///
    /// # Errors
    /// As [`Self::flush`].
    pub async fn push(&mut self, event: Event) -> Result<()> {
        self.batch.push(event);
        if self.batch.len() >= self.batch_size {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes the queued events, each at the clock as it reaches that event, then runs
    /// pipeline passes at the clock until nothing more is ready.
    ///
    /// # Errors
    /// A store error, or an expiration that cannot be evaluated.
    pub async fn flush(&mut self) -> Result<()> {
        let newest = self.batch.iter().map(|e| e.timestamp).max();
        let start = match (self.clock, self.batch.first()) {
            (Some(clock), _) => clock,
            (None, Some(first)) => first.timestamp,
            (None, None) => return Ok(()),
        };
        let clock = newest.map_or(start, |newest| start.max(newest));
        self.clock = Some(clock);
        if !self.batch.is_empty() {
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(self.batch_size));
            let added = self
                .manager
                .trigger_manager()
                .add_events_event_time(&batch, start)
                .await?;
            self.totals.ingest.absorb(&added);
            self.totals.batches += 1;
        }
        let pass = self.manager.run_until_idle(clock).await?;
        self.totals.pipelines.absorb(&pass);
        Ok(())
    }

    /// Writes what is queued, then runs the final passes at `at` (when later than the clock;
    /// [`far_future`] drains every stream). Returns the totals.
    ///
    /// # Errors
    /// As [`Self::flush`].
    pub async fn finish(&mut self, at: Option<DateTime<Utc>>) -> Result<ReplayTotals> {
        self.flush().await?;
        if let Some(at) = at
            && self.clock.is_none_or(|clock| at > clock)
        {
            self.clock = Some(at);
            let pass = self.manager.run_until_idle(at).await?;
            self.totals.pipelines.absorb(&pass);
        }
        Ok(self.totals)
    }
}
