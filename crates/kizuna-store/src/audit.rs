//! The append-only, hash-chained audit log.
//!
//! Every entry's hash covers its sequence number, its record and the previous entry's hash, so
//! changing, inserting or removing an entry breaks the chain from that point on. Removing the
//! newest entries leaves a valid shorter chain; that is caught by comparing with an *anchor*
//! (the sequence number and hash of the newest entry) kept outside the store, see
//! [`verify`].

use sha2::{Digest, Sha256};

use kizuna_model::Timestamp;

use crate::{Result, Store};

/// What happened, by whom, to what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// When.
    pub at: Timestamp,
    /// Who: "cli:operator", "member:3", "hub".
    pub actor: String,
    /// What: "member.add", "token.issue", "token.revoke", "report.read", …
    pub action: String,
    /// To what: "member:3", "token:7", …
    pub subject: String,
    /// Details as compact JSON (no secrets, no subscriber identities).
    pub detail: String,
}

/// A chained entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// 1-based, contiguous.
    pub seq: u64,
    /// The record.
    pub record: AuditRecord,
    /// Hash of the previous entry (all zero for the first).
    pub prev_hash: [u8; 32],
    /// This entry's hash: [`chain_hash`]`(seq, prev_hash, record)`.
    pub hash: [u8; 32],
}

/// The hash of an entry.
pub fn chain_hash(seq: u64, prev_hash: &[u8; 32], r: &AuditRecord) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kizuna.audit.v1");
    h.update(seq.to_be_bytes());
    h.update(prev_hash);
    h.update(r.at.as_micros().to_be_bytes());
    for field in [&r.actor, &r.action, &r.subject, &r.detail] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finalize().into()
}

/// The newest entry's position, kept outside the store to detect removal of the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// Sequence number of the newest entry.
    pub seq: u64,
    /// Its hash.
    pub hash: [u8; 32],
}

impl Anchor {
    /// `seq:hexhash`.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.seq, hex::encode(self.hash))
    }

    /// Parses [`Anchor::encode`]'s form.
    pub fn decode(s: &str) -> Option<Anchor> {
        let (seq, h) = s.trim().split_once(':')?;
        let mut hash = [0u8; 32];
        hex::decode_to_slice(h, &mut hash).ok()?;
        Some(Anchor { seq: seq.parse().ok()?, hash })
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The chain is intact (and matches the anchor, when one was given).
    Intact {
        /// Entries checked.
        entries: u64,
    },
    /// The chain is broken at `seq`.
    Broken {
        /// The first sequence number where the log disagrees with itself or the anchor.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Verifies entries given in order from the first. With an anchor, also checks that the entry
/// the anchor names is present with the same hash (entries after it may exist: appended after
/// the anchor was written).
pub fn verify(entries: impl IntoIterator<Item = AuditEntry>, anchor: Option<Anchor>) -> Verdict {
    let mut v = Verifier::new(anchor);
    for e in entries {
        if let Some(broken) = v.push(&e) {
            return broken;
        }
    }
    v.finish()
}

/// Incremental form of [`verify`]: feed entries in order with [`Verifier::push`], then call
/// [`Verifier::finish`]. Lets a caller verify a log of any length page by page.
#[derive(Debug, Clone)]
pub struct Verifier {
    prev: [u8; 32],
    expected_seq: u64,
    anchor: Option<Anchor>,
    anchor_seen: bool,
}

impl Verifier {
    /// A verifier expecting entry 1 first.
    pub fn new(anchor: Option<Anchor>) -> Self {
        Verifier { prev: [0u8; 32], expected_seq: 1, anchor, anchor_seen: false }
    }

    /// Checks the next entry; returns the verdict when the chain is broken there.
    pub fn push(&mut self, e: &AuditEntry) -> Option<Verdict> {
        let expected_seq = self.expected_seq;
        if e.seq != expected_seq {
            return Some(Verdict::Broken {
                seq: expected_seq,
                reason: format!("entry {expected_seq} is missing (next entry found is {})", e.seq),
            });
        }
        if e.prev_hash != self.prev {
            return Some(Verdict::Broken { seq: e.seq, reason: "previous-hash link does not match".into() });
        }
        let h = chain_hash(e.seq, &e.prev_hash, &e.record);
        if h != e.hash {
            return Some(Verdict::Broken {
                seq: e.seq,
                reason: "entry content does not match its hash (modified)".into(),
            });
        }
        if let Some(a) = self.anchor
            && a.seq == e.seq
        {
            if a.hash != e.hash {
                return Some(Verdict::Broken { seq: e.seq, reason: "entry differs from the anchor".into() });
            }
            self.anchor_seen = true;
        }
        self.prev = h;
        self.expected_seq += 1;
        None
    }

    /// The verdict after the last entry.
    pub fn finish(self) -> Verdict {
        let last = self.expected_seq - 1;
        if let Some(a) = self.anchor
            && !self.anchor_seen
            && a.seq > 0
        {
            return Verdict::Broken {
                seq: self.expected_seq,
                reason: format!(
                    "log ends at entry {last} but the anchor records entry {}: entries were removed",
                    a.seq
                ),
            };
        }
        Verdict::Intact { entries: last }
    }
}

/// Entries read per page by [`verify_store`].
pub const VERIFY_PAGE: usize = 1000;

/// Verifies a store's whole audit log, reading it in pages of [`VERIFY_PAGE`] entries (memory
/// stays flat however long the log is). Pass the anchor kept outside the store (e.g.
/// [`crate::sqlite::SqliteStore::audit_anchor`]) to detect removal of the newest entries.
pub fn verify_store(store: &dyn Store, anchor: Option<Anchor>) -> Result<Verdict> {
    let mut v = Verifier::new(anchor);
    let mut after = 0u64;
    loop {
        let page = store.audit_entries(after, VERIFY_PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            if let Some(broken) = v.push(e) {
                return Ok(broken);
            }
        }
    }
    Ok(v.finish())
}
