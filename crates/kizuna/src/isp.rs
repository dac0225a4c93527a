//! `kizuna isp …`: the ISP agent (crate `kizuna-isp`) from the command line.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};

use kizuna_isp::agent::Agent;
use kizuna_isp::cases::NoticeKind;
use kizuna_isp::clock::{Clock, SystemClock};
use kizuna_isp::config::AgentConfig;
use kizuna_isp::resolve::SessionLookup;
use kizuna_isp::store::AgentStore;
use kizuna_model::Timestamp;
use kizuna_sessions::{LogKind, ResolverConfig, SessionIndex, SessionTailer};

/// `kizuna isp` arguments.
#[derive(Args, Debug)]
pub struct IspArgs {
    /// The agent's config file (TOML; see kizuna-isp.example.toml).
    #[arg(long = "agent-config", env = "KIZUNA_ISP_CONFIG", default_value = "/etc/kizuna/kizuna-isp.toml")]
    agent_config: PathBuf,
    #[command(subcommand)]
    command: IspCommand,
}

#[derive(Subcommand, Debug)]
enum IspCommand {
    /// Run the agent: pull from the hub, tail session logs, serve the countermeasure page,
    /// send notices, push daily counts.
    Serve {
        /// Seconds between pushes of the daily counts to the hub.
        #[arg(long, default_value_t = 3600)]
        stats_every_secs: u64,
    },
    /// Session logs.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Which subscriber had an address (and port) at a time.
    Resolve {
        /// The address.
        ip: IpAddr,
        /// The port (needed behind CGNAT), then the time; or just the time.
        #[arg(num_args = 1..=2, required = true)]
        rest: Vec<String>,
    },
    /// Cases.
    Cases {
        #[command(subcommand)]
        command: CasesCommand,
    },
    /// Notices.
    Notices {
        #[command(subcommand)]
        command: NoticesCommand,
    },
    /// The subscriber directory.
    Subscribers {
        #[command(subcommand)]
        command: SubscribersCommand,
    },
    /// Postal letters.
    Letters {
        #[command(subcommand)]
        command: LettersCommand,
    },
    /// Notice templates.
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// Verify the agent's hash-chained audit log.
    AuditVerify,
    /// Print a `[[console_users]]` entry (argon2id hash) for the agent console. The password is
    /// read from --password-file, else $KIZUNA_CONSOLE_PASSWORD, else the first line of stdin.
    ConsoleUser {
        /// Login name.
        name: String,
        /// operator, analyst or read-only.
        #[arg(long)]
        role: String,
        /// File holding the password (first line).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// The consent register of the protective DNS service (kept only in the agent).
    Consent {
        #[command(subcommand)]
        command: ConsentCommand,
    },
    /// Push the daily counts to the hub now.
    PushStats {
        /// Days back to include.
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
}

#[derive(Subcommand, Debug)]
enum ConsentCommand {
    /// Record a subscriber's decision (appended to the history; audited).
    Set {
        /// Subscriber id.
        subscriber: String,
        /// opt-in or opt-out.
        status: String,
        /// How the decision came in: web, phone, contract, mail, counter, warning-page, other.
        #[arg(long)]
        channel: String,
        /// When the subscriber decided (RFC 3339; default now).
        #[arg(long)]
        at: Option<String>,
        /// The policy text version the subscriber agreed to (default [consent] policy_version).
        #[arg(long)]
        policy_version: Option<String>,
        /// opt-in or terms-of-service (default [consent] default_basis).
        #[arg(long)]
        basis: Option<String>,
        /// The service.
        #[arg(long, default_value = kizuna_isp::consent::PROTECTIVE_DNS)]
        service: String,
    },
    /// A subscriber's decisions, oldest first, and what is in force.
    Show {
        /// Subscriber id.
        subscriber: String,
        /// The service.
        #[arg(long, default_value = kizuna_isp::consent::PROTECTIVE_DNS)]
        service: String,
    },
    /// Import decisions from CSV: subscriber_id, status, at, channel, policy_version
    /// [, service, basis]. Bad rows are reported by line and skipped; the rest go in at once.
    Import {
        /// The CSV file.
        file: PathBuf,
    },
    /// The decision in force per subscriber, and the counts.
    List {
        /// The service.
        #[arg(long, default_value = kizuna_isp::consent::PROTECTIVE_DNS)]
        service: String,
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum SessionsCommand {
    /// Check session log files and add them to the agent's import directory (loaded by
    /// `serve` and `resolve`).
    Import {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// radius, kea, dhcpd or cgnat.
        #[arg(long)]
        kind: String,
    },
}

#[derive(Subcommand, Debug)]
enum CasesCommand {
    /// List cases (open ones unless --all).
    List {
        /// Include closed cases.
        #[arg(long)]
        all: bool,
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// One case with its observations, notices and self-reports.
    Show {
        /// Case id.
        id: i64,
    },
}

#[derive(Subcommand, Debug)]
enum NoticesCommand {
    /// Render a case's next notice (or the given kind) without sending it.
    Preview {
        /// Case id.
        case: i64,
        /// first, reminder, final or escalation.
        #[arg(long)]
        kind: Option<String>,
        /// Print the HTML part instead of the text.
        #[arg(long)]
        html: bool,
    },
    /// List notices by status (pending, sent, exported, failed).
    List {
        /// Status.
        #[arg(long, default_value = "failed")]
        status: String,
    },
    /// Put failed notices back in the queue.
    Retry,
    /// Send due e-mail notices now.
    Send,
}

#[derive(Subcommand, Debug)]
enum SubscribersCommand {
    /// Import (insert or replace) subscribers from CSV: subscriber_id, keys, name, email,
    /// postal_address, language.
    Import {
        /// The CSV file.
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum LettersCommand {
    /// Export pending letters as a batch for the postal vendor.
    Export,
}

#[derive(Subcommand, Debug)]
enum TemplatesCommand {
    /// Write the shipped templates into a directory (existing files are kept).
    Export {
        /// The directory.
        dir: PathBuf,
    },
}

fn kind_of(s: &str) -> Result<LogKind> {
    LogKind::parse(s).with_context(|| format!("--kind {s:?}: use radius, kea, dhcpd or cgnat"))
}

fn load_config(p: &Path) -> Result<AgentConfig> {
    AgentConfig::load(p).with_context(|| format!("loading the agent config {}", p.display()))
}

fn open_store(c: &AgentConfig) -> Result<Arc<AgentStore>> {
    let p = c.database_path();
    Ok(Arc::new(AgentStore::open(&p).with_context(|| format!("opening {}", p.display()))?))
}

fn import_dir(c: &AgentConfig, kind: LogKind) -> PathBuf {
    c.data_dir.join("sessions").join(kind.as_str())
}

/// Every session log root: the configured directories and the import directories.
fn session_roots(c: &AgentConfig) -> Result<Vec<(PathBuf, LogKind)>> {
    let mut roots = Vec::new();
    for d in &c.sessions.dirs {
        roots.push((d.path.clone(), kind_of(&d.kind)?));
    }
    for k in [LogKind::RadiusDetail, LogKind::KeaLeases4, LogKind::DhcpdLeases, LogKind::Cgnat] {
        let d = import_dir(c, k);
        if d.is_dir() {
            roots.push((d, k));
        }
    }
    Ok(roots)
}

fn resolver_config(c: &AgentConfig) -> ResolverConfig {
    let mut r = ResolverConfig::default();
    if let Some(s) = c.sessions.skew_tolerance_secs {
        r.clock_skew = Duration::from_secs(s);
    }
    r
}

/// Builds the session index from every log, from the start. The index lives in memory, so the
/// tailer state is started afresh too (it only tracks what this process has read).
fn build_index(c: &AgentConfig, state_file: &Path) -> Result<(SessionIndex, SessionTailer)> {
    let _ = std::fs::remove_file(state_file);
    let mut index = SessionIndex::new(resolver_config(c));
    let mut tailer = SessionTailer::new(session_roots(c)?, state_file).context("starting the session tailer")?;
    let started = std::time::Instant::now();
    let s = tailer.poll(&mut index).context("reading session logs")?;
    // One sorted run per family and sessions laid out by address: the fastest lookups.
    index.compact();
    eprintln!(
        "sessions: {} files, {} events, {} rejected, {} sessions indexed in {:.1} s",
        s.files,
        s.events,
        s.rejected,
        index.len(),
        started.elapsed().as_secs_f64()
    );
    for r in s.rejections.iter().take(10) {
        eprintln!("  rejected {r}");
    }
    Ok((index, tailer))
}

/// Runs `kizuna isp …`.
pub fn run(args: IspArgs) -> Result<ExitCode> {
    match args.command {
        IspCommand::Templates { command: TemplatesCommand::Export { dir } } => {
            let written = kizuna_isp::notice::Templates::export_shipped(&dir)?;
            println!("wrote {} template files into {}", written.len(), dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        IspCommand::ConsoleUser { name, role, password_file } => {
            role.parse::<kizuna_store::console::Role>()
                .ok()
                .with_context(|| format!("--role {role:?}: use operator, analyst or read-only"))?;
            let password = match password_file {
                Some(p) => kizuna_isp::config::read_secret(&p)?,
                None => match std::env::var("KIZUNA_CONSOLE_PASSWORD") {
                    Ok(p) => p,
                    Err(_) => {
                        let mut line = String::new();
                        std::io::stdin().read_line(&mut line).context("reading the password from stdin")?;
                        line.trim_end_matches(['\r', '\n']).to_owned()
                    }
                },
            };
            let hash = kizuna_hub::console::kizuna_console::auth::hash_password(
                &password,
                kizuna_hub::console::kizuna_console::PasswordCost::default(),
            )?;
            println!(
                "[[console_users]]\nname = {}\nrole = {}\npassword_hash = {}",
                toml::Value::String(name),
                toml::Value::String(role),
                toml::Value::String(hash)
            );
            return Ok(ExitCode::SUCCESS);
        }
        IspCommand::Sessions { command: SessionsCommand::Import { files, kind } } => {
            let c = load_config(&args.agent_config)?;
            return sessions_import(&c, &files, kind_of(&kind)?);
        }
        _ => {}
    }
    let c = load_config(&args.agent_config)?;
    let store = open_store(&c)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match args.command {
        IspCommand::Serve { stats_every_secs } => serve(c, store, clock, Duration::from_secs(stats_every_secs)),
        IspCommand::Resolve { ip, rest } => {
            let (port, time) = match rest.as_slice() {
                [t] => (None, t),
                [p, t] => (Some(p.parse::<u16>().with_context(|| format!("port {p:?}"))?), t),
                _ => bail!("give PORT TIME or TIME"),
            };
            let at = Timestamp::parse(time).with_context(|| format!("time {time:?}: use RFC 3339"))?;
            let tmp = tempfile_path(&c, "resolve-tail.state");
            let (index, _) = build_index(&c, &tmp)?;
            let _ = std::fs::remove_file(&tmp);
            let lookup = RwLock::new(index);
            match lookup.lookup(ip, port, at) {
                kizuna_isp::resolve::SessionAnswer::Key { key, session } => {
                    let sub = store.subscriber_for_key(&key)?;
                    println!("key\t{key}\nsession\t{session}");
                    match sub.and_then(|s| store.subscriber(&s).ok().flatten()) {
                        Some(s) => println!("subscriber\t{}\nname\t{}\nlanguage\t{}", s.id, s.name, s.language),
                        None => {
                            println!("unresolved\t{}", kizuna_isp::resolve::UNKNOWN_SUBSCRIBER);
                            return Ok(ExitCode::from(2));
                        }
                    }
                    Ok(ExitCode::SUCCESS)
                }
                kizuna_isp::resolve::SessionAnswer::Unresolved(why) => {
                    println!("unresolved\t{why}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        IspCommand::Cases { command } => cases(&store, command),
        IspCommand::Notices { command } => {
            let agent = Agent::new(c, store.clone(), Arc::new(NoSessions), clock, false)?;
            notices(&agent, command)
        }
        IspCommand::Subscribers { command: SubscribersCommand::Import { file } } => {
            let (good, bad) = kizuna_isp::subscribers::parse_csv(&file)?;
            for b in &bad {
                eprintln!("{}:{}: {}", file.display(), b.line, b.reason);
            }
            let n = store.upsert_subscribers(&good, Timestamp::now(), &crate::cli::cli_actor())?;
            println!(
                "imported {n} subscribers ({} rows rejected); directory size {}",
                bad.len(),
                store.subscriber_count()?
            );
            Ok(if bad.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        IspCommand::Letters { command: LettersCommand::Export } => {
            let agent = Agent::new(c, store, Arc::new(NoSessions), clock, false)?;
            match agent.export_letters()? {
                Some(b) => println!("exported {} letters into {}", b.letters, b.dir.display()),
                None => println!("no letters pending"),
            }
            Ok(ExitCode::SUCCESS)
        }
        IspCommand::Consent { command } => consent(&c, &store, command),
        IspCommand::AuditVerify => match store.verify_audit()? {
            kizuna_store::audit::Verdict::Intact { entries } => {
                println!("audit log intact: {entries} entries");
                Ok(ExitCode::SUCCESS)
            }
            kizuna_store::audit::Verdict::Broken { seq, reason } => {
                println!("audit log BROKEN at entry {seq}: {reason}");
                Ok(ExitCode::from(2))
            }
        },
        IspCommand::PushStats { days } => {
            let agent = Agent::new(c, store, Arc::new(NoSessions), clock, true)?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let v = rt.block_on(agent.push_stats(days))?;
            println!("{v}");
            Ok(ExitCode::SUCCESS)
        }
        IspCommand::Templates { .. } | IspCommand::Sessions { .. } | IspCommand::ConsoleUser { .. } => {
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn tempfile_path(c: &AgentConfig, name: &str) -> PathBuf {
    c.data_dir.join(format!(".{name}.{}", std::process::id()))
}

/// For commands that never resolve.
struct NoSessions;

impl SessionLookup for NoSessions {
    fn lookup(&self, _: IpAddr, _: Option<u16>, _: Timestamp) -> kizuna_isp::resolve::SessionAnswer {
        kizuna_isp::resolve::SessionAnswer::Unresolved("no-session")
    }
}

fn sessions_import(c: &AgentConfig, files: &[PathBuf], kind: LogKind) -> Result<ExitCode> {
    let dir = import_dir(c, kind);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut bad = false;
    for f in files {
        let mut index = SessionIndex::new(resolver_config(c));
        let s = index.load_file(f, kind).with_context(|| format!("reading {}", f.display()))?;
        println!(
            "{}: {} lines, {} events, {} skipped, {} rejected, {} sessions",
            f.display(),
            s.lines,
            s.events,
            s.skipped,
            s.rejected,
            index.len()
        );
        for r in s.rejections.iter().take(10) {
            eprintln!("  rejected {r}");
        }
        bad |= s.rejected > 0;
        let name = f.file_name().with_context(|| format!("{} has no file name", f.display()))?;
        let dest = dir.join(name);
        std::fs::copy(f, &dest).with_context(|| format!("copying {} to {}", f.display(), dest.display()))?;
    }
    println!("added to {} (loaded by `kizuna isp serve` and `kizuna isp resolve`)", dir.display());
    Ok(if bad { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

fn consent(c: &AgentConfig, store: &AgentStore, command: ConsentCommand) -> Result<ExitCode> {
    use kizuna_isp::consent::{Basis, NewConsent, Status};
    let default_basis = c.consent.default_basis;
    match command {
        ConsentCommand::Set { subscriber, status, channel, at, policy_version, basis, service } => {
            let status = Status::parse(&status).with_context(|| format!("status {status:?}: use opt-in or opt-out"))?;
            let at = match at {
                Some(t) => Timestamp::parse(&t).with_context(|| format!("--at {t:?}: use RFC 3339"))?,
                None => Timestamp::now(),
            };
            let basis = match basis {
                Some(b) => {
                    Basis::parse(&b).with_context(|| format!("--basis {b:?}: use opt-in or terms-of-service"))?
                }
                None => default_basis,
            };
            let d = NewConsent {
                subscriber,
                service,
                status,
                at,
                channel,
                policy_version: policy_version.unwrap_or_else(|| c.consent.policy_version.clone()),
                basis,
            };
            let id = store.record_consent(&d, Timestamp::now(), &crate::cli::cli_actor())?;
            println!(
                "recorded {} for {} ({}, {}, policy {}, basis {}): record {id}",
                d.status.as_str(),
                d.subscriber,
                d.service,
                d.channel,
                d.policy_version,
                d.basis.as_str()
            );
            println!("a running agent updates its rpz-client-ip zone within [client_zone] rebuild_interval_ms");
            Ok(ExitCode::SUCCESS)
        }
        ConsentCommand::Show { subscriber, service } => {
            if store.subscriber(&subscriber)?.is_none() {
                bail!("subscriber {subscriber} is not in the directory");
            }
            let h = store.consent_history(&subscriber, &service)?;
            for r in &h {
                println!(
                    "{}	{}	{}	channel={}	policy={}	basis={}	recorded={} by {}",
                    r.id,
                    r.consent.at,
                    r.consent.status.as_str(),
                    r.consent.channel,
                    r.consent.policy_version,
                    r.consent.basis.as_str(),
                    r.recorded,
                    r.actor
                );
            }
            let filtered = store.consents(&subscriber, &service, default_basis)?;
            let why = if h.is_empty() {
                format!("no record: default of {}", default_basis.as_str())
            } else {
                "newest record".into()
            };
            println!("in force	{}	({why})", if filtered { "filtered (opt-in)" } else { "not filtered (opt-out)" });
            Ok(ExitCode::SUCCESS)
        }
        ConsentCommand::Import { file } => {
            let (good, mut bad) = kizuna_isp::consent::parse_csv(&file, default_basis)?;
            let mut known = Vec::with_capacity(good.len());
            for (line, d) in good {
                if store.subscriber(&d.subscriber)?.is_some() {
                    known.push(d);
                } else {
                    let reason = format!("subscriber {} is not in the directory", d.subscriber);
                    bad.push(kizuna_isp::consent::BadRow { line, reason });
                }
            }
            bad.sort_by_key(|b| b.line);
            for b in &bad {
                eprintln!("{}:{}: {}", file.display(), b.line, b.reason);
            }
            let actor = format!("{} import:{}", crate::cli::cli_actor(), file.display());
            let n = store.import_consent(&known, Timestamp::now(), &actor)?;
            println!("imported {n} consent records ({} rejected)", bad.len());
            Ok(if bad.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        ConsentCommand::List { service, json } => {
            let cur = store.consent_current(&service)?;
            for r in cur.values() {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "subscriber": r.consent.subscriber, "service": r.consent.service,
                            "status": r.consent.status.as_str(), "at": r.consent.at.to_rfc3339(),
                            "channel": r.consent.channel, "policy_version": r.consent.policy_version,
                            "basis": r.consent.basis.as_str(), "record": r.id,
                        })
                    );
                } else {
                    println!(
                        "{}	{}	{}	{}	policy={}	basis={}",
                        r.consent.subscriber,
                        r.consent.status.as_str(),
                        r.consent.at,
                        r.consent.channel,
                        r.consent.policy_version,
                        r.consent.basis.as_str()
                    );
                }
            }
            let n = store.consent_counts(&service)?;
            eprintln!(
                "opt-in {}, opt-out {}, no record {} (default: {})",
                n.opt_in,
                n.opt_out,
                n.no_record,
                default_basis.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn cases(store: &AgentStore, command: CasesCommand) -> Result<ExitCode> {
    match command {
        CasesCommand::List { all, json } => {
            for c in store.cases(all, usize::MAX)? {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "id": c.id, "subscriber": c.subscriber, "threat": c.threat.key(), "state": c.state.as_str(),
                            "legal_basis": c.legal_basis.as_str(), "opened": c.opened.to_rfc3339(),
                            "last_seen": c.last_seen.to_rfc3339(), "hits": c.hits, "notices": c.notices,
                            "escalation_action": c.escalation_action,
                        })
                    );
                } else {
                    println!(
                        "{}\t{}\t{}\t{}\thits={}\tnotices={}\tlast_seen={}",
                        c.id,
                        c.state.as_str(),
                        c.subscriber,
                        c.threat.key(),
                        c.hits,
                        c.notices,
                        c.last_seen
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CasesCommand::Show { id } => {
            let c = store.case(id)?.with_context(|| format!("no case {id}"))?;
            println!(
                "case\t{}\nstate\t{}\nsubscriber\t{}\nthreat\t{}",
                c.id,
                c.state.as_str(),
                c.subscriber,
                c.threat.key()
            );
            println!("legal_basis\t{}\nopened\t{}\nupdated\t{}", c.legal_basis, c.opened, c.updated);
            println!("first_seen\t{}\nlast_seen\t{}\nhits\t{}", c.first_seen, c.last_seen, c.hits);
            if let Some(a) = &c.escalation_action {
                println!("escalation_action\t{a}");
            }
            println!("\nobservations (newest first):");
            for (t, ip, port, _) in store.case_observations(id, 20)? {
                println!("  {t}\t{}{}", ip.unwrap_or_default(), port.map(|p| format!(":{p}")).unwrap_or_default());
            }
            println!("\nnotices:");
            for n in store.notices_of_case(id)? {
                println!(
                    "  {}\t{}\t{}\t{}\t{}\tattempts={}{}",
                    n.id,
                    n.created,
                    n.kind.as_str(),
                    n.channel,
                    n.status,
                    n.attempts,
                    n.last_error.map(|e| format!("\tlast_error={e}")).unwrap_or_default()
                );
            }
            println!("\nself-reports:");
            for (t, note) in store.self_reports(id)? {
                println!("  {t}\t{}", note.escape_debug());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn notices(agent: &Agent, command: NoticesCommand) -> Result<ExitCode> {
    match command {
        NoticesCommand::Preview { case, kind, html } => {
            let kind = match kind {
                Some(k) => Some(
                    NoticeKind::parse(&k)
                        .with_context(|| format!("--kind {k:?}: use first, reminder, final or escalation"))?,
                ),
                None => None,
            };
            let (kind, r) = agent.preview(case, kind)?;
            println!("Kind: {}\nSubject: {}\n", kind.as_str(), r.subject);
            print!("{}", if html { &r.html } else { &r.text });
            Ok(ExitCode::SUCCESS)
        }
        NoticesCommand::List { status } => {
            for n in agent.store.notices_by_status(&status, None)? {
                println!(
                    "{}\tcase={}\t{}\t{}\t{}\tattempts={}\t{}",
                    n.id,
                    n.case_id,
                    n.kind.as_str(),
                    n.channel,
                    n.created,
                    n.attempts,
                    n.last_error.unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        NoticesCommand::Retry => {
            let n = agent.store.requeue_failed(Timestamp::now())?;
            println!("{n} notices queued again");
            Ok(ExitCode::SUCCESS)
        }
        NoticesCommand::Send => {
            let r = agent.deliver()?;
            println!("sent {}, retrying {}, to letters {}, failed {}", r.sent, r.retried, r.to_letter, r.failed);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn serve(c: AgentConfig, store: Arc<AgentStore>, clock: Arc<dyn Clock>, stats_every: Duration) -> Result<ExitCode> {
    let state = c.tailer_state_file();
    let (index, mut tailer) = build_index(&c, &state)?;
    let index = Arc::new(RwLock::new(index));
    let index_for_zone = index.clone();
    let listen = c.page.listen;
    let tail_every = Duration::from_secs(c.sessions.poll_interval_secs.max(1));
    let agent = Agent::new(c, store, index.clone(), clock, true)?;
    let sessions_now = |i: &SessionIndex| i64::try_from(i.len()).unwrap_or(i64::MAX);
    agent.metrics.sessions_indexed.set(index.read().map(|i| sessions_now(&i)).unwrap_or(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tail_stop = stop.clone();
    let tail_agent = agent.clone();
    let tail_thread = std::thread::Builder::new().name("session-tailer".into()).spawn(move || {
        while !tail_stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(tail_every);
            let mut guard = match index.write() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let polled = tailer.poll(&mut guard);
            tail_agent.metrics.sessions_indexed.set(sessions_now(&guard));
            drop(guard);
            match polled {
                Ok(s) if s.events > 0 || s.rejected > 0 => {
                    tail_agent.metrics.session_events.inc_by(s.events);
                    tracing::info!(events = s.events, rejected = s.rejected, "session logs read")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("tailing session logs: {e}"),
            }
        }
    })?;
    let holders: Arc<dyn kizuna_isp::consent::Holders> = index_for_zone;
    let client_zone = kizuna_isp::consent::ClientZone::new(&agent, holders).context("starting the client zone")?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
        tracing::info!("countermeasure page on http://{}", listener.local_addr()?);
        let (tx, rx) = tokio::sync::watch::channel(false);
        let zone_task = match client_zone {
            Some(z) => {
                let (udp, tcp) = z.bind().await.context("binding [client_zone] listen")?;
                let mut rxz = rx.clone();
                Some(tokio::spawn(z.run(agent.clone(), udp, tcp, async move {
                    let _ = rxz.changed().await;
                })))
            }
            None => None,
        };
        let mut rx2 = rx.clone();
        let page = tokio::spawn(kizuna_isp::page::serve(agent.clone(), listener, async move {
            let _ = rx2.changed().await;
        }));
        let mut rx3 = rx.clone();
        let runner = tokio::spawn(agent.clone().run(stats_every, async move {
            let _ = rx3.changed().await;
        }));
        // SIGINT (Ctrl-C) or SIGTERM (systemd, docker stop): stop after the current step. Every
        // step commits before it moves on, so even SIGKILL loses nothing (tests/isp_cli.rs).
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        let _ = tx.send(true);
        let _ = runner.await;
        let _ = page.await;
        if let Some(z) = zone_task {
            let _ = z.await;
        }
        anyhow::Ok(())
    })?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = tail_thread.join();
    Ok(ExitCode::SUCCESS)
}
