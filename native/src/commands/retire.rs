//! `keyshift retire`: delete the DEKs rotate replaced, after verification and a backup
//! (the engine is [`crate::rotate::retire`]).

use crate::outln;
use keyshift_core::rotate::ids::uuid_string;

use super::{CmdResult, Failure, NOT_VERIFIED, OK, confirm, print_json};
use crate::cli::Common;
use crate::rotate::retire::{self, DataDeployment, Job, Report};
use crate::rotate::validators;
use crate::settings;
use keyshift_core::validate::retire::KEY_VAULT_DEPLOYMENT;

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

/// Why retire refuses without `[retire] allDeploymentsListed = true`.
fn unconfirmed_message(settings: &settings::Settings) -> String {
    let listed: Vec<&str> = settings
        .data_deployments
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    format!(
        "retire deletes keys for good, so it must scan every deployment whose data is \
         encrypted with keys from {kv}, and the configuration does not say that its list is \
         complete. Scanned now: the key vault's own deployment{others}. List every other \
         cluster whose applications use this key vault under [retire] deployments \
         (e.g. orders = \"env:ORDERS_MONGODB_URI\"), then set allDeploymentsListed = true in \
         [retire] and run retire again (docs/config.md, \"[retire]\")",
        kv = settings.key_vault_ns(),
        others = if listed.is_empty() {
            String::new()
        } else {
            format!(" and {}", listed.join(", "))
        }
    )
}

/// The key vault's own deployment, then each `[retire] deployments` entry, each with
/// every collection it holds.
async fn data_deployments(
    settings: &settings::Settings,
    client: &mongodb::Client,
) -> Result<Vec<DataDeployment>, Failure> {
    let kv_ns = settings.key_vault_ns();
    let namespaces = validators::all_namespaces(client, &kv_ns)
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    let mut out = vec![DataDeployment {
        name: KEY_VAULT_DEPLOYMENT.to_string(),
        client: client.clone(),
        namespaces,
    }];
    for (name, uri) in &settings.data_deployments {
        let what = format!("retire.deployments.{name}");
        let client = crate::deployment::connect(uri.expose(), &what)
            .await
            .map_err(super::connect_failure)?;
        let namespaces = validators::all_namespaces(&client, &kv_ns)
            .await
            .map_err(|e| {
                Failure::failed(format!(
                    "{what}: {}; check that deployment's connection string and network access",
                    crate::deployment::redact(&e.to_string(), uri.expose())
                ))
            })?;
        out.push(DataDeployment {
            name: name.clone(),
            client,
            namespaces,
        });
    }
    Ok(out)
}

/// One record per key retire deleted, restored or could not verify.
async fn record_keys(audit: &crate::audit::Audit, r: &Report) -> Result<(), Failure> {
    use keyshift_core::audit::record::{KeyRecord, Outcome};
    let mut records: Vec<KeyRecord> = r
        .retired
        .iter()
        .map(|k| {
            let from = k.master_key.as_ref().map(crate::audit::master_key_json);
            KeyRecord::new(uuid_string(&k.old), from, None, Outcome::Deleted)
                .new_id(uuid_string(&k.new))
        })
        .collect();
    records.extend(r.restored.iter().map(|id| {
        KeyRecord::new(uuid_string(id), None, None, Outcome::Kept)
            .why("restored: a value written meanwhile still needs it")
    }));
    records.extend(
        r.unproven.iter().map(|(id, why)| {
            KeyRecord::new(id.as_str(), None, None, Outcome::Kept).why(why.as_str())
        }),
    );
    audit
        .keys(&records)
        .await
        .map_err(|e| Failure::failed(format!("{e}; the deleted keys are in the retire backup")))
}

/// Runs `retire`.
pub async fn run(common: &Common, yes: bool) -> CmdResult {
    let settings = settings::load(&common.config)?;
    super::require_target(&settings)?;
    if !settings.all_deployments_listed {
        return Err(Failure::usage(unconfirmed_message(&settings)));
    }
    let session = super::session(&settings).await?;
    // Every collection of every deployment using the key vault, not only [rotate]
    // collections: a value anywhere may still need an old key, and a deleted key is
    // gone for good.
    let deployments = data_deployments(&settings, &session.client).await?;
    let scanned: Vec<String> = deployments
        .iter()
        .map(|d| format!("{} ({} collection(s))", d.name, d.namespaces.len()))
        .collect();
    if !common.json {
        eprintln!(
            "keyshift: deployments using {}: {}",
            settings.key_vault_ns(),
            scanned.join(", ")
        );
    }
    confirm(
        &format!(
            "Delete the replaced keys from {} once nothing in these deployments refers to \
             them: {}?",
            settings.key_vault_ns(),
            scanned.join(", ")
        ),
        yes,
    )?;
    let audit =
        super::audit::start(&settings, &session, "retire", Some(&session.target), None).await?;
    let job = Job {
        session,
        deployments,
    };
    if !common.json {
        eprintln!("keyshift: verifying the replacements and scanning for old keys");
    }
    let result = retire::run(&job).await;
    // Every deleted key, and the run's end, on record before any output.
    let mut error = result.as_ref().err().map(|e| e.to_string());
    if let Ok(report) = &result
        && let Err(e) = record_keys(&audit, report).await
    {
        error = Some(e.message.clone());
    }
    let counts = match &result {
        Ok(r) => serde_json::json!({
            "retired": r.retired.len(),
            "restored": r.restored.len(),
            "unproven": r.unproven.len(),
            "remaining": r.remaining,
            "backup": r.backup,
        }),
        Err(_) => serde_json::json!({}),
    };
    // `ok` exactly when the command exits 0.
    let ok = error.is_none()
        && result
            .as_ref()
            .is_ok_and(|r| r.remaining.is_empty() && r.unproven.is_empty());
    let audited = super::audit::end(Some(&audit), ok, counts, error.as_deref()).await?;
    let report = result
        .map_err(|e| Failure::failed(format!("retire stopped: {e}. Keys deleted before this point are in the retire backup; rerun to continue")))?;
    if let Some(e) = error {
        return Err(Failure::failed(e));
    }
    for (id, why) in &report.unproven {
        eprintln!("keyshift: replacement {id} failed verification: {why}");
    }
    if common.json {
        let mut out = report_json(&report);
        out["audit"] = audited.clone().unwrap_or_default();
        print_json(&out);
    } else {
        for r in &report.retired {
            outln!(
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
            outln!("  {ns}: {n} reference(s) to old keys remain");
        }
        for id in &report.restored {
            outln!(
                "  restored {}: a value under it was written meanwhile",
                uuid_string(id)
            );
        }
        if let Some(b) = &report.backup {
            outln!("backup of the retired keys: {}", b.display());
        }
        if report.retired.is_empty() && report.remaining.is_empty() && report.unproven.is_empty() {
            outln!("nothing to retire");
        }
        super::audit::print_where(audited.as_ref());
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
