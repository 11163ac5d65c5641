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

/// The queries a rewrap sends (core's [`keyshift_core::select::selection`]): the keys
/// to read, and the keys already under the target, only counted. `user` is the
/// `rewrap.filter` (empty: every key).
pub fn selection(
    target: &Document,
    rewrap: &keyshift_core::config::Rewrap,
    user: &Document,
) -> Result<(Document, Document), String> {
    let serde_json::Value::Object(target) = Bson::Document(target.clone()).into_relaxed_extjson()
    else {
        return Err("the target master key is not a document".into());
    };
    let user = (!user.is_empty()).then(|| Bson::Document(user.clone()).into_canonical_extjson());
    let s = keyshift_core::select::selection(&target, rewrap.kmip_replace_key_ids.as_deref(), user);
    let document = |q| crate::settings::extjson_document(q, "the rewrap query");
    Ok((document(s.rewrap)?, document(s.already_under)?))
}

#[cfg(test)]
mod tests {
    use super::{is_under, selection};
    use bson::{DateTime, doc, oid::ObjectId};

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

    #[test]
    fn the_users_filter_reaches_the_server_query_losslessly() {
        let oid = ObjectId::parse_str("5f1d7f2e9d3b2a1c0b0a0908").unwrap();
        let when = DateTime::from_millis(1_700_000_000_000);
        let user = doc! {"_id": {"$in": [oid]}, "creationDate": {"$lt": when}, "n": 7_i64};
        let target = doc! {"provider": "aws", "region": "us-east-1", "key": "k"};
        let (read, counted) =
            selection(&target, &keyshift_core::config::Rewrap::default(), &user).unwrap();
        let parts = read.get_array("$and").unwrap();
        assert_eq!(parts[0].as_document().unwrap(), &user);
        assert_eq!(
            counted.get_array("$and").unwrap()[0].as_document().unwrap(),
            &user
        );
        let (all, _) = selection(&target, &Default::default(), &doc! {}).unwrap();
        assert!(all.contains_key("$or"), "{all}");
    }
}
