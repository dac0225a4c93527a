//! End to end with the real Kea 2.2 DHCPv4 server (Debian `kea-dhcp4-server`): Kea serves a
//! veth link between two network namespaces, ISC `dhclient` (Debian `isc-dhcp-client`) takes a
//! lease, renews it, releases it, and a second client (another MAC) takes a lease. The lease file
//! Kea wrote (memfile CSV) is loaded and resolved. Needs root (network namespaces), as CI runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kizuna_sessions::{LogKind, Resolution, ResolverConfig, SessionIndex, SubscriberKind, Timestamp, Unresolved};

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Two namespaces joined by a veth pair; removed (with the link) on drop.
struct Net {
    srv: String,
    cli: String,
    srv_if: String,
    cli_if: String,
    kea: Option<Child>,
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(k) = self.kea.as_mut() {
            let _ = k.kill();
            let _ = k.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.srv]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.cli]).status();
    }
}

fn now() -> i64 {
    Timestamp::now().as_secs()
}

fn dhclient(net: &Net, dir: &Path, lease_file: &str, release: bool) -> String {
    let lf = dir.join(lease_file);
    let pf = dir.join(format!("{lease_file}.pid"));
    let mut args = vec!["netns", "exec", &net.cli, "dhclient", "-1", "-v", "-sf", "/bin/true"];
    if release {
        args.push("-r");
    }
    let (lf, pf) = (lf.to_str().unwrap().to_string(), pf.to_str().unwrap().to_string());
    args.extend(["-lf", &lf, "-pf", &pf, &net.cli_if]);
    let out = Command::new("timeout").arg("30").arg("ip").args(&args).output().expect("dhclient (isc-dhcp-client)");
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "dhclient {args:?}:\n{text}");
    text
}

fn leased(text: &str) -> IpAddr {
    let line = text.lines().find(|l| l.starts_with("bound to ")).unwrap_or_else(|| panic!("no lease:\n{text}"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

fn who(idx: &SessionIndex, ip: IpAddr, at: i64) -> Result<String, Unresolved> {
    match idx.resolve(ip, None, Timestamp::from_secs(at)) {
        Resolution::Resolved { subscriber, .. } => {
            assert_eq!(subscriber.kind, SubscriberKind::Dhcp);
            Ok(subscriber.key)
        }
        Resolution::Unresolved(u) => Err(u),
    }
}

#[test]
fn kea_memfile_leases_resolve() {
    let tag = std::process::id() % 100_000;
    let dir: PathBuf = std::env::temp_dir().join(format!("kizuna-kea-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut net = Net {
        srv: format!("kzs-s{tag}"),
        cli: format!("kzs-c{tag}"),
        srv_if: format!("kzs{tag}"),
        cli_if: format!("kzc{tag}"),
        kea: None,
    };
    run(&["ip", "netns", "add", &net.srv]);
    run(&["ip", "netns", "add", &net.cli]);
    run(&["ip", "link", "add", &net.srv_if, "type", "veth", "peer", "name", &net.cli_if]);
    run(&["ip", "link", "set", &net.srv_if, "netns", &net.srv]);
    run(&["ip", "link", "set", &net.cli_if, "netns", &net.cli]);
    run(&["ip", "-n", &net.srv, "addr", "add", "192.0.2.1/24", "dev", &net.srv_if]);
    for (ns, ifc) in [(&net.srv, &net.srv_if), (&net.cli, &net.cli_if)] {
        run(&["ip", "-n", ns, "link", "set", ifc, "up"]);
        run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    let mac_a = "02:00:00:00:0a:01";
    run(&["ip", "-n", &net.cli, "link", "set", "dev", &net.cli_if, "address", mac_a]);

    let leases = dir.join("kea-leases4.csv");
    let config = format!(
        r#"{{"Dhcp4": {{
  "interfaces-config": {{"interfaces": ["{}"], "dhcp-socket-type": "raw"}},
  "lease-database": {{"type": "memfile", "persist": true, "name": "{}", "lfc-interval": 0}},
  "valid-lifetime": 600, "renew-timer": 300, "rebind-timer": 500,
  "subnet4": [{{"id": 1, "subnet": "192.0.2.0/24", "pools": [{{"pool": "192.0.2.100 - 192.0.2.150"}}]}}],
  "loggers": [{{"name": "kea-dhcp4", "output_options": [{{"output": "stdout"}}], "severity": "INFO"}}]
}}}}"#,
        net.srv_if,
        leases.display()
    );
    std::fs::write(dir.join("kea.json"), config).unwrap();
    let mut kea = Command::new("ip")
        .args(["netns", "exec", &net.srv, "kea-dhcp4", "-c"])
        .arg(dir.join("kea.json"))
        .env("KEA_PIDFILE_DIR", &dir)
        .env("KEA_LOCKFILE_DIR", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kea-dhcp4 (Debian package kea-dhcp4-server)");
    let stdout = kea.stdout.take().unwrap();
    net.kea = Some(kea);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("DHCP4_STARTED") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("kea-dhcp4 did not start");

    // Client A: lease, renewal (INIT-REBOOT), release.
    let t_a = now();
    let a_ip = leased(&dhclient(&net, &dir, "a.leases", false));
    run(&["ip", "-n", &net.cli, "addr", "add", &format!("{a_ip}/24"), "dev", &net.cli_if]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(leased(&dhclient(&net, &dir, "a.leases", false)), a_ip);
    std::thread::sleep(Duration::from_secs(2));
    dhclient(&net, &dir, "a.leases", true);
    let t_release = now();
    run(&["ip", "-n", &net.cli, "addr", "flush", "dev", &net.cli_if]);
    // Client B, another MAC.
    std::thread::sleep(Duration::from_secs(1));
    let mac_b = "02:00:00:00:0b:02";
    run(&["ip", "-n", &net.cli, "link", "set", "dev", &net.cli_if, "address", mac_b]);
    let t_b = now();
    let b_ip = leased(&dhclient(&net, &dir, "b.leases", false));
    std::thread::sleep(Duration::from_millis(500));

    let text = std::fs::read_to_string(&leases).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], kizuna_sessions::kea::KEA_2_2_HEADER, "Kea 2.2's header");
    let a_lines: Vec<&str> = lines.iter().copied().filter(|l| l.contains(mac_a)).collect();
    assert_eq!(a_lines.len(), 3, "lease, renewal, release:\n{text}");
    let release: Vec<&str> = a_lines[2].split(',').collect();
    assert_eq!(release[3], "0", "a release is a line with valid_lifetime 0:\n{text}");
    let renewal: Vec<&str> = a_lines[1].split(',').collect();
    let cltt = renewal[4].parse::<i64>().unwrap() - renewal[3].parse::<i64>().unwrap();
    assert_eq!(release[4].parse::<i64>().unwrap(), cltt, "its expire is the last transaction time:\n{text}");

    let mut idx = SessionIndex::new(ResolverConfig::default());
    let s = idx.load_file(&leases, LogKind::KeaLeases4).unwrap();
    assert_eq!((s.rejected, s.events, s.skipped), (0, 4, 1), "{s:?}");
    assert_eq!(who(&idx, a_ip, t_a + 1), Ok(mac_a.into()));
    assert_eq!(who(&idx, a_ip, cltt), Ok(mac_a.into()));
    // The release time itself is only in Kea's log: a few seconds after cltt, within the skew.
    assert_eq!(who(&idx, a_ip, t_release), Ok(mac_a.into()));
    assert_eq!(who(&idx, b_ip, t_b + 60), Ok(mac_b.into()));
    if a_ip != b_ip {
        assert_eq!(who(&idx, a_ip, t_release + 120), Err(Unresolved::OutsideSession));
    }
    assert_eq!(who(&idx, b_ip, t_b + 3600), Err(Unresolved::OutsideSession), "600 s lease, expired");
    assert_eq!(who(&idx, "192.0.2.200".parse().unwrap(), t_b), Err(Unresolved::NoSession));
    drop(net);
    std::fs::remove_dir_all(&dir).unwrap();
}
