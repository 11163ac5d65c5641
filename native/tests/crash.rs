//! DESIGN.md promise 4 under SIGKILL: `keyshift rewrap --yes` of 2,000 local DEKs is
//! killed at random points (at least 20 times) while another client keeps writing to
//! the key vault (new DEKs under the local key, new keyAltNames on existing keys).
//! After each kill the command is simply run again. At the end:
//!
//! - a last rerun exits 0 and `verify` exits 0 over every key;
//! - the oracle (PyMongo holding only the AWS provider) decrypts every seeded sample;
//! - no key is missing or duplicated, and every keyAltName the other client added is
//!   still there (the writes are `$set`s on a compare-and-swap, never replacements);
//! - every key that moved is in a backup, with exactly the keyMaterial it had before
//!   (read from the files on disk, a killed writer's torn tail skipped); every backup
//!   is mode 0600.
//!
//! Reproduce: `KS_CRASH_SEED=N cargo test -p keyshift --test crash -- --nocapture`
//! (the seed is printed first). Knobs: KS_CRASH_KILLS (default 20), KS_CRASH_KEYS
//! (default 2000).
//!
//! Kill points are failpoints of the binary (`KEYSHIFT_FAILPOINT`, native/src/failpoint.rs),
//! so a kill lands at the same point on any machine: 60% right after a random number of
//! key writes (mid-batch, other writes in flight), 20% right after a random number of
//! KMS replies, 10% during the scan, 10% right after the backup is synced.

mod common;
mod stress;

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, doc};
use keyshift::ctx_runner::{self, Keys};
use keyshift::kms_io::KmsIo;
use keyshift::kms_tls::KmsTls;
use stress::{Rng, Seeded, key_of};

/// Where a run is killed: a failpoint of the binary (native/src/failpoint.rs) and
/// how many times it is passed first. Deterministic: a faster or slower machine kills
/// the run at the same point.
#[derive(Debug, Clone, Copy)]
struct Trigger(&'static str, u64);

impl Trigger {
    fn spec(&self) -> String {
        format!("{}:{}", self.0, self.1)
    }
}

/// A random kill point within the work left: mostly right after a key write (mid-batch,
/// with other writes in flight), else during the scan, right after the backup is
/// synced, or right after a KMS reply (mid-rewrap or mid-proof).
fn pick_trigger(rng: &mut Rng, remaining: u64, kills_left: u64) -> Trigger {
    if remaining == 0 {
        return Trigger("rewrap.backup-synced", 1);
    }
    match rng.range(0, 10) {
        0 => Trigger("rewrap.scanned", rng.range(1, remaining + 1)),
        1 => Trigger("rewrap.backup-synced", 1),
        2 | 3 => Trigger("kms.replied", rng.range(1, remaining + 1)),
        _ => Trigger(
            "rewrap.written",
            rng.range(1, (2 * remaining / (kills_left + 1)).max(1) + 1),
        ),
    }
}

fn env_num(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// What the other client did.
#[derive(Default)]
struct Writes {
    /// New DEKs: `_id` -> keyMaterial (both as canonical extended JSON).
    inserted: HashMap<String, String>,
    /// keyAltNames added: `_id` -> names.
    alt_names: HashMap<String, Vec<String>>,
    /// Writes the key vault refused (none expected).
    errors: Vec<String>,
}

/// The other client: until `stop`, every 40-160 ms either creates a real DEK under the
/// local master key (libmongocrypt, as a driver's createDataKey does) with a fresh
/// keyAltName, or adds a keyAltName to an existing key.
fn other_client(
    w: &Seeded,
    ids: Vec<Bson>,
    seed: u64,
    stop: Arc<AtomicBool>,
    writes: Arc<Mutex<Writes>>,
) -> std::thread::JoinHandle<()> {
    let local = std::fs::read(w.dir.join("master-key.bin")).unwrap();
    let uri = w.env["MONGODB_URI"].clone();
    let ns = w.key_vault_ns.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (db, coll) = ns.split_once('.').unwrap();
            let kv = mongodb::Client::with_uri_str(&uri)
                .await
                .unwrap()
                .database(db)
                .collection::<Document>(coll);
            let providers =
                doc! {"local": {"key": Binary { subtype: BinarySubtype::Generic, bytes: local }}};
            let kms = KmsIo {
                tls: KmsTls::new(&HashMap::new()).unwrap(),
                concurrency: 1,
                timeout: Duration::from_secs(5),
                on_demand: None,
                pace: Default::default(),
            };
            let mut rng = Rng(seed);
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                if rng.next().is_multiple_of(2) {
                    let crypt = keyshift::crypt::build(&providers).unwrap();
                    let ctx = crypt
                        .ctx_builder()
                        .key_encryption_key(&doc! {"provider": "local"})
                        .and_then(|b| b.build_datakey())
                        .unwrap();
                    let key = ctx_runner::run(ctx, Keys::Given(&[]), &kms).await.unwrap();
                    let mut key = Document::try_from(key.as_ref()).unwrap();
                    key.insert("keyAltNames", vec![format!("crash-new-{n}")]);
                    let (id, km) = (key_of(&key["_id"]), key_of(&key["keyMaterial"]));
                    match kv.insert_one(key).await {
                        Ok(_) => {
                            writes.lock().unwrap().inserted.insert(id, km);
                        }
                        Err(e) => writes.lock().unwrap().errors.push(e.to_string()),
                    }
                } else {
                    let id = ids[rng.range(0, ids.len() as u64) as usize].clone();
                    let name = format!("crash-alt-{n}");
                    match kv
                        .update_one(
                            doc! {"_id": id.clone()},
                            doc! {"$addToSet": {"keyAltNames": &name}},
                        )
                        .await
                    {
                        Ok(r) if r.matched_count == 1 => writes
                            .lock()
                            .unwrap()
                            .alt_names
                            .entry(key_of(&id))
                            .or_default()
                            .push(name),
                        Ok(_) => writes.lock().unwrap().errors.push("key vanished".into()),
                        Err(e) => writes.lock().unwrap().errors.push(e.to_string()),
                    }
                }
                tokio::time::sleep(Duration::from_millis(rng.range(40, 160))).await;
            }
        });
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrap_survives_sigkill_at_random_points_under_concurrent_writes() {
    let mut rng = Rng::from_env("KS_CRASH_SEED");
    let seed = rng.0;
    let kills_wanted = env_num("KS_CRASH_KILLS", 20);
    let keys = env_num("KS_CRASH_KEYS", 2000) as u32;
    eprintln!(
        "crash suite: KS_CRASH_SEED={seed} KS_CRASH_KILLS={kills_wanted} KS_CRASH_KEYS={keys}"
    );
    let started = Instant::now();

    let w = stress::seed("crash", keys, 40, "aws", false);
    // Small batches and few KMS requests in flight: a run then takes long enough, and
    // its writes land in small enough steps, for kills to fall inside it rather than
    // after it (the stand-ins are fast).
    let toml_path = w.dir.join("keyshift.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    let toml = toml
        .replace("batchSize = 256", "batchSize = 16")
        .replace("concurrency = 16", "concurrency = 2");
    std::fs::write(&toml_path, toml).unwrap();
    let before = w.all_keys().await;
    assert_eq!(before.len(), keys as usize);
    // What each seeded key held before anything ran: `_id` -> keyMaterial.
    let original: HashMap<String, String> = before
        .iter()
        .map(|d| (key_of(&d["_id"]), key_of(&d["keyMaterial"])))
        .collect();
    let ids: Vec<Bson> = before.iter().map(|d| d["_id"].clone()).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(Mutex::new(Writes::default()));
    let writer = other_client(&w, ids, seed ^ 0x5eed, stop.clone(), writes.clone());

    let kv = w.key_vault().await;
    let under_aws = || async {
        kv.count_documents(doc! {"masterKey.provider": "aws"})
            .await
            .unwrap()
    };
    let (mut kills, mut runs, mut kills_after_writes, mut finished_early) = (0u64, 0u64, 0u64, 0);
    let mut log = Vec::new();
    while kills < kills_wanted {
        runs += 1;
        assert!(
            runs < kills_wanted * 2,
            "too many runs finished before their kill"
        );
        let moved_before = under_aws().await;
        let remaining = kv
            .count_documents(doc! {"masterKey.provider": {"$ne": "aws"}})
            .await
            .unwrap();
        let kills_left = kills_wanted - kills;
        let trigger = pick_trigger(&mut rng, remaining, kills_left);
        let out = std::fs::File::create(w.dir.join(format!("run-{runs}.out"))).unwrap();
        let err = std::fs::File::create(w.dir.join(format!("run-{runs}.err"))).unwrap();
        let t0 = Instant::now();
        let status = w
            .command(&["rewrap", "--yes", "--json"])
            .env("KEYSHIFT_FAILPOINT", trigger.spec())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .status()
            .unwrap();
        let delay = t0.elapsed().as_millis();
        match status.code() {
            Some(code) => {
                // The point was never reached (every key moved first): a clean finish.
                finished_early += 1;
                assert_eq!(code, 0, "run {runs} failed");
                log.push(format!(
                    "run {runs}: finished before {} at {delay} ms",
                    trigger.spec()
                ));
            }
            None => {
                kills += 1;
                let moved_after = under_aws().await;
                if moved_after > moved_before {
                    kills_after_writes += 1;
                }
                log.push(format!(
                    "kill {kills} (run {runs}) at {} after {delay} ms: keys under aws {moved_before} -> {moved_after}",
                    trigger.spec()
                ));
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    for l in &log {
        eprintln!("  {l}");
    }

    // The rerun that converges, then verify over everything.
    let last = w.keyshift(&["rewrap", "--yes", "--json"]);
    assert_eq!(
        last.status.code(),
        Some(0),
        "final rerun: {}",
        String::from_utf8_lossy(&last.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&last.stdout).unwrap();
    assert_eq!(
        report["notMoved"].as_array().map_or(0, |a| a.len()),
        0,
        "{report}"
    );
    let verify = w.keyshift(&["verify", "--json"]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "verify: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let verify: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();

    let writes = std::mem::take(&mut *writes.lock().unwrap());
    assert!(
        writes.errors.is_empty(),
        "the other client's writes: {:?}",
        writes.errors
    );
    let after = w.all_keys().await;
    let expected_count = original.len() + writes.inserted.len();
    assert_eq!(
        verify["checked"].as_u64(),
        Some(expected_count as u64),
        "{verify}"
    );

    // No key missing, none duplicated, every one under AWS.
    let mut seen = HashSet::new();
    for d in &after {
        assert!(seen.insert(key_of(&d["_id"])), "duplicate key {}", d["_id"]);
        assert_eq!(
            d.get_document("masterKey")
                .unwrap()
                .get_str("provider")
                .ok(),
            Some("aws")
        );
    }
    for id in original.keys().chain(writes.inserted.keys()) {
        assert!(seen.contains(id), "key {id} is missing");
    }
    assert_eq!(after.len(), expected_count);

    // Every keyAltName the other client added survived the rewrap's writes.
    let by_id: HashMap<String, &Document> = after.iter().map(|d| (key_of(&d["_id"]), d)).collect();
    let mut alt_checked = 0;
    for (id, names) in &writes.alt_names {
        let have: Vec<&str> = by_id[id]
            .get_array("keyAltNames")
            .unwrap()
            .iter()
            .filter_map(|b| b.as_str())
            .collect();
        for n in names {
            assert!(
                have.contains(&n.as_str()),
                "keyAltName {n} of {id} was lost"
            );
            alt_checked += 1;
        }
    }

    // Every key that moved is in a backup on disk, with the keyMaterial it had before.
    let backups = w.backups();
    for b in &backups {
        assert_eq!(stress::mode_of(b), 0o600, "{}", b.display());
    }
    let backed = stress::backed_up(&backups);
    for (id, km) in original.iter().chain(writes.inserted.iter()) {
        assert!(
            backed.contains(&(id.clone(), km.clone())),
            "key {id} moved but no backup holds its old keyMaterial"
        );
    }

    // The audit log survived every SIGKILL as a chain that verifies (each killed run's
    // torn line repaired on record by the next), and accounts for every key: moved by
    // some run, or found already moved by a later one (a key written just before a kill
    // whose record the kill cut).
    let log = std::fs::read_to_string(w.audit_log()).unwrap();
    let verdict = keyshift_core::audit::verify(&log);
    assert!(verdict.ok(), "audit chain broken: {:?}", verdict.broken);
    assert_eq!(stress::mode_of(&w.audit_log()), 0o600);
    let recorded: HashSet<String> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["type"] == "key" && (r["outcome"] == "moved" || r["outcome"] == "already"))
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    for d in &after {
        let id = match d.get("_id") {
            Some(Bson::Binary(b)) => {
                bson::Uuid::from_bytes(<[u8; 16]>::try_from(b.bytes.as_slice()).unwrap())
                    .to_string()
            }
            other => panic!("unexpected _id {other:?}"),
        };
        assert!(recorded.contains(&id), "key {id} has no audit record");
    }

    // The oracle, holding only the AWS provider, reads every seeded sample.
    let read = w.oracle_reads("aws").expect("the oracle with only AWS");
    assert!(
        w.oracle_reads("local").is_err(),
        "the local key alone must no longer open the keys"
    );

    eprintln!(
        "crash suite: seed {seed}: {kills} SIGKILLs survived ({kills_after_writes} after writes had begun), \
         {finished_early} runs finished before their kill, {runs} runs + 1 final; other client: {} new DEKs, \
         {alt_checked} keyAltNames added; {} keys verified; {} backups; oracle read {read} samples; {:.1}s",
        writes.inserted.len(),
        expected_count,
        backups.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(kills >= kills_wanted);
    let _ = std::fs::remove_dir_all(&w.dir);
}
