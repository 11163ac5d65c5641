//! `keyshift rotate`: new DEKs and field re-encryption (the engine is
//! [`crate::rotate`]).

use crate::outln;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use keyshift_core::rotate::ids::uuid_string;
use keyshift_core::rotate::partition::Partition;

use super::{CmdResult, FAILED, Failure, OK, confirm, print_json};
use crate::cli::Common;
use crate::rotate::{self, Job, Progress, Report, RotateError};
use crate::settings::{self, Settings};

/// The collections to scan: every one (`--all-collections`) or `[rotate] collections`.
pub async fn namespaces(
    settings: &Settings,
    client: &mongodb::Client,
    all: bool,
) -> Result<Vec<String>, Failure> {
    let configured = settings
        .config
        .rotate
        .as_ref()
        .and_then(|r| r.collections.clone());
    match (all, configured) {
        (true, _) => rotate::validators::all_namespaces(client, &settings.key_vault_ns())
            .await
            .map_err(|e| {
                Failure::failed(format!(
                    "cannot list the collections: {}",
                    super::redact_uri_error(&e.to_string(), settings.uri.expose())
                ))
            }),
        (false, Some(list)) if !list.is_empty() => Ok(list),
        _ => Err(Failure::usage(
            "no collections to scan: list them in keyshift.toml ([rotate] collections = \
             [\"db.coll\", ...]) or pass --all-collections",
        )),
    }
}

fn refused(e: RotateError) -> Failure {
    match e {
        RotateError::Refused(m) => Failure::usage(format!("rotate refused: {m}")),
        RotateError::Failed(m) => Failure::failed(format!(
            "rotate stopped: {m}. Everything written before this point is backed up and \
             compare-and-swap; rerun to continue"
        )),
    }
}

fn report_json(r: &Report) -> serde_json::Value {
    let keys: Vec<serde_json::Value> = r
        .keys
        .iter()
        .map(|k| {
            serde_json::json!({"old": uuid_string(&k.old), "new": uuid_string(&k.new), "created": k.created})
        })
        .collect();
    let collections: Vec<serde_json::Value> = r
        .collections
        .iter()
        .map(|c| {
            serde_json::json!({
                "namespace": c.namespace,
                "scanned": c.scanned,
                "reencrypted": c.reencrypted,
                "alreadyReplaced": c.already_replaced,
                "changedMeanwhile": c.changed_meanwhile,
                "validatorUpdated": c.validator_updated,
                "failed": c.failed,
                "errors": c.errors,
            })
        })
        .collect();
    serde_json::json!({
        "command": "rotate",
        "dryRun": r.dry_run,
        "partition": r.partition.map(|p| serde_json::json!({"index": p.index, "count": p.count})),
        "keys": keys,
        "keyAltNamesMoved": r.alt_names_moved,
        "queryableKeysLeft": r.queryable_keys_left,
        "queryableCollectionsSkipped": r.queryable_skipped,
        "pointers": r.pointers.iter().map(|(ns, p)| serde_json::json!({"namespace": ns, "pointer": p})).collect::<Vec<_>>(),
        "collections": collections,
        "schemaMap": r.schema_map,
        "backup": r.backup,
        "createdBackup": r.created_backup,
    })
}

fn print_text(r: &Report) {
    let made = r.keys.iter().filter(|k| k.created).count();
    let verb = if r.dry_run { "would be" } else { "were" };
    outln!(
        "{} old key(s); {made} replacement(s) {verb} made, {} already existed",
        r.keys.len(),
        r.keys.len() - made
    );
    for c in &r.collections {
        outln!(
            "  {}: {} scanned, {} re-encrypted{}, {} already replaced, {} changed meanwhile{}{}",
            c.namespace,
            c.scanned,
            c.reencrypted,
            if r.dry_run { " (dry run)" } else { "" },
            c.already_replaced,
            c.changed_meanwhile,
            if c.validator_updated {
                ", validator rewritten"
            } else {
                ""
            },
            if c.failed > 0 {
                format!(", {} FAILED", c.failed)
            } else {
                String::new()
            }
        );
    }
    for (ns, p) in &r.pointers {
        outln!(
            "  {ns}: keyId {p:?} names a key by keyAltName taken from the document; \
             {}",
            if r.dry_run {
                "rotate would move those names to the new keys"
            } else {
                "the names now belong to the new keys"
            }
        );
    }
    for ns in &r.queryable_skipped {
        outln!(
            "  {ns}: skipped, a Queryable Encryption collection (rotate re-encrypts only \
             CSFLE values)"
        );
    }
    for why in &r.skipped_because {
        outln!("  skipped: {why}");
    }
    if r.queryable_keys_left > 0 {
        outln!(
            "{} key(s) in scope left alone: a Queryable Encryption collection uses them \
             (rotate cannot re-encrypt QE values; `keyshift rewrap` moves such keys)",
            r.queryable_keys_left
        );
    }
    if r.alt_names_moved > 0 {
        outln!(
            "{} keyAltName(s) moved to the new keys: applications choosing keys by name \
             now encrypt under them",
            r.alt_names_moved
        );
    }
    if let Some(b) = &r.backup {
        outln!("backup of the old keys: {}", b.display());
    }
    if let Some(b) = &r.created_backup {
        outln!("backup of the new keys: {}", b.display());
    }
    if !r.schema_map.is_empty() {
        outln!("the new schemaMap for applications (also with --json):");
        outln!(
            "{}",
            serde_json::to_string_pretty(&r.schema_map).unwrap_or_default()
        );
    }
}

/// Runs `rotate`.
pub async fn run(
    common: &Common,
    all_collections: bool,
    partition: Option<&str>,
    dry_run: bool,
    yes: bool,
) -> CmdResult {
    let partition = match partition {
        Some(text) => Partition::parse(text).map_err(Failure::usage)?,
        None => Partition::WHOLE,
    };
    let settings = settings::load(&common.config)?;
    let mut session = super::session(&settings).await?;
    // Each of N partition workers takes 1/N of the configured KMS rate.
    session.kms.pace = std::sync::Arc::new(crate::kms_pace::KmsPace::new(
        keyshift_core::kms_rate::share(settings.kms_rate, partition.count),
    ));
    let namespaces = namespaces(&settings, &session.client, all_collections).await?;
    if !dry_run {
        confirm(
            &format!(
                "Replace the keys in {} with new ones under {} and re-encrypt {} collection(s)?",
                settings.key_vault_ns(),
                session.target.get_str("provider").unwrap_or("the target"),
                namespaces.len()
            ),
            yes,
        )?;
    }
    let audit = if dry_run {
        None
    } else {
        let detail = serde_json::json!({
            "collections": namespaces,
            "partition": (!partition.is_whole())
                .then(|| serde_json::json!({"index": partition.index, "count": partition.count})),
        });
        let target = Some(&session.target);
        Some(super::audit::start(&settings, &session, "rotate", target, Some(detail)).await?)
    };
    let job = Job {
        session,
        namespaces,
        partition,
        dry_run,
        skip_queryable: all_collections,
        audit,
    };
    let pace = job.session.kms.pace.clone();
    // Bars on a terminal; plain lines otherwise; nothing with --json.
    let bars = (!common.json && std::io::stderr().is_terminal()).then(MultiProgress::new);
    let current: Mutex<Option<ProgressBar>> = Mutex::new(None);
    let quiet = common.json;
    let progress = |p: Progress<'_>| {
        let line = |s: String| match &bars {
            Some(b) => {
                let _ = b.println(format!("keyshift: {s}"));
            }
            None if !quiet => eprintln!("keyshift: {s}"),
            None => {}
        };
        match p {
            Progress::OldKeys(n) => line(format!(
                "{n} old key(s){}",
                if dry_run {
                    " (dry run: nothing will be written)"
                } else {
                    "; backup written and synced"
                }
            )),
            Progress::Replacements { total, created } => line(format!(
                "{total} replacement key(s) ready, {created} made and proven under the target"
            )),
            Progress::Collection(ns) => {
                let mut cur = current.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(old) = cur.take() {
                    old.finish();
                }
                if let Some(b) = &bars {
                    let bar = b.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} {prefix}: {pos} documents ({per_sec}) KMS: {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(ns.to_string());
                    bar.enable_steady_tick(std::time::Duration::from_millis(200));
                    *cur = Some(bar);
                } else {
                    line(format!("scanning {ns}"));
                }
            }
            Progress::Scanned(_, n) => {
                if let Some(bar) = current.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                    bar.set_position(n);
                    bar.set_message(pace.summary());
                }
            }
        }
    };
    let result = rotate::run(&job, &progress).await;
    if let Some(bar) = current.lock().unwrap_or_else(|e| e.into_inner()).take() {
        bar.finish();
    }
    // The run's end (with every collection's counts) is on record before any output.
    let (counts, error) = match &result {
        Ok(r) => {
            let mut counts = report_json(r);
            // Keys are on record one by one; the schemaMap is printed for applications.
            if let Some(c) = counts.as_object_mut() {
                c.remove("schemaMap");
                c.remove("keys");
                c.insert("keysReplaced".into(), r.keys.len().into());
            }
            (counts, None)
        }
        Err(e) => (serde_json::json!({}), Some(e.to_string())),
    };
    let failures: u64 = result
        .as_ref()
        .map(|r| r.collections.iter().map(|c| c.failed).sum())
        .unwrap_or(0);
    let audited = super::audit::end(
        job.audit.as_ref(),
        result.is_ok() && failures == 0,
        counts,
        error.as_deref(),
    )
    .await?;
    let report = result.map_err(refused)?;
    for c in &report.collections {
        for e in &c.errors {
            eprintln!("keyshift: {e}");
        }
    }
    if common.json {
        let mut out = report_json(&report);
        out["audit"] = audited.unwrap_or_default();
        print_json(&out);
    } else {
        print_text(&report);
        super::audit::print_where(audited.as_ref());
    }
    Ok(if failures == 0 {
        OK
    } else {
        eprintln!(
            "keyshift: {failures} value(s) could not be rotated (see above); they are left \
             as they were. Fix the cause and rerun rotate"
        );
        FAILED
    })
}
