//! Any CSV, through a configured [`CsvMapping`] (`--format csv:<name>`).
//!
//! A mapping names IntelMQ fields and says which column fills each, which fields are
//! constant, and how times are written. In the TOML configuration:
//!
//! ```toml
//! [[csv_mappings]]
//! name = "partner-blocklist"          # --format csv:partner-blocklist
//! delimiter = ","                     # one ASCII character; "\t" for TSV (default ",")
//! header = true                       # first record names the columns (default true)
//! comment = "#"                       # lines starting with it are not records (default: none)
//! time_format = "%Y-%m-%d %H:%M:%S"   # "rfc3339" (default, lenient ISO 8601), "unix",
//!                                     # "unix_ms", or a strftime pattern; no offset = UTC
//! required = ["source.ip"]            # an empty value rejects the row (default: none)
//! unmapped_to_extra = false           # other columns to extra.<header> (default false)
//! [csv_mappings.columns]              # IntelMQ field = column name (or 1-based number)
//! "source.ip" = "ip"
//! "time.source" = "first_seen"
//! "classification.identifier" = "threat"
//! "extra.reason" = "reason"
//! [csv_mappings.constants]            # IntelMQ field = value
//! "feed.name" = "Partner-Blocklist"   # default: the mapping's name
//! "feed.provider" = "Partner CERT"
//! "classification.type" = "blacklist" # required, here or in columns
//! ```
//!
//! Field names: every key of the model (`source.ip`, `source.network`, `destination.port`,
//! `malware.hash.sha256`, `tlp`, …), `extra.<name>` (text), and other IntelMQ harmonization
//! keys (kept as `extra["intelmq.<key>"]`, see [`crate::intelmq`]). Values are normalised as
//! IntelMQ does (host names lower-cased, `AS64496` read as 64496, networks truncated to their
//! prefix). A column value wins over a constant for the same field.
//!
//! Per row: a mapped value that is present but invalid (a bad address, port or time) rejects
//! the row, naming the field and column; so does an empty value of a `required` field, a row
//! too short for the columns the mapping reads, and a row missing IntelMQ's minimum.
//! Defaults: TLP AMBER (or the `tlp` constant), the context's legal basis.

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::Deserialize;
use serde_json::Value;

use kizuna_model::{Timestamp, Tlp};

use crate::driver::{self, CsvRecord, CsvRecords, Outcome};
use crate::field::{Builder, Field, INTELMQ_OTHER_KEYS, INTELMQ_PREFIX, Mode, Scalar};
use crate::{Context, Item, SetupError};

/// A column: its header name, or its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Column {
    /// 1-based position (works with or without a header).
    Index(usize),
    /// Header name (needs `header = true`).
    Name(String),
}

/// A generic CSV format; see the [module docs](self) for a commented example.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsvMapping {
    /// The name used in `--format csv:<name>`.
    pub name: String,
    /// Field delimiter, one ASCII character. Default `,`.
    pub delimiter: String,
    /// Whether the first record is a header. Default true.
    pub header: bool,
    /// Lines starting with this ASCII character are comments. Default: none.
    pub comment: Option<String>,
    /// Whether `"` quotes fields. Default true.
    pub quoting: bool,
    /// Whether blanks around values are trimmed. Default true.
    pub trim: bool,
    /// IntelMQ field → column.
    pub columns: BTreeMap<String, Column>,
    /// IntelMQ field → constant value.
    pub constants: BTreeMap<String, String>,
    /// Fields whose empty value rejects the row.
    pub required: Vec<String>,
    /// How times are written: `rfc3339` (default: lenient ISO 8601), `unix`, `unix_ms`, or a
    /// strftime pattern (`%Y-%m-%d %H:%M:%S`); times without offset are UTC.
    pub time_format: Option<String>,
    /// Put columns no field maps into `extra.<header name>` (needs a header). Default false.
    pub unmapped_to_extra: bool,
}

impl Default for CsvMapping {
    fn default() -> Self {
        CsvMapping {
            name: String::new(),
            delimiter: ",".into(),
            header: true,
            comment: None,
            quoting: true,
            trim: true,
            columns: BTreeMap::new(),
            constants: BTreeMap::new(),
            required: Vec::new(),
            time_format: None,
            unmapped_to_extra: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Target {
    Model(Field),
    Extra(String),
}

fn target(key: &str) -> Result<Target, String> {
    if let Some(f) = Field::from_key(key) {
        return Ok(Target::Model(f));
    }
    if let Some(x) = key.strip_prefix("extra.") {
        if x.is_empty() {
            return Err("field \"extra.\" needs a name".into());
        }
        return Ok(Target::Extra(x.to_owned()));
    }
    if INTELMQ_OTHER_KEYS.contains(&key) {
        return Ok(Target::Extra(format!("{INTELMQ_PREFIX}{key}")));
    }
    Err(format!("{key:?} is not an IntelMQ field name (use extra.<name> for others)"))
}

#[derive(Debug, Clone, PartialEq)]
enum TimeFormat {
    Rfc3339,
    Unix,
    UnixMs,
    Strftime(String),
}

impl TimeFormat {
    fn of(s: Option<&str>) -> Result<TimeFormat, String> {
        Ok(match s {
            None | Some("rfc3339") => TimeFormat::Rfc3339,
            Some("unix") => TimeFormat::Unix,
            Some("unix_ms") => TimeFormat::UnixMs,
            Some(f) => {
                if !f.contains('%')
                    || chrono::format::StrftimeItems::new(f).any(|i| matches!(i, chrono::format::Item::Error))
                {
                    return Err(format!("time_format {f:?} is not rfc3339, unix, unix_ms or a strftime pattern"));
                }
                TimeFormat::Strftime(f.to_owned())
            }
        })
    }

    fn parse(&self, s: &str) -> Option<Timestamp> {
        match self {
            TimeFormat::Rfc3339 => crate::time::parse(s),
            TimeFormat::Unix => {
                if let Ok(n) = s.parse::<i64>() {
                    return n.checked_mul(1_000_000).map(Timestamp::from_micros);
                }
                let f: f64 = s.parse().ok()?;
                (f.is_finite() && f.abs() < 9e12).then(|| Timestamp::from_micros((f * 1e6).round() as i64))
            }
            TimeFormat::UnixMs => s.parse::<i64>().ok()?.checked_mul(1000).map(Timestamp::from_micros),
            TimeFormat::Strftime(f) => {
                if let Ok(t) = chrono::DateTime::parse_from_str(s, f) {
                    return Some(t.into());
                }
                if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
                    return Some(t.and_utc().into());
                }
                chrono::NaiveDate::parse_from_str(s, f).ok()?.and_hms_opt(0, 0, 0).map(|t| t.and_utc().into())
            }
        }
    }
}

fn one_byte(s: &str, what: &str) -> Result<u8, String> {
    match s.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(format!("{what} must be one ASCII character, not {s:?}")),
    }
}

struct Step {
    target: Target,
    col: usize,
    required: bool,
    label: String,
}

/// A mapping checked and bound to a header.
struct Plan {
    steps: Vec<Step>,
    constants: Vec<(Target, String)>,
    time: TimeFormat,
    feed_name: String,
    /// Columns to copy to extra: (index, header name).
    unmapped: Vec<(usize, String)>,
    min_len: usize,
    trim: bool,
    legal_basis: kizuna_model::LegalBasis,
    time_observation: Timestamp,
}

impl CsvMapping {
    /// Checks the mapping without reading any input: delimiter and comment characters, field
    /// names, constants, time format, that `classification.type` is given, and that named
    /// columns come with a header.
    pub fn validate(&self) -> Result<(), String> {
        self.check().map(|_| ())
    }

    fn check(&self) -> Result<(Vec<(Target, String)>, TimeFormat), String> {
        one_byte(&self.delimiter, "delimiter")?;
        if let Some(c) = &self.comment {
            one_byte(c, "comment")?;
        }
        let time = TimeFormat::of(self.time_format.as_deref())?;
        if !self.columns.contains_key("classification.type") && !self.constants.contains_key("classification.type") {
            return Err("classification.type must be given in constants or columns".into());
        }
        for (field, col) in &self.columns {
            target(field)?;
            match col {
                Column::Index(0) => return Err(format!("column of {field}: positions start at 1")),
                Column::Name(n) if !self.header => {
                    return Err(format!("column {n:?} of {field} is a name but header = false"));
                }
                _ => {}
            }
        }
        if self.unmapped_to_extra && !self.header {
            return Err("unmapped_to_extra needs header = true".into());
        }
        for r in &self.required {
            if !self.columns.contains_key(r) {
                return Err(format!("required field {r} has no column"));
            }
        }
        let mut constants = Vec::new();
        let mut b = Builder::new("x", Timestamp::from_secs(0));
        for (field, v) in &self.constants {
            let t = target(field)?;
            if let Target::Model(f) = t {
                b.set(f, Scalar::Str(v.as_str().into()), Mode::Normalize)
                    .map_err(|e| format!("constant {field}: {e}"))?;
            }
            constants.push((t, v.clone()));
        }
        Ok((constants, time))
    }

    fn plan(&self, header: Option<&[String]>, ctx: &Context) -> Result<Plan, SetupError> {
        let invalid = |reason: String| SetupError::InvalidMapping {
            file: ctx.source_name.clone(),
            mapping: self.name.clone(),
            reason,
        };
        let (constants, time) = self.check().map_err(invalid)?;
        let mut steps = Vec::new();
        let mut used = Vec::new();
        for (field, col) in &self.columns {
            let (idx, label) = match col {
                Column::Index(i) => (i - 1, format!("{field} (column {i})")),
                Column::Name(n) => {
                    let i = header.and_then(|h| h.iter().position(|x| x == n)).ok_or_else(|| {
                        SetupError::MissingColumn {
                            file: ctx.source_name.clone(),
                            column: n.clone(),
                            field: field.clone(),
                        }
                    })?;
                    (i, format!("{field} (column {n})"))
                }
            };
            used.push(idx);
            steps.push(Step {
                target: target(field).map_err(invalid)?,
                col: idx,
                required: self.required.contains(field),
                label,
            });
        }
        let unmapped = match header {
            Some(h) if self.unmapped_to_extra => {
                h.iter().enumerate().filter(|(i, _)| !used.contains(i)).map(|(i, n)| (i, n.clone())).collect()
            }
            _ => Vec::new(),
        };
        let feed_name = self.constants.get("feed.name").cloned().unwrap_or_else(|| self.name.clone());
        Ok(Plan {
            min_len: used.iter().map(|i| i + 1).max().unwrap_or(0),
            steps,
            constants,
            time,
            feed_name,
            unmapped,
            trim: self.trim,
            legal_basis: ctx.legal_basis,
            time_observation: ctx.time_observation,
        })
    }
}

impl CsvRecord for Plan {
    fn record(&mut self, rec: &csv::ByteRecord) -> Outcome {
        if rec.len() < self.min_len {
            return Outcome::Reject(format!(
                "row has {} columns, the mapping reads column {}",
                rec.len(),
                self.min_len
            ));
        }
        let cell = |i: usize| {
            let s = crate::shadowserver::text(rec, i);
            match s {
                std::borrow::Cow::Borrowed(b) if self.trim => std::borrow::Cow::Borrowed(b.trim()),
                std::borrow::Cow::Owned(o) if self.trim => std::borrow::Cow::Owned(o.trim().to_owned()),
                s => s,
            }
        };
        let mut b = Builder::new(self.feed_name.clone(), self.time_observation);
        b.o.tlp = Tlp::Amber;
        b.o.legal_basis = self.legal_basis;
        for (t, v) in &self.constants {
            match t {
                Target::Model(f) => {
                    let _ = b.set(*f, Scalar::Str(v.as_str().into()), Mode::Normalize);
                }
                Target::Extra(k) => {
                    b.o.extra.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
        for s in &self.steps {
            let v = cell(s.col);
            if v.is_empty() {
                if s.required {
                    return Outcome::Reject(format!("{}: empty", s.label));
                }
                continue;
            }
            match &s.target {
                Target::Model(f @ (Field::TimeSource | Field::TimeObservation)) => {
                    let Some(t) = self.time.parse(&v) else {
                        return Outcome::Reject(format!("{}: invalid time {v:?}", s.label));
                    };
                    if *f == Field::TimeSource {
                        b.o.time_source = Some(t);
                    } else {
                        b.o.time_observation = t;
                    }
                }
                Target::Model(f) => {
                    if let Err(e) = b.set(*f, Scalar::Str(v), Mode::Normalize) {
                        return Outcome::Reject(format!("{}: {e}", s.label));
                    }
                }
                Target::Extra(k) => {
                    b.o.extra.insert(k.clone(), Value::String(v.into_owned()));
                }
            }
        }
        for (i, name) in &self.unmapped {
            let v = cell(*i);
            if !v.is_empty() {
                b.o.extra.insert(name.clone(), Value::String(v.into_owned()));
            }
        }
        Outcome::obs(b.finish())
    }
}

/// Parses `input` with `mapping`; the header (if any) is read and checked here.
pub(crate) fn parse<'a, R: BufRead + Send + 'a>(
    mapping: &'a CsvMapping,
    ctx: &'a Context,
    input: R,
) -> Result<Box<dyn Iterator<Item = Item> + Send + 'a>, SetupError> {
    let invalid = |reason: String| SetupError::InvalidMapping {
        file: ctx.source_name.clone(),
        mapping: mapping.name.clone(),
        reason,
    };
    let delimiter = one_byte(&mapping.delimiter, "delimiter").map_err(invalid)?;
    let comment = mapping.comment.as_deref().map(|c| one_byte(c, "comment")).transpose().map_err(invalid)?;
    let mut reader = driver::csv_reader(input, delimiter, mapping.quoting, comment);
    let plan = if mapping.header {
        let mut rec = csv::ByteRecord::new();
        let io = |e: csv::Error| SetupError::Io { file: ctx.source_name.clone(), source: std::io::Error::other(e) };
        if !driver::read_record(&mut reader, &mut rec).map_err(io)? {
            mapping.plan(Some(&[]), ctx).map(|_| ())?;
            return Ok(Box::new(std::iter::empty()));
        }
        let header = crate::shadowserver::header_names(&rec);
        mapping.plan(Some(&header), ctx)?
    } else {
        mapping.plan(None, ctx)?
    };
    Ok(Box::new(CsvRecords::new(reader, ctx, plan)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats() {
        let want = Some(Timestamp::from_secs(1_772_668_812));
        assert_eq!(TimeFormat::of(None).unwrap().parse("2026-03-05T00:00:12Z"), want);
        assert_eq!(TimeFormat::Unix.parse("1772668812"), want);
        assert_eq!(TimeFormat::Unix.parse("1772668812.25"), Some(Timestamp::from_micros(1_772_668_812_250_000)));
        assert_eq!(TimeFormat::UnixMs.parse("1772668812000"), want);
        let f = TimeFormat::of(Some("%d/%m/%Y %H:%M:%S")).unwrap();
        assert_eq!(f.parse("05/03/2026 00:00:12"), want);
        let f = TimeFormat::of(Some("%Y-%m-%d %H:%M:%S %z")).unwrap();
        assert_eq!(f.parse("2026-03-05 09:00:12 +0900"), want);
        let f = TimeFormat::of(Some("%Y%m%d")).unwrap();
        assert_eq!(f.parse("20260305"), Some(Timestamp::from_secs(1_772_668_800)));
        assert!(TimeFormat::of(Some("%Q")).is_err());
        assert!(TimeFormat::of(Some("iso")).is_err());
    }

    #[test]
    fn validation() {
        let mut m = CsvMapping { name: "x".into(), ..CsvMapping::default() };
        assert!(m.validate().unwrap_err().contains("classification.type"));
        m.constants.insert("classification.type".into(), "blacklist".into());
        assert_eq!(m.validate(), Ok(()));
        m.columns.insert("source.ipp".into(), Column::Name("ip".into()));
        assert!(m.validate().unwrap_err().contains("source.ipp"));
        m.columns.clear();
        m.constants.insert("classification.type".into(), "bad".into());
        assert!(m.validate().unwrap_err().contains("constant classification.type"));
        let m = CsvMapping { delimiter: "::".into(), ..m };
        assert!(m.validate().unwrap_err().contains("delimiter"));
    }
}
