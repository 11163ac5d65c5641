//! Key documents libmongocrypt refuses (a field it does not know, a keyMaterial of the
//! wrong type) must not stop their batch: every other key is rewrapped, proven and
//! written (the oracle, holding only AWS, reads their data), each refused key is named
//! by `_id` with libmongocrypt's reason and left exactly as it was, the run exits 1, and
//! a rerun after fixing the two by hand completes.
//!
//! `cargo test -p keyshift --test bad_keys -- --nocapture`

mod common;
mod stress;

use std::collections::{BTreeMap, BTreeSet};

use bson::spec::BinarySubtype;
use bson::{Bson, Document, doc};
use futures_util::TryStreamExt;
use stress::key_of;

/// The DEK ids every encrypted value of `value` refers to (FLE ciphertext: subtype 6,
/// blob subtype byte, then the 16-byte key id).
fn key_ids_in(value: &Bson, out: &mut BTreeSet<Vec<u8>>) {
    match value {
        Bson::Binary(b) if b.subtype == BinarySubtype::Encrypted && b.bytes.len() > 17 => {
            out.insert(b.bytes[1..17].to_vec());
        }
        Bson::Document(d) => d.values().for_each(|v| key_ids_in(v, out)),
        Bson::Array(a) => a.iter().for_each(|v| key_ids_in(v, out)),
        _ => {}
    }
}

/// Per (collection, document `_id` as JSON text): the DEK ids its fields use.
async fn keys_per_document(w: &stress::Seeded) -> BTreeMap<(String, String), BTreeSet<Vec<u8>>> {
    let client = mongodb::Client::with_uri_str(&w.env["MONGODB_URI"])
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for name in ["customers", "orders"] {
        let docs: Vec<Document> = client
            .database(&w.db)
            .collection::<Document>(name)
            .find(doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        for d in docs {
            let mut ids = BTreeSet::new();
            key_ids_in(&Bson::Document(d.clone()), &mut ids);
            let id = d
                .get("_id")
                .unwrap()
                .clone()
                .into_relaxed_extjson()
                .to_string();
            out.insert((name.to_string(), id), ids);
        }
    }
    out
}

fn uuid_text(id: &Bson) -> String {
    match id {
        Bson::Binary(b) => bson::Uuid::from_bytes(b.bytes.clone().try_into().unwrap()).to_string(),
        other => panic!("key _id is not binary: {other}"),
    }
}

fn run_json(w: &stress::Seeded, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = w.keyshift(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}); stderr: {stderr}"));
    (out.status.code(), json, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_key_documents_are_isolated_and_named() {
    let w = stress::seed("badkeys", 40, 40, "aws", false);
    // Small batches: the two bad keys fall into batches of their own or share one, and
    // several batches run through the rewrap/prove pipeline either way.
    let toml = w.dir.join("keyshift.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(text.contains("batchSize = 256"));
    std::fs::write(&toml, text.replace("batchSize = 256", "batchSize = 8")).unwrap();

    // The two least used keys among the documents the oracle samples (expected.json),
    // so the oracle can show both sides: what they lock and what they do not.
    let per_doc = keys_per_document(&w).await;
    let expected_path = w.dir.join("expected.json");
    let expected_text = std::fs::read_to_string(&expected_path).unwrap();
    let expected: Vec<serde_json::Value> = serde_json::from_str(&expected_text).unwrap();
    let doc_of = |e: &serde_json::Value| {
        (
            e["collection"].as_str().unwrap().to_string(),
            e["_id"].to_string(),
        )
    };
    let sampled: BTreeSet<(String, String)> = expected.iter().map(doc_of).collect();
    let mut uses: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for doc in &sampled {
        for id in &per_doc[doc] {
            *uses.entry(id.clone()).or_default() += 1;
        }
    }
    let keys = w.all_keys().await;
    assert_eq!(keys.len(), 40);
    let mut candidates: Vec<(usize, &Document)> = keys
        .iter()
        .filter_map(|k| match &k["_id"] {
            Bson::Binary(b) => Some((*uses.get(&b.bytes)?, k)),
            _ => None,
        })
        .collect();
    candidates.sort_by_key(|(n, _)| *n);
    assert!(candidates.len() >= 3, "sampled documents use too few keys");
    let (unknown, wrong_type) = (candidates[0].1.clone(), candidates[1].1.clone());
    let unknown_id = uuid_text(&unknown["_id"]);
    let wrong_id = uuid_text(&wrong_type["_id"]);
    let bad_bytes: BTreeSet<Vec<u8>> = [&unknown, &wrong_type]
        .iter()
        .map(|k| match &k["_id"] {
            Bson::Binary(b) => b.bytes.clone(),
            _ => unreachable!(),
        })
        .collect();

    let vault = w.key_vault().await;
    vault
        .update_one(
            doc! {"_id": unknown["_id"].clone()},
            doc! {"$set": {"comment": "added by hand"}},
        )
        .await
        .unwrap();
    vault
        .update_one(
            doc! {"_id": wrong_type["_id"].clone()},
            doc! {"$set": {"keyMaterial": "truncated by a bad export"}},
        )
        .await
        .unwrap();
    let corrupted: BTreeMap<String, Document> = w
        .all_keys()
        .await
        .into_iter()
        .filter(|k| [&unknown_id, &wrong_id].contains(&&uuid_text(&k["_id"])))
        .map(|k| (uuid_text(&k["_id"]), k))
        .collect();

    // inspect sees both without any KMS: one unknown field, one keyMaterial not binary.
    let (code, inspect, stderr) = run_json(&w, &["inspect", "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let anomalies = inspect["inventory"]["anomalies"].as_array().unwrap();
    let flagged = |id: &str, kind: &str| {
        anomalies
            .iter()
            .any(|a| a["keyId"] == id && a["kind"] == kind)
    };
    assert!(flagged(&unknown_id, "unknownField"), "{anomalies:?}");
    assert!(flagged(&wrong_id, "noKeyMaterial"), "{anomalies:?}");
    assert_eq!(anomalies.len(), 2, "only the two: {anomalies:?}");

    // A dry run in text: both named with libmongocrypt's reason, nothing written.
    let out = w.keyshift(&["rewrap", "--dry-run"]);
    // the report on stdout, progress on stderr
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("dry run: {text}");
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("38 would be rewrapped (dry run), 2 not moved"),
        "{text}"
    );
    for id in [&unknown_id, &wrong_id] {
        assert!(
            text.lines()
                .any(|l| l.contains(id.as_str()) && l.contains("libmongocrypt refused")),
            "{id} named: {text}"
        );
    }
    assert!(w.backups().is_empty(), "a dry run writes no backup");

    // The real run.
    let (code, report, stderr) = run_json(&w, &["rewrap", "--yes", "--json"]);
    eprintln!("rewrap: {report}\n{stderr}");
    assert_eq!(code, Some(1), "failed, nothing unsafe written: {stderr}");
    assert_eq!(report["selected"], 40);
    assert_eq!(report["rewrapped"], 38);
    let not_moved = report["notMoved"].as_array().unwrap();
    assert_eq!(not_moved.len(), 2, "{report}");
    let detail = |id: &str| -> String {
        let entry = not_moved
            .iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("{id} not reported: {report}"));
        assert_eq!(entry["reason"], "refused", "{entry}");
        entry["detail"].as_str().unwrap().to_string()
    };
    assert!(
        detail(&unknown_id).contains("unrecognized field 'comment'"),
        "libmongocrypt's own reason: {report}"
    );
    assert!(
        detail(&wrong_id).contains("keyMaterial"),
        "libmongocrypt's own reason: {report}"
    );

    // Backup first: every key it touched, the refused ones included.
    let backups = w.backups();
    assert_eq!(backups.len(), 1);
    assert_eq!(stress::mode_of(&backups[0]), 0o600);
    let backed = stress::backed_up(&backups);
    let original: BTreeMap<String, &Document> =
        keys.iter().map(|k| (uuid_text(&k["_id"]), k)).collect();

    // The vault: 38 under AWS with new keyMaterial, the two byte-for-byte as corrupted.
    for k in w.all_keys().await {
        let id = uuid_text(&k["_id"]);
        if let Some(before) = corrupted.get(&id) {
            assert_eq!(&k, before, "{id}: a refused key is left exactly as it was");
            continue;
        }
        let provider = k
            .get_document("masterKey")
            .unwrap()
            .get_str("provider")
            .unwrap();
        assert_eq!(provider, "aws", "{id} moved");
        let old = original[&id];
        assert_ne!(key_of(&k["keyMaterial"]), key_of(&old["keyMaterial"]));
        assert!(backed.contains(&(key_of(&k["_id"]), key_of(&old["keyMaterial"]))));
    }

    // The oracle, holding only AWS, reads every document that uses no refused key.
    let (readable, blocked): (Vec<_>, Vec<_>) = expected
        .iter()
        .cloned()
        .partition(|e| per_doc[&doc_of(e)].is_disjoint(&bad_bytes));
    assert!(!readable.is_empty() && !blocked.is_empty());
    std::fs::write(&expected_path, serde_json::to_vec(&readable).unwrap()).unwrap();
    let read = w.oracle_reads("aws");
    std::fs::write(&expected_path, serde_json::to_vec(&blocked).unwrap()).unwrap();
    let unreadable = w.oracle_reads("aws");
    std::fs::write(&expected_path, &expected_text).unwrap();
    assert_eq!(
        read,
        Ok(readable.len()),
        "AWS alone reads the moved keys' data"
    );
    assert!(
        unreadable.is_err(),
        "the refused keys are still under local"
    );

    // Fixed by hand; the rerun moves exactly those two.
    vault
        .update_one(
            doc! {"_id": unknown["_id"].clone()},
            doc! {"$unset": {"comment": ""}},
        )
        .await
        .unwrap();
    vault
        .update_one(
            doc! {"_id": wrong_type["_id"].clone()},
            doc! {"$set": {"keyMaterial": wrong_type["keyMaterial"].clone()}},
        )
        .await
        .unwrap();
    let (code, report, stderr) = run_json(&w, &["rewrap", "--yes", "--json"]);
    eprintln!("rerun: {report}");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["alreadyUnderTarget"], 38);
    assert_eq!(report["rewrapped"], 2);
    assert_eq!(report["notMoved"], serde_json::json!([]));
    assert_eq!(w.oracle_reads("aws"), Ok(expected.len()));
    let out = w.keyshift(&["verify", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&w.dir);
}

/// The wrong local master key fails every unwrap alike: that is no document's fault, so
/// the run stops (exit 1) saying so, instead of reporting every key as refused, and
/// nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_refused_stops_the_run() {
    let w = stress::seed("badkeys_wrongkey", 12, 4, "aws", false);
    let before = w.all_keys().await;
    let mut wrong = std::fs::read(w.dir.join("master-key.bin")).unwrap();
    wrong.iter_mut().for_each(|b| *b ^= 0x5a);
    std::fs::write(w.dir.join("master-key.bin"), &wrong).unwrap();
    let out = w.keyshift(&["rewrap", "--yes", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "refused every key of a batch (12 keys; 12 of them for: HMAC validation failure)"
        ) && stderr.contains("keyshift preflight"),
        "{stderr}"
    );
    assert_eq!(w.all_keys().await, before, "nothing written");
    let _ = std::fs::remove_dir_all(&w.dir);
}
