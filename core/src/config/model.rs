//! The keyshift.toml model (DESIGN.md, "keyshift.toml"), shared with the browser as JSON.
//!
//! Field names follow MongoDB's own (camelCase). The model is lenient on purpose: it
//! holds what the user wrote, even when it is wrong, so that validation can report every
//! problem at once and the browser can round-trip a half-typed configuration. Required
//! fields that are missing are `None` here and reported by the parser.
//!
//! Secret fields hold the reference text as written (`env:NAME`, `file:PATH`); see
//! [`super::secret`] to interpret it.

use std::collections::BTreeMap;

use serde::Serialize;

/// The default key vault namespace, as in MongoDB's documentation.
pub const DEFAULT_NAMESPACE: &str = "encryption.__keyVault";
/// Default number of keys per rewrap batch.
pub const DEFAULT_BATCH_SIZE: i64 = 256;
/// Default number of concurrent KMS requests (docs/performance.md, "Rewrap": 32 keeps
/// a 50 ms KMS busy; 16 left a third of it idle).
pub const DEFAULT_CONCURRENCY: i64 = 32;
/// Default directory for rewrap backups.
pub const DEFAULT_BACKUP_DIR: &str = "keyshift-backups";

/// A whole keyshift.toml.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// `[keyVault]`: where the DEKs live.
    pub key_vault: KeyVault,
    /// `[kmsProviders.NAME]`: every provider the migration needs, keyed by name
    /// (`local`, `aws`, `aws:prod`, ...).
    pub kms_providers: BTreeMap<String, Provider>,
    /// `[tlsOptions.NAME]`: TLS files per provider name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tls_options: BTreeMap<String, TlsOptions>,
    /// `[target]`: where the keys go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// `[rewrap]`: tuning and selection for `keyshift rewrap`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrap: Option<Rewrap>,
    /// `[rotate]`: which collections `keyshift rotate` and `keyshift retire` scan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotate: Option<Rotate>,
    /// `[retire]`: every deployment whose data uses the key vault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retire: Option<Retire>,
    /// `[audit]`: where the audit trail goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<Audit>,
}

/// `[keyVault]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyVault {
    /// Connection string, normally a secret reference (`env:MONGODB_URI`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// `db.coll` of the key vault collection.
    pub namespace: String,
}

impl Default for KeyVault {
    fn default() -> Self {
        KeyVault {
            uri: None,
            namespace: DEFAULT_NAMESPACE.to_string(),
        }
    }
}

/// The five KMS provider types libmongocrypt knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// AWS KMS.
    Aws,
    /// Azure Key Vault.
    Azure,
    /// Google Cloud KMS.
    Gcp,
    /// Any KMIP server.
    Kmip,
    /// A locally managed 96-byte key.
    Local,
}

impl ProviderKind {
    /// Every kind, in documentation order.
    pub const ALL: [ProviderKind; 5] = [
        ProviderKind::Aws,
        ProviderKind::Azure,
        ProviderKind::Gcp,
        ProviderKind::Kmip,
        ProviderKind::Local,
    ];

    /// The type name as used in kmsProviders and masterKey.provider.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Aws => "aws",
            ProviderKind::Azure => "azure",
            ProviderKind::Gcp => "gcp",
            ProviderKind::Kmip => "kmip",
            ProviderKind::Local => "local",
        }
    }

    /// The kind of a provider name: `aws` and `aws:prod` are both AWS. `None` for an
    /// unknown type.
    pub fn of_name(name: &str) -> Option<ProviderKind> {
        let ty = name.split_once(':').map_or(name, |(t, _)| t);
        ProviderKind::ALL.into_iter().find(|k| k.as_str() == ty)
    }

    /// Whether the provider reaches a remote service (everything but local).
    pub fn is_remote(self) -> bool {
        self != ProviderKind::Local
    }
}

/// Whether a provider name is named (`aws:prod`) rather than plain (`aws`).
pub fn is_named(name: &str) -> bool {
    name.contains(':')
}

/// `[kmsProviders.NAME]`: credentials for one provider; the variant follows the name.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Provider {
    /// `aws` / `aws:NAME`.
    Aws(AwsProvider),
    /// `azure` / `azure:NAME`.
    Azure(AzureProvider),
    /// `gcp` / `gcp:NAME`.
    Gcp(GcpProvider),
    /// `kmip` / `kmip:NAME`.
    Kmip(KmipProvider),
    /// `local` / `local:NAME`.
    Local(LocalProvider),
    /// A provider of an unknown type, kept as written so nothing is lost.
    Other(serde_json::Map<String, serde_json::Value>),
}

/// AWS credentials; all absent means the AWS credential chain (on demand).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsProvider {
    /// Secret reference to the access key id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Secret reference to the secret access key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    /// Secret reference to a session token (temporary credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
}

/// Azure credentials; all absent means managed identity (on demand).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureProvider {
    /// Directory (tenant) GUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Application (client) GUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Secret reference to the client secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// `host[:port]` of the identity platform (default login.microsoftonline.com).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_platform_endpoint: Option<String>,
}

/// GCP credentials; all absent means the attached service account (on demand).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcpProvider {
    /// Service account email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Secret reference to the service account private key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// `host[:port]` of the OAuth endpoint (default oauth2.googleapis.com).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// KMIP server; authentication is the client certificate in tlsOptions.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KmipProvider {
    /// host:port of the KMIP server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// A locally managed master key.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalProvider {
    /// Secret reference to the 96-byte key (raw or base64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The key may have leaked: the plan rotates DEKs and re-encrypts data.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exposed: bool,
}

/// `[tlsOptions.NAME]`: file paths for a provider's TLS connection.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct TlsOptions {
    /// CA bundle (PEM) to trust for this provider.
    #[serde(rename = "tlsCAFile", skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<String>,
    /// Client certificate and private key (PEM); required for KMIP.
    #[serde(
        rename = "tlsCertificateKeyFile",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_certificate_key_file: Option<String>,
    /// Secret reference to the password of the client key.
    #[serde(
        rename = "tlsCertificateKeyFilePassword",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_certificate_key_file_password: Option<String>,
}

/// `[target]`: the provider and master key the DEKs move to.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// A key of kmsProviders.
    pub provider: String,
    /// The master key, with the fields of the provider's type.
    pub master_key: MasterKey,
}

/// A master key (masterKey / dataKeyOpts), without the `provider` field.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MasterKey {
    /// AWS KMS key.
    Aws(AwsMasterKey),
    /// Azure Key Vault key.
    Azure(AzureMasterKey),
    /// Google Cloud KMS key.
    Gcp(GcpMasterKey),
    /// KMIP managed object.
    Kmip(KmipMasterKey),
    /// Local key: no fields.
    Local(LocalMasterKey),
    /// Master key of an unknown provider type, kept as written.
    Other(serde_json::Map<String, serde_json::Value>),
}

/// AWS masterKey.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsMasterKey {
    /// Region of the key, e.g. `us-east-1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Key ARN (or alias ARN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Custom `host[:port]` for KMS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// Azure masterKey.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureMasterKey {
    /// Vault host, e.g. `myvault.vault.azure.net`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_vault_endpoint: Option<String>,
    /// Key name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// Key version (32 hex digits); absent means the current version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_version: Option<String>,
}

/// GCP masterKey.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcpMasterKey {
    /// Project id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Location, e.g. `global` or `us-east1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Key ring id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_ring: Option<String>,
    /// Crypto key id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// Crypto key version; absent means the primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_version: Option<String>,
    /// Custom `host[:port]` for Cloud KMS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// KMIP masterKey.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KmipMasterKey {
    /// Unique identifier of the managed object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Let the KMIP server encrypt and decrypt (KMIP 1.2+ Encrypt/Decrypt).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegated: Option<bool>,
    /// host:port overriding the provider's endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// Local masterKey: it has no fields besides `provider`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct LocalMasterKey {}

/// `[rewrap]`. Numbers are kept as written (even out of bounds) so validation can say so.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rewrap {
    /// Extended JSON query selecting the keys to rewrap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Keys per batch (bounds memory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<i64>,
    /// Concurrent KMS requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<i64>,
    /// At most this many KMS requests per second per provider (default: no ceiling,
    /// only the pace throttling answers impose; see [`crate::kms_rate`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_rate: Option<i64>,
    /// AWS → AWS moves by KMS `ReEncrypt` (default true; see [`crate::reencrypt`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_re_encrypt: Option<bool>,
    /// Prove one key in N of those moved by `ReEncrypt` (default 1: every key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub re_encrypt_proof_one_in: Option<i64>,
    /// Directory for backups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_dir: Option<String>,
    /// KMIP object ids to move keys away from although they are on the target's KMIP
    /// server: with a target `masterKey` without `keyId`, a key under any object of
    /// that server counts as under the target (the server names the objects it creates),
    /// unless its `keyId` is listed here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kmip_replace_key_ids: Option<Vec<String>>,
}

impl Rewrap {
    /// Whether a masterKey (extended JSON) is a KMIP key this configuration replaces.
    pub fn replaces(&self, master_key: &serde_json::Value) -> bool {
        let is_kmip = master_key
            .get("provider")
            .and_then(serde_json::Value::as_str)
            .and_then(ProviderKind::of_name)
            == Some(ProviderKind::Kmip);
        let key_id = master_key.get("keyId").and_then(serde_json::Value::as_str);
        match (&self.kmip_replace_key_ids, key_id) {
            (Some(list), Some(id)) if is_kmip => list.iter().any(|x| x == id),
            _ => false,
        }
    }
}

/// `[rotate]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotate {
    /// `db.coll` namespaces to scan for encrypted values (`--all-collections` scans
    /// every collection instead). Kept as written; validation checks each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collections: Option<Vec<String>>,
}

/// `[retire]`: `keyshift retire` deletes keys for good, so it scans every deployment
/// whose data may be encrypted with the key vault's keys, and refuses until the user
/// says that list is complete.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Retire {
    /// Other deployments by name: name -> connection string reference (`env:NAME`,
    /// `file:PATH`, or a literal URI without a password). The key vault's own
    /// deployment is always scanned and needs no entry.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub deployments: BTreeMap<String, String>,
    /// The user's statement that no deployment outside the key vault's own and
    /// `deployments` uses the key vault. retire refuses without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all_deployments_listed: Option<bool>,
}

/// `[audit]`: the audit trail every command that changes the key vault appends to
/// (docs/audit.md).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Audit {
    /// The JSON Lines file (default: `audit.jsonl` in the backup directory); relative
    /// paths start at the config file's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Also insert every record into this `db.coll` of the key vault's deployment
    /// (write concern majority).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
}

/// The audit file's name in the backup directory when `[audit] file` is not set.
pub const DEFAULT_AUDIT_FILE: &str = "audit.jsonl";

impl Rewrap {
    /// batchSize or its default.
    pub fn batch_size(&self) -> i64 {
        self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE)
    }
    /// concurrency or its default.
    pub fn concurrency(&self) -> i64 {
        self.concurrency.unwrap_or(DEFAULT_CONCURRENCY)
    }
    /// backupDir or its default.
    pub fn backup_dir(&self) -> &str {
        self.backup_dir.as_deref().unwrap_or(DEFAULT_BACKUP_DIR)
    }
}

impl Config {
    /// The target's provider kind, when the target names a known type.
    pub fn target_kind(&self) -> Option<ProviderKind> {
        self.target
            .as_ref()
            .and_then(|t| ProviderKind::of_name(&t.provider))
    }

    /// Provider names other than the target: the sources keys move from.
    pub fn source_providers(&self) -> Vec<&str> {
        let target = self.target.as_ref().map(|t| t.provider.as_str());
        self.kms_providers
            .keys()
            .map(String::as_str)
            .filter(|n| Some(*n) != target)
            .collect()
    }

    /// Whether any local source provider is marked exposed.
    pub fn source_exposed(&self) -> bool {
        self.source_providers()
            .iter()
            .any(|n| matches!(self.kms_providers.get(*n), Some(Provider::Local(l)) if l.exposed))
    }

    /// The effective rewrap options (defaults when `[rewrap]` is absent).
    pub fn rewrap_or_default(&self) -> Rewrap {
        self.rewrap.clone().unwrap_or_default()
    }

    /// Serializes to the JSON form the browser uses.
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Serializes to keyshift.toml text. Fails only for values TOML cannot hold.
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| e.to_string())
    }
}

impl MasterKey {
    /// The masterKey document as libmongocrypt stores it: `provider` plus the fields.
    pub fn to_document(&self, provider: &str) -> serde_json::Map<String, serde_json::Value> {
        let mut doc = serde_json::Map::new();
        doc.insert("provider".into(), provider.into());
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(self) {
            doc.extend(fields);
        }
        doc
    }
}
