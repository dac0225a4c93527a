//! From (IP, port, time) to a subscriber of the ISP's directory.
//!
//! The session logs say which session key (RADIUS `User-Name`, DHCP hardware address or client
//! id) held an address at a time; that is `kizuna-sessions`' job, behind [`SessionLookup`]. The
//! agent then maps the key to a subscriber record in its own directory; a key the directory does
//! not know gives the reason `unknown-subscriber`. Nothing is ever guessed.

use std::net::IpAddr;
use std::sync::RwLock;

use kizuna_model::Timestamp;
use kizuna_sessions::{Resolution, SessionIndex};

use crate::Result;
use crate::store::{AgentStore, Outcome};

/// What the session logs say about an address at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionAnswer {
    /// One subscriber key held it.
    Key {
        /// The session key (user name, hardware address, `id:<client-id>`).
        key: String,
        /// A description of the session that proves it (kept in the agent store only).
        session: String,
    },
    /// No unambiguous answer; the reason (`no-session`, `ambiguous`, `port-required`, …).
    Unresolved(&'static str),
}

/// Looks addresses up in session logs. Implemented for the session index of `kizuna-sessions`
/// (kept in a lock so a tailer can add sessions while the agent resolves).
pub trait SessionLookup: Send + Sync {
    /// The session key that held `ip` (and `port`, behind CGNAT) at `at`.
    fn lookup(&self, ip: IpAddr, port: Option<u16>, at: Timestamp) -> SessionAnswer;
}

impl SessionLookup for RwLock<SessionIndex> {
    fn lookup(&self, ip: IpAddr, port: Option<u16>, at: Timestamp) -> SessionAnswer {
        let index = match self.read() {
            Ok(i) => i,
            Err(p) => p.into_inner(),
        };
        match index.resolve(ip, port, at) {
            Resolution::Resolved { subscriber, session } => {
                let mut desc = format!("{} start={}", session.source.as_str(), session.start);
                if let Some(end) = session.end {
                    desc.push_str(&format!(" end={end}"));
                }
                if let Some(nas) = &session.nas {
                    desc.push_str(&format!(" nas={nas}"));
                }
                if let Some(id) = &session.session_id {
                    desc.push_str(&format!(" id={id}"));
                }
                if let Some(pb) = &session.port_block {
                    desc.push_str(&format!(" cgnat={}:{}-{} inside={}", pb.outside, pb.port_lo, pb.port_hi, pb.inside));
                }
                SessionAnswer::Key { key: subscriber.key, session: desc }
            }
            Resolution::Unresolved(u) => SessionAnswer::Unresolved(u.as_str()),
        }
    }
}

/// The reason given when a session key is not in the subscriber directory.
pub const UNKNOWN_SUBSCRIBER: &str = "unknown-subscriber";
/// The reason given when an observation carries no source address.
pub const NO_ADDRESS: &str = "no-address";

/// Resolves one observation's address to a subscriber id of the directory.
pub fn resolve(
    sessions: &dyn SessionLookup,
    store: &AgentStore,
    ip: Option<IpAddr>,
    port: Option<u16>,
    at: Timestamp,
) -> Result<Outcome> {
    let Some(ip) = ip else { return Ok(Outcome::Unresolved(NO_ADDRESS.into())) };
    Ok(match sessions.lookup(ip, port, at) {
        SessionAnswer::Key { key, session } => match store.subscriber_for_key(&key)? {
            Some(subscriber) => Outcome::Resolved { subscriber, session },
            None => Outcome::Unresolved(UNKNOWN_SUBSCRIBER.into()),
        },
        SessionAnswer::Unresolved(why) => Outcome::Unresolved(why.into()),
    })
}
