//! The Ansible roles (ansible/): the playbook parses, the configuration tach_common renders
//! is one tach runs on, and the service units run tach's commands on it. Needs
//! `ansible-playbook` (ansible-core; `.ci/run` installs it).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{stderr, stdout, tach};
use hyper::Method;
use klug::{Client, Error};
use lapin::options::QueueDeleteOptions;
use lapin::{Connection, ConnectionProperties};

/// The repository's ansible/ directory.
fn ansible_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../ansible")
        .canonicalize()
        .expect("ansible/ exists")
}

/// Runs `ansible-playbook args` in ansible/.
fn playbook(args: &[&str]) -> Output {
    Command::new("ansible-playbook")
        .args(args)
        .current_dir(ansible_dir())
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run ansible-playbook ({e}): install ansible-core (pip install ansible-core)"
            )
        })
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        stdout(out),
        stderr(out)
    );
}

/// The `changed=N` of the play recap.
fn changed(out: &Output) -> u32 {
    let text = stdout(out);
    let recap = text
        .lines()
        .find(|l| l.contains(" changed="))
        .unwrap_or_else(|| panic!("no play recap in:\n{text}"));
    recap
        .split_whitespace()
        .find_map(|w| w.strip_prefix("changed="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no changed= in {recap:?}"))
}

#[test]
fn the_site_playbook_parses() {
    let out = playbook(&["--syntax-check", "-i", "inventory.example.ini", "site.yml"]);
    assert_ok("ansible-playbook --syntax-check site.yml", &out);
}

#[tokio::test]
async fn the_rendered_configuration_runs_tach_and_a_second_run_changes_nothing() {
    let dir = std::env::temp_dir().join(format!("tach_ansible_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the work directory");
    let etc = dir.join("etc");
    let vars = [
        format!("tach_etc_dir={}", etc.display()),
        format!("tach_database_url=sqlite://{}/tach.db", dir.display()),
        "tach_api_bind=127.0.0.1:0".to_owned(),
        "tach_api_auth_token=s3cret-token".to_owned(),
        // The default source's shape, on a queue of this test's own.
        format!(
            r#"{{"tach_ingest_sources": [{{"type": "rabbitmq",
              "url": "amqp://guest:guest@127.0.0.1:5672/%2f",
              "queues": [{{"exchange": "tach.ansible", "exchange_type": "topic",
                "queue": "tach.ansible.{0}", "routing_key": "tach.ansible.{0}",
                "durable": false, "prefetch": 100}}]}}]}}"#,
            std::process::id()
        ),
    ];
    let mut args = vec!["-i", "localhost,", "-c", "local", "tests/render.yml"];
    for v in &vars {
        args.extend(["-e", v.as_str()]);
    }
    let first = playbook(&args);
    assert_ok("rendering the configuration", &first);
    // The directory, the three definitions (one looped task) and winchester.yaml.
    assert_eq!(changed(&first), 3, "{}", stdout(&first));
    let second = playbook(&args);
    assert_ok("rendering the configuration again", &second);
    assert_eq!(
        changed(&second),
        0,
        "a second run changes nothing:\n{}",
        stdout(&second)
    );

    // tach takes it: the schema, a replay of a day of notifications, and the API with its
    // token.
    let config = etc.join("winchester.yaml");
    let config = config.to_str().expect("a UTF-8 path");
    let out = tach(&["db", "migrate", "--config", config], &dir);
    assert_ok("tach db migrate", &out);
    let lines = common::notigen_lines(1);
    std::fs::write(dir.join("n.jsonl"), lines.join("\n")).expect("writing notifications");
    let out = tach(&["replay", "--config", config, "--drain", "n.jsonl"], &dir);
    assert_ok("tach replay", &out);
    assert!(
        stderr(&out).contains(&format!("events stored: {} ", lines.len())),
        "{}",
        stderr(&out)
    );

    let api = common::start_api_with(&dir, &["api", "--config", config]);
    let open = Client::new(&api.url, None).expect("a client");
    let events = open
        .call(Method::GET, "/v1/events", &[("limit", "1".to_owned())])
        .await
        .expect("reads need no token");
    assert!(matches!(events, Some(serde_json::Value::Array(ref rows)) if rows.len() == 1));
    match open.call(Method::DELETE, "/v1/streams/1", &[]).await {
        Err(Error::Server { status, .. }) => assert!(status.starts_with("401"), "{status}"),
        other => panic!("a DELETE without the token should be refused: {other:?}"),
    }
    let authorised = Client::new(&api.url, Some("s3cret-token".to_owned())).expect("a client");
    authorised
        .call(Method::DELETE, "/v1/streams/1", &[])
        .await
        .expect("the rendered token is the API's");
    drop(api);

    // tach ingest takes the rendered ingest section (unknown or malformed keys stop it at
    // start-up), consumes the rendered queue, and stops cleanly on SIGTERM.
    let url = format!("sqlite://{}/tach.db", dir.display());
    let (before, _) = common::event_counts(&url).await;
    let mut ingest = Command::new(env!("CARGO_BIN_EXE_tach"))
        .args(["ingest", "--config", config])
        .current_dir(&dir)
        .env("TACH_LOG", "error")
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting tach ingest");
    std::thread::sleep(Duration::from_secs(2));
    if let Some(status) = ingest.try_wait().expect("polling tach ingest") {
        let mut text = String::new();
        if let Some(mut err) = ingest.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        panic!("tach ingest exited at start-up ({status}): {text}");
    }
    // Ingest declared and bound its queue at start-up: what goes to the exchange with the
    // rendered routing key is stored.
    let (exchange, queue) = (
        "tach.ansible".to_owned(),
        format!("tach.ansible.{}", std::process::id()),
    );
    let sent = common::notifications(25, 29, false);
    common::publish_amqp(
        &exchange,
        &queue,
        sent.iter().map(|l| l.as_bytes().to_vec()),
    )
    .await;
    let sent = sent.len() as i64;
    let started = Instant::now();
    let mut stored = common::event_counts(&url).await.0 - before;
    while stored < sent && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stored = common::event_counts(&url).await.0 - before;
    }
    common::signal(&ingest, "-TERM");
    let out = ingest.wait_with_output().expect("waiting for tach ingest");
    delete_queue(&queue).await;
    assert_ok("tach ingest until SIGTERM", &out);
    assert_eq!(
        stored,
        sent,
        "events ingested from the rendered queue:\n{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Deletes the test's queue (its exchange is shared by every run of this test).
async fn delete_queue(queue: &str) {
    if let Ok(conn) = Connection::connect(common::AMQP_URL, ConnectionProperties::default()).await {
        if let Ok(ch) = conn.create_channel().await {
            ch.queue_delete(queue.into(), QueueDeleteOptions::default())
                .await
                .ok();
        }
        conn.close(200, "done".into()).await.ok();
    }
}

#[test]
fn each_service_unit_runs_its_tach_command_on_the_deployed_configuration() {
    let dir = std::env::temp_dir().join(format!("tach_ansible_units_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the unit directory");
    let target = format!("tach_systemd_dir={}", dir.display());
    let out = playbook(&[
        "-i",
        "localhost,",
        "-c",
        "local",
        "tests/units.yml",
        "-e",
        &target,
    ]);
    assert_ok("rendering the units", &out);
    for (unit, command) in [
        ("tach-api.service", "api"),
        ("tach-ingest@.service", "ingest"),
        ("tach-pipeline@.service", "pipeline"),
    ] {
        let text = std::fs::read_to_string(dir.join(unit))
            .unwrap_or_else(|e| panic!("{unit} was not written: {e}"));
        let exec = format!(
            "\nExecStart=/usr/local/bin/tach {command} --config /etc/tach/winchester.yaml\n"
        );
        assert!(text.contains(&exec), "{unit}:\n{text}");
        assert!(text.contains("\nUser=tach\n"), "{unit}:\n{text}");
        assert!(
            text.contains("\nReadWritePaths=/var/lib/tach\n"),
            "{unit}:\n{text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The tach_db role's settings as `tests/db_settings.yml` prints them on this host, with
/// `extra` variables: (settings, the host's memory in MB).
fn db_settings(extra: &[&str]) -> (serde_json::Value, u64) {
    let mut args = vec!["-i", "localhost,", "-c", "local", "tests/db_settings.yml"];
    for v in extra {
        args.extend(["-e", v]);
    }
    let out = playbook(&args);
    assert_ok("printing the tach_db settings", &out);
    let text = stdout(&out);
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("\"msg\": \"settings="))
        .unwrap_or_else(|| panic!("no settings in {text}"));
    let (json, memory) = line
        .trim_end_matches('"')
        .split_once(" memtotal_mb=")
        .unwrap_or_else(|| panic!("no memtotal_mb in {line}"));
    let json: serde_json::Value =
        serde_json::from_str(&json.replace("\\\"", "\"")).expect("settings as JSON");
    (json, memory.parse().expect("memtotal_mb"))
}

#[test]
fn the_database_role_sizes_postgresql_to_the_host_memory() {
    let (settings, memory) = db_settings(&[]);
    assert!(memory > 0);
    assert_eq!(
        settings["shared_buffers"],
        format!("{}MB", (memory / 4).min(8192))
    );
    assert_eq!(
        settings["effective_cache_size"],
        format!("{}MB", memory * 3 / 4)
    );
    let (settings, _) = db_settings(&["tach_db_shared_buffers=1GB"]);
    assert_eq!(settings["shared_buffers"], "1GB");
}
