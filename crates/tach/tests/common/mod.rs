//! What the process tests of the `tach` binary share: running it, fresh working directories
//! with a winchester.yaml, and notigen output.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Duration, TimeZone, Utc};
use sqlx::{AnyConnection, Connection, Executor};
use tach_notigen::{Envelope, Generator, NotigenConfig};

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
