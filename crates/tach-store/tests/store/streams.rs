//! Creating, locking, updating and detaching streams; racing creators.

use std::sync::Arc;

use tach_store::{Backend, DistValue, Error, Store, StreamState, StreamUpdate};

use crate::common::{create_stream, event, new_stream, on_all_backends, store_events, t};

#[tokio::test]
async fn create_lock_update_detach() {
    on_all_backends(async |store: Store| {
        let ids = store_events(&store, &[event("e1", "x", t(0)), event("e2", "x", t(60))]).await;
        let (e1, e2) = (ids[0].unwrap(), ids[1].unwrap());

        let mut new = new_stream("usage", "instance_id=abc", t(0));
        new.distinguishing_traits = vec![
            ("instance_id".into(), DistValue::Text("abc".into())),
            ("n".into(), DistValue::Int(7)),
            ("f".into(), DistValue::Float(2.5)),
            ("at".into(), DistValue::Datetime(t(5))),
            (
                "timestamp".into(),
                DistValue::Range {
                    begin: t(0),
                    end: t(86_400),
                },
            ),
        ];
        new.event_count = 1;
        let mut tx = store.begin().await.unwrap();
        assert!(
            tx.lock_active_stream("usage", "instance_id=abc")
                .await
                .unwrap()
                .is_none()
        );
        let created = tx
            .insert_stream(new.clone())
            .await
            .unwrap()
            .expect("created");
        assert_eq!(created.state, StreamState::Active);
        assert!(created.attached);
        tx.add_stream_events(&[(created.id, e1), (created.id, e1)])
            .await
            .unwrap();
        // The key is taken: a second insert in the same transaction is refused.
        assert!(tx.insert_stream(new.clone()).await.unwrap().is_none());
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        let locked = tx
            .lock_active_stream("usage", "instance_id=abc")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(locked.id, created.id);
        assert_eq!(locked.event_count, 1);
        assert!(
            tx.lock_active_stream("usage", "instance_id=other")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            tx.lock_active_stream("other", "instance_id=abc")
                .await
                .unwrap()
                .is_none()
        );
        tx.add_stream_events(&[(created.id, e2)]).await.unwrap();
        let update = StreamUpdate {
            id: created.id,
            first_event: t(0),
            last_event: t(60),
            expire_timestamp: t(7200),
            fire_timestamp: Some(t(120)),
            fire_state: r#"{"counts":[2]}"#.into(),
            event_count: 2,
        };
        tx.update_stream(&update).await.unwrap();
        let missing = StreamUpdate {
            id: 999_999,
            ..update.clone()
        };
        assert!(matches!(
            tx.update_stream(&missing).await.unwrap_err(),
            Error::StreamNotFound { id: 999_999 }
        ));
        tx.commit().await.unwrap();

        let got = store.get_stream(created.id, true).await.unwrap().unwrap();
        assert_eq!(got.last_event, t(60));
        assert_eq!(got.expire_timestamp, t(7200));
        assert_eq!(got.fire_timestamp, Some(t(120)));
        assert_eq!(got.fire_state, r#"{"counts":[2]}"#);
        assert_eq!(got.event_count, 2);
        let mut want_traits = new.distinguishing_traits.clone();
        want_traits.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got.distinguishing_traits, want_traits);
        let events = got.events.unwrap();
        assert_eq!(
            events
                .iter()
                .map(|e| e.message_id.as_str())
                .collect::<Vec<_>>(),
            ["e1", "e2"]
        );
        assert_eq!(store.stream_events(created.id).await.unwrap(), events);

        // Detach: the stream stays active but no longer holds the key; a new one can open.
        let mut tx = store.begin().await.unwrap();
        tx.detach_stream(created.id).await.unwrap();
        assert!(
            tx.lock_active_stream("usage", "instance_id=abc")
                .await
                .unwrap()
                .is_none()
        );
        let second = tx
            .insert_stream(new.clone())
            .await
            .unwrap()
            .expect("new stream");
        assert_ne!(second.id, created.id);
        tx.commit().await.unwrap();
        let first = store.get_stream(created.id, false).await.unwrap().unwrap();
        assert_eq!(first.state, StreamState::Active);
        assert!(!first.attached);
        assert!(first.events.is_none());
        // Two detached streams (NULL keys) may coexist.
        let mut tx = store.begin().await.unwrap();
        tx.detach_stream(second.id).await.unwrap();
        assert!(matches!(
            tx.detach_stream(424_242).await.unwrap_err(),
            Error::StreamNotFound { id: 424_242 }
        ));
        tx.commit().await.unwrap();

        // Many at once: a third stream takes the key, then it and the others are detached in
        // one statement; a missing id fails the call.
        let mut tx = store.begin().await.unwrap();
        let third = tx.insert_stream(new.clone()).await.unwrap().expect("third");
        tx.detach_streams(&[created.id, second.id, third.id])
            .await
            .unwrap();
        assert!(
            tx.lock_active_stream("usage", "instance_id=abc")
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            tx.detach_streams(&[third.id, 424_242]).await.unwrap_err(),
            Error::StreamNotFound { .. }
        ));
        tx.rollback().await.unwrap();
        let third_row = store.get_stream(third.id, false).await.unwrap();
        assert!(third_row.is_none(), "rolled back with its transaction");
    })
    .await;
}

#[tokio::test]
async fn racing_creators_make_exactly_one_stream() {
    on_all_backends(async |store: Store| {
        const N: usize = 8;
        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let mut tasks = Vec::new();
        for i in 0..N {
            let store = store.clone();
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                let ids = tx
                    .insert_events(&[event(&format!("race{i}"), "x", t(i as i64))])
                    .await;
                let event_id = ids.unwrap()[0].unwrap();
                // SQLite write transactions are serial (BEGIN IMMEDIATE): only the servers race.
                if store.backend() != Backend::Sqlite {
                    barrier.wait().await;
                }
                let mut created = false;
                let stream = loop {
                    if let Some(s) = tx.lock_active_stream("race", "k=1").await.unwrap() {
                        break s;
                    }
                    if let Some(s) = tx
                        .insert_stream(new_stream("race", "k=1", t(0)))
                        .await
                        .unwrap()
                    {
                        created = true;
                        break s;
                    }
                };
                tx.add_stream_events(&[(stream.id, event_id)])
                    .await
                    .unwrap();
                let update = StreamUpdate {
                    id: stream.id,
                    first_event: stream.first_event,
                    last_event: stream.last_event.max(t(i as i64)),
                    expire_timestamp: stream.expire_timestamp,
                    fire_timestamp: None,
                    fire_state: "{}".into(),
                    event_count: stream.event_count + 1,
                };
                tx.update_stream(&update).await.unwrap();
                tx.commit().await.unwrap();
                (stream.id, created)
            }));
        }
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        let id = results[0].0;
        assert!(results.iter().all(|(s, _)| *s == id), "{results:?}");
        assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
        let stream = store.get_stream(id, true).await.unwrap().unwrap();
        // Every transaction saw the one before it: the counter lost no update.
        assert_eq!(stream.event_count, N as i64);
        assert_eq!(stream.events.unwrap().len(), N);
        assert_eq!(stream.last_event, t(N as i64 - 1));
        let all = tach_store::StreamFilter {
            trigger_name: Some("race".into()),
            ..Default::default()
        };
        assert_eq!(store.count_streams(&all).await.unwrap(), 1);
    })
    .await;
}

/// The active key `key` of trigger `trigger` is held by stream `id`, unchanged.
async fn assert_holds(store: &Store, trigger: &str, key: &str, id: i64) {
    let mut tx = store.begin().await.unwrap();
    let locked = tx.lock_active_stream(trigger, key).await.unwrap();
    assert_eq!(locked.map(|s| s.id), Some(id), "{trigger} {key}");
    tx.rollback().await.unwrap();
    let stream = store.get_stream(id, false).await.unwrap().unwrap();
    assert!(stream.attached);
    assert_eq!(stream.distinguishing_key, key);
}

#[tokio::test]
async fn insert_streams_reports_exactly_the_keys_held_elsewhere() {
    on_all_backends(async |store: Store| {
        // Keys already held (committed) by another transaction: the first, a middle and the
        // last row of the multi-row insert.
        let held = ["k=0", "k=2", "k=4"];
        let mut held_ids = Vec::new();
        for key in held {
            held_ids.push(create_stream(&store, new_stream("multi", key, t(0)), &[]).await);
        }
        let keys = ["k=0", "k=1", "k=2", "k=3", "k=4"];
        let mut tx = store.begin().await.unwrap();
        let got = tx
            .insert_streams_deferred(keys.iter().map(|k| new_stream("multi", k, t(1))).collect())
            .await
            .unwrap();
        assert_eq!(got.len(), keys.len());
        for (key, row) in keys.iter().zip(&got) {
            assert_eq!(row.is_some(), !held.contains(key), "{key}: {row:?}");
            if let Some(row) = row {
                assert_eq!(row.distinguishing_key, *key);
                assert_eq!(row.first_event, t(1));
                assert!(!held_ids.contains(&row.id));
            }
        }
        // Within the transaction, every held key still names its owner's stream.
        for (key, id) in held.iter().zip(&held_ids) {
            let locked = tx.lock_active_stream("multi", key).await.unwrap().unwrap();
            assert_eq!(locked.id, *id);
            assert_eq!(locked.first_event, t(0));
        }
        tx.commit().await.unwrap();
        for (key, id) in held.iter().zip(&held_ids) {
            assert_holds(&store, "multi", key, *id).await;
        }
        for (key, row) in keys.iter().zip(&got) {
            if let Some(row) = row {
                assert_holds(&store, "multi", key, row.id).await;
                // The deferred distinguishing traits were written at the commit.
                let stored = store.get_stream(row.id, false).await.unwrap().unwrap();
                assert_eq!(
                    stored.distinguishing_traits,
                    vec![("instance_id".to_owned(), DistValue::Text((*key).to_owned()))]
                );
            }
        }

        // Every key held: all None, nothing changes.
        let mut tx = store.begin().await.unwrap();
        let got = tx
            .insert_streams_deferred(held.iter().map(|k| new_stream("multi", k, t(2))).collect())
            .await
            .unwrap();
        assert!(got.iter().all(Option::is_none), "{got:?}");
        tx.commit().await.unwrap();
        for (key, id) in held.iter().zip(&held_ids) {
            assert_holds(&store, "multi", key, *id).await;
        }
        let all = tach_store::StreamFilter {
            trigger_name: Some("multi".into()),
            ..Default::default()
        };
        assert_eq!(store.count_streams(&all).await.unwrap(), 5);
    })
    .await;
}

#[tokio::test]
async fn insert_streams_loses_races_to_transactions_that_commit_during_it() {
    on_all_backends(async |store: Store| {
        // SQLite write transactions are serial (BEGIN IMMEDIATE): only the servers race.
        if store.backend() == Backend::Sqlite {
            return;
        }
        // `blocker` holds "k=1" uncommitted, so the multi-row insert of k=0..=3 waits on its
        // second row (after reserving its ids on MySQL); meanwhile `winner` creates "k=2" (with an
        // id reserved after the insert's ids) and commits; then `blocker` rolls back.
        let mut blocker = store.begin().await.unwrap();
        blocker
            .insert_stream(new_stream("race", "k=1", t(0)))
            .await
            .unwrap()
            .expect("created");
        let inserting = {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                let news = (0..4)
                    .map(|i| new_stream("race", &format!("k={i}"), t(1)))
                    .collect();
                let got = tx.insert_streams_deferred(news).await.unwrap();
                tx.commit().await.unwrap();
                got
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut winner = store.begin().await.unwrap();
        let won = winner
            .insert_stream(new_stream("race", "k=2", t(0)))
            .await
            .unwrap()
            .expect("created");
        winner.commit().await.unwrap();
        blocker.rollback().await.unwrap();
        let got = inserting.await.unwrap();
        let created: Vec<bool> = got.iter().map(Option::is_some).collect();
        assert_eq!(created, [true, true, false, true], "{got:?}");
        assert_holds(&store, "race", "k=2", won.id).await;
        for (i, row) in got.iter().enumerate() {
            if let Some(row) = row {
                assert_ne!(row.id, won.id);
                assert_holds(&store, "race", &format!("k={i}"), row.id).await;
            }
        }
        let all = tach_store::StreamFilter {
            trigger_name: Some("race".into()),
            ..Default::default()
        };
        assert_eq!(store.count_streams(&all).await.unwrap(), 4);
    })
    .await;
}

#[tokio::test]
async fn streams_events_come_back_in_order_however_many_streams_and_events() {
    on_all_backends(async |store: Store| {
        // 150 streams of 3 events (more streams than one framed row takes on SQLite), one of
        // 2,100 events (more than one framed row holds: read a row per event there), one
        // empty. Every third event shares its timestamp with the next two: ties go by id,
        // which follows the zero-padded message ids.
        let events: Vec<_> = (0..2550)
            .map(|i| event(&format!("m{i:05}"), "x.y", t(i / 3)))
            .collect();
        let ids: Vec<i64> = store_events(&store, &events)
            .await
            .into_iter()
            .map(|id| id.expect("stored"))
            .collect();
        let mut streams: Vec<(i64, Vec<usize>)> = Vec::new();
        for s in 0..150 {
            // Linked out of time order: the answer is sorted, not the links.
            let members = vec![3 * s + 2, 3 * s, 3 * s + 1];
            let links: Vec<i64> = members.iter().map(|&m| ids[m]).collect();
            let mut new = new_stream("many", &format!("s{s}"), t(0));
            new.event_count = 3;
            streams.push((create_stream(&store, new, &links).await, members));
        }
        let big: Vec<usize> = (450..2550).collect();
        let mut new = new_stream("many", "big", t(0));
        new.event_count = big.len() as i64;
        let links: Vec<i64> = big.iter().map(|&m| ids[m]).collect();
        streams.push((create_stream(&store, new, &links).await, big));
        streams.push((
            create_stream(&store, new_stream("many", "empty", t(0)), &[]).await,
            vec![],
        ));
        // Asked for in another order than created.
        streams.reverse();
        streams.swap(3, 100);
        let stream_ids: Vec<i64> = streams.iter().map(|(id, _)| *id).collect();
        let with = store.streams_events(&stream_ids).await.unwrap();
        let without = store
            .streams_events_without_traits(&stream_ids)
            .await
            .unwrap();
        assert_eq!(with.len(), streams.len());
        assert_eq!(without.len(), streams.len());
        for (((id, members), with), without) in streams.iter().zip(&with).zip(&without) {
            let mut want: Vec<usize> = members.clone();
            want.sort_unstable();
            let names = |list: &[tach_store::Event]| -> Vec<String> {
                list.iter().map(|e| e.message_id.clone()).collect()
            };
            let want_names: Vec<String> = want.iter().map(|&m| format!("m{m:05}")).collect();
            assert_eq!(names(with), want_names, "stream {id}");
            assert_eq!(names(without), want_names, "stream {id} without traits");
            for (e, &m) in with.iter().zip(&want) {
                assert_eq!(e.timestamp, t(m as i64 / 3));
                assert_eq!(e.traits.len(), 2, "{}", e.message_id);
            }
            assert!(without.iter().all(|e| e.traits.is_empty()));
        }
    })
    .await;
}

#[tokio::test]
async fn new_streams_of_one_statement_get_each_its_own_id() {
    on_all_backends(async |store: Store| {
        let keys = ["n=0", "n=1", "n=2", "n=3", "n=4", "n=5", "n=6"];
        let mut tx = store.begin().await.unwrap();
        let got = tx
            .insert_streams_deferred(keys.iter().map(|k| new_stream("fresh", k, t(1))).collect())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        for (key, row) in keys.iter().zip(&got) {
            let row = row.as_ref().expect("created");
            assert_holds(&store, "fresh", key, row.id).await;
            let stored = store.get_stream(row.id, false).await.unwrap().unwrap();
            assert_eq!(stored.distinguishing_key, *key);
        }
    })
    .await;
}
