//! Site cases: the crawler's own small SQLite store (`crawl.sqlite` in its data directory).
//!
//! One open case per compromised site (host). A notice is reserved in `notices` before it is
//! sent (primary key: case + contact), so the same owner is never mailed twice for one case,
//! even across restarts; a failed send releases the reservation.

use std::path::Path;

use kizuna_model::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use crate::CrawlError;

/// One site case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Row id.
    pub id: i64,
    /// The compromised site's host name.
    pub site: String,
    /// The entry URL to crawl again on re-check.
    pub url: String,
    /// `open` or `closed`.
    pub status: String,
    /// Chain id of the crawl that opened the case.
    pub chain_id: String,
    /// Evidence text (what the notice says).
    pub evidence: String,
    /// When the case was opened (µs).
    pub opened_at: i64,
    /// Next re-check (µs), once notified.
    pub recheck_at: Option<i64>,
    /// When closed (µs).
    pub closed_at: Option<i64>,
    /// Re-checks done.
    pub checks: i64,
}

/// The case store.
pub struct CaseStore {
    db: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cases (
  id INTEGER PRIMARY KEY,
  site TEXT NOT NULL,
  url TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
  chain_id TEXT NOT NULL,
  evidence TEXT NOT NULL,
  opened_at INTEGER NOT NULL,
  recheck_at INTEGER,
  closed_at INTEGER,
  checks INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS cases_one_open_per_site ON cases(site) WHERE status = 'open';
CREATE TABLE IF NOT EXISTS notices (
  case_id INTEGER NOT NULL REFERENCES cases(id),
  contact TEXT NOT NULL,
  source TEXT NOT NULL,
  reserved_at INTEGER NOT NULL,
  sent_at INTEGER,
  PRIMARY KEY (case_id, contact)
);
CREATE TABLE IF NOT EXISTS checks (
  case_id INTEGER NOT NULL REFERENCES cases(id),
  at INTEGER NOT NULL,
  chain_id TEXT NOT NULL,
  still_compromised INTEGER NOT NULL
);
";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Case> {
    Ok(Case {
        id: r.get(0)?,
        site: r.get(1)?,
        url: r.get(2)?,
        status: r.get(3)?,
        chain_id: r.get(4)?,
        evidence: r.get(5)?,
        opened_at: r.get(6)?,
        recheck_at: r.get(7)?,
        closed_at: r.get(8)?,
        checks: r.get(9)?,
    })
}

const COLS: &str = "id, site, url, status, chain_id, evidence, opened_at, recheck_at, closed_at, checks";

impl CaseStore {
    /// Opens (creating) `crawl.sqlite` at `path`.
    pub fn open(path: &Path) -> Result<CaseStore, CrawlError> {
        if let Some(d) = path.parent()
            && !d.as_os_str().is_empty()
        {
            std::fs::create_dir_all(d).map_err(|e| CrawlError::io(d, e))?;
        }
        let db = Connection::open(path)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.execute_batch(SCHEMA)?;
        Ok(CaseStore { db })
    }

    /// The open case of a site, opening one if there is none. Returns the case and whether it
    /// is new.
    pub fn open_case(
        &self,
        site: &str,
        url: &str,
        chain_id: &str,
        evidence: &str,
        now: Timestamp,
    ) -> Result<(Case, bool), CrawlError> {
        if let Some(c) = self.open_for(site)? {
            return Ok((c, false));
        }
        self.db.execute(
            "INSERT INTO cases (site, url, status, chain_id, evidence, opened_at) VALUES (?1, ?2, 'open', ?3, ?4, ?5)",
            params![site, url, chain_id, evidence, now.as_micros()],
        )?;
        let c = self
            .get(self.db.last_insert_rowid())?
            .ok_or_else(|| CrawlError::Db(rusqlite::Error::QueryReturnedNoRows))?;
        Ok((c, true))
    }

    /// The open case of a site.
    pub fn open_for(&self, site: &str) -> Result<Option<Case>, CrawlError> {
        Ok(self
            .db
            .query_row(&format!("SELECT {COLS} FROM cases WHERE site = ?1 AND status = 'open'"), [site], row)
            .optional()?)
    }

    /// One case.
    pub fn get(&self, id: i64) -> Result<Option<Case>, CrawlError> {
        Ok(self.db.query_row(&format!("SELECT {COLS} FROM cases WHERE id = ?1"), [id], row).optional()?)
    }

    /// Every case, newest first.
    pub fn all(&self) -> Result<Vec<Case>, CrawlError> {
        let mut st = self.db.prepare(&format!("SELECT {COLS} FROM cases ORDER BY id DESC"))?;
        let v = st.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
        Ok(v)
    }

    /// Open cases whose re-check date has come (all open cases when `all`).
    pub fn due(&self, now: Timestamp, all: bool) -> Result<Vec<Case>, CrawlError> {
        let sql = if all {
            format!("SELECT {COLS} FROM cases WHERE status = 'open' ORDER BY id")
        } else {
            format!(
                "SELECT {COLS} FROM cases WHERE status = 'open' AND recheck_at IS NOT NULL AND recheck_at <= ?1 ORDER BY id"
            )
        };
        let mut st = self.db.prepare(&sql)?;
        let v = if all {
            st.query_map([], row)?.collect::<Result<Vec<_>, _>>()?
        } else {
            st.query_map([now.as_micros()], row)?.collect::<Result<Vec<_>, _>>()?
        };
        Ok(v)
    }

    /// Reserves the notice of `case` to `contact`. False: this contact was already notified (or
    /// is being notified) for this case.
    pub fn reserve_notice(&self, case: i64, contact: &str, source: &str, now: Timestamp) -> Result<bool, CrawlError> {
        let n = self.db.execute(
            "INSERT OR IGNORE INTO notices (case_id, contact, source, reserved_at) VALUES (?1, ?2, ?3, ?4)",
            params![case, contact.to_ascii_lowercase(), source, now.as_micros()],
        )?;
        Ok(n == 1)
    }

    /// Drops a reservation after a failed send.
    pub fn release_notice(&self, case: i64, contact: &str) -> Result<(), CrawlError> {
        self.db.execute(
            "DELETE FROM notices WHERE case_id = ?1 AND contact = ?2 AND sent_at IS NULL",
            params![case, contact.to_ascii_lowercase()],
        )?;
        Ok(())
    }

    /// Marks a notice sent and sets the case's re-check date.
    pub fn notice_sent(
        &self,
        case: i64,
        contact: &str,
        now: Timestamp,
        recheck_at: Timestamp,
    ) -> Result<(), CrawlError> {
        self.db.execute(
            "UPDATE notices SET sent_at = ?3 WHERE case_id = ?1 AND contact = ?2",
            params![case, contact.to_ascii_lowercase(), now.as_micros()],
        )?;
        self.db.execute("UPDATE cases SET recheck_at = ?2 WHERE id = ?1", params![case, recheck_at.as_micros()])?;
        Ok(())
    }

    /// Sets the re-check date without a notice (no contact found).
    pub fn set_recheck(&self, case: i64, recheck_at: Timestamp) -> Result<(), CrawlError> {
        self.db.execute("UPDATE cases SET recheck_at = ?2 WHERE id = ?1", params![case, recheck_at.as_micros()])?;
        Ok(())
    }

    /// Notices sent for a case: (contact, source).
    pub fn notices(&self, case: i64) -> Result<Vec<(String, String)>, CrawlError> {
        let mut st = self.db.prepare(
            "SELECT contact, source FROM notices WHERE case_id = ?1 AND sent_at IS NOT NULL ORDER BY contact",
        )?;
        let v = st.query_map([case], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
        Ok(v)
    }

    /// Records a re-check; closes the case when the site is clean, else moves the re-check date.
    pub fn record_check(
        &self,
        case: i64,
        chain_id: &str,
        still: bool,
        now: Timestamp,
        next: Timestamp,
    ) -> Result<(), CrawlError> {
        self.db.execute(
            "INSERT INTO checks (case_id, at, chain_id, still_compromised) VALUES (?1, ?2, ?3, ?4)",
            params![case, now.as_micros(), chain_id, still],
        )?;
        if still {
            self.db.execute(
                "UPDATE cases SET checks = checks + 1, recheck_at = ?2 WHERE id = ?1",
                params![case, next.as_micros()],
            )?;
        } else {
            self.db.execute(
                "UPDATE cases SET checks = checks + 1, status = 'closed', closed_at = ?2 WHERE id = ?1",
                params![case, now.as_micros()],
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_open_case_per_site_and_one_notice_per_contact() {
        let dir = tempfile::tempdir().expect("dir");
        let s = CaseStore::open(&dir.path().join("crawl.sqlite")).expect("open");
        let t0 = Timestamp::from_secs(1_000);
        let (c, new) = s.open_case("blog.example.jp", "http://blog.example.jp/", "c1", "ev", t0).expect("case");
        assert!(new);
        let (c2, new2) = s.open_case("blog.example.jp", "http://blog.example.jp/", "c2", "ev", t0).expect("case");
        assert!(!new2);
        assert_eq!(c.id, c2.id);
        assert!(s.reserve_notice(c.id, "Sec@Blog.example.jp", "security.txt", t0).expect("r"));
        assert!(!s.reserve_notice(c.id, "sec@blog.example.jp", "security.txt", t0).expect("r"));
        s.notice_sent(c.id, "sec@blog.example.jp", t0, Timestamp::from_secs(2_000)).expect("sent");
        assert!(s.due(Timestamp::from_secs(1_500), false).expect("due").is_empty());
        assert_eq!(s.due(Timestamp::from_secs(2_000), false).expect("due").len(), 1);
        s.record_check(c.id, "c3", false, Timestamp::from_secs(2_001), Timestamp::from_secs(3_000)).expect("check");
        assert_eq!(s.get(c.id).expect("get").map(|c| c.status), Some("closed".into()));
        let (c3, new3) = s.open_case("blog.example.jp", "http://blog.example.jp/", "c4", "ev", t0).expect("case");
        assert!(new3 && c3.id != c.id);
    }
}
