//! The ingest pipeline: parse → normalise → attribute → durable commit.
//!
//! [`ingest`] drives one input stream through a parser ([`kizuna_parsers::parse`]), attributes
//! every observation to a member ISP ([`kizuna_attrib::Attributor`]), and commits batches to a
//! [`Store`]. The CLI (`kizuna ingest`) and the hub's HTTP ingest endpoint both call it, so the
//! two paths behave identically.
//!
//! Shape: the parser runs on its own thread and hands fixed-size batches through a bounded
//! channel to a second thread (attribution, content id, the store's body encoding
//! [`kizuna_store::codec::EncodedBatch`], per-member counts), which hands them to the
//! committing thread ([`Store::commit_encoded`]); a last thread frees committed batches. Memory
//! is bounded by `channel depth × batch size`, never by the input's size (a 10M-line file takes
//! the same memory as a 10k-line one), and parsing and encoding overlap with the store's commit.
//!
//! **Invariant:** a batch is counted as stored only after [`Store::commit_batch`] returned; a
//! record that fails to parse is committed to quarantine in the same transaction as the good
//! records around it, so an error never loses good data and never aborts the stream.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kizuna_attrib::{Attributor, MemberSpace};
use kizuna_model::{MemberId, ObservationId, Rejected, Routed};
use kizuna_parsers::{Context, Format, Item};
use kizuna_store::codec::EncodedBatch;
use kizuna_store::{Batch, BatchOutcome, Store, StoreError};

/// Errors that stop an ingest run. Bad records never do: they are quarantined.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The input could not be set up for parsing (unknown report type, missing header, …).
    #[error(transparent)]
    Setup(#[from] kizuna_parsers::SetupError),
    /// The store failed; batches committed before the failure stay committed.
    #[error("committing to the store failed after {committed} observations were committed: {source}")]
    Store {
        /// Observations committed before the failure.
        committed: u64,
        /// The store error.
        source: StoreError,
    },
    /// The parser thread died (a bug: parsers do not panic on input).
    #[error("the parser thread stopped unexpectedly")]
    ParserDied,
    /// The post-commit step ([`ingest_with`]) failed; the batch it saw stays committed.
    #[error("after committing {committed} observations, the post-commit step failed: {message}")]
    AfterCommit {
        /// Observations committed (including the batch the step failed on).
        committed: u64,
        /// The step's error.
        message: String,
    },
}

/// Tuning for [`ingest`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Observations per committed batch.
    pub batch_size: usize,
    /// Batches that may wait between two stages (parse → encode, commit → free). 1 by default:
    /// deeper queues did not ingest faster (measured 2026-12-01, 1M rows: 31–39 % of the
    /// parse-only speed at 4, 38–44 % at 1) and let peak RSS grow with the input (10M rows:
    /// 920 MiB at 4, 693 MiB at 1, against 653 and 680 MiB at 1M).
    pub queue_depth: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { batch_size: 20_000, queue_depth: 1 }
    }
}

/// What an ingest run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records read (observations + skipped + rejected).
    pub read: u64,
    /// Observations newly stored.
    pub stored: u64,
    /// Observations already stored (same content id).
    pub duplicates: u64,
    /// Records rejected and kept in quarantine.
    pub quarantined: u64,
    /// Well-formed records the format defines but kizuna does not keep, by kind.
    pub skipped: BTreeMap<String, u64>,
    /// Parsed observations attributed to a member (stored or duplicate).
    pub attributed: u64,
    /// Parsed observations with no member (kept for national statistics).
    pub unattributed: u64,
    /// Parsed observations per member.
    pub per_member: BTreeMap<MemberId, u64>,
    /// The first few rejections, for display.
    pub first_rejections: Vec<Rejected>,
}

impl Summary {
    /// Total skipped records.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Parsed observations (stored + duplicates).
    pub fn observations(&self) -> u64 {
        self.stored + self.duplicates
    }

    /// Adds another run's counts to this one.
    pub fn merge(&mut self, o: &Summary) {
        self.read += o.read;
        self.stored += o.stored;
        self.duplicates += o.duplicates;
        self.quarantined += o.quarantined;
        for (k, v) in &o.skipped {
            *self.skipped.entry(k.clone()).or_default() += v;
        }
        self.attributed += o.attributed;
        self.unattributed += o.unattributed;
        for (k, v) in &o.per_member {
            *self.per_member.entry(*k).or_default() += v;
        }
        let room = MAX_KEPT_REJECTIONS.saturating_sub(self.first_rejections.len());
        self.first_rejections.extend(o.first_rejections.iter().take(room).cloned());
    }
}

const MAX_KEPT_REJECTIONS: usize = 10;

/// Counts bytes read through it, for progress bars.
pub struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> CountingReader<R> {
    /// Wraps `inner`; `count` is incremented by every byte read.
    pub fn new(inner: R, count: Arc<AtomicU64>) -> Self {
        CountingReader { inner, count }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for CountingReader<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.count.fetch_add(amt as u64, Ordering::Relaxed);
        self.inner.consume(amt)
    }
}

/// Builds the attributor from the store's routing table and members.
pub fn attributor_from_store(store: &dyn Store) -> Result<Attributor, StoreError> {
    let routes = store.routes()?;
    let members = store.members()?;
    Ok(Attributor::new(
        &routes,
        members.iter().map(|m| MemberSpace { member: m.id, asns: &m.asns, prefixes: &m.prefixes }),
    ))
}

/// Parses, attributes and commits one input stream. Returns after the last batch committed.
pub fn ingest<R: BufRead + Send>(
    store: &dyn Store,
    attributor: &Attributor,
    format: &Format,
    ctx: &Context,
    input: R,
    opts: &Options,
) -> Result<Summary, IngestError> {
    ingest_with(store, attributor, format, ctx, input, opts, &|_| Ok(()))
}

/// A step run on the committing thread after each batch is durably committed and before the
/// next one is (e.g. deriving indicators from the batch's observations). It sees the whole
/// batch, duplicates included, so it must be idempotent: a sender that retries after an error
/// re-runs it on the same observations.
pub type AfterCommit<'a> = &'a (dyn Fn(&Batch) -> Result<(), String> + Sync);

/// [`ingest`] with a post-commit step. An error from the step stops the run like a store error
/// ([`IngestError::AfterCommit`]); the batches committed so far stay committed.
pub fn ingest_with<R: BufRead + Send>(
    store: &dyn Store,
    attributor: &Attributor,
    format: &Format,
    ctx: &Context,
    input: R,
    opts: &Options,
    after_commit: AfterCommit<'_>,
) -> Result<Summary, IngestError> {
    let batch_size = opts.batch_size.max(1);
    let depth = opts.queue_depth.max(1);
    // Four stages, each on its own thread, joined by bounded channels: parse → attribute, id,
    // encode the bodies and count per member → commit (this thread) → free the batch. The
    // parser does no more than a parse-only pass, and the committing thread only writes:
    // encoding and freeing a batch (many small allocations) cost about as much as the SQLite
    // work itself, and here they overlap with the next commit.
    let (tx, rx) = crossbeam_channel::bounded::<Chunk>(depth);
    let (enc_tx, enc_rx) = crossbeam_channel::bounded::<(Chunk, EncodedBatch)>(1);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<(Chunk, EncodedBatch)>(depth);
    // Set up the parser on this thread so a setup error is returned before anything starts.
    let items = kizuna_parsers::parse(format, ctx, input)?;
    std::thread::scope(|scope| {
        let parser = scope.spawn(move || {
            let mut chunk = Chunk::with_capacity(batch_size);
            for item in items {
                chunk.read += 1;
                match item {
                    // Attributed and identified on the next stage.
                    Item::Observation(o) => chunk.batch.observations.push(Routed {
                        id: ObservationId([0; 16]),
                        observation: o,
                        member: None,
                    }),
                    Item::Skipped { what } => *chunk.skipped.entry(what).or_default() += 1,
                    Item::Rejected(r) => chunk.batch.rejected.push(r),
                }
                if chunk.batch.observations.len() + chunk.batch.rejected.len() >= batch_size {
                    let full = std::mem::replace(&mut chunk, Chunk::with_capacity(batch_size));
                    if tx.send(full).is_err() {
                        return; // the committer stopped on a store error
                    }
                }
            }
            let _ = tx.send(chunk);
        });
        let encoder = scope.spawn(move || {
            for mut chunk in rx.iter() {
                for r in &mut chunk.batch.observations {
                    let o = &mut r.observation;
                    let attribution = o.attribution_ip().map(|ip| attributor.attribute(ip)).unwrap_or_default();
                    if o.source.asn.is_none() {
                        o.source.asn = attribution.asn;
                    }
                    r.id = o.id();
                    r.member = attribution.member;
                }
                chunk.tally();
                let encoded = EncodedBatch::of(&chunk.batch);
                if enc_tx.send((chunk, encoded)).is_err() {
                    return; // the committer stopped; dropping `rx` stops the parser
                }
            }
        });
        let dropper = scope.spawn(move || for _ in done_rx.iter() {});

        let mut summary = Summary::default();
        let mut result = Ok(());
        for (chunk, encoded) in enc_rx.iter() {
            match store.commit_encoded(&chunk.batch, &encoded) {
                Ok(outcome) => summary.add_chunk(&chunk, outcome),
                Err(source) => {
                    result = Err(IngestError::Store { committed: summary.stored, source });
                    break;
                }
            }
            if let Err(message) = after_commit(&chunk.batch) {
                result = Err(IngestError::AfterCommit { committed: summary.stored, message });
                break;
            }
            // Freeing happens on the dropper thread; it only fails if that thread died.
            let _ = done_tx.send((chunk, encoded));
        }
        drop(enc_rx);
        drop(done_tx);
        let died = [parser.join().is_err(), encoder.join().is_err(), dropper.join().is_err()];
        if died.contains(&true) {
            return Err(IngestError::ParserDied);
        }
        result.map(|()| summary)
    })
}

struct Chunk {
    batch: Batch,
    read: u64,
    skipped: BTreeMap<String, u64>,
    /// Filled by [`Chunk::tally`] off the committing thread.
    attributed: u64,
    unattributed: u64,
    per_member: BTreeMap<MemberId, u64>,
}

impl Chunk {
    fn with_capacity(n: usize) -> Self {
        Chunk {
            batch: Batch { observations: Vec::with_capacity(n), rejected: Vec::new() },
            read: 0,
            skipped: BTreeMap::new(),
            attributed: 0,
            unattributed: 0,
            per_member: BTreeMap::new(),
        }
    }

    /// Counts the batch's observations per member.
    fn tally(&mut self) {
        let mut last: Option<(MemberId, u64)> = None;
        for r in &self.batch.observations {
            match r.member {
                Some(m) => {
                    self.attributed += 1;
                    match &mut last {
                        Some((lm, n)) if *lm == m => *n += 1,
                        _ => {
                            if let Some((lm, n)) = last.take() {
                                *self.per_member.entry(lm).or_default() += n;
                            }
                            last = Some((m, 1));
                        }
                    }
                }
                None => self.unattributed += 1,
            }
        }
        if let Some((lm, n)) = last {
            *self.per_member.entry(lm).or_default() += n;
        }
    }
}

impl Summary {
    fn add_chunk(&mut self, chunk: &Chunk, outcome: BatchOutcome) {
        self.read += chunk.read;
        self.stored += outcome.stored;
        self.duplicates += outcome.duplicates;
        self.quarantined += outcome.quarantined;
        for (k, v) in &chunk.skipped {
            *self.skipped.entry(k.clone()).or_default() += v;
        }
        self.attributed += chunk.attributed;
        self.unattributed += chunk.unattributed;
        for (m, n) in &chunk.per_member {
            *self.per_member.entry(*m).or_default() += n;
        }
        let room = MAX_KEPT_REJECTIONS.saturating_sub(self.first_rejections.len());
        self.first_rejections.extend(chunk.batch.rejected.iter().take(room).cloned());
    }
}
