//! Parsers: bytes in, observations and errors out.
//!
//! Every parser is a pure, streaming function over a [`std::io::BufRead`]: it yields one
//! [`Item`] per input record and never aborts the stream for a bad record. A malformed record
//! becomes [`Item::Rejected`] with its line number, reason and raw text; a well-formed record the
//! format defines but kizuna does not turn into an observation (a Suricata `stats` line, a
//! Cowrie `cowrie.client.version`) becomes [`Item::Skipped`] so it can be counted.
//!
//! Formats: [`Format`]. Each lives in its own module with its fixtures under
//! `tests/fixtures/<format>/`:
//!
//! - [`cowrie`]: Cowrie honeypot JSON lines;
//! - [`suricata`]: Suricata EVE JSON (alerts);
//! - [`shadowserver`]: Shadowserver report CSVs, driven by Shadowserver's published schema;
//! - [`intelmq`]: IntelMQ event JSON lines, in and out ([`intelmq::write_json`] is also the
//!   store's encoding);
//! - [`csv`]: any CSV through a configured [`CsvMapping`].
//!
//! ```
//! use kizuna_parsers::{parse, Context, Format, Item};
//! use kizuna_model::{LegalBasis, Timestamp};
//!
//! let ctx = Context::new("cowrie.json", Timestamp::from_secs(1_772_668_900));
//! let input = br#"{"eventid":"cowrie.login.failed","username":"root","password":"1234","src_ip":"203.0.113.9","session":"a1b2c3d4e5f6","timestamp":"2026-03-05T00:00:12.345678Z","sensor":"hp1"}"#;
//! let items: Vec<Item> = parse(&Format::Cowrie, &ctx, &input[..]).unwrap().collect();
//! let Item::Observation(o) = &items[0] else { panic!() };
//! assert_eq!(o.classification.kind.as_str(), "brute-force");
//! assert_eq!(o.legal_basis, LegalBasis::LegitimateBusiness);
//! ```
//!
//! Rules common to all formats:
//! - records are numbered by their first line (1-based); blank lines are not records;
//! - the context's `tlp`, `feed_name` and `feed_provider` override what the format sets;
//! - an observation that misses IntelMQ's minimum ([`Observation::check_minimum`]) is rejected;
//! - a read error ends the stream with one last [`Item::Rejected`] saying so.

#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cowrie;
pub mod csv;
mod driver;
mod field;
pub mod intelmq;
pub mod shadowserver;
pub mod suricata;
mod time;

use std::io::BufRead;

use kizuna_model::{LegalBasis, Observation, Rejected, Timestamp, Tlp};

pub use crate::csv::{Column, CsvMapping};
pub use field::INTELMQ_PREFIX;

/// One input record's fate.
#[derive(Debug, Clone, PartialEq)]
// Observations are the common case; boxing them would cost an allocation per record.
#[allow(clippy::large_enum_variant)]
pub enum Item {
    /// The record became an observation.
    Observation(Observation),
    /// A well-formed record kizuna does not turn into an observation; `what` names its kind
    /// (a Cowrie eventid such as `cowrie.session.closed`, or `suricata.<event_type>`), for counting.
    Skipped {
        /// The kind of record.
        what: String,
    },
    /// A record that could not be used, with its raw text.
    Rejected(Rejected),
}

/// Per input file.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// File name (`-` for stdin); used for Shadowserver report detection and in [`Rejected`].
    pub source_name: String,
    /// `time.observation` of every observation (IntelMQ input keeps its own when it has one).
    pub time_observation: Timestamp,
    /// Overrides the TLP; else the format's default (AMBER for sensor data; IntelMQ input keeps
    /// its own `tlp`).
    pub tlp: Option<Tlp>,
    /// Legal basis of every observation (IntelMQ input keeps its own `extra.legal_basis`).
    pub legal_basis: LegalBasis,
    /// Overrides `feed.name`.
    pub feed_name: Option<String>,
    /// Overrides `feed.provider`.
    pub feed_provider: Option<String>,
}

impl Context {
    /// A context with no overrides and the default legal basis.
    pub fn new(source_name: impl Into<String>, time_observation: Timestamp) -> Self {
        Context {
            source_name: source_name.into(),
            time_observation,
            tlp: None,
            legal_basis: LegalBasis::default(),
            feed_name: None,
            feed_provider: None,
        }
    }
}

/// An input format.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// Cowrie JSON lines ([`cowrie`]).
    Cowrie,
    /// Suricata EVE JSON lines ([`suricata`]).
    Suricata,
    /// A Shadowserver report CSV ([`shadowserver`]); the report type comes from the file name
    /// unless given.
    Shadowserver {
        /// The report type (the schema's `file_name`, e.g. `event4_sinkhole`, or its key).
        report: Option<String>,
    },
    /// IntelMQ event JSON lines ([`intelmq`]).
    IntelMq,
    /// A CSV read through a mapping ([`csv`]).
    Csv(CsvMapping),
}

/// A format name that is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {name:?}; known formats: {}{}", Format::KNOWN.join(", "), mappings_note(.mappings))]
pub struct UnknownFormat {
    /// The name given.
    pub name: String,
    /// Names of the configured CSV mappings.
    pub mappings: Vec<String>,
}

fn mappings_note(m: &[String]) -> String {
    if m.is_empty() {
        " (no CSV mappings are configured)".to_owned()
    } else {
        format!(" (configured CSV mappings: {})", m.join(", "))
    }
}

impl Format {
    /// The names [`Format::from_name`] accepts.
    pub const KNOWN: &'static [&'static str] = &["cowrie", "suricata", "shadowserver", "intelmq", "csv:<mapping name>"];

    /// `"cowrie" | "suricata" | "shadowserver" | "shadowserver:<report>" | "intelmq" | "csv:<name>"`.
    pub fn from_name(name: &str, csv_mappings: &[CsvMapping]) -> Result<Format, UnknownFormat> {
        let unknown =
            || UnknownFormat { name: name.to_owned(), mappings: csv_mappings.iter().map(|m| m.name.clone()).collect() };
        Ok(match name {
            "cowrie" => Format::Cowrie,
            "suricata" => Format::Suricata,
            "shadowserver" => Format::Shadowserver { report: None },
            "intelmq" => Format::IntelMq,
            _ => {
                if let Some(r) = name.strip_prefix("shadowserver:") {
                    if r.is_empty() {
                        return Err(unknown());
                    }
                    Format::Shadowserver { report: Some(r.to_owned()) }
                } else if let Some(m) = name.strip_prefix("csv:") {
                    Format::Csv(csv_mappings.iter().find(|c| c.name == m).cloned().ok_or_else(unknown)?)
                } else {
                    return Err(unknown());
                }
            }
        })
    }
}

/// Why an input cannot be parsed at all (as opposed to a bad record, which is an
/// [`Item::Rejected`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The Shadowserver report type could not be read from the file name.
    #[error(
        "{file}: cannot tell the Shadowserver report type from the file name (expected \
         [YYYY-MM-DD-]<report>[-…].csv); give the format as shadowserver:<report>"
    )]
    ReportNotInFileName {
        /// The file.
        file: String,
    },
    /// The Shadowserver report type is not in the schema.
    #[error("{file}: unknown Shadowserver report type {report:?} (not in the schema)")]
    UnknownReport {
        /// The file.
        file: String,
        /// The report type.
        report: String,
    },
    /// The CSV header lacks a column the format requires.
    #[error("{file}: CSV header has no column {column:?}, required for {field}")]
    MissingColumn {
        /// The file.
        file: String,
        /// The column.
        column: String,
        /// The field it feeds.
        field: String,
    },
    /// A CSV mapping is not usable.
    #[error("{file}: CSV mapping {mapping:?} is invalid: {reason}")]
    InvalidMapping {
        /// The file.
        file: String,
        /// The mapping's name.
        mapping: String,
        /// What is wrong.
        reason: String,
    },
    /// The Shadowserver schema could not be loaded.
    #[error("{file}: {source}")]
    Schema {
        /// The file.
        file: String,
        /// Why.
        source: shadowserver::SchemaError,
    },
    /// Reading the header failed.
    #[error("{file}: reading the header failed: {source}")]
    Io {
        /// The file.
        file: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Streaming: yields one [`Item`] per record, in input order.
///
/// Setup (report detection, header checks) happens here, so a file that cannot be parsed at
/// all is refused before anything is yielded.
pub fn parse<'a, R: BufRead + Send + 'a>(
    format: &'a Format,
    ctx: &'a Context,
    input: R,
) -> Result<Box<dyn Iterator<Item = Item> + Send + 'a>, SetupError> {
    Ok(match format {
        Format::Cowrie => Box::new(cowrie::parse(ctx, input)),
        Format::Suricata => Box::new(suricata::parse(ctx, input)),
        Format::IntelMq => Box::new(intelmq::parse(ctx, input)),
        Format::Shadowserver { report } => {
            let schema = shadowserver::schema()
                .map_err(|source| SetupError::Schema { file: ctx.source_name.clone(), source: source.clone() })?;
            shadowserver::parse_with_schema(schema, report.as_deref(), ctx, input)?
        }
        Format::Csv(m) => crate::csv::parse(m, ctx, input)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names() {
        let m: CsvMapping = CsvMapping { name: "bl".into(), ..CsvMapping::default() };
        assert_eq!(Format::from_name("cowrie", &[]).unwrap(), Format::Cowrie);
        assert_eq!(
            Format::from_name("shadowserver:scan_http", &[]).unwrap(),
            Format::Shadowserver { report: Some("scan_http".into()) }
        );
        assert_eq!(Format::from_name("csv:bl", std::slice::from_ref(&m)).unwrap(), Format::Csv(m.clone()));
        let e = Format::from_name("zeek", &[m]).unwrap_err().to_string();
        assert!(e.contains("cowrie, suricata, shadowserver, intelmq, csv:<mapping name>"), "{e}");
        assert!(e.contains("configured CSV mappings: bl"), "{e}");
        assert!(Format::from_name("csv:nope", &[]).is_err());
        assert!(Format::from_name("shadowserver:", &[]).is_err());
    }
}
