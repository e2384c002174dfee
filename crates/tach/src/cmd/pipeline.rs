//! `tach pipeline`: the long-running worker that fires and expires ready streams.
//!
//! Each pass takes up to `pipeline_worker_batch_size` ready streams; when a pass finds nothing
//! the worker sleeps `pipeline_worker_delay`. Totals are logged every `statistics_period` (with
//! the trigger debug counters of triggers whose `debug_level` > 0), old events are trimmed when
//! `trim_events` is on, and SIGTERM or SIGINT make it finish the stream it is running, give back
//! the streams it had taken but not started, and exit 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use tach_store::Store;
use tach_worker::{PassReport, WorkerSetup};

use crate::cmd::db;

/// Arguments of `tach pipeline`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// winchester.yaml (database, triggers, pipelines and worker settings).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Run one pass (fire, then expire) and exit.
    #[arg(long)]
    once: bool,
}

/// Runs `tach pipeline`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    db::runtime()?.block_on(worker(args))
}

async fn worker(args: Args) -> anyhow::Result<ExitCode> {
    let config = db::load_config(&args.config)?;
    let setup = WorkerSetup::load_with_registry(&config, tach_publish::registry_with_publishers())
        .context("cannot load triggers and pipelines")?;
    let store = db::connect_checked(&config, &args.config).await?;
    let mut manager = setup.pipeline_manager(store.clone());
    let stop = manager.stop_flag();
    let stopped = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(watch_signals(Arc::clone(&stop), Arc::clone(&stopped)));

    let mut totals = PassReport::default();
    let mut last_statistics = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let pass = match manager.run_once(Utc::now()).await {
            Ok(pass) => pass,
            Err(e) if e.is_transient() && !args.once => {
                tracing::warn!(error = %e, "A pipeline pass failed; retrying after the delay.");
                PassReport::default()
            }
            Err(e) => return Err(e).context("a pipeline pass failed"),
        };
        totals.absorb(&pass);
        if last_statistics.elapsed() >= config.statistics_period {
            last_statistics = Instant::now();
            log_statistics(&totals);
        }
        if args.once {
            break;
        }
        if pass.handled() == 0 {
            if config.trim_events {
                trim(&store, &config, &stop).await?;
            }
            tokio::select! {
                () = tokio::time::sleep(config.pipeline_worker_delay) => {}
                () = stopped.notified() => {}
            }
        }
    }
    log_statistics(&totals);
    if args.once {
        eprintln!(
            "tach pipeline: fired {}, expired {}, errors {}",
            totals.fired, totals.expired, totals.errors
        );
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Sets `stop` (and wakes a sleeping worker) on SIGTERM or SIGINT.
async fn watch_signals(stop: Arc<AtomicBool>, stopped: Arc<tokio::sync::Notify>) {
    crate::cmd::wait_for_signal().await;
    tracing::info!("Stopping after the current stream.");
    stop.store(true, Ordering::Relaxed);
    stopped.notify_one();
}

/// Deletes events older than `trim_events_age`, a batch at a time, until none are left.
async fn trim(
    store: &Store,
    config: &tach_engine::WinchesterConfig,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let cutoff = config
        .trim_events_cutoff(Utc::now())
        .context("cannot evaluate trim_events_age")?;
    let batch = u32::try_from(config.trim_events_batch_size)
        .unwrap_or(u32::MAX)
        .max(1);
    let mut trimmed = 0;
    loop {
        let n = store
            .trim_events(cutoff, batch)
            .await
            .context("cannot trim events")?;
        trimmed += n;
        if n < u64::from(batch) || stop.load(Ordering::Relaxed) {
            break;
        }
    }
    if trimmed > 0 {
        tracing::info!(trimmed, %cutoff, "Trimmed old events.");
    }
    Ok(())
}

fn log_statistics(totals: &PassReport) {
    tracing::info!(
        fired = totals.fired,
        expired = totals.expired,
        errors = totals.errors,
        new_events = totals.new_events.stored,
        "Pipeline worker statistics."
    );
}
