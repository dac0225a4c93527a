//! `classification.*`: the ENISA Reference Security Incident Taxonomy as IntelMQ 3 uses it.

/// Error for a taxonomy or type name that is not in the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown classification {kind} {value:?}")]
pub struct UnknownClassification {
    /// "taxonomy" or "type".
    pub kind: &'static str,
    /// The value that was given.
    pub value: String,
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident, $kind:literal { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(missing_docs)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            /// The IntelMQ spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownClassification;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($s => Ok($name::$v),)+ _ => Err(UnknownClassification { kind: $kind, value: s.to_owned() }) }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

string_enum!(
    /// `classification.taxonomy`.
    Taxonomy, "taxonomy" {
    AbusiveContent = "abusive-content",
    Availability = "availability",
    Fraud = "fraud",
    InformationContentSecurity = "information-content-security",
    InformationGathering = "information-gathering",
    IntrusionAttempts = "intrusion-attempts",
    Intrusions = "intrusions",
    MaliciousCode = "malicious-code",
    Other = "other",
    Test = "test",
    Vulnerable = "vulnerable",
});

string_enum!(
    /// `classification.type`.
    ClassificationType, "type" {
    ApplicationCompromise = "application-compromise",
    Blacklist = "blacklist",
    BruteForce = "brute-force",
    Burglary = "burglary",
    C2Server = "c2-server",
    Copyright = "copyright",
    DataLeak = "data-leak",
    DataLoss = "data-loss",
    Ddos = "ddos",
    DdosAmplifier = "ddos-amplifier",
    DgaDomain = "dga-domain",
    Dos = "dos",
    Exploit = "exploit",
    HarmfulSpeech = "harmful-speech",
    IdsAlert = "ids-alert",
    InfectedSystem = "infected-system",
    InformationDisclosure = "information-disclosure",
    Malware = "malware",
    MalwareConfiguration = "malware-configuration",
    MalwareDistribution = "malware-distribution",
    Masquerade = "masquerade",
    Misconfiguration = "misconfiguration",
    Other = "other",
    Outage = "outage",
    Phishing = "phishing",
    PotentiallyUnwantedAccessible = "potentially-unwanted-accessible",
    PrivilegedAccountCompromise = "privileged-account-compromise",
    Proxy = "proxy",
    Sabotage = "sabotage",
    Scanner = "scanner",
    Sniffing = "sniffing",
    SocialEngineering = "social-engineering",
    Spam = "spam",
    SystemCompromise = "system-compromise",
    Test = "test",
    Tor = "tor",
    UnauthorisedInformationAccess = "unauthorised-information-access",
    UnauthorisedInformationModification = "unauthorised-information-modification",
    UnauthorizedUseOfResources = "unauthorized-use-of-resources",
    Undetermined = "undetermined",
    UnprivilegedAccountCompromise = "unprivileged-account-compromise",
    Violence = "violence",
    VulnerableSystem = "vulnerable-system",
    WeakCrypto = "weak-crypto",
});

impl ClassificationType {
    /// The RSIT taxonomy this type belongs to (IntelMQ's taxonomy expert mapping).
    pub const fn taxonomy(self) -> Taxonomy {
        use ClassificationType as C;
        match self {
            C::Spam | C::HarmfulSpeech | C::Violence => Taxonomy::AbusiveContent,
            C::InfectedSystem | C::C2Server | C::MalwareDistribution | C::MalwareConfiguration | C::Malware => {
                Taxonomy::MaliciousCode
            }
            C::Scanner | C::Sniffing | C::SocialEngineering => Taxonomy::InformationGathering,
            C::IdsAlert | C::BruteForce | C::Exploit => Taxonomy::IntrusionAttempts,
            C::PrivilegedAccountCompromise
            | C::UnprivilegedAccountCompromise
            | C::ApplicationCompromise
            | C::SystemCompromise
            | C::Burglary => Taxonomy::Intrusions,
            C::Dos | C::Ddos | C::Misconfiguration | C::Sabotage | C::Outage => Taxonomy::Availability,
            C::UnauthorisedInformationAccess | C::UnauthorisedInformationModification | C::DataLoss | C::DataLeak => {
                Taxonomy::InformationContentSecurity
            }
            C::UnauthorizedUseOfResources | C::Copyright | C::Masquerade | C::Phishing => Taxonomy::Fraud,
            C::WeakCrypto
            | C::DdosAmplifier
            | C::PotentiallyUnwantedAccessible
            | C::InformationDisclosure
            | C::VulnerableSystem => Taxonomy::Vulnerable,
            C::Blacklist | C::DgaDomain | C::Proxy | C::Tor | C::Other | C::Undetermined => Taxonomy::Other,
            C::Test => Taxonomy::Test,
        }
    }
}

/// `classification.taxonomy`, `classification.type` and `classification.identifier`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Classification {
    /// `classification.taxonomy`.
    pub taxonomy: Taxonomy,
    /// `classification.type`.
    pub kind: ClassificationType,
    /// `classification.identifier`: a free-form, lower-case name such as the malware family,
    /// the vulnerability or the scanned service (e.g. "mirai", "open-telnet").
    pub identifier: Option<String>,
}

impl Classification {
    /// A classification of the given type with its RSIT taxonomy.
    pub fn new(kind: ClassificationType) -> Self {
        Classification { taxonomy: kind.taxonomy(), kind, identifier: None }
    }

    /// The same, with an identifier.
    pub fn with_identifier(kind: ClassificationType, identifier: impl Into<String>) -> Self {
        Classification { taxonomy: kind.taxonomy(), kind, identifier: Some(identifier.into()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in ClassificationType::ALL {
            assert_eq!(t.as_str().parse::<ClassificationType>(), Ok(*t));
        }
        for t in Taxonomy::ALL {
            assert_eq!(t.as_str().parse::<Taxonomy>(), Ok(*t));
        }
        assert!("infected system".parse::<ClassificationType>().is_err());
    }

    #[test]
    fn types_map_to_their_taxonomy() {
        assert_eq!(ClassificationType::InfectedSystem.taxonomy(), Taxonomy::MaliciousCode);
        assert_eq!(ClassificationType::VulnerableSystem.taxonomy(), Taxonomy::Vulnerable);
        assert_eq!(ClassificationType::BruteForce.taxonomy(), Taxonomy::IntrusionAttempts);
        assert_eq!(ClassificationType::Phishing.taxonomy(), Taxonomy::Fraud);
    }
}
