//! tach's ingest worker (StackTach's yagi-event + WinchesterHandler): notifications from
//! RabbitMQ, Kafka, files or stdin are distilled into events and stored in batches, one
//! transaction per batch, and acknowledged only after their batch is committed. Each source
//! distils what it receives (on the runtime's worker threads), so that the next batch is
//! distilled while the current one is being committed.
//!
//! - [`config`]: [`IngestConfig`], the `ingest:` section of winchester.yaml.
//! - [`Ingest`]: the worker; [`Ingest::run`] consumes until the sources end or shutdown.
//! - [`Totals`]: what a run did (also logged every statistics period).
//!
//! Delivery guarantees (DESIGN §8): a RabbitMQ delivery is acknowledged, and a Kafka offset
//! committed, after the batch holding it is committed; a crash before that makes the broker
//! deliver it again and the store ignores the repeated `message_id`. Poison messages (not
//! JSON, not an object, no `event_type` or `message_id`, larger than `max_message_bytes`) are
//! recorded in the `dead_letters` table and forwarded to the broker's dead-letter exchange or
//! topic, then acknowledged. A lost broker is reconnected with capped exponential backoff; a
//! lost database stops acknowledging and the batch is retried with backoff until it commits.
//! On shutdown the in-flight batches are committed and acknowledged before anything closes:
//! the RabbitMQ channels are closed only once their acknowledgements were written, and wait
//! for the broker's `close-ok`; Kafka offsets are then committed synchronously.

#![warn(missing_docs)]

mod amqp;
pub mod config;
mod distil;
mod error;
mod files;
mod kafka;
mod message;
mod pipeline;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tach_distiller::Distiller;
use tach_worker::TriggerManager;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

pub use config::{IngestConfig, SourceConfig};
pub use error::{Error, Result};
pub use pipeline::Totals;

use crate::amqp::AmqpSource;
use crate::distil::Distil;
use crate::kafka::KafkaSource;
use crate::pipeline::Pipeline;

/// Receives the totals and the message rate of the last period, every statistics period.
pub type StatisticsHook = Box<dyn FnMut(&Totals, f64) + Send>;

/// The ingest worker: sources, distiller and trigger manager.
pub struct Ingest {
    config: IngestConfig,
    distiller: Distiller,
    manager: TriggerManager,
    statistics_period: Duration,
    statistics_hook: Option<StatisticsHook>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Ingest {
    /// A worker for `config`; `statistics_period` applies unless the section sets its own.
    pub fn new(
        config: IngestConfig,
        distiller: Distiller,
        manager: TriggerManager,
        statistics_period: Duration,
    ) -> Ingest {
        let statistics_period = config.statistics_period.unwrap_or(statistics_period);
        Ingest {
            config,
            distiller,
            manager,
            statistics_period,
            statistics_hook: None,
        }
    }

    /// Sends the periodic statistics to `hook` instead of the `tracing` info log.
    pub fn on_statistics(mut self, hook: impl FnMut(&Totals, f64) + Send + 'static) -> Ingest {
        self.statistics_hook = Some(Box::new(hook));
        self
    }

    /// Consumes until every source has ended (files, stdin) or `shutdown` completes; then
    /// stops the sources, commits and acknowledges what was received, and returns the totals.
    ///
    /// # Errors
    /// [`Error::Kafka`] when a Kafka client cannot be created; [`Error::Read`] when a file
    /// cannot be read (after the lines read so far are committed); [`Error::Uncommitted`] when
    /// shutting down while the database stays unreachable (nothing unstored was acknowledged).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<Totals> {
        let Ingest {
            config,
            distiller,
            manager,
            statistics_period,
            statistics_hook,
        } = self;
        let capacity = config
            .batch
            .max_messages
            .saturating_mul(2)
            .clamp(64, 100_000);
        let (tx, mut rx) = mpsc::channel(capacity);
        // Shared by the sources: each distils its messages before sending them.
        let distil = Distil::new(distiller, config.max_message_bytes);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut amqp_sources = HashMap::new();
        let mut kafka_sources = HashMap::new();
        let mut tasks: JoinSet<Result<()>> = JoinSet::new();
        for (index, source) in config.sources.iter().enumerate() {
            match source {
                SourceConfig::Rabbitmq(r) => {
                    let s = Arc::new(AmqpSource::new(
                        index,
                        r.clone(),
                        config.dead_letter.clone(),
                    ));
                    amqp_sources.insert(index, Arc::clone(&s));
                    let (tx, stop, backoff) = (tx.clone(), stop_rx.clone(), config.backoff);
                    let distil = Arc::clone(&distil);
                    tasks.spawn(async move {
                        s.run(tx, distil, stop, backoff).await;
                        Ok(())
                    });
                }
                SourceConfig::Kafka(k) => {
                    let s = Arc::new(KafkaSource::new(
                        index,
                        k.clone(),
                        config.dead_letter.topic.clone(),
                        config.max_message_bytes,
                    )?);
                    kafka_sources.insert(index, Arc::clone(&s));
                    let (tx, stop, backoff) = (tx.clone(), stop_rx.clone(), config.backoff);
                    let distil = Arc::clone(&distil);
                    tasks.spawn(async move {
                        s.run(tx, distil, stop, backoff).await;
                        Ok(())
                    });
                }
                SourceConfig::Files(f) => {
                    tasks.spawn(files::run_files(
                        index,
                        f.paths.clone(),
                        tx.clone(),
                        Arc::clone(&distil),
                        stop_rx.clone(),
                    ));
                }
                SourceConfig::Stdin => {
                    tasks.spawn(files::run_stdin(
                        index,
                        tx.clone(),
                        Arc::clone(&distil),
                        stop_rx.clone(),
                    ));
                }
            }
        }
        drop(tx);
        drop(distil);
        // The shutdown future sets `stop`, which the sources and the commit retries watch.
        let stopper = {
            let stop_tx = stop_tx.clone();
            tokio::spawn(async move {
                shutdown.await;
                tracing::info!("Shutdown requested: draining in-flight batches.");
                let _ = stop_tx.send(true);
            })
        };
        let mut pipeline = Pipeline::new(
            &config,
            manager,
            stop_rx.clone(),
            amqp_sources.clone(),
            kafka_sources.clone(),
        );
        let mut stats = Statistics::new(statistics_period, statistics_hook);
        let mut stop_seen = stop_rx.clone();
        let outcome = loop {
            let deadline = pipeline.deadline();
            let tick = stats.next_at();
            let message = tokio::select! {
                m = rx.recv() => m,
                () = sleep_until(deadline), if deadline.is_some() => {
                    if let Err(e) = pipeline.flush(false).await {
                        break Err(e);
                    }
                    continue;
                }
                () = tokio::time::sleep_until(tick.into()) => {
                    stats.log(pipeline.totals());
                    continue;
                }
                _ = stop_seen.changed() => {
                    // Sources see it too and drop their senders; keep reading until they have.
                    continue;
                }
            };
            match message {
                Some(m) => {
                    pipeline.accept(m);
                    if pipeline.is_full()
                        && let Err(e) = pipeline.flush(false).await
                    {
                        break Err(e);
                    }
                }
                None => break pipeline.flush(true).await,
            }
        };
        let _ = stop_tx.send(true);
        stopper.abort();
        let mut source_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "A source failed.");
                    source_error.get_or_insert(e);
                }
                Err(e) => tracing::error!(error = %e, "A source task did not finish."),
            }
        }
        // Every acknowledgement of the last batches was written to its channel (the pipeline
        // awaits each); closing the channels now waits for the broker to have processed them.
        for source in amqp_sources.values() {
            source.close().await;
        }
        for source in kafka_sources.values() {
            if let Err(e) = source.commit_on_shutdown() {
                tracing::warn!(error = %e,
                    "Cannot commit the Kafka offsets at shutdown; the records after the last \
                     committed ones come again.");
            }
        }
        let totals = pipeline.totals();
        tracing::info!("Ingest finished: {}", totals.summary());
        outcome?;
        match source_error {
            Some(e) => Err(e),
            None => Ok(totals),
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline.into()).await;
    }
}

/// The periodic statistics line.
struct Statistics {
    period: Duration,
    last_at: Instant,
    last: Totals,
    hook: Option<StatisticsHook>,
}

impl Statistics {
    fn new(period: Duration, hook: Option<StatisticsHook>) -> Statistics {
        Statistics {
            // A period too long for an Instant (Duration::MAX) means never.
            period: period.min(Duration::from_secs(86_400 * 365)),
            last_at: Instant::now(),
            last: Totals::default(),
            hook,
        }
    }

    fn next_at(&self) -> Instant {
        self.last_at + self.period
    }

    fn log(&mut self, totals: Totals) {
        let seconds = self.last_at.elapsed().as_secs_f64().max(1e-9);
        let rate = (totals.received - self.last.received) as f64 / seconds;
        self.last = totals;
        self.last_at = Instant::now();
        if let Some(hook) = &mut self.hook {
            hook(&totals, rate);
            return;
        }
        tracing::info!(
            received = totals.received,
            stored = totals.stored,
            duplicates = totals.duplicates,
            dropped = totals.dropped,
            poison = totals.poison,
            batches = totals.batches,
            commit_retries = totals.commit_retries,
            rate = format!("{rate:.0}/s"),
            "ingest statistics"
        );
    }
}
