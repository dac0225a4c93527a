//! The hub's statistics API against a real hub: the member comes from the token, re-posting a
//! day replaces it, and anything that is not a count in the fixed vocabulary is refused.

mod support;

use kizuna_hub::tokens;
use kizuna_model::Timestamp;
use kizuna_store::{MemberSpec, Store};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_are_per_member_idempotent_and_only_counts() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("hub.sqlite");
    let setup = setup_hub_db(&db);
    let hub = TestHub::start(&db, &setup, "127.0.0.1:0".parse().expect("addr")).await;
    let b =
        hub.store.add_member(&MemberSpec { name: "isp-b".into(), ..Default::default() }, Timestamp::now()).expect("b");
    let tb = tokens::issue().expect("token");
    hub.store.add_token(b.id, tb.hash, "b", &tb.prefix, Timestamp::now()).expect("token b");
    let http = http();
    let url = format!("{}/api/v1/stats", hub.base());
    let post = |token: String, body: serde_json::Value| {
        let http = http.clone();
        let url = url.clone();
        async move { http.post(&url).bearer_auth(token).json(&body).send().await.expect("post") }
    };
    let day = |observed: u64| {
        serde_json::json!({"days": [{"day": "2026-03-05", "subscribers": 2000, "threats": [
            {"threat": "infected-system/mirai", "observed": observed, "resolved": 4, "infected": 2,
             "unresolved": {"no-session": 1}, "notified": 2, "remediated": 1, "escalated": 0}]}]})
    };
    assert_eq!(post(setup.member_token.clone(), day(5)).await.status(), 200);
    assert_eq!(post(setup.member_token.clone(), day(7)).await.status(), 200, "re-post");
    let get = |token: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let r =
                http.get(format!("{url}?from=2026-03-01&to=2026-03-31")).bearer_auth(token).send().await.expect("get");
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.expect("json")
        }
    };
    let a = get(setup.member_token.clone()).await;
    assert_eq!(a["member"], "isp-a");
    assert_eq!(a["days"].as_array().map(Vec::len), Some(1), "{a}");
    assert_eq!(a["days"][0]["threats"][0]["observed"], 7, "replaced, not added: {a}");
    assert_eq!(a["days"][0]["infected_per_1000"], 1.0, "{a}");
    assert_eq!(a["totals"][0]["remediation_rate"], 0.5, "{a}");
    let bview = get(tb.secret.clone()).await;
    assert_eq!(bview["member"], "isp-b");
    assert_eq!(bview["days"].as_array().map(Vec::len), Some(0), "member B sees nothing of A: {bview}");

    // Refused: no token, extra fields, free text where a token belongs, bad days.
    let r = http.post(&url).json(&day(1)).send().await.expect("post");
    assert_eq!(r.status(), 401);
    let mut extra = day(1);
    extra["days"][0]["threats"][0]["subscriber"] = "Taro Yamada".into();
    assert_eq!(post(setup.member_token.clone(), extra).await.status(), 400);
    let mut extra = day(1);
    extra["member"] = "isp-b".into();
    assert_eq!(post(setup.member_token.clone(), extra).await.status(), 400, "no member field: the token decides");
    let mut free = day(1);
    free["days"][0]["threats"][0]["threat"] = "taro@example.jp".into();
    assert_eq!(post(setup.member_token.clone(), free).await.status(), 400);
    let mut reason = day(1);
    reason["days"][0]["threats"][0]["unresolved"] = serde_json::json!({"User alice": 1});
    assert_eq!(post(setup.member_token.clone(), reason).await.status(), 400);
    let mut bad_day = day(1);
    bad_day["days"][0]["day"] = "05/03/2026".into();
    assert_eq!(post(setup.member_token.clone(), bad_day).await.status(), 400);
    // Time to remediation: a histogram of whole days → cases, within `remediated`.
    let ttr = |h: serde_json::Value| {
        let mut v = day(7);
        v["days"][0]["threats"][0]["remediated"] = 3.into();
        v["days"][0]["threats"][0]["remediation_days"] = h;
        v
    };
    for (bad, why) in [
        (serde_json::json!({"9": 4}), "at most remediated"),
        (serde_json::json!({"9999": 1}), "more than 3650"),
        (serde_json::json!({"9": 0}), "must be > 0"),
        (serde_json::json!({"nine": 1}), "stats body"),
        (serde_json::json!({"9": -1}), "stats body"),
        (serde_json::json!({"9": "Taro"}), "stats body"),
    ] {
        let r = post(setup.member_token.clone(), ttr(bad.clone())).await;
        assert_eq!(r.status(), 400, "{bad}");
        let text = r.text().await.expect("text");
        assert!(text.contains(why), "{bad}: {text}");
    }
    let a = get(setup.member_token.clone()).await;
    assert_eq!(a["days"][0]["threats"][0]["observed"], 7, "refused posts changed nothing");
    assert!(a["days"][0]["threats"][0]["remediation_days"].as_object().is_none_or(|o| o.is_empty()), "{a}");
    assert_eq!(post(setup.member_token.clone(), ttr(serde_json::json!({"7": 1, "12": 2}))).await.status(), 200);
    let a = get(setup.member_token.clone()).await;
    assert_eq!(a["days"][0]["threats"][0]["remediation_days"], serde_json::json!({"7": 1, "12": 2}), "{a}");
    assert_eq!(a["totals"][0]["remediation_days_median"], 12, "{a}");
    assert_eq!(a["totals"][0]["remediation_days_p90"], 12, "{a}");
    // Every accepted post is audited.
    let audit = hub.store.audit_entries(0, 1000).expect("audit");
    assert_eq!(audit.iter().filter(|e| e.record.action == "stats.post").count(), 3);
    hub.stop().await;
}
