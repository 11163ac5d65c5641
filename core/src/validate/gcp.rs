//! Google Cloud KMS rules.
//!
//! Formats (Cloud KMS API: CreateKeyRingRequest.key_ring_id and
//! CreateCryptoKeyRequest.crypto_key_id "must match `[a-zA-Z0-9_-]{1,63}`"; Resource
//! Manager project ids: 6–30 lowercase letters, digits and hyphens, starting with a
//! letter, not ending with a hyphen; crypto key versions are positive integers; service
//! accounts are `NAME@PROJECT.iam.gserviceaccount.com`).

use crate::config::{GcpMasterKey, GcpProvider};
use crate::diagnostic::{Diagnostic, child, codes};

use super::common::{check_endpoint, check_secret};

/// A project id (optionally domain-scoped, `example.com:my-project`) or a project
/// number.
pub fn is_project_id(s: &str) -> bool {
    if !s.is_empty() && s.len() <= 20 && s.chars().all(|c| c.is_ascii_digit()) {
        return true;
    }
    let id = s.rsplit_once(':').map_or(s, |(_, id)| id);
    (6..=30).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An AWS-style region (`us-east-1`) where a GCP location (`us-east1`) belongs: the
/// GCP spelling it probably means.
pub fn aws_style_location(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split('-').collect();
    match parts.as_slice() {
        [area, dir, n]
            if area.len() == 2
                && area.chars().all(|c| c.is_ascii_lowercase())
                && !dir.is_empty()
                && dir.chars().all(|c| c.is_ascii_lowercase())
                && !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit()) =>
        {
            let area = match *area {
                "eu" => "europe",
                "ap" => "asia",
                "sa" => "southamerica",
                "ca" => "northamerica",
                other => other,
            };
            Some(format!("{area}-{dir}{n}"))
        }
        _ => None,
    }
}

/// A location: `global` or a region / multi-region name like `us-east1`, `europe`.
pub fn is_location(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A key ring or crypto key id: `[a-zA-Z0-9_-]{1,63}`.
pub fn is_resource_id(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A crypto key version: a positive integer.
pub fn is_key_version(s: &str) -> bool {
    !s.is_empty() && s.len() <= 18 && !s.starts_with('0') && s.chars().all(|c| c.is_ascii_digit())
}

/// Checks a GCP provider.
pub fn check_provider(out: &mut Vec<Diagnostic>, path: &str, p: &GcpProvider) {
    if let Some(email) = p.email.as_deref().filter(|v| !v.trim().is_empty()) {
        let ep = child(path, "email");
        let shape = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && super::common::is_hostname(domain)
                && !local.contains(char::is_whitespace)
        });
        if !shape {
            out.push(Diagnostic::error(
                codes::GCP_EMAIL,
                &ep,
                "email is not an email address",
                "Use the service account's email, NAME@PROJECT.iam.gserviceaccount.com.",
            ));
        } else if !email.ends_with(".gserviceaccount.com") {
            out.push(Diagnostic::warning(
                codes::GCP_EMAIL_NOT_SA,
                &ep,
                "email is not a service account address (…gserviceaccount.com)",
                "Use a service account's email; user accounts cannot sign the JWT libmongocrypt sends.",
            ));
        }
    }
    check_secret(out, &child(path, "privateKey"), p.private_key.as_deref());
    check_endpoint(out, &child(path, "endpoint"), p.endpoint.as_deref());
}

/// Checks a GCP masterKey.
pub fn check_master_key(out: &mut Vec<Diagnostic>, path: &str, mk: &GcpMasterKey) {
    type Rule = (&'static str, &'static str, fn(&str) -> bool, &'static str);
    let rules: [(Option<&str>, Rule); 5] = [
        (
            mk.project_id.as_deref(),
            (
                "projectId",
                codes::GCP_PROJECT,
                is_project_id,
                "projectId must be 6-30 lowercase letters, digits and hyphens, starting with a letter (or a project number)",
            ),
        ),
        (
            mk.location.as_deref(),
            (
                "location",
                codes::GCP_LOCATION,
                is_location,
                "location must be `global` or a region like us-east1",
            ),
        ),
        (
            mk.key_ring.as_deref(),
            (
                "keyRing",
                codes::GCP_KEY_RING,
                is_resource_id,
                "keyRing must match [a-zA-Z0-9_-]{1,63}",
            ),
        ),
        (
            mk.key_name.as_deref(),
            (
                "keyName",
                codes::GCP_KEY_NAME,
                is_resource_id,
                "keyName must match [a-zA-Z0-9_-]{1,63}",
            ),
        ),
        (
            mk.key_version.as_deref(),
            (
                "keyVersion",
                codes::GCP_KEY_VERSION,
                is_key_version,
                "keyVersion must be a positive integer like 1",
            ),
        ),
    ];
    for (value, (field, code, ok, message)) in rules {
        if let Some(v) = value.filter(|v| !v.trim().is_empty())
            && !ok(v)
        {
            out.push(Diagnostic::error(
                    code,
                    child(path, field),
                    message,
                    "Copy it from the key's resource name, projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY.",
                ));
        }
    }
    if let Some(meant) = mk.location.as_deref().and_then(aws_style_location) {
        out.push(Diagnostic::error(
            codes::GCP_LOCATION_AWS,
            child(path, "location"),
            format!(
                "location `{}` is written like an AWS region; Google Cloud locations have no hyphen before the number: did you mean `{meant}`?",
                mk.location.as_deref().unwrap_or_default()
            ),
            "Copy the location from the key ring's resource name (gcloud kms keyrings list --location LOCATION), e.g. global, us-east1, europe-west4.",
        ));
    }
    check_endpoint(out, &child(path, "endpoint"), mk.endpoint.as_deref());
}
