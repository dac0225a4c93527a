//! `kizuna console …`: web-console users (hub staff and members' abuse-desk staff) and the
//! console's aggregates.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;

use kizuna_hub::console::kizuna_console::{self, PasswordCost};
use kizuna_store::console::{ConsoleStore, Role};
use kizuna_store::{HubStore, Store};

use crate::cli::Env;

/// `kizuna console` commands.
#[derive(Subcommand, Debug)]
pub enum ConsoleCommand {
    /// Console users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Recompute the console's aggregates from the stored observations (only needed after
    /// restoring an old backup; they are kept up to date at every commit).
    Rebuild,
}

/// `kizuna console user` commands.
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user. The password is read from --password-file, else $KIZUNA_CONSOLE_PASSWORD,
    /// else the first line of stdin.
    Add {
        /// Login name.
        name: String,
        /// operator, analyst or read-only.
        #[arg(long)]
        role: String,
        /// For a member ISP's staff: the member (they see only their own member's data).
        #[arg(long)]
        member: Option<String>,
        /// File holding the password (first line).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Change a user's role and/or password (ends their sessions).
    Update {
        /// Login name.
        name: String,
        /// New role (default: unchanged).
        #[arg(long)]
        role: Option<String>,
        /// Read a new password (as for `add`).
        #[arg(long)]
        password: bool,
        /// File holding the password.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List users.
    List,
    /// Disable a user (ends their sessions).
    Disable {
        /// Login name.
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        /// Login name.
        name: String,
    },
}

fn read_password(file: Option<&PathBuf>) -> Result<String> {
    if let Some(f) = file {
        let s = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        return Ok(s.lines().next().unwrap_or("").to_owned());
    }
    if let Ok(p) = std::env::var("KIZUNA_CONSOLE_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn audit(store: &dyn HubStore, action: &str, name: &str, detail: serde_json::Value) -> Result<()> {
    store
        .append_audit(&kizuna_store::AuditRecord {
            at: kizuna_model::Timestamp::now(),
            actor: "cli:operator".into(),
            action: action.into(),
            subject: format!("console-user:{name}"),
            detail: detail.to_string(),
        })
        .context("writing the audit log")?;
    Ok(())
}

/// Runs a `kizuna console` command.
pub fn run(env: &Env, command: ConsoleCommand) -> Result<ExitCode> {
    let store = env.open_store()?;
    match command {
        ConsoleCommand::User { command } => match command {
            UserCommand::Add { name, role, member, password_file } => {
                let role: Role = role.parse()?;
                let member = match member {
                    None => None,
                    Some(m) => Some(store.member_by_name(&m)?.with_context(|| format!("no member named {m:?}"))?.id),
                };
                let password = read_password(password_file.as_ref())?;
                let u = kizuna_console::add_user(
                    store.as_ref(),
                    &name,
                    role,
                    member,
                    &password,
                    PasswordCost::default(),
                    "cli:operator",
                )?;
                println!("console user {} added (role {}); log in at /console/login", u.name, u.role);
            }
            UserCommand::Update { name, role, password, password_file } => {
                let current = store.console_user(&name)?.with_context(|| format!("no console user {name:?}"))?;
                let role: Role = match role {
                    Some(r) => r.parse()?,
                    None => current.role,
                };
                let hash = if password || password_file.is_some() {
                    let p = read_password(password_file.as_ref())?;
                    Some(kizuna_console::auth::hash_password(&p, PasswordCost::default())?)
                } else {
                    None
                };
                store.update_console_user(&name, role, hash.as_deref())?;
                audit(
                    store.as_ref(),
                    "console.user.update",
                    &name,
                    serde_json::json!({"role": role.as_str(), "password_changed": hash.is_some()}),
                )?;
                println!("console user {name} updated (role {role}); their sessions ended");
            }
            UserCommand::List => {
                let members = store.members()?;
                for u in store.console_users()? {
                    let member = u
                        .member
                        .and_then(|id| members.iter().find(|m| m.id == id))
                        .map_or("-".to_owned(), |m| m.name.clone());
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        u.name,
                        u.role,
                        member,
                        u.created,
                        if u.disabled { "disabled" } else { "enabled" }
                    );
                }
            }
            UserCommand::Disable { name } | UserCommand::Enable { name } if name.is_empty() => {
                bail!("a user name is required")
            }
            UserCommand::Disable { name } => {
                store.set_console_user_disabled(&name, true)?;
                audit(store.as_ref(), "console.user.disable", &name, serde_json::json!({}))?;
                println!("console user {name} disabled");
            }
            UserCommand::Enable { name } => {
                store.set_console_user_disabled(&name, false)?;
                audit(store.as_ref(), "console.user.enable", &name, serde_json::json!({}))?;
                println!("console user {name} enabled");
            }
        },
        ConsoleCommand::Rebuild => {
            let n = store.rebuild_console_aggregates()?;
            println!("console aggregates rebuilt from {n} observations");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Makes `name` an operator with `password` (added, or its password reset): for `kizuna demo`.
pub fn demo_operator(store: &dyn HubStore, name: &str, password: &str) -> Result<()> {
    let cost = PasswordCost::default();
    if store.console_user(name)?.is_some() {
        let hash = kizuna_console::auth::hash_password(password, cost)?;
        store.update_console_user(name, Role::Operator, Some(&hash))?;
        store.set_console_user_disabled(name, false)?;
        audit(store, "console.user.update", name, serde_json::json!({"role": "operator", "password_changed": true}))?;
    } else {
        kizuna_console::add_user(store, name, Role::Operator, None, password, cost, "cli:demo")?;
    }
    Ok(())
}
