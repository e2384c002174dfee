//! Criteria of `match_criteria` and `fire_criteria`: event type globs, the `timestamp` window,
//! trait tests and `map_distinguished_by`, parsed once and evaluated per event without
//! allocating.
//!
//! Semantics follow winchester's `definition.py`: an absent `event_type` means `*`; a list of
//! only `!` exclusions matches everything else; every trait test must pass; expressions see the
//! event's datetime traits and `timestamp` as variables, and an expression naming a variable
//! the event lacks is a mismatch. Beyond the original: `>=`, `<=`, `!=` (and `==`) comparisons,
//! comparisons written without a space (`>5`), and a text constant that is a datetime compares
//! equal to a datetime trait. Event type globs are the distiller's [`EventTypeMatcher`].

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tach_distiller::{Event, EventTypeMatcher, TraitValue};
use tach_timex::{TimeExpression, TimexValue, Variables};

use super::debug::MismatchReason;
use crate::keys;

/// Keys a criterion may have.
pub(crate) const CRITERIA_KEYS: &[&str] = &[
    "event_type",
    "number",
    "timestamp",
    "traits",
    "map_distinguished_by",
];

/// Names of the trait test types (`traits: {memory_mb: {int: "> 4096"}}`).
const TEST_TYPES: &[&str] = &["int", "float", "datetime", "string", "text"];

/// A parsed time expression whose errors are plain messages (for definition errors).
#[derive(Clone)]
pub struct Expression {
    // Boxed: a parsed expression is a few hundred bytes and criteria hold many of these.
    parsed: Arc<TimeExpression>,
}

impl Expression {
    /// Parses a time expression.
    ///
    /// # Errors
    /// The parser's message (it names the column).
    pub fn parse(text: &str) -> Result<Self, String> {
        let parsed = TimeExpression::parse(text).map_err(|e| e.to_string())?;
        Ok(Self {
            parsed: Arc::new(parsed),
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        self.parsed.as_str()
    }

    /// The parsed expression.
    pub fn expression(&self) -> &TimeExpression {
        &self.parsed
    }

    /// Evaluates the expression; `now` is `$timestamp` unless `vars` has one.
    ///
    /// # Errors
    /// The evaluator's message (e.g. a missing variable).
    pub fn evaluate(
        &self,
        vars: &impl Variables,
        now: DateTime<Utc>,
    ) -> Result<TimexValue, String> {
        self.parsed
            .evaluate_at(vars, now)
            .map_err(|e| e.to_string())
    }
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expression({:?})", self.text())
    }
}

/// A value of an event field, borrowed: a trait or one of `timestamp`, `event_type`,
/// `message_id` (which winchester's events also carried as keys).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FieldValue<'a> {
    /// Text.
    Text(&'a str),
    /// A whole number.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A datetime (UTC).
    Datetime(DateTime<Utc>),
}

/// The value of field `name` of `event`, if it has one.
pub(crate) fn field<'a>(event: &'a Event, name: &str) -> Option<FieldValue<'a>> {
    match name {
        "timestamp" => return Some(FieldValue::Datetime(event.timestamp)),
        "event_type" => return Some(FieldValue::Text(&event.event_type)),
        "message_id" => return Some(FieldValue::Text(&event.message_id)),
        _ => {}
    }
    event.trait_value(name).map(|value| match value {
        TraitValue::Text(s) => FieldValue::Text(s),
        TraitValue::Int(i) => FieldValue::Int(*i),
        TraitValue::Float(f) => FieldValue::Float(*f),
        TraitValue::Datetime(d) => FieldValue::Datetime(*d),
    })
}

/// An event's datetime traits as time-expression variables, with `timestamp` given.
pub(crate) struct EventVars<'a> {
    /// The event.
    pub event: &'a Event,
    /// The value of `$timestamp` (the event's timestamp, or a mapped trait's value).
    pub timestamp: DateTime<Utc>,
}

impl Variables for EventVars<'_> {
    fn get(&self, name: &str) -> Option<DateTime<Utc>> {
        if name == "timestamp" {
            return Some(self.timestamp);
        }
        match self.event.trait_value(name) {
            Some(TraitValue::Datetime(d)) => Some(*d),
            _ => None,
        }
    }
}

/// A comparison operator of an `int` or `float` trait test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `=` (or `==`).
    Eq,
    /// `!=` (beyond the original).
    Ne,
    /// `>`.
    Gt,
    /// `>=` (beyond the original).
    Ge,
    /// `<`.
    Lt,
    /// `<=` (beyond the original).
    Le,
}

impl CompareOp {
    /// Whether `a op b` holds.
    fn holds<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Self::Eq => a == b,
            Self::Ne => a != b,
            Self::Gt => a > b,
            Self::Ge => a >= b,
            Self::Lt => a < b,
            Self::Le => a <= b,
        }
    }

    /// Splits a leading operator off a comparison such as `"> 5"`, `">=5"` or `"5"`.
    fn split(text: &str) -> (Self, &str) {
        const OPS: &[(&str, CompareOp)] = &[
            (">=", CompareOp::Ge),
            ("<=", CompareOp::Le),
            ("!=", CompareOp::Ne),
            ("==", CompareOp::Eq),
            ("=", CompareOp::Eq),
            (">", CompareOp::Gt),
            ("<", CompareOp::Lt),
        ];
        let text = text.trim();
        for (symbol, op) in OPS {
            if let Some(rest) = text.strip_prefix(symbol) {
                return (*op, rest.trim());
            }
        }
        (Self::Eq, text)
    }
}

/// A constant a trait is compared with (`name: value`, `{string: value}`).
#[derive(Debug, Clone, PartialEq)]
pub enum Constant {
    /// Text; `datetime` is its value when it reads as a datetime, for datetime traits.
    Text {
        /// The text.
        text: String,
        /// The datetime it denotes, if any.
        datetime: Option<DateTime<Utc>>,
    },
    /// A whole number (also matches an equal float, as in Python).
    Int(i64),
    /// A floating-point number (also matches an equal whole number).
    Float(f64),
    /// A boolean (Python's `True == 1`: matches the whole numbers 1 and 0).
    Bool(bool),
}

impl Constant {
    /// Reads a YAML scalar.
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(s) => Ok(Self::Text {
                text: s.clone(),
                datetime: tach_timex::parse_datetime(s),
            }),
            Value::Bool(b) => Ok(Self::Bool(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Ok(Self::Int(i)),
                None => n
                    .as_f64()
                    .map(Self::Float)
                    .ok_or_else(|| format!("`{n}` is not a usable number")),
            },
            other => Err(format!(
                "expected a value to compare with, found {}",
                keys::kind(other)
            )),
        }
    }

    /// Whether a field equals this constant.
    fn equals(&self, value: FieldValue<'_>) -> bool {
        match (self, value) {
            (Self::Text { text, .. }, FieldValue::Text(t)) => text == t,
            (Self::Text { datetime, .. }, FieldValue::Datetime(d)) => *datetime == Some(d),
            (Self::Int(c), FieldValue::Int(i)) => *c == i,
            (Self::Int(c), FieldValue::Float(f)) => *c as f64 == f,
            (Self::Float(c), FieldValue::Float(f)) => *c == f,
            (Self::Float(c), FieldValue::Int(i)) => *c == i as f64,
            (Self::Bool(b), FieldValue::Int(i)) => i64::from(*b) == i,
            _ => false,
        }
    }
}

/// What a trait must satisfy.
#[derive(Debug, Clone)]
pub enum TraitTest {
    /// Equal to a constant (`name: value`, `{string: v}`, `{text: v}`).
    Equals(Constant),
    /// An integer comparison (`{int: "> 4096"}`).
    Int(CompareOp, i64),
    /// A float comparison (`{float: "< 4.02"}`).
    Float(CompareOp, f64),
    /// Within the time expression's result (`{datetime: "$audit_period_beginning + 1d"}`).
    Datetime(Expression),
}

/// One entry of a criterion's `traits:`.
#[derive(Debug, Clone)]
pub struct TraitCriterion {
    /// The trait's name.
    pub name: String,
    /// The test.
    pub test: TraitTest,
}

impl TraitCriterion {
    /// Reads `name: spec`.
    fn from_value(name: &str, spec: &Value) -> Result<Self, String> {
        let test = match spec {
            Value::Object(map) => {
                if map.len() != 1 {
                    return Err(format!(
                        "trait `{name}`: exactly one test type is allowed (found {}: {})",
                        map.len(),
                        map.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
                let Some((kind, expr)) = map.iter().next() else {
                    return Err(format!("trait `{name}`: empty test"));
                };
                test_of_type(name, kind, expr)?
            }
            Value::Array(_) | Value::Null => {
                return Err(format!(
                    "trait `{name}`: expected a value or a test such as {{int: \"> 5\"}}, found {}",
                    keys::kind(spec)
                ));
            }
            scalar => TraitTest::Equals(
                Constant::from_value(scalar).map_err(|e| format!("trait `{name}`: {e}"))?,
            ),
        };
        Ok(Self {
            name: name.to_string(),
            test,
        })
    }

    /// Checks the event; the reason when it fails.
    fn check(&self, event: &Event) -> Result<(), MismatchReason> {
        let Some(value) = field(event, &self.name) else {
            return Err(MismatchReason::TraitMissing);
        };
        let passed = match (&self.test, value) {
            (TraitTest::Equals(constant), v) => constant.equals(v),
            (TraitTest::Int(op, c), FieldValue::Int(i)) => op.holds(i, *c),
            (TraitTest::Int(op, c), FieldValue::Float(f)) => op.holds(f, *c as f64),
            (TraitTest::Float(op, c), FieldValue::Float(f)) => op.holds(f, *c),
            (TraitTest::Float(op, c), FieldValue::Int(i)) => op.holds(i as f64, *c),
            (TraitTest::Datetime(expression), FieldValue::Datetime(d)) => {
                let vars = EventVars {
                    event,
                    timestamp: event.timestamp,
                };
                return match expression.evaluate(&vars, event.timestamp) {
                    Ok(range) if range.contains(d) => Ok(()),
                    Ok(_) => Err(MismatchReason::TraitNotInRange),
                    Err(_) => Err(MismatchReason::TraitVariableMissing),
                };
            }
            _ => false,
        };
        if passed {
            Ok(())
        } else {
            Err(MismatchReason::TraitMismatch)
        }
    }
}

/// The test of an explicit type (`int`, `float`, `datetime`, `string`, `text`).
fn test_of_type(name: &str, kind: &str, expr: &Value) -> Result<TraitTest, String> {
    match kind {
        "int" => {
            let (op, number) = comparison(name, kind, expr)?;
            let value = number.parse::<i64>().map_err(|_| {
                format!(
                    "trait `{name}`: `{}` is not an int comparison (e.g. \"> 4096\", \"<= 2\", \"5\")",
                    scalar_text(expr)
                )
            })?;
            Ok(TraitTest::Int(op, value))
        }
        "float" => {
            let (op, number) = comparison(name, kind, expr)?;
            let value = number.parse::<f64>().map_err(|_| {
                format!(
                    "trait `{name}`: `{}` is not a float comparison (e.g. \"< 4.02\", \"1.5\")",
                    scalar_text(expr)
                )
            })?;
            Ok(TraitTest::Float(op, value))
        }
        "datetime" => match expr {
            Value::String(text) => Expression::parse(text)
                .map(TraitTest::Datetime)
                .map_err(|e| format!("trait `{name}`: datetime expression `{text}`: {e}")),
            other => Err(format!(
                "trait `{name}`: expected a time expression, found {}",
                keys::kind(other)
            )),
        },
        "string" | "text" => Constant::from_value(expr)
            .map(TraitTest::Equals)
            .map_err(|e| format!("trait `{name}`: {e}")),
        other => {
            let hint = match other {
                "numeric" | "number" | "integer" | "long" => {
                    "did you mean `int` or `float`?".into()
                }
                "double" | "real" | "decimal" => "did you mean `float`?".into(),
                "date" | "time" | "timestamp" => "did you mean `datetime`?".into(),
                "str" => "did you mean `string`?".into(),
                _ => keys::suggestion(other, TEST_TYPES),
            };
            Err(format!(
                "trait `{name}`: unknown criterion type `{other}` ({hint} known types: {})",
                TEST_TYPES.join(", ")
            ))
        }
    }
}

/// The text of a scalar as written, for messages.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Splits an `int`/`float` test into its operator and number text.
fn comparison(name: &str, kind: &str, expr: &Value) -> Result<(CompareOp, String), String> {
    match expr {
        Value::Number(n) => Ok((CompareOp::Eq, n.to_string())),
        Value::String(s) => {
            let (op, rest) = CompareOp::split(s);
            Ok((op, rest.to_string()))
        }
        other => Err(format!(
            "trait `{name}`: expected a {kind} comparison such as \"> 5\", found {}",
            keys::kind(other)
        )),
    }
}

/// One criterion of `match_criteria` or `fire_criteria`.
#[derive(Debug, Clone)]
pub struct Criteria {
    /// `event_type`: globs, `!` excludes (the distiller's matcher, Python fnmatch semantics).
    pub event_type: EventTypeMatcher,
    /// `number`: how many matching events a fire criterion needs (default 1).
    pub number: u32,
    /// `timestamp`: the event's timestamp must lie in this expression's result.
    pub timestamp: Option<Expression>,
    /// `traits`: every test must pass.
    pub traits: Vec<TraitCriterion>,
    /// `map_distinguished_by`: distinguishing trait → the event trait that supplies its value.
    pub map_distinguished_by: Vec<(String, String)>,
}

impl Criteria {
    /// Reads a criterion; unknown keys become warnings prefixed with `context`.
    ///
    /// # Errors
    /// The reason, when a value is of the wrong kind or an expression does not parse.
    pub(crate) fn from_value(
        value: &Value,
        context: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Self, String> {
        let empty = serde_json::Map::new();
        let map = match value {
            Value::Object(map) => map,
            Value::Null => &empty,
            other => {
                return Err(format!(
                    "expected a mapping (event_type, traits, ...), found {}",
                    keys::kind(other)
                ));
            }
        };
        let mut criteria = Self {
            event_type: EventTypeMatcher::new(&["*"]),
            number: 1,
            timestamp: None,
            traits: Vec::new(),
            map_distinguished_by: Vec::new(),
        };
        for (key, v) in map {
            match key.as_str() {
                "event_type" => criteria.event_type = EventTypeMatcher::new(&globs(v)?),
                "number" => {
                    criteria.number = v
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| format!("`number`: expected a whole number, found `{v}`"))?;
                }
                "timestamp" => {
                    let Value::String(text) = v else {
                        return Err(format!(
                            "`timestamp`: expected a time expression, found {}",
                            keys::kind(v)
                        ));
                    };
                    criteria.timestamp = Some(
                        Expression::parse(text)
                            .map_err(|e| format!("timestamp expression `{text}`: {e}"))?,
                    );
                }
                "traits" => criteria.traits = trait_criteria(v)?,
                "map_distinguished_by" => criteria.map_distinguished_by = string_pairs(key, v)?,
                other => warnings.push(keys::unknown_key(context, other, CRITERIA_KEYS)),
            }
        }
        Ok(criteria)
    }

    /// Checks an event against this criterion; the reason when it fails.
    ///
    /// # Errors
    /// The first failed check, in winchester's order: event type, timestamp, traits.
    pub fn check(&self, event: &Event) -> Result<(), MismatchReason> {
        if !self.event_type.is_match(&event.event_type) {
            return Err(MismatchReason::WrongEventType);
        }
        if let Some(window) = &self.timestamp {
            let vars = EventVars {
                event,
                timestamp: event.timestamp,
            };
            match window.evaluate(&vars, event.timestamp) {
                Ok(range) if range.contains(event.timestamp) => {}
                Ok(_) => return Err(MismatchReason::TimestampOutOfRange),
                Err(_) => return Err(MismatchReason::TimestampVariableMissing),
            }
        }
        self.traits.iter().try_for_each(|t| t.check(event))
    }

    /// Whether an event satisfies this criterion.
    pub fn matches(&self, event: &Event) -> bool {
        self.check(event).is_ok()
    }

    /// The event trait supplying distinguishing trait `name` (itself unless mapped).
    pub fn source_of<'a>(&'a self, name: &'a str) -> &'a str {
        self.map_distinguished_by
            .iter()
            .find(|(dist, _)| dist == name)
            .map_or(name, |(_, source)| source.as_str())
    }
}

/// `event_type`: one glob or a list of them.
fn globs(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!(
                    "`event_type`: expected globs, found {}",
                    keys::kind(other)
                )),
            })
            .collect(),
        other => Err(format!(
            "`event_type`: expected a glob or a list of globs, found {}",
            keys::kind(other)
        )),
    }
}

/// `traits:`: a mapping of trait name to test.
fn trait_criteria(value: &Value) -> Result<Vec<TraitCriterion>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) => map
            .iter()
            .map(|(name, spec)| TraitCriterion::from_value(name, spec))
            .collect(),
        other => Err(format!(
            "`traits`: expected a mapping of trait name to test, found {}",
            keys::kind(other)
        )),
    }
}

/// A mapping of strings to strings (`map_distinguished_by`).
fn string_pairs(key: &str, value: &Value) -> Result<Vec<(String, String)>, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "`{key}`: expected a mapping of distinguishing trait to event trait, found {}",
            keys::kind(value)
        ));
    };
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(format!(
                "`{key}`: `{k}` must name an event trait, found {}",
                keys::kind(other)
            )),
        })
        .collect()
}
