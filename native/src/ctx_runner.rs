//! Drives a libmongocrypt context to completion: the I/O each state asks for.
//!
//! libmongocrypt decides; this loop only fetches what it asks for. NEED_MONGO_KEYS is
//! answered from a [`Keys`] source: the key vault (a `find` with libmongocrypt's own
//! filter) or key documents the caller already holds (rewrap answers from its backup, so
//! what it rewraps and proves is exactly what it backed up). READY finalizes; DONE ends.
//! NEED_KMS hands the requests to [`KmsIo`]; NEED_KMS_CREDENTIALS gets on-demand
//! credentials from [`crate::credentials`].

use bson::{Document, RawDocument, RawDocumentBuf};
use futures_util::TryStreamExt;
use mongocrypt::ctx::{Ctx, State};
use mongodb::Collection;

use crate::kms_io::{KmsError, KmsIo};
use keyshift_core::kms_error::KmsRefusal;

/// Why a context could not complete.
#[derive(Debug)]
pub enum RunError {
    /// libmongocrypt reported an error (its message names the cause).
    Crypt(mongocrypt::error::Error),
    /// A KMS request failed for good.
    Kms(KmsError),
    /// On-demand credentials could not be had (the message says from where).
    Credentials(String),
    /// The key vault query failed.
    Mongo(mongodb::error::Error),
    /// A document from libmongocrypt or the key vault was not valid BSON.
    Bson(String),
    /// The context needs something this build cannot do yet.
    Unsupported(&'static str),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Crypt(e) => write!(f, "libmongocrypt: {e}"),
            RunError::Kms(e) => write!(f, "KMS: {e}"),
            RunError::Credentials(e) => write!(f, "credentials: {e}"),
            RunError::Mongo(e) => write!(f, "key vault: {e}"),
            RunError::Bson(e) => write!(f, "malformed BSON: {e}"),
            RunError::Unsupported(what) => write!(f, "not supported yet: {what}"),
        }
    }
}

impl std::error::Error for RunError {}

impl RunError {
    /// The permanent KMS refusal behind this failure, if it is one (no retry can
    /// change it). libmongocrypt reports a KMS's answer as text only, so its message
    /// is read here, once, by core's classifier; callers match on the result.
    pub fn refusal(&self) -> Option<KmsRefusal> {
        match self {
            RunError::Kms(KmsError::Certificate { .. }) => Some(KmsRefusal::Certificate),
            RunError::Kms(KmsError::Crypt(e)) | RunError::Crypt(e) => {
                keyshift_core::kms_error::classify(&e.to_string())
            }
            _ => None,
        }
    }
}

impl From<mongocrypt::error::Error> for RunError {
    fn from(e: mongocrypt::error::Error) -> Self {
        RunError::Crypt(e)
    }
}

impl From<KmsError> for RunError {
    fn from(e: KmsError) -> Self {
        RunError::Kms(e)
    }
}

impl From<mongodb::error::Error> for RunError {
    fn from(e: mongodb::error::Error) -> Self {
        RunError::Mongo(e)
    }
}

/// Where NEED_MONGO_KEYS gets its key documents.
#[derive(Clone, Copy)]
pub enum Keys<'a> {
    /// Query the key vault with libmongocrypt's filter.
    Vault(&'a Collection<RawDocumentBuf>),
    /// Exactly these documents (each must be one libmongocrypt asked for).
    Given(&'a [RawDocumentBuf]),
}

fn to_document(raw: &RawDocument) -> Result<Document, RunError> {
    Document::try_from(raw).map_err(|e| RunError::Bson(e.to_string()))
}

/// Runs `ctx` until DONE and returns what READY finalized (libmongocrypt's result
/// document: a new key document, `{v: ...}` for explicit encrypt/decrypt, ...).
pub async fn run(mut ctx: Ctx, keys: Keys<'_>, kms: &KmsIo) -> Result<RawDocumentBuf, RunError> {
    let mut result = None;
    loop {
        match ctx.state()? {
            State::NeedMongoKeys => {
                match keys {
                    Keys::Vault(key_vault) => {
                        let filter = to_document(ctx.mongo_op()?)?;
                        let mut cursor = key_vault.find(filter).await?;
                        while let Some(key) = cursor.try_next().await? {
                            ctx.mongo_feed(&key)?;
                        }
                    }
                    Keys::Given(docs) => {
                        for key in docs {
                            ctx.mongo_feed(key)?;
                        }
                    }
                }
                ctx.mongo_done()?;
            }
            State::Ready => {
                result = Some(ctx.finalize()?.to_owned());
            }
            State::Done => {
                return result.ok_or(RunError::Unsupported(
                    "libmongocrypt finished without a result",
                ));
            }
            State::NeedKms => {
                let scope = ctx.kms_scope();
                kms.run_scope(&scope).await?;
                // Dropping the scope tells libmongocrypt the KMS work is done.
            }
            State::NeedKmsCredentials => {
                let on_demand = kms.on_demand.as_ref().ok_or(RunError::Unsupported(
                    "on-demand KMS credentials for this provider",
                ))?;
                let creds = on_demand.get().await.map_err(RunError::Credentials)?;
                let raw = RawDocumentBuf::try_from(creds.expose())
                    .map_err(|e| RunError::Bson(e.to_string()))?;
                ctx.provide_kms_providers(&raw)?;
            }
            _ => return Err(RunError::Unsupported("automatic encryption states")),
        }
    }
}
