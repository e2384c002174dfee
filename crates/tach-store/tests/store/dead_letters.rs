//! Dead letters are deduplicated: a poison message received again (redelivered after a crash
//! between recording and acking it) is one row counting its occurrences, a digest collision
//! never merges two different messages, and the upgrade to schema 5 keeps the existing rows.

use sqlx::{AnyConnection, Connection, Executor, Row};
use tach_store::doc::dead_letter_digest;
use tach_store::migrate::LATEST_VERSION;
use tach_store::{Backend, MigrationReport, Store};

use crate::common::{TestDb, on_all_backends, on_all_backends_raw, raw_conn};

/// `SELECT digest FROM dead_letters WHERE id = {id}`.
async fn digest_of(conn: &mut AnyConnection, id: i64) -> Option<i64> {
    conn.fetch_one(sqlx::AssertSqlSafe(format!(
        "SELECT digest FROM dead_letters WHERE id = {id}"
    )))
    .await
    .unwrap()
    .try_get(0)
    .unwrap()
}

/// A SQL literal of `bytes` for the `raw` column.
fn blob(backend: Backend, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match backend {
        Backend::Postgres => format!("decode('{hex}', 'hex')"),
        Backend::Sqlite | Backend::MySql => format!("X'{hex}'"),
    }
}

/// A dead letter's id, source, raw bytes, occurrences, first and last receipt (µs).
type Summary<'a> = (i64, &'a str, &'a [u8], u64, i64, i64);

/// Records a dead letter; returns its row id.
async fn record(store: &Store, source: &str, reason: &str, raw: &[u8]) -> i64 {
    store
        .insert_dead_letter(source, reason, raw)
        .await
        .expect("insert_dead_letter")
}

/// Every dead letter's id and occurrences, in id order.
async fn occurrences(store: &Store) -> Vec<(i64, u64)> {
    let letters = store
        .dead_letters_after(0, 100)
        .await
        .expect("dead letters");
    letters.iter().map(|l| (l.id, l.occurrences)).collect()
}

#[tokio::test]
async fn a_message_received_twice_is_one_row_with_two_occurrences() {
    on_all_backends(async |store: Store| {
        let raw = b"\x00\xffnot json {".to_vec();
        let a = record(&store, "amqp:notifications.info", "not JSON", &raw).await;
        let first = store.list_dead_letters(10).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].occurrences, 1);
        assert_eq!(first[0].last_received_at, first[0].received_at);

        let again = record(&store, "amqp:notifications.info", "not JSON (again)", &raw).await;
        assert_eq!(again, a, "the redelivery is counted on the first row");
        let got = store.list_dead_letters(10).await.unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        let letter = &got[0];
        assert_eq!(letter.occurrences, 2);
        assert_eq!(letter.raw, raw);
        assert_eq!(letter.reason, "not JSON", "the first reason is kept");
        assert_eq!(letter.received_at, first[0].received_at);
        assert!(letter.last_received_at >= letter.received_at);

        // Other bytes, or the same bytes from another source: other messages.
        let other = record(
            &store,
            "amqp:notifications.info",
            "not JSON",
            b"\x00\xffnot json [",
        )
        .await;
        let elsewhere = record(&store, "kafka:notifications", "not JSON", &raw).await;
        assert!(other != a && elsewhere != a && other != elsewhere);
        assert_eq!(store.count_dead_letters().await.unwrap(), 3);
        assert_eq!(
            occurrences(&store).await,
            [(a, 2), (other, 1), (elsewhere, 1)]
        );
        assert_eq!(
            record(&store, "kafka:notifications", "not JSON", &raw).await,
            elsewhere
        );
        assert_eq!(
            occurrences(&store).await,
            [(a, 2), (other, 1), (elsewhere, 2)]
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_receipts_of_one_message_are_all_counted_on_one_row() {
    on_all_backends(async |store: Store| {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.spawn(async move { record(&store, "amqp:q", "too big", b"{\"x\": 1").await });
        }
        let ids: Vec<i64> = tasks.join_all().await;
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        let got = store.list_dead_letters(10).await.unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].occurrences, 8);
    })
    .await;
}

#[tokio::test]
async fn a_digest_collision_keeps_the_messages_apart() {
    on_all_backends_raw(async |store: Store, db: &TestDb| {
        store.migrate().await.unwrap();
        let mut conn = raw_conn(db).await;
        // Give message A the digest of message B, as a 64-bit collision would.
        let a = record(&store, "amqp:q", "not JSON", b"A").await;
        let b_digest = dead_letter_digest("amqp:q", b"B");
        assert_eq!(
            digest_of(&mut conn, a).await,
            Some(dead_letter_digest("amqp:q", b"A"))
        );
        conn.execute(sqlx::AssertSqlSafe(format!(
            "UPDATE dead_letters SET digest = {b_digest} WHERE id = {a}"
        )))
        .await
        .unwrap();

        let b = record(&store, "amqp:q", "not JSON", b"B").await;
        assert_ne!(b, a, "B is not merged into A");
        assert_eq!(
            digest_of(&mut conn, b).await,
            None,
            "B is kept without a digest"
        );
        assert_eq!(digest_of(&mut conn, a).await, Some(b_digest));
        let got = store.dead_letters_after(0, 10).await.unwrap();
        assert_eq!(
            got.iter()
                .map(|l| (l.id, l.raw.clone(), l.occurrences))
                .collect::<Vec<_>>(),
            [(a, b"A".to_vec(), 1), (b, b"B".to_vec(), 1)]
        );

        // B received again is found by its bytes among the rows without a digest.
        assert_eq!(record(&store, "amqp:q", "not JSON", b"B").await, b);
        assert_eq!(occurrences(&store).await, [(a, 1), (b, 2)]);
        // Among several rows without a digest, B is counted on its own.
        let c = record(&store, "amqp:q", "not JSON", b"C").await;
        conn.execute(sqlx::AssertSqlSafe(format!(
            "UPDATE dead_letters SET digest = NULL WHERE id = {c}"
        )))
        .await
        .unwrap();
        assert_eq!(record(&store, "amqp:q", "not JSON", b"B").await, b);
        assert_eq!(occurrences(&store).await, [(a, 1), (b, 3), (c, 1)]);
        conn.close().await.ok();
    })
    .await;
}

#[tokio::test]
async fn upgrading_to_digests_keeps_the_dead_letters_and_merges_redeliveries() {
    on_all_backends_raw(async |store: Store, db: &TestDb| {
        store.migrate_to(4).await.unwrap();
        let mut conn = raw_conn(db).await;
        let poison = b"\x00\xffnot json {";
        let rows = [
            (1_000_000, "amqp:q", "not JSON", &poison[..]),
            (1_500_000, "kafka:t", "no message_id", &b"{}"[..]),
            // The first one again: redelivered before the digest existed.
            (2_000_000, "amqp:q", "not JSON", &poison[..]),
            (2_500_000, "amqp:q", "not a JSON object", &b"[1]"[..]),
            (3_000_000, "amqp:q", "not JSON", &poison[..]),
        ];
        for (at, source, reason, raw) in rows {
            conn.execute(sqlx::AssertSqlSafe(format!(
                "INSERT INTO dead_letters (received_at, source, reason, raw) \
                 VALUES ({at}, '{source}', '{reason}', {})",
                blob(db.backend, raw)
            )))
            .await
            .unwrap();
        }
        assert_eq!(
            store.migrate().await.unwrap(),
            MigrationReport {
                from: 4,
                to: LATEST_VERSION
            }
        );
        store.check_schema().await.unwrap();

        let got = store.dead_letters_after(0, 10).await.unwrap();
        let summary: Vec<Summary> = got
            .iter()
            .map(|l| {
                (
                    l.id,
                    l.source.as_str(),
                    l.raw.as_slice(),
                    l.occurrences,
                    l.received_at.timestamp_micros(),
                    l.last_received_at.timestamp_micros(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, "amqp:q", &poison[..], 3, 1_000_000, 3_000_000),
                (2, "kafka:t", &b"{}"[..], 1, 1_500_000, 1_500_000),
                (4, "amqp:q", &b"[1]"[..], 1, 2_500_000, 2_500_000),
            ]
        );
        assert_eq!(got[1].reason, "no message_id");
        for l in &got {
            assert_eq!(
                digest_of(&mut conn, l.id).await,
                Some(dead_letter_digest(&l.source, &l.raw)),
                "dead letter {}",
                l.id
            );
        }
        // Received again after the upgrade: counted on the old rows.
        assert_eq!(record(&store, "amqp:q", "not JSON", poison).await, 1);
        assert_eq!(record(&store, "kafka:t", "x", b"{}").await, 2);
        let got = store.dead_letters_after(0, 10).await.unwrap();
        assert_eq!(
            got.iter().map(|l| l.occurrences).collect::<Vec<_>>(),
            [4, 2, 1]
        );
        assert!(got[0].last_received_at > got[0].received_at);
        conn.close().await.ok();
    })
    .await;
}
