//! The pipeline worker's side: claiming, state changes, reset, delete, trim, dead letters.

use std::collections::HashSet;

use sqlx::{AnyConnection, Connection};
use tach_store::{ClaimKind, Error, EventFilter, Store, StreamState};

use crate::common::{
    TestDb, count, create_stream, event, new_stream, on_all_backends, on_all_backends_raw,
    raw_conn, store_events, store_series, t,
};

#[tokio::test]
async fn claim_takes_ready_streams_once() {
    on_all_backends(async |store: Store| {
        // s_fire: fire time passed. s_later: fire time in the future. s_exp: expired, no fire.
        // s_both: expired and ready to fire -> belongs to Fire, not Expire.
        let mut fire = new_stream("tr", "fire", t(0));
        fire.fire_timestamp = Some(t(10));
        let s_fire = create_stream(&store, fire, &[]).await;
        let mut later = new_stream("tr", "later", t(0));
        later.fire_timestamp = Some(t(10_000));
        let s_later = create_stream(&store, later, &[]).await;
        let mut exp = new_stream("tr", "exp", t(0));
        exp.expire_timestamp = t(50);
        let s_exp = create_stream(&store, exp, &[]).await;
        let mut both = new_stream("tr", "both", t(0));
        both.expire_timestamp = t(50);
        both.fire_timestamp = Some(t(20));
        let s_both = create_stream(&store, both, &[]).await;

        let expiring = store
            .claim_streams(ClaimKind::Expire, t(100), 10)
            .await
            .unwrap();
        assert_eq!(expiring.iter().map(|s| s.id).collect::<Vec<_>>(), [s_exp]);
        assert_eq!(expiring[0].state, StreamState::Expiring);
        assert!(!expiring[0].attached);
        assert!(
            expiring[0].distinguishing_traits.is_empty(),
            "claims do not read the distinguishing traits"
        );
        let stored = store.get_stream(s_exp, false).await.unwrap().unwrap();
        assert_eq!(stored.distinguishing_traits.len(), 1);
        assert_eq!(stored.state, StreamState::Expiring);

        let firing = store
            .claim_streams(ClaimKind::Fire, t(100), 10)
            .await
            .unwrap();
        let ids: Vec<i64> = firing.iter().map(|s| s.id).collect();
        assert_eq!(ids, [s_fire, s_both], "oldest fire time first");
        assert!(firing.iter().all(|s| s.state == StreamState::Firing));
        // Nothing is taken twice; the future one stays.
        assert!(
            store
                .claim_streams(ClaimKind::Fire, t(100), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let later = store.get_stream(s_later, false).await.unwrap().unwrap();
        assert_eq!(later.state, StreamState::Active);
        assert!(later.attached);
        // A claimed stream released its key: a new stream opens for the same values.
        let mut tx = store.begin().await.unwrap();
        assert!(tx.lock_active_stream("tr", "fire").await.unwrap().is_none());
        assert!(
            tx.insert_stream(new_stream("tr", "fire", t(0)))
                .await
                .unwrap()
                .is_some()
        );
        tx.commit().await.unwrap();
        // Limit.
        let mut a = new_stream("lim", "a", t(0));
        a.fire_timestamp = Some(t(1));
        let mut b = new_stream("lim", "b", t(0));
        b.fire_timestamp = Some(t(2));
        create_stream(&store, a, &[]).await;
        create_stream(&store, b, &[]).await;
        assert_eq!(
            store
                .claim_streams(ClaimKind::Fire, t(100), 1)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            store
                .claim_streams(ClaimKind::Fire, t(100), 5)
                .await
                .unwrap()
                .len(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_claimers_take_each_stream_once() {
    on_all_backends(async |store: Store| {
        const STREAMS: usize = 24;
        let mut want = HashSet::new();
        for i in 0..STREAMS {
            let mut s = new_stream("cc", &format!("k{i}"), t(0));
            s.fire_timestamp = Some(t(i as i64));
            want.insert(create_stream(&store, s, &[]).await);
        }
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .claim_streams(ClaimKind::Fire, t(1000), 5)
                        .await
                        .unwrap();
                    if got.is_empty() {
                        break mine;
                    }
                    mine.extend(got.into_iter().map(|s| s.id));
                }
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        assert_eq!(
            all.len(),
            STREAMS,
            "each stream claimed exactly once: {all:?}"
        );
        assert_eq!(all.into_iter().collect::<HashSet<_>>(), want);
    })
    .await;
}

#[tokio::test]
async fn state_cas_reset_and_delete() {
    on_all_backends(async |store: Store| {
        let ids = store_events(&store, &[event("d1", "x", t(0))]).await;
        let id = create_stream(&store, new_stream("st", "k", t(0)), &[ids[0].unwrap()]).await;

        // Reset of a stream that is not in error is a conflict.
        let err = store.reset_stream(id).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Conflict {
                    state: StreamState::Active,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "stream {id} is in state active; only error, expire_error, firing and expiring streams can be reset"
            )
        );
        assert!(err.is_conflict());
        let missing = store.reset_stream(987_654).await.unwrap_err();
        assert!(missing.is_not_found(), "{missing:?}");

        // CAS: only from the state seen.
        assert!(
            !store
                .set_stream_state(id, StreamState::Error, StreamState::Completed, None)
                .await
                .unwrap()
        );
        assert!(
            store
                .set_stream_state(id, StreamState::Active, StreamState::Firing, None)
                .await
                .unwrap()
        );
        assert!(
            store
                .set_stream_state(
                    id,
                    StreamState::Firing,
                    StreamState::Error,
                    Some("handler usage failed")
                )
                .await
                .unwrap()
        );
        let s = store.get_stream(id, false).await.unwrap().unwrap();
        assert_eq!(s.state, StreamState::Error);
        assert_eq!(s.error.as_deref(), Some("handler usage failed"));
        assert!(!s.attached);

        let reset = store.reset_stream(id).await.unwrap();
        assert_eq!(reset.state, StreamState::RetryFire);
        assert!(
            store
                .set_stream_state(id, StreamState::RetryFire, StreamState::Firing, None)
                .await
                .unwrap()
        );
        assert!(
            store
                .set_stream_state(id, StreamState::Firing, StreamState::Completed, None)
                .await
                .unwrap()
        );
        assert_eq!(
            store.get_stream(id, false).await.unwrap().unwrap().error,
            None
        );

        // expire_error -> retry_expire.
        let id2 = create_stream(&store, new_stream("st", "k2", t(0)), &[]).await;
        assert!(
            store
                .set_stream_state(
                    id2,
                    StreamState::Active,
                    StreamState::ExpireError,
                    Some("x")
                )
                .await
                .unwrap()
        );
        assert_eq!(
            store.reset_stream(id2).await.unwrap().state,
            StreamState::RetryExpire
        );

        // A stream left in firing or expiring (its worker died) can be reset; a completed one
        // cannot.
        let id3 = create_stream(&store, new_stream("st", "k3", t(0)), &[]).await;
        assert!(
            store
                .set_stream_state(id3, StreamState::Active, StreamState::Expiring, None)
                .await
                .unwrap()
        );
        assert_eq!(
            store.reset_stream(id3).await.unwrap().state,
            StreamState::RetryExpire
        );
        assert!(
            store
                .set_stream_state(id3, StreamState::RetryExpire, StreamState::Firing, None)
                .await
                .unwrap()
        );
        assert_eq!(
            store.reset_stream(id3).await.unwrap().state,
            StreamState::RetryFire
        );
        assert!(
            store
                .set_stream_state(id3, StreamState::RetryFire, StreamState::Completed, None)
                .await
                .unwrap()
        );
        let done = store.reset_stream(id3).await.unwrap_err();
        assert!(
            matches!(
                done,
                Error::Conflict {
                    state: StreamState::Completed,
                    ..
                }
            ),
            "{done:?}"
        );

        // Delete removes the stream and its links but not the events.
        assert!(store.delete_stream(id).await.unwrap());
        assert!(!store.delete_stream(id).await.unwrap());
        assert_eq!(store.get_stream(id, false).await.unwrap(), None);
        assert!(store.get_event("d1").await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn trim_keeps_events_of_open_streams() {
    on_all_backends(async |store: Store| {
        let ids = store_series(&store, "tr", 6).await;
        // tr0, tr1 in an active stream; tr2 in a completed one; tr3..5 in none.
        create_stream(&store, new_stream("tt", "open", t(0)), &ids[0..2]).await;
        let done = create_stream(&store, new_stream("tt", "done", t(0)), &ids[2..3]).await;
        assert!(
            store
                .set_stream_state(done, StreamState::Active, StreamState::Completed, None)
                .await
                .unwrap()
        );

        // Cutoff t(5): tr0..tr4 are older; tr0, tr1 are protected -> tr2, tr3, tr4 go.
        assert_eq!(store.trim_events(t(5), 2).await.unwrap(), 2);
        assert_eq!(store.trim_events(t(5), 2).await.unwrap(), 1);
        assert_eq!(store.trim_events(t(5), 2).await.unwrap(), 0);
        let left: Vec<String> = store
            .list_events(&EventFilter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event.message_id)
            .collect();
        assert_eq!(left, ["tr5", "tr1", "tr0"]);
        assert!(store.stream_events(done).await.unwrap().is_empty());
    })
    .await;
}

/// Rows of `table` whose `column` is `id`, read past the store.
async fn rows_of(conn: &mut AnyConnection, table: &str, column: &str, id: i64) -> i64 {
    // Table and column are this file's constants; the id is an integer.
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} = {id}");
    count(conn, sqlx::AssertSqlSafe(sql)).await
}

#[tokio::test]
async fn deletes_and_trims_leave_no_links_or_distinguishing_traits() {
    // PostgreSQL and MySQL have no foreign keys on these rows (schema version 6): the store
    // deletes them itself, which this checks past the store's own joins.
    on_all_backends_raw(async |store: Store, db: &TestDb| {
        store.migrate().await.unwrap();
        let mut conn = raw_conn(db).await;
        let ids = store_series(&store, "dl", 4).await;
        let one = create_stream(&store, new_stream("dt", "one", t(0)), &ids[0..2]).await;
        let many = create_stream(&store, new_stream("dt", "many", t(0)), &ids[1..3]).await;
        let done = create_stream(&store, new_stream("dt", "done", t(0)), &ids[3..4]).await;
        for s in [one, many, done] {
            assert_eq!(rows_of(&mut conn, "dist_traits", "stream_id", s).await, 1);
        }
        assert_eq!(
            rows_of(&mut conn, "stream_events", "stream_id", one).await,
            2
        );

        // The API's delete, then the pipeline's purge (with an id that is gone).
        assert!(store.delete_stream(one).await.unwrap());
        assert_eq!(store.delete_streams(&[many, one]).await.unwrap(), [one]);
        for s in [one, many] {
            assert_eq!(rows_of(&mut conn, "stream_events", "stream_id", s).await, 0);
            assert_eq!(rows_of(&mut conn, "dist_traits", "stream_id", s).await, 0);
        }
        // The events stay, with their links to the stream not deleted.
        assert_eq!(rows_of(&mut conn, "events", "id", ids[1]).await, 1);
        assert_eq!(
            rows_of(&mut conn, "stream_events", "stream_id", done).await,
            1
        );

        // Trimming a completed stream's event takes its link too; the stream stays.
        assert!(
            store
                .set_stream_state(done, StreamState::Active, StreamState::Completed, None)
                .await
                .unwrap()
        );
        assert_eq!(store.trim_events(t(10), 10).await.unwrap(), 4);
        assert_eq!(
            rows_of(&mut conn, "stream_events", "event_id", ids[3]).await,
            0
        );
        assert_eq!(
            rows_of(&mut conn, "stream_events", "stream_id", done).await,
            0
        );
        assert_eq!(
            rows_of(&mut conn, "dist_traits", "stream_id", done).await,
            1
        );
        conn.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn dead_letters_keep_reason_and_raw_bytes() {
    on_all_backends(async |store: Store| {
        let raw = b"\x00\xffnot json {".to_vec();
        let a = store
            .insert_dead_letter("amqp:notifications.info", "not JSON", &raw)
            .await
            .unwrap();
        let b = store
            .insert_dead_letter("kafka:n", "no event_type", b"{}")
            .await
            .unwrap();
        assert!(b > a);
        let got = store.list_dead_letters(10).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].id, got[0].source.as_str(), got[0].raw.as_slice()),
            (b, "kafka:n", &b"{}"[..])
        );
        assert_eq!(
            (got[1].reason.as_str(), got[1].raw.clone()),
            ("not JSON", raw)
        );
        assert_eq!(store.list_dead_letters(1).await.unwrap().len(), 1);
    })
    .await;
}
