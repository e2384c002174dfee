//! Transient database errors injected by the database itself: a trigger raises a deadlock
//! (PostgreSQL SQLSTATE 40P01, MySQL error 1213) on chosen rows, so that the retry paths of
//! the pipeline and trigger managers run against a real server. SQLite's triggers cannot raise
//! a busy error, so these tests run on the server backends.

use chrono::Duration;
use tach_store::{Backend, Event, Store, StreamState};

use crate::common::{TestDb, on_server_backends, setup};
use crate::managers::{request_event, request_streams, t0};

/// Makes the database fail the statements that write the rows numbered in `fail` with a
/// deadlock. Rows are those of `on` (`"UPDATE ON streams"`, say) for which `when` (an SQL
/// condition over `NEW` and `OLD`) holds, counted from 1 across statements by a sequence,
/// which survives the rollback of the failed statement.
async fn inject_faults(db: &TestDb, on: &str, when: &str, fail: &str) {
    use sqlx::{Connection, Executor};
    let statements = match db.backend {
        Backend::Postgres => vec![
            "CREATE SEQUENCE fault_rows".to_owned(),
            format!(
                "CREATE FUNCTION fault() RETURNS trigger AS $$ BEGIN \
                 IF {when} AND nextval('fault_rows') IN ({fail}) THEN \
                 RAISE EXCEPTION 'injected deadlock' USING ERRCODE = '40P01'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql"
            ),
            format!("CREATE TRIGGER fault BEFORE {on} FOR EACH ROW EXECUTE FUNCTION fault()"),
        ],
        Backend::MySql => vec![
            "CREATE SEQUENCE fault_rows NOCACHE".to_owned(),
            format!(
                "CREATE TRIGGER fault BEFORE {on} FOR EACH ROW BEGIN \
                 IF {when} AND NEXT VALUE FOR fault_rows IN ({fail}) THEN \
                 SIGNAL SQLSTATE '40001' SET MESSAGE_TEXT = 'injected deadlock', \
                 MYSQL_ERRNO = 1213; END IF; END"
            ),
        ],
        Backend::Sqlite => unreachable!("SQLite triggers cannot raise a busy error"),
    };
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    for sql in statements {
        conn.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    }
    conn.close().await.unwrap();
}

/// Fails the claims' moves of the rows numbered in `fail` into `firing` or `expiring`.
async fn inject_claim_faults(db: &TestDb, fail: &str) {
    let (firing, expiring) = (StreamState::Firing.code(), StreamState::Expiring.code());
    let when = format!("NEW.state IN ({firing}, {expiring}) AND OLD.state <> NEW.state");
    inject_faults(db, "UPDATE ON streams", &when, fail).await;
}

/// How many rows the fault trigger has counted.
async fn fault_rows_counted(db: &TestDb) -> i64 {
    let sql = match db.backend {
        Backend::Postgres => "SELECT last_value::text FROM fault_rows",
        _ => "SELECT CAST(next_not_cached_value - 1 AS CHAR) FROM fault_rows",
    };
    db.query_text(sql).await.parse().unwrap()
}

#[tokio::test]
async fn a_pass_retries_transient_errors_and_counts_the_work_done_before_them() {
    on_server_backends(async |store: Store, db| {
        let mut setup = setup();
        setup.settings.batch_size = 2;
        let mut pm = setup.pipeline_manager(store.clone());
        let mut events: Vec<Event> = (1..=5)
            .map(|i| request_event(&format!("m{i}"), "x.end", &format!("r{i}"), t0()))
            .collect();
        events.push(request_event("m6", "x.start", "r6", t0()));
        pm.trigger_manager()
            .add_events(&events, t0())
            .await
            .unwrap();
        // A pass claims up to two streams to fire, then up to two to expire. Pass 1: its fire
        // claim takes rows 1 and 2 (two streams fire), its expire claim fails (row 3). Pass 2:
        // its fire claim fails (row 4). Pass 3 fires two and expires r6 (rows 5 to 7), pass 4
        // fires the last one (row 8), pass 5 finds nothing.
        inject_claim_faults(db, "3, 4").await;
        let pass = pm.run_until_idle(t0() + Duration::hours(1)).await.unwrap();
        assert_eq!(fault_rows_counted(db).await, 8, "both faults were raised");
        // The two streams fired in the pass that failed are counted too.
        assert_eq!((pass.fired, pass.expired, pass.errors), (5, 1, 0));
        for i in 1..=6 {
            let streams = request_streams(&store, &format!("r{i}")).await;
            assert_eq!(streams.len(), 1);
            assert_eq!(streams[0].state, StreamState::Completed);
        }
    })
    .await;
}

#[tokio::test]
async fn a_pass_gives_up_after_its_retries_and_leaves_the_streams_ready() {
    on_server_backends(async |store: Store, db| {
        let mut pm = setup().pipeline_manager(store.clone());
        pm.trigger_manager()
            .add_events(&[request_event("m1", "x.end", "r1", t0())], t0())
            .await
            .unwrap();
        inject_claim_faults(db, "1, 2, 3, 4, 5, 6").await;
        let err = pm
            .run_until_idle(t0() + Duration::hours(1))
            .await
            .expect_err("every claim fails");
        assert!(err.is_transient(), "{err:?}");
        assert!(format!("{err:?}").contains("injected deadlock"), "{err:?}");
        // One attempt and five retries, then the error.
        assert_eq!(fault_rows_counted(db).await, 6);
        let r1 = &request_streams(&store, "r1").await[0];
        assert_eq!(r1.state, StreamState::Active);
        // Once the database recovers, the next pass fires it.
        let pass = pm.run_until_idle(t0() + Duration::hours(1)).await.unwrap();
        assert_eq!(pass.fired, 1);
    })
    .await;
}

/// Two batches of request events through a fresh trigger manager on `store`; `between` runs
/// after the first. Returns the second batch's report, the counters of the request_id trigger
/// and, per request, its streams' states and event counts.
async fn two_batches(
    store: &Store,
    between: impl AsyncFnOnce(),
) -> (
    tach_worker::AddReport,
    tach_engine::trigger::TriggerDebug,
    Vec<Vec<(StreamState, i64)>>,
) {
    let mut pm = setup().pipeline_manager(store.clone());
    let tm = pm.trigger_manager();
    let at = t0() + Duration::seconds(1);
    tm.add_events(
        &[
            request_event("m1", "x.start", "r1", t0()),
            request_event("m2", "x.start", "r2", t0()),
        ],
        t0(),
    )
    .await
    .unwrap();
    between().await;
    let second: Vec<Event> = vec![
        request_event("m3", "x.update", "r2", at),
        request_event("m4", "x.start", "r3", at),
        request_event("m1", "x.start", "r1", t0()),
        request_event("m5", "x.end", "r1", at),
        request_event("m6", "x.end", "r3", at),
    ];
    let report = tm.add_events(&second, at).await.unwrap();
    let counters = tm.counters().trigger(1).unwrap().clone();
    let mut streams = Vec::new();
    for r in ["r1", "r2", "r3"] {
        let mut rows: Vec<(StreamState, i64)> = request_streams(store, r)
            .await
            .iter()
            .map(|s| (s.state, s.event_count))
            .collect();
        rows.sort_by_key(|&(state, n)| (state.code(), n));
        streams.push(rows);
    }
    (report, counters, streams)
}

#[tokio::test]
async fn a_batch_retried_after_a_transient_error_is_stored_once_and_counted_once() {
    on_server_backends(async |store: Store, db| {
        // The same batches on a database that never fails.
        let clean_db = TestDb::create(db.backend).await;
        let clean_store = Store::connect(&clean_db.url).await.unwrap();
        clean_store.migrate().await.unwrap();
        let clean = two_batches(&clean_store, async || {}).await;
        clean_store.close().await;
        clean_db.drop_db().await;
        assert_eq!(clean.0.retries, 0);

        // The second batch's first attempt fails at its second stream link, after its events
        // and new stream are written in the same transaction.
        let faulty = two_batches(&store, async || {
            inject_faults(db, "INSERT ON stream_events", "TRUE", "2").await;
        })
        .await;
        assert_eq!(fault_rows_counted(db).await, 6, "the fault was raised");
        assert_eq!(faulty.0.retries, 1);
        assert_eq!(
            tach_worker::AddReport {
                retries: 0,
                ..faulty.0
            },
            clean.0
        );
        assert_eq!(faulty.1, clean.1, "counters as if the batch ran once");
        assert_eq!(faulty.2, clean.2, "the same streams");
        assert_eq!(
            clean.2,
            [
                vec![(StreamState::Active, 2)],
                vec![(StreamState::Active, 2)],
                vec![(StreamState::Active, 2)]
            ]
        );
        assert_eq!(
            db.query_text("SELECT CONCAT('', COUNT(*)) FROM events")
                .await,
            "6"
        );
    })
    .await;
}
