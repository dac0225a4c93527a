//! The consent register: per subscriber and service (`protective-dns`), opt-in or opt-out,
//! when, through which channel (web, phone, contract, …), under which version of the policy
//! text, and on which basis: an individual opt-in, or the terms of service with opt-out at any
//! time. `[consent] default_basis` says which model the ISP runs, and so what a subscriber
//! without any record gets: filtered under `terms-of-service`, untouched under `opt-in`.
//!
//! The register is append-only (a change is a new row; the latest decision per subscriber and
//! service is in force) and every change is in the agent's audit log. It never leaves the
//! agent: the resolvers learn it only as `rpz-client-ip` passthru triggers for the current
//! addresses of the subscribers who are not filtered ([`crate::client_zone`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use kizuna_model::Timestamp;
use kizuna_store::AuditRecord;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::store::AgentStore;
use crate::{Error, Result, io_err};

/// The protective DNS service (warning page instead of a malicious site).
pub const PROTECTIVE_DNS: &str = "protective-dns";

/// Services the register knows.
pub const SERVICES: &[&str] = &[PROTECTIVE_DNS];

/// Channels a consent decision may come through.
pub const CHANNELS: &[&str] = &["web", "phone", "contract", "mail", "counter", "warning-page", "import", "other"];

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS consent (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber     TEXT NOT NULL REFERENCES subscribers(id),
    service        TEXT NOT NULL,
    status         TEXT NOT NULL,     -- 'opt-in' | 'opt-out'
    at             INTEGER NOT NULL,  -- when the subscriber decided, µs
    recorded       INTEGER NOT NULL,  -- when the agent recorded it, µs
    channel        TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    basis          TEXT NOT NULL,     -- 'opt-in' | 'terms-of-service'
    actor          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS consent_sub ON consent (service, subscriber, at, id);
CREATE TRIGGER IF NOT EXISTS consent_no_update BEFORE UPDATE ON consent
    BEGIN SELECT RAISE(ABORT, 'the consent register is append-only'); END;
CREATE TRIGGER IF NOT EXISTS consent_no_delete BEFORE DELETE ON consent
    BEGIN SELECT RAISE(ABORT, 'the consent register is append-only'); END;
-- Countermeasure-page visits of a case (the agent console's timeline; never sent anywhere).
CREATE TABLE IF NOT EXISTS page_visits (case_id INTEGER NOT NULL, notice_id INTEGER NOT NULL, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS page_visits_case ON page_visits (case_id, at);
CREATE INDEX IF NOT EXISTS audit_subject ON audit (subject, seq);
CREATE INDEX IF NOT EXISTS cases_updated ON cases (updated);
-- Warning-page views per UTC day and category: counts only, never a URL or a subscriber.
CREATE TABLE IF NOT EXISTS warning_daily (
    day      TEXT NOT NULL,
    category TEXT NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (day, category)
) WITHOUT ROWID;
"#;

/// A subscriber's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Filter (show the warning page).
    OptIn,
    /// Do not filter.
    OptOut,
}

impl Status {
    /// `opt-in` / `opt-out`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::OptIn => "opt-in",
            Status::OptOut => "opt-out",
        }
    }

    /// Parses [`Status::as_str`] (also `in`/`out`, `yes`/`no`).
    pub fn parse(s: &str) -> Option<Status> {
        match s.trim().to_ascii_lowercase().as_str() {
            "opt-in" | "in" | "yes" | "optin" => Some(Status::OptIn),
            "opt-out" | "out" | "no" | "optout" => Some(Status::OptOut),
            _ => None,
        }
    }
}

/// The consent model under which a decision was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// Individual opt-in: nobody is filtered without their own opt-in.
    OptIn,
    /// Consent in the terms of service, opt-out at any time: filtered unless opted out.
    TermsOfService,
}

impl Basis {
    /// `opt-in` / `terms-of-service`.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::OptIn => "opt-in",
            Basis::TermsOfService => "terms-of-service",
        }
    }

    /// Parses [`Basis::as_str`].
    pub fn parse(s: &str) -> Option<Basis> {
        match s.trim().to_ascii_lowercase().as_str() {
            "opt-in" | "individual" | "individual-opt-in" => Some(Basis::OptIn),
            "terms-of-service" | "tos" | "terms" => Some(Basis::TermsOfService),
            _ => None,
        }
    }

    /// What a subscriber without a record gets.
    pub fn default_status(self) -> Status {
        match self {
            Basis::OptIn => Status::OptOut,
            Basis::TermsOfService => Status::OptIn,
        }
    }
}

/// One decision to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConsent {
    /// Subscriber id (must be in the directory).
    pub subscriber: String,
    /// Service (`protective-dns`).
    pub service: String,
    /// The decision.
    pub status: Status,
    /// When the subscriber decided.
    pub at: Timestamp,
    /// Channel (`web`, `phone`, `contract`, …).
    pub channel: String,
    /// The version of the policy text the subscriber saw.
    pub policy_version: String,
    /// The consent model.
    pub basis: Basis,
}

/// A stored decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    /// Row id (order of recording).
    pub id: i64,
    /// The decision as recorded.
    pub consent: NewConsent,
    /// When the agent recorded it.
    pub recorded: Timestamp,
    /// Who recorded it (`cli:<user>`, `warning-page`, `import:<file>`).
    pub actor: String,
}

/// Checks a decision's fields.
pub fn validate(c: &NewConsent) -> Result<()> {
    if !SERVICES.contains(&c.service.as_str()) {
        return Err(Error::Input(format!("service {:?}: use {}", c.service, SERVICES.join(", "))));
    }
    if !CHANNELS.contains(&c.channel.as_str()) {
        return Err(Error::Input(format!("channel {:?}: use {}", c.channel, CHANNELS.join(", "))));
    }
    let v = c.policy_version.trim();
    if v.is_empty() || v.len() > 64 || v.chars().any(|ch| ch.is_control()) {
        return Err(Error::Input(format!("policy version {:?}: 1-64 printable characters", c.policy_version)));
    }
    if c.subscriber.trim().is_empty() {
        return Err(Error::Input("empty subscriber id".into()));
    }
    Ok(())
}

fn status_of(s: &str) -> rusqlite::Result<Status> {
    Status::parse(s)
        .ok_or_else(|| rusqlite::Error::InvalidColumnType(0, format!("status {s}"), rusqlite::types::Type::Text))
}

fn basis_of(s: &str) -> rusqlite::Result<Basis> {
    Basis::parse(s)
        .ok_or_else(|| rusqlite::Error::InvalidColumnType(0, format!("basis {s}"), rusqlite::types::Type::Text))
}

const COLS: &str = "id, subscriber, service, status, at, channel, policy_version, basis, recorded, actor";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConsentRecord> {
    Ok(ConsentRecord {
        id: r.get(0)?,
        consent: NewConsent {
            subscriber: r.get(1)?,
            service: r.get(2)?,
            status: status_of(&r.get::<_, String>(3)?)?,
            at: Timestamp::from_micros(r.get(4)?),
            channel: r.get(5)?,
            policy_version: r.get(6)?,
            basis: basis_of(&r.get::<_, String>(7)?)?,
        },
        recorded: Timestamp::from_micros(r.get(8)?),
        actor: r.get(9)?,
    })
}

fn insert(tx: &rusqlite::Connection, c: &NewConsent, now: Timestamp, actor: &str) -> Result<i64> {
    validate(c)?;
    let known: Option<i64> =
        tx.query_row("SELECT 1 FROM subscribers WHERE id = ?1", params![c.subscriber], |r| r.get(0)).optional()?;
    if known.is_none() {
        return Err(Error::NotFound(format!("subscriber {} is not in the directory", c.subscriber)));
    }
    tx.prepare_cached(
        "INSERT INTO consent (subscriber, service, status, at, recorded, channel, policy_version, basis, actor) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        c.subscriber,
        c.service,
        c.status.as_str(),
        c.at.as_micros(),
        now.as_micros(),
        c.channel,
        c.policy_version.trim(),
        c.basis.as_str(),
        actor
    ])?;
    let id = tx.last_insert_rowid();
    crate::store::append_audit(
        tx,
        &AuditRecord {
            at: now,
            actor: actor.to_owned(),
            action: format!("consent.{}", c.status.as_str()),
            subject: format!("subscriber:{}", c.subscriber),
            detail: serde_json::json!({
                "record": id, "service": c.service, "at": c.at.to_rfc3339(), "channel": c.channel,
                "policy_version": c.policy_version.trim(), "basis": c.basis.as_str(),
            })
            .to_string(),
        },
    )?;
    Ok(id)
}

/// Counts of a service's register (the agent console's chart).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsentCounts {
    /// Subscribers whose newest record is an opt-in.
    pub opt_in: u64,
    /// Subscribers whose newest record is an opt-out.
    pub opt_out: u64,
    /// Subscribers of the directory without a record (they get the default).
    pub no_record: u64,
}

impl AgentStore {
    /// Records one decision (appended; audited). The subscriber must be in the directory.
    pub fn record_consent(&self, c: &NewConsent, now: Timestamp, actor: &str) -> Result<i64> {
        self.tx(|tx| insert(tx, c, now, actor))
    }

    /// Records many decisions in one transaction (all or nothing).
    pub fn import_consent(&self, cs: &[NewConsent], now: Timestamp, actor: &str) -> Result<usize> {
        self.tx(|tx| {
            for c in cs {
                insert(tx, c, now, actor)?;
            }
            Ok(cs.len())
        })
    }

    /// A subscriber's history for a service, oldest first.
    pub fn consent_history(&self, subscriber: &str, service: &str) -> Result<Vec<ConsentRecord>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLS} FROM consent WHERE service = ?1 AND subscriber = ?2 ORDER BY id"
            ))?;
            Ok(st.query_map(params![service, subscriber], row)?.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The record in force for each subscriber with one (the latest decision; of two at the
    /// same time, the one recorded last), by subscriber id. A backfilled older decision never
    /// overrides a newer one.
    pub fn consent_current(&self, service: &str) -> Result<BTreeMap<String, ConsentRecord>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLS} FROM (SELECT *, row_number() OVER (PARTITION BY subscriber ORDER BY at DESC, id DESC) AS rn \
                 FROM consent WHERE service = ?1) WHERE rn = 1"
            ))?;
            let rows = st.query_map(params![service], row)?;
            let mut out = BTreeMap::new();
            for r in rows {
                let r = r?;
                out.insert(r.consent.subscriber.clone(), r);
            }
            Ok(out)
        })
    }

    /// Whether a subscriber is filtered for a service now: their latest decision, else the
    /// default of the ISP's consent model.
    pub fn consents(&self, subscriber: &str, service: &str, default: Basis) -> Result<bool> {
        let last: Option<String> = self.read(|c| {
            Ok(c.query_row(
                "SELECT status FROM consent WHERE service = ?1 AND subscriber = ?2 ORDER BY at DESC, id DESC LIMIT 1",
                params![service, subscriber],
                |r| r.get(0),
            )
            .optional()?)
        })?;
        let status = last.and_then(|s| Status::parse(&s)).unwrap_or(default.default_status());
        Ok(status == Status::OptIn)
    }

    /// Counts for a service.
    pub fn consent_counts(&self, service: &str) -> Result<ConsentCounts> {
        let cur = self.consent_current(service)?;
        let mut n = ConsentCounts::default();
        for r in cur.values() {
            match r.consent.status {
                Status::OptIn => n.opt_in += 1,
                Status::OptOut => n.opt_out += 1,
            }
        }
        n.no_record = self.subscriber_count()?.saturating_sub(cur.len() as u64);
        Ok(n)
    }

    /// Highest register row id (0 when empty): a cheap "did anything change" check for a
    /// process that did not make the change (the CLI writes, `serve` rebuilds the zone).
    pub fn consent_version(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("SELECT coalesce(max(id), 0) FROM consent", [], |r| r.get(0))?))
    }

    /// (subscribers, newest `updated`) of the directory: changes with every import.
    pub fn directory_version(&self) -> Result<(u64, i64)> {
        self.read(|c| {
            Ok(c.query_row("SELECT count(*), coalesce(max(updated), 0) FROM subscribers", [], |r| {
                Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, i64>(1)?))
            })?)
        })
    }

    /// Every session key of the directory → subscriber id.
    pub fn subscriber_keys(&self) -> Result<HashMap<String, String>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT key, subscriber FROM subscriber_keys")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Counts one warning-page view of a category today.
    pub fn count_warning_view(&self, category: &str, now: Timestamp) -> Result<()> {
        self.tx(|tx| {
            tx.prepare_cached(
                "INSERT INTO warning_daily (day, category, n) VALUES (?1, ?2, 1) \
                 ON CONFLICT (day, category) DO UPDATE SET n = n + 1",
            )?
            .execute(params![crate::clock::day_of(now), category])?;
            Ok(())
        })
    }

    /// Warning-page views: (day, category, count), oldest day first.
    pub fn warning_views(&self) -> Result<Vec<(String, String, u64)>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT day, category, n FROM warning_daily ORDER BY day, category")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?.max(0) as u64)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The last serial of the client zone (kept so that a restart never goes back).
    pub fn client_zone_serial(&self) -> Result<Option<u32>> {
        self.read(|c| {
            let v: Option<String> =
                c.query_row("SELECT v FROM meta WHERE k = 'client_zone.serial'", [], |r| r.get(0)).optional()?;
            Ok(v.and_then(|v| v.parse().ok()))
        })
    }

    /// Stores the client zone's serial.
    pub fn set_client_zone_serial(&self, serial: u32) -> Result<()> {
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO meta (k, v) VALUES ('client_zone.serial', ?1) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                params![serial.to_string()],
            )?;
            Ok(())
        })
    }
}

// ----- configuration -----------------------------------------------------------------------

fn default_version() -> String {
    "1".into()
}

/// `[consent]`: the ISP's consent model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentSection {
    /// `opt-in` (nobody filtered without their own opt-in; the default) or `terms-of-service`
    /// (consent is in the terms: everyone filtered unless they opted out).
    #[serde(default = "default_basis")]
    pub default_basis: Basis,
    /// The version of the policy text in force (recorded with decisions taken on the warning
    /// page and as the default of `kizuna isp consent set`).
    #[serde(default = "default_version")]
    pub policy_version: String,
}

fn default_basis() -> Basis {
    Basis::OptIn
}

impl Default for ConsentSection {
    fn default() -> Self {
        ConsentSection { default_basis: default_basis(), policy_version: default_version() }
    }
}

/// A TSIG key for the client zone's secondaries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneKey {
    /// Key name (as in the resolver's `key "…" {}` clause).
    pub name: String,
    /// `hmac-sha256` (default), `hmac-sha384`, `hmac-sha512`.
    #[serde(default = "default_alg")]
    pub algorithm: String,
    /// Base64 secret (prefer `secret_file`).
    pub secret: Option<String>,
    /// A file holding the base64 secret (first line).
    pub secret_file: Option<std::path::PathBuf>,
}

fn default_alg() -> String {
    "hmac-sha256".into()
}

fn default_zone_ttl() -> u32 {
    30
}

fn default_rebuild_ms() -> u64 {
    1000
}

/// `[client_zone]`: the `rpz-client-ip` zone the agent serves to the ISP's own resolvers, so
/// that subscriber addresses never leave the ISP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientZoneSection {
    /// UDP and TCP address of the agent's primary.
    pub listen: std::net::SocketAddr,
    /// Zone name (list it first in the resolver's `response-policy`).
    pub zone_name: String,
    /// TTL of the passthru records.
    #[serde(default = "default_zone_ttl")]
    pub ttl: u32,
    /// TSIG key required for transfers.
    pub key: Option<ZoneKey>,
    /// Addresses allowed to transfer without TSIG (Unbound).
    #[serde(default)]
    pub allow_transfer: Vec<ipnet::IpNet>,
    /// Secondaries to NOTIFY (signed with `key` when set).
    #[serde(default)]
    pub notify: Vec<std::net::SocketAddr>,
    /// Secondaries to NOTIFY unsigned (Unbound).
    #[serde(default)]
    pub notify_unsigned: Vec<std::net::SocketAddr>,
    /// How often sessions and the register are checked for changes, milliseconds.
    #[serde(default = "default_rebuild_ms")]
    pub rebuild_interval_ms: u64,
    /// Prefixes always left unfiltered (e.g. business lines, static customers with no session
    /// log: under `opt-in` an address the session logs do not know would otherwise be filtered).
    #[serde(default)]
    pub always_passthru: Vec<ipnet::IpNet>,
}

impl ClientZoneSection {
    /// The policy handed to `kizuna_rpz::client_passthru_zone`.
    pub fn policy(&self) -> kizuna_rpz::RpzPolicy {
        let mut p = kizuna_rpz::RpzPolicy::new(self.zone_name.clone(), kizuna_rpz::RpzAction::Passthru);
        p.ttl = self.ttl;
        p
    }

    /// Checks the zone name and the key's shape (not the secret file: that is read at start).
    pub fn check(&self) -> Result<()> {
        self.policy().validate().map_err(|e| Error::Config(format!("client_zone: {e}")))?;
        if let Some(k) = &self.key {
            if k.secret.is_none() && k.secret_file.is_none() {
                return Err(Error::Config("client_zone.key needs secret or secret_file".into()));
            }
            kizuna_dns::tsig::key_name(&k.name).map_err(|e| Error::Config(format!("client_zone.key: {e}")))?;
        }
        Ok(())
    }

    /// Checks the zone name and loads the key.
    pub fn validate(&self) -> Result<Option<kizuna_dns::tsig::Key>> {
        self.check()?;
        let Some(k) = &self.key else { return Ok(None) };
        let secret = match (&k.secret, &k.secret_file) {
            (Some(s), _) => s.trim().to_owned(),
            (None, Some(p)) => crate::config::read_secret(p)?,
            (None, None) => return Err(Error::Config("client_zone.key needs secret or secret_file".into())),
        };
        kizuna_dns::tsig::Key::new(&k.name, &k.algorithm, &secret)
            .map(Some)
            .map_err(|e| Error::Config(format!("client_zone.key: {e}")))
    }
}

// ----- the client zone ---------------------------------------------------------------------

/// Who holds which address now: the session index.
pub trait Holders: Send + Sync {
    /// The addresses of sessions in progress at `at` whose session key `keep` accepts, sorted
    /// and without duplicates (what the client zone needs, without copying every key). `marks`
    /// may keep the decision per subscriber between calls; the caller clears it when `keep`
    /// changes.
    fn live_nets_where(
        &self,
        at: Timestamp,
        keep: &dyn Fn(&str) -> bool,
        marks: &mut kizuna_sessions::SubscriberMarks,
    ) -> Vec<ipnet::IpNet>;
}

impl Holders for std::sync::RwLock<kizuna_sessions::SessionIndex> {
    fn live_nets_where(
        &self,
        at: Timestamp,
        keep: &dyn Fn(&str) -> bool,
        marks: &mut kizuna_sessions::SubscriberMarks,
    ) -> Vec<ipnet::IpNet> {
        match self.read() {
            Ok(i) => i.live_nets_marked(at, marks, keep),
            Err(p) => p.into_inner().live_nets_marked(at, marks, keep),
        }
    }
}

/// The client addresses to exempt: the current addresses of every subscriber who is not
/// filtered (their newest record is an opt-out, or they have none and the model is opt-in),
/// of session keys the directory does not know (no consent can be shown for them), and the
/// `always_passthru` prefixes. An address in two sessions at once is exempt when either
/// holder is. Sorted, without duplicates.
pub fn passthru_clients(
    store: &AgentStore,
    holders: &dyn Holders,
    basis: Basis,
    always: &[ipnet::IpNet],
    now: Timestamp,
) -> Result<Vec<ipnet::IpNet>> {
    let filtered = filtered_keys(store, basis)?;
    Ok(passthru_with(&filtered, holders, always, now, &mut kizuna_sessions::SubscriberMarks::default()))
}

/// Session key → filtered (the directory joined with the decisions in force).
fn filtered_keys(store: &AgentStore, basis: Basis) -> Result<HashMap<String, bool>> {
    let keys = store.subscriber_keys()?;
    let current = store.consent_current(PROTECTIVE_DNS)?;
    Ok(keys
        .into_iter()
        .map(|(key, sub)| {
            let status = current.get(&sub).map(|r| r.consent.status).unwrap_or(basis.default_status());
            (key, status == Status::OptIn)
        })
        .collect())
}

/// [`passthru_clients`] from the key → filtered map, with `marks` keeping each subscriber's
/// decision under that map (cleared by the caller when the map changes).
fn passthru_with(
    filtered: &HashMap<String, bool>,
    holders: &dyn Holders,
    always: &[ipnet::IpNet],
    now: Timestamp,
    marks: &mut kizuna_sessions::SubscriberMarks,
) -> Vec<ipnet::IpNet> {
    // An address with two possible holders (a handover) is exempt if either did not consent
    // (it is kept once per such holder); a key the directory does not know is never filtered.
    let keep = |key: &str| !filtered.get(key).copied().unwrap_or(false);
    let mut out = holders.live_nets_where(now, &keep, marks);
    if !always.is_empty() {
        out.extend_from_slice(always);
        out.sort_unstable();
        out.dedup();
    }
    out
}

/// (in `old` only, in `new` only) of two sorted, duplicate-free lists.
fn sorted_difference(old: &[ipnet::IpNet], new: &[ipnet::IpNet]) -> (Vec<ipnet::IpNet>, Vec<ipnet::IpNet>) {
    let (mut gone, mut added) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                gone.push(*a);
                i += 1;
            }
            (Some(_), Some(b)) => {
                added.push(*b);
                j += 1;
            }
            (Some(a), None) => {
                gone.push(*a);
                i += 1;
            }
            (None, Some(b)) => {
                added.push(*b);
                j += 1;
            }
            (None, None) => break,
        }
    }
    (gone, added)
}

/// The agent's own authoritative primary for the client zone (kizuna-dns), rebuilt when the
/// sessions or the register change; each new version is sent by NOTIFY and served by IXFR.
pub struct ClientZone {
    /// The primary serving the zone.
    pub primary: kizuna_dns::Primary,
    section: ClientZoneSection,
    key: Option<kizuna_dns::tsig::Key>,
    basis: Basis,
    store: std::sync::Arc<AgentStore>,
    holders: std::sync::Arc<dyn Holders>,
    wake: std::sync::Arc<tokio::sync::Notify>,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    last: std::sync::Mutex<Option<LastBuild>>,
    filter_cache: std::sync::Mutex<Option<FilterCache>>,
}

/// (register version, directory version, key → filtered).
type FilterCache = (i64, (u64, i64), std::sync::Arc<HashMap<String, bool>>);

/// The client list the current version holds (the next one is applied as its difference),
/// and each subscriber's decision under the key → filtered map it was computed with.
struct LastBuild {
    clients: Vec<ipnet::IpNet>,
    filter: Option<std::sync::Arc<HashMap<String, bool>>>,
    marks: kizuna_sessions::SubscriberMarks,
}

impl std::fmt::Debug for ClientZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientZone").field("zone", &self.section.zone_name).finish_non_exhaustive()
    }
}

impl ClientZone {
    /// The zone of the agent's `[client_zone]` section (`None` without one), first version
    /// built at once. `wake` is notified by whoever changes the register in this process.
    pub fn new(agent: &crate::agent::Agent, holders: std::sync::Arc<dyn Holders>) -> Result<Option<ClientZone>> {
        let Some(section) = agent.config.client_zone.clone() else { return Ok(None) };
        let key = section.validate()?;
        let mut ring = kizuna_dns::tsig::KeyRing::default();
        if let Some(k) = &key {
            ring.insert(k.clone());
        }
        let primary = kizuna_dns::Primary::new(ring, kizuna_dns::DnsMetrics::new());
        let now = agent.clock.now();
        let clients = passthru_clients(
            &agent.store,
            holders.as_ref(),
            agent.config.consent.default_basis,
            &section.always_passthru,
            now,
        )?;
        let zone = kizuna_rpz::client_passthru_zone(&section.policy(), &clients)
            .map_err(|e| Error::Config(format!("client_zone: {e}")))?;
        let serial = match agent.store.client_zone_serial()? {
            Some(s) => kizuna_dns::zone::serial_next(s),
            None => u32::try_from(now.as_secs()).unwrap_or(1).max(1),
        };
        let access = kizuna_dns::ZoneAccess {
            member: "agent".into(),
            key: key.as_ref().map(|k| k.name.clone()),
            allow: section.allow_transfer.clone(),
            notify: section.notify.clone(),
            notify_unsigned: section.notify_unsigned.clone(),
        };
        primary.add_zone(&zone, access, serial, 64).map_err(|e| Error::Config(format!("client_zone: {e}")))?;
        agent.store.set_client_zone_serial(serial)?;
        agent.metrics.client_zone_serial.set(i64::from(serial));
        agent.metrics.client_zone_passthru.set(clients.len() as i64);
        Ok(Some(ClientZone {
            primary,
            section,
            key,
            basis: agent.config.consent.default_basis,
            store: agent.store.clone(),
            holders,
            wake: agent.consent_changed.clone(),
            clock: agent.clock.clone(),
            last: std::sync::Mutex::new(Some(LastBuild {
                clients,
                filter: None,
                marks: kizuna_sessions::SubscriberMarks::default(),
            })),
            filter_cache: std::sync::Mutex::new(None),
        }))
    }

    /// The zone's current serial.
    pub fn serial(&self) -> u32 {
        self.primary.zone(&self.section.zone_name).map(|z| z.zone.current().serial).unwrap_or(0)
    }

    /// Rebuilds the zone from the sessions and the register now; returns the publish outcome
    /// and the number of passthru entries.
    ///
    /// Every call computes the whole client list again (one pass over the session index, no
    /// key copied; the key → filtered map is reloaded only when the register or the directory
    /// changed) and publishes only its difference from the current version, so a tick costs
    /// a scan, not a zone build: at 10M sessions the old full rebuild took longer than its
    /// one-second interval.
    pub fn rebuild(&self) -> Result<(kizuna_dns::zone::PublishOutcome, usize)> {
        let consent_version = self.store.consent_version()?;
        let filtered = self.filtered_keys(consent_version)?;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let l = last.get_or_insert_with(|| LastBuild {
            clients: Vec::new(),
            filter: None,
            marks: kizuna_sessions::SubscriberMarks::default(),
        });
        if !l.filter.as_ref().is_some_and(|f| std::sync::Arc::ptr_eq(f, &filtered)) {
            l.marks.clear();
            l.filter = Some(filtered.clone());
        }
        let clients = passthru_with(
            &filtered,
            self.holders.as_ref(),
            &self.section.always_passthru,
            self.clock.now(),
            &mut l.marks,
        );
        let (gone, new) = sorted_difference(&l.clients, &clients);
        let origin = self.section.policy().validate().map_err(|e| Error::Config(format!("client_zone: {e}")))?;
        let owner = |n: &ipnet::IpNet| kizuna_rpz::client_ip_owner(n, &origin);
        let gone: Vec<String> = gone.iter().filter_map(owner).collect();
        let new: Vec<String> = new.iter().filter_map(owner).collect();
        let out = if gone.is_empty() && new.is_empty() {
            kizuna_dns::zone::PublishOutcome { serial: self.serial(), changed: false, added: 0, removed: 0 }
        } else {
            let data = [kizuna_rpz::RData::Cname("rpz-passthru.".into())];
            self.primary
                .apply_owners(&self.section.zone_name, &gone, &new, self.section.ttl, &data)
                .map_err(|e| Error::Store(format!("client zone: {e}")))?
        };
        if out.changed {
            self.store.set_client_zone_serial(out.serial)?;
            tracing::info!(
                zone = %self.section.zone_name,
                serial = out.serial,
                passthru = clients.len(),
                added = out.added,
                removed = out.removed,
                "client zone published"
            );
        }
        let n = clients.len();
        l.clients = clients;
        Ok((out, n))
    }

    /// Key → filtered, reloaded only when the register or the directory changed (sessions
    /// change far more often than either).
    fn filtered_keys(&self, consent_version: i64) -> Result<std::sync::Arc<HashMap<String, bool>>> {
        let dir = self.store.directory_version()?;
        let mut cache = self.filter_cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((v, d, m)) = cache.as_ref()
            && *v == consent_version
            && *d == dir
        {
            return Ok(m.clone());
        }
        let m = std::sync::Arc::new(filtered_keys(&self.store, self.basis)?);
        *cache = Some((consent_version, dir, m.clone()));
        Ok(m)
    }

    /// Binds the configured address (UDP and TCP).
    pub async fn bind(&self) -> Result<(tokio::net::UdpSocket, tokio::net::TcpListener)> {
        let a = self.section.listen;
        let io = |e: std::io::Error| Error::Io { path: format!("client_zone.listen {a}"), source: e };
        Ok((tokio::net::UdpSocket::bind(a).await.map_err(io)?, tokio::net::TcpListener::bind(a).await.map_err(io)?))
    }

    /// Serves the zone and keeps it current until `shutdown` resolves: a rebuild every
    /// `rebuild_interval_ms` and at once when the register changes in this process.
    pub async fn run(
        self,
        agent: std::sync::Arc<crate::agent::Agent>,
        udp: tokio::net::UdpSocket,
        tcp: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        let source = udp.local_addr().map_err(|e| Error::Io { path: "client zone socket".into(), source: e })?.ip();
        let entry = self
            .primary
            .zone(&self.section.zone_name)
            .ok_or_else(|| Error::Config(format!("client zone {} vanished", self.section.zone_name)))?;
        let notifiers = kizuna_dns::notify::spawn_notifiers(
            &entry,
            self.key.clone(),
            source,
            &kizuna_dns::NotifyConfig::default(),
            self.primary.metrics(),
        );
        let server = tokio::spawn(self.primary.clone().serve(udp, tcp));
        tracing::info!(listen = %self.section.listen, zone = %self.section.zone_name, "client zone serving");
        let every = std::time::Duration::from_millis(self.section.rebuild_interval_ms.max(50));
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = self.wake.notified() => {}
                _ = &mut shutdown => break,
            }
            // A few SQLite reads and a zone diff: short enough to run on the runtime thread.
            match self.rebuild() {
                Ok((out, n)) => {
                    agent.metrics.client_zone_serial.set(i64::from(out.serial));
                    agent.metrics.client_zone_passthru.set(n as i64);
                }
                Err(e) => tracing::warn!("rebuilding the client zone: {e}"),
            }
        }
        server.abort();
        notifiers.iter().for_each(|h| h.abort());
        Ok(())
    }
}

/// Parsed CSV: good rows with their line, and the rejected rows.
pub type Parsed = (Vec<(u64, NewConsent)>, Vec<BadRow>);

/// A rejected CSV row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// 1-based line.
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// Parses a consent CSV: header row with `subscriber_id`, `status` (opt-in/opt-out), `at`
/// (RFC 3339), `channel`, `policy_version`, and optionally `service` (default
/// `protective-dns`) and `basis` (default: `default_basis`). Good rows come with their line;
/// bad rows with their line and reason.
pub fn parse_csv(path: &Path, default_basis: Basis) -> Result<Parsed> {
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    parse_reader(f, default_basis).map_err(|e| Error::Input(format!("{}: {e}", path.display())))
}

/// Parses consent CSV from a reader (see [`parse_csv`]).
pub fn parse_reader(r: impl std::io::Read, default_basis: Basis) -> Result<Parsed> {
    let mut rdr = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(r);
    let headers = rdr.headers().map_err(|e| Error::Input(format!("header: {e}")))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let need = ["subscriber_id", "status", "at", "channel", "policy_version"];
    let mut idx = [0usize; 5];
    for (i, n) in need.iter().enumerate() {
        idx[i] = col(n).ok_or_else(|| Error::Input(format!("the header needs the columns {}", need.join(", "))))?;
    }
    let (service_c, basis_c) = (col("service"), col("basis"));
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                bad.push(BadRow { line: e.position().map(|p| p.line()).unwrap_or(0), reason: e.to_string() });
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let get = |c: usize| rec.get(c).unwrap_or("").to_owned();
        let parsed = (|| -> Result<NewConsent> {
            let status = Status::parse(&get(idx[1]))
                .ok_or_else(|| Error::Input(format!("status {:?}: use opt-in or opt-out", get(idx[1]))))?;
            let at = Timestamp::parse(&get(idx[2]))
                .ok_or_else(|| Error::Input(format!("at {:?}: use RFC 3339", get(idx[2]))))?;
            let basis = match basis_c.map(get).filter(|s| !s.is_empty()) {
                Some(b) => Basis::parse(&b)
                    .ok_or_else(|| Error::Input(format!("basis {b:?}: use opt-in or terms-of-service")))?,
                None => default_basis,
            };
            let c = NewConsent {
                subscriber: get(idx[0]),
                service: service_c.map(get).filter(|s| !s.is_empty()).unwrap_or_else(|| PROTECTIVE_DNS.into()),
                status,
                at,
                channel: get(idx[3]),
                policy_version: get(idx[4]),
                basis,
            };
            validate(&c)?;
            Ok(c)
        })();
        match parsed {
            Ok(c) => good.push((line, c)),
            Err(e) => bad.push(BadRow { line, reason: e.to_string() }),
        }
    }
    Ok((good, bad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Subscriber;

    /// The client zone's incremental path (difference of two client lists applied owner by
    /// owner) must give exactly the records a full build of the new list gives, over a series
    /// of session and consent changes, IPv4 and IPv6, including a /0 that is never a trigger.
    #[test]
    fn incremental_client_zone_equals_a_full_build() {
        let section: ClientZoneSection =
            toml::from_str("listen = \"127.0.0.1:0\"\nzone_name = \"clients.isp.example\"\n").expect("section");
        let policy = section.policy();
        let origin = policy.validate().expect("origin");
        let net = |s: &str| s.parse::<ipnet::IpNet>().expect("net");
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let pool: Vec<ipnet::IpNet> = (0..200u32)
            .map(|i| net(&format!("198.51.{}.{}/32", i / 100, i % 100)))
            .chain((0..50u32).map(|i| net(&format!("2001:db8:{i:x}::/56"))))
            .chain([net("0.0.0.0/0")])
            .collect();
        let primary = kizuna_dns::Primary::new(kizuna_dns::tsig::KeyRing::default(), kizuna_dns::DnsMetrics::new());
        let first: Vec<ipnet::IpNet> = pool.iter().copied().filter(|_| next() % 2 == 0).collect();
        let zone = kizuna_rpz::client_passthru_zone(&policy, &first).expect("zone");
        let access = kizuna_dns::ZoneAccess {
            member: "agent".into(),
            key: None,
            allow: Vec::new(),
            notify: Vec::new(),
            notify_unsigned: Vec::new(),
        };
        let entry = primary.add_zone(&zone, access, 1, 64).expect("add");
        let mut cur = first;
        for round in 0..30 {
            // Sessions end and start, subscribers opt in and out: a random part of the pool.
            let mut new: Vec<ipnet::IpNet> = pool.iter().copied().filter(|_| next() % 3 != 0).collect();
            if round % 7 == 0 {
                new.clear();
            }
            new.sort_unstable();
            let (gone, added) = sorted_difference(&cur, &new);
            let owner = |n: &ipnet::IpNet| kizuna_rpz::client_ip_owner(n, &origin);
            let gone: Vec<String> = gone.iter().filter_map(owner).collect();
            let added: Vec<String> = added.iter().filter_map(owner).collect();
            let data = [kizuna_rpz::RData::Cname("rpz-passthru.".into())];
            let out = primary.apply_owners(&section.zone_name, &gone, &added, section.ttl, &data).expect("apply");
            let full = kizuna_rpz::client_passthru_zone(&policy, &new).expect("zone");
            let (_, want) = kizuna_dns::zone::encode_zone(&full).expect("encode");
            assert_eq!(*entry.zone.current().records, want, "round {round}");
            assert_eq!(out.changed, !gone.is_empty() || !added.is_empty(), "round {round}");
            cur = new;
        }
    }

    #[test]
    fn sorted_difference_of_client_lists() {
        let n = |s: &str| s.parse::<ipnet::IpNet>().expect("net");
        let old = [n("10.0.0.1/32"), n("10.0.0.2/32"), n("10.0.0.4/32")];
        let new = [n("10.0.0.2/32"), n("10.0.0.3/32"), n("10.0.0.5/32")];
        assert_eq!(
            sorted_difference(&old, &new),
            (vec![n("10.0.0.1/32"), n("10.0.0.4/32")], vec![n("10.0.0.3/32"), n("10.0.0.5/32")])
        );
        assert_eq!(sorted_difference(&old, &old), (vec![], vec![]));
        assert_eq!(sorted_difference(&[], &new), (vec![], new.to_vec()));
    }

    fn store() -> AgentStore {
        let s = AgentStore::open_in_memory().expect("store");
        let sub = |id: &str| Subscriber {
            id: id.into(),
            name: format!("N {id}"),
            email: None,
            postal_address: None,
            language: "ja".into(),
            keys: vec![format!("user-{id}")],
        };
        s.upsert_subscribers(&[sub("S1"), sub("S2"), sub("S3")], Timestamp::from_secs(1_800_000_000), "t")
            .expect("subs");
        s
    }

    fn dec(sub: &str, status: Status, t: i64) -> NewConsent {
        NewConsent {
            subscriber: sub.into(),
            service: PROTECTIVE_DNS.into(),
            status,
            at: Timestamp::from_secs(t),
            channel: "web".into(),
            policy_version: "2026-04".into(),
            basis: Basis::TermsOfService,
        }
    }

    #[test]
    fn history_is_kept_and_the_newest_record_is_in_force() {
        let s = store();
        let now = Timestamp::from_secs(1_800_000_100);
        s.record_consent(&dec("S1", Status::OptIn, 1), now, "cli:t").expect("in");
        s.record_consent(&dec("S1", Status::OptOut, 2), now, "cli:t").expect("out");
        s.record_consent(&dec("S2", Status::OptOut, 3), now, "cli:t").expect("out");
        // a backfilled older decision is history, not the decision in force
        s.record_consent(&dec("S2", Status::OptIn, 0), now, "import:t").expect("backfill");
        let h = s.consent_history("S1", PROTECTIVE_DNS).expect("history");
        assert_eq!(h.iter().map(|r| r.consent.status).collect::<Vec<_>>(), vec![Status::OptIn, Status::OptOut]);
        assert!(!s.consents("S1", PROTECTIVE_DNS, Basis::TermsOfService).expect("S1"));
        // no record: the model decides
        assert!(s.consents("S3", PROTECTIVE_DNS, Basis::TermsOfService).expect("S3"));
        assert!(!s.consents("S3", PROTECTIVE_DNS, Basis::OptIn).expect("S3"));
        assert_eq!(
            s.consent_counts(PROTECTIVE_DNS).expect("counts"),
            ConsentCounts { opt_in: 0, opt_out: 2, no_record: 1 }
        );
        // every change is audited, and the register cannot be rewritten
        let audit = s.audit_entries(0, 100).expect("audit");
        assert_eq!(audit.iter().filter(|e| e.record.action.starts_with("consent.")).count(), 4);
        assert!(!s.consents("S2", PROTECTIVE_DNS, Basis::TermsOfService).expect("S2"));
        assert!(matches!(s.verify_audit().expect("verify"), kizuna_store::audit::Verdict::Intact { .. }));
        assert!(s.tx(|tx| Ok(tx.execute("UPDATE consent SET status = 'opt-in'", [])?)).is_err());
        assert!(s.tx(|tx| Ok(tx.execute("DELETE FROM consent", [])?)).is_err());
    }

    #[test]
    fn passthru_lists_current_addresses_of_the_unfiltered_only() {
        use kizuna_sessions::{LogKind, ResolverConfig, SessionIndex};
        let s = store();
        let now = Timestamp::from_secs(1_800_000_100);
        let rec = |status, user: &str, session: &str, v4: &str, v6: &str| {
            let t = Timestamp::from_secs(1_800_000_000).to_datetime();
            format!(
                "{}\n\tAcct-Status-Type = {status}\n\tUser-Name = \"{user}\"\n\tAcct-Session-Id = \"{session}\"\n\t\
                 NAS-IP-Address = 192.0.2.254\n\tFramed-IP-Address = {v4}\n\tDelegated-IPv6-Prefix = {v6}\n\t\
                 Event-Timestamp = \"{} UTC\"\n\tTimestamp = 1800000000\n\n",
                t.format("%a %b %e %H:%M:%S %Y"),
                t.format("%b %e %Y %H:%M:%S"),
            )
        };
        let detail = rec("Start", "user-S1", "a", "192.0.2.1", "2001:db8:1::/56")
            + &rec("Start", "user-S2", "b", "192.0.2.2", "2001:db8:2::/56")
            + &rec("Start", "user-S3", "c", "192.0.2.3", "2001:db8:3::/56")
            + &rec("Start", "stranger", "d", "192.0.2.4", "2001:db8:4::/56");
        let mut index = SessionIndex::new(ResolverConfig::default());
        let l = index.load_reader(detail.as_bytes(), "detail", LogKind::RadiusDetail).expect("load");
        assert_eq!((l.events, l.rejected), (4, 0), "{:?}", l.rejections);
        let index = std::sync::RwLock::new(index);
        s.record_consent(&dec("S1", Status::OptIn, 1), now, "t").expect("S1");
        s.record_consent(&dec("S2", Status::OptOut, 1), now, "t").expect("S2");
        let nets = |basis| {
            passthru_clients(&s, &index, basis, &["198.51.100.0/24".parse().expect("net")], now)
                .expect("passthru")
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
        };
        // opt-in model: S2 opted out, S3 never opted in, the stranger is unknown; S1 is filtered
        assert_eq!(
            nets(Basis::OptIn),
            [
                "192.0.2.2/32",
                "192.0.2.3/32",
                "192.0.2.4/32",
                "198.51.100.0/24",
                "2001:db8:2::/56",
                "2001:db8:3::/56",
                "2001:db8:4::/56"
            ]
        );
        // terms of service: S3 (no record) is filtered too
        assert_eq!(
            nets(Basis::TermsOfService),
            ["192.0.2.2/32", "192.0.2.4/32", "198.51.100.0/24", "2001:db8:2::/56", "2001:db8:4::/56"]
        );
        // the zone BIND loads: canonical rpz-client-ip owners, passthru
        let z = kizuna_rpz::client_passthru_zone(
            &kizuna_rpz::RpzPolicy::new("consent.isp.example", kizuna_rpz::RpzAction::Passthru),
            &passthru_clients(&s, &index, Basis::TermsOfService, &[], now).expect("passthru"),
        )
        .expect("zone");
        let owners: Vec<String> = z.records.iter().map(|r| r.owner.clone()).filter(|o| o.contains("client")).collect();
        assert!(owners.contains(&"32.2.2.0.192.rpz-client-ip".to_owned()), "{owners:?}");
        assert!(owners.contains(&"56.zz.2.db8.2001.rpz-client-ip".to_owned()), "{owners:?}");
        assert!(!owners.iter().any(|o| o.starts_with("32.1.2.0.192")), "S1 consented: {owners:?}");
    }

    #[test]
    fn bad_input_is_rejected() {
        let s = store();
        let now = Timestamp::from_secs(1_800_000_100);
        assert!(matches!(s.record_consent(&dec("S9", Status::OptIn, 1), now, "t"), Err(Error::NotFound(_))));
        let mut d = dec("S1", Status::OptIn, 1);
        d.channel = "carrier-pigeon".into();
        assert!(s.record_consent(&d, now, "t").is_err());
        let csv = "subscriber_id,status,at,channel,policy_version\n\
                   S1,opt-out,2026-04-01T00:00:00Z,phone,v3\n\
                   S2,maybe,2026-04-01T00:00:00Z,phone,v3\n\
                   S3,opt-in,yesterday,web,v3\n\
                   S3,opt-in,2026-04-02T09:00:00+09:00,web,v3\n";
        let (good, bad) = parse_reader(csv.as_bytes(), Basis::OptIn).expect("parse");
        assert_eq!(good.len(), 2);
        assert_eq!(good[0].1.basis, Basis::OptIn);
        let good: Vec<NewConsent> = good.into_iter().map(|(_, c)| c).collect();
        assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![3, 4]);
        assert!(bad[0].reason.contains("status"), "{bad:?}");
        assert_eq!(s.import_consent(&good, now, "import:t").expect("import"), 2);
        assert_eq!(s.consent_version().expect("v"), 2);
    }
}
