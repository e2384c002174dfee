//! klug against a running API (tach-api's `serve` on a SQLite file): tables, JSON, counts,
//! details, paging, reset/delete, the token and server errors.

use std::net::SocketAddr;

use chrono::{DateTime, Duration, TimeZone, Utc};
use clap::Parser;
use serde_json::{Value, json};
use tach_api::{ApiConfig, serve};
use tach_store::{DistValue, Event, NewStream, Store, StreamState, Trait, TraitValue};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2014, 7, 1, 12, 0, 0).unwrap() + Duration::seconds(secs)
}

fn ev(id: &str, ty: &str, secs: i64, instance: &str) -> Event {
    Event {
        message_id: id.into(),
        event_type: ty.into(),
        timestamp: t(secs),
        traits: vec![Trait {
            name: "instance_id".into(),
            value: TraitValue::Text(instance.into()),
        }],
    }
}

struct Server {
    url: String,
    store: Store,
    active: i64,
    errored: i64,
    _stop: tokio::sync::oneshot::Sender<()>,
    file: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

async fn start(config: ApiConfig, name: &str) -> Server {
    let file = std::env::temp_dir().join(format!("klug_{}_{name}.db", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let store = Store::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let events = [
        ev("m0", "compute.instance.create.start", 0, "i-a"),
        ev("m1", "compute.instance.create.end", 10, "i-a"),
        ev("m2", "compute.instance.delete.end", 20, "i-b"),
        ev("m3", "image.upload", 30, "i-c"),
    ];
    let mut tx = store.begin().await.unwrap();
    let ids: Vec<i64> = tx
        .insert_events(&events)
        .await
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let mut stream_ids = Vec::new();
    for (instance, evs) in [("i-a", &ids[0..2]), ("i-b", &ids[2..3])] {
        let row = tx
            .insert_stream(NewStream {
                trigger_name: "usage".into(),
                distinguishing_key: instance.into(),
                distinguishing_traits: vec![(
                    "instance_id".into(),
                    DistValue::Text(instance.into()),
                )],
                first_event: t(0),
                last_event: t(20),
                expire_timestamp: t(3600),
                fire_timestamp: None,
                fire_state: "{}".into(),
                event_count: evs.len() as i64,
            })
            .await
            .unwrap()
            .unwrap();
        let links: Vec<(i64, i64)> = evs.iter().map(|&e| (row.id, e)).collect();
        tx.add_stream_events(&links).await.unwrap();
        stream_ids.push(row.id);
    }
    tx.commit().await.unwrap();
    let errored = stream_ids[1];
    store
        .set_stream_state(
            errored,
            StreamState::Active,
            StreamState::Error,
            Some("boom"),
        )
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(config, store.clone(), listener, async {
        let _ = stopped.await;
    }));
    Server {
        url: format!("http://{addr}"),
        store,
        active: stream_ids[0],
        errored,
        _stop: stop,
        file,
    }
}

async fn klug(server: &Server, args: &[&str]) -> Result<String, klug::Error> {
    let mut argv = vec!["klug", "--url", server.url.as_str()];
    argv.extend_from_slice(args);
    let cli = klug::Cli::try_parse_from(argv).expect("valid command line");
    let mut out = Vec::new();
    klug::run(cli, &mut out).await?;
    Ok(String::from_utf8(out).unwrap())
}

async fn json_out(server: &Server, args: &[&str]) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&klug(server, &all).await.unwrap()).unwrap()
}

#[tokio::test]
async fn events_as_json_tables_counts_and_pages() {
    let s = start(ApiConfig::default(), "events").await;
    let v = json_out(&s, &["events", "--name", "compute.*"]).await;
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m2", "m1", "m0"]);
    assert_eq!(
        v[0]["timestamp"], "2014-07-01T12:00:20",
        "plain ISO datetimes"
    );

    let v = json_out(
        &s,
        &[
            "events",
            "--traits",
            "instance_id:i-a",
            "--from",
            "2014-07-01T12:00:00",
        ],
    )
    .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["message_id"], "m1");

    let v = json_out(&s, &["events", "--count", "--name", "compute.instance.*"]).await;
    assert_eq!(v, json!({"count": 3}));

    // --all follows the marks with pages of one.
    let v = json_out(&s, &["events", "--all", "--limit", "1"]).await;
    assert_eq!(v.as_array().unwrap().len(), 4);
    let lines = klug(
        &s,
        &["--output", "jsonl", "events", "--all", "--limit", "3"],
    )
    .await
    .unwrap();
    let ids: Vec<String> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["message_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["m3", "m2", "m1", "m0"]);

    let table = klug(&s, &["events", "--msg-id", "m1"]).await.unwrap();
    assert!(
        table.contains("| event_type  | compute.instance.create.end |"),
        "{table}"
    );
    assert!(
        table.contains("| timestamp   | 2014-07-01 12:00:10         |"),
        "{table}"
    );
    let table = klug(&s, &["events", "--count"]).await.unwrap();
    assert_eq!(
        table,
        "+-------+\n| Count |\n+-------+\n| 4     |\n+-------+\n"
    );
}

#[tokio::test]
async fn streams_details_reset_and_delete() {
    let s = start(ApiConfig::default(), "streams").await;
    let v = json_out(&s, &["streams", "--state", "error"]).await;
    assert_eq!(v[0]["id"], s.errored);
    assert_eq!(v[0]["distinguishing_traits"], json!({"instance_id": "i-b"}));
    let v = json_out(&s, &["streams", "--count", "--name", "usage"]).await;
    assert_eq!(v, json!({"count": 2}));

    let id = s.active.to_string();
    let table = klug(&s, &["streams", "--id", &id, "--details"])
        .await
        .unwrap();
    assert!(
        table.contains("| Stream  | state            | active "),
        "{table}"
    );
    assert!(
        table.contains("| D.Trait | instance_id      | i-a "),
        "{table}"
    );
    assert!(table.contains("Events:\n"), "{table}");
    assert!(table.contains("| message_id  | m0 "), "{table}");

    let err = klug(&s, &["streams", "reset", &id]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the server answered 409 Conflict: stream {id} is in state active; only error, \
             expire_error, firing and expiring streams can be reset"
        )
    );
    let v = json_out(&s, &["streams", "reset", &s.errored.to_string()]).await;
    assert_eq!(v[0]["state"], "retry_fire");

    let out = klug(&s, &["streams", "delete", &id]).await.unwrap();
    assert_eq!(out, format!("stream {id} deleted\n"));
    assert!(s.store.get_stream(s.active, false).await.unwrap().is_none());
    let err = klug(&s, &["streams", "delete", &id]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("the server answered 404 Not Found: stream {id} not found")
    );
}

#[tokio::test]
async fn the_token_is_sent_when_given() {
    let config = ApiConfig {
        auth_token: Some("tok".into()),
        ..ApiConfig::default()
    };
    let s = start(config, "token").await;
    let id = s.errored.to_string();
    let err = klug(&s, &["streams", "reset", &id]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the server answered 401 Unauthorized: missing or invalid bearer token"
    );
    let v = json_out(&s, &["--token", "tok", "streams", "reset", &id]).await;
    assert_eq!(v[0]["state"], "retry_fire");
}

#[tokio::test]
async fn the_binary_reports_server_errors_with_a_non_zero_exit() {
    let s = start(ApiConfig::default(), "binary").await;
    let url = s.url.clone();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_klug"))
                .args(args)
                .env_remove("KLUG_TOKEN")
                .output()
                .unwrap()
        })
    };
    let args = vec![
        "--url".into(),
        url.clone(),
        "events".into(),
        "--from".into(),
        "soon".into(),
    ];
    let out = run(args).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(
            "klug: the server answered 400 Bad Request: invalid parameter from_datetime: \"soon\""
        ),
        "{stderr}"
    );
    let out = run(vec!["--url".into(), url, "events".into(), "--count".into()])
        .await
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().contains("| 4 "));
    let out = run(vec!["completions".into(), "bash".into()])
        .await
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().contains("_klug()"));
}
