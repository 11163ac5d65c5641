//! A KMS whose TLS certificate does not verify (expired, issued for another host,
//! signed by an authority nobody trusts) is a permanent failure: rewrap and preflight
//! stop at the first attempt, name the check that failed and the tlsOptions to change,
//! and write nothing. The bad endpoints are the world's (tests/services/svc_bad_tls.py),
//! which count every connection they accept: the number of attempts is asserted, not
//! the time taken.

mod common;
mod stress;

use std::time::Instant;

use stress::Seeded;

fn attempts(kind: &str) -> u64 {
    let dir = common::world_var(&common::world(), "KS_BAD_TLS_COUNTS");
    std::fs::read_to_string(std::path::Path::new(&dir).join(format!("{kind}.count")))
        .map(|t| t.trim().parse().unwrap_or(0))
        .unwrap_or(0)
}

/// Points the target's masterKey.endpoint at `endpoint`, with one KMS request in flight
/// at a time: then each attempt is one connection, and a retry would be a second.
fn target_at(s: &Seeded, endpoint: &str) {
    let path = s.dir.join("keyshift.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    let good = common::world_var(&common::world(), "KS_AWS_ENDPOINT");
    let line = toml
        .lines()
        .find(|l| l.starts_with("masterKey = "))
        .unwrap()
        .to_string();
    assert!(line.contains(&good), "{line}");
    let toml = toml
        .replace(&line, &line.replace(&good, endpoint))
        .replace("concurrency = 16", "concurrency = 1");
    std::fs::write(&path, toml).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_does_not_verify_stops_at_the_first_attempt() {
    let world = common::world();
    for (kind, var, says, hint) in [
        ("expired", "KS_BAD_TLS_EXPIRED", "has expired", "renew it"),
        (
            "wrong-host",
            "KS_BAD_TLS_WRONG_HOST",
            "does not name this host",
            "check the endpoint",
        ),
        (
            "untrusted",
            "KS_BAD_TLS_UNTRUSTED",
            "signed by an authority this machine does not trust",
            "tlsCAFile",
        ),
    ] {
        let s = stress::seed("badcert", 8, 4, "aws", false);
        let before = s.all_keys().await;
        target_at(&s, &common::world_var(&world, var));

        let tried = attempts(kind);
        let started = Instant::now();
        let out = s.keyshift(&["rewrap", "--yes", "--json"]);
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{kind}: {stderr}");
        assert!(
            stderr.contains("the TLS certificate of KMS") && stderr.contains(says),
            "{kind}: {stderr}"
        );
        assert!(stderr.contains(hint), "{kind}: {stderr}");
        assert!(!stderr.contains("unreachable after retries"), "{stderr}");
        assert_eq!(
            attempts(kind) - tried,
            1,
            "{kind}: one attempt, never retried"
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["ok"], false, "{doc}");
        assert_eq!(s.all_keys().await, before, "{kind}: nothing written");
        eprintln!("{kind}: rewrap stopped after {took:?}");

        let tried = attempts(kind);
        let started = Instant::now();
        let out = s.keyshift(&["preflight", "--json"]);
        let took = started.elapsed();
        assert_eq!(out.status.code(), Some(1));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let target = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "target aws")
            .unwrap();
        let detail = target["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{kind}: {report}");
        assert!(!detail.contains("DispatchFailure"), "{detail}");
        assert_eq!(attempts(kind) - tried, 1, "{kind}: preflight tried once");
        eprintln!("{kind}: preflight answered after {took:?}");
        let _ = std::fs::remove_dir_all(&s.dir);
    }
}
