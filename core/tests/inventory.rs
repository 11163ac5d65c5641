//! Inventory analysis over a small key vault in extended JSON.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyshift_core::config::parse_toml;
use keyshift_core::inventory::{AnomalyKind, analyze};
use serde_json::{Value, json};

const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn bin(len: usize) -> Value {
    json!({"$binary": {"base64": STANDARD.encode(vec![9u8; len]), "subType": "00"}})
}

fn id(n: u8) -> Value {
    json!({"$binary": {"base64": STANDARD.encode([n; 16]), "subType": "04"}})
}

fn config() -> keyshift_core::config::Config {
    parse_toml(&format!(
        r#"
[keyVault]
uri = "env:MONGODB_URI"
[kmsProviders.local]
key = "file:k"
[kmsProviders.aws]
[target]
provider = "aws"
masterKey = {{ region = "us-east-1", key = "{ARN}" }}
"#
    ))
    .config
}

fn vault() -> Vec<Value> {
    vec![
        json!({"_id": id(1), "keyMaterial": bin(160), "masterKey": {"provider": "local"}, "keyAltNames": ["ssn"]}),
        json!({"_id": id(2), "keyMaterial": bin(160), "masterKey": {"provider": "local"}, "keyAltNames": ["ssn", "dob"]}),
        json!({"_id": id(3), "keyMaterial": bin(184), "masterKey": {"provider": "aws", "region": "us-east-1", "key": ARN}}),
        // Same key plus an endpoint: not "under the target" (every field must match).
        json!({"_id": id(4), "keyMaterial": bin(184), "masterKey": {"provider": "aws", "region": "us-east-1", "key": ARN, "endpoint": "kms.us-east-1.amazonaws.com"}}),
        json!({"_id": id(5), "keyMaterial": bin(96), "masterKey": {"provider": "local"}}),
        json!({"_id": id(6), "keyMaterial": bin(160)}),
        json!({"_id": id(7), "keyMaterial": bin(160), "masterKey": {"provider": "vault"}}),
        json!({"_id": id(8), "keyMaterial": bin(256), "masterKey": {"provider": "azure", "keyVaultEndpoint": "v.vault.azure.net", "keyName": "k"}}),
        json!({"_id": id(9), "masterKey": {"provider": "local"}}),
        json!(42),
    ]
}

#[test]
fn counts_and_anomalies() {
    let cfg = config();
    let inv = analyze(&vault(), Some(&cfg));
    assert_eq!(inv.total, 10);
    assert_eq!(inv.by_provider.get("local"), Some(&4));
    assert_eq!(inv.by_provider.get("aws"), Some(&2));
    assert_eq!(inv.by_provider.get("azure"), Some(&1));
    assert_eq!(inv.by_master_key[0].count, 4);
    assert_eq!(
        inv.by_master_key[0].master_key,
        json!({"provider": "local"})
    );
    assert_eq!(inv.with_alt_names, 2);
    assert_eq!(inv.under_target, Some(1));
    assert_eq!(inv.not_under_target(), 9);

    let kinds = |k: AnomalyKind| -> Vec<&str> {
        inv.anomalies
            .iter()
            .filter(|a| a.kind == k)
            .map(|a| a.key_id.as_str())
            .collect()
    };
    let uuid = |n: u8| {
        format!(
            "{0}{0}{0}{0}-{0}{0}-{0}{0}-{0}{0}-{0}{0}{0}{0}{0}{0}",
            format!("{n:02x}")
        )
    };
    assert_eq!(kinds(AnomalyKind::KeyMaterialSize), vec![uuid(5)]);
    assert_eq!(kinds(AnomalyKind::NoMasterKey), vec![uuid(6)]);
    assert_eq!(kinds(AnomalyKind::UnknownProvider), vec![uuid(7)]);
    assert_eq!(kinds(AnomalyKind::UnconfiguredProvider), vec![uuid(8)]);
    assert_eq!(kinds(AnomalyKind::NoKeyMaterial), vec![uuid(9)]);
    assert_eq!(kinds(AnomalyKind::NotADocument), vec!["#9".to_string()]);
    assert_eq!(kinds(AnomalyKind::DuplicateAltName), vec![uuid(1), uuid(2)]);
}

#[test]
fn without_config_there_is_no_target_count() {
    let inv = analyze(&vault(), None);
    assert_eq!(inv.under_target, None);
    assert!(!inv.has(AnomalyKind::UnconfiguredProvider));
    let v = serde_json::to_value(&inv).unwrap();
    assert!(v.get("underTarget").is_none());
    assert!(v["anomalies"][0]["kind"].is_string());
}

#[test]
fn empty_vault() {
    let inv = analyze(&[], Some(&config()));
    assert_eq!(inv.total, 0);
    assert_eq!(inv.under_target, Some(0));
    assert!(inv.anomalies.is_empty());
}

/// A key document as libmongocrypt writes it (every field it requires, nothing else).
fn sound(n: u8) -> Value {
    json!({
        "_id": id(n),
        "keyMaterial": bin(160),
        "creationDate": {"$date": "2026-11-30T06:00:00Z"},
        "updateDate": {"$date": {"$numberLong": "1795000000000"}},
        "status": 0,
        "masterKey": {"provider": "local"},
        "keyAltNames": ["a", "b"],
        "version": {"$numberInt": "0"},
    })
}

fn refusals(doc: Value) -> Vec<(AnomalyKind, String)> {
    analyze(&[doc], None)
        .anomalies
        .into_iter()
        .map(|a| (a.kind, a.message))
        .collect()
}

#[test]
fn documents_libmongocrypt_writes_are_not_flagged() {
    assert_eq!(refusals(sound(1)), vec![]);
    let mut aws = sound(2);
    aws["keyMaterial"] = bin(184);
    aws["masterKey"] =
        json!({"provider": "aws", "region": "us-east-1", "key": ARN, "endpoint": "kms.example"});
    assert_eq!(refusals(aws), vec![]);
    let mut kmip = sound(3);
    kmip["masterKey"] = json!({"provider": "kmip:hsm", "keyId": "7", "delegated": false});
    assert_eq!(refusals(kmip), vec![]);
    let mut uuid_form = sound(4);
    uuid_form["_id"] = json!({"$uuid": "12345678-9012-3456-7890-123456789012"});
    assert_eq!(refusals(uuid_form), vec![]);
}

#[test]
fn unknown_top_level_fields_are_flagged_by_name() {
    let mut doc = sound(1);
    doc["comment"] = json!("added by hand");
    let found = refusals(doc);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, AnomalyKind::UnknownField);
    assert!(found[0].1.contains("`comment`"), "{}", found[0].1);
}

#[test]
fn fields_libmongocrypt_refuses_are_malformed() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("_id", json!("not-a-uuid"), "`_id` is not a UUID"),
        (
            "creationDate",
            json!("yesterday"),
            "`creationDate` is not a date",
        ),
        ("updateDate", json!(5), "`updateDate` is not a date"),
        ("version", json!(1), "`version` is not the integer 0"),
        (
            "version",
            json!({"$numberDouble": "0.0"}),
            "`version` is not the integer 0",
        ),
        ("keyAltNames", json!("ssn"), "`keyAltNames` is not an array"),
        ("keyAltNames", json!(["a", 1]), "not a string"),
        ("keyAltNames", json!(["a", "a"]), "repeats a name"),
        (
            "keyMaterial",
            json!({"$binary": {"base64": STANDARD.encode([1u8; 160]), "subType": "04"}}),
            "not binary subtype 0",
        ),
        (
            "masterKey",
            json!({"provider": "local", "key": "x"}),
            "`masterKey.key` is not a local",
        ),
        (
            "masterKey",
            json!({"provider": "aws", "region": "us-east-1"}),
            "`masterKey.key` is missing",
        ),
        (
            "masterKey",
            json!({"provider": "gcp", "projectId": "p", "location": "l", "keyRing": "r", "keyName": 3}),
            "`masterKey.keyName` is missing or not a string",
        ),
    ];
    for (field, value, expect) in cases {
        let mut doc = sound(1);
        doc[field] = value.clone();
        let found = refusals(doc);
        assert!(
            found
                .iter()
                .any(|(k, m)| *k == AnomalyKind::MalformedField && m.contains(expect)),
            "{field} = {value}: {found:?}"
        );
    }
    for missing in ["_id", "status", "creationDate", "updateDate"] {
        let mut doc = sound(1);
        doc.as_object_mut().unwrap().remove(missing);
        let found = refusals(doc);
        assert!(
            found.iter().any(|(k, m)| *k == AnomalyKind::MalformedField
                && m.contains(&format!("no `{missing}`"))),
            "{missing}: {found:?}"
        );
    }
    // A wrong-type keyMaterial is the existing anomaly, not a second one.
    let mut doc = sound(1);
    doc["keyMaterial"] = json!("truncated");
    assert_eq!(
        refusals(doc).iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        vec![AnomalyKind::NoKeyMaterial]
    );
}

#[test]
fn new_kinds_serialize_in_camel_case() {
    let mut doc = sound(1);
    doc["comment"] = json!(1);
    doc["version"] = json!(2);
    let v = serde_json::to_value(analyze(&[doc], None)).unwrap();
    let kinds: Vec<&str> = v["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["unknownField", "malformedField"]);
}
