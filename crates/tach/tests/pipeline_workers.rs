//! Several `tach pipeline` processes on one PostgreSQL or MariaDB database never fire or
//! expire one stream twice (issue 3, item 4).

mod common;

use std::process::{Command, Stdio};
use std::thread;

use chrono::{Duration, Utc};
use common::{Server, ServerDb, stderr, tach, workdir_with};
use tach_distiller::{Event, Trait, TraitValue};
use tach_engine::WinchesterConfig;
use tach_store::{Store, StreamFilter, StreamState};
use tach_worker::WorkerSetup;

/// Streams ready to fire (a `.end` came) and streams only waiting for their expiry.
const TRIGGERS: &str = "\
- name: race
  distinguished_by: [instance_id]
  expiration: \"$last + 1m\"
  fire_pipeline: race_pipeline
  expire_pipeline: race_pipeline
  match_criteria:
    - event_type: \"compute.instance.*\"
  fire_criteria:
    - event_type: \"*.end\"
";

const STREAMS: usize = 240;
const WORKERS: usize = 3;

/// `tach pipeline --once` run again and again until a pass finds nothing; the fired and
/// expired counts of every pass it printed.
fn drain(dir: &std::path::Path) -> (u64, u64) {
    let (mut fired, mut expired) = (0, 0);
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_tach"))
            .args(["pipeline", "--config", "winchester.yaml", "--once"])
            .current_dir(dir)
            .env("TACH_LOG", "error")
            .stdout(Stdio::null())
            .output()
            .expect("running tach pipeline");
        assert!(out.status.success(), "{}", stderr(&out));
        let err = stderr(&out);
        let line = err
            .lines()
            .find_map(|l| l.strip_prefix("tach pipeline: fired "))
            .unwrap_or_else(|| panic!("no summary in {err}"));
        // "F, expired E, errors 0"
        let numbers: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().expect("a count"))
            .collect();
        assert_eq!(numbers.len(), 3, "{line}");
        assert_eq!(numbers[2], 0, "no errors: {line}");
        if numbers[0] + numbers[1] == 0 {
            return (fired, expired);
        }
        fired += numbers[0];
        expired += numbers[1];
    }
}

async fn racing_workers(server: Server, tag: &str) {
    let db = ServerDb::create(server, tag).await;
    let dir = workdir_with(
        &db.url,
        "purge_completed_streams: false\npipeline_worker_batch_size: 7\n",
    );
    std::fs::write(dir.join("triggers.yaml"), TRIGGERS).unwrap();
    std::fs::write(dir.join("pipelines.yaml"), "race_pipeline:\n  - logger\n").unwrap();
    let out = tach(&["db", "migrate", "--config", "winchester.yaml"], &dir);
    assert!(out.status.success(), "{}", stderr(&out));

    // Streams as an ingest worker would leave them an hour ago: every other one ready to fire,
    // the rest expired by now.
    let config = WinchesterConfig::load(dir.join("winchester.yaml")).unwrap();
    let setup = WorkerSetup::load(&config).unwrap();
    let store = Store::connect(&db.url).await.unwrap();
    let mut manager = setup.trigger_manager(store.clone());
    let then = Utc::now() - Duration::hours(1);
    let mut events = Vec::new();
    for i in 0..STREAMS {
        let kinds: &[&str] = if i % 2 == 0 {
            &["start", "end"]
        } else {
            &["start"]
        };
        for kind in kinds {
            events.push(Event {
                message_id: format!("race-{i}-{kind}"),
                event_type: format!("compute.instance.create.{kind}"),
                timestamp: then,
                traits: vec![Trait {
                    name: "instance_id".into(),
                    value: TraitValue::Text(format!("i-{i}")),
                }],
            });
        }
    }
    let report = manager.add_events(&events, then).await.unwrap();
    assert_eq!(report.streams_created, STREAMS as u64);

    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let dir = dir.clone();
            thread::spawn(move || drain(&dir))
        })
        .collect();
    let (mut fired, mut expired) = (0, 0);
    for worker in workers {
        let (f, e) = worker.join().expect("a worker thread");
        fired += f;
        expired += e;
    }
    // Each stream exactly once across all processes.
    assert_eq!(fired, (STREAMS / 2) as u64);
    assert_eq!(expired, (STREAMS / 2) as u64);
    let streams = store.list_streams(&StreamFilter::default()).await.unwrap();
    assert_eq!(streams.len(), STREAMS);
    assert!(
        streams.iter().all(|s| s.state == StreamState::Completed),
        "{:?}",
        streams.iter().map(|s| s.state).collect::<Vec<_>>()
    );
    store.close().await;
    db.drop_db().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_pipeline_processes_fire_each_stream_once_on_postgres() {
    racing_workers(Server::Postgres, "pgrace").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_pipeline_processes_fire_each_stream_once_on_mysql() {
    racing_workers(Server::Mysql, "myrace").await;
}
