//! "Under the target" for BSON key documents: the decision is core's
//! ([`keyshift_core::inventory::master_key_matches`], tested there); this only converts.

use bson::{Bson, Document};

/// As [`is_under`], minus keys under a KMIP object `[rewrap] kmipReplaceKeyIds` lists
/// (they move although they are on the target's server).
pub fn is_under_for(
    master_key: &Document,
    target: &Document,
    rewrap: &keyshift_core::config::Rewrap,
) -> bool {
    is_under(master_key, target)
        && !rewrap.replaces(&Bson::Document(master_key.clone()).into_relaxed_extjson())
}

/// Whether a key with `master_key` needs no rewrap to reach `target` (a masterKey
/// document with `provider`).
pub fn is_under(master_key: &Document, target: &Document) -> bool {
    let key = Bson::Document(master_key.clone()).into_relaxed_extjson();
    match Bson::Document(target.clone()).into_relaxed_extjson() {
        serde_json::Value::Object(target) => {
            keyshift_core::inventory::master_key_matches(&key, &target)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_under;
    use bson::doc;

    #[test]
    fn bson_documents_reach_cores_rule() {
        let target = doc! {"provider": "aws", "region": "us-east-1", "key": "k"};
        assert!(is_under(
            &doc! {"key": "k", "provider": "aws", "region": "us-east-1"},
            &target
        ));
        assert!(!is_under(&doc! {"provider": "local"}, &target));
        assert!(is_under(
            &doc! {"provider": "kmip", "keyId": "3"},
            &doc! {"provider": "kmip"}
        ));
    }
}
