#!/usr/bin/env bash
# Make this machine ready to build and test keyshift. Idempotent: every step checks
# first and skips what is already done, so a warm run takes a few seconds.
#
#   apt packages  -> what the build, the test world and the browser tests need
#   rustup        -> the wasm32-unknown-unknown target (core must build for it)
#   cargo install -> wasm-bindgen-cli, the exact version wasm/Cargo.toml pins
#   .venv         -> Python test world from tests/services/requirements.txt
#   .local/lib    -> libmongocrypt.so from the pymongocrypt wheel (native links it)
#   node_modules  -> npm ci for package.json
#   web/dist      -> the browser guide (wasm32 release build + wasm-bindgen)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { printf 'setup: %s\n' "$*" >&2; }

# --- apt ---------------------------------------------------------------------------
apt_pkgs=(pkg-config libssl-dev chromium)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- rust targets and tools ---------------------------------------------------------
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi
wb_version=$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p' wasm/Cargo.toml)
if [[ -z "$wb_version" ]]; then
  say "cannot read the pinned wasm-bindgen version from wasm/Cargo.toml"; exit 1
fi
if [[ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wb_version" ]]; then
  say "cargo install wasm-bindgen-cli@$wb_version (takes several minutes once)"
  cargo install --locked --quiet wasm-bindgen-cli --version "$wb_version"
fi

# --- python test world --------------------------------------------------------------
req=tests/services/requirements.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  say "python venv from $req"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r "$req"
  echo "$want" >"$stamp"
fi

# --- libmongocrypt from the pymongocrypt wheel ----------------------------------------
# The wheel's build (1.21) has no crypto backend: keyshift supplies crypto hooks.
so=$(.venv/bin/python -c 'import os, pymongocrypt; print(os.path.join(os.path.dirname(pymongocrypt.__file__), "libmongocrypt.so"))')
mkdir -p .local/lib
if ! cmp -s "$so" .local/lib/libmongocrypt.so.0; then
  say "libmongocrypt.so -> .local/lib"
  cp "$so" .local/lib/libmongocrypt.so.0
  ln -sf libmongocrypt.so.0 .local/lib/libmongocrypt.so
fi

# --- npm ------------------------------------------------------------------------------
if [[ -f package-lock.json ]]; then
  lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [[ "$(cat node_modules/.keyshift-lock.sha256 2>/dev/null)" != "$lock_sum" ]]; then
    say "npm ci"
    npm ci --silent --no-audit --no-fund
    echo "$lock_sum" >node_modules/.keyshift-lock.sha256
  fi
fi

# --- the browser guide (wasm + web/dist); `keyshift guide` embeds it ---------------
# build.mjs rewrites only what changed, so a warm run takes a second or two.
npm run --silent build -- --locked

say "ready ($root)"
