//! tach's workers: the managers that connect the pure engine to the store.
//!
//! - [`trigger_manager`]: [`TriggerManager`] stores batches of events and assigns them to
//!   streams, one store transaction per batch, safe with any number of concurrent processes.
//! - [`pipeline_manager`]: [`PipelineManager`] takes ready streams with a compare-and-set, runs
//!   their fire or expire pipelines and feeds the new events back through the triggers.
//! - [`replay`]: [`Replay`], events in batches with an event-time clock (`tach replay`).
//! - [`setup`]: [`WorkerSetup`], the managers built from `winchester.yaml`.
//! - [`convert`]: the small conversions between engine and store types.

#![warn(missing_docs)]

pub mod convert;
mod error;
pub mod pipeline_manager;
pub mod replay;
pub mod setup;
pub mod trigger_manager;

pub use error::{Error, Result};
pub use pipeline_manager::{PassReport, PipelineManager, PipelineSettings};
pub use replay::{Replay, ReplayOptions, ReplayTotals, far_future};
pub use setup::WorkerSetup;
pub use trigger_manager::{AddReport, TriggerManager};
