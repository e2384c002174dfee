//! [`IngestConfig`]: the `ingest:` section of winchester.yaml, typed, with defaults.
//!
//! ```yaml
//! ingest:
//!   sources:
//!     - type: rabbitmq            # or amqp
//!       host: 127.0.0.1           # or url: amqp://guest:guest@127.0.0.1:5672/%2f
//!       queues:
//!         - queue: monitor.info   # exchange monitor (topic), routing key monitor.info
//!           prefetch: 10000
//!     - type: kafka
//!       brokers: 127.0.0.1:9092
//!       topics: [monitor.info]
//!       group: tach-ingest
//!     - type: files
//!       paths: [notifications.jsonl]
//!   batch: {max_messages: 5000, max_wait_ms: 200}
//!   dead_letter: {exchange: monitor.dead, queue: monitor.dead, topic: monitor.dead}
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// Default largest message accepted (1 MiB); larger ones are poison.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 20;

/// The `ingest:` section of winchester.yaml.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestConfig {
    /// Where notifications come from; at least one.
    pub sources: Vec<SourceConfig>,
    /// How events are grouped into store transactions.
    pub batch: BatchConfig,
    /// Messages larger than this many bytes are poison.
    pub max_message_bytes: usize,
    /// Where poison messages go besides the `dead_letters` table.
    pub dead_letter: DeadLetterConfig,
    /// Waits between reconnection (broker) and commit (database) attempts.
    pub backoff: BackoffConfig,
    /// Time between statistics log lines; `None`: winchester.yaml's `statistics_period`.
    pub statistics_period: Option<Duration>,
    /// After SIGTERM, how long a batch that cannot be committed is retried before giving up
    /// (its messages are then not acknowledged, so the broker delivers them again).
    pub shutdown_timeout: Duration,
}

/// One source of notifications.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceConfig {
    /// RabbitMQ queues, read with lapin.
    Rabbitmq(RabbitConfig),
    /// Kafka topics in a consumer group, read with rdkafka.
    Kafka(KafkaConfig),
    /// Files of JSON lines, read once to the end.
    Files(FilesConfig),
    /// Standard input as JSON lines, read to the end.
    Stdin,
}

/// A RabbitMQ connection and the queues it consumes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RabbitConfig {
    /// `amqp://user:password@host:port/vhost`; when set, host/port/vhost/user/password are unused.
    pub url: Option<String>,
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Virtual host.
    pub vhost: String,
    /// User name.
    #[serde(alias = "userid")]
    pub user: String,
    /// Password.
    pub password: String,
    /// Queues to consume, each on its own channel.
    pub queues: Vec<QueueConfig>,
}

impl Default for RabbitConfig {
    fn default() -> RabbitConfig {
        RabbitConfig {
            url: None,
            host: "127.0.0.1".to_owned(),
            port: 5672,
            vhost: "/".to_owned(),
            user: "guest".to_owned(),
            password: "guest".to_owned(),
            queues: vec![QueueConfig::default()],
        }
    }
}

impl RabbitConfig {
    /// The AMQP URI to connect to.
    pub fn uri(&self) -> String {
        if let Some(url) = &self.url {
            return url.clone();
        }
        format!(
            "amqp://{}:{}@{}:{}/{}",
            percent_encode(&self.user),
            percent_encode(&self.password),
            self.host,
            self.port,
            percent_encode(&self.vhost)
        )
    }

    /// The URI with its password hidden, for logs.
    pub fn display_uri(&self) -> String {
        let uri = self.uri();
        match (uri.find("://"), uri.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &uri[scheme + 3..at];
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{}{user}:***{}", &uri[..scheme + 3], &uri[at..])
            }
            _ => uri,
        }
    }
}

/// One queue: declared, bound to its exchange and consumed as StackTach's yagi did.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Exchange the queue is bound to.
    pub exchange: String,
    /// Its type: topic, direct, fanout or headers.
    pub exchange_type: String,
    /// Queue name.
    #[serde(alias = "queue_name")]
    pub queue: String,
    /// Binding key.
    pub routing_key: String,
    /// Exchange and queue survive a broker restart.
    pub durable: bool,
    /// Unacknowledged deliveries the broker may send ahead (StackTach's `max_messages`); keep
    /// it above `batch.max_messages` so that a batch can fill while the previous one commits.
    #[serde(alias = "max_messages")]
    pub prefetch: u16,
}

impl Default for QueueConfig {
    fn default() -> QueueConfig {
        QueueConfig {
            exchange: "monitor".to_owned(),
            exchange_type: "topic".to_owned(),
            queue: "monitor.info".to_owned(),
            routing_key: "monitor.info".to_owned(),
            durable: true,
            prefetch: 10_000,
        }
    }
}

/// Kafka topics read in a consumer group.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Topics to read.
    #[serde(alias = "topic", deserialize_with = "one_or_many")]
    pub topics: Vec<String>,
    /// Consumer group: workers in one group share the partitions.
    pub group: String,
    /// Extra librdkafka settings for the consumer and the dead-letter producer.
    pub options: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> KafkaConfig {
        KafkaConfig {
            brokers: "127.0.0.1:9092".to_owned(),
            topics: vec!["monitor.info".to_owned()],
            group: "tach-ingest".to_owned(),
            options: BTreeMap::new(),
        }
    }
}

/// Files of JSON lines.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// The files, read in order (relative paths: to the working directory).
    #[serde(alias = "path", deserialize_with = "one_or_many_paths")]
    pub paths: Vec<PathBuf>,
}

/// Batching of events into store transactions.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// A batch is committed when it holds this many messages...
    pub max_messages: usize,
    /// ... or when its first message is this many milliseconds old.
    pub max_wait_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> BatchConfig {
        BatchConfig {
            max_messages: 5000,
            max_wait_ms: 200,
        }
    }
}

/// Where poison messages are forwarded, and how much of them is kept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// AMQP exchange poison messages from RabbitMQ are published to.
    pub exchange: String,
    /// Its type.
    pub exchange_type: String,
    /// AMQP queue bound to it (declared, durable).
    pub queue: String,
    /// Routing key of the published dead letters and of the binding.
    pub routing_key: String,
    /// Kafka topic poison messages from Kafka are produced to.
    pub topic: String,
    /// At most this many bytes of a poison message are kept in the table and forwarded; the
    /// reason then says how long it was.
    pub max_raw_bytes: usize,
}

impl Default for DeadLetterConfig {
    fn default() -> DeadLetterConfig {
        DeadLetterConfig {
            exchange: "monitor.dead".to_owned(),
            exchange_type: "direct".to_owned(),
            queue: "monitor.dead".to_owned(),
            routing_key: "monitor.dead".to_owned(),
            topic: "monitor.dead".to_owned(),
            max_raw_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// Capped exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackoffConfig {
    /// First wait, in milliseconds.
    pub initial_ms: u64,
    /// Longest wait, in milliseconds.
    pub max_ms: u64,
}

impl Default for BackoffConfig {
    fn default() -> BackoffConfig {
        BackoffConfig {
            initial_ms: 100,
            max_ms: 30_000,
        }
    }
}

impl BackoffConfig {
    /// The wait before retry `attempt` (0-based): doubling from `initial_ms`, at most `max_ms`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ms = self
            .initial_ms
            .max(1)
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.max_ms.max(1));
        Duration::from_millis(ms)
    }
}

/// The raw section, before the sources are read one by one.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawIngest {
    sources: Vec<Value>,
    batch: BatchConfig,
    max_message_bytes: usize,
    dead_letter: DeadLetterConfig,
    backoff: BackoffConfig,
    statistics_period: Option<f64>,
    shutdown_timeout: f64,
}

impl Default for RawIngest {
    fn default() -> RawIngest {
        RawIngest {
            sources: Vec::new(),
            batch: BatchConfig::default(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            dead_letter: DeadLetterConfig::default(),
            backoff: BackoffConfig::default(),
            statistics_period: None,
            shutdown_timeout: 30.0,
        }
    }
}

impl IngestConfig {
    /// Reads the `ingest:` section (`None`: the section is missing).
    ///
    /// # Errors
    /// [`Error::Config`] naming the key that is missing, unknown or invalid.
    pub fn from_section(section: Option<&Value>) -> Result<IngestConfig> {
        let Some(section) = section else {
            return Err(config_error(
                "ingest",
                "winchester.yaml has no ingest: section (it names the sources to read)",
            ));
        };
        let raw: RawIngest =
            RawIngest::deserialize(section).map_err(|e| config_error("ingest", e))?;
        let mut sources = Vec::with_capacity(raw.sources.len());
        for (i, value) in raw.sources.iter().enumerate() {
            sources.push(source(value, &format!("ingest.sources[{i}]"))?);
        }
        if sources.is_empty() {
            return Err(config_error(
                "ingest.sources",
                "at least one source is needed",
            ));
        }
        if raw.batch.max_messages == 0 {
            return Err(config_error(
                "ingest.batch.max_messages",
                "must be at least 1",
            ));
        }
        if raw.batch.max_wait_ms == 0 {
            return Err(config_error(
                "ingest.batch.max_wait_ms",
                "must be at least 1",
            ));
        }
        if raw.max_message_bytes == 0 {
            return Err(config_error(
                "ingest.max_message_bytes",
                "must be at least 1",
            ));
        }
        let statistics_period = match raw.statistics_period {
            None => None,
            Some(s) => Some(seconds(s, "ingest.statistics_period")?),
        };
        let shutdown_timeout = seconds(raw.shutdown_timeout, "ingest.shutdown_timeout")?;
        Ok(IngestConfig {
            sources,
            batch: raw.batch,
            max_message_bytes: raw.max_message_bytes,
            dead_letter: raw.dead_letter,
            backoff: raw.backoff,
            statistics_period,
            shutdown_timeout,
        })
    }

    /// Warnings about settings that work but are probably not meant (prefetch below the batch
    /// size makes every batch wait `max_wait_ms`).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, source) in self.sources.iter().enumerate() {
            if let SourceConfig::Rabbitmq(r) = source {
                for (q, queue) in r.queues.iter().enumerate() {
                    if usize::from(queue.prefetch) < self.batch.max_messages {
                        out.push(format!(
                            "ingest.sources[{i}].queues[{q}].prefetch {} is below \
                             ingest.batch.max_messages {}: batches will wait max_wait_ms",
                            queue.prefetch, self.batch.max_messages
                        ));
                    }
                }
            }
        }
        out
    }
}

/// One source, by its `type`.
fn source(value: &Value, key: &str) -> Result<SourceConfig> {
    let Some(map) = value.as_object() else {
        return Err(config_error(key, "a source is a mapping with a `type`"));
    };
    let Some(kind) = map.get("type").and_then(Value::as_str) else {
        return Err(config_error(
            &format!("{key}.type"),
            "missing: rabbitmq, kafka, files or stdin",
        ));
    };
    let mut rest = map.clone();
    rest.remove("type");
    let rest = Value::Object(rest);
    let wrap = |e: serde_json::Error| config_error(key, e);
    let config = match kind {
        "rabbitmq" | "amqp" => {
            let r = RabbitConfig::deserialize(&rest).map_err(wrap)?;
            if r.queues.is_empty() {
                return Err(config_error(&format!("{key}.queues"), "at least one queue"));
            }
            for (q, queue) in r.queues.iter().enumerate() {
                if queue.prefetch == 0 {
                    return Err(config_error(
                        &format!("{key}.queues[{q}].prefetch"),
                        "must be at least 1",
                    ));
                }
                if !matches!(
                    queue.exchange_type.as_str(),
                    "topic" | "direct" | "fanout" | "headers"
                ) {
                    return Err(config_error(
                        &format!("{key}.queues[{q}].exchange_type"),
                        format!(
                            "`{}` is not topic, direct, fanout or headers",
                            queue.exchange_type
                        ),
                    ));
                }
            }
            if let Some(url) = &r.url
                && !(url.starts_with("amqp://") || url.starts_with("amqps://"))
            {
                return Err(config_error(
                    &format!("{key}.url"),
                    format!("`{url}` is not an amqp:// or amqps:// URL"),
                ));
            }
            SourceConfig::Rabbitmq(r)
        }
        "kafka" => {
            let k = KafkaConfig::deserialize(&rest).map_err(wrap)?;
            if k.topics.is_empty() {
                return Err(config_error(&format!("{key}.topics"), "at least one topic"));
            }
            if k.brokers.trim().is_empty() {
                return Err(config_error(&format!("{key}.brokers"), "must not be empty"));
            }
            SourceConfig::Kafka(k)
        }
        "files" | "file" => {
            let f = FilesConfig::deserialize(&rest).map_err(wrap)?;
            if f.paths.is_empty() {
                return Err(config_error(&format!("{key}.paths"), "at least one file"));
            }
            SourceConfig::Files(f)
        }
        "stdin" => {
            if let Some(k) = rest.as_object().and_then(|m| m.keys().next()) {
                return Err(config_error(
                    &format!("{key}.{k}"),
                    "a stdin source takes no settings",
                ));
            }
            SourceConfig::Stdin
        }
        other => {
            return Err(config_error(
                &format!("{key}.type"),
                format!("`{other}` is not rabbitmq, kafka, files or stdin"),
            ));
        }
    };
    Ok(config)
}

fn seconds(value: f64, key: &str) -> Result<Duration> {
    if value.is_nan() || value <= 0.0 {
        return Err(config_error(
            key,
            format!("must be a positive number of seconds, got {value}"),
        ));
    }
    Duration::try_from_secs_f64(value).map_err(|e| config_error(key, e))
}

fn config_error(key: &str, message: impl std::fmt::Display) -> Error {
    Error::Config {
        key: key.to_owned(),
        message: message.to_string(),
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

fn one_or_many_paths<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<PathBuf>, D::Error> {
    Ok(one_or_many(d)?.into_iter().map(PathBuf::from).collect())
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for URI user info and vhost.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_follow_stacktach_yagi() {
        let c =
            IngestConfig::from_section(Some(&json!({"sources": [{"type": "rabbitmq"}]}))).unwrap();
        let SourceConfig::Rabbitmq(r) = &c.sources[0] else {
            panic!("not rabbitmq")
        };
        assert_eq!(r.uri(), "amqp://guest:guest@127.0.0.1:5672/%2F");
        assert_eq!(r.display_uri(), "amqp://guest:***@127.0.0.1:5672/%2F");
        let q = &r.queues[0];
        assert_eq!(
            (
                q.exchange.as_str(),
                q.exchange_type.as_str(),
                q.queue.as_str()
            ),
            ("monitor", "topic", "monitor.info")
        );
        assert_eq!(q.routing_key, "monitor.info");
        assert_eq!(c.batch, BatchConfig::default());
        assert_eq!(c.max_message_bytes, 1 << 20);
        assert_eq!(c.dead_letter.queue, "monitor.dead");
    }

    #[test]
    fn several_sources_and_queues() {
        let c = IngestConfig::from_section(Some(&json!({
            "sources": [
                {"type": "amqp", "url": "amqp://u:p@h:1/v", "queues": [
                    {"queue": "a", "max_messages": 10},
                    {"queue_name": "b", "exchange": "nova", "exchange_type": "fanout"}]},
                {"type": "kafka", "topic": "t", "group": "g"},
                {"type": "files", "paths": ["a.jsonl", "b.jsonl"]},
                {"type": "stdin"}],
            "batch": {"max_messages": 50, "max_wait_ms": 7},
            "statistics_period": 2.5
        })))
        .unwrap();
        assert_eq!(c.sources.len(), 4);
        let SourceConfig::Rabbitmq(r) = &c.sources[0] else {
            panic!()
        };
        assert_eq!(r.uri(), "amqp://u:p@h:1/v");
        assert_eq!(r.queues[0].prefetch, 10);
        assert_eq!(r.queues[1].queue, "b");
        let SourceConfig::Kafka(k) = &c.sources[1] else {
            panic!()
        };
        assert_eq!(k.topics, ["t"]);
        assert_eq!(c.statistics_period, Some(Duration::from_millis(2500)));
        assert_eq!(c.warnings().len(), 1);
    }

    #[test]
    fn errors_name_the_key() {
        let err = |v: Value| {
            IngestConfig::from_section(Some(&v))
                .unwrap_err()
                .to_string()
        };
        assert!(err(json!({"sources": []})).contains("ingest.sources"));
        let e = err(json!({"sources": [{"type": "rabbitmq", "hots": "x"}]}));
        assert!(e.contains("ingest.sources[0]") && e.contains("hots"), "{e}");
        let e = err(json!({"sources": [{"type": "mqtt"}]}));
        assert!(e.contains("ingest.sources[0].type"), "{e}");
        let e = err(json!({"sources": [{"type": "stdin"}], "batch": {"max_messages": 0}}));
        assert!(e.contains("ingest.batch.max_messages"), "{e}");
        let e = err(json!({"sources": [{"type": "stdin"}], "batchh": {}}));
        assert!(e.contains("batchh"), "{e}");
        let e = err(json!({"sources": [{"type": "rabbitmq", "queues": [{"prefetch": 0}]}]}));
        assert!(e.contains("ingest.sources[0].queues[0].prefetch"), "{e}");
        assert!(IngestConfig::from_section(None).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = BackoffConfig {
            initial_ms: 100,
            max_ms: 1000,
        };
        let ms: Vec<u128> = (0..6).map(|a| b.delay(a).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
    }
}
