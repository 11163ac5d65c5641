//! What every command that changes the key vault works with: one connection, the
//! providers, the target, the selection, the KMS transport and where backups go.
//! Built once from the settings (`commands::session`); rewrap, rotate and retire each
//! add only what is theirs.

use std::path::PathBuf;

use bson::{Document, RawDocumentBuf};
use mongodb::{Client, Collection};

use crate::kms_io::KmsIo;
use crate::secret::SecretDoc;

/// A key vault job's shared part.
pub struct Session {
    /// A client for the key vault's deployment (also for its other collections).
    pub client: Client,
    /// The key vault collection.
    pub key_vault: Collection<RawDocumentBuf>,
    /// `db.coll` of the key vault, for backup headers and messages.
    pub key_vault_ns: String,
    /// libmongocrypt kmsProviders: the sources and the target.
    pub kms_providers: SecretDoc,
    /// The target master key (`provider` names a key of `kms_providers`).
    pub target: Document,
    /// `[rewrap] filter`: which keys to consider (empty: all).
    pub filter: Document,
    /// Whether the filter was configured (rotate and retire: else every key not under
    /// the target).
    pub explicit_filter: bool,
    /// Keys (or documents) per batch: memory is bounded by it.
    pub batch_size: usize,
    /// KMS transport; its concurrency bounds KMS work in flight.
    pub kms: KmsIo,
    /// Where backups go.
    pub backup_dir: PathBuf,
    /// This run's id (names the backups).
    pub run_id: String,
}
