//! `keyshift retire`: delete the DEKs rotate replaced, after verification and a backup
//! (the engine is [`crate::rotate::retire`]).

use keyshift_core::rotate::ids::uuid_string;

use super::{CmdResult, Failure, NOT_VERIFIED, OK, confirm, key_vault, kms_io, print_json, run_id};
use crate::cli::Common;
use crate::rotate::retire::{self, Job, Report};
use crate::settings;

fn report_json(r: &Report) -> serde_json::Value {
    let retired: Vec<serde_json::Value> = r
        .retired
        .iter()
        .map(|k| {
            serde_json::json!({
                "old": uuid_string(&k.old),
                "new": uuid_string(&k.new),
                "keyAltNames": k.key_alt_names,
            })
        })
        .collect();
    serde_json::json!({
        "command": "retire",
        "retired": retired,
        "remaining": r.remaining,
        "backup": r.backup,
        "restored": r.restored.iter().map(uuid_string).collect::<Vec<_>>(),
        "unproven": r.unproven.iter().map(|(id, why)| serde_json::json!({"key": id, "reason": why})).collect::<Vec<_>>(),
    })
}

/// Runs `retire`.
pub async fn run(common: &Common, yes: bool) -> CmdResult {
    let settings = settings::load(&common.config)?;
    let Some(target) = settings.target.clone() else {
        return Err(Failure::usage("the configuration has no [target]"));
    };
    let vault = key_vault(&settings).await?;
    let client = vault.client().clone();
    // Every collection, not only [rotate] collections: a value anywhere in the
    // deployment may still need an old key, and a deleted key is gone for good.
    let namespaces = crate::rotate::validators::all_namespaces(&client, &settings.key_vault_ns())
        .await
        .map_err(Failure::failed)?;
    confirm(
        &format!(
            "Delete the replaced keys from {} once nothing in {} collection(s) refers to them?",
            settings.key_vault_ns(),
            namespaces.len()
        ),
        yes,
    )?;
    let job = Job {
        client,
        key_vault: vault,
        key_vault_ns: settings.key_vault_ns(),
        kms_providers: settings.kms_providers.clone(),
        target,
        filter: settings.filter.clone(),
        explicit_filter: settings.filter_configured,
        namespaces,
        batch_size: settings.batch_size,
        kms: kms_io(&settings)?,
        backup_dir: settings.backup_dir.clone(),
        run_id: run_id(),
    };
    if !common.json {
        eprintln!("keyshift: verifying the replacements and scanning for old keys");
    }
    let report = retire::run(&job)
        .await
        .map_err(|e| Failure::failed(format!("retire stopped: {e}. Keys deleted before this point are in the retire backup; rerun to continue")))?;
    for (id, why) in &report.unproven {
        eprintln!("keyshift: replacement {id} failed verification: {why}");
    }
    if common.json {
        print_json(&report_json(&report));
    } else {
        for r in &report.retired {
            eprintln!(
                "retired {} (replaced by {}){}",
                uuid_string(&r.old),
                uuid_string(&r.new),
                if r.key_alt_names.is_empty() {
                    String::new()
                } else {
                    format!(", keyAltNames moved: {}", r.key_alt_names.join(", "))
                }
            );
        }
        for (ns, n) in &report.remaining {
            eprintln!("  {ns}: {n} reference(s) to old keys remain");
        }
        for id in &report.restored {
            eprintln!(
                "  restored {}: a value under it was written meanwhile",
                uuid_string(id)
            );
        }
        if let Some(b) = &report.backup {
            eprintln!("backup of the retired keys: {}", b.display());
        }
        if report.retired.is_empty() && report.remaining.is_empty() && report.unproven.is_empty() {
            eprintln!("nothing to retire");
        }
    }
    if !report.unproven.is_empty() {
        eprintln!("keyshift: nothing was retired: a replacement key failed verification");
        return Ok(NOT_VERIFIED);
    }
    if !report.remaining.is_empty() {
        eprintln!(
            "keyshift: references to old keys remain ({}): run keyshift rotate again, then retire",
            report
                .remaining
                .iter()
                .map(|(ns, n)| format!("{ns}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(NOT_VERIFIED);
    }
    Ok(OK)
}
