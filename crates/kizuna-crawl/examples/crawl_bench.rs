//! The crawler side of bench/crawl: crawls every seed of a farm with the library (same code as
//! `kizuna crawl`: fetch, follow, YARA-X, hashes, verdicts, observations encoded), and prints one
//! JSON line with pages judged per second, verdict counts and peak RSS.
//!
//! Usage: `crawl_bench --seeds seeds.txt --hosts hosts.txt --rules data/yara [--concurrency 64]`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use kizuna_crawl::report::{self, Labels};
use kizuna_crawl::{CrawlConfig, Crawler, Judge, Url};

fn arg(name: &str) -> Option<String> {
    let mut it = std::env::args();
    while let Some(a) = it.next() {
        if a == name {
            return it.next();
        }
    }
    None
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seeds_path = arg("--seeds").ok_or("--seeds FILE")?;
    let hosts_path = arg("--hosts").ok_or("--hosts FILE")?;
    let rules = arg("--rules").ok_or("--rules DIR")?;
    let concurrency: usize = arg("--concurrency").and_then(|s| s.parse().ok()).unwrap_or(64);
    let threads: usize = arg("--threads").and_then(|s| s.parse().ok()).unwrap_or(2);
    let mut resolve = BTreeMap::new();
    for line in std::fs::read_to_string(&hosts_path)?.lines() {
        if let Some((h, a)) = line.split_once(' ') {
            resolve.insert(h.to_owned(), a.parse()?);
        }
    }
    let seeds: Vec<Url> = std::fs::read_to_string(&seeds_path)?
        .lines()
        .filter(|l| !l.is_empty())
        .map(Url::parse)
        .collect::<Result<_, _>>()?;
    let mut config = CrawlConfig { resolve, ..CrawlConfig::default() };
    config.judge.yara_dir = Some(rules.into());
    config.rate.concurrency = concurrency;
    config.rate.per_host_rps = 100_000.0;
    config.rate.per_host_burst = 1_000;
    config.rate.per_host_concurrency = 64;
    let judge = Arc::new(Judge::load(&config.judge)?);
    let labels = Labels::from_config(&config.report)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
    let crawler = Arc::new(Crawler::new(&config, judge)?);
    let n_seeds = seeds.len();
    let started = Instant::now();
    let mut pages = 0usize;
    let mut verdicts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut seed_verdicts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut obs_bytes = 0usize;
    rt.block_on(crawler.crawl_all(seeds, |chain| {
        pages += chain.nodes.len();
        for n in &chain.nodes {
            *verdicts.entry(n.verdict.as_str()).or_insert(0) += 1;
        }
        *seed_verdicts.entry(chain.seed_verdict().as_str()).or_insert(0) += 1;
        obs_bytes += report::to_json_lines(&report::observations(&chain, &labels)).len();
    }));
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "side": "kizuna-crawl",
            "seeds": n_seeds,
            "pages": pages,
            "seconds": secs,
            "pages_per_sec": pages as f64 / secs,
            "verdicts": verdicts,
            "seed_verdicts": seed_verdicts,
            "observation_bytes": obs_bytes,
            "peak_rss_kib": peak_rss_kib(),
        })
    );
    Ok(())
}
