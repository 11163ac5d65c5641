//! Checks shared by every provider: secret references, endpoints, GUIDs, the key vault
//! namespace and URI, the target's relation to the sources, TLS options and `[rewrap]`.

use crate::config::{Config, Provider, ProviderKind, SecretError, SecretRef, is_named};
use crate::diagnostic::{Diagnostic, child, codes, pointer};
use crate::suggest::did_you_mean;

/// Bounds for `rewrap.batchSize`: memory is bounded by it (promise 7), and MongoDB
/// bulk writes beyond 100,000 operations are split anyway.
pub const BATCH_SIZE_RANGE: (i64, i64) = (1, 10_000);
/// Bounds for `rewrap.concurrency`: at least one request, and no more in flight than
/// a KMS would sensibly take from one client before throttling.
pub const CONCURRENCY_RANGE: (i64, i64) = (1, 256);
/// Bounds for `rewrap.kmsRate` (requests per second per provider): at least one, and
/// no more than the largest quota a KMS grants (AWS: 100,000/s in some regions).
pub const KMS_RATE_RANGE: (i64, i64) = (1, 100_000);
/// Bounds for `rewrap.reEncryptProofOneIn`: 1 proves every key.
pub const PROOF_SAMPLE_RANGE: (i64, i64) = (1, 1_000_000);

/// A parsed `host[:port]` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// DNS name, IPv4 address, or bracketed IPv6 address.
    pub host: String,
    /// The port, when written.
    pub port: Option<u16>,
}

/// Parses `host[:port]`, accepting an `https://` prefix and a trailing `/` as
/// libmongocrypt does; any other scheme, a path, or a bad host or port is an error
/// described in the returned text.
pub fn parse_endpoint(text: &str) -> Result<Endpoint, String> {
    let mut s = text.trim();
    if s != text {
        return Err("it starts or ends with spaces".into());
    }
    if let Some(rest) = s.strip_prefix("https://") {
        s = rest;
    } else if let Some((scheme, _)) = s.split_once("://") {
        return Err(format!(
            "scheme `{scheme}://` is not allowed; KMS endpoints are https"
        ));
    }
    let s = s.strip_suffix('/').unwrap_or(s);
    if s.contains('/') || s.contains('?') || s.contains('#') {
        return Err("it has a path; write only host[:port]".into());
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((h, after)) = rest.split_once(']') else {
            return Err("an IPv6 address needs a closing `]`".into());
        };
        if h.is_empty()
            || !h
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err("the IPv6 address is malformed".into());
        }
        match after {
            "" => (format!("[{h}]"), None),
            p => match p.strip_prefix(':') {
                Some(p) => (format!("[{h}]"), Some(p)),
                None => return Err("unexpected text after the IPv6 address".into()),
            },
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => Some(n),
            _ => return Err(format!("port `{p}` is not a number from 1 to 65535")),
        },
    };
    if !host.starts_with('[') && !is_hostname(&host) {
        return Err(format!("`{host}` is not a host name or IP address"));
    }
    Ok(Endpoint { host, port })
}

/// A DNS host name (RFC 1123 labels) or a dotted IPv4 address.
pub fn is_hostname(h: &str) -> bool {
    if h.is_empty() || h.len() > 253 {
        return false;
    }
    let h = h.strip_suffix('.').unwrap_or(h);
    h.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in hex (either case).
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Reports a malformed endpoint (KS-NET-001).
pub fn check_endpoint(out: &mut Vec<Diagnostic>, path: &str, value: Option<&str>) {
    let Some(v) = value.filter(|v| !v.trim().is_empty()) else {
        return;
    };
    if let Err(why) = parse_endpoint(v) {
        out.push(Diagnostic::error(
            codes::NET_ENDPOINT,
            path,
            format!("`{path}` is not host[:port]: {why}"),
            "Write the endpoint as host or host:port, e.g. kms.example.com:443.",
        ));
    }
}

/// Reports a secret field that is not an `env:` / `file:` reference. The value itself
/// is never repeated in the message: it may be the secret.
pub fn check_secret(out: &mut Vec<Diagnostic>, path: &str, value: Option<&str>) {
    let Some(v) = value.filter(|v| !v.trim().is_empty()) else {
        return;
    };
    match SecretRef::parse(v) {
        Ok(_) => {}
        Err(SecretError::Literal) => out.push(literal_secret(path)),
        Err(SecretError::Malformed(why)) => out.push(bad_reference(path, &why)),
    }
}

fn literal_secret(path: &str) -> Diagnostic {
    Diagnostic::error(
        codes::LITERAL_SECRET,
        path,
        format!("`{path}` holds a literal secret; keyshift.toml must not contain secrets"),
        "Put the secret in an environment variable and write \"env:NAME\", or in a file readable only by you and write \"file:PATH\". If it was committed anywhere, rotate it.",
    )
}

fn bad_reference(path: &str, why: &str) -> Diagnostic {
    Diagnostic::error(
        codes::BAD_SECRET_REF,
        path,
        format!("`{path}` is not a valid secret reference: {why}"),
        "Write \"env:NAME\" (an environment variable) or \"file:PATH\" (a file).",
    )
}

/// keyVault.uri: a reference, or a literal connection string without a password.
pub fn check_uri(out: &mut Vec<Diagnostic>, uri: Option<&str>) {
    check_uri_at(out, "/keyVault/uri", uri);
}

/// A connection string field at `path` (keyVault.uri, retire.deployments.NAME): a
/// reference, or a literal connection string without a password, judged by [`crate::uri`].
pub fn check_uri_at(out: &mut Vec<Diagnostic>, path: &str, uri: Option<&str>) {
    let Some(v) = uri.filter(|v| !v.trim().is_empty()) else {
        return;
    };
    match SecretRef::parse(v) {
        Ok(_) => {}
        Err(SecretError::Malformed(why)) => out.push(bad_reference(path, &why)),
        Err(SecretError::Literal) => {
            let rest = v
                .strip_prefix("mongodb://")
                .or_else(|| v.strip_prefix("mongodb+srv://"));
            match rest {
                None => out.push(Diagnostic::error(
                    codes::KV_URI,
                    path,
                    format!("`{path}` is neither a secret reference nor a mongodb:// or mongodb+srv:// connection string"),
                    "Write \"env:MONGODB_URI\" (any variable name) and export the connection string in it.",
                )),
                Some(rest) => {
                    // A password in the URI is a secret; a bare host list is not.
                    let authority = rest.split(['/', '?']).next().unwrap_or("");
                    if authority
                        .rsplit_once('@')
                        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
                    {
                        out.push(literal_secret(path));
                    }
                    crate::uri::check(out, path, v);
                }
            }
        }
    }
}

/// Why `ns` is not a valid `db.coll` namespace (MongoDB's naming restrictions), if it
/// is not.
pub fn namespace_problem(ns: &str) -> Option<String> {
    match ns.split_once('.') {
        None => Some("it has no `.` between database and collection".to_string()),
        Some((db, coll)) => {
            if db.is_empty() {
                Some("the database name is empty".into())
            } else if db.len() > 63 {
                Some("the database name is longer than 63 bytes".into())
            } else if let Some(c) = db.chars().find(|c| "/\\. \"$*<>:|?\0".contains(*c)) {
                Some(format!("the database name contains `{c}`"))
            } else if coll.is_empty() {
                Some("the collection name is empty".into())
            } else if coll.contains('$') || coll.contains('\0') {
                Some("the collection name contains `$` or a NUL".into())
            } else if coll.starts_with("system.") {
                Some("`system.` collections are reserved".into())
            } else if ns.len() > 255 {
                Some("the namespace is longer than 255 bytes".into())
            } else {
                None
            }
        }
    }
}

/// keyVault.namespace: `db.coll` with MongoDB's naming restrictions.
pub fn check_namespace(out: &mut Vec<Diagnostic>, ns: &str) {
    let path = "/keyVault/namespace";
    if ns.trim().is_empty() {
        return;
    }
    if let Some(why) = namespace_problem(ns) {
        out.push(Diagnostic::error(
            codes::KV_NAMESPACE,
            path,
            format!("keyVault.namespace `{ns}` is not a valid db.coll: {why}"),
            "Use the namespace your applications pass as keyVaultNamespace, e.g. \"encryption.__keyVault\".",
        ));
    }
}

/// The target's relation to kmsProviders.
pub fn check_target(out: &mut Vec<Diagnostic>, config: &Config) {
    let Some(target) = &config.target else {
        return;
    };
    let name = target.provider.as_str();
    if name.trim().is_empty() {
        return;
    }
    let path = "/target/provider";
    if !config.kms_providers.contains_key(name) {
        let names: Vec<&str> = config.kms_providers.keys().map(String::as_str).collect();
        let hint = match did_you_mean(name, &names) {
            Some(s) => format!("Did you mean `{s}`? Or add a [kmsProviders.\"{name}\"] section."),
            None => format!(
                "Add a [kmsProviders.\"{name}\"] section, or name one of: {}.",
                names.join(", ")
            ),
        };
        out.push(Diagnostic::error(
            codes::TGT_UNKNOWN_PROVIDER,
            path,
            format!("target provider `{name}` is not in kmsProviders"),
            hint,
        ));
    } else if config.kms_providers.len() == 1 {
        out.push(Diagnostic::error(
            codes::TGT_ONLY_PROVIDER,
            path,
            format!("`{name}` is the only provider: there is no current master key to move from"),
            "Add the provider the keys are under now (e.g. [kmsProviders.local] with its key), and keep the target as a second one.",
        ));
    }
    if let Some(Provider::Local(t)) = config.kms_providers.get(name) {
        let same = config.kms_providers.iter().find(|(n, p)| {
            n.as_str() != name
                && matches!(p, Provider::Local(s) if s.key.is_some() && s.key == t.key)
        });
        if let Some((source, _)) = same {
            out.push(Diagnostic::error(
                codes::TGT_SAME_AS_SOURCE,
                path,
                format!(
                    "the target `{name}` reads the same key as `{source}`: nothing would change"
                ),
                "Point the target's key at the new key's file or variable.",
            ));
        }
    }
    if ProviderKind::of_name(name) == Some(ProviderKind::Local) {
        out.push(Diagnostic::warning(
            codes::TGT_LOCAL,
            path,
            "the target is a local key: the new master key is still one you keep yourself",
            "That rotates the local key; to move to a KMS, set target.provider to an aws, azure, gcp or kmip provider.",
        ));
    }
}

/// Named providers cannot use on-demand credentials; partial credential sets are errors.
pub fn check_credentials(out: &mut Vec<Diagnostic>, name: &str, provider: &Provider) {
    let path = pointer(&["kmsProviders", name]);
    let (fields, set): (&[&str], Vec<bool>) = match provider {
        Provider::Aws(p) => (
            &["accessKeyId", "secretAccessKey"],
            vec![p.access_key_id.is_some(), p.secret_access_key.is_some()],
        ),
        Provider::Azure(p) => (
            &["tenantId", "clientId", "clientSecret"],
            vec![
                p.tenant_id.is_some(),
                p.client_id.is_some(),
                p.client_secret.is_some(),
            ],
        ),
        Provider::Gcp(p) => (
            &["email", "privateKey"],
            vec![p.email.is_some(), p.private_key.is_some()],
        ),
        _ => return,
    };
    let count = set.iter().filter(|b| **b).count();
    if count == 0 {
        if let Provider::Aws(p) = provider
            && p.session_token.is_some()
        {
            out.push(Diagnostic::error(
                codes::PRV_PARTIAL_CREDENTIALS,
                child(&path, "sessionToken"),
                "sessionToken is set without accessKeyId and secretAccessKey",
                "Set all three (temporary credentials), or none to use the AWS credential chain.",
            ));
        }
        if is_named(name) {
            out.push(Diagnostic::error(
                codes::PRV_NAMED_ON_DEMAND,
                &path,
                format!("`{name}` has no credentials, and named providers cannot fetch them on demand"),
                format!("Set {} as env:/file: references, or rename the provider to its plain type to use on-demand credentials.", fields.join(", ")),
            ));
        }
    } else if count < fields.len() {
        let missing: Vec<&str> = fields
            .iter()
            .zip(&set)
            .filter(|(_, s)| !**s)
            .map(|(f, _)| *f)
            .collect();
        out.push(Diagnostic::error(
            codes::PRV_PARTIAL_CREDENTIALS,
            &path,
            format!(
                "`{name}` sets only some of its credentials; {} missing",
                missing.join(", ")
            ),
            format!(
                "Set all of {} or none of them (none uses on-demand credentials).",
                fields.join(", ")
            ),
        ));
    }
}

/// tlsOptions: known providers only, a meaningful provider, secret password.
pub fn check_tls(out: &mut Vec<Diagnostic>, config: &Config) {
    for (name, tls) in &config.tls_options {
        let path = pointer(&["tlsOptions", name]);
        if !config.kms_providers.contains_key(name) {
            let names: Vec<&str> = config.kms_providers.keys().map(String::as_str).collect();
            let hint = match did_you_mean(name, &names) {
                Some(s) => {
                    format!("Did you mean `{s}`? tlsOptions are keyed by kmsProviders names.")
                }
                None => "Name a provider from kmsProviders, or remove the section.".to_string(),
            };
            out.push(Diagnostic::error(
                codes::TLS_UNKNOWN_PROVIDER,
                &path,
                format!("tlsOptions for `{name}`, which is not in kmsProviders"),
                hint,
            ));
        } else if ProviderKind::of_name(name) == Some(ProviderKind::Local) {
            out.push(Diagnostic::warning(
                codes::TLS_LOCAL,
                &path,
                "tlsOptions for a local provider have no effect: it makes no connection",
                "Remove the section.",
            ));
        }
        check_secret(
            out,
            &child(&path, "tlsCertificateKeyFilePassword"),
            tls.tls_certificate_key_file_password.as_deref(),
        );
    }
}

/// `[rewrap]`: the filter is a JSON object; numbers within bounds.
pub fn check_rewrap(out: &mut Vec<Diagnostic>, config: &Config) {
    let Some(rw) = &config.rewrap else {
        return;
    };
    if let Some(ids) = rw.kmip_replace_key_ids.as_ref().filter(|l| !l.is_empty()) {
        let path = "/rewrap/kmipReplaceKeyIds";
        match config.target.as_ref().map(|t| &t.master_key) {
            Some(crate::config::MasterKey::Kmip(mk)) => {
                if let Some(own) = mk.key_id.as_deref().filter(|k| ids.iter().any(|i| i == k)) {
                    out.push(Diagnostic::error(
                        codes::RW_KMIP_REPLACE,
                        path,
                        format!("kmipReplaceKeyIds lists `{own}`, the target's own keyId: keys would be moved away from the object they are moved to"),
                        "Remove the target's keyId from the list.",
                    ));
                }
            }
            _ => out.push(Diagnostic::warning(
                codes::RW_KMIP_REPLACE,
                path,
                "kmipReplaceKeyIds has no effect: the target is not a KMIP key",
                "Remove it, or set [target] to the KMIP server whose objects the keys should leave.",
            )),
        }
    }
    if let Some(filter) = rw.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        match serde_json::from_str::<serde_json::Value>(filter) {
            Err(e) => out.push(Diagnostic::error(
                codes::RW_FILTER_JSON,
                "/rewrap/filter",
                format!("rewrap.filter is not valid extended JSON (column {}): {e}", e.column()),
                "Write a MongoDB query in extended JSON with double-quoted keys, e.g. '{\"masterKey.provider\": \"local\"}'.",
            )),
            Ok(v) if !v.is_object() => out.push(Diagnostic::error(
                codes::RW_FILTER_OBJECT,
                "/rewrap/filter",
                "rewrap.filter must be a query document (a JSON object)",
                "Wrap the condition in braces, e.g. '{\"masterKey.provider\": \"local\"}'.",
            )),
            Ok(v) => {
                for (at, op) in super::filter::unknown_operators(&v) {
                    let hint = match crate::suggest::did_you_mean(&op, super::filter::QUERY_OPERATORS) {
                        Some(near) => format!("Did you mean {near}? The server refuses an unknown operator when rewrap or rotate runs."),
                        None => "Use a MongoDB query operator ($eq, $in, $exists, ...); the server refuses an unknown one when rewrap or rotate runs.".to_string(),
                    };
                    let place = if at.is_empty() { "at the top level".to_string() } else { format!("on {at}") };
                    out.push(Diagnostic::error(
                        codes::RW_FILTER_OPERATOR,
                        "/rewrap/filter",
                        format!("rewrap.filter uses {op} {place}, which is not a MongoDB query operator"),
                        hint,
                    ));
                }
            }
        }
    }
    let bounds = [
        (
            "batchSize",
            rw.batch_size,
            BATCH_SIZE_RANGE,
            codes::RW_BATCH_SIZE,
        ),
        (
            "concurrency",
            rw.concurrency,
            CONCURRENCY_RANGE,
            codes::RW_CONCURRENCY,
        ),
        ("kmsRate", rw.kms_rate, KMS_RATE_RANGE, codes::RW_KMS_RATE),
        (
            "reEncryptProofOneIn",
            rw.re_encrypt_proof_one_in,
            PROOF_SAMPLE_RANGE,
            codes::RW_PROOF_SAMPLE,
        ),
    ];
    for (field, value, (lo, hi), code) in bounds {
        if let Some(v) = value.filter(|v| !(lo..=hi).contains(v)) {
            out.push(Diagnostic::error(
                code,
                format!("/rewrap/{field}"),
                format!("rewrap.{field} is {v}; it must be from {lo} to {hi}"),
                format!("Set {field} between {lo} and {hi}, or remove it for the default."),
            ));
        }
    }
}
