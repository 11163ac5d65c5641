//! Rust (`mongodb` crate 3.x, feature `in-use-encryption`).
//!
//! API, from docs.rs:
//! - `ClientEncryption::new(key_vault_client, key_vault_namespace, kms_providers)` with
//!   items `(KmsProvider, Document, Option<TlsOptions>)`, and
//!   `ClientEncryption::create_data_key(master_key).key_alt_names(..)`:
//!   <https://docs.rs/mongodb/latest/mongodb/client_encryption/struct.ClientEncryption.html>
//! - `AwsMasterKey::builder()` and the other master key builders:
//!   <https://docs.rs/mongodb/latest/mongodb/client_encryption/enum.MasterKey.html>
//! - `Client::encrypted_builder(options, namespace, kms_providers)?
//!   .bypass_auto_encryption(true).build()`:
//!   <https://docs.rs/mongodb/latest/mongodb/struct.Client.html#method.encrypted_builder>
//! - `KmsProvider::aws().with_name(..)`:
//!   <https://docs.rs/mongocrypt/latest/mongocrypt/ctx/struct.KmsProvider.html>

use crate::config::ProviderKind;

use super::{Setup, Source, header};

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
    o.push_str(&format!("//! {}\n", header(s)));
    o.push_str("//! Generated from keyshift.toml. Secrets are read from the environment or files, never written here.\n");
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
    o.push_str(&format!("use mongodb::bson::{{doc, spec::BinarySubtype, Binary, Document}};\nuse mongodb::client_encryption::{{ClientEncryption, {ty}}};\nuse mongodb::mongocrypt::ctx::KmsProvider;\nuse mongodb::options::{{ClientOptions, TlsOptions}};\nuse mongodb::{{Client, Namespace}};\n\n"));
    o.push_str(
        "type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;\n\n",
    );
    let (db, coll) = s.namespace.split_once('.').unwrap_or((&s.namespace, ""));
    o.push_str(&format!(
        "pub fn key_vault_namespace() -> Namespace {{\n    Namespace::new({}, {})\n}}\n\n",
        lit(db),
        lit(coll)
    ));
    o.push_str("fn env(name: &str) -> Result<String> {\n    std::env::var(name).map_err(|_| format!(\"{name} is not set\").into())\n}\n\n");
    o.push_str("#[allow(dead_code)]\nfn read_text(path: &str) -> Result<String> {\n    Ok(std::fs::read_to_string(path)?.trim().to_string())\n}\n\n");
    o.push_str("/// The local master key: 96 raw bytes, or their base64 text.\n#[allow(dead_code)]\nfn local_key(raw: Vec<u8>) -> Result<Binary> {\n    if raw.len() == 96 {\n        return Ok(Binary { subtype: BinarySubtype::Generic, bytes: raw });\n    }\n    Ok(Binary::from_base64(String::from_utf8(raw)?.trim(), BinarySubtype::Generic)?)\n}\n\n");
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
                let setter = match k.as_str() {
                    "tlsCAFile" => "ca_file_path",
                    "tlsCertificateKeyFile" => "cert_key_file_path",
                    _ => continue,
                };
                o.push_str(&format!(
                    "                    .{setter}(std::path::PathBuf::from({}))\n",
                    expr(v)
                ));
            }
            o.push_str("                    .build(),\n            ),\n");
        }
        o.push_str("        ),\n");
    }
    o.push_str("    ])\n}\n\n");
    o.push_str(&format!("/// The key vault's connection string.\npub fn connection_string() -> Result<String> {{\n    Ok({}.to_string())\n}}\n\n", expr(&s.uri)));
    o.push_str("/// A client that decrypts fields whose DEKs are under any provider above.\npub async fn encrypted_client(uri: &str) -> Result<Client> {\n    let options = ClientOptions::parse(uri).await?;\n    Ok(Client::encrypted_builder(options, key_vault_namespace(), kms_providers()?)?\n        .bypass_auto_encryption(true)\n        .build()\n        .await?)\n}\n\n");
    o.push_str("/// A new DEK under the target master key; returns its _id.\npub async fn create_data_key(key_vault_client: Client, key_alt_names: Vec<String>) -> Result<Binary> {\n    let client_encryption = ClientEncryption::new(key_vault_client, key_vault_namespace(), kms_providers()?)?;\n");
    o.push_str(&format!("    let master_key = {};\n", master_key(s)));
    o.push_str("    Ok(client_encryption\n        .create_data_key(master_key)\n        .key_alt_names(key_alt_names)\n        .await?)\n}\n");
    o
}
