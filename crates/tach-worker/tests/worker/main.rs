//! Integration tests of the trigger and pipeline managers on every backend.

mod common;
mod concurrency;
mod faults;
mod managers;
mod replay;
