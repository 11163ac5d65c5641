//! Local master key rules. The key itself is read by the native shell (core does no
//! I/O); core judges the bytes it is handed.
//!
//! libmongocrypt's local KMS provider takes exactly 96 bytes (a 64-byte MAC key and a
//! 32-byte encryption key), given raw or as base64 text (mongoc
//! `mongoc_client_encryption_opts_set_kms_providers`: "96 byte BSON binary ... May be
//! passed as a base64 encoded string").

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use crate::config::LocalProvider;
use crate::diagnostic::{Diagnostic, child, codes, pointer};

use super::common::check_secret;

/// Length of a local master key.
pub const LOCAL_KEY_LEN: usize = 96;

/// A validated 96-byte local master key. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalKey(pub [u8; LOCAL_KEY_LEN]);

impl std::fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalKey(<96 bytes redacted>)")
    }
}

/// Checks the contents of a local key file for the provider named `local`.
pub fn validate_local_key_bytes(bytes: &[u8]) -> Result<LocalKey, Diagnostic> {
    validate_local_key_bytes_for("local", bytes)
}

/// Checks the contents of a local key (file or variable) for provider `name`: exactly
/// 96 raw bytes, or base64 text (surrounding whitespace ignored) of 96 bytes. The
/// diagnostic states sizes only, never content.
pub fn validate_local_key_bytes_for(name: &str, bytes: &[u8]) -> Result<LocalKey, Diagnostic> {
    if let Ok(raw) = <[u8; LOCAL_KEY_LEN]>::try_from(bytes) {
        return Ok(LocalKey(raw));
    }
    let text = std::str::from_utf8(bytes).map(str::trim).unwrap_or("");
    let decoded = STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .ok();
    if let Some(key) = decoded
        .as_deref()
        .and_then(|d| <[u8; LOCAL_KEY_LEN]>::try_from(d).ok())
    {
        return Ok(LocalKey(key));
    }
    let found = match &decoded {
        Some(d) if !text.is_empty() => format!("base64 text of {} bytes", d.len()),
        _ => format!("{} bytes that are not base64 text", bytes.len()),
    };
    Err(Diagnostic::error(
        codes::LOC_KEY_SIZE,
        pointer(&["kmsProviders", name, "key"]),
        format!("the local master key must be exactly 96 bytes (raw or base64); found {found}"),
        "Point key at the file your applications use as the local master key (96 raw bytes, or its 128-character base64 text).",
    ))
}

/// Checks a local provider's fields.
pub fn check_provider(out: &mut Vec<Diagnostic>, path: &str, p: &LocalProvider) {
    check_secret(out, &child(path, "key"), p.key.as_deref());
    if p.exposed {
        out.push(Diagnostic::warning(
            codes::LOC_EXPOSED,
            child(path, "exposed"),
            "the local key is marked exposed: rewrapping alone does not protect data whose DEKs it wrapped",
            "Follow the plan's rotation steps: create new DEKs under the target and re-encrypt the data (keyshift rotate).",
        ));
    }
}
