//! Runs a test body against a fresh database on each backend.

pub use tach_store::testing::TestDb;
use tach_store::testing::backends;
use tach_store::{Backend, Store};

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
