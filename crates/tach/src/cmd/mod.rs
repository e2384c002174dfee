//! One module per subcommand; each exposes `Args` (clap) and `run`.

pub mod api;
pub mod db;
pub mod distill;
pub mod ingest;
pub mod notigen;
pub mod pipeline;
pub mod replay;
pub mod timex;
pub mod triggers;

/// Exit code for invalid input that the user must fix (bad definitions, bad expression).
pub const EXIT_INVALID: u8 = 2;

/// Completes on SIGTERM or SIGINT (Ctrl-C).
#[cfg(unix)]
pub async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "Cannot listen for SIGTERM; only SIGINT stops tach.");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
pub async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
