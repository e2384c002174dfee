//! [`TimeExpression`]: the typed syntax tree the parser builds and its evaluation against a
//! set of variables. Tokens and grammar live in `lexer.rs` and `parser.rs`; date arithmetic in
//! `duration.rs`.
//!
//! Pinned ranges (`hour`, `day`, `month`, `year`) are evaluated as a family of ranges: the
//! calendar units `U_k` around the pin (`U_0` contains it), each transformed by the operations
//! written after the function. The result is the member that contains the pin. For `day + 6h`
//! the members are "6am to 6am" days, and the one returned is the one holding `$timestamp`.
//! This is the original's wrap-around (`PinnedTimeRange`), computed so that it always
//! terminates and always finds the pin, also where month lengths differ.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use chrono::{DateTime, Timelike, Utc};

use crate::duration::{DateError, Duration, Operator, RangeUnit, Unit};
use crate::error::{EvalError, ParseError};
use crate::parser;
use crate::value::{TimeRange, TimexValue};
use crate::variables::Variables;

/// The variable `$timestamp`, which defaults to the evaluation time.
const TIMESTAMP: &str = "timestamp";

/// A parsed time expression such as `$last + 1h`, `day @ 6h` or `$start to $end`.
///
/// Two expressions are equal when they parse to the same tree: whitespace and redundant
/// parentheses do not matter. `Display` reproduces the source text.
#[derive(Debug, Clone)]
pub struct TimeExpression {
    source: Box<str>,
    expr: Expr,
}

impl TimeExpression {
    /// Parses `src`.
    ///
    /// # Errors
    /// A [`ParseError`] naming the 1-based column of the first problem.
    pub fn parse(src: &str) -> Result<TimeExpression, ParseError> {
        let expr = parser::parse(src)?;
        Ok(TimeExpression {
            source: src.into(),
            expr,
        })
    }

    /// Evaluates the expression; `$timestamp` is `now` unless `vars` defines it.
    ///
    /// # Errors
    /// [`EvalError::MissingVariable`] for a variable `vars` lacks, or an error from date
    /// arithmetic that leaves the representable range or sets an impossible field.
    pub fn evaluate_at(
        &self,
        vars: &(impl Variables + ?Sized),
        now: DateTime<Utc>,
    ) -> Result<TimexValue, EvalError> {
        let env = Env { vars, now };
        match &self.expr {
            Expr::Timestamp(expr) => env.timestamp(expr).map(TimexValue::Timestamp),
            Expr::Range(expr) => env.range(expr).map(TimexValue::Range),
        }
    }

    /// Evaluates the expression with `$timestamp` defaulting to the current time, truncated to
    /// microseconds (the precision StackTach stores).
    ///
    /// # Errors
    /// As [`TimeExpression::evaluate_at`].
    pub fn evaluate(&self, vars: &(impl Variables + ?Sized)) -> Result<TimexValue, EvalError> {
        let now = Utc::now();
        let now = now
            .with_nanosecond(now.nanosecond() / 1000 * 1000)
            .unwrap_or(now);
        self.evaluate_at(vars, now)
    }

    /// Names (without `$`) of the variables the expression reads, in order of first use. A
    /// range function without argument reads `timestamp`.
    pub fn variables(&self) -> Vec<&str> {
        let mut names = Vec::new();
        match &self.expr {
            Expr::Timestamp(expr) => expr.collect_variables(&mut names),
            Expr::Range(expr) => expr.collect_variables(&mut names),
        }
        names
    }

    /// Whether the expression evaluates to a range (known from its syntax alone).
    pub fn is_range(&self) -> bool {
        matches!(self.expr, Expr::Range(_))
    }

    /// The source text, as parsed.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl FromStr for TimeExpression {
    type Err = ParseError;

    fn from_str(src: &str) -> Result<Self, Self::Err> {
        TimeExpression::parse(src)
    }
}

impl fmt::Display for TimeExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for TimeExpression {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr
    }
}

impl Eq for TimeExpression {}

impl Hash for TimeExpression {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.expr.hash(state);
    }
}

/// The syntax tree, typed like the original grammar: timestamp and range expressions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Expr {
    Timestamp(TimestampExpr),
    Range(RangeExpr),
}

/// An expression whose value is one instant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum TimestampExpr {
    /// `$name`
    Variable(Box<str>),
    /// `expr + 1h`, `expr - 1h`, `expr @ 1h`; never a bare number.
    Shift {
        expr: Box<TimestampExpr>,
        op: Operator,
        duration: Duration,
    },
}

/// An expression whose value is a range.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum RangeExpr {
    /// `begin to end`
    To {
        begin: TimestampExpr,
        end: TimestampExpr,
    },
    /// `day($x)` (or bare `day`: `$timestamp`) followed by the operations whose duration is
    /// shorter than the unit, which wrap around the pin. Bare numbers are already resolved.
    Pinned {
        unit: RangeUnit,
        arg: Option<TimestampExpr>,
        ops: Vec<(Operator, Duration)>,
    },
    /// `range + 1d`: both ends move; a pinned range stops being pinned.
    Shift {
        range: Box<RangeExpr>,
        op: Operator,
        duration: RangeDuration,
    },
}

/// A duration applied to a range: units plus, optionally, a bare number whose unit is chosen
/// from the range's length when evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RangeDuration {
    pub(crate) units: Duration,
    pub(crate) bare: Option<i64>,
}

impl RangeDuration {
    /// The duration with the bare number counted in the unit the original picked for a range
    /// of this length: a year or longer → months, 28 days → days, a day → hours, an hour →
    /// minutes, a minute → seconds, shorter → microseconds.
    fn resolve(&self, range: &TimeRange) -> Option<Duration> {
        let Some(bare) = self.bare else {
            return Some(self.units);
        };
        const DAY: u64 = 24 * 60 * 60;
        let seconds = (range.end - range.begin).num_seconds().unsigned_abs();
        let unit = match seconds {
            s if s >= 365 * DAY => Unit::Month,
            s if s >= 28 * DAY => Unit::Day,
            s if s >= DAY => Unit::Hour,
            s if s >= 60 * 60 => Unit::Minute,
            s if s >= 60 => Unit::Second,
            _ => Unit::Microsecond,
        };
        self.units.plus(unit, bare)
    }
}

impl fmt::Display for RangeDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.units.is_empty(), self.bare) {
            (_, None) => self.units.fmt(f),
            (true, Some(bare)) => write!(f, "{bare}"),
            (false, Some(bare)) => write!(f, "{} {bare}", self.units),
        }
    }
}

impl TimestampExpr {
    fn collect_variables<'a>(&'a self, names: &mut Vec<&'a str>) {
        match self {
            TimestampExpr::Variable(name) => push_unique(names, name),
            TimestampExpr::Shift { expr, .. } => expr.collect_variables(names),
        }
    }
}

impl RangeExpr {
    fn collect_variables<'a>(&'a self, names: &mut Vec<&'a str>) {
        match self {
            RangeExpr::To { begin, end } => {
                begin.collect_variables(names);
                end.collect_variables(names);
            }
            RangeExpr::Pinned { arg: Some(arg), .. } => arg.collect_variables(names),
            RangeExpr::Pinned { arg: None, .. } => push_unique(names, TIMESTAMP),
            RangeExpr::Shift { range, .. } => range.collect_variables(names),
        }
    }
}

fn push_unique<'a>(names: &mut Vec<&'a str>, name: &'a str) {
    if !names.contains(&name) {
        names.push(name);
    }
}

/// What an evaluation reads: the variables and the default for `$timestamp`.
struct Env<'v, V: ?Sized> {
    vars: &'v V,
    now: DateTime<Utc>,
}

impl<V: Variables + ?Sized> Env<'_, V> {
    fn lookup(&self, name: &str) -> Result<DateTime<Utc>, EvalError> {
        match self.vars.get(name) {
            Some(value) => Ok(value),
            None if name == TIMESTAMP => Ok(self.now),
            None => Err(EvalError::MissingVariable {
                name: name.to_owned(),
            }),
        }
    }

    fn timestamp(&self, expr: &TimestampExpr) -> Result<DateTime<Utc>, EvalError> {
        match expr {
            TimestampExpr::Variable(name) => self.lookup(name),
            TimestampExpr::Shift { expr, op, duration } => {
                apply(*op, self.timestamp(expr)?, duration)
            }
        }
    }

    fn range(&self, expr: &RangeExpr) -> Result<TimeRange, EvalError> {
        match expr {
            RangeExpr::To { begin, end } => {
                Ok(TimeRange::new(self.timestamp(begin)?, self.timestamp(end)?))
            }
            RangeExpr::Pinned { unit, arg, ops } => {
                let pin = match arg {
                    Some(arg) => self.timestamp(arg)?,
                    None => self.lookup(TIMESTAMP)?,
                };
                pinned_range(*unit, pin, ops)
            }
            RangeExpr::Shift {
                range,
                op,
                duration,
            } => {
                let range = self.range(range)?;
                let resolved = duration
                    .resolve(&range)
                    .ok_or_else(|| EvalError::OutOfRange {
                        datetime: range.begin,
                        operation: format!("{} {duration}", op.symbol()),
                    })?;
                Ok(TimeRange::new(
                    apply(*op, range.begin, &resolved)?,
                    apply(*op, range.end, &resolved)?,
                ))
            }
        }
    }
}

/// `dt op duration`, with the context an error needs.
fn apply(op: Operator, dt: DateTime<Utc>, duration: &Duration) -> Result<DateTime<Utc>, EvalError> {
    op.apply(dt, duration).map_err(|e| match e {
        DateError::OutOfRange => EvalError::OutOfRange {
            datetime: dt,
            operation: format!("{} {duration}", op.symbol()),
        },
        DateError::Field(field) => {
            let (min, max) = field.bounds();
            EvalError::InvalidReplace {
                field: field.field(),
                value: field.value,
                min,
                max,
            }
        }
    })
}

/// The member of the pinned family (see the module docs) that contains `pin`.
///
/// Member `k` is `[b(k), b(k + 1))` where `b(k)` is the start of unit `U_k` put through `ops`,
/// so consecutive members share their boundaries. Galloping away from `k = 0` until
/// `b(lo) <= pin < b(hi)`, then bisecting to `hi = lo + 1`, finds a member holding the pin in
/// a few steps even for `day + 1000h`.
fn pinned_range(
    unit: RangeUnit,
    pin: DateTime<Utc>,
    ops: &[(Operator, Duration)],
) -> Result<TimeRange, EvalError> {
    let base = unit.start(pin).ok_or_else(|| EvalError::OutOfRange {
        datetime: pin,
        operation: format!("@ start of {}", unit.name()),
    })?;
    let boundary = |k: i64| -> Result<DateTime<Utc>, EvalError> {
        let start = unit.step(base, k).ok_or_else(|| EvalError::OutOfRange {
            datetime: base,
            operation: match k {
                k if k < 0 => format!("- {}{}", k.unsigned_abs(), unit.unit().symbol()),
                k => format!("+ {k}{}", unit.unit().symbol()),
            },
        })?;
        ops.iter()
            .try_fold(start, |dt, (op, duration)| apply(*op, dt, duration))
    };
    if ops.is_empty() {
        return Ok(TimeRange::new(base, boundary(1)?));
    }

    let first = boundary(0)?;
    let (mut lo, mut hi) = if first <= pin {
        let mut lo = (0_i64, first);
        let mut step = 1_i64;
        loop {
            let k = lo.0.saturating_add(step);
            let at = boundary(k)?;
            if at > pin {
                break (lo, (k, at));
            }
            lo = (k, at);
            step = step.saturating_mul(2);
        }
    } else {
        let mut hi = (0_i64, first);
        let mut step = 1_i64;
        loop {
            let k = hi.0.saturating_sub(step);
            let at = boundary(k)?;
            if at <= pin {
                break ((k, at), hi);
            }
            hi = (k, at);
            step = step.saturating_mul(2);
        }
    };
    while hi.0 - lo.0 > 1 {
        let mid = lo.0 + (hi.0 - lo.0) / 2;
        let at = boundary(mid)?;
        if at <= pin {
            lo = (mid, at);
        } else {
            hi = (mid, at);
        }
    }
    Ok(TimeRange::new(lo.1, hi.1))
}
