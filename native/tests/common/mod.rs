//! What every integration test needs: the running test world (tests/services/up) and
//! paths in the repository.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("native/ has a parent")
        .to_path_buf()
}

/// The test world's env file (KS_* endpoints), from `tests/services/up`.
pub fn world() -> HashMap<String, String> {
    let path = std::env::var_os("KS_ENV_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tests/services/run/env"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "no test world ({}: {e}); start it with tests/services/up",
            path.display()
        )
    });
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A value of the world's env file, or a panic naming the missing key.
pub fn world_var(world: &HashMap<String, String>, key: &str) -> String {
    world
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("{key} missing from the test world's env file"))
}

/// A MongoDB client for the wire stand-in.
pub async fn mongo_client() -> mongodb::Client {
    let uri = world_var(&world(), "KS_MONGODB_URI");
    mongodb::Client::with_uri_str(&uri)
        .await
        .expect("client for the wire stand-in")
}

/// A name unique to this test run, so tests never share collections.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// The venv's Python (the oracle: PyMongo + pymongocrypt).
pub fn python() -> PathBuf {
    repo_root().join(".venv/bin/python")
}
