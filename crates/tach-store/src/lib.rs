//! The event and stream store: the only crate in tach that writes SQL.
//!
//! One [`Store`] talks to SQLite, PostgreSQL or MySQL/MariaDB through a single sqlx `AnyPool`;
//! the few places where the backends differ (parameter markers, insert-ignore, `RETURNING`, locking
//! reads, how a write transaction starts) live in [`Dialect`]. Datetimes are stored as BIGINT
//! microseconds since the Unix epoch, which is exact and identical on every backend.
//!
//! - [`store`]: connecting, the schema check and the worker-side operations on streams.
//! - [`tx`]: [`StoreTx`], the transaction ingest uses to store events and assign them to streams.
//! - [`query`]: the read side used by the REST API (filters, counts and paging).
//! - [`doc`]: the JSON document that holds an event's traits, and the trait index.
//! - [`migrate`]: the embedded, versioned migrations (one folder per backend).
//! - [`upkeep`]: table statistics on PostgreSQL servers whose autovacuum is off.
//! - [`checkpoint`]: WAL checkpoints of SQLite file databases, in the background.
//!
//! The store speaks in plain row types ([`Event`], [`NewStream`], [`StreamRow`], ...) so that it
//! depends on no engine internals; the engine converts its own types to and from these.

pub mod active_key;
pub mod checkpoint;
mod chore;
pub mod dead_letter;
pub mod dialect;
pub mod doc;
mod error;
mod framed;
pub mod migrate;
pub mod query;
pub mod recent;
mod rows;
mod sql;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tx;
pub mod types;
pub mod upkeep;

pub use active_key::active_key;
pub use dialect::{Backend, Dialect};
pub use doc::IndexedTraits;
pub use error::{Error, Result};
pub use migrate::MigrationReport;
pub use query::{Direction, EventDoc, EventFilter, StoredEvent, StreamFilter};
pub use store::{ClaimKind, ConnectOptions, DeadLetter, Store};
pub use tach_distiller::write_json_str;
pub use tx::StoreTx;
pub use types::{
    DistValue, Event, NewStream, StreamRow, StreamState, StreamUpdate, Trait, TraitValue,
};
