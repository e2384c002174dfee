//! The RabbitMQ source: one connection, one channel per queue, declared as StackTach's yagi did
//! (exchange, queue and binding), consumed with a prefetch; plus a confirm channel on which
//! poison messages are published to the dead-letter exchange.
//!
//! Broker loss ends the connection; the source reconnects with capped exponential backoff.
//! Deliveries of the lost connection that were not acknowledged yet are delivered again by the
//! broker; acknowledging them on the dead channel fails harmlessly, and the redelivered copies
//! are ignored by the store as duplicates.
//!
//! Shutdown is ordered so that no acknowledgement is lost: consuming stops (`basic.cancel`)
//! but the consumer channels stay open, because closing a channel makes the broker requeue
//! what is unacknowledged on it (lapin closes a channel when its last handle is dropped). The
//! pipeline then commits and acknowledges the last batch; `Acker::ack` resolves once its
//! `basic.ack` frame is written to the socket. Only then does [`AmqpSource::close`] close each
//! channel with `channel.close`, whose `close-ok` the broker sends after it has processed
//! every earlier frame of the channel, the acknowledgements included; then the connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use futures_util::stream::select_all;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::{Mutex, mpsc, watch};

use crate::config::{BackoffConfig, DeadLetterConfig, QueueConfig, RabbitConfig};
use crate::distil::Distil;
use crate::message::{Message, Origin};

/// Serial numbers of consumer channels, so that acknowledgements are grouped per channel even
/// across reconnections (channel ids are reused by a new connection).
static CHANNEL_SERIAL: AtomicU64 = AtomicU64::new(1);

/// At shutdown, deliveries already sent by the broker are taken until none came for this long.
const DRAIN_IDLE: std::time::Duration = std::time::Duration::from_millis(500);

/// Longest wait for the broker to confirm a consumer cancel or a connection close.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// A RabbitMQ source shared between its consuming task and the pipeline.
pub(crate) struct AmqpSource {
    /// Index of the source in `ingest.sources`.
    pub index: usize,
    config: RabbitConfig,
    dead_letter: DeadLetterConfig,
    connection: Mutex<Option<Connection>>,
    publish: Mutex<Option<Channel>>,
    /// The consumer channels of the current connection, kept open after consuming stops until
    /// [`Self::close`], so that the last acknowledgements can be sent on them.
    consumers: Mutex<Vec<Channel>>,
}

impl std::fmt::Debug for AmqpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpSource")
            .field("index", &self.index)
            .field("uri", &self.config.display_uri())
            .finish_non_exhaustive()
    }
}

/// How a connection ended.
enum Ended {
    /// Shutdown: stop consuming, keep the connection for the last acknowledgements.
    Stopped,
    /// The connection or a consumer failed.
    Lost(String),
}

impl AmqpSource {
    /// A source for `config`; nothing is connected before [`Self::run`].
    pub fn new(index: usize, config: RabbitConfig, dead_letter: DeadLetterConfig) -> AmqpSource {
        AmqpSource {
            index,
            config,
            dead_letter,
            connection: Mutex::new(None),
            publish: Mutex::new(None),
            consumers: Mutex::new(Vec::new()),
        }
    }

    /// Consumes until `stop` turns true, reconnecting after losses; each delivery is distilled
    /// with `distil` before it is sent to the pipeline.
    pub async fn run(
        self: Arc<Self>,
        tx: mpsc::Sender<Message>,
        distil: Arc<Distil>,
        mut stop: watch::Receiver<bool>,
        backoff: BackoffConfig,
    ) {
        let mut attempt = 0u32;
        loop {
            if *stop.borrow() {
                return;
            }
            match self
                .connect_and_consume(&tx, &distil, &mut stop, &mut attempt)
                .await
            {
                Ended::Stopped => return,
                Ended::Lost(reason) => {
                    *self.publish.lock().await = None;
                    self.consumers.lock().await.clear();
                    if let Some(conn) = self.connection.lock().await.take() {
                        let closing = conn.close(320, "tach ingest reconnecting".into());
                        let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
                    }
                    let delay = backoff.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(
                        uri = %self.config.display_uri(),
                        error = %reason,
                        retry_in_ms = delay.as_millis() as u64,
                        "RabbitMQ connection lost or refused; reconnecting."
                    );
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    }

    async fn connect_and_consume(
        &self,
        tx: &mpsc::Sender<Message>,
        distil: &Distil,
        stop: &mut watch::Receiver<bool>,
        attempt: &mut u32,
    ) -> Ended {
        let conn =
            match Connection::connect(&self.config.uri(), ConnectionProperties::default()).await {
                Ok(c) => c,
                Err(e) => return Ended::Lost(e.to_string()),
            };
        match self.dead_letter_channel(&conn).await {
            Ok(ch) => *self.publish.lock().await = Some(ch),
            Err(e) => return Ended::Lost(format!("declaring the dead-letter place: {e}")),
        }
        let mut consumers = Vec::with_capacity(self.config.queues.len());
        let mut cancel = Vec::with_capacity(self.config.queues.len());
        for queue in &self.config.queues {
            match consume(&conn, queue).await {
                Ok((serial, channel, consumer)) => {
                    let name: Arc<str> = Arc::from(format!("amqp:{}", queue.queue));
                    cancel.push((channel, consumer.tag()));
                    consumers.push(consumer.map(move |d| (serial, Arc::clone(&name), d)));
                }
                Err(e) => return Ended::Lost(format!("queue {}: {e}", queue.queue)),
            }
        }
        *self.consumers.lock().await = cancel.iter().map(|(ch, _)| ch.clone()).collect();
        *self.connection.lock().await = Some(conn);
        tracing::info!(
            uri = %self.config.display_uri(),
            queues = self.config.queues.len(),
            "Consuming from RabbitMQ."
        );
        let mut merged = select_all(consumers);
        let mut draining = false;
        loop {
            let next = if draining {
                // Shutdown: the consumers are cancelled; what the broker had already sent is
                // still handed to the pipeline (and acknowledged after its batch), so that
                // nothing goes back to the queue.
                match tokio::time::timeout(DRAIN_IDLE, merged.next()).await {
                    Ok(next) => next,
                    Err(_) => return Ended::Stopped,
                }
            } else {
                tokio::select! {
                    next = merged.next() => next,
                    _ = stop.changed() => {
                        for (channel, tag) in &cancel {
                            let cancelling = channel
                                .basic_cancel(tag.clone(), BasicCancelOptions::default());
                            let _ = tokio::time::timeout(CLOSE_TIMEOUT, cancelling).await;
                        }
                        draining = true;
                        continue;
                    }
                }
            };
            if draining && !matches!(next, Some((_, _, Ok(_)))) {
                return Ended::Stopped;
            }
            let (serial, source, delivery) = match next {
                Some((serial, source, Ok(d))) => (serial, source, d),
                Some((_, _, Err(e))) => return Ended::Lost(e.to_string()),
                None => return Ended::Lost("the consumers were cancelled".to_owned()),
            };
            *attempt = 0;
            let message = Message {
                distilled: distil.distil(&delivery.data),
                payload: delivery.data,
                source,
                origin: Origin::Amqp {
                    channel: serial,
                    acker: delivery.acker,
                },
                source_index: self.index,
            };
            // Never dropped once taken from the consumer: a later delivery of the same
            // channel would acknowledge it (acknowledgements are `multiple`).
            if tx.send(message).await.is_err() {
                return Ended::Stopped;
            }
        }
    }

    /// A confirm channel with the dead-letter exchange, queue and binding declared.
    async fn dead_letter_channel(&self, conn: &Connection) -> lapin::Result<Channel> {
        let d = &self.dead_letter;
        let ch = conn.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        ch.exchange_declare(
            d.exchange.as_str().into(),
            exchange_kind(&d.exchange_type),
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
        ch.queue_declare(
            d.queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
        ch.queue_bind(
            d.queue.as_str().into(),
            d.exchange.as_str().into(),
            d.routing_key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        Ok(ch)
    }

    /// Publishes a poison message to the dead-letter exchange and waits for the broker's
    /// confirmation. Headers: `x-tach-reason`, `x-tach-source`, `x-tach-original-size`.
    pub async fn forward_dead_letter(
        &self,
        source: &str,
        reason: &str,
        raw: &[u8],
        original_size: usize,
    ) -> Result<(), String> {
        let guard = self.publish.lock().await;
        let Some(ch) = guard.as_ref() else {
            return Err("not connected to RabbitMQ".to_owned());
        };
        let mut headers = FieldTable::default();
        headers.insert(
            "x-tach-reason".into(),
            AMQPValue::LongString(LongString::from(reason.as_bytes().to_vec())),
        );
        headers.insert(
            "x-tach-source".into(),
            AMQPValue::LongString(LongString::from(source.as_bytes().to_vec())),
        );
        headers.insert(
            "x-tach-original-size".into(),
            AMQPValue::LongLongInt(i64::try_from(original_size).unwrap_or(i64::MAX)),
        );
        let properties = BasicProperties::default()
            .with_headers(headers)
            .with_delivery_mode(2);
        let confirm = ch
            .basic_publish(
                self.dead_letter.exchange.as_str().into(),
                self.dead_letter.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                raw,
                properties,
            )
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        if confirm.is_nack() {
            return Err("the broker refused the dead letter (nack)".to_owned());
        }
        Ok(())
    }

    /// Closes the consumer channels, the dead-letter channel and the connection; called after
    /// the last acknowledgements were sent. Each `channel.close` waits (bounded) for the
    /// broker's `close-ok`, which comes after the broker has processed the channel's earlier
    /// frames: the acknowledgements are then settled, not requeued.
    pub async fn close(&self) {
        let consumers = std::mem::take(&mut *self.consumers.lock().await);
        let publish = self.publish.lock().await.take();
        for channel in consumers.iter().chain(publish.iter()) {
            let closing = channel.close(200, "tach ingest stopped".into());
            match tokio::time::timeout(CLOSE_TIMEOUT, closing).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "Cannot close a RabbitMQ channel."),
                Err(_) => tracing::warn!(
                    channel = channel.id(),
                    "RabbitMQ did not confirm a channel close in time; deliveries not \
                     acknowledged on it may be delivered again."
                ),
            }
        }
        if let Some(conn) = self.connection.lock().await.take() {
            // Bounded: lapin's close can wait for ever on a channel that is closing.
            let closing = conn.close(200, "tach ingest stopped".into());
            if tokio::time::timeout(CLOSE_TIMEOUT, closing).await.is_err() {
                tracing::debug!("RabbitMQ connection close timed out.");
            }
        }
    }
}

/// Declares exchange, queue and binding of `queue` on a new channel and starts consuming.
async fn consume(
    conn: &Connection,
    queue: &QueueConfig,
) -> lapin::Result<(u64, Channel, lapin::Consumer)> {
    let ch = conn.create_channel().await?;
    ch.exchange_declare(
        queue.exchange.as_str().into(),
        exchange_kind(&queue.exchange_type),
        ExchangeDeclareOptions {
            durable: queue.durable,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        queue.queue.as_str().into(),
        QueueDeclareOptions {
            durable: queue.durable,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await?;
    ch.queue_bind(
        queue.queue.as_str().into(),
        queue.exchange.as_str().into(),
        queue.routing_key.as_str().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    ch.basic_qos(queue.prefetch, BasicQosOptions::default())
        .await?;
    let serial = CHANNEL_SERIAL.fetch_add(1, Ordering::Relaxed);
    let consumer = ch
        .basic_consume(
            queue.queue.as_str().into(),
            format!("tach-ingest-{}-{serial}", std::process::id())
                .as_str()
                .into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((serial, ch, consumer))
}

fn exchange_kind(name: &str) -> ExchangeKind {
    match name {
        "topic" => ExchangeKind::Topic,
        "fanout" => ExchangeKind::Fanout,
        "headers" => ExchangeKind::Headers,
        "direct" => ExchangeKind::Direct,
        other => ExchangeKind::Custom(other.to_owned()),
    }
}
