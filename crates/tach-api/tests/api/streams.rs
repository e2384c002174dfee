//! `GET /v1/streams`, its count, single streams, DELETE and PUT.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use tach_api::ApiConfig;
use tach_store::StreamState;

use crate::common::{Api, bad, col, get_ok, msg_ids, send, with_api};

fn ids(body: &Value) -> Vec<i64> {
    col(body, "id")
        .iter()
        .map(|v| v.as_i64().expect("id"))
        .collect()
}

#[tokio::test]
async fn streams_list_in_quincy_shape() {
    with_api(ApiConfig::default(), async |api: &Api| {
        let fx = api.fx;
        let body = get_ok(&api.app, "/v1/streams").await;
        assert_eq!(ids(&body), [fx.s3, fx.s2, fx.s1]);
        let s2 = &body[1];
        assert_eq!(s2["_mark"], format!("{:x}", fx.s2));
        assert_eq!(s2["name"], "usage");
        assert_eq!(s2["state"], "error");
        assert_eq!(s2["error"], "boom");
        assert_eq!(s2["event_count"], 2);
        assert_eq!(
            s2["first_event"],
            json!({"__type__": "datetime", "datetime": "2014-07-01T12:00:20"})
        );
        assert_eq!(
            s2["last_event"],
            json!({"__type__": "datetime", "datetime": "2014-07-01T12:00:40"})
        );
        assert_eq!(
            s2["expire_timestamp"],
            json!({"__type__": "datetime", "datetime": "2014-07-01T13:00:40"})
        );
        assert_eq!(s2["fire_timestamp"], Value::Null);
        assert_eq!(
            s2["distinguishing_traits"],
            json!({
                "instance_id": "i-b",
                "timestamp": {
                    "__type__": "timex.TimeRange",
                    "begin": "2014-07-01T12:00:00",
                    "end": "2014-07-02T12:00:00"
                }
            })
        );
        assert!(s2.get("events").is_none(), "no events without details");
        let detailed = get_ok(&api.app, "/v1/streams?details=true&limit=2").await;
        assert_eq!(ids(&detailed), [fx.s3, fx.s2]);
        assert_eq!(detailed[0]["events"], json!([]));
        assert_eq!(msg_ids(&detailed[1]["events"]), ["e2", "e4"]);
    })
    .await;
}

#[tokio::test]
async fn stream_filters_and_counts() {
    with_api(ApiConfig::default(), async |api: &Api| {
        let (app, fx) = (&api.app, api.fx);
        let cases: Vec<(&str, Vec<i64>)> = vec![
            ("/v1/streams?state=error", vec![fx.s2]),
            ("/v1/streams?state=ACTIVE", vec![fx.s1]),
            ("/v1/streams?trigger_name=usage", vec![fx.s2, fx.s1]),
            ("/v1/streams?name=other", vec![fx.s3]),
            (
                "/v1/streams?distinguishing_traits=instance_id:i-a",
                vec![fx.s3, fx.s1],
            ),
            (
                "/v1/streams?distinguishing_traits=instance_id:i-a;name:x",
                vec![],
            ),
            (
                "/v1/streams?distinguishing_traits=timestamp:2014-07-01T18:00:00,instance_id:i-b",
                vec![fx.s2],
            ),
            // older_than: first_event before; younger_than: last_event after.
            ("/v1/streams?older_than=2014-07-01T12:00:20", vec![fx.s1]),
            ("/v1/streams?younger_than=2014-07-01T12:00:30", vec![fx.s2]),
            (
                "/v1/streams?older_than=2014-07-01T12:00:31&younger_than=2014-07-01T12:00:05",
                vec![fx.s3, fx.s2, fx.s1],
            ),
            (
                "/v1/streams?trigger_name=usage&name=other",
                vec![fx.s2, fx.s1],
            ),
            ("/v1/streams?limit=1", vec![fx.s3]),
        ];
        for (uri, want) in cases {
            assert_eq!(ids(&get_ok(app, uri).await), want, "{uri}");
        }
        assert_eq!(
            get_ok(app, "/v1/streams/count").await,
            json!([{"count": 3}])
        );
        assert_eq!(
            get_ok(app, "/v1/streams/count?trigger_name=usage&state=active").await,
            json!([{"count": 1}])
        );
    })
    .await;
}

#[tokio::test]
async fn streams_page_across_marks_in_both_directions() {
    with_api(ApiConfig::default(), async |api: &Api| {
        let (app, fx) = (&api.app, api.fx);
        let page = get_ok(app, "/v1/streams?limit=2").await;
        assert_eq!(ids(&page), [fx.s3, fx.s2]);
        let mark = page[1]["_mark"].as_str().unwrap().to_owned();
        let page = get_ok(app, &format!("/v1/streams?limit=2&mark={mark}")).await;
        assert_eq!(ids(&page), [fx.s1]);

        let page = get_ok(app, "/v1/streams?limit=2&mark=%2B").await;
        assert_eq!(ids(&page), [fx.s1, fx.s2]);
        let mark = page[1]["_mark"].as_str().unwrap().to_owned();
        assert_eq!(mark, format!("+{:x}", fx.s2));
        // An unescaped `+` decodes to a space and still means ascending.
        let page = get_ok(app, &format!("/v1/streams?limit=2&mark={mark}")).await;
        assert_eq!(ids(&page), [fx.s3]);
        let mark = format!("%2B{:x}", fx.s3);
        assert_eq!(
            get_ok(app, &format!("/v1/streams?mark={mark}")).await,
            json!([])
        );
    })
    .await;
}

#[tokio::test]
async fn single_stream_with_and_without_details() {
    with_api(ApiConfig::default(), async |api: &Api| {
        let (app, fx) = (&api.app, api.fx);
        let body = get_ok(app, &format!("/v1/streams/{}", fx.s1)).await;
        assert_eq!(ids(&body), [fx.s1]);
        assert!(body[0].get("events").is_none());
        // klugman sends Python's str(bool).
        let body = get_ok(app, &format!("/v1/streams/{}?details=False", fx.s1)).await;
        assert!(body[0].get("events").is_none());
        let body = get_ok(app, &format!("/v1/streams/{}?details=True", fx.s1)).await;
        assert_eq!(msg_ids(&body[0]["events"]), ["e0", "e1"]);
        assert_eq!(body[0]["events"][0]["memory_mb"], 512);
        let r = send(app, Method::GET, "/v1/streams/99999", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.body, json!({"error": "stream 99999 not found"}));
    })
    .await;
}

#[tokio::test]
async fn bad_stream_parameters_are_400_naming_the_parameter() {
    with_api(ApiConfig::default(), async |api: &Api| {
        let app = &api.app;
        let msg = bad(app, "/v1/streams?state=broken", "state").await;
        assert_eq!(
            msg,
            "invalid parameter state: unknown stream state \"broken\": expected one of active, \
             firing, expiring, error, expire_error, completed, retry_fire, retry_expire"
        );
        bad(app, "/v1/streams?older_than=soon", "older_than").await;
        bad(app, "/v1/streams/count?younger_than=12:00", "younger_than").await;
        bad(
            app,
            "/v1/streams?distinguishing_traits=instance_id",
            "distinguishing_traits",
        )
        .await;
        bad(app, "/v1/streams?details=maybe", "details").await;
        bad(app, "/v1/streams?limit=-1", "limit").await;
        bad(app, "/v1/streams?mark=%2Bxyz", "mark").await;
        let msg = bad(app, "/v1/streams/abc", "id").await;
        assert_eq!(
            msg,
            "invalid parameter id: \"abc\" is not an integer stream id"
        );
        bad(app, "/v1/streams/1?details=2", "details").await;
        for method in [Method::DELETE, Method::PUT] {
            let r = send(app, method, "/v1/streams/1.5", None).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST);
            assert_eq!(r.body["parameter"], "id");
        }
    })
    .await;
}

#[tokio::test]
async fn delete_removes_a_stream() {
    with_api(ApiConfig::default(), async |api: &Api| {
        let (app, fx) = (&api.app, api.fx);
        let uri = format!("/v1/streams/{}", fx.s1);
        let r = send(app, Method::DELETE, &uri, None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            send(app, Method::GET, &uri, None).await.status,
            StatusCode::NOT_FOUND
        );
        let r = send(app, Method::DELETE, &uri, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(
            r.body,
            json!({"error": format!("stream {} not found", fx.s1)})
        );
        // The events stay.
        assert_eq!(get_ok(app, "/v1/events/count").await, json!([{"count": 5}]));
    })
    .await;
}

#[tokio::test]
async fn put_resets_an_errored_stream_and_refuses_others() {
    with_api(ApiConfig::default(), async |api: &Api| {
        let (app, fx) = (&api.app, api.fx);
        let r = send(app, Method::PUT, &format!("/v1/streams/{}", fx.s2), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(ids(&r.body), [fx.s2]);
        assert_eq!(r.body[0]["state"], "retry_fire");
        let stored = api.store.get_stream(fx.s2, false).await.unwrap().unwrap();
        assert_eq!(stored.state, StreamState::RetryFire);

        let r = send(app, Method::PUT, &format!("/v1/streams/{}", fx.s1), None).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(
            r.body,
            json!({"error": format!(
                "stream {} is in state active; only error, expire_error, firing and expiring streams can be reset",
                fx.s1
            )})
        );
        let r = send(app, Method::PUT, "/v1/streams/424242", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.body, json!({"error": "stream 424242 not found"}));
    })
    .await;
}

#[tokio::test]
async fn details_are_capped_at_max_stream_events() {
    let config = ApiConfig {
        max_stream_events: 1,
        ..ApiConfig::default()
    };
    with_api(config, async |api: &Api| {
        let (app, fx) = (&api.app, api.fx);
        let body = get_ok(app, &format!("/v1/streams/{}?details=true", fx.s1)).await;
        assert_eq!(msg_ids(&body[0]["events"]), ["e0"], "the oldest event");
        assert_eq!(body[0]["events_truncated"], true);
        assert_eq!(body[0]["event_count"], 2);
        let body = get_ok(app, "/v1/streams?details=true").await;
        assert_eq!(ids(&body), [fx.s3, fx.s2, fx.s1]);
        assert_eq!(col(&body, "events_truncated"), [false, true, true]);
        assert_eq!(msg_ids(&body[1]["events"]), ["e2"]);
        let body = get_ok(app, &format!("/v1/streams/{}", fx.s1)).await;
        assert!(
            body[0].get("events_truncated").is_none(),
            "only with details"
        );
    })
    .await;
    let config = ApiConfig {
        max_stream_events: 2,
        ..ApiConfig::default()
    };
    with_api(config, async |api: &Api| {
        let body = get_ok(&api.app, &format!("/v1/streams/{}?details=1", api.fx.s2)).await;
        assert_eq!(msg_ids(&body[0]["events"]), ["e2", "e4"]);
        assert_eq!(body[0]["events_truncated"], false, "exactly the maximum");
    })
    .await;
}
