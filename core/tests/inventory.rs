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
