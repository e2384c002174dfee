//! Shell-style globs for `event_type`, with Python `fnmatch` semantics.
//!
//! `*` matches any run of characters (dots included), `?` one character, `[abc]`, `[a-z]`
//! a set, `[!abc]` its complement; a `[` without a closing `]` is literal, and so is a `]`
//! right after `[` or `[!`. Matching is case-sensitive, as `fnmatch` is on POSIX. Globs are
//! compiled once; the common shapes (`exact`, `prefix.*`, `*`) skip the general matcher.
//! [`EventTypeMatcher`] combines globs the way `event_type:` lists do.

use std::fmt;

/// A compiled shell-style glob.
#[derive(Clone, PartialEq)]
pub struct Glob {
    pattern: Box<str>,
    matcher: Matcher,
}

#[derive(Clone, PartialEq)]
enum Matcher {
    /// `*`: everything.
    All,
    /// No special characters.
    Exact(Box<str>),
    /// A literal followed by one trailing `*`.
    Prefix(Box<str>),
    General(Box<[Token]>),
}

#[derive(Clone, PartialEq)]
enum Token {
    Literal(Box<str>),
    AnyChar,
    Star,
    Set {
        negated: bool,
        ranges: Box<[(char, char)]>,
    },
}

impl Glob {
    /// Compiles `pattern`; every string is a valid glob.
    pub fn new(pattern: &str) -> Glob {
        let tokens = tokenize(pattern);
        let matcher = match tokens.as_slice() {
            [Token::Star] => Matcher::All,
            [] => Matcher::Exact("".into()),
            [Token::Literal(s)] => Matcher::Exact(s.clone()),
            [Token::Literal(s), Token::Star] => Matcher::Prefix(s.clone()),
            _ => Matcher::General(tokens.into_boxed_slice()),
        };
        Glob {
            pattern: pattern.into(),
            matcher,
        }
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether this glob is exactly `*`.
    pub fn matches_everything(&self) -> bool {
        self.matcher == Matcher::All
    }

    /// Whether `text` matches the whole glob.
    pub fn is_match(&self, text: &str) -> bool {
        match &self.matcher {
            Matcher::All => true,
            Matcher::Exact(s) => **s == *text,
            Matcher::Prefix(p) => text.starts_with(&**p),
            Matcher::General(tokens) => match_tokens(tokens, text),
        }
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.pattern)
    }
}

/// An `event_type` filter: a list of globs where those starting with `!` exclude.
///
/// An event type matches when some including glob matches and no excluding one does; a
/// list of only exclusions includes everything else (as stackdistiller did).
#[derive(Debug, Clone)]
pub struct EventTypeMatcher {
    include: Vec<Glob>,
    exclude: Vec<Glob>,
}

impl EventTypeMatcher {
    /// Compiles a list of globs, `!glob` excluding.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> EventTypeMatcher {
        let mut include = Vec::new();
        let mut exclude = Vec::new();
        for pattern in patterns {
            match pattern.as_ref().strip_prefix('!') {
                Some(excluded) => exclude.push(Glob::new(excluded)),
                None => include.push(Glob::new(pattern.as_ref())),
            }
        }
        if include.is_empty() && !exclude.is_empty() {
            include.push(Glob::new("*"));
        }
        EventTypeMatcher { include, exclude }
    }

    /// Whether `event_type` passes the filter.
    pub fn is_match(&self, event_type: &str) -> bool {
        self.include.iter().any(|g| g.is_match(event_type))
            && !self.exclude.iter().any(|g| g.is_match(event_type))
    }

    /// Whether the filter lets everything through: a plain `*` and no exclusion.
    pub fn is_catch_all(&self) -> bool {
        self.exclude.is_empty() && self.include.iter().any(|g| g.pattern() == "*")
    }
}

fn tokenize(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut literal = String::new();
    let flush = |literal: &mut String, tokens: &mut Vec<Token>| {
        if !literal.is_empty() {
            tokens.push(Token::Literal(std::mem::take(literal).into_boxed_str()));
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => {
                flush(&mut literal, &mut tokens);
                if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                }
            }
            '?' => {
                flush(&mut literal, &mut tokens);
                tokens.push(Token::AnyChar);
            }
            '[' => match parse_set(&chars, i) {
                Some((token, next)) => {
                    flush(&mut literal, &mut tokens);
                    tokens.push(token);
                    i = next;
                }
                None => literal.push('['),
            },
            _ => literal.push(c),
        }
    }
    flush(&mut literal, &mut tokens);
    tokens
}

/// Parses the set whose body starts at `start` (just after `[`); `None` if unclosed.
fn parse_set(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut j = start;
    if chars.get(j) == Some(&'!') {
        j += 1;
    }
    if chars.get(j) == Some(&']') {
        j += 1;
    }
    while j < chars.len() && chars[j] != ']' {
        j += 1;
    }
    if j >= chars.len() {
        return None;
    }
    let mut body = &chars[start..j];
    let negated = body.first() == Some(&'!');
    if negated {
        body = &body[1..];
    }
    let mut ranges = Vec::new();
    let mut k = 0;
    while k < body.len() {
        let lo = body[k];
        if k + 2 < body.len() && body[k + 1] == '-' {
            let hi = body[k + 2];
            // fnmatch drops empty ranges such as `z-a`.
            if lo <= hi {
                ranges.push((lo, hi));
            }
            k += 3;
        } else {
            ranges.push((lo, lo));
            k += 1;
        }
    }
    let token = Token::Set {
        negated,
        ranges: ranges.into_boxed_slice(),
    };
    Some((token, j + 1))
}

fn set_contains(ranges: &[(char, char)], c: char) -> bool {
    ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi)
}

/// Iterative wildcard matching that backtracks only to the last `*`.
fn match_tokens(tokens: &[Token], text: &str) -> bool {
    let mut p = 0;
    let mut t = 0;
    let mut star: Option<(usize, usize)> = None;
    loop {
        let advanced = match tokens.get(p) {
            Some(Token::Star) => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(Token::Literal(s)) if text[t..].starts_with(&**s) => {
                t += s.len();
                true
            }
            Some(Token::AnyChar) => match text[t..].chars().next() {
                Some(c) => {
                    t += c.len_utf8();
                    true
                }
                None => false,
            },
            Some(Token::Set { negated, ranges }) => match text[t..].chars().next() {
                Some(c) if set_contains(ranges, c) != *negated => {
                    t += c.len_utf8();
                    true
                }
                _ => false,
            },
            Some(Token::Literal(_)) => false,
            None if t == text.len() => return true,
            None => false,
        };
        if advanced {
            p += 1;
            continue;
        }
        // Mismatch: let the last star swallow one more character, or fail.
        match star {
            Some((star_p, star_t)) => match text[star_t..].chars().next() {
                Some(c) => {
                    let resume = star_t + c.len_utf8();
                    star = Some((star_p, resume));
                    p = star_p + 1;
                    t = resume;
                }
                None => return false,
            },
            None => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{EventTypeMatcher, Glob};

    fn m(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).is_match(text)
    }

    #[test]
    fn literals_and_stars() {
        assert!(m(
            "compute.instance.create.end",
            "compute.instance.create.end"
        ));
        assert!(!m(
            "compute.instance.create.end",
            "compute.instance.create.start"
        ));
        assert!(m("compute.instance.*", "compute.instance.create.end"));
        assert!(m("compute.instance.*", "compute.instance."));
        assert!(!m("compute.instance.*", "compute.instance"));
        assert!(m("*", ""));
        assert!(m("*", "anything.at.all"));
        assert!(m("*.end", "compute.instance.create.end"));
        assert!(!m("*.end", "compute.instance.create.start"));
        assert!(m("compute.*.end", "compute.instance.resize.end"));
        assert!(m("c*e*e", "compute.instance.resize.ende"));
        assert!(!m("c*e*x", "compute.instance.resize.end"));
        assert!(m("a**b", "ab"));
        assert!(m("", ""));
        assert!(!m("", "a"));
    }

    #[test]
    fn question_marks_match_one_character() {
        assert!(m("compute.instance.?", "compute.instance.x"));
        assert!(!m("compute.instance.?", "compute.instance.xy"));
        assert!(!m("compute.instance.?", "compute.instance."));
        assert!(m("?é?", "aéb"));
        assert!(m("??", "éé"));
    }

    #[test]
    fn sets_ranges_and_negation() {
        assert!(m("host-[0-9]", "host-7"));
        assert!(!m("host-[0-9]", "host-x"));
        assert!(m("host-[!0-9]", "host-x"));
        assert!(!m("host-[!0-9]", "host-7"));
        assert!(m("[abc]x", "bx"));
        assert!(!m("[abc]x", "dx"));
        // A `]` first in the set is literal; `-` at the ends is literal.
        assert!(m("[]]", "]"));
        assert!(m("[!]]", "a"));
        assert!(!m("[!]]", "]"));
        assert!(m("[-a]", "-"));
        assert!(m("[a-]", "-"));
        // `^` does not negate in fnmatch.
        assert!(m("[^a]", "^"));
        assert!(m("[^a]", "a"));
        // An empty range matches nothing.
        assert!(!m("[z-a]", "m"));
    }

    #[test]
    fn unclosed_bracket_is_literal() {
        assert!(m("a[b", "a[b"));
        assert!(!m("a[b", "ab"));
        assert!(m("a[*", "a[xyz"));
    }

    #[test]
    fn matching_is_case_sensitive() {
        assert!(!m("Compute.*", "compute.instance"));
    }

    #[test]
    fn backtracking_finds_late_matches() {
        assert!(m("*a*b*c", "xxaxxbxxaxxbxxc"));
        assert!(m("*.exists", "compute.instance.exists.exists"));
        assert!(!m("*.exists", "compute.instance.exists.verified"));
        assert!(m("*[0-9]", "abc9"));
    }

    #[test]
    fn everything_flag() {
        assert!(Glob::new("*").matches_everything());
        assert!(Glob::new("**").matches_everything());
        assert!(!Glob::new("*.x").matches_everything());
    }

    fn matcher(patterns: &[&str]) -> EventTypeMatcher {
        EventTypeMatcher::new(patterns)
    }

    #[test]
    fn event_type_lists_include_and_exclude() {
        let one = matcher(&["test.thing"]);
        assert!(one.is_match("test.thing"));
        assert!(!one.is_match("random.thing"));
        let two = matcher(&["test.thing", "other.thing"]);
        assert!(two.is_match("other.thing"));
        assert!(!two.is_match("random.thing"));
        let not_one = matcher(&["!test.thing"]);
        assert!(!not_one.is_match("test.thing"));
        assert!(not_one.is_match("random.thing"));
        let not_two = matcher(&["!test.thing", "!other.thing"]);
        assert!(!not_two.is_match("other.thing"));
        assert!(not_two.is_match("random.thing"));
        let mixed = matcher(&["*.thing", "!test.thing", "!other.thing"]);
        assert!(!mixed.is_match("test.thing"));
        assert!(!mixed.is_match("random.whatzit"));
        assert!(mixed.is_match("random.thing"));
    }

    #[test]
    fn catch_all_detection_follows_stackdistiller() {
        assert!(!matcher(&["*.thing", "!test.thing"]).is_catch_all());
        assert!(!matcher(&["!other.thing"]).is_catch_all());
        assert!(!matcher(&["other.thing"]).is_catch_all());
        assert!(!matcher(&["*", "!other.thing"]).is_catch_all());
        assert!(matcher(&["*"]).is_catch_all());
        assert!(matcher(&["*", "foo"]).is_catch_all());
    }
}
