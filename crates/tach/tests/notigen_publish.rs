//! `tach notigen --publish` against the local RabbitMQ (127.0.0.1:5672 guest/guest) and the
//! Kafka broker (127.0.0.1:9092): every notification arrives once, byte for byte as notigen
//! prints it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const BROKERS: &str = "127.0.0.1:9092";

fn unique(prefix: &str) -> String {
    format!(
        "tach-notigen-test.{prefix}.{}.{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
    )
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tach(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tach"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("tach runs")
}

/// What `tach notigen --count N --seed S` prints: one notification per line.
fn expected(n: usize, seed: &str) -> Vec<String> {
    let out = tach(&["notigen", "--count", &n.to_string(), "--seed", seed]);
    assert!(out.status.success());
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), n);
    lines
}

fn message_id(line: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(line).unwrap();
    v["message_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn notigen_publishes_every_notification_to_rabbitmq_with_confirms() {
    let (exchange, queue, key) = (unique("x"), unique("q"), unique("rk"));
    let conn = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    let n = 3000;
    let out = tach(&[
        "notigen",
        "--count",
        &n.to_string(),
        "--seed",
        "7",
        "--publish",
        AMQP,
        "--exchange",
        &exchange,
        "--routing-key",
        &key,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "publishing prints nothing on stdout");
    assert!(
        stderr.contains(&format!(
            "sent {n} notifications to amqp://guest@127.0.0.1:5672/"
        )) && stderr.contains(&format!("{n} confirmed")),
        "{stderr}"
    );

    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() <= n && Instant::now() < deadline {
        match channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            Some(m) => got.push(m.delivery.data.clone()),
            None if got.len() == n => break,
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let expected = expected(n, "7");
    assert_eq!(got.len(), n, "exactly N messages");
    for (body, line) in got.iter().zip(&expected) {
        assert_eq!(
            body.as_slice(),
            line.as_bytes(),
            "the bytes notigen prints, in order"
        );
    }
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .ok();
    channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .ok();
    conn.close(200, "bye".into()).await.ok();
}

/// An admin client of the test broker.
fn admin() -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .create()
        .unwrap()
}

/// Reads every `(key, payload)` of `topic` from the start: until `n` arrived (or 30 s
/// passed), then one more second for any extra.
async fn consume(topic: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .set("group.id", unique("g"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let wait = if got.len() < n {
            deadline.saturating_duration_since(Instant::now())
        } else {
            Duration::from_secs(1)
        };
        match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(Ok(m)) => got.push((
                String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap(),
                m.payload().unwrap_or_default().to_vec(),
            )),
            Ok(Err(e)) => panic!("consuming: {e}"),
            Err(_) => break,
        }
    }
    got
}

#[tokio::test]
async fn notigen_publishes_every_notification_to_kafka_keyed_by_message_id() {
    let topic = unique("t");
    let created = admin()
        .create_topics(
            &[NewTopic::new(&topic, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("is the Kafka broker up? ../shared/tools/kafka-broker.sh start");
    for r in created {
        r.unwrap();
    }
    let n = 3000;
    let url = format!("kafka://{BROKERS}/{topic}");
    let out = tach(&[
        "notigen",
        "--count",
        &n.to_string(),
        "--seed",
        "8",
        "--publish",
        &url,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("{n} confirmed")), "{stderr}");

    let consumed = consume(&topic, n).await;
    assert_eq!(consumed.len(), n, "exactly N messages");
    let mut got: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (key, body) in consumed {
        got.entry(key).or_default().push(body);
    }
    let expected = expected(n, "8");
    assert_eq!(got.len(), n, "N distinct keys");
    for line in &expected {
        let id = message_id(line.as_bytes());
        assert_eq!(
            got.get(&id).map(Vec::as_slice),
            Some([line.as_bytes().to_vec()].as_slice()),
            "message {id}: keyed by its message_id, the bytes notigen prints"
        );
    }
    let _ = admin().delete_topics(&[&topic], &AdminOptions::new()).await;
}

#[tokio::test]
async fn rate_limits_and_bad_urls() {
    let (exchange, key) = (unique("x"), unique("rk"));
    let started = Instant::now();
    let out = tach(&[
        "notigen",
        "--count",
        "100",
        "--publish",
        AMQP,
        "--exchange",
        &exchange,
        "--routing-key",
        &key,
        "--rate",
        "250/s",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(390),
        "100 at 250/s take at least 0.4 s, took {:?}",
        started.elapsed()
    );
    let conn = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .ok();
    conn.close(200, "bye".into()).await.ok();
    let out = tach(&["notigen", "--count", "1", "--publish", "http://x/"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--publish"));
    let out = tach(&[
        "notigen",
        "--count",
        "1",
        "--publish",
        AMQP,
        "--rate",
        "fast",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rate"));
    let out = tach(&[
        "notigen",
        "--count",
        "1",
        "--publish",
        "amqp://guest:guest@127.0.0.1:1/%2f",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot publish to amqp://guest@127.0.0.1:1/"),
        "{stderr}"
    );
}
