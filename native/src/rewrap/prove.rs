//! Where rewrap decides a key is proven: a fresh random probe, encrypted with the key
//! under its NEW wrapping (unwrapped by the target KMS alone), must decrypt with the
//! key under its OLD wrapping (unwrapped by the source). Equal plaintext means both
//! wrappings hold the same DEK, so writing the new one loses nothing.
//!
//! The two handles are fresh for every batch and see each key once, so libmongocrypt's
//! key cache can never answer in place of a real unwrap.

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, RawBson, RawDocumentBuf};
use mongocrypt::Crypt;
use mongocrypt::ctx::Algorithm;

use crate::ctx_runner::{self, Keys};
use crate::kms_io::KmsIo;
use keyshift_core::kms_error::KmsRefusal;

/// Why a new wrapping was not proven (no secret in it: ids and libmongocrypt errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotProven {
    /// What failed, in words.
    pub why: String,
    /// When a KMS refused for good (retrying cannot help): which refusal.
    pub refusal: Option<KmsRefusal>,
}

impl NotProven {
    pub(crate) fn new(why: impl Into<String>) -> Self {
        NotProven {
            why: why.into(),
            refusal: None,
        }
    }

    fn run(stage: &str, e: &ctx_runner::RunError) -> Self {
        NotProven {
            why: format!("{stage}: {e}"),
            refusal: e.refusal(),
        }
    }
}

impl std::fmt::Display for NotProven {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

fn key_id(doc: &RawDocumentBuf) -> Result<[u8; 16], NotProven> {
    crate::key_id::of(doc).ok_or_else(|| NotProven::new("key document has no UUID _id"))
}

fn value_of(out: &RawDocumentBuf) -> Result<Bson, NotProven> {
    Document::try_from(out.as_ref())
        .ok()
        .and_then(|d| d.get("v").cloned())
        .ok_or_else(|| NotProven::new("libmongocrypt returned no value"))
}

/// Proves that `new` (the key rewrapped for the target) holds the same DEK as `old`.
pub async fn prove(
    under_new: &Crypt,
    under_old: &Crypt,
    old: &RawDocumentBuf,
    new: &RawDocumentBuf,
    kms: &KmsIo,
) -> Result<(), NotProven> {
    if key_id(new)? != key_id(old)? {
        return Err(NotProven::new("rewrapped document has another _id"));
    }
    round_trip(
        (under_new, new, "unwrapping the new wrapping"),
        (under_old, old, "unwrapping the old wrapping"),
        kms,
    )
    .await
    .map_err(|e| match e {
        RoundTrip::Differs => {
            NotProven::new("the new wrapping holds a different DEK than the old one")
        }
        RoundTrip::Failed(n) => n,
    })
}

/// Proves a key is readable through `crypt` (verify: the target provider alone;
/// preflight: a source key): a probe encrypted with the key decrypts back.
pub async fn readable(crypt: &Crypt, key: &RawDocumentBuf, kms: &KmsIo) -> Result<(), NotProven> {
    round_trip(
        (crypt, key, "unwrapping the key"),
        (crypt, key, "unwrapping the key again"),
        kms,
    )
    .await
    .map_err(|e| match e {
        RoundTrip::Differs => NotProven::new("the key decrypts a probe to something else"),
        RoundTrip::Failed(n) => n,
    })
}

enum RoundTrip {
    Failed(NotProven),
    Differs,
}

/// A random probe encrypted with the key of `seal` and decrypted with the key of
/// `open` (each a handle, the key document, and how its unwrap is named in errors).
async fn round_trip(
    seal: (&Crypt, &RawDocumentBuf, &str),
    open: (&Crypt, &RawDocumentBuf, &str),
    kms: &KmsIo,
) -> Result<(), RoundTrip> {
    let (under_new, new, new_stage) = seal;
    let (under_old, old, old_stage) = open;
    let fail = RoundTrip::Failed;
    let id = key_id(new).map_err(fail)?;
    let probe = crate::crypto_hooks::random(32).map_err(|e| fail(NotProven::new(e.to_string())))?;
    let crypt_err =
        |stage: &str, e: &dyn std::fmt::Display| fail(NotProven::new(format!("{stage}: {e}")));

    let encrypt = under_new
        .ctx_builder()
        .key_id(&id)
        .and_then(|b| b.algorithm(Algorithm::Random))
        .and_then(|b| {
            b.build_explicit_encrypt(RawBson::Binary(Binary {
                subtype: BinarySubtype::Generic,
                bytes: probe.clone(),
            }))
        })
        .map_err(|e| crypt_err("probe encrypt", &e))?;
    let sealed = ctx_runner::run(encrypt, Keys::Given(std::slice::from_ref(new)), kms)
        .await
        .map_err(|e| fail(NotProven::run(new_stage, &e)))?;
    let Bson::Binary(ciphertext) = value_of(&sealed).map_err(fail)? else {
        return Err(fail(NotProven::new("probe ciphertext is not binary")));
    };

    // The crate wraps the bytes as {v: Binary(subtype 6)} itself.
    let decrypt = under_old
        .ctx_builder()
        .build_explicit_decrypt(&ciphertext.bytes)
        .map_err(|e| crypt_err("probe decrypt", &e))?;
    let opened = ctx_runner::run(decrypt, Keys::Given(std::slice::from_ref(old)), kms)
        .await
        .map_err(|e| fail(NotProven::run(old_stage, &e)))?;
    match value_of(&opened).map_err(fail)? {
        Bson::Binary(b) if b.bytes == probe => Ok(()),
        _ => Err(RoundTrip::Differs),
    }
}
