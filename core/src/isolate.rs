//! Isolating the key documents libmongocrypt refuses within a batch, and the verdict
//! on the batch.
//!
//! rewrap hands libmongocrypt a batch of key documents at a time. When libmongocrypt
//! refuses the batch itself (a document it does not accept, not a KMS's answer), the
//! batch is bisected until every refused document stands alone, so one bad document
//! never holds back the others. If every key of a batch of more than one is refused,
//! the cause is the configuration (a wrong local master key fails every unwrap alike),
//! not the documents: the run stops and says so instead of naming each key.
//!
//! The shell asks [`Isolation::next_part`] for a part to try, reports what libmongocrypt
//! said with [`Isolation::refused`] (or nothing, for a part that went through), and
//! ends with [`Isolation::verdict`].

use std::collections::HashMap;
use std::ops::Range;

/// A batch's refused keys (index, reason), or the stop.
pub type Verdict = Result<Vec<(usize, String)>, EveryKeyRefused>;

/// The state of one batch's isolation.
#[derive(Debug, Clone)]
pub struct Isolation {
    len: usize,
    /// Parts still to try, the next one last.
    todo: Vec<Range<usize>>,
    refused: Vec<(usize, String)>,
}

/// Every key of a batch refused: the configuration, not the documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EveryKeyRefused {
    /// Keys in the batch.
    pub keys: usize,
    /// The most frequent reason (ties: the first in text order).
    pub reason: String,
    /// How many keys were refused for it.
    pub count: usize,
}

impl std::fmt::Display for EveryKeyRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "libmongocrypt refused every key of a batch ({} keys; {} of them for: {}). \
             That points at the configuration (for example the wrong local master key) \
             rather than at the key documents: check with `keyshift preflight`, and \
             `keyshift inspect` for the documents",
            self.keys, self.count, self.reason
        )
    }
}

impl Isolation {
    /// A batch of `len` key documents, not tried yet.
    pub fn new(len: usize) -> Self {
        let mut todo = Vec::new();
        if len > 0 {
            todo.push(0..len);
        }
        Isolation {
            len,
            todo,
            refused: Vec::new(),
        }
    }

    /// The next part of the batch to hand libmongocrypt, in batch order; `None` when
    /// every key is either through or isolated.
    pub fn next_part(&mut self) -> Option<Range<usize>> {
        self.todo.pop()
    }

    /// libmongocrypt refused `part` (as returned by [`Isolation::next_part`]) for `why`: a
    /// single key is isolated, a larger part is split in two and tried again.
    pub fn refused(&mut self, part: Range<usize>, why: String) {
        if part.len() <= 1 {
            self.refused.push((part.start, why));
            return;
        }
        let mid = part.start + part.len() / 2;
        // The first half is popped first, so keys are tried in batch order.
        self.todo.push(mid..part.end);
        self.todo.push(part.start..mid);
    }

    /// The refused keys (index in the batch, reason), or the stop when every key of
    /// a batch of more than one was refused.
    pub fn verdict(self) -> Verdict {
        if self.len > 1 && self.refused.len() == self.len {
            let mut reasons: HashMap<&str, usize> = HashMap::new();
            for (_, why) in &self.refused {
                *reasons.entry(why.as_str()).or_default() += 1;
            }
            let (reason, count) = reasons
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
                .unwrap_or(("", 0));
            return Err(EveryKeyRefused {
                keys: self.len,
                reason: reason.to_string(),
                count,
            });
        }
        Ok(self.refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs an isolation where libmongocrypt refuses any part holding a bad index.
    fn isolate(len: usize, bad: &[usize]) -> (Vec<(usize, usize)>, Verdict) {
        let mut iso = Isolation::new(len);
        let mut tried: Vec<(usize, usize)> = Vec::new();
        while let Some(part) = iso.next_part() {
            tried.push((part.start, part.end));
            if let Some(b) = bad.iter().find(|b| part.contains(b)) {
                iso.refused(part, format!("bad {b}"));
            }
        }
        (tried, iso.verdict())
    }

    #[test]
    fn a_clean_batch_is_tried_once() {
        let (tried, verdict) = isolate(8, &[]);
        assert_eq!(tried, [(0, 8)]);
        assert_eq!(verdict, Ok(vec![]));
    }

    #[test]
    fn one_bad_document_is_isolated_by_bisection_in_batch_order() {
        let (tried, verdict) = isolate(8, &[5]);
        assert_eq!(
            tried,
            [(0, 8), (0, 4), (4, 8), (4, 6), (4, 5), (5, 6), (6, 8)]
        );
        assert_eq!(verdict, Ok(vec![(5, "bad 5".into())]));
    }

    #[test]
    fn every_bad_document_is_named_and_the_others_go_through() {
        let (_, verdict) = isolate(7, &[0, 3, 6]);
        let refused: Vec<usize> = verdict.unwrap().into_iter().map(|(i, _)| i).collect();
        assert_eq!(refused, [0, 3, 6]);
    }

    #[test]
    fn every_key_refused_points_at_the_configuration_with_the_commonest_reason() {
        let mut iso = Isolation::new(3);
        let mut n = 0;
        while let Some(part) = iso.next_part() {
            n += 1;
            let why = if part == (2..3) {
                "other"
            } else {
                "HMAC validation failure"
            };
            iso.refused(part, why.into());
        }
        assert_eq!(n, 5);
        let stop = iso.verdict().unwrap_err();
        assert_eq!((stop.keys, stop.count), (3, 2));
        assert_eq!(stop.reason, "HMAC validation failure");
        assert!(stop.to_string().contains("keyshift preflight"));
    }

    #[test]
    fn a_single_refused_key_is_about_the_document_and_an_empty_batch_tries_nothing() {
        let (tried, verdict) = isolate(1, &[0]);
        assert_eq!(tried, [(0, 1)]);
        assert_eq!(verdict, Ok(vec![(0, "bad 0".into())]));
        let (tried, verdict) = isolate(0, &[]);
        assert!(tried.is_empty());
        assert_eq!(verdict, Ok(vec![]));
    }
}
