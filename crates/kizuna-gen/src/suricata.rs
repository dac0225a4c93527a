//! Suricata EVE JSON lines (`eve.json`): alert, flow, dns, http, tls, anomaly and periodic stats
//! records mixed in time order, with the fields the EVE documentation lists.

use std::io::{self, BufWriter, Write};
use std::net::IpAddr;

use crate::ctx::{Ctx, Fam, host_in};
use crate::json::jstr;
use crate::rng::{R, mix};
use crate::text::{C2_TLDS, Domain, Hex, JP_TLDS};
use crate::time::write_iso_offset;
use crate::{EventSpec, World};

/// Japan Standard Time: sensors log local time.
const OFFSET_MIN: i32 = 540;

/// `(signature_id, rev, signature, category, severity, transport, dest port)`.
type Sig = (u32, u32, &'static str, &'static str, u8, &'static str, u16);
const SIGS: &[(Sig, u32)] = &[
    ((2_001_219, 20, "ET SCAN Potential SSH Scan", "Attempted Information Leak", 2, "TCP", 22), 14),
    (
        (
            2_023_452,
            2,
            "ET TROJAN Possible Linux.Mirai Login Attempt (xc3511)",
            "A Network Trojan was detected",
            1,
            "TCP",
            23,
        ),
        10,
    ),
    ((2_010_935, 3, "ET SCAN Suspicious inbound to MSSQL port 1433", "Potentially Bad Traffic", 2, "TCP", 1433), 6),
    ((2_010_937, 3, "ET SCAN Suspicious inbound to mySQL port 3306", "Potentially Bad Traffic", 2, "TCP", 3306), 5),
    (
        (2_010_939, 3, "ET SCAN Suspicious inbound to PostgreSQL port 5432", "Potentially Bad Traffic", 2, "TCP", 5432),
        3,
    ),
    ((2_002_911, 6, "ET SCAN Potential VNC Scan 5900-5920", "Attempted Information Leak", 2, "TCP", 5900), 4),
    (
        (
            2_001_569,
            15,
            "ET SCAN Behavioral Unusual Port 445 traffic Potential Scan or Infection",
            "Misc activity",
            3,
            "TCP",
            445,
        ),
        6,
    ),
    (
        (
            2_027_063,
            3,
            "ET EXPLOIT Outbound GPON Authentication Bypass Attempt (CVE-2018-10561)",
            "Attempted Administrator Privilege Gain",
            1,
            "TCP",
            8080,
        ),
        4,
    ),
    (
        (
            2_025_883,
            3,
            "ET EXPLOIT Huawei HG532 Remote Code Execution (CVE-2017-17215)",
            "Attempted User Privilege Gain",
            1,
            "TCP",
            37_215,
        ),
        5,
    ),
    (
        (
            2_029_022,
            2,
            "ET MALWARE Win32/Emotet CnC Activity (POST) M2",
            "A Network Trojan was detected",
            1,
            "TCP",
            8080,
        ),
        3,
    ),
    ((2_031_071, 2, "ET MALWARE Andromeda/Gamarue CnC Checkin", "A Network Trojan was detected", 1, "TCP", 80), 4),
    ((2_402_000, 6_901, "ET DROP Dshield Block Listed Source group 1", "Misc Attack", 2, "TCP", 8088), 8),
    ((2_400_001, 3_782, "ET DROP Spamhaus DROP Listed Traffic Inbound group 2", "Misc Attack", 2, "TCP", 25), 5),
    ((2_013_028, 7, "ET POLICY curl User-Agent Outbound", "Attempted Information Leak", 2, "TCP", 80), 3),
    ((2_024_897, 1, "ET USER_AGENTS Go HTTP Client User-Agent", "Misc activity", 3, "TCP", 80), 4),
    ((2_008_581, 7, "ET P2P BitTorrent DHT ping request", "Potential Corporate Privacy Violation", 1, "UDP", 6881), 2),
    ((2_027_865, 4, "ET INFO Observed DNS Query to .cloud TLD", "Potentially Bad Traffic", 2, "UDP", 53), 2),
    ((2_210_045, 2, "SURICATA STREAM Packet with invalid ack", "Generic Protocol Command Decode", 3, "TCP", 443), 6),
];

const ANOMALIES: &[(&str, &str, &str)] = &[
    ("stream", "stream.pkt_invalid_ack", ""),
    ("stream", "stream.3whs_synack_with_wrong_ack", ""),
    ("decode", "decoder.ipv4.trunc_pkt", ""),
    ("applayer", "APPLAYER_DETECT_PROTOCOL_ONLY_ONE_DIRECTION", "proto_detect"),
    ("applayer", "APPLAYER_MISMATCH_PROTOCOL_BOTH_DIRECTIONS", "proto_detect"),
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0 Safari/537.36",
    "Go-http-client/1.1",
    "curl/7.88.1",
    "Wget/1.21.3",
    "Mozilla/5.0 zgrab/0.x",
    "python-requests/2.31.0",
];
const PATHS: &[&str] =
    &["/", "/index.html", "/login.cgi", "/boaform/admin/formLogin", "/shell?cd+/tmp", "/HNAP1/", "/.env"];
const IFACES: &[&str] = &["eth0", "ens192", "eth1"];

#[derive(Clone, Copy, PartialEq)]
enum Ev {
    Alert,
    Flow,
    Dns,
    Http,
    Tls,
    Anomaly,
}
const EVENTS: &[(Ev, u32)] =
    &[(Ev::Alert, 30), (Ev::Flow, 26), (Ev::Dns, 16), (Ev::Http, 10), (Ev::Tls, 10), (Ev::Anomaly, 4)];

#[derive(Default)]
struct Counters {
    pkts: u64,
    bytes: u64,
    v4: u64,
    v6: u64,
    tcp: u64,
    udp: u64,
    alerts: u64,
    http: u64,
    tls: u64,
    dns: u64,
}

/// Write `spec.lines` EVE JSON lines with timestamps in `[start, start + span)` (JST offset),
/// including a `stats` record about every 1% of lines (at least 8 s apart, Suricata's default).
pub fn suricata_eve(world: &World, spec: &EventSpec, out: &mut impl Write) -> io::Result<()> {
    let ctx = Ctx::new(world, spec, 0x05e1_e7e0, Fam::Mixed);
    let mut r = R::derive(spec.seed, 0x05e1_e7e1);
    let mut w = BufWriter::with_capacity(1 << 16, out);
    // Watched networks (what scanners hit), resolvers, and servers outside the members.
    let watched4: Vec<_> = (0..4).map(|_| ctx.infrastructure(&mut r, false).0).collect();
    let watched6: Vec<_> = (0..2).map(|_| ctx.infrastructure(&mut r, true).0).collect();
    let resolvers = [ctx.infrastructure(&mut r, false).0, ctx.infrastructure(&mut r, true).0];
    let servers4: Vec<_> = (0..32).map(|_| ctx.infrastructure(&mut r, false).0).collect();
    let servers6: Vec<_> = (0..8).map(|_| ctx.infrastructure(&mut r, true).0).collect();

    let start_us = spec.start.saturating_mul(1_000_000);
    let span_us = spec.span_secs.max(1) as f64 * 1e6;
    let gap = span_us / spec.lines.max(1) as f64;
    let stats_every = ((span_us / (spec.lines.max(1) as f64 / 100.0)).max(8e6)) as i64;
    let mut next_stats = start_us + stats_every;
    let mut t = start_us;
    let mut c = Counters::default();
    let sensor = r.below(3) as usize;
    for _ in 0..spec.lines {
        t += r.exp(gap) as i64;
        if t >= next_stats {
            stats(&mut w, &c, next_stats, start_us)?;
            next_stats += stats_every;
            continue;
        }
        let host = ctx.host(ctx.pick_host(&mut r));
        let v6 = host.ip.is_ipv6();
        let ev = *r.weighted(EVENTS);
        let flow_id = r.range(1_000_000_000_000_000, (1 << 53) - 1);
        let sport = r.range(1_024, 65_535) as u16;
        let pick = |r: &mut R, xs: &[IpAddr]| xs[r.index(xs.len())];
        let server = if v6 { pick(&mut r, &servers6) } else { pick(&mut r, &servers4) };
        let pkts = 1 + r.exp(12.0) as u64;
        let bytes = pkts * r.range(60, 1400);
        c.pkts += pkts * 2;
        c.bytes += bytes * 2;
        if v6 {
            c.v6 += pkts
        } else {
            c.v4 += pkts
        }
        match ev {
            Ev::Alert => {
                let sig = r.weighted(SIGS);
                let watched = if v6 { pick(&mut r, &watched6) } else { pick(&mut r, &watched4) };
                // Scans come in to the watched networks; trojans and exploits go out to servers.
                let inbound = sig.4 != 1 || sig.2.contains("Login") || sig.2.contains("Huawei");
                let dest = if inbound { vary(&mut r, watched) } else { server };
                if sig.5 == "TCP" {
                    c.tcp += 1
                } else {
                    c.udp += 1
                }
                c.alerts += 1;
                open(&mut w, t, flow_id, sensor, "alert", host.ip, sport, dest, sig.6, proto(sig.5, v6))?;
                write!(
                    w,
                    ",\"pkt_src\":\"wire/pcap\",\"alert\":{{\"action\":\"allowed\",\"gid\":1,\"signature_id\":{},\"rev\":{},\"signature\":",
                    sig.0, sig.1
                )?;
                jstr(&mut w, sig.2)?;
                w.write_all(b",\"category\":")?;
                jstr(&mut w, sig.3)?;
                write!(w, ",\"severity\":{}", sig.4)?;
                let sev = ["Critical", "Major", "Minor", "Informational"][usize::from(sig.4.min(3))];
                write!(w, ",\"metadata\":{{\"signature_severity\":[\"{sev}\"],\"updated_at\":[\"2025_11_04\"]}}}}")?;
                w.write_all(b",\"direction\":\"to_server\"")?;
                flow_obj(&mut w, t - r.range(0, 2_000_000) as i64, pkts, bytes, 0, 0, None)?;
                w.write_all(b"}\n")?;
            }
            Ev::Flow => {
                let tcp = r.chance(0.8);
                let (dport, app) = if tcp {
                    *r.pick(&[
                        (80u16, "http"),
                        (443, "tls"),
                        (22, "ssh"),
                        (23, "failed"),
                        (8080, "failed"),
                        (445, "failed"),
                    ])
                } else {
                    *r.pick(&[(53u16, "dns"), (123, "ntp"), (1900, "failed"), (5060, "sip")])
                };
                if tcp {
                    c.tcp += 1
                } else {
                    c.udp += 1
                }
                let dest =
                    if r.chance(0.5) { server } else { vary(&mut r, if v6 { watched6[0] } else { watched4[0] }) };
                open(
                    &mut w,
                    t,
                    flow_id,
                    sensor,
                    "flow",
                    host.ip,
                    sport,
                    dest,
                    dport,
                    proto(if tcp { "TCP" } else { "UDP" }, v6),
                )?;
                write!(w, ",\"app_proto\":\"{app}\"")?;
                let age = r.range(0, 120);
                let back = if app == "failed" { 0 } else { pkts.saturating_sub(1) };
                let st = if back == 0 { "new" } else { "closed" };
                let start = t - age as i64 * 1_000_000 - r.range(0, 999_999) as i64;
                flow_obj(&mut w, start, pkts, bytes, back, back * r.range(60, 1400), Some((t, age, st)))?;
                if tcp {
                    let flags = if back == 0 { "02" } else { "1b" };
                    write!(
                        w,
                        ",\"tcp\":{{\"tcp_flags\":\"{flags}\",\"tcp_flags_ts\":\"{flags}\",\"tcp_flags_tc\":\"{}\"",
                        if back == 0 { "00" } else { "1b" }
                    )?;
                    if back == 0 {
                        w.write_all(b",\"syn\":true,\"state\":\"syn_sent\"}")?;
                    } else {
                        w.write_all(b",\"syn\":true,\"fin\":true,\"psh\":true,\"ack\":true,\"state\":\"closed\"}")?;
                    }
                }
                w.write_all(b"}\n")?;
            }
            Ev::Dns => {
                c.udp += 1;
                c.dns += 1;
                let resolver = if v6 { resolvers[1] } else { resolvers[0] };
                let id = r.below(65_536);
                let dga = host.bits.is_multiple_of(4);
                let name = Domain {
                    seed: if dga { r.u64() } else { mix(r.below(500)) },
                    tlds: if dga { C2_TLDS } else { JP_TLDS },
                };
                let rrtype = if r.chance(0.7) { "A" } else { "AAAA" };
                if r.chance(0.5) {
                    open(&mut w, t, flow_id, sensor, "dns", host.ip, sport, resolver, 53, proto("UDP", v6))?;
                    writeln!(
                        w,
                        ",\"dns\":{{\"type\":\"query\",\"id\":{id},\"rrname\":\"{name}\",\"rrtype\":\"{rrtype}\",\"tx_id\":0,\"opcode\":0}}}}"
                    )?;
                } else {
                    open(&mut w, t, flow_id, sensor, "dns", resolver, 53, host.ip, sport, proto("UDP", v6))?;
                    write!(w, ",\"dns\":{{\"version\":2,\"type\":\"answer\",\"id\":{id},")?;
                    if dga {
                        writeln!(
                            w,
                            "\"flags\":\"8183\",\"qr\":true,\"rd\":true,\"ra\":true,\"opcode\":0,\"rrname\":\"{name}\",\"rrtype\":\"{rrtype}\",\"rcode\":\"NXDOMAIN\"}}}}"
                        )?;
                    } else {
                        let ttl = r.range(30, 3600);
                        let a = if rrtype == "A" { pick(&mut r, &servers4) } else { pick(&mut r, &servers6) };
                        writeln!(
                            w,
                            "\"flags\":\"8180\",\"qr\":true,\"rd\":true,\"ra\":true,\"opcode\":0,\"rrname\":\"{name}\",\"rrtype\":\"{rrtype}\",\"rcode\":\"NOERROR\",\"answers\":[{{\"rrname\":\"{name}\",\"rrtype\":\"{rrtype}\",\"ttl\":{ttl},\"rdata\":\"{a}\"}}],\"grouped\":{{\"{rrtype}\":[\"{a}\"]}}}}}}"
                        )?;
                    }
                }
            }
            Ev::Http => {
                c.tcp += 1;
                c.http += 1;
                let dport = if r.chance(0.8) { 80 } else { 8080 };
                open(&mut w, t, flow_id, sensor, "http", host.ip, sport, server, dport, proto("TCP", v6))?;
                let name = Domain { seed: mix(ip_bits(server)), tlds: JP_TLDS };
                let status = *r.pick(&[200u16, 200, 200, 301, 302, 404, 403, 500]);
                w.write_all(b",\"tx_id\":0,\"http\":{\"hostname\":")?;
                if r.chance(0.3) {
                    write!(w, "\"{server}\"")?
                } else {
                    write!(w, "\"www.{name}\"")?
                }
                w.write_all(b",\"url\":")?;
                jstr(&mut w, r.pick::<&str>(PATHS))?;
                w.write_all(b",\"http_user_agent\":")?;
                jstr(&mut w, AGENTS[(host.bits % AGENTS.len() as u64) as usize])?;
                writeln!(
                    w,
                    ",\"http_content_type\":\"text/html\",\"http_method\":\"{}\",\"protocol\":\"HTTP/1.1\",\"status\":{status},\"length\":{}}}}}",
                    if r.chance(0.85) { "GET" } else { "POST" },
                    r.range(0, 50_000)
                )?;
            }
            Ev::Tls => {
                c.tcp += 1;
                c.tls += 1;
                open(&mut w, t, flow_id, sensor, "tls", host.ip, sport, server, 443, proto("TCP", v6))?;
                let name = Domain {
                    seed: mix(ip_bits(server) ^ 0x715),
                    tlds: if host.bits.is_multiple_of(6) { C2_TLDS } else { JP_TLDS },
                };
                let self_signed = host.bits.is_multiple_of(6);
                let version = if r.chance(0.7) { "TLS 1.3" } else { "TLS 1.2" };
                write!(w, ",\"tls\":{{\"subject\":\"CN={name}\",\"issuerdn\":")?;
                if self_signed {
                    write!(w, "\"CN={name}\"")?
                } else {
                    jstr(&mut w, "C=US, O=Let's Encrypt, CN=R11")?
                }
                let fp = Hex { seed: mix(ip_bits(server) ^ 0xf9), bytes: 20 };
                write!(w, ",\"serial\":\"{}\",\"fingerprint\":\"", Hex { seed: ip_bits(server), bytes: 9 })?;
                colon_hex(&mut w, fp)?;
                write!(
                    w,
                    "\",\"sni\":\"{name}\",\"version\":\"{version}\",\"notbefore\":\"2026-01-10T00:00:00\",\"notafter\":\"2026-04-10T23:59:59\""
                )?;
                writeln!(
                    w,
                    ",\"ja3\":{{\"hash\":\"{}\"}},\"ja3s\":{{\"hash\":\"{}\"}}}}}}",
                    Hex { seed: host.bits, bytes: 16 },
                    Hex { seed: ip_bits(server), bytes: 16 }
                )?;
            }
            Ev::Anomaly => {
                let a = r.pick(ANOMALIES);
                c.tcp += 1;
                open(&mut w, t, flow_id, sensor, "anomaly", host.ip, sport, server, 443, proto("TCP", v6))?;
                write!(w, ",\"anomaly\":{{\"type\":\"{}\",\"event\":\"{}\"", a.0, a.1)?;
                if !a.2.is_empty() {
                    write!(w, ",\"layer\":\"{}\"", a.2)?;
                }
                w.write_all(b"}}\n")?;
            }
        }
    }
    w.flush()
}

fn proto(transport: &'static str, v6: bool) -> &'static str {
    match (transport, v6) {
        ("ICMP", true) => "IPv6-ICMP",
        (t, _) => t,
    }
}

/// Another address in the same /24 (or /64) as `ip`: scans hit whole watched networks.
fn vary(r: &mut R, ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v) => {
            let net = ipnet::Ipv4Net::new(v, 24).map(|n| ipnet::IpNet::V4(n.trunc()));
            net.map_or(ip, |n| host_in(r, &n))
        }
        IpAddr::V6(v) => {
            let net = ipnet::Ipv6Net::new(v, 64).map(|n| ipnet::IpNet::V6(n.trunc()));
            net.map_or(ip, |n| host_in(r, &n))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn open(
    w: &mut impl Write,
    t: i64,
    flow_id: u64,
    sensor: usize,
    event_type: &str,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    proto: &str,
) -> io::Result<()> {
    w.write_all(b"{\"timestamp\":\"")?;
    write_iso_offset(&mut *w, t, OFFSET_MIN)?;
    write!(
        w,
        "\",\"flow_id\":{flow_id},\"in_iface\":\"{}\",\"event_type\":\"{event_type}\",\"src_ip\":\"{src}\",\"src_port\":{sport},\"dest_ip\":\"{dst}\",\"dest_port\":{dport},\"proto\":\"{proto}\"",
        IFACES[sensor % IFACES.len()]
    )
}

fn flow_obj(
    w: &mut impl Write,
    start: i64,
    pkts: u64,
    bytes: u64,
    back_pkts: u64,
    back_bytes: u64,
    end: Option<(i64, u64, &str)>,
) -> io::Result<()> {
    write!(
        w,
        ",\"flow\":{{\"pkts_toserver\":{pkts},\"pkts_toclient\":{back_pkts},\"bytes_toserver\":{bytes},\"bytes_toclient\":{back_bytes},\"start\":\""
    )?;
    write_iso_offset(&mut *w, start, OFFSET_MIN)?;
    w.write_all(b"\"")?;
    if let Some((t, age, state)) = end {
        w.write_all(b",\"end\":\"")?;
        write_iso_offset(&mut *w, t, OFFSET_MIN)?;
        write!(w, "\",\"age\":{age},\"state\":\"{state}\",\"reason\":\"timeout\",\"alerted\":false")?;
    }
    w.write_all(b"}")
}

fn stats(w: &mut impl Write, c: &Counters, t: i64, start: i64) -> io::Result<()> {
    w.write_all(b"{\"timestamp\":\"")?;
    write_iso_offset(&mut *w, t, OFFSET_MIN)?;
    let uptime = (t - start) / 1_000_000 + 3_600;
    let drops = c.pkts / 1_000;
    writeln!(
        w,
        "\",\"event_type\":\"stats\",\"stats\":{{\"uptime\":{uptime},\"capture\":{{\"kernel_packets\":{},\"kernel_drops\":{drops}}},\"decoder\":{{\"pkts\":{},\"bytes\":{},\"ipv4\":{},\"ipv6\":{},\"tcp\":{},\"udp\":{},\"avg_pkt_size\":{},\"max_pkt_size\":1514}},\"flow\":{{\"tcp\":{},\"udp\":{}}},\"detect\":{{\"alert\":{}}},\"app_layer\":{{\"flow\":{{\"http\":{},\"tls\":{},\"dns_udp\":{}}}}}}}}}",
        c.pkts + drops,
        c.pkts,
        c.bytes,
        c.v4,
        c.v6,
        c.tcp,
        c.udp,
        c.bytes.checked_div(c.pkts).unwrap_or(0),
        c.tcp,
        c.udp,
        c.alerts,
        c.http,
        c.tls,
        c.dns
    )
}

fn colon_hex(w: &mut impl Write, h: Hex) -> io::Result<()> {
    let s = h.to_string();
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        if i > 0 {
            w.write_all(b":")?;
        }
        w.write_all(pair)?;
    }
    Ok(())
}

fn ip_bits(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v) => u64::from(u32::from(v)),
        IpAddr::V6(v) => {
            let x = u128::from(v);
            (x as u64) ^ ((x >> 64) as u64)
        }
    }
}
