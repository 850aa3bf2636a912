//! Where nodes sit on the circle: their hash order kept, spread apart so no
//! two overlap (pure geometry, tested natively; presentation only, the
//! simulation never reads it).
//!
//! A node's true place is the angle of its placement hash. Hashes bunch up,
//! so drawn at their exact angles neighbours cover each other. The drawn
//! angles are the closest ones (least squares) to the true ones such that
//! consecutive nodes, clockwise, are at least a minimum angle apart: the
//! clockwise order never changes, and a node moves only as far as its
//! crowd needs.

use core::f64::consts::TAU;

/// Spread `angles` (radians, any values; taken modulo a full turn) so that
/// clockwise neighbours are at least `min_gap` apart, keeping the clockwise
/// order. Returns one angle per input, in `[0, TAU)`, in the input's order.
///
/// When `min_gap * n` exceeds a full turn the nodes are spaced evenly (in
/// their order). Ties are ordered by input index.
pub fn spread_angles(angles: &[f64], min_gap: f64) -> Vec<f64> {
    let n = angles.len();
    if n <= 1 {
        return angles.iter().map(|a| a.rem_euclid(TAU)).collect();
    }
    let g = if min_gap.is_finite() && min_gap > 0.0 {
        min_gap.min(TAU / n as f64)
    } else {
        0.0
    };
    let norm: Vec<f64> = angles.iter().map(|a| a.rem_euclid(TAU)).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| norm[*a].total_cmp(&norm[*b]).then(a.cmp(b)));

    // Start just after the widest clockwise gap: that is where the
    // unrolled sequence has the most room to wrap around.
    let gap_after = |j: usize| {
        let (a, b) = (norm[order[j]], norm[order[(j + 1) % n]]);
        if j + 1 == n {
            b + TAU - a
        } else {
            b - a
        }
    };
    let widest = (0..n)
        .max_by(|a, b| gap_after(*a).total_cmp(&gap_after(*b)))
        .unwrap_or(0);
    let start = (widest + 1) % n;
    let seq: Vec<usize> = (0..n).map(|j| order[(start + j) % n]).collect();
    let mut unrolled = Vec::with_capacity(n);
    let mut prev = f64::NEG_INFINITY;
    for &i in &seq {
        let mut a = norm[i];
        while a < prev {
            a += TAU;
        }
        unrolled.push(a);
        prev = a;
    }

    // x[j+1] - x[j] >= g  <=>  y = x - j*g is non-decreasing: the least
    // squares fit is an isotonic regression of b = a - j*g (pool adjacent
    // violators).
    let b: Vec<f64> = unrolled
        .iter()
        .enumerate()
        .map(|(j, a)| a - j as f64 * g)
        .collect();
    let y = isotonic(&b);
    // Around the wrap: x[0] + TAU - x[n-1] >= g  <=>  y span <= TAU - n*g.
    let room = (TAU - n as f64 * g).max(0.0);
    let (y0, span) = (y[0], y[n - 1] - y[0]);
    let scale = if span > room && span > 0.0 {
        room / span
    } else {
        1.0
    };
    let mut out = vec![0.0; n];
    for (j, &i) in seq.iter().enumerate() {
        let yj = y0 + (y[j] - y0) * scale;
        out[i] = (yj + j as f64 * g).rem_euclid(TAU);
    }
    out
}

/// The non-decreasing sequence closest to `b` in least squares.
fn isotonic(b: &[f64]) -> Vec<f64> {
    // Blocks of (sum, count); merge while a block's mean is below the
    // previous one's.
    let mut blocks: Vec<(f64, usize)> = Vec::with_capacity(b.len());
    for &v in b {
        blocks.push((v, 1));
        while blocks.len() >= 2 {
            let (s1, c1) = blocks[blocks.len() - 1];
            let (s0, c0) = blocks[blocks.len() - 2];
            if s0 / c0 as f64 <= s1 / c1 as f64 {
                break;
            }
            blocks.pop();
            let last = blocks.len() - 1;
            blocks[last] = (s0 + s1, c0 + c1);
        }
    }
    let mut out = Vec::with_capacity(b.len());
    for (s, c) in blocks {
        out.extend(core::iter::repeat_n(s / c as f64, c));
    }
    out
}

/// The clockwise angle from `a` to `b` in `[0, TAU)`.
pub fn clockwise(a: f64, b: f64) -> f64 {
    (b - a).rem_euclid(TAU)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[f64], g: f64) -> Vec<f64> {
        let out = spread_angles(input, g);
        assert_eq!(out.len(), input.len());
        let n = input.len();
        let want = g.min(TAU / n as f64);
        // Same clockwise order as the input.
        let mut by_in: Vec<usize> = (0..n).collect();
        by_in.sort_by(|a, b| {
            input[*a]
                .rem_euclid(TAU)
                .total_cmp(&input[*b].rem_euclid(TAU))
                .then(a.cmp(b))
        });
        let mut by_out: Vec<usize> = (0..n).collect();
        by_out.sort_by(|a, b| out[*a].total_cmp(&out[*b]));
        let k = by_out.iter().position(|i| *i == by_in[0]).unwrap();
        by_out.rotate_left(k);
        assert_eq!(by_in, by_out, "clockwise order kept");
        for j in 0..n {
            let (a, b) = (out[by_out[j]], out[by_out[(j + 1) % n]]);
            assert!(
                clockwise(a, b) >= want - 1e-9,
                "gap {} < {want}",
                clockwise(a, b)
            );
        }
        out
    }

    #[test]
    fn spread_nodes_keep_their_order_and_a_minimum_gap() {
        // Already spread: nothing moves.
        let even: Vec<f64> = (0..8).map(|i| i as f64 * TAU / 8.0).collect();
        let out = check(&even, 0.1);
        for (a, b) in even.iter().zip(&out) {
            assert!((a - b).abs() < 1e-9);
        }
        // A crowd of three at the same place, one far away.
        let out = check(&[1.0, 1.0, 1.0, 4.0], 0.2);
        assert!((out[3] - 4.0).abs() < 1e-9, "the lone node stays");
        assert!((out[1] - 1.0).abs() < 1e-9, "the crowd is centred");
        // A crowd across the top (wrapping past zero).
        check(&[TAU - 0.01, 0.0, 0.01, 0.02, 3.0], 0.3);
        // More than fits: evenly spaced in order.
        check(&[0.5, 0.4, 0.3, 0.2, 0.1], 2.0);
        // Pseudo-random angles, many sizes.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for n in [2, 3, 7, 60, 500] {
            let v: Vec<f64> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 11) as f64 / (1u64 << 53) as f64 * TAU
                })
                .collect();
            check(&v, 0.9 * TAU / n as f64);
        }
    }

    #[test]
    fn isotonic_pools_violators() {
        assert_eq!(isotonic(&[1.0, 3.0, 2.0, 4.0]), vec![1.0, 2.5, 2.5, 4.0]);
        assert_eq!(isotonic(&[3.0, 2.0, 1.0]), vec![2.0, 2.0, 2.0]);
    }
}
