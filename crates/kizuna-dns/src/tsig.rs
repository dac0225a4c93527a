//! TSIG (RFC 8945) with hmac-sha256 (and the other HMACs hickory-proto implements): request
//! verification and response signing, including multi-message transfers (§5.3.1: every
//! message after the first is signed over the prior MAC, the message and the timers only).

use std::collections::HashMap;

use base64::Engine as _;
use hickory_proto::rr::Name;
use hickory_proto::rr::TSigner;
use hickory_proto::rr::rdata::tsig::{TSIG, TsigAlgorithm, TsigError, make_tsig_record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::Error;

/// Fudge (seconds) put in responses and accepted in requests.
pub const FUDGE: u16 = 300;

/// A key name as looked up: lower case, absolute.
pub fn key_name(s: &str) -> Result<Name, Error> {
    let mut n = Name::from_ascii(s).map_err(|e| Error::Config(format!("TSIG key name {s:?}: {e}")))?.to_lowercase();
    n.set_fqdn(true);
    Ok(n)
}

/// A configured key.
#[derive(Clone)]
pub struct Key {
    /// Key name (lower case, absolute).
    pub name: Name,
    signer: TSigner,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("name", &self.name).field("algorithm", self.signer.algorithm()).finish()
    }
}

impl Key {
    /// From a name, an algorithm name (`hmac-sha256`, …) and a base64 secret.
    pub fn new(name: &str, algorithm: &str, secret_b64: &str) -> Result<Self, Error> {
        let bad = |r: String| Error::Config(format!("TSIG key {name:?}: {r}"));
        let n = key_name(name)?;
        let alg = match algorithm.trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            other => {
                return Err(bad(format!("unsupported algorithm {other:?} (hmac-sha256, hmac-sha384, hmac-sha512)")));
            }
        };
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret_b64.trim())
            .map_err(|e| bad(format!("secret is not base64: {e}")))?;
        if secret.len() < 16 {
            return Err(bad("secret shorter than 16 octets".into()));
        }
        let signer = TSigner::new(secret, alg, n.clone(), FUDGE).map_err(|e| bad(e.to_string()))?;
        Ok(Key { name: n, signer })
    }

    /// The hickory signer (for clients, e.g. NOTIFY).
    pub fn signer(&self) -> &TSigner {
        &self.signer
    }
}

/// All configured keys by name.
#[derive(Debug, Default, Clone)]
pub struct KeyRing {
    keys: HashMap<Name, Key>,
}

impl KeyRing {
    /// Adds a key (replacing one of the same name).
    pub fn insert(&mut self, key: Key) {
        self.keys.insert(key.name.clone(), key);
    }

    /// The key of that name.
    pub fn get(&self, name: &Name) -> Option<&Key> {
        let mut n = name.to_lowercase();
        n.set_fqdn(true);
        self.keys.get(&n)
    }
}

/// How a request's TSIG checked out.
#[derive(Debug)]
pub enum Verdict {
    /// No TSIG.
    Unsigned,
    /// Valid: the key, the request's MAC (for the response chain).
    Valid { key: Key, request_mac: Vec<u8> },
    /// Key name or algorithm unknown: NOTAUTH + BADKEY, unsigned.
    BadKey { key_name: Name, algorithm: TsigAlgorithm },
    /// MAC wrong: NOTAUTH + BADSIG, unsigned.
    BadSig { key: Key },
    /// Time outside the fudge: NOTAUTH + BADTIME, signed.
    BadTime { key: Key, request_mac: Vec<u8>, request_time: u64 },
}

/// Checks a request's TSIG (the raw bytes and the TSIG record hickory parsed from them).
pub fn verify(ring: &KeyRing, raw: &[u8], tsig: Option<(&Name, &TSIG)>, now: u64) -> Verdict {
    let Some((key_name, rd)) = tsig else { return Verdict::Unsigned };
    let Some(key) = ring.get(key_name) else {
        return Verdict::BadKey { key_name: key_name.clone(), algorithm: rd.algorithm.clone() };
    };
    if *key.signer.algorithm() != rd.algorithm {
        return Verdict::BadKey { key_name: key_name.clone(), algorithm: rd.algorithm.clone() };
    }
    match key.signer.verify_message_byte(raw, None, true) {
        Ok((mac, time, range)) => {
            if range.contains(&now) || now == range.end {
                Verdict::Valid { key: key.clone(), request_mac: mac }
            } else {
                Verdict::BadTime { key: key.clone(), request_mac: mac, request_time: time }
            }
        }
        Err(_) => Verdict::BadSig { key: key.clone() },
    }
}

/// Appends a TSIG record to an encoded message and bumps ARCOUNT.
fn append_tsig(msg: &mut Vec<u8>, key_name: &Name, rd: TSIG) -> Result<(), Error> {
    let ar = u16::from_be_bytes([msg[10], msg[11]]).saturating_add(1);
    msg[10..12].copy_from_slice(&ar.to_be_bytes());
    let rec = make_tsig_record(key_name.clone(), rd);
    let mut enc = BinEncoder::new(msg);
    // place the encoder at the end of what is there
    enc.set_offset(enc.len());
    rec.emit(&mut enc).map_err(|e| Error::Encode(e.to_string()))
}

/// Signs a chain of response messages (one for most answers; many for a transfer).
pub struct ResponseSigner {
    key: Key,
    prior_mac: Vec<u8>,
    first: bool,
    time: u64,
    error: Option<TsigError>,
    other: Vec<u8>,
}

impl ResponseSigner {
    /// For a response to a request with `request_mac`, at `time`.
    pub fn new(key: Key, request_mac: Vec<u8>, time: u64) -> Self {
        ResponseSigner { key, prior_mac: request_mac, first: true, time, error: None, other: Vec::new() }
    }

    /// For a BADTIME response (signed, with the server's time in Other Data).
    pub fn bad_time(key: Key, request_mac: Vec<u8>, request_time: u64, now: u64) -> Self {
        let mut other = Vec::with_capacity(6);
        other.extend_from_slice(&((now >> 32) as u16).to_be_bytes());
        other.extend_from_slice(&(now as u32).to_be_bytes());
        ResponseSigner {
            key,
            prior_mac: request_mac,
            first: true,
            time: request_time,
            error: Some(TsigError::BadTime),
            other,
        }
    }

    /// Signs the next message of the chain in place (`msg` must not yet carry a TSIG).
    pub fn sign(&mut self, msg: &mut Vec<u8>) -> Result<(), Error> {
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        let stub = TSIG::new(
            self.key.signer.algorithm().clone(),
            self.time,
            FUDGE,
            Vec::new(),
            id,
            self.error,
            self.other.clone(),
        );
        let mut tbs = Vec::with_capacity(msg.len() + 128);
        tbs.extend_from_slice(&(self.prior_mac.len() as u16).to_be_bytes());
        tbs.extend_from_slice(&self.prior_mac);
        tbs.extend_from_slice(msg);
        if self.first {
            let mut enc = BinEncoder::new(&mut tbs);
            enc.set_offset(enc.len());
            stub.emit_tsig_for_mac(&mut enc, &self.key.name).map_err(|e| Error::Encode(e.to_string()))?;
        } else {
            tbs.extend_from_slice(&((self.time >> 32) as u16).to_be_bytes());
            tbs.extend_from_slice(&(self.time as u32).to_be_bytes());
            tbs.extend_from_slice(&FUDGE.to_be_bytes());
        }
        let mac = self.key.signer.sign(&tbs).map_err(|e| Error::Encode(e.to_string()))?;
        self.prior_mac = mac.clone();
        self.first = false;
        append_tsig(msg, &self.key.name, stub.set_mac(mac))
    }
}

/// Appends the unsigned error TSIG of a BADKEY/BADSIG answer.
pub fn append_unsigned_error(
    msg: &mut Vec<u8>,
    key_name: &Name,
    algorithm: TsigAlgorithm,
    error: TsigError,
    time: u64,
) -> Result<(), Error> {
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let rd = TSIG::new(algorithm, time, FUDGE, Vec::new(), id, Some(error), Vec::new());
    append_tsig(msg, key_name, rd)
}
