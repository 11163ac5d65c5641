//! Property tests: parse → serialize → parse is the identity (TOML and JSON), and
//! parsing plus validation never panics, whatever the input.

use std::collections::BTreeMap;

use keyshift_core::config::*;
use keyshift_core::validate::{check_json, check_toml, check_value, validate_local_key_bytes};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        "[a-zA-Z0-9:_./-]{0,30}",
        Just("env:AWS_KEY".to_string()),
        Just(
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                .to_string()
        ),
    ]
}

fn opt() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn provider(kind: ProviderKind) -> BoxedStrategy<Provider> {
    match kind {
        ProviderKind::Aws => (opt(), opt(), opt())
            .prop_map(|(a, b, c)| {
                Provider::Aws(AwsProvider {
                    access_key_id: a,
                    secret_access_key: b,
                    session_token: c,
                })
            })
            .boxed(),
        ProviderKind::Azure => (opt(), opt(), opt(), opt())
            .prop_map(|(a, b, c, d)| {
                Provider::Azure(AzureProvider {
                    tenant_id: a,
                    client_id: b,
                    client_secret: c,
                    identity_platform_endpoint: d,
                })
            })
            .boxed(),
        ProviderKind::Gcp => (opt(), opt(), opt())
            .prop_map(|(a, b, c)| {
                Provider::Gcp(GcpProvider {
                    email: a,
                    private_key: b,
                    endpoint: c,
                })
            })
            .boxed(),
        ProviderKind::Kmip => opt()
            .prop_map(|e| Provider::Kmip(KmipProvider { endpoint: e }))
            .boxed(),
        ProviderKind::Local => (opt(), any::<bool>())
            .prop_map(|(k, e)| Provider::Local(LocalProvider { key: k, exposed: e }))
            .boxed(),
    }
}

fn master_key(kind: ProviderKind) -> BoxedStrategy<MasterKey> {
    match kind {
        ProviderKind::Aws => (opt(), opt(), opt())
            .prop_map(|(r, k, e)| {
                MasterKey::Aws(AwsMasterKey {
                    region: r,
                    key: k,
                    endpoint: e,
                })
            })
            .boxed(),
        ProviderKind::Azure => (opt(), opt(), opt())
            .prop_map(|(a, b, c)| {
                MasterKey::Azure(AzureMasterKey {
                    key_vault_endpoint: a,
                    key_name: b,
                    key_version: c,
                })
            })
            .boxed(),
        ProviderKind::Gcp => (opt(), opt(), opt(), opt(), opt(), opt())
            .prop_map(|(a, b, c, d, e, f)| {
                MasterKey::Gcp(GcpMasterKey {
                    project_id: a,
                    location: b,
                    key_ring: c,
                    key_name: d,
                    key_version: e,
                    endpoint: f,
                })
            })
            .boxed(),
        ProviderKind::Kmip => (opt(), proptest::option::of(any::<bool>()), opt())
            .prop_map(|(a, b, c)| {
                MasterKey::Kmip(KmipMasterKey {
                    key_id: a,
                    delegated: b,
                    endpoint: c,
                })
            })
            .boxed(),
        ProviderKind::Local => Just(MasterKey::Local(LocalMasterKey {})).boxed(),
    }
}

const NAMES: &[&str] = &[
    "local",
    "local:legacy",
    "aws",
    "aws:prod",
    "azure",
    "gcp",
    "kmip",
    "kmip:hsm",
];

fn config() -> impl Strategy<Value = Config> {
    let providers = proptest::sample::subsequence(NAMES, 0..=NAMES.len()).prop_flat_map(|names| {
        names
            .into_iter()
            .map(|n| {
                provider(ProviderKind::of_name(n).expect("known"))
                    .prop_map(move |p| (n.to_string(), p))
            })
            .collect::<Vec<_>>()
    });
    let tls = proptest::collection::btree_map(
        proptest::sample::select(NAMES).prop_map(str::to_string),
        (opt(), opt(), opt()).prop_map(|(a, b, c)| TlsOptions {
            tls_ca_file: a,
            tls_certificate_key_file: b,
            tls_certificate_key_file_password: c,
        }),
        0..3,
    );
    let target = proptest::option::of(proptest::sample::select(NAMES).prop_flat_map(|n| {
        master_key(ProviderKind::of_name(n).expect("known")).prop_map(move |mk| Target {
            provider: n.to_string(),
            master_key: mk,
        })
    }));
    let rewrap = proptest::option::of(
        (
            opt(),
            any::<Option<i64>>(),
            any::<Option<i64>>(),
            any::<Option<i64>>(),
            opt(),
            proptest::option::of(proptest::collection::vec(text(), 0..3)),
        )
            .prop_map(|(f, b, c, r, d, k)| Rewrap {
                filter: f,
                batch_size: b,
                concurrency: c,
                kms_rate: r,
                aws_re_encrypt: None,
                re_encrypt_proof_one_in: None,
                backup_dir: d,
                kmip_replace_key_ids: k,
            }),
    );
    let rotate = proptest::option::of(
        proptest::option::of(proptest::collection::vec(text(), 0..4))
            .prop_map(|collections| Rotate { collections }),
    );
    let retire = proptest::option::of(
        (
            proptest::collection::btree_map(text(), text(), 0..3),
            proptest::option::of(proptest::bool::ANY),
        )
            .prop_map(|(deployments, all_deployments_listed)| Retire {
                deployments,
                all_deployments_listed,
            }),
    );
    let audit = proptest::option::of(
        (opt(), opt()).prop_map(|(file, collection)| Audit { file, collection }),
    );
    (
        (opt(), text(), providers, tls),
        target,
        rewrap,
        rotate,
        retire,
        audit,
    )
        .prop_map(
            |((uri, ns, providers, tls), target, rewrap, rotate, retire, audit)| Config {
                key_vault: KeyVault { uri, namespace: ns },
                kms_providers: providers.into_iter().collect::<BTreeMap<_, _>>(),
                tls_options: tls,
                target,
                rewrap,
                rotate,
                retire,
                audit,
            },
        )
}

/// TOML-ish text: fragments of keyshift.toml shuffled together.
fn tomlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("[".to_string()),
        Just("]".to_string()),
        Just("[[".to_string()),
        Just("=".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("\n".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just(",".to_string()),
        Just(".".to_string()),
        Just("kmsProviders".to_string()),
        Just("\"aws:prod\"".to_string()),
        Just("target".to_string()),
        Just("masterKey".to_string()),
        Just("keyVault".to_string()),
        Just("rewrap".to_string()),
        Just("batchSize = 99999999999999999999".to_string()),
        Just("key = \"arn:aws:kms:us-east-1:1:key/x\"".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
        Just("nan".to_string()),
        "\\PC{0,8}",
    ];
    proptest::collection::vec(token, 0..40).prop_map(|t| t.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn toml_round_trip_is_identity(c in config()) {
        let text = c.to_toml().expect("serializable");
        let back = parse_toml(&text).config;
        prop_assert_eq!(&back, &c, "toml was:\n{}", text);
        let again = back.to_toml().expect("serializable");
        prop_assert_eq!(again, text);
    }

    #[test]
    fn json_round_trip_is_identity(c in config()) {
        let v = c.to_json_value();
        prop_assert_eq!(from_value(&v).config, c.clone());
        let text = serde_json::to_string(&v).unwrap();
        prop_assert_eq!(parse_json(&text).config, c);
    }

    #[test]
    fn validation_never_panics_on_models(c in config()) {
        let _ = check_value(&c.to_json_value());
    }

    #[test]
    fn validation_never_panics_on_strings(s in "\\PC{0,200}") {
        let _ = check_toml(&s);
        let _ = check_json(&s);
        let _ = validate_local_key_bytes(s.as_bytes());
    }

    #[test]
    fn validation_never_panics_on_tomlish(s in tomlish()) {
        let parsed = check_toml(&s);
        for d in parsed.diagnostics {
            prop_assert!(!d.code.is_empty() && !d.message.is_empty());
        }
    }

    #[test]
    fn validation_never_panics_on_bytes(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = validate_local_key_bytes(&b);
        let s = String::from_utf8_lossy(&b);
        let _ = check_toml(&s);
    }
}
