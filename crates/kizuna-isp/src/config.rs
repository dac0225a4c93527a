//! The agent's TOML configuration. Unknown keys are rejected everywhere, so a typo is an error
//! at start-up rather than a silently ignored setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use kizuna_model::LegalBasis;
use serde::Deserialize;

use crate::Error;

/// The whole agent configuration (`kizuna-isp.example.toml` documents every key).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Where the agent keeps its own database (subscribers, cases, notices, audit log).
    pub data_dir: PathBuf,
    /// The hub to pull observations from and report counts to.
    pub hub: HubSection,
    /// Session logs (RADIUS, DHCP, CGNAT).
    #[serde(default)]
    pub sessions: SessionsSection,
    /// Graduated-response timings and actions.
    #[serde(default)]
    pub policy: Policy,
    /// How notices are sent by e-mail. Without it, every notice becomes a postal letter.
    pub smtp: Option<SmtpSection>,
    /// The countermeasure page.
    pub page: PageSection,
    /// Notice templates.
    #[serde(default)]
    pub notices: NoticesSection,
    /// Cleaning tools listed on the countermeasure page.
    #[serde(default)]
    pub cleaning_tools: Vec<CleaningTool>,
    /// The consent model of the protective DNS service.
    #[serde(default)]
    pub consent: crate::consent::ConsentSection,
    /// The `rpz-client-ip` zone the agent serves to the ISP's resolvers (none: not served).
    pub client_zone: Option<crate::consent::ClientZoneSection>,
    /// The blocked-site warning page.
    #[serde(default)]
    pub warning: crate::warning::WarningSection,
    /// Staff allowed into the agent console (`/console/` on the page server).
    #[serde(default)]
    pub console_users: Vec<crate::console::ConsoleUserConfig>,
}

/// `[hub]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSection {
    /// Base URL, e.g. `https://hub.example.net:8640`.
    pub url: String,
    /// The member token (prefer `token_file`).
    pub token: Option<String>,
    /// A file holding the member token (first line).
    pub token_file: Option<PathBuf>,
    /// Observations per page.
    #[serde(default = "default_page_limit")]
    pub page_limit: usize,
    /// Seconds between polls when the hub had nothing new.
    #[serde(default = "default_poll_secs")]
    pub poll_interval_secs: u64,
    /// A PEM file of extra CA certificates to trust for the hub (e.g. a private CA).
    pub ca_file: Option<PathBuf>,
}

fn default_page_limit() -> usize {
    500
}
fn default_poll_secs() -> u64 {
    30
}

impl HubSection {
    /// The member token, from `token` or `token_file`.
    pub fn token(&self) -> Result<String, Error> {
        if let Some(t) = &self.token {
            return Ok(t.trim().to_owned());
        }
        match &self.token_file {
            Some(p) => read_secret(p),
            None => Err(Error::Config("[hub] needs token or token_file".into())),
        }
    }
}

/// Reads the first line of a secret file.
pub fn read_secret(p: &Path) -> Result<String, Error> {
    let s = std::fs::read_to_string(p).map_err(|e| Error::Config(format!("reading {}: {e}", p.display())))?;
    let line = s.lines().next().unwrap_or("").trim().to_owned();
    if line.is_empty() {
        return Err(Error::Config(format!("{} is empty", p.display())));
    }
    Ok(line)
}

/// `[sessions]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SessionsSection {
    /// Directories to watch, each with the kind of log it holds.
    #[serde(default)]
    pub dirs: Vec<SessionDir>,
    /// Where the tailer remembers how far it read each file (default: `<data_dir>/tailer.json`).
    pub state_file: Option<PathBuf>,
    /// Seconds between scans for new files and appended lines.
    #[serde(default = "default_tail_secs")]
    pub poll_interval_secs: u64,
    /// Clock skew tolerated between a sensor's time and the session logs, seconds.
    pub skew_tolerance_secs: Option<u64>,
}

fn default_tail_secs() -> u64 {
    5
}

/// One watched directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionDir {
    /// The directory.
    pub path: PathBuf,
    /// `radius`, `kea`, `dhcpd` or `cgnat`.
    pub kind: String,
}

/// `[policy]`: graduated response. All durations are in days unless the name says otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// After a notice, hits this many hours later still count as "before the subscriber could act".
    pub grace_hours: u64,
    /// Observation period after the first notice.
    pub observe_days: u64,
    /// Wait after the reminder before the final notice.
    pub reminder_days: u64,
    /// Wait after the final notice before escalating.
    pub final_days: u64,
    /// A case is remediated when nothing was observed for this many days after its last notice.
    pub remediation_days: u64,
    /// The action recorded at escalation (recorded only; never executed by the agent).
    pub escalation_action: String,
    /// The legal basis recorded for notices and state changes.
    #[serde(deserialize_with = "de_basis")]
    pub legal_basis: LegalBasis,
    /// Per `classification.type`: overrides of the legal basis (e.g. a C&C log seized under
    /// emergency evacuation) and of the escalation action.
    pub threats: BTreeMap<String, ThreatPolicy>,
    /// Failed e-mail sends are retried this many times, with doubling delays from
    /// `retry_initial_secs`, then reported as failed (and kept in the outbox).
    pub max_send_attempts: u32,
    /// First retry delay, seconds.
    pub retry_initial_secs: u64,
    /// How long a countermeasure-page link stays valid, days.
    pub token_valid_days: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            grace_hours: 24,
            observe_days: 7,
            reminder_days: 7,
            final_days: 7,
            remediation_days: 7,
            escalation_action: "walled-garden".into(),
            legal_basis: LegalBasis::LegitimateBusiness,
            threats: BTreeMap::new(),
            max_send_attempts: 8,
            retry_initial_secs: 60,
            token_valid_days: 60,
        }
    }
}

impl Policy {
    /// The legal basis for a threat's `classification.type`.
    pub fn legal_basis_for(&self, classification_type: &str) -> LegalBasis {
        self.threats.get(classification_type).and_then(|t| t.legal_basis).unwrap_or(self.legal_basis)
    }

    /// The escalation action for a threat's `classification.type`.
    pub fn escalation_for(&self, classification_type: &str) -> &str {
        self.threats
            .get(classification_type)
            .and_then(|t| t.escalation_action.as_deref())
            .unwrap_or(&self.escalation_action)
    }
}

fn de_basis<'de, D: serde::Deserializer<'de>>(d: D) -> Result<LegalBasis, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

fn de_opt_basis<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<LegalBasis>, D::Error> {
    de_basis(d).map(Some)
}

/// `[policy.threats.<classification.type>]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ThreatPolicy {
    /// Legal basis for this kind of threat.
    #[serde(default, deserialize_with = "de_opt_basis")]
    pub legal_basis: Option<LegalBasis>,
    /// Escalation action for this kind of threat (e.g. `port-25-block` for spam bots).
    pub escalation_action: Option<String>,
}

/// `[smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    /// MTA host name (also the name checked against its certificate).
    pub host: String,
    /// Port (587 for submission with STARTTLS).
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// Require STARTTLS (default true). Without it mail goes in clear: loopback relays only.
    #[serde(default = "default_true")]
    pub starttls: bool,
    /// SMTP AUTH user.
    pub user: Option<String>,
    /// File holding the SMTP AUTH password.
    pub password_file: Option<PathBuf>,
    /// The From address, e.g. `"Example ISP Abuse Desk <abuse@example.net>"`.
    pub from: String,
    /// Reply-To, when different from From.
    pub reply_to: Option<String>,
    /// A PEM file of extra CA certificates to trust for the MTA.
    pub ca_file: Option<PathBuf>,
    /// Seconds before giving up on one connection attempt.
    #[serde(default = "default_smtp_timeout")]
    pub timeout_secs: u64,
}

fn default_smtp_port() -> u16 {
    587
}
fn default_true() -> bool {
    true
}
fn default_smtp_timeout() -> u64 {
    30
}

/// `[page]`: the countermeasure site.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageSection {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The URL subscribers reach the page at (links in notices start with it).
    pub public_base_url: String,
    /// The ISP's name as shown to subscribers.
    #[serde(default = "default_isp_name")]
    pub isp_name: String,
    /// Support contact shown on the page and in notices.
    #[serde(default)]
    pub support_contact: String,
}

fn default_isp_name() -> String {
    "Your Internet provider".into()
}

/// `[notices]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticesSection {
    /// A directory of templates that override the shipped ones file by file
    /// (`first.ja.txt`, `first.en.html`, `page.ja.html`, …; see `kizuna isp templates`).
    pub templates_dir: Option<PathBuf>,
    /// Where postal letter batches are written (default `<data_dir>/letters`).
    pub letters_dir: Option<PathBuf>,
    /// Times in notices and on the page are shown at this offset from UTC, minutes
    /// (default 540: Japan Standard Time).
    #[serde(default = "default_utc_offset")]
    pub utc_offset_minutes: i32,
    /// How many of a case's newest observations a notice lists.
    #[serde(default = "default_seen_items")]
    pub seen_items: usize,
}

fn default_utc_offset() -> i32 {
    540
}
fn default_seen_items() -> usize {
    5
}

/// One cleaning tool on the countermeasure page.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CleaningTool {
    /// Display name.
    pub name: String,
    /// Download or information URL.
    pub url: String,
    /// Short description.
    #[serde(default)]
    pub description: String,
    /// Only for subscribers of this language (`ja`/`en`); all when absent.
    pub language: Option<String>,
}

impl Default for NoticesSection {
    fn default() -> Self {
        NoticesSection {
            templates_dir: None,
            letters_dir: None,
            utc_offset_minutes: default_utc_offset(),
            seen_items: default_seen_items(),
        }
    }
}

impl AgentConfig {
    /// Parses a configuration from TOML text.
    pub fn parse(text: &str) -> Result<AgentConfig, Error> {
        let c: AgentConfig = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<AgentConfig, Error> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    fn validate(&self) -> Result<(), Error> {
        if !(self.hub.url.starts_with("http://") || self.hub.url.starts_with("https://")) {
            return Err(Error::Config(format!("hub.url {:?} must start with http:// or https://", self.hub.url)));
        }
        if self.hub.token.is_none() && self.hub.token_file.is_none() {
            return Err(Error::Config("[hub] needs token or token_file".into()));
        }
        for d in &self.sessions.dirs {
            if !matches!(d.kind.as_str(), "radius" | "kea" | "dhcpd" | "cgnat") {
                return Err(Error::Config(format!(
                    "sessions.dirs: kind {:?} for {} must be radius, kea, dhcpd or cgnat",
                    d.kind,
                    d.path.display()
                )));
            }
        }
        let p = &self.policy;
        if p.observe_days == 0 || p.remediation_days == 0 || p.max_send_attempts == 0 || p.token_valid_days == 0 {
            return Err(Error::Config(
                "policy: observe_days, remediation_days, max_send_attempts and token_valid_days must be > 0".into(),
            ));
        }
        for t in p.threats.keys() {
            if t.parse::<kizuna_model::ClassificationType>().is_err() {
                return Err(Error::Config(format!("policy.threats: {t:?} is not a classification.type")));
            }
        }
        if !(self.page.public_base_url.starts_with("http://") || self.page.public_base_url.starts_with("https://")) {
            return Err(Error::Config("page.public_base_url must start with http:// or https://".into()));
        }
        if self.page.public_base_url.contains(['"', '<', '>', '\'', ' ', '&']) {
            return Err(Error::Config("page.public_base_url must not contain quotes, spaces, < > or &".into()));
        }
        if let Some(z) = &self.client_zone {
            z.check()?;
        }
        for u in &self.console_users {
            u.validate()?;
        }
        Ok(())
    }

    /// The agent database path.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("kizuna-isp.sqlite")
    }

    /// Where postal letter batches go.
    pub fn letters_dir(&self) -> PathBuf {
        self.notices.letters_dir.clone().unwrap_or_else(|| self.data_dir.join("letters"))
    }

    /// The tailer's state file.
    pub fn tailer_state_file(&self) -> PathBuf {
        self.sessions.state_file.clone().unwrap_or_else(|| self.data_dir.join("tailer.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../kizuna-isp.example.toml");

    #[test]
    fn the_example_config_parses() {
        let c = AgentConfig::parse(EXAMPLE).expect("example config");
        assert_eq!(c.sessions.dirs.len(), 3);
        assert_eq!(c.policy.escalation_for("spam"), "port-25-block");
        assert_eq!(c.policy.escalation_for("infected-system"), "walled-garden");
        assert_eq!(c.policy.legal_basis_for("c2-server"), LegalBasis::EmergencyEvacuation);
        assert_eq!(c.notices.utc_offset_minutes, 540);
        assert_eq!(c.cleaning_tools.len(), 2);
        assert!(c.smtp.as_ref().is_some_and(|s| s.starttls));
        assert_eq!(c.consent.default_basis, crate::consent::Basis::OptIn);
        assert_eq!(c.client_zone.as_ref().map(|z| z.zone_name.as_str()), Some("consent.isp.example"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        for (from, to) in [
            ("grace_hours = 24", "grace_hours = 24\ngrace_minutes = 3"),
            ("[smtp]\n", "[smtp]\nstarttls_please = true\n"),
            ("legal_basis = \"legitimate-business\"", "legal_basis = \"because\""),
            ("kind = \"kea\"", "kind = \"pppoe\""),
            ("[policy.threats.spam]", "[policy.threats.spamming]"),
            ("public_base_url = \"https://clean.isp.example\"", "public_base_url = \"clean.isp.example\""),
            ("default_basis = \"opt-in\"", "default_basis = \"implied\""),
            ("zone_name = \"consent.isp.example\"", "zone_name = \"not a name\""),
            ("refresh_secs = 60", "refresh_secs = 60\nrefresh_mins = 1"),
        ] {
            assert!(EXAMPLE.contains(from), "{from}");
            let text = EXAMPLE.replacen(from, to, 1);
            assert!(AgentConfig::parse(&text).is_err(), "accepted: {to}");
        }
    }
}
