//! Attribution of an address to a member ISP and to its origin AS, by longest prefix match.
//!
//! - [`PrefixTable`]: an immutable LPM table (flattened ranges; IPv4 in a DIR-24-8 array of
//!   value ids, IPv6 under a 16-bit direct index with a branchless search in the bucket), built
//!   once and read lock-free from many threads.
//! - [`parse_ipasn`] / [`write_ipasn`]: the pyasn "ipasn" text format for routing tables.
//! - [`Attributor`]: member and ASN tables built from routes and members' declared space.
//!
//! This crate does no network IO and holds no subscriber data: it maps addresses to members.

#![warn(missing_docs)]

mod attributor;
mod ipasn;
mod table;

pub use attributor::{Attribution, Attributor, MemberSpace};
pub use ipasn::{parse_ipasn, write_ipasn};
pub use kizuna_model::{IpNet, MemberId, Rejected};
pub use table::PrefixTable;
