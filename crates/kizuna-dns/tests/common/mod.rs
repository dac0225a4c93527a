//! Test harness: kizuna's primary on loopback, and real BIND 9 / Unbound resolvers started
//! from generated configuration in a temporary directory (the settings docs/resolvers.md
//! recommends), queried with hickory-proto messages from chosen loopback source addresses.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdp};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use kizuna_dns::{DnsConfig, DnsMetrics, FeedItem, Primary, Service, StoreFeed, default_granularity};
use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp, canonical_value};
use kizuna_rpz::Granularity;
use kizuna_store::indicators::IndicatorStore;
use kizuna_store::sqlite::SqliteStore;

pub const KEY_NAME: &str = "isp-a-xfr";
pub const KEY_SECRET: &str = "c2VjcmV0LWtleS1mb3ItaXNwLWEteGZyLXRlc3RzLTAwMDE=";
pub const WRONG_SECRET: &str = "d3Jvbmcta2V5LWZvci1pc3AtYS14ZnItdGVzdHMtMDAwMg==";
pub const WARN_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);

/// True when the resolvers are installed (scripts/setup-test-deps.sh); tests fail loudly
/// otherwise rather than passing without checking anything.
pub fn require(bin: &str) {
    assert!(
        Path::new(bin).exists(),
        "{bin} missing: run scripts/setup-test-deps.sh (scripts/deps/dns.apt lists bind9, unbound)"
    );
}

/// A port free for both UDP and TCP on 127.0.0.1.
pub use kizuna_testkit::free_udp_tcp_port as free_port;

pub fn indicator(kind: IndicatorKind, value: &str) -> Indicator {
    let now = Timestamp::now().as_secs();
    Indicator {
        kind,
        value: canonical_value(kind, value).unwrap(),
        category: ClassificationType::MalwareDistribution,
        source: "analyst:test".into(),
        confidence: 90,
        first_seen: Timestamp::from_secs(now - 60),
        last_seen: Timestamp::from_secs(now),
        expires: Timestamp::from_secs(now + 86_400),
        reason: "test".into(),
        malware: None,
        tlp: Tlp::Green,
        sharing_groups: vec![],
        legal_basis: LegalBasis::LegitimateBusiness,
    }
}

pub fn item(kind: IndicatorKind, value: &str) -> FeedItem {
    let i = indicator(kind, value);
    FeedItem { key: i.key(), indicator: i, granularity: Granularity::Host }
}

/// kizuna's primary, running on a background runtime.
pub struct Kizuna {
    pub primary: Primary,
    /// The real indicator store the primary follows.
    pub store: Arc<SqliteStore>,
    _store_dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub http: SocketAddr,
    _rt: tokio::runtime::Runtime,
}

impl Kizuna {
    pub fn start(port: u16, config_toml: &str) -> Kizuna {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let mut cfg = DnsConfig::from_toml(config_toml).unwrap();
        cfg.listen = SocketAddr::from(([127, 0, 0, 1], port));
        let store_dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&store_dir.path().join("kizuna.db")).unwrap());
        let feed = Arc::new(StoreFeed::new(store.clone(), Box::new(default_granularity)));
        let (primary, addr, http) = rt.block_on(async {
            let udp = tokio::net::UdpSocket::bind(cfg.listen).await.unwrap();
            let tcp = tokio::net::TcpListener::bind(cfg.listen).await.unwrap();
            let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let http_addr = http.local_addr().unwrap();
            let svc = Service::new(cfg.clone(), feed.clone(), DnsMetrics::new()).unwrap();
            let primary = svc.primary.clone();
            tokio::spawn(svc.run_on(udp, tcp, Some(http)));
            (primary, cfg.listen, http_addr)
        });
        Kizuna { primary, store, _store_dir: store_dir, addr, http, _rt: rt }
    }

    /// Adds indicators to the store (committed when this returns: "accepted").
    pub fn add(&self, inds: &[Indicator]) {
        self.store.upsert_indicators(inds, Timestamp::now()).unwrap();
    }

    /// Withdraws an indicator (an analyst's false-positive decision).
    pub fn withdraw(&self, i: &Indicator) {
        self.store.withdraw_indicator(i.key(), "analyst:test", "false positive", Timestamp::now()).unwrap();
    }

    /// The Prometheus text of the primary.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.primary.metrics().registry()).unwrap();
        out
    }

    /// Sum of a metric's samples whose line contains every `needle`.
    pub fn metric(&self, name: &str, needles: &[&str]) -> f64 {
        self.metrics()
            .lines()
            .filter(|l| l.starts_with(name) && needles.iter().all(|n| l.contains(n)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn serial(&self, zone: &str) -> u32 {
        self.primary.zone(zone).unwrap().zone.current().serial
    }
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
    pub log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub const EXAMPLE_ZONE: &str = "$TTL 60
@ IN SOA ns.example. hostmaster.example. 1 60 60 600 60
@ IN NS ns.example.
ns IN A 127.0.0.1
malware IN A 198.51.100.10
www.malware IN A 198.51.100.11
iphit IN A 198.51.100.20
benign IN A 198.51.100.30
";

/// One RPZ secondary zone in BIND's configuration.
pub struct BindRpz<'a> {
    pub zone: &'a str,
    pub primary_port: u16,
    pub key: Option<(&'a str, &'a str)>,
}

/// Starts BIND 9 as a recursive resolver on 127.0.0.1:`port` with the given RPZ secondaries (in
/// `response-policy` order), a local `example.` zone for normal answers, and rndc on
/// `port+1`-free port.
pub struct Bind {
    pub proc: Proc,
    pub port: u16,
    pub dir: PathBuf,
    pub rndc_port: u16,
}

pub fn bind_conf(dir: &Path, port: u16, rndc_port: u16, rpz: &[BindRpz<'_>], serve_example: bool) -> String {
    let d = dir.display();
    let mut keys = String::new();
    let mut zones = String::new();
    let mut policy = String::new();
    for z in rpz {
        let key = match z.key {
            Some((name, secret)) => {
                if !keys.contains(&format!("key \"{name}\"")) {
                    keys.push_str(&format!("key \"{name}\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n"));
                }
                format!(" key \"{name}\"")
            }
            None => String::new(),
        };
        zones.push_str(&format!(
            "zone \"{zone}\" {{\n  type secondary;\n  primaries {{ 127.0.0.1 port {p}{key}; }};\n  file \"{zone}.db\";\n  \
             allow-notify {{ 127.0.0.1; }};\n  request-ixfr yes;\n  notify no;\n  allow-query {{ localhost; }};\n}};\n",
            zone = z.zone,
            p = z.primary_port,
        ));
        policy.push_str(&format!("    zone \"{}\";\n", z.zone));
    }
    let rp = if rpz.is_empty() {
        String::new()
    } else {
        format!(
            "  response-policy {{\n{policy}  }} max-policy-ttl 1 min-update-interval 0 qname-wait-recurse no break-dnssec yes;\n"
        )
    };
    let example = if serve_example { "zone \"example.\" { type primary; file \"example.zone\"; };\n" } else { "" };
    format!(
        "options {{
  directory \"{d}\";
  pid-file \"{d}/named.pid\";
  session-keyfile \"{d}/session.key\";
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion yes;
  allow-recursion {{ 127.0.0.0/8; }};
  allow-query {{ 127.0.0.0/8; }};
  dnssec-validation no;
  notify no;
  max-cache-ttl 60;
  serial-query-rate 1000;
{rp}}};
key \"rndc-key\" {{ algorithm hmac-sha256; secret \"{KEY_SECRET}\"; }};
controls {{ inet 127.0.0.1 port {rndc_port} allow {{ 127.0.0.1; }} keys {{ \"rndc-key\"; }}; }};
{keys}logging {{
  channel main {{ file \"{d}/named.log\"; severity info; print-time yes; print-category yes; print-severity yes; }};
  channel xfer {{ file \"{d}/named.log\"; severity debug 3; print-time yes; print-category yes; print-severity yes; }};
  category default {{ main; }};
  category xfer-in {{ xfer; }};
  category notify {{ main; }};
  category rpz {{ main; }};
  category general {{ main; }};
}};
{example}{zones}"
    )
}

impl Bind {
    pub fn start(dir: &Path, port: u16, rpz: &[BindRpz<'_>]) -> Bind {
        require("/usr/sbin/named");
        std::fs::write(dir.join("example.zone"), EXAMPLE_ZONE).unwrap();
        let rndc_port = free_port();
        std::fs::write(dir.join("named.conf"), bind_conf(dir, port, rndc_port, rpz, true)).unwrap();
        std::fs::write(
            dir.join("rndc.conf"),
            format!(
                "key \"rndc-key\" {{ algorithm hmac-sha256; secret \"{KEY_SECRET}\"; }};\n\
                 options {{ default-key \"rndc-key\"; default-server 127.0.0.1; default-port {rndc_port}; }};\n"
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/named")
            .args(["-f", "-n", "1", "-c"])
            .arg(dir.join("named.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.join("named.stderr")).unwrap()))
            .spawn()
            .unwrap();
        let b = Bind {
            proc: Proc { child, name: "named", log: dir.join("named.log") },
            port,
            dir: dir.to_owned(),
            rndc_port,
        };
        let addr = b.addr();
        let ok = wait_until(Duration::from_secs(20), || {
            query(addr, IpAddr::V4(Ipv4Addr::LOCALHOST), "benign.example.", RecordType::A).is_some()
        });
        assert!(
            ok,
            "named did not start: {}\n{}",
            b.proc.log_text(),
            std::fs::read_to_string(dir.join("named.stderr")).unwrap_or_default()
        );
        b
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn rndc(&self, args: &[&str]) -> String {
        let out = Command::new("/usr/sbin/rndc").arg("-c").arg(self.dir.join("rndc.conf")).args(args).output().unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    /// Serial of a zone as BIND holds it (SOA query to BIND itself).
    pub fn serial(&self, zone: &str) -> Option<u32> {
        let m = query(self.addr(), IpAddr::V4(Ipv4Addr::LOCALHOST), zone, RecordType::SOA)?;
        m.answers.iter().find_map(|r| match &r.data {
            RData::SOA(s) => Some(s.serial),
            _ => None,
        })
    }
}

/// Sends one query (RD=1) from `src` and returns the parsed response.
pub fn query(server: SocketAddr, src: IpAddr, name: &str, rtype: RecordType) -> Option<Message> {
    let sock = StdUdp::bind(SocketAddr::new(src, 0)).ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    let mut q = Query::new();
    q.name = Name::from_ascii(name).ok()?;
    q.query_type = rtype;
    m.add_query(q);
    let id = m.metadata.id;
    sock.send_to(&m.to_vec().ok()?, server).ok()?;
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        if let Ok(r) = Message::from_vec(&buf[..n])
            && r.metadata.id == id
        {
            return Some(r);
        }
    }
    None
}

fn rand_id() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(Instant::now()) & 0xffff) as u16
}

/// The A addresses in an answer.
pub fn a_records(m: &Message) -> Vec<Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// Resolves `name` A at `server` from `src`.
pub fn resolve_a(server: SocketAddr, src: IpAddr, name: &str) -> Vec<Ipv4Addr> {
    query(server, src, name, RecordType::A).map(|m| a_records(&m)).unwrap_or_default()
}

pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `name` resolves to exactly `want`; returns the time it took.
pub fn wait_for_answer(
    server: SocketAddr,
    src: IpAddr,
    name: &str,
    want: &[Ipv4Addr],
    limit: Duration,
) -> Option<Duration> {
    let t = Instant::now();
    wait_until(limit, || resolve_a(server, src, name) == want).then(|| t.elapsed())
}

/// A kizuna config for one member zone, TSIG-protected, notifying `notify`.
pub fn kizuna_config(zone: &str, notify: &[SocketAddr], extra_zones: &str) -> String {
    let n: Vec<String> = notify.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "poll_interval_ms = 20
[notify]
first_retry_ms = 200
max_retry_ms = 2000
[[keys]]
name = \"{KEY_NAME}\"
secret = \"{KEY_SECRET}\"
[[zones]]
member = \"isp-a\"
key = \"{KEY_NAME}\"
notify = [{n}]
[zones.policy]
zone_name = \"{zone}\"
ttl = 5
action = {{ type = \"local-data\", a = \"{WARN_V4}\" }}
{extra_zones}",
        n = n.join(", ")
    )
}
