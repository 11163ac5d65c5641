//! Identity of replacement DEKs: deterministic `_id`s, and UUID text.
//!
//! A rotation replaces each old DEK by a new one whose `_id` is derived from the old
//! one's ([`replacement_id`]), so two workers rotating at once try to insert the same
//! `_id`; MongoDB's unique `_id` index makes one win (E11000 for the other, which then
//! uses the winner's key). No coordination beyond that is needed.
//!
//! A replacement id is recognisable without a lookup ([`is_replacement`]): it is a
//! version-8 UUID (RFC 9562, "custom") whose last four bytes are a tag hashed from its
//! first twelve. Random (version 4) UUIDs, which libmongocrypt and the drivers assign,
//! are never replacements, so a rerun never rotates a key it created itself.

use sha2::{Digest, Sha256};

/// Domain separation for the replacement id derivation.
const ID_DOMAIN: &[u8] = b"keyshift rotate v1\0";
/// Domain separation for the tag in bytes 12..16.
const TAG_DOMAIN: &[u8] = b"keyshift rotate tag\0";

fn tag(prefix: &[u8]) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(TAG_DOMAIN)
        .chain_update(prefix)
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The `_id` of the DEK replacing `old` (stored as BSON binary subtype 4).
///
/// SHA-256("keyshift rotate v1\0" || old), first 16 bytes, version nibble 8, RFC 4122
/// variant, then bytes 12..16 set to the tag of bytes 0..12.
pub fn replacement_id(old: &[u8; 16]) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(ID_DOMAIN)
        .chain_update(old)
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id[6] = (id[6] & 0x0f) | 0x80;
    id[8] = (id[8] & 0x3f) | 0x80;
    let t = tag(&id[..12]);
    id[12..].copy_from_slice(&t);
    id
}

/// Whether `id` was made by [`replacement_id`] (version nibble 8 and a matching tag).
pub fn is_replacement(id: &[u8; 16]) -> bool {
    id[6] >> 4 == 8 && id[12..] == tag(&id[..12])
}

/// A UUID as canonical text: 8-4-4-4-12 lowercase hex.
pub fn uuid_string(id: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, b) in id.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Parses a UUID written 8-4-4-4-12 (either case), or as 32 hex digits without dashes.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let t = text.trim();
    let hex: Vec<u8> = if t.len() == 36 {
        let b = t.as_bytes();
        if [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
            return None;
        }
        b.iter().copied().filter(|&c| c != b'-').collect()
    } else if t.len() == 32 {
        t.as_bytes().to_vec()
    } else {
        return None;
    };
    if hex.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        id[i] = (hi * 16 + lo) as u8;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex16(s: &str) -> [u8; 16] {
        parse_uuid(s).unwrap()
    }

    /// Computed once with Python's hashlib (see the contract's derivation).
    #[test]
    fn known_answers() {
        let cases = [
            (
                "00000000000000000000000000000000",
                "c314c63520e985f99a5d85d636df36b3",
            ),
            (
                "000102030405060708090a0b0c0d0e0f",
                "a5f40758a3a5835c8f542521724e3651",
            ),
            (
                "0123456789abcdef0123456789abcdef",
                "c0d0aaefce478604bfba8d73c507c46e",
            ),
        ];
        for (old, new) in cases {
            assert_eq!(replacement_id(&hex16(old)), hex16(new), "{old}");
            assert!(is_replacement(&hex16(new)));
        }
    }

    fn sample(n: u32) -> impl Iterator<Item = [u8; 16]> {
        // A cheap deterministic spread of inputs (xorshift), set as random v4 UUIDs.
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..n).map(move |_| {
            let mut id = [0u8; 16];
            for chunk in id.chunks_mut(8) {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                chunk.copy_from_slice(&s.to_le_bytes());
            }
            id[6] = (id[6] & 0x0f) | 0x40;
            id[8] = (id[8] & 0x3f) | 0x80;
            id
        })
    }

    #[test]
    fn v4_ids_are_never_replacements() {
        for id in sample(5000) {
            assert!(!is_replacement(&id), "{}", uuid_string(&id));
        }
    }

    #[test]
    fn replacements_are_recognised_and_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        for old in sample(5000) {
            let new = replacement_id(&old);
            assert!(is_replacement(&new));
            assert_eq!(new[6] >> 4, 8, "version 8");
            assert_eq!(new[8] >> 6, 0b10, "RFC 4122 variant");
            assert_ne!(new, old);
            assert!(seen.insert(new), "collision for {}", uuid_string(&old));
            // A replacement of a replacement is still one, and differs from it.
            assert!(is_replacement(&replacement_id(&new)));
            assert_ne!(replacement_id(&new), new);
        }
    }

    #[test]
    fn a_changed_tag_is_not_a_replacement() {
        let mut id = replacement_id(&[7u8; 16]);
        id[15] ^= 1;
        assert!(!is_replacement(&id));
        let mut id = replacement_id(&[7u8; 16]);
        id[0] ^= 1;
        assert!(!is_replacement(&id));
    }

    #[test]
    fn uuid_text_round_trips() {
        let id = hex16("0123456789abcdef0123456789abcdef");
        assert_eq!(uuid_string(&id), "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(parse_uuid("01234567-89AB-CDEF-0123-456789ABCDEF"), Some(id));
        for id in sample(200) {
            assert_eq!(parse_uuid(&uuid_string(&id)), Some(id));
        }
        for bad in [
            "",
            "0123456789abcdef0123456789abcde",
            "01234567-89ab-cdef-0123-456789abcdeg",
            "0123456789ab-cdef-0123-456789abcdef-",
            "01234567+89ab-cdef-0123-456789abcdef",
            "é1234567-89ab-cdef-0123-456789abcde",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad:?}");
        }
    }
}
