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
    /// Keep the hub running afterwards and print member tokens and curl commands.
    #[arg(long)]
    serve: bool,
    /// Address for `--serve`.
    #[arg(long, default_value = "127.0.0.1:8640")]
    listen: std::net::SocketAddr,
}

/// The sample files: (file name, generator kind, records).
const SAMPLES: &[(&str, &str, u64)] = &[
    ("cowrie.json", "cowrie", 20_000),
    ("eve.json", "suricata", 20_000),
    ("2026-03-05-event4_sinkhole-jp.csv", "event4_sinkhole", 20_000),
    ("2026-03-05-event4_sinkhole_http-jp.csv", "event4_sinkhole_http", 5_000),
    ("2026-03-05-event4_honeypot_brute_force-jp.csv", "event4_honeypot_brute_force", 5_000),
    ("2026-03-05-scan_telnet-jp.csv", "scan_telnet", 5_000),
    ("2026-03-05-scan_http-jp.csv", "scan_http", 5_000),
    ("2026-03-05-compromised_website-jp.csv", "compromised_website", 1_000),
];

pub fn run(env: &Env, args: &DemoArgs) -> Result<ExitCode> {
    let mut config = env.config.clone();
    config.data_dir = Some(args.dir.clone());
    config.store.path = None;
    let env = Env { config };
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
        let s = kizuna_pipeline::ingest(store_ref, &attributor, &format, &ctx, &head[..], &settings.options)?;
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

    if args.serve {
        serve_demo(&env, store, args.listen)?;
    } else {
        println!(
            "\nNext: `kizuna --data-dir {} report --member {} --summary`, or run the demo with --serve.",
            args.dir.display(),
            world.members.first().map(|m| m.name.as_str()).unwrap_or("isp-001")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn serve_demo(
    env: &Env,
    store: std::sync::Arc<kizuna_store::sqlite::SqliteStore>,
    listen: std::net::SocketAddr,
) -> Result<()> {
    let sensor = kizuna_hub::tokens::issue()?;
    let mut hub_config = env.config.hub.clone();
    hub_config.listen = listen;
    hub_config.sensors.push(kizuna_hub::SensorConfig {
        name: "demo-sensor".into(),
        token_sha256: kizuna_hub::tokens::hash_hex(&sensor.secret),
    });
    let first = store.members()?.into_iter().next().context("no members")?;
    let t = kizuna_hub::tokens::issue()?;
    store.add_token(first.id, t.hash, "demo", &t.prefix, Timestamp::now())?;
    crate::cli::audit(
        store.as_ref(),
        "token.issue",
        format!("member:{}", first.id),
        serde_json::json!({"label": "demo", "prefix": t.prefix}),
    )?;
    // A console operator with a fresh random password for this run.
    let console_password = kizuna_hub::console::kizuna_console::auth::random_token()?;
    crate::console::demo_operator(store.as_ref(), "demo", &console_password)?;
    let hub = kizuna_hub::Hub::new(store, hub_config, env.config.ingest_settings()?)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
        let base = format!("http://{}", listener.local_addr()?);
        println!("\nhub serving on {base} (Ctrl-C to stop)");
        println!("  member {} pulls its observations:", first.name);
        println!("    curl -H 'Authorization: Bearer {}' '{base}/api/v1/observations?limit=5'", t.secret);
        println!("  a sensor pushes a batch:");
        println!(
            "    curl -H 'Authorization: Bearer {}' --data-binary @FILE '{base}/api/v1/ingest?format=cowrie'",
            sensor.secret
        );
        println!("  web console: {base}/console/  (user demo, password {console_password})");
        println!("  {base}/metrics   {base}/healthz");
        hub.serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        anyhow::Ok(())
    })
}
