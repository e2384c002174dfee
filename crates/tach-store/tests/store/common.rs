//! Runs a test body against a fresh database on each backend.

use chrono::{DateTime, Duration, Utc};
use sqlx::{AnyConnection, Connection, Row, SqlSafeStr};
use tach_store::testing::BACKENDS;
pub use tach_store::testing::{TestDb, ev, t};
use tach_store::{Event, NewStream, Store, Trait, TraitValue};

/// Runs `body` against a fresh, unmigrated database on every backend.
pub async fn on_all_backends_raw<F>(body: F)
where
    F: AsyncFn(Store, &TestDb),
{
    for backend in BACKENDS {
        eprintln!("--- {backend}");
        let db = TestDb::create(backend).await;
        let store = Store::connect(&db.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {backend}: {e}"));
        body(store.clone(), &db).await;
        store.close().await;
        db.drop_db().await;
    }
}

/// Runs `body` against a fresh, migrated database on every backend.
pub async fn on_all_backends<F>(body: F)
where
    F: AsyncFn(Store),
{
    on_all_backends_raw(async |store: Store, _db: &TestDb| {
        store.migrate().await.expect("migrating");
        body(store).await;
    })
    .await;
}

/// An event with a text and an int trait.
pub fn event(message_id: &str, event_type: &str, at: DateTime<Utc>) -> Event {
    Event {
        message_id: message_id.to_owned(),
        event_type: event_type.to_owned(),
        timestamp: at,
        traits: vec![
            Trait {
                name: "instance_id".into(),
                value: TraitValue::Text(format!("i-{message_id}")),
            },
            Trait {
                name: "memory_mb".into(),
                value: TraitValue::Int(512),
            },
        ],
    }
}

/// A new stream of trigger `trigger` keyed by `key`.
pub fn new_stream(trigger: &str, key: &str, at: DateTime<Utc>) -> NewStream {
    NewStream {
        trigger_name: trigger.to_owned(),
        distinguishing_key: key.to_owned(),
        distinguishing_traits: vec![(
            "instance_id".to_owned(),
            tach_store::DistValue::Text(key.to_owned()),
        )],
        first_event: at,
        last_event: at,
        expire_timestamp: at + Duration::hours(1),
        fire_timestamp: None,
        fire_state: "{}".to_owned(),
        event_count: 0,
    }
}

/// Stores `events` and commits; returns their ids.
pub async fn store_events(store: &Store, events: &[Event]) -> Vec<Option<i64>> {
    let mut tx = store.begin().await.expect("begin");
    let ids = tx.insert_events(events).await.expect("insert_events");
    tx.commit().await.expect("commit");
    ids
}

/// Stores `count` events `{prefix}0`, `{prefix}1`, ... at t(0), t(1), ...; returns their ids.
pub async fn store_series(store: &Store, prefix: &str, count: i64) -> Vec<i64> {
    let events: Vec<_> = (0..count)
        .map(|i| event(&format!("{prefix}{i}"), "x", t(i)))
        .collect();
    store_events(store, &events)
        .await
        .into_iter()
        .map(|id| id.expect("a new event"))
        .collect()
}

/// A connection to the test database past the store, to look at its tables.
pub async fn raw_conn(db: &TestDb) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&db.url)
        .await
        .expect("raw connection")
}

/// The single integer `sql` selects.
pub async fn count(conn: &mut AnyConnection, sql: impl SqlSafeStr) -> i64 {
    sqlx::query(sql)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

/// Creates a committed stream holding `event_ids`.
pub async fn create_stream(store: &Store, new: NewStream, event_ids: &[i64]) -> i64 {
    let mut tx = store.begin().await.expect("begin");
    let stream = tx
        .insert_stream(new)
        .await
        .expect("insert_stream")
        .expect("created");
    let links: Vec<(i64, i64)> = event_ids.iter().map(|&e| (stream.id, e)).collect();
    tx.add_stream_events(&links)
        .await
        .expect("add_stream_events");
    tx.commit().await.expect("commit");
    stream.id
}
