//! Fresh databases per test (SQLite, PostgreSQL and MySQL/MariaDB), a populated fixture, and
//! in-process requests to the router.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::Duration;
use serde_json::Value;
use tach_api::{ApiConfig, ApiState, router};
use tach_store::{DistValue, NewStream, Store, StreamState, TraitValue};
use tower::ServiceExt;

pub use tach_store::testing::{BACKENDS, TestDb, ev, t};

/// The fixture's stream ids.
#[derive(Debug, Clone, Copy)]
pub struct Fixture {
    /// usage / i-a, active, events e0 and e1.
    pub s1: i64,
    /// usage / i-b (and a day range), error "boom", events e2 and e4.
    pub s2: i64,
    /// other / i-a, completed, no events.
    pub s3: i64,
}

fn text(s: &str) -> TraitValue {
    TraitValue::Text(s.into())
}

async fn stream(
    store: &Store,
    trigger: &str,
    dist: Vec<(&str, DistValue)>,
    first: i64,
    last: i64,
    events: &[i64],
) -> i64 {
    let mut tx = store.begin().await.expect("begin");
    let key = format!("{trigger}/{first}/{last}");
    let row = tx
        .insert_stream(NewStream {
            trigger_name: trigger.into(),
            distinguishing_key: key,
            distinguishing_traits: dist.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
            first_event: t(first),
            last_event: t(last),
            expire_timestamp: t(last) + Duration::hours(1),
            fire_timestamp: None,
            fire_state: "{}".into(),
            event_count: events.len() as i64,
        })
        .await
        .expect("insert_stream")
        .expect("created");
    let links: Vec<(i64, i64)> = events.iter().map(|&e| (row.id, e)).collect();
    tx.add_stream_events(&links).await.expect("links");
    tx.commit().await.expect("commit");
    row.id
}

/// Stores five events and three streams.
pub async fn populate(store: &Store) -> Fixture {
    let events = vec![
        ev(
            "e0",
            "compute.instance.create.start",
            0,
            vec![
                ("instance_id", text("i-a")),
                ("memory_mb", TraitValue::Int(512)),
            ],
        ),
        ev(
            "e1",
            "compute.instance.create.end",
            10,
            vec![
                ("instance_id", text("i-a")),
                ("launched_at", TraitValue::Datetime(t(5))),
            ],
        ),
        ev(
            "e2",
            "compute.instance.delete.end",
            20,
            vec![("instance_id", text("i-b"))],
        ),
        ev(
            "e3",
            "image.upload",
            30,
            vec![("tenant", text("t1")), ("ratio", TraitValue::Float(0.5))],
        ),
        ev(
            "e4",
            "compute.instance.exists",
            40,
            vec![("instance_id", text("i-b"))],
        ),
    ];
    let mut tx = store.begin().await.expect("begin");
    let ids: Vec<i64> = tx
        .insert_events(&events)
        .await
        .expect("insert")
        .into_iter()
        .map(|id| id.expect("new"))
        .collect();
    tx.commit().await.expect("commit");
    let s1 = stream(
        store,
        "usage",
        vec![("instance_id", DistValue::Text("i-a".into()))],
        0,
        10,
        &[ids[0], ids[1]],
    )
    .await;
    let s2 = stream(
        store,
        "usage",
        vec![
            ("instance_id", DistValue::Text("i-b".into())),
            (
                "timestamp",
                DistValue::Range {
                    begin: t(0),
                    end: t(86_400),
                },
            ),
        ],
        20,
        40,
        &[ids[2], ids[4]],
    )
    .await;
    assert!(
        store
            .set_stream_state(s2, StreamState::Active, StreamState::Error, Some("boom"))
            .await
            .expect("state")
    );
    let s3 = stream(
        store,
        "other",
        vec![("instance_id", DistValue::Text("i-a".into()))],
        30,
        30,
        &[],
    )
    .await;
    assert!(
        store
            .set_stream_state(s3, StreamState::Active, StreamState::Completed, None)
            .await
            .expect("state")
    );
    Fixture { s1, s2, s3 }
}

/// A router on a migrated, populated database.
pub struct Api {
    pub app: Router,
    pub store: Store,
    pub fx: Fixture,
}

/// Runs `body` on every backend against a migrated database holding the fixture.
pub async fn with_api<F>(config: ApiConfig, body: F)
where
    F: AsyncFn(&Api),
{
    for backend in BACKENDS {
        eprintln!("--- {backend:?}");
        let db = TestDb::create(backend).await;
        let store = Store::connect(&db.url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let fx = populate(&store).await;
        let app = router(ApiState::new(config.clone(), store.clone()));
        body(&Api { app, store, fx }).await;
        db.drop_db().await;
    }
}

/// A response: status and parsed JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
}

/// Sends one request to `app`.
pub async fn send(app: &Router, method: Method, uri: &str, token: Option<&str>) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{uri}: body is not JSON ({e}): {bytes:?}"))
    };
    Resp { status, body }
}

/// `GET uri`, expecting 200; returns the body.
pub async fn get_ok(app: &Router, uri: &str) -> Value {
    let r = send(app, Method::GET, uri, None).await;
    assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
    r.body
}

/// The values of `field` of each row of a list body.
pub fn col(body: &Value, field: &str) -> Vec<Value> {
    body.as_array()
        .expect("a list")
        .iter()
        .map(|row| row[field].clone())
        .collect()
}

/// The `message_id`s of an event list.
pub fn msg_ids(body: &Value) -> Vec<String> {
    col(body, "message_id")
        .into_iter()
        .map(|v| v.as_str().expect("message_id").to_owned())
        .collect()
}

/// Expects a 400 naming `param`.
pub async fn bad(app: &Router, uri: &str, param: &str) -> String {
    let r = send(app, Method::GET, uri, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.body);
    assert_eq!(r.body["parameter"], param, "{uri}: {}", r.body);
    r.body["error"].as_str().expect("error").to_owned()
}
