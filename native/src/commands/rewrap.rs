//! `keyshift rewrap`: the main job (the engine is [`crate::rewrap`]).

use crate::outln;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use super::{CmdResult, FAILED, Failure, OK, confirm, print_json};
use crate::cli::Common;
use crate::rewrap::{self, Job, KeyOutcome, Progress, Report};
use crate::settings;

fn report_json(r: &Report) -> serde_json::Value {
    let not_moved: Vec<serde_json::Value> = r
        .not_moved
        .iter()
        .map(|(id, o)| match o {
            KeyOutcome::ChangedMeanwhile => {
                serde_json::json!({"id": id, "reason": "changedMeanwhile"})
            }
            KeyOutcome::NotProven(why) => {
                serde_json::json!({"id": id, "reason": "notProven", "detail": why})
            }
            KeyOutcome::Refused(why) => {
                serde_json::json!({"id": id, "reason": "refused", "detail": why})
            }
        })
        .collect();
    serde_json::json!({
        "dryRun": r.dry_run,
        "selected": r.selected,
        "alreadyUnderTarget": r.already_under_target,
        "rewrapped": r.rewrapped,
        "reEncrypted": r.reencrypted,
        "reEncryptedUnproven": r.reencrypted_unproven,
        "notMoved": not_moved,
        "backup": r.backup,
    })
}

/// The counts a rewrap's `end` record carries.
fn audit_counts(r: &Report) -> serde_json::Value {
    serde_json::json!({
        "selected": r.selected,
        "alreadyUnderTarget": r.already_under_target,
        "rewrapped": r.rewrapped,
        "reEncrypted": r.reencrypted,
        "notMoved": r.not_moved.len(),
        "backup": r.backup,
    })
}

/// Keys the source cannot unwrap: every one named (stderr, or the JSON document), then
/// the stop. Nothing was written.
fn unreadable_sources(
    json: bool,
    message: &str,
    u: &crate::rewrap::sources::Unreadable,
) -> Failure {
    let keys: Vec<serde_json::Value> = u
        .keys
        .iter()
        .map(|k| {
            serde_json::json!({
                "id": k.id,
                "masterKey": bson::Bson::Document(k.master_key.clone()).into_relaxed_extjson(),
                "error": k.error,
            })
        })
        .collect();
    if json {
        print_json(&serde_json::json!({
            "ok": false,
            "exitCode": FAILED,
            "error": message,
            "unreadableSourceKeys": keys,
            "suggestedFilter": u.filter,
        }));
    } else {
        eprintln!("keyshift: keys the source cannot unwrap (nothing was written):");
        for k in &u.keys {
            eprintln!(
                "  {}: masterKey {}: {}",
                k.id,
                bson::Bson::Document(k.master_key.clone()).into_relaxed_extjson(),
                k.error
            );
        }
    }
    Failure::failed(format!("rewrap refused: {message}"))
}

/// An AWS `ReEncrypt` client for an AWS target (unless `[rewrap] awsReEncrypt =
/// false`), signing with the target provider's credentials or the AWS default chain.
async fn reencrypter(
    settings: &settings::Settings,
    target: &bson::Document,
) -> Result<Option<std::sync::Arc<crate::aws::ReEncrypter>>, Failure> {
    let provider = target.get_str("provider").unwrap_or_default();
    let is_aws = keyshift_core::config::ProviderKind::of_name(provider)
        == Some(keyshift_core::config::ProviderKind::Aws);
    let enabled = settings
        .config
        .rewrap
        .as_ref()
        .and_then(|r| r.aws_re_encrypt)
        .unwrap_or(true);
    if !is_aws || !enabled {
        return Ok(None);
    }
    let credentials = settings
        .kms_providers
        .expose()
        .get_document(provider)
        .cloned()
        .unwrap_or_default();
    let ca = settings.tls.get(provider).and_then(|t| t.ca_file.clone());
    crate::aws::ReEncrypter::new(target, &credentials, ca.as_deref())
        .await
        .map(|r| Some(std::sync::Arc::new(r)))
        .map_err(|e| Failure::usage(format!("AWS ReEncrypt: {e}")))
}

/// Runs `rewrap`.
pub async fn run(common: &Common, dry_run: bool, yes: bool) -> CmdResult {
    let settings = settings::load(&common.config)?;
    let target = super::require_target(&settings)?;
    if !dry_run {
        confirm(
            &format!(
                "Rewrap keys in {} under {}?",
                settings.key_vault_ns(),
                target.get_str("provider").unwrap_or("the target")
            ),
            yes,
        )?;
    }
    let session = super::session(&settings).await?;
    let audit = if dry_run {
        None
    } else {
        let target = Some(&session.target);
        Some(super::audit::start(&settings, &session, "rewrap", target, None).await?)
    };
    let job = Job {
        reencrypt: reencrypter(&settings, &session.target).await?,
        session,
        rewrap: settings.config.rewrap_or_default(),
        dry_run,
        audit,
    };
    let pace = job.session.kms.pace.clone();
    // A bar on a terminal; plain lines otherwise (logs, CI); nothing with --json.
    let bar = (!common.json && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_message("reading and backing up the selected keys");
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    });
    // Without a terminal (logs, CI): a line per batch, at most every ten seconds.
    let logged = std::sync::Mutex::new((std::time::Instant::now(), 0u64));
    let progress = |p: Progress| match (p, &bar) {
        (Progress::Scanned(n), Some(bar)) => {
            bar.set_message(format!("{n} keys read and backed up"))
        }
        (Progress::ToMove(n), bar) => {
            if let Ok(mut l) = logged.lock() {
                l.1 = n;
            }
            let what = if dry_run {
                format!("{n} key(s) to rewrap (dry run: nothing will be written)")
            } else {
                format!("{n} key(s) to rewrap; backup written and synced")
            };
            match bar {
                Some(bar) => {
                    bar.println(format!("keyshift: {what}"));
                    bar.set_length(n);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{bar:40} {pos}/{len} keys rewrapped, proven, written ({per_sec}, eta {eta}) KMS: {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                }
                None if !common.json => eprintln!("keyshift: {what}"),
                None => {}
            }
        }
        (Progress::Done(n), Some(bar)) => {
            bar.set_position(n);
            bar.set_message(pace.summary());
        }
        (Progress::Done(n), None) if !common.json => {
            let mut l = logged.lock().unwrap_or_else(|e| e.into_inner());
            if l.0.elapsed() >= std::time::Duration::from_secs(10) || n == l.1 {
                l.0 = std::time::Instant::now();
                eprintln!("keyshift: {n}/{} key(s) done; KMS: {}", l.1, pace.summary());
            }
        }
        _ => {}
    };
    let result = rewrap::run(&job, &progress).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    // The run's end is on record before anything is printed.
    let counts = match &result {
        Ok(r) => audit_counts(r),
        Err(_) => serde_json::json!({}),
    };
    let error = result.as_ref().err().map(|e| e.message.clone());
    // `ok` exactly when the command exits 0.
    let ok = result.as_ref().is_ok_and(|r| r.not_moved.is_empty());
    let audited = super::audit::end(job.audit.as_ref(), ok, counts, error.as_deref()).await?;
    let report = match result {
        Ok(r) => r,
        Err(e) => match e.unreadable {
            Some(u) => return Err(unreadable_sources(common.json, &e.message, &u)),
            None => {
                return Err(Failure::failed(format!(
                    "rewrap stopped: {e}. Keys written before this point are proven and backed up; rerun to continue"
                )));
            }
        },
    };
    let throttled = pace.throttled();
    if common.json {
        let mut out = report_json(&report);
        out["kmsThrottled"] = throttled.into();
        out["audit"] = audited.clone().unwrap_or_default();
        print_json(&out);
    } else {
        if throttled > 0 {
            eprintln!(
                "keyshift: the KMS throttled {throttled} request(s); keyshift slowed down and \
                 retried them ({}). To leave your applications more of the quota, set \
                 [rewrap] kmsRate",
                pace.summary()
            );
        }
        let verb = if dry_run {
            "would be rewrapped (dry run)"
        } else {
            "rewrapped"
        };
        outln!(
            "{} selected, {} already under the target, {} {verb}, {} not moved",
            report.selected,
            report.already_under_target,
            report.rewrapped,
            report.not_moved.len()
        );
        if report.reencrypted > 0 {
            outln!(
                "{} of them by AWS KMS ReEncrypt ({} proven; the {} others' DEKs never left KMS)",
                report.reencrypted,
                report.reencrypted - report.reencrypted_unproven,
                report.reencrypted_unproven
            );
        }
        for (id, o) in &report.not_moved {
            match o {
                KeyOutcome::ChangedMeanwhile => {
                    outln!("  {id}: changed by someone else meanwhile; left alone (rerun to retry)")
                }
                KeyOutcome::NotProven(why) => outln!("  {id}: not proven, not written: {why}"),
                KeyOutcome::Refused(why) => {
                    outln!("  {id}: libmongocrypt refused this key document, not written: {why}")
                }
            }
        }
        if report
            .not_moved
            .iter()
            .any(|(_, o)| matches!(o, KeyOutcome::Refused(_)))
        {
            let others = if dry_run {
                "every other key would be moved"
            } else {
                "every other key was moved"
            };
            outln!(
                "Refused key documents were left exactly as they were; {others}. Fix them \
                 (`keyshift inspect` flags fields libmongocrypt does not accept) and rerun."
            );
        }
        if let Some(b) = &report.backup {
            outln!(
                "backup: {} (keep it until `keyshift verify` passes)",
                b.display()
            );
        }
        super::audit::print_where(audited.as_ref());
    }
    Ok(if report.not_moved.is_empty() {
        OK
    } else {
        FAILED
    })
}
