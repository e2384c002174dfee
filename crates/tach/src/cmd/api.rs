//! `tach api`: the quincy-compatible REST API over the store of winchester.yaml.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tach_api::ApiConfig;
use tach_engine::WinchesterConfig;

use crate::cmd::db;

/// Arguments of `tach api`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// winchester.yaml (its `database:` and `api:` sections).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Address to listen on; overrides `api.bind` (default 127.0.0.1:8000).
    #[arg(long, value_name = "ADDR:PORT")]
    bind: Option<SocketAddr>,
}

/// How much of a SQLite database file `tach api` maps into memory.
const API_SQLITE_MMAP_BYTES: u64 = 1 << 30;
/// Pooled database connections of the API.
const API_CONNECTIONS: u32 = 10;

/// Runs `tach api` until SIGTERM or SIGINT, then finishes the open requests and exits 0.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    db::runtime()?.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<ExitCode> {
    let config = db::load_config(&args.config)?;
    let mut api = api_config(&config)?;
    if let Some(bind) = args.bind {
        api.bind = bind;
    }
    // The API only reads: on SQLite it maps the file (up to 1 GiB) instead of a pread per page,
    // and reads on as many connections as on the servers (the writers' SQLite default is 3).
    let options = tach_store::ConnectOptions {
        max_connections: Some(API_CONNECTIONS),
        sqlite_mmap_bytes: Some(API_SQLITE_MMAP_BYTES),
    };
    let store = db::connect_checked_opts(&config, &args.config, &options).await?;
    let listener = tokio::net::TcpListener::bind(api.bind)
        .await
        .with_context(|| format!("cannot listen on {} (--bind / api.bind)", api.bind))?;
    // The bound address on stdout, so scripts that ask for port 0 learn the real one.
    println!("tach api listening on http://{}", listener.local_addr()?);
    let served = tach_api::serve(api, store.clone(), listener, crate::cmd::wait_for_signal()).await;
    store.close().await;
    served.context("the API server failed")?;
    Ok(ExitCode::SUCCESS)
}

/// The `api:` section of `config`, or the defaults when there is none.
fn api_config(config: &WinchesterConfig) -> anyhow::Result<ApiConfig> {
    match config.sections.get("api") {
        None | Some(serde_json::Value::Null) => Ok(ApiConfig::default()),
        Some(section) => serde_json::from_value(section.clone())
            .with_context(|| format!("{}: invalid `api:` section", config.path.display())),
    }
}
