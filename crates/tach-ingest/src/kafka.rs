//! The Kafka source: a consumer in a group (workers in one group share the partitions), offsets
//! committed by the pipeline after each batch, and a producer for the dead-letter topic.
//!
//! librdkafka reconnects to brokers by itself; errors the consumer reports are logged and
//! retried after a capped exponential backoff.
//!
//! Offsets are committed asynchronously while running and synchronously once shutdown is
//! requested; [`KafkaSource::commit_on_shutdown`] finally commits, synchronously, the newest
//! offsets committed so far, so that an asynchronous commit still in flight when the worker
//! stops is not lost with the consumer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Message as _;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};

use crate::config::{BackoffConfig, KafkaConfig};
use crate::distil::Distil;
use crate::error::Result;
use crate::message::{Message, Origin};

/// Largest dead letter the producer sends, in bytes (librdkafka's `message.max.bytes`).
const PRODUCER_MAX_BYTES: usize = 16 << 20;

/// A Kafka source shared between its consuming task and the pipeline.
pub(crate) struct KafkaSource {
    /// Index of the source in `ingest.sources`.
    pub index: usize,
    config: KafkaConfig,
    consumer: StreamConsumer,
    producer: FutureProducer,
    dead_letter_topic: String,
    /// The newest offset committed (or handed to an asynchronous commit) per (topic,
    /// partition): the record's offset, the committed one is the next.
    committed: Mutex<HashMap<(Arc<str>, i32), i64>>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("index", &self.index)
            .field("brokers", &self.config.brokers)
            .field("topics", &self.config.topics)
            .field("group", &self.config.group)
            .finish_non_exhaustive()
    }
}

/// The consumer's `fetch.wait.max.ms` unless the source's `options` set it.
const FETCH_WAIT_MAX_MS: &str = "50";

impl KafkaSource {
    /// Creates the consumer (subscribed to the topics) and the dead-letter producer.
    ///
    /// # Errors
    /// [`crate::Error::Kafka`] when librdkafka rejects a setting or the subscription.
    pub fn new(
        index: usize,
        config: KafkaConfig,
        dead_letter_topic: String,
        max_message_bytes: usize,
    ) -> Result<KafkaSource> {
        let consumer_config = consumer_config(&config, max_message_bytes);
        let mut producer_config = ClientConfig::new();
        producer_config
            .set("bootstrap.servers", &config.brokers)
            .set("message.timeout.ms", "30000")
            .set("message.max.bytes", PRODUCER_MAX_BYTES.to_string());
        let consumer: StreamConsumer = consumer_config.create()?;
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        let producer: FutureProducer = producer_config.create()?;
        Ok(KafkaSource {
            index,
            config,
            consumer,
            producer,
            dead_letter_topic,
            committed: Mutex::new(HashMap::new()),
        })
    }

    /// Consumes until `stop` turns true; each record is distilled with `distil` before it is
    /// sent to the pipeline.
    pub async fn run(
        self: Arc<Self>,
        tx: mpsc::Sender<Message>,
        distil: Arc<Distil>,
        mut stop: watch::Receiver<bool>,
        backoff: BackoffConfig,
    ) {
        let mut topics: HashMap<String, (Arc<str>, Arc<str>)> = HashMap::new();
        let mut attempt = 0u32;
        tracing::info!(
            brokers = %self.config.brokers,
            topics = ?self.config.topics,
            group = %self.config.group,
            "Consuming from Kafka."
        );
        loop {
            if *stop.borrow() {
                return;
            }
            let received = tokio::select! {
                r = self.consumer.recv() => r,
                _ = stop.changed() => return,
            };
            let message = match received {
                Ok(m) => {
                    attempt = 0;
                    let (topic, source) = topics
                        .entry(m.topic().to_owned())
                        .or_insert_with(|| {
                            (
                                Arc::from(m.topic()),
                                Arc::from(format!("kafka:{}", m.topic())),
                            )
                        })
                        .clone();
                    let payload = m.payload().map(<[u8]>::to_vec).unwrap_or_default();
                    Message {
                        distilled: distil.distil(&payload),
                        payload,
                        source,
                        source_index: self.index,
                        origin: Origin::Kafka {
                            partition: m.partition(),
                            offset: m.offset(),
                            topic,
                        },
                    }
                }
                Err(e) => {
                    let delay = backoff.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                        "Kafka consumer error.");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => continue,
                        _ = stop.changed() => return,
                    }
                }
            };
            tokio::select! {
                sent = tx.send(message) => if sent.is_err() { return },
                _ = stop.changed() => return,
            }
        }
    }

    /// Commits, per (topic, partition), the offset after the highest one in `offsets`.
    ///
    /// # Errors
    /// The Kafka error (e.g. the partition was reassigned to another worker in the group:
    /// its records are then read again there, and ignored as duplicates).
    pub fn commit(
        &self,
        offsets: &HashMap<(Arc<str>, i32), i64>,
        sync: bool,
    ) -> std::result::Result<(), rdkafka::error::KafkaError> {
        let mut list = TopicPartitionList::with_capacity(offsets.len());
        for ((topic, partition), offset) in offsets {
            list.add_partition_offset(topic, *partition, Offset::Offset(offset + 1))?;
        }
        let mode = if sync {
            CommitMode::Sync
        } else {
            CommitMode::Async
        };
        self.consumer.commit(&list, mode)?;
        let mut committed = self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (key, offset) in offsets {
            let newest = committed.entry(key.clone()).or_insert(*offset);
            *newest = (*newest).max(*offset);
        }
        Ok(())
    }

    /// At shutdown, after the last batch: commits synchronously the newest offsets committed
    /// so far, of the partitions still assigned to this consumer (a partition reassigned to
    /// another worker of the group is that worker's to commit). An asynchronous commit still
    /// in flight is thereby confirmed, or replaced, before the consumer closes.
    ///
    /// # Errors
    /// The Kafka error; the records after the last stored offsets come again.
    pub fn commit_on_shutdown(&self) -> std::result::Result<(), rdkafka::error::KafkaError> {
        let committed = self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if committed.is_empty() {
            return Ok(());
        }
        let assignment = self.consumer.assignment()?;
        let mut list = TopicPartitionList::with_capacity(committed.len());
        for ((topic, partition), offset) in &committed {
            if assignment.find_partition(topic, *partition).is_some() {
                list.add_partition_offset(topic, *partition, Offset::Offset(offset + 1))?;
            }
        }
        if list.count() == 0 {
            return Ok(());
        }
        self.consumer.commit(&list, CommitMode::Sync)
    }

    /// Produces a poison message to the dead-letter topic and waits for the broker.
    /// Headers: `x-tach-reason`, `x-tach-source`, `x-tach-original-size`.
    pub async fn forward_dead_letter(
        &self,
        source: &str,
        reason: &str,
        raw: &[u8],
        original_size: usize,
    ) -> std::result::Result<(), String> {
        let size = original_size.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "x-tach-reason",
                value: Some(reason),
            })
            .insert(Header {
                key: "x-tach-source",
                value: Some(source),
            })
            .insert(Header {
                key: "x-tach-original-size",
                value: Some(size.as_str()),
            });
        let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.dead_letter_topic)
            .payload(raw)
            .headers(headers);
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e.to_string())
    }
}

/// The consumer's settings: tach's, then the source's `options` over them.
fn consumer_config(config: &KafkaConfig, max_message_bytes: usize) -> ClientConfig {
    let mut consumer_config = ClientConfig::new();
    consumer_config
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // How long the broker may hold a fetch for more data (librdkafka's default is
        // 500 ms). Kafka answers as soon as a record is there, but some compatible brokers
        // hold every fetch that long: tansu 0.6 then delivered 10k records/s, and 32k/s
        // with 50 ms. An idle consumer sends 20 fetches a second instead of 2.
        .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS)
        // Poison "too big" messages must reach the worker to be dead-lettered.
        .set(
            "fetch.message.max.bytes",
            (max_message_bytes.max(1 << 20) * 2)
                .min(1 << 30)
                .to_string(),
        );
    for (key, value) in &config.options {
        consumer_config.set(key, value);
    }
    consumer_config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetches_wait_at_most_50_ms_unless_the_options_say_otherwise() {
        let mut config = KafkaConfig::default();
        let c = consumer_config(&config, 1 << 20);
        assert_eq!(c.get("fetch.wait.max.ms"), Some("50"));
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        config
            .options
            .insert("fetch.wait.max.ms".to_owned(), "500".to_owned());
        let c = consumer_config(&config, 1 << 20);
        assert_eq!(c.get("fetch.wait.max.ms"), Some("500"));
    }
}
