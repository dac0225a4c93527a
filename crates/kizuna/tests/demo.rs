//! `kizuna demo`: the hub, two ISP agents on loopback and the simulated days, end to end; then
//! each agent's console, logged in with the demo login, shows that agent's case counts.

fn summary_number(line: &str, key: &str) -> u64 {
    let i = line.find(key).unwrap_or_else(|| panic!("no {key:?} in {line}"));
    line[i + key.len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {key:?} in {line}"))
}

/// Runs `kizuna demo --serve` until it says it is serving; returns its output so far and the
/// process (killed on drop).
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_demo(dir: &std::path::Path) -> (String, Demo) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kizuna"))
        .args(["demo", "--serve", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run demo");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let demo = Demo(child);
    let (tx, rx) = std::sync::mpsc::channel::<Option<String>>();
    std::thread::spawn(move || {
        // Keep reading to the end: the demo must never write into a closed pipe.
        let mut serving = false;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !serving {
                serving = line.starts_with("serving until Ctrl-C");
                let _ = tx.send(Some(line));
            }
        }
        let _ = tx.send(None);
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut s);
        s
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut out = String::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(Some(line)) => {
                let done = line.starts_with("serving until Ctrl-C");
                out.push_str(&line);
                out.push('\n');
                if done {
                    return (out, demo);
                }
            }
            Ok(None) | Err(_) => {
                drop(demo);
                panic!("demo did not get to serving:\n{out}\n{}", err.join().unwrap_or_default());
            }
        }
    }
}

#[test]
fn demo_runs_the_loop_with_two_agents_and_writes_notices_to_the_outbox() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("demo");
    let (stdout, demo) = start_demo(&dir);
    assert!(stdout.contains("/console/"), "{stdout}");
    let agents: Vec<&str> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("agent ") && !l.trim_start().starts_with("agent console "))
        .collect();
    assert_eq!(agents.len(), 2, "{stdout}");
    for line in agents {
        let name = line.trim_start()["agent ".len()..].split(':').next().expect("name");
        assert!(summary_number(line, "cases opened") > 0, "{line}");
        let notices = summary_number(line, "notices");
        assert!(notices > 0, "{line}");
        // The outbox on disk holds the letters the agent wrote.
        let outbox = dir.join(name).join("letters");
        let mut files = 0;
        for e in walk(&outbox) {
            let text = std::fs::read_to_string(&e).unwrap_or_default();
            assert!(!text.is_empty(), "{} is empty", e.display());
            files += 1;
        }
        assert!(files > 0, "no letters in {}", outbox.display());
        assert_eq!(summary_number(line, "letters in outbox"), files as u64, "{line}");
        assert!(dir.join(name).join("radacct").is_dir(), "{name}: session logs");
    }
    let zones: Vec<&str> = stdout.lines().filter(|l| l.trim_start().starts_with("DNS zone rpz.")).collect();
    assert_eq!(zones.len(), 2, "one RPZ zone per agent's member:\n{stdout}");
    for z in zones {
        assert!(summary_number(z, "serial") > 1, "{z}");
        assert!(
            summary_number(z, "serial") > summary_number(z, "(first"),
            "the day-5 report's indicators moved the zone's serial: {z}"
        );
        assert!(summary_number(z, ",") > 0, "zone has triggers from the derived indicators: {z}");
    }
    for state in ["reminded", "final-notice", "escalated"] {
        assert!(stdout.contains(state), "some cases reach {state} over the simulated days:\n{stdout}");
    }
    assert!(stdout.contains("remediated"), "cases reach remediation over the simulated days:\n{stdout}");

    // Each agent's console: log in with the demo login and see the agent's own case counts.
    let consoles: Vec<&str> = stdout.lines().filter(|l| l.trim_start().starts_with("agent console ")).collect();
    assert_eq!(consoles.len(), 2, "{stdout}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    for line in consoles {
        let name = line.trim_start()["agent console ".len()..].split(':').next().expect("name");
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("url");
        let password = line.split("password ").nth(1).and_then(|p| p.split(')').next()).expect("password");
        let opened = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("agent {name}: cases opened")))
            .map(|l| summary_number(l, "cases opened"))
            .expect("summary line");
        let pages = rt.block_on(console_pages(url, "desk", password, &["cases", "remediation"]));
        let page = &pages[0];
        let states =
            page.split(r#"id="chart-states""#).nth(1).and_then(|s| s.split("</figure>").next()).expect("chart");
        let total: u64 =
            states.split(r#"data-value=""#).skip(1).filter_map(|s| s.split('"').next()?.parse::<u64>().ok()).sum();
        assert_eq!(total, opened, "{name}: the console's cases by state add up to the cases opened:\n{page}");
        // 12 subscribers: k = 0, 5, 10 opted out; 3, 6, 9 opted in; the other six have no record.
        for (label, n) in [("opt-out", 3), ("opt-in", 3), ("no-record", 6)] {
            assert!(
                page.contains(&format!(r#"data-label="{label}" data-value="{n}""#)),
                "{name} consent {label}:\n{page}"
            );
        }
        // The remediation funnel ends on the agent's own (simulated) day, so the demo's days are
        // in it: its last stage, remediated, is not empty.
        let funnel =
            pages[1].split(r#"id="chart-funnel""#).nth(1).and_then(|s| s.split("</figure>").next()).expect("funnel");
        let remediated: u64 = funnel
            .rsplit(r#"data-value=""#)
            .next()
            .and_then(|s| s.split('"').next()?.parse().ok())
            .expect("last funnel stage");
        assert!(remediated > 0, "{name}: remediated cases on the agent's remediation page:\n{}", pages[1]);
    }
    // The hub console URL the demo prints opens on the simulated days: the chart is not empty.
    let hub = stdout.lines().find(|l| l.trim_start().starts_with("hub console: ")).expect("hub console line");
    let url = hub.split_whitespace().find(|w| w.starts_with("http://")).expect("hub console url");
    let password = hub.split("password ").nth(1).and_then(|p| p.split(')').next()).expect("password");
    let page = url.split("/console/").nth(1).expect("page");
    let overview = rt.block_on(console_pages(url, "demo", password, &[page])).remove(0);
    let total: f64 = overview
        .split(r#"id="chart-class""#)
        .nth(1)
        .and_then(|s| s.split(r#"data-total=""#).nth(1))
        .and_then(|s| s.split('"').next()?.parse().ok())
        .expect("chart-class total");
    assert!(total > 0.0, "the printed hub console URL shows the demo's observations:\n{overview}");
    drop(demo);
}

/// Logs in to a console (hub or agent) as `user` and fetches `/console/<page>` for each page.
async fn console_pages(url: &str, user: &str, password: &str, pages: &[&str]) -> Vec<String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let base = &url[..url.find("/console").expect("a console URL")];
    let (status, session) = kizuna_testkit::console_login(&http, base, user, password).await;
    assert_eq!(status, 303, "demo login accepted");
    let session = session.expect("session");
    let mut out = Vec::new();
    for page in pages {
        let r = http
            .get(format!("{base}/console/{page}"))
            .header(reqwest::header::COOKIE, format!("kizuna_console={session}"))
            .send()
            .await
            .expect("console page");
        assert_eq!(r.status(), 200, "/console/{page}");
        out.push(r.text().await.expect("body"));
    }
    out
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}
