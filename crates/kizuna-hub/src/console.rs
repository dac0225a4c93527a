//! Mounts the web console (`kizuna-console`) under `/console/` on the hub's router.

use std::sync::{Arc, OnceLock};

use axum::Router;

use crate::Hub;

pub use kizuna_console::{self, ConsoleConfig};

static CONFIG: OnceLock<ConsoleConfig> = OnceLock::new();

/// Sets the console settings for hubs built afterwards in this process (once; later calls
/// are ignored and return false). Without it the defaults apply.
pub fn configure(config: ConsoleConfig) -> bool {
    CONFIG.set(config).is_ok()
}

/// The defaults, overridden by the environment: `KIZUNA_CONSOLE_DNS_APIS` (comma-separated base
/// URLs of DNS primaries' HTTP APIs for the zones panel), `KIZUNA_CONSOLE_SECURE_COOKIES=1`
/// (behind TLS), `KIZUNA_CONSOLE_STALE_AFTER_SECS`, `KIZUNA_CONSOLE_SESSION_TTL_SECS`.
pub fn config_from_env() -> ConsoleConfig {
    let mut c = ConsoleConfig::default();
    if let Ok(v) = std::env::var("KIZUNA_CONSOLE_DNS_APIS") {
        c.dns_apis = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    }
    if let Ok(v) = std::env::var("KIZUNA_CONSOLE_SECURE_COOKIES") {
        c.secure_cookies = matches!(v.as_str(), "1" | "true" | "yes");
    }
    if let Some(n) = std::env::var("KIZUNA_CONSOLE_STALE_AFTER_SECS").ok().and_then(|v| v.parse().ok()) {
        c.stale_after_secs = n;
    }
    if let Some(n) = std::env::var("KIZUNA_CONSOLE_SESSION_TTL_SECS").ok().and_then(|v| v.parse().ok()) {
        c.session_ttl_secs = n;
    }
    c
}

/// The console's routes over the hub's store.
pub fn routes(hub: &Arc<Hub>) -> Router<Arc<Hub>> {
    let config = CONFIG.get().cloned().unwrap_or_else(config_from_env);
    kizuna_console::router(kizuna_console::Console::new(hub.store().clone(), config))
}
