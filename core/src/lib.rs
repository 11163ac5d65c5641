//! keyshift-core: the pure heart of keyshift, shared by the CLI and the browser guide.
//!
//! What it is for: everything about a key vault migration that can be decided without
//! I/O — the keyshift.toml model and its validation, driver snippet and policy
//! generation, planning, and key vault analysis — so that the browser and the server
//! never disagree about what is valid or what the plan is.
//!
//! What it is not: it does no I/O of any kind. No files, no network, no clock, no
//! randomness, no async runtime. It builds for `wasm32-unknown-unknown`, and the test
//! command builds it for that target to keep it that way. The native crate is the I/O
//! shell around it; the wasm crate is a thin JavaScript façade over it.
//!
//! Entry points:
//! - [`check_toml`] / [`check_json`] / [`check_value`]: parse and validate, every
//!   [`Diagnostic`] at once; [`validate_local_key_bytes`] for the key file's contents;
//! - [`config`]: the keyshift.toml model ([`Config`]);
//! - [`generate::snippet`]: driver configuration per language and stage;
//! - [`policy::policy`] / [`policy::policy_for`]: least-privilege access on the target
//!   and each KMS source, with the commands to grant, create and revoke it;
//! - [`inventory::analyze`]: key vault documents to an inventory;
//! - [`plan::plan`] / [`plan::plan_for`]: configuration (+ inventory, + language) to
//!   ordered steps, rollback and risks;
//! - [`select::selection`]: the query selecting the keys to rewrap;
//! - [`isolate::Isolation`]: which parts of a refused batch rewrap tries next, and
//!   when a batch's refusals point at the configuration;
//! - [`aws_key::problems`]: what AWS `DescribeKey` says about the target key, judged;
//! - [`kms_rate::RateControl`]: how fast each KMS provider is asked (the `kmsRate`
//!   ceiling, AIMD under throttling);
//! - [`reencrypt::eligible`]: which keys move by AWS KMS `ReEncrypt` (the DEK never
//!   leaves KMS);
//! - [`retry::Backoff`]: how long every retry loop of the shell waits, and when it stops;
//! - [`uri`]: MongoDB connection strings judged offline (malformed, weakening options);
//! - [`rotate`]: the pure part of rotation (replacement key ids, ciphertext headers,
//!   per-value decisions, `$jsonSchema` key id rewriting, partitions).

pub mod audit;
pub mod aws_key;
pub mod config;
pub mod diagnostic;
pub mod generate;
pub mod inventory;
pub mod isolate;
pub mod kms_error;
pub mod kms_rate;
pub mod plan;
pub mod policy;
pub mod reencrypt;
pub mod retry;
pub mod rotate;
pub mod select;
pub mod suggest;
pub mod uri;
pub mod validate;
pub mod version;

pub use config::{Config, Parsed};
pub use diagnostic::{Diagnostic, Severity};
pub use validate::{check_json, check_toml, check_value, validate, validate_local_key_bytes};
