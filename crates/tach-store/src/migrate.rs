//! Versioned, embedded migrations: one folder per backend (`migrations/{sqlite,postgres,mysql}`),
//! the same versions and names in each, recorded in the `schema_version` table.
//!
//! A migration runs inside one transaction on SQLite and PostgreSQL (DDL is transactional there);
//! MySQL commits each DDL statement implicitly, so a failed MySQL migration may leave part of
//! itself behind. Concurrent `migrate` calls serialise on a lock (SQLite's write lock, a
//! PostgreSQL advisory lock, a MySQL named lock).

use crate::dialect::Backend;

/// One schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its version; versions count up from 1.
    pub version: i64,
    /// Short name, e.g. `events`.
    pub name: &'static str,
    /// The SQL: statements separated by `;` at line ends, `--` comment lines allowed.
    pub sql: &'static str,
}

const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        sql: include_str!("../migrations/sqlite/0001_events.sql"),
    },
    Migration {
        version: 2,
        name: "streams",
        sql: include_str!("../migrations/sqlite/0002_streams.sql"),
    },
    Migration {
        version: 3,
        name: "partial_trait_indexes",
        sql: include_str!("../migrations/sqlite/0003_partial_trait_indexes.sql"),
    },
    Migration {
        version: 4,
        name: "trait_documents",
        sql: include_str!("../migrations/sqlite/0004_trait_documents.sql"),
    },
    Migration {
        version: 5,
        name: "dead_letter_digest",
        sql: include_str!("../migrations/sqlite/0005_dead_letter_digest.sql"),
    },
    Migration {
        version: 6,
        name: "unchecked_stream_links",
        sql: include_str!("../migrations/sqlite/0006_unchecked_stream_links.sql"),
    },
    Migration {
        version: 7,
        name: "recent_trait_index",
        sql: include_str!("../migrations/sqlite/0007_recent_trait_index.sql"),
    },
];

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        sql: include_str!("../migrations/postgres/0001_events.sql"),
    },
    Migration {
        version: 2,
        name: "streams",
        sql: include_str!("../migrations/postgres/0002_streams.sql"),
    },
    Migration {
        version: 3,
        name: "partial_trait_indexes",
        sql: include_str!("../migrations/postgres/0003_partial_trait_indexes.sql"),
    },
    Migration {
        version: 4,
        name: "trait_documents",
        sql: include_str!("../migrations/postgres/0004_trait_documents.sql"),
    },
    Migration {
        version: 5,
        name: "dead_letter_digest",
        sql: include_str!("../migrations/postgres/0005_dead_letter_digest.sql"),
    },
    Migration {
        version: 6,
        name: "unchecked_stream_links",
        sql: include_str!("../migrations/postgres/0006_unchecked_stream_links.sql"),
    },
    Migration {
        version: 7,
        name: "recent_trait_index",
        sql: include_str!("../migrations/postgres/0007_recent_trait_index.sql"),
    },
];

const MYSQL: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        sql: include_str!("../migrations/mysql/0001_events.sql"),
    },
    Migration {
        version: 2,
        name: "streams",
        sql: include_str!("../migrations/mysql/0002_streams.sql"),
    },
    Migration {
        version: 3,
        name: "partial_trait_indexes",
        sql: include_str!("../migrations/mysql/0003_partial_trait_indexes.sql"),
    },
    Migration {
        version: 4,
        name: "trait_documents",
        sql: include_str!("../migrations/mysql/0004_trait_documents.sql"),
    },
    Migration {
        version: 5,
        name: "dead_letter_digest",
        sql: include_str!("../migrations/mysql/0005_dead_letter_digest.sql"),
    },
    Migration {
        version: 6,
        name: "unchecked_stream_links",
        sql: include_str!("../migrations/mysql/0006_unchecked_stream_links.sql"),
    },
    Migration {
        version: 7,
        name: "recent_trait_index",
        sql: include_str!("../migrations/mysql/0007_recent_trait_index.sql"),
    },
];

/// The schema version this build of tach needs.
pub const LATEST_VERSION: i64 = 7;

/// What [`crate::Store::migrate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationReport {
    /// Schema version before (0: no schema).
    pub from: i64,
    /// Schema version after.
    pub to: i64,
}

/// The migrations of `backend`, in version order.
pub fn migrations(backend: Backend) -> &'static [Migration] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
        Backend::MySql => MYSQL,
    }
}

/// The statements of a migration file: `--` comment lines dropped, split at `;`.
pub(crate) fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("--") {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let stmt = current.trim().trim_end_matches(';').trim().to_owned();
            if !stmt.is_empty() {
                out.push(stmt);
            }
            current.clear();
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

/// DDL of the version table (the same on every backend).
pub(crate) const CREATE_SCHEMA_VERSION: &str = "CREATE TABLE IF NOT EXISTS schema_version (\
     version BIGINT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_has_the_same_versions_up_to_latest() {
        for backend in [Backend::Sqlite, Backend::Postgres, Backend::MySql] {
            let list = migrations(backend);
            let versions: Vec<(i64, &str)> = list.iter().map(|m| (m.version, m.name)).collect();
            assert_eq!(
                versions,
                [
                    (1, "events"),
                    (2, "streams"),
                    (3, "partial_trait_indexes"),
                    (4, "trait_documents"),
                    (5, "dead_letter_digest"),
                    (6, "unchecked_stream_links"),
                    (7, "recent_trait_index")
                ],
                "{backend}"
            );
            assert_eq!(list.last().map(|m| m.version), Some(LATEST_VERSION));
        }
    }

    #[test]
    fn statements_split_at_line_end_semicolons_and_drop_comments() {
        let s = statements("-- c\nCREATE TABLE a (x INT);\nCREATE INDEX i\n  ON a (x);\n");
        assert_eq!(s, ["CREATE TABLE a (x INT)", "CREATE INDEX i\n  ON a (x)"]);
        assert_eq!(statements(MYSQL[1].sql).len(), 3);
        // streams + 5 indexes, stream_events + 1 index, dist_traits + 3 indexes.
        assert_eq!(statements(SQLITE[1].sql).len(), 1 + 5 + 1 + 1 + 1 + 3);
        // Three columns, their values, the unique index.
        for list in [SQLITE, POSTGRES, MYSQL] {
            assert_eq!(statements(list[4].sql).len(), 3 + 1 + 1);
        }
        // Two ALTERs on the servers; comments only on SQLite, which keeps its foreign keys.
        assert_eq!(statements(POSTGRES[5].sql).len(), 2);
        assert_eq!(statements(MYSQL[5].sql).len(), 2);
        assert!(statements(SQLITE[5].sql).is_empty());
    }
}
