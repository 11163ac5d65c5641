//! DESIGN.md promise 5: nothing secret appears in output, logs, backups, errors or
//! panics. Distinctive secrets are planted — the local master key, the AWS secret
//! access key, the Azure client secret, the GCP private key, the KMIP client private key,
//! a MongoDB password, a literal secret typed into the config by mistake, and the
//! seeded plaintexts — and every byte keyshift produces is searched for each of them
//! (whole, encoded as base64/hex where it is bytes, and as every 24-byte window of
//! long ones): stdout and stderr of every command with `-vv`, with and without
//! `--json`, successes and failures, a forced panic, every backup and every other file
//! keyshift leaves behind.
//!
//! The forced panic needs no hook in production code: `println!` panics when stdout is
//! a pipe whose reader is gone (Rust ignores SIGPIPE), so `preflight --json` and
//! `verify --json` are run with a closed stdout after they have loaded every secret.
//!
//! `cargo test -p keyshift --test secrets -- --nocapture` prints the byte count searched.

mod common;
mod stress;

use std::path::PathBuf;
use std::process::{Command, Output};

use base64::Engine as _;

/// A failing setup: its name, the config text, env overrides.
type Failing<'a> = (&'a str, String, Vec<(&'a str, String)>);

struct Needle {
    what: String,
    bytes: Vec<u8>,
}

fn needles_of(what: &str, secret: &[u8]) -> Vec<Needle> {
    let mut v = vec![Needle {
        what: what.into(),
        bytes: secret.to_vec(),
    }];
    const W: usize = 24;
    if secret.len() > 2 * W {
        for (i, w) in secret.windows(W).enumerate().step_by(8) {
            v.push(Needle {
                what: format!("{what}[{i}..{}]", i + W),
                bytes: w.to_vec(),
            });
        }
    }
    v
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

struct Audit {
    needles: Vec<Needle>,
    searched: u64,
    outputs: u64,
}

impl Audit {
    fn check(&mut self, name: &str, hay: &[u8]) {
        self.searched += hay.len() as u64;
        self.outputs += 1;
        for n in &self.needles {
            assert!(!find(hay, &n.bytes), "{} leaked into {name}", n.what);
        }
    }

    fn output(&mut self, name: &str, out: &Output) {
        self.check(&format!("{name} stdout"), &out.stdout);
        self.check(&format!("{name} stderr"), &out.stderr);
    }
}

/// keyshift.toml sections for every provider the world has, secrets as env: refs.
fn all_providers(world: &std::collections::HashMap<String, String>) -> String {
    let v = |k: &str| common::world_var(world, k);
    format!(
        r#"
[kmsProviders.azure]
tenantId = "{tenant}"
clientId = "{client}"
clientSecret = "env:AZURE_CLIENT_SECRET"
identityPlatformEndpoint = "{idp}"

[kmsProviders.gcp]
email = "{email}"
privateKey = "env:GCP_PRIVATE_KEY"
endpoint = "{gcp}"

[kmsProviders.kmip]
endpoint = "{kmip}"

[tlsOptions.azure]
tlsCAFile = "{ca}"

[tlsOptions.gcp]
tlsCAFile = "{ca}"

[tlsOptions.kmip]
tlsCAFile = "{ca}"
tlsCertificateKeyFile = "{kmip_cert}"
"#,
        tenant = v("KS_AZURE_TENANT_ID"),
        client = v("KS_AZURE_CLIENT_ID"),
        idp = v("KS_AZURE_IDENTITY_ENDPOINT"),
        email = v("KS_GCP_EMAIL"),
        gcp = v("KS_GCP_ENDPOINT"),
        kmip = v("KS_KMIP_ENDPOINT"),
        ca = v("KS_CA_FILE"),
        kmip_cert = v("KS_KMIP_CLIENT_CERT"),
    )
}

#[test]
fn no_secret_in_any_byte_keyshift_produces() {
    let world = common::world();
    let v = |k: &str| common::world_var(&world, k);
    let mut w = stress::seed("secrets", 25, 20, "aws", false);
    w.env
        .insert("AZURE_CLIENT_SECRET".into(), v("KS_AZURE_CLIENT_SECRET"));
    w.env
        .insert("GCP_PRIVATE_KEY".into(), v("KS_GCP_PRIVATE_KEY"));
    let base = std::fs::read_to_string(w.dir.join("keyshift.toml")).unwrap();
    let full = base.replacen(
        "[target]",
        &format!("{}\n[target]", all_providers(&world)),
        1,
    );
    std::fs::write(w.dir.join("keyshift.toml"), &full).unwrap();

    // The secrets, in every form they could leak in.
    let local = std::fs::read(w.dir.join("master-key.bin")).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut needles = Vec::new();
    needles.extend(needles_of("local key", &local));
    needles.extend(needles_of(
        "local key (base64)",
        b64.encode(&local).as_bytes(),
    ));
    needles.extend(needles_of(
        "local key (hex)",
        hex::encode(&local).as_bytes(),
    ));
    needles.extend(needles_of(
        "local key (HEX)",
        hex::encode_upper(&local).as_bytes(),
    ));
    needles.extend(needles_of(
        "AWS secret",
        v("KS_AWS_SECRET_ACCESS_KEY").as_bytes(),
    ));
    needles.extend(needles_of(
        "Azure client secret",
        v("KS_AZURE_CLIENT_SECRET").as_bytes(),
    ));
    let gcp = v("KS_GCP_PRIVATE_KEY");
    needles.extend(needles_of("GCP private key", gcp.as_bytes()));
    needles.extend(needles_of(
        "GCP private key (DER)",
        &b64.decode(gcp.as_bytes()).unwrap(),
    ));
    let kmip_key = std::fs::read_to_string(v("KS_KMIP_CLIENT_KEY_PEM")).unwrap();
    let kmip_body: String = kmip_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    needles.extend(needles_of("KMIP client key", kmip_body.as_bytes()));
    for line in kmip_key.lines().filter(|l| l.len() >= 40) {
        needles.extend(needles_of("KMIP client key line", line.as_bytes()));
    }
    let mongo_password = "Pw-keyshift-planted-9f3e1c7a";
    needles.extend(needles_of("MongoDB password", mongo_password.as_bytes()));
    let literal = "LiteralSecretTypedByMistake/0xC0FFEE/1234567890";
    needles.extend(needles_of(
        "literal secret in the config",
        literal.as_bytes(),
    ));
    let expected: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(w.dir.join("expected.json")).unwrap()).unwrap();
    for e in &expected {
        let p = e["plaintext"].to_string();
        if p.len() >= 10 {
            needles.extend(needles_of(
                "seeded plaintext",
                p.trim_matches('"').as_bytes(),
            ));
        }
    }
    let mut audit = Audit {
        needles,
        searched: 0,
        outputs: 0,
    };

    // Every command, as people and as JSON, verbose.
    let mut runs: Vec<Vec<&str>> = vec![
        vec!["check"],
        vec!["plan"],
        vec!["policy"],
        vec!["inspect"],
        vec!["preflight"],
        vec!["rewrap", "--dry-run"],
        vec!["verify"],
        vec!["rewrap", "--yes"],
        vec!["verify"],
        vec!["rewrap", "--yes"],
    ];
    for lang in ["python", "node", "java", "go", "csharp", "rust", "mongosh"] {
        for stage in ["transition", "final"] {
            runs.push(vec!["snippet", "--lang", lang, "--stage", stage]);
        }
    }
    let mut codes = Vec::new();
    for args in &runs {
        for json in [false, true] {
            if json && (args[0] == "snippet" || args[0] == "policy") {
                continue;
            }
            let mut a: Vec<&str> = args.clone();
            a.push("-vv");
            if json {
                a.push("--json");
            }
            let out = w.keyshift(&a);
            codes.push((a.join(" "), out.status.code()));
            audit.output(&a.join(" "), &out);
        }
    }
    // Rollback from the first real backup, and the backups themselves.
    let backups = w.backups();
    assert!(!backups.is_empty());
    let first = backups[0].to_str().unwrap().to_string();
    for json in [false, true] {
        let mut a = vec!["rollback", "--yes", "-vv", "--backup", &first];
        if json {
            a.push("--json");
        }
        let out = w.keyshift(&a);
        codes.push((a.join(" "), out.status.code()));
        audit.output(&a.join(" "), &out);
    }

    // Rotate and retire: the rollback put every key back under the local key, so there
    // is work. Plaintexts pass through keyshift here (decrypted, encrypted again).
    let rotate_toml = format!(
        "{full}\n[rotate]\ncollections = [\"{0}.customers\", \"{0}.orders\"]\n\
         [retire]\nallDeploymentsListed = true\n",
        w.db
    );
    std::fs::write(w.dir.join("rotate.toml"), &rotate_toml).unwrap();
    for args in [
        vec!["rotate", "--dry-run"],
        vec!["rotate", "--yes"],
        vec!["retire", "--yes"],
    ] {
        for json in [false, true] {
            let mut a = args.clone();
            a.extend(["-vv", "-c", "rotate.toml"]);
            if json {
                a.push("--json");
            }
            let out = w.keyshift(&a);
            assert_eq!(out.status.code(), Some(0), "{}", a.join(" "));
            codes.push((a.join(" "), out.status.code()));
            audit.output(&a.join(" "), &out);
        }
    }

    // Failures: wrong AWS secret, wrong Azure/GCP targets, a URI with a password that
    // cannot connect, a local key of the wrong size, a literal secret in the config.
    let failing: Vec<Failing> = vec![
        (
            "wrong AWS secret",
            full.clone(),
            vec![("AWS_SECRET_ACCESS_KEY", format!("{}x", v("KS_AWS_SECRET_ACCESS_KEY")))],
        ),
        (
            "MongoDB password, unreachable",
            full.clone(),
            vec![(
                "MONGODB_URI",
                format!("mongodb://keyshift:{mongo_password}@127.0.0.1:1/?serverSelectionTimeoutMS=500"),
            )],
        ),
        (
            "MongoDB password, bad URI",
            full.clone(),
            vec![(
                "MONGODB_URI",
                format!("mongodb://keyshift:{mongo_password}@/?bogus=="),
            )],
        ),
        (
            "target azure",
            full.replacen(
                "[target]",
                &format!(
                    "[target]\nprovider = \"azure\"\nmasterKey = {{ keyVaultEndpoint = \"{}\", keyName = \"{}\" }}\n[ignored]",
                    v("KS_AZURE_VAULT_ENDPOINT"),
                    v("KS_AZURE_KEY_NAME")
                ),
                1,
            ),
            vec![("AZURE_CLIENT_SECRET", format!("{}x", v("KS_AZURE_CLIENT_SECRET")))],
        ),
        (
            "target gcp, corrupted key",
            full.replacen(
                "[target]",
                &format!(
                    "[target]\nprovider = \"gcp\"\nmasterKey = {{ projectId = \"{}\", location = \"{}\", keyRing = \"{}\", keyName = \"{}\", endpoint = \"{}\" }}\n[ignored]",
                    v("KS_GCP_PROJECT_ID"),
                    v("KS_GCP_LOCATION"),
                    v("KS_GCP_KEY_RING"),
                    v("KS_GCP_KEY_NAME"),
                    v("KS_GCP_KMS_ENDPOINT"),
                ),
                1,
            ),
            vec![("GCP_PRIVATE_KEY", gcp[..gcp.len() - 40].to_string())],
        ),
        (
            "literal AWS secret",
            full.replace("\"env:AWS_SECRET_ACCESS_KEY\"", &format!("\"{literal}\"")),
            vec![],
        ),
        (
            "local key of the wrong size",
            full.replace("file:master-key.bin", "file:short-key.bin"),
            vec![],
        ),
    ];
    std::fs::write(w.dir.join("short-key.bin"), &local[..95]).unwrap();
    for (i, (name, toml, env)) in failing.iter().enumerate() {
        let cfg = format!("fail-{i}.toml");
        std::fs::write(w.dir.join(&cfg), toml).unwrap();
        for args in [
            vec!["check"],
            vec!["inspect"],
            vec!["preflight"],
            vec!["rewrap", "--yes"],
            vec!["verify"],
        ] {
            for json in [false, true] {
                let mut a = args.clone();
                a.extend(["-vv", "-c", &cfg]);
                if json {
                    a.push("--json");
                }
                let out = w
                    .command(&a)
                    .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                    .output()
                    .unwrap();
                let label = format!("[{name}] {}", a.join(" "));
                assert_ne!(out.status.code(), Some(101), "{label} panicked");
                codes.push((label.clone(), out.status.code()));
                audit.output(&label, &out);
            }
        }
    }

    // The forced panic (a failpoint of the debug binary), right after every secret of
    // the configuration was resolved.
    let mut panics = 0;
    for args in [
        vec!["preflight", "--json", "-vv"],
        vec!["verify", "--json", "-vv"],
        vec!["inspect", "--json", "-vv"],
    ] {
        let out: Output = w
            .command(&args)
            .env("RUST_BACKTRACE", "full")
            .env("KEYSHIFT_FAILPOINT", "settings.loaded:1:panic")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("panicked") {
            panics += 1;
        }
        audit.check(&format!("forced panic of {args:?}"), &out.stderr);
        audit.check(&format!("forced panic of {args:?}"), &out.stdout);
    }
    assert_eq!(panics, 3, "every forced panic happened");

    // Every file keyshift wrote: backups and anything else beside the config.
    let ours = [
        "keyshift.toml",
        "keyshift.env",
        "master-key.bin",
        "expected.json",
        "seed.json",
        "short-key.bin",
        "rotate.toml",
    ];
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![w.dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !ours.iter().any(|o| p.ends_with(o))
                && !p
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("fail-")
            {
                files.push(p);
            }
        }
    }
    let backups = w.backups();
    assert!(backups.len() >= 2, "rewrap and rollback backups");
    assert!(
        files.contains(&w.audit_log()),
        "the audit log rewrap and rollback wrote is among the files scanned"
    );
    for f in &files {
        audit.check(&f.display().to_string(), &std::fs::read(f).unwrap());
    }
    let _ = Command::new("true").status();
    eprintln!(
        "secret hygiene: {} needles searched through {} outputs and files ({} bytes): \
         {} command runs, {} forced panics, {} files; zero hits",
        audit.needles.len(),
        audit.outputs,
        audit.searched,
        codes.len(),
        panics,
        files.len()
    );
    let _ = std::fs::remove_dir_all(&w.dir);
}
