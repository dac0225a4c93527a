//! SQLite implementation of [`StatsStore`] (a child module of `sqlite`, so it uses the store's
//! reader pool and writer connection).

use rusqlite::{Connection, TransactionBehavior, params};

use kizuna_model::{MemberId, Timestamp};

use super::{Sql, SqliteStore, corrupt, u64_sql};
use crate::stats::{
    DayStats, NaiveDate, RemediationDays, StatsOutcome, StatsStore, ThreatCounts, validate, validate_remediation,
};
use crate::{Result, StoreError};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS member_stats_days (
    member      INTEGER NOT NULL REFERENCES members(id),
    day         TEXT NOT NULL,        -- YYYY-MM-DD (UTC)
    subscribers INTEGER NOT NULL,
    updated     INTEGER NOT NULL,
    PRIMARY KEY (member, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS member_stats (
    member     INTEGER NOT NULL REFERENCES members(id),
    day        TEXT NOT NULL,
    threat     TEXT NOT NULL,
    observed   INTEGER NOT NULL,
    resolved   INTEGER NOT NULL,
    infected   INTEGER NOT NULL,
    unresolved TEXT NOT NULL,         -- JSON object reason → count
    notified   INTEGER NOT NULL,
    remediated INTEGER NOT NULL,
    escalated  INTEGER NOT NULL,
    updated    INTEGER NOT NULL,
    remediation_days TEXT NOT NULL DEFAULT '{}', -- JSON object days → cases (time to remediation)
    PRIMARY KEY (member, day, threat)
) WITHOUT ROWID;
"#;

/// Creates the tables (idempotent); run from [`SqliteStore`]'s migration.
pub(super) fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch(SCHEMA).sql()?;
    // Databases made before time to remediation was reported.
    if conn.prepare("SELECT remediation_days FROM member_stats LIMIT 0").is_err() {
        conn.execute_batch("ALTER TABLE member_stats ADD COLUMN remediation_days TEXT NOT NULL DEFAULT '{}'").sql()?;
    }
    Ok(())
}

fn day_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn read_days(
    c: &Connection,
    member: Option<MemberId>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(MemberId, DayStats)>> {
    let (from, to) = (day_text(from), day_text(to));
    let m = member.map(|m| i64::from(m.0));
    let mut out: Vec<(MemberId, DayStats)> = Vec::new();
    let mut st = c
        .prepare_cached(
            "SELECT member, day, subscribers FROM member_stats_days \
             WHERE day >= ?1 AND day <= ?2 AND (?3 IS NULL OR member = ?3) ORDER BY member, day",
        )
        .sql()?;
    let mut rows = st.query(params![from, to, m]).sql()?;
    while let Some(r) = rows.next().sql()? {
        let member: i64 = r.get(0).sql()?;
        let day: String = r.get(1).sql()?;
        let member = MemberId(u32::try_from(member).map_err(|_| corrupt("member_stats_days", "member id"))?);
        let day =
            NaiveDate::parse_from_str(&day, "%Y-%m-%d").map_err(|e| corrupt("member_stats_days", e.to_string()))?;
        out.push((member, DayStats { day, subscribers: u(r.get(2).sql()?), threats: Vec::new() }));
    }
    let mut st = c
        .prepare_cached(
            "SELECT member, day, threat, observed, resolved, infected, unresolved, notified, remediated, escalated \
             FROM member_stats WHERE day >= ?1 AND day <= ?2 AND (?3 IS NULL OR member = ?3) \
             ORDER BY member, day, threat",
        )
        .sql()?;
    let mut rows = st.query(params![from, to, m]).sql()?;
    while let Some(r) = rows.next().sql()? {
        let member =
            MemberId(u32::try_from(r.get::<_, i64>(0).sql()?).map_err(|_| corrupt("member_stats", "member id"))?);
        let day: String = r.get(1).sql()?;
        let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d").map_err(|e| corrupt("member_stats", e.to_string()))?;
        let unresolved: String = r.get(6).sql()?;
        let unresolved =
            serde_json::from_str(&unresolved).map_err(|e| corrupt("member_stats.unresolved", e.to_string()))?;
        let t = ThreatCounts {
            threat: r.get(2).sql()?,
            observed: u(r.get(3).sql()?),
            resolved: u(r.get(4).sql()?),
            infected: u(r.get(5).sql()?),
            unresolved,
            notified: u(r.get(7).sql()?),
            remediated: u(r.get(8).sql()?),
            escalated: u(r.get(9).sql()?),
        };
        // Rows come in the same (member, day) order as the days; a threat row without its day
        // row gets a day with no subscriber count.
        let pos = out.iter().position(|(om, d)| *om == member && d.day == day);
        match pos {
            Some(i) => out[i].1.threats.push(t),
            None => {
                out.push((member, DayStats { day, subscribers: 0, threats: vec![t] }));
                out.sort_by_key(|(m, d)| (*m, d.day));
            }
        }
    }
    Ok(out)
}

fn read_remediation(
    c: &Connection,
    member: Option<MemberId>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(MemberId, RemediationDays)>> {
    let (from, to) = (day_text(from), day_text(to));
    let m = member.map(|m| i64::from(m.0));
    let mut st = c
        .prepare_cached(
            "SELECT member, day, threat, remediation_days FROM member_stats \
             WHERE day >= ?1 AND day <= ?2 AND (?3 IS NULL OR member = ?3) AND remediation_days <> '{}' \
             ORDER BY member, day, threat",
        )
        .sql()?;
    let mut rows = st.query(params![from, to, m]).sql()?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().sql()? {
        let bad = |e: String| corrupt("member_stats.remediation_days", e);
        let member = MemberId(u32::try_from(r.get::<_, i64>(0).sql()?).map_err(|_| bad("member id".into()))?);
        let day: String = r.get(1).sql()?;
        let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d").map_err(|e| bad(e.to_string()))?;
        let text: String = r.get(3).sql()?;
        let map: std::collections::BTreeMap<String, u64> =
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let days = map
            .into_iter()
            .map(|(k, v)| k.parse::<u32>().map(|k| (k, v)))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        out.push((member, RemediationDays { day, threat: r.get(2).sql()?, days }));
    }
    Ok(out)
}

impl StatsStore for SqliteStore {
    fn put_stats_with_remediation(
        &self,
        member: MemberId,
        days: &[DayStats],
        remediation: &[RemediationDays],
        now: Timestamp,
    ) -> Result<StatsOutcome> {
        validate(days)?;
        validate_remediation(days, remediation)?;
        self.write_sql(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let exists: bool = tx
                .query_row("SELECT EXISTS (SELECT 1 FROM members WHERE id = ?1)", params![i64::from(member.0)], |r| {
                    r.get(0)
                })
                .sql()?;
            if !exists {
                return Err(StoreError::NotFound(format!("member {member}")));
            }
            let mut out = StatsOutcome::default();
            for d in days {
                let day = day_text(d.day);
                tx.prepare_cached(
                    "INSERT INTO member_stats_days (member, day, subscribers, updated) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (member, day) DO UPDATE SET subscribers = excluded.subscribers, \
                     updated = excluded.updated",
                )
                .sql()?
                .execute(params![i64::from(member.0), day, u64_sql(d.subscribers), now.as_micros()])
                .sql()?;
                out.days += 1;
                for t in &d.threats {
                    let unresolved = serde_json::to_string(&t.unresolved)
                        .map_err(|e| StoreError::Backend(format!("encoding unresolved counts: {e}")))?;
                    let ttr = match remediation.iter().find(|r| r.day == d.day && r.threat == t.threat) {
                        Some(r) => serde_json::to_string(&r.days)
                            .map_err(|e| StoreError::Backend(format!("encoding remediation days: {e}")))?,
                        None => "{}".to_owned(),
                    };
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO member_stats (member, day, threat, observed, resolved, infected, \
                         unresolved, notified, remediated, escalated, updated, remediation_days) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    )
                    .sql()?
                    .execute(params![
                        i64::from(member.0),
                        day,
                        t.threat,
                        u64_sql(t.observed),
                        u64_sql(t.resolved),
                        u64_sql(t.infected),
                        unresolved,
                        u64_sql(t.notified),
                        u64_sql(t.remediated),
                        u64_sql(t.escalated),
                        now.as_micros(),
                        ttr
                    ])
                    .sql()?;
                    out.threats += 1;
                }
            }
            tx.commit().sql()?;
            Ok(out)
        })
    }

    fn member_stats(&self, member: MemberId, from: NaiveDate, to: NaiveDate) -> Result<Vec<DayStats>> {
        self.read(|c| Ok(read_days(c, Some(member), from, to)?.into_iter().map(|(_, d)| d).collect()))
    }

    fn all_stats(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<(MemberId, DayStats)>> {
        self.read(|c| read_days(c, None, from, to))
    }

    fn member_remediation_days(
        &self,
        member: MemberId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<RemediationDays>> {
        self.read(|c| Ok(read_remediation(c, Some(member), from, to)?.into_iter().map(|(_, r)| r).collect()))
    }

    fn all_remediation_days(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<(MemberId, RemediationDays)>> {
        self.read(|c| read_remediation(c, None, from, to))
    }
}

#[cfg(test)]
mod tests {
    use crate::sqlite::SqliteStore;
    use crate::{MemberSpec, Store};
    use kizuna_model::{MemberId, Timestamp};

    #[test]
    fn sqlite_passes_the_stats_conformance_checks() {
        for on_disk in [false, true] {
            let dir = tempfile::tempdir().expect("dir");
            let s = if on_disk {
                SqliteStore::open(&dir.path().join("s.sqlite")).expect("open")
            } else {
                SqliteStore::open_in_memory().expect("open")
            };
            let spec = |n: &str| MemberSpec { name: n.into(), ..Default::default() };
            let a = s.add_member(&spec("a"), Timestamp::now()).expect("a");
            let b = s.add_member(&spec("b"), Timestamp::now()).expect("b");
            crate::stats::conformance::run_all(&s, a.id, b.id, MemberId(999)).expect("conformance");
        }
    }

    #[test]
    fn a_database_from_before_time_to_remediation_gets_the_column() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("old.sqlite");
        {
            let c = rusqlite::Connection::open(&p).expect("open");
            let old = super::SCHEMA.replace(
                "    remediation_days TEXT NOT NULL DEFAULT '{}', -- JSON object days → cases (time to remediation)\n",
                "",
            );
            assert_ne!(old, super::SCHEMA);
            c.execute_batch(&old).expect("old schema");
        }
        let s = SqliteStore::open(&p).expect("open and migrate");
        let spec = |n: &str| MemberSpec { name: n.into(), ..Default::default() };
        let a = s.add_member(&spec("a"), Timestamp::now()).expect("a");
        let b = s.add_member(&spec("b"), Timestamp::now()).expect("b");
        crate::stats::conformance::run_all(&s, a.id, b.id, MemberId(999)).expect("conformance after migration");
    }
}
