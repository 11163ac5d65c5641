//! `keyshift audit verify|show`, and the audit trail's start and end for the commands
//! that change the key vault (rewrap, rollback, rotate, retire).

use std::path::{Path, PathBuf};

use keyshift_core::audit;
use serde_json::{Value, json};

use super::{CmdResult, FAILED, Failure, NOT_VERIFIED, OK, print_json};
use crate::audit::Audit;
use crate::cli::Common;
use crate::outln;
use crate::session::Session;
use crate::settings::{self, Settings};

/// Opens the audit trail for a command and records its start: refused (exit 1,
/// nothing changed) when the log cannot be written or does not verify.
pub async fn start(
    settings: &Settings,
    session: &Session,
    command: &str,
    target: Option<&bson::Document>,
    detail: Option<Value>,
) -> Result<Audit, Failure> {
    start_run(
        settings,
        &session.client,
        &session.run_id,
        command,
        target,
        detail,
    )
    .await
}

/// [`start`] for a command without a session (rollback).
pub async fn start_run(
    settings: &Settings,
    client: &mongodb::Client,
    run: &str,
    command: &str,
    target: Option<&bson::Document>,
    detail: Option<Value>,
) -> Result<Audit, Failure> {
    Audit::start(settings, client, command, run, target, detail)
        .await
        .map_err(|e| Failure::failed(format!("{command} refused: {e}")))
}

/// Records a command's end; returns where the trail is and its head, for the output.
pub async fn end(
    audit: Option<&Audit>,
    ok: bool,
    counts: Value,
    error: Option<&str>,
) -> Result<Option<Value>, Failure> {
    let Some(audit) = audit else { return Ok(None) };
    audit.end(ok, counts, error).await.map_err(|e| {
        Failure::failed(format!(
            "recording the end of the run: {e}{}",
            error
                .map(|e| format!(" (the run itself: {e})"))
                .unwrap_or_default()
        ))
    })?;
    Ok(Some(json!({
        "file": audit.path(),
        "run": audit.run(),
        "head": audit.head(),
    })))
}

/// The audit line of a text summary.
pub fn print_where(audited: Option<&Value>) {
    if let Some(a) = audited {
        outln!(
            "audit: {} (run {}; head {})",
            a["file"].as_str().unwrap_or_default(),
            a["run"].as_str().unwrap_or_default(),
            a["head"].as_str().unwrap_or_default()
        );
    }
}

/// The log to read: FILE, else the one the configuration names.
fn locate(common: &Common, file: Option<&Path>) -> Result<PathBuf, Failure> {
    if let Some(f) = file {
        return Ok(f.to_path_buf());
    }
    let checked = settings::check(&common.config).map_err(|e| {
        Failure::usage(format!(
            "{e}; name the audit log instead: keyshift audit verify FILE"
        ))
    })?;
    Ok(crate::audit::path_for(&checked.config, &checked.base))
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| {
            Failure::failed(format!(
                "audit log {}: {e} (commands that change the key vault write it; \
                 [audit] file or the backup directory says where)",
                path.display()
            ))
        })
}

/// `keyshift audit verify`: exit 0 when the chain holds (and holds `head`), 3 where it
/// breaks.
pub fn verify(common: &Common, file: Option<&Path>, head: Option<&str>) -> CmdResult {
    let path = locate(common, file)?;
    let text = read(&path)?;
    let v = audit::verify(&text);
    let anchored = head.map(|h| v.ok() && audit::contains(&text, h));
    let ok = v.ok() && anchored != Some(false);
    if common.json {
        print_json(&json!({
            "ok": ok,
            "file": path,
            "records": v.records,
            "head": v.head.hash,
            "broken": v.broken.as_ref().map(|b| json!({"line": b.line, "why": b.why})),
            "tornTail": v.torn_tail,
            "anchorFound": anchored,
        }));
    } else {
        match &v.broken {
            None => outln!(
                "{}: {} record(s), chain intact; head {}",
                path.display(),
                v.records,
                v.head.hash
            ),
            Some(b) => outln!(
                "{}: chain broken at line {}: {}. The {} record(s) before it verify.",
                path.display(),
                b.line,
                b.why,
                v.records
            ),
        }
        if v.torn_tail {
            outln!(
                "the last line was cut by a crash mid-write (not a record); the next run removes it and records a repair"
            );
        }
        match anchored {
            Some(true) => outln!(
                "the anchor {} is in the chain: nothing up to it changed",
                head.unwrap_or_default()
            ),
            Some(false) if v.ok() => outln!(
                "the anchor {} is not in the chain: records up to it were changed or removed",
                head.unwrap_or_default()
            ),
            _ => {}
        }
    }
    Ok(if ok { OK } else { NOT_VERIFIED })
}

/// `keyshift audit show`: each run: who, when, the command, its outcome and its keys by
/// outcome, with the keys that need attention.
pub fn show(common: &Common, file: Option<&Path>) -> CmdResult {
    let path = locate(common, file)?;
    let text = read(&path)?;
    let v = audit::verify(&text);
    let runs = audit::summary::summary(&text);
    if common.json {
        print_json(&json!({
            "file": path,
            "verified": v.ok(),
            "records": v.records,
            "head": v.head.hash,
            "runs": runs,
        }));
    } else {
        if let Some(b) = &v.broken {
            outln!(
                "WARNING: the chain is broken at line {} ({}): what follows proves nothing",
                b.line,
                b.why
            );
        }
        outln!(
            "{}: {} run(s), {} record(s)",
            path.display(),
            runs.len(),
            v.records
        );
        for r in &runs {
            let keys = r
                .keys
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ");
            outln!(
                "{} {} by {} (run {}): {}{}",
                r.started,
                if r.command.is_empty() {
                    "?"
                } else {
                    &r.command
                },
                r.who,
                r.run,
                r.outcome,
                r.error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
            if !keys.is_empty() {
                outln!("  keys: {keys}");
            }
            for (id, why) in &r.attention {
                outln!("  {id}: {why}");
            }
        }
    }
    Ok(if v.ok() { OK } else { FAILED })
}
