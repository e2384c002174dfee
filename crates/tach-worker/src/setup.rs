//! Building the managers from a loaded `winchester.yaml`.

use std::sync::Arc;
use std::time::Duration;

use tach_engine::{HandlerRegistry, PipelineConfig, TriggerDefinition, WinchesterConfig};
use tach_store::Store;

use crate::pipeline_manager::{PipelineManager, PipelineSettings};
use crate::trigger_manager::TriggerManager;
use crate::{Error, Result};

/// Everything the managers need from the configuration, checked and shareable.
#[derive(Debug, Clone)]
pub struct WorkerSetup {
    /// The trigger definitions.
    pub triggers: Arc<[TriggerDefinition]>,
    /// The pipeline definitions.
    pub pipelines: Arc<PipelineConfig>,
    /// The handlers pipelines may use.
    pub registry: Arc<HandlerRegistry>,
    /// Batch size and purge setting of the pipeline manager.
    pub settings: PipelineSettings,
    /// How often debug counters are logged.
    pub statistics_period: Duration,
}

impl WorkerSetup {
    /// Loads the triggers and pipelines named by `config` and checks that every pipeline a
    /// trigger names exists and every handler is registered (built-ins only).
    ///
    /// # Errors
    /// A file that cannot be read or is invalid; an unknown pipeline or handler.
    pub fn load(config: &WinchesterConfig) -> Result<WorkerSetup> {
        Self::load_with_registry(config, HandlerRegistry::with_builtins())
    }

    /// As [`Self::load`], with the handlers of `registry` (e.g. the built-ins plus
    /// tach-publish's `notabene` and `kafka`).
    ///
    /// # Errors
    /// As [`Self::load`].
    pub fn load_with_registry(
        config: &WinchesterConfig,
        registry: HandlerRegistry,
    ) -> Result<WorkerSetup> {
        let triggers = config.load_triggers()?;
        for warning in &triggers.warnings {
            tracing::warn!("{warning}");
        }
        let pipelines = config.load_pipelines()?;
        for warning in &pipelines.warnings {
            tracing::warn!("{warning}");
        }
        pipelines.check_triggers(&triggers.triggers)?;
        registry.check(&pipelines).map_err(Error::Handler)?;
        Ok(WorkerSetup {
            triggers: triggers.triggers.into(),
            pipelines: Arc::new(pipelines),
            registry: Arc::new(registry),
            settings: PipelineSettings {
                batch_size: u32::try_from(config.pipeline_worker_batch_size)
                    .unwrap_or(u32::MAX)
                    .max(1),
                purge_completed_streams: config.purge_completed_streams,
            },
            statistics_period: config.statistics_period,
        })
    }

    /// A trigger manager on `store`.
    pub fn trigger_manager(&self, store: Store) -> TriggerManager {
        TriggerManager::new(store, Arc::clone(&self.triggers), self.statistics_period)
    }

    /// A pipeline manager (with its own trigger manager) on `store`.
    pub fn pipeline_manager(&self, store: Store) -> PipelineManager {
        PipelineManager::new(
            self.trigger_manager(store),
            Arc::clone(&self.pipelines),
            Arc::clone(&self.registry),
            self.settings,
        )
    }
}
