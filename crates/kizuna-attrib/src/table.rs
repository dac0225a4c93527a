//! [`PrefixTable`]: an immutable longest-prefix-match table.
//!
//! # Layout
//! At build time the prefixes are flattened into non-overlapping address ranges that cover the
//! whole address space; each range carries the value of its longest matching prefix (or none),
//! and neighbouring ranges with equal values are merged.
//!
//! IPv4 (DIR-24-8): the distinct values are numbered (0 is "none") and kept in a small array; a
//! direct-indexed array of 2^24 `u32` entries (64 MiB, zero pages stay unmapped where no prefix
//! covers the /24) holds, for each /24, the value id when one range covers the whole /24, or the
//! index of a 256-entry chunk of value ids when prefixes longer than /24 split it. A lookup is
//! one read into the big array, one into the (cache-resident) value array, and one into a chunk
//! for split /24s; no search.
//!
//! IPv6: the ranges are cut into buckets by a direct-indexed multibit trie of packed `u32`
//! entries: a root on the first 16 bits, and child nodes only where a bucket holds more ranges
//! than fit in one search window. A leaf lists its ranges as slots (range start truncated to the bits below the leaf,
//! plus the value, side by side in one cache line or two) and is searched by a branchless binary
//! search of fixed depth over a window of 16 slots: no data-dependent branch or loop and few
//! instructions, so the CPU overlaps the memory accesses of consecutive lookups. A lookup
//! touches the root entry and one leaf, usually. Rare oversized leaves (below the deepest node)
//! use a branchless binary search; leaves with range boundaries past their 63 key bits keep
//! full `u128` keys. Each leaf starts with the range covering its first address, and a leaf that
//! is one range shares an existing slot holding that value.
//!
//! Each family holds at most [`MAX_PREFIXES`] distinct prefixes (the IPv4 Internet table is about
//! a million); past that the table keeps the prefixes with the lowest addresses.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;

use ipnet::IpNet;

/// The most distinct prefixes one address family of a [`PrefixTable`] holds.
pub const MAX_PREFIXES: usize = 1 << 22;

/// Entry tag: a leaf searched over a window (`len <= window`).
const TAG_LEAF: u32 = 0;
/// Entry tag: a child node at `payload * NODE_ALIGN` in `nodes`.
const TAG_NODE: u32 = 1;
/// Entry tag: an oversized leaf, `big[payload]`.
const TAG_BIG: u32 = 2;
/// Entry tag: a leaf with full `u128` keys, `wide[payload]`.
const TAG_WIDE: u32 = 3;
/// Child nodes start at multiples of this many entries.
const NODE_ALIGN: usize = 16;
/// Bits of an entry below the payload: 2 tag bits, 5 bits of `len - 1`.
const PAYLOAD_SHIFT: u32 = 7;

/// IPv4 direct-array entry flag: the rest is a chunk index, not a value id.
const V4_CHUNK: u32 = 1 << 31;
const V6_ROOT: u32 = 16;
const V6_STRIDES: &[u32] = &[12, 8, 8, 8];
const V6_WINDOW: usize = 16;

/// An immutable longest-prefix-match table from IPv4 and IPv6 prefixes to values.
///
/// Built once with [`PrefixTable::build`]; lookups take `&self`, allocate nothing and lock
/// nothing, so one table can be shared (e.g. in an `Arc`) by many threads.
#[derive(Debug, Clone)]
pub struct PrefixTable<V: Copy> {
    len: usize,
    v4: Dir24<V>,
    v6: Family<V, u64>,
}

/// The IPv4 DIR-24-8 arrays.
#[derive(Debug, Clone)]
struct Dir24<V> {
    /// One entry per /24: a value id, or `V4_CHUNK | chunk`; empty when the family has no
    /// prefix.
    top: Vec<u32>,
    /// Chunks of 256 value ids, one per address of a split /24.
    chunks: Vec<u32>,
    /// Values by id; `vals[0]` is `None`.
    vals: Vec<Option<V>>,
    /// Number of flattened ranges, for diagnostics.
    ranges: usize,
}

/// One address family's trie and leaves.
#[derive(Debug, Clone)]
struct Family<V, K> {
    /// The root (`1 << root bits` entries) followed by the child nodes; empty when the family has
    /// no prefix.
    nodes: Vec<u32>,
    /// Ranges of window and big leaves: start truncated to the key bits below the leaf, with
    /// the lowest bit (never an address bit, see `leaf_or_node`) set when the range has no
    /// value; followed by one window of padding.
    slots: Vec<Slot<K, V>>,
    /// The value stored in the last slot, while building.
    last: Option<Option<V>>,
    /// `(offset, len)` of oversized leaves in `slots`.
    big: Vec<(u32, u32)>,
    /// `(offset, len)` of wide leaves in `wkeys`/`wvals`.
    wide: Vec<(u32, u32)>,
    /// Range starts of wide leaves: the address bits below the leaf, left-aligned.
    wkeys: Vec<u128>,
    wvals: Vec<Option<V>>,
}

/// One range of a leaf: its start and its value, side by side so that one cache line holds
/// both.
#[derive(Debug, Clone, Copy)]
struct Slot<K, V> {
    key: K,
    /// The value; a placeholder when `key.is_none()`.
    val: V,
}

/// Key types of leaves.
trait Key: Copy + Ord + Default {
    const BITS: u32;
    /// The top `BITS` bits of `x`, with the lowest of them set when `none`.
    fn top_of(x: u128, none: bool) -> Self;
    /// True when the lowest bit is set.
    fn is_none(self) -> bool;
}

impl Key for u64 {
    const BITS: u32 = 64;
    #[inline(always)]
    fn top_of(x: u128, none: bool) -> Self {
        (x >> 64) as u64 | u64::from(none)
    }
    #[inline(always)]
    fn is_none(self) -> bool {
        self & 1 != 0
    }
}

#[inline(always)]
fn pack(payload: usize, len: usize, tag: u32) -> u32 {
    ((payload as u32) << PAYLOAD_SHIFT) | ((len.saturating_sub(1) as u32 & 31) << 2) | tag
}

/// Index of the last element `<= k` in `keys`; `keys[0]` is never compared (it stands for the
/// start of the leaf), so the result is 0 when no later element is `<= k`.
#[inline(always)]
fn last_le<T, K: Copy + Ord>(keys: &[T], key: impl Fn(&T) -> K, k: K) -> usize {
    let mut base = 0usize;
    let mut len = keys.len();
    while len > 1 {
        let half = len / 2;
        let mid = base + half;
        base = std::hint::select_unpredictable(key(&keys[mid]) <= k, mid, base);
        len -= half;
    }
    base
}

/// The index of the last of `w[..len]` that is `<= k`, or 0 (a leaf's first key stands for its
/// start, and a shared one-range slot may hold any key); `1 <= len <= W`, `W` a power of two.
/// A branchless binary search with a fixed number of steps: the CPU never waits on it to
/// decide what to run next, so consecutive lookups overlap.
#[inline(always)]
fn window_le<V, K: Copy + Ord, const W: usize>(w: &[Slot<K, V>; W], len: usize, k: K) -> usize {
    let mut base = 0usize;
    let mut n = len;
    for _ in 0..W.trailing_zeros() {
        let half = n / 2;
        let mid = base + half;
        // With n == 1, mid == base: nothing changes.
        base = std::hint::select_unpredictable(w[mid & (W - 1)].key <= k, mid, base);
        n -= half;
    }
    base
}

impl<V: Copy + Eq + Hash> PrefixTable<V> {
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
        PrefixTable {
            len: n4 + n6,
            v4: Dir24::build(&p4),
            v6: Family::build::<V6_WINDOW>(&p6, 128, V6_ROOT, V6_STRIDES),
        }
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
        self.finish_v4(ip, self.top_v4(ip)?)
    }

    /// The /24 entry for an IPv4 address, if the table has IPv4 prefixes.
    #[inline(always)]
    fn top_v4(&self, ip: u32) -> Option<u32> {
        self.v4.top.get((ip >> 8) as usize).copied()
    }

    /// The rest of an IPv4 lookup from its /24 entry.
    #[inline(always)]
    fn finish_v4(&self, ip: u32, e: u32) -> Option<V> {
        let id = if e & V4_CHUNK == 0 {
            e
        } else {
            *self.v4.chunks.get((((e & !V4_CHUNK) as usize) << 8) | (ip & 0xff) as usize)?
        };
        self.v4.vals.get(id as usize).copied().flatten()
    }

    /// The value of the longest IPv6 prefix holding `ip` (as `u128::from(Ipv6Addr)` gives).
    /// IPv4-mapped addresses are not special here; see [`PrefixTable::lookup`].
    #[inline]
    pub fn lookup_v6(&self, ip: u128) -> Option<V> {
        self.finish_v6(ip, self.root_v6(ip)?)
    }

    /// The root entry for an IPv6 address, if the table has IPv6 prefixes.
    #[inline(always)]
    fn root_v6(&self, ip: u128) -> Option<u32> {
        self.v6.nodes.get((ip >> (128 - V6_ROOT)) as usize).copied()
    }

    /// The rest of an IPv6 lookup from its root entry.
    #[inline(always)]
    fn finish_v6(&self, ip: u128, mut e: u32) -> Option<V> {
        let f = &self.v6;
        let mut depth = V6_ROOT;
        let mut level = 0;
        while e & 3 == TAG_NODE {
            let s = *V6_STRIDES.get(level)?;
            let i = ((ip << depth) >> (128 - s)) as usize;
            e = *f.nodes.get((e >> PAYLOAD_SHIFT) as usize * NODE_ALIGN + i)?;
            depth += s;
            level += 1;
        }
        let rest = ip << depth;
        f.leaf::<V6_WINDOW>(e, (rest >> 64) as u64 | 1, || rest)
    }

    /// Looks up every address of `ips`, appending the answers to `out` in order (the same
    /// answers as [`PrefixTable::lookup`]). Faster than one call per address: each block of
    /// addresses is split by family first, then all its IPv4 lookups run in one tight loop and
    /// all its IPv6 lookups in another, so no family branch is mispredicted between lookups and
    /// the memory reads of consecutive lookups overlap.
    pub fn lookup_many(&self, ips: &[IpAddr], out: &mut Vec<Option<V>>) {
        const BLOCK: usize = 256;
        out.reserve(ips.len());
        let mut a4 = [(0u32, 0u16); BLOCK];
        let mut a6 = [(0u128, 0u16); BLOCK];
        for block in ips.chunks(BLOCK) {
            let base = out.len();
            out.resize(base + block.len(), None);
            let Some(res) = out.get_mut(base..) else { return };
            let (mut n4, mut n6) = (0usize, 0usize);
            for (i, ip) in block.iter().enumerate() {
                match *ip {
                    IpAddr::V4(a) => {
                        if let Some(s) = a4.get_mut(n4) {
                            *s = (u32::from(a), i as u16);
                        }
                        n4 += 1;
                    }
                    IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => {
                        if let Some(r) = res.get_mut(i) {
                            *r = self.lookup(*ip);
                        }
                    }
                    IpAddr::V6(a) => {
                        if let Some(s) = a6.get_mut(n6) {
                            *s = (u128::from(a), i as u16);
                        }
                        n6 += 1;
                    }
                }
            }
            for &(a, i) in a4.iter().take(n4) {
                if let Some(r) = res.get_mut(usize::from(i)) {
                    *r = self.lookup_v4(a);
                }
            }
            for &(a, i) in a6.iter().take(n6) {
                if let Some(r) = res.get_mut(usize::from(i)) {
                    *r = self.lookup_v6(a);
                }
            }
        }
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
        self.v4.memory_bytes() + self.v6.memory_bytes()
    }

    /// Number of value slots (flattened IPv4 ranges, IPv6 leaf slots with their per-bucket
    /// copies), for diagnostics.
    pub fn range_count(&self) -> usize {
        self.v4.ranges + self.v6.slots.len() + self.v6.wvals.len()
    }
}

impl<V: Copy + Eq + Hash> Dir24<V> {
    /// Builds the arrays over flattened IPv4 ranges `points` (starts in `0..2^32`).
    fn build(points: &[(u128, Option<V>)]) -> Self {
        let mut d = Dir24 { top: Vec::new(), chunks: Vec::new(), vals: vec![None], ranges: points.len() };
        if points.iter().all(|(_, v)| v.is_none()) {
            return d;
        }
        // Zeroed memory straight from the allocator: /24s no prefix covers are never written,
        // so their pages are never mapped.
        d.top = vec![0; 1 << 24];
        // A /24 is split when a range starts inside it.
        for &(s, _) in points {
            if s & 0xff != 0
                && let Some(t) = d.top.get_mut((s >> 8) as usize)
                && *t == 0
            {
                *t = V4_CHUNK | (d.chunks.len() >> 8) as u32;
                d.chunks.resize(d.chunks.len() + 256, 0);
            }
        }
        let mut ids: HashMap<V, u32> = HashMap::new();
        for (i, &(s, v)) in points.iter().enumerate() {
            let Some(v) = v else { continue };
            let id = *ids.entry(v).or_insert_with(|| {
                d.vals.push(Some(v));
                (d.vals.len() - 1) as u32
            });
            let end = points.get(i + 1).map_or(1u64 << 32, |p| p.0 as u64);
            // Only the first and the last /24 of a range can be split (a split /24 holds the
            // start of a range): those get the range's part of their chunk, the /24s between
            // get the id.
            let mut a = s as u64;
            while a < end {
                let slot = (a >> 8) as usize;
                let Some(&t) = d.top.get(slot) else { break };
                if t & V4_CHUNK != 0 {
                    let next = (a | 0xff) + 1;
                    let base = ((t & !V4_CHUNK) as usize) << 8;
                    let (lo, hi) = ((a & 0xff) as usize, (end.min(next) - (a & !0xff)) as usize);
                    if let Some(c) = d.chunks.get_mut(base + lo..base + hi) {
                        c.fill(id);
                    }
                    a = next;
                } else {
                    // Whole /24s up to the one holding `end`, which is split if `end` is not
                    // at its start (and then handled on the next turn).
                    let stop = ((end >> 8) as usize).max(slot + 1);
                    if let Some(ts) = d.top.get_mut(slot..stop) {
                        ts.fill(id);
                    }
                    a = (stop as u64) << 8;
                }
            }
        }
        d.chunks.shrink_to_fit();
        d.vals.shrink_to_fit();
        d
    }

    fn memory_bytes(&self) -> usize {
        (self.top.capacity() + self.chunks.capacity()) * 4 + self.vals.capacity() * std::mem::size_of::<Option<V>>()
    }
}

impl<V: Copy + PartialEq, K: Key> Family<V, K> {
    /// Looks `k` (the key bits below the leaf) up in the leaf `e`; `wide_key` gives all the
    /// address bits below the leaf, left-aligned, for wide leaves.
    #[inline(always)]
    fn leaf<const W: usize>(&self, e: u32, k: K, wide_key: impl Fn() -> u128) -> Option<V> {
        match e & 3 {
            TAG_LEAF => self.window::<W>(e, k),
            TAG_BIG => self.big_leaf(e, k),
            _ => self.wide_leaf(e, wide_key()),
        }
    }

    /// Looks `k` up in the window leaf `e`.
    #[inline(always)]
    fn window<const W: usize>(&self, e: u32, k: K) -> Option<V> {
        let payload = (e >> PAYLOAD_SHIFT) as usize;
        let len = ((e >> 2) & 31) as usize + 1;
        let w: &[Slot<K, V>; W] = self.slots.get(payload..payload + W)?.try_into().ok()?;
        let slot = w.get(window_le(w, len, k))?;
        (!slot.key.is_none()).then_some(slot.val)
    }

    #[cold]
    #[inline(never)]
    fn big_leaf(&self, e: u32, k: K) -> Option<V> {
        let &(off, len) = self.big.get((e >> PAYLOAD_SHIFT) as usize)?;
        let (off, len) = (off as usize, len as usize);
        let slots = self.slots.get(off..off + len)?;
        let slot = slots.get(last_le(slots, |s| s.key, k))?;
        (!slot.key.is_none()).then_some(slot.val)
    }

    #[cold]
    #[inline(never)]
    fn wide_leaf(&self, e: u32, k: u128) -> Option<V> {
        let &(off, len) = self.wide.get((e >> PAYLOAD_SHIFT) as usize)?;
        let (off, len) = (off as usize, len as usize);
        self.wvals.get(off + last_le(self.wkeys.get(off..off + len)?, |&k| k, k)).copied().flatten()
    }

    fn memory_bytes(&self) -> usize {
        fn bytes<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        bytes(&self.nodes)
            + bytes(&self.slots)
            + bytes(&self.big)
            + bytes(&self.wide)
            + bytes(&self.wkeys)
            + bytes(&self.wvals)
    }

    /// Builds the trie over flattened ranges `points` of a `width`-bit family.
    fn build<const W: usize>(points: &[(u128, Option<V>)], width: u32, root: u32, strides: &[u32]) -> Self {
        let mut f = Family {
            nodes: Vec::new(),
            slots: Vec::new(),
            last: None,
            big: Vec::new(),
            wide: Vec::new(),
            wkeys: Vec::new(),
            wvals: Vec::new(),
        };
        // Only the default "no value" range: nothing to look up.
        if points.iter().all(|(_, v)| v.is_none()) {
            return f;
        }
        // Work on left-aligned addresses so that both families shift the same way.
        let aligned: Vec<(u128, Option<V>)> = points.iter().map(|&(s, v)| (s << (128 - width), v)).collect();
        f.nodes = vec![0; 1 << root];
        f.slots.reserve(points.len() * 5 / 4 + W);
        let Some(fill) = points.iter().find_map(|&(_, v)| v) else {
            return f;
        };
        f.fill_node::<W>(&aligned, 0, 0, root, strides, fill);
        f.slots.extend(std::iter::repeat_n(Slot { key: K::default(), val: fill }, W));
        f.nodes.shrink_to_fit();
        f.slots.shrink_to_fit();
        f
    }

    /// Fills the node at `nodes[at..at + (1 << stride)]`, which covers the left-aligned region
    /// starting at `region` of bits `depth..` (the first `depth` bits are fixed); `points` are
    /// the ranges inside it, the first covering its first address.
    fn fill_node<const W: usize>(
        &mut self,
        points: &[(u128, Option<V>)],
        at: usize,
        depth: u32,
        stride: u32,
        strides: &[u32],
        fill: V,
    ) {
        let leaf_depth = depth + stride;
        // Bucket i covers addresses whose bits depth..leaf_depth equal i.
        let shift = 128 - leaf_depth;
        let base = points.first().map_or(0, |p| p.0) & !u128::MAX.checked_shr(depth).unwrap_or(0);
        let mut i = 0usize;
        let mut scratch: Vec<(u128, Option<V>)> = Vec::new();
        for b in 0..1u128 << stride {
            let start = base | (b << shift);
            let last = start | u128::MAX.checked_shr(leaf_depth).unwrap_or(0);
            while i + 1 < points.len() && points[i + 1].0 <= start {
                i += 1;
            }
            let mut j = i + 1;
            while j < points.len() && points[j].0 <= last {
                j += 1;
            }
            // Fast path, most buckets: one range, the same value as the last slot.
            if j == i + 1
                && let Some(&(_, v)) = points.get(i)
                && self.last == Some(v)
                && let Some(slot) = self.nodes.get_mut(at + b as usize)
            {
                *slot = pack(self.slots.len() - 1, 1, TAG_LEAF);
                continue;
            }
            scratch.clear();
            if let Some(&(_, v)) = points.get(i) {
                scratch.push((start, v));
            }
            if let Some(rest) = points.get(i + 1..j) {
                scratch.extend_from_slice(rest);
            }
            let e = self.leaf_or_node::<W>(&scratch, leaf_depth, strides, fill);
            if let Some(slot) = self.nodes.get_mut(at + b as usize) {
                *slot = e;
            }
            i = j.saturating_sub(1).max(i);
        }
    }

    /// The entry for a bucket at `depth` holding `entries`.
    fn leaf_or_node<const W: usize>(
        &mut self,
        entries: &[(u128, Option<V>)],
        depth: u32,
        strides: &[u32],
        fill: V,
    ) -> u32 {
        // Key bits of a range start below the bucket; it fits a K when nothing is set below.
        let rest = |s: u128| s.checked_shl(depth).unwrap_or(0);
        // The lowest key bit is kept for the no-value flag.
        let narrow = entries.iter().all(|&(s, _)| rest(s) & (u128::MAX >> (K::BITS - 1)) == 0);
        if entries.len() <= W && narrow {
            let off = self.slots.len();
            if let [(_, v)] = entries
                && self.last == Some(*v)
            {
                return pack(off - 1, 1, TAG_LEAF);
            }
            self.push_narrow(entries, &rest, fill);
            return pack(off, entries.len(), TAG_LEAF);
        }
        if let Some((&stride, more)) = strides.split_first() {
            let at = self.nodes.len().div_ceil(NODE_ALIGN) * NODE_ALIGN;
            self.nodes.resize(at + (1 << stride), 0);
            self.fill_node::<W>(entries, at, depth, stride, more, fill);
            return pack(at / NODE_ALIGN, 0, TAG_NODE);
        }
        if narrow {
            let off = self.slots.len();
            self.push_narrow(entries, &rest, fill);
            self.big.push((off as u32, entries.len() as u32));
            return pack(self.big.len() - 1, 0, TAG_BIG);
        }
        let off = self.wvals.len();
        for &(s, v) in entries {
            self.wkeys.push(rest(s));
            self.wvals.push(v);
        }
        self.wide.push((off as u32, entries.len() as u32));
        pack(self.wide.len() - 1, 0, TAG_WIDE)
    }

    fn push_narrow(&mut self, entries: &[(u128, Option<V>)], rest: &impl Fn(u128) -> u128, fill: V) {
        for &(s, v) in entries {
            self.slots.push(Slot { key: K::top_of(rest(s), v.is_none()), val: v.unwrap_or(fill) });
            self.last = Some(v);
        }
    }
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
    prefixes.truncate(MAX_PREFIXES);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("test prefix")
    }

    /// Longest match by linear scan, for checking.
    fn naive(entries: &[(IpNet, u32)], ip: IpAddr) -> Option<u32> {
        let mut best: Option<(u8, u32)> = None;
        for &(net, v) in entries {
            if net.contains(&ip) && best.is_none_or(|(l, _)| net.prefix_len() >= l) {
                best = Some((net.prefix_len(), v));
            }
        }
        best.map(|b| b.1)
    }

    #[test]
    fn child_nodes_big_and_wide_leaves() {
        // Every /32 of one IPv4 /22 with its own value: child nodes down to depth 32. In IPv6,
        // 300 consecutive /60s inside one /48 (more than a window below the deepest node: a big
        // leaf) and /128s in another /48 (boundaries past the key bits: a wide leaf).
        let mut entries: Vec<(IpNet, u32)> = Vec::new();
        for i in 0..1024u32 {
            entries.push((IpNet::new(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)), 32).expect("v4"), i));
        }
        for i in 0..300u128 {
            let a = (0x2001_0db8_0001u128 << 80) | (i << 68);
            entries.push((IpNet::new(IpAddr::from(std::net::Ipv6Addr::from(a)), 60).expect("v6"), 5000 + i as u32));
            let b = (0x2001_0db8_0002u128 << 80) | (i * 977);
            entries.push((IpNet::new(IpAddr::from(std::net::Ipv6Addr::from(b)), 128).expect("v6"), 9000 + i as u32));
        }
        entries.push((net("2001:db8::/32"), 1));
        let t = PrefixTable::build(entries.iter().copied());
        assert!(!t.v4.chunks.is_empty(), "IPv4 chunks");
        assert!(!t.v6.big.is_empty(), "IPv6 big leaf");
        assert!(!t.v6.wide.is_empty(), "IPv6 wide leaf");
        let mut probes: Vec<IpAddr> = Vec::new();
        for &(n, _) in &entries {
            probes.extend([n.network(), n.broadcast()]);
            if let (IpAddr::V6(a), IpAddr::V6(b)) = (n.network(), n.broadcast()) {
                probes.push(IpAddr::from(std::net::Ipv6Addr::from(u128::from(a).wrapping_sub(1))));
                probes.push(IpAddr::from(std::net::Ipv6Addr::from(u128::from(b).wrapping_add(1))));
            }
        }
        probes.extend(
            ["10.0.4.0", "9.255.255.255", "2001:db8:3::", "2001:db7::"].map(|s| s.parse::<IpAddr>().expect("ip")),
        );
        for ip in probes {
            assert_eq!(t.lookup(ip), naive(&entries, ip), "{ip}");
        }
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
