//! Process tests of `tach ingest` against the real local RabbitMQ, Kafka broker (tansu, see
//! ../shared/tools/kafka-broker.sh), SQLite and PostgreSQL: end to end, two Kafka workers in
//! one group, `kill -9` in the middle of 50,000 notifications, SIGTERM while acknowledgements
//! are in flight (nothing may be left unacknowledged), poison messages, and a database outage
//! (a TCP proxy the test cuts) under load.
//!
//! Every test uses its own queue, exchange, topic, consumer group and database.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{
    AMQP_URL, Server, ServerDb, event_counts, notifications, publish_amqp, repo_config, signal,
    stderr, tach, workdir_with,
};
use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use sqlx::{AnyConnection, Connection as _, Row};
use tach_distiller::Distiller;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const KAFKA: &str = "127.0.0.1:9092";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name no other test (or test run) uses.
fn unique(tag: &str) -> String {
    format!(
        "tach_it_{tag}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// What the repository's distiller makes of `lines`: the message ids of the stored events and
/// how many of them carry a `request_id` trait.
fn expected(lines: &[String]) -> (HashSet<String>, usize) {
    let distiller =
        Distiller::from_file(&repo_config().join("event_definitions.yaml"), false).unwrap();
    let mut ids = HashSet::new();
    let mut with_request = 0;
    for line in lines {
        if let Some(event) = distiller.distill_bytes(line.as_bytes()).unwrap() {
            if event.trait_value("request_id").is_some() {
                with_request += 1;
            }
            ids.insert(event.message_id.clone());
        }
    }
    (ids, with_request)
}

/// The `ingest:` section for one RabbitMQ queue.
fn amqp_section(names: &Names, extra: &str) -> String {
    format!(
        "statistics_period: 1\ningest:\n  sources:\n    - type: rabbitmq\n      url: {AMQP_URL}\n\
         \x20     queues:\n        - exchange: {ex}\n          queue: {q}\n          routing_key: {q}\n\
         \x20         prefetch: 2000\n  batch:\n    max_messages: 500\n    max_wait_ms: 100\n\
         \x20 backoff:\n    initial_ms: 50\n    max_ms: 1000\n  shutdown_timeout: 10\n\
         \x20 dead_letter:\n    exchange: {ex}.dead\n    queue: {q}.dead\n    routing_key: {q}.dead\n\
         {extra}",
        ex = names.exchange,
        q = names.queue
    )
}

/// Exchange and queue names of one test.
struct Names {
    exchange: String,
    queue: String,
}

impl Names {
    fn new(tag: &str) -> Names {
        let base = unique(tag);
        Names {
            exchange: format!("{base}.x"),
            queue: format!("{base}.q"),
        }
    }
}

async fn amqp() -> (Connection, Channel) {
    let conn = Connection::connect(AMQP_URL, ConnectionProperties::default())
        .await
        .expect("RabbitMQ on 127.0.0.1:5672");
    let ch = conn.create_channel().await.unwrap();
    (conn, ch)
}

/// Declares the queue as ingest does (so that messages published before ingest starts wait in
/// it) and publishes `bodies` with publisher confirms.
async fn publish(names: &Names, bodies: impl IntoIterator<Item = Vec<u8>>) {
    let (conn, ch) = amqp().await;
    declare(&ch, names).await;
    conn.close(200, "done".into()).await.ok();
    publish_amqp(&names.exchange, &names.queue, bodies).await;
}

async fn declare(ch: &Channel, names: &Names) {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    ch.exchange_declare(
        names.exchange.as_str().into(),
        ExchangeKind::Topic,
        durable,
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_declare(
        names.queue.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        names.queue.as_str().into(),
        names.exchange.as_str().into(),
        names.queue.as_str().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
}

/// (ready, unacknowledged) messages of `queue`, asked of `rabbitmqctl` because AMQP reports
/// only ready messages.
fn queue_counts(queue: &str) -> (u64, u64) {
    let out = Command::new("rabbitmqctl")
        .args([
            "-q",
            "list_queues",
            "name",
            "messages_ready",
            "messages_unacknowledged",
        ])
        .output()
        .expect("running rabbitmqctl");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [name, ready, unacked] if name == queue => {
                    Some((ready.parse().ok()?, unacked.parse().ok()?))
                }
                _ => None,
            },
        )
        .unwrap_or_else(|| panic!("{queue} not listed by rabbitmqctl: {text}"))
}

/// After the worker has exited: the broker must hold nothing of `queue`, neither a delivery
/// left unacknowledged nor one back in the queue (an acknowledgement lost at shutdown makes
/// its deliveries ready again once the broker has dropped the worker's connection).
///
/// The worker closes its connection before it exits, so there should be nothing to wait for;
/// the bounded wait for `messages_unacknowledged` to reach 0 only makes sure that a lost
/// acknowledgement has become visible as a ready message before `messages_ready` is checked.
async fn assert_fully_acknowledged(queue: &str) {
    let started = Instant::now();
    let (ready, unacked) = loop {
        let (ready, unacked) = queue_counts(queue);
        if unacked == 0 || started.elapsed() > Duration::from_secs(10) {
            break (ready, unacked);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (ready, unacked),
        (0, 0),
        "{queue} after the worker exited: (ready, unacknowledged)"
    );
    // And a fresh consumer gets nothing.
    let (conn, ch) = amqp().await;
    let got = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap();
    assert!(got.is_none(), "a delivery was left in {queue}");
    conn.close(200, "done".into()).await.ok();
}

/// Messages ready in `queue` (delivered but unacknowledged ones are not counted).
async fn ready(queue: &str) -> u32 {
    let (conn, ch) = amqp().await;
    let q = ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    conn.close(200, "done".into()).await.ok();
    q.message_count()
}

/// Waits until `queue` has no ready message (redelivered duplicates may still be queued when
/// every event is stored).
async fn wait_for_drained(queue: &str) {
    let started = Instant::now();
    while ready(queue).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{queue} not drained"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Removes the test's exchanges and queues.
async fn cleanup(names: &Names) {
    let (conn, ch) = amqp().await;
    for q in [names.queue.clone(), format!("{}.dead", names.queue)] {
        ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await
            .ok();
    }
    for x in [names.exchange.clone(), format!("{}.dead", names.exchange)] {
        ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .ok();
    }
    conn.close(200, "done".into()).await.ok();
}

/// Starts `tach ingest` in `dir`, its stderr in `dir/<log>`.
fn spawn_ingest(dir: &Path, log: &str) -> Child {
    let file = std::fs::File::create(dir.join(log)).unwrap();
    Command::new(env!("CARGO_BIN_EXE_tach"))
        .args(["ingest", "--config", "winchester.yaml"])
        .current_dir(dir)
        .env("TACH_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("starting tach ingest")
}

/// SIGTERM, and the exit status must be 0 within 30 s.
fn terminate(mut child: Child, dir: &Path, log: &str) -> String {
    signal(&child, "-TERM");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let text = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
            assert!(
                status.success(),
                "tach ingest exited with {status}:\n{text}"
            );
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "tach ingest did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `events` holds `n` rows (panics after `timeout`, showing the worker's log).
async fn wait_for_events(url: &str, n: usize, timeout: Duration, dir: &Path, log: &str) {
    let started = Instant::now();
    loop {
        let (rows, _) = event_counts(url).await;
        if rows as usize >= n {
            return;
        }
        if started.elapsed() > timeout {
            let text = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
            panic!("only {rows} of {n} events after {timeout:?}; log:\n{text}");
        }
        // Short: the tests send SIGTERM as soon as the events are there.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts the store holds exactly the expected events, and that every event with a
/// `request_id` is in a stream of the `request_id` trigger whose distinguishing value it has.
async fn assert_stored(url: &str, ids: &HashSet<String>, with_request: usize) {
    let (rows, distinct) = event_counts(url).await;
    assert_eq!(rows as usize, ids.len(), "events stored");
    assert_eq!(distinct, rows, "duplicate message ids");
    let mut conn = AnyConnection::connect(url).await.unwrap();
    let stored: HashSet<String> = sqlx::query("SELECT message_id FROM events")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String, _>(0).unwrap())
        .collect();
    assert_eq!(
        &stored, ids,
        "the stored message ids are the distilled ones"
    );
    let in_streams: i64 = sqlx::query(
        "SELECT COUNT(*) FROM stream_events se JOIN streams s ON s.id = se.stream_id \
         WHERE s.trigger_name = 'request_id'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap()
    .try_get(0)
    .unwrap();
    assert_eq!(
        in_streams as usize, with_request,
        "events in request_id streams"
    );
    let usage: i64 =
        sqlx::query("SELECT COUNT(*) FROM streams WHERE trigger_name = 'instance_usage'")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
    assert!(usage > 0, "instance_usage streams");
    conn.close().await.ok();
}

fn migrate(dir: &Path) {
    let out = tach(&["db", "migrate", "--config", "winchester.yaml"], dir);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn sqlite_dir(extra: &str) -> (PathBuf, String) {
    let dir = workdir_with("sqlite://PLACEHOLDER", extra);
    let url = format!("sqlite://{}", dir.join("tach.db").display());
    let text = std::fs::read_to_string(dir.join("winchester.yaml"))
        .unwrap()
        .replace("sqlite://PLACEHOLDER", &url);
    std::fs::write(dir.join("winchester.yaml"), text).unwrap();
    (dir, url)
}

#[tokio::test(flavor = "multi_thread")]
async fn rabbitmq_end_to_end_into_sqlite() {
    let names = Names::new("e2e");
    let (dir, url) = sqlite_dir(&amqp_section(&names, ""));
    migrate(&dir);
    // Half bare, half in oslo 2.0 envelopes.
    let mut lines = notifications(1500, 5, false);
    lines.extend(notifications(1500, 6, true));
    let (ids, with_request) = expected(&lines);
    publish(&names, lines.iter().map(|l| l.as_bytes().to_vec())).await;
    let child = spawn_ingest(&dir, "ingest.log");
    wait_for_events(
        &url,
        ids.len(),
        Duration::from_secs(120),
        &dir,
        "ingest.log",
    )
    .await;
    // SIGTERM as soon as the last batch is visible: its acknowledgements may still be on their
    // way, and the worker must send them (and have the broker process them) before it exits.
    let log = terminate(child, &dir, "ingest.log");
    assert_stored(&url, &ids, with_request).await;
    assert_fully_acknowledged(&names.queue).await;
    assert!(log.contains("finished after"), "{log}");
    assert!(log.contains(&format!("received {}", lines.len())), "{log}");
    cleanup(&names).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn rabbitmq_end_to_end_into_postgres() {
    let db = ServerDb::create(Server::Postgres, "ingest_e2e").await;
    let names = Names::new("e2e_pg");
    let dir = workdir_with(&db.url, &amqp_section(&names, ""));
    migrate(&dir);
    let lines = notifications(3000, 7, false);
    let (ids, with_request) = expected(&lines);
    publish(&names, lines.iter().map(|l| l.as_bytes().to_vec())).await;
    let child = spawn_ingest(&dir, "ingest.log");
    wait_for_events(
        &db.url,
        ids.len(),
        Duration::from_secs(120),
        &dir,
        "ingest.log",
    )
    .await;
    terminate(child, &dir, "ingest.log");
    assert_stored(&db.url, &ids, with_request).await;
    assert_fully_acknowledged(&names.queue).await;
    cleanup(&names).await;
    db.drop_db().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM while a whole batch is in flight: received, not committed (its `max_wait_ms` is far
/// away), not acknowledged. The worker must commit it, acknowledge it, and only then close its
/// channels: closing a channel first makes the broker requeue what is unacknowledged on it.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_a_batch_in_flight_commits_and_acknowledges_it() {
    let names = Names::new("in_flight");
    let section = amqp_section(&names, "")
        .replace("max_messages: 500", "max_messages: 100000")
        .replace("max_wait_ms: 100", "max_wait_ms: 60000");
    let (dir, url) = sqlite_dir(&section);
    migrate(&dir);
    let lines = notifications(700, 16, false);
    let (ids, with_request) = expected(&lines);
    publish(&names, lines.iter().map(|l| l.as_bytes().to_vec())).await;
    let child = spawn_ingest(&dir, "ingest.log");
    // Every message delivered to the worker and none acknowledged: the batch is in flight.
    let started = Instant::now();
    loop {
        if queue_counts(&names.queue) == (0, lines.len() as u64) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not all delivered: {:?}",
            queue_counts(&names.queue)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(event_counts(&url).await.0, 0, "nothing committed yet");
    let log = terminate(child, &dir, "ingest.log");
    assert_stored(&url, &ids, with_request).await;
    assert_fully_acknowledged(&names.queue).await;
    assert!(
        log.contains(&format!("received {}, ", lines.len())) && log.contains("ack failures 0"),
        "{log}"
    );
    cleanup(&names).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The race of the batch committed just before SIGTERM, given several chances: rounds of a new
/// worker on the same queue and database, each stopped as soon as its last event is visible.
/// Nothing may be left unacknowledged or go back to the queue, and no round may receive again
/// what an earlier one stored.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_right_after_the_last_commit_leaves_nothing_unacknowledged() {
    let names = Names::new("sigterm_acks");
    let (dir, url) = sqlite_dir(&amqp_section(&names, ""));
    migrate(&dir);
    let mut all = HashSet::new();
    for round in 0..4u64 {
        let lines = notifications(900 + 137 * round, 30 + round, round % 2 == 1);
        all.extend(expected(&lines).0);
        publish(&names, lines.iter().map(|l| l.as_bytes().to_vec())).await;
        let log = format!("ingest-{round}.log");
        let child = spawn_ingest(&dir, &log);
        wait_for_events(&url, all.len(), Duration::from_secs(120), &dir, &log).await;
        let text = terminate(child, &dir, &log);
        assert_fully_acknowledged(&names.queue).await;
        assert!(
            text.contains(&format!("received {}, ", lines.len())),
            "round {round}: {text}"
        );
    }
    assert_eq!(
        event_counts(&url).await,
        (all.len() as i64, all.len() as i64)
    );
    cleanup(&names).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_in_the_middle_of_50000_notifications_stores_each_once() {
    let names = Names::new("crash");
    let (dir, url) = sqlite_dir(&amqp_section(&names, ""));
    migrate(&dir);
    let lines = notifications(50_000, 8, false);
    let (ids, with_request) = expected(&lines);
    publish(&names, lines.iter().map(|l| l.as_bytes().to_vec())).await;
    let mut child = spawn_ingest(&dir, "first.log");
    // Kill it once a fifth of the run is stored.
    wait_for_events(
        &url,
        ids.len() / 5,
        Duration::from_secs(300),
        &dir,
        "first.log",
    )
    .await;
    signal(&child, "-KILL");
    child.wait().unwrap();
    let (at_kill, _) = event_counts(&url).await;
    assert!((at_kill as usize) < ids.len(), "killed before the end");
    let child = spawn_ingest(&dir, "second.log");
    wait_for_events(
        &url,
        ids.len(),
        Duration::from_secs(600),
        &dir,
        "second.log",
    )
    .await;
    wait_for_drained(&names.queue).await;
    let log = terminate(child, &dir, "second.log");
    assert_stored(&url, &ids, with_request).await;
    assert_eq!(ready(&names.queue).await, 0);
    eprintln!("killed at {at_kill} events; second worker: {log}");
    cleanup(&names).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_messages_are_dead_lettered_and_the_worker_goes_on() {
    let names = Names::new("poison");
    let (dir, url) = sqlite_dir(&amqp_section(&names, ""));
    migrate(&dir);
    let lines = notifications(2000, 9, false);
    let (ids, _) = expected(&lines);
    let huge = format!(
        "{{\"event_type\": \"compute.instance.create.start\", \"message_id\": \"huge-1\", \
         \"payload\": {{\"blob\": \"{}\"}}}}",
        "x".repeat(10 << 20)
    );
    let poison: Vec<(Vec<u8>, &str)> = vec![
        (b"this is not json {".to_vec(), "not valid JSON"),
        (b"[1, 2, 3]".to_vec(), "not a JSON object"),
        (
            br#"{"event_type": "compute.instance.create.start", "payload": {}}"#.to_vec(),
            "no message_id",
        ),
        (huge.into_bytes(), "too big"),
    ];
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        bodies.push(line.as_bytes().to_vec());
        if i % 500 == 250 {
            bodies.push(poison[i / 500].0.clone());
        }
    }
    publish(&names, bodies).await;
    let mut child = spawn_ingest(&dir, "ingest.log");
    wait_for_events(
        &url,
        ids.len(),
        Duration::from_secs(120),
        &dir,
        "ingest.log",
    )
    .await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the worker keeps running"
    );

    // The table: one row per poison message with its reason; the huge one kept in part.
    // Dead letters are recorded after their batch's events are committed, so the last one
    // may still be on its way when the events are all there.
    let mut conn = AnyConnection::connect(&url).await.unwrap();
    let started = Instant::now();
    let rows = loop {
        let rows = sqlx::query("SELECT source, reason, raw FROM dead_letters ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        if rows.len() >= poison.len() || started.elapsed() > Duration::from_secs(30) {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    conn.close().await.ok();
    assert_eq!(rows.len(), poison.len(), "dead letters in the table");
    for (row, (raw, why)) in rows.iter().zip(&poison) {
        let source: String = row.try_get(0).unwrap();
        let reason: String = row.try_get(1).unwrap();
        let stored: Vec<u8> = row.try_get(2).unwrap();
        assert_eq!(source, format!("amqp:{}", names.queue));
        assert!(reason.contains(why), "{reason:?} should say {why:?}");
        if *why == "too big" {
            assert_eq!(stored.len(), 1 << 20, "kept up to max_raw_bytes");
            assert!(
                reason.contains(&format!("of {} bytes", raw.len())),
                "{reason}"
            );
        } else {
            assert_eq!(&stored, raw);
        }
    }
    // The dead-letter queue: the same messages with their reason in a header.
    let (conn, ch) = amqp().await;
    for (raw, why) in &poison {
        // Forwarded after the table row is written: give the last one a moment.
        let started = Instant::now();
        let got = loop {
            let got = ch
                .basic_get(
                    format!("{}.dead", names.queue).as_str().into(),
                    BasicGetOptions { no_ack: true },
                )
                .await
                .unwrap();
            if got.is_some() || started.elapsed() > Duration::from_secs(30) {
                break got.expect("a dead letter in the queue");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let headers = got.delivery.properties.headers().clone().unwrap();
        let reason = match headers.inner().get("x-tach-reason") {
            Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
            other => panic!("x-tach-reason header: {other:?}"),
        };
        assert!(reason.contains(why), "{reason:?} should say {why:?}");
        let size = headers.inner().get("x-tach-original-size");
        assert_eq!(size, Some(&AMQPValue::LongLongInt(raw.len() as i64)));
    }
    conn.close(200, "done".into()).await.ok();

    // Still consuming after the poison.
    let more = notifications(300, 10, false);
    let (more_ids, _) = expected(&more);
    publish(&names, more.iter().map(|l| l.as_bytes().to_vec())).await;
    let total = ids.len() + more_ids.len();
    wait_for_events(&url, total, Duration::from_secs(60), &dir, "ingest.log").await;
    let log = terminate(child, &dir, "ingest.log");
    assert!(log.contains("poison 4"), "{log}");
    assert_eq!(ready(&names.queue).await, 0);
    cleanup(&names).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A TCP forwarder to PostgreSQL that the test can cut (every connection dropped, new ones
/// refused) and restore.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    generation: Arc<AtomicUsize>,
}

impl Proxy {
    async fn start(target: &'static str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(AtomicUsize::new(0));
        let (up2, gen2) = (Arc::clone(&up), Arc::clone(&generation));
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown().await;
                    continue;
                }
                let born = gen2.load(Ordering::SeqCst);
                let gen3 = Arc::clone(&gen2);
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
                    let cut = async {
                        while gen3.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = copy => {}
                        () = cut => {}
                    }
                });
            }
        });
        Proxy {
            port,
            up,
            generation,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn database_outage_under_load_loses_and_duplicates_nothing() {
    let db = ServerDb::create(Server::Postgres, "ingest_outage").await;
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let names = Names::new("outage");
    // Migrate directly, ingest through the proxy.
    let dir = workdir_with(&db.url, &amqp_section(&names, ""));
    migrate(&dir);
    let (_, name) = db.url.rsplit_once('/').unwrap();
    let proxied = format!("postgres://postgres@127.0.0.1:{}/{name}", proxy.port);
    let text = std::fs::read_to_string(dir.join("winchester.yaml"))
        .unwrap()
        .replace(&db.url, &proxied);
    std::fs::write(dir.join("winchester.yaml"), text).unwrap();

    let lines = notifications(12_000, 12, false);
    let (ids, with_request) = expected(&lines);
    publish(&names, lines.iter().map(|l| l.as_bytes().to_vec())).await;
    let mut child = spawn_ingest(&dir, "ingest.log");
    wait_for_events(
        &db.url,
        ids.len() / 10,
        Duration::from_secs(120),
        &dir,
        "ingest.log",
    )
    .await;
    proxy.cut();
    let (at_cut, _) = event_counts(&db.url).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (during, _) = event_counts(&db.url).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the worker survives the outage"
    );
    assert!(
        (during as usize) < ids.len(),
        "the outage happened under load ({at_cut} at the cut, {during} during)"
    );
    proxy.restore();
    wait_for_events(
        &db.url,
        ids.len(),
        Duration::from_secs(300),
        &dir,
        "ingest.log",
    )
    .await;
    let log = terminate(child, &dir, "ingest.log");
    assert!(
        log.contains("Cannot commit a batch"),
        "the outage was seen:\n{log}"
    );
    assert_stored(&db.url, &ids, with_request).await;
    assert_eq!(ready(&names.queue).await, 0);
    cleanup(&names).await;
    db.drop_db().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Creates a Kafka topic with `partitions` on the test broker.
fn kafka_topic(name: &str, partitions: u32) {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools/kafka-broker.sh");
    let script = if script.exists() {
        script
    } else {
        PathBuf::from("/work/shared/tools/kafka-broker.sh")
    };
    let ok = Command::new(script)
        .args(["start", &format!("{name}:{partitions}")])
        .status()
        .expect("kafka-broker.sh")
        .success();
    assert!(ok, "creating topic {name}");
}

/// Produces `lines` to `topic`; returns the highest offset written per partition.
async fn kafka_produce(topic: &str, lines: &[String]) -> HashMap<i32, i64> {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", KAFKA)
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    let mut newest: HashMap<i32, i64> = HashMap::new();
    for chunk in lines.chunks(1000) {
        let sends = chunk.iter().enumerate().map(|(i, line)| {
            let key = format!("k{i}");
            let producer = &producer;
            async move {
                producer
                    .send(
                        FutureRecord::to(topic).payload(line.as_str()).key(&key),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .unwrap()
            }
        });
        for delivery in futures_util::future::join_all(sends).await {
            let offset = newest.entry(delivery.partition).or_insert(delivery.offset);
            *offset = (*offset).max(delivery.offset);
        }
    }
    newest
}

/// The first `n` records of a dead-letter topic: (payload, x-tach-reason).
async fn kafka_dead_letters(topic: &str, n: usize) -> Vec<(Vec<u8>, String)> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::Headers;
    use rdkafka::{ClientConfig, Message};
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", KAFKA)
        .set("group.id", format!("{topic}.reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("a dead letter within 60 s")
            .unwrap();
        let headers = m.headers().expect("dead-letter headers");
        let reason = headers
            .iter()
            .find(|h| h.key == "x-tach-reason")
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .expect("x-tach-reason");
        out.push((m.payload().unwrap_or_default().to_vec(), reason));
    }
    out
}

/// The offsets `group` committed for `topic`, per partition. Asked of a consumer in the group
/// that does not join it (it does not subscribe).
fn kafka_committed(topic: &str, partitions: i32, group: &str) -> HashMap<i32, rdkafka::Offset> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", KAFKA)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .expect("committed offsets");
    (0..partitions)
        .map(|p| {
            let offset = committed
                .find_partition(topic, p)
                .map_or(Offset::Invalid, |e| e.offset());
            (p, offset)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_two_workers_in_one_group_share_the_partitions() {
    let topic = unique("kafka");
    kafka_topic(&topic, 3);
    kafka_topic(&format!("{topic}.dead"), 1);
    let section = format!(
        "statistics_period: 1\ningest:\n  sources:\n    - type: kafka\n      brokers: {KAFKA}\n\
         \x20     topics: [{topic}]\n      group: {topic}.group\n  batch:\n    max_messages: 500\n\
         \x20   max_wait_ms: 100\n  dead_letter:\n    topic: {topic}.dead\n"
    );
    let (dir, url) = sqlite_dir(&section);
    migrate(&dir);
    let lines = notifications(6000, 13, false);
    let (ids, with_request) = expected(&lines);
    let a = spawn_ingest(&dir, "a.log");
    let b = spawn_ingest(&dir, "b.log");
    // Let both join the group before the records arrive.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut newest = kafka_produce(&topic, &lines).await;
    let poison = ["not json at all".to_owned(), "[1, 2]".to_owned()];
    for (partition, offset) in kafka_produce(&topic, &poison).await {
        let n = newest.entry(partition).or_insert(offset);
        *n = (*n).max(offset);
    }
    wait_for_events(&url, ids.len(), Duration::from_secs(180), &dir, "a.log").await;
    // Poison is recorded after its batch commits: wait for both dead letters too.
    let started = Instant::now();
    loop {
        let mut conn = AnyConnection::connect(&url).await.unwrap();
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM dead_letters")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        conn.close().await.ok();
        if n == 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{n} dead letters"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log_a = terminate(a, &dir, "a.log");
    let log_b = terminate(b, &dir, "b.log");
    assert_stored(&url, &ids, with_request).await;
    // Offsets are committed synchronously at shutdown: the group is past the last record of
    // every partition, nothing would be read again.
    let committed = kafka_committed(&topic, 3, &format!("{topic}.group"));
    for (partition, offset) in &newest {
        assert_eq!(
            committed.get(partition),
            Some(&rdkafka::Offset::Offset(offset + 1)),
            "partition {partition}: the committed offset follows the last record"
        );
    }
    let mut reasons = kafka_dead_letters(&format!("{topic}.dead"), 2).await;
    reasons.sort();
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[0].1, "not a JSON object");
    assert!(reasons[1].1.starts_with("not valid JSON"), "{reasons:?}");
    assert_eq!(reasons[0].0, b"[1, 2]");
    let received = |log: &str| -> u64 {
        let line = log
            .lines()
            .rfind(|l| l.contains("finished after"))
            .unwrap_or_else(|| panic!("no summary in {log}"));
        let after = line.split("received ").nth(1).unwrap();
        after.split(',').next().unwrap().parse().unwrap()
    };
    let (ra, rb) = (received(&log_a), received(&log_b));
    assert!(
        ra > 0 && rb > 0,
        "both workers consumed: {ra} and {rb}\n{log_a}\n{log_b}"
    );
    assert!(ra + rb >= lines.len() as u64 + 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn rabbitmq_connection_loss_reconnects_and_loses_nothing() {
    let proxy = Proxy::start("127.0.0.1:5672").await;
    let names = Names::new("broker_loss");
    let proxied = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port);
    let (dir, url) = sqlite_dir(&amqp_section(&names, "").replace(AMQP_URL, &proxied));
    migrate(&dir);
    let lines = notifications(8000, 14, false);
    let (ids, with_request) = expected(&lines);
    publish(&names, lines.iter().map(|l| l.as_bytes().to_vec())).await;
    let child = spawn_ingest(&dir, "ingest.log");
    wait_for_events(
        &url,
        ids.len() / 5,
        Duration::from_secs(120),
        &dir,
        "ingest.log",
    )
    .await;
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();
    wait_for_events(
        &url,
        ids.len(),
        Duration::from_secs(300),
        &dir,
        "ingest.log",
    )
    .await;
    wait_for_drained(&names.queue).await;
    let log = terminate(child, &dir, "ingest.log");
    assert!(log.contains("reconnecting"), "the loss was seen:\n{log}");
    assert_stored(&url, &ids, with_request).await;
    assert_eq!(ready(&names.queue).await, 0, "every message acknowledged");
    cleanup(&names).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_worker_reads_two_queues_and_a_file() {
    let (a, b) = (Names::new("multi_a"), Names::new("multi_b"));
    let lines = notifications(1500, 15, false);
    let (ids, with_request) = expected(&lines);
    let (first, rest) = lines.split_at(500);
    let (second, third) = rest.split_at(500);
    let section = format!(
        "ingest:\n  sources:\n    - type: rabbitmq\n      url: {AMQP_URL}\n      queues:\n\
         \x20       - {{exchange: {ax}, queue: {aq}, routing_key: {aq}}}\n\
         \x20       - {{exchange: {bx}, queue: {bq}, routing_key: {bq}}}\n\
         \x20   - type: files\n      paths: [third.jsonl]\n\
         \x20 dead_letter:\n    exchange: {ax}.dead\n    queue: {aq}.dead\n",
        ax = a.exchange,
        aq = a.queue,
        bx = b.exchange,
        bq = b.queue
    );
    let (dir, url) = sqlite_dir(&section);
    std::fs::write(dir.join("third.jsonl"), third.join("\n")).unwrap();
    migrate(&dir);
    publish(&a, first.iter().map(|l| l.as_bytes().to_vec())).await;
    publish(&b, second.iter().map(|l| l.as_bytes().to_vec())).await;
    let child = spawn_ingest(&dir, "ingest.log");
    wait_for_events(
        &url,
        ids.len(),
        Duration::from_secs(120),
        &dir,
        "ingest.log",
    )
    .await;
    terminate(child, &dir, "ingest.log");
    assert_stored(&url, &ids, with_request).await;
    assert_eq!(ready(&a.queue).await, 0);
    assert_eq!(ready(&b.queue).await, 0);
    cleanup(&a).await;
    cleanup(&b).await;
    let _ = std::fs::remove_dir_all(&dir);
}
