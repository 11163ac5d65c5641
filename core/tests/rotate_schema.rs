//! `$jsonSchema` key id rewriting on the validators the test world seeds
//! (tests/services/seed.py: `schema` / `enc`), as canonical extended JSON the way the
//! bson crate writes it, plus a fuzz test over arbitrary JSON.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // tests read fixtures (core/clippy.toml)

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyshift_core::rotate::ids::{is_replacement, replacement_id};
use keyshift_core::rotate::schema::{key_ids_in, rewrite_key_ids, uuid_of, uuid_value};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use serde_json::{Value, json};

const DET: &str = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic";
const RND: &str = "AEAD_AES_256_CBC_HMAC_SHA_512-Random";

fn kid(n: u8) -> [u8; 16] {
    let mut id = [n; 16];
    id[6] = 0x40 | (n & 0x0f);
    id[8] = 0x80 | (n & 0x3f);
    id
}

/// seed.py's `enc`: a keyId list of one UUID, or a JSON pointer string.
fn enc(key: Result<[u8; 16], &str>, bson_type: &str, alg: &str) -> Value {
    let key_id = match key {
        Ok(id) => json!([{"$binary": {"base64": STANDARD.encode(id), "subType": "04"}}]),
        Err(pointer) => json!(pointer),
    };
    json!({"encrypt": {"keyId": key_id, "bsonType": bson_type, "algorithm": alg}})
}

/// seed.py's `schema`: the whole validator.
fn schema(props: Value) -> Value {
    json!({"$jsonSchema": {"bsonType": "object", "properties": props}})
}

#[test]
fn seeded_validators() {
    let customers = schema(json!({
        "ssn": enc(Ok(kid(0)), "string", DET),
        "email": enc(Ok(kid(1)), "string", DET),
        "medical": enc(Err("/tenant"), "object", RND),
    }));
    let orders = schema(json!({"card": enc(Ok(kid(2)), "string", DET)}));
    let old = |id: &[u8; 16]| [kid(0), kid(1), kid(2)].contains(id);

    // The $jsonSchema value, as the contract passes it.
    let r = rewrite_key_ids(&customers["$jsonSchema"], old);
    let mut replaced = r.replaced.clone();
    replaced.sort();
    assert_eq!(
        replaced,
        vec![
            (kid(0), replacement_id(&kid(0))),
            (kid(1), replacement_id(&kid(1)))
        ]
    );
    assert_eq!(r.pointers, vec!["/tenant"]);
    let props = &r.schema["properties"];
    assert_eq!(
        props["ssn"]["encrypt"]["keyId"],
        json!([uuid_value(&replacement_id(&kid(0)))])
    );
    assert_eq!(props["ssn"]["encrypt"]["algorithm"], DET);
    assert_eq!(
        props["medical"],
        customers["$jsonSchema"]["properties"]["medical"]
    );
    assert!(key_ids_in(&r.schema).iter().all(is_replacement));

    // The whole validator works too.
    let r = rewrite_key_ids(&orders, old);
    assert_eq!(r.replaced, vec![(kid(2), replacement_id(&kid(2)))]);
    assert_eq!(
        uuid_of(&r.schema["$jsonSchema"]["properties"]["card"]["encrypt"]["keyId"][0]),
        Some(replacement_id(&kid(2)))
    );
    assert_eq!(key_ids_in(&orders), vec![kid(2)]);

    // Only the keys in scope move.
    let r = rewrite_key_ids(&customers, |id| *id == kid(1));
    assert_eq!(r.replaced.len(), 1);
    let mut ids = key_ids_in(&r.schema);
    ids.sort();
    let mut want = vec![kid(0), replacement_id(&kid(1))];
    want.sort();
    assert_eq!(ids, want);
}

fn arb_json() -> impl Strategy<Value = Value> {
    let names = prop_oneof![
        Just("properties".to_string()),
        Just("patternProperties".to_string()),
        Just("additionalProperties".to_string()),
        Just("items".to_string()),
        Just("encrypt".to_string()),
        Just("encryptMetadata".to_string()),
        Just("keyId".to_string()),
        Just("$binary".to_string()),
        Just("base64".to_string()),
        Just("subType".to_string()),
        Just("$uuid".to_string()),
        "[a-z]{1,4}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        Just(json!("04")),
        Just(json!(STANDARD.encode(kid(7)))),
        Just(uuid_value(&kid(7))),
        Just(uuid_value(&kid(8))),
        "[ -~]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(names.clone(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn fuzz_arbitrary_json() {
    let cases = std::env::var("KS_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    let mut runner = TestRunner::new(PtConfig {
        cases,
        failure_persistence: None,
        ..PtConfig::default()
    });
    runner
        .run(&arb_json(), |v| {
            let before = key_ids_in(&v);
            let r = rewrite_key_ids(&v, |id| *id == kid(7));
            let after = key_ids_in(&r.schema);
            prop_assert!(!after.contains(&kid(7)));
            prop_assert_eq!(before.contains(&kid(7)), r.changed());
            prop_assert_eq!(before.len(), after.len());
            // Idempotent, and nothing moves when nothing is old.
            let again = rewrite_key_ids(&r.schema, |id| *id == kid(7));
            prop_assert!(!again.changed());
            prop_assert_eq!(&again.schema, &r.schema);
            prop_assert_eq!(rewrite_key_ids(&v, |_| false).schema, v);
            Ok(())
        })
        .unwrap();
    println!("fuzz_arbitrary_json: {cases} cases");
}
