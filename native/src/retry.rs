//! The one retry loop of the shell. What is worth another try is the caller's typed
//! judgement (`retryable`); how long to wait and when to give up is
//! [`keyshift_core::retry::Backoff`]'s.

use keyshift_core::retry::Backoff;

/// Runs `attempt` until it succeeds, fails in a way `retryable` rejects, or `policy`
/// gives up; the last failure is returned as it was.
pub async fn retry<T, E, F, Fut>(
    what: &str,
    policy: Backoff,
    retryable: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut retrier = Retrier::new(policy);
    loop {
        match attempt().await {
            Err(e) if retryable(&e) && retrier.again(what, &e).await => {}
            other => return other,
        }
    }
}

/// The loop's state, for a loop that cannot be a closure (an attempt borrowing a
/// libmongocrypt context mutably).
pub struct Retrier {
    policy: Backoff,
    started: std::time::Instant,
    failures: u32,
}

impl Retrier {
    /// Before the first attempt.
    pub fn new(policy: Backoff) -> Self {
        Retrier {
            policy,
            started: std::time::Instant::now(),
            failures: 0,
        }
    }

    /// After a retryable failure: waits as the policy says and yields true, or yields
    /// false at once when the policy gives up. (The wait borrows nothing, so a
    /// spawned task may hold it.)
    pub fn again(
        &mut self,
        what: &str,
        error: &dyn std::fmt::Display,
    ) -> impl Future<Output = bool> + use<> {
        self.failures = self.failures.saturating_add(1);
        let wait = self.policy.next(self.failures, self.started.elapsed());
        if let Some(wait) = wait {
            tracing::info!(failures = self.failures, %error, ?wait, "{what}: retrying");
        }
        async move {
            match wait {
                Some(wait) => {
                    tokio::time::sleep(wait).await;
                    true
                }
                None => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const QUICK: Backoff = Backoff {
        first: Duration::from_millis(1),
        cap: Duration::from_millis(2),
        attempts: Some(3),
        patience: None,
    };

    #[tokio::test]
    async fn a_retryable_failure_is_tried_again_until_the_policy_gives_up() {
        let calls = std::cell::Cell::new(0);
        let r: Result<(), String> = retry(
            "t",
            QUICK,
            |_| true,
            || async {
                calls.set(calls.get() + 1);
                Err(format!("failure {}", calls.get()))
            },
        )
        .await;
        assert_eq!((calls.get(), r), (3, Err("failure 3".into())));
    }

    #[tokio::test]
    async fn a_final_failure_is_not_retried_and_a_success_ends_the_loop() {
        let calls = std::cell::Cell::new(0);
        let r: Result<(), &str> = retry(
            "t",
            QUICK,
            |e| *e != "final",
            || async {
                calls.set(calls.get() + 1);
                Err("final")
            },
        )
        .await;
        assert_eq!((calls.get(), r), (1, Err("final")));
        let calls = std::cell::Cell::new(0);
        let r: Result<u32, &str> = retry(
            "t",
            QUICK,
            |_| true,
            || async {
                calls.set(calls.get() + 1);
                if calls.get() < 2 {
                    Err("again")
                } else {
                    Ok(calls.get())
                }
            },
        )
        .await;
        assert_eq!(r, Ok(2));
    }
}
