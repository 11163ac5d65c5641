//! The chain, as a security reviewer relies on it: every edit, deletion or reordering
//! is found and named; a crash's cut line is not mistaken for tampering.

use super::record::{self, KeyRecord, Outcome, Start, Who};
use super::*;
use serde_json::json;

fn log(records: &[Value]) -> String {
    let mut head = Head::genesis();
    let mut text = String::new();
    for r in records {
        let (line, next) = seal(&head, r.clone());
        text.push_str(&line);
        text.push('\n');
        head = next;
    }
    text
}

fn sample() -> String {
    let who = Who {
        user: "ops".into(),
        uid: Some(1000),
        sudo_user: None,
        host: "db1".into(),
        pid: 7,
    };
    let target = json!({"provider": "aws", "key": "arn:aws:kms:us-east-1:111122223333:key/x"});
    let local = json!({"provider": "local"});
    let start = record::start(
        "2026-12-03T00:00:00Z",
        "r1",
        &Start {
            command: "rewrap",
            who: &who,
            keyshift: "0.1.0",
            config_path: "keyshift.toml",
            config_sha256: &hash("cfg"),
            key_vault: "encryption.__keyVault",
            target: Some(&target),
            detail: None,
        },
    );
    let moved = |id: &str| {
        record::key(
            "2026-12-03T00:00:01Z",
            "r1",
            &KeyRecord::new(
                id,
                Some(local.clone()),
                Some(target.clone()),
                Outcome::Moved,
            ),
        )
    };
    let refused = record::key(
        "2026-12-03T00:00:01Z",
        "r1",
        &KeyRecord::new(
            "k3",
            Some(local.clone()),
            Some(local.clone()),
            Outcome::Refused,
        )
        .why("unknown field"),
    );
    let end = record::end(
        "2026-12-03T00:00:02Z",
        "r1",
        true,
        json!({"moved": 2}),
        None,
    );
    log(&[start, moved("k1"), moved("k2"), refused, end])
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

fn join(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn a_sealed_log_verifies_and_its_head_is_the_last_lines_hash() {
    let text = sample();
    let v = verify(&text);
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.records, 5);
    assert_eq!(v.head.seq, 5);
    assert_eq!(v.head.hash, hash(text.lines().last().unwrap()));
    assert!(!v.torn_tail);
}

#[test]
fn the_first_record_points_at_genesis_and_each_next_at_the_one_before() {
    let text = sample();
    let l = lines(&text);
    let first: Value = serde_json::from_str(&l[0]).unwrap();
    assert_eq!(first["prev"], GENESIS);
    assert_eq!(first["seq"], 1);
    let second: Value = serde_json::from_str(&l[1]).unwrap();
    assert_eq!(second["prev"], hash(&l[0]));
}

#[test]
fn an_edited_record_breaks_the_chain_at_the_next_line() {
    let mut l = lines(&sample());
    l[1] = l[1].replace("\"moved\"", "\"refused\"");
    let v = verify(&join(&l));
    let b = v.broken.expect("an edit must be found");
    assert_eq!(b.line, 3);
    assert!(
        b.why.contains("line 2") && b.why.contains("edited"),
        "{}",
        b.why
    );
    assert_eq!(v.records, 2);
}

#[test]
fn a_deleted_record_breaks_the_chain_where_it_was() {
    let mut l = lines(&sample());
    l.remove(2);
    let b = verify(&join(&l)).broken.expect("a deletion must be found");
    assert_eq!(b.line, 3);
    assert!(b.why.contains("deleted"), "{}", b.why);
}

#[test]
fn reordered_records_break_the_chain() {
    let mut l = lines(&sample());
    l.swap(1, 2);
    let b = verify(&join(&l))
        .broken
        .expect("a reordering must be found");
    assert_eq!(b.line, 2);
    assert!(b.why.contains("reordered"), "{}", b.why);
}

#[test]
fn a_record_rewritten_with_a_fresh_seq_and_prev_still_breaks_the_line_after() {
    // Someone who recomputes the edited line's own fields cannot fix its successor.
    let mut l = lines(&sample());
    let mut edited: Value = serde_json::from_str(&l[1]).unwrap();
    edited["to"] = json!({"provider": "local"});
    l[1] = edited.to_string();
    let b = verify(&join(&l)).broken.unwrap();
    assert_eq!(b.line, 3);
}

#[test]
fn removing_the_first_records_is_found() {
    let l = lines(&sample());
    let b = verify(&join(&l[2..])).broken.unwrap();
    assert_eq!(b.line, 1);
}

#[test]
fn a_line_cut_by_a_crash_is_a_torn_tail_not_tampering() {
    let text = sample();
    let cut = &text[..text.len() - 20];
    let v = verify(cut);
    assert!(v.ok(), "{v:?}");
    assert!(v.torn_tail);
    assert_eq!(v.records, 4);
}

#[test]
fn a_complete_last_record_without_its_newline_still_counts() {
    let text = sample();
    let v = verify(text.trim_end_matches('\n'));
    assert!(v.ok());
    assert!(!v.torn_tail);
    assert_eq!(v.records, 5);
}

#[test]
fn garbage_in_the_middle_is_a_break_not_a_torn_tail() {
    let mut l = lines(&sample());
    l.insert(2, "{not json".into());
    let v = verify(&join(&l));
    assert_eq!(v.broken.unwrap().line, 3);
}

#[test]
fn an_empty_log_verifies_with_no_records() {
    let v = verify("");
    assert!(v.ok());
    assert_eq!(v.records, 0);
    assert_eq!(v.head, Head::genesis());
}

#[test]
fn a_chain_continues_from_its_tail() {
    let text = sample();
    let last = text.lines().last().unwrap();
    let head = Head::of_tail(last).unwrap();
    assert_eq!(head.seq, 5);
    let (line, _) = seal(&head, json!({"type": "start", "run": "r2"}));
    let v = verify(&format!("{text}{line}\n"));
    assert!(v.ok());
    assert_eq!(v.records, 6);
    assert_eq!(Head::of_tail("not a record"), None);
}

#[test]
fn an_anchor_proves_the_prefix_up_to_it() {
    let text = sample();
    let anchor = hash(text.lines().nth(2).unwrap());
    assert!(contains(&text, &anchor));
    assert!(contains(&text, &anchor.to_uppercase()));
    let mut l = lines(&text);
    l[2] = l[2].replace("k2", "k9");
    assert!(!contains(&join(&l), &anchor));
}

#[test]
fn the_summary_tells_each_run_and_what_needs_attention() {
    let text = sample();
    let interrupted = log(&[]); // nothing
    assert!(summary::summary(&interrupted).is_empty());
    let runs = summary::summary(&text);
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(r.command, "rewrap");
    assert_eq!(r.who, "ops@db1");
    assert_eq!(r.outcome, "ok");
    assert_eq!(r.keys["moved"], 2);
    assert_eq!(r.keys["refused"], 1);
    assert_eq!(
        r.attention,
        vec![("k3".to_string(), "unknown field".to_string())]
    );
    // Without its end record, a run reads as interrupted.
    let l = lines(&text);
    let runs = summary::summary(&join(&l[..4]));
    assert_eq!(runs[0].outcome, "interrupted");
}

#[test]
fn the_config_hash_is_stable_and_holds_no_secret_text() {
    let toml = r#"
[keyVault]
uri = "env:MONGODB_URI"
namespace = "encryption.__keyVault"
[kmsProviders.local]
key = "file:master.key"
[kmsProviders.aws]
accessKeyId = "env:AWS_ACCESS_KEY_ID"
secretAccessKey = "env:AWS_SECRET_ACCESS_KEY"
[target]
provider = "aws"
masterKey = { region = "us-east-1", key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab" }
"#;
    let parsed = crate::config::parse::parse_toml(toml);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let a = record::config_hash(&parsed.config);
    let b = record::config_hash(&parsed.config);
    assert_eq!(a, b);
    assert_eq!(a.len(), 64);
}

#[test]
fn verify_never_panics_on_arbitrary_text() {
    use proptest::prelude::*;
    proptest!(|(text in ".{0,400}")| {
        let _ = verify(&text);
        let _ = summary::summary(&text);
    });
}
