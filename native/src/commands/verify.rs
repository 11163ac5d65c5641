//! `keyshift verify`: every selected key is under the target and readable through the
//! target provider alone (a probe encrypted with it decrypts). Exit 3 otherwise.

use crate::outln;
use bson::{Document, RawDocumentBuf};
use futures_util::{StreamExt, TryStreamExt, stream};

use super::{CmdResult, Failure, NOT_VERIFIED, OK, key_vault, kms_io, print_json};
use crate::cli::Common;
use crate::key_id;
use crate::rewrap::{master_key_of, prove, target};
use crate::{crypt, settings};

/// Unwraps `keys` through the target provider alone, on a fresh handle (so each is a
/// real KMS unwrap, not a cache hit); returns the keys that failed, with why.
async fn read_all(
    only_target: &Document,
    kms: &crate::kms_io::KmsIo,
    keys: Vec<RawDocumentBuf>,
    concurrency: usize,
) -> Result<Vec<(String, String)>, Failure> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let crypt =
        crypt::build(only_target).map_err(|e| Failure::failed(format!("libmongocrypt: {e}")))?;
    Ok(stream::iter(keys.iter())
        .map(|key| {
            let crypt = &crypt;
            async move {
                prove::readable(crypt, key, kms)
                    .await
                    .err()
                    .map(|e| (key_id::text(key), e.why))
            }
        })
        .buffer_unordered(concurrency)
        .filter_map(|r| async move { r })
        .collect()
        .await)
}

/// A uniform random number in `0..n` (n > 0), from the OS.
fn random_below(n: u64) -> Result<u64, Failure> {
    let bytes = crate::crypto_hooks::random(8)
        .map_err(|e| Failure::failed(format!("random source: {e}")))?;
    let v = u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]));
    Ok(v % n)
}

/// Runs `verify`.
pub async fn run(common: &Common, sample: Option<u64>) -> CmdResult {
    let settings = settings::load(&common.config)?;
    let target_mk = super::require_target(&settings)?;
    let provider = target_mk
        .get_str("provider")
        .unwrap_or_default()
        .to_string();
    let creds = settings
        .kms_providers
        .expose()
        .get(&provider)
        .cloned()
        .ok_or_else(|| Failure::usage(format!("kmsProviders has no {provider:?}")))?;
    let only_target = bson::doc! { provider.as_str(): creds };
    let vault = key_vault(&settings).await?;
    let kms = kms_io(&settings)?;
    let read_err = |e: mongodb::error::Error| {
        Failure::failed(format!(
            "cannot read the key vault: {}",
            super::redact_uri_error(&crate::deployment::describe(&e), settings.uri.expose())
        ))
    };
    let mut cursor = vault
        .find(settings.filter.clone())
        .sort(bson::doc! {"_id": 1})
        .await
        .map_err(read_err)?;
    let (mut checked, mut not_under, mut unreadable) = (0u64, Vec::new(), Vec::new());
    // --sample N: a uniform random sample of the keys under the target (reservoir
    // sampling, so memory stays N keys whatever the key vault's size).
    let mut reservoir: Vec<RawDocumentBuf> = Vec::new();
    let mut under_seen = 0u64;
    let read = |keys: Vec<RawDocumentBuf>| {
        let (only_target, kms) = (&only_target, &kms);
        async move { read_all(only_target, kms, keys, settings.concurrency).await }
    };
    loop {
        let mut batch = Vec::with_capacity(settings.batch_size);
        while batch.len() < settings.batch_size {
            match cursor.try_next().await.map_err(read_err)? {
                Some(k) => batch.push(k),
                None => break,
            }
        }
        if batch.is_empty() {
            break;
        }
        let mut to_read = Vec::new();
        for key in batch {
            checked += 1;
            match (master_key_of(&key), sample) {
                (Some(mk), None)
                    if target::is_under_for(
                        &mk,
                        &target_mk,
                        &settings.config.rewrap_or_default(),
                    ) =>
                {
                    to_read.push(key)
                }
                (Some(mk), Some(n))
                    if target::is_under_for(
                        &mk,
                        &target_mk,
                        &settings.config.rewrap_or_default(),
                    ) =>
                {
                    under_seen += 1;
                    if (reservoir.len() as u64) < n {
                        reservoir.push(key);
                    } else {
                        let j = random_below(under_seen)?;
                        if j < n {
                            reservoir[j as usize] = key;
                        }
                    }
                }
                _ => not_under.push(key_id::text(&key)),
            }
        }
        unreadable.extend(read(to_read).await?);
    }
    for chunk in reservoir.chunks(settings.batch_size.max(1)) {
        unreadable.extend(read(chunk.to_vec()).await?);
    }
    let unwrapped = match sample {
        Some(_) => reservoir.len() as u64,
        None => checked - not_under.len() as u64,
    };
    let ok = not_under.is_empty() && unreadable.is_empty();
    if common.json {
        let unreadable: Vec<_> = unreadable
            .iter()
            .map(|(id, why)| serde_json::json!({"id": id, "error": why}))
            .collect();
        print_json(&serde_json::json!({
            "verified": ok,
            "checked": checked,
            "unwrapped": unwrapped,
            "notUnderTarget": not_under,
            "unreadable": unreadable,
        }));
    } else {
        outln!(
            "{checked} key(s) checked, {unwrapped} unwrapped: {} not under the target, {} unreadable through {provider}",
            not_under.len(),
            unreadable.len()
        );
        const SHOWN: usize = 20;
        for id in not_under.iter().take(SHOWN) {
            outln!("  {id}: not under the target (run `keyshift rewrap`)");
        }
        for (id, why) in unreadable.iter().take(SHOWN) {
            outln!("  {id}: unreadable: {why}");
        }
        let hidden = not_under.len().saturating_sub(SHOWN) + unreadable.len().saturating_sub(SHOWN);
        if hidden > 0 {
            outln!("  ... and {hidden} more (--json lists every key)");
        }
        if ok {
            outln!("verified: every key is under the target and readable through it alone");
        }
    }
    Ok(if ok { OK } else { NOT_VERIFIED })
}
