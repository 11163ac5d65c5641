//! KMIP rules: endpoint host:port, keyId, and the client certificate that KMIP servers
//! authenticate with (libmongocrypt sends no other credential).

use crate::config::{Config, KmipMasterKey, KmipProvider, ProviderKind};
use crate::diagnostic::{Diagnostic, child, codes, pointer};

use super::common::parse_endpoint;

/// The KMIP port libmongocrypt uses when the endpoint has none (IANA: 5696).
pub const DEFAULT_PORT: u16 = 5696;

fn check_kmip_endpoint(out: &mut Vec<Diagnostic>, path: &str, value: Option<&str>) {
    let Some(v) = value.filter(|v| !v.trim().is_empty()) else {
        return;
    };
    // KMIP speaks its own binary protocol over TLS, not HTTP: a URL scheme is a mistake
    // libmongocrypt would turn into an unresolvable host.
    if let Some((scheme, rest)) = v.split_once("://") {
        out.push(Diagnostic::error(
            codes::KMIP_SCHEME,
            path,
            format!("the KMIP endpoint has a URL scheme (`{scheme}://`); KMIP is not HTTP"),
            format!("Write only host:port, e.g. {}.", rest.trim_end_matches('/')),
        ));
        return;
    }
    match parse_endpoint(v) {
        Err(why) => out.push(Diagnostic::error(
            codes::NET_ENDPOINT,
            path,
            format!("`{path}` is not host:port: {why}"),
            "Write the KMIP server as host:port, e.g. kmip.example.com:5696.",
        )),
        Ok(e) if e.port.is_none() => out.push(Diagnostic::warning(
            codes::KMIP_NO_PORT,
            path,
            format!("the KMIP endpoint has no port; {DEFAULT_PORT} is used"),
            format!(
                "Write it as {}:{DEFAULT_PORT} (or the server's port) to be explicit.",
                e.host
            ),
        )),
        Ok(_) => {}
    }
}

/// Checks a KMIP provider.
pub fn check_provider(out: &mut Vec<Diagnostic>, path: &str, p: &KmipProvider) {
    check_kmip_endpoint(out, &child(path, "endpoint"), p.endpoint.as_deref());
}

/// A KMIP Unique Identifier as keyshift accepts it: printable, no surrounding spaces.
pub fn is_key_id(s: &str) -> bool {
    (1..=256).contains(&s.len()) && s.trim() == s && !s.chars().any(char::is_control)
}

/// Checks a KMIP masterKey.
pub fn check_master_key(out: &mut Vec<Diagnostic>, path: &str, mk: &KmipMasterKey) {
    match mk.key_id.as_deref() {
        None => out.push(Diagnostic::warning(
            codes::KMIP_NO_KEY_ID,
            path,
            "masterKey has no keyId: libmongocrypt creates a new KMIP object for every DEK it wraps",
            "Create one key on the KMIP server and set keyId to its Unique Identifier.",
        )),
        Some(id) if !id.trim().is_empty() && !is_key_id(id) => out.push(Diagnostic::error(
            codes::KMIP_KEY_ID,
            child(path, "keyId"),
            "keyId must be the object's Unique Identifier: 1-256 printable characters without surrounding spaces",
            "Copy the Unique Identifier the KMIP server reported when the key was created.",
        )),
        Some(_) => {}
    }
    check_kmip_endpoint(out, &child(path, "endpoint"), mk.endpoint.as_deref());
}

/// Every KMIP provider needs a client certificate in tlsOptions.
pub fn check_client_certificates(out: &mut Vec<Diagnostic>, config: &Config) {
    for name in config.kms_providers.keys() {
        if ProviderKind::of_name(name) != Some(ProviderKind::Kmip) {
            continue;
        }
        let has_cert = config
            .tls_options
            .get(name)
            .and_then(|t| t.tls_certificate_key_file.as_deref())
            .is_some_and(|f| !f.trim().is_empty());
        if !has_cert {
            out.push(Diagnostic::error(
                codes::KMIP_CLIENT_CERT,
                pointer(&["tlsOptions", name, "tlsCertificateKeyFile"]),
                format!("KMIP provider `{name}` has no client certificate; KMIP servers authenticate clients by certificate"),
                format!("Add [tlsOptions.\"{name}\"] with tlsCertificateKeyFile = \"client.pem\" (certificate and key) and tlsCAFile for the server's CA."),
            ));
        }
    }
}
