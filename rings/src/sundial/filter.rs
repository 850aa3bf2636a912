//! The Bloom filter over record digests that the push-pull exchange sends as its digest.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A Bloom filter over record digests (the "digest" half of push-pull).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Per-filter seed: false positives differ between filters.
    pub seed: u64,
    /// Probes per item.
    pub k: u8,
    /// The bits.
    pub bits: Vec<u8>,
    /// Which slice of the digest space this filter covers
    /// (`digest % parts == part`); a large view is described by several
    /// filters, one per frame.
    pub part: u16,
    /// Number of slices (1 = the whole view).
    pub parts: u16,
}

impl Filter {
    /// A filter that covers everything and contains nothing (ask for all).
    pub fn empty() -> Filter {
        Filter {
            seed: 0,
            k: 1,
            bits: Vec::new(),
            part: 0,
            parts: 1,
        }
    }

    /// Whether digest `h` falls in this filter's slice.
    pub fn covers(&self, h: u64) -> bool {
        self.parts <= 1 || h % u64::from(self.parts) == u64::from(self.part)
    }

    pub(super) fn build(
        seed: u64,
        bytes: usize,
        items: impl ExactSizeIterator<Item = u64> + Clone,
    ) -> Filter {
        let n = items.len().max(1);
        let m_bits = (bytes * 8).max(8);
        let k = ((m_bits as f64 / n as f64) * core::f64::consts::LN_2).round() as usize;
        let mut f = Filter {
            seed,
            k: k.clamp(1, 8) as u8,
            bits: alloc::vec![0; m_bits / 8],
            part: 0,
            parts: 1,
        };
        for h in items {
            f.insert(h);
        }
        f
    }

    pub(super) fn probes(&self, h: u64) -> impl Iterator<Item = usize> + '_ {
        // Items are already XXH3 digests: a cheap seeded mix is enough to
        // make each filter's false positives independent of the last one's.
        let x = splitmix64(h ^ self.seed);
        let (h1, h2) = (x & 0xffff_ffff, (x >> 32) | 1);
        let m = (self.bits.len() * 8) as u64;
        (0..u64::from(self.k))
            .map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % m.max(1)) as usize)
    }

    pub(super) fn insert(&mut self, h: u64) {
        if self.bits.is_empty() {
            return;
        }
        let x = splitmix64(h ^ self.seed);
        let (h1, h2) = (x & 0xffff_ffff, (x >> 32) | 1);
        let m = (self.bits.len() * 8) as u64;
        for i in 0..u64::from(self.k) {
            let p = (h1.wrapping_add(i.wrapping_mul(h2)) % m) as usize;
            self.bits[p / 8] |= 1 << (p % 8);
        }
    }

    /// Whether `h` may be in the set (false positives possible, no false
    /// negatives).
    pub fn contains(&self, h: u64) -> bool {
        if self.bits.is_empty() {
            return false;
        }
        self.probes(h)
            .all(|p| self.bits[p / 8] & (1 << (p % 8)) != 0)
    }
}
