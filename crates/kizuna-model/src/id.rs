//! Content-derived observation ids: the basis of idempotent ingestion.

use crate::{Endpoint, Observation};

/// 128-bit id of an observation, derived from its content (BLAKE3 over a canonical encoding of
/// every field except `time.observation`), so that re-ingesting the same input, or receiving the
/// same event twice through at-least-once delivery, yields the same id and adds nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObservationId(pub [u8; 16]);

impl ObservationId {
    /// Computes the id of an observation.
    pub fn of(o: &Observation) -> Self {
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(1024));
        }
        BUF.with(|b| match b.try_borrow_mut() {
            Ok(mut buf) => Self::of_with(o, &mut buf),
            Err(_) => Self::of_with(o, &mut Vec::new()),
        })
    }

    /// Encodes canonically into `buf` (cleared first) and hashes it once: one BLAKE3 call over
    /// a few hundred bytes is much cheaper than many small incremental updates.
    fn of_with(o: &Observation, buf: &mut Vec<u8>) -> Self {
        buf.clear();
        let mut h = Canon(buf);
        h.bytes(b"kizuna.observation.v1");
        h.opt_i64(o.time_source.map(|t| t.as_micros()));
        h.endpoint(&o.source);
        h.endpoint(&o.destination);
        h.str(o.classification.taxonomy.as_str());
        h.str(o.classification.kind.as_str());
        h.opt_str(o.classification.identifier.as_deref());
        h.opt_str(o.malware.name.as_deref());
        h.opt_str(o.malware.md5.as_deref());
        h.opt_str(o.malware.sha1.as_deref());
        h.opt_str(o.malware.sha256.as_deref());
        h.opt_str(o.protocol.transport.as_deref());
        h.opt_str(o.protocol.application.as_deref());
        h.str(&o.feed.name);
        h.opt_str(o.feed.provider.as_deref());
        h.opt_str(o.feed.code.as_deref());
        h.opt_str(o.feed.url.as_deref());
        h.opt_str(o.feed.documentation.as_deref());
        h.opt_i64(o.feed.accuracy.map(i64::from));
        h.opt_str(o.event_description.as_deref());
        h.str(o.tlp.as_str());
        h.str(o.legal_basis.as_str());
        h.u64(o.extra.len() as u64);
        for (k, v) in &o.extra {
            h.str(k);
            h.json(v);
        }
        let digest = blake3::hash(h.0);
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest.as_bytes()[..16]);
        ObservationId(id)
    }

    /// Lower-case hex, 32 characters.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write;
        self.0.iter().fold(String::with_capacity(32), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Parses 32 hex characters.
    pub fn from_hex(s: &str) -> Option<Self> {
        let s = s.as_bytes();
        if s.len() != 32 {
            return None;
        }
        let mut id = [0u8; 16];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            id[i] = (hi * 16 + lo) as u8;
        }
        Some(ObservationId(id))
    }
}

impl std::fmt::Debug for ObservationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObservationId({})", self.to_hex())
    }
}

impl std::fmt::Display for ObservationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A length-prefixed, tagged encoding: no two different field sequences encode the same.
struct Canon<'a>(&'a mut Vec<u8>);

impl Canon<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(&(b.len() as u64).to_le_bytes());
        self.0.extend_from_slice(b);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.0.push(1);
        self.bytes(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.0.push(0),
        }
    }
    fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => {
                self.0.push(1);
                self.0.extend_from_slice(&v.to_le_bytes());
            }
            None => self.0.push(0),
        }
    }
    fn ip(&mut self, ip: Option<std::net::IpAddr>) {
        match ip {
            Some(std::net::IpAddr::V4(a)) => {
                self.0.push(4);
                self.0.extend_from_slice(&a.octets());
            }
            Some(std::net::IpAddr::V6(a)) => {
                self.0.push(6);
                self.0.extend_from_slice(&a.octets());
            }
            None => self.0.push(0),
        }
    }
    fn endpoint(&mut self, e: &Endpoint) {
        self.ip(e.ip);
        self.opt_i64(e.port.map(i64::from));
        self.opt_i64(e.asn.map(i64::from));
        self.opt_str(e.as_name.as_deref());
        match e.network {
            Some(n) => {
                self.0.push(1);
                self.ip(Some(n.addr()));
                self.0.push(n.prefix_len());
            }
            None => self.0.push(0),
        }
        self.opt_str(e.fqdn.as_deref());
        self.opt_str(e.url.as_deref());
        self.opt_str(e.reverse_dns.as_deref());
        self.opt_str(e.geolocation_cc.as_deref());
        self.opt_str(e.account.as_deref());
    }
    /// JSON with object keys sorted, independent of serde_json's map implementation.
    fn json(&mut self, v: &serde_json::Value) {
        use serde_json::Value;
        use std::io::Write as _;
        match v {
            Value::Null => self.0.push(b'n'),
            Value::Bool(b) => self.0.push(if *b { b't' } else { b'f' }),
            Value::Number(n) => {
                self.0.push(b'#');
                let at = self.0.len();
                self.0.extend_from_slice(&[0; 8]);
                let _ = write!(self.0, "{n}");
                let len = (self.0.len() - at - 8) as u64;
                self.0[at..at + 8].copy_from_slice(&len.to_le_bytes());
            }
            Value::String(s) => {
                self.0.push(b's');
                self.bytes(s.as_bytes());
            }
            Value::Array(a) => {
                self.0.push(b'[');
                self.u64(a.len() as u64);
                for x in a {
                    self.json(x);
                }
            }
            Value::Object(m) => {
                self.0.push(b'{');
                self.u64(m.len() as u64);
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                for k in keys {
                    self.bytes(k.as_bytes());
                    self.json(&m[k]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Classification, ClassificationType, Timestamp};

    fn sample() -> Observation {
        let mut o =
            Observation::new("cowrie", Classification::new(ClassificationType::BruteForce), Timestamp::from_secs(10));
        o.source.ip = Some("192.0.2.7".parse().unwrap());
        o.time_source = Some(Timestamp::from_secs(5));
        o
    }

    #[test]
    fn id_ignores_observation_time_but_not_content() {
        let a = sample();
        let mut b = sample();
        b.time_observation = Timestamp::from_secs(99);
        assert_eq!(a.id(), b.id());
        b.source.port = Some(22);
        assert_ne!(a.id(), b.id());
        let mut c = sample();
        c.extra.insert("x".into(), serde_json::json!({"b": 1, "a": [true, null]}));
        let mut d = sample();
        d.extra.insert("x".into(), serde_json::json!({"a": [true, null], "b": 1}));
        assert_eq!(c.id(), d.id());
        assert_ne!(a.id(), c.id());
    }

    #[test]
    fn empty_and_missing_strings_differ() {
        let mut a = sample();
        a.malware.name = Some(String::new());
        assert_ne!(a.id(), sample().id());
    }

    #[test]
    fn hex_round_trips() {
        let id = sample().id();
        assert_eq!(ObservationId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(ObservationId::from_hex("zz"), None);
    }
}
