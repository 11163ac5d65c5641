//! Connecting to a MongoDB deployment the way a key vault needs (DESIGN.md promise 9).
//!
//! Every client keyshift makes comes from [`connect`], which sets, whatever the
//! connection string says:
//! - reads from the primary with readConcern "majority": a key vault read never sees a
//!   write that a failover could roll back, nor a secondary's stale copy;
//! - writes with writeConcern `{w: "majority", j: true}`: a key write is counted as done
//!   only once a majority has it on disk (the client-side encryption specification
//!   requires majority for key vault operations).
//!
//! Collections and databases taken from the client inherit both. `run_command` does not:
//! commands that write carry [`write_concern_doc`] themselves, and their replies go
//! through [`write_concern_error`].
//!
//! MONGODB-AWS authentication without credentials in the URI uses keyshift's own AWS
//! credential chain ([`crate::aws`]): environment, profiles, web identity, ECS and EC2
//! metadata, the same chain as for AWS KMS.

use bson::{Document, doc};
use mongodb::options::{
    Acknowledgment, AuthMechanism, ClientOptions, ReadConcern, ReadPreference, SelectionCriteria,
    WriteConcern,
};
use mongodb::{Client, Collection};

/// The write concern of every key vault write.
pub fn write_concern() -> WriteConcern {
    WriteConcern::builder()
        .w(Acknowledgment::Majority)
        .journal(true)
        .build()
}

/// The same, as the `writeConcern` field of a command sent with `run_command`.
pub fn write_concern_doc() -> Document {
    doc! {"w": "majority", "j": true}
}

/// Primary reads (also for `run_command`, whose default this states explicitly).
pub fn primary() -> SelectionCriteria {
    SelectionCriteria::ReadPreference(ReadPreference::Primary)
}

/// Why a connection could not be set up (never quoting the URI).
#[derive(Debug)]
pub struct ConnectError(pub String, pub ConnectFailure);

/// Whose problem a [`ConnectError`] is, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// The connection string itself is wrong (exit 2).
    Usage,
    /// The environment failed it: DNS, network (exit 1).
    Environment,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

/// A client for `uri` with keyshift's read and write guarantees (module docs). `what`
/// names the field the URI came from, for messages.
pub async fn connect(uri: &str, what: &str) -> Result<Client, ConnectError> {
    connect_within(uri, what, None).await
}

/// As [`connect`], giving up on finding a server after `patience` (server selection
/// timeout) instead of the driver's 30 s: for commands that only look (plan, policy).
pub async fn connect_within(
    uri: &str,
    what: &str,
    patience: Option<std::time::Duration>,
) -> Result<Client, ConnectError> {
    let mut options = ClientOptions::parse(uri).await.map_err(|e| {
        if let mongodb::error::ErrorKind::DnsResolve { message, .. } = e.kind.as_ref() {
            return ConnectError(
                format!(
                    "{what}: the mongodb+srv:// name could not be resolved ({}): check the \
                     cluster name (Atlas: Connect > Drivers), and that this host's DNS can \
                     resolve it (SRV and TXT records)",
                    redact(message, uri)
                ),
                ConnectFailure::Environment,
            );
        }
        ConnectError(
            format!(
                "{what} is not a usable MongoDB connection string: {}",
                redact(&describe(&e), uri)
            ),
            ConnectFailure::Usage,
        )
    })?;
    if let Some(credential) = options.credential.as_mut()
        && credential.mechanism == Some(AuthMechanism::MongoDbAws)
        && credential.username.is_none()
    {
        credential.aws_credential_provider = crate::aws::shared_provider().await;
    }
    options.read_concern = Some(ReadConcern::majority());
    options.write_concern = Some(write_concern());
    options.selection_criteria = Some(primary());
    if let Some(p) = patience {
        options.server_selection_timeout = Some(p);
        options.connect_timeout = Some(p);
    }
    if options.app_name.is_none() {
        options.app_name = Some(format!("keyshift {}", env!("CARGO_PKG_VERSION")));
    }
    Client::with_options(options).map_err(|e| {
        ConnectError(
            format!(
                "{what}: cannot set up the MongoDB client: {}",
                redact(&describe(&e), uri)
            ),
            ConnectFailure::Usage,
        )
    })
}

/// The key vault collection of a deployment, with keyshift's guarantees.
pub async fn key_vault<T: Send + Sync>(
    uri: &str,
    namespace: (&str, &str),
) -> Result<(Client, Collection<T>), ConnectError> {
    let client = connect(uri, "keyVault.uri").await?;
    let coll = client.database(namespace.0).collection(namespace.1);
    Ok((client, coll))
}

/// Driver errors may quote the URI, which may hold a password: cut it out.
pub fn redact(message: &str, uri: &str) -> String {
    if uri.is_empty() {
        message.to_string()
    } else {
        message.replace(uri, "[the connection string]")
    }
}

/// A `writeConcernError` in a command reply (`run_command` does not turn it into an
/// error): the write was applied on the primary but is not known to be durable.
pub fn write_concern_error(reply: &Document) -> Option<String> {
    let wce = reply.get_document("writeConcernError").ok()?;
    let code = wce.get_i32("code").map(i64::from).unwrap_or_default();
    let name = wce.get_str("codeName").unwrap_or("WriteConcernError");
    let msg = wce.get_str("errmsg").unwrap_or("");
    Some(format!("{name} ({code}): {msg}"))
}

/// A driver error in one line for people: the server's code name, code and message,
/// or the driver's own words; never the raw reply the driver's `Display` dumps.
pub fn describe(e: &mongodb::error::Error) -> String {
    use mongodb::error::{ErrorKind, WriteFailure};
    let server = |name: &str, code: i32, msg: &str| {
        if name.is_empty() {
            format!("error {code}: {msg}")
        } else {
            format!("{name} ({code}): {msg}")
        }
    };
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => format!(
            "{}; the write was applied but not acknowledged as durable (writeConcern majority)",
            server(&w.code_name, w.code, &w.message)
        ),
        ErrorKind::Write(WriteFailure::WriteError(w)) => {
            server(w.code_name.as_deref().unwrap_or(""), w.code, &w.message)
        }
        ErrorKind::Command(c) => server(&c.code_name, c.code, &c.message),
        ErrorKind::InsertMany(m) => match (&m.write_errors, &m.write_concern_error) {
            (Some(list), _) if !list.is_empty() => server(
                list[0].code_name.as_deref().unwrap_or(""),
                list[0].code,
                &list[0].message,
            ),
            (_, Some(w)) => format!(
                "{}; the write was applied but not acknowledged as durable (writeConcern majority)",
                server(&w.code_name, w.code, &w.message)
            ),
            _ => e.kind.to_string(),
        },
        ErrorKind::Io(io) => format!("connection failed: {io}"),
        ErrorKind::ServerSelection { message, .. } => {
            format!(
                "no suitable server (is the deployment reachable, and is there a primary?): {message}"
            )
        }
        ErrorKind::Authentication { message, .. } => format!("authentication failed: {message}"),
        other => other.to_string(),
    }
}

/// Whether a driver error means the write it answers may not be durable, or did not
/// happen because the primary went away: such a write is never counted as done.
pub fn is_write_concern_error(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteConcernError(_)) => true,
        ErrorKind::InsertMany(m) => m.write_concern_error.is_some(),
        ErrorKind::BulkWrite(b) => !b.write_concern_errors.is_empty(),
        _ => false,
    }
}

/// Whether retrying the same (idempotent, compare-and-swap) write can help: the
/// connection dropped, the primary stepped down or is shutting down, an election is
/// under way (the labels and codes of the retryable writes specification).
pub fn is_transient(e: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    const RETRYABLE_CODES: &[i32] = &[
        6,     // HostUnreachable
        7,     // HostNotFound
        89,    // NetworkTimeout
        91,    // ShutdownInProgress
        189,   // PrimarySteppedDown
        262,   // ExceededTimeLimit
        9001,  // SocketException
        10107, // NotWritablePrimary
        11600, // InterruptedAtShutdown
        11602, // InterruptedDueToReplStateChange
        13435, // NotPrimaryNoSecondaryOk
        13436, // NotPrimaryOrSecondary
    ];
    if e.contains_label("RetryableWriteError") {
        return true;
    }
    match e.kind.as_ref() {
        ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } => true,
        ErrorKind::ServerSelection { .. } => true,
        ErrorKind::Command(c) => RETRYABLE_CODES.contains(&c.code),
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => {
            RETRYABLE_CODES.contains(&w.code)
        }
        _ => false,
    }
}

/// Retries an idempotent write while the deployment is failing over, as
/// [`Backoff::FAILOVER`](keyshift_core::retry::Backoff::FAILOVER) allows (a minute in
/// all). An election takes seconds (10 s by default on a replica set, longer on Atlas
/// maintenance), longer than the driver's own single retry covers.
pub async fn retry_transient<T, F, Fut>(what: &str, f: F) -> Result<T, mongodb::error::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, mongodb::error::Error>>,
{
    crate::retry::retry(
        what,
        keyshift_core::retry::Backoff::FAILOVER,
        is_transient,
        f,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_concern_error_in_a_reply_is_found() {
        let reply = doc! {"ok": 1, "n": 3, "writeConcernError": {"code": 64, "codeName": "WriteConcernTimeout", "errmsg": "waiting for replication timed out"}};
        assert_eq!(
            write_concern_error(&reply).as_deref(),
            Some("WriteConcernTimeout (64): waiting for replication timed out")
        );
        assert_eq!(write_concern_error(&doc! {"ok": 1, "n": 3}), None);
    }

    #[test]
    fn the_concerns_are_majority_journaled_and_primary() {
        assert_eq!(write_concern_doc(), doc! {"w": "majority", "j": true});
        assert_eq!(write_concern().w, Some(Acknowledgment::Majority));
        assert_eq!(write_concern().journal, Some(true));
    }

    #[tokio::test]
    async fn a_bad_uri_is_refused_without_quoting_it() {
        let uri = "mongodb://user:s3cret@h/?compressors=bogus&w=zz&tls=maybe";
        let e = connect(uri, "keyVault.uri").await.unwrap_err();
        assert!(e.0.starts_with("keyVault.uri is not a usable"), "{e}");
        assert!(!e.0.contains("s3cret"), "{e}");
    }
}
