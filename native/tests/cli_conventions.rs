//! The command line's conventions, as a shell user relies on them:
//!
//! - results on stdout (`keyshift plan > plan.txt` captures the plan), progress and
//!   errors on stderr;
//! - `--json` prints exactly one JSON document, even when the command fails;
//! - a closed stdout (`| head -c 10`) ends the process quietly, never a panic;
//! - plan says when the key vault could not be read, and how long it waited;
//! - `keyshift policy --document WHICH` writes exactly the file the grant reads;
//! - shell completions and a man page.

mod common;
mod stress;

use std::process::{Command, Output, Stdio};

fn keyshift(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keyshift"));
    c.args(args).current_dir(dir).stdin(Stdio::null());
    c
}

/// An aws -> gcp configuration (a KMS source) in a fresh directory; its key vault URI
/// points at a port where nothing listens.
fn aws_to_gcp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(common::unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("keyshift.toml"),
        r#"
[keyVault]
uri = "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=2000"
[kmsProviders.aws]
accessKeyId = "env:AWS_ACCESS_KEY_ID"
secretAccessKey = "env:AWS_SECRET_ACCESS_KEY"
[kmsProviders.gcp]
email = "keyshift@my-project.iam.gserviceaccount.com"
privateKey = "file:gcp-key.pem"
[target]
provider = "gcp"
masterKey = { projectId = "my-project", location = "global", keyRing = "ring", keyName = "key" }
"#,
    )
    .unwrap();
    dir
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let dir = aws_to_gcp_dir("epipe");
    for args in [
        &["snippet", "--lang", "python", "--json"][..],
        &["snippet", "--lang", "java"],
        &["completions", "bash"],
        &["man"],
        &["check", "--json"],
    ] {
        // The reading end is closed before keyshift writes: every write gets EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out: Output = keyshift(&dir, args)
            .env("AWS_ACCESS_KEY_ID", "x")
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
            .wait_with_output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
    // As a shell user writes it.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} snippet --lang python --json | head -c 10",
            env!("CARGO_BIN_EXE_keyshift")
        ))
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout).len(), 10);
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn results_go_to_stdout_and_plan_says_when_it_could_not_read_the_key_vault() {
    let dir = aws_to_gcp_dir("stdout");
    let plan_file = std::fs::File::create(dir.join("plan.txt")).unwrap();
    let started = std::time::Instant::now();
    let out = keyshift(&dir, &["plan", "--lang", "node"])
        .stdout(Stdio::from(plan_file))
        .output()
        .unwrap();
    let waited = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let plan = std::fs::read_to_string(dir.join("plan.txt")).unwrap();
    assert!(
        plan.contains("1. ") && plan.contains("keyshift rewrap --yes"),
        "{plan}"
    );
    assert!(
        plan.contains("keyshift snippet --lang node --stage transition"),
        "{plan}"
    );
    assert!(
        !plan.contains("shred"),
        "an aws source has no key file: {plan}"
    );
    assert!(
        stderr.contains("the key vault was not read") && stderr.contains("gave up after"),
        "{stderr}"
    );
    eprintln!("plan gave up on the key vault after {waited:?}");

    // check's findings are its result: stdout.
    std::fs::write(
        dir.join("bad.toml"),
        "[keyVault]\nuri = \"mongodb+srv://a.example.net:27017\"\n",
    )
    .unwrap();
    let out = keyshift(&dir, &["check", "-c", "bad.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stdout).contains("KS-KV-003"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn json_is_one_document_even_on_failure() {
    let dir = aws_to_gcp_dir("jsonfail");
    for (args, code) in [
        (&["check", "--json", "-c", "missing.toml"][..], 2),
        (&["inspect", "--json", "-c", "missing.toml"], 2),
        (&["rewrap", "--json"], 2), // no --yes and no terminal: refused
    ] {
        let out = keyshift(&dir, args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: no JSON ({e}): {}", text(&out.stdout)));
        assert_eq!(doc["ok"], false, "{doc}");
        assert_eq!(doc["exitCode"], code, "{doc}");
        assert!(!doc["error"].as_str().unwrap().is_empty());
    }
}

#[test]
fn policy_documents_are_the_files_the_grants_read() {
    let dir = aws_to_gcp_dir("policydoc");
    // the gcp target: the IAM binding.
    let out = keyshift(&dir, &["policy", "--document", "target"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["bindings"][0]["role"],
        "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    );
    // the aws source: decrypt only, as JSON a put-role-policy accepts.
    let out = keyshift(&dir, &["policy", "--document", "aws"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["Statement"][0]["Action"],
        serde_json::json!(["kms:Decrypt"])
    );
    let out = keyshift(&dir, &["policy", "--document", "azure"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("target, aws"),
        "{}",
        text(&out.stderr)
    );
    // The whole policy on stdout: the target and, separately, the source.
    let out = keyshift(&dir, &["policy"]).output().unwrap();
    let all = text(&out.stdout);
    assert!(
        all.contains("# Target `gcp`") && all.contains("# Source `aws`"),
        "{all}"
    );
    assert!(all.contains("roles/cloudkms.cryptoKeyEncrypterDecrypter"));
    assert!(all.contains("aws iam delete-role-policy"), "{all}");
}

#[test]
fn completions_and_man_page() {
    let dir = std::env::temp_dir();
    let out = keyshift(&dir, &["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    let script = text(&out.stdout);
    assert!(
        script.contains("_keyshift") && script.contains("rewrap"),
        "{script}"
    );
    for shell in ["zsh", "fish"] {
        let out = keyshift(&dir, &["completions", shell]).output().unwrap();
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
    let out = keyshift(&dir, &["man"]).output().unwrap();
    assert!(out.status.success());
    let man = text(&out.stdout);
    assert!(
        man.contains(".TH keyshift") && man.contains("rewrap"),
        "{}",
        &man[..200.min(man.len())]
    );
}

#[test]
fn check_reports_files_that_are_not_there() {
    let dir = aws_to_gcp_dir("files");
    let toml = std::fs::read_to_string(dir.join("keyshift.toml")).unwrap();
    std::fs::write(
        dir.join("keyshift.toml"),
        format!("{toml}\n[tlsOptions.gcp]\ntlsCAFile = \"certs/ca.pem\"\n"),
    )
    .unwrap();
    let out = keyshift(&dir, &["check", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "KS-CFG-006")
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/kmsProviders/gcp/privateKey", "/tlsOptions/gcp/tlsCAFile"],
        "{doc}"
    );
    // Once the files exist, the findings go.
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::write(dir.join("certs/ca.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
    std::fs::write(dir.join("gcp-key.pem"), "-----BEGIN PRIVATE KEY-----\n").unwrap();
    let out = keyshift(&dir, &["check", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}
