//! The `tach` binary: parses arguments, sets up logging and hands each subcommand to its module.

mod cmd;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Every allocation of the process (see the dependency's comment in Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// tach: an event-stream processing pipeline for OpenStack notifications.
#[derive(Debug, Parser)]
#[command(name = "tach", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Distil notifications (JSON lines) into flat events, one output line per input line.
    Distill(cmd::distill::Args),
    /// Evaluate a time expression.
    Timex(cmd::timex::Args),
    /// Generate realistic Nova notifications as JSON lines.
    Notigen(cmd::notigen::Args),
    /// Work with trigger definitions (`tach triggers test`: a dry run without a database).
    #[command(subcommand)]
    Triggers(cmd::triggers::Command),
    /// Manage the database (`tach db migrate`: create or upgrade the schema).
    #[command(subcommand)]
    Db(cmd::db::Command),
    /// Run notification files through distiller, triggers and pipelines on an event-time clock.
    Replay(cmd::replay::Args),
    /// Run the pipeline worker: fire and expire ready streams until SIGTERM/SIGINT.
    Pipeline(cmd::pipeline::Args),
    /// Serve the quincy-compatible REST API (`/v1/events`, `/v1/streams`) until SIGTERM/SIGINT.
    Api(cmd::api::Args),
    /// Consume notifications (RabbitMQ, Kafka, files) into the store until SIGTERM/SIGINT.
    Ingest(cmd::ingest::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let outcome = match cli.command {
        Command::Distill(args) => cmd::distill::run(args),
        Command::Timex(args) => cmd::timex::run(args),
        Command::Notigen(args) => cmd::notigen::run(args),
        Command::Triggers(command) => cmd::triggers::run(command),
        Command::Db(command) => cmd::db::run(command),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Pipeline(args) => cmd::pipeline::run(args),
        Command::Api(args) => cmd::api::run(args),
        Command::Ingest(args) => cmd::ingest::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tach: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout carries data); `TACH_LOG` or `RUST_LOG` set the filter.
fn init_tracing() {
    let filter = std::env::var("TACH_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
