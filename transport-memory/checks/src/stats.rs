//! Order statistics shared by the checkers' reports.

use serde::Serialize;

/// The value at quantile `q` (0..=1) of ascending `sorted`, at index
/// `round((len - 1) * q)`; 0 when empty.
pub fn percentile_rounded(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The nearest-rank `p` percentile (0..=1) of ascending `sorted`: the
/// value at rank `ceil(p * len)` (at least the first); `None` when empty.
pub fn nearest_rank<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

/// Percentiles of one metric over runs.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Spread {
    /// Median.
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

/// The nearest-rank p50 and p99 and the maximum of `xs` (all 0 when empty).
pub fn spread(mut xs: Vec<f64>) -> Spread {
    xs.sort_by(|a, b| a.total_cmp(b));
    Spread {
        p50: nearest_rank(&xs, 0.50).unwrap_or(0.0),
        p99: nearest_rank(&xs, 0.99).unwrap_or(0.0),
        max: *xs.last().unwrap_or(&0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounded_percentile_picks_the_rounded_index() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile_rounded(&v, 0.5), 6); // round(4.5) = 5
        assert_eq!(percentile_rounded(&v, 0.99), 10);
        assert_eq!(percentile_rounded(&v, 0.0), 1);
        assert_eq!(percentile_rounded(&[], 0.5), 0);
    }

    #[test]
    fn nearest_rank_is_the_ceiling_rank() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(nearest_rank(&v, 0.5), Some(5));
        assert_eq!(nearest_rank(&v, 0.99), Some(10));
        assert_eq!(nearest_rank(&v, 0.0), Some(1));
        assert_eq!(nearest_rank::<u64>(&[], 0.5), None);
        // The median rank equals the lower median `(len - 1) / 2`.
        for len in 1..50usize {
            let v: Vec<usize> = (0..len).collect();
            assert_eq!(nearest_rank(&v, 0.5), Some((len - 1) / 2), "len {len}");
        }
    }

    #[test]
    fn spread_sorts_first() {
        let s = spread(vec![3.0, 1.0, 2.0]);
        assert_eq!((s.p50, s.p99, s.max), (2.0, 3.0, 3.0));
        assert_eq!(spread(Vec::new()).max, 0.0);
    }
}
