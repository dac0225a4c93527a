//! The counts that go back to the hub, built from the agent's daily counters only.
//!
//! **Invariant:** the payload is assembled from fixed counter names, threat keys (the hub's own
//! `classification.type/family`), unresolved reasons (a fixed vocabulary) and numbers. Nothing
//! from the subscriber directory or the session logs can reach it.

use kizuna_model::Timestamp;

use crate::Result;
use crate::clock::day_of;
use crate::hub::{StatsDay, StatsPayload, ThreatDay};
use crate::store::AgentStore;

/// Unresolved reasons that may be reported (anything else is reported as `other`).
pub const REASONS: &[&str] = &[
    "no-session",
    "outside-session",
    "ambiguous",
    "port-required",
    "no-port-block",
    "open-session-too-old",
    "clock-skew",
    crate::resolve::UNKNOWN_SUBSCRIBER,
    crate::resolve::NO_ADDRESS,
];

/// Builds the payload for the `days` UTC days up to and including `now`'s. Time to remediation
/// is the histogram of whole days from each remediated case's first notice to its remediation,
/// under the day and threat it was remediated (where the `remediated` counter counted it).
pub fn payload(store: &AgentStore, now: Timestamp, days: u32) -> Result<StatsPayload> {
    let to = day_of(now);
    let from = day_of(Timestamp::from_micros(now.as_micros() - crate::clock::days(u64::from(days.max(1)) - 1)));
    let counts = store.daily_counts(&from, &to)?;
    let mut ttr: std::collections::BTreeMap<(String, String), std::collections::BTreeMap<u32, u64>> =
        Default::default();
    for (day, threat, days) in store.remediation_times(&from, &to)? {
        *ttr.entry((day, threat)).or_default().entry(days).or_default() += 1;
    }
    let mut out: Vec<StatsDay> = Vec::new();
    for c in counts {
        if out.last().map(|d| d.day != c.day).unwrap_or(true) {
            let subscribers = store.subscriber_base(&c.day)?.unwrap_or(0);
            out.push(StatsDay { day: c.day.clone(), subscribers, threats: Vec::new() });
        }
        let get = |k: &str| c.counts.get(k).copied().unwrap_or(0);
        let mut t = ThreatDay {
            threat: c.threat.clone(),
            observed: get("observed"),
            resolved: get("resolved"),
            infected: c.infected,
            notified: get("notified"),
            remediated: get("remediated"),
            escalated: get("escalated"),
            remediation_days: ttr.remove(&(c.day.clone(), c.threat.clone())).unwrap_or_default(),
            ..Default::default()
        };
        for (k, v) in &c.counts {
            if let Some(reason) = k.strip_prefix("unresolved:") {
                let reason = if REASONS.contains(&reason) { reason } else { "other" };
                *t.unresolved.entry(reason.to_owned()).or_default() += v;
            }
        }
        if let Some(d) = out.last_mut() {
            d.threats.push(t);
        }
    }
    // Days with no activity still report the subscriber base (for rates per 1,000).
    if out.iter().all(|d| d.day != to) {
        let subscribers = store.subscriber_base(&to)?.unwrap_or(0);
        out.push(StatsDay { day: to, subscribers, threats: Vec::new() });
    }
    Ok(StatsPayload { days: out })
}
