//! Planning: from a configuration (and, when known, a key vault inventory) to an
//! ordered list of steps, each with why and the exact commands, plus the rollback path
//! and the risks.
//!
//! Two shapes of plan:
//! - **rewrap** (the normal case): each DEK's keyMaterial is re-encrypted under the
//!   target; DEKs and data stay as they are, applications keep working throughout
//!   (transition stage), and the local key is retired after a waiting period.
//! - **rotate**, when a source local key is marked `exposed = true`: whoever holds the
//!   exposed key can unwrap every DEK it ever wrapped, from any copy or backup of the
//!   key vault, so rewrapping alone protects nothing. New DEKs are created under the
//!   target, data is re-encrypted with them, and the old DEKs are deleted.

use serde::Serialize;

use crate::config::{Config, MasterKey, Provider, ProviderKind, SecretRef};
use crate::diagnostic::codes;
use crate::generate::Lang;
use crate::inventory::{AnomalyKind, Inventory};
use crate::policy::policy_for;
use crate::validate::{azure, check_value};

/// Days to keep the local key and backups after the final stage is deployed, so that a
/// late problem can still be rolled back.
pub const RETIRE_AFTER_DAYS: u32 = 30;

/// Which kind of move the plan performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Rewrap DEKs under the target master key.
    Rewrap,
    /// Rotate DEKs and re-encrypt data (the source key may be exposed).
    Rotate,
}

/// How serious a risk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Must be resolved before the move.
    Blocker,
    /// Understand it before the move.
    Warning,
    /// Good to know.
    Info,
}

/// A risk the plan found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Risk {
    /// Stable identifier, e.g. `unopenable-keys`.
    pub id: &'static str,
    /// How serious.
    pub level: Level,
    /// What and what to do.
    pub message: String,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Stable identifier, e.g. `rewrap-dry-run`.
    pub id: &'static str,
    /// Short title.
    pub title: String,
    /// Why the step is there.
    pub why: String,
    /// Exact commands, in order (placeholders in UPPER_CASE).
    pub commands: Vec<String>,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Rewrap or rotate.
    pub mode: Mode,
    /// One paragraph for people.
    pub summary: String,
    /// Ordered steps.
    pub steps: Vec<Step>,
    /// How to undo, should a step go wrong.
    pub rollback: Vec<Step>,
    /// Risks, most serious first.
    pub risks: Vec<Risk>,
}

fn step(id: &'static str, title: &str, why: &str, commands: Vec<String>) -> Step {
    Step {
        id,
        title: title.to_string(),
        why: why.to_string(),
        commands,
    }
}

fn deploy_final(lang: &str) -> Step {
    step(
        "deploy-final",
        "Merge the final KMS settings into every application",
        "Applications now need only the target provider: replace the transition KMS settings with these, the same merge and nothing else changed; new DEKs are created under the target.",
        vec![format!("keyshift snippet --lang {lang} --stage final")],
    )
}

/// How to get rid of each local source key: `shred` its file, or remove the variable
/// that holds it. (name, command-or-instruction) per local source.
fn local_key_disposal(config: &Config) -> Vec<String> {
    config
        .source_providers()
        .into_iter()
        .filter_map(|name| match config.kms_providers.get(name) {
            Some(Provider::Local(l)) => Some(match l.key.as_deref().map(SecretRef::parse) {
                Some(Ok(SecretRef::File(path))) => format!("shred -u {path}"),
                Some(Ok(SecretRef::Env(var))) => format!(
                    "# remove {var} (the `{name}` master key) from the secret store and every service definition that sets it"
                ),
                _ => format!("# destroy the `{name}` master key wherever it is kept"),
            }),
            _ => None,
        })
        .collect()
}

fn risks(config: &Config, inventory: Option<&Inventory>, mode: Mode) -> Vec<Risk> {
    let mut out = Vec::new();
    let mut add = |id, level, message: String| out.push(Risk { id, level, message });
    let errors = check_value(&config.to_json_value())
        .diagnostics
        .into_iter()
        .filter(|d| d.is_error())
        .count();
    if errors > 0 {
        add(
            "invalid-config",
            Level::Blocker,
            format!(
                "keyshift.toml has {errors} error(s); `keyshift check` lists them. Fix them before anything else."
            ),
        );
    }
    if mode == Mode::Rotate {
        add(
            "exposed-key",
            Level::Warning,
            "The local key is marked exposed. Rewrapping alone does NOT protect data: anyone holding the old key can unwrap the DEKs from any copy or backup of the key vault and decrypt the data. The plan therefore creates new DEKs under the target and re-encrypts every encrypted field.".into(),
        );
    }
    if config.target_kind() == Some(ProviderKind::Local) {
        add(
            "target-local",
            Level::Warning,
            "The target is a local key: the master key still lives on your machines.".into(),
        );
    }
    let Some(inv) = inventory else {
        add(
            "no-inventory",
            Level::Info,
            "The key vault has not been inspected: run `keyshift inspect` to see how many keys move and whether any are under providers this configuration cannot open.".into(),
        );
        return out;
    };
    let unopenable = inv
        .anomalies
        .iter()
        .filter(|a| {
            matches!(
                a.kind,
                AnomalyKind::UnconfiguredProvider | AnomalyKind::UnknownProvider
            )
        })
        .count();
    if unopenable > 0 {
        add(
            "unopenable-keys",
            Level::Blocker,
            format!(
                "{unopenable} key(s) are under providers kmsProviders does not configure: add those providers (they stay in the transition stage), or exclude the keys with rewrap.filter."
            ),
        );
    }
    let broken = inv
        .anomalies
        .iter()
        .filter(|a| {
            matches!(
                a.kind,
                AnomalyKind::NoMasterKey
                    | AnomalyKind::NoKeyMaterial
                    | AnomalyKind::KeyMaterialSize
                    | AnomalyKind::NotADocument
                    | AnomalyKind::UnknownField
                    | AnomalyKind::MalformedField
            )
        })
        .count();
    if broken > 0 {
        add(
            "damaged-keys",
            Level::Warning,
            format!(
                "{broken} key document(s) are damaged (no masterKey, no or impossible keyMaterial, fields libmongocrypt refuses): they cannot be rewrapped and will be reported; `keyshift inspect` names them."
            ),
        );
    }
    if inv.disabled > 0 {
        add(
            "disabled-keys",
            Level::Warning,
            format!(
                "{} key(s) have a non-zero status (libmongocrypt writes 0): find out who set it before rewrapping them.",
                inv.disabled
            ),
        );
    }
    let unpinned: usize = inv
        .lints
        .iter()
        .filter(|l| l.code == codes::INV_AZURE_UNPINNED)
        .map(|l| l.keys)
        .sum();
    if unpinned > 0 {
        add(
            "azure-unpinned-keys",
            Level::Warning,
            format!(
                "{unpinned} key(s) are under an Azure master key without keyVersion: they become unreadable once that key rotates. `keyshift inspect` names the keys and how to pin the version ({}).",
                codes::INV_AZURE_UNPINNED
            ),
        );
    }
    if inv.has(AnomalyKind::DuplicateAltName) {
        add(
            "duplicate-alt-names",
            Level::Warning,
            "Some keyAltNames are shared by several keys: encryption by alt name is ambiguous. Rewrap does not change this; fix it separately.".into(),
        );
    }
    let sources: Vec<&String> = inv
        .by_provider
        .keys()
        .filter(|p| config.target.as_ref().is_none_or(|t| &t.provider != *p))
        .collect();
    if sources.len() > 1 {
        add(
            "mixed-providers",
            Level::Warning,
            format!(
                "Keys are under several providers ({}): every one must stay configured in the transition stage until all keys are moved.",
                sources
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    if inv.total == 0 {
        add(
            "empty-key-vault",
            Level::Info,
            "The key vault is empty: nothing to move. Deploy the final stage so new DEKs are created under the target.".into(),
        );
    } else if inv.under_target == Some(inv.total) {
        add(
            "already-current",
            Level::Info,
            "Every key is already under the target: the rewrap has nothing to do; verify, then deploy the final stage.".into(),
        );
    }
    out.sort_by_key(|r| r.level);
    out
}

/// Builds the plan. Works on any configuration (invalid ones get a blocker risk), so
/// the browser can show a plan while the user types.
pub fn plan(config: &Config, inventory: Option<&Inventory>) -> Plan {
    plan_for(config, inventory, None)
}

/// As [`plan`], with the applications' language when known (the snippet commands name
/// it instead of `LANG`).
pub fn plan_for(config: &Config, inventory: Option<&Inventory>, lang: Option<Lang>) -> Plan {
    let lang = lang.map_or("LANG", Lang::as_str);
    let mode = if config.source_exposed() {
        Mode::Rotate
    } else {
        Mode::Rewrap
    };
    let target = config
        .target
        .as_ref()
        .map_or("TARGET", |t| t.provider.as_str());
    let backup_dir = config.rewrap_or_default().backup_dir().to_string();
    let pol = policy_for(config, inventory);
    let mut steps = Vec::new();
    if let Some(p) = &pol {
        if !p.create_key.is_empty() {
            steps.push(step(
                "create-cmk",
                "Create the target master key",
                "Skip if the key exists. The target must be a symmetric encryption key (AWS, GCP), an RSA key (Azure) or a KMIP object the client certificate may use.",
                p.create_key.iter().map(|c| c.command.clone()).collect(),
            ));
        }
        let grant: Vec<String> = p.grant.iter().map(|c| c.command.clone()).collect();
        steps.push(step(
            "grant",
            "Grant least-privilege access to the target key",
            "keyshift and the applications need wrap and unwrap on exactly this key, nothing more (`keyshift policy` explains each grant).",
            grant,
        ));
        if !p.sources.is_empty() {
            steps.push(step(
                "grant-source",
                "Grant decrypt on the source key(s)",
                "The move unwraps every DEK with its old master key, so keyshift's identity needs decrypt (unwrap) there, and nothing else; the applications keep it until the final stage.",
                p.sources
                    .iter()
                    .flat_map(|s| s.grant.iter().map(|c| c.command.clone()))
                    .collect(),
            ));
        }
    }
    if let Some(t) = &config.target
        && let MasterKey::Azure(mk) = &t.master_key
        && mk.key_version.is_none()
    {
        steps.push(step(
            "pin-key-version",
            "Pin the target key's version",
            &format!(
                "{} Set target.masterKey.keyVersion to the version this prints (the last path segment of the key id) before the first rewrap, so every DEK is wrapped under, and names, that exact version (KS-AZ-008).",
                azure::UNPINNED_MESSAGE
            ),
            vec![azure::current_version_command(
                mk.key_vault_endpoint.as_deref(),
                mk.key_name.as_deref(),
            )],
        ));
    }
    steps.push(step(
        "check",
        "Validate keyshift.toml",
        "Catches typos, literal secrets and malformed key identifiers offline, before anything touches a server.",
        vec!["keyshift check".into()],
    ));
    steps.push(step(
        "deploy-transition",
        "Merge the transition KMS settings into every application",
        "Each application keeps its own encryption settings (schemaMap / encryptedFieldsMap, bypass setting, crypt_shared or mongocryptd) and takes only keyshift's kmsProviders, KMS TLS options and key vault namespace through the snippet's merge function; with both the old and the new provider it reads every key, whichever master key wraps it, during and after the move. The snippet's header names the driver versions it needs (docs/drivers.md).",
        vec![format!("keyshift snippet --lang {lang} --stage transition")],
    ));
    steps.push(step(
        "preflight",
        "Prove both providers work",
        "Unwraps with the source and wraps and unwraps with the target (AWS: key enabled, symmetric, ENCRYPT_DECRYPT, right region), changing nothing.",
        vec!["keyshift preflight".into()],
    ));
    match mode {
        Mode::Rewrap => {
            steps.push(step(
                "rewrap-dry-run",
                "Dry run",
                "Does everything but write, KMS round trips included, so permission or network problems show up now.",
                vec!["keyshift rewrap --dry-run".into()],
            ));
            steps.push(step(
                "rewrap",
                "Rewrap the DEKs under the target",
                "Backs up every key it will touch, proves each new wrapping decrypts before writing it, and writes with compare-and-swap. A rerun after any interruption converges.",
                vec!["keyshift rewrap --yes".into()],
            ));
        }
        Mode::Rotate => {
            let listed = config.rotate.as_ref().and_then(|r| r.collections.as_ref());
            let (scope, scanned) = match listed {
                Some(list) => (
                    "",
                    format!(
                        "Scans the {} collection(s) in [rotate] collections: {}.",
                        list.len(),
                        list.join(", ")
                    ),
                ),
                None => (
                    " --all-collections",
                    "Scans every collection of the deployment (--all-collections); list them in [rotate] collections to narrow it.".to_string(),
                ),
            };
            steps.push(step(
                "rotate-dry-run",
                "Dry run of the rotation",
                &format!("Creates and proves the new DEKs in memory and decrypts and re-encrypts every value under an old DEK, writing nothing: shows which collections, how many values and which validators will change. {scanned}"),
                vec![format!("keyshift rotate{scope} --dry-run")],
            ));
            steps.push(step(
                "rotate",
                "Create new DEKs under the target and re-encrypt the data",
                "Rewrapping does not help when the old key may be known to someone else: the data must be encrypted with DEKs that key never wrapped. Backs up the old keys, creates one replacement per old DEK, rewrites the $jsonSchema validators, and re-encrypts every value with compare-and-swap; a rerun after any interruption converges. Large collections can be split between N workers running at once with --partition I/N (I from 0 to N-1), e.g. a Kubernetes Indexed Job running `keyshift rotate --yes --partition \"$JOB_COMPLETION_INDEX/N\"`.",
                vec![format!("keyshift rotate{scope} --yes")],
            ));
            steps.push(step(
                "schema-map",
                "Give applications the new schemaMap",
                "rotate prints the rewritten schemaMap (namespace to $jsonSchema; `--json` gives it as \"schemaMap\"): applications that configure one client-side must name the new DEKs too, or they keep encrypting new values under the old ones.",
                vec![format!("keyshift rotate{scope} --dry-run --json")],
            ));
        }
    }
    match mode {
        Mode::Rewrap => {
            steps.push(step(
                "verify",
                "Verify",
                "Every selected key is under the target and decrypts; exit code 3 lists any that are not.",
                vec!["keyshift verify".into()],
            ));
            steps.push(deploy_final(lang));
            let local = local_key_disposal(config);
            if !local.is_empty() {
                let mut commands = vec![format!(
                    "keyshift verify   # again, after {RETIRE_AFTER_DAYS} days"
                )];
                commands.extend(local);
                steps.push(step(
                    "retire-local-key",
                    "Retire the local key after the waiting period",
                    &format!("Keep the local key and the backups in {backup_dir} for {RETIRE_AFTER_DAYS} days so a late problem can still be rolled back; then remove the local provider from keyshift.toml and destroy the key and the backups (the backups are wrapped by the local key)."),
                    commands,
                ));
            }
            let revoke: Vec<String> = pol
                .as_ref()
                .map(|p| {
                    p.sources
                        .iter()
                        .flat_map(|s| s.revoke.iter().map(|c| c.command.clone()))
                        .collect()
                })
                .unwrap_or_default();
            if !revoke.is_empty() {
                let mut commands = vec![format!(
                    "keyshift verify   # again, after {RETIRE_AFTER_DAYS} days"
                )];
                commands.extend(revoke);
                steps.push(step(
                    "retire-source-grant",
                    "Revoke the source grant after the waiting period",
                    &format!("Keep decrypt on the source key(s) and the backups in {backup_dir} for {RETIRE_AFTER_DAYS} days so a late problem can still be rolled back (the backups are wrapped by the source keys); then remove the source provider from keyshift.toml, revoke the grant and disable the old key(s). Schedule a key's deletion only when nothing else uses it."),
                    commands,
                ));
            }
        }
        Mode::Rotate => {
            steps.push(step(
                "verify",
                "Verify with the official driver",
                "With a client that has only the target provider (PyMongo or your application's driver, final-stage configuration), read a sample of every rotated collection: every field decrypts to the same value. retire then checks the rest itself.",
                vec!["keyshift snippet --lang python --stage final   # a client holding only the target provider".into()],
            ));
            steps.push(step(
                "retire",
                "Retire the old DEKs",
                "Verifies that every replacement unwraps through the target alone and that no validator and no value in any deployment using the key vault still refers to an old DEK (otherwise exit 3: rerun keyshift rotate), backs the old DEKs up, moves their keyAltNames to the replacements and deletes them. It refuses until [retire] lists the other deployments using this key vault and says allDeploymentsListed = true. Applications keep the transition configuration until then.",
                vec!["keyshift retire --yes".into()],
            ));
            steps.push(deploy_final(lang));
            steps.push(step(
                "destroy-exposed-key",
                "Destroy the exposed key",
                &format!("The old DEKs protect nothing now and only help whoever holds the exposed key: once the final stage is deployed, remove the local provider from keyshift.toml and destroy the key and the backups in {backup_dir} wrapped by it."),
                local_key_disposal(config),
            ));
        }
    }
    let rollback = if mode == Mode::Rotate {
        vec![
            step(
                "rollback-rotate",
                "Resume rather than undo",
                "Until retire, nothing is lost: the old DEKs stay in the key vault, every value is readable under its old or its new key by applications on the transition configuration, and a stopped or failed rotate continues where it was when rerun (values already under a new key are skipped).",
                vec!["keyshift rotate --yes".into()],
            ),
            step(
                "rollback-retire",
                "Put back a retired key",
                &format!(
                    "retire backs up every old key in {backup_dir}/retire-RUN.jsonl before it changes or deletes it, and puts back by itself a key that a value written meanwhile needs. To restore one by hand, insert its document from that file into the key vault (docs/rotate.md, Troubleshooting)."
                ),
                vec![],
            ),
        ]
    } else {
        vec![
            step(
                "rollback-keys",
                "Restore the previous wrappings",
                "Puts back the keyMaterial and masterKey saved before the first write, compare-and-swap, so keys changed since are left alone and reported.",
                vec![format!(
                    "keyshift rollback --backup {backup_dir}/BACKUP_FILE --yes"
                )],
            ),
            step(
                "rollback-apps",
                "Keep (or put back) the transition KMS settings",
                "Applications with both providers read keys under either wrapping, so they keep working while you investigate.",
                vec![format!("keyshift snippet --lang {lang} --stage transition")],
            ),
        ]
    };
    let moving = inventory.map(|i| i.not_under_target());
    let summary = match (mode, moving) {
        (Mode::Rewrap, Some(n)) => format!(
            "Rewrap {n} DEK(s) under `{target}` without decrypting any data; applications keep working throughout."
        ),
        (Mode::Rewrap, None) => format!(
            "Rewrap the DEKs under `{target}` without decrypting any data; applications keep working throughout."
        ),
        (Mode::Rotate, _) => format!(
            "The local key may be exposed: rewrapping alone would not protect the data. Create new DEKs under `{target}`, re-encrypt the data with them, then delete the old DEKs and destroy the key."
        ),
    };
    Plan {
        mode,
        summary,
        steps,
        rollback,
        risks: risks(config, inventory, mode),
    }
}
