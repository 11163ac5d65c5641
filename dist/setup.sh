#!/usr/bin/env bash
# Make this machine ready for `make dist` / `make test-dist` / `make container` (on top of
# tests/setup.sh, which `make dist` runs first). Idempotent: each step checks first, so a
# warm run takes a second. Kept apart from tests/setup.sh so `make test` stays quick.
#
#   apt          -> qemu-user-static (runs the aarch64 build), rsync (source export),
#                   debootstrap + podman/buildah + runc (container image; runc because
#                   crun refuses hybrid cgroup layouts)
#   dpkg arm64   -> libc6:arm64 and libgcc-s1:arm64 via multiarch: the sysroot qemu-aarch64
#                   runs the dynamically linked aarch64 keyshift with
#   rustup       -> the aarch64-unknown-linux-gnu target (x86_64 is the host's)
#   dist/.venv   -> ziglang and cargo-zigbuild, pinned in dist/requirements.txt: zig is the
#                   C compiler and linker that targets glibc 2.17 on both architectures
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'dist-setup: %s\n' "$*" >&2; }
export DEBIAN_FRONTEND=noninteractive
updated=0
apt_update() { ((updated)) || { apt-get update -qq; updated=1; }; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# --- apt ---------------------------------------------------------------------------------
pkgs=(qemu-user-static rsync debootstrap podman buildah runc)
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
  say "apt-get install ${missing[*]}"
  apt_update
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- the aarch64 sysroot for qemu-user (Debian multiarch) ----------------------------------
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  say "dpkg --add-architecture arm64"
  dpkg --add-architecture arm64
  updated=0
fi
missing=()
for p in libc6:arm64 libgcc-s1:arm64; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
  say "apt-get install ${missing[*]}"
  apt_update
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- rust target ---------------------------------------------------------------------------
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  say "rustup target add aarch64-unknown-linux-gnu"
  rustup target add aarch64-unknown-linux-gnu
fi

# --- zig and cargo-zigbuild ------------------------------------------------------------------
req=dist/requirements.txt
stamp=dist/.venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ ! -x dist/.venv/bin/cargo-zigbuild || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  say "dist/.venv from $req"
  python3 -m venv dist/.venv
  dist/.venv/bin/pip install -q --disable-pip-version-check -r "$req"
  echo "$want" >"$stamp"
fi

say "ready"
