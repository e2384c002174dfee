//! Pipelines (`pipelines.yaml`): definitions, the [`Handler`] trait and registry, pipeline
//! runs, and the built-in handlers `logger` and `usage`.

mod definition;
mod handler;
pub mod logger;
pub mod usage;

pub use definition::{HandlerConfig, PipelineConfig, PipelineDefinition};
pub use handler::{
    Environment, Handler, HandlerError, HandlerFactory, HandlerRegistry, Pipeline, PipelineFailure,
    PipelineOutcome,
};
pub use logger::LoggerHandler;
pub use usage::UsageHandler;

#[cfg(test)]
mod tests;
