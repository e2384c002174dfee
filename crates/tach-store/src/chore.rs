//! Background chores that run one at a time ([`crate::checkpoint`], [`crate::upkeep`]).

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a chore is running: claimed by one caller at a time, released when its run ends.
#[derive(Debug, Default)]
pub(crate) struct OneAtATime {
    running: AtomicBool,
}

impl OneAtATime {
    /// Claims the chore; false while a claimed run has not ended. The claimer's run takes
    /// [`OneAtATime::release_on_drop`] first thing (a run's task dropped before it first runs,
    /// which happens only when its runtime shuts down, keeps the claim).
    pub(crate) fn claim(&self) -> bool {
        self.running
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// For the claim's holder: releases the claim when the returned guard drops, when the run
    /// ends or when its task is dropped unfinished.
    pub(crate) fn release_on_drop(&self) -> Release<'_> {
        Release(&self.running)
    }
}

/// Releases a [`OneAtATime`] claim when dropped.
pub(crate) struct Release<'a>(&'a AtomicBool);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_until_its_guard_drops() {
        let chore = OneAtATime::default();
        assert!(chore.claim());
        assert!(!chore.claim(), "claimed twice");
        let guard = chore.release_on_drop();
        assert!(!chore.claim());
        drop(guard);
        assert!(chore.claim(), "released by the guard");
    }
}
