//! `kizuna crawl`: the drive-by chain crawler sensor (library: `kizuna-crawl`).
//!
//! `kizuna crawl [URL…] [--seeds FILE|URL]… [--crawl-config crawl.toml] [--hub URL --token-file F | --out F]`
//! crawls the seeds, writes the raw crawl log (every chain as one JSON line) to the crawler's
//! data directory, sends the malicious URLs to the hub as IntelMQ observations (or writes them
//! to a file for `kizuna ingest`), and notifies the owners of compromised sites.
//! `kizuna crawl recheck` crawls again the open cases whose re-check date has come.
//!
//! Observations for the hub go through the spool (`<data_dir>/spool/`, see
//! `kizuna_crawl::spool`): batches left there when the hub was unreachable are resent first by
//! the next run (or by `kizuna crawl send`). Exit codes: 0 everything delivered, 75 findings
//! wait in the spool (hub unreachable), 1 an error or a batch the hub refused.
//! `--metrics-file` (or `[metrics] textfile`) gets the run's Prometheus metrics.

use std::collections::HashMap;
use std::io::{Read as _, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use kizuna_crawl::cases::CaseStore;
use kizuna_crawl::metrics::RunMetrics;
use kizuna_crawl::notify::Notifier;
use kizuna_crawl::report::{self, Labels};
use kizuna_crawl::seeds::{self, Rejected, SeedList, SeenSeeds};
use kizuna_crawl::spool::{self, Backoff, Delivery, Spool};
use kizuna_crawl::{Chain, CrawlConfig, Crawler, Judge, Verdict};
use kizuna_model::Timestamp;

/// `kizuna crawl`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CrawlArgs {
    #[command(subcommand)]
    command: Option<CrawlCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum CrawlCommand {
    /// Crawl again the open site cases whose re-check date has come; close the clean ones.
    Recheck {
        /// Re-check every open case now, due or not.
        #[arg(long)]
        all: bool,
        /// Crawler config file (TOML; see kizuna-crawl.example.toml).
        #[arg(long, env = "KIZUNA_CRAWL_CONFIG")]
        crawl_config: Option<PathBuf>,
    },
    /// Send the observations waiting in the spool (from runs that could not reach the hub).
    Send(SendArgs),
    /// List the site cases (open and closed).
    Cases {
        /// Crawler config file.
        #[arg(long, env = "KIZUNA_CRAWL_CONFIG")]
        crawl_config: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct SendArgs {
    /// Crawler config file.
    #[arg(long, env = "KIZUNA_CRAWL_CONFIG")]
    crawl_config: Option<PathBuf>,
    /// Hub base URL (overrides hub.url).
    #[arg(long)]
    hub: Option<String>,
    /// File holding the sensor token (overrides hub.sensor_token_file).
    #[arg(long)]
    token_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Seed URLs.
    urls: Vec<String>,
    /// A seed URL, or a file of seed URLs (one per line, `#` comments, or CSV with a `url`
    /// column; `-` for stdin).
    #[arg(long = "seeds", value_name = "FILE|URL")]
    seeds: Vec<String>,
    /// A seed feed: an http(s) URL serving such a list (OpenPhish-style text, URLhaus or
    /// PhishTank CSV), fetched at the start of the run; adds to `[seeds] feeds`. Feed URLs
    /// crawled recently are skipped (see --recrawl-after-hours).
    #[arg(long = "seeds-feed", value_name = "URL")]
    seeds_feed: Vec<String>,
    /// Hours before a URL a feed still lists is crawled again (overrides
    /// seeds.recrawl_after_hours; 0 crawls every listed URL).
    #[arg(long, value_name = "HOURS")]
    recrawl_after_hours: Option<u64>,
    /// Crawler config file (TOML; see kizuna-crawl.example.toml).
    #[arg(long, env = "KIZUNA_CRAWL_CONFIG")]
    crawl_config: Option<PathBuf>,
    /// Hub base URL to send observations to (overrides hub.url).
    #[arg(long)]
    hub: Option<String>,
    /// File holding the sensor token (overrides hub.sensor_token_file).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Write observations (IntelMQ JSON lines) to this file instead of sending them.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write run metrics (Prometheus text) to this file at the end (overrides metrics.textfile).
    #[arg(long)]
    metrics_file: Option<PathBuf>,
    /// Do not notify site owners on this run (cases are still opened).
    #[arg(long)]
    no_notify: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

fn load_config(path: Option<&Path>) -> Result<CrawlConfig> {
    match path {
        Some(p) => Ok(CrawlConfig::load(p)?),
        None => Ok(CrawlConfig::default()),
    }
}

/// Entry point from the CLI dispatcher.
pub fn run(args: &CrawlArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    match &args.command {
        Some(CrawlCommand::Recheck { all, crawl_config }) => rt.block_on(recheck(crawl_config.as_deref(), *all)),
        Some(CrawlCommand::Cases { crawl_config }) => cases(crawl_config.as_deref()),
        Some(CrawlCommand::Send(a)) => rt.block_on(send(a)),
        None => rt.block_on(crawl(&args.run)),
    }
}

/// Seeds from positional URLs and `--seeds` values (files and stdin read by
/// `kizuna_crawl::seeds::parse`), and the lines that were not seeds.
fn read_seeds(a: &RunArgs) -> Result<SeedList> {
    let mut parts = Vec::new();
    for (i, u) in a.urls.iter().enumerate() {
        parts.push(match seeds::seed_url(u) {
            Ok(u) => SeedList { urls: vec![u], rejected: Vec::new() },
            Err(reason) => SeedList {
                urls: Vec::new(),
                rejected: vec![Rejected { origin: "argument".into(), line: i + 1, reason, text: u.clone() }],
            },
        });
    }
    for s in &a.seeds {
        if s.starts_with("http://") || s.starts_with("https://") {
            parts.push(seeds::parse(s.as_bytes(), "--seeds"));
            continue;
        }
        let mut bytes = Vec::new();
        if s == "-" {
            std::io::stdin().lock().read_to_end(&mut bytes).context("reading seeds from stdin")?;
        } else {
            bytes = std::fs::read(s).with_context(|| format!("seed file {s}"))?;
        }
        parts.push(seeds::parse(&bytes, s));
    }
    let mut list = SeedList::default();
    let mut known = std::collections::HashSet::new();
    for p in parts {
        list.urls.extend(p.urls.into_iter().filter(|u| known.insert(u.as_str().to_owned())));
        list.rejected.extend(p.rejected);
    }
    Ok(list)
}

/// Reports rejected seed lines on stderr and appends them to `<data_dir>/rejected-seeds.jsonl`.
fn quarantine_seeds(data_dir: &Path, rejected: &[Rejected]) -> Result<()> {
    if rejected.is_empty() {
        return Ok(());
    }
    let path = data_dir.join("rejected-seeds.jsonl");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("rejected seeds file {}", path.display()))?;
    let at = Timestamp::now().to_rfc3339();
    for r in rejected {
        eprintln!("kizuna crawl: {}:{}: {}: {:?} (skipped)", r.origin, r.line, r.reason, r.text);
        let mut v = serde_json::to_value(r).context("rejected seed")?;
        v["at"] = at.clone().into();
        writeln!(f, "{v}").with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!("kizuna crawl: {} seed lines rejected, kept in {}", rejected.len(), path.display());
    Ok(())
}

fn read_token(path: &Path) -> Result<String> {
    let t = std::fs::read_to_string(path).with_context(|| format!("token file {}", path.display()))?;
    let t = t.trim().to_owned();
    if t.is_empty() {
        bail!("token file {} is empty", path.display());
    }
    Ok(t)
}

/// What the seed feeds of a run gave.
#[derive(Default)]
struct FeedStats {
    /// Feeds fetched and read.
    read: u64,
    /// Feeds that could not be fetched or were refused.
    failed: u64,
    /// Feed URLs crawled by this run.
    due: u64,
    /// Feed URLs skipped as crawled recently.
    recent: u64,
}

#[derive(Default)]
struct Tally {
    verdicts: HashMap<Verdict, usize>,
    send_errors: usize,
}

/// Where observations go.
enum Sink {
    /// `--out FILE`.
    File(std::io::BufWriter<std::fs::File>),
    /// The hub, through the spool.
    Hub { url: String, token: String, spool: Spool, backoff: Backoff, down: bool },
    /// Neither.
    Nowhere,
}

async fn crawl(a: &RunArgs) -> Result<ExitCode> {
    let t0 = std::time::Instant::now();
    let config = load_config(a.crawl_config.as_deref())?;
    let listed = read_seeds(a)?;
    let feeds: Vec<String> = config.seeds.feeds.iter().chain(&a.seeds_feed).cloned().collect();
    let data_dir = config.data_dir();
    std::fs::create_dir_all(&data_dir).with_context(|| format!("data dir {}", data_dir.display()))?;
    if listed.urls.is_empty() && feeds.is_empty() {
        quarantine_seeds(&data_dir, &listed.rejected)?;
        bail!("no seed URLs (give URLs, --seeds FILE or --seeds-feed URL)");
    }
    let fetcher = kizuna_crawl::fetch::Fetcher::new(&config)?;
    let mut rejected = listed.rejected;
    let mut seeds = listed.urls;
    let mut feed_stats = FeedStats::default();
    let seen = SeenSeeds::open(&data_dir.join("crawl.sqlite"))?;
    if !feeds.is_empty() {
        let hours = a.recrawl_after_hours.unwrap_or(config.seeds.recrawl_after_hours);
        let window = std::time::Duration::from_secs(hours.saturating_mul(3600));
        let mut known: std::collections::HashSet<String> = seeds.iter().map(|u| u.as_str().to_owned()).collect();
        for feed in &feeds {
            let url = match seeds::seed_url(feed) {
                Ok(u) => u,
                Err(e) => {
                    eprintln!("kizuna crawl: seed feed {feed:?}: {e} (skipped)");
                    feed_stats.failed += 1;
                    continue;
                }
            };
            match seeds::fetch_feed(&fetcher, &url, config.seeds.max_feed_bytes).await {
                Ok(list) => {
                    let listed_n = list.urls.len();
                    rejected.extend(list.rejected);
                    let (due, recent) = seen.due(url.as_str(), list.urls, Timestamp::now(), window)?;
                    eprintln!(
                        "kizuna crawl: seed feed {url}: {listed_n} URLs, {} to crawl, {recent} crawled in the last {hours} h",
                        due.len()
                    );
                    feed_stats.read += 1;
                    feed_stats.recent += recent as u64;
                    for u in due {
                        if known.insert(u.as_str().to_owned()) {
                            feed_stats.due += 1;
                            seeds.push(u);
                        }
                    }
                }
                Err(e) => {
                    eprintln!("kizuna crawl: {e} (skipped)");
                    feed_stats.failed += 1;
                }
            }
        }
    }
    quarantine_seeds(&data_dir, &rejected)?;
    let bad_seeds = rejected.len();
    if seeds.is_empty() && feed_stats.read == 0 {
        bail!("no seed URLs: every seed line was rejected and no seed feed could be read");
    }
    let metrics_file = a.metrics_file.clone().or_else(|| config.metrics.textfile.clone());
    let labels = Labels::from_config(&config.report)?;
    let hub_url = a.hub.clone().or_else(|| config.hub.url.clone());
    let token_file = a.token_file.clone().or_else(|| config.hub.sensor_token_file.clone());
    let client = report::hub_client(&config)?;
    let mut m = RunMetrics {
        bad_seeds: bad_seeds as u64,
        feeds_read: feed_stats.read,
        feeds_failed: feed_stats.failed,
        feed_seeds: feed_stats.due,
        feed_seeds_recent: feed_stats.recent,
        ..RunMetrics::default()
    };
    let mut sink = match (&a.out, &hub_url) {
        (Some(p), _) => Sink::File(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("output file {}", p.display()))?,
        )),
        (None, None) => Sink::Nowhere,
        (None, Some(u)) => {
            let tf = token_file.as_deref().context("--hub needs --token-file (or hub.sensor_token_file)")?;
            let spool = Spool::open(&data_dir.join("spool"))?;
            let token = read_token(tf)?;
            // Leftovers of earlier runs first (one attempt now; retried with backoff at the end).
            let left = spool.pending()?;
            let mut down = false;
            if !left.is_empty() {
                let n: usize = left.iter().map(|e| e.observations).sum();
                eprintln!(
                    "kizuna crawl: {} spooled batches ({n} observations) from earlier runs: resending",
                    left.len()
                );
                let d = spool::deliver(&spool, &client, u, &token, Backoff::once()).await;
                report_delivery(&d);
                down = d.pending_batches > 0;
                m.add_delivery(&d);
            }
            Sink::Hub { url: u.clone(), token, spool, backoff: Backoff::from_config(&config.hub), down }
        }
    };
    let mut judge = Judge::load(&config.judge)?;
    for p in &judge.problems {
        eprintln!("kizuna crawl: {p} (skipped)");
    }
    if let (Some(u), Some(tf)) = (&hub_url, &config.hub.indicator_token_file) {
        // The hub being down must not stop the crawl: findings are spooled either way.
        match report::load_hub_indicators(&client, u, &read_token(tf)?, &mut judge).await {
            Ok(n) => {
                eprintln!("kizuna crawl: {n} known-bad indicators from {u}");
                m.hub_indicators = Some(n as u64);
            }
            Err(e) => {
                eprintln!("kizuna crawl: known-bad indicators not loaded, crawling with the local lists only: {e}")
            }
        }
    }
    let (rules, hashes, urls) = judge.sizes();
    eprintln!("kizuna crawl: {} seeds; {rules} rules, {hashes} bad hashes, {urls} bad URLs/hosts", seeds.len());
    let crawler = Arc::new(Crawler::new(&config, Arc::new(judge))?);
    let notifier = Notifier::new(&config.notify, CaseStore::open(&data_dir.join("crawl.sqlite"))?)?;
    let log_path = data_dir.join("crawl-log.jsonl");
    let mut log = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("crawl log {}", log_path.display()))?,
    );

    let pb = ProgressBar::new(seeds.len() as u64);
    pb.set_style(
        ProgressStyle::with_template("{spinner} crawl [{elapsed_precise}] {wide_bar} {pos}/{len} seeds {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Chain>();
    let c2 = crawler.clone();
    let task = tokio::spawn(async move {
        c2.crawl_all(seeds, |chain| {
            let _ = tx.send(chain);
        })
        .await;
    });
    let mut t = Tally::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut pending_n = 0usize;
    let batch = config.hub.batch_observations;
    while let Some(chain) = rx.recv().await {
        m.add_chain(&chain);
        if let Err(e) = seen.crawled(&chain.seed, Timestamp::now()) {
            // The findings matter more than the bookkeeping: the seed is crawled again next run.
            pb.println(format!("kizuna crawl: could not record {} as crawled: {e}", chain.seed));
        }
        for (v, n) in chain.verdict_counts() {
            *t.verdicts.entry(v).or_insert(0) += n;
        }
        serde_json::to_writer(&mut log, &chain).context("writing the crawl log")?;
        log.write_all(b"\n")?;
        let obs = report::observations(&chain, &labels);
        m.observations += obs.len() as u64;
        match &mut sink {
            Sink::File(f) => f.write_all(&report::to_json_lines(&obs)).context("writing observations")?,
            Sink::Hub { .. } => {
                pending.extend_from_slice(&report::to_json_lines(&obs));
                pending_n += obs.len();
            }
            Sink::Nowhere => {}
        }
        if pending_n >= batch {
            spool_and_send(&client, &mut sink, &mut pending, &mut m, false).await?;
            pending_n = 0;
        }
        if !a.no_notify && chain.nodes.iter().any(|n| n.verdict == Verdict::Entry) {
            for o in notifier.handle_chain(&fetcher, &chain).await {
                m.cases_opened += u64::from(o.new_case);
                m.notices_sent += u64::from(o.sent);
                if let Some(n) = &o.note {
                    pb.println(format!("{}: case {}: {n}", o.site, o.case_id));
                }
            }
        }
        pb.inc(1);
        pb.set_message(format!(
            "{} pages, {} entry, {} distribution, {} errors",
            m.pages,
            t.verdicts.get(&Verdict::Entry).unwrap_or(&0),
            t.verdicts.get(&Verdict::Distribution).unwrap_or(&0),
            t.verdicts.get(&Verdict::Error).unwrap_or(&0)
        ));
    }
    task.await.context("crawl task")?;
    pb.finish_and_clear();
    log.flush()?;
    // The last batch, then everything still spooled, retried with backoff.
    spool_and_send(&client, &mut sink, &mut pending, &mut m, true).await?;
    let spool_dir = match &sink {
        Sink::Hub { spool, .. } => Some(spool.dir().to_owned()),
        _ => None,
    };
    if let Sink::File(f) = &mut sink {
        f.flush()?;
    }
    let d = m.delivery.clone();
    t.send_errors = d.batches_rejected;
    m.duration = t0.elapsed();
    m.finished_unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let all_delivered = d.pending_batches == 0 && d.batches_rejected == 0;
    m.last_success_unix = if all_delivered {
        Some(m.finished_unix)
    } else {
        metrics_file.as_deref().and_then(kizuna_crawl::metrics::previous_success)
    };
    if let Some(p) = &metrics_file {
        m.write_textfile(p).with_context(|| format!("metrics file {}", p.display()))?;
    }
    let verdicts: serde_json::Map<String, serde_json::Value> =
        Verdict::ALL.iter().map(|v| (v.as_str().to_owned(), (*t.verdicts.get(v).unwrap_or(&0)).into())).collect();
    let summary = serde_json::json!({
        "seeds": m.seeds,
        "bad_seeds": bad_seeds,
        "feeds_read": feed_stats.read,
        "feeds_failed": feed_stats.failed,
        "feed_seeds": feed_stats.due,
        "feed_seeds_recent": feed_stats.recent,
        "pages": m.pages,
        "bytes": m.bytes,
        "verdicts": verdicts,
        "errors": m.errors,
        "observations": m.observations,
        "hub_indicators": m.hub_indicators,
        "sent_batches": d.batches_sent,
        "sent_stored": d.stored,
        "sent_duplicates": d.duplicates,
        "send_errors": t.send_errors,
        "rejected_batches": d.batches_rejected,
        "spooled_batches": d.pending_batches,
        "spooled_observations": d.pending_observations,
        "spool": spool_dir.as_ref().map(|p| p.display().to_string()),
        "cases_opened": m.cases_opened,
        "notices_sent": m.notices_sent,
        "crawl_log": log_path.display().to_string(),
        "metrics_file": metrics_file.as_ref().map(|p| p.display().to_string()),
        "seconds": m.duration.as_secs_f64(),
    });
    if a.json {
        println!("{summary}");
    } else {
        println!("crawled {} seeds, {} pages fetched", m.seeds, m.pages);
        for v in Verdict::ALL {
            println!("  {:<13}{}", v.as_str(), t.verdicts.get(&v).unwrap_or(&0));
        }
        let dest = match (&a.out, &hub_url) {
            (Some(p), _) => format!("written to {}", p.display()),
            (None, Some(u)) => format!(
                "sent to {u} ({} stored, {} duplicates); {} left in the spool",
                d.stored, d.duplicates, d.pending_observations
            ),
            (None, None) => "not sent (no --hub or --out)".into(),
        };
        println!("observations: {} {dest}", m.observations);
        if d.pending_batches > 0 {
            println!(
                "hub unreachable: {} batches ({} observations, including earlier runs') wait in {} and are resent by the next run",
                d.pending_batches,
                d.pending_observations,
                spool_dir.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
            );
        }
        println!("site cases opened: {}, owner notices sent: {}", m.cases_opened, m.notices_sent);
        println!("raw crawl log: {}", log_path.display());
    }
    Ok(if t.send_errors > 0 {
        ExitCode::from(1)
    } else if d.pending_batches > 0 {
        ExitCode::from(EXIT_SPOOLED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Exit code when findings are safe in the spool but the hub did not take them (EX_TEMPFAIL).
const EXIT_SPOOLED: u8 = 75;

fn report_delivery(d: &Delivery) {
    if d.batches_sent > 0 {
        eprintln!(
            "kizuna crawl: hub acknowledged {} batches ({} stored, {} duplicates)",
            d.batches_sent, d.stored, d.duplicates
        );
    }
    if d.batches_rejected > 0 {
        eprintln!("kizuna crawl: hub refused {} batches as malformed (moved to spool/rejected/)", d.batches_rejected);
    }
    if let Some(e) = &d.last_error
        && d.pending_batches > 0
    {
        eprintln!("kizuna crawl: {} batches stay spooled: {e}", d.pending_batches);
    }
}

/// Spools the pending observations (one file) and tries to deliver the spool: one attempt
/// during the crawl (none once the hub was found down), with backoff at the end.
async fn spool_and_send(
    client: &kizuna_crawl::reqwest::Client,
    sink: &mut Sink,
    pending: &mut Vec<u8>,
    m: &mut RunMetrics,
    last: bool,
) -> Result<()> {
    let Sink::Hub { url, token, spool, backoff, down } = sink else { return Ok(()) };
    if !pending.is_empty() {
        spool.put(pending).context("writing to the spool")?;
        m.batches_spooled += 1;
        pending.clear();
    }
    if *down && !last {
        return Ok(());
    }
    let b = if last { *backoff } else { Backoff::once() };
    let d = spool::deliver(spool, client, url, token, b).await;
    report_delivery(&d);
    *down = d.pending_batches > 0;
    m.add_delivery(&d);
    Ok(())
}

/// `kizuna crawl send`: delivers what is spooled, without crawling.
async fn send(a: &SendArgs) -> Result<ExitCode> {
    let config = load_config(a.crawl_config.as_deref())?;
    let url = a.hub.clone().or_else(|| config.hub.url.clone()).context("no hub: give --hub or hub.url")?;
    let tf = a
        .token_file
        .clone()
        .or_else(|| config.hub.sensor_token_file.clone())
        .context("--hub needs --token-file (or hub.sensor_token_file)")?;
    let token = read_token(&tf)?;
    let spool = Spool::open(&config.data_dir().join("spool"))?;
    let client = report::hub_client(&config)?;
    let d = spool::deliver(&spool, &client, &url, &token, Backoff::from_config(&config.hub)).await;
    report_delivery(&d);
    println!(
        "sent {} batches ({} observations: {} stored, {} duplicates); {} batches ({} observations) still spooled",
        d.batches_sent, d.observations_sent, d.stored, d.duplicates, d.pending_batches, d.pending_observations
    );
    Ok(if d.batches_rejected > 0 {
        ExitCode::from(1)
    } else if d.pending_batches > 0 {
        ExitCode::from(EXIT_SPOOLED)
    } else {
        ExitCode::SUCCESS
    })
}

async fn recheck(path: Option<&Path>, all: bool) -> Result<ExitCode> {
    let config = load_config(path)?;
    let data_dir = config.data_dir();
    let judge = Judge::load(&config.judge)?;
    let crawler = Crawler::new(&config, Arc::new(judge))?;
    let notifier = Notifier::new(&config.notify, CaseStore::open(&data_dir.join("crawl.sqlite"))?)?;
    let done = notifier.recheck(&crawler, Timestamp::now(), all).await?;
    let closed = done.iter().filter(|r| !r.still_compromised).count();
    for r in &done {
        println!(
            "case {} {}: {}",
            r.case.id,
            r.case.site,
            if r.still_compromised { "still compromised, next re-check set" } else { "clean: closed" }
        );
    }
    println!("re-checked {} cases: {closed} closed, {} still open", done.len(), done.len() - closed);
    Ok(ExitCode::SUCCESS)
}

fn cases(path: Option<&Path>) -> Result<ExitCode> {
    let config = load_config(path)?;
    let store = CaseStore::open(&config.data_dir().join("crawl.sqlite"))?;
    let mut out = std::io::stdout().lock();
    for c in store.all()? {
        let ts = |v: Option<i64>| v.map(|t| Timestamp::from_micros(t).to_string()).unwrap_or_else(|| "-".into());
        let notices = store.notices(c.id)?.into_iter().map(|(c, _)| c).collect::<Vec<_>>().join(",");
        writeln!(
            out,
            "{}\t{}\t{}\topened {}\trecheck {}\tclosed {}\tnotified {}",
            c.id,
            c.status,
            c.site,
            Timestamp::from_micros(c.opened_at),
            ts(c.recheck_at),
            ts(c.closed_at),
            if notices.is_empty() { "-" } else { &notices }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
