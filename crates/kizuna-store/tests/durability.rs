//! An acknowledged batch survives `kill -9` of the process that committed it, and a batch cut
//! off mid-commit is either all there or not at all.
//!
//! The test re-runs its own binary as a child (selected by an environment variable) that
//! commits batches in a loop and prints `ACK <n>` after each `commit_batch` returns; the parent
//! kills it with SIGKILL right after reading an acknowledgement, reopens the database and
//! checks.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use kizuna_model::{Classification, ClassificationType, MemberId, Observation, Routed, Timestamp};
use kizuna_store::sqlite::SqliteStore;
use kizuna_store::{Batch, Cursor, MemberSpec, Store};

const CHILD_ENV: &str = "KIZUNA_STORE_DURABILITY_CHILD";
const PER_BATCH: u32 = 500;

fn batch(i: u32, member: MemberId) -> Batch {
    let observations = (0..PER_BATCH)
        .map(|k| {
            let n = i * PER_BATCH + k;
            let mut o = Observation::new(
                "cowrie",
                Classification::new(ClassificationType::BruteForce),
                Timestamp::from_secs(1_772_668_812),
            );
            o.time_source = Some(Timestamp::from_micros(1_772_668_812_000_000 + i64::from(n)));
            o.source.ip = Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n)));
            o.extra.insert("batch".into(), serde_json::json!(i));
            Routed { id: o.id(), observation: o, member: if k % 4 == 0 { None } else { Some(member) } }
        })
        .collect();
    Batch { observations, rejected: Vec::new() }
}

fn child(path: &str) {
    let store = SqliteStore::open(std::path::Path::new(path)).expect("child: open");
    let member = store
        .add_member(&MemberSpec { name: "isp".into(), ..MemberSpec::default() }, Timestamp::now())
        .expect("add")
        .id;
    for i in 0..10_000 {
        let out = store.commit_batch(&batch(i, member)).expect("child: commit");
        assert_eq!(out.stored, u64::from(PER_BATCH));
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "ACK {i} {}", member.0).expect("child: write");
        stdout.flush().expect("child: flush");
    }
}

#[test]
fn acknowledged_batch_survives_kill_9() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        child(&path);
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kizuna.db");
    let mut proc = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "acknowledged_batch_survives_kill_9", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = proc.stdout.take().expect("child stdout");
    let mut acked = None;
    let mut member = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read child");
        if let Some(rest) = line.strip_prefix("ACK ") {
            let mut parts = rest.split_whitespace();
            let i: u32 = parts.next().and_then(|s| s.parse().ok()).expect("batch number");
            member = parts.next().and_then(|s| s.parse().ok()).map(MemberId);
            acked = Some(i);
            if i >= 2 {
                // Kill right after the acknowledgement: the next batch is likely mid-commit.
                proc.kill().expect("kill -9 child");
                break;
            }
        }
    }
    let status = proc.wait().expect("wait child");
    assert!(!status.success(), "the child must have been killed");
    let acked = acked.expect("the child acknowledged batches");
    let member = member.expect("member id");

    let store = SqliteStore::open(&path).expect("reopen after kill");
    // Every acknowledged batch is there, complete.
    for i in 0..=acked {
        for r in &batch(i, member).observations {
            let got = store.observation(&r.id).expect("lookup").unwrap_or_else(|| panic!("batch {i} lost"));
            assert_eq!(got.routed, *r);
        }
    }
    // Any later batch is all there or not at all.
    for i in acked + 1..acked + 4 {
        let b = batch(i, member);
        let present = b.observations.iter().filter(|r| store.observation(&r.id).expect("lookup").is_some()).count();
        assert!(present == 0 || present == b.observations.len(), "batch {i} is partly stored ({present})");
    }
    // Totals agree with what is stored.
    let t = store.totals().expect("totals");
    assert_eq!(t.observations % u64::from(PER_BATCH), 0);
    assert!(t.observations >= u64::from(acked + 1) * u64::from(PER_BATCH));
    let mut paged = 0u64;
    let mut cursor = Cursor::START;
    loop {
        let p = store.page(member, cursor, 5000).expect("page");
        if p.items.is_empty() {
            break;
        }
        paged += p.items.len() as u64;
        cursor = p.next;
    }
    assert_eq!(t.per_member, vec![(member, paged)]);
    assert_eq!(t.unattributed + paged, t.observations);
}
