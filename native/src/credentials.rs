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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// A plain HTTP/1.1 GET (metadata services are link-local plain HTTP); the body of a
/// 200 reply, else an error naming the status.
async fn http_get(host: &str, path: &str, headers: &[(&str, &str)]) -> Result<Vec<u8>, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(host)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut reply = Vec::new();
        stream
            .read_to_end(&mut reply)
            .await
            .map_err(|e| format!("receive: {e}"))?;
        Ok::<_, String>(reply)
    };
    let reply = tokio::time::timeout(FETCH_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no reply within {FETCH_TIMEOUT:?}"))??;
    parse_reply(&reply)
}

fn parse_reply(reply: &[u8]) -> Result<Vec<u8>, String> {
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("malformed HTTP reply")?;
    let head = String::from_utf8_lossy(&reply[..split]);
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("malformed HTTP status line")?;
    let body = &reply[split + 4..];
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    if status != 200 {
        return Err(format!("HTTP {status}"));
    }
    Ok(body)
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("malformed chunked body")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "malformed chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).ok_or("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_plain_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_reply(plain).unwrap(), b"{}");
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"\r\n1\r\n}\r\n0\r\n\r\n";
        assert_eq!(parse_reply(chunked).unwrap(), b"{\"}");
        assert_eq!(
            parse_reply(b"HTTP/1.1 403 Forbidden\r\n\r\nno").unwrap_err(),
            "HTTP 403"
        );
        assert!(parse_reply(b"garbage").is_err());
        assert!(
            parse_reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
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
