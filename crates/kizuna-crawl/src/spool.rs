//! Findings are never lost: every batch of observations for the hub first goes to an on-disk
//! spool (one file per batch, written to a temporary name, fsynced, renamed, directory fsynced),
//! and a file is removed only after the hub has acknowledged it (a 2xx answer with its ingest
//! summary, which the hub sends after its commit). [`deliver`] sends what is spooled, oldest
//! first, retrying with doubling delays while the hub is unreachable or failing; whatever is
//! left is sent at the next run. The hub is idempotent by content id (an observation's id is a
//! hash of its content), so a batch resent after a lost acknowledgement counts as duplicates,
//! never twice.
//!
//! A batch the hub refuses as malformed (400, 413, 415, 422) would be refused forever: it is
//! moved to `rejected/` beside the spool (kept for the operator, with the hub's answer in a
//! `.reason` file) instead of blocking the queue. An unknown sensor token (401, 403) stops
//! delivery and keeps everything spooled until the operator fixes the token.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use url::Url;

use crate::CrawlError;
use crate::judge::sha256_hex;

/// File name suffix of a spooled batch (IntelMQ JSON lines).
const SUFFIX: &str = ".ndjson";
/// Prefix of files being written (never sent; removed on open).
const TMP_PREFIX: &str = ".tmp-";

/// The spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

/// One spooled batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolEntry {
    /// The file.
    pub path: PathBuf,
    /// Observations in it (lines).
    pub observations: usize,
    /// Size in bytes.
    pub bytes: u64,
}

impl SpoolEntry {
    /// The file name (sent to the hub as the batch's source name).
    pub fn name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
}

impl Spool {
    /// Opens (creates) the spool directory. Leftover temporary files of a run that died while
    /// writing are removed: they were never reported as spooled.
    pub fn open(dir: &Path) -> Result<Spool, CrawlError> {
        std::fs::create_dir_all(dir).map_err(|e| CrawlError::io(dir, e))?;
        for e in std::fs::read_dir(dir).map_err(|e| CrawlError::io(dir, e))?.flatten() {
            if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(Spool { dir: dir.to_owned() })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where refused batches go.
    pub fn rejected_dir(&self) -> PathBuf {
        self.dir.join("rejected")
    }

    /// Writes one batch durably: temporary file, fsync, rename, fsync of the directory. The
    /// name orders batches by time and carries a content hash.
    pub fn put(&self, lines: &[u8]) -> Result<SpoolEntry, CrawlError> {
        let micros = kizuna_model::Timestamp::now().as_micros();
        let name = format!("{micros:016x}-{}{SUFFIX}", &sha256_hex(lines)[..16]);
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{TMP_PREFIX}{name}"));
        let mut f = std::fs::File::create(&tmp).map_err(|e| CrawlError::io(&tmp, e))?;
        f.write_all(lines).and_then(|()| f.sync_all()).map_err(|e| CrawlError::io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(|e| CrawlError::io(&path, e))?;
        sync_dir(&self.dir)?;
        Ok(SpoolEntry { path, observations: count_lines(lines), bytes: lines.len() as u64 })
    }

    /// The spooled batches, oldest first.
    pub fn pending(&self) -> Result<Vec<SpoolEntry>, CrawlError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).map_err(|e| CrawlError::io(&self.dir, e))? {
            let e = e.map_err(|e| CrawlError::io(&self.dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_PREFIX) || !name.ends_with(SUFFIX) {
                continue;
            }
            let path = e.path();
            let data = std::fs::read(&path).map_err(|e| CrawlError::io(&path, e))?;
            out.push(SpoolEntry { path, observations: count_lines(&data), bytes: data.len() as u64 });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Removes an acknowledged batch (and makes the removal durable).
    pub fn remove(&self, e: &SpoolEntry) -> Result<(), CrawlError> {
        std::fs::remove_file(&e.path).map_err(|err| CrawlError::io(&e.path, err))?;
        sync_dir(&self.dir)
    }

    /// Moves a batch the hub refused as malformed to `rejected/`, with the hub's answer.
    pub fn reject(&self, e: &SpoolEntry, reason: &str) -> Result<PathBuf, CrawlError> {
        let d = self.rejected_dir();
        std::fs::create_dir_all(&d).map_err(|err| CrawlError::io(&d, err))?;
        let to = d.join(e.name());
        let why = d.join(format!("{}.reason", e.name()));
        std::fs::write(&why, format!("{reason}\n")).map_err(|err| CrawlError::io(&why, err))?;
        std::fs::rename(&e.path, &to).map_err(|err| CrawlError::io(&to, err))?;
        sync_dir(&d)?;
        sync_dir(&self.dir)?;
        Ok(to)
    }
}

fn count_lines(data: &[u8]) -> usize {
    data.split(|&b| b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count()
}

fn sync_dir(dir: &Path) -> Result<(), CrawlError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| CrawlError::io(dir, e))
}

/// Delays between delivery attempts.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First delay after a failure.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Stop retrying this long after delivery started (the rest waits for the next run).
    pub give_up_after: Duration,
}

impl Backoff {
    /// From the `[hub]` section.
    pub fn from_config(h: &crate::config::HubLink) -> Backoff {
        Backoff {
            initial: Duration::from_millis(h.retry_initial_ms),
            max: Duration::from_millis(h.retry_max_ms.max(h.retry_initial_ms)),
            give_up_after: Duration::from_secs(h.retry_for_secs),
        }
    }

    /// No waiting: one attempt (used while the crawl is still running).
    pub fn once() -> Backoff {
        Backoff { initial: Duration::ZERO, max: Duration::ZERO, give_up_after: Duration::ZERO }
    }
}

/// What one [`deliver`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Batches the hub acknowledged (removed from the spool).
    pub batches_sent: usize,
    /// Observations in them.
    pub observations_sent: usize,
    /// The hub stored this many new observations…
    pub stored: u64,
    /// …and already had this many (resent after a lost acknowledgement).
    pub duplicates: u64,
    /// Batches the hub refused as malformed (moved to `rejected/`).
    pub batches_rejected: usize,
    /// Failed attempts (each followed by a delay, or by giving up).
    pub failed_attempts: usize,
    /// Batches still spooled after this call.
    pub pending_batches: usize,
    /// Observations still spooled.
    pub pending_observations: usize,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// How the hub answered a batch.
#[derive(Debug)]
enum Refusal {
    /// Try again later (unreachable, 5xx, 408, 429, a bad answer).
    Transient(String),
    /// The token is not accepted, or the hub URL is unusable: retrying will not help until the
    /// operator acts.
    Unauthorized(String),
    /// The batch itself is refused.
    Malformed(String),
}

async fn post(
    client: &reqwest::Client,
    hub: &str,
    token: &str,
    name: &str,
    body: Vec<u8>,
) -> Result<serde_json::Value, Refusal> {
    let mut url = Url::parse(&format!("{}/api/v1/ingest", hub.trim_end_matches('/')))
        .map_err(|e| Refusal::Unauthorized(format!("hub URL {hub:?}: {e}")))?;
    url.query_pairs_mut().append_pair("format", "intelmq").append_pair("name", name);
    let resp = client
        .post(url.clone())
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
        .body(body)
        .send()
        .await
        .map_err(|e| Refusal::Transient(format!("POST {url}: {}", error_chain(&e))))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| Refusal::Transient(format!("POST {url}: {e}")))?;
    let msg = || format!("POST {url}: {status}: {}", text.trim());
    match status.as_u16() {
        200..=299 => serde_json::from_str(&text)
            .map_err(|e| Refusal::Transient(format!("POST {url}: not an ingest summary ({e}): {}", text.trim()))),
        401 | 403 => Err(Refusal::Unauthorized(msg())),
        400 | 413 | 415 | 422 => Err(Refusal::Malformed(msg())),
        _ => Err(Refusal::Transient(msg())),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

/// Sends every spooled batch to the hub's ingest route, oldest first, removing each once the
/// hub acknowledged it. While the hub is unreachable or failing, waits with doubling delays
/// (`backoff`) and tries the same batch again, until `give_up_after` has passed; the batches
/// left stay spooled for the next call. Never fails: problems are in the returned [`Delivery`].
pub async fn deliver(spool: &Spool, client: &reqwest::Client, hub: &str, token: &str, backoff: Backoff) -> Delivery {
    let started = Instant::now();
    let mut d = Delivery::default();
    let mut delay = backoff.initial;
    let entries = match spool.pending() {
        Ok(e) => e,
        Err(e) => {
            d.last_error = Some(e.to_string());
            return d;
        }
    };
    let mut left = entries.as_slice();
    'batches: while let Some((e, rest)) = left.split_first() {
        loop {
            let body = match std::fs::read(&e.path) {
                Ok(b) => b,
                Err(err) => {
                    d.last_error = Some(format!("{}: {err}", e.path.display()));
                    break 'batches;
                }
            };
            match post(client, hub, token, &format!("kizuna-crawl/{}", e.name()), body).await {
                Ok(summary) => {
                    if let Err(err) = spool.remove(e) {
                        // Acknowledged but still on disk: it is resent next time, as duplicates.
                        d.last_error = Some(err.to_string());
                    }
                    d.batches_sent += 1;
                    d.observations_sent += e.observations;
                    d.stored += summary["stored"].as_u64().unwrap_or(0);
                    d.duplicates += summary["duplicates"].as_u64().unwrap_or(0);
                    delay = backoff.initial;
                    left = rest;
                    continue 'batches;
                }
                Err(Refusal::Malformed(m)) => {
                    tracing::error!("hub refused spooled batch {}: {m}", e.path.display());
                    d.failed_attempts += 1;
                    d.batches_rejected += 1;
                    if let Err(err) = spool.reject(e, &m) {
                        d.last_error = Some(err.to_string());
                        break 'batches;
                    }
                    d.last_error = Some(m);
                    left = rest;
                    continue 'batches;
                }
                Err(Refusal::Unauthorized(m)) => {
                    d.failed_attempts += 1;
                    d.last_error = Some(m);
                    break 'batches;
                }
                Err(Refusal::Transient(m)) => {
                    d.failed_attempts += 1;
                    tracing::warn!("hub delivery failed (attempt {}): {m}", d.failed_attempts);
                    d.last_error = Some(m);
                    let elapsed = started.elapsed();
                    if elapsed + delay > backoff.give_up_after || delay.is_zero() {
                        break 'batches;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(backoff.max);
                }
            }
        }
    }
    d.pending_batches = left.len();
    d.pending_observations = left.iter().map(|e| e.observations).sum();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_pending_remove_reject() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".tmp-half-written.ndjson"), b"{").expect("write");
        let s = Spool::open(dir.path()).expect("open");
        assert!(!dir.path().join(".tmp-half-written.ndjson").exists(), "a half-written batch is dropped");
        assert!(s.pending().expect("pending").is_empty());
        let a = s.put(b"{\"a\":1}\n{\"a\":2}\n").expect("put");
        std::thread::sleep(Duration::from_millis(2));
        let b = s.put(b"{\"b\":1}\n").expect("put");
        assert_eq!(a.observations, 2);
        let p = s.pending().expect("pending");
        assert_eq!(p, vec![a.clone(), b.clone()], "oldest first");
        s.remove(&a).expect("remove");
        let to = s.reject(&b, "400 bad").expect("reject");
        assert!(to.exists());
        assert_eq!(
            std::fs::read_to_string(s.rejected_dir().join(format!("{}.reason", b.name()))).expect("r"),
            "400 bad\n"
        );
        assert!(s.pending().expect("pending").is_empty(), "rejected batches are not pending");
    }
}
