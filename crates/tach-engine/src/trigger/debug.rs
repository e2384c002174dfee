//! Per-trigger debug counters (winchester's `debugging.py`): the managers count match and fire
//! checks, failures by reason and stream events, and log them every `statistics_period` for
//! triggers whose `debug_level` is above 0 (level 2 and up adds the failure reasons).
//!
//! Counting is a fixed array increment per event, so it stays on in production.

use serde::Serialize;

use super::definition::TriggerDefinition;

/// Why an event failed a criterion or a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchReason {
    /// The event type is not included, or is excluded.
    WrongEventType,
    /// The criterion's `timestamp` expression names a variable the event lacks.
    TimestampVariableMissing,
    /// The event's timestamp is outside the criterion's `timestamp` window.
    TimestampOutOfRange,
    /// A trait the criterion tests is missing.
    TraitMissing,
    /// A trait has a different value (or type) than the test wants.
    TraitMismatch,
    /// A `datetime` test's expression names a variable the event lacks.
    TraitVariableMissing,
    /// A datetime trait is outside the `datetime` test's range.
    TraitNotInRange,
    /// No match criterion accepted the event.
    NoMatchingCriteria,
    /// A distinguishing trait (or its mapped source) is missing or unusable.
    DistinguishingTraitMissing,
    /// The stream does not yet have enough events for every fire criterion.
    NotEnoughEvents,
}

impl MismatchReason {
    /// How many reasons there are.
    pub const COUNT: usize = 10;

    /// Every reason, in declaration order.
    pub const ALL: [MismatchReason; Self::COUNT] = [
        Self::WrongEventType,
        Self::TimestampVariableMissing,
        Self::TimestampOutOfRange,
        Self::TraitMissing,
        Self::TraitMismatch,
        Self::TraitVariableMissing,
        Self::TraitNotInRange,
        Self::NoMatchingCriteria,
        Self::DistinguishingTraitMissing,
        Self::NotEnoughEvents,
    ];

    /// A short description, as in the original's debug output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WrongEventType => "wrong event type",
            Self::TimestampVariableMissing => "no timestamp trait",
            Self::TimestampOutOfRange => "not time yet",
            Self::TraitMissing => "trait missing",
            Self::TraitMismatch => "trait value mismatch",
            Self::TraitVariableMissing => "time: no referenced trait",
            Self::TraitNotInRange => "not in timerange",
            Self::NoMatchingCriteria => "no matching criteria",
            Self::DistinguishingTraitMissing => "distinguishing trait missing",
            Self::NotEnoughEvents => "not enough matching criteria",
        }
    }
}

impl std::fmt::Display for MismatchReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts by [`MismatchReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReasonCounts([u64; MismatchReason::COUNT]);

impl ReasonCounts {
    /// Adds one for `reason`.
    pub fn bump(&mut self, reason: MismatchReason) {
        self.0[reason as usize] += 1;
    }

    /// The count for `reason`.
    pub fn get(&self, reason: MismatchReason) -> u64 {
        self.0[reason as usize]
    }

    /// The reasons with a non-zero count, in declaration order.
    pub fn nonzero(&self) -> impl Iterator<Item = (MismatchReason, u64)> + '_ {
        MismatchReason::ALL
            .iter()
            .map(|r| (*r, self.get(*r)))
            .filter(|(_, n)| *n > 0)
    }

    /// The sum over all reasons.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Adds `other`'s counts to these.
    pub fn absorb(&mut self, other: &ReasonCounts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }
}

impl Serialize for ReasonCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for (reason, count) in self.nonzero() {
            map.serialize_entry(&reason, &count)?;
        }
        map.end()
    }
}

/// One trigger's counters since they were last logged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TriggerDebug {
    /// Events checked against the match criteria.
    pub match_checks: u64,
    /// Events that matched a criterion and had every distinguishing trait.
    pub match_passed: u64,
    /// Why events (or single criteria) failed to match.
    pub match_failures: ReasonCounts,
    /// Fire checks (one per event added to a stream that has not fired).
    pub fire_checks: u64,
    /// Fire checks after which the stream was ready to fire.
    pub fire_passed: u64,
    /// Why fire checks (or single fire criteria) failed.
    pub fire_failures: ReasonCounts,
    /// Streams created.
    pub new_streams: u64,
    /// Events added to streams.
    pub added_events: u64,
    /// Streams that became ready to fire.
    pub ready_to_fire: u64,
    /// Streams fired.
    pub fired: u64,
    /// Streams expired.
    pub expired: u64,
    /// Errors (pipeline failures, expressions that failed to evaluate).
    pub errors: u64,
}

impl TriggerDebug {
    /// Adds `other`'s counters to these (counts taken aside, once they are known to stand).
    pub fn absorb(&mut self, other: &TriggerDebug) {
        let TriggerDebug {
            match_checks,
            match_passed,
            match_failures,
            fire_checks,
            fire_passed,
            fire_failures,
            new_streams,
            added_events,
            ready_to_fire,
            fired,
            expired,
            errors,
        } = other;
        self.match_checks += match_checks;
        self.match_passed += match_passed;
        self.match_failures.absorb(match_failures);
        self.fire_checks += fire_checks;
        self.fire_passed += fire_passed;
        self.fire_failures.absorb(fire_failures);
        self.new_streams += new_streams;
        self.added_events += added_events;
        self.ready_to_fire += ready_to_fire;
        self.fired += fired;
        self.expired += expired;
        self.errors += errors;
    }

    /// Logs the counters at INFO (reasons too when `debug_level` > 1); level 0 logs nothing.
    pub fn log(&self, trigger: &str, debug_level: u8) {
        if debug_level == 0 {
            return;
        }
        tracing::info!(
            trigger,
            match_checks = self.match_checks,
            match_passed = self.match_passed,
            fire_checks = self.fire_checks,
            fire_passed = self.fire_passed,
            new_streams = self.new_streams,
            added_events = self.added_events,
            ready_to_fire = self.ready_to_fire,
            fired = self.fired,
            expired = self.expired,
            errors = self.errors,
            "Trigger statistics."
        );
        if debug_level > 1 {
            for (reason, count) in self.match_failures.nonzero() {
                tracing::info!(trigger, group = "match", %reason, count, "Trigger mismatches.");
            }
            for (reason, count) in self.fire_failures.nonzero() {
                tracing::info!(trigger, group = "fire", %reason, count, "Trigger mismatches.");
            }
        }
    }
}

/// The counters of every trigger, indexed like the trigger list.
#[derive(Debug, Clone, Default)]
pub struct DebugCounters {
    counters: Vec<TriggerDebug>,
}

impl DebugCounters {
    /// Zeroed counters for `count` triggers.
    pub fn new(count: usize) -> Self {
        Self {
            counters: vec![TriggerDebug::default(); count],
        }
    }

    /// The counters of trigger `index`, growing the list if needed.
    pub fn trigger_mut(&mut self, index: usize) -> &mut TriggerDebug {
        if index >= self.counters.len() {
            self.counters.resize(index + 1, TriggerDebug::default());
        }
        &mut self.counters[index]
    }

    /// The counters of trigger `index`.
    pub fn trigger(&self, index: usize) -> Option<&TriggerDebug> {
        self.counters.get(index)
    }

    /// Adds another set's counts to these, trigger by trigger.
    pub fn absorb(&mut self, other: &DebugCounters) {
        for (index, counters) in other.counters.iter().enumerate() {
            self.trigger_mut(index).absorb(counters);
        }
    }

    /// Logs every trigger with `debug_level` > 0 and resets all counters.
    pub fn log_and_reset(&mut self, triggers: &[TriggerDefinition]) {
        for (trigger, counters) in triggers.iter().zip(&self.counters) {
            counters.log(&trigger.name, trigger.debug_level);
        }
        for counters in &mut self.counters {
            *counters = TriggerDebug::default();
        }
    }
}
