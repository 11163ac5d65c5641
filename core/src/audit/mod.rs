//! The audit trail: a hash-chained JSON Lines log of every change to the key vault.
//!
//! Each line is one JSON object (a [`record`]) that carries `seq` (1, 2, 3, … in file
//! order) and `prev`, the SHA-256 of the previous line's exact bytes ([`GENESIS`] for
//! the first). Editing a line changes its hash, so the next line's `prev` no longer
//! matches; deleting or reordering lines breaks `seq` or `prev` where it happened.
//! [`verify`] names the first such place. A chain cannot show that its *last* lines
//! were removed or edited: anchor it by keeping the head hash elsewhere (each run
//! prints it; `keyshift audit verify --head` checks it) or by shipping records away as
//! they are written (the MongoDB copy, a SIEM).
//!
//! This module decides, without I/O: how a record is sealed into a line ([`seal`]),
//! where an existing file's chain continues ([`Head::of_tail`]), whether a file
//! verifies ([`verify`]) and what it says ([`summary`]). The native shell appends,
//! locks and fsyncs.

pub mod record;
pub mod summary;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The `prev` of a file's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The record format this build writes and reads (`v`).
pub const FORMAT: u64 = 1;

/// SHA-256 of a line's bytes (without its newline), lower-case hex.
pub fn hash(line: &str) -> String {
    Sha256::digest(line.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where a chain continues: the last record's `seq` and the hash of its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// `seq` of the last record (0: none yet).
    pub seq: u64,
    /// Hash of the last record's line ([`GENESIS`] when there is none).
    pub hash: String,
}

impl Head {
    /// The head of an empty log.
    pub fn genesis() -> Head {
        Head {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }

    /// The head after `line`, the last complete line of a log; `None` when it is not a
    /// record (the file is not an audit log, or it is broken: verify it).
    pub fn of_tail(line: &str) -> Option<Head> {
        let value: Value = serde_json::from_str(line).ok()?;
        let seq = value.get("seq")?.as_u64()?;
        Some(Head {
            seq,
            hash: hash(line),
        })
    }
}

/// Seals `record` (a JSON object; other values are wrapped as `{"value": …}`) as the
/// record after `head`: adds `v`, `seq` and `prev`. Returns the line (no newline) and
/// the new head.
pub fn seal(head: &Head, record: Value) -> (String, Head) {
    let mut object = match record {
        Value::Object(map) => map,
        other => Map::from_iter([("value".to_string(), other)]),
    };
    let seq = head.seq + 1;
    object.insert("v".into(), FORMAT.into());
    object.insert("seq".into(), seq.into());
    object.insert("prev".into(), head.hash.clone().into());
    let line = Value::Object(object).to_string();
    let next = Head {
        seq,
        hash: hash(&line),
    };
    (line, next)
}

/// Where and why a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// 1-based line number in the file.
    pub line: usize,
    /// What is wrong there, and what it means.
    pub why: String,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Records that verify, from the first line on (all of them when `broken` is none).
    pub records: u64,
    /// The head after the last record that verifies.
    pub head: Head,
    /// The first place the chain breaks.
    pub broken: Option<Break>,
    /// The file ends in a line without its newline that is not a record: a write cut
    /// by a crash. The records before it verify; the next run repairs it, recording that.
    pub torn_tail: bool,
}

impl Verdict {
    /// Whether the whole file verifies (a torn tail left by a crash is allowed).
    pub fn ok(&self) -> bool {
        self.broken.is_none()
    }
}

/// Checks a whole log: every line a record of this format, `seq` counting up from 1,
/// every `prev` the hash of the line before. Stops at the first break.
pub fn verify(text: &str) -> Verdict {
    let mut head = Head::genesis();
    let mut records = 0u64;
    let ends_cleanly = text.is_empty() || text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let number = index + 1;
        let last = number == lines.len();
        let broken = |why: String| Break { line: number, why };
        let value: Value = match serde_json::from_str(line) {
            Ok(Value::Object(map)) => Value::Object(map),
            Ok(_) | Err(_) if last && !ends_cleanly => {
                return Verdict {
                    records,
                    head,
                    broken: None,
                    torn_tail: true,
                };
            }
            Ok(_) => return verdict(records, head, broken("not a JSON object".into())),
            Err(e) => return verdict(records, head, broken(format!("not JSON ({e})"))),
        };
        if value.get("v").and_then(Value::as_u64) != Some(FORMAT) {
            return verdict(
                records,
                head,
                broken(format!("not an audit record of format {FORMAT} (`v`)")),
            );
        }
        let seq = value.get("seq").and_then(Value::as_u64);
        let prev = value.get("prev").and_then(Value::as_str);
        if seq != Some(head.seq + 1) {
            let found = seq.map_or("none".to_string(), |s| s.to_string());
            let why = format!(
                "seq is {found}, expected {}: a record before it was deleted, or records were reordered",
                head.seq + 1
            );
            return verdict(records, head, broken(why));
        }
        if prev != Some(head.hash.as_str()) {
            let why = if number == 1 {
                "prev is not the genesis hash: records before it were removed".to_string()
            } else {
                format!(
                    "prev does not match the hash of line {}: that line was edited (or replaced)",
                    number - 1
                )
            };
            return verdict(records, head, broken(why));
        }
        records += 1;
        head = Head {
            seq: head.seq + 1,
            hash: hash(line),
        };
    }
    Verdict {
        records,
        head,
        broken: None,
        torn_tail: false,
    }
}

fn verdict(records: u64, head: Head, broken: Break) -> Verdict {
    Verdict {
        records,
        head,
        broken: Some(broken),
        torn_tail: false,
    }
}

/// Whether a verified log holds a record whose line hashes to `anchor` (a head printed
/// by an earlier run): if it does, nothing up to that record was changed since.
pub fn contains(text: &str, anchor: &str) -> bool {
    let anchor = anchor.trim().to_ascii_lowercase();
    text.lines().any(|line| hash(line) == anchor)
}

#[cfg(test)]
mod tests;
