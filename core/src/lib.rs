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

pub mod version;
