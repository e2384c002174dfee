//! RabbitMQ publishing with lapin: declare the exchange (and a bound queue), publish with
//! publisher confirms, a sliding window of unconfirmed messages.

use std::collections::VecDeque;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::uri::{AMQPAuthority, AMQPUri, AMQPUserInfo};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
    PublisherConfirm,
};

use crate::{Error, Result};

/// Where and how to publish on RabbitMQ.
#[derive(Debug, Clone, PartialEq)]
pub struct AmqpConfig {
    /// The broker (scheme, host, port, user, password, vhost).
    pub uri: AMQPUri,
    /// The exchange messages are published to (declared first unless it is `""`).
    pub exchange: String,
    /// The exchange type: `topic` (default), `direct`, `fanout`, `headers` or a plugin's type.
    pub exchange_type: String,
    /// Declare the exchange (and queue) durable.
    pub durable: bool,
    /// Publish persistent messages (delivery mode 2: the broker writes them to disk before it
    /// confirms, several times slower); otherwise transient, as OpenStack's notifications.
    pub persistent: bool,
    /// The routing key of every message.
    pub routing_key: String,
    /// A queue to declare and bind to the exchange with the routing key, so messages are kept
    /// until someone consumes them (StackTach notabene's `queue_name`).
    pub queue_name: Option<String>,
    /// Publish with the `mandatory` flag: an unroutable message is returned, an error.
    pub mandatory: bool,
    /// Unconfirmed messages in flight before the oldest confirm is awaited.
    pub window: usize,
}

impl AmqpConfig {
    /// A configuration from an `amqp://user:password@host:port/vhost` URL (vhost `/` is
    /// `%2f`), with the `topic` exchange `exchange` and routing key `routing_key`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a URL lapin cannot read.
    pub fn from_url(url: &str, exchange: &str, routing_key: &str) -> Result<AmqpConfig> {
        let uri: AMQPUri = url
            .parse()
            .map_err(|e| Error::Invalid(format!("`{}`: {e}", redact(url))))?;
        Ok(AmqpConfig::new(uri, exchange, routing_key))
    }

    /// A configuration from separate connection settings (StackTach's notabene parameters).
    pub fn from_parts(
        host: &str,
        port: u16,
        user: &str,
        password: &str,
        vhost: &str,
        exchange: &str,
        routing_key: &str,
    ) -> AmqpConfig {
        let uri = AMQPUri {
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username: user.to_string(),
                    password: password.to_string(),
                },
                host: host.to_string(),
                port,
            },
            vhost: vhost.to_string(),
            ..AMQPUri::default()
        };
        AmqpConfig::new(uri, exchange, routing_key)
    }

    /// Defaults: durable `topic` exchange, persistent messages, no queue, not mandatory, a
    /// window of 4096.
    fn new(uri: AMQPUri, exchange: &str, routing_key: &str) -> AmqpConfig {
        AmqpConfig {
            uri,
            exchange: exchange.to_string(),
            exchange_type: "topic".to_string(),
            durable: true,
            persistent: true,
            routing_key: routing_key.to_string(),
            queue_name: None,
            mandatory: false,
            window: 4096,
        }
    }

    /// `amqp://user@host:port/vhost` (no password; vhost `/` as `%2f`), exchange and
    /// routing key, for messages.
    pub fn describe(&self) -> String {
        let a = &self.uri.authority;
        let vhost = self.uri.vhost.replace('%', "%25").replace('/', "%2f");
        format!(
            "amqp://{}@{}:{}/{vhost} exchange `{}` routing key `{}`",
            a.userinfo.username, a.host, a.port, self.exchange, self.routing_key
        )
    }
}

/// `url` with any password replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                format!("{scheme}://{userinfo}@{host}")
            }
        }
        None => url.to_string(),
    }
}

/// The lapin exchange kind of an exchange type name.
fn exchange_kind(name: &str) -> ExchangeKind {
    match name {
        "topic" => ExchangeKind::Topic,
        "direct" => ExchangeKind::Direct,
        "fanout" => ExchangeKind::Fanout,
        "headers" => ExchangeKind::Headers,
        other => ExchangeKind::Custom(other.to_string()),
    }
}

/// A lapin error as ours.
fn amqp(what: impl Into<String>) -> impl FnOnce(lapin::Error) -> Error {
    let what = what.into();
    move |source| Error::Amqp { what, source }
}

/// Messages handed to lapin at once.
pub const BATCH: usize = 256;

/// A RabbitMQ channel in confirm mode on its own connection.
pub struct AmqpPublisher {
    connection: Connection,
    channel: Channel,
    exchange: lapin::types::ShortString,
    routing_key: lapin::types::ShortString,
    options: BasicPublishOptions,
    properties: BasicProperties,
    window: usize,
    batch: Vec<(String, Vec<u8>)>,
    pending: VecDeque<(String, PublisherConfirm)>,
    sent: u64,
    confirmed: u64,
    target: String,
}

impl std::fmt::Debug for AmqpPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpPublisher")
            .field("target", &self.target)
            .field("sent", &self.sent)
            .field("confirmed", &self.confirmed)
            .finish()
    }
}

impl AmqpPublisher {
    /// Connects, declares the exchange (and the queue with its binding) and enables publisher
    /// confirms.
    ///
    /// # Errors
    /// [`Error::Amqp`] naming the step that failed.
    pub async fn connect(config: &AmqpConfig) -> Result<AmqpPublisher> {
        let target = config.describe();
        let connection =
            Connection::connect_uri(config.uri.clone(), ConnectionProperties::default())
                .await
                .map_err(amqp(format!("connecting to {target}")))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(amqp("opening a channel"))?;
        if !config.exchange.is_empty() {
            channel
                .exchange_declare(
                    config.exchange.as_str().into(),
                    exchange_kind(&config.exchange_type),
                    ExchangeDeclareOptions {
                        durable: config.durable,
                        ..ExchangeDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(amqp(format!(
                    "declaring {} exchange `{}`",
                    config.exchange_type, config.exchange
                )))?;
        }
        if let Some(queue) = &config.queue_name {
            channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions {
                        durable: config.durable,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(amqp(format!("declaring queue `{queue}`")))?;
            if !config.exchange.is_empty() {
                channel
                    .queue_bind(
                        queue.as_str().into(),
                        config.exchange.as_str().into(),
                        config.routing_key.as_str().into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(amqp(format!(
                        "binding queue `{queue}` to `{}` with `{}`",
                        config.exchange, config.routing_key
                    )))?;
            }
        }
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(amqp("enabling publisher confirms"))?;
        let mut properties =
            BasicProperties::default().with_content_type("application/json".into());
        if config.persistent {
            properties = properties.with_delivery_mode(2);
        }
        Ok(AmqpPublisher {
            connection,
            channel,
            exchange: config.exchange.as_str().into(),
            routing_key: config.routing_key.as_str().into(),
            options: BasicPublishOptions {
                mandatory: config.mandatory,
                ..BasicPublishOptions::default()
            },
            properties,
            window: config.window.max(1),
            batch: Vec::with_capacity(BATCH),
            pending: VecDeque::new(),
            sent: 0,
            confirmed: 0,
            target,
        })
    }

    /// Publishes one message (`key` is its message_id, for error messages). Messages are
    /// handed to lapin in batches of [`BATCH`] publishes in flight at once (one at a time
    /// waits for lapin's I/O thread per message); when the window of unconfirmed messages is
    /// full, the oldest confirms are awaited first.
    ///
    /// # Errors
    /// A publish or confirm failure, a nack, a returned message.
    pub async fn publish(&mut self, key: &str, body: &[u8]) -> Result<()> {
        self.batch.push((key.to_string(), body.to_vec()));
        if self.batch.len() >= BATCH {
            self.send_buffered().await?;
        }
        Ok(())
    }

    /// Hands the buffered messages to lapin, all at once, in order (without waiting for
    /// their confirms).
    ///
    /// # Errors
    /// As [`Self::publish`].
    pub async fn send_buffered(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        while self.pending.len() + self.batch.len() > self.window.max(BATCH) {
            self.confirm_oldest().await?;
        }
        let batch = std::mem::take(&mut self.batch);
        // The futures are first polled in order, and each queues its frames (and registers
        // its confirm) before its first await, so the broker sees the messages in order.
        let publishes = batch.iter().map(|(_, body)| {
            self.channel.basic_publish(
                self.exchange.clone(),
                self.routing_key.clone(),
                self.options,
                body,
                self.properties.clone(),
            )
        });
        let results = futures_util::future::join_all(publishes).await;
        for ((key, _), result) in batch.into_iter().zip(results) {
            let confirm = result.map_err(amqp(format!("publishing to {}", self.target)))?;
            self.sent += 1;
            self.pending.push_back((key, confirm));
        }
        Ok(())
    }

    /// Waits for the oldest unconfirmed message's confirm.
    async fn confirm_oldest(&mut self) -> Result<()> {
        let Some((key, confirm)) = self.pending.pop_front() else {
            return Ok(());
        };
        let confirmation = confirm
            .await
            .map_err(amqp(format!("waiting for the confirm of {key:?}")))?;
        match confirmation {
            Confirmation::Ack(None) | Confirmation::NotRequested => {}
            Confirmation::Ack(Some(returned)) => {
                return Err(Error::NotConfirmed {
                    key,
                    reason: format!(
                        "returned by the broker: {} {} (exchange `{}`, routing key `{}`)",
                        returned.reply_code,
                        returned.reply_text,
                        returned.delivery.exchange,
                        returned.delivery.routing_key
                    ),
                });
            }
            Confirmation::Nack(_) => {
                return Err(Error::NotConfirmed {
                    key,
                    reason: "nacked by the broker".to_string(),
                });
            }
        }
        self.confirmed += 1;
        Ok(())
    }

    /// Waits until every message published so far is confirmed.
    ///
    /// # Errors
    /// As [`Self::publish`].
    pub async fn flush(&mut self) -> Result<()> {
        self.send_buffered().await?;
        while !self.pending.is_empty() {
            self.confirm_oldest().await?;
        }
        Ok(())
    }

    /// Messages handed to the broker (buffered ones not yet included).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Messages confirmed by the broker.
    pub fn confirmed(&self) -> u64 {
        self.confirmed
    }

    /// Whether the connection is still usable.
    pub fn is_connected(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }

    /// Closes the channel and the connection (unconfirmed messages are not waited for).
    pub async fn close(self) {
        let _ = self.channel.close(200, "bye".into()).await;
        let _ = self.connection.close(200, "bye".into()).await;
    }
}
