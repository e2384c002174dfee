//! Distils OpenStack notifications into flat typed events, as StackTach's stackdistiller did,
//! reading its `event_definitions.yaml` files unchanged.
//!
//! - [`Distiller`] (`distiller.rs`): bytes in, [`Event`] out; counters in [`DistillStats`].
//! - `definition.rs`: the YAML definitions compiled into matchers and traits.
//! - `path.rs`: stackdistiller's JSONPath dialect for `fields`, compiled once; `resolve.rs`
//!   looks up all of a definition's plain paths in one pass over the notification.
//! - [`glob`]: `event_type` globs and include/exclude lists.
//! - [`plugin`]: the [`TraitPlugin`] trait, its registry, `split` and `bitfield`.
//! - `convert.rs`: value conversion to trait types; `event.rs`: the event and its flat JSON.
//!
//! Time parsing and formatting come from `tach_timex`. Nothing here does I/O except reading
//! a definitions file on request.
//!
//! ```
//! use std::path::Path;
//! use tach_distiller::{Distiller, TraitValue};
//!
//! let yaml = "
//! - event_type: compute.instance.*
//!   traits:
//!     memory_mb:
//!       type: int
//!       fields: payload.memory_mb
//! ";
//! let distiller = Distiller::from_yaml(yaml, Path::new("inline.yaml"), false)?;
//! let raw = br#"{"event_type": "compute.instance.create.end", "message_id": "m-1",
//!     "timestamp": "2016-03-01 01:09:53.188", "publisher_id": "compute.host-1",
//!     "payload": {"memory_mb": 512}}"#;
//! let event = distiller.distill_bytes(raw)?.expect("a definition matches");
//! assert_eq!(event.trait_value("memory_mb"), Some(&TraitValue::Int(512)));
//! assert_eq!(
//!     event.to_json(),
//!     r#"{"message_id":"m-1","event_type":"compute.instance.create.end","timestamp":"2016-03-01T01:09:53.188000Z","memory_mb":512,"service":"compute.host-1"}"#
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod convert;
mod definition;
mod distiller;
mod error;
mod event;
pub mod glob;
mod path;
pub mod plugin;
mod resolve;
mod yaml;

pub use distiller::{DistillStats, Distiller, MAX_NESTING};
pub use error::{DefinitionError, NotificationError};
pub use event::{Event, Trait, TraitValue, write_json_str};
pub use glob::{EventTypeMatcher, Glob};
pub use plugin::{FieldMatch, ParamValue, PluginParams, PluginRegistry, PluginValue, TraitPlugin};
