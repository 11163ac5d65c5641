//! keyshift: the native CLI's library — everything that does I/O.
//!
//! What it is for: talking to MongoDB (the `mongodb` driver), to libmongocrypt (the
//! `mongocrypt` crate, with crypto hooks from [`crypto_hooks`]), to the KMS providers
//! and to files, to carry out what keyshift-core decides: check, inspect, preflight,
//! rewrap, verify, rollback, rotate, retire, and serving the browser guide.
//!
//! What it is not: the place for decisions that need no I/O. Validation, selection,
//! planning, policies and generation live in keyshift-core and are unit-tested there;
//! this crate gathers facts (key documents, KMS and database answers), asks core, and
//! acts. docs/development.md maps which decision lives where.

#![forbid(unsafe_code)]

pub mod audit;
pub mod aws;
pub mod cli;
pub mod commands;
pub mod credentials;
pub mod crypt;
pub mod crypto_hooks;
pub mod ctx_runner;
pub mod deployment;
pub mod failpoint;
pub mod guide;
pub mod key_id;
pub mod kms_http;
pub mod kms_io;
pub mod kms_pace;
pub mod kms_tls;
pub mod output;
pub mod retry;
pub mod rewrap;
pub mod rotate;
pub mod secret;
pub mod session;
pub mod settings;
