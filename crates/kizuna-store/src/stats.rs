//! Member statistics: the counts each ISP agent reports per day and threat, and nothing else.
//!
//! An agent posts, per UTC day, its subscriber base size and per threat
//! (`classification.type/family`) how many observations it pulled, resolved and could not
//! resolve (by reason), how many distinct subscribers were seen ("infected"), and how many were
//! notified, remediated and escalated. From these the hub shows an infection rate per 1,000
//! subscribers (as the Cyber Clean Center's CCM) and remediation rates.
//!
//! Posting is idempotent: a day's subscriber count and a (day, threat)'s counts replace what was
//! stored for them, so an agent re-posts the last days freely.
//!
//! **Invariant:** only numbers and short tokens from fixed vocabularies are stored
//! ([`valid_token`]): no free text that could carry a subscriber identity.

use std::collections::BTreeMap;

use kizuna_model::{MemberId, Timestamp};

use crate::{Result, StoreError};

pub use chrono::{Days, NaiveDate};

/// One threat's counts on one day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreatCounts {
    /// `classification.type/family`.
    pub threat: String,
    /// Observations the agent pulled.
    pub observed: u64,
    /// Resolved to a subscriber.
    pub resolved: u64,
    /// Distinct subscribers with a resolved observation.
    pub infected: u64,
    /// Unresolved, by reason.
    pub unresolved: BTreeMap<String, u64>,
    /// First notices issued.
    pub notified: u64,
    /// Cases remediated.
    pub remediated: u64,
    /// Cases escalated.
    pub escalated: u64,
}

/// One day of a member's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayStats {
    /// The UTC day.
    pub day: NaiveDate,
    /// The subscriber base size reported for it.
    pub subscribers: u64,
    /// Per threat, ordered by threat.
    pub threats: Vec<ThreatCounts>,
}

/// What a post stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsOutcome {
    /// Days stored (new or replaced).
    pub days: u64,
    /// (day, threat) rows stored (new or replaced).
    pub threats: u64,
}

/// Longest threat key or reason accepted.
pub const MAX_TOKEN: usize = 80;

/// A threat key or unresolved reason: 1–80 characters of `[a-z0-9._/-]`.
pub fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_TOKEN
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-' | b'/'))
}

/// Checks a post before storing it: tokens from the allowed alphabet, no day twice, no threat
/// twice in a day.
pub fn validate(days: &[DayStats]) -> Result<()> {
    let mut seen_days = std::collections::BTreeSet::new();
    for d in days {
        if !seen_days.insert(d.day) {
            return Err(StoreError::Conflict(format!("day {} given twice", d.day)));
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in &d.threats {
            if !valid_token(&t.threat) {
                return Err(StoreError::Conflict(format!(
                    "threat {:?} on {}: use 1-{MAX_TOKEN} characters of [a-z0-9._/-]",
                    t.threat, d.day
                )));
            }
            if !seen.insert(t.threat.as_str()) {
                return Err(StoreError::Conflict(format!("threat {} given twice on {}", t.threat, d.day)));
            }
            if let Some(r) = t.unresolved.keys().find(|r| !valid_token(r)) {
                return Err(StoreError::Conflict(format!("unresolved reason {r:?}: use [a-z0-9._/-]")));
            }
        }
    }
    Ok(())
}

/// Durable member statistics.
pub trait StatsStore: Send + Sync {
    /// Stores `days` for `member` in one transaction: each day's subscriber count and each
    /// (day, threat)'s counts replace what was stored for them. Invalid input ([`validate`])
    /// stores nothing and fails with [`StoreError::Conflict`]; an unknown member with
    /// [`StoreError::NotFound`].
    fn put_stats(&self, member: MemberId, days: &[DayStats], now: Timestamp) -> Result<StatsOutcome>;

    /// A member's statistics for the days `from..=to`, by day (threats ordered by threat).
    fn member_stats(&self, member: MemberId, from: NaiveDate, to: NaiveDate) -> Result<Vec<DayStats>>;

    /// Every member's statistics for the days `from..=to`, by member then day.
    fn all_stats(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<(MemberId, DayStats)>>;
}

/// Conformance checks every [`StatsStore`] backend must pass. `member` and `other` must be two
/// existing members with no statistics yet; `missing` a member id that does not exist.
pub mod conformance {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    fn counts(threat: &str, observed: u64) -> ThreatCounts {
        ThreatCounts {
            threat: threat.into(),
            observed,
            resolved: observed.saturating_sub(1),
            infected: 1,
            unresolved: [("no-session".to_owned(), 1)].into_iter().collect(),
            notified: 1,
            remediated: 0,
            escalated: 0,
        }
    }

    fn check(ok: bool, what: &str) -> Result<()> {
        if ok { Ok(()) } else { Err(StoreError::Backend(format!("stats conformance: {what}"))) }
    }

    /// Runs every check; the first failure is returned.
    pub fn run_all(s: &dyn StatsStore, member: MemberId, other: MemberId, missing: MemberId) -> Result<()> {
        let now = Timestamp::from_secs(1_772_700_000);
        let d1 = DayStats {
            day: day("2026-03-05"),
            subscribers: 1000,
            threats: vec![counts("infected-system/mirai", 5), counts("vulnerable-system/open-telnet", 2)],
        };
        let d2 =
            DayStats { day: day("2026-03-06"), subscribers: 1001, threats: vec![counts("infected-system/mirai", 3)] };
        let o = s.put_stats(member, &[d1.clone(), d2.clone()], now)?;
        check(o == StatsOutcome { days: 2, threats: 3 }, "first post stores 2 days, 3 threats")?;
        let got = s.member_stats(member, day("2026-03-01"), day("2026-03-31"))?;
        check(got == vec![d1.clone(), d2.clone()], "read back what was posted, threats ordered")?;

        // Re-posting replaces, never adds.
        let mut d2b = d2.clone();
        d2b.threats[0].observed = 9;
        d2b.subscribers = 1002;
        s.put_stats(member, std::slice::from_ref(&d2b), now)?;
        s.put_stats(member, std::slice::from_ref(&d2b), now)?;
        let got = s.member_stats(member, day("2026-03-06"), day("2026-03-06"))?;
        check(got == vec![d2b.clone()], "re-posting a day replaces its counts")?;

        // Members are separate.
        check(s.member_stats(other, day("2026-03-01"), day("2026-03-31"))?.is_empty(), "other member sees nothing")?;
        s.put_stats(other, std::slice::from_ref(&d1), now)?;
        let all = s.all_stats(day("2026-03-05"), day("2026-03-05"))?;
        check(all.len() == 2 && all.iter().all(|(_, d)| d == &d1), "all_stats lists both members' day")?;

        // Range bounds are inclusive and exclusive of other days.
        check(s.member_stats(member, day("2026-03-07"), day("2026-03-31"))?.is_empty(), "empty range")?;

        // Invalid input stores nothing.
        let mut bad = d1.clone();
        bad.day = day("2026-04-01");
        bad.threats.push(counts("Taro Yamada <taro@example.jp>", 1));
        check(matches!(s.put_stats(member, &[bad], now), Err(StoreError::Conflict(_))), "free text is refused")?;
        check(s.member_stats(member, day("2026-04-01"), day("2026-04-01"))?.is_empty(), "nothing of a refused post")?;
        let dup =
            DayStats { day: day("2026-04-02"), subscribers: 1, threats: vec![counts("a/b", 1), counts("a/b", 2)] };
        check(matches!(s.put_stats(member, &[dup], now), Err(StoreError::Conflict(_))), "duplicate threat refused")?;
        check(
            matches!(s.put_stats(missing, std::slice::from_ref(&d1), now), Err(StoreError::NotFound(_))),
            "unknown member refused",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_a_closed_alphabet() {
        assert!(valid_token("infected-system/mirai"));
        assert!(valid_token("no-session"));
        assert!(!valid_token(""));
        assert!(!valid_token("MARKER-7f3a"));
        assert!(!valid_token("taro@example.jp"));
        assert!(!valid_token(&"a".repeat(81)));
    }
}
