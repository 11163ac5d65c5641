//! How fast keyshift sends requests to one KMS provider.
//!
//! A KMS quota is shared with the applications' own decrypts (AWS KMS: 10,000
//! symmetric requests/s per account and region by default; Azure Key Vault: 4,000
//! RSA-2048 operations per 10 s per vault; GCP: per-project rates), and a KMS beyond it
//! answers "throttled" (AWS `ThrottlingException`, HTTP 429 elsewhere). A migration must
//! not starve production, so requests are paced by two limits:
//!
//! - the **ceiling**, `[rewrap] kmsRate` (requests per second per provider; each
//!   `--partition I/N` worker takes 1/N of it): never exceeded. Requests are spaced at
//!   least 1/rate apart, so no window of any length holds more than rate × length + 1.
//! - the **adaptive rate**, below the ceiling: unlimited until the KMS first throttles,
//!   then additive increase, multiplicative decrease (AIMD, as TCP does for a shared
//!   link). A throttled answer cuts the rate to [`DECREASE`] of what the KMS accepted
//!   over the last second, its measured room (at most once per [`COOL_DOWN`], as the
//!   answers to requests already in flight say the same thing); each success raises
//!   it so that it grows by [`INCREASE`] of itself per second, probing for room the
//!   applications left.
//!
//! Pacing a rate rather than a window of requests in flight keeps the decision
//! independent of latency: at 0 ms a single request in flight can exceed any quota.
//! Everything here is a function of the times the shell reports (a [`Duration`]
//! since the run started); the shell sleeps as told.

use std::collections::VecDeque;
use std::time::Duration;

/// The rate after a throttled answer, as a share of the rate observed.
pub const DECREASE: f64 = 0.7;
/// Growth of the adaptive rate per second of successes, as a share of itself.
pub const INCREASE: f64 = 0.1;
/// Throttled answers within this time of a cut do not cut again.
pub const COOL_DOWN: Duration = Duration::from_secs(1);
/// The adaptive rate never goes below this (requests per second).
pub const FLOOR: f64 = 1.0;
const WINDOW: Duration = Duration::from_secs(1);

/// One provider's pacing state.
#[derive(Debug, Clone)]
pub struct RateControl {
    ceiling: Option<f64>,
    adaptive: Option<f64>,
    next_slot: Duration,
    started: VecDeque<Duration>,
    accepted: VecDeque<Duration>,
    last_cut: Option<Duration>,
    throttled: u64,
}

/// What progress shows about a provider.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateStatus {
    /// Requests started in the last second.
    pub observed: f64,
    /// The pace currently allowed (`None`: unlimited).
    pub allowed: Option<f64>,
    /// Throttled answers so far.
    pub throttled: u64,
}

impl RateControl {
    /// A provider paced at most at `ceiling` requests per second (`None`: no
    /// ceiling, only the adaptive rate).
    pub fn new(ceiling: Option<f64>) -> Self {
        RateControl {
            ceiling: ceiling.filter(|c| c.is_finite() && *c > 0.0),
            adaptive: None,
            next_slot: Duration::ZERO,
            started: VecDeque::new(),
            accepted: VecDeque::new(),
            last_cut: None,
            throttled: 0,
        }
    }

    /// The pace in force: the lower of the ceiling and the adaptive rate.
    pub fn allowed(&self) -> Option<f64> {
        match (self.ceiling, self.adaptive) {
            (Some(c), Some(a)) => Some(c.min(a)),
            (c, a) => c.or(a),
        }
    }

    /// Books the next request at `now`: how long to wait before sending it.
    pub fn reserve(&mut self, now: Duration) -> Duration {
        let start = match self.allowed() {
            Some(rate) => {
                let start = self.next_slot.max(now);
                self.next_slot = start + Duration::from_secs_f64(1.0 / rate);
                start
            }
            None => now,
        };
        self.started.push_back(start);
        self.forget_before(now);
        start - now
    }

    /// A request answered normally at `now`: the adaptive rate grows.
    pub fn succeeded(&mut self, now: Duration) {
        self.accepted.push_back(now);
        self.forget_before(now);
        if let Some(rate) = self.adaptive {
            // One success per 1/rate seconds: INCREASE × rate per second in all.
            self.adaptive = Some(rate + INCREASE);
            if let Some(c) = self.ceiling
                && rate + INCREASE > c
            {
                self.adaptive = Some(c);
            }
        }
    }

    /// A request answered "throttled" at `now`: the adaptive rate drops (once per
    /// [`COOL_DOWN`]) and the next request waits for its slot at the new pace.
    pub fn throttled(&mut self, now: Duration) {
        self.throttled += 1;
        self.forget_before(now);
        if self.last_cut.is_some_and(|t| now < t + COOL_DOWN) {
            return;
        }
        self.last_cut = Some(now);
        let room = self.accepted.len() as f64 / WINDOW.as_secs_f64();
        let base = match self.allowed() {
            Some(a) => a.min(room),
            None => room,
        };
        let cut = (base * DECREASE).max(FLOOR);
        self.adaptive = Some(cut);
        self.next_slot = self.next_slot.max(now) + Duration::from_secs_f64(1.0 / cut);
    }

    /// What progress shows.
    pub fn status(&mut self, now: Duration) -> RateStatus {
        self.forget_before(now);
        RateStatus {
            observed: self.observed(),
            allowed: self.allowed(),
            throttled: self.throttled,
        }
    }

    fn observed(&self) -> f64 {
        self.started.len() as f64 / WINDOW.as_secs_f64()
    }

    fn forget_before(&mut self, now: Duration) {
        let from = now.saturating_sub(WINDOW);
        for times in [&mut self.started, &mut self.accepted] {
            while times.front().is_some_and(|t| *t < from) {
                times.pop_front();
            }
        }
    }
}

/// A `--partition I/N` worker's share of a ceiling.
pub fn share(ceiling: Option<f64>, workers: u32) -> Option<f64> {
    ceiling.map(|c| c / f64::from(workers.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Sends `n` requests as fast as `rc` lets them go, from `at`; returns their
    /// start times.
    fn send(rc: &mut RateControl, at: Duration, n: usize) -> Vec<Duration> {
        (0..n)
            .map(|_| {
                let wait = rc.reserve(at);
                at + wait
            })
            .collect()
    }

    #[test]
    fn without_a_ceiling_or_throttling_nothing_waits() {
        let mut rc = RateControl::new(None);
        assert!(send(&mut rc, ms(0), 1000).iter().all(|t| *t == ms(0)));
        assert_eq!(rc.status(ms(0)).allowed, None);
    }

    #[test]
    fn a_ceiling_spaces_requests_so_no_second_holds_more_than_the_rate() {
        let mut rc = RateControl::new(Some(50.0));
        let starts = send(&mut rc, ms(0), 500);
        for (i, t) in starts.iter().enumerate() {
            assert_eq!(*t, ms(20 * i as u64));
        }
        // Any window of one second holds at most 50 (+1 at its closed edge).
        for w in starts.windows(51) {
            assert!(w[50] - w[0] >= Duration::from_secs(1));
        }
    }

    #[test]
    fn throttling_cuts_the_rate_to_a_share_of_what_the_kms_accepted_once_per_cool_down() {
        let mut rc = RateControl::new(None);
        send(&mut rc, ms(0), 200); // 200 requests sent in the last second,
        for _ in 0..50 {
            rc.succeeded(ms(5)); // of which the KMS accepted 50
        }
        rc.throttled(ms(10));
        let after = rc.allowed().unwrap();
        assert!((after - 50.0 * DECREASE).abs() < 1e-9, "{after}");
        // The other answers in flight say the same: no further cut within the cool-down.
        rc.throttled(ms(20));
        rc.throttled(ms(900));
        assert_eq!(rc.allowed(), Some(after));
        assert_eq!(rc.status(ms(900)).throttled, 3);
    }

    #[test]
    fn successes_grow_the_rate_back_by_a_tenth_of_itself_per_second_up_to_the_ceiling() {
        let mut rc = RateControl::new(Some(100.0));
        for _ in 0..100 {
            rc.succeeded(ms(500));
        }
        rc.throttled(ms(1000));
        let cut = rc.allowed().unwrap();
        assert!(cut < 100.0);
        // A second of successes at the cut rate: `cut` successes.
        for _ in 0..cut as usize {
            rc.succeeded(ms(1500));
        }
        let grown = rc.allowed().unwrap();
        assert!(
            (grown - cut * (1.0 + INCREASE)).abs() < 0.2,
            "{cut} -> {grown}"
        );
        for _ in 0..10_000 {
            rc.succeeded(ms(2000));
        }
        assert_eq!(rc.allowed(), Some(100.0), "never above the ceiling");
    }

    #[test]
    fn a_throttled_provider_under_a_ceiling_is_cut_below_it() {
        let mut rc = RateControl::new(Some(40.0));
        for _ in 0..60 {
            rc.succeeded(ms(100));
        }
        rc.throttled(ms(900));
        assert!((rc.allowed().unwrap() - 40.0 * DECREASE).abs() < 1e-9);
    }

    #[test]
    fn the_rate_never_drops_below_the_floor() {
        let mut rc = RateControl::new(None);
        rc.throttled(ms(0));
        assert_eq!(rc.allowed(), Some(FLOOR));
        let starts = send(&mut rc, ms(0), 3);
        assert!(starts[2] - starts[1] >= Duration::from_secs(1));
    }

    #[test]
    fn partition_workers_share_the_ceiling() {
        assert_eq!(share(Some(300.0), 3), Some(100.0));
        assert_eq!(share(Some(300.0), 0), Some(300.0));
        assert_eq!(share(None, 4), None);
    }

    #[test]
    fn nonsense_ceilings_mean_none() {
        assert_eq!(RateControl::new(Some(0.0)).allowed(), None);
        assert_eq!(RateControl::new(Some(f64::NAN)).allowed(), None);
        assert_eq!(RateControl::new(Some(-3.0)).allowed(), None);
    }

    /// A simulated KMS that throttles above `limit`: the adaptive rate settles
    /// between DECREASE × limit and the limit.
    #[test]
    fn against_a_throttling_kms_the_rate_settles_near_its_limit() {
        let limit = 80.0;
        let mut rc = RateControl::new(None);
        let mut accepted: VecDeque<Duration> = VecDeque::new();
        let mut now = Duration::ZERO;
        let mut late = Vec::new();
        while now < Duration::from_secs(60) {
            now += rc.reserve(now);
            while accepted.front().is_some_and(|t| *t + WINDOW <= now) {
                accepted.pop_front();
            }
            if accepted.len() as f64 >= limit {
                rc.throttled(now);
            } else {
                accepted.push_back(now);
                rc.succeeded(now);
            }
            if now > Duration::from_secs(20) {
                late.push(rc.allowed().unwrap_or(f64::INFINITY));
            }
        }
        let mean = late.iter().sum::<f64>() / late.len() as f64;
        assert!(
            mean > limit * DECREASE * 0.95 && mean < limit * 1.1,
            "{mean}"
        );
    }
}
