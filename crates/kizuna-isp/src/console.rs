//! The agent console (`kizuna_console::agent`) over the agent's own store: cases by state
//! with filters, a case's timeline (observations, notices, countermeasure-page visits,
//! self-reports, state changes), notice previews, unresolved observations by reason (from the
//! daily counters), the consent register's counts and the daily counts. Mounted under
//! `/console/` on the page server when `[[console_users]]` are configured.
//!
//! Staff see the ISP's own subscriber id as the reference, never names or addresses; read-only
//! users see no notice bodies (enforced by the console).

use std::sync::Arc;

use kizuna_console::agent::{AgentData, AgentUser, CaseFilter, CaseRow, NoticePreview, TimelineItem, TimelineKind};
use kizuna_model::Timestamp;
use kizuna_store::console::{NaiveDate, Role};
use kizuna_store::stats::{DayStats, ThreatCounts};
use rusqlite::{OptionalExtension, params};
use serde::Deserialize;

use crate::agent::Agent;
use crate::consent::PROTECTIVE_DNS;
use crate::store::{AgentStore, Threat};
use crate::{Error, Result};

/// `[[console_users]]`: a member of staff allowed into the agent console.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleUserConfig {
    /// Login name.
    pub name: String,
    /// `operator`, `analyst` or `read-only`.
    pub role: String,
    /// Argon2id PHC string (`kizuna console hash-password`, or any argon2id tool).
    pub password_hash: String,
}

impl ConsoleUserConfig {
    /// Checks the role and that the hash is an argon2id PHC string.
    pub fn validate(&self) -> Result<AgentUser> {
        let role: Role = self.role.parse().map_err(|_| {
            Error::Config(format!(
                "console_users {}: role {:?}: use operator, analyst or read-only",
                self.name, self.role
            ))
        })?;
        if self.name.trim().is_empty() {
            return Err(Error::Config("console_users: empty name".into()));
        }
        if !self.password_hash.starts_with("$argon2id$") {
            return Err(Error::Config(format!(
                "console_users {}: password_hash must be an argon2id PHC string ($argon2id$...), never a password",
                self.name
            )));
        }
        Ok(AgentUser { name: self.name.clone(), role, password_hash: self.password_hash.clone() })
    }
}

/// The agent console's data over the agent store.
pub struct AgentConsoleData {
    store: Arc<AgentStore>,
    name: String,
    clock: Arc<dyn crate::clock::Clock>,
}

impl std::fmt::Debug for AgentConsoleData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConsoleData").field("store", &self.store).field("name", &self.name).finish_non_exhaustive()
    }
}

impl AgentConsoleData {
    /// Over a store; `name` heads every page (the ISP's name); `clock` is the agent's (its
    /// "today" ends the remediation charts).
    pub fn new(store: Arc<AgentStore>, name: impl Into<String>, clock: Arc<dyn crate::clock::Clock>) -> Self {
        AgentConsoleData { store, name: name.into(), clock }
    }
}

/// The console routes for an agent (`None` without console users).
pub fn routes(agent: &Agent) -> Result<Option<axum::Router>> {
    if agent.config.console_users.is_empty() {
        return Ok(None);
    }
    let users = agent.config.console_users.iter().map(ConsoleUserConfig::validate).collect::<Result<Vec<_>>>()?;
    let data = AgentConsoleData::new(agent.store.clone(), agent.config.page.isp_name.clone(), agent.clock.clone());
    let secure = agent.config.page.public_base_url.starts_with("https://");
    Ok(Some(kizuna_console::agent::router(Arc::new(data), users, secure)))
}

fn s(e: Error) -> String {
    e.to_string()
}

fn row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<CaseRow> {
    Ok(CaseRow {
        id: r.get(0)?,
        state: r.get(1)?,
        threat: r.get(2)?,
        subscriber_ref: r.get(3)?,
        opened: Timestamp::from_micros(r.get(4)?),
        updated: Timestamp::from_micros(r.get(5)?),
        notices: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
    })
}

const ROW_COLS: &str = "id, state, threat, subscriber, opened, updated, notices";

impl AgentData for AgentConsoleData {
    fn member_name(&self) -> String {
        self.name.clone()
    }

    fn case_counts(&self) -> Result<Vec<(String, u64)>, String> {
        self.store
            .read(|c| {
                let mut st = c.prepare_cached("SELECT state, count(*) FROM cases GROUP BY state ORDER BY state")?;
                let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .map_err(s)
    }

    fn cases(&self, f: &CaseFilter) -> Result<Vec<CaseRow>, String> {
        self.store
            .read(|c| {
                let like = f
                    .threat
                    .as_ref()
                    .map(|t| format!("%{}%", t.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")));
                let mut st = c.prepare_cached(&format!(
                    "SELECT {ROW_COLS} FROM cases WHERE (?1 IS NULL OR state = ?1) \
                     AND (?2 IS NULL OR threat LIKE ?2 ESCAPE '\\') ORDER BY updated DESC, id DESC LIMIT ?3"
                ))?;
                let rows =
                    st.query_map(params![f.state, like, i64::try_from(f.limit.max(1)).unwrap_or(i64::MAX)], row_of)?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .map_err(s)
    }

    fn case_timeline(&self, id: i64) -> Result<Option<(CaseRow, Vec<TimelineItem>)>, String> {
        let row = self
            .store
            .read(|c| {
                Ok(c.query_row(&format!("SELECT {ROW_COLS} FROM cases WHERE id = ?1"), params![id], row_of)
                    .optional()?)
            })
            .map_err(s)?;
        let Some(row) = row else { return Ok(None) };
        let mut items = Vec::new();
        for (at, ip, port, event) in self.store.case_observations(id, 200).map_err(s)? {
            let o = kizuna_parsers::intelmq::from_json(event.as_bytes()).ok();
            let feed = o.as_ref().map(|o| o.feed.name.clone()).unwrap_or_default();
            let what = o.as_ref().map(|o| o.classification.kind.as_str().to_owned()).unwrap_or_default();
            items.push(TimelineItem {
                at,
                kind: TimelineKind::Observation,
                text: format!(
                    "{what} {}{} ({feed})",
                    ip.unwrap_or_default(),
                    port.map(|p| format!(":{p}")).unwrap_or_default()
                ),
                notice: None,
            });
        }
        for n in self.store.notices_of_case(id).map_err(s)? {
            items.push(TimelineItem {
                at: n.created,
                kind: TimelineKind::Notice,
                text: format!("{} notice by {} ({})", n.kind.as_str(), n.channel, n.status),
                notice: Some(n.id),
            });
        }
        let visits: Vec<(i64, i64)> = self
            .store
            .read(|c| {
                let mut st =
                    c.prepare_cached("SELECT at, notice_id FROM page_visits WHERE case_id = ?1 ORDER BY at LIMIT 200")?;
                let rows = st.query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .map_err(s)?;
        for (at, notice) in visits {
            items.push(TimelineItem {
                at: Timestamp::from_micros(at),
                kind: TimelineKind::PageVisit,
                text: format!("countermeasure page opened (link of notice {notice})"),
                notice: None,
            });
        }
        for (at, note) in self.store.self_reports(id).map_err(s)? {
            let note: String = note.chars().take(200).collect();
            items.push(TimelineItem {
                at,
                kind: TimelineKind::SelfReport,
                text: if note.is_empty() { "reported the device cleaned".into() } else { format!("reported: {note}") },
                notice: None,
            });
        }
        let states: Vec<(i64, String)> = self
            .store
            .read(|c| {
                let mut st = c.prepare_cached(
                    "SELECT at, detail FROM audit WHERE subject = ?1 AND action = 'case.state' ORDER BY seq LIMIT 200",
                )?;
                let rows = st.query_map(params![format!("case:{id}")], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .map_err(s)?;
        for (at, detail) in states {
            let d: serde_json::Value = serde_json::from_str(&detail).unwrap_or_default();
            let g = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_owned();
            items.push(TimelineItem {
                at: Timestamp::from_micros(at),
                kind: TimelineKind::State,
                text: format!("{} → {}", g("from"), g("to")),
                notice: None,
            });
        }
        items.sort_by_key(|i| i.at);
        Ok(Some((row, items)))
    }

    fn notice(&self, id: i64) -> Result<Option<NoticePreview>, String> {
        Ok(self.store.notice(id).map_err(s)?.map(|n| NoticePreview {
            id: n.id,
            case: n.case_id,
            kind: n.kind.as_str().into(),
            channel: n.channel,
            status: n.status,
            subject: n.subject,
            body: n.body_text,
        }))
    }

    fn unresolved_by_reason(&self) -> Result<Vec<(String, u64)>, String> {
        self.store
            .read(|c| {
                let mut st = c.prepare_cached(
                    "SELECT substr(name, 12), sum(n) FROM daily WHERE name LIKE 'unresolved:%' GROUP BY name ORDER BY name",
                )?;
                let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .map_err(s)
    }

    fn consent_counts(&self) -> Result<Vec<(String, u64)>, String> {
        let n = self.store.consent_counts(PROTECTIVE_DNS).map_err(s)?;
        Ok(vec![("opt-in".into(), n.opt_in), ("opt-out".into(), n.opt_out), ("no-record".into(), n.no_record)])
    }

    fn today(&self) -> NaiveDate {
        self.clock.now().to_datetime().date_naive()
    }

    fn warning_views(&self) -> Result<Vec<(String, u64)>, String> {
        let mut by: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
        for (_day, category, n) in self.store.warning_views().map_err(s)? {
            *by.entry(category).or_default() += n;
        }
        Ok(by.into_iter().collect())
    }

    fn daily_counts(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<DayStats>, String> {
        let (f, t) = (from.format("%Y-%m-%d").to_string(), to.format("%Y-%m-%d").to_string());
        let counts = self.store.daily_counts(&f, &t).map_err(s)?;
        let mut out: Vec<DayStats> = Vec::new();
        for c in counts {
            let Ok(day) = NaiveDate::parse_from_str(&c.day, "%Y-%m-%d") else { continue };
            if out.last().is_none_or(|d| d.day != day) {
                let subscribers = self.store.subscriber_base(&c.day).map_err(s)?.unwrap_or(0);
                out.push(DayStats { day, subscribers, threats: Vec::new() });
            }
            let get = |k: &str| c.counts.get(k).copied().unwrap_or(0);
            // `..Default::default()`: counters the store adds later default to empty.
            #[allow(clippy::needless_update)]
            let mut tc = ThreatCounts {
                threat: Threat::from_key(&c.threat).key(),
                observed: get("observed"),
                resolved: get("resolved"),
                infected: c.infected,
                unresolved: Default::default(),
                notified: get("notified"),
                remediated: get("remediated"),
                escalated: get("escalated"),
                ..Default::default()
            };
            for (k, v) in &c.counts {
                if let Some(r) = k.strip_prefix("unresolved:") {
                    tc.unresolved.insert(r.to_owned(), *v);
                }
            }
            if let Some(d) = out.last_mut() {
                d.threats.push(tc);
            }
        }
        Ok(out)
    }
}
