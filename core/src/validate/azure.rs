//! Azure Key Vault rules.
//!
//! Formats (Azure Key Vault, "About keys, secrets and certificates": object identifiers
//! `https://{vault-name}.vault.azure.net/{object-type}/{object-name}/{object-version}`,
//! Managed HSM `https://{hsm-name}.managedhsm.azure.net/...`; object names 1–127
//! characters of `0-9a-zA-Z-`; versions are 32 hex digits; vault names 3–24
//! characters, letters, digits and hyphens, starting with a letter, no `--`).

use crate::config::{AzureMasterKey, AzureProvider};
use crate::diagnostic::{Diagnostic, child, codes};

use super::common::{check_endpoint, check_secret, is_guid, parse_endpoint};

/// DNS suffixes of Key Vault and Managed HSM in the Azure clouds.
pub const VAULT_SUFFIXES: &[&str] = &[
    "vault.azure.net",
    "vault.azure.cn",
    "vault.usgovcloudapi.net",
    "managedhsm.azure.net",
    "managedhsm.chinacloudapi.cn",
];

/// A host whose domain is a near miss of a Key Vault domain (`vault.azure.com` for
/// `vault.azure.net`): (what was typed, what was meant).
fn misspelt_suffix(host: &str) -> Option<(String, &'static str)> {
    let labels: Vec<&str> = host.split('.').collect();
    VAULT_SUFFIXES.iter().find_map(|suffix| {
        let n = suffix.split('.').count();
        if labels.len() <= n {
            return None;
        }
        let typed = labels[labels.len() - n..].join(".");
        let d = crate::suggest::edit_distance(&typed, suffix);
        (d > 0 && d <= 3).then_some((typed, *suffix))
    })
}

/// A tenant given by a verified domain name (`contoso.onmicrosoft.com`, `contoso.com`),
/// which Azure AD accepts wherever it accepts the tenant's GUID.
fn is_tenant_domain(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_alphabetic()))
}

/// Key Vault object name: 1–127 of `0-9a-zA-Z-`.
pub fn is_key_name(s: &str) -> bool {
    (1..=127).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Key version: 32 hex digits.
pub fn is_key_version(s: &str) -> bool {
    s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn is_vault_name(s: &str) -> bool {
    (3..=24).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !s.contains("--")
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Checks an Azure provider.
pub fn check_provider(out: &mut Vec<Diagnostic>, path: &str, p: &AzureProvider) {
    let guids = [
        (
            "tenantId",
            &p.tenant_id,
            codes::AZ_TENANT,
            "Directory (tenant) ID",
        ),
        (
            "clientId",
            &p.client_id,
            codes::AZ_CLIENT,
            "Application (client) ID",
        ),
    ];
    for (field, value, code, label) in guids {
        if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty())
            && !is_guid(v)
            && !(field == "tenantId" && is_tenant_domain(v))
        {
            out.push(Diagnostic::error(
                code,
                child(path, field),
                if field == "tenantId" {
                    "tenantId is neither a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) nor a tenant domain (contoso.onmicrosoft.com)".to_string()
                } else {
                    format!("{field} is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
                },
                format!(
                    "Copy the {label} from the app registration's overview in the Azure portal."
                ),
            ));
        }
    }
    check_secret(
        out,
        &child(path, "clientSecret"),
        p.client_secret.as_deref(),
    );
    check_endpoint(
        out,
        &child(path, "identityPlatformEndpoint"),
        p.identity_platform_endpoint.as_deref(),
    );
}

/// Checks an Azure masterKey.
pub fn check_master_key(out: &mut Vec<Diagnostic>, path: &str, mk: &AzureMasterKey) {
    if let Some(ep) = mk
        .key_vault_endpoint
        .as_deref()
        .filter(|v| !v.trim().is_empty())
    {
        let p = child(path, "keyVaultEndpoint");
        match parse_endpoint(ep) {
            Err(why) => out.push(Diagnostic::error(
                codes::AZ_ENDPOINT,
                &p,
                format!("keyVaultEndpoint is not a vault host or https URL: {why}"),
                "Write the vault's host, e.g. myvault.vault.azure.net (the Vault URI without the path).",
            )),
            Ok(e) => {
                let host = e.host.to_ascii_lowercase();
                match VAULT_SUFFIXES
                    .iter()
                    .find(|s| host.ends_with(&format!(".{s}")))
                {
                    None if misspelt_suffix(&host).is_some() => {
                        let (typed, meant) = misspelt_suffix(&host).unwrap_or_default();
                        out.push(Diagnostic::error(
                            codes::AZ_ENDPOINT_TYPO,
                            &p,
                            format!("`{host}` ends in `{typed}`, which is not a Key Vault domain: did you mean `{meant}`?"),
                            format!("Write the vault's host as NAME.{meant} (the Vault URI on the key vault's overview in the Azure portal)."),
                        ))
                    }
                    None => out.push(Diagnostic::warning(
                        codes::AZ_ENDPOINT_DOMAIN,
                        &p,
                        format!("`{host}` is not on a Key Vault domain ({})", VAULT_SUFFIXES.join(", ")),
                        "Check the Vault URI in the portal; ignore this for a private endpoint or a test server.",
                    )),
                    Some(suffix) => {
                        let name = &host[..host.len() - suffix.len() - 1];
                        if !is_vault_name(name) {
                            out.push(Diagnostic::error(
                                codes::AZ_ENDPOINT,
                                &p,
                                format!("`{name}` is not a valid vault name (3-24 letters, digits and single hyphens, starting with a letter)"),
                                "Copy the Vault URI from the key vault's overview in the Azure portal.",
                            ));
                        }
                    }
                }
            }
        }
    }
    if let Some(n) = mk.key_name.as_deref().filter(|v| !v.trim().is_empty())
        && !is_key_name(n)
    {
        out.push(Diagnostic::error(
            codes::AZ_KEY_NAME,
            child(path, "keyName"),
            "keyName must be 1-127 letters, digits and hyphens",
            "Use the key's name as shown under Keys in the vault.",
        ));
    }
    if let Some(v) = mk.key_version.as_deref().filter(|v| !v.trim().is_empty())
        && !is_key_version(v)
    {
        out.push(Diagnostic::error(
                codes::AZ_KEY_VERSION,
                child(path, "keyVersion"),
                "keyVersion must be 32 hex digits",
                "Copy the version id from the key's versions list, or remove keyVersion to use the current version.",
            ));
    }
    if mk.key_version.is_none() {
        out.push(Diagnostic::warning(
            codes::AZ_NO_KEY_VERSION,
            child(path, "keyVersion"),
            UNPINNED_MESSAGE,
            pin_hint(mk),
        ));
    }
}

/// Why an Azure masterKey without `keyVersion` works today and fails later (KS-AZ-008).
/// libmongocrypt stores the masterKey as given, and an unwrap without a version asks
/// Key Vault for the key's current version.
pub const UNPINNED_MESSAGE: &str = "keyVersion is not set: Azure Key Vault does not record which key version wrapped a DEK, and without a version every unwrap uses the key's current version. Once the key rotates (a rotation policy, or `az keyvault key rotate`), unwrapping fails and every DEK under this master key becomes unreadable.";

/// The command that prints the id of the key's current version (its last path segment
/// is the version): `az keyvault key show` for a vault, with `--hsm-name` for a
/// Managed HSM.
pub fn current_version_command(endpoint: Option<&str>, key_name: Option<&str>) -> String {
    let endpoint = endpoint
        .filter(|v| !v.trim().is_empty())
        .unwrap_or("VAULT.vault.azure.net");
    let host = parse_endpoint(endpoint)
        .map(|e| e.host.to_ascii_lowercase())
        .unwrap_or_else(|_| endpoint.to_ascii_lowercase());
    let name = host.split('.').next().unwrap_or("VAULT");
    let flag = if host.contains(".managedhsm.") {
        "--hsm-name"
    } else {
        "--vault-name"
    };
    let key = key_name
        .filter(|v| !v.trim().is_empty())
        .unwrap_or("KEY_NAME");
    format!("az keyvault key show {flag} {name} --name {key} --query key.kid -o tsv")
}

/// What to do about an unpinned Azure target: pin the current version.
pub fn pin_hint(mk: &AzureMasterKey) -> String {
    format!(
        "Pin the version: set target.masterKey.keyVersion to the key's current version, the last path segment of what `{}` prints; rewrap then wraps under that exact version, and unwrapping keeps working after the key rotates.",
        current_version_command(mk.key_vault_endpoint.as_deref(), mk.key_name.as_deref())
    )
}
