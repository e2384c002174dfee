//! Several managers, each with its own connection pool, racing on one PostgreSQL or MySQL
//! database: one open stream per key, and each ready stream fired exactly once.

use chrono::Duration;
use tach_store::{Backend, Store, StreamFilter, StreamState};

use crate::common::{TestDb, on_server_backends, setup};
use crate::managers::{request_event, t0};

const WORKERS: usize = 4;
const KEYS: usize = 60;

#[tokio::test]
async fn concurrent_ingest_opens_one_stream_per_key() {
    on_server_backends(async |store: Store, db: &TestDb| {
        let mut tasks = Vec::new();
        for worker in 0..WORKERS {
            let url = db.url.clone();
            tasks.push(tokio::spawn(async move {
                let store = Store::connect(&url).await.unwrap();
                let mut tm = setup().trigger_manager(store.clone());
                let mut redone = 0;
                // Every worker adds its own events for the same keys, in a different order.
                for round in 0..3 {
                    let mut batch = Vec::new();
                    for k in 0..KEYS {
                        let key = (k + worker * 7) % KEYS;
                        batch.push(request_event(
                            &format!("w{worker}-r{round}-k{key}"),
                            "x.start",
                            &format!("req-{key}"),
                            t0(),
                        ));
                    }
                    redone += tm.add_events(&batch, t0()).await.unwrap().retries;
                }
                store.close().await;
                redone
            }));
        }
        let mut redone = 0;
        for task in tasks {
            redone += task.await.unwrap();
        }
        if store.backend() == Backend::Postgres {
            // Streams are opened or locked in one ordered pass there: no race to lose, no
            // deadlock, so no batch is redone.
            assert_eq!(redone, 0, "batches redone on PostgreSQL");
        }
        let streams = store
            .list_streams(&StreamFilter {
                trigger_name: Some("request_id".to_owned()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(streams.len(), KEYS);
        assert!(
            streams
                .iter()
                .all(|s| s.event_count == (WORKERS * 3) as i64)
        );
        let mut keys: Vec<&str> = streams
            .iter()
            .map(|s| s.distinguishing_key.as_str())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), KEYS);
    })
    .await;
}

#[tokio::test]
async fn racing_pipeline_managers_fire_each_stream_once() {
    on_server_backends(async |store: Store, db: &TestDb| {
        let mut tm = setup().trigger_manager(store.clone());
        let events: Vec<_> = (0..KEYS)
            .map(|k| request_event(&format!("e{k}"), "x.end", &format!("req-{k}"), t0()))
            .collect();
        tm.add_events(&events, t0()).await.unwrap();
        let now = t0() + Duration::minutes(1);
        let mut tasks = Vec::new();
        for _ in 0..WORKERS {
            let url = db.url.clone();
            tasks.push(tokio::spawn(async move {
                let store = Store::connect(&url).await.unwrap();
                let mut setup = setup();
                setup.settings.batch_size = 5;
                let mut pm = setup.pipeline_manager(store.clone());
                let report = pm.run_until_idle(now).await.unwrap();
                store.close().await;
                report
            }));
        }
        let mut fired = 0;
        for task in tasks {
            let report = task.await.unwrap();
            assert_eq!(report.errors, 0);
            fired += report.fired;
        }
        assert_eq!(fired, KEYS as u64);
        let completed = store
            .count_streams(&StreamFilter {
                state: Some(StreamState::Completed),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(completed, KEYS as i64);
    })
    .await;
}
