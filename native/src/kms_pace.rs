//! Pacing KMS requests per provider: the clock and the waiting for
//! [`keyshift_core::kms_rate::RateControl`], which decides.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use keyshift_core::kms_rate::{RateControl, RateStatus};

/// One run's pacing, shared by every KMS transport of the run (rewrap's and the
/// proofs' alike), per provider name.
#[derive(Debug)]
pub struct KmsPace {
    epoch: Instant,
    ceiling: Option<f64>,
    providers: Mutex<HashMap<String, RateControl>>,
}

impl Default for KmsPace {
    fn default() -> Self {
        KmsPace::new(None)
    }
}

impl KmsPace {
    /// At most `ceiling` requests per second per provider (`None`: only the pace
    /// throttling answers impose).
    pub fn new(ceiling: Option<f64>) -> Self {
        KmsPace {
            epoch: Instant::now(),
            ceiling,
            providers: Mutex::default(),
        }
    }

    fn with<T>(
        &self,
        provider: &str,
        f: impl FnOnce(&mut RateControl, std::time::Duration) -> T,
    ) -> T {
        let now = self.epoch.elapsed();
        let mut map = self.providers.lock().unwrap_or_else(|e| e.into_inner());
        let rc = map
            .entry(provider.to_string())
            .or_insert_with(|| RateControl::new(self.ceiling));
        f(rc, now)
    }

    /// Waits for this request's slot.
    pub async fn admit(&self, provider: &str) {
        let wait = self.with(provider, |rc, now| rc.reserve(now));
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Reports a request's answer: throttled, or answered normally.
    pub fn answered(&self, provider: &str, throttled: bool) {
        self.with(provider, |rc, now| {
            if throttled {
                rc.throttled(now)
            } else {
                rc.succeeded(now)
            }
        })
    }

    /// Sends one request at its slot and reports its answer: `throttled` says which
    /// failures are the KMS answering "throttled"; other failures teach nothing.
    pub async fn paced<T, E>(
        &self,
        provider: &str,
        throttled: impl Fn(&E) -> bool,
        request: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        self.admit(provider).await;
        let out = request.await;
        match &out {
            Ok(_) => self.answered(provider, false),
            Err(e) if throttled(e) => self.answered(provider, true),
            Err(_) => {}
        }
        out
    }

    /// Every provider asked so far, with its current pace (by name).
    pub fn status(&self) -> Vec<(String, RateStatus)> {
        let now = self.epoch.elapsed();
        let mut map = self.providers.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(String, RateStatus)> = map
            .iter_mut()
            .map(|(name, rc)| (name.clone(), rc.status(now)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// One line for progress: each provider's requests in the last second, and its
    /// throttled answers and pace when it was throttled.
    pub fn summary(&self) -> String {
        self.status()
            .iter()
            .map(|(name, s)| match (s.throttled, s.allowed) {
                (0, _) => format!("{name} {:.0} req/s", s.observed),
                (n, Some(pace)) => format!(
                    "{name} {:.0} req/s, {n} throttled, paced at {pace:.0}/s",
                    s.observed
                ),
                (n, None) => format!("{name} {:.0} req/s, {n} throttled", s.observed),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Throttled answers in all providers.
    pub fn throttled(&self) -> u64 {
        self.status().iter().map(|(_, s)| s.throttled).sum()
    }
}
