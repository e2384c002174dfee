//! tach's engine: trigger and pipeline definitions and the decisions of StackTach's winchester.
//!
//! This crate is pure (no I/O beyond reading configuration files, no async runtime, no SQL). It
//! owns:
//! - [`config`]: `winchester.yaml` (StackTach-compatible) and the search path for the other files;
//! - [`trigger`]: `triggers.yaml`, criteria, distinguishing values, the per-stream fire/expire
//!   bookkeeping ([`trigger::StreamProgress`]) and an in-memory dry run ([`trigger::DryRun`]);
//! - [`pipeline`]: `pipelines.yaml`, the [`pipeline::Handler`] trait, the handler registry and the
//!   built-in `logger` and `usage` handlers.
//!
//! Storing events and streams, taking streams with a compare-and-set and running the workers
//! belong to the store and the managers built on top of this crate.

#![warn(missing_docs)]

pub mod config;
pub mod error;
mod keys;
pub mod pipeline;
pub mod trigger;

#[cfg(test)]
mod testutil;

pub use config::WinchesterConfig;
pub use error::{Error, Result};
pub use pipeline::{
    Environment, Handler, HandlerError, HandlerRegistry, Pipeline, PipelineConfig, PipelineOutcome,
};
pub use trigger::{
    DistValue, DistinguishingValues, DryRun, FireState, StreamProgress, StreamState,
    TriggerDefinition,
};
