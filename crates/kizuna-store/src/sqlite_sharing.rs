//! [`SharingStore`] for [`SqliteStore`] (a child module of `sqlite`: shares its connections).
//!
//! Tables: `sharing_partners`, `sharing_credentials`, `taxii_collections`, `taxii_objects`
//! (one row per object version; `seq` is the store-wide order), `taxii_object_ids` (versions
//! per id), `taxii_status`, `sharing_poll_state`, `sharing_meta` (alias table).

use kizuna_model::{Timestamp, Tlp};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Sql, SqliteStore, limit_sql, u64_sql};
use crate::sharing::{
    CredentialKind, CredentialRecord, NewTaxiiObject, PartnerRecord, PartnerSpec, PartyKind, SharingStore,
    TaxiiCollectionRecord, TaxiiObjectRow,
};
use crate::{Result, StoreError};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS sharing_partners (
    id        INTEGER PRIMARY KEY,
    name      TEXT NOT NULL UNIQUE,
    kind      TEXT NOT NULL,
    groups    TEXT NOT NULL,
    tlp_max   TEXT,
    can_read  TEXT NOT NULL,
    can_write TEXT NOT NULL,
    created   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sharing_credentials (
    partner_id    INTEGER NOT NULL REFERENCES sharing_partners(id),
    kind          TEXT NOT NULL,
    user          TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS taxii_collections (
    id             TEXT PRIMARY KEY,
    title          TEXT NOT NULL,
    description    TEXT NOT NULL,
    default_tlp    TEXT NOT NULL,
    default_groups TEXT NOT NULL,
    no_echo        INTEGER NOT NULL,
    last_added     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS taxii_objects (
    seq          INTEGER PRIMARY KEY,
    collection   TEXT NOT NULL,
    id           TEXT NOT NULL,
    stix_type    TEXT NOT NULL,
    version      INTEGER NOT NULL,
    version_text TEXT NOT NULL,
    spec_version TEXT NOT NULL,
    date_added   INTEGER NOT NULL,
    json         TEXT NOT NULL,
    labels       TEXT NOT NULL,
    UNIQUE (collection, id, version)
);
CREATE INDEX IF NOT EXISTS taxii_objects_added ON taxii_objects (collection, date_added, seq);
CREATE INDEX IF NOT EXISTS taxii_objects_col_seq ON taxii_objects (collection, seq);
CREATE TABLE IF NOT EXISTS taxii_object_ids (
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    n_versions INTEGER NOT NULL,
    PRIMARY KEY (collection, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS taxii_status (id TEXT PRIMARY KEY, json TEXT NOT NULL, created INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sharing_poll_state (remote TEXT PRIMARY KEY, added_after TEXT, updated INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sharing_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"#;

/// Creates the sharing tables if they are missing.
pub(super) fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch(SCHEMA).sql()
}

fn list(v: &[String]) -> String {
    serde_json::Value::from(v.to_vec()).to_string()
}

fn unlist(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|e| super::corrupt("sharing list", e.to_string()))
}

fn tlp(s: &str) -> Result<Tlp> {
    s.parse::<Tlp>().map_err(|e| super::corrupt("sharing TLP", e.to_string()))
}

fn row_object(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaxiiObjectRow> {
    Ok(TaxiiObjectRow {
        seq: r.get::<_, i64>(0)?.max(0) as u64,
        date_added: r.get(1)?,
        n_versions: r.get::<_, i64>(2)?.max(0) as u64,
        object: NewTaxiiObject {
            id: r.get(3)?,
            stix_type: r.get(4)?,
            version: r.get(5)?,
            version_text: r.get(6)?,
            spec_version: r.get(7)?,
            json: r.get(8)?,
            labels_json: r.get(9)?,
        },
    })
}

const OBJECT_COLS: &str = "o.seq, o.date_added, coalesce(i.n_versions, 1), o.id, o.stix_type, o.version, o.version_text, o.spec_version, o.json, o.labels";

impl SharingStore for SqliteStore {
    fn add_partner(&self, spec: &PartnerSpec, now: Timestamp) -> Result<PartnerRecord> {
        self.write_sql(|c| {
            let n = c
                .execute(
                    "INSERT INTO sharing_partners (name, kind, groups, tlp_max, can_read, can_write, created)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(name) DO NOTHING",
                    params![
                        spec.name,
                        spec.kind.as_str(),
                        list(&spec.groups),
                        spec.tlp_max.map(|t| t.as_str()),
                        list(&spec.can_read),
                        list(&spec.can_write),
                        now.as_micros()
                    ],
                )
                .sql()?;
            if n == 0 {
                return Err(StoreError::Conflict(format!("a partner named {:?} exists", spec.name)));
            }
            Ok(PartnerRecord { id: c.last_insert_rowid().max(0) as u64, spec: spec.clone(), created: now })
        })
    }

    fn partners(&self) -> Result<Vec<PartnerRecord>> {
        self.read(|c| {
            let mut st = c
                .prepare("SELECT id, name, kind, groups, tlp_max, can_read, can_write, created FROM sharing_partners ORDER BY id")
                .sql()?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, i64>(7)?,
                    ))
                })
                .sql()?;
            let mut out = Vec::new();
            for row in rows {
                let (id, name, kind, groups, tlp_max, can_read, can_write, created) = row.sql()?;
                out.push(PartnerRecord {
                    id: id.max(0) as u64,
                    spec: PartnerSpec {
                        name,
                        kind: if kind == "member" { PartyKind::Member } else { PartyKind::Partner },
                        groups: unlist(&groups)?,
                        tlp_max: tlp_max.as_deref().map(tlp).transpose()?,
                        can_read: unlist(&can_read)?,
                        can_write: unlist(&can_write)?,
                    },
                    created: Timestamp::from_micros(created),
                });
            }
            Ok(out)
        })
    }

    fn add_partner_credential(&self, cred: &CredentialRecord) -> Result<()> {
        self.write_sql(|c| {
            let id: Option<i64> = c
                .query_row("SELECT id FROM sharing_partners WHERE name = ?1", [&cred.partner], |r| r.get(0))
                .optional()
                .sql()?;
            let id = id.ok_or_else(|| StoreError::NotFound(format!("partner {:?}", cred.partner)))?;
            let kind = match cred.kind {
                CredentialKind::Basic => "basic",
                CredentialKind::Key => "key",
            };
            c.execute(
                "INSERT INTO sharing_credentials (partner_id, kind, user, secret_sha256, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, kind, cred.user, cred.secret_sha256, cred.created.as_micros()],
            )
            .sql()?;
            Ok(())
        })
    }

    fn partner_credentials(&self) -> Result<Vec<CredentialRecord>> {
        self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT p.name, c.kind, c.user, c.secret_sha256, c.created FROM sharing_credentials c
                     JOIN sharing_partners p ON p.id = c.partner_id ORDER BY c.rowid",
                )
                .sql()?;
            let rows = st
                .query_map([], |r| {
                    Ok(CredentialRecord {
                        partner: r.get(0)?,
                        kind: if r.get::<_, String>(1)? == "key" { CredentialKind::Key } else { CredentialKind::Basic },
                        user: r.get(2)?,
                        secret_sha256: r.get(3)?,
                        created: Timestamp::from_micros(r.get(4)?),
                    })
                })
                .sql()?;
            rows.map(|r| r.sql()).collect()
        })
    }

    fn put_taxii_collection(&self, col: &TaxiiCollectionRecord) -> Result<()> {
        self.write_sql(|c| {
            c.execute(
                "INSERT INTO taxii_collections (id, title, description, default_tlp, default_groups, no_echo)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(id) DO UPDATE SET title = excluded.title, description = excluded.description,
                   default_tlp = excluded.default_tlp, default_groups = excluded.default_groups, no_echo = excluded.no_echo",
                params![col.id, col.title, col.description, col.default_tlp.as_str(), list(&col.default_groups), col.no_echo],
            )
            .sql()?;
            Ok(())
        })
    }

    fn taxii_collections(&self) -> Result<Vec<TaxiiCollectionRecord>> {
        self.read(|c| {
            let mut st = c
                .prepare("SELECT id, title, description, default_tlp, default_groups, no_echo FROM taxii_collections ORDER BY id")
                .sql()?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, bool>(5)?,
                    ))
                })
                .sql()?;
            let mut out = Vec::new();
            for row in rows {
                let (id, title, description, t, g, no_echo) = row.sql()?;
                out.push(TaxiiCollectionRecord {
                    id,
                    title,
                    description,
                    default_tlp: tlp(&t)?,
                    default_groups: unlist(&g)?,
                    no_echo,
                });
            }
            Ok(out)
        })
    }

    fn add_taxii_objects(&self, collection: &str, objects: &[NewTaxiiObject], date_added: i64) -> Result<Vec<bool>> {
        self.write_sql(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let last: Option<i64> = tx
                .query_row("SELECT last_added FROM taxii_collections WHERE id = ?1", [collection], |r| r.get(0))
                .optional()
                .sql()?;
            let last = last.ok_or_else(|| StoreError::NotFound(format!("TAXII collection {collection:?}")))?;
            let added = date_added.max(last);
            let mut out = Vec::with_capacity(objects.len());
            {
                let mut ins = tx
                    .prepare_cached(
                        "INSERT INTO taxii_objects (collection, id, stix_type, version, version_text, spec_version, date_added, json, labels)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(collection, id, version) DO NOTHING",
                    )
                    .sql()?;
                let mut ids = tx
                    .prepare_cached(
                        "INSERT INTO taxii_object_ids (collection, id, n_versions) VALUES (?1, ?2, 1)
                         ON CONFLICT(collection, id) DO UPDATE SET n_versions = n_versions + 1",
                    )
                    .sql()?;
                for o in objects {
                    let n = ins
                        .execute(params![
                            collection,
                            o.id,
                            o.stix_type,
                            o.version,
                            o.version_text,
                            o.spec_version,
                            added,
                            o.json,
                            o.labels_json
                        ])
                        .sql()?;
                    if n == 1 {
                        ids.execute(params![collection, o.id]).sql()?;
                    }
                    out.push(n == 1);
                }
            }
            tx.execute("UPDATE taxii_collections SET last_added = ?2 WHERE id = ?1", params![collection, added]).sql()?;
            tx.commit().sql()?;
            Ok(out)
        })
    }

    fn taxii_objects_after(
        &self,
        collection: &str,
        after_seq: u64,
        added_after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<TaxiiObjectRow>> {
        self.read(|c| {
            let sql = format!(
                "SELECT {OBJECT_COLS} FROM taxii_objects o
                 LEFT JOIN taxii_object_ids i ON i.collection = o.collection AND i.id = o.id
                 WHERE o.collection = ?1 AND o.seq > ?2 AND o.date_added > ?3 ORDER BY o.seq LIMIT ?4"
            );
            let mut st = c.prepare_cached(&sql).sql()?;
            let rows = st
                .query_map(
                    params![collection, u64_sql(after_seq), added_after.unwrap_or(i64::MIN), limit_sql(limit)],
                    row_object,
                )
                .sql()?;
            rows.map(|r| r.sql()).collect()
        })
    }

    fn taxii_object_versions(&self, collection: &str, id: &str) -> Result<Vec<TaxiiObjectRow>> {
        self.read(|c| {
            let sql = format!(
                "SELECT {OBJECT_COLS} FROM taxii_objects o
                 LEFT JOIN taxii_object_ids i ON i.collection = o.collection AND i.id = o.id
                 WHERE o.collection = ?1 AND o.id = ?2 ORDER BY o.version, o.seq"
            );
            let mut st = c.prepare_cached(&sql).sql()?;
            let rows = st.query_map(params![collection, id], row_object).sql()?;
            rows.map(|r| r.sql()).collect()
        })
    }

    fn delete_taxii_object(&self, collection: &str, id: &str, versions: Option<&[i64]>) -> Result<usize> {
        self.write_sql(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let mut n = 0usize;
            match versions {
                None => {
                    n += tx
                        .execute("DELETE FROM taxii_objects WHERE collection = ?1 AND id = ?2", params![collection, id])
                        .sql()?;
                }
                Some(vs) => {
                    for v in vs {
                        n += tx
                            .execute(
                                "DELETE FROM taxii_objects WHERE collection = ?1 AND id = ?2 AND version = ?3",
                                params![collection, id, v],
                            )
                            .sql()?;
                    }
                }
            }
            tx.execute(
                "UPDATE taxii_object_ids SET n_versions = (SELECT count(*) FROM taxii_objects WHERE collection = ?1 AND id = ?2)
                 WHERE collection = ?1 AND id = ?2",
                params![collection, id],
            )
            .sql()?;
            tx.execute("DELETE FROM taxii_object_ids WHERE collection = ?1 AND id = ?2 AND n_versions = 0", params![collection, id])
                .sql()?;
            tx.commit().sql()?;
            Ok(n)
        })
    }

    fn put_taxii_status(&self, id: &str, json: &str, now: Timestamp) -> Result<()> {
        self.write_sql(|c| {
            c.execute(
                "INSERT INTO taxii_status (id, json, created) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET json = excluded.json",
                params![id, json, now.as_micros()],
            )
            .sql()?;
            Ok(())
        })
    }

    fn taxii_status(&self, id: &str) -> Result<Option<String>> {
        self.read(|c| c.query_row("SELECT json FROM taxii_status WHERE id = ?1", [id], |r| r.get(0)).optional().sql())
    }

    fn set_poll_state(&self, remote: &str, added_after: Option<&str>, now: Timestamp) -> Result<()> {
        self.write_sql(|c| {
            c.execute(
                "INSERT INTO sharing_poll_state (remote, added_after, updated) VALUES (?1, ?2, ?3)
                 ON CONFLICT(remote) DO UPDATE SET added_after = excluded.added_after, updated = excluded.updated",
                params![remote, added_after, now.as_micros()],
            )
            .sql()?;
            Ok(())
        })
    }

    fn poll_state(&self, remote: &str) -> Result<Option<String>> {
        self.read(|c| {
            let v: Option<Option<String>> = c
                .query_row("SELECT added_after FROM sharing_poll_state WHERE remote = ?1", [remote], |r| r.get(0))
                .optional()
                .sql()?;
            Ok(v.flatten())
        })
    }

    fn set_aliases(&self, json: &str) -> Result<()> {
        self.write_sql(|c| {
            c.execute(
                "INSERT INTO sharing_meta (name, value) VALUES ('aliases', ?1)
                 ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                [json],
            )
            .sql()?;
            Ok(())
        })
    }

    fn aliases(&self) -> Result<Option<String>> {
        self.read(|c| {
            c.query_row("SELECT value FROM sharing_meta WHERE name = 'aliases'", [], |r| r.get(0)).optional().sql()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_passes_the_sharing_battery() {
        let s = SqliteStore::open_in_memory().expect("open");
        crate::sharing::conformance::run_all(&s);
        let dir = tempfile::tempdir().expect("tempdir");
        let f = SqliteStore::open(&dir.path().join("k.sqlite")).expect("open file");
        crate::sharing::conformance::run_all(&f);
    }
}
