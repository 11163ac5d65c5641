//! What an audit record says. Four kinds (`type`):
//!
//! - `start`: a command began changing the key vault: who (OS user, host, process),
//!   when, which command, keyshift's version, the config file and the SHA-256 of the
//!   effective configuration ([`config_hash`]: references such as `env:NAME` stand
//!   where secrets are, so no secret is hashed or written), the key vault and the target.
//! - `key`: one key's outcome: its id, the master key it was under (`from`), the one it
//!   is under now (`to`), and for `refused`/`notProven` the reason.
//! - `end`: the command's outcome and counts (and the error when it failed).
//! - `repair`: a later run found the file ending in a line a crash had cut, and removed
//!   it (its length and hash are kept here, so the cut is evident too).
//!
//! Every record carries `at` (RFC 3339, UTC) and `run` (the run id that names the
//! backups of the same run). Master keys and key ids are not secret.

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Config;

/// One key's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// rewrap: rewrapped under the target, proven and written.
    Moved,
    /// rewrap: already under the target (nothing written).
    Already,
    /// rewrap: libmongocrypt refused the key document; not written.
    Refused,
    /// rewrap: the new wrapping could not be proven; not written.
    NotProven,
    /// rewrap, rollback: the key changed between backup and write; left alone.
    ChangedMeanwhile,
    /// rollback: put back as the backup recorded it.
    Restored,
    /// rollback: already as in the backup.
    AlreadyRestored,
    /// rollback: in the backup but no longer in the key vault.
    Missing,
    /// rotate: replaced by a new DEK under the target (`newId`).
    Replaced,
    /// retire: deleted (its replacement is `newId`).
    Deleted,
    /// retire: restored after a failed deletion check, or kept for a reason.
    Kept,
}

/// Who ran the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Who {
    /// OS user name of the process's user id (or `uid:N` when it has no name).
    pub user: String,
    /// The process's user id, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The user who ran it through `sudo` (`SUDO_USER`), when so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sudo_user: Option<String>,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
}

/// What a `start` record says besides time and run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Start<'a> {
    /// `rewrap`, `rollback`, `rotate` or `retire`.
    pub command: &'a str,
    /// Who ran it.
    pub who: &'a Who,
    /// keyshift's version.
    pub keyshift: &'a str,
    /// The configuration file as given.
    pub config_path: &'a str,
    /// [`config_hash`] of the effective configuration.
    pub config_sha256: &'a str,
    /// `db.coll` of the key vault.
    pub key_vault: &'a str,
    /// The target masterKey (extended JSON), when the command has one.
    pub target: Option<&'a Value>,
    /// Command-specific facts (rollback: the backup file; rotate: the partition).
    pub detail: Option<Value>,
}

/// SHA-256 of the effective configuration's canonical JSON. The configuration holds
/// references (`env:NAME`, `file:PATH`) where secrets are, never a secret
/// ([`crate::validate`] refuses literal secrets), so the hash reveals none; two runs
/// with the same hash ran with the same settings.
pub fn config_hash(config: &Config) -> String {
    super::hash(&config.to_json_value().to_string())
}

/// A `start` record.
pub fn start(at: &str, run: &str, s: &Start<'_>) -> Value {
    json!({
        "type": "start",
        "at": at,
        "run": run,
        "command": s.command,
        "who": s.who,
        "keyshift": s.keyshift,
        "config": {"path": s.config_path, "sha256": s.config_sha256},
        "keyVault": s.key_vault,
        "target": s.target,
        "detail": s.detail,
    })
}

/// One key's record. `to` is the master key the key is under after this run (for keys
/// not moved: where it still is); `why` is the reason for refused or not proven keys;
/// `new_id` the replacement DEK for rotate and retire.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    /// The key's id (UUID text).
    pub id: String,
    /// Its masterKey before the command (extended JSON).
    pub from: Option<Value>,
    /// Its masterKey after.
    pub to: Option<Value>,
    /// What happened.
    pub outcome: Outcome,
    /// Why, for outcomes that have a reason.
    pub why: Option<String>,
    /// The replacement DEK (rotate, retire).
    pub new_id: Option<String>,
}

impl KeyRecord {
    /// A key's outcome, with no reason and no replacement.
    pub fn new(
        id: impl Into<String>,
        from: Option<Value>,
        to: Option<Value>,
        outcome: Outcome,
    ) -> Self {
        KeyRecord {
            id: id.into(),
            from,
            to,
            outcome,
            why: None,
            new_id: None,
        }
    }

    /// With the reason for the outcome.
    pub fn why(mut self, why: impl Into<String>) -> Self {
        self.why = Some(why.into());
        self
    }

    /// With the replacement DEK.
    pub fn new_id(mut self, id: impl Into<String>) -> Self {
        self.new_id = Some(id.into());
        self
    }
}

/// A `key` record.
pub fn key(at: &str, run: &str, k: &KeyRecord) -> Value {
    let mut v = json!({
        "type": "key",
        "at": at,
        "run": run,
        "id": k.id,
        "from": k.from,
        "to": k.to,
        "outcome": k.outcome,
    });
    if let Some(why) = &k.why {
        v["why"] = why.as_str().into();
    }
    if let Some(new_id) = &k.new_id {
        v["newId"] = new_id.as_str().into();
    }
    v
}

/// An `end` record: `outcome` is `ok` or `failed`; `counts` the command's summary.
pub fn end(at: &str, run: &str, ok: bool, counts: Value, error: Option<&str>) -> Value {
    let mut v = json!({
        "type": "end",
        "at": at,
        "run": run,
        "outcome": if ok { "ok" } else { "failed" },
        "counts": counts,
    });
    if let Some(error) = error {
        v["error"] = error.into();
    }
    v
}

/// A `repair` record: a crash cut the line of `cut_bytes` bytes hashing to `cut_sha256`
/// and a later run removed it.
pub fn repair(at: &str, run: &str, cut_bytes: u64, cut_sha256: &str) -> Value {
    json!({
        "type": "repair",
        "at": at,
        "run": run,
        "cutBytes": cut_bytes,
        "cutSha256": cut_sha256,
    })
}
