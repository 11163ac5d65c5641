//! keyshift transition stage: reads keys under `local`, `azure:prod` while they move to `azure:prod`.
//! Generated from keyshift.toml. Secrets are read from the environment or files, never written here.
//! API: https://docs.rs/mongodb/latest/mongodb/client_encryption/struct.ClientEncryption.html
//!      https://docs.rs/mongodb/latest/mongodb/struct.Client.html#method.encrypted_builder
//!      https://docs.rs/mongocrypt/latest/mongocrypt/ctx/struct.KmsProvider.html

use mongodb::bson::{doc, spec::BinarySubtype, Binary, Document};
use mongodb::client_encryption::{ClientEncryption, AzureMasterKey};
use mongodb::mongocrypt::ctx::KmsProvider;
use mongodb::options::{ClientOptions, TlsOptions};
use mongodb::{Client, Namespace};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

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

/// The key vault's connection string.
pub fn connection_string() -> Result<String> {
    Ok(env("MONGODB_URI")?.to_string())
}

/// A client that decrypts fields whose DEKs are under any provider above.
pub async fn encrypted_client(uri: &str) -> Result<Client> {
    let options = ClientOptions::parse(uri).await?;
    Ok(Client::encrypted_builder(options, key_vault_namespace(), kms_providers()?)?
        .bypass_auto_encryption(true)
        .build()
        .await?)
}

/// A new DEK under the target master key; returns its _id.
pub async fn create_data_key(key_vault_client: Client, key_alt_names: Vec<String>) -> Result<Binary> {
    let client_encryption = ClientEncryption::new(key_vault_client, key_vault_namespace(), kms_providers()?)?;
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
