//! The two ways a time expression can fail: parsing it ([`ParseError`]) and evaluating it
//! against a set of variables ([`EvalError`]).

use chrono::{DateTime, Utc};

use crate::datetime::format_datetime;

/// A time expression that could not be parsed; `column` is the 1-based character column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ParseError {
    /// 1-based character column where the problem was found.
    pub column: usize,
    /// What is wrong there.
    pub message: String,
}

impl ParseError {
    /// Builds a parse error at `column` (1-based).
    pub(crate) fn new(column: usize, message: impl Into<String>) -> Self {
        ParseError {
            column,
            message: message.into(),
        }
    }
}

/// A time expression that parsed but could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The expression names a variable the lookup does not have.
    #[error("variable `${name}` is not defined")]
    MissingVariable {
        /// The variable's name, without `$`.
        name: String,
    },
    /// An addition or subtraction left the range of representable dates.
    #[error("`{} {operation}` is outside the supported date range", format_datetime(*.datetime))]
    OutOfRange {
        /// The datetime the operation was applied to.
        datetime: DateTime<Utc>,
        /// The operation, e.g. `+ 100000y`.
        operation: String,
    },
    /// A replacement (`@`) would set a field to an impossible value, e.g. `@ 30h`.
    #[error("cannot set the {field} to {value} (allowed: {min} to {max})")]
    InvalidReplace {
        /// The datetime field, e.g. `hour`.
        field: &'static str,
        /// The value the expression asked for.
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
}
