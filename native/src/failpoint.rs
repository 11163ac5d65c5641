//! Failpoints: deterministic crash points for the crash tests (debug builds only).
//!
//! `KEYSHIFT_FAILPOINT=NAME:N[,NAME:N...]` kills the process with SIGKILL, exactly as
//! `kill -9` would, the N-th time the named point is passed; `NAME:N:panic` panics
//! there instead (the secret-hygiene test reads what a panic prints). A crash test then picks
//! *where* a run dies (after the 37th key write, after the backup is synced) instead of
//! *when* (a sleep racing the run), so a faster or slower machine kills it at the same
//! point. Points are named `<command>.<event>`; every call site of [`hit`] is one.
//!
//! Release builds compile [`hit`] to nothing: the variable has no effect there.

/// Passes the named point; dies here if `KEYSHIFT_FAILPOINT` says so.
#[cfg(debug_assertions)]
pub fn hit(name: &'static str) {
    use std::sync::Mutex;
    use std::sync::OnceLock;
    type Armed = Vec<(String, u64, bool)>;
    static ARMED: OnceLock<Mutex<Armed>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        let spec = std::env::var("KEYSHIFT_FAILPOINT").unwrap_or_default();
        Mutex::new(
            spec.split(',')
                .filter_map(|p| {
                    let mut parts = p.trim().split(':');
                    let n = parts.next()?.to_string();
                    let count = parts.next()?.parse().ok()?;
                    Some((n, count, parts.next() == Some("panic")))
                })
                .collect(),
        )
    });
    let mut armed = armed.lock().unwrap_or_else(|p| p.into_inner());
    let due = armed.iter_mut().find_map(|(n, left, panic)| {
        if n != name || *left == 0 {
            return None;
        }
        *left -= 1;
        (*left == 0).then_some(*panic)
    });
    drop(armed);
    match due {
        Some(true) => panic!("failpoint {name} reached"),
        Some(false) => die(name),
        None => {}
    }
}

/// Passes the named point (release build: nothing happens).
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn hit(_name: &'static str) {}

#[cfg(debug_assertions)]
fn die(name: &str) -> ! {
    eprintln!("keyshift: failpoint {name} reached: killing this process (SIGKILL)");
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    // `kill` is missing or did not work: end as abruptly (no destructors, no flush).
    std::process::abort()
}
