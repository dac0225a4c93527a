//! Whole drive-by scenarios on loopback servers with real host names (pinned through the
//! crawler's override table): each ends with the right verdicts and no crash.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::World;
use kizuna_crawl::{Chain, CrawlConfig, Crawler, Judge, Verdict};
use url::Url;

fn crawler(config: &CrawlConfig) -> Arc<Crawler> {
    let judge = Arc::new(Judge::load(&config.judge).expect("rules"));
    Arc::new(Crawler::new(config, judge).expect("crawler"))
}

async fn crawl(c: &Crawler, url: &str) -> Chain {
    c.crawl(&Url::parse(url).expect("url")).await
}

fn verdict(chain: &Chain, url: &str) -> Verdict {
    chain.node(url).unwrap_or_else(|| panic!("{url} not in chain: {:#?}", chain.nodes)).verdict
}

fn reason_into(chain: &Chain, url: &str) -> String {
    let n = chain.node(url).expect("node");
    chain.edges.iter().find(|e| e.to == n.id).map(|e| e.reason.clone()).unwrap_or_default()
}

#[tokio::test]
async fn compromised_blog_to_redirector_to_exploit_to_distribution() {
    let w = World::start().await;
    let c = crawler(&w.config());
    let chain = crawl(&c, "http://blog.example.jp/").await;
    assert_eq!(verdict(&chain, "http://blog.example.jp/"), Verdict::Entry);
    assert_eq!(verdict(&chain, "http://tds.example.net/in?c=7"), Verdict::Redirector);
    assert_eq!(verdict(&chain, "http://gate.example.org/land?id=7"), Verdict::Exploit);
    assert_eq!(verdict(&chain, "http://gate.example.org/media/movie.swf"), Verdict::Exploit);
    assert_eq!(verdict(&chain, "http://dl.example.com/update/flashplayer.exe"), Verdict::Distribution);
    // Hops and their reasons.
    assert_eq!(reason_into(&chain, "http://tds.example.net/in?c=7"), "iframe");
    assert_eq!(reason_into(&chain, "http://gate.example.org/land?id=7"), "redirect-302");
    assert_eq!(reason_into(&chain, "http://gate.example.org/media/movie.swf"), "embed");
    assert_eq!(reason_into(&chain, "http://dl.example.com/update/flashplayer.exe"), "js-location");
    let iframe = chain.edges.iter().find(|e| e.reason == "iframe").expect("iframe edge");
    assert!(iframe.hidden, "the injected iframe is recorded as hidden");
    // Evidence.
    let blog = chain.node("http://blog.example.jp/").expect("blog");
    assert!(
        blog.evidence.iter().any(|e| e.contains("kizuna_crawl_samples:injected_hidden_iframe")),
        "{:?}",
        blog.evidence
    );
    assert!(blog.evidence.iter().any(|e| e.starts_with("hidden iframe http://tds.example.net/in")));
    let exe = chain.node("http://dl.example.com/update/flashplayer.exe").expect("exe");
    let h = kizuna_crawl::judge::Hashes::of(common::MARKER_EXE);
    assert_eq!(exe.sha256.as_deref(), Some(h.sha256.as_str()));
    assert_eq!(exe.md5.as_deref(), Some(h.md5.as_str()));
    assert_eq!(exe.sha1.as_deref(), Some(h.sha1.as_str()));
    assert_eq!(exe.file_kind, Some("pe"));
    assert_eq!(exe.family.as_deref(), Some("kizuna-test-dropper"));
    assert!(exe.evidence.iter().any(|e| e.contains("kizuna_test_dropper")));
    assert_eq!(exe.depth, 3);
    let gate = chain.node("http://gate.example.org/land?id=7").expect("gate");
    assert!(gate.evidence.iter().any(|e| e.contains("exploit_kit_plugin_probe")));
    // Same-host scripts are not followed; nothing outside the chain was fetched.
    assert!(chain.node("http://blog.example.jp/wp-includes/js/jquery.js").is_none());
    assert_eq!(chain.nodes.len(), 5, "{:#?}", chain.nodes);
    // The same chain from a compromised shop that loads a cross-host script writing an iframe.
    let shop = crawl(&c, "http://shop.example.jp/").await;
    assert_eq!(verdict(&shop, "http://shop.example.jp/"), Verdict::Entry);
    assert_eq!(verdict(&shop, "http://tds.example.net/js/counter.js"), Verdict::Redirector);
    assert_eq!(reason_into(&shop, "http://tds.example.net/js/counter.js"), "script-src");
    assert_eq!(reason_into(&shop, "http://gate.example.org/land?id=9"), "iframe");
    assert_eq!(verdict(&shop, "http://dl.example.com/update/flashplayer.exe"), Verdict::Distribution);
}

#[tokio::test]
async fn known_bad_hash_and_url_lists_judge_without_rules() {
    let w = World::start().await;
    let mut cfg = w.config();
    cfg.judge.yara_dir = None;
    let lists = w.dir.path().join("lists");
    std::fs::create_dir_all(&lists).expect("dir");
    let h = kizuna_crawl::judge::Hashes::of(common::MARKER_EXE);
    std::fs::write(lists.join("hashes.txt"), format!("# known droppers\n{} listed-family\nzzz\n", h.md5)).expect("w");
    std::fs::write(lists.join("urls.txt"), "tds.example.net\n").expect("w");
    cfg.judge.bad_hash_files = vec![lists.join("hashes.txt")];
    cfg.judge.bad_url_files = vec![lists.join("urls.txt")];
    let judge = Judge::load(&cfg.judge).expect("lists");
    assert_eq!(judge.problems.len(), 1, "the bad line is reported, not fatal");
    let c = Arc::new(Crawler::new(&cfg, Arc::new(judge)).expect("crawler"));
    let chain = crawl(&c, "http://blog.example.jp/").await;
    let exe = chain.node("http://dl.example.com/update/flashplayer.exe").expect("exe");
    assert_eq!(exe.verdict, Verdict::Distribution);
    assert_eq!(exe.family.as_deref(), Some("listed-family"));
    assert_eq!(verdict(&chain, "http://tds.example.net/in?c=7"), Verdict::Redirector);
    assert_eq!(verdict(&chain, "http://blog.example.jp/"), Verdict::Entry);
}

#[tokio::test]
async fn clean_site_is_clean() {
    let w = World::start().await;
    let c = crawler(&w.config());
    let chain = crawl(&c, "http://clean.example.jp/").await;
    assert!(chain.nodes.iter().all(|n| n.verdict == Verdict::Clean), "{:#?}", chain.nodes);
    // Visible iframe and cross-host script followed; same-host script and plain links not; a
    // PDF without JavaScript is a clean download.
    assert_eq!(reason_into(&chain, "http://video.example.jp/embed/1"), "iframe");
    assert_eq!(reason_into(&chain, "http://cdn.example.jp/lib.js"), "script-src");
    assert!(chain.node("http://clean.example.jp/app.js").is_none());
    assert!(chain.node("http://clean.example.jp/about.html").is_none());
    let pdf = chain.node("http://clean.example.jp/docs/manual.pdf").expect("pdf");
    assert!(pdf.download && pdf.verdict == Verdict::Clean && pdf.file_kind == Some("pdf"));
    let obs = kizuna_crawl::report::observations(
        &chain,
        &kizuna_crawl::report::Labels::from_config(&Default::default()).expect("labels"),
    );
    assert!(obs.is_empty(), "a clean chain sends nothing to the hub");
}

#[tokio::test]
async fn redirect_loop_is_an_error_and_ends() {
    let w = World::start().await;
    let c = crawler(&w.config());
    let chain = crawl(&c, "http://loop.example.jp/a").await;
    assert_eq!(chain.nodes.len(), 2);
    assert_eq!(verdict(&chain, "http://loop.example.jp/a"), Verdict::Error);
    assert_eq!(verdict(&chain, "http://loop.example.jp/b"), Verdict::Error);
    assert!(chain.nodes[1].evidence.iter().any(|e| e.contains("redirect loop")));
    assert!(chain.nodes.iter().all(|n| n.error == Some("loop")), "metrics reason");
    assert_eq!(chain.edges.len(), 2, "the hop back is recorded as an edge");
    let hits = w.sites.hits.lock().expect("hits").len();
    assert_eq!(hits, 2, "each URL fetched once");
}

#[tokio::test]
async fn slow_sites_time_out() {
    let w = World::start().await;
    let c = crawler(&w.config());
    let t = std::time::Instant::now();
    let chain = crawl(&c, "http://slow.example.jp/").await;
    assert!(t.elapsed() < std::time::Duration::from_secs(4), "total timeout applies: {:?}", t.elapsed());
    let n = &chain.nodes[0];
    assert_eq!(n.verdict, Verdict::Error);
    assert_eq!(n.failure.as_deref(), Some("timeout"));
    assert_eq!(n.error, Some("timeout"));
    // A server that sends the head and then stalls in the body.
    let chain = crawl(&c, "http://slowbody.example.jp/").await;
    let n = &chain.nodes[0];
    assert_eq!(n.status, Some(200));
    assert_eq!(n.verdict, Verdict::Error, "{n:#?}");
    assert_eq!(n.failure.as_deref(), Some("timeout"));
    assert_eq!(n.error, Some("timeout"));
}

#[tokio::test]
async fn huge_download_and_decompression_bomb_are_capped() {
    let w = World::start().await;
    let c = crawler(&w.config());
    let t = std::time::Instant::now();
    let chain = crawl(&c, "http://huge.example.jp/").await;
    let big = chain.node("http://huge.example.jp/files/big.zip").expect("zip");
    assert_eq!(reason_into(&chain, "http://huge.example.jp/files/big.zip"), "download");
    assert!(big.truncated);
    assert_eq!(big.size, 1 << 20);
    assert_eq!(big.verdict, Verdict::Error);
    assert!(big.evidence.iter().any(|e| e.contains("larger than the cap")));
    assert_eq!(big.error, Some("too-big"));
    assert_eq!(verdict(&chain, "http://huge.example.jp/"), Verdict::Clean);
    assert!(t.elapsed() < std::time::Duration::from_secs(10), "stopped reading at the cap");
    let chain = crawl(&c, "http://bomb.example.jp/").await;
    let n = &chain.nodes[0];
    assert!(n.truncated, "the cap counts decompressed bytes");
    assert_eq!(n.size, 1 << 20);
}

#[tokio::test]
async fn malformed_html_is_parsed_without_crashing() {
    let w = World::start().await;
    let c = crawler(&w.config());
    let chain = crawl(&c, "http://broken.example.jp/").await;
    assert_eq!(verdict(&chain, "http://broken.example.jp/"), Verdict::Clean);
    assert_eq!(reason_into(&chain, "http://broken.example.jp/next"), "meta-refresh");
    assert!(chain.nodes.iter().all(|n| n.verdict == Verdict::Clean), "{:#?}", chain.nodes);
}

#[tokio::test]
async fn tls_site_with_the_test_ca_and_without() {
    let w = World::start().await;
    let c = crawler(&w.config());
    let chain = crawl(&c, "https://secure.example.jp/").await;
    assert_eq!(verdict(&chain, "https://secure.example.jp/"), Verdict::Clean);
    assert_eq!(verdict(&chain, "https://secure.example.jp/welcome"), Verdict::Clean);
    assert_eq!(chain.nodes[0].http_version.as_deref(), Some("HTTP/2.0"), "h2 negotiated by ALPN");
    let mut cfg = w.config();
    cfg.tls.extra_root_certs.clear();
    let c = crawler(&cfg);
    let chain = crawl(&c, "https://secure.example.jp/").await;
    let n = &chain.nodes[0];
    assert_eq!(n.verdict, Verdict::Error);
    assert!(n.failure.as_deref().is_some_and(|f| f.starts_with("tls")), "{:?}", n.failure);
}

#[tokio::test]
async fn per_host_rate_limit_spaces_requests() {
    let w = World::start().await;
    let mut cfg = w.config();
    cfg.rate.per_host_rps = 10.0;
    cfg.rate.per_host_burst = 1;
    let c = crawler(&cfg);
    let t = std::time::Instant::now();
    let seeds: Vec<Url> =
        (0..4).map(|i| Url::parse(&format!("http://video.example.jp/embed/{i}")).expect("u")).collect();
    let mut n = 0;
    c.crawl_all(seeds, |_| n += 1).await;
    assert_eq!(n, 4);
    let e = t.elapsed();
    assert!(e >= std::time::Duration::from_millis(280), "4 requests at 10/s with burst 1 take ≥ 0.3 s: {e:?}");
}

#[tokio::test]
async fn blog_is_fixed_then_clean() {
    let w = World::start().await;
    let c = crawler(&w.config());
    assert_eq!(crawl(&c, "http://blog.example.jp/").await.seed_verdict(), Verdict::Entry);
    w.sites.blog_fixed.store(true, Ordering::SeqCst);
    let chain = crawl(&c, "http://blog.example.jp/").await;
    assert_eq!(chain.seed_verdict(), Verdict::Clean);
    assert_eq!(chain.nodes.len(), 1);
}
