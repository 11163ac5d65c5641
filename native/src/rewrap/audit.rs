//! What rewrap tells the audit trail: one record per selected key, written as each
//! batch finishes (so a crash loses no record of a key it wrote), before the next.

use bson::{Bson, Document, RawDocumentBuf, doc};
use futures_util::TryStreamExt;
use keyshift_core::audit::record::{KeyRecord, Outcome};
use serde_json::Value;

use super::{Job, KeyOutcome, RewrapError, master_key_of};
use crate::audit::Audit;
use crate::key_id;

fn ext(mk: &Document) -> Value {
    Bson::Document(mk.clone()).into_relaxed_extjson()
}

fn failed(e: crate::audit::AuditError) -> RewrapError {
    RewrapError::new(format!(
        "{e}; keys written so far are backed up and proven, and running rewrap again continues"
    ))
}

/// Keys the server counted as already under the target: their ids and master keys
/// (read without their key material), recorded as `already`.
pub async fn already(job: &Job, audit: &Audit, filter: Document) -> Result<(), RewrapError> {
    let mut cursor = job
        .session
        .key_vault
        .clone_with_type::<Document>()
        .find(filter)
        .projection(doc! {"_id": 1, "masterKey": 1})
        .sort(doc! {"_id": 1})
        .await
        .map_err(|e| super::db_fail("reading the keys already under the target", e))?;
    let mut page: Vec<(String, Document)> = Vec::new();
    while let Some(d) = cursor
        .try_next()
        .await
        .map_err(|e| super::db_fail("reading the keys already under the target", e))?
    {
        let id = match d.get("_id") {
            Some(Bson::Binary(b)) => match <[u8; 16]>::try_from(b.bytes.as_slice()) {
                Ok(id) => bson::Uuid::from_bytes(id).to_string(),
                Err(_) => "(non-UUID _id)".into(),
            },
            Some(other) => other.to_string(),
            None => continue,
        };
        page.push((id, d.get_document("masterKey").cloned().unwrap_or_default()));
        if page.len() >= job.session.batch_size.max(100) {
            found_under(audit, &page).await?;
            page.clear();
        }
    }
    found_under(audit, &page).await
}

/// Keys found under the target (`already`): from and to are the same master key.
pub async fn found_under(audit: &Audit, keys: &[(String, Document)]) -> Result<(), RewrapError> {
    let mks: Vec<Value> = keys.iter().map(|(_, mk)| ext(mk)).collect();
    let records: Vec<KeyRecord<'_>> = keys
        .iter()
        .zip(&mks)
        .map(|((id, _), mk)| KeyRecord {
            id,
            from: Some(mk),
            to: Some(mk),
            outcome: Outcome::Already,
            why: None,
            new_id: None,
        })
        .collect();
    audit.keys(&records).await.map_err(failed)
}

/// A batch's outcomes: moved keys go from their old master key to the target; the
/// others stay where they were, with why.
pub async fn batch(
    job: &Job,
    audit: &Audit,
    batch: &[RawDocumentBuf],
    outcomes: &[(String, Option<KeyOutcome>)],
) -> Result<(), RewrapError> {
    let target = ext(&job.session.target);
    let from: std::collections::HashMap<String, Value> = batch
        .iter()
        .map(|d| {
            let mk = master_key_of(d).map(|mk| ext(&mk)).unwrap_or(Value::Null);
            (key_id::text(d), mk)
        })
        .collect();
    let null = Value::Null;
    let records: Vec<KeyRecord<'_>> = outcomes
        .iter()
        .map(|(id, outcome)| {
            let old = from.get(id).unwrap_or(&null);
            let (outcome, why) = match outcome {
                None => (Outcome::Moved, None),
                Some(KeyOutcome::ChangedMeanwhile) => (Outcome::ChangedMeanwhile, None),
                Some(KeyOutcome::NotProven(why)) => (Outcome::NotProven, Some(why.as_str())),
                Some(KeyOutcome::Refused(why)) => (Outcome::Refused, Some(why.as_str())),
            };
            KeyRecord {
                id,
                from: Some(old),
                // Changed meanwhile: by someone else, to what this run did not see.
                to: match outcome {
                    Outcome::Moved => Some(&target),
                    Outcome::ChangedMeanwhile => None,
                    _ => Some(old),
                },
                outcome,
                why,
                new_id: None,
            }
        })
        .collect();
    audit.keys(&records).await.map_err(failed)
}
