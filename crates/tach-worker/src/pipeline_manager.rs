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
use tach_store::{ClaimKind, StreamRow, StreamState};

use crate::trigger_manager::{AddReport, TriggerManager};
use crate::{Error, Result};

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
    /// # Errors
    /// A store error (claiming, loading events, changing a state); a stream already taken
    /// stays in `firing`/`expiring` and can be reset by an operator.
    pub async fn run_once(&mut self, now: DateTime<Utc>) -> Result<PassReport> {
        let mut report = PassReport::default();
        for kind in [ClaimKind::Fire, ClaimKind::Expire] {
            let streams = self
                .triggers
                .store()
                .claim_streams(kind, now, self.settings.batch_size)
                .await?;
            let mut streams = streams.into_iter();
            for stream in streams.by_ref() {
                self.handle(stream, kind, now, &mut report).await?;
                if self.stopping() {
                    break;
                }
            }
            for stream in streams {
                self.triggers
                    .store()
                    .set_stream_state(stream.id, stream.state, StreamState::Active, None)
                    .await?;
                report.released += 1;
            }
            if self.stopping() {
                break;
            }
        }
        self.triggers.maybe_log_statistics();
        Ok(report)
    }

    /// Runs passes at `now` until one finds nothing to do (new events can make more streams
    /// ready). Returns the sum of the passes.
    ///
    /// # Errors
    /// As [`Self::run_once`].
    pub async fn run_until_idle(&mut self, now: DateTime<Utc>) -> Result<PassReport> {
        let mut total = PassReport::default();
        loop {
            let pass = self.run_once(now).await?;
            total.absorb(&pass);
            if pass.handled() == 0 || self.stopping() {
                return Ok(total);
            }
        }
    }

    /// Runs the pipeline of one claimed stream and records the outcome.
    async fn handle(
        &mut self,
        stream: StreamRow,
        kind: ClaimKind,
        now: DateTime<Utc>,
        report: &mut PassReport,
    ) -> Result<()> {
        let (from, failed) = match kind {
            ClaimKind::Fire => (StreamState::Firing, StreamState::Error),
            ClaimKind::Expire => (StreamState::Expiring, StreamState::ExpireError),
        };
        let outcome = self.run_pipeline(&stream, kind).await?;
        let failure = match outcome {
            Ok(new_events) if new_events.is_empty() => None,
            Ok(new_events) => match self.triggers.add_events(new_events, now).await {
                Ok(added) => {
                    report.new_events.absorb(&added);
                    None
                }
                Err(e) => Some(format!("storing the pipeline's new events failed: {e}")),
            },
            Err(reason) => Some(reason),
        };
        let store = self.triggers.store().clone();
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
                let done = if self.settings.purge_completed_streams {
                    store.delete_stream(stream.id).await?
                } else {
                    store
                        .set_stream_state(stream.id, from, StreamState::Completed, None)
                        .await?
                };
                if !done {
                    tracing::warn!(
                        stream_id = stream.id,
                        "The stream changed state while its pipeline ran; left as it is."
                    );
                }
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
                store
                    .set_stream_state(stream.id, from, failed, Some(&reason))
                    .await?;
            }
        }
        Ok(())
    }

    /// Runs the stream's pipeline: `Ok(Ok(new events))` on success, `Ok(Err(reason))` when
    /// the pipeline (or finding it) failed.
    async fn run_pipeline(
        &self,
        stream: &StreamRow,
        kind: ClaimKind,
    ) -> Result<std::result::Result<Vec<tach_distiller::Event>, String>> {
        let Some(&index) = self.by_name.get(&stream.trigger_name) else {
            return Ok(Err(format!(
                "no trigger named `{}` is defined",
                stream.trigger_name
            )));
        };
        let trigger: &TriggerDefinition = &self.triggers.triggers()[index];
        let name = match kind {
            ClaimKind::Fire => trigger.fire_pipeline.as_deref(),
            ClaimKind::Expire => trigger.expire_pipeline.as_deref(),
        };
        let Some(name) = name else {
            return Ok(Ok(Vec::new()));
        };
        let Some(definition) = self.pipelines.get(name) else {
            return Ok(Err(format!("no pipeline named `{name}` is defined")));
        };
        let mut pipeline = match Pipeline::build(definition, &self.registry) {
            Ok(p) => p,
            Err(e) => return Ok(Err(format!("pipeline `{name}`: {e}"))),
        };
        let events = self.triggers.store().stream_events(stream.id).await?;
        let mut env = Environment::new(stream.id, stream.trigger_name.clone());
        let stream_id = stream.id;
        let outcome = tokio::task::spawn_blocking(move || pipeline.run(events, &mut env))
            .await
            .map_err(|e| Error::PipelineTask {
                stream_id,
                reason: e.to_string(),
            })?;
        match outcome.failure {
            None => Ok(Ok(outcome.new_events)),
            Some(failure) => Ok(Err(format!(
                "pipeline `{name}`, handler `{}`: {}",
                failure.handler, failure.error
            ))),
        }
    }
}
