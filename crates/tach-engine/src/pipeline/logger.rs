//! The `logger` handler (winchester's `LoggingHandler`): logs the stream it received and passes
//! the events on unchanged.

use serde_json::Value;
use tach_distiller::Event;

use super::handler::{Environment, Handler, HandlerError};

/// Logs each stream at INFO (id, name, event count, first and last event types) and each event
/// at DEBUG.
#[derive(Debug, Clone, Default)]
pub struct LoggerHandler;

impl LoggerHandler {
    /// Builds the handler; it takes no params (any given are ignored with a warning).
    ///
    /// # Errors
    /// When `params` is not a mapping.
    pub fn from_params(params: &Value) -> Result<Self, HandlerError> {
        match params {
            Value::Null => Ok(Self),
            Value::Object(map) => {
                if !map.is_empty() {
                    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                    tracing::warn!(params = %keys.join(", "), "The logger handler takes no params; ignored.");
                }
                Ok(Self)
            }
            other => Err(HandlerError::InvalidParams {
                handler: "logger".to_string(),
                reason: format!("expected a mapping, found {other}"),
            }),
        }
    }
}

impl Handler for LoggerHandler {
    fn handle(
        &mut self,
        events: Vec<Event>,
        env: &mut Environment,
    ) -> Result<Vec<Event>, HandlerError> {
        let first = events.first().map_or("", |e| e.event_type.as_str());
        let last = events.last().map_or("", |e| e.event_type.as_str());
        tracing::info!(
            stream_id = env.stream_id,
            stream_name = %env.stream_name,
            events = events.len(),
            first_event_type = first,
            last_event_type = last,
            "Stream received by pipeline."
        );
        for event in &events {
            tracing::debug!(
                stream_id = env.stream_id,
                event_type = %event.event_type,
                message_id = %event.message_id,
                timestamp = %event.timestamp,
                "Stream event."
            );
        }
        Ok(events)
    }

    fn reads_traits(&self) -> bool {
        false
    }
}
