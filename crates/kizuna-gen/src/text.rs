//! Allocation-free `Display` helpers for generated names, hashes and host names.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use crate::rng::mix;

/// A made-up domain name, stable for a seed: `kirotapezu.ru`.
#[derive(Clone, Copy)]
pub(crate) struct Domain {
    pub seed: u64,
    pub tlds: &'static [&'static str],
}

pub(crate) const C2_TLDS: &[&str] = &["ru", "com", "net", "info", "biz", "su", "top", "xyz", "org", "cn"];
pub(crate) const JP_TLDS: &[&str] = &["jp", "co.jp", "ne.jp", "or.jp", "com", "net"];

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const C: &[u8] = b"bcdfghjkmnprstvwyz";
        const V: &[u8] = b"aeiou";
        let mut s = mix(self.seed);
        let syllables = 2 + (s % 4) as usize;
        for _ in 0..syllables {
            s = mix(s);
            f.write_char(C[(s % C.len() as u64) as usize] as char)?;
            f.write_char(V[((s >> 8) % V.len() as u64) as usize] as char)?;
            if (s >> 16).is_multiple_of(5) {
                f.write_char(C[((s >> 24) % C.len() as u64) as usize] as char)?;
            }
        }
        s = mix(s);
        write!(f, ".{}", self.tlds[(s % self.tlds.len() as u64) as usize])
    }
}

/// `n` bytes of hex from a seed (MD5 = 16, SHA-256 = 32).
#[derive(Clone, Copy)]
pub(crate) struct Hex {
    pub seed: u64,
    pub bytes: usize,
}

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.seed;
        let mut left = self.bytes;
        while left > 0 {
            s = mix(s);
            let take = left.min(8);
            for i in 0..take {
                write!(f, "{:02x}", (s >> (8 * i)) as u8)?;
            }
            left -= take;
        }
        Ok(())
    }
}

/// ASCII lower case without spaces: `HO CHI MINH CITY` → `hochiminhcity`.
pub(crate) struct Lower<'a>(pub &'a str);

impl fmt::Display for Lower<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars().filter(|c| c.is_ascii_alphanumeric()) {
            f.write_char(c.to_ascii_lowercase())?;
        }
        Ok(())
    }
}

/// The reverse DNS name an ISP would give a subscriber address.
pub(crate) struct Rdns<'a> {
    pub ip: IpAddr,
    pub member: Option<&'a str>,
    pub asn: Option<u32>,
    pub city: &'a str,
}

impl fmt::Display for Rdns<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ip, self.member) {
            (IpAddr::V4(v4), Some(m)) => {
                let o = v4.octets();
                write!(f, "p{}-{}-{}-{}.{}.{m}.example.ne.jp", o[0], o[1], o[2], o[3], Lower(self.city))
            }
            (IpAddr::V4(v4), None) => {
                let o = v4.octets();
                write!(f, "{}-{}-{}-{}.static.as{}.example.net", o[0], o[1], o[2], o[3], self.asn.unwrap_or(0))
            }
            (IpAddr::V6(v6), Some(m)) => {
                let s = v6.segments();
                write!(f, "v6-{:x}-{:x}-{:x}.{}.{m}.example.ne.jp", s[2], s[3], s[7], Lower(self.city))
            }
            (IpAddr::V6(v6), None) => {
                let s = v6.segments();
                write!(f, "{:x}-{:x}-{:x}.v6.as{}.example.net", s[2], s[3], s[7], self.asn.unwrap_or(0))
            }
        }
    }
}
