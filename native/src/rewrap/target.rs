//! When a key is already "under the target": its `masterKey` names the target's provider
//! and agrees with every field the target sets.
//!
//! Field order does not matter (BSON documents compare in order; a key vault written by
//! another driver may order fields differently). A KMIP server assigns `keyId` when
//! keyshift does not name one, so a KMIP key may carry a `keyId` the target omits.

use bson::Document;

/// Whether a key with `master_key` needs no rewrap to reach `target`.
pub fn is_under(master_key: &Document, target: &Document) -> bool {
    let provider = target.get_str("provider").ok();
    if provider.is_none() || master_key.get_str("provider").ok() != provider {
        return false;
    }
    let kmip = provider.is_some_and(|p| p == "kmip" || p.starts_with("kmip:"));
    let delegated = |d: &Document| d.get_bool("delegated").unwrap_or(false);
    if kmip && delegated(master_key) != delegated(target) {
        return false;
    }
    let same_fields = target
        .iter()
        .filter(|(k, _)| !(kmip && k.as_str() == "delegated"))
        .all(|(k, v)| master_key.get(k) == Some(v));
    let no_extra = master_key
        .keys()
        .all(|k| target.contains_key(k) || (kmip && (k == "keyId" || k == "delegated")));
    same_fields && no_extra
}

#[cfg(test)]
mod tests {
    use super::is_under;
    use bson::doc;

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn same_fields_in_any_order_are_under_the_target() {
        let target = doc! {"provider": "aws", "region": "us-east-1", "key": ARN};
        let key = doc! {"key": ARN, "provider": "aws", "region": "us-east-1"};
        assert!(is_under(&key, &target));
    }

    #[test]
    fn a_different_key_region_endpoint_or_provider_is_not() {
        let target = doc! {"provider": "aws", "region": "us-east-1", "key": ARN};
        assert!(!is_under(
            &doc! {"provider": "aws", "region": "us-east-2", "key": ARN},
            &target
        ));
        assert!(!is_under(
            &doc! {"provider": "aws", "region": "us-east-1", "key": "other"},
            &target
        ));
        assert!(!is_under(
            &doc! {"provider": "aws", "region": "us-east-1", "key": ARN, "endpoint": "x:1"},
            &target
        ));
        assert!(!is_under(
            &doc! {"provider": "aws:prod", "region": "us-east-1", "key": ARN},
            &target
        ));
        assert!(!is_under(
            &doc! {"provider": "local"},
            &doc! {"provider": "local:new"}
        ));
    }

    #[test]
    fn kmip_keys_may_carry_the_server_assigned_key_id() {
        let target = doc! {"provider": "kmip"};
        assert!(is_under(&doc! {"provider": "kmip", "keyId": "17"}, &target));
        assert!(!is_under(
            &doc! {"provider": "kmip", "keyId": "17", "delegated": true},
            &target
        ));
        let delegated = doc! {"provider": "kmip", "delegated": true};
        assert!(is_under(
            &doc! {"provider": "kmip", "keyId": "9", "delegated": true},
            &delegated
        ));
        assert!(!is_under(
            &doc! {"provider": "kmip", "keyId": "9"},
            &delegated
        ));
        // A named key id in the target must match.
        assert!(!is_under(
            &doc! {"provider": "kmip", "keyId": "9"},
            &doc! {"provider": "kmip", "keyId": "8"}
        ));
    }

    #[test]
    fn a_target_without_provider_matches_nothing() {
        assert!(!is_under(&doc! {"provider": "local"}, &doc! {}));
    }
}
