//! Golden tests for plans: the normal rewrap, an exposed local key (rotation), an empty
//! key vault, a vault with keys under an unconfigured provider, and no inventory.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // tests read fixtures (core/clippy.toml)

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyshift_core::config::Config;
use keyshift_core::inventory::analyze;
use keyshift_core::plan::{Level, Mode, plan};
use keyshift_core::validate::check_toml;
use serde_json::{Value, json};

const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn config(exposed: bool) -> Config {
    let text = format!(
        r#"
[keyVault]
uri = "env:MONGODB_URI"
[kmsProviders.local]
key = "file:master-key.txt"
exposed = {exposed}
[kmsProviders.aws]
[target]
provider = "aws"
masterKey = {{ region = "us-east-1", key = "{ARN}" }}
"#
    );
    check_toml(&text).config
}

fn key(n: u8, provider: &str) -> Value {
    // Complete masterKey documents, as drivers write them (inspect flags incomplete ones).
    let mk = match provider.split(':').next().unwrap_or(provider) {
        "aws" => json!({"provider": provider, "region": "us-east-1", "key": ARN}),
        "gcp" => json!({"provider": provider, "projectId": "p", "location": "global",
                        "keyRing": "r", "keyName": "k"}),
        "azure" => json!({"provider": provider, "keyVaultEndpoint": "v.vault.azure.net",
                          "keyName": "k"}),
        _ => json!({"provider": provider}),
    };
    json!({
        "_id": {"$binary": {"base64": STANDARD.encode([n; 16]), "subType": "04"}},
        "keyMaterial": {"$binary": {"base64": STANDARD.encode([1u8; 160]), "subType": "00"}},
        "creationDate": {"$date": {"$numberLong": "1764000000000"}},
        "updateDate": {"$date": {"$numberLong": "1764000000000"}},
        "status": 0,
        "masterKey": mk,
    })
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("KEYSHIFT_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing golden {name}; run with KEYSHIFT_UPDATE_GOLDEN=1"));
    assert!(
        expected == actual,
        "{name} differs from its golden file:\n{actual}"
    );
}

fn json_of(p: &keyshift_core::plan::Plan) -> String {
    serde_json::to_string_pretty(p).unwrap() + "\n"
}

#[test]
fn rewrap_plan() {
    let c = config(false);
    let inv = analyze(&[key(1, "local"), key(2, "local"), key(3, "aws")], Some(&c));
    let p = plan(&c, Some(&inv));
    assert_eq!(p.mode, Mode::Rewrap);
    assert!(p.summary.contains("Rewrap 2 DEK(s)"));
    let ids: Vec<&str> = p.steps.iter().map(|s| s.id).collect();
    assert_eq!(
        ids,
        [
            "create-cmk",
            "grant",
            "check",
            "deploy-transition",
            "preflight",
            "rewrap-dry-run",
            "rewrap",
            "verify",
            "deploy-final",
            "retire-local-key"
        ]
    );
    assert!(p.risks.is_empty(), "{:#?}", p.risks);
    golden("plan-rewrap.json", &json_of(&p));
}

#[test]
fn exposed_key_switches_to_rotation() {
    let c = config(true);
    let p = plan(&c, None);
    assert_eq!(p.mode, Mode::Rotate);
    assert!(p.summary.contains("rewrapping alone would not protect"));
    assert!(p.steps.iter().any(|s| s.id == "rotate"));
    assert!(!p.steps.iter().any(|s| s.id == "rewrap"));
    let exposed = p.risks.iter().find(|r| r.id == "exposed-key").unwrap();
    assert!(exposed.message.contains("does NOT protect data"));
    let commands = |id: &str| {
        p.steps
            .iter()
            .find(|s| s.id == id)
            .unwrap()
            .commands
            .clone()
    };
    assert_eq!(
        commands("rotate-dry-run"),
        ["keyshift rotate --all-collections --dry-run"]
    );
    assert_eq!(
        commands("rotate"),
        ["keyshift rotate --all-collections --yes"]
    );
    assert_eq!(commands("retire"), ["keyshift retire --yes"]);
    let rotate = p.steps.iter().find(|s| s.id == "rotate").unwrap();
    assert!(rotate.why.contains("--partition I/N"));
    assert!(rotate.why.contains("$JOB_COMPLETION_INDEX/N"));
    // Retire comes after verification and before the final stage drops the old provider.
    let ids: Vec<&str> = p.steps.iter().map(|s| s.id).collect();
    let at = |id| ids.iter().position(|s| *s == id).unwrap();
    assert!(at("rotate") < at("verify") && at("verify") < at("retire"));
    assert!(at("retire") < at("deploy-final") && at("deploy-final") < at("destroy-exposed-key"));
    assert!(!ids.contains(&"retire-local-key"));
    golden("plan-rotate.json", &json_of(&p));

    // With [rotate] collections, the commands scan those instead of every collection.
    let mut c = config(true);
    c.rotate = Some(keyshift_core::config::Rotate {
        collections: Some(vec!["app.customers".into()]),
    });
    let p = plan(&c, None);
    let rotate = p.steps.iter().find(|s| s.id == "rotate").unwrap();
    assert_eq!(rotate.commands, ["keyshift rotate --yes"]);
}

#[test]
fn risks_from_the_inventory() {
    let c = config(false);
    let inv = analyze(
        &[key(1, "local"), key(2, "gcp"), key(3, "local:old")],
        Some(&c),
    );
    let p = plan(&c, Some(&inv));
    let ids: Vec<&str> = p.risks.iter().map(|r| r.id).collect();
    assert_eq!(ids, ["unopenable-keys", "mixed-providers"]);
    assert_eq!(p.risks[0].level, Level::Blocker);
    golden("plan-risks.json", &json_of(&p));

    let empty = plan(&c, Some(&analyze(&[], Some(&c))));
    assert_eq!(
        empty.risks.iter().map(|r| r.id).collect::<Vec<_>>(),
        ["empty-key-vault"]
    );

    let done = plan(&c, Some(&analyze(&[key(1, "aws")], Some(&c))));
    assert_eq!(
        done.risks.iter().map(|r| r.id).collect::<Vec<_>>(),
        ["already-current"]
    );

    let mut disabled = key(4, "local");
    disabled["status"] = json!({"$numberInt": "1"});
    let d = plan(&c, Some(&analyze(&[disabled], Some(&c))));
    assert_eq!(
        d.risks.iter().map(|r| r.id).collect::<Vec<_>>(),
        ["disabled-keys"]
    );

    let unknown = plan(&c, None);
    assert_eq!(
        unknown.risks.iter().map(|r| r.id).collect::<Vec<_>>(),
        ["no-inventory"]
    );
}

#[test]
fn invalid_config_still_plans_with_a_blocker() {
    let c = check_toml("[keyVault]\nuri = \"env:X\"\n").config;
    let p = plan(&c, None);
    assert_eq!(p.risks[0].id, "invalid-config");
    assert_eq!(p.risks[0].level, Level::Blocker);
}

#[test]
fn key_documents_libmongocrypt_refuses_are_a_damaged_keys_risk() {
    let c = config(false);
    let mut odd = key(4, "local");
    odd["comment"] = json!("added by hand");
    let inv = analyze(&[key(1, "local"), odd], Some(&c));
    let p = plan(&c, Some(&inv));
    let damaged = p.risks.iter().find(|r| r.id == "damaged-keys").unwrap();
    assert!(
        damaged.message.starts_with("1 key document(s)"),
        "{}",
        damaged.message
    );
}

/// aws → gcp: a KMS source. The plan grants decrypt on the source key the key vault
/// holds and, after the waiting period, revokes it; no local key is mentioned anywhere.
#[test]
fn a_kms_source_gets_a_source_grant_and_no_local_key_steps() {
    let c = check_toml(
        r#"
[keyVault]
uri = "env:MONGODB_URI"
[kmsProviders.aws]
accessKeyId = "env:AWS_ACCESS_KEY_ID"
secretAccessKey = "env:AWS_SECRET_ACCESS_KEY"
[kmsProviders.gcp]
email = "keyshift@proj.iam.gserviceaccount.com"
privateKey = "file:gcp-key.pem"
[target]
provider = "gcp"
masterKey = { projectId = "proj", location = "global", keyRing = "ring", keyName = "key" }
"#,
    )
    .config;
    let inv = analyze(&[key(1, "aws"), key(2, "aws")], Some(&c));
    let p =
        keyshift_core::plan::plan_for(&c, Some(&inv), Some(keyshift_core::generate::Lang::Python));
    let ids: Vec<&str> = p.steps.iter().map(|s| s.id).collect();
    assert!(
        ids.contains(&"grant-source") && ids.contains(&"retire-source-grant"),
        "{ids:?}"
    );
    assert!(!ids.contains(&"retire-local-key"), "{ids:?}");
    let all = serde_json::to_string(&p).unwrap();
    for absent in ["shred", "MASTER_KEY_FILE", "local key", "LANG"] {
        assert!(!all.contains(absent), "{absent} in {all}");
    }
    let step = |id: &str| {
        p.steps
            .iter()
            .find(|s| s.id == id)
            .unwrap()
            .commands
            .join("\n")
    };
    assert!(
        step("grant-source")
            .contains("keyshift policy --document aws > keyshift-source-aws-policy.json")
    );
    assert!(step("retire-source-grant").contains(&format!(
        "aws kms disable-key --region us-east-1 --key-id {ARN}"
    )));
    assert!(step("deploy-transition").contains("--lang python"));
    assert!(step("grant").contains("roles/cloudkms.cryptoKeyEncrypterDecrypter"));
    let pol = keyshift_core::policy::policy_for(&c, Some(&inv)).unwrap();
    assert_eq!(pol.sources.len(), 1);
    let source: Value = serde_json::from_str(&pol.sources[0].document).unwrap();
    assert_eq!(source["Statement"][0]["Action"], json!(["kms:Decrypt"]));
    assert_eq!(source["Statement"][0]["Resource"], json!([ARN]));
    golden("plan-aws-to-gcp.json", &json_of(&p));
}

/// The local key's real path, not a placeholder; a key in an environment variable is
/// removed from where it is set.
#[test]
fn retiring_a_local_key_names_where_it_is() {
    let p = plan(&config(false), None);
    let retire = p.steps.iter().find(|s| s.id == "retire-local-key").unwrap();
    assert!(
        retire
            .commands
            .contains(&"shred -u master-key.txt".to_string()),
        "{retire:?}"
    );
    let mut c = config(false);
    if let Some(keyshift_core::config::Provider::Local(l)) = c.kms_providers.get_mut("local") {
        l.key = Some("env:LOCAL_MASTER_KEY".into());
    }
    let p = plan(&c, None);
    let retire = p.steps.iter().find(|s| s.id == "retire-local-key").unwrap();
    assert!(
        retire
            .commands
            .iter()
            .any(|c| c.contains("remove LOCAL_MASTER_KEY")),
        "{retire:?}"
    );
    assert!(!retire.commands.iter().any(|c| c.contains("shred")));
}
