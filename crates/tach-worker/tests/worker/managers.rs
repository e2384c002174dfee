//! The trigger manager and pipeline manager on hand-made events (config/'s request_id trigger).

use chrono::{DateTime, Duration, TimeZone, Utc};
use tach_store::{Event, Store, StreamFilter, StreamState, Trait, TraitValue};

use crate::common::{on_all_backends, setup};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// An event carrying only a request_id (so only the request_id trigger takes it).
pub fn request_event(id: &str, event_type: &str, request_id: &str, at: DateTime<Utc>) -> Event {
    Event {
        message_id: id.to_owned(),
        event_type: event_type.to_owned(),
        timestamp: at,
        traits: vec![Trait {
            name: "request_id".to_owned(),
            value: TraitValue::Text(request_id.to_owned()),
        }],
    }
}

pub async fn request_streams(store: &Store, request_id: &str) -> Vec<tach_store::StreamRow> {
    store
        .list_streams(&StreamFilter {
            trigger_name: Some("request_id".to_owned()),
            distinguishing_traits: vec![("request_id".to_owned(), request_id.to_owned())],
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn events_go_to_one_stream_per_key_and_duplicates_are_skipped() {
    on_all_backends(async |store: Store, _db| {
        let mut tm = setup().trigger_manager(store.clone());
        let report = tm
            .add_events(
                &[
                    request_event("m1", "compute.instance.create.start", "r1", t0()),
                    request_event("m2", "compute.instance.create.start", "r2", t0()),
                    request_event("m1", "compute.instance.create.start", "r1", t0()),
                ],
                t0(),
            )
            .await
            .unwrap();
        assert_eq!(report.stored, 2);
        assert_eq!(report.duplicates, 1);
        assert_eq!(report.streams_created, 2);
        assert_eq!(report.stream_events, 2);
        assert_eq!(report.ready_to_fire, 0);

        let at = t0() + Duration::seconds(1);
        let report = tm
            .add_events(
                &[
                    request_event("m3", "compute.instance.create.end", "r1", at),
                    request_event("m2", "compute.instance.create.start", "r2", t0()),
                ],
                at,
            )
            .await
            .unwrap();
        assert_eq!(report.stored, 1);
        assert_eq!(report.duplicates, 1);
        assert_eq!(report.streams_created, 0);
        assert_eq!(report.ready_to_fire, 1);

        let r1 = request_streams(&store, "r1").await;
        assert_eq!(r1.len(), 1);
        assert_eq!(r1[0].event_count, 2);
        assert_eq!(r1[0].first_event, t0());
        assert_eq!(r1[0].last_event, at);
        assert_eq!(r1[0].expire_timestamp, at + Duration::minutes(10));
        // fire_delay: 30 seconds after the clock time the fire criteria were met.
        assert_eq!(r1[0].fire_timestamp, Some(at + Duration::seconds(30)));
        let counters = tm.counters().trigger(1).unwrap();
        assert_eq!(counters.new_streams, 2);
        assert_eq!(counters.added_events, 3);
        assert_eq!(counters.ready_to_fire, 1);
        // One fire check per added event, whichever way the backend opens streams (PostgreSQL
        // starts them before it knows it opens them, and counts them once).
        assert_eq!(counters.fire_checks, 3);
        assert_eq!(counters.fire_passed, 1);
    })
    .await;
}

#[tokio::test]
async fn an_expired_open_stream_is_detached_and_a_new_one_opens() {
    on_all_backends(async |store: Store, _db| {
        let mut tm = setup().trigger_manager(store.clone());
        tm.add_events(&[request_event("a1", "x.start", "r3", t0())], t0())
            .await
            .unwrap();
        let later = t0() + Duration::minutes(15);
        let report = tm
            .add_events(&[request_event("a2", "x.start", "r3", later)], later)
            .await
            .unwrap();
        assert_eq!(report.streams_detached, 1);
        assert_eq!(report.streams_created, 1);
        let streams = request_streams(&store, "r3").await;
        assert_eq!(streams.len(), 2);
        assert_eq!(streams.iter().filter(|s| s.attached).count(), 1);
        assert!(streams.iter().all(|s| s.event_count == 1));

        // Within one batch: the second event comes after the first stream's expiry.
        let at = t0() + Duration::hours(1);
        let report = tm
            .add_events(
                &[
                    request_event("b1", "x.start", "r4", t0()),
                    request_event("b2", "x.start", "r4", at),
                ],
                at,
            )
            .await
            .unwrap();
        assert_eq!(report.streams_created, 2);
        assert_eq!(report.streams_detached, 1);
        assert_eq!(request_streams(&store, "r4").await.len(), 2);
    })
    .await;
}

/// The message ids of each stream of `request_id`, oldest stream first, and whether each
/// still holds its key.
async fn chain(store: &Store, request_id: &str) -> Vec<(Vec<String>, bool, i64)> {
    let mut streams = request_streams(store, request_id).await;
    streams.sort_by_key(|s| s.first_event);
    let ids: Vec<i64> = streams.iter().map(|s| s.id).collect();
    let events = store.streams_events(&ids).await.unwrap();
    streams
        .iter()
        .zip(events)
        .map(|(s, events)| {
            let ids = events.into_iter().map(|e| e.message_id).collect();
            (ids, s.attached, s.event_count)
        })
        .collect()
}

#[tokio::test]
async fn streams_expiring_within_a_batch_are_replaced_in_a_chain() {
    on_all_backends(async |store: Store, _db| {
        let mut tm = setup().trigger_manager(store.clone());
        let m = |n: i64| t0() + Duration::minutes(n);
        // r6 has a stored stream that the next batch finds expired (request_id: $last + 10m).
        tm.add_events_event_time(&[request_event("c0", "x.start", "r6", m(0))], m(0))
            .await
            .unwrap();
        let report = tm
            .add_events_event_time(
                &[
                    request_event("a1", "x.start", "r5", m(0)),
                    request_event("a2", "x.update", "r5", m(1)),
                    // r6's stored stream expired at m10: a new stream.
                    request_event("c1", "x.update", "r6", m(20)),
                    // r5's first stream expired at m11: a successor, which a4 joins.
                    request_event("a3", "x.update", "r5", m(20)),
                    request_event("a4", "x.update", "r5", m(21)),
                    // Successors of successors.
                    request_event("c2", "x.update", "r6", m(40)),
                    request_event("a5", "x.update", "r5", m(40)),
                    request_event("a6", "x.update", "r5", m(60)),
                    request_event("a7", "x.update", "r5", m(61)),
                ],
                m(0),
            )
            .await
            .unwrap();
        assert_eq!(report.streams_created, 6);
        assert_eq!(report.streams_detached, 5);
        assert_eq!(report.stream_events, 9);
        let owned = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            chain(&store, "r5").await,
            [
                (owned(&["a1", "a2"]), false, 2),
                (owned(&["a3", "a4"]), false, 2),
                (owned(&["a5"]), false, 1),
                (owned(&["a6", "a7"]), true, 2),
            ]
        );
        assert_eq!(
            chain(&store, "r6").await,
            [
                (owned(&["c0"]), false, 1),
                (owned(&["c1"]), false, 1),
                (owned(&["c2"]), true, 1),
            ]
        );
        let last = request_streams(&store, "r5")
            .await
            .into_iter()
            .find(|s| s.attached)
            .unwrap();
        assert_eq!((last.first_event, last.last_event), (m(60), m(61)));
        assert_eq!(last.expire_timestamp, m(71));

        // The next batch finds the chain's last stream open and adds to it.
        let report = tm
            .add_events_event_time(&[request_event("a8", "x.end", "r5", m(62))], m(62))
            .await
            .unwrap();
        assert_eq!((report.streams_created, report.streams_detached), (0, 0));
        assert_eq!(
            chain(&store, "r5").await[3],
            (owned(&["a6", "a7", "a8"]), true, 3)
        );
    })
    .await;
}

/// On the event-time clock a stream stops taking events at its fire time (request_id fires 30 s
/// after its `*.end`), as if a worker had fired it then; live, it takes them until one does.
#[tokio::test]
async fn on_the_event_time_clock_a_stream_closes_at_its_fire_time() {
    on_all_backends(async |store: Store, _db| {
        let mut tm = setup().trigger_manager(store.clone());
        let s = |n: i64| t0() + Duration::seconds(n);
        let owned = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

        // Within the batch that made it ready: f3 comes before the fire time, f4 after.
        let report = tm
            .add_events_event_time(
                &[
                    request_event("f1", "x.start", "r7", s(0)),
                    request_event("f2", "x.end", "r7", s(1)),
                    request_event("f3", "x.update", "r7", s(20)),
                    request_event("f4", "x.update", "r7", s(40)),
                ],
                s(0),
            )
            .await
            .unwrap();
        assert_eq!(
            (
                report.streams_created,
                report.streams_detached,
                report.ready_to_fire
            ),
            (2, 1, 1)
        );
        let r7 = chain(&store, "r7").await;
        assert_eq!(
            r7,
            [
                (owned(&["f1", "f2", "f3"]), false, 3),
                (owned(&["f4"]), true, 1),
            ]
        );
        let fired = request_streams(&store, "r7").await;
        let first = fired.iter().find(|s| !s.attached).unwrap();
        assert_eq!(
            first.state,
            StreamState::Active,
            "left for a worker to fire"
        );
        assert_eq!(first.fire_timestamp, Some(s(31)));

        // A stored stream found past its fire time by a later batch.
        tm.add_events_event_time(
            &[
                request_event("g1", "x.start", "r8", s(0)),
                request_event("g2", "x.end", "r8", s(1)),
            ],
            s(0),
        )
        .await
        .unwrap();
        let report = tm
            .add_events_event_time(&[request_event("g3", "x.update", "r8", s(45))], s(45))
            .await
            .unwrap();
        assert_eq!((report.streams_created, report.streams_detached), (1, 1));
        assert_eq!(
            chain(&store, "r8").await,
            [(owned(&["g1", "g2"]), false, 2), (owned(&["g3"]), true, 1),]
        );

        // Live, the same events stay in one stream until a worker fires it.
        tm.add_events(
            &[
                request_event("h1", "x.start", "r9", s(0)),
                request_event("h2", "x.end", "r9", s(1)),
            ],
            s(1),
        )
        .await
        .unwrap();
        let report = tm
            .add_events(&[request_event("h3", "x.update", "r9", s(45))], s(45))
            .await
            .unwrap();
        assert_eq!((report.streams_created, report.streams_detached), (0, 0));
        assert_eq!(
            chain(&store, "r9").await,
            [(owned(&["h1", "h2", "h3"]), true, 3)]
        );
    })
    .await;
}

#[tokio::test]
async fn streams_fire_and_expire_when_due_and_completed_streams_take_no_events() {
    on_all_backends(async |store: Store, _db| {
        let setup = setup();
        let mut pm = setup.pipeline_manager(store.clone());
        let at = t0() + Duration::seconds(1);
        pm.trigger_manager()
            .add_events(
                &[
                    request_event("m1", "compute.instance.create.start", "r1", t0()),
                    request_event("m2", "compute.instance.create.start", "r2", t0()),
                    request_event("m3", "compute.instance.create.end", "r1", at),
                ],
                at,
            )
            .await
            .unwrap();
        let pass = pm.run_once(at + Duration::seconds(10)).await.unwrap();
        assert_eq!((pass.fired, pass.expired, pass.errors), (0, 0, 0));
        let pass = pm.run_once(at + Duration::seconds(30)).await.unwrap();
        assert_eq!((pass.fired, pass.expired, pass.errors), (1, 0, 0));
        let r1 = request_streams(&store, "r1").await;
        assert_eq!(r1[0].state, StreamState::Completed);
        assert!(!r1[0].attached);
        assert_eq!(
            request_streams(&store, "r2").await[0].state,
            StreamState::Active
        );

        let pass = pm.run_once(t0() + Duration::minutes(11)).await.unwrap();
        assert_eq!((pass.fired, pass.expired, pass.errors), (0, 1, 0));
        assert_eq!(
            request_streams(&store, "r2").await[0].state,
            StreamState::Completed
        );
        let pass = pm.run_once(t0() + Duration::minutes(12)).await.unwrap();
        assert_eq!(pass.handled(), 0);

        let late = t0() + Duration::minutes(20);
        let report = pm
            .trigger_manager()
            .add_events(&[request_event("m4", "x.start", "r1", late)], late)
            .await
            .unwrap();
        assert_eq!(report.streams_created, 1);
        let r1 = request_streams(&store, "r1").await;
        assert_eq!(r1.len(), 2);
        let counters = pm.trigger_manager().counters().trigger(1).unwrap();
        assert_eq!(
            (counters.fired, counters.expired, counters.errors),
            (1, 1, 0)
        );
    })
    .await;
}

#[tokio::test]
async fn purge_completed_streams_deletes_them() {
    on_all_backends(async |store: Store, _db| {
        let mut setup = setup();
        setup.settings.purge_completed_streams = true;
        let mut pm = setup.pipeline_manager(store.clone());
        pm.trigger_manager()
            .add_events(&[request_event("m1", "x.end", "r1", t0())], t0())
            .await
            .unwrap();
        let pass = pm.run_once(t0() + Duration::minutes(1)).await.unwrap();
        assert_eq!(pass.fired, 1);
        assert!(request_streams(&store, "r1").await.is_empty());
        assert!(store.get_event("m1").await.unwrap().is_some());
    })
    .await;
}

/// A handler that always fails.
struct Failing;

impl tach_engine::Handler for Failing {
    fn handle(
        &mut self,
        _events: Vec<Event>,
        _env: &mut tach_engine::Environment,
    ) -> Result<Vec<Event>, tach_engine::HandlerError> {
        Err(tach_engine::HandlerError::Failed {
            handler: "failing".to_owned(),
            reason: "on purpose".to_owned(),
        })
    }
}

#[tokio::test]
async fn a_failing_pipeline_leaves_the_stream_in_error_and_reset_retries_it() {
    on_all_backends(async |store: Store, _db| {
        let mut setup = setup();
        let mut registry = tach_engine::HandlerRegistry::with_builtins();
        registry.register("logger", |_params: &serde_json::Value| {
            Ok(Box::new(Failing) as Box<dyn tach_engine::Handler>)
        });
        setup.registry = std::sync::Arc::new(registry);
        let mut pm = setup.pipeline_manager(store.clone());
        pm.trigger_manager()
            .add_events(
                &[
                    request_event("m1", "x.end", "r1", t0()),
                    request_event("m2", "x.start", "r2", t0()),
                ],
                t0(),
            )
            .await
            .unwrap();
        let pass = pm.run_until_idle(t0() + Duration::hours(1)).await.unwrap();
        assert_eq!((pass.fired, pass.expired, pass.errors), (0, 0, 2));
        let r1 = &request_streams(&store, "r1").await[0];
        assert_eq!(r1.state, StreamState::Error);
        assert_eq!(
            r1.error.as_deref(),
            Some("pipeline `request_fire`, handler `logger`: handler `failing` failed: on purpose")
        );
        let r2 = &request_streams(&store, "r2").await[0];
        assert_eq!(r2.state, StreamState::ExpireError);

        // Reset, then a working worker fires it again.
        store.reset_stream(r1.id).await.unwrap();
        let mut pm = crate::common::setup().pipeline_manager(store.clone());
        let pass = pm.run_once(t0() + Duration::hours(1)).await.unwrap();
        assert_eq!(pass.fired, 1);
        assert_eq!(
            request_streams(&store, "r1").await[0].state,
            StreamState::Completed
        );
    })
    .await;
}

/// For each stream a pipeline ran on, the message ids of its events and their trait counts.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<Vec<(String, usize)>>>>;

/// A handler that records the traits of the events it is given (for each stream, in order).
struct Recorder {
    reads_traits: bool,
    seen: Seen,
}

impl tach_engine::Handler for Recorder {
    fn handle(
        &mut self,
        events: Vec<Event>,
        _env: &mut tach_engine::Environment,
    ) -> Result<Vec<Event>, tach_engine::HandlerError> {
        let seen = events
            .iter()
            .map(|e| (e.message_id.clone(), e.traits.len()))
            .collect();
        self.seen.lock().unwrap().push(seen);
        Ok(events)
    }

    fn reads_traits(&self) -> bool {
        self.reads_traits
    }
}

/// The built-in handlers with `logger` replaced by a [`Recorder`] into `seen`.
fn recording_logger(
    reads_traits: bool,
    seen: &Seen,
) -> std::sync::Arc<tach_engine::HandlerRegistry> {
    let mut registry = tach_engine::HandlerRegistry::with_builtins();
    let seen = std::sync::Arc::clone(seen);
    registry.register("logger", move |_params: &serde_json::Value| {
        Ok(Box::new(Recorder {
            reads_traits,
            seen: std::sync::Arc::clone(&seen),
        }) as Box<dyn tach_engine::Handler>)
    });
    std::sync::Arc::new(registry)
}

#[tokio::test]
async fn pipelines_that_do_not_read_traits_get_their_events_without_them() {
    on_all_backends(async |store: Store, _db| {
        for (reads_traits, traits) in [(false, 0), (true, 1)] {
            let seen = Seen::default();
            let mut setup = setup();
            setup.registry = recording_logger(reads_traits, &seen);
            let mut pm = setup.pipeline_manager(store.clone());
            let (a, b) = (format!("a-{reads_traits}"), format!("b-{reads_traits}"));
            let request = format!("r-{reads_traits}");
            pm.trigger_manager()
                .add_events(
                    &[
                        request_event(&a, "x.start", &request, t0()),
                        request_event(&b, "x.end", &request, t0() + Duration::seconds(1)),
                    ],
                    t0(),
                )
                .await
                .unwrap();
            let pass = pm
                .run_until_idle(t0() + Duration::minutes(1))
                .await
                .unwrap();
            assert_eq!(pass.fired, 1);
            let seen = seen.lock().unwrap().clone();
            assert_eq!(seen, vec![vec![(a, traits), (b, traits)]], "{reads_traits}");
        }

        // One pass over both kinds: an event in an instance_usage stream (whose pipeline runs
        // `usage`, which reads traits) and in a request_id stream (logger only, which holds one
        // more event) expires in both.
        let seen = Seen::default();
        let mut setup = setup();
        setup.registry = recording_logger(false, &seen);
        let mut pm = setup.pipeline_manager(store.clone());
        let mut event = request_event("both", "compute.instance.update", "r-both", t0());
        event.traits.push(Trait {
            name: "instance_id".to_owned(),
            value: TraitValue::Text("i-both".to_owned()),
        });
        let other = request_event("other", "image.update", "r-both", t0());
        pm.trigger_manager()
            .add_events(&[event, other], t0())
            .await
            .unwrap();
        let pass = pm.run_until_idle(t0() + Duration::days(3)).await.unwrap();
        assert_eq!(pass.expired + pass.errors, 2, "{pass:?}");
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        let (both, other) = ("both".to_owned(), "other".to_owned());
        assert_eq!(
            seen,
            vec![vec![(both.clone(), 0), (other, 0)], vec![(both, 2)]]
        );
    })
    .await;
}
