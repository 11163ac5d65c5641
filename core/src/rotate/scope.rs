//! Which collections rotate re-encrypts, and which keys it leaves to rewrap.
//!
//! rotate re-encrypts CSFLE values only. A Queryable Encryption collection (one with
//! `encryptedFields`) keeps its own metadata per value, which a client-side
//! re-encryption cannot rebuild, so it is refused before anything is written; with
//! `--all-collections` (the user did not name it) it is skipped and reported instead.
//! Keys a Queryable Encryption collection names are left as they are: `keyshift
//! rewrap` moves them, since their DEKs need not change.

use std::collections::HashSet;

/// What rotate does with one collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Scan it and re-encrypt its values.
    Rotate,
    /// Leave it out and name it in the report.
    Skip,
    /// Stop before anything is written, saying why and what to do.
    Refuse(String),
}

/// The decision for the collection `ns`, given whether it is a Queryable Encryption
/// collection and whether the user listed collections (`all_collections` false) or
/// asked for every one.
pub fn collection(ns: &str, queryable: bool, all_collections: bool) -> Scope {
    match (queryable, all_collections) {
        (false, _) => Scope::Rotate,
        (true, true) => Scope::Skip,
        (true, false) => Scope::Refuse(format!(
            "{ns} is a Queryable Encryption collection (encryptedFields): rotate \
             re-encrypts only CSFLE values. Leave it out of [rotate] collections; its \
             keys can still be moved with `keyshift rewrap`"
        )),
    }
}

/// Whether rotate replaces the key `id` (`None`: a key without a UUID `_id`, which no
/// collection can name) when Queryable Encryption collections name `queryable`.
pub fn replaces_key(id: Option<&[u8; 16]>, queryable: &HashSet<[u8; 16]>) -> bool {
    id.is_none_or(|id| !queryable.contains(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_queryable_collection_is_refused_with_what_to_do() {
        let Scope::Refuse(why) = collection("app.qe", true, false) else {
            panic!("not refused");
        };
        assert!(why.starts_with("app.qe is a Queryable Encryption collection"));
        assert!(why.contains("keyshift rewrap"));
    }

    #[test]
    fn with_every_collection_a_queryable_one_is_skipped_and_others_rotate() {
        assert_eq!(collection("app.qe", true, true), Scope::Skip);
        assert_eq!(collection("app.csfle", false, true), Scope::Rotate);
        assert_eq!(collection("app.csfle", false, false), Scope::Rotate);
    }

    #[test]
    fn keys_a_queryable_collection_names_are_left_to_rewrap() {
        let qe = HashSet::from([[1u8; 16]]);
        assert!(!replaces_key(Some(&[1; 16]), &qe));
        assert!(replaces_key(Some(&[2; 16]), &qe));
        assert!(replaces_key(None, &qe));
    }
}
