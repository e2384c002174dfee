//! Migrations and the schema check.

use tach_store::migrate::LATEST_VERSION;
use tach_store::{Error, MigrationReport, Store};

use crate::common::{TestDb, on_all_backends_raw};

#[tokio::test]
async fn migrate_from_empty_then_again_is_a_no_op() {
    on_all_backends_raw(async |store: Store, _db: &TestDb| {
        let err = store.check_schema().await.unwrap_err();
        assert!(matches!(err, Error::SchemaMissing), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the database has no tach schema; run `tach db migrate --config <winchester.yaml>` \
             to create it"
        );
        assert_eq!(
            store.migrate().await.unwrap(),
            MigrationReport {
                from: 0,
                to: LATEST_VERSION
            }
        );
        store.check_schema().await.unwrap();
        assert_eq!(
            store.migrate().await.unwrap(),
            MigrationReport {
                from: LATEST_VERSION,
                to: LATEST_VERSION
            }
        );
        assert_eq!(store.schema_version().await.unwrap(), LATEST_VERSION);
    })
    .await;
}

#[tokio::test]
async fn outdated_schema_is_detected_and_upgraded() {
    on_all_backends_raw(async |store: Store, _db: &TestDb| {
        assert_eq!(
            store.migrate_to(1).await.unwrap(),
            MigrationReport { from: 0, to: 1 }
        );
        let err = store.check_schema().await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::SchemaOutdated {
                    found: 1,
                    expected: LATEST_VERSION
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "the database schema is at version 1 but this tach needs version \
                 {LATEST_VERSION}; run `tach db migrate --config <winchester.yaml>` to upgrade it"
            )
        );
        assert_eq!(
            store.migrate().await.unwrap(),
            MigrationReport {
                from: 1,
                to: LATEST_VERSION
            }
        );
        store.check_schema().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn concurrent_migrations_apply_each_version_once() {
    on_all_backends_raw(async |store: Store, db: &TestDb| {
        let other = Store::connect(&db.url).await.unwrap();
        let (a, b) = tokio::join!(store.migrate(), other.migrate());
        let mut reports = [a.unwrap(), b.unwrap()];
        reports.sort_by_key(|r| r.from);
        assert_eq!(
            reports,
            [
                MigrationReport {
                    from: 0,
                    to: LATEST_VERSION
                },
                MigrationReport {
                    from: LATEST_VERSION,
                    to: LATEST_VERSION
                }
            ]
        );
        other.close().await;
    })
    .await;
}

#[tokio::test]
async fn sqlite_memory_and_sqlalchemy_urls_connect() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    // One connection: the schema is visible to every later call.
    store.check_schema().await.unwrap();
    store.close().await;

    let err = Store::connect("oracle://scott:tiger@db/x")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnsupportedUrl { .. }));
    assert!(!err.to_string().contains("tiger"));
}

/// The page size of the SQLite file at `db`, in bytes.
async fn page_size(db: &TestDb) -> String {
    db.query_text("SELECT CAST(page_size AS TEXT) FROM pragma_page_size()")
        .await
}

#[tokio::test]
async fn a_new_sqlite_file_gets_large_pages_and_an_existing_one_keeps_its_own() {
    use sqlx::{Connection, Executor};
    use tach_store::Backend;
    use tach_store::store::SQLITE_PAGE_SIZE;

    let new = TestDb::create(Backend::Sqlite).await;
    let store = Store::connect(&new.url).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    assert_eq!(page_size(&new).await, SQLITE_PAGE_SIZE.to_string());
    new.drop_db().await;

    // A file that SQLite's default 4 KiB pages made, with a table in it: the size is fixed.
    let old = TestDb::create(Backend::Sqlite).await;
    let mut conn = sqlx::AnyConnection::connect(&format!("{}?mode=rwc", old.url))
        .await
        .unwrap();
    conn.execute("PRAGMA page_size = 4096").await.unwrap();
    conn.execute("CREATE TABLE before_tach (a INTEGER)")
        .await
        .unwrap();
    conn.close().await.unwrap();
    let store = Store::connect(&old.url).await.unwrap();
    store.migrate().await.unwrap();
    store.check_schema().await.unwrap();
    store.close().await;
    assert_eq!(page_size(&old).await, "4096");
    old.drop_db().await;
}
