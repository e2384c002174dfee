//! `tach distill`: notifications in (JSON lines), flat events out, exactly one line per input line.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use tach_distiller::Distiller;

use super::EXIT_INVALID;

/// How many poison lines are reported individually on stderr before only counting.
const REPORTED_ERRORS: u64 = 10;

/// Arguments of `tach distill`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The event definitions file (StackTach's event_definitions.yaml format).
    #[arg(long, value_name = "FILE")]
    definitions: PathBuf,
    /// Distil notifications that match no definition into events with the default traits only.
    #[arg(long)]
    catch_all: bool,
    /// Notification files, one JSON notification per line; standard input when none.
    #[arg(value_name = "FILE.jsonl")]
    inputs: Vec<PathBuf>,
}

/// Counts of one run, printed as the summary.
#[derive(Debug, Default)]
struct Summary {
    read: u64,
    distilled: u64,
    dropped: u64,
    errors: u64,
}

/// Runs `tach distill`; exit 2 when the definitions are invalid.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let distiller = match Distiller::from_file(&args.definitions, args.catch_all) {
        Ok(distiller) => distiller,
        Err(err) => {
            eprintln!("tach distill: {err}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if args.inputs.is_empty() {
        let stdin = std::io::stdin().lock();
        distill_stream(&distiller, "<stdin>", stdin, &mut out, &mut summary)?;
    } else {
        for path in &args.inputs {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let reader = BufReader::with_capacity(1 << 16, file);
            let name = path.display().to_string();
            distill_stream(&distiller, &name, reader, &mut out, &mut summary)?;
        }
    }
    out.flush().context("cannot write to standard output")?;
    let seconds = started.elapsed().as_secs_f64();
    let stats = distiller.stats();
    let rate = if seconds > 0.0 {
        summary.read as f64 / seconds
    } else {
        0.0
    };
    eprintln!(
        "tach distill: read {}, distilled {}, dropped {}, errors {}, conversion failures {} \
         in {seconds:.3} s ({rate:.0} notifications/s)",
        summary.read, summary.distilled, summary.dropped, summary.errors, stats.conversion_failures,
    );
    Ok(ExitCode::SUCCESS)
}

/// Distils every line of one input, writing one output line per input line.
fn distill_stream(
    distiller: &Distiller,
    name: &str,
    mut input: impl BufRead,
    out: &mut impl Write,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let mut line = Vec::with_capacity(8192);
    let mut rendered = String::with_capacity(4096);
    let mut line_number = 0u64;
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {name}"))?;
        if n == 0 {
            return Ok(());
        }
        line_number += 1;
        summary.read += 1;
        let raw = trim_line_end(&line);
        rendered.clear();
        match distiller.distill_bytes(raw) {
            Ok(Some(event)) => {
                summary.distilled += 1;
                event.write_json(&mut rendered);
            }
            Ok(None) => {
                summary.dropped += 1;
                rendered.push_str("null");
            }
            Err(err) => {
                summary.errors += 1;
                let message = err.to_string();
                if summary.errors <= REPORTED_ERRORS {
                    eprintln!("tach distill: {name}:{line_number}: {message}");
                } else if summary.errors == REPORTED_ERRORS + 1 {
                    eprintln!("tach distill: further errors are only counted");
                }
                rendered.push_str("{\"error\":");
                rendered.push_str(&serde_json::Value::String(message).to_string());
                rendered.push('}');
            }
        }
        rendered.push('\n');
        out.write_all(rendered.as_bytes())
            .context("cannot write to standard output")?;
    }
}

/// The line without its trailing `\n` or `\r\n`.
fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}
