//! The crawler's configuration (`kizuna-crawl.example.toml`). Unknown keys are rejected.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::CrawlError;

/// Everything the crawler needs; every section has defaults.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CrawlConfig {
    /// Where the crawler keeps its own state (`crawl.sqlite`, the raw crawl log, quarantine).
    pub data_dir: Option<PathBuf>,
    /// The browser identity presented to sites.
    pub identity: Identity,
    /// Depth, breadth, size and time limits.
    pub limits: Limits,
    /// Politeness: per-host rate and concurrency.
    pub rate: Rate,
    /// TLS trust.
    pub tls: Tls,
    /// Host name → address overrides (`"blog.example.jp" = "127.0.0.1:8080"`): the port given
    /// here is used when the URL has none.
    pub resolve: BTreeMap<String, SocketAddr>,
    /// Rules and lists used to judge what was fetched.
    pub judge: Judge,
    /// How findings are labelled for the hub.
    pub report: Report,
    /// Telling site owners.
    pub notify: Notify,
    /// The hub: where observations go and known-bad indicators come from.
    pub hub: HubLink,
    /// Run metrics for Prometheus.
    pub metrics: Metrics,
    /// Seed feeds polled by every run.
    pub seeds: Seeds,
}

/// Seed feeds: URL lists fetched over http(s) at the start of every run (plain text, or CSV with
/// a `url` column: see `kizuna_crawl::seeds`). A feed URL crawled less than
/// `recrawl_after_hours` ago is skipped, so a run every hour crawls what is new.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Seeds {
    /// Feed URLs (the CLI's `--seeds-feed` adds to these).
    pub feeds: Vec<String>,
    /// Hours before a URL a feed still lists is crawled again.
    pub recrawl_after_hours: u64,
    /// Largest feed read, bytes (after decompression); a bigger one is refused, not cut.
    pub max_feed_bytes: u64,
}

impl Default for Seeds {
    fn default() -> Self {
        Seeds { feeds: Vec::new(), recrawl_after_hours: 24, max_feed_bytes: 64 << 20 }
    }
}

/// Run metrics (Prometheus text exposition format).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Written (atomically: temporary file, fsync, rename) at the end of every run, for
    /// node_exporter's textfile collector (`--collector.textfile.directory`); the file name must
    /// end in `.prom`. The CLI's `--metrics-file` overrides it.
    pub textfile: Option<PathBuf>,
}

/// The hub link (the CLI's `--hub` and `--token-file` override these).
///
/// Observations go through the spool (`<data_dir>/spool/`): a batch file is removed only after
/// the hub acknowledged it; failed deliveries are retried with doubling delays, and what is left
/// is sent at the next run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubLink {
    /// Base URL, e.g. `https://hub.isac.example`.
    pub url: Option<String>,
    /// File holding the sensor token used to push observations.
    pub sensor_token_file: Option<PathBuf>,
    /// File holding a member or analyst token used to read `GET /api/v1/indicators` (active
    /// URL, domain and hash indicators join the judge's known-bad lists). Unset: files only.
    pub indicator_token_file: Option<PathBuf>,
    /// Observations per spooled batch (one hub request each).
    pub batch_observations: usize,
    /// First delay after a failed delivery, milliseconds (doubles after each failure).
    pub retry_initial_ms: u64,
    /// Longest delay between attempts, milliseconds.
    pub retry_max_ms: u64,
    /// How long the end of a run keeps retrying, seconds; the rest stays spooled for the next run.
    pub retry_for_secs: u64,
}

impl Default for HubLink {
    fn default() -> Self {
        HubLink {
            url: None,
            sensor_token_file: None,
            indicator_token_file: None,
            batch_observations: 1000,
            retry_initial_ms: 500,
            retry_max_ms: 30_000,
            retry_for_secs: 120,
        }
    }
}

/// The identity of the "vulnerable browser" the crawler plays.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Identity {
    /// `User-Agent`.
    pub user_agent: String,
    /// `Accept`.
    pub accept: String,
    /// `Accept-Language`.
    pub accept_language: String,
    /// A free-form name of the browser/plug-in profile played (recorded with every chain).
    pub profile: String,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            user_agent: "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko".into(),
            accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8".into(),
            accept_language: "ja,en;q=0.8".into(),
            profile: "ie11-win7-flash-java".into(),
        }
    }
}

/// Limits per chain and per fetch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Hops from the seed (each redirect, refresh, iframe, script is one hop).
    pub max_depth: u32,
    /// Links followed out of one page.
    pub max_breadth: u32,
    /// Fetches in one chain.
    pub max_pages_per_chain: u32,
    /// Bytes of a page (after decompression) that are read and parsed; the rest is not read.
    pub max_page_bytes: u64,
    /// Bytes of a download (after decompression) that are read, hashed and scanned.
    pub max_download_bytes: u64,
    /// TCP+TLS connect timeout, milliseconds.
    pub connect_timeout_ms: u64,
    /// Longest wait for the next bytes of a response, milliseconds.
    pub read_timeout_ms: u64,
    /// Longest time for one whole fetch, milliseconds.
    pub total_timeout_ms: u64,
    /// How long an idle keep-alive connection is kept for the next request to its host,
    /// milliseconds.
    pub idle_connection_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 8,
            max_breadth: 16,
            max_pages_per_chain: 64,
            max_page_bytes: 2 << 20,
            max_download_bytes: 32 << 20,
            connect_timeout_ms: 5_000,
            read_timeout_ms: 10_000,
            total_timeout_ms: 30_000,
            idle_connection_ms: 5_000,
        }
    }
}

/// Politeness towards each host, and overall parallelism.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rate {
    /// Chains crawled at once.
    pub concurrency: usize,
    /// Requests in flight to one host at once.
    pub per_host_concurrency: usize,
    /// Sustained requests per second to one host (token bucket rate).
    pub per_host_rps: f64,
    /// Bucket size: requests allowed back to back before the rate applies.
    pub per_host_burst: u32,
}

impl Default for Rate {
    fn default() -> Self {
        Rate { concurrency: 32, per_host_concurrency: 2, per_host_rps: 2.0, per_host_burst: 4 }
    }
}

/// TLS trust: the web PKI roots plus the operator's extra roots.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// PEM files of extra root certificates to trust.
    pub extra_root_certs: Vec<PathBuf>,
    /// Do not trust the built-in web PKI roots (only the extra ones).
    pub no_builtin_roots: bool,
}

/// What fetched content is judged with.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Judge {
    /// Directory of YARA rule files (`*.yar`, `*.yara`), compiled once at start.
    pub yara_dir: Option<PathBuf>,
    /// Files of known-bad hashes (one MD5/SHA-1/SHA-256 per line, `#` comments; an optional
    /// second whitespace-separated column names the family).
    pub bad_hash_files: Vec<PathBuf>,
    /// Files of known-bad URLs or host names (one per line, `#` comments).
    pub bad_url_files: Vec<PathBuf>,
    /// Keep a copy of each judged download in `<data_dir>/quarantine/<sha256>` (mode 0600).
    pub quarantine: bool,
}

/// Labels on what goes to the hub.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Report {
    /// `feed.name`.
    pub feed_name: String,
    /// `feed.provider`.
    pub provider: Option<String>,
    /// TLP of every observation.
    pub tlp: String,
    /// Legal basis of every observation.
    pub legal_basis: String,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            feed_name: "kizuna-crawl".into(),
            provider: None,
            tlp: "AMBER".into(),
            legal_basis: "legitimate-business".into(),
        }
    }
}

/// Owner notification.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notify {
    /// Send notices at all.
    pub enabled: bool,
    /// SMTP relay host.
    pub smtp_host: String,
    /// SMTP relay port.
    pub smtp_port: u16,
    /// `plain` (no TLS, for a local MTA), `starttls` or `tls`.
    pub smtp_security: String,
    /// `From:` address of notices.
    pub from: String,
    /// Name of the sending organisation, in the notice text.
    pub organisation: String,
    /// Days after a notice until the site is crawled again.
    pub recheck_after_days: u32,
    /// Abuse contacts of hosting networks: RDAP JSON files (RFC 9083 ip network objects, or an
    /// array of them) and/or CSV files `prefix,email`.
    pub abuse_contact_files: Vec<PathBuf>,
}

impl Default for Notify {
    fn default() -> Self {
        Notify {
            enabled: false,
            smtp_host: "localhost".into(),
            smtp_port: 25,
            smtp_security: "plain".into(),
            from: "crawler@isac.invalid".into(),
            organisation: "kizuna ISAC".into(),
            recheck_after_days: 7,
            abuse_contact_files: Vec::new(),
        }
    }
}

impl CrawlConfig {
    /// Parses TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, CrawlError> {
        let c: CrawlConfig =
            toml::from_str(text).map_err(|e| CrawlError::Config(format!("{origin}: {}", e.to_string().trim())))?;
        c.validate().map_err(|e| CrawlError::Config(format!("{origin}: {e}")))?;
        Ok(c)
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, CrawlError> {
        let text = std::fs::read_to_string(path).map_err(|e| CrawlError::io(path, e))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    fn validate(&self) -> Result<(), String> {
        self.report.tlp.parse::<kizuna_model::Tlp>().map_err(|e| format!("report.tlp: {e}"))?;
        self.report.legal_basis.parse::<kizuna_model::LegalBasis>().map_err(|e| format!("report.legal_basis: {e}"))?;
        if self.rate.per_host_rps.is_nan() || self.rate.per_host_rps <= 0.0 {
            return Err("rate.per_host_rps must be > 0".into());
        }
        if self.rate.concurrency == 0 || self.rate.per_host_concurrency == 0 || self.rate.per_host_burst == 0 {
            return Err("rate.concurrency, rate.per_host_concurrency and rate.per_host_burst must be ≥ 1".into());
        }
        if self.hub.batch_observations == 0 {
            return Err("hub.batch_observations must be ≥ 1".into());
        }
        if let Some(t) = &self.metrics.textfile
            && t.extension().is_none_or(|x| x != "prom")
        {
            return Err(format!("metrics.textfile {}: the textfile collector reads only *.prom files", t.display()));
        }
        if !matches!(self.notify.smtp_security.as_str(), "plain" | "starttls" | "tls") {
            return Err(format!("notify.smtp_security {:?}: use plain, starttls or tls", self.notify.smtp_security));
        }
        Ok(())
    }

    /// `data_dir`, or `./kizuna-crawl` when unset.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| PathBuf::from("kizuna-crawl"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_unknown_keys_are_rejected() {
        let text = include_str!("../../../kizuna-crawl.example.toml");
        let c = CrawlConfig::from_toml(text, "kizuna-crawl.example.toml").expect("example parses");
        assert_eq!(c.identity.accept_language, "ja,en;q=0.8");
        assert_eq!(c.limits.max_download_bytes, 32 << 20);
        assert_eq!(c.report.tlp, "AMBER");
        assert_eq!((c.hub.batch_observations, c.hub.retry_initial_ms, c.hub.retry_for_secs), (1000, 500, 120));
        assert_eq!((c.seeds.feeds.len(), c.seeds.recrawl_after_hours, c.seeds.max_feed_bytes), (0, 24, 64 << 20));
        let e = CrawlConfig::from_toml("[metrics]\ntextfile = \"/tmp/m.txt\"\n", "m.toml").expect_err("not .prom");
        assert!(e.to_string().contains("metrics.textfile"), "{e}");
        let e = CrawlConfig::from_toml("[limits]\nmax_dept = 3\n", "x.toml").expect_err("typo rejected");
        assert!(e.to_string().contains("x.toml") && e.to_string().contains("max_dept"), "{e}");
        let e = CrawlConfig::from_toml("[report]\ntlp = \"PURPLE\"\n", "y.toml").expect_err("bad tlp");
        assert!(e.to_string().contains("report.tlp"), "{e}");
        let c = CrawlConfig::from_toml("[resolve]\n\"blog.example.jp\" = \"127.0.0.1:8080\"\n", "z").expect("resolve");
        assert_eq!(c.resolve["blog.example.jp"].port(), 8080);
    }
}
