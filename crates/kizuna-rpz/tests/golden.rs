//! Golden files of generated zones (update with `UPDATE_EXPECT=1 cargo test -p kizuna-rpz`).

use expect_test::expect;
use kizuna_model::{ClassificationType, Indicator, IndicatorKind, LegalBasis, Timestamp, Tlp, canonical_value};
use kizuna_rpz::{Category, Entry, Granularity, RpzAction, RpzPolicy, SkipReason, client_passthru_zone, generate};

const NOW: Timestamp = Timestamp::from_secs(1_780_000_000);

fn ind(kind: IndicatorKind, value: &str, category: ClassificationType) -> Indicator {
    Indicator {
        kind,
        value: canonical_value(kind, value).unwrap_or_else(|_| value.to_owned()),
        category,
        source: "analyst:test".into(),
        confidence: 90,
        first_seen: Timestamp::from_secs(1_779_000_000),
        last_seen: Timestamp::from_secs(1_779_900_000),
        expires: Timestamp::from_secs(1_790_000_000),
        reason: "test".into(),
        malware: None,
        tlp: Tlp::Green,
        sharing_groups: vec![],
        legal_basis: LegalBasis::LegitimateBusiness,
    }
}

fn corpus() -> Vec<(Indicator, Granularity)> {
    use ClassificationType as C;
    use IndicatorKind as K;
    let mut expired = ind(K::Domain, "old.example", C::Phishing);
    expired.expires = Timestamp::from_secs(1_779_999_999);
    vec![
        (ind(K::Domain, "Bad.Example.", C::MalwareDistribution), Granularity::Host),
        (ind(K::Domain, "phish.example.net", C::Phishing), Granularity::Host),
        (ind(K::Url, "http://dl.bad.example/payload.exe", C::MalwareDistribution), Granularity::Host),
        (ind(K::Url, "https://shared.example.com/~user/evil.js", C::MalwareDistribution), Granularity::UrlOnly),
        (ind(K::Url, "http://198.51.100.9/x", C::MalwareDistribution), Granularity::Host),
        // the same host as the domain above: one trigger, two indicators in its provenance
        (ind(K::Url, "http://bad.example/other", C::MalwareDistribution), Granularity::Host),
        (ind(K::Ip, "198.51.100.7", C::C2Server), Granularity::Host),
        (ind(K::Ip, "203.0.113.0/24", C::C2Server), Granularity::Host),
        (ind(K::Ip, "2001:db8::53", C::C2Server), Granularity::Host),
        (ind(K::Sha256, &"ab".repeat(32), C::Malware), Granularity::Host),
        (ind(K::Domain, "scan.example", C::Scanner), Granularity::Host),
        (expired, Granularity::Host),
    ]
}

fn entries(c: &[(Indicator, Granularity)]) -> Vec<Entry<'_>> {
    c.iter().map(|(i, g)| Entry { key: i.key(), indicator: i, granularity: *g }).collect()
}

#[test]
fn local_data_zone() {
    let c = corpus();
    let mut p = RpzPolicy::new(
        "rpz.isp-a.kizuna.example",
        RpzAction::LocalData { a: Some("192.0.2.80".parse().unwrap()), aaaa: Some("2001:db8::80".parse().unwrap()) },
    );
    p.include_categories = vec![
        Category(ClassificationType::MalwareDistribution),
        Category(ClassificationType::Phishing),
        Category(ClassificationType::C2Server),
    ];
    let z = generate(&p, entries(&c), NOW).unwrap();
    expect![[r#"
        $ORIGIN rpz.isp-a.kizuna.example.
        @	30	IN	SOA	localhost. hostmaster.localhost. 7 60 10 86400 30
        @	30	IN	NS	localhost.
        *.bad.example	30	IN	A	192.0.2.80
        *.bad.example	30	IN	AAAA	2001:db8::80
        *.dl.bad.example	30	IN	A	192.0.2.80
        *.dl.bad.example	30	IN	AAAA	2001:db8::80
        *.phish.example.net	30	IN	A	192.0.2.80
        *.phish.example.net	30	IN	AAAA	2001:db8::80
        128.53.zz.db8.2001.rpz-ip	30	IN	A	192.0.2.80
        128.53.zz.db8.2001.rpz-ip	30	IN	AAAA	2001:db8::80
        24.0.113.0.203.rpz-ip	30	IN	A	192.0.2.80
        24.0.113.0.203.rpz-ip	30	IN	AAAA	2001:db8::80
        32.7.100.51.198.rpz-ip	30	IN	A	192.0.2.80
        32.7.100.51.198.rpz-ip	30	IN	AAAA	2001:db8::80
        bad.example	30	IN	A	192.0.2.80
        bad.example	30	IN	AAAA	2001:db8::80
        dl.bad.example	30	IN	A	192.0.2.80
        dl.bad.example	30	IN	AAAA	2001:db8::80
        phish.example.net	30	IN	A	192.0.2.80
        phish.example.net	30	IN	AAAA	2001:db8::80
    "#]]
    .assert_eq(&z.to_zone_text(7));
    // provenance: the shared trigger names both indicators; every trigger has at least one
    let bad = z.provenance_of("bad.example.rpz.isp-a.kizuna.example.").unwrap();
    assert_eq!(bad.len(), 2);
    assert!(bad.contains(&c[0].0.key()) && bad.contains(&c[5].0.key()));
    assert_eq!(z.provenance_of("32.7.100.51.198.rpz-ip").unwrap().iter().next(), Some(&c[6].0.key()));
    assert_eq!(z.trigger_count(), 9);
    let reasons: Vec<SkipReason> = z.skipped.iter().map(|s| s.1).collect();
    let mut want = vec![
        SkipReason::UrlOnly,
        SkipReason::AddressLiteralHost,
        SkipReason::CategoryExcluded,
        SkipReason::CategoryExcluded,
        SkipReason::Expired,
    ];
    want.sort();
    let mut got = reasons.clone();
    got.sort();
    assert_eq!(got, want);
}

#[test]
fn cname_garden_keeps_qname_and_nxdomain_without_wildcards() {
    let c = corpus();
    let p = RpzPolicy::new("rpz.isp-b.example", RpzAction::Cname { target: "*.Warn.ISP-B.example".into() });
    let z = generate(&p, entries(&c[..2]), NOW).unwrap();
    expect![[r#"
        $ORIGIN rpz.isp-b.example.
        @	30	IN	SOA	localhost. hostmaster.localhost. 1 60 10 86400 30
        @	30	IN	NS	localhost.
        *.bad.example	30	IN	CNAME	*.warn.isp-b.example.
        *.phish.example.net	30	IN	CNAME	*.warn.isp-b.example.
        bad.example	30	IN	CNAME	*.warn.isp-b.example.
        phish.example.net	30	IN	CNAME	*.warn.isp-b.example.
    "#]]
    .assert_eq(&z.to_zone_text(1));

    let mut p = RpzPolicy::new("rpz.isp-c.example", RpzAction::Nxdomain);
    p.wildcard = false;
    p.ttl = 5;
    let z = generate(&p, entries(&c[6..9]), NOW).unwrap();
    expect![[r#"
        $ORIGIN rpz.isp-c.example.
        @	5	IN	SOA	localhost. hostmaster.localhost. 2 60 10 86400 30
        @	5	IN	NS	localhost.
        128.53.zz.db8.2001.rpz-ip	5	IN	CNAME	.
        24.0.113.0.203.rpz-ip	5	IN	CNAME	.
        32.7.100.51.198.rpz-ip	5	IN	CNAME	.
    "#]]
    .assert_eq(&z.to_zone_text(2));
}

#[test]
fn client_passthru() {
    let p = RpzPolicy::new("consent.isp-a.example", RpzAction::Passthru);
    let clients = ["127.0.0.3/32".parse().unwrap(), "2001:db8:1::/48".parse().unwrap(), "10.1.2.0/24".parse().unwrap()];
    let z = client_passthru_zone(&p, &clients).unwrap();
    expect![[r#"
        $ORIGIN consent.isp-a.example.
        @	30	IN	SOA	localhost. hostmaster.localhost. 3 60 10 86400 30
        @	30	IN	NS	localhost.
        24.0.2.1.10.rpz-client-ip	30	IN	CNAME	rpz-passthru.
        32.3.0.0.127.rpz-client-ip	30	IN	CNAME	rpz-passthru.
        48.zz.1.db8.2001.rpz-client-ip	30	IN	CNAME	rpz-passthru.
    "#]]
    .assert_eq(&z.to_zone_text(3));
}

#[test]
fn generation_is_deterministic_and_in_zone() {
    let c = corpus();
    let p = RpzPolicy::new("rpz.example", RpzAction::Nodata);
    let a = generate(&p, entries(&c), NOW).unwrap();
    let mut rev = entries(&c);
    rev.reverse();
    let b = generate(&p, rev, NOW).unwrap();
    assert_eq!(a, b);
    for r in &a.records {
        assert!(a.absolute(&r.owner).ends_with(".rpz.example.") || r.owner.is_empty(), "{r:?}");
    }
}

#[test]
fn overlong_names_are_skipped_whole() {
    let label = "a".repeat(63);
    let long = format!("{label}.{label}.{label}.{}.example", "b".repeat(40)); // 240 octets
    let i = ind(IndicatorKind::Domain, &long, ClassificationType::Phishing);
    assert_eq!(i.value, long);
    let p = RpzPolicy::new("rpz.isp-a.kizuna.example", RpzAction::Nxdomain);
    let z = generate(&p, [Entry { key: i.key(), indicator: &i, granularity: Granularity::Host }], NOW).unwrap();
    assert_eq!(z.trigger_count(), 0);
    assert_eq!(z.skipped, vec![(i.key(), SkipReason::NameTooLong)]);
}
