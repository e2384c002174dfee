//! Runs a test body against a fresh database on each backend.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};
use sqlx::{AnyConnection, Connection, Executor};
use tach_store::{Backend, Event, NewStream, Store, Trait, TraitValue};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Every backend, in the order the tests run them.
pub const BACKENDS: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::MySql];

fn postgres_url() -> String {
    std::env::var("TACH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn mysql_url() -> String {
    std::env::var("TACH_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

/// `url` with its database (path) replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A database created for one test.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    name: String,
    admin_url: Option<String>,
    file: Option<PathBuf>,
}

impl TestDb {
    /// Creates an empty database on `backend`.
    pub async fn create(backend: Backend) -> TestDb {
        sqlx::any::install_default_drivers();
        let name = format!(
            "tach_t_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        match backend {
            Backend::Sqlite => {
                let file = std::env::temp_dir().join(format!("{name}.db"));
                TestDb {
                    backend,
                    url: format!("sqlite://{}", file.display()),
                    name,
                    admin_url: None,
                    file: Some(file),
                }
            }
            Backend::Postgres | Backend::MySql => {
                let admin_url = if backend == Backend::Postgres {
                    postgres_url()
                } else {
                    mysql_url()
                };
                let mut admin = AnyConnection::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| panic!("{backend} test server at {admin_url}: {e}"));
                admin
                    .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .unwrap_or_else(|e| panic!("creating {name} on {backend}: {e}"));
                admin.close().await.ok();
                TestDb {
                    backend,
                    url: with_database(&admin_url, &name),
                    name,
                    admin_url: Some(admin_url),
                    file: None,
                }
            }
        }
    }

    /// Drops the database (close every store on it first).
    pub async fn drop_db(self) {
        if let Some(file) = &self.file {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = file.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
        if let Some(admin_url) = &self.admin_url {
            let mut admin = AnyConnection::connect(admin_url)
                .await
                .expect("admin connection");
            let sql = match self.backend {
                Backend::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
                _ => format!("DROP DATABASE IF EXISTS {}", self.name),
            };
            admin
                .execute(sqlx::AssertSqlSafe(sql))
                .await
                .expect("dropping the test database");
            admin.close().await.ok();
        }
    }
}

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

/// A fixed UTC time with microseconds: 2014-07-01 12:00:00.000000 + `secs` seconds.
pub fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2014, 7, 1, 12, 0, 0)
        .single()
        .expect("valid time")
        + Duration::seconds(secs)
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
