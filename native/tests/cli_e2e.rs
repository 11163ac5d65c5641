//! The `keyshift` binary end to end on the test world, as a user runs it: a deployment
//! seeded by the official driver under a local key, moved to the AWS KMS stand-in,
//! verified, rolled back. The oracle (PyMongo) judges the data after each step, and no
//! secret appears in anything keyshift printed or wrote.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct World {
    dir: PathBuf,
    db: String,
    key_vault_ns: String,
    env: HashMap<String, String>,
    transcript: String,
}

fn seed(keys: u32, docs: u32) -> World {
    let db = common::unique("cli");
    let key_vault_ns = format!("{db}_kv.__keyVault");
    let dir = std::env::temp_dir().join(&db);
    let out = Command::new(common::python())
        .arg(common::repo_root().join("tests/services/seed.py"))
        .arg("--out")
        .arg(&dir)
        .args(["--keys", &keys.to_string(), "--docs", &docs.to_string()])
        .args(["--target", "aws", "--key-vault", &key_vault_ns, "--db", &db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = std::fs::read_to_string(dir.join("keyshift.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    World {
        dir,
        db,
        key_vault_ns,
        env,
        transcript: String::new(),
    }
}

impl World {
    fn keyshift(&mut self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_keyshift"))
            .args(args)
            .current_dir(&self.dir)
            .envs(&self.env)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        self.transcript
            .push_str(&String::from_utf8_lossy(&out.stdout));
        self.transcript
            .push_str(&String::from_utf8_lossy(&out.stderr));
        out
    }

    fn json(&mut self, args: &[&str], code: i32) -> serde_json::Value {
        let out = self.keyshift(args);
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

    /// The oracle decrypts every seeded sample holding only `provider`.
    fn oracle_reads(&self, provider: &str) -> bool {
        let expected: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(self.dir.join("expected.json")).unwrap())
                .unwrap();
        ["customers", "orders"].iter().all(|name| {
            let samples: Vec<&serde_json::Value> = expected
                .iter()
                .filter(|e| e["collection"] == *name)
                .collect();
            let coll = format!("{}.{name}", self.db);
            let mut cmd = Command::new(common::python());
            cmd.arg(common::repo_root().join("tests/interop/oracle_cli.py"))
                .args(["decrypt", "--coll", &coll])
                .args([
                    "--uri",
                    &self.env["MONGODB_URI"],
                    "--key-vault",
                    &self.key_vault_ns,
                ]);
            for e in &samples {
                cmd.args(["--id", &e["_id"].to_string()]);
            }
            if provider == "local" {
                cmd.arg("--local-key-file")
                    .arg(self.dir.join("master-key.bin"));
            } else {
                cmd.args(["--provider", provider]);
            }
            let out = cmd.output().unwrap();
            out.status.success() && {
                let docs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                docs.len() == samples.len()
                    && samples
                        .iter()
                        .zip(&docs)
                        .all(|(e, d)| d[e["field"].as_str().unwrap()] == e["plaintext"])
            }
        })
    }

    fn backups(&self) -> Vec<PathBuf> {
        let dir = self.dir.join("keyshift-backups");
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Every secret the world holds, in every form it could leak in.
    fn secrets(&self) -> Vec<String> {
        use base64::Engine as _;
        let key = std::fs::read(self.dir.join("master-key.bin")).unwrap();
        let mut s = vec![
            base64::engine::general_purpose::STANDARD.encode(&key),
            hex::encode(&key),
            self.env["AWS_SECRET_ACCESS_KEY"].clone(),
        ];
        s.retain(|x| x.len() >= 16);
        s
    }
}

fn assert_no_secret_in(haystack: &[u8], secrets: &[String], what: &Path) {
    let text = String::from_utf8_lossy(haystack);
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "a secret leaked into {}",
            what.display()
        );
    }
}

#[test]
fn a_user_moves_a_key_vault_to_aws_verifies_and_rolls_back() {
    let mut w = seed(30, 20);

    let check = w.json(&["check", "--json"], 0);
    assert_eq!(check["valid"], true);
    let inspect = w.json(&["inspect", "--json"], 0);
    assert_eq!(inspect["inventory"]["byProvider"]["local"], 30);
    let preflight = w.json(&["preflight", "--json"], 0);
    assert_eq!(preflight["ok"], true, "{preflight}");

    // Without --yes and without a terminal, nothing happens.
    let refused = w.keyshift(&["rewrap"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));

    let dry = w.json(&["rewrap", "--dry-run", "--json"], 0);
    assert_eq!(
        (dry["rewrapped"].as_u64(), dry["backup"].is_null()),
        (Some(30), true)
    );
    assert!(w.backups().is_empty());
    assert_eq!(
        w.json(&["verify", "--json"], 3)["notUnderTarget"]
            .as_array()
            .unwrap()
            .len(),
        30
    );

    let run = w.json(&["rewrap", "--yes", "--json"], 0);
    assert_eq!(run["rewrapped"], 30, "{run}");
    assert_eq!(w.backups().len(), 1);
    let verify = w.json(&["verify", "--json"], 0);
    assert_eq!(
        (verify["verified"].as_bool(), verify["checked"].as_u64()),
        (Some(true), Some(30))
    );
    assert!(
        w.oracle_reads("aws"),
        "PyMongo with only AWS must read every sample"
    );
    assert!(
        !w.oracle_reads("local"),
        "the local key alone must no longer open the keys"
    );

    let again = w.json(&["rewrap", "--yes", "--json"], 0);
    assert_eq!(
        (
            again["alreadyUnderTarget"].as_u64(),
            again["rewrapped"].as_u64()
        ),
        (Some(30), Some(0))
    );

    let backup = w.backups()[0].clone();
    let rollback = w.json(
        &[
            "rollback",
            "--yes",
            "--json",
            "--backup",
            backup.to_str().unwrap(),
        ],
        0,
    );
    assert_eq!(rollback["restored"], 30, "{rollback}");
    assert_eq!(w.json(&["verify", "--json"], 3)["verified"], false);
    assert!(
        w.oracle_reads("local"),
        "after rollback the local key opens every key again"
    );

    // Secret hygiene: nothing printed and no backup holds a secret.
    let secrets = w.secrets();
    assert_no_secret_in(
        w.transcript.as_bytes(),
        &secrets,
        Path::new("keyshift's output"),
    );
    for b in w.backups() {
        assert_no_secret_in(&std::fs::read(&b).unwrap(), &secrets, &b);
    }
}

#[test]
fn a_bad_config_exits_2_with_the_field_and_a_hint() {
    let mut w = seed(1, 1);
    let toml = std::fs::read_to_string(w.dir.join("keyshift.toml")).unwrap();
    std::fs::write(
        w.dir.join("bad.toml"),
        toml.replace("[rewrap]", "[rewrap]\nbatchSise = 3"),
    )
    .unwrap();
    let out = w.json(&["check", "-c", "bad.toml", "--json"], 2);
    let diags = out["diagnostics"].as_array().unwrap();
    assert!(
        diags
            .iter()
            .any(|d| d["path"].as_str().unwrap().contains("batchSise")
                && d["hint"].as_str().unwrap().contains("batchSize")),
        "{out}"
    );
    let rewrap = w.keyshift(&["rewrap", "-c", "bad.toml", "--yes"]);
    assert_eq!(rewrap.status.code(), Some(2));

    std::fs::write(
        w.dir.join("nokey.toml"),
        toml.replace("file:master-key.bin", "file:no-such-key.bin"),
    )
    .unwrap();
    let out = w.json(&["check", "-c", "nokey.toml", "--json"], 2);
    assert!(
        out["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["code"] == "KS-LOC-003" && d["path"] == "/kmsProviders/local/key"),
        "{out}"
    );

    let unset = Command::new(env!("CARGO_BIN_EXE_keyshift"))
        .args(["inspect"])
        .current_dir(&w.dir)
        .env_remove("MONGODB_URI")
        .output()
        .unwrap();
    assert_eq!(unset.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unset.stderr).contains("MONGODB_URI"));
}
