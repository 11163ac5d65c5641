//! `keyshift check`: validate keyshift.toml offline, every finding with its field.
//!
//! Beyond core's rules it reads what core cannot: each local key file must hold exactly
//! 96 bytes (raw or base64), and the connection string behind `keyVault.uri`'s
//! reference is judged like a literal one (malformed, options weakening the key vault).
//! Only sizes and option names are reported, never content.

use crate::outln;
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

/// Every file the configuration names but the local key (checked above): `file:`
/// references and TLS files. A missing or unreadable one is KS-CFG-006; the content is
/// read only to prove it can be, never shown.
fn file_findings(checked: &settings::Checked) -> Vec<Diagnostic> {
    use keyshift_core::diagnostic::{codes, pointer};
    let config = &checked.config;
    let mut named: Vec<(String, String, &str)> = Vec::new(); // (pointer, path, what)
    let mut refs: Vec<(String, Option<String>, &str)> = Vec::new(); // secret references
    let mut reference = |ptr: String, value: &Option<String>, what: &'static str| {
        refs.push((ptr, value.clone(), what));
    };
    reference(
        "/keyVault/uri".into(),
        &config.key_vault.uri,
        "the connection string file",
    );
    for (name, p) in &config.kms_providers {
        let at = |f: &str| pointer(&["kmsProviders", name, f]);
        match p {
            Provider::Aws(a) => {
                reference(at("accessKeyId"), &a.access_key_id, "the secret file");
                reference(
                    at("secretAccessKey"),
                    &a.secret_access_key,
                    "the secret file",
                );
                reference(at("sessionToken"), &a.session_token, "the secret file");
            }
            Provider::Azure(a) => {
                reference(at("clientSecret"), &a.client_secret, "the secret file");
            }
            Provider::Gcp(g) => {
                reference(
                    at("privateKey"),
                    &g.private_key,
                    "the service account key file",
                );
            }
            _ => {}
        }
    }
    for (name, t) in &config.tls_options {
        reference(
            pointer(&["tlsOptions", name, "tlsCertificateKeyFilePassword"]),
            &t.tls_certificate_key_file_password,
            "the password file",
        );
    }
    if let Some(r) = &config.retire {
        for (name, uri) in &r.deployments {
            reference(
                pointer(&["retire", "deployments", name]),
                &Some(uri.clone()),
                "the connection string file",
            );
        }
    }
    for (ptr, value, what) in refs {
        if let Some(Ok(SecretRef::File(path))) = value.as_deref().map(SecretRef::parse) {
            named.push((ptr, path, what));
        }
    }
    for (name, t) in &config.tls_options {
        let at = |f: &str| pointer(&["tlsOptions", name, f]);
        for (field, path, what) in [
            ("tlsCAFile", &t.tls_ca_file, "the CA file"),
            (
                "tlsCertificateKeyFile",
                &t.tls_certificate_key_file,
                "the client certificate file",
            ),
        ] {
            if let Some(p) = path.as_deref().filter(|p| !p.trim().is_empty()) {
                named.push((at(field), p.to_string(), what));
            }
        }
    }
    named
        .into_iter()
        .filter_map(|(ptr, path, what)| {
            let full = checked.base.join(&path);
            let err = std::fs::File::open(&full).and_then(|f| {
                // A directory opens but does not read.
                let mut one = [0u8; 1];
                std::io::Read::read(&mut &f, &mut one).map(|_| ())
            });
            err.err().map(|e| {
                Diagnostic::error(
                    codes::FILE_UNREADABLE,
                    ptr,
                    format!("{what} {} cannot be read: {e}", full.display()),
                    "Fix the path (relative paths start at the config file's directory) or the file's permissions for the user running keyshift.",
                )
            })
        })
        .collect()
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
    let extra = file_findings(&checked);
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
            outln!(
                "{level}[{}] {}: {}",
                d.code,
                path_or_root(&d.path),
                d.message
            );
            outln!("    hint: {}", d.hint);
        }
        outln!(
            "{}: {errors} error(s), {warnings} warning(s)",
            common.config.display()
        );
    }
    Ok(if errors == 0 { OK } else { USAGE })
}
