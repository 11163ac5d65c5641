//! `keyshift inspect`: the key vault's inventory (core analyses, this reads); with
//! `--kms`, what each KMS says about its master keys (read-only: AWS DescribeKey).

use keyshift_core::config::ProviderKind;
use keyshift_core::inventory::{self, Inventory, KmsCheck};

use super::{CmdResult, OK, key_documents_json, key_vault, print_json};
use crate::cli::Common;
use crate::outln;
use crate::settings::{self, Settings};

/// Runs `inspect`; `kms`: also ask each KMS about its master keys.
pub async fn run(common: &Common, kms: bool) -> CmdResult {
    let settings = settings::load(&common.config)?;
    let vault = key_vault(&settings).await?;
    let docs = key_documents_json(&vault, bson::doc! {}, settings.uri.expose()).await?;
    let mut inventory = inventory::analyze(&docs, Some(&settings.config));
    let checks = if kms {
        Some(ask_kms(&settings, &mut inventory).await)
    } else {
        None
    };
    if common.json {
        let mut out = serde_json::json!({
            "keyVault": settings.key_vault_ns(),
            "inventory": inventory,
        });
        if let Some(checks) = &checks {
            out["kms"] = serde_json::json!(checks);
        }
        print_json(&out);
    } else {
        print_text(&settings.key_vault_ns(), &inventory, checks.as_deref());
    }
    Ok(OK)
}

/// One check per distinct master key under a KMS; the lints core draws from the answers
/// join the inventory's.
async fn ask_kms(settings: &Settings, inv: &mut Inventory) -> Vec<KmsCheck> {
    let mut checks = Vec::new();
    for m in &inv.by_master_key {
        let mk = &m.master_key;
        let provider = mk.get("provider").and_then(|p| p.as_str()).unwrap_or("");
        let Some(kind) = ProviderKind::of_name(provider) else {
            continue;
        };
        if let Some(why) = inventory::unchecked_reason(kind) {
            checks.push(inventory::not_checked(mk, m.count, why));
            continue;
        }
        if kind != ProviderKind::Aws {
            continue;
        }
        match describe(settings, provider, mk).await {
            Ok(meta) => {
                let (check, lint) = inventory::judge_aws_key(mk, m.count, &meta.facts());
                checks.push(check);
                inv.lints.extend(lint);
            }
            Err(why) => checks.push(inventory::not_checked(
                mk,
                m.count,
                format!("not checked: {why}"),
            )),
        }
    }
    checks
}

/// DescribeKey on an AWS master key, with the credentials of the provider it names: those
/// in keyshift.toml, or for a provider without any, the AWS credential chain's.
async fn describe(
    settings: &Settings,
    provider: &str,
    master_key: &serde_json::Value,
) -> Result<crate::aws::KeyMetadata, String> {
    let Some(configured) = settings.kms_providers.expose().get_document(provider).ok() else {
        return Err(format!("kmsProviders does not configure `{provider}`"));
    };
    let ca = settings.tls.get(provider).and_then(|t| t.ca_file.clone());
    let credentials = if configured.is_empty() {
        crate::aws::chain_credentials(ca.as_deref()).await?
    } else {
        configured.clone()
    };
    let master_key = settings::extjson_document(master_key.clone(), "masterKey")?;
    crate::aws::describe_metadata(&master_key, &credentials, ca.as_deref()).await
}

/// The inventory for people: counts, then each master key, then what is unusual, then
/// what will fail later, then what each KMS said.
fn print_text(ns: &str, inv: &Inventory, checks: Option<&[KmsCheck]>) {
    outln!("key vault {ns}: {} key(s)", inv.total);
    if let Some(under) = inv.under_target {
        outln!(
            "  {under} under the target, {} to move",
            inv.total.saturating_sub(under)
        );
    }
    for (provider, n) in &inv.by_provider {
        outln!("  {n:>7} under {provider}");
    }
    if !inv.by_master_key.is_empty() {
        outln!("by master key:");
        for m in &inv.by_master_key {
            outln!("  {:>7}  {}", m.count, m.master_key);
        }
    }
    if inv.with_alt_names > 0 {
        outln!("{} key(s) have keyAltNames", inv.with_alt_names);
    }
    if inv.disabled > 0 {
        outln!("{} key(s) have a non-zero status", inv.disabled);
    }
    if inv.anomalies.is_empty() {
        outln!("no anomalies");
    } else {
        outln!("{} anomal(ies):", inv.anomalies.len());
        for a in &inv.anomalies {
            outln!(
                "  [{}] {}: {}\n    hint: {}",
                a.code,
                a.key_id,
                a.message,
                a.hint
            );
        }
    }
    if !inv.lints.is_empty() {
        outln!("{} lint(s), setups that will fail later:", inv.lints.len());
        for l in &inv.lints {
            outln!("  [{}] {}\n    hint: {}", l.code, l.message, l.hint);
        }
    }
    if let Some(checks) = checks {
        outln!("KMS (read-only):");
        for c in checks {
            outln!("  {:>7}  {}: {}", c.keys, c.master_key, c.detail);
        }
    }
}
