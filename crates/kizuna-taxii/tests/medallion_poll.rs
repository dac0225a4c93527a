//! kizuna's TAXII client polling a real partner server: medallion 3.0 (the OASIS reference
//! server, memory backend) on loopback, loaded with a generated collection. The first poll
//! pages through everything (`limit` + `next`); objects added later arrive in the next poll
//! alone (`added_after` from the last `X-TAXII-Date-Added-Last`); they import as indicators
//! with their TLP.

mod common;

use kizuna_model::{Timestamp, Tlp};
use kizuna_stix::ImportOptions;
use kizuna_taxii::client::{self, ClientAuth, PollState, RemoteCollection};
use kizuna_testkit::medallion::{domain_indicator, one_collection};
use serde_json::Value;

const COLLECTION: &str = "5b4f3c2a-1d0e-4f9a-8b7c-6d5e4f3a2b1c";

fn indicator(i: usize) -> Value {
    domain_indicator(i, "partner-bad.example")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_medallion_incrementally() {
    let n = 250;
    let objects: Vec<Value> = (0..n).map(indicator).collect();
    let data = one_collection(COLLECTION, &objects);
    let m = tokio::task::spawn_blocking(move || common::medallion(&data, 100)).await.expect("medallion");
    let rc = RemoteCollection {
        url: format!("{}/tg/collections/{COLLECTION}/", m.base),
        auth: ClientAuth::Basic { user: "admin".into(), password: "Password0".into() },
        limit: 100,
    };
    let http = kizuna_testkit::http_client();

    let first = client::poll(&http, &rc, &PollState::default()).await.expect("first poll");
    assert_eq!(first.objects.len(), n);
    assert_eq!(first.pages, 3);
    assert_eq!(first.state.added_after.as_deref(), Some("2026-03-05T01:04:09.000000Z"));

    let fresh: Vec<Value> = (1000..1005).map(indicator).collect();
    let status = client::post(&http, &rc, &fresh).await.expect("post");
    assert_eq!(status["success_count"], 5, "{status}");

    let second = client::poll(&http, &rc, &first.state).await.expect("second poll");
    let got: Vec<&str> = second.objects.iter().filter_map(|o| o["id"].as_str()).collect();
    let want: Vec<&str> = fresh.iter().filter_map(|o| o["id"].as_str()).collect();
    assert_eq!(got, want, "only what was added since the first poll");

    let third = client::poll(&http, &rc, &second.state).await.expect("third poll");
    assert!(third.objects.is_empty(), "{:?}", third.objects.len());

    let mut all = first.objects.clone();
    all.extend(second.objects.iter().cloned());
    let r = kizuna_stix::import::import_objects(&all, &ImportOptions::new("partner:tg", Timestamp::now()));
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.indicators.len(), n + 5);
    assert!(r.indicators.iter().all(|i| i.indicator.tlp == Tlp::Green && i.origin == "partner:tg"));

    // bad credentials come back as a clear error, not a panic
    let bad = RemoteCollection { auth: ClientAuth::Basic { user: "admin".into(), password: "nope".into() }, ..rc };
    let e = client::poll(&http, &bad, &PollState::default()).await.expect_err("401");
    assert!(matches!(e, client::ClientError::Status { status: 401, .. }), "{e}");
}
