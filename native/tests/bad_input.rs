//! Bad input, end to end through the binary: a corpus of malformed configurations
//! (wrong types, huge values, non-UTF-8, wrong-size local keys, unknown fields, missing
//! sections), malformed `rewrap.filter`s, and hostile key vault documents (truncated or
//! corrupted keyMaterial, unknown provider, missing fields, wrong BSON types).
//!
//! Each input must give a clear error — a non-zero exit code from DESIGN.md's list, a
//! message on stderr, no panic — and nothing may be written: at the end the key vault is
//! byte for byte what was seeded (hostile documents included) and no backup holds a key.
//!
//! `cargo test -p keyshift --test bad_input -- --nocapture` prints every input and the
//! first line keyshift answered it with.

mod common;
mod stress;

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, doc};
use stress::Seeded;

/// What a configuration input must produce.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    /// Refused: `check` exits 2 and `rewrap --yes` exits 1 or 2.
    Refused,
    /// Refused at run time: `rewrap --yes` exits 1 or 2 (`check`, offline, may pass).
    RefusedAtRun,
    /// Odd but legal (e.g. clamped): only "no panic" and a dry run.
    Tolerated,
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
}

fn first_error_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    text.lines()
        .find(|l| l.contains("error") || l.starts_with("keyshift:"))
        .or_else(|| text.lines().next())
        .unwrap_or("")
        .chars()
        .take(160)
        .collect()
}

fn sane_failure(label: &str, out: &std::process::Output, codes: &[i32]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && out.status.code() != Some(101),
        "{label}: panic: {stderr}"
    );
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("{label}: killed by a signal"));
    assert!(codes.contains(&code), "{label}: exit {code}: {stderr}");
    if code != 0 {
        // Said on stderr, or (with --json) in the JSON document on stdout.
        let json_says = serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok();
        assert!(
            !stderr.trim().is_empty() || json_says,
            "{label}: failed without a word"
        );
        // A clear error: the first line names what is wrong (a diagnostic code and
        // path, or "keyshift: ..."), readable however big the input was.
        let first: String = stderr
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        assert!(
            stderr.trim().is_empty()
                || first.starts_with("error[KS-")
                || first.starts_with("keyshift: ")
                || first.starts_with("error: "),
            "{label}: unclear first line: {first}"
        );
    }
}

fn config_cases(base: &str) -> Vec<Case> {
    let b = |name, text: String, expect| Case {
        name,
        bytes: text.into_bytes(),
        expect,
    };
    let rewrap = |extra: &str| base.replace("[rewrap]\n", &format!("[rewrap]\n{extra}\n"));
    let sub = |from: &str, to: &str| {
        assert!(base.contains(from), "{from}");
        base.replacen(from, to, 1)
    };
    let huge_string = "a".repeat(1 << 20);
    let deep = format!("x = {}1{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let deep_table = format!("{}\n", "[a".to_string() + &".a".repeat(5_000) + "]");
    let mut v = vec![
        // Wrong types.
        b(
            "batchSize as a string",
            base.replace("batchSize = 256", "batchSize = \"256\""),
            Expect::Refused,
        ),
        b(
            "concurrency as a float",
            base.replace("concurrency = 16", "concurrency = 1.5"),
            Expect::Refused,
        ),
        b(
            "namespace as a number",
            sub("namespace = ", "namespace = 5\nignored = "),
            Expect::Refused,
        ),
        b(
            "target provider as a number",
            sub("provider = \"aws\"", "provider = 3"),
            Expect::Refused,
        ),
        b(
            "masterKey as a string",
            sub("masterKey = {", "masterKey = \"aws\"\nignored = {"),
            Expect::Refused,
        ),
        b(
            "a provider as a string",
            sub(
                "[kmsProviders.local]\nkey = \"file:master-key.bin\"",
                "[kmsProviders]\nlocal = \"x\"",
            ),
            Expect::Refused,
        ),
        b(
            "keyVault as an array",
            sub("[keyVault]\n", "keyVault = [1, 2]\n[ignoredVault]\n"),
            Expect::Refused,
        ),
        b(
            "backupDir as a boolean",
            base.replace("backupDir = \"keyshift-backups\"", "backupDir = true"),
            Expect::Refused,
        ),
        b("filter as a number", rewrap("filter = 7"), Expect::Refused),
        b(
            "uri as a table",
            sub(
                "uri = \"env:MONGODB_URI\"",
                "uri = { env = \"MONGODB_URI\" }",
            ),
            Expect::Refused,
        ),
        // Huge values.
        b(
            "batchSize past i64",
            base.replace("batchSize = 256", "batchSize = 99999999999999999999"),
            Expect::Refused,
        ),
        b(
            "batchSize i64::MAX",
            base.replace("batchSize = 256", "batchSize = 9223372036854775807"),
            Expect::Tolerated,
        ),
        b(
            "concurrency i64::MIN",
            base.replace("concurrency = 16", "concurrency = -9223372036854775808"),
            Expect::Refused,
        ),
        b(
            "batchSize 0",
            base.replace("batchSize = 256", "batchSize = 0"),
            Expect::Refused,
        ),
        b(
            "a 1 MiB namespace",
            sub("namespace = \"", &format!("namespace = \"{huge_string}")),
            Expect::Refused,
        ),
        b(
            "a 1 MiB unknown field",
            rewrap(&format!("junk = \"{huge_string}\"")),
            Expect::Refused,
        ),
        b(
            "10,000-deep array",
            format!("{base}{deep}"),
            Expect::Refused,
        ),
        b(
            "5,000-deep table",
            format!("{base}{deep_table}"),
            Expect::Refused,
        ),
        // Unknown fields.
        b(
            "misspelt batchSize",
            rewrap("batchSise = 3"),
            Expect::Refused,
        ),
        b(
            "unknown field in a provider",
            sub(
                "key = \"file:master-key.bin\"",
                "key = \"file:master-key.bin\"\nextra = 1",
            ),
            Expect::Refused,
        ),
        b(
            "unknown section",
            format!("{base}\n[mystery]\nx = 1\n"),
            Expect::Refused,
        ),
        b(
            "unknown provider type",
            format!("{base}\n[kmsProviders.nosuch]\nkey = \"env:X\"\n"),
            Expect::Refused,
        ),
        b(
            "unknown masterKey field",
            sub("masterKey = { ", "masterKey = { color = \"red\", "),
            Expect::Refused,
        ),
        // Missing pieces, and not TOML at all.
        b("empty file", String::new(), Expect::Refused),
        b(
            "no [target]",
            {
                let start = base.find("[target]").unwrap();
                let end = base[start..].find("[rewrap]").unwrap() + start;
                format!("{}{}", &base[..start], &base[end..])
            },
            Expect::RefusedAtRun,
        ),
        b(
            "no [keyVault]",
            sub("[keyVault]\n", "[ignoredVault]\n"),
            Expect::Refused,
        ),
        b(
            "JSON instead of TOML",
            "{\"keyVault\": {}}".into(),
            Expect::Refused,
        ),
        b(
            "a literal secret",
            base.replace(
                "\"env:AWS_SECRET_ACCESS_KEY\"",
                "\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"",
            ),
            Expect::Refused,
        ),
        b(
            "an unset env reference",
            base.replace("env:AWS_SECRET_ACCESS_KEY", "env:KS_NOT_SET_ANYWHERE"),
            Expect::RefusedAtRun,
        ),
        b(
            "TOML syntax error",
            sub("[target]", "[target"),
            Expect::Refused,
        ),
        b("duplicate key", rewrap("batchSize = 3"), Expect::Refused),
        // Wrong-size and unreadable local keys.
        b(
            "local key of 95 bytes",
            base.replace("file:master-key.bin", "file:key-95.bin"),
            Expect::RefusedAtRun,
        ),
        b(
            "local key of 97 bytes",
            base.replace("file:master-key.bin", "file:key-97.bin"),
            Expect::RefusedAtRun,
        ),
        b(
            "local key: base64 of 64 bytes",
            base.replace("file:master-key.bin", "file:key-b64-64.txt"),
            Expect::RefusedAtRun,
        ),
        b(
            "local key: empty file",
            base.replace("file:master-key.bin", "file:key-empty.bin"),
            Expect::RefusedAtRun,
        ),
        b(
            "local key: a directory",
            base.replace("file:master-key.bin", "file:key-dir"),
            Expect::RefusedAtRun,
        ),
        b(
            "local key: /dev/null",
            base.replace("file:master-key.bin", "file:/dev/null"),
            Expect::RefusedAtRun,
        ),
        b(
            "local key: missing file",
            base.replace("file:master-key.bin", "file:no-such-key.bin"),
            Expect::Refused,
        ),
        // Malformed filters.
        b(
            "filter: unclosed brace",
            rewrap("filter = '{'"),
            Expect::Refused,
        ),
        b(
            "filter: an array",
            rewrap("filter = '[1, 2]'"),
            Expect::Refused,
        ),
        b(
            "filter: a string",
            rewrap("filter = '\"str\"'"),
            Expect::Refused,
        ),
        b(
            "filter: 10,000-deep",
            rewrap(&format!("filter = '{}'", "[".repeat(10_000))),
            Expect::Refused,
        ),
        b(
            "filter: bad $oid",
            rewrap("filter = '{\"_id\": {\"$oid\": \"zz\"}}'"),
            Expect::RefusedAtRun,
        ),
        b(
            "filter: bad $numberLong",
            rewrap("filter = '{\"a\": {\"$numberLong\": \"x\"}}'"),
            Expect::RefusedAtRun,
        ),
        b(
            "filter: unknown operator",
            rewrap("filter = '{\"$gibberish\": 1}'"),
            Expect::RefusedAtRun,
        ),
        b(
            "filter: $in not an array",
            rewrap("filter = '{\"masterKey.provider\": {\"$in\": 5}}'"),
            Expect::RefusedAtRun,
        ),
        b(
            "filter: $where",
            rewrap("filter = '{\"$where\": \"sleep(100000)\"}'"),
            Expect::RefusedAtRun,
        ),
        b(
            "filter: single quotes inside",
            rewrap("filter = \"{'a': 1}\""),
            Expect::Refused,
        ),
    ];
    // Not UTF-8 at all.
    let mut latin1 = base.as_bytes().to_vec();
    let at = base.find("keyshift-backups").unwrap();
    latin1.splice(at..at, [0xe9, 0xff, 0xfe]);
    v.push(Case {
        name: "non-UTF-8 bytes in a value",
        bytes: latin1,
        expect: Expect::Refused,
    });
    let mut utf16 = vec![0xff, 0xfe];
    utf16.extend(base.encode_utf16().flat_map(u16::to_le_bytes));
    v.push(Case {
        name: "UTF-16 file",
        bytes: utf16,
        expect: Expect::Refused,
    });
    v.push(Case {
        name: "random bytes",
        bytes: (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
        expect: Expect::Refused,
    });
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_configs_and_filters_are_refused_clearly() {
    let w = stress::seed("badcfg", 6, 6, "aws", false);
    let before = w.all_keys().await;
    let local = std::fs::read(w.dir.join("master-key.bin")).unwrap();
    std::fs::write(w.dir.join("key-95.bin"), &local[..95]).unwrap();
    std::fs::write(w.dir.join("key-97.bin"), [&local[..], &[0]].concat()).unwrap();
    {
        use base64::Engine as _;
        std::fs::write(
            w.dir.join("key-b64-64.txt"),
            base64::engine::general_purpose::STANDARD.encode(&local[..64]),
        )
        .unwrap();
    }
    std::fs::write(w.dir.join("key-empty.bin"), b"").unwrap();
    std::fs::create_dir_all(w.dir.join("key-dir")).unwrap();
    let base = std::fs::read_to_string(w.dir.join("keyshift.toml")).unwrap();
    let cases = config_cases(&base);
    let mut tried = 0;
    for (i, case) in cases.iter().enumerate() {
        let cfg = format!("bad-{i}.toml");
        std::fs::write(w.dir.join(&cfg), &case.bytes).unwrap();
        let check = w.keyshift(&["check", "-c", &cfg, "--json"]);
        let label = format!("[{}] check", case.name);
        match case.expect {
            Expect::Refused => {
                sane_failure(&label, &check, &[2]);
                let json: serde_json::Value = serde_json::from_slice(&check.stdout)
                    .unwrap_or_else(|e| panic!("{label}: --json printed no JSON: {e}"));
                assert_eq!(json["valid"], false, "{label}: {json}");
            }
            _ => sane_failure(&label, &check, &[0, 2]),
        }
        let codes: &[i32] = match case.expect {
            Expect::Tolerated => &[0, 1, 2],
            _ => &[1, 2],
        };
        let dry = w.keyshift(&["rewrap", "--dry-run", "-c", &cfg, "--json"]);
        sane_failure(&format!("[{}] rewrap --dry-run", case.name), &dry, codes);
        if case.expect != Expect::Tolerated {
            let run = w.keyshift(&["rewrap", "--yes", "-c", &cfg]);
            sane_failure(&format!("[{}] rewrap --yes", case.name), &run, &[1, 2]);
            let label = format!("[{}] inspect", case.name);
            sane_failure(&label, &w.keyshift(&["inspect", "-c", &cfg]), &[0, 1, 2]);
            let label = format!("[{}] verify", case.name);
            sane_failure(&label, &w.keyshift(&["verify", "-c", &cfg]), &[1, 2, 3]);
            eprintln!(
                "  {:<34} check {:?}, rewrap {:?}: {}",
                case.name,
                check.status.code(),
                run.status.code(),
                first_error_line(&run.stderr)
            );
        } else {
            eprintln!(
                "  {:<34} check {:?}, dry run {:?} (tolerated)",
                case.name,
                check.status.code(),
                dry.status.code()
            );
        }
        tried += 1;
    }
    // A missing config file and a config that is a directory.
    for (name, path) in [
        ("missing config", "no-such.toml"),
        ("config is a directory", "key-dir"),
    ] {
        for args in [
            vec!["check", "-c", path, "--json"],
            vec!["rewrap", "--yes", "-c", path],
        ] {
            sane_failure(
                &format!("[{name}] {}", args[0]),
                &w.keyshift(&args),
                &[1, 2],
            );
        }
        tried += 1;
    }
    // Nothing written, whatever came in.
    assert_eq!(w.all_keys().await, before, "the key vault changed");
    assert!(
        stress::backed_up(&w.backups()).is_empty(),
        "a backup holds keys after refused runs"
    );
    eprintln!(
        "bad input: {tried} malformed configurations and filters, each refused without a panic; nothing written"
    );
    let _ = std::fs::remove_dir_all(&w.dir);
}

/// Hostile key documents, each inserted beside good keys and selected alone.
fn hostile(good: &Document) -> Vec<(&'static str, Document)> {
    let km = match good.get("keyMaterial") {
        Some(Bson::Binary(b)) => b.bytes.clone(),
        _ => panic!("a seeded key has binary keyMaterial"),
    };
    let bin = |bytes: Vec<u8>| Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    };
    let with = |f: &dyn Fn(&mut Document)| {
        let mut d = good.clone();
        d.insert(
            "_id",
            Binary {
                subtype: BinarySubtype::Uuid,
                bytes: bson::Uuid::new().bytes().to_vec(),
            },
        );
        d.remove("keyAltNames");
        f(&mut d);
        d
    };
    let mut flipped = km.clone();
    flipped[70] ^= 0x01;
    let mut bad_mac = km.clone();
    let last = bad_mac.len() - 1;
    bad_mac[last] ^= 0x80;
    vec![
        (
            "truncated keyMaterial (50 bytes)",
            with(&|d| {
                d.insert("keyMaterial", bin(km[..50].to_vec()));
            }),
        ),
        (
            "empty keyMaterial",
            with(&|d| {
                d.insert("keyMaterial", bin(Vec::new()));
            }),
        ),
        (
            "corrupted keyMaterial (one bit)",
            with(&|d| {
                d.insert("keyMaterial", bin(flipped.clone()));
            }),
        ),
        (
            "corrupted keyMaterial (MAC)",
            with(&|d| {
                d.insert("keyMaterial", bin(bad_mac.clone()));
            }),
        ),
        (
            "keyMaterial of another key's length x2",
            with(&|d| {
                d.insert("keyMaterial", bin([&km[..], &km[..]].concat()));
            }),
        ),
        (
            "unknown provider",
            with(&|d| {
                d.insert("masterKey", doc! {"provider": "nosuch"});
            }),
        ),
        (
            "provider as a number",
            with(&|d| {
                d.insert("masterKey", doc! {"provider": 7});
            }),
        ),
        (
            "masterKey as a string",
            with(&|d| {
                d.insert("masterKey", "local");
            }),
        ),
        (
            "no masterKey",
            with(&|d| {
                d.remove("masterKey");
            }),
        ),
        (
            "no keyMaterial",
            with(&|d| {
                d.remove("keyMaterial");
            }),
        ),
        (
            "keyMaterial as a string",
            with(&|d| {
                d.insert("keyMaterial", "c2VjcmV0");
            }),
        ),
        (
            "keyMaterial of subtype 6",
            with(&|d| {
                d.insert(
                    "keyMaterial",
                    Binary {
                        subtype: BinarySubtype::Encrypted,
                        bytes: km.clone(),
                    },
                );
            }),
        ),
        (
            "_id as an ObjectId",
            with(&|d| {
                d.insert("_id", bson::oid::ObjectId::new());
            }),
        ),
        (
            "_id as a string",
            with(&|d| {
                d.insert("_id", "not-a-uuid");
            }),
        ),
        (
            "_id binary of 3 bytes",
            with(&|d| {
                d.insert(
                    "_id",
                    Binary {
                        subtype: BinarySubtype::Uuid,
                        bytes: vec![1, 2, 3],
                    },
                );
            }),
        ),
        (
            "status as a string",
            with(&|d| {
                d.insert("status", "active");
            }),
        ),
        (
            "keyAltNames as a number",
            with(&|d| {
                d.insert("keyAltNames", 5);
            }),
        ),
        (
            "aws masterKey without key",
            with(&|d| {
                d.insert("masterKey", doc! {"provider": "aws", "region": "us-east-1"});
            }),
        ),
        (
            "creationDate as a string",
            with(&|d| {
                d.insert("creationDate", "yesterday");
            }),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_key_documents_are_refused_clearly_and_left_alone() {
    let w: Seeded = stress::seed("hostile", 4, 4, "aws", false);
    let kv = w.key_vault().await;
    let good = w.all_keys().await;
    let base = std::fs::read_to_string(w.dir.join("keyshift.toml")).unwrap();
    let cases = hostile(&good[0]);
    // Selected by their `_id` alone: an extra marker field would itself be refused by
    // libmongocrypt ("unrecognized field").
    for (_, d) in &cases {
        kv.insert_one(d.clone()).await.unwrap();
    }
    let before = w.all_keys().await;
    let (mut refused, mut skipped, mut accepted) = (0, 0, 0);
    let mut moved_ok: Vec<String> = Vec::new();
    for (i, (name, _)) in cases.iter().enumerate() {
        let cfg = format!("hostile-{i}.toml");
        std::fs::write(
            w.dir.join(&cfg),
            base.replace(
                "[rewrap]\n",
                &format!(
                    "[rewrap]\nfilter = '{{\"_id\": {}}}'\n",
                    stress::key_of(&cases[i].1["_id"])
                ),
            ),
        )
        .unwrap();
        let inspect = w.keyshift(&["inspect", "-c", &cfg, "--json"]);
        sane_failure(&format!("[{name}] inspect"), &inspect, &[0, 1]);
        let run = w.keyshift(&["rewrap", "--yes", "-c", &cfg, "--json"]);
        sane_failure(&format!("[{name}] rewrap"), &run, &[0, 1]);
        let verify = w.keyshift(&["verify", "-c", &cfg, "--json"]);
        let id = stress::key_of(&cases[i].1["_id"]);
        let report: Option<serde_json::Value> = serde_json::from_slice(&run.stdout).ok();
        let rewrapped = report
            .as_ref()
            .map_or(0, |r| r["rewrapped"].as_u64().unwrap_or(0));
        if run.status.code() == Some(0) && rewrapped == 1 {
            // libmongocrypt accepts this oddity (it reads only what it needs): then the
            // key was proven like any other, AWS alone must read it, and nothing but its
            // wrapping changed.
            sane_failure(&format!("[{name}] verify"), &verify, &[0]);
            let strip = |d: &Document| {
                let mut d = d.clone();
                for f in ["keyMaterial", "masterKey", "updateDate"] {
                    d.remove(f);
                }
                d
            };
            let now = w.all_keys().await;
            let find = |v: &[Document]| {
                v.iter()
                    .find(|d| stress::key_of(&d["_id"]) == id)
                    .cloned()
                    .unwrap()
            };
            assert_eq!(strip(&find(&now)), strip(&find(&before)), "[{name}]");
            moved_ok.push(id);
            accepted += 1;
        } else {
            assert_eq!(rewrapped, 0, "[{name}] rewrapped yet failed: {report:?}");
            if run.status.code() == Some(0) {
                skipped += 1;
            } else {
                refused += 1;
            }
            sane_failure(&format!("[{name}] verify"), &verify, &[1, 3]);
        }
        eprintln!(
            "  {:<40} rewrap {:?}: {}",
            name,
            run.status.code(),
            if rewrapped == 1 {
                "accepted, proven, written; verify reads it through AWS alone".to_string()
            } else {
                first_error_line(&run.stderr)
            }
        );
    }
    // Every other document, hostile or good, exactly as before.
    let unmoved = |v: Vec<Document>| -> Vec<Document> {
        v.into_iter()
            .filter(|d| !moved_ok.contains(&stress::key_of(&d["_id"])))
            .collect()
    };
    assert_eq!(
        unmoved(w.all_keys().await),
        unmoved(before.clone()),
        "a hostile run wrote to the key vault"
    );
    w.oracle_reads("local").expect("the good keys still read");
    eprintln!(
        "hostile key documents: {} tried, {refused} refused (exit 1, nothing written), {skipped} skipped, \
         {accepted} accepted by libmongocrypt and moved with proof",
        cases.len()
    );
    let _ = std::fs::remove_dir_all(&w.dir);
}
