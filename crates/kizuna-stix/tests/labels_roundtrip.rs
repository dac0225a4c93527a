//! Export → import keeps an item's audience exactly (TLP, sharing groups, named recipients,
//! origin), through STIX and through a MISP feed, for random labels: so a re-export by the
//! importer can never widen the audience (kizuna-policy decides on the labels alone).

use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp};
use kizuna_stix::{BundleBuilder, ExportItem, ExportOptions, ImportOptions, Provenance, TlpStyle, misp};
use proptest::prelude::*;

fn indicator(n: u32, tlp: Tlp, groups: Vec<String>) -> Indicator {
    Indicator {
        kind: IndicatorKind::Domain,
        value: format!("d{n}.bad.example"),
        category: ClassificationType::Phishing,
        source: "feed".into(),
        confidence: 60,
        first_seen: Timestamp::from_secs(1_772_668_800),
        last_seen: Timestamp::from_secs(1_772_668_800),
        expires: Timestamp::from_secs(1_772_668_800 + 86_400),
        reason: "r".into(),
        malware: None,
        tlp,
        sharing_groups: groups,
        legal_basis: LegalBasis::EmergencyEvacuation,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn stix_and_misp_keep_labels(
        tlp in prop::sample::select(Tlp::ALL.to_vec()),
        groups in prop::sample::subsequence(vec!["apac", "finance", "jp-isps"], 0..=3),
        recipients in prop::sample::subsequence(vec!["cert-x", "isp-a", "isp-b"], 0..=3),
        relayed in any::<bool>(),
        v2 in any::<bool>(),
    ) {
        let groups: Vec<String> = groups.into_iter().map(str::to_owned).collect();
        let recipients: Vec<String> = recipients.into_iter().map(str::to_owned).collect();
        let i = indicator(1, tlp, groups.clone());
        let prov = Provenance { origin: "hub-a".into(), original_id: "indicator--x".into(), created_by: None };
        let item = ExportItem {
            indicator: &i,
            created: Timestamp::from_secs(1_772_668_800),
            modified: Timestamp::from_secs(1_772_668_801),
            recipients: &recipients,
            provenance: relayed.then_some(&prov),
            purpose: None,
        };
        let mut opts = ExportOptions::new("hub-b");
        opts.tlp_style = if v2 { TlpStyle::V2 } else { TlpStyle::V1WhereAvailable };
        let mut b = BundleBuilder::new(opts);
        b.add_indicator(&item);
        let imp = ImportOptions::new("hub-b", Timestamp::from_secs(1_772_700_000));
        let r = kizuna_stix::import::import_document(&b.finish(), &imp).expect("bundle");
        prop_assert_eq!(r.indicators.len(), 1);
        let got = &r.indicators[0];
        prop_assert_eq!(got.indicator.tlp, tlp);
        prop_assert_eq!(&got.indicator.sharing_groups, &groups);
        prop_assert_eq!(&got.recipients, &recipients);
        prop_assert_eq!(got.origin.as_str(), if relayed { "hub-a" } else { "hub-b" });

        let feed = misp::export_feed(&[item], "hub-b");
        let m = misp::import_event(&feed.events[0].1, &imp).expect("event");
        prop_assert_eq!(m.indicators.len(), 1);
        let got = &m.indicators[0];
        prop_assert_eq!(got.indicator.tlp, tlp);
        prop_assert_eq!(&got.indicator.sharing_groups, &groups);
        prop_assert_eq!(&got.recipients, &recipients);
        prop_assert_eq!(got.origin.as_str(), if relayed { "hub-a" } else { "hub-b" });
    }
}
