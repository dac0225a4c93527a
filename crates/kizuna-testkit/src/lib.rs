//! Helpers shared by kizuna's integration tests (a dev-dependency only; nothing ships it).

use std::path::{Path, PathBuf};

pub mod medallion;

/// The virtual environment `scripts/setup-test-deps.sh` fills with the Python peers
/// (medallion, taxii2-client, stix2, PyMISP, aiosmtpd…); `KIZUNA_TEST_VENV` overrides it.
pub fn venv() -> PathBuf {
    std::env::var_os("KIZUNA_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-test"))
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .expect("local address")
        .port()
}

/// A port free for both UDP and TCP on 127.0.0.1 a moment ago (DNS servers bind both).
pub fn free_udp_tcp_port() -> u16 {
    for _ in 0..100 {
        let t = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let p = t.local_addr().expect("local address").port();
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

/// The `server:` section of an Unbound resolver for tests and benchmarks: loopback only on
/// `port`, everything (pid, log) under `dir`, no privileges dropped, localhost queries allowed
/// (the peers are on loopback), the given `verbosity` and `module-config` (e.g. `"respip
/// iterator"` for RPZ). Callers append their own lines and sections.
pub fn unbound_server_section(dir: &std::path::Path, port: u16, verbosity: u8, modules: &str) -> String {
    let d = dir.display();
    format!(
        "server:
  interface: 127.0.0.1@{port}
  port: {port}
  do-ip6: no
  username: \"\"
  chroot: \"\"
  directory: \"{d}\"
  pidfile: \"{d}/unbound.pid\"
  use-syslog: no
  logfile: \"{d}/unbound.log\"
  log-time-ascii: yes
  verbosity: {verbosity}
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: \"{modules}\"
"
    )
}

/// Installs the process-wide rustls provider (ring). With the workspace's features unified,
/// reqwest is built with `rustls-no-provider`, and building any client panics without one.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A plain-HTTP client for talking to servers a test started on loopback.
pub fn http_client() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::new()
}

/// The same, not following redirects (to check where a server sends the browser).
pub fn http_client_no_redirect() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client without TLS settings always builds")
}

/// The value of cookie `name` among a response's `Set-Cookie` headers.
pub fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(name)?.strip_prefix('=').and_then(|v| v.split(';').next()).map(str::to_owned))
}

/// Logs in to a kizuna console (the hub's or an agent's) at `base` the way a browser does: the
/// login form's CSRF cookie, then the form post. Returns the answer's status (303 on success)
/// and the session cookie it set.
pub async fn console_login(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    password: &str,
) -> (reqwest::StatusCode, Option<String>) {
    let r = http.get(format!("{base}/console/login")).send().await.expect("login form");
    assert_eq!(r.status(), reqwest::StatusCode::OK, "login form");
    let csrf = set_cookie(&r, "kizuna_login_csrf").expect("login CSRF cookie");
    let r = http
        .post(format!("{base}/console/login"))
        .header(reqwest::header::COOKIE, format!("kizuna_login_csrf={csrf}"))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&name={name}&password={password}"))
        .send()
        .await
        .expect("login post");
    (r.status(), set_cookie(&r, "kizuna_console"))
}

/// `tests/browser` with playwright-core installed (`scripts/setup-test-deps.sh` runs `npm ci`
/// there; if a test runs before it did, the first test to get here installs it while the others
/// wait), after checking that Debian's Chromium is present. Never downloads a browser.
pub fn playwright_dir() -> PathBuf {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run scripts/setup-test-deps.sh (scripts/deps/console.apt)"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    let installed = || dir.join("node_modules/playwright-core/package.json").exists();
    let lock = dir.join(".npm-install.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while !installed() {
        if std::fs::create_dir(&lock).is_ok() {
            let st = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
                .status();
            let _ = std::fs::remove_dir(&lock);
            assert!(st.expect("run npm ci (is npm installed?)").success(), "npm ci in tests/browser failed");
        } else {
            assert!(std::time::Instant::now() < deadline, "waited too long for another test's npm ci");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    dir
}
