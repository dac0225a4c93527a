//! Postal letters for subscribers without e-mail: pending letter notices are exported as one
//! batch for a print-and-mail vendor: a directory `<letters_dir>/<batch>/` with `letters.csv`
//! (one row per letter: file, notice, case, language, name, postal address, subject) and one
//! UTF-8 text file per letter. Files are written and synced before the notices are marked
//! exported, so a crash in between re-exports them (the vendor deduplicates by notice id)
//! instead of losing them.

use std::io::Write;
use std::path::{Path, PathBuf};

use kizuna_model::Timestamp;

use crate::store::AgentStore;
use crate::{Result, io_err};

/// One exported batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Batch id (`YYYYMMDDTHHMMSSZ`).
    pub id: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Letters in it.
    pub letters: usize,
}

/// Exports every pending letter into a new batch under `letters_dir`. `None` when none was
/// pending.
pub fn export_pending(store: &AgentStore, letters_dir: &Path, now: Timestamp) -> Result<Option<Batch>> {
    let pending = store.notices_by_status("pending", Some("letter"))?;
    if pending.is_empty() {
        return Ok(None);
    }
    let id = now.to_datetime().format("%Y%m%dT%H%M%SZ").to_string();
    let mut dir = letters_dir.join(&id);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = letters_dir.join(format!("{id}-{n}"));
    }
    let id = dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or(id);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let csv_path = dir.join("letters.csv");
    let mut w = csv::Writer::from_writer(Vec::new());
    let io_csv = |e: csv::Error| crate::Error::Input(format!("{}: {e}", csv_path.display()));
    w.write_record(["file", "notice", "case", "kind", "language", "name", "postal_address", "subject"])
        .map_err(io_csv)?;
    for (i, l) in pending.iter().enumerate() {
        let file = format!("{:04}-notice-{}.txt", i + 1, l.id);
        let p = dir.join(&file);
        let mut f = std::fs::File::create(&p).map_err(io_err(&p))?;
        let body = format!("{}\n{} \n\n{}\n\n{}", l.recipient, l.recipient_name, l.subject, l.body_text);
        f.write_all(body.as_bytes()).map_err(io_err(&p))?;
        f.sync_all().map_err(io_err(&p))?;
        w.write_record([
            file.as_str(),
            &l.id.to_string(),
            &l.case_id.to_string(),
            l.kind.as_str(),
            &l.language,
            &l.recipient_name,
            &l.recipient,
            &l.subject,
        ])
        .map_err(io_csv)?;
    }
    let bytes = w.into_inner().map_err(|e| crate::Error::Input(format!("{}: {e}", csv_path.display())))?;
    let mut f = std::fs::File::create(&csv_path).map_err(io_err(&csv_path))?;
    f.write_all(&bytes).map_err(io_err(&csv_path))?;
    f.sync_all().map_err(io_err(&csv_path))?;
    let ids: Vec<i64> = pending.iter().map(|l| l.id).collect();
    store.mark_exported(&ids, &id, now)?;
    Ok(Some(Batch { id, dir, letters: pending.len() }))
}
