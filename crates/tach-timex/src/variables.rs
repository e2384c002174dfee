//! Where an expression's `$variables` come from: the [`Variables`] trait and its
//! implementations for maps, lists of pairs and closures.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};

use chrono::{DateTime, Utc};

/// A lookup of datetime variables by name (without the `$`).
pub trait Variables {
    /// The value of variable `name`, if it is defined.
    fn get(&self, name: &str) -> Option<DateTime<Utc>>;
}

/// No variables at all (`$timestamp` still defaults to now).
impl Variables for () {
    fn get(&self, _name: &str) -> Option<DateTime<Utc>> {
        None
    }
}

impl<K, S> Variables for HashMap<K, DateTime<Utc>, S>
where
    K: Borrow<str> + Hash + Eq,
    S: BuildHasher,
{
    fn get(&self, name: &str) -> Option<DateTime<Utc>> {
        HashMap::get(self, name).copied()
    }
}

impl<K> Variables for BTreeMap<K, DateTime<Utc>>
where
    K: Borrow<str> + Ord,
{
    fn get(&self, name: &str) -> Option<DateTime<Utc>> {
        BTreeMap::get(self, name).copied()
    }
}

/// Name/value pairs; the first pair with the name wins.
impl<S: AsRef<str>> Variables for [(S, DateTime<Utc>)] {
    fn get(&self, name: &str) -> Option<DateTime<Utc>> {
        self.iter()
            .find(|(key, _)| key.as_ref() == name)
            .map(|(_, value)| *value)
    }
}

impl<S: AsRef<str>, const N: usize> Variables for [(S, DateTime<Utc>); N] {
    fn get(&self, name: &str) -> Option<DateTime<Utc>> {
        Variables::get(self.as_slice(), name)
    }
}

impl<S: AsRef<str>> Variables for Vec<(S, DateTime<Utc>)> {
    fn get(&self, name: &str) -> Option<DateTime<Utc>> {
        Variables::get(self.as_slice(), name)
    }
}

/// Any closure from a name to a value, e.g. `|name| event.datetime_trait(name)`.
impl<F> Variables for F
where
    F: Fn(&str) -> Option<DateTime<Utc>>,
{
    fn get(&self, name: &str) -> Option<DateTime<Utc>> {
        self(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_datetime;

    fn lookup(vars: &(impl Variables + ?Sized), name: &str) -> Option<DateTime<Utc>> {
        vars.get(name)
    }

    #[test]
    fn every_container_finds_its_variables() {
        let t = parse_datetime("2014-08-01T02:10:23Z").expect("valid");
        let hash: HashMap<String, DateTime<Utc>> = HashMap::from([("a".to_owned(), t)]);
        let btree: BTreeMap<&str, DateTime<Utc>> = BTreeMap::from([("a", t)]);
        let pairs = [("a", t)];
        let owned = vec![("a".to_owned(), t)];
        let closure = |name: &str| (name == "a").then_some(t);
        assert_eq!(lookup(&hash, "a"), Some(t));
        assert_eq!(lookup(&btree, "a"), Some(t));
        assert_eq!(lookup(&pairs, "a"), Some(t));
        assert_eq!(lookup(&pairs[..], "a"), Some(t));
        assert_eq!(lookup(&owned, "a"), Some(t));
        assert_eq!(lookup(&closure, "a"), Some(t));
        assert_eq!(lookup(&hash, "b"), None);
        assert_eq!(lookup(&btree, "b"), None);
        assert_eq!(lookup(&pairs, "b"), None);
        assert_eq!(lookup(&owned, "b"), None);
        assert_eq!(lookup(&closure, "b"), None);
        assert_eq!(lookup(&(), "a"), None);
    }
}
