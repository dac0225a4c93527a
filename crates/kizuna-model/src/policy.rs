//! Audience (TLP) and legal basis: the two labels every observation carries.

/// Error for a TLP or legal-basis value that is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}; known: {known}")]
pub struct UnknownValue {
    /// What was being parsed.
    pub kind: &'static str,
    /// The value given.
    pub value: String,
    /// The accepted spellings.
    pub known: &'static str,
}

/// Traffic Light Protocol label (TLP 2.0 names; TLP 1.0 `WHITE` is read as `CLEAR`).
///
/// Ordered from the widest audience to the narrowest, so `a <= b` means "a may be shared at
/// least as widely as b".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Tlp {
    /// TLP:CLEAR (TLP 1.0 WHITE): no limit on disclosure.
    Clear,
    /// TLP:GREEN: the community.
    Green,
    /// TLP:AMBER: the recipient's organisation and its clients on a need-to-know basis.
    /// The default for sensor data routed to a member ISP.
    #[default]
    Amber,
    /// TLP:AMBER+STRICT: the recipient's organisation only.
    AmberStrict,
    /// TLP:RED: the named recipients only.
    Red,
}

impl Tlp {
    /// Every value, widest audience first.
    pub const ALL: &'static [Tlp] = &[Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::AmberStrict, Tlp::Red];

    /// The IntelMQ `tlp` spelling (`WHITE`, `GREEN`, `AMBER`, `AMBER+STRICT`, `RED`): IntelMQ
    /// knows TLP 1.0 names, so CLEAR is written as WHITE.
    pub const fn as_intelmq(self) -> &'static str {
        match self {
            Tlp::Clear => "WHITE",
            Tlp::Green => "GREEN",
            Tlp::Amber => "AMBER",
            Tlp::AmberStrict => "AMBER+STRICT",
            Tlp::Red => "RED",
        }
    }

    /// The TLP 2.0 name (`CLEAR`, `GREEN`, `AMBER`, `AMBER+STRICT`, `RED`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "CLEAR",
            Tlp::Green => "GREEN",
            Tlp::Amber => "AMBER",
            Tlp::AmberStrict => "AMBER+STRICT",
            Tlp::Red => "RED",
        }
    }
}

impl std::str::FromStr for Tlp {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let t = t.strip_prefix("TLP:").or_else(|| t.strip_prefix("tlp:")).unwrap_or(t);
        match t.to_ascii_uppercase().as_str() {
            "CLEAR" | "WHITE" => Ok(Tlp::Clear),
            "GREEN" => Ok(Tlp::Green),
            "AMBER" => Ok(Tlp::Amber),
            "AMBER+STRICT" | "AMBER_STRICT" | "AMBER-STRICT" => Ok(Tlp::AmberStrict),
            "RED" => Ok(Tlp::Red),
            _ => Err(UnknownValue {
                kind: "TLP",
                value: s.to_owned(),
                known: "CLEAR, WHITE, GREEN, AMBER, AMBER+STRICT, RED",
            }),
        }
    }
}

impl std::fmt::Display for Tlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The legal ground on which an act on communications data rests (Japanese secrecy of
/// communications practice, as Telecom-ISAC Japan's ACTIVE project documents it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum LegalBasis {
    /// The subscriber agreed (individually, or in the terms of service with opt-out at any time).
    Consent,
    /// A legitimate business act: a legitimate purpose, necessary, by proportionate means
    /// (e.g. handling data about attacks on one's own network). The default for sensor data.
    #[default]
    LegitimateBusiness,
    /// Emergency evacuation: a present danger, a balance of interests, no other means.
    EmergencyEvacuation,
}

impl LegalBasis {
    /// Every value.
    pub const ALL: &'static [LegalBasis] =
        &[LegalBasis::Consent, LegalBasis::LegitimateBusiness, LegalBasis::EmergencyEvacuation];

    /// The stable spelling used in config files, the store and on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            LegalBasis::Consent => "consent",
            LegalBasis::LegitimateBusiness => "legitimate-business",
            LegalBasis::EmergencyEvacuation => "emergency-evacuation",
        }
    }
}

impl std::str::FromStr for LegalBasis {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "consent" => Ok(LegalBasis::Consent),
            "legitimate-business" => Ok(LegalBasis::LegitimateBusiness),
            "emergency-evacuation" => Ok(LegalBasis::EmergencyEvacuation),
            _ => Err(UnknownValue {
                kind: "legal basis",
                value: s.to_owned(),
                known: "consent, legitimate-business, emergency-evacuation",
            }),
        }
    }
}

impl std::fmt::Display for LegalBasis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlp_reads_both_generations() {
        assert_eq!("WHITE".parse::<Tlp>(), Ok(Tlp::Clear));
        assert_eq!("TLP:CLEAR".parse::<Tlp>(), Ok(Tlp::Clear));
        assert_eq!("amber+strict".parse::<Tlp>(), Ok(Tlp::AmberStrict));
        assert!("PURPLE".parse::<Tlp>().is_err());
        assert!(Tlp::Clear < Tlp::Red);
        for t in Tlp::ALL {
            assert_eq!(t.as_intelmq().parse::<Tlp>(), Ok(*t));
        }
    }

    #[test]
    fn legal_basis_round_trips() {
        for b in LegalBasis::ALL {
            assert_eq!(b.as_str().parse::<LegalBasis>(), Ok(*b));
        }
        assert!("because".parse::<LegalBasis>().is_err());
    }
}
