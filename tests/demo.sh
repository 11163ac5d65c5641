#!/usr/bin/env bash
# README's demo command (`make demo`): the main job on the built-in demo world.
#
# Starts the local stand-ins (MongoDB, the KMS providers), seeds a realistic CSFLE
# deployment under a local master key (2,000 DEKs, encrypted documents, a keyshift.toml
# targeting AWS KMS), then runs keyshift on it. Steps whose commands are not built yet
# are named as such, not faked. The world is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }
demo_dir=${KS_DEMO_DIR:-tests/services/run/demo}

step "setup"
bash tests/setup.sh

step "build keyshift"
cargo build --locked -p keyshift
ks=target/debug/keyshift
$ks --version

step "start the demo world (tests/services/up)"
trap 'tests/services/down >/dev/null 2>&1 || true' EXIT
tests/services/up >/dev/null

step "seed: local master key, DEKs, encrypted documents, keyshift.toml -> $demo_dir"
.venv/bin/python tests/services/seed.py --out "$demo_dir" --keys "${KS_DEMO_KEYS:-2000}" \
  --docs "${KS_DEMO_DOCS:-4000}" --target aws --drop
sed 's/^/    /' "$demo_dir/keyshift.toml"

step "keyshift: check, inspect, plan, preflight, rewrap, verify"
cat >&2 <<MSG
Not built yet: keyshift check, inspect, plan, preflight, rewrap, verify.
The world above is what they will run on: the key vault holds DEKs under the local
master key, and $demo_dir/keyshift.toml moves them to the AWS KMS stand-in.
MSG
