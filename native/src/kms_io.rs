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
use mongocrypt::ctx::{KmsCtx, KmsProviderType, KmsScope};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

use crate::kms_http;
use crate::kms_tls::{KmsStream, KmsTls};
use keyshift_core::kms_error::ReplyVerdict;

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
    /// How fast each provider is asked (shared by every clone of this transport).
    pub pace: std::sync::Arc<crate::kms_pace::KmsPace>,
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
    /// The KMS's TLS certificate did not verify: no retry can change that.
    Certificate {
        /// host:port of the KMS.
        endpoint: String,
        /// Which check failed, and what to change.
        why: String,
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
            KmsError::Certificate { endpoint, why } => {
                write!(f, "{CERTIFICATE_MARK} {endpoint} {why}")
            }
        }
    }
}

impl std::error::Error for KmsError {}

impl From<mongocrypt::error::Error> for KmsError {
    fn from(e: mongocrypt::error::Error) -> Self {
        KmsError::Crypt(e)
    }
}

/// How a certificate failure starts, so the retry loops above libmongocrypt recognise
/// it as final (see `ctx_runner::RunError::refusal`).
pub use keyshift_core::kms_error::CERTIFICATE_MARK;

/// Which certificate check failed, in words, with what to change; None when the TLS
/// failure is not about the server's certificate (a reset, a timeout: transient).
pub fn certificate_problem(e: &std::io::Error) -> Option<String> {
    use rustls::CertificateError as C;
    let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    let rustls::Error::InvalidCertificate(cert) = inner else {
        return None;
    };
    let (what, fix) = match cert {
        C::Expired | C::ExpiredContext { .. } => (
            "has expired",
            "the KMS must present a valid certificate (renew it on that server)",
        ),
        C::NotValidYet | C::NotValidYetContext { .. } => (
            "is not valid yet",
            "check this machine's clock and the certificate's validity dates",
        ),
        C::NotValidForName | C::NotValidForNameContext { .. } => (
            "does not name this host",
            "check the endpoint (masterKey.endpoint or the provider's endpoint): it must be a name the certificate covers",
        ),
        C::UnknownIssuer => (
            "is signed by an authority this machine does not trust",
            "for a private CA, set tlsCAFile in this provider's [tlsOptions] (the CA's PEM file)",
        ),
        C::Revoked => (
            "has been revoked",
            "the KMS must present a valid certificate",
        ),
        C::BadSignature | C::BadEncoding => (
            "is malformed or its signature does not verify",
            "check that the endpoint is the KMS and not a proxy presenting its own certificate",
        ),
        _ => (
            "did not verify",
            "check the endpoint and tlsCAFile in this provider's [tlsOptions]",
        ),
    };
    Some(format!(
        "{what} ({cert:?}): {fix}. Certificate failures are not retried"
    ))
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
        let provider = kms.kms_provider()?.as_string();
        // Nothing was fed to libmongocrypt until a reply is whole: the same request can
        // go again here, before spending one of libmongocrypt's own (three) attempts.
        let mut retrier = crate::retry::Retrier::new(keyshift_core::retry::Backoff::KMS_REQUEST);
        let outcome = loop {
            let request = async {
                match tokio::time::timeout(self.timeout, self.exchange(kms, &endpoint)).await {
                    Ok(result) => result,
                    Err(_) => Err(Failure::Network(format!(
                        "no complete reply within {:?}",
                        self.timeout
                    ))),
                }
            };
            let throttled = |f: &Failure| matches!(f, Failure::Throttled(_));
            let outcome = self.pace.paced(&provider, throttled, request).await;
            match outcome {
                Err(Failure::Retry(cause) | Failure::Throttled(cause))
                    if retrier.again("a KMS request", &cause).await => {}
                other => break other,
            }
        };
        match outcome {
            Ok(()) => {
                crate::failpoint::hit("kms.replied");
                Ok(())
            }
            // libmongocrypt judged the reply (a KMS error, bad bytes): final.
            Err(Failure::Crypt(e)) => Err(KmsError::Crypt(e)),
            Err(Failure::Certificate(why)) => Err(KmsError::Certificate { endpoint, why }),
            Err(Failure::Network(cause) | Failure::Retry(cause) | Failure::Throttled(cause))
                if kms.retry_failure() =>
            {
                tracing::debug!(%endpoint, %cause, "KMS request failed; libmongocrypt retries it");
                Ok(())
            }
            Err(Failure::Network(cause) | Failure::Retry(cause) | Failure::Throttled(cause)) => {
                Err(KmsError::Network { endpoint, cause })
            }
        }
    }

    /// One request. HTTP requests (AWS, Azure, GCP) go over a kept-alive connection
    /// when one is idle (libmongocrypt's `Connection: close` is dropped, see
    /// [`kms_http`]); their replies are read whole, up to where [`kms_http::frame`]
    /// says they end, and judged before libmongocrypt sees them, so a transient one
    /// (throttling, 5xx, a cut connection) can be retried cleanly. KMIP requests get a
    /// fresh connection each, and their replies stream into libmongocrypt as it asks.
    async fn exchange(&self, kms: &mut KmsCtx<'_>, endpoint: &str) -> Result<(), Failure> {
        let provider = kms.kms_provider().map_err(Failure::Crypt)?;
        let provider_name = provider.as_string();
        if matches!(provider.provider_type(), KmsProviderType::Kmip) {
            let mut tls = self.connect(&provider_name, endpoint).await?;
            send(&mut tls, kms.message().map_err(Failure::Crypt)?).await?;
            return stream_reply(kms, &mut tls).await;
        }
        let request = kms_http::keep_alive(kms.message().map_err(Failure::Crypt)?).into_owned();
        // The reply may carry a DEK (AWS Decrypt's Plaintext, Azure's unwrapped value):
        // zeroed on drop, and sized so a KMS-sized reply never reallocates (a
        // reallocation would leave an unwiped copy behind).
        let mut reply = Zeroizing::new(Vec::with_capacity(REPLY_CAPACITY));
        let (tls, frame) = loop {
            let idle = self.tls.take_idle(&provider_name, endpoint);
            let reused = idle.is_some();
            let mut tls = match idle {
                Some(tls) => tls,
                None => self.connect(&provider_name, endpoint).await?,
            };
            reply.clear();
            let sent = send(&mut tls, &request).await;
            let frame = match sent {
                Ok(()) => read_reply(&mut tls, &mut reply).await,
                Err(e) => Err(e),
            };
            match frame {
                // A kept connection the server closed meanwhile: nothing was answered,
                // so the request goes again at once on a fresh one.
                Err(_) if reused && reply.is_empty() => {
                    tracing::debug!(%endpoint, "an idle KMS connection was closed; reconnecting");
                }
                Err(e) => return Err(e),
                Ok(frame) => break (tls, frame),
            }
        };
        let len = match frame {
            kms_http::Frame::Complete { len, reusable } => {
                if reusable {
                    self.tls.keep_idle(&provider_name, endpoint, tls);
                }
                len
            }
            _ => reply.len(),
        };
        match transient_http(&reply[..len]) {
            Some(Transient::Throttled(why)) => return Err(Failure::Throttled(why)),
            Some(Transient::Other(why)) => return Err(Failure::Retry(why)),
            None => {}
        }
        let mut rest = &reply[..len];
        while kms.bytes_needed() > 0 && !rest.is_empty() {
            let n = (kms.bytes_needed() as usize).min(rest.len());
            kms.feed(&rest[..n]).map_err(Failure::Crypt)?;
            rest = &rest[n..];
        }
        if kms.bytes_needed() > 0 {
            return Err(Failure::Network(
                "connection closed before the reply was complete".into(),
            ));
        }
        Ok(())
    }

    /// A fresh TLS connection to `endpoint` with `provider`'s configuration.
    async fn connect(&self, provider: &str, endpoint: &str) -> Result<KmsStream, Failure> {
        let (host, port) =
            split_endpoint(endpoint).ok_or_else(|| Failure::Crypt(bad_endpoint(endpoint)))?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| Failure::Crypt(bad_endpoint(endpoint)))?;
        let connector = TlsConnector::from(self.tls.for_provider(provider));
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| Failure::Retry(format!("connect: {e}")))?;
        tcp.set_nodelay(true).ok();
        let tls =
            connector
                .connect(name, tcp)
                .await
                .map_err(|e| match certificate_problem(&e) {
                    Some(why) => Failure::Certificate(why),
                    None => Failure::Retry(format!("TLS handshake: {e}")),
                })?;
        // One ClientConfig per provider for the whole run: its session cache lets
        // later connections resume (TLS 1.3 tickets) when the KMS offers it.
        tracing::debug!(
            %endpoint,
            handshake = ?tls.get_ref().1.handshake_kind(),
            "KMS connection"
        );
        Ok(tls)
    }
}

async fn send(tls: &mut KmsStream, request: &[u8]) -> Result<(), Failure> {
    tls.write_all(request)
        .await
        .map_err(|e| Failure::Retry(format!("send: {e}")))?;
    tls.flush()
        .await
        .map_err(|e| Failure::Retry(format!("send: {e}")))
}

/// Reads an HTTP reply into `reply` until [`kms_http::frame`] finds its end, the
/// server closes, or it exceeds [`MAX_HTTP_REPLY`].
async fn read_reply(
    tls: &mut KmsStream,
    reply: &mut Zeroizing<Vec<u8>>,
) -> Result<kms_http::Frame, Failure> {
    let mut chunk = Zeroizing::new([0u8; 16 << 10]);
    loop {
        match kms_http::frame(reply) {
            kms_http::Frame::Partial | kms_http::Frame::UntilClose => {}
            done => return Ok(done),
        }
        if reply.len() as u64 >= MAX_HTTP_REPLY {
            return Ok(kms_http::Frame::Invalid);
        }
        match tls.read(&mut chunk[..]).await {
            Ok(0) => return Ok(kms_http::frame(reply)),
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
            // Many HTTP servers close without TLS close_notify; whether the reply is
            // whole is judged from its framing.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(kms_http::frame(reply));
            }
            Err(e) => return Err(Failure::Retry(format!("receive: {e}"))),
        }
    }
}

/// KMS replies are small; anything larger is not a KMS.
const MAX_HTTP_REPLY: u64 = 1 << 20;
/// Room for any KMS reply seen in practice (a few KiB) without reallocating.
const REPLY_CAPACITY: usize = 64 << 10;

/// Streams a KMIP reply into libmongocrypt as it asks for bytes.
async fn stream_reply(
    kms: &mut KmsCtx<'_>,
    tls: &mut (impl AsyncReadExt + Unpin),
) -> Result<(), Failure> {
    // KMIP replies carry key material (a Get's secret data): zeroed on drop.
    let mut buf = Zeroizing::new(Vec::with_capacity(REPLY_CAPACITY));
    let mut fed = false;
    while kms.bytes_needed() > 0 {
        buf.resize(kms.bytes_needed() as usize, 0);
        let n = tls.read(&mut buf).await.map_err(|e| {
            let cause = format!("receive: {e}");
            if fed {
                Failure::Network(cause)
            } else {
                Failure::Retry(cause)
            }
        })?;
        if n == 0 {
            let cause = "connection closed before the reply was complete".to_string();
            return Err(if fed {
                Failure::Network(cause)
            } else {
                Failure::Retry(cause)
            });
        }
        kms.feed(&buf[..n]).map_err(Failure::Crypt)?;
        fed = true;
    }
    Ok(())
}

/// Whether an HTTP reply is a transient refusal: a cut reply, throttling (AWS says
/// ThrottlingException with HTTP 400; Azure and GCP say 429) or a server error (5xx).
fn transient_http(reply: &[u8]) -> Option<Transient> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Response::new(&mut headers);
    let head_len = match head.parse(reply) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Some(Transient::Other(
                "the reply ended before its headers did".into(),
            ));
        }
        // Not HTTP as httparse reads it: libmongocrypt's own parser gives the error.
        Err(_) => return None,
    };
    let status = head.code?;
    let body = &reply[head_len..];
    let length = head
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        });
    if length.is_some_and(|n| body.len() < n) {
        return Some(Transient::Other("the reply was cut short".into()));
    }
    match keyshift_core::kms_error::reply_verdict(status, body) {
        ReplyVerdict::Throttled => Some(Transient::Throttled(format!(
            "the KMS answered HTTP {status} (throttled)"
        ))),
        ReplyVerdict::ServerError => Some(Transient::Other(format!(
            "the KMS answered HTTP {status} (transient)"
        ))),
        ReplyVerdict::Final => None,
    }
}

/// A reply worth sending the request again for.
#[derive(Debug, PartialEq, Eq)]
enum Transient {
    /// Throttling (AWS `ThrottlingException`, HTTP 429): again, at a slower pace.
    Throttled(String),
    /// A server error or a cut reply.
    Other(String),
}

/// How one attempt failed.
enum Failure {
    /// Nothing reached libmongocrypt yet: the request may simply go again.
    Retry(String),
    /// The KMS answered "throttled" (nothing reached libmongocrypt): go again, slower.
    Throttled(String),
    /// The network failed after part of the reply was fed: libmongocrypt must reset it.
    Network(String),
    /// libmongocrypt's verdict on the reply: final.
    Crypt(mongocrypt::error::Error),
    /// The server's certificate did not verify: final, never retried.
    Certificate(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Retry(why)
            | Failure::Throttled(why)
            | Failure::Network(why)
            | Failure::Certificate(why) => f.write_str(why),
            Failure::Crypt(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{split_endpoint, transient_http};

    #[test]
    fn throttling_server_errors_and_cut_replies_are_transient() {
        let aws_throttle = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 60\r\n\r\n{\"__type\": \"ThrottlingException\", \"message\": \"Rate exceeded\"}";
        assert!(transient_http(aws_throttle).is_some());
        assert!(transient_http(b"HTTP/1.1 429 Too Many Requests\r\n\r\n{}").is_some());
        assert!(transient_http(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").is_some());
        assert!(transient_http(b"HTTP/1.1 200 OK\r\nContent-Le").is_some());
        assert!(transient_http(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_some());
        // Final answers go to libmongocrypt, which reports them.
        let denied = b"HTTP/1.1 400 Bad Request\r\n\r\n{\"__type\": \"AccessDeniedException\"}";
        assert!(transient_http(denied).is_none());
        assert!(transient_http(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").is_none());
    }

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

/// Properties of the reply framing over any bytes a network can deliver: no panic, and
/// on well-formed replies the right verdict (a whole 2xx/4xx answer is libmongocrypt's
/// to judge; a cut one, a 429, a 5xx or AWS throttling is retried).
#[cfg(test)]
mod properties {
    use super::transient_http;
    use proptest::prelude::*;

    fn reply(status: u16, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {status} Whatever\r\n").into_bytes();
        for (k, v) in headers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes_are_judged_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = transient_http(&bytes);
        }

        #[test]
        fn whole_replies_are_judged_by_status(
            status in 100u16..600,
            body in proptest::collection::vec(any::<u8>(), 0..512),
            extra in proptest::collection::vec(("[A-Za-z-]{1,12}", "[ -~]{0,30}"), 0..6),
        ) {
            let mut headers = extra.clone();
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case("content-length"));
            headers.push(("Content-Length".into(), body.len().to_string()));
            let verdict = transient_http(&reply(status, &headers, &body));
            let aws_throttle = status == 400
                && body.windows(19).any(|w| w == b"ThrottlingException");
            let transient = status == 429 || (500..600).contains(&status) || aws_throttle;
            prop_assert_eq!(verdict.is_some(), transient, "{} {:?}", status, verdict);
        }

        #[test]
        fn a_reply_cut_anywhere_is_retried(
            body in proptest::collection::vec(any::<u8>(), 1..512),
            cut in any::<prop::sample::Index>(),
        ) {
            let whole = reply(200, &[("Content-Length".into(), body.len().to_string())], &body);
            let at = cut.index(whole.len());
            prop_assert!(transient_http(&whole[..at]).is_some(), "cut at {} of {}", at, whole.len());
        }
    }
}
