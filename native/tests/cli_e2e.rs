//! The `keyshift` binary end to end on the test world, as a user runs it: a deployment
//! seeded by the official driver under a local key, moved to the AWS KMS stand-in,
//! verified, rolled back. The oracle (PyMongo) judges the data after each step, and no
//! secret appears in anything keyshift printed or wrote.

mod common;
mod stress;

use std::path::Path;
use std::process::{Command, Output};

use stress::Seeded;

/// A seeded deployment and everything keyshift printed in it.
struct World {
    seeded: Seeded,
    transcript: String,
}

fn seed(keys: u32, docs: u32) -> World {
    World {
        seeded: stress::seed("cli", keys, docs, "aws", false),
        transcript: String::new(),
    }
}

impl std::ops::Deref for World {
    type Target = Seeded;
    fn deref(&self) -> &Seeded {
        &self.seeded
    }
}

impl World {
    fn keyshift(&mut self, args: &[&str]) -> Output {
        let out = self.seeded.keyshift(args);
        self.transcript
            .push_str(&String::from_utf8_lossy(&out.stdout));
        self.transcript
            .push_str(&String::from_utf8_lossy(&out.stderr));
        out
    }

    fn json(&mut self, args: &[&str], code: i32) -> serde_json::Value {
        let out = self.keyshift(args);
        stress::json_of(args, &out, code)
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
        w.oracle_reads("aws").is_ok(),
        "PyMongo with only AWS must read every sample"
    );
    assert!(
        w.oracle_reads("local").is_err(),
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
        w.oracle_reads("local").is_ok(),
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
