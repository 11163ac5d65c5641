//! Moving keyAltNames from old DEKs to their replacements, journaled so that no name is
//! ever lost.
//!
//! Rotate moves the names as soon as the replacements exist (right after the
//! validators): applications that pick their key by name (`keyAltName`, or a schema
//! `keyId` pointer such as `"/tenant"`) then encrypt new values under the new keys at
//! once, instead of producing old-key values that only a rerun would catch.
//! Values already written stay readable: decryption finds keys by id, not by name.
//! Retire runs the same move again (a no-op by then) before it verifies.
//!
//! Names are unique across the vault (MongoDB's recommended unique index), so a name
//! cannot be on both keys at once: each move is journaled in `keyshift_alt_names` (key
//! vault database) first, then removed from the old key (compare-and-swap on `_id`,
//! `keyMaterial` and the names), then `$addToSet` on the replacement. A run interrupted in between
//! is completed from the journal by the next one. Concurrent workers doing the same move
//! are harmless: every step is idempotent.

use super::fault::Fault;
use bson::{Bson, Document, RawBsonRef, RawDocumentBuf, doc};
use futures_util::TryStreamExt;
use keyshift_core::rotate::ids::uuid_string;
use mongodb::Collection;

use super::keys;
use crate::key_id;

/// The journal collection (in the key vault's database).
pub const JOURNAL: &str = "keyshift_alt_names";

/// Every step here is idempotent ($unset on a compare-and-swap, $addToSet, delete by
/// id, an insert whose duplicate is accepted): retried through failovers.
async fn retry<T, F, Fut>(f: F) -> Result<T, mongodb::error::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, mongodb::error::Error>>,
{
    crate::deployment::retry_transient("moving keyAltNames", f).await
}

fn f(e: impl std::fmt::Display) -> Fault {
    Fault::Malformed(e.to_string())
}

/// The keyAltNames of a key document.
pub fn of(doc: &RawDocumentBuf) -> Vec<String> {
    match doc.get("keyAltNames") {
        Ok(Some(RawBsonRef::Array(a))) => a
            .into_iter()
            .filter_map(|v| match v {
                Ok(RawBsonRef::String(s)) => Some(s.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn field(doc: &RawDocumentBuf, name: &str) -> Result<Bson, Fault> {
    let d = Document::try_from(doc.as_ref()).map_err(f)?;
    d.get(name)
        .cloned()
        .ok_or_else(|| Fault::Malformed(format!("key document lacks {name}")))
}

/// Completes moves an earlier run journaled but may not have finished.
pub async fn replay(
    key_vault: &Collection<RawDocumentBuf>,
    journal: &Collection<Document>,
) -> Result<(), Fault> {
    let entries: Vec<Document> = journal
        .find(doc! {})
        .await
        .map_err(|e| Fault::db(format!("updating {JOURNAL}"), e))?
        .try_collect()
        .await
        .map_err(|e| Fault::db(format!("updating {JOURNAL}"), e))?;
    for e in entries {
        let new = match e.get("new") {
            Some(Bson::Binary(b)) => <[u8; 16]>::try_from(b.bytes.as_slice()).ok(),
            _ => None,
        };
        let (Some(new), Ok(names)) = (new, e.get_array("keyAltNames").cloned()) else {
            continue;
        };
        // Names still on the old key stay there (that run stopped before removing them;
        // this run moves them again); names on no key go to the replacement.
        let mut to_add = Vec::new();
        for n in names {
            let held = key_vault
                .find_one(doc! {"keyAltNames": &n})
                .await
                .map_err(|e| Fault::db(format!("updating {JOURNAL}"), e))?;
            if held.is_none() {
                to_add.push(n);
            }
        }
        if !to_add.is_empty() {
            retry(|| async {
                key_vault
                    .update_one(
                        doc! {"_id": key_id::bson(&new)},
                        doc! {"$addToSet": {"keyAltNames": {"$each": to_add.clone()}}},
                    )
                    .await
            })
            .await
            .map_err(|e| Fault::db(format!("moving keyAltNames to {}", uuid_string(&new)), e))?;
        }
        let id = e.get("_id").cloned().unwrap_or(Bson::Null);
        retry(|| async { journal.delete_one(doc! {"_id": id.clone()}).await })
            .await
            .map_err(|e| Fault::db(format!("updating {JOURNAL}"), e))?;
    }
    Ok(())
}

/// Moves the names of `old_doc` (as read from the vault) to `new`. Returns the names
/// moved; none when the old key has none or changed since it was read (left for a
/// rerun).
pub async fn move_one(
    key_vault: &Collection<RawDocumentBuf>,
    journal: &Collection<Document>,
    old_doc: &RawDocumentBuf,
    new: &[u8; 16],
) -> Result<Vec<String>, Fault> {
    let names = of(old_doc);
    let Some(old) = key_id::of(old_doc) else {
        return Ok(Vec::new());
    };
    if names.is_empty() {
        return Ok(names);
    }
    let entry = doc! {"_id": key_id::bson(&old), "old": key_id::bson(&old), "new": key_id::bson(new), "keyAltNames": names.clone()};
    match retry(|| async { journal.insert_one(entry.clone()).await }).await {
        Ok(_) => {}
        Err(e) if keys::is_duplicate(&e) => {}
        Err(e) => {
            return Err(Fault::db(format!("writing {JOURNAL}"), e));
        }
    }
    // Every name moves, so the field goes: an empty array would collide in the unique
    // keyAltNames index with other name-less keys (MongoDB indexes [] as one value).
    let cas = doc! {
        "_id": key_id::bson(&old),
        "keyMaterial": field(old_doc, "keyMaterial")?,
        "keyAltNames": names.clone(),
    };
    let pulled = retry(|| async {
        key_vault
            .update_one(cas.clone(), doc! {"$unset": {"keyAltNames": ""}})
            .await
    })
    .await
    .map_err(|e| Fault::db(format!("moving keyAltNames off {}", uuid_string(&old)), e))?;
    crate::failpoint::hit("rotate.alt-names-pulled");
    if pulled.matched_count == 0 {
        // Another worker moved them first (or the key changed meanwhile). The journal
        // entry stays: the worker that moved them clears it, or, had it died between the
        // two writes, the next run's replay finishes its move.
        return Ok(Vec::new());
    }
    retry(|| async {
        key_vault
            .update_one(
                doc! {"_id": key_id::bson(new)},
                doc! {"$addToSet": {"keyAltNames": {"$each": names.clone()}}},
            )
            .await
    })
    .await
    .map_err(|e| Fault::db(format!("moving keyAltNames to {}", uuid_string(new)), e))?;
    retry(|| async { journal.delete_one(doc! {"_id": key_id::bson(&old)}).await })
        .await
        .map_err(|e| Fault::db(format!("updating {JOURNAL}"), e))?;
    Ok(names)
}
