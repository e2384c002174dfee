//! Background upkeep: table statistics and vacuuming on PostgreSQL servers whose autovacuum is off
//! (`tach_store::upkeep`), WAL checkpoints of SQLite files (`tach_store::checkpoint`).

use tach_store::testing::{TestDb, backends};
use tach_store::upkeep::MIN_EVENTS;
use tach_store::{Backend, Store};

use crate::common::{event, store_events, t};

/// Tables among events and trait_index that have planner statistics.
const WITH_STATS: &str = "SELECT CAST(COUNT(DISTINCT tablename) AS TEXT) FROM pg_stats \
                          WHERE tablename IN ('events', 'trait_index')";

/// tach's tables that have been vacuumed.
const VACUUMED: &str = "SELECT CAST(COUNT(*) AS TEXT) FROM pg_stat_user_tables \
                        WHERE last_vacuum IS NOT NULL AND relname IN \
                        ('events', 'trait_index', 'streams', 'stream_events', 'dist_traits')";

/// Waits (up to 30 s) until the store's background ANALYZE passes have all finished.
async fn wait_for_analyze(store: &Store) {
    for _ in 0..300 {
        if store.analyze_runs_finished() == store.analyze_runs() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("ANALYZE still running after 30 s");
}

/// Stores `count` events numbered from `from`, 1,000 per transaction.
async fn store_numbered(store: &Store, from: u64, count: u64) {
    for chunk in (from..from + count).collect::<Vec<_>>().chunks(1000) {
        let events: Vec<_> = chunk
            .iter()
            .map(|n| event(&format!("m{n}"), "compute.instance.update", t(*n as i64)))
            .collect();
        store_events(store, &events).await;
    }
}

#[tokio::test]
async fn postgres_without_autovacuum_analyzes_the_tables_as_they_grow() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let db = TestDb::create(Backend::Postgres).await;
    let store = Store::connect(&db.url).await.expect("connecting");
    store.migrate().await.expect("migrating");
    let autovacuum = db.query_text("SELECT current_setting('autovacuum')").await;
    assert_eq!(store.analyzes_tables(), autovacuum == "off");
    if !store.analyzes_tables() {
        // autovacuum keeps the statistics: tach leaves them alone.
        store_numbered(&store, 0, MIN_EVENTS).await;
        drop(store.begin().await.expect("begin"));
        assert_eq!(store.analyze_runs(), 0);
        store.close().await;
        db.drop_db().await;
        return;
    }
    store_numbered(&store, 0, MIN_EVENTS - 1000).await;
    drop(store.begin().await.expect("begin"));
    assert_eq!(
        store.analyze_runs(),
        0,
        "not due before {MIN_EVENTS} events"
    );
    assert_eq!(db.query_text(WITH_STATS).await, "0");

    store_numbered(&store, MIN_EVENTS - 1000, 1000).await;
    // Due now: the next transaction starts it.
    drop(store.begin().await.expect("begin"));
    assert_eq!(store.analyze_runs(), 1);
    wait_for_analyze(&store).await;
    assert_eq!(db.query_text(WITH_STATS).await, "2");
    // Vacuumed too. The server's statistics views may trail the VACUUM by a moment.
    let mut vacuumed = String::new();
    for _ in 0..50 {
        vacuumed = db.query_text(VACUUMED).await;
        if vacuumed == "5" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(vacuumed, "5", "tables vacuumed");

    // The next one is due after another MIN_EVENTS (half the table is fewer).
    store_numbered(&store, MIN_EVENTS, MIN_EVENTS - 1000).await;
    drop(store.begin().await.expect("begin"));
    assert_eq!(store.analyze_runs(), 1);
    store_numbered(&store, 2 * MIN_EVENTS - 1000, 1000).await;
    drop(store.begin().await.expect("begin"));
    assert_eq!(store.analyze_runs(), 2);

    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn sqlite_and_mysql_never_run_analyze() {
    for backend in backends() {
        if backend == Backend::Postgres {
            continue;
        }
        let db = TestDb::create(backend).await;
        let store = Store::connect(&db.url).await.expect("connecting");
        store.migrate().await.expect("migrating");
        assert!(!store.analyzes_tables(), "{backend}");
        store.close().await;
        db.drop_db().await;
    }
}

#[tokio::test]
async fn sqlite_file_databases_checkpoint_the_wal_in_the_background() {
    let db = TestDb::create(Backend::Sqlite).await;
    let store = Store::connect(&db.url).await.expect("connecting");
    store.migrate().await.expect("migrating");
    assert!(store.checkpoints_in_background());
    store_numbered(&store, 0, 2000).await;
    // Each begin() past the interval starts one (when none is running).
    for _ in 0..300 {
        if store.background_checkpoints().0 >= 1 {
            break;
        }
        tokio::time::sleep(tach_store::checkpoint::INTERVAL).await;
        drop(store.begin().await.expect("begin"));
    }
    let (runs, frames) = store.background_checkpoints();
    assert!(runs >= 1, "no background checkpoint succeeded");
    assert!(
        frames > 0,
        "the checkpoint copied the log's frames into the database"
    );
    store.close().await;
    db.drop_db().await;

    // Not with one connection (the writer would wait for it), not in memory (no WAL), and
    // not on the servers.
    let db = TestDb::create(Backend::Sqlite).await;
    let single = Store::connect_with(&db.url, Some(1))
        .await
        .expect("connecting");
    assert!(!single.checkpoints_in_background());
    single.close().await;
    db.drop_db().await;
    let memory = Store::connect("sqlite::memory:").await.expect("connecting");
    assert!(!memory.checkpoints_in_background());
    memory.close().await;
    for backend in backends() {
        if backend == Backend::Sqlite {
            continue;
        }
        let db = TestDb::create(backend).await;
        let store = Store::connect(&db.url).await.expect("connecting");
        assert!(!store.checkpoints_in_background(), "{backend}");
        store.close().await;
        db.drop_db().await;
    }
}
