//! Versioned zones in memory: each publish computes the difference against the current
//! version; a non-empty difference bumps the SOA serial (RFC 1982 arithmetic) and is kept in a
//! bounded history from which IXFR answers are condensed.
//!
//! Records are kept pre-encoded in wire form (owner lower case, no compression), sorted by
//! those bytes: a difference is a merge of two sorted lists, a transfer a concatenation, and a
//! version shares every unchanged record with the previous one.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, RwLock};

use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA};
use hickory_proto::rr::{Name, RData as HRData, Record as HRecord};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use kizuna_rpz::{RData, RpzZone, SoaParams};

use crate::Error;

/// One resource record in wire form: owner, type, class, TTL, RDLENGTH, RDATA.
pub type WireRr = Arc<[u8]>;

/// RFC 1982: is `a` before `b` in serial number arithmetic (32-bit)?
pub fn serial_lt(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000_0000
}

/// The serial after `s` (RFC 1982 addition of 1; wraps).
pub fn serial_next(s: u32) -> u32 {
    s.wrapping_add(1)
}

/// One published version of a zone.
#[derive(Debug)]
pub struct Snapshot {
    /// The zone's name (lower case, absolute).
    pub origin: Name,
    /// SOA serial of this version.
    pub serial: u32,
    /// SOA fields.
    pub soa: SoaParams,
    /// SOA TTL.
    pub soa_ttl: u32,
    /// Every record but the SOA, sorted by wire bytes, no duplicates.
    pub records: Arc<Vec<WireRr>>,
}

impl Snapshot {
    /// The SOA record of this version in wire form.
    pub fn soa_wire(&self) -> Vec<u8> {
        soa_wire(&self.origin, &self.soa, self.soa_ttl, self.serial).unwrap_or_default()
    }

    /// Records whose owner is `name` (wire-encoded, lower case), from the sorted list.
    pub fn records_at(&self, name_wire: &[u8]) -> &[WireRr] {
        let r = &self.records;
        let start = r.partition_point(|x| &x[..] < name_wire);
        let end = start + r[start..].iter().take_while(|x| x.starts_with(name_wire)).count();
        &r[start..end]
    }
}

/// The difference between two consecutive versions.
#[derive(Debug)]
pub struct Diff {
    /// Serial before.
    pub from: u32,
    /// Serial after.
    pub to: u32,
    /// Records removed (sorted).
    pub removed: Vec<WireRr>,
    /// Records added (sorted).
    pub added: Vec<WireRr>,
}

/// What an IXFR request gets.
#[derive(Debug)]
pub enum Ixfr {
    /// The client is current (or ahead): one SOA.
    UpToDate(Arc<Snapshot>),
    /// One condensed difference sequence from the client's serial.
    Incremental {
        /// The current version.
        current: Arc<Snapshot>,
        /// The client's serial.
        from: u32,
        /// Records to delete.
        removed: Vec<WireRr>,
        /// Records to add.
        added: Vec<WireRr>,
    },
    /// The client's serial is not in the history: the whole zone (AXFR form).
    Full(Arc<Snapshot>),
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishOutcome {
    /// The serial now current.
    pub serial: u32,
    /// Whether a new version was made.
    pub changed: bool,
    /// Records added.
    pub added: usize,
    /// Records removed.
    pub removed: usize,
}

struct ZoneData {
    current: Arc<Snapshot>,
    history: VecDeque<Arc<Diff>>,
}

/// A zone with its version history.
pub struct VersionedZone {
    origin: Name,
    history_len: usize,
    data: RwLock<ZoneData>,
}

impl std::fmt::Debug for VersionedZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionedZone").field("origin", &self.origin).finish_non_exhaustive()
    }
}

/// Encodes a record without name compression (so its bytes stand alone), owner lower-cased.
fn encode(rec: &HRecord) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::with_capacity(64);
    {
        let mut enc = BinEncoder::new(&mut buf);
        let mut m = enc.with_name_encoding(NameEncoding::UncompressedLowercase);
        rec.emit(&mut m).map_err(|e| Error::Encode(e.to_string()))?;
    }
    Ok(buf)
}

/// Wire form of a name (lower case, uncompressed).
pub fn name_wire(name: &Name) -> Vec<u8> {
    let mut buf = Vec::with_capacity(name.len() + 2);
    let mut enc = BinEncoder::new(&mut buf);
    let mut m = enc.with_name_encoding(NameEncoding::UncompressedLowercase);
    // A name that parsed always encodes.
    let _ = name.to_lowercase().emit(&mut m);
    drop(m);
    buf
}

fn parse_name(s: &str) -> Result<Name, Error> {
    Name::from_ascii(s).map_err(|e| Error::Name(format!("{s:?}: {e}")))
}

/// The SOA record in wire form.
pub fn soa_wire(origin: &Name, soa: &SoaParams, ttl: u32, serial: u32) -> Result<Vec<u8>, Error> {
    let clamp = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let rd = SOA::new(
        parse_name(&soa.mname)?,
        parse_name(&soa.rname)?,
        serial,
        clamp(soa.refresh),
        clamp(soa.retry),
        clamp(soa.expire),
        soa.minimum,
    );
    encode(&HRecord::from_rdata(origin.clone(), ttl, HRData::SOA(rd)))
}

fn to_hrdata(d: &RData) -> Result<HRData, Error> {
    Ok(match d {
        RData::Cname(t) => HRData::CNAME(CNAME(parse_name(t)?)),
        RData::Ns(t) => HRData::NS(NS(parse_name(t)?)),
        RData::A(a) => HRData::A(A(*a)),
        RData::Aaaa(a) => HRData::AAAA(AAAA(*a)),
    })
}

/// The records of one trigger owner (relative to `origin`) carrying `data`.
pub fn encode_owner(origin: &Name, owner: &str, ttl: u32, data: &[RData]) -> Result<Vec<WireRr>, Error> {
    let name = if owner.is_empty() {
        origin.clone()
    } else {
        Name::parse(owner, Some(origin)).map_err(|e| Error::Name(format!("{owner:?}: {e}")))?
    };
    data.iter().map(|d| Ok(Arc::from(encode(&HRecord::from_rdata(name.clone(), ttl, to_hrdata(d)?))?))).collect()
}

/// Encodes a generated zone's records (sorted, unique).
pub fn encode_zone(zone: &RpzZone) -> Result<(Name, Vec<WireRr>), Error> {
    let origin = parse_name(&zone.origin)?.to_lowercase();
    let mut out = Vec::with_capacity(zone.records.len());
    let mut owner_cache: Option<(&str, Name)> = None;
    for r in &zone.records {
        let owner = match &owner_cache {
            Some((o, n)) if *o == r.owner.as_str() => n.clone(),
            _ => {
                let n = if r.owner.is_empty() {
                    origin.clone()
                } else {
                    Name::parse(&r.owner, Some(&origin)).map_err(|e| Error::Name(format!("{:?}: {e}", r.owner)))?
                };
                owner_cache = Some((r.owner.as_str(), n.clone()));
                n
            }
        };
        let rd = to_hrdata(&r.data)?;
        out.push(Arc::from(encode(&HRecord::from_rdata(owner, r.ttl, rd))?));
    }
    out.sort();
    out.dedup();
    Ok((origin, out))
}

/// Sorted-list difference: (in `old` not `new`, in `new` not `old`).
fn diff_sorted(old: &[WireRr], new: &[WireRr]) -> (Vec<WireRr>, Vec<WireRr>) {
    let (mut i, mut j) = (0, 0);
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    while i < old.len() && j < new.len() {
        match old[i].cmp(&new[j]) {
            std::cmp::Ordering::Less => {
                removed.push(old[i].clone());
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                added.push(new[j].clone());
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    removed.extend_from_slice(&old[i..]);
    added.extend_from_slice(&new[j..]);
    (removed, added)
}

impl VersionedZone {
    /// A zone at `initial_serial` with the given content and no history.
    pub fn new(zone: &RpzZone, initial_serial: u32, history_len: usize) -> Result<Self, Error> {
        let (origin, records) = encode_zone(zone)?;
        soa_wire(&origin, &zone.soa, zone.soa_ttl, initial_serial)?;
        let snap = Snapshot {
            origin: origin.clone(),
            serial: initial_serial,
            soa: zone.soa.clone(),
            soa_ttl: zone.soa_ttl,
            records: Arc::new(records),
        };
        Ok(VersionedZone {
            origin,
            history_len: history_len.max(1),
            data: RwLock::new(ZoneData { current: Arc::new(snap), history: VecDeque::new() }),
        })
    }

    /// The zone's name.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The current version.
    pub fn current(&self) -> Arc<Snapshot> {
        match self.data.read() {
            Ok(d) => d.current.clone(),
            Err(p) => p.into_inner().current.clone(),
        }
    }

    /// Serials the history can answer IXFR from (oldest first).
    pub fn history_serials(&self) -> Vec<u32> {
        let d = match self.data.read() {
            Ok(d) => d,
            Err(p) => p.into_inner(),
        };
        d.history.iter().map(|h| h.from).collect()
    }

    /// Publishes new content: a new version when anything (records or SOA fields) differs.
    pub fn publish(&self, zone: &RpzZone) -> Result<PublishOutcome, Error> {
        let (origin, records) = encode_zone(zone)?;
        if origin != self.origin {
            return Err(Error::Name(format!("zone {} published into {}", origin, self.origin)));
        }
        let mut d = match self.data.write() {
            Ok(d) => d,
            Err(p) => p.into_inner(),
        };
        let cur = d.current.clone();
        let (removed, added) = diff_sorted(&cur.records, &records);
        let soa_changed = cur.soa != zone.soa || cur.soa_ttl != zone.soa_ttl;
        if removed.is_empty() && added.is_empty() && !soa_changed {
            return Ok(PublishOutcome { serial: cur.serial, changed: false, added: 0, removed: 0 });
        }
        let serial = serial_next(cur.serial);
        soa_wire(&origin, &zone.soa, zone.soa_ttl, serial)?;
        let outcome = PublishOutcome { serial, changed: true, added: added.len(), removed: removed.len() };
        d.history.push_back(Arc::new(Diff { from: cur.serial, to: serial, removed, added }));
        while d.history.len() > self.history_len {
            d.history.pop_front();
        }
        d.current = Arc::new(Snapshot {
            origin,
            serial,
            soa: zone.soa.clone(),
            soa_ttl: zone.soa_ttl,
            records: Arc::new(records),
        });
        Ok(outcome)
    }

    /// Applies a difference directly (the incremental path: no full zone is built). Records
    /// to remove that are absent and records to add that are present are ignored, so the
    /// stored difference is exact.
    pub fn apply(&self, mut removed: Vec<WireRr>, mut added: Vec<WireRr>) -> Result<PublishOutcome, Error> {
        removed.sort();
        removed.dedup();
        added.sort();
        added.dedup();
        let mut d = match self.data.write() {
            Ok(d) => d,
            Err(p) => p.into_inner(),
        };
        let cur = d.current.clone();
        let old = &cur.records;
        let present = |r: &WireRr| old.binary_search(r).is_ok();
        // a record both removed and added stays as it is
        let both: BTreeSet<WireRr> = removed.iter().filter(|r| added.binary_search(r).is_ok()).cloned().collect();
        removed.retain(|r| present(r) && !both.contains(r));
        added.retain(|r| !present(r) && !both.contains(r));
        if removed.is_empty() && added.is_empty() {
            return Ok(PublishOutcome { serial: cur.serial, changed: false, added: 0, removed: 0 });
        }
        let mut records = Vec::with_capacity(old.len() + added.len() - removed.len().min(old.len() + added.len()));
        let (mut i, mut j, mut k) = (0, 0, 0);
        while i < old.len() {
            if k < removed.len() && old[i] == removed[k] {
                i += 1;
                k += 1;
                continue;
            }
            if j < added.len() && added[j] < old[i] {
                records.push(added[j].clone());
                j += 1;
                continue;
            }
            records.push(old[i].clone());
            i += 1;
        }
        records.extend_from_slice(&added[j..]);
        let serial = serial_next(cur.serial);
        let outcome = PublishOutcome { serial, changed: true, added: added.len(), removed: removed.len() };
        d.history.push_back(Arc::new(Diff { from: cur.serial, to: serial, removed, added }));
        while d.history.len() > self.history_len {
            d.history.pop_front();
        }
        d.current = Arc::new(Snapshot {
            origin: cur.origin.clone(),
            serial,
            soa: cur.soa.clone(),
            soa_ttl: cur.soa_ttl,
            records: Arc::new(records),
        });
        Ok(outcome)
    }

    /// What an IXFR from `client_serial` gets (RFC 1995): condensed into one difference
    /// sequence; the whole zone when the serial is not in the history.
    pub fn ixfr(&self, client_serial: u32) -> Ixfr {
        let d = match self.data.read() {
            Ok(d) => d,
            Err(p) => p.into_inner(),
        };
        let cur = d.current.clone();
        if client_serial == cur.serial || serial_lt(cur.serial, client_serial) {
            return Ixfr::UpToDate(cur);
        }
        let Some(start) = d.history.iter().position(|h| h.from == client_serial) else {
            return Ixfr::Full(cur);
        };
        let diffs: Vec<Arc<Diff>> = d.history.iter().skip(start).cloned().collect();
        drop(d);
        if diffs.len() == 1 {
            let h = &diffs[0];
            return Ixfr::Incremental {
                current: cur,
                from: client_serial,
                removed: h.removed.clone(),
                added: h.added.clone(),
            };
        }
        // Condense: a record removed then added again (or the reverse) cancels out.
        let mut removed: BTreeSet<WireRr> = BTreeSet::new();
        let mut added: BTreeSet<WireRr> = BTreeSet::new();
        for h in &diffs {
            for r in &h.removed {
                if !added.remove(r) {
                    removed.insert(r.clone());
                }
            }
            for a in &h.added {
                if !removed.remove(a) {
                    added.insert(a.clone());
                }
            }
        }
        Ixfr::Incremental {
            current: cur,
            from: client_serial,
            removed: removed.into_iter().collect(),
            added: added.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kizuna_rpz::{Record, RpzZone};

    fn zone(owners: &[&str]) -> RpzZone {
        let mut records = vec![Record { owner: String::new(), ttl: 30, data: RData::Ns("localhost.".into()) }];
        for o in owners {
            records.push(Record { owner: (*o).into(), ttl: 30, data: RData::Cname(".".into()) });
        }
        records.sort();
        RpzZone {
            origin: "rpz.example.".into(),
            soa: SoaParams::default(),
            soa_ttl: 30,
            records,
            provenance: Default::default(),
            skipped: vec![],
        }
    }

    #[test]
    fn serial_arithmetic() {
        assert!(serial_lt(1, 2));
        assert!(serial_lt(u32::MAX, 0));
        assert!(serial_lt(0xffff_fff0, 5));
        assert!(!serial_lt(5, 0xffff_fff0));
        assert!(!serial_lt(7, 7));
        assert_eq!(serial_next(u32::MAX), 0);
    }

    #[test]
    fn publish_bumps_only_on_change_and_ixfr_condenses() {
        let z = VersionedZone::new(&zone(&["a"]), u32::MAX - 1, 3).unwrap();
        assert!(!z.publish(&zone(&["a"])).unwrap().changed);
        let o = z.publish(&zone(&["a", "b"])).unwrap();
        assert_eq!((o.serial, o.added, o.removed), (u32::MAX, 1, 0));
        let o = z.publish(&zone(&["b", "c"])).unwrap();
        assert_eq!((o.serial, o.added, o.removed), (0, 1, 1)); // wrapped
        let o = z.publish(&zone(&["a", "c"])).unwrap();
        assert_eq!(o.serial, 1);
        // from the start: a → a,c : only c added (b added then removed cancels)
        match z.ixfr(u32::MAX - 1) {
            Ixfr::Incremental { removed, added, from, current } => {
                assert_eq!(from, u32::MAX - 1);
                assert_eq!(current.serial, 1);
                assert!(removed.is_empty());
                assert_eq!(added.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(z.ixfr(1), Ixfr::UpToDate(_)));
        assert!(matches!(z.ixfr(2), Ixfr::UpToDate(_))); // a client ahead of us
        z.publish(&zone(&["d"])).unwrap(); // history of 3: the oldest diff falls out
        assert!(matches!(z.ixfr(u32::MAX - 1), Ixfr::Full(_)));
        assert!(matches!(z.ixfr(u32::MAX), Ixfr::Incremental { .. }));
        assert_eq!(z.history_serials(), vec![u32::MAX, 0, 1]);
    }

    #[test]
    fn apply_matches_publish() {
        let a = VersionedZone::new(&zone(&["a", "b", "c"]), 10, 8).unwrap();
        let b = VersionedZone::new(&zone(&["a", "b", "c"]), 10, 8).unwrap();
        let o = a.origin().clone();
        let enc = |n: &str| encode_owner(&o, n, 30, &[RData::Cname(".".into())]).unwrap();
        let out = a.apply([enc("b"), enc("zz")].concat(), [enc("d"), enc("a"), enc("0")].concat()).unwrap();
        assert_eq!((out.serial, out.added, out.removed), (11, 2, 1)); // "a" present, "zz" absent
        b.publish(&zone(&["0", "a", "c", "d"])).unwrap();
        assert_eq!(a.current().records, b.current().records);
        assert!(!a.apply(vec![], enc("a")).unwrap().changed);
        match a.ixfr(10) {
            Ixfr::Incremental { removed, added, .. } => assert_eq!((removed.len(), added.len()), (1, 2)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn records_at_finds_exact_owner() {
        let z = VersionedZone::new(&zone(&["a", "a.b", "ab"]), 1, 3).unwrap();
        let s = z.current();
        let n = name_wire(&Name::from_ascii("a.rpz.example.").unwrap());
        assert_eq!(s.records_at(&n).len(), 1);
        let n = name_wire(&Name::from_ascii("rpz.example.").unwrap());
        assert_eq!(s.records_at(&n).len(), 1); // NS
        let n = name_wire(&Name::from_ascii("zz.rpz.example.").unwrap());
        assert!(s.records_at(&n).is_empty());
    }
}
