//! `keyshift rotate` / `retire` under the three hard cases of issue 9, judged by the
//! oracle (tests/interop/rotate_check.py: PyMongo holding only the target provider
//! decrypts every seeded value to its seeded plaintext, nothing is left under an old
//! DEK, validators name only the new keys, the old DEKs are gone from the vault but in
//! the retire backup and still usable from it):
//!
//! - kill -9 at random points during `rotate` (KS_ROTATE_KILLS times, default 6), then
//!   a plain rerun: converges, nothing lost;
//! - an application keeps inserting documents encrypted with the OLD keys (a stale
//!   schemaMap; tests/interop/app_writer.py) while rotate runs and for a while after:
//!   `retire` refuses (exit 3) while such values exist, the rerun catches every one,
//!   then retire succeeds and every value the application wrote is readable under a
//!   new key;
//! - three `rotate --partition I/3` processes at once on the same collections: every
//!   value re-encrypted exactly once (the workers' `reencrypted` counts add up to the
//!   number of seeded values) into a correct state.
//!
//! The world is seeded with nested and array values (`seed.py --nested`) and the full
//! list of plaintexts (`--expected-all`). Reproduce a kill schedule with
//! `KS_ROTATE_SEED=N cargo test -p keyshift --test rotate_robust -- --nocapture` (the
//! seed is printed first). Kills land at failpoints of the binary (`KEYSHIFT_FAILPOINT`),
//! never after a sleep, so the schedule does not depend on the machine's speed.

mod common;
mod stress;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use stress::{Rng, Seeded};

fn env_num(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Seeds `keys` local DEKs and `docs` documents with nested values, every plaintext
/// recorded, and a `[rotate]` section naming both collections; target AWS.
fn seed(prefix: &str, keys: u32, docs: u32) -> Seeded {
    let extra = ["--nested", "--expected-all", "--rotate"];
    stress::seed_with(prefix, keys, docs, "aws", &extra)
}

/// How many encrypted values the seeder wrote.
fn seeded_values(w: &Seeded) -> u64 {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.dir.join("seed.json")).unwrap()).unwrap();
    manifest["encryptedValues"].as_u64().unwrap()
}

/// The oracle's judgement: rotate_check.py on the deployment. Ok(summary) or Err(what failed).
fn rotate_check(w: &Seeded, extra: &[&str]) -> Result<String, String> {
    let out = Command::new(common::python())
        .arg(common::repo_root().join("tests/interop/rotate_check.py"))
        .arg("--dir")
        .arg(&w.dir)
        .arg("--backup-dir")
        .arg(w.dir.join("keyshift-backups"))
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `keyshift rotate --yes --json` (plus `args`) to the end; its JSON report.
fn rotate(w: &Seeded, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["rotate", "--yes", "--json"];
    all.extend_from_slice(args);
    let out = w.keyshift(&all);
    assert!(out.status.success(), "rotate {args:?}: {}", show(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("rotate --json: {e}\n{}", show(&out)))
}

fn retire(w: &Seeded) -> Output {
    w.keyshift(&["retire", "--yes", "--json"])
}

/// Sum of a per-collection counter over a rotate report.
fn total(report: &serde_json::Value, field: &str) -> u64 {
    report["collections"]
        .as_array()
        .map(|c| c.iter().map(|x| x[field].as_u64().unwrap_or(0)).sum())
        .unwrap_or(0)
}

fn assert_private_backups(dir: &Path) {
    for f in std::fs::read_dir(dir).unwrap() {
        let p = f.unwrap().path();
        assert_eq!(
            stress::mode_of(&p) & 0o077,
            0,
            "{} is readable by others",
            p.display()
        );
    }
}

/// The kill points, in the order a run passes them: while inserting replacements,
/// while rewriting validators, while moving keyAltNames, then between value batches.
/// Each is a failpoint of the binary (native/src/failpoint.rs) with a random count, so
/// the schedule is the seed's alone, not the machine's speed.
fn kill_schedule(rng: &mut Rng, kills: u64) -> Vec<String> {
    let mut points = vec![
        format!("rotate.key-inserted:{}", rng.range(1, 9)),
        format!("rotate.validator-updated:{}", rng.range(1, 3)),
        // keys 0 and 4 of the 8 carry a keyAltName (seed.py: every fourth)
        format!("rotate.alt-names-pulled:{}", rng.range(1, 3)),
    ];
    while (points.len() as u64) < kills {
        points.push(format!("rotate.batch-written:{}", rng.range(1, 13)));
    }
    points.truncate(kills.max(1) as usize);
    points
}

#[test]
fn kill_nine_at_random_points_then_a_rerun_converges() {
    let mut rng = Rng::from_env("KS_ROTATE_SEED");
    println!(
        "rotate_robust seed = {} (KS_ROTATE_SEED to reproduce)",
        rng.0
    );
    let kills = env_num("KS_ROTATE_KILLS", 6);
    let w = seed("rot_kill", 8, 2000);
    // Small batches: a run then has many write points for a kill to fall between.
    let toml_path = w.dir.join("keyshift.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    std::fs::write(
        &toml_path,
        toml.replace("batchSize = 256", "batchSize = 16"),
    )
    .unwrap();
    let schedule = kill_schedule(&mut rng, kills);
    let mut killed = 0;
    for (i, point) in schedule.iter().enumerate() {
        let status = w
            .command(&["rotate", "--yes", "--json"])
            .env("KEYSHIFT_FAILPOINT", point)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.code().is_none(),
            "run {} (seed {}) was to die at {point} but ended with {status}",
            i + 1,
            rng.0
        );
        killed += 1;
    }
    println!("{killed} runs killed, at: {schedule:?}");
    let last = rotate(&w, &[]);
    assert_eq!(last["dryRun"], false);
    if let Err(e) = rotate_check(&w, &["--before-retire"]) {
        panic!("after kills and a rerun (seed {}): {e}", rng.0);
    }
    // a second rerun finds nothing left to do
    let again = rotate(&w, &[]);
    assert_eq!(total(&again, "reencrypted"), 0, "{again}");
    let out = retire(&w);
    assert!(out.status.success(), "retire: {}", show(&out));
    if let Err(e) = rotate_check(&w, &[]) {
        panic!("after retire (seed {}): {e}", rng.0);
    }
    assert_private_backups(&w.dir.join("keyshift-backups"));
}

/// Sends SIGTERM to a child (app_writer stops cleanly on it).
fn terminate(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Documents app_writer.py has recorded (three values, so three lines, each).
fn documents_written(file: &Path) -> usize {
    std::fs::read_to_string(file)
        .map(|t| t.lines().count() / 3)
        .unwrap_or(0)
}

/// Waits until app_writer.py has recorded at least `n` documents.
fn wait_for_documents(file: &Path, n: usize) {
    let started = Instant::now();
    while documents_written(file) < n {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the application wrote only {} of {n} documents",
            documents_written(file)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_application_writing_with_the_old_keys_is_caught_by_the_rerun() {
    let w = seed("rot_app", 6, 1500);
    let written: PathBuf = w.dir.join("app-written.jsonl");
    let app = Command::new(common::python())
        .arg(common::repo_root().join("tests/interop/app_writer.py"))
        .arg("--dir")
        .arg(&w.dir)
        .arg("--out")
        .arg(&written)
        .args(["--interval", "0.005"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Progress, not time: the application has written before the run starts, and
    // writes more (with its stale keys) after the run ended.
    wait_for_documents(&written, 10);
    let first = rotate(&w, &[]);
    let after_run = documents_written(&written);
    wait_for_documents(&written, after_run + 10);
    terminate(&app);
    let out = app.wait_with_output().unwrap();
    assert!(out.status.success(), "app_writer: {out:?}");
    let summary: serde_json::Value = serde_json::from_slice(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let n = summary["written"].as_u64().unwrap();
    assert!(n >= 20, "the application wrote only {n} documents");
    println!(
        "app wrote {n} documents; the first run re-encrypted {}",
        total(&first, "reencrypted")
    );
    let written_arg = written.to_str().unwrap();

    // values written after the scan passed are still under old keys: retire must refuse
    let stale = rotate_check(&w, &["--before-retire", "--written", written_arg]);
    let e = stale.expect_err("values written after the run should still be under old keys");
    assert!(e.contains("still under old key"), "{e}");
    let refused = retire(&w);
    assert_eq!(
        refused.status.code(),
        Some(3),
        "retire with stale values: {}",
        show(&refused)
    );
    let report: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap_or_default();
    println!("retire refused: remaining {}", report["remaining"]);

    // the rerun catches every one of them
    let rerun = rotate(&w, &[]);
    assert!(total(&rerun, "reencrypted") > 0, "{rerun}");
    if let Err(e) = rotate_check(&w, &["--before-retire", "--written", written_arg]) {
        panic!("after the rerun: {e}");
    }
    let out = retire(&w);
    assert!(out.status.success(), "retire: {}", show(&out));
    if let Err(e) = rotate_check(&w, &["--written", written_arg]) {
        panic!("after retire: {e}");
    }
}

#[test]
fn three_partitions_at_once_reencrypt_every_value_exactly_once() {
    let w = seed("rot_part", 8, 3000);
    let children: Vec<_> = (0..3)
        .map(|i| {
            w.command(&[
                "rotate",
                "--yes",
                "--json",
                "--partition",
                &format!("{i}/3"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut reencrypted = 0;
    let mut per_worker = HashMap::new();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "partition {i}/3: {}", show(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["partition"]["index"], i as u64, "{report}");
        assert_eq!(report["partition"]["count"], 3, "{report}");
        let n = total(&report, "reencrypted");
        per_worker.insert(i, (n, total(&report, "scanned")));
        reencrypted += n;
    }
    println!("per worker (reencrypted, scanned): {per_worker:?}");
    assert_eq!(
        reencrypted,
        seeded_values(&w),
        "every value re-encrypted exactly once over the three workers"
    );
    assert!(
        per_worker.values().all(|(n, _)| *n > 0),
        "each partition did part of the work: {per_worker:?}"
    );
    if let Err(e) = rotate_check(&w, &["--before-retire"]) {
        panic!("after three partitions: {e}");
    }
    let out = retire(&w);
    assert!(out.status.success(), "retire: {}", show(&out));
    if let Err(e) = rotate_check(&w, &[]) {
        panic!("after retire: {e}");
    }
}
