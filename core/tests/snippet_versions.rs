//! Every generated snippet, in every language and stage, names the minimum driver
//! versions and a libmongocrypt of at least 1.5.2, and warns off libmongocrypt 1.5.0 and
//! 1.5.1 with Azure and GCP keys (MONGOCRYPT-464: their rewrap could replace the key
//! material of the DEKs it rewrapped); docs/drivers.md says the same.

use keyshift_core::config::parse_toml;
use keyshift_core::generate::notes::{REWRAP_WARNING, requirements};
use keyshift_core::generate::{Lang, Stage, snippet};

const DRIVERS: &str = include_str!("../../docs/drivers.md");

/// The target providers the warning is about, and one it is not.
const TARGETS: [(&str, &str); 3] = [
    (
        "azure",
        r#"{ keyVaultEndpoint = "v.vault.azure.net", keyName = "k", keyVersion = "78deebed173b48e48f55abf87ed4cf71" }"#,
    ),
    (
        "gcp",
        r#"{ projectId = "my-project", location = "global", keyRing = "r", keyName = "k" }"#,
    ),
    (
        "aws",
        r#"{ region = "us-east-1", key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab" }"#,
    ),
];

/// The words of a snippet's header comment, on one line (wrapping undone).
fn header_words(code: &str) -> String {
    let mut words = Vec::new();
    for line in code.lines() {
        let t = line.trim_start();
        let Some(rest) = ["//!", "//", "#"].iter().find_map(|p| t.strip_prefix(p)) else {
            if words.is_empty() {
                continue;
            }
            break;
        };
        words.extend(rest.split_whitespace());
    }
    words.join(" ")
}

#[test]
fn every_snippet_names_driver_and_libmongocrypt_floors_and_the_rewrap_warning() {
    assert!(REWRAP_WARNING.contains("1.5.0 or 1.5.1") && REWRAP_WARNING.contains("Azure or GCP"));
    for (provider, master_key) in TARGETS {
        let config = parse_toml(&format!(
            "[keyVault]\nuri = \"env:MONGODB_URI\"\n[kmsProviders.local]\nkey = \"file:k\"\n[kmsProviders.{provider}]\n[target]\nprovider = \"{provider}\"\nmasterKey = {master_key}\n"
        ))
        .config;
        for lang in Lang::ALL {
            let r = requirements(lang);
            assert!(
                r.libmongocrypt.starts_with("libmongocrypt 1.5.2+"),
                "{lang:?}: {}",
                r.libmongocrypt
            );
            for stage in [Stage::Transition, Stage::Final] {
                let code = snippet(&config, lang, stage).unwrap().code;
                let header = header_words(&code);
                let at = format!("{provider} {lang:?} {stage:?}");
                assert!(
                    header.contains(&format!("Requires {}.", r.base)),
                    "{at}: {header}"
                );
                assert!(
                    header.contains(&format!("Needs {}.", r.libmongocrypt)),
                    "{at}: {header}"
                );
                assert!(header.contains(REWRAP_WARNING), "{at}: {header}");
            }
        }
    }
}

#[test]
fn docs_name_each_languages_libmongocrypt() {
    for lang in Lang::ALL {
        let r = requirements(lang);
        assert!(
            DRIVERS.contains(r.libmongocrypt),
            "docs/drivers.md lacks {lang:?}: {}",
            r.libmongocrypt
        );
    }
}
