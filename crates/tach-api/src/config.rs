//! [`ApiConfig`]: the `api:` section of winchester.yaml.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Settings of the REST API server (the `api:` section of winchester.yaml).
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to listen on (default `127.0.0.1:8000`: local only).
    pub bind: SocketAddr,
    /// When set, DELETE and PUT (and reads when `auth_reads`) need `Authorization: Bearer <it>`.
    pub auth_token: Option<String>,
    /// Also require the token for reads (GET).
    pub auth_reads: bool,
    /// The largest `limit` a request may ask for; larger ones are lowered to it.
    pub max_limit: u32,
    /// How long one request's database work may take, in seconds (fractions allowed).
    #[serde(deserialize_with = "seconds")]
    pub query_timeout: Duration,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The most events one stream includes with `details=true` (the oldest); a stream with more
    /// says `"events_truncated": true`, so a huge stream cannot make an unbounded response.
    pub max_stream_events: u32,
}

/// Rows returned when a request gives no `limit` (quincy's default).
pub const DEFAULT_LIMIT: u32 = 200;

/// Default of [`ApiConfig::max_stream_events`].
pub const DEFAULT_MAX_STREAM_EVENTS: u32 = 1000;

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 8000)),
            auth_token: None,
            auth_reads: false,
            max_limit: 1000,
            query_timeout: Duration::from_secs(10),
            max_body_bytes: 16 * 1024,
            max_stream_events: DEFAULT_MAX_STREAM_EVENTS,
        }
    }
}

impl fmt::Debug for ApiConfig {
    // The token is a secret: never printed, so never logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiConfig")
            .field("bind", &self.bind)
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "<redacted>"),
            )
            .field("auth_reads", &self.auth_reads)
            .field("max_limit", &self.max_limit)
            .field("query_timeout", &self.query_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_stream_events", &self.max_stream_events)
            .finish()
    }
}

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    if secs <= 0.0 {
        return Err(serde::de::Error::custom(format!(
            "query_timeout must be a positive number of seconds, got {secs}"
        )));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| {
        serde::de::Error::custom(format!("query_timeout {secs} is not a valid duration: {e}"))
    })
}
