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

/// The console's routes over the hub's store.
pub fn routes(hub: &Arc<Hub>) -> Router<Arc<Hub>> {
    let config = CONFIG.get().cloned().unwrap_or_default();
    kizuna_console::router(kizuna_console::Console::new(hub.store().clone(), config))
}
