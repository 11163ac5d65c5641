//! TLS client configurations for KMS connections, one per provider name.
//!
//! Every KMS connection verifies its server: the system roots plus the provider's
//! `tlsCAFile` when given (how tests trust the stand-ins' CA, and how users trust a
//! private KMIP appliance). KMIP also authenticates keyshift with a client
//! certificate (`tlsCertificateKeyFile`: the private key and certificate in one PEM;
//! the key may be an encrypted PKCS#8 `ENCRYPTED PRIVATE KEY`, opened with
//! `tlsCertificateKeyFilePassword`, as the drivers do).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::secret::Secret;

/// A provider's TLS options, as in keyshift.toml's `[tlsOptions.NAME]`.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Extra CA certificates (PEM) to trust for this provider.
    pub ca_file: Option<PathBuf>,
    /// Client private key and certificate chain in one PEM file (KMIP).
    pub cert_key_file: Option<PathBuf>,
    /// The password of an encrypted private key in `cert_key_file`.
    pub cert_key_password: Option<Secret<String>>,
}

/// Why a TLS configuration could not be built; names the file and what to fix.
#[derive(Debug)]
pub struct TlsConfigError(pub String);

impl std::fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsConfigError {}

fn err(path: &Path, what: &str) -> TlsConfigError {
    TlsConfigError(format!("{}: {what}", path.display()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped: a private CA file may still suffice.
    let found = rustls_native_certs::load_native_certs();
    let _ = roots.add_parsable_certificates(found.certs);
    roots
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|_| err(path, "cannot read it as PEM certificates"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| err(path, "holds a malformed PEM certificate"))?;
    if certs.is_empty() {
        return Err(err(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// The client's private key: an encrypted PKCS#8 key opened with the password, or a
/// plain one. The key and the password are never shown: errors name the file only.
fn load_key(
    path: &Path,
    password: Option<&Secret<String>>,
) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    const ENCRYPTED: &str = "ENCRYPTED PRIVATE KEY";
    let bytes =
        Secret::new(std::fs::read(path).map_err(|e| err(path, &format!("cannot be read: {e}")))?);
    let sections = pem::parse_many(bytes.expose()).unwrap_or_default();
    let encrypted = sections.iter().find(|p| p.tag() == ENCRYPTED);
    match (encrypted, password) {
        (Some(section), Some(password)) => {
            let info = pkcs8::EncryptedPrivateKeyInfo::<pkcs8::der::asn1::OctetString>::try_from(
                section.contents(),
            )
            .map_err(|_| err(path, "holds a malformed ENCRYPTED PRIVATE KEY"))?;
            // SecretDocument: zeroized when dropped.
            let plain = info.decrypt(password.expose().as_bytes()).map_err(|_| {
                err(
                    path,
                    "its private key does not open with tlsCertificateKeyFilePassword \
                     (a wrong password, or an encryption other than PKCS#8 PBES2)",
                )
            })?;
            Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()))
        }
        (Some(_), None) => Err(err(
            path,
            "holds an encrypted private key: set tlsCertificateKeyFilePassword (a reference, \
             e.g. \"env:KMIP_KEY_PASSWORD\") in this provider's [tlsOptions]",
        )),
        (None, _) => PrivateKeyDer::from_pem_slice(bytes.expose())
            .map_err(|_| err(path, "holds no readable private key (PEM)")),
    }
}

/// Builds the client configuration for one provider's options.
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let mut roots = system_roots();
    if let Some(ca) = &options.ca_file {
        for cert in load_certs(ca)? {
            roots
                .add(cert)
                .map_err(|_| err(ca, "holds a certificate that is not a valid CA"))?;
        }
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots);
    let config = match &options.cert_key_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let chain = load_certs(path)?;
            let key = load_key(path, options.cert_key_password.as_ref())?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|_| err(path, "the private key does not match the certificate"))?
        }
    };
    Ok(Arc::new(config))
}

/// A TLS connection to a KMS.
pub type KmsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// Idle connections kept per (provider name, endpoint) at most: one per request in
/// flight is all a run can use at once.
const IDLE_PER_ENDPOINT: usize = 256;

/// The configurations for every provider name, built once per run, and the
/// connections they opened that may carry another request.
#[derive(Clone)]
pub struct KmsTls {
    default: Arc<ClientConfig>,
    per_provider: HashMap<String, Arc<ClientConfig>>,
    idle: Arc<std::sync::Mutex<HashMap<String, Vec<KmsStream>>>>,
}

impl KmsTls {
    /// Builds configurations for each provider name with TLS options (e.g. "kmip",
    /// "aws:prod"); others use the system roots.
    pub fn new(options: &HashMap<String, TlsOptions>) -> Result<Self, TlsConfigError> {
        let default = client_config(&TlsOptions::default())?;
        let per_provider = options
            .iter()
            .map(|(name, o)| Ok((name.clone(), client_config(o)?)))
            .collect::<Result<_, TlsConfigError>>()?;
        Ok(KmsTls {
            default,
            per_provider,
            idle: Arc::default(),
        })
    }

    /// An idle connection to `endpoint` made with `provider`'s configuration, if one
    /// was kept (the most recently used: the least likely to have timed out).
    pub fn take_idle(&self, provider: &str, endpoint: &str) -> Option<KmsStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.get_mut(&idle_key(provider, endpoint))?.pop()
    }

    /// Keeps a connection whose last reply left it usable, for the next request to
    /// the same endpoint under the same provider.
    pub fn keep_idle(&self, provider: &str, endpoint: &str, stream: KmsStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(idle_key(provider, endpoint)).or_default();
        if list.len() < IDLE_PER_ENDPOINT {
            list.push(stream);
        }
    }

    /// The configuration for a provider name as libmongocrypt reports it.
    pub fn for_provider(&self, name: &str) -> Arc<ClientConfig> {
        self.per_provider
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.default.clone())
    }
}

/// Connections are shared only between requests with the same TLS configuration (the
/// provider name: KMIP client certificates differ) and the same endpoint.
fn idle_key(provider: &str, endpoint: &str) -> String {
    format!("{provider}\n{endpoint}")
}
