//! STIX 2.1 and MISP feed mapping of kizuna indicators (pure: JSON values in and out, no IO).
//!
//! - [`export`]: indicators → STIX 2.1 objects (indicator with a pattern, malware with the
//!   canonical family name and its aliases, `indicates` relationships, identity of the
//!   producing organisation, the standard TLP marking-definitions, kizuna's own
//!   extension-definition carrying legal basis, purpose, sharing groups, named recipients and
//!   provenance), sightings and observed-data for aggregated observations; deterministic ids
//!   (UUIDv5 from the indicator key) so a re-export updates the same object (`modified` bumps).
//! - [`import`]: STIX 2.0/2.1 objects → indicators with their TLP (from the marking refs,
//!   well-known ids or marking-definitions in the bundle), producer (`created_by_ref` identity)
//!   and kizuna properties when present. Objects that cannot be used are counted and reported
//!   with the reason; they never abort the batch.
//! - [`misp`]: MISP feed export (`manifest.json`, `hashes.csv`, one `<uuid>.json` per event)
//!   and import.
//! - [`tlp`]: marking-definitions of TLP 1.0 and 2.0; [`aliases`]: malware family names.
//!
//! Which items go to whom is not decided here: callers filter with `kizuna-policy` first.

#![warn(missing_docs)]

pub mod aliases;
pub mod export;
pub mod ids;
pub mod import;
pub mod misp;
pub mod pattern;
pub mod tlp;

pub use aliases::AliasTable;
pub use export::{BundleBuilder, ExportItem, ExportOptions, Provenance, SightingItem, sighting_objects};
pub use import::{ImportOptions, ImportReport, ImportedIndicator, ImportedSighting, IndicatorLookup, Rejection};
pub use tlp::TlpStyle;

use kizuna_model::Timestamp;

/// The id of kizuna's extension-definition (properties STIX has no field for).
pub const KIZUNA_EXTENSION: &str = "extension-definition--2f8a3b7e-6d1c-5a4e-9b0f-4b1d6c7e8a90";

/// STIX timestamp with millisecond precision: `2026-03-05T00:00:12.000Z`.
pub fn stix_time(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// TAXII/STIX timestamp with microsecond precision (TAXII `date_added`).
pub fn stix_time_micros(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Parses a STIX timestamp (RFC 3339, `Z`).
pub fn parse_time(s: &str) -> Option<Timestamp> {
    Timestamp::parse(s)
}
