//! Bulk loading: files and readers into a [`SessionIndex`].

use std::io::{BufRead, Read};
use std::path::Path;

use kizuna_model::Rejected;

use crate::cgnat::CgnatParser;
use crate::dhcpd::DhcpdParser;
use crate::kea::KeaParser;
use crate::radius::DetailParser;
use crate::{Item, LogKind, ParseOptions, RecordParser, SessionError, SessionEvent, SessionIndex};

/// At most this many rejections are kept in a [`LoadSummary`] (all are counted).
pub const MAX_KEPT_REJECTIONS: usize = 10_000;

const BATCH: usize = 65_536;

/// Longest line read as one; a longer run of bytes without a line end (binary junk) is cut into
/// pieces of this size, each rejected, so memory stays bounded.
const MAX_LINE: u64 = 1 << 20;

/// What a load or a tailer poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadSummary {
    /// Files read (or read further).
    pub files: u64,
    /// Lines read.
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Session events parsed.
    pub events: u64,
    /// Events the index applied (the rest: see [`crate::IndexStats::events_ignored`]).
    pub applied: u64,
    /// Records skipped (headers, comments, other syslog messages, records without an address).
    pub skipped: u64,
    /// Malformed records.
    pub rejected: u64,
    /// The first [`MAX_KEPT_REJECTIONS`] rejections, with file, line, reason and raw text.
    pub rejections: Vec<Rejected>,
}

impl LoadSummary {
    /// Adds `other`'s counts and rejections.
    pub fn absorb(&mut self, other: LoadSummary) {
        self.files += other.files;
        self.lines += other.lines;
        self.bytes += other.bytes;
        self.events += other.events;
        self.applied += other.applied;
        self.skipped += other.skipped;
        self.rejected += other.rejected;
        let room = MAX_KEPT_REJECTIONS.saturating_sub(self.rejections.len());
        self.rejections.extend(other.rejections.into_iter().take(room));
    }

    pub(crate) fn item(&mut self, item: Item, batch: &mut Vec<SessionEvent>) {
        match item {
            Item::Event(e) => {
                self.events += 1;
                batch.push(e);
            }
            Item::Skipped(_) => self.skipped += 1,
            Item::Rejected(r) => {
                self.rejected += 1;
                if self.rejections.len() < MAX_KEPT_REJECTIONS {
                    self.rejections.push(r);
                }
            }
        }
    }
}

/// The push parser for `kind`; `source_name` appears in rejections.
pub fn parser_for(kind: LogKind, source_name: &str, opts: &ParseOptions) -> Box<dyn RecordParser> {
    match kind {
        LogKind::RadiusDetail => Box::new(DetailParser::new(source_name, opts)),
        LogKind::KeaLeases4 => Box::new(KeaParser::new(source_name)),
        LogKind::DhcpdLeases => Box::new(DhcpdParser::new(source_name)),
        LogKind::Cgnat => Box::new(CgnatParser::new(source_name, opts)),
    }
}

/// Parses a whole reader, calling `f` for every item in order. Returns (lines, bytes).
pub fn parse_reader<R: BufRead>(
    kind: LogKind,
    mut reader: R,
    source_name: &str,
    opts: &ParseOptions,
    mut f: impl FnMut(Item),
) -> std::io::Result<(u64, u64)> {
    let mut parser = parser_for(kind, source_name, opts);
    let mut buf = Vec::with_capacity(4096);
    let mut out = Vec::new();
    let (mut lines, mut bytes) = (0u64, 0u64);
    loop {
        buf.clear();
        let n = (&mut reader).take(MAX_LINE).read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        lines += 1;
        bytes += n as u64;
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        parser.line(lines, line, &mut out);
        for item in out.drain(..) {
            f(item);
        }
    }
    parser.finish(&mut out);
    for item in out.drain(..) {
        f(item);
    }
    Ok((lines, bytes))
}

impl SessionIndex {
    /// Loads a whole file of `kind`. Bad records are counted and kept in the summary, never an
    /// error; only IO fails.
    pub fn load_file(&mut self, path: impl AsRef<Path>, kind: LogKind) -> Result<LoadSummary, SessionError> {
        let path = path.as_ref();
        let io = |source| SessionError::Io { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        let reader = std::io::BufReader::with_capacity(1 << 20, file);
        let mut summary = self.load_reader(reader, &path.display().to_string(), kind).map_err(io)?;
        summary.files = 1;
        Ok(summary)
    }

    /// Loads a file, or every log file of `kind` in a directory tree (two levels deep, as
    /// FreeRADIUS's `radacct/<nas>/detail-*`; the same file names the tailer follows), in path
    /// order.
    pub fn load_path(&mut self, path: impl AsRef<Path>, kind: LogKind) -> Result<LoadSummary, SessionError> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(SessionError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
            });
        }
        let mut found = Vec::new();
        crate::tail::collect(path, kind, 0, &mut found);
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let mut summary = LoadSummary::default();
        for (file, kind, _) in found {
            summary.absorb(self.load_file(&file, kind)?);
        }
        Ok(summary)
    }

    /// Loads from any reader (e.g. stdin); `source_name` names it in rejections.
    pub fn load_reader<R: BufRead>(
        &mut self,
        reader: R,
        source_name: &str,
        kind: LogKind,
    ) -> std::io::Result<LoadSummary> {
        let mut summary = LoadSummary::default();
        let mut batch = Vec::with_capacity(BATCH);
        let opts = self.config().parse.clone();
        let mut parser = parser_for(kind, source_name, &opts);
        let mut reader = reader;
        let mut buf = Vec::with_capacity(4096);
        let mut out = Vec::new();
        loop {
            buf.clear();
            let n = (&mut reader).take(MAX_LINE).read_until(b'\n', &mut buf)?;
            if n == 0 {
                break;
            }
            summary.lines += 1;
            summary.bytes += n as u64;
            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
            parser.line(summary.lines, line, &mut out);
            for item in out.drain(..) {
                summary.item(item, &mut batch);
            }
            if batch.len() >= BATCH {
                summary.applied += self.add_events(batch.drain(..));
            }
        }
        parser.finish(&mut out);
        for item in out.drain(..) {
            summary.item(item, &mut batch);
        }
        summary.applied += self.add_events(batch);
        Ok(summary)
    }
}
