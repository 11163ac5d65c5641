//! The target's grant: wrap and unwrap new DEKs with exactly the target key.
//!
//! - AWS: an IAM policy allowing `kms:Encrypt`, `kms:Decrypt`, `kms:DescribeKey` on
//!   exactly the key ARN (AWS KMS developer guide, "IAM policies"); for an alias ARN,
//!   the key is selected with the `kms:ResourceAliases` condition key.
//! - Azure: the built-in role "Key Vault Crypto Service Encryption User" (read key
//!   metadata, wrapKey, unwrapKey: what libmongocrypt calls, nothing more) scoped to the
//!   one key (Azure RBAC for Key Vault), or for vaults using access policies, `wrapKey`
//!   and `unwrapKey`; Managed HSM uses "Managed HSM Crypto Service Encryption User".
//! - GCP: `roles/cloudkms.cryptoKeyEncrypterDecrypter` bound on the crypto key
//!   (`gcloud kms keys add-iam-policy-binding`).
//! - KMIP: server-specific; notes on what the client certificate must be allowed.

use super::{Policy, cmd, or};
use crate::config::{Config, MasterKey, Provider};
use crate::validate::aws::{ArnResource, parse_arn};

/// The target's part of the policy (`sources` left empty).
pub fn policy(config: &Config) -> Option<Policy> {
    let target = config.target.as_ref()?;
    match &target.master_key {
        MasterKey::Aws(mk) => Some(aws(
            mk.region.as_deref(),
            or(&mk.key, "KEY_ARN"),
            reencrypts(config),
        )),
        MasterKey::Azure(mk) => {
            let client = match config.kms_providers.get(&target.provider) {
                Some(Provider::Azure(p)) => p.client_id.clone(),
                _ => None,
            };
            let mut p = azure(
                or(&mk.key_vault_endpoint, "VAULT.vault.azure.net"),
                or(&mk.key_name, "KEY_NAME"),
                client.as_deref().unwrap_or("PRINCIPAL_ID"),
            );
            if mk.key_version.is_none() {
                pin_azure_version(&mut p, mk);
            }
            Some(p)
        }
        MasterKey::Gcp(mk) => {
            let email = match config.kms_providers.get(&target.provider) {
                Some(Provider::Gcp(p)) => p.email.clone(),
                _ => None,
            };
            Some(gcp(
                or(&mk.project_id, "PROJECT_ID"),
                or(&mk.location, "LOCATION"),
                or(&mk.key_ring, "KEY_RING"),
                or(&mk.key_name, "KEY_NAME"),
                email.as_deref().unwrap_or("SERVICE_ACCOUNT_EMAIL"),
            ))
        }
        MasterKey::Kmip(mk) => Some(kmip(mk.delegated == Some(true), mk.key_id.as_deref())),
        MasterKey::Local(_) | MasterKey::Other(_) => None,
    }
}

/// Whether rewrap may move keys to this AWS target by `ReEncrypt` (`[rewrap]
/// awsReEncrypt`, on unless set to false): keys already under another AWS key of the
/// target's provider move inside KMS.
pub fn reencrypts(config: &Config) -> bool {
    config.rewrap.as_ref().and_then(|r| r.aws_re_encrypt) != Some(false)
}

fn aws(region: Option<&str>, key: &str, reencrypt: bool) -> Policy {
    let mut notes = vec![
        "Attach the policy to the IAM role or user whose credentials keyshift and the applications use; the key policy must also allow that principal (the default key policy delegates to IAM).".to_string(),
    ];
    let (resource, condition) = match parse_arn(key) {
        Ok(arn) => match arn.resource {
            ArnResource::Key(_) => (key.to_string(), None),
            ArnResource::Alias(name) => {
                notes.push("The target is an alias ARN: the policy allows the keys the alias points to, via the kms:ResourceAliases condition. Prefer the key ARN.".into());
                (
                    format!(
                        "arn:{}:kms:{}:{}:key/*",
                        arn.partition, arn.region, arn.account
                    ),
                    Some(format!("alias/{name}")),
                )
            }
        },
        Err(_) => {
            notes.push("The target key is not a full key ARN: replace the Resource with the key ARN (aws kms describe-key --key-id KEY --query KeyMetadata.Arn).".into());
            (key.to_string(), None)
        }
    };
    let mut actions = vec!["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt"];
    if reencrypt {
        actions.push("kms:ReEncryptTo");
        notes.push("kms:ReEncryptTo lets keys already under another AWS key of the target's provider (same region) move inside KMS, their DEKs never leaving it; the source keys then need kms:ReEncryptFrom too. Without such keys it is unused: remove it, or set [rewrap] awsReEncrypt = false.".into());
    }
    let mut statement = serde_json::json!({
        "Sid": "KeyshiftTargetKey",
        "Effect": "Allow",
        "Action": actions,
        "Resource": resource,
    });
    if let Some(alias) = condition {
        statement["Condition"] =
            serde_json::json!({"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias}});
    }
    let document = serde_json::json!({"Version": "2012-10-17", "Statement": [statement]});
    let region = region.unwrap_or("REGION");
    let key_id = match parse_arn(key) {
        Ok(arn) => match arn.resource {
            ArnResource::Key(id) => id,
            ArnResource::Alias(_) => "KEY_ID".to_string(),
        },
        Err(_) => "KEY_ID".to_string(),
    };
    Policy {
        provider: "aws".into(),
        title: "IAM policy: encrypt, decrypt and describe exactly the target key".into(),
        document: serde_json::to_string_pretty(&document).unwrap_or_default(),
        grant: vec![
            cmd(
                "Write the policy document to a file.",
                "keyshift policy --document target > keyshift-kms-policy.json".into(),
            ),
            cmd(
                "Attach it to the role the applications and keyshift run as.",
                "aws iam put-role-policy --role-name ROLE_NAME --policy-name keyshift-target-key --policy-document file://keyshift-kms-policy.json".into(),
            ),
        ],
        create_key: vec![
            cmd(
                "Create a symmetric encryption key (the CMK); note the KeyMetadata.Arn it prints.",
                format!("aws kms create-key --region {region} --key-spec SYMMETRIC_DEFAULT --key-usage ENCRYPT_DECRYPT --description \"keyshift CSFLE master key\""),
            ),
            cmd(
                "Give it a readable alias (optional; keep the key ARN in keyshift.toml).",
                format!("aws kms create-alias --region {region} --alias-name alias/keyshift-cmk --target-key-id {key_id}"),
            ),
        ],
        notes,
        sources: Vec::new(),
    }
}

fn azure(endpoint: &str, key: &str, principal: &str) -> Policy {
    let host = endpoint
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .split(':')
        .next()
        .unwrap_or(endpoint);
    let vault = host.split('.').next().unwrap_or("VAULT");
    let hsm = host.contains(".managedhsm.");
    let (grant, create_key) = if hsm {
        (
            vec![cmd(
                "Grant wrap and unwrap on this one key to the application's identity (Managed HSM local RBAC).",
                format!(
                    "az keyvault role assignment create --hsm-name {vault} --role \"Managed HSM Crypto Service Encryption User\" --assignee {principal} --scope /keys/{key}"
                ),
            )],
            vec![cmd(
                "Create an RSA key in the HSM (libmongocrypt wraps with RSA-OAEP-256).",
                format!(
                    "az keyvault key create --hsm-name {vault} --name {key} --kty RSA-HSM --size 3072 --ops wrapKey unwrapKey"
                ),
            )],
        )
    } else {
        (
            vec![
                cmd(
                    "Grant the built-in role Key Vault Crypto Service Encryption User (wrapKey, unwrapKey, read key metadata) on this one key to the application's identity (vaults using Azure RBAC).",
                    format!(
                        "az role assignment create --role \"Key Vault Crypto Service Encryption User\" --assignee {principal} --scope \"$(az keyvault show --name {vault} --query id -o tsv)/keys/{key}\""
                    ),
                ),
                cmd(
                    "Or, for a vault using access policies: allow only wrapKey and unwrapKey.",
                    format!(
                        "az keyvault set-policy --name {vault} --spn {principal} --key-permissions wrapKey unwrapKey"
                    ),
                ),
            ],
            vec![cmd(
                "Create an RSA key (libmongocrypt wraps with RSA-OAEP-256).",
                format!(
                    "az keyvault key create --vault-name {vault} --name {key} --kty RSA --size 3072 --ops wrapKey unwrapKey"
                ),
            )],
        )
    };
    Policy {
        provider: "azure".into(),
        title: "Azure role assignment: wrap and unwrap with exactly the target key".into(),
        document: String::new(),
        grant,
        create_key,
        notes: vec![
            "The assignee is the app registration's client id, or the managed identity's principal id when kmsProviders.azure has no credentials.".into(),
            "Key Vault Crypto Service Encryption User allows reading key metadata, wrapKey and unwrapKey only (not encrypt, decrypt, sign or verify): exactly what libmongocrypt calls.".into(),
        ],
        sources: Vec::new(),
    }
}

/// An Azure target without keyVersion (KS-AZ-008): a note on why and how to pin it.
fn pin_azure_version(p: &mut Policy, mk: &crate::config::AzureMasterKey) {
    p.notes.push(format!(
        "target.masterKey.{} {}",
        crate::validate::azure::UNPINNED_MESSAGE,
        crate::validate::azure::pin_hint(mk)
    ));
}

fn gcp(project: &str, location: &str, ring: &str, key: &str, email: &str) -> Policy {
    let binding = serde_json::json!({"bindings": [{
        "role": "roles/cloudkms.cryptoKeyEncrypterDecrypter",
        "members": [format!("serviceAccount:{email}")],
    }]});
    Policy {
        provider: "gcp".into(),
        title: "GCP IAM binding: encrypter/decrypter on exactly the target key".into(),
        document: serde_json::to_string_pretty(&binding).unwrap_or_default(),
        grant: vec![cmd(
            "Bind the encrypter/decrypter role on this one key to the service account.",
            format!("gcloud kms keys add-iam-policy-binding {key} --project {project} --location {location} --keyring {ring} --member serviceAccount:{email} --role roles/cloudkms.cryptoKeyEncrypterDecrypter"),
        )],
        create_key: vec![
            cmd(
                "Create the key ring (skip if it exists).",
                format!("gcloud kms keyrings create {ring} --project {project} --location {location}"),
            ),
            cmd(
                "Create a symmetric encryption key in it.",
                format!("gcloud kms keys create {key} --project {project} --location {location} --keyring {ring} --purpose encryption"),
            ),
        ],
        notes: vec![
            "When kmsProviders.gcp has no credentials, the member is the service account attached to the machine running keyshift and the applications.".into(),
        ],
        sources: Vec::new(),
    }
}

fn kmip(delegated: bool, key_id: Option<&str>) -> Policy {
    let id = key_id.unwrap_or("KEY_ID");
    let mut notes = vec![
        "KMIP servers authorize by the client certificate in tlsOptions: allow that identity on this one object only.".to_string(),
    ];
    if delegated {
        notes.push(format!("delegated = true: the certificate needs the KMIP Encrypt and Decrypt operations on AES-256 key {id}; the server does the wrapping."));
    } else {
        notes.push(format!("The certificate needs the KMIP Get operation on secret data object {id} (96 bytes); libmongocrypt wraps DEKs with it locally, and Register + Activate only if keyId is left out."));
    }
    Policy {
        provider: "kmip".into(),
        title: "KMIP: access for the client certificate to exactly the target object".into(),
        document: String::new(),
        grant: vec![],
        create_key: vec![],
        notes,
        sources: Vec::new(),
    }
}
