//! The two record readers every format sits on: JSON lines and CSV records. Both number
//! records by their first line, keep the raw text for rejects, and never stop on a bad record
//! (only at the end of input or on a read error, which is reported as one last reject).

use std::io::{BufRead, Read};

use kizuna_model::{Observation, Rejected};

use crate::{Context, Item};

/// What a format makes of one record.
pub(crate) enum Outcome {
    Obs(Box<Observation>),
    Skip(String),
    Reject(String),
}

impl Outcome {
    pub(crate) fn obs(o: Observation) -> Outcome {
        Outcome::Obs(Box::new(o))
    }
}

/// The longest JSON line kept; longer lines are rejected (their first bytes kept as raw).
pub(crate) const MAX_LINE: usize = 16 << 20;
/// How much of an over-long record is kept as raw text.
const RAW_KEEP: usize = 64 << 10;

/// Applies the context's overrides and checks IntelMQ's minimum; turns the outcome into an item.
pub(crate) fn finish(out: Outcome, ctx: &Context, line: u64, raw: &[u8]) -> Item {
    let reject = |reason: String| {
        let raw = if raw.len() > RAW_KEEP { &raw[..RAW_KEEP] } else { raw };
        Item::Rejected(Rejected {
            source_name: ctx.source_name.clone(),
            line,
            reason,
            raw: String::from_utf8_lossy(raw).into_owned(),
        })
    };
    match out {
        Outcome::Obs(mut o) => {
            if let Some(t) = ctx.tlp {
                o.tlp = t;
            }
            if let Some(n) = &ctx.feed_name {
                o.feed.name.clone_from(n);
            }
            if let Some(p) = &ctx.feed_provider {
                o.feed.provider = Some(p.clone());
            }
            match o.check_minimum() {
                Ok(()) => Item::Observation(*o),
                Err(why) => reject(why.to_owned()),
            }
        }
        Outcome::Skip(what) => Item::Skipped { what },
        Outcome::Reject(reason) => reject(reason),
    }
}

/// Reads one line (without its terminator) into `buf`, keeping at most `MAX_LINE` bytes.
/// Returns `Ok(None)` at end of input, else whether the line was cut.
fn read_line<R: BufRead>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut cut = false;
    let mut any = false;
    loop {
        let (done, used) = {
            let avail = match r.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                break;
            }
            any = true;
            let (chunk, done, used) = match memchr::memchr(b'\n', avail) {
                Some(i) => (&avail[..i], true, i + 1),
                None => (avail, false, avail.len()),
            };
            let room = MAX_LINE.saturating_sub(buf.len());
            if chunk.len() > room {
                cut = true;
                buf.extend_from_slice(&chunk[..room]);
            } else {
                buf.extend_from_slice(chunk);
            }
            (done, used)
        };
        r.consume(used);
        if done {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(cut))
}

/// JSON lines: one record per non-blank line.
pub(crate) struct JsonLines<'a, R, F> {
    input: R,
    ctx: &'a Context,
    buf: Vec<u8>,
    line: u64,
    done: bool,
    record: F,
}

impl<'a, R: BufRead, F: FnMut(&[u8]) -> Outcome> JsonLines<'a, R, F> {
    pub(crate) fn new(input: R, ctx: &'a Context, record: F) -> Self {
        JsonLines { input, ctx, buf: Vec::with_capacity(4096), line: 0, done: false, record }
    }
}

impl<R: BufRead, F: FnMut(&[u8]) -> Outcome> Iterator for JsonLines<'_, R, F> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        while !self.done {
            let cut = match read_line(&mut self.input, &mut self.buf) {
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Ok(Some(cut)) => cut,
                Err(e) => {
                    self.done = true;
                    self.line += 1;
                    return Some(finish(Outcome::Reject(format!("read error: {e}")), self.ctx, self.line, &[]));
                }
            };
            self.line += 1;
            if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let out = if cut {
                Outcome::Reject(format!("line longer than {MAX_LINE} bytes"))
            } else {
                (self.record)(&self.buf)
            };
            return Some(finish(out, self.ctx, self.line, &self.buf));
        }
        None
    }
}

/// Wraps the input of a CSV reader and keeps the bytes it handed out, so that the raw text of
/// a record can be cut out by the byte offsets the CSV reader reports.
pub(crate) struct Tee<R> {
    inner: R,
    kept: Vec<u8>,
    /// Input offset of `kept[0]`.
    base: u64,
}

impl<R> Tee<R> {
    pub(crate) fn new(inner: R) -> Self {
        Tee { inner, kept: Vec::new(), base: 0 }
    }

    /// The bytes between two input offsets (clamped to what is kept).
    pub(crate) fn slice(&self, start: u64, end: u64) -> &[u8] {
        let s = (start.saturating_sub(self.base) as usize).min(self.kept.len());
        let e = (end.saturating_sub(self.base) as usize).clamp(s, self.kept.len());
        &self.kept[s..e]
    }

    /// Forgets bytes before `offset` (cheaply: only once enough has piled up).
    pub(crate) fn release(&mut self, offset: u64) {
        let n = (offset.saturating_sub(self.base) as usize).min(self.kept.len());
        if n >= 1 << 16 && n * 2 >= self.kept.len() {
            self.kept.drain(..n);
            self.base += n as u64;
        }
    }
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.kept.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// Trims the line terminator(s) around a raw CSV record.
pub(crate) fn trim_raw(raw: &[u8]) -> &[u8] {
    let mut r = raw;
    while let [b'\r' | b'\n', rest @ ..] = r {
        r = rest;
    }
    while let [rest @ .., b'\r' | b'\n'] = r {
        r = rest;
    }
    r
}

/// Per-record logic of a CSV format.
pub(crate) trait CsvRecord {
    fn record(&mut self, rec: &csv::ByteRecord) -> Outcome;
}

/// CSV records after the header (the header is read by the format's setup).
pub(crate) struct CsvRecords<'a, R: Read, P> {
    reader: csv::Reader<Tee<R>>,
    rec: csv::ByteRecord,
    ctx: &'a Context,
    done: bool,
    parser: P,
}

/// A CSV reader over `input` with the given delimiter, quoting and comment settings.
pub(crate) fn csv_reader<R: Read>(input: R, delimiter: u8, quoting: bool, comment: Option<u8>) -> csv::Reader<Tee<R>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .quoting(quoting)
        .comment(comment)
        .buffer_capacity(1 << 16)
        .from_reader(Tee::new(input))
}

/// Reads the next record; `Ok(false)` at end of input.
pub(crate) fn read_record<R: Read>(reader: &mut csv::Reader<Tee<R>>, rec: &mut csv::ByteRecord) -> csv::Result<bool> {
    reader.read_byte_record(rec)
}

/// Line and raw text of the record just read.
pub(crate) fn record_origin<'r, R: Read>(reader: &'r csv::Reader<Tee<R>>, rec: &csv::ByteRecord) -> (u64, &'r [u8]) {
    let (line, start) = rec.position().map(|p| (p.line(), p.byte())).unwrap_or((0, 0));
    let end = reader.position().byte();
    (line, trim_raw(reader.get_ref().slice(start, end)))
}

impl<'a, R: Read, P: CsvRecord> CsvRecords<'a, R, P> {
    pub(crate) fn new(reader: csv::Reader<Tee<R>>, ctx: &'a Context, parser: P) -> Self {
        CsvRecords { reader, rec: csv::ByteRecord::new(), ctx, done: false, parser }
    }
}

impl<R: Read, P: CsvRecord> Iterator for CsvRecords<'_, R, P> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if self.done {
            return None;
        }
        match read_record(&mut self.reader, &mut self.rec) {
            Ok(true) => {
                let out = self.parser.record(&self.rec);
                let (line, raw) = record_origin(&self.reader, &self.rec);
                let item = finish(out, self.ctx, line, raw);
                let end = self.reader.position().byte();
                self.reader.get_mut().release(end);
                Some(item)
            }
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                let line = self.reader.position().line();
                Some(finish(Outcome::Reject(format!("read error: {e}")), self.ctx, line, &[]))
            }
        }
    }
}
