//! Golden tests for driver snippets and policies, plus syntax checks with the real
//! toolchains when they are installed (python3, node).
//!
//! Regenerate the golden files after an intended change with
//! `KEYSHIFT_UPDATE_GOLDEN=1 cargo test -p keyshift-core --test generate` and review the
//! diff.

use std::path::PathBuf;

use keyshift_core::config::{Config, parse_toml};
use keyshift_core::generate::{Lang, Stage, snippet};
use keyshift_core::policy::policy;

const COMMON: &str = r#"
[keyVault]
uri = "env:MONGODB_URI"
namespace = "encryption.__keyVault"

[kmsProviders.local]
key = "file:master-key.txt"
"#;

fn fixture(name: &str) -> Config {
    let rest = match name {
        "aws" => {
            r#"
[kmsProviders.aws]
accessKeyId = "env:AWS_ACCESS_KEY_ID"
secretAccessKey = "env:AWS_SECRET_ACCESS_KEY"

[tlsOptions.aws]
tlsCAFile = "ca.pem"

[target]
provider = "aws"
masterKey = { region = "us-east-1", key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab" }
"#
        }
        "azure" => {
            r#"
[kmsProviders."azure:prod"]
tenantId = "72f988bf-86f1-41af-91ab-2d7cd011db47"
clientId = "00001111-aaaa-2222-bbbb-3333cccc4444"
clientSecret = "env:AZURE_CLIENT_SECRET"

[target]
provider = "azure:prod"
masterKey = { keyVaultEndpoint = "my-vault.vault.azure.net", keyName = "ks-cmk" }
"#
        }
        "gcp" => {
            r#"
[kmsProviders.gcp]

[target]
provider = "gcp"
masterKey = { projectId = "my-project", location = "global", keyRing = "ks-ring", keyName = "ks-key" }
"#
        }
        "kmip" => {
            r#"
[kmsProviders.kmip]
endpoint = "kmip.example.com:5696"

[tlsOptions.kmip]
tlsCAFile = "ca.pem"
tlsCertificateKeyFile = "client.pem"

[target]
provider = "kmip"
masterKey = { keyId = "1", delegated = false }
"#
        }
        other => panic!("no fixture {other}"),
    };
    let parsed = keyshift_core::validate::check_toml(&format!("{COMMON}{rest}"));
    let errors: Vec<_> = parsed.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}");
    parsed.config
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
        "{name} differs from its golden file; if intended, rerun with KEYSHIFT_UPDATE_GOLDEN=1 and review.\n--- actual ---\n{actual}"
    );
}

fn ext(lang: Lang) -> &'static str {
    match lang {
        Lang::Python => "py",
        Lang::Node | Lang::Mongosh => "js",
        Lang::Java => "java",
        Lang::Go => "go",
        Lang::Csharp => "cs",
        Lang::Rust => "rs",
    }
}

#[test]
fn snippets_match_golden_files() {
    for fixture_name in ["aws", "azure", "gcp", "kmip"] {
        let config = fixture(fixture_name);
        for lang in Lang::ALL {
            for stage in [Stage::Transition, Stage::Final] {
                let s = snippet(&config, lang, stage).unwrap();
                golden(
                    &format!(
                        "{fixture_name}-{}-{}.{}",
                        lang.as_str(),
                        stage.as_str(),
                        ext(lang)
                    ),
                    &s.code,
                );
            }
        }
    }
}

#[test]
fn policies_match_golden_files() {
    for fixture_name in ["aws", "azure", "gcp", "kmip"] {
        let p = policy(&fixture(fixture_name)).unwrap();
        golden(
            &format!("{fixture_name}-policy.json"),
            &(serde_json::to_string_pretty(&p).unwrap() + "\n"),
        );
    }
}

#[test]
fn stages_differ_in_providers() {
    let config = fixture("aws");
    let t = snippet(&config, Lang::Python, Stage::Transition)
        .unwrap()
        .code;
    let f = snippet(&config, Lang::Python, Stage::Final).unwrap().code;
    assert!(t.contains("\"local\": {") && t.contains("\"aws\": {"));
    assert!(!f.contains("\"local\": {") && f.contains("\"aws\": {"));
}

#[test]
fn literal_secrets_never_reach_generated_code() {
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let mut config = fixture("aws");
    if let Some(keyshift_core::config::Provider::Aws(p)) = config.kms_providers.get_mut("aws") {
        p.secret_access_key = Some(secret.into());
    }
    for lang in Lang::ALL {
        let code = snippet(&config, lang, Stage::Final).unwrap().code;
        assert!(!code.contains(secret), "{lang:?}");
        assert!(code.contains("AWS_SECRET_ACCESS_KEY"), "{lang:?}");
    }
}

#[test]
fn no_target_is_an_error_not_a_panic() {
    let config = parse_toml(COMMON).config;
    assert!(snippet(&config, Lang::Python, Stage::Final).is_err());
    assert!(policy(&config).is_none());
}

/// Whether an executable is on PATH.
fn tool(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

/// Generated Python compiles; Node.js and mongosh pass `node --check`; Go parses with
/// `gofmt -e`. Skipped (with a note) where the tool is not installed.
#[test]
fn generated_code_passes_syntax_checks() {
    let dir = std::env::temp_dir().join(format!("keyshift-gen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let checks: [(Lang, &str, &[&str]); 4] = [
        (Lang::Python, "python3", &["-m", "py_compile"]),
        (Lang::Node, "node", &["--check"]),
        (Lang::Mongosh, "node", &["--check"]),
        (Lang::Go, "gofmt", &["-e", "-l"]),
    ];
    for fixture_name in ["aws", "azure", "gcp", "kmip"] {
        let config = fixture(fixture_name);
        for (lang, bin, args) in checks {
            if !tool(bin) {
                eprintln!("skipping {lang:?} syntax check: {bin} not installed");
                continue;
            }
            for stage in [Stage::Transition, Stage::Final] {
                let s = snippet(&config, lang, stage).unwrap();
                let file = dir.join(format!(
                    "{fixture_name}_{}_{}.{}",
                    lang.as_str(),
                    stage.as_str(),
                    ext(lang)
                ));
                std::fs::write(&file, &s.code).unwrap();
                let out = std::process::Command::new(bin)
                    .args(args)
                    .arg(&file)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{} failed on {}:\n{}\n{}",
                    bin,
                    file.display(),
                    String::from_utf8_lossy(&out.stderr),
                    s.code
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
