//! The hub console's pages.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

use kizuna_model::{MemberId, Timestamp, Tlp};
use kizuna_store::console::{NaiveDate, Role, normalise_query};
use kizuna_store::indicators::{IndicatorFilter, IndicatorState, counts_by_category};
use kizuna_store::stats::DayStats;
use kizuna_store::{Member, Store, StoredObservation};

use crate::html::{esc, time, url_param};
use crate::i18n::{Lang, t};
use crate::svg::{self, Bar, Series};
use crate::{Console, FormData, Page, PageError, Params, PathParam, Rule, Viewer, guarded, guarded_post, redirect};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

fn th(lang: Lang, keys: &[&'static str]) -> String {
    let mut s = String::from("<tr>");
    for k in keys {
        let _ = write!(s, "<th>{}</th>", esc(t(lang, k)));
    }
    s.push_str("</tr>");
    s
}

fn day_of_secs(s: i64) -> NaiveDate {
    kizuna_model::Timestamp::from_secs(s).to_datetime().date_naive()
}

/// Buckets of a range: (start seconds, label), and the bucket width.
fn buckets(range: &str, now: i64) -> (Vec<(i64, String)>, i64) {
    match range {
        "7d" | "30d" => {
            let days = if range == "7d" { 7 } else { 30 };
            let today = now.div_euclid(DAY) * DAY;
            let v = (0..days)
                .rev()
                .map(|k| {
                    let s = today - k * DAY;
                    (s, Timestamp::from_secs(s).to_datetime().format("%m-%d").to_string())
                })
                .collect();
            (v, DAY)
        }
        _ => {
            let hour = now.div_euclid(HOUR) * HOUR;
            let v = (0..24)
                .rev()
                .map(|k| {
                    let s = hour - k * HOUR;
                    (s, Timestamp::from_secs(s).to_datetime().format("%H:00").to_string())
                })
                .collect();
            (v, HOUR)
        }
    }
}

fn series_from(map: BTreeMap<String, Vec<f64>>) -> Vec<Series> {
    let mut v: Vec<Series> = map.into_iter().map(|(name, values)| Series { name, values }).collect();
    v.sort_by(|a, b| {
        let (sa, sb): (f64, f64) = (a.values.iter().sum(), b.values.iter().sum());
        sb.partial_cmp(&sa).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.name.cmp(&b.name))
    });
    v
}

pub(crate) async fn overview(State(c): State<Arc<Console>>, headers: HeaderMap, uri: Uri, q: Params) -> Response {
    guarded(c, headers, uri, Rule::Any, move |c, v| render_overview(c, v, &q.0)).await
}

fn render_overview(c: &Console, v: &Viewer, q: &HashMap<String, String>) -> Result<Page, PageError> {
    let lang = v.lang;
    let range = match q.get("range").map(String::as_str) {
        Some("7d") => "7d",
        Some("30d") => "30d",
        _ => "24h",
    };
    // `end=YYYY-MM-DD` (that whole day) or an RFC 3339 time looks back from there.
    let wall = Timestamp::now().as_secs();
    let end = q.get("end").map(String::as_str).filter(|e| !e.is_empty());
    let now = match end {
        None => wall,
        Some(e) => match (NaiveDate::parse_from_str(e, "%Y-%m-%d"), Timestamp::parse(e)) {
            (Ok(d), _) => d.and_hms_opt(23, 59, 59).map_or(wall, |x| x.and_utc().timestamp()),
            (Err(_), Some(ts)) => ts.as_secs(),
            (Err(_), None) => return Err(PageError::BadRequest(format!("end={e:?}: use YYYY-MM-DD or RFC 3339"))),
        },
    };
    let end_param = end.map_or(String::new(), |e| format!("&amp;end={}", url_param(e)));
    let (bk, width) = buckets(range, now);
    let from = bk.first().map_or(now, |b| b.0);
    let to = bk.last().map_or(now, |b| b.0) + width;
    let rows = c.store.hourly_counts(from, to)?;
    let mut by_class: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut by_feed: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in &rows {
        let i = ((r.hour - from) / width) as usize;
        if i >= bk.len() {
            continue;
        }
        by_class.entry(r.class.clone()).or_insert_with(|| vec![0.0; bk.len()])[i] += r.n as f64;
        by_feed.entry(r.feed.clone()).or_insert_with(|| vec![0.0; bk.len()])[i] += r.n as f64;
    }
    let labels: Vec<String> = bk.iter().map(|b| b.1.clone()).collect();
    let mut body = String::new();
    body.push_str(r#"<section><p class="ranges">"#);
    for r in ["24h", "7d", "30d"] {
        let key = match r {
            "7d" => "range.7d",
            "30d" => "range.30d",
            _ => "range.24h",
        };
        if r == range {
            let _ = write!(body, r#"<strong id="range" data-range="{r}">{}</strong> "#, esc(t(lang, key)));
        } else {
            let _ = write!(body, r#"<a href="/console/overview?range={r}{end_param}">{}</a> "#, esc(t(lang, key)));
        }
    }
    body.push_str("</p>");
    let total_label = t(lang, "chart.total");
    body.push_str(&svg::time_series(
        "chart-class",
        t(lang, "overview.by_class"),
        &labels,
        &series_from(by_class),
        total_label,
    ));
    body.push_str(&svg::time_series(
        "chart-feed",
        t(lang, "overview.by_feed"),
        &labels,
        &series_from(by_feed),
        total_label,
    ));
    body.push_str("</section>");

    let totals = c.store.totals()?;
    let _ = write!(
        body,
        r#"<section><h2>{}</h2><table id="totals"><tr><th>{}</th><td class="num" data-total="observations">{}</td></tr><tr><th>{}</th><td class="num" data-total="unattributed">{}</td></tr><tr><th>{}</th><td class="num" data-total="quarantined">{}</td></tr></table>"#,
        esc(t(lang, "overview.totals")),
        esc(t(lang, "overview.observations")),
        totals.observations,
        esc(t(lang, "overview.unattributed")),
        totals.unattributed,
        esc(t(lang, "overview.quarantined")),
        totals.quarantined,
    );
    // Quarantine ids are assigned in order and never deleted: the newest are the last ids.
    let recent = c.store.quarantine(totals.quarantined.saturating_sub(10), 10)?;
    let _ = write!(body, "<h3>{}</h3>", esc(t(lang, "overview.recent_quarantine")));
    if recent.is_empty() {
        let _ = write!(body, "<p>{}</p>", esc(t(lang, "none")));
    } else {
        let _ = write!(
            body,
            r#"<table id="quarantine">{}"#,
            th(lang, &["col.when", "col.source", "col.line", "col.reason"])
        );
        for q in recent.iter().rev() {
            let _ = write!(
                body,
                r#"<tr><td>{}</td><td>{}</td><td class="num">{}</td><td>{}</td></tr>"#,
                esc(&time(lang, Some(q.at))),
                esc(&q.rejected.source_name),
                q.rejected.line,
                esc(&q.rejected.reason)
            );
        }
        body.push_str("</table>");
    }
    body.push_str("</section>");

    let fresh = c.store.freshness()?;
    let _ = write!(
        body,
        r#"<section><h2>{}</h2><table id="freshness">{}"#,
        esc(t(lang, "overview.freshness")),
        th(lang, &["col.feed", "col.sensor", "col.last_event", "col.last_stored", "col.count", "col.status"])
    );
    let stale_before = Timestamp::from_secs(wall - c.config.stale_after_secs);
    for f in &fresh {
        // Stale: the sensor's newest event is older than the threshold (nothing new seen).
        let stale = f.last_event < stale_before;
        let (class, key) = if stale { ("stale", "status.stale") } else { ("ok", "status.ok") };
        let _ = write!(
            body,
            r#"<tr class="sensor" data-feed="{feed}" data-sensor="{prov}" data-stale="{stale}" data-count="{n}"><td>{feed}</td><td>{prov}</td><td>{le}</td><td>{ls}</td><td class="num">{n}</td><td class="{class}">{st}</td></tr>"#,
            feed = esc(&f.feed),
            prov = esc(&f.provider),
            le = esc(&time(lang, Some(f.last_event))),
            ls = esc(&time(lang, Some(f.last_stored))),
            n = f.n,
            st = esc(t(lang, key)),
        );
    }
    body.push_str("</table></section>");
    Ok(Page { title: t(lang, "overview.title").into(), active: "overview", body })
}

/// Infected subscribers per 1,000 on a day (`None` without a subscriber count).
fn daily_rate(d: &DayStats) -> Option<f64> {
    (d.subscribers > 0)
        .then(|| d.threats.iter().map(|t| t.infected).sum::<u64>() as f64 * 1000.0 / d.subscribers as f64)
}

/// The mean of the daily rates over days with a subscriber count.
fn period_rate(days: &[&DayStats]) -> Option<f64> {
    let rates: Vec<f64> = days.iter().filter_map(|d| daily_rate(d)).collect();
    (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

struct MemberData {
    members: Vec<Member>,
    routed: HashMap<MemberId, u64>,
    pulls: HashMap<MemberId, kizuna_store::console::Pulls>,
    stats: HashMap<MemberId, Vec<DayStats>>,
    from: NaiveDate,
    to: NaiveDate,
}

fn member_data(c: &Console) -> Result<MemberData, PageError> {
    let members = c.store.members()?;
    let routed: HashMap<MemberId, u64> = c.store.totals()?.per_member.into_iter().collect();
    c.store.refresh_pulls()?;
    let pulls = c.store.pulls()?.into_iter().map(|p| (p.member, p)).collect();
    let to = day_of_secs(Timestamp::now().as_secs());
    let from = to.checked_sub_days(kizuna_store::stats::Days::new(29)).unwrap_or(to);
    let mut stats: HashMap<MemberId, Vec<DayStats>> = HashMap::new();
    for (m, d) in c.store.all_stats(from, to)? {
        stats.entry(m).or_default().push(d);
    }
    Ok(MemberData { members, routed, pulls, stats, from, to })
}

/// The national chart: every member's 30-day infection rate. For a member's staff, other
/// members are anonymised ("Member 1", … in order of rate, so the order tells nothing more).
fn national_chart(lang: Lang, d: &MemberData, viewer_member: Option<MemberId>) -> String {
    let mut rows: Vec<(f64, &Member)> = d
        .members
        .iter()
        .filter_map(|m| {
            let days: Vec<&DayStats> = d.stats.get(&m.id).map(|v| v.iter().collect()).unwrap_or_default();
            period_rate(&days).map(|r| (round2(r), m))
        })
        .collect();
    rows.sort_by(|a, b| {
        b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.1.name.cmp(&b.1.name))
    });
    let mut k = 0;
    let bars: Vec<Bar> = rows
        .iter()
        .map(|(r, m)| {
            let own = viewer_member == Some(m.id);
            let label = match viewer_member {
                None => m.name.clone(),
                Some(_) if own => format!("{} ({})", m.name, t(lang, "members.you")),
                Some(_) => {
                    k += 1;
                    format!("{} {k}", t(lang, "members.other"))
                }
            };
            Bar { label, value: *r, highlight: own }
        })
        .collect();
    svg::bars("chart-national", t(lang, "members.national"), &bars)
}

pub(crate) async fn members(State(c): State<Arc<Console>>, headers: HeaderMap, uri: Uri) -> Response {
    guarded(c, headers, uri, Rule::Any, render_members).await
}

fn render_members(c: &Console, v: &Viewer) -> Result<Page, PageError> {
    let lang = v.lang;
    let d = member_data(c)?;
    let mut body = String::new();
    let _ = write!(body, "<section>{}</section>", national_chart(lang, &d, v.user.member));
    let _ = write!(
        body,
        r#"<section><table id="members">{}"#,
        th(
            lang,
            &["col.member", "col.routed", "col.last_pull", "col.reads", "col.returned", "col.subscribers", "col.rate"]
        )
    );
    for m in &d.members {
        if v.user.member.is_some_and(|own| own != m.id) {
            continue;
        }
        let days: Vec<&DayStats> = d.stats.get(&m.id).map(|v| v.iter().collect()).unwrap_or_default();
        let subs = days.iter().rev().find(|x| x.subscribers > 0).map_or(0, |x| x.subscribers);
        let rate = period_rate(&days).map_or("—".to_owned(), |r| format!("{:.2}", round2(r)));
        let p = d.pulls.get(&m.id);
        let _ = write!(
            body,
            r#"<tr class="member" data-member="{n}" data-routed="{routed}" data-reads="{reads}"><td><a href="/console/members/{nu}">{n}</a><br><small>{dn}</small></td><td class="num">{routed}</td><td>{lp}</td><td class="num">{reads}</td><td class="num">{ret}</td><td class="num">{subs}</td><td class="num" data-rate="{rate}">{rate}</td></tr>"#,
            n = esc(&m.name),
            nu = url_param(&m.name),
            dn = esc(&m.display_name),
            routed = d.routed.get(&m.id).copied().unwrap_or(0),
            lp = esc(&time(lang, p.map(|p| p.last))),
            reads = p.map_or(0, |p| p.reads),
            ret = p.map_or(0, |p| p.returned),
        );
    }
    body.push_str("</table></section>");
    Ok(Page { title: t(lang, "members.title").into(), active: "members", body })
}

pub(crate) async fn member(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    uri: Uri,
    axum::extract::Path(name): PathParam,
) -> Response {
    guarded(c, headers, uri, Rule::Any, move |c, v| render_member(c, v, &name)).await
}

fn render_member(c: &Console, v: &Viewer, name: &str) -> Result<Page, PageError> {
    let lang = v.lang;
    let m = c.store.member_by_name(name)?.ok_or(PageError::NotFound)?;
    if v.user.member.is_some_and(|own| own != m.id) {
        return Err(PageError::Forbidden);
    }
    let d = member_data(c)?;
    let mut body = String::new();
    // Observations routed per day (console aggregate).
    let days: Vec<NaiveDate> = d.from.iter_days().take_while(|x| *x <= d.to).collect();
    let labels: Vec<String> = days.iter().map(|x| x.format("%m-%d").to_string()).collect();
    let mut routed = vec![0.0; days.len()];
    for md in c.store.member_days(d.from, d.to)? {
        if md.member == m.id
            && let Some(i) = days.iter().position(|x| *x == md.day)
        {
            routed[i] += md.n as f64;
        }
    }
    let total = t(lang, "chart.total");
    let _ = write!(
        body,
        "<section>{}",
        svg::time_series(
            "chart-routed",
            t(lang, "members.routed_daily"),
            &labels,
            &[Series { name: m.name.clone(), values: routed }],
            total
        )
    );
    let stats = d.stats.get(&m.id).cloned().unwrap_or_default();
    if stats.is_empty() {
        let _ = write!(body, r#"<p id="no-stats">{}</p></section>"#, esc(t(lang, "members.no_stats")));
    } else {
        let rates: Vec<f64> = days
            .iter()
            .map(|day| stats.iter().find(|s| s.day == *day).and_then(daily_rate).map_or(0.0, round2))
            .collect();
        body.push_str(&svg::time_series(
            "chart-rate",
            t(lang, "members.rate_daily"),
            &labels,
            &[Series { name: m.name.clone(), values: rates }],
            total,
        ));
        let mut sum = kizuna_store::stats::ThreatCounts::default();
        let mut unresolved: BTreeMap<String, u64> = BTreeMap::new();
        for dstat in &stats {
            for th in &dstat.threats {
                sum.observed += th.observed;
                sum.resolved += th.resolved;
                sum.notified += th.notified;
                sum.remediated += th.remediated;
                sum.escalated += th.escalated;
                for (r, n) in &th.unresolved {
                    *unresolved.entry(r.clone()).or_default() += n;
                }
            }
        }
        body.push_str(&svg::funnel(
            "chart-funnel",
            t(lang, "members.funnel"),
            &[
                (t(lang, "funnel.observed").into(), sum.observed as f64),
                (t(lang, "funnel.resolved").into(), sum.resolved as f64),
                (t(lang, "funnel.notified").into(), sum.notified as f64),
                (t(lang, "funnel.remediated").into(), sum.remediated as f64),
            ],
        ));
        let _ = write!(
            body,
            r#"<p>{}: <span id="escalated">{}</span></p>"#,
            esc(t(lang, "members.escalated")),
            sum.escalated
        );
        let bars: Vec<Bar> =
            unresolved.into_iter().map(|(label, n)| Bar { label, value: n as f64, highlight: false }).collect();
        body.push_str(&svg::bars("chart-unresolved", t(lang, "members.unresolved"), &bars));
        body.push_str(&ttr_section(c, lang, m.id, &d, &days, &labels)?);
        body.push_str("</section>");
    }
    let _ = write!(
        body,
        "<section>{}</section>",
        national_chart(lang, &d, v.user.member.or(Some(m.id)).filter(|_| v.user.member.is_some()))
    );
    Ok(Page { title: format!("{} · {}", t(lang, "members.title"), m.display_name), active: "members", body })
}

/// Time to remediation on a member's page: per day, the median and 90th percentile (nearest
/// rank) of the whole days from first notice to remediation of the cases remediated that day
/// (all threats pooled; days without remediations are gaps), and the same over the 30 days.
/// From the histograms the agent reports (counts per number of days, no case ids).
fn ttr_section(
    c: &Console,
    lang: Lang,
    member: MemberId,
    d: &MemberData,
    days: &[NaiveDate],
    labels: &[String],
) -> Result<String, PageError> {
    use kizuna_store::stats::{merge_days, quantile_days};
    let mut per_day: BTreeMap<NaiveDate, BTreeMap<u32, u64>> = BTreeMap::new();
    let mut all: BTreeMap<u32, u64> = BTreeMap::new();
    for r in c.store.member_remediation_days(member, d.from, d.to)? {
        merge_days(per_day.entry(r.day).or_default(), &r.days);
        merge_days(&mut all, &r.days);
    }
    let mut out = String::new();
    let title = t(lang, "members.ttr");
    if all.is_empty() {
        let _ = write!(out, r#"<p id="ttr"><strong>{}</strong>: {}</p>"#, esc(title), esc(t(lang, "members.ttr_none")));
        return Ok(out);
    }
    let level = |p: f64| -> Vec<f64> {
        days.iter().map(|day| per_day.get(day).and_then(|h| quantile_days(h, p)).map_or(f64::NAN, f64::from)).collect()
    };
    let cases: u64 = all.values().sum();
    let (median, p90) = (quantile_days(&all, 0.5).unwrap_or(0), quantile_days(&all, 0.9).unwrap_or(0));
    let summary = format!(
        "{}: {median} · {}: {p90} · {}: {cases}",
        t(lang, "members.ttr_median"),
        t(lang, "members.ttr_p90"),
        t(lang, "members.ttr_cases")
    );
    out.push_str(&svg::level_series(
        "chart-ttr",
        &format!("{title} ({})", t(lang, "members.ttr_unit")),
        labels,
        &[
            Series { name: t(lang, "members.ttr_median").into(), values: level(0.5) },
            Series { name: t(lang, "members.ttr_p90").into(), values: level(0.9) },
        ],
        &summary,
    ));
    let _ = write!(
        out,
        r#"<p id="ttr" data-median="{median}" data-p90="{p90}" data-cases="{cases}"><strong>{}</strong>: {}</p>"#,
        esc(title),
        esc(&summary)
    );
    Ok(out)
}

pub(crate) async fn indicators(State(c): State<Arc<Console>>, headers: HeaderMap, uri: Uri) -> Response {
    guarded(c, headers, uri, Rule::Any, render_indicators).await
}

fn visible_tlp(v: &Viewer, tlp: Tlp) -> bool {
    // Hub staff see everything but read-only staff no TLP:RED; a member's staff see what TLP
    // lets any member see (TLP:RED never).
    match (v.user.member, v.user.role) {
        (None, Role::Operator | Role::Analyst) => true,
        _ => tlp != Tlp::Red,
    }
}

fn render_indicators(c: &Console, v: &Viewer) -> Result<Page, PageError> {
    let lang = v.lang;
    let now = Timestamp::now();
    let counts = c.store.indicator_counts()?;
    let by_cat = counts_by_category(&counts);
    let mut body = String::new();
    let bars: Vec<Bar> = by_cat
        .iter()
        .map(|(cat, states)| Bar {
            label: cat.as_str().to_owned(),
            value: states.get(&IndicatorState::Active).copied().unwrap_or(0) as f64,
            highlight: false,
        })
        .collect();
    let _ = write!(body, "<section>{}", svg::bars("chart-indicators", t(lang, "indicators.by_category"), &bars));
    let _ = write!(
        body,
        r#"<h2>{}</h2><table id="indicator-counts"><tr><th>{}</th>"#,
        esc(t(lang, "indicators.counts")),
        esc(t(lang, "col.category"))
    );
    for s in IndicatorState::ALL {
        let _ = write!(body, r#"<th class="num">{}</th>"#, esc(s.as_str()));
    }
    body.push_str("</tr>");
    for (cat, states) in &by_cat {
        let _ = write!(body, r#"<tr data-category="{}"><td>{}</td>"#, esc(cat.as_str()), esc(cat.as_str()));
        for s in IndicatorState::ALL {
            let _ = write!(
                body,
                r#"<td class="num" data-state="{}">{}</td>"#,
                s.as_str(),
                states.get(s).copied().unwrap_or(0)
            );
        }
        body.push_str("</tr>");
    }
    body.push_str("</table></section>");

    let row = |r: &kizuna_store::indicators::IndicatorRecord, extra: &str| {
        format!(
            r#"<tr class="indicator" data-value="{val}"><td>{kind}</td><td><code>{val}</code></td><td>{cat}</td><td>{state}</td><td>{exp}</td><td>{extra}</td></tr>"#,
            kind = esc(r.indicator.kind.as_str()),
            val = esc(&r.indicator.value),
            cat = esc(r.indicator.category.as_str()),
            state = esc(r.state.as_str()),
            exp = esc(&time(lang, Some(r.indicator.expires))),
            extra = esc(extra),
        )
    };
    let head = th(lang, &["col.kind", "col.value", "col.category", "col.state", "col.expires", "col.conflict"]);
    let newest = c.store.list_indicators(&IndicatorFilter { limit: 20, ..Default::default() })?;
    let _ = write!(body, r#"<section><h2>{}</h2><table id="newest">{head}"#, esc(t(lang, "indicators.newest")));
    for r in newest.iter().filter(|r| visible_tlp(v, r.indicator.tlp)) {
        body.push_str(&row(r, r.conflict.as_deref().unwrap_or("")));
    }
    body.push_str("</table></section>");
    let soon = Timestamp::from_micros(now.as_micros() + DAY * 1_000_000);
    let mut expiring: Vec<_> =
        c.store.active_indicators(now)?.into_iter().filter(|r| r.indicator.expires <= soon).collect();
    expiring.sort_by_key(|r| r.indicator.expires);
    let _ = write!(body, r#"<section><h2>{}</h2><table id="expiring">{head}"#, esc(t(lang, "indicators.expiring")));
    for r in expiring.iter().filter(|r| visible_tlp(v, r.indicator.tlp)).take(50) {
        body.push_str(&row(r, ""));
    }
    body.push_str("</table></section>");
    let conflicts = c.store.list_indicators(&IndicatorFilter {
        state: Some(IndicatorState::AllowListed),
        limit: 50,
        ..Default::default()
    })?;
    let _ = write!(body, r#"<section><h2>{}</h2><table id="conflicts">{head}"#, esc(t(lang, "indicators.conflicts")));
    for r in conflicts.iter().filter(|r| visible_tlp(v, r.indicator.tlp)) {
        body.push_str(&row(r, r.conflict.as_deref().unwrap_or("")));
    }
    body.push_str("</table></section>");
    let _ = write!(body, r#"<section id="zones"><h2>{}</h2>"#, esc(t(lang, "indicators.zones")));
    if c.config.dns_apis.is_empty() {
        let _ = write!(body, "<p>{}</p>", esc(t(lang, "indicators.zones_none")));
    } else {
        body.push_str(&crate::zones_html(lang, &c.config.dns_apis));
    }
    body.push_str("</section>");
    Ok(Page { title: t(lang, "indicators.title").into(), active: "indicators", body })
}

pub(crate) async fn search(State(c): State<Arc<Console>>, headers: HeaderMap, uri: Uri, q: Params) -> Response {
    guarded(c, headers, uri, Rule::Any, move |c, v| render_search(c, v, q.0.get("q").map(String::as_str).unwrap_or("")))
        .await
}

/// Whether the viewer may see a stored observation.
fn may_see(c: &Console, v: &Viewer, o: &StoredObservation, members: &[Member]) -> bool {
    match v.user.member {
        None => visible_tlp(v, o.routed.observation.tlp),
        Some(own) => {
            if o.routed.member != Some(own) {
                return false;
            }
            let _ = c;
            let Some(m) = members.iter().find(|m| m.id == own) else { return false };
            let recipient = kizuna_policy::Recipient::new(m.name.clone(), kizuna_policy::RecipientKind::Member);
            let labels = kizuna_policy::observation_labels(&o.routed.observation, Some(&m.name));
            kizuna_policy::may_receive(&labels.as_labels(), &recipient)
        }
    }
}

fn render_search(c: &Console, v: &Viewer, q: &str) -> Result<Page, PageError> {
    let lang = v.lang;
    let q = q.trim();
    let mut body = format!(
        r#"<section><form method="get" action="/console/search" id="search-form"><input name="q" id="q" size="60" value="{}" placeholder="{}"> <button type="submit" id="search-submit">{}</button></form></section>"#,
        esc(q),
        esc(t(lang, "search.placeholder")),
        esc(t(lang, "search.submit"))
    );
    if q.is_empty() {
        return Ok(Page { title: t(lang, "search.title").into(), active: "search", body });
    }
    if q.len() > 2048 {
        return Err(PageError::BadRequest("query longer than 2048 bytes".into()));
    }
    let members = c.store.members()?;
    let found = match q.parse::<std::net::IpAddr>() {
        Ok(ip) => c.store.by_source_ip(ip, 200)?,
        Err(_) => c.store.observations_by_term(&normalise_query(q), 200)?,
    };
    let total = found.len();
    let shown: Vec<&StoredObservation> = found.iter().filter(|o| may_see(c, v, o, &members)).collect();
    let hidden = total - shown.len();
    let _ = write!(
        body,
        r#"<section><h2>{} (<span id="obs-count">{}</span>)</h2>"#,
        esc(t(lang, "search.observations")),
        shown.len()
    );
    if hidden > 0 {
        let _ = write!(body, r#"<p id="hidden" data-hidden="{hidden}">{hidden} {}</p>"#, esc(t(lang, "search.hidden")));
    }
    let _ = write!(
        body,
        r#"<table id="observations">{}"#,
        th(lang, &["col.time", "col.feed", "col.classification", "col.ip", "col.member", "col.tlp"])
    );
    for o in &shown {
        let ob = &o.routed.observation;
        let member =
            o.routed.member.and_then(|id| members.iter().find(|m| m.id == id)).map_or("—", |m| m.name.as_str());
        let _ = write!(
            body,
            r#"<tr class="observation" data-seq="{}"><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            o.seq,
            esc(&time(lang, Some(ob.time_source.unwrap_or(ob.time_observation)))),
            esc(&ob.feed.name),
            esc(ob.classification.kind.as_str()),
            ob.classification.identifier.as_deref().map(|i| format!(" / {}", esc(i))).unwrap_or_default(),
            ob.source.ip.map(|i| i.to_string()).unwrap_or_default(),
            esc(member),
            esc(&ob.tlp.to_string()),
        );
    }
    body.push_str("</table></section>");
    let inds =
        c.store.list_indicators(&IndicatorFilter { search: Some(q.to_owned()), limit: 100, ..Default::default() })?;
    let inds: Vec<_> = inds.into_iter().filter(|r| visible_tlp(v, r.indicator.tlp)).collect();
    let _ = write!(
        body,
        r#"<section><h2>{} (<span id="ind-count">{}</span>)</h2><table id="indicators">{}"#,
        esc(t(lang, "search.indicators")),
        inds.len(),
        th(lang, &["col.kind", "col.value", "col.category", "col.state", "col.expires"])
    );
    for r in &inds {
        let _ = write!(
            body,
            r#"<tr class="indicator"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(r.indicator.kind.as_str()),
            esc(&r.indicator.value),
            esc(r.indicator.category.as_str()),
            esc(r.state.as_str()),
            esc(&time(lang, Some(r.indicator.expires)))
        );
    }
    body.push_str("</table></section>");
    let _ = write!(
        body,
        r#"<section><h2>{}</h2><p>{}</p></section>"#,
        esc(t(lang, "search.shares")),
        esc(t(lang, "search.shares_none"))
    );
    Ok(Page { title: t(lang, "search.title").into(), active: "search", body })
}

pub(crate) async fn audit(State(c): State<Arc<Console>>, headers: HeaderMap, uri: Uri, q: Params) -> Response {
    let before = q.0.get("before").and_then(|b| b.parse::<u64>().ok());
    guarded(c, headers, uri, Rule::Operator, move |c, v| render_audit(c, v, before)).await
}

fn render_audit(c: &Console, v: &Viewer, before: Option<u64>) -> Result<Page, PageError> {
    let lang = v.lang;
    let store: &dyn Store = c.store.as_ref();
    let verdict = kizuna_store::audit::verify_store(store, c.store.console_audit_anchor())?;
    let mut body = String::from("<section>");
    let last = match &verdict {
        kizuna_store::audit::Verdict::Intact { entries } => {
            let _ = write!(
                body,
                r#"<p class="verdict-ok" id="verdict" data-verdict="intact" data-entries="{entries}">✔ {} ({entries} {})</p>"#,
                esc(t(lang, "audit.verified")),
                esc(t(lang, "audit.entries"))
            );
            *entries
        }
        kizuna_store::audit::Verdict::Broken { seq, reason } => {
            let _ = write!(
                body,
                r#"<p class="verdict-broken" id="verdict" data-verdict="broken" data-seq="{seq}">✘ {} — {} {seq}: {}</p>"#,
                esc(t(lang, "audit.broken")),
                esc(t(lang, "audit.at")),
                esc(reason)
            );
            seq.saturating_sub(1)
        }
    };
    let top = before.map_or(last, |b| b.saturating_sub(1).min(last));
    let page = 50u64;
    let start = top.saturating_sub(page);
    let entries = c.store.audit_entries(start, (top - start) as usize)?;
    let _ = write!(
        body,
        r#"<table id="audit">{}"#,
        th(lang, &["col.seq", "col.when", "col.actor", "col.action", "col.subject", "col.detail"])
    );
    for e in entries.iter().rev() {
        let _ = write!(
            body,
            r#"<tr class="entry" data-seq="{}" data-action="{}"><td class="num">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>"#,
            e.seq,
            esc(&e.record.action),
            e.seq,
            esc(&time(lang, Some(e.record.at))),
            esc(&e.record.actor),
            esc(&e.record.action),
            esc(&e.record.subject),
            esc(&e.record.detail)
        );
    }
    body.push_str("</table><p>");
    if top < last {
        let _ = write!(
            body,
            r#"<a href="/console/audit?before={}">{}</a> "#,
            (top + page + 1).min(last + 1),
            esc(t(lang, "audit.newer"))
        );
    }
    if start > 0 {
        let _ = write!(body, r#"<a href="/console/audit?before={}">{}</a>"#, start + 1, esc(t(lang, "audit.older")));
    }
    body.push_str("</p></section>");
    Ok(Page { title: t(lang, "audit.title").into(), active: "audit", body })
}

pub(crate) async fn users(State(c): State<Arc<Console>>, headers: HeaderMap, uri: Uri, q: Params) -> Response {
    let added = q.0.contains_key("added");
    guarded(c, headers, uri, Rule::Operator, move |c, v| render_users(c, v, added)).await
}

fn render_users(c: &Console, v: &Viewer, added: bool) -> Result<Page, PageError> {
    let lang = v.lang;
    let members = c.store.members()?;
    let mut body = String::from("<section>");
    if added {
        let _ = write!(body, r#"<p class="notice" id="added">{}</p>"#, esc(t(lang, "users.added")));
    }
    let _ = write!(
        body,
        r#"<table id="users">{}"#,
        th(lang, &["col.name", "col.role", "col.member", "col.created", "col.disabled", ""])
    );
    for u in c.store.console_users()? {
        let member = u.member.and_then(|id| members.iter().find(|m| m.id == id)).map_or("", |m| m.name.as_str());
        let (action, label) = if u.disabled { ("enable", "users.enable") } else { ("disable", "users.disable") };
        let _ = write!(
            body,
            r#"<tr class="user" data-user="{n}" data-role="{r}"><td>{n}</td><td>{r}</td><td>{m}</td><td>{cr}</td><td>{d}</td><td><form method="post" action="/console/users"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="action" value="{action}"><input type="hidden" name="name" value="{n}"><button type="submit">{l}</button></form></td></tr>"#,
            n = esc(&u.name),
            r = u.role.as_str(),
            m = esc(member),
            cr = esc(&time(lang, Some(u.created))),
            d = esc(t(lang, if u.disabled { "yes" } else { "no" })),
            csrf = esc(&v.csrf),
            l = esc(t(lang, label)),
        );
    }
    body.push_str("</table></section>");
    let mut roles = String::new();
    for r in Role::ALL {
        let _ = write!(roles, r#"<option value="{0}">{0}</option>"#, r.as_str());
    }
    let _ = write!(
        body,
        r#"<section><h2>{add}</h2><form method="post" action="/console/users" id="add-user"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="action" value="add"><p><label>{ln}<br><input name="name" required></label></p><p><label>{lr}<br><select name="role">{roles}</select></label></p><p><label>{lm}<br><input name="member"></label></p><p><label>{lp}<br><input name="password" type="password" required minlength="10"></label></p><p><button type="submit">{add}</button></p></form></section>"#,
        add = esc(t(lang, "users.add")),
        csrf = esc(&v.csrf),
        ln = esc(t(lang, "col.name")),
        lr = esc(t(lang, "col.role")),
        lm = esc(t(lang, "users.member")),
        lp = esc(t(lang, "login.password")),
    );
    Ok(Page { title: t(lang, "users.title").into(), active: "users", body })
}

pub(crate) async fn users_post(State(c): State<Arc<Console>>, headers: HeaderMap, form: FormData) -> Response {
    guarded_post(c, headers, form.0, Rule::Operator, false, |c, v, f| {
        let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("").trim().to_owned();
        let name = get("name");
        let actor = format!("console:{}", v.user.name);
        match get("action").as_str() {
            "add" => {
                let role = get("role").parse::<Role>().map_err(|e| PageError::BadRequest(e.to_string()))?;
                let member_name = get("member");
                let member = if member_name.is_empty() {
                    None
                } else {
                    Some(
                        c.store
                            .member_by_name(&member_name)?
                            .ok_or_else(|| PageError::BadRequest(format!("no member {member_name:?}")))?
                            .id,
                    )
                };
                crate::add_user(
                    c.store.as_ref(),
                    &name,
                    role,
                    member,
                    &get("password"),
                    c.config.password_cost,
                    &actor,
                )
                .map_err(|e| PageError::BadRequest(e.to_string()))?;
                Ok(redirect("/console/users?added=1"))
            }
            a @ ("disable" | "enable") => {
                c.store.set_console_user_disabled(&name, a == "disable")?;
                c.store.append_audit(&kizuna_store::AuditRecord {
                    at: Timestamp::now(),
                    actor,
                    action: format!("console.user.{a}"),
                    subject: format!("console-user:{name}"),
                    detail: "{}".into(),
                })?;
                Ok(redirect("/console/users"))
            }
            other => Err(PageError::BadRequest(format!("unknown action {other:?}"))),
        }
    })
    .await
}
