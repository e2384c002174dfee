//! The trigger manager: stores batches of events and assigns them to the streams of every
//! trigger that matches them.
//!
//! One store transaction per batch: the events are inserted (duplicates skipped), then each new
//! event goes, trigger by trigger, into the open stream for its distinguishing values. Streams
//! touched by a batch are locked once (the store's locking read), kept in memory for the rest of
//! the batch and written once at the end, so a batch costs a handful of statements per stream
//! rather than per event. The open stream of a (trigger, values) pair is unique in the database
//! (its active key), so concurrent ingest processes never open two streams for one pair. On
//! PostgreSQL a batch opens its missing streams and locks its existing ones in one pass in
//! active-key order, so there is no race to lose and concurrent batches do not deadlock. On
//! MySQL the existing streams are locked in active-key order and the missing ones inserted in
//! key order; the loser of a race redoes its batch and then finds and locks the winner's
//! stream, and a deadlock is retried.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tach_distiller::Event;
use tach_engine::trigger::{DebugCounters, TriggerDebug};
use tach_engine::{DistinguishingValues, StreamProgress, TriggerDefinition};
use tach_store::{Store, StoreTx, StreamRow};

use crate::convert;
use crate::{Error, Result};

/// How many times a batch is retried after a transient store error.
const BATCH_RETRIES: u32 = 5;
/// How many times in a row a batch is redone because another batch opened the same one of its
/// streams first.
const STREAM_RACE_ATTEMPTS: u32 = 8;
/// How many times in all a batch is redone because other batches opened its streams first.
/// Each lost race on a new key is progress (that stream exists now), and a batch of new
/// instances races on many keys while another worker takes the same traffic; see
/// [`RaceBudget`].
const STREAM_RACES_PER_BATCH: u32 = 64;

/// What one [`TriggerManager::add_events`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddReport {
    /// Events newly stored.
    pub stored: u64,
    /// Events skipped because their message id was already stored (or repeated in the batch).
    pub duplicates: u64,
    /// Streams opened.
    pub streams_created: u64,
    /// Event-to-stream assignments made.
    pub stream_events: u64,
    /// Streams that became ready to fire.
    pub ready_to_fire: u64,
    /// Open streams closed because their expiry (or, on the event-time clock, their fire time)
    /// had passed when a new event came.
    pub streams_detached: u64,
    /// Transient errors the batch was retried after.
    pub retries: u64,
}

impl AddReport {
    /// Adds another report's counts to this one.
    pub fn absorb(&mut self, other: &AddReport) {
        self.stored += other.stored;
        self.duplicates += other.duplicates;
        self.streams_created += other.streams_created;
        self.stream_events += other.stream_events;
        self.ready_to_fire += other.ready_to_fire;
        self.streams_detached += other.streams_detached;
        self.retries += other.retries;
    }
}

/// How long to wait before retry `attempt` (1-based): doubling from 20 ms, with jitter so that
/// the transactions that collided do not collide again.
pub(crate) fn backoff(attempt: u64) -> Duration {
    let base = 20u64 << attempt.min(6);
    let jitter = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()),
    ) % base;
    Duration::from_millis(base + jitter)
}

/// Each event's time on the event-time clock: `max(start, newest timestamp among it and the
/// events before it)`.
pub(crate) fn event_clock(events: &[Event], start: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    events
        .iter()
        .scan(start, |now, event| {
            *now = (*now).max(event.timestamp);
            Some(*now)
        })
        .collect()
}

/// Which clock events are added on; each event's clock time is given with the batch.
#[derive(Debug, Clone, Copy)]
enum Clock {
    /// Wall-clock time (live ingest: the time the batch arrived).
    Fixed,
    /// The newest event time so far (replay).
    EventTime,
}

impl Clock {
    /// Whether `stream` takes an event at clock time `now`. Live, an open stream takes events
    /// until its expiry, even past its fire time until a worker fires it (as in winchester).
    /// On the event-time clock a stream also stops at its fire time, as if a worker had fired
    /// it then, so that a replay's streams do not depend on where its batches end, nor on
    /// whether the pipeline passes run between batches or beside the next one.
    fn takes(self, stream: &StreamProgress, now: DateTime<Utc>) -> bool {
        match self {
            Clock::Fixed => stream.accepts_at(now),
            Clock::EventTime => stream.open_at(now),
        }
    }
}

/// A (trigger, distinguishing key) pair a batch touches.
struct KeyInfo {
    trigger: usize,
    key: String,
    values: DistinguishingValues,
    /// Index of the first event of the batch that joins it.
    first: usize,
}

/// A stream touched by the current batch.
struct Slot {
    /// Its id; 0 for a successor until it is written.
    id: i64,
    progress: StreamProgress,
    /// Its row needs an update at the end of the batch.
    dirty: bool,
    /// Its generation: 0 for a stored or newly created stream, n + 1 for the successor of a
    /// stream of generation n.
    generation: u32,
}

/// A new stream's progress from its first event, computed before it is known whether the
/// store opens it (PostgreSQL's one-pass open or lock).
#[derive(Clone)]
struct Started {
    progress: StreamProgress,
    /// The first event made it ready to fire.
    ready: bool,
    /// What starting it counted, for the trigger's counters once it is opened.
    counted: TriggerDebug,
}

/// A stream opened within a batch because the key's previous stream closed there (see
/// [`Clock::takes`]).
struct Successor {
    /// Its key (index into the batch's keys).
    key: usize,
    /// Its slot, and the slot of the stream it replaces (indexes into the batch's slots).
    slot: usize,
    predecessor: usize,
    /// Its slot's generation (successors are written in generation order).
    generation: u32,
}

/// Stores events and assigns them to streams; see the module documentation.
pub struct TriggerManager {
    store: Store,
    triggers: Arc<[TriggerDefinition]>,
    counters: DebugCounters,
    statistics_period: Duration,
    last_statistics: Instant,
}

impl TriggerManager {
    /// A manager for `triggers` on `store`, logging debug counters every `statistics_period`.
    pub fn new(
        store: Store,
        triggers: Arc<[TriggerDefinition]>,
        statistics_period: Duration,
    ) -> TriggerManager {
        let counters = DebugCounters::new(triggers.len());
        TriggerManager {
            store,
            triggers,
            counters,
            statistics_period,
            last_statistics: Instant::now(),
        }
    }

    /// The trigger definitions.
    pub fn triggers(&self) -> &Arc<[TriggerDefinition]> {
        &self.triggers
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The per-trigger debug counters (indexed like [`Self::triggers`]).
    pub fn counters(&self) -> &DebugCounters {
        &self.counters
    }

    /// The counters of the trigger named `name`, for the pipeline manager to count into.
    pub fn counters_of(&mut self, name: &str) -> Option<&mut TriggerDebug> {
        let index = self.triggers.iter().position(|t| t.name == name)?;
        Some(self.counters.trigger_mut(index))
    }

    /// Logs and resets the counters of triggers with `debug_level` > 0 when `statistics_period`
    /// has passed since the last time.
    pub fn maybe_log_statistics(&mut self) {
        if self.last_statistics.elapsed() >= self.statistics_period {
            self.last_statistics = Instant::now();
            self.counters.log_and_reset(&self.triggers);
        }
    }

    /// Stores `events` and assigns the new ones to streams at clock time `now`, in one
    /// transaction; retried a few times on transient errors (deadlocks, busy database).
    ///
    /// # Errors
    /// The store error that ended the last attempt, or an expiration that cannot be evaluated.
    pub async fn add_events(&mut self, events: &[Event], now: DateTime<Utc>) -> Result<AddReport> {
        self.add_with_clock(events, &vec![now; events.len()], Clock::Fixed)
            .await
    }

    /// As [`Self::add_events`] with an event-time clock (replay): each event is added at
    /// clock time `max(start, newest timestamp among it and the events before it)`.
    ///
    /// # Errors
    /// As [`Self::add_events`].
    pub async fn add_events_event_time(
        &mut self,
        events: &[Event],
        start: DateTime<Utc>,
    ) -> Result<AddReport> {
        let nows = event_clock(events, start);
        self.add_with_clock(events, &nows, Clock::EventTime).await
    }

    /// As [`Self::add_events_event_time`] with each event's clock time given (`nows[i]` for
    /// `events[i]`): a part of a replay batch whose clock was computed over the whole batch.
    ///
    /// # Errors
    /// As [`Self::add_events`]; [`Error::ClockTimes`] when `nows` is not as long as `events`.
    pub async fn add_events_at(
        &mut self,
        events: &[Event],
        nows: &[DateTime<Utc>],
    ) -> Result<AddReport> {
        if nows.len() != events.len() {
            return Err(Error::ClockTimes {
                events: events.len(),
                times: nows.len(),
            });
        }
        self.add_with_clock(events, nows, Clock::EventTime).await
    }

    async fn add_with_clock(
        &mut self,
        events: &[Event],
        nows: &[DateTime<Utc>],
        clock: Clock,
    ) -> Result<AddReport> {
        let mut retries = 0;
        let mut races = RaceBudget::default();
        loop {
            let saved = self.counters.clone();
            match self.try_add(events, nows, clock).await {
                Ok(mut report) => {
                    report.retries = retries + u64::from(races.lost);
                    self.maybe_log_statistics();
                    return Ok(report);
                }
                Err(Error::LostStreamRace { trigger, key }) => {
                    // The winner has committed: redo at once, and its stream is locked in order.
                    self.counters = saved;
                    races.lose(trigger, key)?;
                }
                Err(e) if e.is_transient() && retries < u64::from(BATCH_RETRIES) => {
                    self.counters = saved;
                    retries += 1;
                    tracing::warn!(error = %e, attempt = retries, "Retrying a batch of events.");
                    tokio::time::sleep(backoff(retries)).await;
                }
                Err(e) => {
                    self.counters = saved;
                    return Err(e);
                }
            }
        }
    }

    /// Writes the successors of streams that closed within the batch, one generation at a
    /// time: their predecessors release the keys (one statement), then the successors take them
    /// (one multi-row insert), each with the state it reached by the end of the batch. Sets
    /// each successor's id in its slot.
    async fn write_successors(
        &self,
        tx: &mut StoreTx,
        keys: &[KeyInfo],
        successors: &mut [Successor],
        slots: &mut [Slot],
    ) -> Result<()> {
        successors.sort_by_key(|s| s.generation);
        for members in successors.chunk_by(|a, b| a.generation == b.generation) {
            // Earlier generations are written: every predecessor has its id.
            let predecessors: Vec<i64> = members.iter().map(|s| slots[s.predecessor].id).collect();
            tx.detach_streams(&predecessors).await?;
            let news = members
                .iter()
                .map(|s| {
                    let info = &keys[s.key];
                    let progress = &slots[s.slot].progress;
                    convert::new_stream(
                        &self.triggers[info.trigger].name,
                        &info.key,
                        &info.values,
                        progress,
                    )
                })
                .collect();
            let rows = tx.insert_streams_deferred(news).await?;
            for (s, row) in members.iter().zip(rows) {
                let Some(row) = row else {
                    let info = &keys[s.key];
                    return Err(lost_race(&self.triggers[info.trigger], &info.key));
                };
                let slot = &mut slots[s.slot];
                slot.id = row.id;
                // Written with its final state: no update.
                slot.dirty = false;
            }
        }
        Ok(())
    }

    /// One attempt: match every new event first (pure), then lock or open the streams of the
    /// batch in a fixed order (the store's row locks go by active key) so that concurrent
    /// batches lock in the same order and do not deadlock, then add the events in order.
    async fn try_add(
        &mut self,
        events: &[Event],
        nows: &[DateTime<Utc>],
        clock: Clock,
    ) -> Result<AddReport> {
        let mut report = AddReport::default();
        let mut tx = self.store.begin().await?;
        let ids = tx.insert_events(events).await?;
        let triggers = Arc::clone(&self.triggers);

        // Matching: which (trigger, key) each new event joins, and each key's first event.
        let mut keys: Vec<KeyInfo> = Vec::new();
        let mut key_index: HashMap<(usize, String), usize> = HashMap::new();
        let mut matches: Vec<(usize, usize)> = Vec::new();
        for (i, (event, id)) in events.iter().zip(&ids).enumerate() {
            if id.is_none() {
                report.duplicates += 1;
                continue;
            }
            report.stored += 1;
            for (t, trigger) in triggers.iter().enumerate() {
                let debug = self.counters.trigger_mut(t);
                let Some(values) = trigger.match_event(event, Some(debug)) else {
                    continue;
                };
                let next = keys.len();
                let key = values.key();
                let k = *key_index.entry((t, key.clone())).or_insert(next);
                if k == next {
                    keys.push(KeyInfo {
                        trigger: t,
                        key,
                        values,
                        first: i,
                    });
                }
                matches.push((i, k));
            }
        }

        // Locking: each key's stream, in a fixed order, with its first event added.
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (&keys[a], &keys[b]);
            (triggers[a.trigger].name.as_str(), a.key.as_str())
                .cmp(&(triggers[b.trigger].name.as_str(), b.key.as_str()))
        });
        // PostgreSQL: every key's stream is opened, or its open stream locked, in one pass in
        // key order, so no other batch can open it between the lookup and the insert.
        let mut opened: Vec<Option<(StreamRow, Started)>> = vec![None; keys.len()];
        if tx.opens_or_locks_streams() {
            let mut candidates = Vec::with_capacity(keys.len());
            let mut news = Vec::with_capacity(keys.len());
            for (k, info) in keys.iter().enumerate() {
                let trigger = &triggers[info.trigger];
                let at = nows[info.first];
                // Counted aside, and into the trigger's counters below for the streams this
                // opens. A key whose new stream cannot be started takes the path below, where
                // an existing stream may still take it.
                let mut counted = TriggerDebug::default();
                let Ok((progress, added)) =
                    StreamProgress::start(trigger, &events[info.first], at, Some(&mut counted))
                else {
                    continue;
                };
                news.push(convert::new_stream(
                    &trigger.name,
                    &info.key,
                    &info.values,
                    &progress,
                ));
                candidates.push((
                    k,
                    Started {
                        progress,
                        ready: added.ready_to_fire,
                        counted,
                    },
                ));
            }
            for ((k, started), row) in candidates
                .into_iter()
                .zip(tx.open_or_lock_streams(news).await?)
            {
                opened[k] = row.map(|row| (row, started));
            }
        }
        // The stored open streams of every other key, locked in one statement per chunk.
        let others: Vec<usize> = (0..keys.len()).filter(|&k| opened[k].is_none()).collect();
        let pairs: Vec<(&str, &str)> = others
            .iter()
            .map(|&k| {
                let info = &keys[k];
                (triggers[info.trigger].name.as_str(), info.key.as_str())
            })
            .collect();
        let mut stored: Vec<Option<StreamRow>> = vec![None; keys.len()];
        for (k, row) in others
            .into_iter()
            .zip(tx.lock_active_streams(&pairs).await?)
        {
            stored[k] = row;
        }
        // Every stream the batch touches, and each key's current one (an index into them).
        let mut slots: Vec<Slot> = Vec::with_capacity(keys.len());
        let mut current: Vec<Option<usize>> = vec![None; keys.len()];
        // Keys with no open stream (or whose stream just closed) get theirs in one multi-row
        // insert, in key order.
        let mut fresh: Vec<(usize, StreamProgress, bool)> = Vec::new();
        let mut news = Vec::new();
        let mut expired: Vec<i64> = Vec::new();
        for k in order {
            let info = &keys[k];
            let trigger = &triggers[info.trigger];
            let debug = self.counters.trigger_mut(info.trigger);
            let at = nows[info.first];
            if let Some((row, started)) = opened[k].take() {
                // Opened above with this very progress; now counted.
                debug.absorb(&started.counted);
                current[k] = Some(slots.len());
                slots.push(created(
                    row.id,
                    started.progress,
                    started.ready,
                    0,
                    debug,
                    &mut report,
                ));
                continue;
            }
            if let Some(row) = stored[k].take() {
                let event = &events[info.first];
                if let Some(slot) =
                    continue_stream(trigger, &row, event, at, clock, debug, &mut report)?
                {
                    current[k] = Some(slots.len());
                    slots.push(slot);
                    continue;
                }
                expired.push(row.id);
            }
            let (progress, added) =
                StreamProgress::start(trigger, &events[info.first], at, Some(&mut *debug))?;
            news.push(convert::new_stream(
                &trigger.name,
                &info.key,
                &info.values,
                &progress,
            ));
            fresh.push((k, progress, added.ready_to_fire));
        }
        // Closed streams release their keys before the new streams take them.
        tx.detach_streams(&expired).await?;
        let rows = tx.insert_streams_deferred(news).await?;
        for ((k, progress, ready), row) in fresh.into_iter().zip(rows) {
            let info = &keys[k];
            let debug = self.counters.trigger_mut(info.trigger);
            let Some(row) = row else {
                return Err(lost_race(&triggers[info.trigger], &info.key));
            };
            current[k] = Some(slots.len());
            slots.push(created(row.id, progress, ready, 0, debug, &mut report));
        }

        // Adding: the other events, in order. A stream that closes within the batch is
        // replaced by a successor that exists only in memory until the end; they are written
        // one generation at a time below, and the links (made to slots) then get their ids.
        let mut successors: Vec<Successor> = Vec::new();
        let mut links: Vec<(usize, i64)> = Vec::with_capacity(matches.len());
        for (i, k) in matches {
            let Some(event_id) = ids[i] else { continue };
            let info = &keys[k];
            let Some(mut at) = current[k] else {
                continue;
            };
            if i != info.first {
                let trigger = &triggers[info.trigger];
                let debug = self.counters.trigger_mut(info.trigger);
                let now = nows[i];
                let slot = &mut slots[at];
                if clock.takes(&slot.progress, now) {
                    let added = slot.progress.add(trigger, &events[i], now, Some(debug))?;
                    slot.dirty = true;
                    report.ready_to_fire += u64::from(added.ready_to_fire);
                } else {
                    report.streams_detached += 1;
                    let generation = slot.generation + 1;
                    let (progress, added) =
                        StreamProgress::start(trigger, &events[i], now, Some(&mut *debug))?;
                    let next = created(
                        0,
                        progress,
                        added.ready_to_fire,
                        generation,
                        debug,
                        &mut report,
                    );
                    successors.push(Successor {
                        key: k,
                        slot: slots.len(),
                        predecessor: at,
                        generation,
                    });
                    at = slots.len();
                    current[k] = Some(at);
                    slots.push(next);
                }
            }
            links.push((at, event_id));
        }
        self.write_successors(&mut tx, &keys, &mut successors, &mut slots)
            .await?;
        let links: Vec<(i64, i64)> = links
            .into_iter()
            .map(|(at, event_id)| (slots[at].id, event_id))
            .collect();
        report.stream_events = links.len() as u64;
        tx.add_stream_events(&links).await?;
        let updates: Vec<_> = slots
            .iter()
            .filter(|s| s.dirty)
            .map(|slot| convert::stream_update(slot.id, &slot.progress))
            .collect();
        tx.update_streams(&updates).await?;
        tx.commit().await?;
        Ok(report)
    }
}

/// The stream races one batch may lose before it gives up: [`STREAM_RACE_ATTEMPTS`] in a row
/// on one key (the stream keeps being opened and closed by others), or
/// [`STREAM_RACES_PER_BATCH`] in all.
#[derive(Debug, Default)]
struct RaceBudget {
    /// Races lost so far.
    lost: u32,
    /// The key of the last race lost, and how many times in a row it was lost.
    last: Option<(String, String, u32)>,
}

impl RaceBudget {
    /// Counts a lost race on `key` of `trigger`; the error when the budget is spent.
    fn lose(&mut self, trigger: String, key: String) -> Result<()> {
        self.lost += 1;
        let in_a_row = match &self.last {
            Some((t, k, n)) if *t == trigger && *k == key => n + 1,
            _ => 1,
        };
        if in_a_row >= STREAM_RACE_ATTEMPTS || self.lost >= STREAM_RACES_PER_BATCH {
            return Err(Error::StreamRace {
                trigger,
                key,
                attempts: self.lost,
            });
        }
        tracing::debug!(%trigger, %key, lost = self.lost,
            "Another batch opened a stream first; redoing.");
        self.last = Some((trigger, key, in_a_row));
        Ok(())
    }
}

/// The slot of a stream just created with id `id` (its first event already counted by
/// `StreamProgress::start`), counted as created.
fn created(
    id: i64,
    progress: StreamProgress,
    ready_to_fire: bool,
    generation: u32,
    debug: &mut TriggerDebug,
    report: &mut AddReport,
) -> Slot {
    debug.new_streams += 1;
    report.streams_created += 1;
    report.ready_to_fire += u64::from(ready_to_fire);
    Slot {
        id,
        progress,
        dirty: false,
        generation,
    }
}

/// Another transaction opened the stream of `key` first and committed it. Locking it now would
/// take a lock out of the batch's key order (and could deadlock with a batch that locked it
/// first), so the attempt is rolled back and redone: the stream is then found and locked in
/// order with the others.
fn lost_race(trigger: &TriggerDefinition, key: &str) -> Error {
    Error::LostStreamRace {
        trigger: trigger.name.clone(),
        key: key.to_owned(),
    }
}

/// Adds `event` to the locked open stream `row`, or returns `None` when the stream no longer
/// takes events at `now` (see [`Clock::takes`]; the caller detaches it).
fn continue_stream(
    trigger: &TriggerDefinition,
    row: &StreamRow,
    event: &Event,
    now: DateTime<Utc>,
    clock: Clock,
    debug: &mut TriggerDebug,
    report: &mut AddReport,
) -> Result<Option<Slot>> {
    let mut progress = convert::progress(row)?;
    if !clock.takes(&progress, now) {
        report.streams_detached += 1;
        return Ok(None);
    }
    let added = progress.add(trigger, event, now, Some(debug))?;
    report.ready_to_fire += u64::from(added.ready_to_fire);
    Ok(Some(Slot {
        id: row.id,
        progress,
        dirty: true,
        generation: 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lose(budget: &mut RaceBudget, key: &str) -> Result<()> {
        budget.lose("t".to_owned(), key.to_owned())
    }

    #[test]
    fn races_on_new_keys_go_on_and_the_same_key_gives_up() {
        // Other workers opening a different new stream each time: progress, up to the cap.
        let mut budget = RaceBudget::default();
        for i in 1..STREAM_RACES_PER_BATCH {
            lose(&mut budget, &format!("k{i}")).unwrap();
        }
        let err = lose(&mut budget, "last").unwrap_err();
        assert!(
            matches!(err, Error::StreamRace { attempts, .. } if attempts == STREAM_RACES_PER_BATCH),
            "{err:?}"
        );

        // The same key lost again and again: give up sooner; another key in between resets.
        let mut budget = RaceBudget::default();
        for _ in 1..STREAM_RACE_ATTEMPTS {
            lose(&mut budget, "a").unwrap();
        }
        lose(&mut budget, "b").unwrap();
        for _ in 1..STREAM_RACE_ATTEMPTS {
            lose(&mut budget, "a").unwrap();
        }
        let err = lose(&mut budget, "a").unwrap_err();
        assert!(
            matches!(&err, Error::StreamRace { key, attempts, .. }
                if key == "a" && *attempts == 2 * STREAM_RACE_ATTEMPTS),
            "{err:?}"
        );
    }
}
