//! Test support for crates whose tests run against every backend (feature `testing`): a
//! fresh database per test on SQLite (a temporary file), PostgreSQL and MySQL/MariaDB (a
//! database created on the local test servers, `TACH_TEST_POSTGRES_URL` and
//! `TACH_TEST_MYSQL_URL` override where).

#![allow(clippy::missing_panics_doc)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};
use sqlx::{AnyConnection, Connection, Executor};

use crate::{Backend, Event, Trait, TraitValue};

/// A fixed UTC time: 2014-07-01 12:00:00 + `secs` seconds (the tests' clock).
pub fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2014, 7, 1, 12, 0, 0)
        .single()
        .expect("valid time")
        + Duration::seconds(secs)
}

/// An event of type `ty` at [`t`]`(secs)` with `traits`.
pub fn ev(id: &str, ty: &str, secs: i64, traits: Vec<(&str, TraitValue)>) -> Event {
    Event {
        message_id: id.into(),
        event_type: ty.into(),
        timestamp: t(secs),
        traits: traits
            .into_iter()
            .map(|(n, v)| Trait {
                name: n.into(),
                value: v,
            })
            .collect(),
    }
}

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
    /// Its backend.
    pub backend: Backend,
    /// Its URL.
    pub url: String,
    name: String,
    admin_url: Option<String>,
    file: Option<PathBuf>,
}

impl TestDb {
    /// Creates an empty database on `backend`.
    ///
    /// # Panics
    /// When the test server is unreachable or refuses.
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

    /// The first column of the first row `sql` returns, as text (test support: panics on
    /// error).
    ///
    /// # Panics
    /// When the query fails or returns no row.
    pub async fn query_text(&self, sql: &str) -> String {
        let mut conn = AnyConnection::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url));
        let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let text: String = sqlx::Row::try_get(&row, 0).unwrap_or_else(|e| panic!("{sql}: {e}"));
        conn.close().await.ok();
        text
    }

    /// Drops the database (close every store on it first).
    ///
    /// # Panics
    /// When the server refuses (test support: a failure must stop the test).
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

/// Every backend the tests run on; `TACH_TEST_BACKENDS=sqlite,postgres,mysql` picks some.
pub fn backends() -> Vec<Backend> {
    match std::env::var("TACH_TEST_BACKENDS") {
        Ok(list) => BACKENDS
            .into_iter()
            .filter(|b| {
                let name = b.to_string().to_ascii_lowercase();
                list.split(',').any(|n| name.starts_with(n.trim()))
            })
            .collect(),
        Err(_) => BACKENDS.to_vec(),
    }
}
