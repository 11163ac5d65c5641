//! A rotation plan: from what a scan found to the key map, the schema changes, the
//! refusals and the ordered steps `keyshift rotate` takes (and `--dry-run` prints).
//!
//! The native shell gathers the inputs — the old keys in scope with their keyAltNames,
//! for each collection its `$jsonSchema` validator, how many values each key encrypts
//! there, and whether it uses Queryable Encryption — and prints the plan (`--json`
//! serializes it). Every UUID in the output is canonical 8-4-4-4-12 lowercase text.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::ids::{replacement_id, uuid_string};
use super::schema::rewrite_key_ids;
use crate::plan::Step;

/// An old DEK in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldKey {
    /// Its `_id`.
    pub id: [u8; 16],
    /// Its keyAltNames (retire moves them to the replacement).
    pub key_alt_names: Vec<String>,
}

/// What a scan found in one collection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CollectionFindings {
    /// `db.coll`.
    pub namespace: String,
    /// The validator's `$jsonSchema` value (canonical extended JSON), if any.
    pub validator: Option<Value>,
    /// How many encrypted values each key id encrypts (keys outside the scope are
    /// ignored).
    pub values: Vec<([u8; 16], u64)>,
    /// Where they are: (dotted field path, key id, values), when the scan recorded it
    /// (array elements count under the array's path). Informational: totals come from
    /// `values`.
    pub fields: Vec<(String, [u8; 16], u64)>,
    /// Whether it uses Queryable Encryption (`encryptedFields` in its options, or a
    /// Queryable Encryption blob found).
    pub queryable: bool,
}

/// One old key and its replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyChange {
    /// The old key's UUID.
    pub old: String,
    /// The replacement's UUID ([`replacement_id`]).
    pub new: String,
    /// keyAltNames moving from old to new at retire.
    pub key_alt_names: Vec<String>,
    /// Values found under the old key, all collections together.
    pub values: u64,
}

/// A pair of UUIDs, old → new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyPair {
    /// The old key's UUID.
    pub old: String,
    /// The replacement's UUID.
    pub new: String,
}

/// How a collection's validator changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaChange {
    /// The rewritten `$jsonSchema` (also the collection's new schemaMap entry).
    pub schema: Value,
    /// The key ids replaced.
    pub replaced: Vec<KeyPair>,
    /// JSON-pointer keyIds, left as they are.
    pub pointers: Vec<String>,
    /// Whether a collMod is needed.
    pub changed: bool,
}

/// Values under one old key at one field path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// Dotted field path.
    pub path: String,
    /// The old key's UUID.
    pub old: String,
    /// The replacement's UUID.
    pub new: String,
    /// Values to re-encrypt there.
    pub values: u64,
}

/// What rotate does in one collection.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionChange {
    /// `db.coll`.
    pub namespace: String,
    /// Values to re-encrypt (under old keys).
    pub values: u64,
    /// Those values per old key UUID.
    pub by_key: BTreeMap<String, u64>,
    /// The field paths affected, per old key (when the scan recorded them).
    pub fields: Vec<FieldChange>,
    /// The validator change, if the collection has a `$jsonSchema` validator.
    pub schema: Option<SchemaChange>,
}

/// A collection rotate will not touch, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// `db.coll`.
    pub namespace: String,
    /// Why, and what to do instead.
    pub reason: String,
}

/// The whole rotation plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationPlan {
    /// Old keys and their replacements, in input order.
    pub keys: Vec<KeyChange>,
    /// Collections rotate re-encrypts, in input order (refused ones left out).
    pub collections: Vec<CollectionChange>,
    /// Collections rotate refuses (Queryable Encryption): rotate exits 2 if any.
    pub refusals: Vec<Refusal>,
    /// Ordered steps.
    pub steps: Vec<Step>,
    /// Things to know (unused old keys, JSON-pointer keyIds).
    pub notes: Vec<String>,
}

impl RotationPlan {
    /// Whether rotate must refuse to run.
    pub fn is_refused(&self) -> bool {
        !self.refusals.is_empty()
    }

    /// The old → new key map (UUID text).
    pub fn key_map(&self) -> BTreeMap<String, String> {
        self.keys
            .iter()
            .map(|k| (k.old.clone(), k.new.clone()))
            .collect()
    }

    /// The schemaMap for applications: namespace → rewritten `$jsonSchema`.
    pub fn schema_map(&self) -> BTreeMap<String, Value> {
        self.collections
            .iter()
            .filter_map(|c| Some((c.namespace.clone(), c.schema.as_ref()?.schema.clone())))
            .collect()
    }
}

/// The explanation given for a Queryable Encryption collection (also when a scan meets
/// a Queryable Encryption value).
pub fn queryable_refusal(namespace: &str) -> String {
    format!(
        "{namespace} uses Queryable Encryption: keyshift rotate re-encrypts only client-side field level encryption (CSFLE) values. Rotate Queryable Encryption collections with MongoDB's own tools (compactStructuredEncryptionData, or reading and re-inserting the documents with new keys); their DEKs can still be rewrapped with `keyshift rewrap`. Leave {namespace} out of [rotate] collections to rotate the others."
    )
}

fn step(id: &'static str, title: String, why: &str, commands: Vec<String>) -> Step {
    Step {
        id,
        title,
        why: why.to_string(),
        commands,
    }
}

/// Builds the plan from the old keys in scope and what the scan found.
pub fn plan_rotation(old_keys: &[OldKey], collections: &[CollectionFindings]) -> RotationPlan {
    let is_old = |id: &[u8; 16]| old_keys.iter().any(|k| k.id == *id);
    let mut totals: BTreeMap<[u8; 16], u64> = BTreeMap::new();
    let mut changes = Vec::new();
    let mut refusals = Vec::new();
    let mut notes = Vec::new();
    for found in collections {
        if found.queryable {
            refusals.push(Refusal {
                namespace: found.namespace.clone(),
                reason: queryable_refusal(&found.namespace),
            });
            continue;
        }
        let mut by_key = BTreeMap::new();
        let mut values = 0;
        for (id, n) in found.values.iter().filter(|(id, n)| is_old(id) && *n > 0) {
            *totals.entry(*id).or_default() += n;
            *by_key.entry(uuid_string(id)).or_default() += n;
            values += n;
        }
        let schema = found.validator.as_ref().map(|v| {
            let r = rewrite_key_ids(v, is_old);
            for p in &r.pointers {
                notes.push(format!(
                    "{}: a keyId is the JSON pointer {p:?}: such values take their key by keyAltName, which stays on the old key until `keyshift retire` moves it; values written meanwhile are under the old key and are caught by rerunning rotate.",
                    found.namespace
                ));
            }
            SchemaChange {
                changed: r.changed(),
                replaced: r
                    .replaced
                    .iter()
                    .map(|(o, n)| KeyPair {
                        old: uuid_string(o),
                        new: uuid_string(n),
                    })
                    .collect(),
                pointers: r.pointers,
                schema: r.schema,
            }
        });
        let fields = found
            .fields
            .iter()
            .filter(|(_, id, n)| is_old(id) && *n > 0)
            .map(|(path, id, n)| FieldChange {
                path: path.clone(),
                old: uuid_string(id),
                new: uuid_string(&replacement_id(id)),
                values: *n,
            })
            .collect();
        changes.push(CollectionChange {
            namespace: found.namespace.clone(),
            values,
            by_key,
            fields,
            schema,
        });
    }
    let keys: Vec<KeyChange> = old_keys
        .iter()
        .map(|k| KeyChange {
            old: uuid_string(&k.id),
            new: uuid_string(&replacement_id(&k.id)),
            key_alt_names: k.key_alt_names.clone(),
            values: totals.get(&k.id).copied().unwrap_or(0),
        })
        .collect();
    let unused = keys.iter().filter(|k| k.values == 0).count();
    if unused > 0 {
        notes.push(format!(
            "{unused} old key(s) encrypt no value in the collections scanned: they are replaced all the same (applications may use them elsewhere), and retire deletes them only once nothing scanned refers to them."
        ));
    }
    let steps = steps(&keys, &changes);
    RotationPlan {
        keys,
        collections: changes,
        refusals,
        steps,
        notes,
    }
}

fn steps(keys: &[KeyChange], changes: &[CollectionChange]) -> Vec<Step> {
    let validators: Vec<&str> = changes
        .iter()
        .filter(|c| c.schema.as_ref().is_some_and(|s| s.changed))
        .map(|c| c.namespace.as_str())
        .collect();
    let values: u64 = changes.iter().map(|c| c.values).sum();
    let with_values = changes.iter().filter(|c| c.values > 0).count();
    vec![
        step(
            "backup",
            format!("Back up the {} old key(s)", keys.len()),
            "Every key document rotate replaces is saved (rotate-RUN.jsonl in backupDir, 0600, fsynced) before the first write.",
            vec![],
        ),
        step(
            "create-keys",
            format!("Create {} replacement DEK(s) under the target", keys.len()),
            "Each replacement's _id is derived from its old key's, so concurrent or repeated runs create each one once; each is proven (a probe encrypted and decrypted through the target) and saved (rotate-RUN-created.jsonl) before it is inserted.",
            vec![],
        ),
        step(
            "validators",
            format!("Update {} validator(s)", validators.len()),
            "collMod each $jsonSchema validator that names an old key so it names the replacement instead.",
            validators.iter().map(|ns| format!("collMod {ns}")).collect(),
        ),
        step(
            "reencrypt",
            format!("Re-encrypt {values} value(s) in {with_values} collection(s)"),
            "Each value under an old key is decrypted and encrypted again under its replacement with the same algorithm, written with compare-and-swap; values already under a replacement are skipped, so reruns converge. Split large collections between workers with --partition I/N.",
            vec![
                "keyshift rotate --dry-run".into(),
                "keyshift rotate --yes".into(),
                "keyshift rotate --yes --partition \"$JOB_COMPLETION_INDEX/N\"   # N workers at once".into(),
            ],
        ),
        step(
            "schema-map",
            "Give applications the new schemaMap".into(),
            "Applications with a client-side schemaMap must name the replacement keys too, or they keep encrypting new values under the old ones.",
            vec![],
        ),
        step(
            "retire",
            "Retire the old keys".into(),
            "Once no value and no validator refers to an old key, retire moves keyAltNames to the replacements, backs the old keys up and deletes them; if anything still refers to them it exits 3: rerun rotate.",
            vec!["keyshift retire --yes".into()],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotate::schema::uuid_value;
    use serde_json::json;

    const A: [u8; 16] = [0xA1; 16];
    const B: [u8; 16] = [0xB2; 16];
    const C: [u8; 16] = [0xC3; 16];

    fn keys() -> Vec<OldKey> {
        vec![
            OldKey {
                id: A,
                key_alt_names: vec!["tenant-00000".into()],
            },
            OldKey {
                id: B,
                key_alt_names: vec![],
            },
        ]
    }

    fn customers() -> CollectionFindings {
        CollectionFindings {
            namespace: "app.customers".into(),
            validator: Some(json!({"bsonType": "object", "properties": {
                "ssn": {"encrypt": {"keyId": [uuid_value(&A)], "bsonType": "string"}},
                "medical": {"encrypt": {"keyId": "/tenant", "bsonType": "object"}},
            }})),
            values: vec![(A, 10), (C, 4)],
            fields: vec![
                ("ssn".into(), A, 6),
                ("notes".into(), A, 4),
                ("notes".into(), C, 4),
            ],
            queryable: false,
        }
    }

    #[test]
    fn maps_keys_and_counts_values() {
        let orders = CollectionFindings {
            namespace: "app.orders".into(),
            values: vec![(A, 1), (B, 0)],
            ..Default::default()
        };
        let p = plan_rotation(&keys(), &[customers(), orders]);
        assert!(!p.is_refused());
        assert_eq!(p.keys[0].old, uuid_string(&A));
        assert_eq!(p.keys[0].new, uuid_string(&replacement_id(&A)));
        assert_eq!(p.keys[0].values, 11);
        assert_eq!(p.keys[0].key_alt_names, vec!["tenant-00000"]);
        assert_eq!(p.keys[1].values, 0);
        assert_eq!(p.key_map().len(), 2);
        assert_eq!(p.collections[0].values, 10, "C is not in scope");
        assert_eq!(p.collections[0].by_key.len(), 1);
        let fields: Vec<(&str, u64)> = p.collections[0]
            .fields
            .iter()
            .map(|f| (f.path.as_str(), f.values))
            .collect();
        assert_eq!(fields, [("ssn", 6), ("notes", 4)]);
        assert_eq!(p.collections[0].fields[0].new, p.keys[0].new);
        assert_eq!(p.collections[1].values, 1);
        assert!(p.collections[1].schema.is_none());
        let s = p.collections[0].schema.as_ref().unwrap();
        assert!(s.changed);
        assert_eq!(s.pointers, vec!["/tenant"]);
        assert_eq!(
            s.schema["properties"]["ssn"]["encrypt"]["keyId"][0],
            uuid_value(&replacement_id(&A))
        );
        assert_eq!(p.schema_map().len(), 1);
        assert!(p.notes.iter().any(|n| n.contains("/tenant")));
        assert!(p.notes.iter().any(|n| n.starts_with("1 old key(s)")));
        let ids: Vec<&str> = p.steps.iter().map(|s| s.id).collect();
        assert_eq!(
            ids,
            [
                "backup",
                "create-keys",
                "validators",
                "reencrypt",
                "schema-map",
                "retire"
            ]
        );
        assert_eq!(p.steps[2].commands, vec!["collMod app.customers"]);
        assert_eq!(
            p.steps[3].title,
            "Re-encrypt 11 value(s) in 2 collection(s)"
        );
        assert!(
            p.steps[3]
                .commands
                .iter()
                .any(|c| c.contains("--partition"))
        );
        assert_eq!(p.steps[5].commands, vec!["keyshift retire --yes"]);
    }

    #[test]
    fn refuses_queryable_encryption() {
        let qe = CollectionFindings {
            namespace: "app.patients".into(),
            values: vec![(A, 3)],
            queryable: true,
            ..Default::default()
        };
        let p = plan_rotation(&keys(), &[customers(), qe]);
        assert!(p.is_refused());
        assert_eq!(p.refusals.len(), 1);
        let r = &p.refusals[0].reason;
        for needle in [
            "app.patients",
            "Queryable Encryption",
            "only client-side field level encryption",
            "compactStructuredEncryptionData",
            "keyshift rewrap",
        ] {
            assert!(r.contains(needle), "{needle}: {r}");
        }
        assert_eq!(p.collections.len(), 1);
        assert_eq!(p.keys[0].values, 10, "refused collections are not counted");
    }

    #[test]
    fn serializes_with_uuid_text() {
        let p = plan_rotation(&keys(), &[customers()]);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["keys"][0]["old"], "a1a1a1a1-a1a1-a1a1-a1a1-a1a1a1a1a1a1");
        assert_eq!(v["keys"][0]["keyAltNames"][0], "tenant-00000");
        assert_eq!(v["collections"][0]["namespace"], "app.customers");
        assert!(v["collections"][0]["byKey"].is_object());
        assert_eq!(v["collections"][0]["schema"]["changed"], true);
        assert!(v["refusals"].as_array().unwrap().is_empty());
        assert_eq!(v["steps"][0]["id"], "backup");
    }

    #[test]
    fn nothing_to_do() {
        let p = plan_rotation(&[], &[]);
        assert!(p.keys.is_empty() && p.collections.is_empty() && p.notes.is_empty());
        assert_eq!(p.steps.len(), 6);
    }
}
