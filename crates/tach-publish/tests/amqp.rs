//! Against the local RabbitMQ (127.0.0.1:5672, guest/guest): publisher confirms, returned
//! messages, and the `notabene` handler in a pipeline run by the pipeline manager on SQLite.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use lapin::options::{BasicGetOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use serde_json::Value;
use tach_distiller::{Event, Trait, TraitValue};
use tach_publish::{AmqpConfig, AmqpPublisher, Error, registry_with_publishers};
use tach_store::{StreamFilter, StreamState};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name no other test (or run) uses.
fn unique(prefix: &str) -> String {
    format!(
        "tach-publish-test.{prefix}.{}.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        Utc::now().timestamp_micros()
    )
}

/// Takes messages off `queue` until `n` arrived or 10 s passed.
async fn take(queue: &str, n: usize) -> Vec<Vec<u8>> {
    let conn = Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < n && Instant::now() < deadline {
        match channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            Some(message) => out.push(message.delivery.data.clone()),
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    // Nothing more arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    if let Some(extra) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        out.push(extra.delivery.data.clone());
    }
    conn.close(200, "bye".into()).await.ok();
    out
}

/// Deletes test queues and exchanges.
async fn cleanup(queues: &[&str], exchanges: &[&str]) {
    let conn = Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    for q in queues {
        channel
            .queue_delete((*q).into(), QueueDeleteOptions::default())
            .await
            .ok();
    }
    for e in exchanges {
        channel
            .exchange_delete((*e).into(), ExchangeDeleteOptions::default())
            .await
            .ok();
    }
    conn.close(200, "bye".into()).await.ok();
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

#[tokio::test]
async fn published_messages_are_confirmed_and_arrive_in_order() {
    let (exchange, queue) = (unique("x"), unique("q"));
    let mut config = AmqpConfig::from_url(URL, &exchange, &queue).unwrap();
    config.queue_name = Some(queue.clone());
    config.window = 16;
    let mut publisher = AmqpPublisher::connect(&config).await.unwrap();
    for i in 0..500 {
        let body = format!("{{\"message_id\":\"m{i}\"}}");
        publisher
            .publish(&format!("m{i}"), body.as_bytes())
            .await
            .unwrap();
    }
    publisher.flush().await.unwrap();
    assert_eq!((publisher.sent(), publisher.confirmed()), (500, 500));
    publisher.close().await;
    let got = take(&queue, 500).await;
    assert_eq!(got.len(), 500);
    for (i, body) in got.iter().enumerate() {
        assert_eq!(json(body)["message_id"], format!("m{i}"));
    }
    cleanup(&[&queue], &[&exchange]).await;
}

#[tokio::test]
async fn an_unroutable_mandatory_message_is_an_error() {
    let exchange = unique("x");
    let mut config = AmqpConfig::from_url(URL, &exchange, "nowhere").unwrap();
    config.mandatory = true;
    let mut publisher = AmqpPublisher::connect(&config).await.unwrap();
    publisher.publish("m1", b"{}").await.unwrap();
    let err = publisher.flush().await.unwrap_err();
    assert!(
        matches!(err, Error::NotConfirmed { ref key, .. } if key == "m1"),
        "{err}"
    );
    assert!(err.to_string().contains("NO_ROUTE"), "{err}");
    assert_eq!(publisher.confirmed(), 0);
    publisher.close().await;
    cleanup(&[], &[&exchange]).await;
}

#[tokio::test]
async fn an_unreachable_broker_is_an_error() {
    let config = AmqpConfig::from_url("amqp://guest:guest@127.0.0.1:1/%2f", "x", "y").unwrap();
    let err = AmqpPublisher::connect(&config).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("connecting to amqp://guest@127.0.0.1:1"),
        "{err}"
    );
}

/// A temporary directory with winchester.yaml, triggers.yaml and pipelines.yaml.
struct Configs {
    dir: PathBuf,
}

impl Configs {
    /// One trigger per instance firing on `compute.instance.exists`; its fire and expire
    /// pipeline is `pipeline` (YAML, the handler list).
    fn new(pipeline: &str) -> Configs {
        let dir = std::env::temp_dir().join(unique("cfg"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("winchester.yaml"),
            "config_path: .\ndatabase:\n  url: sqlite://unused.db\n\
             trigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\n\
             purge_completed_streams: false\n\
             pipeline_handlers:\n  logger: logger\n  usage: usage\n\
             \x20 notabene: winchester.pipeline_handler:NotabeneHandler\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("triggers.yaml"),
            "- name: audit\n  distinguished_by: [instance_id]\n  expiration: \"$last + 1d\"\n\
             \x20 fire_pipeline: p\n  expire_pipeline: p\n\
             \x20 match_criteria:\n    - event_type: compute.instance.exists\n\
             \x20 fire_criteria:\n    - event_type: compute.instance.exists\n",
        )
        .unwrap();
        let configs = Configs { dir };
        configs.set_pipeline(pipeline);
        configs
    }

    fn set_pipeline(&self, pipeline: &str) {
        std::fs::write(self.dir.join("pipelines.yaml"), format!("p:\n{pipeline}")).unwrap();
    }

    fn setup(&self) -> tach_worker::WorkerSetup {
        let config = tach_engine::WinchesterConfig::load(self.dir.join("winchester.yaml")).unwrap();
        tach_worker::WorkerSetup::load_with_registry(&config, registry_with_publishers()).unwrap()
    }
}

impl Drop for Configs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, h, m, 0).unwrap()
}

/// An end-of-day `compute.instance.exists` of an instance launched before the audit period.
fn exists(message_id: &str, instance: &str) -> Event {
    let text = |name: &str, v: &str| Trait {
        name: name.into(),
        value: TraitValue::Text(v.into()),
    };
    let time = |name: &str, v: DateTime<Utc>| Trait {
        name: name.into(),
        value: TraitValue::Datetime(v),
    };
    let mut traits = vec![
        time(
            "audit_period_beginning",
            at(0, 0) - chrono::Duration::days(1),
        ),
        time("audit_period_ending", at(0, 0)),
        text("instance_id", instance),
        time("launched_at", at(0, 0) - chrono::Duration::days(10)),
        text("service", "compute.host-1"),
        text("state", "active"),
        text("tenant_id", "t1"),
    ];
    traits.sort_by(|a, b| a.name.cmp(&b.name));
    Event {
        message_id: message_id.into(),
        event_type: "compute.instance.exists".into(),
        timestamp: at(0, 5),
        traits,
    }
}

async fn sqlite_store() -> (tach_store::Store, PathBuf) {
    sqlx::any::install_default_drivers();
    let file = std::env::temp_dir().join(format!("{}.db", unique("db")));
    let store = tach_store::Store::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (store, file)
}

fn remove_db(file: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = file.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// The test database's one stream (of the instance `instance`).
async fn audit_stream(store: &tach_store::Store, instance: &str) -> tach_store::StreamRow {
    let mut streams = store.list_streams(&StreamFilter::default()).await.unwrap();
    assert_eq!(streams.len(), 1, "{streams:?}");
    let stream = streams.remove(0);
    assert!(stream.distinguishing_key.contains(instance), "{stream:?}");
    stream
}

fn notabene(params: &str) -> String {
    format!("  - name: notabene\n    params: {params}\n")
}

#[tokio::test]
async fn notabene_publishes_the_usage_notifications_and_the_events_on_commit() {
    let (exchange, usage_q, events_q) = (unique("x"), unique("usage"), unique("events"));
    let configs = Configs::new(&format!(
        "  - logger\n  - usage\n{}{}",
        notabene(&format!(
            "{{host: 127.0.0.1, port: 5672, user: guest, password: guest, vhost: /, \
             library: librabbitmq, exchange: {exchange}, exchange_type: topic, \
             queue_name: {usage_q}, env_keys: [usage_notifications]}}"
        )),
        notabene(&format!(
            "{{url: \"{URL}\", exchange: {exchange}, queue_name: {events_q}}}"
        )),
    ));
    let (store, file) = sqlite_store().await;
    let mut pm = configs.setup().pipeline_manager(store.clone());
    pm.trigger_manager()
        .add_events(&[exists("e1", "i-1")], at(0, 5))
        .await
        .unwrap();
    let pass = pm.run_until_idle(at(1, 0)).await.unwrap();
    assert_eq!((pass.fired, pass.errors), (1, 0));
    assert_eq!(
        audit_stream(&store, "i-1").await.state,
        StreamState::Completed
    );

    let usage = take(&usage_q, 1).await;
    assert_eq!(
        usage.len(),
        1,
        "exactly the usage handler's one notification"
    );
    let verdict = json(&usage[0]);
    assert_eq!(verdict["event_type"], "compute.instance.exists.verified");
    assert_eq!(verdict["publisher_id"], "stv3");
    assert_eq!(verdict["payload"]["instance_id"], "i-1");
    let verdict_id = verdict["message_id"].as_str().unwrap().to_string();
    assert_ne!(verdict_id, "e1");

    let events = take(&events_q, 2).await;
    assert_eq!(
        events.len(),
        2,
        "the stream's event and the one usage added"
    );
    let first = json(&events[0]);
    assert_eq!(first["message_id"], "e1");
    assert_eq!(first["event_type"], "compute.instance.exists");
    assert_eq!(first["timestamp"], "2026-01-02 00:05:00.000000");
    assert_eq!(first["publisher_id"], "compute.host-1");
    assert_eq!(first["payload"]["instance_id"], "i-1");
    assert_eq!(
        first["payload"]["launched_at"],
        "2025-12-23 00:00:00.000000"
    );
    assert_eq!(json(&events[1])["message_id"], verdict_id.as_str());

    store.close().await;
    remove_db(&file);
    cleanup(&[&usage_q, &events_q], &[&exchange]).await;
}

#[tokio::test]
async fn a_failed_publish_puts_the_stream_in_error_and_a_reset_retries_it() {
    let (exchange, queue) = (unique("x"), unique("q"));
    let broken = notabene(&format!(
        "{{host: 127.0.0.1, port: 1, exchange: {exchange}, queue_name: {queue}, timeout: 5}}"
    ));
    let configs = Configs::new(&format!("  - usage\n{broken}"));
    let (store, file) = sqlite_store().await;
    let mut pm = configs.setup().pipeline_manager(store.clone());
    pm.trigger_manager()
        .add_events(&[exists("e2", "i-2")], at(0, 5))
        .await
        .unwrap();
    let pass = pm.run_until_idle(at(1, 0)).await.unwrap();
    assert_eq!((pass.fired, pass.errors), (0, 1));
    assert_eq!(
        pass.new_events.stored, 0,
        "a failed commit stores no new events"
    );
    let stream = audit_stream(&store, "i-2").await;
    assert_eq!(stream.state, StreamState::Error);
    let error = stream.error.clone().unwrap();
    assert!(
        error.starts_with("pipeline `p`, handler `notabene`: handler `notabene` failed: publishing 2 notifications to amqp://guest@127.0.0.1:1/"),
        "{error}"
    );

    // A mandatory publish the broker returns (no queue bound) fails the same way.
    store.reset_stream(stream.id).await.unwrap();
    configs.set_pipeline(&format!(
        "  - usage\n{}",
        notabene(&format!(
            "{{host: 127.0.0.1, exchange: {exchange}, routing_key: nowhere, mandatory: true}}"
        ))
    ));
    let mut pm = configs.setup().pipeline_manager(store.clone());
    let pass = pm.run_until_idle(at(1, 0)).await.unwrap();
    assert_eq!((pass.fired, pass.errors), (0, 1));
    let stream = audit_stream(&store, "i-2").await;
    assert_eq!(stream.state, StreamState::Error);
    assert!(
        stream.error.as_deref().unwrap().contains("NO_ROUTE"),
        "{:?}",
        stream.error
    );

    // Reset, fix the broker settings, and the retry publishes and completes.
    store.reset_stream(stream.id).await.unwrap();
    configs.set_pipeline(&format!(
        "  - usage\n{}",
        notabene(&format!(
            "{{host: 127.0.0.1, exchange: {exchange}, queue_name: {queue}}}"
        ))
    ));
    let mut pm = configs.setup().pipeline_manager(store.clone());
    let pass = pm.run_until_idle(at(1, 0)).await.unwrap();
    assert_eq!((pass.fired, pass.errors), (1, 0));
    assert_eq!(
        audit_stream(&store, "i-2").await.state,
        StreamState::Completed
    );
    let got = take(&queue, 2).await;
    let ids: Vec<String> = got
        .iter()
        .map(|b| json(b)["message_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], "e2");

    store.close().await;
    remove_db(&file);
    cleanup(&[&queue], &[&exchange]).await;
}
