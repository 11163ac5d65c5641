//! The moves users make, end to end through the `keyshift` binary, each judged by the
//! oracle (PyMongo holding only the target provider): local → aws, azure, gcp, kmip
//! (plain and delegated); aws → gcp (one CMK to another); named providers
//! (`local:legacy` → `aws:prod`). Each also checks what must not change (keyAltNames,
//! creationDate, status) and what must (updateDate); the dry run leaves the key vault
//! byte-identical while doing the KMS round trips.

mod common;
mod stress;

use std::process::{Command, Output};

use bson::{Document, RawDocumentBuf, doc};
use futures_util::TryStreamExt;
use stress::Seeded;

fn seed(target: &str, extra: &[&str]) -> Seeded {
    let prefix = format!("move_{}", target.replace(':', "_"));
    stress::seed_with(&prefix, 12, 12, target, extra)
}

/// Runs `keyshift ARGS`, which must succeed.
fn keyshift_ok(d: &Seeded, args: &[&str]) -> Output {
    let out = d.keyshift(args);
    assert!(
        out.status.success(),
        "keyshift {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The oracle, holding only `provider`, decrypts every seeded sample.
fn oracle_reads_with_only(d: &Seeded, provider: &str) {
    if let Err(e) = d.oracle_reads(provider) {
        panic!("the oracle with only {provider} failed: {e}");
    }
}

/// What a move must keep and what it must change, key by key.
fn assert_moved(before: &[Document], after: &[Document], provider: &str) {
    assert_eq!(before.len(), after.len(), "no key lost or added");
    for (b, a) in before.iter().zip(after) {
        assert_eq!(b.get("_id"), a.get("_id"));
        for kept in ["keyAltNames", "creationDate", "status"] {
            assert_eq!(b.get(kept), a.get(kept), "{kept} must not change");
        }
        assert_ne!(b.get("keyMaterial"), a.get("keyMaterial"));
        assert!(a.get_datetime("updateDate").unwrap() > b.get_datetime("updateDate").unwrap());
        assert_eq!(
            a.get_document("masterKey")
                .unwrap()
                .get_str("provider")
                .unwrap(),
            provider
        );
    }
}

async fn local_to(target: &str, extra: &[&str]) {
    let d = seed(target, extra);
    let before = d.all_keys().await;
    keyshift_ok(&d, &["rewrap", "--dry-run"]);
    assert_eq!(d.all_keys().await, before, "a dry run writes nothing");
    keyshift_ok(&d, &["rewrap", "--yes"]);
    keyshift_ok(&d, &["verify"]);
    assert_moved(&before, &d.all_keys().await, target);
    oracle_reads_with_only(&d, target);
}

#[tokio::test]
async fn local_to_azure() {
    local_to("azure", &[]).await;
}

#[tokio::test]
async fn local_to_gcp() {
    local_to("gcp", &[]).await;
}

#[tokio::test]
async fn local_to_kmip() {
    local_to("kmip", &[]).await;
}

#[tokio::test]
async fn local_to_kmip_delegated() {
    local_to("kmip", &["--kmip-delegated"]).await;
}

#[tokio::test]
async fn dry_run_is_byte_identical_yet_talks_to_the_kms() {
    let d = seed("aws", &[]);
    let world = common::world();
    let state = || -> serde_json::Value {
        let url = format!("{}/state", common::world_var(&world, "KS_AWS_CONTROL_URL"));
        let out = Command::new("curl")
            .args([
                "-sS",
                "--fail",
                "--cacert",
                &common::world_var(&world, "KS_CA_FILE"),
                &url,
            ])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let calls = |s: &serde_json::Value, action: &str| s["counters"][action].as_u64().unwrap_or(0);
    let raw_before: Vec<Vec<u8>> = raw_keys(&d).await;
    let s0 = state();
    keyshift_ok(&d, &["rewrap", "--dry-run"]);
    let s1 = state();
    assert_eq!(
        raw_keys(&d).await,
        raw_before,
        "byte-identical after a dry run"
    );
    // 12 keys: each wrapped by the target (Encrypt) and proven (Decrypt).
    assert!(
        calls(&s1, "Encrypt") >= calls(&s0, "Encrypt") + 12,
        "{s0} -> {s1}"
    );
    assert!(
        calls(&s1, "Decrypt") >= calls(&s0, "Decrypt") + 12,
        "{s0} -> {s1}"
    );
}

async fn raw_keys(d: &Seeded) -> Vec<Vec<u8>> {
    let vault = d.key_vault().await.clone_with_type::<RawDocumentBuf>();
    let mut cursor = vault.find(doc! {}).sort(doc! {"_id": 1}).await.unwrap();
    let mut out = Vec::new();
    while let Some(k) = cursor.try_next().await.unwrap() {
        out.push(k.as_bytes().to_vec());
    }
    out
}

/// The `[kmsProviders.X]` and `[tlsOptions.X]` sections of a seeded keyshift.toml.
fn provider_sections(toml: &str, provider: &str) -> String {
    let mut out = String::new();
    let mut keep = false;
    for line in toml.lines() {
        if line.starts_with('[') {
            keep = line == format!("[kmsProviders.{provider}]")
                || line == format!("[tlsOptions.{provider}]");
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn target_section(toml: &str) -> String {
    let start = toml.find("[target]").unwrap();
    let end = toml[start..]
        .find("[rewrap]")
        .map_or(toml.len(), |e| start + e);
    toml[start..end].to_string()
}

#[tokio::test]
async fn aws_to_gcp_moves_between_two_kms_keys() {
    let d = seed("aws", &[]);
    keyshift_ok(&d, &["rewrap", "--yes"]);
    let before = d.all_keys().await;
    // The second move's config: aws as the source, gcp (from a gcp-seeded config) as target.
    let gcp = seed("gcp", &[]);
    let aws_toml = std::fs::read_to_string(d.dir.join("keyshift.toml")).unwrap();
    let gcp_toml = std::fs::read_to_string(gcp.dir.join("keyshift.toml")).unwrap();
    let head = &aws_toml[..aws_toml.find("[kmsProviders.local]").unwrap()];
    let config = format!(
        "{head}{}{}{}",
        provider_sections(&aws_toml, "aws"),
        provider_sections(&gcp_toml, "gcp"),
        target_section(&gcp_toml)
    );
    std::fs::write(d.dir.join("to-gcp.toml"), config).unwrap();
    let mut second = Seeded {
        dir: d.dir.clone(),
        db: d.db.clone(),
        key_vault_ns: d.key_vault_ns.clone(),
        env: d.env.clone(),
        wrapper: None,
    };
    second.env.extend(gcp.env.clone());
    keyshift_ok(&second, &["check", "-c", "to-gcp.toml"]);
    keyshift_ok(&second, &["rewrap", "-c", "to-gcp.toml", "--yes"]);
    keyshift_ok(&second, &["verify", "-c", "to-gcp.toml"]);
    assert_moved(&before, &second.all_keys().await, "gcp");
    oracle_reads_with_only(&second, "gcp");
}

#[tokio::test]
async fn named_providers_local_legacy_to_aws_prod() {
    let d = seed("aws", &[]);
    // Label the keys as a named local provider (the same 96 bytes open them).
    d.key_vault()
        .await
        .update_many(
            doc! {},
            doc! {"$set": {"masterKey.provider": "local:legacy"}},
        )
        .await
        .unwrap();
    let before = d.all_keys().await;
    let toml = std::fs::read_to_string(d.dir.join("keyshift.toml")).unwrap();
    let named = toml
        .replace("[kmsProviders.local]", "[kmsProviders.\"local:legacy\"]")
        .replace("[kmsProviders.aws]", "[kmsProviders.\"aws:prod\"]")
        .replace("[tlsOptions.aws]", "[tlsOptions.\"aws:prod\"]")
        .replace("provider = \"aws\"", "provider = \"aws:prod\"");
    std::fs::write(d.dir.join("named.toml"), named).unwrap();
    keyshift_ok(&d, &["check", "-c", "named.toml"]);
    keyshift_ok(&d, &["rewrap", "-c", "named.toml", "--yes"]);
    keyshift_ok(&d, &["verify", "-c", "named.toml"]);
    assert_moved(&before, &d.all_keys().await, "aws:prod");
    oracle_reads_with_only(&d, "aws:prod");
}

/// The world's KMIP client key, encrypted (PKCS#8, PBES2, as `openssl pkcs8 -topk8`
/// or Python's BestAvailableEncryption write it), in one PEM with its certificate.
fn encrypted_kmip_bundle(d: &Seeded, password: &str) -> std::path::PathBuf {
    let world = common::world();
    let out = d.dir.join("kmip-client-encrypted.pem");
    let script = r#"
import sys
from cryptography.hazmat.primitives import serialization
key_pem, cert_pem, password, out = sys.argv[1:5]
key = serialization.load_pem_private_key(open(key_pem, "rb").read(), None)
enc = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                        serialization.BestAvailableEncryption(password.encode()))
assert b"ENCRYPTED PRIVATE KEY" in enc
open(out, "wb").write(open(cert_pem, "rb").read() + enc)
"#;
    let status = Command::new(common::python())
        .args(["-c", script])
        .arg(common::world_var(&world, "KS_KMIP_CLIENT_KEY_PEM"))
        .arg(common::world_var(&world, "KS_KMIP_CLIENT_CERT_PEM"))
        .arg(password)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    out
}

#[tokio::test]
async fn kmip_with_an_encrypted_client_key_and_its_password() {
    let mut d = seed("kmip", &[]);
    let password = "kmip-key-passw0rd-not-shown";
    let bundle = encrypted_kmip_bundle(&d, password);
    let toml_path = d.dir.join("keyshift.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    let plain_bundle = common::world_var(&common::world(), "KS_KMIP_CLIENT_CERT");
    assert!(toml.contains(&plain_bundle), "{toml}");
    let encrypted = toml.replace(&plain_bundle, bundle.to_str().unwrap());
    let before = d.all_keys().await;
    let stop_with = |d: &Seeded, expect: &str| {
        let out = d.keyshift(&["rewrap", "--yes"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expect), "{stderr}");
        assert!(!stderr.contains(password), "{stderr}");
    };

    // The key is encrypted and no password is configured: say so.
    std::fs::write(&toml_path, &encrypted).unwrap();
    stop_with(&d, "set tlsCertificateKeyFilePassword");
    // A wrong password.
    let with_password = encrypted.replace(
        "[tlsOptions.kmip]\n",
        "[tlsOptions.kmip]\ntlsCertificateKeyFilePassword = \"env:KMIP_KEY_PASSWORD\"\n",
    );
    assert_ne!(with_password, encrypted, "{encrypted}");
    std::fs::write(&toml_path, &with_password).unwrap();
    d.env.insert("KMIP_KEY_PASSWORD".into(), "wrong".into());
    stop_with(&d, "does not open with tlsCertificateKeyFilePassword");
    assert_eq!(d.all_keys().await, before, "nothing written");

    // The right one: the move goes through, and the oracle reads every key via KMIP.
    d.env.insert("KMIP_KEY_PASSWORD".into(), password.into());
    let out = keyshift_ok(&d, &["rewrap", "--yes"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains(password));
    keyshift_ok(&d, &["verify"]);
    assert_moved(&before, &d.all_keys().await, "kmip");
    oracle_reads_with_only(&d, "kmip");
}

/// KMIP without `keyId`: the server creates an object per DEK, so any key on it counts
/// as under the target and reruns converge; `kmipReplaceKeyIds` moves keys off listed
/// objects onto new ones, and that converges too.
#[tokio::test]
async fn kmip_keys_move_off_listed_objects_onto_new_ones() {
    let d = seed("kmip", &[]);
    keyshift_ok(&d, &["rewrap", "--yes"]);
    let key_ids = |keys: &[Document]| -> Vec<String> {
        keys.iter()
            .map(|k| {
                k.get_document("masterKey")
                    .unwrap()
                    .get_str("keyId")
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let first = key_ids(&d.all_keys().await);
    let again = stress::json_of(
        &["rewrap"],
        &keyshift_ok(&d, &["rewrap", "--yes", "--json"]),
        0,
    );
    assert_eq!(
        again["rewrapped"], 0,
        "any object of the server is the target: {again}"
    );

    let toml_path = d.dir.join("keyshift.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    let list = first
        .iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        &toml_path,
        toml.replace(
            "[rewrap]\n",
            &format!("[rewrap]\nkmipReplaceKeyIds = [{list}]\n"),
        ),
    )
    .unwrap();
    keyshift_ok(&d, &["check"]);
    let moved = stress::json_of(
        &["rewrap"],
        &keyshift_ok(&d, &["rewrap", "--yes", "--json"]),
        0,
    );
    assert_eq!(moved["rewrapped"], 12, "{moved}");
    let second = key_ids(&d.all_keys().await);
    assert!(
        second.iter().all(|k| !first.contains(k)),
        "{first:?} -> {second:?}"
    );
    let rerun = stress::json_of(
        &["rewrap"],
        &keyshift_ok(&d, &["rewrap", "--yes", "--json"]),
        0,
    );
    assert_eq!(rerun["rewrapped"], 0, "converges: {rerun}");
    keyshift_ok(&d, &["verify"]);
    oracle_reads_with_only(&d, "kmip");
}

/// aws -> gcp with some keys under an AWS key that has since been disabled: rewrap
/// writes nothing, names every such key (text and JSON) with its masterKey and the
/// KMS's answer, and suggests the filter that moves the rest, which then works.
#[tokio::test]
async fn keys_the_source_cannot_unwrap_are_each_named_and_the_rest_can_move() {
    let d = seed("aws", &[]);
    let world = common::world();
    let control = common::world_var(&world, "KS_AWS_CONTROL_URL");
    let created: serde_json::Value =
        serde_json::from_str(&stress::https_control(&format!("{control}/create"), "{}")).unwrap();
    let doomed = created["arn"].as_str().unwrap().to_string();
    let aws_toml = std::fs::read_to_string(d.dir.join("keyshift.toml")).unwrap();
    let good = common::world_var(&world, "KS_AWS_KEY_ARN");
    // Keys with a keyAltName (every fourth: 3 of 12) under the key to be disabled, the
    // rest under the good one.
    let to_doomed = aws_toml.replace(&good, &doomed).replace(
        "[rewrap]\n",
        "[rewrap]\nfilter = '{\"keyAltNames\": {\"$exists\": true}}'\n",
    );
    std::fs::write(d.dir.join("to-doomed.toml"), to_doomed).unwrap();
    keyshift_ok(&d, &["rewrap", "-c", "to-doomed.toml", "--yes"]);
    let local_only = aws_toml.replace(
        "[rewrap]\n",
        "[rewrap]\nfilter = '{\"masterKey.provider\": \"local\"}'\n",
    );
    std::fs::write(d.dir.join("to-good.toml"), local_only).unwrap();
    keyshift_ok(&d, &["rewrap", "-c", "to-good.toml", "--yes"]);
    stress::https_control(
        &format!("{control}/disable"),
        &format!(r#"{{"keyId": "{doomed}"}}"#),
    );

    let gcp = seed("gcp", &[]);
    let gcp_toml = std::fs::read_to_string(gcp.dir.join("keyshift.toml")).unwrap();
    let head = &aws_toml[..aws_toml.find("[kmsProviders.local]").unwrap()];
    let config = format!(
        "{head}{}{}{}[rewrap]\nbackupDir = \"keyshift-backups\"\n",
        provider_sections(&aws_toml, "aws"),
        provider_sections(&gcp_toml, "gcp"),
        target_section(&gcp_toml)
    );
    std::fs::write(d.dir.join("to-gcp.toml"), &config).unwrap();
    let mut second = Seeded {
        dir: d.dir.clone(),
        db: d.db.clone(),
        key_vault_ns: d.key_vault_ns.clone(),
        env: d.env.clone(),
        wrapper: None,
    };
    second.env.extend(gcp.env.clone());
    let before = d.all_keys().await;
    let backups_before = d.backups().len();

    let out = second.keyshift(&["rewrap", "-c", "to-gcp.toml", "--yes", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let named = doc["unreadableSourceKeys"].as_array().unwrap();
    assert_eq!(named.len(), 3, "{doc}");
    for k in named {
        assert_eq!(k["masterKey"]["key"], doomed.as_str(), "{k}");
        assert!(
            k["error"].as_str().unwrap().contains("DisabledException"),
            "{k}"
        );
    }
    let doomed_ids: Vec<String> = before
        .iter()
        .filter(|k| {
            k.get_document("masterKey").unwrap().get_str("key").ok() == Some(doomed.as_str())
        })
        .map(|k| match k.get("_id") {
            Some(bson::Bson::Binary(b)) => {
                bson::Uuid::from_bytes(b.bytes.clone().try_into().unwrap()).to_string()
            }
            _ => unreachable!(),
        })
        .collect();
    let mut listed: Vec<String> = named
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut expected = doomed_ids.clone();
    expected.sort();
    assert_eq!(
        listed, expected,
        "every key under the disabled key, and only those"
    );
    assert_eq!(d.all_keys().await, before, "nothing written");
    assert_eq!(
        d.backups().len(),
        backups_before,
        "no backup of a run that wrote nothing"
    );

    // In text, each is named on stderr.
    let text = second.keyshift(&["rewrap", "-c", "to-gcp.toml", "--yes"]);
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert_eq!(text.status.code(), Some(1));
    for id in &doomed_ids {
        assert!(stderr.contains(id.as_str()), "{id} not named: {stderr}");
    }
    assert!(stderr.contains("filter = '"), "{stderr}");

    // The suggested filter moves every other key.
    let filter = doc["suggestedFilter"].as_str().unwrap();
    std::fs::write(
        d.dir.join("to-gcp.toml"),
        config.replace("[rewrap]\n", &format!("[rewrap]\nfilter = '{filter}'\n")),
    )
    .unwrap();
    let moved = stress::json_of(
        &["rewrap"],
        &second.keyshift(&["rewrap", "-c", "to-gcp.toml", "--yes", "--json"]),
        0,
    );
    assert_eq!(moved["rewrapped"], 9, "{moved}");
}
