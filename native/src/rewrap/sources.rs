//! Before the first write: can the source unwrap every key? One probe per distinct
//! source master key (keys under the same master key share its fate: a disabled or
//! deleted CMK, a permission missing, the wrong region), so the cost is a KMS round
//! trip per master key, not per DEK.
//!
//! A master key the KMS refuses for good (a [`KmsRefusal`]) stops the
//! run before anything is written, and every key under it is named with its masterKey
//! and the KMS's answer, plus a `rewrap.filter` that moves the rest. A probe that fails
//! for another reason (a damaged sample document, a network error after its retries) is
//! left to the run itself, which isolates damaged documents and stops on the network.

use std::collections::BTreeMap;
use std::path::Path;

use bson::{Bson, Document, RawDocumentBuf};

use super::{Job, RewrapError, backup, master_key_of, prove};
use crate::crypt;
use crate::key_id;
use keyshift_core::kms_error::KmsRefusal;

/// One key the source cannot unwrap.
#[derive(Debug, Clone, PartialEq)]
pub struct UnreadableKey {
    /// The key's `_id` (UUID text).
    pub id: String,
    /// Its masterKey.
    pub master_key: Document,
    /// What the KMS answered for this master key.
    pub error: String,
    /// What that answer means.
    pub refusal: KmsRefusal,
}

/// Every key under a master key the source cannot unwrap with, and how to move the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    /// Every such key, in backup (`_id`) order.
    pub keys: Vec<UnreadableKey>,
    /// A `rewrap.filter` selecting the other keys.
    pub filter: String,
}

/// Probes each distinct source master key of the keys in the backup at `path`.
/// Ok(None): every master key unwraps (or failed for a reason the run handles itself).
pub async fn check(job: &Job, path: &Path) -> Result<Option<Unreadable>, RewrapError> {
    // One sample per master key (extended JSON text as the map key: memory is bounded
    // by the number of distinct master keys, not of keys).
    let mut samples: BTreeMap<String, (Document, RawDocumentBuf)> = BTreeMap::new();
    let mut reader = backup::BackupReader::open(path).map_err(RewrapError::new)?;
    loop {
        let batch = reader
            .next_batch(job.session.batch_size)
            .map_err(RewrapError::new)?;
        if batch.is_empty() {
            break;
        }
        for key in batch {
            if let Some(mk) = master_key_of(&key) {
                let text = Bson::Document(mk.clone())
                    .into_canonical_extjson()
                    .to_string();
                samples.entry(text).or_insert((mk, key));
            }
        }
    }
    let crypt = crypt::build(job.session.kms_providers.expose())
        .map_err(|e| RewrapError::new(format!("libmongocrypt: {e}")))?;
    let mut failing: BTreeMap<String, (String, KmsRefusal)> = BTreeMap::new();
    for (text, (mk, sample)) in &samples {
        let remote = mk
            .get_str("provider")
            .is_ok_and(|p| !p.starts_with("local"));
        if !remote {
            continue; // a local key answers no KMS: a wrong one fails every unwrap alike
        }
        let probe = || prove::readable(&crypt, sample, &job.session.kms);
        if let Err(prove::NotProven {
            why,
            refusal: Some(refusal),
        }) = super::with_retries("a source probe", probe).await
        {
            tracing::warn!(master_key = %text, error = %why, "the source cannot unwrap under this master key");
            failing.insert(text.clone(), (why, refusal));
        }
    }
    if failing.is_empty() {
        return Ok(None);
    }
    let mut keys = Vec::new();
    let mut reader = backup::BackupReader::open(path).map_err(RewrapError::new)?;
    loop {
        let batch = reader
            .next_batch(job.session.batch_size)
            .map_err(RewrapError::new)?;
        if batch.is_empty() {
            break;
        }
        for key in batch {
            let Some(mk) = master_key_of(&key) else {
                continue;
            };
            let text = Bson::Document(mk.clone())
                .into_canonical_extjson()
                .to_string();
            if let Some((error, refusal)) = failing.get(&text) {
                keys.push(UnreadableKey {
                    id: key_id::text(&key),
                    master_key: mk,
                    error: error.clone(),
                    refusal: *refusal,
                });
            }
        }
    }
    let bad: Vec<serde_json::Value> = failing
        .keys()
        .filter_map(|t| samples.get(t))
        .map(|(mk, _)| Bson::Document(mk.clone()).into_relaxed_extjson())
        .collect();
    let user = job.rewrap.filter.as_deref();
    let filter = keyshift_core::select::excluding_master_keys(&bad, user).to_string();
    Ok(Some(Unreadable { keys, filter }))
}

/// The stop for unreadable source keys: the message (text for people) and the keys.
pub fn stop(u: Unreadable) -> RewrapError {
    let masters = u
        .keys
        .iter()
        .map(|k| {
            Bson::Document(k.master_key.clone())
                .into_relaxed_extjson()
                .to_string()
        })
        .collect::<std::collections::BTreeSet<_>>();
    let hint = u.keys.first().map(|k| k.refusal.hint()).unwrap_or_default();
    let message = format!(
        "the source cannot unwrap {} key(s) under {} master key(s) ({}); nothing was written. \
         {hint}. To move every other key now, set in [rewrap]: filter = '{}'",
        u.keys.len(),
        masters.len(),
        masters.into_iter().collect::<Vec<_>>().join(", "),
        u.filter
    );
    RewrapError {
        message,
        refusal: u.keys.first().map(|k| k.refusal),
        unreadable: Some(u),
    }
}
