//! Judging what was fetched: hashes, YARA-X rules compiled once from the operator's rule
//! directory, known-bad hash and URL lists.
//!
//! Rule categories come from a rule's tags or its `category` meta value:
//! - `exploit` — exploit-kit landing pages and exploit payloads;
//! - `injection` (or `injected`, `compromise`) — code injected into a normal site (hidden iframes,
//!   obfuscated `eval`);
//! - anything else (typically `malware`) — malicious downloads.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::CrawlError;

/// What a matching rule says about the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Exploit content.
    Exploit,
    /// Injected code in a compromised page.
    Injection,
    /// Malware.
    Malware,
}

/// One rule match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    /// `namespace:rule` (namespace = the rule file's stem).
    pub name: String,
    /// Its category.
    pub category: Category,
    /// `malware`/`family` meta, when the rule names one.
    pub family: Option<String>,
}

/// MD5, SHA-1 and SHA-256 of a body, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hashes {
    /// MD5.
    pub md5: String,
    /// SHA-1.
    pub sha1: String,
    /// SHA-256.
    pub sha256: String,
}

impl Hashes {
    /// Hashes `data`.
    pub fn of(data: &[u8]) -> Hashes {
        Hashes {
            md5: hex::encode(Md5::digest(data)),
            sha1: hex::encode(Sha1::digest(data)),
            sha256: hex::encode(Sha256::digest(data)),
        }
    }
}

/// SHA-256 only (pages).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A problem with one line of a list file: reported, the line skipped.
#[derive(Debug, Clone)]
pub struct ListProblem {
    /// File.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// Why it was skipped.
    pub reason: String,
}

impl std::fmt::Display for ListProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

thread_local! {
    static SCANNER: std::cell::RefCell<Option<(usize, yara_x::Scanner<'static>)>> = const { std::cell::RefCell::new(None) };
}

/// Rules and lists, loaded once.
pub struct Judge {
    /// Compiled once per process and leaked so that scanners (which borrow the rules) can be
    /// pooled and reused across pages: creating a scanner costs far more than a scan.
    rules: Option<&'static yara_x::Rules>,
    rule_count: usize,
    bad_hashes: HashMap<String, Option<String>>,
    bad_urls: HashSet<String>,
    bad_hosts: HashSet<String>,
    /// Lines of list files that were skipped.
    pub problems: Vec<ListProblem>,
}

impl Judge {
    /// A judge with no rules and empty lists.
    pub fn empty() -> Judge {
        Judge {
            rules: None,
            rule_count: 0,
            bad_hashes: HashMap::new(),
            bad_urls: HashSet::new(),
            bad_hosts: HashSet::new(),
            problems: Vec::new(),
        }
    }

    /// Loads from the configuration: compiles every `*.yar`/`*.yara` in `yara_dir` (a rule error
    /// fails setup, naming the file and line), reads the hash and URL lists (bad lines are
    /// skipped and listed in [`Judge::problems`]).
    pub fn load(config: &crate::config::Judge) -> Result<Judge, CrawlError> {
        let mut j = Judge::empty();
        if let Some(dir) = &config.yara_dir {
            j.load_rules(dir)?;
        }
        for f in &config.bad_hash_files {
            let text = std::fs::read_to_string(f).map_err(|e| CrawlError::io(f, e))?;
            j.add_hash_list(&text, f);
        }
        for f in &config.bad_url_files {
            let text = std::fs::read_to_string(f).map_err(|e| CrawlError::io(f, e))?;
            j.add_url_list(&text, f);
        }
        Ok(j)
    }

    fn load_rules(&mut self, dir: &Path) -> Result<(), CrawlError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| CrawlError::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yar" || x == "yara"))
            .collect();
        files.sort();
        let mut compiler = yara_x::Compiler::new();
        for f in &files {
            let src = std::fs::read_to_string(f).map_err(|e| CrawlError::io(f, e))?;
            let ns = f.file_stem().map(|s| s.to_string_lossy().replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
            compiler.new_namespace(ns.as_deref().unwrap_or("default"));
            let origin = f.display().to_string();
            compiler
                .add_source(yara_x::SourceCode::from(src.as_str()).with_origin(origin.as_str()))
                .map_err(|e| CrawlError::Rules(format!("{origin}: {e}")))?;
            self.rule_count += src.matches("rule ").count().max(1);
        }
        if !files.is_empty() {
            self.rules = Some(Box::leak(Box::new(compiler.build())));
        }
        Ok(())
    }

    /// Adds hashes from list text (`<hex> [family]` per line).
    pub fn add_hash_list(&mut self, text: &str, origin: &Path) {
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split([' ', '\t', ',']).filter(|s| !s.is_empty());
            let h = parts.next().unwrap_or("").to_ascii_lowercase();
            if matches!(h.len(), 32 | 40 | 64) && h.bytes().all(|b| b.is_ascii_hexdigit()) {
                self.bad_hashes.insert(h, parts.next().map(str::to_owned));
            } else {
                self.problems.push(ListProblem {
                    file: origin.to_owned(),
                    line: i + 1,
                    reason: format!("not an MD5, SHA-1 or SHA-256 hex digest: {h:?}"),
                });
            }
        }
    }

    /// Adds URLs (`scheme://…`) and host names from list text.
    pub fn add_url_list(&mut self, text: &str, origin: &Path) {
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if line.contains("://") {
                match kizuna_model::canonical_url(line) {
                    Some(u) => {
                        self.bad_urls.insert(u);
                    }
                    None => self.problems.push(ListProblem {
                        file: origin.to_owned(),
                        line: i + 1,
                        reason: format!("not a URL: {line:?}"),
                    }),
                }
            } else {
                match kizuna_model::canonical_domain(line) {
                    Some(d) => {
                        self.bad_hosts.insert(d);
                    }
                    None => self.problems.push(ListProblem {
                        file: origin.to_owned(),
                        line: i + 1,
                        reason: format!("not a URL or host name: {line:?}"),
                    }),
                }
            }
        }
    }

    /// Adds one indicator (from the hub): a URL, domain or hash.
    pub fn add_indicator(&mut self, kind: &str, value: &str) {
        match kind {
            "url" => {
                if let Some(u) = kizuna_model::canonical_url(value) {
                    self.bad_urls.insert(u);
                }
            }
            "domain" | "fqdn" => {
                if let Some(d) = kizuna_model::canonical_domain(value) {
                    self.bad_hosts.insert(d);
                }
            }
            "hash" | "md5" | "sha1" | "sha256" => {
                self.bad_hashes.insert(value.trim().to_ascii_lowercase(), None);
            }
            _ => {}
        }
    }

    /// Number of rule files' rules (approximate), hashes and URLs+hosts loaded.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.rule_count, self.bad_hashes.len(), self.bad_urls.len() + self.bad_hosts.len())
    }

    /// Rules matching `data`. A scan error is returned as text (the node records it).
    pub fn scan(&self, data: &[u8]) -> Result<Vec<RuleHit>, String> {
        let Some(rules) = self.rules else { return Ok(Vec::new()) };
        // One scanner per thread and rule set (scanners are not Send, and creating one costs
        // far more than a scan).
        let key = std::ptr::from_ref(rules) as usize;
        SCANNER.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().is_none_or(|(k, _)| *k != key) {
                let mut sc = yara_x::Scanner::new(rules);
                sc.set_timeout(std::time::Duration::from_secs(10));
                *slot = Some((key, sc));
            }
            match slot.as_mut() {
                Some((_, sc)) => Self::hits(sc, data),
                None => Ok(Vec::new()),
            }
        })
    }

    fn hits(scanner: &mut yara_x::Scanner<'static>, data: &[u8]) -> Result<Vec<RuleHit>, String> {
        let results = scanner.scan(data).map_err(|e| e.to_string())?;
        let mut hits = Vec::new();
        for r in results.matching_rules() {
            let mut category = None;
            let mut family = None;
            for t in r.tags() {
                category = category.or(category_of(t.identifier()));
            }
            for (k, v) in r.metadata() {
                let s = match v {
                    yara_x::MetaValue::String(s) => Some(s.to_owned()),
                    _ => None,
                };
                match (k, s) {
                    ("category", Some(s)) => category = category_of(&s).or(category),
                    ("malware" | "family", Some(s)) => family = Some(s.to_ascii_lowercase()),
                    _ => {}
                }
            }
            hits.push(RuleHit {
                name: format!("{}:{}", r.namespace(), r.identifier()),
                category: category.unwrap_or(Category::Malware),
                family,
            });
        }
        Ok(hits)
    }

    /// The family name of a known-bad hash (`Some(None)`: listed without a name).
    pub fn bad_hash(&self, h: &Hashes) -> Option<Option<String>> {
        [&h.sha256, &h.sha1, &h.md5].into_iter().find_map(|x| self.bad_hashes.get(x.as_str()).cloned())
    }

    /// Whether a URL (or its host) is listed as bad.
    pub fn bad_url(&self, url: &str) -> bool {
        let Some(u) = kizuna_model::canonical_url(url) else { return false };
        if self.bad_urls.contains(&u) {
            return true;
        }
        kizuna_model::url_host(&u).is_some_and(|h| {
            // The host and each parent domain.
            let mut d = h;
            loop {
                if self.bad_hosts.contains(d) {
                    return true;
                }
                match d.split_once('.') {
                    Some((_, rest)) if rest.contains('.') => d = rest,
                    _ => return false,
                }
            }
        })
    }
}

fn category_of(s: &str) -> Option<Category> {
    match s.to_ascii_lowercase().as_str() {
        "exploit" | "exploit_kit" | "ek" => Some(Category::Exploit),
        "injection" | "injected" | "compromise" | "compromised" => Some(Category::Injection),
        "malware" | "dropper" | "trojan" | "downloader" => Some(Category::Malware),
        _ => None,
    }
}

/// The kind of a download, by magic bytes and content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Windows PE (`MZ`).
    Pe,
    /// ELF.
    Elf,
    /// Mach-O.
    MachO,
    /// ZIP/JAR/APK.
    Zip,
    /// Java class.
    JavaClass,
    /// Flash (`FWS`/`CWS`/`ZWS`).
    Flash,
    /// PDF.
    Pdf,
    /// Other archives (RAR, 7z, CAB, gzip).
    Archive,
    /// Anything else.
    Other,
}

impl FileKind {
    /// Sniffs the first bytes; falls back to the content type.
    pub fn sniff(data: &[u8], content_type: Option<&str>) -> FileKind {
        let d = data;
        if d.starts_with(b"MZ") {
            FileKind::Pe
        } else if d.starts_with(b"\x7fELF") {
            FileKind::Elf
        } else if d.starts_with(&[0xcf, 0xfa, 0xed, 0xfe])
            || d.starts_with(&[0xca, 0xfe, 0xba, 0xbe]) && d.len() > 8 && d[7] < 0x20
        {
            FileKind::MachO
        } else if d.starts_with(&[0xca, 0xfe, 0xba, 0xbe]) {
            FileKind::JavaClass
        } else if d.starts_with(b"PK\x03\x04") {
            FileKind::Zip
        } else if d.starts_with(b"FWS") || d.starts_with(b"CWS") || d.starts_with(b"ZWS") {
            FileKind::Flash
        } else if d.starts_with(b"%PDF-") {
            FileKind::Pdf
        } else if d.starts_with(b"Rar!")
            || d.starts_with(b"7z\xbc\xaf")
            || d.starts_with(b"MSCF")
            || d.starts_with(&[0x1f, 0x8b])
        {
            FileKind::Archive
        } else {
            match content_type {
                Some("application/x-shockwave-flash") => FileKind::Flash,
                Some("application/java-archive" | "application/x-java-archive" | "application/x-java-applet") => {
                    FileKind::Zip
                }
                Some("application/pdf") => FileKind::Pdf,
                Some(
                    "application/x-msdownload"
                    | "application/x-dosexec"
                    | "application/vnd.microsoft.portable-executable",
                ) => FileKind::Pe,
                _ => FileKind::Other,
            }
        }
    }

    /// Native executables.
    pub fn executable(self) -> bool {
        matches!(self, FileKind::Pe | FileKind::Elf | FileKind::MachO)
    }

    /// Content browsers hand to exploitable plug-ins.
    pub fn exploit_carrier(self, content_type: Option<&str>, data: &[u8]) -> bool {
        match self {
            FileKind::Flash | FileKind::JavaClass => true,
            FileKind::Zip => {
                matches!(content_type, Some("application/java-archive" | "application/x-java-archive"))
                    || memfind(data, b"META-INF/MANIFEST.MF")
            }
            FileKind::Pdf => memfind(data, b"/JavaScript") || memfind(data, b"/JS"),
            _ => false,
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Pe => "pe",
            FileKind::Elf => "elf",
            FileKind::MachO => "macho",
            FileKind::Zip => "zip",
            FileKind::JavaClass => "java-class",
            FileKind::Flash => "flash",
            FileKind::Pdf => "pdf",
            FileKind::Archive => "archive",
            FileKind::Other => "other",
        }
    }
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_known_values() {
        let h = Hashes::of(b"abc");
        assert_eq!(h.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(h.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(h.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn lists_skip_bad_lines_and_match_parents() {
        let mut j = Judge::empty();
        j.add_hash_list("# c\n900150983cd24fb0d6963f7d28e17f72 testfam\nnothex\n", Path::new("h.txt"));
        j.add_url_list("http://Bad.Example/x?y=1\nevil.example\nhttp://\n", Path::new("u.txt"));
        assert_eq!(j.problems.len(), 2);
        assert_eq!(j.problems[0].line, 3);
        assert_eq!(j.bad_hash(&Hashes::of(b"abc")), Some(Some("testfam".into())));
        assert!(j.bad_url("http://bad.example/x?y=1"));
        assert!(!j.bad_url("http://bad.example/x"));
        assert!(j.bad_url("https://cdn.evil.example/a.js"));
        assert!(!j.bad_url("https://notevil.example/"));
    }

    #[test]
    fn sniffing() {
        assert_eq!(FileKind::sniff(b"MZ\x90\0", None), FileKind::Pe);
        assert_eq!(FileKind::sniff(b"\x7fELF\x02", None), FileKind::Elf);
        assert_eq!(FileKind::sniff(b"CWS\x0a", None), FileKind::Flash);
        assert!(FileKind::Pdf.exploit_carrier(None, b"%PDF-1.4 /OpenAction << /JavaScript"));
        assert!(!FileKind::Pdf.exploit_carrier(None, b"%PDF-1.4 plain"));
    }
}
