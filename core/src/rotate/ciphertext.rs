//! The header of an encrypted value: which kind of blob, and which DEK encrypted it.
//!
//! Client-side field level encryption stores each value as BSON binary subtype 6. Its
//! first byte names the blob type; for FLE1 ciphertext (CSFLE) the next 16 bytes are the
//! DEK's UUID and byte 17 the BSON type of the original value, so the key of a value is
//! known without decrypting it. Layout (libmongocrypt, `mc-fle-blob-subtype-private.h`):
//!
//! | byte 0 | meaning                                   | rest                      |
//! |--------|-------------------------------------------|---------------------------|
//! | 0      | FLE1 intent-to-encrypt placeholder        | BSON, never stored        |
//! | 1      | FLE1 deterministic ciphertext             | key UUID, type, AEAD data |
//! | 2      | FLE1 random ciphertext                    | key UUID, type, AEAD data |
//! | 3..=18 | Queryable Encryption (FLE2) blobs/payloads | their own layouts         |
//!
//! [`parse_header`] never panics, whatever the bytes (a fuzz test holds it to that).

use serde::Serialize;

/// The algorithm name libmongocrypt takes for FLE1 deterministic encryption.
pub const DETERMINISTIC: &str = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic";
/// The algorithm name libmongocrypt takes for FLE1 random encryption.
pub const RANDOM: &str = "AEAD_AES_256_CBC_HMAC_SHA_512-Random";

/// The largest blob type Queryable Encryption defines (FLE2 text search find payload).
const LAST_QE_TYPE: u8 = 18;

/// What a subtype 6 payload is, by its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "blobType")]
pub enum BlobKind {
    /// FLE1 deterministic ciphertext (blob type 1).
    Deterministic,
    /// FLE1 random ciphertext (blob type 2).
    Random,
    /// FLE1 intent-to-encrypt placeholder (blob type 0); should never be stored.
    Placeholder,
    /// A Queryable Encryption (FLE2) blob or payload, with its blob type (3..=18).
    QueryableEncryption(u8),
    /// A blob type no version of MongoDB defines yet.
    Unknown(u8),
}

impl BlobKind {
    /// The blob kind named by a first byte.
    pub fn of_type(blob_type: u8) -> BlobKind {
        match blob_type {
            0 => BlobKind::Placeholder,
            1 => BlobKind::Deterministic,
            2 => BlobKind::Random,
            3..=LAST_QE_TYPE => BlobKind::QueryableEncryption(blob_type),
            other => BlobKind::Unknown(other),
        }
    }

    /// The explicit-encryption algorithm that produced an FLE1 ciphertext; `None` for
    /// every other kind.
    pub fn algorithm(&self) -> Option<&'static str> {
        match self {
            BlobKind::Deterministic => Some(DETERMINISTIC),
            BlobKind::Random => Some(RANDOM),
            _ => None,
        }
    }
}

/// The parsed header of a subtype 6 payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    /// The blob kind (byte 0).
    pub kind: BlobKind,
    /// The DEK's UUID (bytes 1..17), for FLE1 ciphertext only.
    pub key_id: Option<[u8; 16]>,
    /// The BSON type of the plaintext (byte 17), for FLE1 ciphertext only.
    pub original_bson_type: Option<u8>,
}

/// Why a payload has no readable header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// No bytes at all.
    Empty,
    /// FLE1 ciphertext shorter than its 18-byte header.
    Truncated {
        /// The blob kind byte 0 named.
        kind: BlobKind,
        /// How many bytes there were.
        len: usize,
    },
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Empty => write!(f, "empty encrypted value (binary subtype 6)"),
            HeaderError::Truncated { kind, len } => write!(
                f,
                "truncated {kind:?} ciphertext: {len} bytes, the header alone needs 18"
            ),
        }
    }
}

impl std::error::Error for HeaderError {}

/// FLE1 header length: blob type, key UUID, original BSON type.
const FLE1_HEADER: usize = 18;

/// Reads the header of a BSON binary subtype 6 payload (the bytes after the subtype).
///
/// FLE1 ciphertext (types 1 and 2) yields its key id and original BSON type and must be
/// at least 18 bytes long; other kinds yield only their kind.
pub fn parse_header(bytes: &[u8]) -> Result<Header, HeaderError> {
    let Some(&first) = bytes.first() else {
        return Err(HeaderError::Empty);
    };
    let kind = BlobKind::of_type(first);
    if kind.algorithm().is_none() {
        return Ok(Header {
            kind,
            key_id: None,
            original_bson_type: None,
        });
    }
    if bytes.len() < FLE1_HEADER {
        return Err(HeaderError::Truncated {
            kind,
            len: bytes.len(),
        });
    }
    let mut key_id = [0u8; 16];
    key_id.copy_from_slice(&bytes[1..17]);
    Ok(Header {
        kind,
        key_id: Some(key_id),
        original_bson_type: Some(bytes[17]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_blob_type() {
        assert_eq!(BlobKind::of_type(0), BlobKind::Placeholder);
        assert_eq!(BlobKind::of_type(1), BlobKind::Deterministic);
        assert_eq!(BlobKind::of_type(2), BlobKind::Random);
        for t in 3..=18 {
            assert_eq!(BlobKind::of_type(t), BlobKind::QueryableEncryption(t));
        }
        for t in 19..=255 {
            assert_eq!(BlobKind::of_type(t), BlobKind::Unknown(t));
        }
    }

    #[test]
    fn algorithms_only_for_fle1_ciphertext() {
        assert_eq!(BlobKind::Deterministic.algorithm(), Some(DETERMINISTIC));
        assert_eq!(BlobKind::Random.algorithm(), Some(RANDOM));
        assert_eq!(BlobKind::Placeholder.algorithm(), None);
        assert_eq!(BlobKind::QueryableEncryption(6).algorithm(), None);
        assert_eq!(BlobKind::Unknown(99).algorithm(), None);
    }

    #[test]
    fn errors() {
        assert_eq!(parse_header(&[]), Err(HeaderError::Empty));
        assert_eq!(
            parse_header(&[1; 17]),
            Err(HeaderError::Truncated {
                kind: BlobKind::Deterministic,
                len: 17
            })
        );
        assert!(parse_header(&[2]).unwrap_err().to_string().contains("18"));
        // Non-FLE1 kinds need no more than their first byte.
        assert_eq!(
            parse_header(&[7]).unwrap().kind,
            BlobKind::QueryableEncryption(7)
        );
        assert_eq!(parse_header(&[0]).unwrap().kind, BlobKind::Placeholder);
    }
}
