//! `keyshift check`: validate keyshift.toml offline, every finding with its field.
//!
//! Beyond core's rules it reads what core cannot: each local key file must hold exactly
//! 96 bytes (raw or base64), and the connection string behind `keyVault.uri`'s
//! reference is judged like a literal one (malformed, options weakening the key vault).
//! Only sizes and option names are reported, never content.

use keyshift_core::Diagnostic;
use keyshift_core::config::model::Provider;
use keyshift_core::config::secret::SecretRef;

use super::{CmdResult, OK, USAGE, path_or_root, print_json};
use crate::cli::Common;
use crate::settings;

fn local_key_findings(checked: &settings::Checked) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, p) in &checked.config.kms_providers {
        let Provider::Local(local) = p else { continue };
        let Some(Ok(SecretRef::File(path))) = local.key.as_deref().map(SecretRef::parse) else {
            continue;
        };
        let full = checked.base.join(&path);
        match std::fs::read(&full) {
            Ok(bytes) => {
                if let Err(d) =
                    keyshift_core::validate::validate_local_key_bytes_for(name, &bytes)
                {
                    out.push(d);
                }
            }
            Err(e) => out.push(Diagnostic::error(
                keyshift_core::diagnostic::codes::LOC_KEY_UNREADABLE,
                keyshift_core::diagnostic::pointer(&["kmsProviders", name, "key"]),
                format!("cannot read the local key file {}: {e}", full.display()),
                "Point key at the file your applications use (relative paths start at the config file's directory).",
            )),
        }
    }
    out
}

/// The connection string behind `keyVault.uri`'s reference, judged by core when the
/// reference can be resolved here (the variable is set, the file readable); offline.
fn uri_findings(checked: &settings::Checked) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let resolved = match checked
        .config
        .key_vault
        .uri
        .as_deref()
        .map(SecretRef::parse)
    {
        Some(Ok(SecretRef::Env(name))) => std::env::var(&name).ok(),
        Some(Ok(SecretRef::File(path))) => std::fs::read_to_string(checked.base.join(path)).ok(),
        _ => None,
    };
    if let Some(uri) = resolved {
        keyshift_core::uri::check(&mut out, "/keyVault/uri", uri.trim());
    }
    out
}

/// Runs `check`.
pub fn run(common: &Common) -> CmdResult {
    let mut checked = settings::check(&common.config)?;
    let extra = local_key_findings(&checked);
    checked.diagnostics.extend(extra);
    let extra = uri_findings(&checked);
    checked.diagnostics.extend(extra);
    keyshift_core::diagnostic::sort(&mut checked.diagnostics);
    let diags = &checked.diagnostics;
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    if common.json {
        print_json(&serde_json::json!({
            "config": common.config,
            "valid": errors == 0,
            "errors": errors,
            "warnings": warnings,
            "diagnostics": diags,
        }));
    } else {
        for d in diags {
            let level = if d.is_error() { "error" } else { "warning" };
            eprintln!(
                "{level}[{}] {}: {}",
                d.code,
                path_or_root(&d.path),
                d.message
            );
            eprintln!("    hint: {}", d.hint);
        }
        eprintln!(
            "{}: {errors} error(s), {warnings} warning(s)",
            common.config.display()
        );
    }
    Ok(if errors == 0 { OK } else { USAGE })
}
