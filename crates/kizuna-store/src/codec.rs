//! The compact binary encoding of an [`Observation`] kept in the store's `body` column.
//!
//! It is the store's own format, independent of any wire format, so that ingest pays no JSON
//! cost on the hot path. Layout (version 1):
//!
//! ```text
//! u8      version (1)
//! [u8; 5] presence bitmap, little-endian: bit i set = optional field i is present
//! always: time.observation (zigzag varint µs), classification.taxonomy (str),
//!         classification.type (str), feed.name (str), tlp (u8), legal_basis (u8)
//! then each present optional field, in bit order (see `Bit`)
//! ```
//!
//! Strings are a varint length and UTF-8 bytes; integers are LEB128 varints; an address is a
//! family byte (4 or 6) and its octets; a network is an address and a prefix length; `extra` is
//! compact JSON (serde_json). Classification and TLP names are stored by their stable spelling
//! or an explicit code table, never by enum position, so adding variants never changes the
//! meaning of stored bytes. Decoding checks everything and never panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kizuna_model::{
    Classification, ClassificationType, Endpoint, Extra, Feed, IpNet, LegalBasis, Malware, Observation, Protocol,
    Taxonomy, Timestamp, Tlp,
};

/// Current encoding version.
pub const VERSION: u8 = 1;

const BITMAP_LEN: usize = 5;
/// Number of optional fields (bits in the presence bitmap).
const OPTIONAL_FIELDS: u32 = 35;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("observation encoding: {0}")]
pub struct DecodeError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

/// Appends the encoding of `o` to `out`.
pub fn encode(o: &Observation, out: &mut Vec<u8>) {
    out.push(VERSION);
    let bitmap_at = out.len();
    out.extend_from_slice(&[0u8; BITMAP_LEN]);
    let mut w = Writer { out, bits: 0, bit: 0 };

    w.out_i64(o.time_observation.as_micros());
    w.out_str(o.classification.taxonomy.as_str());
    w.out_str(o.classification.kind.as_str());
    w.out_str(&o.feed.name);
    w.out.push(tlp_code(o.tlp));
    w.out.push(legal_basis_code(o.legal_basis));

    w.opt_i64(o.time_source.map(Timestamp::as_micros));
    w.endpoint(&o.source);
    w.endpoint(&o.destination);
    w.opt_str(o.classification.identifier.as_deref());
    w.opt_str(o.malware.name.as_deref());
    w.opt_str(o.malware.md5.as_deref());
    w.opt_str(o.malware.sha1.as_deref());
    w.opt_str(o.malware.sha256.as_deref());
    w.opt_str(o.protocol.transport.as_deref());
    w.opt_str(o.protocol.application.as_deref());
    w.opt_str(o.feed.provider.as_deref());
    w.opt_str(o.feed.code.as_deref());
    w.opt_str(o.feed.url.as_deref());
    w.opt_str(o.feed.documentation.as_deref());
    w.opt_u64(o.feed.accuracy.map(u64::from));
    w.opt_str(o.event_description.as_deref());
    if o.extra.is_empty() {
        w.skip();
    } else {
        w.present();
        // Serialising a map of JSON values cannot fail (string keys, no custom Serialize impls).
        let json = serde_json::to_vec(&o.extra).unwrap_or_else(|_| b"{}".to_vec());
        w.out_bytes(&json);
    }
    debug_assert_eq!(w.bit, OPTIONAL_FIELDS);
    let bits = w.bits.to_le_bytes();
    out[bitmap_at..bitmap_at + BITMAP_LEN].copy_from_slice(&bits[..BITMAP_LEN]);
}

/// Decodes bytes written by [`encode`].
pub fn decode(b: &[u8]) -> Result<Observation, DecodeError> {
    let Some((&version, rest)) = b.split_first() else {
        return err("empty");
    };
    if version != VERSION {
        return err(format!("unknown version {version}"));
    }
    if rest.len() < BITMAP_LEN {
        return err("truncated bitmap");
    }
    let mut bm = [0u8; 8];
    bm[..BITMAP_LEN].copy_from_slice(&rest[..BITMAP_LEN]);
    let bits = u64::from_le_bytes(bm);
    if bits >> OPTIONAL_FIELDS != 0 {
        return err("unknown fields present");
    }
    let mut r = Reader { b: &rest[BITMAP_LEN..], bits, bit: 0 };

    let time_observation = Timestamp::from_micros(r.i64()?);
    let taxonomy: Taxonomy = r.str_ref()?.parse().map_err(|e| DecodeError(format!("{e}")))?;
    let kind: ClassificationType = r.str_ref()?.parse().map_err(|e| DecodeError(format!("{e}")))?;
    let feed_name = r.string()?;
    let tlp = tlp_from_code(r.u8()?)?;
    let legal_basis = legal_basis_from_code(r.u8()?)?;

    let time_source = r.opt(|r| r.i64())?.map(Timestamp::from_micros);
    let source = r.endpoint()?;
    let destination = r.endpoint()?;
    let identifier = r.opt_string()?;
    let malware =
        Malware { name: r.opt_string()?, md5: r.opt_string()?, sha1: r.opt_string()?, sha256: r.opt_string()? };
    let protocol = Protocol { transport: r.opt_string()?, application: r.opt_string()? };
    let provider = r.opt_string()?;
    let code = r.opt_string()?;
    let url = r.opt_string()?;
    let documentation = r.opt_string()?;
    let accuracy = match r.opt(|r| r.u64())? {
        None => None,
        Some(a) => Some(u8::try_from(a).map_err(|_| DecodeError(format!("feed.accuracy {a} out of range")))?),
    };
    let event_description = r.opt_string()?;
    let extra: Extra = match r.opt(|r| r.bytes())? {
        None => Extra::new(),
        Some(json) => serde_json::from_slice(json).map_err(|e| DecodeError(format!("extra: {e}")))?,
    };
    if !r.b.is_empty() {
        return err(format!("{} trailing bytes", r.b.len()));
    }
    Ok(Observation {
        time_source,
        time_observation,
        source,
        destination,
        classification: Classification { taxonomy, kind, identifier },
        malware,
        protocol,
        feed: Feed { name: feed_name, provider, code, url, documentation, accuracy },
        event_description,
        tlp,
        legal_basis,
        extra,
    })
}

// Explicit code tables: an exhaustive match, so a new variant fails to compile here instead of
// silently shifting stored meanings.
fn tlp_code(t: Tlp) -> u8 {
    match t {
        Tlp::Clear => 0,
        Tlp::Green => 1,
        Tlp::Amber => 2,
        Tlp::AmberStrict => 3,
        Tlp::Red => 4,
    }
}

fn tlp_from_code(c: u8) -> Result<Tlp, DecodeError> {
    Ok(match c {
        0 => Tlp::Clear,
        1 => Tlp::Green,
        2 => Tlp::Amber,
        3 => Tlp::AmberStrict,
        4 => Tlp::Red,
        _ => return err(format!("unknown tlp code {c}")),
    })
}

fn legal_basis_code(b: LegalBasis) -> u8 {
    match b {
        LegalBasis::Consent => 0,
        LegalBasis::LegitimateBusiness => 1,
        LegalBasis::EmergencyEvacuation => 2,
    }
}

fn legal_basis_from_code(c: u8) -> Result<LegalBasis, DecodeError> {
    Ok(match c {
        0 => LegalBasis::Consent,
        1 => LegalBasis::LegitimateBusiness,
        2 => LegalBasis::EmergencyEvacuation,
        _ => return err(format!("unknown legal basis code {c}")),
    })
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    bits: u64,
    bit: u32,
}

impl Writer<'_> {
    fn present(&mut self) {
        self.bits |= 1 << self.bit;
        self.bit += 1;
    }
    fn skip(&mut self) {
        self.bit += 1;
    }
    fn out_u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }
    fn out_i64(&mut self, v: i64) {
        self.out_u64(((v << 1) ^ (v >> 63)) as u64);
    }
    fn out_bytes(&mut self, b: &[u8]) {
        self.out_u64(b.len() as u64);
        self.out.extend_from_slice(b);
    }
    fn out_str(&mut self, s: &str) {
        self.out_bytes(s.as_bytes());
    }
    fn out_ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => {
                self.out.push(4);
                self.out.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                self.out.push(6);
                self.out.extend_from_slice(&a.octets());
            }
        }
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.present();
                self.out_str(s);
            }
            None => self.skip(),
        }
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(v) => {
                self.present();
                self.out_u64(v);
            }
            None => self.skip(),
        }
    }
    fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => {
                self.present();
                self.out_i64(v);
            }
            None => self.skip(),
        }
    }
    fn endpoint(&mut self, e: &Endpoint) {
        match e.ip {
            Some(ip) => {
                self.present();
                self.out_ip(ip);
            }
            None => self.skip(),
        }
        self.opt_u64(e.port.map(u64::from));
        self.opt_u64(e.asn.map(u64::from));
        self.opt_str(e.as_name.as_deref());
        match e.network {
            Some(n) => {
                self.present();
                self.out_ip(n.addr());
                self.out.push(n.prefix_len());
            }
            None => self.skip(),
        }
        self.opt_str(e.fqdn.as_deref());
        self.opt_str(e.url.as_deref());
        self.opt_str(e.reverse_dns.as_deref());
        self.opt_str(e.geolocation_cc.as_deref());
        self.opt_str(e.account.as_deref());
    }
}

struct Reader<'a> {
    b: &'a [u8],
    bits: u64,
    bit: u32,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.b.len() < n {
            return err("truncated");
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            if shift == 63 && byte > 1 {
                return err("varint overflow");
            }
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        err("varint too long")
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        let u = self.u64()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| DecodeError("length out of range".into()))?;
        self.take(n)
    }
    fn str_ref(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| DecodeError("invalid UTF-8".into()))
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        self.str_ref().map(str::to_owned)
    }
    fn ip(&mut self) -> Result<IpAddr, DecodeError> {
        match self.u8()? {
            4 => {
                let o: [u8; 4] = self.take(4)?.try_into().map_err(|_| DecodeError("ipv4".into()))?;
                Ok(IpAddr::V4(Ipv4Addr::from(o)))
            }
            6 => {
                let o: [u8; 16] = self.take(16)?.try_into().map_err(|_| DecodeError("ipv6".into()))?;
                Ok(IpAddr::V6(Ipv6Addr::from(o)))
            }
            f => err(format!("unknown address family {f}")),
        }
    }
    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, DecodeError>) -> Result<Option<T>, DecodeError> {
        let present = self.bits & (1 << self.bit) != 0;
        self.bit += 1;
        if present { f(self).map(Some) } else { Ok(None) }
    }
    fn opt_string(&mut self) -> Result<Option<String>, DecodeError> {
        self.opt(|r| r.string())
    }
    fn endpoint(&mut self) -> Result<Endpoint, DecodeError> {
        let ip = self.opt(|r| r.ip())?;
        let port = match self.opt(|r| r.u64())? {
            None => None,
            Some(p) => Some(u16::try_from(p).map_err(|_| DecodeError(format!("port {p} out of range")))?),
        };
        let asn = match self.opt(|r| r.u64())? {
            None => None,
            Some(a) => Some(u32::try_from(a).map_err(|_| DecodeError(format!("asn {a} out of range")))?),
        };
        let as_name = self.opt_string()?;
        let network = self.opt(|r| {
            let addr = r.ip()?;
            let len = r.u8()?;
            IpNet::new(addr, len).map_err(|_| DecodeError(format!("prefix length {len} out of range")))
        })?;
        Ok(Endpoint {
            ip,
            port,
            asn,
            as_name,
            network,
            fqdn: self.opt_string()?,
            url: self.opt_string()?,
            reverse_dns: self.opt_string()?,
            geolocation_cc: self.opt_string()?,
            account: self.opt_string()?,
        })
    }
}

/// The bodies of a batch's observations, encoded ahead of the commit by [`EncodedBatch::of`], so
/// that a pipeline can encode on one thread while another commits the previous batch
/// ([`crate::Store::commit_encoded`]).
#[derive(Debug, Default, Clone)]
pub struct EncodedBatch {
    bytes: Vec<u8>,
    /// End offset in `bytes` of each observation's body, in batch order.
    ends: Vec<usize>,
}

impl EncodedBatch {
    /// Encodes every observation of `batch`, in order.
    pub fn of(batch: &crate::Batch) -> Self {
        let mut bytes = Vec::with_capacity(batch.observations.len() * 192);
        let mut ends = Vec::with_capacity(batch.observations.len());
        for r in &batch.observations {
            encode(&r.observation, &mut bytes);
            ends.push(bytes.len());
        }
        EncodedBatch { bytes, ends }
    }

    /// Number of encoded observations.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no observation is encoded.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// All bodies, back to back.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Where the body of the `k`-th observation lies in [`EncodedBatch::bytes`].
    pub fn span(&self, k: usize) -> std::ops::Range<usize> {
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        start..self.ends[k]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Observation {
        let mut o = Observation::new(
            "Sinkhole-Events-IPv4",
            Classification::with_identifier(ClassificationType::InfectedSystem, "mirai"),
            Timestamp::from_micros(1_772_668_812_123_456),
        );
        o.time_source = Some(Timestamp::from_micros(-5));
        o.source = Endpoint {
            ip: Some("192.0.2.7".parse().expect("fixture")),
            port: Some(65535),
            asn: Some(u32::MAX),
            as_name: Some("EXAMPLE-AS".into()),
            network: Some("192.0.2.0/24".parse().expect("fixture")),
            fqdn: Some("host.example".into()),
            url: Some("http://host.example/x?y=1".into()),
            reverse_dns: Some("7.2.0.192.in-addr.arpa".into()),
            geolocation_cc: Some("JP".into()),
            account: Some("root".into()),
        };
        o.destination.ip = Some("2001:db8::1".parse().expect("fixture"));
        o.destination.network = Some("2001:db8::/32".parse().expect("fixture"));
        o.destination.port = Some(0);
        o.malware = Malware {
            name: Some("mirai".into()),
            md5: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
            sha1: Some(String::new()),
            sha256: Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into()),
        };
        o.protocol = Protocol { transport: Some("tcp".into()), application: Some("telnet".into()) };
        o.feed.provider = Some("Shadowserver".into());
        o.feed.code = Some("event4_sinkhole".into());
        o.feed.url = Some("https://example.invalid/feed".into());
        o.feed.documentation = Some("docs".into());
        o.feed.accuracy = Some(100);
        o.event_description = Some("Ünïcödé text 日本語".into());
        o.tlp = Tlp::Red;
        o.legal_basis = LegalBasis::EmergencyEvacuation;
        o.extra.insert("n".into(), serde_json::json!({"b": [1, -2, 3.5, null, true], "a": "x"}));
        o.extra.insert("big".into(), serde_json::json!(u64::MAX));
        o
    }

    fn round_trip(o: &Observation) {
        let mut buf = Vec::new();
        encode(o, &mut buf);
        assert_eq!(&decode(&buf).expect("decodes"), o);
    }

    #[test]
    fn round_trips_every_field() {
        round_trip(&full());
        let minimal = Observation::new("x", Classification::new(ClassificationType::Scanner), Timestamp::from_secs(0));
        round_trip(&minimal);
        let mut all_tlp = full();
        for t in Tlp::ALL {
            all_tlp.tlp = *t;
            for b in LegalBasis::ALL {
                all_tlp.legal_basis = *b;
                round_trip(&all_tlp);
            }
        }
        for k in ClassificationType::ALL {
            round_trip(&Observation::new("", Classification::new(*k), Timestamp::from_micros(i64::MIN)));
        }
        let mut t = minimal.clone();
        t.time_observation = Timestamp::from_micros(i64::MAX);
        t.time_source = Some(Timestamp::from_micros(i64::MIN));
        round_trip(&t);
    }

    #[test]
    fn every_optional_field_has_its_own_bit() {
        // Each field set alone must round-trip: catches a bit order mismatch between encoder and decoder.
        let base = Observation::new("f", Classification::new(ClassificationType::Scanner), Timestamp::from_secs(1));
        let f = full();
        let mut cases: Vec<Observation> = Vec::new();
        macro_rules! one {
            ($($path:ident).+) => {{
                let mut o = base.clone();
                o.$($path).+ = f.$($path).+.clone();
                cases.push(o);
            }};
        }
        one!(time_source);
        for side in 0..2 {
            let fields: [fn(&mut Endpoint, &Endpoint); 10] = [
                |e, s| e.ip = s.ip,
                |e, s| e.port = s.port,
                |e, s| e.asn = s.asn,
                |e, s| e.as_name = s.as_name.clone(),
                |e, s| e.network = s.network,
                |e, s| e.fqdn = s.fqdn.clone(),
                |e, s| e.url = s.url.clone(),
                |e, s| e.reverse_dns = s.reverse_dns.clone(),
                |e, s| e.geolocation_cc = s.geolocation_cc.clone(),
                |e, s| e.account = s.account.clone(),
            ];
            for set in fields {
                let mut o = base.clone();
                set(if side == 0 { &mut o.source } else { &mut o.destination }, &f.source);
                cases.push(o);
            }
        }
        one!(classification.identifier);
        one!(malware.name);
        one!(malware.md5);
        one!(malware.sha1);
        one!(malware.sha256);
        one!(protocol.transport);
        one!(protocol.application);
        one!(feed.provider);
        one!(feed.code);
        one!(feed.url);
        one!(feed.documentation);
        one!(feed.accuracy);
        one!(event_description);
        one!(extra);
        for o in &cases {
            round_trip(o);
        }
        // Distinct single fields give distinct encodings.
        let mut seen = std::collections::HashSet::new();
        for o in &cases {
            let mut buf = Vec::new();
            encode(o, &mut buf);
            seen.insert(buf);
        }
        assert!(seen.len() >= 30, "{}", seen.len());
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        let mut buf = Vec::new();
        encode(&full(), &mut buf);
        assert!(decode(&[]).is_err());
        assert!(decode(&[2]).is_err());
        for n in 0..buf.len() {
            assert!(decode(&buf[..n]).is_err(), "prefix {n}");
        }
        let mut extra = buf.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
        // Flipping bytes must never panic (it may or may not decode).
        for i in 0..buf.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut b = buf.clone();
                b[i] ^= x;
                let _ = decode(&b);
            }
        }
        let mut unknown = buf.clone();
        unknown[5] |= 0x80;
        assert!(decode(&unknown).is_err());
    }
}
