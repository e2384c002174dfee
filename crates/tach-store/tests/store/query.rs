//! The API's read side: every filter and paging in both directions.

use tach_store::{Direction, DistValue, EventFilter, Store, StreamFilter, StreamState, TraitValue};

use crate::common::{create_stream, ev, new_stream, on_all_backends, store_events, t};

async fn ids(store: &Store, f: &EventFilter) -> Vec<String> {
    store
        .list_events(f)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.message_id)
        .collect()
}

#[tokio::test]
async fn event_filters_and_paging() {
    on_all_backends(async |store: Store| {
        let events = vec![
            ev(
                "e0",
                "compute.instance.create.start",
                0,
                vec![("tenant", TraitValue::Text("t1".into()))],
            ),
            ev(
                "e1",
                "compute.instance.create.end",
                10,
                vec![("memory_mb", TraitValue::Int(5))],
            ),
            ev(
                "e2",
                "compute.instance.delete.end",
                20,
                vec![("ratio", TraitValue::Float(5.0))],
            ),
            ev(
                "e3",
                "image.upload",
                30,
                vec![("launched_at", TraitValue::Datetime(t(3)))],
            ),
            ev(
                "e4",
                "compute_instance%end",
                40,
                vec![("tenant", TraitValue::Text("5".into()))],
            ),
        ];
        let stored = store_events(&store, &events).await;
        let all = EventFilter::default();
        assert_eq!(ids(&store, &all).await, ["e4", "e3", "e2", "e1", "e0"]);

        // from is exclusive, to inclusive (as winchester).
        let f = EventFilter {
            from: Some(t(10)),
            to: Some(t(30)),
            ..Default::default()
        };
        assert_eq!(ids(&store, &f).await, ["e3", "e2"]);
        assert_eq!(store.count_events(&f).await.unwrap(), 2);

        let f = EventFilter {
            event_types: vec!["compute.instance.*.end".into()],
            ..Default::default()
        };
        assert_eq!(
            ids(&store, &f).await,
            ["e2", "e1"],
            "glob; % in the data is not a wildcard"
        );
        let f = EventFilter {
            event_types: vec![
                "image.upload".into(),
                "compute.instance.create.st?rt".into(),
            ],
            ..Default::default()
        };
        assert_eq!(ids(&store, &f).await, ["e3", "e0"]);
        let f = EventFilter {
            event_types: vec!["compute_instance%end".into()],
            ..Default::default()
        };
        assert_eq!(ids(&store, &f).await, ["e4"]);
        let f = EventFilter {
            event_types: vec!["COMPUTE.*".into()],
            ..Default::default()
        };
        assert!(ids(&store, &f).await.is_empty(), "case-sensitive");

        // Trait values match as text or typed.
        let by = |n: &str, v: &str| EventFilter {
            traits: vec![(n.into(), v.into())],
            ..Default::default()
        };
        assert_eq!(ids(&store, &by("tenant", "t1")).await, ["e0"]);
        assert_eq!(ids(&store, &by("tenant", "5")).await, ["e4"]);
        assert_eq!(ids(&store, &by("memory_mb", "5")).await, ["e1"]);
        assert_eq!(ids(&store, &by("ratio", "5")).await, ["e2"]);
        assert_eq!(ids(&store, &by("ratio", "5.0")).await, ["e2"]);
        assert_eq!(
            ids(&store, &by("launched_at", "2014-07-01 12:00:03")).await,
            ["e3"]
        );
        assert_eq!(
            ids(&store, &by("launched_at", "2014-07-01T12:00:03Z")).await,
            ["e3"]
        );
        assert!(ids(&store, &by("memory_mb", "6")).await.is_empty());
        assert!(ids(&store, &by("nope", "5")).await.is_empty());
        let f = EventFilter {
            traits: vec![
                ("tenant".into(), "5".into()),
                ("tenant".into(), "t1".into()),
            ],
            ..Default::default()
        };
        assert!(
            ids(&store, &f).await.is_empty(),
            "all trait filters must match"
        );
        assert_eq!(store.count_events(&by("tenant", "5")).await.unwrap(), 1);

        // Paging: descending below the mark, ascending above it.
        let id_of = |i: usize| stored[i].unwrap();
        let f = EventFilter {
            limit: Some(2),
            ..Default::default()
        };
        assert_eq!(ids(&store, &f).await, ["e4", "e3"]);
        let f = EventFilter {
            limit: Some(2),
            mark: Some(id_of(3)),
            ..Default::default()
        };
        assert_eq!(ids(&store, &f).await, ["e2", "e1"]);
        let f = EventFilter {
            limit: Some(2),
            direction: Direction::Asc,
            ..Default::default()
        };
        assert_eq!(ids(&store, &f).await, ["e0", "e1"]);
        let f = EventFilter {
            limit: Some(2),
            direction: Direction::Asc,
            mark: Some(id_of(1)),
            ..Default::default()
        };
        let page = store.list_events(&f).await.unwrap();
        assert_eq!(
            page.iter().map(|e| e.id).collect::<Vec<_>>(),
            [id_of(2), id_of(3)]
        );
        assert_eq!(page[0].event, events[2]);
    })
    .await;
}

async fn stream_ids(store: &Store, f: &StreamFilter) -> Vec<i64> {
    store
        .list_streams(f)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect()
}

#[tokio::test]
async fn stream_filters_and_paging() {
    on_all_backends(async |store: Store| {
        let ev_ids = store_events(
            &store,
            &[ev("x0", "a", 0, vec![]), ev("x1", "a", 5, vec![])],
        )
        .await;
        let mut a = new_stream("usage", "a", t(0));
        a.last_event = t(100);
        a.distinguishing_traits = vec![
            ("instance_id".into(), DistValue::Text("abc".into())),
            (
                "timestamp".into(),
                DistValue::Range {
                    begin: t(0),
                    end: t(86_400),
                },
            ),
        ];
        let s_a = create_stream(&store, a, &[ev_ids[0].unwrap(), ev_ids[1].unwrap()]).await;
        let mut b = new_stream("usage", "b", t(1000));
        b.distinguishing_traits = vec![("instance_id".into(), DistValue::Text("def".into()))];
        let s_b = create_stream(&store, b, &[]).await;
        let mut c = new_stream("other", "c", t(2000));
        c.distinguishing_traits = vec![("cell".into(), DistValue::Int(42))];
        let s_c = create_stream(&store, c, &[]).await;
        assert!(
            store
                .set_stream_state(s_b, StreamState::Active, StreamState::Error, Some("e"))
                .await
                .unwrap()
        );

        let all = StreamFilter::default();
        assert_eq!(stream_ids(&store, &all).await, [s_c, s_b, s_a]);
        assert_eq!(store.count_streams(&all).await.unwrap(), 3);
        let f = StreamFilter {
            older_than: Some(t(1000)),
            ..Default::default()
        };
        assert_eq!(stream_ids(&store, &f).await, [s_a]);
        let f = StreamFilter {
            younger_than: Some(t(100)),
            ..Default::default()
        };
        assert_eq!(stream_ids(&store, &f).await, [s_c, s_b]);
        let f = StreamFilter {
            state: Some(StreamState::Error),
            ..Default::default()
        };
        assert_eq!(stream_ids(&store, &f).await, [s_b]);
        let f = StreamFilter {
            trigger_name: Some("usage".into()),
            ..Default::default()
        };
        assert_eq!(stream_ids(&store, &f).await, [s_b, s_a]);
        assert_eq!(store.count_streams(&f).await.unwrap(), 2);

        let dist = |n: &str, v: &str| StreamFilter {
            distinguishing_traits: vec![(n.into(), v.into())],
            ..Default::default()
        };
        assert_eq!(stream_ids(&store, &dist("instance_id", "abc")).await, [s_a]);
        assert_eq!(stream_ids(&store, &dist("cell", "42")).await, [s_c]);
        assert_eq!(
            stream_ids(&store, &dist("timestamp", "2014-07-01 18:00:00")).await,
            [s_a]
        );
        assert!(
            stream_ids(&store, &dist("timestamp", "2014-07-02 12:00:00"))
                .await
                .is_empty()
        );
        assert!(
            stream_ids(&store, &dist("instance_id", "zzz"))
                .await
                .is_empty()
        );

        // Paging both ways.
        let f = StreamFilter {
            limit: Some(1),
            mark: Some(s_c),
            ..Default::default()
        };
        assert_eq!(stream_ids(&store, &f).await, [s_b]);
        let f = StreamFilter {
            limit: Some(5),
            direction: Direction::Asc,
            mark: Some(s_a),
            ..Default::default()
        };
        assert_eq!(stream_ids(&store, &f).await, [s_b, s_c]);

        // Details load the events, sorted by time; without, none.
        let f = StreamFilter {
            trigger_name: Some("usage".into()),
            details: true,
            ..Default::default()
        };
        let got = store.list_streams(&f).await.unwrap();
        let a_row = got.iter().find(|s| s.id == s_a).unwrap();
        let names: Vec<&str> = a_row
            .events
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| e.message_id.as_str())
            .collect();
        assert_eq!(names, ["x0", "x1"]);
        assert_eq!(a_row.distinguishing_traits.len(), 2);
        assert!(
            store
                .list_streams(&all)
                .await
                .unwrap()
                .iter()
                .all(|s| s.events.is_none())
        );
    })
    .await;
}
