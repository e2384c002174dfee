//! tach-notigen: a seeded generator of realistic OpenStack Nova notifications, the successor of
//! StackTach.v3's `notigen`.
//!
//! A [`Generator`] simulates a Nova region: a population of instances (some existing when the
//! run starts), operations arriving as a Poisson process at
//! [`NotigenConfig::operations_per_hour`] (create, delete, resize with its confirmation,
//! rebuild, rescue/unrescue, snapshot, power off/on, reboot), each emitting Nova's
//! request-linked sequence of notifications spread over seconds to minutes and interleaved with
//! the others, and at every midnight (UTC) Nova's usage audit: one `compute.instance.exists`
//! per instance alive during the day, including those deleted that day. Payloads have the shape
//! of the real Nova traffic StackTach's notigen templates were captured from.
//!
//! Output is in timestamp order, deterministic for a seed (the PRNG lives in this crate, so
//! dependency upgrades cannot change it) and produced lazily with bounded memory.
//!
//! Modules: `config` (settings, durations), `generator` (the simulation), `plan` (each
//! operation's notification sequence), `model` and `catalog` (instances, contexts, flavors,
//! images), `payload` and `notification` (JSON rendering), `json` and `rng` (primitives).
//!
//! ```
//! use tach_notigen::{Envelope, Generator, NotigenConfig};
//!
//! let cfg = NotigenConfig { count: Some(3), ..NotigenConfig::default() };
//! let mut line = String::new();
//! for n in Generator::new(cfg) {
//!     line.clear();
//!     n.write_json(Envelope::Bare, &mut line);
//!     assert!(line.contains(n.event_type));
//! }
//! ```

mod catalog;
mod config;
mod generator;
mod json;
mod model;
mod notification;
mod payload;
mod plan;
mod rng;

pub use config::{
    DEFAULT_OPERATIONS_PER_HOUR, DEFAULT_SEED, Envelope, NotigenConfig, parse_duration,
};
pub use generator::Generator;
pub use notification::Notification;

/// Every event type the generator emits.
pub const EVENT_TYPES: [&str; 33] = [
    "compute.instance.create.start",
    "compute.instance.create.end",
    "compute.instance.delete.start",
    "compute.instance.delete.end",
    "compute.instance.shutdown.start",
    "compute.instance.shutdown.end",
    "compute.instance.resize.prep.start",
    "compute.instance.resize.prep.end",
    "compute.instance.resize.start",
    "compute.instance.resize.end",
    "compute.instance.finish_resize.start",
    "compute.instance.finish_resize.end",
    "compute.instance.resize.confirm.start",
    "compute.instance.resize.confirm.end",
    "compute.instance.rebuild.start",
    "compute.instance.rebuild.end",
    "compute.instance.rescue.start",
    "compute.instance.rescue.end",
    "compute.instance.unrescue.start",
    "compute.instance.unrescue.end",
    "compute.instance.snapshot.start",
    "compute.instance.snapshot.end",
    "compute.instance.power_off.start",
    "compute.instance.power_off.end",
    "compute.instance.power_on.start",
    "compute.instance.power_on.end",
    "compute.instance.reboot.start",
    "compute.instance.reboot.end",
    "compute.instance.update",
    "compute.instance.exists",
    "scheduler.run_instance.start",
    "scheduler.run_instance.scheduled",
    "scheduler.run_instance.end",
];
