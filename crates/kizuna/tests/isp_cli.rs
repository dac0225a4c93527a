//! `kizuna isp serve` as a separate process, end to end, against real peers: a `kizuna hub
//! serve` process (own data directory, member and sensor tokens made with the CLI), FreeRADIUS
//! detail files in a directory the agent tails, aiosmtpd with STARTTLS and AUTH, and the
//! countermeasure page served by the agent.
//!
//! - `serve_pulls_resolves_notifies_and_pushes_counts`: observations pushed to the hub's ingest
//!   route are pulled, resolved from the session logs, turned into cases and notices that arrive
//!   at the MTA (the link in the mail opens the page), and the daily counts reach the hub's
//!   `/api/v1/stats`. A RADIUS Start appended to a log while serve runs is picked up.
//! - `sigkill_mid_pull_and_hub_restart_lose_nothing_and_double_nothing`: the agent is killed
//!   with SIGKILL while it pulls pages, restarted, then the hub is killed and restarted while
//!   the agent runs; every observation is processed exactly once (ids, counters, cases,
//!   notices, mails) and the audit chain verifies.

#[path = "../../kizuna-isp/tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kizuna_model::Timestamp;
use support::{Detail, Mta, TestPki, event, http, make_pki};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kizuna"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Runs `kizuna ARGS` to completion; returns stdout, panics with stderr on failure.
fn run(args: &[&str]) -> String {
    let out = Command::new(bin()).args(args).env("KIZUNA_LOG", "warn").output().expect("run kizuna");
    assert!(
        out.status.success(),
        "kizuna {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A child process, killed when dropped; its stderr goes to a log file shown on failure.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(args: &[String], log: &Path) -> Proc {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        let child = Command::new(bin())
            .args(args)
            .env("KIZUNA_LOG", "info")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("log"))
            .stderr(f)
            .spawn()
            .expect("spawn kizuna");
        Proc { child, log: log.to_path_buf() }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn sigkill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        let ok = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("kill");
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(s) = self.child.try_wait().expect("wait") {
            panic!("process exited with {s}:\n{}", self.log_text());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `f` gives `Some`, or fails with `what` after `secs`.
async fn until<T>(secs: u64, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A hub run with `kizuna hub serve` from its own data directory.
struct HubProc {
    dir: PathBuf,
    port: u16,
    member_token: String,
    sensor_token: String,
    proc: Option<Proc>,
}

impl HubProc {
    /// Member `isp-a` (192.0.2.0/24) with a token, a sensor `honeypot-1`, then `hub serve`.
    async fn setup(dir: &Path) -> HubProc {
        std::fs::create_dir_all(dir).expect("hub dir");
        let d = dir.to_str().expect("utf-8 path");
        let sensor = run(&["--data-dir", d, "sensor", "token", "honeypot-1"]);
        let secret = sensor.lines().nth(1).expect("token line").trim().to_owned();
        let sha = sensor
            .lines()
            .find_map(|l| l.strip_prefix("token_sha256 = \""))
            .and_then(|l| l.strip_suffix('"'))
            .expect("token_sha256 line")
            .to_owned();
        std::fs::write(
            dir.join("kizuna.toml"),
            format!(
                "[hub]\nreload_interval_secs = 1\n\n[[hub.sensors]]\nname = \"honeypot-1\"\ntoken_sha256 = \"{sha}\"\n"
            ),
        )
        .expect("hub config");
        run(&["--data-dir", d, "member", "add", "isp-a", "--display-name", "ISP A", "--prefix", "192.0.2.0/24"]);
        let member_token =
            run(&["--data-dir", d, "member", "token", "issue", "isp-a", "--label", "agent"]).trim().to_owned();
        let mut h =
            HubProc { dir: dir.to_path_buf(), port: free_port(), member_token, sensor_token: secret, proc: None };
        h.start().await;
        h
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) {
        let args: Vec<String> = [
            "--data-dir",
            self.dir.to_str().expect("path"),
            "hub",
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", self.port),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        self.proc = Some(Proc::spawn(&args, &self.dir.join("hub.log")));
        let url = format!("{}/healthz", self.base());
        let log = self.dir.join("hub.log");
        until(30, "the hub's /healthz", async || match http().get(&url).send().await {
            Ok(r) if r.status().is_success() => Some(()),
            _ => None,
        })
        .await;
        let _ = log;
    }

    fn kill(&mut self) {
        if let Some(p) = self.proc.take() {
            p.sigkill();
        }
    }

    async fn ingest(&self, lines: &[String]) -> serde_json::Value {
        let r = http()
            .post(format!("{}/api/v1/ingest?format=intelmq&name=sensor.jsonl", self.base()))
            .bearer_auth(&self.sensor_token)
            .body(lines.join("\n"))
            .send()
            .await
            .expect("ingest");
        let status = r.status();
        let v: serde_json::Value = r.json().await.expect("json");
        assert_eq!(status, 200, "ingest: {v}");
        v
    }

    /// The member's observation ids as the hub serves them (from the start).
    async fn member_ids(&self) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        let mut cursor = String::new();
        loop {
            let v: serde_json::Value = http()
                .get(format!("{}/api/v1/observations?cursor={cursor}&limit=1000", self.base()))
                .bearer_auth(&self.member_token)
                .send()
                .await
                .expect("observations")
                .json()
                .await
                .expect("json");
            let items = v["observations"].as_array().expect("observations");
            ids.extend(items.iter().map(|o| o["id"].as_str().expect("id").to_owned()));
            cursor = v["next_cursor"].as_str().expect("cursor").to_owned();
            if !v["more"].as_bool().unwrap_or(false) || items.is_empty() {
                return ids;
            }
        }
    }

    async fn stats(&self) -> serde_json::Value {
        http()
            .get(format!("{}/api/v1/stats", self.base()))
            .bearer_auth(&self.member_token)
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json")
    }
}

/// The agent's files: config, token, subscriber directory, session logs.
struct AgentSetup {
    config: PathBuf,
    data: PathBuf,
    radacct: PathBuf,
    page_port: u16,
}

fn agent_setup(d: &Path, hub: &HubProc, mta: &Mta, pki: &TestPki, page_limit: usize, subs: &str) -> AgentSetup {
    let token = d.join("member-token");
    std::fs::write(&token, format!("{}\n", hub.member_token)).expect("token");
    let pw = d.join("smtp-password");
    std::fs::write(&pw, format!("{}\n", mta.password)).expect("pw");
    let page_port = free_port();
    let data = d.join("agent");
    let radacct = d.join("radacct");
    std::fs::create_dir_all(radacct.join("192.0.2.254")).expect("radacct");
    let config = d.join("kizuna-isp.toml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = "{data}"

[hub]
url = "{hub}"
token_file = "{token}"
page_limit = {page_limit}
poll_interval_secs = 1

[sessions]
poll_interval_secs = 1
[[sessions.dirs]]
path = "{radacct}"
kind = "radius"

[smtp]
host = "127.0.0.1"
port = {port}
starttls = true
user = "{user}"
password_file = "{pw}"
from = "ISP A Abuse Desk <abuse@isp-a.example>"
ca_file = "{ca}"
timeout_secs = 10

[page]
listen = "127.0.0.1:{page_port}"
public_base_url = "http://127.0.0.1:{page_port}"
isp_name = "ISP A"
support_contact = "0120-000-000"
"#,
            data = data.display(),
            hub = hub.base(),
            token = token.display(),
            radacct = radacct.display(),
            port = mta.port,
            user = mta.user,
            pw = pw.display(),
            ca = pki.ca_pem.display(),
        ),
    )
    .expect("agent config");
    let csv = d.join("subscribers.csv");
    std::fs::write(&csv, subs).expect("csv");
    let cfg = config.to_str().expect("path");
    let out = run(&["isp", "--agent-config", cfg, "subscribers", "import", csv.to_str().expect("path")]);
    assert!(out.contains("imported"), "{out}");
    AgentSetup { config, data, radacct, page_port }
}

fn serve(a: &AgentSetup, log: &Path) -> Proc {
    let args: Vec<String> =
        ["isp", "--agent-config", a.config.to_str().expect("path"), "serve", "--stats-every-secs", "1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    Proc::spawn(&args, log)
}

fn rfc3339(secs: i64) -> String {
    Timestamp::from_secs(secs).to_rfc3339()
}

fn today() -> String {
    Timestamp::now().to_datetime().format("%Y-%m-%d").to_string()
}

/// Read-only view of the agent's database.
fn agent_db(a: &AgentSetup) -> Option<rusqlite::Connection> {
    let p = a.data.join("kizuna-isp.sqlite");
    if !p.exists() {
        return None;
    }
    let c = rusqlite::Connection::open_with_flags(&p, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    c.busy_timeout(Duration::from_secs(5)).ok()?;
    Some(c)
}

fn q(c: &rusqlite::Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap_or(-1)
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_pulls_resolves_notifies_and_pushes_counts() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let pki = make_pki(d);
    let mta = Mta::start(d, &pki);
    let hub = HubProc::setup(&d.join("hub")).await;
    let a = agent_setup(
        d,
        &hub,
        &mta,
        &pki,
        2,
        "subscriber_id,keys,name,email,postal_address,language\n\
         S-1,user-1@isp-a,山田 太郎,taro@example.jp,,ja\n\
         S-2,user-2@isp-a,Jane Smith,jane@example.jp,,en\n\
         S-3,user-3@isp-a,Jan Kowalski,jan@example.jp,,en\n",
    );
    let now = Timestamp::now().as_secs();
    let mut detail = Detail::new();
    detail.record("Start", now - 7200, "user-1@isp-a", "sess-1", "192.0.2.10", "192.0.2.254").record(
        "Start",
        now - 7100,
        "user-2@isp-a",
        "sess-2",
        "192.0.2.20",
        "192.0.2.254",
    );
    let detail_path = a.radacct.join("192.0.2.254/detail-1");
    detail.write(&detail_path);

    // Observations waiting at the hub before the agent starts.
    let s = hub
        .ingest(&[
            event("192.0.2.10", 40001, &rfc3339(now - 3600), "mirai", 1),
            event("192.0.2.10", 40002, &rfc3339(now - 3500), "mirai", 2),
            event("192.0.2.20", 40003, &rfc3339(now - 3400), "mirai", 3),
            event("192.0.2.99", 40004, &rfc3339(now - 3300), "mirai", 4),
        ])
        .await;
    assert_eq!(s["stored"], 4, "{s}");

    let mut agent = serve(&a, &d.join("agent.log"));
    let mails = until(60, "two notices at the MTA", async || {
        agent.assert_running();
        let m = mta.messages();
        (m.len() >= 2).then_some(m)
    })
    .await;
    let to: BTreeSet<String> = mails.iter().map(|(_, m)| m["rcpt_tos"][0].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(to, BTreeSet::from(["taro@example.jp".to_owned(), "jane@example.jp".to_owned()]));
    let (raw, meta) = mails.iter().find(|(_, m)| m["rcpt_tos"][0] == "taro@example.jp").expect("mail to S-1");
    assert_eq!(meta["tls"], true, "{meta}");
    assert_eq!(meta["auth_user"], mta.user.as_str(), "{meta}");
    let msg = mail_parser::MessageParser::default().parse(raw).expect("parse mail");
    let text = msg.body_text(0).expect("text part").into_owned();
    assert!(text.contains("192.0.2.10"), "the notice says which address was seen: {text}");
    assert!(text.contains("mirai"), "and what: {text}");
    // The per-notice link opens the countermeasure page served by this process.
    let base = format!("http://127.0.0.1:{}", a.page_port);
    let i = text.find(&base).unwrap_or_else(|| panic!("no link to {base} in {text}"));
    let link = text[i..].split_whitespace().next().expect("link").to_owned();
    let page = http().get(&link).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("ISP A"), "{html}");

    // The daily counts reach the hub: 4 observed, 3 resolved, 1 with no session, 2 notified.
    let day = today();
    let threat = until(30, "the agent's counts at the hub", async || {
        let v = hub.stats().await;
        let d = v["days"].as_array()?.iter().find(|d| d["day"] == day.as_str())?.clone();
        let t = d["threats"].as_array()?.iter().find(|t| t["threat"] == "infected-system/mirai")?.clone();
        (t["notified"] == 2).then_some((d, t))
    })
    .await;
    let (d0, t0) = threat;
    assert_eq!(t0["observed"], 4, "{t0}");
    assert_eq!(t0["resolved"], 3, "{t0}");
    assert_eq!(t0["infected"], 2, "{t0}");
    assert_eq!(t0["unresolved"]["no-session"], 1, "{t0}");
    assert_eq!(d0["subscribers"], 3, "{d0}");

    // A session that starts while serve runs: appended to the log, picked up by the tailer.
    let metrics_url = format!("{base}/metrics");
    let sessions = async || {
        let t = http().get(&metrics_url).send().await.ok()?.text().await.ok()?;
        metric(&t, "kizuna_isp_sessions_indexed")
    };
    assert_eq!(sessions().await, Some(2.0));
    let mut more = Detail::new();
    more.record("Start", now - 1800, "user-3@isp-a", "sess-3", "192.0.2.30", "192.0.2.254");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&detail_path)
        .expect("open detail")
        .write_all(more.0.as_bytes())
        .expect("append");
    until(30, "the appended session in the index", async || (sessions().await == Some(3.0)).then_some(())).await;
    hub.ingest(&[event("192.0.2.30", 40005, &rfc3339(now - 600), "mirai", 5)]).await;
    let mails = until(30, "the third notice", async || {
        let m = mta.messages();
        (m.len() >= 3).then_some(m)
    })
    .await;
    assert_eq!(mails.len(), 3, "one notice per subscriber, none repeated");
    assert_eq!(mails[2].1["rcpt_tos"][0], "jan@example.jp");
    until(30, "the new counts at the hub", async || {
        let v = hub.stats().await;
        let d = v["days"].as_array()?.iter().find(|d| d["day"] == day.as_str())?.clone();
        let t = d["threats"].as_array()?.iter().find(|t| t["threat"] == "infected-system/mirai")?.clone();
        (t["observed"] == 5 && t["resolved"] == 4 && t["notified"] == 3).then_some(())
    })
    .await;

    // The CLI sees what serve did; SIGTERM stops serve cleanly; the audit chain verifies.
    let cfg = a.config.to_str().expect("path");
    let cases = run(&["isp", "--agent-config", cfg, "cases", "list", "--json"]);
    assert_eq!(cases.lines().count(), 3, "{cases}");
    let status = agent.terminate();
    assert!(status.success(), "serve exit {status}");
    assert!(run(&["isp", "--agent-config", cfg, "audit-verify"]).contains("intact"));
}

/// `n` observations over `subs` subscribers (192.0.2.{1..}), times spread over the last hours.
fn batch(from: u32, n: u32, subs: u32, now: i64) -> Vec<String> {
    (from..from + n)
        .map(|i| {
            let ip = format!("192.0.2.{}", 1 + i % subs);
            event(&ip, 30000 + (i % 20000) as u16, &rfc3339(now - 3 * 3600 + i64::from(i)), "mirai", i)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_pull_and_hub_restart_lose_nothing_and_double_nothing() {
    const SUBS: u32 = 40;
    const FIRST: u32 = 600;
    const SECOND: u32 = 200;
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let pki = make_pki(d);
    let mta = Mta::start(d, &pki);
    let mut hub = HubProc::setup(&d.join("hub")).await;
    let mut csv = String::from("subscriber_id,keys,name,email,postal_address,language\n");
    for i in 1..=SUBS {
        csv.push_str(&format!("S-{i},user-{i}@isp-a,Subscriber {i},s{i}@example.jp,,ja\n"));
    }
    let a = agent_setup(d, &hub, &mta, &pki, 5, &csv);
    let now = Timestamp::now().as_secs();
    let mut detail = Detail::new();
    for i in 1..=SUBS {
        detail.record(
            "Start",
            now - 86_400,
            &format!("user-{i}@isp-a"),
            &format!("s{i}"),
            &format!("192.0.2.{i}"),
            "192.0.2.254",
        );
    }
    detail.write(&a.radacct.join("192.0.2.254/detail-1"));
    let s = hub.ingest(&batch(0, FIRST, SUBS, now)).await;
    assert_eq!(s["stored"], u64::from(FIRST), "{s}");

    // SIGKILL while pages are being applied (120 pages of 5).
    let mut agent = serve(&a, &d.join("agent-1.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        agent.assert_running();
        if agent_db(&a).is_some_and(|c| q(&c, "SELECT count(*) FROM observations") > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "the agent applied no page:\n{}", agent.log_text());
        std::thread::sleep(Duration::from_millis(3));
    }
    agent.sigkill();
    let killed_at = agent_db(&a).map(|c| q(&c, "SELECT count(*) FROM observations")).unwrap_or(-1);
    assert!(killed_at > 0 && killed_at < i64::from(FIRST), "the kill must land mid-pull (had {killed_at} of {FIRST})");

    // Restart: it goes on from its committed cursor.
    let mut agent = serve(&a, &d.join("agent-2.log"));
    until(60, "the first batch applied", async || {
        agent.assert_running();
        let c = agent_db(&a)?;
        (q(&c, "SELECT count(*) FROM observations") == i64::from(FIRST)).then_some(())
    })
    .await;

    // The hub dies (SIGKILL) and comes back on the same port; sensors send more meanwhile.
    hub.kill();
    let metrics_url = format!("http://127.0.0.1:{}/metrics", a.page_port);
    let pull_errors = async || {
        let t = http().get(&metrics_url).send().await.ok()?.text().await.ok()?;
        metric(&t, "kizuna_isp_pull_errors_total")
    };
    until(60, "a pull failing while the hub is down", async || {
        (pull_errors().await.unwrap_or(0.0) >= 1.0).then_some(())
    })
    .await;
    hub.start().await;
    let s = hub.ingest(&batch(FIRST, SECOND, SUBS, now)).await;
    assert_eq!(s["stored"], u64::from(SECOND), "{s}");
    let total = i64::from(FIRST + SECOND);
    until(60, "every observation and every notice", async || {
        agent.assert_running();
        let c = agent_db(&a)?;
        let n = q(&c, "SELECT count(*) FROM observations");
        let sent = q(&c, "SELECT count(*) FROM notices WHERE status = 'sent'");
        (n == total && sent == i64::from(SUBS) && mta.messages().len() >= SUBS as usize).then_some(())
    })
    .await;
    // Counts at the hub too.
    until(30, "the counts at the hub", async || {
        let v = hub.stats().await;
        let observed: u64 = v["totals"].as_array()?.iter().filter_map(|t| t["observed"].as_u64()).sum();
        (observed == total as u64).then_some(())
    })
    .await;
    assert_eq!(agent.terminate().code(), Some(0));

    // Exactly once: the agent holds each of the hub's observations once, counted once.
    let c = agent_db(&a).expect("db");
    let mut st = c.prepare("SELECT id FROM observations").expect("stmt");
    let got: Vec<String> = st.query_map([], |r| r.get(0)).expect("ids").map(|r| r.expect("id")).collect();
    let want = hub.member_ids().await;
    assert_eq!(want.len(), total as usize);
    assert_eq!(got.len(), want.len(), "no observation doubled");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want, "no observation lost");
    let observed = q(&c, "SELECT coalesce(sum(n), 0) FROM daily WHERE name = 'observed'");
    assert_eq!(observed, total, "each observation counted once");
    // One case per subscriber and threat, with every hit; one first notice per case; one mail each.
    assert_eq!(q(&c, "SELECT count(*) FROM cases"), i64::from(SUBS));
    assert_eq!(q(&c, "SELECT sum(hits) FROM cases"), total);
    assert_eq!(q(&c, "SELECT count(*) FROM notices"), i64::from(SUBS));
    assert_eq!(q(&c, "SELECT count(DISTINCT case_id) FROM notices WHERE kind = 'first'"), i64::from(SUBS));
    let mut per_rcpt: BTreeMap<String, usize> = BTreeMap::new();
    for (_, m) in mta.messages() {
        *per_rcpt.entry(m["rcpt_tos"][0].as_str().unwrap_or("").to_owned()).or_default() += 1;
    }
    assert_eq!(per_rcpt.len(), SUBS as usize);
    assert!(per_rcpt.values().all(|&n| n == 1), "a mail sent twice: {per_rcpt:?}");
    drop(st);
    drop(c);
    let cfg = a.config.to_str().expect("path");
    assert!(run(&["isp", "--agent-config", cfg, "audit-verify"]).contains("intact"));
}
