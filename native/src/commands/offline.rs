//! The commands that only need core: `snippet`, `policy`, `plan`. plan and policy also
//! read the key vault's inventory when they can (to name key counts and the source
//! keys), giving up after [`LOOK_PATIENCE`] and saying so.

use std::time::{Duration, Instant};

use keyshift_core::generate::{Lang, Stage};
use keyshift_core::inventory::Inventory;

use super::{CmdResult, Failure, OK, key_documents_json, print_json};
use crate::cli::{Common, LangArg, StageArg};
use crate::outln;
use crate::settings;

/// How long plan and policy wait for the key vault before planning without it.
pub const LOOK_PATIENCE: Duration = Duration::from_secs(10);

fn checked_config(common: &Common) -> Result<keyshift_core::Config, Failure> {
    let checked = settings::check(&common.config)?;
    if keyshift_core::diagnostic::has_errors(&checked.diagnostics) {
        return Err(settings::LoadError::Invalid(checked.diagnostics).into());
    }
    Ok(checked.config)
}

fn lang(l: LangArg) -> Lang {
    match l {
        LangArg::Python => Lang::Python,
        LangArg::Node => Lang::Node,
        LangArg::Java => Lang::Java,
        LangArg::Go => Lang::Go,
        LangArg::Csharp => Lang::Csharp,
        LangArg::Rust => Lang::Rust,
        LangArg::Mongosh => Lang::Mongosh,
    }
}

/// Runs `snippet`: the code on stdout (or a JSON document with it).
pub fn snippet(common: &Common, l: LangArg, stage: StageArg) -> CmdResult {
    let config = checked_config(common)?;
    let stage = match stage {
        StageArg::Transition => Stage::Transition,
        StageArg::Final => Stage::Final,
    };
    let s = keyshift_core::generate::snippet(&config, lang(l), stage).map_err(Failure::usage)?;
    if common.json {
        print_json(&serde_json::to_value(&s).unwrap_or_default());
    } else {
        crate::output::out(format_args!("{}", s.code));
    }
    Ok(OK)
}

/// The key vault's inventory, or why it could not be read (never quoting the URI).
async fn look_at_key_vault(
    common: &Common,
    config: &keyshift_core::Config,
) -> Result<Inventory, String> {
    let (uri, db, coll) = settings::key_vault_only(&common.config).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let client =
        crate::deployment::connect_within(uri.expose(), "keyVault.uri", Some(LOOK_PATIENCE))
            .await
            .map_err(|e| e.0)?;
    let vault = client.database(&db).collection(&coll);
    let docs = key_documents_json(&vault, bson::doc! {}, uri.expose())
        .await
        .map_err(|f| {
            format!(
                "{} (gave up after {:.0} s)",
                f.message,
                started.elapsed().as_secs_f64()
            )
        })?;
    Ok(keyshift_core::inventory::analyze(&docs, Some(config)))
}

/// Says on stderr that the key vault was not read, and why.
fn not_read(why: &str, what: &str) {
    eprintln!("keyshift: the key vault was not read: {why}");
    eprintln!("keyshift: {what}");
}

/// Runs `policy`: everything on stdout, or with `--document WHICH` only that document.
pub async fn policy(common: &Common, document: Option<&str>) -> CmdResult {
    let config = checked_config(common)?;
    let inventory = match look_at_key_vault(common, &config).await {
        Ok(inv) => Some(inv),
        Err(why) => {
            if !common.json && document.is_none() {
                not_read(&why, "the source keys are placeholders in the policy below");
            }
            None
        }
    };
    let Some(p) = keyshift_core::policy::policy_for(&config, inventory.as_ref()) else {
        return Err(Failure::usage(
            "no policy to grant: the configuration has no remote target (set [target])",
        ));
    };
    if let Some(which) = document {
        let doc = if which == "target" {
            Some(&p.document)
        } else {
            p.sources
                .iter()
                .find(|s| s.name == which)
                .map(|s| &s.document)
        };
        let names: Vec<&str> = std::iter::once("target")
            .chain(p.sources.iter().map(|s| s.name.as_str()))
            .collect();
        return match doc {
            Some(d) if !d.is_empty() => {
                if common.json {
                    let v: serde_json::Value = serde_json::from_str(d).unwrap_or_default();
                    print_json(&v);
                } else {
                    outln!("{d}");
                }
                Ok(OK)
            }
            Some(_) => Err(Failure::usage(format!(
                "`{which}` has no policy document to write (its grant is a command: see `keyshift policy`)"
            ))),
            None => Err(Failure::usage(format!(
                "--document takes one of: {}",
                names.join(", ")
            ))),
        };
    }
    if common.json {
        print_json(&serde_json::json!({
            "inventoryRead": inventory.is_some(),
            "policy": p,
        }));
        return Ok(OK);
    }
    outln!("# Target `{}`: {}", p.provider, p.title);
    outln!("# What the applications (and keyshift) need on the new master key.");
    if !p.document.is_empty() {
        outln!("{}", p.document);
    }
    for c in p.create_key.iter().chain(&p.grant) {
        outln!("# {}\n{}", c.why, c.command);
    }
    for n in &p.notes {
        outln!("# note: {n}");
    }
    for s in &p.sources {
        outln!("\n# Source `{}`: {}", s.name, s.title);
        outln!(
            "# What the move needs on the old master key: decrypt (unwrap) only, until the move is verified."
        );
        if !s.document.is_empty() {
            outln!("{}", s.document);
        }
        for c in &s.grant {
            outln!("# {}\n{}", c.why, c.command);
        }
        outln!("# After the waiting period:");
        for c in &s.revoke {
            outln!("# {}\n{}", c.why, c.command);
        }
        for n in &s.notes {
            outln!("# note: {n}");
        }
    }
    Ok(OK)
}

/// Runs `plan`. The key vault is read when it can be; otherwise the plan is generic and
/// stderr says why.
pub async fn plan(common: &Common, l: Option<LangArg>) -> CmdResult {
    let config = checked_config(common)?;
    let inventory = match look_at_key_vault(common, &config).await {
        Ok(inv) => Some(inv),
        Err(why) => {
            not_read(
                &why,
                "the plan below names no key counts and no source keys; run it again where the key vault is reachable",
            );
            None
        }
    };
    let plan = keyshift_core::plan::plan_for(&config, inventory.as_ref(), l.map(lang));
    if common.json {
        print_json(&serde_json::json!({
            "inventoryRead": inventory.is_some(),
            "plan": plan,
        }));
        return Ok(OK);
    }
    outln!("{}\n", plan.summary);
    for r in &plan.risks {
        outln!("risk ({:?}): {}", r.level, r.message);
    }
    for (i, s) in plan.steps.iter().enumerate() {
        outln!("\n{}. {}\n   why: {}", i + 1, s.title, s.why);
        for c in &s.commands {
            outln!("   $ {c}");
        }
    }
    if !plan.rollback.is_empty() {
        outln!("\nIf something goes wrong:");
        for s in &plan.rollback {
            outln!("- {}: {}", s.title, s.commands.join(" && "));
        }
    }
    Ok(OK)
}
