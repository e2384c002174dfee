//! The active key: a stable 128-bit hash naming "the open stream of this trigger for these
//! distinguishing values".
//!
//! `streams.active_key` is UNIQUE, and a stream holds its key only while it is open for new
//! events, so the database itself guarantees at most one active stream per trigger and values,
//! whichever process or host creates it. The hash is FNV-1a 128 over
//! `len(trigger_name) as u64 little-endian ‖ trigger_name ‖ distinguishing_key`, written as 32
//! lowercase hex digits.
//!
//! **This function must never change**: keys already stored in a database would no longer match
//! and ingest would open a second stream beside every open one.

const FNV_OFFSET_BASIS: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
const FNV_PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

fn fnv1a_128(mut hash: u128, bytes: &[u8]) -> u128 {
    for &b in bytes {
        hash ^= u128::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The active key (32 hex digits) of the open stream of `trigger_name` for `distinguishing_key`.
pub fn active_key(trigger_name: &str, distinguishing_key: &str) -> String {
    let len = (trigger_name.len() as u64).to_le_bytes();
    let mut hash = fnv1a_128(FNV_OFFSET_BASIS, &len);
    hash = fnv1a_128(hash, trigger_name.as_bytes());
    hash = fnv1a_128(hash, distinguishing_key.as_bytes());
    format!("{hash:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_128_matches_the_published_vectors() {
        assert_eq!(fnv1a_128(FNV_OFFSET_BASIS, b""), FNV_OFFSET_BASIS);
        assert_eq!(
            fnv1a_128(FNV_OFFSET_BASIS, b"a"),
            0xd228cb696f1a8caf78912b704e4a8964
        );
        assert_eq!(
            fnv1a_128(FNV_OFFSET_BASIS, b"foobar"),
            0x343e1662793c64bf6f0d3597ba446f18
        );
    }

    #[test]
    fn active_key_is_pinned() {
        // Pinned values: if these change, every open stream in every database is orphaned.
        assert_eq!(active_key("", ""), "9d30c1f78465995be47dda5e4e4e77ed");
        assert_eq!(
            active_key("usage", "instance_id=abc"),
            "675c085f92b6bea3876c37348cc5c505"
        );
    }

    #[test]
    fn trigger_and_key_boundaries_do_not_collide() {
        assert_ne!(active_key("ab", "c"), active_key("a", "bc"));
        assert_ne!(active_key("usage", "x"), active_key("usage", "y"));
    }
}
