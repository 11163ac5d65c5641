//! The rewrap query agrees with the exact "under the target" check on every key
//! document, judged by a tiny evaluator for the operators the query uses.

use keyshift_core::check_toml;
use keyshift_core::inventory::is_under_target;
use keyshift_core::select::{already_under_target, not_under_target, rewrap_filter};
use serde_json::{Value, json};

const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn get<'a>(doc: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(doc, |v, k| v.get(k))
}

/// Evaluates `$or`, `$and`, `$nor`, `$ne`, `$exists`, `$in` and plain equality on dotted
/// paths.
fn matches(q: &Value, doc: &Value) -> bool {
    q.as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| match k.as_str() {
            "$or" => v.as_array().unwrap().iter().any(|c| matches(c, doc)),
            "$and" => v.as_array().unwrap().iter().all(|c| matches(c, doc)),
            "$nor" => !v.as_array().unwrap().iter().any(|c| matches(c, doc)),
            path => {
                let field = get(doc, path);
                match v.as_object().and_then(|o| o.iter().next()) {
                    Some((op, arg)) if op == "$ne" => field != Some(arg),
                    Some((op, arg)) if op == "$exists" => field.is_some() == arg.as_bool().unwrap(),
                    Some((op, arg)) if op == "$in" => {
                        field.is_some_and(|f| arg.as_array().unwrap().contains(f))
                    }
                    _ => field == Some(v),
                }
            }
        })
}

fn config(filter: Option<&str>) -> keyshift_core::Config {
    let f = filter
        .map(|f| format!("[rewrap]\nfilter = '{f}'\n"))
        .unwrap_or_default();
    check_toml(&format!(
        "[keyVault]\nuri = \"env:U\"\n[kmsProviders.local]\nkey = \"file:k\"\n[kmsProviders.aws]\n[target]\nprovider = \"aws\"\nmasterKey = {{ region = \"us-east-1\", key = \"{ARN}\" }}\n{f}"
    ))
    .config
}

fn docs() -> Vec<Value> {
    vec![
        json!({"masterKey": {"provider": "local"}}),
        json!({"masterKey": {"provider": "aws", "region": "us-east-1", "key": ARN}}),
        json!({"masterKey": {"key": ARN, "provider": "aws", "region": "us-east-1"}}),
        json!({"masterKey": {"provider": "aws", "region": "us-east-1", "key": ARN, "endpoint": "kms.us-east-1.amazonaws.com"}}),
        json!({"masterKey": {"provider": "aws", "region": "us-east-2", "key": ARN}}),
        json!({"masterKey": {"provider": "aws:prod", "region": "us-east-1", "key": ARN}}),
        json!({"masterKey": {"provider": "azure", "keyVaultEndpoint": "v.vault.azure.net", "keyName": "k"}}),
    ]
}

#[test]
fn query_agrees_with_the_exact_check() {
    let c = config(None);
    let target = c.target.as_ref().unwrap();
    let q = not_under_target(target);
    for doc in docs() {
        let under = is_under_target(&doc["masterKey"], target);
        assert_eq!(matches(&q, &doc), !under, "{doc}");
    }
    assert_eq!(rewrap_filter(&c).unwrap(), q);
}

#[test]
fn user_filter_narrows_never_widens() {
    let c = config(Some(r#"{"masterKey.provider": "local"}"#));
    let q = rewrap_filter(&c).unwrap();
    let selected: Vec<Value> = docs().into_iter().filter(|d| matches(&q, d)).collect();
    assert_eq!(selected, vec![json!({"masterKey": {"provider": "local"}})]);
    let bad = config(Some("[1]"));
    assert_eq!(rewrap_filter(&bad).unwrap_err().code, "KS-RW-002");
}

fn kmip_config(master_key: &str) -> keyshift_core::Config {
    check_toml(&format!(
        "[keyVault]\nuri = \"env:U\"\n[kmsProviders.local]\nkey = \"file:k\"\n[kmsProviders.kmip]\nendpoint = \"kmip.example.com:5696\"\n[tlsOptions.kmip]\ntlsCAFile = \"ca.pem\"\ntlsCertificateKeyFile = \"client.pem\"\n[target]\nprovider = \"kmip\"\nmasterKey = {master_key}\n"
    ))
    .config
}

#[test]
fn kmip_keys_carry_the_key_id_their_server_assigned() {
    let plain = kmip_config("{}");
    let delegated = kmip_config("{ delegated = true }");
    let named = kmip_config("{ keyId = \"8\" }");
    let cases = [
        (&plain, json!({"provider": "kmip", "keyId": "17"}), true),
        (&plain, json!({"provider": "kmip"}), true),
        (
            &plain,
            json!({"provider": "kmip", "keyId": "17", "delegated": true}),
            false,
        ),
        (&plain, json!({"provider": "local"}), false),
        (
            &delegated,
            json!({"provider": "kmip", "keyId": "9", "delegated": true}),
            true,
        ),
        (&delegated, json!({"provider": "kmip", "keyId": "9"}), false),
        (&named, json!({"provider": "kmip", "keyId": "8"}), true),
        (&named, json!({"provider": "kmip", "keyId": "9"}), false),
    ];
    for (config, key, want) in cases {
        let target = config.target.as_ref().unwrap();
        assert_eq!(is_under_target(&key, target), want, "{key} vs {target:?}");
        let doc = json!({ "masterKey": key });
        assert_eq!(
            matches(&not_under_target(target), &doc),
            !want,
            "query on {doc}"
        );
    }
}

#[test]
fn field_order_never_matters_and_extra_fields_do() {
    let c = config(None);
    let target = c.target.as_ref().unwrap();
    assert!(is_under_target(
        &json!({"region": "us-east-1", "key": ARN, "provider": "aws"}),
        target
    ));
    assert!(!is_under_target(
        &json!({"provider": "aws", "region": "us-east-1", "key": ARN, "extra": 1}),
        target
    ));
    assert!(!is_under_target(&json!("not a document"), target));
}

#[test]
fn selected_and_already_under_split_the_users_keys_exactly() {
    for filter in [None, Some(r#"{"masterKey.region": "us-east-1"}"#)] {
        let c = config(filter);
        let (sel, under) = (
            rewrap_filter(&c).unwrap(),
            already_under_target(&c).unwrap(),
        );
        for doc in docs() {
            let in_user = filter.is_none() || doc["masterKey"]["region"] == "us-east-1";
            assert_eq!(
                matches(&sel, &doc) as u8 + matches(&under, &doc) as u8,
                in_user as u8,
                "{doc} with {filter:?}"
            );
        }
    }
}

#[test]
fn kmip_keys_listed_for_replacement_are_selected_though_on_the_target() {
    let c = check_toml(
        "[keyVault]\nuri = \"env:U\"\n[kmsProviders.kmip]\nendpoint = \"kmip.example.com:5696\"\n[tlsOptions.kmip]\ntlsCAFile = \"ca.pem\"\ntlsCertificateKeyFile = \"client.pem\"\n[target]\nprovider = \"kmip\"\nmasterKey = {}\n[rewrap]\nkmipReplaceKeyIds = [\"3\", \"4\"]\n",
    )
    .config;
    let rewrap = c.rewrap.clone().unwrap();
    let q = rewrap_filter(&c).unwrap();
    for (id, want) in [("3", true), ("4", true), ("5", false)] {
        let mk = json!({"provider": "kmip", "keyId": id});
        let exact = !is_under_target(&mk, c.target.as_ref().unwrap()) || rewrap.replaces(&mk);
        assert_eq!(exact, want, "{id}");
        assert_eq!(
            matches(&q, &json!({ "masterKey": mk })),
            want,
            "query, keyId {id}"
        );
    }
}
