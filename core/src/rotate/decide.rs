//! What rotate does with one encrypted value, from its header alone.
//!
//! A value under an old key is re-encrypted under that key's replacement with the same
//! algorithm (deterministic stays deterministic, so equality queries keep working). A
//! value already under a replacement is skipped, which is what makes reruns and
//! overlapping partitions converge. Queryable Encryption blobs, and blob types no
//! MongoDB version defines yet (most likely a newer Queryable Encryption payload),
//! make rotate refuse: it re-encrypts only CSFLE values.

use serde::Serialize;

use super::ciphertext::{BlobKind, Header};
use super::ids::{is_replacement, replacement_id};

/// The decision for one subtype 6 value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum Action {
    /// Decrypt with `old`, encrypt with `new` using `algorithm`.
    Reencrypt {
        /// The DEK that encrypted the value.
        old: [u8; 16],
        /// Its replacement ([`replacement_id`]).
        new: [u8; 16],
        /// The explicit-encryption algorithm to use again.
        algorithm: &'static str,
    },
    /// Already under a replacement key: nothing to do.
    AlreadyReplaced,
    /// Under a key rotate does not touch (outside the scope).
    NotInScope,
    /// A Queryable Encryption blob (its blob type): rotate refuses.
    RefuseQueryable(u8),
    /// Not a stored ciphertext rotate can handle (an intent-to-encrypt placeholder).
    Malformed,
}

/// Decides what to do with a value whose header is `header`; `is_old` says whether a
/// key id is one of the keys being rotated.
pub fn decide(header: &Header, is_old: impl Fn(&[u8; 16]) -> bool) -> Action {
    match header.kind {
        BlobKind::QueryableEncryption(t) | BlobKind::Unknown(t) => {
            return Action::RefuseQueryable(t);
        }
        BlobKind::Placeholder => return Action::Malformed,
        BlobKind::Deterministic | BlobKind::Random => {}
    }
    let (Some(algorithm), Some(old)) = (header.kind.algorithm(), header.key_id) else {
        return Action::Malformed;
    };
    if is_replacement(&old) {
        Action::AlreadyReplaced
    } else if is_old(&old) {
        Action::Reencrypt {
            old,
            new: replacement_id(&old),
            algorithm,
        }
    } else {
        Action::NotInScope
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotate::ciphertext::{DETERMINISTIC, RANDOM, parse_header};

    const OLD: [u8; 16] = [0x11; 16];
    const OTHER: [u8; 16] = [0x22; 16];

    fn blob(kind: u8, key: &[u8; 16]) -> Header {
        let mut b = vec![kind];
        b.extend_from_slice(key);
        b.push(2); // string
        b.extend_from_slice(&[0xAA; 48]);
        parse_header(&b).unwrap()
    }

    fn old_only(id: &[u8; 16]) -> bool {
        *id == OLD
    }

    #[test]
    fn reencrypts_old_keys_with_the_same_algorithm() {
        for (kind, alg) in [(1, DETERMINISTIC), (2, RANDOM)] {
            assert_eq!(
                decide(&blob(kind, &OLD), old_only),
                Action::Reencrypt {
                    old: OLD,
                    new: replacement_id(&OLD),
                    algorithm: alg
                }
            );
        }
    }

    #[test]
    fn skips_replacements_even_if_called_old() {
        let new = replacement_id(&OLD);
        assert_eq!(decide(&blob(1, &new), |_| true), Action::AlreadyReplaced);
        assert_eq!(decide(&blob(2, &new), |_| false), Action::AlreadyReplaced);
    }

    #[test]
    fn leaves_other_keys() {
        assert_eq!(decide(&blob(1, &OTHER), old_only), Action::NotInScope);
        assert_eq!(decide(&blob(2, &OTHER), old_only), Action::NotInScope);
    }

    #[test]
    fn refuses_queryable_encryption() {
        for t in 3..=18u8 {
            let h = parse_header(&[t, 0, 0]).unwrap();
            assert_eq!(decide(&h, |_| true), Action::RefuseQueryable(t));
        }
        let h = parse_header(&[200]).unwrap();
        assert_eq!(decide(&h, |_| true), Action::RefuseQueryable(200));
    }

    #[test]
    fn placeholders_and_inconsistent_headers_are_malformed() {
        let h = parse_header(&[0, 1, 2, 3]).unwrap();
        assert_eq!(decide(&h, |_| true), Action::Malformed);
        let h = Header {
            kind: BlobKind::Random,
            key_id: None,
            original_bson_type: None,
        };
        assert_eq!(decide(&h, |_| true), Action::Malformed);
    }
}
