//! Following session logs as they grow (the only module here that does IO).
//!
//! [`SessionTailer::poll`] looks at every watched directory (two levels deep: FreeRADIUS writes
//! `radacct/<nas>/detail-YYYYMMDD`) or file, reads what was appended since the last poll, and
//! feeds complete records to the index. Per file it remembers device, inode and the offset of
//! the last complete record in a small state file, so a restart goes on where it stopped
//! (re-reading at most one record, which the index absorbs: events are idempotent).
//! - A new file (a new day, a new NAS) is read from its start.
//! - A file replaced under the same name (new inode: logrotate `create`, dhcpd's rewrite, Kea's
//!   lease file cleanup) is read again from its start; the old content was already indexed and
//!   re-reading it changes nothing.
//! - A file renamed away (`cgnat.log` → `cgnat.log.1`) keeps its offset under its new name.
//! - A file that got shorter (truncated, `copytruncate`) is read again from its start.
//! - A partly written last line or record waits for the next poll.
//!
//! Poll every second or so; each poll costs one `stat` per file when nothing changed.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::load::LoadSummary;
use crate::{LogKind, RecordParser, SessionError, SessionEvent, SessionIndex, parser_for};

struct FileState {
    kind: LogKind,
    dev: u64,
    ino: u64,
    /// Bytes consumed (complete lines fed to the parser).
    offset: u64,
    /// Lines consumed.
    line: u64,
    /// Last record boundary: what the state file keeps.
    safe_offset: u64,
    safe_line: u64,
    parser: Option<Box<dyn RecordParser>>,
}

/// Watches directories and files of session logs; see the module docs.
pub struct SessionTailer {
    roots: Vec<(PathBuf, LogKind)>,
    state_file: PathBuf,
    files: HashMap<PathBuf, FileState>,
    parallel_bytes: u64,
    readers: Option<usize>,
}

impl SessionTailer {
    /// Watches `dirs` (directories or single files, each with its log kind), remembering
    /// offsets in `state_file` (created on the first poll; read now when it exists).
    pub fn new(dirs: Vec<(PathBuf, LogKind)>, state_file: impl Into<PathBuf>) -> Result<Self, SessionError> {
        let state_file = state_file.into();
        let mut files = HashMap::new();
        match std::fs::read_to_string(&state_file) {
            Ok(text) => {
                for (i, l) in text.lines().enumerate() {
                    if l.trim().is_empty() || l.starts_with('#') {
                        continue;
                    }
                    let bad = |reason: &str| SessionError::State {
                        path: state_file.clone(),
                        line: i + 1,
                        reason: reason.to_string(),
                    };
                    let f: Vec<&str> = l.split('\t').collect();
                    if f.len() != 6 {
                        return Err(bad("expected 6 tab-separated fields"));
                    }
                    let kind = LogKind::parse(f[1]).ok_or_else(|| bad("unknown log kind"))?;
                    let num = |s: &str| s.parse::<u64>().map_err(|_| bad("bad number"));
                    let (dev, ino, offset, line) = (num(f[2])?, num(f[3])?, num(f[4])?, num(f[5])?);
                    files.insert(
                        PathBuf::from(unescape(f[0])),
                        FileState { kind, dev, ino, offset, line, safe_offset: offset, safe_line: line, parser: None },
                    );
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(SessionError::Io { path: state_file, source }),
        }
        Ok(SessionTailer { roots: dirs, state_file, files, parallel_bytes: PARALLEL_BYTES, readers: None })
    }

    /// A poll with at least `min_bytes` new bytes in several files reads them on `readers`
    /// threads (defaults: 8 MiB; `KIZUNA_SESSION_READERS`, else the number of CPUs). The index
    /// ends up the same either way; tests use this to cover both paths.
    pub fn set_readers(&mut self, readers: usize, min_bytes: u64) {
        self.readers = Some(readers.max(1));
        self.parallel_bytes = min_bytes;
    }

    /// Files currently followed.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.files.keys().cloned().collect();
        v.sort();
        v
    }

    /// Reads what is new everywhere, feeds it to `index`, saves the state file.
    pub fn poll(&mut self, index: &mut SessionIndex) -> Result<LoadSummary, SessionError> {
        let mut found: Vec<(PathBuf, LogKind, std::fs::Metadata)> = Vec::new();
        for (root, kind) in &self.roots {
            collect(root, *kind, 0, &mut found);
        }
        let own = [self.state_file.clone(), self.state_file.with_extension("tmp")];
        found.retain(|f| !own.contains(&f.0));
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let mut summary = LoadSummary::default();
        let mut changed = false;
        let current: HashMap<PathBuf, (u64, u64)> =
            found.iter().map(|(p, _, m)| (p.clone(), (m.dev(), m.ino()))).collect();
        // Renames: a new path whose inode we follow under a path that is gone or now holds
        // another file keeps that state (and offset).
        for (path, kind, meta) in &found {
            if self.files.contains_key(path) {
                continue;
            }
            let id = (meta.dev(), meta.ino());
            let moved_from = self
                .files
                .iter()
                .find(|(p, s)| (s.dev, s.ino) == id && s.kind == *kind && current.get(*p) != Some(&id))
                .map(|(p, _)| p.clone());
            if let Some(state) = moved_from.and_then(|p| self.files.remove(&p)) {
                self.files.insert(path.clone(), state);
                changed = true;
            }
        }
        for (path, kind, meta) in &found {
            if !self.files.contains_key(path) {
                self.files.insert(
                    path.clone(),
                    FileState {
                        kind: *kind,
                        dev: meta.dev(),
                        ino: meta.ino(),
                        offset: 0,
                        line: 0,
                        safe_offset: 0,
                        safe_line: 0,
                        parser: None,
                    },
                );
                changed = true;
            }
        }
        let before = self.files.len();
        self.files.retain(|p, _| current.contains_key(p));
        changed |= self.files.len() != before;
        let opts = index.config().parse.clone();
        let mut work: Vec<(PathBuf, u64)> = Vec::new();
        for (path, _, meta) in &found {
            let Some(st) = self.files.get_mut(path) else { continue };
            let replaced = st.dev != meta.dev() || st.ino != meta.ino();
            let truncated = meta.len() < st.offset;
            if replaced || truncated {
                *st = FileState {
                    kind: st.kind,
                    dev: meta.dev(),
                    ino: meta.ino(),
                    offset: 0,
                    line: 0,
                    safe_offset: 0,
                    safe_line: 0,
                    parser: None,
                };
                changed = true;
            }
            if meta.len() == st.offset {
                continue;
            }
            if st.parser.is_none() {
                // Fresh start (or restart): begin at the last record boundary.
                st.offset = st.safe_offset;
                st.line = st.safe_line;
                st.parser = Some(parser_for(st.kind, &path.display().to_string(), &opts));
            }
            work.push((path.clone(), meta.len().saturating_sub(st.offset)));
        }
        let total: u64 = work.iter().map(|w| w.1).sum();
        let workers = self.readers.unwrap_or_else(readers).min(work.len());
        let results = if workers >= 2 && total >= self.parallel_bytes {
            self.read_parallel(&work, workers, index)?
        } else {
            let mut out = Vec::with_capacity(work.len());
            for (path, _) in &work {
                let Some(st) = self.files.get_mut(path) else { continue };
                out.push(read_new(path, st, &mut |batch| index.add_events(batch))?);
            }
            out
        };
        for s in results {
            if s.bytes > 0 {
                changed = true;
                summary.absorb(s);
            }
        }
        if changed {
            self.save()?;
        }
        Ok(summary)
    }

    /// Reads the files of `work` on `workers` threads (file k on worker k mod workers) while
    /// this thread applies their events in file order: the same events in the same order and
    /// the same batches as reading them one after the other, so the index ends up the same.
    /// Bounded channels keep at most a few batches per worker in memory.
    fn read_parallel(
        &mut self,
        work: &[(PathBuf, u64)],
        workers: usize,
        index: &mut SessionIndex,
    ) -> Result<Vec<LoadSummary>, SessionError> {
        enum Msg {
            Batch(Vec<SessionEvent>),
            Done(Result<LoadSummary, SessionError>),
        }
        let mut lanes: Vec<Vec<(&Path, &mut FileState)>> = (0..workers).map(|_| Vec::new()).collect();
        let mut states: HashMap<&PathBuf, &mut FileState> = self.files.iter_mut().collect();
        // The lane of each file, in work order.
        let mut seq: Vec<usize> = Vec::with_capacity(work.len());
        for (path, _) in work {
            if let Some(st) = states.remove(path) {
                let w = seq.len() % workers;
                lanes[w].push((path.as_path(), st));
                seq.push(w);
            }
        }
        let lost = || SessionError::Io {
            path: self.state_file.clone(),
            source: std::io::Error::other("a log reader thread stopped"),
        };
        let mut results = Vec::with_capacity(work.len());
        std::thread::scope(|scope| -> Result<(), SessionError> {
            let mut rxs = Vec::with_capacity(workers);
            for lane in lanes {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(4);
                rxs.push(rx);
                scope.spawn(move || {
                    for (path, st) in lane {
                        let r = read_new(path, st, &mut |batch| {
                            let _ = tx.send(Msg::Batch(batch));
                            0
                        });
                        let stop = r.is_err();
                        if tx.send(Msg::Done(r)).is_err() || stop {
                            return;
                        }
                    }
                });
            }
            for w in seq {
                let mut applied = 0;
                loop {
                    match rxs[w].recv() {
                        Ok(Msg::Batch(b)) => applied += index.add_events(b),
                        Ok(Msg::Done(r)) => {
                            let mut s = r?;
                            s.applied += applied;
                            results.push(s);
                            break;
                        }
                        Err(_) => return Err(lost()),
                    }
                }
            }
            Ok(())
        })?;
        Ok(results)
    }

    fn save(&self) -> Result<(), SessionError> {
        let mut text = String::from("# kizuna session tailer state: path, kind, dev, inode, offset, line\n");
        let mut paths: Vec<&PathBuf> = self.files.keys().collect();
        paths.sort();
        for p in paths {
            let s = &self.files[p];
            text.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\n",
                escape(&p.to_string_lossy()),
                s.kind.as_str(),
                s.dev,
                s.ino,
                s.safe_offset,
                s.safe_line
            ));
        }
        let tmp = self.state_file.with_extension("tmp");
        let io = |source| SessionError::Io { path: self.state_file.clone(), source };
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &self.state_file).map_err(io)
    }
}

/// Reader threads for a big poll: `KIZUNA_SESSION_READERS`, else the number of CPUs.
fn readers() -> usize {
    std::env::var("KIZUNA_SESSION_READERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Below this many new bytes a poll reads on the calling thread only.
const PARALLEL_BYTES: u64 = 8 << 20;

/// Reads what is new in one file, handing batches of events to `apply` (which returns how many
/// the index applied).
fn read_new(
    path: &Path,
    st: &mut FileState,
    apply: &mut dyn FnMut(Vec<SessionEvent>) -> u64,
) -> Result<LoadSummary, SessionError> {
    let io = |source| SessionError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    file.seek(SeekFrom::Start(st.offset)).map_err(io)?;
    let mut summary = LoadSummary { files: 1, ..Default::default() };
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut batch = Vec::new();
    let Some(parser) = st.parser.as_mut() else { return Ok(summary) };
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        carry.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(nl) = memchr(&carry[start..]) {
            let end = start + nl;
            st.line += 1;
            st.offset += (end + 1 - start) as u64;
            summary.lines += 1;
            summary.bytes += (end + 1 - start) as u64;
            parser.line(st.line, &carry[start..end], &mut out);
            if !parser.in_record() {
                st.safe_offset = st.offset;
                st.safe_line = st.line;
            }
            for item in out.drain(..) {
                summary.item(item, &mut batch);
            }
            start = end + 1;
        }
        carry.drain(..start);
        if carry.len() > MAX_LINE {
            // Not a log line (binary junk, a runaway writer): hand it over whole, to be rejected.
            st.line += 1;
            st.offset += carry.len() as u64;
            summary.lines += 1;
            summary.bytes += carry.len() as u64;
            parser.line(st.line, &carry, &mut out);
            for item in out.drain(..) {
                summary.item(item, &mut batch);
            }
            carry.clear();
        }
        if batch.len() >= 65_536 {
            summary.applied += apply(std::mem::replace(&mut batch, Vec::with_capacity(65_536)));
        }
    }
    summary.applied += apply(batch);
    Ok(summary)
}

/// Longest line the tailer waits for; longer ones are passed on (and rejected) without an end.
const MAX_LINE: usize = 1 << 20;

fn memchr(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b)
}

fn wanted(kind: LogKind, name: &str) -> bool {
    if name.starts_with('.') || name.ends_with(".tmp") {
        return false;
    }
    match kind {
        LogKind::RadiusDetail => name.starts_with("detail") && !name.ends_with(".work"),
        LogKind::KeaLeases4 => name.ends_with(".csv") || name.ends_with(".csv.2"),
        LogKind::DhcpdLeases => name.ends_with(".leases"),
        LogKind::Cgnat => ![".gz", ".xz", ".bz2", ".zst"].iter().any(|s| name.ends_with(s)),
    }
}

pub(crate) fn collect(path: &Path, kind: LogKind, depth: u32, out: &mut Vec<(PathBuf, LogKind, std::fs::Metadata)>) {
    let Ok(meta) = std::fs::metadata(path) else { return };
    if meta.is_file() {
        if depth == 0 || path.file_name().and_then(|n| n.to_str()).is_some_and(|n| wanted(kind, n)) {
            out.push((path.to_path_buf(), kind, meta));
        }
        return;
    }
    if !meta.is_dir() || depth > 2 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(path) else { return };
    for entry in rd.flatten() {
        collect(&entry.path(), kind, depth + 1, out);
    }
}

fn escape(s: &str) -> String {
    s.replace('%', "%25").replace('\t', "%09").replace('\n', "%0A")
}

fn unescape(s: &str) -> String {
    s.replace("%0A", "\n").replace("%09", "\t").replace("%25", "%")
}
