//! Files keyshift makes on a shared host: the dry run's scratch space is a fresh private
//! directory (random name, 0700) that no other user can pre-create or link, and gone
//! afterwards; a backup directory any user may write into (without the sticky bit) is
//! refused before anything is read or written. (That a backup file is created
//! exclusively, never through a planted file or link, is unit-tested in
//! native/src/rewrap/backup.rs.)

mod common;
mod stress;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn the_dry_run_scratch_space_is_private_fresh_and_removed() {
    let d = stress::seed_with("tmp_scratch", 6, 2, "aws", &[]);
    let before = d.all_keys().await;
    // A temporary directory shared by every user, as /tmp is (sticky, 1777), holding a
    // link planted at the path the scratch space had before (keyshift-dry-run-<run id>).
    let shared = d.dir.join("shared-tmp");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = d.dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, shared.join("keyshift-dry-run-planted")).unwrap();
    let planted = entries(&shared);

    // Stopped (SIGKILL, failpoint) right after the scratch backup is synced: the scratch
    // space is still there to look at.
    let out = d
        .command(&["rewrap", "--dry-run"])
        .env("TMPDIR", &shared)
        .env("KEYSHIFT_FAILPOINT", "rewrap.backup-synced:1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the failpoint must stop the run");
    let made: Vec<PathBuf> = entries(&shared)
        .into_iter()
        .filter(|p| !planted.contains(p))
        .collect();
    assert_eq!(made.len(), 1, "one scratch directory: {made:?}");
    let scratch = &made[0];
    let meta = std::fs::symlink_metadata(scratch).unwrap();
    assert!(meta.is_dir(), "a real directory, not a link");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
    let name = scratch.file_name().unwrap().to_string_lossy().into_owned();
    let random = name.strip_prefix("keyshift-dry-run-").expect(&name);
    assert!(
        random.len() >= 24 && random.chars().all(|c| c.is_ascii_hexdigit()),
        "an unguessable name: {name}"
    );
    for f in entries(scratch) {
        assert_eq!(stress::mode_of(&f) & 0o777, 0o600, "{}", f.display());
    }
    std::fs::remove_dir_all(scratch).unwrap();

    // A whole dry run leaves nothing behind, and never touched the planted link.
    let out = d
        .command(&["rewrap", "--dry-run"])
        .env("TMPDIR", &shared)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(entries(&shared), planted, "the scratch space is removed");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(d.all_keys().await, before, "a dry run writes nothing");
}

#[tokio::test]
async fn a_backup_directory_anyone_can_write_is_refused_before_any_write() {
    let d = stress::seed_with("tmp_open_backups", 6, 2, "aws", &[]);
    let before = d.all_keys().await;
    let backups = d.dir.join("keyshift-backups");
    std::fs::create_dir_all(&backups).unwrap();
    std::fs::set_permissions(&backups, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = d.keyshift(&["rewrap", "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("writable by every user"), "{stderr}");
    assert!(stderr.contains("chmod 700"), "says what to do: {stderr}");
    assert!(entries(&backups).is_empty(), "no backup written there");
    assert_eq!(d.all_keys().await, before, "nothing written");

    // Once only its owner can write there, the same command moves every key.
    std::fs::set_permissions(&backups, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = d.keyshift(&["rewrap", "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(d.backups().len(), 1);
}
