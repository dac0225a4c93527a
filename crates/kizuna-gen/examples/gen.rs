//! Write a world and a day of every feed to a directory, to look at.
//!
//! `cargo run --release -p kizuna-gen --example gen -- OUT_DIR [LINES] [SEED] [V4_PREFIXES]`
//!
//! Writes `routes.ipasn`, `members.tsv`, one Shadowserver CSV per supported report type (named
//! as Shadowserver names them), `cowrie.json` and `eve.json`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use kizuna_gen::{
    EventSpec, RoutingSpec, cowrie, shadowserver_file_name, shadowserver_report, shadowserver_reports, suricata_eve,
    world, write_ipasn,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: gen OUT_DIR [LINES] [SEED] [V4_PREFIXES]")?);
    let lines: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20_000);
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let mut rspec = RoutingSpec { seed, ..RoutingSpec::default() };
    if let Some(v4) = args.next() {
        rspec.v4_prefixes = v4.parse()?;
        rspec.v6_prefixes = rspec.v4_prefixes / 6;
    }
    std::fs::create_dir_all(&dir)?;

    let t = Instant::now();
    let w = world(&rspec);
    eprintln!("world: {} routes, {} members in {:.2?}", w.routes.len(), w.members.len(), t.elapsed());
    write_ipasn(&w.routes, &mut File::create(dir.join("routes.ipasn"))?)?;
    let mut m = BufWriter::new(File::create(dir.join("members.tsv"))?);
    writeln!(m, "name\tdisplay_name\tasns\tprefixes\tcontacts")?;
    for g in &w.members {
        let join = |v: Vec<String>| v.join(",");
        writeln!(
            m,
            "{}\t{}\t{}\t{}\t{}",
            g.name,
            g.display_name,
            join(g.asns.iter().map(|a| a.to_string()).collect()),
            join(g.prefixes.iter().map(|p| p.to_string()).collect()),
            g.contacts.join(",")
        )?;
    }
    m.flush()?;

    let spec = EventSpec { lines, seed, ..EventSpec::default() };
    for report in shadowserver_reports() {
        let t = Instant::now();
        let path = dir.join(shadowserver_file_name(report, spec.start));
        shadowserver_report(report, &w, &spec, &mut File::create(&path)?)?;
        eprintln!("{}: {lines} lines in {:.2?}", path.display(), t.elapsed());
    }
    let t = Instant::now();
    cowrie(&w, &spec, &mut File::create(dir.join("cowrie.json"))?)?;
    eprintln!("cowrie.json: {lines} lines in {:.2?}", t.elapsed());
    let t = Instant::now();
    suricata_eve(&w, &spec, &mut File::create(dir.join("eve.json"))?)?;
    eprintln!("eve.json: {lines} lines in {:.2?}", t.elapsed());
    Ok(())
}
