//! The standard TLP marking-definitions: TLP 1.0 (predefined by STIX 2.1) and TLP 2.0 (the
//! OASIS extension `extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d`).

use kizuna_model::Tlp;
use serde_json::{Value, json};

/// The TLP 2.0 property extension's id.
pub const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// TLP 1.0 marking ids (STIX 2.1 section 7.2.1.4): WHITE, GREEN, AMBER, RED.
pub const TLP1_WHITE: &str = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9";
/// TLP 1.0 GREEN.
pub const TLP1_GREEN: &str = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da";
/// TLP 1.0 AMBER.
pub const TLP1_AMBER: &str = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82";
/// TLP 1.0 RED.
pub const TLP1_RED: &str = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed";
/// TLP 2.0 CLEAR.
pub const TLP2_CLEAR: &str = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487";
/// TLP 2.0 GREEN.
pub const TLP2_GREEN: &str = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb";
/// TLP 2.0 AMBER.
pub const TLP2_AMBER: &str = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421";
/// TLP 2.0 AMBER+STRICT.
pub const TLP2_AMBER_STRICT: &str = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003";
/// TLP 2.0 RED.
pub const TLP2_RED: &str = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1";

/// Which marking-definitions an export references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlpStyle {
    /// TLP 1.0 ids where TLP 1.0 has the level (CLEAR is written as WHITE), TLP 2.0 for
    /// AMBER+STRICT, which TLP 1.0 lacks. What most consumers (MISP, the `stix2` library) know.
    #[default]
    V1WhereAvailable,
    /// TLP 2.0 ids for every level.
    V2,
}

/// The marking-definition id for a level in a style.
pub fn marking_id(tlp: Tlp, style: TlpStyle) -> &'static str {
    match (style, tlp) {
        (TlpStyle::V1WhereAvailable, Tlp::Clear) => TLP1_WHITE,
        (TlpStyle::V1WhereAvailable, Tlp::Green) => TLP1_GREEN,
        (TlpStyle::V1WhereAvailable, Tlp::Amber) => TLP1_AMBER,
        (TlpStyle::V1WhereAvailable, Tlp::Red) => TLP1_RED,
        (_, Tlp::AmberStrict) => TLP2_AMBER_STRICT,
        (TlpStyle::V2, Tlp::Clear) => TLP2_CLEAR,
        (TlpStyle::V2, Tlp::Green) => TLP2_GREEN,
        (TlpStyle::V2, Tlp::Amber) => TLP2_AMBER,
        (TlpStyle::V2, Tlp::Red) => TLP2_RED,
    }
}

/// The level of a well-known TLP marking id (either generation).
pub fn tlp_of_marking_id(id: &str) -> Option<Tlp> {
    Some(match id {
        TLP1_WHITE | TLP2_CLEAR => Tlp::Clear,
        TLP1_GREEN | TLP2_GREEN => Tlp::Green,
        TLP1_AMBER | TLP2_AMBER => Tlp::Amber,
        TLP2_AMBER_STRICT => Tlp::AmberStrict,
        TLP1_RED | TLP2_RED => Tlp::Red,
        _ => return None,
    })
}

/// The level a marking-definition object states, by content: TLP 1.0 `definition.tlp` or the
/// TLP 2.0 extension's `tlp_2_0`.
pub fn tlp_of_marking_object(o: &Value) -> Option<Tlp> {
    if o.get("type").and_then(Value::as_str) != Some("marking-definition") {
        return None;
    }
    if let Some(t) = o.get("id").and_then(Value::as_str).and_then(tlp_of_marking_id) {
        return Some(t);
    }
    let v1 = (o.get("definition_type").and_then(Value::as_str) == Some("tlp"))
        .then(|| o.pointer("/definition/tlp").and_then(Value::as_str))
        .flatten();
    let v2 =
        o.get("extensions").and_then(|e| e.get(TLP2_EXTENSION)).and_then(|e| e.get("tlp_2_0")).and_then(Value::as_str);
    v1.or(v2).and_then(|s| s.parse::<Tlp>().ok())
}

/// The full marking-definition object for an id returned by [`marking_id`].
pub fn marking_object(tlp: Tlp, style: TlpStyle) -> Value {
    let id = marking_id(tlp, style);
    if id == TLP2_AMBER_STRICT || style == TlpStyle::V2 {
        let level = tlp.as_str().to_ascii_lowercase();
        json!({
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": id,
            "created": "2022-10-01T00:00:00.000Z",
            "name": format!("TLP:{}", tlp.as_str()),
            "extensions": { TLP2_EXTENSION: { "extension_type": "property-extension", "tlp_2_0": level } }
        })
    } else {
        let level = match tlp {
            Tlp::Clear => "white",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            _ => "red",
        };
        json!({
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": id,
            "created": "2017-01-20T00:00:00.000Z",
            "definition_type": "tlp",
            "name": format!("TLP:{}", level.to_ascii_uppercase()),
            "definition": { "tlp": level }
        })
    }
}

/// The MISP tag for a level (`tlp:clear`, `tlp:green`, `tlp:amber`, `tlp:amber+strict`, `tlp:red`).
pub fn misp_tag(tlp: Tlp) -> String {
    format!("tlp:{}", tlp.as_str().to_ascii_lowercase())
}

/// MISP's colour for a TLP tag (as MISP's taxonomy gives them).
pub fn misp_tag_colour(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "#ffffff",
        Tlp::Green => "#339900",
        Tlp::Amber | Tlp::AmberStrict => "#ffc000",
        Tlp::Red => "#cc0033",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_round_trips_in_both_styles() {
        for style in [TlpStyle::V1WhereAvailable, TlpStyle::V2] {
            for t in Tlp::ALL {
                let o = marking_object(*t, style);
                assert_eq!(o["id"], marking_id(*t, style));
                assert_eq!(tlp_of_marking_id(marking_id(*t, style)), Some(*t));
                let mut anon = o.clone();
                anon["id"] = "marking-definition--00000000-0000-4000-8000-000000000000".into();
                assert_eq!(tlp_of_marking_object(&anon), Some(*t), "{anon}");
            }
        }
        assert_eq!(marking_id(Tlp::AmberStrict, TlpStyle::V1WhereAvailable), TLP2_AMBER_STRICT);
        assert_eq!(tlp_of_marking_id("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc8"), None);
    }
}
