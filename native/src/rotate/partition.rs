//! `--partition I/N` with MongoDB as the only coordinator.
//!
//! The boundaries of a collection split N ways are stored in `keyshift_partitions` (in
//! the key vault's database) as `{_id: "<ns>/<N>", bounds: [b1, ..., b(N-1)], type}`.
//! The first worker computes them: the `_id` type most documents have (`type`, a
//! `$type` alias, "number" for every numeric type), then the `_id`s of that type at
//! the offsets core gives ([`keyshift_core::rotate::partition::bounds_for`]); it
//! inserts them, and a worker that loses the race (E11000) reads the winner's, so every
//! worker splits the same way. Partition i covers `[b_i, b_(i+1))`; `_id`s of another
//! type belong to partition 0.

use bson::{Bson, Document, doc};
use futures_util::TryStreamExt;
use keyshift_core::rotate::partition::{Partition, bounds_for};
use mongodb::{Client, Collection};

use super::keys::is_duplicate;

/// The name of the boundaries collection.
pub const COLLECTION: &str = "keyshift_partitions";

/// The `$type` alias of a BSON value (numbers share one: they compare together).
fn type_alias(v: &Bson) -> &'static str {
    match v {
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => "number",
        Bson::String(_) | Bson::Symbol(_) => "string",
        Bson::ObjectId(_) => "objectId",
        Bson::Binary(_) => "binData",
        Bson::DateTime(_) => "date",
        Bson::Timestamp(_) => "timestamp",
        Bson::Boolean(_) => "bool",
        Bson::Document(_) => "object",
        Bson::Array(_) => "array",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::MinKey => "minKey",
        Bson::MaxKey => "maxKey",
        _ => "javascript",
    }
}

async fn id_at(
    coll: &Collection<Document>,
    filter: Document,
    skip: u64,
) -> Result<Option<Bson>, String> {
    let found = coll
        .find(filter)
        .sort(doc! {"_id": 1})
        .skip(skip)
        .limit(1)
        .projection(doc! {"_id": 1})
        .await
        .map_err(|e| {
            format!(
                "reading _id boundaries: {}",
                crate::deployment::describe(&e)
            )
        })?
        .try_next()
        .await
        .map_err(|e| {
            format!(
                "reading _id boundaries: {}",
                crate::deployment::describe(&e)
            )
        })?;
    Ok(found.and_then(|d| d.get("_id").cloned()))
}

/// Stored (or computed and stored) boundaries: (bounds, type); None for an empty
/// collection (nothing to split yet; partition 0 takes it all).
async fn bounds(
    client: &Client,
    kv_db: &str,
    ns: &str,
    p: Partition,
) -> Result<Option<(Vec<Bson>, String)>, String> {
    let store: Collection<Document> = client.database(kv_db).collection(COLLECTION);
    let key = p.bounds_id(ns);
    let read = |d: &Document| -> Option<(Vec<Bson>, String)> {
        Some((
            d.get_array("bounds").ok()?.clone(),
            d.get_str("type").ok()?.to_string(),
        ))
    };
    if let Some(d) = store
        .find_one(doc! {"_id": &key})
        .await
        .map_err(|e| format!("reading {COLLECTION}: {}", crate::deployment::describe(&e)))?
    {
        return read(&d)
            .map(Some)
            .ok_or_else(|| format!("{COLLECTION} entry {key:?} is malformed"));
    }
    let (db, name) = ns.split_once('.').ok_or("bad namespace")?;
    let coll: Collection<Document> = client.database(db).collection(name);
    let total = coll
        .count_documents(doc! {})
        .await
        .map_err(|e| format!("counting {ns}: {}", crate::deployment::describe(&e)))?;
    let Some(median) = id_at(&coll, doc! {}, total / 2).await? else {
        return Ok(None);
    };
    let ty = type_alias(&median).to_string();
    let of_type = doc! {"_id": {"$type": &ty}};
    let count = coll
        .count_documents(of_type.clone())
        .await
        .map_err(|e| format!("counting {ns}: {}", crate::deployment::describe(&e)))?;
    let mut list = Vec::new();
    for offset in bounds_for(count, p.count) {
        let b = id_at(&coll, of_type.clone(), offset.min(count.saturating_sub(1))).await?;
        list.push(b.ok_or_else(|| format!("{ns} shrank while its boundaries were read"))?);
    }
    let entry = doc! {"_id": &key, "bounds": list.clone(), "type": &ty};
    match store.insert_one(entry).await {
        Ok(_) => Ok(Some((list, ty))),
        Err(e) if is_duplicate(&e) => {
            let d = store
                .find_one(doc! {"_id": &key})
                .await
                .map_err(|e| format!("reading {COLLECTION}: {}", crate::deployment::describe(&e)))?
                .ok_or_else(|| format!("{COLLECTION} entry {key:?} vanished"))?;
            read(&d)
                .map(Some)
                .ok_or_else(|| format!("{COLLECTION} entry {key:?} is malformed"))
        }
        Err(e) => Err(format!("writing {COLLECTION}: {e}")),
    }
}

/// The filter selecting partition `p` of `ns` (an empty filter for the whole).
/// `None`: this partition is empty (the collection was empty when it was split).
pub async fn filter(
    client: &Client,
    kv_db: &str,
    ns: &str,
    p: Partition,
) -> Result<Option<Document>, String> {
    if p.is_whole() {
        return Ok(Some(Document::new()));
    }
    let Some((bounds, ty)) = bounds(client, kv_db, ns, p).await? else {
        return Ok((p.index == 0).then(Document::new));
    };
    let (lower, upper) = p.range();
    let mut range = Document::new();
    if let Some(l) = lower.and_then(|i| bounds.get(i)) {
        range.insert("$gte", l.clone());
    }
    if let Some(u) = upper.and_then(|i| bounds.get(i)) {
        range.insert("$lt", u.clone());
    }
    range.insert("$type", ty.as_str());
    Ok(Some(if p.index == 0 {
        doc! {"$or": [{"_id": range}, {"_id": {"$not": {"$type": ty.as_str()}}}]}
    } else {
        doc! {"_id": range}
    }))
}
