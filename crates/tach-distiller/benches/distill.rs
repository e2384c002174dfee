//! Single-core distillation throughput on notigen traffic.
//!
//! Generates notifications with tach-notigen (≈2.8 KB Nova notifications), keeps them as
//! JSON lines in memory, then times `Distiller::distill_bytes` over all of them on one
//! thread, with the project's `config/event_definitions.yaml` when it exists, else
//! StackTach's sandbox file. Also times sonic-rs parsing alone (the floor) and distilling
//! plus writing each event's flat JSON. `TACH_BENCH_COUNT` overrides the 200 000 lines.
//!
//! Run with `cargo bench -p tach-distiller`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tach_distiller::Distiller;
use tach_notigen::{Envelope, Generator, NotigenConfig};

const ROUNDS: usize = 3;

fn definitions_file() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let project = manifest.join("../../config/event_definitions.yaml");
    if project.exists() {
        project
    } else {
        manifest.join("../../tests/fixtures/stacktach/sandbox/event_definitions.yaml")
    }
}

fn generate(count: u64) -> Vec<String> {
    let cfg = NotigenConfig {
        count: Some(count),
        ..NotigenConfig::default()
    };
    Generator::new(cfg)
        .map(|n| {
            let mut line = String::new();
            n.write_json(Envelope::Bare, &mut line);
            line
        })
        .collect()
}

/// Runs `f` over every line `ROUNDS` times and returns the fastest round.
fn best_of(lines: &[String], mut f: impl FnMut(&[u8])) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for line in lines {
                f(line.as_bytes());
            }
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn report(what: &str, lines: usize, bytes: usize, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{what:<28} {:>10.0} notifications/s {:>8.1} MB/s  ({:.2} µs each)",
        lines as f64 / secs,
        bytes as f64 / secs / 1e6,
        secs * 1e6 / lines as f64
    );
}

fn main() {
    let count: u64 = std::env::var("TACH_BENCH_COUNT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let definitions = definitions_file();
    let definitions = definitions.canonicalize().unwrap_or(definitions);
    let distiller = Distiller::from_file(&definitions, false).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let lines = generate(count);
    let bytes: usize = lines.iter().map(String::len).sum();
    println!(
        "{} notifications, {:.1} MB ({:.0} bytes average), generated in {:.1?}; definitions {}",
        lines.len(),
        bytes as f64 / 1e6,
        bytes as f64 / lines.len().max(1) as f64,
        started.elapsed(),
        definitions.display()
    );

    let (mut distilled, mut dropped, mut poison, mut traits) = (0u64, 0u64, 0u64, 0u64);
    for line in &lines {
        match distiller.distill_bytes(line.as_bytes()) {
            Ok(Some(event)) => {
                distilled += 1;
                traits += event.traits.len() as u64;
            }
            Ok(None) => dropped += 1,
            Err(_) => poison += 1,
        }
    }
    println!(
        "distilled {distilled}, dropped {dropped}, poison {poison}, {:.1} traits per event; {:?}",
        traits as f64 / distilled.max(1) as f64,
        distiller.stats()
    );

    let parse = best_of(&lines, |raw| {
        let value: sonic_rs::Value = sonic_rs::from_slice(raw).unwrap_or_default();
        black_box(value);
    });
    report("sonic-rs parse only", lines.len(), bytes, parse);

    let distill = best_of(&lines, |raw| {
        black_box(distiller.distill_bytes(raw).ok());
    });
    report("distill_bytes", lines.len(), bytes, distill);

    let mut out = String::new();
    let distill_and_write = best_of(&lines, |raw| {
        if let Ok(Some(event)) = distiller.distill_bytes(raw) {
            out.clear();
            event.write_json(&mut out);
            black_box(&out);
        }
    });
    report(
        "distill_bytes + write_json",
        lines.len(),
        bytes,
        distill_and_write,
    );
}
