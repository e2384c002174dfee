//! Integration tests of the REST API: the router driven in-process on SQLite, PostgreSQL and
//! MySQL/MariaDB.

mod auth;
mod common;
mod config;
mod events;
mod health;
mod openapi;
mod serve;
mod streams;
