//! The worker's error type.

/// Errors from the trigger and pipeline managers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] tach_store::Error),
    /// The engine rejected something (an expiration that cannot be evaluated).
    #[error(transparent)]
    Engine(#[from] tach_engine::Error),
    /// A stored stream's fire-criteria state is not valid JSON of the engine's shape.
    #[error("stream {stream_id} has an unreadable fire_state {fire_state:?}")]
    FireState {
        /// The stream.
        stream_id: i64,
        /// The stored text.
        fire_state: String,
        /// Why it did not parse.
        #[source]
        source: serde_json::Error,
    },
    /// Creating or locking the open stream kept racing with other transactions.
    #[error(
        "could not open or lock the open stream of trigger {trigger} for {key}: other \
         transactions kept opening it first ({attempts} attempts)"
    )]
    StreamRace {
        /// The trigger.
        trigger: String,
        /// The distinguishing key.
        key: String,
        /// How many times it tried.
        attempts: u32,
    },
    /// Another transaction opened (and committed) the open stream of this key while this batch
    /// was opening it; the trigger manager redoes the batch.
    #[error("another transaction opened the stream of trigger {trigger} for {key} first")]
    LostStreamRace {
        /// The trigger.
        trigger: String,
        /// The distinguishing key.
        key: String,
    },
    /// A batch came with a different number of clock times than events (a caller's bug).
    #[error("{events} events were given {times} clock times")]
    ClockTimes {
        /// Events in the batch.
        events: usize,
        /// Clock times given.
        times: usize,
    },
    /// A pipeline names a handler that is not registered, or its params are invalid.
    #[error(transparent)]
    Handler(tach_engine::HandlerError),
    /// A pipeline task panicked or was cancelled.
    #[error("the pipeline of stream {stream_id} did not finish: {reason}")]
    PipelineTask {
        /// The stream.
        stream_id: i64,
        /// What happened to the task.
        reason: String,
    },
}

impl Error {
    /// True when retrying the same work later may succeed (see [`tach_store::Error::is_transient`]).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Store(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
