//! The TAXII client over HTTPS: kizuna's own TAXII router served with rustls on loopback, with
//! a CA and server certificate made by rcgen in the test. With the operator's CA file the poll
//! works; with another CA, with no CA file (web PKI roots only) or with a URL whose host name
//! the certificate does not carry, the poll is refused with a TLS error that says so.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kizuna_model::Tlp;
use kizuna_policy::{OwnedLabels, Recipient, RecipientKind};
use kizuna_taxii::client::{self, ClientAuth, ClientError, PollState, RemoteCollection};
use kizuna_taxii::server::secret_hash;
use kizuna_taxii::{
    CollectionInfo, Credential, MemoryStore, NewObject, ObjectStore, Partner, StaticDirectory, TaxiiConfig, TaxiiServer,
};
use serde_json::json;

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki(ca_name: &str, names: &[&str]) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, ca_name);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
    let params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).expect("params");
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca).expect("cert");
    Pki { ca_pem: ca.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
}

/// kizuna's TAXII router behind rustls on a loopback port; returns the port.
async fn serve_tls(p: &Pki, server: Arc<TaxiiServer>) -> u16 {
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(p.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("cert pem");
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(p.key_pem.as_bytes()).expect("key pem");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server cert");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = kizuna_taxii::router::<()>(server);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
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
    port
}

fn taxii_server() -> Arc<TaxiiServer> {
    let store = MemoryStore::new();
    store
        .put_collection(&CollectionInfo {
            id: "feed".into(),
            title: "partner feed".into(),
            description: String::new(),
            default_labels: OwnedLabels { tlp: Tlp::Green, ..OwnedLabels::default() },
            no_echo: false,
        })
        .expect("collection");
    let objects = (0..7)
        .map(|i| NewObject {
            object: json!({
                "type": "indicator", "spec_version": "2.1",
                "id": format!("indicator--{i:08x}-0000-4000-8000-000000000001"),
                "created": "2026-03-05T00:00:00.000Z", "modified": "2026-03-05T00:00:00.000Z",
                "pattern": format!("[domain-name:value = 'tls{i}.bad.example']"), "pattern_type": "stix",
                "valid_from": "2026-03-05T00:00:00.000Z",
                "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]
            }),
            labels: OwnedLabels { tlp: Tlp::Green, ..OwnedLabels::default() },
        })
        .collect();
    store.add("feed", objects, 1_772_700_000_000_000).expect("add");
    let directory = StaticDirectory {
        entries: vec![(
            Credential::Basic { user: "hub-b".into(), password_sha256: secret_hash("tls-pw") },
            Partner {
                recipient: Recipient::new("hub-b", RecipientKind::Partner),
                can_read: BTreeSet::from(["*".to_owned()]),
                can_write: BTreeSet::new(),
            },
        )],
    };
    Arc::new(TaxiiServer { config: TaxiiConfig::default(), store: Arc::new(store), directory: Arc::new(directory) })
}

fn collection(host: &str, port: u16) -> RemoteCollection {
    RemoteCollection {
        url: format!("https://{host}:{port}/taxii2/kizuna/collections/feed/"),
        auth: ClientAuth::Basic { user: "hub-b".into(), password: "tls-pw".into() },
        limit: 3,
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_over_https_with_the_operator_ca_and_refuses_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = pki("partner CA", &["127.0.0.1", "localhost"]);
    let other = pki("some other CA", &["127.0.0.1", "localhost"]);
    let impostor = pki("partner CA", &["127.0.0.1", "localhost"]);
    let port = serve_tls(&good, taxii_server()).await;
    let ca = write(dir.path(), "partner-ca.pem", &good.ca_pem);
    let wrong_ca = write(dir.path(), "other-ca.pem", &other.ca_pem);
    let t = Duration::from_secs(10);

    // the right CA: all seven objects, in three pages, over TLS
    let http = client::http_client(Some(&ca), t).expect("client");
    let got = client::poll(&http, &collection("127.0.0.1", port), &PollState::default()).await.expect("https poll");
    assert_eq!(got.objects.len(), 7);
    assert_eq!(got.pages, 3);
    // and by name (the certificate carries localhost too)
    let by_name = client::poll(&http, &collection("localhost", port), &PollState::default()).await.expect("by name");
    assert_eq!(by_name.objects.len(), 7);

    // another CA: refused, and the error says it is the certificate
    let http_wrong = client::http_client(Some(&wrong_ca), t).expect("client");
    let e = client::poll(&http_wrong, &collection("127.0.0.1", port), &PollState::default())
        .await
        .expect_err("untrusted certificate must be refused");
    let msg = e.to_string();
    assert!(matches!(e, ClientError::Tls { .. }), "{msg}");
    assert!(msg.contains("UnknownIssuer") && msg.contains("ca_file"), "{msg}");

    // a CA of the same name but another key: the signature does not verify
    let impostor_ca = write(dir.path(), "impostor-ca.pem", &impostor.ca_pem);
    let http_imp = client::http_client(Some(&impostor_ca), t).expect("client");
    let e = client::poll(&http_imp, &collection("127.0.0.1", port), &PollState::default()).await.expect_err("impostor");
    assert!(matches!(e, ClientError::Tls { .. }) && e.to_string().contains("BadSignature"), "{e}");

    // no CA file: the web PKI roots do not vouch for a private CA either
    let http_public = client::http_client(None, t).expect("client");
    let e =
        client::poll(&http_public, &collection("127.0.0.1", port), &PollState::default()).await.expect_err("web PKI");
    assert!(matches!(e, ClientError::Tls { .. }), "{e}");

    // the right CA but a certificate for other names: host name verification refuses it
    let elsewhere = pki("partner CA 2", &["taxii.partner.example"]);
    let port2 = serve_tls(&elsewhere, taxii_server()).await;
    let ca2 = write(dir.path(), "elsewhere-ca.pem", &elsewhere.ca_pem);
    let http2 = client::http_client(Some(&ca2), t).expect("client");
    let e = client::poll(&http2, &collection("127.0.0.1", port2), &PollState::default())
        .await
        .expect_err("name mismatch must be refused");
    assert!(matches!(e, ClientError::Tls { .. }) && e.to_string().contains("not valid for name"), "{e}");

    // a CA file that is not PEM is a configuration error, reported with its path
    let junk = write(dir.path(), "junk.pem", "not a certificate\n");
    let e = client::http_client(Some(&junk), t).expect_err("junk CA file");
    assert!(e.to_string().contains("junk.pem"), "{e}");
    let missing = dir.path().join("missing.pem");
    assert!(client::http_client(Some(&missing), t).is_err());
}
