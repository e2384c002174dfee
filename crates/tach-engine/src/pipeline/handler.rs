//! The handler contract, the registry of handler factories, and a pipeline run.
//!
//! As in winchester, a pipeline gets a fresh instance of each handler per stream. Each handler
//! receives the previous one's event list and returns the next; side effects belong in
//! `commit`, which runs on every handler only when all of them succeeded (otherwise every
//! handler's `rollback` runs). Events present at the end whose `message_id` was not in the
//! stream are the pipeline's new events.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use tach_distiller::Event;

use super::definition::{PipelineConfig, PipelineDefinition};
use super::{logger::LoggerHandler, usage::UsageHandler};

/// A pipeline handler. Handlers are synchronous; one that needs async I/O runs it on its own
/// runtime handle (in `commit`).
pub trait Handler: Send {
    /// Processes the events (sorted by timestamp for the first handler) and returns the list
    /// for the next handler: add events to create them, omit events to filter them. No side
    /// effects here: a pipeline may be retried.
    ///
    /// # Errors
    /// Any failure; the pipeline then rolls back.
    fn handle(
        &mut self,
        events: Vec<Event>,
        env: &mut Environment,
    ) -> Result<Vec<Event>, HandlerError>;

    /// Performs side effects, after every handler of the pipeline succeeded. A handler without
    /// side effects has nothing to do here (the default).
    ///
    /// # Errors
    /// A failure (e.g. a publish the broker did not confirm) fails the pipeline run: the
    /// stream goes to `error`/`expire_error` and can be reset and retried. The other handlers
    /// still commit (side effects already done cannot be undone).
    fn commit(&mut self, _env: &Environment) -> Result<(), HandlerError> {
        Ok(())
    }

    /// Cleans up after a failed pipeline (by default, nothing to clean up).
    fn rollback(&mut self, _env: &Environment) {}

    /// Whether `handle` reads the events' traits; a pipeline whose handlers all say no gets
    /// its events without them (message id, type and time only), which is cheaper to load.
    fn reads_traits(&self) -> bool {
        true
    }
}

/// Errors of handlers and of building pipelines.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The handler's `params` are invalid.
    #[error("handler `{handler}`: invalid params: {reason}")]
    InvalidParams {
        /// The handler.
        handler: String,
        /// Why.
        reason: String,
    },
    /// The handler failed.
    #[error("handler `{handler}` failed: {reason}")]
    Failed {
        /// The handler.
        handler: String,
        /// Why.
        reason: String,
    },
    /// The handler failed with an underlying error.
    #[error("handler `{handler}` failed")]
    Source {
        /// The handler.
        handler: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No handler of this name is registered.
    #[error("no handler `{handler}` is registered (registered: {registered})")]
    Unknown {
        /// The handler name.
        handler: String,
        /// The registered names, comma-separated.
        registered: String,
    },
    /// A pipeline uses a handler no one registered.
    #[error(
        "pipeline `{pipeline}`: no handler `{handler}` is registered (registered: {registered})"
    )]
    Unregistered {
        /// The pipeline naming it.
        pipeline: String,
        /// The handler name.
        handler: String,
        /// The registered names, comma-separated.
        registered: String,
    },
}

/// What a pipeline run shares between its handlers: the stream and a scratch space.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Environment {
    /// The stream's id.
    pub stream_id: i64,
    /// The stream's name (its trigger's name).
    pub stream_name: String,
    scratch: BTreeMap<String, Value>,
}

impl Environment {
    /// An environment for a stream, with an empty scratch space.
    pub fn new(stream_id: i64, stream_name: impl Into<String>) -> Self {
        Self {
            stream_id,
            stream_name: stream_name.into(),
            scratch: BTreeMap::new(),
        }
    }

    /// A scratch value (e.g. `usage_notifications`, a list of notifications).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.scratch.get(key)
    }

    /// A scratch value, mutable.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.scratch.get_mut(key)
    }

    /// Sets a scratch value, returning the previous one.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) -> Option<Value> {
        self.scratch.insert(key.into(), value)
    }

    /// Removes a scratch value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.scratch.remove(key)
    }

    /// The whole scratch space.
    pub fn scratch(&self) -> &BTreeMap<String, Value> {
        &self.scratch
    }
}

/// Builds a handler from its `params`.
pub type HandlerFactory =
    Arc<dyn Fn(&Value) -> Result<Box<dyn Handler>, HandlerError> + Send + Sync>;

/// Handler factories by name. Built-ins: `logger`, `usage`; other crates register more
/// (`notabene`, publishers) with [`HandlerRegistry::register`].
#[derive(Clone)]
pub struct HandlerRegistry {
    factories: BTreeMap<String, HandlerFactory>,
}

impl fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerRegistry")
            .field("handlers", &self.names())
            .finish()
    }
}

impl Default for HandlerRegistry {
    fn default() -> Self {
        Self::with_builtins()
    }
}

impl HandlerRegistry {
    /// A registry with no handlers.
    pub fn empty() -> Self {
        Self {
            factories: BTreeMap::new(),
        }
    }

    /// A registry with the built-in handlers `logger` and `usage`.
    pub fn with_builtins() -> Self {
        let mut registry = Self::empty();
        registry.register("logger", |params| {
            Ok(Box::new(LoggerHandler::from_params(params)?) as Box<dyn Handler>)
        });
        registry.register("usage", |params| {
            Ok(Box::new(UsageHandler::from_params(params)?) as Box<dyn Handler>)
        });
        registry
    }

    /// Registers (or replaces) a handler factory. Factories run once per stream, so they should
    /// be cheap: share connections through the closure rather than opening one per call.
    pub fn register<F>(&mut self, name: impl Into<String>, factory: F)
    where
        F: Fn(&Value) -> Result<Box<dyn Handler>, HandlerError> + Send + Sync + 'static,
    {
        self.factories.insert(name.into(), Arc::new(factory));
    }

    /// Whether a handler of this name is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.factories.contains_key(name)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.factories.keys().map(String::as_str).collect()
    }

    /// Creates a handler.
    ///
    /// # Errors
    /// [`HandlerError::Unknown`] or the factory's error.
    pub fn create(&self, name: &str, params: &Value) -> Result<Box<dyn Handler>, HandlerError> {
        match self.factories.get(name) {
            Some(factory) => factory(params),
            None => Err(HandlerError::Unknown {
                handler: name.to_string(),
                registered: self.names().join(", "),
            }),
        }
    }

    /// Checks that every handler the pipelines use is registered.
    ///
    /// # Errors
    /// [`HandlerError::Unregistered`] naming the first pipeline and handler that is not.
    pub fn check(&self, config: &PipelineConfig) -> Result<(), HandlerError> {
        for pipeline in config.pipelines.values() {
            for handler in &pipeline.handlers {
                if !self.contains(&handler.handler) {
                    return Err(self.unregistered(&pipeline.name, &handler.handler));
                }
            }
        }
        Ok(())
    }

    /// The error for a name that is not registered.
    fn unregistered(&self, pipeline: &str, handler: &str) -> HandlerError {
        HandlerError::Unregistered {
            pipeline: pipeline.to_string(),
            handler: handler.to_string(),
            registered: self.names().join(", "),
        }
    }
}

/// Which handler failed, and how.
#[derive(Debug)]
pub struct PipelineFailure {
    /// The handler's name in pipelines.yaml.
    pub handler: String,
    /// The error.
    pub error: HandlerError,
}

/// The result of running a pipeline over a stream.
#[derive(Debug)]
pub struct PipelineOutcome {
    /// Events the handlers added (message ids not in the stream), in order, without
    /// duplicates; empty when the pipeline failed.
    pub new_events: Vec<Event>,
    /// The handler that failed, if one did: in `handle` (every handler was then rolled back)
    /// or, beyond winchester, in `commit` (the first handler whose commit failed).
    pub failure: Option<PipelineFailure>,
    /// Further `commit` errors after the first one (which is `failure`), in handler order.
    /// Any commit error fails the pipeline (winchester only logged them, so a lost publish
    /// went unnoticed).
    pub commit_errors: Vec<PipelineFailure>,
}

impl PipelineOutcome {
    /// Whether every handler's `handle` and `commit` succeeded (the stream goes to
    /// `completed`).
    pub fn succeeded(&self) -> bool {
        self.failure.is_none()
    }
}

/// A pipeline ready to run over one stream: fresh handler instances, in order.
pub struct Pipeline {
    name: String,
    handlers: Vec<(String, Box<dyn Handler>)>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.handlers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Pipeline")
            .field("name", &self.name)
            .field("handlers", &names)
            .finish()
    }
}

impl Pipeline {
    /// Instantiates the pipeline's handlers.
    ///
    /// # Errors
    /// When a handler is not registered or rejects its params.
    pub fn build(
        definition: &PipelineDefinition,
        registry: &HandlerRegistry,
    ) -> Result<Self, HandlerError> {
        let mut handlers = Vec::with_capacity(definition.handlers.len());
        for config in &definition.handlers {
            let handler = match registry.factories.get(&config.handler) {
                Some(factory) => factory(&config.params)?,
                None => return Err(registry.unregistered(&definition.name, &config.handler)),
            };
            handlers.push((config.name.clone(), handler));
        }
        Ok(Self {
            name: definition.name.clone(),
            handlers,
        })
    }

    /// Whether any of its handlers reads the events' traits ([`Handler::reads_traits`]).
    pub fn reads_traits(&self) -> bool {
        self.handlers.iter().any(|(_, h)| h.reads_traits())
    }

    /// A pipeline of already-built handlers (tests, embedding).
    pub fn from_handlers(
        name: impl Into<String>,
        handlers: Vec<(String, Box<dyn Handler>)>,
    ) -> Self {
        Self {
            name: name.into(),
            handlers,
        }
    }

    /// The pipeline's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the handlers over the stream's events (sorted by timestamp first), then commits
    /// every handler if all succeeded, else rolls every handler back. A failed `commit` makes
    /// the outcome a failure (`failure` is the first commit error, `new_events` is empty);
    /// the handlers after it still commit.
    pub fn run(&mut self, mut events: Vec<Event>, env: &mut Environment) -> PipelineOutcome {
        events.sort_by_key(|e| e.timestamp);
        let seen: HashSet<String> = events.iter().map(|e| e.message_id.clone()).collect();
        let mut current = events;
        let mut failure = None;
        for (name, handler) in &mut self.handlers {
            match handler.handle(current, env) {
                Ok(next) => current = next,
                Err(error) => {
                    tracing::error!(
                        pipeline = %self.name,
                        handler = %name,
                        stream_id = env.stream_id,
                        error = %error,
                        "Pipeline handler failed."
                    );
                    failure = Some(PipelineFailure {
                        handler: name.clone(),
                        error,
                    });
                    current = Vec::new();
                    break;
                }
            }
        }
        if failure.is_some() {
            for (_, handler) in &mut self.handlers {
                handler.rollback(env);
            }
            return PipelineOutcome {
                new_events: Vec::new(),
                failure,
                commit_errors: Vec::new(),
            };
        }
        let mut commit_errors = Vec::new();
        for (name, handler) in &mut self.handlers {
            if let Err(error) = handler.commit(env) {
                tracing::error!(
                    pipeline = %self.name,
                    handler = %name,
                    stream_id = env.stream_id,
                    error = %error,
                    "Pipeline handler commit failed."
                );
                commit_errors.push(PipelineFailure {
                    handler: name.clone(),
                    error,
                });
            }
        }
        if !commit_errors.is_empty() {
            let first = commit_errors.remove(0);
            return PipelineOutcome {
                new_events: Vec::new(),
                failure: Some(first),
                commit_errors,
            };
        }
        let mut added: HashSet<String> = HashSet::new();
        let new_events = current
            .into_iter()
            .filter(|e| !seen.contains(&e.message_id) && added.insert(e.message_id.clone()))
            .collect();
        PipelineOutcome {
            new_events,
            failure: None,
            commit_errors,
        }
    }
}
