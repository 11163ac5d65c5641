//! Key setups that work today and fail months later (issue #18), through the binary on
//! the test world: an Azure master key without keyVersion (its DEKs die when the key
//! rotates; pinned, they survive), local keys left behind after a move, keys under a
//! provider the config does not name, and `inspect --kms` finding an AWS master key
//! disabled or scheduled for deletion.

mod common;
mod stress;

use std::process::Output;

use stress::Seeded;

fn run(d: &Seeded, config: &str, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["-c", config]);
    d.keyshift(&all)
}

/// `keyshift ARGS -c CONFIG --json`, which must exit `code`.
fn json(d: &Seeded, config: &str, args: &[&str], code: i32) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["-c", config, "--json"]);
    stress::json_of(&all, &d.keyshift(&all), code)
}

/// A copy of the seeded keyshift.toml, edited.
fn config_with(d: &Seeded, name: &str, edit: impl Fn(String) -> String) -> String {
    let toml = std::fs::read_to_string(d.dir.join("keyshift.toml")).unwrap();
    let edited = edit(toml.clone());
    assert_ne!(edited, toml, "{name}: the edit changed nothing");
    std::fs::write(d.dir.join(name), edited).unwrap();
    name.to_string()
}

/// The seeded Azure target (the world's key, pinned) with key `name` instead, pinned to
/// `version` or not pinned.
fn azure_target(toml: String, name: &str, version: Option<&str>) -> String {
    let from = toml
        .find("keyName = \"keyshift-test\"")
        .expect("the seeded Azure key");
    let to = from + toml[from..].find(" }").expect("the end of masterKey");
    let pin = version.map_or(String::new(), |v| format!(", keyVersion = \"{v}\""));
    format!("{}keyName = \"{name}\"{pin}{}", &toml[..from], &toml[to..])
}

/// A stand-in's control endpoint (`KS_AZURE_CONTROL_URL`, `KS_AWS_CONTROL_URL`).
fn control(var: &str, action: &str, body: &str) -> serde_json::Value {
    let url = format!("{}/{action}", common::world_var(&common::world(), var));
    serde_json::from_str(&stress::https_control(&url, body)).unwrap()
}

/// A new Azure key of this test's own (so rotating it disturbs no other test): its name
/// and first version.
fn azure_key(prefix: &str) -> (String, String) {
    let name = common::unique(prefix).replace('_', "-");
    let made = control(
        "KS_AZURE_CONTROL_URL",
        "keys",
        &format!(r#"{{"name": "{name}"}}"#),
    );
    (name, made["version"].as_str().unwrap().to_string())
}

/// Rotates an Azure key: a new current version, as a rotation policy makes.
fn rotate_azure_key(name: &str) -> String {
    let made = control(
        "KS_AZURE_CONTROL_URL",
        "keys",
        &format!(r#"{{"name": "{name}"}}"#),
    );
    made["version"].as_str().unwrap().to_string()
}

/// The one lint an `inspect --json` report holds: (code, keys under it, hint).
fn sole_lint(report: &serde_json::Value) -> (String, u64, String) {
    let lints = report["inventory"]["lints"].as_array().unwrap();
    assert_eq!(lints.len(), 1, "{report}");
    let field = |k: &str| lints[0][k].as_str().unwrap_or_default().to_string();
    (
        field("code"),
        lints[0]["keys"].as_u64().unwrap(),
        field("hint"),
    )
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The premise of KS-AZ-008: DEKs wrapped under an Azure key without keyVersion are
/// unreadable once the key rotates. (The Azure stand-in keeps every version and unwraps
/// with the one the URL names, the current one when it names none, as Key Vault does.)
#[test]
fn an_unpinned_azure_key_loses_its_deks_when_it_rotates() {
    let d = stress::seed("azlint", 3, 3, "azure", false);
    let (name, _) = azure_key("azlint");
    let config = config_with(&d, "own-key.toml", |t| azure_target(t, &name, None));
    let check = json(&d, &config, &["check"], 0);
    let warned: Vec<&serde_json::Value> = check["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["code"] == "KS-AZ-008")
        .collect();
    assert_eq!(warned.len(), 1, "{check}");
    assert_eq!(warned[0]["severity"], "warning");
    assert_eq!(check["valid"], true);

    let out = run(&d, &config, &["rewrap", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(run(&d, &config, &["verify"]).status.success());
    let inspect = json(&d, &config, &["inspect"], 0);
    let (code, keys, hint) = sole_lint(&inspect);
    assert_eq!((code.as_str(), keys), ("KS-INV-010", 3));
    assert!(hint.contains("keyVersion"), "{hint}");

    rotate_azure_key(&name);
    let verify = run(&d, &config, &["verify"]);
    assert_eq!(
        verify.status.code(),
        Some(3),
        "after the key rotated, no DEK under the versionless key unwraps: {}",
        text(&verify)
    );
}

/// What KS-AZ-008 and KS-INV-010 ask for works: rewrap moves keys from the versionless
/// master key to the pinned one, libmongocrypt names the version in every wrap and
/// unwrap, and the keys stay readable after the key rotates.
#[test]
fn pinning_the_version_moves_the_keys_under_it_and_they_survive_rotation() {
    let d = stress::seed("azpin", 3, 3, "azure", false);
    let (name, version) = azure_key("azpin");
    let unpinned = config_with(&d, "unpinned.toml", |t| azure_target(t, &name, None));
    let out = run(&d, &unpinned, &["rewrap", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));

    let pinned = config_with(&d, "pinned.toml", |t| {
        azure_target(t, &name, Some(&version))
    });
    let check = json(&d, &pinned, &["check"], 0);
    assert!(
        !check.to_string().contains("KS-AZ-008"),
        "pinned: no warning: {check}"
    );
    let rewrap = json(&d, &pinned, &["rewrap", "--yes"], 0);
    assert_eq!(
        rewrap["rewrapped"], 3,
        "keys under the versionless key are not under the pinned target: {rewrap}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    for k in rt.block_on(d.all_keys()) {
        let mk = k.get_document("masterKey").unwrap();
        assert_eq!(mk.get_str("keyVersion").unwrap(), version, "{mk}");
    }
    let inspect = json(&d, &pinned, &["inspect"], 0);
    assert_eq!(
        inspect["inventory"]["lints"],
        serde_json::json!([]),
        "{inspect}"
    );

    rotate_azure_key(&name);
    let verify = run(&d, &pinned, &["verify"]);
    assert!(
        verify.status.success(),
        "pinned keys unwrap after rotation: {}",
        text(&verify)
    );
    if let Err(e) = d.oracle_reads("azure") {
        panic!("the oracle (PyMongo) with only azure: {e}");
    }
}

/// A move that left keys behind: inspect names the local key's keys (KS-INV-011), and
/// with the local provider no longer configured, each such key (KS-INV-004), with hints,
/// in JSON and in text.
#[test]
fn keys_left_under_a_local_key_and_unconfigured_providers_are_named() {
    let d = stress::seed("leftbehind", 4, 4, "aws", false);
    // Every fourth seeded key has a keyAltName: move only the others.
    let partial = config_with(&d, "partial.toml", |t| {
        t.replace(
            "[rewrap]\n",
            "[rewrap]\nfilter = '{\"keyAltNames\": {\"$exists\": false}}'\n",
        )
    });
    let before = json(&d, "keyshift.toml", &["inspect"], 0);
    assert_eq!(
        before["inventory"]["lints"],
        serde_json::json!([]),
        "{before}"
    );
    let rewrap = json(&d, &partial, &["rewrap", "--yes"], 0);
    assert_eq!(rewrap["rewrapped"], 3, "{rewrap}");

    let inspect = json(&d, "keyshift.toml", &["inspect"], 0);
    let (code, keys, hint) = sole_lint(&inspect);
    assert_eq!((code.as_str(), keys), ("KS-INV-011", 1));
    assert!(hint.contains("keyshift rewrap"), "{hint}");
    assert_eq!(
        inspect["inventory"]["lints"][0]["masterKey"],
        serde_json::json!({"provider": "local"})
    );
    let out = run(&d, "keyshift.toml", &["inspect"]);
    assert_eq!(out.status.code(), Some(0));
    let shown = text(&out);
    assert!(shown.contains("[KS-INV-011]"), "{shown}");
    assert!(shown.contains("hint: Rerun `keyshift rewrap`"), "{shown}");

    // The local key under another name: keyshift cannot open the key left under `local`.
    let renamed = config_with(&d, "renamed.toml", |t| {
        t.replace("[kmsProviders.local]", "[kmsProviders.\"local:other\"]")
    });
    let inspect = json(&d, &renamed, &["inspect"], 0);
    let unconfigured: Vec<(&str, &str)> = inspect["inventory"]["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "unconfiguredProvider")
        .map(|a| (a["code"].as_str().unwrap(), a["hint"].as_str().unwrap()))
        .collect();
    assert!(
        matches!(unconfigured[..], [("KS-INV-004", hint)] if hint.contains("kmsProviders")),
        "{inspect}"
    );
    let shown = text(&run(&d, &renamed, &["inspect"]));
    assert!(shown.contains("[KS-INV-004]"), "{shown}");
}

/// ScheduleKeyDeletion through the AWS stand-in's KMS API (moto), with boto3 from the
/// oracle's environment.
fn schedule_deletion(key_id: &str) {
    let w = common::world();
    let script = r#"
import os, boto3
kms = boto3.client("kms", region_name=os.environ["R"], endpoint_url=os.environ["U"],
                   aws_access_key_id=os.environ["A"], aws_secret_access_key=os.environ["S"],
                   verify=os.environ["CA"])
kms.schedule_key_deletion(KeyId=os.environ["K"], PendingWindowInDays=7)
"#;
    let status = std::process::Command::new(common::python())
        .args(["-c", script])
        .env("R", common::world_var(&w, "KS_AWS_REGION"))
        .env("U", common::world_var(&w, "KS_AWS_URL"))
        .env("A", common::world_var(&w, "KS_AWS_ACCESS_KEY_ID"))
        .env("S", common::world_var(&w, "KS_AWS_SECRET_ACCESS_KEY"))
        .env("CA", common::world_var(&w, "KS_CA_FILE"))
        .env("K", key_id)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "ScheduleKeyDeletion failed (its error is above)"
    );
}

/// `inspect --kms` asks AWS about each master key (read-only) and reports a disabled key
/// (KS-INV-012) and one scheduled for deletion (KS-INV-013), exit 0; keys under a
/// provider keyshift does not ask are listed as not checked.
#[test]
fn inspect_kms_reports_disabled_and_pending_deletion_aws_keys() {
    let d = stress::seed("kmslint", 3, 3, "aws", false);
    let seeded_arn = common::world_var(&common::world(), "KS_AWS_KEY_ARN");
    let arn = |made: serde_json::Value| made["arn"].as_str().unwrap().to_string();
    let first = arn(control("KS_AWS_CONTROL_URL", "create", "{}"));
    let config = config_with(&d, "own-key.toml", |t| t.replace(&seeded_arn, &first));
    let rewrap = json(&d, &config, &["rewrap", "--yes"], 0);
    assert_eq!(rewrap["rewrapped"], 3, "{rewrap}");

    let healthy = json(&d, &config, &["inspect", "--kms"], 0);
    let kms = healthy["kms"].as_array().unwrap();
    assert_eq!(kms.len(), 1, "{healthy}");
    assert_eq!(kms[0]["status"], "enabled", "{healthy}");
    assert_eq!(kms[0]["keys"], 3);
    assert_eq!(healthy["inventory"]["lints"], serde_json::json!([]));
    let plain = json(&d, &config, &["inspect"], 0);
    assert!(plain.get("kms").is_none(), "without --kms no KMS is asked");

    control(
        "KS_AWS_CONTROL_URL",
        "disable",
        &format!(r#"{{"keyId": "{first}"}}"#),
    );
    let disabled = json(&d, &config, &["inspect", "--kms"], 0);
    assert_eq!(disabled["kms"][0]["status"], "disabled", "{disabled}");
    let (code, keys, hint) = sole_lint(&disabled);
    assert_eq!((code.as_str(), keys), ("KS-INV-012", 3));
    assert!(hint.contains("aws kms enable-key"), "{hint}");
    let out = run(&d, &config, &["inspect", "--kms"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a lint leaves inspect's exit code 0"
    );
    let shown = text(&out);
    assert!(
        shown.contains("[KS-INV-012]") && shown.contains("hint: Enable it"),
        "{shown}"
    );

    // Move the keys to a second key, then schedule that one's deletion.
    let made = control("KS_AWS_CONTROL_URL", "create", "{}");
    let second = arn(made.clone());
    let moved = config_with(&d, "second-key.toml", |t| t.replace(&seeded_arn, &second));
    control(
        "KS_AWS_CONTROL_URL",
        "enable",
        &format!(r#"{{"keyId": "{first}"}}"#),
    );
    let rewrap = json(&d, &moved, &["rewrap", "--yes"], 0);
    assert_eq!(rewrap["rewrapped"], 3, "{rewrap}");
    schedule_deletion(made["keyId"].as_str().unwrap());
    let pending = json(&d, &moved, &["inspect", "--kms"], 0);
    assert_eq!(pending["kms"][0]["status"], "pendingDeletion", "{pending}");
    let (code, keys, hint) = sole_lint(&pending);
    assert_eq!((code.as_str(), keys), ("KS-INV-013", 3));
    assert!(hint.contains("cancel-key-deletion"), "{hint}");
}

/// Keys under Azure are listed as not checked by `inspect --kms` (the Azure and GCP
/// stand-ins serve no key metadata, and keyshift does not read it yet).
#[test]
fn inspect_kms_lists_azure_keys_as_not_checked() {
    let d = stress::seed("kmsaz", 2, 2, "azure", false);
    let out = run(&d, "keyshift.toml", &["rewrap", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let inspect = json(&d, "keyshift.toml", &["inspect", "--kms"], 0);
    let kms = inspect["kms"].as_array().unwrap();
    assert_eq!(kms.len(), 1, "{inspect}");
    assert_eq!(kms[0]["status"], "notChecked");
    assert!(
        kms[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("not checked"),
        "{inspect}"
    );
}
