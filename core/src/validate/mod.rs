//! Validation: a configuration in, a list of [`Diagnostic`]s out.
//!
//! [`check_toml`] / [`check_json`] / [`check_value`] parse and validate in one call and
//! are what the CLI (`keyshift check`) and the browser call; [`validate`] judges an
//! already-built model. Per-provider rules live in the submodules; each cites the
//! provider documentation it follows.

pub mod audit;
pub mod aws;
pub mod azure;
pub mod common;
pub mod filter;
pub mod gcp;
pub mod kmip;
pub mod local;
pub mod retire;
pub mod rotate;

pub use local::{LocalKey, validate_local_key_bytes, validate_local_key_bytes_for};

use crate::config::{self, Config, MasterKey, Parsed, Provider};
use crate::diagnostic::{self, Diagnostic, pointer};

/// Semantic checks on a model (formats, references, relations between sections).
/// Structural problems (unknown fields, types) are the parser's; see [`check_toml`].
pub fn validate(config: &Config) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    common::check_uri(&mut out, config.key_vault.uri.as_deref());
    common::check_namespace(&mut out, &config.key_vault.namespace);
    for (name, provider) in &config.kms_providers {
        let path = pointer(&["kmsProviders", name]);
        check_provider_name(&mut out, name, &path);
        common::check_credentials(&mut out, name, provider);
        match provider {
            Provider::Aws(p) => aws::check_provider(&mut out, &path, p),
            Provider::Azure(p) => azure::check_provider(&mut out, &path, p),
            Provider::Gcp(p) => gcp::check_provider(&mut out, &path, p),
            Provider::Kmip(p) => kmip::check_provider(&mut out, &path, p),
            Provider::Local(p) => local::check_provider(&mut out, &path, p),
            Provider::Other(_) => {}
        }
    }
    common::check_tls(&mut out, config);
    kmip::check_client_certificates(&mut out, config);
    common::check_target(&mut out, config);
    if let Some(t) = &config.target {
        let path = "/target/masterKey";
        match &t.master_key {
            MasterKey::Aws(mk) => aws::check_master_key(&mut out, path, mk),
            MasterKey::Azure(mk) => azure::check_master_key(&mut out, path, mk),
            MasterKey::Gcp(mk) => gcp::check_master_key(&mut out, path, mk),
            MasterKey::Kmip(mk) => kmip::check_master_key(&mut out, path, mk),
            MasterKey::Local(_) | MasterKey::Other(_) => {}
        }
    }
    common::check_rewrap(&mut out, config);
    rotate::check_rotate(&mut out, config);
    retire::check_retire(&mut out, config);
    audit::check_audit(&mut out, config);
    out
}

/// Named providers: `TYPE:NAME` with NAME of `[a-zA-Z0-9_]+` (client-side encryption
/// spec, "Named KMS providers").
fn check_provider_name(out: &mut Vec<Diagnostic>, name: &str, path: &str) {
    if let Some((_, n)) = name.split_once(':')
        && (n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        out.push(Diagnostic::error(
                crate::diagnostic::codes::PRV_BAD_NAME,
                path,
                format!("`{name}` is not a valid named provider: the name after `:` must be letters, digits and `_`"),
                "Name it like aws:prod or local:legacy.",
            ));
    }
}

fn finish(mut parsed: Parsed) -> Parsed {
    // A syntax error leaves an empty model; judging it would only add noise.
    if !parsed
        .diagnostics
        .iter()
        .any(|d| d.code == diagnostic::codes::SYNTAX)
    {
        let more = validate(&parsed.config);
        parsed.diagnostics.extend(more);
    }
    diagnostic::sort(&mut parsed.diagnostics);
    parsed
}

/// Parses and validates keyshift.toml text: every diagnostic, sorted.
pub fn check_toml(text: &str) -> Parsed {
    finish(config::parse_toml(text))
}

/// Parses and validates the configuration as JSON text.
pub fn check_json(text: &str) -> Parsed {
    finish(config::parse_json(text))
}

/// Parses and validates the configuration as a JSON value (the browser's object).
pub fn check_value(value: &serde_json::Value) -> Parsed {
    finish(config::from_value(value))
}
