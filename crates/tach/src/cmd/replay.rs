//! `tach replay`: the whole pipeline over notification files with an event-time clock.
//!
//! Notifications are distilled and written to the store in batches; after each batch the
//! pipeline passes run with the clock at the newest event time seen, so streams fire and expire
//! as they would have live. `--until` and `--drain` run the final passes as if time had reached
//! that point (`--drain`: the far future, so every stream fires or expires).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use tach_distiller::Distiller;
use tach_worker::{Replay, ReplayOptions, ReplayTotals, WorkerSetup, far_future};

use crate::cmd::db;
use crate::progress::Progress;

/// Poison lines listed one by one in the summary; the rest are only counted.
const POISON_SHOWN: usize = 10;

/// Arguments of `tach replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// winchester.yaml (database, distiller, triggers and pipelines).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Notification files, one JSON notification per line.
    #[arg(value_name = "FILE.jsonl", required = true)]
    files: Vec<PathBuf>,
    /// At the end, run the fire/expire passes as if the clock had reached DATETIME.
    #[arg(long, value_name = "DATETIME", conflicts_with = "drain")]
    until: Option<String>,
    /// At the end, fire or expire every stream that is due at any time (the far future).
    #[arg(long)]
    drain: bool,
    /// Events written per store transaction (the pipeline passes run between them).
    #[arg(long, value_name = "N", default_value_t = 5000)]
    batch_size: usize,
    /// Transactions writing each batch at once, split so that events sharing a stream stay
    /// together (default: 2 on PostgreSQL; 1 on SQLite, which has one writer at a time, and on
    /// MySQL, where concurrent stream inserts deadlock on InnoDB's index locks).
    #[arg(long, value_name = "N")]
    writers: Option<usize>,
}

/// What reading the files gave.
#[derive(Debug, Default)]
struct Reading {
    notifications: u64,
    dropped: u64,
    poison: u64,
    poison_shown: Vec<String>,
}

/// Runs `tach replay`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let until = match &args.until {
        Some(text) => Some(
            tach_timex::parse_datetime(text)
                .with_context(|| format!("--until: `{text}` is not a datetime"))?,
        ),
        None if args.drain => Some(far_future()),
        None => None,
    };
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be at least 1");
    anyhow::ensure!(args.writers != Some(0), "--writers must be at least 1");
    db::runtime()?.block_on(replay(&args, until))
}

async fn replay(args: &Args, until: Option<DateTime<Utc>>) -> anyhow::Result<ExitCode> {
    let config = db::load_config(&args.config)?;
    let distiller_path = config
        .distiller_config_path()
        .context("cannot find the distiller configuration")?;
    let distiller = Distiller::from_file(&distiller_path, config.catch_all_notifications)
        .with_context(|| format!("cannot load {}", distiller_path.display()))?;
    let mut setup =
        WorkerSetup::load_with_registry(&config, tach_publish::registry_with_publishers())
            .context("cannot load triggers and pipelines")?;
    // Counters are reported once, in the summary, rather than reset every period.
    setup.statistics_period = Duration::MAX;
    // With --writers, a connection for each writer's transaction and each pass runner's, plus
    // two for the store's background work (the default pool fits the default writers).
    let options = tach_store::ConnectOptions {
        max_connections: args.writers.map(|w| {
            u32::try_from(w)
                .unwrap_or(u32::MAX)
                .saturating_mul(2)
                .saturating_add(2)
        }),
        ..Default::default()
    };
    let store = db::connect_checked_opts(&config, &args.config, &options).await?;
    let total_bytes: u64 = args
        .files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    let started = Instant::now();
    let mut options = ReplayOptions::for_backend(store.backend(), args.batch_size);
    if let Some(writers) = args.writers {
        options.writers = writers;
    }
    let mut replay = Replay::new(|| setup.pipeline_manager(store.clone()), options);
    let mut reading = Reading::default();
    let mut progress = Progress::new();
    let mut done_bytes = 0u64;
    for file in &args.files {
        read_file(
            file,
            &distiller,
            &mut replay,
            &mut reading,
            &mut progress,
            (&mut done_bytes, total_bytes),
        )
        .await?;
    }
    let totals = replay
        .finish(until)
        .await
        .context("cannot finish the replay")?;
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    print_summary(&reading, &totals, &mut replay, &setup, seconds);
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Reads one file line by line into the replay.
async fn read_file(
    path: &Path,
    distiller: &Distiller,
    replay: &mut Replay,
    reading: &mut Reading,
    progress: &mut Progress,
    (done_bytes, total_bytes): (&mut u64, u64),
) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        *done_bytes += n as u64;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        reading.notifications += 1;
        match distiller.distill_bytes(&line) {
            Ok(Some(event)) => replay.push(event).await.with_context(|| {
                format!("cannot store events (at {}:{line_no})", path.display())
            })?,
            Ok(None) => reading.dropped += 1,
            Err(reason) => {
                reading.poison += 1;
                if reading.poison_shown.len() < POISON_SHOWN {
                    reading
                        .poison_shown
                        .push(format!("{}:{line_no}: {reason}", path.display()));
                }
            }
        }
        if reading.notifications.is_multiple_of(1024) {
            let fraction = if total_bytes > 0 {
                *done_bytes as f64 / total_bytes as f64
            } else {
                1.0
            };
            let read = reading.notifications;
            let clock = replay.clock();
            progress.update(fraction, || match clock {
                Some(clock) => format!("{read} notifications, clock {clock}"),
                None => format!("{read} notifications"),
            });
        }
    }
}

/// The summary on stderr.
fn print_summary(
    reading: &Reading,
    totals: &ReplayTotals,
    replay: &mut Replay,
    setup: &WorkerSetup,
    seconds: f64,
) {
    let ingest = &totals.ingest;
    let passes = &totals.pipelines;
    let rate = if seconds > 0.0 {
        reading.notifications as f64 / seconds
    } else {
        0.0
    };
    eprintln!(
        "tach replay: {} notifications read in {seconds:.3} s ({rate:.0}/s)",
        reading.notifications
    );
    eprintln!(
        "  events stored: {} (+{} from pipelines), dropped: {}, duplicates: {}, poison lines: {}",
        ingest.stored, passes.new_events.stored, reading.dropped, ingest.duplicates, reading.poison
    );
    for line in &reading.poison_shown {
        eprintln!("    poison {line}");
    }
    if reading.poison > reading.poison_shown.len() as u64 {
        eprintln!(
            "    ... and {} more poison lines",
            reading.poison - reading.poison_shown.len() as u64
        );
    }
    eprintln!("  writers: {}", replay.writers());
    eprintln!(
        "  streams created: {}, fired: {}, expired: {}, errored: {}",
        ingest.streams_created + passes.new_events.streams_created,
        passes.fired,
        passes.expired,
        passes.errors
    );
    if let Some(clock) = replay.clock() {
        eprintln!("  clock at the end: {}", tach_timex::format_datetime(clock));
    }
    let counters = replay.counters();
    for (index, trigger) in setup.triggers.iter().enumerate() {
        let Some(c) = counters.trigger(index) else {
            continue;
        };
        eprintln!(
            "  trigger {}: {} match checks, {} matched, {} new streams, {} events added, {} \
             ready to fire, {} fired, {} expired, {} errors",
            trigger.name,
            c.match_checks,
            c.match_passed,
            c.new_streams,
            c.added_events,
            c.ready_to_fire,
            c.fired,
            c.expired,
            c.errors
        );
    }
}
