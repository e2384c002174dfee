//! schemas/openapi.json against the router: every documented operation answers with a documented
//! status and shape, and nothing undocumented is served.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::Value;
use tach_api::{ApiConfig, ROUTES};

use crate::common::{Api, send, with_api};

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/openapi.json");
    let text = std::fs::read_to_string(path).expect("schemas/openapi.json");
    serde_json::from_str(&text).expect("openapi.json is JSON")
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// The `required` keys of the schema `reference` points at.
fn required(doc: &Value, reference: &str) -> Vec<String> {
    let name = reference.trim_start_matches("#/components/schemas/");
    doc["components"]["schemas"][name]["required"]
        .as_array()
        .map(|r| r.iter().map(|k| k.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn the_document_lists_exactly_the_served_routes() {
    let doc = document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(operations(&doc), served);
}

#[tokio::test]
async fn every_documented_operation_answers_as_documented() {
    let doc = document();
    with_api(ApiConfig::default(), async |api: &Api| {
        let mut ops: Vec<(String, String)> = operations(&doc).into_iter().collect();
        // Reads first, then the reset, then the delete (of the same stream).
        let rank = |m: &str| ["GET", "PUT", "DELETE"].iter().position(|x| *x == m);
        ops.sort_by_key(|(m, p)| (rank(m), p.clone()));
        for (method, path) in ops {
            let uri = path
                .replace("{id}", &api.fx.s2.to_string())
                .replace("{message_id}", "e1");
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let r = send(&api.app, m, &uri, None).await;
            let op = &doc["paths"][&path][method.to_ascii_lowercase()];
            let documented = &op["responses"][r.status.as_str()];
            assert!(
                documented.is_object(),
                "{method} {uri} answered {} which is not documented",
                r.status
            );
            assert!(
                r.status.is_success(),
                "{method} {uri}: {} {}",
                r.status,
                r.body
            );
            let Some(schema) = documented["content"]["application/json"]["schema"].as_object()
            else {
                assert_eq!(
                    r.body,
                    Value::Null,
                    "{method} {uri}: documented without a body"
                );
                continue;
            };
            let (rows, reference) = match schema.get("type").and_then(Value::as_str) {
                Some("array") => (
                    r.body.as_array().expect("a list").clone(),
                    schema["items"]["$ref"].as_str().unwrap(),
                ),
                _ => (vec![r.body.clone()], schema["$ref"].as_str().unwrap()),
            };
            assert!(!rows.is_empty(), "{method} {uri}: empty answer");
            for row in rows {
                for key in required(&doc, reference) {
                    assert!(row.get(&key).is_some(), "{method} {uri}: no {key} in {row}");
                }
            }
        }
    })
    .await;
}

#[tokio::test]
async fn undocumented_methods_and_paths_are_not_served() {
    let doc = document();
    let ops = operations(&doc);
    with_api(ApiConfig::default(), async |api: &Api| {
        for path in doc["paths"].as_object().unwrap().keys() {
            let uri = path.replace("{id}", "1").replace("{message_id}", "e1");
            for method in METHODS {
                let method = method.to_ascii_uppercase();
                if ops.contains(&(method.clone(), path.clone())) {
                    continue;
                }
                let m = Method::from_bytes(method.as_bytes()).unwrap();
                let r = send(&api.app, m, &uri, None).await;
                assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            }
        }
        for uri in [
            "/",
            "/v1",
            "/v1/events/e1/traits",
            "/v1/streams/1/events",
            "/v2/streams",
        ] {
            let r = send(&api.app, Method::GET, uri, None).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        }
    })
    .await;
}
