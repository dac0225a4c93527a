//! Property tests: random items and audiences, looking for a leak.
//!
//! A world of organisations (members and partners of hub A, partners of hub B, the public) with
//! random group memberships and TLP caps. Items with random labels are exported from A to every
//! party the rule allows; a party that is itself a hub imports them (keeping the labels, as
//! kizuna's imports do) and re-exports to its own audience; and so on for a few hops. The set of
//! parties that ever hold an item must stay inside the audience the item had at its origin.

use std::collections::BTreeSet;

use kizuna_model::Tlp;
use kizuna_policy::{Labels, OwnedLabels, Recipient, RecipientKind, may_receive, should_send};
use proptest::prelude::*;

const ORGS: &[&str] = &["isp-a", "isp-b", "isp-c", "cert-x", "cert-y", "hub-b", "hub-c"];
const GROUPS: &[&str] = &["jp-isps", "apac", "finance"];

fn tlp() -> impl Strategy<Value = Tlp> {
    prop::sample::select(Tlp::ALL.to_vec())
}

fn kind() -> impl Strategy<Value = RecipientKind> {
    prop::sample::select(vec![RecipientKind::Member, RecipientKind::Partner, RecipientKind::Public])
}

fn subset(of: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    prop::sample::subsequence(of.to_vec(), 0..=of.len()).prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

fn recipient() -> impl Strategy<Value = Recipient> {
    (prop::sample::select(ORGS.to_vec()), kind(), subset(GROUPS), prop::option::of(tlp())).prop_map(
        |(org, kind, groups, cap)| {
            let mut r = Recipient::new(org, kind).with_groups(groups);
            r.tlp_max = cap;
            r
        },
    )
}

fn item() -> impl Strategy<Value = OwnedLabels> {
    (tlp(), subset(GROUPS), subset(ORGS), prop::option::of(prop::sample::select(ORGS.to_vec()))).prop_map(
        |(tlp, groups, recipients, origin)| OwnedLabels { tlp, groups, recipients, origin: origin.map(str::to_owned) },
    )
}

/// The audience an item has by its labels alone, stated independently of the implementation.
fn allowed_by_tlp(l: &Labels<'_>, r: &Recipient) -> bool {
    if l.origin == Some(r.org.as_str()) && !r.org.is_empty() {
        return true;
    }
    if r.tlp_max.is_some_and(|m| l.tlp > m) {
        return false;
    }
    let community = r.kind != RecipientKind::Public;
    let named = l.recipients.contains(&r.org);
    let grouped = l.groups.iter().any(|g| r.groups.contains(g));
    match l.tlp {
        Tlp::Clear => true,
        Tlp::Green => community,
        Tlp::Amber | Tlp::AmberStrict => community && (named || grouped),
        Tlp::Red => community && named,
    }
}

/// Re-export simulation: an imported item keeps its labels (tlp, groups, recipients, origin).
fn import(l: &OwnedLabels) -> OwnedLabels {
    l.clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn matches_the_stated_rule(item in item(), r in recipient()) {
        prop_assert_eq!(may_receive(&item.as_labels(), &r), allowed_by_tlp(&item.as_labels(), &r));
    }

    #[test]
    fn red_reaches_only_named_recipients(item in item(), r in recipient()) {
        let mut item = item;
        item.tlp = Tlp::Red;
        if should_send(&item.as_labels(), &r) {
            prop_assert!(item.recipients.contains(&r.org), "RED sent to {} not named in {:?}", r.org, item.recipients);
            prop_assert!(r.kind != RecipientKind::Public);
        }
    }

    #[test]
    fn amber_strict_stays_with_named_or_grouped_orgs(item in item(), r in recipient()) {
        let mut item = item;
        item.tlp = Tlp::AmberStrict;
        if should_send(&item.as_labels(), &r) {
            let grouped = item.groups.iter().any(|g| r.groups.contains(g));
            prop_assert!(item.recipients.contains(&r.org) || grouped);
            prop_assert!(r.kind != RecipientKind::Public);
        }
    }

    #[test]
    fn only_clear_reaches_the_public(item in item()) {
        prop_assert_eq!(should_send(&item.as_labels(), &Recipient::public()), item.tlp == Tlp::Clear);
    }

    #[test]
    fn never_echoes_to_origin(item in item(), r in recipient()) {
        if item.origin.as_deref() == Some(r.org.as_str()) {
            prop_assert!(!should_send(&item.as_labels(), &r));
        }
    }

    #[test]
    fn narrowing_the_tlp_never_widens_the_audience(item in item(), r in recipient(), t in tlp()) {
        let mut narrower = item.clone();
        narrower.tlp = narrower.tlp.max(t);
        if may_receive(&narrower.as_labels(), &r) {
            prop_assert!(may_receive(&item.as_labels(), &r));
        }
    }

    #[test]
    fn audience_never_widens_through_hops(item in item(), parties in prop::collection::vec(recipient(), 1..8)) {
        // Every party sees the item via some chain origin → p1 → p2 → …; each hop imports
        // (keeping labels) and re-exports with the same rule.
        let first_audience: BTreeSet<usize> = (0..parties.len())
            .filter(|&i| may_receive(&item.as_labels(), &parties[i]))
            .collect();
        let mut holders: BTreeSet<usize> = (0..parties.len())
            .filter(|&i| should_send(&item.as_labels(), &parties[i]))
            .collect();
        let mut held = import(&item);
        for _hop in 0..4 {
            let mut next = holders.clone();
            for &h in &holders {
                // party h re-exports what it imported
                let _ = h;
                held = import(&held);
                for (j, p) in parties.iter().enumerate() {
                    if should_send(&held.as_labels(), p) {
                        next.insert(j);
                    }
                }
            }
            holders = next;
        }
        prop_assert!(holders.is_subset(&first_audience), "holders {:?} ⊄ audience {:?}", holders, first_audience);
    }
}
