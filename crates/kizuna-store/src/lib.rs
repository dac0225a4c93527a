//! Durable state of the hub behind one interface: [`Store`].
//!
//! Backends: [`sqlite::SqliteStore`] (the embedded default, one file in the data directory).
//! A PostgreSQL backend comes later; every backend must pass the battery in [`conformance`].
//!
//! What the store guarantees (and the battery checks):
//! - [`Store::commit_batch`] returns only after the batch is durably committed, and commits it
//!   all or nothing. Observations are keyed by their content-derived id: committing the same
//!   observation again adds nothing and is counted as a duplicate.
//! - Every stored observation gets a sequence number, strictly increasing in commit order and
//!   never reused (numbers may skip). [`Store::page`] walks one member's observations by sequence from a [`Cursor`]; a reader that
//!   pages while ingestion goes on sees every observation exactly once.
//! - The audit log is append-only and hash-chained ([`audit`]); [`audit::verify`] detects a
//!   modified, inserted or removed entry; [`audit::verify_store`] checks a whole store page by
//!   page, against an anchor kept outside it ([`sqlite::SqliteStore::audit_anchor`]).
//!
//! Observations are kept in the store's own compact encoding ([`codec`]), independent of any
//! wire format.
//!
//! **Invariant:** the store holds no subscriber identity. It never sees one: the hub only ever
//! hands it observations, members (ISPs, not their customers), tokens (hashed) and audit entries.

pub mod audit;
pub mod codec;
pub mod conformance;
pub mod console;
pub mod indicators;
pub mod sharing;
pub mod sqlite;
pub mod stats;

use std::net::IpAddr;
use std::time::Duration;

use kizuna_model::{IpNet, MemberId, ObservationId, Rejected, Routed, Timestamp};

pub use audit::{AuditEntry, AuditRecord};

/// Errors from a store backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (IO, SQL, corruption).
    #[error("store backend: {0}")]
    Backend(String),
    /// A stored record could not be decoded.
    #[error("stored record {what} is corrupt: {reason}")]
    Corrupt {
        /// Which record.
        what: String,
        /// Why.
        reason: String,
    },
    /// The caller asked for something that conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// No such member, token or record.
    #[error("not found: {0}")]
    NotFound(String),
}

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One unit of ingestion: committed all or nothing.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Parsed, attributed observations.
    pub observations: Vec<Routed>,
    /// Lines that could not be parsed, kept in quarantine with their raw text.
    pub rejected: Vec<Rejected>,
}

/// What a committed batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Observations newly stored.
    pub stored: u64,
    /// Observations whose id was already stored (including repeats inside the batch).
    pub duplicates: u64,
    /// Records added to quarantine.
    pub quarantined: u64,
}

impl std::ops::AddAssign for BatchOutcome {
    fn add_assign(&mut self, o: Self) {
        self.stored += o.stored;
        self.duplicates += o.duplicates;
        self.quarantined += o.quarantined;
    }
}

/// A member ISP as the hub knows it: its name, address space and contacts. Never its
/// subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Hub-local id.
    pub id: MemberId,
    /// Short unique name, e.g. "example-isp".
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// ASNs the member routes; every prefix these originate in the routing table is its.
    pub asns: Vec<u32>,
    /// Prefixes assigned to the member explicitly (IPv4 and IPv6).
    pub prefixes: Vec<IpNet>,
    /// Abuse-desk contacts (e-mail addresses of the ISP's team, not of subscribers).
    pub contacts: Vec<String>,
    /// When the member was added.
    pub created: Timestamp,
}

/// The fields of a member to create or replace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberSpec {
    /// Short unique name.
    pub name: String,
    /// Display name (defaults to the name when empty).
    pub display_name: String,
    /// ASNs.
    pub asns: Vec<u32>,
    /// Prefixes.
    pub prefixes: Vec<IpNet>,
    /// Contacts.
    pub contacts: Vec<String>,
}

/// SHA-256 of an API token. Tokens themselves are never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

/// A token's metadata (never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Store-assigned id.
    pub id: u64,
    /// The member it belongs to.
    pub member: MemberId,
    /// A label the operator chose ("abuse-desk pull", …).
    pub label: String,
    /// The first characters of the token, for recognising it in a list.
    pub prefix: String,
    /// When it was created.
    pub created: Timestamp,
    /// When it was revoked, if it was.
    pub revoked: Option<Timestamp>,
}

/// An observation as stored: its sequence number and routing.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObservation {
    /// Commit-ordered sequence number (1-based, strictly increasing, never reused).
    pub seq: u64,
    /// When the store committed it.
    pub stored_at: Timestamp,
    /// The observation with its id and member.
    pub routed: Routed,
}

/// A position in a member's stream of observations: everything with a sequence number above
/// it is still to come. `Cursor::START` is before the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor(pub u64);

impl Cursor {
    /// Before the first observation.
    pub const START: Cursor = Cursor(0);
}

/// A page of observations and the cursor to ask for the next page with.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// In sequence order.
    pub items: Vec<StoredObservation>,
    /// Where the next page starts. Equal to the cursor asked with when the page is empty.
    pub next: Cursor,
}

/// A quarantined record with its store id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineEntry {
    /// Store-assigned id.
    pub id: u64,
    /// When it was quarantined.
    pub at: Timestamp,
    /// The rejected record.
    pub rejected: Rejected,
}

/// Totals kept by the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Observations stored.
    pub observations: u64,
    /// Observations with no member (kept for national statistics).
    pub unattributed: u64,
    /// Records in quarantine.
    pub quarantined: u64,
    /// Per member: observations routed to it, by member id; members with none are left out.
    pub per_member: Vec<(MemberId, u64)>,
}

/// Retention: how long to keep a feed's observations.
#[derive(Debug, Clone, Default)]
pub struct Retention {
    /// Default for feeds not listed; `None` keeps forever.
    pub default: Option<Duration>,
    /// Per `feed.name`.
    pub per_feed: Vec<(String, Duration)>,
}

impl Retention {
    /// The retention period for a feed.
    pub fn for_feed(&self, feed: &str) -> Option<Duration> {
        self.per_feed.iter().find(|(f, _)| f == feed).map(|(_, d)| *d).or(self.default)
    }
}

/// Everything the hub needs from one backend: the core [`Store`] plus one trait per area
/// (indicators, sharing, member statistics, …), each defined in its own module of this crate
/// with its own conformance checks. A backend implements them all; services hold an
/// `Arc<dyn HubStore>` and upcast to the trait they use.
///
/// To add an area: define `pub trait FooStore: Send + Sync` in `src/foo.rs`, implement it for
/// `SqliteStore` in `src/sqlite/…` or `src/sqlite_foo.rs`, and add it to both lines below.
pub trait HubStore:
    Store + console::ConsoleStore + stats::StatsStore + indicators::IndicatorStore + sharing::SharingStore
{
}
impl<T: Store + console::ConsoleStore + stats::StatsStore + indicators::IndicatorStore + sharing::SharingStore + ?Sized>
    HubStore for T
{
}

/// The hub's durable state. Implementations are shared between threads; every method is a
/// complete transaction.
pub trait Store: Send + Sync {
    /// Commits a batch atomically and durably; returns after the commit.
    ///
    /// `Routed::id` must be the observation's content id (`Observation::id()`, which the pipeline
    /// computes anyway); the store does not recompute it.
    /// A batch routing an observation to a member that does not exist fails as a whole with
    /// [`StoreError::NotFound`] and stores nothing.
    fn commit_batch(&self, batch: &Batch) -> Result<BatchOutcome>;

    /// [`Store::commit_batch`] with the observations' bodies already encoded
    /// ([`codec::EncodedBatch::of`] of this `batch`, e.g. on the pipeline's encoder thread), so the
    /// committing thread only writes. Same semantics; a backend that does not keep
    /// [`codec`] bodies ignores `encoded`.
    fn commit_encoded(&self, batch: &Batch, encoded: &codec::EncodedBatch) -> Result<BatchOutcome> {
        let _ = encoded;
        self.commit_batch(batch)
    }

    /// One observation by id.
    fn observation(&self, id: &ObservationId) -> Result<Option<StoredObservation>>;

    /// Up to `limit` observations routed to `member` with a sequence number above `after`.
    fn page(&self, member: MemberId, after: Cursor, limit: usize) -> Result<Page>;

    /// Observations whose `source.ip` is `ip`, newest first, at most `limit` (any member).
    fn by_source_ip(&self, ip: IpAddr, limit: usize) -> Result<Vec<StoredObservation>>;

    /// Quarantined records with an id above `after`, at most `limit`.
    fn quarantine(&self, after: u64, limit: usize) -> Result<Vec<QuarantineEntry>>;

    /// Totals.
    fn totals(&self) -> Result<Totals>;

    /// Deletes observations whose `time.source` (else `time.observation`) is older than their
    /// feed's retention at `now`. Returns how many were deleted. Sequence numbers are never
    /// reused, so cursors stay valid.
    fn expire(&self, now: Timestamp, retention: &Retention) -> Result<u64>;

    /// Adds a member; the name must be new.
    fn add_member(&self, spec: &MemberSpec, now: Timestamp) -> Result<Member>;

    /// Replaces a member's fields (the name may not change to one in use).
    fn update_member(&self, id: MemberId, spec: &MemberSpec) -> Result<Member>;

    /// All members, by id.
    fn members(&self) -> Result<Vec<Member>>;

    /// A member by id.
    fn member(&self, id: MemberId) -> Result<Option<Member>>;

    /// A member by name.
    fn member_by_name(&self, name: &str) -> Result<Option<Member>>;

    /// Records a new token (by hash) for a member.
    fn add_token(
        &self,
        member: MemberId,
        hash: TokenHash,
        label: &str,
        prefix: &str,
        now: Timestamp,
    ) -> Result<TokenInfo>;

    /// Revokes a token; returns false when it was unknown or already revoked.
    fn revoke_token(&self, token_id: u64, now: Timestamp) -> Result<bool>;

    /// A member's tokens (including revoked ones).
    fn tokens(&self, member: MemberId) -> Result<Vec<TokenInfo>>;

    /// The member a live (not revoked) token belongs to.
    fn member_for_token(&self, hash: &TokenHash) -> Result<Option<MemberId>>;

    /// Replaces the routing table (prefix → origin ASN) in one transaction.
    fn replace_routes(&self, routes: &[(IpNet, u32)]) -> Result<()>;

    /// The routing table.
    fn routes(&self) -> Result<Vec<(IpNet, u32)>>;

    /// A number that changes whenever members or routes change (in this process or another
    /// sharing the store), so attribution tables can be rebuilt only when needed.
    fn routing_generation(&self) -> Result<u64>;

    /// Appends an audit record, chaining it to the previous entry in the same transaction.
    fn append_audit(&self, record: &AuditRecord) -> Result<AuditEntry>;

    /// Audit entries with a sequence number above `after`, in order, at most `limit`.
    fn audit_entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>>;
}
