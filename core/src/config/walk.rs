//! The structural walk from a JSON value to the lenient [`Config`] model: unknown
//! fields (with "did you mean"), wrong types and missing required fields, each reported
//! with its JSON pointer. Field lists live here too, so the parser and the docs test
//! share one source.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::model::*;
use crate::diagnostic::{Diagnostic, child, codes, pointer};
use crate::suggest::did_you_mean;

const TOP: &[&str] = &[
    "keyVault",
    "kmsProviders",
    "tlsOptions",
    "target",
    "rewrap",
    "rotate",
    "retire",
    "audit",
];
const KEY_VAULT: &[&str] = &["uri", "namespace"];
const AWS: &[&str] = &["accessKeyId", "secretAccessKey", "sessionToken"];
const AZURE: &[&str] = &[
    "tenantId",
    "clientId",
    "clientSecret",
    "identityPlatformEndpoint",
];
const GCP: &[&str] = &["email", "privateKey", "endpoint"];
const KMIP: &[&str] = &["endpoint"];
const LOCAL: &[&str] = &["key", "exposed"];
const TLS: &[&str] = &[
    "tlsCAFile",
    "tlsCertificateKeyFile",
    "tlsCertificateKeyFilePassword",
];
/// Options drivers refuse for KMS TLS (client-side encryption spec, "KMS TLS Options").
const TLS_INSECURE: &[&str] = &[
    "tlsInsecure",
    "tlsAllowInvalidCertificates",
    "tlsAllowInvalidHostnames",
    "tlsDisableOCSPEndpointCheck",
    "tlsDisableCertificateRevocationCheck",
];
const TARGET: &[&str] = &["provider", "masterKey"];
const MK_AWS: &[&str] = &["region", "key", "endpoint"];
const MK_AZURE: &[&str] = &["keyVaultEndpoint", "keyName", "keyVersion"];
const MK_GCP: &[&str] = &[
    "projectId",
    "location",
    "keyRing",
    "keyName",
    "keyVersion",
    "endpoint",
];
const MK_KMIP: &[&str] = &["keyId", "delegated", "endpoint"];
const REWRAP: &[&str] = &[
    "filter",
    "batchSize",
    "concurrency",
    "kmsRate",
    "awsReEncrypt",
    "reEncryptProofOneIn",
    "backupDir",
    "kmipReplaceKeyIds",
];
const ROTATE: &[&str] = &["collections"];
const RETIRE: &[&str] = &["deployments", "allDeploymentsListed"];
const AUDIT: &[&str] = &["file", "collection"];

/// Every field name keyshift.toml knows, by section (for docs and the browser).
pub const FIELDS: &[(&str, &[&str])] = &[
    ("", TOP),
    ("keyVault", KEY_VAULT),
    ("kmsProviders.aws", AWS),
    ("kmsProviders.azure", AZURE),
    ("kmsProviders.gcp", GCP),
    ("kmsProviders.kmip", KMIP),
    ("kmsProviders.local", LOCAL),
    ("tlsOptions.*", TLS),
    ("target", TARGET),
    ("target.masterKey (aws)", MK_AWS),
    ("target.masterKey (azure)", MK_AZURE),
    ("target.masterKey (gcp)", MK_GCP),
    ("target.masterKey (kmip)", MK_KMIP),
    ("rewrap", REWRAP),
    ("rotate", ROTATE),
    ("retire", RETIRE),
    ("audit", AUDIT),
];

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(m) if m.len() == 1 && m.contains_key("$datetime") => "a date-time",
        Value::Object(_) => "a table",
    }
}

#[derive(Default)]
pub(super) struct Walker {
    diags: Vec<Diagnostic>,
}

impl Walker {
    /// Walks a whole configuration value.
    pub(super) fn run(value: &Value) -> (Config, Vec<Diagnostic>) {
        let mut w = Walker::default();
        let config = w.config(value);
        (config, w.diags)
    }

    fn wrong_type(&mut self, path: &str, want: &str, got: &Value) {
        self.diags.push(Diagnostic::error(
            codes::WRONG_TYPE,
            path,
            format!("`{path}` must be {want}, not {}", type_name(got)),
            format!("Write {want} here."),
        ));
    }

    fn missing(&mut self, path: &str, hint: &str) {
        self.diags.push(Diagnostic::error(
            codes::MISSING_FIELD,
            path,
            format!("`{path}` is required but missing"),
            hint,
        ));
    }

    fn obj<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(m) if type_name(v) == "a table" => Some(m),
            other => {
                self.wrong_type(path, "a table", other);
                None
            }
        }
    }

    /// Reports fields not in `known`, suggesting the nearest known one.
    fn unknown_fields(&mut self, m: &Map<String, Value>, path: &str, known: &[&str]) {
        for key in m.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let p = child(path, key);
            let (message, hint) = match did_you_mean(key, known) {
                Some(s) => (
                    format!("unknown field `{key}`; did you mean `{s}`?"),
                    format!("Rename `{key}` to `{s}`."),
                ),
                None => (
                    format!("unknown field `{key}`"),
                    format!(
                        "Remove it; the fields allowed here are: {}.",
                        known.join(", ")
                    ),
                ),
            };
            self.diags
                .push(Diagnostic::error(codes::UNKNOWN_FIELD, p, message, hint));
        }
    }

    fn string(
        &mut self,
        m: &Map<String, Value>,
        path: &str,
        key: &str,
        required: Option<&str>,
    ) -> Option<String> {
        let p = child(path, key);
        match m.get(key) {
            None => {
                if let Some(hint) = required {
                    self.missing(&p, hint);
                }
                None
            }
            Some(Value::String(s)) => {
                if s.trim().is_empty() {
                    self.diags.push(Diagnostic::error(
                        codes::EMPTY_VALUE,
                        &p,
                        format!("`{p}` is empty"),
                        "Fill it in, or remove the line to use the default.",
                    ));
                }
                Some(s.clone())
            }
            Some(other) => {
                self.wrong_type(&p, "a string", other);
                None
            }
        }
    }

    fn boolean(&mut self, m: &Map<String, Value>, path: &str, key: &str) -> Option<bool> {
        match m.get(key) {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                self.wrong_type(&child(path, key), "true or false", other);
                None
            }
        }
    }

    fn integer(&mut self, m: &Map<String, Value>, path: &str, key: &str) -> Option<i64> {
        match m.get(key) {
            None => None,
            Some(Value::Number(n)) if n.is_i64() => n.as_i64(),
            Some(other) => {
                self.wrong_type(&child(path, key), "an integer", other);
                None
            }
        }
    }

    fn config(&mut self, value: &Value) -> Config {
        let mut config = Config::default();
        let Some(root) = self.obj(value, "") else {
            return config;
        };
        self.unknown_fields(root, "", TOP);

        match root.get("keyVault") {
            None => self.missing(
                "/keyVault",
                "Add a [keyVault] section with uri = \"env:MONGODB_URI\".",
            ),
            Some(v) => {
                if let Some(m) = self.obj(v, "/keyVault") {
                    self.unknown_fields(m, "/keyVault", KEY_VAULT);
                    config.key_vault.uri = self.string(
                        m,
                        "/keyVault",
                        "uri",
                        Some("Add uri = \"env:MONGODB_URI\" and export the connection string in that variable."),
                    );
                    if let Some(ns) = self.string(m, "/keyVault", "namespace", None) {
                        config.key_vault.namespace = ns;
                    }
                }
            }
        }

        match root.get("kmsProviders") {
            None => self.missing(
                "/kmsProviders",
                "Add [kmsProviders.local] (the current key) and the target provider, e.g. [kmsProviders.aws].",
            ),
            Some(v) => {
                if let Some(m) = self.obj(v, "/kmsProviders") {
                    if m.is_empty() {
                        self.diags.push(Diagnostic::error(
                            codes::PRV_NONE,
                            "/kmsProviders",
                            "kmsProviders lists no provider",
                            "Add the current provider (e.g. [kmsProviders.local]) and the target (e.g. [kmsProviders.aws]).",
                        ));
                    }
                    for (name, pv) in m {
                        let provider = self.provider(name, pv);
                        config.kms_providers.insert(name.clone(), provider);
                    }
                }
            }
        }

        if let Some(v) = root.get("tlsOptions")
            && let Some(m) = self.obj(v, "/tlsOptions")
        {
            for (name, tv) in m {
                let path = pointer(&["tlsOptions", name]);
                if let Some(t) = self.obj(tv, &path) {
                    config.tls_options.insert(name.clone(), self.tls(t, &path));
                }
            }
        }

        match root.get("target") {
            None => self.missing(
                "/target",
                "Add a [target] section with provider = \"aws\" (a key of kmsProviders) and its masterKey.",
            ),
            Some(v) => {
                if let Some(m) = self.obj(v, "/target") {
                    config.target = Some(self.target(m));
                }
            }
        }

        if let Some(v) = root.get("rewrap")
            && let Some(m) = self.obj(v, "/rewrap")
        {
            self.unknown_fields(m, "/rewrap", REWRAP);
            config.rewrap = Some(Rewrap {
                filter: self.string(m, "/rewrap", "filter", None),
                batch_size: self.integer(m, "/rewrap", "batchSize"),
                concurrency: self.integer(m, "/rewrap", "concurrency"),
                kms_rate: self.integer(m, "/rewrap", "kmsRate"),
                aws_re_encrypt: self.boolean(m, "/rewrap", "awsReEncrypt"),
                re_encrypt_proof_one_in: self.integer(m, "/rewrap", "reEncryptProofOneIn"),
                backup_dir: self.string(m, "/rewrap", "backupDir", None),
                kmip_replace_key_ids: self.strings(m, "/rewrap", "kmipReplaceKeyIds"),
            });
        }

        if let Some(v) = root.get("rotate")
            && let Some(m) = self.obj(v, "/rotate")
        {
            self.unknown_fields(m, "/rotate", ROTATE);
            config.rotate = Some(Rotate {
                collections: self.strings(m, "/rotate", "collections"),
            });
        }

        if let Some(v) = root.get("retire")
            && let Some(m) = self.obj(v, "/retire")
        {
            self.unknown_fields(m, "/retire", RETIRE);
            let mut deployments = BTreeMap::new();
            if let Some(d) = m.get("deployments")
                && let Some(table) = self.obj(d, "/retire/deployments")
            {
                for name in table.keys() {
                    if let Some(uri) = self.string(table, "/retire/deployments", name, None) {
                        deployments.insert(name.clone(), uri);
                    }
                }
            }
            config.retire = Some(Retire {
                deployments,
                all_deployments_listed: self.boolean(m, "/retire", "allDeploymentsListed"),
            });
        }

        if let Some(v) = root.get("audit")
            && let Some(m) = self.obj(v, "/audit")
        {
            self.unknown_fields(m, "/audit", AUDIT);
            config.audit = Some(Audit {
                file: self.string(m, "/audit", "file", None),
                collection: self.string(m, "/audit", "collection", None),
            });
        }
        config
    }

    /// An array of strings; items of another type are reported and left out.
    fn strings(&mut self, m: &Map<String, Value>, path: &str, key: &str) -> Option<Vec<String>> {
        let p = child(path, key);
        match m.get(key)? {
            Value::Array(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| match item {
                        Value::String(s) => Some(s.clone()),
                        other => {
                            self.wrong_type(&child(&p, &i.to_string()), "a string", other);
                            None
                        }
                    })
                    .collect(),
            ),
            other => {
                self.wrong_type(&p, "an array of strings", other);
                None
            }
        }
    }

    fn provider(&mut self, name: &str, v: &Value) -> Provider {
        let path = pointer(&["kmsProviders", name]);
        let Some(m) = self.obj(v, &path) else {
            return Provider::Other(Map::new());
        };
        let Some(kind) = ProviderKind::of_name(name) else {
            let ty = name.split_once(':').map_or(name, |(t, _)| t);
            let kinds: Vec<&str> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
            // `aws-prod` / `aws_prod`: a named provider written without the colon.
            let unnamed = kinds.iter().find(|k| {
                ty.strip_prefix(**k)
                    .is_some_and(|rest| rest.starts_with(['-', '_', '.']) && rest.len() > 1)
            });
            let hint = if let Some(k) = unnamed {
                format!(
                    "Named providers are written TYPE:NAME; did you mean `{k}:{}`?",
                    &ty[k.len() + 1..]
                )
            } else {
                match did_you_mean(ty, &kinds) {
                Some(s) => format!("Did you mean `{s}`? Provider types are aws, azure, gcp, kmip and local, optionally named as `aws:prod`."),
                None => "Provider types are aws, azure, gcp, kmip and local, optionally named as `aws:prod`.".to_string(),
            }
            };
            self.diags.push(Diagnostic::error(
                codes::PRV_UNKNOWN_TYPE,
                &path,
                format!("`{name}` is not a KMS provider type"),
                hint,
            ));
            return Provider::Other(m.clone());
        };
        let s = |w: &mut Self, key: &str| w.string(m, &path, key, None);
        match kind {
            ProviderKind::Aws => {
                self.unknown_fields(m, &path, AWS);
                Provider::Aws(AwsProvider {
                    access_key_id: s(self, "accessKeyId"),
                    secret_access_key: s(self, "secretAccessKey"),
                    session_token: s(self, "sessionToken"),
                })
            }
            ProviderKind::Azure => {
                self.unknown_fields(m, &path, AZURE);
                Provider::Azure(AzureProvider {
                    tenant_id: s(self, "tenantId"),
                    client_id: s(self, "clientId"),
                    client_secret: s(self, "clientSecret"),
                    identity_platform_endpoint: s(self, "identityPlatformEndpoint"),
                })
            }
            ProviderKind::Gcp => {
                self.unknown_fields(m, &path, GCP);
                Provider::Gcp(GcpProvider {
                    email: s(self, "email"),
                    private_key: s(self, "privateKey"),
                    endpoint: s(self, "endpoint"),
                })
            }
            ProviderKind::Kmip => {
                self.unknown_fields(m, &path, KMIP);
                Provider::Kmip(KmipProvider {
                    endpoint: self.string(
                        m,
                        &path,
                        "endpoint",
                        Some("Add endpoint = \"kmip.example.com:5696\"."),
                    ),
                })
            }
            ProviderKind::Local => {
                self.unknown_fields(m, &path, LOCAL);
                Provider::Local(LocalProvider {
                    key: self.string(
                        m,
                        &path,
                        "key",
                        Some(
                            "Add key = \"file:master-key.txt\" (the file holding the 96-byte key).",
                        ),
                    ),
                    exposed: self.boolean(m, &path, "exposed").unwrap_or(false),
                })
            }
        }
    }

    fn tls(&mut self, m: &Map<String, Value>, path: &str) -> TlsOptions {
        for key in m.keys() {
            if TLS_INSECURE.contains(&key.as_str()) {
                self.diags.push(Diagnostic::error(
                    codes::TLS_INSECURE,
                    child(path, key),
                    format!(
                        "`{key}` turns off TLS checks, which drivers refuse for KMS connections"
                    ),
                    "Remove it; to trust a private CA, set tlsCAFile to its PEM file instead.",
                ));
            }
        }
        let known: Vec<&str> = TLS.iter().chain(TLS_INSECURE).copied().collect();
        self.unknown_fields(m, path, &known);
        TlsOptions {
            tls_ca_file: self.string(m, path, "tlsCAFile", None),
            tls_certificate_key_file: self.string(m, path, "tlsCertificateKeyFile", None),
            tls_certificate_key_file_password: self.string(
                m,
                path,
                "tlsCertificateKeyFilePassword",
                None,
            ),
        }
    }

    fn target(&mut self, m: &Map<String, Value>) -> Target {
        self.unknown_fields(m, "/target", TARGET);
        let provider = self
            .string(
                m,
                "/target",
                "provider",
                Some("Add provider = \"aws\" (a key of kmsProviders)."),
            )
            .unwrap_or_default();
        let kind = ProviderKind::of_name(&provider);
        let path = "/target/masterKey";
        let mk = match m.get("masterKey") {
            None => {
                if kind != Some(ProviderKind::Local) && !provider.is_empty() {
                    self.missing(
                        path,
                        "Add masterKey = { ... } with the target key's fields.",
                    );
                }
                None
            }
            Some(v) => self.obj(v, path),
        };
        let empty = Map::new();
        let mk = mk.unwrap_or(&empty);
        let master_key = self.master_key(kind, mk, path);
        Target {
            provider,
            master_key,
        }
    }

    fn master_key(
        &mut self,
        kind: Option<ProviderKind>,
        m: &Map<String, Value>,
        path: &str,
    ) -> MasterKey {
        if m.contains_key("provider") {
            self.diags.push(Diagnostic::error(
                codes::UNKNOWN_FIELD,
                child(path, "provider"),
                "`provider` does not belong in masterKey",
                "Remove it; the provider is target.provider.",
            ));
        }
        let mut m = m.clone();
        m.remove("provider");
        let m = &m;
        let req = |w: &mut Self, key: &str, hint: &str| w.string(m, path, key, Some(hint));
        let opt = |w: &mut Self, key: &str| w.string(m, path, key, None);
        match kind {
            None => MasterKey::Other(m.clone()),
            Some(ProviderKind::Aws) => {
                self.unknown_fields(m, path, MK_AWS);
                MasterKey::Aws(AwsMasterKey {
                    region: req(
                        self,
                        "region",
                        "Add region = \"us-east-1\" (the key's region).",
                    ),
                    key: req(
                        self,
                        "key",
                        "Add key = \"arn:aws:kms:REGION:ACCOUNT:key/KEY-ID\".",
                    ),
                    endpoint: opt(self, "endpoint"),
                })
            }
            Some(ProviderKind::Azure) => {
                self.unknown_fields(m, path, MK_AZURE);
                MasterKey::Azure(AzureMasterKey {
                    key_vault_endpoint: req(
                        self,
                        "keyVaultEndpoint",
                        "Add keyVaultEndpoint = \"VAULT.vault.azure.net\".",
                    ),
                    key_name: req(self, "keyName", "Add keyName = \"the key's name\"."),
                    key_version: opt(self, "keyVersion"),
                })
            }
            Some(ProviderKind::Gcp) => {
                self.unknown_fields(m, path, MK_GCP);
                MasterKey::Gcp(GcpMasterKey {
                    project_id: req(self, "projectId", "Add projectId = \"my-project\"."),
                    location: req(
                        self,
                        "location",
                        "Add location = \"global\" (or the key ring's region).",
                    ),
                    key_ring: req(self, "keyRing", "Add keyRing = \"the key ring id\"."),
                    key_name: req(self, "keyName", "Add keyName = \"the crypto key id\"."),
                    key_version: opt(self, "keyVersion"),
                    endpoint: opt(self, "endpoint"),
                })
            }
            Some(ProviderKind::Kmip) => {
                self.unknown_fields(m, path, MK_KMIP);
                MasterKey::Kmip(KmipMasterKey {
                    key_id: opt(self, "keyId"),
                    delegated: self.boolean(m, path, "delegated"),
                    endpoint: opt(self, "endpoint"),
                })
            }
            Some(ProviderKind::Local) => {
                self.unknown_fields(m, path, &[]);
                MasterKey::Local(LocalMasterKey {})
            }
        }
    }
}
