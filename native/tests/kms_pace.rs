//! KMS round trips and quotas, through `keyshift rewrap` as a user runs it: kept-alive
//! connections (counted by the fault proxy's latency model), a KMS that throttles above
//! a rate (the AWS stand-in's `throttle` knob), and `[rewrap] kmsRate` (the stand-in
//! measures the busiest second). The oracle reads every key written.
//!
//! The tests share the AWS stand-in's counters and throttle, so they take turns.

mod common;
mod stress;

use std::sync::Mutex;

static AWS_STAND_IN: Mutex<()> = Mutex::new(());

fn aws_control(path: &str, body: &str) -> serde_json::Value {
    let w = common::world();
    let url = format!("{}/{path}", common::world_var(&w, "KS_AWS_CONTROL_URL"));
    serde_json::from_str(&stress::https_control(&url, body)).unwrap()
}

fn rewrap(seeded: &stress::Seeded) -> serde_json::Value {
    let args = ["rewrap", "--yes", "--json"];
    let out = seeded.keyshift(&args);
    stress::json_of(&args, &out, 0)
}

/// `kmsRate = N` in the seeded keyshift.toml's [rewrap].
fn set_kms_rate(seeded: &stress::Seeded, rate: u32) {
    let path = seeded.dir.join("keyshift.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("[rewrap]\n"));
    std::fs::write(
        &path,
        text.replace("[rewrap]\n", &format!("[rewrap]\nkmsRate = {rate}\n")),
    )
    .unwrap();
}

#[test]
fn kms_connections_are_kept_alive_so_a_request_costs_one_round_trip() {
    let _turn = AWS_STAND_IN.lock().unwrap_or_else(|e| e.into_inner());
    let w = common::world();
    let control = common::world_var(&w, "KS_PROXY_CONTROL");
    let seeded = stress::seed("kmsconn", 60, 10, "aws", true);
    aws_control("reset", "{}");
    common::http("POST", &format!("{control}/counters/reset"), "{}");
    common::http(
        "POST",
        &format!("{control}/faults"),
        r#"{"upstream": "aws", "replace": true, "rtt_ms": 10}"#,
    );
    let report = rewrap(&seeded);
    let proxy: serde_json::Value =
        serde_json::from_str(&common::http("GET", &format!("{control}/counters"), "")).unwrap();
    common::http("POST", &format!("{control}/clear"), "{}");
    assert_eq!(report["rewrapped"], 60, "{report}");

    let counters = &aws_control("state", "")["counters"];
    let requests =
        counters["Encrypt"].as_u64().unwrap_or(0) + counters["Decrypt"].as_u64().unwrap_or(0);
    let connections = proxy["aws"]["connections"].as_u64().unwrap();
    let round_trips = proxy["aws"]["round_trips"].as_u64().unwrap();
    eprintln!(
        "{requests} KMS requests over {connections} connections, {round_trips} round trips \
         ({:.2} per request)",
        round_trips as f64 / requests as f64
    );
    // A wrap and a proof per key.
    assert!(requests >= 120, "{counters}");
    // At most one connection per request in flight (concurrency 16), each costing
    // a TCP and a TLS round trip once; every request then costs one.
    assert!(
        connections <= 16,
        "{connections} connections for {requests} requests"
    );
    assert!(
        round_trips <= requests + 2 * connections,
        "{round_trips} round trips for {requests} requests over {connections} connections"
    );
    let read = seeded.oracle_reads("aws");
    assert!(read.is_ok(), "{read:?}");
}

#[test]
fn a_kms_throttling_below_keyshifts_pace_slows_it_down_and_the_run_completes() {
    let _turn = AWS_STAND_IN.lock().unwrap_or_else(|e| e.into_inner());
    let seeded = stress::seed("kmsthrottle", 150, 10, "aws", false);
    aws_control("reset", "{}");
    aws_control("throttle", r#"{"rate": 40}"#);
    let report = rewrap(&seeded);
    let state = aws_control("state", "");
    aws_control("reset", "{}");
    assert_eq!(report["rewrapped"], 150, "{report}");
    assert!(
        report["notMoved"].as_array().unwrap().is_empty(),
        "{report}"
    );

    let throttled = state["counters"]["Throttled"].as_u64().unwrap_or(0);
    let accepted = state["counters"]["Encrypt"].as_u64().unwrap_or(0)
        + state["counters"]["Decrypt"].as_u64().unwrap_or(0);
    eprintln!(
        "throttled {throttled}, accepted {accepted}, {}",
        state["rate"]
    );
    assert!(throttled > 0, "the limit never bit: {state}");
    assert_eq!(
        report["kmsThrottled"], throttled,
        "keyshift saw every throttled answer"
    );
    // The pace settles under the limit instead of hammering it: a few throttled
    // answers per cut, not one per request.
    assert!(
        throttled * 4 < accepted,
        "{throttled} throttled answers for {accepted} accepted requests"
    );
    let read = seeded.oracle_reads("aws");
    assert!(read.is_ok(), "{read:?}");
}

#[test]
fn a_configured_kms_rate_is_never_exceeded() {
    let _turn = AWS_STAND_IN.lock().unwrap_or_else(|e| e.into_inner());
    let seeded = stress::seed("kmsrate", 100, 10, "aws", false);
    set_kms_rate(&seeded, 25);
    aws_control("reset", "{}");
    let report = rewrap(&seeded);
    let state = aws_control("state", "");
    assert_eq!(report["rewrapped"], 100, "{report}");
    assert_eq!(report["kmsThrottled"], 0, "{report}");
    let busiest = state["rate"]["maxOfferedPerSecond"].as_u64().unwrap();
    eprintln!("busiest second at the KMS: {busiest} requests (kmsRate 25)");
    // Requests leave at least 1/25 s apart; a second at the server holds at most 26,
    // and arrival jitter on a loaded machine may bunch one or two more.
    assert!(busiest <= 28, "{}", state["rate"]);
    assert!(
        busiest >= 10,
        "too few requests to mean anything: {}",
        state["rate"]
    );
    let read = seeded.oracle_reads("aws");
    assert!(read.is_ok(), "{read:?}");
}

#[test]
fn aws_to_aws_moves_by_one_reencrypt_per_key_and_the_oracle_reads_every_key() {
    let _turn = AWS_STAND_IN.lock().unwrap_or_else(|e| e.into_inner());
    let w = common::world();
    let seeded = stress::seed("kmsreenc", 40, 10, "aws", false);
    aws_control("reset", "{}");
    let first = rewrap(&seeded);
    assert_eq!(first["rewrapped"], 40, "{first}");
    assert_eq!(
        first["reEncrypted"], 0,
        "local keys cannot be re-encrypted by KMS"
    );

    // A second AWS key in the same region and account: the next target.
    let created = aws_control("create", "{}");
    let new_arn = created["arn"].as_str().unwrap();
    let path = seeded.dir.join("keyshift.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let old_arn = common::world_var(&w, "KS_AWS_KEY_ARN");
    assert!(text.contains(&old_arn));
    std::fs::write(&path, text.replace(&old_arn, new_arn)).unwrap();

    aws_control("reset", "{}");
    let second = rewrap(&seeded);
    let counters = aws_control("state", "")["counters"].clone();
    assert_eq!(second["rewrapped"], 40, "{second}");
    assert_eq!(second["reEncrypted"], 40, "{second}");
    // One ReEncrypt per key, no Encrypt; the proofs' Decrypts (the new wrapping and
    // the old, per key) plus the source probe's one.
    assert_eq!(counters["ReEncrypt"], 40, "{counters}");
    assert_eq!(
        counters
            .get("Encrypt")
            .and_then(|v| v.as_u64())
            .unwrap_or(0),
        0,
        "{counters}"
    );
    let decrypts = counters["Decrypt"].as_u64().unwrap();
    assert!((80..=82).contains(&decrypts), "{counters}");

    let keys = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(seeded.all_keys());
    assert_eq!(keys.len(), 40);
    for k in &keys {
        assert_eq!(
            k.get_document("masterKey").unwrap().get_str("key").unwrap(),
            new_arn
        );
    }
    let read = seeded.oracle_reads("aws");
    assert!(read.is_ok(), "{read:?}");
}
