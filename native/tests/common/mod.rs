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

/// A plain HTTP/1.1 request to a loopback control endpoint (`http://127.0.0.1:P/path`);
/// returns the body. For the stand-ins' and the fault proxy's control APIs.
pub fn http(method: &str, url: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("a plain http:// URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(host).expect("control endpoint reachable");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").expect("an HTTP reply");
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{method} {url}: {head}"
    );
    body.to_string()
}
