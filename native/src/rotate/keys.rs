//! The keys of a rotation: which DEKs are old, and their replacements.
//!
//! Old keys: `[rewrap] filter` (default: every key not under the target) minus
//! replacement keys ([`keyshift_core::rotate::ids::is_replacement`]). Each old key's
//! replacement has a deterministic `_id` ([`replacement_id`]); when it is not in the
//! vault yet, a new DEK is made under the target master key (a libmongocrypt data key
//! context), given that `_id`, proven (a probe encrypted with it decrypts, through the
//! target provider alone), appended to the created-keys backup (fsynced), then inserted.
//! Two workers racing to insert the same replacement collide on `_id` (E11000): the
//! loser takes the winner's key, after checking it is under the target.

use super::fault::{Fault, malformed};
use std::collections::HashMap;
use std::path::PathBuf;

use bson::{Bson, Document, RawDocumentBuf, doc};
use futures_util::{StreamExt, TryStreamExt, stream};
use keyshift_core::rotate::ids::{is_replacement, replacement_id, uuid_string};
use mongocrypt::Crypt;
use mongodb::Collection;

use crate::crypt;
use crate::ctx_runner::{self, Keys};
use crate::key_id;
use crate::kms_io::KmsIo;
use crate::rewrap::{backup, master_key_of, prove, target};

/// An old key and its replacement.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The old DEK's id.
    pub old: [u8; 16],
    /// The replacement's id.
    pub new: [u8; 16],
    /// Whether this run made the replacement (in a dry run: would make it).
    pub created: bool,
    /// The replacement's key document (in a dry run, only in memory).
    pub new_doc: RawDocumentBuf,
}

/// The keys in scope: `filter` (or, when `explicit_filter` is false, every key not
/// under `target`), minus replacement keys, in `_id` order.
pub async fn select_old(
    key_vault: &Collection<RawDocumentBuf>,
    filter: &Document,
    explicit_filter: bool,
    target_mk: &Document,
) -> Result<Vec<RawDocumentBuf>, Fault> {
    let mut cursor = key_vault
        .find(filter.clone())
        .sort(doc! {"_id": 1})
        .await
        .map_err(|e| Fault::db("reading the key vault", e))?;
    let mut out = Vec::new();
    while let Some(key) = cursor
        .try_next()
        .await
        .map_err(|e| Fault::db("reading the key vault", e))?
    {
        let Some(id) = key_id::of(&key) else { continue };
        if is_replacement(&id) {
            continue;
        }
        if !explicit_filter
            && master_key_of(&key).is_some_and(|mk| target::is_under(&mk, target_mk))
        {
            continue;
        }
        out.push(key);
    }
    Ok(out)
}

/// Writes `keys` to `dir/<name>.jsonl` in rewrap's backup format (fsynced, 0600).
pub fn write_backup(
    dir: &std::path::Path,
    name: &str,
    header: &backup::Header,
    keys: &[RawDocumentBuf],
) -> Result<PathBuf, backup::BackupError> {
    let mut w = BackupFile::create(dir, name, header)?;
    for k in keys {
        w.push(k)?;
    }
    w.finish()
}

/// A backup file named `<name>.jsonl` in rewrap's format, created exclusively (an
/// existing file or link at that path is never overwritten or written through).
pub struct BackupFile {
    writer: backup::BackupWriter,
    path: PathBuf,
}

impl BackupFile {
    /// Creates `dir/<name>.jsonl` (never overwriting) with rewrap's header.
    pub fn create(
        dir: &std::path::Path,
        name: &str,
        header: &backup::Header,
    ) -> Result<Self, backup::BackupError> {
        let file_name = format!("{name}.jsonl");
        let writer = backup::BackupWriter::create_named(dir, &file_name, header)?;
        Ok(BackupFile {
            writer,
            path: dir.join(file_name),
        })
    }

    /// Appends one key document.
    pub fn push(&mut self, key: &RawDocumentBuf) -> Result<(), backup::BackupError> {
        self.writer.push(key)
    }

    /// Makes everything so far durable.
    pub fn checkpoint(self) -> Result<Self, backup::BackupError> {
        let BackupFile { writer, path } = self;
        Ok(BackupFile {
            writer: writer.checkpoint()?,
            path,
        })
    }

    /// Flushes and fsyncs the file and its directory.
    pub fn finish(self) -> Result<PathBuf, backup::BackupError> {
        self.writer.finish()?;
        Ok(self.path)
    }

    /// Where it is.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// Makes a new DEK under the target with `_id` = `id` (not inserted).
async fn make_key(
    maker: &Crypt,
    target_mk: &Document,
    id: &[u8; 16],
    kms: &KmsIo,
) -> Result<RawDocumentBuf, Fault> {
    let ctx = maker
        .ctx_builder()
        .key_encryption_key(target_mk)
        .and_then(|b| b.build_datakey())
        .map_err(|e| Fault::Crypt(format!("starting a data key: {e}")))?;
    let made = ctx_runner::run(ctx, Keys::Given(&[]), kms)
        .await
        .map_err(|e| Fault::Crypt(format!("making a data key under the target: {e}")))?;
    let made = Document::try_from(made.as_ref()).map_err(malformed)?;
    let mut doc = doc! {"_id": key_id::bson(id)};
    for (k, v) in made {
        if k != "_id" {
            doc.insert(k, v);
        }
    }
    RawDocumentBuf::try_from(&doc).map_err(malformed)
}

/// What [`ensure`] needs.
pub struct Ensure<'a> {
    /// The key vault.
    pub key_vault: &'a Collection<RawDocumentBuf>,
    /// Every configured provider (libmongocrypt form).
    pub providers: &'a crate::secret::SecretDoc,
    /// The target master key.
    pub target_mk: &'a Document,
    /// KMS transport.
    pub kms: &'a KmsIo,
    /// Keys made per durable step (backup checkpoint, then inserts).
    pub batch_size: usize,
    /// Make and prove, but insert nothing and write no backup.
    pub dry_run: bool,
}

/// Finds or makes the replacement of every old key, in `old`'s order. New ones are
/// appended to `created` (fsynced) before they are inserted.
pub async fn ensure(
    e: &Ensure<'_>,
    old: &[RawDocumentBuf],
    mut created: Option<BackupFile>,
) -> Result<(Vec<Pair>, Option<PathBuf>), Fault> {
    let only_target = e
        .providers
        .only_provider_of(e.target_mk)
        .map_err(Fault::Malformed)?;
    let maker = crypt::build(only_target.expose())
        .map_err(|err| Fault::Crypt(format!("libmongocrypt: {err}")))?;
    let prover = crypt::build(only_target.expose())
        .map_err(|err| Fault::Crypt(format!("libmongocrypt: {err}")))?;
    let mut pairs = Vec::with_capacity(old.len());
    let mut any_created = false;
    for chunk in old.chunks(e.batch_size.max(1)) {
        let ids: Vec<[u8; 16]> = chunk.iter().filter_map(|d| key_id::of(d)).collect();
        let news: Vec<[u8; 16]> = ids.iter().map(replacement_id).collect();
        let mut existing = find_keys(e.key_vault, &news).await?;
        // Make and prove the missing ones, concurrently.
        let missing: Vec<[u8; 16]> = news
            .iter()
            .filter(|n| !existing.contains_key(*n))
            .copied()
            .collect();
        let made: Vec<([u8; 16], RawDocumentBuf)> = stream::iter(missing)
            .map(|id| {
                let (maker, prover) = (&maker, &prover);
                async move {
                    let doc = make_key(maker, e.target_mk, &id, e.kms).await?;
                    prove::readable(prover, &doc, e.kms).await.map_err(|err| {
                        Fault::Crypt(format!(
                            "the new key {} could not be proven: {err}",
                            uuid_string(&id)
                        ))
                    })?;
                    Ok::<_, Fault>((id, doc))
                }
            })
            .buffer_unordered(e.kms.concurrency.max(1))
            .try_collect()
            .await?;
        let mut made_here: HashMap<[u8; 16], RawDocumentBuf> = HashMap::new();
        if !made.is_empty() && !e.dry_run {
            let mut w = created
                .take()
                .ok_or_else(|| Fault::Malformed("no created-keys backup".into()))?;
            for (_, doc) in &made {
                w.push(doc)?;
            }
            created = Some(w.checkpoint()?);
            any_created = true;
        }
        for (id, doc) in made {
            if e.dry_run {
                made_here.insert(id, doc);
                continue;
            }
            match insert_key(e.key_vault, &doc).await? {
                true => {
                    made_here.insert(id, doc);
                }
                false => {
                    // Someone else inserted it first: theirs, if it is under the target.
                    let theirs = find_keys(e.key_vault, &[id]).await?;
                    let doc = theirs.get(&id).cloned().ok_or_else(|| {
                        Fault::Malformed(format!(
                            "replacement {} vanished after a race",
                            uuid_string(&id)
                        ))
                    })?;
                    existing.insert(id, doc);
                }
            }
        }
        for (old_id, new_id) in ids.iter().zip(&news) {
            let (doc, was_created) = match made_here.remove(new_id) {
                Some(d) => (d, true),
                None => (
                    existing.remove(new_id).ok_or_else(|| {
                        Fault::Malformed(format!("no replacement for {}", uuid_string(old_id)))
                    })?,
                    false,
                ),
            };
            if !was_created {
                let under =
                    master_key_of(&doc).is_some_and(|mk| target::is_under(&mk, e.target_mk));
                if !under {
                    return Err(Fault::Malformed(format!(
                        "the replacement {} of {} in the key vault is not under the target \
                         master key; someone made it otherwise: inspect it before rotating",
                        uuid_string(new_id),
                        uuid_string(old_id)
                    )));
                }
            }
            pairs.push(Pair {
                old: *old_id,
                new: *new_id,
                created: was_created,
                new_doc: doc,
            });
        }
    }
    let path = match created {
        Some(w) if any_created => Some(w.finish()?),
        Some(w) => {
            let p = w.finish()?;
            let _ = std::fs::remove_file(&p);
            None
        }
        None => None,
    };
    Ok((pairs, path))
}

/// The key documents with these ids that are in the vault.
pub async fn find_keys(
    key_vault: &Collection<RawDocumentBuf>,
    ids: &[[u8; 16]],
) -> Result<HashMap<[u8; 16], RawDocumentBuf>, Fault> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let list: Vec<Bson> = ids.iter().map(key_id::bson).collect();
    let mut cursor = key_vault
        .find(doc! {"_id": {"$in": list}})
        .await
        .map_err(|e| Fault::db("reading the key vault", e))?;
    while let Some(k) = cursor
        .try_next()
        .await
        .map_err(|e| Fault::db("reading the key vault", e))?
    {
        if let Some(id) = key_id::of(&k) {
            out.insert(id, k);
        }
    }
    Ok(out)
}

/// Inserts a key; false when its `_id` is taken (E11000). Durable (writeConcern
/// majority) or an error: a key whose insert was not acknowledged as durable is not
/// counted as made, and the rerun finds it (deterministic ids) or makes it again.
async fn insert_key(
    key_vault: &Collection<RawDocumentBuf>,
    doc: &RawDocumentBuf,
) -> Result<bool, Fault> {
    let result = crate::deployment::retry_transient("inserting a new key", || async {
        key_vault.insert_one(doc.clone()).await
    })
    .await;
    match result {
        Ok(_) => {
            crate::failpoint::hit("rotate.key-inserted");
            Ok(true)
        }
        Err(err) if is_duplicate(&err) => Ok(false),
        Err(err) => Err(Fault::Write(format!(
            "inserting a new key: {}; check the replica set's health, then rerun",
            crate::deployment::describe(&err)
        ))),
    }
}

/// E11000.
pub fn is_duplicate(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|v| v.iter().any(|w| w.code == 11000)),
        ErrorKind::Command(c) => c.code == 11000,
        _ => false,
    }
}
