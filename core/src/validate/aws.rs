//! AWS KMS rules: the key ARN grammar, region format and agreement, endpoints.
//!
//! Formats (AWS KMS developer guide, "Key identifiers (KeyId)", and the KMS API
//! reference, `MultiRegionKey.Region` pattern `^([a-z]+-){2,3}\d+$`):
//! - key ARN: `arn:PARTITION:kms:REGION:ACCOUNT:key/KEY-ID`, KEY-ID a UUID or a
//!   multi-Region id `mrk-` + 32 hex digits;
//! - alias ARN: `arn:PARTITION:kms:REGION:ACCOUNT:alias/NAME`;
//! - partitions keyshift knows: `aws`, `aws-cn` (regions `cn-*`), `aws-us-gov`
//!   (regions `us-gov-*`).

use crate::config::{AwsMasterKey, AwsProvider};
use crate::diagnostic::{Diagnostic, child, codes};

use super::common::{check_endpoint, check_secret};

/// What an ARN's resource names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArnResource {
    /// `key/ID`.
    Key(String),
    /// `alias/NAME` (NAME without the `alias/` prefix).
    Alias(String),
}

/// A parsed AWS KMS ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyArn {
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
    /// e.g. `us-east-1`.
    pub region: String,
    /// 12-digit account id.
    pub account: String,
    /// The key or alias.
    pub resource: ArnResource,
}

/// The partitions keyshift supports.
pub const PARTITIONS: &[&str] = &["aws", "aws-cn", "aws-us-gov"];

/// An AWS region name: `([a-z]+-){2,3}\d+` (e.g. `us-east-1`, `us-gov-west-1`).
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    (3..=4).contains(&parts.len())
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// A KMS key id: a UUID (lowercase hex, as KMS issues them) or `mrk-` + 32 hex.
pub fn is_key_id(s: &str) -> bool {
    if let Some(rest) = s.strip_prefix("mrk-") {
        return rest.len() == 32 && rest.chars().all(|c| c.is_ascii_hexdigit());
    }
    super::common::is_guid(s)
}

fn is_alias_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 250
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c))
}

/// The partition a region belongs to.
pub fn partition_of_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Parses a KMS key or alias ARN; the error is a diagnostic code and the reason.
pub fn parse_arn(s: &str) -> Result<KeyArn, (&'static str, String)> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return Err((
            codes::AWS_BAD_ARN,
            "an ARN has six parts: arn:PARTITION:kms:REGION:ACCOUNT:key/KEY-ID".into(),
        ));
    }
    let (partition, service, region, account, resource) =
        (parts[1], parts[2], parts[3], parts[4], parts[5]);
    if !PARTITIONS.contains(&partition) {
        return Err((
            codes::AWS_PARTITION,
            format!("partition `{partition}` is not aws, aws-cn or aws-us-gov"),
        ));
    }
    if service != "kms" {
        return Err((
            codes::AWS_BAD_ARN,
            format!("the service is `{service}`, not `kms`"),
        ));
    }
    if !is_region(region) {
        return Err((
            codes::AWS_REGION,
            format!("`{region}` is not an AWS region name like us-east-1"),
        ));
    }
    if partition_of_region(region) != partition {
        return Err((
            codes::AWS_PARTITION_REGION,
            format!(
                "region `{region}` is in partition {}, not {partition}",
                partition_of_region(region)
            ),
        ));
    }
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return Err((
            codes::AWS_ACCOUNT,
            format!("account `{account}` is not a 12-digit AWS account id"),
        ));
    }
    let resource = if let Some(id) = resource.strip_prefix("key/") {
        if !is_key_id(id) {
            return Err((
                codes::AWS_KEY_ID,
                format!("key id `{id}` is neither a UUID nor an mrk- multi-Region key id"),
            ));
        }
        ArnResource::Key(id.to_string())
    } else if let Some(name) = resource.strip_prefix("alias/") {
        if !is_alias_name(name) {
            return Err((
                codes::AWS_BAD_ARN,
                "an alias name has only letters, digits, `/`, `_` and `-`".into(),
            ));
        }
        ArnResource::Alias(name.to_string())
    } else {
        return Err((
            codes::AWS_BAD_ARN,
            "the resource must be key/KEY-ID or alias/NAME".into(),
        ));
    };
    Ok(KeyArn {
        partition: partition.into(),
        region: region.into(),
        account: account.into(),
        resource,
    })
}

/// Checks an AWS provider's credentials (references, not literals).
pub fn check_provider(out: &mut Vec<Diagnostic>, path: &str, p: &AwsProvider) {
    check_secret(out, &child(path, "accessKeyId"), p.access_key_id.as_deref());
    check_secret(
        out,
        &child(path, "secretAccessKey"),
        p.secret_access_key.as_deref(),
    );
    check_secret(
        out,
        &child(path, "sessionToken"),
        p.session_token.as_deref(),
    );
}

/// Checks an AWS masterKey.
pub fn check_master_key(out: &mut Vec<Diagnostic>, path: &str, mk: &AwsMasterKey) {
    let region = mk.region.as_deref().filter(|r| !r.trim().is_empty());
    let region_path = child(path, "region");
    if let Some(r) = region
        && !is_region(r)
    {
        out.push(Diagnostic::error(
            codes::AWS_REGION,
            &region_path,
            format!("`{r}` is not an AWS region name"),
            "Write the key's region, e.g. us-east-1 or eu-west-3.",
        ));
    }
    check_endpoint(out, &child(path, "endpoint"), mk.endpoint.as_deref());
    let Some(key) = mk.key.as_deref().filter(|k| !k.trim().is_empty()) else {
        return;
    };
    let key_path = child(path, "key");
    let arn_hint = "Copy the key ARN from the KMS console or `aws kms describe-key --key-id ID --query KeyMetadata.Arn`.";
    if !key.starts_with("arn:") {
        if is_key_id(key) || key.starts_with("alias/") {
            out.push(Diagnostic::warning(
                codes::AWS_NOT_ARN,
                &key_path,
                "masterKey.key is a bare key id or alias name: it is resolved in the default account and region, and every DEK records it as written",
                arn_hint,
            ));
        } else {
            out.push(Diagnostic::error(
                codes::AWS_BAD_ARN,
                &key_path,
                "masterKey.key is not a KMS key ARN",
                arn_hint,
            ));
        }
        return;
    }
    match parse_arn(key) {
        Err((code, why)) => out.push(Diagnostic::error(
            code,
            &key_path,
            format!("masterKey.key is not a valid KMS key ARN: {why}"),
            arn_hint,
        )),
        Ok(arn) => {
            if let ArnResource::Alias(name) = &arn.resource {
                out.push(Diagnostic::warning(
                    codes::AWS_ALIAS,
                    &key_path,
                    format!("masterKey.key is the alias ARN `alias/{name}`: DEKs record the alias, and repointing it later changes which key new DEKs use"),
                    "Prefer the key ARN (key/...); the IAM policy must name the key ARN either way.",
                ));
            }
            if let Some(r) = region
                && is_region(r)
                && r != arn.region
            {
                out.push(Diagnostic::error(
                    codes::AWS_REGION_MISMATCH,
                    &region_path,
                    format!("region is `{r}` but the key ARN is in `{}`", arn.region),
                    format!(
                        "Set region = \"{}\" (KMS keys live in one region).",
                        arn.region
                    ),
                ));
            }
        }
    }
}
