//! `kizuna share …`: partners, STIX/MISP export and import, TAXII polling, malware aliases.
//! Every export applies the one audience rule (kizuna-policy) for the recipient named with
//! `--for` (without it, only TLP:CLEAR leaves). STIX exports carry the hub's own sighting of
//! each indicator (`kizuna_hub::sharing::own_sighting`); imports resolve sightings of the hub's
//! own indicators by their STIX id.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use kizuna_model::{Timestamp, Tlp};
use kizuna_policy::{Recipient, RecipientKind, should_send};
use kizuna_stix::{AliasTable, BundleBuilder, ExportItem, ExportOptions, ImportOptions, misp};
use kizuna_store::indicators::IndicatorStore;
use kizuna_store::sharing::{CredentialKind, CredentialRecord, PartnerSpec, PartyKind, SharingStore};
use kizuna_taxii::client::ClientAuth;

use crate::cli::{Env, audit};

/// `kizuna share` subcommands.
#[derive(Subcommand, Debug)]
pub enum ShareCommand {
    /// Partner centres (TAXII clients) and their rights.
    Partner {
        #[command(subcommand)]
        command: PartnerCommand,
    },
    /// Export indicators for a recipient as a STIX 2.1 bundle or a MISP feed.
    Export(ExportArgs),
    /// Import a STIX bundle / TAXII envelope (file), a MISP event (file) or a MISP feed (directory).
    Import(ImportArgs),
    /// Poll a partner's TAXII collection once (incrementally) and import what is new: a
    /// `[[hub.sharing.poll]]` partner by name, or a collection URL.
    Poll(PollArgs),
    /// Publish indicator changes into the `kizuna-indicators` TAXII collection.
    Sync,
    /// Malware family aliases.
    Aliases {
        #[command(subcommand)]
        command: AliasCommand,
    },
}

/// `kizuna share partner …`.
#[derive(Subcommand, Debug)]
pub enum PartnerCommand {
    /// Add a partner; prints its TAXII password and API key once (only hashes are stored).
    Add {
        /// Organisation name.
        name: String,
        /// A member ISP of this hub instead of a partner centre.
        #[arg(long)]
        member: bool,
        /// Sharing groups (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Narrowest TLP the partner is cleared for.
        #[arg(long)]
        tlp_max: Option<String>,
        /// Collections it may read (repeatable; `*` for all).
        #[arg(long = "read", default_value = "kizuna-indicators")]
        read: Vec<String>,
        /// Collections it may write (repeatable).
        #[arg(long = "write")]
        write: Vec<String>,
    },
    /// List partners.
    List,
}

/// `kizuna share aliases …`.
#[derive(Subcommand, Debug)]
pub enum AliasCommand {
    /// Merge a MISP galaxy cluster file (or `{name: [aliases]}`) into the table.
    Import {
        /// The JSON file.
        file: PathBuf,
    },
}

/// Output format.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ExportFormat {
    /// STIX 2.1 bundle (`bundle.json`).
    Stix,
    /// MISP feed (`manifest.json`, `hashes.csv`, one `<uuid>.json` per event).
    Misp,
}

/// `kizuna share export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Format.
    format: ExportFormat,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// The partner the export is for (its groups and clearance apply); without it, TLP:CLEAR only.
    #[arg(long = "for")]
    for_partner: Option<String>,
    /// This hub's organisation name in the export (default: `[hub.sharing] organisation`).
    #[arg(long)]
    producer: Option<String>,
}

/// `kizuna share import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// File or MISP feed directory.
    path: PathBuf,
    /// Who the data comes from (provenance).
    #[arg(long, default_value = "import")]
    origin: String,
}

/// `kizuna share poll`.
#[derive(Args, Debug)]
pub struct PollArgs {
    /// A `[[hub.sharing.poll]]` partner name, or a collection URL (`…/collections/{id}/`).
    target: String,
    /// PEM file of the CA that signs the partner's certificate (URL mode; partners from the
    /// config use their `ca_file`).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// HTTP Basic user.
    #[arg(long)]
    user: Option<String>,
    /// HTTP Basic password.
    #[arg(long, env = "KIZUNA_TAXII_PASSWORD")]
    password: Option<String>,
    /// API key (`Authorization: Token …`).
    #[arg(long, env = "KIZUNA_TAXII_TOKEN")]
    token: Option<String>,
    /// Page size.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Who the data comes from (provenance).
    #[arg(long)]
    origin: Option<String>,
}

fn random_secret() -> Result<String> {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("random: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

fn aliases(store: &dyn SharingStore) -> Result<AliasTable> {
    let mut t = AliasTable::new();
    if let Some(j) = store.aliases()? {
        t.load_json(&j).context("stored alias table")?;
    }
    Ok(t)
}

fn recipient_for(store: &dyn SharingStore, name: Option<&str>) -> Result<Recipient> {
    let Some(name) = name else { return Ok(Recipient::public()) };
    let p = store
        .partners()?
        .into_iter()
        .find(|p| p.spec.name == name)
        .with_context(|| format!("no partner {name:?} (kizuna share partner list)"))?;
    let kind = if p.spec.kind == PartyKind::Member { RecipientKind::Member } else { RecipientKind::Partner };
    let mut r = Recipient::new(p.spec.name, kind).with_groups(p.spec.groups);
    r.tlp_max = p.spec.tlp_max;
    Ok(r)
}

/// Runs a share command.
pub fn run(env: &Env, command: ShareCommand) -> Result<ExitCode> {
    let store = env.open_store()?;
    let now = Timestamp::now();
    match command {
        ShareCommand::Partner { command: PartnerCommand::Add { name, member, groups, tlp_max, read, write } } => {
            let tlp_max = tlp_max.map(|t| t.parse::<Tlp>()).transpose()?;
            let spec = PartnerSpec {
                name: name.clone(),
                kind: if member { PartyKind::Member } else { PartyKind::Partner },
                groups,
                tlp_max,
                can_read: read,
                can_write: write,
            };
            store.add_partner(&spec, now)?;
            let password = random_secret()?;
            let key = format!("kzt_{}", random_secret()?);
            for (kind, user, secret) in
                [(CredentialKind::Basic, name.clone(), &password), (CredentialKind::Key, key[..8].to_owned(), &key)]
            {
                store.add_partner_credential(&CredentialRecord {
                    partner: name.clone(),
                    kind,
                    user,
                    secret_sha256: kizuna_taxii::server::secret_hash(secret),
                    created: now,
                })?;
            }
            audit(
                store.as_ref(),
                "share.partner.add",
                format!("partner:{name}"),
                json!({"groups": spec.groups, "read": spec.can_read, "write": spec.can_write}),
            )?;
            println!("partner {name} added");
            println!("TAXII Basic user: {name}\nTAXII password:   {password}\nTAXII API key:    {key}");
            println!("(shown once; only hashes are stored)");
        }
        ShareCommand::Partner { command: PartnerCommand::List } => {
            for p in store.partners()? {
                let s = &p.spec;
                println!(
                    "{}\t{}\tgroups={}\ttlp_max={}\tread={}\twrite={}",
                    s.name,
                    s.kind.as_str(),
                    s.groups.join(","),
                    s.tlp_max.map(|t| t.as_str()).unwrap_or("-"),
                    s.can_read.join(","),
                    s.can_write.join(",")
                );
            }
        }
        ShareCommand::Export(a) => {
            let r = recipient_for(store.as_ref(), a.for_partner.as_deref())?;
            let recs = store.active_indicators(now)?;
            let chosen: Vec<_> = recs
                .iter()
                .filter(|x| {
                    let l = kizuna_policy::indicator_labels(&x.indicator, vec![], None);
                    should_send(&l.as_labels(), &r)
                })
                .collect();
            let items: Vec<ExportItem<'_>> = chosen
                .iter()
                .map(|x| ExportItem {
                    indicator: &x.indicator,
                    created: x.created,
                    modified: x.updated,
                    recipients: &[],
                    provenance: None,
                    purpose: None,
                })
                .collect();
            std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
            let mut sightings = 0usize;
            match a.format {
                ExportFormat::Stix => {
                    let mut opts = env.config.hub.sharing.export_options();
                    if let Some(p) = &a.producer {
                        opts = ExportOptions { producer: p.clone(), contact: None, ..opts };
                    }
                    opts.aliases = aliases(store.as_ref())?;
                    let mut b = BundleBuilder::new(opts);
                    for it in &items {
                        b.add_indicator(it);
                    }
                    // the hub's own sighting of each exported indicator, under the indicator's
                    // audience (its TLP and groups; only sources at that TLP are counted)
                    let partners: Vec<String> = store.partners()?.into_iter().map(|p| p.spec.name).collect();
                    for x in &chosen {
                        if let Some(si) = kizuna_hub::sharing::own_sighting(x, &partners, now) {
                            let l = kizuna_policy::OwnedLabels {
                                tlp: si.tlp,
                                groups: si.sharing_groups.clone(),
                                ..Default::default()
                            };
                            if should_send(&l.as_labels(), &r) {
                                b.add_sighting(&si);
                                sightings += 1;
                            }
                        }
                    }
                    let path = a.out.join("bundle.json");
                    std::fs::write(&path, serde_json::to_string_pretty(&b.finish())?)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                ExportFormat::Misp => {
                    let org = a.producer.as_deref().unwrap_or(&env.config.hub.sharing.organisation);
                    write_feed(&a.out, &misp::export_feed(&items, org))?
                }
            }
            audit(
                store.as_ref(),
                "share.export",
                format!("recipient:{}", r.org),
                json!({"indicators": items.len(), "sightings": sightings, "withheld": recs.len() - items.len()}),
            )?;
            println!(
                "exported {} indicators and {sightings} sightings ({} withheld by TLP/groups) to {}",
                items.len(),
                recs.len() - items.len(),
                a.out.display()
            );
        }
        ShareCommand::Import(a) => {
            let mut opts = ImportOptions::new(&a.origin, now);
            opts.aliases = aliases(store.as_ref())?;
            // a sighting of one of this hub's indicators names it by STIX id: the
            // `kizuna-indicators` view (brought up to date first) holds every one of them
            let hs: std::sync::Arc<dyn kizuna_store::HubStore> = store.clone();
            kizuna_hub::sharing::sync_indicators_as(&hs, &env.config.hub.sharing.export_options(), now)
                .map_err(|e| anyhow::anyhow!("publishing indicator changes: {e}"))?;
            let own = |id: &str| kizuna_hub::sharing::own_indicator(&hs, id);
            let reports = import_path(&a.path, &opts, &own)?;
            let (mut n, mut sightings, mut rejected) = (0, 0, 0);
            for (name, r) in &reports {
                for x in &r.rejected {
                    eprintln!("{name}: {x}");
                }
                rejected += r.rejected.len();
                let mut inds: Vec<_> = r.indicators.iter().map(|i| i.with_provenance()).collect();
                inds.extend(r.sightings.iter().map(|s| s.as_indicator()));
                if !inds.is_empty() {
                    store.upsert_indicators(&inds, now)?;
                }
                n += r.indicators.len();
                sightings += r.sightings.len();
            }
            audit(
                store.as_ref(),
                "share.import",
                format!("origin:{}", a.origin),
                json!({"indicators": n, "sightings": sightings, "rejected": rejected}),
            )?;
            println!("imported {n} indicators, {sightings} sightings, {rejected} objects rejected");
            if rejected > 0 {
                return Ok(ExitCode::from(2));
            }
        }
        ShareCommand::Poll(a) => {
            let sharing = &env.config.hub.sharing;
            let (partner, auth) = match sharing.poll.iter().find(|p| p.name == a.target) {
                Some(p) => (p.clone(), p.auth()?),
                None if a.target.starts_with("http://") || a.target.starts_with("https://") => {
                    let auth = match (a.user, a.password, a.token) {
                        (_, _, Some(t)) => ClientAuth::Token(t),
                        (Some(u), Some(p), None) => ClientAuth::Basic { user: u, password: p },
                        (None, None, None) => ClientAuth::None,
                        _ => bail!("give --user with --password, or --token"),
                    };
                    let p = kizuna_hub::sharing::PollConfig {
                        name: a.origin.clone().unwrap_or_else(|| a.target.clone()),
                        url: a.target.clone(),
                        user: None,
                        password_file: None,
                        token_file: None,
                        interval_secs: 300,
                        ca_file: a.ca_file.clone(),
                        page_size: a.limit.max(1),
                        timeout_secs: 60,
                        default_tlp: None,
                        tlp_floor: None,
                        sharing_groups: vec![],
                    };
                    (p, auth)
                }
                None => bail!(
                    "{:?} is neither a [[hub.sharing.poll]] partner ({}) nor a collection URL",
                    a.target,
                    sharing.poll.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            };
            let hs: std::sync::Arc<dyn kizuna_store::HubStore> = store.clone();
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
            let o = rt.block_on(async {
                let http = kizuna_taxii::client::http_client(
                    partner.ca_file.as_deref(),
                    std::time::Duration::from_secs(partner.timeout_secs),
                )?;
                anyhow::Ok(kizuna_hub::sharing::poll_partner(&hs, &partner, auth, &http).await?)
            })?;
            println!(
                "{} objects in {} pages: {} indicators, {} sightings, {} rejected",
                o.objects, o.pages, o.indicators, o.sightings, o.rejected
            );
            if o.rejected > 0 {
                return Ok(ExitCode::from(2));
            }
        }
        ShareCommand::Sync => {
            let hs: std::sync::Arc<dyn kizuna_store::HubStore> = store.clone();
            let opts = env.config.hub.sharing.export_options();
            let n = kizuna_hub::sharing::sync_indicators_as(&hs, &opts, now).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{n} object versions published to {}", kizuna_hub::sharing::INDICATORS_COLLECTION);
        }
        ShareCommand::Aliases { command: AliasCommand::Import { file } } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let mut t = aliases(store.as_ref())?;
            let (n, conflicts) = t.load_json(&text).with_context(|| file.display().to_string())?;
            for c in &conflicts {
                eprintln!("{}: {c}", file.display());
            }
            store.set_aliases(&t.to_json().to_string())?;
            println!("{n} families read; table has {} families", t.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_feed(dir: &Path, feed: &misp::MispFeed) -> Result<()> {
    std::fs::write(dir.join("manifest.json"), feed.manifest.to_string())?;
    std::fs::write(dir.join("hashes.csv"), &feed.hashes_csv)?;
    for (uuid, ev) in &feed.events {
        std::fs::write(dir.join(format!("{uuid}.json")), ev.to_string())?;
    }
    Ok(())
}

fn import_path(
    path: &Path,
    opts: &ImportOptions,
    own: kizuna_stix::IndicatorLookup<'_>,
) -> Result<Vec<(String, kizuna_stix::ImportReport)>> {
    let read = |p: &Path| -> Result<Value> {
        let t = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&t).with_context(|| format!("{}: not JSON", p.display()))
    };
    let mut out = Vec::new();
    if path.is_dir() {
        let manifest = read(&path.join("manifest.json"))?;
        for uuid in misp::manifest_events(&manifest).map_err(anyhow::Error::msg)? {
            let p = path.join(format!("{uuid}.json"));
            match read(&p).and_then(|v| misp::import_event(&v, opts).map_err(anyhow::Error::msg)) {
                Ok(r) => out.push((p.display().to_string(), r)),
                Err(e) => eprintln!("{e:#}"),
            }
        }
        return Ok(out);
    }
    let v = read(path)?;
    let r = if v.get("Event").is_some() {
        misp::import_event(&v, opts).map_err(anyhow::Error::msg)?
    } else {
        kizuna_stix::import::import_document_with_lookup(&v, opts, own)?
    };
    out.push((path.display().to_string(), r));
    Ok(out)
}
