//! The authoritative primary: request handling (SOA and other queries, AXFR, IXFR), access
//! control (TSIG per zone, or an address list for secondaries without TSIG), and the UDP and
//! TCP listeners.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{DNSClass, Name, RData as HRData, RecordType};
use ipnet::IpNet;
use kizuna_rpz::{IndicatorKey, RData, RpzZone};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;

use crate::Error;
use crate::metrics::{
    DnsMetrics, MemberTransferLabel, OpcodeLabel, ReasonLabel, TransferLabel, TsigErrorLabel, ZoneLabel,
};
use crate::tsig::{self, KeyRing, ResponseSigner, Verdict};
use crate::wire::{EDNS_UDP_PAYLOAD, Head, MAX_TCP_MESSAGE, MessageBuf, rr_type};
use crate::zone::{Ixfr, PublishOutcome, Snapshot, VersionedZone, WireRr, name_wire};

const RCODE_NOERROR: u8 = 0;
const RCODE_FORMERR: u8 = 1;
const RCODE_NXDOMAIN: u8 = 3;
const RCODE_NOTIMP: u8 = 4;
const RCODE_REFUSED: u8 = 5;
const RCODE_NOTAUTH: u8 = 9;

/// Who may transfer a zone and whom to NOTIFY.
#[derive(Debug, Clone, Default)]
pub struct ZoneAccess {
    /// The member the zone is for.
    pub member: String,
    /// TSIG key that authorises transfers (absolute, lower case).
    pub key: Option<Name>,
    /// Addresses allowed without TSIG.
    pub allow: Vec<IpNet>,
    /// Secondaries to NOTIFY (signed with `key` when set).
    pub notify: Vec<SocketAddr>,
    /// Secondaries to NOTIFY unsigned.
    pub notify_unsigned: Vec<SocketAddr>,
}

/// Which indicators produced which trigger, both ways.
#[derive(Debug, Default)]
pub struct ZoneIndex {
    /// Trigger owner (relative) → indicator keys.
    pub by_owner: BTreeMap<String, BTreeSet<IndicatorKey>>,
    /// Indicator key → its trigger owners.
    pub by_key: HashMap<IndicatorKey, Vec<String>>,
}

impl ZoneIndex {
    fn from_provenance(p: &BTreeMap<String, BTreeSet<IndicatorKey>>) -> Self {
        let mut by_key: HashMap<IndicatorKey, Vec<String>> = HashMap::new();
        for (o, ks) in p {
            for k in ks {
                by_key.entry(*k).or_default().push(o.clone());
            }
        }
        ZoneIndex { by_owner: p.clone(), by_key }
    }
}

/// A served zone.
pub struct ZoneEntry {
    /// Versions.
    pub zone: VersionedZone,
    /// Provenance of the current version.
    pub index: Mutex<ZoneIndex>,
    /// Access rules.
    pub access: ZoneAccess,
    /// Name as text, for metrics and the API (no trailing dot).
    pub label: String,
    serial_tx: watch::Sender<u32>,
}

impl ZoneEntry {
    /// A receiver of every new serial (NOTIFY tasks).
    pub fn subscribe(&self) -> watch::Receiver<u32> {
        self.serial_tx.subscribe()
    }
}

/// The primary: zones, keys, metrics. Cheap to clone.
#[derive(Clone)]
pub struct Primary {
    inner: Arc<Inner>,
}

struct Inner {
    zones: RwLock<BTreeMap<Name, Arc<ZoneEntry>>>,
    keys: KeyRing,
    metrics: DnsMetrics,
}

/// One reply: nothing (drop), a message, or a stream of transfer messages.
pub enum Reply {
    /// Send nothing.
    None,
    /// One message.
    One(Vec<u8>),
    /// A transfer (TCP only).
    Transfer(Box<Transfer>),
}

/// What a transfer sends, in order.
enum Part {
    Soa(Vec<u8>),
    Records(Arc<Vec<WireRr>>),
    List(Vec<WireRr>),
}

/// A zone transfer being written, message by message.
pub struct Transfer {
    head: Head,
    question: (Vec<u8>, u16, u16),
    parts: Vec<Part>,
    part: usize,
    idx: usize,
    opt: bool,
    signer: Option<ResponseSigner>,
    first: bool,
    done: bool,
    /// Metric labels.
    label: TransferLabel,
    member: String,
    /// Octets written.
    pub bytes: u64,
    metrics: DnsMetrics,
}

impl Transfer {
    /// The next message, or `None` when done.
    pub fn next_message(&mut self) -> Option<Result<Vec<u8>, Error>> {
        if self.done {
            return None;
        }
        let q = if self.first { Some((&self.question.0[..], self.question.1, self.question.2)) } else { None };
        let mut m = MessageBuf::new(self.head, q);
        let limit = MAX_TCP_MESSAGE;
        'fill: while self.part < self.parts.len() {
            match &self.parts[self.part] {
                Part::Soa(soa) => {
                    if !m.is_empty() && m.record_count() > 0 && m.len() + soa.len() > limit {
                        break 'fill;
                    }
                    m.push(soa);
                    self.part += 1;
                    self.idx = 0;
                }
                Part::Records(rs) => {
                    let rs = rs.clone();
                    while self.idx < rs.len() {
                        let r = &rs[self.idx];
                        if m.record_count() > 0 && m.len() + r.len() > limit {
                            break 'fill;
                        }
                        m.push(r);
                        self.idx += 1;
                    }
                    self.part += 1;
                    self.idx = 0;
                }
                Part::List(rs) => {
                    while self.idx < rs.len() {
                        let r = &rs[self.idx];
                        if m.record_count() > 0 && m.len() + r.len() > limit {
                            break 'fill;
                        }
                        m.push(r);
                        self.idx += 1;
                    }
                    self.part += 1;
                    self.idx = 0;
                }
            }
        }
        if self.part >= self.parts.len() {
            self.done = true;
        }
        if self.opt {
            m.push_opt(EDNS_UDP_PAYLOAD);
        }
        self.first = false;
        let mut msg = m.finish();
        if let Some(s) = &mut self.signer
            && let Err(e) = s.sign(&mut msg)
        {
            return Some(Err(e));
        }
        self.bytes += msg.len() as u64;
        Some(Ok(msg))
    }

    /// Counts the finished transfer in the metrics.
    pub fn account(&self) {
        self.metrics.transfers.get_or_create(&self.label).inc();
        self.metrics.transfer_bytes.get_or_create(&self.label).inc_by(self.bytes);
        self.metrics
            .member_transfers
            .get_or_create(&MemberTransferLabel { member: self.member.clone(), kind: self.label.kind })
            .inc();
    }
}

struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(|h| h.abort());
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn allowed(access: &ZoneAccess, verdict: &Verdict, peer: IpAddr) -> bool {
    match verdict {
        Verdict::Valid { key, .. } => access.key.as_ref() == Some(&key.name),
        Verdict::Unsigned => access.allow.iter().any(|n| n.contains(&peer)),
        _ => false,
    }
}

fn secondary_name(verdict: &Verdict, peer: IpAddr) -> String {
    match verdict {
        Verdict::Valid { key, .. } => key.name.to_ascii().trim_end_matches('.').to_owned(),
        _ => peer.to_string(),
    }
}

impl Primary {
    /// A primary with these keys and no zones.
    pub fn new(keys: KeyRing, metrics: DnsMetrics) -> Self {
        Primary { inner: Arc::new(Inner { zones: RwLock::new(BTreeMap::new()), keys, metrics }) }
    }

    /// Its metrics.
    pub fn metrics(&self) -> &DnsMetrics {
        &self.inner.metrics
    }

    /// Adds (or replaces) a zone with its first version at `initial_serial`.
    pub fn add_zone(
        &self,
        zone: &RpzZone,
        access: ZoneAccess,
        initial_serial: u32,
        history: usize,
    ) -> Result<Arc<ZoneEntry>, Error> {
        let vz = VersionedZone::new(zone, initial_serial, history)?;
        let origin = vz.origin().clone();
        let label = origin.to_ascii().trim_end_matches('.').to_owned();
        let (serial_tx, _) = watch::channel(initial_serial);
        let index = Mutex::new(ZoneIndex::from_provenance(&zone.provenance));
        let entry = Arc::new(ZoneEntry { zone: vz, index, access, label, serial_tx });
        self.record_zone_metrics(&entry);
        self.inner.metrics.zone_changed(&entry.label);
        let mut zones = match self.inner.zones.write() {
            Ok(z) => z,
            Err(p) => p.into_inner(),
        };
        zones.insert(origin, entry.clone());
        Ok(entry)
    }

    /// The zone of that name.
    pub fn zone(&self, origin: &str) -> Option<Arc<ZoneEntry>> {
        let name = Name::from_ascii(origin).ok()?.to_lowercase();
        let mut name = name;
        name.set_fqdn(true);
        let zones = match self.inner.zones.read() {
            Ok(z) => z,
            Err(p) => p.into_inner(),
        };
        zones.get(&name).cloned()
    }

    /// Every zone.
    pub fn zones(&self) -> Vec<Arc<ZoneEntry>> {
        let zones = match self.inner.zones.read() {
            Ok(z) => z,
            Err(p) => p.into_inner(),
        };
        zones.values().cloned().collect()
    }

    fn record_zone_metrics(&self, e: &ZoneEntry) {
        let snap = e.zone.current();
        let l = ZoneLabel { zone: e.label.clone() };
        self.inner.metrics.zone_serial.get_or_create(&l).set(i64::from(snap.serial));
        self.inner.metrics.zone_records.get_or_create(&l).set(snap.records.len() as i64);
        let triggers = e.index.lock().map(|i| i.by_owner.len()).unwrap_or(0);
        self.inner.metrics.zone_triggers.get_or_create(&l).set(triggers as i64);
    }

    /// Publishes new content of a zone; on a new version, NOTIFY goes out at once.
    pub fn publish(&self, zone: &RpzZone) -> Result<PublishOutcome, Error> {
        let entry = self.zone(&zone.origin).ok_or_else(|| Error::UnknownZone(zone.origin.clone()))?;
        let out = entry.zone.publish(zone)?;
        *entry.index.lock().unwrap_or_else(|p| p.into_inner()) = ZoneIndex::from_provenance(&zone.provenance);
        self.commit(&entry, out);
        Ok(out)
    }

    /// Incremental change of a zone without provenance (the agent's client zone): the trigger
    /// owners (relative to the origin) that leave and that join, each carrying `data` with
    /// `ttl`. One new version when anything changed; NOTIFY and IXFR as for [`Primary::publish`].
    pub fn apply_owners(
        &self,
        origin: &str,
        gone: &[String],
        new: &[String],
        ttl: u32,
        data: &[RData],
    ) -> Result<PublishOutcome, Error> {
        let entry = self.zone(origin).ok_or_else(|| Error::UnknownZone(origin.to_owned()))?;
        let origin_name = entry.zone.origin().clone();
        let mut removed = Vec::with_capacity(gone.len() * data.len());
        for o in gone {
            removed.extend(crate::zone::encode_owner(&origin_name, o, ttl, data)?);
        }
        let mut added = Vec::with_capacity(new.len() * data.len());
        for o in new {
            added.extend(crate::zone::encode_owner(&origin_name, o, ttl, data)?);
        }
        let out = entry.zone.apply(removed, added)?;
        self.commit(&entry, out);
        Ok(out)
    }

    /// Incremental publish: each indicator's new trigger owners (empty: it no longer
    /// publishes); `ttl`/`data` are the policy's record TTL and action records. Only owners
    /// whose indicator set becomes empty or non-empty change the zone.
    pub fn update(
        &self,
        origin: &str,
        changes: &[(IndicatorKey, Vec<String>)],
        ttl: u32,
        data: &[RData],
    ) -> Result<PublishOutcome, Error> {
        let entry = self.zone(origin).ok_or_else(|| Error::UnknownZone(origin.to_owned()))?;
        let mut gone: BTreeSet<String> = BTreeSet::new();
        let mut new: BTreeSet<String> = BTreeSet::new();
        {
            let mut idx = entry.index.lock().unwrap_or_else(|p| p.into_inner());
            for (key, owners) in changes {
                let old = idx.by_key.remove(key).unwrap_or_default();
                for o in old.iter().filter(|o| !owners.contains(o)) {
                    if let Some(set) = idx.by_owner.get_mut(o) {
                        set.remove(key);
                        if set.is_empty() {
                            idx.by_owner.remove(o);
                            if !new.remove(o) {
                                gone.insert(o.clone());
                            }
                        }
                    }
                }
                for o in owners.iter().filter(|o| !old.contains(o)) {
                    let set = idx.by_owner.entry(o.clone()).or_default();
                    if set.is_empty() && !gone.remove(o) {
                        new.insert(o.clone());
                    }
                    set.insert(*key);
                }
                if !owners.is_empty() {
                    idx.by_key.insert(*key, owners.clone());
                }
            }
        }
        let origin_name = entry.zone.origin().clone();
        let mut removed = Vec::new();
        for o in &gone {
            removed.extend(crate::zone::encode_owner(&origin_name, o, ttl, data)?);
        }
        let mut added = Vec::new();
        for o in &new {
            added.extend(crate::zone::encode_owner(&origin_name, o, ttl, data)?);
        }
        let out = entry.zone.apply(removed, added)?;
        self.commit(&entry, out);
        Ok(out)
    }

    fn commit(&self, entry: &Arc<ZoneEntry>, out: PublishOutcome) {
        if out.changed {
            self.inner.metrics.publishes.get_or_create(&ZoneLabel { zone: entry.label.clone() }).inc();
            self.record_zone_metrics(entry);
            self.inner.metrics.zone_changed(&entry.label);
            entry.serial_tx.send_replace(out.serial);
        } else {
            self.record_zone_metrics(entry);
        }
    }

    fn find_zone(&self, qname: &Name) -> Option<Arc<ZoneEntry>> {
        let zones = match self.inner.zones.read() {
            Ok(z) => z,
            Err(p) => p.into_inner(),
        };
        let mut n = qname.to_lowercase();
        n.set_fqdn(true);
        loop {
            if let Some(z) = zones.get(&n) {
                return Some(z.clone());
            }
            if n.is_root() {
                return None;
            }
            n = n.base_name();
        }
    }

    fn count_member_transfer(&self, entry: &ZoneEntry, kind: &'static str) {
        let l = MemberTransferLabel { member: entry.access.member.clone(), kind };
        self.inner.metrics.member_transfers.get_or_create(&l).inc();
    }

    fn tsig_failure(&self, error: &'static str) {
        self.inner.metrics.tsig_failures.get_or_create(&TsigErrorLabel { error }).inc();
    }

    fn refuse(&self, reason: &'static str) {
        self.inner.metrics.refused.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Handles one request (raw bytes) from `peer`; `tcp` selects the transport rules.
    pub fn handle(&self, raw: &[u8], peer: SocketAddr, tcp: bool) -> Reply {
        if raw.len() < 12 {
            return Reply::None;
        }
        let id = u16::from_be_bytes([raw[0], raw[1]]);
        if raw[2] & 0x80 != 0 {
            return Reply::None; // a response: not for us
        }
        let msg = match Message::from_vec(raw) {
            Ok(m) => m,
            Err(_) => {
                self.refuse("formerr");
                let opcode = OpCode::from_u8((raw[2] >> 3) & 0x0f);
                let head = Head { id, opcode, aa: false, tc: false, rd: false, rcode: RCODE_FORMERR };
                return Reply::One(MessageBuf::new(head, None).finish());
            }
        };
        let opcode = msg.metadata.op_code;
        self.inner.metrics.queries.get_or_create(&OpcodeLabel { opcode: format!("{opcode:?}").to_lowercase() }).inc();
        let now = now_secs();
        let verdict = tsig::verify(&self.inner.keys, raw, msg.signature.as_ref().map(|s| (&s.name, &s.data)), now);
        let rd = msg.metadata.recursion_desired;
        let q = msg.queries.first();
        let question = q.map(|q| (name_wire(&q.name), u16::from(q.query_type), u16::from(q.query_class)));
        let qref = question.as_ref().map(|(n, t, c)| (&n[..], *t, *c));
        let opt = msg.edns.is_some();
        let udp_max = if tcp {
            65_535
        } else {
            msg.edns.as_ref().map(|e| e.max_payload().clamp(512, EDNS_UDP_PAYLOAD)).unwrap_or(512) as usize
        };

        // TSIG failures first (RFC 8945 §5.2): NOTAUTH with the TSIG error.
        match &verdict {
            Verdict::BadKey { key_name, algorithm } => {
                self.refuse("tsig-badkey");
                self.tsig_failure("badkey");
                let head = Head { id, opcode, aa: false, tc: false, rd, rcode: RCODE_NOTAUTH };
                let mut out = MessageBuf::new(head, qref).finish();
                let _ = tsig::append_unsigned_error(&mut out, key_name, algorithm.clone(), TsigError::BadKey, now);
                return Reply::One(out);
            }
            Verdict::BadSig { key } => {
                self.refuse("tsig-badsig");
                self.tsig_failure("badsig");
                let head = Head { id, opcode, aa: false, tc: false, rd, rcode: RCODE_NOTAUTH };
                let mut out = MessageBuf::new(head, qref).finish();
                let _ = tsig::append_unsigned_error(
                    &mut out,
                    &key.name,
                    key.signer().algorithm().clone(),
                    TsigError::BadSig,
                    now,
                );
                return Reply::One(out);
            }
            Verdict::BadTime { key, request_mac, request_time } => {
                self.refuse("tsig-badtime");
                self.tsig_failure("badtime");
                let head = Head { id, opcode, aa: false, tc: false, rd, rcode: RCODE_NOTAUTH };
                let mut out = MessageBuf::new(head, qref).finish();
                let mut s = ResponseSigner::bad_time(key.clone(), request_mac.clone(), *request_time, now);
                let _ = s.sign(&mut out);
                return Reply::One(out);
            }
            _ => {}
        }
        let mut signer = match &verdict {
            Verdict::Valid { key, request_mac } => Some(ResponseSigner::new(key.clone(), request_mac.clone(), now)),
            _ => None,
        };
        let mut simple = |rcode: u8, aa: bool, answers: &[&[u8]], authority: &[&[u8]]| -> Reply {
            let head = Head { id, opcode, aa, tc: false, rd, rcode };
            let mut m = MessageBuf::new(head, qref);
            for a in answers {
                m.push(a);
            }
            m.section(2);
            for a in authority {
                m.push(a);
            }
            if opt {
                m.push_opt(EDNS_UDP_PAYLOAD);
            }
            let mut out = m.finish();
            if out.len() > udp_max {
                let mut m = MessageBuf::new(Head { tc: true, ..head }, qref);
                if opt {
                    m.push_opt(EDNS_UDP_PAYLOAD);
                }
                out = m.finish();
            }
            if let Some(s) = &mut signer {
                let _ = s.sign(&mut out);
            }
            Reply::One(out)
        };

        if msg.metadata.message_type != MessageType::Query {
            return Reply::None;
        }
        if opcode != OpCode::Query {
            self.refuse("notimp");
            return simple(RCODE_NOTIMP, false, &[], &[]);
        }
        let Some(q) = q.filter(|_| msg.queries.len() == 1) else {
            self.refuse("formerr");
            return simple(RCODE_FORMERR, false, &[], &[]);
        };
        let qtype = q.query_type;
        if q.query_class != DNSClass::IN && q.query_class != DNSClass::ANY {
            self.refuse("class");
            return simple(RCODE_REFUSED, false, &[], &[]);
        }
        let Some(entry) = self.find_zone(&q.name) else {
            self.refuse("not-authoritative");
            return simple(RCODE_REFUSED, false, &[], &[]);
        };
        let snap = entry.zone.current();
        let at_apex = q.name.to_lowercase() == snap.origin;
        let may = allowed(&entry.access, &verdict, peer.ip());

        match qtype {
            RecordType::SOA if at_apex => {
                let soa = snap.soa_wire();
                simple(RCODE_NOERROR, true, &[&soa], &[])
            }
            RecordType::AXFR | RecordType::IXFR => {
                if !may {
                    self.refuse("transfer-acl");
                    tracing::info!(zone = %entry.label, %peer, signed = !matches!(verdict, Verdict::Unsigned),
                        "transfer refused");
                    return simple(RCODE_REFUSED, false, &[], &[]);
                }
                if !at_apex {
                    self.refuse("notauth-zone");
                    return simple(RCODE_NOTAUTH, false, &[], &[]);
                }
                let who = secondary_name(&verdict, peer.ip());
                let label =
                    |kind: &'static str| TransferLabel { zone: entry.label.clone(), secondary: who.clone(), kind };
                let head = Head { id, opcode, aa: true, tc: false, rd, rcode: RCODE_NOERROR };
                let question = question.clone().unwrap_or_default();
                let soa = snap.soa_wire();
                let full = |snap: &Arc<Snapshot>| {
                    vec![Part::Soa(snap.soa_wire()), Part::Records(snap.records.clone()), Part::Soa(snap.soa_wire())]
                };
                let (parts, kind) = if qtype == RecordType::AXFR {
                    if !tcp {
                        // RFC 5936 §4.2: AXFR is TCP only; TC tells the client to retry there.
                        let mut m = MessageBuf::new(Head { tc: true, ..head }, qref);
                        if opt {
                            m.push_opt(EDNS_UDP_PAYLOAD);
                        }
                        let mut out = m.finish();
                        if let Some(s) = &mut signer {
                            let _ = s.sign(&mut out);
                        }
                        return Reply::One(out);
                    }
                    (full(&snap), "axfr")
                } else {
                    let client = msg.authorities.iter().find_map(|r| match &r.data {
                        HRData::SOA(s) => Some(s.serial),
                        _ => None,
                    });
                    let Some(client) = client else {
                        self.refuse("formerr");
                        return simple(RCODE_FORMERR, false, &[], &[]);
                    };
                    match entry.zone.ixfr(client) {
                        Ixfr::UpToDate(cur) => {
                            let soa = cur.soa_wire();
                            self.inner.metrics.transfers.get_or_create(&label("ixfr-uptodate")).inc();
                            self.count_member_transfer(&entry, "ixfr-uptodate");
                            return simple(RCODE_NOERROR, true, &[&soa], &[]);
                        }
                        Ixfr::Full(cur) => {
                            if !tcp {
                                return simple(RCODE_NOERROR, true, &[&soa], &[]);
                            }
                            (full(&cur), "ixfr-axfr")
                        }
                        Ixfr::Incremental { current, from, removed, added } => {
                            let cur_soa = current.soa_wire();
                            let old_soa = crate::zone::soa_wire(&current.origin, &current.soa, current.soa_ttl, from)
                                .unwrap_or_default();
                            let parts = vec![
                                Part::Soa(cur_soa.clone()),
                                Part::Soa(old_soa),
                                Part::List(removed),
                                Part::Soa(cur_soa.clone()),
                                Part::List(added),
                                Part::Soa(cur_soa.clone()),
                            ];
                            if !tcp {
                                // RFC 1995 §2: over UDP, the whole answer or the current SOA.
                                let mut m = MessageBuf::new(head, qref);
                                for p in &parts {
                                    match p {
                                        Part::Soa(s) => m.push(s),
                                        Part::List(l) => l.iter().for_each(|r| m.push(r)),
                                        Part::Records(l) => l.iter().for_each(|r| m.push(r)),
                                    }
                                }
                                if opt {
                                    m.push_opt(EDNS_UDP_PAYLOAD);
                                }
                                let out = m.finish();
                                if out.len() + 128 <= udp_max {
                                    let mut out = out;
                                    if let Some(s) = &mut signer {
                                        let _ = s.sign(&mut out);
                                    }
                                    self.inner.metrics.transfers.get_or_create(&label("ixfr")).inc();
                                    self.count_member_transfer(&entry, "ixfr");
                                    return Reply::One(out);
                                }
                                return simple(RCODE_NOERROR, true, &[&cur_soa], &[]);
                            }
                            (parts, "ixfr")
                        }
                    }
                };
                tracing::debug!(zone = %entry.label, %peer, kind, serial = snap.serial, "transfer");
                Reply::Transfer(Box::new(Transfer {
                    head,
                    question,
                    parts,
                    part: 0,
                    idx: 0,
                    opt,
                    signer,
                    first: true,
                    done: false,
                    label: label(kind),
                    member: entry.access.member.clone(),
                    bytes: 0,
                    metrics: self.inner.metrics.clone(),
                }))
            }
            _ => {
                if !(may || at_apex && qtype == RecordType::NS) {
                    self.refuse("query-acl");
                    return simple(RCODE_REFUSED, false, &[], &[]);
                }
                let nw = name_wire(&q.name);
                let at = snap.records_at(&nw);
                let soa = snap.soa_wire();
                if at.is_empty() && !at_apex {
                    return simple(RCODE_NXDOMAIN, true, &[], &[&soa]);
                }
                let want = u16::from(qtype);
                let ans: Vec<&[u8]> = at
                    .iter()
                    .filter(|r| {
                        let t = rr_type(r).unwrap_or(0);
                        qtype == RecordType::ANY || t == want || t == u16::from(RecordType::CNAME)
                    })
                    .map(|r| &r[..])
                    .collect();
                if ans.is_empty() {
                    simple(RCODE_NOERROR, true, &[], &[&soa])
                } else {
                    simple(RCODE_NOERROR, true, &ans, &[])
                }
            }
        }
    }

    /// Serves UDP and TCP until the future is dropped.
    pub async fn serve(self, udp: UdpSocket, tcp: TcpListener) -> Result<(), Error> {
        let udp = Arc::new(udp);
        let me = self.clone();
        let u = udp.clone();
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            loop {
                let (n, peer) = match u.recv_from(&mut buf).await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("udp receive: {e}");
                        continue;
                    }
                };
                if let Reply::One(out) = me.handle(&buf[..n], peer, false)
                    && let Err(e) = u.send_to(&out, peer).await
                {
                    tracing::debug!(%peer, "udp send: {e}");
                }
            }
        });
        let me = self.clone();
        let tcp_task = tokio::spawn(async move {
            loop {
                match tcp.accept().await {
                    Ok((s, peer)) => {
                        let me = me.clone();
                        tokio::spawn(async move {
                            if let Err(e) = me.serve_tcp(s, peer).await {
                                tracing::debug!(%peer, "tcp: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!("tcp accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        // Stopping this future (abort) stops both listeners too.
        let _guard = AbortOnDrop(vec![udp_task.abort_handle(), tcp_task.abort_handle()]);
        let _ = tokio::join!(udp_task, tcp_task);
        Ok(())
    }

    async fn serve_tcp(&self, s: TcpStream, peer: SocketAddr) -> Result<(), Error> {
        let _ = s.set_nodelay(true);
        let (mut r, w) = s.into_split();
        let mut w = BufWriter::with_capacity(128 * 1024, w);
        loop {
            let mut len = [0u8; 2];
            match tokio::time::timeout(Duration::from_secs(30), r.read_exact(&mut len)).await {
                Ok(Ok(_)) => {}
                _ => return Ok(()), // idle, closed or error: done
            }
            let n = usize::from(u16::from_be_bytes(len));
            let mut buf = vec![0u8; n];
            tokio::time::timeout(Duration::from_secs(10), r.read_exact(&mut buf))
                .await
                .map_err(|_| Error::Io(std::io::Error::other("tcp read timeout")))??;
            match self.handle(&buf, peer, true) {
                Reply::None => {}
                Reply::One(out) => {
                    w.write_all(&(out.len() as u16).to_be_bytes()).await?;
                    w.write_all(&out).await?;
                    w.flush().await?;
                }
                Reply::Transfer(mut t) => {
                    while let Some(m) = t.next_message() {
                        let m = m?;
                        w.write_all(&(m.len() as u16).to_be_bytes()).await?;
                        w.write_all(&m).await?;
                    }
                    w.flush().await?;
                    t.account();
                }
            }
        }
    }
}
