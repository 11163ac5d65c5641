//! Rotation: replacing DEKs and re-encrypting fields (the exposed-key path).
//!
//! Rewrap is enough when the old master key is merely retired; when it may have been
//! exposed, the DEKs themselves must be replaced and every field re-encrypted. This
//! module is the pure part of `keyshift rotate` / `keyshift retire`; the native shell
//! does the reading, decrypting, encrypting and writing.
//!
//! - [`ids`]: the deterministic `_id` of each old key's replacement, and UUID text;
//! - [`ciphertext`]: the header of a BSON binary subtype 6 value (its DEK, its kind);
//! - [`decide`]: what to do with one value (re-encrypt, skip, refuse);
//! - [`schema`]: rewriting the key ids in a `$jsonSchema` (validators, schemaMaps);
//! - [`partition`]: `--partition I/N` and the offsets of its `_id` boundaries;
//! - [`scope`]: which collections rotate re-encrypts (Queryable Encryption refused or
//!   skipped) and which keys it leaves to rewrap;
//! - [`paths`]: which paths a document's compare-and-swap update compares and sets;

pub mod ciphertext;
pub mod decide;
pub mod ids;
pub mod partition;
pub mod paths;
pub mod schema;
pub mod scope;

pub use ids::{is_replacement, parse_uuid, replacement_id, uuid_string};
