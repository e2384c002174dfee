//! Runs a test body against a fresh database on each backend.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{AnyConnection, Connection, Executor};
use tach_store::{Backend, Store};

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

/// Runs `body` against a fresh, migrated database on every backend.
pub async fn on_all_backends<F>(body: F)
where
    F: AsyncFn(Store, &TestDb),
{
    for backend in backends() {
        eprintln!("--- {backend}");
        let db = TestDb::create(backend).await;
        let store = Store::connect(&db.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {backend}: {e}"));
        store.migrate().await.expect("migrating");
        body(store.clone(), &db).await;
        store.close().await;
        db.drop_db().await;
    }
}

/// Runs `body` against a fresh, migrated database on the server backends only.
pub async fn on_server_backends<F>(body: F)
where
    F: AsyncFn(Store, &TestDb),
{
    for backend in backends() {
        if backend == Backend::Sqlite {
            continue;
        }
        eprintln!("--- {backend}");
        let db = TestDb::create(backend).await;
        let store = Store::connect(&db.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {backend}: {e}"));
        store.migrate().await.expect("migrating");
        body(store.clone(), &db).await;
        store.close().await;
        db.drop_db().await;
    }
}

/// The repository's config/winchester.yaml, loaded.
pub fn config() -> tach_engine::WinchesterConfig {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/winchester.yaml");
    tach_engine::WinchesterConfig::load(&path).expect("loading config/winchester.yaml")
}

/// The managers of config/ on `store`.
pub fn setup() -> tach_worker::WorkerSetup {
    tach_worker::WorkerSetup::load(&config()).expect("loading config/ triggers and pipelines")
}

/// The distiller of config/.
pub fn distiller() -> tach_distiller::Distiller {
    let config = config();
    let path = config.distiller_config_path().expect("distiller path");
    tach_distiller::Distiller::from_file(&path, config.catch_all_notifications)
        .expect("loading config/event_definitions.yaml")
}
