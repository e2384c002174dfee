//! Replaying two simulated days of notigen output through config/'s triggers and pipelines.

use std::collections::HashMap;

use chrono::{Duration, TimeZone, Utc};
use tach_notigen::{Envelope, Generator, NotigenConfig};
use tach_store::{Event, EventFilter, Store, StreamFilter, StreamState};
use tach_worker::{Replay, ReplayOptions, far_future};

use tach_store::Backend;

use crate::common::{TestDb, distiller, on_all_backends, setup};
use tach_store::testing::backends;

/// Two days of notigen output, distilled, without the audits emitted at the end of the second
/// day (so that day's usage streams are left unfinished).
fn two_days() -> Vec<Event> {
    let generator = Generator::new(NotigenConfig {
        seed: 7,
        operations_per_hour: 10.0,
        start: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        duration: Some(Duration::days(2)),
        count: None,
        envelope: Envelope::Bare,
    });
    let distiller = distiller();
    let cutoff = Utc.with_ymd_and_hms(2026, 1, 2, 23, 0, 0).unwrap();
    let mut line = String::new();
    let mut events = Vec::new();
    for notification in generator {
        line.clear();
        notification.write_json(Envelope::Bare, &mut line);
        if let Some(event) = distiller.distill_bytes(line.as_bytes()).unwrap()
            && event.timestamp < cutoff
        {
            events.push(event);
        }
    }
    events
}

fn usage_filter(state: Option<StreamState>) -> StreamFilter {
    StreamFilter {
        trigger_name: Some("instance_usage".to_owned()),
        state,
        ..Default::default()
    }
}

#[tokio::test]
async fn two_days_replay_fires_usage_streams_and_drains() {
    let events = two_days();
    let exists = events
        .iter()
        .filter(|e| e.event_type == "compute.instance.exists")
        .count();
    assert!(exists > 0, "notigen emitted no exists");
    on_all_backends(async |store: Store, _db| {
        // As `tach replay` does on this backend (passes beside the next batch on the servers).
        let options = ReplayOptions::for_backend(store.backend(), 500);
        let mut replay = Replay::new(|| setup().pipeline_manager(store.clone()), options);
        for event in events.clone() {
            replay.push(event).await.unwrap();
        }
        let before_drain = replay.finish(None).await.unwrap();
        assert_eq!(before_drain.ingest.stored, events.len() as u64);
        assert!(before_drain.pipelines.fired > 0);
        assert_eq!(before_drain.pipelines.errors, 0);

        // One usage stream per instance per day.
        let streams = store.list_streams(&usage_filter(None)).await.unwrap();
        let mut per_key: HashMap<&str, usize> = HashMap::new();
        for s in &streams {
            *per_key.entry(s.distinguishing_key.as_str()).or_default() += 1;
        }
        assert!(
            per_key.values().all(|&n| n == 1),
            "a key has several streams"
        );

        // Streams fire on their exists event: each fired usage stream holds one.
        let fired: Vec<_> = streams
            .iter()
            .filter(|s| s.state == StreamState::Completed && s.fire_timestamp.is_some())
            .collect();
        assert!(!fired.is_empty());
        for s in fired.iter().take(10) {
            let events = store.stream_events(s.id).await.unwrap();
            let exists = events
                .iter()
                .find(|e| e.event_type == "compute.instance.exists")
                .expect("a fired usage stream without its exists");
            assert!(s.fire_timestamp.unwrap() >= exists.timestamp);
        }

        // The usage handler's events are stored and queryable.
        let audits = store
            .count_events(&EventFilter {
                event_types: vec![
                    "compute.instance.exists.verified".to_owned(),
                    "compute.instance.exists.failed".to_owned(),
                ],
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            audits >= fired.len() as i64,
            "{audits} audits for {} fired",
            fired.len()
        );

        // Unfinished streams expire once time runs out.
        let open = store
            .count_streams(&usage_filter(Some(StreamState::Active)))
            .await
            .unwrap();
        assert!(open > 0, "the second day's streams should still be open");
        let drained = replay.finish(Some(far_future())).await.unwrap();
        assert!(drained.pipelines.expired >= open as u64);
        assert_eq!(drained.pipelines.errors, 0);
        for state in [
            StreamState::Active,
            StreamState::Firing,
            StreamState::Expiring,
        ] {
            let n = store
                .count_streams(&StreamFilter {
                    state: Some(state),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(n, 0, "streams left {state}");
        }

        // Replaying the same notifications again stores nothing new.
        let before = store.count_streams(&StreamFilter::default()).await.unwrap();
        let mut again = Replay::new(|| setup().pipeline_manager(store.clone()), options);
        for event in events.clone() {
            again.push(event).await.unwrap();
        }
        let totals = again.finish(Some(far_future())).await.unwrap();
        assert_eq!(totals.ingest.stored, 0);
        assert_eq!(totals.ingest.duplicates, events.len() as u64);
        assert_eq!(totals.ingest.streams_created, 0);
        assert_eq!(
            store.count_streams(&StreamFilter::default()).await.unwrap(),
            before
        );
    })
    .await;
}

/// Every stream of the store as (trigger, distinguishing key, message ids), sorted.
async fn partition(store: &Store) -> Vec<(String, String, Vec<String>)> {
    let streams = store.list_streams(&StreamFilter::default()).await.unwrap();
    let ids: Vec<i64> = streams.iter().map(|s| s.id).collect();
    let events = store.streams_events(&ids).await.unwrap();
    let mut all: Vec<_> = streams
        .into_iter()
        .zip(events)
        .map(|(s, events)| {
            let mut ids: Vec<String> = events.into_iter().map(|e| e.message_id).collect();
            ids.sort();
            (s.trigger_name, s.distinguishing_key, ids)
        })
        .collect();
    all.sort();
    all
}

/// A replay's streams do not depend on where its batches end: expiry and fire times are
/// checked at each event's time, not at the pipeline passes between batches.
#[tokio::test]
async fn streams_do_not_depend_on_the_batch_size() {
    let events = two_days();
    let mut partitions = Vec::new();
    for batch_size in [1000, 7] {
        let db = TestDb::create(Backend::Sqlite).await;
        let store = Store::connect(&db.url).await.unwrap();
        store.migrate().await.unwrap();
        let options = ReplayOptions {
            batch_size,
            writers: 1,
            overlap_passes: false,
        };
        let mut replay = Replay::new(|| setup().pipeline_manager(store.clone()), options);
        for event in events.clone() {
            replay.push(event).await.unwrap();
        }
        let totals = replay.finish(Some(far_future())).await.unwrap();
        assert_eq!(totals.pipelines.errors, 0);
        partitions.push((totals.ingest.streams_created, partition(&store).await));
        store.close().await;
        db.drop_db().await;
    }
    let (big, small) = (&partitions[0], &partitions[1]);
    assert!(big.0 > 0);
    assert_eq!(big.0, small.0, "streams created");
    assert!(big.1 == small.1, "the streams differ");
}

/// Several writers split each batch among concurrent transactions, and each batch's passes run
/// while the next batch is written, yet they make the same streams, with the same events, as
/// one writer running the passes after each batch, on every backend.
#[tokio::test]
async fn streams_do_not_depend_on_the_writers() {
    let events = two_days();
    for backend in backends() {
        eprintln!("--- {backend}");
        let mut results = Vec::new();
        for (writers, overlap_passes) in [(1, false), (3, true)] {
            let db = TestDb::create(backend).await;
            let store = Store::connect(&db.url).await.unwrap();
            store.migrate().await.unwrap();
            let options = ReplayOptions {
                batch_size: 400,
                writers,
                overlap_passes,
            };
            let mut replay = Replay::new(|| setup().pipeline_manager(store.clone()), options);
            assert_eq!(replay.writers(), writers);
            for event in events.clone() {
                replay.push(event).await.unwrap();
            }
            let totals = replay.finish(Some(far_future())).await.unwrap();
            assert_eq!(totals.pipelines.errors, 0);
            assert_eq!(totals.ingest.stored, events.len() as u64);
            let counters = replay.counters();
            let fired: u64 = (0..2).map(|t| counters.trigger(t).unwrap().fired).sum();
            assert_eq!(fired, totals.pipelines.fired, "counters of every writer");
            results.push((
                totals.ingest.streams_created,
                totals.pipelines.fired,
                totals.pipelines.expired,
                partition(&store).await,
            ));
            store.close().await;
            db.drop_db().await;
        }
        let (one, several) = (&results[0], &results[1]);
        assert!(one.0 > 0 && one.1 > 0 && one.2 > 0);
        assert_eq!(
            (one.0, one.1, one.2),
            (several.0, several.1, several.2),
            "streams created, fired, expired"
        );
        assert!(one.3 == several.3, "the streams differ on {backend}");
    }
}
