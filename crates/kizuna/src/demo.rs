//! `kizuna generate` (deterministic test data) and `kizuna demo` (the hub loop on sample data).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};

use kizuna_gen::{EventSpec, RoutingSpec, World};
use kizuna_model::Timestamp;
use kizuna_parsers::{Context, Format};
use kizuna_store::Store;

use crate::cli::{Env, import_members, import_routes};

#[derive(Args, Debug, Clone)]
pub struct WorldArgs {
    /// IPv4 prefixes in the routing table.
    #[arg(long, default_value_t = 900_000)]
    v4: usize,
    /// IPv6 prefixes in the routing table.
    #[arg(long, default_value_t = 150_000)]
    v6: usize,
    /// Member ISPs.
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// Seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl WorldArgs {
    fn spec(&self) -> RoutingSpec {
        RoutingSpec { v4_prefixes: self.v4, v6_prefixes: self.v6, members: self.members, seed: self.seed }
    }
}

#[derive(Subcommand, Debug)]
pub enum GenerateCommand {
    /// Write a routing table (`routes.ipasn`) and member list (`members.json`) to a directory.
    World {
        #[command(flatten)]
        world: WorldArgs,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write events over the world the same world options describe.
    Events {
        #[command(flatten)]
        world: WorldArgs,
        /// cowrie, suricata, or a Shadowserver report (event4_sinkhole, event4_sinkhole_http,
        /// event4_honeypot_brute_force, scan_http, scan_telnet, compromised_website).
        #[arg(long)]
        kind: String,
        /// Records to write.
        #[arg(long, default_value_t = 100_000)]
        lines: u64,
        /// Seed for the events.
        #[arg(long, default_value_t = 1)]
        event_seed: u64,
        /// Share of IPv6 sources.
        #[arg(long, default_value_t = 0.1)]
        ipv6_share: f64,
        /// Share of sources outside every member's space.
        #[arg(long, default_value_t = 0.2)]
        unrouted_share: f64,
        /// Output file (`-` for stdout).
        #[arg(long)]
        out: PathBuf,
    },
}

/// 2026-03-05T00:00:00Z: the demo's simulated day.
const DEMO_START: i64 = 1_772_668_800;

fn event_spec(lines: u64, seed: u64, ipv6_share: f64, unrouted_share: f64) -> EventSpec {
    EventSpec { lines, seed, start: DEMO_START, span_secs: 86_400, ipv6_share, unrouted_share }
}

fn write_events(world: &World, kind: &str, spec: &EventSpec, out: &mut dyn Write) -> Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, out);
    match kind {
        "cowrie" => kizuna_gen::cowrie(world, spec, &mut w)?,
        "suricata" => kizuna_gen::suricata_eve(world, spec, &mut w)?,
        report => kizuna_gen::shadowserver_report(report, world, spec, &mut w)?,
    }
    w.flush()?;
    Ok(())
}

fn write_world(world: &World, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut routes = BufWriter::new(std::fs::File::create(dir.join("routes.ipasn"))?);
    kizuna_gen::write_ipasn(&world.routes, &mut routes)?;
    routes.flush()?;
    let members: Vec<serde_json::Value> = world
        .members
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name, "display_name": m.display_name, "asns": m.asns,
                "prefixes": m.prefixes.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "contacts": m.contacts,
            })
        })
        .collect();
    std::fs::write(dir.join("members.json"), serde_json::to_string_pretty(&members)?)?;
    Ok(())
}

pub fn generate(command: GenerateCommand) -> Result<ExitCode> {
    match command {
        GenerateCommand::World { world, out } => {
            let w = kizuna_gen::world(&world.spec());
            write_world(&w, &out)?;
            eprintln!("wrote {} routes and {} members to {}", w.routes.len(), w.members.len(), out.display());
        }
        GenerateCommand::Events { world, kind, lines, event_seed, ipv6_share, unrouted_share, out } => {
            let w = kizuna_gen::world(&world.spec());
            let spec = event_spec(lines, event_seed, ipv6_share, unrouted_share);
            if out.as_os_str() == "-" {
                write_events(&w, &kind, &spec, &mut std::io::stdout().lock())?;
            } else {
                let mut f = std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?;
                write_events(&w, &kind, &spec, &mut f)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Directory for the demo's store and sample files.
    #[arg(long, default_value = "kizuna-demo")]
    dir: PathBuf,
    /// Keep the hub, the agents' countermeasure pages (and console) running until Ctrl-C.
    #[arg(long)]
    serve: bool,
    /// Address for `--serve`.
    #[arg(long, default_value = "127.0.0.1:8640")]
    listen: std::net::SocketAddr,
}

/// The sample files: (file name, generator kind, records).
const SAMPLES: &[(&str, &str, u64)] = &[
    ("cowrie.json", "cowrie", 2_000),
    ("eve.json", "suricata", 2_000),
    ("2026-03-05-event4_sinkhole-jp.csv", "event4_sinkhole", 2_000),
    ("2026-03-05-event4_sinkhole_http-jp.csv", "event4_sinkhole_http", 500),
    ("2026-03-05-event4_honeypot_brute_force-jp.csv", "event4_honeypot_brute_force", 500),
    ("2026-03-05-scan_telnet-jp.csv", "scan_telnet", 500),
    ("2026-03-05-scan_http-jp.csv", "scan_http", 500),
    ("2026-03-05-compromised_website-jp.csv", "compromised_website", 200),
];

pub fn run(env: &Env, args: &DemoArgs) -> Result<ExitCode> {
    let mut config = env.config.clone();
    config.data_dir = Some(args.dir.clone());
    config.store.path = None;
    let env = Env { config, config_path: args.dir.join("kizuna.toml") };
    let samples = args.dir.join("samples");
    println!("kizuna demo: data directory {}", args.dir.display());

    // 1. A small routing table and eight member ISPs.
    let world = kizuna_gen::world(&RoutingSpec { v4_prefixes: 20_000, v6_prefixes: 4_000, members: 8, seed: 2026 });
    write_world(&world, &samples)?;
    let store = env.open_store()?;
    let store_ref: &dyn Store = store.as_ref();
    let (routes, _) = import_routes(store_ref, &samples.join("routes.ipasn"))?;
    let added = import_members(store_ref, &samples.join("members.json"))?;
    println!("1. routing table: {routes} prefixes; members: {} ({added} new)", world.members.len());

    // 2. Sensor and feed data, with two malformed lines to show the quarantine.
    for (i, (file, kind, lines)) in SAMPLES.iter().enumerate() {
        let path = samples.join(file);
        let mut f = std::fs::File::create(&path)?;
        write_events(&world, kind, &event_spec(*lines, 100 + i as u64, 0.1, 0.15), &mut f)?;
        if *kind == "cowrie" {
            writeln!(f, "{{\"eventid\": \"cowrie.login.failed\", \"src_ip\": \"not-an-ip\"")?;
        }
        if *kind == "event4_sinkhole" {
            writeln!(f, "2026-03-05 25:61:00,198.51.100.1,truncated")?;
        }
    }
    println!("2. sample data written to {}", samples.display());

    // 3. Ingest.
    let settings = env.config.ingest_settings()?;
    let attributor = kizuna_pipeline::attributor_from_store(store_ref)?;
    // Indicators are derived after each committed batch, as `kizuna ingest` and the hub do.
    let policy = crate::indicator::policy(&env)?;
    let hub_store: &dyn kizuna_store::HubStore = store.as_ref();
    let derive = crate::indicator::ingest_step(hub_store, &policy);
    let mut total = kizuna_pipeline::Summary::default();
    let started = std::time::Instant::now();
    println!("3. ingest:");
    for (file, _, _) in SAMPLES {
        let path = samples.join(file);
        let name = path.display().to_string();
        let head = std::fs::read(&path)?;
        let format_name = crate::ingest::guess_format(&name, &head).context("sample format")?;
        let format = Format::from_name(format_name, &settings.csv_mappings)?;
        let ctx = Context {
            source_name: name.clone(),
            time_observation: Timestamp::now(),
            tlp: settings.default_tlp,
            legal_basis: settings.legal_basis,
            feed_name: None,
            feed_provider: None,
        };
        let s =
            kizuna_pipeline::ingest_with(store_ref, &attributor, &format, &ctx, &head[..], &settings.options, &derive)?;
        println!(
            "   {file:<48} read {:>6}  stored {:>6}  dup {:>6}  quarantined {:>2}  skipped {:>5}  attributed {:>6}",
            s.read,
            s.stored,
            s.duplicates,
            s.quarantined,
            s.skipped_total(),
            s.attributed
        );
        for r in &s.first_rejections {
            println!("      quarantined {r}");
        }
        total.merge(&s);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "   total: read {}, stored {}, duplicates {}, quarantined {}, attributed {}, unattributed {} ({:.0} records/s)",
        total.read,
        total.stored,
        total.duplicates,
        total.quarantined,
        total.attributed,
        total.unattributed,
        total.read as f64 / secs.max(1e-9)
    );

    // 4. What each member receives.
    println!("4. per member (what each ISP pulls with its own token):");
    let totals = store_ref.totals()?;
    for m in store_ref.members()? {
        let n = totals.per_member.iter().find(|(id, _)| *id == m.id).map(|(_, n)| *n).unwrap_or(0);
        println!("   {:<10} {:<34} {:>7} observations  ASNs {:?}", m.name, m.display_name, n, m.asns);
    }
    println!("   unattributed (national statistics only): {}", totals.unattributed);

    // 5. The audit trail.
    match kizuna_store::audit::verify_store(store_ref, store.audit_anchor())? {
        kizuna_store::audit::Verdict::Intact { entries } => println!("5. audit log: {entries} entries, chain intact"),
        kizuna_store::audit::Verdict::Broken { seq, reason } => println!("5. audit log BROKEN at {seq}: {reason}"),
    }

    drop(derive);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run_loop(&env, store, args, &world))?;
    Ok(ExitCode::SUCCESS)
}

/// Subscribers per agent with a RADIUS session over one of the member's observed addresses.
const DEMO_SUBSCRIBERS: usize = 12;
/// Simulated days the agents run for.
const DEMO_DAYS: i64 = 10;

struct DemoAgent {
    name: String,
    dir: PathBuf,
    agent: std::sync::Arc<kizuna_isp::agent::Agent>,
    page: String,
    notices: u64,
    opened: u64,
    /// Addresses with a subscriber behind them (the sensor sees some of them again).
    addresses: Vec<String>,
}

async fn run_loop(
    env: &Env,
    store: std::sync::Arc<kizuna_store::sqlite::SqliteStore>,
    args: &DemoArgs,
    world: &World,
) -> Result<()> {
    use std::sync::{Arc, RwLock};

    // 6. The hub on loopback, with a sensor token, a console operator and two member tokens.
    let sensor = kizuna_hub::tokens::issue()?;
    let mut hub_config = env.config.hub.clone();
    let listen: std::net::SocketAddr = if args.serve { args.listen } else { "127.0.0.1:0".parse()? };
    hub_config.listen = listen;
    hub_config.sensors.push(kizuna_hub::SensorConfig {
        name: "demo-sensor".into(),
        token_sha256: kizuna_hub::tokens::hash_hex(&sensor.secret),
    });
    let members: Vec<_> = store.members()?.into_iter().take(2).collect();
    anyhow::ensure!(members.len() == 2, "the demo world needs two members");
    let mut member_tokens = Vec::new();
    for m in &members {
        let t = kizuna_hub::tokens::issue()?;
        store.add_token(m.id, t.hash, "demo-agent", &t.prefix, Timestamp::now())?;
        crate::cli::audit(
            store.as_ref(),
            "token.issue",
            format!("member:{}", m.id),
            serde_json::json!({"label": "demo-agent", "prefix": t.prefix}),
        )?;
        member_tokens.push(t.secret);
    }
    let console_password = kizuna_hub::console::kizuna_console::auth::random_token()?;
    crate::console::demo_operator(store.as_ref(), "demo", &console_password)?;
    let dns_store = store.clone();
    let hub = kizuna_hub::Hub::new(store, hub_config, env.config.ingest_settings()?)?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
    let base = format!("http://{}", listener.local_addr()?);
    let (hub_stop, hub_stopped) = tokio::sync::oneshot::channel::<()>();
    let hub_task = tokio::spawn(hub.serve(listener, async {
        let _ = hub_stopped.await;
    }));
    println!("6. hub on {base}; member tokens issued to {} and {}", members[0].name, members[1].name);

    // 7. Two ISP agents, each with its own store, subscriber directory and RADIUS logs.
    let clock = kizuna_isp::clock::ManualClock::new(Timestamp::from_secs(DEMO_START + 86_400));
    // One abuse-desk login for both agents' consoles (argon2id hash in each agent's config).
    let agent_console_password = kizuna_hub::console::kizuna_console::auth::random_token()?;
    let agent_console_hash = kizuna_hub::console::kizuna_console::auth::hash_password(
        &agent_console_password,
        kizuna_hub::console::kizuna_console::PasswordCost::default(),
    )?;
    let mut agents = Vec::new();
    let mut page_stops = Vec::new();
    for (m, token) in members.iter().zip(&member_tokens) {
        let dir = args.dir.join(if m.name.starts_with("isp-") { m.name.clone() } else { format!("isp-{}", m.name) });
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let page_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let page_addr = page_listener.local_addr()?;
        let cfg = agent_config(&dir, &base, token, page_addr, &m.display_name, &agent_console_hash)?;
        // The member's observed IPv4 addresses, as its agent will pull them.
        let client = kizuna_isp::hub::HubClient::new(&cfg.hub)?;
        let mut seen: Vec<String> = Vec::new();
        let mut cursor = String::new();
        for _ in 0..20 {
            let page = client.page(&cursor).await?;
            for o in &page.observations {
                let v: serde_json::Value = serde_json::from_slice(&o.event)?;
                if let Some(ip) = v.get("source.ip").and_then(|v| v.as_str())
                    && ip.parse::<std::net::Ipv4Addr>().is_ok()
                    && !seen.iter().any(|s| s == ip)
                {
                    seen.push(ip.to_owned());
                }
            }
            cursor = page.next_cursor;
            if !page.more || seen.len() >= DEMO_SUBSCRIBERS {
                break;
            }
        }
        seen.truncate(DEMO_SUBSCRIBERS);
        let detail = dir.join("radacct/192.0.2.254/detail-20260305");
        let mut radius = String::new();
        let mut csv = String::from("subscriber_id,keys,name,email,postal_address,language\n");
        for (k, ip) in seen.iter().enumerate() {
            let user = format!("{}-user-{k:03}", m.name);
            radius.push_str(&detail_record(DEMO_START - 3_600 + k as i64, &user, &format!("{}-{k}", m.name), ip));
            csv.push_str(&format!(
                "S-{k:03},{user},Subscriber {k:03},,\"{k}-1-1 Chiyoda, Tokyo\",{}\n",
                if k % 2 == 0 { "ja" } else { "en" }
            ));
        }
        if let Some(d) = detail.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&detail, radius)?;
        let csv_path = dir.join("subscribers.csv");
        std::fs::write(&csv_path, csv)?;
        let mut index = kizuna_sessions::SessionIndex::new(kizuna_sessions::ResolverConfig {
            max_open_session_age: std::time::Duration::from_secs(60 * 86_400),
            ..kizuna_sessions::ResolverConfig::default()
        });
        let loaded = index.load_file(&detail, kizuna_sessions::LogKind::RadiusDetail)?;
        let agent_store = Arc::new(kizuna_isp::store::AgentStore::open(&cfg.database_path())?);
        let (subs, bad) = kizuna_isp::subscribers::parse_csv(&csv_path)?;
        anyhow::ensure!(bad.is_empty(), "subscriber directory: {bad:?}");
        agent_store.upsert_subscribers(&subs, Timestamp::now(), "demo")?;
        // The consent register (protective DNS): every third subscriber opted in by contract,
        // every fifth opted out on the web; the rest have no record.
        let mut decisions = Vec::new();
        for (k, s) in subs.iter().enumerate() {
            let status = match k {
                _ if k % 5 == 0 => kizuna_isp::consent::Status::OptOut,
                _ if k % 3 == 0 => kizuna_isp::consent::Status::OptIn,
                _ => continue,
            };
            decisions.push(kizuna_isp::consent::NewConsent {
                subscriber: s.id.clone(),
                service: kizuna_isp::consent::PROTECTIVE_DNS.into(),
                status,
                at: Timestamp::from_secs(DEMO_START - 86_400),
                channel: if status == kizuna_isp::consent::Status::OptIn { "contract" } else { "web" }.into(),
                policy_version: "demo-1".into(),
                basis: kizuna_isp::consent::Basis::OptIn,
            });
        }
        agent_store.import_consent(&decisions, Timestamp::now(), "demo")?;
        let agent = kizuna_isp::agent::Agent::new(
            cfg,
            agent_store,
            Arc::new(RwLock::new(index)),
            Arc::new(clock.clone()),
            true,
        )?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        page_stops.push(tx);
        tokio::spawn(kizuna_isp::page::serve(agent.clone(), page_listener, async {
            let _ = rx.await;
        }));
        println!(
            "7. agent {}: {} subscribers, {} RADIUS sessions ({} rejected), store {}, console http://{page_addr}/console/",
            m.name,
            subs.len(),
            loaded.events,
            loaded.rejected,
            dir.display()
        );
        agents.push(DemoAgent {
            name: m.name.clone(),
            dir,
            agent,
            page: format!("http://{page_addr}"),
            notices: 0,
            opened: 0,
            addresses: seen,
        });
    }

    // 8. The DNS primary: one RPZ zone per member, from the hub's indicator store.
    // One port for UDP and TCP: a free UDP port may be taken for TCP (the page servers'), so retry.
    let mut bound = None;
    for _ in 0..50 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        let addr = udp.local_addr()?;
        if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
            bound = Some((udp, addr, tcp));
            break;
        }
    }
    let (dns_udp, dns_addr, dns_tcp) = bound.context("no loopback port free for both UDP and TCP")?;
    let dns_http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let dns_http_addr = dns_http.local_addr()?;
    let mut dns_toml = format!(
        "listen = \"{dns_addr}\"\nhttp_listen = \"{dns_http_addr}\"\npoll_interval_ms = 200\nserial_state = {}\n",
        toml::Value::String(args.dir.join("dns-serials.json").display().to_string())
    );
    for m in &members {
        dns_toml.push_str(&format!(
            "\n[[zones]]\nmember = \"{n}\"\nallow_transfer = [\"127.0.0.0/8\"]\n[zones.policy]\n\
             zone_name = \"rpz.{n}.kizuna.example\"\nttl = 5\naction = {{ type = \"nxdomain\" }}\n",
            n = m.name
        ));
    }
    let dns_cfg = kizuna_dns::DnsConfig::from_toml(&dns_toml).context("demo DNS configuration")?;
    let dns_policy = crate::indicator::policy(env)?;
    let feed: Arc<dyn kizuna_dns::IndicatorFeed> = Arc::new(kizuna_dns::StoreFeed::new(
        dns_store,
        Box::new(move |r| match kizuna_indicators::publish_granularity(r, &dns_policy) {
            kizuna_indicators::Granularity::Host => kizuna_dns::kizuna_rpz::Granularity::Host,
            kizuna_indicators::Granularity::UrlOnly => kizuna_dns::kizuna_rpz::Granularity::UrlOnly,
        }),
    ));
    let items = feed.active(Timestamp::now())?;
    let mut triggers = Vec::new();
    for z in &dns_cfg.zones {
        let built = kizuna_dns::service::build_zone(z, &items, Timestamp::now())?;
        triggers.push((z.policy.zone_name.clone(), built.trigger_count()));
    }
    let svc = kizuna_dns::Service::new(dns_cfg, feed, kizuna_dns::DnsMetrics::new())?;
    let primary = svc.primary.clone();
    let dns_task = tokio::spawn(svc.run_on(dns_udp, dns_tcp, Some(dns_http)));
    println!("8. DNS primary on {dns_addr} (UDP+TCP), API {dns_http_addr}; {} active indicators", items.len());

    // 9. Simulated days: pull, cases, notices into the outbox, remediation.
    println!("9. {DEMO_DAYS} simulated days:");
    let http = reqwest::Client::new();
    let first_serials: Vec<(String, u32)> =
        primary.zones().iter().map(|z| (z.label.clone(), z.zone.current().serial)).collect();
    for day in 0..=DEMO_DAYS {
        // The sensor keeps seeing some subscribers: every fourth one until day 8 (reminders,
        // final notice, escalation), the next ones until day 3 (remediated later).
        if day > 0 {
            let now = kizuna_isp::clock::Clock::now(&clock).as_secs() - 7_200;
            let mut body = String::new();
            for a in &agents {
                for (k, ip) in a.addresses.iter().enumerate() {
                    if (k % 4 == 0 && day <= 8) || (k % 4 == 1 && day <= 3) {
                        body.push_str(&cowrie_lines(ip, now + k as i64, &format!("{day:02}{k:04}")));
                    }
                }
            }
            if !body.is_empty() {
                let resp = http
                    .post(format!("{base}/api/v1/ingest?format=cowrie&name=demo-day-{day}"))
                    .bearer_auth(&sensor.secret)
                    .body(body)
                    .send()
                    .await?;
                let status = resp.status();
                let text = resp.text().await?;
                anyhow::ensure!(status.is_success(), "sensor push on day {day}: {status} {text}");
            }
        }
        // Day 5: a new compromised-website report arrives; the hub derives indicators from it
        // and the DNS primary publishes them (the zones' serials move).
        if day == 5 {
            let start = kizuna_isp::clock::Clock::now(&clock).as_secs() - 86_400;
            let spec =
                EventSpec { lines: 40, seed: 905, start, span_secs: 80_000, ipv6_share: 0.0, unrouted_share: 0.0 };
            let mut report = Vec::new();
            write_events(world, "compromised_website", &spec, &mut report)?;
            let date = kizuna_isp::clock::day_of(Timestamp::from_secs(start));
            let resp = http
                .post(format!("{base}/api/v1/ingest?format=shadowserver:compromised_website&name={date}-compromised_website-jp.csv"))
                .bearer_auth(&sensor.secret)
                .body(report)
                .send()
                .await?;
            let status = resp.status();
            let text = resp.text().await?;
            anyhow::ensure!(status.is_success(), "feed push on day {day}: {status} {text}");
        }
        let mut line = format!("   day {day:>2} {}", kizuna_isp::clock::day_of(kizuna_isp::clock::Clock::now(&clock)));
        for a in &mut agents {
            let r = a.agent.round().await?;
            if let Err(e) = a.agent.push_stats(7).await {
                tracing::warn!("{}: pushing stats: {e}", a.name);
            }
            a.opened += r.pulled.cases_opened;
            a.notices += r.tick.notices;
            let mut states: std::collections::BTreeMap<&'static str, usize> = Default::default();
            for c in a.agent.store.cases(true, usize::MAX)? {
                *states.entry(c.state.as_str()).or_default() += 1;
            }
            let states: Vec<String> = states.iter().map(|(k, v)| format!("{k} {v}")).collect();
            line.push_str(&format!(
                "  | {}: +{} cases, {} notices, {} letters; {}",
                a.name,
                r.pulled.cases_opened,
                r.tick.notices,
                r.letters,
                states.join(", ")
            ));
        }
        println!("{line}");
        clock.advance_days(1);
    }

    println!("\nsummary:");
    // The console looks back from today by default; the demo's data lie in its simulated days.
    let last_day = Timestamp::from_secs(DEMO_START + DEMO_DAYS * 86_400).to_datetime().format("%Y-%m-%d");
    println!(
        "  hub console: {base}/console/overview?range=30d&end={last_day}  (user demo, password {console_password})"
    );
    println!("  hub metrics: {base}/metrics");
    for a in &agents {
        let outbox = a.agent.config.letters_dir();
        println!(
            "  agent {}: cases opened {}, notices {}, letters in outbox {} ({}); countermeasure pages {}; store {}",
            a.name,
            a.opened,
            a.notices,
            count_files(&outbox),
            outbox.display(),
            a.page,
            a.dir.display()
        );
        println!("  agent console {}: {}/console/  (user desk, password {agent_console_password})", a.name, a.page);
    }

    // Let the primary's change follower see the last pushes.
    // (waits up to 10 s for every zone to move past its first serial).
    for _ in 0..50 {
        let moved = primary
            .zones()
            .iter()
            .all(|z| first_serials.iter().any(|(l, s)| *l == z.label && *s != z.zone.current().serial));
        if moved {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let mut zones = primary.zones();
    zones.sort_by(|a, b| a.label.cmp(&b.label));
    for z in &zones {
        let n = triggers.iter().find(|(name, _)| name.trim_end_matches('.') == z.label).map(|(_, n)| *n).unwrap_or(0);
        println!(
            "  DNS zone {}: serial {} (first {}), {n} triggers at start (dig @{} -p {} {} SOA)",
            z.label,
            z.zone.current().serial,
            first_serials.iter().find(|(l, _)| *l == z.label).map(|(_, s)| *s).unwrap_or(0),
            dns_addr.ip(),
            dns_addr.port(),
            z.label
        );
    }
    if args.serve {
        println!("\nserving until Ctrl-C");
        println!("  a sensor pushes a batch:");
        println!(
            "    curl -H 'Authorization: Bearer {}' --data-binary @FILE '{base}/api/v1/ingest?format=cowrie'",
            sensor.secret
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    for tx in page_stops {
        let _ = tx.send(());
    }
    dns_task.abort();
    let _ = hub_stop.send(());
    hub_task.await??;
    Ok(())
}

/// A cowrie session from `ip`: connect and one failed login, at `at` (Unix seconds).
fn cowrie_lines(ip: &str, at: i64, session: &str) -> String {
    let t = Timestamp::from_secs(at).to_datetime().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let mut out = serde_json::json!({
        "eventid": "cowrie.session.connect", "src_ip": ip, "src_port": 40000, "dst_ip": "10.72.95.229",
        "dst_port": 23, "session": session, "protocol": "telnet", "sensor": "hp-demo-01", "timestamp": t,
    })
    .to_string();
    out.push('\n');
    out.push_str(
        &serde_json::json!({
            "eventid": "cowrie.login.failed", "username": "root", "password": "admin", "sensor": "hp-demo-01",
            "timestamp": t, "src_ip": ip, "session": session,
        })
        .to_string(),
    );
    out.push('\n');
    out
}

fn count_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten().map(|e| if e.path().is_dir() { count_files(&e.path()) } else { 1 }).sum()
}

/// One FreeRADIUS 3.2 accounting Start record, as `rlm_detail` writes it.
fn detail_record(at: i64, user: &str, session: &str, ip: &str) -> String {
    let t = Timestamp::from_secs(at).to_datetime();
    format!(
        "{}\n\tAcct-Status-Type = Start\n\tUser-Name = \"{user}\"\n\tAcct-Session-Id = \"{session}\"\n\t\
         NAS-IP-Address = 192.0.2.254\n\tFramed-IP-Address = {ip}\n\tEvent-Timestamp = \"{} UTC\"\n\t\
         Acct-Unique-Session-Id = \"{:x}\"\n\tTimestamp = {at}\n\n",
        t.format("%a %b %e %H:%M:%S %Y"),
        t.format("%b %e %Y %H:%M:%S"),
        at
    )
}

fn agent_config(
    dir: &Path,
    hub: &str,
    token: &str,
    page: std::net::SocketAddr,
    isp_name: &str,
    console_hash: &str,
) -> Result<kizuna_isp::config::AgentConfig> {
    let text = format!(
        r#"
data_dir = {data}

[hub]
url = {hub}
token = {token}
page_limit = 500

[policy]
grace_hours = 1
observe_days = 2
reminder_days = 2
final_days = 2
remediation_days = 3
escalation_action = "walled-garden"
legal_basis = "legitimate-business"

[page]
listen = "{page}"
public_base_url = "http://{page}"
isp_name = {isp}
support_contact = "0120-000-000"

[[console_users]]
name = "desk"
role = "analyst"
password_hash = {hash}
"#,
        data = toml::Value::String(dir.display().to_string()),
        hub = toml::Value::String(hub.to_owned()),
        token = toml::Value::String(token.to_owned()),
        isp = toml::Value::String(isp_name.to_owned()),
        hash = toml::Value::String(console_hash.to_owned()),
    );
    Ok(kizuna_isp::config::AgentConfig::parse(&text)?)
}
