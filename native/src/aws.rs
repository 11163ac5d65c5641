//! AWS-specific I/O: the AWS credential chain (for on-demand credentials) and the
//! preflight's `DescribeKey`, through the official SDK over rustls (ring).
//!
//! The chain is the SDK's default: environment, shared config/credentials profiles,
//! web identity, ECS container credentials, EC2 instance metadata. `DescribeKey` tells
//! what a wrap probe cannot: whether the key is enabled, symmetric, for
//! ENCRYPT_DECRYPT, and in the configured region.

use std::path::Path;

use aws_config::BehaviorVersion;
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use bson::{Document, doc};
use keyshift_core::kms_error::KmsRefusal;

/// The SDK's config loader with an HTTPS client trusting the system roots plus
/// `ca_file` (the provider's tlsCAFile).
fn loader(ca_file: Option<&Path>) -> Result<aws_config::ConfigLoader, String> {
    let mut store = TrustStore::default();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("tlsOptions tlsCAFile {}: {e}", path.display()))?;
        store = store.with_pem_certificate(pem);
    }
    let context = TlsContext::builder()
        .with_trust_store(store)
        .build()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https();
    Ok(aws_config::defaults(BehaviorVersion::latest()).http_client(client))
}

/// Credentials from the AWS default chain, as libmongocrypt's `aws` provider document.
pub async fn chain_credentials(ca_file: Option<&Path>) -> Result<Document, String> {
    let config = loader(ca_file)?.load().await;
    let provider = config.credentials_provider().ok_or(
        "no AWS credential provider is configured (set AWS_ACCESS_KEY_ID, a profile, or run with an instance/task role)",
    )?;
    let creds = provider.provide_credentials().await.map_err(|e| {
        format!(
            "the AWS credential chain found no credentials ({e}); set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run where an instance or task role is \
             available — or give accessKeyId and secretAccessKey as references"
        )
    })?;
    let mut d = doc! {
        "accessKeyId": creds.access_key_id(),
        "secretAccessKey": creds.secret_access_key(),
    };
    if let Some(token) = creds.session_token() {
        d.insert("sessionToken", token);
    }
    Ok(d)
}

/// The AWS default credential chain as a provider the MongoDB driver's MONGODB-AWS
/// authentication calls (it caches and refreshes temporary credentials itself).
/// None: no chain could be set up (the driver then tries the SDK's defaults itself).
pub async fn shared_provider() -> Option<aws_credential_types::provider::SharedCredentialsProvider>
{
    loader(None).ok()?.load().await.credentials_provider()
}

/// What `DescribeKey` says about the target key, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCheck {
    /// Whether the key can be used for the move.
    pub ok: bool,
    /// One line for people (no secret).
    pub detail: String,
}

/// `DescribeKey` on the target AWS key with `credentials` (libmongocrypt's aws document).
pub async fn describe_key(
    master_key: &Document,
    credentials: &Document,
    ca_file: Option<&Path>,
) -> KeyCheck {
    match describe(master_key, credentials, ca_file).await {
        Ok(check) => check,
        Err(detail) => KeyCheck { ok: false, detail },
    }
}

/// The innermost cause of an error, in words: the SDK's `Display` of a dispatch failure
/// is "dispatch failure", and its `Debug` a struct dump; the root says what happened
/// ("invalid peer certificate: Expired", "Connection refused").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut words = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() {
            words = text;
        }
        source = s.source();
    }
    first_line(&words).to_string()
}

async fn describe(
    master_key: &Document,
    credentials: &Document,
    ca_file: Option<&Path>,
) -> Result<KeyCheck, String> {
    let meta = describe_metadata(master_key, credentials, ca_file).await?;
    let region = master_key.get_str("region").unwrap_or_default();
    let problems = keyshift_core::aws_key::problems(&meta.facts(), region);
    Ok(if problems.is_empty() {
        KeyCheck {
            ok: true,
            detail: "DescribeKey: enabled, SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT, region agrees"
                .into(),
        }
    } else {
        KeyCheck {
            ok: false,
            detail: problems.join("; "),
        }
    })
}

/// `DescribeKey`'s `KeyMetadata`, owned: what [`keyshift_core::aws_key::KeyFacts`]
/// borrows for core to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMetadata {
    /// `Enabled`.
    pub enabled: bool,
    /// `KeyState`.
    pub state: Option<String>,
    /// `KeySpec`.
    pub spec: Option<String>,
    /// `KeyUsage`.
    pub usage: Option<String>,
    /// `Arn`.
    pub arn: Option<String>,
}

impl KeyMetadata {
    /// The facts core judges.
    pub fn facts(&self) -> keyshift_core::aws_key::KeyFacts<'_> {
        keyshift_core::aws_key::KeyFacts {
            enabled: self.enabled,
            state: self.state.as_deref(),
            spec: self.spec.as_deref(),
            usage: self.usage.as_deref(),
            arn: self.arn.as_deref(),
        }
    }
}

/// `DescribeKey` on the key of `master_key` (its `key`, `region`, `endpoint`) with
/// `credentials` (libmongocrypt's aws document); Err says why not, in words.
pub async fn describe_metadata(
    master_key: &Document,
    credentials: &Document,
    ca_file: Option<&Path>,
) -> Result<KeyMetadata, String> {
    let region = master_key
        .get_str("region")
        .map_err(|_| "the masterKey has no region")?
        .to_string();
    let key = master_key
        .get_str("key")
        .map_err(|_| "the masterKey has no key")?
        .to_string();
    let field = |k: &str| credentials.get_str(k).ok().map(str::to_string);
    if field("accessKeyId").is_none() || field("secretAccessKey").is_none() {
        return Err("no AWS credentials to call DescribeKey with".into());
    }
    let client = client(master_key, credentials, ca_file).await?;
    let out = client
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .map_err(|e| {
            use aws_sdk_kms::error::ProvideErrorMetadata;
            // The service's error code, as the SDK parsed it from the reply.
            match e.as_service_error().and_then(|s| s.code()) {
                Some("AccessDeniedException") => {
                    "DescribeKey was denied: grant kms:DescribeKey on \
                 the key (`keyshift policy` shows the policy)"
                        .to_string()
                }
                Some("NotFoundException") => format!(
                    "DescribeKey: no such key in {region}: check the masterKey's key and region"
                ),
                _ => format!("DescribeKey failed: {}", root_cause(&e)),
            }
        })?;
    let Some(meta) = out.key_metadata() else {
        return Err("DescribeKey returned no key metadata".into());
    };
    Ok(KeyMetadata {
        enabled: meta.enabled(),
        state: meta.key_state().map(|s| s.as_str().to_string()),
        spec: meta.key_spec().map(|s| s.as_str().to_string()),
        usage: meta.key_usage().map(|s| s.as_str().to_string()),
        arn: meta.arn().map(str::to_string),
    })
}

/// An SDK client for the region and endpoint of `master_key`, signing with
/// `credentials` (libmongocrypt's aws document) or, when it has none, with the AWS
/// default credential chain.
async fn client(
    master_key: &Document,
    credentials: &Document,
    ca_file: Option<&Path>,
) -> Result<aws_sdk_kms::Client, String> {
    let region = master_key
        .get_str("region")
        .map_err(|_| "the masterKey has no region")?
        .to_string();
    let field = |k: &str| credentials.get_str(k).ok().map(str::to_string);
    let mut loader = loader(ca_file)?.region(aws_config::Region::new(region));
    if let (Some(id), Some(secret)) = (field("accessKeyId"), field("secretAccessKey")) {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            id,
            secret,
            field("sessionToken"),
            None,
            "keyshift.toml",
        ));
    }
    if let Ok(endpoint) = master_key.get_str("endpoint") {
        let url = if endpoint.contains("://") {
            endpoint.to_string()
        } else {
            format!("https://{endpoint}")
        };
        loader = loader.endpoint_url(url);
    }
    Ok(aws_sdk_kms::Client::new(&loader.load().await))
}

/// AWS KMS `ReEncrypt` to one target key: a DEK's wrapping changes inside KMS and the
/// DEK never reaches keyshift (see `keyshift_core::reencrypt`).
pub struct ReEncrypter {
    client: aws_sdk_kms::Client,
    destination: String,
}

/// Why a `ReEncrypt` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReEncryptError {
    /// What AWS said, for people (no secret).
    pub message: String,
    /// A refusal no retry can change.
    pub refusal: Option<KmsRefusal>,
    /// AWS throttled the request (retry, slower).
    pub throttled: bool,
}

impl std::fmt::Display for ReEncryptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ReEncrypter {
    /// A client for the target `master_key` (region, key, endpoint), signing with
    /// `credentials` (the target provider's; empty: the default chain).
    pub async fn new(
        master_key: &Document,
        credentials: &Document,
        ca_file: Option<&Path>,
    ) -> Result<Self, String> {
        let destination = master_key
            .get_str("key")
            .map_err(|_| "target.masterKey has no key")?
            .to_string();
        Ok(ReEncrypter {
            client: client(master_key, credentials, ca_file).await?,
            destination,
        })
    }

    /// The DEK wrapped by `blob` (a source key's `keyMaterial`), wrapped by the target
    /// key instead.
    pub async fn re_encrypt(&self, blob: &[u8]) -> Result<Vec<u8>, ReEncryptError> {
        use aws_sdk_kms::error::ProvideErrorMetadata;
        let out = self
            .client
            .re_encrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(blob))
            .destination_key_id(&self.destination)
            .send()
            .await
            .map_err(|e| {
                let code = e.as_service_error().and_then(|s| s.code()).unwrap_or("");
                // The same names libmongocrypt's KMS errors are read by.
                let refusal = keyshift_core::kms_error::classify(code);
                let message = match code {
                    "AccessDeniedException" => "ReEncrypt was denied: the target \
                        credentials need kms:ReEncryptFrom on the source key and \
                        kms:ReEncryptTo on the target key (`keyshift policy` shows them), or set [rewrap] awsReEncrypt = false"
                        .to_string(),
                    "" => format!("ReEncrypt failed: {}", root_cause(&e)),
                    code => format!(
                        "ReEncrypt failed: {code}: {}",
                        e.as_service_error()
                            .and_then(|s| s.message())
                            .unwrap_or_default()
                    ),
                };
                ReEncryptError {
                    message,
                    refusal,
                    throttled: code == "ThrottlingException",
                }
            })?;
        out.ciphertext_blob()
            .map(|b| b.as_ref().to_vec())
            .ok_or_else(|| ReEncryptError {
                message: "ReEncrypt returned no ciphertext".into(),
                refusal: None,
                throttled: false,
            })
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
