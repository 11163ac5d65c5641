//! Rotating one collection: read in `_id` order, in batches; re-encrypt every value
//! under an old key; one bulk `update` (ordered: false) of compare-and-swap statements
//! per batch; re-read and retry the documents that changed meanwhile.
//!
//! Three stages overlap, so memory holds at most a few batches: a reader task fetches
//! the next batch while the current one is re-encrypted (CPU, [`Reencryptor`]), and the
//! previous batch's write is in flight meanwhile.

use std::collections::HashSet;
use std::sync::Arc;

use bson::{Bson, Document, RawDocumentBuf, doc};
use futures_util::TryStreamExt;
use keyshift_core::rotate::ciphertext::parse_header;
use keyshift_core::rotate::decide::{Action, decide};
use mongodb::{Collection, Database};

use super::reencrypt::{Reencryptor, Task};
use super::scan::{Cas, dotted, encrypted_values};
use super::{CollectionReport, RotateError};

/// Rounds of re-read and retry for documents that changed meanwhile.
const MISS_ROUNDS: u32 = 5;
/// Largest update command sent (bytes, estimated), well under MongoDB's 16 MiB.
const MAX_COMMAND_BYTES: usize = 8 << 20;
/// Errors kept per collection for the report.
const MAX_ERRORS: usize = 20;

/// What one collection's scan needs; cheap to clone into the writer task.
#[derive(Clone)]
pub struct Scanner {
    /// The collection's database.
    pub db: Database,
    /// The collection.
    pub coll: Collection<RawDocumentBuf>,
    /// Its name in the database.
    pub name: String,
    /// `db.coll`.
    pub ns: String,
    /// The old keys.
    pub old: Arc<HashSet<[u8; 16]>>,
    /// Re-encrypts values.
    pub reenc: Arc<Reencryptor>,
    /// Change nothing.
    pub dry_run: bool,
}

/// A batch prepared for writing.
struct Prepared {
    /// One compare-and-swap per changed document, with its number of values.
    cas: Vec<(Cas, u64)>,
}

/// Counts a stage adds to the report.
#[derive(Default)]
struct Tally {
    already_replaced: u64,
    reencrypted: u64,
    changed_meanwhile: u64,
    errors: Vec<String>,
    failed: u64,
}

impl Tally {
    fn error(&mut self, e: String) {
        self.failed += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(e);
        }
    }

    fn merge(&mut self, o: Tally) {
        self.already_replaced += o.already_replaced;
        self.reencrypted += o.reencrypted;
        self.changed_meanwhile += o.changed_meanwhile;
        self.failed += o.failed;
        for e in o.errors {
            if self.errors.len() < MAX_ERRORS {
                self.errors.push(e);
            }
        }
    }
}

fn id_text(id: &Bson) -> String {
    id.clone().into_relaxed_extjson().to_string()
}

impl Scanner {
    /// Decides every value of `docs`, re-encrypts those under old keys, and builds one
    /// compare-and-swap per changed document.
    async fn prepare(
        &self,
        docs: &[RawDocumentBuf],
        tally: &mut Tally,
    ) -> Result<Prepared, RotateError> {
        let mut tasks = Vec::new();
        let mut owners = Vec::new(); // (doc index, path) per task
        for (di, doc) in docs.iter().enumerate() {
            let found = encrypted_values(doc).map_err(|e| {
                RotateError::Failed(format!("{}: malformed document: {e}", self.ns))
            })?;
            for f in found {
                let header = match parse_header(&f.bytes) {
                    Ok(h) => h,
                    Err(e) => {
                        tally.error(format!("{}: {}: {e}", self.ns, dotted(&f.path)));
                        continue;
                    }
                };
                match decide(&header, |id| self.old.contains(id)) {
                    Action::Reencrypt {
                        old,
                        new,
                        algorithm,
                    } => {
                        tasks.push(Task {
                            ciphertext: f.bytes,
                            old,
                            new,
                            algorithm,
                        });
                        owners.push((di, f.path));
                    }
                    Action::AlreadyReplaced => tally.already_replaced += 1,
                    Action::NotInScope => {}
                    Action::RefuseQueryable(t) => {
                        return Err(RotateError::Refused(format!(
                            "{} holds a Queryable Encryption value (blob type {t}) at {}: \
                             rotate re-encrypts only CSFLE values. Leave this collection out \
                             of [rotate] collections (its keys can still be moved with \
                             `keyshift rewrap`)",
                            self.ns,
                            dotted(&f.path)
                        )));
                    }
                    Action::Malformed => tally.error(format!(
                        "{}: {}: not a stored CSFLE ciphertext (left alone)",
                        self.ns,
                        dotted(&f.path)
                    )),
                }
            }
        }
        let results = self.reenc.run_batch(Arc::new(tasks)).await;
        let mut per_doc: Vec<Option<(Cas, u64)>> = (0..docs.len()).map(|_| None).collect();
        for ((di, path), result) in owners.into_iter().zip(results) {
            let new = match result {
                Ok(c) => c,
                Err(e) => {
                    tally.error(format!("{}: {}: {e}", self.ns, dotted(&path)));
                    continue;
                }
            };
            if per_doc[di].is_none() {
                let cas = Cas::new(&docs[di])
                    .map_err(|e| RotateError::Failed(format!("{}: {e}", self.ns)))?;
                per_doc[di] = Some((cas, 0));
            }
            if let Some((cas, n)) = per_doc[di].as_mut() {
                match cas.add(&path, new) {
                    Ok(()) => *n += 1,
                    Err(e) => tally.error(format!(
                        "{}: document {} at {}: {e}",
                        self.ns,
                        id_text(cas.id()),
                        dotted(&path)
                    )),
                }
            }
        }
        Ok(Prepared {
            cas: per_doc
                .into_iter()
                .flatten()
                .filter(|(c, _)| !c.is_empty())
                .collect(),
        })
    }

    /// Sends one update command; returns the indexes of statements that failed with a
    /// write error (with the error) and the number matched.
    async fn send(&self, stmts: &[Document]) -> Result<(u64, Vec<(usize, String)>), RotateError> {
        let cmd = doc! {
            "update": &self.name,
            "updates": stmts.to_vec(),
            "ordered": false,
            "writeConcern": crate::deployment::write_concern_doc(),
        };
        let reply = crate::deployment::retry_transient("a value update", || async {
            let reply = self
                .db
                .run_command(cmd.clone())
                .selection_criteria(crate::deployment::primary())
                .await;
            if reply.is_ok() {
                crate::failpoint::hit("rotate.batch-written");
            }
            reply
        })
        .await
        .map_err(|e| {
            RotateError::Failed(format!(
                "updating {}: {}",
                self.ns,
                crate::deployment::describe(&e)
            ))
        })?;
        // The values were written on the primary but are not known to be durable: none
        // of them is counted, the run stops, and the rerun (which skips values already
        // under a replacement) converges.
        if let Some(wce) = crate::deployment::write_concern_error(&reply) {
            return Err(RotateError::Failed(format!(
                "updating {}: the deployment applied a batch of values but did not \
                 acknowledge it as durable (writeConcern majority): {wce}. Check the \
                 replica set's health, then rerun: values that became durable are skipped",
                self.ns
            )));
        }
        let n = match reply.get("n") {
            Some(Bson::Int32(n)) => *n as u64,
            Some(Bson::Int64(n)) => *n as u64,
            _ => 0,
        };
        let errors = reply
            .get_array("writeErrors")
            .map(|list| {
                list.iter()
                    .filter_map(Bson::as_document)
                    .map(|e| {
                        let index = e
                            .get("index")
                            .and_then(Bson::as_i32)
                            .map_or(usize::MAX, |i| i as usize);
                        let msg = e.get_str("errmsg").unwrap_or("write error").to_string();
                        (index, msg)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok((n, errors))
    }

    /// Writes prepared statements; documents that changed meanwhile are re-read,
    /// prepared again and retried.
    async fn write(&self, mut prepared: Prepared) -> Result<Tally, RotateError> {
        let mut tally = Tally::default();
        if self.dry_run {
            tally.reencrypted = prepared.cas.iter().map(|(_, n)| n).sum();
            return Ok(tally);
        }
        for round in 0..=MISS_ROUNDS {
            if prepared.cas.is_empty() {
                break;
            }
            let mut missed: Vec<Bson> = Vec::new();
            let mut start = 0;
            while start < prepared.cas.len() {
                let mut end = start;
                let mut size = 0;
                while end < prepared.cas.len() && (end == start || size < MAX_COMMAND_BYTES) {
                    size += prepared.cas[end].0.approx_size();
                    end += 1;
                }
                let chunk = &prepared.cas[start..end];
                let stmts: Vec<Document> = chunk.iter().map(|(c, _)| c.statement()).collect();
                let (n, errors) = self.send(&stmts).await?;
                let failed: HashSet<usize> = errors.iter().map(|(i, _)| *i).collect();
                for (i, msg) in errors {
                    let id = chunk.get(i).map_or("?".into(), |(c, _)| id_text(c.id()));
                    tally.error(format!("{}: document {id}: {msg}", self.ns));
                }
                let expected = (chunk.len() - failed.len()) as u64;
                if n >= expected {
                    tally.reencrypted += chunk
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !failed.contains(i))
                        .map(|(_, (_, k))| k)
                        .sum::<u64>();
                } else {
                    // Some statement matched nothing: find which by reading them back.
                    let ids: Vec<Bson> = chunk
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !failed.contains(i))
                        .map(|(_, (c, _))| c.id().clone())
                        .collect();
                    let now = self.read(ids).await?;
                    for (i, (cas, k)) in chunk.iter().enumerate() {
                        if failed.contains(&i) {
                            continue;
                        }
                        match now.iter().find(|d| d.get("_id") == Some(cas.id())) {
                            Some(d) if cas.landed_in(d) => tally.reencrypted += k,
                            Some(_) => missed.push(cas.id().clone()),
                            None => {} // deleted meanwhile: nothing left to rotate
                        }
                    }
                }
                start = end;
            }
            if missed.is_empty() {
                break;
            }
            tally.changed_meanwhile += missed.len() as u64;
            if round == MISS_ROUNDS {
                for id in &missed {
                    tally.error(format!(
                        "{}: document {} kept changing; rerun rotate",
                        self.ns,
                        id_text(id)
                    ));
                }
                break;
            }
            let docs = self.read_raw(missed).await?;
            prepared = self.prepare(&docs, &mut tally).await?;
        }
        Ok(tally)
    }

    async fn read(&self, ids: Vec<Bson>) -> Result<Vec<Document>, RotateError> {
        self.read_raw(ids)
            .await?
            .iter()
            .map(|d| {
                Document::try_from(d.as_ref())
                    .map_err(|e| RotateError::Failed(format!("{}: {e}", self.ns)))
            })
            .collect()
    }

    async fn read_raw(&self, ids: Vec<Bson>) -> Result<Vec<RawDocumentBuf>, RotateError> {
        let read_err =
            |e: mongodb::error::Error| RotateError::Failed(format!("reading {}: {e}", self.ns));
        self.coll
            .find(doc! {"_id": {"$in": ids}})
            .await
            .map_err(read_err)?
            .try_collect()
            .await
            .map_err(read_err)
    }

    /// Rotates the documents `filter` selects, `batch_size` at a time.
    pub async fn run(
        &self,
        filter: Document,
        batch_size: usize,
        progress: &(dyn Fn(&str, u64) + Sync),
    ) -> Result<CollectionReport, RotateError> {
        let mut report = CollectionReport {
            namespace: self.ns.clone(),
            ..CollectionReport::default()
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<RawDocumentBuf>, String>>(1);
        let coll = self.coll.clone();
        let reader = tokio::spawn(async move {
            let cursor = coll
                .find(filter)
                .sort(doc! {"_id": 1})
                .batch_size(batch_size.min(u32::MAX as usize) as u32)
                .await;
            let mut cursor = match cursor {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string())).await;
                    return;
                }
            };
            let mut batch = Vec::with_capacity(batch_size);
            loop {
                match cursor.try_next().await {
                    Ok(Some(d)) => {
                        batch.push(d);
                        if batch.len() >= batch_size {
                            let full =
                                std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                            if tx.send(Ok(full)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string())).await;
                        return;
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(Ok(batch)).await;
            }
        });
        let mut tally = Tally::default();
        let mut writing: Option<tokio::task::JoinHandle<Result<Tally, RotateError>>> = None;
        let result = async {
            while let Some(batch) = rx.recv().await {
                let batch =
                    batch.map_err(|e| RotateError::Failed(format!("reading {}: {e}", self.ns)))?;
                report.scanned += batch.len() as u64;
                let prepared = self.prepare(&batch, &mut tally).await?;
                drop(batch);
                if let Some(w) = writing.take() {
                    tally.merge(join(w).await?);
                }
                let me = self.clone();
                writing = Some(tokio::spawn(async move { me.write(prepared).await }));
                progress(&self.ns, report.scanned);
            }
            if let Some(w) = writing.take() {
                tally.merge(join(w).await?);
            }
            Ok::<(), RotateError>(())
        }
        .await;
        reader.abort();
        if let Some(w) = writing.take() {
            // Stopped early: let the write in flight finish (it is safe either way).
            let _ = w.await;
        }
        result?;
        report.already_replaced = tally.already_replaced;
        report.reencrypted = tally.reencrypted;
        report.changed_meanwhile = tally.changed_meanwhile;
        report.failed = tally.failed;
        report.errors = tally.errors;
        Ok(report)
    }
}

async fn join(
    h: tokio::task::JoinHandle<Result<Tally, RotateError>>,
) -> Result<Tally, RotateError> {
    h.await
        .map_err(|e| RotateError::Failed(format!("writer task: {e}")))?
}
