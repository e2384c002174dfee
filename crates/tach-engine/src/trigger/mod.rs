//! Triggers (`triggers.yaml`) and streams: definitions, criteria, distinguishing values, the
//! per-stream fire/expire bookkeeping, debug counters and the dry-run simulator.

mod criteria;
mod debug;
mod definition;
mod distinguish;
mod dryrun;
mod stream;

pub use criteria::{CompareOp, Constant, Criteria, Expression, TraitCriterion, TraitTest};
pub(crate) use criteria::{FieldValue, field as event_field};
pub use debug::{DebugCounters, MismatchReason, ReasonCounts, TriggerDebug};
pub use definition::{TriggerDefinition, TriggerFile, load_triggers, parse_triggers};
pub use distinguish::{DisplayValues, DistValue, DistinguishedBy, DistinguishingValues};
pub use dryrun::{DryRun, DryRunStream, MatchedStream, matched_line};
pub use stream::{Added, FireState, StreamProgress, StreamState};

#[cfg(test)]
mod tests;
