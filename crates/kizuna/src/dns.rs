//! `kizuna dns …`: the RPZ primary (crate `kizuna-dns`) from the command line, and [`InHub`]:
//! the same primary inside `kizuna hub serve` when the config has a `[dns]` section (one
//! process, the hub's store, metrics on the hub's `/metrics`, stopped together).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;

use kizuna_dns::{DnsConfig, DnsMetrics, FeedItem, IndicatorFeed, Service, StoreFeed};
use kizuna_model::Timestamp;
use kizuna_store::sqlite::SqliteStore;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

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
    feed_over(env, env.open_store()?)
}

fn feed_over(env: &Env, store: Arc<SqliteStore>) -> Result<Arc<dyn IndicatorFeed>> {
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

/// The primary for `kizuna hub serve`: `None` without a `[dns]` section. Its metrics are
/// registered into the hub's, so they appear on the hub's `/metrics`.
pub fn for_hub(env: &Env, store: Arc<SqliteStore>, hub_metrics: &mut kizuna_hub::Metrics) -> Result<Option<Service>> {
    let Some(cfg) = env.config.dns.clone() else { return Ok(None) };
    let metrics = DnsMetrics::new();
    metrics.register(hub_metrics.registry_mut());
    let zones = cfg.zones.len();
    let svc = Service::new(cfg, feed_over(env, store)?, metrics).context("starting the DNS primary ([dns])")?;
    tracing::info!(zones, "DNS primary configured in the hub");
    Ok(Some(svc))
}

/// The DNS primary running inside the hub process.
pub struct InHub {
    task: Option<JoinHandle<Result<(), kizuna_dns::Error>>>,
    stop: Arc<Notify>,
    ended: Arc<Notify>,
}

impl InHub {
    /// Binds the `[dns]` addresses (an error here stops the hub from starting) and runs the
    /// primary in the background; with no service, does nothing.
    pub async fn start(svc: Option<Service>) -> Result<InHub> {
        let stop = Arc::new(Notify::new());
        let ended = Arc::new(Notify::new());
        let Some(svc) = svc else { return Ok(InHub { task: None, stop, ended }) };
        let (udp, tcp, http) = svc.bind().await.context("binding the DNS primary's [dns] addresses")?;
        tracing::info!("kizuna DNS primary listening on {} (udp+tcp)", udp.local_addr()?);
        let (s, e) = (stop.clone(), ended.clone());
        let task = tokio::spawn(async move {
            let r = svc.run_until(udp, tcp, http, async move { s.notified().await }).await;
            e.notify_one();
            r
        });
        Ok(InHub { task: Some(task), stop, ended })
    }

    /// Completes if the primary stops by itself (an error): the hub then shuts down too.
    pub fn ended(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (e, running) = (self.ended.clone(), self.task.is_some());
        async move { if running { e.notified().await } else { std::future::pending().await } }
    }

    /// Stops the primary and reports how it ended.
    pub async fn stop(mut self) -> Result<()> {
        let Some(task) = self.task.take() else { return Ok(()) };
        self.stop.notify_one();
        match task.await {
            Ok(r) => r.context("the DNS primary failed"),
            Err(e) => bail!("the DNS primary task failed: {e}"),
        }
    }
}
