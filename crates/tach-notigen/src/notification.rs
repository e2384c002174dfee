//! One generated notification: the few facts callers look at (event type, time, ids) as fields,
//! and the shared snapshots it renders its JSON from on demand.
//!
//! Rendering is lazy and writes into the caller's buffer, so producing a notification costs a few
//! reference-count increments and serialising it is mostly copying pre-rendered fragments. The
//! Oslo envelope renders the same notification through an escaping sink instead of escaping
//! finished text.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::config::Envelope;
use crate::json::{Bare, Escaped, Sink, push_hex128, push_time, push_uuid, w};
use crate::model::{Context, InstanceState, Publisher};
use crate::payload::{Kind, write_instance_payload, write_scheduler_payload};

/// A Nova notification produced by the [`Generator`](crate::Generator).
#[derive(Debug, Clone)]
pub struct Notification {
    /// Nova's event type, e.g. `compute.instance.create.start`.
    pub event_type: &'static str,
    /// When it was emitted, in simulated UTC time (microsecond precision).
    pub timestamp: DateTime<Utc>,
    /// `message_id`: a version 4 UUID drawn from the seeded generator.
    pub message_id: Uuid,
    /// The request it belongs to (`_context_request_id` is `req-<request_id>`).
    pub request_id: Uuid,
    /// The instance it is about (`payload.instance_id`; inside `request_spec` for the scheduler).
    pub instance_id: Uuid,
    pub(crate) micros: i64,
    pub(crate) unique_id: u128,
    pub(crate) publisher: Publisher,
    pub(crate) ctx: Arc<Context>,
    pub(crate) state: Arc<InstanceState>,
    pub(crate) kind: Kind,
}

impl Notification {
    /// The `publisher_id`, e.g. `compute.host-7`.
    pub fn publisher_id(&self) -> String {
        self.publisher.to_string()
    }

    /// Appends the notification as one line of JSON (no trailing newline) to `out`, bare or in
    /// oslo.messaging's v2 envelope.
    pub fn write_json(&self, envelope: Envelope, out: &mut String) {
        match envelope {
            Envelope::Bare => self.render(&mut Bare(out)),
            Envelope::Oslo => {
                out.push_str("{\"oslo.version\":\"2.0\",\"oslo.message\":\"");
                self.render(&mut Escaped(out));
                out.push_str("\"}");
            }
        }
    }

    /// The notification as a JSON value (the bare form, as [`write_json`](Self::write_json)
    /// writes it).
    pub fn to_value(&self) -> serde_json::Value {
        let mut s = String::with_capacity(4096);
        self.render(&mut Bare(&mut s));
        // Invariant: rendering only emits well-formed JSON (pinned by tests over whole runs).
        serde_json::from_str(&s).expect("notigen renders well-formed JSON")
    }

    fn render<S: Sink>(&self, out: &mut S) {
        w!(out, "{");
        out.frag(&self.ctx.json);
        w!(out, ",\"_unique_id\":\"");
        push_hex128(out.buf(), self.unique_id);
        w!(out, "\",\"event_type\":\"");
        out.buf().push_str(self.event_type);
        w!(out, "\",\"message_id\":\"");
        push_uuid(out.buf(), &self.message_id);
        w!(out, "\",\"payload\":");
        match &self.kind {
            Kind::Scheduler {
                spec,
                weighted_host,
            } => {
                write_scheduler_payload(out, &self.state, spec, *weighted_host);
            }
            kind => write_instance_payload(out, &self.state, kind, self.micros),
        }
        w!(out, ",\"priority\":\"INFO\",\"publisher_id\":\"");
        self.publisher.push(out.buf());
        w!(out, "\",\"timestamp\":\"");
        push_time(out.buf(), self.micros);
        w!(out, "\"}");
    }
}
