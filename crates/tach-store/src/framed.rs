//! Many rows as one, on SQLite.
//!
//! sqlx hands every SQLite row from its database thread to the caller separately, one thread
//! wake-up per row (see BENCHMARKS.md). Statements that return many rows on SQLite therefore
//! have the database concatenate them into one row: every field framed, fields and rows joined
//! by single spaces, read back in order by [`Frames`]. An integer field is its decimal text;
//! a text field is `len:text` with `len` its byte length, so the text needs no escaping; a
//! nullable field is `N` when NULL.

use crate::error::{Error, Result};

/// One field of a framed row: an SQL expression and how it is framed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field<'a> {
    /// A NOT NULL integer expression (a NULL would make the whole row NULL, which
    /// `group_concat` skips).
    Int(&'a str),
    /// A NOT NULL text expression (likewise).
    Text(&'a str),
    /// A nullable integer expression.
    OptInt(&'a str),
    /// A nullable text expression.
    OptText(&'a str),
}

impl Field<'_> {
    /// The field's SQL expression.
    pub(crate) fn expr(&self) -> &str {
        match self {
            Field::Int(e) | Field::Text(e) | Field::OptInt(e) | Field::OptText(e) => e,
        }
    }
}

/// The start of `SELECT group_concat(<fields>) FROM (`: the caller appends the inner query,
/// whose result columns the fields name, and `)`. Rows are concatenated in `order`.
pub(crate) fn head(fields: &[Field], order: &str) -> String {
    let mut sql = String::from("SELECT group_concat(");
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            sql.push_str(" || ' ' || ");
        }
        let text = |sql: &mut String, expr: &str| {
            sql.push_str("length(CAST(");
            sql.push_str(expr);
            sql.push_str(" AS BLOB)) || ':' || ");
            sql.push_str(expr);
        };
        let expr = field.expr();
        match field {
            Field::Int(_) => sql.push_str(expr),
            Field::Text(_) => text(&mut sql, expr),
            Field::OptInt(_) => {
                sql.push_str("ifnull(");
                sql.push_str(expr);
                sql.push_str(", 'N')");
            }
            Field::OptText(_) => {
                sql.push_str("ifnull(");
                text(&mut sql, expr);
                sql.push_str(", 'N')");
            }
        }
    }
    sql.push_str(", ' ' ORDER BY ");
    sql.push_str(order);
    sql.push_str(") FROM (");
    sql
}

/// A reader of the fields of a framed result, in the order they were written.
#[derive(Debug)]
pub(crate) struct Frames<'a> {
    rest: &'a str,
}

impl<'a> Frames<'a> {
    /// A reader of `text` (the aggregate; SQL NULL, no rows, is the empty text).
    pub fn new(text: &'a str) -> Frames<'a> {
        Frames { rest: text }
    }

    /// True when every field has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next field, an integer; `what` names it in the error.
    pub fn int(&mut self, what: &str) -> Result<i64> {
        let (digits, rest) = self.rest.split_once(' ').unwrap_or((self.rest, ""));
        let value = digits.parse().map_err(|_| cut_short(what))?;
        self.rest = rest;
        Ok(value)
    }

    /// The next field, a nullable integer; `what` names it in the error.
    pub fn opt_int(&mut self, what: &str) -> Result<Option<i64>> {
        if self.null() {
            return Ok(None);
        }
        self.int(what).map(Some)
    }

    /// The next field, a nullable text; `what` names it in the error.
    pub fn opt_text(&mut self, what: &str) -> Result<Option<&'a str>> {
        if self.null() {
            return Ok(None);
        }
        self.text(what).map(Some)
    }

    /// Reads a NULL field (`N`) when one comes next.
    fn null(&mut self) -> bool {
        match self.rest.strip_prefix('N') {
            Some("") => {
                self.rest = "";
                true
            }
            Some(rest) if rest.starts_with(' ') => {
                self.rest = &rest[1..];
                true
            }
            _ => false,
        }
    }

    /// The next field, a text; `what` names it in the error.
    pub fn text(&mut self, what: &str) -> Result<&'a str> {
        let (len, rest) = self.rest.split_once(':').ok_or_else(|| cut_short(what))?;
        let len: usize = len.parse().map_err(|_| cut_short(what))?;
        let text = rest.get(..len).ok_or_else(|| cut_short(what))?;
        let rest = &rest[len..];
        self.rest = match rest.strip_prefix(' ') {
            Some(next) => next,
            None if rest.is_empty() => rest,
            None => return Err(cut_short(what)),
        };
        Ok(text)
    }
}

fn cut_short(what: &str) -> Error {
    Error::InvalidData {
        what: format!("the framed rows are cut short in {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_back_whatever_the_text_holds() {
        let mut f = Frames::new("7 5:m 1:2 -3 0: 4:\u{e9}:e");
        assert_eq!(f.int("a").unwrap(), 7);
        assert_eq!(f.text("b").unwrap(), "m 1:2");
        assert_eq!(f.int("c").unwrap(), -3);
        assert_eq!(f.text("d").unwrap(), "");
        assert_eq!(f.text("e").unwrap(), "\u{e9}:e");
        assert!(f.is_empty());
        assert!(Frames::new("").is_empty());
        let mut f = Frames::new("N 1:N N 4 N");
        assert_eq!(f.opt_int("a").unwrap(), None);
        assert_eq!(f.opt_text("b").unwrap(), Some("N"));
        assert_eq!(f.opt_text("c").unwrap(), None);
        assert_eq!(f.opt_int("d").unwrap(), Some(4));
        assert_eq!(f.opt_int("e").unwrap(), None);
        assert!(f.is_empty());
        assert!(Frames::new("Nx").opt_int("f").is_err());
    }

    #[test]
    fn malformed_frames_are_errors_naming_the_field() {
        for (text, int_first) in [
            ("x", true),
            ("", true),
            ("9:short", false),
            ("3:abcd", false),
            ("1:\u{e9}", false),
            ("nolen", false),
        ] {
            let mut f = Frames::new(text);
            let err = if int_first {
                f.int("an id").unwrap_err()
            } else {
                f.text("an id").unwrap_err()
            };
            assert!(
                err.to_string().contains("cut short in an id"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn the_head_frames_text_by_byte_length() {
        assert_eq!(
            head(
                &[Field::Int("id"), Field::Text("name"), Field::OptInt("n")],
                "id"
            ),
            "SELECT group_concat(id || ' ' || length(CAST(name AS BLOB)) || ':' || name \
             || ' ' || ifnull(n, 'N'), ' ' ORDER BY id) FROM ("
        );
    }
}
