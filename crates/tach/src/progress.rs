//! A dependency-free progress line on stderr, shown only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Redraws one status line on stderr at most every 100 ms.
pub struct Progress {
    enabled: bool,
    started: Instant,
    last_draw: Instant,
}

impl Progress {
    /// A progress line that draws only when stderr is a terminal.
    pub fn new() -> Progress {
        let now = Instant::now();
        Progress {
            enabled: std::io::stderr().is_terminal(),
            started: now,
            last_draw: now,
        }
    }

    /// Redraws with `fraction` done (0..=1) and a short message, rate-limited.
    pub fn update(&mut self, fraction: f64, message: impl FnOnce() -> String) {
        if !self.enabled || self.last_draw.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last_draw = Instant::now();
        let fraction = fraction.clamp(0.0, 1.0);
        let filled = (fraction * 30.0).round() as usize;
        let bar: String = "#".repeat(filled) + &"-".repeat(30 - filled);
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut stderr = std::io::stderr().lock();
        let _ = write!(
            stderr,
            "\r[{bar}] {:5.1}% {elapsed:6.1}s {}\x1b[K",
            fraction * 100.0,
            message()
        );
        let _ = stderr.flush();
    }

    /// Clears the line so the summary that follows starts clean.
    pub fn finish(&mut self) {
        if self.enabled {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[K");
            let _ = stderr.flush();
        }
    }
}
