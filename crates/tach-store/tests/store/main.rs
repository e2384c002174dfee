//! Store tests, each run against SQLite, PostgreSQL and MySQL/MariaDB.
//!
//! PostgreSQL and MySQL URLs come from `TACH_TEST_POSTGRES_URL` and `TACH_TEST_MYSQL_URL`
//! (defaulting to the local services); every test creates its own database and drops it after,
//! so tests run in parallel. A server that is down fails the test.

mod common;
mod dead_letters;
mod documents;
mod events;
mod query;
mod schema;
mod statistics;
mod streams;
mod worker;
