//! The `notabene` (RabbitMQ) and `kafka` pipeline handlers.
//!
//! Both collect in `handle` what to publish and publish it in `commit`, waiting for every
//! confirm; a failed publish fails the commit, so the stream goes to `error` (or
//! `expire_error`) and can be reset and retried. What is published:
//!
//! - with `env_keys`: the notifications earlier handlers put into the environment under those
//!   keys, in key order (each key holds a list of notification objects, or one object; a
//!   missing key publishes nothing), serialised as JSON as they are. tach's `usage` handler
//!   puts its `compute.instance.exists.verified/.failed/.warnings` notifications under
//!   `usage_notifications` (StackTach's sandbox pipelines.yaml uses exactly that).
//! - without `env_keys` (or with an empty list): every event the handler receives (the
//!   stream's events plus those earlier handlers added), as [`event_notification`] builds it.
//!
//! Each message's key (Kafka's message key; in error messages for RabbitMQ) is the
//! notification's `message_id`, or the value of the `key_trait` parameter when set (looked up
//! in the event's traits, or in the notification's `payload` then top level).
//!
//! `notabene` params (StackTach's names and defaults): `host` (`localhost`), `port` (5672),
//! `user` or `userid` (`guest`), `password` (`guest`), `vhost` (`/`) or instead `url`
//! (`amqp://…`), `exchange` (required), `exchange_type` (`topic`), `queue_name` (a durable queue
//! declared and bound to the exchange with the routing key; the routing key defaults to it),
//! `routing_key`, `durable` (true), `persistent` (= `durable`), `mandatory` (false: with true an
//! unroutable message is an error), `env_keys`, `key_trait`, `timeout` (seconds for connecting,
//! publishing and every confirm; 30); `library` is accepted and ignored. `kafka` params:
//! `brokers` (`host:port,…` or a list; required), `topic` (required; must exist), `env_keys`,
//! `key_trait`, `timeout` (30), `properties` (extra librdkafka settings). Unknown params are
//! logged as warnings.
//!
//! Handlers are created per stream; the publisher behind them (a thread with one connection)
//! is shared by every handler with the same settings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tach_distiller::{Event, TraitValue};
use tach_engine::{Environment, Handler, HandlerError, HandlerRegistry};

use crate::{AmqpConfig, BlockingPublisher, KafkaConfig, Target};

/// The parameters `notabene` reads (`library` is StackTach's and ignored).
const NOTABENE_PARAMS: &[&str] = &[
    "host",
    "port",
    "user",
    "userid",
    "password",
    "vhost",
    "url",
    "library",
    "exchange",
    "exchange_type",
    "durable",
    "persistent",
    "queue_name",
    "routing_key",
    "mandatory",
    "env_keys",
    "key_trait",
    "timeout",
];

/// The parameters `kafka` reads.
const KAFKA_PARAMS: &[&str] = &[
    "brokers",
    "topic",
    "env_keys",
    "key_trait",
    "timeout",
    "properties",
];

/// The `notabene` handler: publishes to a RabbitMQ exchange with publisher confirms.
pub type NotabeneHandler = PublishHandler;
/// The `kafka` handler: publishes to a Kafka topic with `acks=all` delivery reports.
pub type KafkaHandler = PublishHandler;

/// A handler publishing on commit (see the module documentation); `notabene` or `kafka`.
#[derive(Debug)]
pub struct PublishHandler {
    handler: &'static str,
    publisher: BlockingPublisher,
    env_keys: Vec<String>,
    key_trait: Option<String>,
    pending: Vec<(String, Vec<u8>)>,
}

/// What a handler's params say, before a publisher is found for them.
struct Settings {
    target: Target,
    timeout: Duration,
    env_keys: Vec<String>,
    key_trait: Option<String>,
}

/// Publishers shared by handlers with the same target and timeout.
type Pool = Arc<Mutex<HashMap<String, BlockingPublisher>>>;

/// Registers `notabene` and `kafka` in `registry` (sharing publishers between the streams).
pub fn register_handlers(registry: &mut HandlerRegistry) {
    let pool: Pool = Arc::default();
    let amqp_pool = Arc::clone(&pool);
    registry.register("notabene", move |params| {
        let settings = notabene_settings(params)?;
        Ok(
            Box::new(PublishHandler::with_pool("notabene", settings, &amqp_pool)?)
                as Box<dyn Handler>,
        )
    });
    registry.register("kafka", move |params| {
        let settings = kafka_settings(params)?;
        Ok(Box::new(PublishHandler::with_pool("kafka", settings, &pool)?) as Box<dyn Handler>)
    });
}

/// The built-in handlers plus `notabene` and `kafka`.
pub fn registry_with_publishers() -> HandlerRegistry {
    let mut registry = HandlerRegistry::with_builtins();
    register_handlers(&mut registry);
    registry
}

impl PublishHandler {
    /// A `notabene` handler from its pipelines.yaml `params`, with its own publisher.
    ///
    /// # Errors
    /// [`HandlerError::InvalidParams`] naming the parameter.
    pub fn notabene(params: &Value) -> Result<PublishHandler, HandlerError> {
        Self::with_pool("notabene", notabene_settings(params)?, &Pool::default())
    }

    /// A `kafka` handler from its pipelines.yaml `params`, with its own publisher.
    ///
    /// # Errors
    /// [`HandlerError::InvalidParams`] naming the parameter.
    pub fn kafka(params: &Value) -> Result<PublishHandler, HandlerError> {
        Self::with_pool("kafka", kafka_settings(params)?, &Pool::default())
    }

    /// A handler whose publisher comes from (or goes into) `pool`.
    fn with_pool(
        handler: &'static str,
        settings: Settings,
        pool: &Pool,
    ) -> Result<PublishHandler, HandlerError> {
        let key = format!("{:?}|{:?}", settings.target, settings.timeout);
        let mut publishers = pool.lock().unwrap_or_else(|p| p.into_inner());
        let publisher = match publishers.get(&key) {
            Some(p) => p.clone(),
            None => {
                let p =
                    BlockingPublisher::spawn(settings.target, settings.timeout).map_err(|e| {
                        HandlerError::Failed {
                            handler: handler.to_string(),
                            reason: e.to_string(),
                        }
                    })?;
                publishers.insert(key, p.clone());
                p
            }
        };
        Ok(PublishHandler {
            handler,
            publisher,
            env_keys: settings.env_keys,
            key_trait: settings.key_trait,
            pending: Vec::new(),
        })
    }

    /// The messages `commit` will publish, as `(key, JSON)` pairs.
    pub fn pending(&self) -> &[(String, Vec<u8>)] {
        &self.pending
    }

    /// Where it publishes (no secrets).
    pub fn target(&self) -> &str {
        self.publisher.target()
    }

    /// An error of this handler.
    fn failed(&self, reason: String) -> HandlerError {
        HandlerError::Failed {
            handler: self.handler.to_string(),
            reason,
        }
    }

    /// The message key of a notification from the environment.
    fn notification_key(&self, notification: &Map<String, Value>) -> String {
        let from = |name: &str| {
            notification
                .get("payload")
                .and_then(|p| p.get(name))
                .or_else(|| notification.get(name))
                .and_then(scalar_text)
        };
        self.key_trait
            .as_deref()
            .and_then(from)
            .or_else(|| from("message_id"))
            .unwrap_or_default()
    }

    /// The message key of an event.
    fn event_key(&self, event: &Event) -> String {
        self.key_trait
            .as_deref()
            .and_then(|name| event.trait_value(name))
            .map(|v| match v {
                TraitValue::Text(s) => s.clone(),
                TraitValue::Int(i) => i.to_string(),
                TraitValue::Float(f) => f.to_string(),
                TraitValue::Datetime(d) => openstack_timestamp(*d),
            })
            .unwrap_or_else(|| event.message_id.clone())
    }
}

impl Handler for PublishHandler {
    fn handle(
        &mut self,
        events: Vec<Event>,
        env: &mut Environment,
    ) -> Result<Vec<Event>, HandlerError> {
        let mut pending = Vec::new();
        if self.env_keys.is_empty() {
            for event in &events {
                let body = serde_json::to_vec(&event_notification(event))
                    .map_err(|e| self.failed(format!("cannot serialise an event: {e}")))?;
                pending.push((self.event_key(event), body));
            }
        } else {
            for key in &self.env_keys {
                let notifications: Vec<&Value> = match env.get(key) {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(list)) => list.iter().collect(),
                    Some(one @ Value::Object(_)) => vec![one],
                    Some(other) => {
                        return Err(self.failed(format!(
                            "environment key `{key}` holds {other}, not a list of notifications"
                        )));
                    }
                };
                for notification in notifications {
                    let Value::Object(object) = notification else {
                        return Err(self.failed(format!(
                            "environment key `{key}` holds {notification} where a notification \
                             object was expected"
                        )));
                    };
                    let body = serde_json::to_vec(notification).map_err(|e| {
                        self.failed(format!("cannot serialise a notification: {e}"))
                    })?;
                    pending.push((self.notification_key(object), body));
                }
            }
        }
        self.pending = pending;
        Ok(events)
    }

    fn commit(&mut self, env: &Environment) -> Result<(), HandlerError> {
        let messages = std::mem::take(&mut self.pending);
        let count = messages.len();
        if count == 0 {
            return Ok(());
        }
        match self.publisher.publish_all(messages) {
            Ok(confirmed) => {
                tracing::info!(
                    handler = self.handler,
                    stream_id = env.stream_id,
                    confirmed,
                    target = self.publisher.target(),
                    "Published the stream's notifications."
                );
                Ok(())
            }
            Err(e) => Err(self.failed(format!(
                "publishing {count} notifications to {}: {e}",
                self.publisher.target()
            ))),
        }
    }

    fn rollback(&mut self, _env: &Environment) {
        self.pending.clear();
    }
}

/// The notification published for an event (no `env_keys`): `event_type`, `message_id`,
/// `timestamp` (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC, as OpenStack writes it), `priority`
/// `INFO`, `publisher_id` (the `service` trait, when the event has one) and `payload`: every
/// trait by name (text as strings, ints and floats as numbers, datetimes as timestamps).
pub fn event_notification(event: &Event) -> Value {
    let mut payload = Map::new();
    for t in &event.traits {
        let value = match &t.value {
            TraitValue::Text(s) => Value::from(s.as_str()),
            TraitValue::Int(i) => Value::from(*i),
            TraitValue::Float(f) => Value::from(*f),
            TraitValue::Datetime(d) => Value::from(openstack_timestamp(*d)),
        };
        payload.insert(t.name.clone(), value);
    }
    let mut notification = Map::new();
    notification.insert("event_type".into(), Value::from(event.event_type.as_str()));
    notification.insert("message_id".into(), Value::from(event.message_id.as_str()));
    notification.insert(
        "timestamp".into(),
        Value::from(openstack_timestamp(event.timestamp)),
    );
    notification.insert("priority".into(), Value::from("INFO"));
    if let Some(TraitValue::Text(service)) = event.trait_value("service") {
        notification.insert("publisher_id".into(), Value::from(service.as_str()));
    }
    notification.insert("payload".into(), Value::Object(payload));
    Value::Object(notification)
}

/// OpenStack's timestamp form, `2014-08-01 12:00:00.000000`.
fn openstack_timestamp(d: DateTime<Utc>) -> String {
    d.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// A string or number as text.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads a handler's params, naming the parameter at fault.
struct Params<'a> {
    handler: &'static str,
    map: Option<&'a Map<String, Value>>,
}

impl<'a> Params<'a> {
    /// Checks that `params` is a mapping (or absent) and warns about unknown keys.
    fn new(
        handler: &'static str,
        params: &'a Value,
        known: &[&str],
    ) -> Result<Params<'a>, HandlerError> {
        let map = match params {
            Value::Null => None,
            Value::Object(map) => Some(map),
            other => {
                return Err(HandlerError::InvalidParams {
                    handler: handler.to_string(),
                    reason: format!("expected a mapping, found {other}"),
                });
            }
        };
        for key in map.into_iter().flat_map(|m| m.keys()) {
            if !known.contains(&key.as_str()) {
                tracing::warn!(
                    handler,
                    param = %key,
                    "Unknown handler parameter ignored (known: {}).",
                    known.join(", ")
                );
            }
        }
        Ok(Params { handler, map })
    }

    fn invalid(&self, param: &str, reason: impl std::fmt::Display) -> HandlerError {
        HandlerError::InvalidParams {
            handler: self.handler.to_string(),
            reason: format!("`{param}`: {reason}"),
        }
    }

    fn get(&self, param: &str) -> Option<&'a Value> {
        self.map.and_then(|m| m.get(param)).filter(|v| !v.is_null())
    }

    /// A string (numbers are accepted and written out).
    fn text(&self, param: &str) -> Result<Option<String>, HandlerError> {
        match self.get(param) {
            None => Ok(None),
            Some(v) => scalar_text(v)
                .map(Some)
                .ok_or_else(|| self.invalid(param, format!("expected a string, found {v}"))),
        }
    }

    fn required(&self, param: &str) -> Result<String, HandlerError> {
        self.text(param)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.invalid(param, "is required"))
    }

    fn flag(&self, param: &str, default: bool) -> Result<bool, HandlerError> {
        match self.get(param) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(self.invalid(param, format!("expected true or false, found {v}"))),
        }
    }

    fn port(&self, param: &str, default: u16) -> Result<u16, HandlerError> {
        match self.text(param)? {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|_| self.invalid(param, format!("`{s}` is not a port number"))),
        }
    }

    /// Seconds, as a number or a numeric string.
    fn seconds(&self, param: &str, default: f64) -> Result<Duration, HandlerError> {
        let seconds = match self.get(param) {
            None => default,
            Some(Value::Number(n)) => n.as_f64().unwrap_or(-1.0),
            Some(Value::String(s)) => s.trim().parse().unwrap_or(-1.0),
            Some(v) => return Err(self.invalid(param, format!("expected seconds, found {v}"))),
        };
        if !(seconds.is_finite() && seconds > 0.0 && seconds < 86_400.0) {
            return Err(self.invalid(param, "expected a number of seconds above 0"));
        }
        Ok(Duration::from_secs_f64(seconds))
    }

    /// A list of strings (one string is a list of one).
    fn list(&self, param: &str) -> Result<Vec<String>, HandlerError> {
        match self.get(param) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        self.invalid(param, format!("expected a list of strings, found {v}"))
                    })
                })
                .collect(),
            Some(v) => Err(self.invalid(param, format!("expected a list of strings, found {v}"))),
        }
    }
}

/// Reads `notabene`'s params (StackTach's names and defaults: host `localhost`, port 5672,
/// user `guest`, password `guest`, vhost `/`, exchange_type `topic`; the routing key and the
/// declared, bound queue are `queue_name`).
fn notabene_settings(params: &Value) -> Result<Settings, HandlerError> {
    let p = Params::new("notabene", params, NOTABENE_PARAMS)?;
    let exchange = p.required("exchange")?;
    let queue_name = p.text("queue_name")?.filter(|s| !s.is_empty());
    let routing_key = match (p.text("routing_key")?, &queue_name) {
        (Some(key), _) => key,
        (None, Some(queue)) => queue.clone(),
        (None, None) => {
            return Err(p.invalid("queue_name", "is required (or `routing_key`)"));
        }
    };
    let mut config = match p.text("url")? {
        Some(url) => {
            AmqpConfig::from_url(&url, &exchange, &routing_key).map_err(|e| p.invalid("url", e))?
        }
        None => {
            let user = match p.text("user")? {
                Some(user) => user,
                None => p.text("userid")?.unwrap_or_else(|| "guest".to_string()),
            };
            AmqpConfig::from_parts(
                &p.text("host")?.unwrap_or_else(|| "localhost".to_string()),
                p.port("port", 5672)?,
                &user,
                &p.text("password")?.unwrap_or_else(|| "guest".to_string()),
                &p.text("vhost")?.unwrap_or_else(|| "/".to_string()),
                &exchange,
                &routing_key,
            )
        }
    };
    config.exchange_type = p
        .text("exchange_type")?
        .unwrap_or_else(|| "topic".to_string());
    config.durable = p.flag("durable", true)?;
    config.persistent = p.flag("persistent", config.durable)?;
    config.mandatory = p.flag("mandatory", false)?;
    config.queue_name = queue_name;
    Ok(Settings {
        target: Target::Amqp(config),
        timeout: p.seconds("timeout", 30.0)?,
        env_keys: p.list("env_keys")?,
        key_trait: p.text("key_trait")?,
    })
}

/// Reads `kafka`'s params: `brokers` (a string `host:port,…` or a list) and `topic` are
/// required; `properties` are extra librdkafka settings.
fn kafka_settings(params: &Value) -> Result<Settings, HandlerError> {
    let p = Params::new("kafka", params, KAFKA_PARAMS)?;
    let brokers = p.list("brokers")?.join(",");
    if brokers.is_empty() {
        return Err(p.invalid("brokers", "is required"));
    }
    let topic = p.required("topic")?;
    let timeout = p.seconds("timeout", 30.0)?;
    let mut config = KafkaConfig::new(&brokers, &topic);
    // librdkafka gives up on a message a little before the batch's own limit.
    config.timeout = timeout.mul_f64(0.9).max(Duration::from_millis(100));
    match p.get("properties") {
        None => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                let value = match value {
                    Value::Bool(b) => b.to_string(),
                    other => scalar_text(other).ok_or_else(|| {
                        p.invalid("properties", format!("`{key}`: expected a scalar"))
                    })?,
                };
                config.properties.push((key.clone(), value));
            }
        }
        Some(v) => return Err(p.invalid("properties", format!("expected a mapping, found {v}"))),
    }
    Ok(Settings {
        target: Target::Kafka(config),
        timeout,
        env_keys: p.list("env_keys")?,
        key_trait: p.text("key_trait")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn notabene_reads_stacktachs_parameters() {
        let s = notabene_settings(&json!({
            "host": "localhost", "user": "guest", "password": "guest", "port": 5672,
            "vhost": "/", "library": "librabbitmq", "exchange": "nova",
            "exchange_type": "topic", "queue_name": "monitor.info",
            "env_keys": ["usage_notifications"]
        }))
        .unwrap();
        let Target::Amqp(c) = &s.target else {
            panic!("amqp")
        };
        assert_eq!(c.exchange, "nova");
        assert_eq!(c.routing_key, "monitor.info");
        assert_eq!(c.queue_name.as_deref(), Some("monitor.info"));
        assert_eq!(c.uri.authority.port, 5672);
        assert_eq!(c.uri.vhost, "/");
        assert_eq!(s.env_keys, ["usage_notifications"]);
        assert_eq!(s.timeout, Duration::from_secs(30));
    }

    #[test]
    fn bad_params_name_the_parameter() {
        let err = |v: Value| notabene_settings(&v).err().unwrap().to_string();
        assert!(err(json!({"queue_name": "q"})).contains("`exchange`: is required"));
        assert!(err(json!({"exchange": "e"})).contains("`queue_name`"));
        assert!(err(json!({"exchange": "e", "queue_name": "q", "port": "x"})).contains("`port`"));
        assert!(
            err(json!({"exchange": "e", "queue_name": "q", "env_keys": 3})).contains("`env_keys`")
        );
        let k = kafka_settings(&json!({"topic": "t"}))
            .err()
            .unwrap()
            .to_string();
        assert!(k.contains("`brokers`"), "{k}");
        let s = kafka_settings(&json!({"brokers": ["a:1", "b:2"], "topic": "t",
            "properties": {"linger.ms": 1}}))
        .unwrap();
        let Target::Kafka(c) = &s.target else {
            panic!("kafka")
        };
        assert_eq!(c.brokers, "a:1,b:2");
        assert_eq!(c.properties, [("linger.ms".to_string(), "1".to_string())]);
    }
}
