//! klug: the command-line client of tach's REST API, like StackTach's klugman but nicer.
//!
//! [`Cli`] is the command line; [`run`] carries it out against the API with a [`Client`] and
//! prints through [`output`]: tables by default, `--output json` or `--output jsonl` for scripts.

mod client;
mod error;
pub mod output;

use std::io::Write;

use clap::{Args, CommandFactory, Parser, Subcommand};
use hyper::Method;
use serde_json::Value;

pub use client::Client;
pub use error::Error;
pub use output::{Kind, Output};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "klug",
    version,
    about = "Query tach's REST API: events and streams."
)]
pub struct Cli {
    /// Base URL of the API.
    #[arg(
        long,
        env = "KLUG_URL",
        default_value = "http://127.0.0.1:8000",
        global = true
    )]
    pub url: String,
    /// Bearer token (needed for reset and delete when the API has one).
    #[arg(long, env = "KLUG_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// klug's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List, count or show events.
    Events(EventsArgs),
    /// List, count, show, reset or delete streams.
    Streams(StreamsArgs),
    /// Print a shell completion script (e.g. `klug completions bash`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `klug events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Event type or glob, e.g. 'compute.instance.*' (comma-separated for several).
    #[arg(long)]
    pub name: Option<String>,
    /// Only events generated after this datetime.
    #[arg(long)]
    pub from: Option<String>,
    /// Only events generated at or before this datetime.
    #[arg(long)]
    pub to: Option<String>,
    /// Trait filters, `name:value` separated by `,` or `;`.
    #[arg(long)]
    pub traits: Option<String>,
    /// Rows per page.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Follow the pages to the end.
    #[arg(long, conflicts_with_all = ["count", "msg_id"])]
    pub all: bool,
    /// Print how many events match instead.
    #[arg(long, conflicts_with = "msg_id")]
    pub count: bool,
    /// Show the event with this message id.
    #[arg(long)]
    pub msg_id: Option<String>,
}

/// `klug streams`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct StreamsArgs {
    /// Reset or delete one stream instead of listing.
    #[command(subcommand)]
    pub action: Option<StreamAction>,
    /// Only streams of this trigger.
    #[arg(long)]
    pub name: Option<String>,
    /// Only streams whose last event is after this datetime.
    #[arg(long)]
    pub from: Option<String>,
    /// Only streams whose first event is before this datetime.
    #[arg(long)]
    pub to: Option<String>,
    /// Distinguishing trait filters, `name:value` separated by `,` or `;`.
    #[arg(long)]
    pub traits: Option<String>,
    /// Only streams in this state (active, firing, expiring, error, expire_error, completed,
    /// retry_fire, retry_expire).
    #[arg(long)]
    pub state: Option<String>,
    /// Also show each stream's events.
    #[arg(long)]
    pub details: bool,
    /// Rows per page.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Follow the pages to the end.
    #[arg(long, conflicts_with_all = ["count", "id"])]
    pub all: bool,
    /// Print how many streams match instead.
    #[arg(long, conflicts_with = "id")]
    pub count: bool,
    /// Show the stream with this id.
    #[arg(long)]
    pub id: Option<i64>,
}

/// `klug streams reset|delete ID`.
#[derive(Debug, Subcommand)]
pub enum StreamAction {
    /// Reset an errored stream so its pipeline runs again.
    Reset {
        /// The stream id.
        id: i64,
    },
    /// Delete a stream (its events stay).
    Delete {
        /// The stream id.
        id: i64,
    },
}

/// Carries out `cli`, printing to `out`.
///
/// # Errors
/// [`Error`]: the API could not be reached or answered an error, or `out` failed.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), Error> {
    let client = || Client::new(&cli.url, cli.token.clone());
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "klug", out);
            Ok(())
        }
        Command::Events(a) => events(&client()?, a, cli.output, out).await,
        Command::Streams(a) => streams(&client()?, a, cli.output, out).await,
    }
}

fn push(q: &mut Vec<(&'static str, String)>, key: &'static str, v: &Option<String>) {
    if let Some(v) = v {
        q.push((key, v.clone()));
    }
}

async fn events(
    c: &Client,
    a: &EventsArgs,
    output: Output,
    out: &mut dyn Write,
) -> Result<(), Error> {
    if let Some(id) = &a.msg_id {
        let path = format!("/v1/events/{}", client::segment(id));
        let rows = list_answer(c.call(Method::GET, &path, &[]).await?, &path)?;
        return print_list(rows, Kind::Events, output, out);
    }
    let mut q = Vec::new();
    push(&mut q, "event_name", &a.name);
    push(&mut q, "from_datetime", &a.from);
    push(&mut q, "to_datetime", &a.to);
    push(&mut q, "traits", &a.traits);
    if a.count {
        return count(c, "/v1/events/count", &q, output, out).await;
    }
    let listing = Listing {
        path: "/v1/events",
        limit: a.limit,
        all: a.all,
        kind: Kind::Events,
        output,
    };
    pages(c, listing, q, out).await
}

async fn streams(
    c: &Client,
    a: &StreamsArgs,
    output: Output,
    out: &mut dyn Write,
) -> Result<(), Error> {
    match &a.action {
        Some(StreamAction::Reset { id }) => {
            let path = format!("/v1/streams/{id}");
            let rows = list_answer(c.call(Method::PUT, &path, &[]).await?, &path)?;
            return print_list(rows, Kind::Streams, output, out);
        }
        Some(StreamAction::Delete { id }) => {
            c.call(Method::DELETE, &format!("/v1/streams/{id}"), &[])
                .await?;
            return match output {
                Output::Table => Ok(writeln!(out, "stream {id} deleted")?),
                Output::Json => Ok(writeln!(out, "{{\n  \"deleted\": {id}\n}}")?),
                Output::Jsonl => Ok(writeln!(out, "{{\"deleted\":{id}}}")?),
            };
        }
        None => {}
    }
    let details = || ("details", a.details.to_string());
    if let Some(id) = a.id {
        let path = format!("/v1/streams/{id}");
        let rows = list_answer(c.call(Method::GET, &path, &[details()]).await?, &path)?;
        return print_list(rows, Kind::Streams, output, out);
    }
    let mut q = Vec::new();
    push(&mut q, "trigger_name", &a.name);
    push(&mut q, "younger_than", &a.from);
    push(&mut q, "older_than", &a.to);
    push(&mut q, "distinguishing_traits", &a.traits);
    push(&mut q, "state", &a.state);
    if a.count {
        return count(c, "/v1/streams/count", &q, output, out).await;
    }
    q.push(details());
    let listing = Listing {
        path: "/v1/streams",
        limit: a.limit,
        all: a.all,
        kind: Kind::Streams,
        output,
    };
    pages(c, listing, q, out).await
}

fn list_answer(v: Option<Value>, path: &str) -> Result<Vec<Value>, Error> {
    match v {
        Some(Value::Array(rows)) => Ok(rows),
        _ => Err(Error::Unexpected {
            url: path.to_owned(),
            reason: "expected a JSON list".to_owned(),
        }),
    }
}

fn print_list(
    rows: Vec<Value>,
    kind: Kind,
    output: Output,
    out: &mut dyn Write,
) -> Result<(), Error> {
    if output == Output::Json {
        output::document(&Value::Array(rows), out)?;
    } else {
        output::rows(&rows, kind, output, out)?;
    }
    Ok(())
}

async fn count(
    c: &Client,
    path: &str,
    q: &[(&str, String)],
    output: Output,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let rows = list_answer(c.call(Method::GET, path, q).await?, path)?;
    let n = rows
        .first()
        .and_then(|r| r.get("count"))
        .and_then(Value::as_i64)
        .ok_or_else(|| Error::Unexpected {
            url: path.to_owned(),
            reason: "expected [{\"count\": N}]".to_owned(),
        })?;
    Ok(output::count(n, output, out)?)
}

/// What to list and how to print it.
struct Listing<'a> {
    path: &'a str,
    limit: Option<u32>,
    all: bool,
    kind: Kind,
    output: Output,
}

/// Lists rows, following `_mark` page after page when `all`.
async fn pages(
    c: &Client,
    listing: Listing<'_>,
    mut q: Vec<(&'static str, String)>,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let Listing {
        path,
        limit,
        all,
        kind,
        output,
    } = listing;
    if let Some(limit) = limit {
        q.push(("limit", limit.to_string()));
    }
    let base_len = q.len();
    let mut collected = Vec::new();
    loop {
        let rows = list_answer(c.call(Method::GET, path, &q).await?, path)?;
        let mark = rows
            .last()
            .and_then(|r| r.get("_mark"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        output::rows(&rows, kind, output, out)?;
        let empty = rows.is_empty();
        if output == Output::Json {
            collected.extend(rows);
        }
        match mark {
            Some(mark) if all && !empty => {
                q.truncate(base_len);
                q.push(("mark", mark));
            }
            _ => break,
        }
    }
    if output == Output::Json {
        output::document(&Value::Array(collected), out)?;
    }
    Ok(())
}
