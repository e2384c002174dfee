//! Measures generation plus serialisation speed on one core:
//! `cargo run --release -p tach-notigen --example throughput -- [count] [bare|oslo] [print]
//! [duration]` (count 0: no count limit).

use std::time::Instant;

use tach_notigen::{Envelope, Generator, NotigenConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let count: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let envelope = match args.next().as_deref() {
        Some("oslo") => Envelope::Oslo,
        _ => Envelope::Bare,
    };
    let print = args.next().as_deref() == Some("print");
    let duration = args
        .next()
        .map(|d| tach_notigen::parse_duration(&d))
        .transpose();
    let duration = match duration {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let count = (count > 0).then_some(count);
    let cfg = NotigenConfig {
        count,
        duration,
        envelope,
        ..NotigenConfig::default()
    };
    let started = Instant::now();
    let mut generator = Generator::new(cfg);
    let mut buf = String::with_capacity(1 << 20);
    let mut bytes = 0usize;
    for n in generator.by_ref() {
        n.write_json(envelope, &mut buf);
        buf.push('\n');
        if buf.len() > (1 << 20) - 16_384 {
            bytes += buf.len();
            if print {
                print!("{buf}");
            }
            buf.clear();
        }
    }
    bytes += buf.len();
    if print {
        print!("{buf}");
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{} notifications, {:.1} MB in {secs:.2}s: {:.0} notifications/s, {:.0} MB/s; simulated until {}",
        generator.generated(),
        bytes as f64 / 1e6,
        generator.generated() as f64 / secs,
        bytes as f64 / 1e6 / secs,
        generator.now()
    );
}
