//! Plain row and input types the store reads and writes.
//!
//! Events are the distiller's own [`Event`] (re-exported). Stream data is plain rows that mirror
//! the engine's types without depending on them; the engine converts with a few lines of `From`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

pub use tach_distiller::{Event, Trait, TraitValue};

/// The value of one distinguishing trait of a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum DistValue {
    /// Text of any length.
    Text(String),
    /// A signed 64-bit integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// A UTC datetime with µs precision.
    Datetime(DateTime<Utc>),
    /// A time range `begin <= t < end` (from `distinguished_by: {timestamp: day}`).
    Range {
        /// Inclusive start.
        begin: DateTime<Utc>,
        /// Exclusive end.
        end: DateTime<Utc>,
    },
}

/// Type codes stored in the `type` column of `traits` and `dist_traits`.
pub(crate) mod type_code {
    pub const TEXT: i16 = 1;
    pub const INT: i16 = 2;
    pub const FLOAT: i16 = 3;
    pub const DATETIME: i16 = 4;
    pub const TIMERANGE: i16 = 5;
}

/// Life-cycle state of a stream (stored as a SMALLINT code, the same codes as winchester).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamState {
    /// Open: collecting events.
    Active,
    /// Taken by a worker to run its fire pipeline.
    Firing,
    /// Taken by a worker to run its expire pipeline.
    Expiring,
    /// The fire pipeline failed.
    Error,
    /// The expire pipeline failed.
    ExpireError,
    /// Done.
    Completed,
    /// Reset after `error`: will be fired again.
    RetryFire,
    /// Reset after `expire_error`: will be expired again.
    RetryExpire,
}

impl StreamState {
    /// Every state, in code order.
    pub const ALL: [StreamState; 8] = [
        StreamState::Active,
        StreamState::Firing,
        StreamState::Expiring,
        StreamState::Error,
        StreamState::ExpireError,
        StreamState::Completed,
        StreamState::RetryFire,
        StreamState::RetryExpire,
    ];

    /// The name used in the API and in configuration, e.g. `retry_fire`.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Active => "active",
            StreamState::Firing => "firing",
            StreamState::Expiring => "expiring",
            StreamState::Error => "error",
            StreamState::ExpireError => "expire_error",
            StreamState::Completed => "completed",
            StreamState::RetryFire => "retry_fire",
            StreamState::RetryExpire => "retry_expire",
        }
    }

    /// The SMALLINT stored in `streams.state`.
    pub fn code(self) -> i16 {
        match self {
            StreamState::Active => 1,
            StreamState::Firing => 2,
            StreamState::Expiring => 3,
            StreamState::Error => 4,
            StreamState::ExpireError => 5,
            StreamState::Completed => 6,
            StreamState::RetryFire => 7,
            StreamState::RetryExpire => 8,
        }
    }

    /// The state stored as `code`, if any.
    pub fn from_code(code: i16) -> Option<StreamState> {
        StreamState::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl fmt::Display for StreamState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error from parsing an unknown stream state name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown stream state {0:?}: expected one of active, firing, expiring, error, expire_error, \
     completed, retry_fire, retry_expire"
)]
pub struct UnknownStreamState(pub String);

impl FromStr for StreamState {
    type Err = UnknownStreamState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StreamState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownStreamState(s.to_owned()))
    }
}

/// A stream to create: the first events' bounds, expiry and fire-criteria state.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStream {
    /// Name of the trigger the stream belongs to.
    pub trigger_name: String,
    /// The engine's stable string of the distinguishing values (`DistinguishingValues::key()`).
    pub distinguishing_key: String,
    /// The distinguishing traits, stored for queries.
    pub distinguishing_traits: Vec<(String, DistValue)>,
    /// Time of the earliest event.
    pub first_event: DateTime<Utc>,
    /// Time of the latest event.
    pub last_event: DateTime<Utc>,
    /// When the stream expires.
    pub expire_timestamp: DateTime<Utc>,
    /// When the stream may fire, once its fire criteria are met.
    pub fire_timestamp: Option<DateTime<Utc>>,
    /// The engine's fire-criteria counters as JSON.
    pub fire_state: String,
    /// Number of events in the stream after the caller adds the first ones.
    pub event_count: i64,
}

/// New values for an open stream after events were added.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamUpdate {
    /// The stream id.
    pub id: i64,
    /// Time of the earliest event.
    pub first_event: DateTime<Utc>,
    /// Time of the latest event.
    pub last_event: DateTime<Utc>,
    /// When the stream expires.
    pub expire_timestamp: DateTime<Utc>,
    /// When the stream may fire.
    pub fire_timestamp: Option<DateTime<Utc>>,
    /// The engine's fire-criteria counters as JSON.
    pub fire_state: String,
    /// Number of events in the stream.
    pub event_count: i64,
}

/// A stream as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRow {
    /// The stream id.
    pub id: i64,
    /// Name of the trigger the stream belongs to.
    pub trigger_name: String,
    /// Current state.
    pub state: StreamState,
    /// Time of the earliest event.
    pub first_event: DateTime<Utc>,
    /// Time of the latest event.
    pub last_event: DateTime<Utc>,
    /// When the stream expires.
    pub expire_timestamp: DateTime<Utc>,
    /// When the stream may fire.
    pub fire_timestamp: Option<DateTime<Utc>>,
    /// The engine's stable string of the distinguishing values.
    pub distinguishing_key: String,
    /// Distinguishing traits, sorted by name; empty where the call says it does not load them.
    pub distinguishing_traits: Vec<(String, DistValue)>,
    /// True while the stream holds its active key (open for new events).
    pub attached: bool,
    /// The engine's fire-criteria counters as JSON.
    pub fire_state: String,
    /// Why the last pipeline run failed, if it did.
    pub error: Option<String>,
    /// Number of events in the stream.
    pub event_count: i64,
    /// The stream's events sorted by timestamp, when details were asked for.
    pub events: Option<Vec<Event>>,
}
