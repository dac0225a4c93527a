//! Shadowserver report CSVs, driven by Shadowserver's published schema.
//!
//! Shadowserver publishes, for IntelMQ, a machine-readable schema of every report type
//! (`https://interchange.shadowserver.org/intelmq/v1/schema`, revision history in the
//! `The-Shadowserver-Foundation/report_schema` repository). A copy (2026-03-24, 170 reports) is
//! built in (`data/shadowserver-schema.json.gz`); operators load a newer one with
//! [`load_schema`] and [`install_schema`] (at start-up), or pass one to [`parse_with_schema`].
//!
//! How a file is read, as IntelMQ 3.5's Shadowserver parser does:
//! - **Report type** from the file name: `^(?:\d{4}-\d{2}-\d{2}-)?(\w+)(-\w+)*\.csv$`, group 1,
//!   matched against the entries' `file_name` (e.g. `2026-03-05-event4_sinkhole-jp-geo.csv` →
//!   `event4_sinkhole`; the schema key of that entry is `event_sinkhole`), or given explicitly
//!   as `shadowserver:<report>` (file name or key). `feed.name` is the entry's `feed_name`,
//!   `feed.provider` is `Shadowserver`, TLP AMBER.
//! - **Required fields** (`[intelmq key, column, conversion]`): a column missing from the header
//!   is a [`SetupError::MissingColumn`](crate::SetupError); a value that fails its conversion
//!   or the field's type (bad time, bad address, bad port) rejects the row, naming the field
//!   and column. An empty time rejects the row too.
//! - **Optional fields**: missing columns are ignored. A value that converts to nothing
//!   (`validate_to_none` on `0`/`unknown`, an invalid `dst_ip` under `validate_ip`, …) is
//!   dropped, not the row. A value that fails its conversion or the field's type is kept as
//!   text in `extra.<column>` (IntelMQ would drop the whole row on a conversion failure; kizuna
//!   keeps the row).
//! - Targets: `extra.` → `extra.<column>`; `extra.<name>` → `extra.<name>`; keys of the model →
//!   its fields (host names lower-cased, country codes upper-cased); other harmonization keys
//!   (`source.geolocation.city`, `severity`, `product.vendor`, `status`, …) →
//!   `extra["intelmq.<key>"]`, which the IntelMQ writer puts back under the original key;
//!   `product.*` values are lower-cased.
//! - A CIDR in `ip` (e.g. the `blocklist` report) becomes `source.network` with no `source.ip`.
//! - `constant_fields` are applied last and override.
//! - **Columns the schema does not know** go to `extra.<column>` as text (when not empty).
//! - A row whose column count differs from the header's is rejected; so is a row that misses
//!   IntelMQ's minimum (e.g. `ip` = `0.0.0.0`).
//!
//! Conversions implemented: every name the schema uses ([`Conversion`]); an unknown name is
//! treated as no conversion.

mod convert;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use kizuna_model::Tlp;

pub use convert::Conversion;
use convert::{RowCtx, convert};

use crate::driver::{self, CsvRecord, CsvRecords, Outcome};
use crate::field::{Builder, Field, INTELMQ_PREFIX, Mode, Scalar};
use crate::{Context, Item, SetupError};

/// The schema built into this version (Shadowserver's `intelmq.json`, gzip-compressed).
const BUILTIN: &[u8] = include_bytes!("../../data/shadowserver-schema.json.gz");

/// A schema that cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// Not gzip / not JSON / not an object.
    #[error("Shadowserver schema is not valid: {0}")]
    Invalid(String),
    /// The schema file could not be read.
    #[error("reading the Shadowserver schema {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        reason: String,
    },
    /// One report entry is malformed.
    #[error("Shadowserver schema entry {key:?} is not valid: {reason}")]
    Entry {
        /// The entry's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// Where a mapped value goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    Model(Field),
    /// `extra[key]`.
    Extra(String),
    /// `extra["intelmq.<key>"]`; `lower`: lower-case the value.
    Intelmq(String, bool),
    /// `false` in the schema: the column is consumed and dropped.
    Ignore,
}

impl Target {
    fn of(key: &Value) -> Result<Option<Target>, String> {
        match key {
            Value::Bool(false) | Value::Null => Ok(Some(Target::Ignore)),
            Value::String(k) if k == "extra." => Ok(None),
            Value::String(k) => Ok(Some(Target::of_key(k))),
            other => Err(format!("field key {other} is not a string")),
        }
    }

    fn of_key(k: &str) -> Target {
        if let Some(x) = k.strip_prefix("extra.") {
            return Target::Extra(x.to_owned());
        }
        match Field::from_key(k) {
            Some(f) => Target::Model(f),
            None => Target::Intelmq(format!("{INTELMQ_PREFIX}{k}"), k.starts_with("product.")),
        }
    }
}

/// One `[intelmq key, column, conversion?, with_row?]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMapping {
    /// The IntelMQ key (`extra.` for `extra.<column>`, empty for "ignore").
    pub key: String,
    /// The CSV column.
    pub column: String,
    /// The conversion.
    pub conversion: Conversion,
    target: Option<Target>,
}

/// One report type of the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The schema key (e.g. `event_sinkhole`).
    pub key: String,
    /// `feed_name`: becomes `feed.name` (e.g. `Sinkhole-Events IPv4`).
    pub feed_name: String,
    /// `file_name`: the report type in CSV file names (e.g. `event4_sinkhole`).
    pub file_name: String,
    /// Documentation URL.
    pub url: Option<String>,
    /// `required_fields`.
    pub required: Vec<FieldMapping>,
    /// `optional_fields`.
    pub optional: Vec<FieldMapping>,
    /// `constant_fields`.
    pub constants: Vec<(String, Value)>,
}

/// A Shadowserver report schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    reports: Vec<Report>,
    by_file_name: HashMap<String, usize>,
    by_key: HashMap<String, usize>,
    date_created: Option<String>,
}

#[derive(Deserialize)]
struct RawEntry {
    feed_name: String,
    file_name: String,
    #[serde(default)]
    constant_fields: BTreeMap<String, Value>,
    #[serde(default)]
    required_fields: Vec<Vec<Value>>,
    #[serde(default)]
    optional_fields: Vec<Vec<Value>>,
    #[serde(default)]
    url: Option<String>,
}

fn mapping(m: &[Value]) -> Result<FieldMapping, String> {
    let (key, column) = match m {
        [k, Value::String(c), ..] => (k, c.clone()),
        _ => return Err(format!("field mapping {m:?} is not [key, column, …]")),
    };
    let conversion = match m.get(2) {
        None | Some(Value::Null) => Conversion::Identity,
        Some(Value::String(f)) => Conversion::from_name(f),
        Some(other) => return Err(format!("conversion {other} is not a string")),
    };
    Ok(FieldMapping {
        key: key.as_str().unwrap_or("").to_owned(),
        column: column.clone(),
        conversion,
        target: Target::of(key)?,
    })
}

impl Schema {
    /// Reads a schema: Shadowserver's `intelmq.json`, plain or gzip-compressed.
    pub fn load(bytes: &[u8]) -> Result<Schema, SchemaError> {
        let plain;
        let json = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .map_err(|e| SchemaError::Invalid(format!("gzip: {e}")))?;
            plain = out;
            &plain[..]
        } else {
            bytes
        };
        let top: serde_json::Map<String, Value> =
            serde_json::from_slice(json).map_err(|e| SchemaError::Invalid(e.to_string()))?;
        let mut s =
            Schema { reports: Vec::new(), by_file_name: HashMap::new(), by_key: HashMap::new(), date_created: None };
        for (key, v) in top {
            if key.starts_with('_') {
                s.date_created = v.get("date_created").and_then(Value::as_str).map(str::to_owned).or(s.date_created);
                continue;
            }
            let err = |reason: String| SchemaError::Entry { key: key.clone(), reason };
            let raw: RawEntry = serde_json::from_value(v).map_err(|e| err(e.to_string()))?;
            let required =
                raw.required_fields.iter().map(|m| mapping(m)).collect::<Result<Vec<_>, _>>().map_err(err)?;
            let optional =
                raw.optional_fields.iter().map(|m| mapping(m)).collect::<Result<Vec<_>, _>>().map_err(err)?;
            let idx = s.reports.len();
            s.by_file_name.entry(raw.file_name.clone()).or_insert(idx);
            s.by_key.insert(key.clone(), idx);
            s.reports.push(Report {
                key,
                feed_name: raw.feed_name,
                file_name: raw.file_name,
                url: raw.url,
                required,
                optional,
                constants: raw.constant_fields.into_iter().collect(),
            });
        }
        Ok(s)
    }

    /// The report with this `file_name`, else with this key.
    pub fn report(&self, name: &str) -> Option<&Report> {
        self.by_file_name.get(name).or_else(|| self.by_key.get(name)).map(|&i| &self.reports[i])
    }

    /// Every report, in key order.
    pub fn reports(&self) -> impl Iterator<Item = &Report> {
        self.reports.iter()
    }

    /// `_meta.date_created`.
    pub fn date_created(&self) -> Option<&str> {
        self.date_created.as_deref()
    }
}

/// [`Schema::load`].
pub fn load_schema(bytes: &[u8]) -> Result<Schema, SchemaError> {
    Schema::load(bytes)
}

/// Reads a schema file (Shadowserver's `intelmq.json`, plain or gzip-compressed), e.g. the
/// `shadowserver-schema.json` an IntelMQ installation keeps up to date.
pub fn load_schema_file(path: &Path) -> Result<Schema, SchemaError> {
    let bytes =
        std::fs::read(path).map_err(|e| SchemaError::Io { path: path.display().to_string(), reason: e.to_string() })?;
    Schema::load(&bytes)
}

static INSTALLED: OnceLock<Schema> = OnceLock::new();
static BUILT_IN: OnceLock<Result<Schema, SchemaError>> = OnceLock::new();

/// The built-in schema (decoded on first use).
pub fn builtin_schema() -> Result<&'static Schema, &'static SchemaError> {
    BUILT_IN.get_or_init(|| Schema::load(BUILTIN)).as_ref()
}

/// Makes `schema` the one [`crate::parse`] uses, instead of the built-in one. Call once at
/// start-up; returns false (and changes nothing) when a schema was installed before.
pub fn install_schema(schema: Schema) -> bool {
    INSTALLED.set(schema).is_ok()
}

/// The installed schema, else the built-in one.
pub fn schema() -> Result<&'static Schema, &'static SchemaError> {
    match INSTALLED.get() {
        Some(s) => Ok(s),
        None => builtin_schema(),
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `(\w+)(-\w+)*\.csv$` on `s`: group 1.
fn report_part(s: &str) -> Option<&str> {
    let stem = s.strip_suffix(".csv")?;
    let mut parts = stem.split('-');
    let first = parts.next()?;
    let ok = |p: &str| !p.is_empty() && p.chars().all(is_word);
    (ok(first) && parts.all(ok)).then_some(first)
}

/// The report type in a Shadowserver file name, by IntelMQ's rule
/// `^(?:\d{4}-\d{2}-\d{2}-)?(\w+)(-\w+)*\.csv$` (group 1). A path is reduced to its file name.
pub fn report_type_from_file_name(name: &str) -> Option<&str> {
    let base = Path::new(name).file_name().and_then(|n| n.to_str()).unwrap_or(name);
    let b = base.as_bytes();
    let dated = b.len() > 11
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
        && b[10] == b'-';
    if dated && let Some(r) = report_part(&base[11..]) {
        return Some(r);
    }
    report_part(base)
}

/// One step of the per-row plan.
struct Step {
    target: Target,
    col: usize,
    conversion: Conversion,
    required: bool,
    /// `<key> (column <column>)`, for reasons.
    label: String,
    is_time: bool,
}

struct Plan {
    feed_name: String,
    columns: Vec<String>,
    steps: Vec<Step>,
    constants: Vec<(Target, Value)>,
    host: Option<usize>,
    path: Option<usize>,
    application: Option<usize>,
    detail: Option<usize>,
    /// Whether a conversion looks at other columns of the row.
    row_conversions: bool,
    legal_basis: kizuna_model::LegalBasis,
    time_observation: kizuna_model::Timestamp,
    consumed: Vec<bool>,
}

impl Plan {
    fn new(report: &Report, header: &[String], ctx: &Context) -> Result<Plan, SetupError> {
        let col = |name: &str| header.iter().position(|h| h == name);
        let mut steps = Vec::new();
        for (m, required) in report.required.iter().map(|m| (m, true)).chain(report.optional.iter().map(|m| (m, false)))
        {
            let Some(c) = col(&m.column) else {
                if required {
                    return Err(SetupError::MissingColumn {
                        file: ctx.source_name.clone(),
                        column: m.column.clone(),
                        field: m.key.clone(),
                    });
                }
                continue;
            };
            let target = m.target.clone().unwrap_or_else(|| Target::Extra(m.column.clone()));
            steps.push(Step {
                is_time: target == Target::Model(Field::TimeSource),
                target,
                col: c,
                conversion: m.conversion.clone(),
                required,
                label: format!("{} (column {})", if m.key == "extra." { "extra." } else { &m.key }, m.column),
            });
        }
        let row_conversions = steps
            .iter()
            .any(|s| matches!(s.conversion, Conversion::ConvertHttpHostAndUrl | Conversion::CategoryOrDetail));
        let constants = report
            .constants
            .iter()
            .filter_map(|(k, v)| Target::of(&Value::String(k.clone())).ok().flatten().map(|t| (t, v.clone())))
            .collect();
        Ok(Plan {
            feed_name: report.feed_name.clone(),
            columns: header.to_vec(),
            steps,
            constants,
            host: col("cc_dns").or_else(|| col("http_host")),
            path: col("url").or_else(|| col("http_url")),
            application: col("application"),
            detail: col("detail"),
            row_conversions,
            legal_basis: ctx.legal_basis,
            time_observation: ctx.time_observation,
            consumed: vec![false; header.len()],
        })
    }
}

pub(crate) fn text(rec: &csv::ByteRecord, i: usize) -> std::borrow::Cow<'_, str> {
    let b = rec.get(i).unwrap_or_default();
    match std::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

fn scalar_to_value(v: Scalar<'_>, lower: bool) -> Value {
    match v {
        Scalar::Str(s) if lower => Value::String(s.to_lowercase()),
        Scalar::Str(s) => Value::String(s.into_owned()),
        Scalar::U64(n) => n.into(),
        Scalar::I64(n) => n.into(),
        Scalar::F64(f) => {
            serde_json::Number::from_f64(f).map(Value::Number).unwrap_or_else(|| Value::String(f.to_string()))
        }
        Scalar::Bool(b) => b.into(),
    }
}

impl CsvRecord for Plan {
    fn record(&mut self, rec: &csv::ByteRecord) -> Outcome {
        if rec.len() != self.columns.len() {
            return Outcome::Reject(format!(
                "expected {} columns as in the header, found {}",
                self.columns.len(),
                rec.len()
            ));
        }
        let cell = |i: Option<usize>| i.map(|i| text(rec, i));
        let (host, path, application, detail) = if self.row_conversions {
            (cell(self.host), cell(self.path), cell(self.application), cell(self.detail))
        } else {
            (None, None, None, None)
        };
        let row = RowCtx {
            host: host.as_deref(),
            path: path.as_deref(),
            application: application.as_deref(),
            detail: detail.as_deref(),
        };
        self.consumed.iter_mut().for_each(|c| *c = false);
        let mut b = Builder::new(self.feed_name.clone(), self.time_observation);
        // A required field that came out empty: named in the reason if the row then lacks
        // IntelMQ's minimum.
        let mut unusable: Option<(&str, String)> = None;
        for s in &self.steps {
            let raw = text(rec, s.col);
            let raw = &*raw;
            let v = match convert(&s.conversion, raw, &row, s.required) {
                Ok(v) => v,
                Err(e) if s.required => return Outcome::Reject(format!("{}: {e}", s.label)),
                Err(_) => continue, // kept as text in extra.<column> below
            };
            let Some(v) = v else {
                if s.required {
                    if s.is_time {
                        return Outcome::Reject(format!("{}: empty", s.label));
                    }
                    if unusable.is_none() {
                        unusable = Some((&s.label, raw.to_owned()));
                    }
                } else {
                    self.consumed[s.col] = true;
                }
                continue;
            };
            match &s.target {
                Target::Model(f) => match b.set(*f, v, Mode::Normalize) {
                    Ok(()) => self.consumed[s.col] = true,
                    Err(e) if s.required => return Outcome::Reject(format!("{}: {e}", s.label)),
                    Err(_) => {}
                },
                Target::Extra(k) => {
                    b.o.extra.insert(k.clone(), scalar_to_value(v, false));
                    self.consumed[s.col] = true;
                }
                Target::Intelmq(k, lower) => {
                    b.o.extra.insert(k.clone(), scalar_to_value(v, *lower));
                    self.consumed[s.col] = true;
                }
                Target::Ignore => self.consumed[s.col] = true,
            }
        }
        for (t, v) in &self.constants {
            match t {
                Target::Model(f) => {
                    let s = match v {
                        Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
                        other => std::borrow::Cow::Owned(other.to_string()),
                    };
                    // A constant the model refuses would fail every row alike; the built-in
                    // schema has none (tested), so it is ignored rather than rejecting all.
                    let _ = b.set(*f, Scalar::Str(s), Mode::Normalize);
                }
                Target::Extra(k) | Target::Intelmq(k, _) => {
                    b.o.extra.insert(k.clone(), v.clone());
                }
                Target::Ignore => {}
            }
        }
        for (i, consumed) in self.consumed.iter().enumerate() {
            if !consumed && !rec.get(i).unwrap_or_default().is_empty() {
                b.o.extra.insert(self.columns[i].clone(), Value::String(text(rec, i).into_owned()));
            }
        }
        let mut o = b.finish();
        if let (Err(_), Some((label, raw))) = (o.check_minimum(), unusable) {
            return Outcome::Reject(if raw.is_empty() {
                format!("{label}: empty")
            } else {
                format!("{label}: no usable value in {raw:?}")
            });
        }
        o.feed.provider = Some("Shadowserver".to_owned());
        o.tlp = Tlp::Amber;
        o.legal_basis = self.legal_basis;
        Outcome::obs(o)
    }
}

/// Parses a Shadowserver report with a given schema. `report`: the report type (file name or
/// schema key); `None` reads it from `ctx.source_name`.
pub fn parse_with_schema<'a, R: BufRead + Send + 'a>(
    schema: &'a Schema,
    report: Option<&str>,
    ctx: &'a Context,
    input: R,
) -> Result<Box<dyn Iterator<Item = Item> + Send + 'a>, SetupError> {
    let name = match report {
        Some(r) => r,
        None => report_type_from_file_name(&ctx.source_name)
            .ok_or_else(|| SetupError::ReportNotInFileName { file: ctx.source_name.clone() })?,
    };
    let rep = schema
        .report(name)
        .ok_or_else(|| SetupError::UnknownReport { file: ctx.source_name.clone(), report: name.to_owned() })?;
    let mut reader = driver::csv_reader(input, b',', true, None);
    let mut rec = csv::ByteRecord::new();
    let io = |e: csv::Error| SetupError::Io { file: ctx.source_name.clone(), source: std::io::Error::other(e) };
    if !driver::read_record(&mut reader, &mut rec).map_err(io)? {
        return Ok(Box::new(std::iter::empty()));
    }
    let header = header_names(&rec);
    let plan = Plan::new(rep, &header, ctx)?;
    let end = reader.position().byte();
    reader.get_mut().release(end);
    Ok(Box::new(CsvRecords::new(reader, ctx, plan)))
}

/// Header cells as text, BOM and surrounding blanks removed.
pub(crate) fn header_names(rec: &csv::ByteRecord) -> Vec<String> {
    rec.iter()
        .enumerate()
        .map(|(i, h)| {
            let h = String::from_utf8_lossy(h);
            let h = if i == 0 { h.trim_start_matches('\u{feff}') } else { &h };
            h.trim().to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_like_intelmq() {
        let r = report_type_from_file_name;
        assert_eq!(r("2026-03-05-event4_sinkhole-jp-geo.csv"), Some("event4_sinkhole"));
        assert_eq!(r("/var/spool/2026-03-05-scan_http-asn-64496.csv"), Some("scan_http"));
        assert_eq!(r("scan_telnet.csv"), Some("scan_telnet"));
        assert_eq!(r("2026-03-05.csv"), Some("2026"));
        assert_eq!(r("event4_sinkhole.txt"), None);
        assert_eq!(r("-"), None);
        assert_eq!(r("2026-03-05-.csv"), None);
    }

    #[test]
    fn builtin_schema_loads_and_its_constants_fit_the_model() {
        let s = builtin_schema().expect("built-in schema");
        assert_eq!(s.reports().count(), 170);
        assert_eq!(s.date_created(), Some("2026-03-24T15:31:20Z"));
        let r = s.report("event4_sinkhole").expect("by file name");
        assert_eq!(r.key, "event_sinkhole");
        assert_eq!(r.feed_name, "Sinkhole-Events IPv4");
        assert_eq!(s.report("event_sinkhole").map(|r| &r.file_name[..]), Some("event4_sinkhole"));
        let mut unknown = Vec::new();
        for r in s.reports() {
            for m in r.required.iter().chain(&r.optional) {
                if let Conversion::Unknown(n) = &m.conversion {
                    unknown.push(n.clone());
                }
            }
            for (k, v) in &r.constants {
                if let Some(Target::Model(f)) = Target::of(&Value::String(k.clone())).unwrap() {
                    let mut b = Builder::new("x", kizuna_model::Timestamp::from_secs(0));
                    let v = v.as_str().expect("string constant");
                    b.set(f, Scalar::Str(v.into()), Mode::Normalize).unwrap_or_else(|e| panic!("{}: {k}: {e}", r.key));
                }
            }
        }
        assert!(unknown.is_empty(), "{unknown:?}");
    }
}
