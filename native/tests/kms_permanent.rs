//! Permanent KMS failures on the target (the AWS KMS stand-in's knobs, see
//! tests/services/kms_aws.py): wrong credentials, and the target key disabled or denied
//! in the middle of a run. keyshift must stop cleanly (exit 1), say what went wrong and
//! what to do, and leave nothing unsafe: every key is either byte-identical to before or
//! under the target and readable by the oracle holding only AWS once the key is back;
//! a rerun then converges.
//!
//! `cargo test -p keyshift --test kms_permanent -- --nocapture --test-threads 1`

mod common;
mod stress;

use std::collections::HashMap;
use std::time::Instant;

use stress::{Seeded, key_of};

fn snapshot(keys: &[bson::Document]) -> HashMap<String, String> {
    keys.iter()
        .map(|d| (key_of(&d["_id"]), key_of(&d["keyMaterial"])))
        .collect()
}

/// Every key is either exactly as before or under AWS (never anything else).
async fn nothing_unsafe(w: &Seeded, original: &HashMap<String, String>) -> (usize, usize) {
    let (mut same, mut moved) = (0, 0);
    let keys = w.all_keys().await;
    assert_eq!(keys.len(), original.len());
    for d in &keys {
        let id = key_of(&d["_id"]);
        let provider = d
            .get_document("masterKey")
            .unwrap()
            .get_str("provider")
            .unwrap();
        if original[&id] == key_of(&d["keyMaterial"]) {
            assert_eq!(provider, "local", "{id}: same keyMaterial, other masterKey");
            same += 1;
        } else {
            assert_eq!(provider, "aws", "{id}: changed but not under the target");
            moved += 1;
        }
    }
    (same, moved)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_aws_credentials_stop_before_any_write() {
    let mut w = stress::seed("kmsperm", 30, 20, "aws", false);
    let original = snapshot(&w.all_keys().await);
    for (var, value, expect) in [
        (
            "AWS_SECRET_ACCESS_KEY",
            "keyshift/wrong/secret/0000000000000000000000",
            "InvalidSignature",
        ),
        (
            "AWS_ACCESS_KEY_ID",
            "AKIAUNKNOWNKEY000000",
            "UnrecognizedClient",
        ),
    ] {
        let good = w.env.insert(var.into(), value.into()).unwrap();
        let started = Instant::now();
        let out = w.keyshift(&["rewrap", "--yes", "--json"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        eprintln!(
            "wrong {var}: exit {:?} in {:.1}s: {}",
            out.status.code(),
            started.elapsed().as_secs_f64(),
            stderr.trim()
        );
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expect), "names the KMS's answer: {stderr}");
        assert!(
            stderr.contains("fix them in kmsProviders") && stderr.contains("keyshift preflight"),
            "says what to do: {stderr}"
        );
        assert!(!stderr.contains(value), "never echoes the secret");
        let pre = w.keyshift(&["preflight", "--json"]);
        assert_eq!(pre.status.code(), Some(1));
        let pre: serde_json::Value = serde_json::from_slice(&pre.stdout).unwrap();
        assert_eq!(pre["ok"], false, "{pre}");
        let (same, moved) = nothing_unsafe(&w, &original).await;
        assert_eq!(
            (same, moved),
            (30, 0),
            "nothing written with bad credentials"
        );
        w.env.insert(var.into(), good);
    }
    w.oracle_reads("local")
        .expect("untouched: the local key reads all");
    let out = w.keyshift(&["rewrap", "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    w.oracle_reads("aws")
        .expect("after the fix, AWS alone reads all");
    let _ = std::fs::remove_dir_all(&w.dir);
}

/// Creates a fresh AWS key for one test (so disabling it disturbs nobody) and points
/// the deployment's target at it.
fn fresh_target_key(w: &Seeded) -> (String, String) {
    let world = common::world();
    let control = common::world_var(&world, "KS_AWS_CONTROL_URL");
    let created: serde_json::Value =
        serde_json::from_str(&stress::https_control(&format!("{control}/create"), "{}")).unwrap();
    let arn = created["arn"].as_str().unwrap().to_string();
    let toml = std::fs::read_to_string(w.dir.join("keyshift.toml")).unwrap();
    let old = common::world_var(&world, "KS_AWS_KEY_ARN");
    assert!(toml.contains(&old));
    std::fs::write(w.dir.join("keyshift.toml"), toml.replace(&old, &arn)).unwrap();
    (control, arn)
}

/// Takes the target key away in the middle of a run, deterministically: the stand-in
/// arms the fault (`body`) to fire after a count of requests on the key, never after a
/// moment in time. 400 keys in batches of 256: the first batch is rewrapped (256
/// Encrypts) before anything is proven, so an Encrypt deny armed after 300 requests
/// fails the second batch while the first is proven (Decrypts) and written; a disable
/// armed after 100 Decrypts fails proof 101 of the first batch.
async fn key_lost_mid_run(
    knob: &str,
    undo: &str,
    body: fn(&str) -> String,
    expect: &str,
    advice: &str,
    moved_at_least: usize,
) {
    let w = stress::seed("kmsperm", 400, 20, "aws", false);
    let original = snapshot(&w.all_keys().await);
    let (control, arn) = fresh_target_key(&w);
    stress::https_control(&format!("{control}/{knob}"), &body(&arn));
    let out = w.keyshift(&["rewrap", "--yes", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (same, moved) = nothing_unsafe(&w, &original).await;
    eprintln!(
        "target key {knob} mid-run: exit {:?}, {moved} keys moved before, {same} untouched; last words: {}",
        out.status.code(),
        stderr.lines().last().unwrap_or_default()
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(expect), "names the KMS's answer: {stderr}");
    assert!(
        stderr.contains(advice) && stderr.contains("rerun"),
        "says what to do: {stderr}"
    );
    assert!(
        moved >= moved_at_least && same > 0,
        "stopped mid-run: {moved} moved, {same} untouched"
    );
    // The keys written before the stop were proven: with the key back, AWS alone reads
    // them, and the rerun finishes the job.
    stress::https_control(&format!("{control}/{undo}"), &body(&arn));
    let rerun = w.keyshift(&["rewrap", "--yes", "--json"]);
    assert_eq!(
        rerun.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let verify = w.keyshift(&["verify", "--json"]);
    assert_eq!(verify.status.code(), Some(0));
    w.oracle_reads("aws").expect("the oracle with only AWS");
    let backed = stress::backed_up(&w.backups());
    for (id, km) in &original {
        assert!(
            backed.contains(&(id.clone(), km.clone())),
            "{id} not backed up"
        );
    }
    let _ = std::fs::remove_dir_all(&w.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_key_disabled_mid_run_stops_cleanly() {
    key_lost_mid_run(
        "disable",
        "enable",
        |arn| format!(r#"{{"keyId": "{arn}", "after": 100, "counting": "Decrypt"}}"#),
        "disabled",
        "enable it",
        // proofs 1..=100 passed; writes still in flight when proof 101 failed are
        // dropped (never half-done: compare-and-swap), at most two windows of 16
        50,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypt_denied_mid_run_stops_cleanly() {
    key_lost_mid_run(
        "deny",
        "allow",
        |arn| format!(r#"{{"keyId": "{arn}", "action": "Encrypt", "after": 300}}"#),
        "AccessDenied",
        "grant what `keyshift policy` prints",
        // the whole first batch, proven while the second failed
        256,
    )
    .await;
}
