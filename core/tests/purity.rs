//! Core stays pure: only pure dependencies, and no I/O, clock, randomness or threads in
//! its sources (the wasm32 build in the test command is the other half of this guard).

use std::path::{Path, PathBuf};

/// Dependencies core may have; each does no I/O and no async.
const ALLOWED: &[&str] = &["serde", "serde_json", "toml", "base64", "sha2"];

/// What pure code must not touch. Generated code is text inside string literals, so
/// lines holding a `"` are not judged.
const FORBIDDEN: &[&str] = &[
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
    "std::thread",
    "SystemTime",
    "Instant::now",
    "tokio",
    "async fn",
    "rand::",
];

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

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn sources_do_no_io() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 10);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.contains('"') || line.trim_start().starts_with("//") {
                continue;
            }
            for f in FORBIDDEN {
                assert!(
                    !line.contains(f),
                    "{}:{}: `{f}` in core",
                    file.display(),
                    i + 1
                );
            }
        }
    }
}
