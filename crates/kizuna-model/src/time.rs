use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// An instant in UTC with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From microseconds since the Unix epoch.
    pub const fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }

    /// From whole seconds since the Unix epoch.
    pub const fn from_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(1_000_000))
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (rounded towards negative infinity).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// The current time.
    pub fn now() -> Self {
        Self::from(Utc::now())
    }

    /// As a chrono UTC time.
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.0).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// RFC 3339 with a `+00:00` offset, as IntelMQ writes times
    /// (e.g. `2026-03-05T00:00:12+00:00`, fractional seconds only when present).
    pub fn to_rfc3339(self) -> String {
        self.to_datetime().to_rfc3339_opts(SecondsFormat::AutoSi, false)
    }

    /// Parses RFC 3339 / ISO 8601 with an offset (`Z`, `+00:00` or `+0000`), or a space instead
    /// of `T`, or no offset at all (taken as UTC, as Shadowserver writes `2026-03-05 00:00:12`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(t.into());
        }
        const WITH_OFFSET: &[&str] = &["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f %z"];
        for f in WITH_OFFSET {
            if let Ok(t) = DateTime::parse_from_str(s, f) {
                return Some(t.into());
            }
        }
        const NAIVE: &[&str] = &["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"];
        let s = s.strip_suffix(" UTC").unwrap_or(s);
        for f in NAIVE {
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
                return Some(t.and_utc().into());
            }
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().into());
        }
        None
    }
}

impl<Tz: TimeZone> From<DateTime<Tz>> for Timestamp {
    fn from(t: DateTime<Tz>) -> Self {
        Timestamp(t.timestamp_micros())
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_feeds_write() {
        let want = Timestamp::from_secs(1_772_668_812); // 2026-03-05T00:00:12Z
        for s in [
            "2026-03-05T00:00:12Z",
            "2026-03-05T00:00:12+00:00",
            "2026-03-05T09:00:12+09:00",
            "2026-03-05T01:00:12.000000+0100",
            "2026-03-05 00:00:12",
            "2026-03-05 00:00:12 UTC",
            "2026-03-05T00:00:12",
        ] {
            assert_eq!(Timestamp::parse(s), Some(want), "{s}");
        }
        assert_eq!(Timestamp::parse("yesterday"), None);
        assert_eq!(Timestamp::parse(""), None);
    }

    #[test]
    fn writes_like_intelmq() {
        assert_eq!(Timestamp::from_secs(1_772_668_812).to_rfc3339(), "2026-03-05T00:00:12+00:00");
        assert_eq!(Timestamp::from_micros(1_772_668_812_123_456).to_rfc3339(), "2026-03-05T00:00:12.123456+00:00");
    }
}
