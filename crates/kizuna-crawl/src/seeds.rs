//! Seed lists: the URLs a crawl starts from, read from files, stdin or URL feeds.
//!
//! [`parse`] is pure (bytes in, URLs and rejected lines out) and reads the list formats sensor
//! operators are handed:
//! - plain text, one URL per line, `#` comments (OpenPhish's `feed.txt`, a spam trap's output,
//!   URLs users reported);
//! - CSV whose header names a `url` column, where the header may itself be a `#` comment line
//!   (URLhaus's `csv_recent`: `# id,dateadded,url,url_status,…`) or the first line (PhishTank:
//!   `phish_id,url,phish_detail_url,…`);
//! - CSV without a header: the first field that is an http(s) URL.
//!
//! A line that yields no http(s) URL is rejected with its origin, line number and reason (the
//! caller quarantines and counts it); good lines around it are kept. Duplicates within a list
//! are dropped.
//!
//! [`SeenSeeds`] remembers when each feed URL was last crawled (in `crawl.sqlite`), so that a
//! feed polled every hour is crawled for its new URLs, and an old one only again after
//! `recrawl_after`.

use std::collections::HashSet;

use kizuna_model::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use url::Url;

use crate::CrawlError;

/// Longest line accepted (a URL longer than this is not a seed anyone meant).
pub const MAX_LINE: usize = 8192;

/// A seed line that was not used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// Where the list came from (file name, `-`, or the feed URL).
    pub origin: String,
    /// 1-based line number.
    pub line: usize,
    /// Why.
    pub reason: String,
    /// The line (cut at 200 characters).
    pub text: String,
}

/// What a list yielded.
#[derive(Debug, Clone, Default)]
pub struct SeedList {
    /// The seeds, in list order, without duplicates.
    pub urls: Vec<Url>,
    /// Lines that yielded no seed.
    pub rejected: Vec<Rejected>,
}

/// A usable seed: absolute http(s) with a host.
pub fn seed_url(s: &str) -> Result<Url, String> {
    let s = s.trim();
    match Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()) => Ok(u),
        Ok(u) => Err(format!("not an http(s) URL (scheme {:?})", u.scheme())),
        Err(e) => Err(format!("not a URL ({e})")),
    }
}

fn cut(s: &str) -> String {
    if s.chars().count() > 200 { s.chars().take(200).collect::<String>() + "…" } else { s.to_owned() }
}

/// The fields of one CSV line (quoted fields, `""` escapes), or None when it is not CSV.
fn csv_fields(line: &str) -> Option<Vec<String>> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(line.as_bytes());
    let rec = r.records().next()?.ok()?;
    (rec.len() > 1).then(|| rec.iter().map(|f| f.trim().to_owned()).collect())
}

/// The index of a `url` column in a header line (a `#` comment or a plain first line).
fn url_column(header: &str) -> Option<usize> {
    let fields = csv_fields(header)?;
    // A header names its columns: no field of it is itself a URL.
    if fields.iter().any(|f| seed_url(f).is_ok()) {
        return None;
    }
    fields.iter().position(|f| f.eq_ignore_ascii_case("url"))
}

/// Reads a seed list (see the module docs). `origin` names it in rejections.
pub fn parse(bytes: &[u8], origin: &str) -> SeedList {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut out = SeedList::default();
    let mut seen = HashSet::new();
    let mut column: Option<usize> = None;
    let mut first_data = true;
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let mut reject = |reason: String, text: &str| {
            out.rejected.push(Rejected { origin: origin.to_owned(), line: n, reason, text: cut(text) });
        };
        let Ok(line) = std::str::from_utf8(raw) else {
            reject("not UTF-8".into(), &String::from_utf8_lossy(raw));
            continue;
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.len() > MAX_LINE {
            reject(format!("line longer than {MAX_LINE} bytes"), line);
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            if column.is_none() {
                column = url_column(comment.trim());
            }
            continue;
        }
        if first_data {
            first_data = false;
            if column.is_none()
                && let Some(c) = url_column(line)
            {
                column = Some(c);
                continue;
            }
        }
        // Plain text: a URL, optionally followed by a `#` comment.
        let candidate = match column {
            Some(c) => match csv_fields(line) {
                Some(f) => match f.get(c) {
                    Some(v) => Ok(v.clone()),
                    None => Err(format!("no field {} (the url column)", c + 1)),
                },
                None => Ok(line.to_owned()),
            },
            None => {
                let plain = line.split(" #").next().unwrap_or(line).trim();
                if seed_url(plain).is_ok() {
                    Ok(plain.to_owned())
                } else if let Some(f) = csv_fields(line) {
                    f.into_iter().find(|f| seed_url(f).is_ok()).ok_or_else(|| "no field is an http(s) URL".to_owned())
                } else {
                    Ok(plain.to_owned())
                }
            }
        };
        match candidate.and_then(|c| seed_url(&c)) {
            Ok(u) => {
                if seen.insert(u.as_str().to_owned()) {
                    out.urls.push(u);
                }
            }
            Err(reason) => reject(reason, line),
        }
    }
    out
}

/// Fetches a seed feed with the crawler's client (its identity, timeouts and address
/// overrides) and reads it. A failed fetch, a status other than 2xx, or a feed larger than
/// `max_bytes` is an error naming the feed: a partial list is never used.
pub async fn fetch_feed(fetcher: &crate::fetch::Fetcher, feed: &Url, max_bytes: u64) -> Result<SeedList, String> {
    // One byte over the cap tells "exactly the cap" from "larger".
    let f = fetcher.fetch_with_cap(feed, Some(max_bytes.saturating_add(1))).await;
    if let Some(e) = &f.failure {
        return Err(format!("seed feed {feed}: {e}"));
    }
    match f.status {
        Some(s) if (200..300).contains(&s) => {}
        Some(s) => return Err(format!("seed feed {feed}: HTTP status {s}")),
        None => return Err(format!("seed feed {feed}: no response")),
    }
    if f.truncated || f.body.len() as u64 > max_bytes {
        return Err(format!("seed feed {feed}: larger than seeds.max_feed_bytes ({max_bytes} bytes); not used"));
    }
    Ok(parse(&f.body, feed.as_str()))
}

/// When each feed seed was last crawled (`feed_seeds` in `crawl.sqlite`).
pub struct SeenSeeds {
    db: Connection,
}

impl SeenSeeds {
    /// Opens (and creates) the table in the crawler's database.
    pub fn open(path: &std::path::Path) -> Result<SeenSeeds, CrawlError> {
        let db = Connection::open(path)?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS feed_seeds (
               url TEXT PRIMARY KEY,
               feed TEXT NOT NULL,
               first_listed INTEGER NOT NULL,
               last_crawled INTEGER
             );",
        )?;
        Ok(SeenSeeds { db })
    }

    /// Splits a feed's URLs into those to crawl now (never crawled, or last crawled at least
    /// `recrawl_after` ago) and the number skipped as crawled recently. Records new URLs as
    /// listed by `feed`.
    pub fn due(
        &self,
        feed: &str,
        urls: Vec<Url>,
        now: Timestamp,
        recrawl_after: std::time::Duration,
    ) -> Result<(Vec<Url>, usize), CrawlError> {
        let cutoff = now.as_micros() - i64::try_from(recrawl_after.as_micros()).unwrap_or(i64::MAX);
        let mut due = Vec::new();
        let mut recent = 0;
        let tx = self.db.unchecked_transaction()?;
        {
            let mut get = tx.prepare_cached("SELECT last_crawled FROM feed_seeds WHERE url = ?1")?;
            let mut put = tx.prepare_cached(
                "INSERT INTO feed_seeds (url, feed, first_listed) VALUES (?1, ?2, ?3) ON CONFLICT (url) DO NOTHING",
            )?;
            for u in urls {
                let last: Option<Option<i64>> = get.query_row([u.as_str()], |r| r.get(0)).optional()?;
                match last.flatten() {
                    Some(t) if t > cutoff => recent += 1,
                    _ => {
                        put.execute(params![u.as_str(), feed, now.as_micros()])?;
                        due.push(u);
                    }
                }
            }
        }
        tx.commit()?;
        Ok((due, recent))
    }

    /// Records that a seed's chain was crawled (a no-op for seeds no feed listed).
    pub fn crawled(&self, url: &str, at: Timestamp) -> Result<(), CrawlError> {
        self.db.execute("UPDATE feed_seeds SET last_crawled = ?2 WHERE url = ?1", params![url, at.as_micros()])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(l: &SeedList) -> Vec<&str> {
        l.urls.iter().map(Url::as_str).collect()
    }

    #[test]
    fn plain_text_with_comments_and_bad_lines() {
        let l = parse(
            b"\xef\xbb\xbf# reported by users\r\nhttp://a.example/x\r\n\nhttps://b.example/  # from the spam trap\n\
              ftp://c.example/\nnot a url\nhttp://a.example/x\n",
            "reports.txt",
        );
        assert_eq!(urls(&l), ["http://a.example/x", "https://b.example/"]);
        let r: Vec<(usize, &str)> = l.rejected.iter().map(|r| (r.line, r.text.as_str())).collect();
        assert_eq!(r, [(5, "ftp://c.example/"), (6, "not a url")]);
        assert!(l.rejected[0].reason.contains("ftp"), "{:?}", l.rejected[0]);
        assert!(l.rejected.iter().all(|r| r.origin == "reports.txt"));
    }

    #[test]
    fn urlhaus_csv_with_a_commented_header() {
        // The layout of URLhaus's csv_recent export: comment lines, a commented header, quoted
        // fields; the urlhaus_link column is also a URL and must not be taken.
        let csv = b"################################################################\n\
            # abuse.ch URLhaus Database Dump (CSV - recent URLs)           #\n\
            ################################################################\n\
            #\n\
            # id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
            \"3412345\",\"2026-11-30 23:59:01\",\"http://198.51.100.7:35211/i\",\"online\",\"2026-11-30 23:59:01\",\"malware_download\",\"32-bit,elf,mips,Mozi\",\"https://urlhaus.abuse.ch/url/3412345/\",\"geenensp\"\n\
            \"3412344\",\"2026-11-30 23:58:40\",\"https://shop.example.jp/wp-content/x.exe\",\"offline\",\"\",\"malware_download\",\"exe\",\"https://urlhaus.abuse.ch/url/3412344/\",\"anonymous\"\n\
            \"3412343\",\"2026-11-30 23:58:00\",\"javascript:alert(1)\",\"offline\",\"\",\"malware_download\",\"\",\"https://urlhaus.abuse.ch/url/3412343/\",\"x\"\n";
        let l = parse(csv, "https://feeds.example/csv_recent/");
        assert_eq!(urls(&l), ["http://198.51.100.7:35211/i", "https://shop.example.jp/wp-content/x.exe"]);
        assert_eq!(l.rejected.len(), 1);
        assert_eq!(l.rejected[0].line, 8);
    }

    #[test]
    fn phishtank_csv_with_a_header_line() {
        let csv = b"phish_id,url,phish_detail_url,submission_time,verified,verification_time,online,target\n\
            8765432,https://login.bank.example.invalid.example/jp/,http://www.phishtank.com/phish_detail.php?phish_id=8765432,2026-11-30T10:00:00+00:00,yes,2026-11-30T10:05:00+00:00,yes,Other\n\
            8765433,,http://www.phishtank.com/phish_detail.php?phish_id=8765433,2026-11-30T10:00:00+00:00,yes,2026-11-30T10:05:00+00:00,yes,Other\n";
        let l = parse(csv, "phishtank.csv");
        assert_eq!(urls(&l), ["https://login.bank.example.invalid.example/jp/"]);
        assert_eq!(l.rejected.len(), 1);
        assert_eq!(l.rejected[0].line, 3);
        assert!(l.rejected[0].reason.contains("not a URL"), "{:?}", l.rejected[0]);
    }

    #[test]
    fn headerless_csv_takes_the_first_url_field() {
        let l = parse(b"2026-11-30,spam,http://lure.example/a,http://other.example/\n", "trap.csv");
        assert_eq!(urls(&l), ["http://lure.example/a"]);
    }

    #[test]
    fn junk_never_panics_and_is_all_rejected() {
        let mut junk: Vec<u8> = vec![0xff, 0xfe, b'\n', b'"', b',', b'\n', b',', b',', b'\n'];
        junk.extend(std::iter::repeat_n(b'a', MAX_LINE + 1));
        let l = parse(&junk, "junk");
        assert!(l.urls.is_empty());
        assert_eq!(l.rejected.len(), 4, "{:?}", l.rejected);
        assert!(l.rejected[0].reason.contains("UTF-8"));
        assert!(l.rejected[3].reason.contains("longer"));
    }

    #[test]
    fn seen_seeds_crawl_new_urls_and_old_ones_again_after_the_window() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = SeenSeeds::open(&dir.path().join("crawl.sqlite")).expect("open");
        let day = std::time::Duration::from_secs(86_400);
        let t0 = Timestamp::from_secs(1_790_000_000);
        let list = |v: &[&str]| v.iter().map(|u| Url::parse(u).expect("url")).collect::<Vec<_>>();
        let (due, recent) = s.due("f", list(&["http://a.example/", "http://b.example/"]), t0, day).expect("due");
        assert_eq!((due.len(), recent), (2, 0));
        s.crawled("http://a.example/", t0).expect("mark");
        // An hour later: a was crawled, b was listed but its crawl never finished, c is new.
        let t1 = Timestamp::from_secs(1_790_003_600);
        let (due, recent) =
            s.due("f", list(&["http://a.example/", "http://b.example/", "http://c.example/"]), t1, day).expect("due");
        let due: Vec<&str> = due.iter().map(Url::as_str).collect();
        assert_eq!((due, recent), (vec!["http://b.example/", "http://c.example/"], 1));
        let t2 = Timestamp::from_secs(1_790_000_000 + 86_400);
        let (due, recent) = s.due("f", list(&["http://a.example/"]), t2, day).expect("due");
        assert_eq!((due.len(), recent), (1, 0), "a day later a is due again");
    }
}
