//! Kafka publishing with rdkafka: `acks=all`, a sliding window of delivery reports.

use std::collections::VecDeque;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

use crate::{Error, Result};

/// Where and how to publish on Kafka.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port[,host:port…]`.
    pub brokers: String,
    /// The topic messages are produced to.
    pub topic: String,
    /// How long librdkafka may try to deliver a message (`message.timeout.ms`).
    pub timeout: Duration,
    /// Unconfirmed messages in flight before the oldest delivery report is awaited.
    pub window: usize,
    /// Further librdkafka properties (e.g. `linger.ms`, `compression.type`).
    pub properties: Vec<(String, String)>,
}

impl KafkaConfig {
    /// A configuration for `topic` on `brokers`, 30 s delivery timeout, a window of 20,000.
    pub fn new(brokers: &str, topic: &str) -> KafkaConfig {
        KafkaConfig {
            brokers: brokers.to_string(),
            topic: topic.to_string(),
            timeout: Duration::from_secs(30),
            window: 20_000,
            properties: Vec::new(),
        }
    }

    /// `kafka://brokers/topic`, for messages.
    pub fn describe(&self) -> String {
        format!("kafka://{}/{}", self.brokers, self.topic)
    }
}

/// A Kafka producer waiting for every delivery report.
pub struct KafkaPublisher {
    producer: FutureProducer,
    topic: String,
    window: usize,
    pending: VecDeque<(String, DeliveryFuture)>,
    sent: u64,
    confirmed: u64,
    target: String,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("target", &self.target)
            .field("sent", &self.sent)
            .field("confirmed", &self.confirmed)
            .finish()
    }
}

impl KafkaPublisher {
    /// Creates the producer (`acks=all`) and checks that the topic exists (brokers that
    /// create topics on demand create it then). Blocks for up to `timeout` when no broker
    /// answers.
    ///
    /// # Errors
    /// [`Error::Kafka`] when librdkafka rejects the configuration, no broker answers, or the
    /// topic does not exist.
    pub fn connect(config: &KafkaConfig) -> Result<KafkaPublisher> {
        let target = config.describe();
        let timeout_ms = config.timeout.as_millis().max(1).to_string();
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &config.brokers)
            .set("acks", "all")
            .set("message.timeout.ms", &timeout_ms)
            .set("linger.ms", "5")
            .set("queue.buffering.max.messages", "1000000");
        for (key, value) in &config.properties {
            client.set(key, value);
        }
        let producer: FutureProducer = client.create().map_err(|source| Error::Kafka {
            what: format!("creating a producer for {target}"),
            source,
        })?;
        let metadata = producer
            .client()
            .fetch_metadata(Some(&config.topic), config.timeout)
            .map_err(|source| Error::Kafka {
                what: format!("reading the metadata of {target}"),
                source,
            })?;
        if let Some(error) = metadata
            .topics()
            .iter()
            .find(|t| t.name() == config.topic)
            .and_then(|t| t.error())
        {
            return Err(Error::Kafka {
                what: format!(
                    "topic `{}` on {} (create it first if the broker does not create \
                     topics on demand)",
                    config.topic, config.brokers
                ),
                source: KafkaError::MetadataFetch(error.into()),
            });
        }
        Ok(KafkaPublisher {
            producer,
            topic: config.topic.clone(),
            window: config.window.max(1),
            pending: VecDeque::new(),
            sent: 0,
            confirmed: 0,
            target,
        })
    }

    /// Produces one message with `key` (partitioning by it); when the window is full, first
    /// waits for the oldest delivery report.
    ///
    /// # Errors
    /// A failed delivery.
    pub async fn publish(&mut self, key: &str, body: &[u8]) -> Result<()> {
        while self.pending.len() >= self.window {
            self.confirm_oldest().await?;
        }
        loop {
            let record = FutureRecord::to(&self.topic).key(key).payload(body);
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.sent += 1;
                    self.pending.push_back((key.to_string(), delivery));
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if !self.pending.is_empty() =>
                {
                    self.confirm_oldest().await?;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((source, _)) => {
                    return Err(Error::Kafka {
                        what: format!("producing {key:?} to {}", self.target),
                        source,
                    });
                }
            }
        }
    }

    /// Waits for the oldest delivery report.
    async fn confirm_oldest(&mut self) -> Result<()> {
        let Some((key, delivery)) = self.pending.pop_front() else {
            return Ok(());
        };
        match delivery.await {
            Ok(Ok(_)) => {
                self.confirmed += 1;
                Ok(())
            }
            Ok(Err((source, _))) => Err(Error::Kafka {
                what: format!("delivering {key:?} to {}", self.target),
                source,
            }),
            Err(_) => Err(Error::Kafka {
                what: format!("delivering {key:?} to {}", self.target),
                source: KafkaError::Canceled,
            }),
        }
    }

    /// Waits until every message produced so far is delivered.
    ///
    /// # Errors
    /// As [`Self::publish`].
    pub async fn flush(&mut self) -> Result<()> {
        while !self.pending.is_empty() {
            self.confirm_oldest().await?;
        }
        Ok(())
    }

    /// Messages produced.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Messages whose delivery the broker acknowledged.
    pub fn confirmed(&self) -> u64 {
        self.confirmed
    }

    /// Drops undelivered messages and the producer.
    pub fn close(self) {
        self.producer
            .purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
    }
}
