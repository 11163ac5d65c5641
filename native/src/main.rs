//! The `keyshift` command line.

use clap::Parser;

/// Move MongoDB client-side encryption key vaults from a local master key to a KMS,
/// without decrypting a document and without downtime.
#[derive(Parser, Debug)]
#[command(name = "keyshift", version = version_line(), about, long_about = None)]
struct Cli {}

fn version_line() -> String {
    let banner = keyshift_core::version::banner(Some(keyshift::crypt::libmongocrypt_version()));
    banner.trim_start_matches("keyshift ").to_string()
}

fn main() {
    let _cli = Cli::parse();
    eprintln!(
        "keyshift: the commands (check, inspect, plan, preflight, rewrap, verify, rollback) \
         are not built yet; see `keyshift --help` and docs/."
    );
    std::process::exit(2);
}
