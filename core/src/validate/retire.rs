//! `[retire]`: the deployments `keyshift retire` scans besides the key vault's own, and
//! the user's statement that the list is complete.
//!
//! A key vault may serve applications in other clusters; a key deleted while a value in
//! one of them still needs it is lost for good. So every entry must be a usable
//! connection string reference, and a configuration that plans a rotation (a
//! `[rotate]` section, or a source key marked exposed) is warned until the list is
//! confirmed (`allDeploymentsListed = true`), since retire refuses until then.

use crate::config::Config;
use crate::diagnostic::{Diagnostic, codes, pointer};

use super::common::check_uri_at;

/// The name reserved for the key vault's own deployment in reports.
pub const KEY_VAULT_DEPLOYMENT: &str = "keyVault";

/// Checks `[retire]`.
pub fn check_retire(out: &mut Vec<Diagnostic>, config: &Config) {
    let retire = config.retire.clone().unwrap_or_default();
    for (name, uri) in &retire.deployments {
        let path = pointer(&["retire", "deployments", name]);
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid || name == KEY_VAULT_DEPLOYMENT {
            out.push(Diagnostic::error(
                codes::RET_NAME,
                &path,
                format!(
                    "retire.deployments names a deployment `{name}`: names are letters, \
                     digits, `_` and `-`, and `{KEY_VAULT_DEPLOYMENT}` is the key vault's own"
                ),
                "Name it after the cluster, e.g. orders = \"env:ORDERS_MONGODB_URI\".",
            ));
        }
        check_uri_at(out, &path, Some(uri));
    }
    let plans_retire = config.rotate.is_some() || config.source_exposed();
    if plans_retire && retire.all_deployments_listed != Some(true) {
        out.push(Diagnostic::warning(
            codes::RET_UNCONFIRMED,
            "/retire/allDeploymentsListed",
            "keyshift retire will refuse to delete keys until the configuration says which \
             deployments use this key vault",
            "List every other cluster whose applications use this key vault under \
             [retire] deployments (name = \"env:VARIABLE\"), then set \
             allDeploymentsListed = true in [retire].",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::check_toml;

    const BASE: &str = r#"
        [keyVault]
        uri = "env:MONGODB_URI"
        [kmsProviders.local]
        key = "file:k"
        exposed = true
        [kmsProviders.aws]
        [target]
        provider = "aws"
        masterKey = { region = "us-east-1", key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab" }
    "#;

    fn codes(extra: &str) -> Vec<String> {
        check_toml(&format!("{BASE}\n{extra}"))
            .diagnostics
            .into_iter()
            .map(|d| d.code)
            .filter(|c| {
                [
                    "KS-RET-001",
                    "KS-RET-002",
                    "KS-SEC-001",
                    "KS-KV-002",
                    "KS-KV-003",
                ]
                .contains(&c.as_str())
            })
            .collect()
    }

    #[test]
    fn an_exposed_key_without_a_confirmed_list_is_warned() {
        assert_eq!(codes(""), ["KS-RET-002"]);
        assert!(codes("[retire]\nallDeploymentsListed = true").is_empty());
    }

    #[test]
    fn deployments_are_references_with_good_names() {
        let ok = "[retire]\nallDeploymentsListed = true\ndeployments = { orders = \"env:ORDERS_URI\", eu-1 = \"mongodb+srv://c.example.net\" }";
        assert!(codes(ok).is_empty(), "{:?}", codes(ok));
        let parsed = check_toml(&format!("{BASE}\n{ok}"));
        let retire = parsed.config.retire.unwrap();
        assert_eq!(retire.deployments["orders"], "env:ORDERS_URI");
        assert_eq!(retire.all_deployments_listed, Some(true));
        assert_eq!(
            codes("[retire]\nallDeploymentsListed = true\ndeployments = { keyVault = \"env:X\" }"),
            ["KS-RET-001"]
        );
        assert_eq!(
            codes(
                "[retire]\nallDeploymentsListed = true\ndeployments = { orders = \"mongodb://u:pw@h\" }"
            ),
            ["KS-SEC-001"]
        );
        assert_eq!(
            codes(
                "[retire]\nallDeploymentsListed = true\ndeployments = { orders = \"orders.example.net\" }"
            ),
            ["KS-KV-002"]
        );
        let wrong = check_toml(&format!("{BASE}\n[retire]\nallDeploymentsListed = \"yes\""));
        assert!(wrong.diagnostics.iter().any(|d| d.code == "KS-CFG-003"));
    }
}
