//! Publishers with delivery confirmation, shared by the pipeline handlers and `tach notigen`.
//!
//! - [`AmqpPublisher`]: RabbitMQ (lapin) with publisher confirms; declares the exchange and,
//!   optionally, a queue bound with the routing key (StackTach notabene's `queue_name`).
//! - [`KafkaPublisher`]: Kafka (rdkafka) with `acks=all` and delivery reports.
//! - [`Publisher`]: either, from a [`Target`] (`amqp://…` or `kafka://host:port/topic`), with a
//!   sliding window of unconfirmed messages so confirms are pipelined.
//! - [`BlockingPublisher`]: a publisher on its own thread and runtime, for synchronous callers
//!   (pipeline handlers' `commit`), whatever runtime they run in.
//! - [`NotabeneHandler`] and [`KafkaHandler`], registered by [`register_handlers`].

mod amqp;
mod blocking;
mod handlers;
mod kafka;
mod publisher;

pub use amqp::{AmqpConfig, AmqpPublisher};
pub use blocking::BlockingPublisher;
pub use handlers::{
    KafkaHandler, NotabeneHandler, PublishHandler, event_notification, register_handlers,
    registry_with_publishers,
};
pub use kafka::{KafkaConfig, KafkaPublisher};
pub use publisher::{Publisher, Target};

/// Errors of connecting and publishing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A target URL or a setting is invalid.
    #[error("invalid publish target: {0}")]
    Invalid(String),
    /// RabbitMQ refused or failed an operation (connection, declare, publish).
    #[error("RabbitMQ {what}: {source}")]
    Amqp {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: lapin::Error,
    },
    /// RabbitMQ did not confirm a message (nack), or returned it as unroutable.
    #[error("RabbitMQ did not take message {key:?}: {reason}")]
    NotConfirmed {
        /// The message's key (its message_id).
        key: String,
        /// Nack, or the return's reply code and text.
        reason: String,
    },
    /// Kafka failed to create the producer or to deliver a message.
    #[error("Kafka {what}: {source}")]
    Kafka {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The whole operation took longer than its timeout.
    #[error("{0} timed out")]
    Timeout(String),
    /// The publisher thread is gone (it panicked or could not start its runtime).
    #[error("the publisher thread is gone: {0}")]
    Thread(String),
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;
