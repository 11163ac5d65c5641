//! The deployments users run (docs/deployments.md), end to end through the binary:
//!
//! - Atlas's `mongodb+srv://` seedlist: the world's DNS server (tests/services/svc_dns.py)
//!   serves the SRV and TXT records of `cluster0.keyshift.test`; keyshift and the oracle
//!   run under `tests/services/with-dns`, which gives them that resolver alone;
//! - SCRAM-SHA-256 with a password that needs percent-encoding;
//! - MONGODB-AWS (Atlas with IAM): static credentials from the environment, and
//!   temporary ones from the ECS container credentials endpoint through keyshift's AWS
//!   credential chain; the stand-in verifies the SigV4 signature and records who
//!   authenticated.
//!
//! Each reaches the server, moves the keys, and the oracle (PyMongo holding only AWS)
//! reads the data. No "feature" error may appear anywhere.

mod common;
mod stress;

use std::path::PathBuf;

use bson::doc;
use stress::Seeded;

fn world_var(name: &str) -> String {
    common::world_var(&common::world(), name)
}

/// rewrap, verify and the oracle on a seeded deployment; inspect and preflight first.
fn moves_and_the_oracle_reads(s: &Seeded, what: &str) {
    moves(s, what);
    s.oracle_reads("aws")
        .unwrap_or_else(|e| panic!("{what}: the oracle with only AWS: {e}"));
}

/// The oracle, connecting with the seed's own connection string (SCRAM) while keyshift
/// connected with another (MONGODB-AWS).
fn oracle_reads_as_seeded(s: &mut Seeded, seeded_uri: &str, what: &str) {
    let used = s.env.insert("MONGODB_URI".into(), seeded_uri.into());
    s.oracle_reads("aws")
        .unwrap_or_else(|e| panic!("{what}: the oracle with only AWS: {e}"));
    if let Some(u) = used {
        s.env.insert("MONGODB_URI".into(), u);
    }
}

/// inspect, preflight, rewrap and verify, each succeeding.
fn moves(s: &Seeded, what: &str) {
    for args in [
        &["inspect", "--json"][..],
        &["preflight", "--json"],
        &["rewrap", "--yes", "--json"],
        &["verify", "--json"],
    ] {
        let out = s.keyshift(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{what}: keyshift {args:?}: {stderr}{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!stderr.contains("feature"), "{what}: {stderr}");
    }
}

#[test]
fn a_mongodb_srv_seedlist_with_scram_like_atlas() {
    let with_dns = PathBuf::from(world_var("KS_WITH_DNS"));
    assert!(
        with_dns.exists(),
        "the world has no DNS service (tests/services/svc_dns.py needs root for port 53)"
    );
    let s = stress::seed_in(
        "srv",
        24,
        24,
        "aws",
        &[],
        "KS_MONGODB_SRV_URI",
        Some(with_dns),
    );
    assert!(
        s.env["MONGODB_URI"].starts_with("mongodb+srv://cluster0.keyshift.test")
            || s.env["MONGODB_URI"].starts_with("mongodb+srv://keyshift:")
    );
    // check judges the SRV string offline: no finding.
    let check = stress::json_of(&["check", "--json"], &s.keyshift(&["check", "--json"]), 0);
    assert_eq!(check["diagnostics"], serde_json::json!([]), "{check}");
    moves_and_the_oracle_reads(&s, "mongodb+srv");
}

/// The seeded deployment on the authenticating replica set (ks1).
fn seed_auth(prefix: &str) -> Seeded {
    stress::seed_in(prefix, 16, 16, "aws", &[], "KS_MONGODB_AUTH_URI", None)
}

/// Users the stand-in recorded for commands on `db` (the `user` field of ksCommandLog).
async fn users_on(db: &str) -> Vec<String> {
    let client = mongodb::Client::with_uri_str(world_var("KS_MONGODB_AUTH_URI"))
        .await
        .unwrap();
    let r = client
        .database("admin")
        .run_command(doc! {"ksCommandLog": 1, "db": db})
        .await
        .unwrap();
    let mut users: Vec<String> = r
        .get_array("commands")
        .unwrap()
        .iter()
        .filter_map(|c| c.as_document()?.get_document("user").ok())
        .map(|u| {
            format!(
                "{} {}",
                u.get_str("mechanism").unwrap_or("?"),
                u.get_str("user").unwrap_or("?")
            )
        })
        .collect();
    users.sort();
    users.dedup();
    users
}

#[tokio::test]
async fn scram_with_a_percent_encoded_password_and_a_wrong_one() {
    let mut s = seed_auth("scram");
    moves_and_the_oracle_reads(&s, "SCRAM");
    let kv_db = s.key_vault_ns.split_once('.').unwrap().0.to_string();
    let users = users_on(&kv_db).await;
    assert!(
        users
            .iter()
            .any(|u| u.starts_with("SCRAM-SHA-256 keyshift")),
        "{users:?}"
    );
    // A wrong password: a clear failure that never shows the password.
    let good = s.env["MONGODB_URI"].clone();
    let password = world_var("KS_MONGODB_AUTH_PASSWORD");
    let encoded = good
        .split("keyshift:")
        .nth(1)
        .and_then(|r| r.split('@').next())
        .unwrap()
        .to_string();
    s.env.insert(
        "MONGODB_URI".into(),
        good.replace(&encoded, "not-the-password"),
    );
    let out = s.keyshift(&["inspect"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("uthentication"), "{stderr}");
    for secret in [&password, &encoded, "not-the-password"] {
        assert!(!stderr.contains(secret), "{stderr}");
    }
}

#[tokio::test]
async fn mongodb_aws_with_static_and_temporary_credentials() {
    let mut s = seed_auth("awsauth");
    let seeded_uri = s.env["MONGODB_URI"].clone();
    let kv_db = s.key_vault_ns.split_once('.').unwrap().0.to_string();
    // keyshift connects with IAM: no user or password in the connection string.
    s.env
        .insert("MONGODB_URI".into(), world_var("KS_MONGODB_AUTH_AWS_URI"));
    // The world's metadata endpoints only, never 169.254.169.254.
    s.env
        .insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
    assert!(
        s.env.contains_key("AWS_ACCESS_KEY_ID"),
        "static credentials"
    );
    moves(&s, "MONGODB-AWS, static credentials");
    oracle_reads_as_seeded(&mut s, &seeded_uri, "MONGODB-AWS, static credentials");
    let users = users_on(&kv_db).await;
    let static_user = world_var("KS_MONGODB_AUTH_AWS_ARN");
    assert!(
        users.contains(&format!("MONGODB-AWS {static_user}")),
        "{users:?}"
    );

    // Temporary credentials from the ECS endpoint: the KMS keeps its own (renamed)
    // references, so the environment holds no static AWS key for the driver to find.
    let mut t = seed_auth("awstemp");
    let seeded_uri = t.env["MONGODB_URI"].clone();
    let toml_path = t.dir.join("keyshift.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    std::fs::write(
        &toml_path,
        toml.replace("env:AWS_ACCESS_KEY_ID", "env:KMS_ACCESS_KEY_ID")
            .replace("env:AWS_SECRET_ACCESS_KEY", "env:KMS_SECRET_ACCESS_KEY"),
    )
    .unwrap();
    let akid = t.env.remove("AWS_ACCESS_KEY_ID").unwrap();
    let secret = t.env.remove("AWS_SECRET_ACCESS_KEY").unwrap();
    t.env.insert("KMS_ACCESS_KEY_ID".into(), akid);
    t.env.insert("KMS_SECRET_ACCESS_KEY".into(), secret.clone());
    t.env
        .insert("MONGODB_URI".into(), world_var("KS_MONGODB_AUTH_AWS_URI"));
    t.env
        .insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
    t.env.insert(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI".into(),
        world_var("KS_AWS_CONTAINER_CREDENTIALS_FULL_URI"),
    );
    t.env.insert(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN".into(),
        world_var("KS_AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    );
    moves(&t, "MONGODB-AWS, ECS credentials");
    oracle_reads_as_seeded(&mut t, &seeded_uri, "MONGODB-AWS, ECS credentials");
    let kv_db = t.key_vault_ns.split_once('.').unwrap().0.to_string();
    let users = users_on(&kv_db).await;
    let role = world_var("KS_MONGODB_AUTH_AWS_ROLE_ARN");
    assert!(users.contains(&format!("MONGODB-AWS {role}")), "{users:?}");

    // A wrong secret: refused by the server's signature check, said plainly.
    s.env.insert(
        "AWS_SECRET_ACCESS_KEY".into(),
        "wrong/secret/for/keyshift/tests/0000".into(),
    );
    let out = s.keyshift(&["inspect"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("uthentication"), "{stderr}");
    assert!(
        !stderr.contains("wrong/secret") && !stderr.contains(&secret),
        "{stderr}"
    );
}
