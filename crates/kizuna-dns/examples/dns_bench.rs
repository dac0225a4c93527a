//! bench/dns: kizuna's primary vs a stock BIND 9 primary, both feeding a BIND 9 RPZ
//! secondary configured the same way (`min-update-interval 0`, `max-policy-ttl 1`).
//!
//! (a) detection → protection: indicators added one by one; time from "accepted" (kizuna: the
//!     store commit returned; BIND: `nsupdate` got its answer and exited) to the resolver
//!     answering the query with the block. p50/p99 over every indicator.
//! (b) a 1M-name zone: the resolver's first AXFR from kizuna; then 1,000 changes by IXFR, vs
//!     the same 1,000 changes delivered by rewriting the zone file and `rndc reload`
//!     (what a periodic file export forces), each to a consistent answer.
//!
//! `dns_bench [--latency N] [--names M] [--changes C] [--out FILE]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener as StdTcp, UdpSocket as StdUdp};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use kizuna_dns::{DnsConfig, DnsMetrics, FeedItem, IndicatorFeed, MemoryFeed, Service, StoreFeed, default_granularity};
use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp};
use kizuna_rpz::{Entry, Granularity, RpzAction, RpzPolicy, generate};
use kizuna_store::indicators::IndicatorStore;
use kizuna_store::sqlite::SqliteStore;

const SECRET: &str = "YmVuY2gta2V5LWZvci1rdWl6dW5hLWRucy1iZW5jaC0wMDE=";
const WARN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn free_port() -> u16 {
    loop {
        let t = StdTcp::bind("127.0.0.1:0").unwrap();
        let p = t.local_addr().unwrap().port();
        if StdUdp::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

fn indicator(value: &str) -> Indicator {
    let now = Timestamp::now().as_secs();
    Indicator {
        kind: IndicatorKind::Domain,
        value: value.to_owned(),
        category: ClassificationType::MalwareDistribution,
        source: "bench".into(),
        confidence: 90,
        first_seen: Timestamp::from_secs(now - 60),
        last_seen: Timestamp::from_secs(now),
        expires: Timestamp::from_secs(now + 86_400),
        reason: "bench".into(),
        malware: None,
        tlp: Tlp::Green,
        sharing_groups: vec![],
        legal_basis: LegalBasis::LegitimateBusiness,
    }
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn query_a(server: SocketAddr, name: &str) -> Option<Vec<Ipv4Addr>> {
    let sock = StdUdp::bind(SocketAddr::new(LO, 0)).ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(50))).ok()?;
    let mut m = Message::new(rand16(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    let mut q = Query::new();
    q.name = Name::from_ascii(name).ok()?;
    q.query_type = RecordType::A;
    m.add_query(q);
    sock.send_to(&m.to_vec().ok()?, server).ok()?;
    let mut buf = [0u8; 2048];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    let r = Message::from_vec(&buf[..n]).ok()?;
    Some(
        r.answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect(),
    )
}

fn soa_serial(server: SocketAddr, zone: &str) -> Option<u32> {
    let sock = StdUdp::bind(SocketAddr::new(LO, 0)).ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
    let mut m = Message::new(rand16(), MessageType::Query, OpCode::Query);
    let mut q = Query::new();
    q.name = Name::from_ascii(zone).ok()?;
    q.query_type = RecordType::SOA;
    m.add_query(q);
    sock.send_to(&m.to_vec().ok()?, server).ok()?;
    let mut buf = [0u8; 2048];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    Message::from_vec(&buf[..n]).ok()?.answers.iter().find_map(|r| match &r.data {
        RData::SOA(s) => Some(s.serial),
        _ => None,
    })
}

fn rand16() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(Instant::now()) & 0xffff) as u16
}

/// Polls until `name` is blocked at `server`; the time since `from`.
fn until_blocked(server: SocketAddr, name: &str, from: Instant, limit: Duration) -> Option<Duration> {
    while from.elapsed() < limit {
        if query_a(server, name).is_some_and(|a| a == [WARN]) {
            return Some(from.elapsed());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    None
}

/// The resolver is authoritative for `example.` (no internet here): a name not yet blocked
/// gets NXDOMAIN at once instead of a recursion that times out.
const EXAMPLE_ZONE: &str =
    "$TTL 60\n@ SOA ns.example. hostmaster.example. 1 60 60 600 1\n@ NS ns.example.\nns A 127.0.0.1\n";

fn named(dir: &Path, conf: &str) -> Proc {
    std::fs::write(dir.join("example.zone"), EXAMPLE_ZONE).unwrap();
    let conf = format!("{conf}zone \"example.\" {{ type primary; file \"example.zone\"; }};\n");
    std::fs::write(dir.join("named.conf"), conf).unwrap();
    let c = Command::new("/usr/sbin/named")
        .args(["-f", "-n", "1", "-c"])
        .arg(dir.join("named.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.join("named.stderr")).unwrap()))
        .spawn()
        .expect("named (scripts/setup-test-deps.sh installs bind9)");
    Proc(c)
}

fn options(dir: &Path, port: u16, rndc: u16, policy: &str) -> String {
    let d = dir.display();
    format!(
        "options {{ directory \"{d}\"; pid-file \"{d}/named.pid\"; session-keyfile \"{d}/s.key\";
  listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};
  recursion yes; allow-recursion {{ 127.0.0.0/8; }}; allow-query {{ 127.0.0.0/8; }};
  dnssec-validation no; notify no; max-cache-ttl 60;
  {policy}
}};
key \"bench\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};
controls {{ inet 127.0.0.1 port {rndc} allow {{ 127.0.0.1; }} keys {{ \"bench\"; }}; }};
logging {{ channel main {{ file \"{d}/named.log\"; severity info; print-time yes; print-category yes; }};
  category default {{ main; }}; category xfer-in {{ main; }}; category rpz {{ main; }}; }};
"
    )
}

fn secondary(zone: &str, port: u16) -> String {
    format!(
        "zone \"{zone}\" {{ type secondary; primaries {{ 127.0.0.1 port {port} key \"bench\"; }}; file \"{zone}.db\";
  allow-notify {{ 127.0.0.1; }}; request-ixfr yes; notify no; allow-query {{ localhost; }}; }};\n"
    )
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn kizuna_cfg(zone: &str, notify_port: u16, sweep: u64) -> DnsConfig {
    DnsConfig::from_toml(&format!(
        "poll_interval_ms = 10
expiry_sweep_secs = {sweep}
history = 64
[[keys]]
name = \"bench\"
secret = \"{SECRET}\"
[[zones]]
member = \"bench\"
key = \"bench\"
notify = [\"127.0.0.1:{notify_port}\"]
[zones.policy]
zone_name = \"{zone}\"
ttl = 5
action = {{ type = \"local-data\", a = \"{WARN}\" }}
"
    ))
    .unwrap()
}

fn start_service(
    rt: &tokio::runtime::Runtime,
    cfg: DnsConfig,
    port: u16,
    feed: Arc<dyn IndicatorFeed>,
    wake: Option<Arc<tokio::sync::Notify>>,
) -> kizuna_dns::Primary {
    rt.block_on(async {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let udp = tokio::net::UdpSocket::bind(addr).await.unwrap();
        let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
        let mut svc = Service::new(cfg, feed, DnsMetrics::new()).unwrap();
        if let Some(w) = wake {
            svc.wake_on(w);
        }
        let p = svc.primary.clone();
        tokio::spawn(svc.run_on(udp, tcp, None));
        p
    })
}

struct Args {
    latency: usize,
    names: usize,
    changes: usize,
    out: String,
}

fn args() -> Args {
    let mut a = Args { latency: 300, names: 1_000_000, changes: 1000, out: "bench/out/dns.md".into() };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i + 1 < v.len() {
        match v[i].as_str() {
            "--latency" => a.latency = v[i + 1].parse().unwrap(),
            "--names" => a.names = v[i + 1].parse().unwrap(),
            "--changes" => a.changes = v[i + 1].parse().unwrap(),
            "--out" => a.out = v[i + 1].clone(),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut md = String::new();
    writeln!(md, "# bench/dns\n").unwrap();
    let bind_version = Command::new("/usr/sbin/named")
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    writeln!(md, "Peer: {bind_version}, same machine, loopback. Resolver: BIND RPZ secondary with `min-update-interval 0`, `max-policy-ttl 1`.\n").unwrap();

    // ---------- (a) latency ----------
    {
        let dir = tmp.path().join("a");
        std::fs::create_dir_all(dir.join("r")).unwrap();
        std::fs::create_dir_all(dir.join("p")).unwrap();
        let (kport, rport, pport, rrndc, prndc) = (free_port(), free_port(), free_port(), free_port(), free_port());
        let store = Arc::new(SqliteStore::open(&dir.join("kizuna.db")).unwrap());
        let feed = Arc::new(StoreFeed::new(store.clone(), Box::new(default_granularity)));
        let kzone = "rpz.kizuna.bench";
        let szone = "rpz.stock.bench";
        let _primary = start_service(&rt, kizuna_cfg(kzone, rport, 3600), kport, feed, None);
        // stock BIND primary: dynamic update, journal IXFR, notify-delay 0
        std::fs::write(
            dir.join("p").join("stock.zone"),
            "$TTL 5\n@ SOA localhost. hostmaster.localhost. 1 60 10 86400 30\n@ NS localhost.\n",
        )
        .unwrap();
        let pconf = options(&dir.join("p"), pport, prndc, "")
            + &format!(
                "zone \"{szone}\" {{ type primary; file \"stock.zone\"; allow-update {{ key \"bench\"; }};
  notify explicit; also-notify {{ 127.0.0.1 port {rport}; }}; notify-delay 0; allow-transfer {{ key \"bench\"; }}; }};\n"
            );
        let _p = named(&dir.join("p"), &pconf);
        let policy = format!(
            "response-policy {{ zone \"{kzone}\"; zone \"{szone}\"; }} max-policy-ttl 1 min-update-interval 0 qname-wait-recurse no break-dnssec yes;"
        );
        let rconf =
            options(&dir.join("r"), rport, rrndc, &policy) + &secondary(kzone, kport) + &secondary(szone, pport);
        let _r = named(&dir.join("r"), &rconf);
        let resolver = SocketAddr::from(([127, 0, 0, 1], rport));
        let t = Instant::now();
        while (soa_serial(resolver, kzone).is_none() || soa_serial(resolver, szone).is_none())
            && t.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("(a) resolver ready; {} indicators each side", a.latency);
        let mut ks = Vec::new();
        let mut ss = Vec::new();
        let mut misses = (0, 0);
        for i in 0..a.latency {
            // kizuna: the store commit is "accepted"
            let name = format!("k{i}.bench-latency.example");
            let t0 = Instant::now();
            store.upsert_indicators(&[indicator(&name)], Timestamp::now()).unwrap();
            let accepted = Instant::now();
            let _ = t0;
            match until_blocked(resolver, &format!("{name}."), accepted, Duration::from_secs(5)) {
                Some(d) => ks.push(d.as_secs_f64() * 1000.0),
                None => misses.0 += 1,
            }
            // stock BIND: nsupdate's answer is "accepted"
            let name = format!("s{i}.bench-latency.example");
            let mut c = Command::new("/usr/bin/nsupdate")
                .args(["-y", &format!("hmac-sha256:bench:{SECRET}")])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            write!(
                c.stdin.take().unwrap(),
                "server 127.0.0.1 {pport}\nzone {szone}\nupdate add {name}.{szone} 5 A {WARN}\nupdate add *.{name}.{szone} 5 A {WARN}\nsend\n"
            )
            .unwrap();
            assert!(c.wait().unwrap().success(), "nsupdate failed");
            let accepted = Instant::now();
            match until_blocked(resolver, &format!("{name}."), accepted, Duration::from_secs(5)) {
                Some(d) => ss.push(d.as_secs_f64() * 1000.0),
                None => misses.1 += 1,
            }
            if i % 50 == 49 {
                eprintln!("  {} done", i + 1);
            }
        }
        let (k50, k99, kmax) = (pct(&mut ks, 0.5), pct(&mut ks, 0.99), pct(&mut ks, 1.0));
        let (s50, s99, smax) = (pct(&mut ss, 0.5), pct(&mut ss, 0.99), pct(&mut ss, 1.0));
        writeln!(md, "## (a) Detection → protection latency\n").unwrap();
        writeln!(md, "{} indicators added one by one on each side; time from \"accepted\" to the resolver answering with the block.\n", a.latency).unwrap();
        writeln!(md, "| primary | p50 ms | p99 ms | max ms | not blocked within 5 s |").unwrap();
        writeln!(md, "| --- | ---: | ---: | ---: | ---: |").unwrap();
        writeln!(
            md,
            "| kizuna (SQLite store commit → poll 10 ms → IXFR) | {k50:.1} | {k99:.1} | {kmax:.1} | {} |",
            misses.0
        )
        .unwrap();
        writeln!(
            md,
            "| stock BIND 9 primary (nsupdate, notify-delay 0, journal IXFR) | {s50:.1} | {s99:.1} | {smax:.1} | {} |",
            misses.1
        )
        .unwrap();
        writeln!(md, "| ratio (BIND / kizuna) | {:.1}× | {:.1}× | | |\n", s50 / k50, s99 / k99).unwrap();
        eprintln!("(a) kizuna p50 {k50:.1} p99 {k99:.1}; BIND p50 {s50:.1} p99 {s99:.1}");
        std::fs::write(&a.out, &md).ok();
    }

    // ---------- (b) 1M names ----------
    {
        let dir = tmp.path().join("b");
        std::fs::create_dir_all(&dir).unwrap();
        let (kport, rport, rrndc) = (free_port(), free_port(), free_port());
        let kzone = "rpz.big.bench";
        let fzone = "rpz.file.bench";
        let domains = a.names / 2; // name + *.name
        eprintln!("(b) building {domains} domain indicators ({} names)", domains * 2);
        let feed = Arc::new(MemoryFeed::new());
        let items: Vec<FeedItem> = (0..domains)
            .map(|i| {
                let ind = indicator(&format!("d{i}.big.example"));
                FeedItem { key: ind.key(), indicator: ind, granularity: Granularity::Host }
            })
            .collect();
        feed.upsert(items.iter().cloned());
        let t = Instant::now();
        let primary = start_service(&rt, kizuna_cfg(kzone, rport, 86_400), kport, feed.clone(), Some(feed.waker()));
        let build_s = t.elapsed().as_secs_f64();
        // the same zone as a file, for the file-reload side
        let policy = RpzPolicy::new(fzone, RpzAction::LocalData { a: Some(WARN), aaaa: None });
        let mut policy = policy;
        policy.ttl = 5;
        let zone_file = |items: &[FeedItem], serial: u32| {
            let z = generate(
                &policy,
                items.iter().map(|i| Entry { key: i.key, indicator: &i.indicator, granularity: i.granularity }),
                Timestamp::now(),
            )
            .unwrap();
            z.to_zone_text(serial)
        };
        std::fs::write(dir.join("file.zone"), zone_file(&items, 1)).unwrap();
        let rpolicy = format!(
            "response-policy {{ zone \"{kzone}\"; zone \"{fzone}\"; }} max-policy-ttl 1 min-update-interval 0 qname-wait-recurse no break-dnssec yes;"
        );
        let rconf = options(&dir, rport, rrndc, &rpolicy)
            + &secondary(kzone, kport)
            + &format!("zone \"{fzone}\" {{ type primary; file \"file.zone\"; allow-query {{ localhost; }}; }};\n");
        let want = primary.zone(kzone).unwrap().zone.current().serial;
        let t = Instant::now();
        let _r = named(&dir, &rconf);
        let resolver = SocketAddr::from(([127, 0, 0, 1], rport));
        while soa_serial(resolver, kzone) != Some(want) && t.elapsed() < Duration::from_secs(600) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let axfr_s = t.elapsed().as_secs_f64();
        while soa_serial(resolver, fzone).is_none() && t.elapsed() < Duration::from_secs(600) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(dir.join("named.log")).unwrap_or_default();
        let xfer_line =
            log.lines().find(|l| l.contains(kzone) && l.contains("Transfer completed")).unwrap_or("").to_owned();
        eprintln!("(b) first AXFR done after {axfr_s:.2} s: {xfer_line}");
        // make sure both zones are in force
        assert!(until_blocked(resolver, "d1.big.example.", Instant::now(), Duration::from_secs(60)).is_some());

        // IXFR of C changes from kizuna
        let new: Vec<FeedItem> = (0..a.changes)
            .map(|i| {
                let ind = indicator(&format!("n{i}.big.example"));
                FeedItem { key: ind.key(), indicator: ind, granularity: Granularity::Host }
            })
            .collect();
        let last = format!("n{}.big.example.", a.changes - 1);
        let t = Instant::now();
        feed.upsert(new.iter().cloned());
        let ixfr = until_blocked(resolver, &last, t, Duration::from_secs(120)).map(|d| d.as_secs_f64());
        let first_ok = query_a(resolver, "n0.big.example.").is_some_and(|v| v == [WARN]);
        eprintln!("(b) IXFR of {} changes: {ixfr:?} (first also blocked: {first_ok})", a.changes);

        // the same C changes as a file rewrite + rndc reload
        let mut all = items.clone();
        let fnew: Vec<FeedItem> = (0..a.changes)
            .map(|i| {
                let ind = indicator(&format!("f{i}.big.example"));
                FeedItem { key: ind.key(), indicator: ind, granularity: Granularity::Host }
            })
            .collect();
        all.extend(fnew.iter().cloned());
        let text = zone_file(&all, 2);
        let flast = format!("f{}.big.example.", a.changes - 1);
        std::fs::write(
            dir.join("rndc.conf"),
            format!(
                "key \"bench\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};\n\
                 options {{ default-key \"bench\"; default-server 127.0.0.1; default-port {rrndc}; }};\n"
            ),
        )
        .unwrap();
        let t = Instant::now();
        std::fs::write(dir.join("file.zone"), text).unwrap();
        let rndc = Command::new("/usr/sbin/rndc").arg("-c").arg(dir.join("rndc.conf")).args(["reload", fzone]).output();
        let rndc_ok = rndc.as_ref().map(|o| o.status.success()).unwrap_or(false);
        let rndc_out = rndc
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr))
            .unwrap_or_default();
        let reload = until_blocked(resolver, &flast, t, Duration::from_secs(600)).map(|d| d.as_secs_f64());
        eprintln!("(b) file + rndc reload: {reload:?} (rndc ok {rndc_ok}: {})", rndc_out.trim());

        writeln!(md, "## (b) {}-name zone, {} changes\n", domains * 2, a.changes).unwrap();
        writeln!(md, "| step | seconds |").unwrap();
        writeln!(md, "| --- | ---: |").unwrap();
        writeln!(md, "| kizuna builds the zone from {domains} indicators | {build_s:.2} |").unwrap();
        writeln!(md, "| BIND start → first AXFR from kizuna loaded | {axfr_s:.2} |").unwrap();
        let f = |o: Option<f64>| o.map(|v| format!("{v:.3}")).unwrap_or_else(|| "did not finish".into());
        writeln!(md, "| {} changes: kizuna IXFR → consistent answer | {} |", a.changes, f(ixfr)).unwrap();
        writeln!(
            md,
            "| {} changes: zone file rewritten + `rndc reload` → consistent answer | {} |",
            a.changes,
            f(reload)
        )
        .unwrap();
        if let (Some(i), Some(r)) = (ixfr, reload) {
            writeln!(md, "| **ratio (reload / IXFR)** | **{:.1}×** |", r / i).unwrap();
        }
        writeln!(md, "\nBIND's own transfer log line: `{}`", xfer_line.trim()).unwrap();
        drop(primary);
    }
    if let Some(p) = Path::new(&a.out).parent() {
        std::fs::create_dir_all(p).ok();
    }
    std::fs::write(&a.out, &md).unwrap();
    println!("{md}");
}
