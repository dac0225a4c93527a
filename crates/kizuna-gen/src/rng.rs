//! Seeded randomness: one PCG stream per purpose, with sampling helpers whose results depend only
//! on the seed (no algorithm from another crate that could change between versions).

use rand_core::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// SplitMix64 finaliser: spreads a counter or a seed over all 64 bits.
pub(crate) const fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A deterministic random stream.
pub(crate) struct R(Pcg64Mcg);

impl R {
    /// The stream `stream` of the generator seeded with `seed`.
    pub(crate) fn derive(seed: u64, stream: u64) -> Self {
        R(Pcg64Mcg::seed_from_u64(mix(seed ^ mix(stream.wrapping_add(0x5851_f42d_4c95_7f2d)))))
    }

    pub(crate) fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (0 when `n` is 0). Multiply-shift: bias below 2^-40 for our ranges.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.u64()) * u128::from(n)) >> 64) as u64
    }

    pub(crate) fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo { lo } else { lo + self.below(hi - lo + 1) }
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn f64(&mut self) -> f64 {
        (self.u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Exponentially distributed with the given mean.
    pub(crate) fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// Pareto(x_m = 1, alpha): heavy-tailed, >= 1.
    pub(crate) fn pareto(&mut self, alpha: f64) -> f64 {
        (1.0 - self.f64()).powf(-1.0 / alpha)
    }

    /// One element of a non-empty constant table.
    pub(crate) fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.index(xs.len())]
    }

    /// One element of a non-empty constant table of `(value, weight)`.
    pub(crate) fn weighted<'a, T>(&mut self, xs: &'a [(T, u32)]) -> &'a T {
        let total: u64 = xs.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut x = self.below(total);
        for (v, w) in xs {
            if x < u64::from(*w) {
                return v;
            }
            x -= u64::from(*w);
        }
        &xs[xs.len() - 1].0
    }

    pub(crate) fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.index(i + 1);
            xs.swap(i, j);
        }
    }
}

/// A cumulative weight table for sampling an index in proportion to its weight.
pub(crate) struct Cdf {
    cum: Vec<f64>,
}

impl Cdf {
    pub(crate) fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut acc = 0.0;
        let cum = weights
            .into_iter()
            .map(|w| {
                acc += w.max(0.0);
                acc
            })
            .collect();
        Cdf { cum }
    }

    /// An index, or `None` when the table is empty or all weights are zero.
    pub(crate) fn sample(&self, r: &mut R) -> Option<usize> {
        let total = *self.cum.last()?;
        if total <= 0.0 {
            return None;
        }
        let x = r.f64() * total;
        Some(self.cum.partition_point(|c| *c <= x).min(self.cum.len() - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| R::derive(7, 1).u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(R::derive(7, 1).u64(), R::derive(7, 2).u64());
        assert_ne!(R::derive(7, 1).u64(), R::derive(8, 1).u64());
    }

    #[test]
    fn below_and_cdf_stay_in_range() {
        let mut r = R::derive(1, 1);
        for n in [1u64, 2, 3, 1000, u64::MAX] {
            for _ in 0..100 {
                assert!(r.below(n) < n);
            }
        }
        let cdf = Cdf::new([0.0, 1.0, 0.0, 3.0]);
        let mut seen = [0usize; 4];
        for _ in 0..4000 {
            seen[cdf.sample(&mut r).expect("non-empty")] += 1;
        }
        assert_eq!(seen[0], 0);
        assert_eq!(seen[2], 0);
        assert!(seen[3] > 2 * seen[1], "{seen:?}");
        assert!(Cdf::new([]).sample(&mut r).is_none());
    }
}
