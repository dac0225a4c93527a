//! Malware family names: vendors name the same family differently, so kizuna keeps one
//! canonical name per family and every alias it is known by. Imports map any alias to the
//! canonical name; exports write the canonical name and list the aliases.
//!
//! The table loads from MISP galaxy cluster files (`{"type": …, "values": [{"value": "Emotet",
//! "meta": {"synonyms": ["Geodo", "Heodo"]}, "uuid": …}]}`), and from kizuna's own simple form
//! (`{"emotet": ["geodo", "heodo"]}`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Why a table file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("alias table: {0}")]
pub struct AliasError(pub String);

/// One family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    /// Canonical name: lower-case, as `malware.name` is written.
    pub canonical: String,
    /// The display form (as the galaxy spells it, e.g. "Emotet").
    pub display: String,
    /// Every other name, lower-case, sorted.
    pub aliases: BTreeSet<String>,
}

/// Canonical names and aliases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AliasTable {
    families: BTreeMap<String, Family>,
    by_name: BTreeMap<String, String>,
}

/// The normal form names are compared in: trimmed, lower-case, inner whitespace single.
pub fn normalise(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

impl AliasTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a family or merges names into it. When an alias already belongs to another family,
    /// the first family keeps it (returned as a conflict for the operator to see).
    pub fn add(&mut self, display: &str, aliases: &[String]) -> Vec<String> {
        let canonical = normalise(display);
        let mut conflicts = Vec::new();
        if canonical.is_empty() {
            return conflicts;
        }
        // A name already known as an alias of another family joins that family.
        let canonical = self.by_name.get(&canonical).cloned().unwrap_or(canonical);
        let fam = self.families.entry(canonical.clone()).or_insert_with(|| Family {
            canonical: canonical.clone(),
            display: display.trim().to_owned(),
            aliases: BTreeSet::new(),
        });
        self.by_name.insert(canonical.clone(), canonical.clone());
        for a in aliases {
            let n = normalise(a);
            if n.is_empty() || n == canonical {
                continue;
            }
            match self.by_name.get(&n) {
                Some(c) if *c != canonical => conflicts.push(format!("{a:?} is already an alias of {c:?}")),
                _ => {
                    fam.aliases.insert(n.clone());
                    self.by_name.insert(n, canonical.clone());
                }
            }
        }
        conflicts
    }

    /// Loads a MISP galaxy cluster file or kizuna's `{canonical: [aliases]}` form; returns the
    /// number of families read and the conflicts found.
    pub fn load_json(&mut self, text: &str) -> Result<(usize, Vec<String>), AliasError> {
        let v: Value = serde_json::from_str(text).map_err(|e| AliasError(format!("not JSON: {e}")))?;
        let mut n = 0;
        let mut conflicts = Vec::new();
        if let Some(values) = v.get("values").and_then(Value::as_array) {
            for (i, c) in values.iter().enumerate() {
                let Some(name) = c.get("value").and_then(Value::as_str) else {
                    conflicts.push(format!("values[{i}] has no \"value\""));
                    continue;
                };
                let syn: Vec<String> = c
                    .pointer("/meta/synonyms")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                conflicts.extend(self.add(name, &syn));
                n += 1;
            }
        } else if let Some(obj) = v.as_object() {
            for (name, a) in obj {
                let syn: Vec<String> = a
                    .as_array()
                    .ok_or_else(|| AliasError(format!("{name:?}: expected an array of aliases")))?
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect();
                conflicts.extend(self.add(name, &syn));
                n += 1;
            }
        } else {
            return Err(AliasError("expected a MISP galaxy cluster object or {name: [aliases]}".into()));
        }
        Ok((n, conflicts))
    }

    /// The canonical name of any known name; unknown names come back normalised.
    pub fn canonical(&self, name: &str) -> String {
        let n = normalise(name);
        self.by_name.get(&n).cloned().unwrap_or(n)
    }

    /// The family of a name, if known.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.by_name.get(&normalise(name)).and_then(|c| self.families.get(c))
    }

    /// Every family, by canonical name.
    pub fn families(&self) -> impl Iterator<Item = &Family> {
        self.families.values()
    }

    /// Number of families.
    pub fn len(&self) -> usize {
        self.families.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    /// kizuna's simple form, for storing the table.
    pub fn to_json(&self) -> Value {
        let m: serde_json::Map<String, Value> = self
            .families
            .values()
            .map(|f| (f.display.clone(), Value::from(f.aliases.iter().cloned().collect::<Vec<_>>())))
            .collect();
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn galaxy_clusters_load_and_map_aliases() {
        let mut t = AliasTable::new();
        let (n, conflicts) = t
            .load_json(
                r#"{"type":"malpedia","values":[
                {"value":"Emotet","uuid":"u1","meta":{"synonyms":["Geodo","Heodo"," emotet "]}},
                {"value":"Mirai","meta":{"synonyms":["Katana"]}},
                {"value":"Okiru","meta":{"synonyms":["Katana"]}},
                {"uuid":"no-value"}]}"#,
            )
            .expect("load");
        assert_eq!(n, 3);
        assert_eq!(conflicts.len(), 2, "{conflicts:?}"); // Katana twice claimed, one cluster without a value
        assert_eq!(t.canonical("HEODO"), "emotet");
        assert_eq!(t.canonical("katana"), "mirai");
        assert_eq!(t.canonical("Unknown  Thing"), "unknown thing");
        assert_eq!(t.family("geodo").map(|f| f.display.as_str()), Some("Emotet"));
        let mut again = AliasTable::new();
        again.load_json(&t.to_json().to_string()).expect("own form");
        assert_eq!(again.canonical("geodo"), "emotet");
        assert!(t.load_json("[1]").is_err());
    }
}
