//! Field paths: stackdistiller's JSONPath dialect (that of Python's `jsonpath_rw`).
//!
//! A path is compiled once, at load time, and evaluated on a parsed notification. The
//! grammar, loosest binding first: `a..b` (b anywhere below a), `a.b` (child), `a|b`
//! (union), `a where b` (a's that have b); postfix brackets bind tightest. Atoms: field
//! names (`tenant_id`, `'quoted.with.dots'`, `"double"`, `a,b` for several), `*` (every
//! field of an object), `$` (the root), `` `this` ``, `` `parent` ``, `[0]` (list index,
//! negative counts from the end), `[*]` or `[1:3]` (slices; like jsonpath_rw they treat a
//! non-list as a one-element list), `[name]` / `['name']` (bracketed fields) and `( )`.
//!
//! Paths made only of plain field names (nearly all real ones) take a fast route: a chain
//! of object lookups with the match's full path precomputed. Everything else goes through
//! a small evaluator that records each match's parent chain, so a plugin can be told the
//! full path of each match as jsonpath_rw spells it (`payload.list.[0]`).

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use crate::resolve::Resolver;

/// `node` of a simple alternative not bound to a resolver.
const UNBOUND: u32 = u32::MAX;

/// A path that failed to compile, with the 1-based character position of the problem.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PathError {
    pub message: String,
    pub position: usize,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)
    }
}

/// A compiled path: its top-level `|` alternatives, evaluated in order.
#[derive(Debug, Clone)]
pub(crate) struct FieldPath {
    alternatives: Box<[Alternative]>,
}

#[derive(Debug, Clone)]
enum Alternative {
    /// A chain of plain field names, the match's full path (`a.b.c`) and, once bound,
    /// the node of a definition's [`Resolver`] that holds its value.
    Simple {
        keys: Box<[Box<str>]>,
        path: Box<str>,
        node: u32,
    },
    General(Expr),
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Root,
    This,
    Parent,
    Fields(Box<[Box<str>]>),
    AllFields,
    Index(i64),
    Slice {
        start: Option<i64>,
        end: Option<i64>,
    },
    Child(Box<Expr>, Box<Expr>),
    Descendants(Box<Expr>, Box<Expr>),
    Union(Box<Expr>, Box<Expr>),
    Where(Box<Expr>, Box<Expr>),
}

impl FieldPath {
    /// Compiles one path string.
    pub fn compile(source: &str) -> Result<FieldPath, PathError> {
        let expr = Parser::new(source)?.parse()?;
        let mut alternatives = Vec::new();
        push_alternatives(expr, &mut alternatives);
        Ok(FieldPath {
            alternatives: alternatives.into_boxed_slice(),
        })
    }

    /// The plain path `keys[0].keys[1]...` (no parsing, so no error).
    pub fn from_keys(keys: &[&str]) -> FieldPath {
        FieldPath {
            alternatives: Box::new([Alternative::Simple {
                keys: keys.iter().map(|k| Box::from(*k)).collect(),
                path: keys.join(".").into_boxed_str(),
                node: UNBOUND,
            }]),
        }
    }

    /// Joins several compiled paths into one whose matches come in order (`(a)|(b)`).
    pub fn union(paths: Vec<FieldPath>) -> FieldPath {
        let alternatives: Vec<Alternative> = paths
            .into_iter()
            .flat_map(|p| p.alternatives.into_vec())
            .collect();
        FieldPath {
            alternatives: alternatives.into_boxed_slice(),
        }
    }

    /// Registers the plain alternatives with `resolver`, whose slots `first` and `collect`
    /// then read instead of looking keys up.
    pub fn bind(&mut self, resolver: &mut Resolver) {
        for alternative in self.alternatives.iter_mut() {
            if let Alternative::Simple { keys, node, .. } = alternative {
                *node = resolver.insert(keys);
            }
        }
    }

    /// The value of the first non-null match; `slots` come from the resolver this path is
    /// bound to (or are empty if it is not bound).
    pub fn first<'v>(&self, doc: &'v Value, slots: &[Option<&'v Value>]) -> Option<&'v Value> {
        for alternative in self.alternatives.iter() {
            match alternative {
                Alternative::Simple { keys, node, .. } => {
                    if let Some(v) = simple_value(doc, keys, *node, slots) {
                        return Some(v);
                    }
                }
                Alternative::General(expr) => {
                    let mut eval = Evaluator::new(doc);
                    let mut out = Vec::new();
                    eval.find(expr, 0, &mut out);
                    if let Some(&i) = out.iter().find(|&&i| !eval.frames[i].value.is_null()) {
                        return Some(eval.frames[i].value);
                    }
                }
            }
        }
        None
    }

    /// Whether every alternative is a plain path, so that each yields at most one match
    /// and its path is known in advance.
    pub fn is_plain(&self) -> bool {
        self.alternatives
            .iter()
            .all(|a| matches!(a, Alternative::Simple { .. }))
    }

    /// The number of `|` alternatives.
    pub fn alternative_count(&self) -> usize {
        self.alternatives.len()
    }

    /// Calls `f` with each non-null match of the plain alternatives, in order, with its
    /// precomputed path; general alternatives are skipped (see [`FieldPath::is_plain`]).
    pub fn for_each_plain<'a>(
        &'a self,
        doc: &'a Value,
        slots: &[Option<&'a Value>],
        mut f: impl FnMut(&'a str, &'a Value),
    ) {
        for alternative in self.alternatives.iter() {
            if let Alternative::Simple { keys, path, node } = alternative
                && let Some(v) = simple_value(doc, keys, *node, slots)
            {
                f(path, v);
            }
        }
    }

    /// Appends every non-null match, in order, with its full path.
    pub fn collect<'a>(
        &'a self,
        doc: &'a Value,
        slots: &[Option<&'a Value>],
        out: &mut Vec<(Cow<'a, str>, &'a Value)>,
    ) {
        for alternative in self.alternatives.iter() {
            match alternative {
                Alternative::Simple { keys, path, node } => {
                    if let Some(v) = simple_value(doc, keys, *node, slots) {
                        out.push((Cow::Borrowed(&**path), v));
                    }
                }
                Alternative::General(expr) => {
                    let mut eval = Evaluator::new(doc);
                    let mut found = Vec::new();
                    eval.find(expr, 0, &mut found);
                    for i in found {
                        let frame = eval.frames[i];
                        if !frame.value.is_null() {
                            out.push((Cow::Owned(eval.path_of(i)), frame.value));
                        }
                    }
                }
            }
        }
    }
}

/// A plain alternative's non-null value, from the resolver's slot when bound.
#[inline]
fn simple_value<'v>(
    doc: &'v Value,
    keys: &[Box<str>],
    node: u32,
    slots: &[Option<&'v Value>],
) -> Option<&'v Value> {
    match slots.get(node as usize) {
        Some(slot) => slot.filter(|v| !v.is_null()),
        None => lookup(doc, keys),
    }
}

/// Follows `keys` through nested objects; `None` if a step is missing or the end is null.
#[inline]
fn lookup<'v>(doc: &'v Value, keys: &[Box<str>]) -> Option<&'v Value> {
    let mut cur = doc;
    for key in keys {
        cur = cur.as_object()?.get(&&**key)?;
    }
    (!cur.is_null()).then_some(cur)
}

fn push_alternatives(expr: Expr, out: &mut Vec<Alternative>) {
    match expr {
        Expr::Union(left, right) => {
            push_alternatives(*left, out);
            push_alternatives(*right, out);
        }
        expr => {
            let mut keys = Vec::new();
            let alternative = if simple_keys(&expr, true, &mut keys) && !keys.is_empty() {
                let path = keys.join(".").into_boxed_str();
                Alternative::Simple {
                    keys: keys.into_iter().map(Box::from).collect(),
                    path,
                    node: UNBOUND,
                }
            } else {
                Alternative::General(expr)
            };
            out.push(alternative);
        }
    }
}

/// Collects the names of a chain of single plain fields (optionally after a leading `$`).
fn simple_keys<'e>(expr: &'e Expr, at_start: bool, keys: &mut Vec<&'e str>) -> bool {
    match expr {
        Expr::Root => at_start,
        Expr::Fields(names) if names.len() == 1 => {
            keys.push(&names[0]);
            true
        }
        Expr::Child(left, right) => {
            simple_keys(left, at_start, keys)
                && simple_keys(right, keys.is_empty() && at_start, keys)
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    DoubleDot,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Star,
    Dollar,
    Comma,
    Colon,
    Pipe,
    Amp,
    Id { name: String, quoted: bool },
    Number(i64),
    Named(String),
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Dot => f.write_str("`.`"),
            Tok::DoubleDot => f.write_str("`..`"),
            Tok::LBracket => f.write_str("`[`"),
            Tok::RBracket => f.write_str("`]`"),
            Tok::LParen => f.write_str("`(`"),
            Tok::RParen => f.write_str("`)`"),
            Tok::Star => f.write_str("`*`"),
            Tok::Dollar => f.write_str("`$`"),
            Tok::Comma => f.write_str("`,`"),
            Tok::Colon => f.write_str("`:`"),
            Tok::Pipe => f.write_str("`|`"),
            Tok::Amp => f.write_str("`&`"),
            Tok::Id { name, .. } => write!(f, "`{name}`"),
            Tok::Number(n) => write!(f, "`{n}`"),
            Tok::Named(n) => write!(f, "`` `{n}` ``"),
            Tok::End => f.write_str("the end of the path"),
        }
    }
}

fn lex(source: &str) -> Result<Vec<(Tok, usize)>, PathError> {
    let chars: Vec<char> = source.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let err = |message: String, at: usize| PathError {
        message,
        position: at + 1,
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let tok = match c {
            ' ' | '\t' | '\n' | '\r' => {
                i += 1;
                continue;
            }
            '.' if chars.get(i + 1) == Some(&'.') => {
                i += 2;
                Tok::DoubleDot
            }
            '.' | '[' | ']' | '(' | ')' | '*' | '$' | ',' | ':' | '|' | '&' => {
                i += 1;
                match c {
                    '.' => Tok::Dot,
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '*' => Tok::Star,
                    '$' => Tok::Dollar,
                    ',' => Tok::Comma,
                    ':' => Tok::Colon,
                    '|' => Tok::Pipe,
                    _ => Tok::Amp,
                }
            }
            '\'' | '"' | '`' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&x| x == c)
                    .ok_or_else(|| err(format!("unclosed {c}"), i))?;
                let text: String = chars[i + 1..i + 1 + close].iter().collect();
                i += close + 2;
                if c == '`' {
                    Tok::Named(text)
                } else {
                    Tok::Id {
                        name: text,
                        quoted: true,
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == '@' => {
                let len = chars[i..]
                    .iter()
                    .position(|&x| !(x.is_ascii_alphanumeric() || matches!(x, '_' | '@' | '-')))
                    .unwrap_or(chars.len() - i);
                let name: String = chars[i..i + len].iter().collect();
                i += len;
                Tok::Id {
                    name,
                    quoted: false,
                }
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let digits_from = if c == '-' { i + 1 } else { i };
                let len = chars[digits_from..]
                    .iter()
                    .position(|x| !x.is_ascii_digit())
                    .unwrap_or(chars.len() - digits_from);
                let text: String = chars[i..digits_from + len].iter().collect();
                i = digits_from + len;
                let n = text
                    .parse::<i64>()
                    .map_err(|_| err(format!("number `{text}` is too large"), start))?;
                Tok::Number(n)
            }
            other => return Err(err(format!("unexpected character `{other}`"), i)),
        };
        toks.push((tok, start + 1));
    }
    toks.push((Tok::End, chars.len() + 1));
    Ok(toks)
}

// ---------------------------------------------------------------------------------------
// Parser

struct Parser {
    toks: Vec<(Tok, usize)>,
    at: usize,
}

/// Binary operators and their binding strength (higher binds tighter), as in jsonpath_rw.
#[derive(Clone, Copy)]
enum BinOp {
    Descendants,
    Child,
    Union,
    Where,
}

impl BinOp {
    fn precedence(self) -> u8 {
        match self {
            BinOp::Descendants => 1,
            BinOp::Child => 2,
            BinOp::Union => 3,
            BinOp::Where => 5,
        }
    }
}

impl Parser {
    fn new(source: &str) -> Result<Parser, PathError> {
        Ok(Parser {
            toks: lex(source)?,
            at: 0,
        })
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.at].0
    }

    fn position(&self) -> usize {
        self.toks[self.at].1
    }

    fn next(&mut self) -> Tok {
        let tok = self.toks[self.at].0.clone();
        if self.at + 1 < self.toks.len() {
            self.at += 1;
        }
        tok
    }

    fn error<T>(&self, message: String) -> Result<T, PathError> {
        Err(PathError {
            message,
            position: self.position(),
        })
    }

    fn parse(mut self) -> Result<Expr, PathError> {
        if *self.peek() == Tok::End {
            return self.error("empty path".to_owned());
        }
        let expr = self.expr(0)?;
        match self.peek() {
            Tok::End => Ok(expr),
            tok => self.error(format!("unexpected {tok}")),
        }
    }

    fn binop(&self) -> Option<BinOp> {
        match self.peek() {
            Tok::DoubleDot => Some(BinOp::Descendants),
            Tok::Dot => Some(BinOp::Child),
            Tok::Pipe => Some(BinOp::Union),
            Tok::Id {
                name,
                quoted: false,
            } if name == "where" => Some(BinOp::Where),
            _ => None,
        }
    }

    fn expr(&mut self, min_precedence: u8) -> Result<Expr, PathError> {
        let mut left = self.postfix()?;
        loop {
            if *self.peek() == Tok::Amp {
                return self.error("`&` (intersection) is not supported".to_owned());
            }
            let Some(op) = self.binop() else { break };
            if op.precedence() < min_precedence {
                break;
            }
            self.next();
            let right = Box::new(self.expr(op.precedence() + 1)?);
            let l = Box::new(left);
            left = match op {
                BinOp::Descendants => Expr::Descendants(l, right),
                BinOp::Child => Expr::Child(l, right),
                BinOp::Union => Expr::Union(l, right),
                BinOp::Where => Expr::Where(l, right),
            };
        }
        Ok(left)
    }

    fn postfix(&mut self) -> Result<Expr, PathError> {
        let mut expr = self.atom()?;
        while *self.peek() == Tok::LBracket {
            self.next();
            let inner = self.bracket()?;
            expr = Expr::Child(Box::new(expr), Box::new(inner));
        }
        Ok(expr)
    }

    fn atom(&mut self) -> Result<Expr, PathError> {
        match self.peek().clone() {
            Tok::Id { .. } => self.fields(),
            Tok::Star => {
                self.next();
                Ok(Expr::AllFields)
            }
            Tok::Dollar => {
                self.next();
                Ok(Expr::Root)
            }
            Tok::Named(name) => match name.as_str() {
                "this" => {
                    self.next();
                    Ok(Expr::This)
                }
                "parent" => {
                    self.next();
                    Ok(Expr::Parent)
                }
                _ => self.error(format!("unknown operator `{name}`")),
            },
            Tok::LParen => {
                self.next();
                let inner = self.expr(0)?;
                self.expect(&Tok::RParen)?;
                Ok(inner)
            }
            Tok::LBracket => {
                self.next();
                self.bracket()
            }
            tok => self.error(format!(
                "expected a field name, `*`, `$`, `[` or `(`, found {tok}"
            )),
        }
    }

    /// One or more comma-separated field names.
    fn fields(&mut self) -> Result<Expr, PathError> {
        let mut names = Vec::new();
        loop {
            match self.peek().clone() {
                Tok::Id { name, .. } => {
                    self.next();
                    names.push(name.into_boxed_str());
                }
                tok => return self.error(format!("expected a field name, found {tok}")),
            }
            if *self.peek() != Tok::Comma {
                break;
            }
            self.next();
        }
        Ok(Expr::Fields(names.into_boxed_slice()))
    }

    /// The inside of `[...]`, after the `[`; consumes the `]`.
    fn bracket(&mut self) -> Result<Expr, PathError> {
        let expr = match self.peek().clone() {
            Tok::Star => {
                self.next();
                Expr::Slice {
                    start: None,
                    end: None,
                }
            }
            Tok::Number(n) => {
                self.next();
                if *self.peek() == Tok::Colon {
                    self.next();
                    let end = self.maybe_number();
                    Expr::Slice {
                        start: Some(n),
                        end,
                    }
                } else {
                    Expr::Index(n)
                }
            }
            Tok::Colon => {
                self.next();
                let end = self.maybe_number();
                Expr::Slice { start: None, end }
            }
            Tok::Id { .. } => self.fields()?,
            tok => {
                return self.error(format!(
                    "expected an index, `*`, a slice or a field name in brackets, found {tok}"
                ));
            }
        };
        self.expect(&Tok::RBracket)?;
        Ok(expr)
    }

    fn maybe_number(&mut self) -> Option<i64> {
        match *self.peek() {
            Tok::Number(n) => {
                self.next();
                Some(n)
            }
            _ => None,
        }
    }

    fn expect(&mut self, want: &Tok) -> Result<(), PathError> {
        if self.peek() == want {
            self.next();
            Ok(())
        } else {
            let found = self.peek().clone();
            self.error(format!("expected {want}, found {found}"))
        }
    }
}

// ---------------------------------------------------------------------------------------
// General evaluator

const NO_PARENT: usize = usize::MAX;

/// One position in the document: its value, its parent position and the step from there.
#[derive(Clone, Copy)]
struct Frame<'v> {
    value: &'v Value,
    parent: usize,
    step: Step<'v>,
}

#[derive(Clone, Copy)]
enum Step<'v> {
    Root,
    Key(&'v str),
    Index(i64),
}

struct Evaluator<'v> {
    frames: Vec<Frame<'v>>,
}

impl<'v> Evaluator<'v> {
    fn new(doc: &'v Value) -> Evaluator<'v> {
        Evaluator {
            frames: vec![Frame {
                value: doc,
                parent: NO_PARENT,
                step: Step::Root,
            }],
        }
    }

    fn push(&mut self, value: &'v Value, parent: usize, step: Step<'v>) -> usize {
        self.frames.push(Frame {
            value,
            parent,
            step,
        });
        self.frames.len() - 1
    }

    /// Appends to `out` the frames `expr` finds from frame `at`.
    fn find(&mut self, expr: &Expr, at: usize, out: &mut Vec<usize>) {
        let value = self.frames[at].value;
        match expr {
            Expr::Root => {
                let mut top = at;
                while self.frames[top].parent != NO_PARENT {
                    top = self.frames[top].parent;
                }
                out.push(top);
            }
            Expr::This => out.push(at),
            Expr::Parent => {
                let parent = self.frames[at].parent;
                if parent != NO_PARENT {
                    out.push(parent);
                }
            }
            Expr::Fields(names) => {
                if let Some(object) = value.as_object() {
                    for name in names.iter() {
                        if let Some((key, v)) = object.get_key_value(&&**name) {
                            let i = self.push(v, at, Step::Key(key));
                            out.push(i);
                        }
                    }
                }
            }
            Expr::AllFields => {
                if let Some(object) = value.as_object() {
                    for (key, v) in object.iter() {
                        let i = self.push(v, at, Step::Key(key));
                        out.push(i);
                    }
                }
            }
            Expr::Index(index) => {
                if let Some(array) = value.as_array() {
                    let len = array.len() as i64;
                    let real = if *index < 0 { len + index } else { *index };
                    if (0..len).contains(&real) {
                        let i = self.push(&array[real as usize], at, Step::Index(*index));
                        out.push(i);
                    }
                }
            }
            Expr::Slice { start, end } => {
                if let Some(array) = value.as_array() {
                    let len = array.len() as i64;
                    let from = slice_bound(*start, len, 0);
                    let to = slice_bound(*end, len, len);
                    for k in from..to.max(from) {
                        let i = self.push(&array[k as usize], at, Step::Index(k));
                        out.push(i);
                    }
                } else if !value.is_null() {
                    // jsonpath_rw wraps a non-list in a one-element list (same path).
                    let from = slice_bound(*start, 1, 0);
                    let to = slice_bound(*end, 1, 1);
                    if from < to {
                        let frame = self.frames[at];
                        let wrapper = self.push(frame.value, frame.parent, frame.step);
                        let i = self.push(value, wrapper, Step::Index(0));
                        out.push(i);
                    }
                }
            }
            Expr::Child(left, right) => {
                let mut lefts = Vec::new();
                self.find(left, at, &mut lefts);
                for l in lefts {
                    self.find(right, l, out);
                }
            }
            Expr::Descendants(left, right) => {
                let mut lefts = Vec::new();
                self.find(left, at, &mut lefts);
                for l in lefts {
                    self.descend(right, l, out);
                }
            }
            Expr::Union(left, right) => {
                self.find(left, at, out);
                self.find(right, at, out);
            }
            Expr::Where(left, right) => {
                let mut lefts = Vec::new();
                self.find(left, at, &mut lefts);
                let mut probe = Vec::new();
                for l in lefts {
                    probe.clear();
                    self.find(right, l, &mut probe);
                    if !probe.is_empty() {
                        out.push(l);
                    }
                }
            }
        }
    }

    /// `right` at `at`, then at every descendant of `at`, depth first in document order.
    fn descend(&mut self, right: &Expr, at: usize, out: &mut Vec<usize>) {
        self.find(right, at, out);
        let value = self.frames[at].value;
        if let Some(array) = value.as_array() {
            for (k, v) in array.iter().enumerate() {
                let i = self.push(v, at, Step::Index(k as i64));
                self.descend(right, i, out);
            }
        } else if let Some(object) = value.as_object() {
            for (key, v) in object.iter() {
                let i = self.push(v, at, Step::Key(key));
                self.descend(right, i, out);
            }
        }
    }

    /// The full path of a frame as jsonpath_rw prints it: steps joined by `.`, indexes as
    /// `[i]`, the root left out.
    fn path_of(&self, at: usize) -> String {
        let mut steps = Vec::new();
        let mut cur = at;
        while cur != NO_PARENT {
            let frame = self.frames[cur];
            if frame.parent != NO_PARENT {
                steps.push(frame.step);
            }
            cur = frame.parent;
        }
        let mut path = String::new();
        for (n, step) in steps.iter().rev().enumerate() {
            if n > 0 {
                path.push('.');
            }
            match step {
                Step::Key(k) => path.push_str(k),
                Step::Index(i) => {
                    let _ = write!(path, "[{i}]");
                }
                Step::Root => {}
            }
        }
        path
    }
}

/// Python slice bound normalisation for a sequence of `len` items.
fn slice_bound(bound: Option<i64>, len: i64, default: i64) -> i64 {
    match bound {
        None => default,
        Some(b) if b < 0 => (len + b).max(0),
        Some(b) => b.min(len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        sonic_rs::from_str(
            r#"{
                "publisher_id": "compute.host-1",
                "payload": {
                    "tenant_id": "t1",
                    "nothing": null,
                    "image_meta": {"org.openstack__1__architecture": "x64", "min_ram": "512"},
                    "list": [10, 20, 30],
                    "objs": [{"id": "a", "ok": true}, {"id": "b"}, {"id": null}],
                    "nested": {"id": "deep", "inner": {"id": "deeper"}},
                    "foo-bar": 1,
                    "where": "kw"
                },
                "id": "top"
            }"#,
        )
        .unwrap()
    }

    /// All matches of `path` as (path, value JSON) pairs.
    /// Checks that a path bound to a resolver finds what the unbound one finds.
    fn all(path: &str) -> Vec<(String, String)> {
        let d = doc();
        let unbound = FieldPath::compile(path).unwrap();
        let mut out = Vec::new();
        unbound.collect(&d, &[], &mut out);
        let found: Vec<(String, String)> = out
            .into_iter()
            .map(|(p, v)| (p.into_owned(), sonic_rs::to_string(v).unwrap()))
            .collect();
        let mut bound = unbound.clone();
        let mut resolver = Resolver::new();
        bound.bind(&mut resolver);
        resolver.finish();
        let mut slots = Vec::new();
        resolver.resolve(&d, &mut slots);
        let mut out = Vec::new();
        bound.collect(&d, &slots, &mut out);
        let found_bound: Vec<(String, String)> = out
            .into_iter()
            .map(|(p, v)| (p.into_owned(), sonic_rs::to_string(v).unwrap()))
            .collect();
        assert_eq!(found, found_bound, "{path}");
        let first = bound
            .first(&d, &slots)
            .map(|v| sonic_rs::to_string(v).unwrap());
        assert_eq!(first, found.first().map(|(_, v)| v.clone()), "{path}");
        found
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect()
    }

    fn err(path: &str) -> String {
        FieldPath::compile(path).unwrap_err().to_string()
    }

    #[test]
    fn plain_dotted_paths() {
        assert_eq!(
            all("payload.tenant_id"),
            pairs(&[("payload.tenant_id", "\"t1\"")])
        );
        assert_eq!(
            all("publisher_id"),
            pairs(&[("publisher_id", "\"compute.host-1\"")])
        );
        assert!(all("payload.missing").is_empty());
        assert!(all("payload.tenant_id.deeper").is_empty());
        assert!(all("payload.list.x").is_empty());
    }

    #[test]
    fn nulls_are_skipped() {
        assert!(all("payload.nothing").is_empty());
        let d = doc();
        let p = FieldPath::compile("(payload.nothing)|(payload.tenant_id)").unwrap();
        assert_eq!(p.first(&d, &[]).and_then(|v| v.as_str()), Some("t1"));
    }

    #[test]
    fn quoted_and_bracketed_keys() {
        let arch = pairs(&[(
            "payload.image_meta.org.openstack__1__architecture",
            "\"x64\"",
        )]);
        assert_eq!(
            all("payload.image_meta.'org.openstack__1__architecture'"),
            arch
        );
        assert_eq!(
            all("payload.image_meta.\"org.openstack__1__architecture\""),
            arch
        );
        assert_eq!(
            all("payload.image_meta['org.openstack__1__architecture']"),
            arch
        );
        assert_eq!(
            all("payload['tenant_id']"),
            pairs(&[("payload.tenant_id", "\"t1\"")])
        );
        assert_eq!(
            all("payload[tenant_id]"),
            pairs(&[("payload.tenant_id", "\"t1\"")])
        );
        assert_eq!(
            all("$.payload.tenant_id"),
            pairs(&[("payload.tenant_id", "\"t1\"")])
        );
        assert_eq!(all("payload.foo-bar"), pairs(&[("payload.foo-bar", "1")]));
        assert_eq!(all("payload.where"), pairs(&[("payload.where", "\"kw\"")]));
    }

    #[test]
    fn several_fields_at_once() {
        assert_eq!(
            all("payload.tenant_id,where"),
            pairs(&[("payload.tenant_id", "\"t1\""), ("payload.where", "\"kw\"")])
        );
        assert_eq!(
            all("payload.image_meta[min_ram,'org.openstack__1__architecture']"),
            pairs(&[
                ("payload.image_meta.min_ram", "\"512\""),
                (
                    "payload.image_meta.org.openstack__1__architecture",
                    "\"x64\""
                )
            ])
        );
    }

    #[test]
    fn wildcards() {
        assert_eq!(
            all("payload.image_meta.*"),
            pairs(&[
                (
                    "payload.image_meta.org.openstack__1__architecture",
                    "\"x64\""
                ),
                ("payload.image_meta.min_ram", "\"512\"")
            ])
        );
        // `*` is for objects only; lists need `[*]`.
        assert!(all("payload.list.*").is_empty());
    }

    #[test]
    fn indexes_and_slices() {
        assert_eq!(all("payload.list[0]"), pairs(&[("payload.list.[0]", "10")]));
        assert_eq!(all("payload.list[2]"), pairs(&[("payload.list.[2]", "30")]));
        assert_eq!(
            all("payload.list[-1]"),
            pairs(&[("payload.list.[-1]", "30")])
        );
        assert!(all("payload.list[3]").is_empty());
        assert_eq!(
            all("payload.list[*]"),
            pairs(&[
                ("payload.list.[0]", "10"),
                ("payload.list.[1]", "20"),
                ("payload.list.[2]", "30")
            ])
        );
        assert_eq!(
            all("payload.list[1:]"),
            pairs(&[("payload.list.[1]", "20"), ("payload.list.[2]", "30")])
        );
        assert_eq!(
            all("payload.list[:1]"),
            pairs(&[("payload.list.[0]", "10")])
        );
        assert_eq!(
            all("payload.list[-1:]"),
            pairs(&[("payload.list.[2]", "30")])
        );
        assert_eq!(
            all("payload.objs[*].id"),
            pairs(&[
                ("payload.objs.[0].id", "\"a\""),
                ("payload.objs.[1].id", "\"b\"")
            ])
        );
        // A slice treats a non-list as a one-element list.
        assert_eq!(
            all("payload.tenant_id[*]"),
            pairs(&[("payload.tenant_id.[0]", "\"t1\"")])
        );
        assert!(all("payload.tenant_id[0]").is_empty());
    }

    #[test]
    fn recursive_descent() {
        assert_eq!(
            all("payload..id"),
            pairs(&[
                ("payload.objs.[0].id", "\"a\""),
                ("payload.objs.[1].id", "\"b\""),
                ("payload.nested.id", "\"deep\""),
                ("payload.nested.inner.id", "\"deeper\"")
            ])
        );
        assert_eq!(
            all("$..id"),
            pairs(&[
                ("id", "\"top\""),
                ("payload.objs.[0].id", "\"a\""),
                ("payload.objs.[1].id", "\"b\""),
                ("payload.nested.id", "\"deep\""),
                ("payload.nested.inner.id", "\"deeper\"")
            ])
        );
    }

    #[test]
    fn unions_keep_order() {
        assert_eq!(
            all("(payload.missing)|(id)|(payload.tenant_id)"),
            pairs(&[("id", "\"top\""), ("payload.tenant_id", "\"t1\"")])
        );
        // `|` binds tighter than `.`, as in jsonpath_rw.
        assert_eq!(
            all("payload.nested|image_meta.id"),
            pairs(&[("payload.nested.id", "\"deep\"")])
        );
    }

    #[test]
    fn where_this_and_parent() {
        assert_eq!(
            all("payload.objs[*] where ok"),
            pairs(&[("payload.objs.[0]", "{\"id\":\"a\",\"ok\":true}")])
        );
        assert_eq!(
            all("payload.tenant_id.`this`"),
            pairs(&[("payload.tenant_id", "\"t1\"")])
        );
        assert_eq!(
            all("payload.nested.inner.`parent`.id"),
            pairs(&[("payload.nested.id", "\"deep\"")])
        );
    }

    #[test]
    fn simple_paths_take_the_fast_route() {
        for path in ["payload.tenant_id", "$.a.b", "a['x.y'].c", "(a.b)|(c)"] {
            let p = FieldPath::compile(path).unwrap();
            assert!(
                p.alternatives
                    .iter()
                    .all(|a| matches!(a, Alternative::Simple { .. })),
                "{path}"
            );
        }
        for path in ["a.*", "a[0]", "a..b", "a.$.b", "a,b"] {
            let p = FieldPath::compile(path).unwrap();
            assert!(
                p.alternatives
                    .iter()
                    .all(|a| matches!(a, Alternative::General(_))),
                "{path}"
            );
        }
    }

    #[test]
    fn compile_errors_name_the_position() {
        assert_eq!(err("payload.bogus("), "unexpected `(` at position 14");
        assert_eq!(
            err("payload.(bogus"),
            "expected `)`, found the end of the path at position 15"
        );
        assert_eq!(
            err("payload."),
            "expected a field name, `*`, `$`, `[` or `(`, found the end of the path at position 9"
        );
        assert_eq!(err(""), "empty path at position 1");
        assert_eq!(
            err("payload..."),
            "expected a field name, `*`, `$`, `[` or `(`, found `.` at position 10"
        );
        assert_eq!(err("payload.'abc"), "unclosed ' at position 9");
        assert_eq!(
            err("payload.x#y"),
            "unexpected character `#` at position 10"
        );
        assert_eq!(
            err("payload[0"),
            "expected `]`, found the end of the path at position 10"
        );
        assert_eq!(err("payload.a b"), "unexpected `b` at position 11");
        assert_eq!(
            err("a & b"),
            "`&` (intersection) is not supported at position 3"
        );
        assert_eq!(err("a.`up`"), "unknown operator `up` at position 3");
        assert_eq!(
            err("payload.0"),
            "expected a field name, `*`, `$`, `[` or `(`, found `0` at position 9"
        );
        assert_eq!(
            err("(a.b"),
            "expected `)`, found the end of the path at position 5"
        );
    }
}
