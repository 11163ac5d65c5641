//! `keyshift rollback --backup FILE`: put keys back as a rewrap backup recorded them.
//!
//! Only keys that are still exactly as that rewrap left them (under the backup's
//! target) are restored, each with a compare-and-swap on their current `keyMaterial`;
//! keys already restored are skipped, keys changed since are left alone and reported.
//! Before each batch is written, the keys it overwrites are appended to a new backup
//! (fsynced), so a rollback can itself be rolled back.

use crate::outln;
use bson::{Bson, Document, RawDocumentBuf, doc};

use super::{CmdResult, FAILED, Failure, OK, confirm, print_json, run_id};
use crate::cli::Common;
use crate::key_id;
use crate::rewrap::{backup, cas, target};
use crate::settings;
use keyshift_core::audit::record::{KeyRecord, Outcome};

fn doc_of(raw: &RawDocumentBuf) -> Result<Document, Failure> {
    Document::try_from(raw.as_ref()).map_err(|e| Failure::failed(format!("key document: {e}")))
}

/// Runs `rollback`.
pub async fn run(common: &Common, backup_path: &std::path::Path, yes: bool) -> CmdResult {
    let settings = settings::load(&common.config)?;
    let mut reader =
        backup::BackupReader::open(backup_path).map_err(|e| Failure::usage(e.to_string()))?;
    if reader.header.key_vault != settings.key_vault_ns() {
        return Err(Failure::usage(format!(
            "the backup is of key vault {}, but the configuration names {}",
            reader.header.key_vault,
            settings.key_vault_ns()
        )));
    }
    confirm(
        &format!(
            "Restore keys in {} from {}?",
            settings.key_vault_ns(),
            backup_path.display()
        ),
        yes,
    )?;
    let (client, vault) = super::key_vault_client(&settings).await?;
    let run = format!("rollback-{}", run_id());
    let audit = super::audit::start_run(
        &settings,
        &client,
        &run,
        "rollback",
        Some(&reader.header.target),
        Some(serde_json::json!({"backup": backup_path})),
    )
    .await?;
    let header = backup::Header {
        key_vault: settings.key_vault_ns(),
        target: reader.header.target.clone(),
        run_id: run.clone(),
    };
    let mut safety = Some(
        backup::BackupWriter::create(&settings.backup_dir, &header)
            .map_err(|e| Failure::failed(e.to_string()))?,
    );
    let mut tally = Tally::default();
    let result = restore(
        &mut reader,
        &vault,
        &settings,
        &mut safety,
        &audit,
        &mut tally,
    )
    .await;
    let Tally {
        restored,
        already,
        left_alone,
        missing,
    } = tally;
    let counts = serde_json::json!({
        "restored": restored,
        "alreadyRestored": already,
        "leftAlone": left_alone.len(),
        "missing": missing.len(),
    });
    let error = result.as_ref().err().map(|f| f.message.clone());
    // `ok` exactly when the command exits 0.
    let ok = result.is_ok() && left_alone.is_empty() && missing.is_empty();
    let audited = super::audit::end(Some(&audit), ok, counts, error.as_deref()).await?;
    result?;
    let (safety_path, saved_count) = safety
        .ok_or_else(|| Failure::failed("backup writer lost"))?
        .finish()
        .map_err(|e| Failure::failed(e.to_string()))?;
    if saved_count == 0 {
        let _ = std::fs::remove_file(&safety_path);
    }
    let ok = left_alone.is_empty() && missing.is_empty();
    if common.json {
        print_json(&serde_json::json!({
            "restored": restored,
            "alreadyRestored": already,
            "leftAlone": left_alone,
            "missing": missing,
            "backupOfOverwritten": (saved_count > 0).then_some(&safety_path),
            "audit": audited,
        }));
    } else {
        outln!(
            "{restored} restored, {already} already as in the backup, {} changed since and left alone, {} missing",
            left_alone.len(),
            missing.len()
        );
        if saved_count > 0 {
            outln!(
                "the keys overwritten are saved in {}",
                safety_path.display()
            );
        }
        super::audit::print_where(audited.as_ref());
    }
    Ok(if ok { OK } else { FAILED })
}

/// What a rollback did so far.
#[derive(Default)]
struct Tally {
    restored: u64,
    already: u64,
    left_alone: Vec<String>,
    missing: Vec<String>,
}

/// Restores batch by batch; each batch's outcomes are on the audit trail before the
/// next batch (those before a failed write too).
async fn restore(
    reader: &mut backup::BackupReader,
    vault: &mongodb::Collection<RawDocumentBuf>,
    settings: &settings::Settings,
    safety: &mut Option<backup::BackupWriter>,
    audit: &crate::audit::Audit,
    tally: &mut Tally,
) -> Result<(), Failure> {
    let write_err = |e: mongodb::error::Error| {
        Failure::failed(format!(
            "key vault: {}",
            super::redact_uri_error(&crate::deployment::describe(&e), settings.uri.expose())
        ))
    };
    let target = reader.header.target.clone();
    loop {
        let batch = reader
            .next_batch(settings.batch_size)
            .map_err(|e| Failure::failed(e.to_string()))?;
        if batch.is_empty() {
            return Ok(());
        }
        let mut records: Vec<KeyRecord> = Vec::new();
        let mut plan = Vec::new();
        for raw in &batch {
            let key = key_id::text(raw);
            let saved = doc_of(raw)?;
            let id = saved.get("_id").cloned().unwrap_or(Bson::Null);
            let Some(current) = vault
                .find_one(doc! {"_id": id.clone()})
                .await
                .map_err(write_err)?
            else {
                tally.missing.push(id.to_string());
                records.push(record(&key, None, None, Outcome::Missing));
                continue;
            };
            let current = doc_of(&current)?;
            if current.get("keyMaterial") == saved.get("keyMaterial") {
                tally.already += 1;
                records.push(record(
                    &key,
                    Some(&current),
                    Some(&saved),
                    Outcome::AlreadyRestored,
                ));
                continue;
            }
            match current.get_document("masterKey") {
                Ok(mk) if target::is_under(mk, &target) => {
                    safety
                        .as_mut()
                        .ok_or_else(|| Failure::failed("backup writer lost"))?
                        .push(
                            &RawDocumentBuf::try_from(&current)
                                .map_err(|e| Failure::failed(e.to_string()))?,
                        )
                        .map_err(|e| Failure::failed(e.to_string()))?;
                    plan.push((key, saved, current));
                }
                _ => {
                    tally.left_alone.push(id.to_string());
                    records.push(record(
                        &key,
                        Some(&current),
                        Some(&current),
                        Outcome::ChangedMeanwhile,
                    ));
                }
            }
        }
        let writer = safety
            .take()
            .ok_or_else(|| Failure::failed("backup writer lost"))?;
        *safety = Some(
            writer
                .checkpoint()
                .map_err(|e| Failure::failed(e.to_string()))?,
        );
        let mut stop = None;
        for (key, saved, current) in plan {
            let raw = |d: &Document| {
                RawDocumentBuf::try_from(d).map_err(|e| Failure::failed(e.to_string()))
            };
            let swapped = match (raw(&current), raw(&saved)) {
                (Ok(c), Ok(s)) => cas::compare_and_swap(vault, &c, &s).await.map_err(|e| {
                    Failure::failed(format!(
                        "key vault: {}; keys restored before this one are durable, and \
                         running the same rollback again continues",
                        super::redact_uri_error(&e, settings.uri.expose())
                    ))
                }),
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            match swapped {
                Ok(true) => {
                    tally.restored += 1;
                    records.push(record(
                        &key,
                        Some(&current),
                        Some(&saved),
                        Outcome::Restored,
                    ));
                }
                Ok(false) => {
                    tally.left_alone.push(
                        current
                            .get("_id")
                            .map(|v| v.to_string())
                            .unwrap_or_default(),
                    );
                    records.push(record(
                        &key,
                        Some(&current),
                        None,
                        Outcome::ChangedMeanwhile,
                    ));
                }
                Err(e) => {
                    stop = Some(e);
                    break;
                }
            }
        }
        audit.keys(&records).await.map_err(|e| {
            Failure::failed(format!("{e}; running the same rollback again continues"))
        })?;
        if let Some(stop) = stop {
            return Err(stop);
        }
    }
}

/// A key's audit record: its masterKey in `from` (the document before) and `to` (after).
fn record(id: &str, from: Option<&Document>, to: Option<&Document>, outcome: Outcome) -> KeyRecord {
    let master_key = |d: &Document| {
        d.get_document("masterKey")
            .map(crate::audit::master_key_json)
            .unwrap_or_default()
    };
    KeyRecord::new(id, from.map(master_key), to.map(master_key), outcome)
}
