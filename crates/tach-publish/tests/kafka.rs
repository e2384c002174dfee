//! Against the Kafka broker on 127.0.0.1:9092 (`../shared/tools/kafka-broker.sh start`):
//! delivery reports, and the `kafka` handler in a pipeline run by the pipeline manager.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use serde_json::Value;
use tach_distiller::{Event, Trait, TraitValue};
use tach_publish::{KafkaConfig, KafkaPublisher, registry_with_publishers};
use tach_store::{StreamFilter, StreamState};

const BROKERS: &str = "127.0.0.1:9092";
static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "tach-publish-test.{prefix}.{}.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        Utc::now().timestamp_micros()
    )
}

/// Creates `topic` with `partitions` partitions.
async fn create_topic(topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .create()
        .unwrap();
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("is the Kafka broker up? ../shared/tools/kafka-broker.sh start");
    for r in results {
        r.unwrap();
    }
}

/// Deletes `topic`.
async fn delete_topic(topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .create()
        .unwrap();
    let _ = admin.delete_topics(&[topic], &AdminOptions::new()).await;
}

/// Reads `(key, payload)` from `topic` from the start until `n` arrived or 20 s passed, then
/// one more second for extras.
async fn take(topic: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .set("group.id", unique("group"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let wait = if out.len() < n {
            deadline.saturating_duration_since(Instant::now())
        } else {
            Duration::from_secs(1)
        };
        match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(Ok(m)) => out.push((
                String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap(),
                m.payload().unwrap_or_default().to_vec(),
            )),
            Ok(Err(e)) => panic!("consuming {topic}: {e}"),
            Err(_) => break,
        }
    }
    out
}

#[tokio::test]
async fn produced_messages_are_delivered_with_their_keys() {
    let topic = unique("t");
    create_topic(&topic, 3).await;
    let mut config = KafkaConfig::new(BROKERS, &topic);
    config.window = 64;
    let mut publisher = KafkaPublisher::connect(&config).unwrap();
    for i in 0..300 {
        let body = format!("{{\"message_id\":\"m{i}\"}}");
        publisher
            .publish(&format!("m{i}"), body.as_bytes())
            .await
            .unwrap();
    }
    publisher.flush().await.unwrap();
    assert_eq!((publisher.sent(), publisher.confirmed()), (300, 300));
    publisher.close();
    let got = take(&topic, 300).await;
    assert_eq!(got.len(), 300);
    let by_key: BTreeMap<String, Value> = got
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::from_slice(v).unwrap()))
        .collect();
    assert_eq!(by_key.len(), 300, "every key once");
    for (key, body) in &by_key {
        assert_eq!(body["message_id"], key.as_str());
    }
    delete_topic(&topic).await;
}

#[tokio::test]
async fn an_unreachable_broker_or_a_missing_topic_is_an_error() {
    let mut config = KafkaConfig::new("127.0.0.1:1", "nowhere");
    config.timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = KafkaPublisher::connect(&config).unwrap_err().to_string();
    assert!(
        err.contains("reading the metadata of kafka://127.0.0.1:1/nowhere"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let missing = unique("missing");
    let err = KafkaPublisher::connect(&KafkaConfig::new(BROKERS, &missing))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("topic `{missing}` on {BROKERS}")),
        "{err}"
    );
}

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, h, m, 0).unwrap()
}

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

/// Runs one `compute.instance.exists` through a pipeline `[usage, kafka(params)]` on a fresh
/// SQLite database; returns the stream's final state and error.
async fn run_pipeline(kafka_params: &str) -> (StreamState, Option<String>) {
    let dir: PathBuf = std::env::temp_dir().join(unique("cfg"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("winchester.yaml"),
        "config_path: .\ntrigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\n\
         purge_completed_streams: false\npipeline_handlers:\n  usage: usage\n  kafka: kafka\n",
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
    std::fs::write(
        dir.join("pipelines.yaml"),
        format!("p:\n  - usage\n  - name: kafka\n    params: {kafka_params}\n"),
    )
    .unwrap();
    let config = tach_engine::WinchesterConfig::load(dir.join("winchester.yaml")).unwrap();
    let setup =
        tach_worker::WorkerSetup::load_with_registry(&config, registry_with_publishers()).unwrap();
    sqlx::any::install_default_drivers();
    let file = dir.join("tach.db");
    let store = tach_store::Store::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let mut pm = setup.pipeline_manager(store.clone());
    pm.trigger_manager()
        .add_events(&[exists("k1", "i-1")], at(0, 5))
        .await
        .unwrap();
    let pass = pm.run_until_idle(at(1, 0)).await.unwrap();
    assert_eq!(pass.handled(), 1);
    let streams = store.list_streams(&StreamFilter::default()).await.unwrap();
    assert_eq!(streams.len(), 1);
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    (streams[0].state, streams[0].error.clone())
}

#[tokio::test]
async fn the_kafka_handler_publishes_on_commit_keyed_by_message_id_or_trait() {
    let (events, usage) = (unique("events"), unique("usage"));
    create_topic(&events, 3).await;
    create_topic(&usage, 1).await;
    let (state, error) =
        run_pipeline(&format!("{{brokers: \"{BROKERS}\", topic: \"{events}\"}}")).await;
    assert_eq!((state, error), (StreamState::Completed, None));
    let got = take(&events, 2).await;
    let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(got.len(), 2, "{keys:?}");
    assert!(keys.contains(&"k1"), "{keys:?}");
    for (key, body) in &got {
        let body: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["message_id"], key.as_str());
    }

    let (state, _) = run_pipeline(&format!(
        "{{brokers: [\"{BROKERS}\"], topic: \"{usage}\", env_keys: [usage_notifications], \
         key_trait: instance_id}}"
    ))
    .await;
    assert_eq!(state, StreamState::Completed);
    let got = take(&usage, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "i-1", "keyed by the payload's instance_id");
    let body: Value = serde_json::from_slice(&got[0].1).unwrap();
    assert_eq!(body["event_type"], "compute.instance.exists.verified");
    delete_topic(&events).await;
    delete_topic(&usage).await;
}

#[tokio::test]
async fn a_failed_delivery_puts_the_stream_in_error() {
    let (state, error) =
        run_pipeline("{brokers: \"127.0.0.1:1\", topic: nowhere, timeout: 2}").await;
    assert_eq!(state, StreamState::Error);
    let error = error.unwrap();
    assert!(
        error.starts_with("pipeline `p`, handler `kafka`: handler `kafka` failed: publishing 2 notifications to kafka://127.0.0.1:1/nowhere"),
        "{error}"
    );
}
