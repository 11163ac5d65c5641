//! Where keyshift's output goes (DESIGN.md, "CLI"):
//!
//! - **stdout**: the command's result — the report of a rewrap, the plan, the policy,
//!   check's findings, a snippet — so `keyshift plan > plan.txt` captures it; with
//!   `--json`, exactly one JSON document (a failure included: see [`failure_json`]).
//! - **stderr**: progress, logs, warnings, and why a command failed.
//!
//! A closed stdout (`keyshift snippet --json | head -c 10`) is not an error of
//! keyshift's: the process ends quietly, exit 0, instead of panicking on EPIPE.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static JSON_PRINTED: AtomicBool = AtomicBool::new(false);

/// Writes to stdout; a reader that went away ends the process quietly.
pub fn out(args: std::fmt::Arguments) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(args).and_then(|()| stdout.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("keyshift: cannot write the output: {e}");
        std::process::exit(1);
    }
}

/// `println!` to stdout through [`out`].
#[macro_export]
macro_rules! outln {
    () => { $crate::output::out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Prints a JSON document on stdout (pretty, one document per run).
pub fn json(value: &serde_json::Value) {
    JSON_PRINTED.store(true, Ordering::SeqCst);
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".into());
    out(format_args!("{text}\n"));
}

/// Whether a JSON document was printed already.
pub fn json_printed() -> bool {
    JSON_PRINTED.load(Ordering::SeqCst)
}

/// The one JSON document of a `--json` run that failed before printing its own:
/// `{"ok": false, "exitCode": N, "error": "..."}` (the same message stderr gets).
pub fn failure_json(code: i32, message: &str) -> serde_json::Value {
    serde_json::json!({"ok": false, "exitCode": code, "error": message})
}
