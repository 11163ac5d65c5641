//! Least-privilege access for a move, and the commands to grant, create and revoke it,
//! said separately for the two sides:
//!
//! - **the target** ([`target`]): what the applications (and keyshift) need on the new
//!   master key for as long as they use it: wrap new DEKs and unwrap them, and for
//!   keyshift's AWS preflight, describe the key. Nothing else: no key management.
//! - **each KMS source** ([`source`]): what the move needs on the old master key(s):
//!   unwrap (decrypt) only, for keyshift's identity during the move and for the
//!   applications until the final stage is deployed; then it is revoked. A local source
//!   needs no grant (its key is a file or a variable).
//!
//! Commands use the values the configuration (and, for the source keys, the key vault's
//! inventory) holds; placeholders in UPPER_CASE remain only for what nobody knows yet
//! (`ROLE_NAME`, a key id that creating the key will print).

pub mod source;
pub mod target;

use serde::Serialize;

use crate::config::{Config, ProviderKind};
use crate::inventory::Inventory;

pub use source::SourceAccess;

/// A command to run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    /// Why this command is needed.
    pub why: String,
    /// The exact command line (placeholders in UPPER_CASE).
    pub command: String,
}

/// The access a move needs: the target's, then each KMS source's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Provider type of the target (`aws`, `azure`, `gcp`, `kmip`).
    pub provider: String,
    /// A one-line title.
    pub title: String,
    /// The policy document (IAM JSON, role binding JSON), empty when there is none.
    pub document: String,
    /// Commands that grant it.
    pub grant: Vec<Command>,
    /// Commands that create the target key, for a key that does not exist yet.
    pub create_key: Vec<Command>,
    /// What else to know.
    pub notes: Vec<String>,
    /// What the move needs on each KMS source (decrypt only), one entry per source
    /// provider that is not local.
    pub sources: Vec<SourceAccess>,
}

pub(crate) fn cmd(why: &str, command: String) -> Command {
    Command {
        why: why.to_string(),
        command,
    }
}

pub(crate) fn or<'a>(v: &'a Option<String>, placeholder: &'a str) -> &'a str {
    v.as_deref()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(placeholder)
}

/// The policy for the configuration, without knowing the key vault (source keys are
/// placeholders). `None` when there is no target or it is a local key.
pub fn policy(config: &Config) -> Option<Policy> {
    policy_for(config, None)
}

/// The policy, naming the source keys the inventory found under each KMS source.
pub fn policy_for(config: &Config, inventory: Option<&Inventory>) -> Option<Policy> {
    let mut p = target::policy(config)?;
    p.sources = config
        .source_providers()
        .into_iter()
        .filter(|name| ProviderKind::of_name(name).is_some_and(ProviderKind::is_remote))
        .map(|name| source::access(config, name, inventory))
        .collect();
    Some(p)
}
