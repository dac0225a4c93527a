//! bench/dns: kizuna's primary vs a stock BIND 9 primary, each feeding its own BIND 9 RPZ
//! secondary configured the same way (`min-update-interval 0`, `max-policy-ttl 1`,
//! `serial-query-rate 1000`).
//!
//! (a) detection → protection: indicators added one by one; time from "accepted" (kizuna: the
//!     store commit returned; BIND: the primary answered the signed UPDATE) to the resolver
//!     answering the query with the block. p50/p99 over every indicator; kizuna's run first,
//!     then the stock primary's, each with its own resolver.
//! (b) a big zone (default 1M names): BIND's first AXFR from kizuna; then 1,000 changes by IXFR,
//!     vs the same number of changes delivered by rewriting a zone file and `rndc reload`
//!     (what a periodic file export forces), each to a consistent answer, broken down from
//!     BIND's log (transfer, RPZ summary rebuild); then the same with Unbound as the secondary
//!     (`unbound-control auth_zone_reload` for the file side).
//!
//! `dns_bench [--latency N] [--names M] [--changes C] [--out FILE]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdp};
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

use kizuna_testkit::free_udp_tcp_port as free_port;

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

/// `serial-query-rate` of every BIND in the bench. BIND paces the SOA query a NOTIFY starts
/// through a rate limiter that, at the default 20/s, releases 10 queries every 500 ms: a NOTIFY
/// that comes while the limiter is busy waits for the next 500 ms tick. At 1000/s the tick is
/// 10 ms. The stock primary's outgoing NOTIFYs go through the same kind of limiter
/// (`notify-rate`, default 20): both are set alike. `DNS_BENCH_SQR=20` measures BIND's defaults.
fn serial_query_rate() -> u32 {
    std::env::var("DNS_BENCH_SQR").ok().and_then(|v| v.parse().ok()).unwrap_or(1000)
}

fn options(dir: &Path, port: u16, rndc: u16, policy: &str) -> String {
    let d = dir.display();
    let sqr = serial_query_rate();
    format!(
        "options {{ directory \"{d}\"; pid-file \"{d}/named.pid\"; session-keyfile \"{d}/s.key\";
  listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};
  recursion yes; allow-recursion {{ 127.0.0.0/8; }}; allow-query {{ 127.0.0.0/8; }};
  dnssec-validation no; notify no; max-cache-ttl 60;
  serial-query-rate {sqr}; notify-rate {sqr};
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

/// A TSIG-signed DNS UPDATE (RFC 2136) adding `name` and `*.name` to `zone` at `server`;
/// returns when the primary answered NOERROR (what `nsupdate` does, without the process
/// start and exit around it, which would hide the propagation being measured).
fn dns_update(server: SocketAddr, zone: &str, name: &str) {
    use hickory_proto::rr::{DNSClass, Record, rdata::A};
    let key = kizuna_dns::tsig::Key::new("bench", "hmac-sha256", SECRET).unwrap();
    let mut m = Message::new(rand16(), MessageType::Query, OpCode::Update);
    let mut q = Query::new();
    q.name = Name::from_ascii(zone).unwrap();
    q.query_type = RecordType::SOA;
    q.query_class = DNSClass::IN;
    m.add_query(q);
    for owner in [format!("{name}.{zone}."), format!("*.{name}.{zone}.")] {
        m.add_authority(Record::from_rdata(Name::from_ascii(&owner).unwrap(), 5, RData::A(A(WARN))));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let (sig, _) = key.signer().sign_message(&m, now).unwrap();
    m.set_signature(sig);
    let sock = StdUdp::bind(SocketAddr::new(LO, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.send_to(&m.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).expect("UPDATE answered");
    let r = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(r.metadata.response_code, hickory_proto::op::ResponseCode::NoError, "UPDATE refused: {r:?}");
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
    if std::env::var_os("DNS_BENCH_KEEP").is_some() {
        eprintln!("keeping {}", tmp.path().display());
    }
    let mut md = String::new();
    writeln!(md, "# bench/dns\n").unwrap();
    let bind_version = Command::new("/usr/sbin/named")
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    writeln!(md, "Peer: {bind_version}, same machine, loopback. Resolver: BIND RPZ secondary with `min-update-interval 0`, `max-policy-ttl 1`.\n").unwrap();

    // ---------- (a) latency ----------
    // One BIND resolver per side (neither shares a resolver with the other), and the sides run
    // one after the other: kizuna's N indicators first, then the stock primary's N.
    if a.latency > 0 {
        let dir = tmp.path().join("a");
        for d in ["rk", "rs", "p"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let (kport, rkport, rkrndc) = (free_port(), free_port(), free_port());
        let (pport, prndc, rsport, rsrndc) = (free_port(), free_port(), free_port(), free_port());
        let store = Arc::new(SqliteStore::open(&dir.join("kizuna.db")).unwrap());
        let feed = Arc::new(StoreFeed::new(store.clone(), Box::new(default_granularity)));
        let kzone = "rpz.kizuna.bench";
        let szone = "rpz.stock.bench";
        let _primary = start_service(&rt, kizuna_cfg(kzone, rkport, 3600), kport, feed, None);
        // stock BIND primary: dynamic update, journal IXFR, notify-delay 0
        std::fs::write(
            dir.join("p").join("stock.zone"),
            "$TTL 5\n@ SOA localhost. hostmaster.localhost. 1 60 10 86400 30\n@ NS localhost.\n",
        )
        .unwrap();
        let pconf = options(&dir.join("p"), pport, prndc, "")
            + &format!(
                "zone \"{szone}\" {{ type primary; file \"stock.zone\"; allow-update {{ key \"bench\"; }};
  notify explicit; also-notify {{ 127.0.0.1 port {rsport}; }}; notify-delay 0; allow-transfer {{ key \"bench\"; }}; }};\n"
            );
        let _p = named(&dir.join("p"), &pconf);
        let policy = |z: &str| {
            format!(
                "response-policy {{ zone \"{z}\"; }} max-policy-ttl 1 min-update-interval 0 qname-wait-recurse no break-dnssec yes;"
            )
        };
        let _rk = named(
            &dir.join("rk"),
            &(options(&dir.join("rk"), rkport, rkrndc, &policy(kzone)) + &secondary(kzone, kport)),
        );
        let _rs = named(
            &dir.join("rs"),
            &(options(&dir.join("rs"), rsport, rsrndc, &policy(szone)) + &secondary(szone, pport)),
        );
        let rk = SocketAddr::from(([127, 0, 0, 1], rkport));
        let rs = SocketAddr::from(([127, 0, 0, 1], rsport));
        let t = Instant::now();
        while (soa_serial(rk, kzone).is_none() || soa_serial(rs, szone).is_none())
            && t.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("(a) resolvers ready; {} indicators each side, kizuna first, then stock BIND", a.latency);
        let mut ks = Vec::new();
        let mut ss = Vec::new();
        let mut misses = (0, 0);
        let t_k = Instant::now();
        for i in 0..a.latency {
            // kizuna: the store commit is "accepted" (what the hub's API does before its 201)
            let name = format!("k{i}.bench-latency.example");
            store.upsert_indicators(&[indicator(&name)], Timestamp::now()).unwrap();
            let accepted = Instant::now();
            match until_blocked(rk, &format!("{name}."), accepted, Duration::from_secs(5)) {
                Some(d) => ks.push(d.as_secs_f64() * 1000.0),
                None => misses.0 += 1,
            }
            if i % 50 == 49 {
                eprintln!("  kizuna {} done", i + 1);
            }
        }
        let k_wall = t_k.elapsed().as_secs_f64();
        let t_s = Instant::now();
        for i in 0..a.latency {
            // stock BIND: the primary's answer to the signed UPDATE is "accepted"
            let name = format!("s{i}.bench-latency.example");
            dns_update(SocketAddr::from(([127, 0, 0, 1], pport)), szone, &name);
            let accepted = Instant::now();
            match until_blocked(rs, &format!("{name}."), accepted, Duration::from_secs(5)) {
                Some(d) => ss.push(d.as_secs_f64() * 1000.0),
                None => misses.1 += 1,
            }
            if i % 50 == 49 {
                eprintln!("  stock {} done", i + 1);
            }
        }
        let s_wall = t_s.elapsed().as_secs_f64();
        let (k50, k99, kmax) = (pct(&mut ks, 0.5), pct(&mut ks, 0.99), pct(&mut ks, 1.0));
        let (s50, s99, smax) = (pct(&mut ss, 0.5), pct(&mut ss, 0.99), pct(&mut ss, 1.0));
        writeln!(md, "## (a) Detection → protection latency\n").unwrap();
        writeln!(md, "{} indicators added one by one on each side; time from \"accepted\" to the resolver answering with the block. One BIND resolver per side; kizuna's run first ({k_wall:.1} s), then the stock primary's ({s_wall:.1} s).\n", a.latency).unwrap();
        writeln!(md, "| primary | p50 ms | p99 ms | max ms | not blocked within 5 s |").unwrap();
        writeln!(md, "| --- | ---: | ---: | ---: | ---: |").unwrap();
        writeln!(
            md,
            "| kizuna (SQLite store commit → poll 10 ms → NOTIFY → IXFR) | {k50:.1} | {k99:.1} | {kmax:.1} | {} |",
            misses.0
        )
        .unwrap();
        writeln!(
            md,
            "| stock BIND 9 primary (signed UPDATE answered → notify-delay 0 → IXFR) | {s50:.1} | {s99:.1} | {smax:.1} | {} |",
            misses.1
        )
        .unwrap();
        writeln!(md, "| ratio (BIND / kizuna) | {:.1}× | {:.1}× | | |\n", s50 / k50, s99 / k99).unwrap();
        eprintln!("(a) kizuna p50 {k50:.1} p99 {k99:.1} max {kmax:.1}; BIND p50 {s50:.1} p99 {s99:.1} max {smax:.1}");
        std::fs::write(&a.out, &md).ok();
    }

    // ---------- (b) 1M names ----------
    if a.names > 0 {
        big_zone(&rt, &a, tmp.path(), &mut md);
    }
    if let Some(p) = Path::new(&a.out).parent() {
        std::fs::create_dir_all(p).ok();
    }
    std::fs::write(&a.out, &md).unwrap();
    println!("{md}");
    if std::env::var_os("DNS_BENCH_KEEP").is_some() {
        let _ = tmp.keep();
    }
}

/// Seconds since midnight UTC of a BIND `print-time iso8601-utc` line
/// (`2026-12-01T10:15:20.123Z …`).
fn bind_log_time(line: &str) -> Option<f64> {
    let t = line.split_whitespace().next()?.split_once('T')?.1.trim_end_matches('Z');
    let mut p = t.split(':');
    let (h, m, s): (f64, f64, f64) = (p.next()?.parse().ok()?, p.next()?.parse().ok()?, p.next()?.parse().ok()?);
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Seconds since midnight UTC now.
fn utc_day_secs() -> f64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    d % 86_400.0
}

/// The first log line at or after `since` (seconds of day) containing every fragment: its
/// time relative to `since`.
fn log_after(log: &str, since: f64, frags: &[&str]) -> Option<f64> {
    log.lines()
        .filter(|l| frags.iter().all(|f| l.contains(f)))
        .filter_map(|l| bind_log_time(l).map(|t| t - since))
        .find(|d| *d >= -0.002)
}

fn fmt_s(o: Option<f64>) -> String {
    o.map(|v| format!("{v:.3}")).unwrap_or_else(|| "—".into())
}

fn domain_items(prefix: &str, n: usize) -> Vec<FeedItem> {
    (0..n)
        .map(|i| {
            let ind = indicator(&format!("{prefix}{i}.big.example"));
            FeedItem { key: ind.key(), indicator: ind, granularity: Granularity::Host }
        })
        .collect()
}

fn unbound_conf(dir: &Path, port: u16, ctl: u16, kzone: &str, kport: u16, fzone: &str) -> String {
    let d = dir.display();
    // DNS_BENCH_UNBOUND_ZONEFILE=1: Unbound also writes the transferred zone to disk (restarts
    // start from it), which it does after every transfer, in its one worker thread
    let kfile = if std::env::var_os("DNS_BENCH_UNBOUND_ZONEFILE").is_some() {
        format!("  zonefile: \"{d}/{kzone}.zone\"\n")
    } else {
        String::new()
    };
    let server = kizuna_testkit::unbound_server_section(dir, port, 1, "respip iterator");
    format!(
        "{server}  num-threads: 1
rpz:
  name: \"{kzone}.\"
  primary: 127.0.0.1@{kport}
{kfile}  allow-notify: 127.0.0.1
rpz:
  name: \"{fzone}.\"
  zonefile: \"{d}/{fzone}.zone\"
remote-control:
  control-enable: yes
  control-interface: 127.0.0.1
  control-port: {ctl}
  control-use-cert: no
"
    )
}

/// (b): a zone of `a.names` names (domains × `name` + `*.name`) served by kizuna; BIND 9 and
/// then Unbound as its secondary: the first AXFR, `a.changes` new domains by IXFR, and the same
/// number of changes delivered as a rewritten zone file + reload on the same resolver. BIND's
/// side is broken down from its own log (transfer completed, RPZ summary rebuilt).
fn big_zone(rt: &tokio::runtime::Runtime, a: &Args, tmp: &Path, md: &mut String) {
    let dir = tmp.join("b");
    let udir = tmp.join("b-unbound");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&udir).unwrap();
    let (kport, rport, rrndc, uport, uctl) = (free_port(), free_port(), free_port(), free_port(), free_port());
    let kzone = "rpz.big.bench";
    let fzone = "rpz.file.bench";
    let domains = a.names / 2; // name + *.name
    eprintln!("(b) building {domains} domain indicators ({} names)", domains * 2);
    let feed = Arc::new(MemoryFeed::new());
    let items = domain_items("d", domains);
    feed.upsert(items.iter().cloned());
    let t = Instant::now();
    let mut cfg = kizuna_cfg(kzone, rport, 86_400);
    cfg.zones[0].allow_transfer = vec!["127.0.0.1/32".parse().unwrap()]; // Unbound (unsigned)
    cfg.zones[0].notify_unsigned = vec![SocketAddr::from(([127, 0, 0, 1], uport))];
    let primary = start_service(rt, cfg, kport, feed.clone(), Some(feed.waker()));
    let build_s = t.elapsed().as_secs_f64();
    let mut policy = RpzPolicy::new(fzone, RpzAction::LocalData { a: Some(WARN), aaaa: None });
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
    let serial_of = |p: &kizuna_dns::Primary| p.zone(kzone).unwrap().zone.current().serial;
    // waits for the primary's new serial (published) and then for the resolver's answer
    let ixfr_round = |prefix: &str, resolver: SocketAddr| -> (f64, Option<f64>, f64) {
        let new = domain_items(prefix, a.changes);
        let last = format!("{prefix}{}.big.example.", a.changes - 1);
        let before = serial_of(&primary);
        let wall = utc_day_secs();
        let t = Instant::now();
        feed.upsert(new);
        while serial_of(&primary) == before && t.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_micros(200));
        }
        let published = t.elapsed().as_secs_f64();
        let done = until_blocked(resolver, &last, t, Duration::from_secs(300)).map(|d| d.as_secs_f64());
        (published, done, wall)
    };

    // ---- BIND 9 as the secondary ----
    // the file zone holds as many other names (the same names would make "blocked" ambiguous)
    let fitems = domain_items("e", domains);
    std::fs::write(dir.join("file.zone"), zone_file(&fitems, 1)).unwrap();
    let rpolicy = format!(
        "response-policy {{ zone \"{kzone}\"; zone \"{fzone}\"; }} max-policy-ttl 1 min-update-interval 0 qname-wait-recurse no break-dnssec yes;"
    );
    let rconf = options(&dir, rport, rrndc, &rpolicy).replace("print-time yes", "print-time iso8601-utc")
        + &secondary(kzone, kport)
        + &format!("zone \"{fzone}\" {{ type primary; file \"file.zone\"; allow-query {{ localhost; }}; }};\n");
    let want = serial_of(&primary);
    let t = Instant::now();
    let r = named(&dir, &rconf);
    let resolver = SocketAddr::from(([127, 0, 0, 1], rport));
    while soa_serial(resolver, kzone) != Some(want) && t.elapsed() < Duration::from_secs(600) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let axfr_s = t.elapsed().as_secs_f64();
    assert!(until_blocked(resolver, "d1.big.example.", Instant::now(), Duration::from_secs(120)).is_some());
    assert!(until_blocked(resolver, "e1.big.example.", Instant::now(), Duration::from_secs(120)).is_some());
    let ready_s = t.elapsed().as_secs_f64();
    let log = std::fs::read_to_string(dir.join("named.log")).unwrap_or_default();
    let xfer_line =
        log.lines().find(|l| l.contains(kzone) && l.contains("Transfer completed")).unwrap_or("").to_owned();
    eprintln!("(b) BIND: first AXFR {axfr_s:.2} s, both zones enforced {ready_s:.2} s: {xfer_line}");
    // BIND applies RPZ data to its summary after the load, in the background: wait until
    // both zones' first RPZ load is done, or the first change would queue behind it
    let settled = |log: &str, zone: &str| {
        let n = |what: &str| log.lines().filter(|l| l.contains(&format!("rpz: {zone}: {what}"))).count();
        n("reload done") >= 1 && n("reload done") >= n("reload start")
    };
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(600) {
        let log = std::fs::read_to_string(dir.join("named.log")).unwrap_or_default();
        if settled(&log, kzone) && settled(&log, fzone) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let settle_s = ready_s + t.elapsed().as_secs_f64();
    eprintln!("(b) BIND: first RPZ loads done {settle_s:.2} s after start");
    std::thread::sleep(Duration::from_millis(500));

    let (k_pub, k_done, k_wall) = ixfr_round("n", resolver);
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(dir.join("named.log")).unwrap_or_default();
    let k_xfer = log_after(&log, k_wall, &[kzone, "Transfer completed"]);
    let k_rpz_start = log_after(&log, k_wall, &["rpz: ", kzone, "reload start"]);
    let k_rpz_done =
        k_rpz_start.and_then(|s| log_after(&log, k_wall + s, &["rpz: ", kzone, "reload done"]).map(|d| d + s));
    eprintln!(
        "(b) BIND IXFR: published {k_pub:.3} s, xfer {k_xfer:?}, rpz {k_rpz_start:?}..{k_rpz_done:?}, answered {k_done:?}"
    );

    let mut all = fitems.clone();
    all.extend(domain_items("f", a.changes));
    let text = zone_file(&all, 2);
    let flast = format!("f{}.big.example.", a.changes - 1);
    let rndc_conf = dir.join("rndc.conf");
    std::fs::write(
        &rndc_conf,
        format!(
            "key \"bench\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};\n\
             options {{ default-key \"bench\"; default-server 127.0.0.1; default-port {rrndc}; }};\n"
        ),
    )
    .unwrap();
    let f_wall = utc_day_secs();
    let t = Instant::now();
    std::fs::write(dir.join("file.zone"), &text).unwrap();
    let written = t.elapsed().as_secs_f64();
    let rndc = Command::new("/usr/sbin/rndc").arg("-c").arg(&rndc_conf).args(["reload", fzone]).output();
    let rndc_ok = rndc.as_ref().map(|o| o.status.success()).unwrap_or(false);
    let reload = until_blocked(resolver, &flast, t, Duration::from_secs(600)).map(|d| d.as_secs_f64());
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(dir.join("named.log")).unwrap_or_default();
    let f_loaded = log_after(&log, f_wall, &[fzone, "loaded serial"]);
    let f_rpz_start = log_after(&log, f_wall, &["rpz: ", fzone, "reload start"]);
    let f_rpz_done =
        f_rpz_start.and_then(|s| log_after(&log, f_wall + s, &["rpz: ", fzone, "reload done"]).map(|d| d + s));
    eprintln!(
        "(b) BIND file + rndc reload (ok {rndc_ok}): loaded {f_loaded:?}, rpz {f_rpz_start:?}..{f_rpz_done:?}, answered {reload:?}"
    );
    let rss = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l[6..].trim().to_owned()))
            .unwrap_or_default()
    };
    let bind_rss = rss(r.0.id());
    drop(r);

    // ---- Unbound as the secondary (BIND stopped: one resolver at a time) ----
    std::fs::write(udir.join(format!("{fzone}.zone")), zone_file(&fitems, 1)).unwrap();
    std::fs::write(udir.join("unbound.conf"), unbound_conf(&udir, uport, uctl, kzone, kport, fzone)).unwrap();
    let t = Instant::now();
    let u = Proc(
        Command::new("/usr/sbin/unbound")
            .args(["-d", "-c"])
            .arg(udir.join("unbound.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(udir.join("unbound.stderr")).unwrap()))
            .spawn()
            .expect("unbound (scripts/setup-test-deps.sh)"),
    );
    let ures = SocketAddr::from(([127, 0, 0, 1], uport));
    let u_first = until_blocked(ures, "d1.big.example.", t, Duration::from_secs(600)).map(|d| d.as_secs_f64());
    let u_file_first = until_blocked(ures, "e2.big.example.", t, Duration::from_secs(600)).map(|d| d.as_secs_f64());
    eprintln!("(b) Unbound: first AXFR → blocking after {u_first:?} s");
    std::thread::sleep(Duration::from_secs(1));
    let (u_pub, u_done, _) = ixfr_round("u", ures);
    eprintln!("(b) Unbound IXFR: published {u_pub:.3} s, answered {u_done:?}");
    let mut uall = fitems.clone();
    uall.extend(domain_items("g", a.changes));
    let utext = zone_file(&uall, 2);
    let glast = format!("g{}.big.example.", a.changes - 1);
    let t = Instant::now();
    std::fs::write(udir.join(format!("{fzone}.zone")), &utext).unwrap();
    let uctl_out = Command::new("/usr/sbin/unbound-control")
        .arg("-c")
        .arg(udir.join("unbound.conf"))
        .args(["auth_zone_reload", &format!("{fzone}.")])
        .output();
    let uctl_ok = uctl_out.as_ref().map(|o| o.status.success()).unwrap_or(false);
    let u_reload = until_blocked(ures, &glast, t, Duration::from_secs(600)).map(|d| d.as_secs_f64());
    eprintln!("(b) Unbound file + auth_zone_reload (ok {uctl_ok}): {u_reload:?}");
    let unbound_rss = rss(u.0.id());
    drop(u);

    writeln!(md, "## (b) {}-name zone, {} changes\n", domains * 2, a.changes).unwrap();
    writeln!(md, "Seconds. \"answered\" = the resolver answers the last new name with the block. BIND rows from its log (`print-time iso8601-utc`), relative to the change.\n").unwrap();
    writeln!(md, "| step | seconds |").unwrap();
    writeln!(md, "| --- | ---: |").unwrap();
    writeln!(md, "| kizuna builds the zone from {domains} indicators | {build_s:.2} |").unwrap();
    writeln!(md, "| BIND start → first AXFR from kizuna loaded (SOA) | {axfr_s:.2} |").unwrap();
    writeln!(md, "| BIND start → first names of both zones enforced | {ready_s:.2} |").unwrap();
    writeln!(md, "| BIND start → both zones' first RPZ load done (`rpz: … reload done`) | {settle_s:.2} |").unwrap();
    writeln!(md, "| **BIND, IXFR of {} changes from kizuna** | |", a.changes).unwrap();
    writeln!(md, "| kizuna: change → new version published (NOTIFY sent) | {k_pub:.3} |").unwrap();
    writeln!(md, "| BIND: IXFR `Transfer completed` | {} |", fmt_s(k_xfer)).unwrap();
    writeln!(md, "| BIND: `rpz: … reload start` | {} |", fmt_s(k_rpz_start)).unwrap();
    writeln!(md, "| BIND: `rpz: … reload done` (RPZ summary rebuilt) | {} |", fmt_s(k_rpz_done)).unwrap();
    writeln!(md, "| answered | {} |", fmt_s(k_done)).unwrap();
    writeln!(md, "| **BIND, same changes as zone file + `rndc reload`** | |").unwrap();
    writeln!(md, "| file written ({} MB) | {written:.3} |", text.len() / 1_000_000).unwrap();
    writeln!(md, "| BIND: `loaded serial` | {} |", fmt_s(f_loaded)).unwrap();
    writeln!(md, "| BIND: `rpz: … reload start` | {} |", fmt_s(f_rpz_start)).unwrap();
    writeln!(md, "| BIND: `rpz: … reload done` | {} |", fmt_s(f_rpz_done)).unwrap();
    writeln!(md, "| answered | {} |", fmt_s(reload)).unwrap();
    if let (Some(i), Some(r)) = (k_done, reload) {
        writeln!(md, "| **BIND ratio (reload / IXFR)** | **{:.1}×** |", r / i).unwrap();
    }
    let zf = if std::env::var_os("DNS_BENCH_UNBOUND_ZONEFILE").is_some() { "with" } else { "without" };
    writeln!(md, "| **Unbound 1.17 as the secondary (BIND stopped; kizuna zone {zf} `zonefile:`)** | |").unwrap();
    writeln!(md, "| Unbound start → kizuna zone enforced (first AXFR) | {} |", fmt_s(u_first)).unwrap();
    writeln!(md, "| Unbound start → file zone enforced | {} |", fmt_s(u_file_first)).unwrap();
    writeln!(md, "| kizuna: change → new version published | {u_pub:.3} |").unwrap();
    writeln!(md, "| IXFR of {} changes → answered | {} |", a.changes, fmt_s(u_done)).unwrap();
    writeln!(md, "| same changes as zone file + `unbound-control auth_zone_reload` → answered | {} |", fmt_s(u_reload))
        .unwrap();
    if let (Some(i), Some(r)) = (u_done, u_reload) {
        writeln!(md, "| **Unbound ratio (reload / IXFR)** | **{:.1}×** |", r / i).unwrap();
    }
    writeln!(
        md,
        "\nResident memory at the end: BIND {bind_rss}, Unbound {unbound_rss}. BIND's first transfer: `{}`\n",
        xfer_line.trim()
    )
    .unwrap();
    drop(primary);
}
