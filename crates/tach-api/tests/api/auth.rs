//! The bearer token: writes always need it once set, reads only with `auth_reads`.

use axum::http::{Method, StatusCode};
use serde_json::json;
use tach_api::ApiConfig;

use crate::common::{Api, send, with_api};

fn with_token(auth_reads: bool) -> ApiConfig {
    ApiConfig {
        auth_token: Some("s3cret".into()),
        auth_reads,
        ..ApiConfig::default()
    }
}

#[tokio::test]
async fn writes_need_the_token_and_reads_stay_open() {
    with_api(with_token(false), async |api: &Api| {
        let (app, fx) = (&api.app, api.fx);
        let uri = format!("/v1/streams/{}", fx.s2);
        for token in [None, Some("wrong"), Some("s3cret2"), Some("s3cre")] {
            for method in [Method::PUT, Method::DELETE] {
                let r = send(app, method.clone(), &uri, token).await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {token:?}");
                assert_eq!(r.body, json!({"error": "missing or invalid bearer token"}));
            }
        }
        assert_eq!(
            send(app, Method::GET, &uri, None).await.status,
            StatusCode::OK
        );
        assert_eq!(
            send(app, Method::GET, "/v1/events", None).await.status,
            StatusCode::OK
        );
        let r = send(app, Method::PUT, &uri, Some("s3cret")).await;
        assert_eq!(r.status, StatusCode::OK);
        let r = send(app, Method::DELETE, &uri, Some("s3cret")).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    })
    .await;
}

#[tokio::test]
async fn auth_reads_closes_reads_but_not_the_probes() {
    with_api(with_token(true), async |api: &Api| {
        let app = &api.app;
        for uri in [
            "/v1/events",
            "/v1/events/count",
            "/v1/events/e1",
            "/v1/streams",
            "/v1/streams/count",
            "/v1/streams/1",
        ] {
            let r = send(app, Method::GET, uri, None).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
            let r = send(app, Method::GET, uri, Some("s3cret")).await;
            assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
        }
        assert_eq!(
            send(app, Method::GET, "/healthz", None).await.status,
            StatusCode::OK
        );
        assert_eq!(
            send(app, Method::GET, "/readyz", None).await.status,
            StatusCode::OK
        );
    })
    .await;
}

#[test]
fn the_token_is_never_in_debug_output() {
    let printed = format!("{:?}", with_token(true));
    assert!(!printed.contains("s3cret"), "{printed}");
    assert!(
        printed.contains("auth_token: Some(\"<redacted>\")"),
        "{printed}"
    );
}
