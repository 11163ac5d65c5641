//! `[rotate] collections`: the namespaces `keyshift rotate` and `keyshift retire` scan.
//!
//! Each must be a `db.coll` namespace (MongoDB's naming rules, as for the key vault's),
//! not the key vault itself (its keyMaterial is wrapped, not field-encrypted), and not
//! in the `admin`, `local` or `config` databases nor a `system.` collection (MongoDB's
//! own, never holding application data).

use crate::config::Config;
use crate::diagnostic::{Diagnostic, codes, pointer};

use super::common::namespace_problem;

/// Databases that hold MongoDB's own data, never application fields.
pub const SYSTEM_DATABASES: &[&str] = &["admin", "local", "config"];

/// Checks `[rotate] collections`.
pub fn check_rotate(out: &mut Vec<Diagnostic>, config: &Config) {
    let Some(collections) = config.rotate.as_ref().and_then(|r| r.collections.as_ref()) else {
        return;
    };
    if collections.is_empty() {
        out.push(Diagnostic::warning(
            codes::ROT_EMPTY,
            "/rotate/collections",
            "rotate.collections is empty: keyshift rotate would scan no collection",
            "List the collections holding encrypted fields, e.g. [\"app.customers\"], or remove the line and pass --all-collections.",
        ));
    }
    let key_vault = config.key_vault.namespace.as_str();
    for (i, ns) in collections.iter().enumerate() {
        let path = pointer(&["rotate", "collections", &i.to_string()]);
        if collections[..i].contains(ns) {
            out.push(Diagnostic::warning(
                codes::ROT_DUPLICATE,
                &path,
                format!("rotate.collections lists `{ns}` more than once"),
                "Remove the repeated entry.",
            ));
            continue;
        }
        let db = ns.split_once('.').map_or(ns.as_str(), |(db, _)| db);
        if ns.trim().is_empty() {
            out.push(Diagnostic::error(
                codes::ROT_NAMESPACE,
                &path,
                "rotate.collections has an empty entry",
                "Write each collection as \"db.coll\", e.g. \"app.customers\".",
            ));
        } else if ns == key_vault {
            out.push(Diagnostic::error(
                codes::ROT_KEY_VAULT,
                &path,
                format!("rotate.collections names the key vault `{ns}`"),
                "Remove it: the key vault holds DEKs, not encrypted fields; rotate replaces the DEKs itself.",
            ));
        } else if SYSTEM_DATABASES.contains(&db)
            || ns
                .split_once('.')
                .is_some_and(|(_, c)| c.starts_with("system."))
        {
            out.push(Diagnostic::error(
                codes::ROT_SYSTEM,
                &path,
                format!("rotate.collections names `{ns}`, which belongs to MongoDB itself (admin, local, config databases and system. collections)"),
                "Remove it; list only your applications' collections.",
            ));
        } else if let Some(why) = namespace_problem(ns) {
            out.push(Diagnostic::error(
                codes::ROT_NAMESPACE,
                &path,
                format!("rotate.collections entry `{ns}` is not a valid db.coll: {why}"),
                "Write each collection as \"db.coll\", e.g. \"app.customers\".",
            ));
        }
    }
}
