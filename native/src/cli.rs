//! The command line: what each command takes, with help that answers the question.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Move MongoDB client-side encryption key vaults (CSFLE and Queryable Encryption) from
/// a local master key to a KMS, and between KMS keys, by rewrapping each data key:
/// no document is decrypted, applications keep running, every new wrapping is proven
/// and backed up before it is written.
///
/// Typical order: check, plan, preflight, rewrap --dry-run, rewrap, verify.
/// Exit codes: 0 done; 1 failed, nothing unsafe written; 2 bad usage or invalid
/// config; 3 verification found keys not under the target or unreadable.
#[derive(Parser, Debug)]
#[command(name = "keyshift", about, long_about)]
pub struct Cli {
    /// Verbose logs on stderr (-v info, -vv debug); never secrets.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The configuration file and output form, shared by most commands.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// keyshift.toml to use; relative paths inside it are relative to its directory.
    #[arg(short = 'c', long = "config", default_value = "keyshift.toml")]
    pub config: PathBuf,
    /// Print one JSON document on stdout instead of text for people on stderr.
    #[arg(long)]
    pub json: bool,
}

/// Snippet language (`--lang`).
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum LangArg {
    /// Python (PyMongo).
    Python,
    /// Node.js (mongodb package).
    Node,
    /// Java (sync driver).
    Java,
    /// Go (mongo-go-driver).
    Go,
    /// C# (MongoDB.Driver).
    Csharp,
    /// Rust (mongodb crate).
    Rust,
    /// mongosh.
    Mongosh,
}

/// Deployment stage of a snippet.
#[derive(ValueEnum, Debug, Clone, Copy, Default)]
pub enum StageArg {
    /// Old and new providers together, while keys move.
    #[default]
    Transition,
    /// Only the target provider, once every key is moved and verified.
    Final,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate keyshift.toml offline: every problem, with the field and what to do.
    Check(Common),
    /// Driver code for your applications (kmsProviders, key vault, TLS, new data keys).
    Snippet {
        #[command(flatten)]
        /// Config and output.
        common: Common,
        /// Language of the snippet.
        #[arg(long, value_enum)]
        lang: LangArg,
        /// transition (old and new providers) or final (target only).
        #[arg(long, value_enum, default_value_t)]
        stage: StageArg,
    },
    /// The least-privilege access the move needs: on the target key (for the
    /// applications and keyshift) and, separately, decrypt on each KMS source; with the
    /// commands to create the key, grant and later revoke. Names the source keys when
    /// the key vault can be read.
    Policy {
        #[command(flatten)]
        /// Config and output.
        common: Common,
        /// Print only one policy document, for a file the grant command reads:
        /// `target`, or a source provider's name (e.g. `aws`, `aws:legacy`).
        #[arg(long, value_name = "WHICH")]
        document: Option<String>,
    },
    /// Count the key vault's keys by provider and master key, and flag anomalies and
    /// setups that will fail later (each with a code and a hint; exit 0 all the same).
    Inspect {
        #[command(flatten)]
        /// Config and output.
        common: Common,
        /// Also ask the KMS, read-only, whether each master key can still unwrap: AWS
        /// DescribeKey (disabled, pending deletion); Azure, GCP and KMIP keys are listed
        /// as not checked.
        #[arg(long)]
        kms: bool,
    },
    /// The ordered plan for this move: steps, exact commands, risks (reads the key vault
    /// when it can, to name key counts and source keys).
    Plan {
        #[command(flatten)]
        /// Config and output.
        common: Common,
        /// Your applications' language: the snippet commands in the plan name it.
        #[arg(long, value_enum)]
        lang: Option<LangArg>,
    },
    /// Prove the source and target work (unwrap a sample, wrap and unwrap a probe);
    /// changes nothing.
    Preflight(Common),
    /// Rewrap every selected key under the target master key: backup first, each new
    /// wrapping proven, every write compare-and-swap. Safe to rerun after any
    /// interruption.
    Rewrap {
        #[command(flatten)]
        /// Config and output.
        common: Common,
        /// Do everything (KMS round trips and proofs included) but write.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation (needed when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Check that every selected key is under the target and readable through the target
    /// provider alone (exit 3 otherwise, listing the keys).
    Verify {
        #[command(flatten)]
        /// Config and output.
        common: Common,
        /// Unwrap only N keys chosen at random (every key is still checked to be under
        /// the target); by default every key is unwrapped.
        #[arg(long, value_name = "N")]
        sample: Option<u64>,
    },
    /// Serve the browser guide on 127.0.0.1: it writes keyshift.toml, driver code and
    /// the policy as you type, judging every field exactly as `keyshift check` does.
    Guide {
        /// Port on 127.0.0.1 (the guide keeps your form per address, so keep it stable).
        #[arg(long, default_value_t = 7468)]
        port: u16,
        /// Do not open a browser; just print the address.
        #[arg(long)]
        no_open: bool,
    },
    /// Replace DEKs with new ones under the target master key and re-encrypt every
    /// field under them (for a master key that may have been exposed): backups first,
    /// each new key proven, every write compare-and-swap, validators rewritten, the new
    /// schemaMap printed. Safe to rerun; `--partition I/N` splits the work between N
    /// workers (e.g. a Kubernetes Indexed Job: --partition "$JOB_COMPLETION_INDEX/3").
    Rotate {
        #[command(flatten)]
        /// Config and output.
        common: Common,
        /// Scan every collection of the deployment instead of [rotate] collections
        /// (not admin, local, config, system.*, the key vault, keyshift's own).
        #[arg(long)]
        all_collections: bool,
        /// This worker's share, I/N (I 0-based: 0..N-1).
        #[arg(long, value_name = "I/N")]
        partition: Option<String>,
        /// Do everything (new keys made and proven, values re-encrypted) but write.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation (needed when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Delete the DEKs rotate replaced, after verifying that no collection of the
    /// deployment (all of them, whatever [rotate] collections says) and no validator
    /// refers to them (exit 3 otherwise: run rotate again). Backup first; keys that a
    /// Queryable Encryption collection uses are never deleted.
    Retire {
        #[command(flatten)]
        /// Config and output.
        common: Common,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Restore keys from a rewrap backup (compare-and-swap; the current state is backed
    /// up first).
    Rollback {
        #[command(flatten)]
        /// Config and output.
        common: Common,
        /// The backup file rewrap printed.
        #[arg(long)]
        backup: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// The audit trail: every change keyshift made to the key vault, hash-chained
    /// (docs/audit.md).
    Audit {
        /// What to do with it.
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Print a shell completion script: `keyshift completions bash >
    /// /etc/bash_completion.d/keyshift` (zsh: into a directory of $fpath as _keyshift).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `keyshift man > keyshift.1; man ./keyshift.1`.
    Man,
}

/// `keyshift audit` actions.
#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Check the log's hash chain: exit 0 when intact, 3 naming the first line where a
    /// record was edited, deleted or reordered.
    Verify {
        #[command(flatten)]
        /// Config (to find the log when FILE is not given) and output.
        common: Common,
        /// The audit log (default: [audit] file, else audit.jsonl in the backup
        /// directory).
        file: Option<PathBuf>,
        /// A head hash an earlier run printed: also check the chain still holds that
        /// record (proves nothing up to it was changed or cut off).
        #[arg(long, value_name = "HASH")]
        head: Option<String>,
    },
    /// Summarise the log run by run: who, when, which command, its outcome, keys by
    /// outcome and those that need attention.
    Show {
        #[command(flatten)]
        /// Config (to find the log when FILE is not given) and output.
        common: Common,
        /// The audit log (default: as for verify).
        file: Option<PathBuf>,
    },
}

impl Command {
    /// Whether the command was asked for `--json` (one JSON document on stdout, even
    /// when it fails).
    pub fn json(&self) -> bool {
        match self {
            Command::Check(c) | Command::Preflight(c) => c.json,
            Command::Inspect { common, .. }
            | Command::Snippet { common, .. }
            | Command::Policy { common, .. }
            | Command::Plan { common, .. }
            | Command::Rewrap { common, .. }
            | Command::Verify { common, .. }
            | Command::Rotate { common, .. }
            | Command::Retire { common, .. }
            | Command::Rollback { common, .. } => common.json,
            Command::Audit { action } => match action {
                AuditAction::Verify { common, .. } | AuditAction::Show { common, .. } => {
                    common.json
                }
            },
            Command::Guide { .. } | Command::Completions { .. } | Command::Man => false,
        }
    }
}
