//! The pipeline manager: fires and expires ready streams.
//!
//! Each pass takes up to `pipeline_worker_batch_size` ready streams with the store's
//! compare-and-set claim (so any number of workers, on any number of hosts, never take one
//! stream twice), loads each stream's events, runs its trigger's fire or expire pipeline on a
//! blocking thread, stores the events the handlers add through the [`TriggerManager`] (they
//! re-enter the triggers like any event) and moves the stream to `completed` (or deletes it when
//! `purge_completed_streams`), or to `error`/`expire_error` when the pipeline failed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use tach_engine::{Environment, HandlerRegistry, Pipeline, PipelineConfig, TriggerDefinition};
use tach_store::{ClaimKind, Store, StreamRow, StreamState};

use crate::trigger_manager::{AddReport, TriggerManager, backoff};
use crate::{Error, Result};

/// How many times in a row [`PipelineManager::run_until_idle`] retries a pass after a
/// transient error (a deadlock between concurrent workers' claims and inserts on MySQL, say).
const PASS_RETRIES: u32 = 5;

/// What one [`PipelineManager::run_once`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Streams whose fire pipeline succeeded.
    pub fired: u64,
    /// Streams whose expire pipeline succeeded.
    pub expired: u64,
    /// Streams whose pipeline failed (now `error` or `expire_error`).
    pub errors: u64,
    /// Streams taken but given back unstarted because the stop flag was set.
    pub released: u64,
    /// What storing the handlers' new events did.
    pub new_events: AddReport,
}

impl PassReport {
    /// Streams handled in the pass (fired, expired or failed).
    pub fn handled(&self) -> u64 {
        self.fired + self.expired + self.errors
    }

    /// Adds another report's counts to this one.
    pub fn absorb(&mut self, other: &PassReport) {
        self.fired += other.fired;
        self.expired += other.expired;
        self.errors += other.errors;
        self.released += other.released;
        self.new_events.absorb(&other.new_events);
    }
}

/// Settings of a [`PipelineManager`] (from winchester.yaml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineSettings {
    /// Streams taken per claim (`pipeline_worker_batch_size`).
    pub batch_size: u32,
    /// Delete a stream once its pipeline succeeded (`purge_completed_streams`).
    pub purge_completed_streams: bool,
}

/// Attempts at recording the outcome of pipelines that ran (about 3 s in all).
const OUTCOME_ATTEMPTS: u32 = 5;

/// Records the outcome of the pipelines of `streams` with `write`, retried with doubling
/// delays from 100 ms on transient errors: the pipelines have run and their side effects are
/// done, so giving up leaves the streams in `firing`/`expiring` until an operator resets them.
async fn record_outcome<T, F, Fut>(streams: &[i64], mut write: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = tach_store::Result<T>>,
{
    let mut attempt = 1;
    loop {
        match write().await {
            Ok(value) => return Ok(value),
            Err(e) if e.is_transient() && attempt < OUTCOME_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "Retrying to record the outcome of pipelines.");
                tokio::time::sleep(std::time::Duration::from_millis(100 << (attempt - 1))).await;
                attempt += 1;
            }
            Err(e) => {
                tracing::error!(
                    error = %e,
                    ?streams,
                    "Cannot record the outcome of pipelines that ran; these streams stay in \
                     firing/expiring until reset (klug streams reset ID)."
                );
                return Err(e.into());
            }
        }
    }
}

/// Fires and expires ready streams; see the module documentation.
pub struct PipelineManager {
    triggers: TriggerManager,
    by_name: HashMap<String, usize>,
    pipelines: Arc<PipelineConfig>,
    registry: Arc<HandlerRegistry>,
    settings: PipelineSettings,
    stop: Arc<AtomicBool>,
}

impl PipelineManager {
    /// A manager running `pipelines` with handlers from `registry`; new events go through
    /// `triggers` (whose store and trigger definitions it uses).
    pub fn new(
        triggers: TriggerManager,
        pipelines: Arc<PipelineConfig>,
        registry: Arc<HandlerRegistry>,
        settings: PipelineSettings,
    ) -> PipelineManager {
        let by_name = triggers
            .triggers()
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        PipelineManager {
            triggers,
            by_name,
            pipelines,
            registry,
            settings,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A flag that, once set, makes a pass stop after the stream it is running: the streams
    /// it had taken but not started go back to `active` for a later pass (or another worker).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Whether the stop flag is set.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The trigger manager new events go through (also usable for ingest).
    pub fn trigger_manager(&mut self) -> &mut TriggerManager {
        &mut self.triggers
    }

    /// One pass at clock time `now`: up to a batch of streams ready to fire, then up to a batch
    /// ready to expire.
    ///
    /// Each batch costs a handful of statements, not a few per stream: one claim, one load of
    /// every claimed stream's events, one run of the pipelines on a blocking thread, one
    /// [`TriggerManager::add_events`] for all the new events, and one state change per outcome.
    ///
    /// # Errors
    /// A store error (claiming, loading events, changing a state). Streams taken but not yet run
    /// are handed back to `active` first when the store still answers. Recording the outcome of
    /// a pipeline that ran is retried for a few seconds; should the store stay unreachable, the
    /// stream stays in `firing`/`expiring` and an operator resets it (`klug streams reset ID`).
    pub async fn run_once(&mut self, now: DateTime<Utc>) -> Result<PassReport> {
        let mut report = PassReport::default();
        self.run_once_into(now, &mut report).await?;
        Ok(report)
    }

    /// As [`Self::run_once`], counting into `report` as it goes, so that what a pass did
    /// before an error is still counted.
    ///
    /// # Errors
    /// As [`Self::run_once`].
    pub async fn run_once_into(
        &mut self,
        now: DateTime<Utc>,
        report: &mut PassReport,
    ) -> Result<()> {
        for kind in [ClaimKind::Fire, ClaimKind::Expire] {
            let streams = self
                .triggers
                .store()
                .claim_streams(kind, now, self.settings.batch_size)
                .await?;
            if !streams.is_empty() {
                self.handle_batch(streams, kind, now, report).await?;
            }
            if self.stopping() {
                break;
            }
        }
        self.triggers.maybe_log_statistics();
        Ok(())
    }

    /// Runs passes at `now` until one finds nothing to do (new events can make more streams
    /// ready), retrying a pass after a transient error (a deadlock, say) a few times in a row.
    /// Returns the sum of the passes.
    ///
    /// # Errors
    /// As [`Self::run_once`], once the retries are spent or at once for other errors.
    pub async fn run_until_idle(&mut self, now: DateTime<Utc>) -> Result<PassReport> {
        let mut total = PassReport::default();
        self.run_until_idle_into(now, &mut total).await?;
        Ok(total)
    }

    /// As [`Self::run_until_idle`], counting into `total` as it goes, so that what the passes
    /// did before an error is still counted.
    ///
    /// # Errors
    /// As [`Self::run_until_idle`].
    pub async fn run_until_idle_into(
        &mut self,
        now: DateTime<Utc>,
        total: &mut PassReport,
    ) -> Result<()> {
        let mut failures = 0;
        loop {
            let before = total.handled();
            match self.run_once_into(now, total).await {
                Ok(()) if total.handled() == before || self.stopping() => return Ok(()),
                Ok(()) => failures = 0,
                Err(e) if e.is_transient() && failures < PASS_RETRIES => {
                    failures += 1;
                    tracing::warn!(error = %e, attempt = failures, "Retrying a pipeline pass.");
                    tokio::time::sleep(backoff(u64::from(failures))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs the pipelines of a batch of claimed streams and records their outcomes.
    async fn handle_batch(
        &mut self,
        streams: Vec<StreamRow>,
        kind: ClaimKind,
        now: DateTime<Utc>,
        report: &mut PassReport,
    ) -> Result<()> {
        let (from, failed) = match kind {
            ClaimKind::Fire => (StreamState::Firing, StreamState::Error),
            ClaimKind::Expire => (StreamState::Expiring, StreamState::ExpireError),
        };
        let store = self.triggers.store().clone();
        // What each stream runs: its pipeline, or an outcome known without running one.
        let mut jobs: Vec<Job> = Vec::with_capacity(streams.len());
        // The streams whose pipelines read traits, and those whose pipelines do not.
        let (mut load, mut load_bare): (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
        for stream in &streams {
            let job = match self.pipeline_for(stream, kind) {
                Ok(Some((name, pipeline))) => {
                    let traits = pipeline.reads_traits();
                    if traits {
                        load.push(stream.id);
                    } else {
                        load_bare.push(stream.id);
                    }
                    Job::Run {
                        name,
                        pipeline,
                        traits,
                        events: Vec::new(),
                        env: Environment::new(stream.id, stream.trigger_name.clone()),
                    }
                }
                Ok(None) => Job::Done(Ok(Vec::new())),
                Err(reason) => Job::Done(Err(reason)),
            };
            jobs.push(job);
        }
        let loaded = match load_events(&store, &load, &load_bare).await {
            Ok(loaded) => loaded,
            Err(e) => {
                self.release(&streams, report).await;
                return Err(e.into());
            }
        };
        let (mut loaded, mut loaded_bare) = (loaded.0.into_iter(), loaded.1.into_iter());
        for job in &mut jobs {
            if let Job::Run { events, traits, .. } = job {
                let next = if *traits {
                    loaded.next()
                } else {
                    loaded_bare.next()
                };
                *events = next.unwrap_or_default();
            }
        }
        // Run them in order on one blocking thread, stopping after the current stream when
        // the stop flag is set.
        let stop = Arc::clone(&self.stop);
        let task = tokio::task::spawn_blocking(move || {
            let mut outcomes: Vec<Outcome> = Vec::with_capacity(jobs.len());
            for job in jobs {
                if stop.load(Ordering::Relaxed) && !outcomes.is_empty() {
                    break;
                }
                outcomes.push(match job {
                    Job::Done(outcome) => outcome,
                    Job::Run {
                        name,
                        mut pipeline,
                        events,
                        mut env,
                        ..
                    } => {
                        let outcome = pipeline.run(events, &mut env);
                        match outcome.failure {
                            None => Ok(outcome.new_events),
                            Some(failure) => Err(format!(
                                "pipeline `{name}`, handler `{}`: {}",
                                failure.handler, failure.error
                            )),
                        }
                    }
                });
            }
            outcomes
        });
        let outcomes = match task.await {
            Ok(outcomes) => outcomes,
            Err(e) => {
                return Err(Error::PipelineTask {
                    stream_id: streams.first().map_or(0, |s| s.id),
                    reason: e.to_string(),
                });
            }
        };
        let started = outcomes.len();
        let mut failures: Vec<Option<String>> = self.store_new_events(outcomes, now, report).await;
        failures.truncate(started);

        // Record the outcomes: one statement for the successes, one per failure.
        let mut done: Vec<i64> = Vec::new();
        for (stream, failure) in streams.iter().zip(failures) {
            let counters = self.triggers.counters_of(&stream.trigger_name);
            match failure {
                None => {
                    if let Some(counters) = counters {
                        match kind {
                            ClaimKind::Fire => counters.fired += 1,
                            ClaimKind::Expire => counters.expired += 1,
                        }
                    }
                    match kind {
                        ClaimKind::Fire => report.fired += 1,
                        ClaimKind::Expire => report.expired += 1,
                    }
                    done.push(stream.id);
                }
                Some(reason) => {
                    if let Some(counters) = counters {
                        counters.errors += 1;
                    }
                    report.errors += 1;
                    tracing::error!(
                        stream_id = stream.id,
                        trigger = %stream.trigger_name,
                        %reason,
                        "A stream's pipeline failed."
                    );
                    let id = stream.id;
                    record_outcome(&[id], || {
                        store.set_stream_state(id, from, failed, Some(&reason))
                    })
                    .await?;
                }
            }
        }
        let unchanged = if self.settings.purge_completed_streams {
            record_outcome(&done, || store.delete_streams(&done)).await?
        } else {
            record_outcome(&done, || {
                store.set_streams_state(&done, from, StreamState::Completed, None)
            })
            .await?
        };
        for stream_id in unchanged {
            tracing::warn!(
                stream_id,
                "The stream changed state while its pipeline ran; left as it is."
            );
        }
        // Streams taken but not started (the stop flag was set): back to active.
        self.release(&streams[started..], report).await;
        Ok(())
    }

    /// Stores the new events of the successful outcomes, all in one batch; should that fail,
    /// stream by stream, so that only the streams whose events cannot be stored fail. Returns
    /// each stream's failure reason (`None`: success).
    async fn store_new_events(
        &mut self,
        outcomes: Vec<Outcome>,
        now: DateTime<Utc>,
        report: &mut PassReport,
    ) -> Vec<Option<String>> {
        let mut failures: Vec<Option<String>> = Vec::with_capacity(outcomes.len());
        let mut new_events: Vec<Vec<tach_distiller::Event>> = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            match outcome {
                Ok(events) => {
                    failures.push(None);
                    new_events.push(events);
                }
                Err(reason) => {
                    failures.push(Some(reason));
                    new_events.push(Vec::new());
                }
            }
        }
        let count: usize = new_events.iter().map(Vec::len).sum();
        if count == 0 {
            return failures;
        }
        let all: Vec<tach_distiller::Event> = new_events.iter().flatten().cloned().collect();
        match self.triggers.add_events(&all, now).await {
            Ok(added) => {
                report.new_events.absorb(&added);
                return failures;
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "Storing a pass's new events failed; storing them stream by stream."
                );
            }
        }
        for (failure, events) in failures.iter_mut().zip(new_events) {
            if failure.is_some() || events.is_empty() {
                continue;
            }
            match self.triggers.add_events(&events, now).await {
                Ok(added) => report.new_events.absorb(&added),
                Err(e) => {
                    *failure = Some(format!("storing the pipeline's new events failed: {e}"));
                }
            }
        }
        failures
    }

    /// Hands `streams` (taken by this pass, not run) back to `active`, best effort: a store
    /// error is logged, and the streams can still be reset by an operator.
    async fn release(&mut self, streams: &[StreamRow], report: &mut PassReport) {
        if streams.is_empty() {
            return;
        }
        let store = self.triggers.store().clone();
        for state in [StreamState::Firing, StreamState::Expiring] {
            let ids: Vec<i64> = streams
                .iter()
                .filter(|s| s.state == state)
                .map(|s| s.id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            match store
                .set_streams_state(&ids, state, StreamState::Active, None)
                .await
            {
                Ok(unchanged) => report.released += (ids.len() - unchanged.len()) as u64,
                Err(e) => tracing::error!(
                    error = %e,
                    streams = ids.len(),
                    "Cannot hand taken streams back; reset them once the store answers."
                ),
            }
        }
    }

    /// The pipeline a claimed stream runs: `Ok(None)` when its trigger has none for `kind`,
    /// `Err(reason)` when the trigger or pipeline is unknown or cannot be built.
    fn pipeline_for(
        &self,
        stream: &StreamRow,
        kind: ClaimKind,
    ) -> std::result::Result<Option<(String, Pipeline)>, String> {
        let Some(&index) = self.by_name.get(&stream.trigger_name) else {
            return Err(format!(
                "no trigger named `{}` is defined",
                stream.trigger_name
            ));
        };
        let trigger: &TriggerDefinition = &self.triggers.triggers()[index];
        let name = match kind {
            ClaimKind::Fire => trigger.fire_pipeline.as_deref(),
            ClaimKind::Expire => trigger.expire_pipeline.as_deref(),
        };
        let Some(name) = name else {
            return Ok(None);
        };
        let Some(definition) = self.pipelines.get(name) else {
            return Err(format!("no pipeline named `{name}` is defined"));
        };
        match Pipeline::build(definition, &self.registry) {
            Ok(p) => Ok(Some((name.to_owned(), p))),
            Err(e) => Err(format!("pipeline `{name}`: {e}")),
        }
    }
}

/// The events of streams `full` with their traits, and of streams `bare` without.
async fn load_events(
    store: &Store,
    full: &[i64],
    bare: &[i64],
) -> tach_store::Result<(
    Vec<Vec<tach_distiller::Event>>,
    Vec<Vec<tach_distiller::Event>>,
)> {
    let with = if full.is_empty() {
        Vec::new()
    } else {
        store.streams_events(full).await?
    };
    let without = if bare.is_empty() {
        Vec::new()
    } else {
        store.streams_events_without_traits(bare).await?
    };
    Ok((with, without))
}

/// A stream's pipeline outcome: its new events, or why it failed.
type Outcome = std::result::Result<Vec<tach_distiller::Event>, String>;

/// What one claimed stream runs.
enum Job {
    /// Its pipeline over its events.
    Run {
        name: String,
        pipeline: Pipeline,
        /// Whether its events were loaded with their traits.
        traits: bool,
        events: Vec<tach_distiller::Event>,
        env: Environment,
    },
    /// Nothing: the outcome is known.
    Done(Outcome),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn recording_an_outcome_retries_transient_errors_only() {
        let mut calls = 0;
        let value = record_outcome(&[1], || {
            calls += 1;
            let result = if calls < 3 {
                Err(tach_store::Error::ConcurrentInsert)
            } else {
                Ok(7)
            };
            async move { result }
        })
        .await
        .unwrap();
        assert_eq!((value, calls), (7, 3));

        let mut calls = 0;
        let err = record_outcome(&[1], || {
            calls += 1;
            async { Err::<(), _>(tach_store::Error::ConcurrentInsert) }
        })
        .await
        .unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert_eq!(calls, OUTCOME_ATTEMPTS);

        let mut calls = 0;
        let err = record_outcome(&[1], || {
            calls += 1;
            async { Err::<(), _>(tach_store::Error::StreamNotFound { id: 1 }) }
        })
        .await
        .unwrap_err();
        assert!(!err.is_transient());
        assert_eq!(calls, 1);
    }
}
