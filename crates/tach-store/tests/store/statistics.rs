//! Table statistics on PostgreSQL servers whose autovacuum is off (`tach_store::upkeep`).

use tach_store::testing::{TestDb, backends};
use tach_store::upkeep::MIN_EVENTS;
use tach_store::{Backend, Store};

use crate::common::{event, t};

/// Tables among events and trait_index that have planner statistics.
const WITH_STATS: &str = "SELECT CAST(COUNT(DISTINCT tablename) AS TEXT) FROM pg_stats \
                          WHERE tablename IN ('events', 'trait_index')";

/// Waits (up to 30 s) until the store has run `runs` ANALYZE statements in the background.
async fn wait_for_runs(store: &Store, runs: u64) {
    for _ in 0..300 {
        if store.analyze_runs() >= runs {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "{runs} ANALYZE runs expected, {} seen",
        store.analyze_runs()
    );
}

/// Stores `count` events numbered from `from`, 1,000 per transaction.
async fn store_events(store: &Store, from: u64, count: u64) {
    for chunk in (from..from + count).collect::<Vec<_>>().chunks(1000) {
        let events: Vec<_> = chunk
            .iter()
            .map(|n| event(&format!("m{n}"), "compute.instance.update", t(*n as i64)))
            .collect();
        let mut tx = store.begin().await.expect("begin");
        tx.insert_events(&events).await.expect("inserting events");
        tx.commit().await.expect("commit");
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
        store_events(&store, 0, MIN_EVENTS).await;
        drop(store.begin().await.expect("begin"));
        assert_eq!(store.analyze_runs(), 0);
        store.close().await;
        db.drop_db().await;
        return;
    }
    store_events(&store, 0, MIN_EVENTS - 1000).await;
    drop(store.begin().await.expect("begin"));
    assert_eq!(
        store.analyze_runs(),
        0,
        "not due before {MIN_EVENTS} events"
    );
    assert_eq!(db.query_text(WITH_STATS).await, "0");

    store_events(&store, MIN_EVENTS - 1000, 1000).await;
    // Due now: the next transaction starts it.
    drop(store.begin().await.expect("begin"));
    wait_for_runs(&store, 1).await;
    assert_eq!(db.query_text(WITH_STATS).await, "2");

    // The next one is due after another MIN_EVENTS (half the table is fewer).
    store_events(&store, MIN_EVENTS, MIN_EVENTS - 1000).await;
    drop(store.begin().await.expect("begin"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(store.analyze_runs(), 1);
    store_events(&store, 2 * MIN_EVENTS - 1000, 1000).await;
    drop(store.begin().await.expect("begin"));
    wait_for_runs(&store, 2).await;

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
