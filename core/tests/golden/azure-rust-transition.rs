//! keyshift transition stage: reads keys under `local`, `azure:prod` while they move to `azure:prod`.
//! Generated from keyshift.toml. Secrets are read from the environment or files, never written here.
//!
//! MERGE, DO NOT REPLACE. This changes one thing in your application: where the master keys
//! of its data encryption keys (DEKs) are found. Take the KMS settings between BEGIN and
//! END keyshift KMS settings into the auto-encryption options and the ClientEncryption your
//! application builds today, with with_kms(client_options) and
//! client_encryption(key_vault_client), and keep everything else it sets there as it is:
//! its schema_map / encrypted_fields_map, bypass setting and crypt_shared / mongocryptd
//! options.
//! An application that encrypts automatically keeps doing so: never add
//! .bypass_auto_encryption(true) to it. That turns automatic encryption off, and its new
//! writes of sensitive fields would reach the server in plaintext.
//!
//! Requires mongodb 3.2.0+ with feature "in-use-encryption", linked to a libmongocrypt with
//! its own crypto backend.
//! Needs libmongocrypt 1.5.2+, the one the mongocrypt crate links (MONGOCRYPT_LIB_DIR).
//! Named KMS providers (`azure:prod`): mongodb 3.1.0+.
//! If you ever run rewrapManyDataKey yourself: never with libmongocrypt 1.5.0 or 1.5.1 on
//! Azure or GCP keys (MONGOCRYPT-464: it can replace their key material).
//! File paths are as keyshift.toml gives them: relative ones are relative to its directory.
//! Versions, their sources and the merge in every language: keyshift's docs/drivers.md.
//! API: https://docs.rs/mongodb/latest/mongodb/client_encryption/struct.ClientEncryption.html
//!      https://docs.rs/mongodb/latest/mongodb/struct.Client.html#method.encrypted_builder
//!      https://docs.rs/mongocrypt/latest/mongocrypt/ctx/struct.KmsProvider.html

use mongodb::bson::{doc, spec::BinarySubtype, Binary, Document};
use mongodb::client_encryption::{ClientEncryption, EncryptedClientBuilder, AzureMasterKey};
use mongodb::mongocrypt::ctx::KmsProvider;
use mongodb::options::{ClientOptions, TlsOptions};
use mongodb::{Client, Namespace};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

// ---- BEGIN keyshift KMS settings: merge into your encrypted client builder and ClientEncryption ----
pub fn key_vault_namespace() -> Namespace {
    Namespace::new("encryption", "__keyVault")
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

#[allow(dead_code)]
fn read_text(path: &str) -> Result<String> {
    Ok(std::fs::read_to_string(path)?.trim().to_string())
}

/// The local master key: 96 raw bytes, or their base64 text.
#[allow(dead_code)]
fn local_key(raw: Vec<u8>) -> Result<Binary> {
    if raw.len() == 96 {
        return Ok(Binary { subtype: BinarySubtype::Generic, bytes: raw });
    }
    Ok(Binary::from_base64(String::from_utf8(raw)?.trim(), BinarySubtype::Generic)?)
}

/// A GCP service account key as libmongocrypt wants it: the base64 of its DER. PEM loses
/// its armour lines; base64 text is kept as it is.
#[allow(dead_code)]
fn gcp_private_key(text: &str) -> String {
    if !text.contains("-----BEGIN") {
        return text.trim().to_string();
    }
    text.lines()
        .filter(|line| !line.starts_with("-----"))
        .map(str::trim)
        .collect()
}

/// kmsProviders for this stage, each with its KMS TLS options.
pub fn kms_providers() -> Result<Vec<(KmsProvider, Document, Option<TlsOptions>)>> {
    Ok(vec![
        (
            KmsProvider::local(),
            doc! {
                "key": local_key(std::fs::read("master-key.txt")?)?,
            },
            None,
        ),
        (
            KmsProvider::azure().with_name("prod"),
            doc! {
                "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "clientId": "00001111-aaaa-2222-bbbb-3333cccc4444",
                "clientSecret": env("AZURE_CLIENT_SECRET")?,
            },
            None,
        ),
    ])
}

/// Your application's client options with keyshift's KMS settings: the driver's encrypted
/// client builder. Chain every option your application sets today onto it (schema_map or
/// encrypted_fields_map, bypass_auto_encryption only if it already sets it, key_vault_client,
/// extra_options for crypt_shared or mongocryptd), then build().
pub fn with_kms(client_options: ClientOptions) -> Result<EncryptedClientBuilder> {
    Ok(Client::encrypted_builder(
        client_options,
        key_vault_namespace(),
        kms_providers()?,
    )?)
}

/// The same KMS settings for ClientEncryption: new DEKs, explicit encrypt and decrypt.
pub fn client_encryption(key_vault_client: Client) -> Result<ClientEncryption> {
    Ok(ClientEncryption::new(
        key_vault_client,
        key_vault_namespace(),
        kms_providers()?,
    )?)
}
// ---- END keyshift KMS settings ----

/// The key vault's connection string.
pub fn connection_string() -> Result<String> {
    Ok(env("MONGODB_URI")?.to_string())
}

/// A new DEK under the target master key; returns its _id.
pub async fn create_data_key(key_vault_client: Client, key_alt_names: Vec<String>) -> Result<Binary> {
    let client_encryption = client_encryption(key_vault_client)?;
    let master_key = AzureMasterKey::builder()
        .name("prod".to_string())
        .key_vault_endpoint("my-vault.vault.azure.net".to_string())
        .key_name("ks-cmk".to_string())
        .build();
    Ok(client_encryption
        .create_data_key(master_key)
        .key_alt_names(key_alt_names)
        .await?)
}

/// A whole client with AUTOMATIC encryption, as an application that encrypts automatically
/// has: fields its rules name are encrypted on every write and decrypted on every read.
/// keyshift does not know those rules, so they are required: pass your application's own
/// schema map (CSFLE) or encrypted fields map (Queryable Encryption), or an empty schema map
/// only if it relies on the server's $jsonSchema validators. An application that encrypts
/// explicitly and already sets bypass_auto_encryption(true) keeps doing so on its own
/// with_kms builder; nothing here sets it.
pub async fn encrypted_client(
    uri: &str,
    app_schema_map: Option<Vec<(String, Document)>>,
    app_encrypted_fields_map: Option<Vec<(String, Document)>>,
) -> Result<Client> {
    if app_schema_map.is_none() && app_encrypted_fields_map.is_none() {
        return Err("pass your application's schema map or encrypted fields map (an empty schema map when it relies on the server's validators)".into());
    }
    let mut builder = with_kms(ClientOptions::parse(uri).await?)?;
    if let Some(map) = app_schema_map {
        builder = builder.schema_map(map);
    }
    if let Some(map) = app_encrypted_fields_map {
        builder = builder.encrypted_fields_map(map);
    }
    Ok(builder.build().await?)
}
