//! Benchmark of `tach ingest`: preloads a RabbitMQ queue or a Kafka topic with notigen
//! notifications, then times one `tach ingest` process draining it into a database.
//!
//! ```text
//! cargo build --release -p tach -p tach-ingest --example bench_ingest
//! target/release/examples/bench_ingest --source amqp --count 100000 \
//!     --db sqlite --tach target/release/tach
//! ```
//! `--source amqp|kafka`, `--db sqlite|postgres` (a fresh database each run on the local
//! server), `--count N`, `--batch N` (default 5,000, as `tach ingest`). Prints the drain time and rate (from the first stored
//! event to the last, and from the process start).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use sqlx::{AnyConnection, Connection as _, Executor, Row};
use tach_notigen::{Envelope, Generator, NotigenConfig};

struct Args {
    source: String,
    db: String,
    count: u64,
    batch: usize,
    tach: PathBuf,
    /// With an empty triggers.yaml: events are stored but join no stream (isolates the
    /// consumer, distiller and event inserts from the stream work).
    no_triggers: bool,
}

const USAGE: &str = "usage: bench_ingest [--source amqp|kafka] [--db sqlite|postgres] \
                     [--count N] [--batch N] [--tach PATH] [--no-triggers]";

/// Prints `problem` and the usage, then exits 2.
fn usage_error(problem: &str) -> ! {
    eprintln!("bench_ingest: {problem}\n{USAGE}");
    std::process::exit(2);
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> T {
    value
        .parse()
        .unwrap_or_else(|_| usage_error(&format!("{flag}: `{value}` is not a number")))
}

fn args() -> Args {
    let mut a = Args {
        source: "amqp".into(),
        db: "sqlite".into(),
        count: 100_000,
        batch: 5000,
        tach: PathBuf::from("target/release/tach"),
        no_triggers: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--no-triggers" => {
                a.no_triggers = true;
                continue;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => {}
        }
        let value = it
            .next()
            .unwrap_or_else(|| usage_error(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--source" if value == "amqp" || value == "kafka" => a.source = value,
            "--db" if value == "sqlite" || value == "postgres" => a.db = value,
            "--source" | "--db" => usage_error(&format!("{flag}: unknown `{value}`")),
            "--count" => a.count = number(&flag, &value),
            "--batch" => a.batch = number(&flag, &value),
            "--tach" => a.tach = PathBuf::from(value),
            other => usage_error(&format!("unknown flag {other}")),
        }
    }
    a.tach = a
        .tach
        .canonicalize()
        .unwrap_or_else(|e| usage_error(&format!("--tach {}: {e}", a.tach.display())));
    a
}

fn lines(count: u64) -> Vec<Vec<u8>> {
    Generator::new(NotigenConfig {
        seed: 21,
        // Live traffic: events of the last few minutes (30,000 notifications span about four
        // and a half at this rate). `tach ingest` runs on the wall clock, and an event older
        // than its stream's expiry (request_id: ten minutes) opens a new stream, which is the
        // catch-up path, not the live one.
        operations_per_hour: 90_000.0,
        start: Utc::now() - chrono::Duration::minutes(3),
        count: Some(count),
        ..NotigenConfig::default()
    })
    .map(|n| {
        let mut s = String::new();
        n.write_json(Envelope::Bare, &mut s);
        s.into_bytes()
    })
    .collect()
}

async fn preload_amqp(queue: &str, bodies: &[Vec<u8>]) {
    let conn = Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.exchange_declare(
        "bench".into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .ok();
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        queue.into(),
        "bench".into(),
        queue.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for chunk in bodies.chunks(2000) {
        let mut confirms = Vec::with_capacity(chunk.len());
        for body in chunk {
            confirms.push(
                ch.basic_publish(
                    "bench".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    body,
                    BasicProperties::default(),
                )
                .await
                .unwrap(),
            );
        }
        for c in confirms {
            assert!(c.await.unwrap().is_ack());
        }
    }
    conn.close(200, "done".into()).await.ok();
}

async fn preload_kafka(topic: &str, bodies: &[Vec<u8>]) {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let ok = Command::new("/work/shared/tools/kafka-broker.sh")
        .args(["start", &format!("{topic}:3")])
        .status()
        .unwrap()
        .success();
    assert!(ok, "creating the topic");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", "127.0.0.1:9092")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for (n, chunk) in bodies.chunks(5000).enumerate() {
        let sends = chunk.iter().enumerate().map(|(i, body)| {
            let key = format!("{n}-{i}");
            let producer = &producer;
            async move {
                producer
                    .send(
                        FutureRecord::to(topic).payload(body.as_slice()).key(&key),
                        Duration::from_secs(60),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .unwrap();
            }
        });
        futures_util::future::join_all(sends).await;
    }
}

async fn count(url: &str) -> i64 {
    let mut conn = AnyConnection::connect(url).await.unwrap();
    let n = sqlx::query("SELECT COUNT(*) FROM events")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    conn.close().await.ok();
    n
}

#[tokio::main]
async fn main() {
    sqlx::any::install_default_drivers();
    let a = args();
    let name = format!("tach_bench_{}", std::process::id());
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let url = match a.db.as_str() {
        "sqlite" => format!("sqlite://{}", dir.join("bench.db").display()),
        "postgres" => {
            let mut admin = AnyConnection::connect("postgres://postgres@127.0.0.1:5432/test")
                .await
                .unwrap();
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .unwrap();
            format!("postgres://postgres@127.0.0.1:5432/{name}")
        }
        other => panic!("--db {other}: sqlite or postgres"),
    };
    let source = match a.source.as_str() {
        "amqp" => format!(
            "    - type: rabbitmq\n      url: amqp://guest:guest@127.0.0.1:5672/%2f\n      \
             queues:\n        - {{exchange: bench, queue: {name}, routing_key: {name}, prefetch: {}}}\n",
            (a.batch * 3).min(65535)
        ),
        "kafka" => format!(
            "    - type: kafka\n      brokers: 127.0.0.1:9092\n      topics: [{name}]\n      \
             group: {name}\n"
        ),
        other => panic!("--source {other}: amqp or kafka"),
    };
    let config = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../config")
        .canonicalize()
        .unwrap();
    if a.no_triggers {
        std::fs::write(dir.join("triggers.yaml"), "[]\n").unwrap();
    }
    std::fs::write(
        dir.join("winchester.yaml"),
        format!(
            "config_path: [\"{}\", \"{}\"]\ndatabase:\n  url: {url}\ndistiller_config: event_definitions.yaml\n\
             trigger_definitions: triggers.yaml\npipeline_config: pipelines.yaml\n\
             pipeline_handlers:\n  logger: logger\n  usage: usage\nstatistics_period: 5\n\
             ingest:\n  sources:\n{source}  batch:\n    max_messages: {}\n    max_wait_ms: 200\n\
             \x20 dead_letter:\n    queue: {name}.dead\n    exchange: {name}.dead\n    topic: {name}.dead\n",
            dir.display(),
            config.display(),
            a.batch
        ),
    )
    .unwrap();
    let ok = Command::new(&a.tach)
        .args(["db", "migrate", "--config", "winchester.yaml"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "tach db migrate");

    let bodies = lines(a.count);
    let preload = Instant::now();
    match a.source.as_str() {
        "amqp" => preload_amqp(&name, &bodies).await,
        _ => preload_kafka(&name, &bodies).await,
    }
    eprintln!(
        "preloaded {} notifications in {:.1} s",
        bodies.len(),
        preload.elapsed().as_secs_f64()
    );
    let expected = a.count as i64;
    let started = Instant::now();
    let mut child = Command::new(&a.tach)
        .args(["ingest", "--config", "winchester.yaml"])
        .current_dir(&dir)
        .env("TACH_LOG", "warn")
        .spawn()
        .unwrap();
    let mut first: Option<(Instant, i64)> = None;
    loop {
        let n = count(&url).await;
        if first.is_none() && n > 0 {
            first = Some((Instant::now(), n));
        }
        if n >= expected {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "tach ingest died");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = started.elapsed().as_secs_f64();
    let (first_at, first_n) = first.unwrap();
    let sustained = (expected - first_n) as f64 / first_at.elapsed().as_secs_f64();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    println!(
        "source={} db={} count={} batch={}{}: drained in {total:.2} s from process start \
         ({:.0}/s); sustained {sustained:.0}/s (first stored event to last); exit {status}",
        a.source,
        a.db,
        a.count,
        a.batch,
        if a.no_triggers { " no-triggers" } else { "" },
        expected as f64 / total
    );
    if a.db == "postgres" {
        let mut admin = AnyConnection::connect("postgres://postgres@127.0.0.1:5432/test")
            .await
            .unwrap();
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await
            .ok();
    }
    if a.source == "amqp" {
        let conn = Connection::connect(
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            ConnectionProperties::default(),
        )
        .await
        .unwrap();
        let ch = conn.create_channel().await.unwrap();
        for q in [name.clone(), format!("{name}.dead")] {
            ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await
                .ok();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
