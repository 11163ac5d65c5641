//! On-demand KMS credentials (libmongocrypt's NEED_KMS_CREDENTIALS): when keyshift.toml
//! leaves a cloud provider's credential fields out, the credentials come from where a
//! server running in that cloud finds them.
//!
//! - azure: the managed identity token from the instance metadata service (IMDS),
//!   `http://169.254.169.254`, or `KEYSHIFT_AZURE_IMDS_ENDPOINT` (host:port);
//! - gcp: the attached service account's token from the metadata server,
//!   `metadata.google.internal`, or `GCE_METADATA_HOST` (Google's own override);
//! - aws: the AWS SDK's default credential chain (environment, profiles, web identity,
//!   ECS container credentials, EC2 instance metadata; see [`crate::aws`]).
//!
//! Tokens are cached until shortly before they expire, so a run of thousands of keys
//! asks the metadata service once. Tokens are secrets: never logged or printed.

use std::time::{Duration, Instant};

use bson::{Document, doc};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::secret::SecretDoc;

const AZURE_IMDS: &str = "169.254.169.254:80";
const GCP_METADATA: &str = "metadata.google.internal:80";
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Refresh this long before a token's stated expiry.
const EARLY: Duration = Duration::from_secs(60);

/// Fetches and caches on-demand credentials for the providers configured without any.
pub struct OnDemand {
    providers: Vec<String>,
    azure_imds: String,
    gcp_metadata: String,
    aws_ca_file: Option<std::path::PathBuf>,
    cache: Mutex<Option<(SecretDoc, Instant)>>,
}

impl OnDemand {
    /// `providers`: names whose kmsProviders entry is empty (`aws`, `azure`, `gcp`).
    /// Metadata endpoints: the clouds' own, or the environment's overrides.
    pub fn new(providers: Vec<String>) -> Self {
        let azure =
            std::env::var("KEYSHIFT_AZURE_IMDS_ENDPOINT").unwrap_or_else(|_| AZURE_IMDS.into());
        let gcp = std::env::var("GCE_METADATA_HOST").unwrap_or_else(|_| GCP_METADATA.into());
        Self::with_endpoints(providers, azure, gcp)
    }

    /// As [`OnDemand::new`] with explicit metadata endpoints (host or host:port).
    pub fn with_endpoints(
        providers: Vec<String>,
        azure_imds: String,
        gcp_metadata: String,
    ) -> Self {
        let port = |h: String| {
            if h.contains(':') {
                h
            } else {
                format!("{h}:80")
            }
        };
        OnDemand {
            providers,
            azure_imds: port(azure_imds),
            gcp_metadata: port(gcp_metadata),
            aws_ca_file: None,
            cache: Mutex::new(None),
        }
    }

    /// Extra CA (PEM) the AWS SDK trusts, as tlsOptions.aws.tlsCAFile.
    pub fn aws_ca_file(mut self, path: Option<std::path::PathBuf>) -> Self {
        self.aws_ca_file = path;
        self
    }

    /// The providers that get credentials on demand.
    pub fn providers(&self) -> &[String] {
        &self.providers
    }

    /// The credentials document for `mongocrypt_ctx_provide_kms_providers`.
    pub async fn get(&self) -> Result<SecretDoc, String> {
        let mut cache = self.cache.lock().await;
        if let Some((doc, until)) = cache.as_ref()
            && Instant::now() < *until
        {
            return Ok(doc.clone());
        }
        let mut out = Document::new();
        let mut expires = Instant::now() + Duration::from_secs(3600);
        for name in &self.providers {
            let (creds, ttl) = match name.as_str() {
                "azure" => azure(&self.azure_imds).await?,
                "gcp" => gcp(&self.gcp_metadata).await?,
                // The SDK refreshes its own credentials; keyshift re-asks within the hour.
                "aws" => (
                    crate::aws::chain_credentials(self.aws_ca_file.as_deref()).await?,
                    Some(Duration::from_secs(900)),
                ),
                other => {
                    return Err(format!(
                        "kmsProviders.{other} has no credentials, and on-demand credentials \
                         exist only for aws, azure and gcp: give them as references"
                    ));
                }
            };
            if let Some(ttl) = ttl {
                expires = expires.min(Instant::now() + ttl.saturating_sub(EARLY));
            }
            out.insert(name.clone(), creds);
        }
        let doc = SecretDoc::new(out);
        *cache = Some((doc.clone(), expires));
        Ok(doc)
    }
}

async fn azure(host: &str) -> Result<(Document, Option<Duration>), String> {
    let path = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";
    let body = http_get(host, path, &[("Metadata", "true")])
        .await
        .map_err(|e| format!("Azure managed identity (IMDS at {host}): {e}"))?;
    token_from(&body, "Azure managed identity")
}

async fn gcp(host: &str) -> Result<(Document, Option<Duration>), String> {
    let path = "/computeMetadata/v1/instance/service-accounts/default/token";
    let body = http_get(host, path, &[("Metadata-Flavor", "Google")])
        .await
        .map_err(|e| format!("GCP metadata server ({host}): {e}"))?;
    token_from(&body, "GCP attached service account")
}

fn token_from(body: &[u8], what: &str) -> Result<(Document, Option<Duration>), String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| format!("{what}: the token reply is not JSON"))?;
    let token = v["access_token"]
        .as_str()
        .ok_or_else(|| format!("{what}: the token reply has no access_token"))?;
    // Azure sends expires_in as a string, GCP as a number.
    let ttl = v["expires_in"]
        .as_u64()
        .or_else(|| v["expires_in"].as_str().and_then(|s| s.parse().ok()))
        .map(Duration::from_secs);
    Ok((doc! {"accessToken": token}, ttl))
}

/// Metadata token replies are small JSON documents; anything larger is refused.
const MAX_BODY: usize = 64 << 10;

/// A plain HTTP/1.1 GET through hyper (metadata services are link-local plain HTTP);
/// the body of a 200 reply, else an error naming the status.
async fn http_get(host: &str, path: &str, headers: &[(&str, &str)]) -> Result<Vec<u8>, String> {
    use http_body_util::{BodyExt, Empty, Limited};
    use hyper::body::Bytes;
    let exchange = async {
        let stream = TcpStream::connect(host)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP: {e}"))?;
        let driver = tokio::spawn(connection);
        let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let mut request = hyper::Request::get(path).header("Host", name);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("request: {e}"))?;
        let reply = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let status = reply.status().as_u16();
        let body = Limited::new(reply.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("receive: {e}"))?
            .to_bytes();
        driver.abort();
        if status != 200 {
            return Err(format!("HTTP {status}"));
        }
        Ok::<_, String>(body.to_vec())
    };
    tokio::time::timeout(FETCH_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no reply within {FETCH_TIMEOUT:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves `reply` once on a loopback port and returns its address.
    async fn serve_once(reply: &'static [u8]) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            s.write_all(reply).await.unwrap();
            s.shutdown().await.unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn replies_are_read_plain_chunked_and_refused_by_status() {
        let plain = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").await;
        assert_eq!(http_get(&plain, "/", &[]).await.unwrap(), b"{}");
        let chunked = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"\r\n1\r\n}\r\n0\r\n\r\n",
        )
        .await;
        assert_eq!(http_get(&chunked, "/", &[]).await.unwrap(), b"{\"}");
        let denied = serve_once(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno").await;
        assert_eq!(http_get(&denied, "/", &[]).await.unwrap_err(), "HTTP 403");
        let garbage = serve_once(b"garbage\r\n\r\n").await;
        assert!(http_get(&garbage, "/", &[]).await.is_err());
        let bad_chunk =
            serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").await;
        assert!(http_get(&bad_chunk, "/", &[]).await.is_err());
    }

    #[test]
    fn tokens_and_lifetimes_come_from_either_clouds_shape() {
        let (d, ttl) = token_from(br#"{"access_token":"t","expires_in":"3599"}"#, "x").unwrap();
        assert_eq!(d.get_str("accessToken").unwrap(), "t");
        assert_eq!(ttl, Some(Duration::from_secs(3599)));
        let (_, ttl) = token_from(br#"{"access_token":"t","expires_in":120}"#, "x").unwrap();
        assert_eq!(ttl, Some(Duration::from_secs(120)));
        let err = token_from(br#"{"error":"nope"}"#, "Azure").unwrap_err();
        assert!(err.contains("no access_token"));
    }
}

/// Properties of the token parser over any reply body a metadata endpoint (or something
/// pretending to be one) can send: no panic, and a token whenever one is there.
#[cfg(test)]
mod properties {
    use super::token_from;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_body_is_parsed_without_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = token_from(&body, "x");
        }

        #[test]
        fn a_token_is_found_in_either_clouds_shape(
            token in "[A-Za-z0-9._-]{1,200}",
            ttl in proptest::option::of(0u64..100_000),
            as_string in any::<bool>(),
            noise in proptest::collection::btree_map("[a-z_]{1,10}", "[a-z0-9]{0,10}", 0..5),
        ) {
            let mut v = serde_json::json!({"access_token": token});
            for (k, n) in &noise {
                if k != "access_token" && k != "expires_in" {
                    v[k] = serde_json::json!(n);
                }
            }
            if let Some(t) = ttl {
                v["expires_in"] = if as_string { serde_json::json!(t.to_string()) } else { serde_json::json!(t) };
            }
            let (doc, got) = token_from(v.to_string().as_bytes(), "x").unwrap();
            prop_assert_eq!(doc.get_str("accessToken").unwrap(), token.as_str());
            prop_assert_eq!(got, ttl.map(std::time::Duration::from_secs));
        }
    }
}
