//! One-pass lookup of every plain field path a definition uses.
//!
//! sonic-rs objects are lists of entries: finding a key scans them, and a definition asks
//! for ~40 keys of the same few objects (`payload` has ~45 keys). Instead, the plain paths
//! (`payload.tenant_id`, `payload.image_meta.'org...'`) of a definition are merged into a
//! trie at load time; per notification, each object on those paths is walked once and every
//! key looked up in a small hash table of the wanted children. Slots are filled parent
//! first, so one pass in node order resolves the whole trie. With duplicate keys the first
//! occurrence wins, as with sonic-rs's own lookup.

use sonic_rs::{JsonContainerTrait, Value};

/// The trie of wanted keys; node 0 is the document root.
#[derive(Debug, Clone)]
pub(crate) struct Resolver {
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Clone)]
struct TrieNode {
    key: Box<str>,
    children: Vec<u32>,
    /// Open-addressing table of `child index + 1` (0 = empty), built by `finish`.
    table: Box<[u32]>,
}

/// The resolved value of every trie node for one document (`None`: absent).
pub(crate) type Slots<'v> = Vec<Option<&'v Value>>;

impl Resolver {
    /// An empty trie (just the root).
    pub fn new() -> Resolver {
        Resolver {
            nodes: vec![TrieNode {
                key: "".into(),
                children: Vec::new(),
                table: Box::new([]),
            }],
        }
    }

    /// Adds a chain of keys and returns the node of its last key.
    pub fn insert(&mut self, keys: &[Box<str>]) -> u32 {
        let mut at = 0usize;
        for key in keys {
            let existing = self.nodes[at]
                .children
                .iter()
                .copied()
                .find(|&c| self.nodes[c as usize].key == *key);
            at = match existing {
                Some(child) => child as usize,
                None => {
                    let child = self.nodes.len();
                    self.nodes.push(TrieNode {
                        key: key.clone(),
                        children: Vec::new(),
                        table: Box::new([]),
                    });
                    // Node counts are bounded by the definition file's size.
                    self.nodes[at].children.push(child as u32);
                    child
                }
            };
        }
        at as u32
    }

    /// Builds the lookup tables; call once after the last `insert`.
    pub fn finish(&mut self) {
        for i in 0..self.nodes.len() {
            let children = &self.nodes[i].children;
            if children.is_empty() {
                continue;
            }
            let size = (children.len() * 2).next_power_of_two();
            let mut table = vec![0u32; size].into_boxed_slice();
            for &child in children {
                let mut slot =
                    hash(self.nodes[child as usize].key.as_bytes()) as usize & (size - 1);
                while table[slot] != 0 {
                    slot = (slot + 1) & (size - 1);
                }
                table[slot] = child + 1;
            }
            self.nodes[i].table = table;
        }
    }

    /// The number of nodes (the length `resolve` gives the slots).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Fills `slots` with the value of every node in `doc`.
    pub fn resolve<'v>(&self, doc: &'v Value, slots: &mut Slots<'v>) {
        slots.clear();
        slots.resize(self.nodes.len(), None);
        slots[0] = Some(doc);
        for (i, node) in self.nodes.iter().enumerate() {
            if node.table.is_empty() {
                continue;
            }
            let Some(object) = slots[i].and_then(|v| v.as_object()) else {
                continue;
            };
            let mask = node.table.len() - 1;
            let mut remaining = node.children.len();
            for (key, value) in object.iter() {
                let mut slot = hash(key.as_bytes()) as usize & mask;
                loop {
                    let entry = node.table[slot];
                    if entry == 0 {
                        break;
                    }
                    let child = (entry - 1) as usize;
                    if *self.nodes[child].key == *key {
                        if slots[child].is_none() {
                            slots[child] = Some(value);
                            remaining -= 1;
                        }
                        break;
                    }
                    slot = (slot + 1) & mask;
                }
                if remaining == 0 {
                    break;
                }
            }
        }
    }
}

/// A constant-time hash of a key: its length and its first and last 8 bytes (overlapping
/// or zero-padded for short keys), multiplied and folded. Keys of one object that share both
/// ends and length merely probe one more slot.
#[inline]
fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let len = bytes.len();
    let (head, tail) = if len >= 8 {
        (load(&bytes[..8]), load(&bytes[len - 8..]))
    } else {
        let mut word = [0u8; 8];
        word[..len].copy_from_slice(bytes);
        (u64::from_le_bytes(word), 0)
    };
    let h = (head ^ tail.rotate_left(29) ^ len as u64).wrapping_mul(K);
    // The multiplication mixes best into the high bits; fold them into the low ones we mask.
    h ^ (h >> 32)
}

/// Eight bytes as a little-endian word; `bytes` is exactly 8 long.
#[inline]
fn load(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(path: &str) -> Vec<Box<str>> {
        path.split('.').map(Box::from).collect()
    }

    #[test]
    fn resolves_every_wanted_path_in_one_pass() {
        let doc: Value = sonic_rs::from_str(
            r#"{"a": {"b": 1, "c": {"d": "x"}, "b": 2}, "e": null, "f": [1], "g": "s"}"#,
        )
        .unwrap();
        let mut resolver = Resolver::new();
        let ab = resolver.insert(&keys("a.b"));
        let acd = resolver.insert(&keys("a.c.d"));
        let e = resolver.insert(&keys("e"));
        let missing = resolver.insert(&keys("a.zz"));
        let through_list = resolver.insert(&keys("f.x"));
        let through_string = resolver.insert(&keys("g.x"));
        assert_eq!(resolver.insert(&keys("a.b")), ab);
        resolver.finish();
        let mut slots = Slots::new();
        resolver.resolve(&doc, &mut slots);
        assert_eq!(slots.len(), resolver.len());
        let get = |n: u32| slots[n as usize].map(|v| sonic_rs::to_string(v).unwrap());
        // The first of duplicate keys wins.
        assert_eq!(get(ab).as_deref(), Some("1"));
        assert_eq!(get(acd).as_deref(), Some("\"x\""));
        assert_eq!(get(e).as_deref(), Some("null"));
        assert_eq!(get(missing), None);
        assert_eq!(get(through_list), None);
        assert_eq!(get(through_string), None);
    }

    #[test]
    fn many_children_share_a_table() {
        let names: Vec<String> = (0..100).map(|i| format!("key_{i}")).collect();
        let mut resolver = Resolver::new();
        let nodes: Vec<u32> = names
            .iter()
            .map(|n| resolver.insert(&[Box::from("p"), Box::from(n.as_str())]))
            .collect();
        resolver.finish();
        let body: Vec<String> = names
            .iter()
            .rev()
            .map(|n| format!("\"{n}\": \"{n}\""))
            .collect();
        let doc: Value = sonic_rs::from_str(&format!("{{\"p\": {{{}}}}}", body.join(","))).unwrap();
        let mut slots = Slots::new();
        resolver.resolve(&doc, &mut slots);
        for (name, node) in names.iter().zip(nodes) {
            let value = slots[node as usize].and_then(|v| sonic_rs::JsonValueTrait::as_str(v));
            assert_eq!(value, Some(name.as_str()));
        }
    }
}
