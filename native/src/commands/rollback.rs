//! `keyshift rollback --backup FILE`: put keys back as a rewrap backup recorded them.
//!
//! Only keys that are still exactly as that rewrap left them (under the backup's
//! target) are restored, each with a compare-and-swap on their current `keyMaterial`;
//! keys already restored are skipped, keys changed since are left alone and reported.
//! Before each batch is written, the keys it overwrites are appended to a new backup
//! (fsynced), so a rollback can itself be rolled back.

use crate::outln;
use bson::{Bson, Document, RawDocumentBuf, doc};

use super::{CmdResult, FAILED, Failure, OK, confirm, key_vault, print_json, run_id};
use crate::cli::Common;
use crate::rewrap::{backup, cas, target};
use crate::settings;

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
    let vault = key_vault(&settings).await?;
    let header = backup::Header {
        key_vault: settings.key_vault_ns(),
        target: reader.header.target.clone(),
        run_id: format!("rollback-{}", run_id()),
    };
    let mut safety = backup::BackupWriter::create(&settings.backup_dir, &header)
        .map_err(|e| Failure::failed(e.to_string()))?;
    let (mut restored, mut already, mut left_alone, mut missing) =
        (0u64, 0u64, Vec::new(), Vec::new());
    let write_err = |e: mongodb::error::Error| {
        Failure::failed(format!(
            "key vault: {}",
            super::redact_uri_error(&crate::deployment::describe(&e), settings.uri.expose())
        ))
    };
    loop {
        let batch = reader
            .next_batch(settings.batch_size)
            .map_err(|e| Failure::failed(e.to_string()))?;
        if batch.is_empty() {
            break;
        }
        let mut plan = Vec::new();
        for saved in &batch {
            let saved = doc_of(saved)?;
            let id = saved.get("_id").cloned().unwrap_or(Bson::Null);
            let Some(current) = vault
                .find_one(doc! {"_id": id.clone()})
                .await
                .map_err(write_err)?
            else {
                missing.push(id.to_string());
                continue;
            };
            let current = doc_of(&current)?;
            if current.get("keyMaterial") == saved.get("keyMaterial") {
                already += 1;
                continue;
            }
            match current.get_document("masterKey") {
                Ok(mk) if target::is_under(mk, &reader.header.target) => {
                    safety
                        .push(
                            &RawDocumentBuf::try_from(&current)
                                .map_err(|e| Failure::failed(e.to_string()))?,
                        )
                        .map_err(|e| Failure::failed(e.to_string()))?;
                    plan.push((saved, current));
                }
                _ => left_alone.push(id.to_string()),
            }
        }
        safety = safety
            .checkpoint()
            .map_err(|e| Failure::failed(e.to_string()))?;
        for (saved, current) in plan {
            let raw = |d: &Document| {
                RawDocumentBuf::try_from(d).map_err(|e| Failure::failed(e.to_string()))
            };
            let swapped = cas::compare_and_swap(&vault, &raw(&current)?, &raw(&saved)?)
                .await
                .map_err(|e| {
                    Failure::failed(format!(
                        "key vault: {}; keys restored before this one are durable, and                          running the same rollback again continues",
                        super::redact_uri_error(&e, settings.uri.expose())
                    ))
                })?;
            if swapped {
                restored += 1;
            } else {
                left_alone.push(
                    current
                        .get("_id")
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                );
            }
        }
    }
    let (safety_path, saved_count) = safety
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
    }
    Ok(if ok { OK } else { FAILED })
}
