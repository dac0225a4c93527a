//! Where an ingest run spends its time: parse, attribute + id, store commit, measured one after
//! the other on the same input (single thread each), against a fresh store.
//!
//! `cargo run --release -p kizuna-pipeline --example pipeline_profile -- FILE FORMAT ROUTES.ipasn [BATCH]`

use std::io::BufReader;
use std::time::Instant;

use kizuna_attrib::Attributor;
use kizuna_model::{Routed, Timestamp};
use kizuna_parsers::{Context, Format, Item};
use kizuna_store::{Batch, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (file, format, routes) = (&args[1], &args[2], &args[3]);
    let batch: usize = args.get(4).map(|b| b.parse()).transpose()?.unwrap_or(20_000);
    let format = Format::from_name(format, &[])?;
    let ctx = Context::new(file.clone(), Timestamp::now());

    let t = Instant::now();
    let (table, _) = kizuna_attrib::parse_ipasn(routes, BufReader::new(std::fs::File::open(routes)?));
    let attributor = Attributor::new(&table, std::iter::empty());
    println!("routes: {} in {:.2?}", table.len(), t.elapsed());

    let t = Instant::now();
    let input = BufReader::with_capacity(1 << 20, std::fs::File::open(file)?);
    let mut obs = Vec::new();
    for item in kizuna_parsers::parse(&format, &ctx, input)? {
        if let Item::Observation(o) = item {
            obs.push(o);
        }
    }
    let n = obs.len();
    let parse = t.elapsed();
    println!("parse: {n} in {parse:.2?} = {:.0}/s", n as f64 / parse.as_secs_f64());

    let t = Instant::now();
    let mut x = 0u8;
    for o in &obs {
        x ^= o.id().0[0];
    }
    println!("id only: {:.2?} ({x})", t.elapsed());
    let t = Instant::now();
    let mut hits = 0usize;
    for o in &obs {
        hits += o.attribution_ip().map(|ip| attributor.attribute(ip)).unwrap_or_default().asn.is_some() as usize;
    }
    println!("attribute only: {:.2?} ({hits} with asn)", t.elapsed());
    let t = Instant::now();
    let routed: Vec<Routed> = obs
        .into_iter()
        .map(|mut o| {
            let a = o.attribution_ip().map(|ip| attributor.attribute(ip)).unwrap_or_default();
            if o.source.asn.is_none() {
                o.source.asn = a.asn;
            }
            Routed { id: o.id(), observation: o, member: a.member }
        })
        .collect();
    let attr = t.elapsed();
    println!("attribute + id: {:.2?} = {:.0}/s", attr, n as f64 / attr.as_secs_f64());

    let dir = tempfile::tempdir()?;
    let store = kizuna_store::sqlite::SqliteStore::open(&dir.path().join("p.sqlite"))?;
    let t = Instant::now();
    for chunk in routed.chunks(batch) {
        store.commit_batch(&Batch { observations: chunk.to_vec(), rejected: vec![] })?;
    }
    let commit = t.elapsed();
    println!("commit: {:.2?} = {:.0}/s (batch {batch})", commit, n as f64 / commit.as_secs_f64());
    let mut body = Vec::new();
    kizuna_store::codec::encode(&routed[0].observation, &mut body);
    println!(
        "encoded body of the first observation: {} bytes, {} extra keys",
        body.len(),
        routed[0].observation.extra.len()
    );
    Ok(())
}
