//! The sandbox as a user starts it: `sandbox/start.sh` runs ingest, the pipeline worker, the
//! API and a publishing notigen in a screen session on the local RabbitMQ; events arrive,
//! streams complete and the API answers; `sandbox/stop.sh` ends every process with SIGTERM,
//! so that ingest drains its batches and the pipeline worker finishes its stream.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hyper::Method;
use klug::Client;
use serde_json::Value;

/// Runs `sandbox/<script>` with the test's session, directory and address.
fn script(script: &str, session: &str, run: &Path, bind: &str) -> Output {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tach"))
        .parent()
        .expect("the binary's directory");
    Command::new("bash")
        .arg(common::repo_config().join("../sandbox").join(script))
        .env("SANDBOX_SESSION", session)
        .env("SANDBOX_RUN", run)
        .env("SANDBOX_BIND", bind)
        .env("TACH_BIN_DIR", bin_dir)
        .env("RATE", "200")
        .env("RESET", "1")
        .env("TACH_LOG", "info")
        .output()
        .expect("running a sandbox script")
}

/// Ends the test's screen session if the test did not (a failed assertion, say).
struct Session<'a> {
    name: &'a str,
    run: &'a Path,
    bind: &'a str,
    stopped: bool,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if !self.stopped {
            script("stop.sh", self.name, self.run, self.bind);
        }
    }
}

/// The count `path` answers, or `None` while the API is not up.
async fn count(client: &Client, path: &str, query: &[(&str, String)]) -> Option<u64> {
    match client.call(Method::GET, path, query).await {
        Ok(Some(Value::Array(rows))) => rows.first()?.get("count")?.as_u64(),
        _ => None,
    }
}

fn screen_sessions() -> String {
    let out = Command::new("screen")
        .arg("-list")
        .output()
        .expect("running screen");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn the_sandbox_ingests_fires_and_answers_then_stops() {
    let session = format!("tachtest{}", std::process::id());
    let run = std::env::temp_dir().join(format!("tach-sandbox-{}", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let bind = format!("127.0.0.1:{port}");
    let mut guard = Session {
        name: &session,
        run: &run,
        bind: &bind,
        stopped: false,
    };

    let out = script("start.sh", &session, &run, &bind);
    assert!(
        out.status.success(),
        "start.sh failed: {}{}",
        common::stdout(&out),
        common::stderr(&out)
    );
    assert!(common::stdout(&out).contains(&format!("screen -r {session}")));
    assert!(screen_sessions().contains(&format!(".{session}")));
    // A second start with the session running is refused.
    let again = script("start.sh", &session, &run, &bind);
    assert!(!again.status.success());
    assert!(common::stderr(&again).contains("already running"));

    // Notifications flow in, and request streams fire 30 s after their `.end` event.
    let client = Client::new(&format!("http://{bind}"), None).expect("a client");
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut events, mut completed) = (0, 0);
    while Instant::now() < deadline {
        events = count(&client, "/v1/events/count", &[]).await.unwrap_or(0);
        completed = count(
            &client,
            "/v1/streams/count",
            &[("state", "completed".to_owned())],
        )
        .await
        .unwrap_or(0);
        if events > 0 && completed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let logs = || {
        ["ingest.log", "pipeline.log", "api.log"]
            .map(|f| std::fs::read_to_string(run.join(f)).unwrap_or_default())
            .join("\n")
    };
    assert!(events > 0, "no events arrived: {}", logs());
    assert!(completed > 0, "no stream completed: {}", logs());
    let created = count(
        &client,
        "/v1/events/count",
        &[("event_name", "compute.instance.create.*".to_owned())],
    )
    .await;
    assert!(created.is_some_and(|n| n > 0), "{created:?}");

    let out = script("stop.sh", &session, &run, &bind);
    guard.stopped = true;
    assert!(out.status.success(), "{}", common::stderr(&out));
    // Ingest, pipeline worker, API and notigen, each ended by SIGTERM: ingest drained its
    // batches in flight and the worker finished its stream.
    assert!(
        common::stdout(&out).contains("(4 tach processes ended)"),
        "{}{}",
        common::stdout(&out),
        common::stderr(&out)
    );
    assert!(!screen_sessions().contains(&format!(".{session}")));
    let log = |f: &str| std::fs::read_to_string(run.join(f)).unwrap_or_default();
    assert!(
        log("ingest.log").contains("Ingest finished"),
        "{}",
        log("ingest.log")
    );
    assert!(
        log("pipeline.log").contains("Stopping after the current stream"),
        "{}",
        log("pipeline.log")
    );
    // The API went with the session, and the database stays.
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&client, "/v1/events/count", &[]).await.is_some() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(count(&client, "/v1/events/count", &[]).await, None);
    assert!(run.join("tach.db").exists());
    // Stopping a stopped sandbox says so.
    let out = script("stop.sh", &session, &run, &bind);
    assert!(!out.status.success());
    assert!(common::stderr(&out).contains("no sandbox is running"));
    std::fs::remove_dir_all(&run).ok();
}
