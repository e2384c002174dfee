//! The crate's error type: what failed while loading configuration and definitions, or while
//! evaluating a trigger's time expressions. Handler failures have their own type,
//! [`crate::pipeline::HandlerError`], because handlers are user code.

use std::path::PathBuf;

/// Errors from loading `winchester.yaml`, `triggers.yaml` and `pipelines.yaml`, and from
/// evaluating trigger expressions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file is not valid YAML.
    #[error("{}: invalid YAML", path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column (boxed: the parser's error is large).
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A definition (a trigger, a pipeline, a criterion, a setting) is invalid.
    #[error("{file}: {what}: {reason}")]
    Invalid {
        /// The file it came from.
        file: String,
        /// What is invalid, e.g. "trigger `instance_usage`" or "pipeline `usage_fire`".
        what: String,
        /// Why, e.g. "missing required key `expiration`".
        reason: String,
    },
    /// A file named in `winchester.yaml` is in none of the search path's directories.
    #[error("cannot find `{name}` in the config path ({searched})")]
    NotFound {
        /// The file name as written in `winchester.yaml`.
        name: String,
        /// The directories searched, in order, comma-separated.
        searched: String,
    },
    /// A trigger's time expression could not be evaluated (e.g. a variable it names is missing).
    #[error("trigger `{trigger}`: cannot evaluate {what} `{expression}`: {reason}")]
    Evaluate {
        /// The trigger.
        trigger: String,
        /// Which expression, e.g. "expiration".
        what: &'static str,
        /// The expression's text.
        expression: String,
        /// The evaluator's message.
        reason: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
