//! Diagnostics: what validation says about a configuration, in the same words for the
//! CLI (`keyshift check`) and the browser guide.
//!
//! A diagnostic has a stable code (`KS-<AREA>-<NNN>`), a severity, a JSON pointer to
//! the field it is about, a message that says what is wrong and a hint that says what to
//! do. Codes are listed once, in [`codes`], and documented in docs/config.md (a test
//! keeps the two in sync). A code is never renumbered or reused: retired codes stay
//! listed as retired.

use serde::{Deserialize, Serialize};

/// How bad a diagnostic is. Errors make `keyshift check` exit 2; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The configuration cannot be used as it is.
    Error,
    /// The configuration works but probably not as the user means it to.
    Warning,
}

/// One finding about a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Stable code, e.g. `KS-AWS-005`; see [`codes`].
    pub code: String,
    /// Error or warning.
    pub severity: Severity,
    /// JSON pointer (RFC 6901) into the configuration, e.g.
    /// `/kmsProviders/aws:prod/accessKeyId`; empty for the whole document.
    pub path: String,
    /// What is wrong, in one sentence. Never contains a secret value.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl Diagnostic {
    /// An error diagnostic.
    pub fn error(
        code: &str,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(code, Severity::Error, path, message, hint)
    }

    /// A warning diagnostic.
    pub fn warning(
        code: &str,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(code, Severity::Warning, path, message, hint)
    }

    fn new(
        code: &str,
        severity: Severity,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code: code.to_string(),
            severity,
            path: path.into(),
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// One diagnostic as people read it in a terminal:
/// `error[KS-AWS-005] /target/masterKey/region: message` and an indented hint line.
impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(
            f,
            "{severity}[{}] {path}: {}\n  hint: {}",
            self.code, self.message, self.hint
        )
    }
}

/// True when any diagnostic is an error.
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(Diagnostic::is_error)
}

/// Sorts diagnostics the way users read them: by path, then errors first, then code.
/// Stable so the CLI, the browser and golden tests agree on the order.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (a.path.as_str(), a.severity, a.code.as_str()).cmp(&(
            b.path.as_str(),
            b.severity,
            b.code.as_str(),
        ))
    });
}

/// Builds a JSON pointer (RFC 6901) from path segments, escaping `~` and `/`.
pub fn pointer<S: AsRef<str>>(segments: &[S]) -> String {
    let mut out = String::new();
    for s in segments {
        out.push('/');
        out.push_str(&s.as_ref().replace('~', "~0").replace('/', "~1"));
    }
    out
}

/// Appends one segment to a JSON pointer.
pub fn child(path: &str, segment: &str) -> String {
    format!("{path}{}", pointer(&[segment]))
}

/// Every diagnostic code, with a one-line summary. The list is append-only.
pub mod codes {
    /// The input is not valid TOML or JSON.
    pub const SYNTAX: &str = "KS-CFG-001";
    /// A field that keyshift does not know (often a typo).
    pub const UNKNOWN_FIELD: &str = "KS-CFG-002";
    /// A field of the wrong type.
    pub const WRONG_TYPE: &str = "KS-CFG-003";
    /// A required field or section is missing.
    pub const MISSING_FIELD: &str = "KS-CFG-004";
    /// A string field is empty.
    pub const EMPTY_VALUE: &str = "KS-CFG-005";
    /// A file the configuration names cannot be read (checked by the native shell).
    pub const FILE_UNREADABLE: &str = "KS-CFG-006";

    /// A secret field holds a literal value instead of a reference.
    pub const LITERAL_SECRET: &str = "KS-SEC-001";
    /// A secret reference is malformed (`env:` / `file:` syntax).
    pub const BAD_SECRET_REF: &str = "KS-SEC-002";

    /// keyVault.namespace is not `db.coll`.
    pub const KV_NAMESPACE: &str = "KS-KV-001";
    /// keyVault.uri is not a MongoDB connection string.
    pub const KV_URI: &str = "KS-KV-002";
    /// keyVault.uri: a malformed connection string (what the driver would refuse).
    pub const KV_URI_MALFORMED: &str = "KS-KV-003";
    /// keyVault.uri: a read preference or read concern that may read stale key documents.
    pub const KV_URI_WEAK_READ: &str = "KS-KV-004";
    /// keyVault.uri: a write concern weaker than majority, or journal=false.
    pub const KV_URI_WEAK_WRITE: &str = "KS-KV-005";
    /// keyVault.uri: an option this build cannot honour (GSSAPI, unknown compressor).
    pub const KV_URI_UNSUPPORTED: &str = "KS-KV-006";

    /// A kmsProviders entry of an unknown provider type.
    pub const PRV_UNKNOWN_TYPE: &str = "KS-PRV-001";
    /// A named provider whose name part is invalid.
    pub const PRV_BAD_NAME: &str = "KS-PRV-002";
    /// kmsProviders is empty.
    pub const PRV_NONE: &str = "KS-PRV-003";
    /// A named provider relies on on-demand credentials, which named providers lack.
    pub const PRV_NAMED_ON_DEMAND: &str = "KS-PRV-004";
    /// Only some of a provider's credential fields are set.
    pub const PRV_PARTIAL_CREDENTIALS: &str = "KS-PRV-005";

    /// An endpoint is not `host[:port]`.
    pub const NET_ENDPOINT: &str = "KS-NET-001";

    /// tlsOptions names a provider that kmsProviders does not have.
    pub const TLS_UNKNOWN_PROVIDER: &str = "KS-TLS-001";
    /// An insecure TLS option that drivers refuse for KMS connections.
    pub const TLS_INSECURE: &str = "KS-TLS-002";
    /// tlsOptions for the local provider, which makes no connection.
    pub const TLS_LOCAL: &str = "KS-TLS-003";

    /// target.provider is not a key of kmsProviders.
    pub const TGT_UNKNOWN_PROVIDER: &str = "KS-TGT-001";
    /// The target is the only provider: there is nothing to move from.
    pub const TGT_ONLY_PROVIDER: &str = "KS-TGT-002";
    /// The target is a local key.
    pub const TGT_LOCAL: &str = "KS-TGT-003";

    /// The target local key is the same key as a source local key.
    pub const TGT_SAME_AS_SOURCE: &str = "KS-TGT-004";

    /// AWS key is not a well-formed KMS key or alias ARN.
    pub const AWS_BAD_ARN: &str = "KS-AWS-001";
    /// AWS key is a bare key id or alias name, not an ARN.
    pub const AWS_NOT_ARN: &str = "KS-AWS-002";
    /// AWS ARN partition is not aws, aws-cn or aws-us-gov.
    pub const AWS_PARTITION: &str = "KS-AWS-003";
    /// AWS region is malformed.
    pub const AWS_REGION: &str = "KS-AWS-004";
    /// AWS region in the ARN differs from masterKey.region.
    pub const AWS_REGION_MISMATCH: &str = "KS-AWS-005";
    /// AWS account id is not 12 digits.
    pub const AWS_ACCOUNT: &str = "KS-AWS-006";
    /// AWS key id is neither a UUID nor an `mrk-` multi-Region id.
    pub const AWS_KEY_ID: &str = "KS-AWS-007";
    /// AWS key is an alias ARN.
    pub const AWS_ALIAS: &str = "KS-AWS-008";
    /// AWS region does not belong to the ARN's partition.
    pub const AWS_PARTITION_REGION: &str = "KS-AWS-009";

    /// Azure keyVaultEndpoint is malformed.
    pub const AZ_ENDPOINT: &str = "KS-AZ-001";
    /// Azure keyVaultEndpoint is not on a known Key Vault domain.
    pub const AZ_ENDPOINT_DOMAIN: &str = "KS-AZ-002";
    /// Azure keyName is invalid.
    pub const AZ_KEY_NAME: &str = "KS-AZ-003";
    /// Azure keyVersion is not 32 hex digits.
    pub const AZ_KEY_VERSION: &str = "KS-AZ-004";
    /// Azure tenantId is not a GUID.
    pub const AZ_TENANT: &str = "KS-AZ-005";
    /// Azure clientId is not a GUID.
    pub const AZ_CLIENT: &str = "KS-AZ-006";
    /// Azure keyVaultEndpoint on a misspelt Key Vault domain (vault.azure.com).
    pub const AZ_ENDPOINT_TYPO: &str = "KS-AZ-007";
    /// Azure target masterKey without keyVersion: unreadable DEKs once the key rotates.
    pub const AZ_NO_KEY_VERSION: &str = "KS-AZ-008";

    /// GCP projectId is invalid.
    pub const GCP_PROJECT: &str = "KS-GCP-001";
    /// GCP location is invalid.
    pub const GCP_LOCATION: &str = "KS-GCP-002";
    /// GCP keyRing is invalid.
    pub const GCP_KEY_RING: &str = "KS-GCP-003";
    /// GCP keyName is invalid.
    pub const GCP_KEY_NAME: &str = "KS-GCP-004";
    /// GCP keyVersion is not a positive integer.
    pub const GCP_KEY_VERSION: &str = "KS-GCP-005";
    /// GCP email is not an email address.
    pub const GCP_EMAIL: &str = "KS-GCP-006";
    /// GCP email is not a service account address.
    pub const GCP_EMAIL_NOT_SA: &str = "KS-GCP-007";
    /// GCP location written like an AWS region (us-east-1 for us-east1).
    pub const GCP_LOCATION_AWS: &str = "KS-GCP-008";

    /// KMIP endpoint has no port.
    pub const KMIP_NO_PORT: &str = "KS-KMIP-001";
    /// KMIP keyId is invalid.
    pub const KMIP_KEY_ID: &str = "KS-KMIP-002";
    /// KMIP target has no keyId: a new KMIP object per DEK.
    pub const KMIP_NO_KEY_ID: &str = "KS-KMIP-003";
    /// KMIP needs a client certificate in tlsOptions.
    pub const KMIP_CLIENT_CERT: &str = "KS-KMIP-004";
    /// KMIP endpoint written as a URL (https://...).
    pub const KMIP_SCHEME: &str = "KS-KMIP-005";

    /// The local master key is not 96 bytes (raw or base64).
    pub const LOC_KEY_SIZE: &str = "KS-LOC-001";
    /// The local key is marked exposed: the plan rotates DEKs.
    pub const LOC_EXPOSED: &str = "KS-LOC-002";
    /// The local key file cannot be read (reported by the native shell, which reads it).
    pub const LOC_KEY_UNREADABLE: &str = "KS-LOC-003";

    /// rewrap.filter is not valid JSON.
    pub const RW_FILTER_JSON: &str = "KS-RW-001";
    /// rewrap.filter is not a JSON object.
    pub const RW_FILTER_OBJECT: &str = "KS-RW-002";
    /// rewrap.batchSize out of bounds.
    pub const RW_BATCH_SIZE: &str = "KS-RW-003";
    /// rewrap.concurrency out of bounds.
    pub const RW_CONCURRENCY: &str = "KS-RW-004";
    /// rewrap.filter uses a query operator MongoDB does not know.
    pub const RW_FILTER_OPERATOR: &str = "KS-RW-005";
    /// rewrap.kmipReplaceKeyIds that cannot work (not a KMIP target, or the target's own keyId).
    pub const RW_KMIP_REPLACE: &str = "KS-RW-006";
    /// rewrap.kmsRate out of bounds.
    pub const RW_KMS_RATE: &str = "KS-RW-007";
    /// rewrap.reEncryptProofOneIn out of bounds.
    pub const RW_PROOF_SAMPLE: &str = "KS-RW-008";

    /// A rotate.collections entry is not a valid `db.coll` namespace.
    pub const ROT_NAMESPACE: &str = "KS-ROT-001";
    /// A rotate.collections entry is the key vault collection.
    pub const ROT_KEY_VAULT: &str = "KS-ROT-002";
    /// A rotate.collections entry is in the admin, local or config database.
    pub const ROT_SYSTEM: &str = "KS-ROT-003";
    /// A rotate.collections entry is listed twice.
    pub const ROT_DUPLICATE: &str = "KS-ROT-004";
    /// rotate.collections is empty: rotate would scan nothing.
    pub const ROT_EMPTY: &str = "KS-ROT-005";

    /// retire.deployments: a deployment name that is invalid or reserved (its connection
    /// string is judged like keyVault.uri: KS-KV-*, KS-SEC-001 at the entry's path).
    pub const RET_NAME: &str = "KS-RET-001";
    /// A rotation is planned but retire.allDeploymentsListed is not true.
    pub const RET_UNCONFIRMED: &str = "KS-RET-002";

    /// audit.collection is not a valid `db.coll` namespace, or is in admin/local/config.
    pub const AUD_NAMESPACE: &str = "KS-AUD-001";
    /// audit.collection is the key vault collection.
    pub const AUD_KEY_VAULT: &str = "KS-AUD-002";

    /// `keyshift inspect`: an entry of the key vault that is not a document.
    pub const INV_NOT_A_DOCUMENT: &str = "KS-INV-001";
    /// `keyshift inspect`: a key without masterKey or masterKey.provider.
    pub const INV_NO_MASTER_KEY: &str = "KS-INV-002";
    /// `keyshift inspect`: a key under a provider type libmongocrypt does not know.
    pub const INV_UNKNOWN_PROVIDER: &str = "KS-INV-003";
    /// `keyshift inspect`: a key under a provider kmsProviders does not configure.
    pub const INV_UNCONFIGURED_PROVIDER: &str = "KS-INV-004";
    /// `keyshift inspect`: a key without binary keyMaterial.
    pub const INV_NO_KEY_MATERIAL: &str = "KS-INV-005";
    /// `keyshift inspect`: keyMaterial of a size its provider cannot produce.
    pub const INV_KEY_MATERIAL_SIZE: &str = "KS-INV-006";
    /// `keyshift inspect`: one keyAltName on several keys.
    pub const INV_DUPLICATE_ALT_NAME: &str = "KS-INV-007";
    /// `keyshift inspect`: a top-level field libmongocrypt does not know.
    pub const INV_UNKNOWN_FIELD: &str = "KS-INV-008";
    /// `keyshift inspect`: a field libmongocrypt requires is missing or malformed.
    pub const INV_MALFORMED_FIELD: &str = "KS-INV-009";
    /// `keyshift inspect`: keys under an Azure master key without keyVersion.
    pub const INV_AZURE_UNPINNED: &str = "KS-INV-010";
    /// `keyshift inspect`: keys still under a local master key after keys moved to a KMS.
    pub const INV_LOCAL_LEFT_BEHIND: &str = "KS-INV-011";
    /// `keyshift inspect --kms`: keys under an AWS KMS key that is disabled.
    pub const INV_KMS_KEY_DISABLED: &str = "KS-INV-012";
    /// `keyshift inspect --kms`: keys under an AWS KMS key scheduled for deletion.
    pub const INV_KMS_KEY_PENDING_DELETION: &str = "KS-INV-013";

    /// Every code with its summary, in order. Append only; never renumber.
    pub const ALL: &[(&str, &str)] = &[
        (SYNTAX, "the input is not valid TOML or JSON"),
        (UNKNOWN_FIELD, "unknown or misspelt field"),
        (WRONG_TYPE, "field of the wrong type"),
        (MISSING_FIELD, "required field or section missing"),
        (EMPTY_VALUE, "empty string"),
        (FILE_UNREADABLE, "a referenced file cannot be read"),
        (
            LITERAL_SECRET,
            "literal secret instead of env:/file: reference",
        ),
        (BAD_SECRET_REF, "malformed secret reference"),
        (KV_NAMESPACE, "keyVault.namespace is not db.coll"),
        (KV_URI, "keyVault.uri is not a MongoDB connection string"),
        (KV_URI_MALFORMED, "malformed MongoDB connection string"),
        (KV_URI_WEAK_READ, "connection string reads may be stale"),
        (KV_URI_WEAK_WRITE, "connection string writes below majority"),
        (KV_URI_UNSUPPORTED, "connection string option not supported"),
        (PRV_UNKNOWN_TYPE, "unknown KMS provider type"),
        (PRV_BAD_NAME, "invalid named provider"),
        (PRV_NONE, "no KMS providers"),
        (
            PRV_NAMED_ON_DEMAND,
            "named provider without credentials (on-demand unsupported)",
        ),
        (PRV_PARTIAL_CREDENTIALS, "only some credential fields set"),
        (NET_ENDPOINT, "endpoint is not host[:port]"),
        (TLS_UNKNOWN_PROVIDER, "tlsOptions for an unknown provider"),
        (TLS_INSECURE, "insecure TLS option"),
        (TLS_LOCAL, "tlsOptions for the local provider"),
        (TGT_UNKNOWN_PROVIDER, "target provider not in kmsProviders"),
        (TGT_ONLY_PROVIDER, "target is the only provider"),
        (TGT_LOCAL, "target is a local key"),
        (TGT_SAME_AS_SOURCE, "target local key is the source key"),
        (AWS_BAD_ARN, "malformed AWS KMS ARN"),
        (AWS_NOT_ARN, "AWS key id or alias name instead of ARN"),
        (AWS_PARTITION, "unknown AWS partition"),
        (AWS_REGION, "malformed AWS region"),
        (AWS_REGION_MISMATCH, "ARN region differs from region"),
        (AWS_ACCOUNT, "AWS account id not 12 digits"),
        (AWS_KEY_ID, "AWS key id not a UUID or mrk- id"),
        (AWS_ALIAS, "AWS alias ARN"),
        (
            AWS_PARTITION_REGION,
            "AWS region outside the ARN's partition",
        ),
        (AZ_ENDPOINT, "malformed Azure keyVaultEndpoint"),
        (
            AZ_ENDPOINT_DOMAIN,
            "keyVaultEndpoint not on a Key Vault domain",
        ),
        (AZ_KEY_NAME, "invalid Azure keyName"),
        (AZ_KEY_VERSION, "Azure keyVersion not 32 hex digits"),
        (AZ_TENANT, "Azure tenantId not a GUID"),
        (AZ_CLIENT, "Azure clientId not a GUID"),
        (
            AZ_ENDPOINT_TYPO,
            "keyVaultEndpoint on a misspelt Key Vault domain",
        ),
        (
            AZ_NO_KEY_VERSION,
            "Azure target without keyVersion (breaks when the key rotates)",
        ),
        (GCP_PROJECT, "invalid GCP projectId"),
        (GCP_LOCATION, "invalid GCP location"),
        (GCP_KEY_RING, "invalid GCP keyRing"),
        (GCP_KEY_NAME, "invalid GCP keyName"),
        (GCP_KEY_VERSION, "GCP keyVersion not a positive integer"),
        (GCP_EMAIL, "GCP email malformed"),
        (GCP_EMAIL_NOT_SA, "GCP email not a service account"),
        (GCP_LOCATION_AWS, "GCP location written like an AWS region"),
        (KMIP_NO_PORT, "KMIP endpoint without port"),
        (KMIP_KEY_ID, "invalid KMIP keyId"),
        (KMIP_NO_KEY_ID, "KMIP target without keyId"),
        (KMIP_CLIENT_CERT, "KMIP without client certificate"),
        (KMIP_SCHEME, "KMIP endpoint with a URL scheme"),
        (LOC_KEY_SIZE, "local master key not 96 bytes"),
        (LOC_EXPOSED, "local key marked exposed"),
        (LOC_KEY_UNREADABLE, "local key file cannot be read"),
        (RW_FILTER_JSON, "rewrap.filter not valid JSON"),
        (RW_FILTER_OBJECT, "rewrap.filter not an object"),
        (RW_BATCH_SIZE, "rewrap.batchSize out of bounds"),
        (RW_CONCURRENCY, "rewrap.concurrency out of bounds"),
        (RW_FILTER_OPERATOR, "rewrap.filter uses an unknown operator"),
        (
            RW_KMIP_REPLACE,
            "rewrap.kmipReplaceKeyIds cannot take effect",
        ),
        (RW_KMS_RATE, "rewrap.kmsRate out of bounds"),
        (RW_PROOF_SAMPLE, "rewrap.reEncryptProofOneIn out of bounds"),
        (ROT_NAMESPACE, "rotate.collections entry not db.coll"),
        (ROT_KEY_VAULT, "rotate.collections names the key vault"),
        (ROT_SYSTEM, "rotate.collections entry in admin/local/config"),
        (ROT_DUPLICATE, "rotate.collections entry listed twice"),
        (ROT_EMPTY, "rotate.collections is empty"),
        (RET_NAME, "retire.deployments name invalid or reserved"),
        (RET_UNCONFIRMED, "retire.allDeploymentsListed not confirmed"),
        (AUD_NAMESPACE, "audit.collection not a usable db.coll"),
        (AUD_KEY_VAULT, "audit.collection names the key vault"),
        (
            INV_NOT_A_DOCUMENT,
            "inspect: key vault entry not a document",
        ),
        (INV_NO_MASTER_KEY, "inspect: key without masterKey.provider"),
        (
            INV_UNKNOWN_PROVIDER,
            "inspect: key under an unknown provider type",
        ),
        (
            INV_UNCONFIGURED_PROVIDER,
            "inspect: key under a provider not in kmsProviders",
        ),
        (
            INV_NO_KEY_MATERIAL,
            "inspect: key without binary keyMaterial",
        ),
        (
            INV_KEY_MATERIAL_SIZE,
            "inspect: keyMaterial of an impossible size",
        ),
        (
            INV_DUPLICATE_ALT_NAME,
            "inspect: keyAltName shared by several keys",
        ),
        (
            INV_UNKNOWN_FIELD,
            "inspect: field libmongocrypt does not know",
        ),
        (INV_MALFORMED_FIELD, "inspect: field libmongocrypt refuses"),
        (
            INV_AZURE_UNPINNED,
            "inspect: keys under Azure without keyVersion",
        ),
        (
            INV_LOCAL_LEFT_BEHIND,
            "inspect: keys left under a local master key",
        ),
        (
            INV_KMS_KEY_DISABLED,
            "inspect --kms: AWS master key disabled",
        ),
        (
            INV_KMS_KEY_PENDING_DELETION,
            "inspect --kms: AWS master key pending deletion",
        ),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_escapes_tilde_and_slash() {
        assert_eq!(pointer(&["a/b", "c~d", "aws:prod"]), "/a~1b/c~0d/aws:prod");
        assert_eq!(child("/x", "y/z"), "/x/y~1z");
    }

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for (code, summary) in codes::ALL {
            assert!(seen.insert(*code), "duplicate code {code}");
            assert!(!summary.is_empty());
            let parts: Vec<&str> = code.split('-').collect();
            assert_eq!(parts.len(), 3, "{code}");
            assert_eq!(parts[0], "KS");
            assert!(parts[2].len() == 3 && parts[2].chars().all(|c| c.is_ascii_digit()));
        }
    }

    #[test]
    fn display_is_one_line_plus_hint() {
        let d = Diagnostic::error("KS-AWS-005", "/target/masterKey/region", "m.", "h.");
        assert_eq!(
            d.to_string(),
            "error[KS-AWS-005] /target/masterKey/region: m.\n  hint: h."
        );
    }

    #[test]
    fn severity_serializes_lowercase() {
        let d = Diagnostic::warning("KS-CFG-002", "/a", "m", "h");
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["severity"], "warning");
    }
}
