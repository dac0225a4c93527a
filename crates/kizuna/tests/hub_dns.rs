//! `kizuna hub serve` with a `[dns]` section runs the RPZ primary in the same process over the
//! same store: an indicator added through the hub's analyst API moves the zone serial and is
//! served (checked with BIND's `dig`: SOA, TSIG-signed AXFR and query); the hub's `/metrics`
//! carries the primary's metrics (serial, transfers by member and kind, NOTIFY sent / acked /
//! failed, TSIG failures, last change age); SIGINT stops both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DIG: &str = "/usr/bin/dig";
const ZONE: &str = "rpz.isp-a.kizuna.example";
const KEY: &str = "isp-a-xfr";
const SECRET: &str = "c2VjcmV0LWtleS1mb3ItaXNwLWEteGZyLXRlc3RzLTAwMDE=";
const WRONG: &str = "d3Jvbmcta2V5LWZvci1pc3AtYS14ZnItdGVzdHMtMDAwMg==";

fn free_port() -> u16 {
    for _ in 0..100 {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no free port");
}

fn kizuna(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kizuna"));
    c.arg("--data-dir").arg(dir).env_remove("KIZUNA_CONFIG").env_remove("KIZUNA_DNS_CONFIG");
    c
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn dig(port: u16, args: &[&str]) -> String {
    let o = Command::new(DIG)
        .args(["@127.0.0.1", "-p", &port.to_string(), "+time=1", "+tries=1"])
        .args(args)
        .output()
        .expect("dig (bind9-dnsutils; scripts/setup-test-deps.sh)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn serial(port: u16) -> Option<u32> {
    dig(port, &["+short", ZONE, "SOA"]).split_whitespace().nth(2).and_then(|s| s.parse().ok())
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The value of the first sample of `name` whose line contains every `labels` fragment.
fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| labels.iter().all(|f| l.contains(f)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A secondary stand-in that acknowledges every NOTIFY (the RFC 1996 answer: the request with
/// QR set and no error); counts what it acknowledged.
fn notify_acker() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = n.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((len, from)) = sock.recv_from(&mut buf) {
            // header only + question, no TSIG: opcode NOTIFY (4)
            if len < 12 || (buf[2] >> 3) & 0x0f != 4 {
                continue;
            }
            let mut reply = buf[..len].to_vec();
            reply[2] |= 0x80; // QR
            reply[3] &= 0xf0; // NOERROR
            reply[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]); // no answer/authority/additional
            let qend = question_end(&reply).unwrap_or(len);
            reply.truncate(qend);
            let _ = sock.send_to(&reply, from);
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (port, n)
}

fn question_end(m: &[u8]) -> Option<usize> {
    let mut i = 12;
    while *m.get(i)? != 0 {
        i += usize::from(m[i]) + 1;
    }
    Some(i + 5)
}

#[test]
fn hub_serve_runs_the_dns_primary_with_metrics_and_stops_it() {
    assert!(Path::new(DIG).exists(), "{DIG} missing: run scripts/setup-test-deps.sh (bind9-dnsutils)");
    let dir = tempfile::tempdir().unwrap();
    let out = kizuna(dir.path()).args(["sensor", "token", "alice"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let token = text.lines().nth(1).unwrap().trim().to_owned();
    let hash = text.lines().find_map(|l| l.strip_prefix("token_sha256 = ")).unwrap().trim_matches('"').to_owned();
    let (hport, dport) = (free_port(), free_port());
    let dead = free_port(); // nothing listens: NOTIFY there fails
    let (acker, acked) = notify_acker();
    let cfg = dir.path().join("kizuna.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[hub]
listen = "127.0.0.1:{hport}"
[[hub.analysts]]
name = "alice"
token_sha256 = "{hash}"

[dns]
listen = "127.0.0.1:{dport}"
# Far longer than the test waits: the change must arrive by the hub waking the primary.
poll_interval_ms = 10000
notify = {{ first_retry_ms = 100, max_retry_ms = 400 }}
[[dns.keys]]
name = "{KEY}"
secret = "{SECRET}"
[[dns.zones]]
member = "isp-a"
key = "{KEY}"
notify = ["127.0.0.1:{dead}"]
notify_unsigned = ["127.0.0.1:{acker}"]
[dns.zones.policy]
zone_name = "{ZONE}"
ttl = 5
wildcard = true
action = {{ type = "local-data", a = "192.0.2.80" }}
"#
        ),
    )
    .unwrap();
    let hub_addr = SocketAddr::from(([127, 0, 0, 1], hport));
    let mut child = Proc(
        kizuna(dir.path())
            .arg("--config")
            .arg(&cfg)
            .args(["hub", "serve"])
            .env("KIZUNA_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.path().join("hub.log")).unwrap()))
            .spawn()
            .unwrap(),
    );
    let log = || std::fs::read_to_string(dir.path().join("hub.log")).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(20), || TcpStream::connect(hub_addr).is_ok() && serial(dport).is_some()),
        "hub and DNS primary did not come up: {}",
        log()
    );
    let s1 = serial(dport).unwrap();

    // an analyst adds an indicator through the hub API
    let (code, body) = http(
        hub_addr,
        "POST",
        "/api/v1/indicators",
        Some(&token),
        r#"{"kind":"domain","value":"Bad-Dist.Example","category":"malware-distribution","reason":"serves a banking trojan","tlp":"green"}"#,
    );
    assert_eq!(code, 201, "{body}");
    let t = Instant::now();
    assert!(
        wait_until(Duration::from_secs(2), || serial(dport).is_some_and(|s| s != s1)),
        "serial did not move: {}",
        log()
    );
    eprintln!("serial {s1} -> {:?} after {:?}", serial(dport), t.elapsed());
    let s2 = serial(dport).unwrap();

    // the record is served: TSIG-signed AXFR and query
    let tsig = format!("hmac-sha256:{KEY}:{SECRET}");
    let axfr = dig(dport, &["-y", &tsig, ZONE, "AXFR"]);
    assert!(axfr.contains(&format!("bad-dist.example.{ZONE}.")), "{axfr}");
    assert!(axfr.contains(&format!("*.bad-dist.example.{ZONE}.")), "{axfr}");
    assert!(axfr.contains("192.0.2.80"), "{axfr}");
    let a = dig(dport, &["-y", &tsig, "+short", &format!("bad-dist.example.{ZONE}"), "A"]);
    assert_eq!(a.trim(), "192.0.2.80", "{a}");
    // unsigned, and signed with the wrong secret: refused
    assert!(!dig(dport, &[ZONE, "AXFR"]).contains("192.0.2.80"));
    let bad = dig(dport, &["-y", &format!("hmac-sha256:{KEY}:{WRONG}"), ZONE, "AXFR"]);
    assert!(!bad.contains("192.0.2.80"), "{bad}");

    // the DNS metrics are on the hub's /metrics
    assert!(wait_until(Duration::from_secs(5), || acked.load(std::sync::atomic::Ordering::SeqCst) >= 1));
    let mut m = String::new();
    let ok = wait_until(Duration::from_secs(5), || {
        m = http(hub_addr, "GET", "/metrics", None, "").1;
        metric(&m, "kizuna_dns_notify_acked_total", &[&format!("127.0.0.1:{acker}")]).is_some_and(|v| v >= 1.0)
            && metric(&m, "kizuna_dns_notify_failed_total", &[&format!("127.0.0.1:{dead}"), "timeout"])
                .is_some_and(|v| v >= 1.0)
    });
    assert!(ok, "{m}");
    let zl = format!("zone=\"{ZONE}\"");
    assert_eq!(metric(&m, "kizuna_dns_zone_serial", &[&zl]), Some(f64::from(s2)), "{m}");
    assert!(
        metric(&m, "kizuna_dns_member_transfers_total", &["member=\"isp-a\"", "kind=\"axfr\""]) >= Some(1.0),
        "{m}"
    );
    assert!(metric(&m, "kizuna_dns_transfers_total", &[&zl, "kind=\"axfr\"", KEY]) >= Some(1.0), "{m}");
    assert!(metric(&m, "kizuna_dns_tsig_failures_total", &["badsig"]) >= Some(1.0), "{m}");
    assert!(metric(&m, "kizuna_dns_notify_sent_total", &[&format!("127.0.0.1:{dead}")]) >= Some(2.0), "retries: {m}");
    let age = metric(&m, "kizuna_dns_zone_last_change_age_seconds", &[&zl]).expect("age");
    assert!((0.0..30.0).contains(&age), "{m}");
    assert!(metric(&m, "kizuna_dns_zone_last_change_timestamp_seconds", &[&zl]).is_some_and(|v| v > 1.7e9), "{m}");
    // the hub's own metrics are still there, in the same exposition
    assert!(m.contains("kizuna_indicators{"), "{m}");
    assert_eq!(m.matches("# EOF").count(), 1, "{m}");

    // SIGINT stops the hub and the primary together
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "hub did not stop: {}", log());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}: {}", log());
    assert!(log().contains("DNS primary stopped"), "{}", log());
    assert!(UdpSocket::bind(("127.0.0.1", dport)).is_ok(), "the DNS port is released");
    assert!(serial(dport).is_none());
}
