//! Retry policy: how long to wait before the next attempt, and when to give up.
//!
//! Every retry loop of the native shell (a batch rewrap, a proof, a key vault write
//! through a failover, a KMS request that never reached libmongocrypt) asks one
//! [`Backoff`] the same question after a failure it judged retryable: "wait how long,
//! or stop?". What is retryable is the caller's judgement (a typed error); when and
//! how often is decided here, from counts and elapsed time the shell passes in.

use std::time::Duration;

/// An exponential backoff with a cap, bounded by attempts, by patience, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure; each further failure doubles it.
    pub first: Duration,
    /// No wait is longer than this.
    pub cap: Duration,
    /// Attempts in all (the first included); `None`: no limit by count.
    pub attempts: Option<u32>,
    /// No new attempt starts once this much time has passed since the first;
    /// `None`: no limit by time.
    pub patience: Option<Duration>,
}

impl Backoff {
    /// A libmongocrypt context over a batch, or a proof: it wrote nothing when it
    /// failed, so another try is always safe. libmongocrypt already retries most
    /// transient KMS failures three times, but not AWS throttling (HTTP 400) nor KMIP
    /// network errors: four tries, 0.5 s, 1 s, 2 s apart.
    pub const KMS_CONTEXT: Backoff = Backoff {
        first: Duration::from_millis(500),
        cap: Duration::from_secs(2),
        attempts: Some(4),
        patience: None,
    };

    /// A key vault or collection write through a replica set election: as long as a
    /// failover takes (a minute), 0.2 s doubling up to 3 s.
    pub const FAILOVER: Backoff = Backoff {
        first: Duration::from_millis(200),
        cap: Duration::from_secs(3),
        attempts: None,
        patience: Some(Duration::from_secs(60)),
    };

    /// One KMS request whose reply never reached libmongocrypt (a refused connection,
    /// a cut reply): sent again at once-ish, before libmongocrypt spends one of its own
    /// attempts. Three tries, 0.2 s and 0.4 s apart.
    pub const KMS_REQUEST: Backoff = Backoff {
        first: Duration::from_millis(200),
        cap: Duration::from_millis(400),
        attempts: Some(3),
        patience: None,
    };

    /// After `failures` failed attempts (1 after the first), begun `elapsed` ago:
    /// the wait before the next attempt, or `None` to give up and report the last
    /// failure.
    pub fn next(&self, failures: u32, elapsed: Duration) -> Option<Duration> {
        if failures == 0 {
            return Some(Duration::ZERO);
        }
        if self.attempts.is_some_and(|max| failures >= max) {
            return None;
        }
        if self.patience.is_some_and(|p| elapsed >= p) {
            return None;
        }
        let doubled = self
            .first
            .checked_mul(1u32.checked_shl(failures - 1).unwrap_or(u32::MAX))
            .unwrap_or(self.cap);
        Some(doubled.min(self.cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waits(b: Backoff, elapsed: Duration) -> Vec<Option<u64>> {
        (1..=6)
            .map(|n| b.next(n, elapsed).map(|d| d.as_millis() as u64))
            .collect()
    }

    #[test]
    fn a_kms_context_is_tried_four_times_with_doubling_waits() {
        assert_eq!(
            waits(Backoff::KMS_CONTEXT, Duration::ZERO),
            [Some(500), Some(1000), Some(2000), None, None, None]
        );
    }

    #[test]
    fn a_write_through_a_failover_waits_up_to_the_cap_until_patience_runs_out() {
        assert_eq!(
            waits(Backoff::FAILOVER, Duration::from_secs(5)),
            [
                Some(200),
                Some(400),
                Some(800),
                Some(1600),
                Some(3000),
                Some(3000)
            ]
        );
        assert_eq!(Backoff::FAILOVER.next(1, Duration::from_secs(60)), None);
        assert_eq!(
            Backoff::FAILOVER.next(400, Duration::from_secs(59)),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn a_kms_request_is_sent_three_times() {
        assert_eq!(
            waits(Backoff::KMS_REQUEST, Duration::ZERO),
            [Some(200), Some(400), None, None, None, None]
        );
    }

    #[test]
    fn huge_failure_counts_saturate_at_the_cap() {
        let b = Backoff {
            attempts: None,
            patience: None,
            ..Backoff::FAILOVER
        };
        assert_eq!(
            b.next(u32::MAX, Duration::ZERO),
            Some(Duration::from_secs(3))
        );
        assert_eq!(b.next(33, Duration::ZERO), Some(Duration::from_secs(3)));
    }
}
