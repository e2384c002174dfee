//! `GET /v1/events`, its count and single events.

use axum::http::{Method, StatusCode};
use serde_json::json;
use tach_api::ApiConfig;

use crate::common::{Api, bad, col, get_ok, msg_ids, send, with_api};

#[tokio::test]
async fn events_list_newest_first_in_quincy_shape() {
    with_api(ApiConfig::default(), async |api: &Api| {
        let body = get_ok(&api.app, "/v1/events").await;
        assert_eq!(msg_ids(&body), ["e4", "e3", "e2", "e1", "e0"]);
        let e1 = &body[3];
        assert_eq!(e1["event_type"], "compute.instance.create.end");
        assert_eq!(e1["instance_id"], "i-a");
        assert_eq!(
            e1["timestamp"],
            json!({"__type__": "datetime", "datetime": "2014-07-01T12:00:10"})
        );
        assert_eq!(
            e1["launched_at"],
            json!({"__type__": "datetime", "datetime": "2014-07-01T12:00:05"})
        );
        assert_eq!(body[1]["ratio"], 0.5);
        assert_eq!(body[4]["memory_mb"], 512);
        // Marks are hex row ids, descending.
        let marks: Vec<i64> = col(&body, "_mark")
            .iter()
            .map(|m| i64::from_str_radix(m.as_str().unwrap(), 16).unwrap())
            .collect();
        assert!(marks.windows(2).all(|w| w[0] > w[1]), "{marks:?}");
    })
    .await;
}

#[tokio::test]
async fn event_filters() {
    with_api(ApiConfig::default(), async |api: &Api| {
        let app = &api.app;
        let cases: [(&str, &[&str]); 9] = [
            // from is exclusive, to inclusive.
            (
                "/v1/events?from_datetime=2014-07-01T12:00:10&to_datetime=2014-07-01%2012:00:30",
                &["e3", "e2"],
            ),
            ("/v1/events?from_datetime=2014-07-01T12:00:30Z", &["e4"]),
            ("/v1/events?event_name=compute.instance.create.end", &["e1"]),
            (
                "/v1/events?event_name=compute.instance.*",
                &["e4", "e2", "e1", "e0"],
            ),
            ("/v1/events?event_name=compute.*.end", &["e2", "e1"]),
            (
                "/v1/events?event_name=image.upload,compute.instance.exists",
                &["e4", "e3"],
            ),
            ("/v1/events?traits=instance_id:i-a", &["e1", "e0"]),
            ("/v1/events?traits=instance_id:i-a;memory_mb:512", &["e0"]),
            ("/v1/events?traits=tenant:t1,ratio:0.5&limit=1", &["e3"]),
        ];
        for (uri, want) in cases {
            assert_eq!(msg_ids(&get_ok(app, uri).await), want, "{uri}");
        }
        assert_eq!(
            msg_ids(&get_ok(app, "/v1/events?limit=2").await),
            ["e4", "e3"]
        );
        assert_eq!(
            get_ok(app, "/v1/events/count?event_name=compute.instance.*").await,
            json!([{"count": 4}])
        );
        assert_eq!(get_ok(app, "/v1/events/count").await, json!([{"count": 5}]));
        assert_eq!(
            get_ok(app, "/v1/events/count?traits=instance_id:i-b&limit=1").await,
            json!([{"count": 2}])
        );
    })
    .await;
}

#[tokio::test]
async fn events_page_across_marks_in_both_directions() {
    with_api(ApiConfig::default(), async |api: &Api| {
        let app = &api.app;
        // Newest first, two per page.
        let mut seen = Vec::new();
        let mut uri = "/v1/events?limit=2".to_owned();
        loop {
            let page = get_ok(app, &uri).await;
            let ids = msg_ids(&page);
            if ids.is_empty() {
                break;
            }
            seen.extend(ids);
            let last = page.as_array().unwrap().last().unwrap()["_mark"].clone();
            let mark = last.as_str().unwrap();
            assert!(!mark.starts_with('+'));
            uri = format!("/v1/events?limit=2&mark={mark}");
        }
        assert_eq!(seen, ["e4", "e3", "e2", "e1", "e0"]);

        // Oldest first with a `+` mark (escaped, as clients send it).
        let mut seen = Vec::new();
        let mut uri = "/v1/events?limit=2&mark=%2B".to_owned();
        loop {
            let page = get_ok(app, &uri).await;
            let ids = msg_ids(&page);
            if ids.is_empty() {
                break;
            }
            seen.extend(ids);
            let last = page.as_array().unwrap().last().unwrap()["_mark"].clone();
            let mark = last.as_str().unwrap();
            assert!(mark.starts_with('+'), "{mark}");
            uri = format!("/v1/events?limit=2&mark=%2B{}", &mark[1..]);
        }
        assert_eq!(seen, ["e0", "e1", "e2", "e3", "e4"]);
    })
    .await;
}

#[tokio::test]
async fn single_event_by_message_id() {
    with_api(ApiConfig::default(), async |api: &Api| {
        let body = get_ok(&api.app, "/v1/events/e2").await;
        assert_eq!(msg_ids(&body), ["e2"]);
        assert_eq!(body[0]["instance_id"], "i-b");
        assert!(body[0]["_mark"].is_string());
        let r = send(&api.app, Method::GET, "/v1/events/nope", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.body, json!({"error": "event nope not found"}));
    })
    .await;
}

#[tokio::test]
async fn bad_event_parameters_are_400_naming_the_parameter() {
    with_api(ApiConfig::default(), async |api: &Api| {
        let app = &api.app;
        let msg = bad(app, "/v1/events?from_datetime=yesterday", "from_datetime").await;
        assert_eq!(
            msg,
            "invalid parameter from_datetime: \"yesterday\" is not a datetime (expected ISO \
             8601, e.g. 2014-07-01T12:34:56.123456 or 2014-07-01 12:34:56+00:00)"
        );
        bad(
            app,
            "/v1/events/count?to_datetime=2014-13-01",
            "to_datetime",
        )
        .await;
        let msg = bad(app, "/v1/events?limit=ten", "limit").await;
        assert_eq!(
            msg,
            "invalid parameter limit: \"ten\" is not a positive integer"
        );
        bad(app, "/v1/events?limit=0", "limit").await;
        bad(app, "/v1/events?mark=zz", "mark").await;
        bad(app, "/v1/events?traits=instance_id", "traits").await;
        bad(app, "/v1/events/count?traits=:x", "traits").await;
    })
    .await;
}

#[tokio::test]
async fn limit_is_capped_by_max_limit() {
    let config = ApiConfig {
        max_limit: 3,
        ..ApiConfig::default()
    };
    with_api(config, async |api: &Api| {
        assert_eq!(msg_ids(&get_ok(&api.app, "/v1/events").await).len(), 3);
        assert_eq!(
            msg_ids(&get_ok(&api.app, "/v1/events?limit=1000000").await).len(),
            3
        );
        assert_eq!(
            msg_ids(&get_ok(&api.app, "/v1/events?limit=2").await).len(),
            2
        );
    })
    .await;
}

#[tokio::test]
async fn every_trait_type_round_trips_exactly() {
    with_api(ApiConfig::default(), async |api: &Api| {
        use tach_store::{Event, Trait, TraitValue};
        let text = "quote \" backslash \\ newline \n tab \t ctrl \u{1} é 😀 [1,2]";
        let when = crate::common::t(0) + chrono::Duration::microseconds(123_456);
        let traits = [
            ("B", TraitValue::Text(text.into())),
            ("a", TraitValue::Float(0.1 + 0.2)),
            ("a_b", TraitValue::Float(1e300)),
            ("aB", TraitValue::Int(i64::MIN)),
            ("f2", TraitValue::Float(-1.25e-10)),
            ("z", TraitValue::Datetime(when)),
            ("empty", TraitValue::Text(String::new())),
        ];
        let event = Event {
            message_id: "odd".into(),
            event_type: "odd.values".into(),
            timestamp: when,
            traits: traits
                .iter()
                .map(|(n, v)| Trait {
                    name: (*n).into(),
                    value: v.clone(),
                })
                .collect(),
        };
        let mut tx = api.store.begin().await.expect("begin");
        tx.insert_events(&[event]).await.expect("insert");
        tx.commit().await.expect("commit");
        let one = get_ok(&api.app, "/v1/events/odd").await;
        let list = get_ok(&api.app, "/v1/events?traits=aB:-9223372036854775808").await;
        for body in [&one, &list] {
            assert_eq!(msg_ids(body), ["odd"]);
            let e = &body[0];
            assert_eq!(e["B"], text);
            assert_eq!(e["a"].as_f64(), Some(0.1 + 0.2));
            assert_eq!(e["a_b"].as_f64(), Some(1e300));
            assert_eq!(e["aB"].as_i64(), Some(i64::MIN));
            assert_eq!(e["f2"].as_f64(), Some(-1.25e-10));
            assert_eq!(e["empty"], "");
            assert_eq!(
                e["z"],
                json!({"__type__": "datetime", "datetime": "2014-07-01T12:00:00.123456"})
            );
        }
    })
    .await;
}
