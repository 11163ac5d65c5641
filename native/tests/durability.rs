//! DESIGN.md promise 9 against a replica set (the world's MongoDB is a one-member
//! replica set, ks0; tests/services/FIDELITY.md):
//!
//! - every key vault command (and every scan and write of rotate and retire) carries
//!   readConcern "majority" / writeConcern {w: "majority", j: true} and reads from the
//!   primary, even when the connection string asks for less: asserted from the
//!   stand-in's command record (`ksCommandLog`), command by command;
//! - a primary stepping down mid-run (`ksStepDown`, armed on a command, never on a
//!   timer): rewrap and rotate ride through the election, lose nothing and count
//!   nothing twice;
//! - a `writeConcernError` (the write applied, its durability not acknowledged): the
//!   run stops saying so, the key is not counted as done, the rerun converges.
//!
//! The judges are the stand-in's record, the key vault itself, the backups and the
//! oracle (PyMongo holding only AWS). The fail point and the step-down are global to
//! the stand-in, so these tests run one at a time (a lock).

mod common;
mod stress;

use std::collections::HashMap;
use std::process::Command;

use bson::{Bson, Document, doc};
use stress::{Seeded, key_of};
use tokio::sync::Mutex;

static STAND_IN: Mutex<()> = Mutex::const_new(());

/// The stand-in's admin database over a direct connection: it answers even while the
/// member is a secondary.
async fn admin() -> mongodb::Database {
    let uri = common::world_var(&common::world(), "KS_MONGODB_DIRECT_URI");
    mongodb::Client::with_uri_str(&uri)
        .await
        .unwrap()
        .database("admin")
}

/// The last sequence number of the command record.
async fn last_seq() -> i64 {
    let r = admin()
        .await
        .run_command(doc! {"ksCommandLog": 1, "limit": 1})
        .await
        .unwrap();
    r.get_i64("lastSeq").unwrap()
}

/// Commands recorded since `since` on database `db`.
async fn recorded(since: i64, db: &str) -> Vec<Document> {
    let r = admin()
        .await
        .run_command(doc! {"ksCommandLog": 1, "since": since, "db": db})
        .await
        .unwrap();
    r.get_array("commands")
        .unwrap()
        .iter()
        .filter_map(|c| c.as_document().cloned())
        .collect()
}

const READS: &[&str] = &["find", "aggregate", "count", "distinct"];
const WRITES: &[&str] = &["insert", "update", "delete", "findAndModify", "collMod"];

/// Every read in `cmds` is majority from the primary, every write majority + journal.
/// Returns (reads, writes) checked.
fn assert_durable(what: &str, cmds: &[Document]) -> (usize, usize) {
    let (mut reads, mut writes) = (0, 0);
    for c in cmds {
        let name = c.get_str("command").unwrap();
        let shown = Bson::Document(c.clone()).into_relaxed_extjson();
        if READS.contains(&name) {
            reads += 1;
            assert_eq!(
                c.get_document("readConcern").ok(),
                Some(&doc! {"level": "majority"}),
                "{what}: a read without readConcern majority: {shown}"
            );
            if let Ok(rp) = c.get_document("readPreference") {
                assert_eq!(
                    rp.get_str("mode").ok(),
                    Some("primary"),
                    "{what}: a read off the primary: {shown}"
                );
            }
        } else if WRITES.contains(&name) {
            writes += 1;
            assert_eq!(
                c.get_document("writeConcern").ok(),
                Some(&doc! {"w": "majority", "j": true}),
                "{what}: a write without writeConcern majority: {shown}"
            );
        }
    }
    (reads, writes)
}

/// Seeds `keys` DEKs and a [rotate] section; the deployment's URI asks for less than
/// keyshift guarantees (secondary reads, w=1, no journal): keyshift must override it.
fn seeded(prefix: &str, keys: u32, docs: u32) -> Seeded {
    let mut s = stress::seed_with(prefix, keys, docs, "aws", &["--rotate", "--expected-all"]);
    let weak = format!(
        "{}&readPreference=secondaryPreferred&w=1&journal=false&readConcernLevel=local",
        s.env["MONGODB_URI"]
    );
    s.env.insert("MONGODB_URI".into(), weak);
    s
}

fn run(s: &Seeded, args: &[&str], code: i32) -> serde_json::Value {
    stress::json_of(args, &s.keyshift(args), code)
}

/// rotate_check.py: the oracle's judgement of a rotation (PyMongo with only AWS).
fn rotate_check(s: &Seeded, extra: &[&str]) -> Result<String, String> {
    let out = Command::new(common::python())
        .arg(common::repo_root().join("tests/interop/rotate_check.py"))
        .arg("--dir")
        .arg(&s.dir)
        .arg("--backup-dir")
        .arg(s.dir.join("keyshift-backups"))
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_is_majority_and_primary_whatever_the_uri_says() {
    let _one = STAND_IN.lock().await;
    let s = seeded("durable", 30, 60);
    let kv_db = s.key_vault_ns.split_once('.').unwrap().0.to_string();

    // check warns about the weakening options and says what keyshift does.
    let check = run(&s, &["check", "--json"], 0);
    let codes: Vec<&str> = check["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"KS-KV-004") && codes.contains(&"KS-KV-005"),
        "{check}"
    );

    let mut seen: HashMap<&str, (usize, usize)> = HashMap::new();
    let steps: &[(&str, &[&str], i32)] = &[
        ("inspect", &["inspect", "--json"], 0),
        ("preflight", &["preflight", "--json"], 0),
        ("rewrap --dry-run", &["rewrap", "--dry-run", "--json"], 0),
        ("rewrap", &["rewrap", "--yes", "--json"], 0),
        ("verify", &["verify", "--json"], 0),
    ];
    let mut backup = String::new();
    for (what, args, code) in steps {
        let since = last_seq().await;
        let out = run(&s, args, *code);
        if *what == "rewrap" {
            backup = out["backup"].as_str().unwrap().to_string();
        }
        let mut cmds = recorded(since, &kv_db).await;
        cmds.extend(recorded(since, &s.db).await);
        seen.insert(what, assert_durable(what, &cmds));
    }
    // rollback, rotate and retire (which also scan and write the data collections).
    let backup_path = s.dir.join(&backup);
    for (what, args) in [
        (
            "rollback",
            vec![
                "rollback",
                "--backup",
                backup_path.to_str().unwrap(),
                "--yes",
            ],
        ),
        ("rotate", vec!["rotate", "--yes", "--json"]),
        ("retire", vec!["retire", "--yes", "--json"]),
    ] {
        let since = last_seq().await;
        let out = s.keyshift(&args);
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut cmds = recorded(since, &kv_db).await;
        cmds.extend(recorded(since, &s.db).await);
        seen.insert(what, assert_durable(what, &cmds));
    }
    eprintln!("(reads, writes) checked per command: {seen:?}");
    for what in ["inspect", "preflight", "rewrap --dry-run", "verify"] {
        assert!(seen[what].0 > 0, "{what} read nothing: {seen:?}");
    }
    assert_eq!(seen["rewrap --dry-run"].1, 0, "a dry run wrote");
    for what in ["rewrap", "rollback", "rotate", "retire"] {
        assert!(
            seen[what].0 > 0 && seen[what].1 > 0,
            "{what} did not both read and write: {seen:?}"
        );
    }
    // 30 keys moved, restored, replaced; 30 old ones deleted.
    assert!(seen["rewrap"].1 >= 30 && seen["rollback"].1 >= 30 && seen["retire"].1 >= 30);
    rotate_check(&s, &[]).expect("the oracle after rotate and retire");
}

/// Arms the stand-in to step down when the next `command` arrives (that command is
/// refused with NotWritablePrimary) and stay secondary for `hellos` heartbeats.
async fn step_down_at(command: &str, hellos: i32) {
    admin()
        .await
        .run_command(doc! {"ksStepDown": 1, "hellos": hellos, "atCommand": command})
        .await
        .unwrap();
}

async fn primary_again() {
    admin()
        .await
        .run_command(doc! {"ksStepDown": 1, "hellos": 0})
        .await
        .unwrap();
}

/// Commands answered with NotWritablePrimary since `since` on `db`.
async fn refused_not_primary(since: i64, db: &str) -> usize {
    recorded(since, db)
        .await
        .iter()
        .filter(|c| c.get_i32("code").ok() == Some(10107))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_stepping_down_mid_run_loses_nothing_and_counts_nothing_twice() {
    let _one = STAND_IN.lock().await;
    let s = seeded("failover", 300, 200);
    let kv_db = s.key_vault_ns.split_once('.').unwrap().0.to_string();
    let original: HashMap<String, String> = s
        .all_keys()
        .await
        .iter()
        .map(|d| (key_of(&d["_id"]), key_of(&d["keyMaterial"])))
        .collect();

    // rewrap: the first key write meets a secondary; the election takes a few heartbeats.
    let since = last_seq().await;
    step_down_at("update", 3).await;
    let report = run(&s, &["rewrap", "--yes", "--json"], 0);
    primary_again().await;
    let refused = refused_not_primary(since, &kv_db).await;
    eprintln!("rewrap through a step-down: {refused} write(s) refused as not primary; {report}");
    assert!(refused >= 1, "the step-down never met a write");
    assert_eq!(report["rewrapped"], 300, "each key counted once: {report}");
    assert_eq!(report["notMoved"], serde_json::json!([]));
    let verify = run(&s, &["verify", "--json"], 0);
    assert_eq!(verify["checked"], 300, "{verify}");
    s.oracle_reads("aws").expect("the oracle with only AWS");
    let backed = stress::backed_up(&s.backups());
    for (id, km) in &original {
        assert!(
            backed.contains(&(id.clone(), km.clone())),
            "{id} not backed up"
        );
    }

    // rotate (on a deployment still under the local key): its value updates go through
    // run_command, which the driver does not retry; keyshift must.
    let s = seeded("failover_rot", 20, 400);
    let since = last_seq().await;
    step_down_at("update", 3).await;
    let first = run(&s, &["rotate", "--yes", "--json"], 0);
    primary_again().await;
    let kv_db = s.key_vault_ns.split_once('.').unwrap().0.to_string();
    let refused =
        refused_not_primary(since, &s.db).await + refused_not_primary(since, &kv_db).await;
    eprintln!("rotate through a step-down: {refused} write(s) refused as not primary");
    assert!(refused >= 1, "rotate never met the step-down");
    let reencrypted: u64 = first["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reencrypted"].as_u64().unwrap())
        .sum();
    assert!(reencrypted > 0, "{first}");
    let again = run(&s, &["rotate", "--yes", "--json"], 0);
    for c in again["collections"].as_array().unwrap() {
        assert_eq!(c["reencrypted"], 0, "a rerun found work left: {again}");
    }
    rotate_check(&s, &["--before-retire"]).expect("the oracle after a rotate through a failover");
}

async fn fail_point(command: &str) {
    set_fail_point(doc! {
        "configureFailPoint": "failCommand",
        "mode": {"times": 1},
        "data": {
            "failCommands": [command],
            "writeConcernError": {
                "code": 64,
                "codeName": "WriteConcernTimeout",
                "errmsg": "waiting for replication timed out",
                "errInfo": {"wtimeout": true},
            },
        },
    })
    .await;
}

async fn fail_point_off() {
    set_fail_point(doc! {"configureFailPoint": "failCommand", "mode": "off"}).await;
}

async fn set_fail_point(command: Document) {
    admin().await.run_command(command).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_concern_error_is_never_counted_as_done() {
    let _one = STAND_IN.lock().await;
    let s = seeded("wce", 120, 60);
    let kv = s.key_vault().await;
    let original: HashMap<String, String> = s
        .all_keys()
        .await
        .iter()
        .map(|d| (key_of(&d["_id"]), key_of(&d["keyMaterial"])))
        .collect();

    // rewrap: the first key write is applied but its durability not acknowledged.
    fail_point("update").await;
    let out = s.keyshift(&["rewrap", "--yes"]);
    fail_point_off().await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("did not acknowledge it as durable")
            && stderr.contains("WriteConcernTimeout")
            && stderr.contains("rerun"),
        "{stderr}"
    );
    let moved = kv
        .count_documents(doc! {"masterKey.provider": "aws"})
        .await
        .unwrap();
    assert!(
        moved >= 1,
        "the stand-in applies a write it answers with a writeConcernError"
    );
    // The rerun counts what is already under the target once, and moves the rest.
    let rerun = run(&s, &["rewrap", "--yes", "--json"], 0);
    assert_eq!(rerun["alreadyUnderTarget"], moved, "{rerun}");
    assert_eq!(
        rerun["rewrapped"].as_u64().unwrap() + moved,
        120,
        "each key counted once: {rerun}"
    );
    run(&s, &["verify", "--json"], 0);
    s.oracle_reads("aws").expect("the oracle with only AWS");
    let backed = stress::backed_up(&s.backups());
    for (id, km) in &original {
        assert!(
            backed.contains(&(id.clone(), km.clone())),
            "{id} not backed up"
        );
    }

    // rotate (on a deployment still under the local key): first an insert (a new key
    // or rotate's journal) is not acknowledged as durable.
    let s = seeded("wce_rot", 20, 200);
    let rotate_fails = |s: &Seeded, expect: &str| {
        let out = s.keyshift(&["rotate", "--yes"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(expect)
                && stderr.contains("rerun")
                && !stderr.contains("RawDocumentBuf"),
            "{stderr}"
        );
    };
    fail_point("insert").await;
    rotate_fails(&s, "not acknowledged as durable");
    fail_point_off().await;
    // A run killed after its first batch of values: keys, validators and keyAltNames
    // are done, so the next update is a batch of values (run_command's reply path).
    let killed = s
        .command(&["rotate", "--yes"])
        .env("KEYSHIFT_FAILPOINT", "rotate.batch-written:1")
        .status()
        .unwrap();
    assert_eq!(killed.code(), None, "the failpoint kills the run");
    fail_point("update").await;
    rotate_fails(
        &s,
        "applied a batch of values but did not acknowledge it as durable",
    );
    fail_point_off().await;
    run(&s, &["rotate", "--yes", "--json"], 0);
    rotate_check(&s, &["--before-retire"]).expect("the oracle after reruns");
}

/// Key documents the key vault sent back (find and getMore replies) in `cmds`; an
/// aggregate's reply is a count, not a key.
fn key_documents_returned(cmds: &[Document], key_vault_ns: &str) -> i64 {
    returned(cmds, key_vault_ns, false)
}

/// Documents key vault reads returned: whole key documents, or (`ids_only`) only those
/// projected to `_id` and `masterKey` (the audit trail's `already` records), which
/// carry no key material.
fn returned(cmds: &[Document], key_vault_ns: &str, ids_only: bool) -> i64 {
    let projected = |c: &Document| {
        c.get_document("projection")
            .is_ok_and(|p| !p.contains_key("keyMaterial") && p.get("_id").is_some())
    };
    cmds.iter()
        .filter(|c| c.get_str("ns").ok() == Some(key_vault_ns))
        .filter(|c| matches!(c.get_str("command"), Ok("find" | "getMore")))
        .filter(|c| projected(c) == ids_only)
        .filter_map(|c| match c.get("returned") {
            Some(Bson::Int32(n)) => Some(i64::from(*n)),
            Some(Bson::Int64(n)) => Some(*n),
            _ => None,
        })
        .sum()
}

/// The server selects: a rewrap reads only the keys it may move (core's query), so a
/// rerun after a finished move reads no key document, yet still reports every key as
/// already under the target: the audit trail records each by its id and master key, read
/// without key material. A user's filter narrows what is read and counted.
#[tokio::test]
async fn a_rerun_over_a_moved_vault_reads_no_key_document() {
    let _one = STAND_IN.lock().await;
    let s = stress::seed_with("select_server", 40, 4, "aws", &[]);
    let kv_db = s.key_vault_ns.split_once('.').unwrap().0.to_string();
    let reads = |since| {
        let (db, ns) = (kv_db.clone(), s.key_vault_ns.clone());
        async move { key_documents_returned(&recorded(since, &db).await, &ns) }
    };

    let since = last_seq().await;
    let first = run(&s, &["rewrap", "--yes", "--json"], 0);
    assert_eq!(first["rewrapped"], 40, "{first}");
    assert!(
        reads(since).await >= 40,
        "the first run read the keys it moved"
    );

    let since = last_seq().await;
    let again = run(&s, &["rewrap", "--yes", "--json"], 0);
    assert_eq!(
        (
            &again["selected"],
            &again["alreadyUnderTarget"],
            &again["rewrapped"]
        ),
        (&40.into(), &40.into(), &0.into()),
        "{again}"
    );
    assert_eq!(reads(since).await, 0, "the rerun read key documents");
    let projected = returned(&recorded(since, &kv_db).await, &s.key_vault_ns, true);
    assert_eq!(
        projected, 40,
        "the ids and master keys of the keys already moved, for the audit trail"
    );
    let since = last_seq().await;
    run(&s, &["rewrap", "--dry-run", "--json"], 0);
    assert_eq!(reads(since).await, 0, "the dry run read key documents");

    // Every key back under the local key (rollback), then a filter naming ten of them:
    // only those ten are read, the other thirty neither read nor counted.
    let some: Vec<Bson> = s.all_keys().await[..10]
        .iter()
        .map(|k| k.get("_id").unwrap().clone())
        .collect();
    let backup = first["backup"].as_str().unwrap();
    let out = s.keyshift(&[
        "rollback",
        "--backup",
        s.dir.join(backup).to_str().unwrap(),
        "--yes",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids = Bson::Array(some.clone()).into_canonical_extjson();
    let cfg = std::fs::read_to_string(s.dir.join("keyshift.toml")).unwrap();
    let filtered = s.dir.join("filtered.toml");
    std::fs::write(
        &filtered,
        cfg.replace(
            "[rewrap]\n",
            &format!(
                "[rewrap]\nfilter = '{}'\n",
                serde_json::json!({"_id": {"$in": ids}})
            ),
        ),
    )
    .unwrap();
    let since = last_seq().await;
    let part = run(
        &s,
        &[
            "rewrap",
            "-c",
            filtered.to_str().unwrap(),
            "--yes",
            "--json",
        ],
        0,
    );
    assert_eq!(
        (
            &part["selected"],
            &part["alreadyUnderTarget"],
            &part["rewrapped"]
        ),
        (&10.into(), &0.into(), &10.into()),
        "{part}"
    );
    assert_eq!(
        reads(since).await,
        10,
        "only the ten selected keys are read"
    );
}
