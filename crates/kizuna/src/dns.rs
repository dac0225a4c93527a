//! `kizuna dns …`: the RPZ primary (crate `kizuna-dns`) from the command line.
//! Not yet in the module tree: wiring needs `mod dns;` in main.rs, a `Dns { command: crate::dns::DnsCommand }`
//! variant + `Command::Dns { command } => crate::dns::run(&env, command)` in cli.rs, and `kizuna-dns` in Cargo.toml.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;

use kizuna_dns::{DnsConfig, DnsMetrics, FeedItem, IndicatorFeed, Service, StoreFeed};
use kizuna_model::Timestamp;

use crate::cli::Env;

#[derive(Subcommand, Debug)]
pub enum DnsCommand {
    /// Serve every configured member zone from the indicator store (UDP+TCP, NOTIFY, /metrics).
    Serve {
        /// The `[dns]` configuration (TOML; see docs/resolvers.md).
        #[arg(long = "dns-config", id = "dns_config", env = "KIZUNA_DNS_CONFIG")]
        config: PathBuf,
    },
    /// Print a configured zone as a zone file (what the primary would serve now).
    Zone {
        /// The `[dns]` configuration.
        #[arg(long = "dns-config", id = "dns_config", env = "KIZUNA_DNS_CONFIG")]
        config: PathBuf,
        /// Zone name.
        zone: String,
    },
    /// Which indicators produced a trigger of a zone.
    Provenance {
        /// The `[dns]` configuration.
        #[arg(long = "dns-config", id = "dns_config", env = "KIZUNA_DNS_CONFIG")]
        config: PathBuf,
        /// Zone name.
        zone: String,
        /// Trigger owner, relative or absolute (e.g. `*.bad.example`).
        name: String,
    },
}

fn load(path: &PathBuf) -> Result<DnsConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    DnsConfig::from_toml(&text).with_context(|| format!("in {}", path.display()))
}

fn feed(env: &Env) -> Result<Arc<dyn IndicatorFeed>> {
    let store = env.open_store()?;
    let policy = crate::indicator::policy(env)?;
    Ok(Arc::new(StoreFeed::new(
        store,
        Box::new(move |r| match kizuna_indicators::publish_granularity(r, &policy) {
            kizuna_indicators::Granularity::Host => kizuna_dns::kizuna_rpz::Granularity::Host,
            kizuna_indicators::Granularity::UrlOnly => kizuna_dns::kizuna_rpz::Granularity::UrlOnly,
        }),
    )))
}

pub fn run(env: &Env, command: DnsCommand) -> Result<ExitCode> {
    match command {
        DnsCommand::Serve { config } => {
            let cfg = load(&config)?;
            let svc = Service::new(cfg, feed(env)?, DnsMetrics::new())?;
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(svc.run())?;
            Ok(ExitCode::SUCCESS)
        }
        DnsCommand::Zone { config, zone } | DnsCommand::Provenance { config, zone, .. }
            if !load(&config)?.zones.iter().any(|z| same_zone(&z.policy.zone_name, &zone)) =>
        {
            bail!("zone {zone} is not configured in {}", config.display())
        }
        DnsCommand::Zone { config, zone } => {
            let (z, _) = build(env, &config, &zone)?;
            print!("{}", z.to_zone_text(u32::try_from(Timestamp::now().as_secs().max(0)).unwrap_or(0)));
            eprintln!("{} triggers, {} indicators skipped", z.trigger_count(), z.skipped.len());
            Ok(ExitCode::SUCCESS)
        }
        DnsCommand::Provenance { config, zone, name } => {
            let (z, items) = build(env, &config, &zone)?;
            let Some(keys) = z.provenance_of(&name) else {
                eprintln!("no trigger {name} in {zone}");
                return Ok(ExitCode::from(2));
            };
            for k in keys {
                let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
                match items.iter().find(|i| &i.key == k) {
                    Some(i) => println!(
                        "{hex}\t{}\t{}\t{}\t{}",
                        i.indicator.kind,
                        i.indicator.value,
                        i.indicator.category.as_str(),
                        i.indicator.source
                    ),
                    None => println!("{hex}"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn same_zone(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

fn build(env: &Env, config: &PathBuf, zone: &str) -> Result<(kizuna_dns::kizuna_rpz::RpzZone, Vec<FeedItem>)> {
    let cfg = load(config)?;
    let zc = cfg.zones.iter().find(|z| same_zone(&z.policy.zone_name, zone)).context("zone not configured")?;
    let now = Timestamp::now();
    let items = feed(env)?.active(now)?;
    Ok((kizuna_dns::service::build_zone(zc, &items, now)?, items))
}
