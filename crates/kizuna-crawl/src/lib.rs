//! kizuna-crawl: the drive-by chain crawler sensor.
//!
//! From seed URLs the crawler visits pages the way a vulnerable browser would (without running
//! anything), follows redirects, meta refreshes, `location` assignments, iframes, cross-host
//! scripts, plug-in objects and download links, records every hop as a graph ([`Chain`]),
//! hashes and scans what it fetched ([`Judge`]: YARA-X rules, known-bad hash and URL lists),
//! gives each URL a role ([`Verdict`]: entry, redirector, exploit, distribution, clean, error),
//! turns the malicious ones into observations for the hub ([`report`]), and tells the owners of
//! compromised sites ([`notify`], [`contact`], [`cases`]).
//!
//! Safety: redirects are followed by the crawler (each hop recorded), bodies are read up to a
//! cap after decompression, nothing downloaded is executed or written executable (quarantine
//! files are mode 0600), host names can be pinned to addresses ([`CrawlConfig::resolve`]) so
//! whole scenarios run on loopback.

pub mod cases;
pub mod config;
pub mod contact;
pub mod crawler;
pub mod fetch;
pub mod html;
pub mod judge;
pub mod metrics;
pub mod notify;
pub mod report;
pub mod seeds;
pub mod spool;

use std::path::Path;

pub use config::CrawlConfig;
pub use crawler::{Chain, Crawler, Edge, Node, Verdict};
pub use judge::Judge;

/// Errors of the crawler's setup and its outside peers (never of one page: a page's problems
/// become evidence on its node).
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    /// Bad configuration.
    #[error("config: {0}")]
    Config(String),
    /// A rule file failed to compile.
    #[error("yara rules: {0}")]
    Rules(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The hub refused or failed.
    #[error("hub: {0}")]
    Hub(String),
    /// The crawler's own database.
    #[error("crawl.sqlite: {0}")]
    Db(#[from] rusqlite::Error),
    /// Sending mail failed.
    #[error("smtp: {0}")]
    Mail(String),
    /// A contact data file is malformed.
    #[error("{0}")]
    Contacts(String),
}

impl CrawlError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> CrawlError {
        CrawlError::Io { path: path.display().to_string(), source }
    }
}

/// Re-exported for callers that hold the crawler's HTTP clients.
pub use reqwest;
/// Re-exported: seeds are `url::Url`s.
pub use url::Url;
