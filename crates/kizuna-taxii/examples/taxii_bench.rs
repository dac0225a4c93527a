//! Benchmark server: N generated indicators in one collection, served by kizuna's TAXII server
//! (memory object store), and the same objects written as a medallion memory-backend data file
//! so both servers hold identical collections.
//!
//! `taxii_bench --objects 100000 --medallion-data DIR/data.json [--medallion-objects M]
//! [--listen 127.0.0.1:0]` (medallion's file holds the first M objects, default all)
//! prints `READY <base-url>` and serves until killed. Credentials: bench / bench-password.

use std::io::Write as _;
use std::sync::Arc;

use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp};
use kizuna_policy::{OwnedLabels, Recipient, RecipientKind};
use kizuna_stix::{ExportItem, ExportOptions};
use kizuna_taxii::server::secret_hash;
use kizuna_taxii::{
    CollectionInfo, Credential, MemoryStore, NewObject, ObjectStore, Partner, StaticDirectory, TaxiiConfig, TaxiiServer,
};

const COLLECTION: &str = "2d3c7b10-5d1a-4a59-9b55-1e6f3c0a9b01";

fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter().position(|x| x == name).and_then(|i| a.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = arg("--objects").map(|s| s.parse()).transpose()?.unwrap_or(100_000);
    let data_path = arg("--medallion-data").ok_or("--medallion-data PATH is required")?;
    let listen = arg("--listen").unwrap_or_else(|| "127.0.0.1:0".into());
    let m: usize = arg("--medallion-objects").map(|s| s.parse()).transpose()?.unwrap_or(n).min(n);
    let opts = ExportOptions::new("kizuna-bench");
    let store = MemoryStore::new();
    store.put_collection(&CollectionInfo {
        id: COLLECTION.into(),
        title: "bench indicators".into(),
        description: String::new(),
        default_labels: OwnedLabels { tlp: Tlp::Green, ..OwnedLabels::default() },
        no_echo: false,
    })?;
    let t0 = Timestamp::from_secs(1_772_668_800);
    let mut objects = Vec::with_capacity(n);
    let mut manifest = Vec::with_capacity(n);
    for i in 0..n {
        let (kind, value) = match i % 3 {
            0 => (IndicatorKind::Domain, format!("h{i}.bad{}.example", i % 997)),
            1 => (IndicatorKind::Url, format!("http://site{}.example/p/{i}.php", i % 5003)),
            _ => (
                IndicatorKind::Ip,
                format!("{}.{}.{}.{}/32", 10 + (i >> 24) % 200, (i >> 16) & 255, (i >> 8) & 255, i & 255),
            ),
        };
        let ind = Indicator {
            kind,
            value,
            category: ClassificationType::MalwareDistribution,
            source: "bench".into(),
            confidence: 70,
            first_seen: t0,
            last_seen: t0,
            expires: Timestamp::from_secs(1_775_260_800),
            reason: "generated for the TAXII benchmark".into(),
            malware: None,
            tlp: Tlp::Green,
            sharing_groups: vec![],
            legal_basis: LegalBasis::LegitimateBusiness,
        };
        let item =
            ExportItem { indicator: &ind, created: t0, modified: t0, recipients: &[], provenance: None, purpose: None };
        let o = kizuna_stix::export::indicator_object(&item, &opts);
        let added = Timestamp::from_micros(t0.as_micros() + i as i64 * 1000);
        manifest.push(serde_json::json!({
            "id": o["id"], "date_added": kizuna_stix::stix_time_micros(added),
            "version": o["modified"], "media_type": "application/stix+json;version=2.1"
        }));
        store.add(
            COLLECTION,
            vec![NewObject { object: o.clone(), labels: OwnedLabels { tlp: Tlp::Green, ..OwnedLabels::default() } }],
            added.as_micros(),
        )?;
        if i < m {
            objects.push(o);
        }
    }
    manifest.truncate(m);
    let data = serde_json::json!({
        "/discovery": {"title": "medallion bench", "default": "http://127.0.0.1/bench/", "api_roots": []},
        "bench": {
            "information": {"title": "bench", "versions": ["application/taxii+json;version=2.1"], "max_content_length": 10485760},
            "status": [],
            "collections": [{
                "id": COLLECTION, "title": "bench indicators", "can_read": true, "can_write": true,
                "media_types": ["application/stix+json;version=2.1"], "objects": objects, "manifest": manifest
            }]
        }
    });
    std::fs::write(&data_path, data.to_string())?;
    let directory = StaticDirectory {
        entries: vec![(
            Credential::Basic { user: "bench".into(), password_sha256: secret_hash("bench-password") },
            Partner {
                recipient: Recipient::new("bench-partner", RecipientKind::Partner),
                can_read: ["*".to_owned()].into(),
                can_write: Default::default(),
            },
        )],
    };
    let config = TaxiiConfig { api_root: "bench".into(), max_limit: 1000, ..TaxiiConfig::default() };
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("READY {base}");
    std::io::stdout().flush()?;
    let server = Arc::new(TaxiiServer { config, store: Arc::new(store), directory: Arc::new(directory) });
    kizuna_taxii::server::serve(server, listener, std::future::pending()).await?;
    Ok(())
}
