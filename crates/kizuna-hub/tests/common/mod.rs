//! Shared by the hub's sharing tests.

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
