//! The in-memory session index and resolution.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use hashbrown::HashTable;
use kizuna_model::Timestamp;

use crate::arena::{Arena, Interner, hash_bytes, mix};
use crate::runs::SortedRuns;
use crate::{
    AcctStatus, LeaseAction, LeaseEvent, PortBlockAction, PortBlockEvent, PortBlockRef, RadiusEvent, Resolution,
    ResolverConfig, SessionEvent, SessionRef, Source, Subscriber, Unresolved, canonical_ip, v6_bits,
};

const OPEN: u32 = u32::MAX;
const NONE: u32 = u32::MAX;
const F_V4: u8 = 1;
/// Lookups whose memory is touched together in the batched calls.
const GROUP: usize = 16;
const F_V6: u8 = 2;
const F_RESET: u8 = 4;

/// One session: 28 bytes. Times are Unix seconds (u32: 1970..2106).
#[derive(Clone, Copy)]
struct Sess {
    start: u32,
    end: u32,
    last: u32,
    sub: u32,
    sid: u32,
    nas: u32,
    source: u8,
    flags: u8,
}

/// What a lookup needs of one IPv4 session, stored in the compacted IPv4 index order so that
/// the entries searched for the address already hold the times and the subscriber: 16 bytes.
/// `who` is the subscriber id, with the top bit set for DHCP clients (the kind in [`Cand::who`]).
#[derive(Clone, Copy)]
struct Hot {
    addr: u32,
    start: u32,
    end: u32,
    who: u32,
}

const HOT_DHCP: u32 = 1 << 31;

#[derive(Clone, Copy)]
struct Block {
    start: u32,
    end: u32,
    last: u32,
    outside: u32,
    lo: u16,
    hi: u16,
    inside: IpAddr,
}

/// Counters of what the index holds and what it did with events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Sessions (RADIUS and DHCP).
    pub sessions: usize,
    /// CGNAT port blocks.
    pub port_blocks: usize,
    /// Distinct subscriber keys.
    pub subscribers: usize,
    /// Events that changed or confirmed the index.
    pub events_applied: u64,
    /// Events that could not be used (time outside 1970–2106, a Stop/Interim without an
    /// address for an unknown session, a release for an unknown lease, arena full).
    pub events_ignored: u64,
    /// Sorted runs per address family (1 after [`SessionIndex::compact`]).
    pub runs: usize,
}

/// Sessions from every log, indexed by address and time. See the crate docs for the rules.
pub struct SessionIndex {
    cfg: ResolverConfig,
    sessions: Vec<Sess>,
    subs: Interner,
    nas: Interner,
    sids: Arena,
    radius_keys: HashTable<u32>,
    open_radius: HashSet<u32>,
    leases: HashMap<(u8, IpAddr), u32>,
    v4: SortedRuns<(u32, u32)>,
    v6: SortedRuns<(u64, u8, u32)>,
    v6_long: SortedRuns<(u128, u8, u32)>,
    v6_lens: Vec<u8>,
    /// Built by `compact`: `hot[p]` mirrors session `p`, which is the `p`-th entry of the
    /// compacted IPv4 run (compaction numbers sessions in that order). Kept in step with every
    /// change to a session (`sync_hot`); used while that run is the first one.
    hot: Vec<Hot>,
    blocks: Vec<Block>,
    block_idx: SortedRuns<(u32, u16, u32)>,
    block_keys: HashMap<(u32, u16, u16, IpAddr), u32>,
    max_block_span: u16,
    /// Tells this index's subscriber ids from another instance's ([`SubscriberMarks`]).
    instance: u64,
    applied: u64,
    ignored: u64,
}

#[derive(Clone, Copy, Default)]
struct Cand {
    id: u32,
    start: i64,
    end: i64,
    open: bool,
    last: i64,
    who: u128,
}

/// Candidates of one lookup, in a buffer reused from lookup to lookup on each thread (an inline
/// array had to be zeroed, 1 KiB, on every lookup; this costs a thread-local swap).
struct Cands {
    v: Vec<Cand>,
}

thread_local! {
    static SPARE_CANDS: std::cell::Cell<Vec<Cand>> = const { std::cell::Cell::new(Vec::new()) };
}

impl Cands {
    fn new() -> Self {
        let mut v = SPARE_CANDS.take();
        v.clear();
        Cands { v }
    }

    #[inline]
    fn push(&mut self, c: Cand) {
        self.v.push(c);
    }

    fn clear(&mut self) {
        self.v.clear();
    }

    fn is_empty(&self) -> bool {
        self.v.is_empty()
    }

    fn as_mut(&mut self) -> &mut [Cand] {
        &mut self.v
    }
}

impl Drop for Cands {
    fn drop(&mut self) {
        if self.v.capacity() <= 1024 {
            SPARE_CANDS.set(std::mem::take(&mut self.v));
        }
    }
}

fn secs(t: Timestamp) -> Option<u32> {
    u32::try_from(t.as_secs()).ok().filter(|&s| s != OPEN && s != 0)
}

static NEXT_INSTANCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A caller's decision per subscriber of one index, for [`SessionIndex::live_nets_marked`]:
/// each subscriber's key is judged once, not once per scan (memory: one byte per byte of the
/// subscriber keys). Subscriber ids only grow within one
/// index, so the marks stay valid until the caller's rule changes ([`SubscriberMarks::clear`])
/// or the index is another one (noticed by itself).
#[derive(Debug, Default, Clone)]
pub struct SubscriberMarks {
    instance: u64,
    /// 0 not judged yet, 1 kept, 2 not kept.
    marks: Vec<u8>,
}

impl SubscriberMarks {
    /// Forgets every decision (the rule changed).
    pub fn clear(&mut self) {
        self.marks.clear();
    }
}

fn ts(s: u32) -> Timestamp {
    Timestamp::from_secs(i64::from(s))
}

fn key_hash(nas: u32, sub: u32, sid: &[u8]) -> u64 {
    mix(hash_bytes(sid, (u64::from(nas) << 32) | u64::from(sub)))
}

impl SessionIndex {
    /// An empty index.
    pub fn new(cfg: ResolverConfig) -> Self {
        SessionIndex {
            cfg,
            sessions: Vec::new(),
            subs: Interner::default(),
            nas: Interner::default(),
            sids: Arena::default(),
            radius_keys: HashTable::new(),
            open_radius: HashSet::new(),
            leases: HashMap::new(),
            v4: SortedRuns::default(),
            v6: SortedRuns::default(),
            v6_long: SortedRuns::default(),
            v6_lens: Vec::new(),
            hot: Vec::new(),
            blocks: Vec::new(),
            block_idx: SortedRuns::default(),
            block_keys: HashMap::new(),
            max_block_span: 0,
            instance: NEXT_INSTANCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            applied: 0,
            ignored: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ResolverConfig {
        &self.cfg
    }

    /// Number of sessions (RADIUS and DHCP; CGNAT port blocks are in [`SessionIndex::stats`]).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when the index holds no session and no port block.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.blocks.is_empty()
    }

    /// Counters.
    pub fn stats(&self) -> IndexStats {
        IndexStats {
            sessions: self.sessions.len(),
            port_blocks: self.blocks.len(),
            subscribers: self.subs.len(),
            events_applied: self.applied,
            events_ignored: self.ignored,
            runs: self.v4.run_count().max(self.v6.run_count()),
        }
    }

    /// Heap bytes held (capacities of every vector, arena and table).
    pub fn memory_bytes(&self) -> usize {
        self.sessions.capacity() * std::mem::size_of::<Sess>()
            + self.subs.memory_bytes()
            + self.nas.memory_bytes()
            + self.sids.memory_bytes()
            + self.radius_keys.capacity() * 5
            + self.open_radius.capacity() * 5
            + self.leases.capacity() * (std::mem::size_of::<((u8, IpAddr), u32)>() + 1)
            + self.v4.memory_bytes()
            + self.v6.memory_bytes()
            + self.v6_long.memory_bytes()
            + self.hot.capacity() * std::mem::size_of::<Hot>()
            + self.blocks.capacity() * std::mem::size_of::<Block>()
            + self.block_idx.memory_bytes()
            + self.block_keys.capacity() * (std::mem::size_of::<((u32, u16, u16, IpAddr), u32)>() + 1)
    }

    /// Merges the sorted runs into one per family: call after a bulk load for the fastest
    /// lookups. (Loading never needs it; lookups are correct either way.)
    ///
    /// It also renumbers sessions so that the sessions of one IPv4 address lie next to each
    /// other in memory, in address order: a lookup then touches one or two cache lines of
    /// sessions instead of one per session.
    pub fn compact(&mut self) {
        self.v4.compact();
        self.v6.compact();
        self.v6_long.compact();
        self.block_idx.compact();
        self.renumber();
        self.sessions.shrink_to_fit();
        self.build_hot();
    }

    fn build_hot(&mut self) {
        self.hot = Vec::new();
        let run = self.v4.compacted();
        if run.is_empty() || self.v4.bucket_bounds(0).is_none() {
            return;
        }
        let mut hot = Vec::with_capacity(run.len());
        for (p, &(addr, id)) in run.iter().enumerate() {
            let s = &self.sessions[p];
            if id as usize != p || s.sub >= HOT_DHCP {
                return;
            }
            hot.push(Hot { addr, start: s.start, end: s.end, who: hot_who(s) });
        }
        self.hot = hot;
    }

    /// Copies session `id`'s lookup fields to its [`Hot`] entry (after any change to it).
    fn sync_hot(&mut self, id: u32) {
        if let Some(h) = self.hot.get_mut(id as usize) {
            let s = &self.sessions[id as usize];
            h.start = s.start;
            h.end = s.end;
            h.who = hot_who(s);
        }
    }

    fn renumber(&mut self) {
        let n = self.sessions.len();
        let mut new_of_old = vec![NONE; n];
        let mut order: Vec<u32> = Vec::with_capacity(n);
        for &(_, id) in self.v4.compacted() {
            if new_of_old[id as usize] == NONE {
                new_of_old[id as usize] = order.len() as u32;
                order.push(id);
            }
        }
        if order.is_empty() && n > 0 {
            return;
        }
        for id in 0..n as u32 {
            if new_of_old[id as usize] == NONE {
                new_of_old[id as usize] = order.len() as u32;
                order.push(id);
            }
        }
        if order.iter().enumerate().all(|(i, &id)| i as u32 == id) {
            return;
        }
        self.sessions = order.iter().map(|&old| self.sessions[old as usize]).collect();
        drop(order);
        let m = |id: u32| new_of_old[id as usize];
        self.v4.remap(|(a, id)| (a, m(id)));
        self.v6.remap(|(p, l, id)| (p, l, m(id)));
        self.v6_long.remap(|(p, l, id)| (p, l, m(id)));
        for id in self.radius_keys.iter_mut() {
            *id = m(*id);
        }
        self.open_radius = self.open_radius.iter().map(|&id| m(id)).collect();
        for id in self.leases.values_mut() {
            *id = m(*id);
        }
    }

    /// Forgets sessions and port blocks that ended before `cutoff` (retention: session logs are
    /// kept for a fixed time, and a tailing agent must not grow for ever). Open ones are kept.
    /// Returns how many sessions and blocks were dropped; compacts the index.
    pub fn prune_before(&mut self, cutoff: Timestamp) -> usize {
        let c = u32::try_from(cutoff.as_secs().max(0)).unwrap_or(OPEN - 1);
        let n = self.sessions.len();
        let mut new_of_old = vec![NONE; n];
        let mut kept = Vec::with_capacity(n);
        let mut sids = Arena::default();
        for (i, s) in self.sessions.iter().enumerate() {
            if s.end == OPEN || s.end >= c {
                let mut s = *s;
                if s.sid != NONE {
                    s.sid = sids.push(self.sids.get(s.sid)).unwrap_or(NONE);
                }
                new_of_old[i] = kept.len() as u32;
                kept.push(s);
            }
        }
        let dropped = n - kept.len();
        self.sessions = kept;
        self.sids = sids;
        let m = |id: u32| Some(new_of_old[id as usize]).filter(|&x| x != NONE);
        self.v4.rebuild(|(a, id)| m(id).map(|id| (a, id)));
        self.v6.rebuild(|(p, l, id)| m(id).map(|id| (p, l, id)));
        self.v6_long.rebuild(|(p, l, id)| m(id).map(|id| (p, l, id)));
        self.open_radius = self.open_radius.iter().filter_map(|&id| m(id)).collect();
        self.leases = self.leases.iter().filter_map(|(k, &id)| m(id).map(|id| (*k, id))).collect();
        // Session keys: the latest session of each key.
        let mut keys: HashTable<u32> = HashTable::new();
        let (sessions, sids) = (&self.sessions, &self.sids);
        let hash_of = |i: u32| {
            let s = &sessions[i as usize];
            key_hash(s.nas, s.sub, sids.get_bytes(s.sid))
        };
        for (i, s) in sessions.iter().enumerate() {
            if s.sid == NONE {
                continue;
            }
            let i = i as u32;
            let h = hash_of(i);
            let same = |&j: &u32| {
                let t = &sessions[j as usize];
                t.nas == s.nas && t.sub == s.sub && sids.get_bytes(t.sid) == sids.get_bytes(s.sid)
            };
            match keys.find_entry(h, same) {
                Ok(mut e) => {
                    if sessions[*e.get() as usize].start <= s.start {
                        *e.get_mut() = i;
                    }
                }
                Err(_) => {
                    keys.insert_unique(h, i, |&j| hash_of(j));
                }
            }
        }
        self.radius_keys = keys;
        // Port blocks.
        let nb = self.blocks.len();
        let mut block_new = vec![NONE; nb];
        let mut blocks = Vec::with_capacity(nb);
        for (i, b) in self.blocks.iter().enumerate() {
            if b.end == OPEN || b.end >= c {
                block_new[i] = blocks.len() as u32;
                blocks.push(*b);
            }
        }
        let dropped_blocks = nb - blocks.len();
        self.blocks = blocks;
        let mb = |id: u32| Some(block_new[id as usize]).filter(|&x| x != NONE);
        self.block_idx.rebuild(|(o, lo, id)| mb(id).map(|id| (o, lo, id)));
        self.block_keys = self.block_keys.iter().filter_map(|(k, &id)| mb(id).map(|id| (*k, id))).collect();
        self.max_block_span = self.blocks.iter().map(|b| b.hi - b.lo).max().unwrap_or(0);
        self.compact();
        dropped + dropped_blocks
    }

    /// Applies events in order. Idempotent for repeated events (retransmissions, a file read
    /// twice). New sessions are visible to lookups when this returns. Returns how many were
    /// applied.
    pub fn add_events(&mut self, events: impl IntoIterator<Item = SessionEvent>) -> u64 {
        let before = self.applied;
        for e in events {
            let ok = match e {
                SessionEvent::Radius(r) => self.radius(&r),
                SessionEvent::NasReset { nas, at } => self.nas_reset(&nas, at),
                SessionEvent::Lease(l) => self.lease(&l),
                SessionEvent::PortBlock(b) => self.port_block(&b),
            };
            if ok {
                self.applied += 1;
            } else {
                self.ignored += 1;
            }
        }
        self.v4.seal();
        self.v6.seal();
        self.v6_long.seal();
        self.block_idx.seal();
        self.applied - before
    }

    fn index_addrs(&mut self, id: u32, framed: Option<std::net::Ipv4Addr>, prefixes: &[ipnet::Ipv6Net]) {
        let s = &mut self.sessions[id as usize];
        if let Some(a) = framed
            && s.flags & F_V4 == 0
        {
            s.flags |= F_V4;
            self.v4.push((u32::from(a), id));
        }
        if !prefixes.is_empty() && s.flags & F_V6 == 0 {
            s.flags |= F_V6;
            for p in prefixes {
                let len = p.prefix_len();
                let bits = v6_bits(p.network());
                if len <= 64 {
                    self.v6.push(((bits >> 64) as u64, len, id));
                } else {
                    self.v6_long.push((bits, len, id));
                }
                if let Err(pos) = self.v6_lens.binary_search_by(|x| len.cmp(x)) {
                    self.v6_lens.insert(pos, len); // longest first
                }
            }
        }
    }

    fn new_session(&mut self, s: Sess) -> Option<u32> {
        let id = u32::try_from(self.sessions.len()).ok().filter(|&i| i != NONE)?;
        self.sessions.push(s);
        Some(id)
    }

    fn radius(&mut self, e: &RadiusEvent) -> bool {
        let Some(t) = secs(e.at) else { return false };
        let (Some(nas), Some(sub)) = (self.nas.intern(&e.nas), self.subs.intern(&e.user)) else { return false };
        let h = key_hash(nas, sub, e.session_id.as_bytes());
        let (sessions, sids) = (&self.sessions, &self.sids);
        let found = self
            .radius_keys
            .find(h, |&id| {
                let s = &sessions[id as usize];
                s.nas == nas && s.sub == sub && sids.get_bytes(s.sid) == e.session_id.as_bytes()
            })
            .copied();
        let has_addr = e.framed_ip.is_some() || !e.prefixes.is_empty();
        if let Some(id) = found {
            let s = self.sessions[id as usize];
            let same_session = s.end == OPEN || t <= s.end || e.status == AcctStatus::Stop && s.flags & F_RESET != 0;
            if same_session && e.status == AcctStatus::Stop && t < s.start {
                // A late copy of the Stop of an earlier session that used the same key.
                return true;
            }
            if same_session {
                let s = &mut self.sessions[id as usize];
                match e.status {
                    AcctStatus::Start => {
                        s.start = s.start.min(t);
                        s.last = s.last.max(t);
                    }
                    AcctStatus::Interim => s.last = s.last.max(t),
                    AcctStatus::Stop => {
                        if s.end == OPEN || s.flags & F_RESET != 0 {
                            s.end = t.max(s.start);
                            s.flags &= !F_RESET;
                            self.open_radius.remove(&id);
                        }
                        s.last = s.last.max(t.min(s.end));
                    }
                }
                self.sync_hot(id);
                self.index_addrs(id, e.framed_ip, &e.prefixes);
                return true;
            }
            // The NAS reused the session id after the old session ended: a new session.
        }
        if !has_addr {
            return false;
        }
        let start = match e.status {
            AcctStatus::Start => t,
            _ => t.saturating_sub(e.session_time.unwrap_or(0)).max(1),
        };
        let Some(sid) = self.sids.push(&e.session_id) else { return false };
        let end = if e.status == AcctStatus::Stop { t } else { OPEN };
        let Some(id) =
            self.new_session(Sess { start, end, last: t, sub, sid, nas, source: Source::Radius.code(), flags: 0 })
        else {
            return false;
        };
        if end == OPEN {
            self.open_radius.insert(id);
        }
        let (sessions, sids) = (&self.sessions, &self.sids);
        let rehash = |&i: &u32| {
            let s = &sessions[i as usize];
            key_hash(s.nas, s.sub, sids.get_bytes(s.sid))
        };
        match found {
            Some(old) => {
                if let Ok(entry) = self.radius_keys.find_entry(h, |&i| i == old) {
                    *entry.into_mut() = id;
                }
            }
            None => {
                self.radius_keys.insert_unique(h, id, rehash);
            }
        }
        self.index_addrs(id, e.framed_ip, &e.prefixes);
        true
    }

    fn nas_reset(&mut self, nas: &str, at: Timestamp) -> bool {
        let Some(t) = secs(at) else { return false };
        let Some(nas) = self.nas.lookup(nas) else { return true };
        let closing: Vec<u32> = self
            .open_radius
            .iter()
            .copied()
            .filter(|&i| self.sessions[i as usize].nas == nas && self.sessions[i as usize].start <= t)
            .collect();
        for i in closing {
            let s = &mut self.sessions[i as usize];
            s.end = t;
            s.flags |= F_RESET;
            self.open_radius.remove(&i);
            self.sync_hot(i);
        }
        true
    }

    fn lease(&mut self, l: &LeaseEvent) -> bool {
        let addr = canonical_ip(l.addr);
        let key = (l.source.code(), addr);
        let latest = self.leases.get(&key).copied();
        match l.action {
            LeaseAction::Held { start, end } => {
                let Some(start) = secs(start) else { return false };
                let end = match end {
                    Some(e) => match secs(e) {
                        Some(e) => e.max(start),
                        None => return false,
                    },
                    None => OPEN,
                };
                let Some(sub) = self.subs.intern(&l.client) else { return false };
                if let Some(li) = latest {
                    let s = &mut self.sessions[li as usize];
                    if s.sub == sub && start >= s.start && (s.end == OPEN || start <= s.end) {
                        // Renewal (or the same line again): extend.
                        s.end = if end == OPEN || s.end == OPEN { OPEN } else { s.end.max(end) };
                        s.last = s.last.max(start);
                        self.sync_hot(li);
                        return true;
                    }
                    if s.sub == sub && start < s.start && (end == OPEN || end >= s.start) {
                        // An older line of the same lease (a file read out of order).
                        s.start = start;
                        self.sync_hot(li);
                        return true;
                    }
                    if start >= s.start && (s.end == OPEN || s.end > start) {
                        // Another client got the address: the previous lease ended.
                        s.end = start;
                    }
                    self.sync_hot(li);
                }
                let Some(id) = self.new_session(Sess {
                    start,
                    end,
                    last: start,
                    sub,
                    sid: NONE,
                    nas: NONE,
                    source: l.source.code(),
                    flags: 0,
                }) else {
                    return false;
                };
                if latest.is_none_or(|li| start >= self.sessions[li as usize].start) {
                    self.leases.insert(key, id);
                }
                match addr {
                    IpAddr::V4(a) => {
                        self.sessions[id as usize].flags |= F_V4;
                        self.v4.push((u32::from(a), id));
                    }
                    IpAddr::V6(a) => {
                        let net = ipnet::Ipv6Net::from(a);
                        self.index_addrs(id, None, &[net]);
                    }
                }
                true
            }
            LeaseAction::Ended { at } | LeaseAction::Declined { at } => {
                let Some(t) = secs(at) else { return false };
                let Some(li) = latest else { return false };
                let declined = matches!(l.action, LeaseAction::Declined { .. });
                let client_matches = declined
                    || l.client.is_empty()
                    || self.subs.lookup(&l.client) == Some(self.sessions[li as usize].sub);
                if !client_matches {
                    return false;
                }
                let s = &mut self.sessions[li as usize];
                if t >= s.start && (s.end == OPEN || t < s.end) {
                    s.end = t;
                }
                self.sync_hot(li);
                true
            }
        }
    }

    fn port_block(&mut self, b: &PortBlockEvent) -> bool {
        let Some(t) = secs(b.at) else { return false };
        if b.port_lo > b.port_hi {
            return false;
        }
        let outside = u32::from(b.outside);
        let key = (outside, b.port_lo, b.port_hi, b.inside);
        let latest = self.block_keys.get(&key).copied();
        if let Some(bi) = latest {
            let blk = &mut self.blocks[bi as usize];
            let live = blk.end == OPEN || t <= blk.end;
            match b.action {
                PortBlockAction::Allocate if live => {
                    blk.start = blk.start.min(t);
                    return true;
                }
                PortBlockAction::Active if live => {
                    blk.last = blk.last.max(t);
                    return true;
                }
                PortBlockAction::Release if blk.end == OPEN => {
                    blk.end = t.max(blk.start);
                    return true;
                }
                PortBlockAction::Release if live => return true,
                _ => {}
            }
        }
        let (start, end) = match b.action {
            PortBlockAction::Allocate | PortBlockAction::Active => (t, OPEN),
            PortBlockAction::Release => (t, t),
        };
        let Ok(id) = u32::try_from(self.blocks.len()) else { return false };
        self.blocks.push(Block { start, end, last: t, outside, lo: b.port_lo, hi: b.port_hi, inside: b.inside });
        self.block_keys.insert(key, id);
        self.block_idx.push((outside, b.port_lo, id));
        self.max_block_span = self.max_block_span.max(b.port_hi - b.port_lo);
        true
    }

    // ---- resolution ----

    /// Who had `ip` (and `port`, behind a CGNAT) at `at`? Never a guess: see the crate docs.
    pub fn resolve(&self, ip: IpAddr, port: Option<u16>, at: Timestamp) -> Resolution {
        let ip = canonical_ip(ip);
        let t = at.as_secs();
        if let IpAddr::V4(v4) = ip {
            let o = u32::from(v4);
            if self.block_idx.any_in(&(o, 0, 0), &(o, u16::MAX, u32::MAX)) {
                return self.resolve_cgnat(o, port, t);
            }
        }
        match self.resolve_direct(ip, t) {
            Ok(id) => self.resolved(id, None),
            Err(u) => Resolution::Unresolved(u),
        }
    }

    /// [`SessionIndex::resolve`] for many queries; answers in the order of the queries.
    /// Queries are visited in address order (sessions are laid out by address after
    /// [`SessionIndex::compact`]), which turns random memory access into a sweep.
    pub fn resolve_many(&self, queries: &[(IpAddr, Option<u16>, Timestamp)]) -> Vec<Resolution> {
        let mut out = vec![Resolution::Unresolved(Unresolved::NoSession); queries.len()];
        for group in address_order(queries).chunks(GROUP) {
            self.touch(queries, group);
            for &i in group {
                let (ip, port, at) = queries[i as usize];
                out[i as usize] = self.resolve(ip, port, at);
            }
        }
        out
    }

    /// Loads the cache lines a group of lookups will need, stage by stage for the whole group
    /// (first-level buckets, then index entries, then sessions): the loads of one stage are
    /// independent, so the CPU waits for memory about once per stage and group instead of three
    /// times per lookup.
    fn touch(&self, queries: &[(IpAddr, Option<u16>, Timestamp)], group: &[u32]) {
        let mut addrs = [0u32; GROUP];
        let mut n = 0;
        for &i in group {
            if let IpAddr::V4(a) = canonical_ip(queries[i as usize].0) {
                addrs[n] = u32::from(a);
                n += 1;
            }
        }
        if self.hot_bucket(0).is_some() {
            // Stage 1: the lookup table slots (the bucket bounds).
            let mut bounds = [(0usize, 0usize); GROUP];
            for k in 0..n {
                bounds[k] = self.hot_bucket(addrs[k]).unwrap_or((0, 0));
            }
            // Stage 2: every cache line of each bucket's hot entries (16 bytes, 4 per line),
            // which hold everything the lookup reads but the subscriber's name.
            let mut x = 0u32;
            for &(lo, hi) in &bounds[..n] {
                if hi > lo && hi - lo <= 64 {
                    let mut p = lo;
                    while p < hi {
                        x ^= self.hot[p].start;
                        p += 4;
                    }
                    x ^= self.hot[hi - 1].start;
                }
            }
            std::hint::black_box(x);
            return;
        }
        let mut buckets: [&[(u32, u32)]; GROUP] = [&[]; GROUP];
        // Stage 1: the lookup table slots (the bucket bounds).
        for k in 0..n {
            if let Some(b) = self.v4.bucket(addrs[k]) {
                buckets[k] = b;
            }
        }
        // Stage 2: the index entries of each address (its sessions' ids).
        let mut x = 0u32;
        let mut span = [(0u32, 0u32); GROUP];
        for k in 0..n {
            let b = buckets[k];
            let j = b.partition_point(|e| e.0 < addrs[k]);
            let run = &b[j..];
            let len = run.iter().take(GROUP).take_while(|e| e.0 == addrs[k]).count();
            if len > 0 {
                let (lo, hi) = run[..len].iter().fold((u32::MAX, 0), |(lo, hi), e| (lo.min(e.1), hi.max(e.1)));
                span[k] = (lo, hi);
            } else {
                span[k] = (1, 0);
            }
        }
        // Stage 3: the sessions. After `compact` an address's sessions are neighbours, so
        // touching every other one covers their cache lines (28-byte sessions, 64-byte lines).
        for &(lo, hi) in &span[..n] {
            if hi >= lo && hi - lo < 64 {
                let mut id = lo;
                while id <= hi {
                    x ^= self.sessions[id as usize].start;
                    id += 2;
                }
                x ^= self.sessions[hi as usize].start;
            }
        }
        std::hint::black_box(x);
    }

    /// [`SessionIndex::resolve_key`] for many queries (answers in query order): the subscriber
    /// key or the reason, without building session references.
    pub fn resolve_keys(&self, queries: &[(IpAddr, Option<u16>, Timestamp)]) -> Vec<Result<&str, Unresolved>> {
        let mut out = vec![Err(Unresolved::NoSession); queries.len()];
        let mut ids = [Err(Unresolved::NoSession); GROUP];
        for group in address_order(queries).chunks(GROUP) {
            self.touch(queries, group);
            for (k, &i) in group.iter().enumerate() {
                let (ip, port, at) = queries[i as usize];
                ids[k] = self.resolve_id(ip, port, at).map(|(id, _)| self.sub_of(id));
            }
            // The subscribers' strings, again all loads first.
            let mut x = 0u8;
            for sub in ids[..group.len()].iter().flatten() {
                x ^= self.subs.get(*sub).as_bytes().first().copied().unwrap_or(0);
            }
            std::hint::black_box(x);
            for (k, &i) in group.iter().enumerate() {
                out[i as usize] = ids[k].map(|sub| self.subs.get(sub));
            }
        }
        out
    }

    /// Like [`SessionIndex::resolve`] but only says which subscriber key (or why not), without
    /// building the session reference: the fast path for counting.
    pub fn resolve_key(&self, ip: IpAddr, port: Option<u16>, at: Timestamp) -> Result<&str, Unresolved> {
        match self.resolve_id(ip, port, at) {
            Ok((id, _)) => Ok(self.subs.get(self.sub_of(id))),
            Err(u) => Err(u),
        }
    }

    fn resolve_id(&self, ip: IpAddr, port: Option<u16>, at: Timestamp) -> Result<(u32, Option<u32>), Unresolved> {
        let ip = canonical_ip(ip);
        let t = at.as_secs();
        if let IpAddr::V4(v4) = ip {
            let o = u32::from(v4);
            if self.block_idx.any_in(&(o, 0, 0), &(o, u16::MAX, u32::MAX)) {
                let port = port.ok_or(Unresolved::PortRequired)?;
                let b = self.find_block(o, port, t)?;
                let id = self.resolve_direct(self.blocks[b as usize].inside, t)?;
                return Ok((id, Some(b)));
            }
        }
        self.resolve_direct(ip, t).map(|id| (id, None))
    }

    fn resolve_cgnat(&self, o: u32, port: Option<u16>, t: i64) -> Resolution {
        let Some(port) = port else { return Resolution::Unresolved(Unresolved::PortRequired) };
        let b = match self.find_block(o, port, t) {
            Ok(b) => b,
            Err(u) => return Resolution::Unresolved(u),
        };
        match self.resolve_direct(self.blocks[b as usize].inside, t) {
            Ok(id) => self.resolved(id, Some(b)),
            Err(u) => Resolution::Unresolved(u),
        }
    }

    fn find_block(&self, o: u32, port: u16, t: i64) -> Result<u32, Unresolved> {
        let mut cands = Cands::new();
        let lo = port.saturating_sub(self.max_block_span);
        self.block_idx.for_range(&(o, lo, 0), &(o, port, u32::MAX), |&(_, _, id)| {
            let b = &self.blocks[id as usize];
            if b.hi >= port {
                cands.push(Cand {
                    id,
                    start: i64::from(b.start),
                    end: i64::from(b.end),
                    open: b.end == OPEN,
                    last: i64::from(b.last),
                    who: ip_key(b.inside),
                });
            }
        });
        if cands.is_empty() {
            return Err(Unresolved::NoPortBlock);
        }
        let cands = cands.as_mut();
        match self.decide(cands, t) {
            Ok(i) => Ok(cands[i].id),
            Err(Unresolved::OutsideSession) => Err(Unresolved::NoPortBlock),
            Err(u) => Err(u),
        }
    }

    fn sess_cand(&self, id: u32) -> Cand {
        let s = &self.sessions[id as usize];
        let kind = u128::from(Source::from_code(s.source).subscriber_kind() == crate::SubscriberKind::Dhcp);
        Cand {
            id,
            start: i64::from(s.start),
            end: i64::from(s.end),
            open: s.end == OPEN,
            last: i64::from(s.last),
            who: (kind << 32) | u128::from(s.sub),
        }
    }

    /// The entries of the compacted IPv4 run that can hold `a`, as positions in `hot`; `None`
    /// when `hot` does not mirror that run.
    #[inline]
    fn hot_bucket(&self, a: u32) -> Option<(usize, usize)> {
        if self.hot.is_empty() || self.hot.len() != self.v4.first_len() {
            return None;
        }
        self.v4.bucket_bounds(a)
    }

    /// The sessions of IPv4 address `a`, in index order (the same candidates, in the same order,
    /// as `for_range` over every run).
    #[inline]
    fn v4_cands(&self, a: u32, cands: &mut Cands) {
        let Some((lo, hi)) = self.hot_bucket(a) else {
            self.v4.for_range(&(a, 0), &(a, u32::MAX), |&(_, id)| cands.push(self.sess_cand(id)));
            return;
        };
        let b = &self.hot[lo..hi];
        let j = b.partition_point(|h| h.addr < a);
        for (k, h) in b[j..].iter().enumerate() {
            if h.addr != a {
                break;
            }
            let id = (lo + j + k) as u32;
            let open = h.end == OPEN;
            cands.push(Cand {
                id,
                start: i64::from(h.start),
                end: i64::from(h.end),
                open,
                // Only read for open sessions (`decide`).
                last: if open { i64::from(self.sessions[id as usize].last) } else { 0 },
                who: (u128::from(h.who >> 31) << 32) | u128::from(h.who & !HOT_DHCP),
            });
        }
        self.v4.for_range_rest(&(a, 0), &(a, u32::MAX), |&(_, id)| cands.push(self.sess_cand(id)));
    }

    /// The subscriber id of session `id` (from its hot entry when it has one: the line a lookup
    /// just read).
    #[inline]
    fn sub_of(&self, id: u32) -> u32 {
        match self.hot.get(id as usize) {
            Some(h) => h.who & !HOT_DHCP,
            None => self.sessions[id as usize].sub,
        }
    }

    fn resolve_direct(&self, ip: IpAddr, t: i64) -> Result<u32, Unresolved> {
        let mut cands = Cands::new();
        match canonical_ip(ip) {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                if self.v4.run_count() == 1
                    && let Some((lo, hi)) = self.hot_bucket(a)
                {
                    // Compacted, nothing added since: the address's entries are all there is.
                    let b = &self.hot[lo..hi];
                    let j = b.partition_point(|h| h.addr < a);
                    let n = b[j..].iter().take_while(|h| h.addr == a).count();
                    let c = &b[j..j + n];
                    if c.is_empty() {
                        return Err(Unresolved::NoSession);
                    }
                    if c.iter().all(|h| h.end != OPEN) {
                        return self.decide_closed(c, t).map(|i| (lo + j + i) as u32);
                    }
                }
                self.v4_cands(a, &mut cands);
                if cands.is_empty() {
                    return Err(Unresolved::NoSession);
                }
                let cands = cands.as_mut();
                self.decide(cands, t).map(|i| cands[i].id)
            }
            IpAddr::V6(a) => {
                let bits = v6_bits(a);
                let mut first_miss = None;
                for &len in &self.v6_lens {
                    cands.clear();
                    if len <= 64 {
                        let hi = (bits >> 64) as u64;
                        let masked = if len == 0 { 0 } else { hi & (u64::MAX << (64 - u32::from(len))) };
                        self.v6.for_range(&(masked, len, 0), &(masked, len, u32::MAX), |&(_, _, id)| {
                            cands.push(self.sess_cand(id))
                        });
                    } else {
                        let masked = bits & (u128::MAX << (128 - u32::from(len)));
                        self.v6_long.for_range(&(masked, len, 0), &(masked, len, u32::MAX), |&(_, _, id)| {
                            cands.push(self.sess_cand(id))
                        });
                    }
                    if cands.is_empty() {
                        continue;
                    }
                    let cands = cands.as_mut();
                    match self.decide(cands, t) {
                        Ok(i) => return Ok(cands[i].id),
                        Err(u @ (Unresolved::OutsideSession | Unresolved::OpenSessionTooOld)) => {
                            first_miss.get_or_insert(u);
                        }
                        Err(u) => return Err(u),
                    }
                }
                Err(first_miss.unwrap_or(Unresolved::NoSession))
            }
        }
    }

    /// [`SessionIndex::decide`] for candidates that are all closed sessions, read from their
    /// hot entries in index order (the same answer: no open session, so no effective ends and
    /// nothing stale; ties go to the last candidate as with `max_by_key`).
    #[inline]
    fn decide_closed(&self, c: &[Hot], t: i64) -> Result<usize, Unresolved> {
        let skew = self.cfg.clock_skew.as_secs() as i64;
        let start = |h: &Hot| i64::from(h.start);
        let end = |h: &Hot| i64::from(h.end);
        let in_window = |h: &Hot| start(h) <= t + skew && end(h) >= t - skew;
        let mut who = None;
        let mut several = false;
        for h in c.iter().filter(|h| in_window(h)) {
            match who {
                None => who = Some(h.who),
                Some(w) if w != h.who => several = true,
                _ => {}
            }
        }
        if who.is_none() {
            return Err(Unresolved::OutsideSession);
        }
        if several {
            let mut exact_who = None;
            for h in c.iter().filter(|h| start(h) < t && t < end(h)) {
                match exact_who {
                    None => exact_who = Some(h.who),
                    Some(w) if w != h.who => return Err(Unresolved::Ambiguous),
                    _ => {}
                }
            }
            return Err(Unresolved::ClockSkew);
        }
        let mut best: Option<(usize, (i64, i64))> = None;
        for (i, h) in c.iter().enumerate() {
            if !in_window(h) {
                continue;
            }
            let (s, e) = (start(h), end(h));
            let dist = if s <= t && t <= e {
                0
            } else if t < s {
                s - t
            } else {
                t - e
            };
            let key = (-dist, s);
            if best.is_none_or(|(_, k)| key >= k) {
                best = Some((i, key));
            }
        }
        best.map(|(i, _)| i).ok_or(Unresolved::OutsideSession)
    }

    /// Picks the one candidate, or says why not. Candidates are the sessions of one address
    /// (or one port range).
    fn decide(&self, cands: &mut [Cand], t: i64) -> Result<usize, Unresolved> {
        let skew = self.cfg.clock_skew.as_secs() as i64;
        let max_age = i64::try_from(self.cfg.max_open_session_age.as_secs()).unwrap_or(i64::MAX / 4);
        let mut stale = false;
        // Effective ends of open sessions: last sign of life + max age, or the next session's start.
        for i in 0..cands.len() {
            if !cands[i].open {
                continue;
            }
            let s = cands[i].start;
            let next = cands
                .iter()
                .enumerate()
                .filter(|&(j, c)| j != i && c.start > s)
                .map(|(_, c)| c.start)
                .min()
                .unwrap_or(i64::MAX);
            let aged = cands[i].last.saturating_add(max_age);
            if aged < next {
                if t > aged && s <= t {
                    stale = true;
                }
                cands[i].end = aged;
            } else {
                cands[i].end = next;
            }
        }
        let in_window = |c: &Cand| c.start <= t + skew && c.end >= t - skew;
        let mut who = None;
        let mut several = false;
        for c in cands.iter().filter(|c| in_window(c)) {
            match who {
                None => who = Some(c.who),
                Some(w) if w != c.who => several = true,
                _ => {}
            }
        }
        if who.is_none() {
            return Err(if stale { Unresolved::OpenSessionTooOld } else { Unresolved::OutsideSession });
        }
        let exact = |c: &Cand| c.start <= t && t <= c.end;
        if several {
            // Two subscribers both holding the address at `t`, not merely meeting at a boundary.
            let mut exact_who = None;
            for c in cands.iter().filter(|c| c.start < t && t < c.end) {
                match exact_who {
                    None => exact_who = Some(c.who),
                    Some(w) if w != c.who => return Err(Unresolved::Ambiguous),
                    _ => {}
                }
            }
            return Err(Unresolved::ClockSkew);
        }
        // One subscriber: the session holding `t` (latest start), else the nearest in the window.
        let best = cands
            .iter()
            .enumerate()
            .filter(|(_, c)| in_window(c))
            .max_by_key(|(_, c)| {
                let dist = if exact(c) {
                    0
                } else if t < c.start {
                    c.start - t
                } else {
                    t - c.end
                };
                (-dist, c.start)
            })
            .map(|(i, _)| i);
        best.ok_or(Unresolved::OutsideSession)
    }

    fn resolved(&self, id: u32, block: Option<u32>) -> Resolution {
        let s = &self.sessions[id as usize];
        let source = Source::from_code(s.source);
        let subscriber = Subscriber { kind: source.subscriber_kind(), key: self.subs.get(s.sub).to_string() };
        let port_block = block.map(|b| {
            let b = &self.blocks[b as usize];
            PortBlockRef {
                outside: IpAddr::V4(b.outside.into()),
                port_lo: b.lo,
                port_hi: b.hi,
                inside: b.inside,
                start: ts(b.start),
                end: (b.end != OPEN).then(|| ts(b.end)),
            }
        });
        Resolution::Resolved {
            subscriber,
            session: SessionRef {
                source,
                session_id: (s.sid != NONE).then(|| self.sids.get(s.sid).to_string()),
                nas: (s.nas != NONE).then(|| self.nas.get(s.nas).to_string()).filter(|n| !n.is_empty()),
                start: ts(s.start),
                end: (s.end != OPEN).then(|| ts(s.end)),
                port_block,
            },
        }
    }
}

impl SessionIndex {
    /// Every address (IPv4 /32) and delegated prefix (IPv6) of a session in progress at `at`,
    /// with the subscriber key of that session, sorted and without duplicates. An address in
    /// two sessions at once (a handover, a lost Stop) is listed under both keys: this is for the
    /// agent's `rpz-client-ip` zone, which must exempt an address whenever any of its possible
    /// holders did not consent, so nothing is decided here.
    pub fn holders_at(&self, at: Timestamp) -> Vec<(String, ipnet::IpNet)> {
        let mut out: Vec<(String, ipnet::IpNet)> = Vec::new();
        self.each_live(at, |id, net| out.push((self.subs.get(self.sessions[id as usize].sub).to_string(), net)));
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The addresses and prefixes of the sessions in progress at `at` whose subscriber key
    /// `keep` accepts; sorted, without duplicates. The scan behind the agent's client zone: no
    /// string is copied, so it costs about a tenth of [`SessionIndex::holders_at`].
    pub fn live_nets_where(&self, at: Timestamp, mut keep: impl FnMut(&str) -> bool) -> Vec<ipnet::IpNet> {
        let mut out = Vec::new();
        self.each_live(at, |id, net| {
            if keep(self.subs.get(self.sessions[id as usize].sub)) {
                out.push(net);
            }
        });
        out.sort_unstable();
        out.dedup();
        out
    }

    /// [`SessionIndex::live_nets_where`] with each subscriber's decision kept in `marks`: the
    /// key is looked at once per subscriber, then each scan reads one byte per session.
    pub fn live_nets_marked(
        &self,
        at: Timestamp,
        marks: &mut SubscriberMarks,
        mut keep: impl FnMut(&str) -> bool,
    ) -> Vec<ipnet::IpNet> {
        if marks.instance != self.instance {
            marks.instance = self.instance;
            marks.marks.clear();
        }
        // Subscriber ids are byte offsets into the key arena: one byte per key byte.
        marks.marks.resize(self.subs.id_bound(), 0);
        let m = &mut marks.marks;
        let mut out = Vec::new();
        self.each_live(at, |id, net| {
            let sub = self.sessions[id as usize].sub;
            let slot = &mut m[sub as usize];
            if *slot == 0 {
                *slot = if keep(self.subs.get(sub)) { 1 } else { 2 };
            }
            if *slot == 1 {
                out.push(net);
            }
        });
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Calls `f(session id, address or prefix)` for every session in progress at `at`.
    fn each_live(&self, at: Timestamp, mut f: impl FnMut(u32, ipnet::IpNet)) {
        let Some(t) = secs(at) else { return };
        let live = |id: u32| {
            let s = &self.sessions[id as usize];
            s.start <= t && (s.end == OPEN || t < s.end)
        };
        self.v4.each(|&(a, id)| {
            if live(id) {
                f(id, ipnet::IpNet::from(IpAddr::V4(a.into())));
            }
        });
        self.v6.each(|&(hi, len, id)| {
            if live(id)
                && let Ok(n) = ipnet::Ipv6Net::new(std::net::Ipv6Addr::from(u128::from(hi) << 64), len)
            {
                f(id, n.into());
            }
        });
        self.v6_long.each(|&(bits, len, id)| {
            if live(id)
                && let Ok(n) = ipnet::Ipv6Net::new(std::net::Ipv6Addr::from(bits), len)
            {
                f(id, n.into());
            }
        });
    }
}

fn address_order(queries: &[(IpAddr, Option<u16>, Timestamp)]) -> Vec<u32> {
    // All IPv4 (the usual case): sort packed u64 keys (address, position), half the work.
    let mut packed: Vec<u64> = Vec::with_capacity(queries.len());
    for (i, q) in queries.iter().enumerate() {
        match canonical_ip(q.0) {
            IpAddr::V4(a) if u32::try_from(i).is_ok() => packed.push((u64::from(u32::from(a)) << 32) | i as u64),
            _ => break,
        }
    }
    if packed.len() == queries.len() {
        packed.sort_unstable();
        return packed.into_iter().map(|k| k as u32).collect();
    }
    let mut order: Vec<(u128, u32)> =
        queries.iter().enumerate().map(|(i, q)| (ip_key(canonical_ip(q.0)), i as u32)).collect();
    order.sort_unstable();
    order.into_iter().map(|(_, i)| i).collect()
}

fn ip_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)) | (1 << 127),
        IpAddr::V6(a) => v6_bits(a) & !(1 << 127),
    }
}

fn hot_who(s: &Sess) -> u32 {
    let dhcp = Source::from_code(s.source).subscriber_kind() == crate::SubscriberKind::Dhcp;
    s.sub | if dhcp { HOT_DHCP } else { 0 }
}
