//! Sorted runs: an append-friendly sorted multiset (a tiny LSM). New entries are collected,
//! sorted into a run when sealed, and runs of similar size are merged, so the total work stays
//! O(n log n) and a lookup visits at most ~log2(n) runs. [`SortedRuns::compact`] leaves one run.

pub(crate) struct SortedRuns<T> {
    runs: Vec<Vec<T>>,
    pending: Vec<T>,
}

impl<T> Default for SortedRuns<T> {
    fn default() -> Self {
        SortedRuns { runs: Vec::new(), pending: Vec::new() }
    }
}

impl<T: Ord + Copy> SortedRuns<T> {
    pub(crate) fn push(&mut self, t: T) {
        self.pending.push(t);
    }

    /// Makes pending entries visible to lookups.
    pub(crate) fn seal(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut run = std::mem::take(&mut self.pending);
        run.sort_unstable();
        self.runs.push(run);
        while self.runs.len() >= 2 {
            let n = self.runs.len();
            if self.runs[n - 1].len() * 2 < self.runs[n - 2].len() {
                break;
            }
            let b = self.runs.pop().unwrap_or_default();
            let a = self.runs.pop().unwrap_or_default();
            self.runs.push(merge(a, b));
        }
    }

    /// Merges everything into one run (fastest lookups).
    pub(crate) fn compact(&mut self) {
        self.seal();
        while self.runs.len() >= 2 {
            let b = self.runs.pop().unwrap_or_default();
            let a = self.runs.pop().unwrap_or_default();
            self.runs.push(merge(a, b));
        }
        if let Some(r) = self.runs.last_mut() {
            r.shrink_to_fit();
        }
    }

    /// Calls `f` for every sealed entry in `lo..=hi`.
    #[inline]
    pub(crate) fn for_range(&self, lo: &T, hi: &T, mut f: impl FnMut(&T)) {
        for run in &self.runs {
            let i = run.partition_point(|x| x < lo);
            for x in &run[i..] {
                if x > hi {
                    break;
                }
                f(x);
            }
        }
    }

    /// True when some sealed entry lies in `lo..=hi`.
    pub(crate) fn any_in(&self, lo: &T, hi: &T) -> bool {
        self.runs.iter().any(|run| {
            let i = run.partition_point(|x| x < lo);
            run.get(i).is_some_and(|x| x <= hi)
        })
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.runs.iter().map(Vec::len).sum::<usize>() + self.pending.len()
    }

    pub(crate) fn run_count(&self) -> usize {
        self.runs.len()
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        (self.runs.iter().map(Vec::capacity).sum::<usize>() + self.pending.capacity()) * std::mem::size_of::<T>()
    }
}

fn merge<T: Ord + Copy>(a: Vec<T>, b: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_stay_few_and_sorted() {
        let mut r = SortedRuns::default();
        let mut x: u64 = 1;
        for batch in 0..100 {
            for _ in 0..1000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                r.push((x >> 40) as u32);
            }
            r.seal();
            assert!(r.run_count() <= 2 + (batch as f64 + 1.0).log2().ceil() as usize * 2, "{}", r.run_count());
        }
        assert_eq!(r.len(), 100_000);
        let mut all = Vec::new();
        r.for_range(&0, &u32::MAX, |v| all.push(*v));
        assert_eq!(all.len(), 100_000);
        r.compact();
        assert_eq!(r.run_count(), 1);
        let mut sorted = Vec::new();
        r.for_range(&0, &u32::MAX, |v| sorted.push(*v));
        assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
        assert!(r.any_in(&sorted[10], &sorted[10]));
    }
}
