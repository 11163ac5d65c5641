//! `keyshift inspect`: the key vault's inventory (core analyses, this reads).

use super::{CmdResult, OK, key_documents_json, key_vault, print_json};
use crate::cli::Common;
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
        eprintln!(
            "key vault {}: {} key(s)",
            settings.key_vault_ns(),
            docs.len()
        );
        let value = serde_json::to_value(&inventory).unwrap_or_default();
        eprintln!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    }
    Ok(OK)
}
