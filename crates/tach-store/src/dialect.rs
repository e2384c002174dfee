//! What differs between SQLite, PostgreSQL and MySQL/MariaDB, in one place.
//!
//! Queries are written with `?` parameter markers through [`crate::sql::SqlBuf`], which asks the
//! dialect how to spell each one; everything else backend-specific (insert-ignore, `RETURNING`,
//! locking reads, how a write transaction begins, how text is compared through an index) is a
//! method here.

use std::fmt;

use crate::error::{Error, Result};

/// The database product behind a [`crate::Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite (a file, or `sqlite::memory:`).
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
            Backend::MySql => "MySQL",
        })
    }
}

/// A parsed database URL: the backend and the URL sqlx understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DbUrl {
    pub backend: Backend,
    pub url: String,
    pub in_memory: bool,
}

/// Parses `url`, accepting SQLAlchemy's `dialect+driver://` forms by dropping the driver.
///
/// A SQLite file is opened with `mode=rwc` (created when missing) unless the URL sets a mode.
pub(crate) fn parse_url(url: &str) -> Result<DbUrl> {
    let unsupported = || Error::UnsupportedUrl { url: redact(url) };
    let (scheme, rest) = url.split_once(':').ok_or_else(unsupported)?;
    let base = scheme
        .split_once('+')
        .map_or(scheme, |(base, _driver)| base);
    let backend = match base.to_ascii_lowercase().as_str() {
        "sqlite" => Backend::Sqlite,
        "postgres" | "postgresql" => Backend::Postgres,
        "mysql" | "mariadb" => Backend::MySql,
        _ => return Err(unsupported()),
    };
    let scheme = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
        Backend::MySql => "mysql",
    };
    let mut url = format!("{scheme}:{rest}");
    let mut in_memory = false;
    if backend == Backend::Sqlite {
        in_memory = rest == ":memory:" || rest.contains("mode=memory");
        if !in_memory && !rest.contains("mode=") {
            url.push(if rest.contains('?') { '&' } else { '?' });
            url.push_str("mode=rwc");
        }
    }
    Ok(DbUrl {
        backend,
        url,
        in_memory,
    })
}

/// `url` with the password of its authority, if any, replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    format!("{scheme}://{user}:***{}", &rest[at..])
                }
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// The backend-specific spellings the store needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    backend: Backend,
}

impl Dialect {
    /// The dialect of `backend`.
    pub fn new(backend: Backend) -> Dialect {
        Dialect { backend }
    }

    /// The backend this dialect speaks for.
    pub fn backend(self) -> Backend {
        self.backend
    }

    /// Appends the parameter marker of the `n`th (1-based) parameter: `$n` on PostgreSQL, else `?`.
    pub fn push_param_marker(self, sql: &mut String, n: usize) {
        match self.backend {
            Backend::Postgres => {
                use std::fmt::Write;
                // Writing to a String cannot fail.
                let _ = write!(sql, "${n}");
            }
            Backend::Sqlite | Backend::MySql => sql.push('?'),
        }
    }

    /// Most bind parameters one statement may carry.
    pub fn max_params(self) -> usize {
        match self.backend {
            // SQLITE_MAX_VARIABLE_NUMBER is 32766 since SQLite 3.32.
            Backend::Sqlite => 32_766,
            // Both protocols count parameters in a u16.
            Backend::Postgres | Backend::MySql => 65_535,
        }
    }

    /// The start of an INSERT that skips rows violating a unique key:
    /// `INSERT IGNORE INTO` on MySQL, `INSERT INTO` elsewhere (see [`Dialect::insert_ignore_end`]).
    pub fn insert_ignore_start(self) -> &'static str {
        match self.backend {
            Backend::MySql => "INSERT IGNORE INTO ",
            Backend::Sqlite | Backend::Postgres => "INSERT INTO ",
        }
    }

    /// The end of an insert-ignore on the unique `target` columns: `ON CONFLICT (target) DO
    /// NOTHING` on SQLite and PostgreSQL (where it also does not abort the transaction), nothing
    /// on MySQL.
    pub fn insert_ignore_end(self, target: &str) -> String {
        match self.backend {
            Backend::MySql => String::new(),
            Backend::Sqlite | Backend::Postgres => format!(" ON CONFLICT ({target}) DO NOTHING"),
        }
    }

    /// True when INSERT ... RETURNING works (SQLite, PostgreSQL); MySQL uses the last insert id.
    pub fn has_returning(self) -> bool {
        !matches!(self.backend, Backend::MySql)
    }

    /// Suffix of a locking read: ` FOR UPDATE` on PostgreSQL and MySQL; nothing on SQLite, where
    /// write transactions begin with `BEGIN IMMEDIATE` and so already hold the write lock.
    pub fn for_update(self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres | Backend::MySql => " FOR UPDATE",
        }
    }

    /// Suffix of a locking read that skips rows other transactions hold: ` FOR UPDATE SKIP
    /// LOCKED` on PostgreSQL and MySQL 8 / MariaDB 10.6+; nothing on SQLite (see
    /// [`Dialect::for_update`]).
    pub fn for_update_skip_locked(self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres | Backend::MySql => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// The statement that begins a write transaction, when it is not plain `BEGIN`.
    ///
    /// SQLite takes the write lock up front so that a reader never has to upgrade (which fails
    /// with SQLITE_BUSY instead of waiting).
    pub fn begin_write(self) -> Option<&'static str> {
        match self.backend {
            Backend::Sqlite => Some("BEGIN IMMEDIATE"),
            Backend::Postgres | Backend::MySql => None,
        }
    }

    /// Equality of a text column with a parameter, written so that the (prefix) index is used.
    ///
    /// PostgreSQL cannot index arbitrarily long text, so its indexes cover `left(col, 191)`;
    /// MySQL's prefix index and SQLite's full index are used by a plain `=`. Binds the value
    /// twice on PostgreSQL, once elsewhere: see [`Dialect::text_eq_binds`].
    pub fn text_eq(self, col: &str, first_param: usize) -> String {
        match self.backend {
            Backend::Postgres => format!(
                "(left({col}, 191) = left(${first_param}, 191) AND {col} = ${})",
                first_param + 1
            ),
            Backend::Sqlite | Backend::MySql => format!("{col} = ?"),
        }
    }

    /// How many times [`Dialect::text_eq`] binds its value.
    pub fn text_eq_binds(self) -> usize {
        match self.backend {
            Backend::Postgres => 2,
            Backend::Sqlite | Backend::MySql => 1,
        }
    }

    /// A glob match (`*`, `?`) of a text column against a parameter: `GLOB` on SQLite; `LIKE`
    /// with `!` as escape on the others, whose pattern comes from [`glob_to_like`].
    pub fn glob_match(self, col: &str, param: usize) -> String {
        let mut sql = String::with_capacity(col.len() + 24);
        sql.push_str(col);
        match self.backend {
            Backend::Sqlite => sql.push_str(" GLOB "),
            Backend::Postgres | Backend::MySql => sql.push_str(" LIKE "),
        }
        self.push_param_marker(&mut sql, param);
        if self.backend != Backend::Sqlite {
            sql.push_str(" ESCAPE '!'");
        }
        sql
    }

    /// The pattern to bind for [`Dialect::glob_match`].
    pub fn glob_pattern(self, glob: &str) -> String {
        match self.backend {
            Backend::Sqlite => glob.to_owned(),
            Backend::Postgres | Backend::MySql => glob_to_like(glob),
        }
    }
}

/// True when `s` contains a glob wildcard (`*` or `?`).
pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// Translates a shell glob (`*`, `?`) into a LIKE pattern escaped with `!`.
pub fn glob_to_like(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 4);
    for c in glob.chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' | '_' | '!' => {
                out.push('!');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_every_backend_and_sqlalchemy_forms_parse() {
        let u = parse_url("sqlite://winchester.db").unwrap();
        assert_eq!(
            (u.backend, u.url.as_str()),
            (Backend::Sqlite, "sqlite://winchester.db?mode=rwc")
        );
        let u = parse_url("sqlite::memory:").unwrap();
        assert!(u.in_memory);
        assert_eq!(u.url, "sqlite::memory:");
        let u = parse_url("sqlite://x.db?mode=ro").unwrap();
        assert_eq!(u.url, "sqlite://x.db?mode=ro");
        let u = parse_url("mysql+pymysql://w:pw@db/winchester?charset=utf8mb4").unwrap();
        assert_eq!(
            (u.backend, u.url.as_str()),
            (Backend::MySql, "mysql://w:pw@db/winchester?charset=utf8mb4")
        );
        let u = parse_url("postgresql+psycopg2://u@h:5432/w").unwrap();
        assert_eq!(
            (u.backend, u.url.as_str()),
            (Backend::Postgres, "postgres://u@h:5432/w")
        );
        let u = parse_url("postgres://u@h/w").unwrap();
        assert_eq!(u.backend, Backend::Postgres);
    }

    #[test]
    fn unsupported_urls_are_rejected_without_their_password() {
        let err = parse_url("oracle://scott:tiger@h/db").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"oracle://scott:***@h/db\""), "{msg}");
        assert!(!msg.contains("tiger"));
        assert!(parse_url("no-scheme").is_err());
    }

    #[test]
    fn globs_become_escaped_like_patterns() {
        assert_eq!(glob_to_like("compute.*.end"), "compute.%.end");
        assert_eq!(glob_to_like("a_b%c!?"), "a!_b!%c!!_");
        assert!(is_glob("a*") && is_glob("a?") && !is_glob("compute.instance"));
    }

    #[test]
    fn param_markers_follow_the_backend() {
        let mut s = String::new();
        Dialect::new(Backend::Postgres).push_param_marker(&mut s, 3);
        Dialect::new(Backend::MySql).push_param_marker(&mut s, 3);
        assert_eq!(s, "$3?");
    }
}
