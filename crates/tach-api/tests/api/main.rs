//! Integration tests of the REST API: the router driven in-process on SQLite and PostgreSQL.

mod auth;
mod common;
mod config;
mod events;
mod health;
mod openapi;
mod serve;
mod streams;
