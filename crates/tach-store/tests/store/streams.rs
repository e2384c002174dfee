//! Creating, locking, updating and detaching streams; racing creators.

use std::sync::Arc;

use tach_store::{Backend, DistValue, Error, Store, StreamState, StreamUpdate};

use crate::common::{event, new_stream, on_all_backends, store_events, t};

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
