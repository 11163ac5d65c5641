//! Rotate: replace DEKs and re-encrypt every field under them (the exposed-key path).
//! Rewrap keeps the DEKs; rotate is for when whoever held the old master key may hold
//! the DEKs too (docs/rotate.md).
//!
//! In order ([`run`]):
//! 1. Old keys ([`keys::select_old`]): `[rewrap] filter` (default: not under the
//!    target) minus replacements, minus keys a Queryable Encryption collection names
//!    (rotate cannot re-encrypt QE values; `keyshift rewrap` moves those keys). Backed up (`rotate-<run>.jsonl`, rewrap's format,
//!    fsynced, 0600) before any write.
//! 2. Replacements ([`keys::ensure`]): deterministic `_id`s, made under the target,
//!    proven through the target alone, backed up (`rotate-<run>-created.jsonl`), then
//!    inserted; a lost insert race takes the winner's key.
//! 3. Validators ([`validators`]): each collection's `$jsonSchema` key ids old → new
//!    (collMod only when it changed). Queryable Encryption collections are refused
//!    before anything is written. Then the old keys' keyAltNames move to the
//!    replacements ([`alt_names`]), so applications that choose keys by name or by
//!    schema switch to the new keys at once.
//! 4. Values ([`collection`]): each collection in `_id` order (within this worker's
//!    [`partition`]), in batches; every value under an old key decrypted and encrypted
//!    again under its replacement with the same algorithm ([`reencrypt`]), written back
//!    compare-and-swap ([`scan`]). Values already under a replacement are skipped, so
//!    reruns converge and overlapping workers are harmless.
//! 5. The rewritten schemaMap, for applications.
//!
//! `dry_run` does everything but write: keys are made and proven in memory, values
//! decrypted and re-encrypted, no backup, insert, collMod or update.
//!
//! [`retire`] deletes old keys once nothing needs them.

pub mod alt_names;
pub mod collection;
pub mod fault;
pub mod keys;
pub mod partition;
pub mod reencrypt;
pub mod retire;
pub mod scan;
pub mod validators;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use bson::RawDocumentBuf;
use keyshift_core::rotate::partition::Partition;
use keyshift_core::rotate::scope::{self, Scope};

use crate::key_id;
use crate::rewrap::backup;
use crate::session::Session;

/// Everything a rotation needs, resolved.
pub struct Job {
    /// The key vault, providers, target, selection, KMS transport and backups.
    pub session: Session,
    /// The collections to scan.
    pub namespaces: Vec<String>,
    /// This worker's share of each collection.
    pub partition: Partition,
    /// Do everything but write.
    pub dry_run: bool,
    /// The audit trail (`None` in a dry run): each replacement is recorded once made,
    /// before any value is re-encrypted under it.
    pub audit: Option<crate::audit::Audit>,
    /// Skip Queryable Encryption collections (by their options or by a value met in the
    /// scan) instead of refusing them: with `--all-collections`, which finds them;
    /// listing one by name is refused.
    pub skip_queryable: bool,
}

/// One old key and its replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyReport {
    /// Old DEK id.
    pub old: [u8; 16],
    /// Replacement id.
    pub new: [u8; 16],
    /// Made by this run (dry run: would be).
    pub created: bool,
}

/// What happened in one collection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectionReport {
    /// `db.coll`.
    pub namespace: String,
    /// Documents read.
    pub scanned: u64,
    /// Values re-encrypted and written (dry run: that would be).
    pub reencrypted: u64,
    /// Values already under a replacement.
    pub already_replaced: u64,
    /// Documents whose compare-and-swap missed (re-read and retried).
    pub changed_meanwhile: u64,
    /// The validator was (dry run: would be) rewritten.
    pub validator_updated: bool,
    /// Values that could not be re-encrypted or written (see `errors`).
    pub failed: u64,
    /// The first few reasons (no secret: paths, ids, libmongocrypt messages).
    pub errors: Vec<String>,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// A dry run.
    pub dry_run: bool,
    /// This worker's partition, when split.
    pub partition: Option<Partition>,
    /// Every old key with its replacement.
    pub keys: Vec<KeyReport>,
    /// Per collection.
    pub collections: Vec<CollectionReport>,
    /// namespace → rewritten `$jsonSchema` (canonical extended JSON).
    pub schema_map: serde_json::Map<String, serde_json::Value>,
    /// JSON-pointer keyIds left as they are: (namespace, pointer).
    pub pointers: Vec<(String, String)>,
    /// The old keys' backup.
    pub backup: Option<PathBuf>,
    /// The created keys' backup.
    pub created_backup: Option<PathBuf>,
    /// keyAltNames moved from old keys to their replacements by this run.
    pub alt_names_moved: u64,
    /// Keys in scope left alone because a Queryable Encryption collection uses them.
    pub queryable_keys_left: u64,
    /// Queryable Encryption collections skipped (`--all-collections`).
    pub queryable_skipped: Vec<String>,
    /// Why, for those found by their values rather than their options.
    pub skipped_because: Vec<String>,
}

/// Why a run stopped.
#[derive(Debug)]
pub enum RotateError {
    /// Failed; what was written is proven and backed up (exit 1).
    Failed(String),
    /// Refused: Queryable Encryption in scope, or a bad setting (exit 2).
    Refused(String),
}

impl std::fmt::Display for RotateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RotateError::Failed(m) | RotateError::Refused(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RotateError {}

/// Progress events.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    /// Old keys selected (and backed up).
    OldKeys(u64),
    /// Replacements found or made.
    Replacements {
        /// How many exist now.
        total: u64,
        /// How many this run made.
        created: u64,
    },
    /// A collection's scan starts.
    Collection(&'a str),
    /// Documents read so far in a collection.
    Scanned(&'a str, u64),
}

fn failed(e: impl std::fmt::Display) -> RotateError {
    RotateError::Failed(e.to_string())
}

/// One `replaced` record per old key: from its master key to its replacement's.
async fn record_replacements(
    audit: &crate::audit::Audit,
    pairs: &[keys::Pair],
    key_docs: &HashMap<[u8; 16], RawDocumentBuf>,
) -> Result<(), RotateError> {
    use keyshift_core::audit::record::{KeyRecord, Outcome};
    let master_key = |id: &[u8; 16]| {
        key_docs
            .get(id)
            .and_then(crate::rewrap::master_key_of)
            .map(|mk| crate::audit::master_key_json(&mk))
    };
    let text = |id: &[u8; 16]| bson::Uuid::from_bytes(*id).to_string();
    let records: Vec<KeyRecord> = pairs
        .iter()
        .map(|p| {
            KeyRecord::new(
                text(&p.old),
                master_key(&p.old),
                master_key(&p.new),
                Outcome::Replaced,
            )
            .new_id(text(&p.new))
        })
        .collect();
    audit.keys(&records).await.map_err(|e| {
        failed(format!(
            "{e}; the replacements are made and backed up, and running rotate again continues"
        ))
    })
}

/// Runs a rotation.
pub async fn run(
    job: &Job,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Report, RotateError> {
    let mut report = Report {
        dry_run: job.dry_run,
        partition: (!job.partition.is_whole()).then_some(job.partition),
        ..Report::default()
    };
    // Refuse Queryable Encryption before anything is written.
    let mut infos = Vec::new();
    let mut namespaces = Vec::new();
    for ns in &job.namespaces {
        let info = validators::inspect(&job.session.client, ns)
            .await
            .map_err(failed)?;
        match scope::collection(ns, info.queryable, job.skip_queryable) {
            Scope::Rotate => {
                infos.push(info);
                namespaces.push(ns.clone());
            }
            Scope::Skip => report.queryable_skipped.push(ns.clone()),
            Scope::Refuse(why) => return Err(RotateError::Refused(why)),
        }
    }

    // 1. Old keys, backed up.
    let old_docs = keys::select_old(
        &job.session.key_vault,
        &job.session.filter,
        job.session.explicit_filter,
        &job.session.target,
    )
    .await
    .map_err(failed)?;
    // Keys a Queryable Encryption collection names stay as they are (rewrap moves them).
    let queryable = validators::queryable_keys(&job.session.client, &job.session.key_vault_ns)
        .await
        .map_err(failed)?;
    let before = old_docs.len();
    let old_docs: Vec<RawDocumentBuf> = old_docs
        .into_iter()
        .filter(|d| scope::replaces_key(key_id::of(d).as_ref(), &queryable))
        .collect();
    report.queryable_keys_left = (before - old_docs.len()) as u64;
    progress(Progress::OldKeys(old_docs.len() as u64));
    let header = backup::Header {
        key_vault: job.session.key_vault_ns.clone(),
        target: job.session.target.clone(),
        run_id: job.session.run_id.clone(),
    };
    if !job.dry_run && !old_docs.is_empty() {
        let path = keys::write_backup(
            &job.session.backup_dir,
            &format!("rotate-{}", job.session.run_id),
            &header,
            &old_docs,
        )
        .map_err(failed)?;
        report.backup = Some(path);
    }

    // 2. Replacements.
    let created_file = if job.dry_run || old_docs.is_empty() {
        None
    } else {
        let created_header = backup::Header {
            run_id: format!("{}-created", job.session.run_id),
            ..header.clone()
        };
        Some(
            keys::BackupFile::create(
                &job.session.backup_dir,
                &format!("rotate-{}-created", job.session.run_id),
                &created_header,
            )
            .map_err(failed)?,
        )
    };
    let ensure = keys::Ensure {
        key_vault: &job.session.key_vault,
        providers: &job.session.kms_providers,
        target_mk: &job.session.target,
        kms: &job.session.kms,
        batch_size: job.session.batch_size,
        dry_run: job.dry_run,
    };
    let (pairs, created_path) = keys::ensure(&ensure, &old_docs, created_file)
        .await
        .map_err(failed)?;
    report.created_backup = created_path;
    progress(Progress::Replacements {
        total: pairs.len() as u64,
        created: pairs.iter().filter(|p| p.created).count() as u64,
    });
    let old: Arc<HashSet<[u8; 16]>> = Arc::new(pairs.iter().map(|p| p.old).collect());
    let mut key_docs: HashMap<[u8; 16], RawDocumentBuf> = HashMap::new();
    for d in old_docs {
        if let Some(id) = key_id::of(&d) {
            key_docs.insert(id, d);
        }
    }
    for p in &pairs {
        key_docs.insert(p.new, p.new_doc.clone());
        report.keys.push(KeyReport {
            old: p.old,
            new: p.new,
            created: p.created,
        });
    }
    if let Some(audit) = &job.audit {
        record_replacements(audit, &pairs, &key_docs).await?;
    }
    drop(pairs);

    // 3. Validators, and the schemaMap.
    let is_old = |id: &[u8; 16]| old.contains(id);
    let mut validator_updated = Vec::new();
    for (ns, info) in namespaces.iter().zip(&infos) {
        let Some(r) = validators::rewrite(info, &is_old) else {
            validator_updated.push(false);
            continue;
        };
        if r.changed && !job.dry_run {
            validators::update(&job.session.client, ns, info, &r.schema)
                .await
                .map_err(failed)?;
        }
        validator_updated.push(r.changed);
        for p in &r.pointers {
            report.pointers.push((ns.clone(), p.clone()));
        }
        report.schema_map.insert(ns.clone(), r.schema);
    }

    // 3b. keyAltNames follow the keys (see alt_names for why now, not at the end).
    let kv_db = job
        .session
        .key_vault_ns
        .split_once('.')
        .map_or(job.session.key_vault_ns.as_str(), |(d, _)| d);
    if !job.dry_run {
        let journal = job
            .session
            .client
            .database(kv_db)
            .collection(alt_names::JOURNAL);
        alt_names::replay(&job.session.key_vault, &journal)
            .await
            .map_err(failed)?;
        for k in &report.keys {
            if let Some(old_doc) = key_docs.get(&k.old) {
                let moved = alt_names::move_one(&job.session.key_vault, &journal, old_doc, &k.new)
                    .await
                    .map_err(failed)?;
                report.alt_names_moved += moved.len() as u64;
            }
        }
    }

    // 4. Values.
    let reenc = Arc::new(
        reencrypt::Reencryptor::new(
            job.session.kms_providers.expose(),
            job.session.kms.clone(),
            key_docs,
        )
        .map_err(failed)?,
    );
    for ((ns, info), updated) in namespaces.iter().zip(&infos).zip(validator_updated) {
        progress(Progress::Collection(ns));
        let mut c = CollectionReport {
            namespace: ns.clone(),
            validator_updated: updated,
            ..CollectionReport::default()
        };
        if info.exists {
            let filter = partition::filter(&job.session.client, kv_db, ns, job.partition)
                .await
                .map_err(failed)?;
            if let Some(filter) = filter {
                let (db, name) = ns.split_once('.').unwrap_or((ns, ""));
                let database = job.session.client.database(db);
                let scanner = collection::Scanner {
                    coll: database.collection(name),
                    db: database,
                    name: name.to_string(),
                    ns: ns.clone(),
                    old: Arc::clone(&old),
                    reenc: Arc::clone(&reenc),
                    dry_run: job.dry_run,
                };
                let each = |ns: &str, n: u64| progress(Progress::Scanned(ns, n));
                let done = match scanner.run(filter, job.session.batch_size, &each).await {
                    // --all-collections: a collection holding Queryable Encryption (or
                    // unknown) blobs is skipped and named, not a reason to stop the rest.
                    Err(RotateError::Refused(why)) if job.skip_queryable => {
                        report.queryable_skipped.push(ns.clone());
                        report.skipped_because.push(why);
                        report.collections.push(c);
                        continue;
                    }
                    other => other?,
                };
                c = CollectionReport {
                    validator_updated: updated,
                    ..done
                };
            }
        }
        report.collections.push(c);
    }
    Ok(report)
}
