//! AWS → AWS moves by `ReEncrypt`: the DEK is decrypted and re-encrypted inside AWS KMS
//! and never reaches keyshift. Which keys qualify is core's decision
//! ([`keyshift_core::reencrypt::eligible`]); the new wrapping is then proven like any
//! other (promise 1: a probe sealed under the new wrapping opens under the old), so a
//! key costs ReEncrypt + two Decrypts instead of Decrypt + Encrypt + two Decrypts.

use std::collections::HashSet;

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, RawDocumentBuf, doc};
use futures_util::{StreamExt, TryStreamExt, stream};
use keyshift_core::retry::Backoff;

use super::{Job, RewrapError, master_key_of};
use crate::aws::ReEncryptError;
use crate::kms_io::KmsIo;

/// Indices (in `batch`) of the keys `ReEncrypt` can move to the job's target.
pub fn eligible(job: &Job, batch: &[RawDocumentBuf]) -> Vec<usize> {
    if job.reencrypt.is_none() {
        return Vec::new();
    }
    let target = Bson::Document(job.session.target.clone()).into_relaxed_extjson();
    batch
        .iter()
        .enumerate()
        .filter(|(_, key)| {
            master_key_of(key).is_some_and(|mk| {
                keyshift_core::reencrypt::eligible(
                    &Bson::Document(mk).into_relaxed_extjson(),
                    &target,
                )
            })
        })
        .map(|(i, _)| i)
        .collect()
}

/// The keys at `indices`, each re-encrypted under the target by one `ReEncrypt` (up to
/// `kms.concurrency` at once, paced with every other request to the provider): each
/// as libmongocrypt's rewrap returns keys (`_id`, `keyMaterial`, `masterKey`), and the
/// ids `[rewrap] reEncryptProofOneIn` leaves unproven (none by default).
pub async fn re_encrypt(
    job: &Job,
    batch: &[RawDocumentBuf],
    indices: &[usize],
    kms: &KmsIo,
) -> Result<(Vec<RawDocumentBuf>, HashSet<[u8; 16]>), RewrapError> {
    let Some(re) = job.reencrypt.as_deref() else {
        return Ok((Vec::new(), HashSet::new()));
    };
    let one_in = job
        .rewrap
        .re_encrypt_proof_one_in
        .map_or(1, |n| u32::try_from(n.max(1)).unwrap_or(u32::MAX));
    let provider = job.session.target.get_str("provider").unwrap_or("aws");
    let moved: Vec<RawDocumentBuf> = stream::iter(indices.iter().map(|&i| &batch[i]))
        .map(|key| async move {
            let blob = match key.get("keyMaterial") {
                Ok(Some(bson::RawBsonRef::Binary(b))) => b.bytes,
                _ => {
                    return Err(RewrapError::new(
                        "a key document without binary keyMaterial",
                    ));
                }
            };
            let new = crate::retry::retry(
                "a ReEncrypt",
                Backoff::KMS_CONTEXT,
                |e: &ReEncryptError| e.refusal.is_none(),
                || {
                    let throttled = |e: &ReEncryptError| e.throttled;
                    kms.pace.paced(provider, throttled, re.re_encrypt(blob))
                },
            )
            .await
            .map_err(|e| match e.refusal {
                Some(refusal) => RewrapError::refused("re-encrypting a key", &e, refusal),
                None => RewrapError::new(format!("re-encrypting a key: {e}")),
            })?;
            let id = bson::Document::try_from(key.as_ref())
                .ok()
                .and_then(|d| d.get("_id").cloned())
                .ok_or_else(|| RewrapError::new("a key document without _id"))?;
            let material = Binary {
                subtype: BinarySubtype::Generic,
                bytes: new,
            };
            let out =
                doc! {"_id": id, "keyMaterial": material, "masterKey": job.session.target.clone()};
            RawDocumentBuf::try_from(&out).map_err(|e| RewrapError::new(e.to_string()))
        })
        .buffer_unordered(kms.concurrency.max(1))
        .try_collect::<Vec<_>>()
        .await?;
    let mut unproven = HashSet::new();
    // The default proves every key: no sample to draw.
    for doc in moved.iter().filter(|_| one_in > 1) {
        let draw = crate::crypto_hooks::random(4)
            .map_err(|e| RewrapError::new(format!("random source: {e}")))?;
        let draw = u32::from_le_bytes([draw[0], draw[1], draw[2], draw[3]]);
        if let Some(id) = crate::key_id::of(doc)
            && !keyshift_core::reencrypt::prove(one_in, draw)
        {
            unproven.insert(id);
        }
    }
    Ok((moved, unproven))
}
