//! What AWS KMS `DescribeKey` says about a target key, judged: whether client-side
//! encryption can use it (enabled, symmetric, for ENCRYPT_DECRYPT) and whether it lives
//! in the region the configuration names. The native shell calls DescribeKey and
//! passes the answer's fields as text.

use crate::validate::aws::parse_arn;

/// The fields of `DescribeKey`'s `KeyMetadata` that matter, as AWS spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFacts<'a> {
    /// `Enabled`.
    pub enabled: bool,
    /// `KeyState` (`Enabled`, `Disabled`, `PendingDeletion`, ...).
    pub state: Option<&'a str>,
    /// `KeySpec` (`SYMMETRIC_DEFAULT`, ...).
    pub spec: Option<&'a str>,
    /// `KeyUsage` (`ENCRYPT_DECRYPT`, ...).
    pub usage: Option<&'a str>,
    /// `Arn`.
    pub arn: Option<&'a str>,
}

/// Every reason the key cannot serve as the target configured in `region`, each with
/// what to do; empty when it can.
pub fn problems(facts: &KeyFacts<'_>, region: &str) -> Vec<String> {
    let mut out = Vec::new();
    if !facts.enabled || facts.state != Some("Enabled") {
        out.push(format!(
            "the key is not enabled (state {:?}): enable it in the AWS console or with `aws kms enable-key`",
            facts.state.unwrap_or("unknown")
        ));
    }
    if facts.spec != Some("SYMMETRIC_DEFAULT") {
        out.push(
            "the key is not SYMMETRIC_DEFAULT: client-side encryption needs a symmetric key".into(),
        );
    }
    if facts.usage != Some("ENCRYPT_DECRYPT") {
        out.push("the key's usage is not ENCRYPT_DECRYPT".into());
    }
    if let Some(lives) = facts.arn.and_then(|a| parse_arn(a).ok()).map(|a| a.region)
        && lives != region
    {
        out.push(format!(
            "the key lives in {lives} but target.masterKey.region is {region}"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn good() -> KeyFacts<'static> {
        KeyFacts {
            enabled: true,
            state: Some("Enabled"),
            spec: Some("SYMMETRIC_DEFAULT"),
            usage: Some("ENCRYPT_DECRYPT"),
            arn: Some(ARN),
        }
    }

    #[test]
    fn an_enabled_symmetric_key_in_the_configured_region_serves() {
        assert!(problems(&good(), "us-east-1").is_empty());
    }

    #[test]
    fn each_problem_is_named_with_what_to_do() {
        let pending = KeyFacts {
            enabled: false,
            state: Some("PendingDeletion"),
            ..good()
        };
        assert!(problems(&pending, "us-east-1")[0].contains("\"PendingDeletion\""));
        let rsa = KeyFacts {
            spec: Some("RSA_2048"),
            usage: Some("SIGN_VERIFY"),
            ..good()
        };
        assert_eq!(problems(&rsa, "us-east-1").len(), 2);
        let elsewhere = problems(&good(), "eu-west-1");
        assert_eq!(
            elsewhere,
            ["the key lives in us-east-1 but target.masterKey.region is eu-west-1"]
        );
        // An ARN AWS would never send is not judged by region.
        assert!(
            problems(
                &KeyFacts {
                    arn: Some("nonsense"),
                    ..good()
                },
                "eu-west-1"
            )
            .is_empty()
        );
    }
}
