//! Building libmongocrypt handles: every `Crypt` keyshift makes has its crypto hooks.

use mongocrypt::{Crypt, CryptBuilder};

use crate::crypto_hooks;

/// The version of the libmongocrypt this binary loaded.
pub fn libmongocrypt_version() -> &'static str {
    mongocrypt::version()
}

/// Builds a `Crypt` for `kms_providers` (libmongocrypt's document form) with keyshift's
/// crypto hooks installed and KMS retries on.
pub fn build(kms_providers: &bson::Document) -> mongocrypt::error::Result<Crypt> {
    crypto_hooks::install(CryptBuilder::new())?
        .kms_providers(kms_providers)?
        .retry_kms(true)?
        .build()
}
