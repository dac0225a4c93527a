//! The `[dns]` configuration section (TOML; unknown keys rejected).
//!
//! ```toml
//! [dns]
//! listen = "127.0.0.1:5300"          # UDP and TCP
//! http_listen = "127.0.0.1:9153"     # /metrics, /healthz, /api/v1/dns/*
//!
//! [[dns.keys]]
//! name = "isp-a-xfr"
//! algorithm = "hmac-sha256"
//! secret = "base64…"
//!
//! [[dns.zones]]
//! member = "isp-a"
//! key = "isp-a-xfr"                  # TSIG required for transfers…
//! allow_transfer = ["127.0.0.1/32"]  # …or these addresses without TSIG (Unbound)
//! notify = ["127.0.0.1:5301"]
//! [dns.zones.policy]
//! zone_name = "rpz.isp-a.kizuna.example"
//! action = { type = "local-data", a = "192.0.2.80" }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use kizuna_rpz::RpzPolicy;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::tsig::{Key, KeyRing};

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5300))
}
fn default_history() -> usize {
    256
}
fn default_poll_ms() -> u64 {
    100
}
fn default_sweep_secs() -> u64 {
    30
}
fn default_alg() -> String {
    "hmac-sha256".into()
}

/// The primary's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// UDP and TCP address of the primary.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// HTTP address for /metrics, /healthz and the zone/provenance API (none: not served).
    #[serde(default)]
    pub http_listen: Option<SocketAddr>,
    /// Versions kept per zone for IXFR.
    #[serde(default = "default_history")]
    pub history: usize,
    /// How often the indicator store's change sequence is polled (milliseconds).
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// How often zones are regenerated even without changes, so that expiries take effect
    /// (seconds).
    #[serde(default = "default_sweep_secs")]
    pub expiry_sweep_secs: u64,
    /// NOTIFY retry schedule.
    #[serde(default)]
    pub notify: NotifyConfig,
    /// File keeping each zone's last serial across restarts (a restarted primary must never
    /// go back in serial, or secondaries would ignore it).
    #[serde(default)]
    pub serial_state: Option<PathBuf>,
    /// TSIG keys.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// Served zones.
    #[serde(default)]
    pub zones: Vec<ZoneConfig>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            listen: default_listen(),
            http_listen: None,
            history: default_history(),
            poll_interval_ms: default_poll_ms(),
            expiry_sweep_secs: default_sweep_secs(),
            notify: NotifyConfig::default(),
            serial_state: None,
            keys: Vec::new(),
            zones: Vec::new(),
        }
    }
}

/// NOTIFY retries: the first after `first_retry_ms`, doubling up to `max_retry_ms`, until
/// the secondary acknowledges (or a newer serial replaces the pending one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Wait for the first acknowledgement (ms).
    pub first_retry_ms: u64,
    /// Longest wait between retries (ms).
    pub max_retry_ms: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig { first_retry_ms: 250, max_retry_ms: 10_000 }
    }
}

/// A TSIG key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Key name (as in the resolver's `key "…" {}` clause).
    pub name: String,
    /// `hmac-sha256` (default), `hmac-sha384`, `hmac-sha512`.
    #[serde(default = "default_alg")]
    pub algorithm: String,
    /// Base64 secret (`tsig-keygen` output).
    pub secret: String,
}

/// One served zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// Member the zone is for (names it in logs and the API).
    pub member: String,
    /// Zone name, action, TTL, categories, SOA.
    pub policy: RpzPolicy,
    /// TSIG key required for transfers and non-SOA queries.
    #[serde(default)]
    pub key: Option<String>,
    /// Addresses allowed to transfer without TSIG (Unbound cannot sign transfers).
    #[serde(default)]
    pub allow_transfer: Vec<IpNet>,
    /// Secondaries to NOTIFY on every new version (signed with `key` when set).
    #[serde(default)]
    pub notify: Vec<SocketAddr>,
    /// Secondaries to NOTIFY without TSIG (Unbound does not accept a signed NOTIFY).
    #[serde(default)]
    pub notify_unsigned: Vec<SocketAddr>,
    /// When set, this is a client zone: `rpz-client-ip` passthru triggers for these
    /// addresses (subscribers to leave unfiltered) instead of indicator triggers.
    #[serde(default)]
    pub passthru_clients: Option<Vec<IpNet>>,
}

impl DnsConfig {
    /// Parses a TOML file whose top level is the section's content.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let c: DnsConfig = toml_parse(text)?;
        c.validate()?;
        Ok(c)
    }

    /// Checks keys, zone policies and references.
    pub fn validate(&self) -> Result<KeyRing, Error> {
        let mut ring = KeyRing::default();
        for k in &self.keys {
            ring.insert(Key::new(&k.name, &k.algorithm, &k.secret)?);
        }
        let mut seen = std::collections::BTreeSet::new();
        for z in &self.zones {
            let origin = z.policy.validate().map_err(|e| Error::Config(e.to_string()))?;
            if !seen.insert(origin.clone()) {
                return Err(Error::Config(format!("zone {origin} configured twice")));
            }
            if let Some(k) = &z.key {
                let name = crate::tsig::key_name(k)?;
                if ring.get(&name).is_none() {
                    return Err(Error::Config(format!("zone {origin}: key {k:?} is not in [[dns.keys]]")));
                }
            }
        }
        Ok(ring)
    }
}

fn toml_parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Error> {
    toml::from_str(text).map_err(|e| Error::Config(e.to_string()))
}
