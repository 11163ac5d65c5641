//! A KMS source's grant: unwrap (decrypt) the DEKs under the old master key(s), for
//! keyshift during the move and for the applications until the final stage; revoked
//! after the waiting period.
//!
//! - AWS: `kms:Decrypt` on exactly the source key ARNs (an IAM policy of its own, so it
//!   can be deleted by name afterwards); then the key is disabled (reversible) before
//!   anyone schedules its deletion.
//! - Azure: no built-in role narrower than "Key Vault Crypto Service Encryption User"
//!   exists, so the grant is that role on the one key (RBAC vaults), or `unwrapKey`
//!   alone for access-policy vaults.
//! - GCP: `roles/cloudkms.cryptoKeyDecrypter` on each source key.
//! - KMIP: server-specific notes.
//!
//! The source key identifiers are not in keyshift.toml (each DEK's `masterKey` names
//! its own); the inventory of the key vault gives them, else they are placeholders.

use serde::Serialize;
use serde_json::Value;

use super::{Command, cmd};
use crate::config::{Config, Provider, ProviderKind};
use crate::inventory::Inventory;

/// What the move needs on one KMS source provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceAccess {
    /// The provider name in kmsProviders (`aws`, `aws:legacy`, ...).
    pub name: String,
    /// Its type.
    pub provider: String,
    /// A one-line title.
    pub title: String,
    /// The policy document (IAM JSON), empty when there is none.
    pub document: String,
    /// Commands that grant it, before the move.
    pub grant: Vec<Command>,
    /// Commands that take it away (and retire the key), after the waiting period.
    pub revoke: Vec<Command>,
    /// What else to know.
    pub notes: Vec<String>,
}

/// The masterKey documents the inventory found under provider `name`.
fn source_keys<'a>(inventory: Option<&'a Inventory>, name: &str) -> Vec<&'a Value> {
    inventory
        .map(|inv| {
            inv.by_master_key
                .iter()
                .map(|m| &m.master_key)
                .filter(|mk| mk.get("provider").and_then(Value::as_str) == Some(name))
                .collect()
        })
        .unwrap_or_default()
}

fn field<'a>(mk: &'a Value, f: &str) -> Option<&'a str> {
    mk.get(f).and_then(Value::as_str)
}

const UNKNOWN_KEYS: &str = "The key vault was not read, so the source keys are placeholders: `keyshift plan` and `keyshift policy` name them once the key vault is reachable (`keyshift inspect` lists them).";

/// The access the move needs on source provider `name`.
pub fn access(config: &Config, name: &str, inventory: Option<&Inventory>) -> SourceAccess {
    let keys = source_keys(inventory, name);
    let mut notes = Vec::new();
    if inventory.is_none() {
        notes.push(UNKNOWN_KEYS.to_string());
    } else if keys.is_empty() {
        notes.push(format!(
            "No key in the key vault is under `{name}`: nothing needs this grant."
        ));
    }
    let kind = ProviderKind::of_name(name);
    let (title, document, grant, revoke) = match kind {
        Some(ProviderKind::Aws) => {
            // Keys moving to an AWS target of this same provider go by ReEncrypt.
            let reencrypt = config.target.as_ref().is_some_and(|t| t.provider == name)
                && super::target::reencrypts(config);
            aws(name, &keys, reencrypt)
        }
        Some(ProviderKind::Azure) => {
            let principal = match config.kms_providers.get(name) {
                Some(Provider::Azure(p)) => p.client_id.clone(),
                _ => None,
            };
            azure(name, &keys, principal.as_deref().unwrap_or("PRINCIPAL_ID"))
        }
        Some(ProviderKind::Gcp) => {
            let email = match config.kms_providers.get(name) {
                Some(Provider::Gcp(p)) => p.email.clone(),
                _ => None,
            };
            gcp(
                name,
                &keys,
                email.as_deref().unwrap_or("SERVICE_ACCOUNT_EMAIL"),
            )
        }
        _ => {
            notes.push(format!(
                "`{name}`: the client certificate in tlsOptions.{name} needs the KMIP operations that unwrap the source DEKs (Get on the secret data object, or Decrypt when delegated) until the move is verified; then remove that permission on the KMIP server."
            ));
            (
                format!("KMIP `{name}`: unwrap with the source object(s)"),
                String::new(),
                Vec::new(),
                Vec::new(),
            )
        }
    };
    SourceAccess {
        name: name.to_string(),
        provider: kind.map_or("unknown", |k| k.as_str()).to_string(),
        title,
        document,
        grant,
        revoke,
        notes,
    }
}

type Parts = (String, String, Vec<Command>, Vec<Command>);

/// A name safe in a file or policy name: `aws:legacy` -> `aws-legacy`.
fn slug(name: &str) -> String {
    name.replace(':', "-")
}

fn aws(name: &str, keys: &[&Value], reencrypt: bool) -> Parts {
    let arns: Vec<String> = keys
        .iter()
        .filter_map(|mk| field(mk, "key"))
        .map(str::to_string)
        .collect();
    let resource = if arns.is_empty() {
        vec!["SOURCE_KEY_ARN".to_string()]
    } else {
        arns.clone()
    };
    let document = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "KeyshiftSourceKeys",
            "Effect": "Allow",
            "Action": if reencrypt {
                serde_json::json!(["kms:Decrypt", "kms:ReEncryptFrom"])
            } else {
                serde_json::json!(["kms:Decrypt"])
            },
            "Resource": resource,
        }],
    });
    let file = format!("keyshift-source-{}-policy.json", slug(name));
    let policy_name = format!("keyshift-source-{}", slug(name));
    let grant = vec![
        cmd(
            "Write the source policy document (decrypt only) to a file.",
            format!("keyshift policy --document {name} > {file}"),
        ),
        cmd(
            "Attach it to the role keyshift runs as (and the applications, until the final stage).",
            format!(
                "aws iam put-role-policy --role-name ROLE_NAME --policy-name {policy_name} --policy-document file://{file}"
            ),
        ),
    ];
    let mut revoke = vec![cmd(
        "Take the source grant away once every key is verified under the target and the final stage is deployed.",
        format!("aws iam delete-role-policy --role-name ROLE_NAME --policy-name {policy_name}"),
    )];
    for arn in arns
        .iter()
        .map(String::as_str)
        .chain(arns.is_empty().then_some("SOURCE_KEY_ARN"))
    {
        let region = arn.split(':').nth(3).filter(|r| !r.is_empty());
        let region = region.map(|r| format!(" --region {r}")).unwrap_or_default();
        revoke.push(cmd(
            "Disable the old key (reversible with enable-key) if nothing else uses it; schedule its deletion only after the waiting period.",
            format!("aws kms disable-key{region} --key-id {arn}"),
        ));
    }
    (
        format!("IAM policy: decrypt with exactly the source key(s) of `{name}`"),
        serde_json::to_string_pretty(&document).unwrap_or_default(),
        grant,
        revoke,
    )
}

fn azure(name: &str, keys: &[&Value], principal: &str) -> Parts {
    let mut grant = Vec::new();
    let mut revoke = Vec::new();
    let targets: Vec<(String, String)> = if keys.is_empty() {
        vec![("SOURCE_VAULT".into(), "SOURCE_KEY_NAME".into())]
    } else {
        keys.iter()
            .map(|mk| {
                let host = field(mk, "keyVaultEndpoint").unwrap_or("SOURCE_VAULT");
                let vault = host
                    .trim_start_matches("https://")
                    .split('.')
                    .next()
                    .unwrap_or("SOURCE_VAULT");
                (
                    vault.to_string(),
                    field(mk, "keyName")
                        .unwrap_or("SOURCE_KEY_NAME")
                        .to_string(),
                )
            })
            .collect()
    };
    for (vault, key) in &targets {
        let scope = format!("\"$(az keyvault show --name {vault} --query id -o tsv)/keys/{key}\"");
        grant.push(cmd(
            "Grant unwrap on this one source key (Azure RBAC; no narrower built-in role exists).",
            format!("az role assignment create --role \"Key Vault Crypto Service Encryption User\" --assignee {principal} --scope {scope}"),
        ));
        grant.push(cmd(
            "Or, for a vault using access policies: unwrapKey only.",
            format!("az keyvault set-policy --name {vault} --spn {principal} --key-permissions unwrapKey"),
        ));
        revoke.push(cmd(
            "Take the source grant away once the move is verified and the final stage deployed.",
            format!("az role assignment delete --role \"Key Vault Crypto Service Encryption User\" --assignee {principal} --scope {scope}"),
        ));
        revoke.push(cmd(
            "Disable the old key if nothing else uses it (reversible).",
            format!(
                "az keyvault key set-attributes --vault-name {vault} --name {key} --enabled false"
            ),
        ));
    }
    (
        format!("Azure: unwrap with exactly the source key(s) of `{name}`"),
        String::new(),
        grant,
        revoke,
    )
}

fn gcp(name: &str, keys: &[&Value], email: &str) -> Parts {
    let mut grant = Vec::new();
    let mut revoke = Vec::new();
    let list: Vec<[&str; 4]> = if keys.is_empty() {
        vec![[
            "SOURCE_PROJECT",
            "SOURCE_LOCATION",
            "SOURCE_KEY_RING",
            "SOURCE_KEY_NAME",
        ]]
    } else {
        keys.iter()
            .map(|mk| {
                [
                    field(mk, "projectId").unwrap_or("SOURCE_PROJECT"),
                    field(mk, "location").unwrap_or("SOURCE_LOCATION"),
                    field(mk, "keyRing").unwrap_or("SOURCE_KEY_RING"),
                    field(mk, "keyName").unwrap_or("SOURCE_KEY_NAME"),
                ]
            })
            .collect()
    };
    for [project, location, ring, key] in list {
        let at = format!("{key} --project {project} --location {location} --keyring {ring}");
        grant.push(cmd(
            "Bind the decrypter role on this one source key to the service account.",
            format!("gcloud kms keys add-iam-policy-binding {at} --member serviceAccount:{email} --role roles/cloudkms.cryptoKeyDecrypter"),
        ));
        revoke.push(cmd(
            "Take the source grant away once the move is verified and the final stage deployed.",
            format!("gcloud kms keys remove-iam-policy-binding {at} --member serviceAccount:{email} --role roles/cloudkms.cryptoKeyDecrypter"),
        ));
    }
    (
        format!("GCP IAM binding: decrypter on exactly the source key(s) of `{name}`"),
        String::new(),
        grant,
        revoke,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check_toml;

    fn aws_to_gcp() -> Config {
        check_toml(
            r#"
            [keyVault]
            uri = "env:MONGODB_URI"
            [kmsProviders.aws]
            accessKeyId = "env:AWS_ACCESS_KEY_ID"
            secretAccessKey = "env:AWS_SECRET_ACCESS_KEY"
            [kmsProviders.gcp]
            email = "ks@proj.iam.gserviceaccount.com"
            privateKey = "file:gcp.pem"
            [target]
            provider = "gcp"
            masterKey = { projectId = "proj", location = "global", keyRing = "ring", keyName = "key" }
            "#,
        )
        .config
    }

    #[test]
    fn an_aws_source_gets_decrypt_only_on_the_keys_the_vault_holds() {
        let config = aws_to_gcp();
        let docs: Vec<Value> = vec![serde_json::json!({
            "_id": {"$binary": {"base64": "AAAAAAAAAAAAAAAAAAAAAA==", "subType": "04"}},
            "keyMaterial": {"$binary": {"base64": "AAAA", "subType": "00"}},
            "masterKey": {"provider": "aws", "region": "eu-west-1", "key": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
        })];
        let inv = crate::inventory::analyze(&docs, Some(&config));
        let a = access(&config, "aws", Some(&inv));
        let doc: Value = serde_json::from_str(&a.document).unwrap();
        assert_eq!(
            doc["Statement"][0]["Action"],
            serde_json::json!(["kms:Decrypt"])
        );
        assert_eq!(
            doc["Statement"][0]["Resource"][0],
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        );
        assert!(
            a.grant[0]
                .command
                .starts_with("keyshift policy --document aws > ")
        );
        assert!(
            a.revoke
                .iter()
                .any(|c| c.command.contains("delete-role-policy"))
        );
        assert!(
            a.revoke
                .iter()
                .any(|c| c.command.contains("disable-key --region eu-west-1"))
        );
        // Unknown without the vault: a placeholder and a note saying how to learn them.
        let blind = access(&config, "aws", None);
        assert!(blind.document.contains("SOURCE_KEY_ARN"));
        assert!(blind.notes[0].contains("keyshift inspect"));
    }

    #[test]
    fn gcp_and_azure_sources_get_unwrap_only() {
        let mut config = aws_to_gcp();
        config.target = None;
        let g = access(&config, "gcp", None);
        assert!(
            g.grant[0]
                .command
                .contains("roles/cloudkms.cryptoKeyDecrypter")
        );
        assert!(!g.grant[0].command.contains("EncrypterDecrypter"));
        assert!(
            g.grant[0]
                .command
                .contains("serviceAccount:ks@proj.iam.gserviceaccount.com")
        );
        let a = access(&config, "azure:old", None);
        assert!(
            a.grant
                .iter()
                .any(|c| c.command.contains("--key-permissions unwrapKey"))
        );
    }
}
