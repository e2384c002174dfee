//! An in-memory stream simulator for `tach triggers test`: feeds events through the triggers
//! with the pipeline's rules but no database, and reports which stream each event joined and
//! which streams would fire.
//!
//! The clock is the event's time. An event joins the stream of its trigger and distinguishing
//! values that is still active at that time — its expiry is later and it has not fired (a
//! stream counts as fired from its `fire_timestamp` on, as in `tach replay`; live, a stream
//! keeps taking events until a worker fires it, as in winchester) — otherwise it starts a new
//! stream. Streams are numbered from 1 in creation order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::ser::SerializeStruct;
use tach_distiller::Event;
use tach_timex::format_datetime;

use super::definition::TriggerDefinition;
use super::distinguish::DistinguishingValues;
use super::stream::StreamProgress;
use crate::error::Result;

/// One stream an event joined.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedStream {
    /// The trigger's name.
    pub trigger: String,
    /// The stream's number (from 1, in creation order).
    pub stream: u64,
    /// The stream's distinguishing values.
    pub distinguishing_traits: DistinguishingValues,
}

/// A simulated stream at the end of (or during) a dry run.
#[derive(Debug, Clone, PartialEq)]
pub struct DryRunStream {
    /// The stream's number (from 1, in creation order).
    pub stream: u64,
    /// The trigger's name.
    pub trigger: String,
    /// The stream's distinguishing values.
    pub distinguishing_traits: DistinguishingValues,
    /// How many events joined it.
    pub events: u64,
    /// Whether it fires: its fire criteria were met and its fire time is not after its expiry
    /// (otherwise the worker expires it first).
    pub fire: bool,
    /// When it fires, if its fire criteria were met.
    pub fire_timestamp: Option<DateTime<Utc>>,
    /// When it expires.
    pub expire_timestamp: DateTime<Utc>,
}

/// The simulator.
#[derive(Debug, Clone)]
pub struct DryRun {
    triggers: Vec<TriggerDefinition>,
    streams: Vec<SimulatedStream>,
    /// (trigger index, stream key) → index in `streams` of the newest such stream.
    latest: HashMap<(usize, String), usize>,
}

/// A stream being simulated.
#[derive(Debug, Clone)]
struct SimulatedStream {
    trigger: usize,
    values: DistinguishingValues,
    progress: StreamProgress,
}

impl DryRun {
    /// A simulator over these triggers, with no streams yet.
    pub fn new(triggers: Vec<TriggerDefinition>) -> Self {
        Self {
            triggers,
            streams: Vec::new(),
            latest: HashMap::new(),
        }
    }

    /// The triggers.
    pub fn triggers(&self) -> &[TriggerDefinition] {
        &self.triggers
    }

    /// Adds an event at its own time; returns the streams it joined, in trigger order.
    ///
    /// # Errors
    /// When a trigger's expiration cannot be evaluated for the stream (e.g. it overflows).
    pub fn add(&mut self, event: &Event) -> Result<Vec<MatchedStream>> {
        let now = event.timestamp;
        let mut matched = Vec::new();
        for (index, trigger) in self.triggers.iter().enumerate() {
            let Some(values) = trigger.match_event(event, None) else {
                continue;
            };
            let key = (index, values.key());
            let existing = self
                .latest
                .get(&key)
                .copied()
                .filter(|&s| self.streams[s].progress.open_at(now));
            let stream = match existing {
                Some(s) => {
                    self.streams[s].progress.add(trigger, event, now, None)?;
                    s
                }
                None => {
                    let (progress, _) = StreamProgress::start(trigger, event, now, None)?;
                    self.streams.push(SimulatedStream {
                        trigger: index,
                        values: values.clone(),
                        progress,
                    });
                    let s = self.streams.len() - 1;
                    self.latest.insert(key, s);
                    s
                }
            };
            matched.push(MatchedStream {
                trigger: trigger.name.clone(),
                stream: stream as u64 + 1,
                distinguishing_traits: values,
            });
        }
        Ok(matched)
    }

    /// Every stream so far, in creation order.
    pub fn streams(&self) -> Vec<DryRunStream> {
        self.streams
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let progress = &s.progress;
                DryRunStream {
                    stream: i as u64 + 1,
                    trigger: self.triggers[s.trigger].name.clone(),
                    distinguishing_traits: s.values.clone(),
                    events: progress.event_count,
                    fire: progress
                        .fire_timestamp
                        .is_some_and(|f| f <= progress.expire_timestamp),
                    fire_timestamp: progress.fire_timestamp,
                    expire_timestamp: progress.expire_timestamp,
                }
            })
            .collect()
    }
}

/// The output line of one event:
/// `{"message_id": .., "matched": [{"trigger": .., "stream": N, "distinguishing_traits": {..}}]}`.
pub fn matched_line(message_id: &str, matched: &[MatchedStream]) -> String {
    #[derive(Serialize)]
    struct Line<'a> {
        message_id: &'a str,
        matched: &'a [MatchedStream],
    }
    // Strings, numbers and string-keyed maps always serialize.
    serde_json::to_string(&Line {
        message_id,
        matched,
    })
    .unwrap_or_default()
}

impl Serialize for MatchedStream {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("MatchedStream", 3)?;
        s.serialize_field("trigger", &self.trigger)?;
        s.serialize_field("stream", &self.stream)?;
        s.serialize_field(
            "distinguishing_traits",
            &self.distinguishing_traits.display(),
        )?;
        s.end()
    }
}

impl Serialize for DryRunStream {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("DryRunStream", 7)?;
        s.serialize_field("stream", &self.stream)?;
        s.serialize_field("trigger", &self.trigger)?;
        s.serialize_field(
            "distinguishing_traits",
            &self.distinguishing_traits.display(),
        )?;
        s.serialize_field("events", &self.events)?;
        s.serialize_field("fire", &self.fire)?;
        s.serialize_field("fire_timestamp", &self.fire_timestamp.map(format_datetime))?;
        s.serialize_field("expire_timestamp", &format_datetime(self.expire_timestamp))?;
        s.end()
    }
}

impl DryRunStream {
    /// The output line of a stream: `{"stream": N, "trigger": .., "distinguishing_traits":
    /// {..}, "events": COUNT, "fire": bool, "fire_timestamp": .. or null, "expire_timestamp": ..}`.
    pub fn to_json_line(&self) -> String {
        // Strings, numbers and string-keyed maps always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }
}
