//! Real peers for the agent's tests: a kizuna hub on loopback (real SQLite store, real HTTP),
//! a recording TCP proxy in front of it, an aiosmtpd MTA with STARTTLS and AUTH, and
//! FreeRADIUS-format detail files.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use kizuna_hub::{Hub, HubConfig, IngestSettings, SensorConfig, tokens};
use kizuna_model::{IpNet, Timestamp};
use kizuna_store::sqlite::SqliteStore;
use kizuna_store::{MemberSpec, Store};

/// A hub on loopback.
pub struct TestHub {
    pub addr: SocketAddr,
    pub store: Arc<SqliteStore>,
    pub db_path: PathBuf,
    pub sensor_token: String,
    pub sensor_hash: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Tokens of a fresh hub database.
pub struct HubSetup {
    pub member_token: String,
    pub sensor_token: String,
    pub sensor_hash: String,
}

/// Creates a hub database with member `isp-a` (192.0.2.0/24, 2001:db8:a::/48) and returns its
/// tokens.
pub fn setup_hub_db(db: &Path) -> HubSetup {
    let store = SqliteStore::open(db).expect("open hub store");
    let net = |s: &str| s.parse::<IpNet>().expect("net");
    let a = store
        .add_member(
            &MemberSpec {
                name: "isp-a".into(),
                display_name: "ISP A".into(),
                prefixes: vec![net("192.0.2.0/24"), net("2001:db8:a::/48")],
                ..Default::default()
            },
            Timestamp::now(),
        )
        .expect("member");
    let t = tokens::issue().expect("token");
    store.add_token(a.id, t.hash, "agent", &t.prefix, Timestamp::now()).expect("token");
    let sensor = tokens::issue().expect("sensor token");
    HubSetup { member_token: t.secret, sensor_hash: tokens::hash_hex(&sensor.secret), sensor_token: sensor.secret }
}

impl TestHub {
    /// Starts a hub over `db` on `addr` (port 0: any).
    pub async fn start(db: &Path, setup: &HubSetup, addr: SocketAddr) -> TestHub {
        let store = Arc::new(SqliteStore::open(db).expect("open hub store"));
        let config = HubConfig {
            listen: addr,
            sensors: vec![SensorConfig { name: "honeypot-1".into(), token_sha256: setup.sensor_hash.clone() }],
            ..HubConfig::default()
        };
        let hub = Hub::new(store.clone(), config, IngestSettings::default()).expect("hub");
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind hub");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = hub
                .serve(listener, async {
                    let _ = rx.await;
                })
                .await;
        });
        TestHub {
            addr,
            store,
            db_path: db.to_path_buf(),
            sensor_token: setup.sensor_token.clone(),
            sensor_hash: setup.sensor_hash.clone(),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the hub and waits until it no longer serves.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Pushes IntelMQ event lines as the sensor.
    pub async fn ingest(&self, lines: &[String]) -> serde_json::Value {
        let r = http()
            .post(format!("{}/api/v1/ingest?format=intelmq&name=test.jsonl", self.base()))
            .bearer_auth(&self.sensor_token)
            .body(lines.join("\n"))
            .send()
            .await
            .expect("ingest");
        assert_eq!(r.status(), 200, "ingest: {:?}", r.text().await);
        r.json().await.expect("json")
    }
}

/// A plain HTTP client (installs the ring crypto provider for reqwest's rustls first).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("http client")
}

/// One IntelMQ event line: an infected host talking to a sinkhole.
pub fn event(ip: &str, port: u16, at: &str, family: &str, n: u32) -> String {
    serde_json::json!({
        "feed.name": "Sinkhole-Events",
        "feed.provider": "Shadowserver",
        "classification.taxonomy": "malicious-code",
        "classification.type": "infected-system",
        "malware.name": family,
        "source.ip": ip,
        "source.port": port,
        "destination.ip": "203.0.113.250",
        "destination.port": 80 + (n % 3) as u16,
        "protocol.transport": "tcp",
        "time.source": at,
        "event_description.text": format!("sinkhole connection {n}"),
    })
    .to_string()
}

/// A loopback TCP proxy that records every byte clients send through it.
pub struct RecordingProxy {
    pub addr: SocketAddr,
    pub sent: Arc<Mutex<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RecordingProxy {
    pub async fn start(upstream: Arc<Mutex<SocketAddr>>) -> RecordingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let sent = Arc::new(Mutex::new(Vec::new()));
        let rec = sent.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                let up = *upstream.lock().expect("lock");
                let rec = rec.clone();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let Ok(mut server) = tokio::net::TcpStream::connect(up).await else { return };
                    let (mut cr, mut cw) = client.split();
                    let (mut sr, mut sw) = server.split();
                    let to_server = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            rec.lock().expect("lock").extend_from_slice(&buf[..n]);
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let to_client = async {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(to_server, to_client);
                });
            }
        });
        RecordingProxy { addr, sent, task }
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.sent.lock().expect("lock").clone()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A test CA and a server certificate for 127.0.0.1 signed by it.
pub struct TestPki {
    pub ca_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

pub fn make_pki(dir: &Path) -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "kizuna test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
    let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("params");
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca).expect("cert");
    let pki =
        TestPki { ca_pem: dir.join("ca.pem"), cert_pem: dir.join("mta-cert.pem"), key_pem: dir.join("mta-key.pem") };
    std::fs::write(&pki.ca_pem, ca.pem()).expect("write ca");
    std::fs::write(&pki.cert_pem, cert.pem()).expect("write cert");
    std::fs::write(&pki.key_pem, key.serialize_pem()).expect("write key");
    pki
}

fn venv_python() -> PathBuf {
    if let Ok(v) = std::env::var("KIZUNA_TEST_VENV") {
        return PathBuf::from(v).join("bin/python");
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-test/bin/python")
}

/// aiosmtpd with STARTTLS required and AUTH, writing messages into a directory.
pub struct Mta {
    pub port: u16,
    pub dir: PathBuf,
    pub user: String,
    pub password: String,
    child: Child,
}

impl Mta {
    pub fn start(dir: &Path, pki: &TestPki) -> Mta {
        Self::start_on(dir, pki, None)
    }

    /// On a given port (to restart an MTA where the agent expects it).
    pub fn start_on(dir: &Path, pki: &TestPki, port: Option<u16>) -> Mta {
        let out = dir.join("mail");
        std::fs::create_dir_all(&out).expect("mail dir");
        let (user, password) = ("agent".to_string(), "s3cret-pw".to_string());
        let py = venv_python();
        assert!(py.exists(), "{} missing: run scripts/setup-test-deps.sh", py.display());
        let mut child = Command::new(py)
            // From this crate or a sibling that includes this module (crates/kizuna/tests).
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../kizuna-isp/tests/mta.py"))
            .arg(&out)
            .arg(&pki.cert_pem)
            .arg(&pki.key_pem)
            .arg(&user)
            .arg(&password)
            .args(port.map(|p| p.to_string()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start aiosmtpd");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read READY");
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("aiosmtpd did not start: {line:?}"));
        Mta { port, dir: out, user, password, child }
    }

    /// Messages received so far: (raw bytes, envelope JSON), in arrival order.
    pub fn messages(&self) -> Vec<(Vec<u8>, serde_json::Value)> {
        let mut out = Vec::new();
        for n in 1.. {
            let eml = self.dir.join(format!("{n}.eml"));
            if !eml.exists() {
                break;
            }
            let meta: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(self.dir.join(format!("{n}.json"))).expect("meta"))
                    .expect("json");
            out.push((std::fs::read(eml).expect("eml"), meta));
        }
        out
    }
}

impl Drop for Mta {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes FreeRADIUS 3.2 accounting detail records (the format `rlm_detail` writes).
pub struct Detail(pub String);

impl Detail {
    pub fn new() -> Detail {
        Detail(String::new())
    }

    /// One record; `at` in Unix seconds (header and Event-Timestamp in UTC).
    #[allow(clippy::too_many_arguments)]
    pub fn record(&mut self, status: &str, at: i64, user: &str, session: &str, ip: &str, nas: &str) -> &mut Self {
        let t = Timestamp::from_secs(at).to_datetime();
        self.0.push_str(&format!(
            "{}\n\tAcct-Status-Type = {status}\n\tUser-Name = \"{user}\"\n\tAcct-Session-Id = \"{session}\"\n\t\
             NAS-IP-Address = {nas}\n\tFramed-IP-Address = {ip}\n\tEvent-Timestamp = \"{} UTC\"\n\t\
             Acct-Unique-Session-Id = \"{:x}\"\n\tTimestamp = {at}\n\n",
            t.format("%a %b %e %H:%M:%S %Y"),
            t.format("%b %e %Y %H:%M:%S"),
            at
        ));
        self
    }

    pub fn write(&self, path: &Path) {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).expect("dir");
        }
        std::fs::write(path, &self.0).expect("write detail");
    }
}

/// Seconds of an RFC 3339 time.
pub fn secs(s: &str) -> i64 {
    Timestamp::parse(s).expect("time").as_secs()
}
