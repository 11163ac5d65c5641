//! Shared by the suites that drive a seeded deployment (the stress suites crash.rs,
//! db_faults.rs, bad_input.rs, bad_keys.rs, secrets.rs, kms_permanent.rs, and cli_e2e.rs,
//! moves_e2e.rs, rewrap_engine.rs, aws_preflight.rs, kms_faults.rs, rotate_e2e.rs,
//! rotate_robust.rs): a seeded deployment, the `keyshift` binary run as a user runs it,
//! the oracle (PyMongo with only the named provider), the key vault as it really is, and
//! the backups as they really are.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bson::{Bson, Document};
use futures_util::TryStreamExt;

use super::common;

/// A seeded deployment: its directory (keyshift.toml, keyshift.env, master-key.bin,
/// expected.json), its namespaces and the env keyshift needs.
pub struct Seeded {
    pub dir: PathBuf,
    pub db: String,
    pub key_vault_ns: String,
    pub env: HashMap<String, String>,
    /// A program every keyshift and oracle run goes through (tests/services/with-dns
    /// for a mongodb+srv:// deployment), or none.
    pub wrapper: Option<PathBuf>,
}

/// A command for `program`, through `wrapper` when there is one.
fn wrapped(wrapper: &Option<PathBuf>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match wrapper {
        Some(w) => {
            let mut c = Command::new(w);
            c.arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Seeds `keys` local DEKs and `docs` documents, with a keyshift.toml targeting `target`.
pub fn seed(prefix: &str, keys: u32, docs: u32, target: &str, via_proxy: bool) -> Seeded {
    let extra: &[&str] = if via_proxy { &["--via-proxy"] } else { &[] };
    seed_with(prefix, keys, docs, target, extra)
}

/// As [`seed`], passing `extra` arguments to seed.py (`--via-proxy`, `--nested`,
/// `--kmip-delegated`, ...).
pub fn seed_with(prefix: &str, keys: u32, docs: u32, target: &str, extra: &[&str]) -> Seeded {
    seed_in(prefix, keys, docs, target, extra, "KS_MONGODB_URI", None)
}

/// As [`seed_with`], into the deployment the world variable `uri_var` names (e.g.
/// KS_MONGODB_AUTH_URI), every run going through `wrapper` (e.g. with-dns).
pub fn seed_in(
    prefix: &str,
    keys: u32,
    docs: u32,
    target: &str,
    extra: &[&str],
    uri_var: &str,
    wrapper: Option<PathBuf>,
) -> Seeded {
    let db = common::unique(prefix);
    let key_vault_ns = format!("{db}_kv.__keyVault");
    let dir = std::env::temp_dir().join(&db);
    let mut cmd = wrapped(&wrapper, common::python());
    cmd.arg(common::repo_root().join("tests/services/seed.py"))
        .arg("--out")
        .arg(&dir)
        .args(["--keys", &keys.to_string(), "--docs", &docs.to_string()])
        .args([
            "--target",
            target,
            "--key-vault",
            &key_vault_ns,
            "--db",
            &db,
        ]);
    cmd.args(extra).args(["--mongodb-uri-var", uri_var]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "seed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = std::fs::read_to_string(dir.join("keyshift.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Seeded {
        dir,
        db,
        key_vault_ns,
        env,
        wrapper,
    }
}

impl Seeded {
    /// A `keyshift` command in the deployment's directory with its env.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = wrapped(&self.wrapper, env!("CARGO_BIN_EXE_keyshift"));
        cmd.args(args)
            .current_dir(&self.dir)
            .envs(&self.env)
            .env_remove("RUST_BACKTRACE")
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// Runs `keyshift ARGS` to the end.
    pub fn keyshift(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// The oracle decrypts every seeded sample holding only `provider` (or only the
    /// local key for "local"). Err: what it said.
    pub fn oracle_reads(&self, provider: &str) -> Result<usize, String> {
        let expected: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(self.dir.join("expected.json")).unwrap())
                .unwrap();
        let mut read = 0;
        for name in ["customers", "orders"] {
            let samples: Vec<&serde_json::Value> = expected
                .iter()
                .filter(|e| e["collection"] == name)
                .collect();
            if samples.is_empty() {
                continue;
            }
            let ids: Vec<String> = samples.iter().map(|e| e["_id"].to_string()).collect();
            let out = self.oracle_decrypt(name, provider, &ids);
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            let docs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if docs.len() != samples.len() {
                return Err(format!("{} of {} samples read", docs.len(), samples.len()));
            }
            for (e, d) in samples.iter().zip(&docs) {
                if d[e["field"].as_str().unwrap()] != e["plaintext"] {
                    return Err(format!("sample {} decrypted to something else", e["_id"]));
                }
            }
            read += samples.len();
        }
        Ok(read)
    }

    /// The oracle's `decrypt` of the documents `ids` (extended JSON) of `coll` in the
    /// seeded database, holding only `provider` (or only the local key for "local").
    pub fn oracle_decrypt(&self, coll: &str, provider: &str, ids: &[String]) -> Output {
        let coll = format!("{}.{coll}", self.db);
        let mut cmd = wrapped(&self.wrapper, common::python());
        cmd.arg(common::repo_root().join("tests/interop/oracle_cli.py"))
            .args(["decrypt", "--coll", &coll])
            .args([
                "--uri",
                &self.env["MONGODB_URI"],
                "--key-vault",
                &self.key_vault_ns,
            ]);
        for id in ids {
            cmd.args(["--id", id]);
        }
        if provider == "local" {
            cmd.arg("--local-key-file")
                .arg(self.dir.join("master-key.bin"));
        } else {
            cmd.args(["--provider", provider]);
        }
        cmd.output().unwrap()
    }

    /// The key vault collection (a fresh client).
    pub async fn key_vault(&self) -> mongodb::Collection<Document> {
        let (db, coll) = self.key_vault_ns.split_once('.').unwrap();
        mongodb::Client::with_uri_str(&self.env["MONGODB_URI"])
            .await
            .unwrap()
            .database(db)
            .collection(coll)
    }

    /// Every key document, in `_id` order.
    pub async fn all_keys(&self) -> Vec<Document> {
        self.key_vault()
            .await
            .find(bson::doc! {})
            .sort(bson::doc! {"_id": 1})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    }

    /// The backup files written so far (not the audit log beside them).
    pub fn backups(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.join("keyshift-backups"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.file_name().is_some_and(|n| n != "audit.jsonl"));
        v.sort();
        v
    }

    /// The audit log (default place: beside the backups).
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("keyshift-backups/audit.jsonl")
    }
}

/// The JSON a `keyshift ARGS --json` run printed, after asserting it exited `code`.
pub fn json_of(args: &[&str], out: &Output, code: i32) -> serde_json::Value {
    assert_eq!(
        out.status.code(),
        Some(code),
        "keyshift {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "keyshift {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The canonical extended JSON of a BSON value, as a map key.
pub fn key_of(v: &Bson) -> String {
    v.clone().into_canonical_extjson().to_string()
}

/// Every (`_id`, `keyMaterial`) pair held by the backups in `files`, read the way a
/// person would: a line that does not parse (the tail of a file whose writer was
/// killed) is skipped, so only what really is on disk counts.
pub fn backed_up(files: &[PathBuf]) -> HashSet<(String, String)> {
    let mut out = HashSet::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for line in text.lines().skip(1) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let Ok(Bson::Document(d)) = Bson::try_from(v) else {
                continue;
            };
            if let (Some(id), Some(km)) = (d.get("_id"), d.get("keyMaterial")) {
                out.insert((key_of(id), key_of(km)));
            }
        }
    }
    out
}

/// Mode bits of a file.
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A small deterministic generator (splitmix64), so every random choice a suite makes
/// is reproducible from the seed it prints.
pub struct Rng(pub u64);

impl Rng {
    /// From `$VAR` if set, else from the clock; the caller prints it.
    pub fn from_env(var: &str) -> Self {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    % 1_000_000_007
            });
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

/// A request to a stand-in's TLS control endpoint (the AWS KMS stand-in's `/__ks/...`),
/// through curl with the test CA.
pub fn https_control(url: &str, body: &str) -> String {
    let w = common::world();
    let out = Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "--cacert",
            &common::world_var(&w, "KS_CA_FILE"),
        ])
        .args([
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
            url,
        ])
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "POST {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `configureFailPoint failCommand` on the wire stand-in (admin database).
pub async fn fail_point(command: Document) {
    let client = common::mongo_client().await;
    client
        .database("admin")
        .run_command(command)
        .await
        .expect("configureFailPoint");
}
