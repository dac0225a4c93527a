//! Shadowserver report CSVs: one report type per file, columns exactly as in Shadowserver's
//! published schema (`reports.json`).

use std::io::{self, BufWriter, Write};
use std::net::IpAddr;

use crate::csv::Csv;
use crate::ctx::{Ctx, Fam, Geo, Host};
use crate::rng::{R, mix};
use crate::text::{C2_TLDS, Domain, Hex, JP_TLDS, Rdns};
use crate::time::{civil, write_http_date, write_space};
use crate::{EventSpec, UnknownReport, World};

/// The columns every `event*` report starts with (device, source and destination, infection).
macro_rules! event_columns {
    ($($extra:literal),* $(,)?) => {
        &[
            "timestamp", "protocol", "src_ip", "src_port", "src_asn", "src_geo", "src_region", "src_city",
            "src_hostname", "src_naics", "src_sector", "device_vendor", "device_type", "device_model", "severity",
            "dst_ip", "dst_port", "dst_asn", "dst_geo", "dst_region", "dst_city", "dst_hostname", "dst_naics",
            "dst_sector", "public_source", "infection", "family", "tag", "application", "version", "event_id",
            $($extra),*
        ]
    };
}
/// The columns every `scan*` and `compromised_website` report starts with (the scanned host).
macro_rules! host_columns {
    ($($extra:literal),* $(,)?) => {
        &[
            "timestamp", "severity", "ip", "protocol", "port", "hostname", "tag", "asn", "geo", "region", "city",
            "naics", "hostname_source", "sector",
            $($extra),*
        ]
    };
}
const SINKHOLE: &[&str] = event_columns!["ssl_cipher", "ssl_servername"];
const SINKHOLE_HTTP: &[&str] = event_columns![
    "http_url",
    "http_host",
    "http_agent",
    "forwarded_by",
    "ssl_cipher",
    "http_referer",
    "ssl_servername",
    "machine_name",
];
const BRUTE_FORCE: &[&str] = event_columns![
    "service",
    "start_time",
    "end_time",
    "client_version",
    "username",
    "password",
    "payload_url",
    "payload_md5",
    "vulnerability_enum",
    "vulnerability_id",
    "vulnerability_class",
    "vulnerability_score",
    "vulnerability_severity",
    "vulnerability_version",
    "target_vendor",
    "target_product",
    "target_class",
];
const SCAN_HTTP: &[&str] = host_columns![
    "http",
    "http_code",
    "http_reason",
    "content_type",
    "connection",
    "www_authenticate",
    "set_cookie",
    "server",
    "content_length",
    "transfer_encoding",
    "http_date",
    "version",
];
const SCAN_TELNET: &[&str] = host_columns!["banner"];
const COMPROMISED_WEBSITE: &[&str] = host_columns![
    "application",
    "url",
    "http_host",
    "category",
    "system",
    "detected_since",
    "server",
    "redirect_target",
    "cc_url",
    "family",
    "status",
    "account",
    "detail",
    "public_source",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Sinkhole,
    SinkholeHttp,
    BruteForce,
    ScanHttp,
    ScanTelnet,
    Compromised,
}

/// `(report type, columns, kind, family)`.
const REPORTS: &[(&str, &[&str], Kind, Fam)] = &[
    ("event4_sinkhole", SINKHOLE, Kind::Sinkhole, Fam::V4),
    ("event4_sinkhole_http", SINKHOLE_HTTP, Kind::SinkholeHttp, Fam::V4),
    ("event4_honeypot_brute_force", BRUTE_FORCE, Kind::BruteForce, Fam::V4),
    ("scan_http", SCAN_HTTP, Kind::ScanHttp, Fam::V4),
    ("scan_telnet", SCAN_TELNET, Kind::ScanTelnet, Fam::V4),
    ("compromised_website", COMPROMISED_WEBSITE, Kind::Compromised, Fam::V4),
    ("event6_sinkhole", SINKHOLE, Kind::Sinkhole, Fam::V6),
    ("event6_sinkhole_http", SINKHOLE_HTTP, Kind::SinkholeHttp, Fam::V6),
    ("scan6_http", SCAN_HTTP, Kind::ScanHttp, Fam::V6),
    ("scan6_telnet", SCAN_TELNET, Kind::ScanTelnet, Fam::V6),
    ("compromised_website6", COMPROMISED_WEBSITE, Kind::Compromised, Fam::V6),
];

/// Report types [`shadowserver_report`] can write (the file-name report type, e.g.
/// `event4_sinkhole`). `event4_*`/`scan_*` carry IPv4 only, `event6_*`/`scan6_*`/`*6` IPv6 only.
pub fn shadowserver_reports() -> impl Iterator<Item = &'static str> {
    REPORTS.iter().map(|r| r.0)
}

/// The CSV columns of a report type, in order, as Shadowserver's schema lists them.
pub fn shadowserver_fields(report: &str) -> Option<&'static [&'static str]> {
    REPORTS.iter().find(|r| r.0 == report).map(|r| r.1)
}

/// A file name as Shadowserver names its daily files (`2026-03-05-event4_sinkhole-kizuna.csv`):
/// IntelMQ's parser takes the report type from it.
pub fn shadowserver_file_name(report: &str, day_unix: i64) -> String {
    let c = civil(day_unix);
    format!("{:04}-{:02}-{:02}-{report}-kizuna.csv", c.y, c.mo, c.d)
}

/// Write one Shadowserver report of type `report` (see [`shadowserver_reports`]): the header
/// line then `spec.lines` rows sorted by time. Unknown report types fail with
/// `io::ErrorKind::InvalidInput` wrapping [`UnknownReport`]. Constant memory in `spec.lines`.
pub fn shadowserver_report(report: &str, world: &World, spec: &EventSpec, out: &mut impl Write) -> io::Result<()> {
    let Some(&(name, fields, kind, fam)) = REPORTS.iter().find(|r| r.0 == report) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, UnknownReport(report.to_string())));
    };
    let stream = name_hash(name);
    let ctx = Ctx::new(world, spec, stream, fam);
    let mut r = R::derive(spec.seed, stream ^ 0xc5);
    let cols: Vec<F> = fields.iter().map(|f| F::of(f)).collect();
    let infra = Infra::new(&ctx, &mut r, fam == Fam::V6);
    let mut csv = Csv::new(BufWriter::with_capacity(1 << 16, out));
    for f in fields {
        csv.s(f)?;
    }
    csv.end()?;
    let span = spec.span_secs.max(1);
    for i in 0..spec.lines {
        let t = spec.start + (u128::from(i) * u128::from(span) / u128::from(spec.lines.max(1))) as i64;
        let row = Row::new(&ctx, &infra, &mut r, kind, t);
        for &c in &cols {
            row.cell(c, &ctx, &mut csv)?;
        }
        csv.end()?;
    }
    csv.w.flush()
}

macro_rules! fields {
    ($($v:ident = $($s:literal)|+),* $(,)?) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum F { $($v,)* Other }
        impl F {
            fn of(s: &str) -> F {
                match s { $($($s)|+ => F::$v,)* _ => F::Other }
            }
        }
    };
}

fields! {
    Timestamp = "timestamp", Protocol = "protocol", SrcIp = "src_ip" | "ip", SrcPort = "src_port" | "port",
    SrcAsn = "src_asn" | "asn", SrcGeo = "src_geo" | "geo", SrcRegion = "src_region" | "region",
    SrcCity = "src_city" | "city", SrcHostname = "src_hostname" | "hostname", SrcNaics = "src_naics" | "naics",
    SrcSector = "src_sector" | "sector", DeviceVendor = "device_vendor", DeviceType = "device_type",
    DeviceModel = "device_model", Severity = "severity", DstIp = "dst_ip", DstPort = "dst_port", DstAsn = "dst_asn",
    DstGeo = "dst_geo", DstRegion = "dst_region", DstCity = "dst_city", DstNaics = "dst_naics",
    DstSector = "dst_sector", PublicSource = "public_source", Infection = "infection", Family = "family", Tag = "tag",
    Application = "application", SslCipher = "ssl_cipher", SslServername = "ssl_servername", HttpUrl = "http_url",
    HttpHost = "http_host", HttpAgent = "http_agent", Service = "service", StartTime = "start_time",
    EndTime = "end_time", ClientVersion = "client_version", Username = "username", Password = "password",
    PayloadUrl = "payload_url", PayloadMd5 = "payload_md5", HostnameSource = "hostname_source", Http = "http",
    HttpCode = "http_code", HttpReason = "http_reason", ContentType = "content_type", Connection = "connection",
    WwwAuthenticate = "www_authenticate", SetCookie = "set_cookie", Server = "server",
    ContentLength = "content_length", TransferEncoding = "transfer_encoding", HttpDate = "http_date",
    Banner = "banner", Url = "url", Category = "category", System = "system", DetectedSince = "detected_since",
    RedirectTarget = "redirect_target", CcUrl = "cc_url",
}

/// A sinkholed malware family: `(infection, family, tag, transport, port, application, severity)`.
type Mw = (&'static str, &'static str, &'static str, &'static str, u16, &'static str, &'static str);
const MALWARE: &[(Mw, u32)] = &[
    (("andromeda", "andromeda", "avalanche-andromeda", "tcp", 80, "http", "high"), 16),
    (("mirai", "mirai", "mirai", "tcp", 80, "", "high"), 14),
    (("conficker", "conficker", "", "tcp", 80, "http", "high"), 12),
    (("ramnit", "ramnit", "", "tcp", 443, "", "high"), 8),
    (("qsnatch", "qsnatch", "qsnatch", "tcp", 443, "ssl", "high"), 6),
    (("necurs", "necurs", "", "tcp", 443, "ssl", "high"), 5),
    (("sality", "sality", "", "tcp", 80, "http", "high"), 5),
    (("wannacry", "wannacry", "killswitch", "tcp", 80, "http", "high"), 4),
    (("emotet", "emotet", "", "tcp", 8080, "http", "critical"), 3),
    (("gafgyt", "gafgyt", "bashlite", "tcp", 8080, "", "high"), 3),
    (("glupteba", "glupteba", "", "tcp", 443, "ssl", "high"), 3),
    (("virut", "virut", "", "tcp", 80, "", "high"), 3),
    (("nymaim", "nymaim", "avalanche-nymaim", "tcp", 80, "http", "high"), 3),
    (("matsnu", "matsnu", "avalanche-matsnu", "tcp", 80, "http", "high"), 2),
    (("tinba", "tinba", "avalanche-tinba", "tcp", 443, "ssl", "high"), 2),
    (("gozi", "gozi", "avalanche-gozi", "tcp", 443, "ssl", "high"), 2),
    (("pushdo", "pushdo", "", "tcp", 80, "http", "high"), 2),
    (("dorkbot", "dorkbot", "", "tcp", 8080, "http", "high"), 2),
    (("android.hiddad", "hiddad", "", "tcp", 443, "ssl", "medium"), 2),
    (("b68-zeroaccess-2-32bit", "zeroaccess", "", "udp", 16_464, "", "high"), 2),
];

const HTTP_PATHS: &[&str] = &[
    "/",
    "/index.php",
    "/gate.php",
    "/ping.html",
    "/search?q=0",
    "/images/logo.gif",
    "/api/v1/check",
    "/forum/viewtopic.php",
];
const HTTP_AGENTS: &[(&str, u32)] = &[
    ("Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.1; Trident/7.0)", 30),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", 20),
    ("Microsoft-CryptoAPI/10.0", 8),
    ("Wget/1.12 (linux-gnu)", 8),
    ("", 30),
    ("Dalvik/2.1.0 (Linux; U; Android 9; SM-J730F Build/PPR1.180610.011)", 4),
];
const DEVICES: &[(&str, &str, &str)] = &[
    ("MikroTik", "router", "RouterOS"),
    ("Hikvision", "camera", "DS-2CD2032"),
    ("Synology", "nas", "DiskStation"),
    ("Buffalo", "router", "WSR-1166DHP"),
    ("Dahua", "dvr", "DH-XVR5108"),
];
const TLS_CIPHERS: &[&str] = &["TLS_AES_256_GCM_SHA384", "ECDHE-RSA-AES128-GCM-SHA256", "AES128-SHA", ""];
pub(crate) const CREDS: &[((&str, &str), u32)] = &[
    (("root", "root"), 10),
    (("root", "admin"), 8),
    (("admin", "admin"), 10),
    (("root", "123456"), 8),
    (("root", "password"), 5),
    (("root", "12345"), 4),
    (("support", "support"), 4),
    (("user", "user"), 4),
    (("root", "vizxv"), 3),
    (("root", "xc3511"), 3),
    (("root", "default"), 3),
    (("admin", "1234"), 4),
    (("ubnt", "ubnt"), 3),
    (("pi", "raspberry"), 3),
    (("root", "Zte521"), 2),
    (("guest", "guest"), 2),
    (("root", "7ujMko0admin"), 2),
    (("root", "hi3518"), 2),
    (("oracle", "oracle"), 2),
    (("test", "test"), 2),
    (("ftpuser", "ftpuser"), 1),
    (("postgres", "postgres"), 1),
    (("root", ""), 2),
    (("admin", "admin@123"), 1),
];
pub(crate) const SSH_CLIENTS: &[(&str, u32)] = &[
    ("SSH-2.0-Go", 35),
    ("SSH-2.0-libssh_0.9.6", 15),
    ("SSH-2.0-libssh2_1.10.0", 12),
    ("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6", 10),
    ("SSH-2.0-PUTTY", 6),
    ("SSH-2.0-paramiko_3.4.0", 8),
    ("SSH-2.0-OpenSSH_7.4", 6),
    ("SSH-2.0-AsyncSSH_2.14.2", 3),
];

/// `(server, code, reason, www_authenticate, content_type, weight)` of scanned web servers.
type Web = (&'static str, u16, &'static str, &'static str, &'static str);
const WEB: &[(Web, u32)] = &[
    (("nginx", 200, "OK", "", "text/html"), 18),
    (("Apache/2.4.41 (Ubuntu)", 200, "OK", "", "text/html; charset=UTF-8"), 12),
    (("lighttpd/1.4.35", 200, "OK", "", "text/html"), 6),
    (("Boa/0.94.14rc21", 401, "Unauthorized", "Basic realm=\"index.html\"", "text/html"), 6),
    (("mini_httpd/1.19 19dec2003", 200, "OK", "", "text/html"), 4),
    (("micro_httpd", 401, "Unauthorized", "Basic realm=\"Broadband Router\"", "text/html"), 4),
    (("GoAhead-Webs", 302, "Redirection", "", "text/html"), 4),
    (("uc-httpd 1.0.0", 200, "OK", "", "text/html; charset=gb2312"), 4),
    (("Microsoft-IIS/10.0", 403, "Forbidden", "", "text/html"), 5),
    (
        (
            "RomPager/4.07 UPnP/1.0",
            401,
            "Unauthorized",
            "Digest realm=\"IgdAuthentication\", domain=\"/\", nonce=\"N2UwNjA4\", qop=\"auth\", algorithm=MD5",
            "text/html",
        ),
        4,
    ),
    (("Router Webserver", 404, "Not Found", "", "text/html"), 4),
    (("Hikvision-Webs", 200, "OK", "", "text/html"), 4),
    (("", 404, "Not Found", "", "text/plain"), 6),
    (("openresty", 500, "Internal Server Error", "", "application/json"), 2),
];
const TELNET_BANNERS: &[(&str, u32)] = &[
    ("login: ", 30),
    ("\\r\\nUser Access Verification\\r\\n\\r\\nUsername: ", 12),
    ("BusyBox v1.19.4 (2013-03-29 12:49:25 CST) built-in shell (ash)\\r\\nlogin: ", 8),
    ("\\xff\\xfb\\x01\\xff\\xfb\\x03\\r\\nLogin: ", 10),
    ("(none) login: ", 10),
    ("Password: ", 8),
    ("\\r\\nWelcome to ZTE\\r\\nLogin: ", 5),
    ("Account:", 5),
];
/// `(tag, category, family, weight)` of compromised web sites.
const COMPROMISE: &[((&str, &str, &str), u32)] = &[
    (("hacked-webserver-stealrat", "spam", "stealrat"), 10),
    (("phishing", "phishing", ""), 12),
    (("malware-distribution", "malware", ""), 6),
    (("redirect", "redirect", ""), 6),
    (("skimmer", "skimmer", "magecart"), 4),
    (("webshell", "backdoor", ""), 3),
];
const SITE_PATHS: &[&str] = &[
    "/",
    "/index.php",
    "/wp-content/plugins/wp-file-manager/lib/php/connector.minimal.php",
    "/wp-admin/css/colors/blue/login.php",
    "/images/.well-known/office365/login.html",
    "/js/jquery.min.js",
    "/cgi-bin/",
    "/shop/checkout/",
];
const SINK_GEO: &[Geo] = &[
    ("US", "CALIFORNIA", "FREMONT"),
    ("US", "VIRGINIA", "ASHBURN"),
    ("DE", "HESSEN", "FRANKFURT AM MAIN"),
    ("NL", "NOORD-HOLLAND", "AMSTERDAM"),
    ("PL", "MAZOWIECKIE", "WARSAW"),
    ("SG", "SINGAPORE", "SINGAPORE"),
];
const HOSTING: (u32, &str) = (518_210, "Communications, Service Provider, and Hosting Service");

/// Addresses on the sensor side: sinkholes, honeypots, payload servers.
struct Infra {
    sinks: Vec<(IpAddr, Option<u32>, Geo)>,
    pots: Vec<(IpAddr, Option<u32>, Geo)>,
    payload: Vec<IpAddr>,
}

impl Infra {
    fn new(ctx: &Ctx<'_>, r: &mut R, v6: bool) -> Self {
        let sinks = (0..8)
            .map(|i| {
                let (ip, asn) = ctx.infrastructure(r, v6);
                (ip, asn, SINK_GEO[i % SINK_GEO.len()])
            })
            .collect();
        let pots = (0..6)
            .map(|i| {
                let (ip, asn) = ctx.infrastructure(r, v6);
                (ip, asn, SINK_GEO[(i + 2) % SINK_GEO.len()])
            })
            .collect();
        let payload = (0..16).map(|_| ctx.infrastructure(r, false).0).collect();
        Infra { sinks, pots, payload }
    }
}

/// Everything one row needs; cells are written from it column by column.
struct Row {
    kind: Kind,
    t: i64,
    host: Host,
    sport: u16,
    dst: Option<(IpAddr, Option<u32>, Geo)>,
    dport: u16,
    mw: &'static Mw,
    device: Option<(&'static str, &'static str, &'static str)>,
    /// Per-row random bits.
    x: u64,
    cred: (&'static str, &'static str),
    client: &'static str,
    payload: Option<IpAddr>,
    web: &'static Web,
    compromise: (&'static str, &'static str, &'static str),
}

fn ephemeral(r: &mut R, bits: u64) -> u16 {
    match bits % 10 {
        0..=5 => r.range(49_152, 65_535) as u16,
        6..=8 => r.range(32_768, 60_999) as u16,
        _ => r.range(1_024, 65_535) as u16,
    }
}

impl Row {
    fn new(ctx: &Ctx<'_>, infra: &Infra, r: &mut R, kind: Kind, t: i64) -> Self {
        let host = ctx.host(ctx.pick_host(r));
        let mut hr = R::derive(host.bits, 1);
        let mw = hr.weighted(MALWARE);
        let device = if mw.1 == "qsnatch" {
            Some(("QNAP", "nas", "QTS"))
        } else if host.bits.is_multiple_of(20) {
            Some(*hr.pick(DEVICES))
        } else {
            None
        };
        let x = r.u64();
        let sport = ephemeral(r, host.bits);
        let ssh = host.bits % 100 < 65;
        let (dst, dport) = match kind {
            Kind::Sinkhole | Kind::SinkholeHttp => {
                let sink = infra.sinks[((host.bits >> 8) as usize + x as usize % 2) % infra.sinks.len()];
                let port = if kind == Kind::SinkholeHttp && mw.4 != 80 && mw.4 != 8080 { 80 } else { mw.4 };
                (Some(sink), port)
            }
            Kind::BruteForce => {
                let pot = infra.pots[(x >> 8) as usize % infra.pots.len()];
                let port = match (ssh, x % 10) {
                    (true, 0..=7) => 22,
                    (true, _) => 2222,
                    (false, 0..=8) => 23,
                    (false, _) => 2323,
                };
                (Some(pot), port)
            }
            Kind::ScanHttp => {
                (None, *hr.weighted(&[(80, 50), (8080, 20), (443, 10), (8000, 5), (8443, 5), (81, 5), (8081, 5)]))
            }
            Kind::ScanTelnet => (None, if host.bits.is_multiple_of(7) { 2323 } else { 23 }),
            Kind::Compromised => (None, if host.bits.is_multiple_of(3) { 80 } else { 443 }),
        };
        let cred = *r.weighted(CREDS);
        let client = if ssh { *hr.weighted(SSH_CLIENTS) } else { "" };
        let payload = (x.is_multiple_of(10)).then(|| infra.payload[(x >> 16) as usize % infra.payload.len()]);
        let web = hr.weighted(WEB);
        let compromise = *hr.weighted(COMPROMISE);
        Row { kind, t, host, sport, dst, dport, mw, device, x, cred, client, payload, web, compromise }
    }

    fn ssh(&self) -> bool {
        self.host.bits % 100 < 65
    }

    fn cell<W: Write>(&self, c: F, ctx: &Ctx<'_>, csv: &mut Csv<W>) -> io::Result<()> {
        let h = &self.host;
        let scan = matches!(self.kind, Kind::ScanHttp | Kind::ScanTelnet | Kind::Compromised);
        match c {
            F::Timestamp => {
                csv.empty()?;
                csv.w.write_all(b"\"")?;
                write_space(&mut csv.w, self.t)?;
                csv.w.write_all(b"\"")
            }
            F::Protocol => csv.s(if scan { "tcp" } else { self.mw.3 }),
            F::SrcIp => csv.f(format_args!("{}", h.ip)),
            F::SrcPort => csv.n(u64::from(if scan { self.dport } else { self.sport }), false),
            F::SrcAsn => csv.n(u64::from(h.asn.unwrap_or(0)), true),
            F::SrcGeo => csv.s(h.geo.0),
            F::SrcRegion => csv.s(h.geo.1),
            F::SrcCity => csv.s(h.geo.2),
            F::SrcHostname => {
                if self.kind == Kind::Compromised {
                    csv.f(format_args!("www.{}", self.site()))
                } else if h.rdns && h.asn.is_some() {
                    let member = h.member.map(|m| ctx.world.members[m].name.as_str());
                    csv.f(format_args!("{}", Rdns { ip: h.ip, member, asn: h.asn, city: h.geo.2 }))
                } else {
                    csv.empty()
                }
            }
            F::SrcNaics => {
                let n = if self.kind == Kind::Compromised { HOSTING.0 } else { h.naics.0 };
                csv.n(u64::from(n), true)
            }
            F::SrcSector => csv.s(if self.kind == Kind::Compromised { HOSTING.1 } else { h.naics.1 }),
            F::DeviceVendor => csv.s(self.device.map_or("", |d| d.0)),
            F::DeviceType => csv.s(self.device.map_or("", |d| d.1)),
            F::DeviceModel => csv.s(self.device.map_or("", |d| d.2)),
            F::Severity => csv.s(match self.kind {
                Kind::Sinkhole | Kind::SinkholeHttp => self.mw.6,
                Kind::BruteForce | Kind::ScanTelnet => "medium",
                Kind::ScanHttp => "info",
                Kind::Compromised => "high",
            }),
            F::DstIp => match self.dst {
                Some(d) => csv.f(format_args!("{}", d.0)),
                None => csv.empty(),
            },
            F::DstPort => csv.n(u64::from(self.dport), false),
            F::DstAsn => csv.n(u64::from(self.dst.and_then(|d| d.1).unwrap_or(0)), true),
            F::DstGeo => csv.s(self.dst.map_or("", |d| d.2.0)),
            F::DstRegion => csv.s(self.dst.map_or("", |d| d.2.1)),
            F::DstCity => csv.s(self.dst.map_or("", |d| d.2.2)),
            F::DstNaics => csv.n(if self.dst.is_some() { u64::from(HOSTING.0) } else { 0 }, true),
            F::DstSector => csv.s(if self.dst.is_some() { HOSTING.1 } else { "" }),
            F::PublicSource => csv.s(if self.mw.1 == "zeroaccess" && !scan { "MSDCU" } else { "" }),
            F::Infection => csv.s(match self.kind {
                Kind::Sinkhole | Kind::SinkholeHttp => self.mw.0,
                Kind::BruteForce if !self.ssh() && self.x % 5 < 2 => "mirai",
                _ => "",
            }),
            F::Family => csv.s(match self.kind {
                Kind::Sinkhole | Kind::SinkholeHttp => self.mw.1,
                Kind::Compromised => self.compromise.2,
                _ => "",
            }),
            F::Tag => csv.s(match self.kind {
                Kind::Sinkhole | Kind::SinkholeHttp => self.mw.2,
                Kind::BruteForce if self.ssh() => "ssh-brute-force",
                Kind::BruteForce => "telnet-brute-force",
                Kind::ScanHttp if self.host.bits % 20 == 1 => "http;cve-2017-17215",
                Kind::ScanHttp => "http",
                Kind::ScanTelnet => "telnet",
                Kind::Compromised => self.compromise.0,
            }),
            F::Application => csv.s(match self.kind {
                Kind::Sinkhole => self.mw.5,
                Kind::SinkholeHttp => "http",
                Kind::BruteForce if self.ssh() => "ssh",
                Kind::BruteForce => "telnet",
                Kind::Compromised if self.dport == 443 => "https",
                Kind::Compromised => "http",
                _ => "",
            }),
            F::SslCipher => {
                csv.s(if self.dport == 443 { TLS_CIPHERS[(self.host.bits >> 12) as usize % 4] } else { "" })
            }
            F::SslServername => {
                if self.dport == 443 {
                    csv.f(format_args!("{}", self.c2()))
                } else {
                    csv.empty()
                }
            }
            F::HttpUrl => csv.s(HTTP_PATHS[(self.x >> 20) as usize % HTTP_PATHS.len()]),
            F::HttpHost => {
                if self.kind == Kind::Compromised {
                    csv.f(format_args!("www.{}", self.site()))
                } else {
                    csv.f(format_args!("{}", self.c2()))
                }
            }
            F::HttpAgent => csv.s(R::derive(self.host.bits, 2).weighted::<&str>(HTTP_AGENTS)),
            F::Service => csv.s(if self.ssh() { "ssh" } else { "telnet" }),
            F::StartTime => {
                csv.empty()?;
                csv.w.write_all(b"\"")?;
                write_space(&mut csv.w, self.t - (self.x % 600) as i64)?;
                csv.w.write_all(b"\"")
            }
            F::EndTime => {
                csv.empty()?;
                csv.w.write_all(b"\"")?;
                write_space(&mut csv.w, self.t)?;
                csv.w.write_all(b"\"")
            }
            F::ClientVersion => csv.s(self.client),
            F::Username => csv.s(self.cred.0),
            F::Password => csv.s(self.cred.1),
            F::PayloadUrl => match self.payload {
                Some(ip) => {
                    csv.f(format_args!("http://{ip}/bins/{}", if self.ssh() { "x86_64" } else { "mirai.arm7" }))
                }
                None => csv.empty(),
            },
            F::PayloadMd5 => match self.payload {
                Some(ip) => {
                    csv.f(format_args!("{}", Hex { seed: mix(ip_seed(ip) ^ u64::from(self.ssh())), bytes: 16 }))
                }
                None => csv.empty(),
            },
            F::HostnameSource => csv.s(if h.rdns && h.asn.is_some() { "ptr" } else { "" }),
            F::Http => csv.s("HTTP/1.1"),
            F::HttpCode => csv.n(u64::from(self.web.1), false),
            F::HttpReason => csv.s(self.web.2),
            F::ContentType => csv.s(self.web.4),
            F::Connection => csv.s(["close", "keep-alive", ""][(self.host.bits >> 20) as usize % 3]),
            F::WwwAuthenticate => csv.s(self.web.3),
            F::SetCookie => {
                if self.host.bits % 10 == 3 {
                    csv.f(format_args!("SESSIONID={}; path=/; HttpOnly", Hex { seed: self.x, bytes: 8 }))
                } else {
                    csv.empty()
                }
            }
            F::Server => csv.s(if self.kind == Kind::Compromised {
                ["Apache", "nginx", "LiteSpeed", "Microsoft-IIS/8.5"][(self.host.bits >> 24) as usize % 4]
            } else {
                self.web.0
            }),
            F::ContentLength => {
                if self.host.bits.is_multiple_of(4) {
                    csv.empty()
                } else {
                    csv.n(100 + (self.host.bits >> 32) % 20_000, false)
                }
            }
            F::TransferEncoding => csv.s(if self.host.bits.is_multiple_of(4) { "chunked" } else { "" }),
            F::HttpDate => {
                // Embedded devices often have no clock: they think it is 2000.
                let d = if self.host.bits % 10 == 7 { 946_684_800 + (self.x % 1_000_000) as i64 } else { self.t + 1 };
                csv.empty()?;
                csv.w.write_all(b"\"")?;
                write_http_date(&mut csv.w, d)?;
                csv.w.write_all(b"\"")
            }
            F::Banner => csv.s(R::derive(self.host.bits, 3).weighted::<&str>(TELNET_BANNERS)),
            F::Url => csv.s(SITE_PATHS[(self.host.bits >> 28) as usize % SITE_PATHS.len()]),
            F::Category => csv.s(self.compromise.1),
            F::System => csv.s(["LINUX", "WINNT", ""][(self.host.bits >> 36) as usize % 3]),
            F::DetectedSince => {
                csv.empty()?;
                csv.w.write_all(b"\"")?;
                write_space(&mut csv.w, self.t - 3_600 - ((self.host.bits >> 40) % (60 * 86_400)) as i64)?;
                csv.w.write_all(b"\"")
            }
            F::RedirectTarget => {
                if self.compromise.1 == "redirect" {
                    csv.f(format_args!("http://{}/", Domain { seed: self.host.bits ^ 0xd1, tlds: C2_TLDS }))
                } else {
                    csv.empty()
                }
            }
            F::CcUrl => {
                if self.compromise.1 == "skimmer" {
                    csv.f(format_args!(
                        "https://{}/js/jquery.min.js",
                        Domain { seed: self.host.bits ^ 0xcc, tlds: C2_TLDS }
                    ))
                } else {
                    csv.empty()
                }
            }
            F::Other => csv.empty(),
        }
    }

    /// The sinkholed C2 domain: a few per family.
    fn c2(&self) -> Domain {
        Domain { seed: mix(name_hash(self.mw.1)) ^ (self.host.bits % 5), tlds: C2_TLDS }
    }

    fn site(&self) -> Domain {
        Domain { seed: self.host.bits ^ 0x5173, tlds: JP_TLDS }
    }
}

/// FNV-1a: a stable stream id per report type.
fn name_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn ip_seed(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v) => u64::from(u32::from(v)),
        IpAddr::V6(v) => {
            let x = u128::from(v);
            (x as u64) ^ ((x >> 64) as u64)
        }
    }
}

/// Event-4 sinkhole report (`event4_sinkhole`): infected hosts calling sinkholed C2 servers.
pub fn shadowserver_event4_sinkhole(world: &World, spec: &EventSpec, out: &mut impl Write) -> io::Result<()> {
    shadowserver_report("event4_sinkhole", world, spec, out)
}

/// HTTP sinkhole report (`event4_sinkhole_http`).
pub fn shadowserver_event4_sinkhole_http(world: &World, spec: &EventSpec, out: &mut impl Write) -> io::Result<()> {
    shadowserver_report("event4_sinkhole_http", world, spec, out)
}

/// Honeypot brute-force report (`event4_honeypot_brute_force`).
pub fn shadowserver_event4_honeypot_brute_force(
    world: &World,
    spec: &EventSpec,
    out: &mut impl Write,
) -> io::Result<()> {
    shadowserver_report("event4_honeypot_brute_force", world, spec, out)
}

/// Accessible-HTTP scan report (`scan_http`).
pub fn shadowserver_scan_http(world: &World, spec: &EventSpec, out: &mut impl Write) -> io::Result<()> {
    shadowserver_report("scan_http", world, spec, out)
}

/// Accessible-Telnet scan report (`scan_telnet`).
pub fn shadowserver_scan_telnet(world: &World, spec: &EventSpec, out: &mut impl Write) -> io::Result<()> {
    shadowserver_report("scan_telnet", world, spec, out)
}

/// Compromised-website report (`compromised_website`).
pub fn shadowserver_compromised_website(world: &World, spec: &EventSpec, out: &mut impl Write) -> io::Result<()> {
    shadowserver_report("compromised_website", world, spec, out)
}
