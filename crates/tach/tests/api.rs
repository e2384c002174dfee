//! `tach api` as a process on a replayed database: every endpoint, filters, paging across
//! marks in both directions, the error cases, the auth token and a clean SIGTERM.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::{Api, notigen_lines, signal, start_api_with, stderr, tach, workdir_with};
use hyper::Method;
use klug::{Client, Error};
use serde_json::Value;
use sqlx::{AnyConnection, Connection, Executor};

/// Starts `tach api` on a free port.
fn start_api(dir: &Path) -> Api {
    start_api_with(
        dir,
        &[
            "api",
            "--config",
            "winchester.yaml",
            "--bind",
            "127.0.0.1:0",
        ],
    )
}

async fn get(client: &Client, path: &str, query: &[(&str, &str)]) -> Vec<Value> {
    let query: Vec<(&str, String)> = query.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    match client.call(Method::GET, path, &query).await {
        Ok(Some(Value::Array(rows))) => rows,
        other => panic!("GET {path} {query:?}: {other:?}"),
    }
}

async fn count(client: &Client, path: &str, query: &[(&str, &str)]) -> u64 {
    let rows = get(client, path, query).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0]["count"].as_u64().expect("a count")
}

/// The status line of an error answer.
async fn status_of(
    client: &Client,
    method: Method,
    path: &str,
    query: &[(&str, &str)],
) -> (String, String) {
    let query: Vec<(&str, String)> = query.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    match client.call(method.clone(), path, &query).await {
        Err(Error::Server { status, message }) => (status, message),
        other => panic!("{method} {path} {query:?} should fail: {other:?}"),
    }
}

/// Every row of `path` following `_mark` pages of `limit` from `first_mark`.
async fn all_pages(
    client: &Client,
    path: &str,
    filter: &[(&str, &str)],
    ascending: bool,
) -> Vec<Value> {
    let mut mark = if ascending {
        "+".to_owned()
    } else {
        String::new()
    };
    let mut rows = Vec::new();
    loop {
        let mut query: Vec<(&str, &str)> = filter.to_vec();
        query.push(("limit", "7"));
        if !mark.is_empty() {
            query.push(("mark", mark.as_str()));
        }
        let page = get(client, path, &query).await;
        let Some(last) = page.last() else { break };
        let next = last["_mark"].as_str().expect("a mark").to_owned();
        assert_eq!(next.starts_with('+'), ascending, "{next}");
        mark = next;
        let full = page.len() == 7;
        rows.extend(page);
        if !full {
            break;
        }
    }
    rows
}

fn message_ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["message_id"].as_str().expect("message_id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tach_api_serves_a_replayed_database() {
    let dir = workdir_with(
        "sqlite://tach.db",
        "purge_completed_streams: false\napi:\n  auth_token: s3cret\n  max_limit: 50\n",
    );
    let lines = notigen_lines(2);
    std::fs::write(dir.join("n.jsonl"), lines.join("\n") + "\n").unwrap();
    let out = tach(&["db", "migrate", "--config", "winchester.yaml"], &dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tach(
        &[
            "replay",
            "--config",
            "winchester.yaml",
            "--drain",
            "n.jsonl",
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let notifications: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let instance = notifications
        .iter()
        .find(|n| n["event_type"] == "compute.instance.create.start")
        .and_then(|n| n["payload"]["instance_id"].as_str())
        .expect("a create in two days")
        .to_owned();
    let of_instance: HashSet<String> = notifications
        .iter()
        .filter(|n| n["payload"]["instance_id"] == instance.as_str())
        .map(|n| n["message_id"].as_str().unwrap().to_owned())
        .collect();
    let creates = notifications
        .iter()
        .filter(|n| {
            n["event_type"]
                .as_str()
                .unwrap()
                .starts_with("compute.instance.create.")
        })
        .count() as u64;

    let api = start_api(&dir);
    let client = Client::new(&api.url, None).unwrap();
    let authed = Client::new(&api.url, Some("s3cret".into())).unwrap();

    // Health.
    assert_eq!(
        client
            .call(Method::GET, "/healthz", &[])
            .await
            .unwrap()
            .unwrap()["status"],
        "ok"
    );
    client.call(Method::GET, "/readyz", &[]).await.unwrap();

    // Events: counts with globs, trait filters, one event, both paging directions.
    let total = count(&client, "/v1/events/count", &[]).await;
    assert!(total > lines.len() as u64, "usage adds events: {total}");
    assert_eq!(
        count(
            &client,
            "/v1/events/count",
            &[("event_name", "compute.instance.create.*")]
        )
        .await,
        creates
    );
    assert!(
        count(
            &client,
            "/v1/events/count",
            &[("event_name", "compute.instance.exists.verified")]
        )
        .await
            > 0
    );
    let traits = format!("instance_id:{instance}");
    let rows = all_pages(&client, "/v1/events", &[("traits", &traits)], false).await;
    assert!(rows.iter().all(|r| r["instance_id"] == instance.as_str()));
    let ids: HashSet<String> = message_ids(&rows).into_iter().collect();
    assert!(
        ids.is_superset(&of_instance),
        "{} of {}",
        ids.len(),
        of_instance.len()
    );
    let newest_first: Vec<String> = message_ids(&rows);
    let mut oldest_first =
        message_ids(&all_pages(&client, "/v1/events", &[("traits", &traits)], true).await);
    oldest_first.reverse();
    assert_eq!(newest_first, oldest_first);
    // Newest stored first, as quincy: marks (hex row ids) strictly decrease.
    let marks: Vec<i64> = rows
        .iter()
        .map(|r| i64::from_str_radix(r["_mark"].as_str().unwrap(), 16).unwrap())
        .collect();
    assert!(marks.windows(2).all(|w| w[0] > w[1]), "{marks:?}");

    let one = notifications[0]["message_id"].as_str().unwrap();
    let got = get(&client, &format!("/v1/events/{one}"), &[]).await;
    assert_eq!(message_ids(&got), vec![one.to_owned()]);
    assert_eq!(got[0]["timestamp"]["__type__"], "datetime");

    // Errors name the parameter; unknown ids are 404.
    let (status, message) = status_of(
        &client,
        Method::GET,
        "/v1/events",
        &[("from_datetime", "yesterday-ish")],
    )
    .await;
    assert!(status.starts_with("400"), "{status}");
    assert!(message.contains("from_datetime"), "{message}");
    let (status, message) =
        status_of(&client, Method::GET, "/v1/events", &[("limit", "ten")]).await;
    assert!(
        status.starts_with("400") && message.contains("limit"),
        "{status} {message}"
    );
    let (status, _) = status_of(&client, Method::GET, "/v1/events/no-such-message", &[]).await;
    assert!(status.starts_with("404"), "{status}");
    let capped = get(&client, "/v1/events", &[("limit", "5000")]).await;
    assert_eq!(capped.len(), 50, "limit is capped by api.max_limit");

    // Streams: the instance's daily usage streams fired and completed (drained replay).
    let filter = [
        ("name", "instance_usage"),
        ("distinguishing_traits", traits.as_str()),
    ];
    let streams = get(&client, "/v1/streams", &filter).await;
    assert!(!streams.is_empty());
    assert!(
        streams.iter().all(|s| s["state"] == "completed"),
        "{streams:?}"
    );
    assert!(
        streams
            .iter()
            .all(|s| s["distinguishing_traits"]["instance_id"] == instance.as_str())
    );
    assert_eq!(
        count(&client, "/v1/streams/count", &filter).await,
        streams.len() as u64
    );
    let id = streams[0]["id"].as_i64().unwrap();
    let detailed = get(
        &client,
        &format!("/v1/streams/{id}"),
        &[("details", "true")],
    )
    .await;
    let events = detailed[0]["events"]
        .as_array()
        .expect("details has events");
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["instance_id"] == instance.as_str()));
    let (status, message) =
        status_of(&client, Method::GET, "/v1/streams", &[("state", "bogus")]).await;
    assert!(
        status.starts_with("400") && message.contains("state"),
        "{status} {message}"
    );
    let (status, _) = status_of(&client, Method::GET, "/v1/streams/abc", &[]).await;
    assert!(status.starts_with("400"), "{status}");

    // PUT resets an errored stream, with the token only.
    sqlx::any::install_default_drivers();
    let mut db = AnyConnection::connect(&format!("sqlite://{}", dir.join("tach.db").display()))
        .await
        .unwrap();
    db.execute(sqlx::AssertSqlSafe(format!(
        "UPDATE streams SET state = {} WHERE id = {id}",
        tach_store::StreamState::Error.code()
    )))
    .await
    .unwrap();
    db.close().await.unwrap();
    let path = format!("/v1/streams/{id}");
    let (status, _) = status_of(&client, Method::PUT, &path, &[]).await;
    assert!(status.starts_with("401"), "{status}");
    let reset = authed.call(Method::PUT, &path, &[]).await.unwrap().unwrap();
    assert_eq!(reset[0]["state"], "retry_fire", "{reset}");
    let (status, _) = status_of(&authed, Method::PUT, &path, &[]).await;
    assert!(
        status.starts_with("409"),
        "only errored streams reset: {status}"
    );

    // DELETE with the token only, then it is gone.
    let (status, _) = status_of(&client, Method::DELETE, &path, &[]).await;
    assert!(status.starts_with("401"), "{status}");
    authed.call(Method::DELETE, &path, &[]).await.unwrap();
    let (status, _) = status_of(&client, Method::GET, &path, &[]).await;
    assert!(status.starts_with("404"), "{status}");

    // SIGTERM: open requests finish, exit 0.
    let mut api = api;
    signal(&api.child, "-TERM");
    let status = api.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
