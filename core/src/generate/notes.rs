//! What every snippet says before its code: the stage, how to merge it into the
//! application without changing how the application encrypts, and the minimum driver
//! versions for what it uses.
//!
//! The versions come from the drivers' own changelogs, release tags and the MongoDB
//! documentation; docs/drivers.md lists each with its source, and core's tests keep the
//! two equal.

use super::{Lang, Setup};

/// Minimum versions for one language, each a sentence fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirements {
    /// The language.
    pub lang: Lang,
    /// What the generated code itself needs.
    pub base: &'static str,
    /// The libmongocrypt it needs, and where the language gets it: 1.5.2 or later
    /// everywhere, the first release without MONGOCRYPT-464 ([`REWRAP_WARNING`]).
    pub libmongocrypt: &'static str,
    /// Named KMS providers (`aws:prod`).
    pub named: &'static str,
    /// The KMIP provider.
    pub kmip: &'static str,
    /// KMIP's `delegated` master key option.
    pub delegated: &'static str,
    /// On-demand credentials (a cloud provider with no credential fields).
    pub on_demand: &'static str,
}

/// libmongocrypt 1.5.0 and 1.5.1 may replace the key material of Azure and GCP DEKs
/// they rewrap (MONGOCRYPT-464); the specification makes drivers refuse them.
pub const REWRAP_WARNING: &str = "If you ever run rewrapManyDataKey yourself: never with libmongocrypt 1.5.0 or 1.5.1 on Azure or GCP keys (MONGOCRYPT-464: it can replace their key material).";

/// Minimum versions per language (sources in docs/drivers.md).
pub const REQUIREMENTS: [Requirements; 7] = [
    Requirements {
        lang: Lang::Python,
        base: "PyMongo 4.2+ with pymongocrypt 1.3.1+ (pip install \"pymongo[encryption]\")",
        libmongocrypt: "libmongocrypt 1.5.2+, which the pymongocrypt 1.3.1+ wheels bundle (one you load yourself with PYMONGOCRYPT_LIB must be 1.5.2+ too)",
        named: "PyMongo 4.7+ with pymongocrypt 1.9+ (libmongocrypt 1.9+)",
        kmip: "PyMongo 4.0+ with pymongocrypt 1.2+",
        delegated: "PyMongo 4.9+ with pymongocrypt 1.10+",
        on_demand: "pymongocrypt 1.4.0+ (PyMongo 4.3.3+); AWS also needs pip install \"pymongo[aws]\"",
    },
    Requirements {
        lang: Lang::Node,
        base: "mongodb 6.0.0+ with the mongodb-client-encryption of the same major version (6.x for mongodb 6, 7.x for mongodb 7)",
        libmongocrypt: "libmongocrypt 1.5.2+: mongodb-client-encryption 6.x builds in a later one (6.1.0: libmongocrypt 1.11.0)",
        named: "mongodb 6.8.0+ with mongodb-client-encryption 6.1.0+",
        kmip: "mongodb 4.4.0+",
        delegated: "mongodb 6.8.0+",
        on_demand: "AWS needs @aws-sdk/credential-providers, GCP needs gcp-metadata (optional peer dependencies of mongodb 6); Azure is built in",
    },
    Requirements {
        lang: Lang::Java,
        base: "mongodb-driver-sync 4.7.0+ with org.mongodb:mongodb-crypt (1.6.1+ before driver 5.2; from 5.2 on, the driver's own version), Java 11+",
        libmongocrypt: "libmongocrypt 1.5.2+, inside org.mongodb:mongodb-crypt (1.6.1+ carries the fix; from driver 5.2 on it is built from libmongocrypt 1.11)",
        named: "mongodb-driver-sync 5.2.0+ (its mongodb-crypt bundles libmongocrypt 1.11)",
        kmip: "mongodb-driver-sync 4.4.0+",
        delegated: "mongodb-driver-sync 5.2.0+",
        on_demand: "mongodb-driver-sync 4.6.0+ for AWS, 4.8.0+ for GCP attached service accounts and Azure managed identities",
    },
    Requirements {
        lang: Lang::Go,
        base: "go.mongodb.org/mongo-driver 1.10.0+ (the v1 API used here), built with -tags cse against libmongocrypt 1.5.2+",
        libmongocrypt: "libmongocrypt 1.5.2+ on the machines that build and run it",
        named: "not supported by the Go driver (GODRIVER-3076 is open; its named KMS spec tests are skipped): test this file before relying on it, or use unnamed providers for Go applications",
        kmip: "go.mongodb.org/mongo-driver 1.8.0+",
        delegated: "libmongocrypt 1.10.0+ (the driver passes masterKey through)",
        on_demand: "go.mongodb.org/mongo-driver 1.11.0+ for GCP, 1.12.0+ for AWS and Azure",
    },
    Requirements {
        lang: Lang::Csharp,
        base: "MongoDB.Driver and MongoDB.Driver.Encryption 3.0.0+ on .NET 5+; on Linux, libmongocrypt installed and LIBMONGOCRYPT_PATH set to it",
        libmongocrypt: "libmongocrypt 1.5.2+ (on Linux, the one LIBMONGOCRYPT_PATH names)",
        named: "MongoDB.Driver 3.0.0+",
        kmip: "MongoDB.Driver 2.14.0+",
        delegated: "MongoDB.Driver 2.28.0+",
        on_demand: "MongoDB.Driver 2.18.0+ for AWS and GCP, 2.19.0+ for Azure",
    },
    Requirements {
        lang: Lang::Rust,
        base: "mongodb 3.2.0+ with feature \"in-use-encryption\", linked to a libmongocrypt with its own crypto backend",
        libmongocrypt: "libmongocrypt 1.5.2+, the one the mongocrypt crate links (MONGOCRYPT_LIB_DIR)",
        named: "mongodb 3.1.0+",
        kmip: "mongodb 2.4.0+, its first release with in-use encryption (feature in-use-encryption-unstable before 3.2.0)",
        delegated: "mongodb 3.0.0+",
        on_demand: "mongodb 2.5.0+ for AWS, 2.6.0+ for GCP and Azure",
    },
    Requirements {
        lang: Lang::Mongosh,
        base: "mongosh 2.0.0+ (it bundles mongodb 6 and mongodb-client-encryption 6)",
        libmongocrypt: "libmongocrypt 1.5.2+: mongosh 2.x carries it in its bundled mongodb-client-encryption 6",
        named: "mongosh 2.3.0+ (mongodb 6.8, mongodb-client-encryption 6.1)",
        kmip: "mongosh 2.0.0+",
        delegated: "mongosh 2.3.0+",
        on_demand: "mongosh 2.0.0+ through its bundled driver (AWS, GCP and Azure)",
    },
];

/// The requirements of one language.
pub fn requirements(lang: Lang) -> &'static Requirements {
    REQUIREMENTS
        .iter()
        .find(|r| r.lang == lang)
        .expect("every language has requirements")
}

/// How the merge reads in a language.
struct Terms {
    /// The call that merges into the application's auto-encryption options.
    merge_auto: &'static str,
    /// The call that builds the application's ClientEncryption.
    merge_ce: &'static str,
    /// The application's own rules: schema map and encrypted fields map.
    rules: &'static str,
    /// The setting that turns automatic encryption off.
    bypass: &'static str,
}

fn terms(lang: Lang) -> Terms {
    match lang {
        Lang::Python => Terms {
            merge_auto: "auto_encryption_opts(**your_options)",
            merge_ce: "client_encryption(key_vault_client)",
            rules: "schema_map / encrypted_fields_map",
            bypass: "bypass_auto_encryption=True",
        },
        Lang::Node => Terms {
            merge_auto: "autoEncryptionOptions(yourOptions)",
            merge_ce: "clientEncryptionOptions(yourOptions)",
            rules: "schemaMap / encryptedFieldsMap",
            bypass: "bypassAutoEncryption: true",
        },
        Lang::Java => Terms {
            merge_auto: "withKms(AutoEncryptionSettings.builder())",
            merge_ce: "withKms(ClientEncryptionSettings.builder())",
            rules: "schemaMap / encryptedFieldsMap",
            bypass: ".bypassAutoEncryption(true)",
        },
        Lang::Go => Terms {
            merge_auto: "WithKMS(yourAutoEncryptionOptions)",
            merge_ce: "ClientEncryptionOptions()",
            rules: "SetSchemaMap / SetEncryptedFieldsMap",
            bypass: "SetBypassAutoEncryption(true)",
        },
        Lang::Csharp => Terms {
            merge_auto: "WithKms(yourAutoEncryptionOptions)",
            merge_ce: "ClientEncryptionOptions(keyVaultClient)",
            rules: "schemaMap / encryptedFieldsMap",
            bypass: "bypassAutoEncryption: true",
        },
        Lang::Rust => Terms {
            merge_auto: "with_kms(client_options)",
            merge_ce: "client_encryption(key_vault_client)",
            rules: "schema_map / encrypted_fields_map",
            bypass: ".bypass_auto_encryption(true)",
        },
        Lang::Mongosh => Terms {
            merge_auto: "autoEncryptionOptions(yourOptions)",
            merge_ce: "Mongo(uri, autoEncryptionOptions(...)).getKeyVault()",
            rules: "schemaMap / encryptedFieldsMap",
            bypass: "bypassAutoEncryption: true",
        },
    }
}

/// Wraps words into lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The header comment of a snippet, as lines without the comment marker (an empty
/// line is a blank comment line).
pub(crate) fn preamble(s: &Setup, lang: Lang) -> Vec<String> {
    let t = terms(lang);
    let r = requirements(lang);
    let mut out = vec![
        super::header(s),
        "Generated from keyshift.toml. Secrets are read from the environment or files, never written here.".to_string(),
        String::new(),
    ];
    let merge = format!(
        "MERGE, DO NOT REPLACE. This changes one thing in your application: where the master keys of its data encryption keys (DEKs) are found. Take the KMS settings between BEGIN and END keyshift KMS settings into the auto-encryption options and the ClientEncryption your application builds today, with {} and {}, and keep everything else it sets there as it is: its {}, bypass setting and crypt_shared / mongocryptd options.",
        t.merge_auto, t.merge_ce, t.rules
    );
    out.extend(wrap(&merge, 88));
    let never = format!(
        "An application that encrypts automatically keeps doing so: never add {} to it. That turns automatic encryption off, and its new writes of sensitive fields would reach the server in plaintext.",
        t.bypass
    );
    out.extend(wrap(&never, 88));
    out.push(String::new());
    let mut req = vec![
        format!("Requires {}.", r.base),
        format!("Needs {}.", r.libmongocrypt),
    ];
    let named = s.named();
    if !named.is_empty() {
        req.push(format!(
            "Named KMS providers ({}): {}.",
            quoted(&named),
            r.named
        ));
    }
    if s.has_kmip() {
        req.push(format!("KMIP: {}.", r.kmip));
    }
    if s.delegated() {
        req.push(format!("KMIP delegated: {}.", r.delegated));
    }
    let on_demand = s.on_demand();
    if !on_demand.is_empty() {
        req.push(format!(
            "On-demand credentials ({}): {}.",
            quoted(&on_demand),
            r.on_demand
        ));
    }
    req.push(REWRAP_WARNING.to_string());
    if s.has_relative_path() {
        req.push(
            "File paths are as keyshift.toml gives them: relative ones are relative to its directory."
                .to_string(),
        );
    }
    req.push(
        "Versions, their sources and the merge in every language: keyshift's docs/drivers.md."
            .to_string(),
    );
    for line in req {
        out.extend(wrap(&line, 88));
    }
    out
}

/// The preamble as a comment block, each line starting with `prefix` (`#`, `//`, `//!`).
pub(crate) fn comment_block(s: &Setup, lang: Lang, prefix: &str) -> String {
    preamble(s, lang)
        .iter()
        .map(|l| {
            if l.is_empty() {
                format!("{prefix}\n")
            } else {
                format!("{prefix} {l}\n")
            }
        })
        .collect()
}
