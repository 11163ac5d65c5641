//! keyshift's crypto hooks + the `mongocrypt` crate against the oracle (PyMongo +
//! pymongocrypt), both ways, through the key vault on the wire stand-in:
//! - keyshift makes a local DEK and encrypts values with both algorithms; PyMongo
//!   decrypts them;
//! - PyMongo makes a DEK and encrypts; keyshift's contexts decrypt.

mod common;

use std::process::Command;

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, RawBson, doc};
use keyshift::ctx_runner::Keys;
use keyshift::kms_io::KmsIo;
use keyshift::kms_tls::KmsTls;
use keyshift::{crypt, ctx_runner};
use mongocrypt::ctx::Algorithm;

struct Fixture {
    uri: String,
    key_vault_ns: String,
    data_ns: String,
    key_file: tempfile_path::TempKey,
    client: mongodb::Client,
    kms: KmsIo,
}

/// A 96-byte local master key in a 0600 file, removed on drop.
mod tempfile_path {
    use std::os::unix::fs::OpenOptionsExt;
    use std::path::PathBuf;

    pub struct TempKey {
        pub path: PathBuf,
        pub bytes: Vec<u8>,
    }

    impl TempKey {
        pub fn new(name: &str) -> Self {
            let bytes = keyshift::crypto_hooks::random(96).unwrap();
            let path = std::env::temp_dir().join(format!("{name}.key"));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .unwrap();
            std::io::Write::write_all(&mut f, &bytes).unwrap();
            TempKey { path, bytes }
        }
    }

    impl Drop for TempKey {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Fixture {
    async fn new() -> Self {
        let world = common::world();
        let db = common::unique("interop");
        Fixture {
            uri: common::world_var(&world, "KS_MONGODB_URI"),
            key_vault_ns: format!("{db}.__keyVault"),
            data_ns: format!("{db}.people"),
            key_file: tempfile_path::TempKey::new(&db),
            client: common::mongo_client().await,
            kms: KmsIo {
                tls: KmsTls::new(&Default::default()).unwrap(),
                concurrency: 4,
                timeout: std::time::Duration::from_secs(10),
                on_demand: None,
                pace: Default::default(),
            },
        }
    }

    fn coll<T: Send + Sync>(&self, ns: &str) -> mongodb::Collection<T> {
        let (db, coll) = ns.split_once('.').unwrap();
        self.client.database(db).collection(coll)
    }

    fn crypt(&self) -> mongocrypt::Crypt {
        let key = Binary {
            subtype: BinarySubtype::Generic,
            bytes: self.key_file.bytes.clone(),
        };
        crypt::build(&doc! {"local": {"key": key}}).expect("libmongocrypt with keyshift's hooks")
    }

    fn oracle(&self, args: &[&str]) -> String {
        let script = common::repo_root().join("tests/interop/oracle_cli.py");
        let out = Command::new(common::python())
            .arg(script)
            .args(args)
            .args(["--uri", &self.uri, "--key-vault", &self.key_vault_ns])
            .arg("--local-key-file")
            .arg(&self.key_file.path)
            .args(["--coll", &self.data_ns])
            .output()
            .expect("run the oracle");
        assert!(
            out.status.success(),
            "oracle failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

async fn encrypt(
    f: &Fixture,
    crypt: &mongocrypt::Crypt,
    key_id: &[u8],
    algorithm: Algorithm,
    value: RawBson,
) -> Bson {
    let ctx = crypt
        .ctx_builder()
        .key_id(key_id)
        .unwrap()
        .algorithm(algorithm)
        .unwrap()
        .build_explicit_encrypt(value)
        .unwrap();
    let out = ctx_runner::run(ctx, Keys::Vault(&f.coll(&f.key_vault_ns)), &f.kms)
        .await
        .unwrap();
    let out = Document::try_from(out.as_ref()).unwrap();
    out.get("v").cloned().expect("ciphertext in {v}")
}

async fn decrypt(f: &Fixture, crypt: &mongocrypt::Crypt, ciphertext: &Binary) -> Bson {
    let ctx = crypt
        .ctx_builder()
        .build_explicit_decrypt(&ciphertext.bytes)
        .unwrap();
    let out = ctx_runner::run(ctx, Keys::Vault(&f.coll(&f.key_vault_ns)), &f.kms)
        .await
        .unwrap();
    Document::try_from(out.as_ref())
        .unwrap()
        .get("v")
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn keyshift_encrypts_and_pymongo_decrypts() {
    let f = Fixture::new().await;
    let crypt = f.crypt();

    // A local DEK, made by libmongocrypt with keyshift's hooks, stored in the key vault.
    let ctx = crypt
        .ctx_builder()
        .key_encryption_key(&doc! {"provider": "local"})
        .unwrap()
        .build_datakey()
        .unwrap();
    let key_doc = ctx_runner::run(ctx, Keys::Vault(&f.coll(&f.key_vault_ns)), &f.kms)
        .await
        .unwrap();
    let key_doc = Document::try_from(key_doc.as_ref()).unwrap();
    let key_id = match key_doc.get("_id") {
        Some(Bson::Binary(b)) if b.subtype == BinarySubtype::Uuid => b.bytes.clone(),
        other => panic!("new key _id is {other:?}"),
    };
    f.coll::<Document>(&f.key_vault_ns)
        .insert_one(key_doc)
        .await
        .unwrap();

    let det = encrypt(
        &f,
        &crypt,
        &key_id,
        Algorithm::Deterministic,
        RawBson::String("Ada Lovelace".into()),
    )
    .await;
    let rnd = encrypt(
        &f,
        &crypt,
        &key_id,
        Algorithm::Random,
        RawBson::Int64(1 << 41),
    )
    .await;
    // Deterministic is deterministic: the same value, the same ciphertext.
    let det_again = encrypt(
        &f,
        &crypt,
        &key_id,
        Algorithm::Deterministic,
        RawBson::String("Ada Lovelace".into()),
    )
    .await;
    assert_eq!(det, det_again);
    for c in [&det, &rnd] {
        assert!(matches!(c, Bson::Binary(b) if b.subtype == BinarySubtype::Encrypted));
    }
    f.coll::<Document>(&f.data_ns)
        .insert_one(doc! {"_id": 1, "name": det, "balance": rnd, "plain": "visible"})
        .await
        .unwrap();

    let decrypted: serde_json::Value =
        serde_json::from_str(&f.oracle(&["decrypt", "--id", "1"])).expect("oracle prints JSON");
    assert_eq!(
        decrypted,
        serde_json::json!({
            "_id": {"$numberInt": "1"},
            "name": "Ada Lovelace",
            "balance": {"$numberLong": (1i64 << 41).to_string()},
            "plain": "visible",
        })
    );
}

#[tokio::test]
async fn pymongo_encrypts_and_keyshift_decrypts() {
    let f = Fixture::new().await;
    let made: serde_json::Value = serde_json::from_str(&f.oracle(&["encrypt"])).unwrap();
    let made = Bson::try_from(made).unwrap().as_document().unwrap().clone();
    let id = made.get("_id").unwrap().clone();
    let plain = made.get_document("plain").unwrap().clone();

    let stored = f
        .coll::<Document>(&f.data_ns)
        .find_one(doc! {"_id": id})
        .await
        .unwrap()
        .expect("the oracle's document");
    let crypt = f.crypt();
    for (field, expected) in &plain {
        let Some(Bson::Binary(ciphertext)) = stored.get(field) else {
            panic!("{field} is not encrypted in {stored:?}");
        };
        assert_eq!(ciphertext.subtype, BinarySubtype::Encrypted);
        let got = decrypt(&f, &crypt, ciphertext).await;
        assert_eq!(&got, expected, "field {field}");
    }
    assert_eq!(plain.len(), 5);
}

#[test]
fn the_linked_libmongocrypt_needs_our_hooks() {
    // The wheel's build has no crypto of its own; keyshift must bring it.
    assert!(!mongocrypt::is_crypto_available());
    assert!(crypt::libmongocrypt_version().starts_with("1."));
}
