//! The events a process stored most recently, kept so that firing their streams soon after
//! does not read them back from the store.

use std::collections::{HashMap, VecDeque};

use tach_distiller::Event;

/// The last `capacity` stored events by id; the oldest is forgotten first.
#[derive(Debug)]
pub struct RecentEvents {
    capacity: usize,
    order: VecDeque<i64>,
    events: HashMap<i64, Event>,
    hits: u64,
    misses: u64,
}

impl RecentEvents {
    /// Keeps up to `capacity` events.
    pub fn new(capacity: usize) -> RecentEvents {
        RecentEvents {
            capacity,
            order: VecDeque::with_capacity(capacity),
            events: HashMap::with_capacity(capacity),
            hits: 0,
            misses: 0,
        }
    }

    /// Remembers event `id`, forgetting the oldest when full.
    pub fn insert(&mut self, id: i64, event: Event) {
        if self.capacity == 0 {
            return;
        }
        if self.events.insert(id, event).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.events.remove(&old);
            }
        }
    }

    /// A copy of event `id`, when remembered (counted as a hit or a miss).
    pub fn get(&mut self, id: i64) -> Option<Event> {
        let found = self.events.get(&id).cloned();
        if found.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        found
    }

    /// Events remembered now.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Lookups answered from memory and lookups that went to the store, so far.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn event(n: i64) -> Event {
        Event {
            message_id: format!("m{n}"),
            event_type: "x.start".to_owned(),
            timestamp: Utc.timestamp_opt(n, 0).single().unwrap(),
            traits: Vec::new(),
        }
    }

    #[test]
    fn forgets_the_oldest_beyond_capacity_and_counts_lookups() {
        let mut recent = RecentEvents::new(2);
        recent.insert(1, event(1));
        recent.insert(2, event(2));
        recent.insert(3, event(3));
        assert_eq!(recent.len(), 2);
        assert!(recent.get(1).is_none());
        assert_eq!(recent.get(2).map(|e| e.message_id), Some("m2".to_owned()));
        assert_eq!(recent.get(3).map(|e| e.message_id), Some("m3".to_owned()));
        assert_eq!(recent.hits_and_misses(), (2, 1));
    }

    #[test]
    fn a_repeated_id_is_kept_once() {
        let mut recent = RecentEvents::new(2);
        recent.insert(1, event(1));
        recent.insert(1, event(5));
        recent.insert(2, event(2));
        assert_eq!(recent.len(), 2);
        assert_eq!(recent.get(1).map(|e| e.message_id), Some("m5".to_owned()));
    }

    #[test]
    fn capacity_zero_remembers_nothing() {
        let mut recent = RecentEvents::new(0);
        recent.insert(1, event(1));
        assert!(recent.is_empty());
        assert!(recent.get(1).is_none());
    }
}
