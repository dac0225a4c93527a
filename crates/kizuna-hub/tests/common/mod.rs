//! Shared by the hub's integration tests (each test binary uses part of it).
#![allow(dead_code)]

use kizuna_hub::sharing;
use kizuna_model::Timestamp;
use kizuna_store::sharing::{CredentialKind, CredentialRecord, PartnerSpec, PartyKind, SharingStore};

/// Registers a partner in `groups` that may read the hub's indicators collection over TAXII with
/// HTTP Basic `name` / `password` (stored hashed).
pub fn reading_partner(store: &dyn SharingStore, name: &str, groups: &[&str], password: &str) {
    store
        .add_partner(
            &PartnerSpec {
                name: name.into(),
                kind: PartyKind::Partner,
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                tlp_max: None,
                can_read: vec![sharing::INDICATORS_COLLECTION.into()],
                can_write: vec![],
            },
            Timestamp::now(),
        )
        .expect("partner");
    store
        .add_partner_credential(&CredentialRecord {
            partner: name.into(),
            kind: CredentialKind::Basic,
            user: name.into(),
            secret_sha256: kizuna_taxii::server::secret_hash(password),
            created: Timestamp::now(),
        })
        .expect("credential");
}

/// Serves `hub` on a free loopback port in the background: its base URL, the sender that stops
/// it (sending or dropping it ends the serve: keep it alive for as long as the test needs the
/// hub), and the serving task.
pub async fn serve(
    hub: std::sync::Arc<kizuna_hub::Hub>,
) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), kizuna_hub::HubError>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(hub.serve(listener, async {
        let _ = rx.await;
    }));
    (base, tx, task)
}
