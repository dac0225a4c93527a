use expect_test::expect_file;
use kizuna_model::{ClassificationType as C, Timestamp};
use kizuna_parsers::Format;
use serde_json::json;

use crate::common::*;

#[test]
fn eve_fixture() {
    let items = run(&Format::Suricata, &ctx("eve.json"), &fixture("suricata/eve.json"));
    expect_file!["../fixtures/suricata/eve.expected"].assert_eq(&render(&items));
    assert_eq!(counts(&items), (5, 7, 5));
    assert_eq!(
        skips(&items),
        [
            "suricata.http",
            "suricata.dns",
            "suricata.anomaly",
            "suricata.tls",
            "suricata.flow",
            "suricata.stats",
            "suricata.fileinfo"
        ]
    );

    let obs = observations(&items);
    let a = obs[0];
    assert_eq!(a.classification.kind, C::InfectedSystem);
    assert_eq!(a.classification.identifier.as_deref(), Some("sid-2024897"));
    // 2026-03-05T01:00:12.123456+0100
    assert_eq!(a.time_source, Some(Timestamp::from_micros(1_772_668_812_123_456)));
    assert_eq!(a.source.ip, Some("198.51.100.23".parse().unwrap()));
    assert_eq!(a.source.port, Some(49152));
    assert_eq!(a.destination.ip, Some("192.0.2.80".parse().unwrap()));
    assert_eq!(a.destination.port, Some(80));
    assert_eq!(a.destination.fqdn.as_deref(), Some("c2.bad.example"));
    assert_eq!(a.destination.url.as_deref(), Some("http://c2.bad.example/gate.php"));
    assert_eq!(a.protocol.transport.as_deref(), Some("tcp"));
    assert_eq!(a.protocol.application.as_deref(), Some("http"));
    assert_eq!(a.event_description.as_deref(), Some("ET MALWARE Win32/Andromeda Checkin"));
    assert_eq!(a.feed.name, "suricata");
    assert_eq!(extra(a, "suricata.signature_id"), &json!(2024897));
    assert_eq!(extra(a, "suricata.severity"), &json!(1));
    assert_eq!(extra(a, "suricata.category"), &json!("A Network Trojan was detected"));
    assert_eq!(extra(a, "suricata.action"), &json!("allowed"));
    assert_eq!(extra(a, "suricata.flow_id"), &json!(1_234_567_890_123_456_u64));

    let v6 = obs[1];
    assert_eq!(v6.classification.kind, C::IdsAlert);
    assert_eq!(v6.source.ip, Some("2001:db8:80::15".parse().unwrap()));
    assert_eq!(v6.destination.fqdn.as_deref(), Some("evil.example"));
    assert_eq!(extra(v6, "suricata.action"), &json!("blocked"));

    let icmp = obs[2];
    assert_eq!(icmp.protocol.transport.as_deref(), Some("icmp"));
    assert_eq!(icmp.source.port, None);

    let scan = obs[3];
    assert_eq!(scan.classification.kind, C::Scanner);
    assert_eq!(scan.protocol.application, None); // app_proto "failed"
    assert_eq!(extra(scan, "suricata.host"), &json!("ids-tokyo-02"));

    // "Attempted Information Leak" alone says little: a policy alert stays an ids-alert.
    assert_eq!(obs[4].classification.kind, C::IdsAlert);

    let rej = rejects(&items);
    assert_eq!(rej.iter().map(|r| r.line).collect::<Vec<_>>(), [12, 13, 14, 15, 16]);
    assert_eq!(rej[0].reason, "src_ip: invalid IP address \"198.51.100.999\"");
    assert_eq!(rej[1].reason, "timestamp: invalid time \"2026-03-05 01:11\"");
    assert!(rej[2].reason.starts_with("not a Suricata EVE event"), "{}", rej[2].reason);
    assert_eq!(rej[3].reason, "event_type: missing");
    assert_eq!(rej[4].reason, "src_port: invalid port \"http\"");
}
