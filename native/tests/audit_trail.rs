//! The audit trail as a security reviewer relies on it (docs/audit.md): rewrap and
//! rollback leave one record per key that `keyshift audit verify` accepts; editing,
//! deleting or reordering a record makes verify fail naming the line; a kill -9 in the
//! middle of a write leaves a chain that verifies, and the next run repairs it on
//! record; the configured collection holds the same lines. (rotate and retire: see
//! rotate_e2e.rs; SIGKILL at random points: crash.rs; no secret in the log: secrets.rs.)

mod common;
mod stress;

use std::collections::HashSet;

use bson::doc;
use futures_util::TryStreamExt;
use serde_json::Value;
use stress::{Seeded, json_of};

fn run_json(s: &Seeded, args: &[&str], code: i32) -> Value {
    json_of(args, &s.keyshift(args), code)
}

fn records(s: &Seeded) -> Vec<Value> {
    std::fs::read_to_string(s.audit_log())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn of_run<'a>(all: &'a [Value], run: &str) -> Vec<&'a Value> {
    all.iter().filter(|r| r["run"] == run).collect()
}

fn verify_file(s: &Seeded, file: &std::path::Path, code: i32) -> Value {
    let f = file.display().to_string();
    run_json(s, &["audit", "verify", &f, "--json"], code)
}

async fn key_ids(s: &Seeded) -> HashSet<String> {
    s.all_keys()
        .await
        .iter()
        .map(|k| match k.get("_id") {
            Some(bson::Bson::Binary(b)) => {
                bson::Uuid::from_bytes(<[u8; 16]>::try_from(b.bytes.as_slice()).unwrap())
                    .to_string()
            }
            other => panic!("unexpected _id {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn rewrap_rollback_and_reruns_each_leave_records_that_verify() {
    let s = stress::seed("audit_moves", 12, 4, "aws", false);
    let ids = key_ids(&s).await;

    let first = run_json(&s, &["rewrap", "--yes", "--json"], 0);
    let head = first["audit"]["head"].as_str().unwrap().to_string();
    assert_eq!(stress::mode_of(&s.audit_log()), 0o600);
    let v = run_json(&s, &["audit", "verify", "--json"], 0);
    assert_eq!(v["ok"], true);
    assert_eq!(v["records"], 14, "start, one per key, end");
    assert_eq!(v["head"], head.as_str(), "the head the run printed");

    let all = records(&s);
    let run = first["audit"]["run"].as_str().unwrap();
    let mine = of_run(&all, run);
    let start = mine[0];
    assert_eq!(start["type"], "start");
    assert_eq!(start["command"], "rewrap");
    assert!(!start["who"]["user"].as_str().unwrap().is_empty());
    assert!(!start["who"]["host"].as_str().unwrap().is_empty());
    assert_eq!(start["config"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(start["target"]["provider"], "aws");
    let moved: HashSet<String> = mine
        .iter()
        .filter(|r| r["type"] == "key")
        .map(|r| {
            assert_eq!(r["outcome"], "moved");
            assert_eq!(r["from"]["provider"], "local");
            assert_eq!(r["to"]["provider"], "aws");
            assert!(r["to"]["key"].as_str().unwrap().starts_with("arn:aws:kms:"));
            r["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(moved, ids, "one record per key, by id");
    let end = mine.last().unwrap();
    assert_eq!(end["type"], "end");
    assert_eq!(end["outcome"], "ok");
    assert_eq!(end["counts"]["rewrapped"], 12);

    // Rollback: every key back under the local key, on record.
    let backup = s.backups()[0].display().to_string();
    let rolled = run_json(&s, &["rollback", "--backup", &backup, "--yes", "--json"], 0);
    assert_eq!(rolled["restored"], 12);
    let all = records(&s);
    let mine = of_run(&all, rolled["audit"]["run"].as_str().unwrap());
    assert_eq!(mine[0]["command"], "rollback");
    let restored: Vec<&&Value> = mine.iter().filter(|r| r["type"] == "key").collect();
    assert_eq!(restored.len(), 12);
    for r in restored {
        assert_eq!(r["outcome"], "restored");
        assert_eq!(r["from"]["provider"], "aws");
        assert_eq!(r["to"]["provider"], "local");
    }

    // Moved again, then a rerun with nothing to do: each key `already`.
    run_json(&s, &["rewrap", "--yes", "--json"], 0);
    let last = run_json(&s, &["rewrap", "--yes", "--json"], 0);
    let all = records(&s);
    let mine = of_run(&all, last["audit"]["run"].as_str().unwrap());
    let already: HashSet<String> = mine
        .iter()
        .filter(|r| r["type"] == "key")
        .map(|r| {
            assert_eq!(r["outcome"], "already");
            r["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(already, ids);

    let v = run_json(&s, &["audit", "verify", "--json", "--head", &head], 0);
    assert_eq!(v["anchorFound"], true);
    assert_eq!(v["records"], 14 * 4);
    let shown = run_json(&s, &["audit", "show", "--json"], 0);
    let runs: Vec<(String, String)> = shown["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["command"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        runs,
        [
            ("rewrap", "ok"),
            ("rollback", "ok"),
            ("rewrap", "ok"),
            ("rewrap", "ok")
        ]
        .map(|(c, o)| (c.to_string(), o.to_string()))
    );
    assert_eq!(shown["runs"][1]["keys"]["restored"], 12);
    let text = s.keyshift(&["audit", "show"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("rollback by"), "{text}");
    assert!(text.contains("12 restored"), "{text}");
    // A dry run changes nothing, so it records nothing.
    run_json(&s, &["rewrap", "--dry-run", "--json"], 0);
    assert_eq!(records(&s).len(), 14 * 4);
}

#[tokio::test]
async fn an_edited_deleted_or_reordered_record_fails_verification_at_its_line() {
    let s = stress::seed("audit_tamper", 6, 2, "aws", false);
    run_json(&s, &["rewrap", "--yes", "--json"], 0);
    let text = std::fs::read_to_string(s.audit_log()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let copy = s.dir.join("tampered.jsonl");
    let write = |l: &[String]| {
        std::fs::write(
            &copy,
            l.iter().map(|x| format!("{x}\n")).collect::<String>(),
        )
        .unwrap()
    };
    let owned: Vec<String> = lines.iter().map(|l| l.to_string()).collect();

    // Edited: a key said refused instead of moved.
    let mut edited = owned.clone();
    edited[2] = edited[2].replace("\"moved\"", "\"refused\"");
    assert_ne!(edited[2], owned[2]);
    write(&edited);
    let v = verify_file(&s, &copy, 3);
    assert_eq!(v["ok"], false);
    assert_eq!(v["broken"]["line"], 4);
    assert_eq!(v["records"], 3, "the records before the break verify");
    let out = s.keyshift(&["audit", "verify", &copy.display().to_string()]);
    assert_eq!(out.status.code(), Some(3));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("line 4") && said.contains("line 3"), "{said}");

    // Deleted.
    let mut deleted = owned.clone();
    deleted.remove(3);
    write(&deleted);
    assert_eq!(verify_file(&s, &copy, 3)["broken"]["line"], 4);

    // Reordered.
    let mut reordered = owned.clone();
    reordered.swap(2, 3);
    write(&reordered);
    assert_eq!(verify_file(&s, &copy, 3)["broken"]["line"], 3);

    // The log itself still verifies; a run refuses to append to a tampered one.
    verify_file(&s, &s.audit_log(), 0);
    let before = s.all_keys().await;
    std::fs::write(s.audit_log(), edited.join("\n") + "\n").unwrap();
    let out = s.keyshift(&["rewrap", "--yes"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("does not verify at line 4"), "{said}");
    assert_eq!(s.all_keys().await, before, "nothing changed");
}

#[tokio::test]
async fn a_kill_mid_write_leaves_a_chain_that_verifies_and_the_next_run_repairs_it() {
    let s = stress::seed("audit_torn", 12, 2, "aws", false);
    // The second audit write (the batch's 12 records) is cut in half, then SIGKILL.
    let out = s
        .command(&["rewrap", "--yes"])
        .env("KEYSHIFT_FAILPOINT", "audit.torn:2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), None, "killed by the failpoint");
    let v = run_json(&s, &["audit", "verify", "--json"], 0);
    assert_eq!(v["tornTail"], true);
    let whole = v["records"].as_u64().unwrap();
    assert!((1..13).contains(&whole), "a valid prefix: {whole}");

    let again = run_json(&s, &["rewrap", "--yes", "--json"], 0);
    assert_eq!(
        again["rewrapped"].as_u64().unwrap() + again["alreadyUnderTarget"].as_u64().unwrap(),
        12
    );
    let v = run_json(&s, &["audit", "verify", "--json"], 0);
    assert_eq!(v["tornTail"], false);
    let all = records(&s);
    let repair: Vec<&Value> = all.iter().filter(|r| r["type"] == "repair").collect();
    assert_eq!(repair.len(), 1, "the cut is on record");
    assert!(repair[0]["cutBytes"].as_u64().unwrap() > 0);
    // Every key is accounted for by the two runs.
    let ids: HashSet<&str> = all
        .iter()
        .filter(|r| r["type"] == "key")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 12);

    // Killed between records: the run reads as interrupted, the chain verifies.
    let s = stress::seed("audit_killed", 6, 2, "aws", false);
    let out = s
        .command(&["rewrap", "--yes"])
        .env("KEYSHIFT_FAILPOINT", "audit.appended:2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), None);
    run_json(&s, &["audit", "verify", "--json"], 0);
    let shown = run_json(&s, &["audit", "show", "--json"], 0);
    assert_eq!(shown["runs"][0]["outcome"], "interrupted");
    assert_eq!(shown["runs"][0]["keys"]["moved"], 6);
}

#[tokio::test]
async fn the_configured_collection_holds_the_same_lines_written_with_majority() {
    let s = stress::seed("audit_coll", 5, 2, "aws", false);
    let ns = format!("{}_audit.trail", s.db);
    let toml = s.dir.join("keyshift.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str(&format!("\n[audit]\ncollection = \"{ns}\"\n"));
    std::fs::write(&toml, text).unwrap();
    run_json(&s, &["rewrap", "--yes", "--json"], 0);
    let file = std::fs::read_to_string(s.audit_log()).unwrap();
    let client = mongodb::Client::with_uri_str(&s.env["MONGODB_URI"])
        .await
        .unwrap();
    let (db, coll) = ns.split_once('.').unwrap();
    let docs: Vec<bson::Document> = client
        .database(db)
        .collection::<bson::Document>(coll)
        .find(doc! {})
        .sort(doc! {"seq": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let lines: Vec<&str> = docs.iter().map(|d| d.get_str("line").unwrap()).collect();
    assert_eq!(lines, file.lines().collect::<Vec<_>>());
    assert_eq!(docs.len(), 7);
    assert_eq!(
        docs[1]
            .get_document("record")
            .unwrap()
            .get_str("outcome")
            .unwrap(),
        "moved"
    );
    let exported: String = lines.iter().map(|l| format!("{l}\n")).collect();
    assert!(keyshift_core::audit::verify(&exported).ok());
}
