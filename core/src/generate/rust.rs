//! Rust (`mongodb` crate 3.x, feature `in-use-encryption`).
//!
//! API, from docs.rs:
//! - `ClientEncryption::new(key_vault_client, key_vault_namespace, kms_providers)` with
//!   items `(KmsProvider, Document, Option<TlsOptions>)`, and
//!   `ClientEncryption::create_data_key(master_key).key_alt_names(..)`:
//!   <https://docs.rs/mongodb/latest/mongodb/client_encryption/struct.ClientEncryption.html>
//! - `AwsMasterKey::builder()` and the other master key builders:
//!   <https://docs.rs/mongodb/latest/mongodb/client_encryption/enum.MasterKey.html>
//! - `Client::encrypted_builder(options, namespace, kms_providers)?` returning an
//!   `EncryptedClientBuilder` (`.schema_map(..)`, `.encrypted_fields_map(..)`, `.build()`):
//!   <https://docs.rs/mongodb/latest/mongodb/struct.Client.html#method.encrypted_builder>
//! - `KmsProvider::aws().with_name(..)`:
//!   <https://docs.rs/mongocrypt/latest/mongocrypt/ctx/struct.KmsProvider.html>
//!
//! The merge point is `with_kms(client_options)`: it returns the driver's
//! `EncryptedClientBuilder` with keyshift's KMS settings, and the application chains its
//! own options onto it.

use crate::config::ProviderKind;

use super::{Lang, Setup, Source, TLS_PASSWORD, notes};

fn lit(s: &str) -> String {
    format!("{s:?}")
}

fn expr(s: &Source) -> String {
    match s {
        Source::Text(t) => lit(t),
        Source::Bool(b) => b.to_string(),
        Source::Env(n) => format!("env({})?", lit(n)),
        Source::File(p) => format!("read_text({})?", lit(p)),
        Source::LocalKeyFile(p) => format!("local_key(std::fs::read({})?)?", lit(p)),
        Source::LocalKeyEnv(n) => format!("local_key(env({})?.into_bytes())?", lit(n)),
        Source::GcpKeyFile(p) => format!("gcp_private_key(&read_text({})?)", lit(p)),
        Source::GcpKeyEnv(n) => format!("gcp_private_key(&env({})?)", lit(n)),
    }
}

fn provider_ctor(name: &str, kind: ProviderKind) -> String {
    let base = format!("KmsProvider::{}()", kind.as_str());
    match name.split_once(':') {
        Some((_, n)) => format!("{base}.with_name({})", lit(n)),
        None => base,
    }
}

fn snake(field: &str) -> String {
    let mut out = String::new();
    for c in field.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn master_key(s: &Setup) -> String {
    let ty = match s.target_kind {
        ProviderKind::Aws => "AwsMasterKey",
        ProviderKind::Azure => "AzureMasterKey",
        ProviderKind::Gcp => "GcpMasterKey",
        ProviderKind::Kmip => "KmipMasterKey",
        ProviderKind::Local => "LocalMasterKey",
    };
    let mut out = format!("{ty}::builder()");
    if let Some((_, n)) = s.target.split_once(':') {
        out.push_str(&format!("\n        .name({}.to_string())", lit(n)));
    }
    for (k, v) in &s.master_key {
        let value = match v {
            Source::Bool(b) => b.to_string(),
            other => format!("{}.to_string()", expr(other)),
        };
        out.push_str(&format!("\n        .{}({value})", snake(k)));
    }
    out.push_str("\n        .build()");
    out
}

/// Renders the Rust module.
pub fn render(s: &Setup) -> String {
    let mut o = String::new();
    o.push_str(&notes::comment_block(s, Lang::Rust, "//!"));
    if s.has_tls_password() {
        o.push_str("//! tlsCertificateKeyFilePassword needs the mongodb crate's feature \"cert-key-password\".\n");
    }
    o.push_str("//! API: https://docs.rs/mongodb/latest/mongodb/client_encryption/struct.ClientEncryption.html\n");
    o.push_str("//!      https://docs.rs/mongodb/latest/mongodb/struct.Client.html#method.encrypted_builder\n");
    o.push_str(
        "//!      https://docs.rs/mongocrypt/latest/mongocrypt/ctx/struct.KmsProvider.html\n\n",
    );
    let ty = match s.target_kind {
        ProviderKind::Aws => "AwsMasterKey",
        ProviderKind::Azure => "AzureMasterKey",
        ProviderKind::Gcp => "GcpMasterKey",
        ProviderKind::Kmip => "KmipMasterKey",
        ProviderKind::Local => "LocalMasterKey",
    };
    o.push_str(&format!("use mongodb::bson::{{doc, spec::BinarySubtype, Binary, Document}};\nuse mongodb::client_encryption::{{ClientEncryption, EncryptedClientBuilder, {ty}}};\nuse mongodb::mongocrypt::ctx::KmsProvider;\nuse mongodb::options::{{ClientOptions, TlsOptions}};\nuse mongodb::{{Client, Namespace}};\n\n"));
    o.push_str(
        "type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;\n\n",
    );
    o.push_str("// ---- BEGIN keyshift KMS settings: merge into your encrypted client builder and ClientEncryption ----\n");
    let (db, coll) = s.namespace.split_once('.').unwrap_or((&s.namespace, ""));
    o.push_str(&format!(
        "pub fn key_vault_namespace() -> Namespace {{\n    Namespace::new({}, {})\n}}\n\n",
        lit(db),
        lit(coll)
    ));
    o.push_str("fn env(name: &str) -> Result<String> {\n    std::env::var(name).map_err(|_| format!(\"{name} is not set\").into())\n}\n\n");
    o.push_str("#[allow(dead_code)]\nfn read_text(path: &str) -> Result<String> {\n    Ok(std::fs::read_to_string(path)?.trim().to_string())\n}\n\n");
    o.push_str("/// The local master key: 96 raw bytes, or their base64 text.\n#[allow(dead_code)]\nfn local_key(raw: Vec<u8>) -> Result<Binary> {\n    if raw.len() == 96 {\n        return Ok(Binary { subtype: BinarySubtype::Generic, bytes: raw });\n    }\n    Ok(Binary::from_base64(String::from_utf8(raw)?.trim(), BinarySubtype::Generic)?)\n}\n\n");
    o.push_str("/// A GCP service account key as libmongocrypt wants it: the base64 of its DER. PEM loses\n/// its armour lines; base64 text is kept as it is.\n#[allow(dead_code)]\nfn gcp_private_key(text: &str) -> String {\n    if !text.contains(\"-----BEGIN\") {\n        return text.trim().to_string();\n    }\n    text.lines()\n        .filter(|line| !line.starts_with(\"-----\"))\n        .map(str::trim)\n        .collect()\n}\n\n");
    o.push_str("/// kmsProviders for this stage, each with its KMS TLS options.\npub fn kms_providers() -> Result<Vec<(KmsProvider, Document, Option<TlsOptions>)>> {\n    Ok(vec![\n");
    for p in &s.providers {
        o.push_str(&format!(
            "        (\n            {},\n            doc! {{",
            provider_ctor(&p.name, p.kind)
        ));
        if p.fields.is_empty() {
            o.push_str("},\n");
        } else {
            o.push('\n');
            for (k, v) in &p.fields {
                o.push_str(&format!("                {}: {},\n", lit(k), expr(v)));
            }
            o.push_str("            },\n");
        }
        if p.tls.is_empty() {
            o.push_str("            None,\n");
        } else {
            o.push_str("            Some(\n                TlsOptions::builder()\n");
            for (k, v) in &p.tls {
                let value = match k.as_str() {
                    "tlsCAFile" => format!(".ca_file_path(std::path::PathBuf::from({}))", expr(v)),
                    "tlsCertificateKeyFile" => {
                        format!(".cert_key_file_path(std::path::PathBuf::from({}))", expr(v))
                    }
                    TLS_PASSWORD => format!(
                        ".tls_certificate_key_file_password({}.into_bytes())",
                        expr(v)
                    ),
                    _ => continue,
                };
                o.push_str(&format!("                    {value}\n"));
            }
            o.push_str("                    .build(),\n            ),\n");
        }
        o.push_str("        ),\n");
    }
    o.push_str("    ])\n}\n\n");
    o.push_str("/// Your application's client options with keyshift's KMS settings: the driver's encrypted\n/// client builder. Chain every option your application sets today onto it (schema_map or\n/// encrypted_fields_map, bypass_auto_encryption only if it already sets it, key_vault_client,\n/// extra_options for crypt_shared or mongocryptd), then build().\npub fn with_kms(client_options: ClientOptions) -> Result<EncryptedClientBuilder> {\n    Ok(Client::encrypted_builder(\n        client_options,\n        key_vault_namespace(),\n        kms_providers()?,\n    )?)\n}\n\n");
    o.push_str("/// The same KMS settings for ClientEncryption: new DEKs, explicit encrypt and decrypt.\npub fn client_encryption(key_vault_client: Client) -> Result<ClientEncryption> {\n    Ok(ClientEncryption::new(\n        key_vault_client,\n        key_vault_namespace(),\n        kms_providers()?,\n    )?)\n}\n");
    o.push_str("// ---- END keyshift KMS settings ----\n\n");
    o.push_str(&format!("/// The key vault's connection string.\npub fn connection_string() -> Result<String> {{\n    Ok({}.to_string())\n}}\n\n", expr(&s.uri)));
    o.push_str("/// A new DEK under the target master key; returns its _id.\npub async fn create_data_key(key_vault_client: Client, key_alt_names: Vec<String>) -> Result<Binary> {\n    let client_encryption = client_encryption(key_vault_client)?;\n");
    o.push_str(&format!("    let master_key = {};\n", master_key(s)));
    o.push_str("    Ok(client_encryption\n        .create_data_key(master_key)\n        .key_alt_names(key_alt_names)\n        .await?)\n}\n\n");
    o.push_str("/// A whole client with AUTOMATIC encryption, as an application that encrypts automatically\n/// has: fields its rules name are encrypted on every write and decrypted on every read.\n/// keyshift does not know those rules, so they are required: pass your application's own\n/// schema map (CSFLE) or encrypted fields map (Queryable Encryption), or an empty schema map\n/// only if it relies on the server's $jsonSchema validators. An application that encrypts\n/// explicitly and already sets bypass_auto_encryption(true) keeps doing so on its own\n/// with_kms builder; nothing here sets it.\n");
    o.push_str("pub async fn encrypted_client(\n    uri: &str,\n    app_schema_map: Option<Vec<(String, Document)>>,\n    app_encrypted_fields_map: Option<Vec<(String, Document)>>,\n) -> Result<Client> {\n    if app_schema_map.is_none() && app_encrypted_fields_map.is_none() {\n        return Err(\"pass your application's schema map or encrypted fields map (an empty schema map when it relies on the server's validators)\".into());\n    }\n    let mut builder = with_kms(ClientOptions::parse(uri).await?)?;\n    if let Some(map) = app_schema_map {\n        builder = builder.schema_map(map);\n    }\n    if let Some(map) = app_encrypted_fields_map {\n        builder = builder.encrypted_fields_map(map);\n    }\n    Ok(builder.build().await?)\n}\n");
    o
}
