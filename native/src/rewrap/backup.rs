//! The rewrap backup: every key a run will touch, written and fsynced before the first
//! write to the key vault, and the source the run then rewraps from.
//!
//! Format: JSON lines, mode 0600. Line 1 is a header (format version, key vault
//! namespace, the target master key, the run id); each further line is one key
//! document in canonical extended JSON, which keeps every BSON type exactly (binary
//! subtypes included). The key documents are what the key vault held: DEKs wrapped by
//! their old master key, never plaintext key material.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use bson::{Bson, Document, RawDocumentBuf};
use serde_json::json;

/// The backup format this build writes and reads.
pub const FORMAT: u32 = 1;

/// What a backup file says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Key vault namespace, `db.coll`.
    pub key_vault: String,
    /// The master key the run moved keys to.
    pub target: Document,
    /// The run that wrote it.
    pub run_id: String,
}

/// Writes a backup; nothing is durable until [`BackupWriter::finish`].
pub struct BackupWriter {
    path: PathBuf,
    out: BufWriter<File>,
    count: u64,
}

/// Why a backup could not be written or read. Every variant names the path: the
/// user's next step is always about that file or directory.
#[derive(Debug)]
pub enum BackupError {
    /// The file system refused an operation on `path`.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The backup directory is not a directory.
    NotADirectory(PathBuf),
    /// The backup directory is writable by every user without the sticky bit.
    WorldWritable {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// No fresh private scratch directory could be made under this one.
    NoPrivateDir(PathBuf),
    /// The operating system's random source failed.
    Random(String),
    /// The file is not a keyshift backup of this format.
    NotABackup(PathBuf),
    /// A line of the file is not a key document (damaged, or edited).
    BadLine {
        /// The file.
        path: PathBuf,
        /// What is wrong with the line.
        why: String,
    },
    /// A key document could not be converted to or from extended JSON.
    Encoding(String),
}

impl std::fmt::Display for BackupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupError::Io { path, source } => write!(f, "backup {}: {source}", path.display()),
            BackupError::NotADirectory(dir) => {
                write!(f, "backup {}: not a directory", dir.display())
            }
            BackupError::WorldWritable { path, mode } => write!(
                f,
                "backup directory {} is writable by every user (mode {mode:o}): another user \
                 could replace a backup. Use a directory only you can write to (chmod 700), \
                 or set [rewrap] backupDir",
                path.display()
            ),
            BackupError::NoPrivateDir(base) => {
                write!(f, "cannot make a private directory in {}", base.display())
            }
            BackupError::Random(e) => write!(f, "random source: {e}"),
            BackupError::NotABackup(path) => {
                write!(f, "backup {}: not a keyshift backup header", path.display())
            }
            BackupError::BadLine { path, why } => write!(f, "backup {}: {why}", path.display()),
            BackupError::Encoding(e) => write!(f, "backup: {e}"),
        }
    }
}

impl std::error::Error for BackupError {}

fn io_err(path: &Path, source: std::io::Error) -> BackupError {
    BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes `dir` (0700) if it is missing, and refuses one any user may write into
/// without the sticky bit: there another user could delete or swap a backup.
pub fn ensure_private_dir(dir: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_err(dir, e))?;
    let meta = std::fs::metadata(dir).map_err(|e| io_err(dir, e))?;
    if !meta.is_dir() {
        return Err(BackupError::NotADirectory(dir.to_path_buf()));
    }
    let mode = meta.permissions().mode();
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Err(BackupError::WorldWritable {
            path: dir.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// A fresh private directory under the system's temporary directory, made atomically
/// (mode 0700, a random name, never an existing path): scratch space another user on
/// the host can neither pre-create nor link.
pub fn private_temp_dir(prefix: &str) -> Result<PathBuf, BackupError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let base = std::env::temp_dir();
    for _ in 0..16 {
        let mut rand = [0u8; 12];
        getrandom::fill(&mut rand).map_err(|e| BackupError::Random(e.to_string()))?;
        let name: String = rand.iter().map(|b| format!("{b:02x}")).collect();
        let dir = base.join(format!("{prefix}-{name}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(&dir, e)),
        }
    }
    Err(BackupError::NoPrivateDir(base))
}

impl BackupWriter {
    /// Creates `dir/keyshift-backup-RUN.jsonl` (never overwrites) and writes the header.
    pub fn create(dir: &Path, header: &Header) -> Result<Self, BackupError> {
        Self::create_named(
            dir,
            &format!("keyshift-backup-{}.jsonl", header.run_id),
            header,
        )
    }

    /// Creates `dir/FILE_NAME` and writes the header. The file is created exclusively
    /// (O_CREAT|O_EXCL): an existing file, or a symbolic link someone left at that path,
    /// makes it fail instead of being written through or overwritten.
    pub fn create_named(dir: &Path, file_name: &str, header: &Header) -> Result<Self, BackupError> {
        ensure_private_dir(dir)?;
        let path = dir.join(file_name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        let mut w = BackupWriter {
            path,
            out: BufWriter::new(file),
            count: 0,
        };
        let head = json!({
            "keyshiftBackup": FORMAT,
            "keyVault": header.key_vault,
            "target": Bson::Document(header.target.clone()).into_canonical_extjson(),
            "runId": header.run_id,
        });
        w.line(&head)?;
        Ok(w)
    }

    fn line(&mut self, value: &serde_json::Value) -> Result<(), BackupError> {
        serde_json::to_writer(&mut self.out, value)
            .map_err(|e| BackupError::Encoding(e.to_string()))?;
        self.out.write_all(b"\n").map_err(|e| io_err(&self.path, e))
    }

    /// Appends one key document.
    pub fn push(&mut self, key: &RawDocumentBuf) -> Result<(), BackupError> {
        let doc = Document::try_from(key.as_ref())
            .map_err(|e| BackupError::Encoding(format!("key document: {e}")))?;
        self.line(&Bson::Document(doc).into_canonical_extjson())?;
        self.count += 1;
        Ok(())
    }

    /// Makes everything pushed so far durable (flush + fsync) and keeps writing.
    pub fn checkpoint(mut self) -> Result<Self, BackupError> {
        self.out.flush().map_err(|e| io_err(&self.path, e))?;
        self.out
            .get_ref()
            .sync_all()
            .map_err(|e| io_err(&self.path, e))?;
        Ok(self)
    }

    /// Flushes and fsyncs the file and its directory; returns the path and key count.
    pub fn finish(self) -> Result<(PathBuf, u64), BackupError> {
        let BackupWriter { path, out, count } = self;
        let file = out
            .into_inner()
            .map_err(|e| io_err(&path, e.into_error()))?;
        file.sync_all().map_err(|e| io_err(&path, e))?;
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_err(dir, e))?;
        }
        Ok((path, count))
    }
}

/// Reads a backup back, a batch at a time (memory bounded by the batch size).
pub struct BackupReader {
    path: PathBuf,
    lines: std::io::Lines<BufReader<File>>,
    /// The file's header.
    pub header: Header,
}

fn parse_doc(path: &Path, line: &str) -> Result<Document, BackupError> {
    let bad_line = |why: String| BackupError::BadLine {
        path: path.to_path_buf(),
        why,
    };
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| bad_line(e.to_string()))?;
    match Bson::try_from(value) {
        Ok(Bson::Document(d)) => Ok(d),
        _ => Err(bad_line("a line is not a key document".into())),
    }
}

impl BackupReader {
    /// Opens a backup and checks its header.
    pub fn open(path: &Path) -> Result<Self, BackupError> {
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        let mut lines = BufReader::new(file).lines();
        let first = lines
            .next()
            .ok_or_else(|| BackupError::BadLine {
                path: path.to_path_buf(),
                why: "empty file".into(),
            })?
            .map_err(|e| io_err(path, e))?;
        let head = parse_doc(path, &first)?;
        let bad = || BackupError::NotABackup(path.to_path_buf());
        match head.get("keyshiftBackup") {
            Some(Bson::Int32(v)) if *v as u32 == FORMAT => {}
            Some(Bson::Int64(v)) if *v as u32 == FORMAT => {}
            _ => return Err(bad()),
        }
        let header = Header {
            key_vault: head.get_str("keyVault").map_err(|_| bad())?.to_string(),
            target: head.get_document("target").map_err(|_| bad())?.clone(),
            run_id: head.get_str("runId").map_err(|_| bad())?.to_string(),
        };
        Ok(BackupReader {
            path: path.to_path_buf(),
            lines,
            header,
        })
    }

    /// Up to `n` key documents; an empty batch means the end.
    pub fn next_batch(&mut self, n: usize) -> Result<Vec<RawDocumentBuf>, BackupError> {
        let mut batch = Vec::with_capacity(n);
        while batch.len() < n {
            let Some(line) = self.lines.next() else { break };
            let line = line.map_err(|e| io_err(&self.path, e))?;
            if line.trim().is_empty() {
                continue;
            }
            let doc = parse_doc(&self.path, &line)?;
            batch.push(
                RawDocumentBuf::try_from(&doc).map_err(|e| BackupError::Encoding(e.to_string()))?,
            );
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::spec::BinarySubtype;
    use bson::{Binary, DateTime, doc};
    use std::os::unix::fs::PermissionsExt;

    fn key(i: u8) -> Document {
        doc! {
            "_id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![i; 16] },
            "keyMaterial": Binary { subtype: BinarySubtype::Generic, bytes: vec![i; 160] },
            "creationDate": DateTime::from_millis(1_700_000_000_000),
            "status": 0,
            "masterKey": {"provider": "local"},
            "keyAltNames": ["k"],
        }
    }

    #[test]
    fn a_backup_reads_back_exactly_in_batches_and_is_private() {
        let dir = std::env::temp_dir().join(format!("ks-backup-test-{}", std::process::id()));
        let header = Header {
            key_vault: "encryption.__keyVault".into(),
            target: doc! {"provider": "aws", "region": "us-east-1", "key": "arn:aws:kms:us-east-1:111122223333:key/x"},
            run_id: "test-1".into(),
        };
        let mut w = BackupWriter::create(&dir, &header).unwrap();
        for i in 0..5 {
            w.push(&RawDocumentBuf::try_from(&key(i)).unwrap()).unwrap();
        }
        let (path, count) = w.finish().unwrap();
        assert_eq!(count, 5);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Never overwritten.
        assert!(BackupWriter::create(&dir, &header).is_err());

        let mut r = BackupReader::open(&path).unwrap();
        assert_eq!(r.header, header);
        let mut back = Vec::new();
        loop {
            let batch = r.next_batch(2).unwrap();
            if batch.is_empty() {
                break;
            }
            assert!(batch.len() <= 2);
            back.extend(batch);
        }
        let back: Vec<Document> = back
            .iter()
            .map(|d| Document::try_from(d.as_ref()).unwrap())
            .collect();
        assert_eq!(back, (0..5).map(key).collect::<Vec<_>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_pre_created_file_or_link_at_the_path_is_never_written_through() {
        let dir = private_temp_dir("ks-backup-link-test").unwrap();
        let header = Header {
            key_vault: "encryption.__keyVault".into(),
            target: doc! {"provider": "local"},
            run_id: "link".into(),
        };
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("keyshift-backup-link.jsonl")).unwrap();
        assert!(BackupWriter::create(&dir, &header).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        std::fs::write(dir.join("named.jsonl"), "someone else's").unwrap();
        assert!(BackupWriter::create_named(&dir, "named.jsonl", &header).is_err());
        assert_eq!(
            std::fs::read_to_string(dir.join("named.jsonl")).unwrap(),
            "someone else's"
        );
        // A directory anyone may write into (no sticky bit) is refused.
        let open = dir.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = BackupWriter::create(&open, &header).err().unwrap();
        assert!(matches!(e, BackupError::WorldWritable { .. }), "{e}");
        assert!(e.to_string().contains("writable by every user"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn private_temp_dirs_are_fresh_and_0700() {
        let a = private_temp_dir("ks-scratch-test").unwrap();
        let b = private_temp_dir("ks-scratch-test").unwrap();
        assert_ne!(a, b);
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::remove_dir(&a).unwrap();
        std::fs::remove_dir(&b).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_backup_is_refused() {
        let path = std::env::temp_dir().join(format!("ks-not-backup-{}", std::process::id()));
        std::fs::write(&path, "{\"hello\": 1}\n").unwrap();
        let err = BackupReader::open(&path).err().unwrap();
        assert!(matches!(err, BackupError::NotABackup(_)), "{err}");
        assert!(err.to_string().contains("not a keyshift backup"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }
}
