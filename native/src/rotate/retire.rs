//! Retire: delete the old DEKs a rotation replaced, once nothing needs them.
//!
//! In order ([`run`]):
//! 1. Old keys: the keys in scope (as for rotate) whose replacement is in the vault,
//!    never one a Queryable Encryption collection names.
//! 2. Every replacement is under the target and unwraps through the target provider
//!    alone; otherwise nothing is touched.
//! 3. Back up the old key documents (`retire-<run>.jsonl`, fsynced, 0600).
//! 4. Move any keyAltNames still on old keys to the replacements ([`alt_names`]; rotate
//!    normally did it already).
//! 5. Verify: no validator names an old key and a full scan of every collection of every
//!    deployment using the key vault (its own and `[retire] deployments`) finds no
//!    value under one. Otherwise no key is deleted and the counts per
//!    collection are returned (rerun rotate, then retire).
//! 6. Delete each old key (compare-and-swap: `_id` and `keyMaterial`).
//! 7. Re-scan: a value under a deleted key (written meanwhile) gets its key restored
//!    from the backup (without the keyAltNames, which stay on the replacement) and is
//!    reported: nothing is ever made unreadable.

use super::fault::{Fault, malformed};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use bson::{Document, RawDocumentBuf, doc};
use futures_util::{StreamExt, TryStreamExt, stream};
use keyshift_core::rotate::ciphertext::parse_header;
use keyshift_core::rotate::ids::{replacement_id, uuid_string};
use mongodb::{Client, Collection};

use super::alt_names;
use super::keys;
use super::scan::encrypted_values;
use super::validators;
use crate::crypt;
use crate::key_id;
use crate::rewrap::{backup, master_key_of, prove, target};
use crate::session::Session;

/// What retire needs.
pub struct Job {
    /// The key vault, providers, target, selection, KMS transport and backups.
    pub session: Session,
    /// Deployments to verify, the key vault's own first: every collection of each,
    /// whatever rotate was told to cover, since a value anywhere may need an old key.
    pub deployments: Vec<DataDeployment>,
}

/// A deployment whose data may use the key vault.
pub struct DataDeployment {
    /// Its name in reports: `keyVault` for the key vault's own, else the
    /// `[retire] deployments` name.
    pub name: String,
    /// A client with keyshift's read guarantees ([`crate::deployment`]).
    pub client: Client,
    /// Its collections (all but the key vault and keyshift's bookkeeping).
    pub namespaces: Vec<String>,
}

impl DataDeployment {
    /// How a namespace of this deployment is named in reports: as is in the key
    /// vault's own deployment, `NAME:db.coll` in another.
    pub fn label(&self, ns: &str) -> String {
        if self.name == keyshift_core::validate::retire::KEY_VAULT_DEPLOYMENT {
            ns.to_string()
        } else {
            format!("{}:{ns}", self.name)
        }
    }
}

/// One retired key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retired {
    /// The deleted DEK.
    pub old: [u8; 16],
    /// Its replacement.
    pub new: [u8; 16],
    /// Names moved to the replacement.
    pub key_alt_names: Vec<String>,
    /// The deleted key's masterKey (for the audit trail).
    pub master_key: Option<Document>,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Keys deleted.
    pub retired: Vec<Retired>,
    /// References to old keys left, per namespace (values; a validator naming an old
    /// key counts one per key). Non-empty: nothing was retired (or keys were restored).
    pub remaining: BTreeMap<String, u64>,
    /// The backup of the retired keys.
    pub backup: Option<PathBuf>,
    /// Keys restored because a value under them appeared meanwhile.
    pub restored: Vec<[u8; 16]>,
    /// Replacements that failed verification (id, why).
    pub unproven: Vec<(String, String)>,
}

fn f(e: impl std::fmt::Display) -> Fault {
    Fault::Malformed(e.to_string())
}

/// Values under each of `old` per collection (a full scan of every deployment),
/// keyed by [`DataDeployment::label`].
async fn count_references(
    deployments: &[DataDeployment],
    old: &HashSet<[u8; 16]>,
    batch_size: usize,
) -> Result<BTreeMap<String, (u64, HashSet<[u8; 16]>)>, Fault> {
    let mut out = BTreeMap::new();
    for d in deployments {
        out.extend(count_in(d, old, batch_size).await?);
    }
    Ok(out)
}

async fn count_in(
    deployment: &DataDeployment,
    old: &HashSet<[u8; 16]>,
    batch_size: usize,
) -> Result<BTreeMap<String, (u64, HashSet<[u8; 16]>)>, Fault> {
    let client = &deployment.client;
    let mut out = BTreeMap::new();
    for ns in &deployment.namespaces {
        let label = deployment.label(ns);
        let Some((db, name)) = ns.split_once('.') else {
            continue;
        };
        let coll: Collection<RawDocumentBuf> = client.database(db).collection(name);
        let mut cursor = coll
            .find(doc! {})
            .batch_size(batch_size.min(u32::MAX as usize) as u32)
            .await
            .map_err(|e| Fault::db(format!("reading {label}"), e))?;
        let (mut n, mut keys) = (0u64, HashSet::new());
        while let Some(d) = cursor
            .try_next()
            .await
            .map_err(|e| Fault::db(format!("reading {label}"), e))?
        {
            for v in encrypted_values(&d).map_err(|e| Fault::Malformed(format!("{label}: {e}")))? {
                if let Ok(h) = parse_header(&v.bytes)
                    && let Some(id) = h.key_id
                    && old.contains(&id)
                {
                    n += 1;
                    keys.insert(id);
                }
            }
        }
        if n > 0 {
            out.insert(label, (n, keys));
        }
    }
    Ok(out)
}

/// Runs retire.
pub async fn run(job: &Job) -> Result<Report, Fault> {
    let mut report = Report::default();
    let kv_db = job
        .session
        .key_vault_ns
        .split_once('.')
        .map_or(job.session.key_vault_ns.as_str(), |(d, _)| d);
    let journal: Collection<Document> = job
        .session
        .client
        .database(kv_db)
        .collection(alt_names::JOURNAL);
    alt_names::replay(&job.session.key_vault, &journal).await?;

    // 1. Old keys whose replacement exists.
    let candidates = keys::select_old(
        &job.session.key_vault,
        &job.session.filter,
        job.session.explicit_filter,
        &job.session.target,
    )
    .await?;
    // Never a key a Queryable Encryption collection names: its values cannot be
    // scanned for key ids here.
    let mut queryable = HashSet::new();
    for d in &job.deployments {
        queryable.extend(validators::queryable_keys(&d.client, &job.session.key_vault_ns).await?);
    }
    let candidates: Vec<RawDocumentBuf> = candidates
        .into_iter()
        .filter(|d| keyshift_core::rotate::scope::replaces_key(key_id::of(d).as_ref(), &queryable))
        .collect();
    let wanted: Vec<[u8; 16]> = candidates
        .iter()
        .filter_map(|d| key_id::of(d))
        .map(|id| replacement_id(&id))
        .collect();
    let mut replacements = HashMap::new();
    for chunk in wanted.chunks(1000) {
        replacements.extend(keys::find_keys(&job.session.key_vault, chunk).await?);
    }
    let olds: Vec<(RawDocumentBuf, RawDocumentBuf)> = candidates
        .into_iter()
        .filter_map(|d| {
            let new = replacements.remove(&replacement_id(&key_id::of(&d)?))?;
            Some((d, new))
        })
        .collect();
    if olds.is_empty() {
        return Ok(report);
    }
    let old_ids: HashSet<[u8; 16]> = olds.iter().filter_map(|(d, _)| key_id::of(d)).collect();

    // 2. Verify: replacements under the target and readable through it alone.
    let only_target = job
        .session
        .kms_providers
        .only_provider_of(&job.session.target)
        .map_err(Fault::Malformed)?;
    let prover = crypt::build(only_target.expose())
        .map_err(|e| Fault::Crypt(format!("libmongocrypt: {e}")))?;
    let unproven: Vec<(String, String)> = stream::iter(olds.iter())
        .map(|(_, new)| {
            let prover = &prover;
            async move {
                let id = uuid_string(&key_id::of(new).unwrap_or_default());
                if !master_key_of(new).is_some_and(|mk| target::is_under(&mk, &job.session.target))
                {
                    return Some((id, "not under the target master key".to_string()));
                }
                prove::readable(prover, new, &job.session.kms)
                    .await
                    .err()
                    .map(|e| (id, e.to_string()))
            }
        })
        .buffer_unordered(job.session.kms.concurrency.max(1))
        .filter_map(|x| async move { x })
        .collect()
        .await;
    if !unproven.is_empty() {
        report.unproven = unproven;
        return Ok(report);
    }
    // 3. Backup, before the first change to any old key (names moved or key deleted).
    let header = backup::Header {
        key_vault: job.session.key_vault_ns.clone(),
        target: job.session.target.clone(),
        run_id: job.session.run_id.clone(),
    };
    let old_docs: Vec<RawDocumentBuf> = olds.iter().map(|(d, _)| d.clone()).collect();
    let back_up = |report: &mut Report| -> Result<(), Fault> {
        if report.backup.is_none() {
            report.backup = Some(
                keys::write_backup(
                    &job.session.backup_dir,
                    &format!("retire-{}", job.session.run_id),
                    &header,
                    &old_docs,
                )
                .map_err(malformed)?,
            );
        }
        Ok(())
    };
    if olds.iter().any(|(d, _)| !alt_names::of(d).is_empty()) {
        back_up(&mut report)?;
    }

    // 4. keyAltNames still on old keys go to the replacements first, so applications
    // that pick keys by name stop writing under the old keys before the final check.
    let mut moved: HashMap<[u8; 16], Vec<String>> = HashMap::new();
    for (old_doc, new_doc) in &olds {
        let (Some(old), Some(new)) = (key_id::of(old_doc), key_id::of(new_doc)) else {
            continue;
        };
        let names = alt_names::move_one(&job.session.key_vault, &journal, old_doc, &new).await?;
        moved.insert(old, names);
    }

    // 5. Nothing may still need an old key.
    let is_old = |id: &[u8; 16]| old_ids.contains(id);
    for d in &job.deployments {
        for ns in &d.namespaces {
            let info = validators::inspect(&d.client, ns).await?;
            let named = validators::old_ids_named(&info, &is_old);
            if !named.is_empty() {
                *report.remaining.entry(d.label(ns)).or_default() += named.len() as u64;
            }
        }
    }
    for (ns, (n, _)) in count_references(&job.deployments, &old_ids, job.session.batch_size).await?
    {
        *report.remaining.entry(ns).or_default() += n;
    }
    if !report.remaining.is_empty() {
        return Ok(report);
    }

    back_up(&mut report)?;

    // 6. Delete, compare-and-swap (the names are gone from the old key by now, so the
    // match is on `_id` and `keyMaterial`).
    let mut deleted: HashMap<[u8; 16], RawDocumentBuf> = HashMap::new();
    for (old_doc, new_doc) in &olds {
        let (Some(old), Some(new)) = (key_id::of(old_doc), key_id::of(new_doc)) else {
            continue;
        };
        let key_material = Document::try_from(old_doc.as_ref())
            .map_err(f)?
            .get("keyMaterial")
            .cloned()
            .ok_or_else(|| Fault::Malformed("key document lacks keyMaterial".into()))?;
        // A retried delete that had landed deletes nothing: the key is then not reported
        // as retired (it is gone, and in the backup); the re-scan below still judges it.
        let cas = doc! {"_id": key_id::bson(&old), "keyMaterial": key_material};
        let gone = crate::deployment::retry_transient("deleting a key", || async {
            job.session.key_vault.delete_one(cas.clone()).await
        })
        .await
        .map_err(|e| not_durable_or(e, &format!("deleting {}", uuid_string(&old))))?;
        if gone.deleted_count == 1 {
            deleted.insert(old, old_doc.clone());
            report.retired.push(Retired {
                old,
                new,
                key_alt_names: moved.remove(&old).unwrap_or_default(),
                master_key: crate::rewrap::master_key_of(old_doc),
            });
        }
    }

    // 7. Re-scan: restore any key a value written meanwhile still needs.
    let gone: HashSet<[u8; 16]> = deleted.keys().copied().collect();
    let late = count_references(&job.deployments, &gone, job.session.batch_size).await?;
    let mut restore: HashSet<[u8; 16]> = HashSet::new();
    for (ns, (n, ids)) in late {
        *report.remaining.entry(ns).or_default() += n;
        restore.extend(ids);
    }
    for id in restore {
        let Some(doc) = deleted.get(&id) else {
            continue;
        };
        let mut d = Document::try_from(doc.as_ref()).map_err(f)?;
        d.remove("keyAltNames");
        let raw = RawDocumentBuf::try_from(&d).map_err(f)?;
        let put_back = crate::deployment::retry_transient("restoring a key", || async {
            job.session.key_vault.insert_one(raw.clone()).await
        })
        .await;
        match put_back {
            Ok(_) => {}
            Err(e) if keys::is_duplicate(&e) => {}
            Err(e) => {
                let e = not_durable_or(e, "the put-back");
                return Err(Fault::Write(format!(
                    "restoring {} from {}: {e}",
                    uuid_string(&id),
                    report
                        .backup
                        .as_ref()
                        .map_or(String::new(), |p| p.display().to_string())
                )));
            }
        }
        report.retired.retain(|r| r.old != id);
        report.restored.push(id);
    }
    Ok(report)
}

/// A write error in words; a write not acknowledged as durable says so and what to do.
fn not_durable_or(e: mongodb::error::Error, what: &str) -> Fault {
    if crate::deployment::is_write_concern_error(&e) {
        Fault::Write(format!(
            "{what}: {}; check the replica set's health, then rerun `keyshift retire`",
            crate::deployment::describe(&e)
        ))
    } else {
        Fault::db(what, e)
    }
}
