//! Metrics of one crawl run in the Prometheus text exposition format, written atomically to a
//! file for node_exporter's textfile collector (a batch command has no port to scrape).
//!
//! Every series describes the last run (gauges), plus the time it ended and the time of the
//! last run that delivered everything, so an alert can say "the crawler has not reported for a
//! day" or "findings are piling up in the spool".

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::CrawlError;
use crate::crawler::{Chain, Verdict};
use crate::spool::Delivery;

/// Counters of one run.
#[derive(Debug, Clone, Default)]
pub struct RunMetrics {
    /// Seeds crawled.
    pub seeds: u64,
    /// Seed lines that were not http(s) URLs.
    pub bad_seeds: u64,
    /// Seed feeds fetched and read.
    pub feeds_read: u64,
    /// Seed feeds that could not be fetched or were refused.
    pub feeds_failed: u64,
    /// Feed URLs crawled by the run.
    pub feed_seeds: u64,
    /// Feed URLs skipped as crawled recently.
    pub feed_seeds_recent: u64,
    /// Fetches (nodes).
    pub pages: u64,
    /// Body bytes read (after decompression).
    pub bytes: u64,
    /// Nodes per verdict.
    pub verdicts: BTreeMap<&'static str, u64>,
    /// Nodes with an error, per reason (`timeout`, `tls`, `connect`, `other`, `loop`, `too-big`).
    pub errors: BTreeMap<&'static str, u64>,
    /// Observations made for the hub.
    pub observations: u64,
    /// Known-bad indicators read from the hub (None: not asked, or the hub did not answer).
    pub hub_indicators: Option<u64>,
    /// Batches written to the spool in this run.
    pub batches_spooled: u64,
    /// Hub deliveries in this run (all [`crate::spool::deliver`] calls added up).
    pub delivery: Delivery,
    /// Site cases opened.
    pub cases_opened: u64,
    /// Owner notices sent.
    pub notices_sent: u64,
    /// Wall time of the run.
    pub duration: Duration,
    /// When the run ended (seconds since the epoch).
    pub finished_unix: f64,
    /// When a run last ended with nothing left in the spool (this run, if it did; otherwise the
    /// value from the previous file).
    pub last_success_unix: Option<f64>,
}

impl RunMetrics {
    /// Counts one chain's nodes.
    pub fn add_chain(&mut self, chain: &Chain) {
        self.seeds += 1;
        for n in &chain.nodes {
            self.pages += 1;
            self.bytes += n.size;
            *self.verdicts.entry(n.verdict.as_str()).or_insert(0) += 1;
            if let Some(e) = n.error {
                *self.errors.entry(e).or_insert(0) += 1;
            }
        }
    }

    /// Adds what a delivery call did (pending counts are those of the latest call).
    pub fn add_delivery(&mut self, d: &Delivery) {
        let t = &mut self.delivery;
        t.batches_sent += d.batches_sent;
        t.observations_sent += d.observations_sent;
        t.stored += d.stored;
        t.duplicates += d.duplicates;
        t.batches_rejected += d.batches_rejected;
        t.failed_attempts += d.failed_attempts;
        t.pending_batches = d.pending_batches;
        t.pending_observations = d.pending_observations;
        if d.last_error.is_some() {
            t.last_error.clone_from(&d.last_error);
        }
    }

    /// The Prometheus text.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(4096);
        let mut gauge = |name: &str, help: &str, series: &[(String, f64)]| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (labels, v) in series {
                let _ = writeln!(s, "{name}{labels} {v}");
            }
        };
        let one = |v: f64| vec![(String::new(), v)];
        let f = |v: u64| v as f64;
        gauge("kizuna_crawl_last_run_seeds", "Seeds crawled by the last run.", &one(f(self.seeds)));
        gauge(
            "kizuna_crawl_last_run_bad_seeds",
            "Seed lines of the last run that were not http(s) URLs (skipped).",
            &one(f(self.bad_seeds)),
        );
        gauge(
            "kizuna_crawl_last_run_seed_feeds",
            "Seed feeds of the last run: read, or failed (fetch error, HTTP status, too large).",
            &[("{result=\"read\"}".into(), f(self.feeds_read)), ("{result=\"failed\"}".into(), f(self.feeds_failed))],
        );
        gauge(
            "kizuna_crawl_last_run_feed_seeds",
            "URLs from seed feeds in the last run: crawled, or skipped as crawled recently.",
            &[
                ("{result=\"crawled\"}".into(), f(self.feed_seeds)),
                ("{result=\"recent\"}".into(), f(self.feed_seeds_recent)),
            ],
        );
        gauge("kizuna_crawl_last_run_pages_fetched", "Fetches (chain nodes) of the last run.", &one(f(self.pages)));
        gauge(
            "kizuna_crawl_last_run_bytes_fetched",
            "Body bytes read by the last run, after decompression.",
            &one(f(self.bytes)),
        );
        let verdicts: Vec<(String, f64)> = Verdict::ALL
            .iter()
            .map(|v| (format!("{{verdict=\"{}\"}}", v.as_str()), f(*self.verdicts.get(v.as_str()).unwrap_or(&0))))
            .collect();
        gauge("kizuna_crawl_last_run_verdicts", "Chain nodes of the last run per verdict.", &verdicts);
        let errors: Vec<(String, f64)> = ["timeout", "tls", "connect", "other", "loop", "too-big"]
            .iter()
            .map(|r| (format!("{{reason=\"{r}\"}}"), f(*self.errors.get(r).unwrap_or(&0))))
            .collect();
        gauge("kizuna_crawl_last_run_errors", "Chain nodes of the last run with an error, per reason.", &errors);
        gauge(
            "kizuna_crawl_last_run_observations",
            "Observations the last run made for the hub.",
            &one(f(self.observations)),
        );
        gauge(
            "kizuna_crawl_last_run_hub_indicators",
            "Known-bad indicators the last run read from the hub (-1: not loaded).",
            &one(self.hub_indicators.map_or(-1.0, f)),
        );
        let d = &self.delivery;
        gauge(
            "kizuna_crawl_last_run_hub_batches",
            "Spooled batches of the last run: written to the spool, acknowledged by the hub, refused as malformed.",
            &[
                ("{result=\"spooled\"}".into(), f(self.batches_spooled)),
                ("{result=\"sent\"}".into(), d.batches_sent as f64),
                ("{result=\"rejected\"}".into(), d.batches_rejected as f64),
            ],
        );
        gauge(
            "kizuna_crawl_last_run_hub_observations",
            "Observations the hub acknowledged in the last run: newly stored, already held (resent).",
            &[("{result=\"stored\"}".into(), f(d.stored)), ("{result=\"duplicate\"}".into(), f(d.duplicates))],
        );
        gauge(
            "kizuna_crawl_last_run_hub_failed_attempts",
            "Failed hub deliveries in the last run (each retried later).",
            &one(d.failed_attempts as f64),
        );
        gauge(
            "kizuna_crawl_spool_pending_batches",
            "Batches waiting in the spool for the hub after the last run.",
            &one(d.pending_batches as f64),
        );
        gauge(
            "kizuna_crawl_spool_pending_observations",
            "Observations waiting in the spool for the hub after the last run.",
            &one(d.pending_observations as f64),
        );
        gauge("kizuna_crawl_last_run_cases_opened", "Site cases opened by the last run.", &one(f(self.cases_opened)));
        gauge("kizuna_crawl_last_run_notices_sent", "Owner notices sent by the last run.", &one(f(self.notices_sent)));
        gauge(
            "kizuna_crawl_last_run_duration_seconds",
            "Wall time of the last run.",
            &one(self.duration.as_secs_f64()),
        );
        gauge(
            "kizuna_crawl_last_run_timestamp_seconds",
            "When the last run ended (Unix time).",
            &one(self.finished_unix),
        );
        if let Some(t) = self.last_success_unix {
            gauge(
                "kizuna_crawl_last_success_timestamp_seconds",
                "When a run last ended with every finding acknowledged by the hub (Unix time).",
                &one(t),
            );
        }
        s
    }

    /// Writes [`RunMetrics::render`] to `path` atomically (temporary file in the same directory,
    /// fsync, rename), so the collector never reads half a file.
    pub fn write_textfile(&self, path: &Path) -> Result<(), CrawlError> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| CrawlError::io(dir, e))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Not ending in .prom: the collector ignores it while it is being written.
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(|e| CrawlError::io(&tmp, e))?;
        f.write_all(self.render().as_bytes()).and_then(|()| f.sync_all()).map_err(|e| CrawlError::io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| CrawlError::io(path, e))
    }
}

/// The `kizuna_crawl_last_success_timestamp_seconds` value of an existing metrics file (kept
/// across runs that did not deliver everything).
pub fn previous_success(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("kizuna_crawl_last_success_timestamp_seconds "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_is_prometheus_text_and_the_write_is_atomic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut m = RunMetrics { seeds: 2, pages: 7, bytes: 1234, observations: 5, ..RunMetrics::default() };
        m.verdicts.insert("entry", 1);
        m.errors.insert("timeout", 2);
        m.delivery.pending_batches = 1;
        m.finished_unix = 1_800_000_000.0;
        m.last_success_unix = Some(1_799_000_000.5);
        let p = dir.path().join("kizuna_crawl.prom");
        m.write_textfile(&p).expect("write");
        let text = std::fs::read_to_string(&p).expect("read");
        assert!(text.contains("kizuna_crawl_last_run_verdicts{verdict=\"entry\"} 1\n"), "{text}");
        assert!(text.contains("kizuna_crawl_last_run_verdicts{verdict=\"clean\"} 0\n"), "{text}");
        assert!(text.contains("kizuna_crawl_last_run_errors{reason=\"timeout\"} 2\n"), "{text}");
        assert!(text.contains("kizuna_crawl_spool_pending_batches 1\n"), "{text}");
        // Every sample line follows a TYPE line of its family.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().expect("name");
            assert!(text.contains(&format!("# TYPE {name} gauge")), "{l}");
            assert!(l.rsplit(' ').next().expect("v").parse::<f64>().is_ok(), "{l}");
        }
        assert_eq!(previous_success(&p), Some(1_799_000_000.5));
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
    }
}
