//! DESIGN.md promise 8 under fire: rewrap through the fault proxy with transient faults
//! on the target KMS (resets, stalls past the timeout, HTTP 500/503, throttling)
//! completes, and the oracle — not keyshift's own report — proves every key it wrote.

mod common;
mod stress;

use std::collections::HashMap;
use std::time::Duration;

use bson::spec::BinarySubtype;
use bson::{Binary, doc};
use keyshift::kms_io::KmsIo;
use keyshift::kms_tls::{KmsTls, TlsOptions};
use keyshift::rewrap::{self, Job};
use keyshift::secret::SecretDoc;
use keyshift::session::Session;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrap_completes_through_transient_kms_faults() {
    let w = common::world();
    let v = |k: &str| common::world_var(&w, k);
    let seeded = stress::seed("faults", 60, 30, "aws", true);
    let (dir, key_vault_ns) = (&seeded.dir, &seeded.key_vault_ns);

    let control = v("KS_PROXY_CONTROL");
    common::http("POST", &format!("{control}/counters/reset"), "{}");
    common::http(
        "POST",
        &format!("{control}/faults"),
        r#"{"upstream": "aws", "replace": true, "seed": 7, "max_consecutive": 2,
            "reset": 0.05, "stall": 0.02, "stall_ms": 0, "http500": 0.05, "http503": 0.04, "throttle": 0.04}"#,
    );

    let (kv_db, kv_coll) = key_vault_ns.split_once('.').unwrap();
    let local = std::fs::read(dir.join("master-key.bin")).unwrap();
    let job = Job {
        session: Session {
            client: common::mongo_client().await,
            key_vault: common::mongo_client()
                .await
                .database(kv_db)
                .collection(kv_coll),
            key_vault_ns: key_vault_ns.clone(),
            kms_providers: SecretDoc::new(doc! {
                "local": {"key": Binary { subtype: BinarySubtype::Generic, bytes: local }},
                "aws": {"accessKeyId": v("KS_AWS_ACCESS_KEY_ID"), "secretAccessKey": v("KS_AWS_SECRET_ACCESS_KEY")},
            }),
            target: doc! {"provider": "aws", "region": v("KS_AWS_REGION"), "key": v("KS_AWS_KEY_ARN"), "endpoint": v("KS_PROXY_AWS_ENDPOINT")},
            filter: doc! {},
            explicit_filter: false,
            batch_size: 20,
            kms: KmsIo {
                tls: KmsTls::new(&HashMap::from([(
                    "aws".to_string(),
                    TlsOptions {
                        ca_file: Some(v("KS_CA_FILE").into()),
                        cert_key_file: None,
                        cert_key_password: None,
                    },
                )]))
                .unwrap(),
                concurrency: 8,
                timeout: Duration::from_secs(2),
                on_demand: None,
                pace: Default::default(),
            },
            backup_dir: dir.join("backups"),
            run_id: "faults".into(),
        },
        rewrap: Default::default(),
        reencrypt: None,
        audit: None,
        dry_run: false,
    };
    let report = rewrap::run(&job, &|_| {}).await;
    let counters: serde_json::Value =
        serde_json::from_str(&common::http("GET", &format!("{control}/counters"), "")).unwrap();
    common::http("POST", &format!("{control}/clear"), "{}");
    let report = report.expect("rewrap completes despite transient faults");
    assert_eq!(report.rewrapped, 60, "{report:?}");
    assert!(report.not_moved.is_empty(), "{report:?}");

    let aws = &counters["aws"];
    let injected: u64 = ["reset", "stall", "http500", "http503", "throttle"]
        .iter()
        .map(|k| aws[*k].as_u64().unwrap_or(0))
        .sum();
    assert!(
        injected >= 5,
        "too few faults injected to mean anything: {aws}"
    );
    eprintln!("faults injected on the target KMS: {injected} ({aws})");

    // The oracle, holding only AWS, reads every seeded sample.
    let read = seeded.oracle_reads("aws");
    assert!(read.is_ok(), "{read:?}");
}
