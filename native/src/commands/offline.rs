//! The commands that only need core: `snippet`, `policy`, `plan` (plan also reads the
//! key vault's inventory when it can, to name concrete risks).

use keyshift_core::generate::{Lang, Stage};

use super::{CmdResult, Failure, OK, key_documents_json, key_vault, print_json};
use crate::cli::{Common, LangArg, StageArg};
use crate::settings;

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
        print!("{}", s.code);
    }
    Ok(OK)
}

/// Runs `policy`: the policy document on stdout, the commands on stderr.
pub fn policy(common: &Common) -> CmdResult {
    let config = checked_config(common)?;
    let Some(p) = keyshift_core::policy::policy(&config) else {
        return Err(Failure::usage(
            "no policy to grant: the configuration has no remote target (set [target])",
        ));
    };
    if common.json {
        print_json(&serde_json::to_value(&p).unwrap_or_default());
        return Ok(OK);
    }
    eprintln!("{}", p.title);
    if !p.document.is_empty() {
        println!("{}", p.document);
    }
    for c in p.create_key.iter().chain(&p.grant) {
        eprintln!("# {}\n{}", c.why, c.command);
    }
    for n in &p.notes {
        eprintln!("note: {n}");
    }
    Ok(OK)
}

/// Runs `plan`. The key vault is read when it can be; offline, the plan is generic.
pub async fn plan(common: &Common) -> CmdResult {
    let config = checked_config(common)?;
    let inventory = match settings::load(&common.config) {
        Ok(s) => match key_vault(&s).await {
            Ok(vault) => key_documents_json(&vault, bson::doc! {}, s.uri.expose())
                .await
                .ok()
                .map(|docs| keyshift_core::inventory::analyze(&docs, Some(&config))),
            Err(_) => None,
        },
        Err(_) => None,
    };
    let plan = keyshift_core::plan::plan(&config, inventory.as_ref());
    if common.json {
        print_json(&serde_json::json!({
            "inventoryRead": inventory.is_some(),
            "plan": plan,
        }));
        return Ok(OK);
    }
    eprintln!("{}\n", plan.summary);
    for r in &plan.risks {
        eprintln!("risk ({:?}): {}", r.level, r.message);
    }
    for (i, s) in plan.steps.iter().enumerate() {
        eprintln!("\n{}. {}\n   why: {}", i + 1, s.title, s.why);
        for c in &s.commands {
            eprintln!("   $ {c}");
        }
    }
    if !plan.rollback.is_empty() {
        eprintln!("\nIf something goes wrong:");
        for s in &plan.rollback {
            eprintln!("- {}: {}", s.title, s.commands.join(" && "));
        }
    }
    if inventory.is_none() {
        eprintln!("\n(the key vault was not read: the plan names no concrete key counts)");
    }
    Ok(OK)
}
