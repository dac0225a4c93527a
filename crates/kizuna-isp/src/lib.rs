//! The ISP agent: the half of kizuna that runs at a member ISP, next to its session logs.
//!
//! It pulls the member's observations from the hub ([`hub::HubClient`]), finds which subscriber
//! had each address (and port) at that time ([`resolve::Resolver`], over the session logs that
//! `kizuna-sessions` indexes), maps the session's user name or hardware address to a subscriber
//! in the ISP's own directory ([`store::AgentStore`]), opens one case per subscriber and threat,
//! and runs the graduated response ([`cases`]): notice, observation period, reminder, final
//! notice, then escalation (recorded, never executed) or remediation (nothing seen for N days).
//! Notices are rendered from templates the ISP edits ([`notice`]), sent by SMTP ([`mail`]) or
//! exported as postal letters ([`letters`]), and link to a per-notice countermeasure page
//! ([`page`]). Only counts per day and threat go back to the hub ([`stats`]).
//!
//! Main types: [`agent::Agent`] (the loop), [`config::AgentConfig`] (TOML), [`clock::Clock`]
//! (so tests drive time).
//!
//! **Architecture invariant:** subscriber identities (names, e-mail and postal addresses, user
//! names, hardware addresses, session ids) live only in the agent's own database. Nothing that
//! leaves the agent for the hub carries one: the stats payload is built from fixed counters and
//! the hub's own vocabulary (classification types, malware families it sent), never from the
//! directory or the session logs.

pub mod agent;
pub mod cases;
pub mod clock;
pub mod config;
pub mod consent;
pub mod console;
pub mod hub;
pub mod letters;
pub mod mail;
pub mod metrics;
pub mod notice;
pub mod page;
pub mod resolve;
pub mod stats;
pub mod store;
pub mod subscribers;
pub mod warning;

/// Errors of the agent library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error("config: {0}")]
    Config(String),
    /// The agent's database failed.
    #[error("agent store: {0}")]
    Store(String),
    /// The hub could not be reached or answered with an error.
    #[error("hub: {0}")]
    Hub(String),
    /// A template could not be loaded or rendered.
    #[error("template {name}: {reason}")]
    Template {
        /// The template's file name.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// Sending mail failed.
    #[error("smtp: {0}")]
    Smtp(String),
    /// Bad input (a CSV row, an argument).
    #[error("{0}")]
    Input(String),
    /// File IO.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Not found.
    #[error("not found: {0}")]
    NotFound(String),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Store(e.to_string())
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.display().to_string(), source }
}

/// 32 random bytes, hex-encoded: an unguessable token.
pub(crate) fn random_token() -> Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| Error::Store(format!("no randomness: {e}")))?;
    Ok(hex::encode(b))
}

/// SHA-256 of a token, as stored.
pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}
