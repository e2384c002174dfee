//! Recursive-descent parser from tokens to the typed syntax tree of `expression.rs`.
//!
//! ```text
//! expression := operand ("to" operand)*          -- each operand of `to` must be a timestamp
//! operand    := primary (("+" | "-" | "@") duration)*
//! primary    := "$" NAME | "(" expression ")" | FUNCTION ["(" expression ")"]
//! duration   := (NUMBER [UNIT])+                 -- `1d 6h`; a NUMBER alone is a bare number
//! ```
//!
//! `to` binds loosest and `+`, `-`, `@` bind tightest, left to right, as in the original's
//! precedence table (`to` < `+`/`-` < `@`: the right operand of those three is always a
//! duration, so among themselves only the order matters). Types are checked here, as the
//! original grammar did with its two non-terminals: `to` and range functions take timestamps,
//! and a bare number only follows a range.

use crate::duration::{Duration, Operator, RangeUnit, Unit};
use crate::error::ParseError;
use crate::expression::{Expr, RangeDuration, RangeExpr, TimestampExpr};
use crate::lexer::{Lexer, Token, TokenKind};

const AFTER_EXPRESSION: &str = "`+`, `-`, `@`, `to` or the end of the expression";
const AFTER_INNER: &str = "`+`, `-`, `@`, `to` or `)`";
const PRIMARY: &str = "`$variable`, `(` or a range function (`hour`, `day`, `month`, `year`)";
const VARIABLE_NAME: &str = "a variable name after `$`";
const DURATION: &str = "a duration such as `1h` or `30m`";

/// Parses a whole time expression.
pub(crate) fn parse(src: &str) -> Result<Expr, ParseError> {
    let mut lexer = Lexer::new(src);
    let peek = lexer.next_token()?;
    let mut parser = Parser { lexer, peek };
    let expr = parser.expression()?;
    match parser.peek.kind {
        TokenKind::End => Ok(expr.expr),
        _ => Err(unexpected(parser.peek, AFTER_EXPRESSION)),
    }
}

/// A parsed (sub)expression and the column it starts at, for type errors.
struct Located {
    expr: Expr,
    column: usize,
}

/// A duration as written, before it is attached to a timestamp or range.
struct ParsedDuration {
    units: Duration,
    /// The sum of the numbers written without a unit, and the column of the first one.
    bare: Option<(i64, usize)>,
    column: usize,
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    /// The next token, not yet consumed.
    peek: Token<'a>,
}

impl<'a> Parser<'a> {
    /// Consumes the next token and returns it.
    fn advance(&mut self) -> Result<Token<'a>, ParseError> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.peek, next))
    }

    /// `operand ("to" operand)*`
    fn expression(&mut self) -> Result<Located, ParseError> {
        let mut left = self.operand()?;
        while self.peek.kind == TokenKind::Word("to") {
            self.advance()?;
            let Expr::Timestamp(begin) = left.expr else {
                return Err(ParseError::new(
                    left.column,
                    "`to` needs a timestamp on its left, not a range",
                ));
            };
            let right = self.operand()?;
            let Expr::Timestamp(end) = right.expr else {
                return Err(ParseError::new(
                    right.column,
                    "`to` needs a timestamp on its right, not a range",
                ));
            };
            left = Located {
                expr: Expr::Range(RangeExpr::To { begin, end }),
                column: left.column,
            };
        }
        Ok(left)
    }

    /// `primary (("+" | "-" | "@") duration)*`
    fn operand(&mut self) -> Result<Located, ParseError> {
        let mut located = self.primary()?;
        loop {
            let op = match self.peek.kind {
                TokenKind::Plus => Operator::Plus,
                TokenKind::Minus => Operator::Minus,
                TokenKind::At => Operator::Replace,
                _ => return Ok(located),
            };
            self.advance()?;
            let duration = self.duration()?;
            located.expr = apply(located.expr, op, duration)?;
        }
    }

    /// `"$" NAME | "(" expression ")" | FUNCTION ["(" expression ")"]`
    fn primary(&mut self) -> Result<Located, ParseError> {
        let token = self.advance()?;
        let column = token.column;
        let expr = match token.kind {
            TokenKind::Dollar => {
                let name = self.advance()?;
                let TokenKind::Word(name) = name.kind else {
                    return Err(unexpected(name, VARIABLE_NAME));
                };
                Expr::Timestamp(TimestampExpr::Variable(name.into()))
            }
            TokenKind::LParen => {
                let inner = self.expression()?;
                self.close()?;
                inner.expr
            }
            TokenKind::Word(name) if name != "to" => {
                let unit = RangeUnit::from_name(name).ok_or_else(|| {
                    ParseError::new(
                        column,
                        format!(
                            "unknown range function `{name}`; \
                             expected `hour`, `day`, `month` or `year`"
                        ),
                    )
                })?;
                let arg = if self.peek.kind == TokenKind::LParen {
                    self.advance()?;
                    let arg = self.expression()?;
                    let Expr::Timestamp(arg_expr) = arg.expr else {
                        return Err(ParseError::new(
                            arg.column,
                            format!("the argument of `{name}` must be a timestamp, not a range"),
                        ));
                    };
                    self.close()?;
                    Some(arg_expr)
                } else {
                    None
                };
                Expr::Range(RangeExpr::Pinned {
                    unit,
                    arg,
                    ops: Vec::new(),
                })
            }
            _ => return Err(unexpected(token, PRIMARY)),
        };
        Ok(Located { expr, column })
    }

    /// Consumes the `)` closing a parenthesised expression or a function argument.
    fn close(&mut self) -> Result<(), ParseError> {
        if self.peek.kind != TokenKind::RParen {
            return Err(unexpected(self.peek, AFTER_INNER));
        }
        self.advance()?;
        Ok(())
    }

    /// `(NUMBER [UNIT])+`
    fn duration(&mut self) -> Result<ParsedDuration, ParseError> {
        let column = self.peek.column;
        if !matches!(self.peek.kind, TokenKind::Number(_)) {
            return Err(unexpected(self.peek, DURATION));
        }
        let too_large = || ParseError::new(column, "duration is too large");
        let mut units = Duration::default();
        let mut bare: Option<(i64, usize)> = None;
        while let TokenKind::Number(text) = self.peek.kind {
            let number = self.advance()?;
            let amount: i64 = text.parse().map_err(|_| {
                ParseError::new(number.column, format!("number `{text}` is too large"))
            })?;
            match self.peek.kind {
                TokenKind::Word(word) if word != "to" => {
                    let word_column = self.peek.column;
                    let unit =
                        Unit::from_name(word).ok_or_else(|| unknown_unit(word, word_column))?;
                    self.advance()?;
                    units = units.plus(unit, amount).ok_or_else(too_large)?;
                }
                _ => {
                    bare = Some(match bare {
                        None => (amount, number.column),
                        Some((sum, first)) => {
                            (sum.checked_add(amount).ok_or_else(too_large)?, first)
                        }
                    });
                }
            }
        }
        Ok(ParsedDuration {
            units,
            bare,
            column,
        })
    }
}

/// Attaches `op duration` to `expr`, checking that the duration fits what it is applied to.
fn apply(expr: Expr, op: Operator, duration: ParsedDuration) -> Result<Expr, ParseError> {
    let ParsedDuration {
        units,
        bare,
        column,
    } = duration;
    match expr {
        Expr::Timestamp(timestamp) => {
            if let Some((amount, bare_column)) = bare {
                return Err(ParseError::new(
                    bare_column,
                    format!(
                        "number `{amount}` has no unit; only a range picks a unit for a bare number"
                    ),
                ));
            }
            check(op, &units, column)?;
            let expr = Box::new(timestamp);
            Ok(Expr::Timestamp(TimestampExpr::Shift {
                expr,
                op,
                duration: units,
            }))
        }
        // A pinned range wraps around its pin; its unit is fixed, so a bare number's unit is
        // known now (one smaller than the range's).
        Expr::Range(RangeExpr::Pinned { unit, arg, mut ops }) if units.is_shorter_than(unit) => {
            let units = match bare {
                None => units,
                Some((amount, _)) => {
                    let too_large = || ParseError::new(column, "duration is too large");
                    units
                        .plus(unit.bare_number_unit(), amount)
                        .ok_or_else(too_large)?
                }
            };
            check(op, &units, column)?;
            ops.push((op, units));
            Ok(Expr::Range(RangeExpr::Pinned { unit, arg, ops }))
        }
        Expr::Range(range) => {
            check(op, &units, column)?;
            let duration = RangeDuration {
                units,
                bare: bare.map(|(amount, _)| amount),
            };
            Ok(Expr::Range(RangeExpr::Shift {
                range: Box::new(range),
                op,
                duration,
            }))
        }
    }
}

/// Rejects what can never evaluate: `@` with an impossible field, `+`/`-` beyond any date.
fn check(op: Operator, units: &Duration, column: usize) -> Result<(), ParseError> {
    match op {
        Operator::Replace => units
            .check_replace()
            .map_err(|e| ParseError::new(column, e.to_string())),
        Operator::Plus | Operator::Minus if !units.check_shift() => Err(ParseError::new(
            column,
            format!("duration `{units}` is too large"),
        )),
        Operator::Plus | Operator::Minus => Ok(()),
    }
}

fn unexpected(token: Token<'_>, expected: &str) -> ParseError {
    ParseError::new(
        token.column,
        format!("unexpected {}; expected {expected}", token.kind),
    )
}

fn unknown_unit(word: &str, column: usize) -> ParseError {
    let message = if word.bytes().any(|b| b.is_ascii_digit()) {
        format!("unknown unit `{word}`; separate ganged durations with spaces, e.g. `2h 30m`")
    } else {
        format!("unknown unit `{word}`; expected `y`, `mo`, `d`, `h`, `m`, `s` or `us`")
    };
    ParseError::new(column, message)
}
