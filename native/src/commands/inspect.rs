//! `keyshift inspect`: the key vault's inventory (core analyses, this reads).

use super::{CmdResult, OK, key_documents_json, key_vault, print_json};
use crate::cli::Common;
use crate::outln;
use crate::settings;

/// Runs `inspect`.
pub async fn run(common: &Common) -> CmdResult {
    let settings = settings::load(&common.config)?;
    let vault = key_vault(&settings).await?;
    let docs = key_documents_json(&vault, bson::doc! {}, settings.uri.expose()).await?;
    let inventory = keyshift_core::inventory::analyze(&docs, Some(&settings.config));
    if common.json {
        print_json(&serde_json::json!({
            "keyVault": settings.key_vault_ns(),
            "inventory": inventory,
        }));
    } else {
        print_text(&settings.key_vault_ns(), &inventory);
    }
    Ok(OK)
}

/// The inventory for people: counts, then each master key, then what is unusual.
fn print_text(ns: &str, inv: &keyshift_core::inventory::Inventory) {
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
            outln!("  {}: {}", a.key_id, a.message);
        }
    }
}
