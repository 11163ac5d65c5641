//! Driver configuration for applications, in seven languages and two stages.
//!
//! - `transition`: every provider in keyshift.toml (the current one and the target), so a
//!   running application reads keys under either while keys move; libmongocrypt picks
//!   the provider per key from its `masterKey`.
//! - `final`: the target provider only, once every key is under it and verified.
//!
//! What a snippet is: the KMS settings of one stage — kmsProviders (credentials read from
//! the environment or files, never written in), the KMS TLS options and the key vault
//! namespace — between `BEGIN keyshift KMS settings` and `END keyshift KMS settings`,
//! with functions that MERGE them into the auto-encryption options and the
//! ClientEncryption the application already builds. Moving master keys changes nothing
//! else, so the application's schemaMap / encryptedFieldsMap and bypassAutoEncryption
//! pass through untouched: a snippet never turns automatic encryption off (an
//! application that swapped its client for one with bypassAutoEncryption would write
//! sensitive fields in plaintext). Where a whole client is shown it is said in the code
//! which kind it is: automatic encryption with the application's own rules as a
//! required argument, or (mongosh's key management connection) explicit encryption
//! only. Each snippet's header names the minimum driver versions for what it uses
//! ([`notes`]). Secret fields that hold a literal (a validation error) are emitted as
//! environment variable placeholders, so a secret never reaches generated code.
//!
//! Generation works from a language-neutral description ([`Setup`]); each language
//! module renders it and cites the driver documentation for the API it uses.

mod csharp;
mod go;
mod java;
mod mongosh;
mod node;
pub mod notes;
mod python;
mod rust;

use serde::{Deserialize, Serialize};

use crate::config::{
    Config, MasterKey, Provider, ProviderKind, SecretError, SecretRef, TlsOptions,
};

/// Languages snippets are generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Python with PyMongo.
    Python,
    /// Node.js with the `mongodb` package.
    Node,
    /// Java with the sync driver.
    Java,
    /// Go with mongo-go-driver.
    Go,
    /// C# with MongoDB.Driver.
    Csharp,
    /// Rust with the `mongodb` crate (feature `in-use-encryption`).
    Rust,
    /// mongosh.
    Mongosh,
}

impl Lang {
    /// Every language, in the order the guide shows them.
    pub const ALL: [Lang; 7] = [
        Lang::Python,
        Lang::Node,
        Lang::Java,
        Lang::Go,
        Lang::Csharp,
        Lang::Rust,
        Lang::Mongosh,
    ];

    /// The name used on the command line (`--lang`).
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Node => "node",
            Lang::Java => "java",
            Lang::Go => "go",
            Lang::Csharp => "csharp",
            Lang::Rust => "rust",
            Lang::Mongosh => "mongosh",
        }
    }

    /// Parses a `--lang` value.
    pub fn parse(s: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// Which stage of the move the snippet is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Old and new providers together.
    Transition,
    /// The target provider only.
    Final,
}

impl Stage {
    /// `transition` or `final`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Transition => "transition",
            Stage::Final => "final",
        }
    }
}

/// A generated snippet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snippet {
    /// Language.
    pub lang: Lang,
    /// Stage.
    pub stage: Stage,
    /// Suggested file name.
    pub filename: String,
    /// The code.
    pub code: String,
}

/// Where a value comes from at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A literal (non-secret) string.
    Text(String),
    /// A boolean literal.
    Bool(bool),
    /// An environment variable.
    Env(String),
    /// A text file (trimmed).
    File(String),
    /// The local master key file: 96 raw bytes or base64 text.
    LocalKeyFile(String),
    /// The local master key in an environment variable, as base64 text.
    LocalKeyEnv(String),
    /// A GCP service account key in a file: PEM (armour stripped) or base64 of the DER.
    GcpKeyFile(String),
    /// A GCP service account key in an environment variable: PEM or base64 of the DER.
    GcpKeyEnv(String),
}

/// One kmsProviders entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSetup {
    /// Provider name (`aws`, `aws:prod`).
    pub name: String,
    /// Its type.
    pub kind: ProviderKind,
    /// Fields in MongoDB's names; empty means on-demand credentials.
    pub fields: Vec<(String, Source)>,
    /// TLS options for it (MongoDB's names).
    pub tls: Vec<(String, Source)>,
}

/// Everything a snippet needs, language-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// Stage generated for.
    pub stage: Stage,
    /// Connection string source.
    pub uri: Source,
    /// Key vault namespace.
    pub namespace: String,
    /// kmsProviders for this stage, target last.
    pub providers: Vec<ProviderSetup>,
    /// Target provider name.
    pub target: String,
    /// Target provider type.
    pub target_kind: ProviderKind,
    /// Target masterKey fields (MongoDB's names), without `provider`.
    pub master_key: Vec<(String, Source)>,
}

impl Setup {
    /// Whether any provider has TLS options.
    pub fn has_tls(&self) -> bool {
        self.providers.iter().any(|p| !p.tls.is_empty())
    }

    /// Providers with a name (`aws:prod`), which need newer drivers.
    pub fn named(&self) -> Vec<&str> {
        self.providers
            .iter()
            .filter(|p| p.name.contains(':'))
            .map(|p| p.name.as_str())
            .collect()
    }

    /// Cloud providers without credentials: the driver fetches them on demand.
    pub fn on_demand(&self) -> Vec<&str> {
        self.providers
            .iter()
            .filter(|p| {
                p.fields.is_empty()
                    && matches!(
                        p.kind,
                        ProviderKind::Aws | ProviderKind::Azure | ProviderKind::Gcp
                    )
            })
            .map(|p| p.name.as_str())
            .collect()
    }

    /// Whether any provider is KMIP.
    pub fn has_kmip(&self) -> bool {
        self.providers.iter().any(|p| p.kind == ProviderKind::Kmip)
    }

    /// Whether the target master key sets KMIP's `delegated`.
    pub fn delegated(&self) -> bool {
        self.master_key.iter().any(|(k, _)| k == "delegated")
    }

    /// Whether a client key password is configured for any provider.
    pub fn has_tls_password(&self) -> bool {
        self.providers
            .iter()
            .any(|p| p.tls.iter().any(|(k, _)| k == TLS_PASSWORD))
    }

    /// Whether any file path is relative (to keyshift.toml's directory).
    pub fn has_relative_path(&self) -> bool {
        fn relative(path: &str) -> bool {
            let b = path.as_bytes();
            // `/x`, `\\x` and `C:\x` / `C:/x` are absolute.
            !(path.starts_with(['/', '\\']) || (b.len() > 1 && b[1] == b':'))
        }
        let source = |s: &Source| match s {
            Source::File(p) | Source::LocalKeyFile(p) | Source::GcpKeyFile(p) => relative(p),
            _ => false,
        };
        let tls = |(k, v): &(String, Source)| {
            k != TLS_PASSWORD && matches!(v, Source::Text(p) if relative(p))
        };
        source(&self.uri)
            || self
                .providers
                .iter()
                .any(|p| p.fields.iter().any(|(_, v)| source(v)) || p.tls.iter().any(tls))
    }
}

/// MongoDB's name of the client key password TLS option.
pub(crate) const TLS_PASSWORD: &str = "tlsCertificateKeyFilePassword";

fn env_placeholder(provider: &str, field: &str) -> String {
    let mut out = String::new();
    for c in provider.chars() {
        out.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        });
    }
    out.push('_');
    for c in field.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// A secret field's run-time source. A literal is never emitted: it becomes an
/// environment variable placeholder named after the provider and field.
fn secret(provider: &str, field: &str, value: &str) -> Source {
    match SecretRef::parse(value) {
        Ok(SecretRef::Env(n)) => Source::Env(n),
        Ok(SecretRef::File(p)) => Source::File(p),
        Err(SecretError::Literal | SecretError::Malformed(_)) => {
            Source::Env(env_placeholder(provider, field))
        }
    }
}

fn push_secret(out: &mut Vec<(String, Source)>, provider: &str, field: &str, v: &Option<String>) {
    if let Some(v) = v {
        out.push((field.to_string(), secret(provider, field, v)));
    }
}

fn push_text(out: &mut Vec<(String, Source)>, field: &str, v: &Option<String>) {
    if let Some(v) = v {
        out.push((field.to_string(), Source::Text(v.clone())));
    }
}

fn tls_fields(provider: &str, t: &TlsOptions) -> Vec<(String, Source)> {
    let mut out = Vec::new();
    push_text(&mut out, "tlsCAFile", &t.tls_ca_file);
    push_text(
        &mut out,
        "tlsCertificateKeyFile",
        &t.tls_certificate_key_file,
    );
    push_secret(
        &mut out,
        provider,
        TLS_PASSWORD,
        &t.tls_certificate_key_file_password,
    );
    out
}

fn provider_fields(name: &str, p: &Provider) -> Vec<(String, Source)> {
    let mut f = Vec::new();
    match p {
        Provider::Aws(p) => {
            push_secret(&mut f, name, "accessKeyId", &p.access_key_id);
            push_secret(&mut f, name, "secretAccessKey", &p.secret_access_key);
            push_secret(&mut f, name, "sessionToken", &p.session_token);
        }
        Provider::Azure(p) => {
            push_text(&mut f, "tenantId", &p.tenant_id);
            push_text(&mut f, "clientId", &p.client_id);
            push_secret(&mut f, name, "clientSecret", &p.client_secret);
            push_text(
                &mut f,
                "identityPlatformEndpoint",
                &p.identity_platform_endpoint,
            );
        }
        Provider::Gcp(p) => {
            push_text(&mut f, "email", &p.email);
            // libmongocrypt wants the base64 of the DER key (or its bytes), not PEM text:
            // every language strips the armour at run time, as keyshift does itself.
            if let Some(v) = &p.private_key {
                let src = match secret(name, "privateKey", v) {
                    Source::File(path) => Source::GcpKeyFile(path),
                    Source::Env(n) => Source::GcpKeyEnv(n),
                    other => other,
                };
                f.push(("privateKey".to_string(), src));
            }
            push_text(&mut f, "endpoint", &p.endpoint);
        }
        Provider::Kmip(p) => push_text(&mut f, "endpoint", &p.endpoint),
        Provider::Local(p) => {
            let src = match p.key.as_deref().map(SecretRef::parse) {
                Some(Ok(SecretRef::File(path))) => Source::LocalKeyFile(path),
                Some(Ok(SecretRef::Env(n))) => Source::LocalKeyEnv(n),
                _ => Source::LocalKeyEnv(env_placeholder(name, "key")),
            };
            f.push(("key".to_string(), src));
        }
        Provider::Other(_) => {}
    }
    f
}

fn master_key_fields(mk: &MasterKey) -> Vec<(String, Source)> {
    let mut f = Vec::new();
    match mk {
        MasterKey::Aws(m) => {
            push_text(&mut f, "region", &m.region);
            push_text(&mut f, "key", &m.key);
            push_text(&mut f, "endpoint", &m.endpoint);
        }
        MasterKey::Azure(m) => {
            push_text(&mut f, "keyVaultEndpoint", &m.key_vault_endpoint);
            push_text(&mut f, "keyName", &m.key_name);
            push_text(&mut f, "keyVersion", &m.key_version);
        }
        MasterKey::Gcp(m) => {
            push_text(&mut f, "projectId", &m.project_id);
            push_text(&mut f, "location", &m.location);
            push_text(&mut f, "keyRing", &m.key_ring);
            push_text(&mut f, "keyName", &m.key_name);
            push_text(&mut f, "keyVersion", &m.key_version);
            push_text(&mut f, "endpoint", &m.endpoint);
        }
        MasterKey::Kmip(m) => {
            push_text(&mut f, "keyId", &m.key_id);
            if let Some(d) = m.delegated {
                f.push(("delegated".to_string(), Source::Bool(d)));
            }
            push_text(&mut f, "endpoint", &m.endpoint);
        }
        MasterKey::Local(_) | MasterKey::Other(_) => {}
    }
    f
}

/// Builds the language-neutral setup for a stage. Fails (with what to fix) when the
/// configuration has no usable target.
pub fn setup(config: &Config, stage: Stage) -> Result<Setup, String> {
    let target = config
        .target
        .as_ref()
        .ok_or("keyshift.toml has no [target]; add it first")?;
    let target_kind = ProviderKind::of_name(&target.provider)
        .ok_or_else(|| format!("target provider `{}` is not a known type", target.provider))?;
    if !config.kms_providers.contains_key(&target.provider) {
        return Err(format!(
            "target provider `{}` is not in kmsProviders",
            target.provider
        ));
    }
    let mut names: Vec<&String> = match stage {
        Stage::Transition => config
            .kms_providers
            .keys()
            .filter(|n| **n != target.provider && ProviderKind::of_name(n).is_some())
            .collect(),
        Stage::Final => Vec::new(),
    };
    names.push(&target.provider);
    let providers = names
        .into_iter()
        .filter_map(|n| {
            let p = config.kms_providers.get(n)?;
            Some(ProviderSetup {
                name: n.clone(),
                kind: ProviderKind::of_name(n)?,
                fields: provider_fields(n, p),
                tls: config
                    .tls_options
                    .get(n)
                    .map(|t| tls_fields(n, t))
                    .unwrap_or_default(),
            })
        })
        .collect();
    let uri = match config.key_vault.uri.as_deref() {
        Some(u) => match SecretRef::parse(u) {
            Ok(SecretRef::Env(n)) => Source::Env(n),
            Ok(SecretRef::File(p)) => Source::File(p),
            Err(_) if u.contains('@') => Source::Env("MONGODB_URI".into()),
            Err(_) => Source::Text(u.to_string()),
        },
        None => Source::Env("MONGODB_URI".into()),
    };
    Ok(Setup {
        stage,
        uri,
        namespace: config.key_vault.namespace.clone(),
        providers,
        target: target.provider.clone(),
        target_kind,
        master_key: master_key_fields(&target.master_key),
    })
}

/// Generates the snippet for a language and stage.
pub fn snippet(config: &Config, lang: Lang, stage: Stage) -> Result<Snippet, String> {
    let s = setup(config, stage)?;
    let (filename, code) = match lang {
        Lang::Python => (
            format!("keyshift_{}.py", stage.as_str()),
            python::render(&s),
        ),
        Lang::Node => (format!("keyshift-{}.js", stage.as_str()), node::render(&s)),
        Lang::Java => ("KeyshiftEncryption.java".to_string(), java::render(&s)),
        Lang::Go => (format!("keyshift_{}.go", stage.as_str()), go::render(&s)),
        Lang::Csharp => ("KeyshiftEncryption.cs".to_string(), csharp::render(&s)),
        Lang::Rust => (format!("keyshift_{}.rs", stage.as_str()), rust::render(&s)),
        Lang::Mongosh => (
            format!("keyshift-{}.mongosh.js", stage.as_str()),
            mongosh::render(&s),
        ),
    };
    Ok(Snippet {
        lang,
        stage,
        filename,
        code,
    })
}

/// A double-quoted string literal valid in Python, JavaScript, Java, Go, C# and Rust
/// (JSON escaping; non-ASCII escaped too so every language reads the same text).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The header comment line every snippet starts with.
pub(crate) fn header(s: &Setup) -> String {
    match s.stage {
        Stage::Transition => format!(
            "keyshift transition stage: reads keys under {} while they move to `{}`.",
            s.providers
                .iter()
                .map(|p| format!("`{}`", p.name))
                .collect::<Vec<_>>()
                .join(", "),
            s.target
        ),
        Stage::Final => format!(
            "keyshift final stage: `{}` only; deploy after `keyshift verify` passes.",
            s.target
        ),
    }
}
