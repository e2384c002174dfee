//! The ingest error type.

/// Errors of the ingest worker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting of the `ingest:` section is missing or invalid.
    #[error("{key}: {message}")]
    Config {
        /// The key, e.g. `ingest.sources[0].queues[1].prefetch`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A file source cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file (`-` for stdin).
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The Kafka client could not be created or subscribed.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] tach_store::Error),
    /// A batch could not be committed before the shutdown timeout; its messages were not
    /// acknowledged and will be delivered again.
    #[error("gave up committing a batch of {messages} messages at shutdown: {last_error}")]
    Uncommitted {
        /// Messages in the batch.
        messages: usize,
        /// The last error.
        last_error: String,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
