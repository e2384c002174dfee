//! `tach db migrate`, `tach replay` and `tach pipeline` as processes: the schema check, the
//! replay summary, duplicate replays, and two replay processes racing on one PostgreSQL
//! database.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Duration, TimeZone, Utc};
use sqlx::{AnyConnection, Connection, Executor};
use tach_notigen::{Envelope, Generator, NotigenConfig};
use tach_store::{Store, StreamFilter, StreamState};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn tach(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tach"))
        .args(args)
        .current_dir(dir)
        .env("TACH_LOG", "error")
        .output()
        .expect("running tach")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn repo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../config")
        .canonicalize()
        .unwrap()
}

/// A fresh working directory with a winchester.yaml using `url` and config/'s other files
/// (or `triggers` when given).
fn workdir(url: &str, triggers: Option<&str>) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tach_cli_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let trigger_file = match triggers {
        Some(text) => {
            std::fs::write(dir.join("test_triggers.yaml"), text).unwrap();
            "test_triggers.yaml"
        }
        None => "triggers.yaml",
    };
    let config = format!(
        "config_path: [\"{}\", \"{}\"]\ndatabase:\n  url: {url}\n\
         distiller_config: event_definitions.yaml\ntrigger_definitions: {trigger_file}\n\
         pipeline_config: pipelines.yaml\npipeline_handlers:\n  logger: logger\n  usage: usage\n",
        dir.display(),
        repo_config().display()
    );
    std::fs::write(dir.join("winchester.yaml"), config).unwrap();
    dir
}

/// Notigen output for `days` simulated days, as lines.
fn notigen_lines(days: i64) -> Vec<String> {
    let generator = Generator::new(NotigenConfig {
        seed: 11,
        operations_per_hour: 10.0,
        start: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        duration: Some(Duration::days(days)),
        count: None,
        envelope: Envelope::Bare,
    });
    generator
        .map(|n| {
            let mut line = String::new();
            n.write_json(Envelope::Bare, &mut line);
            line
        })
        .collect()
}

#[test]
fn replay_refuses_an_unmigrated_database_then_replays_and_skips_duplicates() {
    let dir = workdir("sqlite://tach.db", None);
    let mut lines = notigen_lines(1);
    lines.insert(3, "{not json".to_owned());
    std::fs::write(dir.join("n.jsonl"), lines.join("\n") + "\n").unwrap();

    let out = tach(&["replay", "--config", "winchester.yaml", "n.jsonl"], &dir);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "is not ready (run `tach db migrate --config winchester.yaml`): the database has no \
             tach schema"
        ),
        "{}",
        stderr(&out)
    );

    let out = tach(&["db", "migrate", "--config", "winchester.yaml"], &dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("tach db migrate: schema migrated from version 0 to "));
    // The relative SQLite path is relative to the working directory.
    assert!(dir.join("tach.db").exists());
    let out = tach(&["db", "migrate", "--config", "winchester.yaml"], &dir);
    assert!(stdout(&out).starts_with("tach db migrate: schema already at version "));

    let out = tach(
        &[
            "replay",
            "--config",
            "winchester.yaml",
            "n.jsonl",
            "--drain",
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let read = lines.len();
    assert!(
        err.contains(&format!("tach replay: {read} notifications read")),
        "{err}"
    );
    assert!(err.contains("poison lines: 1"), "{err}");
    assert!(err.contains("poison n.jsonl:4: not valid JSON"), "{err}");
    assert!(err.contains("duplicates: 0"), "{err}");
    assert!(err.contains("  writers: 1\n"), "{err}");
    assert!(err.contains("trigger instance_usage: "), "{err}");
    assert!(err.contains(" s (") && err.contains("/s)"), "{err}");

    let out = tach(
        &[
            "replay",
            "--config",
            "winchester.yaml",
            "n.jsonl",
            "--writers",
            "0",
        ],
        &dir,
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--writers must be at least 1"),
        "{}",
        stderr(&out)
    );

    // Again, split among two writers (on SQLite they take turns): nothing new.
    let out = tach(
        &[
            "replay",
            "--config",
            "winchester.yaml",
            "n.jsonl",
            "--drain",
            "--writers",
            "2",
        ],
        &dir,
    );
    let err = stderr(&out);
    assert!(err.contains("  writers: 2\n"), "{err}");
    assert!(err.contains(&format!("duplicates: {}", read - 1)), "{err}");
    assert!(
        err.contains("events stored: 0 (+0 from pipelines)"),
        "{err}"
    );
    assert!(
        err.contains("streams created: 0, fired: 0, expired: 0, errored: 0"),
        "{err}"
    );

    let out = tach(&["pipeline", "--config", "winchester.yaml", "--once"], &dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("tach pipeline: fired 0, expired 0, errors 0"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Streams per instance, never expiring during the test: every stream for an instance must be
/// the same one, whichever process saw its events first.
const INSTANCE_TRIGGERS: &str = r#"
- name: per_instance
  distinguished_by:
    - instance_id
  expiration: "$last + 300d"
  expire_pipeline: request_expire
  match_criteria:
    - event_type: "compute.instance.*"
  fire_criteria:
    - event_type: never.happens
"#;

fn postgres_url() -> String {
    std::env::var("TACH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn mysql_url() -> String {
    std::env::var("TACH_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

#[tokio::test]
async fn two_replay_processes_open_one_stream_per_key_on_postgres() {
    two_replay_processes(&postgres_url(), "pg", " WITH (FORCE)").await;
}

#[tokio::test]
async fn two_replay_processes_open_one_stream_per_key_on_mysql() {
    two_replay_processes(&mysql_url(), "my", "").await;
}

/// Replays the interleaved halves of one notigen day with two processes at once.
async fn two_replay_processes(admin_url: &str, tag: &str, drop_suffix: &str) {
    sqlx::any::install_default_drivers();
    let name = format!("tach_cli_{tag}_{}", std::process::id());
    let mut admin = AnyConnection::connect(admin_url).await.unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .await
        .unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    let url = format!("{base}/{name}");

    let dir = workdir(&url, Some(INSTANCE_TRIGGERS));
    let lines = notigen_lines(1);
    let (mut a, mut b) = (String::new(), String::new());
    for (i, line) in lines.iter().enumerate() {
        let half = if i % 2 == 0 { &mut a } else { &mut b };
        half.push_str(line);
        half.push('\n');
    }
    std::fs::write(dir.join("a.jsonl"), a).unwrap();
    std::fs::write(dir.join("b.jsonl"), b).unwrap();
    let out = tach(&["db", "migrate", "--config", "winchester.yaml"], &dir);
    assert!(out.status.success(), "{}", stderr(&out));

    let spawn = |file: &str| {
        Command::new(env!("CARGO_BIN_EXE_tach"))
            .args([
                "replay",
                "--config",
                "winchester.yaml",
                file,
                "--batch-size",
                "50",
            ])
            .current_dir(&dir)
            .env("TACH_LOG", "error")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (pa, pb) = (spawn("a.jsonl"), spawn("b.jsonl"));
    for child in [pa, pb] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }

    let store = Store::connect(&url).await.unwrap();
    let streams = store
        .list_streams(&StreamFilter {
            trigger_name: Some("per_instance".to_owned()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for s in &streams {
        *per_key.entry(s.distinguishing_key.as_str()).or_default() += 1;
    }
    assert!(!per_key.is_empty());
    let doubled: Vec<_> = per_key.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "keys with several streams: {doubled:?}");
    assert!(
        streams
            .iter()
            .all(|s| s.state == StreamState::Active && s.attached)
    );
    // Every instance event is in its instance's stream.
    let events: i64 = streams.iter().map(|s| s.event_count).sum();
    let linked = store
        .count_events(&tach_store::EventFilter::default())
        .await
        .unwrap();
    assert!(events > 0 && events <= linked);
    store.close().await;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}{drop_suffix}"
        )))
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn pipeline_exits_zero_on_sigterm() {
    let dir = workdir("sqlite://tach.db", None);
    let out = tach(&["db", "migrate", "--config", "winchester.yaml"], &dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let child = Command::new(env!("CARGO_BIN_EXE_tach"))
        .args(["pipeline", "--config", "winchester.yaml"])
        .current_dir(&dir)
        .env("TACH_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let it reach its idle sleep (pipeline_worker_delay defaults to seconds).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Stopping after the current stream."),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
