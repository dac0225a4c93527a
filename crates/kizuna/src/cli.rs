//! Command-line definitions and dispatch.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};

use ipnet::IpNet;
use kizuna_model::Timestamp;
use kizuna_store::audit::{Verdict, verify_store};
use kizuna_store::sqlite::SqliteStore;
use kizuna_store::{AuditRecord, Cursor, MemberSpec, Store};

use crate::config::Config;

/// kizuna: the ISAC hub — collect, attribute, notify, protect, share.
#[derive(Parser, Debug)]
#[command(name = "kizuna", version, about)]
pub struct Cli {
    /// Config file (TOML). Default: `<data dir>/kizuna.toml` when it exists.
    #[arg(long, global = true, env = "KIZUNA_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides `data_dir` in the config file).
    #[arg(long, global = true, env = "KIZUNA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the hub service.
    Hub {
        #[command(subcommand)]
        command: HubCommand,
    },
    /// Ingest files (or `-` for stdin) into the store.
    Ingest(crate::ingest::IngestArgs),
    /// Web-console users and aggregates.
    Console {
        #[command(subcommand)]
        command: crate::console::ConsoleCommand,
    },
    /// Manage member ISPs and their API tokens.
    Member {
        #[command(subcommand)]
        command: MemberCommand,
    },
    /// Manage the routing table used for attribution.
    Routes {
        #[command(subcommand)]
        command: RoutesCommand,
    },
    /// Print a member's observations (IntelMQ JSON lines), or a summary.
    Report(ReportArgs),
    /// Records that could not be parsed.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// The hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Delete observations older than their feed's retention period.
    Expire,
    /// Indicators (malicious URLs, domains, addresses, hashes): add, list, withdraw, allow-list.
    Indicator {
        #[command(subcommand)]
        command: crate::indicator::IndicatorCommand,
    },
    /// The RPZ primary: serve member zones to BIND/Unbound secondaries, print zones, provenance.
    Dns {
        #[command(subcommand)]
        command: crate::dns::DnsCommand,
    },
    /// Sharing: partners, STIX/MISP export and import, TAXII polling, malware aliases.
    Share {
        #[command(subcommand)]
        command: crate::share::ShareCommand,
    },
    /// Sensors that push data to the hub.
    Sensor {
        #[command(subcommand)]
        command: SensorCommand,
    },
    /// Crawl seed URLs for drive-by chains; report malicious URLs; notify site owners.
    Crawl(crate::crawl::CrawlArgs),
    /// Generate deterministic, realistic test data.
    Generate {
        #[command(subcommand)]
        command: crate::demo::GenerateCommand,
    },
    /// Run the whole hub loop on the bundled sample data in an embedded store.
    Demo(crate::demo::DemoArgs),
    /// The ISP agent: pull observations, resolve subscribers, graduated notices, counts to the hub.
    Isp(crate::isp::IspArgs),
}

#[derive(Subcommand, Debug)]
enum HubCommand {
    /// Serve the HTTP API (ingest, member reports, /healthz, /metrics).
    Serve {
        /// Address to listen on (overrides `hub.listen`).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
}

#[derive(Args, Debug, Clone, Default)]
struct MemberFields {
    /// Display name.
    #[arg(long)]
    display_name: Option<String>,
    /// An ASN the member routes (repeatable).
    #[arg(long = "asn")]
    asns: Vec<u32>,
    /// A prefix assigned to the member, IPv4 or IPv6 (repeatable).
    #[arg(long = "prefix")]
    prefixes: Vec<IpNet>,
    /// An abuse-desk contact address (repeatable).
    #[arg(long = "contact")]
    contacts: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum MemberCommand {
    /// Register a member ISP.
    Add {
        /// Short unique name.
        name: String,
        #[command(flatten)]
        fields: MemberFields,
    },
    /// Replace a member's ASNs, prefixes, contacts (and display name when given).
    Update {
        /// The member's name.
        name: String,
        #[command(flatten)]
        fields: MemberFields,
    },
    /// List members.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Register members from a JSON file (as `kizuna generate world` writes), skipping known names.
    Import {
        /// The file.
        file: PathBuf,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Issue a token for a member; it is printed once and stored only hashed.
    Issue {
        /// The member's name.
        member: String,
        /// A label for the token.
        #[arg(long, default_value = "api")]
        label: String,
    },
    /// List a member's tokens (never the secrets).
    List {
        /// The member's name.
        member: String,
    },
    /// Revoke a token by id.
    Revoke {
        /// Token id (from `token list`).
        id: u64,
    },
}

#[derive(Subcommand, Debug)]
enum RoutesCommand {
    /// Load a routing table in pyasn's ipasn format (`prefix<TAB>origin-asn` lines); replaces the table.
    Import {
        /// The file (`-` for stdin).
        file: PathBuf,
    },
    /// Show the table's size.
    Info,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// The member whose observations to print.
    #[arg(long)]
    member: String,
    /// Start after this cursor (the `next_cursor` of an earlier run).
    #[arg(long, default_value_t = 0)]
    cursor: u64,
    /// Most observations to print.
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// Print counts by classification and feed instead of the observations.
    #[arg(long)]
    summary: bool,
}

#[derive(Subcommand, Debug)]
enum QuarantineCommand {
    /// List quarantined records: file, line, reason, raw text.
    List {
        /// Start after this id.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Most records.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check the hash chain (and the anchor kept beside the store).
    Verify,
    /// Print the entries.
    List {
        /// Start after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Most entries.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Subcommand, Debug)]
enum SensorCommand {
    /// Make a token for a sensor and print the `[[hub.sensors]]` entry to add to the config.
    Token {
        /// Sensor name.
        name: String,
    },
}

/// Loaded configuration plus the command-line overrides.
pub struct Env {
    pub config: Config,
    /// The config file read, or the one `<data dir>/kizuna.toml` would be (re-read on SIGHUP
    /// by `kizuna hub serve`).
    pub config_path: PathBuf,
}

impl Env {
    fn load(cli: &Cli) -> Result<Env> {
        let config_path = match &cli.config {
            Some(p) => p.clone(),
            None => cli.data_dir.clone().unwrap_or_else(|| Config::default().data_dir()).join("kizuna.toml"),
        };
        let mut config =
            if cli.config.is_some() || config_path.exists() { Config::load(&config_path)? } else { Config::default() };
        if let Some(d) = &cli.data_dir {
            config.data_dir = Some(d.clone());
        }
        Ok(Env { config, config_path })
    }

    /// Opens the store, creating the data directory.
    pub fn open_store(&self) -> Result<Arc<SqliteStore>> {
        let path = self.config.store_path();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
        }
        let store = SqliteStore::open(&path).with_context(|| format!("opening store {}", path.display()))?;
        Ok(Arc::new(store))
    }
}

/// The actor recorded in the audit log for CLI actions.
pub fn cli_actor() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "operator".into()))
}

/// Appends an audit record for a CLI action.
pub fn audit(store: &dyn Store, action: &str, subject: String, detail: serde_json::Value) -> Result<()> {
    store
        .append_audit(&AuditRecord {
            at: Timestamp::now(),
            actor: cli_actor(),
            action: action.into(),
            subject,
            detail: detail.to_string(),
        })
        .context("writing the audit log")?;
    Ok(())
}

pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    let env = Env::load(&cli)?;
    match cli.command {
        Command::Hub { command: HubCommand::Serve { listen } } => serve(&env, listen),
        Command::Ingest(args) => crate::ingest::run(&env, &args),
        Command::Member { command } => member(&env, command),
        Command::Console { command } => crate::console::run(&env, command),
        Command::Routes { command } => routes(&env, command),
        Command::Report(args) => report(&env, &args),
        Command::Quarantine { command: QuarantineCommand::List { after, limit } } => {
            let store = env.open_store()?;
            let mut out = std::io::stdout().lock();
            for q in store.quarantine(after, limit)? {
                let r = &q.rejected;
                writeln!(
                    out,
                    "{}\t{}\t{}:{}\t{}\t{}",
                    q.id,
                    q.at,
                    r.source_name,
                    r.line,
                    r.reason,
                    r.raw.escape_debug()
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command } => audit_cmd(&env, command),
        Command::Expire => {
            let store = env.open_store()?;
            let n = store.expire(Timestamp::now(), &env.config.retention())?;
            audit(store.as_ref(), "retention.expire", "observations".into(), serde_json::json!({"deleted": n}))?;
            println!("deleted {n} observations past their retention period");
            Ok(ExitCode::SUCCESS)
        }
        Command::Sensor { command: SensorCommand::Token { name } } => {
            let t = kizuna_hub::tokens::issue()?;
            println!("Token for sensor {name} (shown once; give it to the sensor):\n  {}\n", t.secret);
            println!(
                "Add to the config file:\n[[hub.sensors]]\nname = {:?}\ntoken_sha256 = \"{}\"",
                name,
                hex_of(&t.hash.0)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Crawl(args) => crate::crawl::run(&args),
        Command::Indicator { command } => crate::indicator::run(&env, command),
        Command::Dns { command } => crate::dns::run(&env, command),
        Command::Share { command } => crate::share::run(&env, command),
        Command::Generate { command } => crate::demo::generate(command),
        Command::Demo(args) => crate::demo::run(&env, &args),
        Command::Isp(args) => crate::isp::run(args),
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn serve(env: &Env, listen: Option<SocketAddr>) -> Result<ExitCode> {
    let store = env.open_store()?;
    let mut hub_config = env.config.hub.clone();
    if let Some(l) = listen {
        hub_config.listen = l;
    }
    let addr = hub_config.listen;
    let mut metrics = kizuna_hub::Metrics::new();
    let dns = crate::dns::for_hub(env, store.clone(), &mut metrics)?;
    let hub = kizuna_hub::Hub::with_metrics(store, hub_config, env.config.ingest_settings()?, metrics)?;
    // The primary republishes as soon as the hub changes an indicator, not at its next poll.
    let config_path = env.config_path.clone();
    let dns = dns.map(|mut svc| {
        svc.wake_on(hub.indicator_change_notifier());
        svc
    });
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr}"))?;
        let dns = crate::dns::InHub::start(dns).await?;
        tracing::info!("kizuna hub listening on http://{}", listener.local_addr()?);
        let dns_ended = dns.ended();
        let reload = tokio::spawn(reload_on_sighup(hub.clone(), config_path));
        hub.serve(listener, async {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = dns_ended => {}
            }
        })
        .await?;
        reload.abort();
        dns.stop().await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP: re-reads the config file and applies its `[[hub.sharing.poll]]` partner list to the
/// running hub (partners added, removed or changed without a restart). Other settings need a
/// restart; a file that does not parse changes nothing.
async fn reload_on_sighup(hub: Arc<kizuna_hub::Hub>, path: PathBuf) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("SIGHUP handler not installed: poll partners change only with a restart");
        return;
    };
    while hup.recv().await.is_some() {
        let loaded = if path.exists() {
            Config::load(&path).map_err(|e| format!("{e:#}"))
        } else {
            Err(format!("{} does not exist", path.display()))
        };
        let config = match loaded {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("SIGHUP: config not reloaded, the running poll partners stay: {e}");
                continue;
            }
        };
        match hub.set_poll_partners(&config.hub.sharing.poll) {
            Ok(c) => tracing::info!(
                started = ?c.started, stopped = ?c.stopped, restarted = ?c.restarted, unchanged = ?c.unchanged,
                "SIGHUP: [[hub.sharing.poll]] reloaded from {} (other settings need a restart)",
                path.display()
            ),
            Err(e) => tracing::warn!("SIGHUP: poll partners not changed: {e}"),
        }
    }
}

fn spec_of(name: &str, f: &MemberFields, old: Option<&kizuna_store::Member>) -> MemberSpec {
    MemberSpec {
        name: name.to_owned(),
        display_name: f
            .display_name
            .clone()
            .or_else(|| old.map(|m| m.display_name.clone()))
            .unwrap_or_else(|| name.to_owned()),
        asns: f.asns.clone(),
        prefixes: f.prefixes.iter().map(|p| p.trunc()).collect(),
        contacts: f.contacts.clone(),
    }
}

fn member_json(m: &kizuna_store::Member) -> serde_json::Value {
    serde_json::json!({
        "id": m.id.0, "name": m.name, "display_name": m.display_name, "asns": m.asns,
        "prefixes": m.prefixes.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "contacts": m.contacts, "created": m.created.to_rfc3339(),
    })
}

fn find_member(store: &dyn Store, name: &str) -> Result<kizuna_store::Member> {
    store.member_by_name(name)?.with_context(|| format!("no member named {name:?} (see `kizuna member list`)"))
}

fn member(env: &Env, command: MemberCommand) -> Result<ExitCode> {
    let store = env.open_store()?;
    let store: &dyn Store = store.as_ref();
    match command {
        MemberCommand::Add { name, fields } => {
            let m = store.add_member(&spec_of(&name, &fields, None), Timestamp::now())?;
            audit(store, "member.add", format!("member:{}", m.id), member_json(&m))?;
            println!("added member {} (id {})", m.name, m.id);
        }
        MemberCommand::Update { name, fields } => {
            let old = find_member(store, &name)?;
            let m = store.update_member(old.id, &spec_of(&name, &fields, Some(&old)))?;
            audit(store, "member.update", format!("member:{}", m.id), member_json(&m))?;
            println!("updated member {} (id {})", m.name, m.id);
        }
        MemberCommand::List { json } => {
            let members = store.members()?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::Value::Array(members.iter().map(member_json).collect()))?;
            } else {
                writeln!(
                    out,
                    "{:>4}  {:<20} {:<30} {:>6} {:>8}  contacts",
                    "id", "name", "display name", "asns", "prefixes"
                )?;
                for m in &members {
                    writeln!(
                        out,
                        "{:>4}  {:<20} {:<30} {:>6} {:>8}  {}",
                        m.id,
                        m.name,
                        m.display_name,
                        m.asns.len(),
                        m.prefixes.len(),
                        m.contacts.join(",")
                    )?;
                }
            }
        }
        MemberCommand::Import { file } => {
            let added = import_members(store, &file)?;
            println!("imported {added} members from {}", file.display());
        }
        MemberCommand::Token { command } => match command {
            TokenCommand::Issue { member, label } => {
                let m = find_member(store, &member)?;
                let t = kizuna_hub::tokens::issue()?;
                let info = store.add_token(m.id, t.hash, &label, &t.prefix, Timestamp::now())?;
                audit(
                    store,
                    "token.issue",
                    format!("token:{}", info.id),
                    serde_json::json!({"member": m.name, "label": label, "prefix": t.prefix}),
                )?;
                eprintln!("token {} for member {} (shown once, stored only hashed):", info.id, m.name);
                println!("{}", t.secret);
            }
            TokenCommand::List { member } => {
                let m = find_member(store, &member)?;
                for t in store.tokens(m.id)? {
                    let state = t.revoked.map(|r| format!("revoked {r}")).unwrap_or_else(|| "live".into());
                    println!("{}\t{}…\t{}\t{}\t{}", t.id, t.prefix, t.label, t.created, state);
                }
            }
            TokenCommand::Revoke { id } => {
                if store.revoke_token(id, Timestamp::now())? {
                    audit(store, "token.revoke", format!("token:{id}"), serde_json::json!({}))?;
                    println!("revoked token {id}");
                } else {
                    bail!("token {id} is unknown or already revoked");
                }
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// Registers members from a JSON array of `{name, display_name, asns, prefixes, contacts}`.
pub fn import_members(store: &dyn Store, file: &Path) -> Result<usize> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct M {
        name: String,
        #[serde(default)]
        display_name: String,
        #[serde(default)]
        asns: Vec<u32>,
        #[serde(default)]
        prefixes: Vec<IpNet>,
        #[serde(default)]
        contacts: Vec<String>,
    }
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let list: Vec<M> = serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
    let mut added = 0;
    for m in list {
        if store.member_by_name(&m.name)?.is_some() {
            continue;
        }
        let spec = MemberSpec {
            display_name: if m.display_name.is_empty() { m.name.clone() } else { m.display_name },
            name: m.name,
            asns: m.asns,
            prefixes: m.prefixes,
            contacts: m.contacts,
        };
        let member = store.add_member(&spec, Timestamp::now())?;
        audit(store, "member.add", format!("member:{}", member.id), member_json(&member))?;
        added += 1;
    }
    Ok(added)
}

/// Loads an ipasn file into the store, replacing the table; returns (routes, rejected lines).
pub fn import_routes(store: &dyn Store, file: &Path) -> Result<(usize, usize)> {
    let (routes, rejected) = if file == Path::new("-") {
        kizuna_attrib::parse_ipasn("-", std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        kizuna_attrib::parse_ipasn(&file.display().to_string(), std::io::BufReader::with_capacity(1 << 20, f))
    };
    for r in rejected.iter().take(10) {
        eprintln!("rejected {r}");
    }
    if routes.is_empty() {
        bail!("{}: no valid `prefix<TAB>asn` lines ({} rejected)", file.display(), rejected.len());
    }
    store.replace_routes(&routes)?;
    audit(
        store,
        "routes.import",
        "routes".into(),
        serde_json::json!({"file": file.display().to_string(), "routes": routes.len(), "rejected": rejected.len()}),
    )?;
    Ok((routes.len(), rejected.len()))
}

fn routes(env: &Env, command: RoutesCommand) -> Result<ExitCode> {
    let store = env.open_store()?;
    match command {
        RoutesCommand::Import { file } => {
            let (n, bad) = import_routes(store.as_ref(), &file)?;
            println!("imported {n} routes ({bad} lines rejected)");
        }
        RoutesCommand::Info => {
            let routes = store.routes()?;
            let v4 = routes.iter().filter(|(p, _)| matches!(p, IpNet::V4(_))).count();
            println!("{} routes: {} IPv4, {} IPv6", routes.len(), v4, routes.len() - v4);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report(env: &Env, args: &ReportArgs) -> Result<ExitCode> {
    let store = env.open_store()?;
    let store: &dyn Store = store.as_ref();
    let m = find_member(store, &args.member)?;
    let page = store.page(m.id, Cursor(args.cursor), args.limit.max(1))?;
    audit(
        store,
        "report.read",
        format!("member:{}", m.id),
        serde_json::json!({"via": "cli", "cursor": args.cursor, "next_cursor": page.next.0, "returned": page.items.len()}),
    )?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.summary {
        let mut by: std::collections::BTreeMap<(String, String), u64> = Default::default();
        for item in &page.items {
            let o = &item.routed.observation;
            *by.entry((o.classification.kind.to_string(), o.feed.name.clone())).or_default() += 1;
        }
        writeln!(
            out,
            "member {} ({}): {} observations after cursor {}",
            m.name,
            m.display_name,
            page.items.len(),
            args.cursor
        )?;
        for ((class, feed), n) in by {
            writeln!(out, "{n:>8}  {class:<28} {feed}")?;
        }
    } else {
        let mut buf = Vec::with_capacity(1024);
        for item in &page.items {
            buf.clear();
            kizuna_parsers::intelmq::write_json(&item.routed.observation, &mut buf);
            buf.push(b'\n');
            out.write_all(&buf)?;
        }
    }
    out.flush()?;
    eprintln!("next_cursor {}", page.next.0);
    Ok(ExitCode::SUCCESS)
}

fn audit_cmd(env: &Env, command: AuditCommand) -> Result<ExitCode> {
    let store = env.open_store()?;
    match command {
        AuditCommand::Verify => match verify_store(store.as_ref(), store.audit_anchor())? {
            Verdict::Intact { entries } => {
                println!("audit log intact: {entries} entries, chain and anchor verified");
                Ok(ExitCode::SUCCESS)
            }
            Verdict::Broken { seq, reason } => {
                println!("audit log BROKEN at entry {seq}: {reason}");
                Ok(ExitCode::from(2))
            }
        },
        AuditCommand::List { after, limit } => {
            let mut out = std::io::stdout().lock();
            for e in store.audit_entries(after, limit)? {
                let r = &e.record;
                writeln!(out, "{}\t{}\t{}\t{}\t{}\t{}", e.seq, r.at, r.actor, r.action, r.subject, r.detail)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
