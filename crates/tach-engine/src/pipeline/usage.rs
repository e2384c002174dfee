//! The `usage` handler: Nova's daily usage audit, as winchester's `UsageHandler`.
//!
//! The stream's events (sorted by time) are cut into blocks, each ending at a
//! `compute.instance.exists`; each exists is checked against the operations of its block:
//!
//! | code | check |
//! |---|---|
//! | U0 | events after the last `.exists` (a block with no `.exists`) |
//! | U1 | an active instance's `.exists` has no `launched_at` |
//! | U2 | `launched_at`, `instance_flavor_id`, `tenant_id`, `os_*` differ from the block's last rebuild/resize.prep/rescue `.end`; or `launched_at`/`deleted_at` differ from its `delete.end` |
//! | U3 | `deleted_at` is set but `state` is not `deleted` |
//! | U4 | `deleted_at` < `launched_at` (no `delete.end` in the block) |
//! | U5 | `deleted_at` inside the audit period but no `delete.end` in the block |
//! | U6 | a `delete.end` in the block but no `deleted_at` |
//! | U7 | several `delete.end` in the block |
//! | U8 | an active instance launched inside the audit period, but the block is empty |
//!
//! Each `.exists` yields `compute.instance.exists.verified` or `.failed` (traits `error_code`,
//! `error`), preceded by `compute.instance.exists.warnings` when a non-end-of-day `.exists` had
//! no operation. They are returned as new events and, as OpenStack-shaped notifications, put in
//! the environment's `usage_notifications` list for `notabene` to publish.
//!
//! Beyond the original: message ids are UUIDv5 of the source message id and the new event type
//! (see [`derived_message_id`]), so a rerun produces the same ids and deduplicates; warnings
//! are per `.exists` (the original carried them over to later blocks of the stream); a field
//! present on only one side is a U2 conflict and a missing `launched_at` skips U4 (the original
//! crashed on both).

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use serde_json::{Map, Value, json};
use tach_distiller::{Event, Trait, TraitValue};
use uuid::Uuid;

use super::handler::{Environment, Handler, HandlerError};
use crate::trigger::{FieldValue, event_field as field};

/// The audited event type.
pub const EXISTS: &str = "compute.instance.exists";
/// Emitted when an `.exists` passes every check.
pub const VERIFIED: &str = "compute.instance.exists.verified";
/// Emitted when a check fails (`error_code` U0–U8).
pub const FAILED: &str = "compute.instance.exists.failed";
/// Emitted before the verdict when there are warnings.
pub const WARNINGS: &str = "compute.instance.exists.warnings";
/// The environment key of the generated notifications (a JSON list).
pub const NOTIFICATIONS_KEY: &str = "usage_notifications";
/// The `publisher_id` of generated notifications (and `service` of generated events).
pub const PUBLISHER_ID: &str = "stv3";

/// The UUIDv5 namespace of generated message ids: `0d1c6221-2ef5-40b6-898b-153d8a61ccb1`.
/// Fixed forever: changing it would break deduplication of reruns.
pub const MESSAGE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x0d1c6221_2ef5_40b6_898b_153d8a61ccb1);

/// Operations whose traits the `.exists` must agree with (the last one in the block).
const INTERESTING: &[&str] = &[
    "compute.instance.rebuild.end",
    "compute.instance.resize.prep.end",
    "compute.instance.rescue.end",
];

/// The delete operation.
const DELETE_END: &str = "compute.instance.delete.end";

/// Traits compared with the last interesting operation.
const CORE_FIELDS: &[&str] = &[
    "launched_at",
    "instance_flavor_id",
    "tenant_id",
    "os_architecture",
    "os_version",
    "os_distro",
];

/// Traits compared with the `delete.end`.
const DELETE_FIELDS: &[&str] = &["launched_at", "deleted_at"];

/// Traits of the `.exists` carried by `.verified` / `.failed` (those of its notification).
const CARRIED_TRAITS: &[&str] = &[
    "audit_period_beginning",
    "audit_period_ending",
    "bandwidth_in",
    "bandwidth_out",
    "deleted_at",
    "display_name",
    "instance_flavor",
    "instance_flavor_id",
    "instance_id",
    "launched_at",
    "os_architecture",
    "os_distro",
    "os_version",
    "rax_options",
    "state",
    "state_description",
    "tenant_id",
];

/// The message id of an event generated from `source_message_id`: UUIDv5 in
/// [`MESSAGE_ID_NAMESPACE`] of `"{source_message_id}|{event_type}"`.
pub fn derived_message_id(source_message_id: &str, event_type: &str) -> Uuid {
    let name = format!("{source_message_id}|{event_type}");
    Uuid::new_v5(&MESSAGE_ID_NAMESPACE, name.as_bytes())
}

/// A failed usage check: its code and winchester's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// `U0` ... `U8`.
    pub code: &'static str,
    /// The message, as winchester wrote it.
    pub message: String,
}

impl UsageError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// What auditing a stream produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageAudit {
    /// The generated events, in order.
    pub events: Vec<Event>,
    /// The same, as OpenStack-shaped notifications.
    pub notifications: Vec<Value>,
}

/// The `usage` handler. It takes no params.
#[derive(Debug, Clone, Default)]
pub struct UsageHandler;

impl UsageHandler {
    /// Builds the handler.
    ///
    /// # Errors
    /// When `params` is not a mapping.
    pub fn from_params(params: &Value) -> Result<Self, HandlerError> {
        match params {
            Value::Null | Value::Object(_) => Ok(Self),
            other => Err(HandlerError::InvalidParams {
                handler: "usage".to_string(),
                reason: format!("expected a mapping, found {other}"),
            }),
        }
    }

    /// Audits a stream's events (sorted by timestamp) without touching an environment.
    pub fn audit(events: &[Event], stream_id: i64) -> UsageAudit {
        let mut audit = UsageAudit::default();
        let mut block: Vec<&Event> = Vec::new();
        for event in events {
            if event.event_type == EXISTS {
                process_block(&block, event, stream_id, &mut audit);
                block.clear();
            } else {
                block.push(event);
            }
        }
        if let Some(first) = block.first() {
            dangling_block(first, stream_id, &mut audit);
        }
        audit
    }
}

impl Handler for UsageHandler {
    fn handle(
        &mut self,
        mut events: Vec<Event>,
        env: &mut Environment,
    ) -> Result<Vec<Event>, HandlerError> {
        let audit = Self::audit(&events, env.stream_id);
        env.insert(NOTIFICATIONS_KEY, Value::Array(audit.notifications));
        events.extend(audit.events);
        Ok(events)
    }
}

/// Checks one `.exists` against its block and records the verdict (and warnings).
fn process_block(block: &[&Event], exists: &Event, stream_id: i64, audit: &mut UsageAudit) {
    let mut warnings = Vec::new();
    let verdict = check(block, exists, &mut warnings);
    if let Err(error) = &verdict {
        let (apb, ape) = audit_period(exists);
        // Info, not warn: the verdict is data (a `.failed` event, stored and queryable), and a
        // day's audit of a large cloud would otherwise flood the warnings.
        tracing::info!(
            stream_id,
            code = error.code,
            error = %error.message,
            message_id = %exists.message_id,
            deleted_at = %py_str(field(exists, "deleted_at")),
            launched_at = %py_str(field(exists, "launched_at")),
            state = %py_str(field(exists, "state")),
            audit_period_beginning = %py_str(apb.map(FieldValue::Datetime)),
            audit_period_ending = %py_str(ape.map(FieldValue::Datetime)),
            events = block.len(),
            "Usage check failed."
        );
    }
    if block.len() > 1 {
        for event in block {
            tracing::debug!(
                stream_id,
                timestamp = %event.timestamp,
                event_type = %event.event_type,
                "Usage block event."
            );
        }
    }
    if !warnings.is_empty() {
        warnings_event(exists, stream_id, &warnings, audit);
    }
    verdict_event(exists, stream_id, verdict.err(), audit);
}

/// winchester's `_do_checks`.
fn check(block: &[&Event], exists: &Event, warnings: &mut Vec<String>) -> Result<(), UsageError> {
    confirm_launched_at(block, exists)?;
    let last_interesting = block
        .iter()
        .rev()
        .find(|e| INTERESTING.contains(&e.event_type.as_str()));
    match last_interesting {
        Some(operation) => verify_fields(operation, exists, CORE_FIELDS)?,
        None if is_non_eod_exists(exists) => warnings.push(format!(
            "Non-EOD .exists found (msg_id: {}) with no operation event.",
            exists.message_id
        )),
        None => {}
    }
    let deletes: Vec<&Event> = block
        .iter()
        .copied()
        .filter(|e| e.event_type == DELETE_END)
        .collect();
    confirm_delete(exists, &deletes)
}

/// U1 and U8.
fn confirm_launched_at(block: &[&Event], exists: &Event) -> Result<(), UsageError> {
    if text(exists, "state") != Some("active") {
        return Ok(());
    }
    let Some(launched_at) = datetime(exists, "launched_at") else {
        return Err(UsageError::new("U1", ".exists has no launched_at value."));
    };
    if let (Some(apb), Some(ape)) = audit_period(exists)
        && apb <= launched_at
        && launched_at <= ape
        && block.is_empty()
    {
        return Err(UsageError::new(
            "U8",
            ".exists launched_at in audit period, but no related events found.",
        ));
    }
    Ok(())
}

/// U3–U7 (and U2 against the delete).
fn confirm_delete(exists: &Event, deletes: &[&Event]) -> Result<(), UsageError> {
    let deleted_at = datetime(exists, "deleted_at");
    if deleted_at.is_none() && !deletes.is_empty() {
        return Err(UsageError::new(
            "U6",
            ".deleted events found but .exists has no deleted_at value.",
        ));
    }
    if let Some(deleted_at) = deleted_at {
        if text(exists, "state") != Some("deleted") {
            return Err(UsageError::new(
                "U3",
                ".exists state not 'deleted' but .exists deleted_at is set.",
            ));
        }
        if deletes.is_empty() {
            if datetime(exists, "launched_at").is_some_and(|launched_at| deleted_at < launched_at) {
                return Err(UsageError::new(
                    "U4",
                    ".exists deleted_at < .exists launched_at.",
                ));
            }
            if let (Some(apb), Some(ape)) = audit_period(exists)
                && apb <= deleted_at
                && deleted_at <= ape
            {
                return Err(UsageError::new(
                    "U5",
                    ".exists deleted_at in audit period, but no matching .delete event found.",
                ));
            }
        }
    }
    if deletes.len() > 1 {
        return Err(UsageError::new("U7", "Multiple .delete.end events"));
    }
    if let Some(delete) = deletes.last() {
        verify_fields(exists, delete, DELETE_FIELDS)?;
    }
    Ok(())
}

/// U2: every field present on either side must be equal on both.
fn verify_fields(this: &Event, that: &Event, fields: &[&str]) -> Result<(), UsageError> {
    for name in fields {
        let a = field(this, name);
        let b = field(that, name);
        if a.is_none() && b.is_none() {
            continue;
        }
        let equal = match (a, b) {
            (Some(a), Some(b)) => values_equal(a, b),
            _ => false,
        };
        if !equal {
            return Err(UsageError::new(
                "U2",
                format!(
                    "Conflicting '{name}' values ('{}' != '{}')",
                    py_str(a),
                    py_str(b)
                ),
            ));
        }
    }
    Ok(())
}

/// Equality as Python compared trait values (ints and floats compare numerically).
fn values_equal(a: FieldValue<'_>, b: FieldValue<'_>) -> bool {
    match (a, b) {
        (FieldValue::Int(x), FieldValue::Float(y)) | (FieldValue::Float(y), FieldValue::Int(x)) => {
            x as f64 == y
        }
        (a, b) => a == b,
    }
}

/// The audit period (`audit_period_beginning`, `audit_period_ending`).
fn audit_period(event: &Event) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    (
        datetime(event, "audit_period_beginning"),
        datetime(event, "audit_period_ending"),
    )
}

/// An `.exists` whose audit period does not end the day after it begins.
fn is_non_eod_exists(event: &Event) -> bool {
    match audit_period(event) {
        (Some(apb), Some(ape)) if event.event_type == EXISTS => {
            Some(ape.date_naive()) != apb.date_naive().checked_add_signed(TimeDelta::days(1))
        }
        _ => false,
    }
}

/// A datetime trait.
fn datetime(event: &Event, name: &str) -> Option<DateTime<Utc>> {
    match field(event, name)? {
        FieldValue::Datetime(d) => Some(d),
        _ => None,
    }
}

/// A text trait.
fn text<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
    match field(event, name)? {
        FieldValue::Text(s) => Some(s),
        _ => None,
    }
}

/// A value as Python's `str()` printed it (`None`, `2014-12-31 01:00:00`, `3.0`).
fn py_str(value: Option<FieldValue<'_>>) -> String {
    match value {
        None => "None".to_string(),
        Some(FieldValue::Text(s)) => s.to_string(),
        Some(FieldValue::Int(i)) => i.to_string(),
        Some(FieldValue::Float(f)) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 => {
            format!("{f:.1}")
        }
        Some(FieldValue::Float(f)) => f.to_string(),
        Some(FieldValue::Datetime(d)) => py_datetime(d),
    }
}

/// Python's `str(datetime)`: microseconds only when non-zero.
fn py_datetime(d: DateTime<Utc>) -> String {
    let micros = d.nanosecond() / 1000 % 1_000_000;
    if micros == 0 {
        d.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        format!("{}.{micros:06}", d.format("%Y-%m-%d %H:%M:%S"))
    }
}

/// OpenStack's notification timestamp: `2016-03-01 02:02:47.345000`.
fn openstack_timestamp(d: DateTime<Utc>) -> String {
    d.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// A trait as a JSON value of a notification payload; `default` when absent.
fn trait_json(event: &Event, name: &str, default: Value) -> Value {
    match field(event, name) {
        None => default,
        Some(FieldValue::Text(s)) => Value::from(s),
        Some(FieldValue::Int(i)) => Value::from(i),
        Some(FieldValue::Float(f)) => Value::from(f),
        Some(FieldValue::Datetime(d)) => Value::from(py_datetime(d)),
    }
}

/// winchester's `_base_notification`: the payload describing the instance of an `.exists`.
fn base_notification(exists: &Event) -> Map<String, Value> {
    let (apb, ape) = audit_period(exists);
    let py = |d: Option<DateTime<Utc>>| Value::from(py_str(d.map(FieldValue::Datetime)));
    let empty = || Value::from("");
    let payload = json!({
        "audit_period_beginning": py(apb),
        "audit_period_ending": py(ape),
        "launched_at": trait_json(exists, "launched_at", empty()),
        "deleted_at": trait_json(exists, "deleted_at", empty()),
        "instance_id": trait_json(exists, "instance_id", empty()),
        "tenant_id": trait_json(exists, "tenant_id", empty()),
        "display_name": trait_json(exists, "display_name", empty()),
        "instance_type": trait_json(exists, "instance_flavor", empty()),
        "instance_flavor_id": trait_json(exists, "instance_flavor_id", empty()),
        "state": trait_json(exists, "state", empty()),
        "state_description": trait_json(exists, "state_description", empty()),
        "bandwidth": {"public": {
            "bw_in": trait_json(exists, "bandwidth_in", Value::from(0)),
            "bw_out": trait_json(exists, "bandwidth_out", Value::from(0)),
        }},
        "image_meta": {
            "org.openstack__1__architecture": trait_json(exists, "os_architecture", empty()),
            "org.openstack__1__os_version": trait_json(exists, "os_version", empty()),
            "org.openstack__1__os_distro": trait_json(exists, "os_distro", empty()),
            "org.rackspace__1__options": trait_json(exists, "rax_options", Value::from("0")),
        },
    });
    let mut notification = Map::new();
    notification.insert("payload".to_string(), payload);
    notification.insert(
        "original_message_id".to_string(),
        Value::from(exists.message_id.as_str()),
    );
    notification
}

/// Records `.verified` or `.failed` for an `.exists`.
fn verdict_event(
    exists: &Event,
    stream_id: i64,
    error: Option<UsageError>,
    audit: &mut UsageAudit,
) {
    let event_type = if error.is_some() { FAILED } else { VERIFIED };
    let message_id = derived_message_id(&exists.message_id, event_type).to_string();

    let mut notification = base_notification(exists);
    notification.insert("event_type".into(), Value::from(event_type));
    notification.insert("message_id".into(), Value::from(message_id.as_str()));
    notification.insert("publisher_id".into(), Value::from(PUBLISHER_ID));
    notification.insert(
        "timestamp".into(),
        Value::from(openstack_timestamp(exists.timestamp)),
    );
    notification.insert("stream_id".into(), Value::from(stream_id));
    // winchester wrote str(error): "None" when there was none.
    let (error_text, error_code) = match &error {
        Some(e) => (e.message.clone(), Value::from(e.code)),
        None => ("None".to_string(), Value::Null),
    };
    notification.insert("error".into(), Value::from(error_text));
    notification.insert("error_code".into(), error_code);
    audit.notifications.push(Value::Object(notification));

    let mut traits: Vec<Trait> = CARRIED_TRAITS
        .iter()
        .filter_map(|name| {
            exists.trait_value(name).map(|value| Trait {
                name: (*name).to_string(),
                value: value.clone(),
            })
        })
        .collect();
    traits.push(text_trait("service", PUBLISHER_ID));
    traits.push(Trait {
        name: "stream_id".to_string(),
        value: TraitValue::Int(stream_id),
    });
    traits.push(text_trait("original_message_id", &exists.message_id));
    if let Some(error) = &error {
        traits.push(text_trait("error", &error.message));
        traits.push(text_trait("error_code", error.code));
    }
    audit
        .events
        .push(new_event(message_id, event_type, exists.timestamp, traits));
}

/// Records `.warnings` for an `.exists`.
fn warnings_event(exists: &Event, stream_id: i64, warnings: &[String], audit: &mut UsageAudit) {
    let message_id = derived_message_id(&exists.message_id, WARNINGS).to_string();
    let instance_id = trait_json(exists, "instance_id", Value::Null);
    audit.notifications.push(json!({
        "event_type": WARNINGS,
        "publisher_id": PUBLISHER_ID,
        "message_id": message_id,
        "timestamp": openstack_timestamp(exists.timestamp),
        "stream_id": stream_id,
        "instance_id": instance_id,
        "warnings": warnings,
    }));
    let mut traits = vec![
        text_trait("service", PUBLISHER_ID),
        Trait {
            name: "stream_id".to_string(),
            value: TraitValue::Int(stream_id),
        },
        text_trait("original_message_id", &exists.message_id),
        text_trait("warnings", &warnings.join("\n")),
    ];
    if let Some(instance_id) = exists.trait_value("instance_id") {
        traits.push(Trait {
            name: "instance_id".to_string(),
            value: instance_id.clone(),
        });
    }
    audit
        .events
        .push(new_event(message_id, WARNINGS, exists.timestamp, traits));
}

/// Records the U0 `.failed` for events after the last `.exists`.
fn dangling_block(first: &Event, stream_id: i64, audit: &mut UsageAudit) {
    const MESSAGE: &str = "Notifications, but no .exists notification found.";
    let message_id = derived_message_id(&first.message_id, FAILED).to_string();
    audit.notifications.push(json!({
        "event_type": FAILED,
        "message_id": message_id,
        "timestamp": openstack_timestamp(first.timestamp),
        "stream_id": stream_id,
        "instance_id": trait_json(first, "instance_id", Value::Null),
        "error": MESSAGE,
        "error_code": "U0",
    }));
    let mut traits = vec![
        text_trait("service", PUBLISHER_ID),
        Trait {
            name: "stream_id".to_string(),
            value: TraitValue::Int(stream_id),
        },
        text_trait("original_message_id", &first.message_id),
        text_trait("error", MESSAGE),
        text_trait("error_code", "U0"),
    ];
    if let Some(instance_id) = first.trait_value("instance_id") {
        traits.push(Trait {
            name: "instance_id".to_string(),
            value: instance_id.clone(),
        });
    }
    audit
        .events
        .push(new_event(message_id, FAILED, first.timestamp, traits));
}

/// A text trait.
fn text_trait(name: &str, value: &str) -> Trait {
    Trait {
        name: name.to_string(),
        value: TraitValue::Text(value.to_string()),
    }
}

/// An event with its traits sorted by name (as the distiller makes them).
fn new_event(
    message_id: String,
    event_type: &str,
    timestamp: DateTime<Utc>,
    mut traits: Vec<Trait>,
) -> Event {
    traits.sort_by(|a, b| a.name.cmp(&b.name));
    Event {
        message_id,
        event_type: event_type.to_string(),
        timestamp,
        traits,
    }
}
