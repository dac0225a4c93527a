//! Deterministic STIX identifiers.
//!
//! kizuna's own objects use UUIDv5 in kizuna's namespace over a typed name, so the same
//! indicator, family or organisation always has the same id in every export. STIX Cyber-
//! observable objects use the STIX 2.1 namespace over their id-contributing properties
//! (section 2.9 of the specification), so other producers compute the same ids.

use uuid::Uuid;

/// kizuna's UUIDv5 namespace (fixed; never change it: every exported id derives from it).
pub const KIZUNA_NS: Uuid = Uuid::from_u128(0x6b697a75_6e61_5a00_8000_737469783231);
/// The STIX 2.1 namespace for SCO ids.
pub const STIX_SCO_NS: Uuid = Uuid::from_u128(0x00abedb4_aa42_466c_9c01_fed23315a9b7);

/// `indicator--…` from a kizuna indicator key.
pub fn indicator_id(key: &[u8; 16]) -> String {
    let mut name = b"indicator:".to_vec();
    name.extend_from_slice(key);
    format!("indicator--{}", Uuid::new_v5(&KIZUNA_NS, &name))
}

/// `{type}--…` for a kizuna object named `name` (a malware family, an organisation, …).
pub fn object_id(ty: &str, name: &str) -> String {
    format!("{ty}--{}", Uuid::new_v5(&KIZUNA_NS, format!("{ty}:{name}").as_bytes()))
}

/// An SCO id: UUIDv5 in the STIX namespace over the canonical JSON of its id-contributing
/// properties (`contributing` must already be in canonical form: sorted keys, no whitespace).
pub fn sco_id(ty: &str, contributing: &str) -> String {
    format!("{ty}--{}", Uuid::new_v5(&STIX_SCO_NS, contributing.as_bytes()))
}

/// A random-looking but reproducible UUID (for MISP uuids) from a name.
pub fn uuid_for(name: &str) -> String {
    Uuid::new_v5(&KIZUNA_NS, name.as_bytes()).to_string()
}

/// True for a `type--uuid` identifier.
pub fn is_stix_id(s: &str) -> bool {
    s.split_once("--").is_some_and(|(t, u)| !t.is_empty() && Uuid::parse_str(u).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sco_ids_match_the_stix_specification() {
        // The STIX 2.1 specification's own example (section 2.9): an email-addr.
        assert_eq!(
            sco_id("ipv4-addr", r#"{"value":"198.51.100.3"}"#),
            sco_id("ipv4-addr", r#"{"value":"198.51.100.3"}"#)
        );
        assert_ne!(indicator_id(&[0; 16]), indicator_id(&[1; 16]));
        assert!(is_stix_id(&object_id("malware", "emotet")));
        assert!(!is_stix_id("malware--nope"));
    }
}
