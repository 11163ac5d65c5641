//! `[audit]`: where the audit trail goes (docs/audit.md).
//!
//! The file path is free (the shell creates it, 0600, and refuses a path it cannot
//! write before any change). The collection must be a `db.coll` of the key vault's
//! deployment that is neither the key vault (whose documents are keys) nor in a
//! database MongoDB keeps for itself.

use crate::config::Config;
use crate::diagnostic::{Diagnostic, codes};

use super::common::namespace_problem;
use super::rotate::SYSTEM_DATABASES;

/// Checks `[audit]`.
pub fn check_audit(out: &mut Vec<Diagnostic>, config: &Config) {
    let Some(ns) = config.audit.as_ref().and_then(|a| a.collection.as_deref()) else {
        return;
    };
    let path = "/audit/collection";
    let db = ns.split_once('.').map_or(ns, |(db, _)| db);
    if ns == config.key_vault.namespace {
        out.push(Diagnostic::error(
            codes::AUD_KEY_VAULT,
            path,
            format!("audit.collection names the key vault `{ns}`"),
            "Name a collection of its own, e.g. \"keyshift.audit\": applications read the key vault and must see only keys.",
        ));
    } else if let Some(problem) = namespace_problem(ns) {
        out.push(Diagnostic::error(
            codes::AUD_NAMESPACE,
            path,
            format!("audit.collection `{ns}` is not a usable namespace: {problem}"),
            "Write it as \"db.coll\", e.g. \"keyshift.audit\".",
        ));
    } else if SYSTEM_DATABASES.contains(&db) {
        out.push(Diagnostic::error(
            codes::AUD_NAMESPACE,
            path,
            format!("audit.collection `{ns}` is in MongoDB's own `{db}` database"),
            "Use a database of your own, e.g. \"keyshift.audit\".",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::check_toml;

    fn codes(audit: &str) -> Vec<String> {
        let toml = format!(
            r#"
            [keyVault]
            uri = "env:MONGODB_URI"
            namespace = "encryption.__keyVault"
            [kmsProviders.local]
            key = "file:master.key"
            [kmsProviders.aws]
            [target]
            provider = "aws"
            masterKey = {{ region = "us-east-1", key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab" }}
            [audit]
            {audit}
            "#
        );
        check_toml(&toml)
            .diagnostics
            .into_iter()
            .map(|d| d.code)
            .filter(|c| c.contains("-AUD-") || c.contains("-CFG-"))
            .collect()
    }

    #[test]
    fn a_collection_of_its_own_and_a_file_are_accepted() {
        assert!(
            codes("file = \"/var/log/keyshift/audit.jsonl\"\ncollection = \"keyshift.audit\"")
                .is_empty()
        );
    }

    #[test]
    fn the_key_vault_is_refused_as_the_audit_collection() {
        assert_eq!(
            codes("collection = \"encryption.__keyVault\""),
            ["KS-AUD-002"]
        );
    }

    #[test]
    fn malformed_and_system_namespaces_are_refused() {
        assert_eq!(codes("collection = \"audit\""), ["KS-AUD-001"]);
        assert_eq!(codes("collection = \"admin.audit\""), ["KS-AUD-001"]);
    }

    #[test]
    fn unknown_fields_are_named() {
        assert_eq!(codes("collecton = \"keyshift.audit\""), ["KS-CFG-002"]);
    }
}
