//! The graduated response as a pure function: given a case's state and times, the policy and
//! the current time, what happens next.
//!
//! ```text
//! new ─notice─► notified ─grace─► observing ─(seen after notice, observe_days)─► reminded
//!   reminded ─(seen after reminder, reminder_days)─► final-notice ─(seen, final_days)─► escalated
//!   any state after a notice ─(nothing seen for remediation_days since the last notice)─► remediated
//! ```
//!
//! "Seen after a notice" means an observation whose own time is later than the notice plus the
//! grace period: hits the subscriber could not yet have acted on do not count against them.
//! New hits never send mail by themselves; only these deadlines do, so a notified subscriber is
//! not mailed again for every hit.

use kizuna_model::Timestamp;

use crate::clock::{days, secs};
use crate::config::Policy;

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CaseState {
    /// Opened; the first notice is not out yet.
    New,
    /// The first notice is out; within the grace period.
    Notified,
    /// Watching whether the host still shows up.
    Observing,
    /// A reminder is out.
    Reminded,
    /// The final notice is out.
    FinalNotice,
    /// The ISP's escalation action was recorded.
    Escalated,
    /// Nothing seen for the remediation period after a notice (closed).
    Remediated,
}

impl CaseState {
    /// Every state.
    pub const ALL: &'static [CaseState] = &[
        CaseState::New,
        CaseState::Notified,
        CaseState::Observing,
        CaseState::Reminded,
        CaseState::FinalNotice,
        CaseState::Escalated,
        CaseState::Remediated,
    ];

    /// Stable spelling (database, CLI, audit log).
    pub const fn as_str(self) -> &'static str {
        match self {
            CaseState::New => "new",
            CaseState::Notified => "notified",
            CaseState::Observing => "observing",
            CaseState::Reminded => "reminded",
            CaseState::FinalNotice => "final-notice",
            CaseState::Escalated => "escalated",
            CaseState::Remediated => "remediated",
        }
    }

    /// Parses [`CaseState::as_str`].
    pub fn parse(s: &str) -> Option<CaseState> {
        CaseState::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// True once the case is closed.
    pub const fn is_closed(self) -> bool {
        matches!(self, CaseState::Remediated)
    }
}

/// Which notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeKind {
    /// The first notice.
    First,
    /// The reminder after the observation period.
    Reminder,
    /// The final notice.
    Final,
    /// Telling the subscriber that the escalation action applies.
    Escalation,
}

impl NoticeKind {
    /// Every kind.
    pub const ALL: &'static [NoticeKind] =
        &[NoticeKind::First, NoticeKind::Reminder, NoticeKind::Final, NoticeKind::Escalation];

    /// Stable spelling; also the template file name stem.
    pub const fn as_str(self) -> &'static str {
        match self {
            NoticeKind::First => "first",
            NoticeKind::Reminder => "reminder",
            NoticeKind::Final => "final",
            NoticeKind::Escalation => "escalation",
        }
    }

    /// Parses [`NoticeKind::as_str`].
    pub fn parse(s: &str) -> Option<NoticeKind> {
        NoticeKind::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

/// The times the state machine looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseTimes {
    /// The newest observation's own time (`time.source`, else `time.observation`).
    pub last_seen: Timestamp,
    /// When the newest notice was issued.
    pub last_notice_at: Option<Timestamp>,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Issue a notice and move to a state.
    Notice(NoticeKind, CaseState),
    /// Move to a state without a notice.
    Move(CaseState),
    /// Record the escalation action, issue the escalation notice and move to `Escalated`.
    Escalate(String),
}

/// The next step for a case of `classification_type`, or `None` when nothing is due at `now`.
pub fn next_step(
    state: CaseState,
    times: CaseTimes,
    now: Timestamp,
    policy: &Policy,
    classification_type: &str,
) -> Option<Step> {
    let now = now.as_micros();
    if state == CaseState::New {
        return Some(Step::Notice(NoticeKind::First, CaseState::Notified));
    }
    if state.is_closed() {
        return None;
    }
    let notice = times.last_notice_at?.as_micros();
    let seen = times.last_seen.as_micros();
    // Remediated: nothing observed for the remediation period since the later of the last notice
    // and the last hit.
    if now.saturating_sub(notice.max(seen)) >= days(policy.remediation_days) {
        return Some(Step::Move(CaseState::Remediated));
    }
    let grace_end = notice.saturating_add(secs(policy.grace_hours.saturating_mul(3600)));
    let seen_after_notice = seen > grace_end;
    let waited = |d: u64| now.saturating_sub(notice) >= days(d);
    match state {
        CaseState::Notified if now >= grace_end => Some(Step::Move(CaseState::Observing)),
        CaseState::Observing if seen_after_notice && waited(policy.observe_days) => {
            Some(Step::Notice(NoticeKind::Reminder, CaseState::Reminded))
        }
        CaseState::Reminded if seen_after_notice && waited(policy.reminder_days) => {
            Some(Step::Notice(NoticeKind::Final, CaseState::FinalNotice))
        }
        CaseState::FinalNotice if seen_after_notice && waited(policy.final_days) => {
            Some(Step::Escalate(policy.escalation_for(classification_type).to_owned()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn t(d: f64) -> Timestamp {
        Timestamp::from_secs(1_772_668_800 + (d * DAY as f64) as i64)
    }

    fn step(state: CaseState, seen: f64, notice: Option<f64>, now: f64) -> Option<Step> {
        let times = CaseTimes { last_seen: t(seen), last_notice_at: notice.map(t) };
        next_step(state, times, t(now), &Policy::default(), "infected-system")
    }

    #[test]
    fn walks_the_whole_ladder_when_the_host_keeps_showing_up() {
        assert_eq!(step(CaseState::New, 0.0, None, 0.0), Some(Step::Notice(NoticeKind::First, CaseState::Notified)));
        // Within the 24 h grace: nothing.
        assert_eq!(step(CaseState::Notified, 0.5, Some(0.0), 0.5), None);
        assert_eq!(step(CaseState::Notified, 0.5, Some(0.0), 1.01), Some(Step::Move(CaseState::Observing)));
        // Seen on day 3, observation period of 7 days not over yet.
        assert_eq!(step(CaseState::Observing, 3.0, Some(0.0), 6.9), None);
        assert_eq!(
            step(CaseState::Observing, 3.0, Some(0.0), 7.0),
            Some(Step::Notice(NoticeKind::Reminder, CaseState::Reminded))
        );
        assert_eq!(
            step(CaseState::Reminded, 9.0, Some(7.0), 14.0),
            Some(Step::Notice(NoticeKind::Final, CaseState::FinalNotice))
        );
        assert_eq!(step(CaseState::FinalNotice, 20.0, Some(14.0), 21.0), Some(Step::Escalate("walled-garden".into())));
    }

    #[test]
    fn hits_inside_the_grace_period_do_not_count() {
        // Seen 12 h after the notice only: at day 7 no reminder, at day 7.5 remediated.
        assert_eq!(step(CaseState::Observing, 0.5, Some(0.0), 7.0), None);
        assert_eq!(step(CaseState::Observing, 0.5, Some(0.0), 7.5), Some(Step::Move(CaseState::Remediated)));
    }

    #[test]
    fn remediated_after_clean_days_from_any_notified_state() {
        for s in [CaseState::Notified, CaseState::Observing, CaseState::Reminded, CaseState::FinalNotice] {
            assert_eq!(step(s, -1.0, Some(0.0), 7.0), Some(Step::Move(CaseState::Remediated)), "{s:?}");
            assert_ne!(step(s, -1.0, Some(0.0), 6.99), Some(Step::Move(CaseState::Remediated)), "{s:?}");
        }
        assert_eq!(step(CaseState::Escalated, 22.0, Some(22.0), 29.0), Some(Step::Move(CaseState::Remediated)));
        assert_eq!(step(CaseState::Escalated, 22.0, Some(22.0), 28.0), None);
        assert_eq!(step(CaseState::Remediated, 0.0, Some(0.0), 100.0), None);
    }

    #[test]
    fn escalation_action_follows_the_threat_policy() {
        let mut p = Policy::default();
        p.threats.insert(
            "spam".into(),
            crate::config::ThreatPolicy { escalation_action: Some("port-25-block".into()), legal_basis: None },
        );
        let times = CaseTimes { last_seen: t(20.0), last_notice_at: Some(t(14.0)) };
        assert_eq!(
            next_step(CaseState::FinalNotice, times, t(21.0), &p, "spam"),
            Some(Step::Escalate("port-25-block".into()))
        );
    }

    #[test]
    fn state_names_round_trip() {
        for s in CaseState::ALL {
            assert_eq!(CaseState::parse(s.as_str()), Some(*s));
        }
        for k in NoticeKind::ALL {
            assert_eq!(NoticeKind::parse(k.as_str()), Some(*k));
        }
    }
}
