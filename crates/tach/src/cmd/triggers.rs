//! `tach triggers test`: a dry run of trigger definitions over flat events, with no database.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tach_distiller::Event;
use tach_engine::DryRun;
use tach_engine::trigger::{load_triggers, matched_line};

use super::EXIT_INVALID;

/// Subcommands of `tach triggers`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Feed flat events (the output of `tach distill`) through trigger definitions and show
    /// which stream each event joins and which streams would fire.
    Test(TestArgs),
}

/// Arguments of `tach triggers test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The trigger definitions (StackTach's triggers.yaml format).
    #[arg(long, value_name = "FILE")]
    definitions: PathBuf,
    /// Flat events, one JSON object per line (`null` lines are skipped); standard input when
    /// absent.
    #[arg(value_name = "EVENTS.jsonl")]
    events: Option<PathBuf>,
}

/// Runs a `tach triggers` subcommand.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Test(args) => test(args),
    }
}

/// Runs the dry run: one line per event, then one line per stream. Invalid definitions exit 2;
/// unreadable event lines are reported (file and line) and make the exit status 1.
fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let file = match load_triggers(&args.definitions) {
        Ok(file) => file,
        Err(err) => {
            eprintln!("tach triggers test: {err}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let (name, input): (String, Box<dyn BufRead>) = match &args.events {
        Some(path) => {
            let opened =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            (path.display().to_string(), Box::new(BufReader::new(opened)))
        }
        None => ("<stdin>".to_string(), Box::new(std::io::stdin().lock())),
    };
    let mut dry_run = DryRun::new(file.triggers);
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut bad_lines = 0u64;
    for (index, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {name}"))?;
        let location = format!("{name}:{}", index + 1);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed == "null" {
            continue;
        }
        let outcome = Event::from_flat_json(trimmed)
            .map_err(anyhow::Error::from)
            .and_then(|event| {
                let matched = dry_run.add(&event)?;
                Ok(matched_line(&event.message_id, &matched))
            });
        match outcome {
            Ok(rendered) => writeln!(out, "{rendered}")?,
            Err(err) => {
                bad_lines += 1;
                eprintln!("tach triggers test: {location}: {err:#}");
                let error = serde_json::json!({ "error": format!("{location}: {err:#}") });
                writeln!(out, "{error}")?;
            }
        }
    }
    for stream in dry_run.streams() {
        writeln!(out, "{}", stream.to_json_line())?;
    }
    out.flush().context("cannot write to standard output")?;
    Ok(if bad_lines > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
