//! KMS round trips for libmongocrypt's NEED_KMS state: TLS to each endpoint, the
//! request libmongocrypt wrote, the reply fed back, many at once.
//!
//! libmongocrypt owns the protocol (signing, HTTP, KMIP) and the retry policy: with
//! `retry_kms` on, it re-queues a request after a retryable HTTP reply (5xx,
//! throttling) and after a network failure we report with `retry_failure`, and it says
//! how long to back off (`sleep_micros`). This module only moves bytes, bounded in
//! time, so a stalled KMS becomes a retry instead of a hang.

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use mongocrypt::ctx::{KmsCtx, KmsScope};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::kms_tls::KmsTls;

/// How keyshift talks to KMS endpoints.
#[derive(Clone)]
pub struct KmsIo {
    /// TLS configurations per provider name.
    pub tls: KmsTls,
    /// At most this many KMS requests in flight.
    pub concurrency: usize,
    /// Budget for one request: connect, handshake, send, read the whole reply.
    pub timeout: Duration,
    /// Credentials for providers configured without any (NEED_KMS_CREDENTIALS).
    pub on_demand: Option<std::sync::Arc<crate::credentials::OnDemand>>,
}

/// A KMS request failed for good (libmongocrypt will not retry it).
#[derive(Debug)]
pub enum KmsError {
    /// libmongocrypt rejected the exchange (its message says why, e.g. the KMS's error).
    Crypt(mongocrypt::error::Error),
    /// The network failed and libmongocrypt has no retries left.
    Network {
        /// host:port of the KMS.
        endpoint: String,
        /// What went wrong on the last attempt.
        cause: String,
    },
}

impl std::fmt::Display for KmsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KmsError::Crypt(e) => write!(f, "{e}"),
            KmsError::Network { endpoint, cause } => write!(
                f,
                "KMS {endpoint} unreachable after retries: {cause}; check the endpoint, \
                 the network path and tlsOptions"
            ),
        }
    }
}

impl std::error::Error for KmsError {}

impl From<mongocrypt::error::Error> for KmsError {
    fn from(e: mongocrypt::error::Error) -> Self {
        KmsError::Crypt(e)
    }
}

fn bad_endpoint(endpoint: &str) -> mongocrypt::error::Error {
    mongocrypt::error::Error {
        kind: mongocrypt::error::ErrorKind::Client,
        code: None,
        message: Some(format!("KMS endpoint {endpoint:?} is not host:port")),
    }
}

/// host and port of "host:port" or "[v6]:port"; libmongocrypt always includes a port.
fn split_endpoint(endpoint: &str) -> Option<(&str, u16)> {
    let (host, port) = endpoint.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host, port.parse().ok()?))
}

impl KmsIo {
    /// Completes every request of a NEED_KMS state, up to `concurrency` at a time.
    pub async fn run_scope(&self, scope: &KmsScope<'_>) -> Result<(), KmsError> {
        loop {
            // Retried requests come back from next_kms_ctx, so drain until none is left.
            let mut pending = Vec::new();
            while let Some(kms) = scope.next_kms_ctx() {
                pending.push(kms);
            }
            if pending.is_empty() {
                return Ok(());
            }
            stream::iter(pending)
                .map(Ok)
                .try_for_each_concurrent(self.concurrency.max(1), |mut kms| async move {
                    self.attempt(&mut kms).await
                })
                .await?;
        }
    }

    async fn attempt(&self, kms: &mut KmsCtx<'_>) -> Result<(), KmsError> {
        let backoff = u64::try_from(kms.sleep_micros()).unwrap_or(0);
        if backoff > 0 {
            tokio::time::sleep(Duration::from_micros(backoff)).await;
        }
        let endpoint = kms.endpoint()?.to_string();
        let outcome = match tokio::time::timeout(self.timeout, self.exchange(kms, &endpoint)).await
        {
            Ok(result) => result,
            Err(_) => Err(Failure::Network(format!(
                "no complete reply within {:?}",
                self.timeout
            ))),
        };
        match outcome {
            Ok(()) => Ok(()),
            // libmongocrypt judged the reply (a KMS error, bad bytes): final.
            Err(Failure::Crypt(e)) => Err(KmsError::Crypt(e)),
            Err(Failure::Network(cause)) if kms.retry_failure() => {
                tracing::debug!(%endpoint, %cause, "KMS request failed; libmongocrypt retries it");
                Ok(())
            }
            Err(Failure::Network(cause)) => Err(KmsError::Network { endpoint, cause }),
        }
    }

    /// One request over a fresh TLS connection.
    async fn exchange(&self, kms: &mut KmsCtx<'_>, endpoint: &str) -> Result<(), Failure> {
        let (host, port) =
            split_endpoint(endpoint).ok_or_else(|| Failure::Crypt(bad_endpoint(endpoint)))?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| Failure::Crypt(bad_endpoint(endpoint)))?;
        let provider = kms.kms_provider().map_err(Failure::Crypt)?.as_string();
        let connector = TlsConnector::from(self.tls.for_provider(&provider));
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).ok();
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        let message = kms.message().map_err(Failure::Crypt)?;
        tls.write_all(message)
            .await
            .map_err(|e| format!("send: {e}"))?;
        tls.flush().await.map_err(|e| format!("send: {e}"))?;
        let mut buf = Vec::new();
        while kms.bytes_needed() > 0 {
            buf.resize(kms.bytes_needed() as usize, 0);
            let n = tls
                .read(&mut buf)
                .await
                .map_err(|e| format!("receive: {e}"))?;
            if n == 0 {
                return Err(Failure::Network(
                    "connection closed before the reply was complete".into(),
                ));
            }
            kms.feed(&buf[..n]).map_err(Failure::Crypt)?;
        }
        Ok(())
    }
}

/// How one attempt failed: the network (retryable) or libmongocrypt's verdict (final).
enum Failure {
    Network(String),
    Crypt(mongocrypt::error::Error),
}

impl From<String> for Failure {
    fn from(cause: String) -> Self {
        Failure::Network(cause)
    }
}

#[cfg(test)]
mod tests {
    use super::split_endpoint;

    #[test]
    fn endpoints_split_into_host_and_port() {
        assert_eq!(
            split_endpoint("kms.us-east-1.amazonaws.com:443"),
            Some(("kms.us-east-1.amazonaws.com", 443))
        );
        assert_eq!(
            split_endpoint("127.0.0.1:50123"),
            Some(("127.0.0.1", 50123))
        );
        assert_eq!(split_endpoint("[::1]:5696"), Some(("::1", 5696)));
        assert_eq!(split_endpoint("no-port"), None);
        assert_eq!(split_endpoint("host:notaport"), None);
    }
}
