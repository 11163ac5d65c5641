//! The audit trail's writer: appends sealed records ([`keyshift_core::audit`]) to the
//! JSON Lines file, and to the `[audit] collection` when the config names one.
//!
//! Every append takes an exclusive lock on the file (so `rotate --partition` workers
//! on one host interleave whole batches, never lines), reads where the chain ends from
//! the file itself, writes the batch's lines in one `write`, and fsyncs before the
//! lock is released: records are durable before the command goes on. A kill -9 leaves
//! whole records, or at worst one line cut mid-write; the next append removes that cut
//! line and records a `repair` saying so, so the chain stays verifiable.
//!
//! The file is created 0600, never followed through a symbolic link, and refused when
//! another user may write it. A log whose chain is already broken is refused before
//! the command changes anything: appending would bury the break.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use keyshift_core::audit::{self, Head, record};
use serde_json::Value;

use crate::settings::Settings;

/// Why the audit trail could not be written. The command stops: nothing unrecorded is
/// changed after it.
#[derive(Debug)]
pub struct AuditError(pub String);

impl std::fmt::Display for AuditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AuditError {}

fn io(path: &Path, what: &str, e: impl std::fmt::Display) -> AuditError {
    AuditError(format!("audit log {}: {what}: {e}", path.display()))
}

/// An open audit trail for one run of one command.
pub struct Audit {
    path: PathBuf,
    run: String,
    collection: Option<mongodb::Collection<bson::Document>>,
    head: Mutex<Head>,
}

/// The audit file the settings name: `[audit] file` (relative to the config file's
/// directory), else `audit.jsonl` in the backup directory.
pub fn path_of(settings: &Settings) -> PathBuf {
    path_for(&settings.config, &settings.base)
}

/// [`path_of`] from the configuration alone (no secret resolved): for `keyshift audit`.
pub fn path_for(config: &keyshift_core::config::Config, base: &Path) -> PathBuf {
    match config.audit.as_ref().and_then(|a| a.file.as_deref()) {
        Some(file) => base.join(file),
        None => base
            .join(config.rewrap_or_default().backup_dir())
            .join(keyshift_core::config::model::DEFAULT_AUDIT_FILE),
    }
}

/// A masterKey document as the records hold it (relaxed extended JSON).
pub fn master_key_json(mk: &bson::Document) -> Value {
    bson::Bson::Document(mk.clone()).into_relaxed_extjson()
}

/// Now, RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    bson::DateTime::now()
        .try_to_rfc3339_string()
        .unwrap_or_else(|_| "unknown".into())
}

/// The OS user and host running this process: the name of its user id (from
/// /etc/passwd; `USER` only when the id has no entry there), and `SUDO_USER` when run
/// through sudo.
pub fn who() -> record::Who {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok().map(|m| m.uid());
    let named = uid.and_then(|uid| {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id: u32 = f.nth(1)?.parse().ok()?;
            (id == uid && !name.is_empty()).then(|| name.to_string())
        })
    });
    let env = |v: &str| std::env::var(v).ok().filter(|s| !s.is_empty());
    let user = named
        .or_else(|| env("USER"))
        .or_else(|| env("LOGNAME"))
        .or_else(|| uid.map(|u| format!("uid:{u}")))
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| env("HOSTNAME"))
        .unwrap_or_else(|| "unknown".into());
    record::Who {
        user,
        uid,
        sudo_user: env("SUDO_USER"),
        host,
        pid: std::process::id(),
    }
}

impl Audit {
    /// Opens the settings' audit trail for `command` and appends its `start` record.
    /// Refuses (before the command changes anything) a log it cannot write or whose
    /// chain is broken.
    pub async fn start(
        settings: &Settings,
        client: &mongodb::Client,
        command: &str,
        run: &str,
        target: Option<&bson::Document>,
        detail: Option<Value>,
    ) -> Result<Audit, AuditError> {
        let path = path_of(settings);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::rewrap::backup::ensure_private_dir(dir)
                .map_err(|e| AuditError(e.to_string()))?;
        }
        check_existing(&path)?;
        let collection = settings
            .config
            .audit
            .as_ref()
            .and_then(|a| a.collection.as_deref())
            .and_then(|ns| ns.split_once('.'))
            .map(|(db, coll)| {
                client
                    .database(db)
                    .collection_with_options::<bson::Document>(
                        coll,
                        mongodb::options::CollectionOptions::builder()
                            .write_concern(crate::deployment::write_concern())
                            .build(),
                    )
            });
        let audit = Audit {
            path,
            run: run.to_string(),
            collection,
            head: Mutex::new(Head::genesis()),
        };
        let target = target.map(master_key_json);
        let who = who();
        let config_sha256 = record::config_hash(&settings.config);
        let config_path = settings.config_path.display().to_string();
        let start = record::start(
            &now(),
            run,
            &record::Start {
                command,
                who: &who,
                keyshift: env!("CARGO_PKG_VERSION"),
                config_path: &config_path,
                config_sha256: &config_sha256,
                key_vault: &settings.key_vault_ns(),
                target: target.as_ref(),
                detail,
            },
        );
        audit.append(vec![start]).await?;
        Ok(audit)
    }

    /// The run id the records carry.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The hash of the last record this run appended: keep it to anchor the chain
    /// (`keyshift audit verify FILE --head HASH`).
    pub fn head(&self) -> String {
        self.head.lock().map(|h| h.hash.clone()).unwrap_or_default()
    }

    /// Appends one `key` record per entry.
    pub async fn keys(&self, keys: &[record::KeyRecord]) -> Result<(), AuditError> {
        if keys.is_empty() {
            return Ok(());
        }
        let at = now();
        let records = keys
            .iter()
            .map(|k| record::key(&at, &self.run, k))
            .collect();
        self.append(records).await
    }

    /// Appends the `end` record.
    pub async fn end(
        &self,
        ok: bool,
        counts: Value,
        error: Option<&str>,
    ) -> Result<(), AuditError> {
        self.append(vec![record::end(&now(), &self.run, ok, counts, error)])
            .await
    }

    /// Seals and appends `records` (file first, fsynced; then the collection).
    async fn append(&self, records: Vec<Value>) -> Result<(), AuditError> {
        let (lines, head) = append_to_file(&self.path, &self.run, records)?;
        if let Ok(mut mine) = self.head.lock() {
            *mine = head;
        }
        crate::failpoint::hit("audit.appended");
        if let Some(collection) = &self.collection {
            let docs: Vec<bson::Document> = lines.iter().map(|l| document_of(l)).collect();
            collection.insert_many(docs).await.map_err(|e| {
                AuditError(format!(
                    "audit collection {}: {} (the file {} holds every record)",
                    collection.namespace(),
                    crate::deployment::describe(&e),
                    self.path.display()
                ))
            })?;
        }
        Ok(())
    }
}

/// A record as the collection keeps it: `_id` the line's hash, `seq`, the exact
/// `line` (what the chain hashes, so an export verifies) and the `record` to query.
fn document_of(line: &str) -> bson::Document {
    let value: Value = serde_json::from_str(line).unwrap_or(Value::Null);
    let mut doc = bson::doc! {
        "_id": audit::hash(line),
        "line": line,
    };
    if let Some(seq) = value.get("seq").and_then(Value::as_i64) {
        doc.insert("seq", seq);
    }
    if let Ok(bson::Bson::Document(r)) = bson::Bson::try_from(value) {
        doc.insert("record", r);
    }
    doc
}

/// Refuses a path that is a symbolic link or not a regular file, a file other users
/// may write, and a log whose chain is broken (with where, from [`audit::verify`]).
fn check_existing(path: &Path) -> Result<(), AuditError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(path, "reading", e)),
    };
    if !meta.file_type().is_file() {
        return Err(AuditError(format!(
            "audit log {} is not a regular file (a symbolic link or a directory): point [audit] file at a file of its own",
            path.display()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(AuditError(format!(
            "audit log {} may be written by other users (mode {mode:o}): run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| io(path, "reading", e))?;
    let verdict = audit::verify(&text);
    if let Some(b) = verdict.broken {
        return Err(AuditError(format!(
            "audit log {} does not verify at line {}: {}. Keep it as evidence, move it aside \
             (or set [audit] file) and run again; nothing was changed",
            path.display(),
            b.line,
            b.why
        )));
    }
    Ok(())
}

/// Under an exclusive lock: finds where the chain ends (removing a line a crash cut,
/// with a `repair` record), seals `records` after it, writes them in one write and
/// fsyncs. Returns the lines written and the head after them.
fn append_to_file(
    path: &Path,
    run: &str,
    records: Vec<Value>,
) -> Result<(Vec<String>, Head), AuditError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io(path, "opening", e))?;
    file.lock().map_err(|e| io(path, "locking", e))?;
    let (mut head, cut) = tail(&mut file).map_err(|e| io(path, "reading its end", e))?;
    let mut buffer = String::new();
    let mut lines = Vec::with_capacity(records.len() + 1);
    let mut repair = None;
    match cut {
        Tail::Clean => {}
        Tail::MissingNewline => buffer.push('\n'),
        Tail::Torn { at, bytes, sha256 } => {
            file.set_len(at)
                .map_err(|e| io(path, "removing a cut line", e))?;
            repair = Some(record::repair(&now(), run, bytes, &sha256));
        }
    }
    for r in repair.into_iter().chain(records) {
        let (line, next) = audit::seal(&head, r);
        buffer.push_str(&line);
        buffer.push('\n');
        lines.push(line);
        head = next;
    }
    write_records(&mut file, buffer.as_bytes()).map_err(|e| io(path, "writing", e))?;
    file.sync_data().map_err(|e| io(path, "syncing", e))?;
    let _ = file.unlock();
    Ok((lines, head))
}

/// One write of every line (a crash test can cut it in the middle instead).
fn write_records(file: &mut std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    #[cfg(debug_assertions)]
    if std::env::var("KEYSHIFT_FAILPOINT").is_ok_and(|f| f.contains("audit.torn")) {
        // Cut in the middle of the line holding the buffer's midpoint.
        let mid = bytes.len() / 2;
        let start = bytes[..mid]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let end = bytes[start..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |i| start + i);
        let cut = start + (end - start) / 2;
        file.write_all(&bytes[..cut])?;
        file.sync_data()?;
        crate::failpoint::hit("audit.torn");
        return file.write_all(&bytes[cut..]);
    }
    file.write_all(bytes)
}

/// How a log ends.
enum Tail {
    /// In a newline (or empty).
    Clean,
    /// In a whole record without its newline.
    MissingNewline,
    /// In a line a crash cut: it starts at byte `at`.
    Torn { at: u64, bytes: u64, sha256: String },
}

/// Reads the log's last line (backwards, in growing windows) and says where the chain
/// continues.
fn tail(file: &mut std::fs::File) -> std::io::Result<(Head, Tail)> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok((Head::genesis(), Tail::Clean));
    }
    let mut window = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::with_capacity((len - start) as usize);
        file.read_to_end(&mut bytes)?;
        let ends_clean = bytes.last() == Some(&b'\n');
        let body = if ends_clean {
            &bytes[..bytes.len() - 1]
        } else {
            &bytes[..]
        };
        let last_newline = body.iter().rposition(|b| *b == b'\n');
        if last_newline.is_none() && start > 0 {
            window *= 4;
            continue;
        }
        let line_start = last_newline.map_or(0, |i| i + 1);
        let last = String::from_utf8_lossy(&body[line_start..]).into_owned();
        let line_at = start + line_start as u64;
        if ends_clean {
            let head = Head::of_tail(&last).ok_or_else(|| {
                std::io::Error::other(
                    "its last line is not an audit record (run keyshift audit verify on it)",
                )
            })?;
            return Ok((head, Tail::Clean));
        }
        if let Some(head) = Head::of_tail(&last) {
            return Ok((head, Tail::MissingNewline));
        }
        // A cut line: the chain continues from the line before it.
        let cut = Tail::Torn {
            at: line_at,
            bytes: len - line_at,
            sha256: audit::hash(&last),
        };
        let before = &body[..line_start.saturating_sub(1)];
        let prev_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        if prev_start == 0 && start > 0 && !before.is_empty() {
            window *= 4;
            continue;
        }
        let head = if before.is_empty() {
            Head::genesis()
        } else {
            Head::of_tail(&String::from_utf8_lossy(&before[prev_start..])).ok_or_else(|| {
                std::io::Error::other("the line before its last is not an audit record")
            })?
        };
        return Ok((head, cut));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temp() -> PathBuf {
        crate::rewrap::backup::private_temp_dir("keyshift-audit-test")
            .unwrap()
            .join("audit.jsonl")
    }

    #[test]
    fn appends_continue_one_chain_across_opens_and_the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let path = temp();
        append_to_file(&path, "r1", vec![json!({"type": "start"})]).unwrap();
        append_to_file(
            &path,
            "r1",
            vec![json!({"type": "key"}), json!({"type": "end"})],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let v = audit::verify(&text);
        assert!(v.ok() && !v.torn_tail, "{v:?}");
        assert_eq!(v.records, 3);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_line_cut_by_a_crash_is_removed_and_the_repair_recorded() {
        let path = temp();
        append_to_file(
            &path,
            "r1",
            vec![json!({"type": "start"}), json!({"type": "key"})],
        )
        .unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        let whole = text.clone();
        text.push_str("{\"type\":\"key\",\"id\":\"half");
        std::fs::write(&path, &text).unwrap();
        append_to_file(&path, "r2", vec![json!({"type": "end"})]).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert!(after.starts_with(&whole));
        let v = audit::verify(&after);
        assert!(v.ok() && !v.torn_tail, "{v:?}");
        assert_eq!(v.records, 4);
        let repair: Value = serde_json::from_str(after.lines().nth(2).unwrap()).unwrap();
        assert_eq!(repair["type"], "repair");
        assert_eq!(repair["cutBytes"], 24);
    }

    #[test]
    fn a_whole_record_missing_its_newline_is_kept() {
        let path = temp();
        append_to_file(&path, "r1", vec![json!({"type": "start"})]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.trim_end()).unwrap();
        append_to_file(&path, "r1", vec![json!({"type": "end"})]).unwrap();
        let v = audit::verify(&std::fs::read_to_string(&path).unwrap());
        assert!(v.ok());
        assert_eq!(v.records, 2);
    }

    #[test]
    fn long_records_beyond_the_first_window_are_found() {
        let path = temp();
        let big = "x".repeat(200_000);
        append_to_file(
            &path,
            "r1",
            vec![json!({"why": big.clone()}), json!({"why": big})],
        )
        .unwrap();
        append_to_file(&path, "r1", vec![json!({"type": "end"})]).unwrap();
        assert_eq!(
            audit::verify(&std::fs::read_to_string(&path).unwrap()).records,
            3
        );
    }

    #[test]
    fn a_broken_log_or_a_link_is_refused_before_anything_is_appended() {
        let path = temp();
        append_to_file(
            &path,
            "r1",
            vec![json!({"a": 1}), json!({"b": 2}), json!({"c": 3})],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"a\":1", "\"a\":9");
        std::fs::write(&path, text).unwrap();
        let e = check_existing(&path).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        let link = path.with_file_name("link.jsonl");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(
            check_existing(&link)
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
    }
}
