//! Lints for key setups that work today and fail months later (issue #18): an Azure
//! master key without keyVersion (check, plan, policy, inspect), local keys left behind
//! after a move, keys under providers the config does not name, and what `inspect --kms`
//! makes of AWS DescribeKey answers. Every inventory finding carries a registered,
//! documented code and a hint.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyshift_core::aws_key::KeyFacts;
use keyshift_core::config::{Config, ProviderKind, parse_toml};
use keyshift_core::diagnostic::{Severity, codes};
use keyshift_core::inventory::{
    AnomalyKind, Inventory, KmsStatus, analyze, judge_aws_key, unchecked_reason,
};
use keyshift_core::validate::check_toml;
use serde_json::{Value, json};

const DOC: &str = include_str!("../../docs/config.md");
const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const VERSION: &str = "78deebed173b48e48f55abf87ed4cf71";

fn azure_toml(endpoint: &str, version: Option<&str>) -> String {
    let version = version.map_or(String::new(), |v| format!(", keyVersion = \"{v}\""));
    format!(
        r#"
[keyVault]
uri = "env:MONGODB_URI"
[kmsProviders.local]
key = "file:master-key.txt"
[kmsProviders.azure]
tenantId = "72f988bf-86f1-41af-91ab-2d7cd011db47"
clientId = "00001111-aaaa-2222-bbbb-3333cccc4444"
clientSecret = "env:AZURE_CLIENT_SECRET"
[target]
provider = "azure"
masterKey = {{ keyVaultEndpoint = "{endpoint}", keyName = "ks-cmk"{version} }}
"#
    )
}

/// A configuration with `providers` (TOML sections) moving to `target`.
fn config_for(providers: &str, target: &str, master_key: &str) -> Config {
    let text = format!(
        "[keyVault]\nuri = \"env:MONGODB_URI\"\n{providers}\n[target]\nprovider = \"{target}\"\nmasterKey = {master_key}\n"
    );
    let parsed = parse_toml(&text);
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    parsed.config
}

fn aws_config() -> Config {
    config_for(
        "[kmsProviders.local]\nkey = \"file:k\"\n[kmsProviders.aws]",
        "aws",
        &format!("{{ region = \"us-east-1\", key = \"{ARN}\" }}"),
    )
}

fn key(n: u8, master_key: Value, len: usize) -> Value {
    json!({
        "_id": {"$binary": {"base64": STANDARD.encode([n; 16]), "subType": "04"}},
        "keyMaterial": {"$binary": {"base64": STANDARD.encode(vec![7u8; len]), "subType": "00"}},
        "creationDate": {"$date": 0}, "updateDate": {"$date": 0}, "status": 0,
        "masterKey": master_key,
    })
}

fn local(n: u8) -> Value {
    key(n, json!({"provider": "local"}), 160)
}

fn aws(n: u8) -> Value {
    key(
        n,
        json!({"provider": "aws", "region": "us-east-1", "key": ARN}),
        184,
    )
}

fn azure(n: u8, name: &str, version: Option<&str>) -> Value {
    let mut mk = json!({"provider": "azure", "keyVaultEndpoint": "my-vault.vault.azure.net", "keyName": name});
    if let Some(v) = version {
        mk["keyVersion"] = json!(v);
    }
    key(n, mk, 256)
}

fn lint_codes(inv: &Inventory) -> Vec<(&str, usize)> {
    inv.lints.iter().map(|l| (l.code, l.keys)).collect()
}

#[test]
fn an_azure_target_without_key_version_warns_and_says_how_to_pin_it() {
    let parsed = check_toml(&azure_toml("my-vault.vault.azure.net", None));
    let found: Vec<_> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.code == codes::AZ_NO_KEY_VERSION)
        .collect();
    assert_eq!(found.len(), 1, "{:#?}", parsed.diagnostics);
    let d = found[0];
    assert_eq!(d.severity, Severity::Warning, "check still exits 0");
    assert_eq!(d.path, "/target/masterKey/keyVersion");
    assert!(d.message.contains("rotates"), "{}", d.message);
    assert!(d.message.contains("unreadable"), "{}", d.message);
    assert!(
        d.hint.contains(
            "az keyvault key show --vault-name my-vault --name ks-cmk --query key.kid -o tsv"
        ),
        "{}",
        d.hint
    );
    assert!(d.hint.contains("target.masterKey.keyVersion"), "{}", d.hint);
    assert!(!keyshift_core::diagnostic::has_errors(&parsed.diagnostics));

    let hsm = check_toml(&azure_toml("https://myhsm.managedhsm.azure.net", None));
    let d = hsm
        .diagnostics
        .iter()
        .find(|d| d.code == codes::AZ_NO_KEY_VERSION)
        .expect("warned");
    assert!(
        d.hint.contains("--hsm-name myhsm --name ks-cmk"),
        "{}",
        d.hint
    );

    let pinned = check_toml(&azure_toml("my-vault.vault.azure.net", Some(VERSION)));
    assert!(pinned.diagnostics.is_empty(), "{:#?}", pinned.diagnostics);
}

#[test]
fn plan_and_policy_say_how_to_pin_an_azure_target() {
    let unpinned = parse_toml(&azure_toml("my-vault.vault.azure.net", None)).config;
    let plan = keyshift_core::plan::plan(&unpinned, None);
    let pin = plan
        .steps
        .iter()
        .find(|s| s.id == "pin-key-version")
        .expect("a pin step");
    assert_eq!(
        pin.commands,
        ["az keyvault key show --vault-name my-vault --name ks-cmk --query key.kid -o tsv"]
    );
    assert!(pin.why.contains("keyVersion"), "{}", pin.why);
    let before_rewrap = |id: &str| plan.steps.iter().position(|s| s.id == id).unwrap();
    assert!(before_rewrap("pin-key-version") < before_rewrap("rewrap"));
    let policy = keyshift_core::policy::policy(&unpinned).unwrap();
    assert!(
        policy
            .notes
            .iter()
            .any(|n| n.contains("keyVersion") && n.contains("az keyvault key show")),
        "{:#?}",
        policy.notes
    );

    let pinned = parse_toml(&azure_toml("my-vault.vault.azure.net", Some(VERSION))).config;
    let plan = keyshift_core::plan::plan(&pinned, None);
    assert!(!plan.steps.iter().any(|s| s.id == "pin-key-version"));
    let policy = keyshift_core::policy::policy(&pinned).unwrap();
    assert!(!policy.notes.iter().any(|n| n.contains("keyVersion")));
}

#[test]
fn keys_under_an_unpinned_azure_key_are_counted_per_master_key() {
    let docs = vec![
        azure(1, "a", None),
        azure(2, "a", None),
        azure(3, "b", None),
        azure(4, "a", Some(VERSION)),
        local(5),
    ];
    let inv = analyze(&docs, None);
    let mut found = lint_codes(&inv);
    found.sort();
    assert_eq!(
        found,
        [
            (codes::INV_AZURE_UNPINNED, 1),
            (codes::INV_AZURE_UNPINNED, 2)
        ]
    );
    let a = inv.lints.iter().find(|l| l.keys == 2).unwrap();
    assert_eq!(a.master_key["keyName"], "a");
    assert!(
        a.hint
            .contains("az keyvault key show --vault-name my-vault --name a"),
        "{}",
        a.hint
    );
    assert!(a.message.contains("rotates"), "{}", a.message);

    // The plan warns about them.
    let config = parse_toml(&azure_toml("my-vault.vault.azure.net", Some(VERSION))).config;
    let inv = analyze(&docs, Some(&config));
    let plan = keyshift_core::plan::plan(&config, Some(&inv));
    let risk = plan
        .risks
        .iter()
        .find(|r| r.id == "azure-unpinned-keys")
        .expect("a risk");
    assert!(risk.message.starts_with("3 key(s)"), "{}", risk.message);
}

#[test]
fn local_keys_left_behind_after_a_move_are_reported() {
    let config = aws_config();
    // Before the move: every key is under the local key, which is the plan, not a lint.
    let before = analyze(&[local(1), local(2)], Some(&config));
    assert!(before.lints.is_empty(), "{:#?}", before.lints);
    // Part moved: the rest is left behind.
    let after = analyze(&[aws(1), local(2), aws(3)], Some(&config));
    assert_eq!(lint_codes(&after), [(codes::INV_LOCAL_LEFT_BEHIND, 1)]);
    let lint = &after.lints[0];
    assert_eq!(lint.master_key, json!({"provider": "local"}));
    assert!(lint.hint.contains("keyshift rewrap"), "{}", lint.hint);
    assert!(lint.message.contains("lost"), "{}", lint.message);
    // Without a target there is no move to judge.
    assert!(analyze(&[aws(1), local(2)], None).lints.is_empty());
    // Keys moved to another KMS count as a move too (a later target).
    let gcp_target = config_for(
        "[kmsProviders.local]\nkey = \"file:k\"\n[kmsProviders.gcp]",
        "gcp",
        r#"{ projectId = "my-project", location = "global", keyRing = "r", keyName = "k" }"#,
    );
    let later = analyze(&[aws(1), local(2)], Some(&gcp_target));
    assert!(
        lint_codes(&later).contains(&(codes::INV_LOCAL_LEFT_BEHIND, 1)),
        "{:#?}",
        later.lints
    );
    // A local target (a local key rotation): the old local key's keys are left behind,
    // the new one's are not.
    let local_target = config_for(
        "[kmsProviders.local]\nkey = \"file:old\"\n[kmsProviders.\"local:new\"]\nkey = \"file:new\"",
        "local:new",
        "{}",
    );
    let rotation = analyze(
        &[
            key(1, json!({"provider": "local:new"}), 160),
            local(2),
            local(3),
        ],
        Some(&local_target),
    );
    assert_eq!(lint_codes(&rotation), [(codes::INV_LOCAL_LEFT_BEHIND, 2)]);
    assert_eq!(rotation.lints[0].master_key, json!({"provider": "local"}));
}

#[test]
fn keys_under_a_provider_the_config_does_not_name_have_a_code_and_a_hint() {
    let config = aws_config();
    let inv = analyze(
        &[key(1, json!({"provider": "local:legacy"}), 160), aws(2)],
        Some(&config),
    );
    let a = inv
        .anomalies
        .iter()
        .find(|a| a.kind == AnomalyKind::UnconfiguredProvider)
        .expect("flagged");
    assert_eq!(a.code, codes::INV_UNCONFIGURED_PROVIDER);
    assert!(a.hint.contains("kmsProviders"), "{}", a.hint);
    let v = serde_json::to_value(&inv).unwrap();
    assert_eq!(v["anomalies"][0]["code"], "KS-INV-004");
    assert_eq!(v["anomalies"][0]["kind"], "unconfiguredProvider");
    assert!(
        v["anomalies"][0]["hint"]
            .as_str()
            .unwrap()
            .contains("kmsProviders")
    );
    assert!(v["lints"].is_array());
}

#[test]
fn every_anomaly_kind_has_its_own_registered_documented_code_and_a_hint() {
    let kinds = [
        AnomalyKind::NotADocument,
        AnomalyKind::NoMasterKey,
        AnomalyKind::UnknownProvider,
        AnomalyKind::UnconfiguredProvider,
        AnomalyKind::NoKeyMaterial,
        AnomalyKind::KeyMaterialSize,
        AnomalyKind::DuplicateAltName,
        AnomalyKind::UnknownField,
        AnomalyKind::MalformedField,
    ];
    let mut seen = std::collections::BTreeSet::new();
    for kind in kinds {
        let code = kind.code();
        assert!(seen.insert(code), "{code} used twice");
        assert!(codes::ALL.iter().any(|(c, _)| *c == code), "{code}");
        assert!(!kind.hint().is_empty());
        // The anomaly table in docs/config.md names the kind beside its code.
        let name = serde_json::to_value(kind).unwrap();
        let row = format!("| `{}` | `{code}` |", name.as_str().unwrap());
        assert!(DOC.contains(&row), "docs/config.md lacks {row}");
    }
}

fn facts(state: &'static str) -> KeyFacts<'static> {
    KeyFacts {
        enabled: state == "Enabled",
        state: Some(state),
        spec: Some("SYMMETRIC_DEFAULT"),
        usage: Some("ENCRYPT_DECRYPT"),
        arn: Some(ARN),
    }
}

#[test]
fn describe_key_answers_become_kms_checks_and_lints() {
    let mk = json!({"provider": "aws", "region": "us-east-1", "key": ARN});
    let (check, lint) = judge_aws_key(&mk, 5, &facts("Enabled"));
    assert_eq!(check.status, KmsStatus::Enabled);
    assert_eq!(check.keys, 5);
    assert!(lint.is_none());

    let (check, lint) = judge_aws_key(&mk, 5, &facts("Disabled"));
    assert_eq!(check.status, KmsStatus::Disabled);
    let lint = lint.expect("a lint");
    assert_eq!((lint.code, lint.keys), (codes::INV_KMS_KEY_DISABLED, 5));
    assert!(lint.hint.contains("aws kms enable-key --region us-east-1"));
    assert!(lint.message.contains("Disabled"));

    let (check, lint) = judge_aws_key(&mk, 2, &facts("PendingDeletion"));
    assert_eq!(check.status, KmsStatus::PendingDeletion);
    let lint = lint.expect("a lint");
    assert_eq!(lint.code, codes::INV_KMS_KEY_PENDING_DELETION);
    assert!(lint.hint.contains("aws kms cancel-key-deletion"));

    // Other states that refuse Decrypt count as disabled.
    let (check, lint) = judge_aws_key(&mk, 1, &facts("PendingImport"));
    assert_eq!(check.status, KmsStatus::Disabled);
    assert_eq!(lint.unwrap().code, codes::INV_KMS_KEY_DISABLED);

    let v = serde_json::to_value(judge_aws_key(&mk, 2, &facts("PendingDeletion")).0).unwrap();
    assert_eq!(v["status"], "pendingDeletion");
    assert_eq!(v["masterKey"], mk);
}

#[test]
fn providers_inspect_cannot_ask_say_so() {
    assert!(unchecked_reason(ProviderKind::Aws).is_none());
    assert!(unchecked_reason(ProviderKind::Local).is_none());
    for kind in [ProviderKind::Azure, ProviderKind::Gcp, ProviderKind::Kmip] {
        let why = unchecked_reason(kind).unwrap();
        assert!(why.starts_with("not checked"), "{why}");
    }
}
