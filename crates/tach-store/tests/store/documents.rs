//! Trait documents and the trait index: searches by indexed and unindexed traits agree,
//! changing the indexed set rebuilds the index, trimming removes index rows, SQLite's recent
//! index rows are merged in bulk and read with the rest, and the upgrade from the row-per-trait
//! schema keeps every trait.

use sqlx::{AnyConnection, Executor};
use tach_store::{Backend, Event, EventFilter, IndexedTraits, Store, TraitValue};

use crate::common::{TestDb, count, on_all_backends_raw, raw_conn, store_events, t};

fn ev(id: &str, secs: i64, traits: Vec<(&str, TraitValue)>) -> Event {
    crate::common::ev(id, "compute.instance.exists", secs, traits)
}

/// Rows of the trait index: `trait_index`, plus `trait_index_recent` on SQLite.
async fn index_rows(conn: &mut AnyConnection, db: &TestDb) -> i64 {
    let main = count(conn, "SELECT COUNT(*) FROM trait_index").await;
    if db.backend != Backend::Sqlite {
        return main;
    }
    main + count(conn, "SELECT COUNT(*) FROM trait_index_recent").await
}

fn text(s: &str) -> TraitValue {
    TraitValue::Text(s.into())
}

async fn found(store: &Store, name: &str, value: &str) -> Vec<String> {
    let f = EventFilter {
        traits: vec![(name.into(), value.into())],
        ..Default::default()
    };
    let ids: Vec<String> = store
        .list_events(&f)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.message_id)
        .collect();
    let count = store.count_events(&f).await.unwrap();
    assert_eq!(count, ids.len() as i64, "count of {name}:{value}");
    ids
}

#[tokio::test]
async fn searches_agree_whether_a_trait_is_indexed_or_not() {
    on_all_backends_raw(async |store: Store, db: &TestDb| {
        store.migrate().await.unwrap();
        let events = vec![
            ev(
                "a",
                0,
                vec![("tenant", text("T1")), ("memory_mb", TraitValue::Int(5))],
            ),
            ev(
                "b",
                1,
                vec![
                    ("tenant", text("t1")),
                    ("ratio", TraitValue::Float(0.1 + 0.2)),
                ],
            ),
            // Text that spells another trait's element, and LIKE's wildcards.
            ev(
                "c",
                2,
                vec![
                    ("tenant", text(r#"["memory_mb",2,5]"#)),
                    ("host", text("a%_b")),
                ],
            ),
            ev(
                "d",
                3,
                vec![
                    ("launched_at", TraitValue::Datetime(t(7))),
                    ("host", text("axxb")),
                ],
            ),
        ];
        store_events(&store, &events).await;
        let sets = [
            IndexedTraits::default_set(),
            IndexedTraits::All,
            IndexedTraits::from_names(["tenant", "ratio"]),
        ];
        let mut conn = raw_conn(db).await;
        for (i, set) in sets.iter().enumerate() {
            let rebuilt = store.set_indexed_traits(set).await.unwrap();
            // The first is the schema's own default: nothing to rebuild.
            assert_eq!(rebuilt, (i > 0).then_some(4), "{set}");
            assert_eq!(store.set_indexed_traits(set).await.unwrap(), None);
            let rows = index_rows(&mut conn, db).await;
            let expected = [2, 8, 4][i];
            assert_eq!(rows, expected, "index rows for {set}");

            assert_eq!(
                found(&store, "tenant", "t1").await,
                ["b"],
                "{set}: case-sensitive"
            );
            assert_eq!(found(&store, "tenant", "T1").await, ["a"], "{set}");
            assert_eq!(
                found(&store, "memory_mb", "5").await,
                ["a"],
                "{set}: no false match"
            );
            assert_eq!(
                found(&store, "tenant", r#"["memory_mb",2,5]"#).await,
                ["c"],
                "{set}"
            );
            assert_eq!(
                found(&store, "ratio", "0.30000000000000004").await,
                ["b"],
                "{set}"
            );
            assert!(
                found(&store, "ratio", "0.3").await.is_empty(),
                "{set}: floats exactly"
            );
            assert_eq!(found(&store, "host", "a%_b").await, ["c"], "{set}");
            assert!(
                found(&store, "host", "a__b").await.is_empty(),
                "{set}: no wildcards"
            );
            assert_eq!(
                found(&store, "launched_at", "2014-07-01T12:00:07Z").await,
                ["d"],
                "{set}"
            );
            assert!(
                found(&store, "launched_at", "2014-07-01T12:00:08Z")
                    .await
                    .is_empty()
            );
        }
        // Events stored under a set are indexed by it.
        store_events(&store, &[ev("e", 4, vec![("tenant", text("t1"))])]).await;
        assert_eq!(found(&store, "tenant", "t1").await, ["e", "b"]);
    })
    .await;
}

#[tokio::test]
async fn trimming_removes_index_rows() {
    on_all_backends_raw(async |store: Store, db: &TestDb| {
        store.migrate().await.unwrap();
        let events: Vec<Event> = (0..4)
            .map(|i| {
                ev(
                    &format!("x{i}"),
                    i,
                    vec![("instance_id", text(&format!("i{i}")))],
                )
            })
            .collect();
        store_events(&store, &events).await;
        let mut conn = raw_conn(db).await;
        assert_eq!(index_rows(&mut conn, db).await, 4);
        assert_eq!(store.trim_events(t(2), 10).await.unwrap(), 2);
        assert_eq!(index_rows(&mut conn, db).await, 2);
        assert!(found(&store, "instance_id", "i0").await.is_empty());
        assert_eq!(found(&store, "instance_id", "i3").await, ["x3"]);
    })
    .await;
}

#[tokio::test]
async fn sqlite_merges_recent_index_rows_in_bulk_and_reads_both_tables() {
    let db = TestDb::create(Backend::Sqlite).await;
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    store.set_index_merge_rows(3);
    let mut conn = raw_conn(&db).await;
    let tables = async |conn: &mut AnyConnection| {
        (
            count(conn, "SELECT COUNT(*) FROM trait_index").await,
            count(conn, "SELECT COUNT(*) FROM trait_index_recent").await,
        )
    };
    let instance =
        |id: &str, secs: i64, instance: &str| ev(id, secs, vec![("instance_id", text(instance))]);

    store_events(&store, &[instance("a", 0, "i0"), instance("b", 1, "i1")]).await;
    assert_eq!(tables(&mut conn).await, (0, 2), "below the threshold");
    store_events(&store, &[instance("c", 2, "i0")]).await;
    assert_eq!(tables(&mut conn).await, (3, 0), "merged at the threshold");
    store_events(&store, &[instance("d", 3, "i0")]).await;
    assert_eq!(tables(&mut conn).await, (3, 1));
    assert_eq!(found(&store, "instance_id", "i0").await, ["d", "c", "a"]);
    assert_eq!(found(&store, "instance_id", "i1").await, ["b"]);

    // Trimming deletes from both tables.
    assert_eq!(store.trim_events(t(3), 10).await.unwrap(), 3);
    assert_eq!(tables(&mut conn).await, (0, 1));
    assert_eq!(found(&store, "instance_id", "i0").await, ["d"]);
    assert!(found(&store, "instance_id", "i1").await.is_empty());

    // Rebuilding the index empties both and writes the big one.
    store.set_indexed_traits(&IndexedTraits::All).await.unwrap();
    assert_eq!(tables(&mut conn).await, (1, 0));
    assert_eq!(found(&store, "instance_id", "i0").await, ["d"]);
    drop(conn);
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn upgrading_from_trait_rows_keeps_every_trait() {
    on_all_backends_raw(async |store: Store, db: &TestDb| {
        store.migrate_to(3).await.unwrap();
        let mut conn = raw_conn(db).await;
        for stmt in [
            "INSERT INTO events (message_id, event_type, generated) VALUES ('m1', 'x', 1000000)",
            "INSERT INTO events (message_id, event_type, generated) VALUES ('m2', 'y', 2000000)",
            "INSERT INTO traits (event_id, name, type, t_string, t_int, t_float, t_datetime) \
             VALUES (1, 'instance_id', 1, 'abc', NULL, NULL, NULL)",
            "INSERT INTO traits (event_id, name, type, t_string, t_int, t_float, t_datetime) \
             VALUES (1, 'memory_mb', 2, NULL, 512, NULL, NULL)",
            "INSERT INTO traits (event_id, name, type, t_string, t_int, t_float, t_datetime) \
             VALUES (1, 'ratio', 3, NULL, NULL, 0.25, NULL)",
            "INSERT INTO traits (event_id, name, type, t_string, t_int, t_float, t_datetime) \
             VALUES (1, 'launched_at', 4, NULL, NULL, NULL, 1500000)",
        ] {
            conn.execute(stmt).await.unwrap();
        }
        store.migrate().await.unwrap();
        store.check_schema().await.unwrap();
        let m1 = store.get_event("m1").await.unwrap().unwrap().event;
        let names: Vec<(&str, &TraitValue)> = m1
            .traits
            .iter()
            .map(|t| (t.name.as_str(), &t.value))
            .collect();
        assert_eq!(
            names,
            [
                ("instance_id", &text("abc")),
                (
                    "launched_at",
                    &TraitValue::Datetime(
                        chrono::DateTime::from_timestamp_micros(1_500_000).unwrap()
                    )
                ),
                ("memory_mb", &TraitValue::Int(512)),
                ("ratio", &TraitValue::Float(0.25)),
            ]
        );
        assert!(
            store
                .get_event("m2")
                .await
                .unwrap()
                .unwrap()
                .event
                .traits
                .is_empty()
        );
        assert_eq!(
            found(&store, "instance_id", "abc").await,
            ["m1"],
            "by the index"
        );
        assert_eq!(
            found(&store, "memory_mb", "512").await,
            ["m1"],
            "by the document"
        );
        let tables = match db.backend {
            tach_store::Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'traits'"
            }
            tach_store::Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'traits'"
            }
            tach_store::Backend::MySql => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = 'traits'"
            }
        };
        assert_eq!(
            count(&mut conn, tables).await,
            0,
            "the old table is dropped"
        );
    })
    .await;
}
