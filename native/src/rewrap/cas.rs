//! The one key write: compare-and-swap of `keyMaterial` and `masterKey`, durable.
//!
//! It matches `_id` and the old `keyMaterial`, so a key that someone changed meanwhile
//! is left alone (DESIGN.md promise 3). It goes out with writeConcern majority + journal
//! (the client's, [`crate::deployment`]), and it counts as done only when the server
//! acknowledged that durability: a `writeConcernError` stops the run instead (promise 9).
//! Dropped connections and failovers (a primary stepping down, an election) are retried
//! for up to a minute ([`keyshift_core::retry::Backoff::FAILOVER`]): repeating a compare-and-swap is
//! harmless. rewrap and rollback both write through here.

use bson::{Document, RawDocumentBuf, doc};
use mongodb::Collection;

use crate::deployment;

/// Writes `new`'s `keyMaterial` and `masterKey` over `old` if the key still holds
/// `old`'s `keyMaterial`. Ok(false): someone changed the key meanwhile (left alone).
/// Err: the write failed or is not known to be durable (never counted as done).
pub async fn compare_and_swap(
    key_vault: &Collection<RawDocumentBuf>,
    old: &RawDocumentBuf,
    new: &RawDocumentBuf,
) -> Result<bool, String> {
    let old = Document::try_from(old.as_ref()).map_err(|e| format!("key document: {e}"))?;
    let new = Document::try_from(new.as_ref()).map_err(|e| format!("new key document: {e}"))?;
    let field = |d: &Document, k: &str| {
        d.get(k)
            .cloned()
            .ok_or_else(|| format!("key document lacks {k}"))
    };
    let id = field(&old, "_id")?;
    let filter = doc! {"_id": id.clone(), "keyMaterial": field(&old, "keyMaterial")?};
    let update = doc! {
        "$set": {"keyMaterial": field(&new, "keyMaterial")?, "masterKey": field(&new, "masterKey")?},
        "$currentDate": {"updateDate": true},
    };
    // If an earlier attempt landed and only its reply was lost, the retry matches
    // nothing; the key then holds exactly this wrapping, which is checked (a majority
    // read: the retry's own majority acknowledgement covers the earlier write), so it
    // is not misreported as changed by someone else.
    let mut attempts = 0u32;
    let result = deployment::retry_transient("a key write", || {
        attempts += 1;
        let (filter, update) = (filter.clone(), update.clone());
        async move { key_vault.update_one(filter, update).await }
    })
    .await;
    match result {
        Ok(res) if res.matched_count == 1 => Ok(true),
        Ok(_) if attempts == 1 => Ok(false),
        Ok(_) => {
            let now = key_vault
                .find_one(doc! {"_id": id})
                .await
                .map_err(|e| format!("reading a key back: {}", crate::deployment::describe(&e)))?;
            let Some(now) = now else { return Ok(false) };
            let now = Document::try_from(now.as_ref()).map_err(|e| format!("key document: {e}"))?;
            Ok(now.get("keyMaterial") == new.get("keyMaterial")
                && now.get("masterKey") == new.get("masterKey"))
        }
        Err(e) if deployment::is_write_concern_error(&e) => Err(format!(
            "the key vault applied a key write but did not acknowledge it as durable \
             (writeConcern majority; {}). That key is not counted as done. Check the \
             replica set's health (rs.status()), then rerun: a key whose write became \
             durable is skipped, the others are written again",
            deployment::describe(&e)
        )),
        Err(e) => Err(format!("writing a key: {}", deployment::describe(&e))),
    }
}
