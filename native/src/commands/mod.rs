//! One module per CLI command; each returns the process exit code (DESIGN.md, "CLI").
//!
//! Output contract: with `--json`, exactly one JSON document on stdout; otherwise text
//! for people on stderr (stdout stays free for what a user pipes: snippets, policies).

pub mod audit;
pub mod check;
pub mod inspect;
pub mod offline;
pub mod preflight;
pub mod retire;
pub mod rewrap;
pub mod rollback;
pub mod rotate;
pub mod verify;

use std::io::IsTerminal;

use bson::{Document, RawDocumentBuf};
use futures_util::TryStreamExt;

use crate::kms_io::KmsIo;
use crate::kms_tls::KmsTls;
use crate::settings::{LoadError, Settings};

/// Done.
pub const OK: i32 = 0;
/// Failed; nothing unsafe written.
pub const FAILED: i32 = 1;
/// Bad usage or invalid configuration.
pub const USAGE: i32 = 2;
/// Verification found keys not under the target, or unreadable.
pub const NOT_VERIFIED: i32 = 3;

/// A command's failure: what to print and which exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: i32,
    /// Message for the user (never a secret).
    pub message: String,
}

impl Failure {
    /// Failed at run time (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Failure {
            code: FAILED,
            message: message.into(),
        }
    }

    /// Bad usage or configuration (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: USAGE,
            message: message.into(),
        }
    }
}

impl From<LoadError> for Failure {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Invalid(diagnostics) => {
                for d in diagnostics.iter().filter(|d| d.is_error()) {
                    eprintln!("error[{}] {}: {}", d.code, path_or_root(&d.path), d.message);
                }
                Failure::usage(format!(
                    "{} (see above; `keyshift check` lists everything)",
                    LoadError::Invalid(diagnostics)
                ))
            }
            other => Failure::usage(other.to_string()),
        }
    }
}

/// A diagnostic path for people: the JSON pointer, or "(file)" for the whole file.
pub fn path_or_root(path: &str) -> &str {
    if path.is_empty() { "(file)" } else { path }
}

/// The result type of a command.
pub type CmdResult = Result<i32, Failure>;

/// Prints a JSON document on stdout ([`crate::output::json`]).
pub fn print_json(value: &serde_json::Value) {
    crate::output::json(value);
}

/// Connects to the key vault named in the settings, with keyshift's read and write
/// guarantees ([`crate::deployment`]).
pub async fn key_vault(
    settings: &Settings,
) -> Result<mongodb::Collection<RawDocumentBuf>, Failure> {
    Ok(key_vault_client(settings).await?.1)
}

/// As [`key_vault`], with the client (for the deployment's other collections).
pub async fn key_vault_client(
    settings: &Settings,
) -> Result<(mongodb::Client, mongodb::Collection<RawDocumentBuf>), Failure> {
    crate::deployment::key_vault(
        settings.uri.expose(),
        (&settings.key_vault_db, &settings.key_vault_coll),
    )
    .await
    .map_err(connect_failure)
}

/// A connection that could not be set up: exit 2 for a bad connection string, 1 for
/// the environment (DNS).
pub fn connect_failure(e: crate::deployment::ConnectError) -> Failure {
    match e.1 {
        crate::deployment::ConnectFailure::Usage => Failure::usage(e.0),
        crate::deployment::ConnectFailure::Environment => Failure::failed(e.0),
    }
}

/// Driver errors may quote the URI, which may hold a password: cut it out.
pub fn redact_uri_error(message: &str, uri: &str) -> String {
    crate::deployment::redact(message, uri)
}

/// The shared part of rewrap, rotate and retire: connects to the key vault and sets up
/// the KMS transport. A configuration without `[target]` is refused (exit 2).
pub async fn session(settings: &Settings) -> Result<crate::session::Session, Failure> {
    let target = require_target(settings)?;
    let (client, key_vault) = key_vault_client(settings).await?;
    Ok(crate::session::Session {
        client,
        key_vault,
        key_vault_ns: settings.key_vault_ns(),
        kms_providers: settings.kms_providers.clone(),
        target,
        filter: settings.filter.clone(),
        explicit_filter: settings.filter_configured,
        batch_size: settings.batch_size,
        kms: kms_io(settings)?,
        backup_dir: settings.backup_dir.clone(),
        run_id: run_id(),
    })
}

/// The configured target master key, or the usage error saying it is missing.
pub fn require_target(settings: &Settings) -> Result<Document, Failure> {
    settings
        .target
        .clone()
        .ok_or_else(|| Failure::usage("the configuration has no [target]"))
}

/// The KMS transport for the settings.
pub fn kms_io(settings: &Settings) -> Result<KmsIo, Failure> {
    Ok(KmsIo {
        tls: KmsTls::new(&settings.tls).map_err(|e| Failure::usage(format!("tlsOptions: {e}")))?,
        concurrency: settings.concurrency,
        timeout: std::time::Duration::from_secs(30),
        pace: std::sync::Arc::new(crate::kms_pace::KmsPace::new(settings.kms_rate)),
        on_demand: {
            let names = crate::crypt::on_demand_providers(settings.kms_providers.expose());
            let aws_ca = settings.tls.get("aws").and_then(|t| t.ca_file.clone());
            (!names.is_empty()).then(|| {
                std::sync::Arc::new(crate::credentials::OnDemand::new(names).aws_ca_file(aws_ca))
            })
        },
    })
}

/// Every key document matching `filter`, in `_id` order, as extended JSON (for core).
pub async fn key_documents_json(
    vault: &mongodb::Collection<RawDocumentBuf>,
    filter: Document,
    uri: &str,
) -> Result<Vec<serde_json::Value>, Failure> {
    let read_err = |e: mongodb::error::Error| {
        Failure::failed(format!(
            "cannot read the key vault: {}; check keyVault.uri, the network and TLS settings",
            redact_uri_error(&crate::deployment::describe(&e), uri)
        ))
    };
    let mut cursor = vault
        .find(filter)
        .sort(bson::doc! {"_id": 1})
        .await
        .map_err(read_err)?;
    let mut out = Vec::new();
    while let Some(raw) = cursor.try_next().await.map_err(read_err)? {
        let doc = Document::try_from(raw.as_ref())
            .map_err(|e| Failure::failed(format!("malformed key document: {e}")))?;
        out.push(bson::Bson::Document(doc).into_canonical_extjson());
    }
    Ok(out)
}

/// Asks before a change, unless `--yes`. Without a terminal it refuses: a script must
/// say `--yes` explicitly.
pub fn confirm(question: &str, yes: bool) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(format!(
            "{question} — refusing without confirmation: stdin is not a terminal; pass --yes"
        )));
    }
    eprint!("{question} Type yes to continue: ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Failure::usage(format!("cannot read the answer: {e}")))?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Failure::usage("not confirmed; nothing was changed"))
    }
}

/// A run id for backup names: UTC time and pid, sortable and unique per host.
pub fn run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let dt = bson::DateTime::from_millis(now.as_millis() as i64);
    let stamp = dt
        .try_to_rfc3339_string()
        .unwrap_or_else(|_| now.as_secs().to_string())
        .replace([':', '.'], "")
        .replace('-', "");
    format!("{stamp}-{}", std::process::id())
}
