//! Which keys `keyshift rewrap` selects, as a MongoDB query the native shell sends.
//!
//! The default is "every key not under the target" (DESIGN.md): a key is under the
//! target when its masterKey has the target's provider and exactly the target's fields.
//! The query compares field by field (`masterKey.region`, `masterKey.key`, ...) rather
//! than the embedded document as a whole, because MongoDB's embedded-document equality
//! depends on field order, which libmongocrypt, not the user, decides. A field the
//! target leaves out must be absent from the key too, except a KMIP `keyId`, which the
//! KMIP server assigns when the target names none. Fields no provider defines are not
//! looked at by the query; [`crate::inventory::is_under_target`] is the exact check the
//! native shell applies to each document it reads.
//!
//! A user's `rewrap.filter` narrows the default, never widens it: keys already under
//! the target are skipped, which is what makes a rerun after an interruption converge.

use serde_json::{Map, Value, json};

use crate::config::{Config, ProviderKind, Target};
use crate::diagnostic::{Diagnostic, codes};

/// Every masterKey field each provider type defines (libmongocrypt's key documents).
pub fn master_key_fields(kind: ProviderKind) -> &'static [&'static str] {
    match kind {
        ProviderKind::Aws => &["region", "key", "endpoint"],
        ProviderKind::Azure => &["keyVaultEndpoint", "keyName", "keyVersion"],
        ProviderKind::Gcp => &[
            "projectId",
            "location",
            "keyRing",
            "keyName",
            "keyVersion",
            "endpoint",
        ],
        ProviderKind::Kmip => &["keyId", "delegated", "endpoint"],
        ProviderKind::Local => &[],
    }
}

/// The query matching keys whose masterKey is NOT the target's.
pub fn not_under_target(target: &Target) -> Value {
    not_under_master_key(&target.master_key.to_document(&target.provider))
}

/// The query matching keys whose masterKey is NOT `target` (a masterKey document with
/// `provider`, as key documents hold it).
pub fn not_under_master_key(target: &Map<String, Value>) -> Value {
    let provider = target.get("provider").and_then(Value::as_str).unwrap_or("");
    let kind = ProviderKind::of_name(provider);
    let fields: Vec<&str> = kind
        .map(master_key_fields)
        .unwrap_or(&[])
        .iter()
        .copied()
        .chain(
            target
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "provider"),
        )
        .collect();
    let mut or = vec![json!({"masterKey.provider": {"$ne": provider}})];
    let mut seen = std::collections::BTreeSet::new();
    let kmip = kind == Some(ProviderKind::Kmip);
    for field in fields {
        if !seen.insert(field) {
            continue;
        }
        let path = format!("masterKey.{field}");
        let mut cond = Map::new();
        match (target.get(field), field) {
            // A KMIP server assigns keyId when the target names none (is_under_target).
            (None, "keyId") if kmip => continue,
            // delegated: absent means false.
            (Some(Value::Bool(true)), "delegated") if kmip => {
                cond.insert(path, json!({"$ne": true}))
            }
            (_, "delegated") if kmip => cond.insert(path, json!(true)),
            (Some(v), _) => cond.insert(path, json!({"$ne": v})),
            (None, _) => cond.insert(path, json!({"$exists": true})),
        };
        or.push(Value::Object(cond));
    }
    json!({"$or": or})
}

/// The two queries a rewrap sends: the keys it reads (`rewrap`), and the keys it only
/// counts because they are already under the target (`already_under`). Within the
/// user's filter every key matches exactly one of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Keys not under the target, or under a KMIP object listed for replacement.
    pub rewrap: Value,
    /// The rest of the user's filter.
    pub already_under: Value,
}

/// The [`Selection`] for `target` (a masterKey document with `provider`), the KMIP
/// objects `[rewrap] kmipReplaceKeyIds` lists (they move although they are on the
/// target's server, [`crate::config::Rewrap::replaces`]) and the user's filter (a query
/// document, or none).
pub fn selection(
    target: &Map<String, Value>,
    kmip_replace_key_ids: Option<&[String]>,
    user: Option<Value>,
) -> Selection {
    let mut base = not_under_master_key(target);
    let provider = target.get("provider").and_then(Value::as_str).unwrap_or("");
    let replaced = kmip_replace_key_ids.filter(|ids| !ids.is_empty());
    let kmip = ProviderKind::of_name(provider) == Some(ProviderKind::Kmip);
    if let (Some(ids), Some(or), true) = (replaced, base["$or"].as_array_mut(), kmip) {
        or.push(json!({"masterKey.provider": provider, "masterKey.keyId": {"$in": ids}}));
    }
    let rest = json!({"$nor": [base.clone()]});
    match user.filter(|u| u.as_object().is_some_and(|o| !o.is_empty())) {
        Some(user) => Selection {
            rewrap: json!({"$and": [user.clone(), base]}),
            already_under: json!({"$and": [user, rest]}),
        },
        None => Selection {
            rewrap: base,
            already_under: rest,
        },
    }
}

/// A `rewrap.filter` that leaves out every key under one of `master_keys` (masterKey
/// documents, `provider` included), keeping the user's own filter when there is one:
/// what to run to move the rest when some master keys cannot unwrap. Each master key is
/// matched field by field (`masterKey.key`, ...), never as an embedded document, whose
/// equality would depend on field order.
pub fn excluding_master_keys(master_keys: &[Value], user_filter: Option<&str>) -> Value {
    let nor: Vec<Value> = master_keys
        .iter()
        .filter_map(Value::as_object)
        .map(|mk| {
            Value::Object(
                mk.iter()
                    .map(|(k, v)| (format!("masterKey.{k}"), v.clone()))
                    .collect(),
            )
        })
        .collect();
    let exclude = json!({"$nor": nor});
    match user_filter
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .and_then(|f| serde_json::from_str::<Value>(f).ok())
        .filter(Value::is_object)
    {
        Some(user) => json!({"$and": [user, exclude]}),
        None => exclude,
    }
}

/// The query `keyshift rewrap` runs: keys not under the target (or under a KMIP object
/// `kmipReplaceKeyIds` lists), narrowed by `rewrap.filter` when there is one. Keys
/// already under the target are never read whole (only their ids and master keys, for
/// the audit trail), so a rerun after a finished move reads no key material. Errors
/// are the same diagnostics validation gives.
pub fn rewrap_filter(config: &Config) -> Result<Value, Diagnostic> {
    config_selection(config).map(|s| s.rewrap)
}

/// The keys a rewrap leaves alone because they are already under the target (counted,
/// or read as ids and master keys for the audit trail; never whole): the complement of [`rewrap_filter`] within the user's filter.
pub fn already_under_target(config: &Config) -> Result<Value, Diagnostic> {
    config_selection(config).map(|s| s.already_under)
}

fn config_selection(config: &Config) -> Result<Selection, Diagnostic> {
    let target = config.target.as_ref().ok_or_else(|| {
        Diagnostic::error(
            codes::MISSING_FIELD,
            "/target",
            "`/target` is required but missing",
            "Add a [target] section.",
        )
    })?;
    let rewrap = config.rewrap.as_ref();
    let user = match rewrap
        .and_then(|r| r.filter.as_deref())
        .filter(|f| !f.trim().is_empty())
    {
        None => None,
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(user) if user.is_object() => Some(user),
            Ok(_) => {
                return Err(Diagnostic::error(
                    codes::RW_FILTER_OBJECT,
                    "/rewrap/filter",
                    "rewrap.filter must be a query document (a JSON object)",
                    "Wrap the condition in braces.",
                ));
            }
            Err(e) => {
                return Err(Diagnostic::error(
                    codes::RW_FILTER_JSON,
                    "/rewrap/filter",
                    format!("rewrap.filter is not valid extended JSON: {e}"),
                    "Write a MongoDB query in extended JSON with double-quoted keys.",
                ));
            }
        },
    };
    Ok(selection(
        &target.master_key.to_document(&target.provider),
        rewrap.and_then(|r| r.kmip_replace_key_ids.as_deref()),
        user,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excluding_master_keys_matches_field_by_field_and_keeps_the_users_filter() {
        let bad = json!({"provider": "aws", "region": "eu-west-1", "key": "arn:aws:kms:eu-west-1:1:key/x"});
        assert_eq!(
            excluding_master_keys(std::slice::from_ref(&bad), None),
            json!({"$nor": [{"masterKey.provider": "aws", "masterKey.region": "eu-west-1", "masterKey.key": "arn:aws:kms:eu-west-1:1:key/x"}]})
        );
        let with_user = excluding_master_keys(&[bad], Some(r#"{"status": 0}"#));
        assert_eq!(with_user["$and"][0], json!({"status": 0}));
        assert_eq!(
            with_user["$and"][1]["$nor"][0]["masterKey.region"],
            "eu-west-1"
        );
        // The suggestion is itself a valid rewrap.filter.
        assert!(crate::validate::filter::unknown_operators(&with_user).is_empty());
    }
}
