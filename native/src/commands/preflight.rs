//! `keyshift preflight`: prove the move can work, changing nothing.
//!
//! Checks, in order: the configuration; the key vault answers; for every distinct
//! source master key among keys not yet under the target, one sample key is readable
//! (its provider unwraps it); for an AWS target, `DescribeKey` (enabled, symmetric,
//! ENCRYPT_DECRYPT, region); the target wraps a fresh probe DEK (kept in memory, never
//! stored: the KMS's Encrypt) and unwraps it again through the target provider alone
//! (its Decrypt) — a refusal of either is named as such, since IAM grants them apart.

use crate::outln;
use std::collections::BTreeMap;

use bson::{Document, RawDocumentBuf};
use futures_util::TryStreamExt;

use super::{CmdResult, FAILED, Failure, OK, key_vault, kms_io, print_json};
use crate::cli::Common;
use crate::ctx_runner::{self, Keys};
use crate::rewrap::{master_key_of, prove, target};
use crate::{crypt, settings};
use keyshift_core::kms_error::KmsRefusal;

struct Check {
    name: String,
    ok: bool,
    detail: String,
}

/// Names which KMS operation the target refused, so a user fixes the right grant.
/// A target probe's failure, in words, with the permanent KMS refusal behind it.
type TargetFailure = (String, Option<KmsRefusal>);

fn refused(operation: &str, error: &str, refusal: Option<KmsRefusal>) -> TargetFailure {
    let words = match refusal {
        Some(KmsRefusal::Permission) => format!(
            "the target KMS refused {operation}: the credentials lack that permission on the \
             key (`keyshift policy` shows what to grant). KMS said: {error}"
        ),
        Some(KmsRefusal::KeyState) => {
            format!("the target key is disabled or missing; {operation} failed: {error}")
        }
        _ => format!("{operation} failed: {error}"),
    };
    (words, refusal)
}

async fn describe_aws(
    settings: &crate::settings::Settings,
    target_mk: &Document,
    provider: &str,
    kms: &crate::kms_io::KmsIo,
) -> Check {
    let ca = settings.tls.get(provider).and_then(|t| t.ca_file.clone());
    let configured = settings
        .kms_providers
        .expose()
        .get_document(provider)
        .cloned()
        .unwrap_or_default();
    let creds = if configured.is_empty() {
        match &kms.on_demand {
            Some(od) => od.get().await.map(|d| {
                d.expose()
                    .get_document(provider)
                    .cloned()
                    .unwrap_or_default()
            }),
            None => Err("no AWS credentials".into()),
        }
    } else {
        Ok(configured)
    };
    let check = match creds {
        Ok(creds) => crate::aws::describe_key(target_mk, &creds, ca.as_deref()).await,
        Err(e) => crate::aws::KeyCheck {
            ok: false,
            detail: e,
        },
    };
    Check {
        name: format!("target {provider} key"),
        ok: check.ok,
        detail: check.detail,
    }
}

/// Runs `preflight`.
pub async fn run(common: &Common) -> CmdResult {
    let settings = settings::load(&common.config)?;
    let target_mk = super::require_target(&settings)?;
    let mut checks = vec![Check {
        name: "config".into(),
        ok: true,
        detail: format!("{} is valid", common.config.display()),
    }];
    let vault = key_vault(&settings).await?;
    let kms = kms_io(&settings)?;

    // One sample per distinct source master key (memory: one key per master key).
    let mut samples: BTreeMap<String, RawDocumentBuf> = BTreeMap::new();
    let (mut total, mut under) = (0u64, 0u64);
    let vault_check = async {
        let mut cursor = vault.find(settings.filter.clone()).await?;
        while let Some(k) = cursor.try_next().await? {
            total += 1;
            match master_key_of(&k) {
                Some(mk)
                    if target::is_under_for(
                        &mk,
                        &target_mk,
                        &settings.config.rewrap_or_default(),
                    ) =>
                {
                    under += 1
                }
                Some(mk) => {
                    samples.entry(mk.to_string()).or_insert(k);
                }
                None => {}
            }
        }
        Ok::<_, mongodb::error::Error>(())
    }
    .await;
    match vault_check {
        Ok(()) => checks.push(Check {
            name: "keyVault".into(),
            ok: true,
            detail: format!(
                "{} answers: {total} selected key(s), {under} already under the target",
                settings.key_vault_ns()
            ),
        }),
        Err(e) => checks.push(Check {
            name: "keyVault".into(),
            ok: false,
            detail: super::redact_uri_error(
                &crate::deployment::describe(&e),
                settings.uri.expose(),
            ),
        }),
    }

    let all = crypt::build(settings.kms_providers.expose())
        .map_err(|e| Failure::failed(format!("libmongocrypt: {e}")))?;
    for (mk, key) in &samples {
        let r = prove::readable(&all, key, &kms).await;
        checks.push(Check {
            name: format!("source {mk}"),
            ok: r.is_ok(),
            detail: match r {
                Ok(()) => "a sample key unwraps".into(),
                Err(e) => format!("cannot unwrap a sample key: {}", e.why),
            },
        });
    }

    let provider = target_mk
        .get_str("provider")
        .unwrap_or_default()
        .to_string();
    let only_target = settings
        .kms_providers
        .expose()
        .get(&provider)
        .cloned()
        .map(|c| bson::doc! { provider.as_str(): c });
    let is_aws = target_mk
        .get_str("provider")
        .is_ok_and(|p| p == "aws" || p.starts_with("aws:"));
    let target_check = async {
        let plain = |e: &dyn std::fmt::Display| -> TargetFailure { (e.to_string(), None) };
        let only_target =
            only_target.ok_or_else(|| plain(&"the target provider is not in kmsProviders"))?;
        let wrap = crypt::build(&only_target).map_err(|e| plain(&e))?;
        let ctx = wrap
            .ctx_builder()
            .key_encryption_key(&target_mk)
            .and_then(|b| b.build_datakey())
            .map_err(|e| plain(&e))?;
        let probe_key = ctx_runner::run(ctx, Keys::Given(&[]), &kms)
            .await
            .map_err(|e| {
                refused(
                    "Encrypt (wrapping a probe key)",
                    &e.to_string(),
                    e.refusal(),
                )
            })?;
        // A fresh handle, so the unwrap is a real KMS call.
        let unwrap = crypt::build(&only_target).map_err(|e| plain(&e))?;
        prove::readable(&unwrap, &probe_key, &kms)
            .await
            .map_err(|e| refused("Decrypt (unwrapping the probe key)", &e.why, e.refusal))
    }
    .await;
    if is_aws {
        // A certificate that does not verify fails DescribeKey too, after the SDK's own
        // retries: say so instead of spending them.
        let tls_failed = matches!(target_check, Err((_, Some(KmsRefusal::Certificate))));
        checks.push(if tls_failed {
            Check {
                name: format!("target {provider} key"),
                ok: false,
                detail: "DescribeKey not attempted: the KMS's TLS certificate did not verify (see below)".into(),
            }
        } else {
            describe_aws(&settings, &target_mk, &provider, &kms).await
        });
    }
    checks.push(Check {
        name: format!("target {provider}"),
        ok: target_check.is_ok(),
        detail: match target_check {
            Ok(()) => "wraps and unwraps a probe key".into(),
            Err((words, _)) => words,
        },
    });

    let ok = checks.iter().all(|c| c.ok);
    if common.json {
        let list: Vec<_> = checks
            .iter()
            .map(|c| serde_json::json!({"check": c.name, "ok": c.ok, "detail": c.detail}))
            .collect();
        print_json(&serde_json::json!({"ok": ok, "checks": list}));
    } else {
        for c in &checks {
            outln!(
                "{} {}: {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        outln!(
            "{}",
            if ok {
                "preflight passed: nothing was changed"
            } else {
                "preflight failed: nothing was changed; fix the failing checks and run it again"
            }
        );
    }
    Ok(if ok { OK } else { FAILED })
}
