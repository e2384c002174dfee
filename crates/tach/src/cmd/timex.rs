//! `tach timex`: evaluates a time expression, or tests whether it contains a datetime.

use std::process::ExitCode;

use anyhow::Context;
use tach_timex::{DateTime, TimeExpression, TimexValue, Utc, format_datetime, parse_datetime};

use super::EXIT_INVALID;

/// Arguments of `tach timex`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The expression, e.g. `day($launched_at) + 6h` or `$last + 2d`.
    #[arg(value_name = "EXPR", allow_hyphen_values = true)]
    expression: String,
    /// A variable, e.g. `--var launched_at=2024-01-31T12:00:00Z`; repeatable.
    #[arg(long = "var", value_name = "NAME=DATETIME")]
    vars: Vec<String>,
    /// Print `true` or `false`: whether the result contains this datetime.
    #[arg(long, value_name = "DATETIME")]
    contains: Option<String>,
    /// The time `$timestamp` defaults to (the current time when absent).
    #[arg(long, value_name = "DATETIME")]
    now: Option<String>,
}

/// Runs `tach timex`; invalid expressions, variables and datetimes exit 2.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match evaluate(&args) {
        Ok(line) => {
            println!("{line}");
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("tach timex: {err:#}");
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}

/// Evaluates the expression into the line to print.
fn evaluate(args: &Args) -> anyhow::Result<String> {
    let expression = TimeExpression::parse(&args.expression)
        .with_context(|| format!("invalid expression `{}`", args.expression))?;
    let mut vars = std::collections::HashMap::new();
    for var in &args.vars {
        let (name, value) = var
            .split_once('=')
            .with_context(|| format!("--var `{var}`: expected NAME=DATETIME"))?;
        let name = name.trim().trim_start_matches('$');
        let value = datetime_arg(&format!("--var {name}"), value)?;
        vars.insert(name.to_string(), value);
    }
    let now = match &args.now {
        Some(now) => datetime_arg("--now", now)?,
        None => Utc::now(),
    };
    let value = expression.evaluate_at(&vars, now)?;
    if let Some(point) = &args.contains {
        let point = datetime_arg("--contains", point)?;
        return Ok(value.contains(point).to_string());
    }
    Ok(match value {
        TimexValue::Timestamp(t) => format!("{{\"timestamp\": \"{}\"}}", format_datetime(t)),
        TimexValue::Range(r) => format!(
            "{{\"begin\": \"{}\", \"end\": \"{}\"}}",
            format_datetime(r.begin),
            format_datetime(r.end)
        ),
    })
}

/// Parses a datetime argument, naming the parameter when it is not one.
fn datetime_arg(parameter: &str, value: &str) -> anyhow::Result<DateTime<Utc>> {
    parse_datetime(value.trim()).with_context(|| {
        format!("{parameter}: `{value}` is not a datetime (e.g. 2024-01-31T12:00:00Z)")
    })
}
