//! Replaying events with an event-time clock.
//!
//! [`Replay`] feeds events to the trigger manager in batches and runs pipeline passes with the
//! clock at the newest event time seen so far (it never goes backwards), so streams fire and
//! expire when they would have live. On PostgreSQL a batch's passes run while the next batch
//! is written (see [`ReplayOptions`]); [`Replay::finish`] runs the last ones, then the
//! final passes at a chosen time, or at [`far_future`] to drain everything.
//!
//! With several writers (PostgreSQL, where one server backend is the limit), each batch is split
//! among them so that events that share a stream stay in one writer's part, in their order (see
//! [`partition`]), and the parts are written concurrently, each in its own transaction. Every
//! event keeps the clock time computed over the whole batch, so the streams come out as with
//! one writer. The passes run on as many managers at once (claims are compare-and-set); the
//! events their handlers add are stored as live ingest processes would store them.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use futures_util::future::join_all;
use tach_distiller::Event;
use tach_engine::TriggerDefinition;
use tach_engine::trigger::DebugCounters;
use tach_store::Backend;

use crate::Result;
use crate::pipeline_manager::{PassReport, PipelineManager};
use crate::trigger_manager::{AddReport, event_clock};

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
    /// The writers' managers (at least one), whose trigger managers write the batches.
    writers: Vec<PipelineManager>,
    /// As many managers again, which run the pipeline passes while the writers write.
    passers: Vec<PipelineManager>,
    triggers: Arc<[TriggerDefinition]>,
    batch: Vec<Event>,
    batch_size: usize,
    clock: Option<DateTime<Utc>>,
    /// Run a batch's passes while the next batch is written.
    overlap: bool,
    /// The clock of the last batch written, whose passes have not run yet.
    passes_due: Option<DateTime<Utc>>,
    totals: ReplayTotals,
}

/// How a [`Replay`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Events per batch (at least 1).
    pub batch_size: usize,
    /// Concurrent transactions each batch is split among (at least 1).
    pub writers: usize,
    /// Run each batch's pipeline passes while the next batch is written, rather than after it.
    pub overlap_passes: bool,
}

impl ReplayOptions {
    /// What suits `backend`, measured (BENCHMARKS.md): on PostgreSQL two writers and
    /// overlapping passes; elsewhere neither. On MySQL concurrent stream inserts deadlock on
    /// InnoDB's index locks, and overlapping passes gained 1 % on a 1M replay; on SQLite one
    /// writer writes at a time, and a pass beside it only waits for its lock.
    pub fn for_backend(backend: Backend, batch_size: usize) -> ReplayOptions {
        let (writers, overlap_passes) = match backend {
            Backend::Postgres => (2, true),
            Backend::MySql | Backend::Sqlite => (1, false),
        };
        ReplayOptions {
            batch_size,
            writers,
            overlap_passes,
        }
    }
}

impl Replay {
    /// A replay as `options` say, through managers made by `make` (all on the same store):
    /// one per writer, and as many again for the pipeline passes; see the module
    /// documentation.
    pub fn new(mut make: impl FnMut() -> PipelineManager, options: ReplayOptions) -> Replay {
        let writers = options.writers.max(1);
        let batch_size = options.batch_size.max(1);
        let mut writer_managers: Vec<PipelineManager> = (0..writers).map(|_| make()).collect();
        let passers = (0..writers).map(|_| make()).collect();
        let triggers = Arc::clone(writer_managers[0].trigger_manager().triggers());
        Replay {
            writers: writer_managers,
            passers,
            triggers,
            batch: Vec::with_capacity(batch_size),
            batch_size,
            clock: None,
            overlap: options.overlap_passes,
            passes_due: None,
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

    /// How many writers the batches are split among.
    pub fn writers(&self) -> usize {
        self.writers.len()
    }

    /// The per-trigger counters of every writer and pass runner, summed.
    pub fn counters(&mut self) -> DebugCounters {
        let mut sum = DebugCounters::new(self.triggers.len());
        for manager in self.writers.iter_mut().chain(&mut self.passers) {
            sum.absorb(manager.trigger_manager().counters());
        }
        sum
    }

    /// Queues an event; writes the batch when it is full (while the previous batch's passes
    /// run, when they overlap).
    ///
    /// # Errors
    /// As [`Self::flush`].
    pub async fn push(&mut self, event: Event) -> Result<()> {
        self.batch.push(event);
        if self.batch.len() >= self.batch_size {
            self.write_batch().await?;
        }
        Ok(())
    }

    /// Writes the queued events, each at the clock as it reaches that event, then runs
    /// pipeline passes at the clock until nothing more is ready.
    ///
    /// # Errors
    /// A store error, or an expiration that cannot be evaluated.
    pub async fn flush(&mut self) -> Result<()> {
        self.write_batch().await?;
        if let Some(clock) = self.passes_due.take() {
            let (pass, outcome) = run_passes(&mut self.passers, clock).await;
            self.totals.pipelines.absorb(&pass);
            outcome?;
        }
        Ok(())
    }

    /// Writes the queued events while the passes due from the batch before run, and leaves
    /// this batch's passes due (without overlapping passes: writes, then runs them).
    ///
    /// The passes at the previous batch's clock take only streams due by then, and this
    /// batch's events come at that clock or later, when such streams no longer take events
    /// (see the trigger manager's event-time clock), so the two do not depend on each other's
    /// order: a stream this batch finds past its fire time is closed and a new one opened,
    /// whether or not a pass has fired it yet.
    async fn write_batch(&mut self) -> Result<()> {
        let (Some(first), Some(newest)) = (
            self.batch.first(),
            self.batch.iter().map(|e| e.timestamp).max(),
        ) else {
            // Nothing queued; the last batch's passes have run or are due.
            return Ok(());
        };
        let start = self.clock.unwrap_or(first.timestamp);
        let clock = start.max(newest);
        self.clock = Some(clock);
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(self.batch_size));
        if !self.overlap {
            let added = write(&mut self.writers, &self.triggers, batch, start).await?;
            self.totals.ingest.absorb(&added);
            self.totals.batches += 1;
            let (pass, outcome) = run_passes(&mut self.passers, clock).await;
            self.totals.pipelines.absorb(&pass);
            return outcome;
        }
        let due = self.passes_due.replace(clock);
        let passes = async {
            match due {
                Some(due) => run_passes(&mut self.passers, due).await,
                None => (PassReport::default(), Ok(())),
            }
        };
        let (added, (pass, outcome)) = tokio::join!(
            write(&mut self.writers, &self.triggers, batch, start),
            passes
        );
        self.totals.pipelines.absorb(&pass);
        let added = added?;
        outcome?;
        self.totals.ingest.absorb(&added);
        self.totals.batches += 1;
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
            let (pass, outcome) = run_passes(&mut self.passers, at).await;
            self.totals.pipelines.absorb(&pass);
            outcome?;
        }
        Ok(self.totals)
    }
}

/// Writes one batch, split among the writers when there are several.
async fn write(
    writers: &mut [PipelineManager],
    triggers: &[TriggerDefinition],
    batch: Vec<Event>,
    start: DateTime<Utc>,
) -> Result<AddReport> {
    if let [writer] = writers {
        return writer
            .trigger_manager()
            .add_events_event_time(&batch, start)
            .await;
    }
    let writer_of = partition(triggers, &batch, writers.len());
    let nows = event_clock(&batch, start);
    let mut parts: Vec<(Vec<Event>, Vec<DateTime<Utc>>)> = vec![Default::default(); writers.len()];
    for ((event, now), writer) in batch.into_iter().zip(nows).zip(writer_of) {
        let part = &mut parts[writer];
        part.0.push(event);
        part.1.push(now);
    }
    let written = join_all(
        writers
            .iter_mut()
            .zip(&parts)
            .filter(|(_, (events, _))| !events.is_empty())
            .map(|(manager, (events, nows))| manager.trigger_manager().add_events_at(events, nows)),
    )
    .await;
    let mut report = AddReport::default();
    for added in written {
        report.absorb(&added?);
    }
    Ok(report)
}

/// Runs pipeline passes at `clock` on every manager at once until each finds nothing to do.
/// Returns what they did, also when one of them ended in an error.
async fn run_passes(
    managers: &mut [PipelineManager],
    clock: DateTime<Utc>,
) -> (PassReport, Result<()>) {
    let passes = join_all(managers.iter_mut().map(|manager| async {
        let mut pass = PassReport::default();
        let outcome = manager.run_until_idle_into(clock, &mut pass).await;
        (pass, outcome)
    }))
    .await;
    let mut total = PassReport::default();
    let mut outcome = Ok(());
    for (pass, result) in passes {
        total.absorb(&pass);
        if outcome.is_ok() {
            outcome = result;
        }
    }
    (total, outcome)
}

/// The writer of each of `events` (`writers` at least 1). Events that share a stream, directly
/// or through other events (a request's events and its instance's day, say), are one group,
/// and a group goes to one writer: each stream's events are then added in order by one
/// transaction, as a single writer would add them. Groups go, largest first, to the writer
/// with the fewest events so far.
fn partition(triggers: &[TriggerDefinition], events: &[Event], writers: usize) -> Vec<usize> {
    let mut groups = Groups::new(events.len());
    let mut first_holder: HashMap<(usize, u64), usize> = HashMap::new();
    for (i, event) in events.iter().enumerate() {
        for (t, trigger) in triggers.iter().enumerate() {
            if let Some(values) = trigger.match_event(event, None) {
                // A hash collision only joins two groups that need not be: still correct.
                let holder = *first_holder.entry((t, values.key_hash())).or_insert(i);
                groups.join(holder, i);
            }
        }
    }
    let roots: Vec<usize> = (0..events.len()).map(|i| groups.root(i)).collect();
    let mut heads: Vec<usize> = (0..events.len()).filter(|&i| roots[i] == i).collect();
    // Largest first; ties by index, so that a batch always splits the same way.
    heads.sort_unstable_by_key(|&head| (Reverse(groups.size[head]), head));
    let mut load = vec![0usize; writers.max(1)];
    let mut writer_of_head = vec![0usize; events.len()];
    for head in heads {
        let least = (0..load.len()).min_by_key(|&w| (load[w], w)).unwrap_or(0);
        load[least] += groups.size[head];
        writer_of_head[head] = least;
    }
    roots.iter().map(|&root| writer_of_head[root]).collect()
}

/// Disjoint sets of event indexes (union by size, path halving).
struct Groups {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl Groups {
    fn new(n: usize) -> Groups {
        Groups {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    fn root(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn join(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.root(a), self.root(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tach_distiller::{Trait, TraitValue};

    use super::*;

    const TRIGGERS: &str = r#"
- name: by_instance
  distinguished_by: [instance_id]
  expiration: "$last + 1h"
  fire_pipeline: p
  expire_pipeline: p
  match_criteria: [{event_type: "compute.*"}]
  fire_criteria: [{event_type: "compute.done"}]
- name: by_request
  distinguished_by: [request_id]
  expiration: "$last + 1h"
  fire_pipeline: p
  expire_pipeline: p
  match_criteria: [{event_type: "*"}]
  fire_criteria: [{event_type: "*.end"}]
"#;

    fn triggers() -> Vec<TriggerDefinition> {
        tach_engine::trigger::parse_triggers(TRIGGERS, Path::new("triggers.yaml"))
            .unwrap()
            .triggers
    }

    fn event(event_type: &str, traits: &[(&str, &str)]) -> Event {
        let mut traits: Vec<Trait> = traits
            .iter()
            .map(|(name, value)| Trait {
                name: (*name).to_owned(),
                value: TraitValue::Text((*value).to_owned()),
            })
            .collect();
        traits.sort_by(|a, b| a.name.cmp(&b.name));
        Event {
            message_id: format!("{event_type}-{traits:?}"),
            event_type: event_type.to_owned(),
            timestamp: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            traits,
        }
    }

    #[test]
    fn events_that_share_a_stream_go_to_one_writer() {
        let events = vec![
            event(
                "compute.start",
                &[("instance_id", "a"), ("request_id", "r1")],
            ),
            event("network.start", &[("request_id", "r1")]),
            event(
                "compute.start",
                &[("instance_id", "b"), ("request_id", "r2")],
            ),
            // Joins a's group through r1, though it names neither a nor b.
            event("image.end", &[("request_id", "r1")]),
            event(
                "compute.update",
                &[("instance_id", "b"), ("request_id", "r3")],
            ),
            event(
                "compute.start",
                &[("instance_id", "c"), ("request_id", "r4")],
            ),
            // Joins b's and c's groups into one.
            event(
                "compute.update",
                &[("instance_id", "c"), ("request_id", "r3")],
            ),
            event("unmatched", &[]),
        ];
        let writers = partition(&triggers(), &events, 2);
        assert_eq!(writers.len(), events.len());
        // a's group: 0, 1, 3; b and c: 2, 4, 5, 6.
        assert!(writers[0] == writers[1] && writers[1] == writers[3]);
        assert!(writers[2] == writers[4] && writers[4] == writers[5] && writers[5] == writers[6]);
        // The largest group first, to writer 0; then the next to the emptier writer 1.
        assert_eq!(writers[2], 0);
        assert_eq!(writers[0], 1);
        // The unmatched event goes alone to the writer with fewer events.
        assert_eq!(writers[7], 1);
        // One writer takes everything.
        assert!(partition(&triggers(), &events, 1).iter().all(|&w| w == 0));
    }

    #[test]
    fn independent_streams_are_spread_evenly() {
        let events: Vec<Event> = (0..90)
            .map(|i| {
                let instance = format!("i{}", i % 30);
                let request = format!("r{i}");
                event(
                    "compute.update",
                    &[("instance_id", &instance), ("request_id", &request)],
                )
            })
            .collect();
        let writers = partition(&triggers(), &events, 3);
        let mut load = [0; 3];
        for (i, &w) in writers.iter().enumerate() {
            load[w] += 1;
            assert_eq!(w, writers[i % 30], "instance {} split", i % 30);
        }
        assert_eq!(load, [30, 30, 30]);
    }
}
