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
use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use bson::{Document, doc};

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
    let region = master_key
        .get_str("region")
        .map_err(|_| "target.masterKey has no region")?
        .to_string();
    let key = master_key
        .get_str("key")
        .map_err(|_| "target.masterKey has no key")?
        .to_string();
    let field = |k: &str| credentials.get_str(k).ok().map(str::to_string);
    let (Some(id), Some(secret)) = (field("accessKeyId"), field("secretAccessKey")) else {
        return Err("no AWS credentials to call DescribeKey with".into());
    };
    let creds = aws_credential_types::Credentials::new(
        id,
        secret,
        field("sessionToken"),
        None,
        "keyshift.toml",
    );
    let mut loader = loader(ca_file)?
        .region(aws_config::Region::new(region.clone()))
        .credentials_provider(creds);
    if let Ok(endpoint) = master_key.get_str("endpoint") {
        let url = if endpoint.contains("://") {
            endpoint.to_string()
        } else {
            format!("https://{endpoint}")
        };
        loader = loader.endpoint_url(url);
    }
    let client = aws_sdk_kms::Client::new(&loader.load().await);
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
                    "DescribeKey: no such key in {region}: check target.masterKey.key and region"
                ),
                _ => format!("DescribeKey failed: {}", root_cause(&e)),
            }
        })?;
    let Some(meta) = out.key_metadata() else {
        return Err("DescribeKey returned no key metadata".into());
    };
    let mut problems = Vec::new();
    if !meta.enabled() || meta.key_state() != Some(&KeyState::Enabled) {
        problems.push(format!(
            "the key is not enabled (state {:?}): enable it in the AWS console or with `aws kms enable-key`",
            meta.key_state().map(|s| s.as_str()).unwrap_or("unknown")
        ));
    }
    if meta.key_spec() != Some(&KeySpec::SymmetricDefault) {
        problems.push(
            "the key is not SYMMETRIC_DEFAULT: client-side encryption needs a symmetric key".into(),
        );
    }
    if meta.key_usage() != Some(&KeyUsageType::EncryptDecrypt) {
        problems.push("the key's usage is not ENCRYPT_DECRYPT".into());
    }
    if let Some(arn) = meta.arn()
        && arn.split(':').nth(3).is_some_and(|r| r != region)
    {
        problems.push(format!(
            "the key lives in {} but target.masterKey.region is {region}",
            arn.split(':').nth(3).unwrap_or("?")
        ));
    }
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

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
