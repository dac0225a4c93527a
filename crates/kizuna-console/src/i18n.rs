//! Message catalogues: every UI string, in English and Japanese. A page asks [`t`] for a key;
//! a key missing from a catalogue is a test failure (`catalogues_have_the_same_keys`), and at
//! run time falls back to English, then to the key itself.

use std::collections::HashMap;
use std::sync::OnceLock;

/// A UI language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// English.
    En,
    /// Japanese.
    Ja,
}

impl Lang {
    /// Every language.
    pub const ALL: &'static [Lang] = &[Lang::En, Lang::Ja];

    /// BCP 47 tag.
    pub const fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    /// From a tag (`en`, `ja`, `ja-JP`, …).
    pub fn from_code(s: &str) -> Option<Lang> {
        let primary = s.trim().split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "ja" => Some(Lang::Ja),
            _ => None,
        }
    }

    /// The preferred supported language of an `Accept-Language` header (by q-value, then order);
    /// English when none is supported.
    pub fn from_accept_language(h: &str) -> Lang {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (i, part) in h.split(',').enumerate() {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("");
            let q = it.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
            if let Some(l) = Lang::from_code(tag)
                && q > 0.0
                && best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && i < bi))
            {
                best = Some((q, i, l));
            }
        }
        best.map_or(Lang::En, |b| b.2)
    }
}

/// English.
const EN: &[(&str, &str)] = &[
    ("app.title", "kizuna console"),
    ("nav.overview", "Overview"),
    ("nav.members", "Members"),
    ("nav.indicators", "Indicators"),
    ("nav.search", "Search"),
    ("nav.audit", "Audit log"),
    ("nav.users", "Users"),
    ("nav.logout", "Log out"),
    ("lang.switch", "日本語"),
    ("login.title", "Log in"),
    ("login.name", "User name"),
    ("login.password", "Password"),
    ("login.submit", "Log in"),
    ("login.failed", "Unknown user or wrong password."),
    ("login.expired", "Your session has ended. Please log in again."),
    ("err.forbidden", "You are not allowed to open this page."),
    ("err.csrf", "The form has expired. Reload the page and try again."),
    ("err.notfound", "Not found."),
    ("err.store", "The store is unavailable."),
    ("err.bad_request", "Bad request."),
    ("role.operator", "operator"),
    ("role.analyst", "analyst"),
    ("role.read-only", "read-only"),
    ("overview.title", "Overview"),
    ("overview.by_class", "Observations by classification"),
    ("overview.by_feed", "Observations by feed"),
    ("overview.totals", "Totals"),
    ("overview.observations", "Observations stored"),
    ("overview.unattributed", "Not attributed to a member"),
    ("overview.quarantined", "Quarantined records"),
    ("overview.recent_quarantine", "Newest quarantined records"),
    ("overview.freshness", "Sensor freshness"),
    ("overview.in_range", "Observations in range"),
    ("range.24h", "Last 24 hours (hourly)"),
    ("range.7d", "Last 7 days (daily)"),
    ("range.30d", "Last 30 days (daily)"),
    ("col.feed", "Feed"),
    ("col.sensor", "Sensor"),
    ("col.last_event", "Newest event"),
    ("col.last_stored", "Last received"),
    ("col.count", "Count"),
    ("col.status", "Status"),
    ("col.source", "Source"),
    ("col.line", "Line"),
    ("col.reason", "Reason"),
    ("col.when", "When"),
    ("col.member", "Member"),
    ("col.routed", "Observations routed"),
    ("col.last_pull", "Last pull"),
    ("col.reads", "Report reads"),
    ("col.returned", "Observations pulled"),
    ("col.subscribers", "Subscribers"),
    ("col.rate", "Infected per 1,000 subscribers"),
    ("col.category", "Category"),
    ("col.state", "State"),
    ("col.value", "Value"),
    ("col.kind", "Kind"),
    ("col.expires", "Expires"),
    ("col.conflict", "Allow-list entry"),
    ("col.updated", "Changed"),
    ("col.time", "Time"),
    ("col.classification", "Classification"),
    ("col.ip", "Source IP"),
    ("col.tlp", "TLP"),
    ("col.seq", "Seq"),
    ("col.actor", "Actor"),
    ("col.action", "Action"),
    ("col.subject", "Subject"),
    ("col.detail", "Detail"),
    ("col.name", "Name"),
    ("col.role", "Role"),
    ("col.created", "Created"),
    ("col.disabled", "Disabled"),
    ("status.ok", "OK"),
    ("status.stale", "STALE"),
    ("never", "never"),
    ("none", "None."),
    ("members.title", "Members"),
    ("members.national", "Infection rate per 1,000 subscribers, by member"),
    ("members.routed_daily", "Observations routed per day"),
    ("members.rate_daily", "Infected subscribers per 1,000, per day"),
    ("members.funnel", "Observed → resolved → notified → remediated"),
    ("members.unresolved", "Unresolved observations by reason"),
    ("members.ttr", "Time to remediation"),
    ("members.ttr_none", "No case remediated in the last 30 days."),
    ("members.ttr_median", "median"),
    ("members.ttr_p90", "90th percentile"),
    ("members.ttr_cases", "cases"),
    ("members.ttr_unit", "days from first notice"),
    ("members.you", "you"),
    ("members.other", "Member"),
    ("members.no_stats", "This member has not reported any counts yet."),
    ("members.escalated", "Escalated"),
    ("funnel.observed", "Observed"),
    ("funnel.resolved", "Resolved to a subscriber"),
    ("funnel.notified", "Notified"),
    ("funnel.remediated", "Remediated"),
    ("indicators.title", "Indicators and blocklists"),
    ("indicators.by_category", "Active indicators by category"),
    ("indicators.counts", "Indicators by category and state"),
    ("indicators.newest", "Newest changes"),
    ("indicators.expiring", "Expiring within 24 hours"),
    ("indicators.conflicts", "Allow-list conflicts"),
    ("indicators.zones", "RPZ zones and secondaries"),
    ("indicators.zones_none", "No DNS primary is configured for the console."),
    ("search.title", "Search"),
    ("search.placeholder", "IP address, domain, URL or hash"),
    ("search.submit", "Search"),
    ("search.observations", "Observations"),
    ("search.indicators", "Indicators"),
    ("search.shares", "Shares"),
    ("search.shares_none", "No sharing store is attached to this hub."),
    ("search.hidden", "observations hidden by your access rights"),
    ("audit.title", "Audit log"),
    ("audit.verified", "Hash chain verified"),
    ("audit.broken", "Hash chain BROKEN"),
    ("audit.entries", "entries"),
    ("audit.at", "at entry"),
    ("audit.newer", "Newer"),
    ("audit.older", "Older"),
    ("users.title", "Console users"),
    ("users.add", "Add user"),
    ("users.disable", "Disable"),
    ("users.enable", "Enable"),
    ("users.added", "User added."),
    ("users.member", "Member (empty for hub staff)"),
    ("chart.total", "total"),
    ("yes", "yes"),
    ("no", "no"),
];

/// Japanese.
const JA: &[(&str, &str)] = &[
    ("app.title", "kizuna コンソール"),
    ("nav.overview", "概要"),
    ("nav.members", "会員"),
    ("nav.indicators", "指標"),
    ("nav.search", "検索"),
    ("nav.audit", "監査ログ"),
    ("nav.users", "ユーザー"),
    ("nav.logout", "ログアウト"),
    ("lang.switch", "English"),
    ("login.title", "ログイン"),
    ("login.name", "ユーザー名"),
    ("login.password", "パスワード"),
    ("login.submit", "ログイン"),
    ("login.failed", "ユーザー名またはパスワードが正しくありません。"),
    ("login.expired", "セッションが終了しました。再度ログインしてください。"),
    ("err.forbidden", "このページを開く権限がありません。"),
    ("err.csrf", "フォームの有効期限が切れました。ページを再読み込みしてやり直してください。"),
    ("err.notfound", "見つかりません。"),
    ("err.store", "ストアを利用できません。"),
    ("err.bad_request", "不正なリクエストです。"),
    ("role.operator", "運用者"),
    ("role.analyst", "分析者"),
    ("role.read-only", "閲覧のみ"),
    ("overview.title", "概要"),
    ("overview.by_class", "分類別の観測数"),
    ("overview.by_feed", "フィード別の観測数"),
    ("overview.totals", "合計"),
    ("overview.observations", "保存済みの観測"),
    ("overview.unattributed", "会員に割り当てられていない観測"),
    ("overview.quarantined", "隔離されたレコード"),
    ("overview.recent_quarantine", "最新の隔離レコード"),
    ("overview.freshness", "センサーの鮮度"),
    ("overview.in_range", "期間内の観測"),
    ("range.24h", "過去24時間（1時間ごと）"),
    ("range.7d", "過去7日間（1日ごと）"),
    ("range.30d", "過去30日間（1日ごと）"),
    ("col.feed", "フィード"),
    ("col.sensor", "センサー"),
    ("col.last_event", "最新のイベント"),
    ("col.last_stored", "最終受信"),
    ("col.count", "件数"),
    ("col.status", "状態"),
    ("col.source", "入力元"),
    ("col.line", "行"),
    ("col.reason", "理由"),
    ("col.when", "日時"),
    ("col.member", "会員"),
    ("col.routed", "配信した観測"),
    ("col.last_pull", "最終取得"),
    ("col.reads", "レポート取得回数"),
    ("col.returned", "取得された観測"),
    ("col.subscribers", "加入者数"),
    ("col.rate", "加入者1,000人あたりの感染数"),
    ("col.category", "カテゴリ"),
    ("col.state", "状態"),
    ("col.value", "値"),
    ("col.kind", "種類"),
    ("col.expires", "有効期限"),
    ("col.conflict", "許可リストの項目"),
    ("col.updated", "変更日時"),
    ("col.time", "時刻"),
    ("col.classification", "分類"),
    ("col.ip", "送信元IP"),
    ("col.tlp", "TLP"),
    ("col.seq", "番号"),
    ("col.actor", "実行者"),
    ("col.action", "操作"),
    ("col.subject", "対象"),
    ("col.detail", "詳細"),
    ("col.name", "名前"),
    ("col.role", "役割"),
    ("col.created", "作成日時"),
    ("col.disabled", "無効"),
    ("status.ok", "正常"),
    ("status.stale", "停滞"),
    ("never", "なし"),
    ("none", "ありません。"),
    ("members.title", "会員"),
    ("members.national", "会員別・加入者1,000人あたりの感染率"),
    ("members.routed_daily", "1日あたりの配信観測数"),
    ("members.rate_daily", "1日あたり・加入者1,000人あたりの感染者数"),
    ("members.funnel", "観測 → 特定 → 通知 → 駆除"),
    ("members.unresolved", "理由別の未特定観測"),
    ("members.ttr", "駆除までの時間"),
    ("members.ttr_none", "過去30日間に駆除された案件はありません。"),
    ("members.ttr_median", "中央値"),
    ("members.ttr_p90", "90パーセンタイル"),
    ("members.ttr_cases", "件数"),
    ("members.ttr_unit", "最初の通知からの日数"),
    ("members.you", "自社"),
    ("members.other", "会員"),
    ("members.no_stats", "この会員はまだ件数を報告していません。"),
    ("members.escalated", "エスカレーション"),
    ("funnel.observed", "観測"),
    ("funnel.resolved", "加入者を特定"),
    ("funnel.notified", "通知済み"),
    ("funnel.remediated", "駆除済み"),
    ("indicators.title", "指標とブロックリスト"),
    ("indicators.by_category", "カテゴリ別の有効な指標"),
    ("indicators.counts", "カテゴリ・状態別の指標"),
    ("indicators.newest", "最新の変更"),
    ("indicators.expiring", "24時間以内に失効"),
    ("indicators.conflicts", "許可リストとの競合"),
    ("indicators.zones", "RPZゾーンとセカンダリ"),
    ("indicators.zones_none", "コンソールにDNSプライマリが設定されていません。"),
    ("search.title", "検索"),
    ("search.placeholder", "IPアドレス、ドメイン、URL、ハッシュ"),
    ("search.submit", "検索"),
    ("search.observations", "観測"),
    ("search.indicators", "指標"),
    ("search.shares", "共有"),
    ("search.shares_none", "このハブには共有ストアが接続されていません。"),
    ("search.hidden", "件の観測はアクセス権限により表示されません"),
    ("audit.title", "監査ログ"),
    ("audit.verified", "ハッシュチェーン検証済み"),
    ("audit.broken", "ハッシュチェーンが壊れています"),
    ("audit.entries", "件"),
    ("audit.at", "項目"),
    ("audit.newer", "新しい項目"),
    ("audit.older", "古い項目"),
    ("users.title", "コンソールユーザー"),
    ("users.add", "ユーザーを追加"),
    ("users.disable", "無効にする"),
    ("users.enable", "有効にする"),
    ("users.added", "ユーザーを追加しました。"),
    ("users.member", "会員（ハブ職員は空欄）"),
    ("chart.total", "合計"),
    ("yes", "はい"),
    ("no", "いいえ"),
];

fn catalogue(lang: Lang) -> &'static HashMap<&'static str, &'static str> {
    static EN_MAP: OnceLock<HashMap<&str, &str>> = OnceLock::new();
    static JA_MAP: OnceLock<HashMap<&str, &str>> = OnceLock::new();
    match lang {
        Lang::En => EN_MAP.get_or_init(|| EN.iter().copied().collect()),
        Lang::Ja => JA_MAP.get_or_init(|| JA.iter().copied().collect()),
    }
}

/// The UI string `key` in `lang`.
pub fn t(lang: Lang, key: &'static str) -> &'static str {
    catalogue(lang).get(key).or_else(|| catalogue(Lang::En).get(key)).copied().unwrap_or(key)
}

/// Every key of a catalogue (for tests).
pub fn keys(lang: Lang) -> Vec<&'static str> {
    let mut k: Vec<&str> = catalogue(lang).keys().copied().collect();
    k.sort_unstable();
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogues_have_the_same_keys() {
        assert_eq!(keys(Lang::En), keys(Lang::Ja));
        assert_eq!(EN.len(), keys(Lang::En).len(), "no key twice in English");
        assert_eq!(JA.len(), keys(Lang::Ja).len(), "no key twice in Japanese");
        for (k, v) in JA {
            assert!(!v.is_empty(), "{k} is empty");
        }
    }

    #[test]
    fn accept_language_picks_the_best_supported() {
        assert_eq!(Lang::from_accept_language("ja-JP,ja;q=0.9,en;q=0.8"), Lang::Ja);
        assert_eq!(Lang::from_accept_language("fr-FR, en;q=0.5, ja;q=0.4"), Lang::En);
        assert_eq!(Lang::from_accept_language("de"), Lang::En);
        assert_eq!(Lang::from_accept_language("en;q=0.1, ja;q=0.9"), Lang::Ja);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
    }
}
