//! SQLite backend (see the crate docs): one database file in the data directory.
//!
//! # Durability
//! The database runs in WAL mode with `synchronous=FULL`: every commit fsyncs the WAL before
//! [`Store::commit_batch`] returns, so an acknowledged batch survives a crash of the process
//! *and* of the machine. (`synchronous=NORMAL` would only fsync at checkpoints: a power loss
//! could lose the last acknowledged commits, which breaks "acknowledged only after it is
//! durable".) Batches are large, so one fsync per batch costs little per observation.
//!
//! # Concurrency
//! One writer connection behind a mutex (SQLite has one writer at a time anyway) and a pool of
//! reader connections: readers see the last committed state (WAL snapshot isolation) and are
//! never blocked by a commit in progress. Every read method runs in one read transaction, hence
//! one consistent snapshot. [`SqliteStore::open_in_memory`] uses one connection for both.
//!
//! # Layout and hot path
//! `observations` holds the rows in commit order (`seq INTEGER PRIMARY KEY AUTOINCREMENT`: strictly
//! increasing and never reused, even when retention deletes the newest rows) and has no
//! secondary index. Lookups go through separate `WITHOUT ROWID` tables whose keys keep new
//! entries together, because an index keyed by random content ids rewrites most of its pages in
//! every batch (measured: 3.4 KB written per observation, against about 1 KB now):
//!
//! | table | key | for |
//! |---|---|---|
//! | `obs_keys` | time.source, id | deduplication (the id covers time.source, so this is unique exactly when the id is) |
//! | `obs_ids` | seq block, id | [`Store::observation`]: probes blocks of 2^16 sequence numbers, newest first |
//! | `obs_ips` | seq block, source.ip, seq | [`Store::by_source_ip`], likewise |
//! | `obs_members` | member, seq | [`Store::page`] |
//! | `obs_times` | feed, retention time, seq | [`Store::expire`] |
//!
//! [`Store::commit_batch`] encodes every body ([`crate::codec`]; [`Store::commit_encoded`] takes
//! them encoded already, by the pipeline's encoder thread) and drops repeats inside the batch
//! before taking the writer lock, then in one `BEGIN IMMEDIATE` transaction fills each
//! table with cached multi-row `INSERT OR IGNORE` statements (256 rows each) in key order, so
//! consecutive rows land on the B-tree page the cursor is already on. It first inserts the
//! deduplication keys assuming nothing is stored yet; if some were (re-ingest), it rolls back
//! and starts over without them. Totals are kept in a `counters` table updated once per batch,
//! so [`Store::totals`] never scans.
//!
//! A background thread runs passive WAL checkpoints every 200 ms, so commits do not stall on
//! copying the WAL back into the database file.
//!
//! # Audit anchor
//! After each audit append commits, the newest entry's [`Anchor`] is written atomically (temp
//! file, fsync, rename) to `<database path>.audit-anchor`, outside the database.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use kizuna_model::{IpNet, MemberId, ObservationId, Rejected, Routed, Timestamp};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::audit::{self, Anchor};
use crate::{
    AuditEntry, AuditRecord, Batch, BatchOutcome, Cursor, Member, MemberSpec, Page, QuarantineEntry, Result, Retention,
    Store, StoreError, StoredObservation, TokenHash, TokenInfo, Totals, codec,
};

#[path = "sqlite_indicators.rs"]
mod indicators;

#[path = "sqlite_stats.rs"]
mod stats;

#[path = "sqlite_console.rs"]
mod console;

#[path = "sqlite_sharing.rs"]
mod sharing;

/// Schema version this code writes; [`SqliteStore::open`] migrates older files up to it and
/// refuses newer ones.
pub const SCHEMA_VERSION: i64 = 1;

/// Page size of new databases. 16 KiB measured fastest for ingest (fewer B-tree pages and
/// page-cache lookups per row; 4 and 8 KiB were 10–20% slower) at a small cost in file size.
const PAGE_SIZE: i64 = 16 * 1024;

/// WAL pages between automatic checkpoints.
const WAL_AUTOCHECKPOINT: i64 = 8192;

/// Idle reader connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;

/// Schema migrations, applied in order by [`SqliteStore::open`], each in one transaction.
/// Area modules add their tables with a new entry here (next version number; never edit an
/// entry that has shipped) and bump [`SCHEMA_VERSION`].
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    r#"
CREATE TABLE members (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    asns         TEXT NOT NULL,     -- JSON array of numbers
    prefixes     TEXT NOT NULL,     -- JSON array of CIDR strings
    contacts     TEXT NOT NULL,     -- JSON array of strings
    created      INTEGER NOT NULL   -- µs since the epoch
);

CREATE TABLE feeds (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- Observations in commit order. No secondary index: every lookup structure is a separate
-- WITHOUT ROWID table below, filled per batch by one multi-row INSERT in key order (cheap:
-- consecutive keys land on the page the cursor is already on).
CREATE TABLE observations (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused
    id        BLOB NOT NULL,                     -- 16-byte content id
    member    INTEGER REFERENCES members(id) DEFERRABLE INITIALLY DEFERRED, -- NULL: unattributed
    feed      INTEGER NOT NULL,                  -- feeds.id
    t         INTEGER NOT NULL,                  -- time.source, else time.observation (µs): retention
    source_ip BLOB,                              -- 4 or 16 bytes
    stored_at INTEGER NOT NULL,                  -- µs
    body      BLOB NOT NULL                      -- codec.rs encoding of the observation
);
-- Deduplication: (time.source, id). The id is content-derived and covers time.source, so this is
-- unique exactly when the id is; the time prefix keeps new keys together (an index keyed by
-- random ids alone rewrites most of its pages in every batch). ts = time.source in µs, or
-- -2^63 when absent.
CREATE TABLE obs_keys (ts INTEGER NOT NULL, id BLOB NOT NULL, PRIMARY KEY (ts, id)) WITHOUT ROWID;
-- Lookup by id and by source.ip, in blocks of 2^16 sequence numbers (blk = seq >> 16): new
-- entries all go to the newest block; a lookup probes the blocks newest first.
CREATE TABLE obs_ids (blk INTEGER NOT NULL, id BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (blk, id))
    WITHOUT ROWID;
CREATE TABLE obs_ips (blk INTEGER NOT NULL, ip BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (blk, ip, seq))
    WITHOUT ROWID;
-- A member's stream, for paging.
CREATE TABLE obs_members (member INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (member, seq)) WITHOUT ROWID;
-- Retention: per feed by time.
CREATE TABLE obs_times (feed INTEGER NOT NULL, t INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (feed, t, seq))
    WITHOUT ROWID;

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    source_name TEXT NOT NULL,
    line        INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    raw         TEXT NOT NULL
);

-- name: 'observations' | 'unattributed' | 'quarantined' (member 0) or 'member' (per member).
CREATE TABLE counters (
    name   TEXT NOT NULL,
    member INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (name, member)
) WITHOUT ROWID;

CREATE TABLE tokens (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    hash    BLOB NOT NULL UNIQUE,  -- SHA-256 of the token; the token is never stored
    member  INTEGER NOT NULL REFERENCES members(id),
    label   TEXT NOT NULL,
    prefix  TEXT NOT NULL,
    created INTEGER NOT NULL,
    revoked INTEGER
);
CREATE INDEX tokens_member ON tokens (member);

CREATE TABLE routes (
    addr BLOB NOT NULL,     -- 4 or 16 bytes
    len  INTEGER NOT NULL,
    asn  INTEGER NOT NULL
);

CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"#,
)];

const ADD_COUNTER: &str = "INSERT INTO counters (name, member, n) VALUES (?1, ?2, ?3) \
     ON CONFLICT (name, member) DO UPDATE SET n = n + excluded.n";

/// Maps rusqlite errors into [`StoreError`], keeping constraint violations recognisable
/// (foreign key → `NotFound`, unique → `Conflict`). For area modules too.
pub(crate) trait Sql<T> {
    fn sql(self) -> Result<T>;
}

impl<T> Sql<T> for rusqlite::Result<T> {
    fn sql(self) -> Result<T> {
        self.map_err(sql_error)
    }
}

/// Runs a prepared query and maps every row with `f`: the one row loop of every listing query
/// (errors from `f`, such as corrupt values, pass through unchanged).
pub(crate) fn collect_rows<T>(
    st: &mut rusqlite::Statement<'_>,
    p: impl rusqlite::Params,
    mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut rows = st.query(p).sql()?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().sql()? {
        out.push(f(r)?);
    }
    Ok(out)
}

pub(crate) fn sql_error(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        let msg = msg.clone().unwrap_or_default();
        match f.extended_code {
            rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                return StoreError::NotFound(format!("referenced member does not exist ({msg})"));
            }
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                return StoreError::Conflict(format!("already exists ({msg})"));
            }
            _ => {}
        }
    }
    StoreError::Backend(e.to_string())
}

pub(crate) fn corrupt(what: impl Into<String>, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt { what: what.into(), reason: reason.into() }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves SQLite consistent (an open transaction is rolled
    // back when dropped), so a poisoned lock is safe to take over.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn limit_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn u64_sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn ip_bytes(ip: IpAddr, buf: &mut [u8; 16]) -> &[u8] {
    match ip {
        IpAddr::V4(a) => {
            buf[..4].copy_from_slice(&a.octets());
            &buf[..4]
        }
        IpAddr::V6(a) => {
            *buf = a.octets();
            &buf[..]
        }
    }
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        16 => <[u8; 16]>::try_from(b).ok().map(|o| IpAddr::V6(Ipv6Addr::from(o))),
        _ => None,
    }
}

fn member_from_sql(v: i64) -> Result<MemberId> {
    u32::try_from(v).map(MemberId).map_err(|_| corrupt("member id", format!("{v} out of range")))
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    writer: Mutex<Writer>,
    /// `None` for an in-memory database: reads go through the writer connection.
    readers: Option<Mutex<Vec<Connection>>>,
    path: Option<PathBuf>,
    /// In-memory databases keep their anchor here instead of in a file.
    memory_anchor: Mutex<Option<Anchor>>,
    /// Background WAL checkpointing (on-disk databases only); declared last so that it is
    /// dropped (stopped and joined) after the other connections are closed.
    _checkpointer: Option<Checkpointer>,
}

/// A thread that copies the WAL back into the database file in the background, so that
/// commits do not pay for checkpoints.
struct Checkpointer {
    stop: std::sync::Arc<(Mutex<bool>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the background checkpointer runs.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

impl Checkpointer {
    fn start(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).sql()?;
        conn.busy_timeout(std::time::Duration::from_secs(1)).sql()?;
        conn.pragma_update(None, "synchronous", "FULL").sql()?;
        let stop = std::sync::Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("kizuna-store-checkpoint".into())
            .spawn(move || {
                let (lock_, cv) = &*flag;
                let mut stopped = lock(lock_);
                while !*stopped {
                    stopped = cv.wait_timeout(stopped, CHECKPOINT_EVERY).unwrap_or_else(|p| p.into_inner()).0;
                    if *stopped {
                        break;
                    }
                    drop(stopped);
                    // PASSIVE: never blocks writers or readers; errors (busy) are retried next
                    // round, and the writer's own automatic checkpoint is the fallback.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    stopped = lock(lock_);
                }
            })
            .map_err(|e| StoreError::Backend(format!("starting the checkpoint thread: {e}")))?;
        Ok(Checkpointer { stop, thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (lock_, cv) = &*self.stop;
        *lock(lock_) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Writer {
    conn: Connection,
    /// feed name → feeds.id, for committed rows only (cleared when a transaction fails).
    feeds: HashMap<String, i64>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies pending schema migrations and
    /// sets WAL mode with `synchronous=FULL`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).sql()?;
        // page_size only takes effect on a new database (before the first table exists).
        conn.pragma_update(None, "page_size", PAGE_SIZE).sql()?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).sql()?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!("cannot enable WAL mode (journal_mode is {mode})")));
        }
        Self::configure_writer(&conn)?;
        // A background thread checkpoints every 200 ms (so commits do not pay for it); the
        // writer's own automatic checkpoint, at 8192 pages (128 MiB) instead of 1000, is the
        // fallback if it falls behind.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT).sql()?;
        conn.pragma_update(None, "journal_size_limit", 256i64 * 1024 * 1024).sql()?;
        Self::migrate(&conn)?;
        let checkpointer = Some(Checkpointer::start(path)?);
        Ok(SqliteStore {
            writer: Mutex::new(Writer { conn, feeds: HashMap::new() }),
            readers: Some(Mutex::new(Vec::new())),
            path: Some(path.to_path_buf()),
            memory_anchor: Mutex::new(None),
            _checkpointer: checkpointer,
        })
    }

    /// A private in-memory database (for tests): one connection, nothing durable.
    pub fn open_in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().sql()?;
        Self::configure_writer(&conn)?;
        Self::migrate(&conn)?;
        Ok(SqliteStore {
            writer: Mutex::new(Writer { conn, feeds: HashMap::new() }),
            readers: None,
            path: None,
            memory_anchor: Mutex::new(None),
            _checkpointer: None,
        })
    }

    fn configure_writer(conn: &Connection) -> Result<()> {
        conn.pragma_update(None, "synchronous", "FULL").sql()?;
        conn.pragma_update(None, "foreign_keys", true).sql()?;
        conn.pragma_update(None, "cache_size", -128 * 1024).sql()?; // 128 MiB
        conn.pragma_update(None, "temp_store", "MEMORY").sql()?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).sql()?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(())
    }

    fn migrate(conn: &Connection) -> Result<()> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .sql()?;
        let current: i64 =
            conn.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0)).sql()?;
        if current > SCHEMA_VERSION {
            return Err(StoreError::Backend(format!(
                "database schema version {current} is newer than this program supports ({SCHEMA_VERSION})"
            )));
        }
        for (version, sql) in MIGRATIONS {
            if *version <= current {
                continue;
            }
            let tx = conn.unchecked_transaction().sql()?;
            tx.execute_batch(sql).sql()?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![version, Timestamp::now().as_micros()],
            )
            .sql()?;
            tx.commit().sql()?;
        }
        stats::migrate(conn)?;
        indicators::migrate(conn)?;
        console::migrate(conn)?;
        sharing::migrate(conn)?;
        Ok(())
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        self.read(|c| c.query_row("SELECT max(version) FROM schema_migrations", [], |r| r.get(0)).sql())
    }

    /// Where the audit anchor is written: `<database path>.audit-anchor` (`None` in memory).
    pub fn anchor_path(&self) -> Option<PathBuf> {
        self.path.as_ref().map(|p| {
            let mut s = p.clone().into_os_string();
            s.push(".audit-anchor");
            PathBuf::from(s)
        })
    }

    /// The anchor (newest audit entry) written after the last append: read from the anchor
    /// file, or kept in memory for an in-memory store. `None` when no entry was ever appended
    /// (or the file is missing or unreadable).
    pub fn audit_anchor(&self) -> Option<Anchor> {
        match self.anchor_path() {
            Some(p) => std::fs::read_to_string(p).ok().and_then(|s| Anchor::decode(&s)),
            None => *lock(&self.memory_anchor),
        }
    }

    /// Verifies the audit log against the anchor ([`audit::verify_store`] with
    /// [`SqliteStore::audit_anchor`]).
    pub fn verify_audit(&self) -> Result<audit::Verdict> {
        audit::verify_store(self, self.audit_anchor())
    }

    fn write_anchor(&self, a: Anchor) -> Result<()> {
        let Some(path) = self.anchor_path() else {
            *lock(&self.memory_anchor) = Some(a);
            return Ok(());
        };
        let io = |e: std::io::Error| StoreError::Backend(format!("writing audit anchor {}: {e}", path.display()));
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(a.encode().as_bytes()).map_err(io)?;
            f.write_all(b"\n").map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        if let Some(dir) = path.parent() {
            let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Runs `f` on a reader connection (the writer's, in memory). For area modules (see the
    /// `HubStore` docs): one statement, or an explicit read transaction, per call for a
    /// consistent snapshot.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let (Some(pool), Some(path)) = (&self.readers, &self.path) else {
            let w = lock(&self.writer);
            return f(&w.conn);
        };
        let conn = lock(pool).pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open(path).sql()?;
                c.pragma_update(None, "query_only", true).sql()?;
                c.pragma_update(None, "cache_size", -32 * 1024).sql()?;
                c.busy_timeout(std::time::Duration::from_secs(10)).sql()?;
                c.set_prepared_statement_cache_capacity(32);
                c
            }
        };
        let out = f(&conn);
        let mut idle = lock(pool);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        out
    }

    /// Runs `f` on the writer connection, under the writer lock. For area modules: open a
    /// `BEGIN IMMEDIATE` transaction in `f` (`conn.transaction_with_behavior(Immediate)`) and
    /// commit it; the connection runs `synchronous=FULL`, so a commit is durable.
    pub(crate) fn write_sql<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        self.write(|w| f(&mut w.conn))
    }

    fn write<T>(&self, f: impl FnOnce(&mut Writer) -> Result<T>) -> Result<T> {
        let mut w = lock(&self.writer);
        let out = f(&mut w);
        if out.is_err() {
            w.feeds.clear();
        }
        out
    }
}

fn stored_from_row(r: &rusqlite::Row<'_>, member: Option<Option<MemberId>>) -> Result<StoredObservation> {
    // Columns: seq, id, stored_at, body[, member]
    let seq: i64 = r.get(0).sql()?;
    let what = || format!("observation seq {seq}");
    let id: Vec<u8> = r.get(1).sql()?;
    let id: [u8; 16] = id.as_slice().try_into().map_err(|_| corrupt(what(), "id is not 16 bytes"))?;
    let stored_at: i64 = r.get(2).sql()?;
    let body = r.get_ref(3).sql()?.as_blob().map_err(|e| corrupt(what(), e.to_string()))?;
    let observation = codec::decode(body).map_err(|e| corrupt(what(), e.to_string()))?;
    let member = match member {
        Some(m) => m,
        None => r.get::<_, Option<i64>>(4).sql()?.map(member_from_sql).transpose()?,
    };
    Ok(StoredObservation {
        seq: u64::try_from(seq).map_err(|_| corrupt(what(), "negative seq"))?,
        stored_at: Timestamp::from_micros(stored_at),
        routed: Routed { id: ObservationId(id), observation, member },
    })
}

/// The lowest and highest lookup block in `table` (`obs_ids` or `obs_ips`), if any.
fn block_range(c: &Connection, table: &str) -> Result<Option<(i64, i64)>> {
    // Two subqueries, not `SELECT min(blk), max(blk)`: SQLite answers a lone min() or max() from
    // the primary key's first column in one seek, but both in one select scan the whole table
    // (1.2 s at 9M observations against 8 ms).
    let (lo, hi): (Option<i64>, Option<i64>) = c
        .prepare_cached(&format!("SELECT (SELECT min(blk) FROM {table}), (SELECT max(blk) FROM {table})"))
        .sql()?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .sql()?;
    Ok(lo.zip(hi))
}

/// One stored observation by sequence number.
fn fetch(c: &Connection, seq: i64) -> Result<Option<StoredObservation>> {
    let mut st = c.prepare_cached("SELECT seq, id, stored_at, body, member FROM observations WHERE seq = ?1").sql()?;
    let mut rows = st.query([seq]).sql()?;
    rows.next().sql()?.map(|r| stored_from_row(r, None)).transpose()
}

fn member_from_row(r: &rusqlite::Row<'_>) -> Result<Member> {
    // Columns: id, name, display_name, asns, prefixes, contacts, created
    let id = member_from_sql(r.get(0).sql()?)?;
    let what = || format!("member {id}");
    let asns: String = r.get(3).sql()?;
    let prefixes: String = r.get(4).sql()?;
    let contacts: String = r.get(5).sql()?;
    let asns: Vec<u32> = serde_json::from_str(&asns).map_err(|e| corrupt(what(), format!("asns: {e}")))?;
    let prefixes: Vec<String> =
        serde_json::from_str(&prefixes).map_err(|e| corrupt(what(), format!("prefixes: {e}")))?;
    let prefixes = prefixes
        .iter()
        .map(|p| p.parse::<IpNet>().map_err(|e| corrupt(what(), format!("prefix {p:?}: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let contacts: Vec<String> =
        serde_json::from_str(&contacts).map_err(|e| corrupt(what(), format!("contacts: {e}")))?;
    Ok(Member {
        id,
        name: r.get(1).sql()?,
        display_name: r.get(2).sql()?,
        asns,
        prefixes,
        contacts,
        created: Timestamp::from_micros(r.get(6).sql()?),
    })
}

const MEMBER_COLUMNS: &str = "id, name, display_name, asns, prefixes, contacts, created";
const TOKEN_COLUMNS: &str = "id, member, label, prefix, created, revoked";

fn token_from_row(r: &rusqlite::Row<'_>) -> Result<TokenInfo> {
    let id: i64 = r.get(0).sql()?;
    Ok(TokenInfo {
        id: u64::try_from(id).map_err(|_| corrupt("token", "negative id"))?,
        member: member_from_sql(r.get(1).sql()?)?,
        label: r.get(2).sql()?,
        prefix: r.get(3).sql()?,
        created: Timestamp::from_micros(r.get(4).sql()?),
        revoked: r.get::<_, Option<i64>>(5).sql()?.map(Timestamp::from_micros),
    })
}

fn spec_json(spec: &MemberSpec) -> Result<(String, String, String, String)> {
    if spec.name.trim().is_empty() {
        return Err(StoreError::Conflict("member name is empty".into()));
    }
    let display = if spec.display_name.is_empty() { spec.name.clone() } else { spec.display_name.clone() };
    let enc = |e: serde_json::Error| StoreError::Backend(format!("encoding member: {e}"));
    let asns = serde_json::to_string(&spec.asns).map_err(enc)?;
    let prefixes: Vec<String> = spec.prefixes.iter().map(|p| p.to_string()).collect();
    let prefixes = serde_json::to_string(&prefixes).map_err(enc)?;
    let contacts = serde_json::to_string(&spec.contacts).map_err(enc)?;
    Ok((display, asns, prefixes, contacts))
}

fn feed_id(tx: &Connection, cache: &mut HashMap<String, i64>, name: &str) -> Result<i64> {
    if let Some(&id) = cache.get(name) {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO feeds (name) VALUES (?1) ON CONFLICT (name) DO NOTHING")
        .sql()?
        .execute([name])
        .sql()?;
    let id: i64 =
        tx.prepare_cached("SELECT id FROM feeds WHERE name = ?1").sql()?.query_row([name], |r| r.get(0)).sql()?;
    cache.insert(name.to_owned(), id);
    Ok(id)
}

fn add_counter(tx: &Connection, name: &str, member: i64, delta: i64) -> Result<()> {
    if delta != 0 {
        tx.prepare_cached(ADD_COUNTER).sql()?.execute(params![name, member, delta]).sql()?;
    }
    Ok(())
}

fn insert_rejected(tx: &Connection, at: i64, r: &Rejected) -> Result<()> {
    tx.prepare_cached("INSERT INTO quarantine (at, source_name, line, reason, raw) VALUES (?1, ?2, ?3, ?4, ?5)")
        .sql()?
        .execute(params![at, r.source_name, u64_sql(r.line), r.reason, r.raw])
        .sql()?;
    Ok(())
}

/// Hashes an [`ObservationId`] by its first 8 bytes: they are already uniformly distributed
/// (BLAKE3 output), so SipHash would only cost time.
#[derive(Clone, Copy, Default)]
struct IdHash;

impl std::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut b = [0u8; 8];
        let n = bytes.len().min(8);
        b[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(b);
    }
    fn write_usize(&mut self, _: usize) {}
    fn finish(&self) -> u64 {
        self.0
    }
}

/// One observation of a batch, prepared for insertion outside the writer lock.
struct Row<'a> {
    id: &'a [u8; 16],
    /// The observation (for the console aggregates).
    obs: &'a kizuna_model::Observation,
    member: Option<i64>,
    feed: &'a str,
    /// Retention time: time.source, else time.observation.
    t: i64,
    /// Deduplication key prefix: time.source, else [`NO_TIME`].
    ts: i64,
    ip: [u8; 16],
    /// 0 (no source.ip), 4 or 16.
    ip_len: u8,
    body: std::ops::Range<usize>,
}

impl Row<'_> {
    fn ip(&self) -> Option<&[u8]> {
        (self.ip_len > 0).then(|| &self.ip[..self.ip_len as usize])
    }
}

/// Rows per multi-row INSERT statement. One statement inserting many rows keeps its B-tree
/// cursors open between rows, and rows given in key order then mostly land on the page the
/// cursor is already on: much cheaper than one statement execution per row.
const CHUNK: usize = 256;

/// A multi-row `INSERT OR IGNORE` into one table, prepared for every power-of-two row count up
/// to [`CHUNK`].
///
/// Never bind an INTEGER PRIMARY KEY (rowid) value in these: an explicit rowid "may abort" (type
/// check), which makes a multi-row statement open a statement journal that copies every page it
/// touches. Likewise no RETURNING (implemented as a trigger, same effect) and no immediate
/// foreign keys.
struct MultiInsert {
    head: &'static str,
    params: usize,
    sql: std::sync::OnceLock<Vec<String>>,
}

impl MultiInsert {
    const fn new(head: &'static str, params: usize) -> Self {
        MultiInsert { head, params, sql: std::sync::OnceLock::new() }
    }

    fn sql(&self, n: usize) -> &str {
        let all = self.sql.get_or_init(|| {
            let mut v = Vec::new();
            let mut k = 1;
            while k <= CHUNK {
                let mut sql = String::from(self.head);
                sql.push_str(" VALUES ");
                for i in 0..k {
                    sql.push_str(if i == 0 { "(" } else { ",(" });
                    for j in 0..self.params {
                        if j > 0 {
                            sql.push(',');
                        }
                        sql.push('?');
                        sql.push_str(&(i * self.params + j + 1).to_string());
                    }
                    sql.push(')');
                }
                v.push(sql);
                k *= 2;
            }
            v
        });
        &all[n.trailing_zeros() as usize]
    }

    /// Inserts `count` rows; `bind(statement, first parameter index, k)` binds the k-th row.
    /// Returns how many rows were inserted.
    fn run(
        &self,
        tx: &Connection,
        count: usize,
        mut bind: impl FnMut(&mut rusqlite::Statement<'_>, usize, usize) -> rusqlite::Result<()>,
    ) -> Result<usize> {
        let mut done = 0usize;
        let mut inserted = 0usize;
        while done < count {
            let left = count - done;
            let n = if left >= CHUNK { CHUNK } else { 1 << (usize::BITS - 1 - left.leading_zeros()) };
            let mut st = tx.prepare_cached(self.sql(n)).sql()?;
            for k in 0..n {
                bind(&mut st, k * self.params + 1, done + k).sql()?;
            }
            inserted += st.raw_execute().sql()?;
            done += n;
        }
        Ok(inserted)
    }
}

static INSERT_OBSERVATIONS: MultiInsert =
    MultiInsert::new("INSERT OR IGNORE INTO observations (id, member, feed, t, source_ip, stored_at, body)", 7);
static INSERT_KEYS: MultiInsert = MultiInsert::new("INSERT OR IGNORE INTO obs_keys (ts, id)", 2);
static INSERT_IDS: MultiInsert = MultiInsert::new("INSERT OR IGNORE INTO obs_ids (blk, id, seq)", 3);
static INSERT_MEMBERS: MultiInsert = MultiInsert::new("INSERT OR IGNORE INTO obs_members (member, seq)", 2);
static INSERT_IPS: MultiInsert = MultiInsert::new("INSERT OR IGNORE INTO obs_ips (blk, ip, seq)", 3);

/// `obs_keys.ts` of an observation without time.source.
const NO_TIME: i64 = i64::MIN;
/// Sequence numbers per lookup block (`blk = seq >> BLOCK_BITS`).
const BLOCK_BITS: u32 = 16;
static INSERT_TIMES: MultiInsert = MultiInsert::new("INSERT OR IGNORE INTO obs_times (feed, t, seq)", 3);

/// The highest observation sequence number ever assigned (AUTOINCREMENT never reuses one, even
/// when retention deleted the newest rows).
fn last_seq(tx: &Connection) -> Result<i64> {
    tx.prepare_cached("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'observations'")
        .sql()?
        .query_row([], |r| r.get(0))
        .sql()
}

/// Inserts the deduplication keys of `rows` in key order; returns how many were new.
fn insert_keys(tx: &Connection, rows: &[&Row<'_>]) -> Result<usize> {
    let mut order: Vec<(i64, &[u8; 16])> = rows.iter().map(|r| (r.ts, r.id)).collect();
    order.sort_unstable();
    INSERT_KEYS.run(tx, order.len(), |st, p, k| {
        st.raw_bind_parameter(p, order[k].0)?;
        st.raw_bind_parameter(p + 1, &order[k].1[..])
    })
}

impl Writer {
    fn commit(&mut self, batch: &Batch, rows: &[Row<'_>], bodies: &[u8], now: i64) -> Result<BatchOutcome> {
        let Writer { conn, feeds } = self;
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
        let mut base = last_seq(&tx)?;
        // Observations get sequence numbers base + 1, base + 2, … in row order: SQLite assigns
        // them so when every row is inserted, which holds because duplicates are known first.
        // Optimistically assume no row is stored yet (the common case) and check it while
        // inserting the ids; if some are, start over without them.
        let mut fresh: Vec<&Row<'_>> = rows.iter().collect();
        if insert_keys(&tx, &fresh)? < fresh.len() {
            tx.rollback().sql()?;
            tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            base = last_seq(&tx)?;
            {
                let mut exists = tx.prepare_cached("SELECT 1 FROM obs_keys WHERE ts = ?1 AND id = ?2").sql()?;
                let mut keep = Vec::with_capacity(fresh.len());
                for r in fresh {
                    if !exists.exists(params![r.ts, &r.id[..]]).sql()? {
                        keep.push(r);
                    }
                }
                fresh = keep;
            }
            if insert_keys(&tx, &fresh)? != fresh.len() {
                return Err(StoreError::Backend("observation ids changed under the writer lock".into()));
            }
        }
        let mut feed_ids = Vec::with_capacity(fresh.len());
        let mut last_feed: Option<(&str, i64)> = None;
        for r in &fresh {
            // Rows of a batch mostly share their feed: skip the map lookup then.
            let id = match last_feed {
                Some((name, id)) if name == r.feed => id,
                _ => feed_id(&tx, feeds, r.feed)?,
            };
            last_feed = Some((r.feed, id));
            feed_ids.push(id);
        }
        let inserted = INSERT_OBSERVATIONS.run(&tx, fresh.len(), |st, p, k| {
            let r = fresh[k];
            st.raw_bind_parameter(p, &r.id[..])?;
            st.raw_bind_parameter(p + 1, r.member)?;
            st.raw_bind_parameter(p + 2, feed_ids[k])?;
            st.raw_bind_parameter(p + 3, r.t)?;
            st.raw_bind_parameter(p + 4, r.ip())?;
            st.raw_bind_parameter(p + 5, now)?;
            st.raw_bind_parameter(p + 6, &bodies[r.body.clone()])
        })?;
        let last = if fresh.is_empty() { base } else { tx.last_insert_rowid() };
        if inserted != fresh.len() || last != base + fresh.len() as i64 {
            return Err(StoreError::Backend(format!(
                "sequence numbers out of step: inserted {inserted} of {} rows, last {last}, expected {}",
                fresh.len(),
                base + fresh.len() as i64
            )));
        }
        let seq = |k: usize| base + 1 + k as i64;
        let blk = |seq: i64| seq >> BLOCK_BITS;

        let mut by_id: Vec<(i64, &[u8; 16], i64)> =
            fresh.iter().enumerate().map(|(k, r)| (blk(seq(k)), r.id, seq(k))).collect();
        by_id.sort_unstable();
        let ids = INSERT_IDS.run(&tx, by_id.len(), |st, p, k| {
            st.raw_bind_parameter(p, by_id[k].0)?;
            st.raw_bind_parameter(p + 1, &by_id[k].1[..])?;
            st.raw_bind_parameter(p + 2, by_id[k].2)
        })?;
        if ids != by_id.len() {
            // Only possible when a Routed::id is not its observation's content id.
            return Err(StoreError::Conflict(
                "an observation id is already stored with a different time.source (Routed::id must be \
                 Observation::id())"
                    .into(),
            ));
        }

        let mut by_member: Vec<(i64, i64)> =
            fresh.iter().enumerate().filter_map(|(k, r)| r.member.map(|m| (m, seq(k)))).collect();
        let unattributed = (fresh.len() - by_member.len()) as i64;
        by_member.sort_unstable();
        let mut per_member: Vec<(i64, i64)> = Vec::new();
        for &(m, _) in &by_member {
            match per_member.last_mut() {
                Some((last, n)) if *last == m => *n += 1,
                _ => per_member.push((m, 1)),
            }
        }
        INSERT_MEMBERS.run(&tx, by_member.len(), |st, p, k| {
            st.raw_bind_parameter(p, by_member[k].0)?;
            st.raw_bind_parameter(p + 1, by_member[k].1)
        })?;
        let mut by_ip: Vec<(i64, &[u8], i64)> =
            fresh.iter().enumerate().filter_map(|(k, r)| r.ip().map(|ip| (blk(seq(k)), ip, seq(k)))).collect();
        by_ip.sort_unstable();
        INSERT_IPS.run(&tx, by_ip.len(), |st, p, k| {
            st.raw_bind_parameter(p, by_ip[k].0)?;
            st.raw_bind_parameter(p + 1, by_ip[k].1)?;
            st.raw_bind_parameter(p + 2, by_ip[k].2)
        })?;
        let mut by_time: Vec<(i64, i64, i64)> =
            fresh.iter().enumerate().map(|(k, r)| (feed_ids[k], r.t, seq(k))).collect();
        by_time.sort_unstable();
        INSERT_TIMES.run(&tx, by_time.len(), |st, p, k| {
            st.raw_bind_parameter(p, by_time[k].0)?;
            st.raw_bind_parameter(p + 1, by_time[k].1)?;
            st.raw_bind_parameter(p + 2, by_time[k].2)
        })?;

        for r in &batch.rejected {
            insert_rejected(&tx, now, r)?;
        }
        let stored = fresh.len() as u64;
        let out = BatchOutcome {
            stored,
            duplicates: batch.observations.len() as u64 - stored,
            quarantined: batch.rejected.len() as u64,
        };
        add_counter(&tx, "observations", 0, u64_sql(out.stored))?;
        add_counter(&tx, "unattributed", 0, unattributed)?;
        add_counter(&tx, "quarantined", 0, u64_sql(out.quarantined))?;
        for (m, n) in per_member {
            add_counter(&tx, "member", m, n)?;
        }
        // Console aggregates, in the same transaction (sqlite_console.rs).
        let new_rows: Vec<console::NewRow<'_>> = fresh
            .iter()
            .enumerate()
            .map(|(k, r)| console::NewRow { obs: r.obs, member: r.member, t: r.t, seq: seq(k) })
            .collect();
        console::record(&tx, &new_rows, now)?;
        tx.commit().sql()?;
        Ok(out)
    }
}

/// id, member, source_ip and body of a deleted observation row.
type DeletedRow = (Vec<u8>, Option<i64>, Option<Vec<u8>>, Vec<u8>);

/// Observations deleted per retention transaction.
const EXPIRE_CHUNK: usize = 20_000;

/// Deletes up to [`EXPIRE_CHUNK`] observations of `feed` with a retention time before `cutoff`,
/// with their lookup entries and counts, in one transaction. Returns how many entries were
/// looked at and how many observations deleted.
fn expire_chunk(conn: &mut Connection, feed: i64, cutoff: i64) -> Result<(usize, u64)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    let victims: Vec<(i64, i64)> = {
        let mut st = tx.prepare_cached("SELECT t, seq FROM obs_times WHERE feed = ?1 AND t < ?2 LIMIT ?3").sql()?;
        st.query_map(params![feed, cutoff, EXPIRE_CHUNK as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .sql()?
            .collect::<rusqlite::Result<_>>()
            .sql()?
    };
    let mut deleted = 0i64;
    let mut unattributed = 0i64;
    let mut per_member: HashMap<i64, i64> = HashMap::new();
    {
        let mut del_obs =
            tx.prepare_cached("DELETE FROM observations WHERE seq = ?1 RETURNING id, member, source_ip, body").sql()?;
        let mut del_key = tx.prepare_cached("DELETE FROM obs_keys WHERE ts = ?1 AND id = ?2").sql()?;
        let mut del_id = tx.prepare_cached("DELETE FROM obs_ids WHERE blk = ?1 AND id = ?2").sql()?;
        let mut del_member = tx.prepare_cached("DELETE FROM obs_members WHERE member = ?1 AND seq = ?2").sql()?;
        let mut del_ip = tx.prepare_cached("DELETE FROM obs_ips WHERE blk = ?1 AND ip = ?2 AND seq = ?3").sql()?;
        let mut del_time = tx.prepare_cached("DELETE FROM obs_times WHERE feed = ?1 AND t = ?2 AND seq = ?3").sql()?;
        for &(t, seq) in &victims {
            let row: Option<DeletedRow> = {
                let mut rows = del_obs.query([seq]).sql()?;
                match rows.next().sql()? {
                    Some(r) => Some((r.get(0).sql()?, r.get(1).sql()?, r.get(2).sql()?, r.get(3).sql()?)),
                    None => None,
                }
            };
            del_time.execute(params![feed, t, seq]).sql()?;
            let Some((id, member, ip, body)) = row else { continue };
            deleted += 1;
            let ts = codec::decode(&body)
                .map_err(|e| corrupt(format!("observation seq {seq}"), e.to_string()))?
                .time_source
                .map_or(NO_TIME, Timestamp::as_micros);
            del_key.execute(params![ts, &id]).sql()?;
            let blk = seq >> BLOCK_BITS;
            del_id.execute(params![blk, &id]).sql()?;
            match member {
                Some(m) => {
                    del_member.execute(params![m, seq]).sql()?;
                    *per_member.entry(m).or_default() += 1;
                }
                None => unattributed += 1,
            }
            if let Some(ip) = ip {
                del_ip.execute(params![blk, ip, seq]).sql()?;
            }
        }
    }
    add_counter(&tx, "observations", 0, -deleted)?;
    add_counter(&tx, "unattributed", 0, -unattributed)?;
    for (m, n) in per_member {
        add_counter(&tx, "member", m, -n)?;
    }
    tx.commit().sql()?;
    Ok((victims.len(), deleted as u64))
}

impl Store for SqliteStore {
    fn commit_batch(&self, batch: &Batch) -> Result<BatchOutcome> {
        // Encode before taking the writer lock, so that concurrent committers do this work in
        // parallel.
        self.commit_encoded(batch, &codec::EncodedBatch::of(batch))
    }

    fn commit_encoded(&self, batch: &Batch, encoded: &codec::EncodedBatch) -> Result<BatchOutcome> {
        if encoded.len() != batch.observations.len() {
            return Err(StoreError::Backend(format!(
                "encoded bodies of {} observations given for a batch of {}",
                encoded.len(),
                batch.observations.len()
            )));
        }
        // Drop repeats inside the batch before taking the writer lock.
        let mut rows = Vec::with_capacity(batch.observations.len());
        let mut seen: std::collections::HashSet<ObservationId, IdHash> =
            std::collections::HashSet::with_capacity_and_hasher(batch.observations.len(), IdHash);
        for (k, r) in batch.observations.iter().enumerate() {
            if !seen.insert(r.id) {
                continue;
            }
            let o = &r.observation;
            let mut ip = [0u8; 16];
            let ip_len = match o.source.ip {
                Some(a) => ip_bytes(a, &mut ip).len() as u8,
                None => 0,
            };
            rows.push(Row {
                id: &r.id.0,
                obs: o,
                member: r.member.map(|m| i64::from(m.0)),
                feed: &o.feed.name,
                t: o.time_source.unwrap_or(o.time_observation).as_micros(),
                ts: o.time_source.map_or(NO_TIME, Timestamp::as_micros),
                ip,
                ip_len,
                body: encoded.span(k),
            });
        }
        let now = Timestamp::now().as_micros();
        self.write(|w| w.commit(batch, &rows, encoded.bytes(), now))
    }

    fn observation(&self, id: &ObservationId) -> Result<Option<StoredObservation>> {
        self.read(|c| {
            // One read transaction: the probes and the fetch see the same snapshot.
            let tx = c.unchecked_transaction().sql()?;
            let Some((lo, hi)) = block_range(&tx, "obs_ids")? else { return Ok(None) };
            let seq = {
                let mut probe = tx.prepare_cached("SELECT seq FROM obs_ids WHERE blk = ?1 AND id = ?2").sql()?;
                let mut found = None;
                for blk in (lo..=hi).rev() {
                    if let Some(seq) =
                        probe.query_row(params![blk, &id.0[..]], |r| r.get::<_, i64>(0)).optional().sql()?
                    {
                        found = Some(seq);
                        break;
                    }
                }
                found
            };
            let out = match seq {
                Some(seq) => fetch(&tx, seq)?,
                None => None,
            };
            tx.commit().sql()?;
            Ok(out)
        })
    }

    fn page(&self, member: MemberId, after: Cursor, limit: usize) -> Result<Page> {
        let items = self.read(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT o.seq, o.id, o.stored_at, o.body \
                     FROM obs_members m CROSS JOIN observations o ON o.seq = m.seq \
                     WHERE m.member = ?1 AND m.seq > ?2 ORDER BY m.seq LIMIT ?3",
                )
                .sql()?;
            let mut rows = st.query(params![i64::from(member.0), u64_sql(after.0), limit_sql(limit)]).sql()?;
            let mut items = Vec::with_capacity(limit.min(4096));
            while let Some(r) = rows.next().sql()? {
                items.push(stored_from_row(r, Some(Some(member)))?);
            }
            Ok(items)
        })?;
        let next = items.last().map_or(after, |o| Cursor(o.seq));
        Ok(Page { items, next })
    }

    fn by_source_ip(&self, ip: IpAddr, limit: usize) -> Result<Vec<StoredObservation>> {
        self.read(|c| {
            let tx = c.unchecked_transaction().sql()?;
            let mut items = Vec::new();
            if let Some((lo, hi)) = block_range(&tx, "obs_ips")? {
                let mut buf = [0u8; 16];
                let ip = ip_bytes(ip, &mut buf);
                let mut probe = tx
                    .prepare_cached("SELECT seq FROM obs_ips WHERE blk = ?1 AND ip = ?2 ORDER BY seq DESC LIMIT ?3")
                    .sql()?;
                let mut seqs: Vec<i64> = Vec::new();
                for blk in (lo..=hi).rev() {
                    if seqs.len() >= limit {
                        break;
                    }
                    let rows = probe
                        .query_map(params![blk, ip, limit_sql(limit - seqs.len())], |r| r.get::<_, i64>(0))
                        .sql()?;
                    for seq in rows {
                        seqs.push(seq.sql()?);
                    }
                }
                drop(probe);
                for seq in seqs {
                    if let Some(o) = fetch(&tx, seq)? {
                        items.push(o);
                    }
                }
            }
            tx.commit().sql()?;
            Ok(items)
        })
    }

    fn quarantine(&self, after: u64, limit: usize) -> Result<Vec<QuarantineEntry>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT id, at, source_name, line, reason, raw FROM quarantine WHERE id > ?1 ORDER BY id LIMIT ?2",
                )
                .sql()?;
            collect_rows(&mut st, params![u64_sql(after), limit_sql(limit)], |r| {
                let id: i64 = r.get(0).sql()?;
                let line: i64 = r.get(3).sql()?;
                Ok(QuarantineEntry {
                    id: u64::try_from(id).map_err(|_| corrupt("quarantine entry", "negative id"))?,
                    at: Timestamp::from_micros(r.get(1).sql()?),
                    rejected: Rejected {
                        source_name: r.get(2).sql()?,
                        line: u64::try_from(line).map_err(|_| corrupt(format!("quarantine {id}"), "negative line"))?,
                        reason: r.get(4).sql()?,
                        raw: r.get(5).sql()?,
                    },
                })
            })
        })
    }

    fn totals(&self) -> Result<Totals> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT name, member, n FROM counters ORDER BY name, member").sql()?;
            let mut rows = st.query([]).sql()?;
            let mut t = Totals::default();
            while let Some(r) = rows.next().sql()? {
                let name = r.get_ref(0).sql()?.as_str().map_err(|e| corrupt("counter", e.to_string()))?;
                let n: i64 = r.get(2).sql()?;
                let n = u64::try_from(n).map_err(|_| corrupt(format!("counter {name}"), format!("negative: {n}")))?;
                match name {
                    "observations" => t.observations = n,
                    "unattributed" => t.unattributed = n,
                    "quarantined" => t.quarantined = n,
                    "member" if n > 0 => t.per_member.push((member_from_sql(r.get(1).sql()?)?, n)),
                    _ => {}
                }
            }
            t.per_member.sort();
            Ok(t)
        })
    }

    fn expire(&self, now: Timestamp, retention: &Retention) -> Result<u64> {
        let feeds: Vec<(i64, String)> = self.read(|c| {
            let mut st = c.prepare("SELECT id, name FROM feeds ORDER BY id").sql()?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).sql()?.collect::<rusqlite::Result<_>>().sql()
        })?;
        let mut deleted = 0u64;
        for (feed, name) in feeds {
            let Some(keep) = retention.for_feed(&name) else { continue };
            let keep = i64::try_from(keep.as_micros()).unwrap_or(i64::MAX);
            let cutoff = now.as_micros().saturating_sub(keep);
            // In transactions of at most EXPIRE_CHUNK rows, so ingestion is never blocked long.
            loop {
                let (looked, n) = self.write(|w| expire_chunk(&mut w.conn, feed, cutoff))?;
                deleted += n;
                if looked < EXPIRE_CHUNK {
                    break;
                }
            }
        }
        Ok(deleted)
    }

    fn add_member(&self, spec: &MemberSpec, now: Timestamp) -> Result<Member> {
        let (display, asns, prefixes, contacts) = spec_json(spec)?;
        let id = self.write(|w| {
            let tx = w.conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let taken: Option<i64> =
                tx.query_row("SELECT id FROM members WHERE name = ?1", [&spec.name], |r| r.get(0)).optional().sql()?;
            if let Some(other) = taken {
                return Err(StoreError::Conflict(format!("member name {:?} is in use by member {other}", spec.name)));
            }
            tx.execute(
                "INSERT INTO members (name, display_name, asns, prefixes, contacts, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![spec.name, display, asns, prefixes, contacts, now.as_micros()],
            )
            .sql()?;
            let id = tx.last_insert_rowid();
            tx.execute(ADD_COUNTER, params!["routing_generation", 0, 1]).sql()?;
            tx.commit().sql()?;
            member_from_sql(id)
        })?;
        self.member(id)?.ok_or_else(|| StoreError::Backend(format!("member {id} vanished after insert")))
    }

    fn update_member(&self, id: MemberId, spec: &MemberSpec) -> Result<Member> {
        let (display, asns, prefixes, contacts) = spec_json(spec)?;
        self.write(|w| {
            let tx = w.conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let taken: Option<i64> = tx
                .query_row("SELECT id FROM members WHERE name = ?1 AND id != ?2", params![spec.name, id.0], |r| {
                    r.get(0)
                })
                .optional()
                .sql()?;
            if let Some(other) = taken {
                return Err(StoreError::Conflict(format!("member name {:?} is in use by member {other}", spec.name)));
            }
            let n = tx
                .execute(
                    "UPDATE members SET name = ?1, display_name = ?2, asns = ?3, prefixes = ?4, contacts = ?5 WHERE id = ?6",
                    params![spec.name, display, asns, prefixes, contacts, id.0],
                )
                .sql()?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("member {id}")));
            }
            tx.execute(ADD_COUNTER, params!["routing_generation", 0, 1]).sql()?;
            tx.commit().sql()
        })?;
        self.member(id)?.ok_or_else(|| StoreError::NotFound(format!("member {id}")))
    }

    fn members(&self) -> Result<Vec<Member>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!("SELECT {MEMBER_COLUMNS} FROM members ORDER BY id")).sql()?;
            collect_rows(&mut st, [], member_from_row)
        })
    }

    fn member(&self, id: MemberId) -> Result<Option<Member>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!("SELECT {MEMBER_COLUMNS} FROM members WHERE id = ?1")).sql()?;
            let mut rows = st.query([id.0]).sql()?;
            rows.next().sql()?.map(member_from_row).transpose()
        })
    }

    fn member_by_name(&self, name: &str) -> Result<Option<Member>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!("SELECT {MEMBER_COLUMNS} FROM members WHERE name = ?1")).sql()?;
            let mut rows = st.query([name]).sql()?;
            rows.next().sql()?.map(member_from_row).transpose()
        })
    }

    fn add_token(
        &self,
        member: MemberId,
        hash: TokenHash,
        label: &str,
        prefix: &str,
        now: Timestamp,
    ) -> Result<TokenInfo> {
        self.write(|w| {
            let tx = w.conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let known: Option<i64> =
                tx.query_row("SELECT id FROM members WHERE id = ?1", [member.0], |r| r.get(0)).optional().sql()?;
            if known.is_none() {
                return Err(StoreError::NotFound(format!("member {member}")));
            }
            tx.execute(
                "INSERT INTO tokens (hash, member, label, prefix, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![&hash.0[..], member.0, label, prefix, now.as_micros()],
            )
            .map_err(|e| match sql_error(e) {
                StoreError::Conflict(_) => StoreError::Conflict("a token with this hash already exists".into()),
                other => other,
            })?;
            let id = tx.last_insert_rowid();
            tx.commit().sql()?;
            Ok(TokenInfo {
                id: u64::try_from(id).map_err(|_| corrupt("token", "negative id"))?,
                member,
                label: label.to_owned(),
                prefix: prefix.to_owned(),
                created: now,
                revoked: None,
            })
        })
    }

    fn revoke_token(&self, token_id: u64, now: Timestamp) -> Result<bool> {
        self.write_sql(|conn| {
            let n = conn
                .execute(
                    "UPDATE tokens SET revoked = ?1 WHERE id = ?2 AND revoked IS NULL",
                    params![now.as_micros(), u64_sql(token_id)],
                )
                .sql()?;
            Ok(n == 1)
        })
    }

    fn tokens(&self, member: MemberId) -> Result<Vec<TokenInfo>> {
        self.read(|c| {
            let mut st =
                c.prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE member = ?1 ORDER BY id")).sql()?;
            collect_rows(&mut st, [member.0], token_from_row)
        })
    }

    fn member_for_token(&self, hash: &TokenHash) -> Result<Option<MemberId>> {
        self.read(|c| {
            let m: Option<i64> = c
                .prepare_cached("SELECT member FROM tokens WHERE hash = ?1 AND revoked IS NULL")
                .sql()?
                .query_row([&hash.0[..]], |r| r.get(0))
                .optional()
                .sql()?;
            m.map(member_from_sql).transpose()
        })
    }

    fn replace_routes(&self, routes: &[(IpNet, u32)]) -> Result<()> {
        self.write(|w| {
            let tx = w.conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            tx.execute("DELETE FROM routes", []).sql()?;
            {
                let mut ins = tx.prepare_cached("INSERT INTO routes (addr, len, asn) VALUES (?1, ?2, ?3)").sql()?;
                let mut buf = [0u8; 16];
                for (net, asn) in routes {
                    ins.execute(params![ip_bytes(net.addr(), &mut buf), net.prefix_len(), asn]).sql()?;
                }
            }
            tx.execute(ADD_COUNTER, params!["routing_generation", 0, 1]).sql()?;
            tx.commit().sql()
        })
    }

    fn routing_generation(&self) -> Result<u64> {
        self.read(|c| {
            let n: Option<i64> = c
                .query_row("SELECT n FROM counters WHERE name = 'routing_generation' AND member = 0", [], |r| r.get(0))
                .optional()
                .sql()?;
            Ok(n.unwrap_or(0).max(0) as u64)
        })
    }

    fn routes(&self) -> Result<Vec<(IpNet, u32)>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT addr, len, asn FROM routes ORDER BY rowid").sql()?;
            collect_rows(&mut st, [], |r| {
                let addr = r.get_ref(0).sql()?.as_blob().map_err(|e| corrupt("route", e.to_string()))?;
                let addr = ip_from_bytes(addr).ok_or_else(|| corrupt("route", "address is not 4 or 16 bytes"))?;
                let len: u8 = r.get(1).sql()?;
                let net = IpNet::new(addr, len).map_err(|e| corrupt("route", e.to_string()))?;
                Ok((net, r.get(2).sql()?))
            })
        })
    }

    fn append_audit(&self, record: &AuditRecord) -> Result<AuditEntry> {
        let mut w = lock(&self.writer);
        let tx = w.conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
        let last: Option<(i64, Vec<u8>)> = tx
            .query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .sql()?;
        let (seq, prev_hash) = match last {
            None => (1u64, [0u8; 32]),
            Some((s, h)) => {
                let h: [u8; 32] =
                    h.as_slice().try_into().map_err(|_| corrupt(format!("audit entry {s}"), "hash is not 32 bytes"))?;
                let s = u64::try_from(s).map_err(|_| corrupt("audit entry", "negative seq"))?;
                (s + 1, h)
            }
        };
        let hash = audit::chain_hash(seq, &prev_hash, record);
        tx.execute(
            "INSERT INTO audit (seq, at, actor, action, subject, detail, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                u64_sql(seq),
                record.at.as_micros(),
                record.actor,
                record.action,
                record.subject,
                record.detail,
                &prev_hash[..],
                &hash[..]
            ],
        )
        .sql()?;
        tx.commit().sql()?;
        // Still under the writer lock, so anchors are written in append order.
        self.write_anchor(Anchor { seq, hash })?;
        drop(w);
        Ok(AuditEntry { seq, record: record.clone(), prev_hash, hash })
    }

    fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit \
                     WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .sql()?;
            collect_rows(&mut st, params![u64_sql(after), limit_sql(limit)], |r| {
                let seq: i64 = r.get(0).sql()?;
                let what = || format!("audit entry {seq}");
                let prev: Vec<u8> = r.get(6).sql()?;
                let hash: Vec<u8> = r.get(7).sql()?;
                Ok(AuditEntry {
                    seq: u64::try_from(seq).map_err(|_| corrupt(what(), "negative seq"))?,
                    record: AuditRecord {
                        at: Timestamp::from_micros(r.get(1).sql()?),
                        actor: r.get(2).sql()?,
                        action: r.get(3).sql()?,
                        subject: r.get(4).sql()?,
                        detail: r.get(5).sql()?,
                    },
                    prev_hash: prev.as_slice().try_into().map_err(|_| corrupt(what(), "prev_hash is not 32 bytes"))?,
                    hash: hash.as_slice().try_into().map_err(|_| corrupt(what(), "hash is not 32 bytes"))?,
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use kizuna_model::{Classification, ClassificationType, Observation};

    use super::*;

    fn batch(n: u32) -> Batch {
        let observations = (0..n)
            .map(|k| {
                let mut o = Observation::new(
                    "honeypot",
                    Classification::new(ClassificationType::BruteForce),
                    Timestamp::from_secs(1_772_668_812),
                );
                o.time_source = Some(Timestamp::from_secs(1_772_668_000 + i64::from(k)));
                o.source.ip = Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + k)));
                o.extra.insert("k".into(), serde_json::json!(k));
                Routed { id: o.id(), observation: o, member: None }
            })
            .collect();
        Batch { observations, rejected: Vec::new() }
    }

    #[test]
    fn commit_encoded_stores_what_commit_batch_would() {
        let store = SqliteStore::open_in_memory().expect("open");
        let b = batch(300);
        let out = store.commit_encoded(&b, &codec::EncodedBatch::of(&b)).expect("commit");
        assert_eq!((out.stored, out.duplicates), (300, 0));
        for r in &b.observations {
            let got = store.observation(&r.id).expect("read").expect("stored");
            assert_eq!(got.routed, *r);
        }
        // The same batch through commit_batch adds nothing: same ids, same rows.
        let again = store.commit_batch(&b).expect("commit again");
        assert_eq!((again.stored, again.duplicates), (0, 300));
    }

    #[test]
    fn commit_encoded_refuses_bodies_of_another_batch() {
        let store = SqliteStore::open_in_memory().expect("open");
        let b = batch(10);
        let other = batch(9);
        let err = store.commit_encoded(&b, &codec::EncodedBatch::of(&other)).expect_err("mismatch");
        assert!(err.to_string().contains("encoded bodies of 9 observations"), "{err}");
        assert_eq!(store.totals().expect("totals").observations, 0);
    }
}
