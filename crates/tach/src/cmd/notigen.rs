//! `tach notigen`: writes generated Nova notifications as JSON lines, in simulated time.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use tach_notigen::{Envelope, Generator, NotigenConfig, parse_duration};
use tach_timex::{DateTime, Utc, parse_datetime};

use super::EXIT_INVALID;
use crate::progress::Progress;

/// Arguments of `tach notigen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seed of the generator: the same seed and options give byte-identical output.
    #[arg(long, default_value_t = tach_notigen::DEFAULT_SEED)]
    seed: u64,
    /// Mean number of operations (create, delete, resize, ...) started per simulated hour.
    #[arg(long)]
    operations_per_hour: Option<f64>,
    /// Simulated start time, e.g. 2026-01-01T00:00:00Z.
    #[arg(long, value_name = "DATETIME")]
    start: Option<String>,
    /// Simulated time span, e.g. `2d`, `36h`, `1d12h` (1 day when neither this nor --count is given).
    #[arg(long, value_name = "DURATION")]
    duration: Option<String>,
    /// Stop after this many notifications.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE.jsonl")]
    output: Option<PathBuf>,
    /// Wrap each notification: `bare` (default) or `oslo` (oslo.messaging 2.0 envelope).
    #[arg(long, value_enum, default_value_t = EnvelopeArg::Bare)]
    envelope: EnvelopeArg,
}

/// The `--envelope` choices.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum EnvelopeArg {
    /// The notification object itself.
    Bare,
    /// `{"oslo.version": "2.0", "oslo.message": "<notification as a JSON string>"}`.
    Oslo,
}

/// Runs `tach notigen`; invalid options exit 2.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match config(&args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("tach notigen: {err:#}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, sink);
    let started = Instant::now();
    let (start, duration, count, envelope) =
        (config.start, config.duration, config.count, config.envelope);
    let mut generator = Generator::new(config);
    let mut progress = Progress::new();
    let mut line = String::with_capacity(4096);
    let mut written = 0u64;
    while let Some(notification) = generator.next() {
        line.clear();
        notification.write_json(envelope, &mut line);
        line.push('\n');
        out.write_all(line.as_bytes())
            .context("cannot write notifications")?;
        written += 1;
        if written.is_multiple_of(1024) {
            let fraction = fraction_done(&generator, start, duration, count);
            let now = generator.now();
            progress.update(fraction, || format!("{written} notifications, at {now}"));
        }
    }
    out.flush().context("cannot write notifications")?;
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    let rate = if seconds > 0.0 {
        written as f64 / seconds
    } else {
        0.0
    };
    eprintln!("tach notigen: wrote {written} notifications in {seconds:.3} s ({rate:.0}/s)");
    Ok(ExitCode::SUCCESS)
}

/// Builds the generator configuration, naming the option at fault.
fn config(args: &Args) -> anyhow::Result<NotigenConfig> {
    let envelope = match args.envelope {
        EnvelopeArg::Bare => Envelope::Bare,
        EnvelopeArg::Oslo => Envelope::Oslo,
    };
    let mut config = NotigenConfig {
        seed: args.seed,
        count: args.count,
        envelope,
        ..Default::default()
    };
    if let Some(rate) = args.operations_per_hour {
        anyhow::ensure!(
            rate.is_finite() && rate > 0.0,
            "--operations-per-hour must be a positive number, got {rate}"
        );
        config.operations_per_hour = rate;
    }
    if let Some(start) = &args.start {
        config.start = parse_datetime(start)
            .with_context(|| format!("--start: `{start}` is not a datetime"))?;
    }
    if let Some(duration) = &args.duration {
        let parsed =
            parse_duration(duration).map_err(|err| anyhow::anyhow!("--duration: {err}"))?;
        config.duration = Some(parsed);
    }
    Ok(config)
}

/// How far the run is, by simulated time or by count, whichever is further along.
fn fraction_done(
    generator: &Generator,
    start: DateTime<Utc>,
    duration: Option<chrono::Duration>,
    count: Option<u64>,
) -> f64 {
    let by_time = duration.map(|d| {
        let elapsed = (generator.now() - start).num_milliseconds() as f64;
        elapsed / (d.num_milliseconds().max(1) as f64)
    });
    let by_count = count.map(|c| generator.generated() as f64 / c.max(1) as f64);
    by_time.into_iter().chain(by_count).fold(0.0, f64::max)
}
