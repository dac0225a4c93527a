//! `kizuna ingest`: files or stdin through the pipeline, with a progress bar and a summary.

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;

use kizuna_model::{LegalBasis, Timestamp, Tlp};
use kizuna_parsers::{Context, Format};
use kizuna_pipeline::{CountingReader, Summary};
use kizuna_store::Store;

use crate::cli::Env;

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Input format: cowrie, suricata, shadowserver, shadowserver:<report>, intelmq, csv:<mapping>.
    /// Guessed from each file's name and first line when not given.
    #[arg(long, short)]
    format: Option<String>,
    /// Override `feed.name`.
    #[arg(long)]
    feed_name: Option<String>,
    /// Override `feed.provider`.
    #[arg(long)]
    feed_provider: Option<String>,
    /// TLP for observations (default: the source's own, else the config's, else AMBER).
    #[arg(long)]
    tlp: Option<Tlp>,
    /// Legal basis to record (default: the config's).
    #[arg(long)]
    legal_basis: Option<LegalBasis>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Only parse and count (no attribution, no store): the benchmark's reference pass.
    #[arg(long)]
    parse_only: bool,
    /// Files to read; `-` reads stdin.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Guesses a format from a file name and the start of its content.
pub fn guess_format(name: &str, head: &[u8]) -> Option<&'static str> {
    let base = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
    let first_line = head.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(first_line);
    let line = line.trim_start();
    if line.starts_with('{') {
        if line.contains("\"eventid\"") && line.contains("cowrie.") {
            return Some("cowrie");
        }
        if line.contains("\"event_type\"") {
            return Some("suricata");
        }
        if line.contains("\"feed.name\"") || line.contains("\"classification.type\"") {
            return Some("intelmq");
        }
        return None;
    }
    if base.ends_with(".csv") && line.contains(',') {
        return Some("shadowserver");
    }
    None
}

struct Input {
    name: String,
    reader: Box<dyn BufRead + Send>,
    size: Option<u64>,
}

fn open(path: &PathBuf) -> Result<Input> {
    if path.as_os_str() == "-" {
        return Ok(Input {
            name: "-".into(),
            reader: Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())),
            size: None,
        });
    }
    let f = std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let size = f.metadata().ok().map(|m| m.len());
    Ok(Input { name: path.display().to_string(), reader: Box::new(BufReader::with_capacity(1 << 20, f)), size })
}

pub fn run(env: &Env, args: &IngestArgs) -> Result<ExitCode> {
    let store = env.open_store()?;
    let settings = env.config.ingest_settings()?;
    let attributor = kizuna_pipeline::attributor_from_store(store.as_ref())?;
    let members = store.members()?;
    let indicator_policy = crate::indicator::policy(env)?;
    crate::indicator::sync(store.as_ref(), &indicator_policy)?;
    let derive = crate::indicator::ingest_step(store.as_ref(), &indicator_policy);
    let interactive = std::io::stderr().is_terminal();
    let mut total = Summary::default();
    let mut failed_files = 0usize;
    let mut files_read = 0usize;
    let started = Instant::now();

    for path in &args.files {
        let mut input = match open(path) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("kizuna: {e:#}");
                failed_files += 1;
                continue;
            }
        };
        let format_name = match &args.format {
            Some(f) => f.clone(),
            None => {
                let head = input.reader.fill_buf().unwrap_or(&[]);
                match guess_format(&input.name, head) {
                    Some(f) => f.to_owned(),
                    None => {
                        eprintln!(
                            "kizuna: {}: cannot tell the format from the name or first line; give --format (known: {})",
                            input.name,
                            Format::KNOWN.join(", ")
                        );
                        failed_files += 1;
                        continue;
                    }
                }
            }
        };
        let format = match Format::from_name(&format_name, &settings.csv_mappings) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("kizuna: {}: {e}", input.name);
                failed_files += 1;
                continue;
            }
        };
        let ctx = Context {
            source_name: input.name.clone(),
            time_observation: Timestamp::now(),
            tlp: args.tlp.or(settings.default_tlp),
            legal_basis: args.legal_basis.unwrap_or(settings.legal_basis),
            feed_name: args.feed_name.clone(),
            feed_provider: args.feed_provider.clone(),
        };

        let bytes = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let progress = interactive.then(|| spawn_progress(&input.name, input.size, bytes.clone(), done.clone()));
        let reader = CountingReader::new(input.reader, bytes.clone());
        let result = if args.parse_only {
            parse_only(&format, &ctx, reader)
        } else {
            kizuna_pipeline::ingest_with(store.as_ref(), &attributor, &format, &ctx, reader, &settings.options, &derive)
        };
        done.store(true, Ordering::Relaxed);
        if let Some(p) = progress {
            let _ = p.join();
        }
        match result {
            Ok(s) => {
                files_read += 1;
                for r in &s.first_rejections {
                    eprintln!("quarantined {r}");
                }
                if s.quarantined > s.first_rejections.len() as u64 {
                    eprintln!(
                        "… {} more quarantined records from {} (see `kizuna quarantine list`)",
                        s.quarantined - s.first_rejections.len() as u64,
                        input.name
                    );
                }
                if !args.json {
                    eprintln!("{}: {}", input.name, line(&s));
                }
                total.merge(&s);
            }
            Err(e) => {
                eprintln!("kizuna: {}: {e}", input.name);
                failed_files += 1;
            }
        }
    }

    let secs = started.elapsed().as_secs_f64();
    if args.json {
        let mut v = kizuna_hub::summary_json(&total, &members);
        v["failed_files"] = failed_files.into();
        v["seconds"] = secs.into();
        println!("{v}");
    } else {
        eprintln!(
            "total: {} ({} files, {} failed, {:.2}s, {:.0} records/s)",
            line(&total),
            files_read,
            failed_files,
            secs,
            total.read as f64 / secs.max(1e-9)
        );
    }
    if files_read == 0 || total.read == 0 {
        eprintln!("kizuna: nothing could be read");
        return Ok(ExitCode::from(2));
    }
    Ok(if failed_files > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Parses and counts without attributing or storing: what the parser alone costs.
fn parse_only(
    format: &Format,
    ctx: &Context,
    reader: impl BufRead + Send,
) -> Result<Summary, kizuna_pipeline::IngestError> {
    let mut s = Summary::default();
    for item in kizuna_parsers::parse(format, ctx, reader)? {
        s.read += 1;
        match item {
            kizuna_parsers::Item::Observation(o) => {
                std::hint::black_box(&o);
                s.stored += 1;
            }
            kizuna_parsers::Item::Skipped { what } => *s.skipped.entry(what).or_default() += 1,
            kizuna_parsers::Item::Rejected(_) => s.quarantined += 1,
        }
    }
    Ok(s)
}

fn line(s: &Summary) -> String {
    format!(
        "read {}, stored {}, duplicates {}, quarantined {}, skipped {}, attributed {}, unattributed {}",
        s.read,
        s.stored,
        s.duplicates,
        s.quarantined,
        s.skipped_total(),
        s.attributed,
        s.unattributed
    )
}

fn spawn_progress(
    name: &str,
    size: Option<u64>,
    bytes: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let bar = match size {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::no_length(),
    };
    let style = indicatif::ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(name.to_owned());
    std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            bar.set_position(bytes.load(Ordering::Relaxed));
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.set_position(bytes.load(Ordering::Relaxed));
        bar.finish_and_clear();
    })
}

#[cfg(test)]
mod tests {
    use super::guess_format;

    #[test]
    fn guesses_formats() {
        assert_eq!(
            guess_format("x.json", br#"{"eventid":"cowrie.session.connect","src_ip":"1.2.3.4"}"#),
            Some("cowrie")
        );
        assert_eq!(guess_format("eve.json", br#"{"timestamp":"x","event_type":"alert"}"#), Some("suricata"));
        assert_eq!(guess_format("o.json", br#"{"feed.name":"x","classification.type":"scanner"}"#), Some("intelmq"));
        assert_eq!(guess_format("2026-03-05-event4_sinkhole-jp.csv", b"timestamp,src_ip\n"), Some("shadowserver"));
        assert_eq!(guess_format("notes.txt", b"hello"), None);
    }
}
