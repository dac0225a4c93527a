//! Fast paths for the time forms feeds write most, with [`Timestamp::parse`] and
//! [`Timestamp::to_rfc3339`] as the reference (and the fallback for everything else).

use kizuna_model::Timestamp;

fn digits(b: &[u8]) -> Option<i64> {
    let mut n = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(c - b'0');
    }
    Some(n)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}][Z| UTC|±HH:MM|±HHMM]`, else `None`.
fn fast(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let y = digits(&b[0..4])?;
    let mo = digits(&b[5..7])?;
    let d = digits(&b[8..10])?;
    let h = digits(&b[11..13])?;
    let mi = digits(&b[14..16])?;
    let se = digits(&b[17..19])?;
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if let [b'.', r @ ..] = rest {
        let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        let mut nanos = digits(&r[..n])?;
        for _ in n..9 {
            nanos *= 10;
        }
        micros = nanos / 1000;
        rest = &r[n..];
    }
    let offset = match rest {
        [] | b"Z" | b" UTC" => 0,
        [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] | [sign @ (b'+' | b'-'), oh1, oh2, om1, om2] => {
            let oh = digits(&[*oh1, *oh2])?;
            let om = digits(&[*om1, *om2])?;
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset;
    Some(Timestamp::from_micros(secs * 1_000_000 + micros))
}

/// Like [`Timestamp::parse`], faster for the common forms.
pub(crate) fn parse(s: &str) -> Option<Timestamp> {
    let t = s.trim();
    fast(t).or_else(|| Timestamp::parse(t))
}

/// Appends what [`Timestamp::to_rfc3339`] writes (`2026-03-05T00:00:12.123456+00:00`).
pub(crate) fn write_rfc3339(t: Timestamp, out: &mut Vec<u8>) {
    let us = t.as_micros();
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    if !(0..=9999).contains(&y) {
        out.extend_from_slice(t.to_rfc3339().as_bytes());
        return;
    }
    let sod = secs.rem_euclid(86_400);
    let two = |out: &mut Vec<u8>, v: i64| out.extend_from_slice(&[b'0' + (v / 10) as u8, b'0' + (v % 10) as u8]);
    two(out, y / 100);
    two(out, y % 100);
    out.push(b'-');
    two(out, m);
    out.push(b'-');
    two(out, d);
    out.push(b'T');
    two(out, sod / 3600);
    out.push(b':');
    two(out, sod / 60 % 60);
    out.push(b':');
    two(out, sod % 60);
    if frac != 0 {
        out.push(b'.');
        let (v, n) = if frac % 1000 == 0 { (frac / 1000, 3) } else { (frac, 6) };
        let mut buf = [b'0'; 6];
        let mut v = v;
        for i in (0..n).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out.extend_from_slice(b"+00:00");
}

/// [`write_rfc3339`] as a `String`.
pub(crate) fn rfc3339(t: Timestamp) -> String {
    let mut v = Vec::with_capacity(32);
    write_rfc3339(t, &mut v);
    String::from_utf8(v).unwrap_or_else(|_| t.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_model() {
        let mut x: u64 = 0x853c_49e6_748f_ea9b;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // 1900 … 2200, with whole seconds, milliseconds and microseconds.
            let us = (x % 9_467_280_000_000_000) as i64 - 2_208_988_800_000_000;
            let us = match i % 3 {
                0 => us - us.rem_euclid(1_000_000),
                1 => us - us.rem_euclid(1000),
                _ => us,
            };
            let t = Timestamp::from_micros(us);
            let s = rfc3339(t);
            assert_eq!(s, t.to_rfc3339());
            assert_eq!(fast(&s), Some(t), "{s}");
            assert_eq!(Timestamp::parse(&s), Some(t), "{s}");
        }
    }

    #[test]
    fn forms() {
        let want = Some(Timestamp::from_secs(1_772_668_812));
        for s in [
            "2026-03-05T00:00:12Z",
            "2026-03-05T00:00:12+00:00",
            "2026-03-05T09:00:12+09:00",
            "2026-03-05T01:00:12.000000+0100",
            "2026-03-04T23:00:12-0100",
            "2026-03-05 00:00:12",
            "2026-03-05 00:00:12 UTC",
            "2026-03-05T00:00:12",
            " 2026-03-05 00:00:12 ",
        ] {
            assert_eq!(parse(s), want, "{s}");
            assert_eq!(parse(s), Timestamp::parse(s), "{s}");
        }
        assert_eq!(parse("2026-03-05T00:00:12.1234567891Z"), Timestamp::parse("2026-03-05T00:00:12.1234567891Z"));
        assert_eq!(parse("2026-03-05T00:00:12.123456789Z"), Some(Timestamp::from_micros(1_772_668_812_123_456)));
        for bad in
            ["2026-02-30 00:00:00", "2026-13-45 25:61:00", "2026-03-05 24:00:00", "2026-03-05T00:00:12+2400", "x"]
        {
            assert_eq!(parse(bad), None, "{bad}");
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
        assert_eq!(parse("2026-03-05"), Some(Timestamp::from_secs(1_772_668_800)));
        assert_eq!(rfc3339(Timestamp::from_micros(-1)), "1969-12-31T23:59:59.999999+00:00");
    }
}
