//! `kizuna crawl` as a process: a loopback "internet" (a small HTTP server routing by Host,
//! reached through the crawler's address overrides), a seed file, and a real hub
//! (`kizuna hub serve` as another process) that is down for the first run and up for the
//! second. Checks exit codes, the printed summary, the spool, the observations on the hub
//! (each exactly once), the known-bad hash read from the hub's indicators API, and the
//! Prometheus metrics file.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use assert_cmd::Command;

const MARKER_EXE: &[u8] = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00This program cannot be run \
    in DOS mode.\r\n(harmless test sample: no code) KIZUNA-TEST-MALWARE-MARKER\x00\x00\x00\x00";
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% invoice 2026-11\n%%EOF";
const HOSTS: &[&str] = &[
    "blog.test.example",
    "tds.test.example",
    "dl.test.example",
    "shop.test.example",
    "clean.test.example",
    "feeds.test.example",
];
/// A URL feed in the layout of URLhaus's `csv_recent` export (commented header, quoted fields, a
/// second URL column that must not be taken), with one unusable row (line 7).
const FEED_CSV: &str = "################################################################\n\
# kizuna test feed (URLhaus csv_recent layout)                 #\n\
################################################################\n\
# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
\"101\",\"2026-11-30 23:59:01\",\"http://blog.test.example/\",\"online\",\"\",\"malware_download\",\"exe\",\"http://feeds.test.example/url/101/\",\"trap\"\n\
\"102\",\"2026-11-30 23:58:40\",\"http://clean.test.example/\",\"online\",\"\",\"malware_download\",\"\",\"http://feeds.test.example/url/102/\",\"user\"\n\
\"103\",\"2026-11-30 23:58:00\",\"javascript:void(0)\",\"offline\",\"\",\"malware_download\",\"\",\"http://feeds.test.example/url/103/\",\"user\"\n";

fn response(host: &str, path: &str) -> (u16, Vec<(&'static str, String)>, Vec<u8>) {
    let html = |s: &str| (200, vec![("Content-Type", "text/html; charset=utf-8".to_owned())], s.as_bytes().to_vec());
    match (host, path) {
        ("blog.test.example", "/") => html(
            "<html><body><h1>diary</h1><p>sunny</p>\
             <iframe src=\"http://tds.test.example/in?c=1\" width=\"0\" height=\"0\" style=\"display:none\"></iframe></body></html>",
        ),
        ("tds.test.example", "/in") => {
            (302, vec![("Location", "http://dl.test.example/setup.exe".to_owned())], Vec::new())
        }
        ("dl.test.example", "/setup.exe") => (
            200,
            vec![
                ("Content-Type", "application/octet-stream".to_owned()),
                ("Content-Disposition", "attachment; filename=\"setup.exe\"".to_owned()),
            ],
            MARKER_EXE.to_vec(),
        ),
        ("shop.test.example", "/") => html("<html><body><a href=\"/files/invoice.pdf\">your invoice</a></body></html>"),
        ("shop.test.example", "/files/invoice.pdf") => {
            (200, vec![("Content-Type", "application/pdf".to_owned())], PDF.to_vec())
        }
        ("clean.test.example", "/") => html("<html><body><p>nothing here</p></body></html>"),
        ("feeds.test.example", "/recent.csv") => {
            (200, vec![("Content-Type", "text/csv".to_owned())], FEED_CSV.as_bytes().to_vec())
        }
        _ => (404, vec![("Content-Type", "text/plain".to_owned())], b"not found".to_vec()),
    }
}

/// A tiny HTTP/1.1 server (one thread per connection, `Connection: close`).
fn start_sites() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            std::thread::spawn(move || serve_one(conn));
        }
    });
    addr
}

fn serve_one(mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(clone) = conn.try_clone() else { return };
    let mut r = BufReader::new(clone);
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let path = path.split('?').next().unwrap_or("/").to_owned();
    let mut host = String::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("host")
        {
            host = v.trim().split(':').next().unwrap_or("").to_ascii_lowercase();
        }
    }
    let (status, headers, body) = response(&host, &path);
    let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = conn.write_all(out.as_bytes());
    let _ = conn.write_all(&body);
}

fn kizuna(data_dir: &Path) -> Command {
    let mut c = Command::cargo_bin("kizuna").expect("binary");
    c.arg("--data-dir")
        .arg(data_dir)
        .env_remove("KIZUNA_CONFIG")
        .env_remove("KIZUNA_CRAWL_CONFIG")
        .env("KIZUNA_LOG", "warn")
        .timeout(Duration::from_secs(60));
    c
}

fn stdout_of(c: &mut Command) -> String {
    let out = c.assert().success();
    String::from_utf8(out.get_output().stdout.clone()).expect("utf-8")
}

struct HubProcess(Child);

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_hub(dir: &Path, addr: SocketAddr) -> HubProcess {
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("kizuna"))
        .arg("--data-dir")
        .arg(dir)
        .args(["hub", "serve", "--listen", &addr.to_string()])
        .env_remove("KIZUNA_CONFIG")
        .env("KIZUNA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kizuna hub serve");
    let mut hub = HubProcess(child);
    for _ in 0..300 {
        if let Ok(mut s) = TcpStream::connect(addr) {
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return hub;
            }
        }
        if let Ok(Some(st)) = hub.0.try_wait() {
            panic!("kizuna hub serve exited: {st}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the hub did not come up on {addr}");
}

/// Writes `root/crawl.toml`: short timeouts, no politeness delay, the repository's YARA rules,
/// every test host pinned to the loopback sites server, and the given extra sections.
fn write_crawl_config(root: &Path, data_dir: &Path, metrics: &Path, sites: SocketAddr, extra: &str) -> PathBuf {
    let yara = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/yara");
    let mut cfg = format!(
        "data_dir = {:?}\n[limits]\nconnect_timeout_ms = 1000\nread_timeout_ms = 1000\ntotal_timeout_ms = 3000\n\
         [rate]\nper_host_rps = 1000.0\nper_host_burst = 100\n[judge]\nyara_dir = {:?}\n{extra}\
         [metrics]\ntextfile = {:?}\n[resolve]\n",
        data_dir.display().to_string(),
        yara.display().to_string(),
        metrics.display().to_string(),
    );
    for h in HOSTS {
        cfg.push_str(&format!("\"{h}\" = \"{sites}\"\n"));
    }
    let path = root.join("crawl.toml");
    std::fs::write(&path, cfg).expect("crawl config");
    path
}

/// Prometheus text → (series with labels → value); checks the format on the way.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut typed = BTreeSet::new();
    let mut out = BTreeMap::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let mut p = rest.split_whitespace();
            typed.insert(p.next().expect("name").to_owned());
            assert_eq!(p.next(), Some("gauge"), "{l}");
            continue;
        }
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line {l:?}"));
        let name = series.split('{').next().expect("name");
        assert!(typed.contains(name), "sample before its TYPE line: {l}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{l}");
        out.insert(series.to_owned(), value.parse::<f64>().unwrap_or_else(|_| panic!("bad value in {l:?}")));
    }
    out
}

fn spool_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "ndjson")).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn crawl_cli_spools_while_the_hub_is_down_and_delivers_once_it_is_up() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let sites = start_sites();
    let hub_dir = root.join("hub");
    std::fs::create_dir_all(&hub_dir).expect("hub dir");
    let sensor = "kz_crawl_cli_test_sensor_0123456789abcdef0123456789";
    let analyst = "kz_crawl_cli_test_analyst_0123456789abcdef012345678";
    std::fs::write(
        hub_dir.join("kizuna.toml"),
        format!(
            "[[hub.sensors]]\nname = \"crawler-cli\"\ntoken_sha256 = \"{}\"\n\n[[hub.analysts]]\nname = \"alice\"\ntoken_sha256 = \"{}\"\n",
            kizuna_hub::tokens::hash_hex(sensor),
            kizuna_hub::tokens::hash_hex(analyst)
        ),
    )
    .expect("hub config");
    kizuna(&hub_dir).args(["member", "add", "isp-loop", "--prefix", "127.0.0.0/8"]).assert().success();
    let reader = stdout_of(kizuna(&hub_dir).args(["member", "token", "issue", "isp-loop", "--label", "crawler"]));
    // The hub knows the shop's "invoice" as malware (an analyst added its hash).
    let pdf_sha256 = kizuna_crawl::judge::sha256_hex(PDF);
    kizuna(&hub_dir)
        .args(["indicator", "add", "--kind", "sha256", "--value", &pdf_sha256, "--category", "malware-distribution"])
        .args(["--reason", "invoice dropper", "--analyst", "alice"])
        .assert()
        .success();

    let hub_addr = TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr");
    let crawl_dir = root.join("crawl");
    std::fs::write(root.join("sensor.token"), format!("{sensor}\n")).expect("token");
    std::fs::write(root.join("reader.token"), reader.trim()).expect("token");
    let metrics = root.join("textfile/kizuna_crawl.prom");
    let hub = format!(
        "[hub]\nurl = \"http://{hub_addr}\"\nsensor_token_file = {:?}\nindicator_token_file = {:?}\n\
         retry_initial_ms = 50\nretry_max_ms = 100\nretry_for_secs = 1\n",
        root.join("sensor.token").display().to_string(),
        root.join("reader.token").display().to_string(),
    );
    let cfg_path = write_crawl_config(root, &crawl_dir, &metrics, sites, &hub);
    let seeds = root.join("seeds.txt");
    std::fs::write(
        &seeds,
        "# seeds from the spam trap\nhttp://blog.test.example/\nftp://not-http.example/\n\nhttp://shop.test.example/\nhttp://clean.test.example/  # control\n",
    )
    .expect("seeds");
    let crawl = |extra: &[&str]| {
        let mut c = kizuna(root);
        c.arg("crawl").arg("--crawl-config").arg(&cfg_path).arg("--seeds").arg(&seeds).arg("--no-notify").args(extra);
        c
    };

    // Run 1: the hub is down. The crawl completes, findings wait in the spool, exit 75.
    let out = crawl(&[]).output().expect("run 1");
    let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(75), "stdout:\n{so}\nstderr:\n{se}");
    assert!(se.contains("not-http.example") && se.contains("skipped"), "{se}");
    assert!(se.contains("known-bad indicators not loaded"), "{se}");
    assert!(so.contains("crawled 3 seeds, 6 pages fetched"), "{so}");
    assert!(so.contains("hub unreachable: 1 batches (3 observations"), "{so}");
    let line = |so: &str, v: &str| -> u64 {
        so.lines()
            .find_map(|l| l.trim().strip_prefix(v).map(|n| n.trim().parse().expect("count")))
            .unwrap_or_else(|| panic!("no {v} line in {so}"))
    };
    assert_eq!((line(&so, "entry"), line(&so, "redirector"), line(&so, "distribution")), (1, 1, 1), "{so}");
    assert_eq!(line(&so, "clean"), 3, "without the hub's hash list the shop looks clean: {so}");
    let spooled = spool_files(&crawl_dir.join("spool"));
    assert_eq!(spooled.len(), 1, "{spooled:?}");
    assert_eq!(std::fs::read_to_string(&spooled[0]).expect("spool").lines().count(), 3);
    let m = parse_metrics(&std::fs::read_to_string(&metrics).expect("metrics file"));
    assert_eq!(m["kizuna_crawl_last_run_seeds"], 3.0);
    assert_eq!(m["kizuna_crawl_last_run_bad_seeds"], 1.0);
    assert_eq!(m["kizuna_crawl_last_run_pages_fetched"], 6.0);
    assert!(m["kizuna_crawl_last_run_bytes_fetched"] > 200.0, "{m:?}");
    assert_eq!(m["kizuna_crawl_last_run_verdicts{verdict=\"distribution\"}"], 1.0);
    assert_eq!(m["kizuna_crawl_last_run_verdicts{verdict=\"clean\"}"], 3.0);
    assert_eq!(m["kizuna_crawl_last_run_observations"], 3.0);
    assert_eq!(m["kizuna_crawl_last_run_hub_batches{result=\"spooled\"}"], 1.0);
    assert_eq!(m["kizuna_crawl_last_run_hub_batches{result=\"sent\"}"], 0.0);
    assert!(m["kizuna_crawl_last_run_hub_failed_attempts"] >= 2.0, "retried with backoff: {m:?}");
    assert_eq!(m["kizuna_crawl_spool_pending_observations"], 3.0);
    assert_eq!(m["kizuna_crawl_last_run_hub_indicators"], -1.0);
    assert!(m["kizuna_crawl_last_run_duration_seconds"] > 0.0);
    assert!(!m.contains_key("kizuna_crawl_last_success_timestamp_seconds"), "nothing delivered yet");

    // Run 2: the hub is up. The leftover batch goes first, then this run's; the hub's hash list
    // turns the shop's invoice into a distribution node.
    let _hub = start_hub(&hub_dir, hub_addr);
    let out = crawl(&["--json"]).output().expect("run 2");
    let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "stdout:\n{so}\nstderr:\n{se}");
    assert!(se.contains("1 spooled batches (3 observations) from earlier runs: resending"), "{se}");
    // The analyst's hash, plus what the hub derived from run 1's findings (URLs, hashes).
    let known: u64 = se
        .lines()
        .find_map(|l| {
            l.strip_prefix("kizuna crawl: ")?.strip_suffix(&format!(" known-bad indicators from http://{hub_addr}"))
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no indicator count in {se}"));
    assert!(known > 1, "{se}");
    let s: serde_json::Value = serde_json::from_str(so.trim()).expect("json summary");
    assert_eq!(s["verdicts"]["distribution"], 2, "{s}");
    assert_eq!(s["verdicts"]["entry"], 2, "{s}");
    assert_eq!(s["observations"], 5, "{s}");
    assert_eq!(s["hub_indicators"], known, "{s}");
    assert_eq!(s["sent_batches"], 2, "{s}");
    assert_eq!(s["sent_stored"], 8, "3 from run 1 + 5 from run 2: {s}");
    assert_eq!(s["sent_duplicates"], 0, "{s}");
    assert_eq!(s["spooled_batches"], 0, "{s}");
    assert!(spool_files(&crawl_dir.join("spool")).is_empty());
    let m = parse_metrics(&std::fs::read_to_string(&metrics).expect("metrics file"));
    assert_eq!(m["kizuna_crawl_last_run_hub_observations{result=\"stored\"}"], 8.0);
    assert_eq!(m["kizuna_crawl_last_run_hub_batches{result=\"sent\"}"], 2.0);
    assert_eq!(m["kizuna_crawl_spool_pending_batches"], 0.0);
    assert_eq!(m["kizuna_crawl_last_run_hub_indicators"], known as f64);
    assert!(m["kizuna_crawl_last_success_timestamp_seconds"] > 1.7e9);

    // On the hub: every observation exactly once, labelled.
    let report = stdout_of(kizuna(&hub_dir).args(["report", "--member", "isp-loop"]));
    let events: Vec<serde_json::Value> = report.lines().map(|l| serde_json::from_str(l).expect("event json")).collect();
    assert_eq!(events.len(), 8, "{report}");
    let keys: BTreeSet<(String, String, String)> = events
        .iter()
        .map(|e| {
            let g = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (g("extra.crawl.chain_id"), g("extra.crawl.role"), g("source.url"))
        })
        .collect();
    assert_eq!(keys.len(), 8, "no observation twice");
    let invoice = events
        .iter()
        .find(|e| e["source.url"] == "http://shop.test.example/files/invoice.pdf")
        .expect("the invoice reached the hub");
    assert_eq!(invoice["extra.crawl.role"], "distribution");
    assert_eq!(invoice["malware.hash.sha256"], pdf_sha256.as_str());
    assert_eq!(invoice["tlp"], "AMBER");
    assert_eq!(invoice["extra.legal_basis"], "legitimate-business");
    assert_eq!(invoice["feed.provider"], "crawler-cli");

    // Nothing left to send.
    let out = stdout_of(kizuna(root).args(["crawl", "send", "--crawl-config"]).arg(&cfg_path));
    assert!(out.contains("sent 0 batches") && out.contains("0 batches (0 observations) still spooled"), "{out}");
}

#[test]
fn crawl_cli_reads_seed_feeds_and_crawls_only_what_is_new() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let sites = start_sites();
    let crawl_dir = root.join("crawl");
    let metrics = root.join("kizuna_crawl.prom");
    let cfg_path = write_crawl_config(
        root,
        &crawl_dir,
        &metrics,
        sites,
        "[seeds]\nfeeds = [\"http://feeds.test.example/recent.csv\"]\n",
    );
    let obs = root.join("obs.jsonl");
    let crawl = |extra: &[&str]| {
        let mut c = kizuna(root);
        c.arg("crawl").arg("--crawl-config").arg(&cfg_path).arg("--out").arg(&obs).args(["--no-notify", "--json"]);
        c.args(extra);
        c.output().expect("kizuna crawl")
    };
    let summary = |out: &std::process::Output| -> (serde_json::Value, String) {
        let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr).into_owned());
        assert!(out.status.success(), "stdout:\n{so}\nstderr:\n{se}");
        (serde_json::from_str(so.trim()).expect("json summary"), se)
    };

    // Run 1: the configured feed plus one that is gone. The feed's two URLs are crawled, its
    // bad row is rejected with its line and kept, the 404 is reported and the run goes on.
    let out = crawl(&["--seeds-feed", "http://feeds.test.example/gone.csv"]);
    let (s, se) = summary(&out);
    assert_eq!(
        (s["seeds"].as_u64(), s["feed_seeds"].as_u64(), s["feed_seeds_recent"].as_u64()),
        (Some(2), Some(2), Some(0)),
        "{s}"
    );
    assert_eq!(
        (s["feeds_read"].as_u64(), s["feeds_failed"].as_u64(), s["bad_seeds"].as_u64()),
        (Some(1), Some(1), Some(1)),
        "{s}"
    );
    assert_eq!(s["verdicts"]["entry"], 1, "the blog's drive-by chain: {s}");
    assert_eq!(s["verdicts"]["distribution"], 1, "{s}");
    assert!(se.contains("seed feed http://feeds.test.example/gone.csv: HTTP status 404 (skipped)"), "{se}");
    assert!(se.contains("http://feeds.test.example/recent.csv:7: not an http(s) URL (scheme \"javascript\")"), "{se}");
    let rejected = std::fs::read_to_string(crawl_dir.join("rejected-seeds.jsonl")).expect("rejected seeds kept");
    let r: serde_json::Value = serde_json::from_str(rejected.lines().next().expect("one line")).expect("json");
    assert_eq!(r["origin"], "http://feeds.test.example/recent.csv");
    assert_eq!(r["line"], 7);
    assert!(r["text"].as_str().is_some_and(|t| t.contains("javascript:void(0)")), "{r}");
    let urls: BTreeSet<String> = std::fs::read_to_string(&obs)
        .expect("observations")
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("event")["source.url"].as_str().unwrap_or("").to_owned()
        })
        .collect();
    assert!(
        urls.contains("http://blog.test.example/") && urls.contains("http://dl.test.example/setup.exe"),
        "{urls:?}"
    );
    assert!(!urls.iter().any(|u| u.contains("feeds.test.example")), "the feed's own links are not seeds: {urls:?}");
    let m = parse_metrics(&std::fs::read_to_string(&metrics).expect("metrics"));
    assert_eq!(m["kizuna_crawl_last_run_seed_feeds{result=\"read\"}"], 1.0);
    assert_eq!(m["kizuna_crawl_last_run_seed_feeds{result=\"failed\"}"], 1.0);
    assert_eq!(m["kizuna_crawl_last_run_feed_seeds{result=\"crawled\"}"], 2.0);

    // Run 2, an hour's cron later: the feed lists the same URLs; nothing is crawled again.
    let (s, se) = summary(&crawl(&[]));
    assert_eq!(
        (s["seeds"].as_u64(), s["feed_seeds_recent"].as_u64(), s["pages"].as_u64()),
        (Some(0), Some(2), Some(0)),
        "{s}\n{se}"
    );
    let m = parse_metrics(&std::fs::read_to_string(&metrics).expect("metrics"));
    assert_eq!(m["kizuna_crawl_last_run_feed_seeds{result=\"recent\"}"], 2.0);

    // With a zero window every listed URL is due again.
    let (s, _) = summary(&crawl(&["--recrawl-after-hours", "0"]));
    assert_eq!(s["feed_seeds"].as_u64(), Some(2), "{s}");

    // No usable seed at all: an error that says so, not an empty success.
    std::fs::write(
        root.join("only-gone.toml"),
        std::fs::read_to_string(&cfg_path)
            .expect("cfg")
            .replace("feeds = [\"http://feeds.test.example/recent.csv\"]", "feeds = []"),
    )
    .expect("cfg");
    let out = kizuna(root)
        .args(["crawl", "--seeds-feed", "http://feeds.test.example/gone.csv", "--no-notify", "--crawl-config"])
        .arg(root.join("only-gone.toml"))
        .output()
        .expect("run");
    let se = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{se}");
    assert!(se.contains("no seed feed could be read"), "{se}");
}
