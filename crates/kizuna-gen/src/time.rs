//! Civil-time formatting without a time-zone database (UTC and fixed offsets only).

use std::io::{self, Write};

/// `(year, month, day)` of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) const fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date.
pub(crate) const fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Broken-down time.
pub(crate) struct Civil {
    pub y: i64,
    pub mo: u32,
    pub d: u32,
    pub h: u32,
    pub mi: u32,
    pub s: u32,
    /// 0 = Sunday.
    pub wd: u32,
}

pub(crate) fn civil(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let (y, mo, d) = civil_from_days(days);
    Civil { y, mo, d, h: rem / 3600, mi: rem / 60 % 60, s: rem % 60, wd: (days + 4).rem_euclid(7) as u32 }
}

/// `2026-03-05 00:00:12` (Shadowserver's UTC timestamps).
pub(crate) fn write_space(out: &mut impl Write, secs: i64) -> io::Result<()> {
    let c = civil(secs);
    write!(out, "{:04}-{:02}-{:02} {:02}:{:02}:{:02}", c.y, c.mo, c.d, c.h, c.mi, c.s)
}

/// `2026-03-05T00:00:12.123456Z` (Cowrie).
pub(crate) fn write_iso_z(out: &mut impl Write, micros: i64) -> io::Result<()> {
    let c = civil(micros.div_euclid(1_000_000));
    let us = micros.rem_euclid(1_000_000);
    write!(out, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", c.y, c.mo, c.d, c.h, c.mi, c.s, us)
}

/// `2026-03-05T09:00:12.123456+0900` (Suricata EVE, local time with an offset in minutes).
pub(crate) fn write_iso_offset(out: &mut impl Write, micros: i64, offset_min: i32) -> io::Result<()> {
    let local = micros + i64::from(offset_min) * 60_000_000;
    let c = civil(local.div_euclid(1_000_000));
    let us = local.rem_euclid(1_000_000);
    let sign = if offset_min < 0 { '-' } else { '+' };
    let off = offset_min.unsigned_abs();
    write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{}{:02}{:02}",
        c.y,
        c.mo,
        c.d,
        c.h,
        c.mi,
        c.s,
        us,
        sign,
        off / 60,
        off % 60
    )
}

/// `Thu, 05 Mar 2026 00:00:14 GMT` (HTTP `Date`).
pub(crate) fn write_http_date(out: &mut impl Write, secs: i64) -> io::Result<()> {
    const WD: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MO: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let c = civil(secs);
    write!(
        out,
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        WD[c.wd as usize % 7],
        c.d,
        MO[(c.mo as usize + 11) % 12],
        c.y,
        c.h,
        c.mi,
        c.s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl Fn(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut v = Vec::new();
        f(&mut v).expect("write to vec");
        String::from_utf8(v).expect("utf8")
    }

    #[test]
    fn formats_known_instants() {
        // 2026-03-05T00:00:12Z = 1772668812 (date -u -d '2026-03-05 00:00:12' +%s).
        let t = 1_772_668_812;
        assert_eq!(days_from_civil(2026, 3, 5) * 86_400 + 12, t);
        assert_eq!(s(|o| write_space(o, t)), "2026-03-05 00:00:12");
        assert_eq!(s(|o| write_iso_z(o, t * 1_000_000 + 123_456)), "2026-03-05T00:00:12.123456Z");
        assert_eq!(s(|o| write_iso_offset(o, t * 1_000_000 + 7, 540)), "2026-03-05T09:00:12.000007+0900");
        assert_eq!(s(|o| write_iso_offset(o, t * 1_000_000, -150)), "2026-03-04T21:30:12.000000-0230");
        assert_eq!(s(|o| write_http_date(o, t)), "Thu, 05 Mar 2026 00:00:12 GMT");
        assert_eq!(s(|o| write_space(o, 951_782_400)), "2000-02-29 00:00:00");
        assert_eq!(s(|o| write_space(o, -1)), "1969-12-31 23:59:59");
    }
}
