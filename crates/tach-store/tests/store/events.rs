//! Storing events: duplicates, batching and exact round trips of every trait type.

use chrono::{Duration, TimeZone, Utc};
use tach_store::{Event, EventFilter, Store, Trait, TraitValue};

use crate::common::{event, on_all_backends, store_events, t};

#[tokio::test]
async fn duplicates_in_batch_and_across_batches_get_none() {
    on_all_backends(async |store: Store| {
        let a = event("a", "compute.instance.create.end", t(0));
        let b = event("b", "compute.instance.create.end", t(1));
        let c = event("c", "compute.instance.delete.end", t(2));
        let ids = store_events(&store, &[a.clone(), b.clone(), a.clone()]).await;
        assert!(ids[0].is_some() && ids[1].is_some() && ids[0] != ids[1]);
        assert_eq!(ids[2], None, "in-batch duplicate");

        // Cross-batch duplicates in the same transaction as a new event: the transaction goes on.
        let mut tx = store.begin().await.unwrap();
        let ids2 = tx
            .insert_events(&[b.clone(), c.clone(), a.clone()])
            .await
            .unwrap();
        assert_eq!(ids2[0], None);
        assert!(ids2[1].is_some());
        assert_eq!(ids2[2], None);
        let again = tx.insert_events(std::slice::from_ref(&c)).await.unwrap();
        assert_eq!(
            again,
            [None],
            "duplicate of an uncommitted insert in the same transaction"
        );
        tx.commit().await.unwrap();

        let all = store.list_events(&EventFilter::default()).await.unwrap();
        assert_eq!(all.len(), 3);
        let got = store.get_event("c").await.unwrap().unwrap();
        assert_eq!(Some(got.id), ids2[1]);
        assert_eq!(got.event, sorted(c));
        assert_eq!(store.get_event("zzz").await.unwrap(), None);
    })
    .await;
}

fn sorted(mut e: Event) -> Event {
    e.traits.sort_by(|a, b| a.name.cmp(&b.name));
    e
}

#[tokio::test]
async fn every_trait_type_round_trips_exactly() {
    on_all_backends(async |store: Store| {
        let long: String = "ünïcödé ✓ 日本語 🚀 ".repeat(100);
        assert!(long.chars().count() > 1000);
        let when = Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 59).unwrap()
            + Duration::microseconds(123_456);
        let e = Event {
            message_id: "m-1".into(),
            event_type: "compute.instance.exists".into(),
            timestamp: Utc.with_ymd_and_hms(2014, 7, 1, 12, 34, 56).unwrap()
                + Duration::microseconds(987_654),
            traits: vec![
                Trait {
                    name: "a_text".into(),
                    value: TraitValue::Text(long.clone()),
                },
                Trait {
                    name: "b_empty".into(),
                    value: TraitValue::Text(String::new()),
                },
                Trait {
                    name: "c_int".into(),
                    value: TraitValue::Int(i64::MIN),
                },
                Trait {
                    name: "d_int".into(),
                    value: TraitValue::Int(i64::MAX),
                },
                Trait {
                    name: "e_float".into(),
                    value: TraitValue::Float(0.1 + 0.2),
                },
                Trait {
                    name: "f_float".into(),
                    value: TraitValue::Float(-1.5e-300),
                },
                Trait {
                    name: "g_dt".into(),
                    value: TraitValue::Datetime(when),
                },
                Trait {
                    name: "h_old".into(),
                    value: TraitValue::Datetime(Utc.timestamp_opt(-86_400, 1_000).unwrap()),
                },
            ],
        };
        store_events(&store, std::slice::from_ref(&e)).await;
        let got = store.get_event("m-1").await.unwrap().unwrap().event;
        assert_eq!(got, e);
        // Found again by the full long text, through the prefix index.
        let f = EventFilter {
            traits: vec![("a_text".into(), long.clone())],
            ..Default::default()
        };
        assert_eq!(store.count_events(&f).await.unwrap(), 1);
    })
    .await;
}

#[tokio::test]
async fn large_batches_are_split_and_all_stored() {
    on_all_backends(async |store: Store| {
        let events: Vec<Event> = (0..1500)
            .map(|i| event(&format!("m{i:05}"), "x.y", t(i)))
            .collect();
        let ids = store_events(&store, &events).await;
        assert_eq!(ids.iter().flatten().count(), 1500);
        let mut distinct: Vec<i64> = ids.iter().flatten().copied().collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 1500);
        // Ids belong to the right events.
        let got = store.get_event("m00777").await.unwrap().unwrap();
        assert_eq!(Some(got.id), ids[777]);
        assert_eq!(got.event.traits.len(), 2);
        assert_eq!(
            store.count_events(&EventFilter::default()).await.unwrap(),
            1500
        );
        // A large batch with stored events mixed in: the new ones, and only they, get ids, and
        // each id is its own event's.
        let mixed: Vec<Event> = (0..1500)
            .map(|i| {
                let n = if i % 3 == 0 { i } else { 10_000 + i };
                event(&format!("m{n:05}"), "x.y", t(i))
            })
            .collect();
        let mixed_ids = store_events(&store, &mixed).await;
        let everything = EventFilter {
            limit: Some(5000),
            ..Default::default()
        };
        let stored: std::collections::HashMap<String, i64> = store
            .list_events(&everything)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.event.message_id, e.id))
            .collect();
        assert_eq!(stored.len(), 2500);
        for (i, (e, id)) in mixed.iter().zip(&mixed_ids).enumerate() {
            if i % 3 == 0 {
                assert_eq!(*id, None, "{} was stored before", e.message_id);
            } else {
                assert_eq!(*id, stored.get(&e.message_id).copied(), "{}", e.message_id);
            }
        }
        for (e, id) in events.iter().zip(&ids) {
            assert_eq!(*id, stored.get(&e.message_id).copied(), "{}", e.message_id);
        }
    })
    .await;
}

#[tokio::test]
async fn rollback_discards_events() {
    on_all_backends(async |store: Store| {
        let mut tx = store.begin().await.unwrap();
        tx.insert_events(&[event("r", "x", t(0))]).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(store.get_event("r").await.unwrap(), None);
        // And the message id is free again.
        assert!(store_events(&store, &[event("r", "x", t(0))]).await[0].is_some());
    })
    .await;
}
