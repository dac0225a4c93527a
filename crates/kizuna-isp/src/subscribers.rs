//! Importing the ISP's subscriber directory from CSV.
//!
//! Columns (header row required, any order): `subscriber_id`, `keys` (session keys separated by
//! `;` or spaces: RADIUS user names, DHCP hardware addresses, `id:<client-id>`), `name`,
//! `email`, `postal_address`, `language` (`ja` or `en`; default `ja`). A bad row is reported with
//! its line and reason and skipped; the rest are imported.

use std::path::Path;

use crate::store::Subscriber;
use crate::{Error, Result, io_err};

/// A rejected row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// 1-based line.
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// Parses a directory CSV. Returns the good rows and the bad ones.
pub fn parse_csv(path: &Path) -> Result<(Vec<Subscriber>, Vec<BadRow>)> {
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    parse_reader(f).map_err(|e| Error::Input(format!("{}: {e}", path.display())))
}

/// Parses directory CSV from a reader.
pub fn parse_reader(r: impl std::io::Read) -> Result<(Vec<Subscriber>, Vec<BadRow>)> {
    let mut rdr = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(r);
    let headers = rdr.headers().map_err(|e| Error::Input(format!("header: {e}")))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(id_c), Some(keys_c)) = (col("subscriber_id"), col("keys")) else {
        return Err(Error::Input("the header needs subscriber_id and keys columns".into()));
    };
    let (name_c, email_c, postal_c, lang_c) = (col("name"), col("email"), col("postal_address"), col("language"));
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                bad.push(BadRow { line, reason: e.to_string() });
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).map(str::to_owned).filter(|s| !s.is_empty());
        let Some(id) = get(Some(id_c)) else {
            bad.push(BadRow { line, reason: "empty subscriber_id".into() });
            continue;
        };
        let keys: Vec<String> = get(Some(keys_c))
            .unwrap_or_default()
            .split([';', ' '])
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect();
        if keys.is_empty() {
            bad.push(BadRow { line, reason: format!("subscriber {id}: no session keys") });
            continue;
        }
        let language = get(lang_c).unwrap_or_else(|| "ja".into()).to_ascii_lowercase();
        if language != "ja" && language != "en" {
            bad.push(BadRow { line, reason: format!("subscriber {id}: language {language:?} is not ja or en") });
            continue;
        }
        let email = get(email_c);
        if let Some(e) = &email
            && e.parse::<lettre::Address>().is_err()
        {
            bad.push(BadRow { line, reason: format!("subscriber {id}: e-mail address {e:?} is invalid") });
            continue;
        }
        let postal_address = get(postal_c);
        if email.is_none() && postal_address.is_none() {
            bad.push(BadRow { line, reason: format!("subscriber {id}: neither email nor postal_address") });
            continue;
        }
        good.push(Subscriber { id, name: get(name_c).unwrap_or_default(), email, postal_address, language, keys });
    }
    Ok((good, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_rows_import_and_bad_rows_are_reported_by_line() {
        let csv = "subscriber_id,keys,name,email,postal_address,language\n\
                   S1,user1@isp;aa:bb:cc:dd:ee:ff,山田 太郎,taro@example.jp,,ja\n\
                   S2,user2,Jane Doe,,\"1-2-3 Chiyoda, Tokyo\",en\n\
                   ,user3,x,x@example.jp,,ja\n\
                   S4,,x,x@example.jp,,ja\n\
                   S5,user5,x,not-an-address,,ja\n\
                   S6,user6,x,x@example.jp,,fr\n\
                   S7,user7,x,,,ja\n";
        let (good, bad) = parse_reader(csv.as_bytes()).expect("parse");
        assert_eq!(good.len(), 2);
        assert_eq!(good[0].keys, ["user1@isp", "aa:bb:cc:dd:ee:ff"]);
        assert_eq!(good[0].name, "山田 太郎");
        assert_eq!(good[1].postal_address.as_deref(), Some("1-2-3 Chiyoda, Tokyo"));
        assert_eq!(good[1].email, None);
        assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), [4, 5, 6, 7, 8]);
        assert!(bad[2].reason.contains("invalid"), "{:?}", bad[2]);
    }
}
