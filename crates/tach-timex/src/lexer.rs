//! Splits a time expression into tokens, one at a time, as the parser asks for them (so the
//! first problem in reading order is the one reported). Knows no grammar: `to`, unit names and
//! function names are all plain words here.

use std::fmt;

use crate::error::ParseError;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind<'a> {
    /// Decimal digits, e.g. `30`.
    Number(&'a str),
    /// `[A-Za-z_][A-Za-z0-9_]*`: a keyword, unit, function or variable name.
    Word(&'a str),
    Plus,
    Minus,
    At,
    Dollar,
    LParen,
    RParen,
    End,
}

impl fmt::Display for TokenKind<'_> {
    /// How error messages name the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKind::Number(n) => write!(f, "number `{n}`"),
            TokenKind::Word(w) => write!(f, "`{w}`"),
            TokenKind::Plus => f.write_str("`+`"),
            TokenKind::Minus => f.write_str("`-`"),
            TokenKind::At => f.write_str("`@`"),
            TokenKind::Dollar => f.write_str("`$`"),
            TokenKind::LParen => f.write_str("`(`"),
            TokenKind::RParen => f.write_str("`)`"),
            TokenKind::End => f.write_str("end of expression"),
        }
    }
}

/// A token and the 1-based column it starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub(crate) kind: TokenKind<'a>,
    pub(crate) column: usize,
}

/// Reads tokens from a source string.
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// Starts reading `src`.
    pub(crate) fn new(src: &'a str) -> Self {
        Lexer { src, pos: 0 }
    }

    /// Reads the next token, skipping whitespace; after the last one, `End` forever.
    pub(crate) fn next_token(&mut self) -> Result<Token<'a>, ParseError> {
        let bytes = self.src.as_bytes();
        while bytes.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
        let start = self.pos;
        // Every byte before `start` is ASCII (anything else stops at the error below), so the
        // byte offset is also the character offset.
        let column = start + 1;
        let Some(&first) = bytes.get(start) else {
            return Ok(Token {
                kind: TokenKind::End,
                column,
            });
        };
        let kind = match first {
            b'+' => TokenKind::Plus,
            b'-' => TokenKind::Minus,
            b'@' => TokenKind::At,
            b'$' => TokenKind::Dollar,
            b'(' => TokenKind::LParen,
            b')' => TokenKind::RParen,
            b'0'..=b'9' => {
                let end = self.scan(start, |b| b.is_ascii_digit());
                return Ok(Token {
                    kind: TokenKind::Number(&self.src[start..end]),
                    column,
                });
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let end = self.scan(start, |b| b.is_ascii_alphanumeric() || b == b'_');
                return Ok(Token {
                    kind: TokenKind::Word(&self.src[start..end]),
                    column,
                });
            }
            _ => {
                let ch = self.src[start..]
                    .chars()
                    .next()
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                return Err(ParseError::new(
                    column,
                    format!("unexpected character `{ch}`"),
                ));
            }
        };
        self.pos += 1;
        Ok(Token { kind, column })
    }

    /// Advances past the bytes from `start` that satisfy `accept`; returns the end offset.
    fn scan(&mut self, start: usize, accept: impl Fn(u8) -> bool) -> usize {
        let bytes = self.src.as_bytes();
        self.pos = start;
        while bytes.get(self.pos).is_some_and(|b| accept(*b)) {
            self.pos += 1;
        }
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Result<Vec<(TokenKind<'_>, usize)>, ParseError> {
        let mut lexer = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let token = lexer.next_token()?;
            out.push((token.kind, token.column));
            if token.kind == TokenKind::End {
                return Ok(out);
            }
        }
    }

    #[test]
    fn reads_every_token_with_its_column() {
        use TokenKind::*;
        assert_eq!(
            kinds("($a_1 + 10d\t6h) @ 2 -to").expect("valid"),
            vec![
                (LParen, 1),
                (Dollar, 2),
                (Word("a_1"), 3),
                (Plus, 7),
                (Number("10"), 9),
                (Word("d"), 11),
                (Number("6"), 13),
                (Word("h"), 14),
                (RParen, 15),
                (At, 17),
                (Number("2"), 19),
                (Minus, 21),
                (Word("to"), 22),
                (End, 24),
            ]
        );
    }

    #[test]
    fn digits_after_letters_stay_in_the_word() {
        // As in the original lexer, `2h30m` is the number 2 and the word `h30m`.
        assert_eq!(
            kinds("2h30m").expect("valid"),
            vec![
                (TokenKind::Number("2"), 1),
                (TokenKind::Word("h30m"), 2),
                (TokenKind::End, 6)
            ]
        );
    }

    #[test]
    fn rejects_unknown_characters_at_their_column() {
        let err = kinds("$a + 1h # x").unwrap_err();
        assert_eq!(err.to_string(), "column 9: unexpected character `#`");
        let err = kinds("$a → $b").unwrap_err();
        assert_eq!(err.to_string(), "column 4: unexpected character `→`");
    }

    #[test]
    fn end_is_past_the_last_character() {
        assert_eq!(kinds("").expect("valid"), vec![(TokenKind::End, 1)]);
        assert_eq!(kinds("  ").expect("valid"), vec![(TokenKind::End, 3)]);
    }
}
