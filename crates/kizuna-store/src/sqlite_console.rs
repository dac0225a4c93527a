//! SQLite implementation of [`ConsoleStore`] (a child module of `sqlite`): users, sessions and
//! the aggregates kept in the batch's own transaction ([`record`], called from the writer's
//! commit).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use kizuna_model::{MemberId, Observation, Timestamp};

use super::{Sql, SqliteStore, collect_rows, corrupt, fetch, limit_sql, member_from_sql, u64_sql};
use crate::console::{
    ConsoleSession, ConsoleStore, ConsoleUser, Freshness, HourCount, MemberDay, NaiveDate, Pulls, Role, terms,
};
use crate::{Result, StoreError, StoredObservation, codec};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS console_users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    member        INTEGER REFERENCES members(id),
    password_hash TEXT NOT NULL,     -- argon2 PHC string
    created       INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash BLOB PRIMARY KEY,     -- SHA-256 of the cookie value; the value is never stored
    user       INTEGER NOT NULL REFERENCES console_users(id),
    csrf       TEXT NOT NULL,
    created    INTEGER NOT NULL,
    expires    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS console_sessions_user ON console_sessions (user);
-- Kept in the batch's transaction: hour start (s) × feed × classification.type.
CREATE TABLE IF NOT EXISTS console_hourly (
    hour  INTEGER NOT NULL,
    feed  TEXT NOT NULL,
    class TEXT NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (hour, feed, class)
) WITHOUT ROWID;
-- Days since the epoch (UTC) × member.
CREATE TABLE IF NOT EXISTS console_member_days (
    day    INTEGER NOT NULL,
    member INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (day, member)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS console_sensors (
    feed        TEXT NOT NULL,
    provider    TEXT NOT NULL,
    last_event  INTEGER NOT NULL,
    last_stored INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (feed, provider)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS console_terms (
    term TEXT NOT NULL,
    seq  INTEGER NOT NULL,
    PRIMARY KEY (term, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS console_pulls (
    member   INTEGER PRIMARY KEY,
    last     INTEGER NOT NULL,
    reads    INTEGER NOT NULL,
    returned INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS console_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"#;

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 86_400_000_000;

/// Creates the tables (idempotent) and, the first time, computes the aggregates of
/// observations already stored.
pub(super) fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch(SCHEMA).sql()?;
    let done: Option<i64> =
        conn.query_row("SELECT value FROM console_meta WHERE key = 'aggregates'", [], |r| r.get(0)).optional().sql()?;
    if done.is_none() {
        let tx = conn.unchecked_transaction().sql()?;
        rebuild(&tx)?;
        tx.commit().sql()?;
    }
    Ok(())
}

/// One new observation of a batch, as the aggregates need it.
pub(super) struct NewRow<'a> {
    pub obs: &'a Observation,
    pub member: Option<i64>,
    /// time.source, else time.observation (µs).
    pub t: i64,
    pub seq: i64,
}

#[derive(Default)]
struct Acc<'a> {
    hourly: HashMap<(i64, &'a str, &'static str), i64>,
    days: HashMap<(i64, i64), i64>,
    sensors: HashMap<(&'a str, &'a str), (i64, i64, i64)>,
    terms: Vec<(String, i64)>,
}

impl<'a> Acc<'a> {
    fn add(&mut self, r: &NewRow<'a>, stored: i64) {
        let o = r.obs;
        *self
            .hourly
            .entry((r.t.div_euclid(HOUR_US) * 3600, o.feed.name.as_str(), o.classification.kind.as_str()))
            .or_default() += 1;
        if let Some(m) = r.member {
            *self.days.entry((r.t.div_euclid(DAY_US), m)).or_default() += 1;
        }
        let s = self.sensors.entry((o.feed.name.as_str(), o.feed.provider.as_deref().unwrap_or(""))).or_insert((
            i64::MIN,
            i64::MIN,
            0,
        ));
        s.0 = s.0.max(r.t);
        s.1 = s.1.max(stored);
        s.2 += 1;
        for t in terms(o) {
            self.terms.push((t, r.seq));
        }
    }

    fn write(mut self, tx: &Connection) -> Result<()> {
        let mut st = tx
            .prepare_cached(
                "INSERT INTO console_hourly (hour, feed, class, n) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (hour, feed, class) DO UPDATE SET n = n + excluded.n",
            )
            .sql()?;
        for ((h, f, c), n) in &self.hourly {
            st.execute(params![h, f, c, n]).sql()?;
        }
        let mut st = tx
            .prepare_cached(
                "INSERT INTO console_member_days (day, member, n) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (day, member) DO UPDATE SET n = n + excluded.n",
            )
            .sql()?;
        for ((d, m), n) in &self.days {
            st.execute(params![d, m, n]).sql()?;
        }
        let mut st = tx
            .prepare_cached(
                "INSERT INTO console_sensors (feed, provider, last_event, last_stored, n) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (feed, provider) DO UPDATE SET last_event = max(last_event, excluded.last_event), \
                 last_stored = max(last_stored, excluded.last_stored), n = n + excluded.n",
            )
            .sql()?;
        for ((f, p), (e, s, n)) in &self.sensors {
            st.execute(params![f, p, e, s, n]).sql()?;
        }
        if !self.terms.is_empty() {
            self.terms.sort_unstable();
            let mut st = tx.prepare_cached("INSERT OR IGNORE INTO console_terms (term, seq) VALUES (?1, ?2)").sql()?;
            for (t, s) in &self.terms {
                st.execute(params![t, s]).sql()?;
            }
        }
        Ok(())
    }
}

/// Adds a batch's new observations to the aggregates, inside the batch's transaction.
pub(super) fn record(tx: &Connection, rows: &[NewRow<'_>], now: i64) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut acc = Acc::default();
    for r in rows {
        acc.add(r, now);
    }
    acc.write(tx)
}

/// Recomputes the observation aggregates from the observations table.
fn rebuild(tx: &Connection) -> Result<u64> {
    tx.execute_batch(
        "DELETE FROM console_hourly; DELETE FROM console_member_days; DELETE FROM console_sensors; \
         DELETE FROM console_terms;",
    )
    .sql()?;
    let mut st = tx.prepare("SELECT seq, member, t, stored_at, body FROM observations ORDER BY seq").sql()?;
    let mut rows = st.query([]).sql()?;
    let mut read = 0u64;
    let mut chunk: Vec<(i64, Option<i64>, i64, i64, Observation)> = Vec::new();
    let flush = |chunk: &mut Vec<(i64, Option<i64>, i64, i64, Observation)>| -> Result<()> {
        let mut acc = Acc::default();
        for (seq, member, t, stored, obs) in chunk.iter() {
            acc.add(&NewRow { obs, member: *member, t: *t, seq: *seq }, *stored);
        }
        acc.write(tx)?;
        chunk.clear();
        Ok(())
    };
    while let Some(r) = rows.next().sql()? {
        let seq: i64 = r.get(0).sql()?;
        let body =
            r.get_ref(4).sql()?.as_blob().map_err(|e| corrupt(format!("observation seq {seq}"), e.to_string()))?;
        let obs = codec::decode(body).map_err(|e| corrupt(format!("observation seq {seq}"), e.to_string()))?;
        chunk.push((seq, r.get(1).sql()?, r.get(2).sql()?, r.get(3).sql()?, obs));
        read += 1;
        if chunk.len() >= 50_000 {
            flush(&mut chunk)?;
        }
    }
    flush(&mut chunk)?;
    tx.execute(
        "INSERT INTO console_meta (key, value) VALUES ('aggregates', 1) ON CONFLICT (key) DO UPDATE SET value = 1",
        [],
    )
    .sql()?;
    Ok(read)
}

const USER_COLUMNS: &str = "id, name, role, member, password_hash, created, disabled";

fn user_from_row(r: &rusqlite::Row<'_>) -> Result<ConsoleUser> {
    let id: i64 = r.get(0).sql()?;
    let role: String = r.get(2).sql()?;
    Ok(ConsoleUser {
        id: u64::try_from(id).map_err(|_| corrupt("console user", "negative id"))?,
        name: r.get(1).sql()?,
        role: role.parse::<Role>().map_err(|e| corrupt(format!("console user {id}"), e.to_string()))?,
        member: r.get::<_, Option<i64>>(3).sql()?.map(member_from_sql).transpose()?,
        password_hash: r.get(4).sql()?,
        created: Timestamp::from_micros(r.get(5).sql()?),
        disabled: r.get::<_, i64>(6).sql()? != 0,
    })
}

fn user_by_name(c: &Connection, name: &str) -> Result<Option<ConsoleUser>> {
    let mut st = c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM console_users WHERE name = ?1")).sql()?;
    let mut rows = st.query([name]).sql()?;
    rows.next().sql()?.map(user_from_row).transpose()
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn day_of(d: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|e| e.checked_add_signed(chrono::TimeDelta::days(d)))
        .unwrap_or(NaiveDate::MIN)
}

fn day_number(d: NaiveDate) -> i64 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    d.signed_duration_since(epoch).num_days()
}

impl ConsoleStore for SqliteStore {
    fn add_console_user(
        &self,
        name: &str,
        role: Role,
        member: Option<MemberId>,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<ConsoleUser> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
        if !valid {
            return Err(StoreError::Conflict(format!(
                "console user name {name:?}: use 1-64 characters of [A-Za-z0-9._@-]"
            )));
        }
        self.write_sql(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            if user_by_name(&tx, name)?.is_some() {
                return Err(StoreError::Conflict(format!("console user {name:?} exists")));
            }
            tx.execute(
                "INSERT INTO console_users (name, role, member, password_hash, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, role.as_str(), member.map(|m| i64::from(m.0)), password_hash, now.as_micros()],
            )
            .sql()?;
            let u = user_by_name(&tx, name)?.ok_or_else(|| StoreError::Backend("console user vanished".into()))?;
            tx.commit().sql()?;
            Ok(u)
        })
    }

    fn update_console_user(&self, name: &str, role: Role, password_hash: Option<&str>) -> Result<ConsoleUser> {
        self.write_sql(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let u = user_by_name(&tx, name)?.ok_or_else(|| StoreError::NotFound(format!("console user {name:?}")))?;
            tx.execute(
                "UPDATE console_users SET role = ?2, password_hash = coalesce(?3, password_hash) WHERE id = ?1",
                params![u64_sql(u.id), role.as_str(), password_hash],
            )
            .sql()?;
            tx.execute("DELETE FROM console_sessions WHERE user = ?1", [u64_sql(u.id)]).sql()?;
            let u = user_by_name(&tx, name)?.ok_or_else(|| StoreError::Backend("console user vanished".into()))?;
            tx.commit().sql()?;
            Ok(u)
        })
    }

    fn set_console_user_disabled(&self, name: &str, disabled: bool) -> Result<ConsoleUser> {
        self.write_sql(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let u = user_by_name(&tx, name)?.ok_or_else(|| StoreError::NotFound(format!("console user {name:?}")))?;
            tx.execute("UPDATE console_users SET disabled = ?2 WHERE id = ?1", params![u64_sql(u.id), disabled])
                .sql()?;
            if disabled {
                tx.execute("DELETE FROM console_sessions WHERE user = ?1", [u64_sql(u.id)]).sql()?;
            }
            let u = user_by_name(&tx, name)?.ok_or_else(|| StoreError::Backend("console user vanished".into()))?;
            tx.commit().sql()?;
            Ok(u)
        })
    }

    fn console_user(&self, name: &str) -> Result<Option<ConsoleUser>> {
        self.read(|c| user_by_name(c, name))
    }

    fn console_users(&self) -> Result<Vec<ConsoleUser>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM console_users ORDER BY name")).sql()?;
            collect_rows(&mut st, [], user_from_row)
        })
    }

    fn create_console_session(
        &self,
        token_hash: &[u8; 32],
        user: u64,
        csrf: &str,
        now: Timestamp,
        expires: Timestamp,
    ) -> Result<()> {
        self.write_sql(|conn| {
            conn.execute(
                "INSERT INTO console_sessions (token_hash, user, csrf, created, expires) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![&token_hash[..], u64_sql(user), csrf, now.as_micros(), expires.as_micros()],
            )
            .sql()?;
            Ok(())
        })
    }

    fn console_session(&self, token_hash: &[u8; 32], now: Timestamp) -> Result<Option<ConsoleSession>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT u.id, u.name, u.role, u.member, u.password_hash, u.created, u.disabled, \
                     s.csrf, s.created, s.expires \
                     FROM console_sessions s JOIN console_users u ON u.id = s.user \
                     WHERE s.token_hash = ?1 AND s.expires > ?2 AND u.disabled = 0",
                )
                .sql()?;
            let mut rows = st.query(params![&token_hash[..], now.as_micros()]).sql()?;
            match rows.next().sql()? {
                None => Ok(None),
                Some(r) => Ok(Some(ConsoleSession {
                    user: user_from_row(r)?,
                    csrf: r.get(7).sql()?,
                    created: Timestamp::from_micros(r.get(8).sql()?),
                    expires: Timestamp::from_micros(r.get(9).sql()?),
                })),
            }
        })
    }

    fn delete_console_session(&self, token_hash: &[u8; 32]) -> Result<()> {
        self.write_sql(|conn| {
            conn.execute("DELETE FROM console_sessions WHERE token_hash = ?1", [&token_hash[..]]).sql()?;
            Ok(())
        })
    }

    fn purge_console_sessions(&self, now: Timestamp) -> Result<u64> {
        self.write_sql(|conn| {
            let n = conn.execute("DELETE FROM console_sessions WHERE expires <= ?1", [now.as_micros()]).sql()?;
            Ok(n as u64)
        })
    }

    fn hourly_counts(&self, from: i64, to: i64) -> Result<Vec<HourCount>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT hour, feed, class, n FROM console_hourly WHERE hour >= ?1 AND hour < ?2 \
                     ORDER BY hour, feed, class",
                )
                .sql()?;
            collect_rows(&mut st, params![from, to], |r| {
                Ok(HourCount {
                    hour: r.get(0).sql()?,
                    feed: r.get(1).sql()?,
                    class: r.get(2).sql()?,
                    n: u(r.get(3).sql()?),
                })
            })
        })
    }

    fn member_days(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<MemberDay>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT day, member, n FROM console_member_days WHERE day >= ?1 AND day <= ?2 ORDER BY day, member",
                )
                .sql()?;
            collect_rows(&mut st, params![day_number(from), day_number(to)], |r| {
                Ok(MemberDay {
                    day: day_of(r.get(0).sql()?),
                    member: member_from_sql(r.get(1).sql()?)?,
                    n: u(r.get(2).sql()?),
                })
            })
        })
    }

    fn freshness(&self) -> Result<Vec<Freshness>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT feed, provider, last_event, last_stored, n FROM console_sensors ORDER BY feed, provider",
                )
                .sql()?;
            collect_rows(&mut st, [], |r| {
                Ok(Freshness {
                    feed: r.get(0).sql()?,
                    provider: r.get(1).sql()?,
                    last_event: Timestamp::from_micros(r.get(2).sql()?),
                    last_stored: Timestamp::from_micros(r.get(3).sql()?),
                    n: u(r.get(4).sql()?),
                })
            })
        })
    }

    fn refresh_pulls(&self) -> Result<u64> {
        self.write_sql(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let mark: i64 = tx
                .query_row("SELECT value FROM console_meta WHERE key = 'pulls_audit_seq'", [], |r| r.get(0))
                .optional()
                .sql()?
                .unwrap_or(0);
            let mut looked = 0u64;
            let mut last_seq = mark;
            {
                let mut st = tx
                    .prepare_cached("SELECT seq, at, action, subject, detail FROM audit WHERE seq > ?1 ORDER BY seq")
                    .sql()?;
                let mut up = tx
                    .prepare_cached(
                        "INSERT INTO console_pulls (member, last, reads, returned) VALUES (?1, ?2, 1, ?3) \
                         ON CONFLICT (member) DO UPDATE SET last = max(last, excluded.last), reads = reads + 1, \
                         returned = returned + excluded.returned",
                    )
                    .sql()?;
                let mut rows = st.query([mark]).sql()?;
                while let Some(r) = rows.next().sql()? {
                    looked += 1;
                    last_seq = r.get(0).sql()?;
                    let action = r.get_ref(2).sql()?.as_str().unwrap_or("");
                    if action != "report.read" {
                        continue;
                    }
                    let subject: String = r.get(3).sql()?;
                    let Some(member) = subject.strip_prefix("member:").and_then(|m| m.parse::<u32>().ok()) else {
                        continue;
                    };
                    let detail: String = r.get(4).sql()?;
                    let returned = serde_json::from_str::<serde_json::Value>(&detail)
                        .ok()
                        .and_then(|v| v.get("returned").and_then(|x| x.as_i64()))
                        .unwrap_or(0);
                    let at: i64 = r.get(1).sql()?;
                    up.execute(params![i64::from(member), at, returned]).sql()?;
                }
            }
            tx.execute(
                "INSERT INTO console_meta (key, value) VALUES ('pulls_audit_seq', ?1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [last_seq],
            )
            .sql()?;
            tx.commit().sql()?;
            Ok(looked)
        })
    }

    fn pulls(&self) -> Result<Vec<Pulls>> {
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT member, last, reads, returned FROM console_pulls ORDER BY member").sql()?;
            collect_rows(&mut st, [], |r| {
                Ok(Pulls {
                    member: member_from_sql(r.get(0).sql()?)?,
                    last: Timestamp::from_micros(r.get(1).sql()?),
                    reads: u(r.get(2).sql()?),
                    returned: u(r.get(3).sql()?),
                })
            })
        })
    }

    fn observations_by_term(&self, term: &str, limit: usize) -> Result<Vec<StoredObservation>> {
        self.read(|c| {
            let tx = c.unchecked_transaction().sql()?;
            let seqs: Vec<i64> = {
                let mut st = tx
                    .prepare_cached("SELECT seq FROM console_terms WHERE term = ?1 ORDER BY seq DESC LIMIT ?2")
                    .sql()?;
                st.query_map(params![term, limit_sql(limit)], |r| r.get(0))
                    .sql()?
                    .collect::<rusqlite::Result<_>>()
                    .sql()?
            };
            let mut out = Vec::with_capacity(seqs.len());
            for s in seqs {
                if let Some(o) = fetch(&tx, s)? {
                    out.push(o);
                }
            }
            tx.commit().sql()?;
            Ok(out)
        })
    }

    fn console_audit_anchor(&self) -> Option<crate::audit::Anchor> {
        self.audit_anchor()
    }

    fn rebuild_console_aggregates(&self) -> Result<u64> {
        self.write_sql(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let n = rebuild(&tx)?;
            tx.commit().sql()?;
            Ok(n)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::sqlite::SqliteStore;
    use crate::{MemberSpec, Store};
    use kizuna_model::Timestamp;

    #[test]
    fn sqlite_passes_the_console_conformance_checks() {
        for on_disk in [false, true] {
            let dir = tempfile::tempdir().expect("dir");
            let s = if on_disk {
                SqliteStore::open(&dir.path().join("s.sqlite")).expect("open")
            } else {
                SqliteStore::open_in_memory().expect("open")
            };
            let m =
                s.add_member(&MemberSpec { name: "isp-a".into(), ..Default::default() }, Timestamp::now()).expect("m");
            crate::console::conformance::run_all(&s, m.id).expect("conformance");
        }
    }
}
