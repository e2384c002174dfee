//! What the process tests of the `tach` binary share: running it, fresh working directories
//! with a winchester.yaml, and notigen output.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Duration, TimeZone, Utc};
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
/// `extra` appended (further sections).
pub fn workdir_with(url: &str, extra: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tach_cli_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the work directory");
    let config = format!(
        "config_path: [\"{}\"]\ndatabase:\n  url: {url}\n\
         distiller_config: event_definitions.yaml\ntrigger_definitions: triggers.yaml\n\
         pipeline_config: pipelines.yaml\npipeline_handlers:\n  logger: logger\n  usage: usage\n\
         {extra}",
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
