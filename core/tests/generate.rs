//! Golden tests for driver snippets and policies, plus syntax checks with the real
//! toolchains when they are installed (python3, node); and what every snippet must say
//! and do: never turn automatic encryption off without saying so, carry the KMS settings
//! as a block to merge into the application's own options, name the minimum driver
//! versions, load GCP keys as libmongocrypt wants them.
//!
//! Regenerate the golden files after an intended change with
//! `KEYSHIFT_UPDATE_GOLDEN=1 cargo test -p keyshift-core --test generate` and review the
//! diff.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // tests read fixtures (core/clippy.toml)

use std::path::PathBuf;

use keyshift_core::config::{Config, parse_toml};
use keyshift_core::generate::notes::{REQUIREMENTS, REWRAP_WARNING, requirements};
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
        "gcp-file" => {
            r#"
[kmsProviders.gcp]
email = "keyshift@my-project.iam.gserviceaccount.com"
privateKey = "file:gcp-service-account.pem"

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

/// Every fixture snippets are generated for.
const FIXTURES: [&str; 5] = ["aws", "azure", "gcp", "gcp-file", "kmip"];

/// Every (fixture, language, stage) snippet.
fn all_snippets() -> Vec<(String, Lang, Stage, String)> {
    let mut out = Vec::new();
    for fixture_name in FIXTURES {
        let config = fixture(fixture_name);
        for lang in Lang::ALL {
            for stage in [Stage::Transition, Stage::Final] {
                let code = snippet(&config, lang, stage).unwrap().code;
                out.push((fixture_name.to_string(), lang, stage, code));
            }
        }
    }
    out
}

#[test]
fn snippets_match_golden_files() {
    for fixture_name in FIXTURES {
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
    for fixture_name in FIXTURES {
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

/// Whether a line is a comment in any of the generated languages.
fn is_comment(line: &str) -> bool {
    let t = line.trim_start();
    ["#", "//", "/*", "*"].iter().any(|m| t.starts_with(m))
}

/// Which lines of a snippet are comments or documentation: comment lines, and Python
/// docstrings (lines from an opening `"""` to its closing one).
fn documentation_lines(code: &str) -> Vec<bool> {
    let mut in_docstring = false;
    code.lines()
        .map(|line| {
            let quotes = line.matches("\"\"\"").count();
            let doc = in_docstring || quotes > 0 || is_comment(line);
            if quotes % 2 == 1 {
                in_docstring = !in_docstring;
            }
            doc
        })
        .collect()
}

/// A code line that turns automatic encryption off (bypassAutoEncryption true in any
/// language's spelling, or mongosh's explicitEncryptionOnly).
fn disables_auto_encryption(line: &str) -> bool {
    let squashed: String = line
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_')
        .collect::<String>()
        .to_ascii_lowercase();
    ["=true", ":true", "(true)"].iter().any(|v| {
        squashed.contains(&format!("bypassautoencryption{v}"))
            || squashed.contains(&format!("explicitencryptiononly{v}"))
    })
}

/// The text of a snippet's comments, markers stripped and lines joined, so that phrases
/// wrapped over several comment lines can be found.
fn comment_text(code: &str) -> String {
    code.lines()
        .filter(|l| is_comment(l))
        .map(|l| {
            l.trim_start()
                .trim_start_matches(['#', '/', '!', '*'])
                .trim()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The old snippets built their client with bypassAutoEncryption and no schemaMap: an
/// application that swapped its client for that one wrote sensitive fields in plaintext.
/// Any client that turns automatic encryption off must say so right above it.
#[test]
fn no_snippet_turns_automatic_encryption_off_without_saying_so() {
    for (fixture_name, lang, stage, code) in all_snippets() {
        let lines: Vec<&str> = code.lines().collect();
        let documentation = documentation_lines(&code);
        for (i, line) in lines.iter().enumerate() {
            if documentation[i] || !disables_auto_encryption(line) {
                continue;
            }
            let above = lines[i.saturating_sub(6)..i]
                .iter()
                .filter(|l| is_comment(l))
                .map(|l| l.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(" ");
            assert!(
                above.contains("turns automatic encryption off"),
                "{fixture_name} {lang:?} {stage:?}: line {} turns automatic encryption off without a comment saying so:\n{line}",
                i + 1
            );
        }
    }
}

/// The merge point per language: the names between the BEGIN and END markers.
fn merge_names(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::Python => &[
            "KEY_VAULT_NAMESPACE",
            "def kms_providers()",
            "def kms_tls_options()",
            "def auto_encryption_opts(**app_options)",
            "def client_encryption(",
        ],
        Lang::Node => &[
            "const keyVaultNamespace",
            "const kmsProviders",
            "const tlsOptions",
            "function autoEncryptionOptions(appOptions",
            "function clientEncryptionOptions(appOptions",
        ],
        Lang::Java => &[
            "KEY_VAULT_NAMESPACE",
            "kmsProviders()",
            "kmsSslContexts()",
            "withKms(AutoEncryptionSettings.Builder appSettings)",
            "withKms(ClientEncryptionSettings.Builder appSettings)",
        ],
        Lang::Go => &[
            "const KeyVaultNamespace",
            "func KmsProviders()",
            "func TLSConfigs()",
            "func WithKMS(appOpts *options.AutoEncryptionOptions)",
            "func ClientEncryptionOptions()",
        ],
        Lang::Csharp => &[
            "KeyVaultNamespace",
            "KmsProviders()",
            "TlsOptions()",
            "WithKms(AutoEncryptionOptions appOptions)",
            "ClientEncryptionOptions(IMongoClient keyVaultClient)",
        ],
        Lang::Rust => &[
            "fn key_vault_namespace()",
            "fn kms_providers()",
            "fn with_kms(client_options: ClientOptions)",
            "fn client_encryption(key_vault_client: Client)",
        ],
        Lang::Mongosh => &[
            "const keyVaultNamespace",
            "const kmsProviders",
            "const tlsOptions",
            "function autoEncryptionOptions(appOptions",
        ],
    }
}

/// How the whole client shown takes the application's own rules.
fn takes_app_rules(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::Python => &[
            "schema_map=schema_map",
            "encrypted_fields_map=encrypted_fields_map",
        ],
        Lang::Node => &["rules.schemaMap = schemaMap", "rules.encryptedFieldsMap"],
        Lang::Java => &["auto.schemaMap(appSchemaMap)", "auto.encryptedFieldsMap("],
        Lang::Go => &["SetSchemaMap(appSchemaMap)", "SetEncryptedFieldsMap("],
        Lang::Csharp => &[
            "schemaMap: appSchemaMap",
            "encryptedFieldsMap: appEncryptedFieldsMap",
        ],
        Lang::Rust => &[
            "builder.schema_map(map)",
            "builder.encrypted_fields_map(map)",
        ],
        Lang::Mongosh => &["autoEncryptionOptions({ schemaMap: appSchemaMap })"],
    }
}

/// Each snippet carries its KMS settings as one block to merge into the application's
/// options, says to keep the application's rules and bypass setting, and its whole
/// client (if any) takes the application's rules rather than dropping them.
#[test]
fn every_snippet_is_a_block_to_merge_into_the_application() {
    for (fixture_name, lang, stage, code) in all_snippets() {
        let at = format!("{fixture_name} {lang:?} {stage:?}");
        let begin = code
            .find("---- BEGIN keyshift KMS settings")
            .unwrap_or_else(|| panic!("{at}: no BEGIN marker"));
        let end = code
            .find("---- END keyshift KMS settings")
            .unwrap_or_else(|| panic!("{at}: no END marker"));
        assert!(begin < end, "{at}: markers out of order");
        let block = &code[begin..end];
        for name in merge_names(lang) {
            assert!(block.contains(name), "{at}: `{name}` not in the KMS block");
        }
        let words = comment_text(&code);
        assert!(
            words.contains("MERGE, DO NOT REPLACE"),
            "{at}: no merge instruction"
        );
        assert!(
            words.contains("keep everything else it sets there as it is"),
            "{at}: does not say to keep the application's own settings"
        );
        for rule in takes_app_rules(lang) {
            assert!(code.contains(rule), "{at}: whole client ignores `{rule}`");
        }
    }
}

/// Minimum driver versions in every header: the code's own, and named providers, KMIP,
/// KMIP delegated and on-demand credentials where the snippet uses them.
#[test]
fn headers_name_minimum_driver_versions() {
    for (fixture_name, lang, stage, code) in all_snippets() {
        let at = format!("{fixture_name} {lang:?} {stage:?}");
        let words = comment_text(&code);
        let r = requirements(lang);
        assert!(words.contains(r.base), "{at}: no base versions");
        assert!(words.contains(REWRAP_WARNING), "{at}: no rewrap warning");
        let expect = |cond: bool, what: &str, text: &str| {
            assert_eq!(
                words.contains(text),
                cond,
                "{at}: {what} versions {}",
                if cond { "missing" } else { "where not used" }
            );
        };
        expect(fixture_name == "azure", "named provider", r.named);
        expect(fixture_name == "kmip", "KMIP", &format!("KMIP: {}", r.kmip));
        expect(
            fixture_name == "kmip",
            "KMIP delegated",
            &format!("KMIP delegated: {}", r.delegated),
        );
        expect(fixture_name == "gcp", "on-demand", r.on_demand);
    }
}

/// docs/drivers.md carries every version the snippets name.
#[test]
fn docs_list_every_driver_version() {
    let doc = include_str!("../../docs/drivers.md");
    for r in REQUIREMENTS {
        for text in [r.base, r.named, r.kmip, r.delegated, r.on_demand] {
            assert!(
                doc.contains(text),
                "docs/drivers.md lacks {:?}: {text}",
                r.lang
            );
        }
    }
    assert!(doc.contains(REWRAP_WARNING));
}

/// libmongocrypt refuses PEM text as privateKey ("unable to parse base64 from UTF-8 field
/// privateKey"): every language strips the armour of a GCP key read from a file or the
/// environment.
#[test]
fn gcp_private_keys_lose_their_pem_armour_in_every_language() {
    let from_file = fixture("gcp-file");
    let mut from_env = fixture("gcp-file");
    if let Some(keyshift_core::config::Provider::Gcp(p)) = from_env.kms_providers.get_mut("gcp") {
        p.private_key = Some("env:GCP_PRIVATE_KEY".into());
    }
    let helper = |lang: Lang| match lang {
        Lang::Python => "_gcp_private_key(",
        Lang::Node | Lang::Mongosh | Lang::Java | Lang::Go => "gcpPrivateKey(",
        Lang::Csharp => "GcpPrivateKey(",
        Lang::Rust => "gcp_private_key(",
    };
    for (config, reference) in [
        (&from_file, "gcp-service-account.pem"),
        (&from_env, "GCP_PRIVATE_KEY"),
    ] {
        for lang in Lang::ALL {
            let code = snippet(config, lang, Stage::Final).unwrap().code;
            let line = code
                .lines()
                .find(|l| l.contains("\"privateKey\"") && !is_comment(l))
                .unwrap_or_else(|| panic!("{lang:?}: no privateKey"));
            assert!(
                line.contains(helper(lang)) && line.contains(reference),
                "{lang:?}: privateKey not unarmoured: {line}"
            );
            assert!(code.contains("-----BEGIN"), "{lang:?}: no PEM handling");
        }
    }
}

/// The client key's password reaches every language's KMS TLS settings; Java and C#
/// build the client certificate in code (no placeholder left to the user).
#[test]
fn kms_tls_client_keys_are_loaded_in_code_with_their_password() {
    let mut config = fixture("kmip");
    if let Some(t) = config.tls_options.get_mut("kmip") {
        t.tls_certificate_key_file_password = Some("env:KMIP_KEY_PASSWORD".into());
    }
    for lang in Lang::ALL {
        let code = snippet(&config, lang, Stage::Final).unwrap().code;
        assert!(
            code.contains("KMIP_KEY_PASSWORD"),
            "{lang:?}: password dropped"
        );
        assert!(
            code.contains("client.pem"),
            "{lang:?}: client certificate dropped"
        );
    }
    let java = snippet(&config, Lang::Java, Stage::Final).unwrap().code;
    assert!(java.contains(
        "contexts.put(\"kmip\", Pem.sslContext(\"ca.pem\", \"client.pem\", env(\"KMIP_KEY_PASSWORD\").toCharArray()));"
    ));
    assert!(java.contains(".kmsProviderSslContextMap(kmsSslContexts())"));
    assert!(!java.to_lowercase().contains("build an sslcontext"));
    let csharp = snippet(&config, Lang::Csharp, Stage::Final).unwrap().code;
    assert!(csharp.contains("ClientCertificate(\"client.pem\", Env(\"KMIP_KEY_PASSWORD\"))"));
    assert!(csharp.contains("CreateFromEncryptedPemFile(path, password)"));
}
