//! A MISP feed fetched over HTTP from a loopback web server (Python's http.server serving a
//! feed directory, as MISP instances and feed mirrors serve theirs) and imported.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp};
use kizuna_stix::{ExportItem, ImportOptions, misp};
use kizuna_taxii::client::{self, ClientAuth};

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misp_feed_over_http_imports() {
    let inds: Vec<Indicator> = (0..30)
        .map(|n| Indicator {
            kind: IndicatorKind::Url,
            value: format!("http://phish{n}.example/login"),
            category: ClassificationType::Phishing,
            source: if n % 2 == 0 { "crawler".into() } else { "reports".into() },
            confidence: 70,
            first_seen: Timestamp::from_secs(1_772_668_800),
            last_seen: Timestamp::from_secs(1_772_668_800),
            expires: Timestamp::from_secs(1_775_260_800),
            reason: "phishing page".into(),
            malware: None,
            tlp: if n % 3 == 0 { Tlp::Clear } else { Tlp::Green },
            sharing_groups: vec![],
            legal_basis: LegalBasis::LegitimateBusiness,
        })
        .collect();
    let items: Vec<ExportItem<'_>> = inds
        .iter()
        .map(|i| ExportItem {
            indicator: i,
            created: i.first_seen,
            modified: i.first_seen,
            recipients: &[],
            provenance: None,
            purpose: None,
        })
        .collect();
    let feed = misp::export_feed(&items, "kizuna-hub-a");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("manifest.json"), feed.manifest.to_string()).expect("manifest");
    std::fs::write(dir.path().join("hashes.csv"), &feed.hashes_csv).expect("hashes");
    for (u, e) in &feed.events {
        std::fs::write(dir.path().join(format!("{u}.json")), e.to_string()).expect("event");
    }
    // one event listed in the manifest but missing on the server: reported, the rest goes on
    let mut manifest = feed.manifest.clone();
    manifest["00000000-0000-4000-8000-000000000000"] = serde_json::json!({"info": "gone"});
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).expect("manifest");

    let port = common::free_port();
    let _server = Kill(
        Command::new(common::python())
            .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string(), "--directory"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("http.server"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "http.server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let http = kizuna_testkit::http_client();
    let (events, failed) =
        client::fetch_misp_feed(&http, &format!("http://127.0.0.1:{port}/"), &ClientAuth::None).await.expect("feed");
    assert_eq!(events.len(), feed.events.len());
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].1.contains("404"), "{failed:?}");
    let opts = ImportOptions::new("misp:hub-a", Timestamp::now());
    let mut got = Vec::new();
    for (_, e) in &events {
        let r = misp::import_event(e, &opts).expect("event");
        assert!(r.rejected.is_empty());
        got.extend(r.indicators.into_iter().map(|i| (i.indicator.value, i.indicator.tlp)));
    }
    got.sort();
    let mut want: Vec<(String, Tlp)> = inds.iter().map(|i| (i.value.clone(), i.tlp)).collect();
    want.sort();
    assert_eq!(got, want);
}
