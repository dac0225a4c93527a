//! medallion, the OASIS reference TAXII 2.1 server (PyPI, in the test venv), as a real peer on a
//! loopback port: the partner collection kizuna polls in tests.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The user medallion is started with (HTTP Basic).
pub const USER: &str = "admin";
/// Its password.
pub const PASSWORD: &str = "Password0";

/// A running medallion (memory backend), killed on drop.
pub struct Medallion {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The loopback port.
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Medallion {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Medallion {
    /// Starts medallion's memory backend on `data` (its data-file layout, e.g. from
    /// [`one_collection`]) with [`USER`]/[`PASSWORD`] and pages of at most `max_page_size`;
    /// returns once it accepts connections.
    pub fn start(data: &Value, max_page_size: usize) -> Medallion {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_path = dir.path().join("data.json");
        std::fs::write(&data_path, data.to_string()).expect("write medallion data");
        let conf = json!({
            "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                        "filename": data_path.to_str().expect("utf-8 temp path")},
            "users": {USER: PASSWORD},
            "taxii": {"max_page_size": max_page_size}
        });
        let conf_path = dir.path().join("medallion.json");
        std::fs::write(&conf_path, conf.to_string()).expect("write medallion config");
        let port = crate::free_port();
        let child = Command::new(crate::venv().join("bin/medallion"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--log-level", "WARN"])
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start medallion (run scripts/setup-test-deps.sh)");
        let mut m = Medallion { base: format!("http://127.0.0.1:{port}"), port, child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = m.child.try_wait() {
                panic!("medallion exited with {status} before listening on {port}");
            }
            assert!(Instant::now() < deadline, "medallion did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        m
    }
}

/// medallion data with one API root `tg` holding one read/write collection `id` of `objects`,
/// each added a second after the previous one (from 2026-03-05T01:00:00Z).
pub fn one_collection(id: &str, objects: &[Value]) -> Value {
    let manifest: Vec<Value> = objects
        .iter()
        .enumerate()
        .map(|(i, o)| {
            json!({"id": o["id"], "version": o["modified"], "media_type": "application/stix+json;version=2.1",
                   "date_added": format!("2026-03-05T01:{:02}:{:02}.000000Z", (i / 60) % 60, i % 60)})
        })
        .collect();
    json!({
        "/discovery": {"title": "partner", "default": "http://127.0.0.1/tg/", "api_roots": []},
        "tg": {
            "information": {"title": "partner root", "versions": ["application/taxii+json;version=2.1"],
                            "max_content_length": 10_485_760},
            "status": [],
            "collections": [{"id": id, "title": "partner indicators", "can_read": true, "can_write": true,
                             "media_types": ["application/stix+json;version=2.1"], "objects": objects,
                             "manifest": manifest}]
        }
    })
}

/// A TLP:GREEN STIX 2.1 domain indicator numbered `i`, for `h{i}.{zone}`.
pub fn domain_indicator(i: usize, zone: &str) -> Value {
    let t = format!("2026-03-05T00:{:02}:{:02}.000Z", (i / 60) % 60, i % 60);
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--{:08x}-0000-4000-8000-{:012x}", i, i),
        "created": t, "modified": t,
        "pattern": format!("[domain-name:value = 'h{i}.{zone}']"),
        "pattern_type": "stix", "valid_from": t, "valid_until": "2099-01-01T00:00:00.000Z",
        "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]
    })
}
