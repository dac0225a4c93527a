//! Member statistics: the counts each ISP agent reports per day and threat, and nothing else.
//!
//! An agent posts, per UTC day, its subscriber base size and per threat
//! (`classification.type/family`) how many observations it pulled, resolved and could not
//! resolve (by reason), how many distinct subscribers were seen ("infected"), and how many were
//! notified, remediated and escalated. From these the hub shows an infection rate per 1,000
//! subscribers (as the Cyber Clean Center's CCM) and remediation rates.
//!
//! Time to remediation travels as counts too: per (day, threat), a histogram of whole days from
//! a case's first notice to its remediation, for the cases remediated that day
//! ([`RemediationDays`], posted with the counts and stored in the same transaction): no case id, no subscriber, only "n cases took d days".
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

/// Time to remediation of one (day, threat): of the cases remediated that day, how many took
/// how many whole days from their first notice (days → cases). At most the day's `remediated`
/// cases in all, each at most [`MAX_REMEDIATION_DAYS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemediationDays {
    /// The UTC day the cases were remediated.
    pub day: NaiveDate,
    /// `classification.type/family` (a threat of that day's counts).
    pub threat: String,
    /// Days → cases.
    pub days: BTreeMap<u32, u64>,
}

/// Longest time to remediation accepted, days (ten years).
pub const MAX_REMEDIATION_DAYS: u32 = 3650;

/// The `p`-quantile (0 < p ≤ 1) of a days → count histogram by nearest rank: the smallest `d`
/// with at least ⌈p·n⌉ of the n cases at or below it (so the median of 4 cases is the second
/// smallest). `None` for an empty histogram.
pub fn quantile_days(hist: &BTreeMap<u32, u64>, p: f64) -> Option<u32> {
    let n: u64 = hist.values().sum();
    if n == 0 {
        return None;
    }
    let rank = ((p.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (d, c) in hist {
        seen += c;
        if seen >= rank {
            return Some(*d);
        }
    }
    hist.keys().next_back().copied()
}

/// Adds histogram `b` into `a`.
pub fn merge_days(a: &mut BTreeMap<u32, u64>, b: &BTreeMap<u32, u64>) {
    for (d, c) in b {
        *a.entry(*d).or_default() += c;
    }
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

/// Checks time-to-remediation histograms against the counts they come with: each names a
/// (day, threat) of `days`, at most once, with days ≤ [`MAX_REMEDIATION_DAYS`], counts > 0 and
/// no more cases than that threat's `remediated`.
pub fn validate_remediation(days: &[DayStats], ttr: &[RemediationDays]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for r in ttr {
        if !seen.insert((r.day, r.threat.as_str())) {
            return Err(StoreError::Conflict(format!("remediation_days of {} on {} given twice", r.threat, r.day)));
        }
        let Some(t) = days.iter().filter(|d| d.day == r.day).flat_map(|d| &d.threats).find(|t| t.threat == r.threat)
        else {
            return Err(StoreError::Conflict(format!(
                "remediation_days of {} on {}: no counts for that day and threat",
                r.threat, r.day
            )));
        };
        if let Some(n) = r.days.keys().find(|n| **n > MAX_REMEDIATION_DAYS) {
            return Err(StoreError::Conflict(format!(
                "remediation_days of {} on {}: {n} days is more than {MAX_REMEDIATION_DAYS}",
                r.threat, r.day
            )));
        }
        let cases = r.days.values().try_fold(0u64, |a, c| a.checked_add(*c));
        if cases.is_none_or(|n| n > t.remediated) || r.days.values().any(|c| *c == 0) {
            return Err(StoreError::Conflict(format!(
                "remediation_days of {} on {}: counts must be > 0 and add up to at most remediated ({})",
                r.threat, r.day, t.remediated
            )));
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
    fn put_stats(&self, member: MemberId, days: &[DayStats], now: Timestamp) -> Result<StatsOutcome> {
        self.put_stats_with_remediation(member, days, &[], now)
    }

    /// [`StatsStore::put_stats`] with the time-to-remediation histograms of those days, in the
    /// same transaction: each (day, threat) posted replaces its histogram (none given: none
    /// kept). Invalid histograms ([`validate_remediation`]) store nothing.
    fn put_stats_with_remediation(
        &self,
        member: MemberId,
        days: &[DayStats],
        remediation: &[RemediationDays],
        now: Timestamp,
    ) -> Result<StatsOutcome>;

    /// A member's time-to-remediation histograms for the days `from..=to`, by day then threat.
    fn member_remediation_days(&self, member: MemberId, from: NaiveDate, to: NaiveDate)
    -> Result<Vec<RemediationDays>>;

    /// Every member's histograms for the days `from..=to`, by member, day, threat.
    fn all_remediation_days(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<(MemberId, RemediationDays)>>;

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

        // Time to remediation: a histogram per (day, threat), read back and replaced with it.
        let mut d3 =
            DayStats { day: day("2026-02-20"), subscribers: 1001, threats: vec![counts("infected-system/mirai", 4)] };
        d3.threats[0].remediated = 4;
        let h = |pairs: &[(u32, u64)]| pairs.iter().copied().collect::<BTreeMap<u32, u64>>();
        let r3 = RemediationDays {
            day: d3.day,
            threat: "infected-system/mirai".into(),
            days: h(&[(7, 2), (9, 1), (30, 1)]),
        };
        s.put_stats_with_remediation(member, std::slice::from_ref(&d3), std::slice::from_ref(&r3), now)?;
        check(s.member_stats(member, d3.day, d3.day)? == vec![d3.clone()], "counts with a histogram")?;
        let got = s.member_remediation_days(member, day("2026-02-01"), day("2026-02-28"))?;
        check(got == vec![r3.clone()], "remediation_days read back")?;
        check(quantile_days(&got[0].days, 0.5) == Some(7), "median of 7,7,9,30")?;
        check(quantile_days(&got[0].days, 0.9) == Some(30), "p90 of 7,7,9,30")?;
        let r3b = RemediationDays { days: h(&[(8, 1)]), ..r3.clone() };
        s.put_stats_with_remediation(member, std::slice::from_ref(&d3), std::slice::from_ref(&r3b), now)?;
        check(
            s.member_remediation_days(member, d3.day, d3.day)? == vec![r3b.clone()],
            "re-posting replaces the histogram, never adds",
        )?;
        check(s.member_remediation_days(other, d3.day, d3.day)?.is_empty(), "the other member has none")?;
        let all = s.all_remediation_days(d3.day, d3.day)?;
        check(all == vec![(member, r3b.clone())], "all_remediation_days")?;
        for bad in [
            RemediationDays { days: h(&[(MAX_REMEDIATION_DAYS + 1, 1)]), ..r3.clone() },
            RemediationDays { days: h(&[(7, 5)]), ..r3.clone() },
            RemediationDays { days: h(&[(7, 0)]), ..r3.clone() },
            RemediationDays { threat: "infected-system/other".into(), ..r3.clone() },
        ] {
            let mut d = d3.clone();
            d.subscribers = 5;
            check(
                matches!(
                    s.put_stats_with_remediation(member, std::slice::from_ref(&d), &[bad], now),
                    Err(StoreError::Conflict(_))
                ),
                "too many days, more cases than remediated, an empty bucket or no such threat is refused",
            )?;
        }
        check(s.member_stats(member, d3.day, d3.day)? == vec![d3.clone()], "nothing of a refused post")?;
        check(s.member_remediation_days(member, d3.day, d3.day)? == vec![r3b.clone()], "histogram kept")?;
        s.put_stats(member, std::slice::from_ref(&d3), now)?;
        check(s.member_remediation_days(member, d3.day, d3.day)?.is_empty(), "re-posted without one: none kept")?;
        let got = s.member_stats(member, day("2026-03-01"), day("2026-03-31"))?;
        check(got == vec![d1.clone(), d2b.clone()], "other days untouched")?;

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
