//! The one audience rule.
//!
//! Every path by which data leaves kizuna (member reports, TAXII collections, MISP feeds, STIX
//! exports, federation with another hub) asks [`should_send`] (which is [`may_receive`] plus the
//! no-echo rule) and nothing else. The rule is TLP 2.0 (FIRST, 2022) applied to organisations,
//! plus named sharing groups:
//!
//! | item TLP | who may receive it |
//! |---|---|
//! | CLEAR | anyone, including the public ([`RecipientKind::Public`]) |
//! | GREEN | the community: members and partners, never the public |
//! | AMBER | organisations named as recipients of the item, and members or partners that belong to one of the item's sharing groups |
//! | AMBER+STRICT | the same organisations (each for itself only: they may not pass it to clients) |
//! | RED | the organisations named as recipients only; sharing groups do not widen RED |
//!
//! On top of that:
//! - a recipient may be cleared only up to a level ([`Recipient::tlp_max`]): a partner cleared
//!   for GREEN never gets AMBER even when it is in the group;
//! - the organisation an item came from may always hold it ([`may_receive`]) but is never sent
//!   it back ([`should_send`]), so nothing loops between federated hubs;
//! - the rule depends only on the item's labels and the recipient, and imports keep the labels
//!   they were given, so passing an item through export → import → re-export never widens its
//!   audience (the property tests in `tests/no_leak.rs` try that on random data).
//!
//! Labels on observations: TLP is `tlp`; sharing groups and named recipients travel in
//! `extra.sharing_groups` and `extra.recipients` ([`EXTRA_GROUPS`], [`EXTRA_RECIPIENTS`]) as
//! arrays of strings (a comma-separated string is read too). An observation routed to a member
//! with no named recipients has that member as its recipient ([`observation_labels`]).

#![warn(missing_docs)]

use std::collections::BTreeSet;

use kizuna_model::{Indicator, Observation, Tlp};

/// `extra.*` key holding an observation's sharing groups.
pub const EXTRA_GROUPS: &str = "sharing_groups";
/// `extra.*` key holding an observation's named recipients (organisation names).
pub const EXTRA_RECIPIENTS: &str = "recipients";

/// What kind of party a recipient is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecipientKind {
    /// A member ISP of this hub.
    Member,
    /// A partner centre (another ISAC, a CSIRT, another kizuna hub) with an agreement.
    Partner,
    /// Anyone: a public feed, an unauthenticated reader.
    Public,
}

impl RecipientKind {
    /// True for members and partners: the community that TLP:GREEN allows.
    pub const fn is_community(self) -> bool {
        matches!(self, RecipientKind::Member | RecipientKind::Partner)
    }
}

/// Who would receive an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The organisation's name, as items name it in their recipients (`example-isp`,
    /// `partner:jpcert`). Compared exactly.
    pub org: String,
    /// Member, partner or public.
    pub kind: RecipientKind,
    /// Sharing groups the organisation belongs to.
    pub groups: BTreeSet<String>,
    /// The narrowest TLP the organisation is cleared for (`None`: no cap beyond the rule).
    pub tlp_max: Option<Tlp>,
}

impl Recipient {
    /// A recipient with no groups and no cap.
    pub fn new(org: impl Into<String>, kind: RecipientKind) -> Self {
        Recipient { org: org.into(), kind, groups: BTreeSet::new(), tlp_max: None }
    }

    /// The public: anyone at all.
    pub fn public() -> Self {
        Recipient::new("", RecipientKind::Public)
    }

    /// Adds groups.
    pub fn with_groups<I: IntoIterator<Item = S>, S: Into<String>>(mut self, groups: I) -> Self {
        self.groups.extend(groups.into_iter().map(Into::into));
        self
    }

    /// Caps the TLP the recipient is cleared for.
    pub fn with_tlp_max(mut self, tlp: Tlp) -> Self {
        self.tlp_max = Some(tlp);
        self
    }
}

/// The audience labels of one item (indicator, observation, STIX object).
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    /// Its TLP.
    pub tlp: Tlp,
    /// Sharing groups it is shared with.
    pub groups: &'a [String],
    /// Organisations named as recipients.
    pub recipients: &'a [String],
    /// The organisation it came from (`None`: this hub's own data).
    pub origin: Option<&'a str>,
}

/// True when `recipient` may hold an item with these labels. See the table in the crate docs.
pub fn may_receive(item: &Labels<'_>, recipient: &Recipient) -> bool {
    if let Some(origin) = item.origin
        && !recipient.org.is_empty()
        && origin == recipient.org
    {
        return true;
    }
    if let Some(max) = recipient.tlp_max
        && item.tlp > max
    {
        return false;
    }
    let named = || !recipient.org.is_empty() && item.recipients.contains(&recipient.org);
    let in_group = || item.groups.iter().any(|g| recipient.groups.contains(g));
    match item.tlp {
        Tlp::Clear => true,
        Tlp::Green => recipient.kind.is_community(),
        Tlp::Amber | Tlp::AmberStrict => recipient.kind.is_community() && (named() || in_group()),
        Tlp::Red => recipient.kind.is_community() && named(),
    }
}

/// [`may_receive`], except to the item's own origin: what every export path sends.
pub fn should_send(item: &Labels<'_>, recipient: &Recipient) -> bool {
    if item.origin.is_some_and(|o| !recipient.org.is_empty() && o == recipient.org) {
        return false;
    }
    may_receive(item, recipient)
}

/// Sharing groups and named recipients of an observation, read from `extra` (see the crate docs).
pub fn observation_groups(o: &Observation) -> (Vec<String>, Vec<String>) {
    (string_list(o.extra.get(EXTRA_GROUPS)), string_list(o.extra.get(EXTRA_RECIPIENTS)))
}

/// Owned labels of an observation routed to `routed_to` (a member name): its named recipients,
/// or the member itself when none are named.
pub fn observation_labels(o: &Observation, routed_to: Option<&str>) -> OwnedLabels {
    let (groups, mut recipients) = observation_groups(o);
    if recipients.is_empty()
        && let Some(m) = routed_to
    {
        recipients.push(m.to_owned());
    }
    OwnedLabels { tlp: o.tlp, groups, recipients, origin: None }
}

/// Owned labels of an indicator (its origin given by the caller: `None` for this hub's own).
pub fn indicator_labels(i: &Indicator, recipients: Vec<String>, origin: Option<String>) -> OwnedLabels {
    OwnedLabels { tlp: i.tlp, groups: i.sharing_groups.clone(), recipients, origin }
}

/// [`Labels`] that own their strings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnedLabels {
    /// TLP.
    pub tlp: Tlp,
    /// Sharing groups.
    pub groups: Vec<String>,
    /// Named recipients.
    pub recipients: Vec<String>,
    /// Origin organisation.
    pub origin: Option<String>,
}

impl OwnedLabels {
    /// Borrowed view.
    pub fn as_labels(&self) -> Labels<'_> {
        Labels { tlp: self.tlp, groups: &self.groups, recipients: &self.recipients, origin: self.origin.as_deref() }
    }
}

fn string_list(v: Option<&serde_json::Value>) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_str()).map(|s| s.trim().to_owned()).collect(),
        Some(serde_json::Value::String(s)) => s.split(',').map(|s| s.trim().to_owned()).collect(),
        _ => Vec::new(),
    };
    out.retain(|s| !s.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels<'a>(tlp: Tlp, groups: &'a [String], recipients: &'a [String], origin: Option<&'a str>) -> Labels<'a> {
        Labels { tlp, groups, recipients, origin }
    }

    #[test]
    fn the_table() {
        let g = vec!["jp-isps".to_owned()];
        let r = vec!["isp-a".to_owned()];
        let member_a = Recipient::new("isp-a", RecipientKind::Member);
        let member_b_in_group = Recipient::new("isp-b", RecipientKind::Member).with_groups(["jp-isps"]);
        let partner = Recipient::new("partner:cert", RecipientKind::Partner);
        let public = Recipient::public();
        let item = |t| labels(t, &g, &r, None);

        assert!(may_receive(&item(Tlp::Clear), &public));
        assert!(!may_receive(&item(Tlp::Green), &public));
        assert!(may_receive(&item(Tlp::Green), &partner));
        assert!(may_receive(&item(Tlp::Amber), &member_a), "named");
        assert!(may_receive(&item(Tlp::Amber), &member_b_in_group), "in a group");
        assert!(!may_receive(&item(Tlp::Amber), &partner), "neither named nor in a group");
        assert!(!may_receive(&item(Tlp::Amber), &public));
        assert!(may_receive(&item(Tlp::AmberStrict), &member_b_in_group));
        assert!(!may_receive(&item(Tlp::AmberStrict), &partner));
        assert!(may_receive(&item(Tlp::Red), &member_a));
        assert!(!may_receive(&item(Tlp::Red), &member_b_in_group), "groups never widen RED");
        // a public "recipient" named by an empty org never matches
        let empty = vec![String::new()];
        assert!(!may_receive(&labels(Tlp::Red, &[], &empty, Some("")), &public));
    }

    #[test]
    fn caps_and_origin() {
        let g = vec!["g".to_owned()];
        let capped = Recipient::new("p", RecipientKind::Partner).with_groups(["g"]).with_tlp_max(Tlp::Green);
        assert!(!may_receive(&labels(Tlp::Amber, &g, &[], None), &capped));
        assert!(may_receive(&labels(Tlp::Green, &g, &[], None), &capped));
        let origin = Recipient::new("hub-a", RecipientKind::Partner);
        let red_from_a = labels(Tlp::Red, &[], &[], Some("hub-a"));
        assert!(may_receive(&red_from_a, &origin), "the origin holds its own data");
        assert!(!should_send(&red_from_a, &origin), "but is never sent it back");
        assert!(!should_send(&labels(Tlp::Clear, &[], &[], Some("hub-a")), &origin));
    }

    #[test]
    fn observation_labels_read_extra() {
        use kizuna_model::{Classification, ClassificationType, Timestamp};
        let mut o = Observation::new("f", Classification::new(ClassificationType::Scanner), Timestamp::from_secs(0));
        o.tlp = Tlp::Red;
        let l = observation_labels(&o, Some("isp-a"));
        assert_eq!(l.recipients, vec!["isp-a".to_owned()]);
        o.extra.insert(EXTRA_RECIPIENTS.into(), serde_json::json!(["isp-b", " "]));
        o.extra.insert(EXTRA_GROUPS.into(), serde_json::json!("g1, g2"));
        let l = observation_labels(&o, Some("isp-a"));
        assert_eq!(l.recipients, vec!["isp-b".to_owned()]);
        assert_eq!(l.groups, vec!["g1".to_owned(), "g2".to_owned()]);
        assert!(!may_receive(&l.as_labels(), &Recipient::new("isp-a", RecipientKind::Member)));
    }
}
