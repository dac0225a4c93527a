//! `kizuna indicator …`: analysts' indicator commands on the store directly (like `member`).
//! Every add, withdrawal and allow-list change is written to the audit log with the analyst's
//! name (`--analyst`, default `$USER`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use kizuna_indicators::{AnalystInput, Policy, granularity_report};
use kizuna_model::Timestamp;
use kizuna_store::indicators::{
    AllowEntry, AllowPattern, AllowScope, IndicatorFilter, IndicatorRecord, IndicatorState,
};
use kizuna_store::{AuditRecord, HubStore, Store};

use crate::cli::Env;

/// Who is acting: `--analyst`, default `$USER`.
#[derive(Args, Debug, Clone)]
pub struct AnalystArg {
    /// Analyst name recorded in the audit log and as `analyst:<name>` source.
    #[arg(long, env = "KIZUNA_ANALYST")]
    analyst: Option<String>,
}

impl AnalystArg {
    fn name(&self) -> String {
        self.analyst.clone().unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "operator".into()))
    }
}

/// `kizuna indicator` subcommands.
#[derive(Subcommand, Debug)]
pub enum IndicatorCommand {
    /// Add an indicator (or confirm a known one: sightings merge by kind and value).
    Add {
        /// url, domain, ip, sha256, md5, sha1.
        #[arg(long)]
        kind: String,
        /// The value (canonicalised: URLs lower-case scheme and host, no fragment, …).
        #[arg(long)]
        value: String,
        /// classification.type: malware-distribution, phishing, c2-server, exploit, …
        #[arg(long)]
        category: String,
        /// Why; shown on warning pages and to analysts.
        #[arg(long)]
        reason: String,
        /// 30d, 12h, 90m, 2w or an RFC 3339 time (default: the category's expiry).
        #[arg(long)]
        expires: Option<String>,
        /// clear, green, amber, amber+strict, red (default amber).
        #[arg(long)]
        tlp: Option<String>,
        /// 0–100 (default 80).
        #[arg(long)]
        confidence: Option<u8>,
        /// Malware family.
        #[arg(long)]
        malware: Option<String>,
        /// Sharing group or named recipient (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// consent, legitimate-business, emergency-evacuation.
        #[arg(long)]
        legal_basis: Option<String>,
        #[command(flatten)]
        who: AnalystArg,
        /// Print the record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List indicators, newest change first.
    List {
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        category: Option<String>,
        /// active, expired, withdrawn, allow-listed.
        #[arg(long)]
        state: Option<String>,
        /// Only those one source reported (feed name or analyst:<name>).
        #[arg(long)]
        source: Option<String>,
        /// Only values containing this.
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Continue after this change number (the last one of the previous page).
        #[arg(long)]
        after: Option<u64>,
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Show one indicator: a 32-hex-digit key or `<kind>:<value>`.
    Show {
        reference: String,
        #[arg(long)]
        json: bool,
    },
    /// Withdraw an indicator (it stays withdrawn when feeds report it again).
    Withdraw {
        reference: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        who: AnalystArg,
    },
    /// Indicators kept back by the allow-list, and the entry each matched.
    Conflicts {
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// The allow-list (shipped default, config, ISP portals, analysts' entries).
    Allowlist {
        #[command(subcommand)]
        command: AllowlistCommand,
    },
    /// Mark indicators past their expiry as expired.
    Expire,
    /// What is published at which granularity (DNS host block, URL only).
    Granularity,
}

/// `kizuna indicator allowlist` subcommands.
#[derive(Subcommand, Debug)]
pub enum AllowlistCommand {
    /// Print every entry.
    Show,
    /// Add entries: `example.com` (and subdomains), `=host`, a CIDR, an exact URL.
    Add {
        #[arg(required = true)]
        entries: Vec<String>,
        /// host: never block the host as a whole, URLs on it may still be published; all:
        /// publish nothing under it.
        #[arg(long, default_value = "host")]
        scope: String,
        /// Why.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        who: AnalystArg,
    },
    /// Remove analysts' entries.
    Remove {
        #[arg(required = true)]
        entries: Vec<String>,
        #[command(flatten)]
        who: AnalystArg,
    },
}

/// The indicator policy from `[hub.indicators]`.
pub fn policy(env: &Env) -> Result<Policy> {
    Policy::from_config(&env.config.hub.indicators).context("in [hub.indicators]")
}

/// Brings the store's allow-list in line with the config (idempotent).
pub fn sync(store: &dyn HubStore, policy: &Policy) -> Result<()> {
    let out = kizuna_hub::indicators::sync_allowlist(store, policy, Timestamp::now())
        .context("applying the configured allow-list")?;
    if out.newly_allowlisted + out.released > 0 {
        eprintln!(
            "allow-list changed: {} indicators newly allow-listed, {} released",
            out.newly_allowlisted, out.released
        );
    }
    Ok(())
}

fn audit(store: &dyn Store, analyst: &str, action: &str, subject: String, detail: serde_json::Value) -> Result<()> {
    store
        .append_audit(&AuditRecord {
            at: Timestamp::now(),
            actor: format!("analyst:{analyst}"),
            action: action.into(),
            subject,
            detail: detail.to_string(),
        })
        .context("writing the audit log")?;
    Ok(())
}

fn line(r: &IndicatorRecord) -> String {
    let i = &r.indicator;
    let mut s = format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        r.key_hex(),
        r.state,
        i.kind,
        i.category,
        i.confidence,
        i.expires,
        i.source,
        i.value
    );
    if let Some(c) = &r.conflict {
        s.push_str(&format!("\tallow-list: {c}"));
    }
    s
}

fn lookup(store: &dyn HubStore, reference: &str) -> Result<IndicatorRecord> {
    let key = kizuna_indicators::parse_reference(reference).map_err(anyhow::Error::msg)?;
    store.indicator(key)?.with_context(|| format!("no indicator {reference}"))
}

/// Runs a `kizuna indicator` command.
pub fn run(env: &Env, command: IndicatorCommand) -> Result<ExitCode> {
    let store = env.open_store()?;
    let store: &dyn HubStore = store.as_ref();
    let policy = policy(env)?;
    sync(store, &policy)?;
    let mut out = std::io::stdout().lock();
    match command {
        IndicatorCommand::Add {
            kind,
            value,
            category,
            reason,
            expires,
            tlp,
            confidence,
            malware,
            groups,
            legal_basis,
            who,
            json,
        } => {
            let analyst = who.name();
            let input = AnalystInput {
                kind,
                value,
                category,
                reason,
                expires,
                tlp,
                confidence,
                malware,
                sharing_groups: groups,
                legal_basis,
            };
            let now = Timestamp::now();
            let i = kizuna_indicators::analyst_indicator(&input, &analyst, &policy, now).map_err(anyhow::Error::msg)?;
            let existed = store.indicator(i.key())?.is_some();
            store.upsert_indicators(std::slice::from_ref(&i), now)?;
            let r = store.indicator(i.key())?.context("indicator vanished after the add")?;
            audit(
                store,
                &analyst,
                "indicator.add",
                format!("indicator:{}", r.key_hex()),
                json!({"via": "cli", "kind": i.kind.as_str(), "value": i.value, "category": i.category.as_str(),
                       "expires": i.expires.to_rfc3339(), "tlp": i.tlp.as_str(), "reason": i.reason,
                       "state": r.state.as_str(), "conflict": r.conflict}),
            )?;
            if json {
                writeln!(out, "{}", kizuna_hub::indicators::record_json(&r, &policy, true))?;
            } else {
                writeln!(out, "{}", line(&r))?;
            }
            if let Some(c) = &r.conflict {
                eprintln!(
                    "warning: {} is allow-listed by {c}: stored, not published (see `kizuna indicator conflicts`)",
                    i.value
                );
            } else if r.state == IndicatorState::Withdrawn {
                eprintln!("warning: {} stays withdrawn", i.value);
            }
            eprintln!("{} {} ({})", if existed { "updated" } else { "added" }, i.value, r.state);
        }
        IndicatorCommand::List { kind, category, state, source, search, limit, after, json } => {
            let f = IndicatorFilter {
                kind: kind.as_deref().map(str::parse).transpose().map_err(|e| anyhow::anyhow!("--kind: {e}"))?,
                category: category
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(|e: kizuna_model::UnknownClassification| anyhow::anyhow!("--category: {e}"))?,
                state: state.as_deref().map(str::parse).transpose().map_err(|e| anyhow::anyhow!("--state: {e}"))?,
                source,
                search,
                limit: limit.max(1),
                after,
            };
            for r in store.list_indicators(&f)? {
                if json {
                    writeln!(out, "{}", kizuna_hub::indicators::record_json(&r, &policy, true))?;
                } else {
                    writeln!(out, "{}", line(&r))?;
                }
            }
        }
        IndicatorCommand::Show { reference, json } => {
            let r = lookup(store, &reference)?;
            let v = kizuna_hub::indicators::record_json(&r, &policy, true);
            if json {
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            }
        }
        IndicatorCommand::Withdraw { reference, reason, who } => {
            let analyst = who.name();
            if reason.trim().is_empty() {
                bail!("--reason must not be empty");
            }
            let r = lookup(store, &reference)?;
            let r = store.withdraw_indicator(r.key, &analyst, reason.trim(), Timestamp::now())?;
            audit(
                store,
                &analyst,
                "indicator.withdraw",
                format!("indicator:{}", r.key_hex()),
                json!({"via": "cli", "kind": r.indicator.kind.as_str(), "value": r.indicator.value, "reason": reason.trim()}),
            )?;
            writeln!(out, "{}", line(&r))?;
        }
        IndicatorCommand::Conflicts { limit } => {
            let f =
                IndicatorFilter { state: Some(IndicatorState::AllowListed), limit: limit.max(1), ..Default::default() };
            let rs = store.list_indicators(&f)?;
            for r in &rs {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\tallow-list: {}\t{}",
                    r.key_hex(),
                    r.indicator.kind,
                    r.indicator.value,
                    r.indicator.source,
                    r.conflict.as_deref().unwrap_or("?"),
                    r.indicator.reason
                )?;
            }
            eprintln!("{} conflicts", rs.len());
        }
        IndicatorCommand::Allowlist { command } => allowlist(store, command, &mut out)?,
        IndicatorCommand::Expire => {
            let n = store.expire_indicators(Timestamp::now())?;
            writeln!(out, "{n} indicators expired")?;
        }
        IndicatorCommand::Granularity => {
            let now = Timestamp::now();
            let all = store.list_indicators(&IndicatorFilter { limit: usize::MAX, ..Default::default() })?;
            write!(out, "{}", granularity_report(&all, &policy, now).render())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn allowlist(store: &dyn HubStore, command: AllowlistCommand, out: &mut impl Write) -> Result<()> {
    use kizuna_hub::indicators::{ANALYST_ORIGIN, edit_analyst_allowlist};
    match command {
        AllowlistCommand::Show => {
            for e in store.allowlist()? {
                writeln!(out, "{}\t{}\t{}\t{}", e.pattern, e.scope.as_str(), e.origin, e.note)?;
            }
        }
        AllowlistCommand::Add { entries, scope, note, who } => {
            let analyst = who.name();
            let scope = match scope.as_str() {
                "host" => AllowScope::Host,
                "all" => AllowScope::All,
                s => bail!("--scope {s:?}: use host or all"),
            };
            let note = note.unwrap_or_else(|| format!("added by {analyst}"));
            let add = entries
                .iter()
                .map(|s| {
                    AllowPattern::parse(s).map(|pattern| AllowEntry {
                        pattern,
                        scope,
                        origin: ANALYST_ORIGIN.into(),
                        note: note.clone(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            let o = edit_analyst_allowlist(store, &add, &[], Timestamp::now())?;
            audit(
                store,
                &analyst,
                "indicator.allowlist",
                "allowlist:analyst".into(),
                json!({"via": "cli", "add": entries, "scope": scope.as_str(), "newly_allowlisted": o.newly_allowlisted}),
            )?;
            writeln!(out, "{} analysts' entries; {} indicators newly allow-listed", o.entries, o.newly_allowlisted)?;
        }
        AllowlistCommand::Remove { entries, who } => {
            let analyst = who.name();
            let remove = entries
                .iter()
                .map(|s| AllowPattern::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            let o = edit_analyst_allowlist(store, &[], &remove, Timestamp::now())?;
            audit(
                store,
                &analyst,
                "indicator.allowlist",
                "allowlist:analyst".into(),
                json!({"via": "cli", "remove": entries, "released": o.released}),
            )?;
            writeln!(out, "{} analysts' entries; {} indicators released", o.entries, o.released)?;
        }
    }
    Ok(())
}

/// The post-commit step `kizuna ingest` runs: derive indicators from each committed batch.
pub fn ingest_step<'a>(
    store: &'a dyn HubStore,
    policy: &'a Policy,
) -> impl Fn(&kizuna_store::Batch) -> Result<(), String> + Sync + 'a {
    move |b| {
        kizuna_hub::indicators::derive_batch(store, policy, b)
            .map(|_| ())
            .map_err(|e| format!("deriving indicators: {e}"))
    }
}
