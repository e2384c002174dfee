//! `tach ingest`: the long-running ingest worker (StackTach's yagi-event + WinchesterHandler).
//!
//! Reads the sources of winchester.yaml's `ingest:` section (RabbitMQ queues, Kafka topics,
//! files or stdin), distils the notifications, stores them in batches and acknowledges them
//! after each batch commits. SIGTERM or SIGINT drains the in-flight batches and exits 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use tach_distiller::Distiller;
use tach_ingest::{Ingest, IngestConfig};
use tach_worker::WorkerSetup;

use crate::cmd::{db, wait_for_signal};

/// Arguments of `tach ingest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// winchester.yaml (database, distiller, triggers and the `ingest:` section).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

/// Runs `tach ingest`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    db::runtime()?.block_on(ingest(&args))
}

async fn ingest(args: &Args) -> anyhow::Result<ExitCode> {
    let config = db::load_config(&args.config)?;
    let ingest_config = IngestConfig::from_section(config.sections.get("ingest"))
        .with_context(|| format!("invalid ingest: section in {}", args.config.display()))?;
    for warning in ingest_config.warnings() {
        tracing::warn!("{}: {warning}", args.config.display());
    }
    let distiller_path = config
        .distiller_config_path()
        .context("cannot find the distiller configuration")?;
    let distiller = Distiller::from_file(&distiller_path, config.catch_all_notifications)
        .with_context(|| format!("cannot load {}", distiller_path.display()))?;
    for warning in distiller.warnings() {
        tracing::warn!("{}: {warning}", distiller_path.display());
    }
    let setup = WorkerSetup::load(&config).context("cannot load triggers and pipelines")?;
    let store = db::connect_checked(&config, &args.config).await?;
    let manager = setup.trigger_manager(store.clone());
    let started = Instant::now();
    let worker = Ingest::new(ingest_config, distiller, manager, config.statistics_period)
        .on_statistics(|totals, rate| {
            eprintln!("tach ingest: {} ({rate:.0} messages/s)", totals.summary());
        });
    let outcome = worker.run(wait_for_signal()).await;
    store.close().await;
    let totals = outcome.context("ingest stopped")?;
    let seconds = started.elapsed().as_secs_f64();
    let rate = if seconds > 0.0 {
        totals.received as f64 / seconds
    } else {
        0.0
    };
    eprintln!(
        "tach ingest: finished after {seconds:.3} s ({rate:.0} messages/s): {}",
        totals.summary()
    );
    Ok(ExitCode::SUCCESS)
}
