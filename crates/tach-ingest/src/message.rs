//! What a source hands the pipeline: the raw bytes, what distilling made of them and how to
//! acknowledge them.

use std::sync::Arc;

use crate::distil::Distilled;

/// One message as received, distilled by its source.
pub(crate) struct Message {
    /// The bytes as received (kept for the dead letter if it is poison or cannot be stored).
    pub payload: Vec<u8>,
    /// What distilling made of `payload`.
    pub distilled: Distilled,
    /// Where it came from, e.g. `amqp:monitor.info`, `kafka:monitor.info`, `file:a.jsonl`.
    pub source: Arc<str>,
    /// How it is acknowledged once its batch is committed.
    pub origin: Origin,
    /// Index of its source in `ingest.sources`.
    pub source_index: usize,
}

/// How a message is acknowledged.
pub(crate) enum Origin {
    /// A RabbitMQ delivery on consumer channel `channel` (a serial number).
    Amqp {
        /// The channel's serial number.
        channel: u64,
        /// Acknowledges the delivery (and, with `multiple`, the earlier ones of its channel).
        acker: lapin::Acker,
    },
    /// A Kafka record; its offset is committed.
    Kafka {
        /// Partition.
        partition: i32,
        /// Offset within the partition.
        offset: i64,
        /// Topic.
        topic: Arc<str>,
    },
    /// A line of a file or stdin: nothing to acknowledge.
    Line,
}
