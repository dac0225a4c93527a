//! Sending e-mail notices by SMTP (lettre, STARTTLS with rustls, AUTH), from the outbox.
//!
//! A notice is never lost: it stays in the outbox until the MTA accepted it. A temporary failure
//! (connection refused, 4xx) is retried with doubling delays; after `max_send_attempts`, or at
//! once on a permanent failure (5xx, a bad address), the notice becomes a postal letter when the
//! subscriber has an address, else it is marked `failed`, reported (metric, log, `kizuna isp
//! notices list --status failed`) and kept for `kizuna isp notices retry`.

use std::time::Duration;

use kizuna_model::Timestamp;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use crate::config::{Policy, SmtpSection, read_secret};
use crate::store::{AgentStore, Notice};
use crate::{Error, Result};

/// An SMTP client for notices.
pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    domain: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    /// True when retrying cannot help (5xx, invalid address).
    pub permanent: bool,
    /// What went wrong.
    pub message: String,
}

impl Mailer {
    /// A mailer from the `[smtp]` section.
    pub fn new(cfg: &SmtpSection) -> Result<Mailer> {
        let from: Mailbox = cfg.from.parse().map_err(|e| Error::Config(format!("smtp.from {:?}: {e}", cfg.from)))?;
        let reply_to = match &cfg.reply_to {
            Some(r) => Some(r.parse().map_err(|e| Error::Config(format!("smtp.reply_to {r:?}: {e}")))?),
            None => None,
        };
        let mut builder = SmtpTransport::builder_dangerous(&cfg.host)
            .port(cfg.port)
            .timeout(Some(Duration::from_secs(cfg.timeout_secs.max(1))));
        if cfg.starttls {
            let mut tls = TlsParameters::builder(cfg.host.clone());
            if let Some(ca) = &cfg.ca_file {
                let pem = std::fs::read(ca).map_err(crate::io_err(ca))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| Error::Config(format!("smtp.ca_file {}: {e}", ca.display())))?;
                tls = tls.add_root_certificate(cert);
            }
            let tls = tls.build_rustls().map_err(|e| Error::Config(format!("smtp TLS: {e}")))?;
            builder = builder.tls(Tls::Required(tls));
        }
        match (&cfg.user, &cfg.password_file) {
            (Some(user), Some(pw)) => {
                builder = builder.credentials(Credentials::new(user.clone(), read_secret(pw)?));
            }
            (None, None) => {}
            _ => return Err(Error::Config("smtp: user and password_file go together".into())),
        }
        let domain = from.email.domain().to_owned();
        Ok(Mailer { transport: builder.build(), from, reply_to, domain })
    }

    /// Builds the MIME message of a notice: multipart/alternative, plain text and HTML, UTF-8,
    /// with an RFC 2047-encoded subject and display name.
    pub fn message(&self, n: &Notice) -> std::result::Result<(Message, String), SendFailure> {
        let permanent = |message: String| SendFailure { permanent: true, message };
        let to_addr = n.recipient.parse().map_err(|e| permanent(format!("recipient {:?}: {e}", n.recipient)))?;
        let to = Mailbox::new(Some(n.recipient_name.clone()), to_addr);
        // Stable per notice (its id, creation time and secret link, hashed): a notice sent again
        // because the agent died between the MTA's 250 and recording it carries the same
        // Message-ID, so the receiving side can drop the copy. Delivery is at-least-once.
        let tag = crate::token_hash(&format!("{}|{}|{}", n.id, n.created.as_micros(), n.link));
        let message_id = format!("<kizuna-notice-{}.{}@{}>", n.id, hex::encode(&tag[..8]), self.domain);
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(n.subject.clone())
            .message_id(Some(message_id.clone()))
            .date_now();
        if let Some(r) = &self.reply_to {
            b = b.reply_to(r.clone());
        }
        let m = b
            .multipart(MultiPart::alternative_plain_html(n.body_text.clone(), n.body_html.clone()))
            .map_err(|e| permanent(format!("building the message: {e}")))?;
        Ok((m, message_id))
    }

    /// Sends one notice; returns its Message-ID.
    pub fn send(&self, n: &Notice) -> std::result::Result<String, SendFailure> {
        let (m, id) = self.message(n)?;
        match self.transport.send(&m) {
            Ok(_) => Ok(id),
            Err(e) => Err(SendFailure { permanent: e.is_permanent(), message: e.to_string() }),
        }
    }
}

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Accepted by the MTA.
    pub sent: u64,
    /// Failed, to be retried.
    pub retried: u64,
    /// Given up on and turned into letters.
    pub to_letter: u64,
    /// Given up on with no postal address: reported, kept as failed.
    pub failed: u64,
}

/// The delay before retry number `attempt` (1-based): doubling from `initial`, at most a day.
pub fn backoff(initial_secs: u64, attempt: u32) -> i64 {
    let secs = initial_secs.max(1).saturating_mul(1u64 << attempt.saturating_sub(1).min(20)).min(86_400);
    crate::clock::secs(secs)
}

/// Sends every e-mail notice that is due at `now`.
pub fn deliver_due(store: &AgentStore, mailer: &Mailer, policy: &Policy, now: Timestamp) -> Result<DeliveryReport> {
    let mut r = DeliveryReport::default();
    for n in store.due_emails(now, 500)? {
        match mailer.send(&n) {
            Ok(id) => {
                store.mark_sent(n.id, &id, now)?;
                r.sent += 1;
            }
            Err(f) => {
                let attempt = n.attempts + 1;
                if !f.permanent && attempt < policy.max_send_attempts {
                    let at = Timestamp::from_micros(now.as_micros() + backoff(policy.retry_initial_secs, attempt));
                    tracing::warn!(notice = n.id, attempt, "sending failed, retrying at {at}: {}", f.message);
                    store.mark_failed(n.id, &f.message, Some(at), None, now)?;
                    r.retried += 1;
                    continue;
                }
                let case = store.case(n.case_id)?;
                let postal = match case {
                    Some(c) => store.subscriber(&c.subscriber)?.and_then(|s| s.postal_address),
                    None => None,
                };
                match postal {
                    Some(addr) => {
                        tracing::warn!(notice = n.id, "giving up on e-mail ({}); sending a letter instead", f.message);
                        store.mark_failed(n.id, &f.message, None, Some(&addr), now)?;
                        r.to_letter += 1;
                    }
                    None => {
                        tracing::error!(notice = n.id, "notice could not be delivered: {}", f.message);
                        store.mark_failed(n.id, &f.message, None, None, now)?;
                        r.failed += 1;
                    }
                }
            }
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(60, 1), 60_000_000);
        assert_eq!(backoff(60, 2), 120_000_000);
        assert_eq!(backoff(60, 5), 960_000_000);
        assert_eq!(backoff(60, 40), 86_400_000_000);
    }
}
