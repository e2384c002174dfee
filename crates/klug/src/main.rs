//! The `klug` binary: parses the command line, runs it, and exits non-zero on errors.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = klug::Cli::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = klug::run(cli, &mut out).await;
    let flushed = out.flush();
    match result
        .map_err(Report)
        .and(flushed.map_err(|e| Report(e.into())))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(report) => {
            eprintln!("klug: {report}");
            ExitCode::FAILURE
        }
    }
}

/// An error with its chain of causes, for the terminal.
struct Report(klug::Error);

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = std::error::Error::source(&self.0);
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
