//! StackTach's time expressions ("timex"), and the datetime helpers the whole project shares.
//!
//! A time expression computes a timestamp or a half-open range `[begin, end)` from datetime
//! variables, e.g. `$last + 1h` (when a stream expires) or `day` (the day holding the event's
//! `$timestamp`):
//!
//! | syntax | meaning |
//! |---|---|
//! | `$name` | a variable; `$timestamp` defaults to now |
//! | `e + 1d 6h`, `e - 30m` | add or subtract a duration (to both ends of a range) |
//! | `e @ 6h`, `e @ 0h 0m 0s` | replace fields (`@ 6h` sets the hour to 6) |
//! | `a to b` | the range from timestamp `a` to timestamp `b` |
//! | `day`, `day($x)`; `hour`, `month`, `year` | the unit holding `$x` (default `$timestamp`) |
//! | `( e )` | grouping |
//!
//! Units: `y`/`yr`/`year(s)`, `mo`/`month(s)`, `d`/`day(s)`, `h`/`hr`/`hour(s)`,
//! `m`/`min`/`minute(s)`, `s`/`sec`/`second(s)`, `us`/`microsecond(s)`. A number without a unit
//! is allowed only on ranges: its unit is one smaller than the range's length (months for a
//! year or longer, then days, hours, minutes, seconds, microseconds). Month and year steps keep
//! the day of month, clamped to the month's last day (`Jan 31 + 1mo` is Feb 28 or 29).
//!
//! A pinned range keeps containing its pin after `+`, `-` or `@` with a duration shorter than
//! its unit: `day + 6h` is the 6am-to-6am day that holds `$timestamp`. With a duration of at
//! least its unit (`day + 1d`) it simply moves and is no longer pinned.
//!
//! ```
//! use tach_timex::{parse_datetime, TimeExpression, TimexValue};
//!
//! let expr: TimeExpression = "day @ 6h".parse()?;
//! let t = parse_datetime("2014-08-01 02:10:23").unwrap();
//! let value = expr.evaluate(&[("timestamp", t)])?;
//! assert_eq!(value.to_string(), "2014-07-31T06:00:00.000000Z to 2014-08-01T06:00:00.000000Z");
//! assert!(value.contains(t));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod datetime;
mod duration;
mod error;
mod expression;
mod lexer;
mod parser;
mod value;
mod variables;

pub use chrono::{DateTime, Utc};
pub use datetime::{format_datetime, parse_datetime, write_datetime};
pub use error::{EvalError, ParseError};
pub use expression::TimeExpression;
pub use value::{TimeRange, TimexValue};
pub use variables::Variables;
