//! Consent reaches real resolvers: BIND 9 is a secondary of the hub's policy zone (a kizuna-dns
//! primary with one indicator) and of the agent's own `rpz-client-ip` zone (served by the
//! agent from its session index and consent register). Two subscribers on two loopback
//! addresses ask for the same name: the consenting one gets the warning page, the other the
//! normal answer. Opting out on the warning page (over HTTP, from the subscriber's address)
//! flips it within seconds; a new session moves the exemption with the address.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../kizuna-dns/tests/common/mod.rs"]
mod common;
mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use common::*;
use kizuna_isp::agent::Agent;
use kizuna_isp::clock::SystemClock;
use kizuna_isp::config::AgentConfig;
use kizuna_isp::consent::{Basis, ClientZone, NewConsent, PROTECTIVE_DNS, Status};
use kizuna_isp::store::{AgentStore, Subscriber};
use kizuna_model::{IndicatorKind, Timestamp};
use kizuna_sessions::{LogKind, ResolverConfig, SessionIndex};
use support::Detail;

const HUB_ZONE: &str = "rpz.isp-a.example";
const CLIENT_ZONE: &str = "consent.isp-a.example";
const NORMAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const ALICE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const BOB: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

fn agent_toml(dir: &std::path::Path, page: SocketAddr, zone_port: u16, bind_port: u16) -> String {
    format!(
        r#"data_dir = "{d}"
[hub]
url = "http://127.0.0.1:9"
token = "unused-offline"
[page]
listen = "{page}"
public_base_url = "http://clean.isp-a.example"
isp_name = "ISP-A"
[consent]
default_basis = "opt-in"
policy_version = "pdns-2026-04"
[client_zone]
listen = "127.0.0.1:{zone_port}"
zone_name = "{CLIENT_ZONE}"
ttl = 5
notify = ["127.0.0.1:{bind_port}"]
rebuild_interval_ms = 200
[client_zone.key]
name = "{KEY_NAME}"
secret = "{KEY_SECRET}"
"#,
        d = dir.display()
    )
}

fn detail_start(at: i64, user: &str, session: &str, ip: &str) -> String {
    let mut d = Detail::new();
    d.record("Start", at, user, session, ip, "192.0.2.254");
    d.0
}

#[test]
fn consenting_and_non_consenting_clients_get_different_answers_and_opt_out_flips_within_seconds() {
    kizuna_testkit::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let bind_dir = dir.path().join("bind");
    std::fs::create_dir_all(&bind_dir).unwrap();
    let (kport, aport, bport) = (free_port(), free_port(), free_port());
    let bind_addr = SocketAddr::from(([127, 0, 0, 1], bport));

    // The hub's primary with its member zone (real indicator store, real kizuna-dns).
    let hub = Kizuna::start(kport, &kizuna_config(HUB_ZONE, &[bind_addr], ""));

    // The agent: two subscribers, alice on 127.0.0.2 and bob on 127.0.0.3 (RADIUS), opt-in model.
    let now = Timestamp::now().as_secs();
    let mut index = SessionIndex::new(ResolverConfig::default());
    let detail =
        detail_start(now - 120, "alice", "s-1", "127.0.0.2") + &detail_start(now - 110, "bob", "s-2", "127.0.0.3");
    let s = index.load_reader(detail.as_bytes(), "detail", LogKind::RadiusDetail).unwrap();
    assert_eq!((s.events, s.rejected), (2, 0), "{:?}", s.rejections);
    let sessions = Arc::new(RwLock::new(index));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let page_listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let page_addr = page_listener.local_addr().unwrap();
    let cfg = AgentConfig::parse(&agent_toml(dir.path(), page_addr, aport, bport)).unwrap();
    let store = Arc::new(AgentStore::open(&cfg.database_path()).unwrap());
    let sub = |id: &str, key: &str| Subscriber {
        id: id.into(),
        name: format!("Name {id}"),
        email: None,
        postal_address: None,
        language: "ja".into(),
        keys: vec![key.into()],
    };
    store.upsert_subscribers(&[sub("S-A", "alice"), sub("S-B", "bob")], Timestamp::now(), "test").unwrap();
    let opt = |who: &str, status: Status| NewConsent {
        subscriber: who.into(),
        service: PROTECTIVE_DNS.into(),
        status,
        at: Timestamp::now(),
        channel: "web".into(),
        policy_version: "pdns-2026-04".into(),
        basis: Basis::OptIn,
    };
    store.record_consent(&opt("S-A", Status::OptIn), Timestamp::now(), "test").unwrap();
    let agent = Agent::new(cfg, store.clone(), sessions.clone(), Arc::new(SystemClock), false).unwrap();
    let zone = ClientZone::new(&agent, sessions.clone()).unwrap().expect("client zone configured");
    let agent_primary = zone.primary.clone();
    let client_serial = || agent_primary.zone(CLIENT_ZONE).unwrap().zone.current().serial;
    rt.block_on(async {
        let (udp, tcp) = zone.bind().await.unwrap();
        tokio::spawn(zone.run(agent.clone(), udp, tcp, std::future::pending()));
        tokio::spawn(kizuna_isp::page::serve(agent.clone(), page_listener, std::future::pending()));
    });

    // BIND: the client zone first (its passthru outranks the hub's triggers), then the hub's.
    let bind = Bind::start(
        &bind_dir,
        bport,
        &[
            BindRpz { zone: CLIENT_ZONE, primary_port: aport, key: Some((KEY_NAME, KEY_SECRET)) },
            BindRpz { zone: HUB_ZONE, primary_port: kport, key: Some((KEY_NAME, KEY_SECRET)) },
        ],
    );
    let loaded = |z: &str, want: u32| wait_until(Duration::from_secs(10), || bind.serial(z) == Some(want));
    assert!(loaded(HUB_ZONE, hub.serial(HUB_ZONE)), "hub zone not loaded: {}", bind.proc.log_text());
    assert!(loaded(CLIENT_ZONE, client_serial()), "client zone not loaded: {}", bind.proc.log_text());
    let srv = bind.addr();
    assert_eq!(resolve_a(srv, ALICE, "malware.example."), vec![NORMAL], "nothing blocked yet");

    // The hub publishes an indicator: only the consenting subscriber is protected.
    hub.add(&[indicator(IndicatorKind::Domain, "malware.example")]);
    assert!(
        wait_for_answer(srv, ALICE, "malware.example.", &[WARN_V4], Duration::from_secs(2)).is_some(),
        "consenting subscriber not protected: {}",
        bind.proc.log_text()
    );
    assert_eq!(resolve_a(srv, BOB, "malware.example."), vec![NORMAL], "non-consenting subscriber untouched");
    assert_eq!(resolve_a(srv, ALICE, "www.malware.example."), vec![WARN_V4]);

    // Alice opts out on the warning page, over HTTP from her own address.
    let http = reqwest::Client::builder().local_address(ALICE).build().unwrap();
    let base = format!("http://{page_addr}");
    let page = rt.block_on(async {
        let r = http
            .get(format!("{base}/"))
            .header("host", "malware.example")
            .header("accept-language", "en")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    });
    assert!(page.contains(r#"id="opt-out""#), "{page}");
    let token = page.split(r#"name="token" value=""#).nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned();
    let serial_before = client_serial();
    let t0 = Instant::now();
    let answer = rt.block_on(async {
        http.post(format!("{base}/.kizuna/opt-out"))
            .header("host", "malware.example")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}&lang=en"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(answer.contains(r#"data-result="opted-out""#), "{answer}");
    let took = wait_for_answer(srv, ALICE, "malware.example.", &[NORMAL], Duration::from_secs(5))
        .unwrap_or_else(|| panic!("opt-out did not reach BIND within 5 s: {}", bind.proc.log_text()));
    eprintln!("opt-out to normal answer: {:?} (answer after {took:?})", t0.elapsed());
    assert!(client_serial() != serial_before, "the client zone got a new version");
    let h = store.consent_history("S-A", PROTECTIVE_DNS).unwrap();
    assert_eq!(
        h.last().map(|r| (r.consent.status, r.consent.channel.as_str())),
        Some((Status::OptOut, "warning-page"))
    );
    assert_eq!(h.last().map(|r| r.consent.policy_version.as_str()), Some("pdns-2026-04"));

    // A forged opt-out (no token from the page) is refused.
    let forged = rt.block_on(async {
        reqwest::Client::builder()
            .local_address(BOB)
            .build()
            .unwrap()
            .post(format!("{base}/.kizuna/opt-out"))
            .header("host", "malware.example")
            .body("token=0000&lang=en")
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(forged, 403);

    // Bob opts in by phone (the CLI writes the register from another process: no wake-up, the
    // agent notices on its next check).
    store.record_consent(&opt("S-B", Status::OptIn), Timestamp::now(), "cli:test").unwrap();
    assert!(
        wait_for_answer(srv, BOB, "malware.example.", &[WARN_V4], Duration::from_secs(5)).is_some(),
        "opt-in did not reach BIND: {}",
        bind.proc.log_text()
    );
    assert_eq!(resolve_a(srv, ALICE, "malware.example."), vec![NORMAL]);

    // Sessions move: bob's line ends and 127.0.0.3 goes to alice (opted out): the exemption
    // follows the address.
    {
        let t = Timestamp::now().as_secs();
        let mut d = Detail::new();
        d.record("Stop", t - 2, "bob", "s-2", "127.0.0.3", "192.0.2.254");
        d.record("Start", t - 1, "alice", "s-3", "127.0.0.3", "192.0.2.254");
        let s = sessions.write().unwrap().load_reader(d.0.as_bytes(), "detail-2", LogKind::RadiusDetail).unwrap();
        assert_eq!(s.rejected, 0, "{:?}", s.rejections);
    }
    assert!(
        wait_for_answer(srv, BOB, "malware.example.", &[NORMAL], Duration::from_secs(5)).is_some(),
        "new session not reflected: {}",
        bind.proc.log_text()
    );

    // IXFR carried the changes; NOTIFY was acknowledged; the register is in the audit log.
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &agent_primary.metrics().registry()).unwrap();
    let sum = |needle: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("kizuna_dns_transfers_total") && l.contains(needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(sum("kind=\"ixfr\"") >= 2.0, "{text}");
    assert_eq!(bind.serial(CLIENT_ZONE), Some(client_serial()));
    let audit = store.audit_entries(0, 1000).unwrap();
    assert_eq!(audit.iter().filter(|e| e.record.action.starts_with("consent.")).count(), 3);
    let metrics = rt.block_on(async { reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap() });
    assert!(metrics.contains("kizuna_isp_warning_views_total{kind=\"unknown\"} 1"), "{metrics}");
    assert!(metrics.contains("kizuna_isp_consent_changes_total{kind=\"opt-out\"} 1"), "{metrics}");
}
