//! Core stays pure: only pure dependencies. Its own code is kept free of I/O, clocks,
//! environment, processes and threads by `cargo clippy` (core/clippy.toml's
//! disallowed-methods and disallowed-types, denied in CI), and the wasm32 build in the
//! test command is the third guard.

/// Dependencies core may have; each does no I/O and no async.
const ALLOWED: &[&str] = &["serde", "serde_json", "toml", "base64", "sha2"];

#[test]
fn dependencies_are_pure() {
    let manifest: toml::Table =
        toml::from_str(include_str!("../Cargo.toml")).expect("core/Cargo.toml parses");
    let deps = manifest["dependencies"].as_table().expect("[dependencies]");
    for name in deps.keys() {
        assert!(
            ALLOWED.contains(&name.as_str()),
            "core depends on `{name}`; is it pure?"
        );
    }
}
