//! [`PrefixTable`]: an immutable longest-prefix-match table.
//!
//! # Layout
//! At build time the prefixes are flattened into non-overlapping address ranges that cover the
//! whole address space; each range carries the value of its longest matching prefix (or none),
//! and adjacent ranges with equal values are merged. The ranges are then cut into 65,536 buckets
//! by the first 16 bits of the address. A lookup reads the bucket's offsets from a direct-indexed
//! array and does a short branchless binary search over the bucket's range starts, which are
//! stored truncated to the bits below the bucket (IPv4: 16 bits; IPv6: the next 64 bits, or the
//! full 112 bits in the rare buckets holding a boundary that needs them, i.e. prefixes longer
//! than /80). Each bucket starts with the range covering its first address, so a search never
//! leaves its bucket.

use std::net::IpAddr;

use ipnet::IpNet;

/// Number of leading address bits that pick a bucket.
const TOP_BITS: u32 = 16;
/// Buckets per family.
const BUCKETS: usize = 1 << TOP_BITS;
/// In the IPv6 bucket index, marks a bucket whose keys need the extra low 48 bits.
const WIDE: u32 = 1 << 31;
/// Mask for the offset part of an IPv6 bucket index entry.
const OFFSET_MASK: u32 = WIDE - 1;
/// The low 48 bits of an IPv6 address (below the 16 bucket bits and the 64 key bits).
const LOW48: u128 = (1 << 48) - 1;

/// An immutable longest-prefix-match table from IPv4 and IPv6 prefixes to values.
///
/// Built once with [`PrefixTable::build`]; lookups take `&self`, allocate nothing and lock
/// nothing, so one table can be shared (e.g. in an `Arc`) by many threads.
#[derive(Debug, Clone)]
pub struct PrefixTable<V: Copy> {
    len: usize,
    v4: Ranges4<V>,
    v6: Ranges6<V>,
}

/// IPv4 ranges: bucket offsets, 16-bit range starts within the bucket, values.
#[derive(Debug, Clone)]
struct Ranges4<V> {
    /// `BUCKETS + 1` offsets into `keys`/`vals`, or empty when the family has no prefix.
    idx: Vec<u32>,
    keys: Vec<u16>,
    vals: Vec<Option<V>>,
}

/// IPv6 ranges: bucket offsets (with the [`WIDE`] flag), address bits 16..80 of each range
/// start, bits 80..128 for wide buckets, values.
#[derive(Debug, Clone)]
struct Ranges6<V> {
    idx: Vec<u32>,
    keys: Vec<u64>,
    /// Parallel to `keys` when any bucket is wide, else empty.
    lo: Vec<u64>,
    vals: Vec<Option<V>>,
}

/// Index of the last element `<= k` in `keys`; `keys[0]` is never compared (it stands for the
/// start of the bucket) so the result is 0 when no later element is `<= k`.
#[inline(always)]
fn last_le<K: Copy + Ord>(keys: &[K], k: K) -> usize {
    let mut base = 0usize;
    let mut len = keys.len();
    while len > 1 {
        let half = len / 2;
        let mid = base + half;
        base = std::hint::select_unpredictable(keys[mid] <= k, mid, base);
        len -= half;
    }
    base
}

impl<V: Copy + PartialEq> PrefixTable<V> {
    /// Builds a table. Host bits of each prefix are masked off (`10.1.2.3/8` is `10.0.0.0/8`);
    /// when the same prefix appears more than once the last value wins.
    pub fn build(entries: impl IntoIterator<Item = (IpNet, V)>) -> Self {
        let mut e4: Vec<(u128, u8, V)> = Vec::new();
        let mut e6: Vec<(u128, u8, V)> = Vec::new();
        for (net, v) in entries {
            match net.trunc() {
                IpNet::V4(n) => e4.push((u128::from(u32::from(n.network())), n.prefix_len(), v)),
                IpNet::V6(n) => e6.push((u128::from(n.network()), n.prefix_len(), v)),
            }
        }
        let (n4, p4) = flatten(e4, 32);
        let (n6, p6) = flatten(e6, 128);
        PrefixTable { len: n4 + n6, v4: Ranges4::new(&p4, n4 > 0), v6: Ranges6::new(&p6, n6 > 0) }
    }

    /// The value of the longest prefix holding `ip`. An IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`) is looked up as its IPv4 address first, then, if no IPv4 prefix holds
    /// it, in the IPv6 prefixes.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<V> {
        match ip {
            IpAddr::V4(a) => self.lookup_v4(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(m) => self.lookup_v4(u32::from(m)).or_else(|| self.lookup_v6(u128::from(a))),
                None => self.lookup_v6(u128::from(a)),
            },
        }
    }

    /// The value of the longest IPv4 prefix holding `ip` (host byte order, as
    /// `u32::from(Ipv4Addr)` gives).
    #[inline]
    pub fn lookup_v4(&self, ip: u32) -> Option<V> {
        let r = &self.v4;
        let h = (ip >> TOP_BITS) as usize;
        let (Some(&lo), Some(&hi)) = (r.idx.get(h), r.idx.get(h + 1)) else {
            return None;
        };
        let (lo, hi) = (lo as usize, hi as usize);
        let keys = r.keys.get(lo..hi)?;
        let i = last_le(keys, ip as u16);
        r.vals.get(lo + i).copied().flatten()
    }

    /// The value of the longest IPv6 prefix holding `ip` (as `u128::from(Ipv6Addr)` gives).
    /// IPv4-mapped addresses are not special here; see [`PrefixTable::lookup`].
    #[inline]
    pub fn lookup_v6(&self, ip: u128) -> Option<V> {
        let r = &self.v6;
        let h = (ip >> (128 - TOP_BITS)) as usize;
        let (Some(&raw), Some(&hi)) = (r.idx.get(h), r.idx.get(h + 1)) else {
            return None;
        };
        let lo = (raw & OFFSET_MASK) as usize;
        let hi = (hi & OFFSET_MASK) as usize;
        let keys = r.keys.get(lo..hi)?;
        let k = (ip >> 48) as u64;
        let i = if raw & WIDE == 0 {
            last_le(keys, k)
        } else {
            let low = r.lo.get(lo..hi)?;
            wide_last_le(keys, low, (u128::from(k) << 48) | (ip & LOW48))
        };
        r.vals.get(lo + i).copied().flatten()
    }

    /// Number of distinct prefixes the table was built from (after removing duplicates).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table was built from no prefix.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes held by the table.
    pub fn memory_bytes(&self) -> usize {
        fn bytes<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        bytes(&self.v4.idx)
            + bytes(&self.v4.keys)
            + bytes(&self.v4.vals)
            + bytes(&self.v6.idx)
            + bytes(&self.v6.keys)
            + bytes(&self.v6.lo)
            + bytes(&self.v6.vals)
    }

    /// Number of flattened address ranges (bucket entries), for diagnostics and benchmarks.
    pub fn range_count(&self) -> usize {
        self.v4.vals.len() + self.v6.vals.len()
    }
}

/// [`last_le`] over keys made of `keys[i] << 48 | low[i]`.
#[inline]
fn wide_last_le(keys: &[u64], low: &[u64], k: u128) -> usize {
    let mut base = 0usize;
    let mut len = keys.len().min(low.len());
    while len > 1 {
        let half = len / 2;
        let mid = base + half;
        let key = (u128::from(keys[mid]) << 48) | u128::from(low[mid]);
        base = std::hint::select_unpredictable(key <= k, mid, base);
        len -= half;
    }
    base
}

/// Flattens prefixes `(network, length, value)` of a `width`-bit family into range starts with
/// their longest-match value. The result starts at address 0, is strictly increasing, covers
/// the whole space and never has two neighbours with equal values. Also returns the number of
/// distinct prefixes.
fn flatten<V: Copy + PartialEq>(mut items: Vec<(u128, u8, V)>, width: u32) -> (usize, Vec<(u128, Option<V>)>) {
    let ones: u128 = if width == 128 { u128::MAX } else { (1u128 << width) - 1 };
    // Stable: equal prefixes keep their input order, so the last one can win.
    items.sort_by_key(|&(s, l, _)| (s, l));
    let mut prefixes: Vec<(u128, u128, V)> = Vec::with_capacity(items.len());
    for (s, l, v) in items {
        let e = s | ones.checked_shr(u32::from(l)).unwrap_or(0);
        match prefixes.last_mut() {
            Some(last) if last.0 == s && last.1 == e => last.2 = v,
            _ => prefixes.push((s, e, v)),
        }
    }
    let count = prefixes.len();

    fn push<V: PartialEq>(out: &mut Vec<(u128, Option<V>)>, start: u128, v: Option<V>) {
        if out.last().is_some_and(|(_, pv)| *pv == v) {
            return;
        }
        out.push((start, v));
    }

    let mut out: Vec<(u128, Option<V>)> = Vec::with_capacity(count * 2 + 1);
    // Prefixes that hold the current position, outermost first: (last address, value).
    let mut stack: Vec<(u128, V)> = Vec::new();
    // First address not yet given a range; None once the end of the space is reached.
    let mut seg: Option<u128> = Some(0);
    for (s, e, v) in prefixes {
        while let Some(&(te, tv)) = stack.last() {
            if te >= s {
                break;
            }
            if let Some(ss) = seg
                && ss <= te
            {
                push(&mut out, ss, Some(tv));
            }
            // te < s <= ones, so this cannot overflow.
            seg = Some(te + 1);
            stack.pop();
        }
        if let Some(ss) = seg
            && ss < s
        {
            push(&mut out, ss, stack.last().map(|t| t.1));
        }
        seg = Some(s);
        stack.push((e, v));
    }
    while let Some((te, tv)) = stack.pop() {
        if let Some(ss) = seg
            && ss <= te
        {
            push(&mut out, ss, Some(tv));
        }
        seg = if te >= ones { None } else { Some(te + 1) };
    }
    if let Some(ss) = seg {
        push(&mut out, ss, None);
    }
    (count, out)
}

/// Calls `f(bucket, entries)` for each of the [`BUCKETS`] buckets of a `width`-bit family, in
/// order, where `entries` are the ranges inside the bucket, the first being the range that
/// covers the bucket's first address.
fn for_each_bucket<V: Copy>(points: &[(u128, Option<V>)], width: u32, mut f: impl FnMut(&[(u128, Option<V>)])) {
    let shift = width - TOP_BITS;
    let mut i = 0usize;
    let mut scratch: Vec<(u128, Option<V>)> = Vec::new();
    for h in 0..BUCKETS as u128 {
        let start = h << shift;
        let last = start | ((1u128 << shift) - 1);
        while i + 1 < points.len() && points[i + 1].0 <= start {
            i += 1;
        }
        let mut j = i + 1;
        while j < points.len() && points[j].0 <= last {
            j += 1;
        }
        scratch.clear();
        if let Some(&(_, v)) = points.get(i) {
            scratch.push((start, v));
        }
        if let Some(rest) = points.get(i + 1..j) {
            scratch.extend_from_slice(rest);
        }
        f(&scratch);
        // The range covering the next bucket's start is the last one seen here.
        i = j.saturating_sub(1).max(i);
    }
}

impl<V: Copy> Ranges4<V> {
    fn new(points: &[(u128, Option<V>)], any: bool) -> Self {
        let mut r = Ranges4 { idx: Vec::new(), keys: Vec::new(), vals: Vec::new() };
        if !any {
            return r;
        }
        r.idx.reserve_exact(BUCKETS + 1);
        r.keys.reserve_exact(points.len() + BUCKETS);
        r.vals.reserve_exact(points.len() + BUCKETS);
        for_each_bucket(points, 32, |entries| {
            r.idx.push(r.keys.len() as u32);
            for &(s, v) in entries {
                r.keys.push(s as u16);
                r.vals.push(v);
            }
        });
        r.idx.push(r.keys.len() as u32);
        r.keys.shrink_to_fit();
        r.vals.shrink_to_fit();
        r
    }
}

impl<V: Copy> Ranges6<V> {
    fn new(points: &[(u128, Option<V>)], any: bool) -> Self {
        let mut r = Ranges6 { idx: Vec::new(), keys: Vec::new(), lo: Vec::new(), vals: Vec::new() };
        if !any {
            return r;
        }
        let any_wide = points.iter().any(|&(s, _)| s & LOW48 != 0);
        r.idx.reserve_exact(BUCKETS + 1);
        r.keys.reserve_exact(points.len() + BUCKETS);
        r.vals.reserve_exact(points.len() + BUCKETS);
        if any_wide {
            r.lo.reserve_exact(points.len() + BUCKETS);
        }
        for_each_bucket(points, 128, |entries| {
            let wide = entries.iter().any(|&(s, _)| s & LOW48 != 0);
            r.idx.push(r.keys.len() as u32 | if wide { WIDE } else { 0 });
            for &(s, v) in entries {
                r.keys.push((s >> 48) as u64);
                if any_wide {
                    r.lo.push((s & LOW48) as u64);
                }
                r.vals.push(v);
            }
        });
        r.idx.push(r.keys.len() as u32);
        r.keys.shrink_to_fit();
        r.lo.shrink_to_fit();
        r.vals.shrink_to_fit();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("test prefix")
    }

    #[test]
    fn flatten_nested() {
        let (n, p) = flatten(vec![(0x0a00_0000, 8, 1u32), (0x0a01_0000, 16, 2), (0x0a01_0000, 24, 3)], 32);
        assert_eq!(n, 3);
        assert_eq!(
            p,
            vec![
                (0, None),
                (0x0a00_0000, Some(1)),
                (0x0a01_0000, Some(3)),
                (0x0a01_0100, Some(2)),
                (0x0a02_0000, Some(1)),
                (0x0b00_0000, None)
            ]
        );
    }

    #[test]
    fn basic_lookups() {
        let t = PrefixTable::build([
            (net("10.0.0.0/8"), 1u32),
            (net("10.1.0.0/16"), 2),
            (net("10.1.2.3/24"), 3), // host bits masked
            (net("2001:db8::/32"), 4),
            (net("2001:db8:1::1/128"), 5),
        ]);
        assert_eq!(t.len(), 5);
        assert_eq!(t.lookup("10.9.9.9".parse().expect("ip")), Some(1));
        assert_eq!(t.lookup("10.1.9.9".parse().expect("ip")), Some(2));
        assert_eq!(t.lookup("10.1.2.200".parse().expect("ip")), Some(3));
        assert_eq!(t.lookup("11.0.0.0".parse().expect("ip")), None);
        assert_eq!(t.lookup("2001:db8:1::1".parse().expect("ip")), Some(5));
        assert_eq!(t.lookup("2001:db8:1::2".parse().expect("ip")), Some(4));
        assert_eq!(t.lookup("2001:db9::".parse().expect("ip")), None);
        assert_eq!(t.lookup("::ffff:10.1.2.1".parse().expect("ip")), Some(3));
    }

    #[test]
    fn duplicates_last_wins() {
        let t = PrefixTable::build([(net("10.0.0.0/8"), 1u32), (net("10.0.0.0/8"), 2), (net("10.9.0.0/8"), 3)]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.lookup_v4(0x0a00_0001), Some(3));
    }

    #[test]
    fn empty_and_default_routes() {
        let t: PrefixTable<u8> = PrefixTable::build([]);
        assert!(t.is_empty());
        assert_eq!(t.lookup_v4(0), None);
        assert_eq!(t.lookup_v6(u128::MAX), None);
        let t = PrefixTable::build([(net("0.0.0.0/0"), 7u8), (net("::/0"), 8), (net("ffff:ffff::/32"), 9)]);
        assert_eq!(t.lookup_v4(0), Some(7));
        assert_eq!(t.lookup_v4(u32::MAX), Some(7));
        assert_eq!(t.lookup_v6(0), Some(8));
        assert_eq!(t.lookup_v6(u128::MAX), Some(9));
        let t = PrefixTable::build([
            (net("255.255.255.255/32"), 1u8),
            (net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), 2),
        ]);
        assert_eq!(t.lookup_v4(u32::MAX), Some(1));
        assert_eq!(t.lookup_v4(u32::MAX - 1), None);
        assert_eq!(t.lookup_v6(u128::MAX), Some(2));
        assert_eq!(t.lookup_v6(u128::MAX - 1), None);
    }
}
