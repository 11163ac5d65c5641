#!/usr/bin/env bash
# README's test command (`make test`): setup if needed (it also builds the browser
# guide), static checks, the Rust tests, core built for wasm32, the Python tests and
# the browser tests, against a test world started here and
# stopped on exit. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "setup"
bash tests/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "core and wasm build for wasm32-unknown-unknown (core stays pure)"
cargo build --locked --target wasm32-unknown-unknown -p keyshift-core -p keyshift-wasm

step "generated Rust compiles (core's golden snippets, mongodb with in-use-encryption)"
# The golden files are what the generator prints (core/tests/generate.rs keeps them
# equal); each becomes a module of a scratch crate, which must check without warnings.
mkdir -p tests/generated-rust/src
{
  echo "//! Written by tests/test.sh: every generated Rust snippet as a module."
  for f in core/tests/golden/*-rust-*.rs; do
    name=$(basename "$f" .rs | tr '-' '_')
    printf '#[path = "../../../%s"]\n#[allow(dead_code)]\nmod %s;\n' "$f" "$name"
  done
} >tests/generated-rust/src/lib.rs
RUSTFLAGS="-D warnings" CARGO_TARGET_DIR=target/generated-rust \
  cargo check --locked --quiet --manifest-path tests/generated-rust/Cargo.toml

step "test world up"
trap 'tests/services/down >/dev/null 2>&1 || true' EXIT
tests/services/up >/dev/null

step "cargo test"
cargo test --workspace --locked

step "pytest"
.venv/bin/pytest -c tests/pytest.ini tests

step "browser guide tests (the wasm API in node, the guide in Chromium)"
npm test
