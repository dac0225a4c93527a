//! [`IndicatorStore`] for [`SqliteStore`]: a child module of `sqlite` so it shares the writer
//! connection, the reader pool and the error mapping.
//!
//! Tables (created by [`migrate`], run from `SqliteStore::migrate`):
//!
//! | table | key | holds |
//! |---|---|---|
//! | `indicators` | key | the record as JSON in `body`, plus the columns filters and the change feed use (`kind`, `value`, `category`, `state`, `expires`, `change_seq` (unique), `sources`, `conflict`, `shared_host`) |
//! | `indicator_allowlist` | origin, pattern | allow-list entries |
//! | `indicator_meta` | name | the newest `change_seq` |
//!
//! `change_seq` is assigned inside the writer's `BEGIN IMMEDIATE` transaction, so numbers are
//! handed out in commit order and a reader never sees a higher number before a lower one.

use std::collections::HashMap;

use kizuna_model::{
    ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp, canonical_value, indicator_key,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Value, json};

use super::{Sql, SqliteStore, collect_rows, corrupt, limit_sql, u64_sql};
use crate::indicators::{
    ANALYST_SOURCE_PREFIX, AllowEntry, AllowMatcher, AllowPattern, AllowScope, AllowlistOutcome, IndicatorCount,
    IndicatorFilter, IndicatorKey, IndicatorRecord, IndicatorState, IndicatorStore, Provenance, UpsertOutcome,
    Withdrawal, merge_indicator, provenance_of,
};
use crate::{Result, StoreError};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS indicators (
    key         BLOB PRIMARY KEY,
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    category    TEXT NOT NULL,
    state       TEXT NOT NULL,
    expires     INTEGER NOT NULL,
    change_seq  INTEGER NOT NULL UNIQUE,
    sources     TEXT NOT NULL,
    conflict    TEXT,
    shared_host TEXT,
    body        TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS indicators_state_expires ON indicators (state, expires);
CREATE INDEX IF NOT EXISTS indicators_category_state ON indicators (category, state);
CREATE TABLE IF NOT EXISTS indicator_allowlist (
    origin  TEXT NOT NULL,
    pattern TEXT NOT NULL,
    scope   TEXT NOT NULL,
    note    TEXT NOT NULL,
    PRIMARY KEY (origin, pattern)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS indicator_meta (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
"#;

/// Creates the indicator tables if they are missing.
pub(super) fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch(SCHEMA).sql()
}

const DEFAULT_LIMIT: usize = 1000;

const COLUMNS: &str = "key, state, change_seq, conflict, shared_host, body";

fn state_from(s: &str) -> Result<IndicatorState> {
    s.parse().map_err(|e: kizuna_model::UnknownValue| corrupt("indicator state", e.to_string()))
}

fn ts(v: &Value, what: &str) -> Result<Timestamp> {
    v.as_i64().map(Timestamp::from_micros).ok_or_else(|| corrupt("indicator body", format!("{what} is not a time")))
}

fn text(v: &Value, what: &str) -> Result<String> {
    v.as_str().map(str::to_owned).ok_or_else(|| corrupt("indicator body", format!("{what} is not text")))
}

fn parse_field<T: std::str::FromStr>(v: &Value, what: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let s = v.as_str().ok_or_else(|| corrupt("indicator body", format!("{what} is not text")))?;
    s.parse().map_err(|e: T::Err| corrupt("indicator body", format!("{what}: {e}")))
}

fn encode_body(r: &IndicatorRecord) -> String {
    let i = &r.indicator;
    let prov: Vec<Value> = r
        .provenance
        .iter()
        .map(|p| {
            json!({
                "source": p.source, "category": p.category.as_str(), "reason": p.reason,
                "confidence": p.confidence, "tlp": p.tlp.as_str(), "legal_basis": p.legal_basis.as_str(),
                "first_seen": p.first_seen.as_micros(), "last_seen": p.last_seen.as_micros(),
            })
        })
        .collect();
    json!({
        "kind": i.kind.as_str(), "value": i.value, "category": i.category.as_str(), "source": i.source,
        "confidence": i.confidence, "first_seen": i.first_seen.as_micros(), "last_seen": i.last_seen.as_micros(),
        "expires": i.expires.as_micros(), "reason": i.reason, "malware": i.malware, "tlp": i.tlp.as_str(),
        "sharing_groups": i.sharing_groups, "legal_basis": i.legal_basis.as_str(),
        "provenance": prov,
        "withdrawal": r.withdrawal.as_ref().map(|w| json!({"by": w.by, "reason": w.reason, "at": w.at.as_micros()})),
        "created": r.created.as_micros(), "updated": r.updated.as_micros(), "version": r.version,
    })
    .to_string()
}

fn decode_body(
    key: IndicatorKey,
    state: IndicatorState,
    change_seq: u64,
    conflict: Option<String>,
    shared_host: Option<String>,
    body: &str,
) -> Result<IndicatorRecord> {
    let v: Value = serde_json::from_str(body).map_err(|e| corrupt("indicator body", e.to_string()))?;
    let conf = |x: &Value, what: &str| {
        x.as_u64().and_then(|n| u8::try_from(n).ok()).ok_or_else(|| corrupt("indicator body", format!("{what} bad")))
    };
    let indicator = Indicator {
        kind: parse_field::<IndicatorKind>(&v["kind"], "kind")?,
        value: text(&v["value"], "value")?,
        category: parse_field::<ClassificationType>(&v["category"], "category")?,
        source: text(&v["source"], "source")?,
        confidence: conf(&v["confidence"], "confidence")?,
        first_seen: ts(&v["first_seen"], "first_seen")?,
        last_seen: ts(&v["last_seen"], "last_seen")?,
        expires: ts(&v["expires"], "expires")?,
        reason: text(&v["reason"], "reason")?,
        malware: v["malware"].as_str().map(str::to_owned),
        tlp: parse_field::<Tlp>(&v["tlp"], "tlp")?,
        sharing_groups: v["sharing_groups"]
            .as_array()
            .map(|a| a.iter().filter_map(|g| g.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        legal_basis: parse_field::<LegalBasis>(&v["legal_basis"], "legal_basis")?,
    };
    let mut provenance = Vec::new();
    for p in v["provenance"].as_array().map(Vec::as_slice).unwrap_or_default() {
        provenance.push(Provenance {
            source: text(&p["source"], "provenance.source")?,
            category: parse_field::<ClassificationType>(&p["category"], "provenance.category")?,
            reason: text(&p["reason"], "provenance.reason")?,
            confidence: conf(&p["confidence"], "provenance.confidence")?,
            tlp: parse_field::<Tlp>(&p["tlp"], "provenance.tlp")?,
            legal_basis: parse_field::<LegalBasis>(&p["legal_basis"], "provenance.legal_basis")?,
            first_seen: ts(&p["first_seen"], "provenance.first_seen")?,
            last_seen: ts(&p["last_seen"], "provenance.last_seen")?,
        });
    }
    let withdrawal = match &v["withdrawal"] {
        Value::Null => None,
        w => Some(Withdrawal {
            by: text(&w["by"], "withdrawal.by")?,
            reason: text(&w["reason"], "withdrawal.reason")?,
            at: ts(&w["at"], "withdrawal.at")?,
        }),
    };
    Ok(IndicatorRecord {
        key,
        indicator,
        state,
        conflict,
        shared_host,
        provenance,
        withdrawal,
        created: ts(&v["created"], "created")?,
        updated: ts(&v["updated"], "updated")?,
        version: v["version"].as_u64().ok_or_else(|| corrupt("indicator body", "version bad"))?,
        change_seq,
    })
}

fn record_from_row(r: &rusqlite::Row<'_>) -> Result<IndicatorRecord> {
    let key: Vec<u8> = r.get(0).sql()?;
    let key: IndicatorKey = key.as_slice().try_into().map_err(|_| corrupt("indicator key", "not 16 bytes"))?;
    let state: String = r.get(1).sql()?;
    let seq: i64 = r.get(2).sql()?;
    let body: String = r.get(5).sql()?;
    decode_body(
        key,
        state_from(&state)?,
        u64::try_from(seq).map_err(|_| corrupt("indicator change_seq", "negative"))?,
        r.get(3).sql()?,
        r.get(4).sql()?,
        &body,
    )
    .map_err(|e| match e {
        StoreError::Corrupt { what, reason } => corrupt(format!("{what} of {}", hex::encode(key)), reason),
        e => e,
    })
}

fn load(tx: &Connection, key: &IndicatorKey) -> Result<Option<IndicatorRecord>> {
    let mut st = tx.prepare_cached(&format!("SELECT {COLUMNS} FROM indicators WHERE key = ?1")).sql()?;
    let mut rows = st.query([&key[..]]).sql()?;
    rows.next().sql()?.map(record_from_row).transpose()
}

fn current_seq(c: &Connection) -> Result<u64> {
    let n: Option<i64> =
        c.query_row("SELECT n FROM indicator_meta WHERE name = 'change_seq'", [], |r| r.get(0)).optional().sql()?;
    Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}

fn set_seq(c: &Connection, n: u64) -> Result<()> {
    c.execute(
        "INSERT INTO indicator_meta (name, n) VALUES ('change_seq', ?1) ON CONFLICT (name) DO UPDATE SET n = excluded.n",
        [u64_sql(n)],
    )
    .sql()
    .map(|_| ())
}

fn sources_column(r: &IndicatorRecord) -> String {
    let mut s = String::from("\n");
    for p in &r.provenance {
        s.push_str(&p.source);
        s.push('\n');
    }
    s
}

fn save(tx: &Connection, r: &IndicatorRecord) -> Result<()> {
    let mut st = tx
        .prepare_cached(
            "INSERT INTO indicators (key, kind, value, category, state, expires, change_seq, sources, conflict, \
             shared_host, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (key) DO UPDATE SET \
             kind = excluded.kind, value = excluded.value, category = excluded.category, state = excluded.state, \
             expires = excluded.expires, change_seq = excluded.change_seq, sources = excluded.sources, \
             conflict = excluded.conflict, shared_host = excluded.shared_host, body = excluded.body",
        )
        .sql()?;
    st.execute(params![
        &r.key[..],
        r.indicator.kind.as_str(),
        r.indicator.value,
        r.indicator.category.as_str(),
        r.state.as_str(),
        r.indicator.expires.as_micros(),
        u64_sql(r.change_seq),
        sources_column(r),
        r.conflict,
        r.shared_host,
        encode_body(r),
    ])
    .sql()?;
    Ok(())
}

fn load_allowlist(c: &Connection) -> Result<Vec<AllowEntry>> {
    let mut st = c
        .prepare_cached("SELECT origin, pattern, scope, note FROM indicator_allowlist ORDER BY origin, pattern")
        .sql()?;
    collect_rows(&mut st, [], |r| {
        let origin: String = r.get(0).sql()?;
        let pattern: String = r.get(1).sql()?;
        let scope: String = r.get(2).sql()?;
        Ok(AllowEntry {
            pattern: AllowPattern::parse(&pattern).map_err(|e| corrupt(format!("allow-list entry {pattern}"), e))?,
            scope: if scope == "all" { AllowScope::All } else { AllowScope::Host },
            origin,
            note: r.get(3).sql()?,
        })
    })
}

/// The state a record should have: withdrawn stays withdrawn; past expiry is expired;
/// a conflict is allow-listed; else active.
fn settle(r: &mut IndicatorRecord, m: &AllowMatcher, now: Timestamp) {
    let v = m.evaluate(r.indicator.kind, &r.indicator.value);
    r.conflict = v.conflict;
    r.shared_host = v.shared_host;
    r.state = if r.withdrawal.is_some() {
        IndicatorState::Withdrawn
    } else if r.indicator.expires <= now {
        IndicatorState::Expired
    } else if r.conflict.is_some() {
        IndicatorState::AllowListed
    } else {
        IndicatorState::Active
    };
}

fn validate(i: &Indicator) -> Result<()> {
    match canonical_value(i.kind, &i.value) {
        Ok(v) if v == i.value => {}
        Ok(v) => {
            return Err(StoreError::Conflict(format!(
                "{} indicator {:?} is not canonical (canonical: {v:?})",
                i.kind, i.value
            )));
        }
        Err(e) => return Err(StoreError::Conflict(e.to_string())),
    }
    if i.confidence > 100 {
        return Err(StoreError::Conflict(format!("indicator {:?}: confidence {} above 100", i.value, i.confidence)));
    }
    if i.source.is_empty() {
        return Err(StoreError::Conflict(format!("indicator {:?}: empty source", i.value)));
    }
    Ok(())
}

impl IndicatorStore for SqliteStore {
    fn upsert_indicators(&self, batch: &[Indicator], now: Timestamp) -> Result<UpsertOutcome> {
        for i in batch {
            validate(i)?;
        }
        self.write(|w| {
            let tx = w.conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let matcher = AllowMatcher::new(&load_allowlist(&tx)?);
            // key → (existed before, the record, changed)
            let mut pending: HashMap<IndicatorKey, (bool, IndicatorRecord, bool)> = HashMap::new();
            let mut order: Vec<IndicatorKey> = Vec::new();
            for i in batch {
                let key = indicator_key(i.kind, &i.value);
                let (rec, changed) = match pending.entry(key) {
                    std::collections::hash_map::Entry::Occupied(e) => {
                        let (_, rec, changed) = e.into_mut();
                        (rec, changed)
                    }
                    std::collections::hash_map::Entry::Vacant(e) => {
                        order.push(key);
                        match load(&tx, &key)? {
                            Some(r) => {
                                let (_, rec, changed) = e.insert((true, r, false));
                                (rec, changed)
                            }
                            None => {
                                let mut ind = i.clone();
                                ind.sharing_groups.sort();
                                ind.sharing_groups.dedup();
                                e.insert((
                                    false,
                                    IndicatorRecord {
                                        key,
                                        indicator: ind,
                                        state: IndicatorState::Active,
                                        conflict: None,
                                        shared_host: None,
                                        provenance: vec![provenance_of(i)],
                                        withdrawal: None,
                                        created: now,
                                        updated: now,
                                        version: 0,
                                        change_seq: 0,
                                    },
                                    true,
                                ));
                                continue; // a new record: the sighting is already in it
                            }
                        }
                    }
                };
                let mut c = merge_indicator(rec, i);
                if rec.withdrawal.is_some() && i.source.starts_with(ANALYST_SOURCE_PREFIX) {
                    rec.withdrawal = None;
                    c = true;
                }
                *changed |= c;
            }
            let mut seq = current_seq(&tx)?;
            let mut out = UpsertOutcome::default();
            for key in &order {
                let Some((existed, rec, changed)) = pending.get_mut(key) else { continue };
                let before = (rec.state, rec.conflict.clone(), rec.shared_host.clone());
                settle(rec, &matcher, now);
                let settled_changed = before != (rec.state, rec.conflict.clone(), rec.shared_host.clone());
                if !*changed && !settled_changed {
                    continue;
                }
                seq += 1;
                rec.change_seq = seq;
                rec.version += 1;
                rec.updated = now;
                save(&tx, rec)?;
                if *existed {
                    out.updated += 1;
                } else {
                    out.inserted += 1;
                }
                if rec.state == IndicatorState::AllowListed {
                    out.allowlisted += 1;
                }
            }
            out.unchanged = batch.len() as u64 - out.inserted - out.updated;
            set_seq(&tx, seq)?;
            tx.commit().sql()?;
            Ok(out)
        })
    }

    fn withdraw_indicator(&self, key: IndicatorKey, by: &str, reason: &str, now: Timestamp) -> Result<IndicatorRecord> {
        self.write(|w| {
            let tx = w.conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let mut rec =
                load(&tx, &key)?.ok_or_else(|| StoreError::NotFound(format!("indicator {}", hex::encode(key))))?;
            if rec.withdrawal.is_some() {
                return Ok(rec);
            }
            let seq = current_seq(&tx)? + 1;
            rec.withdrawal = Some(Withdrawal { by: by.to_owned(), reason: reason.to_owned(), at: now });
            rec.state = IndicatorState::Withdrawn;
            rec.change_seq = seq;
            rec.version += 1;
            rec.updated = now;
            save(&tx, &rec)?;
            set_seq(&tx, seq)?;
            tx.commit().sql()?;
            Ok(rec)
        })
    }

    fn indicator(&self, key: IndicatorKey) -> Result<Option<IndicatorRecord>> {
        self.read(|c| load(c, &key))
    }

    fn list_indicators(&self, f: &IndicatorFilter) -> Result<Vec<IndicatorRecord>> {
        let limit = if f.limit == 0 { DEFAULT_LIMIT } else { f.limit };
        self.read(|c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM indicators WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR category = ?2) \
                     AND (?3 IS NULL OR state = ?3) AND (?4 IS NULL OR instr(sources, char(10) || ?4 || char(10)) > 0) \
                     AND (?5 IS NULL OR instr(lower(value), lower(?5)) > 0) AND (?6 IS NULL OR change_seq < ?6) \
                     ORDER BY change_seq DESC LIMIT ?7"
                ))
                .sql()?;
            collect_rows(
                &mut st,
                params![
                    f.kind.map(|k| k.as_str()),
                    f.category.map(|k| k.as_str()),
                    f.state.map(|k| k.as_str()),
                    f.source,
                    f.search,
                    f.after.map(u64_sql),
                    limit_sql(limit)
                ],
                record_from_row,
            )
        })
    }

    fn indicator_changes_since(&self, after: u64, limit: usize) -> Result<Vec<IndicatorRecord>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM indicators WHERE change_seq > ?1 ORDER BY change_seq LIMIT ?2"
                ))
                .sql()?;
            collect_rows(&mut st, params![u64_sql(after), limit_sql(limit)], record_from_row)
        })
    }

    fn indicator_change_seq(&self) -> Result<u64> {
        self.read(current_seq)
    }

    fn active_indicators(&self, now: Timestamp) -> Result<Vec<IndicatorRecord>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM indicators WHERE state = 'active' AND expires > ?1 ORDER BY key"
                ))
                .sql()?;
            collect_rows(&mut st, [now.as_micros()], record_from_row)
        })
    }

    fn expire_indicators(&self, now: Timestamp) -> Result<u64> {
        self.write(|w| {
            let tx = w.conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let due = {
                let mut st = tx
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM indicators WHERE state IN ('active', 'allow-listed') AND expires <= ?1 \
                         ORDER BY change_seq"
                    ))
                    .sql()?;
                collect_rows(&mut st, [now.as_micros()], record_from_row)?
            };
            let mut seq = current_seq(&tx)?;
            for mut rec in due.iter().cloned() {
                seq += 1;
                rec.state = IndicatorState::Expired;
                rec.change_seq = seq;
                rec.version += 1;
                rec.updated = now;
                save(&tx, &rec)?;
            }
            set_seq(&tx, seq)?;
            tx.commit().sql()?;
            Ok(due.len() as u64)
        })
    }

    fn set_allowlist(&self, origin: &str, entries: &[AllowEntry], now: Timestamp) -> Result<AllowlistOutcome> {
        let mut new: Vec<AllowEntry> =
            entries.iter().cloned().map(|e| AllowEntry { origin: origin.to_owned(), ..e }).collect();
        new.sort_by_key(|a| a.pattern.to_string());
        new.dedup_by(|a, b| a.pattern == b.pattern);
        self.write(|w| {
            let tx = w.conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let all = load_allowlist(&tx)?;
            let mut old: Vec<AllowEntry> = all.iter().filter(|e| e.origin == origin).cloned().collect();
            old.sort_by_key(|a| a.pattern.to_string());
            let mut out =
                AllowlistOutcome { removed_entries: old.len() as u64, entries: new.len() as u64, ..Default::default() };
            if old == new {
                return Ok(out);
            }
            tx.execute("DELETE FROM indicator_allowlist WHERE origin = ?1", [origin]).sql()?;
            {
                let mut st = tx
                    .prepare_cached("INSERT INTO indicator_allowlist (origin, pattern, scope, note) VALUES (?1, ?2, ?3, ?4)")
                    .sql()?;
                for e in &new {
                    st.execute(params![origin, e.pattern.to_string(), e.scope.as_str(), e.note]).sql()?;
                }
            }
            let matcher = AllowMatcher::new(&load_allowlist(&tx)?);
            // Only the columns that decide the verdict are read for every record; a record is
            // decoded and rewritten only when its verdict changes.
            let changed_keys = {
                let mut st = tx
                    .prepare_cached("SELECT key, kind, value, state, conflict, shared_host FROM indicators WHERE state != 'withdrawn'")
                    .sql()?;
                let mut rows = st.query([]).sql()?;
                let mut keys = Vec::new();
                while let Some(r) = rows.next().sql()? {
                    let key: Vec<u8> = r.get(0).sql()?;
                    let kind: String = r.get(1).sql()?;
                    let value: String = r.get(2).sql()?;
                    let conflict: Option<String> = r.get(4).sql()?;
                    let shared: Option<String> = r.get(5).sql()?;
                    let kind: IndicatorKind =
                        kind.parse().map_err(|e: kizuna_model::UnknownValue| corrupt("indicator kind", e.to_string()))?;
                    let v = matcher.evaluate(kind, &value);
                    if v.conflict != conflict || v.shared_host != shared {
                        let key: IndicatorKey =
                            key.as_slice().try_into().map_err(|_| corrupt("indicator key", "not 16 bytes"))?;
                        keys.push(key);
                    }
                }
                keys
            };
            let mut seq = current_seq(&tx)?;
            for key in changed_keys {
                let Some(mut rec) = load(&tx, &key)? else { continue };
                let was = rec.state;
                settle(&mut rec, &matcher, now);
                match (was, rec.state) {
                    (a, IndicatorState::AllowListed) if a != IndicatorState::AllowListed => out.newly_allowlisted += 1,
                    (IndicatorState::AllowListed, b) if b != IndicatorState::AllowListed => out.released += 1,
                    _ => out.updated += 1,
                }
                seq += 1;
                rec.change_seq = seq;
                rec.version += 1;
                rec.updated = now;
                save(&tx, &rec)?;
            }
            set_seq(&tx, seq)?;
            tx.commit().sql()?;
            Ok(out)
        })
    }

    fn allowlist(&self) -> Result<Vec<AllowEntry>> {
        self.read(load_allowlist)
    }

    fn indicator_counts(&self) -> Result<Vec<IndicatorCount>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT category, state, count(*) FROM indicators GROUP BY category, state ORDER BY 1, 2",
                )
                .sql()?;
            collect_rows(&mut st, [], |r| {
                let cat: String = r.get(0).sql()?;
                let state: String = r.get(1).sql()?;
                let n: i64 = r.get(2).sql()?;
                Ok(IndicatorCount {
                    category: cat.parse().map_err(|e: kizuna_model::UnknownClassification| {
                        corrupt("indicator category", e.to_string())
                    })?,
                    state: state_from(&state)?,
                    count: u64::try_from(n).unwrap_or(0),
                })
            })
        })
    }
}
