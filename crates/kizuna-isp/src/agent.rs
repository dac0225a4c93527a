//! The agent loop: pull → resolve → cases → notices → delivery, and the daily counts.

use std::sync::Arc;
use std::time::Duration;

use kizuna_model::{Observation, Timestamp};

use crate::cases::{CaseState, CaseTimes, NoticeKind, Step, next_step};
use crate::clock::{Clock, days};
use crate::config::AgentConfig;
use crate::hub::{HubClient, PulledPage};
use crate::mail::{DeliveryReport, Mailer};
use crate::metrics::Metrics;
use crate::notice::{NoticeContext, Rendered, SeenItem, Templates};
use crate::resolve::SessionLookup;
use crate::store::{AgentStore, Case, NewNotice, Outcome, PageOutcome, Processed, Threat};
use crate::{Error, Result};

/// The running agent.
pub struct Agent {
    /// Configuration.
    pub config: AgentConfig,
    /// The agent database.
    pub store: Arc<AgentStore>,
    /// Session lookups.
    pub sessions: Arc<dyn SessionLookup>,
    /// Notice and page templates.
    pub templates: Templates,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Metrics.
    pub metrics: Metrics,
    /// Notified when the consent register changes in this process (the client zone rebuilds).
    pub consent_changed: Arc<tokio::sync::Notify>,
    /// Domains the hub publishes to this member, for the warning page.
    pub blocklist: crate::warning::BlockList,
    mailer: Option<Mailer>,
    hub: Option<HubClient>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("store", &self.store).finish_non_exhaustive()
    }
}

/// What one tick of the case machine did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Notices issued (queued in the outbox).
    pub notices: u64,
    /// State changes.
    pub transitions: u64,
    /// Cases remediated.
    pub remediated: u64,
    /// Cases escalated.
    pub escalated: u64,
}

/// The threat of an observation: `classification.type` and the family (`malware.name`, else
/// `classification.identifier`, else `-`), reduced to `[a-z0-9._-]`, at most 64 characters.
pub fn threat_of(o: &Observation) -> Threat {
    let family = o.malware.name.as_deref().or(o.classification.identifier.as_deref()).unwrap_or("-");
    let mut f: String = family
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
        .take(64)
        .collect();
    if f.is_empty() {
        f = "-".into();
    }
    Threat { ctype: o.classification.kind.as_str().to_owned(), family: f }
}

impl Agent {
    /// An agent over a store and session index. Without a `[smtp]` section notices become
    /// letters. `hub` may be `None` for offline commands (preview, cases).
    pub fn new(
        config: AgentConfig,
        store: Arc<AgentStore>,
        sessions: Arc<dyn SessionLookup>,
        clock: Arc<dyn Clock>,
        with_hub: bool,
    ) -> Result<Arc<Agent>> {
        let templates = Templates::new(config.notices.templates_dir.as_deref())?;
        let mailer = config.smtp.as_ref().map(Mailer::new).transpose()?;
        if mailer.is_none() {
            tracing::warn!(
                "no [smtp] section: subscribers with a postal address get letters; e-mail notices wait in the outbox"
            );
        }
        let hub = if with_hub { Some(HubClient::new(&config.hub)?) } else { None };
        Ok(Arc::new(Agent {
            config,
            store,
            sessions,
            templates,
            clock,
            metrics: Metrics::new(),
            consent_changed: Arc::new(tokio::sync::Notify::new()),
            blocklist: crate::warning::BlockList::default(),
            mailer,
            hub,
        }))
    }

    pub(crate) fn hub(&self) -> Result<&HubClient> {
        self.hub.as_ref().ok_or_else(|| Error::Hub("no hub client (offline command)".into()))
    }

    /// Decodes, resolves and applies one page (cursor moved in the same transaction).
    pub fn apply_page(&self, page: &PulledPage) -> Result<PageOutcome> {
        let now = self.clock.now();
        let mut items = Vec::with_capacity(page.observations.len());
        for o in &page.observations {
            let obs = match kizuna_parsers::intelmq::from_json(&o.event) {
                Ok(obs) => obs,
                Err(e) => {
                    // The hub wrote it, so this is a version mismatch: keep it as unresolved
                    // rather than stop the stream.
                    tracing::warn!(id = %o.id, "cannot decode event from the hub: {e}");
                    items.push(Processed {
                        id: o.id.clone(),
                        seq: o.seq,
                        time: now,
                        ip: None,
                        port: None,
                        threat: Threat { ctype: "undetermined".into(), family: "-".into() },
                        outcome: Outcome::Unresolved("undecodable".into()),
                        event: String::from_utf8_lossy(&o.event).into_owned(),
                    });
                    continue;
                }
            };
            let time = obs.time_source.unwrap_or(obs.time_observation);
            let ip = obs.source.ip;
            let port = obs.source.port;
            let outcome = crate::resolve::resolve(self.sessions.as_ref(), &self.store, ip, port, time)?;
            let kind = match &outcome {
                Outcome::Resolved { .. } => "resolved",
                Outcome::Unresolved(r) => r.as_str(),
            };
            Metrics::inc(&self.metrics.observations, kind, 1);
            items.push(Processed {
                id: o.id.clone(),
                seq: o.seq,
                time,
                ip,
                port,
                threat: threat_of(&obs),
                outcome,
                event: String::from_utf8_lossy(&o.event).into_owned(),
            });
        }
        let policy = &self.config.policy;
        let out = self.store.apply_page(&page.next_cursor, &items, now, &|t| policy.legal_basis_for(t))?;
        self.metrics.duplicates.inc_by(out.duplicates);
        self.metrics.cases_opened.inc_by(out.cases_opened);
        Ok(out)
    }

    /// Pulls pages until the hub has nothing more; returns the totals.
    pub async fn pull_all(&self) -> Result<PageOutcome> {
        let hub = self.hub()?;
        let mut total = PageOutcome::default();
        loop {
            let cursor = self.store.cursor()?;
            let page = match hub.page(&cursor).await {
                Ok(p) => p,
                Err(e) => {
                    self.metrics.pull_errors.inc();
                    return Err(e);
                }
            };
            let more = page.more && !page.observations.is_empty();
            let o = self.apply_page(&page)?;
            total.new += o.new;
            total.duplicates += o.duplicates;
            total.resolved += o.resolved;
            total.cases_opened += o.cases_opened;
            if !more {
                return Ok(total);
            }
        }
    }

    fn fmt_time(&self, t: Timestamp) -> String {
        let off = self.config.notices.utc_offset_minutes;
        let Some(tz) = chrono::FixedOffset::east_opt(off.saturating_mul(60)) else { return t.to_rfc3339() };
        let sign = if off < 0 { '-' } else { '+' };
        format!(
            "{} (UTC{sign}{:02}:{:02})",
            t.to_datetime().with_timezone(&tz).format("%Y-%m-%d %H:%M"),
            off.unsigned_abs() / 60,
            off.unsigned_abs() % 60
        )
    }

    /// The template context of a notice for a case (the link is filled in by the caller).
    pub fn notice_context(
        &self,
        case: &Case,
        kind: NoticeKind,
        link: &str,
        expires: Timestamp,
    ) -> Result<NoticeContext> {
        let sub = self
            .store
            .subscriber(&case.subscriber)?
            .ok_or_else(|| Error::NotFound(format!("subscriber {} of case {}", case.subscriber, case.id)))?;
        let mut seen = Vec::new();
        for (t, ip, port, event) in self.store.case_observations(case.id, self.config.notices.seen_items)? {
            let o = kizuna_parsers::intelmq::from_json(event.as_bytes()).ok();
            let protocol = o
                .as_ref()
                .map(|o| {
                    [o.protocol.transport.as_deref(), o.protocol.application.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or_default();
            seen.push(SeenItem {
                time: self.fmt_time(t),
                ip: ip.unwrap_or_default(),
                port,
                feed: o.as_ref().map(|o| o.feed.name.clone()).unwrap_or_default(),
                destination_port: o.as_ref().and_then(|o| o.destination.port),
                protocol,
                description: o.and_then(|o| o.event_description).unwrap_or_default(),
            });
        }
        let p = &self.config.policy;
        let next_step_days = match kind {
            NoticeKind::First => p.observe_days,
            NoticeKind::Reminder => p.reminder_days,
            NoticeKind::Final => p.final_days,
            NoticeKind::Escalation => p.remediation_days,
        };
        Ok(NoticeContext {
            kind: kind.as_str().into(),
            language: sub.language.clone(),
            isp_name: self.config.page.isp_name.clone(),
            support_contact: self.config.page.support_contact.clone(),
            subscriber_name: sub.name.clone(),
            case_id: case.id,
            threat_type: case.threat.ctype.clone(),
            threat_family: case.threat.family.clone(),
            first_seen: self.fmt_time(case.first_seen),
            last_seen: self.fmt_time(case.last_seen),
            hits: case.hits,
            seen,
            link: link.to_owned(),
            link_expires: self.fmt_time(expires),
            next_step_days,
            escalation_action: case
                .escalation_action
                .clone()
                .unwrap_or_else(|| p.escalation_for(&case.threat.ctype).to_owned()),
            legal_basis: case.legal_basis.as_str().into(),
            explanation: String::new(),
        })
    }

    /// Renders what the next notice of a case would be, without issuing it
    /// (`kizuna isp notices preview`). The link shows a placeholder token.
    pub fn preview(&self, case_id: i64, kind: Option<NoticeKind>) -> Result<(NoticeKind, Rendered)> {
        let case = self.store.case(case_id)?.ok_or_else(|| Error::NotFound(format!("case {case_id}")))?;
        let kind = kind.unwrap_or(match case.state {
            CaseState::New => NoticeKind::First,
            CaseState::Notified | CaseState::Observing => NoticeKind::Reminder,
            CaseState::Reminded => NoticeKind::Final,
            CaseState::FinalNotice | CaseState::Escalated | CaseState::Remediated => NoticeKind::Escalation,
        });
        let now = self.clock.now();
        let expires = Timestamp::from_micros(now.as_micros() + days(self.config.policy.token_valid_days));
        let link = format!("{}/c/PREVIEW-TOKEN", self.config.page.public_base_url.trim_end_matches('/'));
        let ctx = self.notice_context(&case, kind, &link, expires)?;
        Ok((kind, self.templates.render_notice(kind, &ctx)?))
    }

    fn build_notice(&self, case: &Case, kind: NoticeKind, now: Timestamp) -> Result<NewNotice> {
        let token = crate::random_token()?;
        let expires = Timestamp::from_micros(now.as_micros() + days(self.config.policy.token_valid_days));
        let link = format!("{}/c/{token}", self.config.page.public_base_url.trim_end_matches('/'));
        let ctx = self.notice_context(case, kind, &link, expires)?;
        let r = self.templates.render_notice(kind, &ctx)?;
        let sub = self
            .store
            .subscriber(&case.subscriber)?
            .ok_or_else(|| Error::NotFound(format!("subscriber {}", case.subscriber)))?;
        let (channel, recipient) = match (&sub.email, &sub.postal_address, self.mailer.is_some()) {
            (Some(e), _, true) => ("email", e.clone()),
            (_, Some(p), _) => ("letter", p.clone()),
            (Some(e), None, false) => ("email", e.clone()),
            (None, None, _) => {
                return Err(Error::Input(format!("subscriber {} has no e-mail nor postal address", sub.id)));
            }
        };
        Ok(NewNotice {
            kind,
            channel: channel.into(),
            language: ctx.language,
            recipient,
            recipient_name: sub.name,
            subject: r.subject,
            body_text: r.text,
            body_html: r.html,
            link,
            token_hash: crate::token_hash(&token),
            token_expires: expires,
        })
    }

    /// Advances every open case whose next step is due.
    pub fn tick(&self) -> Result<TickReport> {
        let mut r = TickReport::default();
        let policy = &self.config.policy;
        for case in self.store.cases(false, usize::MAX)? {
            let mut case = case;
            // Catch up after downtime, but at most a few steps (a new notice resets the waits).
            for _ in 0..4 {
                let now = self.clock.now();
                let times = CaseTimes { last_seen: case.last_seen, last_notice_at: case.last_notice_at };
                let Some(step) = next_step(case.state, times, now, policy, &case.threat.ctype) else { break };
                let basis = case.legal_basis;
                let done = match &step {
                    Step::Notice(kind, to) => {
                        let n = self.build_notice(&case, *kind, now)?;
                        r.notices += 1;
                        self.store.transition(case.id, case.state, *to, Some(&n), None, basis, now)?
                    }
                    Step::Move(to) => self.store.transition(case.id, case.state, *to, None, None, basis, now)?,
                    Step::Escalate(action) => {
                        let mut c = case.clone();
                        c.escalation_action = Some(action.clone());
                        let n = self.build_notice(&c, NoticeKind::Escalation, now)?;
                        r.notices += 1;
                        self.store.transition(
                            case.id,
                            case.state,
                            CaseState::Escalated,
                            Some(&n),
                            Some(action),
                            basis,
                            now,
                        )?
                    }
                };
                if done.is_none() {
                    break;
                }
                r.transitions += 1;
                let Some(next) = self.store.case(case.id)? else { break };
                Metrics::inc(&self.metrics.transitions, next.state.as_str(), 1);
                match next.state {
                    CaseState::Remediated => r.remediated += 1,
                    CaseState::Escalated if case.state != CaseState::Escalated => r.escalated += 1,
                    _ => {}
                }
                case = next;
            }
        }
        Ok(r)
    }

    /// Sends due e-mail notices (blocking SMTP: call from a blocking thread).
    pub fn deliver(&self) -> Result<DeliveryReport> {
        let Some(m) = &self.mailer else { return Ok(DeliveryReport::default()) };
        let r = crate::mail::deliver_due(&self.store, m, &self.config.policy, self.clock.now())?;
        Metrics::inc(&self.metrics.notices, "sent", r.sent);
        Metrics::inc(&self.metrics.notices, "retried", r.retried);
        Metrics::inc(&self.metrics.notices, "to-letter", r.to_letter);
        Metrics::inc(&self.metrics.notices, "failed", r.failed);
        let failed = self.store.notices_by_status("failed", None)?.len();
        self.metrics.outbox_failed.set(i64::try_from(failed).unwrap_or(i64::MAX));
        Ok(r)
    }

    /// Exports pending letters as a batch.
    pub fn export_letters(&self) -> Result<Option<crate::letters::Batch>> {
        let b = crate::letters::export_pending(&self.store, &self.config.letters_dir(), self.clock.now())?;
        if let Some(b) = &b {
            Metrics::inc(&self.metrics.notices, "exported", b.letters as u64);
        }
        Ok(b)
    }

    /// Snapshots the subscriber base and posts the counts of the last `days` days.
    pub async fn push_stats(&self, days: u32) -> Result<serde_json::Value> {
        let now = self.clock.now();
        self.store.snapshot_subscriber_base(now)?;
        let payload = crate::stats::payload(&self.store, now, days)?;
        match self.hub()?.post_stats(&payload).await {
            Ok(v) => {
                Metrics::inc(&self.metrics.stats_pushes, "ok", 1);
                Ok(v)
            }
            Err(e) => {
                Metrics::inc(&self.metrics.stats_pushes, "error", 1);
                Err(e)
            }
        }
    }

    /// One full round: pull, advance cases, deliver, export letters.
    pub async fn round(self: &Arc<Self>) -> Result<RoundReport> {
        self.store.snapshot_subscriber_base(self.clock.now())?;
        let pulled = self.pull_all().await?;
        let a = self.clone();
        let (tick, delivery, letters) = tokio::task::spawn_blocking(move || -> Result<_> {
            let tick = a.tick()?;
            let delivery = a.deliver()?;
            let letters = a.export_letters()?;
            Ok((tick, delivery, letters))
        })
        .await
        .map_err(|e| Error::Store(format!("worker: {e}")))??;
        Ok(RoundReport { pulled, tick, delivery, letters: letters.map(|b| b.letters).unwrap_or(0) })
    }

    /// Runs rounds every `hub.poll_interval_secs` (at once again while the hub has more), and
    /// pushes stats every `stats_every`, until `shutdown` resolves.
    pub async fn run(
        self: Arc<Self>,
        stats_every: Duration,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let interval = Duration::from_secs(self.config.hub.poll_interval_secs.max(1));
        let mut last_stats: Option<std::time::Instant> = None;
        let mut last_blocklist: Option<std::time::Instant> = None;
        tokio::pin!(shutdown);
        loop {
            match self.round().await {
                Ok(r) if r.pulled.new > 0 || r.tick.transitions > 0 || r.delivery.sent > 0 => {
                    tracing::info!(
                        new = r.pulled.new,
                        resolved = r.pulled.resolved,
                        cases_opened = r.pulled.cases_opened,
                        notices = r.tick.notices,
                        sent = r.delivery.sent,
                        letters = r.letters,
                        "round"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("round failed (retrying): {e}"),
            }
            let refresh = Duration::from_secs(self.config.warning.refresh_secs.max(1));
            if last_blocklist.is_none_or(|t: std::time::Instant| t.elapsed() >= refresh) {
                match self.sync_blocklist().await {
                    Ok(_) => last_blocklist = Some(std::time::Instant::now()),
                    Err(e) => tracing::warn!("syncing the warning page's block list: {e}"),
                }
            }
            if last_stats.map(|t| t.elapsed() >= stats_every).unwrap_or(true) {
                match self.push_stats(7).await {
                    Ok(_) => last_stats = Some(std::time::Instant::now()),
                    Err(e) => tracing::warn!("pushing stats: {e}"),
                }
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}

/// What one [`Agent::round`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Pull.
    pub pulled: PageOutcome,
    /// Cases.
    pub tick: TickReport,
    /// Mail.
    pub delivery: DeliveryReport,
    /// Letters exported.
    pub letters: usize,
}
