//! Following the chain from a seed and judging every node.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use kizuna_model::Timestamp;
use serde::Serialize;
use url::Url;

use crate::config::{CrawlConfig, Limits};
use crate::fetch::{Fetched, Fetcher, is_page_type};
use crate::html::{self, Reason};
use crate::judge::{Category, FileKind, Hashes, Judge, RuleHit, sha256_hex};

/// The role of a URL in a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// A page of a normal site that leads to exploit/distribution via injected content.
    Entry,
    /// Passes the visitor on towards exploit or distribution.
    Redirector,
    /// Exploit content (rule match, plug-in exploit carrier).
    Exploit,
    /// Serves malware.
    Distribution,
    /// Nothing found.
    Clean,
    /// Timeout, TLS failure, too big, loop.
    Error,
}

impl Verdict {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Entry => "entry",
            Verdict::Redirector => "redirector",
            Verdict::Exploit => "exploit",
            Verdict::Distribution => "distribution",
            Verdict::Clean => "clean",
            Verdict::Error => "error",
        }
    }

    /// Every verdict, in report order.
    pub const ALL: [Verdict; 6] =
        [Verdict::Entry, Verdict::Redirector, Verdict::Exploit, Verdict::Distribution, Verdict::Clean, Verdict::Error];

    /// Whether the node is part of a malicious chain.
    pub fn malicious(self) -> bool {
        matches!(self, Verdict::Entry | Verdict::Redirector | Verdict::Exploit | Verdict::Distribution)
    }
}

/// One URL visited.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Index in [`Chain::nodes`].
    pub id: usize,
    /// The URL.
    pub url: String,
    /// Its host (lower case).
    pub host: String,
    /// Hops from the seed.
    pub depth: u32,
    /// HTTP status.
    pub status: Option<u16>,
    /// Media type.
    pub content_type: Option<String>,
    /// Body bytes read.
    pub size: u64,
    /// Reading stopped at the cap.
    pub truncated: bool,
    /// The address connected to.
    pub ip: Option<IpAddr>,
    /// HTTP version.
    pub http_version: Option<String>,
    /// SHA-256 of the body read.
    pub sha256: Option<String>,
    /// MD5 (downloads).
    pub md5: Option<String>,
    /// SHA-1 (downloads).
    pub sha1: Option<String>,
    /// Whether the body was judged as a download rather than a page.
    pub download: bool,
    /// Sniffed kind of a download.
    pub file_kind: Option<&'static str>,
    /// The role.
    pub verdict: Verdict,
    /// Why: rule names, hashes, list hits, hidden iframes, errors, the hop that led here.
    pub evidence: Vec<String>,
    /// Malware family when a rule or list names one.
    pub family: Option<String>,
    /// Fetch failure.
    pub failure: Option<String>,
    /// Why the node is an error (or had one), for metrics: `timeout`, `tls`, `connect`,
    /// `other` (fetch failures), `loop` (redirect loop), `too-big` (download over the cap).
    pub error: Option<&'static str>,
    /// When it was fetched.
    #[serde(serialize_with = "ser_ts")]
    pub fetched_at: Timestamp,
    /// The edge that first led here: (parent, reason).
    #[serde(skip)]
    pub via: Option<(usize, Reason)>,
    #[serde(skip)]
    hits: Vec<RuleHit>,
    #[serde(skip)]
    looped: bool,
    #[serde(skip)]
    listed: bool,
    #[serde(skip)]
    kind: Option<FileKind>,
}

fn ser_ts<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_string())
}

/// A hop.
#[derive(Debug, Clone, Serialize)]
pub struct Edge {
    /// From node.
    pub from: usize,
    /// To node.
    pub to: usize,
    /// `redirect-302`, `meta-refresh`, `js-location`, `iframe`, `script-src`, `embed`, `download`.
    pub reason: String,
    /// An iframe that was zero-size or styled invisible.
    pub hidden: bool,
}

/// The graph of one crawl from one seed.
#[derive(Debug, Clone, Serialize)]
pub struct Chain {
    /// Stable id of this crawl (hex).
    pub id: String,
    /// The seed URL.
    pub seed: String,
    /// The browser profile played.
    pub profile: String,
    /// When the crawl started.
    #[serde(serialize_with = "ser_ts")]
    pub started: Timestamp,
    /// URLs visited.
    pub nodes: Vec<Node>,
    /// Hops.
    pub edges: Vec<Edge>,
    /// Limits that cut the crawl short.
    pub limits_hit: Vec<String>,
}

impl Chain {
    /// Count of nodes per verdict.
    pub fn verdict_counts(&self) -> HashMap<Verdict, usize> {
        let mut m = HashMap::new();
        for n in &self.nodes {
            *m.entry(n.verdict).or_insert(0) += 1;
        }
        m
    }

    /// The seed node's verdict (Error when nothing was fetched).
    pub fn seed_verdict(&self) -> Verdict {
        self.nodes.first().map(|n| n.verdict).unwrap_or(Verdict::Error)
    }

    /// The node for a URL.
    pub fn node(&self, url: &str) -> Option<&Node> {
        let c = canonical(url);
        self.nodes.iter().find(|n| canonical(&n.url) == c)
    }
}

fn canonical(u: &str) -> String {
    kizuna_model::canonical_url(u).unwrap_or_else(|| u.to_owned())
}

/// A URL waiting to be fetched: where, at which depth, and the edge that found it.
type Pending = (Url, u32, Option<(usize, Reason, bool)>);

/// The crawler: a fetcher, a judge and the limits.
pub struct Crawler {
    fetcher: Fetcher,
    judge: Arc<Judge>,
    limits: Limits,
    profile: String,
    quarantine: Option<PathBuf>,
    concurrency: usize,
}

impl Crawler {
    /// Builds a crawler.
    pub fn new(config: &CrawlConfig, judge: Arc<Judge>) -> Result<Crawler, crate::CrawlError> {
        let quarantine = if config.judge.quarantine {
            let d = config.data_dir().join("quarantine");
            std::fs::create_dir_all(&d).map_err(|e| crate::CrawlError::io(&d, e))?;
            Some(d)
        } else {
            None
        };
        Ok(Crawler {
            fetcher: Fetcher::new(config)?,
            judge,
            limits: config.limits.clone(),
            profile: config.identity.profile.clone(),
            quarantine,
            concurrency: config.rate.concurrency,
        })
    }

    /// The judge in use.
    pub fn judge(&self) -> &Judge {
        &self.judge
    }

    /// Crawls many seeds, `rate.concurrency` at a time, calling `done` as each chain finishes.
    pub async fn crawl_all(self: &Arc<Self>, seeds: Vec<Url>, mut done: impl FnMut(Chain)) {
        let mut set = tokio::task::JoinSet::new();
        let mut it = seeds.into_iter();
        loop {
            while set.len() < self.concurrency {
                let Some(seed) = it.next() else { break };
                let me = self.clone();
                set.spawn(async move { me.crawl(&seed).await });
            }
            match set.join_next().await {
                Some(Ok(chain)) => done(chain),
                Some(Err(e)) => tracing::error!("crawl task failed: {e}"),
                None => break,
            }
        }
    }

    /// Crawls one seed and judges the chain.
    pub async fn crawl(&self, seed: &Url) -> Chain {
        let started = Timestamp::now();
        let id = sha256_hex(format!("{seed}\0{}", started.as_micros()).as_bytes())[..24].to_owned();
        let mut chain = Chain {
            id,
            seed: seed.to_string(),
            profile: self.profile.clone(),
            started,
            nodes: Vec::new(),
            edges: Vec::new(),
            limits_hit: Vec::new(),
        };
        let mut visited: HashMap<String, usize> = HashMap::new();
        let mut queue: VecDeque<Pending> = VecDeque::new();
        queue.push_back((seed.clone(), 0, None));
        while let Some((url, depth, parent)) = queue.pop_front() {
            let key = canonical(url.as_str());
            if let Some(&existing) = visited.get(&key) {
                if let Some((p, reason, hidden)) = parent {
                    chain.edges.push(Edge { from: p, to: existing, reason: reason.as_str(), hidden });
                    if navigation(reason) {
                        mark_loop(&mut chain, p, existing);
                    }
                }
                continue;
            }
            if chain.nodes.len() >= self.limits.max_pages_per_chain as usize {
                chain.limits_hit.push(format!("max_pages_per_chain {} reached", self.limits.max_pages_per_chain));
                break;
            }
            let fetched = self.fetcher.fetch(&url).await;
            let nid = chain.nodes.len();
            visited.insert(key, nid);
            let mut node = self.node_from(nid, depth, &fetched);
            if let Some((p, reason, hidden)) = parent {
                chain.edges.push(Edge { from: p, to: nid, reason: reason.as_str(), hidden });
                node.via = Some((p, reason));
                node.evidence.push(format!(
                    "reached by {}{} from {}",
                    reason.as_str(),
                    if hidden { " (hidden)" } else { "" },
                    chain.nodes[p].url
                ));
            }
            let next = self.judge_node(&mut node, &fetched);
            chain.nodes.push(node);
            for (taken, (target, reason, hidden)) in next.into_iter().enumerate() {
                if depth + 1 > self.limits.max_depth {
                    chain.limits_hit.push(format!("max_depth {} at {}", self.limits.max_depth, url));
                    break;
                }
                if taken >= self.limits.max_breadth as usize {
                    chain.limits_hit.push(format!("max_breadth {} at {}", self.limits.max_breadth, url));
                    break;
                }
                queue.push_back((target, depth + 1, Some((nid, reason, hidden))));
            }
        }
        assign_verdicts(&mut chain);
        chain
    }

    fn node_from(&self, id: usize, depth: u32, f: &Fetched) -> Node {
        Node {
            id,
            url: f.url.to_string(),
            host: f.url.host_str().unwrap_or("").to_ascii_lowercase(),
            depth,
            status: f.status,
            content_type: f.content_type.clone(),
            size: f.body.len() as u64,
            truncated: f.truncated,
            ip: f.remote_ip,
            http_version: f.version.clone(),
            sha256: None,
            md5: None,
            sha1: None,
            download: false,
            file_kind: None,
            verdict: Verdict::Clean,
            evidence: Vec::new(),
            family: None,
            failure: f.failure.as_ref().map(|e| e.to_string()),
            error: f.failure.as_ref().map(crate::fetch::FetchFailure::kind),
            fetched_at: Timestamp::now(),
            via: None,
            hits: Vec::new(),
            looped: false,
            listed: false,
            kind: None,
        }
    }

    /// Hashes, scans and parses one response; returns what to follow.
    fn judge_node(&self, node: &mut Node, f: &Fetched) -> Vec<(Url, Reason, bool)> {
        let mut next = Vec::new();
        if self.judge.bad_url(&node.url) {
            node.listed = true;
            node.evidence.push("url listed as known-bad".into());
        }
        if let Some(fail) = &f.failure
            && f.status.is_none()
        {
            node.evidence.push(format!("fetch failed: {fail}"));
            return next;
        }
        if let Some(fail) = &f.failure {
            node.evidence.push(format!("body read failed: {fail}"));
        }
        let status = f.status.unwrap_or(0);
        let resolve = |s: &str| -> Option<Url> {
            let u = f.url.join(s.trim()).ok()?;
            matches!(u.scheme(), "http" | "https").then_some(u)
        };
        if (300..400).contains(&status) {
            if let Some(loc) = f.location.as_deref().and_then(resolve) {
                next.push((loc, Reason::Redirect(status), false));
            } else if f.location.is_some() {
                node.evidence.push(format!("unusable Location {:?}", f.location));
            }
        }
        if let Some(t) = f.refresh.as_deref().and_then(html::refresh_target).and_then(|t| resolve(&t)) {
            next.push((t, Reason::MetaRefresh, false));
        }
        if f.truncated {
            node.evidence.push(format!("truncated at {} bytes", f.body.len()));
        }
        if f.body.is_empty() {
            return next;
        }
        let attachment = f
            .content_disposition
            .as_deref()
            .is_some_and(|d| d.trim_start().to_ascii_lowercase().starts_with("attachment"));
        let kind = FileKind::sniff(&f.body, f.content_type.as_deref());
        let page = is_page_type(f.content_type.as_deref()) && !attachment && kind == FileKind::Other;
        match self.judge.scan(&f.body) {
            Ok(h) => node.hits = h,
            Err(e) => node.evidence.push(format!("yara scan failed: {e}")),
        }
        for h in &node.hits {
            node.evidence.push(format!("yara rule {}", h.name));
            if node.family.is_none() {
                node.family.clone_from(&h.family);
            }
        }
        if page {
            node.sha256 = Some(sha256_hex(&f.body));
            let js_only = matches!(
                f.content_type.as_deref(),
                Some("text/javascript" | "application/javascript" | "application/x-javascript")
            );
            let found = if js_only {
                let mut v = Vec::new();
                html::script_targets(&String::from_utf8_lossy(&f.body), &mut v);
                v
            } else {
                let l = html::scan(&f.body, &node.host);
                if let Some(e) = l.parse_error {
                    node.evidence.push(format!("html parser stopped: {e}"));
                }
                l.found
            };
            for fnd in found {
                let Some(u) = resolve(&fnd.url) else { continue };
                if fnd.reason == Reason::Iframe && fnd.hidden {
                    node.evidence.push(format!("hidden iframe {u}"));
                }
                next.push((u, fnd.reason, fnd.hidden));
            }
        } else {
            node.download = true;
            let h = Hashes::of(&f.body);
            node.kind = Some(kind);
            node.file_kind = Some(kind.as_str());
            if let Some(fam) = self.judge.bad_hash(&h) {
                node.evidence.push(format!("sha256 {} listed as known-bad", h.sha256));
                if node.family.is_none() {
                    node.family = fam;
                }
                node.listed = true;
            }
            if let Some(dir) = &self.quarantine {
                quarantine(dir, &h.sha256, &f.body, node);
            }
            node.sha256 = Some(h.sha256);
            node.md5 = Some(h.md5);
            node.sha1 = Some(h.sha1);
        }
        next
    }
}

/// Writes a download to the quarantine directory, mode 0600, never executable.
fn quarantine(dir: &std::path::Path, sha256: &str, body: &[u8], node: &mut Node) {
    use std::io::Write as _;
    let path = dir.join(sha256);
    if path.exists() {
        return;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    match opts.open(&path).and_then(|mut f| f.write_all(body)) {
        Ok(()) => node.evidence.push(format!("quarantined as {}", path.display())),
        Err(e) => node.evidence.push(format!("quarantine failed: {e}")),
    }
}

fn navigation(r: Reason) -> bool {
    matches!(r, Reason::Redirect(_) | Reason::MetaRefresh | Reason::JsLocation)
}

/// `from` navigates to the already visited `to`: if `to` is an ancestor of `from` by navigation
/// hops only, every node on that cycle is in a redirect loop.
fn mark_loop(chain: &mut Chain, from: usize, to: usize) {
    let mut cycle = vec![from];
    let mut cur = from;
    let mut closed = from == to;
    while !closed {
        match chain.nodes[cur].via {
            Some((p, r)) if navigation(r) => {
                cycle.push(p);
                cur = p;
                closed = p == to;
            }
            _ => break,
        }
    }
    if closed {
        let target = chain.nodes[to].url.clone();
        for n in cycle {
            let node = &mut chain.nodes[n];
            if !node.looped {
                node.looped = true;
                node.evidence.push(format!("redirect loop back to {target}"));
            }
        }
    }
}

/// Decides every node's verdict from its own signals and where it leads.
fn assign_verdicts(chain: &mut Chain) {
    let n = chain.nodes.len();
    let seed_host = chain.nodes.first().map(|n| n.host.clone()).unwrap_or_default();
    // Own signals.
    let mut own = vec![None::<Verdict>; n];
    for (i, node) in chain.nodes.iter_mut().enumerate() {
        let exploit_rule = node.hits.iter().any(|h| h.category == Category::Exploit);
        let malware_rule = node.hits.iter().any(|h| h.category == Category::Malware);
        if node.download {
            let kind = node.kind.unwrap_or(FileKind::Other);
            if malware_rule || node.listed {
                own[i] = Some(Verdict::Distribution);
            } else if exploit_rule
                || kind.exploit_carrier(node.content_type.as_deref(), &[])
                || node.content_type.as_deref().is_some_and(exploit_type)
            {
                own[i] = Some(Verdict::Exploit);
                node.evidence.push(format!("exploit carrier ({})", kind.as_str()));
            }
        } else if exploit_rule {
            own[i] = Some(Verdict::Exploit);
        }
    }
    // Executables after a cross-host chain.
    for (i, verdict) in own.iter_mut().enumerate() {
        let node = &chain.nodes[i];
        if verdict.is_none()
            && node.download
            && node.kind.is_some_and(FileKind::executable)
            && path_crosses_hosts(&chain.nodes, i)
        {
            *verdict = Some(Verdict::Distribution);
            chain.nodes[i].evidence.push("executable download at the end of a cross-host chain".into());
        }
    }
    // Which nodes lead to a malicious one (reverse reachability over edges).
    let mut leads = vec![false; n];
    let mut stack: Vec<usize> = (0..n).filter(|&i| own[i].is_some()).collect();
    let mut seen: HashSet<usize> = stack.iter().copied().collect();
    while let Some(t) = stack.pop() {
        for e in chain.edges.iter().filter(|e| e.to == t) {
            leads[e.from] = true;
            if seen.insert(e.from) {
                stack.push(e.from);
            }
        }
    }
    for i in 0..n {
        let node = &mut chain.nodes[i];
        let injected = node.hits.iter().any(|h| h.category == Category::Injection);
        let too_big = node.download && node.truncated;
        node.verdict = if let Some(v) = own[i] {
            v
        } else if node.failure.is_some() && node.status.is_none() {
            Verdict::Error
        } else if leads[i] || injected {
            if i == 0 || node.host == seed_host { Verdict::Entry } else { Verdict::Redirector }
        } else if node.listed {
            Verdict::Redirector
        } else if node.looped || too_big || node.failure.is_some() {
            if too_big {
                node.evidence.push("download larger than the cap".into());
            }
            if node.error.is_none() {
                node.error = Some(if node.looped {
                    "loop"
                } else if too_big {
                    "too-big"
                } else {
                    "other"
                });
            }
            Verdict::Error
        } else {
            Verdict::Clean
        };
    }
}

fn exploit_type(ct: &str) -> bool {
    matches!(
        ct,
        "application/x-shockwave-flash"
            | "application/java-archive"
            | "application/x-java-archive"
            | "application/x-java-applet"
            | "application/x-java-jnlp-file"
            | "application/x-silverlight-app"
    )
}

/// Whether the first-discovery path from the seed to node `i` passes through another host.
fn path_crosses_hosts(nodes: &[Node], i: usize) -> bool {
    let host = &nodes[i].host;
    let mut cur = i;
    while let Some((p, _)) = nodes[cur].via {
        if &nodes[p].host != host {
            return true;
        }
        cur = p;
    }
    false
}
