//! The tailer: appended lines, partial lines and records, rotation by rename, truncation,
//! restarts with the state file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};

use kizuna_sessions::{LogKind, ResolverConfig, SessionIndex, SessionTailer, Timestamp};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kizuna-tail-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn line(i: u32) -> String {
    format!("2026-03-05T00:00:{:02}Z,allocate,100.64.0.{i},203.0.113.1,{}-{}\n", i % 60, 1024 + i * 64, 1087 + i * 64)
}

#[test]
fn appends_partial_lines_rotation_truncation_and_restart() {
    let dir = temp_dir("cgnat");
    let log = dir.join("cgnat.log");
    let state = dir.join("state");
    let mut idx = SessionIndex::new(ResolverConfig::default());
    let roots = vec![(dir.clone(), LogKind::Cgnat)];
    let mut t = SessionTailer::new(roots.clone(), &state).unwrap();
    assert_eq!(t.poll(&mut idx).unwrap().events, 0);

    append(&log, &line(1));
    append(&log, &line(2)[..20]); // half a line
    assert_eq!(t.poll(&mut idx).unwrap().events, 1);
    append(&log, &line(2)[20..]);
    assert_eq!(t.poll(&mut idx).unwrap().events, 1);
    assert_eq!(t.poll(&mut idx).unwrap().events, 0, "nothing new");
    assert_eq!(idx.stats().port_blocks, 2);

    // Rotation by rename: the old file keeps its offset under the new name, the new one is read.
    std::fs::rename(&log, dir.join("cgnat.log.1")).unwrap();
    append(&log, &line(3));
    let s = t.poll(&mut idx).unwrap();
    assert_eq!((s.events, s.files), (1, 1), "{s:?}");
    assert_eq!(t.files().len(), 2);

    // Restart: nothing is read twice.
    let mut t2 = SessionTailer::new(roots.clone(), &state).unwrap();
    assert_eq!(t2.poll(&mut idx).unwrap().events, 0);
    append(&log, &line(4));
    assert_eq!(t2.poll(&mut idx).unwrap().events, 1);

    // Truncation (copytruncate): read again from the start.
    std::fs::write(&log, line(5)).unwrap();
    assert_eq!(t2.poll(&mut idx).unwrap().events, 1);
    assert_eq!(idx.stats().port_blocks, 5);
    let _ = Timestamp::now();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_radius_record_cut_by_a_restart_is_read_whole() {
    let dir = temp_dir("radius");
    let nas = dir.join("192.0.2.1");
    std::fs::create_dir_all(&nas).unwrap();
    let detail = nas.join("detail-20260305");
    let state = dir.join("state");
    let roots = vec![(dir.clone(), LogKind::RadiusDetail)];
    let rec = |user: &str, ip: &str| {
        format!(
            "Thu Mar  5 09:00:12 2026\n\tAcct-Status-Type = Start\n\tUser-Name = \"{user}\"\n\tAcct-Session-Id = \"{user}\"\n\tNAS-IP-Address = 192.0.2.1\n\tFramed-IP-Address = {ip}\n\tTimestamp = 1772668812\n\n"
        )
    };
    let mut idx = SessionIndex::new(ResolverConfig::default());
    let first = rec("alice", "198.51.100.1");
    let second = rec("bob", "198.51.100.2");
    append(&detail, &first);
    append(&detail, &second[..60]);
    let mut t = SessionTailer::new(roots.clone(), &state).unwrap();
    assert_eq!(t.poll(&mut idx).unwrap().events, 1);
    drop(t);
    // The agent restarts while the record is half written; the server then finishes it.
    append(&detail, &second[60..]);
    let mut idx2 = SessionIndex::new(ResolverConfig::default());
    let mut t = SessionTailer::new(roots, &state).unwrap();
    let s = t.poll(&mut idx2).unwrap();
    assert_eq!((s.events, s.rejected), (1, 0), "{s:?}");
    let at = Timestamp::from_secs(1_772_668_900);
    assert_eq!(idx2.resolve_key("198.51.100.2".parse().unwrap(), None, at), Ok("bob"));
    // Line numbers in later rejections still count from the top of the file.
    append(
        &detail,
        "Thu Mar  5 09:00:13 2026\n\tAcct-Status-Type = Start\n\tUser-Name = \"x\"\n\tAcct-Session-Id = \"x\"\n\tFramed-IP-Address = 300.1.1.1\n\n",
    );
    let s = t.poll(&mut idx2).unwrap();
    assert_eq!(s.rejected, 1);
    assert_eq!(s.rejections[0].line, 21);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// FreeRADIUS detail records; sessions cross file boundaries (Start in one day's file, Stop in
/// the next), one record is malformed and the last record of one file is still being written.
fn write_radacct(root: &Path, round: u32) {
    let mut x: u64 = 0x5eed + u64::from(round);
    let mut rnd = |n: u64| {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    for nas in 0..5u32 {
        let dir = root.join(format!("10.255.0.{}", nas + 1));
        std::fs::create_dir_all(&dir).unwrap();
        for day in 0..3u32 {
            let mut text = String::new();
            for i in 0..300u32 {
                let sid = day * 1000 + i;
                let at = 1_772_668_800 + i64::from(day) * 86_400 + i64::from(i) * 200;
                let (status, at) = if round == 1 && i % 3 == 0 { ("Stop", at + 100) } else { ("Start", at) };
                let user = format!("u{}-{}", nas, rnd(400));
                let ip = format!("10.{}.{}.{}", nas, rnd(4), rnd(200) + 1);
                let sid = if round == 1 { sid.saturating_sub(1) } else { sid };
                text.push_str(&format!(
                    "Thu Mar  5 09:00:12 2026\n\tAcct-Status-Type = {status}\n\tUser-Name = \"{user}\"\n\t\
                     Acct-Session-Id = \"{sid:08X}\"\n\tNAS-IP-Address = 10.255.0.{}\n\tFramed-IP-Address = {ip}\n\t\
                     Timestamp = {at}\n\n",
                    nas + 1
                ));
                if i == 150 && nas == 2 {
                    text.push_str("not a header\n\tAcct-Status-Type = Start\n\n");
                }
            }
            if nas == 4 && day == 2 {
                text.push_str("Thu Mar  5 09:00:12 2026\n\tAcct-Status-Type = Start\n\tUser-Name = \"late\"\n");
            }
            append(&dir.join(format!("detail-2026030{}", 5 + day)), &text);
        }
    }
}

#[test]
fn reading_on_several_threads_builds_the_same_index() {
    let dir = temp_dir("parallel");
    let root = dir.join("radacct");
    write_radacct(&root, 0);
    let roots = vec![(root.clone(), LogKind::RadiusDetail)];
    let mut one = SessionIndex::new(ResolverConfig::default());
    let mut two = SessionIndex::new(ResolverConfig::default());
    let mut t1 = SessionTailer::new(roots.clone(), dir.join("state-1")).unwrap();
    t1.set_readers(1, u64::MAX);
    let mut t2 = SessionTailer::new(roots.clone(), dir.join("state-2")).unwrap();
    t2.set_readers(3, 0);
    for round in 0..2 {
        if round == 1 {
            write_radacct(&root, 1); // appended: Stops of earlier sessions, more Starts
        }
        let (a, b) = (t1.poll(&mut one).unwrap(), t2.poll(&mut two).unwrap());
        assert!(a.events > 1000 && a.rejected >= 1, "{round}: {a:?}");
        assert_eq!(a, b, "round {round}: same summary");
        assert_eq!(one.stats(), two.stats(), "round {round}");
        assert_eq!(
            std::fs::read_to_string(dir.join("state-1")).unwrap(),
            std::fs::read_to_string(dir.join("state-2")).unwrap(),
            "same offsets remembered"
        );
        for nas in 0..5u32 {
            for c in 0..4u32 {
                for h in 1..=200u32 {
                    let ip = format!("10.{nas}.{c}.{h}").parse().unwrap();
                    for k in 0..8i64 {
                        let at = Timestamp::from_secs(1_772_668_800 + k * 40_000);
                        assert_eq!(one.resolve(ip, None, at), two.resolve(ip, None, at), "{ip} {at:?}");
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
