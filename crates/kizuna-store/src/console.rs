//! Console state: web-console users and sessions, and the aggregates the console pages read
//! instead of scanning observations.
//!
//! Aggregates are maintained by the backend **in the same transaction** as the batch that adds
//! the observations (so a re-ingested duplicate never counts twice and a failed batch counts
//! nothing):
//! - per hour (of `time.source`, else `time.observation`) × `feed.name` × `classification.type`;
//! - per UTC day × member (observations routed);
//! - per `feed.name` × `feed.provider` (sensor): newest event time, newest commit time, count;
//! - search terms (`source.fqdn`, `source.url`, `destination.fqdn`, `destination.url`,
//!   `malware.hash.*`) → observation sequence numbers, so a domain/URL/hash search is an index
//!   probe. (IP search uses the core store's `by_source_ip`.)
//!
//! Member pulls (last `report.read` per member) are folded in from the audit log incrementally
//! by [`ConsoleStore::refresh_pulls`] (a watermark on the audit sequence), so the audit log stays
//! the one record of reads.
//!
//! Retention (`Store::expire`) does not lower the hourly and daily aggregates: they count what
//! was received, which is what ingest-over-time charts show.
//!
//! **Invariant:** console users are hub staff or member abuse-desk staff, never subscribers; only
//! the SHA-256 of a session token and an argon2 PHC string of a password are stored.

use kizuna_model::{MemberId, Timestamp};

use crate::{Result, StoreError, StoredObservation};

pub use chrono::NaiveDate;

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Sees everything, administers users, verifies the audit log.
    Operator,
    /// Sees every page but the operator pages; may search.
    Analyst,
    /// Sees the overview, members and indicators; never changes anything.
    ReadOnly,
}

impl Role {
    /// Every role.
    pub const ALL: &'static [Role] = &[Role::Operator, Role::Analyst, Role::ReadOnly];

    /// Stable spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Analyst => "analyst",
            Role::ReadOnly => "read-only",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = kizuna_model::UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Role::ALL.iter().copied().find(|r| r.as_str() == s).ok_or_else(|| kizuna_model::UnknownValue {
            kind: "console role",
            value: s.to_owned(),
            known: "operator, analyst, read-only",
        })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A console user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleUser {
    /// Store id.
    pub id: u64,
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// For a member ISP's staff: the member whose view they get (others anonymised).
    pub member: Option<MemberId>,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// Created.
    pub created: Timestamp,
    /// Disabled users cannot log in and their sessions stop working.
    pub disabled: bool,
}

/// A login session (the token itself is never stored, only its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// The user.
    pub user: ConsoleUser,
    /// CSRF token bound to the session (sent in every form).
    pub csrf: String,
    /// Created.
    pub created: Timestamp,
    /// Ends at.
    pub expires: Timestamp,
}

/// Observations in one hour from one feed with one classification type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourCount {
    /// Hour start, seconds since the epoch.
    pub hour: i64,
    /// `feed.name`.
    pub feed: String,
    /// `classification.type`.
    pub class: String,
    /// Observations.
    pub n: u64,
}

/// Observations routed to a member on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDay {
    /// UTC day.
    pub day: NaiveDate,
    /// Member.
    pub member: MemberId,
    /// Observations.
    pub n: u64,
}

/// The newest event of one sensor (feed name × provider).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freshness {
    /// `feed.name`.
    pub feed: String,
    /// `feed.provider` ("" when absent).
    pub provider: String,
    /// Newest `time.source` (else `time.observation`).
    pub last_event: Timestamp,
    /// Newest commit.
    pub last_stored: Timestamp,
    /// Observations.
    pub n: u64,
}

/// A member's report reads, folded in from the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulls {
    /// Member.
    pub member: MemberId,
    /// Newest read.
    pub last: Timestamp,
    /// Page reads.
    pub reads: u64,
    /// Observations returned over all reads.
    pub returned: u64,
}

/// Longest search term kept (longer URLs are cut at this many bytes, on a char boundary).
pub const MAX_TERM: usize = 512;

/// The search terms of an observation (lower-cased hosts; URLs as given, cut at [`MAX_TERM`]).
pub fn terms(o: &kizuna_model::Observation) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str, lower: bool| {
        let s = s.trim();
        if s.is_empty() {
            return;
        }
        let mut t = if lower { s.to_ascii_lowercase() } else { s.to_owned() };
        if t.len() > MAX_TERM {
            let mut end = MAX_TERM;
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            t.truncate(end);
        }
        if !out.contains(&t) {
            out.push(t);
        }
    };
    for e in [&o.source, &o.destination] {
        if let Some(f) = &e.fqdn {
            push(f.trim_end_matches('.'), true);
        }
        if let Some(u) = &e.url {
            push(u, false);
        }
    }
    for (k, v) in &o.extra {
        let hash_key =
            k.starts_with("malware.hash") || k.ends_with(".sha256") || k.ends_with(".md5") || k.ends_with(".sha1");
        if hash_key && let Some(s) = v.as_str() {
            push(s, true);
        }
    }
    out
}

/// Normalises a search query the way [`terms`] normalises stored terms.
pub fn normalise_query(q: &str) -> String {
    let q = q.trim();
    if q.contains("://") { q.to_owned() } else { q.trim_end_matches('.').to_ascii_lowercase() }
}

/// Durable console state.
pub trait ConsoleStore: Send + Sync {
    /// Adds a user; the name must be new ([`StoreError::Conflict`]).
    fn add_console_user(
        &self,
        name: &str,
        role: Role,
        member: Option<MemberId>,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<ConsoleUser>;

    /// Replaces a user's password hash and role; ends their sessions.
    fn update_console_user(&self, name: &str, role: Role, password_hash: Option<&str>) -> Result<ConsoleUser>;

    /// Disables (or re-enables) a user; disabling ends their sessions.
    fn set_console_user_disabled(&self, name: &str, disabled: bool) -> Result<ConsoleUser>;

    /// A user by name.
    fn console_user(&self, name: &str) -> Result<Option<ConsoleUser>>;

    /// All users by name.
    fn console_users(&self) -> Result<Vec<ConsoleUser>>;

    /// Records a session by the SHA-256 of its token.
    fn create_console_session(
        &self,
        token_hash: &[u8; 32],
        user: u64,
        csrf: &str,
        now: Timestamp,
        expires: Timestamp,
    ) -> Result<()>;

    /// A live session (not expired at `now`, user not disabled).
    fn console_session(&self, token_hash: &[u8; 32], now: Timestamp) -> Result<Option<ConsoleSession>>;

    /// Ends a session.
    fn delete_console_session(&self, token_hash: &[u8; 32]) -> Result<()>;

    /// Deletes expired sessions; returns how many.
    fn purge_console_sessions(&self, now: Timestamp) -> Result<u64>;

    /// Hourly counts for hours starting in `from..to` (seconds since the epoch).
    fn hourly_counts(&self, from: i64, to: i64) -> Result<Vec<HourCount>>;

    /// Per member and day, for days `from..=to`.
    fn member_days(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<MemberDay>>;

    /// Every sensor's freshness.
    fn freshness(&self) -> Result<Vec<Freshness>>;

    /// Folds report reads appended to the audit log since the last call into the pull
    /// aggregate; returns how many audit entries were looked at.
    fn refresh_pulls(&self) -> Result<u64>;

    /// Every member's pulls (after [`ConsoleStore::refresh_pulls`]).
    fn pulls(&self) -> Result<Vec<Pulls>>;

    /// Observations mentioning `term` (see [`terms`], [`normalise_query`]), newest first.
    fn observations_by_term(&self, term: &str, limit: usize) -> Result<Vec<StoredObservation>>;

    /// The audit anchor kept outside the store, to verify the log against
    /// ([`crate::audit::verify_store`]).
    fn console_audit_anchor(&self) -> Option<crate::audit::Anchor>;

    /// Recomputes every observation aggregate from the stored observations (for stores written
    /// before aggregates existed); returns how many observations were read.
    fn rebuild_console_aggregates(&self) -> Result<u64>;
}

/// Conformance checks for [`ConsoleStore`] backends. `store` must be empty; it needs members.
pub mod conformance {
    use super::*;
    use crate::{Batch, Store};
    use kizuna_model::{Classification, ClassificationType, Observation, Routed};

    fn check(ok: bool, what: &str) -> Result<()> {
        if ok { Ok(()) } else { Err(StoreError::Backend(format!("console conformance: {what}"))) }
    }

    fn obs(feed: &str, provider: &str, kind: ClassificationType, t: i64, n: u32) -> Observation {
        let mut o = Observation::new(feed, Classification::new(kind), Timestamp::from_secs(t));
        o.time_source = Some(Timestamp::from_secs(t));
        o.feed.provider = Some(provider.into());
        o.source.ip = Some(std::net::IpAddr::from([192, 0, 2, (n % 250) as u8]));
        o.source.port = Some(1000 + n as u16);
        o
    }

    /// Runs every check; the first failure is returned.
    pub fn run_all<S: Store + ConsoleStore>(s: &S, member: MemberId) -> Result<()> {
        let now = Timestamp::now();
        // Users and sessions.
        let u = s.add_console_user("alice", Role::Analyst, None, "$argon2id$x", now)?;
        check(u.role == Role::Analyst && !u.disabled, "user added")?;
        check(
            matches!(s.add_console_user("alice", Role::Operator, None, "h", now), Err(StoreError::Conflict(_))),
            "duplicate user refused",
        )?;
        let token = [7u8; 32];
        s.create_console_session(&token, u.id, "csrf1", now, Timestamp::from_micros(now.as_micros() + 60_000_000))?;
        let sess = s.console_session(&token, now)?;
        check(sess.as_ref().is_some_and(|x| x.user.name == "alice" && x.csrf == "csrf1"), "session found")?;
        check(s.console_session(&[8u8; 32], now)?.is_none(), "unknown token has no session")?;
        let later = Timestamp::from_micros(now.as_micros() + 61_000_000);
        check(s.console_session(&token, later)?.is_none(), "expired session not returned")?;
        s.update_console_user("alice", Role::ReadOnly, Some("$argon2id$y"))?;
        check(s.console_session(&token, now)?.is_none(), "role change ends sessions")?;
        s.create_console_session(&token, u.id, "csrf2", now, later)?;
        s.set_console_user_disabled("alice", true)?;
        check(s.console_session(&token, now)?.is_none(), "disabling ends sessions")?;
        check(s.console_user("alice")?.is_some_and(|u| u.disabled && u.role == Role::ReadOnly), "user updated")?;

        // Aggregates, in the batch's transaction.
        let h0 = 1_772_668_800; // 2026-03-05T00:00:00Z
        let mut batch = Batch::default();
        for i in 0..5u32 {
            let mut o = obs("honeypot", "sensor-a", ClassificationType::Scanner, h0 + 60 * i64::from(i), i);
            if i == 0 {
                o.source.fqdn = Some("Bad.Example.".into());
            }
            batch.observations.push(Routed { id: o.id(), observation: o, member: Some(member) });
        }
        for i in 0..3u32 {
            let o = obs("ids", "sensor-b", ClassificationType::InfectedSystem, h0 + 3600 + i64::from(i), 100 + i);
            batch.observations.push(Routed { id: o.id(), observation: o, member: None });
        }
        s.commit_batch(&batch)?;
        s.commit_batch(&batch)?; // duplicates count nothing
        let hours = s.hourly_counts(h0, h0 + 7200)?;
        let get =
            |f: &str, c: &str, h: i64| hours.iter().find(|x| x.feed == f && x.class == c && x.hour == h).map(|x| x.n);
        check(get("honeypot", "scanner", h0) == Some(5), "hourly count by feed and class")?;
        check(get("ids", "infected-system", h0 + 3600) == Some(3), "hourly count in the next hour")?;
        check(hours.len() == 2, "no other hourly rows")?;
        let days = s.member_days(NaiveDate::from_ymd_opt(2026, 3, 5).unwrap_or_default(), NaiveDate::MAX)?;
        check(days.len() == 1 && days[0].member == member && days[0].n == 5, "member day count")?;
        let fresh = s.freshness()?;
        check(
            fresh.iter().any(|f| {
                f.feed == "honeypot"
                    && f.provider == "sensor-a"
                    && f.n == 5
                    && f.last_event == Timestamp::from_secs(h0 + 240)
            }),
            "freshness per sensor",
        )?;
        let found = s.observations_by_term(&normalise_query("bad.example"), 10)?;
        check(found.len() == 1, "term search finds the observation with the fqdn")?;
        check(s.observations_by_term("nothing.example", 10)?.is_empty(), "term search finds nothing else")?;
        // Rebuild gives the same aggregates.
        let n = s.rebuild_console_aggregates()?;
        check(n == 8, "rebuild reads every observation")?;
        check(s.hourly_counts(h0, h0 + 7200)? == hours, "rebuild reproduces hourly counts")?;

        // Pulls from the audit log.
        s.append_audit(&crate::AuditRecord {
            at: Timestamp::from_secs(h0 + 9000),
            actor: "member:x".into(),
            action: "report.read".into(),
            subject: format!("member:{member}"),
            detail: r#"{"returned":5}"#.into(),
        })?;
        s.refresh_pulls()?;
        check(s.refresh_pulls()? == 0, "refresh is incremental")?;
        let p = s.pulls()?;
        check(
            p.len() == 1 && p[0].member == member && p[0].reads == 1 && p[0].returned == 5,
            "pull aggregate from audit",
        )?;
        Ok(())
    }
}
