//! The pipeline: messages, distilled by their sources (see [`crate::distil`]), are sorted
//! into a batch; a batch is stored in one transaction, then its poison messages are recorded
//! (table) and forwarded (dead-letter exchange or topic), and only then are its messages
//! acknowledged.
//!
//! A batch that cannot be committed (database down) is kept and retried with capped
//! exponential backoff; nothing is acknowledged meanwhile, so the broker keeps (and, after a
//! crash, redelivers) the messages. Redelivered events are duplicates the store ignores.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use lapin::Acker;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use tach_distiller::Event;
use tach_store::Store;
use tach_worker::{AddReport, TriggerManager};
use tokio::sync::watch;

use crate::amqp::AmqpSource;
use crate::config::{BackoffConfig, IngestConfig};
use crate::distil::Distilled;
use crate::error::{Error, Result};
use crate::kafka::KafkaSource;
use crate::message::{Message, Origin};

/// Tries to forward a dead letter to RabbitMQ before it is rejected back to its queue.
const AMQP_FORWARD_ATTEMPTS: u32 = 3;

/// What an ingest run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Messages received.
    pub received: u64,
    /// Events newly stored.
    pub stored: u64,
    /// Events already stored (redeliveries, repeated message ids).
    pub duplicates: u64,
    /// Notifications no event definition matched (acknowledged, not stored).
    pub dropped: u64,
    /// Poison messages recorded as dead letters.
    pub poison: u64,
    /// Batches committed.
    pub batches: u64,
    /// Commit attempts that failed and were retried (database trouble).
    pub commit_retries: u64,
    /// Acknowledgements or offset commits the broker refused (the messages come again).
    pub ack_failures: u64,
    /// Time spent storing batches (`TriggerManager::add_events`, retries included), in
    /// microseconds: compared with the run time it shows whether the store is the bottleneck.
    pub store_micros: u64,
}

impl Totals {
    /// One log-friendly line.
    pub fn summary(&self) -> String {
        format!(
            "received {}, stored {}, duplicates {}, dropped {}, poison {}, batches {}, \
             commit retries {}, ack failures {}, store time {:.3} s",
            self.received,
            self.stored,
            self.duplicates,
            self.dropped,
            self.poison,
            self.batches,
            self.commit_retries,
            self.ack_failures,
            self.store_micros as f64 / 1e6
        )
    }
}

/// Where a poison message goes besides the table.
enum Forward {
    Amqp(Arc<AmqpSource>, Acker),
    Kafka(Arc<KafkaSource>),
    TableOnly,
}

/// A poison message waiting for its batch.
struct Poison {
    source: Arc<str>,
    reason: String,
    raw: Vec<u8>,
    forward: Forward,
}

/// The messages of the batch being built.
#[derive(Default)]
struct Batch {
    messages: usize,
    first_at: Option<Instant>,
    events: Vec<Event>,
    /// Raw bytes and source of each event, for the dead letter when it cannot be stored.
    event_raw: Vec<(Arc<str>, Vec<u8>)>,
    poison: Vec<Poison>,
    dropped: u64,
    /// The deliveries per consumer channel, oldest first. The newest one not rejected is
    /// acknowledged with `multiple`, which covers the older ones.
    amqp: HashMap<u64, Vec<Acker>>,
    /// The newest offset per (topic, partition), per Kafka source.
    kafka: HashMap<usize, KafkaOffsets>,
}

struct KafkaOffsets {
    source: Arc<KafkaSource>,
    offsets: HashMap<(Arc<str>, i32), i64>,
}

/// Sorts distilled messages into batches and commits them; see the module documentation.
pub(crate) struct Pipeline {
    manager: TriggerManager,
    store: Store,
    max_messages: usize,
    max_wait: Duration,
    max_message_bytes: usize,
    max_raw_bytes: usize,
    backoff: BackoffConfig,
    shutdown_timeout: Duration,
    stop: watch::Receiver<bool>,
    stopping_since: Option<Instant>,
    /// Sources by index, to find the one a message came from.
    amqp: HashMap<usize, Arc<AmqpSource>>,
    kafka: HashMap<usize, Arc<KafkaSource>>,
    batch: Batch,
    totals: Totals,
}

impl Pipeline {
    pub fn new(
        config: &IngestConfig,
        manager: TriggerManager,
        stop: watch::Receiver<bool>,
        amqp: HashMap<usize, Arc<AmqpSource>>,
        kafka: HashMap<usize, Arc<KafkaSource>>,
    ) -> Pipeline {
        Pipeline {
            store: manager.store().clone(),
            manager,
            max_messages: config.batch.max_messages,
            max_wait: Duration::from_millis(config.batch.max_wait_ms),
            max_message_bytes: config.max_message_bytes,
            max_raw_bytes: config.dead_letter.max_raw_bytes,
            backoff: config.backoff,
            shutdown_timeout: config.shutdown_timeout,
            stop,
            stopping_since: None,
            amqp,
            kafka,
            batch: Batch::default(),
            totals: Totals::default(),
        }
    }

    /// The counts so far.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// When the current batch must be committed even if not full.
    pub fn deadline(&self) -> Option<Instant> {
        self.batch.first_at.map(|t| t + self.max_wait)
    }

    /// True when the batch is full.
    pub fn is_full(&self) -> bool {
        self.batch.messages >= self.max_messages
    }

    /// Adds one distilled message to the batch: an event, dropped or poison.
    pub fn accept(&mut self, message: Message) {
        let Message {
            payload,
            distilled,
            source,
            origin,
            source_index,
        } = message;
        self.totals.received += 1;
        self.batch.messages += 1;
        self.batch.first_at.get_or_insert_with(Instant::now);
        let forward = match origin {
            Origin::Amqp { channel, acker } => {
                let forward = match self.amqp.get(&source_index) {
                    Some(s) => Forward::Amqp(Arc::clone(s), acker.clone()),
                    None => Forward::TableOnly,
                };
                self.batch.amqp.entry(channel).or_default().push(acker);
                forward
            }
            Origin::Kafka {
                partition,
                offset,
                topic,
            } => match self.kafka.get(&source_index) {
                Some(s) => {
                    let entry =
                        self.batch
                            .kafka
                            .entry(source_index)
                            .or_insert_with(|| KafkaOffsets {
                                source: Arc::clone(s),
                                offsets: HashMap::new(),
                            });
                    let newest = entry.offsets.entry((topic, partition)).or_insert(offset);
                    *newest = (*newest).max(offset);
                    Forward::Kafka(Arc::clone(s))
                }
                None => Forward::TableOnly,
            },
            Origin::Line => Forward::TableOnly,
        };
        match distilled {
            Distilled::Event(event) => {
                self.batch.events.push(event);
                self.batch.event_raw.push((source, payload));
            }
            Distilled::Dropped => self.batch.dropped += 1,
            Distilled::Poison(reason) => self.push_poison(source, reason, payload, forward),
            Distilled::TooBig => {
                let reason = format!(
                    "too big: {} bytes (max_message_bytes {})",
                    payload.len(),
                    self.max_message_bytes
                );
                self.push_poison(source, reason, payload, forward);
            }
        }
    }

    fn push_poison(&mut self, source: Arc<str>, reason: String, raw: Vec<u8>, forward: Forward) {
        self.batch.poison.push(Poison {
            source,
            reason,
            raw,
            forward,
        });
    }

    /// Commits the batch, records and forwards its poison messages, then acknowledges it.
    ///
    /// # Errors
    /// [`Error::Uncommitted`] when shutting down and the database stayed unreachable for
    /// `shutdown_timeout`: nothing of the batch was acknowledged.
    pub async fn flush(&mut self, final_flush: bool) -> Result<()> {
        if self.batch.messages == 0 {
            return Ok(());
        }
        let mut batch = std::mem::take(&mut self.batch);
        let events = std::mem::take(&mut batch.events);
        let storing = Instant::now();
        let report = self.commit(events, &mut batch).await?;
        self.totals.store_micros +=
            u64::try_from(storing.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.totals.stored += report.stored;
        self.totals.duplicates += report.duplicates;
        self.totals.dropped += batch.dropped;

        // Dead letters: the table first, then the broker's dead-letter place.
        let mut reject: Vec<Acker> = Vec::new();
        let mut skip_kafka: Vec<usize> = Vec::new();
        for poison in std::mem::take(&mut batch.poison) {
            let original = poison.raw.len();
            let (raw, reason) = if original > self.max_raw_bytes {
                (
                    &poison.raw[..self.max_raw_bytes],
                    format!(
                        "{} (raw truncated to {} of {original} bytes)",
                        poison.reason, self.max_raw_bytes
                    ),
                )
            } else {
                (&poison.raw[..], poison.reason.clone())
            };
            self.record_dead_letter(&poison.source, &reason, raw, batch.messages)
                .await?;
            self.totals.poison += 1;
            tracing::warn!(source = %poison.source, reason = %reason, bytes = original,
                "Poison message recorded as a dead letter.");
            match &poison.forward {
                Forward::Amqp(source, acker) => {
                    let mut forwarded = Err(String::new());
                    for attempt in 0..AMQP_FORWARD_ATTEMPTS {
                        forwarded = source
                            .forward_dead_letter(&poison.source, &reason, raw, original)
                            .await;
                        if forwarded.is_ok() {
                            break;
                        }
                        tokio::time::sleep(self.backoff.delay(attempt)).await;
                    }
                    if let Err(e) = forwarded {
                        tracing::error!(error = %e, source = %poison.source,
                            "Cannot forward a dead letter to RabbitMQ; it goes back to its queue.");
                        reject.push(acker.clone());
                    }
                }
                Forward::Kafka(source) => {
                    let mut attempt = 0u32;
                    loop {
                        match source
                            .forward_dead_letter(&poison.source, &reason, raw, original)
                            .await
                        {
                            Ok(()) => break,
                            Err(e) => {
                                tracing::error!(error = %e, "Cannot produce a dead letter to Kafka; retrying.");
                                if !self.may_retry() {
                                    skip_kafka.push(source.index);
                                    break;
                                }
                                tokio::time::sleep(self.backoff.delay(attempt)).await;
                                attempt = attempt.saturating_add(1);
                            }
                        }
                    }
                }
                Forward::TableOnly => {}
            }
        }

        // Acknowledgements: rejected dead letters first (back to their queue), then every
        // channel up to its newest delivery not rejected, then the Kafka offsets. Each ack is
        // awaited: it resolves once its frame is written to the broker's socket, so that at
        // shutdown the channels are closed only after every acknowledgement went out.
        for acker in reject {
            if let Err(e) = acker
                .nack(BasicNackOptions {
                    multiple: false,
                    requeue: true,
                })
                .await
            {
                tracing::debug!(error = %e, "Cannot reject a delivery.");
            }
        }
        for ackers in batch.amqp.values() {
            // A rejected delivery's acker is used up (`usable` is false); one of a closed
            // channel is poisoned. Acknowledging a rejected delivery would close the channel.
            let newest = ackers.iter().rev().find(|a| a.usable());
            let acked = match newest {
                Some(acker) => acker
                    .ack(BasicAckOptions { multiple: true })
                    .await
                    .map_err(|e| e.to_string()),
                None => Ok(!ackers.iter().any(Acker::poisoned)),
            };
            let failure = match acked {
                Ok(true) => continue,
                // The acker was poisoned meanwhile: its channel is closed.
                Ok(false) => "the channel is closed".to_owned(),
                Err(e) => e,
            };
            self.totals.ack_failures += 1;
            tracing::warn!(error = %failure, deliveries = ackers.len(),
                "Cannot acknowledge deliveries (their channel or connection is gone); the \
                 broker delivers them again and the store ignores them as duplicates.");
        }
        // Synchronous at shutdown: the offsets must be stored before the consumer closes.
        let sync = final_flush || *self.stop.borrow();
        for (index, offsets) in &batch.kafka {
            if skip_kafka.contains(index) {
                continue;
            }
            if let Err(e) = offsets.source.commit(&offsets.offsets, sync) {
                self.totals.ack_failures += 1;
                tracing::warn!(error = %e, "Cannot commit Kafka offsets; the records come again.");
            }
        }
        self.totals.batches += 1;
        Ok(())
    }

    /// Stores the events, retrying database errors with backoff; an event the engine rejects
    /// (not the database) becomes a dead letter of the batch.
    async fn commit(&mut self, events: Vec<Event>, batch: &mut Batch) -> Result<AddReport> {
        match self.add_retrying(&events, batch.messages).await? {
            Ok(report) => Ok(report),
            Err(e) => {
                // Find the culprit(s): one event at a time.
                tracing::error!(error = %e, "A batch was refused; storing its events one by one.");
                let mut total = AddReport::default();
                let raws = std::mem::take(&mut batch.event_raw);
                for (event, (source, raw)) in events.into_iter().zip(raws) {
                    match self.add_retrying(std::slice::from_ref(&event), 1).await? {
                        Ok(report) => total.absorb(&report),
                        Err(e) => batch.poison.push(Poison {
                            source,
                            reason: format!("cannot be stored: {e}"),
                            raw,
                            forward: Forward::TableOnly,
                        }),
                    }
                }
                Ok(total)
            }
        }
    }

    /// `add_events` until it succeeds or fails for a reason other than the database. The outer
    /// error: shutting down and out of time.
    async fn add_retrying(
        &mut self,
        events: &[Event],
        messages: usize,
    ) -> Result<std::result::Result<AddReport, tach_worker::Error>> {
        let mut attempt = 0u32;
        loop {
            match self.manager.add_events(events, Utc::now()).await {
                Ok(report) => {
                    if attempt > 0 {
                        tracing::info!(
                            attempts = attempt + 1,
                            "The database is back; batch committed."
                        );
                    }
                    return Ok(Ok(report));
                }
                Err(tach_worker::Error::Store(e)) => {
                    self.totals.commit_retries += 1;
                    if !self.may_retry() {
                        return Err(Error::Uncommitted {
                            messages,
                            last_error: e.to_string(),
                        });
                    }
                    let delay = self.backoff.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                        "Cannot commit a batch; not acknowledging, retrying.");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Ok(Err(e)),
            }
        }
    }

    async fn record_dead_letter(
        &mut self,
        source: &str,
        reason: &str,
        raw: &[u8],
        messages: usize,
    ) -> Result<()> {
        let mut attempt = 0u32;
        loop {
            match self.store.insert_dead_letter(source, reason, raw).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    self.totals.commit_retries += 1;
                    if !self.may_retry() {
                        return Err(Error::Uncommitted {
                            messages,
                            last_error: e.to_string(),
                        });
                    }
                    let delay = self.backoff.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(error = %e, "Cannot record a dead letter; retrying.");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// False once shutdown was requested more than `shutdown_timeout` ago.
    fn may_retry(&mut self) -> bool {
        if !*self.stop.borrow() {
            return true;
        }
        let since = *self.stopping_since.get_or_insert_with(Instant::now);
        since.elapsed() < self.shutdown_timeout
    }
}
