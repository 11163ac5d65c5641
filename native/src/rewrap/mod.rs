//! Rewrap: move every selected DEK under the target master key, keeping DESIGN.md's
//! promises.
//!
//! 1. Select (the filter, in `_id` order) and skip keys already under the target
//!    ([`target::is_under`]), so a rerun after any interruption converges.
//! 2. Back up every key it will touch, fsynced, mode 0600 ([`backup`]), before any
//!    write. The rest of the run reads its keys from that backup, so memory is bounded
//!    by the batch size and nothing unbacked is ever written.
//! 3. Per batch: one libmongocrypt rewrap context (old master key unwraps, target
//!    wraps; KMS requests concurrent), then a proof per key ([`prove`]), then a
//!    compare-and-swap write per proven key: `_id` and the old `keyMaterial` must still
//!    match, else the key changed meanwhile and is left alone and reported.
//! 4. A key document libmongocrypt refuses (a field it does not know, a malformed
//!    `masterKey`, a `keyMaterial` of the wrong type or one it cannot unwrap) fails the
//!    whole batch's context, and libmongocrypt's error does not name the key. So a batch
//!    refused by libmongocrypt itself (not by a KMS or the network) is bisected
//!    ([`rewrap_isolating`], decided by [`Isolation`]): halves that libmongocrypt accepts are rewrapped, proven and
//!    written like any batch, and each key refused on its own is reported by `_id` with
//!    libmongocrypt's reason ([`KeyOutcome::Refused`]), never written. A refusal is
//!    decided by the document, so it is not retried; a refused key fails at most
//!    log2(batch) small contexts, most of them before any KMS request. When every key
//!    of a batch is refused, the cause is hardly the documents (a wrong local master
//!    key fails every unwrap alike): the run stops, as before, with the commonest reason.
//!
//! `dry_run` does all of it but the backup file and the writes.

pub mod audit;
pub mod backup;
pub mod cas;
pub mod prove;
pub mod reencrypt;
pub mod sources;
pub mod target;

use std::collections::HashMap;
use std::path::PathBuf;

use bson::{Binary, Bson, Document, RawDocumentBuf, doc};
use futures_util::{StreamExt, TryStreamExt, stream};
use mongocrypt::Crypt;

use crate::crypt;
use crate::ctx_runner::{self, Keys};
use crate::key_id;
use crate::kms_io::KmsIo;
use crate::session::Session;
use keyshift_core::isolate::Isolation;
use keyshift_core::kms_error::KmsRefusal;
use keyshift_core::retry::Backoff;

/// Everything a rewrap run needs, resolved (secrets read, paths checked).
pub struct Job {
    /// The key vault, providers, target, selection, KMS transport and backups.
    pub session: Session,
    /// `[rewrap]` as configured (kmipReplaceKeyIds: keys on the target's KMIP server
    /// that still move).
    pub rewrap: keyshift_core::config::Rewrap,
    /// Do everything but write.
    pub dry_run: bool,
    /// AWS `ReEncrypt` to the target, for keys already under an AWS key of the same
    /// provider and region (see [`reencrypt`]); `None`: every key through libmongocrypt.
    pub reencrypt: Option<std::sync::Arc<crate::aws::ReEncrypter>>,
    /// The audit trail each batch's outcomes are appended to before the next batch
    /// (`None` in a dry run).
    pub audit: Option<crate::audit::Audit>,
}

/// Why one key was not moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOutcome {
    /// Someone changed the key between backup and write: left alone.
    ChangedMeanwhile,
    /// The new wrapping could not be proven: not written.
    NotProven(String),
    /// libmongocrypt refused the key document itself (its reason): not rewrapped, not
    /// written. Fix the document (`keyshift inspect` flags what it can see) and rerun.
    Refused(String),
}

/// What a run did. Key ids are UUIDs (not secret).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Keys matching the filter.
    pub selected: u64,
    /// Of those, already under the target (skipped).
    pub already_under_target: u64,
    /// Keys rewrapped, proven and written (or, in a dry run, that would be).
    pub rewrapped: u64,
    /// Keys whose new wrapping came from AWS KMS `ReEncrypt`.
    pub reencrypted: u64,
    /// Of those, written without a proof (`reEncryptProofOneIn` > 1).
    pub reencrypted_unproven: u64,
    /// Keys not moved, with why.
    pub not_moved: Vec<(String, KeyOutcome)>,
    /// The backup written before the first write (none in a dry run or with no work).
    pub backup: Option<PathBuf>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// Why a run stopped. Keys written before it stopped are proven and backed up.
#[derive(Debug)]
pub struct RewrapError {
    /// What stopped the run, and what to do (never a secret).
    pub message: String,
    /// When the stop is keys the source cannot unwrap: every such key, named.
    pub unreadable: Option<sources::Unreadable>,
    /// When a KMS refused for good: which refusal (the run stops, never retries).
    pub refusal: Option<KmsRefusal>,
}

impl RewrapError {
    /// A stop described by `message`.
    pub fn new(message: impl std::fmt::Display) -> Self {
        RewrapError {
            message: message.to_string(),
            unreadable: None,
            refusal: None,
        }
    }

    /// A stop because a KMS refused for good: the message ends with what to do.
    fn refused(what: &str, e: impl std::fmt::Display, refusal: KmsRefusal) -> Self {
        RewrapError {
            message: format!("{what}: {e}. {}", refusal.hint()),
            unreadable: None,
            refusal: Some(refusal),
        }
    }
}

impl std::fmt::Display for RewrapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RewrapError {}

fn fail(what: &str, e: impl std::fmt::Display) -> RewrapError {
    RewrapError::new(format!("{what}: {e}"))
}

fn db_fail(what: &str, e: mongodb::error::Error) -> RewrapError {
    RewrapError::new(format!("{what}: {}", crate::deployment::describe(&e)))
}

/// Progress events, for bars and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Selection and backup: keys seen so far.
    Scanned(u64),
    /// Keys to move, known once the backup is complete.
    ToMove(u64),
    /// Keys finished (moved or not) so far.
    Done(u64),
}

/// A key document's `masterKey`, when it has one that is a document.
pub fn master_key_of(doc: &RawDocumentBuf) -> Option<Document> {
    match doc.get("masterKey") {
        Ok(Some(bson::RawBsonRef::Document(d))) => Document::try_from(d).ok(),
        _ => None,
    }
}

/// Runs a rewrap job to the end (or to its first fatal error).
pub async fn run(job: &Job, progress: &dyn Fn(Progress)) -> Result<Report, RewrapError> {
    let mut report = Report {
        dry_run: job.dry_run,
        ..Report::default()
    };
    let target_providers = job
        .session
        .kms_providers
        .only_provider_of(&job.session.target)
        .map_err(RewrapError::new)?;

    // 1 + 2: select, skip what is done, back up the rest. In a dry run the "backup"
    // lives in a temporary file that is removed at the end.
    let backup_dir = if job.dry_run {
        backup::private_temp_dir("keyshift-dry-run").map_err(RewrapError::new)?
    } else {
        job.session.backup_dir.clone()
    };
    let header = backup::Header {
        key_vault: job.session.key_vault_ns.clone(),
        target: job.session.target.clone(),
        run_id: job.session.run_id.clone(),
    };
    let mut writer =
        backup::BackupWriter::create(&backup_dir, &header).map_err(RewrapError::new)?;
    // The server selects (core's query): keys already under the target are never read
    // whole, so a rerun after a finished move reads no key material.
    let (to_read, already_under) =
        target::selection(&job.session.target, &job.rewrap, &job.session.filter)
            .map_err(RewrapError::new)?;
    // With an audit trail each such key is read (id and masterKey) for its record, and
    // that read counts them; without one the server only counts.
    report.already_under_target = match &job.audit {
        Some(audit) => audit::already(job, audit, already_under).await?,
        None => job
            .session
            .key_vault
            .count_documents(already_under)
            .await
            .map_err(|e| db_fail("counting the keys already under the target", e))?,
    };
    let mut found_under = Vec::new();
    report.selected = report.already_under_target;
    let mut cursor = job
        .session
        .key_vault
        .find(to_read)
        .sort(doc! {"_id": 1})
        .batch_size(job.session.batch_size.min(u32::MAX as usize) as u32)
        .await
        .map_err(|e| db_fail("reading the key vault", e))?;
    let mut to_move = 0u64;
    while let Some(key) = cursor
        .try_next()
        .await
        .map_err(|e| db_fail("reading the key vault", e))?
    {
        report.selected += 1;
        crate::failpoint::hit("rewrap.scanned");
        match master_key_of(&key) {
            // The exact check behind the query (a key that reached the target after the
            // count, or a masterKey field no provider defines).
            Some(mk) if target::is_under_for(&mk, &job.session.target, &job.rewrap) => {
                report.already_under_target += 1;
                if job.audit.is_some() {
                    found_under.push(audit::already_record(&key));
                }
            }
            _ => {
                writer.push(&key).map_err(RewrapError::new)?;
                to_move += 1;
            }
        }
        if report.selected.is_multiple_of(1000) {
            progress(Progress::Scanned(report.selected));
        }
    }
    progress(Progress::Scanned(report.selected));
    if let Some(audit) = &job.audit {
        audit::record(audit, &found_under).await?;
    }
    let (backup_path, _) = writer.finish().map_err(RewrapError::new)?;
    crate::failpoint::hit("rewrap.backup-synced");
    tracing::info!(selected = report.selected, to_move, backup = %backup_path.display(), "backup synced");
    progress(Progress::ToMove(to_move));

    // Every source master key must unwrap before anything is written.
    let unreadable = if to_move > 0 {
        sources::check(job, &backup_path).await
    } else {
        Ok(None)
    };
    let result = match unreadable {
        Ok(None) => {
            move_keys(
                job,
                &backup_path,
                target_providers.expose(),
                &mut report,
                progress,
            )
            .await
        }
        Ok(Some(u)) => Err(sources::stop(u)),
        Err(e) => Err(e),
    };
    let untouched = matches!(&result, Err(e) if e.unreadable.is_some());
    if job.dry_run {
        let _ = std::fs::remove_dir_all(&backup_dir);
    } else if to_move > 0 && !untouched {
        report.backup = Some(backup_path);
    } else {
        // Nothing to touch: an empty backup would only confuse a later rollback.
        let _ = std::fs::remove_file(&backup_path);
    }
    result.map(|()| report)
}

async fn move_keys(
    job: &Job,
    backup_path: &std::path::Path,
    target_providers: &Document,
    report: &mut Report,
    progress: &dyn Fn(Progress),
) -> Result<(), RewrapError> {
    let mut reader = backup::BackupReader::open(backup_path).map_err(RewrapError::new)?;
    let mut done = 0u64;
    // While one batch is proven and written, the next one is rewrapped, so the KMS sees
    // a steady stream instead of a drain at every phase boundary. The two sides share
    // `concurrency` (never more requests in flight than it allows) and memory holds at
    // most two batches.
    let (rewrap_io, prove_io) = split_concurrency(&job.session.kms);
    let mut batch = reader
        .next_batch(job.session.batch_size)
        .map_err(RewrapError::new)?;
    if batch.is_empty() {
        return Ok(());
    }
    let mut rewrapped = rewrap_isolating(job, &batch, &job.session.kms).await?;
    loop {
        let next = reader
            .next_batch(job.session.batch_size)
            .map_err(RewrapError::new)?;
        let (outcomes, next_rewrapped) = if next.is_empty() {
            let outcomes =
                prove_and_write(job, &batch, &rewrapped, target_providers, &job.session.kms).await;
            (outcomes, None)
        } else if job.session.kms.concurrency < 2 {
            let outcomes =
                prove_and_write(job, &batch, &rewrapped, target_providers, &job.session.kms)
                    .await?;
            let next_rewrapped = rewrap_isolating(job, &next, &job.session.kms).await;
            (Ok(outcomes), Some(next_rewrapped))
        } else {
            let (outcomes, next_rewrapped) = tokio::join!(
                prove_and_write(job, &batch, &rewrapped, target_providers, &prove_io),
                rewrap_isolating(job, &next, &rewrap_io),
            );
            (outcomes, Some(next_rewrapped))
        };
        tracing::info!(batch = batch.len(), "batch rewrapped, proven and written");
        let (outcomes, stop) = outcomes?;
        // Every outcome is recorded, those before a stop too, before the next batch.
        if let Some(audit) = &job.audit {
            audit::batch(job, audit, &batch, &outcomes).await?;
        }
        if let Some(stop) = stop {
            return Err(stop);
        }
        report.reencrypted += rewrapped.reencrypted;
        report.reencrypted_unproven += rewrapped.unproven.len() as u64;
        for (id, outcome) in outcomes {
            match outcome {
                None => report.rewrapped += 1,
                Some(o) => report.not_moved.push((id, o)),
            }
            done += 1;
        }
        progress(Progress::Done(done));
        match next_rewrapped {
            None => return Ok(()),
            Some(r) => {
                rewrapped = r?;
                batch = next;
            }
        }
    }
}

/// Transports for rewrapping the next batch and for proving the current one at the
/// same time: each gets a share of `concurrency`, together exactly `concurrency`
/// (at least 2; with 1 the two sides take turns instead).
fn split_concurrency(kms: &KmsIo) -> (KmsIo, KmsIo) {
    let total = kms.concurrency.max(2);
    let rewrap = KmsIo {
        concurrency: total / 2,
        ..kms.clone()
    };
    let prove = KmsIo {
        concurrency: total - total / 2,
        ..kms.clone()
    };
    (rewrap, prove)
}

/// Proves every key of a batch under its new wrapping and writes the proven ones
/// (compare-and-swap), up to `kms.concurrency` at a time. Fresh libmongocrypt handles:
/// no key cache can stand in for a real unwrap.
async fn prove_and_write(
    job: &Job,
    batch: &[RawDocumentBuf],
    rewrapped: &Isolated,
    target_providers: &Document,
    kms: &KmsIo,
) -> Result<Outcomes, RewrapError> {
    let under_new = crypt::build(target_providers).map_err(|e| fail("libmongocrypt", e))?;
    let under_old =
        crypt::build(job.session.kms_providers.expose()).map_err(|e| fail("libmongocrypt", e))?;
    let by_id: HashMap<[u8; 16], &RawDocumentBuf> = rewrapped
        .rewrapped
        .iter()
        .filter_map(|d| Some((key_id::of(d)?, d)))
        .collect();
    let refused: std::collections::HashSet<usize> =
        rewrapped.refused.iter().map(|(i, _)| *i).collect();
    let mut outcomes: Vec<(String, Option<KeyOutcome>)> = rewrapped
        .refused
        .iter()
        .map(|(i, why)| {
            (
                key_id::text(&batch[*i]),
                Some(KeyOutcome::Refused(why.clone())),
            )
        })
        .collect();
    let accepted = batch
        .iter()
        .enumerate()
        .filter(|(i, _)| !refused.contains(i))
        .map(|(_, old)| old);
    // Proofs hold the KMS slots; writes follow in their own stage (as many in flight),
    // so a slow key vault never idles the KMS and a slow KMS never idles the writes.
    let written: Vec<Result<(String, Option<KeyOutcome>), RewrapError>> = stream::iter(accepted)
        .map(|old| {
            let id = key_id::of(old);
            let new = id.and_then(|id| by_id.get(&id).copied());
            let sampled_out = id.is_some_and(|id| rewrapped.unproven.contains(&id));
            let (under_new, under_old) = (&under_new, &under_old);
            async move {
                let proven = async {
                    let Some(new) = new else {
                        let why = "libmongocrypt returned no rewrapped document";
                        return Err(prove::NotProven::new(why));
                    };
                    let new = merged(old, new).map_err(prove::NotProven::new)?;
                    if !sampled_out {
                        with_retries("a proof", || {
                            prove::prove(under_new, under_old, old, &new, kms)
                        })
                        .await?;
                    }
                    Ok(new)
                };
                (old, proven.await)
            }
        })
        .buffer_unordered(kms.concurrency.max(1))
        .map(|(old, proven)| async move {
            let id = key_id::text(old);
            let new = match proven {
                Ok(new) => new,
                // The target refusing for good (key disabled, permission gone) fails
                // every proof after it: stop as a refused rewrap does, with its hint.
                Err(prove::NotProven {
                    why,
                    refusal: Some(refusal),
                }) => {
                    return Err(RewrapError::refused("proving a new wrapping", why, refusal));
                }
                Err(not) => return Ok((id, Some(KeyOutcome::NotProven(not.why)))),
            };
            if job.dry_run {
                return Ok((id, None));
            }
            let swapped = cas::compare_and_swap(&job.session.key_vault, old, &new)
                .await
                .map_err(RewrapError::new)?;
            crate::failpoint::hit("rewrap.written");
            Ok((id, (!swapped).then_some(KeyOutcome::ChangedMeanwhile)))
        })
        .buffer_unordered(kms.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    // Keys written before a stop are kept (the audit trail records them).
    let mut stop = None;
    for w in written {
        match w {
            Ok(o) => outcomes.push(o),
            Err(e) => stop = stop.or(Some(e)),
        }
    }
    Ok((outcomes, stop))
}

/// A batch's outcomes by key id (`None`: moved), and what stopped the run if something
/// did after some keys were written.
type Outcomes = (Vec<(String, Option<KeyOutcome>)>, Option<RewrapError>);

/// A libmongocrypt context (a batch rewrap, a proof, a probe) tried again as
/// [`Backoff::KMS_CONTEXT`] allows: it wrote nothing when it failed. A permanent KMS
/// refusal is final at once, with its hint.
async fn with_retries<T, E, F, Fut>(what: &str, f: F) -> Result<T, E>
where
    E: std::fmt::Display + Refusal,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    crate::retry::retry(what, Backoff::KMS_CONTEXT, |e: &E| e.refusal().is_none(), f).await
}

/// Failures that may be a permanent KMS refusal.
trait Refusal {
    fn refusal(&self) -> Option<KmsRefusal>;
}

impl Refusal for RewrapError {
    fn refusal(&self) -> Option<KmsRefusal> {
        self.refusal
    }
}

impl Refusal for prove::NotProven {
    fn refusal(&self) -> Option<KmsRefusal> {
        self.refusal
    }
}

/// The key document as it will be after the write: the old one with the rewrapped
/// `keyMaterial` and `masterKey` (libmongocrypt returns only those and `_id`).
fn merged(old: &RawDocumentBuf, rewrapped: &RawDocumentBuf) -> Result<RawDocumentBuf, String> {
    let mut doc = Document::try_from(old.as_ref()).map_err(|e| e.to_string())?;
    let new = Document::try_from(rewrapped.as_ref()).map_err(|e| e.to_string())?;
    for field in ["keyMaterial", "masterKey"] {
        let value = new
            .get(field)
            .cloned()
            .ok_or_else(|| format!("rewrapped document lacks {field}"))?;
        doc.insert(field, value);
    }
    RawDocumentBuf::try_from(&doc).map_err(|e| e.to_string())
}

/// A batch after [`rewrap_isolating`]: the rewrapped documents (libmongocrypt's, by
/// `_id`) and the keys libmongocrypt refused, by index in the batch, with its reason.
struct Isolated {
    rewrapped: Vec<RawDocumentBuf>,
    refused: Vec<(usize, String)>,
    /// How many of `rewrapped` came from `ReEncrypt`.
    reencrypted: u64,
    /// Keys moved by `ReEncrypt` that the sample leaves unproven
    /// (`reEncryptProofOneIn` > 1): their DEKs never leave KMS.
    unproven: std::collections::HashSet<[u8; 16]>,
}

/// Rewraps a batch; when libmongocrypt refuses it, bisects until every refused key
/// stands alone (core's [`Isolation`] decides the parts and the verdict). Other
/// failures (KMS, network, on-demand credentials) stop the run as before, after their
/// retries.
async fn rewrap_isolating(
    job: &Job,
    batch: &[RawDocumentBuf],
    kms: &KmsIo,
) -> Result<Isolated, RewrapError> {
    // Keys ReEncrypt can move skip libmongocrypt; the others go through it, bisected
    // when it refuses the batch.
    let by_kms = reencrypt::eligible(job, batch);
    let (mut rewrapped, unproven) = reencrypt::re_encrypt(job, batch, &by_kms, kms).await?;
    let reencrypted = rewrapped.len() as u64;
    let rest: Vec<usize> = (0..batch.len()).filter(|i| !by_kms.contains(i)).collect();
    // Without ReEncrypt (every move but AWS to AWS) the rest is the batch itself: no copy.
    let rest_docs: std::borrow::Cow<'_, [RawDocumentBuf]> = if by_kms.is_empty() {
        std::borrow::Cow::Borrowed(batch)
    } else {
        rest.iter().map(|&i| batch[i].clone()).collect()
    };
    let mut isolation = Isolation::new(rest.len());
    while let Some(range) = isolation.next_part() {
        let part = &rest_docs[range.clone()];
        match with_retries("a batch rewrap", || rewrap_batch(job, part, kms)).await? {
            Ok(docs) => rewrapped.extend(docs),
            Err(why) => {
                if part.len() == 1 {
                    tracing::warn!(key = %key_id::text(&part[0]), reason = %why, "libmongocrypt refused a key document");
                } else {
                    tracing::info!(keys = part.len(), reason = %why, "libmongocrypt refused a batch; isolating the key(s)");
                }
                isolation.refused(range, why);
            }
        }
    }
    let refused = isolation
        .verdict()
        .map_err(|stop| RewrapError::new(stop.to_string()))?
        .into_iter()
        .map(|(i, why)| (rest[i], why))
        .collect();
    Ok(Isolated {
        rewrapped,
        refused,
        reencrypted,
        unproven,
    })
}

/// One libmongocrypt rewrap context over a batch read from the backup. `Ok(Err(why))`:
/// libmongocrypt itself refused it (a key document it does not accept; retrying cannot
/// help, so [`with_retries`] sees success and [`rewrap_isolating`] bisects).
async fn rewrap_batch(
    job: &Job,
    batch: &[RawDocumentBuf],
    kms: &KmsIo,
) -> Result<Result<Vec<RawDocumentBuf>, String>, RewrapError> {
    let ids: Vec<Bson> = batch
        .iter()
        .filter_map(|d| match d.get("_id") {
            Ok(Some(bson::RawBsonRef::Binary(b))) => Some(Bson::Binary(Binary {
                subtype: b.subtype,
                bytes: b.bytes.to_vec(),
            })),
            _ => None,
        })
        .collect();
    let filter = RawDocumentBuf::try_from(&doc! {"_id": {"$in": ids}})
        .map_err(|e| fail("rewrap filter", e))?;
    let crypt: Crypt =
        crypt::build(job.session.kms_providers.expose()).map_err(|e| fail("libmongocrypt", e))?;
    let ctx = crypt
        .ctx_builder()
        .key_encryption_key(&job.session.target)
        .and_then(|b| b.build_rewrap_many_datakey(&filter))
        .map_err(|e| fail("starting the rewrap", e))?;
    let out = match ctx_runner::run(ctx, Keys::Given(batch), kms).await {
        Ok(out) => out,
        Err(e) => {
            return match (e.refusal(), e) {
                (Some(refusal), e) => Err(RewrapError::refused("rewrapping a batch", e, refusal)),
                // libmongocrypt's own refusal (not a KMS's answer, which comes as
                // RunError::Kms): about the documents, so the batch is bisected.
                (None, ctx_runner::RunError::Crypt(e)) => {
                    Ok(Err(e.message.clone().unwrap_or_else(|| e.to_string())))
                }
                (None, e) => Err(fail("rewrapping a batch", e)),
            };
        }
    };
    let out = Document::try_from(out.as_ref()).map_err(|e| fail("rewrap result", e))?;
    let Ok(list) = out.get_array("v") else {
        return Ok(Ok(Vec::new()));
    };
    list.iter()
        .map(|v| match v {
            Bson::Document(d) => RawDocumentBuf::try_from(d).map_err(|e| fail("rewrap result", e)),
            _ => Err(RewrapError::new("rewrap result holds a non-document")),
        })
        .collect::<Result<_, _>>()
        .map(Ok)
}
