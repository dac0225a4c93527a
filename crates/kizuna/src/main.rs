//! `kizuna`: the one binary. Glue only: every command calls into the library crates.
//!
//! Exit codes: 0 success; 1 an error (message on stderr); 2 nothing could be read (`ingest`) or
//! a check failed (`audit verify`).

mod cli;
mod config;
mod console;
mod crawl;
mod demo;
mod dns;
mod indicator;
mod ingest;
mod isp;
mod share;

use std::process::ExitCode;

fn main() -> ExitCode {
    // One TLS crypto provider for every client in the process (reqwest is built with
    // `rustls-no-provider`, lettre and the crawler with ring). Fails only if one is installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KIZUNA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kizuna: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
