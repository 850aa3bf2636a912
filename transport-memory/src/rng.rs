//! Seeded randomness: per-node streams derived from the world seed, and the
//! few distributions the network model needs, computed with integer and basic
//! IEEE-754 arithmetic only so native and wasm32 builds draw identical values.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The RNG type used throughout the simulator.
pub type SimRng = ChaCha8Rng;

/// Which of a node's independent streams to derive.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Handed to the node's rings.
    Ring = 0,
    /// Used for the network decisions about the node's outgoing messages.
    Net = 1,
}

/// The RNG of `stream` for node `node` in a world seeded with `seed`.
///
/// Each node gets its own ChaCha stream, so adding a node never perturbs the
/// draws of the others.
pub(crate) fn node_rng(seed: u64, node: u64, stream: Stream) -> SimRng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(node.wrapping_mul(2).wrapping_add(stream as u64));
    rng
}

/// A uniformly distributed `f64` in `[0, 1)` with 53 bits of precision.
pub(crate) fn unit_f64(rng: &mut dyn RngCore) -> f64 {
    // An integer below 2^53 converts exactly; scaling by a power of two is exact.
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// True with probability `p` (`p <= 0` never draws).
pub(crate) fn chance(rng: &mut dyn RngCore, p: f64) -> bool {
    if p <= 0.0 {
        return false;
    }
    if p >= 1.0 {
        // Still draw, so a probability of 1 consumes the stream like any other.
        rng.next_u64();
        return true;
    }
    unit_f64(rng) < p
}

/// Uniform integer in `[lo, hi]` (inclusive), via a widening multiply.
pub(crate) fn uniform_u64(rng: &mut dyn RngCore, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    let span = hi - lo;
    if span == u64::MAX {
        return rng.next_u64();
    }
    let x = u128::from(rng.next_u64()) * u128::from(span + 1);
    lo + (x >> 64) as u64
}

/// Natural logarithm of `x` in `(0, 1]`, from basic arithmetic only (no
/// platform `libm`), so the result is bit-identical on every target.
pub(crate) fn ln_unit(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NEG_INFINITY;
    }
    // x = m * 2^e with m in [1, 2).
    let bits = x.to_bits();
    let exp_bits = ((bits >> 52) & 0x7ff) as i64;
    let (m, e) = if exp_bits == 0 {
        // Subnormal: scale up first.
        let y = x * (1u64 << 54) as f64;
        let b = y.to_bits();
        let eb = ((b >> 52) & 0x7ff) as i64;
        (
            f64::from_bits((b & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000),
            eb - 1023 - 54,
        )
    } else {
        (
            f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000),
            exp_bits - 1023,
        )
    };
    // ln(m) = 2 atanh(s), s = (m - 1) / (m + 1) in [0, 1/3).
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    let mut k = 1.0;
    for _ in 0..30 {
        sum += term / k;
        term *= s2;
        k += 2.0;
    }
    const LN_2: f64 = core::f64::consts::LN_2;
    e as f64 * LN_2 + 2.0 * sum
}

/// An exponentially distributed value with the given mean.
pub(crate) fn exponential(rng: &mut dyn RngCore, mean: f64) -> f64 {
    // 1 - U is in (0, 1], so the log is finite.
    let u = 1.0 - unit_f64(rng);
    -ln_unit(u) * mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_matches_std_closely() {
        for &x in &[1.0, 0.5, 0.25, 0.1, 1e-3, 1e-10, 0.999_999, 0.7, 4.9e-324] {
            let a = ln_unit(x);
            let b = x.ln();
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{x}: {a} vs {b}");
        }
        assert_eq!(ln_unit(0.0), f64::NEG_INFINITY);
    }

    #[test]
    fn streams_are_independent_and_reproducible() {
        let mut a = node_rng(7, 1, Stream::Ring);
        let mut b = node_rng(7, 1, Stream::Ring);
        let mut c = node_rng(7, 1, Stream::Net);
        let mut d = node_rng(7, 2, Stream::Ring);
        let x = a.next_u64();
        assert_eq!(x, b.next_u64());
        assert_ne!(x, c.next_u64());
        assert_ne!(x, d.next_u64());
    }

    #[test]
    fn uniform_and_chance_stay_in_range() {
        let mut r = node_rng(1, 0, Stream::Net);
        for _ in 0..10_000 {
            let v = uniform_u64(&mut r, 5, 9);
            assert!((5..=9).contains(&v));
        }
        assert_eq!(uniform_u64(&mut r, 3, 3), 3);
        let hits = (0..100_000).filter(|_| chance(&mut r, 0.25)).count();
        assert!((23_000..27_000).contains(&hits), "{hits}");
        assert!(!chance(&mut r, 0.0));
        assert!(chance(&mut r, 1.0));
        let mean = (0..100_000).map(|_| exponential(&mut r, 2.0)).sum::<f64>() / 100_000.0;
        assert!((1.9..2.1).contains(&mean), "{mean}");
    }
}
