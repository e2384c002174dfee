//! `tach notigen`: writes generated Nova notifications as JSON lines, in simulated time, or
//! publishes them to RabbitMQ or Kafka (`--publish URL`) with confirms.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use tach_notigen::{Envelope, Generator, NotigenConfig, parse_duration};
use tach_publish::{Publisher, Target};
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
    #[arg(long, short, value_name = "FILE.jsonl", conflicts_with = "publish")]
    output: Option<PathBuf>,
    /// Publish instead of writing: `amqp://guest:guest@127.0.0.1:5672/%2f` (to --exchange with
    /// --routing-key) or `kafka://127.0.0.1:9092/topic` (keyed by message_id). Every message
    /// is confirmed by the broker; the body is the JSON line notigen would print.
    #[arg(long, value_name = "URL")]
    publish: Option<String>,
    /// The RabbitMQ exchange (a durable topic exchange, declared if missing).
    #[arg(long, default_value = "monitor", requires = "publish")]
    exchange: String,
    /// The RabbitMQ routing key.
    #[arg(long, default_value = "monitor.info", requires = "publish")]
    routing_key: String,
    /// Also declare this durable RabbitMQ queue, bound to the exchange with the routing key,
    /// so nothing is dropped before a consumer starts.
    #[arg(long, value_name = "NAME", requires = "publish")]
    queue: Option<String>,
    /// Publish persistent RabbitMQ messages (delivery mode 2; the broker writes them to disk
    /// before confirming, several times slower). Default: transient, as OpenStack publishes
    /// notifications.
    #[arg(long, requires = "publish")]
    persistent: bool,
    /// Publish at most this many notifications per second (`N` or `N/s`); default: as fast as
    /// the broker confirms.
    #[arg(long, value_name = "N/s", requires = "publish")]
    rate: Option<String>,
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
    if let Some(url) = &args.publish {
        let target = match Target::parse(url, &args.exchange, &args.routing_key) {
            Ok(Target::Amqp(mut amqp)) => {
                amqp.queue_name.clone_from(&args.queue);
                amqp.persistent = args.persistent;
                Target::Amqp(amqp)
            }
            Ok(_) if args.queue.is_some() => {
                eprintln!("tach notigen: --queue applies to amqp:// targets only");
                return Ok(ExitCode::from(EXIT_INVALID));
            }
            Ok(target) => target,
            Err(err) => {
                eprintln!("tach notigen: --publish: {err}");
                return Ok(ExitCode::from(EXIT_INVALID));
            }
        };
        let rate = match args.rate.as_deref().map(parse_rate).transpose() {
            Ok(rate) => rate,
            Err(err) => {
                eprintln!("tach notigen: {err:#}");
                return Ok(ExitCode::from(EXIT_INVALID));
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        return runtime.block_on(publish(config, target, rate));
    }
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

/// Reads `--rate`: `N` or `N/s`, a positive number.
fn parse_rate(text: &str) -> anyhow::Result<f64> {
    let number = text.trim().strip_suffix("/s").unwrap_or(text.trim());
    match number.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => anyhow::bail!(
            "--rate must be a positive number per second (`500` or `500/s`), got `{text}`"
        ),
    }
}

/// Publishes every generated notification to `target` (at most `rate` per second), waiting
/// for the broker's confirms in a sliding window, and prints a summary line.
async fn publish(
    config: NotigenConfig,
    target: Target,
    rate: Option<f64>,
) -> anyhow::Result<ExitCode> {
    let description = target.describe();
    let mut publisher = Publisher::connect(&target)
        .await
        .with_context(|| format!("cannot publish to {description}"))?;
    let started = Instant::now();
    let (start, duration, count, envelope) =
        (config.start, config.duration, config.count, config.envelope);
    let mut generator = Generator::new(config);
    let mut progress = Progress::new();
    let mut line = String::with_capacity(4096);
    let mut key = String::with_capacity(36);
    let mut generated = 0u64;
    while let Some(notification) = generator.next() {
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(generated as f64 / rate);
            let elapsed = started.elapsed();
            if due > elapsed {
                publisher
                    .send_buffered()
                    .await
                    .with_context(|| format!("publishing to {description} failed"))?;
                tokio::time::sleep(due - elapsed).await;
            }
        }
        generated += 1;
        line.clear();
        notification.write_json(envelope, &mut line);
        key.clear();
        key.push_str(&notification.message_id.to_string());
        publisher
            .publish(&key, line.as_bytes())
            .await
            .with_context(|| format!("publishing to {description} failed"))?;
        if generated.is_multiple_of(1024) {
            let sent = publisher.sent();
            let fraction = fraction_done(&generator, start, duration, count);
            let confirmed = publisher.confirmed();
            let seconds = started.elapsed().as_secs_f64().max(1e-9);
            progress.update(fraction, || {
                format!(
                    "{sent} sent, {confirmed} confirmed, {:.0}/s",
                    confirmed as f64 / seconds
                )
            });
        }
    }
    publisher
        .flush()
        .await
        .with_context(|| format!("publishing to {description} failed"))?;
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    let (sent, confirmed) = (publisher.sent(), publisher.confirmed());
    publisher.close().await;
    let rate = if seconds > 0.0 {
        confirmed as f64 / seconds
    } else {
        0.0
    };
    eprintln!(
        "tach notigen: sent {sent} notifications to {description}, {confirmed} confirmed, \
         in {seconds:.3} s ({rate:.0}/s)"
    );
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
