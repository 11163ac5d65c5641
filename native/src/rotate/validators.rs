//! The collections a rotation covers and their `$jsonSchema` validators.
//!
//! [`all_namespaces`] lists every collection (`--all-collections`) except MongoDB's own
//! (`admin`, `local`, `config`, `system.*`), views, the key vault and keyshift's
//! bookkeeping (`keyshift_partitions`, `keyshift_alt_names`). [`inspect`] reads one
//! collection's options (`listCollections`): a Queryable Encryption collection
//! (`encryptedFields`) is refused and its keys are kept out of scope
//! ([`queryable_keys`]), a `$jsonSchema` validator is returned as canonical
//! extended JSON for core's rewrite ([`keyshift_core::rotate::schema`]). [`update`]
//! writes a rewritten validator back (`collMod`), keeping every other validator clause.

use bson::{Bson, Document, doc};
use futures_util::TryStreamExt;
use keyshift_core::rotate::schema;
use mongodb::Client;

use super::fault::Fault;

/// Collections of keyshift's own, in the key vault's database.
pub const BOOKKEEPING: &[&str] = &["keyshift_partitions", "keyshift_alt_names"];

fn split(ns: &str) -> Result<(&str, &str), Fault> {
    ns.split_once('.')
        .filter(|(d, c)| !d.is_empty() && !c.is_empty())
        .ok_or_else(|| Fault::Malformed(format!("{ns:?} is not a db.collection namespace")))
}

/// Every user collection of the deployment, sorted.
pub async fn all_namespaces(client: &Client, key_vault_ns: &str) -> Result<Vec<String>, Fault> {
    let dbs = client
        .list_database_names()
        .await
        .map_err(|e| Fault::db("listDatabases", e))?;
    let (kv_db, _) = split(key_vault_ns)?;
    let mut out = Vec::new();
    for db in dbs {
        if matches!(db.as_str(), "admin" | "local" | "config") {
            continue;
        }
        let mut cursor = client
            .database(&db)
            .list_collections()
            .await
            .map_err(|e| Fault::db(format!("listCollections on {db}"), e))?;
        while let Some(spec) = cursor
            .try_next()
            .await
            .map_err(|e| Fault::db(format!("listCollections on {db}"), e))?
        {
            if spec.collection_type != mongodb::results::CollectionType::Collection {
                continue;
            }
            let ns = format!("{db}.{}", spec.name);
            if spec.name.starts_with("system.")
                || ns == key_vault_ns
                || (db == kv_db && BOOKKEEPING.contains(&spec.name.as_str()))
            {
                continue;
            }
            out.push(ns);
        }
    }
    out.sort();
    Ok(out)
}

/// What a collection's options say.
#[derive(Debug, Clone, Default)]
pub struct Info {
    /// The collection exists.
    pub exists: bool,
    /// It is a Queryable Encryption collection (`encryptedFields`).
    pub queryable: bool,
    /// The DEKs its `encryptedFields` name (Queryable Encryption keys).
    pub queryable_keys: Vec<[u8; 16]>,
    /// The whole validator, if any.
    pub validator: Option<Document>,
}

impl Info {
    /// The validator's `$jsonSchema` as canonical extended JSON.
    pub fn json_schema(&self) -> Option<serde_json::Value> {
        let v = self.validator.as_ref()?.get_document("$jsonSchema").ok()?;
        Some(Bson::Document(v.clone()).into_canonical_extjson())
    }
}

/// A collection's options.
pub async fn inspect(client: &Client, ns: &str) -> Result<Info, Fault> {
    let (db, coll) = split(ns)?;
    // The raw reply: every option as the server holds it (encryptedFields included).
    let reply = client
        .database(db)
        .run_command(doc! {"listCollections": 1, "filter": {"name": coll}})
        .await
        .map_err(|e| Fault::db(format!("listCollections on {db}"), e))?;
    let first = reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .ok()
        .and_then(|b| b.first())
        .and_then(Bson::as_document)
        .cloned();
    let Some(spec) = first else {
        return Ok(Info::default());
    };
    let options = spec.get_document("options").cloned().unwrap_or_default();
    let queryable_keys = options
        .get_document("encryptedFields")
        .and_then(|ef| ef.get_array("fields"))
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| match f.as_document()?.get("keyId")? {
                    Bson::Binary(b) => <[u8; 16]>::try_from(b.bytes.as_slice()).ok(),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Info {
        exists: true,
        queryable: options.contains_key("encryptedFields"),
        queryable_keys,
        validator: options.get_document("validator").ok().cloned(),
    })
}

/// Every DEK a Queryable Encryption collection of the deployment names in its
/// `encryptedFields`. Rotate leaves these keys alone (it cannot re-encrypt QE values)
/// and retire never deletes them.
pub async fn queryable_keys(
    client: &Client,
    key_vault_ns: &str,
) -> Result<std::collections::HashSet<[u8; 16]>, Fault> {
    let mut out = std::collections::HashSet::new();
    for ns in all_namespaces(client, key_vault_ns).await? {
        out.extend(inspect(client, &ns).await?.queryable_keys);
    }
    Ok(out)
}

/// The outcome of rewriting one collection's validator.
#[derive(Debug, Clone)]
pub struct Rewritten {
    /// The rewritten `$jsonSchema` (canonical extended JSON), for the schemaMap.
    pub schema: serde_json::Value,
    /// Whether it differs from the stored one.
    pub changed: bool,
    /// JSON-pointer keyIds (key alt names taken from the document), left alone.
    pub pointers: Vec<String>,
}

/// Rewrites the key ids of `info`'s `$jsonSchema`; None without one.
pub fn rewrite(info: &Info, is_old: &dyn Fn(&[u8; 16]) -> bool) -> Option<Rewritten> {
    let json = info.json_schema()?;
    let r = schema::rewrite_key_ids(&json, is_old);
    Some(Rewritten {
        changed: r.changed(),
        schema: r.schema,
        pointers: r.pointers,
    })
}

/// Writes `schema` as the collection's `$jsonSchema`, keeping the validator's other
/// clauses (collMod).
pub async fn update(
    client: &Client,
    ns: &str,
    info: &Info,
    schema: &serde_json::Value,
) -> Result<(), Fault> {
    let (db, coll) = split(ns)?;
    let new_schema = match Bson::try_from(schema.clone()) {
        Ok(Bson::Document(d)) => d,
        _ => {
            return Err(Fault::Malformed(format!(
                "{ns}: the rewritten $jsonSchema is not a document"
            )));
        }
    };
    let mut validator = info.validator.clone().unwrap_or_default();
    validator.insert("$jsonSchema", new_schema);
    let cmd = doc! {
        "collMod": coll,
        "validator": validator,
        "writeConcern": crate::deployment::write_concern_doc(),
    };
    let reply = crate::deployment::retry_transient("collMod", || async {
        client
            .database(db)
            .run_command(cmd.clone())
            .selection_criteria(crate::deployment::primary())
            .await
    })
    .await
    .map_err(|e| Fault::db(format!("collMod {ns}"), e))?;
    if let Some(wce) = crate::deployment::write_concern_error(&reply) {
        return Err(Fault::Write(format!(
            "collMod {ns}: applied but not acknowledged as durable ({wce}); check the \
             replica set's health, then rerun"
        )));
    }
    crate::failpoint::hit("rotate.validator-updated");
    Ok(())
}

/// Old key ids a collection's validator still names.
pub fn old_ids_named(info: &Info, is_old: &dyn Fn(&[u8; 16]) -> bool) -> Vec<[u8; 16]> {
    info.json_schema()
        .map(|s| {
            schema::key_ids_in(&s)
                .into_iter()
                .filter(|id| is_old(id))
                .collect()
        })
        .unwrap_or_default()
}
