//! When a key can move by AWS KMS `ReEncrypt` instead of Decrypt + Encrypt.
//!
//! `ReEncrypt` decrypts and re-encrypts inside AWS KMS: the DEK never reaches keyshift.
//! It is one request, signed with one set of credentials, sent to one region, so a key
//! qualifies when its source master key and the target are both AWS keys of the same
//! provider name (the same credentials, which must hold `kms:ReEncryptFrom` on the
//! source key and `kms:ReEncryptTo` on the target key), in the same region and through
//! the same endpoint. Any account the credentials can reach qualifies; other keys take
//! the Decrypt + Encrypt path through libmongocrypt.

use serde_json::Value;

use crate::config::ProviderKind;

/// Whether a key whose masterKey is `source` (extended JSON) can be moved to `target`
/// (the target masterKey with its `provider`) by one `ReEncrypt`.
pub fn eligible(source: &Value, target: &Value) -> bool {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(from), Some(to)) = (text(source, "provider"), text(target, "provider")) else {
        return false;
    };
    if from != to || ProviderKind::of_name(&to) != Some(ProviderKind::Aws) {
        return false;
    }
    let region = |v: &Value| text(v, "region").map(|r| r.to_ascii_lowercase());
    let endpoint = |v: &Value| {
        text(v, "endpoint").map(|e| {
            e.trim_start_matches("https://")
                .trim_end_matches('/')
                .to_ascii_lowercase()
        })
    };
    region(source).is_some()
        && region(source) == region(target)
        && endpoint(source) == endpoint(target)
        && text(source, "key").is_some()
        && text(target, "key").is_some()
}

/// Whether a key moved by `ReEncrypt` is proven, when `[rewrap] reEncryptProofOneIn`
/// is `one_in` and `draw` is a fresh random number: every key at 1 (the default, and
/// DESIGN.md's promise 1), else one key in `one_in` on average. An unproven key's DEK
/// never leaves KMS; its new wrapping rests on KMS's own guarantee that ReEncrypt
/// returns the same plaintext under the destination key or fails.
pub fn prove(one_in: u32, draw: u32) -> bool {
    one_in <= 1 || draw.is_multiple_of(one_in)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_key_is_proven_by_default_and_one_in_n_when_sampling() {
        assert!((0..1000).all(|d| super::prove(1, d)));
        assert!((0..1000).all(|d| super::prove(0, d)));
        assert_eq!((0..1000).filter(|d| super::prove(10, *d)).count(), 100);
    }

    use super::*;
    use serde_json::json;

    fn aws(provider: &str, region: &str, key: &str) -> Value {
        json!({"provider": provider, "region": region, "key": key})
    }

    #[test]
    fn same_provider_and_region_qualify_whatever_the_account_or_key() {
        let source = aws(
            "aws",
            "us-east-1",
            "arn:aws:kms:us-east-1:111122223333:key/a",
        );
        let target = aws(
            "aws",
            "us-east-1",
            "arn:aws:kms:us-east-1:444455556666:key/b",
        );
        assert!(eligible(&source, &target));
        let named = aws("aws:prod", "eu-west-1", "k1");
        assert!(eligible(&named, &aws("aws:prod", "EU-WEST-1", "k2")));
    }

    #[test]
    fn another_region_provider_name_endpoint_or_kind_does_not() {
        let source = aws("aws", "us-east-1", "a");
        assert!(!eligible(&source, &aws("aws", "us-west-2", "b")));
        assert!(!eligible(&source, &aws("aws:prod", "us-east-1", "b")));
        let mut other_endpoint = aws("aws", "us-east-1", "b");
        other_endpoint["endpoint"] = json!("kms-fips.us-east-1.amazonaws.com");
        assert!(!eligible(&source, &other_endpoint));
        let mut same_endpoint = source.clone();
        same_endpoint["endpoint"] = json!("https://KMS.us-east-1.amazonaws.com/");
        let mut target = aws("aws", "us-east-1", "b");
        target["endpoint"] = json!("kms.us-east-1.amazonaws.com");
        assert!(eligible(&same_endpoint, &target));
        assert!(!eligible(&json!({"provider": "local"}), &target));
        assert!(!eligible(
            &json!({"provider": "gcp", "region": "us-east-1", "key": "x"}),
            &json!({"provider": "gcp", "region": "us-east-1", "key": "y"})
        ));
        assert!(!eligible(
            &json!({"provider": "aws", "key": "a"}),
            &json!({"provider": "aws", "key": "b"})
        ));
    }
}
