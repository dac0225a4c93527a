//! Minimal JSON text output: string escaping without allocation.

use std::fmt;
use std::io::{self, Write};

/// Write `s` as a JSON string literal (with quotes).
pub(crate) fn jstr(w: &mut impl Write, s: &str) -> io::Result<()> {
    w.write_all(b"\"")?;
    jesc(w, s)?;
    w.write_all(b"\"")
}

/// Write `s` JSON-escaped, without the quotes.
pub(crate) fn jesc(w: &mut impl Write, s: &str) -> io::Result<()> {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        w.write_all(&bytes[start..i])?;
        match esc {
            Some(e) => w.write_all(e)?,
            None => write!(w, "\\u{:04x}", b)?,
        }
        start = i + 1;
    }
    w.write_all(&bytes[start..])
}

/// Write a `Display` value as a JSON string; the value must not need escaping (addresses,
/// hex, our generated names).
pub(crate) fn jdisp(w: &mut impl Write, v: impl fmt::Display) -> io::Result<()> {
    write!(w, "\"{v}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_json() {
        let mut v = Vec::new();
        jstr(&mut v, "a\"b\\c\nd\u{1}é").expect("vec");
        assert_eq!(String::from_utf8(v).expect("utf8"), "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }
}
