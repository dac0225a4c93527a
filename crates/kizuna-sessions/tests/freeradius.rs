//! End to end with the real FreeRADIUS 3.2 (Debian `freeradius`, `freeradius-utils`): the server
//! runs on a loopback port with its own config in a temporary directory, in Asia/Tokyo time, and
//! writes `detail` files; `radclient` sends accounting as two NASes (from 127.0.0.1 and
//! 127.0.0.2). The files the server wrote are then tailed into the index and resolved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kizuna_sessions::{LogKind, Resolution, ResolverConfig, SessionIndex, SessionTailer, Timestamp, Unresolved};

const T0: i64 = 1_772_668_812; // 2026-03-05T00:00:12Z = 09:00:12 JST

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn temp_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let d = std::env::temp_dir().join(format!("kizuna-fr-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(port: u16) -> String {
    format!(
        r#"prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = ${{confdir}}/log
raddbdir = ${{confdir}}
radacctdir = ${{confdir}}/radacct
name = freeradius
confdir = ${{raddbdir}}
modconfdir = /etc/freeradius/3.0/mods-config
run_dir = ${{confdir}}/run
db_dir = ${{confdir}}
libdir = /usr/lib/freeradius
pidfile = ${{run_dir}}/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 16384
hostname_lookups = no
log {{
	destination = stdout
	colourise = no
}}
security {{
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 1
	status_server = yes
}}
policy {{
	$INCLUDE /etc/freeradius/3.0/policy.d/
}}
thread pool {{
	start_servers = 1
	max_servers = 4
	min_spare_servers = 1
	max_spare_servers = 2
	max_requests_per_server = 0
}}
client nas1 {{
	ipaddr = 127.0.0.1
	secret = kizuna-test-secret
}}
client nas2 {{
	ipaddr = 127.0.0.2
	secret = kizuna-test-secret
}}
modules {{
	detail {{
		filename = ${{radacctdir}}/%{{%{{Packet-Src-IP-Address}}:-%{{Packet-Src-IPv6-Address}}}}/detail-%Y%m%d
		escape_filenames = no
		permissions = 0600
		header = "%t"
	}}
	expr {{
	}}
	always ok {{
		rcode = ok
	}}
}}
server default {{
	listen {{
		type = acct
		ipaddr = 127.0.0.1
		port = {port}
	}}
	preacct {{
		acct_unique
	}}
	accounting {{
		detail
		ok
	}}
}}
"#
    )
}

fn start_server(dir: &Path) -> (Server, u16) {
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(dir.join("radiusd.conf"), config(port)).unwrap();
    std::fs::write(dir.join("dictionary"), "").unwrap();
    for d in ["log", "run", "radacct"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let mut child = Command::new("freeradius")
        .args(["-X", "-d"])
        .arg(dir)
        .args(["-l", "stdout"])
        .env("TZ", "Asia/Tokyo")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("freeradius (Debian package freeradius; run scripts/setup-test-deps.sh)");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("Ready to process requests") {
                let _ = tx.send(Ok(()));
            }
            log.push(line);
        }
        let _ = tx.send(Err(log.join("\n")));
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(())) => {}
        Ok(Err(log)) => panic!("freeradius exited:\n{log}"),
        Err(_) => panic!("freeradius not ready in 30 s"),
    }
    (Server(child), port)
}

/// Sends one accounting request with `radclient` and waits for the response.
fn send(port: u16, attrs: &str) {
    let mut child = Command::new("radclient")
        .args(["-r", "3", "-t", "3"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["acct", "kizuna-test-secret"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient (Debian package freeradius-utils)");
    child.stdin.take().unwrap().write_all(attrs.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "radclient failed for\n{attrs}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn session(status: &str, nas: &str, src: &str, sid: &str, user: &str, at: i64, extra: &str) -> String {
    format!(
        "Acct-Status-Type = {status}\nUser-Name = \"{user}\"\nAcct-Session-Id = \"{sid}\"\nNAS-IP-Address = {nas}\n\
         Packet-Src-IP-Address = {src}\nEvent-Timestamp = {}\n{extra}",
        T0 + at
    )
}

fn who(idx: &SessionIndex, ip: &str, at: i64) -> Result<String, Unresolved> {
    match idx.resolve(ip.parse::<IpAddr>().unwrap(), None, Timestamp::from_secs(T0 + at)) {
        Resolution::Resolved { subscriber, .. } => Ok(subscriber.key),
        Resolution::Unresolved(u) => Err(u),
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for nas in std::fs::read_dir(dir).unwrap().flatten() {
        for f in std::fs::read_dir(nas.path()).unwrap().flatten() {
            v.push(f.path());
        }
    }
    v.sort();
    v
}

#[test]
fn freeradius_detail_files_resolve() {
    let dir = temp_dir();
    let (server, port) = start_server(&dir);
    let nas1 = ("192.0.2.1", "127.0.0.1");
    let nas2 = ("192.0.2.2", "127.0.0.2");
    let alice_v4 = "Framed-IP-Address = 198.51.100.7\nDelegated-IPv6-Prefix = 2001:db8:1200::/56\n\
                    Framed-IPv6-Prefix = 2001:db8:ff00:1::/64\n";
    // NAS 1: alice Start, Interim, Stop; the Start retransmitted; bob then gets the same address.
    let alice_start = session("Start", nas1.0, nas1.1, "A1", "alice@isp.example", 0, alice_v4);
    send(port, &alice_start);
    send(port, &format!("{alice_start}Acct-Delay-Time = 5\n"));
    send(port, &session("Interim-Update", nas1.0, nas1.1, "A1", "alice@isp.example", 600, alice_v4));
    send(
        port,
        &session(
            "Stop",
            nas1.0,
            nas1.1,
            "A1",
            "alice@isp.example",
            3600,
            &format!("{alice_v4}Acct-Session-Time = 3600\n"),
        ),
    );
    send(port, &session("Start", nas1.0, nas1.1, "B1", "bob@isp.example", 3700, "Framed-IP-Address = 198.51.100.7\n"));
    // NAS 2: carol with the same Acct-Session-Id as alice; then the NAS reboots (Accounting-On).
    send(
        port,
        &session(
            "Start",
            nas2.0,
            nas2.1,
            "A1",
            "carol@isp.example",
            0,
            "Framed-IP-Address = 198.51.100.20\nDelegated-IPv6-Prefix = 2001:db8:3400::/56\n",
        ),
    );

    let radacct = dir.join("radacct");
    let state = dir.join("tail.state");
    let mut idx = SessionIndex::new(ResolverConfig::default());
    let mut tailer = SessionTailer::new(vec![(radacct.clone(), LogKind::RadiusDetail)], &state).unwrap();
    let first = tailer.poll(&mut idx).unwrap();
    assert_eq!(first.rejected, 0, "{:?}", first.rejections);
    assert_eq!(first.events, 6, "{first:?}");
    assert_eq!(idx.len(), 3, "the retransmitted Start is the same session");
    let written = files(&radacct);
    assert_eq!(written.len(), 2, "one directory per NAS: {written:?}");
    let text: String = written.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    assert!(text.contains("Event-Timestamp = \"Mar  5 2026 09:00:12 JST\""), "server-local text times:\n{text}");
    assert_eq!(text.matches("User-Name = \"alice@isp.example\"").count(), 4, "the retransmission is logged twice");

    assert_eq!(who(&idx, "198.51.100.7", 100), Ok("alice@isp.example".into()));
    assert_eq!(who(&idx, "2001:db8:1200:42::1", 100), Ok("alice@isp.example".into()));
    assert_eq!(who(&idx, "2001:db8:ff00:1::1", 100), Ok("alice@isp.example".into()));
    assert_eq!(who(&idx, "198.51.100.7", 3650), Err(Unresolved::OutsideSession));
    assert_eq!(who(&idx, "198.51.100.7", 5000), Ok("bob@isp.example".into()));
    assert_eq!(who(&idx, "2001:db8:1200:42::1", 5000), Err(Unresolved::OutsideSession));
    assert_eq!(who(&idx, "198.51.100.20", 1000), Ok("carol@isp.example".into()));
    assert_eq!(who(&idx, "198.51.100.99", 1000), Err(Unresolved::NoSession));
    let Resolution::Resolved { session, .. } =
        idx.resolve("198.51.100.7".parse().unwrap(), None, Timestamp::from_secs(T0 + 100))
    else {
        panic!()
    };
    assert_eq!(session.session_id.as_deref(), Some("A1"));
    assert_eq!(session.nas.as_deref(), Some("192.0.2.1"));
    assert_eq!((session.start, session.end), (Timestamp::from_secs(T0), Some(Timestamp::from_secs(T0 + 3600))));

    // Appended records are picked up by the next poll: NAS 2 reboots at +1800.
    send(
        port,
        &format!(
            "Acct-Status-Type = Accounting-On\nNAS-IP-Address = {}\nPacket-Src-IP-Address = {}\nEvent-Timestamp = {}\n",
            nas2.0,
            nas2.1,
            T0 + 1800
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut second = tailer.poll(&mut idx).unwrap();
    while second.events == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        second = tailer.poll(&mut idx).unwrap();
    }
    assert_eq!(second.events, 1, "{second:?}");
    assert_eq!(who(&idx, "198.51.100.20", 1000), Ok("carol@isp.example".into()));
    assert_eq!(who(&idx, "198.51.100.20", 2000), Err(Unresolved::OutsideSession), "Accounting-On closed it");
    assert_eq!(who(&idx, "198.51.100.7", 5000), Ok("bob@isp.example".into()), "the other NAS is untouched");

    // A restarted agent with the same state file reads nothing twice.
    drop(server);
    let mut again = SessionTailer::new(vec![(radacct.clone(), LogKind::RadiusDetail)], &state).unwrap();
    let mut fresh = SessionIndex::new(ResolverConfig::default());
    assert_eq!(again.poll(&mut fresh).unwrap().events, 0);
    // And a bulk load of the same files gives the same answers.
    let mut bulk = SessionIndex::new(ResolverConfig::default());
    for f in &written {
        let s = bulk.load_file(f, LogKind::RadiusDetail).unwrap();
        assert_eq!(s.rejected, 0);
    }
    let mut tree = SessionIndex::new(ResolverConfig::default());
    let s = tree.load_path(&radacct, LogKind::RadiusDetail).unwrap();
    assert_eq!((s.files, s.events, s.rejected), (2, 7, 0), "{s:?}");
    for (ip, at) in [("198.51.100.7", 100), ("198.51.100.7", 5000), ("198.51.100.20", 2000), ("2001:db8:1200::1", 10)] {
        assert_eq!(who(&bulk, ip, at), who(&idx, ip, at), "{ip} at +{at}");
        assert_eq!(who(&tree, ip, at), who(&idx, ip, at), "{ip} at +{at}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
