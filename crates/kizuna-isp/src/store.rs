//! The agent's own database (SQLite, one file in the agent's data directory): the subscriber
//! directory, the hub cursor, every observation pulled with its resolution, cases, the notice
//! outbox, countermeasure-page tokens and self-reports, daily counters and the audit log.
//!
//! This is where subscriber identities live, and the only place. It is never sent anywhere.
//!
//! Exactly-once processing: [`AgentStore::apply_page`] stores a page's observations (keyed by
//! the hub's content id, so a page fetched twice adds nothing), updates cases and counters and
//! moves the hub cursor in one transaction. A crash before the commit leaves the old cursor:
//! the page is fetched again and applied once.
//!
//! The audit log uses the hub's hash chain ([`kizuna_store::audit::chain_hash`]) and is verified
//! with [`kizuna_store::audit::verify`] against an anchor file beside the database.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use kizuna_model::{LegalBasis, Timestamp};
use kizuna_store::audit::{self, Anchor, Verdict};
use kizuna_store::{AuditEntry, AuditRecord};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::cases::{CaseState, NoticeKind};
use crate::clock::day_of;
use crate::{Error, Result};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subscribers (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    email          TEXT,
    postal_address TEXT,
    language       TEXT NOT NULL,
    updated        INTEGER NOT NULL
);
-- RADIUS User-Name, DHCP hardware address or client id → subscriber.
CREATE TABLE IF NOT EXISTS subscriber_keys (
    key        TEXT PRIMARY KEY,
    subscriber TEXT NOT NULL REFERENCES subscribers(id)
);
CREATE INDEX IF NOT EXISTS subscriber_keys_sub ON subscriber_keys (subscriber);
-- Every observation pulled from the hub, with how it resolved.
CREATE TABLE IF NOT EXISTS observations (
    id         TEXT PRIMARY KEY,      -- the hub's content id
    seq        INTEGER NOT NULL,      -- the hub's sequence number
    received   INTEGER NOT NULL,      -- agent clock, µs
    t          INTEGER NOT NULL,      -- time.source (else time.observation), µs
    ip         TEXT,
    port       INTEGER,
    threat     TEXT NOT NULL,
    outcome    TEXT NOT NULL,         -- 'resolved' or the unresolved reason
    subscriber TEXT,
    session    TEXT,                  -- the session that resolved it
    case_id    INTEGER,
    event      TEXT NOT NULL          -- IntelMQ event JSON as the hub sent it
);
CREATE INDEX IF NOT EXISTS observations_case ON observations (case_id, t);
CREATE TABLE IF NOT EXISTS cases (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber        TEXT NOT NULL REFERENCES subscribers(id),
    threat            TEXT NOT NULL,  -- classification.type/family
    ctype             TEXT NOT NULL,
    family            TEXT NOT NULL,
    state             TEXT NOT NULL,
    legal_basis       TEXT NOT NULL,
    opened            INTEGER NOT NULL,
    updated           INTEGER NOT NULL,
    first_seen        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL,
    hits              INTEGER NOT NULL,
    last_ip           TEXT,
    last_port         INTEGER,
    last_notice_at    INTEGER,
    notices           INTEGER NOT NULL DEFAULT 0,
    escalation_action TEXT,
    closed            INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS cases_open ON cases (subscriber, threat) WHERE closed IS NULL;
-- The outbox: every notice, as rendered, until delivered (e-mail) or exported (letter).
CREATE TABLE IF NOT EXISTS notices (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id      INTEGER NOT NULL REFERENCES cases(id),
    kind         TEXT NOT NULL,
    channel      TEXT NOT NULL,       -- 'email' | 'letter'
    language     TEXT NOT NULL,
    legal_basis  TEXT NOT NULL,
    created      INTEGER NOT NULL,
    recipient    TEXT NOT NULL,       -- e-mail address, or postal address for letters
    recipient_name TEXT NOT NULL,
    subject      TEXT NOT NULL,
    body_text    TEXT NOT NULL,
    body_html    TEXT NOT NULL,
    link         TEXT NOT NULL,
    status       TEXT NOT NULL,       -- 'pending' | 'sent' | 'exported' | 'failed'
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error   TEXT,
    done_at      INTEGER,
    message_id   TEXT,
    batch        TEXT
);
CREATE INDEX IF NOT EXISTS notices_due ON notices (status, channel, next_attempt);
CREATE TABLE IF NOT EXISTS page_tokens (
    hash      BLOB PRIMARY KEY,       -- SHA-256 of the token in the link
    notice_id INTEGER NOT NULL REFERENCES notices(id),
    case_id   INTEGER NOT NULL,
    language  TEXT NOT NULL,
    created   INTEGER NOT NULL,
    expires   INTEGER NOT NULL,
    visits    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS self_reports (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id   INTEGER NOT NULL,
    notice_id INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    note      TEXT NOT NULL
);
-- Counters per UTC day and threat: observed, resolved, unresolved:<reason>, notified, reminded,
-- final, remediated, escalated, self-reported, page-visits.
CREATE TABLE IF NOT EXISTS daily (
    day    TEXT NOT NULL,
    threat TEXT NOT NULL,
    name   TEXT NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (day, threat, name)
) WITHOUT ROWID;
-- Distinct subscribers with a resolved hit per day and threat (the "infected" count).
CREATE TABLE IF NOT EXISTS infected_daily (
    day        TEXT NOT NULL,
    threat     TEXT NOT NULL,
    subscriber TEXT NOT NULL,
    PRIMARY KEY (day, threat, subscriber)
) WITHOUT ROWID;
-- Subscriber base size, snapshot per day.
CREATE TABLE IF NOT EXISTS subscriber_base (day TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"#;

/// A subscriber in the ISP's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The ISP's subscriber id.
    pub id: String,
    /// Name.
    pub name: String,
    /// E-mail address, when the subscriber has one.
    pub email: Option<String>,
    /// Postal address (for letters).
    pub postal_address: Option<String>,
    /// `ja` or `en`.
    pub language: String,
    /// Session keys (RADIUS user names, DHCP hardware addresses or client ids).
    pub keys: Vec<String>,
}

/// A threat as the hub names it: `classification.type` and the malware family (or
/// `classification.identifier`, or `-`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Threat {
    /// `classification.type`.
    pub ctype: String,
    /// Family or identifier.
    pub family: String,
}

impl Threat {
    /// `type/family`, the key of cases and counters.
    pub fn key(&self) -> String {
        format!("{}/{}", self.ctype, self.family)
    }

    /// Parses [`Threat::key`].
    pub fn from_key(k: &str) -> Threat {
        let (a, b) = k.split_once('/').unwrap_or((k, "-"));
        Threat { ctype: a.to_owned(), family: b.to_owned() }
    }
}

/// How one pulled observation resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// To a subscriber in the directory, through a session.
    Resolved {
        /// Subscriber id.
        subscriber: String,
        /// The session that matched (for the case record; never leaves the agent).
        session: String,
    },
    /// Not resolved; the reason (`no-session`, `ambiguous`, `unknown-subscriber`, …).
    Unresolved(String),
}

/// One observation ready to be applied.
#[derive(Debug, Clone)]
pub struct Processed {
    /// Hub content id.
    pub id: String,
    /// Hub sequence number.
    pub seq: u64,
    /// The event's own time.
    pub time: Timestamp,
    /// `source.ip`.
    pub ip: Option<IpAddr>,
    /// `source.port`.
    pub port: Option<u16>,
    /// The threat.
    pub threat: Threat,
    /// Resolution.
    pub outcome: Outcome,
    /// The event JSON as received.
    pub event: String,
}

/// What applying a page did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageOutcome {
    /// Observations new to the agent.
    pub new: u64,
    /// Observations it had already (a page fetched again).
    pub duplicates: u64,
    /// Resolved to a subscriber.
    pub resolved: u64,
    /// Cases opened.
    pub cases_opened: u64,
}

/// A case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Id.
    pub id: i64,
    /// Subscriber id.
    pub subscriber: String,
    /// Threat.
    pub threat: Threat,
    /// State.
    pub state: CaseState,
    /// Legal basis recorded for it.
    pub legal_basis: LegalBasis,
    /// Opened at (agent clock).
    pub opened: Timestamp,
    /// Last change.
    pub updated: Timestamp,
    /// First observation's time.
    pub first_seen: Timestamp,
    /// Newest observation's time.
    pub last_seen: Timestamp,
    /// Observations.
    pub hits: u64,
    /// Address of the newest observation.
    pub last_ip: Option<String>,
    /// Port of the newest observation.
    pub last_port: Option<u16>,
    /// When the newest notice was issued.
    pub last_notice_at: Option<Timestamp>,
    /// Notices issued.
    pub notices: u64,
    /// Escalation action recorded.
    pub escalation_action: Option<String>,
    /// Closed at.
    pub closed: Option<Timestamp>,
}

/// A notice in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Id.
    pub id: i64,
    /// Case.
    pub case_id: i64,
    /// Kind.
    pub kind: NoticeKind,
    /// `email` or `letter`.
    pub channel: String,
    /// `ja` or `en`.
    pub language: String,
    /// Legal basis.
    pub legal_basis: LegalBasis,
    /// Created.
    pub created: Timestamp,
    /// E-mail address or postal address.
    pub recipient: String,
    /// Recipient's name.
    pub recipient_name: String,
    /// Subject.
    pub subject: String,
    /// Plain text.
    pub body_text: String,
    /// HTML.
    pub body_html: String,
    /// Countermeasure-page link.
    pub link: String,
    /// `pending`, `sent`, `exported`, `failed`.
    pub status: String,
    /// Send attempts so far.
    pub attempts: u32,
    /// Next attempt not before.
    pub next_attempt: Timestamp,
    /// Last error.
    pub last_error: Option<String>,
    /// Delivered or exported at.
    pub done_at: Option<Timestamp>,
    /// Letter batch id.
    pub batch: Option<String>,
}

/// A notice to issue together with a state change.
#[derive(Debug, Clone)]
pub struct NewNotice {
    /// Kind.
    pub kind: NoticeKind,
    /// `email` or `letter`.
    pub channel: String,
    /// Language.
    pub language: String,
    /// Recipient (address).
    pub recipient: String,
    /// Recipient's name.
    pub recipient_name: String,
    /// Rendered subject.
    pub subject: String,
    /// Rendered text.
    pub body_text: String,
    /// Rendered HTML.
    pub body_html: String,
    /// The link.
    pub link: String,
    /// SHA-256 of the page token in the link.
    pub token_hash: Vec<u8>,
    /// When the token expires.
    pub token_expires: Timestamp,
}

/// A page token's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Notice it was issued with.
    pub notice_id: i64,
    /// Case.
    pub case_id: i64,
    /// Language.
    pub language: String,
    /// Expiry.
    pub expires: Timestamp,
    /// Visits so far.
    pub visits: u64,
}

/// Counters of one day and threat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayCounts {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Threat key.
    pub threat: String,
    /// Counter name → value.
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Distinct subscribers seen.
    pub infected: u64,
}

/// One observation of a case: its time, source address, source port and IntelMQ event JSON.
pub type CaseObservation = (Timestamp, Option<String>, Option<u16>, String);

/// The agent database.
pub struct AgentStore {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
    memory_anchor: Mutex<Option<Anchor>>,
}

impl std::fmt::Debug for AgentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentStore").field("path", &self.path).finish_non_exhaustive()
    }
}

fn ts(v: i64) -> Timestamp {
    Timestamp::from_micros(v)
}

fn basis(s: &str) -> Result<LegalBasis> {
    s.parse().map_err(|e: kizuna_model::UnknownValue| Error::Store(format!("stored legal basis: {e}")))
}

const CASE_COLS: &str = "id, subscriber, threat, state, legal_basis, opened, updated, first_seen, last_seen, hits, \
                         last_ip, last_port, last_notice_at, notices, escalation_action, closed";

fn case_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Case, String, String)> {
    let state: String = r.get(3)?;
    let lb: String = r.get(4)?;
    let threat: String = r.get(2)?;
    Ok((
        Case {
            id: r.get(0)?,
            subscriber: r.get(1)?,
            threat: Threat::from_key(&threat),
            state: CaseState::New,
            legal_basis: LegalBasis::default(),
            opened: ts(r.get(5)?),
            updated: ts(r.get(6)?),
            first_seen: ts(r.get(7)?),
            last_seen: ts(r.get(8)?),
            hits: r.get::<_, i64>(9)?.max(0) as u64,
            last_ip: r.get(10)?,
            last_port: r.get::<_, Option<i64>>(11)?.and_then(|p| u16::try_from(p).ok()),
            last_notice_at: r.get::<_, Option<i64>>(12)?.map(ts),
            notices: r.get::<_, i64>(13)?.max(0) as u64,
            escalation_action: r.get(14)?,
            closed: r.get::<_, Option<i64>>(15)?.map(ts),
        },
        state,
        lb,
    ))
}

fn finish_case((mut c, state, lb): (Case, String, String)) -> Result<Case> {
    c.state =
        CaseState::parse(&state).ok_or_else(|| Error::Store(format!("case {}: unknown state {state:?}", c.id)))?;
    c.legal_basis = basis(&lb)?;
    Ok(c)
}

const NOTICE_COLS: &str = "id, case_id, kind, channel, language, legal_basis, created, recipient, recipient_name, \
                           subject, body_text, body_html, link, status, attempts, next_attempt, last_error, done_at, batch";

fn notice_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Notice, String, String)> {
    let kind: String = r.get(2)?;
    let lb: String = r.get(5)?;
    Ok((
        Notice {
            id: r.get(0)?,
            case_id: r.get(1)?,
            kind: NoticeKind::First,
            channel: r.get(3)?,
            language: r.get(4)?,
            legal_basis: LegalBasis::default(),
            created: ts(r.get(6)?),
            recipient: r.get(7)?,
            recipient_name: r.get(8)?,
            subject: r.get(9)?,
            body_text: r.get(10)?,
            body_html: r.get(11)?,
            link: r.get(12)?,
            status: r.get(13)?,
            attempts: u32::try_from(r.get::<_, i64>(14)?).unwrap_or(0),
            next_attempt: ts(r.get(15)?),
            last_error: r.get(16)?,
            done_at: r.get::<_, Option<i64>>(17)?.map(ts),
            batch: r.get(18)?,
        },
        kind,
        lb,
    ))
}

fn finish_notice((mut n, kind, lb): (Notice, String, String)) -> Result<Notice> {
    n.kind = NoticeKind::parse(&kind).ok_or_else(|| Error::Store(format!("notice {}: unknown kind {kind:?}", n.id)))?;
    n.legal_basis = basis(&lb)?;
    Ok(n)
}

/// Adds to a daily counter inside a transaction.
fn count(tx: &Connection, day: &str, threat: &str, name: &str, n: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO daily (day, threat, name, n) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (day, threat, name) DO UPDATE SET n = n + excluded.n",
    )?
    .execute(params![day, threat, name, n])?;
    Ok(())
}

impl AgentStore {
    /// Opens (creating) the database at `path`: WAL, `synchronous=FULL`.
    pub fn open(path: &Path) -> Result<AgentStore> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(crate::io_err(dir))?;
        }
        let conn = Connection::open(path)?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Store(format!("cannot enable WAL (journal_mode is {mode})")));
        }
        Self::init(conn, Some(path.to_path_buf()))
    }

    /// A private in-memory database (tests, previews).
    pub fn open_in_memory() -> Result<AgentStore> {
        Self::init(Connection::open_in_memory()?, None)
    }

    fn init(conn: Connection, path: Option<PathBuf>) -> Result<AgentStore> {
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(crate::consent::SCHEMA)?;
        Ok(AgentStore { conn: Mutex::new(conn), path, memory_anchor: Mutex::new(None) })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in an immediate transaction and commits it; then updates the audit anchor.
    pub(crate) fn tx<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut c = self.lock();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        let anchor = last_audit(&tx)?;
        tx.commit()?;
        if let Some(a) = anchor {
            self.write_anchor(a)?;
        }
        Ok(out)
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(&self.lock())
    }

    // ----- hub cursor -------------------------------------------------------------------------

    /// The hub cursor to continue from (empty: from the start).
    pub fn cursor(&self) -> Result<String> {
        self.read(|c| {
            Ok(c.query_row("SELECT v FROM meta WHERE k = 'hub.cursor'", [], |r| r.get(0))
                .optional()?
                .unwrap_or_default())
        })
    }

    // ----- subscribers ------------------------------------------------------------------------

    /// Inserts or replaces subscribers (their keys are replaced too). Returns how many.
    pub fn upsert_subscribers(&self, subs: &[Subscriber], now: Timestamp, actor: &str) -> Result<usize> {
        self.tx(|tx| {
            for s in subs {
                tx.execute(
                    "INSERT INTO subscribers (id, name, email, postal_address, language, updated) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                     email = excluded.email, postal_address = excluded.postal_address, \
                     language = excluded.language, updated = excluded.updated",
                    params![s.id, s.name, s.email, s.postal_address, s.language, now.as_micros()],
                )?;
                tx.execute("DELETE FROM subscriber_keys WHERE subscriber = ?1", params![s.id])?;
                for k in &s.keys {
                    tx.execute(
                        "INSERT INTO subscriber_keys (key, subscriber) VALUES (?1, ?2) \
                         ON CONFLICT (key) DO UPDATE SET subscriber = excluded.subscriber",
                        params![k, s.id],
                    )?;
                }
            }
            append_audit(
                tx,
                &AuditRecord {
                    at: now,
                    actor: actor.into(),
                    action: "subscribers.import".into(),
                    subject: "directory".into(),
                    detail: serde_json::json!({ "subscribers": subs.len() }).to_string(),
                },
            )?;
            Ok(subs.len())
        })
    }

    /// The subscriber a session key belongs to.
    pub fn subscriber_for_key(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| {
            Ok(c.prepare_cached("SELECT subscriber FROM subscriber_keys WHERE key = ?1")?
                .query_row(params![key], |r| r.get(0))
                .optional()?)
        })
    }

    /// A subscriber by id.
    pub fn subscriber(&self, id: &str) -> Result<Option<Subscriber>> {
        self.read(|c| {
            let s = c
                .query_row(
                    "SELECT id, name, email, postal_address, language FROM subscribers WHERE id = ?1",
                    params![id],
                    |r| {
                        Ok(Subscriber {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            email: r.get(2)?,
                            postal_address: r.get(3)?,
                            language: r.get(4)?,
                            keys: Vec::new(),
                        })
                    },
                )
                .optional()?;
            let Some(mut s) = s else { return Ok(None) };
            let mut st = c.prepare_cached("SELECT key FROM subscriber_keys WHERE subscriber = ?1 ORDER BY key")?;
            s.keys = st.query_map(params![id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            Ok(Some(s))
        })
    }

    /// Number of subscribers in the directory.
    pub fn subscriber_count(&self) -> Result<u64> {
        self.read(|c| Ok(c.query_row("SELECT count(*) FROM subscribers", [], |r| r.get::<_, i64>(0))?.max(0) as u64))
    }

    // ----- pulled observations -----------------------------------------------------------------

    /// Applies one page of pulled observations and moves the cursor to `next_cursor`, all in one
    /// transaction. `legal_basis_for` gives the legal basis for a new case's threat type.
    pub fn apply_page(
        &self,
        next_cursor: &str,
        items: &[Processed],
        now: Timestamp,
        legal_basis_for: &dyn Fn(&str) -> LegalBasis,
    ) -> Result<PageOutcome> {
        self.tx(|tx| {
            let mut out = PageOutcome::default();
            for p in items {
                let threat = p.threat.key();
                let (outcome, subscriber, session) = match &p.outcome {
                    Outcome::Resolved { subscriber, session } => ("resolved", Some(subscriber), Some(session)),
                    Outcome::Unresolved(r) => (r.as_str(), None, None),
                };
                let inserted = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO observations (id, seq, received, t, ip, port, threat, outcome, \
                         subscriber, session, event) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    )?
                    .execute(params![
                        p.id,
                        i64::try_from(p.seq).unwrap_or(i64::MAX),
                        now.as_micros(),
                        p.time.as_micros(),
                        p.ip.map(|i| i.to_string()),
                        p.port,
                        threat,
                        outcome,
                        subscriber,
                        session,
                        p.event
                    ])?;
                if inserted == 0 {
                    out.duplicates += 1;
                    continue;
                }
                out.new += 1;
                let day = day_of(p.time);
                count(tx, &day, &threat, "observed", 1)?;
                let Some(sub) = subscriber else {
                    count(tx, &day, &threat, &format!("unresolved:{outcome}"), 1)?;
                    continue;
                };
                out.resolved += 1;
                count(tx, &day, &threat, "resolved", 1)?;
                tx.prepare_cached("INSERT OR IGNORE INTO infected_daily (day, threat, subscriber) VALUES (?1, ?2, ?3)")?
                    .execute(params![day, threat, sub])?;
                let open: Option<(i64, i64)> = tx
                    .prepare_cached("SELECT id, last_seen FROM cases WHERE subscriber = ?1 AND threat = ?2 AND closed IS NULL")?
                    .query_row(params![sub, threat], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let ip = p.ip.map(|i| i.to_string());
                let case_id = match open {
                    Some((id, last_seen)) => {
                        if p.time.as_micros() >= last_seen {
                            tx.execute(
                                "UPDATE cases SET hits = hits + 1, last_seen = ?2, last_ip = ?3, last_port = ?4 \
                                 WHERE id = ?1",
                                params![id, p.time.as_micros(), ip, p.port],
                            )?;
                        } else {
                            tx.execute(
                                "UPDATE cases SET hits = hits + 1, first_seen = min(first_seen, ?2) WHERE id = ?1",
                                params![id, p.time.as_micros()],
                            )?;
                        }
                        id
                    }
                    None => {
                        let lb = legal_basis_for(&p.threat.ctype);
                        tx.execute(
                            "INSERT INTO cases (subscriber, threat, ctype, family, state, legal_basis, opened, updated, \
                             first_seen, last_seen, hits, last_ip, last_port) \
                             VALUES (?1, ?2, ?3, ?4, 'new', ?5, ?6, ?6, ?7, ?7, 1, ?8, ?9)",
                            params![
                                sub,
                                threat,
                                p.threat.ctype,
                                p.threat.family,
                                lb.as_str(),
                                now.as_micros(),
                                p.time.as_micros(),
                                ip,
                                p.port
                            ],
                        )?;
                        let id = tx.last_insert_rowid();
                        out.cases_opened += 1;
                        count(tx, &day_of(now), &threat, "opened", 1)?;
                        append_audit(
                            tx,
                            &AuditRecord {
                                at: now,
                                actor: "agent".into(),
                                action: "case.open".into(),
                                subject: format!("case:{id}"),
                                detail: serde_json::json!({
                                    "subscriber": sub, "threat": threat, "state": "new",
                                    "legal_basis": lb.as_str(), "observation": p.id,
                                })
                                .to_string(),
                            },
                        )?;
                        id
                    }
                };
                tx.execute("UPDATE observations SET case_id = ?2 WHERE id = ?1", params![p.id, case_id])?;
            }
            tx.execute(
                "INSERT INTO meta (k, v) VALUES ('hub.cursor', ?1) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                params![next_cursor],
            )?;
            Ok(out)
        })
    }

    /// Number of observations stored.
    pub fn observation_count(&self) -> Result<u64> {
        self.read(|c| Ok(c.query_row("SELECT count(*) FROM observations", [], |r| r.get::<_, i64>(0))?.max(0) as u64))
    }

    /// The hub ids of every stored observation (tests, reconciliation).
    pub fn observation_ids(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT id FROM observations ORDER BY seq")?;
            Ok(st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// A case's observations, newest first: (time, ip, port, event JSON).
    pub fn case_observations(&self, case_id: i64, limit: usize) -> Result<Vec<CaseObservation>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT t, ip, port, event FROM observations WHERE case_id = ?1 ORDER BY t DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![case_id, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok((
                    ts(r.get(0)?),
                    r.get(1)?,
                    r.get::<_, Option<i64>>(2)?.and_then(|p| u16::try_from(p).ok()),
                    r.get(3)?,
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    // ----- cases -------------------------------------------------------------------------------

    /// A case by id.
    pub fn case(&self, id: i64) -> Result<Option<Case>> {
        self.read(|c| {
            c.query_row(&format!("SELECT {CASE_COLS} FROM cases WHERE id = ?1"), params![id], case_from_row)
                .optional()?
                .map(finish_case)
                .transpose()
        })
    }

    /// Cases, newest first; only open ones unless `all`.
    pub fn cases(&self, all: bool, limit: usize) -> Result<Vec<Case>> {
        self.read(|c| {
            let filter = if all { "" } else { "WHERE closed IS NULL" };
            let mut st = c.prepare(&format!("SELECT {CASE_COLS} FROM cases {filter} ORDER BY id DESC LIMIT ?1"))?;
            let rows = st.query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], case_from_row)?;
            rows.map(|r| finish_case(r?)).collect()
        })
    }

    /// Applies a state change of a case (and issues `notice`, if any) in one transaction, with
    /// its audit entry. `expected` guards against a concurrent change: when the case is no longer
    /// in that state nothing happens and `Ok(None)` is returned. Returns the notice id.
    #[allow(clippy::too_many_arguments)]
    pub fn transition(
        &self,
        case_id: i64,
        expected: CaseState,
        to: CaseState,
        notice: Option<&NewNotice>,
        escalation_action: Option<&str>,
        legal_basis: LegalBasis,
        now: Timestamp,
    ) -> Result<Option<Option<i64>>> {
        self.tx(|tx| {
            let row: Option<(String, String)> = tx
                .query_row("SELECT state, threat FROM cases WHERE id = ?1", params![case_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let Some((state, threat)) = row else { return Err(Error::NotFound(format!("case {case_id}"))) };
            if state != expected.as_str() {
                return Ok(None);
            }
            let today = day_of(now);
            let mut notice_id = None;
            if let Some(n) = notice {
                tx.execute(
                    "INSERT INTO notices (case_id, kind, channel, language, legal_basis, created, recipient, \
                     recipient_name, subject, body_text, body_html, link, status, next_attempt) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'pending', ?6)",
                    params![
                        case_id,
                        n.kind.as_str(),
                        n.channel,
                        n.language,
                        legal_basis.as_str(),
                        now.as_micros(),
                        n.recipient,
                        n.recipient_name,
                        n.subject,
                        n.body_text,
                        n.body_html,
                        n.link
                    ],
                )?;
                let id = tx.last_insert_rowid();
                notice_id = Some(id);
                tx.execute(
                    "INSERT INTO page_tokens (hash, notice_id, case_id, language, created, expires) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![n.token_hash, id, case_id, n.language, now.as_micros(), n.token_expires.as_micros()],
                )?;
                tx.execute(
                    "UPDATE cases SET last_notice_at = ?2, notices = notices + 1 WHERE id = ?1",
                    params![case_id, now.as_micros()],
                )?;
                let counter = match n.kind {
                    NoticeKind::First => "notified",
                    NoticeKind::Reminder => "reminded",
                    NoticeKind::Final => "final",
                    NoticeKind::Escalation => "escalation-notice",
                };
                count(tx, &today, &threat, counter, 1)?;
            }
            let closed = to.is_closed().then_some(now.as_micros());
            tx.execute(
                "UPDATE cases SET state = ?2, updated = ?3, closed = coalesce(?4, closed), \
                 escalation_action = coalesce(?5, escalation_action) WHERE id = ?1",
                params![case_id, to.as_str(), now.as_micros(), closed, escalation_action],
            )?;
            match to {
                CaseState::Remediated => count(tx, &today, &threat, "remediated", 1)?,
                CaseState::Escalated => count(tx, &today, &threat, "escalated", 1)?,
                _ => {}
            }
            append_audit(
                tx,
                &AuditRecord {
                    at: now,
                    actor: "agent".into(),
                    action: "case.state".into(),
                    subject: format!("case:{case_id}"),
                    detail: serde_json::json!({
                        "from": expected.as_str(),
                        "to": to.as_str(),
                        "legal_basis": legal_basis.as_str(),
                        "notice": notice_id,
                        "notice_kind": notice.map(|n| n.kind.as_str()),
                        "channel": notice.map(|n| n.channel.as_str()),
                        "escalation_action": escalation_action,
                    })
                    .to_string(),
                },
            )?;
            Ok(Some(notice_id))
        })
    }

    // ----- outbox ------------------------------------------------------------------------------

    /// A notice by id.
    pub fn notice(&self, id: i64) -> Result<Option<Notice>> {
        self.read(|c| {
            c.query_row(&format!("SELECT {NOTICE_COLS} FROM notices WHERE id = ?1"), params![id], notice_from_row)
                .optional()?
                .map(finish_notice)
                .transpose()
        })
    }

    /// Notices of a case, oldest first.
    pub fn notices_of_case(&self, case_id: i64) -> Result<Vec<Notice>> {
        self.query_notices("WHERE case_id = ?1 ORDER BY id", params![case_id])
    }

    /// Notices by status (and channel), oldest first.
    pub fn notices_by_status(&self, status: &str, channel: Option<&str>) -> Result<Vec<Notice>> {
        match channel {
            Some(ch) => self.query_notices("WHERE status = ?1 AND channel = ?2 ORDER BY id", params![status, ch]),
            None => self.query_notices("WHERE status = ?1 ORDER BY id", params![status]),
        }
    }

    /// E-mail notices due for a (re)try at `now`.
    pub fn due_emails(&self, now: Timestamp, limit: usize) -> Result<Vec<Notice>> {
        self.query_notices(
            "WHERE status = 'pending' AND channel = 'email' AND next_attempt <= ?1 ORDER BY next_attempt, id LIMIT ?2",
            params![now.as_micros(), i64::try_from(limit).unwrap_or(i64::MAX)],
        )
    }

    fn query_notices(&self, tail: &str, p: impl rusqlite::Params) -> Result<Vec<Notice>> {
        self.read(|c| {
            let mut st = c.prepare(&format!("SELECT {NOTICE_COLS} FROM notices {tail}"))?;
            let rows = st.query_map(p, notice_from_row)?;
            rows.map(|r| finish_notice(r?)).collect()
        })
    }

    /// Records a delivered e-mail.
    pub fn mark_sent(&self, id: i64, message_id: &str, now: Timestamp) -> Result<()> {
        self.tx(|tx| {
            tx.execute(
                "UPDATE notices SET status = 'sent', attempts = attempts + 1, done_at = ?2, message_id = ?3, \
                 last_error = NULL WHERE id = ?1",
                params![id, now.as_micros(), message_id],
            )?;
            append_audit(
                tx,
                &AuditRecord {
                    at: now,
                    actor: "agent".into(),
                    action: "notice.sent".into(),
                    subject: format!("notice:{id}"),
                    detail: serde_json::json!({ "message_id": message_id }).to_string(),
                },
            )
        })
    }

    /// Records a failed attempt: retried at `retry_at`, or, with `None`, given up on. A notice
    /// given up on becomes a letter when the subscriber has a postal address (`letter_to`), else
    /// it stays `failed` in the outbox to be reported and retried by hand.
    pub fn mark_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<Timestamp>,
        letter_to: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        self.tx(|tx| {
            let (status, channel, action) = match (retry_at, letter_to) {
                (Some(_), _) => ("pending", None, "notice.retry"),
                (None, Some(_)) => ("pending", Some("letter"), "notice.fallback-letter"),
                (None, None) => ("failed", None, "notice.failed"),
            };
            tx.execute(
                "UPDATE notices SET status = ?2, attempts = attempts + 1, last_error = ?3, \
                 next_attempt = coalesce(?4, next_attempt), channel = coalesce(?5, channel), \
                 recipient = coalesce(?6, recipient) WHERE id = ?1",
                params![id, status, error, retry_at.map(|t| t.as_micros()), channel, letter_to],
            )?;
            append_audit(
                tx,
                &AuditRecord {
                    at: now,
                    actor: "agent".into(),
                    action: action.into(),
                    subject: format!("notice:{id}"),
                    detail: serde_json::json!({ "error": error, "retry_at": retry_at.map(|t| t.to_rfc3339()) })
                        .to_string(),
                },
            )
        })
    }

    /// Puts failed notices back in the queue (`kizuna isp notices retry`). Returns how many.
    pub fn requeue_failed(&self, now: Timestamp) -> Result<usize> {
        self.tx(|tx| {
            let n = tx.execute(
                "UPDATE notices SET status = 'pending', attempts = 0, next_attempt = ?1 WHERE status = 'failed'",
                params![now.as_micros()],
            )?;
            append_audit(
                tx,
                &AuditRecord {
                    at: now,
                    actor: "cli".into(),
                    action: "notice.requeue".into(),
                    subject: "outbox".into(),
                    detail: serde_json::json!({ "notices": n }).to_string(),
                },
            )?;
            Ok(n)
        })
    }

    /// Marks letters as exported in batch `batch`.
    pub fn mark_exported(&self, ids: &[i64], batch: &str, now: Timestamp) -> Result<()> {
        self.tx(|tx| {
            for id in ids {
                tx.execute(
                    "UPDATE notices SET status = 'exported', done_at = ?2, batch = ?3, attempts = attempts + 1 \
                     WHERE id = ?1 AND status = 'pending'",
                    params![id, now.as_micros(), batch],
                )?;
            }
            append_audit(
                tx,
                &AuditRecord {
                    at: now,
                    actor: "agent".into(),
                    action: "letters.export".into(),
                    subject: format!("batch:{batch}"),
                    detail: serde_json::json!({ "notices": ids }).to_string(),
                },
            )
        })
    }

    // ----- countermeasure page -----------------------------------------------------------------

    /// The record of a page token (by its hash), if it exists.
    pub fn token(&self, hash: &[u8]) -> Result<Option<TokenRecord>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT notice_id, case_id, language, expires, visits FROM page_tokens WHERE hash = ?1",
            )?
            .query_row(params![hash], |r| {
                Ok(TokenRecord {
                    notice_id: r.get(0)?,
                    case_id: r.get(1)?,
                    language: r.get(2)?,
                    expires: ts(r.get(3)?),
                    visits: r.get::<_, i64>(4)?.max(0) as u64,
                })
            })
            .optional()?)
        })
    }

    /// Counts a page visit.
    pub fn record_visit(&self, hash: &[u8], threat: &str, now: Timestamp) -> Result<()> {
        self.tx(|tx| {
            tx.execute("UPDATE page_tokens SET visits = visits + 1 WHERE hash = ?1", params![hash])?;
            tx.execute(
                "INSERT INTO page_visits (case_id, notice_id, at) SELECT case_id, notice_id, ?2 FROM page_tokens WHERE hash = ?1",
                params![hash, now.as_micros()],
            )?;
            count(tx, &day_of(now), threat, "page-visits", 1)
        })
    }

    /// Records "I have cleaned my device".
    pub fn record_self_report(&self, t: &TokenRecord, threat: &str, note: &str, now: Timestamp) -> Result<i64> {
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO self_reports (case_id, notice_id, at, note) VALUES (?1, ?2, ?3, ?4)",
                params![t.case_id, t.notice_id, now.as_micros(), note],
            )?;
            let id = tx.last_insert_rowid();
            count(tx, &day_of(now), threat, "self-reported", 1)?;
            append_audit(
                tx,
                &AuditRecord {
                    at: now,
                    actor: "subscriber".into(),
                    action: "case.self-report".into(),
                    subject: format!("case:{}", t.case_id),
                    detail: serde_json::json!({ "notice": t.notice_id, "report": id }).to_string(),
                },
            )?;
            Ok(id)
        })
    }

    /// Self-reports of a case: (time, note).
    pub fn self_reports(&self, case_id: i64) -> Result<Vec<(Timestamp, String)>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT at, note FROM self_reports WHERE case_id = ?1 ORDER BY id")?;
            let rows = st.query_map(params![case_id], |r| Ok((ts(r.get(0)?), r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    // ----- statistics --------------------------------------------------------------------------

    /// Records today's subscriber base size.
    pub fn snapshot_subscriber_base(&self, now: Timestamp) -> Result<u64> {
        let n = self.subscriber_count()?;
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO subscriber_base (day, n) VALUES (?1, ?2) ON CONFLICT (day) DO UPDATE SET n = excluded.n",
                params![day_of(now), i64::try_from(n).unwrap_or(i64::MAX)],
            )?;
            Ok(n)
        })
    }

    /// The subscriber base size recorded for a day (the latest earlier snapshot if none that day).
    pub fn subscriber_base(&self, day: &str) -> Result<Option<u64>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT n FROM subscriber_base WHERE day <= ?1 ORDER BY day DESC LIMIT 1",
                params![day],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(|n| n.max(0) as u64))
        })
    }

    /// Counters of the days `from..=to` (`YYYY-MM-DD`), by day and threat.
    pub fn daily_counts(&self, from: &str, to: &str) -> Result<Vec<DayCounts>> {
        self.read(|c| {
            let mut out: std::collections::BTreeMap<(String, String), DayCounts> = Default::default();
            let mut st = c.prepare(
                "SELECT day, threat, name, n FROM daily WHERE day >= ?1 AND day <= ?2 ORDER BY day, threat, name",
            )?;
            let rows = st.query_map(params![from, to], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
            })?;
            for row in rows {
                let (day, threat, name, n) = row?;
                let e = out.entry((day.clone(), threat.clone())).or_insert_with(|| DayCounts {
                    day,
                    threat,
                    ..Default::default()
                });
                e.counts.insert(name, n.max(0) as u64);
            }
            let mut st = c.prepare(
                "SELECT day, threat, count(*) FROM infected_daily WHERE day >= ?1 AND day <= ?2 GROUP BY day, threat",
            )?;
            let rows = st.query_map(params![from, to], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
            })?;
            for row in rows {
                let (day, threat, n) = row?;
                let e = out.entry((day.clone(), threat.clone())).or_insert_with(|| DayCounts {
                    day,
                    threat,
                    ..Default::default()
                });
                e.infected = n.max(0) as u64;
            }
            Ok(out.into_values().collect())
        })
    }

    /// Cases remediated on the days `from..=to` (`YYYY-MM-DD`, UTC): (day, threat, whole days
    /// from the case's first notice to its remediation). Cases without a first notice are left
    /// out (remediation always follows one).
    pub fn remediation_times(&self, from: &str, to: &str) -> Result<Vec<(String, String, u32)>> {
        let day_us = |d: &str| -> Result<i64> {
            let d = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|e| Error::Input(format!("day {d:?}: {e}")))?;
            Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_micros()).unwrap_or(0))
        };
        let (lo, hi) = (day_us(from)?, day_us(to)? + crate::clock::days(1));
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT c.closed, c.threat, (SELECT min(n.created) FROM notices n \
                 WHERE n.case_id = c.id AND n.kind = 'first') FROM cases c \
                 WHERE c.state = 'remediated' AND c.closed >= ?1 AND c.closed < ?2 ORDER BY c.closed",
            )?;
            let rows = st.query_map(params![lo, hi], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<i64>>(2)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (closed, threat, first) = row?;
                let Some(first) = first else { continue };
                let days = u32::try_from((closed - first).max(0) / crate::clock::days(1)).unwrap_or(u32::MAX);
                out.push((day_of(ts(closed)), threat, days));
            }
            Ok(out)
        })
    }

    // ----- audit -------------------------------------------------------------------------------

    /// Appends an audit record on its own.
    pub fn audit(&self, record: &AuditRecord) -> Result<()> {
        self.tx(|tx| append_audit(tx, record))
    }

    /// Audit entries after `after`, at most `limit`.
    pub fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit WHERE seq > ?1 \
                 ORDER BY seq LIMIT ?2",
            )?;
            let rows = st.query_map(
                params![i64::try_from(after).unwrap_or(i64::MAX), i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        AuditRecord {
                            at: ts(r.get(1)?),
                            actor: r.get(2)?,
                            action: r.get(3)?,
                            subject: r.get(4)?,
                            detail: r.get(5)?,
                        },
                        r.get::<_, Vec<u8>>(6)?,
                        r.get::<_, Vec<u8>>(7)?,
                    ))
                },
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, record, prev, hash) = row?;
                let bad = |what: &str| Error::Store(format!("audit entry {seq}: {what} is not 32 bytes"));
                out.push(AuditEntry {
                    seq: u64::try_from(seq).map_err(|_| Error::Store("negative audit seq".into()))?,
                    record,
                    prev_hash: prev.as_slice().try_into().map_err(|_| bad("prev_hash"))?,
                    hash: hash.as_slice().try_into().map_err(|_| bad("hash"))?,
                });
            }
            Ok(out)
        })
    }

    /// Verifies the audit chain against the anchor beside the database.
    pub fn verify_audit(&self) -> Result<Verdict> {
        let mut v = audit::Verifier::new(self.audit_anchor());
        let mut after = 0;
        loop {
            let page = self.audit_entries(after, audit::VERIFY_PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in &page {
                if let Some(broken) = v.push(e) {
                    return Ok(broken);
                }
            }
        }
        Ok(v.finish())
    }

    fn anchor_path(&self) -> Option<PathBuf> {
        self.path.as_ref().map(|p| {
            let mut s = p.clone().into_os_string();
            s.push(".audit-anchor");
            PathBuf::from(s)
        })
    }

    /// The newest audit entry as recorded outside the database.
    pub fn audit_anchor(&self) -> Option<Anchor> {
        match self.anchor_path() {
            Some(p) => std::fs::read_to_string(p).ok().and_then(|s| Anchor::decode(&s)),
            None => *self.memory_anchor.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    fn write_anchor(&self, a: Anchor) -> Result<()> {
        let Some(path) = self.anchor_path() else {
            *self.memory_anchor.lock().unwrap_or_else(|p| p.into_inner()) = Some(a);
            return Ok(());
        };
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(crate::io_err(&tmp))?;
            f.write_all(format!("{}\n", a.encode()).as_bytes()).map_err(crate::io_err(&tmp))?;
            f.sync_all().map_err(crate::io_err(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(crate::io_err(&path))
    }
}

fn last_audit(tx: &Connection) -> Result<Option<Anchor>> {
    let last: Option<(i64, Vec<u8>)> = tx
        .query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(last.and_then(|(s, h)| Some(Anchor { seq: u64::try_from(s).ok()?, hash: h.as_slice().try_into().ok()? })))
}

/// Appends an audit entry inside a transaction, chained to the previous one.
pub(crate) fn append_audit(tx: &Connection, record: &AuditRecord) -> Result<()> {
    let (seq, prev) = match last_audit(tx)? {
        None => (1u64, [0u8; 32]),
        Some(a) => (a.seq + 1, a.hash),
    };
    let hash = audit::chain_hash(seq, &prev, record);
    tx.prepare_cached(
        "INSERT INTO audit (seq, at, actor, action, subject, detail, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        i64::try_from(seq).unwrap_or(i64::MAX),
        record.at.as_micros(),
        record.actor,
        record.action,
        record.subject,
        record.detail,
        &prev[..],
        &hash[..]
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, key: &str) -> Subscriber {
        Subscriber {
            id: id.into(),
            name: format!("Name {id}"),
            email: Some(format!("{id}@example.jp")),
            postal_address: None,
            language: "ja".into(),
            keys: vec![key.into()],
        }
    }

    fn processed(id: &str, seq: u64, sub: Option<&str>) -> Processed {
        Processed {
            id: id.into(),
            seq,
            time: Timestamp::from_secs(1_772_668_800 + seq as i64),
            ip: Some("192.0.2.1".parse().expect("ip")),
            port: Some(40000),
            threat: Threat { ctype: "infected-system".into(), family: "mirai".into() },
            outcome: match sub {
                Some(s) => Outcome::Resolved { subscriber: s.into(), session: "sess".into() },
                None => Outcome::Unresolved("no-session".into()),
            },
            event: "{}".into(),
        }
    }

    #[test]
    fn pages_apply_once_and_open_one_case_per_subscriber_and_threat() {
        let s = AgentStore::open_in_memory().expect("store");
        let now = Timestamp::from_secs(1_772_700_000);
        s.upsert_subscribers(&[sub("S1", "user1"), sub("S2", "user2")], now, "test").expect("subs");
        assert_eq!(s.subscriber_for_key("user2").expect("key"), Some("S2".into()));
        let lb = |_: &str| LegalBasis::LegitimateBusiness;
        let page = [processed("a", 1, Some("S1")), processed("b", 2, Some("S1")), processed("c", 3, None)];
        let o = s.apply_page("3", &page, now, &lb).expect("apply");
        assert_eq!(o, PageOutcome { new: 3, duplicates: 0, resolved: 2, cases_opened: 1 });
        let again = s.apply_page("3", &page, now, &lb).expect("apply again");
        assert_eq!(again, PageOutcome { new: 0, duplicates: 3, resolved: 0, cases_opened: 0 });
        assert_eq!(s.cursor().expect("cursor"), "3");
        let cases = s.cases(false, 10).expect("cases");
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].hits, 2);
        assert_eq!(cases[0].state, CaseState::New);
        let counts = s.daily_counts("2026-01-01", "2026-12-31").expect("counts");
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].counts["observed"], 3);
        assert_eq!(counts[0].counts["resolved"], 2);
        assert_eq!(counts[0].counts["unresolved:no-session"], 1);
        assert_eq!(counts[0].infected, 1);
        assert_eq!(s.verify_audit().expect("verify"), Verdict::Intact { entries: 2 });
    }

    #[test]
    fn audit_chain_detects_tampering() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a.sqlite");
        {
            let s = AgentStore::open(&path).expect("store");
            for i in 0..3 {
                s.audit(&AuditRecord {
                    at: Timestamp::from_secs(i),
                    actor: "t".into(),
                    action: "x".into(),
                    subject: "y".into(),
                    detail: "{}".into(),
                })
                .expect("audit");
            }
            assert_eq!(s.verify_audit().expect("verify"), Verdict::Intact { entries: 3 });
        }
        let c = Connection::open(&path).expect("open");
        c.execute_batch("DROP TRIGGER audit_no_update; UPDATE audit SET detail = '{\"x\":1}' WHERE seq = 2;")
            .expect("tamper");
        drop(c);
        let s = AgentStore::open(&path).expect("store");
        assert!(matches!(s.verify_audit().expect("verify"), Verdict::Broken { seq: 2, .. }));
    }
}
