//! What rewrap tells the audit trail: one record per selected key, written as each
//! batch finishes (so a crash loses no record of a key it wrote), before the next.

use bson::{Document, RawDocumentBuf, doc};
use futures_util::TryStreamExt;
use keyshift_core::audit::record::{KeyRecord, Outcome};

use super::{Job, KeyOutcome, RewrapError, master_key_of};
use crate::audit::{Audit, master_key_json};
use crate::key_id;

fn failed(e: crate::audit::AuditError) -> RewrapError {
    RewrapError::new(format!(
        "{e}; keys written so far are backed up and proven, and running rewrap again continues"
    ))
}

/// A key found under the target: `already`, from and to the same master key.
pub fn already_record(key: &RawDocumentBuf) -> KeyRecord {
    let mk = master_key_of(key).map(|mk| master_key_json(&mk));
    KeyRecord::new(key_id::text(key), mk.clone(), mk, Outcome::Already)
}

/// Keys the server selects as already under the target: their ids and master keys
/// (read without their key material), recorded as `already`. Returns how many.
pub async fn already(job: &Job, audit: &Audit, filter: Document) -> Result<u64, RewrapError> {
    let what = "reading the keys already under the target";
    let mut cursor = job
        .session
        .key_vault
        .find(filter)
        .projection(doc! {"_id": 1, "masterKey": 1})
        .sort(doc! {"_id": 1})
        .await
        .map_err(|e| super::db_fail(what, e))?;
    let (mut page, mut count) = (Vec::new(), 0u64);
    while let Some(key) = cursor
        .try_next()
        .await
        .map_err(|e| super::db_fail(what, e))?
    {
        page.push(already_record(&key));
        count += 1;
        if page.len() >= job.session.batch_size.max(100) {
            record(audit, &page).await?;
            page.clear();
        }
    }
    record(audit, &page).await?;
    Ok(count)
}

/// Appends `records` (a rewrap stops when the trail cannot be written).
pub async fn record(audit: &Audit, records: &[KeyRecord]) -> Result<(), RewrapError> {
    audit.keys(records).await.map_err(failed)
}

/// A batch's outcomes: moved keys go from their old master key to the target; the
/// others stay where they were, with why.
pub async fn batch(
    job: &Job,
    audit: &Audit,
    batch: &[RawDocumentBuf],
    outcomes: &[(String, Option<KeyOutcome>)],
) -> Result<(), RewrapError> {
    let target = master_key_json(&job.session.target);
    let from: std::collections::HashMap<String, Option<serde_json::Value>> = batch
        .iter()
        .map(|d| {
            (
                key_id::text(d),
                master_key_of(d).map(|mk| master_key_json(&mk)),
            )
        })
        .collect();
    let records: Vec<KeyRecord> = outcomes
        .iter()
        .map(|(id, outcome)| {
            let old = from.get(id).cloned().flatten();
            let (outcome, why) = match outcome {
                None => (Outcome::Moved, None),
                Some(KeyOutcome::ChangedMeanwhile) => (Outcome::ChangedMeanwhile, None),
                Some(KeyOutcome::NotProven(why)) => (Outcome::NotProven, Some(why)),
                Some(KeyOutcome::Refused(why)) => (Outcome::Refused, Some(why)),
            };
            // Changed meanwhile: by someone else, to what this run did not see.
            let to = match outcome {
                Outcome::Moved => Some(target.clone()),
                Outcome::ChangedMeanwhile => None,
                _ => old.clone(),
            };
            let record = KeyRecord::new(id.as_str(), old, to, outcome);
            match why {
                Some(why) => record.why(why.as_str()),
                None => record,
            }
        })
        .collect();
    record(audit, &records).await
}
