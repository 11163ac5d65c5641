//! Re-encrypting one value: explicit decrypt with its old DEK, explicit encrypt with the
//! replacement DEK and the same algorithm, both through libmongocrypt.
//!
//! One [`Reencryptor`] (one libmongocrypt handle) serves a whole run, so its key cache
//! holds each DEK once it is unwrapped: after a key's first value, its values cost CPU
//! only, no KMS round trip. That CPU work runs on blocking threads, a batch split in
//! one chunk per core ([`Reencryptor::run_batch`]); a value whose key is not cached yet
//! goes through [`ctx_runner`] (key document fed from memory, KMS requests over the
//! network), up to `concurrency` at a time.

use std::collections::HashMap;
use std::sync::Arc;

use bson::{RawBson, RawDocumentBuf};
use futures_util::{StreamExt, stream};
use mongocrypt::Crypt;
use mongocrypt::ctx::{Algorithm, Ctx, State};

use crate::ctx_runner::{self, Keys};
use crate::kms_io::KmsIo;
use keyshift_core::rotate::ids::uuid_string as uuid;

/// Key documents by `_id` (the old keys and their replacements).
pub type KeyDocs = HashMap<[u8; 16], RawDocumentBuf>;

/// How long an unwrapped DEK stays in the handle's cache (libmongocrypt's default is a
/// minute, short for a scan that meets each key again and again).
const KEY_CACHE_MS: u64 = 30 * 60 * 1000;

/// One value to re-encrypt.
#[derive(Debug, Clone)]
pub struct Task {
    /// The subtype 6 payload under the old key.
    pub ciphertext: Vec<u8>,
    /// The old DEK (named in the ciphertext).
    pub old: [u8; 16],
    /// Its replacement.
    pub new: [u8; 16],
    /// The algorithm the value was encrypted with (core's name for it).
    pub algorithm: &'static str,
}

/// Re-encrypts values; shared by every batch of a run.
pub struct Reencryptor {
    crypt: Crypt,
    kms: KmsIo,
    keys: KeyDocs,
}

fn algorithm(name: &str) -> Result<Algorithm, String> {
    match name {
        keyshift_core::rotate::ciphertext::DETERMINISTIC => Ok(Algorithm::Deterministic),
        keyshift_core::rotate::ciphertext::RANDOM => Ok(Algorithm::Random),
        other => Err(format!("unsupported algorithm {other}")),
    }
}

/// Where a value stands after the synchronous attempt.
enum Partial {
    Done(Vec<u8>),
    /// The decrypt context needs the old key (not cached).
    NeedDecrypt(Ctx),
    /// Decrypted; the encrypt context needs the new key (not cached).
    NeedEncrypt(Ctx),
}

fn value_of(out: &bson::RawDocument) -> Result<RawBson, String> {
    out.get("v")
        .map_err(|e| e.to_string())?
        .map(RawBson::from)
        .ok_or_else(|| "libmongocrypt returned no value".to_string())
}

fn ciphertext_of(out: &bson::RawDocument) -> Result<Vec<u8>, String> {
    match value_of(out)? {
        RawBson::Binary(b) => Ok(b.bytes),
        _ => Err("libmongocrypt returned a non-binary ciphertext".into()),
    }
}

/// Finalizes `ctx` if it needs nothing more (its keys are cached).
fn finish_now(ctx: &mut Ctx) -> Result<Option<RawDocumentBuf>, String> {
    let err = |e: mongocrypt::error::Error| e.to_string();
    match ctx.state().map_err(err)? {
        State::Ready => {
            let out = ctx.finalize().map_err(err)?.to_owned();
            Ok(Some(out))
        }
        _ => Ok(None),
    }
}

impl Reencryptor {
    /// A handle for `kms_providers` (the old keys' providers and the target).
    pub fn new(kms_providers: &bson::Document, kms: KmsIo, keys: KeyDocs) -> Result<Self, String> {
        let crypt = crate::crypt::builder(kms_providers)
            .and_then(|b| b.key_cache_expiration(KEY_CACHE_MS))
            .and_then(|b| b.build())
            .map_err(|e| format!("libmongocrypt: {e}"))?;
        Ok(Reencryptor { crypt, kms, keys })
    }

    fn decrypt_ctx(&self, ciphertext: &[u8]) -> Result<Ctx, String> {
        self.crypt
            .ctx_builder()
            .build_explicit_decrypt(ciphertext)
            .map_err(|e| format!("decrypt: {e}"))
    }

    fn encrypt_ctx(&self, task: &Task, plain: RawBson) -> Result<Ctx, String> {
        self.crypt
            .ctx_builder()
            .key_id(&task.new)
            .and_then(|b| b.algorithm(algorithm(task.algorithm).map_err(client_error)?))
            .and_then(|b| b.build_explicit_encrypt(plain))
            .map_err(|e| format!("encrypt: {e}"))
    }

    /// As far as the key cache allows, without any I/O.
    fn attempt(&self, task: &Task) -> Result<Partial, String> {
        let mut decrypt = self.decrypt_ctx(&task.ciphertext)?;
        let Some(plain) = finish_now(&mut decrypt)? else {
            return Ok(Partial::NeedDecrypt(decrypt));
        };
        self.encrypt_plain(task, value_of(&plain)?)
    }

    fn encrypt_plain(&self, task: &Task, plain: RawBson) -> Result<Partial, String> {
        let mut encrypt = self.encrypt_ctx(task, plain)?;
        match finish_now(&mut encrypt)? {
            Some(out) => Ok(Partial::Done(ciphertext_of(&out)?)),
            None => Ok(Partial::NeedEncrypt(encrypt)),
        }
    }

    fn key(&self, id: &[u8; 16], what: &str) -> Result<&[RawDocumentBuf], String> {
        self.keys
            .get(id)
            .map(std::slice::from_ref)
            .ok_or_else(|| format!("no {what} key document for {}", uuid(id)))
    }

    /// Completes a value the cache could not: the missing key unwrapped over the KMS.
    async fn complete(&self, task: &Task, partial: Partial) -> Result<Vec<u8>, String> {
        let partial = match partial {
            Partial::NeedDecrypt(ctx) => {
                let keys = self.key(&task.old, "old")?;
                let plain = ctx_runner::run(ctx, Keys::Given(keys), &self.kms)
                    .await
                    .map_err(|e| format!("decrypting with {}: {e}", uuid(&task.old)))?;
                self.encrypt_plain(task, value_of(&plain)?)?
            }
            other => other,
        };
        match partial {
            Partial::Done(c) => Ok(c),
            Partial::NeedEncrypt(ctx) => {
                let keys = self.key(&task.new, "replacement")?;
                let out = ctx_runner::run(ctx, Keys::Given(keys), &self.kms)
                    .await
                    .map_err(|e| format!("encrypting with {}: {e}", uuid(&task.new)))?;
                ciphertext_of(&out)
            }
            Partial::NeedDecrypt(_) => Err("libmongocrypt asked for a key twice".into()),
        }
    }

    /// Re-encrypts every task; the results are in the tasks' order. The first task of
    /// each key pair goes first (so its keys are unwrapped once, not once per value),
    /// then the rest in one CPU chunk per core; anything still missing a key goes
    /// through the KMS, up to `concurrency` at a time.
    pub async fn run_batch(
        self: &Arc<Self>,
        tasks: Arc<Vec<Task>>,
    ) -> Vec<Result<Vec<u8>, String>> {
        let mut results: Vec<Option<Result<Vec<u8>, String>>> = vec![None; tasks.len()];
        let mut firsts = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, t) in tasks.iter().enumerate() {
            if seen.insert((t.old, t.new)) {
                firsts.push(i);
            }
        }
        // Key pairs first: any that needs the KMS does so once.
        let done = self.run_indices(&tasks, firsts.clone()).await;
        for (i, r) in done {
            results[i] = Some(r);
        }
        let rest: Vec<usize> = (0..tasks.len()).filter(|i| results[*i].is_none()).collect();
        for (i, r) in self.run_indices(&tasks, rest).await {
            results[i] = Some(r);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err("value not processed".into())))
            .collect()
    }

    async fn run_indices(
        self: &Arc<Self>,
        tasks: &Arc<Vec<Task>>,
        indices: Vec<usize>,
    ) -> Vec<(usize, Result<Vec<u8>, String>)> {
        if indices.is_empty() {
            return Vec::new();
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let chunk = indices.len().div_ceil(cores).max(1);
        let mut handles = Vec::new();
        for part in indices.chunks(chunk) {
            let (me, tasks, part) = (Arc::clone(self), Arc::clone(tasks), part.to_vec());
            handles.push(tokio::task::spawn_blocking(move || {
                part.into_iter()
                    .map(|i| (i, me.attempt(&tasks[i])))
                    .collect::<Vec<_>>()
            }));
        }
        let mut out = Vec::with_capacity(indices.len());
        let mut pending = Vec::new();
        for h in handles {
            let part = h
                .await
                .unwrap_or_else(|e| vec![(usize::MAX, Err(format!("worker: {e}")))]);
            for (i, r) in part {
                match r {
                    Ok(Partial::Done(c)) => out.push((i, Ok(c))),
                    Ok(p) => pending.push((i, p)),
                    Err(e) => out.push((i, Err(e))),
                }
            }
        }
        out.retain(|(i, _)| *i != usize::MAX);
        let concurrency = self.kms.concurrency.max(1);
        let completed: Vec<(usize, Result<Vec<u8>, String>)> = stream::iter(pending)
            .map(|(i, p)| async move { (i, self.complete(&tasks[i], p).await) })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        out.extend(completed);
        out
    }
}

fn client_error(e: String) -> mongocrypt::error::Error {
    mongocrypt::error::Error {
        kind: mongocrypt::error::ErrorKind::Client,
        code: None,
        message: Some(e),
    }
}
