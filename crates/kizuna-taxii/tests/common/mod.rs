//! Shared test helpers: the test venv's Python, free loopback ports, servers.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use kizuna_taxii::{Directory, ObjectStore, TaxiiConfig, TaxiiServer};
#[allow(unused_imports)] // each test binary uses its own part of this module
pub use kizuna_testkit::medallion::Medallion;
#[allow(unused_imports)]
pub use kizuna_testkit::{free_port, venv};

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

/// Starts medallion's memory backend on `data` (its JSON data file layout) with user
/// admin/Password0.
pub fn medallion(data: &serde_json::Value, max_page_size: usize) -> Medallion {
    Medallion::start(data, max_page_size)
}
