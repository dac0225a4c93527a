//! `kizuna crawl`: the drive-by chain crawler sensor (library: `kizuna-crawl`).
//!
//! `kizuna crawl [URL…] [--seeds FILE|URL]… [--crawl-config crawl.toml] [--hub URL --token-file F | --out F]`
//! crawls the seeds, writes the raw crawl log (every chain as one JSON line) to the crawler's
//! data directory, sends the malicious URLs to the hub as IntelMQ observations (or writes them
//! to a file for `kizuna ingest`), and notifies the owners of compromised sites.
//! `kizuna crawl recheck` crawls again the open cases whose re-check date has come.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use kizuna_crawl::Url;
use kizuna_crawl::cases::CaseStore;
use kizuna_crawl::notify::Notifier;
use kizuna_crawl::report::{self, Labels};
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
    /// List the site cases (open and closed).
    Cases {
        /// Crawler config file.
        #[arg(long, env = "KIZUNA_CRAWL_CONFIG")]
        crawl_config: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Seed URLs.
    urls: Vec<String>,
    /// A seed URL, or a file of seed URLs (one per line, `#` comments; `-` for stdin).
    #[arg(long = "seeds", value_name = "FILE|URL")]
    seeds: Vec<String>,
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
        None => rt.block_on(crawl(&args.run)),
    }
}

/// Seeds from positional URLs and `--seeds` values; bad lines are reported and skipped.
fn read_seeds(a: &RunArgs) -> Result<(Vec<Url>, usize)> {
    let mut seeds = Vec::new();
    let mut bad = 0usize;
    let mut add = |s: &str, origin: &str| match Url::parse(s.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => seeds.push(u),
        _ => {
            eprintln!("kizuna crawl: {origin}: not an http(s) URL: {s:?} (skipped)");
            bad += 1;
        }
    };
    for u in &a.urls {
        add(u, "argument");
    }
    for s in &a.seeds {
        if s.starts_with("http://") || s.starts_with("https://") {
            add(s, "--seeds");
            continue;
        }
        let reader: Box<dyn BufRead> = if s == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::io::BufReader::new(std::fs::File::open(s).with_context(|| format!("seed file {s}"))?))
        };
        for (i, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("reading {s}"))?;
            let t = line.split('#').next().unwrap_or("").trim();
            if !t.is_empty() {
                add(t, &format!("{s}:{}", i + 1));
            }
        }
    }
    Ok((seeds, bad))
}

fn read_token(path: &Path) -> Result<String> {
    let t = std::fs::read_to_string(path).with_context(|| format!("token file {}", path.display()))?;
    let t = t.trim().to_owned();
    if t.is_empty() {
        bail!("token file {} is empty", path.display());
    }
    Ok(t)
}

#[derive(Default)]
struct Tally {
    chains: usize,
    pages: usize,
    verdicts: HashMap<Verdict, usize>,
    observations: usize,
    stored: u64,
    duplicates: u64,
    notices: usize,
    cases_opened: usize,
    send_errors: usize,
}

async fn crawl(a: &RunArgs) -> Result<ExitCode> {
    let config = load_config(a.crawl_config.as_deref())?;
    let (seeds, bad_seeds) = read_seeds(a)?;
    if seeds.is_empty() {
        bail!("no seed URLs (give URLs, or --seeds FILE)");
    }
    let data_dir = config.data_dir();
    std::fs::create_dir_all(&data_dir).with_context(|| format!("data dir {}", data_dir.display()))?;
    let labels = Labels::from_config(&config.report)?;
    let hub_url = a.hub.clone().or_else(|| config.hub.url.clone());
    let token_file = a.token_file.clone().or_else(|| config.hub.sensor_token_file.clone());
    let hub = match (&a.out, &hub_url) {
        (Some(_), _) | (None, None) => None,
        (None, Some(u)) => {
            let tf = token_file.as_deref().context("--hub needs --token-file (or hub.sensor_token_file)")?;
            Some((u.clone(), read_token(tf)?))
        }
    };
    let client = report::hub_client(&config)?;
    let mut judge = Judge::load(&config.judge)?;
    for p in &judge.problems {
        eprintln!("kizuna crawl: {p} (skipped)");
    }
    if let (Some(u), Some(tf)) = (&hub_url, &config.hub.indicator_token_file) {
        let n = report::load_hub_indicators(&client, u, &read_token(tf)?, &mut judge).await?;
        eprintln!("kizuna crawl: {n} known-bad indicators from {u}");
    }
    let (rules, hashes, urls) = judge.sizes();
    eprintln!("kizuna crawl: {} seeds; {rules} rules, {hashes} bad hashes, {urls} bad URLs/hosts", seeds.len());
    let crawler = Arc::new(Crawler::new(&config, Arc::new(judge))?);
    let notifier = Notifier::new(&config.notify, CaseStore::open(&data_dir.join("crawl.sqlite"))?)?;
    let fetcher = kizuna_crawl::fetch::Fetcher::new(&config)?;
    let log_path = data_dir.join("crawl-log.jsonl");
    let mut log = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("crawl log {}", log_path.display()))?,
    );
    let mut out_file = match &a.out {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("output file {}", p.display()))?,
        )),
        None => None,
    };

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
    while let Some(chain) = rx.recv().await {
        t.chains += 1;
        t.pages += chain.nodes.len();
        for (v, n) in chain.verdict_counts() {
            *t.verdicts.entry(v).or_insert(0) += n;
        }
        serde_json::to_writer(&mut log, &chain).context("writing the crawl log")?;
        log.write_all(b"\n")?;
        let obs = report::observations(&chain, &labels);
        t.observations += obs.len();
        let lines = report::to_json_lines(&obs);
        if let Some(f) = out_file.as_mut() {
            f.write_all(&lines).context("writing observations")?;
        } else if hub.is_some() {
            pending.extend_from_slice(&lines);
            pending_n += obs.len();
        }
        if pending_n >= 1000 {
            flush(&client, hub.as_ref(), &mut pending, &mut pending_n, &mut t).await;
        }
        if !a.no_notify && chain.nodes.iter().any(|n| n.verdict == Verdict::Entry) {
            for o in notifier.handle_chain(&fetcher, &chain).await {
                t.cases_opened += usize::from(o.new_case);
                t.notices += usize::from(o.sent);
                if let Some(n) = &o.note {
                    pb.println(format!("{}: case {}: {n}", o.site, o.case_id));
                }
            }
        }
        pb.inc(1);
        pb.set_message(format!(
            "{} pages, {} entry, {} distribution, {} errors",
            t.pages,
            t.verdicts.get(&Verdict::Entry).unwrap_or(&0),
            t.verdicts.get(&Verdict::Distribution).unwrap_or(&0),
            t.verdicts.get(&Verdict::Error).unwrap_or(&0)
        ));
    }
    task.await.context("crawl task")?;
    flush(&client, hub.as_ref(), &mut pending, &mut pending_n, &mut t).await;
    pb.finish_and_clear();
    log.flush()?;
    if let Some(mut f) = out_file {
        f.flush()?;
    }
    let verdicts: serde_json::Map<String, serde_json::Value> =
        Verdict::ALL.iter().map(|v| (v.as_str().to_owned(), (*t.verdicts.get(v).unwrap_or(&0)).into())).collect();
    let summary = serde_json::json!({
        "seeds": t.chains,
        "bad_seeds": bad_seeds,
        "pages": t.pages,
        "verdicts": verdicts,
        "observations": t.observations,
        "sent_stored": t.stored,
        "sent_duplicates": t.duplicates,
        "send_errors": t.send_errors,
        "cases_opened": t.cases_opened,
        "notices_sent": t.notices,
        "crawl_log": log_path.display().to_string(),
    });
    if a.json {
        println!("{summary}");
    } else {
        println!("crawled {} seeds, {} pages fetched", t.chains, t.pages);
        for v in Verdict::ALL {
            println!("  {:<13}{}", v.as_str(), t.verdicts.get(&v).unwrap_or(&0));
        }
        let dest = match (&a.out, &hub) {
            (Some(p), _) => format!("written to {}", p.display()),
            (None, Some((u, _))) => format!("sent to {u} ({} stored, {} duplicates)", t.stored, t.duplicates),
            (None, None) => "not sent (no --hub or --out)".into(),
        };
        println!("observations: {} {dest}", t.observations);
        println!("site cases opened: {}, owner notices sent: {}", t.cases_opened, t.notices);
        println!("raw crawl log: {}", log_path.display());
    }
    Ok(if t.send_errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

async fn flush(
    client: &kizuna_crawl::reqwest::Client,
    hub: Option<&(String, String)>,
    pending: &mut Vec<u8>,
    n: &mut usize,
    t: &mut Tally,
) {
    let Some((url, token)) = hub else { return };
    if pending.is_empty() {
        return;
    }
    let body = std::mem::take(pending);
    *n = 0;
    match report::send_to_hub(client, url, token, "kizuna-crawl", body).await {
        Ok(s) => {
            t.stored += s["stored"].as_u64().unwrap_or(0);
            t.duplicates += s["duplicates"].as_u64().unwrap_or(0);
        }
        Err(e) => {
            eprintln!("kizuna crawl: {e}");
            t.send_errors += 1;
        }
    }
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
