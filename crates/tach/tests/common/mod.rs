//! What the process tests of the `tach` binary share: running it, fresh working directories
//! with a winchester.yaml, and notigen output.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Duration, TimeZone, Utc};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, ConnectionProperties};
use sqlx::{AnyConnection, Connection, Executor, Row};
use tach_notigen::{Envelope, Generator, NotigenConfig};

/// The local RabbitMQ.
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Runs `tach args` in `dir` with only errors logged.
pub fn tach(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tach"))
        .args(args)
        .current_dir(dir)
        .env("TACH_LOG", "error")
        .output()
        .expect("running tach")
}

/// A running `tach api`, killed when dropped.
pub struct Api {
    pub child: Child,
    pub url: String,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tach args` (an `api` command line) in `dir` and waits for the address it prints.
pub fn start_api_with(dir: &Path, args: &[&str]) -> Api {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tach"))
        .args(args)
        .current_dir(dir)
        .env("TACH_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting tach api");
    let mut line = String::new();
    let out = child.stdout.take().expect("piped stdout");
    BufReader::new(out).read_line(&mut line).expect("reading");
    let url = line
        .trim()
        .strip_prefix("tach api listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Api { child, url }
}

/// Sends `sig` (`-TERM`, `-9`, ...) to `child` with kill(1).
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("running kill")
        .success();
    assert!(ok, "kill {sig}");
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The repository's config/ directory.
pub fn repo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../config")
        .canonicalize()
        .expect("config/ exists")
}

/// A fresh working directory with a winchester.yaml using `url`, config/'s other files and
/// `extra` appended (further sections). Files the test writes into the directory (its own
/// triggers.yaml, say) come before config/'s in the search path.
pub fn workdir_with(url: &str, extra: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tach_cli_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the work directory");
    let config = format!(
        "config_path: [\"{}\", \"{}\"]\ndatabase:\n  url: {url}\n\
         distiller_config: event_definitions.yaml\ntrigger_definitions: triggers.yaml\n\
         pipeline_config: pipelines.yaml\npipeline_handlers:\n  logger: logger\n  usage: usage\n\
         {extra}",
        dir.display(),
        repo_config().display()
    );
    std::fs::write(dir.join("winchester.yaml"), config).expect("writing winchester.yaml");
    dir
}

/// Notigen output (seed 11, 10 operations per hour from 2026-01-01) for `days` simulated days,
/// as lines.
pub fn notigen_lines(days: i64) -> Vec<String> {
    let generator = Generator::new(NotigenConfig {
        seed: 11,
        operations_per_hour: 10.0,
        start: Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid start"),
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

/// `count` notigen notifications (oslo envelopes when `oslo`), as JSON text.
pub fn notifications(count: u64, seed: u64, oslo: bool) -> Vec<String> {
    let envelope = if oslo { Envelope::Oslo } else { Envelope::Bare };
    Generator::new(NotigenConfig {
        seed,
        operations_per_hour: 3000.0,
        start: Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid start"),
        duration: None,
        count: Some(count),
        envelope,
    })
    .map(|n| {
        let mut line = String::new();
        n.write_json(envelope, &mut line);
        line
    })
    .collect()
}

/// Publishes `bodies` to `exchange` with `routing_key` on the local RabbitMQ, each mandatory
/// and confirmed: panics unless the broker routed every one to a queue and acknowledged it.
pub async fn publish_amqp(
    exchange: &str,
    routing_key: &str,
    bodies: impl IntoIterator<Item = Vec<u8>>,
) {
    let conn = lapin::Connection::connect(AMQP_URL, ConnectionProperties::default())
        .await
        .expect("RabbitMQ on 127.0.0.1:5672");
    let ch = conn.create_channel().await.expect("a channel");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("publisher confirms");
    let mut pending = Vec::new();
    for body in bodies {
        let confirm = ch
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &body,
                BasicProperties::default(),
            )
            .await
            .expect("publishing");
        pending.push(confirm);
        if pending.len() >= 1000 {
            for c in pending.drain(..) {
                assert_routed(c.await.expect("a confirmation"), routing_key);
            }
        }
    }
    for c in pending {
        assert_routed(c.await.expect("a confirmation"), routing_key);
    }
    conn.close(200, "done".into()).await.ok();
}

fn assert_routed(confirmation: lapin::Confirmation, routing_key: &str) {
    assert!(
        confirmation.is_ack() && confirmation.take_message().is_none(),
        "the broker routed no queue for {routing_key}"
    );
}

/// (rows, distinct message ids) in `events` of the database at `url`.
pub async fn event_counts(url: &str) -> (i64, i64) {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url)
        .await
        .expect("opening the database");
    let row = sqlx::query("SELECT COUNT(*), COUNT(DISTINCT message_id) FROM events")
        .fetch_one(&mut conn)
        .await
        .expect("counting events");
    conn.close().await.ok();
    (
        row.try_get(0).expect("a count"),
        row.try_get(1).expect("a count"),
    )
}

/// A database server the process tests run against.
#[derive(Debug, Clone, Copy)]
pub enum Server {
    /// PostgreSQL (`TACH_TEST_POSTGRES_URL`, default the local `test` database).
    Postgres,
    /// MySQL/MariaDB (`TACH_TEST_MYSQL_URL`, default the local `test` database).
    Mysql,
}

/// A database created on a server for one test; [`ServerDb::drop_db`] removes it.
pub struct ServerDb {
    /// The database's URL.
    pub url: String,
    admin: String,
    name: String,
    server: Server,
}

impl ServerDb {
    /// Creates a fresh, empty database named after `tag`, the process and a counter.
    pub async fn create(server: Server, tag: &str) -> ServerDb {
        sqlx::any::install_default_drivers();
        let admin = match server {
            Server::Postgres => std::env::var("TACH_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
            Server::Mysql => std::env::var("TACH_TEST_MYSQL_URL")
                .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned()),
        };
        let name = format!(
            "tach_{tag}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = AnyConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("database server at {admin}: {e}"));
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("creating the test database");
        conn.close().await.ok();
        let (base, _) = admin.rsplit_once('/').expect("a database URL");
        ServerDb {
            url: format!("{base}/{name}"),
            admin,
            name,
            server,
        }
    }

    /// Drops the database (closing other sessions on PostgreSQL).
    pub async fn drop_db(self) {
        let force = match self.server {
            Server::Postgres => " WITH (FORCE)",
            Server::Mysql => "",
        };
        let mut conn = AnyConnection::connect(&self.admin).await.expect("admin");
        conn.execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {}{force}",
            self.name
        )))
        .await
        .expect("dropping the test database");
        conn.close().await.ok();
    }
}
