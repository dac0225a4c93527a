//! Sorted runs: an append-friendly sorted multiset (a tiny LSM). New entries are collected,
//! sorted into a run when sealed, and runs of similar size are merged, so the total work stays
//! O(n log n) and a lookup visits at most ~log2(n) runs. [`SortedRuns::compact`] leaves one run.

pub(crate) struct SortedRuns<T> {
    runs: Vec<Vec<T>>,
    pending: Vec<T>,
    lut: Option<Lut>,
}

/// Direct-indexed first level over the oldest (biggest) run, built by `compact`: bucket `k`
/// holds the entries whose radix key is in `[base + (k << shift), base + ((k + 1) << shift))`.
/// About 2 bytes per entry; turns a ~24-step binary search into a few steps in one bucket.
struct Lut {
    base: u32,
    shift: u32,
    starts: Vec<u32>,
    run_len: usize,
}

/// The leading 32 bits of an entry's key (the address, or its top bits).
pub(crate) trait Radix {
    fn radix(&self) -> u32;
}

impl Radix for (u32, u32) {
    fn radix(&self) -> u32 {
        self.0
    }
}

impl Radix for (u64, u8, u32) {
    fn radix(&self) -> u32 {
        (self.0 >> 32) as u32
    }
}

impl Radix for (u128, u8, u32) {
    fn radix(&self) -> u32 {
        (self.0 >> 96) as u32
    }
}

impl Radix for (u32, u16, u32) {
    fn radix(&self) -> u32 {
        self.0
    }
}

impl<T> Default for SortedRuns<T> {
    fn default() -> Self {
        SortedRuns { runs: Vec::new(), pending: Vec::new(), lut: None }
    }
}

impl<T: Ord + Copy + Radix> SortedRuns<T> {
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
        self.lut = self.runs.first().and_then(|run| build_lut(run));
    }

    /// Rewrites every entry with `f` and re-sorts (used when ids are renumbered); then compacts.
    pub(crate) fn remap(&mut self, f: impl Fn(T) -> T) {
        self.seal();
        for run in &mut self.runs {
            for x in run.iter_mut() {
                *x = f(*x);
            }
            run.sort_unstable();
        }
        self.compact();
    }

    /// Keeps the entries `f` maps to `Some`, rewritten; leaves one compacted run.
    pub(crate) fn rebuild(&mut self, f: impl Fn(T) -> Option<T>) {
        self.seal();
        let mut all: Vec<T> = self.runs.drain(..).flatten().filter_map(f).collect();
        all.sort_unstable();
        self.runs = if all.is_empty() { Vec::new() } else { vec![all] };
        self.compact();
    }

    /// Calls `f` for every sealed entry, run by run (not in global order).
    pub(crate) fn each(&self, mut f: impl FnMut(&T)) {
        for run in &self.runs {
            run.iter().for_each(&mut f);
        }
    }

    /// Entries of the single compacted run (empty unless compacted).
    pub(crate) fn compacted(&self) -> &[T] {
        if self.runs.len() == 1 && self.pending.is_empty() { &self.runs[0] } else { &[] }
    }

    /// With a lookup table: the bucket of the compacted run that holds radix `r`.
    #[inline]
    pub(crate) fn bucket(&self, r: u32) -> Option<&[T]> {
        let run = self.runs.first()?;
        self.lut.as_ref().filter(|l| l.run_len == run.len())?;
        Some(self.slice(0, run, r))
    }

    /// The part of run `i` that can hold keys with radix `r` (the whole run without a LUT).
    #[inline]
    fn slice<'a>(&self, i: usize, run: &'a [T], r: u32) -> &'a [T] {
        if i == 0
            && let Some(l) = &self.lut
            && l.run_len == run.len()
        {
            if r < l.base {
                return &[];
            }
            let k = ((r - l.base) >> l.shift) as usize;
            if k + 1 >= l.starts.len() {
                return &[];
            }
            return &run[l.starts[k] as usize..l.starts[k + 1] as usize];
        }
        run
    }

    /// With a lookup table: the positions in the first (compacted) run of the bucket that holds
    /// radix `r` (an empty range when no bucket does); `None` without a valid lookup table.
    #[inline]
    pub(crate) fn bucket_bounds(&self, r: u32) -> Option<(usize, usize)> {
        let run = self.runs.first()?;
        let l = self.lut.as_ref().filter(|l| l.run_len == run.len())?;
        if r < l.base {
            return Some((0, 0));
        }
        let k = ((r - l.base) >> l.shift) as usize;
        if k + 1 >= l.starts.len() {
            return Some((0, 0));
        }
        Some((l.starts[k] as usize, l.starts[k + 1] as usize))
    }

    /// Length of the first run (the one the lookup table covers).
    pub(crate) fn first_len(&self) -> usize {
        self.runs.first().map_or(0, Vec::len)
    }

    /// [`SortedRuns::for_range`] over every run but the first.
    #[inline]
    pub(crate) fn for_range_rest(&self, lo: &T, hi: &T, mut f: impl FnMut(&T)) {
        for run in self.runs.iter().skip(1) {
            let i = run.partition_point(|x| x < lo);
            for x in &run[i..] {
                if x > hi {
                    break;
                }
                f(x);
            }
        }
    }

    /// Calls `f` for every sealed entry in `lo..=hi` (`lo` and `hi` have the same radix).
    #[inline]
    pub(crate) fn for_range(&self, lo: &T, hi: &T, mut f: impl FnMut(&T)) {
        debug_assert_eq!(lo.radix(), hi.radix());
        for (ri, run) in self.runs.iter().enumerate() {
            let run = self.slice(ri, run, lo.radix());
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
        self.runs.iter().enumerate().any(|(ri, run)| {
            let run = self.slice(ri, run, lo.radix());
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
            + self.lut.as_ref().map_or(0, |l| l.starts.capacity() * 4)
    }
}

fn build_lut<T: Radix>(run: &[T]) -> Option<Lut> {
    let (first, last) = (run.first()?.radix(), run.last()?.radix());
    if run.len() < 1024 || u32::try_from(run.len()).is_err() {
        return None;
    }
    let span = u64::from(last - first) + 1;
    let want = (run.len() as u64 / 2).max(1);
    let mut shift = 0;
    while (span >> shift) > want {
        shift += 1;
    }
    let slots = (span >> shift) as usize + 1;
    let mut starts = Vec::with_capacity(slots + 1);
    let mut i = 0usize;
    for k in 0..=slots as u64 {
        let bound = u64::from(first) + (k << shift);
        while i < run.len() && u64::from(run[i].radix()) < bound {
            i += 1;
        }
        starts.push(i as u32);
    }
    Some(Lut { base: first, shift, starts, run_len: run.len() })
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
        let mut r: SortedRuns<(u32, u32)> = SortedRuns::default();
        let mut x: u64 = 1;
        for batch in 0..100u32 {
            for i in 0..1000u32 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                // Keys 0..100_000, each once, in a scrambled order.
                r.push(((batch * 1000 + i) * 7 % 100_000, (x >> 40) as u32));
            }
            r.seal();
            assert!(r.run_count() <= 2 + (batch as f64 + 1.0).log2().ceil() as usize * 2, "{}", r.run_count());
        }
        assert_eq!(r.len(), 100_000);
        let mut all = Vec::new();
        r.for_range(&(150_000, 0), &(150_000, u32::MAX), |v| all.push(*v));
        assert_eq!(all, []);
        for k in [0u32, 17, 99_999] {
            all.clear();
            r.for_range(&(k, 0), &(k, u32::MAX), |v| all.push(*v));
            assert_eq!(all.len(), 1, "{k}");
        }
        let before: Vec<Vec<(u32, u32)>> = (0..2000u32)
            .map(|k| {
                let mut v = Vec::new();
                r.for_range(&(k * 7919 % 100_000, 0), &(k * 7919 % 100_000, u32::MAX), |x| v.push(*x));
                v.sort();
                v
            })
            .collect();
        r.compact();
        assert_eq!(r.run_count(), 1);
        assert!(r.lut.is_some());
        for (k, want) in before.iter().enumerate() {
            let k = k as u32 * 7919 % 100_000;
            let mut got = Vec::new();
            r.for_range(&(k, 0), &(k, u32::MAX), |x| got.push(*x));
            assert_eq!(&got, want, "{k}");
            assert!(r.any_in(&(k, 0), &(k, u32::MAX)));
        }
        assert!(!r.any_in(&(200_000, 0), &(200_000, u32::MAX)));
    }
}
