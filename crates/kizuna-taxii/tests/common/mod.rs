//! Shared test helpers: the test venv's Python, free loopback ports, servers.
#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kizuna_taxii::{Directory, ObjectStore, TaxiiConfig, TaxiiServer};

pub fn venv() -> PathBuf {
    std::env::var_os("KIZUNA_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-test"))
}

pub fn python() -> PathBuf {
    let py = venv().join("bin/python");
    assert!(py.exists(), "{} missing: run scripts/setup-test-deps.sh", py.display());
    py
}

/// Runs a Python script with args; returns stdout (panics with stderr on failure).
pub fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python()).arg("-c").arg(script).args(args).output().expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A kizuna TAXII server on a loopback port, running on its own runtime thread.
pub struct Running {
    pub base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn start(config: TaxiiConfig, store: Arc<dyn ObjectStore>, directory: Arc<dyn Directory>) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = Arc::new(TaxiiServer { config, store, directory });
    tokio::spawn(kizuna_taxii::server::serve(server, listener, async {
        let _ = rx.await;
    }));
    Running { base, _stop: tx }
}

/// medallion (the OASIS reference TAXII server) on a loopback port, killed on drop.
pub struct Medallion {
    pub base: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Medallion {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts medallion's memory backend on `data` (its JSON data file layout) with user
/// admin/Password0.
pub fn medallion(data: &serde_json::Value, max_page_size: usize) -> Medallion {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_path = dir.path().join("data.json");
    std::fs::write(&data_path, data.to_string()).expect("data");
    let conf = serde_json::json!({
        "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                    "filename": data_path.to_str().expect("path")},
        "users": {"admin": "Password0"},
        "taxii": {"max_page_size": max_page_size}
    });
    let conf_path = dir.path().join("medallion.json");
    std::fs::write(&conf_path, conf.to_string()).expect("conf");
    let port = free_port();
    let child = Command::new(venv().join("bin/medallion"))
        .arg("--host")
        .arg("127.0.0.1")
        .arg("--port")
        .arg(port.to_string())
        .arg("--log-level")
        .arg("WARN")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start medallion (run scripts/setup-test-deps.sh)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "medallion did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Medallion { base: format!("http://127.0.0.1:{port}"), child, _dir: dir }
}
