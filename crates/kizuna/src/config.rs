//! The TOML configuration file. Every key has a default; unknown keys are rejected.
//! `kizuna.example.toml` at the repository root documents every key and is parse-tested.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::Deserialize;

use kizuna_hub::{HubConfig, IngestSettings};
use kizuna_model::{LegalBasis, Tlp};
use kizuna_parsers::CsvMapping;
use kizuna_store::Retention;

/// The whole file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the embedded store and its audit anchor. Default `./kizuna-data`.
    pub data_dir: Option<PathBuf>,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[hub]`.
    pub hub: HubConfig,
    /// `[ingest]`.
    pub ingest: IngestConfig,
    /// `[retention]`.
    pub retention: RetentionConfig,
    /// `[[csv_mappings]]`: generic CSV formats, used as `--format csv:<name>`.
    pub csv_mappings: Vec<CsvMapping>,
    /// `[dns]`: when present, `kizuna hub serve` also runs the RPZ primary (same schema as
    /// `kizuna dns serve --dns-config`).
    pub dns: Option<kizuna_dns::DnsConfig>,
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Only `sqlite` for now.
    pub backend: String,
    /// SQLite database file; default `<data_dir>/kizuna.sqlite`.
    pub path: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { backend: "sqlite".into(), path: None }
    }
}

/// `[ingest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// TLP for observations whose source sets none (the parser's default otherwise: AMBER).
    pub default_tlp: Option<String>,
    /// Legal basis recorded with ingested observations.
    pub legal_basis: String,
    /// Observations per committed batch.
    pub batch_size: usize,
    /// Batches parsed ahead of the committer.
    pub queue_depth: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        let o = kizuna_pipeline::Options::default();
        IngestConfig {
            default_tlp: None,
            legal_basis: LegalBasis::default().as_str().into(),
            batch_size: o.batch_size,
            queue_depth: o.queue_depth,
        }
    }
}

/// `[retention]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days to keep observations of feeds not listed; 0 keeps them forever.
    pub default_days: u64,
    /// Days per `feed.name`.
    pub feeds: BTreeMap<String, u64>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { default_days: 365, feeds: BTreeMap::new() }
    }
}

const DAY: u64 = 86_400;

impl Config {
    /// Reads a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in config file {}", path.display()))
    }

    /// Parses config text and checks the values.
    pub fn parse(text: &str) -> Result<Config> {
        let c: Config = toml::from_str(text)?;
        c.ingest_settings()?;
        for m in &c.csv_mappings {
            m.validate().map_err(|e| anyhow::anyhow!("csv_mappings {:?}: {e}", m.name))?;
        }
        c.hub.sharing.validate().map_err(anyhow::Error::msg)?;
        if let Some(d) = &c.dns {
            d.validate().context("[dns]")?;
        }
        if c.store.backend != "sqlite" {
            anyhow::bail!("store.backend {:?} is not supported; known: sqlite", c.store.backend);
        }
        Ok(c)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| PathBuf::from("kizuna-data"))
    }

    /// The SQLite file.
    pub fn store_path(&self) -> PathBuf {
        self.store.path.clone().unwrap_or_else(|| self.data_dir().join("kizuna.sqlite"))
    }

    /// Ingest settings for the pipeline.
    pub fn ingest_settings(&self) -> Result<IngestSettings> {
        let default_tlp = match &self.ingest.default_tlp {
            Some(t) => Some(t.parse::<Tlp>().context("ingest.default_tlp")?),
            None => None,
        };
        let legal_basis = self.ingest.legal_basis.parse::<LegalBasis>().context("ingest.legal_basis")?;
        Ok(IngestSettings {
            default_tlp,
            legal_basis,
            options: kizuna_pipeline::Options {
                batch_size: self.ingest.batch_size,
                queue_depth: self.ingest.queue_depth,
            },
            csv_mappings: self.csv_mappings.clone(),
            retention: self.retention(),
        })
    }

    /// Retention periods.
    pub fn retention(&self) -> Retention {
        let days = |d: u64| Duration::from_secs(d * DAY);
        Retention {
            default: (self.retention.default_days > 0).then(|| days(self.retention.default_days)),
            per_feed: self.retention.feeds.iter().map(|(f, d)| (f.clone(), days(*d))).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let c = Config::parse(include_str!("../../../kizuna.example.toml")).expect("example config");
        assert_eq!(c.hub.listen.port(), 8640);
        assert_eq!(c.hub.sharing.organisation, "kizuna");
        assert_eq!(c.hub.sharing.poll.len(), 1);
        assert_eq!(c.hub.sharing.poll[0].tlp_floor.as_deref(), Some("GREEN"));
        assert!(c.dns.is_none(), "the [dns] example is commented out");
        assert!(!c.csv_mappings.is_empty());
        assert_eq!(c.retention().for_feed("cowrie"), Some(Duration::from_secs(90 * DAY)));
    }

    #[test]
    fn example_dns_section_parses_when_uncommented() {
        let text = include_str!("../../../kizuna.example.toml");
        let (head, block) = text.split_once("# ---- [dns] example ----").expect("the [dns] example block");
        let uncommented: String = block
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| !l.starts_with(' ') && (l.starts_with('[') || l.contains(" = ")))
            .map(|l| format!("{l}\n"))
            .collect();
        let c = Config::parse(&format!("{head}\n{uncommented}")).expect("example with [dns]");
        let dns = c.dns.expect("[dns] section");
        assert_eq!(dns.zones.len(), 1);
        assert_eq!(dns.zones[0].policy.zone_name, "rpz.isp-a.kizuna.example");
        assert_eq!(dns.keys[0].name, "isp-a-xfr");
        assert!(Config::parse("[dns]\nlisten_port = 1").is_err(), "unknown [dns] keys are rejected");
        assert!(
            Config::parse("[dns]\n[[dns.zones]]\nmember = \"a\"\nkey = \"nope\"\n[dns.zones.policy]\nzone_name = \"rpz.a.example\"\naction = { type = \"nxdomain\" }\n").is_err(),
            "a zone naming a missing key is rejected"
        );
    }

    #[test]
    fn empty_config_has_defaults() {
        let c = Config::parse("").expect("empty config");
        assert_eq!(c.store_path(), PathBuf::from("kizuna-data/kizuna.sqlite"));
        assert_eq!(c.retention().default, Some(Duration::from_secs(365 * DAY)));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        for bad in ["colour = 1", "[hub]\nlisten_port = 1", "[ingest]\nbatch = 3", "[retention]\ndays = 3"] {
            assert!(Config::parse(bad).is_err(), "{bad}");
        }
        assert!(Config::parse("[ingest]\nlegal_basis = \"because\"").is_err());
        assert!(Config::parse("[store]\nbackend = \"oracle\"").is_err());
        for bad in [
            "[hub.sharing]\norganisation = \"\"",
            "[hub.sharing]\nname = \"x\"",
            "[[hub.sharing.poll]]\nname = \"p\"\nurl = \"ftp://x/\"",
            "[[hub.sharing.poll]]\nname = \"p\"\nurl = \"https://x/\"\nuser = \"u\"",
            "[[hub.sharing.poll]]\nname = \"p\"\nurl = \"https://x/\"\ndefault_tlp = \"PURPLE\"",
            "[[hub.sharing.poll]]\nname = \"p\"\nurl = \"https://x/\"\n[[hub.sharing.poll]]\nname = \"p\"\nurl = \"https://y/\"",
        ] {
            assert!(Config::parse(bad).is_err(), "{bad}");
        }
    }
}
