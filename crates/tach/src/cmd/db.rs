//! `tach db migrate`: creates or upgrades the database schema; also the store set-up shared by
//! the commands that use the database.
//!
//! A relative SQLite path in `database.url` (`sqlite://tach.db`) is relative to the current
//! working directory tach runs in, not to winchester.yaml (as sqlx and SQLAlchemy read it).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use tach_engine::WinchesterConfig;
use tach_store::{ConnectOptions, IndexedTraits, Store};

/// `tach db` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the schema, or upgrade it to the version this tach needs.
    Migrate(MigrateArgs),
}

/// Arguments of `tach db migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// winchester.yaml naming the database (`database.url`).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

/// Runs a `tach db` subcommand.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Migrate(args) => runtime()?.block_on(migrate(&args.config)),
    }
}

async fn migrate(path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(path)?;
    let store = connect(&config, path).await?;
    let report = store
        .migrate()
        .await
        .context("cannot migrate the database schema")?;
    if report.from == report.to {
        println!("tach db migrate: schema already at version {}", report.to);
    } else {
        println!(
            "tach db migrate: schema migrated from version {} to {}",
            report.from, report.to
        );
    }
    if let Some(names) = config
        .database
        .as_ref()
        .and_then(|d| d.indexed_traits.as_ref())
    {
        let set = IndexedTraits::from_names(names);
        match store
            .set_indexed_traits(&set)
            .await
            .context("cannot change the indexed traits")?
        {
            Some(events) => {
                println!("tach db migrate: indexed traits are now {set}; {events} events reindexed")
            }
            None => println!("tach db migrate: indexed traits: {set}"),
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// A tokio runtime for a command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Loads winchester.yaml, logging its warnings.
pub fn load_config(path: &Path) -> anyhow::Result<WinchesterConfig> {
    let config =
        WinchesterConfig::load(path).with_context(|| format!("cannot load {}", path.display()))?;
    for warning in &config.warnings {
        tracing::warn!("{}: {warning}", path.display());
    }
    Ok(config)
}

/// Connects to the database of `config` (loaded from `path`).
pub async fn connect(config: &WinchesterConfig, path: &Path) -> anyhow::Result<Store> {
    connect_opts(config, path, &ConnectOptions::default()).await
}

/// [`connect`] with `options`.
pub async fn connect_opts(
    config: &WinchesterConfig,
    path: &Path,
    options: &ConnectOptions,
) -> anyhow::Result<Store> {
    let database = config
        .database
        .as_ref()
        .with_context(|| format!("{} has no database.url", path.display()))?;
    Store::connect_opts(&database.sqlx_url(), options)
        .await
        .context("cannot open the database")
}

/// Connects and refuses a schema that is missing, outdated or too new (the error says which
/// command to run).
pub async fn connect_checked(config: &WinchesterConfig, path: &Path) -> anyhow::Result<Store> {
    connect_checked_opts(config, path, &ConnectOptions::default()).await
}

/// [`connect_checked`] with `options`.
pub async fn connect_checked_opts(
    config: &WinchesterConfig,
    path: &Path,
    options: &ConnectOptions,
) -> anyhow::Result<Store> {
    let store = connect_opts(config, path, options).await?;
    if let Err(e) = store.check_schema().await {
        store.close().await;
        return Err(anyhow::Error::new(e).context(format!(
            "the database of {} is not ready (run `tach db migrate --config {}`)",
            path.display(),
            path.display()
        )));
    }
    if let Some(names) = config
        .database
        .as_ref()
        .and_then(|d| d.indexed_traits.as_ref())
    {
        let wanted = IndexedTraits::from_names(names);
        let current = store
            .indexed_traits()
            .await
            .context("cannot read the indexed traits")?;
        if *current != wanted {
            tracing::warn!(
                "{}: database.indexed_traits ({wanted}) differs from the database's ({current}), \
                 which stays in use; run `tach db migrate --config {}` to apply it",
                path.display(),
                path.display()
            );
        }
    }
    Ok(store)
}
