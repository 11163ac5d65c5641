//! Database faults mid-run, injected with MongoDB's own `configureFailPoint failCommand`
//! on the wire stand-in (tests/services/FIDELITY.md):
//!
//! - `closeConnection` on `update`: the compare-and-swap write never reaches storage;
//! - `closeConnectionAfterCommand` on `update` (stand-in extension): the write happens,
//!   its acknowledgement is lost;
//! - `closeConnection` on `getMore`: the scan's cursor dies halfway;
//! - `closeConnection` on `find` once: the driver's retryable read covers it.
//!
//! Each run either completes or exits 1 with a message saying to rerun (never a panic,
//! never exit 2); rerunning converges. The judge is not keyshift's report but the key
//! vault itself and the oracle: every key ends under AWS, readable by PyMongo holding
//! only AWS, present exactly once, and backed up with its old keyMaterial first.
//!
//! `cargo test -p keyshift --test db_faults -- --nocapture --test-threads 1` prints the
//! faults injected. The fail point is global to the stand-in, so these tests run one at
//! a time (a lock) and switch it off before judging.

mod common;
mod stress;

use std::collections::HashMap;
use tokio::sync::Mutex;

use bson::doc;
use stress::{Seeded, key_of};

static FAIL_POINT: Mutex<()> = Mutex::const_new(());

async fn fail_point_off() {
    stress::fail_point(doc! {"configureFailPoint": "failCommand", "mode": "off"}).await;
}

/// How many times the fail point fired since it was last configured.
async fn fired() -> i64 {
    // Reconfiguring returns the previous `count`.
    let client = common::mongo_client().await;
    let r = client
        .database("admin")
        .run_command(doc! {"configureFailPoint": "failCommand", "mode": "off"})
        .await
        .unwrap();
    r.get_i64("count")
        .or_else(|_| r.get_i32("count").map(i64::from))
        .unwrap_or(0)
}

/// Runs `rewrap --yes --json` until it exits 0 (at most `max` runs), every failure clean.
fn rerun_until_done(w: &Seeded, max: u32) -> (u32, Vec<String>) {
    let mut failures = Vec::new();
    for run in 1..=max {
        let out = w.keyshift(&["rewrap", "--yes", "--json"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        match out.status.code() {
            Some(0) => return (run, failures),
            Some(1) => {
                assert!(
                    stderr.contains("rerun") || stderr.contains("run it again"),
                    "a failed run must say what to do: {stderr}"
                );
                assert!(!stderr.contains("panicked"), "{stderr}");
                failures.push(stderr.lines().last().unwrap_or_default().to_string());
            }
            other => panic!("rewrap exited {other:?}: {stderr}"),
        }
    }
    panic!("rewrap did not converge in {max} runs: {failures:?}");
}

/// The judge: every key under AWS, once; readable by the oracle with only AWS;
/// `verify` agrees; every key backed up with its original keyMaterial.
async fn judge(w: &Seeded, original: &HashMap<String, String>) {
    let after = w.all_keys().await;
    assert_eq!(after.len(), original.len(), "no key missing or added");
    for d in &after {
        assert!(original.contains_key(&key_of(&d["_id"])));
        assert_eq!(
            d.get_document("masterKey")
                .unwrap()
                .get_str("provider")
                .ok(),
            Some("aws")
        );
    }
    let verify = w.keyshift(&["verify", "--json"]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    w.oracle_reads("aws").expect("the oracle with only AWS");
    let backed = stress::backed_up(&w.backups());
    for (id, km) in original {
        assert!(
            backed.contains(&(id.clone(), km.clone())),
            "{id} not backed up"
        );
    }
}

async fn seeded(keys: u32) -> (Seeded, HashMap<String, String>) {
    let w = stress::seed("dbfault", keys, 20, "aws", false);
    let original = w
        .all_keys()
        .await
        .iter()
        .map(|d| (key_of(&d["_id"]), key_of(&d["keyMaterial"])))
        .collect();
    (w, original)
}

async fn writes_with_dropped_connections(after_command: bool) {
    let _guard = FAIL_POINT.lock().await;
    let (w, original) = seeded(150).await;
    stress::fail_point(doc! {
        "configureFailPoint": "failCommand",
        "mode": {"activationProbability": 0.05},
        "data": {
            "failCommands": ["update"],
            "closeConnection": !after_command,
            "closeConnectionAfterCommand": after_command,
        },
    })
    .await;
    let (runs, failures) = rerun_until_done(&w, 60);
    let injected = fired().await;
    fail_point_off().await;
    eprintln!(
        "db faults: update {}: {injected} connections dropped, {runs} runs ({} failed cleanly): {:?}",
        if after_command {
            "closeConnectionAfterCommand"
        } else {
            "closeConnection"
        },
        failures.len(),
        failures.first()
    );
    assert!(injected >= 1, "no fault was injected");
    judge(&w, &original).await;
    let _ = std::fs::remove_dir_all(&w.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_connections_dropped_before_the_write() {
    writes_with_dropped_connections(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_acknowledgements_lost_after_the_write() {
    writes_with_dropped_connections(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scan_cursor_dies_halfway_and_nothing_is_written() {
    let _guard = FAIL_POINT.lock().await;
    // More keys than the first batch (101 by default, batchSize 256 here), so the scan
    // needs a getMore.
    let (w, original) = seeded(600).await;
    stress::fail_point(doc! {
        "configureFailPoint": "failCommand",
        "mode": {"times": 1},
        "data": {"failCommands": ["getMore"], "closeConnection": true},
    })
    .await;
    let out = w.keyshift(&["rewrap", "--yes", "--json"]);
    let injected = fired().await;
    fail_point_off().await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "db faults: getMore closeConnection: {injected} dropped, exit {:?}",
        out.status.code()
    );
    assert_eq!(injected, 1);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("reading the key vault"), "{stderr}");
    // Nothing written: every key still under the local key, byte for byte.
    let now: HashMap<String, String> = w
        .all_keys()
        .await
        .iter()
        .map(|d| (key_of(&d["_id"]), key_of(&d["keyMaterial"])))
        .collect();
    assert_eq!(now, original, "a failed scan must write nothing");
    w.oracle_reads("local")
        .expect("still readable with the local key");
    // The rerun converges.
    let (runs, _) = rerun_until_done(&w, 3);
    assert_eq!(runs, 1);
    judge(&w, &original).await;
    let _ = std::fs::remove_dir_all(&w.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_find_is_retried_or_fails_cleanly() {
    let _guard = FAIL_POINT.lock().await;
    let (w, original) = seeded(40).await;
    stress::fail_point(doc! {
        "configureFailPoint": "failCommand",
        "mode": {"times": 1},
        "data": {"failCommands": ["find"], "closeConnection": true},
    })
    .await;
    let (runs, failures) = rerun_until_done(&w, 3);
    let injected = fired().await;
    fail_point_off().await;
    eprintln!("db faults: find closeConnection: {injected} dropped, {runs} run(s), {failures:?}");
    judge(&w, &original).await;

    // verify with its read dropped: exit 1 (or a retried success), never 3 or a panic.
    stress::fail_point(doc! {
        "configureFailPoint": "failCommand",
        "mode": {"times": 1},
        "data": {"failCommands": ["find"], "closeConnection": true},
    })
    .await;
    let out = w.keyshift(&["verify", "--json"]);
    fail_point_off().await;
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "verify under a dropped read: {:?} {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&w.dir);
}
