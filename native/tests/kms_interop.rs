//! keyshift's KMS round trips (rustls, libmongocrypt's requests, concurrency) against
//! each KMS stand-in, judged by the oracle: keyshift creates a DEK under the provider's
//! master key and encrypts with it; PyMongo holding only that provider decrypts.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use bson::spec::BinarySubtype;
use bson::{Bson, Document, RawBson, doc};
use keyshift::ctx_runner::Keys;
use keyshift::kms_io::KmsIo;
use keyshift::kms_tls::{KmsTls, TlsOptions};
use keyshift::{crypt, ctx_runner};
use mongocrypt::ctx::Algorithm;

fn providers(w: &HashMap<String, String>) -> Document {
    let v = |k: &str| common::world_var(w, k);
    doc! {
        "aws": {"accessKeyId": v("KS_AWS_ACCESS_KEY_ID"), "secretAccessKey": v("KS_AWS_SECRET_ACCESS_KEY")},
        "azure": {
            "tenantId": v("KS_AZURE_TENANT_ID"), "clientId": v("KS_AZURE_CLIENT_ID"),
            "clientSecret": v("KS_AZURE_CLIENT_SECRET"),
            "identityPlatformEndpoint": v("KS_AZURE_IDENTITY_ENDPOINT"),
        },
        "gcp": {"email": v("KS_GCP_EMAIL"), "privateKey": v("KS_GCP_PRIVATE_KEY"), "endpoint": v("KS_GCP_ENDPOINT")},
        "kmip": {"endpoint": v("KS_KMIP_ENDPOINT")},
    }
}

fn master_key(w: &HashMap<String, String>, provider: &str, delegated: bool) -> Document {
    let v = |k: &str| common::world_var(w, k);
    match provider {
        "aws" => {
            doc! {"provider": "aws", "region": v("KS_AWS_REGION"), "key": v("KS_AWS_KEY_ARN"), "endpoint": v("KS_AWS_ENDPOINT")}
        }
        "azure" => {
            doc! {"provider": "azure", "keyVaultEndpoint": v("KS_AZURE_VAULT_ENDPOINT"), "keyName": v("KS_AZURE_KEY_NAME"), "keyVersion": v("KS_AZURE_KEY_VERSION")}
        }
        "gcp" => doc! {
            "provider": "gcp", "projectId": v("KS_GCP_PROJECT_ID"), "location": v("KS_GCP_LOCATION"),
            "keyRing": v("KS_GCP_KEY_RING"), "keyName": v("KS_GCP_KEY_NAME"), "endpoint": v("KS_GCP_KMS_ENDPOINT"),
        },
        "kmip" if delegated => doc! {"provider": "kmip", "delegated": true},
        "kmip" => doc! {"provider": "kmip"},
        other => panic!("no stand-in for {other}"),
    }
}

fn kms_io(w: &HashMap<String, String>) -> KmsIo {
    let ca = PathBuf::from(common::world_var(w, "KS_CA_FILE"));
    let mut tls: HashMap<String, TlsOptions> = ["aws", "azure", "gcp"]
        .into_iter()
        .map(|p| {
            (
                p.to_string(),
                TlsOptions {
                    ca_file: Some(ca.clone()),
                    cert_key_file: None,
                    cert_key_password: None,
                },
            )
        })
        .collect();
    tls.insert(
        "kmip".into(),
        TlsOptions {
            ca_file: Some(PathBuf::from(common::world_var(w, "KS_KMIP_CA_FILE"))),
            cert_key_file: Some(PathBuf::from(common::world_var(w, "KS_KMIP_CLIENT_CERT"))),
            cert_key_password: None,
        },
    );
    KmsIo {
        tls: KmsTls::new(&tls).expect("TLS options of the test world"),
        concurrency: 8,
        timeout: Duration::from_secs(20),
        on_demand: None,
        pace: Default::default(),
    }
}

async fn keyshift_wraps_and_the_oracle_unwraps(provider: &str, delegated: bool) {
    let w = common::world();
    let db = common::unique(&format!("kms_{provider}"));
    let key_vault_ns = format!("{db}.__keyVault");
    let data_ns = format!("{db}.data");
    let client = common::mongo_client().await;
    let key_vault = client.database(&db).collection::<Document>("__keyVault");
    let crypt = crypt::build(&providers(&w)).expect("crypt with every provider");
    let kms = kms_io(&w);

    let ctx = crypt
        .ctx_builder()
        .key_encryption_key(&master_key(&w, provider, delegated))
        .unwrap()
        .build_datakey()
        .unwrap();
    let key_doc = ctx_runner::run(ctx, Keys::Vault(&key_vault.clone_with_type()), &kms)
        .await
        .unwrap_or_else(|e| panic!("{provider}: creating a DEK failed: {e}"));
    let key_doc = Document::try_from(key_doc.as_ref()).unwrap();
    assert_eq!(
        key_doc
            .get_document("masterKey")
            .unwrap()
            .get_str("provider")
            .unwrap(),
        provider
    );
    let Some(Bson::Binary(id)) = key_doc.get("_id").cloned() else {
        panic!("no _id in the new key");
    };
    key_vault.insert_one(key_doc).await.unwrap();

    let ctx = crypt
        .ctx_builder()
        .key_id(&id.bytes)
        .unwrap()
        .algorithm(Algorithm::Deterministic)
        .unwrap()
        .build_explicit_encrypt(RawBson::String(format!("secret under {provider}")))
        .unwrap();
    let out = ctx_runner::run(ctx, Keys::Vault(&key_vault.clone_with_type()), &kms)
        .await
        .unwrap_or_else(|e| panic!("{provider}: encrypting failed: {e}"));
    let ciphertext = Document::try_from(out.as_ref())
        .unwrap()
        .get("v")
        .cloned()
        .unwrap();
    assert!(matches!(&ciphertext, Bson::Binary(b) if b.subtype == BinarySubtype::Encrypted));
    let (data_db, data_coll) = data_ns.split_once('.').unwrap();
    client
        .database(data_db)
        .collection::<Document>(data_coll)
        .insert_one(doc! {"_id": 1, "v": ciphertext})
        .await
        .unwrap();

    let out = Command::new(common::python())
        .arg(common::repo_root().join("tests/interop/oracle_cli.py"))
        .args(["decrypt", "--id", "1", "--provider", provider])
        .args(["--uri", &common::world_var(&w, "KS_MONGODB_URI")])
        .args(["--key-vault", &key_vault_ns, "--coll", &data_ns])
        .output()
        .expect("run the oracle");
    assert!(
        out.status.success(),
        "{provider}: oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decrypted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decrypted["v"], format!("secret under {provider}"));
}

#[tokio::test]
async fn aws() {
    keyshift_wraps_and_the_oracle_unwraps("aws", false).await;
}

#[tokio::test]
async fn azure() {
    keyshift_wraps_and_the_oracle_unwraps("azure", false).await;
}

#[tokio::test]
async fn gcp() {
    keyshift_wraps_and_the_oracle_unwraps("gcp", false).await;
}

#[tokio::test]
async fn kmip() {
    keyshift_wraps_and_the_oracle_unwraps("kmip", false).await;
}

#[tokio::test]
async fn kmip_delegated() {
    keyshift_wraps_and_the_oracle_unwraps("kmip", true).await;
}

/// On-demand credentials: the provider is configured empty, and the token comes from the
/// cloud's metadata service stand-in, as on a VM with a managed identity / service account.
async fn on_demand_credentials_wrap_and_unwrap(provider: &str) {
    use keyshift::credentials::OnDemand;
    let w = common::world();
    let db = common::unique(&format!("ondemand_{provider}"));
    let client = common::mongo_client().await;
    let key_vault = client.database(&db).collection::<Document>("__keyVault");
    let mut kms = kms_io(&w);
    kms.on_demand = Some(std::sync::Arc::new(OnDemand::with_endpoints(
        vec![provider.to_string()],
        common::world_var(&w, "KS_AZURE_IMDS_ENDPOINT"),
        common::world_var(&w, "KS_GCP_METADATA_HOST"),
    )));
    let crypt = crypt::build(&doc! { provider: {} }).expect("crypt with an empty provider");
    let ctx = crypt
        .ctx_builder()
        .key_encryption_key(&master_key(&w, provider, false))
        .unwrap()
        .build_datakey()
        .unwrap();
    let key_doc = ctx_runner::run(ctx, Keys::Vault(&key_vault.clone_with_type()), &kms)
        .await
        .unwrap_or_else(|e| panic!("{provider} on demand: creating a DEK failed: {e}"));
    let key_doc = Document::try_from(key_doc.as_ref()).unwrap();
    key_vault.insert_one(key_doc.clone()).await.unwrap();
    // A fresh handle must ask for credentials again (the token comes from the cache).
    let crypt = crypt::build(&doc! { provider: {} }).unwrap();
    let raw = bson::RawDocumentBuf::try_from(&key_doc).unwrap();
    keyshift::rewrap::prove::readable(&crypt, &raw, &kms)
        .await
        .unwrap_or_else(|e| panic!("{provider} on demand: unwrapping failed: {}", e.why));
}

#[tokio::test]
async fn azure_managed_identity() {
    on_demand_credentials_wrap_and_unwrap("azure").await;
}

#[tokio::test]
async fn gcp_attached_service_account() {
    on_demand_credentials_wrap_and_unwrap("gcp").await;
}
