//! Ciphertext headers: known answers from real ciphertext, and a fuzz test.
//!
//! The known answers were produced once by the oracle (PyMongo's pymongocrypt, explicit
//! encryption under a local-provider DEK in memory, `tests/services/kms_oracle.py`'s
//! `MemVault`): FLE1 deterministic and random ciphertext of a string and an int32 under
//! DEK f9f2af8a-8385-4b47-95b4-1c9676c4f73b, and the start of two Queryable Encryption
//! blobs from the same DEK ("Unindexed" and "Indexed" explicit encryption). Each was
//! decrypted back by the oracle when captured.
//!
//! Fuzz budget: `KS_FUZZ_CASES` (default 4,000) cases of arbitrary bytes, plus every
//! byte string of a real ciphertext truncated at each length.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // tests read fixtures (core/clippy.toml)

use keyshift_core::rotate::ciphertext::{
    BlobKind, DETERMINISTIC, Header, HeaderError, RANDOM, parse_header,
};
use keyshift_core::rotate::decide::{Action, decide};
use keyshift_core::rotate::ids::{parse_uuid, replacement_id, uuid_string};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};

const DEK: &str = "f9f2af8a-8385-4b47-95b4-1c9676c4f73b";

/// (algorithm, plaintext, BSON type of the plaintext, ciphertext hex).
const FLE1: &[(&str, &str, u8, &str)] = &[
    (
        DETERMINISTIC,
        "457-55-5462",
        0x02,
        "01f9f2af8a83854b4795b41c9676c4f73b0237e3a25013764e805a426dcfbe80255a97153d7fd2997a6bad744c9cd7b61d171633d9cd8439d74add8eb85057a2de79a850e5873fc3e38775b8cf057d5087c0aaf9956916c7f81b434974ac4039b0e9",
    ),
    (
        DETERMINISTIC,
        "42 (int32)",
        0x10,
        "01f9f2af8a83854b4795b41c9676c4f73b107497eb0b0bb711539c7ca40ad5e698a344aaa2a1161911a19d31a16f702d02f2efed780967f0cb2483a28e4c99c7ea33dbf7a3aa0b16787ce3144b688a9e6aa1",
    ),
    (
        RANDOM,
        "457-55-5462",
        0x02,
        "02f9f2af8a83854b4795b41c9676c4f73b02aa65ae7ed4059104925f887b22612186ca7b67cc901df5b15c80cce0ecc083156293c108db1f180d42ee9596028fb5e3f01e36582d91ad7c85c7d7a02d4e14a68cd6595c94e77a540dedea06c06171de",
    ),
    (
        RANDOM,
        "42 (int32)",
        0x10,
        "02f9f2af8a83854b4795b41c9676c4f73b104f1a60b54de37c0b505cc62bf0ee4d2c52631de4bf46be46c4477be22796ed5fb8650669e023967fdeaa1e3893b5bc5ae5fa4e612de4ecbc99cbdb2ad0781518",
    ),
];

/// Queryable Encryption blobs (their first 40 bytes): (blob type, hex).
const QE: &[(u8, &str)] = &[
    // FLE2UnindexedEncryptedValueV2 ("Unindexed")
    (
        16,
        "10f9f2af8a83854b4795b41c9676c4f73b0277e1723772ac7bd691f971d4670b5da77e34a146efb4",
    ),
    // FLE2InsertUpdatePayloadV2 ("Indexed")
    (
        11,
        "0b5f01000005640020000000007c338921a5844ceb9f7a045ab7d5231b182ef6a9e5725e06306b1f",
    ),
];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn real_fle1_ciphertext() {
    let dek = parse_uuid(DEK).unwrap();
    for (alg, what, bson_type, hex) in FLE1 {
        let bytes = unhex(hex);
        let h = parse_header(&bytes).unwrap();
        assert_eq!(h.kind.algorithm(), Some(*alg), "{what}");
        assert_eq!(h.key_id, Some(dek), "{what}");
        assert_eq!(uuid_string(&h.key_id.unwrap()), DEK);
        assert_eq!(h.original_bson_type, Some(*bson_type), "{what}");
        assert_eq!(
            decide(&h, |id| *id == dek),
            Action::Reencrypt {
                old: dek,
                new: replacement_id(&dek),
                algorithm: alg
            }
        );
        assert_eq!(decide(&h, |_| false), Action::NotInScope);
    }
    assert_eq!(
        parse_header(&unhex(FLE1[0].3)).unwrap().kind,
        BlobKind::Deterministic
    );
    assert_eq!(
        parse_header(&unhex(FLE1[2].3)).unwrap().kind,
        BlobKind::Random
    );
}

#[test]
fn real_queryable_encryption_blobs() {
    for (t, hex) in QE {
        let h = parse_header(&unhex(hex)).unwrap();
        assert_eq!(
            h,
            Header {
                kind: BlobKind::QueryableEncryption(*t),
                key_id: None,
                original_bson_type: None
            }
        );
        assert_eq!(h.kind.algorithm(), None);
        assert_eq!(decide(&h, |_| true), Action::RefuseQueryable(*t));
    }
}

#[test]
fn a_replaced_value_is_skipped() {
    let dek = parse_uuid(DEK).unwrap();
    let mut bytes = unhex(FLE1[0].3);
    bytes[1..17].copy_from_slice(&replacement_id(&dek));
    let h = parse_header(&bytes).unwrap();
    assert_eq!(decide(&h, |_| true), Action::AlreadyReplaced);
}

#[test]
fn every_truncation_of_real_ciphertext() {
    for (_, _, _, hex) in FLE1 {
        let bytes = unhex(hex);
        for len in 0..=bytes.len() {
            match parse_header(&bytes[..len]) {
                Err(HeaderError::Empty) => assert_eq!(len, 0),
                Err(HeaderError::Truncated { len: l, .. }) => {
                    assert_eq!(l, len);
                    assert!((1..18).contains(&len));
                }
                Ok(h) => {
                    assert!(len >= 18);
                    assert!(h.key_id.is_some());
                }
            }
        }
    }
}

fn budget() -> u32 {
    std::env::var("KS_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000)
}

#[test]
fn fuzz_arbitrary_bytes_never_panic() {
    let mut runner = TestRunner::new(PtConfig {
        cases: budget(),
        failure_persistence: None,
        ..PtConfig::default()
    });
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        // Mostly plausible first bytes.
        (0u8..=20, proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(t, mut rest)| {
            rest.insert(0, t);
            rest
        }),
    ];
    runner
        .run(&bytes, |b| {
            match parse_header(&b) {
                Ok(h) => {
                    prop_assert_eq!(h.kind, BlobKind::of_type(b[0]));
                    let fle1 = h.kind.algorithm().is_some();
                    prop_assert_eq!(h.key_id.is_some(), fle1);
                    prop_assert_eq!(h.original_bson_type.is_some(), fle1);
                    if fle1 {
                        prop_assert_eq!(&h.key_id.unwrap()[..], &b[1..17]);
                    }
                    let _ = decide(&h, |id| id[0] % 2 == 0);
                }
                Err(e) => {
                    prop_assert!(b.len() < 18);
                    prop_assert!(!e.to_string().is_empty());
                }
            }
            Ok(())
        })
        .unwrap();
    println!("fuzz_arbitrary_bytes_never_panic: {} cases", budget());
}
