//! From keyshift.toml to what the I/O needs: the config parsed and validated by core,
//! then every secret reference resolved (`env:NAME`, `file:PATH`), paths made relative
//! to the config file's directory, and libmongocrypt's documents built.
//!
//! Errors name the variable, file or field and what to do; never a secret's value.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document};
use keyshift_core::config::model::{MasterKey, Provider};
use keyshift_core::config::secret::{SecretError, SecretRef};
use keyshift_core::{Config, Diagnostic};

use crate::kms_tls::TlsOptions;
use crate::secret::{Secret, SecretDoc};

/// Why settings could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Unreadable(String),
    /// Core found errors in the configuration (exit 2).
    Invalid(Vec<Diagnostic>),
    /// A reference could not be resolved, or a resolved value is unusable (exit 2).
    Unresolved(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Unreadable(m) | LoadError::Unresolved(m) => f.write_str(m),
            LoadError::Invalid(d) => write!(
                f,
                "the configuration has {} error(s); run `keyshift check` for details",
                d.iter().filter(|d| d.is_error()).count()
            ),
        }
    }
}

/// The configuration, read and checked (no secret resolved yet).
pub struct Checked {
    /// The model.
    pub config: Config,
    /// Every diagnostic (errors and warnings), sorted.
    pub diagnostics: Vec<Diagnostic>,
    /// The directory relative paths are taken from.
    pub base: PathBuf,
}

/// Reads and validates `path`; invalid configurations are returned, not refused, so
/// `check` can print every finding.
pub fn check(path: &Path) -> Result<Checked, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| {
        LoadError::Unreadable(format!(
            "cannot read {}: {e}; pass the config with -c FILE (default ./keyshift.toml), \
             or write one with `keyshift guide`",
            path.display()
        ))
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let parsed = keyshift_core::check_toml(&text);
    let mut diagnostics = parsed.diagnostics;
    if std::str::from_utf8(&bytes).is_err() {
        diagnostics.push(Diagnostic::error(
            keyshift_core::diagnostic::codes::SYNTAX,
            "",
            "the file is not valid UTF-8 text",
            "Save keyshift.toml as UTF-8.",
        ));
    }
    keyshift_core::diagnostic::sort(&mut diagnostics);
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    Ok(Checked {
        config: parsed.config,
        diagnostics,
        base,
    })
}

/// Everything resolved: ready for MongoDB, libmongocrypt and the KMS.
pub struct Settings {
    /// The checked configuration.
    pub config: Config,
    /// The configuration file as given (for the audit trail).
    pub config_path: PathBuf,
    /// Where relative paths start.
    pub base: PathBuf,
    /// The MongoDB connection string (may hold credentials).
    pub uri: Secret<String>,
    /// Key vault database.
    pub key_vault_db: String,
    /// Key vault collection.
    pub key_vault_coll: String,
    /// libmongocrypt's kmsProviders.
    pub kms_providers: SecretDoc,
    /// TLS options per provider name.
    pub tls: HashMap<String, TlsOptions>,
    /// The target masterKey document (with `provider`), when the config has a target.
    pub target: Option<Document>,
    /// Which keys rewrap considers.
    pub filter: Document,
    /// Whether `[rewrap] filter` was written (rotate then also takes keys already under
    /// the target that it selects).
    pub filter_configured: bool,
    /// Keys per batch.
    pub batch_size: usize,
    /// KMS requests in flight.
    pub concurrency: usize,
    /// `[rewrap] kmsRate`: at most this many KMS requests per second per provider.
    pub kms_rate: Option<f64>,
    /// Where backups go.
    pub backup_dir: PathBuf,
    /// `[retire] deployments`: other deployments using the key vault (name, URI).
    pub data_deployments: Vec<(String, Secret<String>)>,
    /// `[retire] allDeploymentsListed = true`.
    pub all_deployments_listed: bool,
}

impl Settings {
    /// `db.coll` of the key vault.
    pub fn key_vault_ns(&self) -> String {
        format!("{}.{}", self.key_vault_db, self.key_vault_coll)
    }
}

fn resolve(base: &Path, field: &str, text: &str) -> Result<Secret<Vec<u8>>, LoadError> {
    match SecretRef::parse(text) {
        Ok(SecretRef::Env(name)) => std::env::var_os(&name)
            .map(|v| Secret::new(v.into_encoded_bytes()))
            .ok_or_else(|| {
                LoadError::Unresolved(format!(
                    "{field} refers to the environment variable {name}, which is not set; \
                     export it (or change the reference) and run again"
                ))
            }),
        Ok(SecretRef::File(p)) => {
            let path = base.join(&p);
            std::fs::read(&path).map(Secret::new).map_err(|e| {
                LoadError::Unresolved(format!(
                    "{field} refers to {}, which cannot be read: {e}",
                    path.display()
                ))
            })
        }
        Err(SecretError::Literal) => Err(LoadError::Unresolved(format!(
            "{field} holds a literal value; secrets must be env:NAME or file:PATH references"
        ))),
        Err(SecretError::Malformed(why)) => Err(LoadError::Unresolved(format!(
            "{field} is not a usable reference: {why}"
        ))),
    }
}

fn resolve_text(base: &Path, field: &str, text: &str) -> Result<Secret<String>, LoadError> {
    let bytes = resolve(base, field, text)?;
    let s = std::str::from_utf8(bytes.expose())
        .map_err(|_| LoadError::Unresolved(format!("{field}: the value is not UTF-8 text")))?;
    Ok(Secret::new(s.trim().to_string()))
}

/// A connection string field: a reference, or (validation having refused one with a
/// password) a literal `mongodb://` / `mongodb+srv://` string used as written.
fn resolve_uri(base: &Path, field: &str, text: &str) -> Result<Secret<String>, LoadError> {
    let t = text.trim();
    if t.starts_with("mongodb://") || t.starts_with("mongodb+srv://") {
        return Ok(Secret::new(t.to_string()));
    }
    resolve_text(base, field, text)
}

/// A GCP private key as libmongocrypt wants it: base64 of the PKCS#8 DER. A PEM file
/// (what `gcloud iam service-accounts keys create` gives inside its JSON) is accepted.
fn gcp_private_key(text: &str) -> String {
    if text.contains("-----BEGIN") {
        text.lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect()
    } else {
        text.to_string()
    }
}

fn provider_doc(base: &Path, name: &str, p: &Provider) -> Result<Document, LoadError> {
    let at = |f: &str| format!("kmsProviders.{name}.{f}");
    let mut d = Document::new();
    let secret = |d: &mut Document, field: &str, v: &Option<String>| -> Result<(), LoadError> {
        if let Some(text) = v {
            let value = resolve_text(base, &at(field), text)?;
            d.insert(field, value.expose().clone());
        }
        Ok(())
    };
    match p {
        Provider::Aws(a) => {
            secret(&mut d, "accessKeyId", &a.access_key_id)?;
            secret(&mut d, "secretAccessKey", &a.secret_access_key)?;
            secret(&mut d, "sessionToken", &a.session_token)?;
        }
        Provider::Azure(a) => {
            if let Some(t) = &a.tenant_id {
                d.insert("tenantId", t.clone());
            }
            if let Some(c) = &a.client_id {
                d.insert("clientId", c.clone());
            }
            secret(&mut d, "clientSecret", &a.client_secret)?;
            if let Some(e) = &a.identity_platform_endpoint {
                d.insert("identityPlatformEndpoint", e.clone());
            }
        }
        Provider::Gcp(g) => {
            if let Some(e) = &g.email {
                d.insert("email", e.clone());
            }
            if let Some(text) = &g.private_key {
                let key = resolve_text(base, &at("privateKey"), text)?;
                d.insert("privateKey", gcp_private_key(key.expose()));
            }
            if let Some(e) = &g.endpoint {
                d.insert("endpoint", e.clone());
            }
        }
        Provider::Kmip(k) => {
            if let Some(e) = &k.endpoint {
                d.insert("endpoint", e.clone());
            }
        }
        Provider::Local(l) => {
            let text = l
                .key
                .as_deref()
                .ok_or_else(|| LoadError::Unresolved(format!("{} is missing", at("key"))))?;
            let bytes = resolve(base, &at("key"), text)?;
            let key =
                keyshift_core::validate::validate_local_key_bytes_for(name, bytes.expose())
                    .map_err(|d| LoadError::Unresolved(format!("{}: {}", at("key"), d.message)))?;
            d.insert(
                "key",
                Binary {
                    subtype: BinarySubtype::Generic,
                    bytes: key.0.to_vec(),
                },
            );
        }
        Provider::Other(_) => {
            return Err(LoadError::Unresolved(format!(
                "kmsProviders.{name}: unknown provider type"
            )));
        }
    }
    Ok(d)
}

fn to_bson_doc(value: serde_json::Value, what: &str) -> Result<Document, LoadError> {
    extjson_document(value, what).map_err(LoadError::Unresolved)
}

/// An extended-JSON value as a BSON document; `what` names it in the error.
pub fn extjson_document(value: serde_json::Value, what: &str) -> Result<Document, String> {
    match Bson::try_from(value) {
        Ok(Bson::Document(d)) => Ok(d),
        Ok(_) => Err(format!("{what} is not a document")),
        // A JSON object that is not valid extended JSON, e.g. {"$oid": "zz"}.
        Err(e) => Err(format!("{what} is not valid extended JSON: {e}")),
    }
}

/// The target's masterKey document as libmongocrypt stores it.
pub fn target_document(provider: &str, key: &MasterKey) -> Result<Document, LoadError> {
    to_bson_doc(
        serde_json::Value::Object(key.to_document(provider)),
        "target.masterKey",
    )
}

/// Only the key vault's connection string and namespace, resolved: for commands that
/// just look at the key vault (plan, policy) and need no KMS credential.
pub fn key_vault_only(path: &Path) -> Result<(Secret<String>, String, String), LoadError> {
    let Checked { config, base, .. } = check(path)?;
    let uri_ref = config.key_vault.uri.as_deref().ok_or_else(|| {
        LoadError::Unresolved("keyVault.uri is missing (e.g. uri = \"env:MONGODB_URI\")".into())
    })?;
    let uri = resolve_uri(&base, "keyVault.uri", uri_ref)?;
    let (db, coll) = config
        .key_vault
        .namespace
        .split_once('.')
        .map(|(d, c)| (d.to_string(), c.to_string()))
        .ok_or_else(|| LoadError::Unresolved("keyVault.namespace must be db.coll".into()))?;
    Ok((uri, db, coll))
}

/// Checks the configuration and resolves every secret; refuses invalid ones.
pub fn load(path: &Path) -> Result<Settings, LoadError> {
    let Checked {
        config,
        diagnostics,
        base,
    } = check(path)?;
    if keyshift_core::diagnostic::has_errors(&diagnostics) {
        return Err(LoadError::Invalid(diagnostics));
    }
    let uri_ref = config.key_vault.uri.as_deref().ok_or_else(|| {
        LoadError::Unresolved("keyVault.uri is missing (e.g. uri = \"env:MONGODB_URI\")".into())
    })?;
    let uri = resolve_uri(&base, "keyVault.uri", uri_ref)?;
    let (db, coll) = config
        .key_vault
        .namespace
        .split_once('.')
        .map(|(d, c)| (d.to_string(), c.to_string()))
        .ok_or_else(|| LoadError::Unresolved("keyVault.namespace must be db.coll".into()))?;
    let mut providers = Document::new();
    for (name, p) in &config.kms_providers {
        providers.insert(name.clone(), provider_doc(&base, name, p)?);
    }
    let mut tls = HashMap::new();
    for (name, o) in &config.tls_options {
        let cert_key_password = match &o.tls_certificate_key_file_password {
            Some(text) => Some(resolve_text(
                &base,
                &format!("tlsOptions.{name}.tlsCertificateKeyFilePassword"),
                text,
            )?),
            None => None,
        };
        tls.insert(
            name.clone(),
            TlsOptions {
                ca_file: o.tls_ca_file.as_ref().map(|p| base.join(p)),
                cert_key_file: o.tls_certificate_key_file.as_ref().map(|p| base.join(p)),
                cert_key_password,
            },
        );
    }
    let target = match &config.target {
        Some(t) => Some(target_document(&t.provider, &t.master_key)?),
        None => None,
    };
    let rewrap = config.rewrap.clone().unwrap_or_default();
    let filter = match &rewrap.filter {
        Some(text) => {
            let v: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| LoadError::Unresolved(format!("rewrap.filter: {e}")))?;
            to_bson_doc(v, "rewrap.filter")?
        }
        None => Document::new(),
    };
    let retire = config.retire.clone().unwrap_or_default();
    let mut data_deployments = Vec::new();
    for (name, text) in &retire.deployments {
        let uri = resolve_uri(&base, &format!("retire.deployments.{name}"), text)?;
        data_deployments.push((name.clone(), uri));
    }
    crate::failpoint::hit("settings.loaded");
    Ok(Settings {
        data_deployments,
        all_deployments_listed: retire.all_deployments_listed == Some(true),
        uri,
        key_vault_db: db,
        key_vault_coll: coll,
        kms_providers: SecretDoc::new(providers),
        tls,
        target,
        filter,
        filter_configured: rewrap.filter.is_some(),
        batch_size: rewrap.batch_size().clamp(1, 100_000) as usize,
        concurrency: rewrap.concurrency().clamp(1, 1024) as usize,
        kms_rate: rewrap.kms_rate.filter(|r| *r > 0).map(|r| r as f64),
        backup_dir: base.join(rewrap.backup_dir()),
        config_path: path.to_path_buf(),
        base,
        config,
    })
}
