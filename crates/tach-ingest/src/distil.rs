//! Distilling in the sources, ahead of the store.
//!
//! Each source task distils what it receives before handing it to the pipeline, so that the
//! next batch is distilled on the runtime's worker threads while the pipeline awaits the
//! commit of the current one (distilling on the pipeline's task left the store idle meanwhile,
//! and the distiller idle while the store worked). The pipeline only sorts the results into
//! its batch. Every source distils its messages in the order it received them and sends them
//! in that order, so the per-channel order the acknowledgements rely on is unchanged.
//!
//! A notification of a few KB takes tens of microseconds, well within what a runtime worker
//! may spend between awaits. A large one (up to `max_message_bytes`, which may be set to
//! megabytes) can take milliseconds: it is distilled inside [`tokio::task::block_in_place`],
//! which hands the worker's other tasks to another thread meanwhile. A message above
//! `max_message_bytes` is not parsed at all.

use std::sync::Arc;

use tach_distiller::{Distiller, Event};
use tokio::runtime::{Handle, RuntimeFlavor};

/// From this size on, a message is distilled with the worker's other tasks handed off.
const BLOCKING_BYTES: usize = 64 << 10;

/// What distilling made of a message.
#[derive(Debug)]
pub(crate) enum Distilled {
    /// An event to store.
    Event(Event),
    /// No event definition matched (or no trait had a value): acknowledged, not stored.
    Dropped,
    /// Not a notification (a poison message): why.
    Poison(String),
    /// Larger than `max_message_bytes`: a poison message, not parsed.
    TooBig,
}

/// The distiller shared by the sources, with the size above which messages are not parsed.
pub(crate) struct Distil {
    distiller: Distiller,
    max_message_bytes: usize,
}

impl std::fmt::Debug for Distil {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distil")
            .field("max_message_bytes", &self.max_message_bytes)
            .finish_non_exhaustive()
    }
}

impl Distil {
    /// Shares `distiller` between the sources; larger messages than `max_message_bytes` are
    /// poison without being parsed.
    pub fn new(distiller: Distiller, max_message_bytes: usize) -> Arc<Distil> {
        Arc::new(Distil {
            distiller,
            max_message_bytes,
        })
    }

    /// Distils `payload` on the calling task. Call it from a task of the runtime: a large
    /// message on a multi-threaded runtime is distilled with the worker's other tasks handed
    /// off to another thread; on a current-thread runtime there is none to hand them to.
    pub fn distil(&self, payload: &[u8]) -> Distilled {
        if payload.len() > self.max_message_bytes {
            return Distilled::TooBig;
        }
        if payload.len() >= BLOCKING_BYTES && hands_off_blocking() {
            tokio::task::block_in_place(|| self.distil_here(payload))
        } else {
            self.distil_here(payload)
        }
    }

    fn distil_here(&self, payload: &[u8]) -> Distilled {
        match self.distiller.distill_bytes(payload) {
            Ok(Some(event)) => Distilled::Event(event),
            Ok(None) => Distilled::Dropped,
            Err(reason) => Distilled::Poison(reason.to_string()),
        }
    }
}

/// True when running on a multi-threaded runtime, where `block_in_place` is allowed.
fn hands_off_blocking() -> bool {
    Handle::try_current().is_ok_and(|h| matches!(h.runtime_flavor(), RuntimeFlavor::MultiThread))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const DEFINITIONS: &str = "- event_type: compute.instance.*\n  traits:\n    \
        tenant_id:\n      fields: payload.tenant_id\n";

    fn distil(max_message_bytes: usize) -> Arc<Distil> {
        let distiller = Distiller::from_yaml(DEFINITIONS, Path::new("test.yaml"), false).unwrap();
        Distil::new(distiller, max_message_bytes)
    }

    /// A notification of at least `size` bytes (a long `padding` field in its payload).
    fn notification(size: usize) -> Vec<u8> {
        format!(
            r#"{{"event_type": "compute.instance.create.end", "message_id": "m-1",
                "timestamp": "2026-01-01 00:00:00.000000",
                "payload": {{"tenant_id": "t-1", "padding": "{}"}}}}"#,
            "x".repeat(size)
        )
        .into_bytes()
    }

    #[test]
    fn events_drops_and_poison_are_told_apart() {
        let d = distil(1 << 20);
        match d.distil(&notification(10)) {
            Distilled::Event(e) => assert_eq!(e.message_id, "m-1"),
            other => panic!("expected an event, got {other:?}"),
        }
        assert!(matches!(
            d.distil(br#"{"event_type": "image.update", "message_id": "m-2"}"#),
            Distilled::Dropped
        ));
        match d.distil(b"{not json") {
            Distilled::Poison(reason) => assert!(reason.contains("not valid JSON"), "{reason}"),
            other => panic!("expected poison, got {other:?}"),
        }
    }

    #[test]
    fn a_message_above_the_limit_is_not_parsed() {
        let d = distil(100);
        // Invalid JSON: parsing it would have made it `Poison`.
        let mut big = b"{not json".to_vec();
        big.resize(101, b' ');
        assert!(matches!(d.distil(&big), Distilled::TooBig));
        // At the limit it is parsed.
        big.truncate(100);
        assert!(matches!(d.distil(&big), Distilled::Poison(_)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_message_is_distilled_on_a_multi_threaded_runtime() {
        let d = distil(16 << 20);
        let payload = notification(4 << 20);
        assert!(payload.len() >= BLOCKING_BYTES);
        let handle = tokio::spawn(async move {
            match d.distil(&payload) {
                Distilled::Event(e) => e.message_id,
                other => panic!("expected an event, got {other:?}"),
            }
        });
        assert_eq!(handle.await.unwrap(), "m-1");
    }

    #[tokio::test]
    async fn a_large_message_is_distilled_on_a_current_thread_runtime() {
        // `block_in_place` would panic here; the message is distilled in place instead.
        let d = distil(16 << 20);
        let payload = notification(1 << 20);
        assert!(matches!(d.distil(&payload), Distilled::Event(_)));
    }
}
