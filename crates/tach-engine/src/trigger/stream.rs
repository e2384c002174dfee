//! A stream's lifecycle and bookkeeping, as plain serde data the store can persist and reload:
//! its [`StreamState`], its fire-criteria counters ([`FireState`]) and the rule for adding an
//! event ([`StreamProgress::add`]): widen first/last, recompute the expiry, and set
//! `fire_timestamp = now + fire_delay` the first time every fire criterion is met.
//!
//! Beyond winchester, which re-read every event of the stream to re-check the fire criteria on
//! each new event (quadratic), the counters make the check O(1) per event. Both give the same
//! answer because a criterion's verdict depends on the event alone.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tach_distiller::Event;

use super::debug::{MismatchReason, TriggerDebug};
use super::definition::TriggerDefinition;
use crate::error::Result;

/// The states of a stream (DESIGN §5), with winchester's integer codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// Collecting events.
    Active,
    /// Taken by a pipeline worker to fire.
    Firing,
    /// Taken by a pipeline worker to expire.
    Expiring,
    /// The fire pipeline failed.
    Error,
    /// The expire pipeline failed.
    ExpireError,
    /// The pipeline succeeded.
    Completed,
    /// Reset after `error`: fire again.
    RetryFire,
    /// Reset after `expire_error`: expire again.
    RetryExpire,
}

impl StreamState {
    /// Every state, in code order.
    pub const ALL: [StreamState; 8] = [
        Self::Active,
        Self::Firing,
        Self::Expiring,
        Self::Error,
        Self::ExpireError,
        Self::Completed,
        Self::RetryFire,
        Self::RetryExpire,
    ];

    /// The name used in the API and in logs (`active`, `retry_fire`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Firing => "firing",
            Self::Expiring => "expiring",
            Self::Error => "error",
            Self::ExpireError => "expire_error",
            Self::Completed => "completed",
            Self::RetryFire => "retry_fire",
            Self::RetryExpire => "retry_expire",
        }
    }

    /// winchester's integer code (`active` = 1 ... `retry_expire` = 8).
    pub fn code(self) -> i32 {
        match self {
            Self::Active => 1,
            Self::Firing => 2,
            Self::Expiring => 3,
            Self::Error => 4,
            Self::ExpireError => 5,
            Self::Completed => 6,
            Self::RetryFire => 7,
            Self::RetryExpire => 8,
        }
    }

    /// The state of a winchester integer code.
    pub fn from_code(code: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Whether a worker may take a stream in this state to fire it (once its fire time passed).
    pub fn can_fire(self) -> bool {
        matches!(self, Self::Active | Self::RetryFire)
    }

    /// Whether a worker may take a stream in this state to expire it (once its expiry passed).
    pub fn can_expire(self) -> bool {
        matches!(self, Self::Active | Self::RetryExpire)
    }

    /// The state an API reset moves a failed or stuck stream to (`error` and `firing` →
    /// `retry_fire`, `expire_error` and `expiring` → `retry_expire`); `None` for other states.
    pub fn reset(self) -> Option<Self> {
        match self {
            Self::Error | Self::Firing => Some(Self::RetryFire),
            Self::ExpireError | Self::Expiring => Some(Self::RetryExpire),
            _ => None,
        }
    }

    /// The state after a pipeline run from `firing` or `expiring`: `completed` on success,
    /// else `error` / `expire_error`; `None` from other states.
    pub fn after_pipeline(self, succeeded: bool) -> Option<Self> {
        match (self, succeeded) {
            (Self::Firing | Self::Expiring, true) => Some(Self::Completed),
            (Self::Firing, false) => Some(Self::Error),
            (Self::Expiring, false) => Some(Self::ExpireError),
            _ => None,
        }
    }
}

impl fmt::Display for StreamState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StreamState {
    type Err = String;

    /// Parses a state name (`active`) or winchester code (`1`).
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        if let Ok(code) = s.parse::<i32>() {
            return Self::from_code(code).ok_or_else(|| format!("no stream state has code {code}"));
        }
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown stream state `{s}` (known: {})", names.join(", "))
            })
    }
}

/// Per fire criterion, how many of the stream's events matched it (saturating at what it
/// needs): O(1) work per event, and plain data to persist with the stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FireState {
    /// Matches so far, per fire criterion (capped at `needed`).
    pub counts: Vec<u32>,
    /// The `number` each fire criterion needs.
    pub needed: Vec<u32>,
}

impl FireState {
    /// Zero counts for the trigger's fire criteria.
    pub fn new(trigger: &TriggerDefinition) -> Self {
        Self {
            counts: vec![0; trigger.fire_criteria.len()],
            needed: trigger.fire_criteria.iter().map(|c| c.number).collect(),
        }
    }

    /// Whether every fire criterion has been matched by at least `number` events.
    pub fn satisfied(&self) -> bool {
        self.counts.iter().zip(&self.needed).all(|(c, n)| c >= n)
    }

    /// Counts the event against every fire criterion; returns whether this event made the
    /// state satisfied (it was not before). A state reloaded for a trigger whose fire criteria
    /// changed is re-shaped to them first (counts of vanished criteria dropped, new ones 0).
    pub fn record(
        &mut self,
        trigger: &TriggerDefinition,
        event: &Event,
        mut debug: Option<&mut TriggerDebug>,
    ) -> bool {
        let criteria = &trigger.fire_criteria;
        if self.counts.len() != criteria.len() {
            self.counts.resize(criteria.len(), 0);
        }
        self.needed.clear();
        self.needed.extend(criteria.iter().map(|c| c.number));
        let was = self.satisfied();
        for (count, (criterion, needed)) in self
            .counts
            .iter_mut()
            .zip(criteria.iter().zip(&self.needed))
        {
            if *count >= *needed {
                continue;
            }
            match criterion.check(event) {
                Ok(()) => *count += 1,
                Err(reason) => {
                    if let Some(debug) = debug.as_deref_mut() {
                        debug.fire_failures.bump(reason);
                    }
                }
            }
        }
        let now = self.satisfied();
        if let Some(debug) = debug {
            debug.fire_checks += 1;
            if now {
                debug.fire_passed += 1;
            } else {
                debug.fire_failures.bump(MismatchReason::NotEnoughEvents);
            }
        }
        now && !was
    }
}

/// What adding an event did to a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// The event made the stream ready to fire (its `fire_timestamp` was just set).
    pub ready_to_fire: bool,
}

/// The trigger-side state of one stream: times, counts and fire bookkeeping. Plain data: the
/// store persists it and reloads it to continue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamProgress {
    /// The earliest event time in the stream.
    pub first_event: DateTime<Utc>,
    /// The latest event time in the stream.
    pub last_event: DateTime<Utc>,
    /// When the stream expires (the trigger's `expiration` of first/last).
    pub expire_timestamp: DateTime<Utc>,
    /// When the stream fires; set once, when the fire criteria are first met.
    pub fire_timestamp: Option<DateTime<Utc>>,
    /// How many events the stream has.
    pub event_count: u64,
    /// The fire-criteria counters.
    pub fire_state: FireState,
}

impl StreamProgress {
    /// A new stream holding `event`, added at clock time `now`.
    ///
    /// # Errors
    /// When the trigger's expiration cannot be evaluated.
    pub fn start(
        trigger: &TriggerDefinition,
        event: &Event,
        now: DateTime<Utc>,
        debug: Option<&mut TriggerDebug>,
    ) -> Result<(Self, Added)> {
        let mut progress = Self {
            first_event: event.timestamp,
            last_event: event.timestamp,
            expire_timestamp: trigger.expire_timestamp(event.timestamp, event.timestamp)?,
            fire_timestamp: None,
            event_count: 0,
            fire_state: trigger.fire_state(),
        };
        let added = progress.add(trigger, event, now, debug)?;
        Ok((progress, added))
    }

    /// Adds an event at clock time `now`: widens first/last, recomputes the expiry and, if the
    /// stream has no fire time yet and its events now meet every fire criterion, sets
    /// `fire_timestamp = now + fire_delay`.
    ///
    /// # Errors
    /// When the trigger's expiration cannot be evaluated (the stream is left unchanged).
    pub fn add(
        &mut self,
        trigger: &TriggerDefinition,
        event: &Event,
        now: DateTime<Utc>,
        mut debug: Option<&mut TriggerDebug>,
    ) -> Result<Added> {
        let first = self.first_event.min(event.timestamp);
        let last = self.last_event.max(event.timestamp);
        let expire = trigger.expire_timestamp(first, last)?;
        self.first_event = first;
        self.last_event = last;
        self.expire_timestamp = expire;
        self.event_count += 1;
        if let Some(debug) = debug.as_deref_mut() {
            debug.added_events += 1;
        }
        let mut ready_to_fire = false;
        if self.fire_timestamp.is_none() {
            self.fire_state.record(trigger, event, debug.as_deref_mut());
        }
        if self.fire_timestamp.is_none() && self.fire_state.satisfied() {
            self.fire_timestamp = Some(trigger.fire_timestamp(now));
            ready_to_fire = true;
            if let Some(debug) = debug {
                debug.ready_to_fire += 1;
            }
        }
        Ok(Added { ready_to_fire })
    }

    /// Whether the stream still takes events at clock time `now` (its expiry is later).
    pub fn accepts_at(&self, now: DateTime<Utc>) -> bool {
        self.expire_timestamp > now
    }

    /// Whether the stream takes an event at `now` when a worker fires it the moment its fire
    /// time comes (replay and dry run): its expiry is later and its fire time, if set, is too.
    pub fn open_at(&self, now: DateTime<Utc>) -> bool {
        self.accepts_at(now) && self.fire_timestamp.is_none_or(|f| now < f)
    }

    /// Whether the stream is due to fire at `now` (it has a fire time and it has passed).
    pub fn due_to_fire(&self, now: DateTime<Utc>) -> bool {
        self.fire_timestamp.is_some_and(|t| t < now)
    }

    /// Whether the stream is due to expire at `now` (its expiry has passed).
    pub fn due_to_expire(&self, now: DateTime<Utc>) -> bool {
        self.expire_timestamp < now
    }
}
