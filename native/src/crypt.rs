//! Building libmongocrypt handles: every `Crypt` keyshift makes has its crypto hooks.

use mongocrypt::{Crypt, CryptBuilder};

use crate::crypto_hooks;

/// The version of the libmongocrypt this binary loaded.
pub fn libmongocrypt_version() -> &'static str {
    mongocrypt::version()
}

/// Builds a `Crypt` for `kms_providers` (libmongocrypt's document form) with keyshift's
/// crypto hooks installed and KMS retries on. A provider given as an empty document gets
/// its credentials on demand (NEED_KMS_CREDENTIALS, see [`crate::credentials`]).
pub fn build(kms_providers: &bson::Document) -> mongocrypt::error::Result<Crypt> {
    builder(kms_providers)?.build()
}

/// What [`build`] builds, before `build()`: for a caller that sets more (rotate's
/// re-encryption sets a key cache lifetime).
pub fn builder(kms_providers: &bson::Document) -> mongocrypt::error::Result<CryptBuilder> {
    crypto_hooks::install(CryptBuilder::new())?
        .kms_providers(kms_providers)?
        .use_need_kms_credentials_state()
        .retry_kms(true)
}

/// Provider names configured without credentials: they get them on demand.
pub fn on_demand_providers(kms_providers: &bson::Document) -> Vec<String> {
    kms_providers
        .iter()
        .filter(|(_, v)| v.as_document().is_some_and(|d| d.is_empty()))
        .map(|(k, _)| k.clone())
        .collect()
}
