//! One publisher type over RabbitMQ and Kafka, chosen by a URL.

use crate::amqp::redact;
use crate::{AmqpConfig, AmqpPublisher, Error, KafkaConfig, KafkaPublisher, Result};

/// Where to publish: a RabbitMQ exchange or a Kafka topic.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A RabbitMQ exchange and routing key.
    Amqp(AmqpConfig),
    /// A Kafka topic.
    Kafka(KafkaConfig),
}

impl Target {
    /// Reads `amqp://user:pass@host:port/vhost` (or `amqps://`; `exchange` and `routing_key`
    /// apply) or `kafka://host:port[,host:port…]/topic`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming what is wrong with the URL.
    pub fn parse(url: &str, exchange: &str, routing_key: &str) -> Result<Target> {
        if url.starts_with("amqp://") || url.starts_with("amqps://") {
            return Ok(Target::Amqp(AmqpConfig::from_url(
                url,
                exchange,
                routing_key,
            )?));
        }
        if let Some(rest) = url.strip_prefix("kafka://") {
            let (brokers, topic) = rest.split_once('/').ok_or_else(|| {
                Error::Invalid(format!(
                    "`{}`: expected kafka://host:port/topic",
                    redact(url)
                ))
            })?;
            if brokers.is_empty() || topic.is_empty() || topic.contains('/') {
                return Err(Error::Invalid(format!(
                    "`{}`: expected kafka://host:port/topic",
                    redact(url)
                )));
            }
            return Ok(Target::Kafka(KafkaConfig::new(brokers, topic)));
        }
        Err(Error::Invalid(format!(
            "`{}`: the scheme must be amqp://, amqps:// or kafka://",
            redact(url)
        )))
    }

    /// The target without secrets, for messages.
    pub fn describe(&self) -> String {
        match self {
            Target::Amqp(c) => c.describe(),
            Target::Kafka(c) => c.describe(),
        }
    }
}

/// A connected publisher with a window of unconfirmed messages.
#[derive(Debug)]
pub enum Publisher {
    /// RabbitMQ with publisher confirms.
    Amqp(Box<AmqpPublisher>),
    /// Kafka with delivery reports.
    Kafka(KafkaPublisher),
}

impl Publisher {
    /// Connects to `target` (declaring what it needs).
    ///
    /// # Errors
    /// As [`AmqpPublisher::connect`] and [`KafkaPublisher::connect`].
    pub async fn connect(target: &Target) -> Result<Publisher> {
        Ok(match target {
            Target::Amqp(c) => Publisher::Amqp(Box::new(AmqpPublisher::connect(c).await?)),
            Target::Kafka(c) => Publisher::Kafka(KafkaPublisher::connect(c)?),
        })
    }

    /// Publishes one message; `key` is its message_id (the Kafka key).
    ///
    /// # Errors
    /// A failed publish, or an earlier message that was not confirmed.
    pub async fn publish(&mut self, key: &str, body: &[u8]) -> Result<()> {
        match self {
            Publisher::Amqp(p) => p.publish(key, body).await,
            Publisher::Kafka(p) => p.publish(key, body).await,
        }
    }

    /// Hands buffered messages to the broker now, without waiting for confirms (before a
    /// pause, e.g. when publishing at a fixed rate).
    ///
    /// # Errors
    /// A failed publish, or an earlier message that was not confirmed.
    pub async fn send_buffered(&mut self) -> Result<()> {
        match self {
            Publisher::Amqp(p) => p.send_buffered().await,
            Publisher::Kafka(_) => Ok(()),
        }
    }

    /// Waits for every outstanding confirm.
    ///
    /// # Errors
    /// A message that was not confirmed.
    pub async fn flush(&mut self) -> Result<()> {
        match self {
            Publisher::Amqp(p) => p.flush().await,
            Publisher::Kafka(p) => p.flush().await,
        }
    }

    /// Messages published.
    pub fn sent(&self) -> u64 {
        match self {
            Publisher::Amqp(p) => p.sent(),
            Publisher::Kafka(p) => p.sent(),
        }
    }

    /// Messages confirmed.
    pub fn confirmed(&self) -> u64 {
        match self {
            Publisher::Amqp(p) => p.confirmed(),
            Publisher::Kafka(p) => p.confirmed(),
        }
    }

    /// Closes the connection.
    pub async fn close(self) {
        match self {
            Publisher::Amqp(p) => (*p).close().await,
            Publisher::Kafka(p) => p.close(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_broker() {
        let t = Target::parse(
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            "monitor",
            "monitor.info",
        )
        .unwrap();
        let Target::Amqp(c) = t else { panic!("amqp") };
        assert_eq!(c.uri.authority.host, "127.0.0.1");
        assert_eq!(c.uri.vhost, "/");
        assert_eq!(
            (c.exchange.as_str(), c.routing_key.as_str()),
            ("monitor", "monitor.info")
        );
        let t = Target::parse("kafka://127.0.0.1:9092,h2:9092/events", "x", "y").unwrap();
        assert_eq!(
            t,
            Target::Kafka(KafkaConfig::new("127.0.0.1:9092,h2:9092", "events"))
        );
        for bad in ["http://x", "kafka://h:1", "kafka:///t", "kafka://h:1/"] {
            assert!(Target::parse(bad, "e", "r").is_err(), "{bad}");
        }
        let err = Target::parse("ftp://u:secret@h/", "e", "r")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }
}
