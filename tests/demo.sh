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

# The seeded secrets (env: references in keyshift.toml) and the commands, run where
# the config lives, exactly as a user would.
while IFS='=' read -r k v; do export "$k=$v"; done <"$demo_dir/keyshift.env"
ks=$PWD/$ks
cd "$demo_dir"

step "keyshift check";              $ks check
step "keyshift inspect";            $ks inspect
step "keyshift plan";               $ks plan
step "keyshift preflight";          $ks preflight
step "keyshift rewrap --dry-run";   $ks rewrap --dry-run
step "keyshift rewrap --yes";       time $ks rewrap --yes
step "keyshift verify";             $ks verify

step "the oracle: PyMongo holding only the AWS provider decrypts the seeded data"
cd - >/dev/null
.venv/bin/python tests/interop/demo_check.py "$demo_dir"
