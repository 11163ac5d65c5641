//! Why a step of rotate or retire failed, by layer. Everything here stops the run
//! (`RotateError::Failed` carries its words to the CLI); nothing is classified by its
//! text. Per-value failures (one field that cannot be re-encrypted) are not faults:
//! they are counted and reported, and the run goes on.

use crate::rewrap::backup::BackupError;

/// A failed step.
#[derive(Debug)]
pub enum Fault {
    /// A command to the deployment failed (what was being done, the driver's error).
    Db {
        /// The command or step, for people.
        what: String,
        /// The driver's error.
        error: Box<mongodb::error::Error>,
    },
    /// A write failed or was not acknowledged as durable (writeConcernError): what
    /// happened and what to do.
    Write(String),
    /// libmongocrypt or a KMS failed (the step, and their words).
    Crypt(String),
    /// A backup could not be written or read.
    Backup(BackupError),
    /// A document, value or name is not what rotate can work with.
    Malformed(String),
}

impl Fault {
    /// A failed database command.
    pub fn db(what: impl Into<String>, error: mongodb::error::Error) -> Self {
        Fault::Db {
            what: what.into(),
            error: Box::new(error),
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Db { what, error } => {
                write!(f, "{what}: {}", crate::deployment::describe(error))
            }
            Fault::Write(why) | Fault::Crypt(why) | Fault::Malformed(why) => f.write_str(why),
            Fault::Backup(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Fault {}

/// A value that is not what rotate can work with (BSON that does not convert, ...).
pub fn malformed(e: impl std::fmt::Display) -> Fault {
    Fault::Malformed(e.to_string())
}

impl From<BackupError> for Fault {
    fn from(e: BackupError) -> Self {
        Fault::Backup(e)
    }
}
