//! `kizuna isp consent …` and the client zone of `kizuna isp serve`, as separate processes:
//! import a consent CSV (bad rows reported by line), record and show decisions, list them; the
//! running agent serves its `rpz-client-ip` zone (checked with `dig AXFR` signed with TSIG, as
//! a resolver would transfer it) and picks up a decision another process recorded within
//! seconds. The audit chain verifies afterwards.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY_NAME: &str = "consent-xfr";
const KEY_SECRET: &str = "c2VjcmV0LWtleS1mb3ItY29uc2VudC16b25lLTAwMDE=";
const ZONE: &str = "consent.isp-a.example";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kizuna"))
}

fn free_port() -> u16 {
    for _ in 0..100 {
        let t = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let p = t.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no free port");
}

fn kizuna(cfg: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .arg("isp")
        .arg("--agent-config")
        .arg(cfg)
        .args(args)
        .env("KIZUNA_LOG", "warn")
        .env("KIZUNA_USER", "desk-1")
        .output()
        .expect("run kizuna");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn detail(at: i64, user: &str, session: &str, ip: &str) -> String {
    let t = kizuna_model::Timestamp::from_secs(at).to_datetime();
    format!(
        "{}\n\tAcct-Status-Type = Start\n\tUser-Name = \"{user}\"\n\tAcct-Session-Id = \"{session}\"\n\t\
         NAS-IP-Address = 192.0.2.254\n\tFramed-IP-Address = {ip}\n\tEvent-Timestamp = \"{} UTC\"\n\tTimestamp = {at}\n\n",
        t.format("%a %b %e %H:%M:%S %Y"),
        t.format("%b %e %Y %H:%M:%S"),
    )
}

/// The passthru owners of the zone, by AXFR signed with the zone's key.
fn axfr(port: u16) -> Option<Vec<String>> {
    let out = Command::new("/usr/bin/dig")
        .args(["+tcp", "+norec", "+time=2", "+tries=1", "-p", &port.to_string(), "@127.0.0.1", ZONE, "AXFR"])
        .args(["-y", &format!("hmac-sha256:{KEY_NAME}:{KEY_SECRET}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !text.contains("SOA") {
        return None;
    }
    let mut owners: Vec<String> = text
        .lines()
        .filter(|l| l.contains("rpz-passthru."))
        .filter_map(|l| l.split_whitespace().next())
        .map(|o| o.trim_end_matches(&format!(".{ZONE}.")).to_owned())
        .collect();
    owners.sort();
    owners.dedup();
    Some(owners)
}

#[test]
fn consent_cli_and_the_served_client_zone() {
    assert!(Path::new("/usr/bin/dig").exists(), "dig missing: run scripts/setup-test-deps.sh (bind9-dnsutils)");
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let (zone_port, page_port) = (free_port(), free_port());
    let cfg = d.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"data_dir = "{data}"
[hub]
url = "http://127.0.0.1:9"
token = "offline"
poll_interval_secs = 3600
[page]
listen = "127.0.0.1:{page_port}"
public_base_url = "http://clean.isp-a.example"
[consent]
default_basis = "terms-of-service"
policy_version = "tos-2026-04"
[client_zone]
listen = "127.0.0.1:{zone_port}"
zone_name = "{ZONE}"
rebuild_interval_ms = 200
[client_zone.key]
name = "{KEY_NAME}"
secret = "{KEY_SECRET}"
"#,
            data = d.join("data").display()
        ),
    )
    .expect("config");
    std::fs::write(
        d.join("subs.csv"),
        "subscriber_id,keys,name,email,postal_address,language\n\
         S1,u1,A,a@example.jp,,ja\nS2,u2,B,b@example.jp,,en\nS3,u3,C,c@example.jp,,ja\n",
    )
    .expect("subs");
    let (rc, out, err) = kizuna(&cfg, &["subscribers", "import", d.join("subs.csv").to_str().expect("p")]);
    assert_eq!(rc, 0, "{out}{err}");

    // Import: one good row, an unknown subscriber and a bad status, each reported by line.
    std::fs::write(
        d.join("consent.csv"),
        "subscriber_id,status,at,channel,policy_version\n\
         S1,opt-out,2026-04-01T09:00:00+09:00,phone,tos-2026-01\n\
         S9,opt-in,2026-04-01T00:00:00Z,web,tos-2026-01\n\
         S2,maybe,2026-04-01T00:00:00Z,web,tos-2026-01\n",
    )
    .expect("consent csv");
    let (rc, out, err) = kizuna(&cfg, &["consent", "import", d.join("consent.csv").to_str().expect("p")]);
    assert_eq!(rc, 2, "bad rows make the exit status 2: {out}{err}");
    assert!(out.contains("imported 1 consent records (2 rejected)"), "{out}");
    assert!(err.contains("consent.csv:3: subscriber S9 is not in the directory"), "{err}");
    assert!(err.contains("consent.csv:4: status \"maybe\""), "{err}");
    let (rc, _, err) = kizuna(&cfg, &["consent", "set", "S2", "opt-out", "--channel", "carrier-pigeon"]);
    assert_eq!(rc, 1, "unknown channel refused");
    assert!(err.contains("channel \"carrier-pigeon\""), "{err}");

    let (rc, out, err) = kizuna(&cfg, &["consent", "show", "S3"]);
    assert_eq!(rc, 0, "{err}");
    assert!(out.contains("filtered (opt-in)") && out.contains("no record: default of terms-of-service"), "{out}");

    // The agent serves the zone: S1 opted out, so its address is exempt; S2 and S3 are filtered.
    let now = kizuna_model::Timestamp::now().as_secs();
    let logs = d.join("detail-20261201");
    std::fs::write(
        &logs,
        detail(now - 60, "u1", "a", "10.0.0.1")
            + &detail(now - 50, "u2", "b", "10.0.0.2")
            + &detail(now - 40, "u3", "c", "10.0.0.3"),
    )
    .expect("detail");
    let (rc, out, err) = kizuna(&cfg, &["sessions", "import", "--kind", "radius", logs.to_str().expect("p")]);
    assert_eq!(rc, 0, "{out}{err}");
    let log = std::fs::File::create(d.join("serve.log")).expect("log");
    let serve = Serve(
        Command::new(bin())
            .args(["isp", "--agent-config"])
            .arg(&cfg)
            .arg("serve")
            .env("KIZUNA_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("serve"),
    );
    let serve_log = || std::fs::read_to_string(d.join("serve.log")).unwrap_or_default();
    let wait = |want: &[&str]| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = axfr(zone_port);
            if got.as_deref().is_some_and(|g| g == want) {
                return Instant::now();
            }
            assert!(Instant::now() < deadline, "zone {got:?}, want {want:?}\n{}", serve_log());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait(&["32.1.0.0.10.rpz-client-ip"]);
    // An unsigned transfer is refused (the zone holds subscriber addresses).
    let unsigned = Command::new("/usr/bin/dig")
        .args(["+tcp", "+time=2", "+tries=1", "-p", &zone_port.to_string(), "@127.0.0.1", ZONE, "AXFR"])
        .output()
        .expect("dig");
    assert!(!String::from_utf8_lossy(&unsigned.stdout).contains("rpz-client-ip"), "unsigned AXFR leaked the zone");

    // Another process records S3's opt-out; the running agent exempts S3's address.
    let t0 = Instant::now();
    let (rc, out, err) = kizuna(&cfg, &["consent", "set", "S3", "opt-out", "--channel", "phone"]);
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains("policy tos-2026-04") && out.contains("basis terms-of-service"), "{out}");
    let at = wait(&["32.1.0.0.10.rpz-client-ip", "32.3.0.0.10.rpz-client-ip"]);
    eprintln!("CLI opt-out to new zone content: {:?}", at - t0);
    assert!(at - t0 < Duration::from_secs(5));
    drop(serve);

    let (_, out, _) = kizuna(&cfg, &["consent", "list", "--json"]);
    let rows: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(rows.iter().all(|r| r["status"] == "opt-out"), "{out}");
    assert_eq!(rows[0]["subscriber"], "S1");
    assert_eq!(rows[0]["at"], "2026-04-01T00:00:00+00:00");
    assert_eq!(rows[0]["policy_version"], "tos-2026-01");
    let (_, out, _) = kizuna(&cfg, &["consent", "show", "S3"]);
    assert!(out.contains("not filtered (opt-out)") && out.contains("by cli:"), "{out}");
    let (rc, out, _) = kizuna(&cfg, &["audit-verify"]);
    assert_eq!(rc, 0, "{out}");
}
