//! The probes, unknown routes and request size bounds.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use tach_api::{ApiConfig, ApiState, router};
use tach_store::Store;
use tower::ServiceExt;

use crate::common::{Api, BACKENDS, TestDb, send, with_api};

#[tokio::test]
async fn readyz_is_503_until_the_schema_is_migrated() {
    for backend in BACKENDS {
        let db = TestDb::create(backend).await;
        let store = Store::connect(&db.url).await.expect("connect");
        let app = router(ApiState::new(ApiConfig::default(), store.clone()));
        let r = send(&app, Method::GET, "/healthz", None).await;
        assert_eq!(
            (r.status, r.body),
            (StatusCode::OK, json!({"status": "ok"}))
        );
        let r = send(&app, Method::GET, "/readyz", None).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{backend:?}");
        assert_eq!(
            r.body,
            json!({
                "status": "unavailable",
                "error": "the database has no tach schema; run `tach db migrate --config \
                          <winchester.yaml>` to create it"
            })
        );
        store.migrate().await.expect("migrate");
        let r = send(&app, Method::GET, "/readyz", None).await;
        assert_eq!(
            (r.status, r.body),
            (StatusCode::OK, json!({"status": "ready"}))
        );
        store.close().await;
        db.drop_db().await;
    }
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_unreachable() {
    let store = Store::connect("sqlite::memory:").await.expect("connect");
    store.close().await;
    let app = router(ApiState::new(ApiConfig::default(), store));
    let r = send(&app, Method::GET, "/readyz", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["status"], "unavailable");
}

#[tokio::test]
async fn unknown_routes_are_json_404s_and_big_bodies_413() {
    with_api(ApiConfig::default(), async |api: &Api| {
        let r = send(&api.app, Method::GET, "/v2/events", None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.body, json!({"error": "no such endpoint: GET /v2/events"}));
        let req = Request::builder()
            .method(Method::PUT)
            .uri(format!("/v1/streams/{}", api.fx.s2))
            .header("content-length", "1000000")
            .body(Body::from(vec![b'x'; 1_000_000]))
            .expect("request");
        let resp = api.app.clone().oneshot(req).await.expect("infallible");
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    })
    .await;
}
