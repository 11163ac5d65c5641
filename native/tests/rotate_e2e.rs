//! `keyshift rotate` and `keyshift retire` end to end on the test world, as a user runs
//! them: a deployment seeded by the official driver under a local key, its DEKs
//! replaced by new ones under the AWS KMS stand-in and every field re-encrypted. The
//! oracle (PyMongo holding ONLY the AWS provider) judges the data; the key vault,
//! validators and backups are read as they really are.

mod common;
mod stress;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Command;

use bson::{Bson, Document, RawDocumentBuf, doc};
use futures_util::TryStreamExt;
use keyshift::rotate::scan::encrypted_values;
use keyshift_core::rotate::ciphertext::parse_header;
use keyshift_core::rotate::ids::{is_replacement, replacement_id, uuid_string};
use keyshift_core::rotate::schema::key_ids_in;
use stress::{Seeded, key_of};

/// What seeded() appends: no other deployment uses the seeded key vault.
const RETIRE_CONFIRMED: &str = "\n[retire]\nallDeploymentsListed = true\n";

/// A seeded deployment (20 DEKs, 200 documents) whose keyshift.toml lists its two
/// collections under `[rotate]` and confirms the key vault serves no other deployment.
fn seeded(prefix: &str) -> Seeded {
    let s = stress::seed(prefix, 20, 200, "aws", false);
    let mut toml = std::fs::read_to_string(s.dir.join("keyshift.toml")).unwrap();
    toml.push_str(&format!(
        "\n[rotate]\ncollections = [\"{0}.customers\", \"{0}.orders\"]\n{RETIRE_CONFIRMED}",
        s.db
    ));
    std::fs::write(s.dir.join("keyshift.toml"), toml).unwrap();
    s
}

fn run_json(s: &Seeded, args: &[&str], code: i32) -> serde_json::Value {
    stress::json_of(args, &s.keyshift(args), code)
}

async fn client(s: &Seeded) -> mongodb::Client {
    mongodb::Client::with_uri_str(&s.env["MONGODB_URI"])
        .await
        .unwrap()
}

async fn docs(s: &Seeded, coll: &str) -> Vec<RawDocumentBuf> {
    client(s)
        .await
        .database(&s.db)
        .collection::<RawDocumentBuf>(coll)
        .find(doc! {})
        .sort(doc! {"_id": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// Everything rotate could change: documents, keys, validators (canonical ext JSON).
async fn snapshot(s: &Seeded) -> Vec<String> {
    let mut out = Vec::new();
    for coll in ["customers", "orders"] {
        for d in docs(s, coll).await {
            let d = Document::try_from(d.as_ref()).unwrap();
            out.push(key_of(&Bson::Document(d)));
        }
    }
    for k in s.all_keys().await {
        out.push(key_of(&Bson::Document(k)));
    }
    for (_, v) in validators(s).await {
        out.push(v.to_string());
    }
    out
}

/// The `$jsonSchema` of each collection's validator (canonical extended JSON).
async fn validators(s: &Seeded) -> BTreeMap<String, serde_json::Value> {
    let reply = client(s)
        .await
        .database(&s.db)
        .run_command(doc! {"listCollections": 1})
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for c in reply
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap()
    {
        let c = c.as_document().unwrap();
        if let Ok(schema) = c
            .get_document("options")
            .and_then(|o| o.get_document("validator"))
            .and_then(|v| v.get_document("$jsonSchema"))
        {
            out.insert(
                c.get_str("name").unwrap().to_string(),
                Bson::Document(schema.clone()).into_canonical_extjson(),
            );
        }
    }
    out
}

/// The DEK id of every encrypted value in both collections.
async fn value_key_ids(s: &Seeded) -> Vec<[u8; 16]> {
    let mut out = Vec::new();
    for coll in ["customers", "orders"] {
        for d in docs(s, coll).await {
            for v in encrypted_values(&d).unwrap() {
                out.push(parse_header(&v.bytes).unwrap().key_id.unwrap());
            }
        }
    }
    out
}

fn id16(d: &Document) -> [u8; 16] {
    match d.get("_id") {
        Some(Bson::Binary(b)) => b.bytes.as_slice().try_into().unwrap(),
        other => panic!("key _id {other:?}"),
    }
}

fn alt_names(d: &Document) -> Vec<String> {
    d.get_array("keyAltNames")
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// An application still writing with an old key: PyMongo encrypts a value with `key`
/// (the local master key) and inserts it as a new customer.
fn insert_old_key_value(s: &Seeded, coll: &str, key: &[u8; 16], id: &str) {
    let ns = format!("{}.{coll}", s.db);
    insert_old_key_value_in(s, &s.env["MONGODB_URI"], &ns, key, id);
}

/// As an application of the deployment at `data_uri` would: a value encrypted (PyMongo)
/// with an old DEK from the seeded key vault, inserted into `ns` of that deployment.
fn insert_old_key_value_in(s: &Seeded, data_uri: &str, ns: &str, key: &[u8; 16], id: &str) {
    let script = r#"
import sys, uuid
from bson.binary import Binary, UuidRepresentation
from bson.codec_options import CodecOptions
from pymongo import MongoClient
from pymongo.encryption import Algorithm, ClientEncryption
uri, kv, key_file, data_uri, ns, key, doc_id = sys.argv[1:8]
codec = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
client = MongoClient(uri, uuidRepresentation="standard")
ce = ClientEncryption({"local": {"key": open(key_file, "rb").read()}}, kv, client, codec)
value = ce.encrypt("written late with an old key", Algorithm.AEAD_AES_256_CBC_HMAC_SHA_512_Random,
                   Binary(uuid.UUID(key).bytes, 4))
db, coll = ns.split(".", 1)
data = MongoClient(data_uri, uuidRepresentation="standard")
data[db].get_collection(coll, codec_options=codec).insert_one({"_id": doc_id, "notes": value})
"#;
    let out = Command::new(common::python())
        .args(["-c", script])
        .arg(&s.env["MONGODB_URI"])
        .arg(&s.key_vault_ns)
        .arg(s.dir.join("master-key.bin"))
        .arg(data_uri)
        .arg(ns)
        .arg(uuid_string(key))
        .arg(id)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "PyMongo encrypt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn files_named(s: &Seeded, prefix: &str) -> Vec<std::path::PathBuf> {
    s.backups()
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_changes_nothing_and_reports_what_it_would_do() {
    let s = seeded("rot_dry");
    let before = snapshot(&s).await;
    let report = run_json(&s, &["rotate", "--dry-run", "--json"], 0);
    assert_eq!(report["command"], "rotate");
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["partition"], serde_json::Value::Null);
    assert_eq!(report["backup"], serde_json::Value::Null);
    assert_eq!(report["createdBackup"], serde_json::Value::Null);
    let keys = report["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 20);
    assert!(keys.iter().all(|k| k["created"] == true));
    let colls = report["collections"].as_array().unwrap();
    assert_eq!(colls.len(), 2);
    // 100 customers x 4 encrypted fields, 100 orders x 2.
    let by_ns: HashMap<String, &serde_json::Value> = colls
        .iter()
        .map(|c| (c["namespace"].as_str().unwrap().to_string(), c))
        .collect();
    assert_eq!(by_ns[&format!("{}.customers", s.db)]["reencrypted"], 400);
    assert_eq!(by_ns[&format!("{}.orders", s.db)]["reencrypted"], 200);
    assert!(report["schemaMap"].as_object().unwrap().len() == 2);
    assert_eq!(snapshot(&s).await, before, "a dry run wrote something");
    assert!(s.backups().is_empty(), "a dry run wrote a backup");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_then_retire_leaves_only_new_keys_and_the_oracle_reads_everything() {
    let mut s = seeded("rot_full");
    let keys_before = s.all_keys().await;
    let old_ids: HashSet<[u8; 16]> = keys_before.iter().map(id16).collect();
    let names_before: HashMap<[u8; 16], Vec<String>> = keys_before
        .iter()
        .map(|k| (id16(k), alt_names(k)))
        .filter(|(_, n)| !n.is_empty())
        .collect();
    assert!(
        !names_before.is_empty(),
        "the seed gives some keys keyAltNames"
    );
    let values_before = value_key_ids(&s).await.len();

    // rotate: every value re-encrypted under a replacement.
    let report = run_json(&s, &["rotate", "--yes", "--json"], 0);
    assert_eq!(report["dryRun"], false);
    let keys = report["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 20);
    for k in keys {
        let old = keyshift_core::rotate::ids::parse_uuid(k["old"].as_str().unwrap()).unwrap();
        assert!(old_ids.contains(&old));
        assert_eq!(k["new"], uuid_string(&replacement_id(&old)));
        assert_eq!(k["created"], true);
    }
    let reencrypted: u64 = report["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reencrypted"].as_u64().unwrap())
        .sum();
    assert_eq!(reencrypted as usize, values_before);
    let ids = value_key_ids(&s).await;
    assert_eq!(ids.len(), values_before);
    assert!(
        ids.iter().all(is_replacement),
        "a value is still under a key that is not a replacement"
    );
    for (name, schema) in validators(&s).await {
        let named = key_ids_in(&schema);
        assert!(!named.is_empty(), "{name}'s validator names keys");
        assert!(
            named.iter().all(is_replacement),
            "{name}'s validator still names an old key"
        );
    }
    assert_eq!(
        report["schemaMap"].as_object().unwrap().len(),
        2,
        "schemaMap: {}",
        report["schemaMap"]
    );
    let backup = report["backup"].as_str().unwrap();
    let created = report["createdBackup"].as_str().unwrap();
    for f in [backup, created] {
        assert_eq!(stress::mode_of(&s.dir.join(f)), 0o600, "{f}");
    }
    assert!(
        backup.contains("rotate-") && created.ends_with("-created.jsonl"),
        "{backup} {created}"
    );
    // Every new key is in the created-keys backup, exactly as it is in the vault.
    let in_created = stress::backed_up(&[s.dir.join(created)]);
    let after_rotate = s.all_keys().await;
    // keyAltNames moved to the replacements at once, so applications choosing keys by
    // name write under the new keys from now on.
    let rotated: HashMap<[u8; 16], &Document> = after_rotate.iter().map(|k| (id16(k), k)).collect();
    for (old, names) in &names_before {
        assert_eq!(&alt_names(rotated[&replacement_id(old)]), names);
        assert!(
            alt_names(rotated[old]).is_empty(),
            "old key keeps its names"
        );
    }
    let new_keys: Vec<&Document> = after_rotate
        .iter()
        .filter(|k| is_replacement(&id16(k)))
        .collect();
    assert_eq!(new_keys.len(), 20);
    for k in &new_keys {
        assert_eq!(
            k.get_document("masterKey")
                .unwrap()
                .get_str("provider")
                .unwrap(),
            "aws"
        );
        assert!(in_created.contains(&(
            key_of(k.get("_id").unwrap()),
            key_of(k.get("keyMaterial").unwrap())
        )));
    }
    // The oracle, holding only AWS, reads every seeded sample with the same plaintext.
    // (keyAltName-encrypted fields too: the ciphertext names the key by id.)
    s.oracle_reads("aws")
        .expect("PyMongo with only AWS reads the data");

    // A rerun is a no-op.
    let before = snapshot(&s).await;
    let again = run_json(&s, &["rotate", "--yes", "--json"], 0);
    assert!(
        again["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["created"] == false)
    );
    for c in again["collections"].as_array().unwrap() {
        assert_eq!(c["reencrypted"], 0, "{c}");
        assert_eq!(c["validatorUpdated"], false, "{c}");
    }
    let already: u64 = again["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["alreadyReplaced"].as_u64().unwrap())
        .sum();
    assert_eq!(already as usize, values_before);
    assert_eq!(again["createdBackup"], serde_json::Value::Null);
    assert_eq!(snapshot(&s).await, before, "a rerun changed something");

    // retire refuses until the configuration says which deployments use the key vault.
    let toml_path = s.dir.join("keyshift.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    std::fs::write(&toml_path, toml.replace(RETIRE_CONFIRMED, "")).unwrap();
    let unconfirmed = s.keyshift(&["retire", "--yes", "--json"]);
    let stderr = String::from_utf8_lossy(&unconfirmed.stderr);
    assert_eq!(unconfirmed.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("allDeploymentsListed") && stderr.contains("[retire] deployments"),
        "{stderr}"
    );
    assert_eq!(
        s.all_keys().await.len(),
        40,
        "retire deleted while unconfirmed"
    );

    // Another cluster (the world's second deployment) uses the same key vault, and an
    // application there still holds a value under an old key: retire scans it too.
    let world = common::world();
    let orders_uri = common::world_var(&world, "KS_MONGODB_AUTH_URI");
    s.env
        .insert("ORDERS_MONGODB_URI".into(), orders_uri.clone());
    std::fs::write(
        &toml_path,
        format!(
            "{toml}\n[retire]\ndeployments = {{ orders = \"env:ORDERS_MONGODB_URI\" }}\n\
             allDeploymentsListed = true\n",
            toml = toml.replace(RETIRE_CONFIRMED, "")
        ),
    )
    .unwrap();
    let elsewhere = format!("{}_orders.invoices", s.db);
    let victims: Vec<[u8; 16]> = old_ids.iter().copied().take(2).collect();
    insert_old_key_value_in(&s, &orders_uri, &elsewhere, &victims[1], "elsewhere-1");
    let refused = run_json(&s, &["retire", "--yes", "--json"], 3);
    assert_eq!(
        refused["remaining"][format!("orders:{elsewhere}")],
        1,
        "{refused}"
    );
    assert_eq!(refused["retired"].as_array().unwrap().len(), 0);
    assert_eq!(
        s.all_keys().await.len(),
        40,
        "retire deleted a key another cluster needs"
    );
    // That application moves its value to a new key (here: the value goes).
    let (db, coll) = elsewhere.split_once('.').unwrap();
    mongodb::Client::with_uri_str(&orders_uri)
        .await
        .unwrap()
        .database(db)
        .collection::<Document>(coll)
        .delete_many(doc! {})
        .await
        .unwrap();

    // An application writes with an old key: retire refuses and deletes nothing.
    let victim = victims[0];
    insert_old_key_value(&s, "customers", &victim, "late-1");
    let refused = run_json(&s, &["retire", "--yes", "--json"], 3);
    assert_eq!(refused["command"], "retire");
    assert_eq!(refused["retired"].as_array().unwrap().len(), 0);
    assert_eq!(refused["remaining"][format!("{}.customers", s.db)], 1);
    assert_eq!(refused["backup"], serde_json::Value::Null);
    assert_eq!(
        s.all_keys().await.len(),
        40,
        "retire deleted a key it refused to"
    );

    // rotate catches it; retire then retires every old key.
    let caught = run_json(&s, &["rotate", "--yes", "--json"], 0);
    let caught_n: u64 = caught["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reencrypted"].as_u64().unwrap())
        .sum();
    assert_eq!(caught_n, 1);
    let retired = run_json(&s, &["retire", "--yes", "--json"], 0);
    assert_eq!(retired["remaining"], serde_json::json!({}));
    assert_eq!(retired["restored"], serde_json::json!([]));
    let list = retired["retired"].as_array().unwrap();
    assert_eq!(list.len(), 20);

    // Old DEKs gone from the vault, present in the retire backup exactly as they were.
    let after = s.all_keys().await;
    assert_eq!(after.len(), 20);
    assert!(after.iter().all(|k| is_replacement(&id16(k))));
    let retire_backup = s.dir.join(retired["backup"].as_str().unwrap());
    assert_eq!(stress::mode_of(&retire_backup), 0o600);
    assert!(files_named(&s, "retire-").contains(&retire_backup));
    let in_backup = stress::backed_up(&[retire_backup]);
    for k in &keys_before {
        assert!(
            in_backup.contains(&(
                key_of(k.get("_id").unwrap()),
                key_of(k.get("keyMaterial").unwrap())
            )),
            "old key {} is not in the retire backup",
            uuid_string(&id16(k))
        );
    }
    // keyAltNames moved to the replacements.
    let by_id: HashMap<[u8; 16], &Document> = after.iter().map(|k| (id16(k), k)).collect();
    for (old, names) in &names_before {
        let new = by_id[&replacement_id(old)];
        assert_eq!(
            &alt_names(new),
            names,
            "keyAltNames of {}",
            uuid_string(old)
        );
    }
    for r in list {
        // Rotate moved them already; retire had none left to move.
        assert_eq!(r["keyAltNames"], serde_json::json!([]));
    }
    // Only new keys are left, and PyMongo with only AWS still reads everything,
    // the late value included.
    s.oracle_reads("aws")
        .expect("PyMongo with only AWS reads the data after retire");
    let out = s.oracle_decrypt("customers", "aws", &["\"late-1\"".to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("written late with an old key"));
    assert!(value_key_ids(&s).await.iter().all(is_replacement));
    // Nothing left to retire.
    let nothing = run_json(&s, &["retire", "--yes", "--json"], 0);
    assert_eq!(nothing["retired"], serde_json::json!([]));

    // Every rotate and retire run is on the audit trail, and the chain verifies: each
    // old key replaced (from the local key to its replacement under AWS), then deleted.
    let v = run_json(&s, &["audit", "verify", "--json"], 0);
    assert_eq!(v["ok"], true);
    let log = std::fs::read_to_string(s.audit_log()).unwrap();
    let key_records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["type"] == "key")
        .collect();
    let ids_with = |outcome: &str| -> HashSet<String> {
        key_records
            .iter()
            .filter(|r| r["outcome"] == outcome)
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let old_texts: HashSet<String> = old_ids.iter().map(uuid_string).collect();
    assert_eq!(ids_with("replaced"), old_texts);
    assert_eq!(ids_with("deleted"), old_texts);
    for r in key_records.iter().filter(|r| r["outcome"] == "replaced") {
        assert_eq!(r["from"]["provider"], "local");
        assert_eq!(r["to"]["provider"], "aws");
        let old = keyshift_core::rotate::ids::parse_uuid(r["id"].as_str().unwrap()).unwrap();
        assert_eq!(r["newId"], uuid_string(&replacement_id(&old)).as_str());
    }
    let shown = run_json(&s, &["audit", "show", "--json"], 0);
    let commands: HashSet<&str> = shown["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, HashSet::from(["rotate", "retire"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_partitions_together_cover_every_document() {
    let s = seeded("rot_part");
    let values = value_key_ids(&s).await.len() as u64;
    let mut total = 0;
    for p in ["1/2", "0/2"] {
        let r = run_json(&s, &["rotate", "--yes", "--json", "--partition", p], 0);
        let (i, n) = p.split_once('/').unwrap();
        assert_eq!(
            r["partition"],
            serde_json::json!({"index": i.parse::<u32>().unwrap(), "count": n.parse::<u32>().unwrap()})
        );
        let scanned: u64 = r["collections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["scanned"].as_u64().unwrap())
            .sum();
        assert!(
            scanned > 0 && scanned < 200,
            "partition {p} scanned {scanned}"
        );
        total += r["collections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["reencrypted"].as_u64().unwrap())
            .sum::<u64>();
    }
    assert_eq!(total, values, "each value re-encrypted exactly once");
    assert!(value_key_ids(&s).await.iter().all(is_replacement));
    s.oracle_reads("aws")
        .expect("PyMongo with only AWS reads the data");
    // A bad partition is a usage error.
    let out = s.keyshift(&["rotate", "--dry-run", "--partition", "2/2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("0-based"));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_collections_rotate_is_a_usage_error() {
    let s = stress::seed("rot_nocoll", 2, 4, "aws", false);
    let out = s.keyshift(&["rotate", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--all-collections"));
    // --all-collections finds this deployment's collections (and not the key vault).
    // The world is shared: other tests' collections hold deliberately malformed values,
    // which make the run exit 1 (and are listed); the JSON still says what was covered.
    let all_json = |out: std::process::Output| -> serde_json::Value {
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let r = all_json(s.keyshift(&["rotate", "--dry-run", "--all-collections", "--json"]));
    let names: Vec<&str> = r["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["namespace"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&format!("{}.customers", s.db).as_str()),
        "{names:?}"
    );
    assert!(!names.contains(&s.key_vault_ns.as_str()), "{names:?}");
    let kv_db = s.key_vault_ns.split_once('.').unwrap().0;
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with(&format!("{kv_db}.keyshift_"))),
        "{names:?}"
    );
    // A Queryable Encryption blob in a collection without encryptedFields.
    client(&s)
        .await
        .database(&s.db)
        .collection::<Document>("orders")
        .insert_one(doc! {"_id": "qe", "x": bson::Binary {
            subtype: bson::spec::BinarySubtype::Encrypted,
            bytes: vec![6; 40],
        }})
        .await
        .unwrap();
    // With --all-collections it is skipped and named; listed by name, it is refused.
    let all = s.keyshift(&["rotate", "--dry-run", "--all-collections", "--json"]);
    let mut toml = std::fs::read_to_string(s.dir.join("keyshift.toml")).unwrap();
    toml.push_str(&format!(
        "\n[rotate]\ncollections = [\"{}.orders\"]\n",
        s.db
    ));
    std::fs::write(s.dir.join("keyshift.toml"), toml).unwrap();
    let named = s.keyshift(&["rotate", "--dry-run"]);
    // Other tests share this world and may use --all-collections: take the blob away
    // before asserting.
    client(&s)
        .await
        .database(&s.db)
        .collection::<Document>("orders")
        .delete_one(doc! {"_id": "qe"})
        .await
        .unwrap();
    let all = all_json(all);
    assert!(
        all["queryableCollectionsSkipped"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(format!("{}.orders", s.db))),
        "{all}"
    );
    assert_eq!(named.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&named.stderr).contains("Queryable Encryption"),
        "{}",
        String::from_utf8_lossy(&named.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retire_checks_every_collection_not_only_those_rotate_covered() {
    let s = seeded("rot_scope");
    let old = id16(&s.all_keys().await[0]);
    run_json(&s, &["rotate", "--yes", "--json"], 0);
    // A collection [rotate] collections does not list still holds an old-key value.
    insert_old_key_value(&s, "archive", &old, "archived-1");
    let refused = run_json(&s, &["retire", "--yes", "--json"], 3);
    assert_eq!(refused["remaining"][format!("{}.archive", s.db)], 1);
    assert_eq!(refused["retired"].as_array().unwrap().len(), 0);
    assert_eq!(
        s.all_keys().await.len(),
        40,
        "retire deleted a key still needed"
    );
    // Once that value is rotated too (here: removed), retire goes ahead.
    client(&s)
        .await
        .database(&s.db)
        .collection::<Document>("archive")
        .delete_one(doc! {"_id": "archived-1"})
        .await
        .unwrap();
    let done = run_json(&s, &["retire", "--yes", "--json"], 0);
    assert_eq!(done["retired"].as_array().unwrap().len(), 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_a_queryable_encryption_collection_uses_are_never_rotated_or_retired() {
    let s = seeded("rot_qekey");
    let qe_key = id16(&s.all_keys().await[0]);
    client(&s)
        .await
        .database(&s.db)
        .run_command(doc! {"create": "secure", "encryptedFields": {"fields": [{
            "path": "ssn", "bsonType": "string",
            "keyId": bson::Binary {subtype: bson::spec::BinarySubtype::Uuid, bytes: qe_key.to_vec()},
        }]}})
        .await
        .unwrap();
    let r = run_json(&s, &["rotate", "--yes", "--json"], 0);
    assert_eq!(r["queryableKeysLeft"], 1);
    let olds: Vec<&str> = r["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["old"].as_str().unwrap())
        .collect();
    assert_eq!(olds.len(), 19);
    assert!(!olds.contains(&uuid_string(&qe_key).as_str()));
    let retired = run_json(&s, &["retire", "--yes", "--json"], 0);
    assert_eq!(retired["retired"].as_array().unwrap().len(), 19);
    assert!(
        s.all_keys().await.iter().any(|k| id16(k) == qe_key),
        "retire deleted a key a Queryable Encryption collection uses"
    );
}
