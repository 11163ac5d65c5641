//! Table-driven tests: for every diagnostic code, inputs that must raise it (at a given
//! path) and valid inputs, from each provider's documented formats, that must not.
//! A final test proves every code in `codes::ALL` has a row here.

use std::collections::BTreeSet;

use keyshift_core::diagnostic::{Severity, codes};
use keyshift_core::validate::{check_toml, check_value};
use serde_json::{Value, json};

const AWS_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn base(kind: &str) -> Value {
    let (provider, creds, master_key) = match kind {
        "aws" => (
            "aws",
            json!({"accessKeyId": "env:AWS_ACCESS_KEY_ID", "secretAccessKey": "env:AWS_SECRET_ACCESS_KEY"}),
            json!({"region": "us-east-1", "key": AWS_ARN}),
        ),
        "azure" => (
            "azure",
            json!({"tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                   "clientId": "00001111-aaaa-2222-bbbb-3333cccc4444",
                   "clientSecret": "env:AZURE_CLIENT_SECRET"}),
            json!({"keyVaultEndpoint": "my-vault.vault.azure.net", "keyName": "ks-cmk",
                   "keyVersion": "78deebed173b48e48f55abf87ed4cf71"}),
        ),
        "gcp" => (
            "gcp",
            json!({"email": "keyshift@my-project.iam.gserviceaccount.com", "privateKey": "file:gcp-key.pem"}),
            json!({"projectId": "my-project", "location": "global", "keyRing": "ks-ring",
                   "keyName": "ks-key", "keyVersion": "1"}),
        ),
        "kmip" => (
            "kmip",
            json!({"endpoint": "kmip.example.com:5696"}),
            json!({"keyId": "1", "delegated": false}),
        ),
        other => panic!("no base {other}"),
    };
    let mut v = json!({
        "keyVault": {"uri": "env:MONGODB_URI", "namespace": "encryption.__keyVault"},
        "kmsProviders": {"local": {"key": "file:master-key.txt"}},
        "target": {"provider": provider, "masterKey": master_key},
        "rewrap": {"filter": "{\"masterKey.provider\": \"local\"}", "batchSize": 256,
                   "concurrency": 16, "backupDir": "keyshift-backups"}
    });
    v["kmsProviders"][provider] = creds;
    if kind == "kmip" {
        v["tlsOptions"] =
            json!({"kmip": {"tlsCAFile": "ca.pem", "tlsCertificateKeyFile": "client.pem"}});
    }
    v
}

/// Sets (or with `Value::Null`, removes) the value at a JSON pointer, creating
/// objects on the way.
fn set(v: &mut Value, ptr: &str, new: Value) {
    let segs: Vec<String> = ptr
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let (last, parents) = segs.split_last().expect("pointer");
    let mut cur = v;
    for s in parents {
        if !cur[s.as_str()].is_object() {
            cur[s.as_str()] = json!({});
        }
        cur = cur.get_mut(s.as_str()).expect("object");
    }
    let obj = cur.as_object_mut().expect("object");
    if new.is_null() {
        obj.remove(last);
    } else {
        obj.insert(last.clone(), new);
    }
}

fn patched(kind: &str, patches: &[(&str, Value)]) -> Value {
    let mut v = base(kind);
    for (p, val) in patches {
        set(&mut v, p, val.clone());
    }
    v
}

enum Input {
    Patch(&'static str, Vec<(&'static str, Value)>),
    Toml(&'static str),
}

struct Case {
    code: &'static str,
    /// (input, expected path) that must raise `code`.
    bad: Vec<(Input, &'static str)>,
    /// inputs that must not raise `code`.
    good: Vec<Input>,
}

fn p(kind: &'static str, patches: Vec<(&'static str, Value)>) -> Input {
    Input::Patch(kind, patches)
}

fn run(input: &Input) -> Vec<keyshift_core::Diagnostic> {
    match input {
        Input::Patch(kind, patches) => check_value(&patched(kind, patches)).diagnostics,
        Input::Toml(t) => check_toml(t).diagnostics,
    }
}

fn cases() -> Vec<Case> {
    let mk = "/target/masterKey";
    vec![
        Case {
            code: codes::SYNTAX,
            bad: vec![
                (Input::Toml("[keyVault]\nuri = env:X\n"), "/keyVault/uri"),
                (Input::Toml("[target\n"), ""),
            ],
            good: vec![Input::Toml("[keyVault]\nuri = \"env:X\"\n")],
        },
        Case {
            code: codes::UNKNOWN_FIELD,
            bad: vec![
                (
                    p(
                        "aws",
                        vec![("/kmsProviders/aws/acessKeyId", json!("env:X"))],
                    ),
                    "/kmsProviders/aws/acessKeyId",
                ),
                (
                    p(
                        "aws",
                        vec![("/target/masterKey/regoin", json!("us-east-1"))],
                    ),
                    "/target/masterKey/regoin",
                ),
                (
                    p("aws", vec![("/target/masterKey/provider", json!("aws"))]),
                    "/target/masterKey/provider",
                ),
                (
                    p("aws", vec![("/rewrap/batch_size", json!(5))]),
                    "/rewrap/batch_size",
                ),
                (p("aws", vec![("/keyvault", json!({}))]), "/keyvault"),
            ],
            good: vec![
                p("aws", vec![]),
                p("azure", vec![]),
                p("gcp", vec![]),
                p("kmip", vec![]),
            ],
        },
        Case {
            code: codes::WRONG_TYPE,
            bad: vec![
                (
                    p("aws", vec![("/rewrap/batchSize", json!("256"))]),
                    "/rewrap/batchSize",
                ),
                (
                    p("aws", vec![("/kmsProviders/local/exposed", json!("yes"))]),
                    "/kmsProviders/local/exposed",
                ),
                (p("aws", vec![("/target", json!("aws"))]), "/target"),
                (
                    Input::Toml("[keyVault]\nuri = 1979-05-27\n"),
                    "/keyVault/uri",
                ),
                (
                    p("kmip", vec![("/target/masterKey/delegated", json!("true"))]),
                    "/target/masterKey/delegated",
                ),
                (
                    p("aws", vec![("/rotate/collections", json!("app.customers"))]),
                    "/rotate/collections",
                ),
                (
                    p("aws", vec![("/rotate/collections", json!(["app.a", 5]))]),
                    "/rotate/collections/1",
                ),
                (p("aws", vec![("/rotate", json!(["app.a"]))]), "/rotate"),
            ],
            good: vec![p(
                "kmip",
                vec![("/target/masterKey/delegated", json!(true))],
            )],
        },
        Case {
            code: codes::MISSING_FIELD,
            bad: vec![
                (
                    p("aws", vec![("/target/masterKey/region", Value::Null)]),
                    "/target/masterKey/region",
                ),
                (
                    p("aws", vec![("/keyVault/uri", Value::Null)]),
                    "/keyVault/uri",
                ),
                (p("aws", vec![("/target", Value::Null)]), "/target"),
                (
                    p("gcp", vec![("/target/masterKey/keyRing", Value::Null)]),
                    "/target/masterKey/keyRing",
                ),
                (
                    p("azure", vec![("/target/masterKey/keyName", Value::Null)]),
                    "/target/masterKey/keyName",
                ),
                (
                    p("kmip", vec![("/kmsProviders/kmip/endpoint", Value::Null)]),
                    "/kmsProviders/kmip/endpoint",
                ),
                (
                    p("aws", vec![("/kmsProviders/local/key", Value::Null)]),
                    "/kmsProviders/local/key",
                ),
            ],
            good: vec![p("aws", vec![("/keyVault/namespace", Value::Null)])],
        },
        Case {
            code: codes::EMPTY_VALUE,
            bad: vec![(
                p("aws", vec![("/rewrap/backupDir", json!(""))]),
                "/rewrap/backupDir",
            )],
            good: vec![p("aws", vec![])],
        },
        Case {
            code: codes::LITERAL_SECRET,
            bad: vec![
                (
                    p(
                        "aws",
                        vec![(
                            "/kmsProviders/aws/secretAccessKey",
                            json!("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                        )],
                    ),
                    "/kmsProviders/aws/secretAccessKey",
                ),
                (
                    p(
                        "aws",
                        vec![(
                            "/kmsProviders/local/key",
                            json!(
                                "Mng0NCt4ZHVUYUJCa1kxNkVyNUR1QURhZ2h2UzR2d2RrZzh0cFBwM3R6NmdWMDFBMUN3YkQ5aXRRMkhGRGdQV09wOGVNYUMxT2k3NjZKelhaQmRCZGJkTXVyZG9uSjFk"
                            ),
                        )],
                    ),
                    "/kmsProviders/local/key",
                ),
                (
                    p(
                        "azure",
                        vec![("/kmsProviders/azure/clientSecret", json!("abc~secret"))],
                    ),
                    "/kmsProviders/azure/clientSecret",
                ),
                (
                    p(
                        "aws",
                        vec![(
                            "/keyVault/uri",
                            json!("mongodb://admin:hunter2@db.example.com/"),
                        )],
                    ),
                    "/keyVault/uri",
                ),
                (
                    p(
                        "kmip",
                        vec![(
                            "/tlsOptions/kmip/tlsCertificateKeyFilePassword",
                            json!("pw"),
                        )],
                    ),
                    "/tlsOptions/kmip/tlsCertificateKeyFilePassword",
                ),
            ],
            good: vec![
                p(
                    "aws",
                    vec![(
                        "/keyVault/uri",
                        json!("mongodb://db.example.com:27017/?tls=true"),
                    )],
                ),
                p(
                    "aws",
                    vec![("/kmsProviders/local/key", json!("env:LOCAL_KEY"))],
                ),
            ],
        },
        Case {
            code: codes::BAD_SECRET_REF,
            bad: vec![
                (
                    p(
                        "aws",
                        vec![("/kmsProviders/aws/accessKeyId", json!("env:"))],
                    ),
                    "/kmsProviders/aws/accessKeyId",
                ),
                (
                    p(
                        "aws",
                        vec![("/kmsProviders/aws/accessKeyId", json!("ENV:AWS_KEY"))],
                    ),
                    "/kmsProviders/aws/accessKeyId",
                ),
                (
                    p("aws", vec![("/kmsProviders/local/key", json!("file:"))]),
                    "/kmsProviders/local/key",
                ),
                (
                    p("aws", vec![("/keyVault/uri", json!("env:MONGODB-URI"))]),
                    "/keyVault/uri",
                ),
            ],
            good: vec![p(
                "gcp",
                vec![("/kmsProviders/gcp/privateKey", json!("env:GCP_PRIVATE_KEY"))],
            )],
        },
        Case {
            code: codes::KV_NAMESPACE,
            bad: vec![
                (
                    p("aws", vec![("/keyVault/namespace", json!("encryption"))]),
                    "/keyVault/namespace",
                ),
                (
                    p("aws", vec![("/keyVault/namespace", json!(".keyVault"))]),
                    "/keyVault/namespace",
                ),
                (
                    p("aws", vec![("/keyVault/namespace", json!("my db.keys"))]),
                    "/keyVault/namespace",
                ),
                (
                    p(
                        "aws",
                        vec![("/keyVault/namespace", json!("enc.system.keys"))],
                    ),
                    "/keyVault/namespace",
                ),
                (
                    p("aws", vec![("/keyVault/namespace", json!("enc.ke$ys"))]),
                    "/keyVault/namespace",
                ),
            ],
            good: vec![
                p(
                    "aws",
                    vec![("/keyVault/namespace", json!("encryption.__keyVault"))],
                ),
                p("aws", vec![("/keyVault/namespace", json!("csfle.keys.v2"))]),
            ],
        },
        Case {
            code: codes::KV_URI,
            bad: vec![(
                p("aws", vec![("/keyVault/uri", json!("localhost:27017"))]),
                "/keyVault/uri",
            )],
            good: vec![p(
                "aws",
                vec![(
                    "/keyVault/uri",
                    json!("mongodb+srv://cluster0.example.net/"),
                )],
            )],
        },
        Case {
            code: codes::PRV_UNKNOWN_TYPE,
            bad: vec![
                (
                    p("aws", vec![("/kmsProviders/awz", json!({}))]),
                    "/kmsProviders/awz",
                ),
                (
                    p("aws", vec![("/kmsProviders/vault:prod", json!({}))]),
                    "/kmsProviders/vault:prod",
                ),
            ],
            good: vec![p(
                "aws",
                vec![(
                    "/kmsProviders/aws:prod",
                    json!({"accessKeyId": "env:A", "secretAccessKey": "env:B"}),
                )],
            )],
        },
        Case {
            code: codes::PRV_BAD_NAME,
            bad: vec![
                (
                    p(
                        "aws",
                        vec![(
                            "/kmsProviders/aws:",
                            json!({"accessKeyId": "env:A", "secretAccessKey": "env:B"}),
                        )],
                    ),
                    "/kmsProviders/aws:",
                ),
                (
                    p(
                        "aws",
                        vec![("/kmsProviders/local:old-key", json!({"key": "file:k"}))],
                    ),
                    "/kmsProviders/local:old-key",
                ),
            ],
            good: vec![p(
                "aws",
                vec![("/kmsProviders/local:legacy_1", json!({"key": "file:k"}))],
            )],
        },
        Case {
            code: codes::PRV_NONE,
            bad: vec![(
                p("aws", vec![("/kmsProviders", json!({}))]),
                "/kmsProviders",
            )],
            good: vec![p("aws", vec![])],
        },
        Case {
            code: codes::PRV_NAMED_ON_DEMAND,
            bad: vec![(
                p("aws", vec![("/kmsProviders/aws:prod", json!({}))]),
                "/kmsProviders/aws:prod",
            )],
            good: vec![p("aws", vec![("/kmsProviders/aws", json!({}))])],
        },
        Case {
            code: codes::PRV_PARTIAL_CREDENTIALS,
            bad: vec![
                (
                    p(
                        "aws",
                        vec![("/kmsProviders/aws/secretAccessKey", Value::Null)],
                    ),
                    "/kmsProviders/aws",
                ),
                (
                    p(
                        "aws",
                        vec![("/kmsProviders/aws", json!({"sessionToken": "env:T"}))],
                    ),
                    "/kmsProviders/aws/sessionToken",
                ),
                (
                    p(
                        "azure",
                        vec![("/kmsProviders/azure/clientSecret", Value::Null)],
                    ),
                    "/kmsProviders/azure",
                ),
                (
                    p("gcp", vec![("/kmsProviders/gcp/privateKey", Value::Null)]),
                    "/kmsProviders/gcp",
                ),
            ],
            good: vec![
                p("azure", vec![("/kmsProviders/azure", json!({}))]),
                p("gcp", vec![("/kmsProviders/gcp", json!({}))]),
            ],
        },
        Case {
            code: codes::NET_ENDPOINT,
            bad: vec![
                (
                    p(
                        "aws",
                        vec![(
                            "/target/masterKey/endpoint",
                            json!("kms.us-east-1.amazonaws.com:99999"),
                        )],
                    ),
                    "/target/masterKey/endpoint",
                ),
                (
                    p(
                        "aws",
                        vec![("/target/masterKey/endpoint", json!("http://kms.local"))],
                    ),
                    "/target/masterKey/endpoint",
                ),
                (
                    p(
                        "gcp",
                        vec![(
                            "/target/masterKey/endpoint",
                            json!("cloudkms.googleapis.com/v1"),
                        )],
                    ),
                    "/target/masterKey/endpoint",
                ),
                (
                    p(
                        "azure",
                        vec![(
                            "/kmsProviders/azure/identityPlatformEndpoint",
                            json!("login microsoft"),
                        )],
                    ),
                    "/kmsProviders/azure/identityPlatformEndpoint",
                ),
                (
                    p(
                        "kmip",
                        vec![(
                            "/kmsProviders/kmip/endpoint",
                            json!("kmip.example.com:port"),
                        )],
                    ),
                    "/kmsProviders/kmip/endpoint",
                ),
            ],
            good: vec![
                p(
                    "aws",
                    vec![(
                        "/target/masterKey/endpoint",
                        json!("kms.us-east-1.amazonaws.com"),
                    )],
                ),
                p(
                    "aws",
                    vec![(
                        "/target/masterKey/endpoint",
                        json!("https://127.0.0.1:8443/"),
                    )],
                ),
                p(
                    "gcp",
                    vec![(
                        "/kmsProviders/gcp/endpoint",
                        json!("oauth2.googleapis.com:443"),
                    )],
                ),
                p(
                    "kmip",
                    vec![("/kmsProviders/kmip/endpoint", json!("[::1]:5696"))],
                ),
            ],
        },
        Case {
            code: codes::TLS_UNKNOWN_PROVIDER,
            bad: vec![(
                p(
                    "aws",
                    vec![("/tlsOptions/awz", json!({"tlsCAFile": "ca.pem"}))],
                ),
                "/tlsOptions/awz",
            )],
            good: vec![p(
                "aws",
                vec![("/tlsOptions/aws", json!({"tlsCAFile": "ca.pem"}))],
            )],
        },
        Case {
            code: codes::TLS_INSECURE,
            bad: vec![(
                p(
                    "aws",
                    vec![("/tlsOptions/aws", json!({"tlsInsecure": true}))],
                ),
                "/tlsOptions/aws/tlsInsecure",
            )],
            good: vec![p(
                "aws",
                vec![("/tlsOptions/aws", json!({"tlsCAFile": "ca.pem"}))],
            )],
        },
        Case {
            code: codes::TLS_LOCAL,
            bad: vec![(
                p(
                    "aws",
                    vec![("/tlsOptions/local", json!({"tlsCAFile": "ca.pem"}))],
                ),
                "/tlsOptions/local",
            )],
            good: vec![p("aws", vec![])],
        },
        Case {
            code: codes::TGT_UNKNOWN_PROVIDER,
            bad: vec![(
                p("aws", vec![("/target/provider", json!("aws:prod"))]),
                "/target/provider",
            )],
            good: vec![p("aws", vec![])],
        },
        Case {
            code: codes::TGT_ONLY_PROVIDER,
            bad: vec![(
                p("aws", vec![("/kmsProviders/local", Value::Null)]),
                "/target/provider",
            )],
            good: vec![p("aws", vec![])],
        },
        Case {
            code: codes::TGT_LOCAL,
            bad: vec![(
                p(
                    "aws",
                    vec![
                        ("/kmsProviders/local:new", json!({"key": "file:new.key"})),
                        ("/target", json!({"provider": "local:new"})),
                    ],
                ),
                "/target/provider",
            )],
            good: vec![p("aws", vec![])],
        },
        Case {
            code: codes::TGT_SAME_AS_SOURCE,
            bad: vec![(
                p(
                    "aws",
                    vec![
                        (
                            "/kmsProviders/local:new",
                            json!({"key": "file:master-key.txt"}),
                        ),
                        ("/target", json!({"provider": "local:new"})),
                    ],
                ),
                "/target/provider",
            )],
            good: vec![p(
                "aws",
                vec![
                    ("/kmsProviders/local:new", json!({"key": "file:new.key"})),
                    ("/target", json!({"provider": "local:new"})),
                ],
            )],
        },
        Case {
            code: codes::AWS_BAD_ARN,
            bad: vec![
                (
                    p(
                        "aws",
                        vec![(AWSKEY, json!("arn:aws:kms:us-east-1:111122223333"))],
                    ),
                    AWSKEY,
                ),
                (
                    p(
                        "aws",
                        vec![(
                            AWSKEY,
                            json!(
                                "arn:aws:s3:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                            ),
                        )],
                    ),
                    AWSKEY,
                ),
                (
                    p(
                        "aws",
                        vec![(
                            AWSKEY,
                            json!("arn:aws:kms:us-east-1:111122223333:grant/abc"),
                        )],
                    ),
                    AWSKEY,
                ),
                (p("aws", vec![(AWSKEY, json!("my key"))]), AWSKEY),
            ],
            good: vec![
                p("aws", vec![(AWSKEY, json!(AWS_ARN))]),
                p(
                    "aws",
                    vec![(
                        AWSKEY,
                        json!(
                            "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
                        ),
                    )],
                ),
            ],
        },
        Case {
            code: codes::AWS_NOT_ARN,
            bad: vec![
                (
                    p(
                        "aws",
                        vec![(AWSKEY, json!("1234abcd-12ab-34cd-56ef-1234567890ab"))],
                    ),
                    AWSKEY,
                ),
                (
                    p(
                        "aws",
                        vec![(AWSKEY, json!("mrk-1234abcd12ab34cd56ef1234567890ab"))],
                    ),
                    AWSKEY,
                ),
                (
                    p("aws", vec![(AWSKEY, json!("alias/ExampleAlias"))]),
                    AWSKEY,
                ),
            ],
            good: vec![p("aws", vec![])],
        },
        Case {
            code: codes::AWS_PARTITION,
            bad: vec![(
                p(
                    "aws",
                    vec![(
                        AWSKEY,
                        json!(
                            "arn:aws-iso:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                        ),
                    )],
                ),
                AWSKEY,
            )],
            good: vec![p(
                "aws",
                vec![
                    (
                        AWSKEY,
                        json!(
                            "arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                        ),
                    ),
                    ("/target/masterKey/region", json!("cn-north-1")),
                ],
            )],
        },
        Case {
            code: codes::AWS_REGION,
            bad: vec![
                (
                    p(
                        "aws",
                        vec![("/target/masterKey/region", json!("US-EAST-1"))],
                    ),
                    "/target/masterKey/region",
                ),
                (
                    p(
                        "aws",
                        vec![(
                            AWSKEY,
                            json!(
                                "arn:aws:kms:useast1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                            ),
                        )],
                    ),
                    AWSKEY,
                ),
            ],
            good: vec![p(
                "aws",
                vec![
                    (
                        AWSKEY,
                        json!(
                            "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                        ),
                    ),
                    ("/target/masterKey/region", json!("us-gov-west-1")),
                ],
            )],
        },
        Case {
            code: codes::AWS_REGION_MISMATCH,
            bad: vec![(
                p(
                    "aws",
                    vec![("/target/masterKey/region", json!("eu-west-1"))],
                ),
                "/target/masterKey/region",
            )],
            good: vec![p("aws", vec![])],
        },
        Case {
            code: codes::AWS_ACCOUNT,
            bad: vec![
                (
                    p(
                        "aws",
                        vec![(
                            AWSKEY,
                            json!(
                                "arn:aws:kms:us-east-1:1111222233:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                            ),
                        )],
                    ),
                    AWSKEY,
                ),
                (
                    p(
                        "aws",
                        vec![(
                            AWSKEY,
                            json!(
                                "arn:aws:kms:us-east-1:11112222333a:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                            ),
                        )],
                    ),
                    AWSKEY,
                ),
            ],
            good: vec![p("aws", vec![])],
        },
        Case {
            code: codes::AWS_KEY_ID,
            bad: vec![
                (
                    p(
                        "aws",
                        vec![(
                            AWSKEY,
                            json!("arn:aws:kms:us-east-1:111122223333:key/1234abcd"),
                        )],
                    ),
                    AWSKEY,
                ),
                (
                    p(
                        "aws",
                        vec![(
                            AWSKEY,
                            json!("arn:aws:kms:us-east-1:111122223333:key/mrk-12"),
                        )],
                    ),
                    AWSKEY,
                ),
            ],
            good: vec![p("aws", vec![])],
        },
        Case {
            code: codes::AWS_ALIAS,
            bad: vec![(
                p(
                    "aws",
                    vec![(
                        AWSKEY,
                        json!("arn:aws:kms:us-east-1:111122223333:alias/ExampleAlias"),
                    )],
                ),
                AWSKEY,
            )],
            good: vec![p("aws", vec![])],
        },
        Case {
            code: codes::AWS_PARTITION_REGION,
            bad: vec![(
                p(
                    "aws",
                    vec![(
                        AWSKEY,
                        json!(
                            "arn:aws-cn:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                        ),
                    )],
                ),
                AWSKEY,
            )],
            good: vec![p("aws", vec![])],
        },
        Case {
            code: codes::AZ_ENDPOINT,
            bad: vec![
                (
                    p(
                        "azure",
                        vec![(AZEP, json!("ftp://my-vault.vault.azure.net"))],
                    ),
                    AZEP,
                ),
                (
                    p("azure", vec![(AZEP, json!("my--vault.vault.azure.net"))]),
                    AZEP,
                ),
                (p("azure", vec![(AZEP, json!("ab.vault.azure.net"))]), AZEP),
            ],
            good: vec![
                p(
                    "azure",
                    vec![(AZEP, json!("https://my-vault.vault.azure.net/"))],
                ),
                p("azure", vec![(AZEP, json!("myhsm.managedhsm.azure.net"))]),
                p("azure", vec![(AZEP, json!("contoso.vault.azure.cn"))]),
                p(
                    "azure",
                    vec![(AZEP, json!("contoso.vault.usgovcloudapi.net"))],
                ),
            ],
        },
        Case {
            code: codes::AZ_ENDPOINT_DOMAIN,
            bad: vec![(p("azure", vec![(AZEP, json!("127.0.0.1:8443"))]), AZEP)],
            good: vec![p("azure", vec![])],
        },
        Case {
            code: codes::AZ_KEY_NAME,
            bad: vec![
                (
                    p(
                        "azure",
                        vec![("/target/masterKey/keyName", json!("ks_cmk"))],
                    ),
                    "/target/masterKey/keyName",
                ),
                (
                    p(
                        "azure",
                        vec![("/target/masterKey/keyName", json!("k".repeat(128)))],
                    ),
                    "/target/masterKey/keyName",
                ),
            ],
            good: vec![p(
                "azure",
                vec![("/target/masterKey/keyName", json!("CMK-2024"))],
            )],
        },
        Case {
            code: codes::AZ_KEY_VERSION,
            bad: vec![(
                p("azure", vec![("/target/masterKey/keyVersion", json!("v1"))]),
                "/target/masterKey/keyVersion",
            )],
            good: vec![p(
                "azure",
                vec![("/target/masterKey/keyVersion", Value::Null)],
            )],
        },
        Case {
            code: codes::AZ_NO_KEY_VERSION,
            bad: vec![
                (
                    p("azure", vec![("/target/masterKey/keyVersion", Value::Null)]),
                    "/target/masterKey/keyVersion",
                ),
                (
                    p(
                        "azure",
                        vec![
                            ("/target/masterKey/keyVersion", Value::Null),
                            (AZEP, json!("myhsm.managedhsm.azure.net")),
                        ],
                    ),
                    "/target/masterKey/keyVersion",
                ),
            ],
            // A pinned version; an empty one is KS-CFG-005's, not this warning's.
            good: vec![
                p("azure", vec![]),
                p("azure", vec![("/target/masterKey/keyVersion", json!(""))]),
            ],
        },
        Case {
            code: codes::AZ_TENANT,
            bad: vec![(
                p(
                    "azure",
                    vec![("/kmsProviders/azure/tenantId", json!("not a tenant"))],
                ),
                "/kmsProviders/azure/tenantId",
            )],
            // A GUID, or the tenant's verified domain, which Azure AD accepts as well.
            good: vec![
                p("azure", vec![]),
                p(
                    "azure",
                    vec![(
                        "/kmsProviders/azure/tenantId",
                        json!("contoso.onmicrosoft.com"),
                    )],
                ),
            ],
        },
        Case {
            code: codes::AZ_CLIENT,
            bad: vec![(
                p(
                    "azure",
                    vec![(
                        "/kmsProviders/azure/clientId",
                        json!("00001111aaaa2222bbbb3333cccc4444"),
                    )],
                ),
                "/kmsProviders/azure/clientId",
            )],
            good: vec![p("azure", vec![])],
        },
        Case {
            code: codes::GCP_PROJECT,
            bad: vec![
                (
                    p(
                        "gcp",
                        vec![("/target/masterKey/projectId", json!("My-Project"))],
                    ),
                    "/target/masterKey/projectId",
                ),
                (
                    p("gcp", vec![("/target/masterKey/projectId", json!("proj"))]),
                    "/target/masterKey/projectId",
                ),
                (
                    p(
                        "gcp",
                        vec![("/target/masterKey/projectId", json!("my-project-"))],
                    ),
                    "/target/masterKey/projectId",
                ),
            ],
            good: vec![
                p(
                    "gcp",
                    vec![(
                        "/target/masterKey/projectId",
                        json!("example.com:my-project"),
                    )],
                ),
                p(
                    "gcp",
                    vec![("/target/masterKey/projectId", json!("123456789012"))],
                ),
            ],
        },
        Case {
            code: codes::GCP_LOCATION,
            bad: vec![(
                p(
                    "gcp",
                    vec![("/target/masterKey/location", json!("US East"))],
                ),
                "/target/masterKey/location",
            )],
            good: vec![p(
                "gcp",
                vec![("/target/masterKey/location", json!("us-east1"))],
            )],
        },
        Case {
            code: codes::GCP_KEY_RING,
            bad: vec![(
                p(
                    "gcp",
                    vec![("/target/masterKey/keyRing", json!("ring.one"))],
                ),
                "/target/masterKey/keyRing",
            )],
            good: vec![p(
                "gcp",
                vec![("/target/masterKey/keyRing", json!("Ring_1-a"))],
            )],
        },
        Case {
            code: codes::GCP_KEY_NAME,
            bad: vec![(
                p(
                    "gcp",
                    vec![("/target/masterKey/keyName", json!("k".repeat(64)))],
                ),
                "/target/masterKey/keyName",
            )],
            good: vec![p(
                "gcp",
                vec![("/target/masterKey/keyName", json!("k".repeat(63)))],
            )],
        },
        Case {
            code: codes::GCP_KEY_VERSION,
            bad: vec![
                (
                    p("gcp", vec![("/target/masterKey/keyVersion", json!("v1"))]),
                    "/target/masterKey/keyVersion",
                ),
                (
                    p("gcp", vec![("/target/masterKey/keyVersion", json!("0"))]),
                    "/target/masterKey/keyVersion",
                ),
            ],
            good: vec![p(
                "gcp",
                vec![("/target/masterKey/keyVersion", json!("12"))],
            )],
        },
        Case {
            code: codes::GCP_EMAIL,
            bad: vec![(
                p("gcp", vec![("/kmsProviders/gcp/email", json!("keyshift"))]),
                "/kmsProviders/gcp/email",
            )],
            good: vec![p("gcp", vec![])],
        },
        Case {
            code: codes::GCP_EMAIL_NOT_SA,
            bad: vec![(
                p(
                    "gcp",
                    vec![("/kmsProviders/gcp/email", json!("alice@example.com"))],
                ),
                "/kmsProviders/gcp/email",
            )],
            good: vec![p("gcp", vec![])],
        },
        Case {
            code: codes::KMIP_NO_PORT,
            bad: vec![(
                p(
                    "kmip",
                    vec![("/kmsProviders/kmip/endpoint", json!("kmip.example.com"))],
                ),
                "/kmsProviders/kmip/endpoint",
            )],
            good: vec![p("kmip", vec![])],
        },
        Case {
            code: codes::KMIP_KEY_ID,
            bad: vec![(
                p("kmip", vec![("/target/masterKey/keyId", json!(" 12 "))]),
                "/target/masterKey/keyId",
            )],
            good: vec![p(
                "kmip",
                vec![(
                    "/target/masterKey/keyId",
                    json!("8f2b5c1e-77aa-4e0f-9a31-2c1d4b6e0f9a"),
                )],
            )],
        },
        Case {
            code: codes::KMIP_NO_KEY_ID,
            bad: vec![(
                p("kmip", vec![("/target/masterKey/keyId", Value::Null)]),
                mk,
            )],
            good: vec![p("kmip", vec![])],
        },
        Case {
            code: codes::KMIP_CLIENT_CERT,
            bad: vec![
                (
                    p("kmip", vec![("/tlsOptions", Value::Null)]),
                    "/tlsOptions/kmip/tlsCertificateKeyFile",
                ),
                (
                    p(
                        "kmip",
                        vec![("/tlsOptions/kmip/tlsCertificateKeyFile", Value::Null)],
                    ),
                    "/tlsOptions/kmip/tlsCertificateKeyFile",
                ),
            ],
            good: vec![p("kmip", vec![])],
        },
        Case {
            code: codes::LOC_EXPOSED,
            bad: vec![(
                p("aws", vec![("/kmsProviders/local/exposed", json!(true))]),
                "/kmsProviders/local/exposed",
            )],
            good: vec![p(
                "aws",
                vec![("/kmsProviders/local/exposed", json!(false))],
            )],
        },
        Case {
            code: codes::RW_FILTER_JSON,
            bad: vec![(
                p(
                    "aws",
                    vec![("/rewrap/filter", json!("{masterKey.provider: 'local'}"))],
                ),
                "/rewrap/filter",
            )],
            good: vec![p(
                "aws",
                vec![(
                    "/rewrap/filter",
                    json!(
                        "{\"_id\": {\"$binary\": {\"base64\": \"AAAAAAAAAAAAAAAAAAAAAA==\", \"subType\": \"04\"}}}"
                    ),
                )],
            )],
        },
        Case {
            code: codes::RW_FILTER_OBJECT,
            bad: vec![(
                p("aws", vec![("/rewrap/filter", json!("[1, 2]"))]),
                "/rewrap/filter",
            )],
            good: vec![p("aws", vec![("/rewrap/filter", json!("{}"))])],
        },
        Case {
            code: codes::RW_FILTER_OPERATOR,
            bad: vec![(
                p(
                    "aws",
                    vec![(
                        "/rewrap/filter",
                        json!("{\"keyAltNames\": {\"$exist\": true}}"),
                    )],
                ),
                "/rewrap/filter",
            )],
            good: vec![p(
                "aws",
                vec![(
                    "/rewrap/filter",
                    json!("{\"keyAltNames\": {\"$exists\": true}}"),
                )],
            )],
        },
        Case {
            code: codes::RW_BATCH_SIZE,
            bad: vec![
                (
                    p("aws", vec![("/rewrap/batchSize", json!(0))]),
                    "/rewrap/batchSize",
                ),
                (
                    p("aws", vec![("/rewrap/batchSize", json!(1_000_000))]),
                    "/rewrap/batchSize",
                ),
            ],
            good: vec![
                p("aws", vec![("/rewrap/batchSize", json!(1))]),
                p("aws", vec![("/rewrap/batchSize", json!(10_000))]),
            ],
        },
        Case {
            code: codes::RW_CONCURRENCY,
            bad: vec![(
                p("aws", vec![("/rewrap/concurrency", json!(-1))]),
                "/rewrap/concurrency",
            )],
            good: vec![p("aws", vec![("/rewrap/concurrency", json!(256))])],
        },
        Case {
            code: codes::RW_KMS_RATE,
            bad: vec![
                (
                    p("aws", vec![("/rewrap/kmsRate", json!(0))]),
                    "/rewrap/kmsRate",
                ),
                (
                    p("aws", vec![("/rewrap/kmsRate", json!(100_001))]),
                    "/rewrap/kmsRate",
                ),
            ],
            good: vec![p("aws", vec![("/rewrap/kmsRate", json!(400))])],
        },
        Case {
            code: codes::RW_PROOF_SAMPLE,
            bad: vec![(
                p("aws", vec![("/rewrap/reEncryptProofOneIn", json!(0))]),
                "/rewrap/reEncryptProofOneIn",
            )],
            good: vec![p("aws", vec![("/rewrap/reEncryptProofOneIn", json!(100))])],
        },
        Case {
            code: codes::ROT_NAMESPACE,
            bad: vec![
                (
                    p(
                        "aws",
                        vec![("/rotate/collections", json!(["app.customers", "customers"]))],
                    ),
                    "/rotate/collections/1",
                ),
                (
                    p(
                        "aws",
                        vec![("/rotate/collections", json!(["app.", "a b.c"]))],
                    ),
                    "/rotate/collections/0",
                ),
                (
                    p("aws", vec![("/rotate/collections", json!(["app.x", " "]))]),
                    "/rotate/collections/1",
                ),
            ],
            good: vec![
                p(
                    "aws",
                    vec![(
                        "/rotate/collections",
                        json!(["app.customers", "app.orders.2024"]),
                    )],
                ),
                p("aws", vec![("/rotate", json!({}))]),
            ],
        },
        Case {
            code: codes::ROT_KEY_VAULT,
            bad: vec![(
                p(
                    "aws",
                    vec![("/rotate/collections", json!(["encryption.__keyVault"]))],
                ),
                "/rotate/collections/0",
            )],
            good: vec![p(
                "aws",
                vec![
                    ("/keyVault/namespace", json!("kv.keys")),
                    ("/rotate/collections", json!(["encryption.__keyVault"])),
                ],
            )],
        },
        Case {
            code: codes::ROT_SYSTEM,
            bad: vec![
                (
                    p("aws", vec![("/rotate/collections", json!(["admin.users"]))]),
                    "/rotate/collections/0",
                ),
                (
                    p(
                        "aws",
                        vec![("/rotate/collections", json!(["app.x", "local.oplog.rs"]))],
                    ),
                    "/rotate/collections/1",
                ),
                (
                    p(
                        "aws",
                        vec![("/rotate/collections", json!(["config.chunks"]))],
                    ),
                    "/rotate/collections/0",
                ),
                (
                    p(
                        "aws",
                        vec![("/rotate/collections", json!(["app.system.views"]))],
                    ),
                    "/rotate/collections/0",
                ),
            ],
            good: vec![p(
                "aws",
                vec![(
                    "/rotate/collections",
                    json!(["administration.users", "app.systems"]),
                )],
            )],
        },
        Case {
            code: codes::ROT_DUPLICATE,
            bad: vec![(
                p(
                    "aws",
                    vec![("/rotate/collections", json!(["app.a", "app.b", "app.a"]))],
                ),
                "/rotate/collections/2",
            )],
            good: vec![p(
                "aws",
                vec![("/rotate/collections", json!(["app.a", "app.A"]))],
            )],
        },
        Case {
            code: codes::ROT_EMPTY,
            bad: vec![(
                p("aws", vec![("/rotate/collections", json!([]))]),
                "/rotate/collections",
            )],
            good: vec![p("aws", vec![("/rotate/collections", json!(["app.a"]))])],
        },
        Case {
            code: codes::KV_URI_MALFORMED,
            bad: vec![
                (
                    p(
                        "aws",
                        vec![(
                            "/keyVault/uri",
                            json!("mongodb+srv://cluster0.example.net:27017/"),
                        )],
                    ),
                    "/keyVault/uri",
                ),
                (
                    p("aws", vec![("/keyVault/uri", json!("mongodb://a:70000/"))]),
                    "/keyVault/uri",
                ),
                (
                    p(
                        "aws",
                        vec![(
                            "/retire/deployments/orders",
                            json!("mongodb+srv://a.example.net,b.example.net"),
                        )],
                    ),
                    "/retire/deployments/orders",
                ),
            ],
            good: vec![
                p(
                    "aws",
                    vec![(
                        "/keyVault/uri",
                        json!(
                            "mongodb+srv://cluster0.abcde.mongodb.net/?retryWrites=true&w=majority"
                        ),
                    )],
                ),
                p(
                    "aws",
                    vec![(
                        "/keyVault/uri",
                        json!("mongodb://a:27017,b:27017/?replicaSet=rs0"),
                    )],
                ),
            ],
        },
        Case {
            code: codes::KV_URI_WEAK_READ,
            bad: vec![(
                p(
                    "aws",
                    vec![(
                        "/keyVault/uri",
                        json!("mongodb://a/?readPreference=secondary"),
                    )],
                ),
                "/keyVault/uri",
            )],
            good: vec![p(
                "aws",
                vec![(
                    "/keyVault/uri",
                    json!("mongodb://a/?readPreference=primary"),
                )],
            )],
        },
        Case {
            code: codes::KV_URI_WEAK_WRITE,
            bad: vec![
                (
                    p("aws", vec![("/keyVault/uri", json!("mongodb://a/?w=1"))]),
                    "/keyVault/uri",
                ),
                (
                    p(
                        "aws",
                        vec![("/keyVault/uri", json!("mongodb://a/?journal=false"))],
                    ),
                    "/keyVault/uri",
                ),
            ],
            good: vec![p(
                "aws",
                vec![(
                    "/keyVault/uri",
                    json!("mongodb://a/?w=majority&journal=true"),
                )],
            )],
        },
        Case {
            code: codes::KV_URI_UNSUPPORTED,
            bad: vec![(
                p(
                    "aws",
                    vec![("/keyVault/uri", json!("mongodb://a/?authMechanism=GSSAPI"))],
                ),
                "/keyVault/uri",
            )],
            good: vec![p(
                "aws",
                vec![(
                    "/keyVault/uri",
                    json!("mongodb://a/?authMechanism=MONGODB-AWS&compressors=zstd"),
                )],
            )],
        },
        Case {
            code: codes::AZ_ENDPOINT_TYPO,
            bad: vec![(
                p(
                    "azure",
                    vec![(AZEP, json!("https://contoso-kv.vault.azure.com/"))],
                ),
                AZEP,
            )],
            good: vec![
                p("azure", vec![(AZEP, json!("contoso-kv.vault.azure.net"))]),
                p(
                    "azure",
                    vec![(AZEP, json!("kv.privatelink.example.internal"))],
                ),
            ],
        },
        Case {
            code: codes::GCP_LOCATION_AWS,
            bad: vec![(
                p(
                    "gcp",
                    vec![("/target/masterKey/location", json!("us-east-1"))],
                ),
                "/target/masterKey/location",
            )],
            good: vec![
                p(
                    "gcp",
                    vec![("/target/masterKey/location", json!("us-east1"))],
                ),
                p("gcp", vec![("/target/masterKey/location", json!("global"))]),
                p(
                    "gcp",
                    vec![("/target/masterKey/location", json!("nam-eur-asia1"))],
                ),
            ],
        },
        Case {
            code: codes::KMIP_SCHEME,
            bad: vec![(
                p(
                    "kmip",
                    vec![(
                        "/kmsProviders/kmip/endpoint",
                        json!("https://kmip.example.com:5696"),
                    )],
                ),
                "/kmsProviders/kmip/endpoint",
            )],
            good: vec![p(
                "kmip",
                vec![(
                    "/kmsProviders/kmip/endpoint",
                    json!("kmip.example.com:5696"),
                )],
            )],
        },
        Case {
            code: codes::RW_KMIP_REPLACE,
            bad: vec![
                (
                    p("aws", vec![("/rewrap/kmipReplaceKeyIds", json!(["1"]))]),
                    "/rewrap/kmipReplaceKeyIds",
                ),
                (
                    p(
                        "kmip",
                        vec![("/rewrap/kmipReplaceKeyIds", json!(["1", "2"]))],
                    ),
                    "/rewrap/kmipReplaceKeyIds",
                ),
            ],
            good: vec![p(
                "kmip",
                vec![
                    ("/target/masterKey/keyId", Value::Null),
                    ("/rewrap/kmipReplaceKeyIds", json!(["1", "2"])),
                ],
            )],
        },
        Case {
            code: codes::RET_NAME,
            bad: vec![(
                p(
                    "aws",
                    vec![("/retire/deployments/key vault", json!("env:X"))],
                ),
                "/retire/deployments/key vault",
            )],
            good: vec![p(
                "aws",
                vec![("/retire/deployments/orders_eu-1", json!("env:X"))],
            )],
        },
        Case {
            code: codes::RET_UNCONFIRMED,
            bad: vec![
                (
                    p("aws", vec![("/rotate/collections", json!(["app.a"]))]),
                    "/retire/allDeploymentsListed",
                ),
                (
                    p("aws", vec![("/kmsProviders/local/exposed", json!(true))]),
                    "/retire/allDeploymentsListed",
                ),
            ],
            good: vec![
                p("aws", vec![]),
                p(
                    "aws",
                    vec![
                        ("/rotate/collections", json!(["app.a"])),
                        ("/retire/allDeploymentsListed", json!(true)),
                    ],
                ),
            ],
        },
        Case {
            code: codes::AUD_NAMESPACE,
            bad: vec![
                (
                    p("aws", vec![("/audit/collection", json!("audit"))]),
                    "/audit/collection",
                ),
                (
                    p("aws", vec![("/audit/collection", json!("local.audit"))]),
                    "/audit/collection",
                ),
            ],
            good: vec![p(
                "aws",
                vec![("/audit/collection", json!("keyshift.audit"))],
            )],
        },
        Case {
            code: codes::AUD_KEY_VAULT,
            bad: vec![(
                p(
                    "aws",
                    vec![("/audit/collection", json!("encryption.__keyVault"))],
                ),
                "/audit/collection",
            )],
            good: vec![p(
                "aws",
                vec![("/audit/file", json!("/var/log/keyshift/audit.jsonl"))],
            )],
        },
    ]
}

const AWSKEY: &str = "/target/masterKey/key";
const AZEP: &str = "/target/masterKey/keyVaultEndpoint";

#[test]
fn every_base_config_is_clean() {
    for kind in ["aws", "azure", "gcp", "kmip"] {
        let d = check_value(&base(kind)).diagnostics;
        assert!(d.is_empty(), "{kind}: {d:#?}");
    }
}

/// Runs every row for one code: each bad input raises it at its path (with a message
/// and a hint), and no good input raises it.
fn run_code(code: &str) {
    let rows: Vec<Case> = cases().into_iter().filter(|c| c.code == code).collect();
    assert!(!rows.is_empty(), "no table row for {code}");
    for case in rows {
        for (input, path) in &case.bad {
            let d = run(input);
            assert!(
                d.iter().any(|d| d.code == case.code && d.path == *path),
                "{} expected at {path:?}, got {d:#?}",
                case.code
            );
            for diag in &d {
                assert!(
                    !diag.message.is_empty() && !diag.hint.is_empty(),
                    "{diag:?}"
                );
            }
        }
        for input in &case.good {
            let d = run(input);
            assert!(
                !d.iter().any(|d| d.code == case.code),
                "{} unexpected: {d:#?}",
                case.code
            );
        }
    }
}

/// One test per diagnostic code, named after it.
macro_rules! per_code {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            #[allow(non_snake_case)]
            fn $name() {
                run_code(codes::$name);
            }
        )*
    };
}

per_code!(
    SYNTAX,
    UNKNOWN_FIELD,
    WRONG_TYPE,
    MISSING_FIELD,
    EMPTY_VALUE,
    LITERAL_SECRET,
    BAD_SECRET_REF,
    KV_NAMESPACE,
    KV_URI,
    PRV_UNKNOWN_TYPE,
    PRV_BAD_NAME,
    PRV_NONE,
    PRV_NAMED_ON_DEMAND,
    PRV_PARTIAL_CREDENTIALS,
    NET_ENDPOINT,
    TLS_UNKNOWN_PROVIDER,
    TLS_INSECURE,
    TLS_LOCAL,
    TGT_UNKNOWN_PROVIDER,
    TGT_ONLY_PROVIDER,
    TGT_LOCAL,
    TGT_SAME_AS_SOURCE,
    AWS_BAD_ARN,
    AWS_NOT_ARN,
    AWS_PARTITION,
    AWS_REGION,
    AWS_REGION_MISMATCH,
    AWS_ACCOUNT,
    AWS_KEY_ID,
    AWS_ALIAS,
    AWS_PARTITION_REGION,
    AZ_ENDPOINT,
    AZ_ENDPOINT_DOMAIN,
    AZ_KEY_NAME,
    AZ_KEY_VERSION,
    AZ_TENANT,
    AZ_CLIENT,
    GCP_PROJECT,
    GCP_LOCATION,
    GCP_KEY_RING,
    GCP_KEY_NAME,
    GCP_KEY_VERSION,
    GCP_EMAIL,
    GCP_EMAIL_NOT_SA,
    KMIP_NO_PORT,
    KMIP_KEY_ID,
    KMIP_NO_KEY_ID,
    KMIP_CLIENT_CERT,
    LOC_EXPOSED,
    RW_FILTER_JSON,
    RW_FILTER_OBJECT,
    RW_BATCH_SIZE,
    RW_CONCURRENCY,
    RW_KMS_RATE,
    RW_PROOF_SAMPLE,
    RW_FILTER_OPERATOR,
    ROT_NAMESPACE,
    ROT_KEY_VAULT,
    ROT_SYSTEM,
    ROT_DUPLICATE,
    ROT_EMPTY,
    KV_URI_MALFORMED,
    KV_URI_WEAK_READ,
    KV_URI_WEAK_WRITE,
    KV_URI_UNSUPPORTED,
    RET_NAME,
    RET_UNCONFIRMED,
    AUD_NAMESPACE,
    AUD_KEY_VAULT,
    RW_KMIP_REPLACE,
    AZ_ENDPOINT_TYPO,
    AZ_NO_KEY_VERSION,
    GCP_LOCATION_AWS,
    KMIP_SCHEME,
);

#[test]
fn every_code_has_a_table_row() {
    let tested: BTreeSet<&str> = cases().iter().map(|c| c.code).collect();
    // KS-LOC-001 is raised on bytes, not config: see local_key_bytes below.
    // KS-LOC-003 and KS-CFG-006 are raised by the native shell, which reads the files
    // (native/tests/cli_e2e.rs, native/tests/bad_input.rs).
    // KS-INV-* are raised by `keyshift inspect` on key documents, not on the config
    // (core/tests/lints.rs).
    for (code, _) in codes::ALL {
        if code.starts_with("KS-INV-") {
            continue;
        }
        if *code == codes::LOC_KEY_SIZE
            || *code == codes::LOC_KEY_UNREADABLE
            || *code == codes::FILE_UNREADABLE
        {
            continue;
        }
        assert!(tested.contains(code), "no table row for {code}");
    }
}

#[test]
fn local_key_bytes() {
    use base64::Engine as _;
    use keyshift_core::validate::validate_local_key_bytes;
    let raw: Vec<u8> = (0..96u8).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
    assert_eq!(validate_local_key_bytes(&raw).unwrap().0.to_vec(), raw);
    assert_eq!(
        validate_local_key_bytes(b64.as_bytes()).unwrap().0.to_vec(),
        raw
    );
    let with_newline = format!("{b64}\n");
    assert!(validate_local_key_bytes(with_newline.as_bytes()).is_ok());
    for bad in [&raw[..95], &[0u8; 97][..], b"", b"not base64 at all!"] {
        let d = validate_local_key_bytes(bad).unwrap_err();
        assert_eq!(d.code, codes::LOC_KEY_SIZE);
        assert_eq!(d.path, "/kmsProviders/local/key");
        assert_eq!(d.severity, Severity::Error);
    }
    let short = base64::engine::general_purpose::STANDARD.encode([1u8; 64]);
    let d = validate_local_key_bytes(short.as_bytes()).unwrap_err();
    assert!(d.message.contains("64 bytes"), "{}", d.message);
    assert!(!d.message.contains(&short));
    assert_eq!(
        format!("{:?}", validate_local_key_bytes(&raw).unwrap()),
        "LocalKey(<96 bytes redacted>)"
    );
}

#[test]
fn did_you_mean_is_in_the_message() {
    let d = run(&p(
        "aws",
        vec![("/kmsProviders/aws/acessKeyId", json!("env:X"))],
    ));
    let unknown = d.iter().find(|d| d.code == codes::UNKNOWN_FIELD).unwrap();
    assert!(
        unknown.message.contains("did you mean `accessKeyId`"),
        "{}",
        unknown.message
    );
    let d = run(&p(
        "aws",
        vec![
            ("/target/provider", json!("aws:prd")),
            (
                "/kmsProviders/aws:prod",
                json!({"accessKeyId": "env:A", "secretAccessKey": "env:B"}),
            ),
        ],
    ));
    let t = d
        .iter()
        .find(|d| d.code == codes::TGT_UNKNOWN_PROVIDER)
        .unwrap();
    assert!(t.hint.contains("`aws:prod`"), "{}", t.hint);
}

#[test]
fn secrets_never_appear_in_diagnostics() {
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let d = run(&p(
        "aws",
        vec![("/kmsProviders/aws/secretAccessKey", json!(secret))],
    ));
    for diag in d {
        assert!(!diag.message.contains(secret) && !diag.hint.contains(secret));
    }
}

#[test]
fn design_example_is_clean() {
    let text = r#"
[keyVault]
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
"#;
    let parsed = check_toml(text);
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    assert_eq!(parsed.config.source_providers(), vec!["local"]);
}
