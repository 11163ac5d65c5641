//! Fuzzing by proptest (cargo-fuzz needs a nightly toolchain, which the build machines
//! do not have): the three places hostile input enters keyshift-core, each run for a
//! fixed case budget, every case checked for "no panic" plus invariants.
//!
//! - config parsing: valid keyshift.toml texts mutated byte by byte (flips, inserts,
//!   deletes, duplicated ranges, splices of TOML tokens and huge numbers), then
//!   `check_toml`; also `check_json` on the same bytes;
//! - filter parsing: `rewrap_filter` over arbitrary JSON values and arbitrary text;
//! - key-document analysis: `analyze` over arrays of key-document-like JSON (right and
//!   wrong types in every field, extended JSON binaries of every size and subtype).
//!
//! Budget: `KS_FUZZ_CASES` cases per target (default 4,000). Each target prints the
//! cases it ran: `cargo test -p keyshift-core --test fuzz_inputs -- --nocapture`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // tests read fixtures (core/clippy.toml)

use keyshift_core::config::{Config, Rewrap};
use keyshift_core::inventory::analyze;
use keyshift_core::select::rewrap_filter;
use keyshift_core::validate::{check_json, check_toml, validate};
use std::cell::Cell;

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use serde_json::{Value, json};

fn budget() -> u32 {
    std::env::var("KS_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000)
}

fn runner() -> TestRunner {
    TestRunner::new(PtConfig {
        cases: budget(),
        failure_persistence: None,
        ..PtConfig::default()
    })
}

const SEEDS: &[&str] = &[
    r#"[keyVault]
uri = "env:MONGODB_URI"
namespace = "encryption.__keyVault"

[kmsProviders.local]
key = "file:master-key.txt"

[kmsProviders.aws]
accessKeyId = "env:AWS_ACCESS_KEY_ID"
secretAccessKey = "env:AWS_SECRET_ACCESS_KEY"

[tlsOptions.aws]
tlsCAFile = "ca.pem"

[target]
provider = "aws"
masterKey = { region = "us-east-1", key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab" }

[rewrap]
filter = '{"masterKey.provider": "local"}'
batchSize = 256
concurrency = 16
backupDir = "keyshift-backups"
"#,
    r#"[keyVault]
uri = "file:uri.txt"

[kmsProviders.local]
key = "env:LOCAL_KEY"

[kmsProviders."azure:prod"]
tenantId = "0751baed-3559-4a8d-9fa1-7c48415c9e3a"
clientId = "1a606f91-1288-499b-a3f0-2e9f8037a77e"
clientSecret = "env:AZURE_CLIENT_SECRET"

[target]
provider = "azure:prod"
masterKey = { keyVaultEndpoint = "vault.azure.net", keyName = "k", keyVersion = "7e7c0ea7baa24544b26abef905c777d0" }
"#,
    r#"[keyVault]
uri = "env:MONGODB_URI"
[kmsProviders.local]
key = "file:k"
[kmsProviders.gcp]
email = "a@b.iam.gserviceaccount.com"
privateKey = "file:gcp.pem"
[kmsProviders.kmip]
endpoint = "kmip.example.com:5696"
[tlsOptions.kmip]
tlsCAFile = "ca.pem"
tlsCertificateKeyFile = "client.pem"
[target]
provider = "kmip"
masterKey = { keyId = "3", delegated = true }
"#,
];

const TOKENS: &[&str] = &[
    "=",
    "[",
    "]",
    "[[",
    "{",
    "}",
    "\"",
    "'''",
    "\"\"\"",
    "\n",
    "#",
    ",",
    ".",
    "\\u0000",
    "\\uD800",
    "env:",
    "file:",
    "file:/dev/zero",
    "99999999999999999999999",
    "-9223372036854775808",
    "1e999",
    "nan",
    "inf",
    "true",
    "1979-05-27T07:32:00Z",
    "[kmsProviders.local]\nkey = \"x\"\n",
    "[target]\n",
    "batchSize = -1\n",
    "concurrency = 1.5\n",
    "masterKey = \"s\"\n",
    "provider = 3\n",
    "é",
    "\u{202e}",
    "\u{feff}",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Token(usize, usize),
    Nest(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
        (any::<usize>(), 1usize..40).prop_map(|(p, n)| Mutation::Delete(p, n)),
        (any::<usize>(), 1usize..80).prop_map(|(p, n)| Mutation::Duplicate(p, n)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(p, t)| Mutation::Token(p, t)),
        (any::<usize>(), 1usize..200).prop_map(|(p, d)| Mutation::Nest(p, d)),
    ]
}

fn apply(mut b: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let at = |p: usize, len: usize| if len == 0 { 0 } else { p % (len + 1) };
    match m {
        Mutation::Flip(p, x) if !b.is_empty() => {
            let i = p % b.len();
            b[i] ^= x | 1;
        }
        Mutation::Flip(..) => {}
        Mutation::Insert(p, bytes) => {
            let i = at(*p, b.len());
            b.splice(i..i, bytes.iter().copied());
        }
        Mutation::Delete(p, n) => {
            let i = at(*p, b.len());
            let j = (i + n).min(b.len());
            b.drain(i..j);
        }
        Mutation::Duplicate(p, n) => {
            let i = at(*p, b.len());
            let j = (i + n).min(b.len());
            let copy = b[i..j].to_vec();
            b.splice(j..j, copy);
        }
        Mutation::Token(p, t) => {
            let i = at(*p, b.len());
            b.splice(i..i, TOKENS[*t].bytes());
        }
        Mutation::Nest(p, d) => {
            let i = at(*p, b.len());
            let nested = format!("x = {}1{}\n", "[".repeat(*d), "]".repeat(*d));
            b.splice(i..i, nested.bytes());
        }
    }
    b
}

#[test]
fn fuzz_config_parsing() {
    let strategy = (0..SEEDS.len(), proptest::collection::vec(mutation(), 1..6));
    let (cases, valid) = (Cell::new(0u64), Cell::new(0u64));
    runner()
        .run(&strategy, |(seed, muts)| {
            cases.set(cases.get() + 1);
            let bytes = muts.iter().fold(SEEDS[seed].as_bytes().to_vec(), apply);
            // keyshift reads the file as bytes; non-UTF-8 is reported, never parsed.
            let text = String::from_utf8_lossy(&bytes);
            let parsed = check_toml(&text);
            for d in &parsed.diagnostics {
                prop_assert!(!d.code.is_empty() && !d.message.is_empty(), "{d:?}");
                prop_assert!(d.path.is_empty() || d.path.starts_with('/'), "{d:?}");
            }
            if !parsed.diagnostics.iter().any(|d| d.is_error()) {
                valid.set(valid.get() + 1);
                // What validates also serializes and reads back to the same model.
                let again = check_toml(&parsed.config.to_toml().unwrap());
                prop_assert_eq!(&again.config, &parsed.config);
            }
            let _ = check_json(&text);
            let _ = validate(&parsed.config);
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz_config_parsing: {} cases, {} still valid after mutation, 0 findings",
        cases.get(),
        valid.get()
    );
    assert!(cases.get() >= u64::from(budget()));
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("$oid"),
            Just("$numberLong"),
            Just("$binary"),
            Just("$where"),
            Just("$regex"),
            Just("$date"),
            Just("_id"),
            Just("masterKey.provider"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    "[a-z$._]{0,8}",
                    Just("$oid".to_string()),
                    Just("$numberLong".to_string()),
                    Just("$in".to_string()),
                    Just("$or".to_string()),
                    Just("masterKey.provider".to_string()),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn config_with_filter(filter: String) -> Config {
    let mut c = check_toml(SEEDS[0]).config;
    c.rewrap = Some(Rewrap {
        filter: Some(filter),
        ..c.rewrap.unwrap_or_default()
    });
    c
}

#[test]
fn fuzz_filter_parsing() {
    let strategy = prop_oneof![
        json_value().prop_map(|v| v.to_string()),
        "\\PC{0,80}",
        json_value().prop_map(|v| format!("{{\"$and\": [{v}]}}")),
        (1usize..100_000).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d))),
    ];
    let (cases, accepted) = (Cell::new(0u64), Cell::new(0u64));
    runner()
        .run(&strategy, |filter| {
            cases.set(cases.get() + 1);
            let config = config_with_filter(filter.clone());
            match rewrap_filter(&config) {
                Ok(q) if filter.trim().is_empty() => {
                    // No filter: the default selection alone.
                    prop_assert!(q.get("$or").is_some());
                }
                Ok(q) if q.get("$or").is_some() => {
                    // An empty query document (`{}`) is no narrowing: the default alone.
                    let user: serde_json::Value = serde_json::from_str(&filter).unwrap();
                    prop_assert_eq!(user, serde_json::json!({}));
                }
                Ok(q) => {
                    accepted.set(accepted.get() + 1);
                    // Whatever the user wrote, keys already under the target stay out.
                    let and = q["$and"].as_array().expect("an $and");
                    prop_assert_eq!(and.len(), 2);
                    prop_assert!(and[0].is_object());
                    prop_assert!(and[1].get("$or").is_some());
                }
                Err(d) => {
                    prop_assert_eq!(d.path.as_str(), "/rewrap/filter");
                    prop_assert!(d.is_error());
                }
            }
            // Validation agrees and never panics on it either.
            let _ = validate(&config);
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz_filter_parsing: {} cases, {} accepted as queries, 0 findings",
        cases.get(),
        accepted.get()
    );
    assert!(cases.get() >= u64::from(budget()));
}

fn binary() -> impl Strategy<Value = Value> {
    use base64::Engine as _;
    (
        proptest::collection::vec(any::<u8>(), 0..400),
        prop_oneof![
            Just("00".to_string()),
            Just("04".to_string()),
            "[0-9a-fA-Fz]{0,3}"
        ],
        any::<bool>(),
    )
        .prop_map(|(b, sub, legacy)| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(b);
            if legacy {
                json!({"$binary": b64, "$type": sub})
            } else {
                json!({"$binary": {"base64": b64, "subType": sub}})
            }
        })
}

fn master_key() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"provider": "local"})),
        Just(
            json!({"provider": "aws", "region": "us-east-1", "key": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"})
        ),
        Just(json!({"provider": "kmip", "delegated": true})),
        Just(json!({"provider": "azure:prod", "keyVaultEndpoint": "v", "keyName": "k"})),
        Just(json!({"provider": 3})),
        Just(json!({})),
        "\\PC{0,10}".prop_map(|p| json!({"provider": p})),
        json_value(),
    ]
}

fn key_doc() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(prop_oneof![binary(), json_value()]),
        proptest::option::of(prop_oneof![binary(), json_value()]),
        proptest::option::of(master_key()),
        proptest::option::of(prop_oneof![
            proptest::collection::vec(
                prop_oneof!["[a-c]{0,2}".prop_map(Value::String), json_value()],
                0..4
            )
            .prop_map(Value::Array),
            json_value(),
        ]),
        proptest::option::of(json_value()),
    )
        .prop_map(|(id, km, mk, alt, status)| {
            let mut m = serde_json::Map::new();
            for (k, v) in [
                ("_id", id),
                ("keyMaterial", km),
                ("masterKey", mk),
                ("keyAltNames", alt),
                ("status", status),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            Value::Object(m)
        })
}

#[test]
fn fuzz_key_document_analysis() {
    let config = check_toml(SEEDS[0]).config;
    let strategy = (
        proptest::collection::vec(prop_oneof![4 => key_doc(), 1 => json_value()], 0..16),
        any::<bool>(),
    );
    let (cases, docs_seen, anomalies) = (Cell::new(0u64), Cell::new(0u64), Cell::new(0u64));
    runner()
        .run(&strategy, |(docs, with_config)| {
            cases.set(cases.get() + 1);
            docs_seen.set(docs_seen.get() + docs.len() as u64);
            let inv = analyze(&docs, with_config.then_some(&config));
            anomalies.set(anomalies.get() + inv.anomalies.len() as u64);
            prop_assert_eq!(inv.total, docs.len());
            prop_assert!(inv.by_provider.values().sum::<usize>() <= inv.total);
            prop_assert!(inv.by_master_key.iter().map(|m| m.count).sum::<usize>() <= inv.total);
            prop_assert!(inv.with_alt_names <= inv.total && inv.disabled <= inv.total);
            if let Some(u) = inv.under_target {
                prop_assert!(u <= inv.total);
            }
            for a in &inv.anomalies {
                prop_assert!(!a.key_id.is_empty() && !a.message.is_empty());
            }
            // The report serializes for `inspect --json` whatever went in.
            prop_assert!(serde_json::to_string(&inv).is_ok());
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz_key_document_analysis: {} cases, {} documents, {} anomalies reported, 0 findings",
        cases.get(),
        docs_seen.get(),
        anomalies.get()
    );
    assert!(cases.get() >= u64::from(budget()));
}
