//! `kizuna demo`: the hub, two ISP agents on loopback and the simulated days, end to end.

use assert_cmd::Command;

fn summary_number(line: &str, key: &str) -> u64 {
    let i = line.find(key).unwrap_or_else(|| panic!("no {key:?} in {line}"));
    line[i + key.len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {key:?} in {line}"))
}

#[test]
fn demo_runs_the_loop_with_two_agents_and_writes_notices_to_the_outbox() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("demo");
    let out = Command::cargo_bin("kizuna")
        .expect("binary")
        .args(["demo", "--dir"])
        .arg(&dir)
        .env("RUST_LOG", "error")
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("/console/"), "{stdout}");
    let agents: Vec<&str> = stdout.lines().filter(|l| l.trim_start().starts_with("agent ")).collect();
    assert_eq!(agents.len(), 2, "{stdout}");
    for line in agents {
        let name = line.trim_start()["agent ".len()..].split(':').next().expect("name");
        assert!(summary_number(line, "cases opened") > 0, "{line}");
        let notices = summary_number(line, "notices");
        assert!(notices > 0, "{line}");
        // The outbox on disk holds the letters the agent wrote.
        let outbox = dir.join(name).join("letters");
        let mut files = 0;
        for e in walk(&outbox) {
            let text = std::fs::read_to_string(&e).unwrap_or_default();
            assert!(!text.is_empty(), "{} is empty", e.display());
            files += 1;
        }
        assert!(files > 0, "no letters in {}", outbox.display());
        assert_eq!(summary_number(line, "letters in outbox"), files as u64, "{line}");
        assert!(dir.join(name).join("radacct").is_dir(), "{name}: session logs");
    }
    let zones: Vec<&str> = stdout.lines().filter(|l| l.trim_start().starts_with("DNS zone rpz.")).collect();
    assert_eq!(zones.len(), 2, "one RPZ zone per agent's member:\n{stdout}");
    for z in zones {
        assert!(summary_number(z, "serial") > 1, "{z}");
        assert!(
            summary_number(z, "serial") > summary_number(z, "(first"),
            "the day-5 report's indicators moved the zone's serial: {z}"
        );
        assert!(summary_number(z, ",") > 0, "zone has triggers from the derived indicators: {z}");
    }
    for state in ["reminded", "final-notice", "escalated"] {
        assert!(stdout.contains(state), "some cases reach {state} over the simulated days:\n{stdout}");
    }
    assert!(stdout.contains("remediated"), "cases reach remediation over the simulated days:\n{stdout}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}
