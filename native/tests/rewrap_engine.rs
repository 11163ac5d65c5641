//! The rewrap engine end to end on the test world, judged by the oracle: a deployment
//! seeded by the official driver under a local master key is moved to the AWS KMS
//! stand-in; PyMongo holding only the AWS provider then decrypts the seeded fields.
//! A rerun changes nothing; a key changed by someone else meanwhile is left alone.

mod common;
mod stress;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use bson::spec::BinarySubtype;
use bson::{Binary, Document, RawDocumentBuf, doc};
use futures_util::TryStreamExt;
use keyshift::kms_io::KmsIo;
use keyshift::kms_tls::{KmsTls, TlsOptions};
use keyshift::rewrap::{self, Job, KeyOutcome, Progress};
use keyshift::secret::SecretDoc;
use keyshift::session::Session;

/// A seeded deployment (target AWS) and the test world it lives in.
struct Seeded {
    seeded: stress::Seeded,
    world: HashMap<String, String>,
}

impl std::ops::Deref for Seeded {
    type Target = stress::Seeded;
    fn deref(&self) -> &stress::Seeded {
        &self.seeded
    }
}

fn seed(keys: u32, docs: u32) -> Seeded {
    Seeded {
        world: common::world(),
        seeded: stress::seed("rewrap", keys, docs, "aws", false),
    }
}

impl Seeded {
    fn aws_target(&self) -> Document {
        let v = |k: &str| common::world_var(&self.world, k);
        doc! {"provider": "aws", "region": v("KS_AWS_REGION"), "key": v("KS_AWS_KEY_ARN"), "endpoint": v("KS_AWS_ENDPOINT")}
    }

    async fn job(&self, dry_run: bool, run_id: &str) -> Job {
        let v = |k: &str| common::world_var(&self.world, k);
        let local = std::fs::read(self.dir.join("master-key.bin")).unwrap();
        let providers = doc! {
            "local": {"key": Binary { subtype: BinarySubtype::Generic, bytes: local }},
            "aws": {"accessKeyId": v("KS_AWS_ACCESS_KEY_ID"), "secretAccessKey": v("KS_AWS_SECRET_ACCESS_KEY")},
        };
        let tls = HashMap::from([(
            "aws".to_string(),
            TlsOptions {
                ca_file: Some(v("KS_CA_FILE").into()),
                cert_key_file: None,
                cert_key_password: None,
            },
        )]);
        let (db, coll) = self.key_vault_ns.split_once('.').unwrap();
        Job {
            session: Session {
                client: common::mongo_client().await,
                key_vault: common::mongo_client().await.database(db).collection(coll),
                key_vault_ns: self.key_vault_ns.clone(),
                kms_providers: SecretDoc::new(providers),
                target: self.aws_target(),
                filter: doc! {},
                explicit_filter: false,
                batch_size: 16,
                kms: KmsIo {
                    tls: KmsTls::new(&tls).unwrap(),
                    concurrency: 8,
                    timeout: Duration::from_secs(20),
                    on_demand: None,
                    pace: Default::default(),
                },
                backup_dir: self.dir.join("backups"),
                run_id: run_id.to_string(),
            },
            rewrap: Default::default(),
            reencrypt: None,
            audit: None,
            dry_run,
        }
    }

    /// The oracle, holding only the AWS provider, decrypts every seeded sample.
    fn oracle_decrypts_samples_with_aws_only(&self) {
        let read = self
            .oracle_reads("aws")
            .unwrap_or_else(|e| panic!("oracle could not decrypt the samples: {e}"));
        assert!(read > 0, "no seeded samples to read");
    }

    async fn providers_in_vault(&self) -> HashMap<String, u64> {
        let job = self.job(true, "count").await;
        let mut cursor = job.session.key_vault.find(doc! {}).await.unwrap();
        let mut counts = HashMap::new();
        while let Some(k) = cursor.try_next().await.unwrap() {
            let k = Document::try_from(k.as_ref()).unwrap();
            let p = k
                .get_document("masterKey")
                .unwrap()
                .get_str("provider")
                .unwrap();
            *counts.entry(p.to_string()).or_default() += 1;
        }
        counts
    }
}

fn backup_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_to_aws_moves_every_key_and_the_oracle_reads_the_data() {
    let s = seed(40, 30);

    // A dry run does the KMS work and proofs but writes nothing.
    let dry = rewrap::run(&s.job(true, "dry").await, &|_| {})
        .await
        .unwrap();
    assert_eq!((dry.selected, dry.rewrapped), (40, 40));
    assert!(dry.not_moved.is_empty() && dry.backup.is_none());
    assert_eq!(
        s.providers_in_vault().await,
        HashMap::from([("local".into(), 40)])
    );

    let seen = std::sync::Mutex::new(Vec::new());
    let report = rewrap::run(&s.job(false, "run1").await, &|p| {
        seen.lock().unwrap().push(p)
    })
    .await
    .unwrap();
    assert_eq!(report.selected, 40);
    assert_eq!(report.rewrapped, 40, "{report:?}");
    assert!(report.not_moved.is_empty());
    let backup = report.backup.expect("a backup was written");
    assert_eq!(backup_lines(&backup), 41, "header + 40 keys");
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(seen.lock().unwrap().contains(&Progress::ToMove(40)));
    assert_eq!(
        s.providers_in_vault().await,
        HashMap::from([("aws".into(), 40)])
    );
    s.oracle_decrypts_samples_with_aws_only();

    // A rerun converges: nothing left to move, nothing written, no backup.
    let again = rewrap::run(&s.job(false, "run2").await, &|_| {})
        .await
        .unwrap();
    assert_eq!((again.already_under_target, again.rewrapped), (40, 0));
    assert!(again.backup.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_changes_survive_and_a_rerun_completes() {
    let s = seed(6, 6);
    let job = s.job(false, "cas").await;
    let vault = job.session.key_vault.clone();
    let mut cursor = vault.find(doc! {}).sort(doc! {"_id": 1}).await.unwrap();
    let first = cursor.try_next().await.unwrap().unwrap();
    let second = cursor.try_next().await.unwrap().unwrap();
    drop(cursor);
    let id_of = |k: &RawDocumentBuf| {
        Document::try_from(k.as_ref())
            .unwrap()
            .get("_id")
            .cloned()
            .unwrap()
    };
    let (renamed, rewrapped) = (id_of(&first), id_of(&second));
    let local = std::fs::read(s.dir.join("master-key.bin")).unwrap();
    let handle = tokio::runtime::Handle::current();
    // Once the backup is complete (ToMove), the application (1) adds a keyAltName to the
    // first key and (2) rewraps the second under the same local key itself: new
    // keyMaterial, same DEK.
    let report = rewrap::run(&job, &|p| {
        if let Progress::ToMove(_) = p {
            let (vault, renamed, second, local) =
                (vault.clone(), renamed.clone(), second.clone(), local.clone());
            tokio::task::block_in_place(|| {
                handle.block_on(async move {
                    vault
                        .update_one(doc! {"_id": renamed}, doc! {"$push": {"keyAltNames": "added-during-the-run"}})
                        .await
                        .unwrap();
                    let providers = doc! {"local": {"key": Binary { subtype: BinarySubtype::Generic, bytes: local }}};
                    let crypt = keyshift::crypt::build(&providers).unwrap();
                    let id = Document::try_from(second.as_ref()).unwrap().get("_id").cloned().unwrap();
                    let filter = RawDocumentBuf::try_from(&doc! {"_id": id.clone()}).unwrap();
                    let ctx = crypt
                        .ctx_builder()
                        .key_encryption_key(&doc! {"provider": "local"})
                        .unwrap()
                        .build_rewrap_many_datakey(&filter)
                        .unwrap();
                    let kms = KmsIo {
                        tls: KmsTls::new(&HashMap::new()).unwrap(),
                        concurrency: 1,
                        timeout: Duration::from_secs(5),
                        on_demand: None,
                        pace: Default::default(),
                    };
                    let out = keyshift::ctx_runner::run(ctx, keyshift::ctx_runner::Keys::Given(&[second]), &kms)
                        .await
                        .unwrap();
                    let out = Document::try_from(out.as_ref()).unwrap();
                    let new = out.get_array("v").unwrap()[0].as_document().unwrap().clone();
                    vault
                        .update_one(doc! {"_id": id}, doc! {"$set": {"keyMaterial": new.get("keyMaterial").unwrap()}})
                        .await
                        .unwrap();
                })
            });
        }
    })
    .await
    .unwrap();
    assert_eq!(report.rewrapped, 5, "{report:?}");
    assert_eq!(report.not_moved.len(), 1, "{report:?}");
    assert_eq!(report.not_moved[0].1, KeyOutcome::ChangedMeanwhile);
    let doc_of = |raw: RawDocumentBuf| Document::try_from(raw.as_ref()).unwrap();
    let now = doc_of(
        vault
            .find_one(doc! {"_id": rewrapped.clone()})
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(
        now.get_document("masterKey")
            .unwrap()
            .get_str("provider")
            .unwrap(),
        "local",
        "left alone"
    );
    let named = doc_of(
        vault
            .find_one(doc! {"_id": renamed})
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(
        named
            .get_document("masterKey")
            .unwrap()
            .get_str("provider")
            .unwrap(),
        "aws"
    );
    assert!(
        named
            .get_array("keyAltNames")
            .unwrap()
            .contains(&bson::Bson::String("added-during-the-run".into())),
        "the application's keyAltName survives: {named:?}"
    );

    // A rerun completes the key that was left alone, and every seeded value reads via AWS.
    let again = rewrap::run(&s.job(false, "cas-rerun").await, &|_| {})
        .await
        .unwrap();
    assert_eq!(
        (again.rewrapped, again.already_under_target),
        (1, 5),
        "{again:?}"
    );
    assert_eq!(
        s.providers_in_vault().await,
        HashMap::from([("aws".into(), 6)])
    );
    s.oracle_decrypts_samples_with_aws_only();
}
